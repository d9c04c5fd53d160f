//! Users' own profiles: the "about" text (`status` IQ) and the profile picture
//! (`w:profile:picture` IQs about a user, not a group). The push name is kept on the
//! [`crate::state::Phone`] by the `<presence name>` handler in [`crate::proto`].
//!
//! Called by [`crate::proto`] with no lock held, and by the admin layer
//! (`GET /admin/profiles/{phone}`, [`crate::MockNetwork::profile`]). The picture bytes
//! are kept with the media blobs ([`crate::state::State::media`], same cap) and served
//! at `direct_path` on the mock's HTTP port. Profiles live as long as the network.

use serde::{Deserialize, Serialize};
use wacore_binary::{Jid, Node};

use crate::admin::AdminError;
use crate::conn::{Conn, Flow};
use crate::state::{MEDIA_CAP_BYTES, Net, Picture, State, now, random_token};
use crate::wire::{B, bytes, child, iq_error, iq_result};

/// What a phone's devices set about themselves (beyond the push name).
#[derive(Default)]
pub(crate) struct Profile {
    /// The "about" text and when it was set.
    pub(crate) about: Option<(String, i64)>,
    pub(crate) picture: Option<Picture>,
}

/// A phone's profile as the admin API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileState {
    /// Digits only.
    pub phone: String,
    /// The LID the network assigned the phone (digits only).
    pub lid: String,
    /// The push name (set by pairing, or by a device's `<presence name>`).
    pub push_name: String,
    /// The "about" text, `null` until a device set one.
    pub about: Option<String>,
    /// The picture's id, `null` without a picture.
    pub picture_id: Option<String>,
    /// Where the picture's JPEG is served (`http://HOST:PORT/v/…`).
    pub picture_url: Option<String>,
    /// The phone's last presence was `available`.
    pub online: bool,
}

/// A device's own picture `set` (with a `<picture>` it replaces the sender's picture,
/// without one it removes it) (the `get`s of anyone's picture are
/// [`crate::contacts::picture_iq`]'s).
pub(crate) fn picture_iq(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let mut st = c.net.lock();
    let jpeg = child(n, "picture").and_then(bytes).map(<[u8]>::to_vec);
    Flow::reply(set_picture(&mut st, &me.0, jpeg, n))
}

fn set_picture(st: &mut State, phone: &str, jpeg: Option<Vec<u8>>, n: &Node) -> Node {
    match replace_picture(st, phone, jpeg) {
        Ok(Some(id)) => iq_result(n, vec![B::new("picture").a("id", id).build()]),
        Ok(None) => iq_result(n, vec![]),
        Err(MediaFull) => iq_error(n, 406, "not-acceptable"),
    }
}

/// The media store cannot take the picture.
#[derive(Debug)]
pub(crate) struct MediaFull;

/// Replaces `phone`'s profile picture (a device's `set` or the admin API); `None` or empty
/// bytes remove it. The new picture's id. The one place pictures are stored: usync and
/// picture `get`s of other users read them from here too.
pub(crate) fn replace_picture(
    st: &mut State,
    phone: &str,
    jpeg: Option<Vec<u8>>,
) -> Result<Option<String>, MediaFull> {
    let old = st.profiles.get_mut(phone).and_then(|p| p.picture.take());
    if let Some(p) = old
        && let Some(b) = st.media.remove(&p.path)
    {
        st.media_bytes = st.media_bytes.saturating_sub(b.len());
    }
    let Some(data) = jpeg.filter(|d| !d.is_empty()) else {
        return Ok(None);
    };
    if st.media_bytes + data.len() > MEDIA_CAP_BYTES {
        return Err(MediaFull);
    }
    let id = format!("{}", rand::random::<u32>() | 1);
    let path = format!("/v/t61.mockwa-pp/{phone}-{}.jpg", random_token(6));
    st.media_bytes += data.len();
    st.media.insert(path.clone(), std::sync::Arc::new(data));
    st.profiles.entry(phone.to_string()).or_default().picture = Some(Picture {
        id: id.clone(),
        path,
    });
    Ok(Some(id))
}

/// `<iq xmlns="status" type="set"><status>text</status></iq>`: the sender's "about".
pub(crate) fn status_iq(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let text = child(n, "status")
        .and_then(bytes)
        .map(|b| String::from_utf8_lossy(b).into_owned())
        .unwrap_or_default();
    c.net.lock().profiles.entry(me.0).or_default().about = Some((text, now()));
    Flow::reply(iq_result(n, vec![]))
}

/// The profile of `phone` (digits, or a JID).
pub(crate) fn profile(net: &Net, phone: &str) -> Result<ProfileState, AdminError> {
    let st = net.lock();
    let key = phone
        .parse::<Jid>()
        .ok()
        .filter(|_| phone.contains('@'))
        .and_then(|j| st.phone_of(&j))
        .or_else(|| st.phone_of_user(phone))
        .ok_or_else(|| AdminError::NotFound(format!("unknown phone {phone}")))?;
    let (push_name, lid) = st
        .phones
        .get(&key)
        .map(|p| (p.push_name.clone(), p.lid.clone()))
        .unwrap_or_default();
    let profile = st.profiles.get(&key);
    let picture = profile.and_then(|p| p.picture.clone());
    let online = st.online.contains(&key);
    Ok(ProfileState {
        phone: key,
        lid,
        push_name,
        about: profile.and_then(|p| p.about.as_ref().map(|(t, _)| t.clone())),
        picture_id: picture.as_ref().map(|p| p.id.clone()),
        picture_url: picture.map(|p| format!("http://{}{}", net.addr, p.path)),
        online,
    })
}

impl crate::MockNetwork {
    /// A phone's profile: push name, "about", picture (digits or a JID).
    pub fn profile(&self, phone: &str) -> Result<ProfileState, AdminError> {
        profile(&self.net, phone)
    }
}
