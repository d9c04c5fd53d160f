//! `📤 Chatting`: `/api/sendText` (POST and GET), `/api/sendSeen`, `/api/startTyping`,
//! `/api/stopTyping`, `PUT /api/reaction`, `/api/forwardMessage` (waha.md §4.3); plus the
//! message edit/delete routes of `💬 Chats` that need the engine.
//!
//! Thin: parse, the WORKING gate, one engine command through the session manager, and the
//! session inbox records and publishes what was sent.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, require_working};
use crate::{
    engine::EngineCommand,
    messages::model::{MessageId, ReplyToMessage, WAMessage},
};

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
    /// Accepted; link previews are not generated yet.
    #[serde(default, rename = "linkPreview")]
    pub link_preview: Option<bool>,
    /// Accepted; link previews are not generated yet.
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

fn parse_message_id(id: &str) -> Result<MessageId, ApiError> {
    MessageId::parse(id).ok_or_else(|| {
        ApiError::Validation(vec![format!(
            "messageId must look like false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA, got {id:?}"
        )])
    })
}

fn not_found_message() -> ApiError {
    ApiError::Http {
        status: actix_web::http::StatusCode::NOT_FOUND,
        message: "Message not found".into(),
    }
}

async fn send_text_inner(
    state: &AppState,
    session: &str,
    chat: String,
    text: String,
    reply_to: Option<String>,
    mentions: Vec<String>,
    id: Option<String>,
) -> Result<WAMessage, ApiError> {
    require_working(state, session).await?;
    let inbox = state.manager.inbox(session).await?;
    let mut quoted = None;
    if let Some(reply) = reply_to.filter(|r| !r.is_empty()) {
        let parsed = parse_message_id(&reply)?;
        let stored = inbox
            .messages
            .get(session, &reply)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let body = stored.as_ref().map(|m| m.body.clone()).unwrap_or_default();
        let me = state
            .manager
            .live_state(session)
            .and_then(|s| s.me)
            .map(|m| m.id)
            .unwrap_or_default();
        let sender = match (&parsed.participant, parsed.from_me) {
            (Some(p), _) => p.clone(),
            (None, true) => me,
            (None, false) => parsed.chat_id.clone(),
        };
        quoted = Some((
            parsed.wa_id.clone(),
            sender.clone(),
            body.clone(),
            ReplyToMessage {
                id: parsed.wa_id.clone(),
                participant: Some(sender),
                body: Some(body),
                has_media: false,
                media: None,
                data: serde_json::Map::new(),
            },
        ));
    }
    let reply_parts = quoted
        .as_ref()
        .map(|(i, s, b, _)| (i.clone(), s.clone(), b.clone()));
    let body = text.clone();
    let sent = state
        .manager
        .command(session, |reply| EngineCommand::SendText {
            chat,
            text,
            reply_to: reply_parts,
            mentions,
            id,
            reply,
        })
        .await?;
    let me = state.manager.live_state(session).and_then(|s| s.me);
    Ok(inbox
        .sent(me.as_ref(), &sent, body, quoted.map(|q| q.3))
        .await)
}

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
    body: Body<MessageTextRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    let msg = send_text_inner(
        &state,
        &r.session,
        r.chat_id,
        r.text,
        r.reply_to,
        r.mentions.unwrap_or_default(),
        r.id,
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
    query: web::Query<SendTextQuery>,
) -> Result<HttpResponse, ApiError> {
    let q = query.into_inner();
    let msg = send_text_inner(&state, &q.session, q.phone, q.text, None, Vec::new(), None).await?;
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
    body: Body<SendSeenRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    require_working(&state, &r.session).await?;
    let mut ids: Vec<String> = r.message_ids.unwrap_or_default();
    ids.extend(r.message_id);
    let mut wa_ids = Vec::new();
    let mut participant = r.participant;
    for id in &ids {
        let parsed = parse_message_id(id)?;
        if participant.is_none() {
            participant = parsed.participant.clone();
        }
        wa_ids.push(parsed.wa_id);
    }
    let chat = r.chat_id;
    let ids_for_engine = wa_ids.clone();
    state
        .manager
        .command(&r.session, |reply| EngineCommand::SendSeen {
            chat,
            participant,
            ids: ids_for_engine,
            reply,
        })
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
    body: Body<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    typing(&state, body.0, true).await
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
    body: Body<ChatRequest>,
) -> Result<HttpResponse, ApiError> {
    typing(&state, body.0, false).await
}

async fn typing(state: &AppState, r: ChatRequest, on: bool) -> Result<HttpResponse, ApiError> {
    require_working(state, &r.session).await?;
    let chat = r.chat_id;
    state
        .manager
        .command(&r.session, |reply| EngineCommand::Typing {
            chat,
            on,
            reply,
        })
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
    body: Body<MessageReactionRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    require_working(&state, &r.session).await?;
    let target = parse_message_id(&r.message_id)?;
    let emoji = r.reaction;
    state
        .manager
        .command(&r.session, |reply| EngineCommand::React {
            chat: target.chat_id,
            target_id: target.wa_id,
            target_from_me: target.from_me,
            participant: target.participant,
            emoji,
            reply,
        })
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
    body: Body<MessageForwardRequest>,
) -> Result<HttpResponse, ApiError> {
    let r = body.0;
    require_working(&state, &r.session).await?;
    parse_message_id(&r.message_id)?;
    let inbox = state.manager.inbox(&r.session).await?;
    let original = inbox
        .messages
        .get(&r.session, &r.message_id)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .ok_or_else(not_found_message)?;
    // Text forward: the stored body is re-sent (media forwarding needs the media store).
    let msg = send_text_inner(
        &state,
        &r.session,
        r.chat_id,
        original.body,
        None,
        Vec::new(),
        r.id,
    )
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
    body: Body<EditMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let (session, chat, message_id) = path.into_inner();
    require_working(&state, &session).await?;
    let target = parse_message_id(&message_id)?;
    let text = body.0.text;
    let new_body = text.clone();
    let target_id = target.wa_id.clone();
    state
        .manager
        .command(&session, |reply| EngineCommand::Edit {
            chat,
            target_id,
            text,
            reply,
        })
        .await?;
    let inbox = state.manager.inbox(&session).await?;
    let _ = inbox
        .messages
        .edit(&session, &target.wa_id, &new_body)
        .await;
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
) -> Result<HttpResponse, ApiError> {
    let (session, chat, message_id) = path.into_inner();
    require_working(&state, &session).await?;
    let target = parse_message_id(&message_id)?;
    let target_id = target.wa_id.clone();
    state
        .manager
        .command(&session, |reply| EngineCommand::Revoke {
            chat,
            target_id,
            reply,
        })
        .await?;
    let inbox = state.manager.inbox(&session).await?;
    let _ = inbox.messages.revoke(&session, &target.wa_id).await;
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
