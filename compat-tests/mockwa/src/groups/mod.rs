//! Groups: the `w:g2` IQs, the `w:gp2` notifications they cause, and the
//! `skmsg` fan-out of group messages to every participant's devices.
//!
//! Called by [`crate::proto`] for `w:g2` IQs, group `<message>`s and group
//! chatstates, for `w:profile:picture` IQs aimed at a group and for the MEX
//! group-property mutation; by [`crate::admin`] to seed and inspect groups.
//! State lives in [`State::groups`] for the network's lifetime. Groups use
//! phone-number addressing (`addressing_mode="pn"`) unless seeded LID-addressed
//! (`addressing_mode="lid"`): then every stanza names members by LID and adds
//! their phone number (`phone_number`, `creator_pn`, `participant_pn`), as
//! WhatsApp does for its LID groups ([`member_jid`]).
//!
//! Split by concern: [`members`] (create, add/remove/promote/demote, leave,
//! join requests), [`invites`] (invite link, join-info, join by code),
//! [`settings`] (subject, description, the admin-only toggles, MEX) and
//! [`picture`]. Every change is announced to every device of every member,
//! the acting device included: whatsapp-rust patches its group cache from
//! these notifications even for its own changes, as with the real server.

mod invites;
mod members;
mod picture;
mod settings;

pub(crate) use picture::iq as picture_iq;
pub(crate) use settings::mex;

use wacore_binary::{Jid, Node, Server};

use crate::conn::{Conn, Flow};
use crate::proto::notification;
use crate::state::{DevKey, Group, Member, State, now};
use crate::wire::{B, attr, attr_jid, child, children, iq_error, iq_result, lid_jid, pn_jid};

/// Renders a group's `<group>` node as info/create/participating/join-info
/// answers carry it (the attributes and children `GroupInfoResponse` parses).
pub(crate) fn group_node(st: &State, id: &str, g: &Group) -> Node {
    let mut kids: Vec<Node> = g
        .members
        .iter()
        .map(|m| {
            let mut b = member_attrs(
                B::new("participant"),
                st,
                g.lid_addressed,
                &m.phone,
                "jid",
                "phone_number",
            );
            if m.phone == g.creator && m.admin {
                b = b.a("type", "superadmin");
            } else if m.admin {
                b = b.a("type", "admin");
            }
            b.build()
        })
        .collect();
    if let Some((desc_id, body)) = &g.description {
        kids.push(
            B::new("description")
                .a("id", desc_id.clone())
                .kids([B::new("body").bytes(body.clone().into_bytes()).build()])
                .build(),
        );
    }
    if g.announce {
        kids.push(B::new("announcement").build());
    }
    if g.locked {
        kids.push(B::new("locked").build());
    }
    if g.membership_approval {
        kids.push(approval_node(true));
    }
    kids.push(B::new("member_add_mode").text(g.member_add_mode).build());
    if let Some(mode) = g.share_history_mode {
        kids.push(B::new("member_share_group_history_mode").text(mode).build());
    }
    let b = B::new("group")
        .a("id", id.to_string())
        .a("subject", g.subject.clone())
        .a("s_t", g.subject_t.to_string());
    let b = member_attrs(b, st, g.lid_addressed, &g.subject_owner, "s_o", "s_o_pn");
    let b = b.a("creation", g.creation.to_string());
    member_attrs(b, st, g.lid_addressed, &g.creator, "creator", "creator_pn")
        .a(
            "addressing_mode",
            if g.lid_addressed { "lid" } else { "pn" },
        )
        .a("size", g.members.len().to_string())
        .kids(kids)
        .build()
}

/// How a group's stanzas name `phone`: its LID (with its phone-number JID alongside)
/// in a LID-addressed group, else its phone-number JID. A phone the mock does not
/// know keeps its phone number.
pub(crate) fn member_jid(st: &State, lid_addressed: bool, phone: &str) -> (Jid, Option<Jid>) {
    match st.phones.get(phone) {
        Some(p) if lid_addressed => (lid_jid(&p.lid, 0), Some(pn_jid(phone, 0))),
        _ => (pn_jid(phone, 0), None),
    }
}

/// Sets `key` to how the group names `phone`, and `pn_key` to its phone number when
/// that is a LID.
fn member_attrs(
    b: B,
    st: &State,
    lid_addressed: bool,
    phone: &str,
    key: &'static str,
    pn_key: &'static str,
) -> B {
    let (jid, pn) = member_jid(st, lid_addressed, phone);
    let b = b.a(key, jid);
    match pn {
        Some(pn) => b.a(pn_key, pn),
        None => b,
    }
}

/// Whether group `gid` is LID-addressed.
fn lid_addressed(st: &State, gid: &str) -> bool {
    st.groups.get(gid).is_some_and(|g| g.lid_addressed)
}

/// `<membership_approval_mode><group_join state="on|off"/></…>`, in info
/// answers and in the notification that toggles it.
fn approval_node(on: bool) -> Node {
    B::new("membership_approval_mode")
        .kids([B::new("group_join")
            .a("state", if on { "on" } else { "off" })
            .build()])
        .build()
}

/// Sends `node` to every device of every member (except `skip`).
pub(crate) fn to_members(st: &mut State, group: &Jid, skip: Option<&DevKey>, node: &Node) {
    let phones: Vec<String> = match st.groups.get(group.user.as_str()) {
        Some(g) => g.members.iter().map(|m| m.phone.clone()).collect(),
        None => return,
    };
    for p in phones {
        st.deliver_to_phone(&p, skip, node);
    }
}

/// Sends `node` to every device of each phone in `phones`.
fn to_phones(st: &mut State, phones: &[String], node: &Node) {
    for p in phones {
        st.deliver_to_phone(p, None, node);
    }
}

/// A `w:gp2` notification from `gid`; `actor` is the member who caused it
/// (none for server-side changes such as the automatic admin succession).
fn gp2(st: &State, gid: &str, actor: Option<&str>, kids: Vec<Node>) -> Node {
    let mut n = notification("w:gp2", Jid::group(gid.to_string()), kids);
    if let Some(a) = actor {
        let (jid, pn) = member_jid(st, lid_addressed(st, gid), a);
        n.attrs.insert("participant", jid);
        if let Some(pn) = pn {
            n.attrs.insert("participant_pn", pn);
        }
    }
    if lid_addressed(st, gid) {
        n.attrs.insert("addressing_mode", "lid");
    }
    n
}

/// Announces one change to every device of every current member.
fn announce(st: &mut State, gid: &str, actor: Option<&str>, kids: Vec<Node>) {
    let note = gp2(st, gid, actor, kids);
    to_members(st, &Jid::group(gid.to_string()), None, &note);
}

/// Announces one change to the group's admins only (join requests).
fn announce_admins(st: &mut State, gid: &str, actor: Option<&str>, kids: Vec<Node>) {
    let admins: Vec<String> = match st.groups.get(gid) {
        Some(g) => g
            .members
            .iter()
            .filter(|m| m.admin)
            .map(|m| m.phone.clone())
            .collect(),
        None => return,
    };
    let note = gp2(st, gid, actor, kids);
    to_phones(st, &admins, &note);
}

/// `<participant jid=…/>` for each phone, as group `gid` names its members.
fn participant_nodes<'a>(
    st: &State,
    gid: &str,
    phones: impl IntoIterator<Item = &'a String>,
) -> Vec<Node> {
    let lid = lid_addressed(st, gid);
    phones
        .into_iter()
        .map(|p| member_attrs(B::new("participant"), st, lid, p, "jid", "phone_number").build())
        .collect()
}

/// The `<participant jid>` children of an action node, each with the phone
/// it resolves to (PN or LID form), if the mock knows it.
fn participant_list(action: &Node, st: &State) -> Vec<(Jid, Option<String>)> {
    children(action)
        .iter()
        .filter_map(|p| attr_jid(p, "jid"))
        .map(|j| {
            let phone = st.phone_of(&j);
            (j, phone)
        })
        .collect()
}

/// The error WhatsApp answers a member who lacks the admin right for an
/// operation (the client surfaces it as `IqError::ServerError { code: 403 }`).
fn forbidden(n: &Node) -> Node {
    iq_error(n, 403, "forbidden")
}

/// Handles one `w:g2` IQ.
pub(crate) fn iq(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let to = attr_jid(n, "to").unwrap_or_else(|| Jid::new("", Server::Group));
    let mut st = c.net.lock();
    let reply = if to.user.is_empty() {
        to_server(&mut st, &me, n)
    } else {
        to_group(&mut st, &me, to.user.as_str(), n)
    };
    Flow::reply(reply)
}

/// Requests addressed to `g.us` itself.
fn to_server(st: &mut State, me: &DevKey, n: &Node) -> Node {
    if let Some(create) = child(n, "create") {
        return members::create(st, me, n, create);
    }
    if child(n, "participating").is_some() {
        return participating(st, me, n);
    }
    if let Some(inv) = child(n, "invite") {
        return invites::by_code(st, me, n, inv);
    }
    if let Some(leave) = child(n, "leave") {
        return members::leave(st, me, n, leave);
    }
    iq_result(n, vec![])
}

/// Every group the user is in, with participants: one pass over the groups
/// and no per-group allocation beyond its node, so a refresh of 1,000 groups
/// stays in the low milliseconds.
fn participating(st: &State, me: &DevKey, n: &Node) -> Node {
    let mut ids: Vec<&String> = st
        .groups
        .iter()
        .filter(|(_, g)| g.member(&me.0).is_some())
        .map(|(id, _)| id)
        .collect();
    // Stable order (creation order: ids count up) for reproducible answers.
    ids.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    let groups: Vec<Node> = ids
        .into_iter()
        .filter_map(|id| st.groups.get(id).map(|g| group_node(st, id, g)))
        .collect();
    iq_result(n, vec![B::new("groups").kids(groups).build()])
}

/// Requests addressed to one group: unknown group → 404 `item-not-found`,
/// not a member → 403, then one handler per operation tag.
fn to_group(st: &mut State, me: &DevKey, gid: &str, n: &Node) -> Node {
    let Some(g) = st.groups.get(gid) else {
        return iq_error(n, 404, "item-not-found");
    };
    if g.member(&me.0).is_none() {
        return forbidden(n);
    }
    let Some(op) = children(n).first() else {
        return iq_result(n, vec![]);
    };
    let gid = gid.to_string();
    let set = attr(n, "type").as_deref() == Some("set");
    match op.tag.as_ref() {
        "query" => iq_result(n, vec![group_node(st, &gid, g)]),
        "invite" => invites::link(st, me, &gid, n, set),
        "add" | "remove" | "promote" | "demote" => members::change(st, me, &gid, n, op),
        "membership_approval_requests" => members::requests(st, me, &gid, n),
        "membership_requests_action" => members::decide(st, me, &gid, n, op),
        "subject" => settings::subject(st, me, &gid, n, op),
        "description" => settings::description(st, me, &gid, n, op),
        "announcement" | "not_announcement" | "locked" | "unlocked" => {
            settings::toggle(st, me, &gid, n, op)
        }
        "membership_approval_mode" => settings::approval_mode(st, me, &gid, n, op),
        "member_add_mode" => settings::add_mode(st, me, &gid, n, op),
        _ => iq_result(n, vec![]),
    }
}

/// Why the server refuses a group message, as the nack code of its `<ack>`
/// (403): the sender is not a member (left or removed), or the group is an
/// announcement group and the sender no admin. Unknown groups are left to
/// the relay (nothing is delivered).
pub(crate) fn send_refusal(st: &State, me: &DevKey, group: &Jid) -> Option<&'static str> {
    let g = st.groups.get(group.user.as_str())?;
    match g.member(&me.0) {
        None => Some("403"),
        Some(m) if g.announce && !m.admin => Some("403"),
        Some(_) => None,
    }
}

/// Relays a group `<message>`: each device gets the shared `skmsg` plus its
/// own `pkmsg` (sender-key distribution) if the sender addressed one to it.
pub(crate) fn fan_out(st: &mut State, me: &DevKey, group: &Jid, n: &Node) {
    let phones: Vec<String> = match st.groups.get(group.user.as_str()) {
        Some(g) if g.members.iter().any(|m| m.phone == me.0) => {
            g.members.iter().map(|m| m.phone.clone()).collect()
        }
        _ => return,
    };
    let notify = st
        .phones
        .get(&me.0)
        .map(|p| p.push_name.clone())
        .unwrap_or_default();
    let mut per_device: std::collections::HashMap<DevKey, Vec<Node>> = Default::default();
    if let Some(parts) = child(n, "participants") {
        for t in children(parts) {
            if let Some(j) = attr_jid(t, "jid")
                && let Some(p) = st.phone_of(&j)
            {
                per_device.insert((p, j.device), children(t).to_vec());
            }
        }
    }
    let shared: Vec<Node> = children(n)
        .iter()
        .filter(|k| k.tag != "participants")
        .cloned()
        .collect();
    let mut base = B::new("message");
    for (k, v) in n.attrs.iter() {
        if k != "to" {
            base = base.a(k.clone(), v.clone());
        }
    }
    let base = base
        .a("from", group.to_non_ad())
        .a("participant", pn_jid(&me.0, me.1))
        .a("t", now().to_string())
        .a("notify", notify)
        .build();
    for p in phones {
        for id in st.device_ids(&p) {
            let key = (p.clone(), id);
            if &key == me {
                continue;
            }
            let mut kids = per_device.remove(&key).unwrap_or_default();
            kids.extend(shared.iter().cloned());
            let mut m = base.clone();
            m.content = Some(wacore_binary::NodeContent::Nodes(kids));
            st.deliver(&key, m);
        }
    }
}

/// Creates a group outside the protocol (admin seeding): `creator` is its
/// first admin, `admins` are promoted too. Returns the group id (user part).
/// With `notify`, members' devices get the `create` notification as if the
/// creator had sent the IQ; without, clients learn of it on their next
/// `participating` refresh (cheap for seeding hundreds of groups).
pub(crate) fn seed(
    st: &mut State,
    subject: &str,
    creator: &str,
    (participants, admins): (&[String], &[String]),
    lid_addressed: bool,
    notify: bool,
) -> String {
    let t = now();
    let mut members = vec![Member {
        phone: creator.to_string(),
        admin: true,
    }];
    for p in participants {
        if !members.iter().any(|m| &m.phone == p) {
            members.push(Member {
                phone: p.clone(),
                admin: admins.contains(p),
            });
        }
    }
    let mut g = Group::new(subject.to_string(), creator, members, t);
    g.lid_addressed = lid_addressed;
    let id = members::insert(st, g);
    if notify && let Some(g) = st.groups.get(&id) {
        let node = group_node(st, &id, g);
        announce(
            st,
            &id,
            Some(creator),
            vec![B::new("create").kids([node]).build()],
        );
    }
    id
}
