//! Memory of receiving media (issue 9's limit for the receiving side).
//!
//! Target: receiving a 100 MB video raises wharf's RSS by at most ~2× the file's size at
//! peak and returns to its baseline afterwards. By design it should stay far below: the
//! CDN body is streamed through the decryptor into a file (whatsapp-rust's
//! `download_to_writer`), and local storage is a rename.
//!
//! What it does: starts the in-process mock network (`mockwa`, whose CDN keeps uploads in
//! memory — in this process, so not counted) and a `wharf` child against it, pairs `bob`,
//! links a whatsapp-rust client as the contact `alice` (also in this process), uploads
//! the video to the mock CDN and sends it to `bob`, then samples the child's `VmRSS` every
//! 10 ms until `GET /api/files/bob/{id}.mp4` serves the whole file, and reads `VmHWM`
//! (the kernel's own peak). Prints the figures and `PASS`/`WARN`; it fails only when
//! pairing or the transfer fails.
//!
//! ```sh
//! cargo bench -p wharf --features mock-network --bench media_recv
//! WHARF_BENCH_BIG_MB=20 cargo bench -p wharf --features mock-network --bench media_recv
//! ```
//!
//! Linux only (`/proc`).

use std::{
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};
use whatsapp_rust::{
    UploadOptions,
    download::MediaType,
    http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient},
    media::{VideoOptions, video_message},
    prelude::*,
    transport::TokioWebSocketTransportFactory,
    wacore::store::InMemoryBackend,
};

const KEY: &str = "bench-media-recv-key-0123456789";
const ALICE: &str = "15550007771";
const BOB: &str = "15550007772";

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `(VmRSS, VmHWM)` in MiB.
fn mem(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
            .unwrap_or(0) as f64
            / 1024.0
    };
    (field("VmRSS"), field("VmHWM"))
}

/// The mock CDN serves plain HTTP on `https://` URLs (mockwa README, "Media URLs").
struct MockHttp {
    prefix: String,
    inner: UreqHttpClient,
}

#[whatsapp_rust::async_trait]
impl HttpClient for MockHttp {
    async fn execute(&self, mut request: HttpRequest) -> anyhow::Result<HttpResponse> {
        if request.url.starts_with(&self.prefix) {
            request.url = format!("http://{}", &request.url["https://".len()..]);
        }
        self.inner.execute(request).await
    }
}

struct Recorder(tokio::sync::mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Recorder {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

/// A whatsapp-rust client linked to `phone`, connected.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "Event is non_exhaustive; only pairing events matter here"
)]
async fn phone(net: &mockwa::MockNetwork, phone: &str) -> (Arc<Client>, BotHandle) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let bot = Bot::builder()
        .with_backend_arc(Arc::new(InMemoryBackend::new()))
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(net.ws_url()))
        .with_http_client(MockHttp {
            prefix: format!("https://{}", net.addr()),
            inner: UreqHttpClient::new(),
        })
        .with_version(wharf::engine::DEFAULT_WA_VERSION)
        .skip_history_sync()
        .with_event_handler(Recorder(tx))
        .build()
        .await
        .expect("phone builds");
    let client = bot.client();
    let handle = bot.spawn();
    let until = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut scanned = false;
    loop {
        let event = tokio::time::timeout_at(until, rx.recv())
            .await
            .expect("phone connects")
            .expect("phone events");
        match &*event {
            Event::PairingQrCode(q) if !scanned => {
                net.scan_qr(&q.code, phone, phone).expect("scan");
                scanned = true;
            }
            Event::Connected(_) => return (client, handle),
            _ => {}
        }
    }
}

struct Wharf {
    child: KillOnDrop,
    base: String,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Wharf {
    async fn start(net: &mockwa::MockNetwork) -> Wharf {
        let dir = tempfile::tempdir().expect("tempdir");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.path().join("wharf.log")).expect("log");
        let child = Command::new(env!("CARGO_BIN_EXE_wharf"))
            .current_dir(dir.path())
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("WHARF_BIND_HOST", "127.0.0.1")
            .env("WAHA_API_KEY", KEY)
            .env("WHARF_WA_URL", net.ws_url())
            .env("WAHA_LOCAL_STORE_BASE_DIR", dir.path().join("sessions"))
            .env("WHATSAPP_FILES_FOLDER", dir.path().join("files"))
            .env("WHATSAPP_FILES_LIFETIME", "0")
            .env("WAHA_PRINT_QR", "false")
            .env("WAHA_LOG_LEVEL", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn wharf");
        let w = Wharf {
            child: KillOnDrop(child),
            base: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
            _dir: dir,
        };
        let until = Instant::now() + Duration::from_secs(60);
        while w.http.get(format!("{}/ping", w.base)).send().await.is_err() {
            assert!(Instant::now() < until, "wharf did not start");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        w
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", KEY);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req.send().await.expect("request");
        (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
    }

    async fn wait_status(&self, name: &str, want: &str) {
        let until = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, s) = self
                .call(reqwest::Method::GET, &format!("/api/sessions/{name}"), None)
                .await;
            if s["status"] == want {
                return;
            }
            assert!(Instant::now() < until, "{name} never {want}: {s}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::main]
async fn main() {
    let mb: usize = std::env::var("WHARF_BENCH_BIG_MB")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(100);
    let net = mockwa::MockNetwork::start("127.0.0.1:0")
        .await
        .expect("mock network");
    let wharf = Wharf::start(&net).await;
    let (code, body) = wharf
        .call(
            reqwest::Method::POST,
            "/api/sessions",
            Some(json!({"name": "bob"})),
        )
        .await;
    assert_eq!(code, 201, "{body}");
    wharf.wait_status("bob", "SCAN_QR_CODE").await;
    let (_, qr) = wharf
        .call(reqwest::Method::GET, "/api/bob/auth/qr?format=raw", None)
        .await;
    net.scan_qr(qr["value"].as_str().expect("QR"), BOB, "Bob")
        .expect("scan");
    wharf.wait_status("bob", "WORKING").await;
    let (alice, handle) = phone(&net, ALICE).await;

    let size = mb * 1024 * 1024;
    let data: Vec<u8> = (0..size).map(|i| (i * 31 % 251) as u8).collect();
    let up = alice
        .upload(data, MediaType::Video, UploadOptions::default())
        .await
        .expect("upload");
    let pid = wharf.child.0.id();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (baseline, _) = mem(pid);
    let started = Instant::now();
    let sent = alice
        .send_message(
            Jid::pn(BOB.to_string()),
            video_message(
                up,
                VideoOptions {
                    mimetype: Some("video/mp4".into()),
                    ..Default::default()
                },
            ),
        )
        .await
        .expect("send");
    let file = format!("/api/files/bob/false_{ALICE}@c.us_{}.mp4", sent.message_id);
    let mut peak = baseline;
    let until = Instant::now() + Duration::from_secs(600);
    loop {
        peak = peak.max(mem(pid).0);
        let r = wharf
            .http
            .get(format!("{}{file}", wharf.base))
            .header("X-Api-Key", KEY)
            .send()
            .await
            .expect("GET");
        if r.status() == 200 && r.content_length() == Some(size as u64) {
            break;
        }
        assert!(Instant::now() < until, "the file never arrived");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let (_, hwm) = mem(pid);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (after, _) = mem(pid);
    let growth = peak - baseline;
    let limit = 2.0 * mb as f64;
    println!("receive {mb} MB video: {took:.1?}");
    println!(
        "  wharf RSS: baseline {baseline:.1} MiB, peak {peak:.1} MiB (+{growth:.1}), kernel peak (VmHWM) {hwm:.1} MiB, 3 s later {after:.1} MiB"
    );
    println!(
        "  {}: peak growth {growth:.1} MiB vs target ≤ {limit:.0} MiB (2× the file)",
        if growth <= limit { "PASS" } else { "WARN" }
    );
    handle.shutdown().await;
}
