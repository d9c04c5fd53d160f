//! Calls: rejecting one (`POST /api/{session}/calls/reject`) and publishing the
//! `call.received` / `call.accepted` / `call.rejected` events.
//!
//! Owns: nothing long-lived. [`SessionManager::reject_call`] borrows a live
//! [`engine::Session`] for one call (from `api/calls.rs`); [`Inbox::call`] runs on the
//! session's delivery task, in order with the session's other inbound traffic. Never
//! imports actix.

use serde_json::{Map, Value, json};

use super::{Result, SessionManager, inbox::Inbox};
use crate::{
    engine::{
        self,
        calls::{CallKind, CallSignal},
    },
    model::{
        events::{CallData, Event},
        session::MeInfo,
    },
};

impl SessionManager {
    /// Rejects the call `id` from `from`.
    ///
    /// # Errors
    /// Bad input or the stanza could not be sent.
    pub async fn reject_call(&self, engine: &engine::Session, from: &str, id: &str) -> Result<()> {
        Ok(engine.reject_call(from, id).await?)
    }
}

/// WAHA's `CallData`. `from` is always the caller, so the three events of one call name
/// the same contact; `_data` carries the stanza's own fields in the GOWS engine's names.
fn call_data(c: &CallSignal) -> CallData {
    let mut data = Map::new();
    data.insert("CallID".into(), json!(c.id));
    data.insert("From".into(), json!(c.from));
    data.insert("CallCreator".into(), json!(c.creator));
    data.insert("Timestamp".into(), json!(c.timestamp));
    data.insert("Offline".into(), Value::Bool(c.offline));
    CallData {
        id: c.id.clone(),
        from: c.creator.clone(),
        timestamp: c.timestamp,
        is_video: c.is_video,
        is_group: c.is_group,
        data,
    }
}

impl Inbox {
    /// `call.received`, `call.accepted` or `call.rejected`.
    pub async fn call(&self, me: Option<&MeInfo>, c: CallSignal) {
        let payload = call_data(&c);
        let event = match c.kind {
            CallKind::Received => Event::CallReceived(payload),
            CallKind::Accepted => Event::CallAccepted(payload),
            CallKind::Rejected => Event::CallRejected(payload),
        };
        self.publish(me, event).await;
    }
}
