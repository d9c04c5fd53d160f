//! Presence: setting ours, subscribing to a chat's, and reading what the subscribed chats
//! last showed, in WAHA's `WAHAChatPresences` shape.
//!
//! Owns: nothing long-lived; the subscriptions and last known presences live with the
//! connection (`engine::presence::Book`). Every operation borrows a live
//! [`engine::Session`] for one call (from `api/presence.rs`). Never imports actix.

use super::{Result, SessionManager};
use crate::{
    engine::{
        self,
        presence::{ChatPresences, OwnPresence},
    },
    model::events::{WAHAChatPresences, WAHAPresenceData},
};

/// WAHA's shape of one chat's presences.
fn chat_presences(id: String, presences: ChatPresences) -> WAHAChatPresences {
    WAHAChatPresences {
        id,
        presences: presences
            .into_iter()
            .map(|(participant, seen)| WAHAPresenceData {
                participant,
                last_known_presence: seen.state,
                last_seen: seen.last_seen,
            })
            .collect(),
    }
}

impl SessionManager {
    /// Sets our presence (online/offline, or a chat state in `chat`).
    ///
    /// # Errors
    /// A chat state without a chat, a bad chat id, or the stanza could not be sent.
    pub async fn set_presence(
        &self,
        engine: &engine::Session,
        presence: OwnPresence,
        chat: Option<&str>,
    ) -> Result<()> {
        Ok(engine.set_presence(presence, chat).await?)
    }

    /// Subscribes to `chat`'s presence.
    ///
    /// # Errors
    /// A bad chat id, or the stanza could not be sent.
    pub async fn subscribe_presence(&self, engine: &engine::Session, chat: &str) -> Result<()> {
        engine.subscribe_presence(chat).await?;
        Ok(())
    }

    /// `chat`'s last known presences, subscribing first when it is not yet subscribed
    /// (WhatsApp's answer then arrives as a `presence.update`).
    ///
    /// # Errors
    /// A bad chat id, or the subscription could not be sent.
    pub async fn chat_presence(
        &self,
        engine: &engine::Session,
        chat: &str,
    ) -> Result<WAHAChatPresences> {
        let id = engine.subscribe_presence_once(chat).await?;
        Ok(chat_presences(id.clone(), engine.chat_presences(&id)))
    }

    /// Every subscribed chat with its last known presences.
    pub fn all_presences(&self, engine: &engine::Session) -> Vec<WAHAChatPresences> {
        engine
            .all_presences()
            .into_iter()
            .map(|(id, p)| chat_presences(id, p))
            .collect()
    }
}
