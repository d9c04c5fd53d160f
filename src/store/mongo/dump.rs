//! [`DumpBackend`] on MongoDB: the `outbox` collection's documents read and written with
//! their `_id` (the sequence number), and the `counters` document raised past them.
//!
//! Called through `store::SessionStore` by the dump of `cli::dump`.

use futures_util::TryStreamExt;
use mongodb::bson::{Bson, Document, doc};

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
            let headers: Vec<Bson> = e
                .headers
                .iter()
                .map(|(k, v)| Bson::Document(doc! { "name": k, "value": v }))
                .collect();
            let replacement = doc! {
                "_id": e.seq,
                "eventId": &e.event_id,
                "event": &e.event,
                "url": &e.url,
                "body": &e.body,
                "headers": headers,
                "hmacKey": e.hmac_key.as_deref().map_or(Bson::Null, |k| Bson::String(k.into())),
                "policy": e.retry().policy_str(),
                "delayMs": i64::try_from(e.delay_ms).unwrap_or(i64::MAX),
                "maxAttempts": i64::from(e.max_attempts),
                "attempts": i64::from(e.attempts),
                "nextAttemptAt": e.next_attempt_ms,
                "state": if e.dead { super::outbox::DEAD } else { super::outbox::PENDING },
                "createdAt": e.created_ms,
                "lastError": e.last_error.as_deref().map_or(Bson::Null, |k| Bson::String(k.into())),
            };
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
