//! The single listener: every TCP connection is read up to the end of its
//! HTTP request head, then becomes either a WhatsApp websocket (`/ws/chat`,
//! handed to [`crate::conn`]), an admin JSON call (`/admin/...`, answered via
//! [`crate::admin`]) or a media upload/download (`/mms/...`, `/v/...`).
//!
//! The accept loop runs until [`Net::shutdown`] fires; each connection is one
//! task. HTTP is deliberately minimal: one request per connection
//! (`Connection: close`), `Content-Length` or chunked bodies.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::admin::{self, AdminError, FaultSettings};
use crate::state::{MEDIA_CAP_BYTES, Net};

const MAX_HEAD: usize = 16 * 1024;
const MAX_ADMIN_BODY: usize = 1024 * 1024;
const MAX_MEDIA_BODY: usize = 128 * 1024 * 1024;
const HEAD_TIMEOUT: Duration = Duration::from_secs(10);
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

pub(crate) async fn accept_loop(net: Arc<Net>, listener: TcpListener) {
    loop {
        if net.is_shutdown.load(Ordering::Relaxed) {
            return;
        }
        tokio::select! {
            r = listener.accept() => match r {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(handle_tcp(net.clone(), stream));
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("mockwa accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = net.shutdown.notified() => return,
        }
    }
}

struct Request {
    method: String,
    path: String,
    query: String,
    headers: Vec<(String, String)>,
    /// Bytes read past the head (start of the body).
    rest: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

async fn read_head(stream: &mut TcpStream) -> Result<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("eof before request head");
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut req = httparse::Request::new(&mut headers);
            req.parse(&buf[..end + 4]).context("bad request head")?;
            let target = req.path.unwrap_or("/").to_string();
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_string(), q.to_string()),
                None => (target, String::new()),
            };
            let headers = req
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect();
            return Ok(Request {
                method: req.method.unwrap_or("GET").to_string(),
                path,
                query,
                headers,
                rest: buf[end + 4..].to_vec(),
            });
        }
        if buf.len() > MAX_HEAD {
            bail!("request head too large");
        }
    }
}

async fn read_body(stream: &mut TcpStream, req: &mut Request, max: usize) -> Result<Vec<u8>> {
    let mut body = std::mem::take(&mut req.rest);
    if req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        return read_chunked(stream, body, max).await;
    }
    let len: usize = match req.header("content-length") {
        Some(v) => v.trim().parse().context("bad content-length")?,
        None => 0,
    };
    if len > max {
        bail!("body too large");
    }
    while body.len() < len {
        let mut chunk = vec![0u8; (len - body.len()).min(64 * 1024)];
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            bail!("eof in body");
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(len);
    Ok(body)
}

async fn read_chunked(stream: &mut TcpStream, mut raw: Vec<u8>, max: usize) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    loop {
        // Ensure a size line is available.
        let line_end = loop {
            if let Some(i) = raw[pos..].windows(2).position(|w| w == b"\r\n") {
                break pos + i;
            }
            fill(stream, &mut raw, max).await?;
        };
        let size_str = String::from_utf8_lossy(&raw[pos..line_end]).to_string();
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .context("bad chunk size")?;
        pos = line_end + 2;
        if size == 0 {
            return Ok(out);
        }
        if out.len() + size > max {
            bail!("body too large");
        }
        while raw.len() < pos + size + 2 {
            fill(stream, &mut raw, max).await?;
        }
        out.extend_from_slice(&raw[pos..pos + size]);
        pos += size + 2;
    }
}

async fn fill(stream: &mut TcpStream, raw: &mut Vec<u8>, max: usize) -> Result<()> {
    if raw.len() > max + 64 * 1024 {
        bail!("body too large");
    }
    let mut chunk = [0u8; 16 * 1024];
    let n = stream.read(&mut chunk).await?;
    if n == 0 {
        bail!("eof in chunked body");
    }
    raw.extend_from_slice(&chunk[..n]);
    Ok(())
}

async fn respond(stream: &mut TcpStream, status: u16, ctype: &str, body: &[u8]) -> Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Error",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    Ok(())
}

async fn respond_json(stream: &mut TcpStream, status: u16, v: serde_json::Value) -> Result<()> {
    respond(stream, status, "application/json", v.to_string().as_bytes()).await
}

async fn handle_tcp(net: Arc<Net>, mut stream: TcpStream) {
    let req = match tokio::time::timeout(HEAD_TIMEOUT, read_head(&mut stream)).await {
        Ok(Ok(r)) => r,
        _ => return,
    };
    let upgrade = req
        .header("upgrade")
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    if req.path == "/ws/chat" && upgrade {
        if net.faults.refuse_connections.load(Ordering::Relaxed) {
            net.faults.refused.fetch_add(1, Ordering::Relaxed);
            return; // Dropping the stream closes it: the client sees a failed connect.
        }
        if let Err(e) = upgrade_ws(net, stream, req).await {
            tracing::debug!("mockwa websocket upgrade failed: {e:#}");
        }
        return;
    }
    if let Err(e) = http(&net, &mut stream, req).await {
        tracing::debug!("mockwa http error: {e:#}");
    }
}

async fn upgrade_ws(net: Arc<Net>, mut stream: TcpStream, req: Request) -> Result<()> {
    let key = req
        .header("sec-websocket-key")
        .context("no Sec-WebSocket-Key")?;
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA1_FOR_LEGACY_USE_ONLY);
    ctx.update(key.trim().as_bytes());
    ctx.update(WS_GUID.as_bytes());
    let accept = base64::engine::general_purpose::STANDARD.encode(ctx.finish().as_ref());
    let resp = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(resp.as_bytes()).await?;
    if !req.rest.is_empty() {
        // A client never pipelines frames before the 101; refuse rather than
        // silently dropping bytes.
        bail!("data before websocket upgrade completed");
    }
    let ws = tokio_websockets::ServerBuilder::new().serve(stream);
    crate::conn::serve(net, ws).await;
    Ok(())
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ScanQrBody {
    qr: String,
    phone: String,
    #[serde(default)]
    push_name: String,
}

#[derive(Deserialize)]
struct PairCodeBody {
    phone: String,
    code: String,
}

/// `POST /admin/devices/{jid}/take-prekeys` body.
#[derive(Deserialize)]
struct TakePrekeysBody {
    count: usize,
}

#[derive(Deserialize)]
struct StreamErrorBody {
    /// `"515"`, `515` or `"conflict"`.
    code: serde_json::Value,
}

impl StreamErrorBody {
    fn code(&self) -> String {
        match self.code.as_str() {
            Some(s) => s.to_string(),
            None => self.code.to_string(),
        }
    }
}

fn admin_result<T: serde::Serialize>(r: Result<T, AdminError>) -> (u16, serde_json::Value) {
    match r {
        Ok(v) => (
            200,
            serde_json::to_value(v).unwrap_or(serde_json::Value::Null),
        ),
        Err(e) => (e.status(), json!({ "error": e.message() })),
    }
}

fn parse_json<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, AdminError> {
    serde_json::from_slice(body).map_err(|e| AdminError::BadRequest(format!("bad JSON body: {e}")))
}

/// Percent-decodes a path segment (JIDs contain `:` and `@`, which clients may encode).
fn pct_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        (b as char).to_digit(16).map(|d| d as u8)
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2]))
        {
            out.push(h << 4 | l);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn http(net: &Arc<Net>, stream: &mut TcpStream, mut req: Request) -> Result<()> {
    let method = req.method.clone();
    let path = req.path.clone();
    if path.starts_with("/mms/") && method == "POST" {
        return media_upload(net, stream, &mut req).await;
    }
    if crate::newsletter_media::is_newsletter_path(&path) {
        return newsletter_media(net, stream, &mut req).await;
    }
    if path.starts_with("/v/") || path.starts_with("/mms/") {
        let blob = net.lock().media.get(&path).cloned();
        return match blob {
            Some(b) if method == "GET" => {
                respond(stream, 200, "application/octet-stream", &b).await
            }
            _ => respond_json(stream, 404, json!({"error": "no such media"})).await,
        };
    }
    if !path.starts_with("/admin/") {
        return respond_json(stream, 404, json!({"error": "not found"})).await;
    }
    let body = match read_body(stream, &mut req, MAX_ADMIN_BODY).await {
        Ok(b) => b,
        Err(e) => return respond_json(stream, 400, json!({"error": e.to_string()})).await,
    };
    let segs: Vec<String> = path
        .trim_start_matches("/admin/")
        .split('/')
        .map(pct_decode)
        .collect();
    let segs: Vec<&str> = segs.iter().map(String::as_str).collect();
    let (status, value) = match (method.as_str(), segs.as_slice()) {
        ("GET", ["health"]) => (200, json!({"status": "ok"})),
        ("POST", ["scan-qr"]) => admin_result(parse_json::<ScanQrBody>(&body).and_then(|b| {
            admin::scan_qr(net, &b.qr, &b.phone, &b.push_name).map(|jid| json!({"jid": jid}))
        })),
        ("POST", ["pair-code"]) => match parse_json::<PairCodeBody>(&body) {
            Ok(b) => admin_result(
                admin::pair_code(net, &b.phone, &b.code)
                    .await
                    .map(|jid| json!({"jid": jid})),
            ),
            Err(e) => admin_result::<()>(Err(e)),
        },
        ("GET", ["devices"]) => (200, json!(admin::devices(net))),
        ("POST", ["devices", jid, "disconnect"]) => {
            admin_result(admin::disconnect(net, jid).map(|()| json!({"ok": true})))
        }
        ("POST", ["devices", jid, "unlink"]) => {
            admin_result(admin::unlink(net, jid).map(|()| json!({"ok": true})))
        }
        ("POST", ["devices", jid, "stream-error"]) => admin_result(
            parse_json::<StreamErrorBody>(&body)
                .and_then(|b| admin::stream_error(net, jid, &b.code()))
                .map(|()| json!({"ok": true})),
        ),
        ("POST", ["devices", jid, "take-prekeys"]) => admin_result(
            parse_json::<TakePrekeysBody>(&body)
                .and_then(|b| admin::take_prekeys(net, jid, b.count))
                .map(|left| json!({ "prekeys": left })),
        ),
        ("GET", ["groups"]) => (200, json!(admin::groups(net))),
        ("POST", ["groups"]) => admin_result(
            parse_json::<admin::SeedGroups>(&body)
                .and_then(|s| admin::seed_groups(net, &s))
                .map(|ids| json!({ "ids": ids })),
        ),
        ("GET", ["groups", jid]) => admin_result(admin::group(net, jid)),
        ("GET", ["phones", phone, "app-state"]) => (200, json!(admin::app_state(net, phone))),
        ("POST", ["phones", phone, "app-state"]) => admin_result(
            parse_json::<crate::appstate::PhoneAction>(&body)
                .and_then(|a| admin::phone_action(net, phone, &a))
                .map(|v| json!({"version": v})),
        ),
        ("GET", ["faults"]) => (200, json!(admin::get_faults(net))),
        ("GET", ["profiles", phone]) => admin_result(crate::profile::profile(net, phone)),
        ("POST", ["calls"]) => admin_result(
            parse_json::<crate::calls::PlaceCall>(&body).and_then(|b| crate::calls::place(net, &b)),
        ),
        ("GET", ["calls", id]) => admin_result(crate::calls::get(net, id)),
        ("POST", ["calls", id, "accept"]) => admin_result(crate::calls::answer(net, id, true)),
        ("POST", ["calls", id, "reject"]) => admin_result(crate::calls::answer(net, id, false)),
        ("POST", ["faults"]) => admin_result(
            parse_json::<FaultSettings>(&body).map(|f| json!(admin::set_faults(net, &f))),
        ),
        ("POST", ["phones", phone, "profile"]) => admin_result(
            parse_json::<admin::ProfileBody>(&body)
                .and_then(|b| {
                    let picture = b.picture_bytes()?;
                    admin::set_profile(net, phone, b.about, picture)
                })
                .map(|()| json!({"ok": true})),
        ),
        ("POST", ["phones", phone, "history"]) => admin_result(
            parse_json::<crate::history::SeedHistory>(&body)
                .and_then(|h| admin::seed_history(net, phone, h))
                .map(|()| json!({"ok": true})),
        ),
        ("POST", ["newsletters", id, "directory"]) => admin_result(
            parse_json::<crate::directory::Listing>(&body)
                .and_then(|l| crate::directory::list(net, id, l))
                .map(|()| json!({"ok": true})),
        ),
        ("GET", ["phones", phone, "blocklist"]) => {
            (200, json!({ "blocked": admin::blocklist(net, phone) }))
        }
        _ => (404, json!({"error": "not found"})),
    };
    respond_json(stream, status, value).await
}

/// `POST /mms/<type>/<token>?auth=..&token=..`: stores the (already
/// encrypted) blob and answers with where to download it.
async fn media_upload(net: &Arc<Net>, stream: &mut TcpStream, req: &mut Request) -> Result<()> {
    if req.query.split('&').any(|kv| kv == "resume=1") {
        // Nothing is ever partially uploaded here.
        return respond_json(stream, 404, json!({"error": "not found"})).await;
    }
    let body = match read_body(stream, req, MAX_MEDIA_BODY).await {
        Ok(b) => b,
        Err(e) => return respond_json(stream, 413, json!({"error": e.to_string()})).await,
    };
    let token = req.path.rsplit('/').next().unwrap_or("blob").to_string();
    let safe: String = token
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let direct_path = format!("/v/t62.mockwa/{}-{safe}", crate::state::random_token(8));
    let stored = {
        let mut st = net.lock();
        if st.media_bytes + body.len() > MEDIA_CAP_BYTES {
            false
        } else {
            st.media_bytes += body.len();
            st.media.insert(direct_path.clone(), Arc::new(body));
            true
        }
    };
    if !stored {
        return respond_json(stream, 413, json!({"error": "media store full"})).await;
    }
    let url = format!("https://{}{direct_path}", net.addr);
    respond_json(stream, 200, json!({"url": url, "direct_path": direct_path})).await
}

/// Channel media (`/newsletter/…`): plaintext upload (`POST`) and download (`GET`),
/// see [`crate::newsletter_media`].
async fn newsletter_media(net: &Arc<Net>, stream: &mut TcpStream, req: &mut Request) -> Result<()> {
    if req.method == "POST" {
        let body = match read_body(stream, req, MAX_MEDIA_BODY).await {
            Ok(b) => b,
            Err(e) => return respond_json(stream, 413, json!({"error": e.to_string()})).await,
        };
        let (status, value) = crate::newsletter_media::upload(net, &req.path, body);
        return respond_json(stream, status, value).await;
    }
    match crate::newsletter_media::download(net, &req.path, &req.query) {
        Some(b) if req.method == "GET" => {
            respond(stream, 200, "application/octet-stream", &b).await
        }
        _ => respond_json(stream, 404, json!({"error": "no such media"})).await,
    }
}

#[cfg(test)]
mod tests {
    use super::pct_decode;

    #[test]
    fn pct_decode_handles_jids_and_junk() {
        assert_eq!(
            pct_decode("15550001111%3A1%40s.whatsapp.net"),
            "15550001111:1@s.whatsapp.net"
        );
        assert_eq!(pct_decode("%"), "%");
        assert_eq!(pct_decode("%4"), "%4");
        assert_eq!(pct_decode("%zz%E2%82%AC"), "%zz€");
        assert_eq!(pct_decode("é%"), "é%");
    }
}
