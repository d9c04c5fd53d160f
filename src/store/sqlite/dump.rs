//! [`DumpBackend`] on SQLite: the outbox rows of `events.sqlite3` read and written with
//! their `seq` (an explicit `seq` in an `AUTOINCREMENT` table also raises the sequence).
//!
//! Called through `store::SessionStore` by the dump of `cli::dump`.

use rusqlite::params;

use super::{SqliteSession, sql_err};
use crate::store::Result;
use crate::store::dump::{DumpBackend, OutboxEntry};

impl DumpBackend for SqliteSession {
    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        self.with_conn(&super::outbox::DB, false, |conn| {
            let mut stmt = conn
                .prepare(
                    "SELECT seq, event_id, event, url, body, headers, hmac_key, policy, \
                     delay_ms, max_attempts, attempts, next_attempt_at, created_at, last_error, \
                     state FROM outbox ORDER BY seq",
                )
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([], |r| {
                    let state: String = r.get(14)?;
                    let row = super::outbox::row_from_sql(r)?;
                    Ok(OutboxEntry::from_row(row, state == "dead"))
                })
                .map_err(sql_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
        })
        .await
        .map(Option::unwrap_or_default)
    }

    async fn restore_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        let entries = entries.to_vec();
        self.with_conn(&super::outbox::DB, true, move |conn| {
            let tx = conn.transaction().map_err(sql_err)?;
            {
                let mut stmt = tx
                    .prepare(
                        "INSERT OR REPLACE INTO outbox (seq, event_id, event, url, body, headers, \
                         hmac_key, policy, delay_ms, max_attempts, attempts, next_attempt_at, \
                         state, created_at, last_error) \
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
                    )
                    .map_err(sql_err)?;
                for e in &entries {
                    let headers = serde_json::to_string(&e.headers).unwrap_or_else(|_| "[]".into());
                    stmt.execute(params![
                        e.seq,
                        e.event_id,
                        e.event,
                        e.url,
                        e.body,
                        headers,
                        e.hmac_key,
                        e.retry().policy_str(),
                        i64::try_from(e.delay_ms).unwrap_or(i64::MAX),
                        e.max_attempts,
                        e.attempts,
                        e.next_attempt_ms,
                        if e.dead { "dead" } else { "pending" },
                        e.created_ms,
                        e.last_error,
                    ])
                    .map_err(sql_err)?;
                }
            }
            tx.commit().map_err(sql_err)
        })
        .await
        .map(drop)
    }
}
