//! WAHA's session status machine (`../shared/reference/waha.md` §1.1), as pure functions.
//!
//! Owns: which transition each runtime input causes. Called by the
//! per-session runtime (`sessions::runtime`); no I/O, no clocks — unit-tested in `tests.rs`.

use crate::model::session::SessionStatus;

/// What the engine (or the runtime's own timers) reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    /// The runtime was started (start, restart, boot).
    Start,
    /// A (new) QR code is shown; every rotation is a new `session.status` event.
    QrCode,
    /// A pairing code was issued (still waiting for the phone).
    PairingCode,
    /// Logged in and connected.
    Connected,
    /// The socket dropped unexpectedly; the engine reconnects by itself.
    Disconnected,
    /// All QR codes expired unscanned.
    QrExhausted,
    /// Unlinked from the phone or credentials rejected.
    LoggedOut,
    /// Another connection took over the session.
    StreamReplaced,
    /// Could not connect within the deadline, or the engine died.
    ConnectFailed,
    /// Stopped by the user or by shutdown.
    Stop,
}

/// The status after `input` in `current`, or `None` when the input changes nothing.
///
/// A QR rotation while already in `SCAN_QR_CODE` returns `Some(ScanQrCode)` on purpose:
/// WAHA emits a new `session.status` event for every QR (waha.md §1.1).
pub fn next(current: SessionStatus, input: &Input) -> Option<SessionStatus> {
    use SessionStatus as S;
    let to = match (current, input) {
        (_, Input::Stop) => S::Stopped,
        (S::Stopped | S::Failed, Input::Start) => S::Starting,
        (_, Input::Start) => return None,
        (S::Stopped, _) => return None,
        (S::Starting | S::ScanQrCode, Input::QrCode | Input::PairingCode) => S::ScanQrCode,
        (_, Input::QrCode | Input::PairingCode) => return None,
        (_, Input::Connected) => S::Working,
        (S::Working, Input::Disconnected) => S::Starting,
        (_, Input::Disconnected) => return None,
        (S::ScanQrCode, Input::QrExhausted) => S::Failed,
        (_, Input::QrExhausted) => return None,
        (_, Input::LoggedOut | Input::StreamReplaced | Input::ConnectFailed) => S::Failed,
    };
    (to != current || matches!(input, Input::QrCode)).then_some(to)
}

#[cfg(test)]
mod tests;
