//! Users' public profile and block lists: the `status` and `picture` parts of a usync
//! query, user `w:profile:picture` IQs, `blocklist` IQs, and the LID/PN alternate sender
//! attribute the real server puts on one-to-one messages.
//!
//! Called by [`crate::proto`] for those IQs (the world lock is taken here, never held by
//! the caller) and by [`crate::admin`] to set a phone's about text and picture and read
//! its block list. The state lives in [`Book`], one field of [`State`], for as long as the
//! network. Pictures are kept with the media blobs (same cap as group pictures) and served
//! by the mock's HTTP port at their `direct_path`.

use std::collections::{BTreeSet, HashMap};

use wacore_binary::{Jid, Node};

use crate::conn::{Conn, Flow};
use crate::state::{Picture, State};
use crate::wire::{B, attr, attr_jid, children, iq_error, iq_result, lid_jid, pn_jid};

/// Profile data and block lists, by phone number.
#[derive(Default)]
pub(crate) struct Book {
    /// Phone -> the phones it blocked.
    pub(crate) blocked: HashMap<String, BTreeSet<String>>,
    /// Phone -> the chats it already has (sent to new companions as history sync).
    pub(crate) history: HashMap<String, crate::history::SeedHistory>,
}

/// The `<status>` / `<picture>` child of one usync `<user>` answer.
pub(crate) fn usync_part(st: &State, query: &str, phone: Option<&str>) -> Node {
    let not_found = || {
        B::new(query.to_string())
            .kids([B::new("error")
                .a("code", "404")
                .a("text", "item-not-found")
                .build()])
            .build()
    };
    let Some(phone) = phone else {
        return not_found();
    };
    match query {
        "status" => match about_of(st, phone) {
            Some(text) => B::new("status").a("t", "0").text(text).build(),
            None => not_found(),
        },
        "picture" => match picture_of(st, phone) {
            Some(p) => B::new("picture").a("id", p.id.clone()).build(),
            None => not_found(),
        },
        _ => not_found(),
    }
}

/// A phone's about text (set by one of its devices or the admin API; empty = none).
fn about_of(st: &State, phone: &str) -> Option<String> {
    st.profiles
        .get(phone)
        .and_then(|p| p.about.as_ref())
        .map(|(text, _)| text.clone())
        .filter(|text| !text.is_empty())
}

/// A phone's picture (set by one of its devices or the admin API).
fn picture_of<'a>(st: &'a State, phone: &str) -> Option<&'a Picture> {
    st.profiles.get(phone).and_then(|p| p.picture.as_ref())
}

/// A user-picture `get` (`target` is a user): `<picture id url direct_path>` or 404.
pub(crate) fn picture_iq(c: &mut Conn, n: &Node) -> Flow {
    let addr = c.net.addr;
    let st = c.net.lock();
    let phone = attr_jid(n, "target")
        .or_else(|| attr_jid(n, "to"))
        .and_then(|j| st.phone_of(&j));
    let reply = match phone.and_then(|p| picture_of(&st, &p)) {
        Some(p) => iq_result(
            n,
            vec![
                B::new("picture")
                    .a("id", p.id.clone())
                    .a("type", "image")
                    .a("url", format!("http://{addr}{}", p.path))
                    .a("direct_path", p.path.clone())
                    .build(),
            ],
        ),
        None => iq_error(n, 404, "item-not-found"),
    };
    Flow::reply(reply)
}

/// `blocklist` IQs: `get` lists the caller's blocked users (by LID, as the real server),
/// `set` with `<item jid action>` blocks or unblocks one.
pub(crate) fn blocklist_iq(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let mut st = c.net.lock();
    if attr(n, "type").as_deref() == Some("set") {
        for item in children(n).iter().filter(|k| k.tag == "item") {
            let Some(target) = attr_jid(item, "jid").and_then(|j| st.phone_of(&j)) else {
                return Flow::reply(iq_error(n, 404, "item-not-found"));
            };
            let list = st.book.blocked.entry(me.0.clone()).or_default();
            match attr(item, "action").as_deref() {
                Some("block") => {
                    list.insert(target);
                }
                Some("unblock") => {
                    list.remove(&target);
                }
                _ => return Flow::reply(iq_error(n, 400, "bad-request")),
            }
        }
        return Flow::reply(iq_result(n, vec![]));
    }
    let items: Vec<Node> = st
        .book
        .blocked
        .get(&me.0)
        .into_iter()
        .flatten()
        .filter_map(|p| st.phones.get(p))
        .map(|p| B::new("item").a("jid", lid_jid(&p.lid, 0)).build())
        .collect();
    Flow::reply(iq_result(n, vec![B::new("list").kids(items).build()]))
}

/// The `sender_pn` / `sender_lid` attribute of a one-to-one message from `sender` sent
/// in `lid_form` (or not): the sender's other id, so clients learn the pair.
pub(crate) fn sender_alt(st: &State, sender: &str, lid_form: bool) -> Option<(&'static str, Jid)> {
    let p = st.phones.get(sender)?;
    Some(if lid_form {
        ("sender_pn", pn_jid(sender, 0))
    } else {
        ("sender_lid", lid_jid(&p.lid, 0))
    })
}

/// Sets (or with `None`, leaves) a phone's about text and picture; an empty text or
/// picture removes it. Creates the phone if new.
pub(crate) fn set_profile(
    st: &mut State,
    phone: &str,
    about: Option<String>,
    picture: Option<Vec<u8>>,
) -> Result<(), String> {
    st.ensure_phone(phone, "");
    if let Some(text) = about {
        st.profiles.entry(phone.to_string()).or_default().about =
            (!text.is_empty()).then(|| (text, crate::state::now()));
    }
    if let Some(jpeg) = picture {
        crate::profile::replace_picture(st, phone, Some(jpeg))
            .map_err(|_| "media store is full".to_string())?;
    }
    Ok(())
}

/// The phones `phone` blocked, sorted.
pub(crate) fn blocklist(st: &State, phone: &str) -> Vec<String> {
    st.book
        .blocked
        .get(phone)
        .map(|s| s.iter().cloned().collect())
        .unwrap_or_default()
}
