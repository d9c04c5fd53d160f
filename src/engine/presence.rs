//! Presence through the engine: our own presence (online/offline, and typing, recording or
//! paused in a chat), subscriptions to other chats' presence, and the book of what each
//! subscribed chat's participants last showed.
//!
//! Owns: [`Book`], one per connection handle ([`Session`]), filled by `engine::run`'s
//! translation of every `Event::Presence` / `Event::ChatPresence` (before the event goes
//! on to the inbox, so a `GET` right after a webhook sees at least that state) and read by
//! `GET /api/{session}/presence[/{chatId}]` through `sessions::presence`. It lives as long
//! as the connection handle; whatsapp-rust re-sends the subscriptions itself after a
//! reconnect, so the book stays true across reconnects of one client.

use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Mutex,
};

use whatsapp_rust::features::ChatStateType;

use super::{
    Error, Session,
    messaging::{Presence, parse_chat, waha_id},
};

/// Our presence as WAHA names it (`WAHAPresenceStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OwnPresence {
    /// Available.
    Online,
    /// Unavailable.
    Offline,
    /// Composing in a chat.
    Typing,
    /// Recording audio in a chat.
    Recording,
    /// Stopped composing in a chat.
    Paused,
}

/// One participant's last known presence in a chat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `online`, `offline`, `typing`, `recording` or `paused`.
    pub state: String,
    /// Last seen (unix seconds) when WhatsApp said.
    pub last_seen: Option<i64>,
}

/// What a subscribed chat shows: participant → last known presence.
pub type ChatPresences = BTreeMap<String, Seen>;

/// The subscribed chats and the last presence of everyone seen in them.
#[derive(Debug, Default)]
pub struct Book {
    inner: Mutex<BookInner>,
}

#[derive(Debug, Default)]
struct BookInner {
    subscribed: BTreeSet<String>,
    chats: BTreeMap<String, ChatPresences>,
}

impl Book {
    fn lock(&self) -> std::sync::MutexGuard<'_, BookInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records a presence WhatsApp reported, as the `presence.update` it causes shows it
    /// (so a GET never contradicts the last event: a chat state has no last seen).
    pub fn record(&self, p: &Presence) {
        self.lock().chats.entry(p.chat.clone()).or_default().insert(
            p.participant.clone(),
            Seen {
                state: p.state.clone(),
                last_seen: p.last_seen,
            },
        );
    }

    fn subscribe(&self, chat: &str) {
        self.lock().subscribed.insert(chat.to_string());
    }

    fn is_subscribed(&self, chat: &str) -> bool {
        self.lock().subscribed.contains(chat)
    }

    fn chat(&self, chat: &str) -> ChatPresences {
        self.lock().chats.get(chat).cloned().unwrap_or_default()
    }

    fn all(&self) -> Vec<(String, ChatPresences)> {
        let book = self.lock();
        book.subscribed
            .iter()
            .map(|c| (c.clone(), book.chats.get(c).cloned().unwrap_or_default()))
            .collect()
    }
}

/// The WAHA id a presence is filed under: `…@c.us` for phone numbers, else as given.
fn chat_key(chat: &str) -> Result<(whatsapp_rust::Jid, String), Error> {
    let jid = parse_chat(chat).ok_or_else(|| {
        Error::BadRequest(format!(
            "chatId must be a chat id like 123456789@c.us, got {chat:?}"
        ))
    })?;
    let key = waha_id(&jid);
    Ok((jid, key))
}

/// Sends a chat state to `chat` (which a chat state needs).
async fn chat_state(
    client: &whatsapp_rust::Client,
    chat: Option<&str>,
    state: ChatStateType,
) -> Result<(), Error> {
    let Some(chat) = chat else {
        return Err(Error::BadRequest(
            "chatId is required for typing, recording and paused".into(),
        ));
    };
    let (jid, _) = chat_key(chat)?;
    client
        .chatstate()
        .send(&jid, state)
        .await
        .map_err(|e| Error::Send(super::chain(&e)))
}

impl Session {
    /// Records an incoming presence in this connection's book.
    pub(super) fn record_presence(&self, p: &Presence) {
        self.inner.presences.record(p);
    }

    /// Sets our presence: online/offline for everyone, or typing/recording/paused in `chat`.
    ///
    /// # Errors
    /// Stale handle, a chat state without a chat, an invalid chat id, or the stanza could
    /// not be sent.
    pub async fn set_presence(
        &self,
        presence: OwnPresence,
        chat: Option<&str>,
    ) -> Result<(), Error> {
        let client = self.client()?;
        let send = |e: &dyn std::error::Error| Error::Send(super::chain(e));
        match presence {
            OwnPresence::Online => client
                .presence()
                .set_available()
                .await
                .map_err(|e| send(&e)),
            OwnPresence::Offline => client
                .presence()
                .set_unavailable()
                .await
                .map_err(|e| send(&e)),
            OwnPresence::Typing => chat_state(client, chat, ChatStateType::Composing).await,
            OwnPresence::Recording => chat_state(client, chat, ChatStateType::Recording).await,
            OwnPresence::Paused => chat_state(client, chat, ChatStateType::Paused).await,
        }
    }

    /// Subscribes to `chat`'s presence (once per connection; WhatsApp answers with the
    /// current presence, which arrives as an event). Returns the chat's WAHA id.
    ///
    /// # Errors
    /// Stale handle, an invalid chat id, or the stanza could not be sent.
    pub async fn subscribe_presence(&self, chat: &str) -> Result<String, Error> {
        let client = self.client()?;
        let (jid, key) = chat_key(chat)?;
        client
            .presence()
            .subscribe(jid)
            .await
            .map_err(|e| Error::Send(super::chain(&e)))?;
        self.inner.presences.subscribe(&key);
        Ok(key)
    }

    /// Subscribes to `chat` unless this connection already is. Returns its WAHA id.
    ///
    /// # Errors
    /// As [`Session::subscribe_presence`].
    pub async fn subscribe_presence_once(&self, chat: &str) -> Result<String, Error> {
        let (_, key) = chat_key(chat)?;
        if self.inner.presences.is_subscribed(&key) {
            return Ok(key);
        }
        self.subscribe_presence(chat).await
    }

    /// The last known presences in `chat` (a WAHA id).
    pub fn chat_presences(&self, chat: &str) -> ChatPresences {
        self.inner.presences.chat(chat)
    }

    /// Every subscribed chat with its last known presences, ordered by chat id.
    pub fn all_presences(&self) -> Vec<(String, ChatPresences)> {
        self.inner.presences.all()
    }
}
