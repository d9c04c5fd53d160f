//! `💬 Chats`: the read side of `/api/{session}/chats…` (waha.md §4.4) over wharf's own
//! message history ([`crate::messages::MessageStore`]).
//!
//! Every route first requires a `WORKING` session (WAHA's 422 bodies), then a valid chat
//! id (400), then reads the store. Query strings are parsed by hand so that every bad
//! value gets a class-validator-style message and repeated/array parameters (`ids`) work.
//! Editing and deleting messages (`PUT`/`DELETE …/messages/{messageId}`) need the engine
//! and live with the chatting glue, not here.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, require_working};
use crate::messages::{
    ChatQuery, ChatRow, ChatSortBy, MessageId, MessageQuery, SortOrder, WAMessage, ack, is_chat_id,
};

/// The 400 for a chat id that is not one of WhatsApp's forms.
const BAD_CHAT_ID: &str = "chatId must be a valid WhatsApp chat id (e.g. 123456789@c.us, 123456789@g.us, 123456789@lid, 123456789@newsletter or status@broadcast)";

/// WAHA's default page of `GET /chats/{chatId}/messages` (`limit` default 10).
const DEFAULT_MESSAGES_LIMIT: u32 = 10;

/// WAHA's default page of the overview (`limit` default 20).
const DEFAULT_OVERVIEW_LIMIT: u32 = 20;

/// WAHA's default window of `POST …/messages/read` (`days` default 7).
const DEFAULT_READ_DAYS: u32 = 7;

/// `sortOrder` values.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SortOrderParam {
    /// Descending (Z => A, new first).
    Desc,
    /// Ascending (A => Z, old first).
    Asc,
}

/// Chat `sortBy` values (WAHA's `ChatSortField`; `messageTimestamp`, which WAHA's docs
/// use, is accepted as an alias of `conversationTimestamp`).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum ChatSortField {
    /// Last message time.
    ConversationTimestamp,
    /// Chat id.
    Id,
    /// Chat name.
    Name,
}

/// Message `sortBy` values (both mean the message time).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum MessageSortField {
    /// Message time.
    Timestamp,
    /// Message time (WAHA's alternative name).
    MessageTimestamp,
}

/// `filter.ack` values.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum AckName {
    /// -1
    Error,
    /// 0
    Pending,
    /// 1
    Server,
    /// 2
    Device,
    /// 3
    Read,
    /// 4
    Played,
}

/// Query of `GET /api/{session}/chats` (documentation; parsed by [`Params`]).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct GetChatsQuery {
    /// Sort by field.
    #[param(inline)]
    sortBy: Option<ChatSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    sortOrder: Option<SortOrderParam>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact
    /// (accepted; wharf keeps chats as WhatsApp addressed them).
    #[param(default = true, example = true)]
    merge: Option<bool>,
    /// Page size.
    limit: Option<f64>,
    /// Skip this many.
    offset: Option<f64>,
}

/// Query of `GET /api/{session}/chats/overview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct OverviewQuery {
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    merge: Option<bool>,
    /// Page size.
    #[param(default = 20)]
    limit: Option<f64>,
    /// Skip this many.
    offset: Option<f64>,
    /// Filter by chat ids
    #[param(example = json!(["111111111@c.us"]))]
    ids: Option<Vec<String>>,
}

/// Query of `GET /api/{session}/chats/{chatId}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct GetChatMessagesQuery {
    /// Sort by field
    #[param(inline, default = "timestamp")]
    sortBy: Option<MessageSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    sortOrder: Option<SortOrderParam>,
    /// Download media for messages (accepted; stored media is returned as recorded).
    #[param(default = true, example = false)]
    downloadMedia: Option<bool>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    merge: Option<bool>,
    /// Page size.
    #[param(required = true, default = 10)]
    limit: f64,
    /// Skip this many.
    offset: Option<f64>,
    /// Filter messages before this timestamp (inclusive)
    #[serde(rename = "filter.timestamp.lte")]
    filter_timestamp_lte: Option<f64>,
    /// Filter messages after this timestamp (inclusive)
    #[serde(rename = "filter.timestamp.gte")]
    filter_timestamp_gte: Option<f64>,
    /// From me filter (by default shows all messages)
    #[serde(rename = "filter.fromMe")]
    filter_from_me: Option<bool>,
    /// Filter messages by acknowledgment status
    #[serde(rename = "filter.ack")]
    #[param(inline)]
    filter_ack: Option<AckName>,
}

/// Query of `GET /api/{session}/chats/{chatId}/messages/{messageId}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, dead_code)]
pub struct GetChatMessageQuery {
    /// Download media for messages (accepted; stored media is returned as recorded).
    #[param(default = true, example = true)]
    downloadMedia: Option<bool>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    merge: Option<bool>,
}

/// Query of `POST /api/{session}/chats/{chatId}/messages/read`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReadChatMessagesQuery {
    /// How much messages to read (latest first)
    #[param(example = 30)]
    messages: Option<f64>,
    /// How much days to read (latest first)
    #[param(default = 7)]
    days: Option<f64>,
}

/// `GetChatsOverviewParams`: the overview's paging.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct GetChatsOverviewParams {
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact
    #[serde(default)]
    #[schema(default = true, example = true)]
    pub merge: Option<bool>,
    /// Page size.
    #[serde(default)]
    #[schema(default = 20)]
    pub limit: Option<f64>,
    /// Skip this many.
    #[serde(default)]
    pub offset: Option<f64>,
}

/// `OverviewFilter`.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct OverviewFilter {
    /// Filter by chat ids
    #[serde(default)]
    #[schema(example = json!(["111111111@c.us"]))]
    pub ids: Option<Vec<String>>,
}

/// `OverviewBodyRequest`: `POST /chats/overview` (for more `ids` than a URL holds).
#[derive(Debug, Deserialize, ToSchema)]
pub struct OverviewBodyRequest {
    /// Paging.
    pub pagination: GetChatsOverviewParams,
    /// Filter.
    #[serde(default)]
    pub filter: Option<OverviewFilter>,
}

/// `ChatSummary`: one row of the overview.
#[derive(Debug, Serialize, ToSchema)]
pub struct ChatSummary {
    /// Chat id.
    pub id: String,
    /// Chat name, if known.
    pub name: Option<String>,
    /// Chat picture URL (wharf does not fetch pictures here: null).
    pub picture: Option<String>,
    /// The last message (a `WAMessage`), or null.
    #[serde(rename = "lastMessage")]
    #[schema(value_type = Option<Object>)]
    pub last_message: Option<WAMessage>,
    /// The chat as `GET /chats` returns it.
    #[serde(rename = "_chat")]
    #[schema(value_type = Object)]
    pub chat: Value,
}

/// `ReadChatMessagesResponse`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadChatMessagesResponse {
    /// Messages IDs that have been read
    pub ids: Vec<String>,
}

/// A parsed query string with class-validator-style errors.
struct Params(Vec<(String, String)>);

impl Params {
    fn of(req: &HttpRequest) -> Result<Self, ApiError> {
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| Self(q.into_inner()))
            .map_err(|e| ApiError::bad_request(e.to_string()))
    }

    /// The last value of `key` (a repeated scalar takes the last, as `qs` does for
    /// NestJS; empty = absent).
    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
    }

    /// Every value of an array parameter: `ids=a&ids=b`, `ids[]=a`, `ids=a,b`.
    fn list(&self, key: &str) -> Option<Vec<String>> {
        let bracket = format!("{key}[]");
        let values: Vec<String> = self
            .0
            .iter()
            .filter(|(k, _)| *k == key || *k == bracket)
            .flat_map(|(_, v)| v.split(','))
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(String::from)
            .collect();
        (!values.is_empty()).then_some(values)
    }

    fn number(&self, key: &str) -> Result<Option<f64>, ApiError> {
        self.get(key)
            .map(|v| {
                v.parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| {
                        ApiError::Validation(vec![format!(
                            "{key} must be a number conforming to the specified constraints"
                        )])
                    })
            })
            .transpose()
    }

    fn count(&self, key: &str) -> Result<Option<u32>, ApiError> {
        count(key, self.number(key)?)
    }

    fn timestamp(&self, key: &str) -> Result<Option<i64>, ApiError> {
        // Seconds; fractions are cut (a `<=` bound on whole seconds stays inclusive).
        #[allow(clippy::cast_possible_truncation)]
        Ok(self.number(key)?.map(|n| n.floor() as i64))
    }

    fn bool(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None => Ok(None),
            Some("true" | "1") => Ok(Some(true)),
            Some("false" | "0") => Ok(Some(false)),
            Some(_) => Err(ApiError::Validation(vec![format!(
                "{key} must be a boolean value"
            )])),
        }
    }

    fn one_of<'a>(&'a self, key: &str, allowed: &[&str]) -> Result<Option<&'a str>, ApiError> {
        match self.get(key) {
            Some(v) if !allowed.contains(&v) => Err(ApiError::Validation(vec![format!(
                "{key} must be one of the following values: {}",
                allowed.join(", ")
            )])),
            other => Ok(other),
        }
    }

    fn sort_order(&self) -> Result<SortOrder, ApiError> {
        Ok(match self.one_of("sortOrder", &["desc", "asc"])? {
            Some("asc") => SortOrder::Asc,
            _ => SortOrder::Desc,
        })
    }
}

/// A non-negative whole count (limit, offset) from a JSON/query number.
fn count(key: &str, n: Option<f64>) -> Result<Option<u32>, ApiError> {
    match n {
        None => Ok(None),
        Some(n) if n >= 0.0 && n.fract() == 0.0 && n <= f64::from(u32::MAX) =>
        {
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Ok(Some(n as u32))
        }
        Some(_) => Err(ApiError::Validation(vec![format!(
            "{key} must not be less than 0 and must be an integer number"
        )])),
    }
}

/// The chat id from the path, or the 400.
fn chat_id(raw: &str) -> Result<&str, ApiError> {
    if is_chat_id(raw) {
        Ok(raw)
    } else {
        Err(ApiError::bad_request(BAD_CHAT_ID))
    }
}

/// `_chat` / `GET /chats` item: the stored chat, shaped like the native engines' chat
/// objects (`id`, `name`, `conversationTimestamp`).
fn chat_json(row: &ChatRow) -> Value {
    json!({
        "id": row.id,
        "name": row.name,
        "conversationTimestamp": row.conversation_timestamp,
    })
}

fn summary(row: ChatRow) -> ChatSummary {
    ChatSummary {
        chat: chat_json(&row),
        id: row.id,
        name: row.name,
        picture: None,
        last_message: row.last_message,
    }
}

/// The overview: chats by last message, newest first (WAHA: "Sorting by last message
/// timestamp").
async fn overview(
    state: &AppState,
    session: &str,
    limit: Option<u32>,
    offset: Option<u32>,
    ids: Option<Vec<String>>,
) -> Result<Vec<ChatSummary>, ApiError> {
    let q = ChatQuery {
        limit: Some(limit.unwrap_or(DEFAULT_OVERVIEW_LIMIT)),
        offset: offset.unwrap_or(0),
        sort_by: ChatSortBy::ConversationTimestamp,
        sort_order: SortOrder::Desc,
        ids,
    };
    let rows = state.messages.chats(session, &q).await?;
    Ok(rows.into_iter().map(summary).collect())
}

/// Get chats
#[utoipa::path(
    operation_id = "ChatsController_getChats",
    tag = "💬 Chats",
    params(("session" = String, Path, description = "Session name"), GetChatsQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/{session}/chats")]
pub async fn get_chats(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let session = path.into_inner();
    require_working(&state, &session).await?;
    let p = Params::of(&req)?;
    let sort_by = match p.one_of(
        "sortBy",
        &["conversationTimestamp", "messageTimestamp", "id", "name"],
    )? {
        Some("id") => ChatSortBy::Id,
        Some("name") => ChatSortBy::Name,
        _ => ChatSortBy::ConversationTimestamp,
    };
    p.bool("merge")?;
    let q = ChatQuery {
        limit: p.count("limit")?,
        offset: p.count("offset")?.unwrap_or(0),
        sort_by,
        sort_order: p.sort_order()?,
        ids: None,
    };
    let rows = state.messages.chats(&session, &q).await?;
    let body: Vec<Value> = rows.iter().map(chat_json).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Get chats overview. Includes all necessary things to build UI "your chats overview" page - chat id, name, picture, last message. Sorting by last message timestamp
#[utoipa::path(
    operation_id = "ChatsController_getChatsOverview",
    tag = "💬 Chats",
    params(("session" = String, Path, description = "Session name"), OverviewQuery),
    responses((status = 200, description = "", body = Vec<ChatSummary>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/chats/overview")]
pub async fn get_chats_overview(
    state: web::Data<AppState>,
    path: web::Path<String>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let session = path.into_inner();
    require_working(&state, &session).await?;
    let p = Params::of(&req)?;
    p.bool("merge")?;
    let body = overview(
        &state,
        &session,
        p.count("limit")?,
        p.count("offset")?,
        p.list("ids"),
    )
    .await?;
    Ok(HttpResponse::Ok().json(body))
}

/// Get chats overview. Use POST if you have too many "ids" params - GET can limit it
#[utoipa::path(
    operation_id = "ChatsController_postChatsOverview",
    tag = "💬 Chats",
    params(("session" = String, Path, description = "Session name")),
    request_body = OverviewBodyRequest,
    responses((status = 201, description = "", body = Vec<ChatSummary>)),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/overview")]
pub async fn post_chats_overview(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<OverviewBodyRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = path.into_inner();
    require_working(&state, &session).await?;
    let req = body.0;
    let ids = req.filter.and_then(|f| f.ids).filter(|ids| !ids.is_empty());
    let body = overview(
        &state,
        &session,
        count("pagination.limit", req.pagination.limit)?,
        count("pagination.offset", req.pagination.offset)?,
        ids,
    )
    .await?;
    Ok(HttpResponse::Created().json(body))
}

/// Gets messages in the chat
#[utoipa::path(
    operation_id = "ChatsController_getChatMessages",
    tag = "💬 Chats",
    params(
        GetChatMessagesQuery,
        ("session" = String, Path, description = "Session name"),
        ("chatId" = String, Path, description = "Chat ID", example = "123456789@c.us"),
    ),
    responses((status = 200, description = "", body = Vec<WAMessage>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/chats/{chatId}/messages")]
pub async fn get_chat_messages(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (session, chat) = path.into_inner();
    require_working(&state, &session).await?;
    let chat = chat_id(&chat)?;
    let p = Params::of(&req)?;
    p.one_of("sortBy", &["timestamp", "messageTimestamp"])?;
    p.bool("downloadMedia")?;
    p.bool("merge")?;
    let ack_names: Vec<&str> = ack::ALL.iter().map(|(_, n)| *n).collect();
    let q = MessageQuery {
        limit: Some(p.count("limit")?.unwrap_or(DEFAULT_MESSAGES_LIMIT)),
        offset: p.count("offset")?.unwrap_or(0),
        sort_order: p.sort_order()?,
        timestamp_gte: p.timestamp("filter.timestamp.gte")?,
        timestamp_lte: p.timestamp("filter.timestamp.lte")?,
        from_me: p.bool("filter.fromMe")?,
        ack: p.one_of("filter.ack", &ack_names)?.and_then(ack::from_name),
    };
    let messages = state.messages.list(&session, chat, &q).await?;
    Ok(HttpResponse::Ok().json(messages))
}

/// Gets message by id
#[utoipa::path(
    operation_id = "ChatsController_getChatMessage",
    tag = "💬 Chats",
    params(
        GetChatMessageQuery,
        ("session" = String, Path, description = "Session name"),
        ("chatId" = String, Path, description = "Chat ID", example = "123456789@c.us"),
        ("messageId" = String, Path),
    ),
    responses((status = 200, description = "", body = WAMessage)),
    security(("api_key" = []))
)]
#[get("/api/{session}/chats/{chatId}/messages/{messageId}")]
pub async fn get_chat_message(
    state: web::Data<AppState>,
    path: web::Path<(String, String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (session, chat, message_id) = path.into_inner();
    require_working(&state, &session).await?;
    let chat = chat_id(&chat)?;
    let p = Params::of(&req)?;
    p.bool("downloadMedia")?;
    p.bool("merge")?;
    // WAHA's full id, or (leniently) the bare WhatsApp id inside this chat.
    let found = if MessageId::parse(&message_id).is_some() {
        state.messages.get(&session, &message_id).await?
    } else {
        state.messages.find_by_wa_id(&session, &message_id).await?
    };
    match found.filter(|m| m.chat_id() == chat) {
        Some(m) => Ok(HttpResponse::Ok().json(m)),
        None => Err(ApiError::Http {
            status: actix_web::http::StatusCode::NOT_FOUND,
            message: "Message not found".into(),
        }),
    }
}

/// Read unread messages in the chat
#[utoipa::path(
    operation_id = "ChatsController_readChatMessages",
    tag = "💬 Chats",
    params(
        ReadChatMessagesQuery,
        ("session" = String, Path, description = "Session name"),
        ("chatId" = String, Path, description = "Chat ID", example = "123456789@c.us"),
    ),
    responses((status = 201, description = "", body = ReadChatMessagesResponse)),
    security(("api_key" = []))
)]
#[post("/api/{session}/chats/{chatId}/messages/read")]
pub async fn read_chat_messages(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let (session, chat) = path.into_inner();
    require_working(&state, &session).await?;
    let chat = chat_id(&chat)?;
    let p = Params::of(&req)?;
    let limit = p.count("messages")?;
    let days = p.count("days")?.unwrap_or(DEFAULT_READ_DAYS);
    let since = chrono::Utc::now().timestamp() - i64::from(days) * 86_400;
    let read = state
        .messages
        .mark_read(&session, chat, limit, Some(since))
        .await?;
    // Real read receipts for what was marked, one receipt per sender (groups need it).
    let mut by_sender: std::collections::BTreeMap<Option<String>, Vec<String>> =
        std::collections::BTreeMap::new();
    for m in &read {
        by_sender
            .entry(m.participant.clone())
            .or_default()
            .push(m.wa_id());
    }
    for (participant, ids) in by_sender {
        let chat = chat.to_string();
        state
            .manager
            .command(&session, |reply| crate::engine::EngineCommand::SendSeen {
                chat,
                participant,
                ids,
                reply,
            })
            .await?;
    }
    Ok(HttpResponse::Created().json(ReadChatMessagesResponse {
        ids: read.into_iter().map(|m| m.id).collect(),
    }))
}

/// Registers this tag's routes. `…/messages/read` precedes `…/messages/{messageId}`
/// (different methods, but the order keeps the literal segment first).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_chats)
        .service(get_chats_overview)
        .service(post_chats_overview)
        .service(get_chat_messages)
        .service(read_chat_messages)
        .service(get_chat_message);
}
