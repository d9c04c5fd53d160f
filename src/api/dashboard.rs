//! `/dashboard`: the operator UI (WAHA's path, `../shared/reference/waha.md` §10).
//!
//! Owns: serving the single-page dashboard — `index.html`, `app.js`, `app.css` under
//! `src/api/dashboard/`, compiled into the binary (no Node toolchain) — behind HTTP Basic
//! auth (`config::dashboard`), as WAHA protects its dashboard. `api::build_app` registers
//! [`configure`] outside the OpenAPI document (WAHA's spec has no dashboard operation);
//! the API-key middleware lets these paths through (`api::auth::is_public`) and this
//! module checks the Basic login itself. The page then talks to the REST API and `/ws`
//! with the API key the operator types in, like any other client.

use actix_web::{HttpRequest, HttpResponse, http::header, web};
use base64::Engine as _;

use super::{ApiError, AppState};
use crate::config::dashboard::BasicCredentials;

/// The realm browsers show in their login prompt.
const REALM: &str = "Basic realm=\"wharf dashboard\", charset=\"UTF-8\"";

/// Only the page's own origin: no CDN, no inline script; images from `blob:` (the QR
/// code is fetched with the API key and shown as an object URL).
const CSP: &str = "default-src 'self'; img-src 'self' blob: data:; connect-src 'self'; \
                   style-src 'self'; script-src 'self'; frame-ancestors 'none'; \
                   base-uri 'none'; form-action 'self'";

/// The embedded files: (name, content type, body).
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_str!("dashboard/index.html"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("dashboard/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("dashboard/app.css"),
    ),
];

/// Registers `/dashboard` and its assets (called once per worker by `api::build_app`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/dashboard", web::get().to(serve))
        .route("/dashboard/{file}", web::get().to(serve));
}

/// Whether the request carries the dashboard's Basic login.
fn authorized(req: &HttpRequest, credentials: &BasicCredentials) -> bool {
    let Some(value) = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return false;
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return false;
    }
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else {
        return false;
    };
    let Ok(decoded) = String::from_utf8(decoded) else {
        return false;
    };
    // RFC 7617: the user-id cannot contain a colon; the password can.
    decoded
        .split_once(':')
        .is_some_and(|(user, pass)| credentials.matches(user, pass))
}

/// Serves one dashboard file: 404 when disabled or unknown, 401 without the login.
async fn serve(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let not_found = || {
        actix_web::ResponseError::error_response(&ApiError::route_not_found(
            req.method().as_str(),
            req.path(),
        ))
    };
    let settings = &state.config.dashboard;
    if !settings.enabled {
        return not_found();
    }
    if let Some(credentials) = &settings.credentials
        && !authorized(&req, credentials)
    {
        let mut res = actix_web::ResponseError::error_response(&ApiError::Unauthorized);
        if let Ok(value) = header::HeaderValue::from_str(REALM) {
            res.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        return res;
    }
    // `/dashboard/event-monitor` is WAHA's deep link to the monitor: same page, which
    // scrolls to it.
    let name = match req.match_info().get("file") {
        None | Some("" | "index.html" | "event-monitor") => "index.html",
        Some(other) => other,
    };
    let Some((_, content_type, body)) = ASSETS.iter().find(|(n, _, _)| *n == name) else {
        return not_found();
    };
    HttpResponse::Ok()
        .content_type(*content_type)
        // Small files, changed with each release: always revalidate rather than serve a
        // stale script against a newer API.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(*body)
}
