//! The cost of forwarding in cluster mode (issue 15, item 6): `sendText` latency through
//! the worker that runs the session vs through one that forwards it there.
//!
//! Target: forwarding adds at most **2 ms at p50** (one loopback HTTP hop on a kept-alive
//! connection plus a routing lookup in memory).
//!
//! What it does: starts the in-process mock WhatsApp network (`mockwa`) and two real
//! `wharf` workers in cluster mode on one MongoDB (`WHARF_BENCH_MONGO_URL`, a fresh
//! namespace per run), creates and pairs session `a` (placed on `w0`, the worker asked,
//! as placement prefers it on a tie) and `b`, then sends N texts from `a` to `b`,
//! alternating the entry worker: `w0` (the owner) and `w1` (forwards to `w0`). Each
//! request is timed at the client (send → full answer). It prints p50/p90/p99 of both and
//! the difference at p50 and p99, next to the target; it never fails on a figure.
//!
//! ```sh
//! WHARF_BENCH_MONGO_URL=mongodb://127.0.0.1:27017/ \
//!   cargo bench -p wharf --features mock-network --bench cluster_forward
//! WHARF_BENCH_SENDS=200 ... --profile dev ...   # a debug build, faster to build
//! ```

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const KEY: &str = "bench-cluster-forward-key-0123456789";
const TARGET_ADDED_P50_MS: f64 = 2.0;
const POLL: Duration = Duration::from_millis(100);

/// Kills the wharf child when dropped: at the end and on panic.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Worker {
    base: String,
    http: reqwest::Client,
    _child: KillOnDrop,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

impl Worker {
    async fn start(id: &str, mongo: &str, ns: &str, wa: &str, dir: &std::path::Path) -> Self {
        let port = free_port();
        let log = std::fs::File::create(dir.join(format!("{id}.log"))).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("WAHA_API_KEY", KEY)
            .env("WAHA_WORKER_ID", id)
            .env("WHATSAPP_SESSIONS_MONGO_URL", mongo)
            .env("WAHA_NAMESPACE", ns)
            .env("WAHA_SESSION_NAMESPACE", ns)
            .env("WHARF_WA_URL", wa)
            .env("WHARF_CLUSTER", "true")
            .env("WHARF_CLUSTER_SECRET", "bench-cluster-secret-0123")
            .env("WAHA_PRINT_QR", "false")
            .env("WAHA_LOG_LEVEL", "warn")
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("wharf starts");
        let w = Self {
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::builder()
                .tcp_nodelay(true)
                .build()
                .expect("client"),
            _child: KillOnDrop(child),
        };
        w.until(
            "answers /ping",
            Duration::from_secs(60),
            |v| v.is_object(),
            "/ping",
        )
        .await;
        w
    }

    async fn get(&self, path: &str) -> Value {
        match self
            .http
            .get(format!("{}{path}", self.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or_default(),
            Err(_) => Value::Null,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("X-Api-Key", KEY)
            .json(body)
            .send()
            .await
            .expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or_default())
    }

    async fn until(&self, what: &str, within: Duration, ok: impl Fn(&Value) -> bool, path: &str) {
        let deadline = Instant::now() + within;
        loop {
            let v = self.get(path).await;
            if ok(&v) {
                return;
            }
            assert!(Instant::now() < deadline, "{what}: last {v}");
            tokio::time::sleep(POLL).await;
        }
    }

    async fn pair(&self, net: &mockwa::MockNetwork, name: &str, phone: &str) -> String {
        let (st, body) = self.post("/api/sessions", &json!({"name": name})).await;
        assert_eq!(st, 201, "{body}");
        let path = format!("/api/sessions/{name}");
        self.until(
            "SCAN_QR_CODE",
            Duration::from_secs(60),
            |v| v["status"] == "SCAN_QR_CODE",
            &path,
        )
        .await;
        let qr = self.get(&format!("/api/{name}/auth/qr?format=raw")).await;
        net.scan_qr(qr["value"].as_str().expect("raw QR"), phone, name)
            .expect("scan");
        self.until(
            "WORKING",
            Duration::from_secs(60),
            |v| v["status"] == "WORKING",
            &path,
        )
        .await;
        self.get(&path).await["assignedWorker"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Ok(mongo) = std::env::var("WHARF_BENCH_MONGO_URL") else {
        eprintln!("cluster_forward: set WHARF_BENCH_MONGO_URL (cluster mode needs MongoDB)");
        return;
    };
    let sends: usize = std::env::var("WHARF_BENCH_SENDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(500);
    let ns = format!("benchfwd{}", std::process::id());
    let net = mockwa::MockNetwork::start("127.0.0.1:0")
        .await
        .expect("mockwa");
    let dir = tempfile::tempdir().expect("dir");
    let w0 = Worker::start("w0", &mongo, &ns, &net.ws_url(), dir.path()).await;
    let w1 = Worker::start("w1", &mongo, &ns, &net.ws_url(), dir.path()).await;
    // Both have heartbeaten (the lease loop's first round) before anything is placed.
    let client = mongodb::Client::with_uri_str(&mongo).await.expect("mongo");
    let main_db = client.database(&format!("waha_{ns}"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while main_db
        .collection::<mongodb::bson::Document>("wharf_workers")
        .count_documents(mongodb::bson::doc! {})
        .await
        .unwrap_or(0)
        < 2
    {
        assert!(Instant::now() < deadline, "two workers heartbeat");
        tokio::time::sleep(POLL).await;
    }
    let a_on = w0.pair(&net, "a", "15559100001").await;
    let b_on = w0.pair(&net, "b", "15559100002").await;
    println!("session a runs on {a_on}, b on {b_on}");
    assert_eq!(a_on, "w0", "the sender must run on w0");
    let send = |w: &Worker, i: usize| {
        let body = json!({"session": "a", "chatId": "15559100002@c.us", "text": format!("m{i}")});
        let http = w.http.clone();
        let url = format!("{}/api/sendText", w.base);
        async move {
            let t = Instant::now();
            let r = http
                .post(url)
                .header("X-Api-Key", KEY)
                .json(&body)
                .send()
                .await
                .expect("send");
            let st = r.status().as_u16();
            let _ = r.bytes().await;
            assert_eq!(st, 201, "send {i}");
            t.elapsed().as_secs_f64() * 1000.0
        }
    };
    // Warm-up: connections, the routing snapshot, caches.
    for i in 0..20 {
        send(&w0, i).await;
        send(&w1, i).await;
    }
    let (mut owner, mut forwarded) = (Vec::with_capacity(sends), Vec::with_capacity(sends));
    for i in 0..sends {
        owner.push(send(&w0, i).await);
        forwarded.push(send(&w1, i).await);
    }
    owner.sort_by(f64::total_cmp);
    forwarded.sort_by(f64::total_cmp);
    println!("\nsendText latency, {sends} each, sequential, alternating (ms):");
    println!("| entry worker | p50 | p90 | p99 |");
    println!("|---|---|---|---|");
    for (label, v) in [("owner (w0)", &owner), ("non-owner (w1 → w0)", &forwarded)] {
        println!(
            "| {label} | {:.2} | {:.2} | {:.2} |",
            pct(v, 0.5),
            pct(v, 0.9),
            pct(v, 0.99)
        );
    }
    let added50 = pct(&forwarded, 0.5) - pct(&owner, 0.5);
    let added99 = pct(&forwarded, 0.99) - pct(&owner, 0.99);
    let verdict = if added50 <= TARGET_ADDED_P50_MS {
        "PASS"
    } else {
        "WARN"
    };
    println!(
        "\nadded by forwarding: p50 {added50:.2} ms, p99 {added99:.2} ms (target ≤ {TARGET_ADDED_P50_MS} ms at p50): {verdict}"
    );
    let _ = main_db.drop().await;
    for s in ["a", "b"] {
        let _ = client.database(&format!("waha_{ns}_{s}")).drop().await;
    }
}
