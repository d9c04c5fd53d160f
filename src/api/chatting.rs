//! `📤 Chatting`: `/api/sendText` (POST and GET), `/api/sendSeen`, `/api/startTyping`,
//! `/api/stopTyping`, `PUT /api/reaction`, `/api/forwardMessage` (waha.md §4.3); plus the
//! message edit/delete routes of `💬 Chats` that need the engine.
//!
//! Thin: parse and gate (extractors), one call into `sessions::chatting` (quote, send,
//! record, publish), map the answer.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, HasSession, Working, WorkingBody, WorkingQuery};
use crate::{model::message::WAMessage, sessions::chatting::SendText};

fn default_session() -> String {
    "default".into()
}

/// `MessageTextRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageTextRequest {
    /// Chat id (`11111111111@c.us`, `…@g.us`).
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Text.
    pub text: String,
    /// Chat ids to mention (`"all"` mentions every group participant).
    #[serde(default)]
    pub mentions: Option<Vec<String>>,
    /// Generate a preview for the text's first URL (default `true`).
    #[serde(default, rename = "linkPreview")]
    pub link_preview: Option<bool>,
    /// Accepted; the preview's thumbnail is always inlined.
    #[serde(default, rename = "linkPreviewHighQuality")]
    pub link_preview_high_quality: Option<bool>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `SendSeenRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendSeenRequest {
    /// Chat id.
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Deprecated single id.
    #[serde(default, rename = "messageId")]
    pub message_id: Option<String>,
    /// Message ids (WAHA form).
    #[serde(default, rename = "messageIds")]
    pub message_ids: Option<Vec<String>>,
    /// Sender of the messages (groups).
    #[serde(default)]
    pub participant: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `ChatRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatRequest {
    /// Chat id.
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageReactionRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageReactionRequest {
    /// Message id (WAHA form).
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// Emoji to react with. Send an empty string to remove the reaction
    pub reaction: String,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageForwardRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct MessageForwardRequest {
    /// Target chat.
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// Message to forward (WAHA form).
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `EditMessageRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EditMessageRequest {
    /// New text.
    pub text: String,
    /// Accepted; not used.
    #[serde(default, rename = "linkPreview")]
    pub link_preview: Option<bool>,
    /// Accepted; not used.
    #[serde(default, rename = "linkPreviewHighQuality")]
    pub link_preview_high_quality: Option<bool>,
}

/// Query of `GET /api/sendText`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SendTextQuery {
    /// Phone number or chat id.
    pub phone: String,
    /// Text.
    pub text: String,
    /// Session name.
    pub session: String,
}

impl HasSession for MessageTextRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for SendSeenRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for ChatRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for MessageReactionRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for MessageForwardRequest {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

impl HasSession for SendTextQuery {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// The session is in the path.
impl HasSession for EditMessageRequest {}

/// Send a text message
#[utoipa::path(
    operation_id = "ChattingController_sendText",
    tag = "📤 Chatting",
    request_body = MessageTextRequest,
    responses((status = 201, description = "", body = WAMessage)),
    security(("api_key" = []))
)]
#[post("/api/sendText")]
pub async fn send_text(
    state: web::Data<AppState>,
    req: WorkingBody<MessageTextRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let msg: WAMessage = state
        .manager
        .send_text(
            &working.engine,
            SendText {
                chat: r.chat_id,
                text: r.text,
                reply_to: r.reply_to,
                mentions: r.mentions.unwrap_or_default(),
                id: r.id,
                link_preview: r
                    .link_preview
                    .unwrap_or(true)
                    .then(|| super::sending::limits(&state)),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(msg))
}

/// Send a text message
#[utoipa::path(
    operation_id = "ChattingController_sendTextGet",
    tag = "📤 Chatting",
    params(SendTextQuery),
    responses((status = 200, description = "", body = Object)),
    security(("api_key" = []))
)]
#[get("/api/sendText")]
pub async fn send_text_get(
    state: web::Data<AppState>,
    req: WorkingQuery<SendTextQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    let msg = state
        .manager
        .send_text(
            &working.engine,
            SendText {
                chat: q.phone,
                text: q.text,
                ..SendText::default()
            },
        )
        .await?;
    Ok(HttpResponse::Ok().json(msg))
}

/// Mark messages as read (send read receipts).
#[utoipa::path(
    operation_id = "ChattingController_sendSeen",
    tag = "📤 Chatting",
    request_body = SendSeenRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendSeen")]
pub async fn send_seen(
    state: web::Data<AppState>,
    req: WorkingBody<SendSeenRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let mut ids: Vec<String> = r.message_ids.unwrap_or_default();
    ids.extend(r.message_id);
    state
        .manager
        .send_seen(&working.engine, &r.chat_id, &ids, r.participant)
        .await?;
    Ok(HttpResponse::Created().json(serde_json::json!({})))
}

/// Start typing in a chat.
#[utoipa::path(
    operation_id = "ChattingController_startTyping",
    tag = "📤 Chatting",
    request_body = ChatRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/startTyping")]
pub async fn start_typing(
    state: web::Data<AppState>,
    req: WorkingBody<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    typing(&state, req, true).await
}

/// Stop typing in a chat.
#[utoipa::path(
    operation_id = "ChattingController_stopTyping",
    tag = "📤 Chatting",
    request_body = ChatRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/stopTyping")]
pub async fn stop_typing(
    state: web::Data<AppState>,
    req: WorkingBody<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    typing(&state, req, false).await
}

async fn typing(
    state: &AppState,
    req: WorkingBody<ChatRequest>,
    on: bool,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    state
        .manager
        .typing(&working.engine, &r.chat_id, on)
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// React to a message with an emoji
#[utoipa::path(
    operation_id = "ChattingController_setReaction",
    tag = "📤 Chatting",
    request_body = MessageReactionRequest,
    responses((status = 200, description = "", body = Object)),
    security(("api_key" = []))
)]
#[put("/api/reaction")]
pub async fn set_reaction(
    state: web::Data<AppState>,
    req: WorkingBody<MessageReactionRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    state
        .manager
        .react(&working.engine, &r.message_id, &r.reaction)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// Forward a message to another chat.
#[utoipa::path(
    operation_id = "ChattingController_forwardMessage",
    tag = "📤 Chatting",
    request_body = MessageForwardRequest,
    responses((status = 201, description = "", body = WAMessage)),
    security(("api_key" = []))
)]
#[post("/api/forwardMessage")]
pub async fn forward_message(
    state: web::Data<AppState>,
    req: WorkingBody<MessageForwardRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let msg = state
        .manager
        .forward_message(&working.engine, r.chat_id, &r.message_id, r.id)
        .await?;
    Ok(HttpResponse::Created().json(msg))
}

/// Edits a message in the chat
#[utoipa::path(
    operation_id = "ChatsController_editMessage",
    tag = "💬 Chats",
    params(
        ("session" = String, Path, description = "Session name"),
        ("chatId" = String, Path, description = "Chat ID"),
        ("messageId" = String, Path, description = "Message ID"),
    ),
    request_body = EditMessageRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/chats/{chatId}/messages/{messageId}")]
pub async fn edit_message(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: WorkingBody<EditMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let (_, chat, message_id) = path.into_inner();
    let WorkingBody { working, body } = req;
    state
        .manager
        .edit_message(&working.engine, &chat, &message_id, body.text)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// Deletes a message from the chat
#[utoipa::path(
    operation_id = "ChatsController_deleteMessage",
    tag = "💬 Chats",
    params(
        ("session" = String, Path, description = "Session name"),
        ("chatId" = String, Path, description = "Chat ID"),
        ("messageId" = String, Path, description = "Message ID"),
    ),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/{session}/chats/{chatId}/messages/{messageId}")]
pub async fn delete_message(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let (_, chat, message_id) = path.into_inner();
    state
        .manager
        .delete_message(&working.engine, &chat, &message_id)
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({})))
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(send_text)
        .service(send_text_get)
        .service(send_seen)
        .service(start_typing)
        .service(stop_typing)
        .service(set_reaction)
        .service(forward_message)
        .service(edit_message)
        .service(delete_message);
}
