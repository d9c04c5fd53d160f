//! `✅ Presence`: `/api/{session}/presence…` (set ours; subscribe to and read other chats'),
//! thin handlers over `sessions::presence`.
//!
//! Every route first requires a `WORKING` session (WAHA's 422 bodies), then valid input
//! (400 in class-validator's wording: an unknown presence, a chat state without a
//! `chatId`, a malformed chat id), then calls the domain. POSTs answer 201 with an empty
//! body, as NestJS does for a handler without a result.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, AppState, HasSession, Working, WorkingBody};
use crate::{
    engine::presence::OwnPresence,
    model::{
        events::WAHAChatPresences,
        profile::{PresenceStatus, WAHASessionPresence},
    },
};

impl HasSession for WAHASessionPresence {}

/// The `{session}` and `{chatId}` of a presence route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct PresencePath {
    /// Session name
    pub session: String,
    /// Chat ID
    #[param(example = "123456789@c.us")]
    pub chatId: String,
}

/// A chat id WhatsApp can address (`…@c.us`, `…@g.us`, `…@lid`, `…@s.whatsapp.net`, or
/// bare digits), or class-validator's 400.
fn chat_id(field: &str, raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    let ok = match raw.split_once('@') {
        None => !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()),
        Some((user, server)) => {
            !user.is_empty()
                && user.chars().all(|c| c.is_ascii_digit() || c == '-')
                && matches!(server, "c.us" | "g.us" | "lid" | "s.whatsapp.net")
        }
    };
    if ok {
        Ok(raw.to_string())
    } else {
        Err(ApiError::Validation(vec![format!(
            "{field} must be a chat id like 123456789@c.us or 123123123@g.us, got {raw:?}"
        )]))
    }
}

/// Set session presence
#[utoipa::path(
    operation_id = "PresenceController_setPresence",
    tag = "✅ Presence",
    params(("session" = String, Path, description = "Session name")),
    request_body = WAHASessionPresence,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/presence")]
pub async fn set_presence(
    state: web::Data<AppState>,
    req: WorkingBody<WAHASessionPresence>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let presence = match body.presence {
        PresenceStatus::Online => OwnPresence::Online,
        PresenceStatus::Offline => OwnPresence::Offline,
        PresenceStatus::Typing => OwnPresence::Typing,
        PresenceStatus::Recording => OwnPresence::Recording,
        PresenceStatus::Paused => OwnPresence::Paused,
    };
    let chat = body
        .chat_id
        .as_deref()
        .filter(|c| !c.trim().is_empty())
        .map(|c| chat_id("chatId", c))
        .transpose()?;
    let chat_state = !matches!(presence, OwnPresence::Online | OwnPresence::Offline);
    if chat_state && chat.is_none() {
        return Err(ApiError::Validation(vec![
            "chatId should not be empty for typing, recording and paused".into(),
        ]));
    }
    // WAHA: online/offline are the session's presence; a chatId only matters for the
    // chat states.
    let chat = if chat_state { chat } else { None };
    state
        .manager
        .set_presence(&working.engine, presence, chat.as_deref())
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Get all subscribed presence information.
#[utoipa::path(
    operation_id = "PresenceController_getPresenceAll",
    tag = "✅ Presence",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = Vec<WAHAChatPresences>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/presence")]
pub async fn get_presence_all(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.manager.all_presences(&working.engine)))
}

/// Get the presence for the chat id. If it hasn't been subscribed - it also subscribes to it.
#[utoipa::path(
    operation_id = "PresenceController_getPresence",
    tag = "✅ Presence",
    params(PresencePath),
    responses((status = 200, description = "", body = WAHAChatPresences)),
    security(("api_key" = []))
)]
#[get("/api/{session}/presence/{chatId}")]
pub async fn get_presence(
    state: web::Data<AppState>,
    path: web::Path<PresencePath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id("chatId", &path.chatId)?;
    let p = state.manager.chat_presence(&working.engine, &chat).await?;
    Ok(HttpResponse::Ok().json(p))
}

/// Subscribe to presence events for the chat.
#[utoipa::path(
    operation_id = "PresenceController_subscribe",
    tag = "✅ Presence",
    params(PresencePath),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/presence/{chatId}/subscribe")]
pub async fn subscribe(
    state: web::Data<AppState>,
    path: web::Path<PresencePath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_id("chatId", &path.chatId)?;
    state
        .manager
        .subscribe_presence(&working.engine, &chat)
        .await?;
    Ok(HttpResponse::Created().finish())
}

pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(set_presence)
        .service(get_presence_all)
        .service(get_presence)
        .service(subscribe);
}
