//! Cluster coordination documents in the main database (`WHARF_CLUSTER=true`, MongoDB only).
//!
//! Owns: `wharf_workers` (membership: one document per live-or-recently-live worker) and
//! `wharf_leases` (one document per session that should run somewhere: who is meant to run
//! it, who holds it, its fencing epoch and expiry). wharf's own collections (WAHA ignores
//! them). Called by `sessions::cluster` (the lease loop, placement, drain) through
//! [`ClusterStore`], a cheap handle built by [`super::super::Store::cluster`]; lives as long
//! as the store.
//!
//! Documents:
//! * `wharf_workers`: `{_id: worker id, url, capacity, sessions, heartbeat_at}`; times are
//!   Unix milliseconds written by the worker itself.
//! * `wharf_leases`: `{_id: session, desired: bool, target: worker|null, owner: worker|null,
//!   run: string, epoch: Int64, expires_at: ms}`. `desired` is the user's intent (started,
//!   not stopped); `target` is the placement; `owner`/`run`/`epoch`/`expires_at` are the
//!   lease, `run` being the holder's process incarnation (a restarted worker with the same
//!   id has a new one). `epoch` only ever grows: it is `$inc`remented by every
//!   acquisition, in the same atomic `findOneAndUpdate` that checks the lease is free,
//!   expired or already ours. Renewals never change it: a worker renews all its leases
//!   with one `updateMany` (see [`ClusterStore::renew_all`]).
//!
//! Expiry is judged on wall clocks (`expires_at` against the reader's `now`), so the
//! workers' clocks must agree to well within the lease safety margin; the holder's own
//! fence runs on its monotonic clock (see `cluster::Fence`).

use futures_util::TryStreamExt;
use mongodb::Collection;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::ReturnDocument;

use super::{MongoStore, is_duplicate_key};
use crate::store::Result;

/// A member of the cluster as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerRow {
    /// Worker id (`WAHA_WORKER_ID` or generated).
    pub id: String,
    /// Advertised base URL (`WHARF_ADVERTISE_URL`).
    pub url: String,
    /// Sessions it accepts (`WHARF_CLUSTER_CAPACITY`).
    pub capacity: u64,
    /// Sessions it ran at its last heartbeat.
    pub sessions: u64,
    /// Last heartbeat, Unix ms.
    pub heartbeat_at: i64,
}

/// One session's lease document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    /// Session name.
    pub session: String,
    /// Whether the session should run (started and not stopped by the user).
    pub desired: bool,
    /// The worker placement chose.
    pub target: Option<String>,
    /// The worker holding the lease (may have expired).
    pub owner: Option<String>,
    /// Fencing epoch of the last acquisition.
    pub epoch: i64,
    /// When the lease runs out, Unix ms.
    pub expires_at: i64,
}

/// Handle on the coordination collections.
#[derive(Clone)]
pub struct ClusterStore {
    store: MongoStore,
}

fn row(d: &Document) -> LeaseRow {
    let opt = |k: &str| d.get_str(k).ok().map(str::to_string);
    LeaseRow {
        session: d.get_str("_id").unwrap_or_default().to_string(),
        desired: d.get_bool("desired").unwrap_or(false),
        target: opt("target"),
        owner: opt("owner"),
        epoch: int(d, "epoch"),
        expires_at: int(d, "expires_at"),
    }
}

fn int(d: &Document, k: &str) -> i64 {
    match d.get(k) {
        Some(Bson::Int64(v)) => *v,
        Some(Bson::Int32(v)) => i64::from(*v),
        Some(Bson::Double(v)) => *v as i64,
        _ => 0,
    }
}

fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

impl ClusterStore {
    pub(crate) fn new(store: MongoStore) -> Self {
        Self { store }
    }

    fn workers(&self) -> Collection<Document> {
        self.store.main.collection("wharf_workers")
    }

    fn leases(&self) -> Collection<Document> {
        self.store.main.collection("wharf_leases")
    }

    /// Writes this worker's heartbeat (creating its document on the first beat).
    ///
    /// # Errors
    /// The database failed.
    pub async fn heartbeat(&self, w: &WorkerRow) -> Result<()> {
        self.workers()
            .update_one(
                doc! {"_id": &w.id},
                doc! {"$set": {
                    "url": &w.url,
                    "capacity": count(w.capacity),
                    "sessions": count(w.sessions),
                    "heartbeat_at": w.heartbeat_at,
                }},
            )
            .upsert(true)
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(())
    }

    /// Removes a worker's document (clean exit: others stop counting it at once).
    ///
    /// # Errors
    /// The database failed.
    pub async fn leave(&self, id: &str) -> Result<()> {
        self.workers()
            .delete_one(doc! {"_id": id})
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(())
    }

    /// Workers whose last heartbeat is newer than `since_ms`, by id.
    ///
    /// # Errors
    /// The database failed.
    pub async fn live_workers(&self, since_ms: i64) -> Result<Vec<WorkerRow>> {
        let mut cursor = self
            .workers()
            .find(doc! {"heartbeat_at": {"$gt": since_ms}})
            .sort(doc! {"_id": 1})
            .await
            .map_err(|e| self.store.err(&e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(|e| self.store.err(&e))? {
            out.push(WorkerRow {
                id: d.get_str("_id").unwrap_or_default().to_string(),
                url: d.get_str("url").unwrap_or_default().to_string(),
                capacity: u64::try_from(int(&d, "capacity")).unwrap_or(0),
                sessions: u64::try_from(int(&d, "sessions")).unwrap_or(0),
                heartbeat_at: int(&d, "heartbeat_at"),
            });
        }
        Ok(out)
    }

    /// Every lease document whose session should run.
    ///
    /// # Errors
    /// The database failed.
    pub async fn desired(&self) -> Result<Vec<LeaseRow>> {
        let mut cursor = self
            .leases()
            .find(doc! {"desired": true})
            .sort(doc! {"_id": 1})
            .await
            .map_err(|e| self.store.err(&e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(|e| self.store.err(&e))? {
            out.push(row(&d));
        }
        Ok(out)
    }

    /// One session's lease document, if any.
    ///
    /// # Errors
    /// The database failed.
    pub async fn get(&self, session: &str) -> Result<Option<LeaseRow>> {
        let d = self
            .leases()
            .find_one(doc! {"_id": session})
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(d.as_ref().map(row))
    }

    /// Marks `session` wanted on `target` (placement). When `only_if_target` is given the
    /// move happens only while the current target is still that one (a re-placement must
    /// not undo another worker's newer one); returns whether the document changed.
    ///
    /// # Errors
    /// The database failed.
    pub async fn place(
        &self,
        session: &str,
        target: &str,
        only_if_target: Option<Option<&str>>,
    ) -> Result<bool> {
        let mut filter = doc! {"_id": session};
        if let Some(prev) = only_if_target {
            filter.insert(
                "target",
                prev.map_or(Bson::Null, |p| Bson::String(p.into())),
            );
        }
        let res = self
            .leases()
            .update_one(
                filter,
                doc! {
                    "$set": {"desired": true, "target": target},
                    "$setOnInsert": {"owner": Bson::Null, "epoch": 0_i64, "expires_at": 0_i64},
                },
            )
            .upsert(only_if_target.is_none())
            .await;
        match res {
            Ok(r) => Ok(r.matched_count > 0 || r.upserted_id.is_some()),
            Err(e) if is_duplicate_key(&e) => Ok(false),
            Err(e) => Err(self.store.err(&e)),
        }
    }

    /// The user stopped `session`: it should run nowhere (the holder drops it on its next
    /// renewal, which finds `desired: false`).
    ///
    /// # Errors
    /// The database failed.
    pub async fn unwant(&self, session: &str) -> Result<()> {
        self.leases()
            .update_one(
                doc! {"_id": session},
                doc! {"$set": {"desired": false, "target": Bson::Null}},
            )
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(())
    }

    /// Forgets `session` (deleted).
    ///
    /// # Errors
    /// The database failed.
    pub async fn forget(&self, session: &str) -> Result<()> {
        self.leases()
            .delete_one(doc! {"_id": session})
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(())
    }

    /// Takes the lease of `session` for `me` until `now_ms + ttl_ms` if it is free, expired
    /// or already `me`'s, in one atomic `findOneAndUpdate` that also increments the epoch.
    /// Returns the new epoch, or `None` when someone else holds it.
    ///
    /// # Errors
    /// The database failed.
    pub async fn acquire(
        &self,
        session: &str,
        (me, run): (&str, &str),
        now_ms: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        let filter = doc! {
            "_id": session,
            "$or": [
                {"owner": Bson::Null},
                {"owner": me},
                {"expires_at": {"$lte": now_ms}},
            ],
        };
        let res = self
            .leases()
            .find_one_and_update(
                filter,
                doc! {
                    "$set": {"owner": me, "run": run, "expires_at": now_ms + ttl_ms},
                    "$inc": {"epoch": 1_i64},
                },
            )
            .return_document(ReturnDocument::After)
            .await;
        match res {
            Ok(Some(d)) => Ok(Some(int(&d, "epoch"))),
            Ok(None) => Ok(None),
            Err(e) if is_duplicate_key(&e) => Ok(None),
            Err(e) => Err(self.store.err(&e)),
        }
    }

    /// Extends every lease in `held` (session, epoch) that `me`'s process `run` still holds
    /// under that epoch, and whose session is still wanted, to `expires_at`, in ONE
    /// `updateMany`: the lease loop's round trips per tick do not grow with the sessions a
    /// worker runs. Returns how many matched; fewer than `held.len()` means some are gone
    /// (taken over, stopped, deleted), and [`Self::renewed`] says which.
    ///
    /// The filter names each lease with its epoch, so a lease this process dropped (its
    /// fence expired) but that still names it is not kept alive, and one that another
    /// worker took in between and this one re-acquired is renewed only under its new epoch.
    ///
    /// # Errors
    /// The database failed.
    pub async fn renew_all(
        &self,
        (me, run): (&str, &str),
        held: &[(&str, i64)],
        expires_at: i64,
    ) -> Result<u64> {
        if held.is_empty() {
            return Ok(0);
        }
        let each: Vec<Document> = held
            .iter()
            .map(|(session, epoch)| doc! {"_id": *session, "epoch": *epoch})
            .collect();
        let res = self
            .leases()
            .update_many(
                doc! {"owner": me, "run": run, "desired": true, "$or": each},
                doc! {"$set": {"expires_at": expires_at}},
            )
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(res.matched_count)
    }

    /// After a [`Self::renew_all`] that matched fewer than it was given: the (session,
    /// epoch) pairs among `sessions` that it did renew (still `me`'s process `run`'s, with
    /// the `expires_at` it wrote). One `find`.
    ///
    /// # Errors
    /// The database failed.
    pub async fn renewed(
        &self,
        (me, run): (&str, &str),
        sessions: &[&str],
        expires_at: i64,
    ) -> Result<Vec<(String, i64)>> {
        let mut cursor = self
            .leases()
            .find(doc! {
                "_id": {"$in": sessions},
                "owner": me,
                "run": run,
                "desired": true,
                "expires_at": expires_at,
            })
            .projection(doc! {"_id": 1, "epoch": 1})
            .await
            .map_err(|e| self.store.err(&e))?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(|e| self.store.err(&e))? {
            out.push((
                d.get_str("_id").unwrap_or_default().to_string(),
                int(&d, "epoch"),
            ));
        }
        Ok(out)
    }

    /// Gives the lease up (only `me`'s of `epoch`), so another worker may take it at once.
    ///
    /// # Errors
    /// The database failed.
    pub async fn release(&self, session: &str, me: &str, epoch: i64) -> Result<()> {
        self.leases()
            .update_one(
                doc! {"_id": session, "owner": me, "epoch": epoch},
                doc! {"$set": {"owner": Bson::Null, "expires_at": 0_i64}},
            )
            .await
            .map_err(|e| self.store.err(&e))?;
        Ok(())
    }
}
