//! The WhatsApp engine boundary: the only module that will name whatsapp-rust types.
//!
//! Owns: turning a session's stored credentials into a live WhatsApp Web multi-device
//! connection and reporting what happens as [`EngineEvent`]s. Called by the per-session
//! runtime (`sessions::runtime`), once per start; [`run`] lives as long as the connection.
//!
//! This build has no engine wired in yet (the whatsapp-rust integration is its own issue):
//! [`run`] returns [`Error::Unavailable`] at once, so a started session ends in `FAILED`
//! with that reason instead of hanging in `STARTING` forever.

use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::sessions::config::{MeInfo, SessionConfig};

/// Everything the engine needs to run one session.
#[derive(Debug, Clone)]
pub struct StartSpec {
    /// Session name.
    pub session: String,
    /// The session's config (proxy, client name…).
    pub config: Option<SessionConfig>,
    /// WhatsApp websocket override (`WHARF_WA_URL`, mock-network builds only).
    pub wa_url: Option<String>,
}

/// What the engine reports to the session runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Show this QR code (raw string) for `timeout`.
    QrCode {
        /// The raw QR payload.
        code: String,
        /// How long it is valid.
        timeout: Duration,
    },
    /// A pairing code was issued for a phone number.
    PairingCode {
        /// `ABCD-EFGH`.
        code: String,
    },
    /// Logged in and connected as `me`.
    Connected {
        /// The account.
        me: MeInfo,
    },
    /// Unexpected socket loss; the engine reconnects by itself.
    Disconnected,
    /// Every QR expired unscanned.
    QrExhausted,
    /// Unlinked from the phone or credentials rejected.
    LoggedOut {
        /// Why, for the status data.
        reason: String,
    },
    /// Another connection replaced this one.
    StreamReplaced,
}

/// Engine failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// This build has no WhatsApp engine.
    #[error("the WhatsApp engine is not available in this build")]
    Unavailable,
}

/// Runs one session until it ends or `cancel` fires, sending events to `events`.
///
/// # Errors
/// [`Error::Unavailable`] in this build.
///
/// # Cancel safety
/// Dropping the future drops the connection without logging out.
pub async fn run(
    spec: StartSpec,
    events: mpsc::Sender<EngineEvent>,
    cancel: CancellationToken,
) -> Result<(), Error> {
    let _ = (spec, events, cancel);
    Err(Error::Unavailable)
}
