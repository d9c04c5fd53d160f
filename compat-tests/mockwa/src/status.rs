//! Status (stories): a `<message to="status@broadcast">` goes to the poster's status
//! audience — every device a `<participants>` list of the poster ever named (the
//! contacts it chose, who received its sender key) — and to nobody else. Like the real
//! server, which knows the audience, the mock needs it because a later status carries
//! no `<participants>` when every recipient already has the sender key.
//!
//! Called by [`crate::proto`] for every message addressed to `status@broadcast`; the
//! audience lives in `State::status_audience` as long as the network (revokes are
//! statuses too).

use wacore_binary::Node;

use crate::state::{DevKey, State, now};
use crate::wire::{B, attr_jid, child, children, pn_jid};

/// Relays one status stanza from `me` to every listed device (never back to `me`).
/// Each device gets its own `<enc>` (the sender-key distribution, when there is one)
/// plus the shared `skmsg`, as `from="status@broadcast"` with the poster as
/// `participant` (its phone-number JID, as in groups).
pub(crate) fn fan_out(st: &mut State, me: &DevKey, n: &Node) {
    let notify = st
        .phones
        .get(&me.0)
        .map(|p| p.push_name.clone())
        .unwrap_or_default();
    let mut targets: Vec<(DevKey, Vec<Node>)> = Vec::new();
    if let Some(parts) = child(n, "participants") {
        for t in children(parts) {
            if let Some(j) = attr_jid(t, "jid")
                && let Some(p) = st.phone_of(&j)
            {
                let key = (p, j.device);
                if &key != me && !targets.iter().any(|(k, _)| k == &key) {
                    targets.push((key, children(t).to_vec()));
                }
            }
        }
    }
    let audience = st.status_audience.entry(me.0.clone()).or_default();
    for (key, _) in &targets {
        if !audience.contains(key) {
            audience.push(key.clone());
        }
    }
    for key in audience.clone() {
        if !targets.iter().any(|(k, _)| k == &key) {
            targets.push((key, Vec::new()));
        }
    }
    let shared: Vec<Node> = children(n)
        .iter()
        .filter(|k| k.tag != "participants" && k.tag != "meta")
        .cloned()
        .collect();
    let mut base = B::new("message");
    for (k, v) in n.attrs.iter() {
        // The poster is named by its phone number here, so the LID addressing mode of
        // the outgoing stanza does not apply to what recipients get.
        if k != "to" && k != "addressing_mode" {
            base = base.a(k.clone(), v.clone());
        }
    }
    let base = base
        .a("from", "status@broadcast")
        .a("participant", pn_jid(&me.0, me.1))
        .a("t", now().to_string())
        .a("notify", notify)
        .build();
    for (key, own) in targets {
        let mut kids = own;
        kids.extend(shared.iter().cloned());
        let mut m = base.clone();
        m.content = Some(wacore_binary::NodeContent::Nodes(kids));
        st.deliver(&key, m);
    }
}
