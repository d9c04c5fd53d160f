//! Group info and settings: subject and description (admin-only while the
//! group is locked), the admin-only toggles (`announcement`, `locked`,
//! `membership_approval_mode`, `member_add_mode`) and the one MEX (GraphQL)
//! mutation whatsapp-rust uses for groups, `member_share_group_history_mode`.
//!
//! Called by [`super::iq`] (and [`mex`] by [`crate::proto`]) with or without
//! the network lock as noted; stateless itself.

use wacore_binary::{Jid, Node};

use super::{announce, approval_node, forbidden};
use crate::conn::{Conn, Flow};
use crate::state::{DevKey, State, now, random_token};
use crate::wire::{B, attr, child, children, iq_error, iq_result, pn_jid};

/// Whether `me` may edit the group's info (subject, description, picture):
/// everyone unless the group is locked, then admins only.
pub(super) fn may_edit_info(st: &State, me: &DevKey, gid: &str) -> bool {
    st.groups
        .get(gid)
        .is_some_and(|g| g.member(&me.0).is_some() && (!g.locked || g.is_admin(&me.0)))
}

/// `<subject>text</subject>`; members get `<subject subject s_o s_t/>`.
pub(super) fn subject(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    if !may_edit_info(st, me, gid) {
        return forbidden(n);
    }
    let subject = crate::wire::text(op).unwrap_or_default();
    let t = now();
    if let Some(g) = st.groups.get_mut(gid) {
        g.subject = subject.clone();
        g.subject_owner = me.0.clone();
        g.subject_t = t;
    }
    announce(
        st,
        gid,
        Some(&me.0),
        vec![
            B::new("subject")
                .a("subject", subject)
                .a("s_o", pn_jid(&me.0, 0))
                .a("s_t", t.to_string())
                .build(),
        ],
    );
    iq_result(n, vec![])
}

/// `<description id prev [delete]><body/></description>`. `prev` is an
/// optimistic-concurrency token: it must name the current description (or
/// be absent when there is none), else 409 `conflict`, which whatsapp-rust
/// reports as `GroupError::DescriptionConflict`.
pub(super) fn description(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    if !may_edit_info(st, me, gid) {
        return forbidden(n);
    }
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    let current = g.description.as_ref().map(|(id, _)| id.clone());
    if attr(op, "prev") != current {
        return iq_error(n, 409, "conflict");
    }
    let body = child(op, "body").and_then(crate::wire::text);
    let desc_id = attr(op, "id").unwrap_or_else(|| random_token(8));
    g.description = body.clone().map(|b| (desc_id.clone(), b));
    let db = B::new("description").a("id", desc_id);
    let db = match body {
        Some(b) => db.kids([B::new("body").bytes(b.into_bytes()).build()]),
        None => db.kids([B::new("delete").build()]),
    };
    announce(st, gid, Some(&me.0), vec![db.build()]);
    iq_result(n, vec![])
}

/// `<announcement/>`, `<not_announcement/>`, `<locked/>`, `<unlocked/>`
/// (admins only); members get a child of the same tag.
pub(super) fn toggle(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    let tag: &'static str = match op.tag.as_ref() {
        "announcement" => "announcement",
        "not_announcement" => "not_announcement",
        "locked" => "locked",
        _ => "unlocked",
    };
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    match tag {
        "announcement" | "not_announcement" => g.announce = tag == "announcement",
        _ => g.locked = tag == "locked",
    }
    announce(st, gid, Some(&me.0), vec![B::new(tag).build()]);
    iq_result(n, vec![])
}

/// `<membership_approval_mode><group_join state="on|off"/>` (admins only).
/// Turning it off leaves pending requests for the admins to decide.
pub(super) fn approval_mode(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    let Some(on) = child(op, "group_join")
        .and_then(|j| attr(j, "state"))
        .and_then(|s| match s.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        })
    else {
        return iq_error(n, 400, "bad-request");
    };
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    g.membership_approval = on;
    announce(st, gid, Some(&me.0), vec![approval_node(on)]);
    iq_result(n, vec![])
}

/// `<member_add_mode>admin_add|all_member_add</member_add_mode>` (admins
/// only); anything else is 400 `bad-request`.
pub(super) fn add_mode(st: &mut State, me: &DevKey, gid: &str, n: &Node, op: &Node) -> Node {
    let mode: &'static str = match crate::wire::text(op).as_deref() {
        Some("admin_add") => "admin_add",
        Some("all_member_add") => "all_member_add",
        _ => return iq_error(n, 400, "bad-request"),
    };
    let Some(g) = st.groups.get_mut(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if !g.is_admin(&me.0) {
        return forbidden(n);
    }
    g.member_add_mode = mode;
    announce(
        st,
        gid,
        Some(&me.0),
        vec![B::new("member_add_mode").text(mode).build()],
    );
    iq_result(n, vec![])
}

/// A MEX answer: `<result>{json}</result>`.
fn mex_result(n: &Node, body: serde_json::Value) -> Node {
    iq_result(
        n,
        vec![
            B::new("result")
                .bytes(body.to_string().into_bytes())
                .build(),
        ],
    )
}

/// A MEX GraphQL error with WhatsApp's numeric code (the client raises it
/// as a `MexError` carrying that code).
fn mex_error(n: &Node, code: u16, message: &str) -> Node {
    mex_result(
        n,
        serde_json::json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"error_code": code}}]
        }),
    )
}

/// `w:mex` IQs. Only `update_group_property` with
/// `member_share_group_history_mode` is understood (admins only; members
/// get a `<member_share_group_history_mode>` notification); any other query
/// keeps the mock's plain empty result.
pub(crate) fn mex(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let payload: Option<serde_json::Value> = children(n)
        .iter()
        .find(|q| q.tag == "query")
        .and_then(crate::wire::bytes)
        .and_then(|b| serde_json::from_slice(b).ok());
    let vars = payload.as_ref().map(|p| p.get("variables").unwrap_or(p));
    let mode = vars
        .and_then(|v| v.pointer("/update/member_share_group_history_mode"))
        .and_then(serde_json::Value::as_str);
    let (Some(vars), Some(mode)) = (vars, mode) else {
        return Flow::reply(iq_result(n, vec![]));
    };
    let mode: &'static str = match mode {
        "ADMIN_SHARE" => "admin_share",
        "ALL_MEMBER_SHARE" => "all_member_share",
        _ => return Flow::reply(mex_error(n, 400, "bad-request")),
    };
    let gid = vars
        .get("group_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|s| s.parse::<Jid>().ok())
        .map(|j| j.user.to_string())
        .unwrap_or_default();
    let mut st = c.net.lock();
    let Some(g) = st.groups.get_mut(&gid) else {
        return Flow::reply(mex_error(n, 404, "item-not-found"));
    };
    if !g.is_admin(&me.0) {
        return Flow::reply(mex_error(n, 403, "forbidden"));
    }
    g.share_history_mode = Some(mode);
    announce(
        &mut st,
        &gid,
        Some(&me.0),
        vec![B::new("member_share_group_history_mode").text(mode).build()],
    );
    Flow::reply(mex_result(
        n,
        serde_json::json!({"data": {"xwa2_group_update_property": {"state": "ACTIVE"}}}),
    ))
}
