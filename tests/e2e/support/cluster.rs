//! Cluster-mode helpers shared by the tests that run several real wharf workers on one
//! MongoDB (`cluster.rs`, `cluster_routing.rs`, `cluster_ws.rs`): the workers' environment, starting one,
//! finding where a session runs, mockwa's login counts, reading a lease document.
//!
//! Workers are started with ids `w0`, `w1`, … and [`where_is`] relies on it: a session's
//! answer names its worker (`assignedWorker`), and with request forwarding every worker
//! answers with the owner's view.

use std::{collections::BTreeMap, time::Duration};

use mongodb::bson::{Document, doc};
use reqwest::Method;

use super::{mongo::MongoServer, poll::eventually, process::Wharf};

/// The admin key of every worker.
pub const KEY: &str = "cluster-test-key-0123456789";
/// The cluster secret of every worker.
pub const SECRET: &str = "e2e-cluster-secret-0123";
/// Lease length in the tests (seconds): short, so takeovers are quick.
pub const LEASE: &str = "4";
/// No heartbeat for this long → a worker is dead.
pub const DEAD: &str = "5";

/// Held by each cluster test for its whole run: each starts three wharf processes, and two
/// such tests at once on a 2-core machine starve the lease loops (short test leases then
/// expire and sessions churn). `tokio`'s mutex: held across awaits, not poisoned by a
/// failed test.
pub static ONE_CLUSTER_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The environment of a worker of the cluster in namespace `ns`.
pub fn cluster_env(mongo: &MongoServer, ns: &str, wa_url: &str) -> Vec<(String, String)> {
    vec![
        ("WHATSAPP_SESSIONS_MONGO_URL".into(), mongo.url().into()),
        ("WAHA_NAMESPACE".into(), ns.into()),
        ("WAHA_SESSION_NAMESPACE".into(), ns.into()),
        ("WHARF_WA_URL".into(), wa_url.into()),
        ("WHARF_CLUSTER".into(), "true".into()),
        ("WHARF_CLUSTER_SECRET".into(), SECRET.into()),
        ("WHARF_CLUSTER_LEASE_SECONDS".into(), LEASE.into()),
        ("WHARF_CLUSTER_DEAD_SECONDS".into(), DEAD.into()),
        ("WAHA_PRINT_QR".into(), "false".into()),
    ]
}

/// Starts worker `id` with `env`.
pub async fn start_worker(dir: &std::path::Path, id: &str, env: &[(String, String)]) -> Wharf {
    let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    all.push(("WAHA_WORKER_ID", id));
    Wharf::start(dir, KEY, &all).await
}

/// Waits until `n` workers have heartbeaten in `main`.
pub async fn wait_members(main: &mongodb::Database, n: u64) {
    eventually(
        Duration::from_secs(20),
        &format!("{n} workers heartbeat"),
        || async {
            let got = main
                .collection::<Document>("wharf_workers")
                .count_documents(doc! {})
                .await
                .map_err(|e| e.to_string())?;
            if got == n {
                Ok(())
            } else {
                Err(format!("{got} workers"))
            }
        },
    )
    .await;
}

/// The worker (index `i` = id `w{i}`) that runs `name` in `status`, asking each worker in
/// turn, if any.
pub async fn where_is(workers: &[Option<&Wharf>], name: &str, status: &str) -> Option<usize> {
    for (i, w) in workers.iter().enumerate() {
        let Some(w) = w else { continue };
        let (_, s) = w
            .call(Method::GET, &format!("/api/sessions/{name}"), None)
            .await;
        if s["status"] == status && s["assignedWorker"] == format!("w{i}").as_str() {
            return Some(i);
        }
    }
    None
}

/// Polls [`where_is`] until the session is in `status` somewhere.
pub async fn wait_where(
    workers: &[Option<&Wharf>],
    name: &str,
    status: &str,
    within: Duration,
) -> usize {
    eventually(within, &format!("{name} is {status} somewhere"), || async {
        where_is(workers, name, status)
            .await
            .ok_or_else(|| "not yet".to_string())
    })
    .await
}

/// mockwa's login counts, by phone: (connected, logins, displaced connections).
pub fn logins(net: &mockwa::MockNetwork) -> BTreeMap<String, (bool, u64, u64)> {
    net.devices()
        .into_iter()
        .map(|d| (d.phone, (d.connected, d.logins, d.replaced)))
        .collect()
}

/// The lease document of `name`.
pub async fn lease(db: &mongodb::Database, name: &str) -> Document {
    db.collection::<Document>("wharf_leases")
        .find_one(doc! {"_id": name})
        .await
        .expect("read lease")
        .expect("lease exists")
}

/// What every cluster test starts from: the cluster lock, a fresh namespace on the shared
/// MongoDB (with its main database), a mock network and a folder for the workers.
pub struct ClusterFixture {
    _one: tokio::sync::MutexGuard<'static, ()>,
    pub mongo: &'static MongoServer,
    pub ns: String,
    pub client: mongodb::Client,
    pub main: mongodb::Database,
    pub net: mockwa::MockNetwork,
    pub dir: tempfile::TempDir,
}

impl ClusterFixture {
    /// `None` when MongoDB is not available (the test is skipped, or fails under
    /// `WHARF_REQUIRE_MONGO`, as `MongoServer::shared` decides).
    pub async fn start(test: &str) -> Option<Self> {
        let one = ONE_CLUSTER_AT_A_TIME.lock().await;
        let mongo = MongoServer::shared(test)?;
        let ns = mongo.unique_namespace();
        let client = mongodb::Client::with_uri_str(mongo.url())
            .await
            .expect("mongo client");
        let main = client.database(&format!("waha_{ns}"));
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        Some(Self {
            _one: one,
            mongo,
            ns,
            client,
            main,
            net,
            dir: tempfile::tempdir().unwrap(),
        })
    }
}

impl Drop for ClusterFixture {
    /// A failed cluster test keeps its folder (the workers' logs `out-PORT.log`) and says
    /// where: the workers run as separate processes, so their logs are the only trace.
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dir.disable_cleanup(true);
            eprintln!(
                "cluster test failed: workers' logs kept in {}",
                self.dir.path().display()
            );
        }
    }
}
