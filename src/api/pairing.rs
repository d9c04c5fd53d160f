//! `📱 Pairing`: `GET /api/{session}/auth/qr`, `POST /api/{session}/auth/request-code`
//! (waha.md §2). Owns the QR image rendering (PNG) and WAHA's three answer formats.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, get, http::header, post, web};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, Query};
use crate::model::session::SessionStatus;

/// WAHA waits up to ~15 s (5 s running + 10 s status) before answering 422.
const QR_WAIT: Duration = Duration::from_secs(15);

/// `QRCodeValue`.
#[derive(Debug, Serialize, ToSchema)]
pub struct QRCodeValue {
    /// The raw QR payload.
    pub value: String,
}

/// `Base64File`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Base64File {
    /// `image/png`.
    pub mimetype: String,
    /// Base64 of the file.
    pub data: String,
}

// The QR route's answers as WAHA documents them, for the OpenAPI document only (the
// handler writes the PNG bytes, `Base64File` or `QRCodeValue` itself).

/// The QR code as a PNG image.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
struct QrPng(Vec<u8>);

/// `Base64File` (the PNG) with `Accept: application/json`, `QRCodeValue` with `format=raw`.
#[derive(Serialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code, clippy::upper_case_acronyms)]
enum QrJson {
    Base64File(Base64File),
    QRCodeValue(QRCodeValue),
}

/// `RequestCodeRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestCodeRequest {
    /// Mobile phone number in international format
    #[schema(example = "12132132130")]
    pub phone_number: String,
    /// `sms`/`voice` registration is not supported; leave empty for Web pairing.
    #[serde(default)]
    pub method: Option<String>,
}

/// `format` of the QR route.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum QrFormat {
    /// A PNG (or `Base64File` with `Accept: application/json`).
    #[default]
    Image,
    /// The raw QR payload (`QRCodeValue`).
    Raw,
}

/// Query of the QR route.
#[derive(Debug, Deserialize)]
pub struct QrQuery {
    /// `image` (default) or `raw`.
    pub format: Option<QrFormat>,
}

/// Written out because WAHA documents `format` as a *required* string enum *with* a
/// default (a missing one is `image`, here as in WAHA), which the derive renders as an
/// `allOf` wrapper instead.
impl IntoParams for QrQuery {
    fn into_params(
        _: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::{
            ObjectBuilder, Required, Type,
            path::{ParameterBuilder, ParameterIn},
        };
        vec![
            ParameterBuilder::new()
                .name("format")
                .parameter_in(ParameterIn::Query)
                .required(Required::True)
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some(["image", "raw"]))
                        .default(Some(serde_json::json!("image"))),
                ))
                .build(),
        ]
    }
}

/// Renders `data` as a PNG QR code (8 px per module, 4-module quiet zone).
///
/// # Errors
/// When the data is too long for a QR code or the encoder fails.
pub fn qr_png(data: &str) -> Result<Vec<u8>, String> {
    let code = qrcode::QrCode::new(data.as_bytes()).map_err(|e| e.to_string())?;
    let modules = code.width();
    let colors = code.to_colors();
    const SCALE: usize = 8;
    const QUIET: usize = 4;
    let side = (modules + 2 * QUIET) * SCALE;
    let mut pixels = vec![255u8; side * side];
    for (i, color) in colors.iter().enumerate() {
        if *color == qrcode::Color::Dark {
            let (mx, my) = (i % modules + QUIET, i / modules + QUIET);
            for y in my * SCALE..(my + 1) * SCALE {
                pixels[y * side + mx * SCALE..y * side + (mx + 1) * SCALE].fill(0);
            }
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).map_err(|e| e.to_string())?;
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut writer = enc.write_header().map_err(|e| e.to_string())?;
        writer
            .write_image_data(&pixels)
            .map_err(|e| e.to_string())?;
    }
    Ok(out)
}

/// Resolves the session's current QR, WAHA-style: 422 bodies when there is none.
async fn current_qr(state: &AppState, name: &str) -> Result<String, ApiError> {
    let manager = &state.manager;
    match manager.get(name).await {
        Ok(_) => {}
        Err(crate::sessions::Error::NotFound(_)) => {
            return Err(ApiError::SessionNotExist(name.to_string()));
        }
        Err(e) => return Err(e.into()),
    }
    let status = manager
        .wait_for_status(name, &[SessionStatus::ScanQrCode], QR_WAIT)
        .await
        .unwrap_or(SessionStatus::Stopped);
    let qr = manager.live_state(name).and_then(|s| s.qr);
    match (status, qr) {
        (SessionStatus::ScanQrCode, Some(qr)) => Ok(qr),
        (status, _) => Err(ApiError::SessionStatus {
            session: name.to_string(),
            status,
            expected: vec![SessionStatus::ScanQrCode],
        }),
    }
}

/// Get QR code for pairing WhatsApp API.
#[utoipa::path(
    operation_id = "AuthController_getQR",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name"), QrQuery),
    responses((status = 200, description = "",
        content(
            (inline(QrPng) = "image/png"),
            (inline(QrJson) = "application/json"),
        )
    )),
    security(("api_key" = []))
)]
#[get("/api/{session}/auth/qr")]
pub async fn get_qr(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Query<QrQuery>,
) -> Result<HttpResponse, ApiError> {
    let format = query.0.format.unwrap_or_default();
    let qr = current_qr(&state, &path).await?;
    if format == QrFormat::Raw {
        return Ok(HttpResponse::Ok().json(QRCodeValue { value: qr }));
    }
    let png = qr_png(&qr).map_err(ApiError::Internal)?;
    // WAHA's BufferResponseInterceptor: JSON only for exactly `Accept: application/json`.
    let wants_json = req
        .headers()
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == "application/json");
    if wants_json {
        return Ok(HttpResponse::Ok().json(Base64File {
            mimetype: "image/png".into(),
            data: base64::engine::general_purpose::STANDARD.encode(&png),
        }));
    }
    Ok(HttpResponse::Ok().content_type("image/png").body(png))
}

/// Request authentication code.
#[utoipa::path(
    operation_id = "AuthController_requestCode",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name")),
    request_body = RequestCodeRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/auth/request-code")]
pub async fn request_code(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<RequestCodeRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.0;
    if req.method.as_deref().is_some_and(|m| !m.is_empty()) {
        return Err(ApiError::unprocessable(
            "The method is not implemented by the engine.",
        ));
    }
    let phone: String = req
        .phone_number
        .chars()
        .filter(char::is_ascii_digit)
        .collect();
    if phone.len() < 5 || phone.len() > 20 {
        return Err(ApiError::Validation(vec![
            "phoneNumber must be a phone number in international format".into(),
        ]));
    }
    let code = state.manager.request_code(&path, phone, QR_WAIT).await?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "code": code })))
}

/// Registers this tag's routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(get_qr).service(request_code);
}
