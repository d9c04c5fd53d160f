//! Message history on the embedded store: `{session_dir}/messages.sqlite3`, one file per
//! session (so deleting a session's folder deletes its history with it, like WAHA's
//! per-session stores, waha.md §7.2).
//!
//! Owns: a small LRU cache of open connections (one per recently used session, at most
//! [`MAX_OPEN`]) and the SQL. Built by [`super::MessageStore::new`]; lives with it.
//!
//! rusqlite is blocking: each call takes the session's connection (a tokio mutex, taken
//! *before* entering the blocking pool so waiters queue as futures) and runs on
//! [`tokio::task::spawn_blocking`]. Every call first checks that the file still exists:
//! a session deleted (folder removed) and created again must not see its old history
//! through a connection to the unlinked file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use tokio::sync::Mutex;

use super::model::{WAMessage, ack};
use super::{ChatQuery, ChatRow, ChatSortBy, MessageQuery, SortOrder, chat_name};
use crate::store::{Error, Result, sqlite::SqliteStore};

/// File name inside the session folder.
const FILE: &str = "messages.sqlite3";

/// Open connections kept at most; the least recently used one is closed beyond that.
/// Each costs a file descriptor pair (db + WAL) and SQLite's page cache.
const MAX_OPEN: usize = 16;

/// Same as the main store (WAHA's knex setting): wait for a writer instead of failing.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

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

/// A session's connection slot: `None` until first opened (or after its file vanished).
type Slot = Arc<Mutex<Option<Connection>>>;

/// The cache of open connections.
#[derive(Default)]
struct Cache {
    /// session → (slot, last use tick).
    slots: HashMap<String, (Slot, u64)>,
    /// Monotonic use counter for LRU eviction.
    tick: u64,
}

/// SQLite message history.
pub(super) struct SqliteMessages {
    /// For [`SqliteStore::session_dir`].
    store: SqliteStore,
    /// Open connections, by session.
    cache: StdMutex<Cache>,
}

impl SqliteMessages {
    pub(super) fn new(store: SqliteStore) -> Self {
        Self {
            store,
            cache: StdMutex::new(Cache::default()),
        }
    }

    /// The slot of `session`, inserted (evicting the least recently used) if needed.
    fn slot(&self, session: &str) -> Slot {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.tick += 1;
        let tick = cache.tick;
        if let Some((slot, used)) = cache.slots.get_mut(session) {
            *used = tick;
            return Arc::clone(slot);
        }
        if cache.slots.len() >= MAX_OPEN
            && let Some(oldest) = cache
                .slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(name, _)| name.clone())
        {
            // A call still holding the evicted slot finishes on it; the connection closes
            // when the last Arc goes.
            cache.slots.remove(&oldest);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        cache
            .slots
            .insert(session.to_string(), (Arc::clone(&slot), tick));
        slot
    }

    /// Closes the cached connection of `session` (after its data was deleted).
    pub(super) fn forget(&self, session: &str) {
        let mut cache = self
            .cache
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        cache.slots.remove(session);
    }

    /// Runs `f` on the session's connection in the blocking pool. With `create = false`
    /// a session without a history file answers `None` and no file is created (reads and
    /// purges must not litter folders of sessions that never stored a message).
    ///
    /// # Cancel safety
    /// Dropping the future before the lock is taken does nothing; after that `f` runs to
    /// completion (a transaction is never half-done).
    pub(super) async fn with_conn<T, F>(
        &self,
        session: &str,
        create: bool,
        f: F,
    ) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let path = self.store.session_dir(session)?.join(FILE);
        let mut guard = self.slot(session).lock_owned().await;
        tokio::task::spawn_blocking(move || {
            if !path.exists() {
                // Never keep writing to an unlinked file of a deleted session.
                *guard = None;
                if !create {
                    return Ok(None);
                }
            }
            if guard.is_none() {
                *guard = Some(open(&path)?);
            }
            match guard.as_mut() {
                Some(conn) => f(conn).map(Some),
                None => Err(Error::Backend("sqlite: connection not open".into())),
            }
        })
        .await
        .map_err(|e| Error::Backend(format!("sqlite task failed: {e}")))?
    }
}

/// Opens (creating folder, file and tables) a session's history in WAL mode.
fn open(path: &Path) -> Result<Connection> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::Unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    let conn = Connection::open(path)
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, path = %path.display(), "sqlite: WAL journal mode not available");
    }
    // WAL + NORMAL: no corruption on a crash, only the last commits may be lost on a
    // power cut; history writes (one per message and receipt) then need no fsync each.
    conn.pragma_update(None, "synchronous", "NORMAL")
        .map_err(sql_err)?;
    conn.execute_batch(SCHEMA).map_err(sql_err)?;
    Ok(conn)
}

/// Maps a rusqlite error like the main store does.
fn sql_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied,
        ) => Error::Unavailable(format!("sqlite: {e}")),
        _ => Error::Backend(format!("sqlite: {e}")),
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

pub(super) fn save(conn: &mut Connection, mut msg: WAMessage) -> Result<()> {
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

pub(super) fn set_chat_name(conn: &mut Connection, chat_id: &str, name: &str) -> Result<()> {
    conn.execute(
        "INSERT INTO chats (id, name, conversation_timestamp, last_message_id)
         VALUES (?1, ?2, 0, NULL)
         ON CONFLICT(id) DO UPDATE SET name = excluded.name",
        params![chat_id, name],
    )
    .map_err(sql_err)?;
    Ok(())
}

pub(super) fn set_ack(conn: &mut Connection, wa_id: &str, new: i32) -> Result<Option<WAMessage>> {
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

pub(super) fn get(conn: &mut Connection, id: &str) -> Result<Option<WAMessage>> {
    let data: Option<String> = conn
        .query_row("SELECT data FROM messages WHERE id = ?1", [id], |r| {
            r.get(0)
        })
        .optional()
        .map_err(sql_err)?;
    data.as_deref().map(decode).transpose()
}

pub(super) fn find_by_wa_id(conn: &mut Connection, wa_id: &str) -> Result<Option<WAMessage>> {
    latest_by_wa_id(conn, wa_id)
}

/// Read-modify-write of the newest message with `wa_id`; returns (before, after).
pub(super) fn modify(
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

pub(super) fn list(
    conn: &mut Connection,
    chat_id: &str,
    q: &MessageQuery,
) -> Result<Vec<WAMessage>> {
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

pub(super) fn chats(conn: &mut Connection, q: &ChatQuery) -> Result<Vec<ChatRow>> {
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

pub(super) fn mark_read(
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

pub(super) fn purge(conn: &mut Connection, cutoff: i64) -> Result<u64> {
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
