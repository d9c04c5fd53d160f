//! What a per-session dump needs from a backend beyond the concern traits: the whole
//! webhook outbox, pending and dead rows alike, with their sequence numbers (the delivery
//! order and the dead-letter replay ids), read and written as they are.
//!
//! Owns: [`OutboxEntry`] (the neutral, serde form of one row) and [`DumpBackend`], one
//! file per backend (`sqlite/dump.rs`, `mongo/dump.rs`). Called through
//! [`super::SessionStore::outbox_entries`] / [`super::SessionStore::restore_outbox`] by
//! `cli::dump` (migrate, export, import) while the session is not running.

#![allow(async_fn_in_trait)]

use serde::{Deserialize, Serialize};

use super::{NewRow, Result, Retry, Row};

/// One outbox row as it is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OutboxEntry {
    /// Sequence number (delivery order; the dead-letter id).
    pub seq: i64,
    /// A dead letter (`true`) or pending.
    pub dead: bool,
    /// Envelope id.
    pub event_id: String,
    /// Event name.
    pub event: String,
    /// Webhook URL.
    pub url: String,
    /// The exact body.
    pub body: String,
    /// Custom headers, in order.
    pub headers: Vec<(String, String)>,
    /// HMAC key.
    pub hmac_key: Option<String>,
    /// `constant`, `linear` or `exponential`.
    pub policy: String,
    /// Base delay, ms.
    pub delay_ms: u64,
    /// Attempts in all.
    pub max_attempts: u32,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before, ms.
    pub next_attempt_ms: i64,
    /// Envelope time, ms.
    pub created_ms: i64,
    /// Last failure.
    pub last_error: Option<String>,
}

impl OutboxEntry {
    /// From a stored row.
    pub(crate) fn from_row(row: Row, dead: bool) -> Self {
        Self {
            seq: row.seq,
            dead,
            policy: row.new.retry.policy_str().to_string(),
            delay_ms: row.new.retry.delay_ms,
            max_attempts: row.new.retry.max_attempts,
            event_id: row.new.event_id,
            event: row.new.event,
            url: row.new.url,
            body: row.new.body,
            headers: row.new.headers,
            hmac_key: row.new.hmac_key,
            attempts: row.attempts,
            next_attempt_ms: row.next_attempt_ms,
            created_ms: row.new.created_ms,
            last_error: row.last_error,
        }
    }

    /// The retry policy as the outbox holds it.
    /// The row as it was appended (for backends that write it back).
    pub(crate) fn new_row(&self) -> NewRow {
        NewRow {
            event_id: self.event_id.clone(),
            event: self.event.clone(),
            url: self.url.clone(),
            body: self.body.clone(),
            headers: self.headers.clone(),
            hmac_key: self.hmac_key.clone(),
            retry: self.retry(),
            created_ms: self.created_ms,
        }
    }

    pub(crate) fn retry(&self) -> Retry {
        Retry {
            policy: Retry::parse_policy(&self.policy),
            delay_ms: self.delay_ms,
            max_attempts: self.max_attempts,
        }
    }
}

/// Raw outbox access for dumps.
pub trait DumpBackend {
    /// Every row, pending and dead, by sequence number.
    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>>;
    /// Inserts or replaces these rows by sequence number, and moves the sequence past
    /// them, so later appends never reuse a number. Idempotent.
    async fn restore_outbox(&self, entries: &[OutboxEntry]) -> Result<()>;
}
