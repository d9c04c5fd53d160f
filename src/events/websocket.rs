//! Who gets what on WAHA's WebSocket stream (`../shared/reference/waha.md` §6): a
//! client's [`Subscription`] (its key, sessions and events) and the filter applied to
//! every envelope.
//!
//! Owns: the subscription rules only — no transport. `api::websocket` (the actix `/ws`
//! handler) decodes the query string, builds a [`Subscription`] per client and asks it
//! about every envelope of [`super::EventBus::subscribe`]; it lives as long as that
//! client's connection.

use super::webhook_wants;

/// What a client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subscription {
    /// `x-api-key` (any case of the parameter name).
    pub key: Option<String>,
    /// Session names, or `*`.
    pub sessions: Vec<String>,
    /// Event names, or `*`.
    pub events: Vec<String>,
}

impl Subscription {
    /// Reads the decoded query parameters: `session` and `events` are repeatable and/or
    /// comma-separated (default `*`), `x-api-key` matches in any case.
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let list = |name: &str| {
            let v: Vec<String> = pairs
                .iter()
                .filter(|(k, _)| k == name)
                .flat_map(|(_, v)| v.split(','))
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if v.is_empty() {
                vec!["*".to_string()]
            } else {
                v
            }
        };
        Self {
            key: pairs
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("x-api-key"))
                .map(|(_, v)| v.clone()),
            sessions: list("session"),
            events: list("events"),
        }
    }

    /// Whether `envelope` goes to this client.
    pub fn wants(&self, session: &str, event: &str) -> bool {
        self.sessions.iter().any(|s| s == "*" || s == session) && webhook_wants(&self.events, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect()
    }

    #[test]
    fn filters_by_session_and_event() {
        let s = Subscription::from_pairs(&pairs(&[
            ("X-Api-Key", "k"),
            ("session", "a, b"),
            ("events", "message"),
            ("events", "session.status,engine.event"),
        ]));
        assert_eq!(s.key.as_deref(), Some("k"));
        assert_eq!(s.sessions, ["a", "b"]);
        assert_eq!(s.events, ["message", "session.status", "engine.event"]);
        assert!(s.wants("b", "engine.event"));
        assert!(!s.wants("c", "message"));
        let d = Subscription::from_pairs(&[]);
        assert_eq!(
            (d.key, d.sessions, d.events),
            (None, vec!["*".into()], vec!["*".into()])
        );
    }
}
