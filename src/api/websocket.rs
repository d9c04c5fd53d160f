//! `GET /ws`: WAHA's WebSocket event stream (`../shared/reference/waha.md` §6).
//!
//! Owns: one actix-local task per connected client, from the handshake until either side
//! closes. `api::build_app` routes `/ws` to [`route`] outside the OpenAPI document (as
//! WAHA's gateway is). What a client receives is decided by the domain side,
//! [`crate::events::websocket::Subscription`]; this file is only the transport. Clients
//! subscribe with `?x-api-key=…&session=…&events=…`
//! (`session`/`events` repeatable and/or comma-separated, default `*`; `*` excludes
//! `engine.event`). Every text frame is the webhook envelope JSON; nothing is read from
//! the client but control frames.
//!
//! The API-key middleware lets `/ws` through (`api::auth::is_public`): as in WAHA, a bad
//! key still completes the handshake and is then closed with 1008 `Unauthorized`, which
//! browsers can observe (an HTTP 401 on the upgrade they cannot).
//!
//! Backpressure: each client reads from the bus's broadcast channel; one that falls
//! `events::WS_CHANNEL_CAPACITY` envelopes behind is disconnected (close 1013) instead
//! of slowing the publisher or the other clients. The heartbeat pings every
//! `ws_ping_interval` and drops a client that did not answer the previous ping. When the
//! bus stops (`EventBus::stopping`), every client is closed with 1001 so that actix's
//! graceful stop does not wait for these endless responses.

use std::{sync::Arc, time::Duration};

use actix_web::{HttpRequest, HttpResponse, web};
use actix_ws::{CloseCode, CloseReason, Message};
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use crate::{
    api::{AppState, auth},
    config::ApiKey,
    events::{Envelope, EventBus, relay::Relayed, websocket::Subscription},
    keys::Action,
};

/// Parses `/ws`'s query string into a [`Subscription`] (percent-decoding is actix's; an
/// unparsable query subscribes to the defaults).
pub fn subscription(query: &str) -> Subscription {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
        .map(web::Query::into_inner)
        .unwrap_or_default();
    Subscription::from_pairs(&pairs)
}

/// The actix handler of `GET /ws`.
///
/// # Errors
/// When the request is not a WebSocket upgrade (actix-ws answers 400).
pub async fn route(
    req: HttpRequest,
    body: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, actix_web::Error> {
    let mut sub = subscription(req.query_string());
    let verdict = authorize(&state, &mut sub).await;
    // Cluster mode: the events of sessions other workers run arrive through the fan-out.
    // Subscribed first, then the links to every live peer are opened (or found open), so
    // that from the handshake on nothing published anywhere in the cluster is missed.
    let relayed = match (&state.fanout, &verdict) {
        (Some(fanout), Ok(())) => {
            let rx = state.events.subscribe_relayed();
            let engine = sub
                .events
                .iter()
                .any(|e| e == "engine.event")
                .then(|| fanout.engine_client());
            fanout.ready(PEERS_READY_WITHIN).await;
            Some(Relay { rx, engine })
        }
        _ => None,
    };
    serve_with(&req, body, &state.events, sub, verdict, relayed)
}

/// A `/ws` client's share of the cluster fan-out: its subscription to relayed events and,
/// when it asked for `engine.event`, the guard that keeps the peers' engine links open.
struct Relay {
    rx: broadcast::Receiver<Arc<Relayed>>,
    engine: Option<crate::cluster::fanout::EngineClient>,
}

/// How long a `/ws` handshake waits for the peers' streams in cluster mode (a peer that
/// died but is still in the membership must not hold clients up longer).
const PEERS_READY_WITHIN: Duration = Duration::from_secs(3);

/// Checks the subscription's `x-api-key` (WAHA §6): `Err("Unauthorized")` for a missing or
/// unknown key; a session key (or JWT session token) has `session=*` narrowed to its own
/// session(s) and gets `Err("Forbidden")` for any other (it needs the `read` action:
/// events carry message content).
async fn authorize(state: &AppState, sub: &mut Subscription) -> Result<(), &'static str> {
    if matches!(state.config.api_key, ApiKey::Disabled) {
        return Ok(());
    }
    let key = sub.key.as_deref().ok_or("Unauthorized")?;
    let principal = match auth::resolve(state, key).await {
        Ok(Some(p)) => p,
        Ok(None) => return Err("Unauthorized"),
        Err(e) => {
            tracing::warn!(error = %e, "websocket: cannot check the key");
            return Err("Unauthorized");
        }
    };
    let Some(own) = principal.visible_sessions() else {
        return Ok(());
    };
    if sub.sessions.iter().any(|s| s == "*") {
        sub.sessions = own.to_vec();
    }
    if sub
        .sessions
        .iter()
        .all(|s| principal.can(s, Some(Action::Read)))
    {
        Ok(())
    } else {
        Err("Forbidden")
    }
}

/// Upgrades the connection and spawns the client's task on the actix worker; a refused
/// client (`verdict`) is closed at once with 1008 and the reason.
///
/// # Errors
/// When the request is not a WebSocket upgrade.
pub fn serve(
    req: &HttpRequest,
    body: web::Payload,
    bus: &EventBus,
    sub: Subscription,
    verdict: Result<(), &'static str>,
) -> Result<HttpResponse, actix_web::Error> {
    serve_with(req, body, bus, sub, verdict, None)
}

/// [`serve`], with the client's subscription to events relayed from other workers
/// (cluster mode; `None`: this worker's events only).
///
/// # Errors
/// When the request is not a WebSocket upgrade.
fn serve_with(
    req: &HttpRequest,
    body: web::Payload,
    bus: &EventBus,
    sub: Subscription,
    verdict: Result<(), &'static str>,
    relayed: Option<Relay>,
) -> Result<HttpResponse, actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(req, body)?;
    if let Err(reason) = verdict {
        actix_web::rt::spawn(async move {
            let _ = session
                .close(Some(CloseReason {
                    code: CloseCode::Policy,
                    description: Some(reason.into()),
                }))
                .await;
            drop(stream);
        });
        return Ok(response);
    }
    // Subscribe before answering, so nothing published after the handshake is missed.
    let rx = bus.subscribe();
    let ping = bus.settings().ws_ping_interval;
    // Sessions render `engine.event` only while someone asked for it by name.
    let engine_events = sub
        .events
        .iter()
        .any(|e| e == "engine.event")
        .then(|| bus.listen_engine_events());
    let stopping = bus.stopping();
    actix_web::rt::spawn(async move {
        let _engine_events = engine_events;
        let (relayed, _engine_links) = relayed.map_or((None, None), |r| (Some(r.rx), r.engine));
        client(session, stream, (rx, relayed), sub, ping, stopping).await;
    });
    Ok(response)
}

/// One connected client.
async fn client(
    mut session: actix_ws::Session,
    mut stream: actix_ws::MessageStream,
    (mut rx, mut relayed): (
        broadcast::Receiver<Arc<Envelope>>,
        Option<broadcast::Receiver<Arc<Relayed>>>,
    ),
    sub: Subscription,
    ping_every: Duration,
    stopping: CancellationToken,
) {
    // `interval` panics on a zero period.
    let ping_every = ping_every.max(Duration::from_millis(10));
    let mut heartbeat =
        tokio::time::interval_at(tokio::time::Instant::now() + ping_every, ping_every);
    // A task delayed past a tick (a loaded machine) must not fire the missed ticks back to
    // back: the second would find the first ping unanswered after microseconds and drop a
    // live client. Each ping gets a whole interval for its pong.
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut alive = true;
    let close = loop {
        tokio::select! {
            // WAHA closes its clients with 1001 on shutdown.
            () = stopping.cancelled() => break Some(CloseCode::Away.into()),
            received = rx.recv() => match received {
                Ok(envelope) => {
                    if sub.wants(&envelope.session, &envelope.event)
                        && session.text(envelope.json().to_string()).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "websocket client too slow; disconnecting");
                    break Some(CloseReason {
                        code: CloseCode::Again,
                        description: Some("Too slow; events were missed".into()),
                    });
                }
                // The bus is gone: the server is stopping (WAHA closes with 1001).
                Err(RecvError::Closed) => break Some(CloseCode::Away.into()),
            },
            received = next_relayed(&mut relayed) => match received {
                Ok(event) => {
                    if sub.wants(&event.session, &event.event)
                        && session.text(event.json.clone()).await.is_err()
                    {
                        return;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    tracing::info!(missed = n, "websocket client too slow; disconnecting");
                    break Some(CloseReason {
                        code: CloseCode::Again,
                        description: Some("Too slow; events were missed".into()),
                    });
                }
                Err(RecvError::Closed) => break Some(CloseCode::Away.into()),
            },
            _ = heartbeat.tick() => {
                if !alive {
                    tracing::debug!("websocket client missed a pong; disconnecting");
                    return;
                }
                alive = false;
                if session.ping(b"").await.is_err() {
                    return;
                }
            },
            msg = stream.recv() => match msg {
                Some(Ok(Message::Pong(_))) => alive = true,
                Some(Ok(Message::Ping(bytes))) => {
                    alive = true;
                    if session.pong(&bytes).await.is_err() {
                        return;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break None,
                // No client→server protocol (WAHA ignores messages too).
                Some(Ok(_)) => {}
            },
        }
    };
    let _ = session.close(close).await;
}

/// The next relayed envelope; pending forever without a relayed subscription.
async fn next_relayed(
    rx: &mut Option<broadcast::Receiver<Arc<Relayed>>>,
) -> Result<Arc<Relayed>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_accepts_repeated_and_comma_separated_filters() {
        let s = subscription(
            "X-Api-Key=k&session=a,b&events=message&events=session.status,engine.event",
        );
        assert_eq!(s.key.as_deref(), Some("k"));
        assert_eq!(s.sessions, ["a", "b"]);
        assert_eq!(s.events, ["message", "session.status", "engine.event"]);
        assert!(s.wants("a", "engine.event"));
        assert!(!s.wants("c", "message"));
        let d = subscription("");
        assert!(d.wants("x", "message") && !d.wants("x", "engine.event"));
    }
}
