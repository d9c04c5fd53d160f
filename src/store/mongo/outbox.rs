//! The webhook outbox on MongoDB: collection `outbox` in the session database, `_id` = a
//! monotonic `seq` from the `counters` document `{_id: "outbox"}`. Logout only drops
//! `wa_*` collections, so the outbox survives it; deleting the session drops it.
//!
//! Owns: the document layout and index; implements [`OutboxBackend`] for
//! [`MongoSession`] through the store's one client, error mapping, index memo and
//! per-session append lock (`store/mongo/mod.rs`). Called through `store::SessionOutbox`.

use std::collections::HashSet;

use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{FindOneAndUpdateOptions, ReturnDocument};

use super::{MongoSession, bson_i64};
use crate::store::{DeadLetter, Error, NewRow, OutboxBackend, Result, Retry, Row};

pub(super) const OUTBOX: &str = "outbox";
pub(super) const COUNTERS: &str = "counters";
pub(super) const PENDING: &str = "pending";
pub(super) const DEAD: &str = "dead";

impl MongoSession {
    /// The delivery index `{url, state, _id}`, before the session's first append.
    pub(super) async fn ensure_outbox_index(&self) -> Result<()> {
        let model = IndexModel::builder()
            .keys(doc! { "url": 1, "state": 1, "_id": 1 })
            .build();
        self.ensure_indexes(OUTBOX, vec![(self.coll(OUTBOX), vec![model])])
            .await
    }
}

impl OutboxBackend for MongoSession {
    async fn append(&self, rows: Vec<NewRow>) -> Result<()> {
        self.ensure_outbox_index().await?;
        let lock = self.append_lock();
        let _guard = lock.lock().await;
        let n = i64::try_from(rows.len()).unwrap_or(i64::MAX);
        let counter = self
            .coll(COUNTERS)
            .find_one_and_update(doc! { "_id": "outbox" }, doc! { "$inc": { "seq": n } })
            .with_options(
                FindOneAndUpdateOptions::builder()
                    .upsert(true)
                    .return_document(ReturnDocument::After)
                    .build(),
            )
            .await
            .map_err(|e| self.err(&e))?
            .ok_or_else(|| Error::Backend("outbox counter missing".into()))?;
        let last = counter.get("seq").and_then(bson_i64).unwrap_or(n);
        let first = last - n + 1;
        let docs: Vec<Document> = rows
            .iter()
            .zip(first..)
            .map(|(r, seq)| row_doc(seq, r, 0, r.created_ms, PENDING, None))
            .collect();
        self.coll(OUTBOX)
            .insert_many(docs)
            .await
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    async fn pending(&self, url: &str, after: i64, limit: usize) -> Result<Option<Vec<Row>>> {
        let docs: Vec<Document> = self
            .coll(OUTBOX)
            .find(doc! { "url": url, "state": PENDING, "_id": { "$gt": after } })
            .sort(doc! { "_id": 1 })
            .limit(i64::try_from(limit).unwrap_or(16))
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        docs.iter()
            .map(row_from_doc)
            .collect::<Result<_>>()
            .map(Some)
    }

    async fn delivered(&self, seqs: Vec<i64>) -> Result<()> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.coll(OUTBOX)
            .delete_many(doc! { "_id": { "$in": seqs } })
            .await
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    async fn failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<()> {
        self.coll(OUTBOX)
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
            .map_err(|e| self.err(&e))?;
        Ok(())
    }

    async fn pending_urls(&self) -> Result<Vec<String>> {
        let docs: Vec<Document> = self
            .coll(OUTBOX)
            .find(doc! { "state": PENDING })
            .projection(doc! { "url": 1 })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut seen = HashSet::new();
        Ok(docs
            .iter()
            .filter_map(|d| d.get_str("url").ok())
            .filter(|u| seen.insert((*u).to_string()))
            .map(str::to_string)
            .collect())
    }

    async fn dead(&self) -> Result<Vec<DeadLetter>> {
        let docs: Vec<Document> = self
            .coll(OUTBOX)
            .find(doc! { "state": DEAD })
            .sort(doc! { "_id": 1 })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
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

    async fn replay(&self, id: Option<i64>, now_ms: i64) -> Result<(u64, Vec<String>)> {
        let mut filter = doc! { "state": DEAD };
        if let Some(id) = id {
            filter.insert("_id", id);
        }
        let urls = self
            .coll(OUTBOX)
            .distinct("url", filter.clone())
            .await
            .map_err(|e| self.err(&e))?
            .into_iter()
            .filter_map(|b| b.as_str().map(str::to_string))
            .collect();
        let res = self
            .coll(OUTBOX)
            .update_many(
                filter,
                doc! { "$set": { "state": PENDING, "attempts": 0_i64, "nextAttemptAt": now_ms } },
            )
            .await
            .map_err(|e| self.err(&e))?;
        Ok((res.modified_count, urls))
    }
}

/// A stored document back to a row.
/// The document of one outbox row: [`OutboxBackend::append`] writes fresh rows (no
/// attempts yet, pending), the dump's restore writes rows as they were.
pub(super) fn row_doc(
    seq: i64,
    r: &NewRow,
    attempts: u32,
    next_attempt_ms: i64,
    state: &str,
    last_error: Option<&str>,
) -> Document {
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
        "attempts": i64::from(attempts),
        "nextAttemptAt": next_attempt_ms,
        "state": state,
        "createdAt": r.created_ms,
        "lastError": last_error.map_or(Bson::Null, |k| Bson::String(k.into())),
    }
}

pub(super) fn row_from_doc(d: &Document) -> Result<Row> {
    let corrupt = |field: &str| Error::Corrupt(format!("outbox row without {field}"));
    let int = |field: &str| {
        d.get(field)
            .and_then(bson_i64)
            .ok_or_else(|| corrupt(field))
    };
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
