//! `🔑 Api Keys`: `/api/keys…` (`../shared/reference/waha.md` §3.3), admin only, and
//! wharf's `POST /api/wharf/tokens` (mints a JWT session token).
//!
//! Thin handlers over [`crate::keys`] and the main store; this file owns the WAHA DTOs
//! (`ApiKeyDTO`, `ApiKeyRequest`, `ScopedApiKeyRequest`, `SessionActionsDTO`). The key
//! is shown in clear only in the answer that creates it (and by the idempotent
//! media/control routes, whose keys are derived, not stored); listings show
//! [`crate::keys::masked`] keys (a documented deviation: WAHA lists keys in clear).

use actix_web::{HttpResponse, delete, get, post, put, web};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, AppState, Body};
use crate::keys::{self, Derived, jwt};
use crate::store::{ApiKeyRecord, KeyActions};

/// `SessionActionsDTO`: what a session key may do.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(default)]
pub struct SessionActionsDTO {
    /// Read session data (messages, contacts, chats, groups, etc.)
    pub read: bool,
    /// Send messages and manage session entities (groups, labels, channels, contacts, profile)
    pub send: bool,
    /// Session lifecycle: start, stop, restart, logout, authenticate
    pub control: bool,
    /// Session config: update session settings
    pub setting: bool,
    /// Manage apps
    pub app: bool,
    /// Delete the session
    pub delete: bool,
}

impl From<KeyActions> for SessionActionsDTO {
    fn from(a: KeyActions) -> Self {
        Self {
            read: a.read,
            send: a.send,
            control: a.control,
            setting: a.setting,
            app: a.app,
            delete: a.delete,
        }
    }
}

impl From<SessionActionsDTO> for KeyActions {
    fn from(a: SessionActionsDTO) -> Self {
        Self {
            read: a.read,
            send: a.send,
            control: a.control,
            setting: a.setting,
            app: a.app,
            delete: a.delete,
        }
    }
}

/// `ApiKeyDTO`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyDTO {
    /// Key id.
    #[schema(example = "key_id_00000000000000000000000000")]
    pub id: String,
    /// The key: in clear only when created; masked (`key_1a2b3c4d…`) in listings.
    #[schema(example = "key_11111111111AAAAAAAAAAAAAAAAAAAAA")]
    pub key: String,
    /// Active.
    #[schema(example = true)]
    pub is_active: bool,
    /// Admin key.
    #[schema(example = false)]
    pub is_admin: bool,
    /// The session of a session key.
    #[schema(example = "default")]
    pub session: Option<String>,
    /// Actions of a session key (all but `delete` when created with null).
    pub actions: Option<SessionActionsDTO>,
}

impl ApiKeyDTO {
    fn new(r: &ApiKeyRecord, key: String) -> Self {
        Self {
            id: r.id.clone(),
            key,
            is_active: r.is_active,
            is_admin: r.is_admin,
            session: r.session.clone(),
            actions: if r.is_admin {
                None
            } else {
                Some(r.actions.unwrap_or(KeyActions::DEFAULT).into())
            },
        }
    }
    fn masked(r: &ApiKeyRecord) -> Self {
        Self::new(r, keys::masked(&r.key))
    }
}

fn default_true() -> bool {
    true
}

/// `ApiKeyRequest`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyRequest {
    /// Admin key (no session, no actions).
    #[serde(default)]
    #[schema(default = false, example = false)]
    pub is_admin: bool,
    /// The session of a session key.
    #[serde(default)]
    #[schema(default = json!(null), example = "default")]
    pub session: Option<String>,
    /// Active.
    #[serde(default = "default_true")]
    #[schema(default = true, example = true)]
    pub is_active: bool,
    /// Actions of a session key; null = all but `delete`; a missing member is `false`.
    #[serde(default)]
    #[schema(default = json!(null))]
    pub actions: Option<SessionActionsDTO>,
}

/// `ScopedApiKeyRequest`.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ScopedApiKeyRequest {
    /// Session name.
    #[schema(example = "default")]
    pub session: String,
}

/// Checks a request and returns (session, actions) of the record it describes.
async fn validate(
    state: &AppState,
    req: &ApiKeyRequest,
) -> Result<(Option<String>, Option<KeyActions>), ApiError> {
    if req.is_admin {
        let mut errors = Vec::new();
        if req.session.is_some() {
            errors.push("session must be null for an admin key".to_string());
        }
        if req.actions.is_some() {
            errors.push("actions are allowed only for session keys".to_string());
        }
        return if errors.is_empty() {
            Ok((None, None))
        } else {
            Err(ApiError::Validation(errors))
        };
    }
    let Some(session) = req.session.as_deref().filter(|s| !s.is_empty()) else {
        return Err(ApiError::Validation(vec![
            "session should not be empty for a non-admin key".into(),
        ]));
    };
    require_session(state, session).await?;
    Ok((Some(session.to_string()), req.actions.map(Into::into)))
}

/// 422 `Session "x" does not exist` unless `session` is stored.
async fn require_session(state: &AppState, session: &str) -> Result<(), ApiError> {
    match state.keys.store().get_session(session).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::SessionNotExist(session.to_string())),
    }
}

fn key_not_found() -> ApiError {
    ApiError::Http {
        status: actix_web::http::StatusCode::NOT_FOUND,
        message: "API key not found".into(),
    }
}

/// Get all API keys
#[utoipa::path(
    operation_id = "ApiKeysController_list",
    tag = "🔑 Api Keys",
    responses((status = 200, description = "", body = Vec<ApiKeyDTO>)),
    security(("api_key" = []))
)]
#[get("/api/keys")]
pub async fn list_keys(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let keys = state.keys.store().list_keys().await?;
    let body: Vec<ApiKeyDTO> = keys.iter().map(ApiKeyDTO::masked).collect();
    Ok(HttpResponse::Ok().json(body))
}

/// Create a new API key
#[utoipa::path(
    operation_id = "ApiKeysController_create",
    tag = "🔑 Api Keys",
    request_body = ApiKeyRequest,
    responses((status = 201, description = "", body = ApiKeyDTO)),
    security(("api_key" = []))
)]
#[post("/api/keys")]
pub async fn create_key(
    state: web::Data<AppState>,
    body: Body<ApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let (session, actions) = validate(&state, &body.0).await?;
    let (id, key) = keys::generate();
    let record = ApiKeyRecord {
        id,
        key: keys::stored_form(&key),
        is_active: body.0.is_active,
        is_admin: body.0.is_admin,
        session,
        actions: if body.0.is_admin {
            None
        } else {
            Some(actions.unwrap_or(KeyActions::DEFAULT))
        },
    };
    state.keys.store().insert_key(&record).await?;
    Ok(HttpResponse::Created().json(ApiKeyDTO::new(&record, key)))
}

/// Update an API key
#[utoipa::path(
    operation_id = "ApiKeysController_update",
    tag = "🔑 Api Keys",
    params(("id" = String, Path)),
    request_body = ApiKeyRequest,
    responses((status = 200, description = "", body = ApiKeyDTO)),
    security(("api_key" = []))
)]
#[put("/api/keys/{id}")]
pub async fn update_key(
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: Body<ApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    let Some(existing) = state.keys.store().get_key(&id).await? else {
        return Err(key_not_found());
    };
    let (session, actions) = validate(&state, &body.0).await?;
    let record = ApiKeyRecord {
        is_active: body.0.is_active,
        is_admin: body.0.is_admin,
        session,
        actions: if body.0.is_admin {
            None
        } else {
            Some(actions.unwrap_or(KeyActions::DEFAULT))
        },
        ..existing
    };
    state.keys.store().upsert_key(&record).await?;
    Ok(HttpResponse::Ok().json(ApiKeyDTO::masked(&record)))
}

/// Delete an API key
#[utoipa::path(
    operation_id = "ApiKeysController_delete",
    tag = "🔑 Api Keys",
    params(("id" = String, Path)),
    responses((status = 200, description = "")),
    security(("api_key" = []))
)]
#[delete("/api/keys/{id}")]
pub async fn delete_key(
    state: web::Data<AppState>,
    id: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    if !state.keys.store().delete_key(&id).await? {
        return Err(key_not_found());
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({ "result": true })))
}

async fn derived_key(
    state: &AppState,
    kind: Derived,
    session: &str,
) -> Result<HttpResponse, ApiError> {
    if session.is_empty() {
        return Err(ApiError::Validation(vec![
            "session should not be empty".into(),
        ]));
    }
    require_session(state, session).await?;
    let (id, key) = state.keys.derived(kind, session);
    let record = ApiKeyRecord {
        id,
        key: keys::stored_form(&key),
        is_active: true,
        is_admin: false,
        session: Some(session.to_string()),
        actions: Some(kind.actions()),
    };
    state.keys.store().upsert_key(&record).await?;
    Ok(HttpResponse::Created().json(ApiKeyDTO::new(&record, key)))
}

/// Create or get a media-download-only API key for a session
///
/// Idempotent: the same key every time (derived from the admin key, so rotating
/// `WAHA_API_KEY` rotates it; never stored in clear).
#[utoipa::path(
    operation_id = "ApiKeysController_media",
    tag = "🔑 Api Keys",
    request_body = ScopedApiKeyRequest,
    responses((status = 201, description = "", body = ApiKeyDTO)),
    security(("api_key" = []))
)]
#[post("/api/keys/media")]
pub async fn media_key(
    state: web::Data<AppState>,
    body: Body<ScopedApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    derived_key(&state, Derived::Media, &body.0.session).await
}

/// Create or get a control-only API key for a session
///
/// Idempotent, like the media key.
#[utoipa::path(
    operation_id = "ApiKeysController_control",
    tag = "🔑 Api Keys",
    request_body = ScopedApiKeyRequest,
    responses((status = 201, description = "", body = ApiKeyDTO)),
    security(("api_key" = []))
)]
#[post("/api/keys/control")]
pub async fn control_key(
    state: web::Data<AppState>,
    body: Body<ScopedApiKeyRequest>,
) -> Result<HttpResponse, ApiError> {
    derived_key(&state, Derived::Control, &body.0.session).await
}

/// `POST /api/wharf/tokens` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenRequest {
    /// The session the token is for.
    #[schema(example = "default")]
    pub session: String,
    /// Action names (`read, send, control, setting, app, delete`); absent = all but
    /// `delete`.
    #[serde(default)]
    pub actions: Option<Vec<String>>,
    /// Lifetime in seconds (1 … 86400).
    #[schema(example = 600)]
    pub ttl_seconds: u64,
}

/// `POST /api/wharf/tokens` answer.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    /// The JWT (HS256), for `Authorization: Bearer …`.
    pub token: String,
    /// Expiry, ISO 8601.
    #[schema(example = "2026-01-01T00:00:00.000Z")]
    pub expires_at: String,
}

/// Mint a session token
///
/// A short-lived JWT naming one session and its actions (wharf's addition). Needs
/// `WHARF_JWT_SECRET`: wharf signs with it (HS256).
#[utoipa::path(
    operation_id = "WharfTokens_create",
    tag = "🛟 wharf",
    request_body = inline(TokenRequest),
    responses((status = 201, description = "", body = inline(TokenResponse))),
    security(("api_key" = []))
)]
#[post("/api/wharf/tokens")]
pub async fn mint_token(
    state: web::Data<AppState>,
    body: Body<TokenRequest>,
) -> Result<HttpResponse, ApiError> {
    let req = body.0;
    let Some(verifier) = state.jwt.as_ref().filter(|v| v.can_mint()) else {
        return Err(ApiError::unprocessable(
            "wharf holds no JWT signing secret: set WHARF_JWT_SECRET",
        ));
    };
    if req.ttl_seconds == 0 || req.ttl_seconds > jwt::MAX_TTL_SECONDS {
        return Err(ApiError::Validation(vec![format!(
            "ttlSeconds must be between 1 and {}",
            jwt::MAX_TTL_SECONDS
        )]));
    }
    if let Some(names) = &req.actions
        && jwt::parse_actions(names).is_none()
    {
        return Err(ApiError::Validation(vec![
            "each value in actions must be one of the following values: read, send, control, setting, app, delete".into(),
        ]));
    }
    require_session(&state, &req.session).await?;
    let now = u64::try_from(crate::clock::now_s()).unwrap_or(0);
    let Some((token, exp)) = verifier.mint(&req.session, req.actions, now, req.ttl_seconds) else {
        return Err(ApiError::Internal("cannot sign the token".into()));
    };
    let expires_at = chrono::DateTime::from_timestamp(i64::try_from(exp).unwrap_or(0), 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    Ok(HttpResponse::Created().json(TokenResponse { token, expires_at }))
}

/// Registers this tag's routes; the fixed `media`/`control` paths come before `{id}`.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(media_key)
        .service(control_key)
        .service(list_keys)
        .service(create_key)
        .service(update_key)
        .service(delete_key)
        .service(mint_token);
}
