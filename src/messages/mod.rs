//! The message store: wharf's own history of every message a session sends or receives.
//!
//! WhatsApp keeps no history for a linked device to query, so WAHA's chats API
//! (`GET /api/{session}/chats/{chatId}/messages`, waha.md §4.4) can only answer from what
//! the server recorded itself. The engine glue calls [`MessageStore::save`] for every
//! incoming and outgoing message and [`MessageStore::set_ack`] for every receipt; the
//! `💬 Chats` handlers read through [`MessageStore::list`] / [`MessageStore::chats`].
//!
//! Owns: per-session message and chat rows, on the backend the [`Store`] uses — SQLite
//! `{session_dir}/messages.sqlite3` ([`sqlite`]) or the MongoDB collections `messages` and
//! `chats` in the session's database ([`mongo`]) — and the retention purge
//! (`WHARF_MESSAGES_RETENTION_DAYS`). Built once by `app`, cloned (cheaply) into handlers
//! and engine code; lives for the whole process.

pub mod model;
mod mongo;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

pub use self::model::{MessageId, WAMessage, ack, is_chat_id, message_id};
use crate::store::{Backend as StoreBackend, Result, Store};

/// Sort direction (WAHA's `sortOrder`: `desc` = new first, the default here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest / A first.
    Asc,
    /// Newest / Z first.
    #[default]
    Desc,
}

/// Filters and paging of [`MessageStore::list`] (WAHA's `GetChatMessagesQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// At most this many messages; `None` = all.
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
    /// By `timestamp` (ties by id, so pages never overlap).
    pub sort_order: SortOrder,
    /// `filter.timestamp.gte` (inclusive, unix seconds).
    pub timestamp_gte: Option<i64>,
    /// `filter.timestamp.lte` (inclusive, unix seconds).
    pub timestamp_lte: Option<i64>,
    /// `filter.fromMe`.
    pub from_me: Option<bool>,
    /// `filter.ack` (the code; see [`ack`]).
    pub ack: Option<i32>,
}

/// Sort key of [`MessageStore::chats`] (WAHA's `ChatSortField`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChatSortBy {
    /// Last message time (`conversationTimestamp`); the default.
    #[default]
    ConversationTimestamp,
    /// Chat id.
    Id,
    /// Chat name (chats without a name sort first ascending).
    Name,
}

/// Paging of [`MessageStore::chats`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatQuery {
    /// At most this many chats; `None` = all.
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
    /// Sort key (ties by id).
    pub sort_by: ChatSortBy,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Only these chat ids (the overview's `ids` filter); `None` = every chat.
    pub ids: Option<Vec<String>>,
}

/// A chat as the store knows it: built from the messages saved in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRow {
    /// Chat id (`…@c.us`, `…@g.us`, …).
    pub id: String,
    /// Display name, when known (the peer's push name, or [`MessageStore::set_chat_name`]).
    pub name: Option<String>,
    /// Timestamp of the newest message (unix seconds; 0 = none yet).
    pub conversation_timestamp: i64,
    /// The newest message as currently stored (acks, edits and revokes included), or
    /// `None` once purged.
    pub last_message: Option<WAMessage>,
}

/// The chat name a message teaches us: the sender's push name in a one-to-one chat.
/// (Our own push name on `fromMe` messages, or a member's in a group, is not the chat's.)
fn chat_name(msg: &WAMessage) -> Option<String> {
    let chat = msg.chat_id();
    if msg.from_me || !(chat.ends_with("@c.us") || chat.ends_with("@lid")) {
        return None;
    }
    msg.push_name()
}

enum Backend {
    Sqlite(sqlite::SqliteMessages),
    Mongo(mongo::MongoMessages),
}

/// Handle to the message history of every session. Cheap to clone (an [`Arc`]).
#[derive(Clone)]
pub struct MessageStore {
    inner: Arc<Inner>,
}

struct Inner {
    /// The main store: backend handles and the session list for retention.
    store: Store,
    /// Where messages live.
    backend: Backend,
}

impl MessageStore {
    /// Message history on the same backend as `store` (SQLite files next to the session's
    /// credentials, or the session's MongoDB database through the store's one client).
    pub fn new(store: Store) -> Self {
        let backend = match store.backend() {
            StoreBackend::Sqlite(s) => Backend::Sqlite(sqlite::SqliteMessages::new(s.clone())),
            StoreBackend::Mongo(m) => Backend::Mongo(mongo::MongoMessages::new(m.clone())),
        };
        Self {
            inner: Arc::new(Inner { store, backend }),
        }
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
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let msg = msg.clone();
                s.with_conn(session, true, move |c| sqlite::save(c, msg))
                    .await
                    .map(|_| ())
            }
            Backend::Mongo(m) => m.save(session, msg).await,
        }
    }

    /// Names a chat (a group's subject, a contact's name) for the chats list; creates the
    /// chat row if there is none yet.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn set_chat_name(&self, session: &str, chat_id: &str, name: &str) -> Result<()> {
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let (chat, name) = (chat_id.to_string(), name.to_string());
                s.with_conn(session, true, move |c| {
                    sqlite::set_chat_name(c, &chat, &name)
                })
                .await
                .map(|_| ())
            }
            Backend::Mongo(m) => m.set_chat_name(session, chat_id, name).await,
        }
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
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let wa_id = wa_id.to_string();
                flat(
                    s.with_conn(session, false, move |c| sqlite::set_ack(c, &wa_id, ack))
                        .await,
                )
            }
            Backend::Mongo(m) => m.set_ack(session, wa_id, ack).await,
        }
    }

    /// One message by its WAHA id (`{fromMe}_{chatId}_{waId}[_{participant}]`).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn get(&self, session: &str, id: &str) -> Result<Option<WAMessage>> {
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let id = id.to_string();
                flat(
                    s.with_conn(session, false, move |c| sqlite::get(c, &id))
                        .await,
                )
            }
            Backend::Mongo(m) => m.get(session, id).await,
        }
    }

    /// The newest message with this raw WhatsApp id.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn find_by_wa_id(&self, session: &str, wa_id: &str) -> Result<Option<WAMessage>> {
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let wa_id = wa_id.to_string();
                flat(
                    s.with_conn(session, false, move |c| sqlite::find_by_wa_id(c, &wa_id))
                        .await,
                )
            }
            Backend::Mongo(m) => m.find_by_wa_id(session, wa_id).await,
        }
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
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let (wa_id, body) = (wa_id.to_string(), new_body.to_string());
                let r = s
                    .with_conn(session, false, move |c| {
                        sqlite::modify(c, &wa_id, |m| m.body = body)
                    })
                    .await;
                flat(r).map(|o| o.map(|(_, after)| after))
            }
            Backend::Mongo(m) => {
                m.update_latest(
                    session,
                    wa_id,
                    mongodb::bson::doc! { "$set": { "body": new_body } },
                    false,
                )
                .await
            }
        }
    }

    /// Marks the newest message with this raw WhatsApp id as revoked ("deleted for
    /// everyone"): `body` becomes `""` and `_data.revoked` `true`, so history shows the
    /// gap. Returns the message as it was before (WAHA's `message.revoked` event carries
    /// `before`).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn revoke(&self, session: &str, wa_id: &str) -> Result<Option<WAMessage>> {
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let wa_id = wa_id.to_string();
                let r = s
                    .with_conn(session, false, move |c| {
                        sqlite::modify(c, &wa_id, |m| {
                            m.body = String::new();
                            m.data
                                .insert("revoked".into(), serde_json::Value::Bool(true));
                        })
                    })
                    .await;
                flat(r).map(|o| o.map(|(before, _)| before))
            }
            Backend::Mongo(m) => {
                m.update_latest(
                    session,
                    wa_id,
                    mongodb::bson::doc! { "$set": { "body": "", "_data.revoked": true } },
                    true,
                )
                .await
            }
        }
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
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let (chat, q) = (chat_id.to_string(), q.clone());
                Ok(
                    s.with_conn(session, false, move |c| sqlite::list(c, &chat, &q))
                        .await?
                        .unwrap_or_default(),
                )
            }
            Backend::Mongo(m) => m.list(session, chat_id, q).await,
        }
    }

    /// The chats of a session with their last message, sorted and paged (see
    /// [`ChatQuery`]).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn chats(&self, session: &str, q: &ChatQuery) -> Result<Vec<ChatRow>> {
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let q = q.clone();
                Ok(s.with_conn(session, false, move |c| sqlite::chats(c, &q))
                    .await?
                    .unwrap_or_default())
            }
            Backend::Mongo(m) => m.chats(session, q).await,
        }
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
        match &self.inner.backend {
            Backend::Sqlite(s) => {
                let chat = chat_id.to_string();
                Ok(s.with_conn(session, false, move |c| {
                    sqlite::mark_read(c, &chat, limit, since_unix_s)
                })
                .await?
                .unwrap_or_default())
            }
            Backend::Mongo(m) => m.mark_read(session, chat_id, limit, since_unix_s).await,
        }
    }

    /// Deletes the session's messages older than `cutoff_unix_s` (and chats whose last
    /// message is older). Returns how many messages went.
    ///
    /// # Errors
    /// The backend failed.
    pub async fn purge_older_than(&self, session: &str, cutoff_unix_s: i64) -> Result<u64> {
        match &self.inner.backend {
            Backend::Sqlite(s) => Ok(s
                .with_conn(session, false, move |c| sqlite::purge(c, cutoff_unix_s))
                .await?
                .unwrap_or(0)),
            Backend::Mongo(m) => m.purge(session, cutoff_unix_s).await,
        }
    }

    /// Purges every stored session (see [`Self::purge_older_than`]); a failing session is
    /// logged and skipped. Returns the total of messages deleted.
    ///
    /// # Errors
    /// The session list could not be read.
    pub async fn purge_all_older_than(&self, cutoff_unix_s: i64) -> Result<u64> {
        let mut total = 0;
        for session in self.inner.store.list_sessions().await? {
            match self.purge_older_than(&session.name, cutoff_unix_s).await {
                Ok(n) => total += n,
                Err(e) => {
                    tracing::warn!(session = session.name, error = %e, "messages: retention purge failed");
                }
            }
        }
        Ok(total)
    }

    /// Drops cached handles of a session whose data was deleted (session delete): its
    /// SQLite connection is closed and MongoDB indexes are re-created on the next write.
    /// Optional — the store detects a vanished file itself — but frees the handle at once.
    pub fn forget_session(&self, session: &str) {
        match &self.inner.backend {
            Backend::Sqlite(s) => s.forget(session),
            Backend::Mongo(m) => m.forget(session),
        }
    }

    /// Starts the retention task for `WHARF_MESSAGES_RETENTION_DAYS`: every `every`
    /// (first run at once), deletes messages older than `retention_days` days in every
    /// stored session, until `cancel`. `None` (no task) when `retention_days` is 0: keep
    /// forever, as WAHA does.
    #[must_use = "the task handle should be kept (or the task detached on purpose)"]
    pub fn spawn_retention(
        &self,
        retention_days: u32,
        every: Duration,
        cancel: CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        if retention_days == 0 {
            return None;
        }
        let this = self.clone();
        Some(tokio::spawn(async move {
            loop {
                let cutoff = chrono::Utc::now().timestamp() - i64::from(retention_days) * 86_400;
                match this.purge_all_older_than(cutoff).await {
                    Ok(0) => {}
                    Ok(n) => {
                        tracing::info!(deleted = n, retention_days, "messages: retention purge")
                    }
                    Err(e) => tracing::warn!(error = %e, "messages: retention purge failed"),
                }
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(every) => {}
                }
            }
        }))
    }
}

/// `Option<Option<T>>` from the SQLite helper (no file / no row) to `Option<T>`.
fn flat<T>(r: Result<Option<Option<T>>>) -> Result<Option<T>> {
    r.map(Option::flatten)
}
