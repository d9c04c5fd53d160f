//! `💬 Chats`: the read side of `/api/{session}/chats…` (waha.md §4.4) over wharf's own
//! message history ([`crate::messages::MessageStore`]).
//!
//! Every route first requires a `WORKING` session (WAHA's 422 bodies), then a valid query
//! (400, [`super::Query`] rules: class-validator wording, repeated/array parameters such
//! as `ids`), then a valid chat id (400), then reads the store. Editing and deleting
//! messages (`PUT`/`DELETE …/messages/{messageId}`) need the engine and live with the
//! chatting routes, not here.

use actix_web::{HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, HasSession, WorkingBody, WorkingQuery};
use crate::{
    messages::{ChatQuery, ChatRow, ChatSortBy, MessageQuery, SortOrder},
    model::message::{MessageId, WAMessage, ack, is_chat_id},
};

/// The 400 for a chat id that is not one of WhatsApp's forms.
const BAD_CHAT_ID: &str = "chatId must be a valid WhatsApp chat id (e.g. 123456789@c.us, 123456789@g.us, 123456789@lid, 123456789@newsletter or status@broadcast)";

/// WAHA's default page of `GET /chats/{chatId}/messages` (`limit` default 10).
pub(super) const DEFAULT_MESSAGES_LIMIT: u32 = 10;

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
    #[serde(alias = "messageTimestamp")]
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

/// Query of `GET /api/{session}/chats`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetChatsQuery {
    /// Sort by field.
    #[param(inline)]
    pub sortBy: Option<ChatSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    pub sortOrder: Option<SortOrderParam>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact
    /// (accepted; wharf keeps chats as WhatsApp addressed them).
    #[param(default = true, example = true)]
    pub merge: Option<bool>,
    /// Page size.
    pub limit: Option<f64>,
    /// Skip this many.
    pub offset: Option<f64>,
}

/// Query of `GET /api/{session}/chats/overview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    pub merge: Option<bool>,
    /// Page size.
    #[param(default = 20)]
    pub limit: Option<f64>,
    /// Skip this many.
    pub offset: Option<f64>,
    /// Filter by chat ids
    #[param(example = json!(["111111111@c.us"]))]
    pub ids: Option<Vec<String>>,
}

/// Query of `GET /api/{session}/chats/{chatId}/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetChatMessagesQuery {
    /// Sort by field
    #[param(inline, default = "timestamp")]
    pub sortBy: Option<MessageSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    pub sortOrder: Option<SortOrderParam>,
    /// Download media for messages (`false`: `media` and `mediaUrl` are null; `true`:
    /// the media as downloaded when the message arrived).
    #[param(default = true, example = false)]
    pub downloadMedia: Option<bool>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    pub merge: Option<bool>,
    /// Page size. WAHA documents it as required; like WAHA, a missing one is 10.
    #[param(required = true, default = 10)]
    pub limit: Option<f64>,
    /// Skip this many.
    pub offset: Option<f64>,
    /// Filter messages before this timestamp (inclusive)
    #[serde(rename = "filter.timestamp.lte")]
    pub filter_timestamp_lte: Option<f64>,
    /// Filter messages after this timestamp (inclusive)
    #[serde(rename = "filter.timestamp.gte")]
    pub filter_timestamp_gte: Option<f64>,
    /// From me filter (by default shows all messages)
    #[serde(rename = "filter.fromMe")]
    pub filter_from_me: Option<bool>,
    /// Filter messages by acknowledgment status
    #[serde(rename = "filter.ack")]
    #[param(inline)]
    pub filter_ack: Option<AckName>,
}

/// Query of `GET /api/{session}/chats/{chatId}/messages/{messageId}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetChatMessageQuery {
    /// Download media for messages (`false`: `media` and `mediaUrl` are null; `true`:
    /// the media as downloaded when the message arrived).
    #[param(default = true, example = true)]
    pub downloadMedia: Option<bool>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact.
    #[param(default = true, example = true)]
    pub merge: Option<bool>,
}

/// Query of `POST /api/{session}/chats/{chatId}/messages/read`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReadChatMessagesQuery {
    /// How much messages to read (latest first)
    #[param(example = 30)]
    pub messages: Option<f64>,
    /// How much days to read (latest first)
    #[param(default = 7)]
    pub days: Option<f64>,
}

// The session of every chats route is in the path.
impl HasSession for GetChatsQuery {}
impl HasSession for OverviewQuery {}
impl HasSession for GetChatMessagesQuery {}
impl HasSession for GetChatMessageQuery {}
impl HasSession for ReadChatMessagesQuery {}
impl HasSession for OverviewBodyRequest {}

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
    /// Chat picture URL: the contact's profile picture as last fetched (wharf does not
    /// fetch pictures here), else null.
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

pub(super) fn sort_order(order: Option<SortOrderParam>) -> SortOrder {
    match order {
        Some(SortOrderParam::Asc) => SortOrder::Asc,
        Some(SortOrderParam::Desc) | None => SortOrder::Desc,
    }
}

pub(super) fn ack_code(name: AckName) -> i32 {
    match name {
        AckName::Error => ack::ERROR,
        AckName::Pending => ack::PENDING,
        AckName::Server => ack::SERVER,
        AckName::Device => ack::DEVICE,
        AckName::Read => ack::READ,
        AckName::Played => ack::PLAYED,
    }
}

/// Seconds from a query number; fractions are cut (a `<=` bound on whole seconds stays
/// inclusive).
#[allow(
    clippy::cast_possible_truncation,
    reason = "timestamps are far inside i64"
)]
pub(super) fn timestamp(n: Option<f64>) -> Option<i64> {
    n.map(|n| n.floor() as i64)
}

/// A non-negative whole count (limit, offset) from a JSON/query number.
pub(super) fn count(key: &str, n: Option<f64>) -> Result<Option<u32>, ApiError> {
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

/// A page size as WAHA's paginators read it: absent → `default`; `0` → no limit (they
/// test `if (limit)`); otherwise the number.
fn page_limit(key: &str, n: Option<f64>, default: Option<u32>) -> Result<Option<u32>, ApiError> {
    Ok(match count(key, n)? {
        None => default,
        Some(0) => None,
        Some(n) => Some(n),
    })
}

/// A page of a chat's history from the query both message routes share (`GET
/// …/chats/{chatId}/messages` and the deprecated `GET /api/messages`): WAHA's default
/// page of 10, `limit=0` for no limit, `(gte, lte)` timestamp bounds.
pub(super) fn message_query(
    limit: Option<f64>,
    offset: Option<f64>,
    order: Option<SortOrderParam>,
    (gte, lte): (Option<f64>, Option<f64>),
    from_me: Option<bool>,
    ack: Option<AckName>,
) -> Result<MessageQuery, ApiError> {
    Ok(MessageQuery {
        limit: page_limit("limit", limit, Some(DEFAULT_MESSAGES_LIMIT))?,
        offset: count("offset", offset)?.unwrap_or(0),
        sort_order: sort_order(order),
        timestamp_gte: timestamp(gte),
        timestamp_lte: timestamp(lte),
        from_me,
        ack: ack.map(ack_code),
    })
}

/// The chat id from the path, or the 400.
pub(super) fn chat_id(raw: &str) -> Result<&str, ApiError> {
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

fn summary(row: ChatRow, picture: Option<String>) -> ChatSummary {
    ChatSummary {
        chat: chat_json(&row),
        id: row.id,
        name: row.name,
        picture,
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
        limit,
        offset: offset.unwrap_or(0),
        sort_by: ChatSortBy::ConversationTimestamp,
        sort_order: SortOrder::Desc,
        ids,
    };
    let rows = state.messages.chats(session, &q).await?;
    let faces = faces(state, session, &rows).await;
    Ok(rows
        .into_iter()
        .map(|row| {
            let face = faces.get(&row.id).cloned().unwrap_or_default();
            summary(with_name(row, &face), face.picture)
        })
        .collect())
}

/// Names and cached pictures from the contact store; a store hiccup only costs them.
async fn faces(
    state: &AppState,
    session: &str,
    rows: &[ChatRow],
) -> std::collections::HashMap<String, crate::sessions::contacts::ChatFace> {
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    state
        .manager
        .chat_faces(session, &ids)
        .await
        .unwrap_or_default()
}

/// The chat's stored name, else the contact's.
fn with_name(mut row: ChatRow, face: &crate::sessions::contacts::ChatFace) -> ChatRow {
    if row.name.as_deref().is_none_or(str::is_empty) {
        row.name.clone_from(&face.name);
    }
    row
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
    req: WorkingQuery<GetChatsQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: p } = req;
    let sort_by = match p.sortBy {
        Some(ChatSortField::Id) => ChatSortBy::Id,
        Some(ChatSortField::Name) => ChatSortBy::Name,
        Some(ChatSortField::ConversationTimestamp) | None => ChatSortBy::ConversationTimestamp,
    };
    let q = ChatQuery {
        limit: page_limit("limit", p.limit, None)?,
        offset: count("offset", p.offset)?.unwrap_or(0),
        sort_by,
        sort_order: sort_order(p.sortOrder),
        ids: None,
    };
    let rows = state.messages.chats(&working.name, &q).await?;
    let faces = faces(&state, &working.name, &rows).await;
    let body: Vec<Value> = rows
        .into_iter()
        .map(|row| {
            let face = faces.get(&row.id).cloned().unwrap_or_default();
            chat_json(&with_name(row, &face))
        })
        .collect();
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
    req: WorkingQuery<OverviewQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: p } = req;
    let body = overview(
        &state,
        &working.name,
        page_limit("limit", p.limit, Some(DEFAULT_OVERVIEW_LIMIT))?,
        count("offset", p.offset)?,
        p.ids.filter(|ids| !ids.is_empty()),
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
    req: WorkingBody<OverviewBodyRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: req } = req;
    let session = working.name;
    let ids = req.filter.and_then(|f| f.ids).filter(|ids| !ids.is_empty());
    let body = overview(
        &state,
        &session,
        page_limit(
            "pagination.limit",
            req.pagination.limit,
            Some(DEFAULT_OVERVIEW_LIMIT),
        )?,
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
    req: WorkingQuery<GetChatMessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, chat) = path.into_inner();
    let WorkingQuery { working, query: p } = req;
    let chat = chat_id(&chat)?;
    let q = message_query(
        p.limit,
        p.offset,
        p.sortOrder,
        (p.filter_timestamp_gte, p.filter_timestamp_lte),
        p.filter_from_me,
        p.filter_ack,
    )?;
    let mut messages = state.messages.list(&working.name, chat, &q).await?;
    if p.downloadMedia == Some(false) {
        messages.iter_mut().for_each(WAMessage::hide_media);
    }
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
    req: WorkingQuery<GetChatMessageQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, chat, message_id) = path.into_inner();
    let hide_media = req.query.downloadMedia == Some(false);
    let session = req.working.name;
    let chat = chat_id(&chat)?;
    // WAHA's full id, or (leniently) the bare WhatsApp id inside this chat.
    let found = if MessageId::parse(&message_id).is_some() {
        state.messages.get(&session, &message_id).await?
    } else {
        state.messages.find_by_wa_id(&session, &message_id).await?
    };
    match found.filter(|m| m.chat_id() == chat) {
        Some(mut m) => {
            if hide_media {
                m.hide_media();
            }
            Ok(HttpResponse::Ok().json(m))
        }
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
    req: WorkingQuery<ReadChatMessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, chat) = path.into_inner();
    let WorkingQuery { working, query: p } = req;
    let chat = chat_id(&chat)?;
    let limit = count("messages", p.messages)?;
    let days = count("days", p.days)?.unwrap_or(DEFAULT_READ_DAYS);
    let since = chrono::Utc::now().timestamp() - i64::from(days) * 86_400;
    let ids = state
        .manager
        .read_chat_messages(&working.engine, chat, limit, Some(since))
        .await?;
    Ok(HttpResponse::Created().json(ReadChatMessagesResponse { ids }))
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
