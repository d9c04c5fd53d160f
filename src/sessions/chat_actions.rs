//! Chat management (archive, unarchive, mark unread): one app-state mutation through the
//! engine, for the `💬 Chats` routes in `api/chat_actions.rs`.
//!
//! Owns: nothing long-lived. Each operation borrows a live [`engine::Session`] (from the
//! WORKING gate) for one call. The resulting `chat.archive` event is not published here:
//! the client re-reads its own patch from the app-state sync, and that change (like one
//! made on the phone) reaches the inbox through the engine's events, so it fires once.
//! Never imports actix.

use super::{Result, SessionManager};
use crate::engine;

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
}
