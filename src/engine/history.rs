//! History sync through the engine: the blob a phone pushes to a newly linked companion
//! (whatsapp-rust's `Event::HistorySync`), read incrementally into wharf's own types.
//!
//! Owns: [`HistoryBlob`] (an opaque handle on the compressed blob) and its reader. The
//! event handler wraps the blob (no decoding on the client's event loop); the session's
//! delivery task calls [`HistoryBlob::read`], which decodes on one blocking thread,
//! conversation by conversation (`LazyHistorySync::stream`, so the whole decompressed blob
//! is never in memory), and hands the chats over a small bounded channel; the thread ends
//! when the blob is read or the receiver is dropped. Only text messages are kept (other
//! kinds need their media keys and a live connection).

use tokio::sync::mpsc;
use whatsapp_rust::{Jid, wacore::types::events::LazyHistorySync, waproto::whatsapp as wa};

use super::messaging::waha_id;

/// How many decoded chats may wait for the store at once.
const CHANNEL: usize = 2;

/// A history sync blob as it arrived. Cheap to clone (the bytes are shared).
#[derive(Clone)]
pub struct HistoryBlob(LazyHistorySync);

impl std::fmt::Debug for HistoryBlob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HistoryBlob")
            .field("compressed", &self.0.compressed_bytes().len())
            .finish()
    }
}

/// Two handles are equal when they carry the same bytes (for the engine's event enum).
impl PartialEq for HistoryBlob {
    fn eq(&self, other: &Self) -> bool {
        self.0.compressed_bytes() == other.0.compressed_bytes()
    }
}

impl HistoryBlob {
    pub(super) fn new(lazy: LazyHistorySync) -> Self {
        Self(lazy)
    }
}

/// One text message of a synced chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryMessage {
    /// WhatsApp message id.
    pub wa_id: String,
    /// Ours (from another device of the account).
    pub from_me: bool,
    /// The sender in a group (WAHA id).
    pub participant: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    /// The sender's push name, when the blob has it.
    pub push_name: Option<String>,
    /// The text.
    pub body: String,
}

/// One synced chat, its newest `depth` text messages, oldest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryChat {
    /// WAHA chat id.
    pub id: String,
    /// Its name, when the blob has one.
    pub name: Option<String>,
    /// Messages.
    pub messages: Vec<HistoryMessage>,
}

/// What the blob carries besides chats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HistoryExtras {
    /// `(WAHA id, push name)`.
    pub push_names: Vec<(String, String)>,
    /// `(…@lid, …@c.us)`.
    pub lids: Vec<(String, String)>,
}

/// What [`HistoryBlob::read`] yields: the chats one by one, then the extras once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryItem {
    /// A chat.
    Chat(HistoryChat),
    /// Push names and LID pairs (last).
    Extras(HistoryExtras),
}

fn wid(raw: &str) -> Option<String> {
    raw.parse::<Jid>().ok().map(|j| waha_id(&j))
}

fn text_of(m: &wa::Message) -> Option<String> {
    m.conversation.clone().or_else(|| {
        m.extended_text_message
            .as_option()
            .and_then(|x| x.text.clone())
    })
}

fn chat(c: wa::Conversation, depth: usize) -> Option<HistoryChat> {
    let id = wid(&c.id)?;
    let mut messages: Vec<HistoryMessage> = c
        .messages
        .iter()
        .filter_map(|h| {
            let info = h.message.as_option()?;
            let key = info.key.as_option()?;
            let body = text_of(info.message.as_option()?)?;
            Some(HistoryMessage {
                wa_id: key.id.clone()?,
                from_me: key.from_me.unwrap_or(false),
                participant: key
                    .participant
                    .as_deref()
                    .or(info.participant.as_deref())
                    .and_then(wid),
                timestamp: i64::try_from(info.message_timestamp.unwrap_or(0)).unwrap_or(0),
                push_name: info.push_name.clone(),
                body,
            })
        })
        .collect();
    messages.sort_by_key(|m| m.timestamp);
    let skip = messages.len().saturating_sub(depth);
    messages.drain(..skip);
    Some(HistoryChat {
        id,
        name: c.name.filter(|n| !n.is_empty()),
        messages,
    })
}

fn extras(rest: &wa::HistorySync) -> HistoryExtras {
    HistoryExtras {
        push_names: rest
            .pushnames
            .iter()
            .filter_map(|p| Some((wid(p.id.as_deref()?)?, p.pushname.clone()?)))
            .filter(|(_, n)| !n.is_empty())
            .collect(),
        lids: rest
            .phone_number_to_lid_mappings
            .iter()
            .filter_map(|m| Some((wid(m.lid_jid.as_deref()?)?, wid(m.pn_jid.as_deref()?)?)))
            .collect(),
    }
}

impl HistoryBlob {
    /// Reads the blob on a blocking thread: each chat (its newest `depth` text messages),
    /// then the extras. The receiver ends early on a corrupt blob (logged).
    pub fn read(self, session: String, depth: usize) -> mpsc::Receiver<HistoryItem> {
        let (tx, rx) = mpsc::channel(CHANNEL);
        tokio::task::spawn_blocking(move || {
            let mut stream = self.0.stream();
            loop {
                match stream.next_conversation() {
                    Ok(Some(c)) => {
                        if let Some(c) = chat(c, depth)
                            && tx.blocking_send(HistoryItem::Chat(c)).is_err()
                        {
                            return;
                        }
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(session, error = %e, "unreadable history sync blob");
                        return;
                    }
                }
            }
            match stream.remainder() {
                Ok(rest) => {
                    let _ = tx.blocking_send(HistoryItem::Extras(extras(&rest)));
                }
                Err(e) => tracing::warn!(session, error = %e, "unreadable history sync blob"),
            }
        });
        rx
    }
}
