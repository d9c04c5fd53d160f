//! Groups: the `w:g2` IQs (create, info, participating, participants
//! add/remove/promote/demote, subject, description, invite code, join, leave,
//! lock/announce) and `skmsg` fan-out to every participant's devices.
//!
//! Called by [`crate::proto`]; state lives in [`State::groups`]. Groups use
//! phone-number addressing (`addressing_mode="pn"`).

use wacore_binary::{Jid, Node, Server};

use crate::conn::{Conn, Flow, id_of};
use crate::proto::notification;
use crate::state::{DevKey, Group, Member, State, now, random_token};
use crate::wire::{B, attr, attr_jid, child, children, iq_error, iq_result, pn_jid};

/// Renders a group's `<group>` node as info/create/participating answers use it.
fn group_node(id: &str, g: &Group) -> Node {
    let mut kids: Vec<Node> = g
        .members
        .iter()
        .map(|m| {
            let mut b = B::new("participant").a("jid", pn_jid(&m.phone, 0));
            if m.phone == g.creator {
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
    B::new("group")
        .a("id", id.to_string())
        .a("subject", g.subject.clone())
        .a("s_t", g.subject_t.to_string())
        .a("s_o", pn_jid(&g.subject_owner, 0))
        .a("creation", g.creation.to_string())
        .a("creator", pn_jid(&g.creator, 0))
        .a("addressing_mode", "pn")
        .a("size", g.members.len().to_string())
        .kids(kids)
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

fn gp2(group: &Jid, actor: &str, kids: Vec<Node>) -> Node {
    let mut n = notification("w:gp2", group.to_non_ad(), kids);
    n.attrs.insert("participant", pn_jid(actor, 0));
    n
}

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

/// Handles one `w:g2` IQ.
pub(crate) fn iq(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let to = attr_jid(n, "to").unwrap_or_else(|| Jid::new("", Server::Group));
    let mut st = c.net.lock();
    let t = now();

    // Requests addressed to `g.us` itself.
    if to.user.is_empty() {
        if let Some(create) = child(n, "create") {
            let id = st.next_group.to_string();
            st.next_group += 1;
            let mut members = vec![Member {
                phone: me.0.clone(),
                admin: true,
            }];
            for (_, phone) in participant_list(create, &st) {
                if let Some(p) = phone
                    && !members.iter().any(|m| m.phone == p)
                {
                    members.push(Member {
                        phone: p,
                        admin: false,
                    });
                }
            }
            let description = child(create, "description").and_then(|d| {
                let body = child(d, "body").and_then(crate::wire::text)?;
                Some((attr(d, "id").unwrap_or_else(|| random_token(8)), body))
            });
            let g = Group {
                subject: attr(create, "subject").unwrap_or_default(),
                subject_owner: me.0.clone(),
                subject_t: t,
                creator: me.0.clone(),
                creation: t,
                description,
                members,
                invite: random_token(11),
                announce: false,
                locked: false,
            };
            let node = group_node(&id, &g);
            st.invites.insert(g.invite.clone(), id.clone());
            st.groups.insert(id.clone(), g);
            let gj = Jid::group(id.clone());
            let note = gp2(
                &gj,
                &me.0,
                vec![B::new("create").kids([node.clone()]).build()],
            );
            to_members(&mut st, &gj, Some(&me), &note);
            return Flow::reply(iq_result(n, vec![node]));
        }
        if child(n, "participating").is_some() {
            let groups: Vec<Node> = st
                .groups
                .iter()
                .filter(|(_, g)| g.members.iter().any(|m| m.phone == me.0))
                .map(|(id, g)| group_node(id, g))
                .collect();
            return Flow::reply(iq_result(n, vec![B::new("groups").kids(groups).build()]));
        }
        if let Some(inv) = child(n, "invite") {
            let code = attr(inv, "code").unwrap_or_default();
            let Some(id) = st.invites.get(&code).cloned() else {
                return Flow::reply(iq_error(n, 404, "item-not-found"));
            };
            let gj = Jid::group(id.clone());
            if attr(n, "type").as_deref() == Some("get") {
                let node = st.groups.get(&id).map(|g| group_node(&id, g));
                return Flow::reply(iq_result(n, node.into_iter().collect()));
            }
            let joined = match st.groups.get_mut(&id) {
                Some(g) if !g.members.iter().any(|m| m.phone == me.0) => {
                    g.members.push(Member {
                        phone: me.0.clone(),
                        admin: false,
                    });
                    true
                }
                Some(_) => false,
                None => return Flow::reply(iq_error(n, 404, "item-not-found")),
            };
            if joined {
                let note = gp2(
                    &gj,
                    &me.0,
                    vec![
                        B::new("add")
                            .a("reason", "invite")
                            .kids([B::new("participant").a("jid", pn_jid(&me.0, 0)).build()])
                            .build(),
                    ],
                );
                to_members(&mut st, &gj, Some(&me), &note);
            }
            return Flow::reply(iq_result(n, vec![B::new("group").a("jid", gj).build()]));
        }
        if let Some(leave) = child(n, "leave") {
            let mut kids = Vec::new();
            for g in children(leave) {
                let Some(gj) = attr_jid(g, "id").or_else(|| attr(g, "id").map(Jid::group)) else {
                    continue;
                };
                let note = gp2(
                    &gj,
                    &me.0,
                    vec![
                        B::new("leave")
                            .kids([B::new("participant").a("jid", pn_jid(&me.0, 0)).build()])
                            .build(),
                    ],
                );
                to_members(&mut st, &gj, Some(&me), &note);
                if let Some(gr) = st.groups.get_mut(gj.user.as_str()) {
                    gr.members.retain(|m| m.phone != me.0);
                }
                kids.push(B::new("group").a("id", gj).build());
            }
            return Flow::reply(iq_result(n, vec![B::new("leave").kids(kids).build()]));
        }
        return Flow::reply(iq_result(n, vec![]));
    }

    // Requests addressed to one group.
    let gid = to.user.to_string();
    let Some(g) = st.groups.get(&gid) else {
        return Flow::reply(iq_error(n, 404, "item-not-found"));
    };
    let is_member = g.members.iter().any(|m| m.phone == me.0);
    let is_admin = g.members.iter().any(|m| m.phone == me.0 && m.admin);
    if !is_member {
        return Flow::reply(iq_error(n, 403, "forbidden"));
    }
    if child(n, "query").is_some() {
        let node = group_node(&gid, g);
        return Flow::reply(iq_result(n, vec![node]));
    }
    if child(n, "invite").is_some() {
        let code = g.invite.clone();
        return Flow::reply(iq_result(n, vec![B::new("invite").a("code", code).build()]));
    }
    for action in ["add", "remove", "promote", "demote"] {
        let Some(a) = child(n, action) else { continue };
        if !is_admin {
            return Flow::reply(iq_error(n, 403, "forbidden"));
        }
        let list = participant_list(a, &st);
        let mut results = Vec::new();
        let mut changed = Vec::new();
        let Some(g) = st.groups.get_mut(&gid) else {
            return Flow::reply(iq_error(n, 404, "item-not-found"));
        };
        for (j, phone) in list {
            let status = match (action, phone) {
                (_, None) => "404",
                ("add", Some(p)) => {
                    if g.members.iter().any(|m| m.phone == p) {
                        "409"
                    } else {
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
            if status == "200" {
                pb = pb.a("type", "200");
            } else {
                pb = pb.a("error", status);
            }
            results.push(pb.build());
        }
        let action_static: &'static str = match action {
            "add" => "add",
            "remove" => "remove",
            "promote" => "promote",
            _ => "demote",
        };
        if !changed.is_empty() {
            let gj = Jid::group(gid.clone());
            let note = gp2(
                &gj,
                &me.0,
                vec![
                    B::new(action_static)
                        .kids(
                            changed
                                .iter()
                                .map(|p| B::new("participant").a("jid", pn_jid(p, 0)).build()),
                        )
                        .build(),
                ],
            );
            to_members(&mut st, &gj, Some(&me), &note);
            if action == "remove" {
                // Removed members learn it too.
                for p in &changed {
                    st.deliver_to_phone(p, None, &note);
                }
            }
        }
        return Flow::reply(iq_result(
            n,
            vec![B::new(action_static).kids(results).build()],
        ));
    }
    let gj = Jid::group(gid.clone());
    if let Some(s) = child(n, "subject") {
        let subject = crate::wire::text(s).unwrap_or_default();
        if let Some(g) = st.groups.get_mut(&gid) {
            if g.locked && !is_admin {
                return Flow::reply(iq_error(n, 403, "forbidden"));
            }
            g.subject = subject.clone();
            g.subject_owner = me.0.clone();
            g.subject_t = t;
        }
        let mut note = gp2(
            &gj,
            &me.0,
            vec![B::new("subject").a("subject", subject).build()],
        );
        note.attrs.insert("id", id_of(n));
        to_members(&mut st, &gj, Some(&me), &note);
        return Flow::reply(iq_result(n, vec![]));
    }
    if let Some(d) = child(n, "description") {
        let body = child(d, "body").and_then(crate::wire::text);
        let desc_id = attr(d, "id").unwrap_or_else(|| random_token(8));
        if let Some(g) = st.groups.get_mut(&gid) {
            g.description = body.clone().map(|b| (desc_id.clone(), b));
        }
        let mut db = B::new("description").a("id", desc_id);
        db = match body {
            Some(b) => db.kids([B::new("body").bytes(b.into_bytes()).build()]),
            None => db.kids([B::new("delete").build()]),
        };
        let note = gp2(&gj, &me.0, vec![db.build()]);
        to_members(&mut st, &gj, Some(&me), &note);
        return Flow::reply(iq_result(n, vec![]));
    }
    for (tag, announce, locked) in [
        ("announcement", Some(true), None),
        ("not_announcement", Some(false), None),
        ("locked", None, Some(true)),
        ("unlocked", None, Some(false)),
    ] {
        if child(n, tag).is_some() {
            if !is_admin {
                return Flow::reply(iq_error(n, 403, "forbidden"));
            }
            if let Some(g) = st.groups.get_mut(&gid) {
                if let Some(a) = announce {
                    g.announce = a;
                }
                if let Some(l) = locked {
                    g.locked = l;
                }
            }
            let note = gp2(&gj, &me.0, vec![B::new(tag).build()]);
            to_members(&mut st, &gj, Some(&me), &note);
            return Flow::reply(iq_result(n, vec![]));
        }
    }
    Flow::reply(iq_result(n, vec![]))
}
