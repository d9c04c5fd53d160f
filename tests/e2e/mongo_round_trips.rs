//! How many MongoDB commands the device store sends (issue 16 item 7): no `createIndexes`
//! when its database was indexed already, and repeated reads answered from its caches.
//!
//! Owns: those counts, measured with a MongoDB client of the test's own whose command
//! monitor records every command sent to the test's database (the process-wide
//! `/metrics` counters are shared by the tests running in parallel, so they cannot tell
//! one test's commands apart). Runs on the binary's shared MongoDB (`support::mongo`),
//! one fresh namespace per test, dropped when it passes.

use std::sync::{Arc, Mutex};

use mongodb::Client;
use mongodb::bson::Document;
use mongodb::event::{EventHandler, command::CommandEvent};
use mongodb::options::ClientOptions;
use wharf::engine::mongo_store::MongoDeviceStore;
use whatsapp_rust::wacore::appstate::hash::HashState;
use whatsapp_rust::wacore::store::Device;
use whatsapp_rust::wacore::store::traits::{
    AppSyncStore, DeviceListRecord, DeviceStore, ProtocolStore, SignalStore,
};

use crate::support::mongo::{MongoServer, drop_namespace};

/// `(command, collection)` of every command sent to one database.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String)>>>);

impl Seen {
    fn take(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(|p| p.into_inner()))
    }

    /// How many of the commands since the last `take` were `command` on `collection`.
    fn count(list: &[(String, String)], command: &str, collection: &str) -> usize {
        list.iter()
            .filter(|(c, coll)| c == command && (collection.is_empty() || coll == collection))
            .count()
    }
}

/// A client that records the commands sent to `db`, and the fresh namespace.
async fn monitored(test: &str) -> Option<(Client, String, String, Seen)> {
    let server = MongoServer::shared(test)?;
    let ns = server.unique_namespace();
    let db = format!("waha_{ns}_default");
    let seen = Seen::default();
    let mut opts = ClientOptions::parse(server.url())
        .await
        .expect("mongodb url");
    let (record, watched) = (seen.clone(), db.clone());
    opts.command_event_handler = Some(EventHandler::callback(move |event: CommandEvent| {
        if let CommandEvent::Started(started) = event
            && started.db == watched
        {
            let collection = started
                .command
                .iter()
                .next()
                .and_then(|(_, v)| v.as_str())
                .unwrap_or_default()
                .to_owned();
            record
                .0
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((started.command_name.clone(), collection));
        }
    }));
    let client = Client::with_options(opts).expect("mongodb client");
    Some((client, ns, db, seen))
}

macro_rules! monitored {
    ($name:literal) => {
        match monitored(concat!("mongo_round_trips::", $name)).await {
            Some(m) => m,
            None => return,
        }
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_device_store_creates_no_indexes_and_reads_the_device_once() {
    let (client, ns, db, seen) =
        monitored!("a_restarted_device_store_creates_no_indexes_and_reads_the_device_once");
    // First start on a new database: every index is made (one command per collection).
    let first = MongoDeviceStore::open(client.database(&db))
        .await
        .expect("open");
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "createIndexes", ""), 7, "{sent:?}");
    first.create().await.expect("create");
    let mut device: Device = first.load().await.expect("load").expect("created");
    device.push_name = "Round Trips".to_owned();
    first.save(&device).await.expect("save");
    drop(first);
    let _ = seen.take();

    // Restart: the device document says the indexes exist, and its read at open serves
    // the first load.
    let second = MongoDeviceStore::open(client.database(&db))
        .await
        .expect("reopen");
    let loaded = second.load().await.expect("load").expect("stored");
    assert_eq!(loaded.push_name, "Round Trips");
    assert!(second.exists().await.expect("exists"));
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "createIndexes", ""), 0, "{sent:?}");
    assert_eq!(Seen::count(&sent, "find", "wa_device"), 1, "{sent:?}");
    assert_eq!(sent.len(), 1, "{sent:?}");

    // The same bytes saved again are not sent again; a change is.
    second.save(&loaded).await.expect("save unchanged");
    second.save(&loaded).await.expect("save unchanged again");
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "update", "wa_device"), 1, "{sent:?}");
    let mut changed = loaded.clone();
    changed.push_name = "Changed".to_owned();
    second.save(&changed).await.expect("save changed");
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "update", "wa_device"), 1, "{sent:?}");
    let raw = client
        .database(&db)
        .collection::<Document>("wa_device")
        .find_one(mongodb::bson::doc! {"_id": "device"})
        .await
        .expect("raw read")
        .expect("device document");
    assert_eq!(raw.get_i32("indexes").ok(), Some(1), "{raw}");
    drop(second);

    // A logout drops every `wa_*` collection, the marker with them: the next start makes
    // the indexes again.
    for name in client
        .database(&db)
        .list_collection_names()
        .await
        .expect("collections")
    {
        if name.starts_with("wa_") {
            client
                .database(&db)
                .collection::<Document>(&name)
                .drop()
                .await
                .expect("drop");
        }
    }
    let _ = seen.take();
    let third = MongoDeviceStore::open(client.database(&db))
        .await
        .expect("open after logout");
    assert!(!third.exists().await.expect("exists"));
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "createIndexes", ""), 7, "{sent:?}");
    drop_namespace(&client, &ns).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_reads_are_answered_from_memory_and_writes_show_at_once() {
    let (client, ns, db, seen) =
        monitored!("repeated_reads_are_answered_from_memory_and_writes_show_at_once");
    let store = MongoDeviceStore::open(client.database(&db))
        .await
        .expect("open");
    let _ = seen.take();

    // Signal sessions: a miss reads once, then memory; a write is visible at once and
    // reaches the server.
    let addr = "15550001111:3@s.whatsapp.net";
    assert!(!store.has_session(addr).await.expect("has"));
    assert_eq!(store.get_session(addr).await.expect("get"), None);
    store.put_session(addr, b"record-1").await.expect("put");
    assert_eq!(
        store.get_session(addr).await.expect("get").as_deref(),
        Some(b"record-1".as_slice())
    );
    assert!(store.has_session(addr).await.expect("has"));
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "find", "wa_sessions"), 1, "{sent:?}");
    assert_eq!(Seen::count(&sent, "update", "wa_sessions"), 1, "{sent:?}");

    // Identities and device lists likewise.
    store.put_identity(addr, [7; 32]).await.expect("identity");
    for _ in 0..3 {
        assert_eq!(
            store.load_identity(addr).await.expect("identity"),
            Some([7; 32])
        );
    }
    let user = "15550001111";
    assert!(store.get_devices(user).await.expect("devices").is_none());
    assert!(store.get_devices(user).await.expect("devices").is_none());
    store
        .update_device_list(DeviceListRecord {
            user: user.to_owned(),
            devices: Vec::new(),
            timestamp: 42,
            phash: Some("2:abc".to_owned()),
            raw_id: None,
        })
        .await
        .expect("device list");
    let list = store
        .get_devices(user)
        .await
        .expect("devices")
        .expect("set");
    assert_eq!((list.timestamp, list.phash.as_deref()), (42, Some("2:abc")));
    let sent = seen.take();
    assert_eq!(Seen::count(&sent, "find", "wa_identities"), 0, "{sent:?}");
    assert_eq!(
        Seen::count(&sent, "find", "wa_device_registry"),
        1,
        "{sent:?}"
    );

    // App-state versions: one read serves every collection.
    for name in [
        "critical_block",
        "critical_unblock_low",
        "regular_low",
        "regular_high",
        "regular",
    ] {
        assert_eq!(store.get_version(name).await.expect("version").version, 0);
    }
    let state = HashState {
        version: 5,
        ..HashState::default()
    };
    store.set_version("regular", state).await.expect("set");
    assert_eq!(store.get_version("regular").await.expect("get").version, 5);
    let sent = seen.take();
    assert_eq!(
        Seen::count(&sent, "find", "wa_app_state_versions"),
        1,
        "{sent:?}"
    );

    // What the caches hold is what the server holds: a fresh store reads it back.
    let fresh = MongoDeviceStore::open(client.database(&db))
        .await
        .expect("reopen");
    assert_eq!(
        fresh.get_session(addr).await.expect("get").as_deref(),
        Some(b"record-1".as_slice())
    );
    assert_eq!(fresh.load_identity(addr).await.expect("id"), Some([7; 32]));
    assert_eq!(fresh.get_version("regular").await.expect("v").version, 5);
    assert_eq!(
        fresh
            .get_devices(user)
            .await
            .expect("d")
            .map(|l| l.timestamp),
        Some(42)
    );
    store.delete_session(addr).await.expect("delete");
    assert_eq!(store.get_session(addr).await.expect("get"), None);
    drop_namespace(&client, &ns).await;
}
