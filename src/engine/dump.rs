//! One session's device data (whatsapp-rust's device, Signal, app-state and protocol
//! stores) as backend-neutral records, and back: what lets a paired session move between
//! the embedded store (whatsapp-rust's SQLite storage, `whatsapp.db`) and MongoDB
//! (`engine::mongo_store`) without scanning a QR code again.
//!
//! Owns: [`DeviceRecord`] (the neutral form; bytes as base64 so a dump is JSON) and the
//! two directions, [`dump_device`] and [`load_device`]. Values are read and written
//! through whatsapp-rust's own storage traits, so each backend keeps its encoding; only
//! the *keys* are listed per backend (the traits cannot list them): from `whatsapp.db`'s
//! tables here, from the `wa_*` collections in `mongo_store::dump`.
//!
//! Left out on purpose: the short-lived retry caches (`sent_messages`, `base_keys`,
//! `pending_inbound`): a message in flight while the session was stopped is re-requested
//! from the phone as usual.
//!
//! Called by `cli::dump` (migrate, export, import) while the session is not running.
//! Lives for one call.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};
use whatsapp_rust::store::traits::Backend;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, DeviceListRecord, LidPnMappingEntry, MsgSecretEntry, TcTokenEntry,
};

use super::DeviceStore;

/// Errors of a device dump or load.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// whatsapp-rust's storage failed.
    #[error("device store: {0}")]
    Store(String),
    /// The embedded device database could not be read.
    #[error("device database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A record does not decode (a damaged or foreign dump).
    #[error("device record: {0}")]
    Record(String),
}

fn store_err(e: impl std::fmt::Display) -> Error {
    Error::Store(e.to_string())
}

/// Bytes as base64 in JSON.
mod b64 {
    use super::B64;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&B64.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        B64.decode(s).map_err(serde::de::Error::custom)
    }
}

/// One piece of a session's device data.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum DeviceRecord {
    /// The device itself: keys, account, push name (whatsapp-rust's serde form).
    Device {
        /// `Device` as JSON.
        device: serde_json::Value,
    },
    /// A peer's identity key.
    Identity {
        /// Signal address.
        address: String,
        /// 32 bytes.
        #[serde(with = "b64")]
        key: Vec<u8>,
    },
    /// A Signal session.
    Session {
        /// Signal address.
        address: String,
        /// Serialized record.
        #[serde(with = "b64")]
        record: Vec<u8>,
    },
    /// One of our one-time pre-keys.
    PreKey {
        /// Key id.
        id: u32,
        /// Serialized record.
        #[serde(with = "b64")]
        record: Vec<u8>,
        /// Already uploaded to WhatsApp.
        uploaded: bool,
    },
    /// A signed pre-key.
    SignedPreKey {
        /// Key id.
        id: u32,
        /// Serialized record.
        #[serde(with = "b64")]
        record: Vec<u8>,
    },
    /// A group sender key.
    SenderKey {
        /// Sender key name.
        address: String,
        /// Serialized record.
        #[serde(with = "b64")]
        record: Vec<u8>,
    },
    /// An app-state sync key.
    SyncKey {
        /// Key id.
        #[serde(with = "b64")]
        key_id: Vec<u8>,
        /// The key.
        key: AppStateSyncKey,
    },
    /// The hash state of one app-state collection.
    Version {
        /// Collection name.
        name: String,
        /// Its state.
        state: HashState,
    },
    /// One app-state mutation MAC.
    MutationMac {
        /// Collection name.
        name: String,
        /// Version that wrote it.
        version: u64,
        /// Index MAC.
        #[serde(with = "b64")]
        index_mac: Vec<u8>,
        /// Value MAC.
        #[serde(with = "b64")]
        value_mac: Vec<u8>,
    },
    /// A LID ↔ phone-number mapping.
    LidMapping {
        /// The entry.
        entry: LidPnMappingEntry,
    },
    /// A user's device list.
    DeviceList {
        /// The record.
        record: DeviceListRecord,
    },
    /// Cached group metadata.
    GroupMetadata {
        /// Group JID.
        jid: String,
        /// Blob.
        #[serde(with = "b64")]
        blob: Vec<u8>,
    },
    /// A trusted-contact token.
    TcToken {
        /// Contact JID.
        jid: String,
        /// The token.
        entry: TcTokenEntry,
    },
    /// Which devices of a group have our sender key.
    SenderKeyDevices {
        /// Group JID.
        group: String,
        /// (device JID, has key).
        entries: Vec<(String, bool)>,
    },
    /// A message secret (polls, reactions, edits of that message).
    MsgSecret {
        /// The row.
        row: MsgSecretRow,
    },
}

impl DeviceRecord {
    /// Short name of the kind, for counts.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Device { .. } => "device",
            Self::Identity { .. } => "device.identities",
            Self::Session { .. } => "device.sessions",
            Self::PreKey { .. } => "device.prekeys",
            Self::SignedPreKey { .. } => "device.signed_prekeys",
            Self::SenderKey { .. } => "device.sender_keys",
            Self::SyncKey { .. } => "device.app_state_keys",
            Self::Version { .. } => "device.app_state_versions",
            Self::MutationMac { .. } => "device.mutation_macs",
            Self::LidMapping { .. } => "device.lid_mappings",
            Self::DeviceList { .. } => "device.device_lists",
            Self::GroupMetadata { .. } => "device.group_metadata",
            Self::TcToken { .. } => "device.tc_tokens",
            Self::SenderKeyDevices { .. } => "device.sender_key_devices",
            Self::MsgSecret { .. } => "device.msg_secrets",
        }
    }
}

/// A message secret row (no keyed getter returns all of it).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MsgSecretRow {
    /// Chat JID.
    pub chat: String,
    /// Sender JID.
    pub sender: String,
    /// Message id.
    pub msg_id: String,
    /// 32 bytes.
    #[serde(with = "b64")]
    pub secret: Vec<u8>,
    /// Deadline (unix s), `0` = never.
    pub expires_at: i64,
    /// Parent message time (unix s).
    pub message_ts: i64,
}

/// The keys of a session's device data, listed by each backend.
#[derive(Debug, Default)]
pub(crate) struct DeviceKeys {
    pub identities: Vec<String>,
    pub sessions: Vec<String>,
    pub sender_keys: Vec<String>,
    pub prekeys: Vec<(u32, bool)>,
    pub sync_keys: Vec<Vec<u8>>,
    pub versions: Vec<String>,
    pub mutation_macs: Vec<(String, u64, Vec<u8>, Vec<u8>)>,
    pub device_lists: Vec<String>,
    pub group_metadata: Vec<String>,
    pub sender_key_groups: Vec<String>,
    pub msg_secrets: Vec<MsgSecretRow>,
}

/// The device-id column of whatsapp-rust's SQLite storage: one device per file, id 1
/// (what `SqliteStore::new` uses).
const SQLITE_DEVICE_ID: i32 = 1;

fn sqlite_keys(path: &std::path::Path) -> Result<DeviceKeys, Error> {
    let c = rusqlite::Connection::open_with_flags(
        path,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    c.busy_timeout(std::time::Duration::from_secs(5))?;
    let strings = |sql: &str| -> Result<Vec<String>, Error> {
        let mut stmt = c.prepare(sql)?;
        let rows = stmt.query_map([SQLITE_DEVICE_ID], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    };
    let mut keys = DeviceKeys {
        identities: strings("SELECT address FROM identities WHERE device_id = ?1")?,
        sessions: strings("SELECT address FROM sessions WHERE device_id = ?1")?,
        sender_keys: strings("SELECT address FROM sender_keys WHERE device_id = ?1")?,
        versions: strings("SELECT name FROM app_state_versions WHERE device_id = ?1")?,
        device_lists: strings("SELECT user_id FROM device_registry WHERE device_id = ?1")?,
        group_metadata: strings("SELECT group_jid FROM group_metadata WHERE device_id = ?1")?,
        sender_key_groups: strings(
            "SELECT DISTINCT group_jid FROM sender_key_devices WHERE device_id = ?1",
        )?,
        ..DeviceKeys::default()
    };
    let mut stmt = c.prepare("SELECT id, uploaded FROM prekeys WHERE device_id = ?1")?;
    keys.prekeys = stmt
        .query_map([SQLITE_DEVICE_ID], |r| {
            Ok((
                u32::try_from(r.get::<_, i64>(0)?).unwrap_or(0),
                r.get::<_, bool>(1)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = c.prepare("SELECT key_id FROM app_state_keys WHERE device_id = ?1")?;
    keys.sync_keys = stmt
        .query_map([SQLITE_DEVICE_ID], |r| r.get::<_, Vec<u8>>(0))?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = c.prepare(
        "SELECT name, version, index_mac, value_mac FROM app_state_mutation_macs \
         WHERE device_id = ?1",
    )?;
    keys.mutation_macs = stmt
        .query_map([SQLITE_DEVICE_ID], |r| {
            Ok((
                r.get::<_, String>(0)?,
                u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0),
                r.get::<_, Vec<u8>>(2)?,
                r.get::<_, Vec<u8>>(3)?,
            ))
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut stmt = c.prepare(
        "SELECT chat, sender, msg_id, secret, expires_at, message_ts FROM msg_secrets \
         WHERE device_id = ?1",
    )?;
    keys.msg_secrets = stmt
        .query_map([SQLITE_DEVICE_ID], |r| {
            Ok(MsgSecretRow {
                chat: r.get(0)?,
                sender: r.get(1)?,
                msg_id: r.get(2)?,
                secret: r.get(3)?,
                expires_at: r.get(4)?,
                message_ts: r.get(5)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(keys)
}

/// Whether the session has device data at all (a paired or half-paired device).
async fn has_device(loc: &DeviceStore) -> bool {
    match loc {
        DeviceStore::Sqlite { dir } => tokio::fs::try_exists(dir.join("whatsapp.db"))
            .await
            .unwrap_or(false),
        DeviceStore::Mongo { .. } => true,
    }
}

/// Reads the session's whole device data. Empty when it has none (never paired, logged
/// out).
///
/// # Errors
/// The device store cannot be opened or read.
pub async fn dump_device(loc: &DeviceStore) -> Result<Vec<DeviceRecord>, Error> {
    if !has_device(loc).await {
        return Ok(Vec::new());
    }
    let backend = super::open_backend(loc, None).await.map_err(store_err)?;
    let Some(device) = backend.load().await.map_err(store_err)? else {
        return Ok(Vec::new());
    };
    let keys = match loc {
        DeviceStore::Sqlite { dir } => {
            let path = dir.join("whatsapp.db");
            tokio::task::spawn_blocking(move || sqlite_keys(&path))
                .await
                .map_err(store_err)??
        }
        DeviceStore::Mongo { db } => super::mongo_store::MongoDeviceStore::open(db.clone())
            .await
            .map_err(store_err)?
            .dump_keys()
            .await
            .map_err(store_err)?,
    };
    let b = backend.as_ref();
    let mut out = vec![DeviceRecord::Device {
        device: serde_json::to_value(&device).map_err(store_err)?,
    }];
    for address in keys.identities {
        if let Some(key) = b.load_identity(&address).await.map_err(store_err)? {
            out.push(DeviceRecord::Identity {
                address,
                key: key.to_vec(),
            });
        }
    }
    for address in keys.sessions {
        if let Some(record) = b.get_session(&address).await.map_err(store_err)? {
            out.push(DeviceRecord::Session {
                address,
                record: record.to_vec(),
            });
        }
    }
    for (id, uploaded) in keys.prekeys {
        if let Some(record) = b.load_prekey(id).await.map_err(store_err)? {
            out.push(DeviceRecord::PreKey {
                id,
                record: record.to_vec(),
                uploaded,
            });
        }
    }
    for (id, record) in b.load_all_signed_prekeys().await.map_err(store_err)? {
        out.push(DeviceRecord::SignedPreKey { id, record });
    }
    for address in keys.sender_keys {
        if let Some(record) = b.get_sender_key(&address).await.map_err(store_err)? {
            out.push(DeviceRecord::SenderKey { address, record });
        }
    }
    for key_id in keys.sync_keys {
        if let Some(key) = b.get_sync_key(&key_id).await.map_err(store_err)? {
            out.push(DeviceRecord::SyncKey { key_id, key });
        }
    }
    for name in keys.versions {
        let state = b.get_version(&name).await.map_err(store_err)?;
        out.push(DeviceRecord::Version { name, state });
    }
    for (name, version, index_mac, value_mac) in keys.mutation_macs {
        out.push(DeviceRecord::MutationMac {
            name,
            version,
            index_mac,
            value_mac,
        });
    }
    for entry in b.get_all_lid_mappings().await.map_err(store_err)? {
        out.push(DeviceRecord::LidMapping { entry });
    }
    for user in keys.device_lists {
        if let Some(record) = b.get_devices(&user).await.map_err(store_err)? {
            out.push(DeviceRecord::DeviceList { record });
        }
    }
    for jid in keys.group_metadata {
        if let Some(blob) = b.get_group_metadata(&jid).await.map_err(store_err)? {
            out.push(DeviceRecord::GroupMetadata { jid, blob });
        }
    }
    for jid in b.get_all_tc_token_jids().await.map_err(store_err)? {
        if let Some(entry) = b.get_tc_token(&jid).await.map_err(store_err)? {
            out.push(DeviceRecord::TcToken { jid, entry });
        }
    }
    for group in keys.sender_key_groups {
        let entries = b.get_sender_key_devices(&group).await.map_err(store_err)?;
        if !entries.is_empty() {
            out.push(DeviceRecord::SenderKeyDevices { group, entries });
        }
    }
    for row in keys.msg_secrets {
        out.push(DeviceRecord::MsgSecret { row });
    }
    Ok(out)
}

/// Writes `records` into the session's device store (created if needed). Every write is
/// an upsert by key, so loading the same records twice changes nothing.
///
/// # Errors
/// The device store cannot be opened or written, or a record does not decode.
pub async fn load_device(loc: &DeviceStore, records: &[DeviceRecord]) -> Result<(), Error> {
    if records.is_empty() {
        return Ok(());
    }
    let backend = super::open_backend(loc, None).await.map_err(store_err)?;
    let b = backend.as_ref();
    for r in records {
        load_one(b, r).await?;
    }
    Ok(())
}

async fn load_one(b: &dyn Backend, r: &DeviceRecord) -> Result<(), Error> {
    match r {
        DeviceRecord::Device { device } => {
            let device: Device = serde_json::from_value(device.clone())
                .map_err(|e| Error::Record(format!("device: {e}")))?;
            if !b.exists().await.map_err(store_err)? {
                b.create().await.map_err(store_err)?;
            }
            b.save(&device).await.map_err(store_err)?;
        }
        DeviceRecord::Identity { address, key } => {
            let key: [u8; 32] = key
                .as_slice()
                .try_into()
                .map_err(|_| Error::Record(format!("identity key of {address}")))?;
            b.put_identity(address, key).await.map_err(store_err)?;
        }
        DeviceRecord::Session { address, record } => {
            b.put_session(address, record).await.map_err(store_err)?;
        }
        DeviceRecord::PreKey {
            id,
            record,
            uploaded,
        } => b
            .store_prekey(*id, record, *uploaded)
            .await
            .map_err(store_err)?,
        DeviceRecord::SignedPreKey { id, record } => b
            .store_signed_prekey(*id, record)
            .await
            .map_err(store_err)?,
        DeviceRecord::SenderKey { address, record } => {
            b.put_sender_key(address, record).await.map_err(store_err)?;
        }
        DeviceRecord::SyncKey { key_id, key } => b
            .set_sync_key(key_id, key.clone())
            .await
            .map_err(store_err)?,
        DeviceRecord::Version { name, state } => b
            .set_version(name, state.clone())
            .await
            .map_err(store_err)?,
        DeviceRecord::MutationMac {
            name,
            version,
            index_mac,
            value_mac,
        } => b
            .put_mutation_macs(
                name,
                *version,
                &[AppStateMutationMAC {
                    index_mac: index_mac.clone(),
                    value_mac: value_mac.clone(),
                }],
            )
            .await
            .map_err(store_err)?,
        DeviceRecord::LidMapping { entry } => {
            b.put_lid_mapping(entry).await.map_err(store_err)?;
        }
        DeviceRecord::DeviceList { record } => b
            .update_device_list(record.clone())
            .await
            .map_err(store_err)?,
        DeviceRecord::GroupMetadata { jid, blob } => {
            b.put_group_metadata(jid, blob).await.map_err(store_err)?
        }
        DeviceRecord::TcToken { jid, entry } => {
            b.put_tc_token(jid, entry).await.map_err(store_err)?;
        }
        DeviceRecord::SenderKeyDevices { group, entries } => {
            let entries: Vec<(&str, bool)> =
                entries.iter().map(|(d, k)| (d.as_str(), *k)).collect();
            b.set_sender_key_status(group, &entries)
                .await
                .map_err(store_err)?;
        }
        DeviceRecord::MsgSecret { row } => {
            let secret: [u8; 32] = row
                .secret
                .as_slice()
                .try_into()
                .map_err(|_| Error::Record(format!("message secret of {}", row.msg_id)))?;
            b.put_msg_secrets(vec![MsgSecretEntry {
                chat: Arc::from(row.chat.as_str()),
                sender: Arc::from(row.sender.as_str()),
                msg_id: Arc::from(row.msg_id.as_str()),
                secret,
                expires_at: row.expires_at,
                message_ts: row.message_ts,
            }])
            .await
            .map_err(store_err)?;
        }
    }
    Ok(())
}
