//! History sync: what a mock phone already has (chats with recent messages), pushed to a
//! newly linked companion the way a real phone does — a `HistorySyncNotification` from
//! the primary device (device 0) with the `INITIAL_BOOTSTRAP` blob inline
//! (`initial_hist_bootstrap_inline_payload`, zlib), carrying the chats, their messages,
//! the push names of the phones involved and their LID ↔ phone-number pairs.
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

/// `{"chats": [...]}`.
#[derive(Debug, Clone, Deserialize)]
pub struct SeedHistory {
    /// The chats.
    pub chats: Vec<SeedChat>,
}

/// The `INITIAL_BOOTSTRAP` history of `phone`, or `None` when none was seeded.
pub(crate) fn bootstrap(st: &State, phone: &str) -> Option<wa::HistorySync> {
    let chats = st.book.history.get(phone)?;
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

/// The protocol message carrying `history` inline.
pub(crate) fn notification(history: &wa::HistorySync) -> wa::Message {
    use buffa::Message as _;
    let raw = history.encode_to_vec();
    let payload = zlib_stored(&raw);
    wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::HISTORY_SYNC_NOTIFICATION),
            history_sync_notification: buffa::MessageField::some(
                wa::message::HistorySyncNotification {
                    file_length: Some(raw.len() as u64),
                    sync_type: Some(wa::message::HistorySyncType::INITIAL_BOOTSTRAP),
                    chunk_order: Some(0),
                    progress: Some(100),
                    initial_hist_bootstrap_inline_payload: Some(payload),
                    ..Default::default()
                },
            ),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A zlib stream of "stored" (uncompressed) deflate blocks: valid zlib that any inflater
/// reads, without a compressor dependency (the blobs here are small).
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
