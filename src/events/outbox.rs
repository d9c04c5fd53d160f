//! The durable webhook outbox: one row per (event, webhook), in the session's own storage.
//!
//! Owns: the rows and their state machine (pending → deleted on 2xx, pending → dead after
//! the last attempt, dead → pending on replay). [`super::EventBus::publish`] appends,
//! [`super::webhook`] workers read and update, the dead-letter endpoints list and replay.
//! Built once with the bus; lives for the process.
//!
//! Backends follow [`crate::store::Backend`]:
//! * SQLite: `{session_dir}/events.sqlite3` (WAL, `synchronous=FULL` so an appended event
//!   survives power loss, not only a crash), one cached connection per session, every call
//!   on the blocking pool. A separate file, so logout's `whatsapp.db*` wipe keeps it;
//!   deleting the session removes the folder and with it the outbox (intended).
//! * MongoDB: collection `outbox` in the session database, `_id` = a monotonic `seq`
//!   from the `counters` document `{_id: "outbox"}`; logout only drops `wa_*`
//!   collections.
//!
//! A row carries everything delivery needs (exact body bytes for the HMAC, url, headers,
//! key, retry policy), so config changes never alter events already queued.

use std::{
    collections::{HashMap, HashSet},
    path::PathBuf,
    sync::{Arc, Mutex},
};

use futures_util::TryStreamExt;
use mongodb::{
    Collection, Database,
    bson::{Bson, Document, doc},
    options::{FindOneAndUpdateOptions, ReturnDocument},
};
use rusqlite::{Connection, params};
use serde::Serialize;

use super::Error;
use crate::{
    sessions::config::{RetriesConfiguration, RetryPolicy},
    store::{Backend, Store},
};

/// File name of the SQLite outbox inside the session folder.
pub const SQLITE_FILE: &str = "events.sqlite3";

const SQLITE_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    event_id TEXT NOT NULL,
    event TEXT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    headers TEXT NOT NULL,
    hmac_key TEXT,
    policy TEXT NOT NULL,
    delay_ms INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    state TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_error TEXT
);
CREATE INDEX IF NOT EXISTS outbox_url_state_seq ON outbox(url, state, seq);
CREATE INDEX IF NOT EXISTS outbox_state_seq ON outbox(state, seq);
"#;

const PENDING: &str = "pending";
const DEAD: &str = "dead";

/// WAHA's retry defaults (`axios-retry` setup in `WebhookPlugin.sender.ts`).
const DEFAULT_DELAY_MS: u64 = 2_000;
const DEFAULT_ATTEMPTS: u32 = 15;

/// Retry policy of one row (WAHA `RetriesConfiguration`, resolved to numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// constant, linear or exponential.
    pub policy: RetryPolicy,
    /// Base delay, ms (`delaySeconds` × 1000).
    pub delay_ms: u64,
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
}

impl Retry {
    /// Resolves a webhook's `retries` with WAHA's defaults (constant, 2 s, 15).
    pub fn from_config(config: Option<&RetriesConfiguration>) -> Self {
        let delay_ms = config
            .and_then(|r| r.delay_seconds.as_ref())
            .and_then(serde_json::Number::as_f64)
            .filter(|d| d.is_finite() && *d >= 0.0)
            // Saturating float→int cast; a day is plenty for a base delay.
            .map_or(DEFAULT_DELAY_MS, |d| (d * 1000.0).min(86_400_000.0) as u64);
        let max_attempts = config
            .and_then(|r| r.attempts.as_ref())
            .and_then(serde_json::Number::as_f64)
            .filter(|a| a.is_finite())
            .map_or(DEFAULT_ATTEMPTS, |a| a.clamp(1.0, 10_000.0) as u32);
        Self {
            policy: config
                .and_then(|r| r.policy)
                .unwrap_or(RetryPolicy::Constant),
            delay_ms,
            max_attempts,
        }
    }

    fn policy_str(&self) -> &'static str {
        match self.policy {
            RetryPolicy::Constant => "constant",
            RetryPolicy::Linear => "linear",
            RetryPolicy::Exponential => "exponential",
        }
    }

    fn parse_policy(s: &str) -> RetryPolicy {
        match s {
            "linear" => RetryPolicy::Linear,
            "exponential" => RetryPolicy::Exponential,
            _ => RetryPolicy::Constant,
        }
    }
}

/// A row to append.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Envelope id (`evt_…`): the same on every redelivery.
    pub event_id: String,
    /// Event name.
    pub event: String,
    /// The exact body sent (and signed).
    pub body: String,
    /// Webhook URL.
    pub url: String,
    /// Custom headers, in order.
    pub headers: Vec<(String, String)>,
    /// HMAC-SHA512 key, if any.
    pub hmac_key: Option<String>,
    /// Retry policy.
    pub retry: Retry,
    /// Envelope timestamp, ms (also `X-Webhook-Timestamp`).
    pub created_ms: i64,
}

/// A stored row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Monotonic per session; delivery order.
    pub seq: i64,
    /// Everything appended.
    pub new: NewRow,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time, ms.
    pub next_attempt_ms: i64,
    /// Last failure (status or network error).
    pub last_error: Option<String>,
}

/// A dead letter as the admin API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Outbox sequence number (the replay id).
    pub id: i64,
    /// Envelope id.
    pub event_id: String,
    /// Event name.
    pub event: String,
    /// Webhook URL.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Event time, ms.
    pub created_at: i64,
}

/// The outbox of every session. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    backend: OutboxBackend,
}

#[derive(Clone)]
enum OutboxBackend {
    Sqlite(SqliteOutbox),
    Mongo(MongoOutbox),
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.backend {
            OutboxBackend::Sqlite($b) => $e,
            OutboxBackend::Mongo($b) => $e,
        }
    };
}

impl Outbox {
    /// The outbox living next to `store`'s per-session data.
    pub fn new(store: &Store) -> Self {
        let backend = match store.backend() {
            Backend::Sqlite(s) => OutboxBackend::Sqlite(SqliteOutbox {
                store: s.clone(),
                conns: Arc::new(Mutex::new(HashMap::new())),
            }),
            Backend::Mongo(m) => OutboxBackend::Mongo(MongoOutbox {
                store: m.clone(),
                indexed: Arc::new(Mutex::new(HashSet::new())),
                append_locks: Arc::new(Mutex::new(HashMap::new())),
            }),
        };
        Self { backend }
    }

    /// Appends `rows` (in order, consecutive seqs) durably.
    ///
    /// # Errors
    /// [`Error::Outbox`] when nothing was written.
    ///
    /// # Cancel safety
    /// SQLite: the write completes on the blocking pool even if dropped. MongoDB: dropped
    /// between the counter and the insert, a seq gap is left (harmless).
    pub async fn append(&self, session: &str, rows: Vec<NewRow>) -> Result<(), Error> {
        dispatch!(self, b => b.append(session, rows).await)
    }

    /// Up to `limit` pending rows for `url`, lowest seq first (including rows whose next
    /// attempt is in the future: they hold back the ones behind them). `None` when the
    /// session's outbox is gone (the session was deleted).
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn pending(
        &self,
        session: &str,
        url: &str,
        limit: usize,
    ) -> Result<Option<Vec<Row>>, Error> {
        dispatch!(self, b => b.pending(session, url, limit).await)
    }

    /// Delivered: the row is removed.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn delivered(&self, session: &str, seq: i64) -> Result<(), Error> {
        dispatch!(self, b => b.delivered(session, seq).await)
    }

    /// A failed attempt: records it, and either schedules the next one or (`dead`) moves
    /// the row to the dead-letter list.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn failed(
        &self,
        session: &str,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<(), Error> {
        dispatch!(self, b => b.failed(session, seq, attempts, next_attempt_ms, error, dead).await)
    }

    /// Distinct URLs with pending rows (boot: which workers to start).
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn pending_urls(&self, session: &str) -> Result<Vec<String>, Error> {
        dispatch!(self, b => b.pending_urls(session).await)
    }

    /// Dead rows, lowest seq first.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn dead(&self, session: &str) -> Result<Vec<DeadLetter>, Error> {
        dispatch!(self, b => b.dead(session).await)
    }

    /// Dead → pending (all, or seq `id`), attempts reset, due now. Returns how many and
    /// their distinct URLs.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn replay(
        &self,
        session: &str,
        id: Option<i64>,
    ) -> Result<(u64, Vec<String>), Error> {
        dispatch!(self, b => b.replay(session, id).await)
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Outbox(e.to_string())
}

// ---------------------------------------------------------------------------------------
// SQLite

type SharedConn = Arc<Mutex<Connection>>;

#[derive(Clone)]
struct SqliteOutbox {
    store: crate::store::sqlite::SqliteStore,
    /// One connection per session, opened on first use.
    conns: Arc<Mutex<HashMap<String, SharedConn>>>,
}

impl SqliteOutbox {
    /// Runs `f` on the session's outbox connection on the blocking pool. With `create`
    /// false, a missing file (session deleted, or never had events) yields `None`
    /// instead of creating it; a cached connection to a deleted file is dropped, so a
    /// re-created session never writes into an unlinked file.
    async fn with_conn<T, F>(&self, session: &str, create: bool, f: F) -> Result<Option<T>, Error>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let dir = self.store.session_dir(session).map_err(db_err)?;
        let conns = Arc::clone(&self.conns);
        let session = session.to_string();
        tokio::task::spawn_blocking(move || {
            let path = dir.join(SQLITE_FILE);
            let conn = {
                let mut map = conns
                    .lock()
                    .map_err(|_| Error::Outbox("outbox lock poisoned".into()))?;
                if !path.exists() {
                    map.remove(&session);
                    if !create {
                        return Ok(None);
                    }
                }
                match map.get(&session) {
                    Some(c) => Arc::clone(c),
                    None => {
                        let c = Arc::new(Mutex::new(open_sqlite(&dir, &path)?));
                        map.insert(session, Arc::clone(&c));
                        c
                    }
                }
            };
            let mut conn = conn
                .lock()
                .map_err(|_| Error::Outbox("outbox connection poisoned".into()))?;
            f(&mut conn).map(Some).map_err(db_err)
        })
        .await
        .map_err(|e| Error::Outbox(format!("outbox task failed: {e}")))?
    }

    async fn append(&self, session: &str, rows: Vec<NewRow>) -> Result<(), Error> {
        self.with_conn(session, true, move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached(
                    "INSERT INTO outbox (event_id, event, url, body, headers, hmac_key, policy, \
                     delay_ms, max_attempts, attempts, next_attempt_at, state, created_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 0, ?10, 'pending', ?11)",
                )?;
                for r in &rows {
                    let headers = serde_json::to_string(&r.headers).unwrap_or_else(|_| "[]".into());
                    stmt.execute(params![
                        r.event_id,
                        r.event,
                        r.url,
                        r.body,
                        headers,
                        r.hmac_key,
                        r.retry.policy_str(),
                        i64::try_from(r.retry.delay_ms).unwrap_or(i64::MAX),
                        r.retry.max_attempts,
                        r.created_ms,
                        r.created_ms,
                    ])?;
                }
            }
            tx.commit()
        })
        .await
        .map(|_| ())
    }

    async fn pending(
        &self,
        session: &str,
        url: &str,
        limit: usize,
    ) -> Result<Option<Vec<Row>>, Error> {
        let url = url.to_string();
        self.with_conn(session, false, move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_id, event, url, body, headers, hmac_key, policy, delay_ms, \
                 max_attempts, attempts, next_attempt_at, created_at, last_error \
                 FROM outbox WHERE url = ?1 AND state = 'pending' ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![url, i64::try_from(limit).unwrap_or(16)], |r| {
                let headers: String = r.get(5)?;
                let policy: String = r.get(7)?;
                let delay_ms: i64 = r.get(8)?;
                Ok(Row {
                    seq: r.get(0)?,
                    new: NewRow {
                        event_id: r.get(1)?,
                        event: r.get(2)?,
                        url: r.get(3)?,
                        body: r.get(4)?,
                        headers: serde_json::from_str(&headers).unwrap_or_default(),
                        hmac_key: r.get(6)?,
                        retry: Retry {
                            policy: Retry::parse_policy(&policy),
                            delay_ms: u64::try_from(delay_ms).unwrap_or(0),
                            max_attempts: r.get(9)?,
                        },
                        created_ms: r.get(12)?,
                    },
                    attempts: r.get(10)?,
                    next_attempt_ms: r.get(11)?,
                    last_error: r.get(13)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn delivered(&self, session: &str, seq: i64) -> Result<(), Error> {
        self.with_conn(session, false, move |conn| {
            conn.execute("DELETE FROM outbox WHERE seq = ?1", params![seq])
        })
        .await
        .map(|_| ())
    }

    async fn failed(
        &self,
        session: &str,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<(), Error> {
        let error = error.to_string();
        let state = if dead { DEAD } else { PENDING };
        self.with_conn(session, false, move |conn| {
            conn.execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4, \
                 state = ?5 WHERE seq = ?1",
                params![seq, attempts, next_attempt_ms, error, state],
            )
        })
        .await
        .map(|_| ())
    }

    async fn pending_urls(&self, session: &str) -> Result<Vec<String>, Error> {
        self.with_conn(session, false, |conn| {
            let mut stmt = conn.prepare(
                "SELECT url FROM outbox WHERE state = 'pending' GROUP BY url ORDER BY MIN(seq)",
            )?;
            let urls = stmt.query_map([], |r| r.get(0))?;
            urls.collect()
        })
        .await
        .map(Option::unwrap_or_default)
    }

    async fn dead(&self, session: &str) -> Result<Vec<DeadLetter>, Error> {
        self.with_conn(session, false, |conn| {
            let mut stmt = conn.prepare(
                "SELECT seq, event_id, event, url, attempts, last_error, created_at \
                 FROM outbox WHERE state = 'dead' ORDER BY seq",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(DeadLetter {
                    id: r.get(0)?,
                    event_id: r.get(1)?,
                    event: r.get(2)?,
                    url: r.get(3)?,
                    attempts: r.get(4)?,
                    last_error: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })?;
            rows.collect()
        })
        .await
        .map(Option::unwrap_or_default)
    }

    async fn replay(&self, session: &str, id: Option<i64>) -> Result<(u64, Vec<String>), Error> {
        let now = now_ms();
        self.with_conn(session, false, move |conn| {
            let tx = conn.transaction()?;
            let urls: Vec<String> = {
                let mut stmt = tx.prepare(
                    "SELECT DISTINCT url FROM outbox WHERE state = 'dead' \
                     AND (?1 IS NULL OR seq = ?1)",
                )?;
                let urls = stmt.query_map(params![id], |r| r.get(0))?;
                urls.collect::<rusqlite::Result<_>>()?
            };
            let n = tx.execute(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = ?2 \
                 WHERE state = 'dead' AND (?1 IS NULL OR seq = ?1)",
                params![id, now],
            )?;
            tx.commit()?;
            Ok((n as u64, urls))
        })
        .await
        .map(Option::unwrap_or_default)
    }
}

fn open_sqlite(dir: &std::path::Path, path: &PathBuf) -> Result<Connection, Error> {
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::Outbox(format!("cannot create {}: {e}", dir.display())))?;
    let conn = Connection::open(path)
        .map_err(|e| Error::Outbox(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(db_err)?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(db_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "outbox: WAL journal mode not available");
    }
    // FULL: a published event must survive a power cut, not only a process crash.
    conn.execute_batch("PRAGMA synchronous = FULL;")
        .map_err(db_err)?;
    conn.execute_batch(SQLITE_SCHEMA).map_err(db_err)?;
    Ok(conn)
}

// ---------------------------------------------------------------------------------------
// MongoDB

#[derive(Clone)]
struct MongoOutbox {
    store: crate::store::mongo::MongoStore,
    /// Sessions whose `outbox` index was ensured by this process.
    indexed: Arc<Mutex<HashSet<String>>>,
    /// Per-session lock around (allocate seq, insert): a worker must never see seq n+1
    /// before seq n is visible.
    append_locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
}

impl MongoOutbox {
    fn db(&self, session: &str) -> Database {
        self.store.session_db(session)
    }

    fn outbox(&self, session: &str) -> Collection<Document> {
        self.db(session).collection("outbox")
    }

    async fn ensure_index(&self, session: &str) -> Result<(), Error> {
        let known = self
            .indexed
            .lock()
            .map(|s| s.contains(session))
            .unwrap_or(false);
        if known {
            return Ok(());
        }
        let model = mongodb::IndexModel::builder()
            .keys(doc! { "url": 1, "state": 1, "_id": 1 })
            .build();
        self.outbox(session)
            .create_index(model)
            .await
            .map_err(db_err)?;
        if let Ok(mut s) = self.indexed.lock() {
            s.insert(session.to_string());
        }
        Ok(())
    }

    fn append_lock(&self, session: &str) -> Arc<tokio::sync::Mutex<()>> {
        match self.append_locks.lock() {
            Ok(mut map) => Arc::clone(map.entry(session.to_string()).or_default()),
            // Poisoned only by a panic elsewhere; a private lock still serializes us.
            Err(_) => Arc::new(tokio::sync::Mutex::new(())),
        }
    }

    async fn append(&self, session: &str, rows: Vec<NewRow>) -> Result<(), Error> {
        self.ensure_index(session).await?;
        let lock = self.append_lock(session);
        let _guard = lock.lock().await;
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let counter = self
            .db(session)
            .collection::<Document>("counters")
            .find_one_and_update(doc! { "_id": "outbox" }, doc! { "$inc": { "seq": n } })
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
            .map_err(db_err)?
            .ok_or_else(|| Error::Outbox("outbox counter missing".into()))?;
        let last = bson_i64(counter.get("seq")).unwrap_or(n);
        let first = last - n + 1;
        let docs: Vec<Document> = rows
            .iter()
            .zip(first..)
            .map(|(r, seq)| {
                let headers: Vec<Bson> = r
                    .headers
                    .iter()
                    .map(|(k, v)| Bson::Document(doc! { "name": k, "value": v }))
                    .collect();
                doc! {
                    "_id": seq,
                    "eventId": &r.event_id,
                    "event": &r.event,
                    "url": &r.url,
                    "body": &r.body,
                    "headers": headers,
                    "hmacKey": r.hmac_key.as_deref().map_or(Bson::Null, |k| Bson::String(k.into())),
                    "policy": r.retry.policy_str(),
                    "delayMs": i64::try_from(r.retry.delay_ms).unwrap_or(i64::MAX),
                    "maxAttempts": i64::from(r.retry.max_attempts),
                    "attempts": 0_i64,
                    "nextAttemptAt": r.created_ms,
                    "state": PENDING,
                    "createdAt": r.created_ms,
                    "lastError": Bson::Null,
                }
            })
            .collect();
        self.outbox(session)
            .insert_many(docs)
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn pending(
        &self,
        session: &str,
        url: &str,
        limit: usize,
    ) -> Result<Option<Vec<Row>>, Error> {
        let docs: Vec<Document> = self
            .outbox(session)
            .find(doc! { "url": url, "state": PENDING })
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(16))
            .await
            .map_err(db_err)?
            .try_collect()
            .await
            .map_err(db_err)?;
        docs.iter()
            .map(row_from_doc)
            .collect::<Result<_, _>>()
            .map(Some)
    }

    async fn delivered(&self, session: &str, seq: i64) -> Result<(), Error> {
        self.outbox(session)
            .delete_one(doc! { "_id": seq })
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn failed(
        &self,
        session: &str,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<(), Error> {
        self.outbox(session)
            .update_one(
                doc! { "_id": seq },
                doc! { "$set": {
                    "attempts": i64::from(attempts),
                    "nextAttemptAt": next_attempt_ms,
                    "lastError": error,
                    "state": if dead { DEAD } else { PENDING },
                } },
            )
            .await
            .map_err(db_err)?;
        Ok(())
    }

    async fn pending_urls(&self, session: &str) -> Result<Vec<String>, Error> {
        let docs: Vec<Document> = self
            .outbox(session)
            .find(doc! { "state": PENDING })
            .projection(doc! { "url": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?
            .try_collect()
            .await
            .map_err(db_err)?;
        let mut seen = HashSet::new();
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("url").ok())
            .filter(|u| seen.insert((*u).to_string()))
            .map(str::to_string)
            .collect())
    }

    async fn dead(&self, session: &str) -> Result<Vec<DeadLetter>, Error> {
        let docs: Vec<Document> = self
            .outbox(session)
            .find(doc! { "state": DEAD })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(db_err)?
            .try_collect()
            .await
            .map_err(db_err)?;
        docs.iter()
            .map(|d| {
                let row = row_from_doc(d)?;
                Ok(DeadLetter {
                    id: row.seq,
                    event_id: row.new.event_id,
                    event: row.new.event,
                    url: row.new.url,
                    attempts: row.attempts,
                    last_error: row.last_error,
                    created_at: row.new.created_ms,
                })
            })
            .collect()
    }

    async fn replay(&self, session: &str, id: Option<i64>) -> Result<(u64, Vec<String>), Error> {
        let mut filter = doc! { "state": DEAD };
        if let Some(id) = id {
            filter.insert("_id", id);
        }
        let urls = self
            .outbox(session)
            .distinct("url", filter.clone())
            .await
            .map_err(db_err)?
            .into_iter()
            .filter_map(|b| b.as_str().map(str::to_string))
            .collect();
        let res = self
            .outbox(session)
            .update_many(
                filter,
                doc! { "$set": { "state": PENDING, "attempts": 0_i64, "nextAttemptAt": now_ms() } },
            )
            .await
            .map_err(db_err)?;
        Ok((res.modified_count, urls))
    }
}

fn bson_i64(b: Option<&Bson>) -> Option<i64> {
    match b? {
        Bson::Int64(v) => Some(*v),
        Bson::Int32(v) => Some(i64::from(*v)),
        Bson::Double(v) => Some(*v as i64),
        // Anything else is not a number we wrote.
        Bson::String(_)
        | Bson::Array(_)
        | Bson::Document(_)
        | Bson::Boolean(_)
        | Bson::Null
        | Bson::RegularExpression(_)
        | Bson::JavaScriptCode(_)
        | Bson::JavaScriptCodeWithScope(_)
        | Bson::Timestamp(_)
        | Bson::Binary(_)
        | Bson::ObjectId(_)
        | Bson::DateTime(_)
        | Bson::Symbol(_)
        | Bson::Decimal128(_)
        | Bson::Undefined
        | Bson::MaxKey
        | Bson::MinKey
        | Bson::DbPointer(_) => None,
    }
}

fn row_from_doc(d: &Document) -> Result<Row, Error> {
    let corrupt = |field: &str| Error::Outbox(format!("outbox row without {field}"));
    let int = |field: &str| bson_i64(d.get(field)).ok_or_else(|| corrupt(field));
    let text = |field: &str| {
        d.get_str(field)
            .map(str::to_string)
            .map_err(|_| corrupt(field))
    };
    let headers = d
        .get_array("headers")
        .map(|a| {
            a.iter()
                .filter_map(Bson::as_document)
                .filter_map(|h| {
                    Some((
                        h.get_str("name").ok()?.into(),
                        h.get_str("value").ok()?.into(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    Ok(Row {
        seq: int("_id")?,
        new: NewRow {
            event_id: text("eventId")?,
            event: text("event")?,
            body: text("body")?,
            url: text("url")?,
            headers,
            hmac_key: d.get_str("hmacKey").ok().map(str::to_string),
            retry: Retry {
                policy: Retry::parse_policy(d.get_str("policy").unwrap_or("constant")),
                delay_ms: u64::try_from(int("delayMs")?).unwrap_or(0),
                max_attempts: u32::try_from(int("maxAttempts")?).unwrap_or(1),
            },
            created_ms: int("createdAt")?,
        },
        attempts: u32::try_from(int("attempts")?).unwrap_or(0),
        next_attempt_ms: int("nextAttemptAt")?,
        last_error: d.get_str("lastError").ok().map(str::to_string),
    })
}
