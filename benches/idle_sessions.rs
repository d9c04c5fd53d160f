//! Memory cost of idle `WORKING` sessions (issue 4's memory target).
//!
//! Target: an idle `WORKING` session costs at most **2 MiB** of wharf process memory
//! (RSS), so 1,000 sessions fit in about 2 GiB.
//!
//! What it does: starts the in-process mock WhatsApp network (`mockwa`), spawns the real
//! `wharf` binary against it (`WHARF_WA_URL`), reads the child's `VmRSS`/`VmHWM` from
//! `/proc/<pid>/status` right after start-up (the baseline), creates and pairs N sessions
//! through the HTTP API (create, wait `SCAN_QR_CODE`, fetch the raw QR, "scan" it with the
//! mock phone, wait `WORKING`; 16 at a time), lets them idle for 5 s and measures again,
//! then 10 s more to see growth. It prints a table and `PASS`/`WARN` against the target;
//! it never fails on the figure itself, only when pairing (or start-up) fails.
//!
//! Run (the `mock-network` feature lets the binary accept `WHARF_WA_URL`; `cargo bench`
//! builds with the release profile):
//!
//! ```sh
//! cargo bench -p wharf --features mock-network --bench idle_sessions
//! WHARF_BENCH_SESSIONS=300 cargo bench -p wharf --features mock-network --bench idle_sessions
//! ```
//!
//! Environment:
//! - `WHARF_BENCH_SESSIONS`: how many sessions (default 100);
//! - `WHARF_BENCH_CONCURRENCY`: how many are paired at a time (default 16);
//! - `WHARF_BENCH_MONGO_URL`: use MongoDB (`mongodb://...`, a fresh namespace per run)
//!   instead of the embedded SQLite store in a temp dir. The database server's own memory
//!   is not counted; only wharf's process is measured.
//!
//! Linux only (`/proc`). The mock network runs in this process, so it does not inflate
//! the wharf figures.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "bench-idle-sessions-key-0123456789";
const TARGET_MIB_PER_SESSION: f64 = 2.0;
const STATUS_POLL: Duration = Duration::from_millis(200);

/// Kills the wharf child when dropped: at the end and on panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Memory figures of one process, from `/proc/<pid>/status` (kB there, MiB here).
#[derive(Clone, Copy, Default)]
struct Mem {
    rss: f64,
    hwm: f64,
    anon: f64,
    file: f64,
    threads: u64,
}

impl Mem {
    fn read(pid: u32) -> Mem {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
            .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or(0)
        };
        let mib = |kb: u64| kb as f64 / 1024.0;
        Mem {
            rss: mib(field("VmRSS")),
            hwm: mib(field("VmHWM")),
            anon: mib(field("RssAnon")),
            file: mib(field("RssFile")),
            threads: field("Threads"),
        }
    }
}

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: expected a positive number, got {v:?}")),
        _ => default,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// The last lines of wharf's log, for failure messages.
fn log_tail(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
}

impl Api {
    async fn status(&self, name: &str) -> Value {
        match self
            .http
            .get(format!("{}/api/sessions/{name}", self.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }

    async fn wait_status(&self, name: &str, want: &str, limit: Duration) -> Result<(), String> {
        let until = Instant::now() + limit;
        loop {
            let s = self.status(name).await;
            if s["status"] == want {
                return Ok(());
            }
            if Instant::now() >= until {
                return Err(format!("{name}: never {want} within {limit:?}; last: {s}"));
            }
            tokio::time::sleep(STATUS_POLL).await;
        }
    }

    /// Creates, scans and waits for `WORKING`. The QR may rotate between the fetch and
    /// the scan, so a scan the mock does not recognise is retried with a fresh QR.
    async fn pair(&self, net: &mockwa::MockNetwork, name: &str, phone: &str) -> Result<(), String> {
        let r = self
            .http
            .post(format!("{}/api/sessions", self.base))
            .header("X-Api-Key", KEY)
            .json(&json!({ "name": name }))
            .send()
            .await
            .map_err(|e| format!("{name}: create: {e}"))?;
        if r.status() != 201 {
            let code = r.status();
            return Err(format!(
                "{name}: create answered {code}: {}",
                r.text().await.unwrap_or_default()
            ));
        }
        self.wait_status(name, "SCAN_QR_CODE", Duration::from_secs(120))
            .await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let qr: Value = self
                .http
                .get(format!("{}/api/{name}/auth/qr?format=raw", self.base))
                .header("X-Api-Key", KEY)
                .send()
                .await
                .map_err(|e| format!("{name}: qr: {e}"))?
                .json()
                .await
                .map_err(|e| format!("{name}: qr body: {e}"))?;
            let Some(value) = qr["value"].as_str() else {
                return Err(format!("{name}: no QR value: {qr}"));
            };
            match net.scan_qr(value, phone, name) {
                Ok(_) => break,
                Err(e) if attempt < 5 => {
                    eprintln!("{name}: scan attempt {attempt} failed ({e:?}); retrying");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(e) => return Err(format!("{name}: scan_qr failed {attempt} times: {e:?}")),
            }
        }
        self.wait_status(name, "WORKING", Duration::from_secs(120))
            .await
    }

    async fn count_working(&self) -> usize {
        let all: Value = self
            .http
            .get(format!("{}/api/sessions?all=true", self.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
            .expect("list sessions")
            .json()
            .await
            .expect("list sessions body");
        all.as_array()
            .map(|a| a.iter().filter(|s| s["status"] == "WORKING").count())
            .unwrap_or(0)
    }
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let n = env_number("WHARF_BENCH_SESSIONS", 100).max(1);
    let concurrency = env_number("WHARF_BENCH_CONCURRENCY", 16).max(1);
    let mongo = std::env::var("WHARF_BENCH_MONGO_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
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
    let dir = tempfile::tempdir().expect("tempdir");
    let log_path = dir.path().join("wharf.log");
    let port = free_port();

    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("WHARF_BIND_HOST", "127.0.0.1")
        .env("WAHA_API_KEY", KEY)
        .env("WHARF_WA_URL", net.ws_url())
        .env("WAHA_LOCAL_STORE_BASE_DIR", dir.path().join("sessions"))
        .env("WAHA_PRINT_QR", "false")
        .env("WAHA_LOG_LEVEL", "warn")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log_path).expect("log file"))
        .stderr(
            std::fs::File::options()
                .append(true)
                .open(&log_path)
                .expect("log file"),
        );
    if let Some(url) = &mongo {
        // A fresh namespace per run, so a shared MongoDB never restarts old sessions.
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let namespace = format!("bench_{}_{stamp}", std::process::id());
        cmd.env("WHATSAPP_SESSIONS_MONGO_URL", url)
            .env("WAHA_NAMESPACE", &namespace)
            .env("WAHA_SESSION_NAMESPACE", &namespace);
    }
    let child = KillOnDrop(cmd.spawn().expect("spawn wharf"));
    let pid = child.0.id();

    let api = Api {
        http: reqwest::Client::new(),
        base: format!("http://127.0.0.1:{port}"),
    };
    let until = Instant::now() + Duration::from_secs(60);
    while api
        .http
        .get(format!("{}/ping", api.base))
        .send()
        .await
        .is_err()
    {
        assert!(
            Instant::now() < until,
            "wharf did not start:\n{}",
            log_tail(&log_path)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let start-up settle (allocator arenas, the store's first connections).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let baseline = Mem::read(pid);
    println!(
        "idle_sessions: wharf pid {pid}, {n} sessions, {concurrency} paired at a time, {store}, {profile} build"
    );

    let started = Instant::now();
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (api, net, limit) = (api.clone(), net.clone(), limit.clone());
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let name = format!("idle{i:04}");
            let phone = format!("1556{i:07}");
            api.pair(&net, &name, &phone).await
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e),
            Err(e) => failures.push(format!("pairing task panicked: {e}")),
        }
    }
    let pair_time = started.elapsed();
    assert!(
        failures.is_empty(),
        "{} of {n} sessions failed to pair:\n{}\n--- wharf log tail ---\n{}",
        failures.len(),
        failures
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n"),
        log_tail(&log_path)
    );
    let paired = Mem::read(pid);

    tokio::time::sleep(Duration::from_secs(5)).await;
    let idle5 = Mem::read(pid);
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle15 = Mem::read(pid);
    let working = api.count_working().await;
    assert_eq!(
        working,
        n,
        "only {working} of {n} sessions are still WORKING after idling:\n{}",
        log_tail(&log_path)
    );

    let row = |label: &str, m: &Mem| {
        let per = if label == "baseline" {
            "-".to_string()
        } else {
            format!("{:.3}", (m.rss - baseline.rss) / n as f64)
        };
        println!(
            "| {label:<26} | {:>9.1} | {:>9.1} | {:>9.1} | {:>9.1} | {:>7} | {per:>14} |",
            m.rss, m.hwm, m.anon, m.file, m.threads
        );
    };
    println!();
    println!(
        "| {:<26} | {:>9} | {:>9} | {:>9} | {:>9} | {:>7} | {:>14} |",
        "phase", "VmRSS MiB", "VmHWM MiB", "anon MiB", "file MiB", "threads", "Δ/session MiB"
    );
    println!(
        "|{:-<28}|{:-<11}|{:-<11}|{:-<11}|{:-<11}|{:-<9}|{:-<16}|",
        "", "", "", "", "", "", ""
    );
    row("baseline", &baseline);
    row(&format!("{n} WORKING, just paired"), &paired);
    row(&format!("{n} WORKING, idle 5 s"), &idle5);
    row(&format!("{n} WORKING, idle 15 s"), &idle15);
    println!();

    let per_session = (idle5.rss - baseline.rss) / n as f64;
    let growth = idle15.rss - idle5.rss;
    let verdict = if per_session <= TARGET_MIB_PER_SESSION {
        "PASS"
    } else {
        "WARN"
    };
    let line = |label: &str, value: String| println!("{label:<30} {value}");
    line("sessions", n.to_string());
    line("baseline RSS", format!("{:.1} MiB", baseline.rss));
    line(
        "RSS with N idle WORKING",
        format!(
            "{:.1} MiB (idle 5 s), {:.1} MiB (idle 15 s)",
            idle5.rss, idle15.rss
        ),
    );
    line(
        "(RSS - baseline) / N",
        format!(
            "{per_session:.3} MiB per session (idle 5 s) -> {verdict} \
             (target <= {TARGET_MIB_PER_SESSION} MiB)"
        ),
    );
    line(
        "growth idle 5 s -> 15 s",
        format!(
            "{growth:+.1} MiB ({:+.3} MiB per session)",
            growth / n as f64
        ),
    );
    line(
        "time to pair all",
        format!(
            "{:.1} s ({:.1} sessions/s, {concurrency} at a time)",
            pair_time.as_secs_f64(),
            n as f64 / pair_time.as_secs_f64()
        ),
    );
    line(
        "projection for 1,000 idle",
        format!("{:.0} MiB", baseline.rss + 1000.0 * per_session),
    );

    drop(child); // SIGKILL; the temp dir goes after it.
    drop(dir);
}
