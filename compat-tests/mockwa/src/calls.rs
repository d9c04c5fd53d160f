//! Calls: the admin API makes a mock phone ring a user (`<call><offer>` to every device
//! of the callee), lets the callee's phone answer or decline it, and records what the
//! callee's devices send back (`<call><reject>` / `<accept>`).
//!
//! A device's reject or accept is relayed like the real server does: to the caller's
//! devices and to the callee's other devices, so every client involved sees the call
//! end. The phone answering through the admin API is the callee's primary device, so its
//! `<accept>` / `<reject>` goes to all of the callee's companions (and the caller's).
//!
//! Called by [`crate::proto`] for `<call>` stanzas (no lock held) and by the admin layer
//! (`POST /admin/calls`, `GET /admin/calls/{id}`, `POST /admin/calls/{id}/accept|reject`).
//! Calls live as long as the network.

use serde::{Deserialize, Serialize};
use wacore_binary::Node;

use crate::admin::AdminError;
use crate::conn::{Conn, Flow};
use crate::state::{DevKey, Net, State, now, random_token};
use crate::wire::{B, attr, children, device_jid_string, pn_jid};

/// One call placed through the admin API.
pub(crate) struct Call {
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) video: bool,
    pub(crate) state: &'static str,
    /// The device (JID) that answered or declined, `None` while ringing.
    pub(crate) by: Option<String>,
}

/// `POST /admin/calls` body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceCall {
    /// Caller phone (digits; created if new).
    pub from: String,
    /// Callee phone (digits; must exist).
    pub to: String,
    /// A video call.
    #[serde(default)]
    pub video: bool,
}

/// A call as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CallState {
    /// Call id (`call-id`).
    pub id: String,
    /// Caller phone.
    pub from: String,
    /// Callee phone.
    pub to: String,
    /// A video call.
    pub video: bool,
    /// `ringing`, `accepted` or `rejected`.
    pub state: String,
    /// The device JID that accepted or rejected it.
    pub by: Option<String>,
}

fn view(id: &str, c: &Call) -> CallState {
    CallState {
        id: id.to_string(),
        from: c.from.clone(),
        to: c.to.clone(),
        video: c.video,
        state: c.state.to_string(),
        by: c.by.clone(),
    }
}

fn digits(field: &str, phone: &str) -> Result<(), AdminError> {
    if (5..=20).contains(&phone.len()) && phone.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AdminError::BadRequest(format!(
            "{field} must be 5-20 digits, got {phone:?}"
        )))
    }
}

/// Rings every device of `to` with an offer from `from`'s phone.
pub(crate) fn place(net: &Net, req: &PlaceCall) -> Result<CallState, AdminError> {
    digits("from", &req.from)?;
    digits("to", &req.to)?;
    let mut st = net.lock();
    if !st.phones.contains_key(&req.to) {
        return Err(AdminError::NotFound(format!("unknown phone {}", req.to)));
    }
    st.ensure_phone(&req.from, "");
    let id = random_token(16).to_uppercase();
    let caller = pn_jid(&req.from, 0);
    let mut offer = B::new("offer")
        .a("call-id", id.clone())
        .a("call-creator", caller.clone());
    if req.video {
        offer = offer.kids([B::new("video").build()]);
    }
    let notify = st
        .phones
        .get(&req.from)
        .map(|p| p.push_name.clone())
        .unwrap_or_default();
    let mut call = B::new("call")
        .a("from", caller)
        .a("id", random_token(8).to_uppercase())
        .a("t", now().to_string());
    if !notify.is_empty() {
        call = call.a("notify", notify);
    }
    let node = call.kids([offer.build()]).build();
    st.deliver_to_phone(&req.to, None, &node);
    let c = Call {
        from: req.from.clone(),
        to: req.to.clone(),
        video: req.video,
        state: "ringing",
        by: None,
    };
    let out = view(&id, &c);
    st.calls.insert(id, c);
    Ok(out)
}

/// The call `id`.
pub(crate) fn get(net: &Net, id: &str) -> Result<CallState, AdminError> {
    let st = net.lock();
    st.calls
        .get(id)
        .map(|c| view(id, c))
        .ok_or_else(|| AdminError::NotFound(format!("unknown call {id}")))
}

/// The callee's phone accepts or declines the call `id`.
pub(crate) fn answer(net: &Net, id: &str, accept: bool) -> Result<CallState, AdminError> {
    let mut st = net.lock();
    let Some(call) = st.calls.get(id) else {
        return Err(AdminError::NotFound(format!("unknown call {id}")));
    };
    if call.state != "ringing" {
        return Err(AdminError::BadRequest(format!(
            "call {id} is {}",
            call.state
        )));
    }
    let (from, to) = (call.from.clone(), call.to.clone());
    let by = device_jid_string(&to, 0);
    relay(&mut st, id, &from, &to, None, accept);
    let call = st.calls.get_mut(id).expect("checked above");
    call.state = if accept { "accepted" } else { "rejected" };
    call.by = Some(by);
    Ok(view(id, call))
}

/// Sends `<call from=callee><accept|reject/></call>` to the caller's devices and the
/// callee's devices other than `skip`.
fn relay(
    st: &mut State,
    id: &str,
    caller: &str,
    callee: &str,
    skip: Option<&DevKey>,
    accept: bool,
) {
    let action = B::new(if accept { "accept" } else { "reject" })
        .a("call-id", id.to_string())
        .a("call-creator", pn_jid(caller, 0))
        .build();
    let node = B::new("call")
        .a("from", pn_jid(callee, 0))
        .a("id", random_token(8).to_uppercase())
        .a("t", now().to_string())
        .kids([action])
        .build();
    st.deliver_to_phone(caller, None, &node);
    st.deliver_to_phone(callee, skip, &node);
}

/// A `<call>` a device sent: a `<reject>` or `<accept>` of a call we placed is recorded
/// and relayed; anything else (offers between clients, transport) is ignored.
pub(crate) fn stanza(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::default();
    };
    let Some((accept, call_id)) = children(n).iter().find_map(|k| {
        let accept = match k.tag.as_ref() {
            "accept" => true,
            "reject" => false,
            _ => return None,
        };
        Some((accept, attr(k, "call-id")?))
    }) else {
        return Flow::default();
    };
    let mut st = c.net.lock();
    let Some(call) = st.calls.get(&call_id) else {
        return Flow::default();
    };
    if call.state != "ringing" || call.to != me.0 {
        return Flow::default();
    }
    let (from, to) = (call.from.clone(), call.to.clone());
    relay(&mut st, &call_id, &from, &to, Some(&me), accept);
    if let Some(call) = st.calls.get_mut(&call_id) {
        call.state = if accept { "accepted" } else { "rejected" };
        call.by = Some(device_jid_string(&me.0, me.1));
    }
    Flow::default()
}

impl crate::MockNetwork {
    /// Makes `from`'s phone call `to` (every device of `to` rings).
    pub fn place_call(&self, call: &PlaceCall) -> Result<CallState, AdminError> {
        place(&self.net, call)
    }

    /// The call `id` as the mock saw it.
    pub fn call(&self, id: &str) -> Result<CallState, AdminError> {
        get(&self.net, id)
    }

    /// The callee's phone accepts (`true`) or declines the call `id`.
    pub fn answer_call(&self, id: &str, accept: bool) -> Result<CallState, AdminError> {
        answer(&self.net, id, accept)
    }
}
