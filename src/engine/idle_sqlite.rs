//! A session's embedded device store (`whatsapp.db`) that closes its SQLite connection when
//! the session has not touched its keys for a while, and reopens it on the next use.
//!
//! Why: whatsapp-rust's `SqliteStore` keeps one connection open for the client's lifetime,
//! and in WAL mode that is three descriptors (database, `-wal`, `-shm`) plus the page cache
//! it filled while pairing (a batch of pre-keys). An idle `WORKING` session needs none of it: with
//! the connection closed it holds only its WhatsApp socket (issue 16: ≤ 2 descriptors and
//! ≤ 0.25 MiB per idle session). Durability is untouched: the same store, journal mode and
//! `synchronous` level serve every write; closing the last connection checkpoints the WAL
//! into the database file (SQLite then removes `-wal` and `-shm`).
//!
//! Owns: the open store (or none), its last use, and the closing loop
//! [`IdleSqlite::close_when_idle`]. Built by `engine::run` for an embedded device store,
//! handed to whatsapp-rust as its backend; the loop runs on the session's task tracker and
//! ends with the session (its cancellation token). Lives as long as the client.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Mutex, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use whatsapp_rust::async_trait;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::store::SqliteStore;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::reporting_token::MESSAGE_SECRET_SIZE;
use whatsapp_rust::wacore::stats::StorageResourceReport;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::error::Result;
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, AppSyncStore, DeviceListRecord, DeviceStore, LidPnMappingEntry,
    MsgSecretEntry, MsgSecretStore, PendingInboundKey, PendingInboundRow, ProtocolStore,
    SignalStore, TcTokenEntry,
};

/// The device store of one session, open only while in use (see the module docs).
pub struct IdleSqlite {
    /// `{session folder}/whatsapp.db`.
    path: PathBuf,
    /// Close after this long without an operation.
    idle: Duration,
    slot: Mutex<Slot>,
    /// Wakes the closing loop when the store is (re)opened.
    opened: Notify,
}

/// The open store, if any, and when it was last handed out.
struct Slot {
    store: Option<Arc<SqliteStore>>,
    last_used: Instant,
}

impl IdleSqlite {
    /// Opens the store at `path` now (so a store that cannot open fails the start, as
    /// before) and closes it after `idle` without use.
    ///
    /// # Errors
    /// The store could not be opened or migrated.
    pub async fn open(path: PathBuf, idle: Duration) -> Result<Arc<Self>> {
        let store = open_store(&path).await?;
        Ok(Arc::new(Self {
            path,
            idle,
            slot: Mutex::new(Slot {
                store: Some(store),
                last_used: Instant::now(),
            }),
            opened: Notify::new(),
        }))
    }

    /// Whether the connection is open right now (tests and the bench look at descriptors;
    /// this says the same from inside).
    pub async fn is_open(&self) -> bool {
        self.slot.lock().await.store.is_some()
    }

    /// The open store, reopened if it was closed; marks it used.
    async fn store(&self) -> Result<Arc<SqliteStore>> {
        let mut slot = self.slot.lock().await;
        slot.last_used = Instant::now();
        if let Some(store) = &slot.store {
            return Ok(store.clone());
        }
        let store = open_store(&self.path).await?;
        slot.store = Some(store.clone());
        // Opened under the lock: the loop sees `last_used` of this very use.
        slot.last_used = Instant::now();
        drop(slot);
        self.opened.notify_one();
        Ok(store)
    }

    /// Closes the connection whenever nothing used it for `idle`; ends on `cancel`. Run on
    /// the session's task tracker (joined on stop).
    pub async fn close_when_idle(self: Arc<Self>, cancel: CancellationToken) {
        loop {
            let due = {
                let slot = self.slot.lock().await;
                slot.store.as_ref().map(|_| slot.last_used + self.idle)
            };
            let Some(due) = due else {
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.opened.notified() => continue,
                }
            };
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep_until(due) => {}
            }
            let closing = {
                let mut slot = self.slot.lock().await;
                // Not while an operation still holds the store (two connections to one
                // file would contend for its write lock); the next round retries.
                let idle_now = slot.last_used.elapsed() >= self.idle;
                match slot.store.take() {
                    Some(store) if idle_now && Arc::strong_count(&store) == 1 => Some(store),
                    other => {
                        slot.store = other;
                        if idle_now {
                            // Busy past the idle time: look again a little later.
                            slot.last_used = Instant::now();
                        }
                        None
                    }
                }
            };
            if let Some(store) = closing {
                // Closing checkpoints the WAL (file I/O): off the async threads.
                let _ = tokio::task::spawn_blocking(move || drop(store)).await;
                tracing::debug!(path = %self.path.display(), "device store closed while idle");
            }
        }
    }
}

async fn open_store(path: &std::path::Path) -> Result<Arc<SqliteStore>> {
    SqliteStore::new(&path.to_string_lossy())
        .await
        .map(Arc::new)
}

/// Forwards each listed method to the open store. Every method of the traits is listed,
/// defaults included, so the store's own (batched) versions always run.
macro_rules! forward {
    ($trait:ident { $(fn $name:ident(&self $(, $arg:ident: $ty:ty)*) -> $ret:ty;)* }) => {
        #[async_trait]
        impl $trait for IdleSqlite {
            $(
                async fn $name(&self $(, $arg: $ty)*) -> $ret {
                    self.store().await?.$name($($arg),*).await
                }
            )*
        }
    };
}

forward!(SignalStore {
    fn put_identity(&self, address: &str, key: [u8; 32]) -> Result<()>;
    fn put_identities_batch(&self, identities: &[(Arc<str>, [u8; 32])]) -> Result<()>;
    fn load_identity(&self, address: &str) -> Result<Option<[u8; 32]>>;
    fn delete_identity(&self, address: &str) -> Result<()>;
    fn get_session(&self, address: &str) -> Result<Option<Bytes>>;
    fn put_session(&self, address: &str, session: &[u8]) -> Result<()>;
    fn put_sessions_batch(&self, sessions: &[(Arc<str>, Bytes)]) -> Result<()>;
    fn delete_session(&self, address: &str) -> Result<()>;
    fn has_session(&self, address: &str) -> Result<bool>;
    fn has_signal_state_for_user(&self, user: &str) -> Result<bool>;
    fn store_prekey(&self, id: u32, record: &[u8], uploaded: bool) -> Result<()>;
    fn store_prekeys_batch(&self, keys: &[(u32, Bytes)], uploaded: bool) -> Result<()>;
    fn load_prekey(&self, id: u32) -> Result<Option<Bytes>>;
    fn load_prekeys_batch(&self, ids: &[u32]) -> Result<Vec<(u32, Bytes)>>;
    fn mark_prekeys_uploaded(&self, ids: &[u32]) -> Result<()>;
    fn remove_prekey(&self, id: u32) -> Result<()>;
    fn get_max_prekey_id(&self) -> Result<u32>;
    fn store_signed_prekey(&self, id: u32, record: &[u8]) -> Result<()>;
    fn load_signed_prekey(&self, id: u32) -> Result<Option<Vec<u8>>>;
    fn load_all_signed_prekeys(&self) -> Result<Vec<(u32, Vec<u8>)>>;
    fn remove_signed_prekey(&self, id: u32) -> Result<()>;
    fn put_sender_key(&self, address: &str, record: &[u8]) -> Result<()>;
    fn put_sender_keys_batch(&self, sender_keys: &[(Arc<str>, Bytes)]) -> Result<()>;
    fn get_sender_key(&self, address: &str) -> Result<Option<Vec<u8>>>;
    fn delete_sender_key(&self, address: &str) -> Result<()>;
});

forward!(AppSyncStore {
    fn get_sync_key(&self, key_id: &[u8]) -> Result<Option<AppStateSyncKey>>;
    fn set_sync_key(&self, key_id: &[u8], key: AppStateSyncKey) -> Result<()>;
    fn get_version(&self, name: &str) -> Result<HashState>;
    fn set_version(&self, name: &str, state: HashState) -> Result<()>;
    fn put_mutation_macs(&self, name: &str, version: u64, mutations: &[AppStateMutationMAC]) -> Result<()>;
    fn get_mutation_mac(&self, name: &str, index_mac: &[u8]) -> Result<Option<Vec<u8>>>;
    fn get_mutation_macs(&self, name: &str, index_macs: &[[u8; 32]]) -> Result<HashMap<[u8; 32], Vec<u8>>>;
    fn delete_mutation_macs(&self, name: &str, index_macs: &[Vec<u8>]) -> Result<()>;
    fn clear_mutation_macs(&self, name: &str) -> Result<()>;
    fn get_latest_sync_key_id(&self) -> Result<Option<Vec<u8>>>;
});

forward!(ProtocolStore {
    fn get_sender_key_devices(&self, group_jid: &str) -> Result<Vec<(String, bool)>>;
    fn set_sender_key_status(&self, group_jid: &str, entries: &[(&str, bool)]) -> Result<()>;
    fn clear_sender_key_devices(&self, group_jid: &str) -> Result<()>;
    fn delete_sender_key_device_rows(&self, device_jids: &[&str]) -> Result<()>;
    fn clear_all_sender_key_devices(&self) -> Result<()>;
    fn get_lid_mapping(&self, lid: &str) -> Result<Option<LidPnMappingEntry>>;
    fn get_pn_mapping(&self, phone: &str) -> Result<Option<LidPnMappingEntry>>;
    fn put_lid_mapping(&self, entry: &LidPnMappingEntry) -> Result<()>;
    fn put_lid_mappings(&self, entries: &[LidPnMappingEntry]) -> Result<()>;
    fn get_all_lid_mappings(&self) -> Result<Vec<LidPnMappingEntry>>;
    fn save_base_key(&self, address: &str, message_id: &str, base_key: &[u8]) -> Result<()>;
    fn has_same_base_key(&self, address: &str, message_id: &str, current_base_key: &[u8]) -> Result<bool>;
    fn delete_base_key(&self, address: &str, message_id: &str) -> Result<()>;
    fn update_device_list(&self, record: DeviceListRecord) -> Result<()>;
    fn update_device_lists(&self, records: Vec<DeviceListRecord>) -> Result<()>;
    fn get_devices(&self, user: &str) -> Result<Option<DeviceListRecord>>;
    fn delete_devices(&self, user: &str) -> Result<()>;
    fn get_group_metadata(&self, group_jid: &str) -> Result<Option<Vec<u8>>>;
    fn put_group_metadata(&self, group_jid: &str, blob: &[u8]) -> Result<()>;
    fn delete_group_metadata(&self, group_jid: &str) -> Result<()>;
    fn get_tc_token(&self, jid: &str) -> Result<Option<TcTokenEntry>>;
    fn put_tc_token(&self, jid: &str, entry: &TcTokenEntry) -> Result<()>;
    fn delete_tc_token(&self, jid: &str) -> Result<()>;
    fn get_all_tc_token_jids(&self) -> Result<Vec<String>>;
    fn delete_expired_tc_tokens(&self, token_cutoff: i64, sender_cutoff: i64) -> Result<u32>;
    fn touch_tc_token_sender_timestamp(&self, jid: &str, sender_timestamp: i64) -> Result<()>;
    fn store_received_tc_token(&self, jid: &str, token: &[u8], token_timestamp: i64) -> Result<()>;
    fn store_sent_message(&self, chat_jid: &str, message_id: &str, payload: &[u8]) -> Result<()>;
    fn take_sent_message(&self, chat_jid: &str, message_id: &str) -> Result<Option<Vec<u8>>>;
    fn delete_expired_sent_messages(&self, cutoff_timestamp: i64) -> Result<u32>;
    fn store_pending_inbound(&self, chat: &str, sender: &str, id: &str, message: &[u8]) -> Result<()>;
    fn get_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<Option<Vec<u8>>>;
    fn delete_pending_inbound(&self, chat: &str, sender: &str, id: &str) -> Result<()>;
    fn delete_expired_pending_inbound(&self, cutoff_timestamp: i64) -> Result<u32>;
    fn store_pending_inbound_batch(&self, rows: &[PendingInboundRow<'_>]) -> Result<()>;
    fn delete_pending_inbound_batch(&self, keys: &[PendingInboundKey<'_>]) -> Result<()>;
});

forward!(MsgSecretStore {
    fn put_msg_secret(&self, chat: &str, sender: &str, msg_id: &str, secret: &[u8; MESSAGE_SECRET_SIZE]) -> Result<()>;
    fn put_msg_secrets(&self, entries: Vec<MsgSecretEntry>) -> Result<usize>;
    fn get_msg_secret(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<Vec<u8>>>;
    fn get_msg_secret_with_ts(&self, chat: &str, sender: &str, msg_id: &str) -> Result<Option<(Vec<u8>, i64)>>;
    fn delete_expired_msg_secrets(&self, cutoff_timestamp: i64) -> Result<u32>;
});

#[async_trait]
impl DeviceStore for IdleSqlite {
    async fn save(&self, device: &Device) -> Result<()> {
        self.store().await?.save(device).await
    }

    async fn load(&self) -> Result<Option<Device>> {
        self.store().await?.load().await
    }

    async fn exists(&self) -> Result<bool> {
        self.store().await?.exists().await
    }

    async fn create(&self) -> Result<i32> {
        self.store().await?.create().await
    }

    async fn snapshot_db(&self, name: &str, extra_content: Option<&[u8]>) -> Result<()> {
        self.store().await?.snapshot_db(name, extra_content).await
    }

    /// A closed store holds no cache to report; reporting must not reopen it.
    async fn resource_report(&self) -> StorageResourceReport {
        let open = self.slot.lock().await.store.clone();
        match open {
            Some(store) => store.resource_report().await,
            None => StorageResourceReport::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls `open` until it equals `want` (5 s deadline).
    async fn wait_open(store: &IdleSqlite, want: bool) {
        let until = Instant::now() + Duration::from_secs(5);
        while store.is_open().await != want {
            assert!(Instant::now() < until, "store open = {want} within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn closes_only_idle_and_unheld_then_reopens_with_the_data() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("whatsapp.db");
        let store = IdleSqlite::open(path.clone(), Duration::from_millis(50))
            .await
            .expect("open");
        let cancel = CancellationToken::new();
        let task = tokio::spawn(store.clone().close_when_idle(cancel.clone()));
        store.put_identity("peer.0", [7; 32]).await.expect("write");

        // An operation still holding the store keeps it open past several idle periods.
        let held = store.store().await.expect("store");
        let until = Instant::now() + Duration::from_millis(300);
        while Instant::now() < until {
            assert!(store.is_open().await, "closed while held");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        drop(held);
        wait_open(&store, false).await;
        // Closed means closed: the last connection (dropped just after leaving the slot)
        // checkpoints and takes the WAL and shared memory away.
        let until = Instant::now() + Duration::from_secs(5);
        while ["whatsapp.db-wal", "whatsapp.db-shm"]
            .iter()
            .any(|f| dir.path().join(f).exists())
        {
            assert!(Instant::now() < until, "WAL and shm removed within 5 s");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }

        // The next operation reopens it and reads what was written before the close.
        let key = store.load_identity("peer.0").await.expect("read");
        assert_eq!(key, Some([7; 32]));
        assert!(store.is_open().await);
        wait_open(&store, false).await;

        cancel.cancel();
        task.await.expect("loop ends on cancel");
    }
}
