//! The HTTP surface: WAHA's routes, one file per WAHA tag, plus the shared plumbing.
//!
//! Owns: [`AppState`] (what handlers reach), the API-key middleware, the 500 rewriter, the
//! default 404 and Swagger UI; the extractors (body, query, the WORKING gate) live in
//! [`extract`]. `app::App::build` calls [`build_app`] once per actix worker; handlers stay
//! thin: parse (extractors), call `sessions::`/`store::`, map the result.

pub mod auth;
pub mod calls;
pub mod channel_search;
pub mod channels;
pub mod chat_actions;
pub mod chats;
pub mod chatting;
pub mod contacts;
pub mod dashboard;
pub mod error;
pub mod extract;
pub mod files;
pub mod forward;
pub mod groups;
pub mod keys;
pub mod labels;
pub mod lids;
pub mod observability;
pub mod openapi;
pub mod pairing;
pub mod peer_claim;
pub mod peer_events;
pub mod presence;
pub mod profile;
pub mod routing;
pub mod scopes;
pub mod sending;
pub mod sessions;
pub mod status;
pub mod unsupported;
pub mod webhooks;
pub mod websocket;

use std::sync::Arc;

use actix_web::{
    HttpRequest, HttpResponse, Responder,
    body::MessageBody,
    dev::{ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

pub use self::{
    error::ApiError,
    extract::{Body, HasSession, Query, Working, WorkingBody, WorkingQuery, parse_value},
};
use crate::{config::Config, sessions::SessionManager};

/// JSON bodies up to 50 MB, like WAHA's body-parser limit.
pub const BODY_LIMIT: usize = 50 * 1024 * 1024;

/// What every handler can reach (`web::Data<AppState>`).
pub struct AppState {
    /// The session registry.
    pub manager: SessionManager,
    /// Events: webhooks outbox, WebSocket fan-out, dead letters.
    pub events: crate::events::EventBus,
    /// Message history.
    pub messages: crate::messages::MessageStore,
    /// Media files (the files route).
    pub media: crate::media::MediaService,
    /// Startup configuration.
    pub config: Arc<Config>,
    /// Process start, ms since epoch (`/api/server/status`).
    pub started_at_ms: i64,
    /// Cancelled by `POST /api/server/stop`; `app` then shuts down gracefully.
    pub stop: CancellationToken,
    /// Stored API keys (`/api/keys`, scoped-key authentication).
    pub keys: crate::keys::Keys,
    /// JWT session tokens, when configured.
    pub jwt: Option<crate::keys::jwt::Verifier>,
    /// The encoded `GET /api/sessions` answers, reused while the sessions do not change.
    pub sessions_list: sessions::ListCache,
    /// The client for user-given media and link-preview URLs, under this app's egress policy
    /// (its own port included).
    pub media_http: reqwest::Client,
    /// Cluster mode: the worker-to-worker event fan-out feeding `/ws` (`None` otherwise).
    pub fanout: Option<crate::cluster::fanout::FanOut>,
}

/// Builds the actix app: WAHA routes (collected into the OpenAPI document), middleware,
/// Swagger UI, the default 404. Returns the app and the spec it serves at `/-json`.
pub fn build_app(
    state: web::Data<AppState>,
) -> actix_web::App<
    impl actix_web::dev::ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let swagger = state.config.swagger_enabled;
    let (app, spec) = actix_web::App::new()
        .into_utoipa_app()
        .openapi(self::openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    let spec = self::openapi::finish(spec);
    let table = routing::RouteTable::new(spec.paths.paths.keys().map(String::as_str).chain([
        "/ws",
        "/-json",
        "/metrics",
        peer_events::PATH,
        peer_claim::PATH,
    ]));
    let swagger_config = Arc::new(utoipa_swagger_ui::Config::from("/-json"));
    let mut app = app
        .app_data(state)
        .app_data(web::Data::new(spec))
        .app_data(web::Data::new(table))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::Validation(vec![e.to_string()]).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
        )
        .route("/-json", web::get().to(openapi_json))
        .route("/ws", web::get().to(websocket::route))
        // Cluster mode: peers' event subscriptions (not a WAHA operation).
        .route(peer_events::PATH, web::get().to(peer_events::route))
        // Cluster mode: a draining peer asks for a claim round now (not a WAHA operation).
        .route(peer_claim::PATH, web::post().to(peer_claim::route))
        .route("/metrics", web::get().to(observability::metrics))
        // WAHA's UI; Basic auth, not the API key; not an operation of the document.
        .configure(dashboard::configure)
        // Static files in WAHA, so not an operation of its OpenAPI document.
        .route(
            "/api/files/{session}/{file}",
            web::get().to(files::get_file),
        );
    if swagger {
        app = app
            .app_data(web::Data::new(swagger_config))
            .route("/", web::get().to(swagger_file))
            .route(
                "/{file:(index\\.html|index\\.css|swagger-ui[A-Za-z0-9._-]*|swagger-initializer\\.js|favicon-[0-9]+x[0-9]+\\.png|oauth2-redirect\\.(html|js))}",
                web::get().to(swagger_file),
            );
    }
    app.default_service(web::to(not_found))
        // Cluster mode: a session run by another worker is answered by it (after auth, so
        // an unauthenticated request never travels).
        .wrap(actix_web::middleware::from_fn(forward::forward))
        .wrap(actix_web::middleware::from_fn(auth::authenticate))
        .wrap(actix_web::middleware::from_fn(rewrite_internal_errors))
        // Sees the final status (after the 500 rewrite) and the matched route template.
        .wrap(actix_web::middleware::from_fn(record_metrics))
        // Before auth and routing: Express's trailing slash, letter case and HEAD.
        .wrap(actix_web::middleware::from_fn(routing::express_routing))
        // Outermost, so browser preflights (which carry no key) are answered before auth.
        // WAHA: `app.enableCors()` — every origin, `Access-Control-Allow-Origin: *`.
        .wrap(
            actix_cors::Cors::default()
                .allow_any_origin()
                .send_wildcard()
                .allow_any_method()
                .allow_any_header()
                .max_age(3600),
        )
}

/// Registers every WAHA route (the OpenAPI document is collected from these calls).
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    sessions::routes(cfg);
    pairing::routes(cfg);
    chatting::routes(cfg);
    sending::routes(cfg);
    chats::routes(cfg);
    chat_actions::routes(cfg);
    contacts::routes(cfg);
    groups::routes(cfg);
    profile::routes(cfg);
    presence::routes(cfg);
    calls::routes(cfg);
    labels::routes(cfg);
    webhooks::routes(cfg);
    keys::routes(cfg);
    observability::routes(cfg);
    unsupported::routes(cfg);
    status::routes(cfg);
    channel_search::routes(cfg);
    channels::routes(cfg);
}

async fn openapi_json(spec: web::Data<utoipa::openapi::OpenApi>) -> impl Responder {
    HttpResponse::Ok().json(spec.get_ref())
}

async fn swagger_file(
    req: HttpRequest,
    config: web::Data<Arc<utoipa_swagger_ui::Config<'static>>>,
) -> HttpResponse {
    let tail = req.match_info().get("file").unwrap_or("");
    match utoipa_swagger_ui::serve(tail, config.get_ref().clone()) {
        Ok(Some(file)) => {
            let mut res = HttpResponse::Ok();
            res.content_type(file.content_type);
            if file.gzpipped {
                res.insert_header((header::CONTENT_ENCODING, "gzip"));
            }
            res.body(file.bytes.to_vec())
        }
        Ok(None) => not_found_response(&req),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::Internal(e.to_string())),
    }
}

fn not_found_response(req: &HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::route_not_found(
        req.method().as_str(),
        req.path(),
    ))
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    not_found_response(&req)
}

/// Counts the request by method, route template (never the raw path: session names and
/// ids would make one series each) and status, with its latency.
async fn record_metrics(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let method = req.method().to_string();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_string());
    crate::metrics::global().http(
        &method,
        &route,
        res.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    Ok(res)
}

/// Rebuilds 500 bodies with the request's path, method and query (WAHA's
/// `AllExceptionsFilter` shape) — never the request body, never internals.
async fn rewrite_internal_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let res = next.call(req).await?;
    if res.status() != actix_web::http::StatusCode::INTERNAL_SERVER_ERROR {
        return Ok(res.map_into_boxed_body());
    }
    let marked = res.headers().contains_key(error::INTERNAL_MARKER);
    if !marked {
        // A 500 from somewhere else (a panic caught by actix, a library): same treatment.
        tracing::error!(path = res.request().path(), "unhandled 500");
    }
    let request = res.request().clone();
    let query: serde_json::Map<String, serde_json::Value> =
        web::Query::<Vec<(String, String)>>::from_query(request.query_string())
            .map(|q| {
                q.into_inner()
                    .into_iter()
                    // The key may have come in the query: never echo it (WAHA deletes it).
                    .filter(|(k, _)| !crate::redact::is_credential_param(k))
                    .map(|(k, v)| (k, serde_json::Value::String(v)))
                    .collect()
            })
            .unwrap_or_default();
    let version = request
        .app_data::<web::Data<AppState>>()
        .map(|s| observability::environment_info(&s.config))
        .map(|v| serde_json::to_value(v).unwrap_or_default())
        .unwrap_or_default();
    let body = error::internal_body(
        request.path(),
        request.method().as_str(),
        query.into(),
        version,
    );
    let response = HttpResponse::InternalServerError().json(body);
    Ok(ServiceResponse::new(request, response))
}
