//! Scale figures of issue 16, each printed next to its target.
//!
//! What it does: starts the in-process mock WhatsApp network (`mockwa`) and a loopback
//! webhook receiver, spawns the real `wharf` binary against them, pairs N sessions through
//! the HTTP API (16 at a time) plus one receiving session whose webhook points at the
//! receiver, then measures
//! - descriptors per session (`/proc/<pid>/fd`, after pairing minus before),
//! - RSS per idle session after pairing and after restore (`VmRSS`, and `RssAnon` without
//!   the binary's pages), and the RSS drift while the paired sessions idle,
//! - `sendText` one at a time, end to end: from the HTTP call on the sender to the
//!   `message` webhook of the receiving session arriving at the receiver (p50, p99), and
//!   the HTTP answer alone,
//! - `GET /api/sessions` and `GET /ping` throughput (16 keep-alive clients, 3 s each),
//! - shutdown (SIGTERM → exit) with N WORKING sessions,
//! - a restart on the same store: time to the first `/ping` answer after spawning and
//!   time until every session is WORKING again, then a second shutdown.
//!
//! It never fails on a figure, only when pairing or start-up fails. Run (`cargo bench`
//! builds the release profile; `mock-network` lets the binary accept `WHARF_WA_URL`):
//!
//! ```sh
//! cargo bench -p wharf --features mock-network --bench scale
//! WHARF_BENCH_SESSIONS=1000 cargo bench -p wharf --features mock-network --bench scale
//! ```
//!
//! Environment: `WHARF_BENCH_SESSIONS` (N, default 100), `WHARF_BENCH_MESSAGES`
//! (sequential sends, default 200), `WHARF_BENCH_MONGO_URL` (MongoDB instead of the
//! embedded store, a fresh namespace per run), `WHARF_BENCH_IDLE_MINUTES` (the idle phase
//! after pairing that samples RSS for drift, default 1; the issue's figure is 10). Linux
//! only (`/proc`, `kill`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

const KEY: &str = "bench-scale-key-0123456789abcdef";
const POLL: Duration = Duration::from_millis(50);
const LOAD_CLIENTS: usize = 16;
const LOAD_TIME: Duration = Duration::from_secs(3);

/// Kills the wharf child when dropped (end of run or panic).
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Lines of a wharf log that say a part of it missed the shutdown deadline (a session's
/// "did not stop" skipped its final flush), and the first of them.
fn late_stops(path: &Path) -> (usize, String) {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let late: Vec<&str> = log.lines().filter(|l| l.contains("did not stop")).collect();
    (
        late.len(),
        late.first().map_or(String::new(), |l| (*l).to_string()),
    )
}

/// Error and warning lines of a wharf log, with the first error, for the progress lines.
fn log_health(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    let warnings = log.lines().filter(|l| l.contains("WARN")).count();
    let emfile = log
        .lines()
        .filter(|l| l.contains("Too many open files"))
        .count();
    format!(
        "log: {} errors, {warnings} warnings, {emfile} \"Too many open files\"; first error: {}",
        errors.len(),
        errors.first().copied().unwrap_or("-")
    )
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

/// `VmRSS` of `/proc/{pid}` (`self` for this process: the mock network and the receiver),
/// in MiB.
fn rss_mib(pid: &str) -> f64 {
    status_mib(pid, "VmRSS:")
}

/// `RssAnon` of `/proc/{pid}` in MiB: the resident heap, stacks and other private memory,
/// without the pages of the binary and libraries (`RssFile`). A debug build's binary is
/// ~190 MB, and the code the first sessions run pages in once: at 100 sessions that is
/// ~0.2 MiB "per session" that no further session costs.
fn rss_anon_mib(pid: &str) -> f64 {
    status_mib(pid, "RssAnon:")
}

fn status_mib(pid: &str, key: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// `WHARF_BENCH_IDLE_MINUTES` (default 1): how long the "RSS flat over idle" phase samples
/// the paired sessions (issue 16 asks for 10 minutes).
fn idle_minutes() -> f64 {
    std::env::var("WHARF_BENCH_IDLE_MINUTES")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(1.0)
        .max(0.0)
}

/// `WHARF_DEVICE_STORE_IDLE_SECONDS` handed to wharf (its default, 10 s, when unset): the
/// bench waits that long (+2 s) before measuring idle sessions.
fn device_store_idle() -> Option<String> {
    std::env::var("WHARF_DEVICE_STORE_IDLE_SECONDS").ok()
}

fn idle_wait() -> Duration {
    let idle = device_store_idle()
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(10.0);
    Duration::from_secs_f64(idle.max(0.0) + 2.0)
}

/// A loopback HTTP/1.1 receiver (keep-alive, `Content-Length` bodies only, which is what
/// wharf sends): every body goes to the channel with its arrival time.
async fn start_receiver() -> (String, mpsc::UnboundedReceiver<(Instant, String)>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    // Request line, then headers up to the blank line.
                    let mut first = true;
                    loop {
                        line.clear();
                        match stream.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let l = line.trim_end();
                        if l.is_empty() && !first {
                            break;
                        }
                        first = false;
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = tx.send((Instant::now(), String::from_utf8_lossy(&body).into()));
                    if stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, rx)
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn get(&self, path: &str) -> Option<Value> {
        let r = self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
            .ok()?;
        r.json().await.ok()
    }

    async fn wait_status(&self, name: &str, want: &str, limit: Duration) -> Result<(), String> {
        let until = Instant::now() + limit;
        loop {
            let s = self
                .get(&format!("/api/sessions/{name}"))
                .await
                .unwrap_or_default();
            if s["status"] == want {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!("{name}: never {want} within {limit:?}; last: {s}"));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Creates (with `config`), scans the QR with the mock phone, waits `WORKING`.
    async fn pair(
        &self,
        net: &mockwa::MockNetwork,
        name: &str,
        phone: &str,
        config: Value,
    ) -> Result<(), String> {
        let r = self
            .http
            .post(format!("{}/api/sessions", self.base))
            .header("X-Api-Key", KEY)
            .json(&json!({ "name": name, "config": config }))
            .send()
            .await
            .map_err(|e| format!("{name}: create: {e}"))?;
        if r.status() != 201 {
            return Err(format!("{name}: create answered {}", r.status()));
        }
        self.wait_status(name, "SCAN_QR_CODE", Duration::from_secs(120))
            .await?;
        for attempt in 1..=5 {
            let qr = self
                .get(&format!("/api/{name}/auth/qr?format=raw"))
                .await
                .unwrap_or_default();
            let Some(value) = qr["value"].as_str() else {
                return Err(format!("{name}: no QR value: {qr}"));
            };
            match net.scan_qr(value, phone, name) {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    eprintln!("{name}: scan attempt {attempt} failed ({e:?}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("{name}: scan failed: {e:?}")),
            }
        }
        self.wait_status(name, "WORKING", Duration::from_secs(120))
            .await
    }

    /// `wharf_mongo_commands_total` by command name, from the child's `/metrics`.
    async fn mongo_commands(&self) -> Commands {
        let text = match self
            .http
            .get(format!("{}/metrics", self.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
        {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        let mut out = Commands::new();
        for line in text.lines() {
            let (family, rest) = if let Some(rest) =
                line.strip_prefix("wharf_mongo_commands_total{")
            {
                ("", rest)
            } else if let Some(rest) = line.strip_prefix("wharf_mongo_collection_commands_total{") {
                ("@", rest)
            } else {
                continue;
            };
            let Some((labels, value)) = rest.split_once("} ") else {
                continue;
            };
            let label = |key: &str| {
                labels
                    .split(',')
                    .find_map(|l| l.strip_prefix(&format!("{key}=\"")))
                    .map(|n| n.trim_end_matches('"').to_string())
            };
            let Some(name) = label("command") else {
                continue;
            };
            // By name: "find"; by collection: "@find wa_sessions".
            let key = if family.is_empty() {
                name
            } else {
                format!("@{name} {}", label("collection").unwrap_or_default())
            };
            *out.entry(key).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
        }
        out
    }

    async fn count_working(&self) -> usize {
        self.get("/api/sessions?all=true")
            .await
            .and_then(|v| {
                v.as_array()
                    .map(|a| a.iter().filter(|s| s["status"] == "WORKING").count())
            })
            .unwrap_or(0)
    }

    /// Requests per second of `GET path` from [`LOAD_CLIENTS`] keep-alive clients.
    async fn throughput(&self, path: &str) -> f64 {
        let until = Instant::now() + LOAD_TIME;
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..LOAD_CLIENTS {
            let (api, path) = (self.clone(), path.to_string());
            tasks.spawn(async move {
                let mut n = 0u64;
                while Instant::now() < until {
                    let ok = api
                        .http
                        .get(format!("{}{path}", api.base))
                        .header("X-Api-Key", KEY)
                        .send()
                        .await
                        .ok()
                        .filter(|r| r.status().is_success());
                    if let Some(r) = ok {
                        let _ = r.bytes().await;
                        n += 1;
                    }
                }
                n
            });
        }
        let mut total = 0;
        while let Some(n) = tasks.join_next().await {
            total += n.unwrap_or(0);
        }
        total as f64 / LOAD_TIME.as_secs_f64()
    }
}

/// MongoDB commands by name.
type Commands = std::collections::BTreeMap<String, f64>;

/// `after - before` per operation, e.g. `find 2.00, insert 1.50 (total 3.50)`, then one
/// line per collection (`find wa_sessions 1.00`, largest first).
fn per_op(before: &Commands, after: &Commands, ops: usize) -> String {
    let mut parts = Vec::new();
    let mut by_collection = Vec::new();
    let mut total = 0.0;
    for (name, value) in after {
        let d = (value - before.get(name).copied().unwrap_or(0.0)) / ops.max(1) as f64;
        if d <= 0.0 {
            continue;
        }
        if let Some(key) = name.strip_prefix('@') {
            by_collection.push((d, key.to_string()));
        } else {
            parts.push(format!("{name} {d:.2}"));
            total += d;
        }
    }
    by_collection.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut out = format!("{} (total {total:.2})", parts.join(", "));
    for (d, key) in by_collection {
        out.push_str(&format!("\n      {d:>7.2}  {key}"));
    }
    out
}

/// One wharf process on `dir` (its store) and `port`.
struct Wharf {
    child: KillOnDrop,
    pid: u32,
    spawned: Instant,
    log: PathBuf,
}

fn spawn_wharf(
    dir: &Path,
    port: u16,
    net: &mockwa::MockNetwork,
    mongo: &Option<(String, String)>,
) -> Wharf {
    let log = dir.join(format!("wharf-{port}.log"));
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("WHARF_BIND_HOST", "127.0.0.1")
        .env("WAHA_API_KEY", KEY)
        .env("WHARF_WA_URL", net.ws_url())
        .env("WAHA_LOCAL_STORE_BASE_DIR", dir.join("sessions"))
        .env("WAHA_PRINT_QR", "false")
        .env("WAHA_LOG_LEVEL", "info")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(Stdio::null());
    if let Some(idle) = device_store_idle() {
        cmd.env("WHARF_DEVICE_STORE_IDLE_SECONDS", idle);
    }
    // Knobs compared in the README's figures: the pre-key batch and the allocator's.
    for (k, v) in std::env::vars() {
        if k == "WHARF_PREKEY_UPLOAD_COUNT" || k.starts_with("MALLOC_") || k == "LD_PRELOAD" {
            cmd.env(k, v);
        }
    }
    if let Some((url, namespace)) = mongo {
        cmd.env("WHATSAPP_SESSIONS_MONGO_URL", url)
            .env("WHARF_METRICS_MONGO_COLLECTIONS", "true")
            .env("WAHA_NAMESPACE", namespace)
            .env("WAHA_SESSION_NAMESPACE", namespace);
    }
    let spawned = Instant::now();
    let child = cmd.spawn().expect("spawn wharf");
    Wharf {
        pid: child.id(),
        child: KillOnDrop(child),
        spawned,
        log,
    }
}

impl Wharf {
    /// Polls `/ping` every millisecond; the time from spawn to the first answer.
    async fn first_ping(&self, api: &Api) -> Duration {
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(r) = api.http.get(format!("{}/ping", api.base)).send().await
                && r.status().is_success()
            {
                return self.spawned.elapsed();
            }
            assert!(
                Instant::now() < until,
                "wharf did not answer /ping:\n{}",
                log_tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// SIGTERM, then the time until the process has exited.
    async fn shutdown(mut self) -> Duration {
        let begin = Instant::now();
        let _ = Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        loop {
            if let Ok(Some(_)) = self.child.0.try_wait() {
                return begin.elapsed();
            }
            assert!(
                begin.elapsed() < Duration::from_secs(60),
                "wharf did not exit"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
}

/// A figure as soon as it is measured (a long run that is stopped still leaves them).
fn progress(line: &str) {
    println!("[progress] {line}");
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
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
    let n = env_number("WHARF_BENCH_SESSIONS", 100).max(2);
    let messages = env_number("WHARF_BENCH_MESSAGES", 200).max(1);
    let mongo = std::env::var("WHARF_BENCH_MONGO_URL")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .map(|url| {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs();
            (url, format!("bench_{}_{stamp}", std::process::id()))
        });
    let store = if mongo.is_some() {
        "MongoDB"
    } else {
        "SQLite (embedded)"
    };
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    let net = Arc::new(
        mockwa::MockNetwork::start("127.0.0.1:0")
            .await
            .expect("mock network"),
    );
    let (hook_url, mut hooks) = start_receiver().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let api = Api {
        http: reqwest::Client::builder()
            .tcp_nodelay(true)
            .build()
            .expect("client"),
        base: format!("http://127.0.0.1:{port}"),
    };
    println!("scale: {n} sessions (+1 receiver), {store}, {profile} build");

    let wharf = spawn_wharf(dir.path(), port, &net, &mongo);
    let first_ping_empty = wharf.first_ping(&api).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fds_empty = open_fds(wharf.pid);
    let rss_empty = rss_mib(&wharf.pid.to_string());
    let anon_empty = rss_anon_mib(&wharf.pid.to_string());
    let mock_rss_empty = rss_mib("self");

    // Pair: the receiver first (its webhook gets every `message`), then N senders.
    let receiver_phone = "15990000000";
    api.pair(
        &net,
        "receiver",
        receiver_phone,
        json!({"webhooks": [{"url": hook_url, "events": ["message"]}]}),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}\n{}", log_tail(&wharf.log)));
    let mongo_before_pairing = api.mongo_commands().await;
    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (api, net, limit) = (api.clone(), net.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            api.pair(&net, &format!("s{i:05}"), &format!("1557{i:07}"), json!({}))
                .await
        });
    }
    let mut paired = 0usize;
    while let Some(done) = tasks.join_next().await {
        if let Err(e) = done.expect("pairing task") {
            panic!("{e}\n{}", log_tail(&wharf.log));
        }
        paired += 1;
        if paired.is_multiple_of(1000) {
            progress(&format!(
                "paired {paired}/{n} in {:.1} s",
                started.elapsed().as_secs_f64()
            ));
        }
    }
    let pair_time = started.elapsed();
    progress(&format!(
        "pairing done: {n} in {:.1} s = {:.1}/s",
        pair_time.as_secs_f64(),
        n as f64 / pair_time.as_secs_f64()
    ));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mongo_after_pairing = api.mongo_commands().await;
    let fds_full = open_fds(wharf.pid);
    let fds_per_session = (fds_full.saturating_sub(fds_empty)) as f64 / (n + 1) as f64;
    let mock_kib_per_device = (rss_mib("self") - mock_rss_empty) * 1024.0 / (n + 1) as f64;
    // Idle: every device store has had the time to close.
    tokio::time::sleep(idle_wait()).await;
    let fds_idle = (open_fds(wharf.pid).saturating_sub(fds_empty)) as f64 / (n + 1) as f64;
    let rss_paired = (rss_mib(&wharf.pid.to_string()) - rss_empty) / (n + 1) as f64;
    let anon_paired = (rss_anon_mib(&wharf.pid.to_string()) - anon_empty) / (n + 1) as f64;
    // RSS flat over idle: sample every 10 s (and at the end) while nothing happens.
    let idle_for = Duration::from_secs_f64(idle_minutes() * 60.0);
    let idle_started = Instant::now();
    let mut idle_samples = vec![rss_mib(&wharf.pid.to_string())];
    while idle_started.elapsed() < idle_for {
        let left = idle_for.saturating_sub(idle_started.elapsed());
        tokio::time::sleep(left.min(Duration::from_secs(10))).await;
        idle_samples.push(rss_mib(&wharf.pid.to_string()));
    }
    if idle_samples.len() > 1 {
        println!(
            "RSS over {:.1} min idle after pairing (MiB, every 10 s): {}",
            idle_for.as_secs_f64() / 60.0,
            idle_samples
                .iter()
                .map(|r| format!("{r:.1}"))
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let idle_drift = idle_samples.last().copied().unwrap_or(0.0) - idle_samples[0];
    let idle_peak = idle_samples.iter().copied().fold(0.0, f64::max) - idle_samples[0];
    progress(&format!(
        "fds/session 1 s after pairing {fds_per_session:.2}, idle {fds_idle:.2}; RSS/idle session \
         {rss_paired:.3} MiB; mock {mock_kib_per_device:.0} KiB/device"
    ));

    // sendText one at a time, end to end to the receiver's webhook.
    while hooks.try_recv().is_ok() {}
    let mut e2e = Vec::with_capacity(messages);
    let mut http = Vec::with_capacity(messages);
    for i in 0..messages {
        let text = format!("bench-{i}-{}", std::process::id());
        let t0 = Instant::now();
        let r = api
            .http
            .post(format!("{}/api/sendText", api.base))
            .header("X-Api-Key", KEY)
            .json(&json!({"session": "s00000", "chatId": format!("{receiver_phone}@c.us"), "text": text}))
            .send()
            .await
            .expect("sendText");
        assert!(r.status().is_success(), "sendText answered {}", r.status());
        let _ = r.bytes().await;
        http.push(t0.elapsed());
        loop {
            let (at, body) = tokio::time::timeout(Duration::from_secs(30), hooks.recv())
                .await
                .expect("the message webhook within 30 s")
                .expect("receiver");
            if body.contains(&text) {
                e2e.push(at - t0);
                break;
            }
        }
    }
    e2e.sort();
    http.sort();
    // Settle: the sender's acks and the receiver's webhook removals of the last message.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mongo_after_sends = api.mongo_commands().await;

    progress(&format!(
        "sendText p50 e2e {}, http {}",
        ms(percentile(&e2e, 0.5)),
        ms(percentile(&http, 0.5))
    ));
    let list_rps = api.throughput("/api/sessions").await;
    let ping_rps = api.throughput("/ping").await;
    progress(&format!(
        "GET /api/sessions {list_rps:.0} req/s, GET /ping {ping_rps:.0} req/s"
    ));
    let first_log = wharf.log.clone();
    let shutdown_full = wharf.shutdown().await;
    let late_full = late_stops(&first_log);
    progress(&log_health(&first_log));
    progress(&format!(
        "shutdown after pairing {} ({} \"did not stop\")",
        ms(shutdown_full),
        late_full.0
    ));

    // Restart on the same store: every session comes back.
    let wharf = spawn_wharf(dir.path(), port, &net, &mongo);
    let first_ping_full = wharf.first_ping(&api).await;
    let until = Instant::now() + Duration::from_secs(600);
    let mut last_report = Instant::now();
    loop {
        let working = api.count_working().await;
        if working > n {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(5) {
            last_report = Instant::now();
            progress(&format!(
                "restore: {working}/{} WORKING after {:.1} s",
                n + 1,
                wharf.spawned.elapsed().as_secs_f64()
            ));
        }
        assert!(
            Instant::now() < until,
            "restore did not finish:\n{}",
            log_tail(&wharf.log)
        );
        tokio::time::sleep(POLL).await;
    }
    let restore = wharf.spawned.elapsed();
    progress(&format!(
        "first /ping with all stored {}, restore to WORKING {}",
        ms(first_ping_full),
        ms(restore)
    ));
    let mongo_after_restore = api.mongo_commands().await;
    tokio::time::sleep(idle_wait()).await;
    let rss_restored = (rss_mib(&wharf.pid.to_string()) - rss_empty) / (n + 1) as f64;
    let anon_restored = (rss_anon_mib(&wharf.pid.to_string()) - anon_empty) / (n + 1) as f64;
    let fds_restored = (open_fds(wharf.pid).saturating_sub(fds_empty)) as f64 / (n + 1) as f64;
    let second_log = wharf.log.clone();
    let shutdown_restored = wharf.shutdown().await;
    let late_restored = late_stops(&second_log);
    progress(&log_health(&second_log));
    progress(&format!(
        "RSS/idle session after restore {rss_restored:.3} MiB, fds {fds_restored:.2}; shutdown {} \
         ({} \"did not stop\")",
        ms(shutdown_restored),
        late_restored.0
    ));

    let total = n + 1;
    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let row = |what: &str, value: String, target: &str, ok: Option<bool>| {
        println!(
            "| {what:<44} | {value:>16} | {target:<24} | {:<4} |",
            ok.map_or("", verdict)
        );
    };
    println!();
    println!(
        "| {:<44} | {:>16} | {:<24} | {:<4} |",
        "figure", "value", "target", ""
    );
    println!("|{:-<46}|{:-<18}|{:-<26}|{:-<6}|", "", "", "", "");
    let p50 = percentile(&e2e, 0.5);
    row(
        "sendText p50, end to end to the peer webhook",
        ms(p50),
        "<= 5 ms",
        Some(p50 <= Duration::from_millis(5)),
    );
    row(
        "sendText p99, end to end",
        ms(percentile(&e2e, 0.99)),
        "",
        None,
    );
    row(
        "sendText p50, HTTP answer",
        ms(percentile(&http, 0.5)),
        "",
        None,
    );
    row(
        "/ping first answer after spawn, 0 sessions",
        ms(first_ping_empty),
        "<= 100 ms",
        Some(first_ping_empty <= Duration::from_millis(100)),
    );
    row(
        &format!("/ping first answer after spawn, {total} stored"),
        ms(first_ping_full),
        "<= 100 ms",
        Some(first_ping_full <= Duration::from_millis(100)),
    );
    row(
        &format!("restore {total} sessions to WORKING"),
        ms(restore),
        "10,000 in <= 30 s",
        None,
    );
    row(
        &format!("shutdown, {total} WORKING (after pairing)"),
        ms(shutdown_full),
        "<= 5 s",
        Some(shutdown_full <= Duration::from_secs(5)),
    );
    row(
        &format!("shutdown, {total} WORKING (after restore)"),
        ms(shutdown_restored),
        "<= 5 s",
        Some(shutdown_restored <= Duration::from_secs(5)),
    );
    for (when, (count, first)) in [
        ("after pairing", &late_full),
        ("after restore", &late_restored),
    ] {
        row(
            &format!("\"did not stop\" log lines, shutdown {when}"),
            count.to_string(),
            "0",
            Some(*count == 0),
        );
        if *count > 0 {
            println!("    first: {first}");
        }
    }
    row(
        "descriptors per session, 1 s after pairing",
        format!("{fds_per_session:.2}"),
        "",
        None,
    );
    row(
        "descriptors per session, idle after pairing",
        format!("{fds_idle:.2}"),
        "<= 2",
        Some(fds_idle <= 2.0),
    );
    row(
        "descriptors per session, idle after restore",
        format!("{fds_restored:.2}"),
        "<= 2",
        Some(fds_restored <= 2.0),
    );
    row(
        "RSS per idle session after pairing (MiB)",
        format!("{rss_paired:.3}"),
        "<= 0.25",
        Some(rss_paired <= 0.25),
    );
    row(
        "RSS per idle session after restore (MiB)",
        format!("{rss_restored:.3}"),
        "<= 0.25",
        Some(rss_restored <= 0.25),
    );
    row(
        "RSS (anon) per idle session after pairing",
        format!("{anon_paired:.3}"),
        "<= 0.25",
        Some(anon_paired <= 0.25),
    );
    row(
        "RSS (anon) per idle session after restore",
        format!("{anon_restored:.3}"),
        "<= 0.25",
        Some(anon_restored <= 0.25),
    );
    if idle_samples.len() > 1 {
        row(
            &format!(
                "RSS drift over {:.1} min idle (MiB, whole)",
                idle_for.as_secs_f64() / 60.0
            ),
            format!("{idle_drift:+.1} (peak {idle_peak:+.1})"),
            "flat (<= 1 MiB or 1 %)",
            Some(idle_drift <= (idle_samples[0] * 0.01).max(1.0)),
        );
    }
    row(
        "mock network RSS per connected device (KiB)",
        format!("{mock_kib_per_device:.0}"),
        "10,000 devices fit",
        None,
    );
    row(
        &format!("GET /api/sessions req/s, {total} sessions"),
        format!("{list_rps:.0}"),
        ">= 10,000 at 1,000",
        None,
    );
    row(
        "GET /ping req/s",
        format!("{ping_rps:.0}"),
        ">= 50,000",
        Some(ping_rps >= 50_000.0),
    );
    row(
        &format!("pairing ({n}, 16 at a time)"),
        format!("{:.1}/s", n as f64 / pair_time.as_secs_f64()),
        ">= 100/s",
        Some(n as f64 / pair_time.as_secs_f64() >= 100.0),
    );
    if mongo.is_some() {
        println!();
        println!("MongoDB commands (round trips) per operation, from /metrics:");
        println!(
            "  pairing (per session):      {}",
            per_op(&mongo_before_pairing, &mongo_after_pairing, n)
        );
        println!(
            "  sendText, end to end:       {}",
            per_op(&mongo_after_pairing, &mongo_after_sends, messages)
        );
        println!("    (sender: store + message.any outbox + delivery; receiver: inbound store + ");
        println!("     message outbox + delivery + removal; both sessions' acks)");
        println!(
            "  restore (per session):      {}",
            per_op(&Commands::new(), &mongo_after_restore, total)
        );
    }
    println!();
    println!("(load generator, mock network and receiver share the machine with wharf)");
    drop(dir);
}
