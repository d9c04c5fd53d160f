//! The webhook outbox on SQLite: `{session_dir}/events.sqlite3`.
//!
//! Owns: the schema and the SQL of [`OutboxBackend`] for [`SqliteSession`]. WAL with
//! `synchronous=FULL`, so an appended event survives power loss, not only a crash. A file
//! of its own, so logout's `whatsapp.db*` wipe keeps it; deleting the session removes the
//! folder and with it the outbox (intended). Connections come from the backend's one
//! per-session cache; called through `store::SessionOutbox`.

use rusqlite::{Connection, params};

use super::{SessionDb, SqliteSession, sql_err};
use crate::store::{DeadLetter, NewRow, OutboxBackend, Result, Retry, Row};

/// The outbox database of a session. FULL: a published event must survive a power cut.
pub(super) static DB: SessionDb = SessionDb {
    file: "events.sqlite3",
    schema: SCHEMA,
    synchronous: "FULL",
};

const SCHEMA: &str = r#"
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

impl SqliteSession {
    /// [`SqliteSession::with_conn`] on the outbox, for SQL that answers rusqlite errors.
    async fn outbox<T, F>(&self, create: bool, f: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        self.with_conn(&DB, create, move |c| f(c).map_err(sql_err))
            .await
    }
}

impl OutboxBackend for SqliteSession {
    async fn append(&self, rows: Vec<NewRow>) -> Result<()> {
        self.outbox(true, move |conn| {
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
        .map(drop)
    }

    async fn pending(&self, url: &str, after: i64, limit: usize) -> Result<Option<Vec<Row>>> {
        let url = url.to_string();
        self.outbox(false, move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, event_id, event, url, body, headers, hmac_key, policy, delay_ms, \
                 max_attempts, attempts, next_attempt_at, created_at, last_error \
                 FROM outbox WHERE url = ?1 AND state = 'pending' AND seq > ?3 \
                 ORDER BY seq LIMIT ?2",
            )?;
            let limit = i64::try_from(limit).unwrap_or(16);
            let rows = stmt.query_map(params![url, limit, after], row_from_sql)?;
            rows.collect()
        })
        .await
    }

    async fn delivered(&self, seqs: Vec<i64>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        // One transaction: one fsync for the whole batch.
        self.outbox(false, move |conn| {
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?;
                for seq in &seqs {
                    stmt.execute(params![seq])?;
                }
            }
            tx.commit()
        })
        .await
        .map(drop)
    }

    async fn failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<()> {
        let error = error.to_string();
        let state = if dead { DEAD } else { PENDING };
        self.outbox(false, move |conn| {
            conn.execute(
                "UPDATE outbox SET attempts = ?2, next_attempt_at = ?3, last_error = ?4, \
                 state = ?5 WHERE seq = ?1",
                params![seq, attempts, next_attempt_ms, error, state],
            )
        })
        .await
        .map(drop)
    }

    async fn pending_urls(&self) -> Result<Vec<String>> {
        self.outbox(false, |conn| {
            let mut stmt = conn.prepare(
                "SELECT url FROM outbox WHERE state = 'pending' GROUP BY url ORDER BY MIN(seq)",
            )?;
            let urls = stmt.query_map([], |r| r.get(0))?;
            urls.collect()
        })
        .await
        .map(Option::unwrap_or_default)
    }

    async fn dead(&self) -> Result<Vec<DeadLetter>> {
        self.outbox(false, |conn| {
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

    async fn replay(&self, id: Option<i64>, now_ms: i64) -> Result<(u64, Vec<String>)> {
        self.outbox(false, move |conn| {
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
                params![id, now_ms],
            )?;
            tx.commit()?;
            Ok((n as u64, urls))
        })
        .await
        .map(Option::unwrap_or_default)
    }
}

/// Decodes an outbox row selected as `seq, event_id, event, url, body, headers, hmac_key,
/// policy, delay_ms, max_attempts, attempts, next_attempt_at, created_at, last_error`
/// (further columns, such as the dump's `state`, may follow).
pub(super) fn row_from_sql(r: &rusqlite::Row<'_>) -> rusqlite::Result<Row> {
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
}
