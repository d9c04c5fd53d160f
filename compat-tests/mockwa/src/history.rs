//! History sync: what a mock phone already has (chats with recent messages), pushed to a
//! newly linked companion the way a real phone does — a `HistorySyncNotification` from
//! the primary device (device 0) carrying the `INITIAL_BOOTSTRAP` blob (zlib): the chats,
//! their messages, the push names of the phones involved and their LID ↔ phone-number
//! pairs. A small blob goes inline (`initial_hist_bootstrap_inline_payload`); a larger
//! one (over [`INLINE_MAX`] bytes, or any when seeded with `external: true`) is encrypted
//! as `md-msg-hist` media, put on the mock CDN ([`crate::state::State::media`], served
//! at its `directPath`) and announced by its media fields (`directPath`, `mediaKey`,
//! `fileSha256`, `fileEncSha256`, `fileLength`), which the companion downloads, as
//! real WhatsApp does for all but the smallest history.
//!
//! Seeded per phone through `POST /admin/phones/{phone}/history`
//! ([`crate::MockNetwork::seed_history`]) and kept in [`crate::contacts::Book`] for as
//! long as the network. Sent by [`crate::conn`] on a companion's first login after
//! pairing (next to the app-state key share), as its own short-lived task.

use serde::Deserialize;
use waproto::whatsapp as wa;

use crate::state::State;

/// One seeded chat (`POST /admin/phones/{phone}/history` body: `{"chats": [..]}`).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedChat {
    /// The peer's phone number (digits).
    pub phone: String,
    /// The chat's display name, if any.
    #[serde(default)]
    pub name: Option<String>,
    /// The peer's push name (set on the peer's phone when given).
    #[serde(default)]
    pub push_name: Option<String>,
    /// Its messages, oldest first.
    #[serde(default)]
    pub messages: Vec<SeedMessage>,
}

/// One seeded text message.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedMessage {
    /// WhatsApp message id.
    pub id: String,
    /// Sent by the phone's owner.
    #[serde(default)]
    pub from_me: bool,
    /// Text.
    pub text: String,
    /// Unix seconds.
    pub timestamp: u64,
}

/// `{"chats": [...], "external": true}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SeedHistory {
    /// The chats.
    pub chats: Vec<SeedChat>,
    /// Send the blob through the CDN (`true`) or inline (`false`); by default it goes
    /// inline up to [`INLINE_MAX`] bytes.
    #[serde(default)]
    pub external: Option<bool>,
}

/// The largest encoded history sent inline by default.
pub const INLINE_MAX: usize = 64 * 1024;

/// The history sync notification `phone` sends a newly linked companion, or `None` when
/// no history was seeded (or the CDN is full: then it sends none, and says why).
pub(crate) fn pushed(st: &mut State, phone: &str) -> Option<wa::Message> {
    let history = bootstrap(st, phone)?;
    let external = st.book.history.get(phone).and_then(|h| h.external);
    use buffa::Message as _;
    let raw = history.encode_to_vec();
    if external.unwrap_or(raw.len() > INLINE_MAX) {
        match upload(st, &raw) {
            Ok(blob) => Some(notification(raw.len(), Payload::External(blob))),
            Err(e) => {
                tracing::warn!("mockwa: history of {phone} not sent: {e}");
                None
            }
        }
    } else {
        Some(notification(raw.len(), Payload::Inline(zlib_stored(&raw))))
    }
}

/// A history blob on the mock CDN: what the notification tells the companion.
struct Blob {
    direct_path: String,
    media_key: Vec<u8>,
    file_sha256: Vec<u8>,
    file_enc_sha256: Vec<u8>,
    file_length: u64,
}

/// How the notification carries the blob.
enum Payload {
    Inline(Vec<u8>),
    External(Blob),
}

/// Compresses, encrypts (`md-msg-hist` media keys) and stores the blob on the mock CDN.
fn upload(st: &mut State, raw: &[u8]) -> Result<Blob, String> {
    let compressed = zlib_stored(raw);
    let enc = wacore::upload::encrypt_media(&compressed, wacore::download::MediaType::History)
        .map_err(|e| format!("encryption failed: {e:#}"))?;
    let size = enc.data_to_upload.len();
    if st.media_bytes + size > crate::state::MEDIA_CAP_BYTES {
        return Err("media store full".into());
    }
    let direct_path = format!(
        "/v/t62.15575-24/mockwa-hist-{}",
        crate::state::random_token(8)
    );
    st.media_bytes += size;
    st.media
        .insert(direct_path.clone(), std::sync::Arc::new(enc.data_to_upload));
    Ok(Blob {
        direct_path,
        media_key: enc.media_key.to_vec(),
        file_sha256: enc.file_sha256.to_vec(),
        file_enc_sha256: enc.file_enc_sha256.to_vec(),
        file_length: compressed.len() as u64,
    })
}

/// The `INITIAL_BOOTSTRAP` history of `phone`, or `None` when none was seeded.
fn bootstrap(st: &State, phone: &str) -> Option<wa::HistorySync> {
    let chats = &st.book.history.get(phone)?.chats;
    let mut conversations = Vec::new();
    let mut pushnames = Vec::new();
    let mut lids = Vec::new();
    for c in chats {
        let peer = format!("{}@s.whatsapp.net", c.phone);
        let messages = c
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| wa::HistorySyncMsg {
                message: buffa::MessageField::some(wa::WebMessageInfo {
                    key: buffa::MessageField::some(wa::MessageKey {
                        remote_jid: Some(peer.clone()),
                        from_me: Some(m.from_me),
                        id: Some(m.id.clone()),
                        ..Default::default()
                    }),
                    message: buffa::MessageField::some(wa::Message {
                        conversation: Some(m.text.clone()),
                        ..Default::default()
                    }),
                    message_timestamp: Some(m.timestamp),
                    ..Default::default()
                }),
                msg_order_id: Some(i as u64 + 1),
            })
            .collect();
        conversations.push(wa::Conversation {
            id: peer.clone(),
            messages,
            name: c.name.clone(),
            conversation_timestamp: c.messages.last().map(|m| m.timestamp),
            ..Default::default()
        });
        if let Some(p) = st.phones.get(&c.phone) {
            if !p.push_name.is_empty() {
                pushnames.push(wa::Pushname {
                    id: Some(peer.clone()),
                    pushname: Some(p.push_name.clone()),
                });
            }
            lids.push(wa::PhoneNumberToLIDMapping {
                pn_jid: Some(peer.clone()),
                lid_jid: Some(format!("{}@lid", p.lid)),
            });
        }
    }
    Some(wa::HistorySync {
        sync_type: wa::history_sync::HistorySyncType::INITIAL_BOOTSTRAP,
        conversations,
        chunk_order: Some(0),
        progress: Some(100),
        pushnames,
        phone_number_to_lid_mappings: lids,
        ..Default::default()
    })
}

/// The protocol message announcing the blob (`raw_len`: its decoded length).
fn notification(raw_len: usize, payload: Payload) -> wa::Message {
    let mut n = wa::message::HistorySyncNotification {
        file_length: Some(raw_len as u64),
        sync_type: Some(wa::message::HistorySyncType::INITIAL_BOOTSTRAP),
        chunk_order: Some(0),
        progress: Some(100),
        ..Default::default()
    };
    match payload {
        Payload::Inline(bytes) => n.initial_hist_bootstrap_inline_payload = Some(bytes),
        Payload::External(b) => {
            n.direct_path = Some(b.direct_path);
            n.media_key = Some(b.media_key);
            n.file_sha256 = Some(b.file_sha256);
            n.file_enc_sha256 = Some(b.file_enc_sha256);
            // The downloaded (compressed) length, as the CDN serves it decrypted.
            n.file_length = Some(b.file_length);
        }
    }
    wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::HISTORY_SYNC_NOTIFICATION),
            history_sync_notification: buffa::MessageField::some(n),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A zlib stream of "stored" (uncompressed) deflate blocks: valid zlib that any inflater
/// reads, without a compressor dependency (the blobs here are test-sized).
fn zlib_stored(data: &[u8]) -> Vec<u8> {
    let mut out = vec![0x78, 0x01];
    let mut chunks = data.chunks(0xFFFF).peekable();
    if chunks.peek().is_none() {
        out.extend_from_slice(&[1, 0, 0, 0xFF, 0xFF]);
    }
    while let Some(chunk) = chunks.next() {
        let last = chunks.peek().is_none();
        out.push(u8::from(last));
        let len = chunk.len() as u16;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&(!len).to_le_bytes());
        out.extend_from_slice(chunk);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &x in data {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    out.extend_from_slice(&((b << 16) | a).to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seeded(st: &mut State, messages: usize, external: Option<bool>) {
        st.ensure_phone("15550001111", "");
        let chat = SeedChat {
            phone: "15550002222".into(),
            name: None,
            push_name: None,
            messages: (0..messages)
                .map(|i| SeedMessage {
                    id: format!("3EB0{i:08}"),
                    from_me: false,
                    text: format!("message number {i}"),
                    timestamp: 1_700_000_000,
                })
                .collect(),
        };
        st.ensure_phone("15550002222", "");
        let history = SeedHistory {
            chats: vec![chat],
            external,
        };
        st.book.history.insert("15550001111".into(), history);
    }

    fn note(m: &wa::Message) -> &wa::message::HistorySyncNotification {
        m.protocol_message
            .as_option()
            .and_then(|p| p.history_sync_notification.as_option())
            .unwrap()
    }

    #[test]
    fn small_history_goes_inline_large_or_forced_through_the_cdn() {
        let mut st = State::default();
        seeded(&mut st, 3, None);
        let m = pushed(&mut st, "15550001111").unwrap();
        assert!(note(&m).initial_hist_bootstrap_inline_payload.is_some());
        assert!(note(&m).direct_path.is_none());
        assert!(st.media.is_empty());

        for (messages, external) in [(3, Some(true)), (3_000, None)] {
            let mut st = State::default();
            seeded(&mut st, messages, external);
            let m = pushed(&mut st, "15550001111").unwrap();
            let n = note(&m);
            assert!(n.initial_hist_bootstrap_inline_payload.is_none());
            let path = n.direct_path.clone().unwrap();
            let blob = st.media.get(&path).unwrap();
            // What the companion does: decrypt with the notification's key, then inflate.
            let compressed = wacore::download::DownloadUtils::verify_and_decrypt(
                blob,
                n.media_key.as_deref().unwrap(),
                wacore::download::MediaType::History,
            )
            .unwrap();
            assert_eq!(Some(compressed.len() as u64), n.file_length);
            let raw = wacore_binary::zlib_pool::decompress_zlib_pooled(
                &compressed,
                compressed.len() as u64,
            )
            .unwrap();
            use buffa::Message as _;
            let expected = bootstrap(&st, "15550001111").unwrap().encode_to_vec();
            assert_eq!(raw, expected);
            assert_eq!(raw.len() > INLINE_MAX, messages > 3);
        }
    }

    #[test]
    fn stored_zlib_inflates_back() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let z = super::zlib_stored(&data);
        let back = wacore_binary::zlib_pool::decompress_zlib_pooled(&z, data.len() as u64).unwrap();
        assert_eq!(back, data);
        let empty = super::zlib_stored(&[]);
        assert!(
            wacore_binary::zlib_pool::decompress_zlib_pooled(&empty, 0)
                .unwrap()
                .is_empty()
        );
    }
}
