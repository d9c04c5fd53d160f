//! Invite links: the group's code (get, or reset to revoke the old one),
//! group info by code without joining (`join-info`), and joining by code,
//! which makes a join request instead when the group needs approval.
//!
//! Called by [`super::iq`] with the network lock held; stateless itself.

use wacore_binary::{Jid, Node};

use super::{announce, forbidden, group_node, members, participant_nodes};
use crate::state::{DevKey, Member, State, random_token};
use crate::wire::{B, attr, iq_error, iq_result};

/// `<invite/>` to a group: `get` answers the code, `set` replaces it (the
/// old link stops working) and tells the members with `<revoke/>`. Admins
/// only, as on WhatsApp (no `member_link_mode` in the mock).
pub(super) fn link(st: &mut State, me: &DevKey, gid: &str, n: &Node, reset: bool) -> Node {
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    if !reset {
        let code = g.invite.clone();
        return iq_result(n, vec![B::new("invite").a("code", code).build()]);
    }
    let old = std::mem::replace(&mut g.invite, random_token(11));
    let code = g.invite.clone();
    st.invites.remove(&old);
    st.invites.insert(code.clone(), gid.to_string());
    announce(st, gid, Some(&me.0), vec![B::new("revoke").build()]);
    iq_result(n, vec![B::new("invite").a("code", code).build()])
}

/// `<invite code/>` to `g.us`: `get` is join-info (the group's info, not
/// joined); `set` joins. An unknown or revoked code is 404 `item-not-found`.
pub(super) fn by_code(st: &mut State, me: &DevKey, n: &Node, inv: &Node) -> Node {
    let code = attr(inv, "code").unwrap_or_default();
    let Some(gid) = st.invites.get(&code).cloned() else {
        return iq_error(n, 404, "item-not-found");
    };
    let Some(g) = st.groups.get(&gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if attr(n, "type").as_deref() == Some("get") {
        return iq_result(n, vec![group_node(st, &gid, g)]);
    }
    let gj = Jid::group(gid.clone());
    if g.member(&me.0).is_some() {
        return iq_result(n, vec![B::new("group").a("jid", gj).build()]);
    }
    if g.membership_approval {
        members::request_join(st, me, &gid);
        return iq_result(
            n,
            vec![B::new("membership_approval_request").a("jid", gj).build()],
        );
    }
    if let Some(g) = st.groups.get_mut(&gid) {
        g.requests.retain(|r| r.phone != me.0);
        g.members.push(Member {
            phone: me.0.clone(),
            admin: false,
        });
    }
    let me_list = [me.0.clone()];
    let joined = participant_nodes(st, &gid, &me_list);
    announce(
        st,
        &gid,
        Some(&me.0),
        vec![B::new("add").a("reason", "invite").kids(joined).build()],
    );
    iq_result(n, vec![B::new("group").a("jid", gj).build()])
}
