//! `🖥️ Sessions`: `/api/sessions…` (waha.md §1.2), deprecated routes included.
//!
//! Thin handlers over [`crate::sessions::SessionManager`]; this file owns the WAHA DTOs
//! (`SessionInfo`, `SessionDTO`, requests) and the session-name rules.

use crate::egress::EgressError;
use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, AppState, Body, Query, auth::Caller, parse_value};
use crate::{
    model::{
        name::{self, NameProblem},
        session::{MeInfo, SessionConfig, SessionStatus},
    },
    sessions::SessionView,
};

/// WAHA's session-name pattern message (`src/nestjs/validation/SessionName.ts`).
const NAME_PATTERN_MESSAGE: &str = "Session name can only contain alphanumeric characters, hyphens, and underscores (a-z, A-Z, 0-9, -, _) or be empty";

/// `SessionInfo.timestamps`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SessionTimestamps {
    /// Last activity, ms, or null.
    pub activity: Option<i64>,
}

/// `App` (apps are not implemented: always an empty list with `expand=apps`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct App {
    /// App id.
    pub id: String,
    /// Session.
    pub session: String,
    /// `chatwoot`, `calls` or `mcp`.
    pub app: String,
    /// Enabled.
    #[serde(default)]
    pub enabled: Option<bool>,
    /// App config.
    pub config: serde_json::Value,
}

/// Engine details of `GET /api/sessions/{session}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EngineInfo {
    /// Reported engine name (`WHATSAPP_DEFAULT_ENGINE`, default GOWS).
    pub engine: String,
}

/// `SessionInfo`: list and get.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionInfo {
    /// Session name (id).
    #[schema(example = "default")]
    pub name: String,
    /// Status.
    #[schema(inline)]
    pub status: SessionStatus,
    /// Stored config (`{}` when none).
    pub config: SessionConfig,
    /// The account, or null.
    pub me: Option<MeInfo>,
    /// Session presence (always null for now).
    #[schema(value_type = Option<Object>)]
    pub presence: Option<serde_json::Value>,
    /// Timestamps.
    #[schema(inline)]
    pub timestamps: SessionTimestamps,
    /// Worker running the session.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assigned_worker: Option<String>,
    /// Apps, with `expand=apps`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub apps: Option<Vec<App>>,
    /// Engine details (`GET /api/sessions/{session}` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    pub engine: Option<EngineInfo>,
}

/// `SessionDTO`: answers of create/update/start/stop/logout/restart.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionDTO {
    /// Session name (id).
    #[schema(example = "default")]
    pub name: String,
    /// Status.
    #[schema(inline)]
    pub status: SessionStatus,
    /// Stored config (`{}` when none).
    pub config: SessionConfig,
}

impl From<SessionView> for SessionDTO {
    fn from(v: SessionView) -> Self {
        Self {
            name: v.name,
            status: v.status,
            config: v.config.unwrap_or_default(),
        }
    }
}

fn info(v: SessionView, expand_apps: bool, engine: Option<&str>) -> SessionInfo {
    SessionInfo {
        name: v.name,
        status: v.status,
        config: v.config.unwrap_or_default(),
        me: v.me,
        presence: None,
        timestamps: SessionTimestamps {
            activity: v.activity_ms,
        },
        assigned_worker: v.assigned_worker,
        apps: expand_apps.then(Vec::new),
        engine: engine.map(|e| EngineInfo {
            engine: e.to_string(),
        }),
    }
}

/// `SessionCreateRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionCreateRequest {
    /// Session name (id); generated when omitted or empty.
    #[serde(default)]
    #[schema(example = "default")]
    pub name: Option<String>,
    /// Apps to be synchronized for this session (not supported; must be empty).
    #[serde(default)]
    pub apps: Option<Vec<App>>,
    /// Start session after creation (default true).
    #[serde(default)]
    #[schema(example = true, default = true)]
    pub start: Option<bool>,
    /// Session config.
    #[serde(default)]
    pub config: Option<SessionConfig>,
}

/// `SessionUpdateRequest` (a full replace of the config).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionUpdateRequest {
    /// Apps (not supported; must be empty).
    #[serde(default)]
    pub apps: Option<Vec<App>>,
    /// The new config.
    #[serde(default)]
    pub config: Option<SessionConfig>,
}

/// `SessionStartDeprecatedRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionStartDeprecatedRequest {
    /// Session name (id).
    pub name: String,
    /// Session config.
    #[serde(default)]
    pub config: Option<SessionConfig>,
}

/// `SessionStopDeprecatedRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionStopDeprecatedRequest {
    /// Session name (id).
    pub name: String,
    /// Stop and logout (and delete) the session.
    #[serde(default)]
    pub logout: Option<bool>,
}

/// `SessionLogoutDeprecatedRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SessionLogoutDeprecatedRequest {
    /// Session name (id).
    pub name: String,
}

/// `expand` values (WAHA documents the array's items as this enum).
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SessionExpand {
    /// The session's apps.
    Apps,
}

/// Query of the list/get routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Return all sessions, including those that are in the STOPPED state.
    #[param(default = false, example = false)]
    pub all: Option<bool>,
    /// Expand additional session details.
    // Unknown values are ignored (as before), so the field is read as strings and
    // documented as WAHA's enum.
    #[param(inline, value_type = Option<Vec<SessionExpand>>)]
    pub expand: Option<Vec<String>>,
}

/// Query of `GET /api/sessions/{session}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GetQuery {
    /// Expand additional session details.
    // Unknown values are ignored (see `ListQuery`).
    #[param(inline, value_type = Option<Vec<SessionExpand>>)]
    pub expand: Option<Vec<String>>,
}

fn expands_apps(expand: Option<&[String]>) -> bool {
    expand.is_some_and(|e| e.iter().any(|p| p == "apps"))
}

/// Longest session name the store can hold (`model::name::max_len`).
fn name_max(state: &AppState) -> usize {
    let mongo_ns = state
        .config
        .mongo_url
        .is_some()
        .then_some(state.config.session_namespace.as_str());
    name::max_len(mongo_ns)
}

/// Validates a session name from a body (400 with WAHA's messages). The rule itself is
/// `model::name`'s; an empty name is allowed here because WAHA generates one.
fn validate_name(state: &AppState, name: &str) -> Result<(), ApiError> {
    let errors: Vec<String> = name::problems(name, name_max(state))
        .into_iter()
        .filter_map(|p| match p {
            NameProblem::Empty => None,
            NameProblem::TooLong { max } => Some(format!(
                "name must be shorter than or equal to {max} characters"
            )),
            NameProblem::Pattern => Some(NAME_PATTERN_MESSAGE.to_string()),
        })
        .collect();
    if errors.is_empty() && name::is_reserved(name) {
        return Err(ApiError::Validation(vec![format!(
            "name {name:?} is reserved: /api/{name}/... is a route of its own"
        )]));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

/// A session name from the path: anything the store could not hold is simply not found.
fn path_name(state: &AppState, name: &str) -> Result<String, ApiError> {
    // Reserved names are refused only when creating: a stored one stays reachable.
    if !name::problems(name, name_max(state)).is_empty() {
        return Err(ApiError::session_not_found());
    }
    Ok(name.to_string())
}

/// Checks class-validator would do on `SessionConfig` beyond types (WAHA's DTO decorators).
fn validate_config(state: &AppState, config: Option<&SessionConfig>) -> Result<(), ApiError> {
    let mut errors = Vec::new();
    if let Some(hooks) = config.and_then(|c| c.webhooks.as_ref()) {
        for (i, hook) in hooks.iter().enumerate() {
            // WAHA: @IsUrl({require_protocol: true, require_tld: false}).
            let rest = hook
                .url
                .strip_prefix("http://")
                .or_else(|| hook.url.strip_prefix("https://"));
            let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            let egress = state.config.egress.check_url(&hook.url);
            if host.is_none_or(|h| h.is_empty() || h.contains(char::is_whitespace))
                || matches!(egress, Err(EgressError::NotHttp))
            {
                errors.push(format!("config.webhooks.{i}.url must be a URL address"));
            } else if let Err(e) = egress {
                // wharf's addition: a metadata or link-local target is refused up front.
                errors.push(format!("config.webhooks.{i}.url: {e}"));
            }
        }
    }
    if let Some(proxy) = config.and_then(|c| c.proxy.as_ref()) {
        if proxy.server.trim().is_empty() {
            errors.push("config.proxy.server should not be empty".into());
        } else if crate::engine::proxy::Proxy::parse(proxy).is_err() {
            // wharf's addition: WAHA stores any string and fails at connect time.
            errors.push(
                "config.proxy.server must be host:port (or http://host:port, socks5://host:port)"
                    .into(),
            );
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn reject_apps(apps: Option<&Vec<App>>) -> Result<(), ApiError> {
    match apps {
        Some(list) if !list.is_empty() => Err(ApiError::unprocessable(
            "Apps are not supported by wharf yet.",
        )),
        _ => Ok(()),
    }
}

/// Generated name like WAHA's `generatePrefixedId`: `session_` + uuid4 hex.
fn generated_name() -> String {
    format!("session_{}", uuid::Uuid::new_v4().simple())
}

/// List all sessions
#[utoipa::path(
    operation_id = "SessionsController_list",
    tag = "🖥️ Sessions",
    params(ListQuery),
    responses((status = 200, description = "", body = Vec<SessionInfo>)),
    security(("api_key" = []))
)]
#[get("/api/sessions")]
pub async fn list_sessions(
    state: web::Data<AppState>,
    caller: Caller,
    query: Query<ListQuery>,
) -> Result<HttpResponse, ApiError> {
    let Query(query) = query;
    let all = query.all.unwrap_or(false);
    let apps = expands_apps(query.expand.as_deref());
    // A session key sees only its own session (WAHA): such answers are small and built
    // per call; the full listing is served from the cache while nothing changed.
    let own = caller.0.visible_sessions();
    let fingerprint = own
        .is_none()
        .then(|| state.manager.list_fingerprint())
        .flatten();
    if let Some(fp) = fingerprint
        && let Some(body) = state.sessions_list.get(fp, all, apps)
    {
        return Ok(json_bytes(body));
    }
    let mut views = state.manager.list(all).await?;
    if let Some(own) = own {
        views.retain(|v| own.contains(&v.name));
    }
    let body: Vec<SessionInfo> = views.into_iter().map(|v| info(v, apps, None)).collect();
    let body = web::Bytes::from(
        serde_json::to_vec(&body)
            .map_err(|e| ApiError::Internal(format!("cannot encode the sessions list: {e}")))?,
    );
    if let Some(fp) = fingerprint {
        state.sessions_list.put(fp, all, apps, body.clone());
    }
    Ok(json_bytes(body))
}

fn json_bytes(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// The last encoded `GET /api/sessions` answer per (`all`, `expand=apps`), with the
/// [`crate::sessions::SessionManager::list_fingerprint`] it was built under. Lives in
/// [`AppState`] for the process.
#[derive(Default)]
pub struct ListCache(std::sync::Mutex<std::collections::HashMap<(bool, bool), (u64, web::Bytes)>>);

impl ListCache {
    fn get(&self, fingerprint: u64, all: bool, apps: bool) -> Option<web::Bytes> {
        let map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&(all, apps))
            .filter(|(fp, _)| *fp == fingerprint)
            .map(|(_, body)| body.clone())
    }

    fn put(&self, fingerprint: u64, all: bool, apps: bool, body: web::Bytes) {
        let mut map = self.0.lock().unwrap_or_else(|p| p.into_inner());
        map.insert((all, apps), (fingerprint, body));
    }
}

/// Create a session
///
/// Create session a new session (and start it at the same time if required).
#[utoipa::path(
    operation_id = "SessionsController_create",
    tag = "🖥️ Sessions",
    request_body = SessionCreateRequest,
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions")]
pub async fn create_session(
    state: web::Data<AppState>,
    body: Body<serde_json::Value>,
) -> Result<HttpResponse, ApiError> {
    if let Some(name) = body.0.get("name")
        && !name.is_string()
        && !name.is_null()
    {
        return Err(ApiError::Validation(vec!["name must be a string".into()]));
    }
    let req: SessionCreateRequest = parse_value(body.0)?;
    reject_apps(req.apps.as_ref())?;
    validate_config(&state, req.config.as_ref())?;
    let name = match req.name.filter(|n| !n.is_empty()) {
        Some(n) => {
            validate_name(&state, &n)?;
            n
        }
        None => generated_name(),
    };
    let view = state
        .manager
        .create(&name, req.config, req.start.unwrap_or(true))
        .await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Get session information
#[utoipa::path(
    operation_id = "SessionsController_get",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name"), GetQuery),
    responses((status = 200, description = "", body = SessionInfo)),
    security(("api_key" = []))
)]
#[get("/api/sessions/{session}")]
pub async fn get_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
    query: Query<GetQuery>,
) -> Result<HttpResponse, ApiError> {
    let Query(query) = query;
    let name = path_name(&state, &path)?;
    let view = state.manager.get(&name).await?;
    let engine = state.config.engine.as_str();
    Ok(HttpResponse::Ok().json(info(
        view,
        expands_apps(query.expand.as_deref()),
        Some(engine),
    )))
}

/// Update a session
#[utoipa::path(
    operation_id = "SessionsController_update",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    request_body = SessionUpdateRequest,
    responses((status = 200, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[put("/api/sessions/{session}")]
pub async fn update_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
    body: Body<SessionUpdateRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    reject_apps(body.0.apps.as_ref())?;
    validate_config(&state, body.0.config.as_ref())?;
    let view = state.manager.update(&name, body.0.config).await?;
    Ok(HttpResponse::Ok().json(SessionDTO::from(view)))
}

/// Delete the session
///
/// Delete the session with the given name. Stop and logout as well. Idempotent operation.
#[utoipa::path(
    operation_id = "SessionsController_delete",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/sessions/{session}")]
pub async fn delete_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    // Idempotent: a name that cannot exist is already deleted.
    if let Ok(name) = path_name(&state, &path) {
        state.manager.delete(&name).await?;
    }
    Ok(HttpResponse::Ok().finish())
}

/// Get information about the authenticated account
#[utoipa::path(
    operation_id = "SessionsController_getMe",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    // null until the session has logged in.
    responses((status = 200, description = "", body = Option<MeInfo>)),
    security(("api_key" = []))
)]
#[get("/api/sessions/{session}/me")]
pub async fn get_me(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    let me = state.manager.me(&name).await?;
    Ok(HttpResponse::Ok().json(me))
}

/// Start the session
///
/// Start the session with the given name. The session must exist. Idempotent operation.
#[utoipa::path(
    operation_id = "SessionsController_start",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions/{session}/start")]
pub async fn start_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    let view = state.manager.start(&name).await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Stop the session
///
/// Stop the session with the given name. Idempotent operation.
#[utoipa::path(
    operation_id = "SessionsController_stop",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions/{session}/stop")]
pub async fn stop_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    let view = state.manager.stop(&name).await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Logout from the session
///
/// Logout the session, restart a session if it was not STOPPED
#[utoipa::path(
    operation_id = "SessionsController_logout",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions/{session}/logout")]
pub async fn logout_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    let view = state.manager.logout(&name).await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Restart the session
///
/// Restart the session with the given name.
#[utoipa::path(
    operation_id = "SessionsController_restart",
    tag = "🖥️ Sessions",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions/{session}/restart")]
pub async fn restart_session(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &path)?;
    let view = state.manager.restart(&name).await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Upsert and Start session
///
/// Create session (if not exists) or update a config (if exists) and start it.
#[utoipa::path(
    operation_id = "SessionsController_DEPRACATED_start",
    tag = "🖥️ Sessions",
    request_body = SessionStartDeprecatedRequest,
    responses((status = 201, description = "", body = SessionDTO)),
    security(("api_key" = []))
)]
#[post("/api/sessions/start")]
pub async fn deprecated_start(
    state: web::Data<AppState>,
    body: Body<SessionStartDeprecatedRequest>,
) -> Result<HttpResponse, ApiError> {
    validate_name(&state, &body.0.name)?;
    validate_config(&state, body.0.config.as_ref())?;
    if body.0.name.is_empty() {
        return Err(ApiError::Validation(vec![
            "name should not be empty".into(),
        ]));
    }
    let view = state
        .manager
        .upsert_and_start(&body.0.name, body.0.config)
        .await?;
    Ok(HttpResponse::Created().json(SessionDTO::from(view)))
}

/// Stop (and Logout if asked) session
#[utoipa::path(
    operation_id = "SessionsController_DEPRECATED_stop",
    tag = "🖥️ Sessions",
    request_body = SessionStopDeprecatedRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sessions/stop")]
pub async fn deprecated_stop(
    state: web::Data<AppState>,
    body: Body<SessionStopDeprecatedRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &body.0.name)?;
    if body.0.logout.unwrap_or(false) {
        state.manager.delete(&name).await?;
    } else {
        state.manager.stop(&name).await?;
    }
    Ok(HttpResponse::Created().finish())
}

/// Logout and Delete session.
#[utoipa::path(
    operation_id = "SessionsController_DEPRECATED_logout",
    tag = "🖥️ Sessions",
    request_body = SessionLogoutDeprecatedRequest,
    responses((status = 201, description = "")),
    security(("api_key" = []))
)]
#[post("/api/sessions/logout")]
pub async fn deprecated_logout(
    state: web::Data<AppState>,
    body: Body<SessionLogoutDeprecatedRequest>,
) -> Result<HttpResponse, ApiError> {
    let name = path_name(&state, &body.0.name)?;
    state.manager.delete(&name).await?;
    Ok(HttpResponse::Created().finish())
}

/// Registers this tag's routes. The deprecated fixed paths come before
/// `/api/sessions/{session}…` so `start`/`stop`/`logout` are never read as session names.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(deprecated_start)
        .service(deprecated_stop)
        .service(deprecated_logout)
        .service(list_sessions)
        .service(create_session)
        .service(get_session)
        .service(update_session)
        .service(delete_session)
        .service(get_me)
        .service(start_session)
        .service(stop_session)
        .service(logout_session)
        .service(restart_session);
}
