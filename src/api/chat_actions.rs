//! `💬 Chats` management routes: `POST /api/{session}/chats/{chatId}/archive|unarchive|unread`,
//! `DELETE …/chats/{chatId}` and `…/chats/{chatId}/messages` (WhatsApp app-state
//! mutations, seen by every device of the account), `POST …/messages/{messageId}/pin|unpin`
//! (a pin message to the chat) and `GET …/chats/{chatId}/picture`.
//!
//! Every route requires a `WORKING` session (WAHA's 422 bodies), then a valid chat id
//! (400, the same wording as the read routes), then asks the domain
//! (`sessions::chat_actions`). WAHA's handlers return nothing, which Nest sends as an
//! empty `201`.

use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, HasSession, Working, WorkingBody, WorkingQuery, chats::chat_id};
use crate::{engine::chat_actions::PinFor, model::groups::ChatPictureResponse};

/// The `{session}`, `{chatId}` and `{messageId}` of a message route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct ChatMessagePath {
    /// Session name
    pub session: String,
    /// Chat ID
    #[param(example = "123456789@c.us")]
    pub chatId: String,
    /// Message ID
    pub messageId: String,
}

/// `PinMessageRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct PinMessageRequest {
    /// Duration in seconds. 24 hours (86400), 7 days (604800), 30 days (2592000)
    #[schema(example = 86400)]
    duration: f64,
}

/// A `PinMessageRequest` as sent (checked by [`pin_message`]).
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawPin(Value);

impl HasSession for RawPin {}

/// Query of `GET …/chats/{chatId}/picture`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ChatPictureQuery {
    /// Refresh the picture from the server (24h cache by default). Do not refresh if not needed, you can get rate limit error
    #[param(default = false, example = false)]
    pub refresh: Option<bool>,
}

impl HasSession for ChatPictureQuery {}

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

/// Deletes the chat
#[utoipa::path(
    operation_id = "ChatsController_deleteChat",
    tag = "💬 Chats",
    params(ChatPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/{session}/chats/{chatId}")]
pub async fn delete_chat(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .delete_chat(&working.engine, chat, false)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Clears all messages from the chat
#[utoipa::path(
    operation_id = "ChatsController_clearMessages",
    tag = "💬 Chats",
    params(ChatPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/{session}/chats/{chatId}/messages")]
pub async fn clear_messages(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .delete_chat(&working.engine, chat, true)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Pins a message in the chat
#[utoipa::path(
    operation_id = "ChatsController_pinMessage",
    tag = "💬 Chats",
    params(ChatMessagePath),
    request_body = PinMessageRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/messages/{messageId}/pin")]
pub async fn pin_message(
    state: web::Data<AppState>,
    path: web::Path<ChatMessagePath>,
    req: WorkingBody<RawPin>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let chat = chat_id(&path.chatId)?;
    let Some(secs) = body.0.get("duration").and_then(Value::as_f64) else {
        return Err(ApiError::Validation(vec![
            "duration must be a number conforming to the specified constraints".into(),
        ]));
    };
    let pin = PinFor::from_secs(secs).ok_or_else(|| {
        ApiError::Validation(vec![
            "duration must be one of the following values: 86400, 604800, 2592000".into(),
        ])
    })?;
    state
        .manager
        .pin_message(&working.engine, chat, &path.messageId, Some(pin))
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Unpins a message in the chat
#[utoipa::path(
    operation_id = "ChatsController_unpinMessage",
    tag = "💬 Chats",
    params(ChatMessagePath),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/messages/{messageId}/unpin")]
pub async fn unpin_message(
    state: web::Data<AppState>,
    path: web::Path<ChatMessagePath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    state
        .manager
        .pin_message(&working.engine, chat, &path.messageId, None)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Gets chat picture
#[utoipa::path(
    operation_id = "ChatsController_getChatPicture",
    tag = "💬 Chats",
    params(ChatPath, ChatPictureQuery),
    responses((status = 200, description = "", body = ChatPictureResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/chats/{chatId}/picture")]
pub async fn get_chat_picture(
    state: web::Data<AppState>,
    path: web::Path<ChatPath>,
    req: WorkingQuery<ChatPictureQuery>,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id(&path.chatId)?;
    // `refresh` is accepted: wharf asks WhatsApp every time (no picture cache).
    let url = state
        .manager
        .chat_picture(&req.working.engine, chat)
        .await?;
    Ok(HttpResponse::Ok().json(ChatPictureResponse { url }))
}

/// Registers the chat management routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(archive_chat)
        .service(unarchive_chat)
        .service(unread_chat)
        .service(delete_chat)
        .service(clear_messages)
        .service(pin_message)
        .service(unpin_message)
        .service(get_chat_picture);
}
