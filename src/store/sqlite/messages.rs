//! Message history on SQLite: `{session_dir}/messages.sqlite3`, one file per session (so
//! deleting a session's folder deletes its history with it, like WAHA's per-session
//! stores, waha.md §7.2).
//!
//! Owns: the schema and the SQL of [`MessageBackend`] for [`SqliteSession`]. Connections
//! come from the backend's one per-session cache (`store/sqlite/mod.rs`), opened in WAL
//! mode with `synchronous=NORMAL`. Called through `store::SessionMessages`.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SessionDb, SqliteSession, sql_err};
use crate::model::message::{WAMessage, ack};
use crate::store::contract::chat_name;
use crate::store::{
    ChatQuery, ChatRow, ChatSortBy, Error, MessageBackend, MessageQuery, Result, SortOrder,
};

/// The history database of a session. WAL + NORMAL: no corruption on a crash, only the
/// last commits may be lost on a power cut; history writes (one per message and receipt)
/// then need no fsync each.
static DB: SessionDb = SessionDb {
    file: "messages.sqlite3",
    schema: SCHEMA,
    synchronous: "NORMAL",
};

/// `messages.data` is the whole `WAMessage` as JSON; the other columns are the fields
/// queries filter and sort on. `chats.last_message_id` is joined at read time, so acks,
/// edits and revokes show in `lastMessage` without touching the chat row.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS messages (
    id TEXT PRIMARY KEY,
    wa_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    timestamp INTEGER NOT NULL,
    from_me INTEGER NOT NULL,
    ack INTEGER NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS messages_chat_timestamp ON messages (chat_id, timestamp);
CREATE INDEX IF NOT EXISTS messages_wa_id ON messages (wa_id);
CREATE INDEX IF NOT EXISTS messages_timestamp ON messages (timestamp);
CREATE TABLE IF NOT EXISTS chats (
    id TEXT PRIMARY KEY,
    name TEXT,
    conversation_timestamp INTEGER NOT NULL,
    last_message_id TEXT
);
CREATE INDEX IF NOT EXISTS chats_conversation_timestamp ON chats (conversation_timestamp);
"#;

impl MessageBackend for SqliteSession {
    async fn save(&self, msg: &WAMessage) -> Result<()> {
        let msg = msg.clone();
        self.with_conn(&DB, true, move |c| save(c, msg))
            .await
            .map(drop)
    }

    async fn set_chat_name(&self, chat_id: &str, name: &str) -> Result<()> {
        let (chat, name) = (chat_id.to_owned(), name.to_owned());
        self.with_conn(&DB, true, move |c| set_chat_name(c, &chat, &name))
            .await
            .map(drop)
    }

    async fn set_ack(&self, wa_id: &str, ack: i32) -> Result<Option<WAMessage>> {
        let wa_id = wa_id.to_owned();
        self.with_conn(&DB, false, move |c| set_ack(c, &wa_id, ack))
            .await
            .map(Option::flatten)
    }

    async fn get(&self, id: &str) -> Result<Option<WAMessage>> {
        let id = id.to_owned();
        self.with_conn(&DB, false, move |c| get(c, &id))
            .await
            .map(Option::flatten)
    }

    async fn find_by_wa_id(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        let wa_id = wa_id.to_owned();
        self.with_conn(&DB, false, move |c| latest_by_wa_id(c, &wa_id))
            .await
            .map(Option::flatten)
    }

    async fn edit(&self, wa_id: &str, new_body: &str) -> Result<Option<WAMessage>> {
        let (wa_id, body) = (wa_id.to_owned(), new_body.to_owned());
        let r = self
            .with_conn(&DB, false, move |c| modify(c, &wa_id, |m| m.body = body))
            .await?;
        Ok(r.flatten().map(|(_, after)| after))
    }

    async fn revoke(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        let wa_id = wa_id.to_owned();
        let r = self
            .with_conn(&DB, false, move |c| {
                modify(c, &wa_id, |m| {
                    m.body = String::new();
                    m.data
                        .insert("revoked".into(), serde_json::Value::Bool(true));
                })
            })
            .await?;
        Ok(r.flatten().map(|(before, _)| before))
    }

    async fn list(&self, chat_id: &str, q: &MessageQuery) -> Result<Vec<WAMessage>> {
        let (chat, q) = (chat_id.to_owned(), q.clone());
        Ok(self
            .with_conn(&DB, false, move |c| list(c, &chat, &q))
            .await?
            .unwrap_or_default())
    }

    async fn chats(&self, q: &ChatQuery) -> Result<Vec<ChatRow>> {
        let q = q.clone();
        Ok(self
            .with_conn(&DB, false, move |c| chats(c, &q))
            .await?
            .unwrap_or_default())
    }

    async fn mark_read(
        &self,
        chat_id: &str,
        limit: Option<u32>,
        since_unix_s: Option<i64>,
    ) -> Result<Vec<WAMessage>> {
        let chat = chat_id.to_owned();
        Ok(self
            .with_conn(&DB, false, move |c| {
                mark_read(c, &chat, limit, since_unix_s)
            })
            .await?
            .unwrap_or_default())
    }

    async fn purge_older_than(&self, cutoff_unix_s: i64) -> Result<u64> {
        Ok(self
            .with_conn(&DB, false, move |c| purge(c, cutoff_unix_s))
            .await?
            .unwrap_or(0))
    }

    async fn delete_chat_messages(&self, chat_id: &str, chat_too: bool) -> Result<u64> {
        let chat_id = chat_id.to_owned();
        Ok(self
            .with_conn(&DB, false, move |c| {
                let tx = c
                    .transaction_with_behavior(TransactionBehavior::Immediate)
                    .map_err(sql_err)?;
                let n = tx
                    .execute("DELETE FROM messages WHERE chat_id = ?1", [&chat_id])
                    .map_err(sql_err)?;
                if chat_too {
                    tx.execute("DELETE FROM chats WHERE id = ?1", [&chat_id])
                        .map_err(sql_err)?;
                }
                tx.commit().map_err(sql_err)?;
                Ok(n as u64)
            })
            .await?
            .unwrap_or(0))
    }
}

fn encode(msg: &WAMessage) -> Result<String> {
    serde_json::to_string(msg).map_err(|e| Error::Backend(format!("encode message: {e}")))
}

fn decode(data: &str) -> Result<WAMessage> {
    serde_json::from_str(data).map_err(|e| Error::Corrupt(format!("messages.data: {e}")))
}

/// Writes a message row (insert or replace by id).
fn put(conn: &Connection, msg: &WAMessage) -> Result<()> {
    conn.execute(
        "INSERT INTO messages (id, wa_id, chat_id, timestamp, from_me, ack, data)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT(id) DO UPDATE SET wa_id = excluded.wa_id, chat_id = excluded.chat_id,
            timestamp = excluded.timestamp, from_me = excluded.from_me, ack = excluded.ack,
            data = excluded.data",
        params![
            msg.id,
            msg.wa_id(),
            msg.chat_id(),
            msg.timestamp,
            msg.from_me,
            msg.ack,
            encode(msg)?
        ],
    )
    .map_err(sql_err)?;
    Ok(())
}

/// The newest message with this raw WhatsApp id.
fn latest_by_wa_id(conn: &Connection, wa_id: &str) -> Result<Option<WAMessage>> {
    let data: Option<String> = conn
        .query_row(
            "SELECT data FROM messages WHERE wa_id = ?1 ORDER BY timestamp DESC, id DESC LIMIT 1",
            [wa_id],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql_err)?;
    data.as_deref().map(decode).transpose()
}

fn save(conn: &mut Connection, mut msg: WAMessage) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let stored: Option<i32> = tx
        .query_row("SELECT ack FROM messages WHERE id = ?1", [&msg.id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql_err)?;
    if let Some(old) = stored
        && old != msg.ack
        && !ack::is_advance(old, msg.ack)
    {
        // A receipt already moved this message further (saves race with receipts).
        msg.set_ack(old);
    }
    put(&tx, &msg)?;
    tx.execute(
        "INSERT INTO chats (id, name, conversation_timestamp, last_message_id)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT(id) DO UPDATE SET
            name = COALESCE(excluded.name, chats.name),
            last_message_id = CASE
                WHEN excluded.conversation_timestamp >= chats.conversation_timestamp
                THEN excluded.last_message_id ELSE chats.last_message_id END,
            conversation_timestamp =
                MAX(chats.conversation_timestamp, excluded.conversation_timestamp)",
        params![msg.chat_id(), chat_name(&msg), msg.timestamp, msg.id],
    )
    .map_err(sql_err)?;
    tx.commit().map_err(sql_err)
}

fn set_chat_name(conn: &mut Connection, chat_id: &str, name: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO chats (id, name, conversation_timestamp, last_message_id)
         VALUES (?1, ?2, 0, NULL)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name",
        params![chat_id, name],
    )
    .map_err(sql_err)?;
    Ok(())
}

fn set_ack(conn: &mut Connection, wa_id: &str, new: i32) -> Result<Option<WAMessage>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let rows: Vec<String> = {
        let mut stmt = tx
            .prepare("SELECT data FROM messages WHERE wa_id = ?1 ORDER BY timestamp DESC, id DESC")
            .map_err(sql_err)?;
        stmt.query_map([wa_id], |r| r.get(0))
            .map_err(sql_err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(sql_err)?
    };
    let mut first = None;
    for data in rows {
        let mut msg = decode(&data)?;
        if ack::is_advance(msg.ack, new) {
            msg.set_ack(new);
            put(&tx, &msg)?;
        }
        first.get_or_insert(msg);
    }
    tx.commit().map_err(sql_err)?;
    Ok(first)
}

fn get(conn: &mut Connection, id: &str) -> Result<Option<WAMessage>> {
    let data: Option<String> = conn
        .query_row("SELECT data FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql_err)?;
    data.as_deref().map(decode).transpose()
}

/// Read-modify-write of the newest message with `wa_id`; returns (before, after).
fn modify(
    conn: &mut Connection,
    wa_id: &str,
    change: impl FnOnce(&mut WAMessage),
) -> Result<Option<(WAMessage, WAMessage)>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let Some(before) = latest_by_wa_id(&tx, wa_id)? else {
        return Ok(None);
    };
    let mut after = before.clone();
    change(&mut after);
    put(&tx, &after)?;
    tx.commit().map_err(sql_err)?;
    Ok(Some((before, after)))
}

fn list(conn: &mut Connection, chat_id: &str, q: &MessageQuery) -> Result<Vec<WAMessage>> {
    let mut sql = String::from("SELECT data FROM messages WHERE chat_id = ?");
    let mut args: Vec<rusqlite::types::Value> = vec![chat_id.to_string().into()];
    if let Some(t) = q.timestamp_gte {
        sql.push_str(" AND timestamp >= ?");
        args.push(t.into());
    }
    if let Some(t) = q.timestamp_lte {
        sql.push_str(" AND timestamp <= ?");
        args.push(t.into());
    }
    if let Some(me) = q.from_me {
        sql.push_str(" AND from_me = ?");
        args.push(i64::from(me).into());
    }
    if let Some(a) = q.ack {
        sql.push_str(" AND ack = ?");
        args.push(i64::from(a).into());
    }
    let dir = order(q.sort_order);
    sql.push_str(&format!(
        " ORDER BY timestamp {dir}, id {dir} LIMIT ? OFFSET ?"
    ));
    args.push(q.limit.map_or(-1, i64::from).into());
    args.push(i64::from(q.offset).into());
    query_messages(conn, &sql, args)
}

fn query_messages(
    conn: &Connection,
    sql: &str,
    args: Vec<rusqlite::types::Value>,
) -> Result<Vec<WAMessage>> {
    let mut stmt = conn.prepare(sql).map_err(sql_err)?;
    let rows: Vec<String> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| r.get(0))
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    rows.iter().map(|d| decode(d)).collect()
}

fn order(o: SortOrder) -> &'static str {
    match o {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    }
}

fn chats(conn: &mut Connection, q: &ChatQuery) -> Result<Vec<ChatRow>> {
    let mut sql = String::from(
        "SELECT c.id, c.name, c.conversation_timestamp, m.data FROM chats c
         LEFT JOIN messages m ON m.id = c.last_message_id",
    );
    let mut args: Vec<rusqlite::types::Value> = Vec::new();
    if let Some(ids) = &q.ids {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        sql.push_str(" WHERE c.id IN (");
        sql.push_str(&vec!["?"; ids.len()].join(", "));
        sql.push(')');
        args.extend(ids.iter().map(|i| i.clone().into()));
    }
    let col = match q.sort_by {
        ChatSortBy::ConversationTimestamp => "c.conversation_timestamp",
        ChatSortBy::Id => "c.id",
        ChatSortBy::Name => "c.name",
    };
    let dir = order(q.sort_order);
    sql.push_str(&format!(
        " ORDER BY {col} {dir}, c.id {dir} LIMIT ? OFFSET ?"
    ));
    args.push(q.limit.map_or(-1, i64::from).into());
    args.push(i64::from(q.offset).into());
    let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
    let rows: Vec<(String, Option<String>, i64, Option<String>)> = stmt
        .query_map(rusqlite::params_from_iter(args), |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })
        .map_err(sql_err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(sql_err)?;
    rows.into_iter()
        .map(|(id, name, ts, data)| {
            Ok(ChatRow {
                id,
                name,
                conversation_timestamp: ts,
                last_message: data.as_deref().map(decode).transpose()?,
            })
        })
        .collect()
}

fn mark_read(
    conn: &mut Connection,
    chat_id: &str,
    limit: Option<u32>,
    since: Option<i64>,
) -> Result<Vec<WAMessage>> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let mut sql = String::from(
        "SELECT data FROM messages WHERE chat_id = ? AND from_me = 0 AND ack >= 0 AND ack < ?",
    );
    let mut args: Vec<rusqlite::types::Value> =
        vec![chat_id.to_string().into(), i64::from(ack::READ).into()];
    if let Some(t) = since {
        sql.push_str(" AND timestamp >= ?");
        args.push(t.into());
    }
    sql.push_str(" ORDER BY timestamp DESC, id DESC LIMIT ?");
    args.push(limit.map_or(-1, i64::from).into());
    let mut read = query_messages(&tx, &sql, args)?;
    for msg in &mut read {
        msg.set_ack(ack::READ);
        put(&tx, msg)?;
    }
    tx.commit().map_err(sql_err)?;
    Ok(read)
}

fn purge(conn: &mut Connection, cutoff: i64) -> Result<u64> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    let n = tx
        .execute("DELETE FROM messages WHERE timestamp < ?1", [cutoff])
        .map_err(sql_err)?;
    tx.execute(
        "DELETE FROM chats WHERE conversation_timestamp < ?1",
        [cutoff],
    )
    .map_err(sql_err)?;
    tx.commit().map_err(sql_err)?;
    Ok(n as u64)
}
