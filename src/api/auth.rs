//! API-key authentication (`../shared/reference/waha.md` §3.2) and the principal it yields.
//!
//! Owns: who is calling. Runs as middleware on every request, before routing. The admin key
//! comes from `WAHA_API_KEY`; the [`Principal`] enum is where session-scoped keys and JWT
//! session tokens will plug in. Public: `GET /ping`, Swagger UI and the spec, and every
//! path matched by `WAHA_API_KEY_EXCLUDE_PATH`.

use actix_web::{
    HttpMessage,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use super::{ApiError, AppState};
use crate::config::ApiKey;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin key (or auth disabled): everything is allowed.
    Admin,
    /// A public or excluded path; no key was checked.
    Anonymous,
}

impl Principal {
    /// Whether this principal may act on `session`. Scoped keys will narrow this.
    pub fn can_access_session(&self, _session: &str) -> bool {
        matches!(self, Self::Admin | Self::Anonymous)
    }
}

/// The key presented: header `X-Api-Key` (any case) wins over query `x-api-key`.
fn presented_key(req: &ServiceRequest) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key") {
        return v.to_str().ok().map(str::to_string);
    }
    web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()?
        .into_inner()
        .into_iter()
        .find(|(k, _)| k == "x-api-key")
        .map(|(_, v)| v)
}

fn is_public(path: &str) -> bool {
    // WAHA: /ping has no security (2025.11.1). Swagger UI and its spec use their own login in
    // WAHA (not the API key); wharf serves them openly — they contain no secrets.
    path == "/ping"
        // The WebSocket checks its `x-api-key` itself and closes with 1008 (WAHA §6).
        || path == "/ws"
        || path == "/"
        || path == "/-json"
        || path.starts_with("/swagger-ui")
        || path.starts_with("/favicon-")
        || matches!(
            path,
            "/index.css"
                | "/index.html"
                | "/swagger-initializer.js"
                | "/oauth2-redirect.html"
                | "/oauth2-redirect.js"
        )
}

/// Middleware: attaches a [`Principal`] or answers WAHA's 401.
pub async fn authenticate(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<AppState>>().cloned() else {
        return Err(ApiError::Internal("application state missing".into()).into());
    };
    let path = req.path();
    let excluded = state
        .config
        .api_key_exclude
        .iter()
        .any(|re| re.is_match(path.trim_start_matches('/')));
    let principal = if matches!(state.config.api_key, ApiKey::Disabled) {
        Principal::Admin
    } else if is_public(path) || excluded {
        Principal::Anonymous
    } else {
        match presented_key(&req) {
            Some(key) if state.config.api_key.matches(&key) => Principal::Admin,
            _ => return Err(ApiError::Unauthorized.into()),
        }
    };
    req.extensions_mut().insert(principal);
    next.call(req).await
}
