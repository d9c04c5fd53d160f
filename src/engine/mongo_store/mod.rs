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
//! database handle. Wiping a session (logout) is dropping its `wa_*` collections, done by
//! the store (`store::Store::wipe_credentials`).
//!
//! Files: this one holds the handle, its indexes, the shared write/read helpers and the
//! encoding; each whatsapp-rust storage trait has its own file ([`signal`], [`app_sync`],
//! [`protocol`], [`msg_secret`], [`device`]). The database is handed in (from
//! `store::DeviceLocation::Mongo`), never opened here; duplicate-key and "server
//! unreachable" detection are the store's (`store::mongo`), so both layers agree.
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
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::TryStreamExt;
use mongodb::bson::{self, Binary, Bson, Document, doc, spec::BinarySubtype};
use mongodb::error::ErrorKind;
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

use crate::store::mongo::{DUPLICATE_KEY, is_duplicate_key, is_unreachable};

mod app_sync;
mod cache;
mod device;
mod dump;
mod msg_secret;
mod protocol;
mod signal;

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

/// The app-state collections whatsapp-rust syncs (`WAPatchName::as_str` of wacore 0.7):
/// the names [`APP_STATE_VERSIONS`] can hold, cached together on the first read.
const APP_STATE_NAMES: [&str; 5] = [
    "critical_block",
    "critical_unblock_low",
    "regular_low",
    "regular_high",
    "regular",
];

/// `_id` of the single document in [`DEVICE`].
const DEVICE_ID: &str = "device";

/// What [`DeviceStore::create`] returns: one device per database, so the id is constant
/// (the SQLite store's default device id is 1 too).
const DEVICE_ROW_ID: i32 = 1;

/// Version of the `data` encoding in [`DEVICE`]; bumped if it ever changes.
const DEVICE_FORMAT: i32 = 1;

/// Version of the index set [`MongoDeviceStore::create_indexes`] makes; bump it when that
/// set changes. The device document carries the version its database's indexes were made
/// at (field `indexes`), so a start of an already-indexed database sends no
/// `createIndexes` at all (9 commands per session and start before; issue 16 item 7).
/// The document goes with the indexes: a logout drops every `wa_*` collection, deleting a
/// session drops the database.
const INDEXES_VERSION: i32 = 1;

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
    /// Cluster mode: the session's lease; every write is refused once it is not provably
    /// held, and the device document is only written at an epoch ≤ this one.
    fence: Option<crate::cluster::Fence>,
    /// What whatsapp-rust reads repeatedly, served from memory (see [`cache`]).
    caches: Arc<Caches>,
}

/// The read caches of one store (shared by its clones).
struct Caches {
    /// `wa_device` (key [`DEVICE_ID`]): the device as stored, `None` when there is none.
    device: cache::ReadCache<Option<Device>>,
    /// The `data` bytes this store last wrote to `wa_device`: an identical save is not
    /// sent again (whatsapp-rust saves the device on every change of any field, often
    /// with nothing changed in what is stored).
    device_written: StdMutex<Option<Vec<u8>>>,
    versions: cache::ReadCache<HashState>,
    device_lists: cache::ReadCache<Option<DeviceListRecord>>,
    sessions: cache::ReadCache<Option<Bytes>>,
    identities: cache::ReadCache<Option<[u8; 32]>>,
    tc_tokens: cache::ReadCache<Option<TcTokenEntry>>,
}

impl Caches {
    fn new() -> Self {
        Self {
            device: cache::ReadCache::new(1),
            device_written: StdMutex::new(None),
            versions: cache::ReadCache::new(16),
            device_lists: cache::ReadCache::new(256),
            sessions: cache::ReadCache::new(128),
            identities: cache::ReadCache::new(256),
            tc_tokens: cache::ReadCache::new(256),
        }
    }

    fn device_written(&self) -> std::sync::MutexGuard<'_, Option<Vec<u8>>> {
        self.device_written
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl std::fmt::Debug for Caches {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Caches").finish_non_exhaustive()
    }
}

impl MongoDeviceStore {
    /// Takes over the session's database `db` (a handle from the process's one client) and
    /// creates the unique indexes of every collection unless its device document says they
    /// were made at [`INDEXES_VERSION`] already (one `find`, which also serves the first
    /// `load`).
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
        let store = Self {
            db,
            write_concern,
            fence: None,
            caches: Arc::new(Caches::new()),
        };
        let generation = store.caches.device.generation();
        let stored = store.find_one(DEVICE, doc! {"_id": DEVICE_ID}).await?;
        let indexed = stored
            .as_ref()
            .and_then(|d| get_i64(d, "indexes").ok())
            .is_some_and(|v| v >= i64::from(INDEXES_VERSION));
        if !indexed {
            store.create_indexes().await?;
            if stored.is_some() {
                // Only the marker: the device itself (and its epoch) is left as it is.
                store
                    .coll(DEVICE)
                    .update_one(
                        doc! {"_id": DEVICE_ID},
                        doc! {"$set": {"indexes": INDEXES_VERSION}},
                    )
                    .await
                    .map_err(db_err)?;
            }
        }
        // The first `load` is answered from this read; a document that does not decode is
        // left for `load` to report.
        match stored.as_ref().map(decode_device).transpose() {
            Ok(device) => store.caches.device.fill(DEVICE_ID, device, generation),
            Err(e) => tracing::debug!(error = %e, "device document does not decode"),
        }
        Ok(store)
    }

    /// The same store, refusing writes once `fence` (the session's lease) is lost.
    #[must_use]
    pub fn fenced(mut self, fence: Option<crate::cluster::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// `Ok` unless a lost lease forbids writing (cluster mode).
    fn guard(&self) -> Result<()> {
        match &self.fence {
            Some(f) => f
                .check()
                .map_err(|e| StoreError::Database(e.to_string().into())),
            None => Ok(()),
        }
    }

    /// The lease epoch writes carry (cluster mode).
    fn epoch(&self) -> Option<i64> {
        self.fence.as_ref().map(crate::cluster::Fence::epoch)
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
        self.guard()?;
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
        self.guard()?;
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
        self.guard()?;
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
        self.guard()?;
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
        self.guard()?;
        self.coll(coll).delete_one(filter).await.map_err(db_err)?;
        Ok(())
    }

    async fn delete_many(&self, coll: &str, filter: Document) -> Result<u32> {
        self.guard()?;
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
    Ok(device_doc(&json))
}

/// The device document around `data` (the device's serde JSON). Only a store that made
/// the indexes writes it ([`MongoDeviceStore::open`] runs first), hence the marker.
fn device_doc(json: &[u8]) -> Document {
    doc! {
        "_id": DEVICE_ID,
        "format": DEVICE_FORMAT,
        "indexes": INDEXES_VERSION,
        "data": bin(json),
        "saved_at": now_secs(),
    }
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
/// `Serialization`, everything else (server replies) → `Database`. The classification is
/// the store's (`store::mongo::is_unreachable`), so both agree on what "down" means.
fn db_err(e: mongodb::error::Error) -> StoreError {
    if is_unreachable(&e) {
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
    if is_unreachable(&e) {
        StoreError::Connection(Box::new(e))
    } else {
        StoreError::Migration(Box::new(e))
    }
}
