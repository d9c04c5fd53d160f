//! `POST /api/cluster/claim`: a peer asks this worker to claim now (cluster mode only, not
//! a WAHA operation, not in the OpenAPI document).
//!
//! Owns nothing: it wakes this worker's lease loop (`SessionManager::wake_lease_loop`),
//! whose next round — at once rather than up to a tick later — claims what is placed
//! here. The only caller is a draining peer (`cluster::nudge`) right after it released a
//! session it placed on this worker, which cuts the time the session runs nowhere.
//!
//! Access: the API-key middleware lets the path through (`auth::is_public`) and this
//! handler demands a valid `X-Wharf-Cluster` credential for this request line, answering
//! WAHA's 401 without one and 404 outside cluster mode. It claims nothing itself: the
//! lease loop decides, as on any tick.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState};
use crate::cluster::{nudge::CLAIM_PATH, peer};

/// The path peers call.
pub const PATH: &str = CLAIM_PATH;

/// The actix handler.
pub async fn route(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(cluster) = &state.config.cluster else {
        return super::not_found_response(&req);
    };
    let verdict = req
        .headers()
        .get(peer::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|h| cluster.peer.verify(h, "POST", PATH));
    match verdict {
        Some(Ok(worker)) => {
            tracing::debug!(peer = worker, "a peer asks for a claim round now");
            state.manager.wake_lease_loop();
            HttpResponse::NoContent().finish()
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "refused a peer claim request");
            actix_web::ResponseError::error_response(&ApiError::Unauthorized)
        }
        None => actix_web::ResponseError::error_response(&ApiError::Unauthorized),
    }
}
