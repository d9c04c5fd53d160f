//! Message history on MongoDB: collections `messages` and `chats` in the session's own
//! database `waha_{WAHA_SESSION_NAMESPACE}_{session}` (waha.md §7.3: messages and chats
//! live in the per-session database, dropped with the session).
//!
//! Owns: the document layout and indexes. Uses the store's one client
//! ([`MongoStore::session_db`]), never a client of its own. Built by
//! [`super::MessageStore::new`]; lives with it.
//!
//! `messages` documents are the `WAMessage` JSON itself (so they read like WAHA's) plus
//! `_id` (the WAHA id: unique), `chatId` and `waId`; indexes `{chatId, timestamp}`,
//! `{waId}` and `{timestamp}` (retention). `chats`: `{_id, id, name, conversationTimestamp,
//! lastMessageId}`, index `{conversationTimestamp}`.

use std::collections::HashMap;
use std::sync::Mutex as StdMutex;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::ReturnDocument;
use mongodb::{Collection, IndexModel};

use super::model::{WAMessage, ack};
use super::{ChatQuery, ChatRow, ChatSortBy, MessageQuery, SortOrder, chat_name};
use crate::store::{Error, Result, mongo::MongoStore};

/// MongoDB's duplicate-key error code (E11000).
const DUPLICATE_KEY: i32 = 11000;

/// Index creation conflicting with an existing index (created by an operator): kept.
const INDEX_CONFLICTS: [i32; 2] = [85, 86];

/// How often a writer re-checks a session's indexes: a dropped session database (delete,
/// then the same name created again) loses them, and `createIndexes` is idempotent.
const INDEX_RECHECK: Duration = Duration::from_secs(600);

/// MongoDB message history.
pub(super) struct MongoMessages {
    /// The process's store (its one client).
    store: MongoStore,
    /// When each session's indexes were last ensured.
    indexed: StdMutex<HashMap<String, Instant>>,
}

impl MongoMessages {
    pub(super) fn new(store: MongoStore) -> Self {
        Self {
            store,
            indexed: StdMutex::new(HashMap::new()),
        }
    }

    fn messages(&self, session: &str) -> Collection<Document> {
        self.store.session_db(session).collection("messages")
    }

    fn chats_coll(&self, session: &str) -> Collection<Document> {
        self.store.session_db(session).collection("chats")
    }

    /// Forgets that indexes exist (after the session's database was dropped).
    pub(super) fn forget(&self, session: &str) {
        self.indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(session);
    }

    /// Creates the indexes of a session before its first write (and every
    /// [`INDEX_RECHECK`]).
    async fn ensure_indexes(&self, session: &str) -> Result<()> {
        let fresh = self
            .indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(session)
            .is_some_and(|at| at.elapsed() < INDEX_RECHECK);
        if fresh {
            return Ok(());
        }
        let plain = |keys: Document| IndexModel::builder().keys(keys).build();
        let wanted = [
            (
                self.messages(session),
                vec![
                    plain(doc! { "chatId": 1, "timestamp": -1 }),
                    plain(doc! { "waId": 1 }),
                    plain(doc! { "timestamp": 1 }),
                ],
            ),
            (
                self.chats_coll(session),
                vec![plain(doc! { "conversationTimestamp": -1 })],
            ),
        ];
        for (coll, models) in wanted {
            match coll.create_indexes(models).await {
                Ok(_) => {}
                Err(e) if code(&e).is_some_and(|c| INDEX_CONFLICTS.contains(&c)) => {
                    tracing::warn!(session, error = %e, "messages: existing index kept");
                }
                Err(e) => return Err(err(&e)),
            }
        }
        self.indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(session.to_string(), Instant::now());
        Ok(())
    }

    pub(super) async fn save(&self, session: &str, msg: &WAMessage) -> Result<()> {
        self.ensure_indexes(session).await?;
        let messages = self.messages(session);
        let mut msg = msg.clone();
        let stored = messages
            .find_one(doc! { "_id": &msg.id })
            .projection(doc! { "ack": 1 })
            .await
            .map_err(|e| err(&e))?;
        if let Some(old) = stored.and_then(|d| d.get("ack").and_then(bson_i64))
            && let Ok(old) = i32::try_from(old)
            && old != msg.ack
            && !ack::is_advance(old, msg.ack)
        {
            // A receipt already moved this message further (saves race with receipts).
            msg.set_ack(old);
        }
        messages
            .replace_one(doc! { "_id": &msg.id }, encode(&msg)?)
            .upsert(true)
            .await
            .map_err(|e| err(&e))?;

        let chats = self.chats_coll(session);
        let chat_id = msg.chat_id();
        // Matches only when this message is at least as new as the chat's last one; when
        // the chat exists with a newer message, the upsert's insert hits `_id` (E11000)
        // and the chat rightly stays as it is.
        let moved = chats
            .update_one(
                doc! { "_id": &chat_id, "conversationTimestamp": { "$lte": msg.timestamp } },
                doc! { "$set": {
                    "id": &chat_id,
                    "conversationTimestamp": msg.timestamp,
                    "lastMessageId": &msg.id,
                } },
            )
            .upsert(true)
            .await;
        match moved {
            Ok(_) => {}
            Err(e) if code(&e) == Some(DUPLICATE_KEY) => {}
            Err(e) => return Err(err(&e)),
        }
        if let Some(name) = chat_name(&msg) {
            chats
                .update_one(doc! { "_id": &chat_id }, doc! { "$set": { "name": name } })
                .await
                .map_err(|e| err(&e))?;
        }
        Ok(())
    }

    pub(super) async fn set_chat_name(
        &self,
        session: &str,
        chat_id: &str,
        name: &str,
    ) -> Result<()> {
        self.ensure_indexes(session).await?;
        self.chats_coll(session)
            .update_one(
                doc! { "_id": chat_id },
                doc! {
                    "$set": { "id": chat_id, "name": name },
                    "$setOnInsert": { "conversationTimestamp": 0_i64, "lastMessageId": Bson::Null },
                },
            )
            .upsert(true)
            .await
            .map_err(|e| err(&e))?;
        Ok(())
    }

    pub(super) async fn set_ack(
        &self,
        session: &str,
        wa_id: &str,
        new: i32,
    ) -> Result<Option<WAMessage>> {
        let condition = if new == ack::ERROR {
            doc! { "ack": ack::PENDING }
        } else {
            doc! { "ack": { "$lt": new } }
        };
        let mut filter = doc! { "waId": wa_id };
        filter.extend(condition);
        self.messages(session)
            .update_many(
                filter,
                doc! { "$set": { "ack": new, "ackName": ack::name(new) } },
            )
            .await
            .map_err(|e| err(&e))?;
        self.find_by_wa_id(session, wa_id).await
    }

    pub(super) async fn get(&self, session: &str, id: &str) -> Result<Option<WAMessage>> {
        self.messages(session)
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| err(&e))?
            .map(decode)
            .transpose()
    }

    pub(super) async fn find_by_wa_id(
        &self,
        session: &str,
        wa_id: &str,
    ) -> Result<Option<WAMessage>> {
        self.messages(session)
            .find_one(doc! { "waId": wa_id })
            .sort(doc! { "timestamp": -1, "_id": -1 })
            .await
            .map_err(|e| err(&e))?
            .map(decode)
            .transpose()
    }

    /// Applies `update` to the newest message with `wa_id`; returns it as it was
    /// (`before`) or as it became.
    pub(super) async fn update_latest(
        &self,
        session: &str,
        wa_id: &str,
        update: Document,
        before: bool,
    ) -> Result<Option<WAMessage>> {
        self.messages(session)
            .find_one_and_update(doc! { "waId": wa_id }, update)
            .sort(doc! { "timestamp": -1, "_id": -1 })
            .return_document(if before {
                ReturnDocument::Before
            } else {
                ReturnDocument::After
            })
            .await
            .map_err(|e| err(&e))?
            .map(decode)
            .transpose()
    }

    pub(super) async fn list(
        &self,
        session: &str,
        chat_id: &str,
        q: &MessageQuery,
    ) -> Result<Vec<WAMessage>> {
        let mut filter = doc! { "chatId": chat_id };
        let mut ts = Document::new();
        if let Some(t) = q.timestamp_gte {
            ts.insert("$gte", t);
        }
        if let Some(t) = q.timestamp_lte {
            ts.insert("$lte", t);
        }
        if !ts.is_empty() {
            filter.insert("timestamp", ts);
        }
        if let Some(me) = q.from_me {
            filter.insert("fromMe", me);
        }
        if let Some(a) = q.ack {
            filter.insert("ack", a);
        }
        let dir = direction(q.sort_order);
        self.find_messages(
            session,
            filter,
            doc! { "timestamp": dir, "_id": dir },
            q.offset,
            q.limit,
        )
        .await
    }

    async fn find_messages(
        &self,
        session: &str,
        filter: Document,
        sort: Document,
        offset: u32,
        limit: Option<u32>,
    ) -> Result<Vec<WAMessage>> {
        if limit == Some(0) {
            // Mongo reads `limit(0)` as "no limit".
            return Ok(Vec::new());
        }
        let coll = self.messages(session);
        let mut find = coll.find(filter).sort(sort).skip(u64::from(offset));
        if let Some(l) = limit {
            find = find.limit(i64::from(l));
        }
        let docs: Vec<Document> = find
            .await
            .map_err(|e| err(&e))?
            .try_collect()
            .await
            .map_err(|e| err(&e))?;
        docs.into_iter().map(decode).collect()
    }

    pub(super) async fn chats(&self, session: &str, q: &ChatQuery) -> Result<Vec<ChatRow>> {
        if q.limit == Some(0) || q.ids.as_ref().is_some_and(Vec::is_empty) {
            return Ok(Vec::new());
        }
        let filter = match &q.ids {
            Some(ids) => doc! { "_id": { "$in": ids } },
            None => Document::new(),
        };
        let dir = direction(q.sort_order);
        let key = match q.sort_by {
            ChatSortBy::ConversationTimestamp => "conversationTimestamp",
            ChatSortBy::Id => "_id",
            ChatSortBy::Name => "name",
        };
        let mut sort = doc! { key: dir };
        if key != "_id" {
            sort.insert("_id", dir);
        }
        let coll = self.chats_coll(session);
        let mut find = coll.find(filter).sort(sort).skip(u64::from(q.offset));
        if let Some(l) = q.limit {
            find = find.limit(i64::from(l));
        }
        let docs: Vec<Document> = find
            .await
            .map_err(|e| err(&e))?
            .try_collect()
            .await
            .map_err(|e| err(&e))?;
        let last_ids: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.get_str("lastMessageId").ok())
            .collect();
        let mut last: HashMap<String, WAMessage> = HashMap::new();
        if !last_ids.is_empty() {
            let found: Vec<Document> = self
                .messages(session)
                .find(doc! { "_id": { "$in": &last_ids } })
                .await
                .map_err(|e| err(&e))?
                .try_collect()
                .await
                .map_err(|e| err(&e))?;
            for d in found {
                let m = decode(d)?;
                last.insert(m.id.clone(), m);
            }
        }
        docs.iter()
            .map(|d| {
                let id = d
                    .get_str("_id")
                    .map_err(|e| Error::Corrupt(format!("chats._id: {e}")))?
                    .to_string();
                Ok(ChatRow {
                    name: d.get_str("name").ok().map(String::from),
                    conversation_timestamp: d
                        .get("conversationTimestamp")
                        .and_then(bson_i64)
                        .unwrap_or(0),
                    last_message: d.get_str("lastMessageId").ok().and_then(|m| last.remove(m)),
                    id,
                })
            })
            .collect()
    }

    pub(super) async fn mark_read(
        &self,
        session: &str,
        chat_id: &str,
        limit: Option<u32>,
        since: Option<i64>,
    ) -> Result<Vec<WAMessage>> {
        let mut filter = doc! {
            "chatId": chat_id,
            "fromMe": false,
            "ack": { "$gte": 0, "$lt": ack::READ },
        };
        if let Some(t) = since {
            filter.insert("timestamp", doc! { "$gte": t });
        }
        let mut read = self
            .find_messages(
                session,
                filter,
                doc! { "timestamp": -1, "_id": -1 },
                0,
                limit,
            )
            .await?;
        if read.is_empty() {
            return Ok(read);
        }
        let ids: Vec<&str> = read.iter().map(|m| m.id.as_str()).collect();
        self.messages(session)
            .update_many(
                doc! { "_id": { "$in": ids }, "ack": { "$lt": ack::READ } },
                doc! { "$set": { "ack": ack::READ, "ackName": ack::name(ack::READ) } },
            )
            .await
            .map_err(|e| err(&e))?;
        for m in &mut read {
            m.set_ack(ack::READ);
        }
        Ok(read)
    }

    pub(super) async fn purge(&self, session: &str, cutoff: i64) -> Result<u64> {
        let n = self
            .messages(session)
            .delete_many(doc! { "timestamp": { "$lt": cutoff } })
            .await
            .map_err(|e| err(&e))?
            .deleted_count;
        self.chats_coll(session)
            .delete_many(doc! { "conversationTimestamp": { "$lt": cutoff } })
            .await
            .map_err(|e| err(&e))?;
        Ok(n)
    }
}

fn direction(o: SortOrder) -> i32 {
    match o {
        SortOrder::Asc => 1,
        SortOrder::Desc => -1,
    }
}

/// A numeric BSON value as i64 (documents written by others may use any numeric type).
fn bson_i64(b: &Bson) -> Option<i64> {
    if let Bson::Int32(v) = b {
        Some(i64::from(*v))
    } else if let Bson::Int64(v) = b {
        Some(*v)
    } else if let Bson::Double(v) = b {
        // Saturating cast: timestamps and acks are integral.
        Some(*v as i64)
    } else {
        None
    }
}

fn encode(msg: &WAMessage) -> Result<Document> {
    let mut d =
        bson::to_document(msg).map_err(|e| Error::Backend(format!("encode message: {e}")))?;
    d.insert("_id", &msg.id);
    d.insert("chatId", msg.chat_id());
    d.insert("waId", msg.wa_id());
    Ok(d)
}

fn decode(d: Document) -> Result<WAMessage> {
    bson::from_document(d).map_err(|e| Error::Corrupt(format!("messages: {e}")))
}

/// The server's error code, if any (write errors and command errors).
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "the driver's ErrorKind is non-exhaustive; other kinds carry no server code"
)]
fn code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Command(c) => Some(c.code),
        _ => None,
    }
}

/// Maps a driver error like the main store: unreachable server = unavailable. Driver
/// messages name hosts, never the URL's password.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "the driver's ErrorKind is non-exhaustive; every other kind is a backend error"
)]
fn err(e: &mongodb::error::Error) -> Error {
    match e.kind.as_ref() {
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. }
        | ErrorKind::Authentication { .. }
        | ErrorKind::Shutdown => Error::Unavailable(format!("mongodb: {e}")),
        ErrorKind::BsonDeserialization(_) => Error::Corrupt(format!("mongodb: {e}")),
        _ => Error::Backend(format!("mongodb: {e}")),
    }
}
