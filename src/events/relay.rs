//! Cluster mode: an event envelope that crossed from the worker running its session to
//! another worker's `/ws` clients (worker-to-worker fan-out, issue 15 item 4).
//!
//! Owns: [`Relayed`] (the envelope's routing fields and its exact JSON bytes) and the
//! peer stream's line format. Produced by `cluster::fanout` (one task per peer, reading
//! that peer's `GET /api/cluster/events`), handed to [`super::EventBus::relay`] and read by
//! every local `/ws` client (`api::websocket`); each lives as long as the clients holding
//! it. A relayed envelope is never written to the outbox nor sent on to other peers: the
//! worker that runs a session delivers its webhooks and serves its events to its peers,
//! so each event reaches a `/ws` client exactly once.

use std::time::Duration;

use serde::Deserialize;

/// How often a peer stream carries a keep-alive line when no event is due; a subscriber
/// that hears nothing for three of these reconnects.
pub const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The query string of a peer stream of `engine.event` only (see `api::peer_events`).
pub const ENGINE_QUERY: &str = "engine=1";

/// One envelope received from a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// The session it belongs to (for the client's filters).
    pub session: String,
    /// The event name (for the client's filters).
    pub event: String,
    /// The envelope JSON, byte for byte as the owner serialized it.
    pub json: String,
}

#[derive(Deserialize)]
struct Head {
    session: String,
    event: String,
}

impl Relayed {
    /// Reads one line of a peer stream: an envelope JSON, or `None` for a keep-alive (an
    /// empty line) or anything that is not an envelope.
    pub fn from_line(line: &str) -> Option<Self> {
        let line = line.trim();
        if line.is_empty() {
            return None;
        }
        let head: Head = serde_json::from_str(line).ok()?;
        Some(Self {
            session: head.session,
            event: head.event,
            json: line.to_string(),
        })
    }
}

/// The line a peer stream carries for `json` (an envelope never contains a raw newline:
/// JSON escapes it inside strings).
pub fn line(json: &str) -> String {
    format!("{json}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_round_trip_and_keep_alives_are_skipped() {
        let json = r#"{"id":"evt_1","event":"message","session":"a","payload":{"body":"x\ny"}}"#;
        let l = line(json);
        assert_eq!(l.matches('\n').count(), 1);
        let r = Relayed::from_line(&l).expect("envelope");
        assert_eq!((r.session.as_str(), r.event.as_str()), ("a", "message"));
        assert_eq!(r.json, json);
        assert_eq!(Relayed::from_line("\n"), None);
        assert_eq!(Relayed::from_line("not json"), None);
    }
}
