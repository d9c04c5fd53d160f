//! The durable webhook outbox: one row per (event, webhook), in the session's own storage.
//!
//! Owns: the domain side — the rows' state machine (pending → deleted on 2xx, pending →
//! dead after the last attempt, dead → pending on replay) and WAHA's retry defaults
//! ([`Retry::from_config`]). [`super::EventBus::publish`] appends, [`super::webhook`]
//! workers read and update, the dead-letter endpoints list and replay. Built once with the
//! bus; lives for the process.
//!
//! Persistence is the store's: `store.session(name).outbox()` (SQLite
//! `{session_dir}/events.sqlite3` with `synchronous=FULL`, or the `outbox` collection of the
//! session's MongoDB database; see `store/{sqlite,mongo}/outbox.rs`). Deleting a session
//! deletes its outbox; logout keeps it.
//!
//! A row carries everything delivery needs (exact body bytes for the HMAC, url, headers,
//! key, retry policy), so config changes never alter events already queued.

use super::Error;
pub use crate::store::{DeadLetter, NewRow, Retry, Row};
use crate::{
    model::session::{RetriesConfiguration, RetryPolicy},
    store::{SessionStore, Store},
};

/// WAHA's retry defaults (`axios-retry` setup in `WebhookPlugin.sender.ts`).
const DEFAULT_DELAY_MS: u64 = 2_000;
const DEFAULT_ATTEMPTS: u32 = 15;

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
}

/// The outbox of every session. Cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    store: Store,
}

impl Outbox {
    /// The outbox living next to `store`'s per-session data.
    pub fn new(store: &Store) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// The session's storage; a name the store cannot hold is an outbox error.
    fn session(&self, session: &str) -> Result<SessionStore, Error> {
        let name = self.store.session_name(session).map_err(db_err)?;
        Ok(self.store.session(&name))
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
        self.session(session)?
            .outbox()
            .append(rows)
            .await
            .map_err(db_err)
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
        self.pending_after(session, url, 0, limit).await
    }

    /// As [`Self::pending`], only rows with a seq above `after` (a delivery worker reads
    /// on past rows whose removal is still being written).
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn pending_after(
        &self,
        session: &str,
        url: &str,
        after: i64,
        limit: usize,
    ) -> Result<Option<Vec<Row>>, Error> {
        self.session(session)?
            .outbox()
            .pending(url, after, limit)
            .await
            .map_err(db_err)
    }

    /// Delivered: the rows are removed, in one write.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn delivered(&self, session: &str, seqs: Vec<i64>) -> Result<(), Error> {
        self.session(session)?
            .outbox()
            .delivered(seqs)
            .await
            .map_err(db_err)
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
        self.session(session)?
            .outbox()
            .failed(seq, attempts, next_attempt_ms, error, dead)
            .await
            .map_err(db_err)
    }

    /// Distinct URLs with pending rows (boot: which workers to start).
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn pending_urls(&self, session: &str) -> Result<Vec<String>, Error> {
        self.session(session)?
            .outbox()
            .pending_urls()
            .await
            .map_err(db_err)
    }

    /// Dead rows, lowest seq first.
    ///
    /// # Errors
    /// [`Error::Outbox`] on storage failures.
    pub async fn dead(&self, session: &str) -> Result<Vec<DeadLetter>, Error> {
        self.session(session)?.outbox().dead().await.map_err(db_err)
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
        self.session(session)?
            .outbox()
            .replay(id, now_ms())
            .await
            .map_err(db_err)
    }
}

fn now_ms() -> i64 {
    crate::clock::now_ms()
}

fn db_err(e: impl std::fmt::Display) -> Error {
    Error::Outbox(e.to_string())
}
