//! Webhook dead letters (wharf extension, tag `🛟 wharf`): list and replay the events
//! whose delivery attempts were exhausted.
//!
//! WAHA drops such events after logging them; wharf keeps them in the session's outbox
//! (`events::outbox`). Registered by `api::routes` through `utoipa_actix_web`, so they
//! appear in the OpenAPI document; admin key required (the auth middleware).

use actix_web::{HttpResponse, get, post, web};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::events::{self, outbox::DeadLetter};

/// Answer of the replay routes.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReplayResult {
    /// How many dead letters went back to the delivery queue.
    #[schema(example = 2)]
    pub replayed: u64,
}

/// 404 `Session not found` unless `session` is stored.
async fn require_session(state: &AppState, session: &str) -> Result<(), ApiError> {
    state
        .manager
        .get(session)
        .await
        .map(|_| ())
        .map_err(ApiError::from)
}

fn event_error(e: events::Error) -> ApiError {
    match e {
        events::Error::NotFound(id) => ApiError::Http {
            status: actix_web::http::StatusCode::NOT_FOUND,
            message: format!("Dead letter {id} not found"),
        },
        other @ (events::Error::Outbox(_) | events::Error::Serialize(_)) => {
            ApiError::Internal(other.to_string())
        }
    }
}

/// List dead letters
///
/// Webhook events whose delivery attempts were exhausted, oldest first. wharf keeps them
/// (WAHA drops them); replay them once the receiver is fixed.
#[utoipa::path(
    operation_id = "WharfWebhooks_listDeadLetters",
    tag = "🛟 wharf",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 200, description = "", body = inline(Vec<DeadLetter>))),
    security(("api_key" = []))
)]
#[get("/api/wharf/sessions/{session}/dead-letters")]
pub async fn list_dead_letters(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = path.into_inner();
    require_session(&state, &session).await?;
    let dead = state
        .events
        .dead_letters(&session)
        .await
        .map_err(event_error)?;
    // The receiver is named, its credentials (userinfo, query tokens) are not.
    let dead: Vec<_> = dead
        .into_iter()
        .map(|mut d| {
            d.url = crate::redact::url(&d.url);
            d
        })
        .collect();
    Ok(HttpResponse::Ok().json(dead))
}

/// Replay all dead letters
///
/// Moves every dead letter of the session back to the delivery queue (attempts reset);
/// they are delivered in their original order.
#[utoipa::path(
    operation_id = "WharfWebhooks_replayAll",
    tag = "🛟 wharf",
    params(("session" = String, Path, description = "Session name")),
    responses((status = 201, description = "", body = inline(ReplayResult))),
    security(("api_key" = []))
)]
#[post("/api/wharf/sessions/{session}/dead-letters/replay")]
pub async fn replay_all(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = path.into_inner();
    require_session(&state, &session).await?;
    let replayed = state
        .events
        .replay(&session, None)
        .await
        .map_err(event_error)?;
    Ok(HttpResponse::Created().json(ReplayResult { replayed }))
}

/// Replay one dead letter
///
/// Moves the dead letter `id` back to the delivery queue (attempts reset).
#[utoipa::path(
    operation_id = "WharfWebhooks_replayOne",
    tag = "🛟 wharf",
    params(
        ("session" = String, Path, description = "Session name"),
        ("id" = i64, Path, description = "Dead letter id"),
    ),
    responses((status = 201, description = "", body = inline(ReplayResult))),
    security(("api_key" = []))
)]
#[post("/api/wharf/sessions/{session}/dead-letters/{id}/replay")]
pub async fn replay_one(
    state: web::Data<AppState>,
    path: web::Path<(String, i64)>,
) -> Result<HttpResponse, ApiError> {
    let (session, id) = path.into_inner();
    require_session(&state, &session).await?;
    let replayed = state
        .events
        .replay(&session, Some(id))
        .await
        .map_err(event_error)?;
    Ok(HttpResponse::Created().json(ReplayResult { replayed }))
}

/// Registers the dead-letter routes.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig<'_>) {
    cfg.service(list_dead_letters)
        .service(replay_all)
        .service(replay_one);
}
