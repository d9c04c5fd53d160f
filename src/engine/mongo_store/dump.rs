//! The keys of everything stored in one session's `wa_*` collections, for a dump
//! (`engine::dump`): whatsapp-rust's storage traits read a value by key but cannot list
//! keys, so this lists them (and reads the few rows that have no keyed getter).
//!
//! Called by `engine::dump::dump_device` while the session is not running (migrate,
//! export); reads only. Lives for one call.

use mongodb::bson::{Bson, Document, doc};

use super::{
    APP_STATE_KEYS, APP_STATE_VERSIONS, DEVICE_REGISTRY, GROUP_METADATA, IDENTITIES,
    MSG_SECRET_NEVER, MSG_SECRETS, MUTATION_MACS, MongoDeviceStore, PREKEYS, SENDER_KEY_DEVICES,
    SENDER_KEYS, SESSIONS, get_bin, get_i64, get_str,
};
use crate::engine::dump::{DeviceKeys, MsgSecretRow};
use whatsapp_rust::wacore::store::error::Result;

impl MongoDeviceStore {
    /// Every key of the session's device data (see [`DeviceKeys`]).
    ///
    /// # Errors
    /// The server failed, or a document is not in the layout this module writes.
    pub(crate) async fn dump_keys(&self) -> Result<DeviceKeys> {
        let ids = |docs: Vec<Document>| -> Result<Vec<String>> {
            docs.iter().map(|d| get_str(d, "_id")).collect()
        };
        let mut keys = DeviceKeys {
            identities: ids(self.find_all(IDENTITIES, doc! {}, None).await?)?,
            sessions: ids(self.find_all(SESSIONS, doc! {}, None).await?)?,
            sender_keys: ids(self.find_all(SENDER_KEYS, doc! {}, None).await?)?,
            versions: ids(self.find_all(APP_STATE_VERSIONS, doc! {}, None).await?)?,
            device_lists: ids(self.find_all(DEVICE_REGISTRY, doc! {}, None).await?)?,
            group_metadata: ids(self.find_all(GROUP_METADATA, doc! {}, None).await?)?,
            ..DeviceKeys::default()
        };
        for d in self.find_all(PREKEYS, doc! {}, None).await? {
            let id = u32::try_from(get_i64(&d, "_id")?).unwrap_or(0);
            keys.prekeys
                .push((id, d.get_bool("uploaded").unwrap_or(false)));
        }
        for d in self.find_all(APP_STATE_KEYS, doc! {}, None).await? {
            keys.sync_keys.push(get_bin(&d, "_id")?);
        }
        for d in self.find_all(MUTATION_MACS, doc! {}, None).await? {
            keys.mutation_macs.push((
                get_str(&d, "name")?,
                u64::try_from(get_i64(&d, "version")?).unwrap_or(0),
                get_bin(&d, "index_mac")?,
                get_bin(&d, "value_mac")?,
            ));
        }
        let mut groups: Vec<String> = self
            .find_all(SENDER_KEY_DEVICES, doc! {}, None)
            .await?
            .iter()
            .filter_map(|d| match d.get("group_jid") {
                Some(Bson::String(s)) => Some(s.clone()),
                _ => None,
            })
            .collect();
        groups.sort();
        groups.dedup();
        keys.sender_key_groups = groups;
        for d in self.find_all(MSG_SECRETS, doc! {}, None).await? {
            let expires_at = get_i64(&d, "expires_at")?;
            keys.msg_secrets.push(MsgSecretRow {
                chat: get_str(&d, "chat")?,
                sender: get_str(&d, "sender")?,
                msg_id: get_str(&d, "msg_id")?,
                secret: get_bin(&d, "secret")?,
                // "Never" is stored as the largest deadline here, `0` in the trait.
                expires_at: if expires_at == MSG_SECRET_NEVER {
                    0
                } else {
                    expires_at
                },
                message_ts: get_i64(&d, "message_ts")?,
            });
        }
        Ok(keys)
    }
}
