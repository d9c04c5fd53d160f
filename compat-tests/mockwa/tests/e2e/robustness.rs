//! Robustness and scale: malformed input closes only the offending
//! connection; 1,000 concurrent Noise connections on one mock.
//!
//! Uses a minimal Noise initiator built from wacore's public handshake
//! state (not a full client), so a thousand connections stay cheap.

use std::sync::Arc;
use std::time::{Duration, Instant};

use buffa::Message as _;
use futures_util::{SinkExt, StreamExt};
use mockwa::MockNetwork;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_websockets::{ClientBuilder, Message};
use wacore::handshake::XxHandshakeState;
use wacore_binary::consts::WA_CONN_HEADER;
use waproto::whatsapp as wa;

use crate::harness::paired_client;

type Ws =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

fn frame(payload: &[u8]) -> Vec<u8> {
    let mut v = vec![
        (payload.len() >> 16) as u8,
        (payload.len() >> 8) as u8,
        payload.len() as u8,
    ];
    v.extend_from_slice(payload);
    v
}

async fn read_frame(ws: &mut Ws, buf: &mut Vec<u8>) -> Vec<u8> {
    loop {
        if buf.len() >= 3 {
            let len = ((buf[0] as usize) << 16) | ((buf[1] as usize) << 8) | buf[2] as usize;
            if buf.len() >= 3 + len {
                let f = buf[3..3 + len].to_vec();
                buf.drain(..3 + len);
                return f;
            }
        }
        let m = ws.next().await.expect("socket open").expect("ws message");
        buf.extend_from_slice(m.as_payload());
    }
}

fn registration_payload() -> Vec<u8> {
    let ident = wacore::crypto::generate_curve_key_pair();
    wa::ClientPayload {
        passive: Some(false),
        device_pairing_data: buffa::MessageField::some(
            wa::client_payload::DevicePairingRegistrationData {
                e_regid: Some(vec![0, 0, 0, 7]),
                e_keytype: Some(vec![5]),
                e_ident: Some(ident.public_key.public_key_bytes().to_vec()),
                e_skey_id: Some(vec![0, 0, 1]),
                e_skey_val: Some(vec![1; 32]),
                e_skey_sig: Some(vec![2; 64]),
                ..Default::default()
            },
        ),
        ..Default::default()
    }
    .encode_to_vec()
}

/// Connects, completes Noise XX as an unpaired companion and returns the
/// socket plus the first stanza's tag path (expected `iq/pair-device`).
async fn light_register(url: &str) -> (Ws, String) {
    let (mut ws, _) = ClientBuilder::new()
        .uri(url)
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let static_kp = wacore::crypto::generate_curve_key_pair();
    let mut hs = XxHandshakeState::new(static_kp, registration_payload(), &WA_CONN_HEADER).unwrap();
    let mut first = WA_CONN_HEADER.to_vec();
    first.extend_from_slice(&frame(&hs.build_client_hello().unwrap()));
    ws.send(Message::binary(first)).await.unwrap();
    let mut buf = Vec::new();
    let server_hello = read_frame(&mut ws, &mut buf).await;
    let finish = hs
        .read_server_hello_and_build_client_finish(&server_hello)
        .unwrap();
    ws.send(Message::binary(frame(&finish))).await.unwrap();
    let keys = hs.finish().unwrap();
    let mut ct = read_frame(&mut ws, &mut buf).await;
    keys.read_cipher
        .decrypt_in_place_with_counter(0, &mut ct)
        .unwrap();
    let plain = wacore_binary::util::unpack(&ct).unwrap();
    let node = wacore_binary::marshal::unmarshal_ref(&plain)
        .unwrap()
        .to_owned();
    let kid = node
        .children()
        .and_then(|k| k.first())
        .map(|k| k.tag.to_string())
        .unwrap_or_default();
    (ws, format!("{}/{kid}", node.tag))
}

async fn http_status(addr: std::net::SocketAddr, raw: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out)
        .lines()
        .next()
        .unwrap_or("")
        .to_string()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_input_only_closes_that_connection() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let addr = net.addr();
    // Garbage instead of HTTP; then an oversized/invalid head; then a bad body.
    let _ = http_status(addr, b"\x16\x03\x01\x00\x00garbage\r\n\r\n").await;
    assert!(
        http_status(
            addr,
            b"POST /admin/scan-qr HTTP/1.1\r\nContent-Length: 3\r\n\r\n{x}"
        )
        .await
        .contains("400")
    );
    assert!(
        http_status(addr, b"GET /nope HTTP/1.1\r\n\r\n")
            .await
            .contains("404")
    );
    // Websocket with no WA header, then one with a valid header but a bogus hello,
    // then one that sends a valid hello and a corrupt finish.
    for payload in [b"hello".to_vec(), {
        let mut v = WA_CONN_HEADER.to_vec();
        v.extend_from_slice(&frame(b"\x01\x02\x03not a protobuf"));
        v
    }] {
        let (mut ws, _) = ClientBuilder::new()
            .uri(&net.ws_url())
            .unwrap()
            .connect()
            .await
            .unwrap();
        ws.send(Message::binary(payload)).await.unwrap();
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("closed promptly");
        assert!(next.is_none() || next.unwrap().is_ok_and(|m| m.is_close()));
    }
    // A real client still pairs afterwards.
    let (c, _) = paired_client(&net, "15550008001", "Sturdy").await;
    assert!(
        http_status(addr, b"GET /admin/health HTTP/1.1\r\n\r\n")
            .await
            .contains("200")
    );
    c.stop().await;
}

/// 1,000 simultaneously connected (unpaired, QR-showing) devices.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_concurrent_connections() {
    const N: usize = 1000;
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let url = Arc::new(net.ws_url());
    let before = rss_kib();
    let t0 = Instant::now();
    let sem = Arc::new(tokio::sync::Semaphore::new(64));
    let mut tasks = Vec::with_capacity(N);
    for _ in 0..N {
        let url = url.clone();
        let sem = sem.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire().await.unwrap();
            light_register(&url).await
        }));
    }
    let mut sockets = Vec::with_capacity(N);
    for t in tasks {
        let (ws, first) = t.await.unwrap();
        assert_eq!(first, "iq/pair-device");
        sockets.push(ws);
    }
    let elapsed = t0.elapsed();
    let after = rss_kib();
    eprintln!(
        "{N} connections (handshake + pair-device) in {elapsed:?}; RSS +{} KiB (~{} KiB per connection, both ends)",
        after.saturating_sub(before),
        after.saturating_sub(before) / N as u64
    );
    assert!(
        http_status(net.addr(), b"GET /admin/health HTTP/1.1\r\n\r\n")
            .await
            .contains("200")
    );
    drop(sockets);
}
