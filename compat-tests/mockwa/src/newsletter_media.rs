//! Channel (newsletter) media on the mock CDN: the plaintext upload
//! (`POST /newsletter/newsletter-<type>/<token>?auth=..&token=..`), its download
//! (`GET <direct_path>?token=..`) and the check a media post to a channel passes.
//!
//! WhatsApp keeps channel media unencrypted: the upload's `token` is the base64url
//! SHA-256 of the body (checked here, so an encrypted or truncated body is refused),
//! the answer carries `url`, `direct_path` and a `handle`, and the post names the
//! upload with `media_id="<handle>"`. A post whose media message carries a media key,
//! or names no upload, or points at another blob, is refused with a `400` ack (see
//! [`check_post`]). Called by `crate::server` (HTTP) and `crate::newsletters::post`;
//! the blobs live in `State::media` (counted towards the media cap) and the handles
//! in `State::newsletter_uploads`, for as long as the network.

use std::sync::Arc;

use base64::Engine as _;
use buffa::Message as _;
use serde_json::{Value, json};
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::state::{MEDIA_CAP_BYTES, Net, State};
use crate::wire::{attr, children};

/// One plaintext upload, by its handle.
#[derive(Debug, Clone)]
pub(crate) struct Upload {
    pub(crate) direct_path: String,
    pub(crate) sha256: Vec<u8>,
}

fn sha256(body: &[u8]) -> Vec<u8> {
    ring::digest::digest(&ring::digest::SHA256, body)
        .as_ref()
        .to_vec()
}

/// A base64url token (padded or not) → bytes.
fn token_bytes(token: &str) -> Option<Vec<u8>> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token.trim_end_matches('='))
        .ok()
}

fn query_param<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Whether `path` is channel media (`/newsletter/…`).
pub(crate) fn is_newsletter_path(path: &str) -> bool {
    path.starts_with("/newsletter/")
}

/// `POST /newsletter/newsletter-<type>/<token>`: stores the plaintext if `token` is its
/// SHA-256; answers `(status, body)`.
pub(crate) fn upload(net: &Arc<Net>, path: &str, body: Vec<u8>) -> (u16, Value) {
    let mut segs = path.trim_start_matches('/').split('/');
    let (Some("newsletter"), Some(kind), Some(token), None) =
        (segs.next(), segs.next(), segs.next(), segs.next())
    else {
        return (404, json!({"error": "not found"}));
    };
    if !kind.starts_with("newsletter-") {
        return (404, json!({"error": "not found"}));
    }
    let hash = sha256(&body);
    if token_bytes(token).as_deref() != Some(hash.as_slice()) {
        return (
            400,
            json!({"error": "token is not the SHA-256 of the body (channel media is uploaded in the clear)"}),
        );
    }
    let direct_path = format!("/newsletter/{kind}/{}", crate::state::random_token(12));
    let handle = crate::state::random_token(16);
    let mut st = net.lock();
    if st.media_bytes + body.len() > MEDIA_CAP_BYTES {
        return (413, json!({"error": "media store full"}));
    }
    st.media_bytes += body.len();
    st.media.insert(direct_path.clone(), Arc::new(body));
    st.newsletter_uploads.insert(
        handle.clone(),
        Upload {
            direct_path: direct_path.clone(),
            sha256: hash,
        },
    );
    let url = format!("https://{}{direct_path}", net.addr);
    (
        200,
        json!({"url": url, "direct_path": direct_path, "handle": handle}),
    )
}

/// `GET <direct_path>?token=<base64url SHA-256>`: the plaintext, when the token names it.
pub(crate) fn download(net: &Arc<Net>, path: &str, query: &str) -> Option<Arc<Vec<u8>>> {
    let blob = net.lock().media.get(path).cloned()?;
    let token = query_param(query, "token").and_then(token_bytes)?;
    (token == sha256(&blob)).then_some(blob)
}

/// A media sub-message's `(has a media key, direct_path, file_sha256)`.
type MediaFields<'a> = (bool, Option<&'a str>, Option<&'a [u8]>);

/// The media sub-message's fields [`check_post`] compares.
fn media_fields(m: &wa::Message) -> Option<MediaFields<'_>> {
    macro_rules! fields {
        ($($f:ident),*) => {$(
            if let Some(x) = m.$f.as_option() {
                return Some((
                    x.media_key.is_some(),
                    x.direct_path.as_deref(),
                    x.file_sha256.as_deref(),
                ));
            }
        )*};
    }
    fields!(
        image_message,
        video_message,
        ptv_message,
        audio_message,
        document_message,
        sticker_message
    );
    None
}

/// A media post (`<plaintext mediatype=…>`) must name a plaintext upload by `media_id`
/// and carry that upload's direct path and hash, without a media key. `Err` is why not.
pub(crate) fn check_post(st: &State, n: &Node) -> Result<(), &'static str> {
    let Some(plain) = children(n).iter().find(|k| k.tag == "plaintext") else {
        return Ok(());
    };
    if attr(plain, "mediatype").is_none() {
        return Ok(());
    }
    let upload = attr(n, "media_id")
        .and_then(|h| st.newsletter_uploads.get(h.as_str()))
        .ok_or("a media post must name its upload (media_id)")?;
    let message = crate::wire::bytes(plain)
        .and_then(|b| wa::Message::decode_from_slice(b).ok())
        .ok_or("undecodable message")?;
    let (keyed, direct_path, file_sha256) =
        media_fields(&message).ok_or("mediatype without a media message")?;
    if keyed {
        return Err("channel media carries no media key");
    }
    if direct_path != Some(upload.direct_path.as_str())
        || file_sha256 != Some(upload.sha256.as_slice())
    {
        return Err("the media message does not match its upload");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{query_param, sha256, token_bytes};
    use base64::Engine as _;

    #[test]
    fn tokens_are_base64url_sha256_padded_or_not() {
        let h = sha256(b"hello");
        let t = base64::engine::general_purpose::URL_SAFE.encode(&h);
        assert!(t.ends_with('='));
        assert_eq!(token_bytes(&t), Some(h.clone()));
        assert_eq!(token_bytes(t.trim_end_matches('=')), Some(h));
        assert_eq!(query_param("auth=x&token=abc", "token"), Some("abc"));
        assert_eq!(query_param("auth=x", "token"), None);
    }
}
