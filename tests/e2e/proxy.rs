//! Sessions reach WhatsApp through their `config.proxy` (issue 11 item 8): an HTTP
//! `CONNECT` proxy and a SOCKS5 proxy on loopback, each logging the tunnels it opened.

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine as _;
use serde_json::json;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader},
    net::{TcpListener, TcpStream},
};

use crate::support::app::{StoreKind, TestApp};

/// A loopback proxy that records what it was asked for.
struct LoopbackProxy {
    addr: String,
    log: Arc<Mutex<Vec<String>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for LoopbackProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl LoopbackProxy {
    fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// HTTP `CONNECT`, requiring `Proxy-Authorization: Basic` for `auth` when given.
    async fn http(auth: Option<(&str, &str)>) -> Self {
        let want = auth.map(|(u, p)| {
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
            )
        });
        Self::start(move |client, log| {
            let want = want.clone();
            async move {
                let mut reader = BufReader::new(client);
                let mut first = String::new();
                reader.read_line(&mut first).await.ok()?;
                let mut authorization = None;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).await.ok()?;
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some((k, v)) = line.split_once(':')
                        && k.eq_ignore_ascii_case("proxy-authorization")
                    {
                        authorization = Some(v.trim().to_string());
                    }
                }
                let mut parts = first.split_whitespace();
                let (method, target) = (parts.next()?, parts.next()?.to_string());
                let mut client = reader.into_inner();
                if method != "CONNECT" || authorization != want {
                    log.lock()
                        .unwrap()
                        .push(format!("REFUSED {method} {target}"));
                    let _ = client
                        .write_all(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n")
                        .await;
                    return None;
                }
                let upstream = TcpStream::connect(&target).await.ok()?;
                log.lock().unwrap().push(format!("CONNECT {target}"));
                client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await
                    .ok()?;
                Some((client, upstream))
            }
        })
        .await
    }

    /// SOCKS5 with username/password (RFC 1929).
    async fn socks5(user: &'static str, pass: &'static str) -> Self {
        Self::start(move |mut client, log| async move {
            let mut head = [0u8; 2];
            client.read_exact(&mut head).await.ok()?;
            let mut methods = vec![0u8; usize::from(head[1])];
            client.read_exact(&mut methods).await.ok()?;
            if head[0] != 5 || !methods.contains(&2) {
                let _ = client.write_all(&[5, 0xff]).await;
                return None;
            }
            client.write_all(&[5, 2]).await.ok()?;
            let ver = client.read_u8().await.ok()?;
            let u = read_short(&mut client).await?;
            let p = read_short(&mut client).await?;
            let ok = ver == 1 && u == user.as_bytes() && p == pass.as_bytes();
            client.write_all(&[1, u8::from(!ok)]).await.ok()?;
            if !ok {
                log.lock().unwrap().push("REFUSED credentials".into());
                return None;
            }
            let mut req = [0u8; 4];
            client.read_exact(&mut req).await.ok()?;
            let host = match req[3] {
                3 => String::from_utf8(read_short(&mut client).await?).ok()?,
                1 => {
                    let mut ip = [0u8; 4];
                    client.read_exact(&mut ip).await.ok()?;
                    std::net::Ipv4Addr::from(ip).to_string()
                }
                _ => return None,
            };
            let port = client.read_u16().await.ok()?;
            let target = format!("{host}:{port}");
            let upstream = TcpStream::connect(&target).await.ok()?;
            log.lock().unwrap().push(format!("SOCKS5 CONNECT {target}"));
            client
                .write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0])
                .await
                .ok()?;
            Some((client, upstream))
        })
        .await
    }

    async fn start<F, Fut>(handshake: F) -> Self
    where
        F: Fn(TcpStream, Arc<Mutex<Vec<String>>>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Option<(TcpStream, TcpStream)>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handshake = Arc::new(handshake);
        let task_log = log.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (handshake, log) = (handshake.clone(), task_log.clone());
                tokio::spawn(async move {
                    if let Some((mut client, mut upstream)) = handshake(client, log).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                });
            }
        });
        Self { addr, log, task }
    }
}

async fn read_short(s: &mut TcpStream) -> Option<Vec<u8>> {
    let len = s.read_u8().await.ok()?;
    let mut buf = vec![0u8; usize::from(len)];
    s.read_exact(&mut buf).await.ok()?;
    Some(buf)
}

/// The mock network's `HOST:PORT` (what a tunnel must be opened to).
fn mock_addr(net: &mockwa::MockNetwork) -> String {
    net.addr().to_string()
}

#[tokio::test]
async fn sessions_connect_through_http_and_socks5_proxies() {
    let store = StoreKind::Embedded;
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(store, &net, &[]).await;
    let target = mock_addr(&net);

    // HTTP CONNECT with credentials, in WAHA's form (`host:port`, no scheme).
    let http = LoopbackProxy::http(Some(("alice", "s3cret"))).await;
    let body = json!({"name":"viahttp","config":{"proxy":{
        "server": http.addr, "username":"alice", "password":"s3cret"}}});
    app.pair_created(&net, &body.to_string(), "viahttp", "15550001111")
        .await;
    assert!(
        http.log().contains(&format!("CONNECT {target}")),
        "{:?}",
        http.log()
    );

    // SOCKS5 with username/password.
    let socks = LoopbackProxy::socks5("bob", "pw").await;
    let body = json!({"name":"viasocks","config":{"proxy":{
        "server": format!("socks5://{}", socks.addr), "username":"bob", "password":"pw"}}});
    app.pair_created(&net, &body.to_string(), "viasocks", "15550002222")
        .await;
    assert!(
        socks.log().contains(&format!("SOCKS5 CONNECT {target}")),
        "{:?}",
        socks.log()
    );
    // Both sessions work through their tunnels: a message from one reaches the other.
    let r = app
        .post(
            "/api/sendText",
            &json!({"session":"viahttp","chatId":"15550002222@c.us","text":"through proxies"})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);

    // Media go through the proxy too: the upload to the CDN opens a tunnel of its own.
    let tunnels = http.log().len();
    let doc = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 5000]);
    let r = app
        .post(
            "/api/sendFile",
            &json!({"session":"viahttp","chatId":"15550002222@c.us",
                    "file":{"mimetype":"application/pdf","filename":"a.pdf","data":doc}})
            .to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    assert!(
        http.log().len() > tunnels,
        "no tunnel for the upload: {:?}",
        http.log()
    );

    // Wrong credentials: the proxy refuses, so the session never reaches the QR stage.
    let strict = LoopbackProxy::http(Some(("alice", "right"))).await;
    let body = json!({"name":"refused","config":{"proxy":{
        "server": strict.addr, "username":"alice", "password":"wrong"}}});
    let r = app.post("/api/sessions", &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    crate::support::poll::eventually(Duration::from_secs(20), "proxy refusal", || async {
        let log = strict.log();
        if log.iter().any(|l| l.starts_with("REFUSED CONNECT")) {
            Ok(())
        } else {
            Err(format!("{log:?}"))
        }
    })
    .await;
    let status = app.get("/api/sessions/refused").await.json()["status"].clone();
    assert_ne!(status, "SCAN_QR_CODE", "connected around the proxy");
    assert_ne!(status, "WORKING");
}

#[tokio::test]
async fn the_global_proxy_applies_and_bad_servers_are_400() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let http = LoopbackProxy::http(None).await;
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHATSAPP_PROXY_SERVER", http.addr.as_str())],
    )
    .await;
    app.pair(&net, "global", "15550003333").await;
    assert!(
        http.log().contains(&format!("CONNECT {}", mock_addr(&net))),
        "{:?}",
        http.log()
    );

    for server in ["no-port", "ftp://h:21", "h:0"] {
        let body = json!({"name":"bad","config":{"proxy":{"server":server}}});
        let r = app.post("/api/sessions", &body.to_string()).await;
        assert_eq!(r.status, 400, "{server}: {}", r.text);
        assert_eq!(
            r.text,
            r#"{"message":["config.proxy.server must be host:port (or http://host:port, socks5://host:port)"],"error":"Bad Request","statusCode":400}"#
        );
    }
}
