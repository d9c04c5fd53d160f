//! whatsapp-rust's device and crypto storage on MongoDB: one session's keys, Signal
//! sessions, app-state sync state and protocol caches.
//!
//! Owns: the `wa_*` collections of one session's own database
//! (`waha_{session_namespace}_{session}`), their unique indexes and every document in
//! them. One database holds exactly one device, so no key carries a device id; nothing
//! stored for one session is reachable from another session's store.
//!
//! Called by: the engine, which builds a [`MongoDeviceStore`] with [`MongoDeviceStore::open`]
//! from the process's shared `mongodb::Client` (never a client of its own) and hands it to
//! whatsapp-rust as its `Backend`. Lives as long as that session's client; clones share the
//! database handle. Wiping a session (logout) is dropping its database, done by the caller.
//!
//! Layout (single-column SQLite primary keys are the `_id`; compound ones get a named
//! unique index; byte blobs are BSON Binary; `u32` ids and `u64` versions are Int64):
//!
//! | Collection | Key | Payload |
//! |---|---|---|
//! | `wa_device` | `_id: "device"` | `data`: the `Device` serde JSON as Binary |
//! | `wa_identities`, `wa_sessions`, `wa_sender_keys` | `_id`: address | `key` / `record` |
//! | `wa_prekeys` | `_id`: id | `key`, `uploaded` |
//! | `wa_signed_prekeys` | `_id`: id | `record` |
//! | `wa_app_state_keys` | `_id`: key id (Binary) | `key_data`, `fingerprint`, `timestamp` |
//! | `wa_app_state_versions` | `_id`: collection name | `HashState` fields |
//! | `wa_app_state_mutation_macs` | unique (`name`, `index_mac`) | `version`, `value_mac` |
//! | `wa_sender_key_devices` | unique (`group_jid`, `device_jid`) | `has_key`, `updated_at` |
//! | `wa_lid_pn_mapping` | `_id`: lid | `phone_number`, timestamps, `learning_source` |
//! | `wa_base_keys` | unique (`address`, `message_id`) | `base_key`, `created_at` |
//! | `wa_device_registry` | `_id`: user | `devices`, `timestamp`, `phash`, `raw_id` |
//! | `wa_group_metadata` | `_id`: group jid | `info` |
//! | `wa_tc_tokens` | `_id`: jid | `token`, `token_timestamp`, `sender_timestamp` |
//! | `wa_sent_messages` | unique (`chat_jid`, `message_id`) | `payload`, `created_at` |
//! | `wa_pending_inbound` | unique (`chat`, `sender`, `id`) | `message`, `inserted_at` |
//! | `wa_msg_secrets` | unique (`chat`, `sender`, `msg_id`) | `secret`, `expires_at`, `message_ts` |
//!
//! Durability: the protocol assumes a write is durable once the call returns (a ratchet
//! step must be on disk before its ciphertext goes out), so every write is acknowledged
//! and asks for the journal (`j: true`) on top of the server's default `w`. Batches go out
//! as one `update` command per chunk (all MongoDB versions; `Client::bulk_write` would need
//! 8.0). Read-modify-write semantics the protocol relies on are single atomic server
//! operations: `findOneAndDelete` for taking a sent message, `$max` for the tc-token sender
//! bucket and the msg-secret merge, a filtered update for newer-wins tokens.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use mongodb::bson::{self, Binary, Bson, Document, doc, spec::BinarySubtype};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{Acknowledgment, DatabaseOptions, IndexOptions};
use mongodb::{Collection, Database, IndexModel};
use whatsapp_rust::async_trait;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::device::DEVICE_PROPS;
use whatsapp_rust::wacore::store::error::{Result, StoreError};
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, AppSyncStore, DeviceInfo, DeviceListRecord, DeviceStore, LidPnMappingEntry,
    MsgSecretEntry, MsgSecretStore, PendingInboundKey, PendingInboundRow, ProtocolStore,
    SignalStore, TcTokenEntry,
};

/// The device document (one per database).
const DEVICE: &str = "wa_device";
const IDENTITIES: &str = "wa_identities";
const SESSIONS: &str = "wa_sessions";
const PREKEYS: &str = "wa_prekeys";
const SIGNED_PREKEYS: &str = "wa_signed_prekeys";
const SENDER_KEYS: &str = "wa_sender_keys";
const APP_STATE_KEYS: &str = "wa_app_state_keys";
const APP_STATE_VERSIONS: &str = "wa_app_state_versions";
const MUTATION_MACS: &str = "wa_app_state_mutation_macs";
const SENDER_KEY_DEVICES: &str = "wa_sender_key_devices";
const LID_PN_MAPPING: &str = "wa_lid_pn_mapping";
const BASE_KEYS: &str = "wa_base_keys";
const DEVICE_REGISTRY: &str = "wa_device_registry";
const GROUP_METADATA: &str = "wa_group_metadata";
const TC_TOKENS: &str = "wa_tc_tokens";
const SENT_MESSAGES: &str = "wa_sent_messages";
const PENDING_INBOUND: &str = "wa_pending_inbound";
const MSG_SECRETS: &str = "wa_msg_secrets";

/// `_id` of the single document in [`DEVICE`].
const DEVICE_ID: &str = "device";

/// What [`DeviceStore::create`] returns: one device per database, so the id is constant
/// (the SQLite store's default device id is 1 too).
const DEVICE_ROW_ID: i32 = 1;

/// Version of the `data` encoding in [`DEVICE`]; bumped if it ever changes.
const DEVICE_FORMAT: i32 = 1;

/// MongoDB's duplicate-key error code (E11000).
const DUPLICATE_KEY: i32 = 11000;

/// Two concurrent upserts of a new key can both miss and insert; the unique index fails
/// one with E11000. Servers since 4.2 retry that internally, older ones (and substitutes)
/// may not, so the loser is retried here; the retry finds the document and updates it.
const DUPLICATE_KEY_RETRIES: usize = 3;

/// Rounds of conditional update / insert in `store_received_tc_token`; more than one
/// only while other writers of the same row race it.
const TC_TOKEN_ATTEMPTS: usize = 8;

/// Upper bound of operations in one `update`/`delete` command (the server allows 100 000).
const BATCH_MAX_OPS: usize = 1000;

/// Upper bound of one command's encoded operations: well under the 16 MiB BSON limit of a
/// command document, leaving room for the envelope.
const BATCH_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Upper bound of values in one `$in` list (keeps a filter far below 16 MiB).
const IN_CHUNK: usize = 5000;

/// `expires_at` of a msg secret that never expires (`0` in the API). Stored as the largest
/// value so that `$max` implements `merge_msg_secret_expiry` ("never" wins, otherwise the
/// later deadline) in one atomic update.
const MSG_SECRET_NEVER: i64 = i64::MAX;

/// whatsapp-rust's storage backend for one session, on that session's MongoDB database.
///
/// Cheap to clone (a database handle). Build it with [`MongoDeviceStore::open`].
#[derive(Clone, Debug)]
pub struct MongoDeviceStore {
    /// The session's database, with the journaled write concern applied.
    db: Database,
    /// The same write concern as a document, for the raw batch commands (which do not
    /// inherit the handle's).
    write_concern: Document,
}

impl MongoDeviceStore {
    /// Takes over the session's database `db` (a handle from the process's one client) and
    /// creates the unique indexes of every collection; idempotent, so it runs on every start.
    ///
    /// Writes through the returned store are acknowledged and journaled (`j: true`) on top
    /// of `db`'s own write concern (the server default `w` when it has none; `w: 0` is
    /// raised to the server default because the protocol needs acknowledged writes).
    ///
    /// # Errors
    /// [`StoreError::Connection`] when the server cannot be reached,
    /// [`StoreError::Migration`] when an index cannot be created (e.g. a conflicting index
    /// of the same name already exists).
    pub async fn open(db: Database) -> Result<Self> {
        let mut wc = db.write_concern().cloned().unwrap_or_default();
        if matches!(wc.w, Some(Acknowledgment::Nodes(0))) {
            wc.w = None;
        }
        wc.journal = Some(true);
        let write_concern = bson::to_document(&wc).map_err(ser_err)?;
        let options = DatabaseOptions::builder()
            .selection_criteria(db.selection_criteria().cloned())
            .read_concern(db.read_concern().cloned())
            .write_concern(wc)
            .build();
        // Same client, same pool: only the handle's defaults change.
        let db = db.client().database_with_options(db.name(), options);
        let store = Self { db, write_concern };
        store.create_indexes().await?;
        Ok(store)
    }

    /// The session database this store writes to.
    pub fn database(&self) -> &Database {
        &self.db
    }

    async fn create_indexes(&self) -> Result<()> {
        let unique = |name: &str, keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(
                    IndexOptions::builder()
                        .name(name.to_owned())
                        .unique(true)
                        .build(),
                )
                .build()
        };
        let plain = |name: &str, keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().name(name.to_owned()).build())
                .build()
        };
        let indexes: [(&str, Vec<IndexModel>); 6] = [
            (
                MUTATION_MACS,
                vec![unique("name_index_mac", doc! {"name": 1, "index_mac": 1})],
            ),
            (
                SENDER_KEY_DEVICES,
                vec![
                    unique(
                        "group_jid_device_jid",
                        doc! {"group_jid": 1, "device_jid": 1},
                    ),
                    // delete_sender_key_device_rows deletes by device across all groups.
                    plain("device_jid", doc! {"device_jid": 1}),
                ],
            ),
            (
                LID_PN_MAPPING,
                // get_pn_mapping: newest mapping of a phone number.
                vec![plain(
                    "phone_number_updated_at",
                    doc! {"phone_number": 1, "updated_at": -1},
                )],
            ),
            (
                BASE_KEYS,
                vec![unique(
                    "address_message_id",
                    doc! {"address": 1, "message_id": 1},
                )],
            ),
            (
                SENT_MESSAGES,
                vec![
                    unique("chat_jid_message_id", doc! {"chat_jid": 1, "message_id": 1}),
                    plain("created_at", doc! {"created_at": 1}),
                ],
            ),
            (
                MSG_SECRETS,
                vec![
                    unique(
                        "chat_sender_msg_id",
                        doc! {"chat": 1, "sender": 1, "msg_id": 1},
                    ),
                    plain("expires_at", doc! {"expires_at": 1}),
                ],
            ),
        ];
        for (coll, models) in indexes {
            self.coll(coll)
                .create_indexes(models)
                .await
                .map_err(index_err)?;
        }
        self.coll(PENDING_INBOUND)
            .create_indexes([
                unique("chat_sender_id", doc! {"chat": 1, "sender": 1, "id": 1}),
                plain("inserted_at", doc! {"inserted_at": 1}),
            ])
            .await
            .map_err(index_err)?;
        Ok(())
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    /// `updateOne(filter, update, {upsert: true})`, retried on a lost insert race.
    async fn upsert(&self, coll: &str, filter: Document, update: Document) -> Result<()> {
        let coll = self.coll(coll);
        let mut attempt = 0;
        loop {
            match coll
                .update_one(filter.clone(), update.clone())
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < DUPLICATE_KEY_RETRIES && is_duplicate_key(&e) => attempt += 1,
                Err(e) => return Err(db_err(e)),
            }
        }
    }

    /// `replaceOne(filter, replacement, {upsert: true})`, retried on a lost insert race.
    async fn replace(&self, coll: &str, filter: Document, replacement: Document) -> Result<()> {
        let coll = self.coll(coll);
        let mut attempt = 0;
        loop {
            match coll
                .replace_one(filter.clone(), &replacement)
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if attempt < DUPLICATE_KEY_RETRIES && is_duplicate_key(&e) => attempt += 1,
                Err(e) => return Err(db_err(e)),
            }
        }
    }

    /// Runs `updates` (`{q, u, upsert}` statements) as ordered `update` commands of at most
    /// [`BATCH_MAX_OPS`] statements / [`BATCH_MAX_BYTES`] each: one round trip per chunk
    /// instead of one per row. A statement that loses an insert race (E11000) is resumed
    /// from; everything before it was applied.
    async fn bulk_update(&self, coll: &str, updates: Vec<Document>) -> Result<()> {
        let mut chunk: Vec<Bson> = Vec::new();
        let mut chunk_bytes = 0;
        for statement in updates {
            let size = encoded_len(&statement)?;
            if !chunk.is_empty()
                && (chunk.len() >= BATCH_MAX_OPS || chunk_bytes + size > BATCH_MAX_BYTES)
            {
                self.run_update_chunk(coll, std::mem::take(&mut chunk))
                    .await?;
                chunk_bytes = 0;
            }
            chunk_bytes += size;
            chunk.push(Bson::Document(statement));
        }
        if !chunk.is_empty() {
            self.run_update_chunk(coll, chunk).await?;
        }
        Ok(())
    }

    async fn run_update_chunk(&self, coll: &str, mut statements: Vec<Bson>) -> Result<()> {
        let mut attempt = 0;
        loop {
            let reply = self
                .db
                .run_command(doc! {
                    "update": coll,
                    "updates": statements.clone(),
                    "ordered": true,
                    "writeConcern": self.write_concern.clone(),
                })
                .await
                .map_err(db_err)?;
            match first_write_error(&reply)? {
                None => return Ok(()),
                Some((index, code)) if code == DUPLICATE_KEY && attempt < DUPLICATE_KEY_RETRIES => {
                    attempt += 1;
                    // Ordered: statements before `index` are applied; redo the rest.
                    let index = index.min(statements.len());
                    statements.drain(..index);
                }
                Some((index, code)) => {
                    return Err(StoreError::Database(
                        format!("{coll}: batch statement {index} failed with code {code}: {reply}")
                            .into(),
                    ));
                }
            }
        }
    }

    /// `deleteMany({field: {$in: values}})` in chunks of [`IN_CHUNK`].
    async fn delete_in(
        &self,
        coll: &str,
        base: Document,
        field: &str,
        values: Vec<Bson>,
    ) -> Result<()> {
        let coll = self.coll(coll);
        for chunk in values.chunks(IN_CHUNK) {
            let mut filter = base.clone();
            filter.insert(field, doc! {"$in": chunk.to_vec()});
            coll.delete_many(filter).await.map_err(db_err)?;
        }
        Ok(())
    }

    async fn find_one(&self, coll: &str, filter: Document) -> Result<Option<Document>> {
        self.coll(coll).find_one(filter).await.map_err(db_err)
    }

    async fn find_all(
        &self,
        coll: &str,
        filter: Document,
        sort: Option<Document>,
    ) -> Result<Vec<Document>> {
        let mut cursor = self
            .coll(coll)
            .find(filter)
            .sort(sort.unwrap_or_default())
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(db_err)? {
            out.push(d);
        }
        Ok(out)
    }

    async fn exists_one(&self, coll: &str, filter: Document) -> Result<bool> {
        Ok(self
            .coll(coll)
            .find_one(filter)
            .projection(doc! {"_id": 1})
            .await
            .map_err(db_err)?
            .is_some())
    }

    async fn delete_one(&self, coll: &str, filter: Document) -> Result<()> {
        self.coll(coll).delete_one(filter).await.map_err(db_err)?;
        Ok(())
    }

    async fn delete_many(&self, coll: &str, filter: Document) -> Result<u32> {
        let res = self.coll(coll).delete_many(filter).await.map_err(db_err)?;
        Ok(u32::try_from(res.deleted_count).unwrap_or(u32::MAX))
    }

    /// The blob stored under `_id` in `coll` (field `field`).
    async fn get_blob(&self, coll: &str, id: Bson, field: &str) -> Result<Option<Vec<u8>>> {
        match self.find_one(coll, doc! {"_id": id}).await? {
            Some(d) => Ok(Some(get_bin(&d, field)?)),
            None => Ok(None),
        }
    }

    async fn put_blob(&self, coll: &str, id: Bson, field: &str, value: &[u8]) -> Result<()> {
        self.upsert(coll, doc! {"_id": id}, doc! {"$set": {field: bin(value)}})
            .await
    }

    /// One upsert statement per `(id, blob)`, sent as a batch.
    async fn put_blobs<'a>(
        &self,
        coll: &str,
        field: &str,
        rows: impl Iterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<()> {
        let statements = rows
            .map(|(id, value)| {
                upsert_statement(doc! {"_id": id}, doc! {"$set": {field: bin(value)}})
            })
            .collect();
        self.bulk_update(coll, statements).await
    }
}

// ---------------------------------------------------------------------------
// SignalStore
// ---------------------------------------------------------------------------

#[async_trait]
impl SignalStore for MongoDeviceStore {
    async fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()> {
        self.put_blob(IDENTITIES, address.into(), "key", &key).await
    }

    async fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()> {
        self.put_blobs(
            IDENTITIES,
            "key",
            identities.iter().map(|(a, k)| (a.as_ref(), k.as_slice())),
        )
        .await
    }

    async fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>> {
        match self.get_blob(IDENTITIES, address.into(), "key").await? {
            Some(key) => {
                let len = key.len();
                let key: [u8; 32] = key.try_into().map_err(|_| {
                    StoreError::Validation(format!(
                        "identity key of {address}: {len} bytes, not 32"
                    ))
                })?;
                Ok(Some(key))
            }
            None => Ok(None),
        }
    }

    async fn delete_identity(&self, address: &str) -> Result<()> {
        self.delete_one(IDENTITIES, doc! {"_id": address}).await
    }

    async fn get_session(&self, address: &str) -> Result<Option<Bytes>> {
        Ok(self
            .get_blob(SESSIONS, address.into(), "record")
            .await?
            .map(Bytes::from))
    }

    async fn put_session(&self, address: &str, session: &[u8]) -> Result<()> {
        self.put_blob(SESSIONS, address.into(), "record", session)
            .await
    }

    async fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_blobs(
            SESSIONS,
            "record",
            sessions.iter().map(|(a, s)| (a.as_ref(), s.as_ref())),
        )
        .await
    }

    async fn delete_session(&self, address: &str) -> Result<()> {
        self.delete_one(SESSIONS, doc! {"_id": address}).await
    }

    async fn has_session(&self, address: &str) -> Result<bool> {
        self.exists_one(SESSIONS, doc! {"_id": address}).await
    }

    async fn has_signal_state_for_user(&self, user: &str) -> Result<bool> {
        // Addresses are `user@server` (device 0) or `user:device@server`; an anchored
        // prefix regex is served by the `_id` index.
        let filter = doc! {"_id": {"$regex": format!("^{}[@:]", regex_escape(user))}};
        if self.exists_one(SESSIONS, filter.clone()).await? {
            return Ok(true);
        }
        self.exists_one(IDENTITIES, filter).await
    }

    async fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()> {
        self.upsert(
            PREKEYS,
            doc! {"_id": i64::from(id)},
            doc! {"$set": {"key": bin(record), "uploaded": uploaded}},
        )
        .await
    }

    async fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()> {
        let statements = keys
            .iter()
            .map(|(id, record)| {
                upsert_statement(
                    doc! {"_id": i64::from(*id)},
                    doc! {"$set": {"key": bin(record), "uploaded": uploaded}},
                )
            })
            .collect();
        self.bulk_update(PREKEYS, statements).await
    }

    async fn load_prekey(&self, id: u32) -> Result<Option<Bytes>> {
        Ok(self
            .get_blob(PREKEYS, i64::from(id).into(), "key")
            .await?
            .map(Bytes::from))
    }

    async fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>> {
        let mut found: HashMap<u32, Bytes> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(IN_CHUNK) {
            let wanted: Vec<i64> = chunk.iter().map(|&id| i64::from(id)).collect();
            for d in self
                .find_all(PREKEYS, doc! {"_id": {"$in": wanted}}, None)
                .await?
            {
                let id = u32::try_from(get_i64(&d, "_id")?)
                    .map_err(|e| StoreError::Validation(format!("prekey id: {e}")))?;
                found.insert(id, Bytes::from(get_bin(&d, "key")?));
            }
        }
        // The caller's order, each id once, only the ones that exist.
        Ok(ids
            .iter()
            .filter_map(|id| found.remove(id).map(|record| (*id, record)))
            .collect())
    }

    async fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()> {
        // updateMany without upsert: a key consumed between the upload snapshot and this
        // call stays deleted.
        let coll = self.coll(PREKEYS);
        for chunk in ids.chunks(IN_CHUNK) {
            let wanted: Vec<i64> = chunk.iter().map(|&id| i64::from(id)).collect();
            coll.update_many(
                doc! {"_id": {"$in": wanted}},
                doc! {"$set": {"uploaded": true}},
            )
            .await
            .map_err(db_err)?;
        }
        Ok(())
    }

    async fn remove_prekey(&self, id: u32) -> Result<()> {
        self.delete_one(PREKEYS, doc! {"_id": i64::from(id)}).await
    }

    async fn get_max_prekey_id(&self) -> Result<u32> {
        let top = self
            .coll(PREKEYS)
            .find_one(doc! {})
            .sort(doc! {"_id": -1})
            .projection(doc! {"_id": 1})
            .await
            .map_err(db_err)?;
        match top {
            Some(d) => u32::try_from(get_i64(&d, "_id")?)
                .map_err(|e| StoreError::Validation(format!("prekey id: {e}"))),
            None => Ok(0),
        }
    }

    async fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()> {
        self.put_blob(SIGNED_PREKEYS, i64::from(id).into(), "record", record)
            .await
    }

    async fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>> {
        self.get_blob(SIGNED_PREKEYS, i64::from(id).into(), "record")
            .await
    }

    async fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>> {
        self.find_all(SIGNED_PREKEYS, doc! {}, Some(doc! {"_id": 1}))
            .await?
            .iter()
            .map(|d| {
                let id = u32::try_from(get_i64(d, "_id")?)
                    .map_err(|e| StoreError::Validation(format!("signed prekey id: {e}")))?;
                Ok((id, get_bin(d, "record")?))
            })
            .collect()
    }

    async fn remove_signed_prekey(&self, id: u32) -> Result<()> {
        self.delete_one(SIGNED_PREKEYS, doc! {"_id": i64::from(id)})
            .await
    }

    async fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()> {
        self.put_blob(SENDER_KEYS, address.into(), "record", record)
            .await
    }

    async fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()> {
        self.put_blobs(
            SENDER_KEYS,
            "record",
            sender_keys.iter().map(|(a, r)| (a.as_ref(), r.as_ref())),
        )
        .await
    }

    async fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>> {
        self.get_blob(SENDER_KEYS, address.into(), "record").await
    }

    async fn delete_sender_key(&self, address: &str) -> Result<()> {
        self.delete_one(SENDER_KEYS, doc! {"_id": address}).await
    }
}

// ---------------------------------------------------------------------------
// AppSyncStore
// ---------------------------------------------------------------------------

#[async_trait]
impl AppSyncStore for MongoDeviceStore {
    async fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>> {
        match self
            .find_one(APP_STATE_KEYS, doc! {"_id": bin(key_id)})
            .await?
        {
            Some(d) => Ok(Some(AppStateSyncKey {
                key_data: get_bin(&d, "key_data")?,
                fingerprint: get_bin(&d, "fingerprint")?,
                timestamp: get_i64(&d, "timestamp")?,
            })),
            None => Ok(None),
        }
    }

    async fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()> {
        self.upsert(
            APP_STATE_KEYS,
            doc! {"_id": bin(key_id)},
            doc! {"$set": {
                "key_data": bin(&key.key_data),
                "fingerprint": bin(&key.fingerprint),
                "timestamp": key.timestamp,
            }},
        )
        .await
    }

    async fn get_version(&self, name: &str) -> Result<HashState> {
        match self
            .find_one(APP_STATE_VERSIONS, doc! {"_id": name})
            .await?
        {
            Some(d) => decode_hash_state(&d),
            None => Ok(HashState::default()),
        }
    }

    async fn set_version(&self, name: &str, state: HashState) -> Result<()> {
        let mut replacement = encode_hash_state(&state)?;
        replacement.insert("_id", name);
        self.replace(APP_STATE_VERSIONS, doc! {"_id": name}, replacement)
            .await
    }

    async fn put_mutation_macs(
        &self,
        name: &str,
        version: u64,
        mutations: &[AppStateMutationMAC],
    ) -> Result<()> {
        let version = u64_to_i64(version)?;
        let statements = mutations
            .iter()
            .map(|m| {
                upsert_statement(
                    doc! {"name": name, "index_mac": bin(&m.index_mac)},
                    doc! {"$set": {"version": version, "value_mac": bin(&m.value_mac)}},
                )
            })
            .collect();
        self.bulk_update(MUTATION_MACS, statements).await
    }

    async fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>> {
        match self
            .find_one(
                MUTATION_MACS,
                doc! {"name": name, "index_mac": bin(index_mac)},
            )
            .await?
        {
            Some(d) => Ok(Some(get_bin(&d, "value_mac")?)),
            None => Ok(None),
        }
    }

    async fn get_mutation_macs(
        &self,
        name: &str,
        index_macs: &[[u8; 32]],
    ) -> Result<HashMap<[u8; 32], Vec<u8>>> {
        let mut out = HashMap::with_capacity(index_macs.len());
        for chunk in index_macs.chunks(IN_CHUNK) {
            let wanted: Vec<Bson> = chunk.iter().map(|m| bin(m)).collect();
            for d in self
                .find_all(
                    MUTATION_MACS,
                    doc! {"name": name, "index_mac": {"$in": wanted}},
                    None,
                )
                .await?
            {
                let index_mac = get_bin(&d, "index_mac")?;
                // Only 32-byte index MACs can have been asked for.
                if let Ok(key) = <[u8; 32]>::try_from(index_mac.as_slice()) {
                    out.insert(key, get_bin(&d, "value_mac")?);
                }
            }
        }
        Ok(out)
    }

    async fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()> {
        let values = index_macs.iter().map(|m| bin(m)).collect();
        self.delete_in(MUTATION_MACS, doc! {"name": name}, "index_mac", values)
            .await
    }

    async fn clear_mutation_macs(&self, name: &str) -> Result<()> {
        self.delete_many(MUTATION_MACS, doc! {"name": name}).await?;
        Ok(())
    }

    async fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>> {
        // Like the SQLite store: the greatest key id (byte-wise), skipping rows that do not
        // decode as a key (they read as absent through get_sync_key, so a build_patch on
        // them would fail). Compared here, not by a server sort, because MongoDB orders
        // Binary by length first; the collection holds a handful of keys.
        let latest = self
            .find_all(APP_STATE_KEYS, doc! {}, None)
            .await?
            .into_iter()
            .filter(|d| get_bin(d, "key_data").is_ok() && get_bin(d, "fingerprint").is_ok())
            .filter_map(|d| get_bin(&d, "_id").ok())
            .max();
        Ok(latest)
    }
}

// ---------------------------------------------------------------------------
// ProtocolStore
// ---------------------------------------------------------------------------

#[async_trait]
impl ProtocolStore for MongoDeviceStore {
    async fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>> {
        self.find_all(SENDER_KEY_DEVICES, doc! {"group_jid": group_jid}, None)
            .await?
            .iter()
            .map(|d| Ok((get_str(d, "device_jid")?, get_bool(d, "has_key")?)))
            .collect()
    }

    async fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()> {
        let now = now_secs();
        let statements = entries
            .iter()
            .map(|(device_jid, has_key)| {
                upsert_statement(
                    doc! {"group_jid": group_jid, "device_jid": *device_jid},
                    doc! {"$set": {"has_key": *has_key, "updated_at": now}},
                )
            })
            .collect();
        self.bulk_update(SENDER_KEY_DEVICES, statements).await
    }

    async fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()> {
        self.delete_many(SENDER_KEY_DEVICES, doc! {"group_jid": group_jid})
            .await?;
        Ok(())
    }

    async fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()> {
        let values = device_jids.iter().map(|j| Bson::from(*j)).collect();
        self.delete_in(SENDER_KEY_DEVICES, doc! {}, "device_jid", values)
            .await
    }

    async fn clear_all_sender_key_devices(&self) -> Result<()> {
        self.delete_many(SENDER_KEY_DEVICES, doc! {}).await?;
        Ok(())
    }

    async fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>> {
        self.find_one(LID_PN_MAPPING, doc! {"_id": lid})
            .await?
            .map(|d| decode_lid_mapping(&d))
            .transpose()
    }

    async fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>> {
        // A phone number can have had several LIDs; the most recently updated one is
        // current (ties: the greater LID, for a deterministic answer).
        self.coll(LID_PN_MAPPING)
            .find_one(doc! {"phone_number": phone})
            .sort(doc! {"updated_at": -1, "_id": -1})
            .await
            .map_err(db_err)?
            .map(|d| decode_lid_mapping(&d))
            .transpose()
    }

    async fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()> {
        let (filter, update) = lid_mapping_update(entry);
        self.upsert(LID_PN_MAPPING, filter, update).await
    }

    async fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()> {
        let statements = entries
            .iter()
            .map(|e| {
                let (filter, update) = lid_mapping_update(e);
                upsert_statement(filter, update)
            })
            .collect();
        self.bulk_update(LID_PN_MAPPING, statements).await
    }

    async fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>> {
        self.find_all(LID_PN_MAPPING, doc! {}, None)
            .await?
            .iter()
            .map(decode_lid_mapping)
            .collect()
    }

    async fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()> {
        self.upsert(
            BASE_KEYS,
            doc! {"address": address, "message_id": message_id},
            doc! {
                "$set": {"base_key": bin(base_key)},
                "$setOnInsert": {"created_at": now_secs()},
            },
        )
        .await
    }

    async fn has_same_base_key(
        &self,
        address: &str,
        message_id: &str,
        current_base_key: &[u8],
    ) -> Result<bool> {
        match self
            .find_one(
                BASE_KEYS,
                doc! {"address": address, "message_id": message_id},
            )
            .await?
        {
            Some(d) => Ok(get_bin(&d, "base_key")? == current_base_key),
            None => Ok(false),
        }
    }

    async fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()> {
        self.delete_one(
            BASE_KEYS,
            doc! {"address": address, "message_id": message_id},
        )
        .await
    }

    async fn update_device_list(&self, record: DeviceListRecord) -> Result<()> {
        let (filter, update) = device_list_update(&record)?;
        self.upsert(DEVICE_REGISTRY, filter, update).await
    }

    async fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()> {
        let statements = records
            .iter()
            .map(|r| {
                let (filter, update) = device_list_update(r)?;
                Ok(upsert_statement(filter, update))
            })
            .collect::<Result<Vec<_>>>()?;
        self.bulk_update(DEVICE_REGISTRY, statements).await
    }

    async fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>> {
        let Some(d) = self.find_one(DEVICE_REGISTRY, doc! {"_id": user}).await? else {
            return Ok(None);
        };
        let devices: Vec<DeviceInfo> = match d.get("devices") {
            Some(v) => bson::from_bson(v.clone()).map_err(ser_err)?,
            None => Vec::new(),
        };
        let raw_id = match d.get("raw_id") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(
                u32::try_from(get_i64(&d, "raw_id")?)
                    .map_err(|e| StoreError::Validation(format!("raw_id of {user}: {e}")))?,
            ),
        };
        let phash = match d.get("phash") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(get_str(&d, "phash")?),
        };
        Ok(Some(DeviceListRecord {
            user: get_str(&d, "_id")?,
            devices,
            timestamp: get_i64(&d, "timestamp")?,
            phash,
            raw_id,
        }))
    }

    async fn delete_devices(&self, user: &str) -> Result<()> {
        self.delete_one(DEVICE_REGISTRY, doc! {"_id": user}).await
    }

    async fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>> {
        self.get_blob(GROUP_METADATA, group_jid.into(), "info")
            .await
    }

    async fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()> {
        self.upsert(
            GROUP_METADATA,
            doc! {"_id": group_jid},
            doc! {"$set": {"info": bin(blob), "updated_at": now_secs()}},
        )
        .await
    }

    async fn delete_group_metadata(&self, group_jid: &str) -> Result<()> {
        self.delete_one(GROUP_METADATA, doc! {"_id": group_jid})
            .await
    }

    async fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>> {
        let Some(d) = self.find_one(TC_TOKENS, doc! {"_id": jid}).await? else {
            return Ok(None);
        };
        let sender_timestamp = match d.get("sender_timestamp") {
            None | Some(Bson::Null) => None,
            Some(_) => Some(get_i64(&d, "sender_timestamp")?),
        };
        Ok(Some(TcTokenEntry {
            token: get_bin(&d, "token")?,
            token_timestamp: get_i64(&d, "token_timestamp")?,
            sender_timestamp,
        }))
    }

    async fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()> {
        self.upsert(
            TC_TOKENS,
            doc! {"_id": jid},
            doc! {"$set": {
                "token": bin(&entry.token),
                "token_timestamp": entry.token_timestamp,
                "sender_timestamp": entry.sender_timestamp,
                "updated_at": now_secs(),
            }},
        )
        .await
    }

    async fn delete_tc_token(&self, jid: &str) -> Result<()> {
        self.delete_one(TC_TOKENS, doc! {"_id": jid}).await
    }

    async fn get_all_tc_token_jids(&self) -> Result<Vec<String>> {
        let mut cursor = self
            .coll(TC_TOKENS)
            .find(doc! {})
            .projection(doc! {"_id": 1})
            .await
            .map_err(db_err)?;
        let mut out = Vec::new();
        while let Some(d) = cursor.try_next().await.map_err(db_err)? {
            out.push(get_str(&d, "_id")?);
        }
        Ok(out)
    }

    async fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32> {
        // Gone only when both windows are dead: the received token is absent (empty) or
        // older than its cutoff, and the sender bucket is absent (null) or older than its.
        self.delete_many(
            TC_TOKENS,
            doc! {"$and": [
                {"$or": [{"token": bin(&[])}, {"token_timestamp": {"$lt": token_cutoff}}]},
                {"$or": [
                    {"sender_timestamp": Bson::Null},
                    {"sender_timestamp": {"$lt": sender_cutoff}},
                ]},
            ]},
        )
        .await
    }

    async fn touch_tc_token_sender_timestamp(
        &self,
        jid: &str,
        sender_timestamp: i64,
    ) -> Result<()> {
        // One atomic upsert: `$max` only ever advances the sender bucket (a null one is
        // below every number), and an existing token is never touched. A new row is a
        // byte-less placeholder, as in the reference stores.
        self.upsert(
            TC_TOKENS,
            doc! {"_id": jid},
            doc! {
                "$max": {"sender_timestamp": sender_timestamp},
                "$set": {"updated_at": now_secs()},
                "$setOnInsert": {"token": bin(&[]), "token_timestamp": sender_timestamp},
            },
        )
        .await
    }

    async fn store_received_tc_token(
        &self,
        jid: &str,
        token: &[u8],
        token_timestamp: i64,
    ) -> Result<()> {
        // Newer-wins without a read-modify-write: the condition is part of the update's
        // filter, so it is evaluated atomically with the write. Nothing matched means the
        // row is missing (insert it) or holds a fresher real token (keep it, once a read
        // confirms it). A lost insert race or a row that changed in between goes round
        // again against the new state.
        let coll = self.coll(TC_TOKENS);
        let set = doc! {"$set": {
            "token": bin(token),
            "token_timestamp": token_timestamp,
            "updated_at": now_secs(),
        }};
        let filter = doc! {
            "_id": jid,
            "$or": [{"token": bin(&[])}, {"token_timestamp": {"$lte": token_timestamp}}],
        };
        for _ in 0..TC_TOKEN_ATTEMPTS {
            let res = coll
                .update_one(filter.clone(), set.clone())
                .await
                .map_err(db_err)?;
            if res.matched_count > 0 {
                return Ok(());
            }
            if let Some(current) = self.get_tc_token(jid).await? {
                if !current.token.is_empty() && current.token_timestamp > token_timestamp {
                    // A fresher real token is stored: keeping it is the answer.
                    return Ok(());
                }
                // Changed between the update and this read: decide again.
                continue;
            }
            let row = doc! {
                "_id": jid,
                "token": bin(token),
                "token_timestamp": token_timestamp,
                "updated_at": now_secs(),
            };
            match coll.insert_one(row).await {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) => {}
                Err(e) => return Err(db_err(e)),
            }
        }
        Err(StoreError::RetriesExhausted {
            op: "store_received_tc_token".to_owned(),
        })
    }

    async fn store_sent_message(
        &self,
        chat_jid: &str,
        message_id: &str,
        payload: &[u8],
    ) -> Result<()> {
        self.upsert(
            SENT_MESSAGES,
            doc! {"chat_jid": chat_jid, "message_id": message_id},
            doc! {"$set": {"payload": bin(payload), "created_at": now_secs()}},
        )
        .await
    }

    async fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>> {
        // findOneAndDelete: of concurrent takers exactly one gets the payload, so a retry
        // receipt is answered at most once.
        match self
            .coll(SENT_MESSAGES)
            .find_one_and_delete(doc! {"chat_jid": chat_jid, "message_id": message_id})
            .await
            .map_err(db_err)?
        {
            Some(d) => Ok(Some(get_bin(&d, "payload")?)),
            None => Ok(None),
        }
    }

    async fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_many(
            SENT_MESSAGES,
            doc! {"created_at": {"$lt": cutoff_timestamp}},
        )
        .await
    }

    async fn store_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
        message: &[u8],
    ) -> Result<()> {
        let (filter, update) = pending_inbound_update(chat, sender, id, message);
        self.upsert(PENDING_INBOUND, filter, update).await
    }

    async fn get_pending_inbound(
        &self,
        chat: &str,
        sender: &str,
        id: &str,
    ) -> Result<Option<Vec<u8>>> {
        match self
            .find_one(
                PENDING_INBOUND,
                doc! {"chat": chat, "sender": sender, "id": id},
            )
            .await?
        {
            Some(d) => Ok(Some(get_bin(&d, "message")?)),
            None => Ok(None),
        }
    }

    async fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()> {
        self.delete_one(
            PENDING_INBOUND,
            doc! {"chat": chat, "sender": sender, "id": id},
        )
        .await
    }

    async fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32> {
        self.delete_many(
            PENDING_INBOUND,
            doc! {"inserted_at": {"$lt": cutoff_timestamp}},
        )
        .await
    }

    async fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()> {
        let statements = rows
            .iter()
            .map(|r| {
                let (filter, update) = pending_inbound_update(r.chat, r.sender, r.id, r.message);
                upsert_statement(filter, update)
            })
            .collect();
        self.bulk_update(PENDING_INBOUND, statements).await
    }

    async fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        // One deleteMany per chunk over an `$or` of exact keys.
        let coll = self.coll(PENDING_INBOUND);
        for chunk in keys.chunks(BATCH_MAX_OPS) {
            let any: Vec<Document> = chunk
                .iter()
                .map(|k| doc! {"chat": k.chat, "sender": k.sender, "id": k.id})
                .collect();
            coll.delete_many(doc! {"$or": any}).await.map_err(db_err)?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// MsgSecretStore
// ---------------------------------------------------------------------------

#[async_trait]
impl MsgSecretStore for MongoDeviceStore {
    async fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize> {
        // Each row is one atomic upsert: the secret is replaced, and `$max` merges the
        // deadline (stored with "never" as the maximum, see MSG_SECRET_NEVER) and the
        // parent time exactly like merge_msg_secret_expiry / merge_msg_secret_message_ts.
        // Ordered statements keep duplicate keys within a batch merging in order.
        let stored = entries.len();
        let now = now_secs();
        let statements = entries
            .iter()
            .map(|e| {
                upsert_statement(
                    doc! {"chat": e.chat.as_ref(), "sender": e.sender.as_ref(), "msg_id": e.msg_id.as_ref()},
                    doc! {
                        "$set": {"secret": bin(&e.secret), "created_at": now},
                        "$max": {
                            "expires_at": encode_msg_secret_expiry(e.expires_at),
                            "message_ts": e.message_ts,
                        },
                    },
                )
            })
            .collect();
        self.bulk_update(MSG_SECRETS, statements).await?;
        Ok(stored)
    }

    async fn get_msg_secret(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<Vec<u8>>> {
        Ok(self
            .get_msg_secret_with_ts(chat, sender, msg_id)
            .await?
            .map(|(secret, _)| secret))
    }

    async fn get_msg_secret_with_ts(
        &self,
        chat: &str,
        sender: &str,
        msg_id: &str,
    ) -> Result<Option<(Vec<u8>, i64)>> {
        match self
            .find_one(
                MSG_SECRETS,
                doc! {"chat": chat, "sender": sender, "msg_id": msg_id},
            )
            .await?
        {
            Some(d) => Ok(Some((get_bin(&d, "secret")?, get_i64(&d, "message_ts")?))),
            None => Ok(None),
        }
    }

    async fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32> {
        // "Never" is stored as MSG_SECRET_NEVER and must survive any cutoff.
        self.delete_many(
            MSG_SECRETS,
            doc! {"expires_at": {"$lte": cutoff_timestamp, "$lt": MSG_SECRET_NEVER}},
        )
        .await
    }
}

// ---------------------------------------------------------------------------
// DeviceStore
// ---------------------------------------------------------------------------

#[async_trait]
impl DeviceStore for MongoDeviceStore {
    async fn save(&self, device: &Device) -> Result<()> {
        self.replace(DEVICE, doc! {"_id": DEVICE_ID}, encode_device(device)?)
            .await
    }

    async fn load(&self) -> Result<Option<Device>> {
        match self.find_one(DEVICE, doc! {"_id": DEVICE_ID}).await? {
            Some(d) => Ok(Some(decode_device(&d)?)),
            None => Ok(None),
        }
    }

    async fn exists(&self) -> Result<bool> {
        self.exists_one(DEVICE, doc! {"_id": DEVICE_ID}).await
    }

    async fn create(&self) -> Result<i32> {
        // Insert-if-absent: a fresh keyset must never replace a paired device's keys, so an
        // existing document is left alone (`$setOnInsert` only).
        let mut fresh = encode_device(&Device::new())?;
        fresh.remove("_id");
        self.upsert(
            DEVICE,
            doc! {"_id": DEVICE_ID},
            doc! {"$setOnInsert": fresh},
        )
        .await?;
        Ok(DEVICE_ROW_ID)
    }

    async fn resource_report(&self) -> whatsapp_rust::wacore::stats::StorageResourceReport {
        // The data lives in MongoDB, not in this process.
        whatsapp_rust::wacore::stats::StorageResourceReport {
            memory_bytes: Some(0),
            ..Default::default()
        }
    }
}

// ---------------------------------------------------------------------------
// Encoding helpers
// ---------------------------------------------------------------------------

/// Bytes as BSON Binary (generic subtype).
fn bin(bytes: &[u8]) -> Bson {
    Bson::Binary(Binary {
        subtype: BinarySubtype::Generic,
        bytes: bytes.to_vec(),
    })
}

/// A Binary field, whatever its subtype.
fn get_bin(d: &Document, key: &str) -> Result<Vec<u8>> {
    match d.get(key) {
        Some(Bson::Binary(b)) => Ok(b.bytes.clone()),
        other => Err(invalid(key, "binary", other)),
    }
}

/// An integer field; Int32 is accepted too (tools and other drivers write small numbers
/// that way).
fn get_i64(d: &Document, key: &str) -> Result<i64> {
    match d.get(key) {
        Some(Bson::Int64(v)) => Ok(*v),
        Some(Bson::Int32(v)) => Ok(i64::from(*v)),
        other => Err(invalid(key, "integer", other)),
    }
}

fn get_str(d: &Document, key: &str) -> Result<String> {
    match d.get(key) {
        Some(Bson::String(s)) => Ok(s.clone()),
        other => Err(invalid(key, "string", other)),
    }
}

fn get_bool(d: &Document, key: &str) -> Result<bool> {
    match d.get(key) {
        Some(Bson::Boolean(b)) => Ok(*b),
        other => Err(invalid(key, "boolean", other)),
    }
}

fn invalid(key: &str, expected: &str, found: Option<&Bson>) -> StoreError {
    let found = found.map_or("nothing".to_owned(), |v| format!("{:?}", v.element_type()));
    StoreError::Validation(format!("field {key:?}: expected {expected}, found {found}"))
}

fn u64_to_i64(v: u64) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Validation(format!("{v} does not fit in an Int64")))
}

/// `{q, u, upsert: true}`: one statement of an `update` command.
fn upsert_statement(filter: Document, update: Document) -> Document {
    doc! {"q": filter, "u": update, "upsert": true}
}

fn encoded_len(d: &Document) -> Result<usize> {
    let mut buf = Vec::new();
    d.to_writer(&mut buf).map_err(ser_err)?;
    Ok(buf.len())
}

/// The first `writeErrors` entry of a write command's reply as `(index, code)`; a
/// `writeConcernError` is an error of its own (the write may not be durable).
fn first_write_error(reply: &Document) -> Result<Option<(usize, i32)>> {
    if let Ok(wce) = reply.get_document("writeConcernError") {
        return Err(StoreError::Database(
            format!("write concern not satisfied: {wce}").into(),
        ));
    }
    let Ok(errors) = reply.get_array("writeErrors") else {
        return Ok(None);
    };
    let Some(Bson::Document(first)) = errors.first() else {
        return Ok(None);
    };
    let index = get_i64(first, "index")?;
    let code = get_i64(first, "code")?;
    Ok(Some((
        usize::try_from(index).unwrap_or(0),
        i32::try_from(code).unwrap_or(i32::MAX),
    )))
}

/// MSG_SECRET_NEVER for `0` ("never"), the deadline otherwise.
fn encode_msg_secret_expiry(expires_at: i64) -> i64 {
    if expires_at == 0 {
        MSG_SECRET_NEVER
    } else {
        expires_at
    }
}

/// `HashState` → document: `version` as Int64, `hash` as Binary, the index→value map as
/// an array of `{k, v}` (its keys are free-form strings, unsafe as field names).
fn encode_hash_state(state: &HashState) -> Result<Document> {
    let map: Vec<Document> = state
        .index_value_map
        .iter()
        .map(|(k, v)| doc! {"k": k.as_str(), "v": bin(v)})
        .collect();
    Ok(doc! {
        "version": u64_to_i64(state.version)?,
        "hash": bin(&state.hash),
        "index_value_map": map,
        "mac_mismatch_fatal": state.mac_mismatch_fatal,
    })
}

fn decode_hash_state(d: &Document) -> Result<HashState> {
    let version = u64::try_from(get_i64(d, "version")?)
        .map_err(|e| StoreError::Validation(format!("app state version: {e}")))?;
    let hash_bytes = get_bin(d, "hash")?;
    let len = hash_bytes.len();
    let hash: [u8; 128] = hash_bytes
        .try_into()
        .map_err(|_| StoreError::Validation(format!("app state hash: {len} bytes, not 128")))?;
    let mut index_value_map = HashMap::new();
    if let Ok(entries) = d.get_array("index_value_map") {
        for entry in entries {
            let Bson::Document(entry) = entry else {
                return Err(invalid("index_value_map", "document", Some(entry)));
            };
            index_value_map.insert(get_str(entry, "k")?, get_bin(entry, "v")?);
        }
    }
    let mac_mismatch_fatal = match d.get("mac_mismatch_fatal") {
        Some(Bson::Boolean(b)) => *b,
        _ => false,
    };
    Ok(HashState {
        version,
        hash,
        index_value_map,
        mac_mismatch_fatal,
    })
}

/// Upsert of a LID mapping: `created_at` only on insert, like the SQLite store.
fn lid_mapping_update(e: &LidPnMappingEntry) -> (Document, Document) {
    (
        doc! {"_id": e.lid.as_str()},
        doc! {
            "$set": {
                "phone_number": e.phone_number.as_str(),
                "updated_at": e.updated_at,
                "learning_source": e.learning_source.as_str(),
            },
            "$setOnInsert": {"created_at": e.created_at},
        },
    )
}

fn decode_lid_mapping(d: &Document) -> Result<LidPnMappingEntry> {
    Ok(LidPnMappingEntry {
        lid: get_str(d, "_id")?,
        phone_number: get_str(d, "phone_number")?,
        created_at: get_i64(d, "created_at")?,
        updated_at: get_i64(d, "updated_at")?,
        learning_source: get_str(d, "learning_source")?,
    })
}

fn device_list_update(r: &DeviceListRecord) -> Result<(Document, Document)> {
    let devices = bson::to_bson(&r.devices).map_err(ser_err)?;
    Ok((
        doc! {"_id": r.user.as_str()},
        doc! {"$set": {
            "devices": devices,
            "timestamp": r.timestamp,
            "phash": r.phash.as_deref(),
            "raw_id": r.raw_id.map(i64::from),
            "updated_at": now_secs(),
        }},
    ))
}

fn pending_inbound_update(
    chat: &str,
    sender: &str,
    id: &str,
    message: &[u8],
) -> (Document, Document) {
    (
        doc! {"chat": chat, "sender": sender, "id": id},
        doc! {"$set": {"message": bin(message), "inserted_at": now_secs()}},
    )
}

/// The device document. `Device`'s serde form writes its key pairs with
/// `serialize_bytes` but reads them back as a byte sequence, which BSON's Binary does not
/// satisfy, so the struct is kept as its serde JSON (self-describing, exact for every
/// field) inside a Binary.
fn encode_device(device: &Device) -> Result<Document> {
    let json = serde_json::to_vec(device).map_err(ser_err)?;
    Ok(doc! {
        "_id": DEVICE_ID,
        "format": DEVICE_FORMAT,
        "data": bin(&json),
        "saved_at": now_secs(),
    })
}

fn decode_device(d: &Document) -> Result<Device> {
    let format = get_i64(d, "format")?;
    if format != i64::from(DEVICE_FORMAT) {
        return Err(StoreError::Validation(format!(
            "device document format {format}, this build reads {DEVICE_FORMAT}"
        )));
    }
    let mut device: Device = serde_json::from_slice(&get_bin(d, "data")?).map_err(ser_err)?;
    // `#[serde(skip)]` fields come back as `Default`; restore what the SQLite store loads
    // (the library's device props; the client profile defaults to web already).
    device.device_props = Arc::new(DEVICE_PROPS.clone());
    Ok(device)
}

/// `user` as a literal inside a regular expression.
fn regex_escape(user: &str) -> String {
    let mut out = String::with_capacity(user.len());
    for c in user.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn ser_err(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Serialization(Box::new(e))
}

/// Driver error → store error: unreachable server → `Connection`, (de)serialisation →
/// `Serialization`, everything else (server replies) → `Database`.
fn db_err(e: mongodb::error::Error) -> StoreError {
    if is_connection_error(&e) {
        StoreError::Connection(Box::new(e))
    } else if matches!(
        e.kind.as_ref(),
        ErrorKind::BsonDeserialization(_) | ErrorKind::BsonSerialization(_)
    ) {
        StoreError::Serialization(Box::new(e))
    } else {
        StoreError::Database(Box::new(e))
    }
}

/// Index creation failed: `Connection` when the server is unreachable, else `Migration`.
fn index_err(e: mongodb::error::Error) -> StoreError {
    if is_connection_error(&e) {
        StoreError::Connection(Box::new(e))
    } else {
        StoreError::Migration(Box::new(e))
    }
}

/// The server could not be reached or talked to (as opposed to a reply saying no).
fn is_connection_error(e: &mongodb::error::Error) -> bool {
    matches!(
        e.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Authentication { .. }
            | ErrorKind::Shutdown
    )
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "ErrorKind is #[non_exhaustive]; only server replies carry a code"
)]
fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    let code = match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        _ => None,
    };
    code == Some(DUPLICATE_KEY)
}
