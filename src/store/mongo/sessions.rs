//! The main store on MongoDB: WAHA's collections in `waha_{WAHA_NAMESPACE}`.
//!
//! Owns: WAHA's document shapes and indexes of the main database, and the lifetime of the
//! per-session databases `waha_{WAHA_SESSION_NAMESPACE}_{session}` (dropped with the
//! session, together with every index memo of it). Implements [`StoreBackend`] for
//! [`MongoStore`]; called through [`crate::store::Store`].
//!
//! Collections and document shapes are WAHA's (`../shared/reference/waha.md` §7.3), so a
//! WAHA Mongo deployment is picked up as is:
//! * `sessions`: `{...SessionConfig, name}`, written like WAHA's
//!   `MongoSessionConfigRepository` (`replaceOne({name}, {...config, name}, {upsert})`);
//!   a document holding only `name` is a session without config. Consequence of the flat
//!   shape (WAHA has it too): `Some(SessionConfig::default())`, an empty config, is stored
//!   as that same document and reads back as `None` (SQLite keeps the two apart);
//! * `me`: `{session, me}`;
//! * `session_worker`: `{id, worker}`;
//! * `api_key`: indexes (unique `id`, unique `key`, `session`); documents in `keys.rs`.

use futures_util::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::options::IndexOptions;
use mongodb::{Collection, IndexModel};

use super::{INDEX_CONFLICTS, MongoStore, PING_TIMEOUT, command_code, is_duplicate_key};
use crate::model::name::{self, SessionName};
use crate::model::session::{MeInfo, SessionConfig};
use crate::store::{Error, Result, SessionRecord, StoreBackend};

impl MongoStore {
    fn sessions(&self) -> Collection<Document> {
        self.main.collection("sessions")
    }

    fn me(&self) -> Collection<Document> {
        self.main.collection("me")
    }

    fn workers(&self) -> Collection<Document> {
        self.main.collection("session_worker")
    }

    pub(super) fn api_keys(&self) -> Collection<Document> {
        self.main.collection("api_key")
    }

    /// `wharf_deleting`: one `{name}` document per session whose delete has begun and not
    /// finished (wharf's own collection; WAHA ignores it). See [`Self::finish_delete`].
    fn deleting(&self) -> Collection<Document> {
        self.main.collection("wharf_deleting")
    }

    /// The second half of a delete: drops the per-session database, then the tombstone.
    /// Runs after a delete's rows are gone, before a session of the same name is created,
    /// and at start-up for every tombstone a crash left — so a new session never inherits
    /// the device keys of a deleted one.
    async fn finish_delete(&self, session: &SessionName) -> Result<()> {
        let res = self.session_db(session).drop().await;
        self.forget(session);
        res.map_err(|e| self.err(&e))?;
        self.deleting()
            .delete_one(doc! { "name": session.as_str() })
            .await
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    /// Finishes every delete a crash interrupted (at start-up).
    pub(super) async fn sweep_deletes(&self) -> Result<()> {
        let docs: Vec<Document> = self
            .deleting()
            .find(doc! {})
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        for d in docs {
            let Ok(raw) = d.get_str("name") else { continue };
            let Ok(session) = self.name(raw) else {
                continue;
            };
            tracing::warn!(session = raw, "finishing a delete interrupted by a crash");
            self.delete_rows(raw).await.map_err(|e| self.err(&e))?;
            self.finish_delete(&session).await?;
        }
        Ok(())
    }

    /// The session's documents in the main database (config, `me`, worker, api keys).
    async fn delete_rows(&self, name: &str) -> mongodb::error::Result<()> {
        self.sessions().delete_one(doc! { "name": name }).await?;
        self.me().delete_one(doc! { "session": name }).await?;
        self.workers().delete_one(doc! { "id": name }).await?;
        // Cluster mode's lease (`cluster.rs`); absent otherwise.
        self.main
            .collection::<Document>("wharf_leases")
            .delete_one(doc! { "_id": name })
            .await?;
        self.api_keys()
            .delete_many(doc! { "session": name })
            .await?;
        Ok(())
    }

    /// WAHA's indexes. `unique name` on `sessions` is what makes `insert_session` atomic.
    pub(super) async fn create_indexes(&self) -> Result<()> {
        let unique = |keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(true).build())
                .build()
        };
        let plain = |keys: Document| IndexModel::builder().keys(keys).build();
        // One `createIndexes` per collection (4 round trips at boot instead of 7); only
        // when one conflicts with an index someone else made are they sent one by one,
        // keeping (and logging) the conflicting one.
        let wanted = [
            (self.sessions(), vec![unique(doc! { "name": 1 })]),
            (self.me(), vec![unique(doc! { "session": 1 })]),
            (
                self.workers(),
                vec![unique(doc! { "id": 1 }), plain(doc! { "worker": 1 })],
            ),
            (
                self.api_keys(),
                vec![
                    unique(doc! { "id": 1 }),
                    unique(doc! { "key": 1 }),
                    plain(doc! { "session": 1 }),
                ],
            ),
        ];
        for (coll, models) in wanted {
            match coll.create_indexes(models.clone()).await {
                Ok(_) => continue,
                Err(e) if INDEX_CONFLICTS.iter().any(|c| command_code(&e) == Some(*c)) => {}
                Err(e) => return Err(self.redactor.error(&e)),
            }
            for model in models {
                let keys = model.keys.clone();
                match coll.create_index(model).await {
                    Ok(_) => {}
                    Err(e) if INDEX_CONFLICTS.iter().any(|c| command_code(&e) == Some(*c)) => {
                        tracing::warn!(
                            collection = coll.name(),
                            ?keys,
                            error = %self.redactor.apply(&e.to_string()),
                            "mongodb: keeping an existing, different index"
                        );
                    }
                    Err(e) => return Err(self.redactor.error(&e)),
                }
            }
        }
        Ok(())
    }

    /// `raw` as a [`SessionName`]: usable inside `waha_{ns}_{name}` (MongoDB forbids
    /// `/\. "$*<>:|?` and NUL there, and names of 64 bytes or more). Guards the calls that
    /// create or drop per-session data.
    fn name(&self, raw: &str) -> Result<SessionName> {
        SessionName::parse(raw, name::max_len(Some(&self.ns.session)))
            .map_err(|_| Error::Backend(format!("invalid session name {raw:?}")))
    }
}

/// `sessions` document → record: WAHA reads it with `_id` and `name` projected away; what
/// is left is the config, and nothing left means "no config".
fn decode_session(mut d: Document) -> Result<SessionRecord> {
    let name = match d.remove("name") {
        Some(Bson::String(name)) => name,
        other => {
            return Err(Error::Corrupt(format!(
                "sessions document without a string name: {other:?}"
            )));
        }
    };
    d.remove("_id");
    let config = if d.is_empty() {
        None
    } else {
        Some(
            bson::from_document::<SessionConfig>(d)
                .map_err(|e| Error::Corrupt(format!("sessions {name:?}: {e}")))?,
        )
    };
    Ok(SessionRecord { name, config })
}

/// Record → `sessions` document `{...config, name}` (WAHA's spread order: name last).
fn encode_session(record: &SessionRecord) -> Result<Document> {
    let mut d = match &record.config {
        Some(config) => bson::to_document(config).map_err(|e| {
            Error::Backend(format!("cannot encode config of {:?}: {e}", record.name))
        })?,
        None => Document::new(),
    };
    // A config can never carry its own `name` (no such field), but make sure the key is ours.
    d.remove("name");
    d.insert("name", record.name.as_str());
    Ok(d)
}

impl StoreBackend for MongoStore {
    async fn ping(&self) -> Result<()> {
        match tokio::time::timeout(PING_TIMEOUT, self.main.run_command(doc! { "ping": 1 })).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.err(&e)),
            Err(_) => Err(Error::Unavailable(format!(
                "mongodb did not answer ping within {PING_TIMEOUT:?}"
            ))),
        }
    }

    async fn list_sessions(&self) -> Result<Vec<SessionRecord>> {
        let docs: Vec<Document> = self
            .sessions()
            .find(doc! {})
            .sort(doc! { "name": 1 })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = docs
            .into_iter()
            .map(decode_session)
            .collect::<Result<Vec<_>>>()?;
        // Same byte order as SQLite's `ORDER BY id` whatever the server's collation.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>> {
        self.sessions()
            .find_one(doc! { "name": name })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode_session)
            .transpose()
    }

    async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        let session = self.name(&record.name)?;
        let d = encode_session(record)?;
        // A delete of this name a crash left half-done: its database goes first.
        if self
            .deleting()
            .find_one(doc! { "name": &record.name })
            .await
            .map_err(|e| self.err(&e))?
            .is_some()
        {
            self.finish_delete(&session).await?;
        }
        // Atomic through the unique `name` index: the loser of a race gets E11000.
        match self.sessions().insert_one(d).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(Error::AlreadyExists(record.name.clone())),
            Err(e) => Err(self.err(&e)),
        }
    }

    async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        self.name(&record.name)?;
        let d = encode_session(record)?;
        self.replace_upsert(&self.sessions(), doc! { "name": &record.name }, d)
            .await
    }

    async fn delete_session(&self, name: &str) -> Result<()> {
        let session = self.name(name)?;
        // Tombstone first: a crash at any later point is finished at start-up (or by the
        // next create of this name) instead of leaving device keys for a namesake.
        self.deleting()
            .update_one(doc! { "name": name }, doc! { "$set": { "name": name } })
            .upsert(true)
            .await
            .map_err(|e| self.err(&e))?;
        self.delete_rows(name).await.map_err(|e| self.err(&e))?;
        // Dropping a database that does not exist is a no-op: delete stays idempotent.
        self.finish_delete(&session).await
    }

    async fn get_me(&self, name: &str) -> Result<Option<MeInfo>> {
        let Some(mut d) = self
            .me()
            .find_one(doc! { "session": name })
            .await
            .map_err(|e| self.err(&e))?
        else {
            return Ok(None);
        };
        match d.remove("me") {
            None | Some(Bson::Null) => Ok(None),
            Some(me) => bson::from_bson::<MeInfo>(me)
                .map(Some)
                .map_err(|e| Error::Corrupt(format!("me {name:?}: {e}"))),
        }
    }

    async fn list_me(&self) -> Result<std::collections::HashMap<String, MeInfo>> {
        let docs: Vec<Document> = self
            .me()
            .find(doc! {})
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = std::collections::HashMap::with_capacity(docs.len());
        for mut d in docs {
            let Ok(name) = d.get_str("session").map(str::to_owned) else {
                continue;
            };
            match d.remove("me") {
                None | Some(Bson::Null) => {}
                Some(me) => {
                    let me = bson::from_bson::<MeInfo>(me)
                        .map_err(|e| Error::Corrupt(format!("me {name:?}: {e}")))?;
                    out.insert(name, me);
                }
            }
        }
        Ok(out)
    }

    async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()> {
        match me {
            Some(me) => {
                let me = bson::to_bson(me)
                    .map_err(|e| Error::Backend(format!("cannot encode me of {name:?}: {e}")))?;
                let d = doc! { "session": name, "me": me };
                self.replace_upsert(&self.me(), doc! { "session": name }, d)
                    .await
            }
            // Like the SQL backends: logout removes the document.
            None => self
                .me()
                .delete_one(doc! { "session": name })
                .await
                .map(drop)
                .map_err(|e| self.err(&e)),
        }
    }

    async fn assign_worker(&self, name: &str, worker: &str) -> Result<()> {
        let d = doc! { "id": name, "worker": worker };
        self.replace_upsert(&self.workers(), doc! { "id": name }, d)
            .await
    }

    async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()> {
        self.workers()
            .delete_one(doc! { "id": name, "worker": worker })
            .await
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>> {
        let docs: Vec<Document> = self
            .workers()
            .find(doc! { "worker": worker })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = docs
            .into_iter()
            .map(|d| match d.get("id") {
                Some(Bson::String(id)) => Ok(id.clone()),
                other => Err(Error::Corrupt(format!(
                    "session_worker document without a string id: {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    async fn drop_session_data(&self, name: &str) -> Result<()> {
        let session = self.name(name)?;
        let res = self.session_db(&session).drop().await;
        self.forget(&session);
        res.map_err(|e| self.err(&e))
    }

    async fn orphans(&self) -> Result<Vec<String>> {
        let prefix = self.ns.session_db("");
        let dbs = self
            .client
            .list_database_names()
            .await
            .map_err(|e| self.err(&e))?;
        let candidates: Vec<String> = dbs
            .into_iter()
            .filter_map(|db| db.strip_prefix(&prefix).map(str::to_owned))
            .filter(|n| !n.is_empty())
            .collect();
        if candidates.is_empty() {
            return Ok(Vec::new());
        }
        let mut known = std::collections::HashSet::new();
        for (coll, field) in [(self.sessions(), "name"), (self.deleting(), "name")] {
            let docs: Vec<Document> = coll
                .find(doc! { field: { "$in": &candidates } })
                .await
                .map_err(|e| self.err(&e))?
                .try_collect()
                .await
                .map_err(|e| self.err(&e))?;
            known.extend(
                docs.iter()
                    .filter_map(|d| d.get_str(field).ok().map(str::to_owned)),
            );
        }
        let mut out: Vec<String> = candidates
            .into_iter()
            .filter(|n| !known.contains(n))
            .collect();
        out.sort();
        Ok(out)
    }

    async fn wipe_credentials(&self, name: &str) -> Result<()> {
        let db = self.session_db(&self.name(name)?);
        let names = db.list_collection_names().await.map_err(|e| self.err(&e))?;
        // `wa_*` collections are the engine's key store (engine::mongo_store).
        for coll in names.into_iter().filter(|n| n.starts_with("wa_")) {
            db.collection::<mongodb::bson::Document>(&coll)
                .drop()
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
    }
}
