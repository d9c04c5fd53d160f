//! The message store: wharf's own history of every message a session sends or receives.
//!
//! WhatsApp keeps no history for a linked device to query, so WAHA's chats API
//! (`GET /api/{session}/chats/{chatId}/messages`, waha.md §4.4) can only answer from what
//! the server recorded itself. The engine glue calls [`MessageStore::save`] for every
//! incoming and outgoing message and [`MessageStore::set_ack`] for every receipt; the
//! `💬 Chats` handlers read through [`MessageStore::list`] / [`MessageStore::chats`].
//!
//! Owns: the domain facade over `store.session(name).messages()` — SQLite
//! `{session_dir}/messages.sqlite3` or the MongoDB collections `messages` and `chats` in the
//! session's database (`store/{sqlite,mongo}/messages.rs`) — and the retention purge
//! (`WHARF_MESSAGES_RETENTION_DAYS`, a task owned by `App` through [`RetentionTask`]).
//! Built once by `app`, cloned (cheaply) into handlers and engine code; lives for the whole
//! process.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use crate::store::{ChatQuery, ChatRow, ChatSortBy, MessageQuery, SortOrder};
use crate::{
    model::message::WAMessage,
    store::{Result, SessionStore, Store},
};

/// Handle to the message history of every session. Cheap to clone (a [`Store`]).
#[derive(Clone)]
pub struct MessageStore {
    /// Where messages live, and the session list for retention.
    store: Store,
}

impl MessageStore {
    /// Message history on the same backend as `store` (SQLite files next to the session's
    /// credentials, or the session's MongoDB database through the store's one client).
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The session's storage; a name the store cannot hold is [`crate::store::Error::Backend`].
    fn session(&self, session: &str) -> Result<SessionStore> {
        Ok(self.store.session(&self.store.session_name(session)?))
    }

    /// Records a message: inserts it, or replaces the stored one with the same WAHA id
    /// (idempotent: events delivered twice store one row). A stored ack is never lowered
    /// by a re-save (a receipt may have arrived first). Updates the chat row: created if
    /// new, name from the peer's push name if known, last message and
    /// `conversationTimestamp` when this message is not older than the chat's last one.
    ///
    /// # Errors
    /// The backend failed; nothing is half-written on SQLite (one transaction).
    pub async fn save(&self, session: &str, msg: &WAMessage) -> Result<()> {
        self.session(session)?.messages().save(msg).await
    }

    /// Names a chat (a group's subject, a contact's name) for the chats list; creates the
    /// chat row if there is none yet.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn set_chat_name(&self, session: &str, chat_id: &str, name: &str) -> Result<()> {
        self.session(session)?
            .messages()
            .set_chat_name(chat_id, name)
            .await
    }

    /// Applies a receipt, by raw WhatsApp id (receipts carry only that), to every stored
    /// message with that id. Acks never go down (see [`ack::is_advance`]: a late DEVICE
    /// receipt does not undo READ; only PENDING may become ERROR). Returns the newest such
    /// message as stored afterwards (unchanged when the ack was not an advance), or
    /// `None` when no message has this id.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn set_ack(&self, session: &str, wa_id: &str, ack: i32) -> Result<Option<WAMessage>> {
        self.session(session)?.messages().set_ack(wa_id, ack).await
    }

    /// One message by its WAHA id (`{fromMe}_{chatId}_{waId}[_{participant}]`).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn get(&self, session: &str, id: &str) -> Result<Option<WAMessage>> {
        self.session(session)?.messages().get(id).await
    }

    /// The newest message with this raw WhatsApp id.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn find_by_wa_id(&self, session: &str, wa_id: &str) -> Result<Option<WAMessage>> {
        self.session(session)?.messages().find_by_wa_id(wa_id).await
    }

    /// Replaces the text of the newest message with this raw WhatsApp id (an edit seen
    /// from the phone or made through the API); returns it as edited.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn edit(
        &self,
        session: &str,
        wa_id: &str,
        new_body: &str,
    ) -> Result<Option<WAMessage>> {
        self.session(session)?
            .messages()
            .edit(wa_id, new_body)
            .await
    }

    /// Marks the newest message with this raw WhatsApp id as revoked ("deleted for
    /// everyone"): `body` becomes `""` and `_data.revoked` `true`, so history shows the
    /// gap. Returns the message as it was before (WAHA's `message.revoked` event carries
    /// `before`).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn revoke(&self, session: &str, wa_id: &str) -> Result<Option<WAMessage>> {
        self.session(session)?.messages().revoke(wa_id).await
    }

    /// Messages of one chat, filtered, sorted by timestamp and paged (see
    /// [`MessageQuery`]).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn list(
        &self,
        session: &str,
        chat_id: &str,
        q: &MessageQuery,
    ) -> Result<Vec<WAMessage>> {
        self.session(session)?.messages().list(chat_id, q).await
    }

    /// The chats of a session with their last message, sorted and paged (see
    /// [`ChatQuery`]).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn chats(&self, session: &str, q: &ChatQuery) -> Result<Vec<ChatRow>> {
        self.session(session)?.messages().chats(q).await
    }

    /// The store side of WAHA's `POST /chats/{chatId}/messages/read`: marks the unread
    /// incoming messages of a chat (not `fromMe`, ack below READ) as READ, newest first,
    /// at most `limit` of them and none older than `since_unix_s`. Returns them as
    /// updated, so the caller can send the read receipts for exactly these messages
    /// through the engine (hook for the engine glue; the store sends nothing).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn mark_read(
        &self,
        session: &str,
        chat_id: &str,
        limit: Option<u32>,
        since_unix_s: Option<i64>,
    ) -> Result<Vec<WAMessage>> {
        self.session(session)?
            .messages()
            .mark_read(chat_id, limit, since_unix_s)
            .await
    }

    /// Deletes the session's messages older than `cutoff_unix_s` (and chats whose last
    /// message is older). Returns how many messages went.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn purge_older_than(&self, session: &str, cutoff_unix_s: i64) -> Result<u64> {
        self.session(session)?
            .messages()
            .purge_older_than(cutoff_unix_s)
            .await
    }

    /// Deletes `chat_id`'s messages (with `chat_too`, the chat as well).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn delete_chat(&self, session: &str, chat_id: &str, chat_too: bool) -> Result<u64> {
        self.session(session)?
            .messages()
            .delete_chat(chat_id, chat_too)
            .await
    }

    /// Purges every stored session (see [`Self::purge_older_than`]); a failing session is
    /// logged and skipped. Returns the total of messages deleted.
    ///
    /// # Errors
    /// The session list could not be read.
    pub async fn purge_all_older_than(&self, cutoff_unix_s: i64) -> Result<u64> {
        let mut total = 0;
        for session in self.store.list_sessions().await? {
            match self.purge_older_than(&session.name, cutoff_unix_s).await {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(session = session.name, error = %e, "messages: retention purge failed");
                }
            }
        }
        Ok(total)
    }

    /// Starts the retention task for `WHARF_MESSAGES_RETENTION_DAYS`: every `every`
    /// (first run at once), deletes messages older than `retention_days` days in every
    /// stored session, until `cancel` (or [`RetentionTask::stop`]). `None` (no task) when
    /// `retention_days` is 0: keep forever, as WAHA does. The caller owns the task: `App`
    /// keeps it and stops it (cancel, then join with a deadline) on shutdown.
    #[must_use = "the retention task must be kept and stopped on shutdown"]
    pub fn spawn_retention(
        &self,
        retention_days: u32,
        every: Duration,
        cancel: CancellationToken,
    ) -> Option<RetentionTask> {
        if retention_days == 0 {
            return None;
        }
        let this = self.clone();
        let token = cancel.clone();
        let join = tokio::spawn(async move {
            loop {
                let cutoff = chrono::Utc::now().timestamp() - i64::from(retention_days) * 86_400;
                // A purge in progress finishes before the task looks at the token: a
                // transaction is never cut in half, and one purge is short.
                match this.purge_all_older_than(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deleted = n, retention_days, "messages: retention purge")
                    }
                    Err(e) => tracing::warn!(error = %e, "messages: retention purge failed"),
                }
                tokio::select! {
                    () = token.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        });
        Some(RetentionTask { cancel, join })
    }
}

/// The running retention task. Owned by `App`, which stops it on shutdown; dropping it
/// detaches the task (it still ends with its token).
#[must_use = "the retention task must be kept and stopped on shutdown"]
pub struct RetentionTask {
    /// Ends the task at its next wait.
    cancel: CancellationToken,
    /// The task itself.
    join: tokio::task::JoinHandle<()>,
}

impl RetentionTask {
    /// Waits for the task to end (after its token was cancelled).
    ///
    /// # Errors
    /// The task panicked or was aborted.
    pub async fn join(self) -> std::result::Result<(), tokio::task::JoinError> {
        self.join.await
    }

    /// Two-phase stop: cancels, then waits at most `deadline` (a purge in progress is
    /// finished first). Past the deadline the task is aborted. Returns whether it ended in
    /// time.
    pub async fn stop(self, deadline: Duration) -> bool {
        self.cancel.cancel();
        let abort = self.join.abort_handle();
        match tokio::time::timeout(deadline, self.join).await {
            Ok(_) => true,
            Err(_) => {
                abort.abort();
                tracing::warn!("messages: retention task did not stop in time; aborted");
                false
            }
        }
    }
}
