//! Newsletters (channels) over `w:mex`: create, fetch (by id or invite code, with the
//! viewer's role), list the subscribed ones, join (follow), leave (unfollow), mute/unmute
//! (`update_newsletter_user_setting`) and delete — answered in the GraphQL shapes the
//! whatsapp-rust client parses (`xwa2_newsletter*`).
//!
//! Called by [`crate::proto`] for every `w:mex` IQ before the groups' handler; an IQ
//! whose `query_id` is not one of these is left to it. The newsletters live in
//! `State::newsletters` for as long as the network.

use wacore::iq::mex_operations as ops;
use wacore_binary::{Jid, Node};

use crate::conn::{Conn, Flow};
use crate::state::{Newsletter, now};
use crate::wire::{B, attr, children, iq_result};

fn result(n: &Node, body: serde_json::Value) -> Flow {
    Flow::reply(iq_result(
        n,
        vec![
            B::new("result")
                .bytes(body.to_string().into_bytes())
                .build(),
        ],
    ))
}

fn error(n: &Node, code: u16, message: &str) -> Flow {
    result(
        n,
        serde_json::json!({
            "data": null,
            "errors": [{"message": message, "extensions": {"error_code": code}}]
        }),
    )
}

/// The GraphQL view of `nl` for the phone `viewer`.
fn view(id: &str, nl: &Newsletter, viewer: &str) -> serde_json::Value {
    let role = if nl.owner == viewer {
        "owner"
    } else if nl.followers.contains_key(viewer) {
        "subscriber"
    } else {
        "guest"
    };
    let mute = match nl.followers.get(viewer) {
        Some(true) => "ON",
        _ => "OFF",
    };
    serde_json::json!({
        "id": format!("{id}@newsletter"),
        "state": {"type": "active"},
        "thread_metadata": {
            "name": {"text": nl.name},
            "description": {"text": nl.description},
            "subscribers_count": nl.followers.len().to_string(),
            "verification": "UNVERIFIED",
            "invite": nl.invite,
            "creation_time": nl.created.to_string(),
        },
        "viewer_metadata": {"role": role, "mute": mute},
    })
}

/// Answers the newsletter `w:mex` IQs; `None` for any other query.
pub(crate) fn mex(c: &mut Conn, n: &Node) -> Option<Flow> {
    if let Some(flow) = crate::directory::mex(c, n) {
        return Some(flow);
    }
    let query = children(n).iter().find(|q| q.tag == "query")?;
    let qid = attr(query, "query_id")?;
    let known = [
        ops::create_newsletter::DOC_ID,
        ops::fetch_newsletter::DOC_ID,
        ops::fetch_all_newsletters_metadata::DOC_ID,
        ops::join_newsletter::DOC_ID,
        ops::leave_newsletter::DOC_ID,
        ops::update_newsletter_user_setting::DOC_ID,
        ops::delete_newsletter::DOC_ID,
    ];
    if !known.contains(&qid.as_str()) {
        return None;
    }
    let Some(me) = c.device().cloned() else {
        return Some(error(n, 401, "not-authorized"));
    };
    let payload: serde_json::Value = crate::wire::bytes(query)
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or_default();
    let vars = payload.get("variables").unwrap_or(&payload).clone();
    let str_at = |p: &str| {
        vars.pointer(p)
            .and_then(serde_json::Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let id_of = |s: String| s.parse::<Jid>().map(|j| j.user.to_string()).unwrap_or(s);
    let mut st = c.net.lock();
    let phone = me.0.clone();
    let flow = match qid.as_str() {
        q if q == ops::create_newsletter::DOC_ID => {
            let name = str_at("/input/name");
            if name.trim().is_empty() {
                return Some(error(n, 400, "bad-request"));
            }
            st.next_newsletter += 1;
            let id = st.next_newsletter.to_string();
            let nl = Newsletter {
                name,
                description: str_at("/input/description"),
                owner: phone.clone(),
                invite: format!("{id:0>24}"),
                created: now(),
                followers: Default::default(),
                posts: Vec::new(),
            };
            let body = view(&id, &nl, &phone);
            st.newsletters.insert(id, nl);
            result(
                n,
                serde_json::json!({"data": {"xwa2_newsletter_create": body}}),
            )
        }
        q if q == ops::fetch_newsletter::DOC_ID => {
            let key = str_at("/input/key");
            let id = if str_at("/input/type") == "INVITE" {
                st.newsletters
                    .iter()
                    .find(|(_, nl)| nl.invite == key)
                    .map(|(id, _)| id.clone())
                    .unwrap_or_default()
            } else {
                id_of(key)
            };
            match st.newsletters.get(&id) {
                Some(nl) => result(
                    n,
                    serde_json::json!({"data": {"xwa2_newsletter": view(&id, nl, &phone)}}),
                ),
                None => result(n, serde_json::json!({"data": {"xwa2_newsletter": null}})),
            }
        }
        q if q == ops::fetch_all_newsletters_metadata::DOC_ID => {
            let mut ids: Vec<&String> = st
                .newsletters
                .iter()
                .filter(|(_, nl)| nl.owner == phone || nl.followers.contains_key(&phone))
                .map(|(id, _)| id)
                .collect();
            ids.sort();
            let list: Vec<serde_json::Value> = ids
                .into_iter()
                .map(|id| view(id, &st.newsletters[id], &phone))
                .collect();
            result(
                n,
                serde_json::json!({"data": {"xwa2_newsletter_subscribed": list}}),
            )
        }
        q if q == ops::join_newsletter::DOC_ID || q == ops::leave_newsletter::DOC_ID => {
            let join = q == ops::join_newsletter::DOC_ID;
            let id = id_of(str_at("/newsletter_id"));
            let Some(nl) = st.newsletters.get_mut(&id) else {
                return Some(error(n, 404, "item-not-found"));
            };
            if join {
                nl.followers.entry(phone.clone()).or_insert(false);
                let body = view(&id, nl, &phone);
                result(
                    n,
                    serde_json::json!({"data": {"xwa2_newsletter_join_v2": body}}),
                )
            } else {
                nl.followers.remove(&phone);
                result(
                    n,
                    serde_json::json!({"data": {"xwa2_newsletter_leave_v2": {"id": format!("{id}@newsletter")}}}),
                )
            }
        }
        q if q == ops::update_newsletter_user_setting::DOC_ID => {
            let id = id_of(str_at("/input/newsletter_id"));
            let on = str_at("/input/value") == "ON";
            let Some(nl) = st.newsletters.get_mut(&id) else {
                return Some(error(n, 404, "item-not-found"));
            };
            let Some(muted) = nl.followers.get_mut(&phone) else {
                return Some(error(n, 403, "forbidden"));
            };
            *muted = on;
            result(
                n,
                serde_json::json!({"data": {"xwa2_newsletter_update_user_setting": {"id": format!("{id}@newsletter")}}}),
            )
        }
        _ => {
            let id = id_of(str_at("/newsletter_id"));
            match st.newsletters.get(&id) {
                None => error(n, 404, "item-not-found"),
                Some(nl) if nl.owner != phone => error(n, 403, "forbidden"),
                Some(_) => {
                    st.newsletters.remove(&id);
                    result(
                        n,
                        serde_json::json!({"data": {"xwa2_newsletter_delete_v2": {"id": format!("{id}@newsletter"), "state": {"type": "deleted"}}}}),
                    )
                }
            }
        }
    };
    Some(flow)
}

/// A post to a channel (`<message to="…@newsletter">` with `<plaintext>`): only the owner
/// may post (else a 403 nack); every device of every follower gets it as
/// `from="…@newsletter"` with a `server_id`, muted or not (muting silences
/// notifications on the phone, it does not stop delivery). A media post must name its
/// plaintext upload (`crate::newsletter_media::check_post`, else a 400 nack). Returns
/// the sender's ack.
pub(crate) fn post(
    st: &mut crate::state::State,
    me: &crate::state::DevKey,
    to: &Jid,
    n: &Node,
) -> Node {
    let mut ack = B::new("ack")
        .a("id", attr(n, "id").unwrap_or_default())
        .a("class", "message")
        .a("from", to.clone())
        .a("t", now().to_string());
    let id = to.user.to_string();
    let followers: Vec<String> = match st.newsletters.get(&id) {
        Some(nl) if nl.owner == me.0 => nl.followers.keys().cloned().collect(),
        Some(_) => return ack.a("error", "403").build(),
        None => return ack.a("error", "404").build(),
    };
    if let Err(why) = crate::newsletter_media::check_post(st, n) {
        tracing::debug!("channel media post refused: {why}");
        return ack.a("error", "400").build();
    }
    st.next_newsletter_post += 1;
    let server_id = st.next_newsletter_post.to_string();
    ack = ack.a("server_id", server_id.clone());
    let kids: Vec<Node> = children(n)
        .iter()
        .filter(|k| k.tag == "plaintext")
        .cloned()
        .collect();
    let mut base = B::new("message");
    for (k, v) in n.attrs.iter() {
        if k != "to" {
            base = base.a(k.clone(), v.clone());
        }
    }
    let msg = base
        .a("from", to.clone())
        .a("server_id", server_id)
        .a("t", now().to_string())
        .kids(kids)
        .build();
    for phone in followers {
        st.deliver_to_phone(&phone, None, &msg);
    }
    if let Some(nl) = st.newsletters.get_mut(&id) {
        nl.posts.push(msg);
    }
    ack.build()
}

/// `<iq xmlns="newsletter" to="…@newsletter"><messages count before?/></iq>`: the
/// channel's latest `count` posts (before `server_id` `before`), oldest first, each
/// with `is_sender` for the asker; an unknown channel is `404`.
pub(crate) fn messages(c: &mut Conn, n: &Node) -> Flow {
    let phone = c.device().map(|d| d.0.clone()).unwrap_or_default();
    let id = crate::wire::attr_jid(n, "to")
        .map(|j| j.user.to_string())
        .unwrap_or_default();
    let query = children(n).iter().find(|q| q.tag == "messages");
    let count = query
        .and_then(|q| attr(q, "count"))
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(50);
    let before = query
        .and_then(|q| attr(q, "before"))
        .and_then(|v| v.parse::<u64>().ok());
    let st = c.net.lock();
    let Some(nl) = st.newsletters.get(&id) else {
        return Flow::reply(crate::wire::iq_error(n, 404, "item-not-found"));
    };
    let is_sender = if nl.owner == phone { "true" } else { "false" };
    let kept: Vec<Node> = nl
        .posts
        .iter()
        .filter(|m| {
            let sid = attr(m, "server_id").and_then(|v| v.parse::<u64>().ok());
            before.is_none_or(|b| sid.is_some_and(|s| s < b))
        })
        .cloned()
        .collect();
    let start = kept.len().saturating_sub(count);
    let list: Vec<Node> = kept[start..]
        .iter()
        .map(|m| {
            let mut b = B::new("message");
            for (k, v) in m.attrs.iter() {
                if k != "from" {
                    b = b.a(k.clone(), v.clone());
                }
            }
            b.a("is_sender", is_sender)
                .kids(children(m).to_vec())
                .build()
        })
        .collect();
    Flow::reply(iq_result(n, vec![B::new("messages").kids(list).build()]))
}
