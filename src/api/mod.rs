//! The HTTP surface: WAHA's routes, one file per WAHA tag, plus the shared plumbing.
//!
//! Owns: [`AppState`] (what handlers reach), the JSON body extractor that renders WAHA's
//! 400/413 bodies, the API-key middleware, the 500 rewriter, the default 404 and Swagger UI.
//! `app::App::build` calls [`build_app`] once per actix worker; handlers stay thin: parse,
//! call `sessions::`/`store::`, map the result.

pub mod auth;
pub mod chats;
pub mod chatting;
pub mod contacts;
pub mod error;
pub mod observability;
pub mod pairing;
pub mod sessions;
pub mod webhooks;
pub mod websocket;

use std::{future::Future, pin::Pin, sync::Arc};

use actix_web::{
    FromRequest, HttpRequest, HttpResponse, Responder,
    body::MessageBody,
    dev::{Payload, ServiceRequest, ServiceResponse},
    http::header,
    middleware::Next,
    web,
};
use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use tokio_util::sync::CancellationToken;
use utoipa::OpenApi;
use utoipa_actix_web::AppExt;

pub use self::error::ApiError;
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
    /// Startup configuration.
    pub config: Arc<Config>,
    /// Process start, ms since epoch (`/api/server/status`).
    pub started_at_ms: i64,
    /// Cancelled by `POST /api/server/stop`; `app` then shuts down gracefully.
    pub stop: CancellationToken,
}

/// A JSON request body, parsed like NestJS's `ValidationPipe`: syntax errors are a 400 with
/// a string message, shape errors a 400 with a `message` array, bodies over 50 MB a 413.
/// An empty body is `{}` (Nest sees an empty object when no JSON was sent).
pub struct Body<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Body<T> {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(_req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let mut payload = payload.take();
        Box::pin(async move {
            let mut buf = web::BytesMut::new();
            while let Some(chunk) = payload.next().await {
                let chunk = chunk.map_err(|e| ApiError::bad_request(e.to_string()))?;
                if buf.len() + chunk.len() > BODY_LIMIT {
                    return Err(ApiError::payload_too_large());
                }
                buf.extend_from_slice(&chunk);
            }
            let value: serde_json::Value = if buf.iter().all(u8::is_ascii_whitespace) {
                serde_json::Value::Object(serde_json::Map::new())
            } else {
                serde_json::from_slice(&buf)
                    .map_err(|e| ApiError::bad_request(format!("Unexpected token in JSON: {e}")))?
            };
            parse_value(value).map(Body)
        })
    }
}

/// Deserializes a JSON value into `T`, turning serde's error into class-validator's wording.
///
/// # Errors
/// [`ApiError::Validation`] naming the offending property.
pub fn parse_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    if !value.is_object() {
        return Err(ApiError::Validation(vec!["body must be an object".into()]));
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        // class-validator writes `config.webhooks.0.url`, serde `config.webhooks[0].url`.
        let path = e.path().to_string().replace('[', ".").replace(']', "");
        let inner = e.into_inner().to_string();
        ApiError::Validation(vec![validation_message(&path, &inner)])
    })
}

/// class-validator-style phrasing for the common serde failures (`name must be a string`).
fn validation_message(path: &str, serde_msg: &str) -> String {
    if let Some(field) = serde_msg
        .strip_prefix("missing field `")
        .and_then(|s| s.split('`').next())
    {
        let full = if path == "." || path.is_empty() {
            field.to_string()
        } else {
            format!("{path}.{field}")
        };
        return format!("{full} should not be empty");
    }
    let expected = serde_msg.split("expected ").nth(1).unwrap_or("");
    let kind = if expected.starts_with("a string") {
        "must be a string"
    } else if expected.starts_with("a boolean") {
        "must be a boolean value"
    } else if expected.starts_with("a sequence") {
        "must be an array"
    } else if expected.contains("number")
        || expected.contains("integer")
        || expected.starts_with("f64")
        || expected.starts_with("u")
        || expected.starts_with("i")
    {
        "must be a number conforming to the specified constraints"
    } else if expected.starts_with("struct") || expected.starts_with("a map") {
        "must be an object"
    } else if serde_msg.starts_with("unknown variant") {
        let values: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
        return format!(
            "{path} must be one of the following values: {}",
            values.join(", ")
        );
    } else {
        return format!("{path}: {serde_msg}");
    };
    format!("{path} {kind}")
}

/// The WORKING gate of chatting/chats routes: WAHA's exact 422 bodies otherwise
/// (`Session "x" does not exist` for an unknown one, the status body for the rest).
///
/// # Errors
/// [`ApiError::SessionNotExist`] or [`ApiError::SessionStatus`] with `expected: ["WORKING"]`.
pub async fn require_working(state: &AppState, session: &str) -> Result<(), ApiError> {
    use crate::sessions::status::SessionStatus;
    let status = state.manager.status_of(session);
    if status == SessionStatus::Working {
        return Ok(());
    }
    match state.manager.get(session).await {
        Err(crate::sessions::Error::NotFound(_)) => {
            Err(ApiError::SessionNotExist(session.to_string()))
        }
        Err(e) => Err(e.into()),
        Ok(_) => Err(ApiError::SessionStatus {
            session: session.to_string(),
            status,
            expected: vec![SessionStatus::Working],
        }),
    }
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
        .openapi(crate::openapi::ApiDoc::openapi())
        .configure(routes)
        .split_for_parts();
    let spec = crate::openapi::finish(spec);
    let swagger_config = Arc::new(utoipa_swagger_ui::Config::from("/-json"));
    let mut app = app
        .app_data(state)
        .app_data(web::Data::new(spec))
        .app_data(
            web::QueryConfig::default()
                .error_handler(|e, _| ApiError::Validation(vec![e.to_string()]).into()),
        )
        .app_data(
            web::PathConfig::default()
                .error_handler(|e, _| ApiError::bad_request(e.to_string()).into()),
        )
        .route("/-json", web::get().to(openapi_json))
        .route("/ws", web::get().to(websocket::route));
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
        .wrap(actix_web::middleware::from_fn(auth::authenticate))
        .wrap(actix_web::middleware::from_fn(rewrite_internal_errors))
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
    chats::routes(cfg);
    contacts::routes(cfg);
    webhooks::routes(cfg);
    observability::routes(cfg);
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
