//! The storage contract (`wharf::store::StoreBackend`), run unchanged against both backends.
//!
//! Owns: the contract cases (plain `async fn case(&Fixture)`, the fixture being
//! `support::store::TestStore`) and the backend-specific layout checks (WAHA's SQLite files
//! and Mongo documents). The
//! `contract!` macro turns every case into `store_contract::sqlite::<case>` (a tempdir) and
//! `store_contract::mongo::<case>` (a fresh namespace on the binary's shared MongoDB, see
//! `support::mongo`). Nothing here sleeps: waits are on results or bounded by timeouts.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use mongodb::bson::{Document, doc};
use serde_json::json;
use wharf::model::groups::{Group, GroupParticipant};
use wharf::model::session::{
    ClientSessionConfig, CustomHeader, GowsConfig, GowsStorageConfig, HmacConfiguration,
    IgnoreConfig, MeInfo, NowebConfig, NowebStoreConfig, ProxyConfig, RetriesConfiguration,
    RetryPolicy, SessionConfig, WebhookConfig, WebjsConfig,
};
use wharf::store::mongo::MongoStore;
use wharf::store::{
    ApiKeyRecord, DeviceLocation, Error, GroupQuery, GroupSortBy, KeyActions, Namespaces,
    SessionRecord, SortOrder, Store,
};

use crate::support::{
    mongo::{MongoServer, drop_namespace},
    store::TestStore,
};

// ---------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------

/// One backend under test (`support::store`); the layout helpers below look underneath.
type Fixture = TestStore;

/// What a session's per-session data looks like from outside.
#[derive(Debug, PartialEq)]
enum Data {
    /// No folder / no database.
    Absent,
    /// An empty folder (SQLite only).
    Empty,
    /// Something is stored.
    Present,
}

impl Fixture {
    /// Where the store keeps `name`'s per-session data (what engine code gets).
    fn location(&self, name: &str) -> DeviceLocation {
        let name = self.store.session_name(name).expect("valid session name");
        self.store.session(&name).device()
    }

    /// The MongoDB client under the store (the one the per-session handles share).
    fn mongo_client(&self) -> mongodb::Client {
        match self.location("default") {
            DeviceLocation::Mongo { db } => db.client().clone(),
            DeviceLocation::Sqlite { .. } => panic!("not a mongo fixture"),
        }
    }

    /// Writes something into the session's per-session store, as engine code would.
    async fn put_session_data(&self, name: &str) {
        match self.location(name) {
            DeviceLocation::Sqlite { dir } => {
                std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
                std::fs::write(dir.join("sub").join("creds.json"), b"{}").expect("write");
            }
            DeviceLocation::Mongo { db } => {
                db.collection::<Document>("auth")
                    .insert_one(doc! { "k": 1 })
                    .await
                    .expect("insert into session db");
            }
        }
    }

    async fn session_data(&self, name: &str) -> Data {
        match self.location(name) {
            DeviceLocation::Sqlite { dir } => match std::fs::read_dir(&dir) {
                Err(_) => Data::Absent,
                Ok(mut entries) => match entries.next() {
                    None => Data::Empty,
                    Some(_) => Data::Present,
                },
            },
            DeviceLocation::Mongo { db } => {
                let names = db
                    .client()
                    .list_database_names()
                    .await
                    .expect("list databases");
                if names.contains(&self.ns.session_db(name)) {
                    Data::Present
                } else {
                    Data::Absent
                }
            }
        }
    }

    /// Drops the test's databases (matters only on a shared real MongoDB).
    async fn cleanup(self) {
        if let crate::support::store::Target::Mongo { .. } = self.target {
            drop_namespace(&self.mongo_client(), &self.ns.main).await;
        }
    }
}

/// Runs each case once per backend: `sqlite::<case>` and `mongo::<case>`.
macro_rules! contract {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let f = super::Fixture::sqlite().await;
                    super::$case(&f).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let test = concat!("store_contract::mongo::", stringify!($case));
                    let Some(f) = super::Fixture::mongo(test).await else { return };
                    super::$case(&f).await;
                    f.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    ping_open_store_returns_ok,
    list_sessions_several_inserted_sorted_by_name,
    get_session_unknown_name_returns_none,
    insert_session_taken_name_returns_already_exists,
    insert_session_20_concurrent_same_name_exactly_one_ok,
    insert_session_without_config_round_trips_none,
    insert_session_every_field_set_round_trips_exactly,
    insert_session_unsafe_name_returns_backend_error,
    upsert_session_existing_name_replaces_whole_config,
    upsert_session_unknown_name_creates_it,
    upsert_session_20_concurrent_same_new_name_all_ok,
    set_me_some_then_none_stores_then_clears,
    get_me_unknown_session_returns_none,
    list_me_several_sessions_returns_every_stored_account,
    assign_worker_several_sessions_listed_per_worker_sorted,
    assign_worker_other_worker_moves_session,
    unassign_worker_other_workers_row_keeps_it,
    unassign_worker_own_row_removes_it,
    delete_session_existing_removes_config_me_worker_and_data,
    delete_session_twice_is_idempotent,
    drop_session_data_existing_keeps_config_me_and_worker,
    reopen_store_after_writes_keeps_everything,
    group_cache_upsert_get_count_and_replace_whole_groups,
    group_cache_list_sorts_and_pages_by_id_and_subject,
    group_cache_replace_and_delete_keep_only_what_is_listed,
    group_cache_is_per_session_and_dropped_with_the_session,
    api_keys_insert_find_upsert_delete_round_trip,
);

// ---------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------

fn record(name: &str, config: Option<SessionConfig>) -> SessionRecord {
    SessionRecord {
        name: name.to_owned(),
        config,
    }
}

fn debug_config() -> SessionConfig {
    SessionConfig {
        debug: Some(true),
        ..SessionConfig::default()
    }
}

fn me_info(phone: &str) -> MeInfo {
    MeInfo {
        id: format!("{phone}@c.us"),
        lid: Some("123123@lid".into()),
        jid: Some(format!("{phone}:12@s.whatsapp.net")),
        push_name: "Wharf Test".into(),
    }
}

/// A `SessionConfig` with every field (and every nested field) set.
fn full_config() -> SessionConfig {
    SessionConfig {
        metadata: Some(BTreeMap::from([
            ("user.id".to_owned(), "123".to_owned()),
            ("user.email".to_owned(), "email@example.com".to_owned()),
        ])),
        proxy: Some(ProxyConfig {
            server: "localhost:3128".into(),
            username: Some("proxy-user".into()),
            password: Some("proxy-pass".into()),
        }),
        debug: Some(false),
        ignore: Some(IgnoreConfig {
            status: Some(true),
            groups: Some(false),
            channels: Some(true),
            broadcast: Some(false),
        }),
        client: Some(ClientSessionConfig {
            device_name: Some("MacOS".into()),
            browser_name: Some("Firefox".into()),
        }),
        noweb: Some(NowebConfig {
            mark_online: false,
            store: Some(NowebStoreConfig {
                enabled: true,
                full_sync: true,
            }),
        }),
        gows: Some(GowsConfig {
            storage: Some(GowsStorageConfig {
                messages: Some(true),
                groups: Some(false),
                chats: Some(true),
                labels: Some(false),
            }),
        }),
        webjs: Some(WebjsConfig {
            tags_events_on: Some(true),
        }),
        webhooks: Some(vec![
            WebhookConfig {
                url: "https://webhook.example/hook".into(),
                events: vec!["message".into(), "session.status".into()],
                hmac: Some(HmacConfiguration {
                    key: Some("hmac-secret".into()),
                }),
                retries: Some(RetriesConfiguration {
                    delay_seconds: serde_json::Number::from_f64(2.5),
                    attempts: Some(serde_json::Number::from(15)),
                    policy: Some(RetryPolicy::Exponential),
                }),
                custom_headers: Some(vec![CustomHeader {
                    name: "X-Api".into(),
                    value: "1".into(),
                }]),
            },
            WebhookConfig {
                url: "http://second.example/".into(),
                events: vec!["*".into()],
                hmac: Some(HmacConfiguration { key: None }),
                retries: None,
                custom_headers: None,
            },
        ]),
    }
}

// ---------------------------------------------------------------------------------------
// Contract cases (both backends)
// ---------------------------------------------------------------------------------------

async fn ping_open_store_returns_ok(f: &Fixture) {
    f.store.ping().await.expect("ping");
}

async fn list_sessions_several_inserted_sorted_by_name(f: &Fixture) {
    assert_eq!(f.store.list_sessions().await.unwrap(), vec![]);
    for name in ["charlie", "alpha", "Bravo", "alpha-2", "alpha_1"] {
        f.store.insert_session(&record(name, None)).await.unwrap();
    }
    f.store
        .upsert_session(&record("bravo", Some(debug_config())))
        .await
        .unwrap();

    let names: Vec<String> = f
        .store
        .list_sessions()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.name)
        .collect();
    // Byte order, as SQLite's `ORDER BY id`: uppercase first, `-` < `_`.
    assert_eq!(
        names,
        ["Bravo", "alpha", "alpha-2", "alpha_1", "bravo", "charlie"]
    );
    let listed = f.store.list_sessions().await.unwrap();
    assert_eq!(listed[4], record("bravo", Some(debug_config())));
}

async fn get_session_unknown_name_returns_none(f: &Fixture) {
    f.store
        .insert_session(&record("known", None))
        .await
        .unwrap();
    assert_eq!(f.store.get_session("unknown").await.unwrap(), None);
    assert_eq!(
        f.store.get_session("known").await.unwrap(),
        Some(record("known", None))
    );
}

async fn insert_session_taken_name_returns_already_exists(f: &Fixture) {
    let first = record("default", Some(debug_config()));
    f.store.insert_session(&first).await.unwrap();

    let err = f
        .store
        .insert_session(&record("default", None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::AlreadyExists(name) if name == "default"),
        "{err:?}"
    );
    // The loser changed nothing.
    assert_eq!(f.store.get_session("default").await.unwrap(), Some(first));
}

async fn insert_session_20_concurrent_same_name_exactly_one_ok(f: &Fixture) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = f.store.clone();
            let config = SessionConfig {
                metadata: Some(BTreeMap::from([("i".to_owned(), i.to_string())])),
                ..SessionConfig::default()
            };
            tokio::spawn(async move { store.insert_session(&record("race", Some(config))).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(()) => ok += 1,
            Err(Error::AlreadyExists(name)) => assert_eq!(name, "race"),
            Err(e) => panic!("unexpected error: {e:?}"),
        }
    }
    assert_eq!(ok, 1);
    let listed = f.store.list_sessions().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].name, "race");
}

async fn insert_session_without_config_round_trips_none(f: &Fixture) {
    f.store.insert_session(&record("bare", None)).await.unwrap();
    assert_eq!(
        f.store.get_session("bare").await.unwrap(),
        Some(record("bare", None))
    );
    assert_eq!(
        f.store.list_sessions().await.unwrap(),
        vec![record("bare", None)]
    );
}

async fn insert_session_every_field_set_round_trips_exactly(f: &Fixture) {
    let full = record("full", Some(full_config()));
    f.store.insert_session(&full).await.unwrap();
    assert_eq!(
        f.store.get_session("full").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(f.store.list_sessions().await.unwrap(), vec![full.clone()]);
    // And through a fresh store (nothing served from memory).
    let again = f.reopen().await;
    assert_eq!(again.get_session("full").await.unwrap(), Some(full));
}

async fn insert_session_unsafe_name_returns_backend_error(f: &Fixture) {
    for name in ["", "..", "../escape", "a/b", "a\\b", "nul\0byte"] {
        let err = f
            .store
            .insert_session(&record(name, None))
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{name:?}: {err:?}");
        let err = f.store.delete_session(name).await.unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{name:?}: {err:?}");
        let err = f.store.drop_session_data(name).await.unwrap_err();
        assert!(matches!(err, Error::Backend(_)), "{name:?}: {err:?}");
    }
    assert_eq!(f.store.list_sessions().await.unwrap(), vec![]);
    if let Some(base) = f.sqlite_base() {
        // Nothing was created next to or above the namespace folders.
        assert!(!base.join("escape").exists());
        assert!(!base.join("gows").join("a").exists());
    }
}

async fn upsert_session_existing_name_replaces_whole_config(f: &Fixture) {
    f.store
        .insert_session(&record("default", Some(full_config())))
        .await
        .unwrap();
    // PUT semantics: everything not in the new config is gone.
    let smaller = SessionConfig {
        webhooks: Some(vec![WebhookConfig {
            url: "http://only.example/".into(),
            events: vec!["message".into()],
            hmac: None,
            retries: None,
            custom_headers: None,
        }]),
        ..SessionConfig::default()
    };
    f.store
        .upsert_session(&record("default", Some(smaller.clone())))
        .await
        .unwrap();
    assert_eq!(
        f.store.get_session("default").await.unwrap(),
        Some(record("default", Some(smaller)))
    );

    f.store
        .upsert_session(&record("default", None))
        .await
        .unwrap();
    assert_eq!(
        f.store.get_session("default").await.unwrap(),
        Some(record("default", None))
    );
    assert_eq!(f.store.list_sessions().await.unwrap().len(), 1);
}

async fn upsert_session_unknown_name_creates_it(f: &Fixture) {
    let rec = record("fresh", Some(debug_config()));
    f.store.upsert_session(&rec).await.unwrap();
    assert_eq!(f.store.get_session("fresh").await.unwrap(), Some(rec));
    // Now taken for insert.
    let err = f
        .store
        .insert_session(&record("fresh", None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
}

async fn upsert_session_20_concurrent_same_new_name_all_ok(f: &Fixture) {
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let store = f.store.clone();
            let config = SessionConfig {
                metadata: Some(BTreeMap::from([("i".to_owned(), i.to_string())])),
                ..SessionConfig::default()
            };
            tokio::spawn(async move {
                store.upsert_session(&record("race", Some(config))).await?;
                store.assign_worker("race", &format!("w{i}")).await?;
                store.set_me("race", Some(&me_info(&i.to_string()))).await
            })
        })
        .collect();
    for task in tasks {
        task.await
            .expect("task")
            .expect("concurrent upserts all succeed");
    }
    // One row each, holding one of the writes whole.
    let listed = f.store.list_sessions().await.unwrap();
    assert_eq!(listed.len(), 1);
    let meta = listed[0]
        .config
        .as_ref()
        .unwrap()
        .metadata
        .as_ref()
        .unwrap();
    assert!(meta["i"].parse::<u32>().unwrap() < 20);
    let mut owners = 0;
    for i in 0..20 {
        owners += f
            .store
            .sessions_of_worker(&format!("w{i}"))
            .await
            .unwrap()
            .len();
    }
    assert_eq!(owners, 1);
    assert!(f.store.get_me("race").await.unwrap().is_some());
}

async fn set_me_some_then_none_stores_then_clears(f: &Fixture) {
    f.store
        .insert_session(&record("default", None))
        .await
        .unwrap();
    f.store
        .set_me("default", Some(&me_info("111")))
        .await
        .unwrap();
    assert_eq!(
        f.store.get_me("default").await.unwrap(),
        Some(me_info("111"))
    );
    // Overwrite, with the optional fields absent.
    let minimal = MeInfo {
        id: "222@c.us".into(),
        lid: None,
        jid: None,
        push_name: "Second".into(),
    };
    f.store.set_me("default", Some(&minimal)).await.unwrap();
    assert_eq!(f.store.get_me("default").await.unwrap(), Some(minimal));

    f.store.set_me("default", None).await.unwrap();
    assert_eq!(f.store.get_me("default").await.unwrap(), None);
    // Clearing twice is fine.
    f.store.set_me("default", None).await.unwrap();
    // The session itself is untouched.
    assert!(f.store.get_session("default").await.unwrap().is_some());
}

async fn list_me_several_sessions_returns_every_stored_account(f: &Fixture) {
    assert!(f.store.list_me().await.unwrap().is_empty());
    for name in ["a", "b", "c"] {
        f.store.insert_session(&record(name, None)).await.unwrap();
    }
    f.store.set_me("a", Some(&me_info("111"))).await.unwrap();
    f.store.set_me("b", Some(&me_info("222"))).await.unwrap();
    f.store.set_me("c", Some(&me_info("333"))).await.unwrap();
    // Cleared accounts are not listed.
    f.store.set_me("c", None).await.unwrap();
    let all = f.store.list_me().await.unwrap();
    assert_eq!(
        all.into_iter().collect::<BTreeMap<_, _>>(),
        BTreeMap::from([
            ("a".to_owned(), me_info("111")),
            ("b".to_owned(), me_info("222")),
        ])
    );
}

async fn get_me_unknown_session_returns_none(f: &Fixture) {
    f.store.set_me("other", Some(&me_info("1"))).await.unwrap();
    assert_eq!(f.store.get_me("unknown").await.unwrap(), None);
}

async fn assign_worker_several_sessions_listed_per_worker_sorted(f: &Fixture) {
    for name in ["s3", "s1", "s2"] {
        f.store.assign_worker(name, "w1").await.unwrap();
    }
    f.store.assign_worker("s4", "w2").await.unwrap();
    // Assigning again is harmless.
    f.store.assign_worker("s1", "w1").await.unwrap();

    assert_eq!(
        f.store.sessions_of_worker("w1").await.unwrap(),
        ["s1", "s2", "s3"]
    );
    assert_eq!(f.store.sessions_of_worker("w2").await.unwrap(), ["s4"]);
    assert!(f.store.sessions_of_worker("w3").await.unwrap().is_empty());
}

async fn assign_worker_other_worker_moves_session(f: &Fixture) {
    f.store.assign_worker("s1", "w1").await.unwrap();
    f.store.assign_worker("s1", "w2").await.unwrap();
    assert!(f.store.sessions_of_worker("w1").await.unwrap().is_empty());
    assert_eq!(f.store.sessions_of_worker("w2").await.unwrap(), ["s1"]);
}

async fn unassign_worker_other_workers_row_keeps_it(f: &Fixture) {
    f.store.assign_worker("s1", "w1").await.unwrap();
    // A stale worker stopping must not steal the row of the worker now running it.
    f.store.unassign_worker("s1", "w2").await.unwrap();
    assert_eq!(f.store.sessions_of_worker("w1").await.unwrap(), ["s1"]);
}

async fn unassign_worker_own_row_removes_it(f: &Fixture) {
    f.store.assign_worker("s1", "w1").await.unwrap();
    f.store.assign_worker("s2", "w1").await.unwrap();
    f.store.unassign_worker("s1", "w1").await.unwrap();
    assert_eq!(f.store.sessions_of_worker("w1").await.unwrap(), ["s2"]);
    // Unassigning an unassigned session is a no-op.
    f.store.unassign_worker("s1", "w1").await.unwrap();
}

async fn delete_session_existing_removes_config_me_worker_and_data(f: &Fixture) {
    for name in ["doomed", "kept"] {
        f.store
            .insert_session(&record(name, Some(debug_config())))
            .await
            .unwrap();
        f.store.set_me(name, Some(&me_info("1"))).await.unwrap();
        f.store.assign_worker(name, "w1").await.unwrap();
        f.put_session_data(name).await;
    }
    assert_eq!(f.session_data("doomed").await, Data::Present);

    f.store.delete_session("doomed").await.unwrap();

    assert_eq!(f.store.get_session("doomed").await.unwrap(), None);
    assert_eq!(f.store.get_me("doomed").await.unwrap(), None);
    assert_eq!(f.store.sessions_of_worker("w1").await.unwrap(), ["kept"]);
    assert_eq!(f.session_data("doomed").await, Data::Absent);
    // The neighbour is untouched.
    assert!(f.store.get_session("kept").await.unwrap().is_some());
    assert_eq!(f.store.get_me("kept").await.unwrap(), Some(me_info("1")));
    assert_eq!(f.session_data("kept").await, Data::Present);
}

async fn delete_session_twice_is_idempotent(f: &Fixture) {
    f.store
        .insert_session(&record("default", None))
        .await
        .unwrap();
    f.store.delete_session("default").await.unwrap();
    f.store.delete_session("default").await.unwrap();
    f.store.delete_session("never-existed").await.unwrap();
    assert_eq!(f.store.list_sessions().await.unwrap(), vec![]);
    // The name is free again.
    f.store
        .insert_session(&record("default", None))
        .await
        .unwrap();
}

async fn drop_session_data_existing_keeps_config_me_and_worker(f: &Fixture) {
    let rec = record("default", Some(full_config()));
    f.store.insert_session(&rec).await.unwrap();
    f.store
        .set_me("default", Some(&me_info("1")))
        .await
        .unwrap();
    f.store.assign_worker("default", "w1").await.unwrap();
    f.put_session_data("default").await;

    f.store.drop_session_data("default").await.unwrap();

    assert_ne!(f.session_data("default").await, Data::Present);
    assert_eq!(f.store.get_session("default").await.unwrap(), Some(rec));
    assert_eq!(f.store.get_me("default").await.unwrap(), Some(me_info("1")));
    assert_eq!(f.store.sessions_of_worker("w1").await.unwrap(), ["default"]);
    // Twice is fine; the store stays writable.
    f.store.drop_session_data("default").await.unwrap();
    f.put_session_data("default").await;
    assert_eq!(f.session_data("default").await, Data::Present);
}

async fn reopen_store_after_writes_keeps_everything(f: &Fixture) {
    let full = record("full", Some(full_config()));
    f.store.insert_session(&full).await.unwrap();
    f.store.insert_session(&record("bare", None)).await.unwrap();
    f.store.set_me("full", Some(&me_info("1"))).await.unwrap();
    f.store.assign_worker("full", "w1").await.unwrap();
    f.put_session_data("full").await;

    let again = f.reopen().await;
    assert_eq!(
        again.list_sessions().await.unwrap(),
        vec![record("bare", None), full]
    );
    assert_eq!(again.get_me("full").await.unwrap(), Some(me_info("1")));
    assert_eq!(again.sessions_of_worker("w1").await.unwrap(), ["full"]);
    assert_eq!(f.session_data("full").await, Data::Present);
    // The reopened store is fully usable (Mongo: index creation was idempotent).
    let err = again
        .insert_session(&record("bare", None))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::AlreadyExists(_)), "{err:?}");
}

// ---------------------------------------------------------------------------------------
// Group cache (`GroupBackend`)
// ---------------------------------------------------------------------------------------

fn group(id: &str, subject: &str) -> Group {
    Group {
        id: id.to_string(),
        subject: subject.to_string(),
        description: Some("about".into()),
        owner: Some("1@c.us".into()),
        creation: Some(1_700_000_000),
        announce: true,
        member_add_mode: Some("admin_add".into()),
        participants: vec![
            GroupParticipant {
                id: "1@c.us".into(),
                pn: Some("1@c.us".into()),
                role: "superadmin".into(),
            },
            GroupParticipant {
                id: "2@lid".into(),
                pn: None,
                role: "participant".into(),
            },
        ],
        ..Group::default()
    }
}

fn groups_of(f: &Fixture, session: &str) -> wharf::store::SessionStore {
    f.store.session(&f.store.session_name(session).unwrap())
}

async fn group_cache_upsert_get_count_and_replace_whole_groups(f: &Fixture) {
    let s = groups_of(f, "default");
    let g = s.groups();
    // Nothing yet: reads create nothing and answer empty.
    assert_eq!(g.count().await.unwrap(), 0);
    assert_eq!(g.get("1@g.us").await.unwrap(), None);
    assert!(g.list(&GroupQuery::default()).await.unwrap().is_empty());
    assert!(!g.delete("1@g.us").await.unwrap());

    let one = group("1@g.us", "one");
    g.upsert(&[one.clone(), group("2@g.us", "two")])
        .await
        .unwrap();
    assert_eq!(g.count().await.unwrap(), 2);
    assert_eq!(g.get("1@g.us").await.unwrap(), Some(one.clone()));
    // An upsert replaces the whole group: nothing of the old one survives.
    let renamed = Group {
        subject: "uno".into(),
        description: None,
        member_add_mode: None,
        participants: Vec::new(),
        ..one
    };
    g.upsert(std::slice::from_ref(&renamed)).await.unwrap();
    assert_eq!(g.get("1@g.us").await.unwrap(), Some(renamed));
    assert_eq!(g.count().await.unwrap(), 2);
}

async fn group_cache_list_sorts_and_pages_by_id_and_subject(f: &Fixture) {
    let s = groups_of(f, "default");
    let g = s.groups();
    g.upsert(&[
        group("3@g.us", "b"),
        group("1@g.us", "c"),
        group("2@g.us", "a"),
        group("4@g.us", "a"),
    ])
    .await
    .unwrap();
    let ids = |v: Vec<Group>| v.into_iter().map(|g| g.id).collect::<Vec<_>>();
    let q = |sort_by, sort_order, limit, offset| GroupQuery {
        limit,
        offset,
        sort_by,
        sort_order,
    };
    assert_eq!(
        ids(g
            .list(&q(GroupSortBy::Id, SortOrder::Asc, None, 0))
            .await
            .unwrap()),
        ["1@g.us", "2@g.us", "3@g.us", "4@g.us"]
    );
    assert_eq!(
        ids(g
            .list(&q(GroupSortBy::Id, SortOrder::Desc, Some(2), 1))
            .await
            .unwrap()),
        ["3@g.us", "2@g.us"]
    );
    // Subject ties are broken by id.
    assert_eq!(
        ids(g
            .list(&q(GroupSortBy::Subject, SortOrder::Asc, None, 0))
            .await
            .unwrap()),
        ["2@g.us", "4@g.us", "3@g.us", "1@g.us"]
    );
    assert_eq!(
        ids(g
            .list(&q(GroupSortBy::Subject, SortOrder::Desc, Some(3), 0))
            .await
            .unwrap()),
        ["1@g.us", "3@g.us", "4@g.us"]
    );
    assert!(
        g.list(&q(GroupSortBy::Id, SortOrder::Asc, Some(10), 4))
            .await
            .unwrap()
            .is_empty()
    );
}

async fn group_cache_replace_and_delete_keep_only_what_is_listed(f: &Fixture) {
    let s = groups_of(f, "default");
    let g = s.groups();
    g.upsert(&[group("1@g.us", "one"), group("2@g.us", "two")])
        .await
        .unwrap();
    let three = group("3@g.us", "three");
    let two = Group {
        subject: "deux".into(),
        ..group("2@g.us", "two")
    };
    g.replace(&[two.clone(), three.clone()]).await.unwrap();
    assert_eq!(
        g.list(&GroupQuery::default()).await.unwrap(),
        // `GroupQuery::default()`: ids descending (`SortOrder`'s default).
        vec![three, two]
    );
    assert_eq!(g.get("1@g.us").await.unwrap(), None);
    assert!(g.delete("2@g.us").await.unwrap());
    assert!(!g.delete("2@g.us").await.unwrap());
    assert_eq!(g.count().await.unwrap(), 1);
    // Replacing with nothing empties the cache.
    g.replace(&[]).await.unwrap();
    assert_eq!(g.count().await.unwrap(), 0);
}

async fn group_cache_is_per_session_and_dropped_with_the_session(f: &Fixture) {
    let (a, b) = (groups_of(f, "alice"), groups_of(f, "bob"));
    a.groups().upsert(&[group("1@g.us", "one")]).await.unwrap();
    assert_eq!(b.groups().count().await.unwrap(), 0);
    assert_eq!(b.groups().get("1@g.us").await.unwrap(), None);
    f.store
        .insert_session(&record("alice", None))
        .await
        .unwrap();
    f.store.delete_session("alice").await.unwrap();
    assert_eq!(a.groups().count().await.unwrap(), 0);
    // And the store keeps working for it afterwards.
    a.groups().upsert(&[group("2@g.us", "two")]).await.unwrap();
    assert_eq!(a.groups().count().await.unwrap(), 1);
}

// ---------------------------------------------------------------------------------------
// SQLite layout (WAHA §7.2)
// ---------------------------------------------------------------------------------------

mod sqlite_layout {
    use super::*;

    fn raw_json(db: &Path, table: &str, id: &str) -> serde_json::Value {
        let conn = rusqlite::Connection::open(db).unwrap();
        let data: String = conn
            .query_row(
                &format!("SELECT data FROM {table} WHERE id = ?1"),
                [id],
                |r| r.get(0),
            )
            .unwrap();
        serde_json::from_str(&data).unwrap()
    }

    #[tokio::test]
    async fn insert_session_new_name_writes_waha_files_and_rows() {
        let f = Fixture::sqlite().await;
        let base = f.sqlite_base().unwrap().to_owned();
        let config = SessionConfig {
            metadata: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
            debug: Some(true),
            ..SessionConfig::default()
        };
        f.store
            .insert_session(&record("default", Some(config)))
            .await
            .unwrap();
        f.store.insert_session(&record("bare", None)).await.unwrap();
        f.store
            .set_me("default", Some(&me_info("111")))
            .await
            .unwrap();
        f.store.assign_worker("default", "w1").await.unwrap();

        let db = base.join("gows").join("waha.sqlite3");
        assert!(db.is_file(), "{db:?}");
        assert!(base.join("gows").join("default").is_dir());
        assert!(base.join("gows").join("bare").is_dir());

        let conn = rusqlite::Connection::open(&db).unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");

        assert_eq!(
            raw_json(&db, "session_config", "default"),
            json!({"id": "default", "config": {"metadata": {"k": "v"}, "debug": true}})
        );
        assert_eq!(
            raw_json(&db, "session_config", "bare"),
            json!({"id": "bare", "config": null})
        );
        assert_eq!(
            raw_json(&db, "me", "default"),
            json!({"id": "default", "me": {
                "id": "111@c.us",
                "lid": "123123@lid",
                "jid": "111:12@s.whatsapp.net",
                "pushName": "Wharf Test"
            }})
        );
        let (worker, data): (String, String) = conn
            .query_row(
                "SELECT worker, data FROM session_worker WHERE id = 'default'",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(worker, "w1");
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&data).unwrap(),
            json!({"id": "default", "worker": "w1"})
        );
        // WAHA's api_key table exists with its columns.
        conn.execute(
            r#"INSERT INTO api_key (id, "key", "isActive", session, data) VALUES ('k1', 'x', 1, 'default', '{}')"#,
            [],
        )
        .unwrap();
    }

    #[tokio::test]
    async fn open_existing_waha_main_db_reads_sessions_me_and_workers() {
        let base = tempfile::tempdir().unwrap();
        let dir = base.path().join("default");
        std::fs::create_dir_all(&dir).unwrap();
        // What WAHA's knex migrations leave behind (its DDL style, its JSON rows).
        let conn = rusqlite::Connection::open(dir.join("waha.sqlite3")).unwrap();
        conn.execute_batch(
            r#"
            PRAGMA journal_mode = WAL;
            CREATE TABLE `session_config` (`id` varchar(255), `data` text, PRIMARY KEY (`id`));
            CREATE TABLE `me` (`id` varchar(255), `data` text, PRIMARY KEY (`id`));
            CREATE TABLE `session_worker` (`id` varchar(255), `worker` varchar(255), `data` text);
            CREATE UNIQUE INDEX `session_worker_id_unique` ON `session_worker` (`id`);
            CREATE TABLE `api_key` (`id` varchar(255), `key` varchar(255), `isActive` boolean,
                `session` varchar(255), `data` text, PRIMARY KEY (`id`));
            CREATE UNIQUE INDEX `api_key_key_unique` ON `api_key` (`key`);
            INSERT INTO session_config VALUES ('alpha',
              '{"id":"alpha","config":{"webhooks":[{"url":"https://h.example/","events":["message"],"hmac":null,"retries":null,"customHeaders":null}],"debug":false,"futureField":{"x":1}}}');
            INSERT INTO session_config VALUES ('beta', '{"id":"beta","config":null}');
            INSERT INTO me VALUES ('alpha', '{"id":"alpha","me":{"id":"111@c.us","pushName":"Alice"}}');
            INSERT INTO session_worker VALUES ('alpha', 'waha-1', '{"id":"alpha","worker":"waha-1"}');
            INSERT INTO session_worker VALUES ('beta', 'waha-2', '{"id":"beta","worker":"waha-2"}');
            "#,
        )
        .unwrap();
        drop(conn);

        let ns = Namespaces {
            main: "default".into(),
            session: "default".into(),
        };
        let store = Store::sqlite(base.path(), ns).await.unwrap();
        let alpha = SessionConfig {
            debug: Some(false),
            webhooks: Some(vec![WebhookConfig {
                url: "https://h.example/".into(),
                events: vec!["message".into()],
                hmac: None,
                retries: None,
                custom_headers: None,
            }]),
            ..SessionConfig::default()
        };
        assert_eq!(
            store.list_sessions().await.unwrap(),
            vec![record("alpha", Some(alpha)), record("beta", None)]
        );
        assert_eq!(
            store.get_me("alpha").await.unwrap(),
            Some(MeInfo {
                id: "111@c.us".into(),
                lid: None,
                jid: None,
                push_name: "Alice".into(),
            })
        );
        assert_eq!(store.sessions_of_worker("waha-1").await.unwrap(), ["alpha"]);
        // And it stays writable through WAHA's own table definitions.
        store
            .upsert_session(&record("beta", Some(debug_config())))
            .await
            .unwrap();
        store.assign_worker("beta", "waha-1").await.unwrap();
        assert_eq!(
            store.sessions_of_worker("waha-1").await.unwrap(),
            ["alpha", "beta"]
        );
        store.delete_session("alpha").await.unwrap();
        assert_eq!(
            store.list_sessions().await.unwrap(),
            vec![record("beta", Some(debug_config()))]
        );
    }

    /// Pins the one documented difference between the backends (see `store/mongo/sessions.rs`).
    #[tokio::test]
    async fn insert_session_sqlite_empty_config_reads_back_empty_config() {
        let f = Fixture::sqlite().await;
        let rec = record("empty", Some(SessionConfig::default()));
        f.store.insert_session(&rec).await.unwrap();
        assert_eq!(f.store.get_session("empty").await.unwrap(), Some(rec));
    }

    #[tokio::test]
    async fn drop_session_data_sqlite_session_recreates_empty_folder() {
        let f = Fixture::sqlite().await;
        f.store
            .insert_session(&record("default", None))
            .await
            .unwrap();
        f.put_session_data("default").await;
        f.store.drop_session_data("default").await.unwrap();
        assert_eq!(f.session_data("default").await, Data::Empty);
        // An unknown session gets no folder.
        f.store.drop_session_data("ghost").await.unwrap();
        assert_eq!(f.session_data("ghost").await, Data::Absent);
    }
}

// ---------------------------------------------------------------------------------------
// MongoDB layout (WAHA §7.3) and connection handling
// ---------------------------------------------------------------------------------------

mod mongo_layout {
    use super::*;

    fn without_id(mut d: Document) -> Document {
        d.remove("_id");
        d
    }

    #[tokio::test]
    async fn upsert_session_mongo_writes_waha_documents() {
        let test = "mongo_layout::upsert_session_mongo_writes_waha_documents";
        let Some(f) = Fixture::mongo(test).await else {
            return;
        };
        let main = f.mongo_client().database(&f.ns.main_db());
        let config = SessionConfig {
            metadata: Some(BTreeMap::from([("k".to_owned(), "v".to_owned())])),
            debug: Some(true),
            ..SessionConfig::default()
        };
        f.store
            .upsert_session(&record("default", Some(config)))
            .await
            .unwrap();
        f.store.insert_session(&record("bare", None)).await.unwrap();
        f.store
            .set_me("default", Some(&me_info("111")))
            .await
            .unwrap();
        f.store.assign_worker("default", "w1").await.unwrap();

        let sessions = main.collection::<Document>("sessions");
        let got = sessions.find_one(doc! { "name": "default" }).await.unwrap();
        assert_eq!(
            got.map(without_id),
            Some(doc! { "metadata": { "k": "v" }, "debug": true, "name": "default" })
        );
        let got = sessions.find_one(doc! { "name": "bare" }).await.unwrap();
        assert_eq!(got.map(without_id), Some(doc! { "name": "bare" }));
        let got = main
            .collection::<Document>("me")
            .find_one(doc! { "session": "default" })
            .await
            .unwrap();
        assert_eq!(
            got.map(without_id),
            Some(doc! { "session": "default", "me": {
                "id": "111@c.us",
                "lid": "123123@lid",
                "jid": "111:12@s.whatsapp.net",
                "pushName": "Wharf Test",
            }})
        );
        let got = main
            .collection::<Document>("session_worker")
            .find_one(doc! { "id": "default" })
            .await
            .unwrap();
        assert_eq!(
            got.map(without_id),
            Some(doc! { "id": "default", "worker": "w1" })
        );
        f.cleanup().await;
    }

    #[tokio::test]
    async fn get_session_mongo_waha_written_documents_decode() {
        let test = "mongo_layout::get_session_mongo_waha_written_documents_decode";
        let Some(f) = Fixture::mongo(test).await else {
            return;
        };
        let main = f.mongo_client().database(&f.ns.main_db());
        // As WAHA's Node driver writes them: integers as int32, unknown fields, `_id`s.
        main.collection::<Document>("sessions")
            .insert_many([
                doc! { "name": "nameonly" },
                doc! {
                    "webhooks": [{
                        "url": "https://h.example/",
                        "events": ["message"],
                        "retries": { "delaySeconds": 2_i32, "attempts": 15_i32, "policy": "linear" },
                    }],
                    "futureField": { "x": 1_i32 },
                    "name": "waha",
                },
            ])
            .await
            .unwrap();
        main.collection::<Document>("me")
            .insert_one(doc! { "session": "waha", "me": { "id": "1@c.us", "pushName": "A" } })
            .await
            .unwrap();

        assert_eq!(
            f.store.get_session("nameonly").await.unwrap(),
            Some(record("nameonly", None))
        );
        let waha = f.store.get_session("waha").await.unwrap().unwrap();
        let hooks = waha.config.unwrap().webhooks.unwrap();
        assert_eq!(
            hooks[0].retries,
            Some(RetriesConfiguration {
                delay_seconds: Some(serde_json::Number::from(2)),
                attempts: Some(serde_json::Number::from(15)),
                policy: Some(RetryPolicy::Linear),
            })
        );
        assert_eq!(
            f.store.get_me("waha").await.unwrap().map(|me| me.push_name),
            Some("A".to_owned())
        );
        f.cleanup().await;
    }

    /// WAHA's flat `{...config, name}` cannot tell `{}` from no config (see `store/mongo/sessions.rs`).
    #[tokio::test]
    async fn insert_session_mongo_empty_config_reads_back_none() {
        let test = "mongo_layout::insert_session_mongo_empty_config_reads_back_none";
        let Some(f) = Fixture::mongo(test).await else {
            return;
        };
        let rec = record("empty", Some(SessionConfig::default()));
        f.store.insert_session(&rec).await.unwrap();
        assert_eq!(
            f.store.get_session("empty").await.unwrap(),
            Some(record("empty", None))
        );
        f.cleanup().await;
    }

    #[tokio::test]
    async fn connect_mongo_fresh_namespace_creates_waha_indexes() {
        let test = "mongo_layout::connect_mongo_fresh_namespace_creates_waha_indexes";
        let Some(f) = Fixture::mongo(test).await else {
            return;
        };
        let main = f.mongo_client().database(&f.ns.main_db());
        let expected: [(&str, Document, bool); 7] = [
            ("sessions", doc! { "name": 1 }, true),
            ("me", doc! { "session": 1 }, true),
            ("session_worker", doc! { "id": 1 }, true),
            ("session_worker", doc! { "worker": 1 }, false),
            ("api_key", doc! { "id": 1 }, true),
            ("api_key", doc! { "key": 1 }, true),
            ("api_key", doc! { "session": 1 }, false),
        ];
        for (coll, keys, unique) in expected {
            use futures_util::TryStreamExt;
            let indexes: Vec<_> = main
                .collection::<Document>(coll)
                .list_indexes()
                .await
                .unwrap()
                .try_collect()
                .await
                .unwrap();
            let found = indexes.iter().find(|i| i.keys == keys);
            let found = found.unwrap_or_else(|| panic!("{coll}: no index on {keys}"));
            let is_unique = found
                .options
                .as_ref()
                .and_then(|o| o.unique)
                .unwrap_or(false);
            assert_eq!(is_unique, unique, "{coll} {keys}");
        }
        f.cleanup().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_mongo_server_gone_returns_unavailable_quickly() {
        // A private server: this test kills it.
        let Some(server) = MongoServer::private(
            "mongo_layout::ping_mongo_server_gone_returns_unavailable_quickly",
        ) else {
            return;
        };
        let ns = Namespaces {
            main: server.unique_namespace(),
            session: "s".into(),
        };
        let store = Store::mongo(server.url(), ns).await.unwrap();
        store.ping().await.unwrap();

        // `stop` waits for the process to exit: keep the runtime's other worker free.
        tokio::task::block_in_place(|| server.stop());
        let started = Instant::now();
        let err = store.ping().await.unwrap_err();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "ping took {:?}",
            started.elapsed()
        );
    }

    #[tokio::test]
    async fn connect_mongo_unreachable_returns_unavailable_without_password() {
        let ns = Namespaces {
            main: "x".into(),
            session: "x".into(),
        };
        // Port 1: nothing listens; a short selection timeout from the URL is honoured.
        let url = "mongodb://wharf:s3cr3t%2Dpw@127.0.0.1:1/?serverSelectionTimeoutMS=300";
        let err = MongoStore::connect(url, ns).await.err().expect("must fail");
        let msg = err.to_string();
        assert!(matches!(err, Error::Unavailable(_)), "{err:?}");
        assert!(!msg.contains("s3cr3t"), "{msg}");
    }

    #[tokio::test]
    async fn connect_mongo_invalid_url_returns_error_without_password() {
        let ns = Namespaces {
            main: "x".into(),
            session: "x".into(),
        };
        for url in [
            "mongodb://wharf:s3cr3t-pw@127.0.0.1:1/?notAnOption=1&w=banana&tls=maybe",
            "mongodb://wharf:s3cr3t-pw@",
            "notmongo://wharf:s3cr3t-pw@host/",
        ] {
            let err = MongoStore::connect(url, ns.clone())
                .await
                .err()
                .expect("must fail");
            let msg = format!("{err} {err:?}");
            assert!(!msg.contains("s3cr3t"), "{url}: {msg}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// API keys

fn api_key(id: &str, stored: &str, session: Option<&str>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: id.into(),
        key: stored.into(),
        is_active: true,
        is_admin: session.is_none(),
        session: session.map(str::to_string),
        actions: session.map(|_| KeyActions {
            delete: true,
            ..KeyActions::NONE
        }),
    }
}

async fn api_keys_insert_find_upsert_delete_round_trip(f: &Fixture) {
    let s = &f.store;
    s.insert_session(&record("alpha", None)).await.unwrap();
    let a = api_key("key_id_b", "sha256:bb", Some("alpha"));
    let admin = api_key("key_id_a", "sha256:aa", None);
    s.insert_key(&a).await.unwrap();
    s.insert_key(&admin).await.unwrap();
    // Same id or same key: refused.
    assert!(matches!(
        s.insert_key(&api_key("key_id_b", "sha256:cc", None)).await,
        Err(Error::AlreadyExists(_))
    ));
    assert!(matches!(
        s.insert_key(&api_key("key_id_c", "sha256:aa", None)).await,
        Err(Error::AlreadyExists(_))
    ));
    assert_eq!(s.list_keys().await.unwrap(), vec![admin.clone(), a.clone()]);
    assert_eq!(s.find_key("sha256:bb").await.unwrap(), Some(a.clone()));
    assert_eq!(s.find_key("sha256:zz").await.unwrap(), None);
    assert_eq!(s.get_key("key_id_a").await.unwrap(), Some(admin.clone()));
    // Upsert replaces the whole row, the key column included (rehash in place).
    let changed = ApiKeyRecord {
        key: "sha256:dd".into(),
        is_active: false,
        ..a.clone()
    };
    s.upsert_key(&changed).await.unwrap();
    assert_eq!(s.find_key("sha256:bb").await.unwrap(), None);
    assert_eq!(s.get_key("key_id_b").await.unwrap(), Some(changed));
    assert!(s.delete_key("key_id_a").await.unwrap());
    assert!(!s.delete_key("key_id_a").await.unwrap());
    // Deleting the session removes its keys.
    s.delete_session("alpha").await.unwrap();
    assert_eq!(s.list_keys().await.unwrap(), vec![]);
}
