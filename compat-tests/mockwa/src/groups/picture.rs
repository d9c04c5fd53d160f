//! Group pictures: `w:profile:picture` IQs whose `target` (or `to`) is a
//! group. `get` answers `<picture id url direct_path>`, `set` stores the JPEG
//! and answers the new id, a `set` without `<picture>` deletes it; members
//! get a `<notification type="picture">` (`<set>` / `<delete>`), which
//! whatsapp-rust raises as `Event::PictureUpdate`.
//!
//! Called by [`crate::proto`] with no lock held. The bytes are kept with the
//! media blobs ([`State::media`], same cap) and served by the mock's HTTP
//! port at `direct_path`; `url` is that path on `http://HOST:PORT` so any
//! plain HTTP client can download it.

use wacore_binary::{Jid, Node, Server};

use super::{forbidden, settings::may_edit_info, to_members};
use crate::conn::{Conn, Flow};
use crate::proto::notification;
use crate::state::{MEDIA_CAP_BYTES, Picture, State, random_token};
use crate::wire::{B, attr, attr_jid, bytes, child, iq_error, iq_result, pn_jid};

/// Handles the IQ if it is about a group; `None` lets the caller answer it
/// as a user-picture IQ.
pub(crate) fn iq(c: &mut Conn, n: &Node) -> Option<Flow> {
    let group = attr_jid(n, "target")
        .or_else(|| attr_jid(n, "to"))
        .filter(|j| j.server == Server::Group && !j.user.is_empty())?;
    let Some(me) = c.device().cloned() else {
        return Some(Flow::reply(iq_error(n, 401, "not-authorized")));
    };
    let addr = c.net.addr;
    let mut st = c.net.lock();
    let gid = group.user.to_string();
    let Some(g) = st.groups.get(&gid) else {
        return Some(Flow::reply(iq_error(n, 404, "item-not-found")));
    };
    if attr(n, "type").as_deref() == Some("get") {
        let reply = match &g.picture {
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
        return Some(Flow::reply(reply));
    }
    if !may_edit_info(&st, &me, &gid) {
        return Some(Flow::reply(forbidden(n)));
    }
    let jpeg = child(n, "picture").and_then(bytes).map(<[u8]>::to_vec);
    let reply = set(&mut st, &gid, &me.0, jpeg, n);
    Some(Flow::reply(reply))
}

/// Replaces (or with `None`, deletes) the picture and tells the members.
fn set(st: &mut State, gid: &str, actor: &str, jpeg: Option<Vec<u8>>, n: &Node) -> Node {
    let old = st.groups.get_mut(gid).and_then(|g| g.picture.take());
    if let Some(p) = old
        && let Some(b) = st.media.remove(&p.path)
    {
        st.media_bytes = st.media_bytes.saturating_sub(b.len());
    }
    let group = Jid::group(gid.to_string());
    let (reply, child) = match jpeg {
        Some(data) if !data.is_empty() => {
            if st.media_bytes + data.len() > MEDIA_CAP_BYTES {
                return iq_error(n, 406, "not-acceptable");
            }
            let id = format!("{}", rand::random::<u32>() | 1);
            let path = format!("/v/t61.mockwa-pp/{gid}-{}.jpg", random_token(6));
            st.media_bytes += data.len();
            st.media.insert(path.clone(), std::sync::Arc::new(data));
            if let Some(g) = st.groups.get_mut(gid) {
                g.picture = Some(Picture {
                    id: id.clone(),
                    path,
                });
            }
            (
                iq_result(n, vec![B::new("picture").a("id", id.clone()).build()]),
                B::new("set")
                    .a("jid", group.clone())
                    .a("id", id)
                    .a("author", pn_jid(actor, 0))
                    .build(),
            )
        }
        _ => (
            iq_result(n, vec![]),
            B::new("delete")
                .a("jid", group.clone())
                .a("author", pn_jid(actor, 0))
                .build(),
        ),
    };
    let note = notification("picture", group.clone(), vec![child]);
    to_members(st, &group, None, &note);
    reply
}
