//! `📤 Chatting` beyond text: `/api/sendImage`, `/api/sendFile`, `/api/sendVoice`,
//! `/api/sendVideo`, `/api/sendSticker`, `/api/sendLocation`, `/api/sendContactVcard`,
//! `/api/sendPoll`, `/api/sendPollVote`, `/api/send/link-custom-preview`, `/api/sendList`,
//! `/api/sendButtons`, `/api/send/buttons/reply`, `PUT /api/star`,
//! `GET /api/{session}/new-message-id`, the deprecated `/api/reply`,
//! `/api/sendLinkPreview`, `GET /api/messages` and `GET /api/checkNumberStatus`; and
//! `📅 Events`' `POST /api/{session}/events` (waha.md §4.3).
//!
//! Thin: parse and gate (extractors), one call into `sessions::sending` (or
//! `sessions::chatting`), map the answer. Every POST answers 201 with the sent message as
//! `sendText` does.

use actix_web::{HttpResponse, get, post, put, web};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{
    ApiError, AppState, Body, HasSession, Working, WorkingBody, WorkingQuery,
    chats::{AckName, MessageSortField, SortOrderParam},
    contacts::WANumberExistResult,
};
use crate::{
    engine::outgoing_media::{
        MediaKind, OutgoingEvent, OutgoingLinkPreview, OutgoingList, OutgoingLocation, OutgoingPoll,
    },
    model::{
        message::WAMessage,
        send::{
            EventMessageRequest, FileData, FileInput, MessageButtonReply,
            MessageContactVcardRequest, MessageFileRequest, MessageImageRequest,
            MessageLinkCustomPreviewRequest, MessageLinkPreviewRequest, MessageLocationRequest,
            MessagePollRequest, MessagePollVoteRequest, MessageReplyRequest, MessageStarRequest,
            MessageStickerRequest, MessageVideoRequest, MessageVoiceRequest, NewMessageIDResponse,
            PreviewImage, SendButtonsRequest, SendListRequest, VideoFileDTO, VoiceFileDTO,
        },
    },
    sessions::{
        chatting::SendText,
        sending::{FetchLimits, SendKind, SendMedia},
    },
};

macro_rules! body_session {
    ($($ty:ty),*) => {$(
        impl HasSession for $ty {
            fn session(&self) -> Option<&str> {
                Some(&self.session)
            }
        }
    )*};
}

body_session!(
    MessageImageRequest,
    MessageFileRequest,
    MessageStickerRequest,
    MessageVoiceRequest,
    MessageVideoRequest,
    MessageLocationRequest,
    MessageContactVcardRequest,
    MessagePollRequest,
    MessagePollVoteRequest,
    MessageLinkCustomPreviewRequest,
    SendListRequest,
    SendButtonsRequest,
    MessageButtonReply,
    MessageStarRequest,
    MessageReplyRequest,
    MessageLinkPreviewRequest
);

/// The session is in the path.
impl HasSession for EventMessageRequest {}

/// The fetch limits of `Config` (`WHARF_MEDIA_MAX_MB`, `WHARF_MEDIA_FETCH_TIMEOUT_SECONDS`).
pub(super) fn limits(state: &AppState) -> FetchLimits {
    FetchLimits {
        max_bytes: state.config.media_max_bytes,
        timeout: state.config.media_fetch_timeout,
        egress: state.config.egress.clone(),
        http: state.media_http.clone(),
    }
}

/// WAHA validates a `file`'s shape with the DTO, before the session pipe: so its 400s
/// come before the WORKING gate's 422, then the gate runs.
async fn file_gate(state: &AppState, session: &str, file: &FileInput) -> Result<Working, ApiError> {
    use crate::sessions::sending::MediaError;
    file.mimetype().map_err(MediaError::File)?;
    file.source().map_err(MediaError::File)?;
    Working::gate(state, session).await
}

fn created(msg: &WAMessage) -> HttpResponse {
    HttpResponse::Created().json(msg)
}

async fn media(
    state: &AppState,
    working: &Working,
    req: SendMedia,
) -> Result<HttpResponse, ApiError> {
    let msg = state
        .manager
        .send_media(&working.engine, req, limits(state))
        .await?;
    Ok(created(&msg))
}

/// Send an image
#[utoipa::path(
    operation_id = "ChattingController_sendImage",
    tag = "📤 Chatting",
    request_body = MessageImageRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendImage")]
pub async fn send_image(
    state: web::Data<AppState>,
    req: Body<MessageImageRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = req;
    let working = file_gate(&state, &r.session, &r.file).await?;
    let send = SendMedia {
        chat: r.chat_id,
        file: r.file,
        kind: MediaKind::Image,
        caption: r.caption,
        reply_to: r.reply_to,
        id: r.id,
        convert: false,
    };
    media(&state, &working, send).await
}

/// Send a file
#[utoipa::path(
    operation_id = "ChattingController_sendFile",
    tag = "📤 Chatting",
    request_body = MessageFileRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendFile")]
pub async fn send_file(
    state: web::Data<AppState>,
    req: Body<MessageFileRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = req;
    let working = file_gate(&state, &r.session, &r.file).await?;
    let send = SendMedia {
        chat: r.chat_id,
        file: r.file,
        kind: MediaKind::Document,
        caption: r.caption,
        reply_to: r.reply_to,
        id: r.id,
        convert: false,
    };
    media(&state, &working, send).await
}

/// Send a sticker (a WebP image). Served by newer WAHA versions; not in the 2026.7.1
/// document, so it is routed without being listed in `/-json`.
pub async fn send_sticker(
    state: web::Data<AppState>,
    req: Body<MessageStickerRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = req;
    let working = file_gate(&state, &r.session, &r.file).await?;
    let send = SendMedia {
        chat: r.chat_id,
        file: r.file,
        kind: MediaKind::Sticker,
        caption: None,
        reply_to: r.reply_to,
        id: r.id,
        convert: false,
    };
    media(&state, &working, send).await
}

/// Send an voice message
#[utoipa::path(
    operation_id = "ChattingController_sendVoice",
    tag = "📤 Chatting",
    request_body = MessageVoiceRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendVoice")]
pub async fn send_voice(
    state: web::Data<AppState>,
    req: Body<MessageVoiceRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = req;
    let working = file_gate(&state, &r.session, &r.file).await?;
    let send = SendMedia {
        chat: r.chat_id,
        file: r.file,
        kind: MediaKind::Voice,
        caption: None,
        reply_to: r.reply_to,
        id: r.id,
        convert: r.convert.unwrap_or(false),
    };
    media(&state, &working, send).await
}

/// Send a video
#[utoipa::path(
    operation_id = "ChattingController_sendVideo",
    tag = "📤 Chatting",
    request_body = MessageVideoRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendVideo")]
pub async fn send_video(
    state: web::Data<AppState>,
    req: Body<MessageVideoRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = req;
    let working = file_gate(&state, &r.session, &r.file).await?;
    let send = SendMedia {
        chat: r.chat_id,
        file: r.file,
        kind: if r.as_note.unwrap_or(false) {
            MediaKind::VideoNote
        } else {
            MediaKind::Video
        },
        caption: r.caption,
        reply_to: r.reply_to,
        id: r.id,
        convert: r.convert.unwrap_or(false),
    };
    media(&state, &working, send).await
}

async fn kind(
    state: &AppState,
    working: &Working,
    chat: String,
    reply_to: Option<String>,
    id: Option<String>,
    kind: SendKind,
) -> Result<HttpResponse, ApiError> {
    let msg = state
        .manager
        .send_kind(&working.engine, chat, reply_to, id, kind, limits(state))
        .await?;
    Ok(created(&msg))
}

/// Send a location
#[utoipa::path(
    operation_id = "ChattingController_sendLocation",
    tag = "📤 Chatting",
    request_body = MessageLocationRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendLocation")]
pub async fn send_location(
    state: web::Data<AppState>,
    req: WorkingBody<MessageLocationRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let location = OutgoingLocation {
        latitude: r.latitude,
        longitude: r.longitude,
        name: Some(r.title).filter(|t| !t.is_empty()),
    };
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        r.id,
        SendKind::Location(location),
    )
    .await
}

/// Send a contact vCard
#[utoipa::path(
    operation_id = "ChattingController_sendContactVcard",
    tag = "📤 Chatting",
    request_body = MessageContactVcardRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendContactVcard")]
pub async fn send_contact_vcard(
    state: web::Data<AppState>,
    req: WorkingBody<MessageContactVcardRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        r.id,
        SendKind::Contacts(r.contacts),
    )
    .await
}

/// Send a poll with options
#[utoipa::path(
    operation_id = "ChattingController_sendPoll",
    tag = "📤 Chatting",
    request_body = MessagePollRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendPoll")]
pub async fn send_poll(
    state: web::Data<AppState>,
    req: WorkingBody<MessagePollRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let multiple_answers = r.poll.multiple();
    let poll = OutgoingPoll {
        name: r.poll.name,
        options: r.poll.options,
        multiple_answers,
    };
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        r.id,
        SendKind::Poll(poll),
    )
    .await
}

/// Vote on a poll
#[utoipa::path(
    operation_id = "ChattingController_sendPollVote",
    tag = "📤 Chatting",
    request_body = MessagePollVoteRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendPollVote")]
pub async fn send_poll_vote(
    state: web::Data<AppState>,
    req: WorkingBody<MessagePollVoteRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let answer = state
        .manager
        .send_poll_vote(
            &working.engine,
            r.chat_id,
            &r.poll_message_id,
            crate::model::send::vote_options(r.votes),
        )
        .await?;
    Ok(HttpResponse::Created().json(answer))
}

/// Send a text message with a CUSTOM link preview.
#[utoipa::path(
    operation_id = "ChattingController_sendLinkCustomPreview",
    tag = "📤 Chatting",
    request_body = MessageLinkCustomPreviewRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/send/link-custom-preview")]
pub async fn send_link_custom_preview(
    state: web::Data<AppState>,
    req: WorkingBody<MessageLinkCustomPreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let p = r.preview;
    let image = p.image.map(|PreviewImage { url, data }| FileInput {
        mimetype: None,
        filename: None,
        url,
        data: data.map(FileData::from),
    });
    let preview = OutgoingLinkPreview {
        text: r.text,
        url: p.url,
        title: p.title,
        description: Some(p.description),
        thumbnail: None,
    };
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        None,
        SendKind::LinkPreview { preview, image },
    )
    .await
}

/// Send a list message (interactive)
#[utoipa::path(
    operation_id = "ChattingController_sendList",
    tag = "📤 Chatting",
    request_body = SendListRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/sendList")]
pub async fn send_list(
    state: web::Data<AppState>,
    req: WorkingBody<SendListRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let m = r.message;
    let list = OutgoingList {
        title: m.title,
        description: m.description,
        footer: m.footer,
        button: m.button,
        sections: m
            .sections
            .into_iter()
            .map(|s| {
                let rows = s
                    .rows
                    .into_iter()
                    .map(|row| (row.title, row.row_id, row.description))
                    .collect();
                (s.title, rows)
            })
            .collect(),
    };
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        None,
        SendKind::List(list),
    )
    .await
}

/// Send buttons message (interactive)
///
/// WAHA's GOWS engine does not implement it: 422 `The method is not implemented by the
/// engine.` after the body and the session were checked.
#[utoipa::path(
    operation_id = "ChattingController_sendButtons",
    tag = "📤 Chatting",
    request_body = SendButtonsRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendButtons")]
pub async fn send_buttons(req: WorkingBody<SendButtonsRequest>) -> Result<HttpResponse, ApiError> {
    drop(req);
    Err(ApiError::not_implemented())
}

/// Reply on a button message
///
/// WAHA's GOWS engine does not implement it: 422 `The method is not implemented by the
/// engine.`.
#[utoipa::path(
    operation_id = "ChattingController_sendButtonsReply",
    tag = "📤 Chatting",
    request_body = MessageButtonReply,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/send/buttons/reply")]
pub async fn send_buttons_reply(
    req: WorkingBody<MessageButtonReply>,
) -> Result<HttpResponse, ApiError> {
    drop(req);
    Err(ApiError::not_implemented())
}

/// Star or unstar a message
#[utoipa::path(
    operation_id = "ChattingController_setStar",
    tag = "📤 Chatting",
    request_body = MessageStarRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/star")]
pub async fn set_star(
    state: web::Data<AppState>,
    req: WorkingBody<MessageStarRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    state
        .manager
        .star_message(&working.engine, &r.chat_id, &r.message_id, r.star)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Generate message ID you can use to batch contacts
#[utoipa::path(
    operation_id = "ChattingController_getNewMessageId",
    tag = "📤 Chatting",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = NewMessageIDResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/new-message-id")]
pub async fn get_new_message_id(working: Working) -> Result<HttpResponse, ApiError> {
    let id = working
        .engine
        .new_message_id()
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().json(NewMessageIDResponse { id }))
}

/// Send an event message
#[utoipa::path(
    operation_id = "EventsController_sendEvent",
    tag = "📅 Events",
    params(("session" = String, Path, description = "Session name")),
    request_body = EventMessageRequest,
    responses((status = 201, description = "", body = WAMessage)),
    security(("api_key" = []))
)]
#[post("/api/{session}/events")]
pub async fn send_event(
    state: web::Data<AppState>,
    req: WorkingBody<EventMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let e = r.event;
    let event = OutgoingEvent {
        name: e.name,
        description: e.description,
        // Seconds, possibly sent as a float (`2063137000.0`).
        start_time: e.start_time as i64,
        end_time: e.end_time.map(|t| t as i64),
        location: e.location.map(|l| l.name),
        extra_guests_allowed: e.extra_guests_allowed,
    };
    kind(
        &state,
        &working,
        r.chat_id,
        r.reply_to,
        None,
        SendKind::Event(event),
    )
    .await
}

/// DEPRECATED - you can set "reply_to" field when sending text, image, etc
#[utoipa::path(
    operation_id = "ChattingController_reply",
    tag = "📤 Chatting",
    request_body = MessageReplyRequest,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/reply")]
pub async fn reply(
    state: web::Data<AppState>,
    req: WorkingBody<MessageReplyRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let msg = state
        .manager
        .send_text(
            &working.engine,
            SendText {
                chat: r.chat_id,
                text: r.text,
                reply_to: r.reply_to,
                mentions: Vec::new(),
                id: r.id,
                link_preview: r.link_preview.unwrap_or(true).then(|| limits(&state)),
            },
        )
        .await?;
    Ok(created(&msg))
}

/// Send a text message with a link preview (deprecated: use `sendText`)
#[utoipa::path(
    operation_id = "ChattingController_sendLinkPreview_DEPRECATED",
    tag = "📤 Chatting",
    request_body = MessageLinkPreviewRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sendLinkPreview")]
pub async fn send_link_preview(
    state: web::Data<AppState>,
    req: WorkingBody<MessageLinkPreviewRequest>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body: r } = req;
    let preview = OutgoingLinkPreview {
        text: r.url.clone(),
        url: r.url,
        title: r.title,
        description: None,
        thumbnail: None,
    };
    kind(
        &state,
        &working,
        r.chat_id,
        None,
        r.id,
        SendKind::LinkPreview {
            preview,
            image: None,
        },
    )
    .await
}

/// Query of the deprecated `GET /api/messages`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct GetMessagesQuery {
    /// Sort by field
    #[param(inline, default = "timestamp")]
    pub sortBy: Option<MessageSortField>,
    /// Sort order - <b>desc</b>ending (Z => A, New first) or <b>asc</b>ending (A => Z, Old first)
    #[param(inline)]
    pub sortOrder: Option<SortOrderParam>,
    /// Download media for messages
    #[param(default = true, example = false)]
    pub downloadMedia: Option<bool>,
    /// Merge LID (@lid) and phone-number (@c.us) chats referencing the same contact
    #[param(default = true, example = true)]
    pub merge: Option<bool>,
    /// Chat id.
    #[param(example = "11111111111@c.us")]
    pub chatId: String,
    /// Session name.
    #[param(default = "default")]
    pub session: String,
    /// Page size (a missing one is 10).
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

impl HasSession for GetMessagesQuery {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// Get messages in a chat
#[utoipa::path(
    operation_id = "ChattingController_getMessages",
    tag = "📤 Chatting",
    params(GetMessagesQuery),
    responses((status = 200, description = "", body = Vec<WAMessage>)),
    security(("api_key" = []))
)]
#[get("/api/messages")]
pub async fn get_messages(
    state: web::Data<AppState>,
    req: WorkingQuery<GetMessagesQuery>,
) -> Result<HttpResponse, ApiError> {
    use super::chats::{chat_id, message_query};
    let WorkingQuery { working, query: p } = req;
    let chat = chat_id(&p.chatId)?;
    let q = message_query(
        p.limit,
        p.offset,
        p.sortOrder,
        (p.filter_timestamp_gte, p.filter_timestamp_lte),
        p.filter_from_me,
        p.filter_ack,
    )?;
    let messages = state.messages.list(&working.name, chat, &q).await?;
    Ok(HttpResponse::Ok().json(messages))
}

/// Query of the deprecated `GET /api/checkNumberStatus`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckNumberStatusQuery {
    /// The phone number to check
    #[param(example = "1213213213")]
    pub phone: String,
    /// Session name.
    #[param(default = "default")]
    pub session: String,
}

impl HasSession for CheckNumberStatusQuery {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// Check number status
#[utoipa::path(
    operation_id = "ChattingController_DEPRECATED_checkNumberStatus",
    tag = "📤 Chatting",
    params(CheckNumberStatusQuery),
    responses((status = 200, description = "", body = WANumberExistResult)),
    security(("api_key" = []))
)]
#[get("/api/checkNumberStatus")]
pub async fn check_number_status(
    state: web::Data<AppState>,
    req: WorkingQuery<CheckNumberStatusQuery>,
) -> Result<HttpResponse, ApiError> {
    let WorkingQuery { working, query: q } = req;
    // WAHA GOWS: `+` removed, the rest passed to WhatsApp as is.
    let phone: String = q.phone.chars().filter(char::is_ascii_digit).collect();
    if phone.is_empty() {
        return Err(ApiError::Validation(vec![
            "phone must be a phone number in international format".into(),
        ]));
    }
    let chat_id = state.manager.check_exists(&working.engine, &phone).await?;
    Ok(HttpResponse::Ok().json(WANumberExistResult {
        number_exists: chat_id.is_some(),
        chat_id,
    }))
}

/// Converts `url`/`data`, answering WAHA's `BufferResponseInterceptor` way: the bytes,
/// or a `Base64File` for exactly `Accept: application/json`.
async fn convert(
    state: &AppState,
    http: &actix_web::HttpRequest,
    url: Option<String>,
    data: Option<FileData>,
    video: bool,
) -> Result<HttpResponse, ApiError> {
    let (mimetype, bytes) = state
        .manager
        .convert_file(url, data, video, limits(state))
        .await?;
    let wants_json = http
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    if wants_json {
        use base64::Engine as _;
        return Ok(HttpResponse::Created().json(super::pairing::Base64File {
            mimetype: mimetype.into(),
            data: base64::engine::general_purpose::STANDARD.encode(&bytes),
        }));
    }
    Ok(HttpResponse::Created().content_type(mimetype).body(bytes))
}

/// Convert voice to WhatsApp format (opus)
#[utoipa::path(
    operation_id = "MediaController_convertVoice",
    tag = "🖼️ Media",
    params(("session" = String, Path, description = "Session name")),
    request_body = VoiceFileDTO,
    responses(
        (status = 200, description = "", body = super::pairing::Base64File),
        (status = 201, description = ""),
    ),
    security(("api_key" = []))
)]
#[post("/api/{session}/media/convert/voice")]
pub async fn convert_voice(
    http: actix_web::HttpRequest,
    state: web::Data<AppState>,
    req: WorkingBody<VoiceFileDTO>,
) -> Result<HttpResponse, ApiError> {
    convert(&state, &http, req.body.url, req.body.data, false).await
}

/// Convert video to WhatsApp format (mp4)
#[utoipa::path(
    operation_id = "MediaController_convertVideo",
    tag = "🖼️ Media",
    params(("session" = String, Path, description = "Session name")),
    request_body = VideoFileDTO,
    responses(
        (status = 200, description = "", body = super::pairing::Base64File),
        (status = 201, description = ""),
    ),
    security(("api_key" = []))
)]
#[post("/api/{session}/media/convert/video")]
pub async fn convert_video(
    http: actix_web::HttpRequest,
    state: web::Data<AppState>,
    req: WorkingBody<VideoFileDTO>,
) -> Result<HttpResponse, ApiError> {
    convert(&state, &http, req.body.url, req.body.data, true).await
}

/// The session is in the path.
impl HasSession for VoiceFileDTO {}

/// The session is in the path.
impl HasSession for VideoFileDTO {}

/// Registers this file's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(send_image)
        .service(send_file)
        .service(send_voice)
        .service(send_video)
        .service(send_location)
        .service(send_contact_vcard)
        .service(send_poll)
        .service(send_poll_vote)
        .service(send_link_custom_preview)
        .service(send_list)
        .service(send_buttons)
        .service(send_buttons_reply)
        .service(set_star)
        .service(get_new_message_id)
        .service(send_event)
        .service(reply)
        .service(send_link_preview)
        .service(get_messages)
        .service(check_number_status)
        .service(convert_voice)
        .service(convert_video)
        // Not in WAHA 2026.7.1's document: routed, not listed (see `send_sticker`).
        .route("/api/sendSticker", web::post().to(send_sticker));
}
