//! WAHA operations whose feature wharf does not run, answered the way WAHA answers when
//! its engine or configuration lacks it — never a bare `404 Cannot GET`:
//!
//! - `GET /api/screenshot` (WEBJS/WPP only; GOWS has no browser): 422 *The method is not
//!   implemented by the engine.*;
//! - the passkey (WebAuthn) pairing routes: a wharf session never enters
//!   `PASSKEY_REQUIRED` / `PASSKEY_CONFIRMATION_REQUIRED` (whatsapp-rust pairs by QR or
//!   code), so they give WAHA's 422 "status is not as expected" body;
//! - `/api/server/debug/*`: 404 `WAHA_DEBUG_MODE is disabled`, and with `WAHA_DEBUG_MODE`
//!   the engine's 422 (a Node.js CPU profile, heap snapshot or browser trace has no
//!   equivalent in a Rust process);
//! - `🧩 Apps` and `POST /mcp`: wharf runs no apps, so the list is empty, an app id is
//!   never found and creating one is a 422 that says so.
//!
//! Registered by `api::routes`; stateless, lives as long as the app.

use actix_web::{HttpResponse, delete, get, http::StatusCode, post, put, web};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, HasSession, WorkingQuery};
use crate::model::session::SessionStatus;

/// `?session=` of the screenshot route.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScreenshotQuery {
    /// Session name.
    #[param(default = "default")]
    pub session: Option<String>,
}

impl HasSession for ScreenshotQuery {
    fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }
}

/// Get a screenshot of the current WhatsApp session (**WEBJS/WPP** only)
#[utoipa::path(
    operation_id = "ScreenshotController_screenshot",
    tag = "📱 Pairing",
    params(ScreenshotQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/screenshot")]
pub async fn screenshot(_gate: WorkingQuery<ScreenshotQuery>) -> Result<HttpResponse, ApiError> {
    // The session is WORKING (else WAHA's 422 status body): GOWS then throws
    // NotImplementedByEngineError, as it has no browser to capture.
    Err(ApiError::not_implemented())
}

/// `PasskeyAssertionResponseData`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PasskeyAssertionResponseData {
    /// Base64url-encoded clientDataJSON from the authenticator.
    #[serde(rename = "clientDataJSON")]
    pub client_data_json: String,
    /// Base64url-encoded authenticatorData from the authenticator.
    pub authenticator_data: String,
    /// Base64url-encoded signature from the authenticator.
    pub signature: String,
    /// Base64url-encoded user handle, if returned by the authenticator.
    pub user_handle: Option<String>,
}

/// `PasskeyAssertionRequest`: a WebAuthn assertion.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
pub struct PasskeyAssertionRequest {
    /// Credential ID, as returned by navigator.credentials.get().toJSON().
    pub id: String,
    /// Base64url-encoded raw credential ID.
    pub raw_id: String,
    /// Always "public-key".
    #[serde(rename = "type")]
    #[schema(example = "public-key")]
    pub kind: String,
    /// The authenticator's answer.
    pub response: PasskeyAssertionResponseData,
}

/// WAHA's answer while no passkey step is pending: the session exists (else 404) but is
/// not in `expected` — which a wharf session never is.
async fn passkey_step(
    state: &AppState,
    name: &str,
    expected: SessionStatus,
) -> Result<HttpResponse, ApiError> {
    state.manager.get(name).await?;
    let status = state.manager.status_of(name);
    Err(ApiError::SessionStatus {
        session: name.to_string(),
        status,
        expected: vec![expected],
    })
}

/// Get the pending passkey (WebAuthn) challenge.
#[utoipa::path(
    operation_id = "AuthController_getPasskeyChallenge",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/{session}/auth/passkey/challenge")]
pub async fn passkey_challenge(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    passkey_step(&state, &path, SessionStatus::PasskeyRequired).await
}

/// Submit the passkey (WebAuthn) assertion.
#[utoipa::path(
    operation_id = "AuthController_submitPasskey",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name")),
    request_body = PasskeyAssertionRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/auth/passkey")]
pub async fn passkey_submit(
    state: web::Data<AppState>,
    path: web::Path<String>,
    _body: Body<PasskeyAssertionRequest>,
) -> Result<HttpResponse, ApiError> {
    passkey_step(&state, &path, SessionStatus::PasskeyRequired).await
}

/// Get the passkey confirmation code.
#[utoipa::path(
    operation_id = "AuthController_getPasskeyConfirmation",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/{session}/auth/passkey/confirmation")]
pub async fn passkey_confirmation(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    passkey_step(&state, &path, SessionStatus::PasskeyConfirmationRequired).await
}

/// Confirm the passkey code on the phone.
#[utoipa::path(
    operation_id = "AuthController_confirmPasskey",
    tag = "📱 Pairing",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/{session}/auth/passkey/confirm")]
pub async fn passkey_confirm(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    passkey_step(&state, &path, SessionStatus::PasskeyConfirmationRequired).await
}

/// The debug routes' gate: WAHA's 404 without `WAHA_DEBUG_MODE`, else the engine's 422.
fn debug_answer(state: &AppState) -> Result<HttpResponse, ApiError> {
    if !state.config.debug_mode {
        return Err(ApiError::Http {
            status: StatusCode::NOT_FOUND,
            message: "WAHA_DEBUG_MODE is disabled".into(),
        });
    }
    Err(ApiError::not_implemented())
}

/// `?seconds=` of the CPU profile.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct CpuQuery {
    /// How many seconds to sample CPU
    #[param(minimum = 1, default = 30, example = 30)]
    pub seconds: Option<f64>,
}

/// Collect and return a CPU profile for the current nodejs process
#[utoipa::path(
    operation_id = "ServerDebugController_cpuProfile",
    tag = "🔍 Observability",
    params(CpuQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/server/debug/cpu")]
pub async fn debug_cpu(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    debug_answer(&state)
}

/// Return a heapsnapshot for the server
#[utoipa::path(
    operation_id = "ServerDebugController_heapsnapshot",
    tag = "🔍 Observability",
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/server/debug/heapsnapshot")]
pub async fn debug_heapsnapshot(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    debug_answer(&state)
}

/// Query of the browser trace.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct TraceQuery {
    /// How many seconds to trace
    #[param(default = 30, example = 30)]
    pub seconds: Option<f64>,
    /// Categories to trace (all by default)
    pub categories: Option<Vec<String>>,
}

/// Collect and get a trace.json for Chrome DevTools
#[utoipa::path(
    operation_id = "ServerDebugController_browserTrace",
    tag = "🔍 Observability",
    params(("session" = String, Path, description = "Session name"), TraceQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/server/debug/browser/trace/{session}")]
pub async fn debug_browser_trace(
    state: web::Data<AppState>,
    _path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    debug_answer(&state)
}

/// `App`: an app attached to a session.
#[derive(Debug, Deserialize, ToSchema)]
#[allow(dead_code)]
pub struct App {
    /// Enable or disable this app without deleting it. If omitted, treated as enabled (true).
    #[schema(default = true)]
    pub enabled: Option<bool>,
    /// App id.
    pub id: String,
    /// Session name.
    pub session: String,
    /// App type.
    #[schema(value_type = String)]
    pub app: AppKind,
    /// App configuration.
    #[schema(value_type = Object)]
    pub config: serde_json::Value,
}

/// The app types of WAHA.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// ChatWoot.
    Chatwoot,
    /// Calls.
    Calls,
    /// MCP.
    Mcp,
}

impl AppKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::Chatwoot => "chatwoot",
            Self::Calls => "calls",
            Self::Mcp => "mcp",
        }
    }
}

impl HasSession for App {
    fn session(&self) -> Option<&str> {
        Some(&self.session)
    }
}

/// `?session=` of the app list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct AppsQuery {
    /// Session name to list apps for
    #[param(example = "default")]
    pub session: String,
}

fn app_not_found(id: &str) -> ApiError {
    ApiError::Http {
        status: StatusCode::NOT_FOUND,
        message: format!("App '{id}' not found"),
    }
}

fn app_not_run(kind: AppKind) -> ApiError {
    ApiError::unprocessable(format!(
        "App '{}' is not supported by wharf: it runs no apps",
        kind.as_str()
    ))
}

/// List all apps for a session
#[utoipa::path(
    operation_id = "AppsController_list",
    tag = "🧩 Apps",
    params(AppsQuery),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/apps")]
pub async fn apps_list(
    state: web::Data<AppState>,
    query: super::Query<AppsQuery>,
) -> Result<HttpResponse, ApiError> {
    state.manager.get(&query.0.session).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!([])))
}

/// Create a new app
#[utoipa::path(
    operation_id = "AppsController_create",
    tag = "🧩 Apps",
    request_body = App,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/apps")]
pub async fn apps_create(body: Body<App>) -> Result<HttpResponse, ApiError> {
    Err(app_not_run(body.0.app))
}

/// Get app by ID
#[utoipa::path(
    operation_id = "AppsController_get",
    tag = "🧩 Apps",
    params(("id" = String, Path)),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[get("/api/apps/{id}")]
pub async fn apps_get(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Err(app_not_found(&path))
}

/// Update an existing app
#[utoipa::path(
    operation_id = "AppsController_update",
    tag = "🧩 Apps",
    params(("id" = String, Path)),
    request_body = App,
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[put("/api/apps/{id}")]
pub async fn apps_update(
    path: web::Path<String>,
    _body: Body<App>,
) -> Result<HttpResponse, ApiError> {
    Err(app_not_found(&path))
}

/// Delete an app
#[utoipa::path(
    operation_id = "AppsController_delete",
    tag = "🧩 Apps",
    params(("id" = String, Path)),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/apps/{id}")]
pub async fn apps_delete(path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    Err(app_not_found(&path))
}

/// MCP server endpoint (the MCP app).
#[utoipa::path(
    operation_id = "McpController_post",
    tag = "🧩 Apps",
    responses((status = 201, description = ""))
)]
#[post("/mcp")]
pub async fn mcp() -> Result<HttpResponse, ApiError> {
    Err(ApiError::unprocessable(
        "App 'mcp' is not supported by wharf: it runs no apps",
    ))
}

/// Registers these routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(screenshot)
        .service(passkey_challenge)
        .service(passkey_submit)
        .service(passkey_confirmation)
        .service(passkey_confirm)
        .service(debug_cpu)
        .service(debug_heapsnapshot)
        .service(debug_browser_trace)
        .service(apps_list)
        .service(apps_create)
        .service(apps_get)
        .service(apps_update)
        .service(apps_delete)
        .service(mcp);
}
