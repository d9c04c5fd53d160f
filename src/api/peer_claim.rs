//! `POST /api/cluster/claim`: a peer asks this worker to claim now (cluster mode only, not
//! a WAHA operation, not in the OpenAPI document).
//!
//! Owns nothing: it hands `?session=` to this worker's lease loop
//! (`SessionManager::claim_soon`), which claims it at once (if it is still placed here)
//! rather than up to a tick later, and runs a round. The only caller is a draining peer
//! (`cluster::nudge`) right after it released a session it placed on this worker, which
//! cuts the time the session runs nowhere.
//!
//! Access: the API-key middleware lets the path through (`auth::is_public`) and this
//! handler demands a valid `X-Wharf-Cluster` credential for this request line, answering
//! WAHA's 401 without one and 404 outside cluster mode. It claims nothing itself: the
//! lease loop decides, as on any tick.

use actix_web::{HttpRequest, HttpResponse, web};

use super::{ApiError, AppState};
use crate::cluster::nudge::CLAIM_PATH;

/// The path peers call.
pub const PATH: &str = CLAIM_PATH;

/// The actix handler.
pub async fn route(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(cluster) = &state.config.cluster else {
        return super::not_found_response(&req);
    };
    let verdict = super::peer_events::peer_verdict(&req, &cluster.peer, "POST");
    match verdict {
        Some(Ok(worker)) => {
            let session = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
                .ok()
                .and_then(|q| q.into_inner().into_iter().find(|(k, _)| k == "session"))
                .map(|(_, v)| v);
            tracing::debug!(peer = worker, session, "a peer hands a session over");
            state.manager.claim_soon(session);
            HttpResponse::NoContent().finish()
        }
        Some(Err(e)) => {
            tracing::warn!(error = %e, "refused a peer claim request");
            actix_web::ResponseError::error_response(&ApiError::Unauthorized)
        }
        None => actix_web::ResponseError::error_response(&ApiError::Unauthorized),
    }
}
