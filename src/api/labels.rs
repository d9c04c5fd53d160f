//! `🏷️ Labels`: `GET/POST /api/{session}/labels`, `PUT/DELETE labels/{labelId}`,
//! `GET labels/{labelId}/chats`, `GET/PUT labels/chats/{chatId}` (waha.md §4, WAHA's
//! `labels.controller` and `structures/labels.dto`).
//!
//! Every route requires a `WORKING` session (WAHA's 422 bodies), then valid input (400
//! with class-validator wording; 422 for WAHA's own label rules: colour, duplicate name,
//! at most 20; 404 for an unknown label), then asks the domain (`sessions::labels`). Reads
//! answer from the session's label store, which follows the account's app state.

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, HasSession, Working, WorkingBody, chats::chat_id};
use crate::model::labels::{Label, PALETTE, color_of_hex};

/// WhatsApp allows this many labels (WAHA refuses the 21st).
const MAX_LABELS: usize = 20;

/// A `LabelBody` as sent, checked field by field (class-validator's wording) by
/// [`label_input`].
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawLabelBody(Value);

/// `LabelBody`: `name`, and `color` (palette index) or `colorHex` (a palette colour).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code, reason = "documentation only")]
pub struct LabelBody {
    /// Label name
    #[schema(example = "Lead")]
    name: String,
    /// Color in hex
    #[schema(example = "#ff9485")]
    color_hex: Option<String>,
    /// Color number, not hex
    color: Option<f64>,
}

/// A `SetLabelsRequest` as sent, checked by [`put_chat_labels`].
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct RawSetLabels(Value);

/// `LabelID`.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = LabelID)]
#[allow(dead_code, reason = "documentation only")]
pub struct LabelId {
    /// Label ID
    #[schema(example = "1")]
    id: String,
}

/// `SetLabelsRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code, reason = "documentation only")]
pub struct SetLabelsRequest {
    labels: Vec<LabelId>,
}

impl HasSession for RawLabelBody {}
impl HasSession for RawSetLabels {}

/// `{session}` and `{labelId}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct LabelPath {
    /// Session name
    pub session: String,
    /// Label ID
    pub labelId: String,
}

/// `{session}` and `{chatId}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(non_snake_case, reason = "WAHA's parameter names")]
pub struct LabelChatPath {
    /// Session name
    pub session: String,
    /// Chat ID
    #[param(example = "123456789@c.us")]
    pub chatId: String,
}

/// WAHA's `LabelBody` checks and `toDTO()`: `(name, color index)`.
fn label_input(body: &Value) -> Result<(String, i64), ApiError> {
    let mut bad = Vec::new();
    let name = body.get("name").and_then(Value::as_str);
    if name.is_none() {
        bad.push("name must be a string".to_string());
    }
    let hex = match body.get("colorHex") {
        None | Some(Value::Null) => None,
        Some(Value::String(h))
            if h.len() == 7
                && h.starts_with('#')
                && h[1..].chars().all(|c| c.is_ascii_hexdigit()) =>
        {
            Some(h.clone())
        }
        Some(_) => {
            bad.push("colorHex must be a hexadecimal color".to_string());
            None
        }
    };
    let color = match body.get("color") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(_) => {
            bad.push("color must be a number conforming to the specified constraints".to_string());
            None
        }
    };
    if !bad.is_empty() {
        return Err(ApiError::Validation(bad));
    }
    let has_color = !matches!(body.get("color"), None | Some(Value::Null));
    let has_hex = !matches!(body.get("colorHex"), None | Some(Value::Null));
    if has_color && has_hex {
        return Err(ApiError::unprocessable("Use either 'color' or 'colorHex'"));
    }
    if !has_color && !has_hex {
        return Err(ApiError::unprocessable("'color' or 'colorHex' is required"));
    }
    let color = match (hex, color) {
        (Some(h), _) => color_of_hex(&h).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "Invalid 'colorHex'. Possible values: {}",
                PALETTE.join(", ")
            ))
        })?,
        (None, Some(c)) if c.fract() == 0.0 && (0.0..=f64::from(i32::MAX)).contains(&c) => {
            #[expect(
                clippy::cast_possible_truncation,
                reason = "checked whole and in range"
            )]
            let c = c as i64;
            c
        }
        (None, _) => {
            return Err(ApiError::unprocessable(
                "'color' must be a whole number from 0",
            ));
        }
    };
    Ok((name.unwrap_or_default().to_string(), color))
}

/// A chat id as the label store keys it (WAHA's form; bare digits are a phone's chat).
fn chat_key(raw: &str) -> Result<String, ApiError> {
    let raw = raw.trim();
    if !raw.is_empty() && raw.chars().all(|c| c.is_ascii_digit()) {
        return Ok(format!("{raw}@c.us"));
    }
    Ok(chat_id(raw)?.to_string())
}

fn not_found() -> ApiError {
    ApiError::Http {
        status: actix_web::http::StatusCode::NOT_FOUND,
        message: "Label not found".into(),
    }
}

/// Refuses a name another label already has (WAHA's 422).
fn unique_name(labels: &[Label], name: &str) -> Result<(), ApiError> {
    match labels.iter().find(|l| l.name == name) {
        Some(l) => Err(ApiError::unprocessable(format!(
            "Label with '{}' already exists, id: {}",
            l.name, l.id
        ))),
        None => Ok(()),
    }
}

/// Get all labels
#[utoipa::path(
    operation_id = "LabelsController_getAll",
    tag = "🏷️ Labels",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = Vec<Label>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/labels")]
pub async fn get_all(
    state: web::Data<AppState>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    Ok(HttpResponse::Ok().json(state.manager.list_labels(&working.name).await?))
}

/// Create a new label
#[utoipa::path(
    operation_id = "LabelsController_create",
    tag = "🏷️ Labels",
    params(("session" = String, Path, description = "Session name")),
    request_body = LabelBody,
    responses((status = 201, description = "", body = Label)),
    security(("api_key" = []))
)]
#[post("/api/{session}/labels")]
pub async fn create(
    state: web::Data<AppState>,
    req: WorkingBody<RawLabelBody>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let (name, color) = label_input(&body.0)?;
    let labels = state.manager.list_labels(&working.name).await?;
    if labels.len() >= MAX_LABELS {
        return Err(ApiError::unprocessable("Maximum 20 labels allowed"));
    }
    unique_name(&labels, &name)?;
    let label = state
        .manager
        .put_label(&working.engine, None, &name, color)
        .await?;
    Ok(HttpResponse::Created().json(label))
}

/// Update a label
#[utoipa::path(
    operation_id = "LabelsController_update",
    tag = "🏷️ Labels",
    params(LabelPath),
    request_body = LabelBody,
    responses((status = 200, description = "", body = Label)),
    security(("api_key" = []))
)]
#[put("/api/{session}/labels/{labelId}")]
pub async fn update(
    state: web::Data<AppState>,
    path: web::Path<LabelPath>,
    req: WorkingBody<RawLabelBody>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    if state
        .manager
        .label(&working.name, &path.labelId)
        .await?
        .is_none()
    {
        return Err(not_found());
    }
    let (name, color) = label_input(&body.0)?;
    let labels = state.manager.list_labels(&working.name).await?;
    unique_name(&labels, &name)?;
    let label = state
        .manager
        .put_label(&working.engine, Some(&path.labelId), &name, color)
        .await?;
    Ok(HttpResponse::Ok().json(label))
}

/// Delete a label
#[utoipa::path(
    operation_id = "LabelsController_delete",
    tag = "🏷️ Labels",
    params(LabelPath),
    responses((status = 200, description = "", body = Object)),
    security(("api_key" = []))
)]
#[delete("/api/{session}/labels/{labelId}")]
pub async fn delete_label(
    state: web::Data<AppState>,
    path: web::Path<LabelPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    if state
        .manager
        .label(&working.name, &path.labelId)
        .await?
        .is_none()
    {
        return Err(not_found());
    }
    state
        .manager
        .delete_label(&working.engine, &path.labelId)
        .await?;
    Ok(HttpResponse::Ok().json(json!({"result": true})))
}

/// Get chats by label
#[utoipa::path(
    operation_id = "LabelsController_getChatsByLabel",
    tag = "🏷️ Labels",
    params(LabelPath),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/{session}/labels/{labelId}/chats")]
pub async fn get_chats_by_label(
    state: web::Data<AppState>,
    path: web::Path<LabelPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chats = state
        .manager
        .label_chats(&working.name, &path.labelId)
        .await?;
    let body: Vec<Value> = chats.into_iter().map(|id| json!({"id": id})).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Get labels for the chat
#[utoipa::path(
    operation_id = "LabelsController_getChatLabels",
    tag = "🏷️ Labels",
    params(LabelChatPath),
    responses((status = 200, description = "", body = Vec<Label>)),
    security(("api_key" = []))
)]
#[get("/api/{session}/labels/chats/{chatId}")]
pub async fn get_chat_labels(
    state: web::Data<AppState>,
    path: web::Path<LabelChatPath>,
    working: Working,
) -> Result<HttpResponse, ApiError> {
    let chat = chat_key(&path.chatId)?;
    Ok(HttpResponse::Ok().json(state.manager.chat_labels(&working.name, &chat).await?))
}

/// Save labels for the chat
#[utoipa::path(
    operation_id = "LabelsController_putChatLabels",
    tag = "🏷️ Labels",
    params(LabelChatPath),
    request_body = SetLabelsRequest,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/{session}/labels/chats/{chatId}")]
pub async fn put_chat_labels(
    state: web::Data<AppState>,
    path: web::Path<LabelChatPath>,
    req: WorkingBody<RawSetLabels>,
) -> Result<HttpResponse, ApiError> {
    let WorkingBody { working, body } = req;
    let chat = chat_key(&path.chatId)?;
    let Some(items) = body.0.get("labels").and_then(Value::as_array) else {
        return Err(ApiError::Validation(vec!["labels must be an array".into()]));
    };
    let mut ids = Vec::with_capacity(items.len());
    for item in items {
        match item.get("id") {
            Some(Value::String(id)) => ids.push(id.clone()),
            Some(Value::Number(n)) => ids.push(n.to_string()),
            _ => {
                return Err(ApiError::Validation(vec![
                    "each label must have an id".into(),
                ]));
            }
        }
    }
    for id in &ids {
        if state.manager.label(&working.name, id).await?.is_none() {
            return Err(not_found());
        }
    }
    state
        .manager
        .set_chat_labels(&working.engine, &chat, &ids)
        .await?;
    Ok(HttpResponse::Ok().finish())
}

/// Registers the label routes (`labels/chats/{chatId}` before `labels/{labelId}`).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_all)
        .service(create)
        .service(get_chat_labels)
        .service(put_chat_labels)
        .service(update)
        .service(delete_label)
        .service(get_chats_by_label);
}
