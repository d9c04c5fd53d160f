//! Authentication (`../shared/reference/waha.md` §3.2) and the one place scopes are
//! enforced.
//!
//! Owns: who is calling ([`Principal`]) and whether they may call this route for this
//! session. Runs as middleware on every request, before the handler:
//! 1. the credential — header `X-Api-Key` (any case), else query `x-api-key`, else
//!    `Authorization: Bearer <JWT>` — becomes a [`Principal`]: the admin key
//!    (`WAHA_API_KEY`) or an admin key from the store → [`Principal::Admin`]; a session key
//!    from the store or a JWT session token (`keys::jwt`) → [`Principal::Session`]; a
//!    public or `WAHA_API_KEY_EXCLUDE_PATH` path → [`Principal::Anonymous`]; anything else
//!    → WAHA's 401;
//! 2. the route's rule from [`super::scopes`] (looked up by method and route pattern) is
//!    applied to a session principal: admin-only routes and routes without a rule → WAHA's
//!    403; a session named by the path or the query is checked here; one named by the JSON
//!    body is checked by the [`super::Body`] extractor when it parses the body (the rule is
//!    handed over in the request's extensions as a [`BodyScope`]).
//!
//! No cache: a stored key is looked up on every request (one indexed read), so revoking
//! or deactivating it takes effect at once.

use std::future::{Ready, ready};

use actix_web::{
    FromRequest, HttpMessage, HttpRequest,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    middleware::Next,
    web,
};

use super::{
    ApiError, AppState,
    scopes::{self, Rule, Source},
};
use crate::{
    config::ApiKey,
    keys::{self, Action, Grant},
    store::KeyActions,
};

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin key, an admin key from the store, or auth disabled: everything is allowed.
    Admin,
    /// A session key or a JWT session token: only its session(s), only its actions.
    Session {
        /// The sessions it may use (one for a key; one or more for a token).
        sessions: Vec<String>,
        /// What it may do there.
        actions: KeyActions,
    },
    /// A public or excluded path; no key was checked.
    Anonymous,
}

impl Principal {
    /// Whether this principal may do `action` on `session`. `action: None` asks only that
    /// the session is the principal's own (WAHA lets even a media key with no actions
    /// download its session's files).
    pub fn can(&self, session: &str, action: Option<Action>) -> bool {
        match self {
            Self::Admin | Self::Anonymous => true,
            Self::Session { sessions, actions } => {
                sessions.iter().any(|s| s == session)
                    && action.is_none_or(|a| keys::allows(actions, a))
            }
        }
    }

    /// The sessions a listing may show: `None` = all.
    pub fn visible_sessions(&self) -> Option<&[String]> {
        match self {
            Self::Admin | Self::Anonymous => None,
            Self::Session { sessions, .. } => Some(sessions),
        }
    }
}

/// The caller, as a handler argument (the middleware always attaches one).
pub struct Caller(pub Principal);

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .map(Caller)
                .ok_or_else(|| ApiError::Internal("no principal attached".into())),
        )
    }
}

/// A scope check the JSON body must pass (see the module doc): the body's `field` names
/// the session (absent: `"default"`), on which the principal needs `action`.
#[derive(Debug, Clone)]
pub struct BodyScope {
    /// The principal to check.
    pub principal: Principal,
    /// Body field naming the session.
    pub field: &'static str,
    /// The action.
    pub action: Option<Action>,
}

impl BodyScope {
    /// Checks a parsed body.
    ///
    /// # Errors
    /// WAHA's 403.
    pub fn check(&self, body: &serde_json::Value) -> Result<(), ApiError> {
        let session = body
            .get(self.field)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("default");
        if self.principal.can(session, self.action) {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        }
    }
}

/// The credential presented: header `X-Api-Key` (any case) wins over query `x-api-key`,
/// then `Authorization: Bearer`.
fn presented_key(req: &ServiceRequest) -> Option<String> {
    if let Some(v) = req.headers().get("x-api-key") {
        return v.to_str().ok().map(str::to_string);
    }
    let from_query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .ok()
        .and_then(|q| {
            q.into_inner()
                .into_iter()
                .find(|(k, _)| k == "x-api-key")
                .map(|(_, v)| v)
        });
    if from_query.is_some() {
        return from_query;
    }
    let auth = req.headers().get("authorization")?.to_str().ok()?;
    let (scheme, token) = auth.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// What a credential grants: `None` = nobody (401).
///
/// # Errors
/// A store failure (500).
pub async fn resolve(state: &AppState, credential: &str) -> Result<Option<Principal>, ApiError> {
    if state.config.api_key.matches(credential) {
        return Ok(Some(Principal::Admin));
    }
    if let Some(jwt) = &state.jwt
        && crate::keys::jwt::looks_like_jwt(credential)
    {
        return Ok(jwt.verify(credential).map(|g| Principal::Session {
            sessions: g.sessions,
            actions: g.actions,
        }));
    }
    Ok(state
        .keys
        .resolve(credential)
        .await?
        .map(|grant| match grant {
            Grant::Admin => Principal::Admin,
            Grant::Session { session, actions } => Principal::Session {
                sessions: vec![session],
                actions,
            },
        }))
}

fn is_public(path: &str) -> bool {
    // WAHA: /ping has no security (2025.11.1). Swagger UI and its spec use their own login in
    // WAHA (not the API key); wharf serves them openly — they contain no secrets.
    path == "/ping"
        // The WebSocket checks its `x-api-key` itself and closes with 1008 (WAHA §6).
        || path == "/ws"
        // Peers' event stream checks the cluster credential itself (`api::peer_events`).
        || path == super::peer_events::PATH
        // So does a peer's claim request (`api::peer_claim`).
        || path == super::peer_claim::PATH
        // The dashboard checks its own Basic login (`api::dashboard`), as in WAHA.
        || path == "/dashboard"
        || path.starts_with("/dashboard/")
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

/// Middleware: attaches a [`Principal`], applies the route's scope rule, or answers WAHA's
/// 401/403.
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
        let Some(credential) = presented_key(&req) else {
            return Err(ApiError::Unauthorized.into());
        };
        match resolve(&state, &credential).await? {
            Some(p) => p,
            None => return Err(ApiError::Unauthorized.into()),
        }
    };
    if matches!(principal, Principal::Session { .. }) {
        enforce(&req, &principal)?;
    }
    req.extensions_mut().insert(principal);
    next.call(req).await
}

/// Applies the route's rule to a session principal (see the module doc).
fn enforce(req: &ServiceRequest, principal: &Principal) -> Result<(), ApiError> {
    // No route matches the path at all: the default service answers WAHA's 404.
    if req.match_pattern().is_none() {
        return Ok(());
    }
    let method = req.method().as_str();
    let Some((pattern, rule)) = scopes::rule_for_request(method, req.path()) else {
        // Deny by default; `tests/e2e/isolation.rs` fails for such a route.
        tracing::error!(
            method,
            path = req.path(),
            "route has no scope rule (src/api/scopes.rs)"
        );
        return Err(ApiError::Forbidden);
    };
    let (from, action) = match rule {
        Rule::Public | Rule::Listing => return Ok(()),
        Rule::Admin => return Err(ApiError::Forbidden),
        Rule::Session { from, action } => (from, action),
    };
    let session = match from {
        Source::Path => scopes::path_session(pattern, req.path()),
        Source::Segment(i) => req
            .path()
            .trim_start_matches('/')
            .split('/')
            .nth(i)
            .map(str::to_string),
        Source::Query => Some(query_session(req.query_string())),
        Source::Body(field) => {
            req.extensions_mut().insert(BodyScope {
                principal: principal.clone(),
                field,
                action,
            });
            return Ok(());
        }
    };
    match session {
        Some(session) if principal.can(&session, action) => Ok(()),
        Some(_) | None => Err(ApiError::Forbidden),
    }
}

/// `?session=` (last non-empty value), else `"default"` — what the handlers read.
pub(super) fn query_session(query: &str) -> String {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|(k, v)| k == "session" && !v.is_empty())
        .map_or_else(|| "default".to_string(), |(_, v)| v)
}
