//! Cluster scale figures of issue 15, each printed next to its target.
//!
//! What it does: starts the in-process mock WhatsApp network (`mockwa`), uses MongoDB
//! (`WHARF_BENCH_MONGO_URL`, or a SecantusDB it spawns from `MONGO_SERVER_BIN`), spawns
//! three real `wharf` workers in cluster mode on it (`WHARF_CLUSTER=true`, one shared
//! `WHARF_CLUSTER_SECRET`), pairs N sessions through the HTTP API (4 at a time, each
//! created on the next worker in turn; placement spreads them), then measures
//! - sessions per worker (the lease owners in `wharf_leases`), each worker's RSS before
//!   and after pairing, and sessions per GiB from the RSS growth per session;
//! - takeover: SIGKILL the worker holding the most sessions; for each of its sessions, the
//!   time until it is `WORKING` on a survivor, from the kill and from the moment its lease
//!   expired (`expires_at` as last renewed) — target ≤ 30 s after the lease expired — and
//!   where the sessions went, and whether mockwa saw any device displaced (two
//!   connections for one device);
//! - drain: SIGTERM the survivor holding the most sessions; for each of its sessions, how
//!   long it was `WORKING` nowhere (polled every 50 ms on every live worker) — target: a
//!   few seconds — and the time from SIGTERM to exit.
//!
//! It never fails on a figure, only when a step does not happen. Run with the dev profile
//! (the figures are dominated by the lease and dead-worker timers, not by code speed;
//! SecantusDB, the Python MongoDB-protocol server, makes pairing slow — never judge the
//! wall time of MongoDB work from it):
//!
//! ```sh
//! MONGO_SERVER_BIN=.mongo-venv/bin/secantusd-py \
//!   cargo bench -p wharf --features mock-network --profile dev --bench cluster
//! WHARF_BENCH_SESSIONS=60 WHARF_BENCH_MONGO_URL=mongodb://127.0.0.1:27017/ \
//!   cargo bench -p wharf --features mock-network --profile dev --bench cluster
//! ```
//!
//! Environment: `WHARF_BENCH_SESSIONS` (N, default 30), `WHARF_BENCH_KEEP_LOGS` (keep the
//! workers' logs and print where), `WHARF_BENCH_LEASE_SECONDS` and
//! `WHARF_BENCH_DEAD_SECONDS` (the workers' `WHARF_CLUSTER_LEASE_SECONDS` /
//! `_DEAD_SECONDS`, default wharf's own 10 and 15), `WHARF_BENCH_MONGO_URL`,
//! `MONGO_SERVER_BIN`. A fresh namespace per run. Linux only (`/proc`, `kill`).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use mongodb::bson::{Document, doc};
use serde_json::{Value, json};

const KEY: &str = "bench-cluster-key-0123456789abcdef";
const SECRET: &str = "bench-cluster-secret-0123456789";
const WORKERS: usize = 3;
const PAIR_AT_ONCE: usize = 4;
/// How often the takeover and drain phases look at every session.
const POLL: Duration = Duration::from_millis(50);
/// Longest a phase may take before the bench gives up (not a target).
const PHASE_LIMIT: Duration = Duration::from_secs(300);

/// Kills the child when dropped (end of run or panic).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: expected a number, got {v:?}")),
        _ => default,
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// `VmRSS` of a process in MiB.
fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// A SecantusDB on a free port from `bin`, killed when dropped; its URL.
fn spawn_secantus(bin: &str) -> (KillOnDrop, String) {
    let mut child = Command::new(bin)
        .args([
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--storage-path",
            ":memory:",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot spawn {bin}: {e}"));
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel();
    // Keeps draining the server's log after start-up so a full pipe never blocks it.
    std::thread::spawn(move || {
        let mut tx = Some(tx);
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(port) = line
                .split_once("listening on ")
                .and_then(|(_, a)| a.trim().rsplit_once(':'))
                .and_then(|(_, p)| p.parse::<u16>().ok())
                && let Some(tx) = tx.take()
            {
                let _ = tx.send(port);
            }
        }
    });
    let port = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{bin} did not say `listening on` within 60 s: {e}"));
    (KillOnDrop(child), format!("mongodb://127.0.0.1:{port}/"))
}

/// One worker process.
struct Worker {
    id: String,
    base: String,
    child: Option<KillOnDrop>,
    pid: u32,
    log: PathBuf,
}

impl Worker {
    fn spawn(dir: &Path, id: &str, env: &[(String, String)]) -> Self {
        let port = free_port();
        let base = format!("http://127.0.0.1:{port}");
        let log = dir.join(format!("{id}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("WHARF_BIND_HOST", "127.0.0.1")
            .env("WAHA_API_KEY", KEY)
            .env("WAHA_WORKER_ID", id)
            .env("WHARF_ADVERTISE_URL", &base)
            .env("WAHA_PRINT_QR", "false")
            .env("WAHA_LOG_LEVEL", "info")
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null());
        let child = cmd.spawn().expect("spawn wharf");
        Self {
            id: id.to_string(),
            base,
            pid: child.id(),
            child: Some(KillOnDrop(child)),
            log,
        }
    }

    fn alive(&self) -> bool {
        self.child.is_some()
    }

    fn signal(&self, signal: &str) {
        let _ = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid.to_string()])
            .status();
    }

    /// The exit code once the process has exited.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.0.try_wait().ok().flatten())
    }
}

#[derive(Clone)]
struct Http(reqwest::Client);

impl Http {
    async fn get(&self, base: &str, path: &str) -> Option<Value> {
        let r = self
            .0
            .get(format!("{base}{path}"))
            .header("X-Api-Key", KEY)
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    /// Names of the sessions `base` reports `WORKING` (empty when it does not answer).
    async fn working_on(&self, base: &str) -> BTreeSet<String> {
        self.get(base, "/api/sessions?all=true")
            .await
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|s| s["status"] == "WORKING")
            .filter_map(|s| s["name"].as_str().map(str::to_string))
            .collect()
    }

    /// The base URL of the worker (among `bases`) that reports `name` in `status`.
    async fn where_is(&self, bases: &[String], name: &str, status: &str) -> Option<String> {
        for base in bases {
            if let Some(s) = self.get(base, &format!("/api/sessions/{name}")).await
                && s["status"] == status
            {
                return Some(base.clone());
            }
        }
        None
    }

    /// Creates `name` through `via`, then until it is `WORKING` somewhere: scans the QR of
    /// whichever worker shows one (a session whose lease moves while it pairs shows a new
    /// QR on its new owner).
    async fn pair(
        &self,
        net: &mockwa::MockNetwork,
        bases: &[String],
        via: &str,
        name: &str,
        phone: &str,
    ) -> Result<(), String> {
        let r = self
            .0
            .post(format!("{via}/api/sessions"))
            .header("X-Api-Key", KEY)
            .json(&json!({ "name": name }))
            .send()
            .await
            .map_err(|e| format!("{name}: create: {e}"))?;
        if r.status() != 201 {
            return Err(format!("{name}: create answered {}", r.status()));
        }
        let until = Instant::now() + PHASE_LIMIT;
        let mut scanned: Option<String> = None;
        loop {
            if self.where_is(bases, name, "WORKING").await.is_some() {
                return Ok(());
            }
            if let Some(at) = self.where_is(bases, name, "SCAN_QR_CODE").await {
                let qr = self
                    .get(&at, &format!("/api/{name}/auth/qr?format=raw"))
                    .await
                    .unwrap_or_default();
                if let Some(value) = qr["value"].as_str()
                    && scanned.as_deref() != Some(value)
                {
                    match net.scan_qr(value, phone, name) {
                        Ok(_) => scanned = Some(value.to_string()),
                        Err(e) => eprintln!("{name}: scan failed ({e:?}); retrying"),
                    }
                }
            }
            if Instant::now() >= until {
                return Err(format!("{name}: not WORKING within {PHASE_LIMIT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }
}

/// How many times each worker's log says it lost a lease.
fn lease_losses(workers: &[Worker]) -> Vec<usize> {
    workers
        .iter()
        .map(|w| {
            std::fs::read_to_string(&w.log)
                .unwrap_or_default()
                .matches("lease lost; stopping it here")
                .count()
        })
        .collect()
}

/// Lease documents by session name.
async fn leases(db: &mongodb::Database) -> BTreeMap<String, Document> {
    let mut out = BTreeMap::new();
    let mut cursor = db
        .collection::<Document>("wharf_leases")
        .find(doc! {})
        .await
        .expect("read leases");
    while cursor.advance().await.expect("lease cursor") {
        let d = cursor.deserialize_current().expect("lease document");
        if let Ok(name) = d.get_str("_id") {
            out.insert(name.to_string(), d);
        }
    }
    out
}

fn owner(lease: &Document) -> &str {
    lease.get_str("owner").unwrap_or("")
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn secs(d: Duration) -> String {
    format!("{:.2} s", d.as_secs_f64())
}

/// `min / p50 / p90 / max` of a distribution.
fn spread(mut v: Vec<Duration>) -> String {
    v.sort();
    format!(
        "{} / {} / {} / {}",
        secs(v.first().copied().unwrap_or_default()),
        secs(percentile(&v, 0.5)),
        secs(percentile(&v, 0.9)),
        secs(v.last().copied().unwrap_or_default()),
    )
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

#[expect(
    clippy::too_many_lines,
    reason = "one linear scenario, printed in order"
)]
async fn run() {
    let n = env_number("WHARF_BENCH_SESSIONS", 30).max(WORKERS);
    let lease = env_number("WHARF_BENCH_LEASE_SECONDS", 10);
    let dead = env_number("WHARF_BENCH_DEAD_SECONDS", 15);
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let (_mongo_child, mongo_url, mongo_kind) = if let Some(url) =
        env_nonempty("WHARF_BENCH_MONGO_URL")
    {
        (None, url, "MongoDB at WHARF_BENCH_MONGO_URL")
    } else if let Some(bin) = env_nonempty("MONGO_SERVER_BIN") {
        let (child, url) = spawn_secantus(&bin);
        (Some(child), url, "SecantusDB (MONGO_SERVER_BIN)")
    } else {
        eprintln!("cluster bench: needs MongoDB: set WHARF_BENCH_MONGO_URL or MONGO_SERVER_BIN");
        std::process::exit(2);
    };
    let namespace = format!("bench_cluster_{}_{}", std::process::id(), now_ms() / 1000);
    let client = mongodb::Client::with_uri_str(&mongo_url)
        .await
        .expect("mongo client");
    let main_db = client.database(&format!("waha_{namespace}"));
    let net = Arc::new(
        mockwa::MockNetwork::start("127.0.0.1:0")
            .await
            .expect("mock network"),
    );
    let mut dir = tempfile::tempdir().expect("tempdir");
    if env_nonempty("WHARF_BENCH_KEEP_LOGS").is_some() {
        dir.disable_cleanup(true);
        println!("worker logs kept in {}", dir.path().display());
    }
    let env: Vec<(String, String)> = vec![
        ("WHATSAPP_SESSIONS_MONGO_URL".into(), mongo_url.clone()),
        ("WAHA_NAMESPACE".into(), namespace.clone()),
        ("WAHA_SESSION_NAMESPACE".into(), namespace.clone()),
        ("WHARF_WA_URL".into(), net.ws_url()),
        ("WHARF_CLUSTER".into(), "true".into()),
        ("WHARF_CLUSTER_SECRET".into(), SECRET.into()),
        ("WHARF_CLUSTER_LEASE_SECONDS".into(), lease.to_string()),
        ("WHARF_CLUSTER_DEAD_SECONDS".into(), dead.to_string()),
    ];
    println!(
        "cluster: {WORKERS} workers, {n} sessions, {mongo_kind}, {profile} build, lease {lease} s, dead after {dead} s"
    );
    let http = Http(
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("client"),
    );
    let mut workers: Vec<Worker> = (0..WORKERS)
        .map(|i| Worker::spawn(dir.path(), &format!("w{i}"), &env))
        .collect();
    let logs = |workers: &[Worker]| {
        workers
            .iter()
            .map(|w| format!("--- {} ---\n{}", w.id, log_tail(&w.log)))
            .collect::<Vec<_>>()
            .join("\n")
    };
    // Every worker answers and has joined the membership before anything is placed.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        let mut up = 0;
        for w in &workers {
            if http.get(&w.base, "/api/sessions?all=true").await.is_some() {
                up += 1;
            }
        }
        let members = main_db
            .collection::<Document>("wharf_workers")
            .count_documents(doc! {})
            .await
            .unwrap_or(0);
        if up == WORKERS && members == WORKERS as u64 {
            break;
        }
        assert!(
            Instant::now() < until,
            "workers did not start:\n{}",
            logs(&workers)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before: Vec<f64> = workers.iter().map(|w| rss_mib(w.pid)).collect();

    // Pair N sessions, each created on the next worker in turn.
    let bases: Vec<String> = workers.iter().map(|w| w.base.clone()).collect();
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(PAIR_AT_ONCE));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, net, limit, bases) = (http.clone(), net.clone(), limit.clone(), bases.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let via = bases[i % bases.len()].clone();
            http.pair(
                &net,
                &bases,
                &via,
                &format!("k{i:04}"),
                &format!("1558{i:07}"),
            )
            .await
        });
    }
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("pairing task") {
            panic!("{e}\n{}", logs(&workers));
        }
    }
    let pair_time = started.elapsed();
    let losses_pairing = lease_losses(&workers);
    // Let the post-pairing work (history, app state, key uploads) settle before reading RSS.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let rss_after: Vec<f64> = workers.iter().map(|w| rss_mib(w.pid)).collect();
    let placed = leases(&main_db).await;
    let per_worker: Vec<usize> = workers
        .iter()
        .map(|w| placed.values().filter(|l| owner(l) == w.id).count())
        .collect();

    println!();
    println!(
        "Pairing: {n} sessions in {} ({:.1}/s, {PAIR_AT_ONCE} at a time; SecantusDB-bound, not a figure)",
        secs(pair_time),
        n as f64 / pair_time.as_secs_f64()
    );
    println!(
        "Leases lost while pairing, per worker: {losses_pairing:?} (a lease the loop could not renew in time: \
         the session moved and was paired again)"
    );
    println!();
    println!(
        "| {:<6} | {:>8} | {:>12} | {:>12} | {:>14} | {:>16} |",
        "worker", "sessions", "RSS before", "RSS after", "MiB / session", "sessions / GiB"
    );
    println!(
        "|{:-<8}|{:-<10}|{:-<14}|{:-<14}|{:-<16}|{:-<18}|",
        "", "", "", "", "", ""
    );
    for (i, w) in workers.iter().enumerate() {
        let growth = rss_after[i] - rss_before[i];
        let per = if per_worker[i] > 0 {
            growth / per_worker[i] as f64
        } else {
            0.0
        };
        println!(
            "| {:<6} | {:>8} | {:>8.1} MiB | {:>8.1} MiB | {:>14.2} | {:>16} |",
            w.id,
            per_worker[i],
            rss_before[i],
            rss_after[i],
            per,
            if per > 0.0 {
                format!("{:.0}", 1024.0 / per)
            } else {
                "-".into()
            }
        );
    }
    let total_growth: f64 = rss_after.iter().sum::<f64>() - rss_before.iter().sum::<f64>();
    let mib_per_session = total_growth / n as f64;
    let spread_ok =
        per_worker.iter().max().unwrap_or(&0) - per_worker.iter().min().unwrap_or(&0) <= 1;

    // ---- Takeover: SIGKILL the worker holding the most sessions. ----
    let victim = (0..WORKERS)
        .max_by_key(|&i| per_worker[i])
        .expect("workers");
    let victim_id = workers[victim].id.clone();
    let orphans: Vec<String> = placed
        .iter()
        .filter(|(_, l)| owner(l) == victim_id)
        .map(|(n, _)| n.clone())
        .collect();
    let replaced_before: u64 = net.devices().iter().map(|d| d.replaced).sum();
    workers[victim].signal("KILL");
    let kill_at = Instant::now();
    let kill_ms = now_ms();
    // Reaps it (the kill on drop finds it dead already).
    drop(workers[victim].child.take());
    // Each orphan's lease expiry: its last renewal, which nothing can move any more.
    let before_kill = leases(&main_db).await;
    let survivors: Vec<String> = workers
        .iter()
        .filter(|w| w.alive())
        .map(|w| w.base.clone())
        .collect();
    let mut back: BTreeMap<String, Duration> = BTreeMap::new();
    let phase_end = Instant::now() + PHASE_LIMIT;
    while back.len() < orphans.len() {
        let mut working = BTreeSet::new();
        for base in &survivors {
            working.extend(http.working_on(base).await);
        }
        let t = kill_at.elapsed();
        for name in &orphans {
            if working.contains(name) {
                back.entry(name.clone()).or_insert(t);
            }
        }
        assert!(
            Instant::now() < phase_end,
            "takeover: {}/{} back after {PHASE_LIMIT:?}:\n{}",
            back.len(),
            orphans.len(),
            logs(&workers)
        );
        tokio::time::sleep(POLL).await;
    }
    let after_kill = leases(&main_db).await;
    // Per session: from the kill, and from its lease's expiry (wall clocks of this host).
    let from_kill: Vec<Duration> = back.values().copied().collect();
    let from_expiry: Vec<Duration> = orphans
        .iter()
        .map(|name| {
            let expires = before_kill
                .get(name)
                .and_then(|l| l.get_i64("expires_at").ok())
                .unwrap_or(kill_ms);
            let back_ms = kill_ms + i64::try_from(back[name].as_millis()).unwrap_or(0);
            Duration::from_millis(u64::try_from(back_ms - expires).unwrap_or(0))
        })
        .collect();
    let lease_left: Vec<Duration> = orphans
        .iter()
        .filter_map(|name| before_kill.get(name)?.get_i64("expires_at").ok())
        .map(|e| Duration::from_millis(u64::try_from(e - kill_ms).unwrap_or(0)))
        .collect();
    let mut went: BTreeMap<String, usize> = BTreeMap::new();
    for name in &orphans {
        *went
            .entry(after_kill.get(name).map_or("?", owner).to_string())
            .or_default() += 1;
    }
    let replaced_after_kill: u64 = net.devices().iter().map(|d| d.replaced).sum();
    let worst_expiry = from_expiry.iter().max().copied().unwrap_or_default();

    // ---- Drain: SIGTERM the survivor holding the most sessions. ----
    let owned = leases(&main_db).await;
    let drained = (0..WORKERS)
        .filter(|&i| workers[i].alive())
        .max_by_key(|&i| owned.values().filter(|l| owner(l) == workers[i].id).count())
        .expect("a survivor");
    let drained_id = workers[drained].id.clone();
    let moving: Vec<String> = owned
        .iter()
        .filter(|(_, l)| owner(l) == drained_id)
        .map(|(n, _)| n.clone())
        .collect();
    let alive_bases: Vec<String> = workers
        .iter()
        .filter(|w| w.alive())
        .map(|w| w.base.clone())
        .collect();
    workers[drained].signal("TERM");
    let term_at = Instant::now();
    let mut exit_after = None;
    // Per session: the first poll that saw it WORKING nowhere, and the first one after that
    // which saw it WORKING again.
    let mut down_since: BTreeMap<String, Duration> = BTreeMap::new();
    let mut downtime: BTreeMap<String, Duration> = BTreeMap::new();
    let phase_end = Instant::now() + PHASE_LIMIT;
    while downtime.len() < moving.len() || exit_after.is_none() {
        let mut working = BTreeSet::new();
        for base in &alive_bases {
            working.extend(http.working_on(base).await);
        }
        let t = term_at.elapsed();
        for name in &moving {
            if downtime.contains_key(name) {
                continue;
            }
            if working.contains(name) {
                if let Some(since) = down_since.get(name) {
                    downtime.insert(name.clone(), t - *since);
                } else if exit_after.is_some() && !workers[drained].alive() {
                    // Never seen down: it moved between two polls.
                    downtime.insert(name.clone(), Duration::ZERO);
                }
            } else {
                down_since.entry(name.clone()).or_insert(t);
            }
        }
        if exit_after.is_none()
            && let Some(code) = workers[drained].exited()
        {
            exit_after = Some((term_at.elapsed(), code));
            workers[drained].child = None;
        }
        assert!(
            Instant::now() < phase_end,
            "drain: {}/{} back after {PHASE_LIMIT:?}:\n{}",
            downtime.len(),
            moving.len(),
            logs(&workers)
        );
        tokio::time::sleep(POLL).await;
    }
    let replaced_after_drain: u64 = net.devices().iter().map(|d| d.replaced).sum();
    let (exit_time, exit_code) = exit_after.expect("exited");
    let worst_down = downtime.values().max().copied().unwrap_or_default();

    // A forwarding-latency phase (sendText through a worker that does not own the session,
    // against the owner directly) belongs here, once requests are forwarded; h-route
    // measures forwarding in its own bench for now.

    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let row = |what: &str, value: String, target: &str, ok: Option<bool>| {
        println!(
            "| {what:<50} | {value:>40} | {target:<22} | {:<4} |",
            ok.map_or("", verdict)
        );
    };
    println!();
    println!(
        "| {:<50} | {:>40} | {:<22} | {:<4} |",
        "figure", "value", "target", ""
    );
    println!("|{:-<52}|{:-<42}|{:-<24}|{:-<6}|", "", "", "", "");
    row(
        "sessions per worker",
        format!("{per_worker:?}"),
        "spread evenly",
        Some(spread_ok),
    );
    row(
        "RSS growth per session (all workers)",
        format!("{mib_per_session:.2} MiB"),
        "<= 2 MiB",
        Some(mib_per_session <= 2.0),
    );
    row(
        "sessions per GiB of RSS growth",
        if mib_per_session > 0.0 {
            format!("{:.0}", 1024.0 / mib_per_session)
        } else {
            "-".into()
        },
        ">= 512",
        Some(mib_per_session > 0.0 && 1024.0 / mib_per_session >= 512.0),
    );
    row(
        &format!("SIGKILL {victim_id}: sessions taken over"),
        format!("{} -> {went:?}", orphans.len()),
        "all, to the survivors",
        Some(back.len() == orphans.len()),
    );
    row(
        "  lease left at the kill (min/p50/p90/max)",
        spread(lease_left),
        "",
        None,
    );
    row(
        "  WORKING again after the kill (min/p50/p90/max)",
        spread(from_kill),
        "",
        None,
    );
    row(
        "  ... after its lease expired (min/p50/p90/max)",
        spread(from_expiry),
        "<= 30 s (max)",
        Some(worst_expiry <= Duration::from_secs(30)),
    );
    row(
        "  devices displaced (two connections) during it",
        (replaced_after_kill - replaced_before).to_string(),
        "0",
        Some(replaced_after_kill == replaced_before),
    );
    row(
        &format!("SIGTERM {drained_id}: sessions handed over"),
        format!(
            "{} (exit {} after {})",
            moving.len(),
            exit_code.code().map_or("-".into(), |c| c.to_string()),
            secs(exit_time)
        ),
        "all",
        Some(downtime.len() == moving.len() && exit_code.success()),
    );
    row(
        "  WORKING nowhere (min/p50/p90/max)",
        spread(downtime.values().copied().collect()),
        "a few s (max <= 5 s)",
        Some(worst_down <= Duration::from_secs(5)),
    );
    row(
        "  devices displaced during it",
        (replaced_after_drain - replaced_after_kill).to_string(),
        "0",
        Some(replaced_after_drain == replaced_after_kill),
    );
    println!();
    println!("(mock network, MongoDB and the poller share the machine with the workers; takeover");
    println!(" = dead-worker timer + a lease-loop tick + reconnect, polled every {POLL:?})");
    drop(workers);
    let _ = client.database(&format!("waha_{namespace}")).drop().await;
    for name in placed.keys() {
        let _ = client
            .database(&format!("waha_{namespace}_{name}"))
            .drop()
            .await;
    }
    drop(dir);
}
