//! `Sink`: an in-process webhook receiver on 127.0.0.1:0 that records every request.
//!
//! Owns: one raw-TCP HTTP/1.1 server (keep-alive, `Content-Length` bodies — what reqwest
//! sends) and its script: answer 503 for the next N requests, or always (optionally with
//! `Retry-After`), and/or wait before answering. Each test builds its own; the server stops when the `Sink` drops.

use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};
use tokio_util::sync::CancellationToken;

use super::poll::eventually;

/// One request the sink saw.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request path, e.g. `/a`.
    pub path: String,
    /// Headers, lower-case names.
    pub headers: BTreeMap<String, String>,
    /// The raw body.
    pub body: String,
    /// What the sink answered.
    pub status: u16,
}

impl Received {
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
    /// A header (lower-case name), panicking when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("header {name} missing: {:?}", self.headers))
    }
}

#[derive(Default)]
struct Script {
    fail_next: u32,
    fail_always: bool,
    delay: Duration,
    retry_after: Option<String>,
    received: Vec<Received>,
}

/// A running receiver.
pub struct Sink {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    script: Arc<Mutex<Script>>,
    stop: CancellationToken,
}

impl Sink {
    /// Starts a sink answering 200 to everything.
    pub async fn start() -> Sink {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind sink");
        let base = format!("http://{}", listener.local_addr().expect("sink addr"));
        let script = Arc::new(Mutex::new(Script::default()));
        let stop = CancellationToken::new();
        let (s, c) = (script.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = c.cancelled() => return,
                    accepted = listener.accept() => {
                        let Ok((conn, _)) = accepted else { continue };
                        tokio::spawn(serve(conn, s.clone(), c.clone()));
                    }
                }
            }
        });
        Sink { base, script, stop }
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Answer 503 to the next `n` requests.
    pub fn fail_next(&self, n: u32) {
        self.script.lock().expect("sink").fail_next = n;
    }

    /// Answer 503 to everything (`true`) or go back to 200.
    pub fn fail_always(&self, on: bool) {
        self.script.lock().expect("sink").fail_always = on;
    }

    /// Send `Retry-After: value` with every 503 (`None`: no header).
    pub fn retry_after(&self, value: Option<&str>) {
        self.script.lock().expect("sink").retry_after = value.map(str::to_string);
    }

    /// Wait this long before answering each request.
    pub fn set_delay(&self, d: Duration) {
        self.script.lock().expect("sink").delay = d;
    }

    /// Every request so far, in arrival order.
    pub fn received(&self) -> Vec<Received> {
        self.script.lock().expect("sink").received.clone()
    }

    /// Requests answered 2xx on `path`, in arrival order.
    pub fn delivered(&self, path: &str) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path && r.status < 300)
            .collect()
    }

    /// Polls until `n` requests on `path` were answered 2xx; panics at the deadline.
    pub async fn wait_delivered(&self, path: &str, n: usize, deadline: Duration) -> Vec<Received> {
        eventually(deadline, &format!("{n} deliveries on {path}"), || async {
            let got = self.delivered(path);
            if got.len() >= n {
                return Ok(got);
            }
            Err(format!(
                "{} delivered; all requests: {:?}",
                got.len(),
                self.received()
                    .iter()
                    .map(|r| (r.path.clone(), r.status))
                    .collect::<Vec<_>>()
            ))
        })
        .await
    }

    /// Polls until a `message` event with body `text` was delivered on `path`; panics after
    /// 30 s.
    pub async fn wait_message(&self, path: &str, text: &str) {
        eventually(
            Duration::from_secs(30),
            &format!("{text} at {path}"),
            || async {
                let got = self
                    .delivered(path)
                    .iter()
                    .map(Received::json)
                    .any(|v| v["event"] == "message" && v["payload"]["body"] == text);
                if got {
                    Ok(())
                } else {
                    Err(format!("{} deliveries", self.delivered(path).len()))
                }
            },
        )
        .await;
    }

    /// Polls until at least `n` requests (any status) arrived; panics at the deadline.
    pub async fn wait_requests(&self, n: usize, deadline: Duration) {
        eventually(deadline, &format!("{n} requests"), || async {
            let got = self.received().len();
            if got >= n {
                Ok(())
            } else {
                Err(format!("{got} requests"))
            }
        })
        .await;
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// One keep-alive connection: read requests, record, answer per the script.
async fn serve(conn: TcpStream, script: Arc<Mutex<Script>>, stop: CancellationToken) {
    let (read, mut write) = conn.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let request = tokio::select! {
            () = stop.cancelled() => return,
            r = read_request(&mut reader) => r,
        };
        let Some((path, headers, body)) = request else {
            return;
        };
        let (status, delay, retry_after) = {
            let mut s = script.lock().expect("sink");
            let status = if s.fail_always {
                503
            } else if s.fail_next > 0 {
                s.fail_next -= 1;
                503
            } else {
                200
            };
            (status, s.delay, s.retry_after.clone())
        };
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        // Recorded when answered, so "delivered" means the sender got the 2xx.
        script.lock().expect("sink").received.push(Received {
            path,
            headers,
            body,
            status,
        });
        let reason = if status == 200 {
            "OK"
        } else {
            "Service Unavailable"
        };
        let extra = match (&retry_after, status) {
            (Some(v), 503) => format!("retry-after: {v}\r\n"),
            _ => String::new(),
        };
        let answer = format!("HTTP/1.1 {status} {reason}\r\n{extra}content-length: 0\r\n\r\n");
        if write.write_all(answer.as_bytes()).await.is_err() {
            return;
        }
    }
}

/// Reads one request: (path, headers, body). `None` at EOF or on garbage.
async fn read_request(
    reader: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
) -> Option<(String, BTreeMap<String, String>, String)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.ok()? == 0 {
        return None;
    }
    let path = line.split_whitespace().nth(1)?.to_string();
    let mut headers = BTreeMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).await.ok()? == 0 {
            return None;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
    }
    let len: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader.read_exact(&mut body).await.ok()?;
    Some((path, headers, String::from_utf8(body).ok()?))
}
