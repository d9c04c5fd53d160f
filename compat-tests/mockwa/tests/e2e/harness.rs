//! Test harness: builds real whatsapp-rust clients pointed at a mock network,
//! records their events, and waits on them with deadlines (never fixed sleeps).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mockwa::MockNetwork;
use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::prelude::*;
use whatsapp_rust::transport::TokioWebSocketTransportFactory;
use whatsapp_rust::wacore::store::InMemoryBackend;

/// Opt-in client logging for debugging: `MOCKWA_TEST_LOG=debug`.
struct StderrLog;

impl log::Log for StderrLog {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }
    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            eprintln!("[{} {}] {}", r.level(), r.target(), r.args());
        }
    }
    fn flush(&self) {}
}

pub fn init_log() {
    if let Ok(level) = std::env::var("MOCKWA_TEST_LOG")
        && let Ok(l) = level.parse::<log::LevelFilter>()
        && log::set_logger(&StderrLog).is_ok()
    {
        log::set_max_level(l);
    }
}

/// Pinned so the client never fetches web.whatsapp.com/sw.js.
pub const VERSION: (u32, u32, u32) = (2, 3000, 1_030_000_000);

/// Media URLs are always `https://{media_conn host}/...`; the mock serves
/// plain HTTP on the same port, so the test client rewrites the scheme for
/// the mock's own host and delegates to the stock ureq client.
pub struct MockHttp {
    prefix: String,
    inner: UreqHttpClient,
}

#[whatsapp_rust::async_trait]
impl HttpClient for MockHttp {
    async fn execute(&self, mut request: HttpRequest) -> anyhow::Result<HttpResponse> {
        if request.url.starts_with(&self.prefix) {
            request.url = format!("http://{}", &request.url["https://".len()..]);
        }
        log::debug!(target: "mockwa-test", "http {} {}", request.method, request.url);
        self.inner.execute(request).await
    }
}

struct Recorder(whatsapp_rust::async_channel::Sender<Arc<Event>>);

impl EventHandler for Recorder {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.try_send(event);
    }
}

pub struct TestClient {
    pub client: Arc<Client>,
    pub handle: Option<BotHandle>,
    rx: whatsapp_rust::async_channel::Receiver<Arc<Event>>,
    seen: Mutex<Vec<Arc<Event>>>,
}

pub async fn start_client(net: &MockNetwork, backend: Arc<InMemoryBackend>) -> TestClient {
    init_log();
    let (tx, rx) = whatsapp_rust::async_channel::unbounded();
    let bot = Bot::builder()
        .with_backend_arc(backend)
        .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(net.ws_url()))
        .with_http_client(MockHttp {
            prefix: format!("https://{}", net.addr()),
            inner: UreqHttpClient::new(),
        })
        .with_version(VERSION)
        .skip_history_sync()
        .with_event_handler(Recorder(tx))
        .build()
        .await
        .expect("bot builds");
    let client = bot.client();
    let handle = bot.spawn();
    TestClient {
        client,
        handle: Some(handle),
        rx,
        seen: Mutex::new(Vec::new()),
    }
}

impl TestClient {
    /// Returns the first event (ever recorded, then new ones) for which `f`
    /// yields `Some`, or panics at the deadline.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl Fn(&Event) -> Option<T>,
    ) -> T {
        {
            let seen = self.seen.lock().unwrap();
            if let Some(v) = seen.iter().find_map(|e| f(e)) {
                return v;
            }
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let ev = match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                Ok(Ok(ev)) => ev,
                Ok(Err(_)) => panic!("event stream closed while waiting for {what}"),
                Err(_) => panic!("timed out after {timeout:?} waiting for {what}"),
            };
            let hit = f(&ev);
            self.seen.lock().unwrap().push(ev);
            if let Some(v) = hit {
                return v;
            }
        }
    }

    /// Forgets recorded events (so later waits only see new ones).
    pub fn clear(&self) {
        self.seen.lock().unwrap().clear();
        while self.rx.try_recv().is_ok() {}
    }

    pub async fn qr(&self) -> String {
        self.wait_for("PairingQrCode", Duration::from_secs(10), |e| match e {
            Event::PairingQrCode(q) => Some(q.code.clone()),
            _ => None,
        })
        .await
    }

    pub async fn connected(&self, timeout: Duration) {
        self.wait_for("Connected", timeout, |e| {
            matches!(e, Event::Connected(_)).then_some(())
        })
        .await
    }

    /// Stops the client gracefully (the backend keeps its keys).
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// Starts a fresh client and links it to `phone` by QR; waits for Connected.
pub async fn paired_client(
    net: &MockNetwork,
    phone: &str,
    name: &str,
) -> (TestClient, Arc<InMemoryBackend>) {
    let backend = Arc::new(InMemoryBackend::new());
    let c = start_client(net, backend.clone()).await;
    let qr = c.qr().await;
    net.scan_qr(&qr, phone, name).expect("scan_qr");
    c.connected(Duration::from_secs(40)).await;
    (c, backend)
}

/// Like [`paired_client`], but the phone scans through `POST /admin/scan-qr`.
pub async fn paired_client_http(
    net: &MockNetwork,
    phone: &str,
    name: &str,
) -> (TestClient, Arc<InMemoryBackend>) {
    let backend = Arc::new(InMemoryBackend::new());
    let c = start_client(net, backend.clone()).await;
    let qr = c.qr().await;
    let body = serde_json::json!({"qr": qr, "phone": phone, "pushName": name}).to_string();
    let (status, v) = admin_http(net, "POST", "/admin/scan-qr", &body).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["jid"].as_str().unwrap().starts_with(phone), "{v}");
    c.connected(Duration::from_secs(40)).await;
    (c, backend)
}

/// One admin API call over real HTTP; returns status and JSON body.
pub async fn admin_http(
    net: &MockNetwork,
    method: &str,
    path: &str,
    body: &str,
) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(net.addr()).await.unwrap();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: mock\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).await.unwrap();
    let status = resp.get(9..12).and_then(|c| c.parse().ok()).unwrap_or(0);
    let json = resp
        .split("\r\n\r\n")
        .nth(1)
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(serde_json::Value::Null);
    (status, json)
}

/// Polls `f` until it returns true or the deadline passes.
pub async fn eventually(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + timeout;
    while !f() {
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?}: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Text of the first inbound message matching `pred` (checks every batch).
pub async fn wait_text(
    c: &TestClient,
    what: &str,
    pred: impl Fn(&str, &MessageInfo) -> bool,
) -> Arc<MessageInfo> {
    c.wait_for(what, Duration::from_secs(20), |e| match e {
        Event::Messages(batch) => batch.messages.iter().find_map(|m| {
            let text = m.message.text_content().unwrap_or_default();
            pred(text, &m.info).then(|| m.info.clone())
        }),
        _ => None,
    })
    .await
}

/// The first `GroupUpdate` (a `w:gp2` action) for which `f` yields `Some`.
pub async fn wait_group<T>(
    c: &TestClient,
    what: &str,
    f: impl Fn(&whatsapp_rust::wacore::types::events::GroupUpdate) -> Option<T>,
) -> T {
    c.wait_for(what, Duration::from_secs(20), |e| match e {
        Event::GroupUpdate(u) => f(u),
        _ => None,
    })
    .await
}
