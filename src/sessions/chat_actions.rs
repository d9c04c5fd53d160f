//! Chat management (archive, unarchive, mark unread): one app-state mutation through the
//! engine, for the `💬 Chats` routes in `api/chat_actions.rs`.
//!
//! Owns: nothing long-lived. Each operation borrows a live [`engine::Session`] (from the
//! WORKING gate) for one call. The resulting `chat.archive` event is not published here:
//! the client re-reads its own patch from the app-state sync, and that change (like one
//! made on the phone) reaches the inbox through the engine's events, so it fires once.
//! Never imports actix.

use super::{Error, Result, SessionManager};
use crate::{
    engine::{
        self,
        chat_actions::{PinFor, PinTarget},
    },
    model::message::MessageId,
};

impl SessionManager {
    /// Archives (`archived: true`) or unarchives `chat` on every device of the account.
    ///
    /// # Errors
    /// A bad chat id, WhatsApp's refusal.
    pub async fn archive_chat(
        &self,
        engine: &engine::Session,
        chat: &str,
        archived: bool,
    ) -> Result<()> {
        Ok(engine.archive_chat(chat, archived).await?)
    }

    /// Marks `chat` unread on every device of the account.
    ///
    /// # Errors
    /// A bad chat id, WhatsApp's refusal.
    pub async fn mark_chat_unread(&self, engine: &engine::Session, chat: &str) -> Result<()> {
        Ok(engine.mark_chat_unread(chat).await?)
    }

    /// The chat's profile picture URL (`None`: it has none).
    ///
    /// # Errors
    /// A bad chat id, WhatsApp's refusal.
    pub async fn chat_picture(
        &self,
        engine: &engine::Session,
        chat: &str,
    ) -> Result<Option<String>> {
        Ok(engine.chat_picture(chat).await?)
    }

    /// Deletes `chat` on every device of the account (`clear_only`: only its messages),
    /// then from wharf's message history (the chat row too unless `clear_only`).
    ///
    /// # Errors
    /// A bad chat id, WhatsApp's refusal (the history is then untouched), the history's error.
    pub async fn delete_chat(
        &self,
        engine: &engine::Session,
        chat: &str,
        clear_only: bool,
    ) -> Result<()> {
        engine.delete_chat(chat, clear_only).await?;
        self.messages()
            .delete_chat(engine.name(), chat, !clear_only)
            .await?;
        Ok(())
    }

    /// Pins (`Some`) or unpins one message of `chat` for everyone in it.
    ///
    /// # Errors
    /// A bad message id (WAHA's form), WhatsApp's refusal.
    pub async fn pin_message(
        &self,
        engine: &engine::Session,
        chat: &str,
        message_id: &str,
        pin: Option<PinFor>,
    ) -> Result<()> {
        let id =
            MessageId::parse(message_id).ok_or_else(|| Error::BadMessageId(message_id.into()))?;
        let target = PinTarget {
            chat,
            wa_id: &id.wa_id,
            from_me: id.from_me,
            participant: id.participant.as_deref(),
        };
        Ok(engine.pin_message(&target, pin).await?)
    }
}
