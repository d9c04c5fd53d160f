//! Group membership: create, participants add/remove/promote/demote, leave
//! (with WhatsApp's admin succession and the end of an empty group), and the
//! join requests of groups that need admin approval.
//!
//! Called by [`super::iq`] with the network lock held; stateless itself.

use wacore_binary::Node;

use super::{
    announce, announce_admins, forbidden, gp2, group_node, participant_list, participant_nodes,
    to_phones,
};
use crate::state::{DevKey, Group, JoinRequest, Member, State, now, random_token};
use crate::wire::{B, attr, attr_jid, child, children, iq_error, iq_result, pn_jid};

/// Stores a new group under the next id; returns that id.
pub(super) fn insert(st: &mut State, g: Group) -> String {
    let id = st.next_group.to_string();
    st.next_group += 1;
    st.invites.insert(g.invite.clone(), id.clone());
    st.groups.insert(id.clone(), g);
    id
}

/// `<create subject>`: the creator is the first (super)admin; unknown
/// numbers are skipped. Settings sent with the create are honoured.
pub(super) fn create(st: &mut State, me: &DevKey, n: &Node, create: &Node) -> Node {
    let mut members = vec![Member {
        phone: me.0.clone(),
        admin: true,
    }];
    for (_, phone) in participant_list(create, st) {
        if let Some(p) = phone
            && !members.iter().any(|m| m.phone == p)
        {
            members.push(Member {
                phone: p,
                admin: false,
            });
        }
    }
    let subject = attr(create, "subject").unwrap_or_default();
    let mut g = Group::new(subject, &me.0, members, now());
    g.description = child(create, "description").and_then(|d| {
        let body = child(d, "body").and_then(crate::wire::text)?;
        Some((attr(d, "id").unwrap_or_else(|| random_token(8)), body))
    });
    if let Some(mode) = child(create, "member_add_mode").and_then(crate::wire::text) {
        g.member_add_mode = if mode == "admin_add" {
            "admin_add"
        } else {
            "all_member_add"
        };
    }
    g.membership_approval = child(create, "membership_approval_mode")
        .and_then(|m| child(m, "group_join"))
        .and_then(|j| attr(j, "state"))
        .is_some_and(|s| s == "on");
    let id = insert(st, g);
    let Some(node) = st.groups.get(&id).map(|g| group_node(st, &id, g)) else {
        return iq_error(n, 500, "internal-server-error");
    };
    announce(
        st,
        &id,
        Some(&me.0),
        vec![B::new("create").kids([node.clone()]).build()],
    );
    iq_result(n, vec![node])
}

/// `<add|remove|promote|demote>`: per-participant results (`type="200"` or
/// `error="404|409"`), one notification for the ones that changed. Adding
/// is open to every member in `all_member_add` mode, the rest is admin-only.
pub(super) fn change(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    let action: &'static str = match op.tag.as_ref() {
        "add" => "add",
        "remove" => "remove",
        "promote" => "promote",
        _ => "demote",
    };
    let list = participant_list(op, st);
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    let allowed = g.is_admin(&me.0) || (action == "add" && g.member_add_mode == "all_member_add");
    if !allowed {
        return forbidden(n);
    }
    let mut results = Vec::new();
    let mut changed: Vec<String> = Vec::new();
    for (j, phone) in list {
        let status = match (action, phone) {
            (_, None) => "404",
            ("add", Some(p)) => {
                if g.member(&p).is_some() {
                    "409"
                } else {
                    g.requests.retain(|r| r.phone != p);
                    g.members.push(Member {
                        phone: p.clone(),
                        admin: false,
                    });
                    changed.push(p);
                    "200"
                }
            }
            ("remove", Some(p)) => {
                let before = g.members.len();
                g.members.retain(|m| m.phone != p);
                if g.members.len() < before {
                    changed.push(p);
                    "200"
                } else {
                    "404"
                }
            }
            (_, Some(p)) => match g.members.iter_mut().find(|m| m.phone == p) {
                Some(m) => {
                    m.admin = action == "promote";
                    changed.push(p);
                    "200"
                }
                None => "404",
            },
        };
        let mut pb = B::new("participant").a("jid", j.to_non_ad());
        pb = if status == "200" {
            pb.a("type", "200")
        } else {
            pb.a("error", status)
        };
        results.push(pb.build());
    }
    if !changed.is_empty() {
        let kids = vec![
            B::new(action)
                .kids(participant_nodes(st, gid, &changed))
                .build(),
        ];
        if action == "remove" {
            // Removed members learn it too (their devices drop the group).
            let note = gp2(st, gid, Some(&me.0), kids.clone());
            to_phones(st, &changed, &note);
        }
        announce(st, gid, Some(&me.0), kids);
    }
    iq_result(n, vec![B::new(action).kids(results).build()])
}

/// `<leave><group id/>…</leave>`: announced as the member's own `<remove>`
/// (that is how WhatsApp tells a leave from a kick), to the leaver's devices
/// too. If the last admin leaves, the longest-standing member becomes admin
/// (a server-side `<promote>`); the last member leaving ends the group.
pub(super) fn leave(st: &mut State, me: &DevKey, n: &Node, leave: &Node) -> Node {
    let mut kids = Vec::new();
    for g in children(leave) {
        let Some(gj) = attr_jid(g, "id").or_else(|| attr(g, "id").map(wacore_binary::Jid::group))
        else {
            continue;
        };
        let gid = gj.user.to_string();
        let member = st
            .groups
            .get(&gid)
            .is_some_and(|gr| gr.member(&me.0).is_some());
        if !member {
            // Unknown group or not a member: WhatsApp answers per group.
            kids.push(
                B::new("group")
                    .a("id", gj)
                    .a(
                        "error",
                        if st.groups.contains_key(&gid) {
                            "403"
                        } else {
                            "404"
                        },
                    )
                    .build(),
            );
            continue;
        }
        let me_list = [me.0.clone()];
        let left = participant_nodes(st, &gid, &me_list);
        announce(
            st,
            &gid,
            Some(&me.0),
            vec![B::new("remove").kids(left).build()],
        );
        let mut successor = None;
        let mut empty = false;
        if let Some(gr) = st.groups.get_mut(&gid) {
            gr.members.retain(|m| m.phone != me.0);
            if gr.members.is_empty() {
                empty = true;
            } else if !gr.members.iter().any(|m| m.admin)
                && let Some(first) = gr.members.first_mut()
            {
                first.admin = true;
                successor = Some(first.phone.clone());
            }
        }
        if let Some(s) = successor {
            let promoted = participant_nodes(st, &gid, [&s]);
            announce(
                st,
                &gid,
                None,
                vec![B::new("promote").kids(promoted).build()],
            );
        }
        if empty {
            drop_group(st, &gid);
        }
        kids.push(B::new("group").a("id", gj).build());
    }
    iq_result(n, vec![B::new("leave").kids(kids).build()])
}

/// Forgets a group and everything hanging off it (invite code, picture).
fn drop_group(st: &mut State, gid: &str) {
    if let Some(g) = st.groups.remove(gid) {
        st.invites.remove(&g.invite);
        if let Some(p) = g.picture
            && let Some(b) = st.media.remove(&p.path)
        {
            st.media_bytes = st.media_bytes.saturating_sub(b.len());
        }
    }
}

/// Records a join request (membership approval on) and tells the admins
/// (`created_membership_requests`) and the requester's devices
/// (`membership_approval_request`). A repeated request changes nothing.
pub(super) fn request_join(st: &mut State, me: &DevKey, gid: &str) {
    let Some(g) = st.groups.get_mut(gid) else {
        return;
    };
    if g.requests.iter().any(|r| r.phone == me.0) {
        return;
    }
    g.requests.push(JoinRequest {
        phone: me.0.clone(),
        t: now(),
    });
    announce_admins(
        st,
        gid,
        Some(&me.0),
        vec![
            B::new("created_membership_requests")
                .a("request_method", "invite_link")
                .kids([B::new("requested_user").a("jid", pn_jid(&me.0, 0)).build()])
                .build(),
        ],
    );
    let note = gp2(
        st,
        gid,
        Some(&me.0),
        vec![
            B::new("membership_approval_request")
                .a("request_method", "invite_link")
                .build(),
        ],
    );
    to_phones(st, std::slice::from_ref(&me.0), &note);
}

/// `<membership_approval_requests/>` (admins only): the pending requests.
pub(super) fn requests(st: &mut State, me: &DevKey, gid: &str, n: &Node) -> Node {
    let Some(g) = st.groups.get(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    let list = g.requests.iter().map(|r| {
        B::new("membership_approval_request")
            .a("jid", pn_jid(&r.phone, 0))
            .a("request_time", r.t.to_string())
            .build()
    });
    iq_result(
        n,
        vec![B::new("membership_approval_requests").kids(list).build()],
    )
}

/// `<membership_requests_action><approve|reject>…` (admins only). Approved
/// requesters become members (`<add>` to everyone, them included); rejected
/// ones get `revoked_membership_requests`, as do the admins. A participant
/// without a pending request answers `error="404"`.
pub(super) fn decide(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    let Some(inner) = children(op).first() else {
        return iq_error(n, 400, "bad-request");
    };
    let approve = match inner.tag.as_ref() {
        "approve" => true,
        "reject" => false,
        _ => return iq_error(n, 400, "bad-request"),
    };
    let list = participant_list(inner, st);
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    let mut results = Vec::new();
    let mut decided: Vec<String> = Vec::new();
    for (j, phone) in list {
        let pending = phone
            .as_ref()
            .is_some_and(|p| g.requests.iter().any(|r| &r.phone == p));
        let mut pb = B::new("participant").a("jid", j.to_non_ad());
        if let (true, Some(p)) = (pending, phone) {
            g.requests.retain(|r| r.phone != p);
            if approve && g.member(&p).is_none() {
                g.members.push(Member {
                    phone: p.clone(),
                    admin: false,
                });
            }
            decided.push(p);
            pb = pb.a("type", "200");
        } else {
            pb = pb.a("error", "404");
        }
        results.push(pb.build());
    }
    let tag = if approve { "approve" } else { "reject" };
    if !decided.is_empty() {
        if approve {
            let added = participant_nodes(st, gid, &decided);
            announce(
                st,
                gid,
                Some(&me.0),
                vec![B::new("add").kids(added).build()],
            );
        } else {
            let kids = vec![
                B::new("revoked_membership_requests")
                    .kids(participant_nodes(st, gid, &decided))
                    .build(),
            ];
            let note = gp2(st, gid, Some(&me.0), kids.clone());
            to_phones(st, &decided, &note);
            announce_admins(st, gid, Some(&me.0), kids);
        }
    }
    iq_result(
        n,
        vec![
            B::new("membership_requests_action")
                .kids([B::new(tag).kids(results).build()])
                .build(),
        ],
    )
}
