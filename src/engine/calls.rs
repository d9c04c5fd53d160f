//! Calls through the engine: whatsapp-rust's `<call>` signalling events translated to
//! [`CallSignal`]s, and rejecting an incoming call.
//!
//! Owns: [`signal`] (called by `engine::run`'s event handler for every
//! `Event::IncomingCall`: an `<offer>` is a call ringing, an `<accept>` / `<reject>` from
//! another device of ours or from the callee is that call answered or declined) and
//! [`Session::reject_call`] (called by `sessions` for `POST /api/{session}/calls/reject`
//! on the caller's task while the handle is live). wharf builds whatsapp-rust without its
//! `voip` feature: calls are only ever seen and rejected, never answered.

use whatsapp_rust::{CallError, prelude::*, wacore::types::call::CallAction};

use super::{
    Error, Session,
    messaging::{parse_chat, waha_id},
};

/// What a call stanza means for WAHA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// An offer: the call rings (`call.received`).
    Received,
    /// Someone picked up (`call.accepted`).
    Accepted,
    /// Someone declined (`call.rejected`).
    Rejected,
}

/// One call event.
#[derive(Debug, Clone, PartialEq)]
pub struct CallSignal {
    /// What happened.
    pub kind: CallKind,
    /// Call id.
    pub id: String,
    /// Who sent the stanza (WAHA id).
    pub from: String,
    /// Who started the call (WAHA id).
    pub creator: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// A video call (known from the offer only).
    pub is_video: bool,
    /// A group call.
    pub is_group: bool,
    /// The call was replayed from the offline queue.
    pub offline: bool,
}

/// The call event of an `Event::IncomingCall`, when it is one WAHA reports.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "Event and CallAction are non_exhaustive; only offer/accept/reject map"
)]
pub fn signal(event: &Event) -> Option<CallSignal> {
    let Event::IncomingCall(call) = event else {
        return None;
    };
    let (kind, is_video, is_group) = match &call.action {
        CallAction::Offer {
            is_video,
            group_jid,
            ..
        } => (CallKind::Received, *is_video, group_jid.is_some()),
        CallAction::OfferNotice {
            is_video, is_group, ..
        } => (CallKind::Received, *is_video, *is_group),
        CallAction::Accept { .. } => (CallKind::Accepted, false, false),
        // A `busy` reject speaks for one device that cannot take the call, not for the
        // person declining it.
        CallAction::Reject { reason, .. } if reason.as_deref() != Some("busy") => {
            (CallKind::Rejected, false, false)
        }
        _ => return None,
    };
    Some(CallSignal {
        kind,
        id: call.action.call_id().to_string(),
        from: waha_id(&call.from),
        creator: waha_id(call.action.call_creator()),
        timestamp: call.timestamp.timestamp(),
        is_video,
        is_group: is_group || call.group.is_some(),
        offline: call.offline,
    })
}

impl Session {
    /// Rejects the call `id` that `from` (a WAHA id or number) is making to us.
    ///
    /// # Errors
    /// Stale handle, an invalid `from` or empty id, or the stanza could not be sent.
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "CallError is non_exhaustive; the rest is a failed send"
    )]
    pub async fn reject_call(&self, from: &str, id: &str) -> Result<(), Error> {
        let client = self.client()?;
        let peer = parse_chat(from).ok_or_else(|| {
            Error::BadRequest(format!(
                "from must be a contact id like 123456789@c.us, got {from:?}"
            ))
        })?;
        // In a one-to-one call the caller is both the peer and the call's creator.
        client
            .voip()
            .reject_call(id, &peer, &peer)
            .await
            .map_err(|e| match e {
                CallError::EmptyCallId => Error::BadRequest("id should not be empty".into()),
                other => Error::Send(super::chain(&other)),
            })
    }
}
