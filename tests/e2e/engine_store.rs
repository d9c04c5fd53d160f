//! whatsapp-rust's device/crypto storage on MongoDB (`wharf::engine::mongo_store`).
//!
//! Owns: the behavioural cases of every store trait (the semantics the reference InMemory
//! and SQLite stores pin: atomic take, update-only prekey marking, msg-secret merges,
//! newest LID per phone, `$max` sender bucket, newer-wins received tokens) and session
//! isolation. Each test opens a store on a fresh database of the binary's shared MongoDB
//! (`support::mongo`) with a client of its own, and drops the namespace when it passes.
//! Nothing here sleeps.

use std::collections::HashMap;
use std::sync::Arc;

use mongodb::Client;
use mongodb::bson::{Document, doc};
use wharf::engine::mongo_store::MongoDeviceStore;
use whatsapp_rust::bytes::Bytes;
use whatsapp_rust::store::persistence_manager::PersistenceManager;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::appstate::processor::AppStateMutationMAC;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::device::{CachedNoiseCert, CachedServerCertChain, DEVICE_PROPS};
use whatsapp_rust::wacore::store::error::StoreError;
use whatsapp_rust::wacore::store::traits::{
    AppStateSyncKey, AppSyncStore, DeviceInfo, DeviceListRecord, DeviceStore, LidPnMappingEntry,
    MsgSecretEntry, MsgSecretStore, PendingInboundKey, PendingInboundRow, ProtocolStore,
    SignalStore, TcTokenEntry, merge_msg_secret_expiry,
};
use whatsapp_rust::waproto::whatsapp as wa;

use crate::support::mongo::{MongoServer, drop_namespace};

/// A store on a fresh session database, plus what is needed to look underneath.
struct Fixture {
    client: Client,
    ns: String,
    store: MongoDeviceStore,
}

impl Fixture {
    /// `None` (test skipped) when no MongoDB is configured.
    async fn new(test: &str) -> Option<Self> {
        let server = MongoServer::shared(test)?;
        let ns = server.unique_namespace();
        let client = Client::with_uri_str(server.url())
            .await
            .expect("mongodb client");
        let store = MongoDeviceStore::open(client.database(&format!("waha_{ns}_default")))
            .await
            .expect("open store");
        Some(Self { client, ns, store })
    }

    /// Another session's store in the same namespace.
    async fn other_session(&self, session: &str) -> MongoDeviceStore {
        MongoDeviceStore::open(self.client.database(&format!("waha_{}_{session}", self.ns)))
            .await
            .expect("open second store")
    }

    /// A raw document of this session's database.
    async fn raw(&self, coll: &str, filter: Document) -> Option<Document> {
        self.store
            .database()
            .collection::<Document>(coll)
            .find_one(filter)
            .await
            .expect("raw find")
    }

    async fn finish(self) {
        drop_namespace(&self.client, &self.ns).await;
    }
}

macro_rules! fixture {
    ($name:literal) => {
        match Fixture::new(concat!("engine_store::", $name)).await {
            Some(f) => f,
            None => return,
        }
    };
}

fn arc(s: &str) -> Arc<str> {
    Arc::from(s)
}

// ---------------------------------------------------------------------------------------
// Lifecycle and isolation
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_twice_on_same_database_keeps_indexes() {
    let f = fixture!("open_twice_on_same_database_keeps_indexes");
    let again = MongoDeviceStore::open(f.store.database().clone())
        .await
        .expect("second open is idempotent");
    let names = again
        .database()
        .collection::<Document>("wa_msg_secrets")
        .list_index_names()
        .await
        .expect("list indexes");
    assert!(
        names.contains(&"chat_sender_msg_id".to_owned()),
        "{names:?}"
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_with_unreachable_server_returns_connection_error() {
    // Port 1 on loopback refuses at once; selection gives up after 300 ms.
    let client = Client::with_uri_str(
        "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
    )
    .await
    .expect("client (no I/O yet)");
    let err = MongoDeviceStore::open(client.database("waha_unreachable_default"))
        .await
        .expect_err("no server");
    assert!(matches!(err, StoreError::Connection(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identities_on_two_databases_are_isolated() {
    let f = fixture!("identities_on_two_databases_are_isolated");
    let other = f.other_session("second").await;
    let addr = "15550000001:1@s.whatsapp.net";
    f.store.put_identity(addr, [1; 32]).await.expect("put a");
    assert_eq!(other.load_identity(addr).await.expect("load b"), None);
    other.put_identity(addr, [2; 32]).await.expect("put b");
    assert_eq!(
        f.store.load_identity(addr).await.expect("load a"),
        Some([1; 32])
    );
    assert_eq!(
        other.load_identity(addr).await.expect("load b"),
        Some([2; 32])
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_after_database_drop_starts_empty_with_indexes() {
    let f = fixture!("open_after_database_drop_starts_empty_with_indexes");
    // Logout wipes a session by dropping its database; the next start opens it afresh.
    f.store.create().await.expect("create");
    f.store.put_session("a@lid", b"r").await.expect("session");
    f.store.database().drop().await.expect("drop database");
    let reopened = MongoDeviceStore::open(f.store.database().clone())
        .await
        .expect("reopen");
    assert!(!reopened.exists().await.expect("exists"));
    assert!(!reopened.has_session("a@lid").await.expect("session"));
    let names = reopened
        .database()
        .collection::<Document>("wa_sent_messages")
        .list_index_names()
        .await
        .expect("indexes");
    assert!(
        names.contains(&"chat_jid_message_id".to_owned()),
        "{names:?}"
    );
    f.finish().await;
}

// ---------------------------------------------------------------------------------------
// DeviceStore
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_on_empty_database_returns_none() {
    let f = fixture!("load_on_empty_database_returns_none");
    assert!(!f.store.exists().await.expect("exists"));
    assert!(f.store.load().await.expect("load").is_none());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_empty_database_makes_loadable_device() {
    let f = fixture!("create_on_empty_database_makes_loadable_device");
    assert_eq!(f.store.create().await.expect("create"), 1);
    assert!(f.store.exists().await.expect("exists"));
    let device = f.store.load().await.expect("load").expect("device");
    assert_eq!(device.next_pre_key_id, 1);
    assert!(device.account.is_none());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_then_load_round_trips_every_field() {
    let f = fixture!("save_then_load_round_trips_every_field");
    let mut device = Device::new();
    device.pn = Some("15550000001@s.whatsapp.net".parse().expect("pn"));
    device.lid = Some("100000012345678:7@lid".parse().expect("lid"));
    device.registration_id = u32::MAX >> 1;
    device.signed_pre_key_id = 42;
    device.account = Some(Arc::new(wa::ADVSignedDeviceIdentity {
        details: Some(vec![1, 2, 3]),
        account_signature_key: Some(vec![4; 32]),
        account_signature: Some(vec![5; 64]),
        device_signature: Some(vec![6; 64]),
    }));
    device.push_name = "Wharf Ünïcode ✓".into();
    device.app_version_tertiary = 1_042_742_319;
    device.app_version_last_fetched_ms = 1_763_000_000_123;
    device.edge_routing_info = Some(vec![9, 8, 7]);
    device.props_hash = Some("abc".into());
    device.next_pre_key_id = 812;
    device.first_unupload_pre_key_id = 700;
    device.server_has_prekeys = true;
    device.nct_salt = Some(vec![0; 16]);
    device.server_cert_chain = Some(CachedServerCertChain {
        intermediate: CachedNoiseCert {
            key: [3; 32],
            not_before: 1,
            not_after: 2,
        },
        leaf: CachedNoiseCert {
            key: [4; 32],
            not_before: 3,
            not_after: i64::MAX,
        },
    });
    device.login_counter = 17;
    device.lid_migrated = true;
    device.last_signed_pre_key_rotation_ms = 1_763_000_000_000;
    device.read_receipts_disabled = true;

    f.store.save(&device).await.expect("save");
    let loaded = f.store.load().await.expect("load").expect("device");
    assert_eq!(
        serde_json::to_value(&loaded).expect("json"),
        serde_json::to_value(&device).expect("json"),
    );
    // Runtime-only fields come back as the library sets them up.
    assert!(*loaded.device_props == *DEVICE_PROPS);

    // A second save replaces the first.
    device.push_name = "renamed".into();
    f.store.save(&device).await.expect("save again");
    let loaded = f.store.load().await.expect("load").expect("device");
    assert_eq!(loaded.push_name, "renamed");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_on_saved_device_keeps_its_keys() {
    let f = fixture!("create_on_saved_device_keeps_its_keys");
    let mut device = Device::new();
    device.push_name = "paired".into();
    f.store.save(&device).await.expect("save");
    f.store.create().await.expect("create");
    let loaded = f.store.load().await.expect("load").expect("device");
    assert_eq!(loaded.push_name, "paired");
    assert_eq!(
        serde_json::to_value(&loaded).expect("json"),
        serde_json::to_value(&device).expect("json"),
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_manager_reopened_keeps_identity_and_changes() {
    let f = fixture!("persistence_manager_reopened_keeps_identity_and_changes");
    // How whatsapp-rust itself drives the store: exists → create → load, then saves.
    let first = PersistenceManager::new(Arc::new(f.store.clone()))
        .await
        .expect("first start");
    let identity = first.get_device_snapshot().identity_key.public_key;
    first
        .modify_device(|d| d.push_name = "after pairing".into())
        .await;
    first.flush().await.expect("flush");
    drop(first);

    let reopened = MongoDeviceStore::open(f.store.database().clone())
        .await
        .expect("reopen store");
    let second = PersistenceManager::new(Arc::new(reopened))
        .await
        .expect("second start");
    let device = second.get_device_snapshot();
    assert_eq!(device.identity_key.public_key, identity);
    assert_eq!(device.push_name, "after pairing");
    f.finish().await;
}

// ---------------------------------------------------------------------------------------
// SignalStore
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_put_load_delete_round_trips() {
    let f = fixture!("identity_put_load_delete_round_trips");
    let s = &f.store;
    let addr = "15550000001@s.whatsapp.net";
    assert_eq!(s.load_identity(addr).await.expect("load"), None);
    s.put_identity(addr, [7; 32]).await.expect("put");
    s.put_identity(addr, [8; 32]).await.expect("overwrite");
    assert_eq!(s.load_identity(addr).await.expect("load"), Some([8; 32]));
    s.delete_identity(addr).await.expect("delete");
    assert_eq!(s.load_identity(addr).await.expect("load"), None);

    s.put_identities_batch(&[(arc("a@s.whatsapp.net"), [1; 32]), (arc("b@lid"), [2; 32])])
        .await
        .expect("batch");
    s.put_identities_batch(&[(arc("a@s.whatsapp.net"), [3; 32])])
        .await
        .expect("batch overwrite");
    assert_eq!(
        s.load_identity("a@s.whatsapp.net").await.expect("a"),
        Some([3; 32])
    );
    assert_eq!(s.load_identity("b@lid").await.expect("b"), Some([2; 32]));
    s.put_identities_batch(&[]).await.expect("empty batch");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_put_get_has_delete_round_trips() {
    let f = fixture!("session_put_get_has_delete_round_trips");
    let s = &f.store;
    let addr = "15550000001:3@s.whatsapp.net";
    assert!(!s.has_session(addr).await.expect("has"));
    assert_eq!(s.get_session(addr).await.expect("get"), None);
    s.put_session(addr, b"record-1").await.expect("put");
    assert!(s.has_session(addr).await.expect("has"));
    assert_eq!(
        s.get_session(addr).await.expect("get"),
        Some(Bytes::from_static(b"record-1"))
    );
    s.delete_session(addr).await.expect("delete");
    assert!(!s.has_session(addr).await.expect("has"));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_batch_put_inserts_and_overwrites() {
    let f = fixture!("sessions_batch_put_inserts_and_overwrites");
    let s = &f.store;
    let first = arc("15550000001:1@s.whatsapp.net");
    let second = arc("15550000002:2@s.whatsapp.net");
    s.put_sessions_batch(&[
        (first.clone(), Bytes::from_static(b"first")),
        (second.clone(), Bytes::from_static(b"second")),
    ])
    .await
    .expect("batch");
    s.put_sessions_batch(&[(first.clone(), Bytes::from_static(b"updated"))])
        .await
        .expect("batch update");
    assert_eq!(
        s.get_session(&first).await.expect("first"),
        Some(Bytes::from_static(b"updated"))
    );
    assert_eq!(
        s.get_session(&second).await.expect("second"),
        Some(Bytes::from_static(b"second"))
    );

    // Larger than one command's chunk.
    let many: Vec<(Arc<str>, Bytes)> = (0..2500)
        .map(|i| {
            (
                arc(&format!("1555{i:07}@s.whatsapp.net")),
                Bytes::from(vec![1u8; 64]),
            )
        })
        .collect();
    s.put_sessions_batch(&many).await.expect("big batch");
    assert!(
        s.has_session("15550002499@s.whatsapp.net")
            .await
            .expect("has last")
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn has_signal_state_for_user_matches_only_that_user() {
    let f = fixture!("has_signal_state_for_user_matches_only_that_user");
    let s = &f.store;
    assert!(!s.has_signal_state_for_user("1555").await.expect("empty"));
    s.put_session("1555:2@s.whatsapp.net", b"r")
        .await
        .expect("session");
    s.put_identity("777@lid", [1; 32]).await.expect("identity");
    assert!(
        s.has_signal_state_for_user("1555")
            .await
            .expect("device address")
    );
    assert!(
        s.has_signal_state_for_user("777")
            .await
            .expect("identity only")
    );
    assert!(!s.has_signal_state_for_user("155").await.expect("prefix"));
    assert!(!s.has_signal_state_for_user("15").await.expect("prefix"));
    assert!(
        !s.has_signal_state_for_user("1.5")
            .await
            .expect("regex metachar")
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekey_store_load_remove_round_trips() {
    let f = fixture!("prekey_store_load_remove_round_trips");
    let s = &f.store;
    assert_eq!(s.get_max_prekey_id().await.expect("max"), 0);
    s.store_prekey(5, b"five", false).await.expect("store");
    s.store_prekey(u32::MAX, b"max", true)
        .await
        .expect("store max id");
    assert_eq!(
        s.load_prekey(5).await.expect("load"),
        Some(Bytes::from_static(b"five"))
    );
    assert_eq!(s.get_max_prekey_id().await.expect("max"), u32::MAX);
    s.remove_prekey(u32::MAX).await.expect("remove");
    assert_eq!(s.load_prekey(u32::MAX).await.expect("load"), None);
    assert_eq!(s.get_max_prekey_id().await.expect("max"), 5);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekeys_batch_load_returns_only_existing_in_request_order() {
    let f = fixture!("prekeys_batch_load_returns_only_existing_in_request_order");
    let s = &f.store;
    let keys: Vec<(u32, Bytes)> = (1..=10)
        .map(|i| (i, Bytes::from(vec![u8::try_from(i).expect("small"); 33])))
        .collect();
    s.store_prekeys_batch(&keys, false).await.expect("batch");
    assert_eq!(s.get_max_prekey_id().await.expect("max"), 10);
    let got = s
        .load_prekeys_batch(&[9, 11, 2, 3])
        .await
        .expect("load batch");
    let ids: Vec<u32> = got.iter().map(|(id, _)| *id).collect();
    assert_eq!(ids, vec![9, 2, 3]);
    assert_eq!(got[0].1, Bytes::from(vec![9u8; 33]));
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mark_prekeys_uploaded_after_remove_never_resurrects() {
    let f = fixture!("mark_prekeys_uploaded_after_remove_never_resurrects");
    let s = &f.store;
    s.store_prekeys_batch(
        &[(1, Bytes::from_static(b"a")), (2, Bytes::from_static(b"b"))],
        false,
    )
    .await
    .expect("batch");
    s.remove_prekey(1).await.expect("consume 1");
    s.mark_prekeys_uploaded(&[1, 2, 3]).await.expect("mark");
    assert_eq!(s.load_prekey(1).await.expect("load 1"), None);
    assert_eq!(s.load_prekey(3).await.expect("load 3"), None);
    let row = f
        .raw("wa_prekeys", doc! {"_id": 2_i64})
        .await
        .expect("row 2");
    assert_eq!(row.get_bool("uploaded"), Ok(true));
    s.mark_prekeys_uploaded(&[]).await.expect("empty mark");
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_prekey_store_load_all_remove_round_trips() {
    let f = fixture!("signed_prekey_store_load_all_remove_round_trips");
    let s = &f.store;
    s.store_signed_prekey(2, b"two").await.expect("store 2");
    s.store_signed_prekey(1, b"one").await.expect("store 1");
    s.store_signed_prekey(2, b"two-b")
        .await
        .expect("overwrite 2");
    assert_eq!(
        s.load_signed_prekey(2).await.expect("load"),
        Some(b"two-b".to_vec())
    );
    assert_eq!(
        s.load_all_signed_prekeys().await.expect("all"),
        vec![(1, b"one".to_vec()), (2, b"two-b".to_vec())]
    );
    s.remove_signed_prekey(1).await.expect("remove");
    assert_eq!(s.load_signed_prekey(1).await.expect("load"), None);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_key_put_get_delete_round_trips() {
    let f = fixture!("sender_key_put_get_delete_round_trips");
    let s = &f.store;
    let addr = "120363000000000001@g.us::15550000001::1";
    s.put_sender_key(addr, b"sk").await.expect("put");
    assert_eq!(
        s.get_sender_key(addr).await.expect("get"),
        Some(b"sk".to_vec())
    );
    s.put_sender_keys_batch(&[
        (arc(addr), Bytes::from_static(b"sk2")),
        (arc("g2::u::0"), Bytes::from_static(b"other")),
    ])
    .await
    .expect("batch");
    assert_eq!(
        s.get_sender_key(addr).await.expect("get"),
        Some(b"sk2".to_vec())
    );
    s.delete_sender_key(addr).await.expect("delete");
    assert_eq!(s.get_sender_key(addr).await.expect("get"), None);
    assert_eq!(
        s.get_sender_key("g2::u::0").await.expect("get other"),
        Some(b"other".to_vec())
    );
    f.finish().await;
}

// ---------------------------------------------------------------------------------------
// AppSyncStore
// ---------------------------------------------------------------------------------------

fn sync_key(fill: u8) -> AppStateSyncKey {
    AppStateSyncKey {
        key_data: vec![fill; 32],
        fingerprint: vec![fill, 1, 2],
        timestamp: 1_763_000_000 + i64::from(fill),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_key_set_get_and_latest_is_greatest_id() {
    let f = fixture!("sync_key_set_get_and_latest_is_greatest_id");
    let s = &f.store;
    assert_eq!(s.get_latest_sync_key_id().await.expect("none"), None);
    assert!(
        s.get_sync_key(&[0, 0, 0, 0, 0, 1])
            .await
            .expect("get")
            .is_none()
    );
    s.set_sync_key(&[0, 0, 0, 0, 0, 2], sync_key(2))
        .await
        .expect("set 2");
    s.set_sync_key(&[0, 0, 0, 0, 1, 0], sync_key(3))
        .await
        .expect("set 3");
    // Stored last but not the greatest id: the SQLite store's rule (greatest id) wins.
    s.set_sync_key(&[0, 0, 0, 0, 0, 1], sync_key(1))
        .await
        .expect("set 1");
    let got = s
        .get_sync_key(&[0, 0, 0, 0, 1, 0])
        .await
        .expect("get")
        .expect("key");
    assert_eq!(got.key_data, vec![3; 32]);
    assert_eq!(got.fingerprint, vec![3, 1, 2]);
    assert_eq!(got.timestamp, 1_763_000_003);
    assert_eq!(
        s.get_latest_sync_key_id().await.expect("latest"),
        Some(vec![0, 0, 0, 0, 1, 0])
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_set_get_round_trips_and_missing_is_default() {
    let f = fixture!("version_set_get_round_trips_and_missing_is_default");
    let s = &f.store;
    let missing = s.get_version("regular").await.expect("missing");
    assert_eq!(missing.version, 0);
    assert_eq!(missing.hash, [0; 128]);

    let mut state = HashState {
        version: u64::from(u32::MAX) + 5,
        hash: [0; 128],
        index_value_map: HashMap::new(),
        mac_mismatch_fatal: true,
    };
    state.hash[127] = 9;
    state.index_value_map.insert("a.b$c".into(), vec![1, 2]);
    state.index_value_map.insert("AAAA+/==".into(), vec![3; 32]);
    s.set_version("regular", state.clone()).await.expect("set");
    s.set_version("critical_block", HashState::default())
        .await
        .expect("set other");
    let got = s.get_version("regular").await.expect("get");
    assert_eq!(got.version, state.version);
    assert_eq!(got.hash, state.hash);
    assert_eq!(got.index_value_map, state.index_value_map);
    assert!(got.mac_mismatch_fatal);

    state.version = 7;
    state.index_value_map.clear();
    s.set_version("regular", state).await.expect("replace");
    let got = s.get_version("regular").await.expect("get");
    assert_eq!(got.version, 7);
    assert!(got.index_value_map.is_empty());
    f.finish().await;
}

fn mac(index: u8, value: u8) -> AppStateMutationMAC {
    AppStateMutationMAC {
        index_mac: vec![index; 32],
        value_mac: vec![value; 32],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutation_macs_put_get_delete_and_clear_per_collection() {
    let f = fixture!("mutation_macs_put_get_delete_and_clear_per_collection");
    let s = &f.store;
    s.put_mutation_macs("regular", 1, &[mac(1, 10), mac(2, 20), mac(3, 30)])
        .await
        .expect("put regular");
    s.put_mutation_macs("critical_block", 1, &[mac(1, 99)])
        .await
        .expect("put critical");
    s.put_mutation_macs("regular", 2, &[mac(2, 21)])
        .await
        .expect("overwrite");

    assert_eq!(
        s.get_mutation_mac("regular", &[2; 32]).await.expect("get"),
        Some(vec![21; 32])
    );
    assert_eq!(
        s.get_mutation_mac("critical_block", &[1; 32])
            .await
            .expect("get"),
        Some(vec![99; 32])
    );
    assert_eq!(
        s.get_mutation_mac("regular", &[9; 32]).await.expect("miss"),
        None
    );

    let batch = s
        .get_mutation_macs("regular", &[[1; 32], [2; 32], [9; 32]])
        .await
        .expect("batch");
    assert_eq!(batch.len(), 2);
    assert_eq!(batch.get(&[1; 32]), Some(&vec![10; 32]));
    assert_eq!(batch.get(&[2; 32]), Some(&vec![21; 32]));
    assert!(
        s.get_mutation_macs("regular", &[])
            .await
            .expect("empty")
            .is_empty()
    );

    s.delete_mutation_macs("regular", &[vec![1; 32]])
        .await
        .expect("delete");
    assert_eq!(
        s.get_mutation_mac("regular", &[1; 32]).await.expect("get"),
        None
    );
    assert_eq!(
        s.get_mutation_mac("critical_block", &[1; 32])
            .await
            .expect("other kept"),
        Some(vec![99; 32])
    );

    s.clear_mutation_macs("regular").await.expect("clear");
    assert!(
        s.get_mutation_macs("regular", &[[2; 32], [3; 32]])
            .await
            .expect("batch")
            .is_empty()
    );
    assert_eq!(
        s.get_mutation_mac("critical_block", &[1; 32])
            .await
            .expect("other kept"),
        Some(vec![99; 32])
    );
    f.finish().await;
}

// ---------------------------------------------------------------------------------------
// ProtocolStore
// ---------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sender_key_status_set_get_clear_and_delete_rows() {
    let f = fixture!("sender_key_status_set_get_clear_and_delete_rows");
    let s = &f.store;
    let g1 = "120363000000000001@g.us";
    let g2 = "120363000000000002@g.us";
    s.set_sender_key_status(g1, &[("a:1@s.whatsapp.net", true), ("b:2@lid", false)])
        .await
        .expect("set");
    s.set_sender_key_status(g1, &[("b:2@lid", true)])
        .await
        .expect("update");
    s.set_sender_key_status(g2, &[("a:1@s.whatsapp.net", false)])
        .await
        .expect("set g2");
    s.set_sender_key_status(g2, &[]).await.expect("empty");

    let mut got = s.get_sender_key_devices(g1).await.expect("get");
    got.sort();
    assert_eq!(
        got,
        vec![
            ("a:1@s.whatsapp.net".to_owned(), true),
            ("b:2@lid".to_owned(), true)
        ]
    );

    s.delete_sender_key_device_rows(&["a:1@s.whatsapp.net"])
        .await
        .expect("delete rows");
    assert_eq!(
        s.get_sender_key_devices(g1).await.expect("g1"),
        vec![("b:2@lid".to_owned(), true)]
    );
    assert!(s.get_sender_key_devices(g2).await.expect("g2").is_empty());

    s.set_sender_key_status(g2, &[("c:3@lid", true)])
        .await
        .expect("set g2");
    s.clear_sender_key_devices(g1).await.expect("clear g1");
    assert!(s.get_sender_key_devices(g1).await.expect("g1").is_empty());
    assert_eq!(s.get_sender_key_devices(g2).await.expect("g2").len(), 1);
    s.clear_all_sender_key_devices().await.expect("clear all");
    assert!(s.get_sender_key_devices(g2).await.expect("g2").is_empty());
    f.finish().await;
}

fn lid_entry(lid: &str, phone: &str, created: i64, updated: i64) -> LidPnMappingEntry {
    LidPnMappingEntry {
        lid: lid.into(),
        phone_number: phone.into(),
        created_at: created,
        updated_at: updated,
        learning_source: "usync".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pn_mapping_with_several_lids_returns_newest() {
    let f = fixture!("pn_mapping_with_several_lids_returns_newest");
    let s = &f.store;
    assert!(
        s.get_pn_mapping("15550000001")
            .await
            .expect("miss")
            .is_none()
    );
    s.put_lid_mapping(&lid_entry("100", "15550000001", 10, 10))
        .await
        .expect("put old");
    s.put_lid_mappings(&[
        lid_entry("300", "15550000001", 30, 30),
        lid_entry("200", "15550000001", 20, 20),
        lid_entry("400", "15550000002", 5, 5),
    ])
    .await
    .expect("batch");
    let newest = s
        .get_pn_mapping("15550000001")
        .await
        .expect("get")
        .expect("mapping");
    assert_eq!(newest.lid, "300");

    // Re-learning an old LID makes it the newest; created_at stays the first one.
    let mut again = lid_entry("100", "15550000001", 99, 40);
    again.learning_source = "peer_pn_message".into();
    s.put_lid_mapping(&again).await.expect("update");
    let newest = s
        .get_pn_mapping("15550000001")
        .await
        .expect("get")
        .expect("mapping");
    assert_eq!(newest.lid, "100");
    assert_eq!(newest.created_at, 10);
    assert_eq!(newest.updated_at, 40);
    assert_eq!(newest.learning_source, "peer_pn_message");

    let by_lid = s.get_lid_mapping("400").await.expect("get").expect("400");
    assert_eq!(by_lid.phone_number, "15550000002");
    assert!(s.get_lid_mapping("999").await.expect("miss").is_none());
    let mut all: Vec<String> = s
        .get_all_lid_mappings()
        .await
        .expect("all")
        .into_iter()
        .map(|e| e.lid)
        .collect();
    all.sort();
    assert_eq!(all, vec!["100", "200", "300", "400"]);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_key_save_compare_delete_round_trips() {
    let f = fixture!("base_key_save_compare_delete_round_trips");
    let s = &f.store;
    let addr = "15550000001:1@s.whatsapp.net";
    assert!(!s.has_same_base_key(addr, "M1", b"k1").await.expect("miss"));
    s.save_base_key(addr, "M1", b"k1").await.expect("save");
    assert!(s.has_same_base_key(addr, "M1", b"k1").await.expect("same"));
    assert!(
        !s.has_same_base_key(addr, "M1", b"k2")
            .await
            .expect("other key")
    );
    assert!(
        !s.has_same_base_key(addr, "M2", b"k1")
            .await
            .expect("other msg")
    );
    s.save_base_key(addr, "M1", b"k2").await.expect("overwrite");
    assert!(s.has_same_base_key(addr, "M1", b"k2").await.expect("same"));
    s.delete_base_key(addr, "M1").await.expect("delete");
    assert!(
        !s.has_same_base_key(addr, "M1", b"k2")
            .await
            .expect("deleted")
    );
    f.finish().await;
}

fn device_list(user: &str, ids: &[u32], raw_id: Option<u32>) -> DeviceListRecord {
    DeviceListRecord {
        user: user.into(),
        devices: ids
            .iter()
            .map(|&id| DeviceInfo::new(id, Some(id + 1)).with_hosting(id == 99))
            .collect(),
        timestamp: 1_763_000_000,
        phash: raw_id.map(|r| format!("2:{r}")),
        raw_id,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_list_update_get_delete_round_trips() {
    let f = fixture!("device_list_update_get_delete_round_trips");
    let s = &f.store;
    assert!(s.get_devices("15550000001").await.expect("miss").is_none());
    s.update_device_list(device_list("15550000001", &[0, 3, 99], Some(u32::MAX)))
        .await
        .expect("update");
    s.update_device_lists(vec![
        device_list("15550000002", &[0], None),
        device_list("15550000001", &[0, 5], Some(7)),
    ])
    .await
    .expect("batch");
    let got = s
        .get_devices("15550000001")
        .await
        .expect("get")
        .expect("record");
    assert_eq!(got.raw_id, Some(7));
    assert_eq!(got.phash.as_deref(), Some("2:7"));
    assert_eq!(got.timestamp, 1_763_000_000);
    let ids: Vec<(u32, Option<u32>)> = got
        .devices
        .iter()
        .map(|d| (d.device_id, d.key_index))
        .collect();
    assert_eq!(ids, vec![(0, Some(1)), (5, Some(6))]);
    let other = s
        .get_devices("15550000002")
        .await
        .expect("get")
        .expect("record");
    assert_eq!((other.raw_id, other.phash), (None, None));

    s.update_device_list(device_list("hosted", &[99], None))
        .await
        .expect("hosted");
    let hosted = s.get_devices("hosted").await.expect("get").expect("record");
    assert!(hosted.devices[0].is_hosted);

    s.delete_devices("15550000001").await.expect("delete");
    assert!(
        s.get_devices("15550000001")
            .await
            .expect("deleted")
            .is_none()
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_metadata_put_get_delete_round_trips() {
    let f = fixture!("group_metadata_put_get_delete_round_trips");
    let s = &f.store;
    let jid = "120363000000000001@g.us";
    assert!(s.get_group_metadata(jid).await.expect("miss").is_none());
    s.put_group_metadata(jid, b"blob-v1").await.expect("put");
    s.put_group_metadata(jid, b"blob-v2")
        .await
        .expect("put again");
    assert_eq!(
        s.get_group_metadata(jid).await.expect("get"),
        Some(b"blob-v2".to_vec())
    );
    s.delete_group_metadata(jid).await.expect("delete");
    assert!(s.get_group_metadata(jid).await.expect("deleted").is_none());
    f.finish().await;
}

fn tc(token: &[u8], token_ts: i64, sender_ts: Option<i64>) -> TcTokenEntry {
    TcTokenEntry {
        token: token.to_vec(),
        token_timestamp: token_ts,
        sender_timestamp: sender_ts,
    }
}

fn tc_tuple(e: Option<TcTokenEntry>) -> Option<(Vec<u8>, i64, Option<i64>)> {
    e.map(|e| (e.token, e.token_timestamp, e.sender_timestamp))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tc_token_put_get_delete_and_list_round_trips() {
    let f = fixture!("tc_token_put_get_delete_and_list_round_trips");
    let s = &f.store;
    assert!(s.get_tc_token("a@lid").await.expect("miss").is_none());
    s.put_tc_token("a@lid", &tc(b"t1", 100, Some(50)))
        .await
        .expect("put a");
    s.put_tc_token("b@lid", &tc(b"t2", 200, None))
        .await
        .expect("put b");
    s.put_tc_token("a@lid", &tc(b"t3", 300, None))
        .await
        .expect("overwrite a");
    assert_eq!(
        tc_tuple(s.get_tc_token("a@lid").await.expect("get")),
        Some((b"t3".to_vec(), 300, None))
    );
    let mut jids = s.get_all_tc_token_jids().await.expect("jids");
    jids.sort();
    assert_eq!(jids, vec!["a@lid", "b@lid"]);
    s.delete_tc_token("a@lid").await.expect("delete");
    assert!(s.get_tc_token("a@lid").await.expect("deleted").is_none());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn touch_tc_sender_timestamp_concurrent_keeps_max_and_token() {
    let f = fixture!("touch_tc_sender_timestamp_concurrent_keeps_max_and_token");
    let s = &f.store;
    // Missing row: a byte-less placeholder.
    s.touch_tc_token_sender_timestamp("new@lid", 500)
        .await
        .expect("touch new");
    assert_eq!(
        tc_tuple(s.get_tc_token("new@lid").await.expect("get")),
        Some((Vec::new(), 500, Some(500)))
    );

    // Existing real token without a sender bucket: the token stays, the bucket is set.
    s.put_tc_token("a@lid", &tc(b"real", 100, None))
        .await
        .expect("put");
    let tasks: Vec<_> = (1..=20)
        .map(|i| {
            let store = s.clone();
            tokio::spawn(async move {
                store
                    .touch_tc_token_sender_timestamp("a@lid", 1000 + i * 7 % 20)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("touch");
    }
    let max = (1..=20).map(|i| 1000 + i * 7 % 20).max();
    assert_eq!(
        tc_tuple(s.get_tc_token("a@lid").await.expect("get")),
        Some((b"real".to_vec(), 100, max))
    );
    // Never regresses.
    s.touch_tc_token_sender_timestamp("a@lid", 1)
        .await
        .expect("older touch");
    assert_eq!(
        s.get_tc_token("a@lid")
            .await
            .expect("get")
            .and_then(|e| e.sender_timestamp),
        max
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn touch_tc_sender_timestamp_concurrent_on_missing_row_creates_one() {
    let f = fixture!("touch_tc_sender_timestamp_concurrent_on_missing_row_creates_one");
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20_i64)
        .map(|i| {
            let store = f.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .touch_tc_token_sender_timestamp("race@lid", 300 + i)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("touch");
    }
    let got = f
        .store
        .get_tc_token("race@lid")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(got.sender_timestamp, Some(319));
    assert!(got.token.is_empty());
    assert_eq!(
        f.store.get_all_tc_token_jids().await.expect("jids"),
        vec!["race@lid"]
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_received_tc_token_older_than_stored_is_ignored() {
    let f = fixture!("store_received_tc_token_older_than_stored_is_ignored");
    let s = &f.store;
    // New row.
    s.store_received_tc_token("a@lid", b"t200", 200)
        .await
        .expect("first");
    assert_eq!(
        tc_tuple(s.get_tc_token("a@lid").await.expect("get")),
        Some((b"t200".to_vec(), 200, None))
    );
    // Older: ignored.
    s.store_received_tc_token("a@lid", b"t100", 100)
        .await
        .expect("older");
    assert_eq!(
        tc_tuple(s.get_tc_token("a@lid").await.expect("get")),
        Some((b"t200".to_vec(), 200, None))
    );
    // Same age or newer: replaces the token and keeps the sender bucket.
    s.touch_tc_token_sender_timestamp("a@lid", 50)
        .await
        .expect("touch");
    s.store_received_tc_token("a@lid", b"t200b", 200)
        .await
        .expect("same age");
    s.store_received_tc_token("a@lid", b"t300", 300)
        .await
        .expect("newer");
    assert_eq!(
        tc_tuple(s.get_tc_token("a@lid").await.expect("get")),
        Some((b"t300".to_vec(), 300, Some(50)))
    );
    // A placeholder (from a touch) never blocks the first real token, even an older one.
    s.touch_tc_token_sender_timestamp("b@lid", 900)
        .await
        .expect("placeholder");
    s.store_received_tc_token("b@lid", b"real", 10)
        .await
        .expect("real");
    assert_eq!(
        tc_tuple(s.get_tc_token("b@lid").await.expect("get")),
        Some((b"real".to_vec(), 10, Some(900)))
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn store_received_tc_token_concurrent_writers_newest_wins() {
    let f = fixture!("store_received_tc_token_concurrent_writers_newest_wins");
    let tasks: Vec<_> = (0..20_i64)
        .map(|i| {
            let store = f.store.clone();
            tokio::spawn(async move {
                let ts = 100 + (i * 7) % 20;
                store
                    .store_received_tc_token("c@lid", format!("t{ts}").as_bytes(), ts)
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("store");
    }
    let got = f
        .store
        .get_tc_token("c@lid")
        .await
        .expect("get")
        .expect("row");
    assert_eq!(got.token_timestamp, 119);
    assert_eq!(got.token, b"t119".to_vec());
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_tc_tokens_removes_only_fully_stale_rows() {
    let f = fixture!("delete_expired_tc_tokens_removes_only_fully_stale_rows");
    let s = &f.store;
    let (token_cutoff, sender_cutoff) = (1000, 2000);
    s.put_tc_token("stale@lid", &tc(b"t", 999, None))
        .await
        .expect("put");
    s.put_tc_token("stale-both@lid", &tc(b"t", 999, Some(1999)))
        .await
        .expect("put");
    s.put_tc_token("placeholder-stale@lid", &tc(b"", 5000, Some(1999)))
        .await
        .expect("put");
    s.put_tc_token("token-live@lid", &tc(b"t", 1000, None))
        .await
        .expect("put");
    s.put_tc_token("sender-live@lid", &tc(b"t", 1, Some(2000)))
        .await
        .expect("put");
    s.put_tc_token("placeholder-live@lid", &tc(b"", 1, Some(2500)))
        .await
        .expect("put");
    let deleted = s
        .delete_expired_tc_tokens(token_cutoff, sender_cutoff)
        .await
        .expect("delete");
    assert_eq!(deleted, 3);
    let mut left = s.get_all_tc_token_jids().await.expect("jids");
    left.sort();
    assert_eq!(
        left,
        vec!["placeholder-live@lid", "sender-live@lid", "token-live@lid"]
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn take_sent_message_twice_returns_payload_once() {
    let f = fixture!("take_sent_message_twice_returns_payload_once");
    let s = &f.store;
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "M1")
            .await
            .expect("miss"),
        None
    );
    s.store_sent_message("c@s.whatsapp.net", "M1", b"v1")
        .await
        .expect("store");
    s.store_sent_message("c@s.whatsapp.net", "M1", b"v2")
        .await
        .expect("replace");
    s.store_sent_message("c@s.whatsapp.net", "M2", b"other")
        .await
        .expect("store");
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "M1")
            .await
            .expect("take"),
        Some(b"v2".to_vec())
    );
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "M1")
            .await
            .expect("again"),
        None
    );
    assert_eq!(
        s.take_sent_message("c@s.whatsapp.net", "M2")
            .await
            .expect("other"),
        Some(b"other".to_vec())
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn take_sent_message_20_concurrent_takers_exactly_one_gets_it() {
    let f = fixture!("take_sent_message_20_concurrent_takers_exactly_one_gets_it");
    f.store
        .store_sent_message("g@g.us", "RACE", b"payload")
        .await
        .expect("store");
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let store = f.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store.take_sent_message("g@g.us", "RACE").await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for t in tasks {
        if let Some(p) = t.await.expect("join").expect("take") {
            winners.push(p);
        }
    }
    assert_eq!(winners, vec![b"payload".to_vec()]);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_sent_messages_removes_older_than_cutoff() {
    let f = fixture!("delete_expired_sent_messages_removes_older_than_cutoff");
    let s = &f.store;
    s.store_sent_message("c", "M1", b"1").await.expect("store");
    s.store_sent_message("c", "M2", b"2").await.expect("store");
    // Stored "now": a cutoff in the past keeps them, one in the future removes both.
    assert_eq!(
        s.delete_expired_sent_messages(1_000_000)
            .await
            .expect("past"),
        0
    );
    assert_eq!(
        s.delete_expired_sent_messages(i64::MAX)
            .await
            .expect("future"),
        2
    );
    assert_eq!(s.take_sent_message("c", "M1").await.expect("gone"), None);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_inbound_store_get_delete_and_expire() {
    let f = fixture!("pending_inbound_store_get_delete_and_expire");
    let s = &f.store;
    s.store_pending_inbound("c", "s", "1", b"m1")
        .await
        .expect("store");
    s.store_pending_inbound_batch(&[
        PendingInboundRow {
            chat: "c",
            sender: "s",
            id: "2",
            message: b"m2",
        },
        PendingInboundRow {
            chat: "c",
            sender: "t",
            id: "2",
            message: b"m2t",
        },
    ])
    .await
    .expect("batch");
    assert_eq!(
        s.get_pending_inbound("c", "s", "1").await.expect("get"),
        Some(b"m1".to_vec())
    );
    assert_eq!(
        s.get_pending_inbound("c", "t", "2").await.expect("get"),
        Some(b"m2t".to_vec())
    );
    s.delete_pending_inbound("c", "s", "1")
        .await
        .expect("delete");
    assert_eq!(
        s.get_pending_inbound("c", "s", "1").await.expect("gone"),
        None
    );
    s.delete_pending_inbound_batch(&[PendingInboundKey {
        chat: "c",
        sender: "s",
        id: "2",
    }])
    .await
    .expect("delete batch");
    assert_eq!(
        s.get_pending_inbound("c", "s", "2").await.expect("gone"),
        None
    );
    assert_eq!(
        s.delete_expired_pending_inbound(1_000_000)
            .await
            .expect("past"),
        0
    );
    assert_eq!(
        s.delete_expired_pending_inbound(i64::MAX)
            .await
            .expect("future"),
        1
    );
    f.finish().await;
}

// ---------------------------------------------------------------------------------------
// MsgSecretStore
// ---------------------------------------------------------------------------------------

fn secret(msg_id: &str, fill: u8, expires_at: i64, message_ts: i64) -> MsgSecretEntry {
    MsgSecretEntry {
        chat: arc("c@s.whatsapp.net"),
        sender: arc("s@s.whatsapp.net"),
        msg_id: arc(msg_id),
        secret: [fill; 32],
        expires_at,
        message_ts,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn msg_secret_put_get_round_trips_and_scopes_by_three_keys() {
    let f = fixture!("msg_secret_put_get_round_trips_and_scopes_by_three_keys");
    let s = &f.store;
    let (c, snd) = ("c@s.whatsapp.net", "s@s.whatsapp.net");
    assert_eq!(s.get_msg_secret(c, snd, "M1").await.expect("miss"), None);
    s.put_msg_secret(c, snd, "M1", &[1; 32]).await.expect("put");
    assert_eq!(
        s.get_msg_secret(c, snd, "M1").await.expect("get"),
        Some(vec![1; 32])
    );
    assert_eq!(
        s.get_msg_secret(c, "other", "M1").await.expect("sender"),
        None
    );
    assert_eq!(
        s.get_msg_secret("other", snd, "M1").await.expect("chat"),
        None
    );
    assert_eq!(
        s.put_msg_secrets(vec![secret("M1", 2, 0, 0), secret("M2", 3, 0, 77)])
            .await
            .expect("batch"),
        2
    );
    assert_eq!(
        s.get_msg_secret(c, snd, "M1").await.expect("replaced"),
        Some(vec![2; 32])
    );
    assert_eq!(
        s.get_msg_secret_with_ts(c, snd, "M2")
            .await
            .expect("with ts"),
        Some((vec![3; 32], 77))
    );
    assert_eq!(s.put_msg_secrets(Vec::new()).await.expect("empty"), 0);
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn put_msg_secrets_on_conflict_merges_like_wacore() {
    let f = fixture!("put_msg_secrets_on_conflict_merges_like_wacore");
    let s = &f.store;
    let (c, snd) = ("c@s.whatsapp.net", "s@s.whatsapp.net");
    // (existing, incoming) deadlines; the effective one must be wacore's merge.
    let cases: [(i64, i64); 6] = [
        (100, 200),
        (200, 100),
        (100, 0),
        (0, 100),
        (0, 0),
        (150, 150),
    ];
    for (i, (existing, incoming)) in cases.iter().enumerate() {
        let id = format!("E{i}");
        s.put_msg_secrets(vec![secret(&id, 1, *existing, 0)])
            .await
            .expect("first");
        s.put_msg_secrets(vec![secret(&id, 2, *incoming, 0)])
            .await
            .expect("second");
    }
    // Sweep up to each merged deadline in turn: a row survives every cutoff before its
    // deadline and goes exactly at it; "never" (0) survives everything.
    let mut deadlines: Vec<i64> = cases
        .iter()
        .map(|(e, n)| merge_msg_secret_expiry(*e, *n))
        .filter(|d| *d != 0)
        .collect();
    deadlines.sort_unstable();
    deadlines.dedup();
    for cutoff in deadlines {
        s.delete_expired_msg_secrets(cutoff - 1)
            .await
            .expect("sweep before");
        for (i, (e, n)) in cases.iter().enumerate() {
            let merged = merge_msg_secret_expiry(*e, *n);
            let alive = s
                .get_msg_secret(c, snd, &format!("E{i}"))
                .await
                .expect("get")
                .is_some();
            assert_eq!(
                alive,
                merged == 0 || merged >= cutoff,
                "case {i} at {cutoff}"
            );
        }
        s.delete_expired_msg_secrets(cutoff)
            .await
            .expect("sweep at");
    }
    s.delete_expired_msg_secrets(i64::MAX)
        .await
        .expect("sweep all");
    for (i, (e, n)) in cases.iter().enumerate() {
        let never = merge_msg_secret_expiry(*e, *n) == 0;
        let got = s
            .get_msg_secret(c, snd, &format!("E{i}"))
            .await
            .expect("get");
        assert_eq!(got.is_some(), never, "case {i}");
        if never {
            assert_eq!(got, Some(vec![2; 32]), "secret replaced, case {i}");
        }
    }

    // message_ts: a known parent time is never clobbered by 0, and the later one wins,
    // also between duplicates inside one batch.
    s.put_msg_secrets(vec![secret("T", 1, 0, 50), secret("T", 2, 0, 0)])
        .await
        .expect("batch");
    assert_eq!(
        s.get_msg_secret_with_ts(c, snd, "T").await.expect("get"),
        Some((vec![2; 32], 50))
    );
    s.put_msg_secrets(vec![secret("T", 3, 0, 70)])
        .await
        .expect("later");
    s.put_msg_secrets(vec![secret("T", 4, 0, 60)])
        .await
        .expect("earlier");
    assert_eq!(
        s.get_msg_secret_with_ts(c, snd, "T").await.expect("get"),
        Some((vec![4; 32], 70))
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn put_msg_secrets_concurrent_on_new_key_merges_all() {
    let f = fixture!("put_msg_secrets_concurrent_on_new_key_merges_all");
    let barrier = Arc::new(tokio::sync::Barrier::new(20));
    let tasks: Vec<_> = (1..=20_i64)
        .map(|i| {
            let store = f.store.clone();
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                store
                    .put_msg_secrets(vec![secret("RACE", 5, 1000 + i, i)])
                    .await
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("join").expect("put");
    }
    let (c, snd) = ("c@s.whatsapp.net", "s@s.whatsapp.net");
    assert_eq!(
        f.store
            .get_msg_secret_with_ts(c, snd, "RACE")
            .await
            .expect("get"),
        Some((vec![5; 32], 20))
    );
    // The merged deadline is the latest one: alive before it, gone at it.
    assert_eq!(
        f.store
            .delete_expired_msg_secrets(1019)
            .await
            .expect("sweep"),
        0
    );
    assert_eq!(
        f.store
            .delete_expired_msg_secrets(1020)
            .await
            .expect("sweep"),
        1
    );
    f.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_expired_msg_secrets_keeps_never_and_future_rows() {
    let f = fixture!("delete_expired_msg_secrets_keeps_never_and_future_rows");
    let s = &f.store;
    s.put_msg_secrets(vec![
        secret("past", 1, 100, 0),
        secret("at", 1, 200, 0),
        secret("future", 1, 300, 0),
        secret("never", 1, 0, 0),
    ])
    .await
    .expect("batch");
    assert_eq!(s.delete_expired_msg_secrets(200).await.expect("sweep"), 2);
    let (c, snd) = ("c@s.whatsapp.net", "s@s.whatsapp.net");
    assert!(
        s.get_msg_secret(c, snd, "future")
            .await
            .expect("get")
            .is_some()
    );
    assert!(
        s.get_msg_secret(c, snd, "never")
            .await
            .expect("get")
            .is_some()
    );
    assert!(s.get_msg_secret(c, snd, "at").await.expect("get").is_none());
    f.finish().await;
}
