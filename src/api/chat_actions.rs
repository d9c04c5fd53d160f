//! `💬 Chats` management routes: `POST /api/{session}/chats/{chatId}/archive|unarchive|unread`
//! (WhatsApp app-state mutations, seen by every device of the account).
//!
//! Every route requires a `WORKING` session (WAHA's 422 bodies), then a valid chat id
//! (400, the same wording as the read routes), then asks the domain
//! (`sessions::chat_actions`). WAHA's handlers return nothing, which Nest sends as an
//! empty `201`.

use actix_web::{HttpResponse, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, AppState, Working, chats::chat_id};

/// The `{session}` and `{chatId}` of a chat route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct ChatPath {
    /// Session name
    pub session: String,
    /// Chat ID
    #[param(example = "123456789@c.us")]
    pub chatId: String,
}

/// Archive the chat
#[utoipa::path(
    operation_id = "ChatsController_archiveChat",
    tag = "💬 Chats",
    params(ChatPath),
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/archive")]
pub async fn archive_chat(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .archive_chat(&working.engine, chat, true)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Unarchive the chat
#[utoipa::path(
    operation_id = "ChatsController_unarchiveChat",
    tag = "💬 Chats",
    params(ChatPath),
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/unarchive")]
pub async fn unarchive_chat(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .archive_chat(&working.engine, chat, false)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Unread the chat
#[utoipa::path(
    operation_id = "ChatsController_unreadChat",
    tag = "💬 Chats",
    params(ChatPath),
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/unread")]
pub async fn unread_chat(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .mark_chat_unread(&working.engine, chat)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Registers the chat management routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(archive_chat)
        .service(unarchive_chat)
        .service(unread_chat);
}
