//! Message history on MongoDB: collections `messages` and `chats` in the session's own
//! database `waha_{WAHA_SESSION_NAMESPACE}_{session}` (waha.md §7.3: messages and chats
//! live in the per-session database, dropped with the session).
//!
//! Owns: the document layout and indexes; implements [`MessageBackend`] for
//! [`MongoSession`] through the store's one client, error mapping and index memo
//! (`store/mongo/mod.rs`). Called through `store::SessionMessages`.
//!
//! `messages` documents are the `WAMessage` JSON itself (so they read like WAHA's) plus
//! `_id` (the WAHA id: unique), `chatId` and `waId`; indexes `{chatId, timestamp}`,
//! `{waId}` and `{timestamp}` (retention). `chats`: `{_id, id, name, conversationTimestamp,
//! lastMessageId}`, index `{conversationTimestamp}`.

use std::collections::HashMap;

use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::ReturnDocument;

use super::{MongoSession, bson_i64, is_duplicate_key};
use crate::model::message::{WAMessage, ack};
use crate::store::contract::chat_name;
use crate::store::{
    ChatQuery, ChatRow, ChatSortBy, Error, MessageBackend, MessageQuery, Result, SortOrder,
};

const MESSAGES: &str = "messages";
const CHATS: &str = "chats";

impl MongoSession {
    /// Creates the history indexes before the session's first write (see
    /// [`MongoSession::ensure_indexes`] for when they are checked again).
    async fn ensure_message_indexes(&self) -> Result<()> {
        let plain = |keys: Document| IndexModel::builder().keys(keys).build();
        self.ensure_indexes(
            MESSAGES,
            vec![
                (
                    self.coll(MESSAGES),
                    vec![
                        plain(doc! { "chatId": 1, "timestamp": -1 }),
                        plain(doc! { "waId": 1 }),
                        plain(doc! { "timestamp": 1 }),
                    ],
                ),
                (
                    self.coll(CHATS),
                    vec![plain(doc! { "conversationTimestamp": -1 })],
                ),
            ],
        )
        .await
    }

    /// Applies `update` to the newest message with `wa_id`; returns it as it was
    /// (`before`) or as it became.
    async fn update_latest(
        &self,
        wa_id: &str,
        update: Document,
        before: bool,
    ) -> Result<Option<WAMessage>> {
        self.coll(MESSAGES)
            .find_one_and_update(doc! { "waId": wa_id }, update)
            .sort(doc! { "timestamp": -1, "_id": -1 })
            .return_document(if before {
                ReturnDocument::Before
            } else {
                ReturnDocument::After
            })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode)
            .transpose()
    }

    /// Runs a paged `find` on `messages`.
    async fn find_messages(
        &self,
        filter: Document,
        sort: Document,
        offset: u32,
        limit: Option<u32>,
    ) -> Result<Vec<WAMessage>> {
        if limit == Some(0) {
            // Mongo reads `limit(0)` as "no limit".
            return Ok(Vec::new());
        }
        let coll = self.coll(MESSAGES);
        let mut find = coll.find(filter).sort(sort).skip(u64::from(offset));
        if let Some(l) = limit {
            find = find.limit(i64::from(l));
        }
        let docs: Vec<Document> = find
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        docs.into_iter().map(decode).collect()
    }
}

impl MessageBackend for MongoSession {
    async fn save(&self, msg: &WAMessage) -> Result<()> {
        self.ensure_message_indexes().await?;
        let messages = self.coll(MESSAGES);
        let mut msg = msg.clone();
        // One round trip in the common case: the replacement applies only where the
        // stored ack (if any) may be overwritten by this one — the same rule as
        // `ack::is_advance`, or equal. Otherwise the upsert's insert hits `_id` (E11000):
        // a receipt already moved this message further (saves race with receipts), so the
        // stored ack is kept.
        let may_overwrite = if msg.ack == ack::ERROR {
            doc! { "ack": { "$in": [ack::PENDING, ack::SERVER, ack::ERROR] } }
        } else {
            doc! { "ack": { "$lte": msg.ack } }
        };
        let replaced = messages
            .replace_one(
                doc! { "_id": &msg.id, "$or": [ { "ack": { "$exists": false } }, may_overwrite ] },
                encode(&msg)?,
            )
            .upsert(true)
            .await;
        match replaced {
            Ok(_) => {}
            Err(e) if is_duplicate_key(&e) => {
                let stored = messages
                    .find_one(doc! { "_id": &msg.id })
                    .projection(doc! { "ack": 1 })
                    .await
                    .map_err(|e| self.err(&e))?;
                if let Some(old) = stored.and_then(|d| d.get("ack").and_then(bson_i64))
                    && let Ok(old) = i32::try_from(old)
                    && old != msg.ack
                    && !ack::is_advance(old, msg.ack)
                {
                    msg.set_ack(old);
                }
                messages
                    .replace_one(doc! { "_id": &msg.id }, encode(&msg)?)
                    .upsert(true)
                    .await
                    .map_err(|e| self.err(&e))?;
            }
            Err(e) => return Err(self.err(&e)),
        }

        // The chat's two updates go out as one `update` command (unordered: the second
        // runs whatever the first did).
        let chat_id = msg.chat_id();
        // Matches only when this message is at least as new as the chat's last one; when
        // the chat exists with a newer message, the upsert's insert hits `_id` (E11000)
        // and the chat rightly stays as it is.
        let mut statements = vec![Bson::Document(doc! {
            "q": { "_id": &chat_id, "conversationTimestamp": { "$lte": msg.timestamp } },
            "u": { "$set": {
                "id": &chat_id,
                "conversationTimestamp": msg.timestamp,
                "lastMessageId": &msg.id,
            } },
            "upsert": true,
        })];
        if let Some(name) = chat_name(&msg) {
            statements.push(Bson::Document(doc! {
                "q": { "_id": &chat_id },
                "u": { "$set": { "name": name } },
            }));
        }
        let reply = self
            .db
            .run_command(doc! { "update": CHATS, "updates": statements, "ordered": false })
            .await
            .map_err(|e| self.err(&e))?;
        check_write_reply(&reply, &[super::DUPLICATE_KEY])
    }

    async fn set_chat_name(&self, chat_id: &str, name: &str) -> Result<()> {
        self.ensure_message_indexes().await?;
        self.coll(CHATS)
            .update_one(
                doc! { "_id": chat_id },
                doc! {
                    "$set": { "id": chat_id, "name": name },
                    "$setOnInsert": { "conversationTimestamp": 0_i64, "lastMessageId": Bson::Null },
                },
            )
            .upsert(true)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    async fn set_ack(&self, wa_id: &str, new: i32) -> Result<Option<WAMessage>> {
        let condition = if new == ack::ERROR {
            doc! { "ack": { "$in": [ack::PENDING, ack::SERVER] } }
        } else {
            doc! { "ack": { "$lt": new } }
        };
        let mut filter = doc! { "waId": wa_id };
        filter.extend(condition);
        self.coll(MESSAGES)
            .update_many(
                filter,
                doc! { "$set": { "ack": new, "ackName": ack::name(new) } },
            )
            .await
            .map_err(|e| self.err(&e))?;
        self.find_by_wa_id(wa_id).await
    }

    async fn get(&self, id: &str) -> Result<Option<WAMessage>> {
        self.coll(MESSAGES)
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode)
            .transpose()
    }

    async fn find_by_wa_id(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        self.coll(MESSAGES)
            .find_one(doc! { "waId": wa_id })
            .sort(doc! { "timestamp": -1, "_id": -1 })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode)
            .transpose()
    }

    async fn list(&self, chat_id: &str, q: &MessageQuery) -> Result<Vec<WAMessage>> {
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
            filter,
            doc! { "timestamp": dir, "_id": dir },
            q.offset,
            q.limit,
        )
        .await
    }

    async fn chats(&self, q: &ChatQuery) -> Result<Vec<ChatRow>> {
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
        let docs = self
            .find_page(CHATS, filter, sort, q.offset, q.limit)
            .await?;
        let last_ids: Vec<&str> = docs
            .iter()
            .filter_map(|d| d.get_str("lastMessageId").ok())
            .collect();
        let mut last: HashMap<String, WAMessage> = HashMap::new();
        if !last_ids.is_empty() {
            let found: Vec<Document> = self
                .coll(MESSAGES)
                .find(doc! { "_id": { "$in": &last_ids } })
                .await
                .map_err(|e| self.err(&e))?
                .try_collect()
                .await
                .map_err(|e| self.err(&e))?;
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

    async fn mark_read(
        &self,
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
            .find_messages(filter, doc! { "timestamp": -1, "_id": -1 }, 0, limit)
            .await?;
        if read.is_empty() {
            return Ok(read);
        }
        let ids: Vec<&str> = read.iter().map(|m| m.id.as_str()).collect();
        self.coll(MESSAGES)
            .update_many(
                doc! { "_id": { "$in": ids }, "ack": { "$lt": ack::READ } },
                doc! { "$set": { "ack": ack::READ, "ackName": ack::name(ack::READ) } },
            )
            .await
            .map_err(|e| self.err(&e))?;
        for m in &mut read {
            m.set_ack(ack::READ);
        }
        Ok(read)
    }

    async fn purge_older_than(&self, cutoff: i64) -> Result<u64> {
        let n = self
            .coll(MESSAGES)
            .delete_many(doc! { "timestamp": { "$lt": cutoff } })
            .await
            .map_err(|e| self.err(&e))?
            .deleted_count;
        self.coll(CHATS)
            .delete_many(doc! { "conversationTimestamp": { "$lt": cutoff } })
            .await
            .map_err(|e| self.err(&e))?;
        Ok(n)
    }

    async fn delete_chat_messages(&self, chat_id: &str, chat_too: bool) -> Result<u64> {
        let n = self
            .coll(MESSAGES)
            .delete_many(doc! { "chatId": chat_id })
            .await
            .map_err(|e| self.err(&e))?
            .deleted_count;
        if chat_too {
            self.coll(CHATS)
                .delete_one(doc! { "_id": chat_id })
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(n)
    }

    async fn edit(&self, wa_id: &str, new_body: &str) -> Result<Option<WAMessage>> {
        self.update_latest(wa_id, doc! { "$set": { "body": new_body } }, false)
            .await
    }

    async fn revoke(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        self.update_latest(
            wa_id,
            doc! { "$set": { "body": "", "_data.revoked": true } },
            true,
        )
        .await
    }
}

fn direction(o: SortOrder) -> i32 {
    match o {
        SortOrder::Asc => 1,
        SortOrder::Desc => -1,
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

/// Fails on a raw write command's `writeErrors` (other than the `allowed` codes) or
/// `writeConcernError`.
fn check_write_reply(reply: &Document, allowed: &[i32]) -> Result<()> {
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(Error::Backend(format!(
            "mongodb: write concern not satisfied: {wce}"
        )));
    }
    if let Ok(errors) = reply.get_array("writeErrors") {
        for e in errors {
            let code = e
                .as_document()
                .and_then(|d| d.get("code"))
                .and_then(bson_i64);
            if !code.is_some_and(|c| allowed.iter().any(|a| i64::from(*a) == c)) {
                return Err(Error::Backend(format!("mongodb: write failed: {e}")));
            }
        }
    }
    Ok(())
}
