//! `🟢 Status` (stories): `POST /api/{session}/status/text|image|voice|video|delete` and
//! `GET /api/{session}/status/new-message-id` (waha.md §4).
//!
//! Thin: parse and gate (extractors), one call into `sessions::status_posts`, map the
//! answer. A post answers 201 with the sent message (`to: status@broadcast`), as the
//! chatting sends do; delete answers 201 with no body.

use actix_web::{HttpResponse, get, post, web};
use serde::Deserialize;
use utoipa::ToSchema;

use super::{ApiError, AppState, Body, Working, sending::limits};
use crate::{
    engine::outgoing_media::MediaKind,
    model::send::{FileDoc, FileInput, NewMessageIDResponse},
    sessions::{sending::SendMedia, status_posts::TextPost},
};

fn default_background() -> String {
    "#38b42f".into()
}

/// `TextStatus`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TextStatus {
    /// Pre-generated status message id
    #[serde(default)]
    #[schema(example = "BBBBBBBBBBBBBBBBB")]
    pub id: Option<String>,
    /// Contact list to send the status to.
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
    /// Text.
    #[schema(default = "Have a look! https://github.com/")]
    pub text: String,
    /// Background colour.
    #[serde(default = "default_background")]
    #[schema(default = "#38b42f")]
    pub background_color: String,
    /// Font.
    #[serde(default)]
    #[schema(default = 0)]
    pub font: f64,
    /// Link preview (not generated for statuses).
    #[serde(default)]
    #[schema(default = true)]
    pub link_preview: Option<bool>,
    /// High-quality link preview.
    #[serde(default)]
    #[schema(default = false)]
    pub link_preview_high_quality: Option<bool>,
}

/// `ImageStatus`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ImageStatus {
    /// Pre-generated status message id
    #[serde(default)]
    #[schema(example = "BBBBBBBBBBBBBBBBB")]
    pub id: Option<String>,
    /// Contact list to send the status to.
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
    /// The image.
    #[schema(value_type = FileDoc, inline)]
    pub file: FileInput,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
}

/// `VoiceStatus`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct VoiceStatus {
    /// Pre-generated status message id
    #[serde(default)]
    #[schema(example = "BBBBBBBBBBBBBBBBB")]
    pub id: Option<String>,
    /// Contact list to send the status to.
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
    /// The voice note (`audio/ogg; codecs=opus` unless `convert`).
    #[schema(value_type = FileDoc, inline)]
    pub file: FileInput,
    /// Convert the input file to the required format using ffmpeg before sending
    #[serde(default)]
    #[schema(value_type = bool)]
    pub convert: Option<bool>,
    /// Background colour.
    #[serde(default = "default_background")]
    #[schema(default = "#38b42f")]
    pub background_color: String,
}

/// `VideoStatus`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct VideoStatus {
    /// Pre-generated status message id
    #[serde(default)]
    #[schema(example = "BBBBBBBBBBBBBBBBB")]
    pub id: Option<String>,
    /// Contact list to send the status to.
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
    /// The video (`video/mp4` unless `convert`).
    #[schema(value_type = FileDoc, inline)]
    pub file: FileInput,
    /// Convert the input file to the required format using ffmpeg before sending
    #[serde(default)]
    #[schema(value_type = bool)]
    pub convert: Option<bool>,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
}

/// `DeleteStatusRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct DeleteStatusRequest {
    /// Status message id to delete
    #[serde(default)]
    #[schema(example = "AAAAAAAAAAAAAAAAA")]
    pub id: Option<String>,
    /// Contact list to send the status to.
    #[serde(default)]
    pub contacts: Option<Vec<String>>,
}

/// WAHA validates a `file` with the DTO first (400), then the session pipe (422).
async fn file_gate(state: &AppState, session: &str, file: &FileInput) -> Result<Working, ApiError> {
    use crate::sessions::sending::MediaError;
    file.mimetype().map_err(MediaError::File)?;
    file.source().map_err(MediaError::File)?;
    Working::gate(state, session).await
}

async fn media(
    state: &AppState,
    session: &str,
    req: SendMedia,
    contacts: Option<Vec<String>>,
) -> Result<HttpResponse, ApiError> {
    let working = file_gate(state, session, &req.file).await?;
    let msg = state
        .manager
        .post_media_status(
            &working.engine,
            req,
            limits(state),
            contacts.unwrap_or_default(),
        )
        .await?;
    Ok(HttpResponse::Created().json(msg))
}

/// A status post's media (its chat is set by `sessions::status_posts`).
fn status_media(
    file: FileInput,
    kind: MediaKind,
    caption: Option<String>,
    id: Option<String>,
    convert: bool,
) -> SendMedia {
    SendMedia {
        chat: String::new(),
        file,
        kind,
        caption,
        reply_to: None,
        id,
        convert,
    }
}

/// Send text status
#[utoipa::path(
    operation_id = "StatusController_sendTextStatus",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    request_body = TextStatus,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/status/text")]
pub async fn send_text(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<TextStatus>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    ApiError::require_text("text", &r.text)?;
    let working = Working::gate(&state, &path).await?;
    #[allow(clippy::cast_possible_truncation, reason = "a font number is small")]
    let font = r.font as i64;
    let msg = state
        .manager
        .post_text_status(
            &working.engine,
            TextPost {
                text: r.text,
                background_color: r.background_color,
                font,
                id: r.id,
                contacts: r.contacts.unwrap_or_default(),
            },
        )
        .await?;
    Ok(HttpResponse::Created().json(msg))
}

/// Send image status
#[utoipa::path(
    operation_id = "StatusController_sendImageStatus",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    request_body = ImageStatus,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/status/image")]
pub async fn send_image(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<ImageStatus>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    let req = status_media(r.file, MediaKind::Image, r.caption, r.id, false);
    media(&state, &path, req, r.contacts).await
}

/// Send voice status
#[utoipa::path(
    operation_id = "StatusController_sendVoiceStatus",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    request_body = VoiceStatus,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/status/voice")]
pub async fn send_voice(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<VoiceStatus>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    let convert = r.convert.unwrap_or(false);
    let req = status_media(r.file, MediaKind::Voice, None, r.id, convert);
    media(&state, &path, req, r.contacts).await
}

/// Send video status
#[utoipa::path(
    operation_id = "StatusController_sendVideoStatus",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    request_body = VideoStatus,
    responses((status = 201, description = "", body = Object)),
    security(("api_key" = []))
)]
#[post("/api/{session}/status/video")]
pub async fn send_video(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<VideoStatus>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    let convert = r.convert.unwrap_or(false);
    let req = status_media(r.file, MediaKind::Video, r.caption, r.id, convert);
    media(&state, &path, req, r.contacts).await
}

/// DELETE sent status
#[utoipa::path(
    operation_id = "StatusController_deleteStatus",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    request_body = DeleteStatusRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/status/delete")]
pub async fn delete(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<DeleteStatusRequest>,
) -> Result<HttpResponse, ApiError> {
    let Body(r) = body;
    let id = r.id.unwrap_or_default();
    ApiError::require_text("id", &id)?;
    let working = Working::gate(&state, &path).await?;
    state
        .manager
        .delete_status(&working.engine, &id, &r.contacts.unwrap_or_default())
        .await?;
    Ok(HttpResponse::Created().finish())
}

/// Generate message ID you can use to batch contacts
#[utoipa::path(
    operation_id = "StatusController_getNewMessageId",
    tag = "🟢 Status",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = NewMessageIDResponse)),
    security(("api_key" = []))
)]
#[get("/api/{session}/status/new-message-id")]
pub async fn new_message_id(working: Working) -> Result<HttpResponse, ApiError> {
    let id = working
        .engine
        .new_message_id()
        .map_err(crate::sessions::Error::from)?;
    Ok(HttpResponse::Ok().json(NewMessageIDResponse { id }))
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(send_text)
        .service(send_image)
        .service(send_voice)
        .service(send_video)
        .service(delete)
        .service(new_message_id);
}
