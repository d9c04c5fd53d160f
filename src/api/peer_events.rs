//! `GET /api/cluster/events`: this worker's event stream for its peers (cluster mode only,
//! not a WAHA operation, not in the OpenAPI document).
//!
//! Owns: one streaming response per subscribed peer, from the request until the peer
//! disconnects, this worker lags too far behind (the peer reconnects), or the bus stops
//! (`EventBus::stopping`, the same token that closes `/ws` clients on shutdown).
//! `cluster::fanout` on the other workers is the only caller. The body is NDJSON: an empty
//! line at once (the peer knows it is subscribed from then on) and every
//! [`crate::events::relay::KEEP_ALIVE`], and one envelope per line (`events::relay::line`)
//! of every event published *on this worker* — never one relayed from elsewhere, so an
//! event crosses at most one hop and reaches each `/ws` client once. `?engine=1` streams
//! only `engine.event` (and makes this worker's sessions render it while open); without
//! it, every other event.
//!
//! Access: the API-key middleware lets the path through (`auth::is_public`) and this
//! handler demands a valid `X-Wharf-Cluster` credential for this very request line
//! (`cluster::peer`), answering WAHA's 401 without one and 404 outside cluster mode. Peers
//! see every session's events: the filtering by the client's key, sessions and events
//! happens on the worker the client is connected to (`api::websocket`).

use std::convert::Infallible;

use actix_web::{HttpRequest, HttpResponse, web};
use bytes::Bytes;
use tokio::sync::broadcast::error::RecvError;

use super::{ApiError, AppState};
use crate::{cluster::peer, events::relay};

/// The path peers subscribe to.
pub const PATH: &str = "/api/cluster/events";

/// The `X-Wharf-Cluster` credential of `req` checked for its method and request line:
/// `None` without one, else the signing worker or why it is refused. Shared by the
/// peer-only routes (this one and `peer_claim`).
pub(super) fn peer_verdict(
    req: &HttpRequest,
    credential: &peer::PeerCredential,
    method: &str,
) -> Option<Result<String, peer::PeerAuthError>> {
    let line = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path().to_string(), |p| p.as_str().to_string());
    req.headers()
        .get(peer::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|h| credential.verify(h, method, &line))
}

/// The actix handler.
pub async fn route(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let Some(cluster) = &state.config.cluster else {
        return super::not_found_response(&req);
    };
    let verdict = peer_verdict(&req, &cluster.peer, "GET");
    let peer = match verdict {
        Some(Ok(worker)) => worker,
        Some(Err(e)) => {
            tracing::warn!(error = %e, "refused a peer event subscription");
            return actix_web::ResponseError::error_response(&ApiError::Unauthorized);
        }
        None => return actix_web::ResponseError::error_response(&ApiError::Unauthorized),
    };
    // `?engine=1`: only `engine.event`, which sessions render while this is open; without
    // it, everything else (see `cluster::fanout`: two links per peer, never a duplicate).
    let engine = req.query_string() == relay::ENGINE_QUERY;
    tracing::info!(peer, engine, "peer subscribed to this worker's events");
    // Subscribed before the first byte goes out: once the peer reads it, nothing published
    // here is missed.
    let rx = state.events.subscribe();
    let stopping = state.events.stopping();
    let guard = engine.then(|| state.events.listen_engine_events());
    let state0 = (rx, stopping, guard, true);
    let body =
        futures_util::stream::unfold(state0, move |(mut rx, stopping, guard, first)| async move {
            if first {
                let next = (rx, stopping, guard, false);
                return Some((Ok::<_, Infallible>(Bytes::from_static(b"\n")), next));
            }
            let chunk = loop {
                tokio::select! {
                    () = stopping.cancelled() => return None,
                    r = tokio::time::timeout(relay::KEEP_ALIVE, rx.recv()) => match r {
                        Err(_) => break Bytes::from_static(b"\n"),
                        Ok(Ok(envelope)) => {
                            if (envelope.event == "engine.event") == engine {
                                break Bytes::from(relay::line(envelope.json()));
                            }
                        }
                        Ok(Err(RecvError::Lagged(n))) => {
                            // The peer reconnects; like a slow `/ws` client, it misses these.
                            tracing::warn!(missed = n, "peer event stream too slow; closing it");
                            return None;
                        }
                        Ok(Err(RecvError::Closed)) => return None,
                    },
                }
            };
            Some((Ok(chunk), (rx, stopping, guard, false)))
        });
    HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-store"))
        .streaming(body)
}
