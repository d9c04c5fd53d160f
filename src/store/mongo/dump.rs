//! [`DumpBackend`] on MongoDB: the `outbox` collection's documents read and written with
//! their `_id` (the sequence number), and the `counters` document raised past them.
//!
//! Called through `store::SessionStore` by the dump of `cli::dump`.

use futures_util::TryStreamExt;
use mongodb::bson::{Document, doc};

use super::MongoSession;
use crate::store::Result;
use crate::store::dump::{DumpBackend, OutboxEntry};

impl DumpBackend for MongoSession {
    async fn outbox_entries(&self) -> Result<Vec<OutboxEntry>> {
        let docs: Vec<Document> = self
            .coll(super::outbox::OUTBOX)
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        docs.iter()
            .map(|d| {
                let dead = d.get_str("state").is_ok_and(|s| s == super::outbox::DEAD);
                super::outbox::row_from_doc(d).map(|row| OutboxEntry::from_row(row, dead))
            })
            .collect()
    }

    async fn restore_outbox(&self, entries: &[OutboxEntry]) -> Result<()> {
        let Some(max) = entries.iter().map(|e| e.seq).max() else {
            return Ok(());
        };
        self.ensure_outbox_index().await?;
        for e in entries {
            let state = if e.dead {
                super::outbox::DEAD
            } else {
                super::outbox::PENDING
            };
            let replacement = super::outbox::row_doc(
                e.seq,
                &e.new_row(),
                e.attempts,
                e.next_attempt_ms,
                state,
                e.last_error.as_deref(),
            );
            self.coll(super::outbox::OUTBOX)
                .replace_one(doc! { "_id": e.seq }, replacement)
                .upsert(true)
                .await
                .map_err(|err| self.err(&err))?;
        }
        self.coll(super::outbox::COUNTERS)
            .update_one(doc! { "_id": "outbox" }, doc! { "$max": { "seq": max } })
            .upsert(true)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(())
    }
}
