//! Telling a peer to claim now: the hand-over call of a draining worker (issue 15, SIGTERM
//! drain).
//!
//! Owns the HTTP client of these calls (one pool for the process). Called by the drain
//! (`sessions::cluster`) once it has released a session it placed on `peer`: the peer's
//! `POST /api/cluster/claim?session=…` (`api::peer_claim`) wakes its lease loop, which
//! claims the sessions handed over at once (concurrently) instead of on its next tick (up
//! to 2 s later, one at a time). Best effort: a peer that does not answer still claims on
//! its next tick.

use std::{sync::LazyLock, time::Duration};

use super::peer::{HEADER, PeerCredential};

/// The peer route that wakes its lease loop (not a WAHA operation, not in the OpenAPI
/// document).
pub const CLAIM_PATH: &str = "/api/cluster/claim";

/// Short bounds: the call only wakes a loop, and a draining worker must not wait long.
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(1))
        .timeout(Duration::from_secs(2))
        // Peer URLs are internal: never through an `HTTP_PROXY` of the environment.
        .no_proxy()
        .build()
        .unwrap_or_else(|_| reqwest::Client::new())
});

/// Asks the worker at `base` to claim `session` (placed on it and released) now.
///
/// # Errors
/// The peer could not be reached or refused (it then claims on its next tick).
pub async fn claim_now(base: &str, cred: &PeerCredential, session: &str) -> Result<(), String> {
    // Built in a block: the serializer must not live across the await (it is not `Send`).
    let line = {
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("session", session);
        format!("{CLAIM_PATH}?{}", query.finish())
    };
    let res = CLIENT
        .post(format!("{base}{line}"))
        .header(HEADER, cred.sign("POST", &line))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("{}", res.status()))
    }
}
