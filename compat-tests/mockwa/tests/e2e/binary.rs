//! The built `mockwa` binary: prints its address, serves the admin API.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Command, Stdio};

fn http(addr: &str, method: &str, path: &str, body: &str) -> (u16, serde_json::Value) {
    let mut s = TcpStream::connect(addr).expect("connect");
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    let status: u16 = resp[9..12].parse().unwrap();
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("");
    (
        status,
        serde_json::from_str(body).unwrap_or(serde_json::Value::Null),
    )
}

#[test]
fn binary_prints_address_and_serves_admin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_mockwa"))
        .args(["--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn mockwa");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("mockwa listening on ")
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
        .to_string();
    assert!(
        addr.starts_with("127.0.0.1:") && !addr.ends_with(":0"),
        "{addr}"
    );

    assert_eq!(
        http(&addr, "GET", "/admin/health", ""),
        (200, serde_json::json!({"status": "ok"}))
    );
    assert_eq!(
        http(&addr, "GET", "/admin/devices", ""),
        (200, serde_json::json!([]))
    );
    let (status, body) = http(
        &addr,
        "POST",
        "/admin/scan-qr",
        r#"{"qr":"2@x,AAAA,AAAA,AAAA,WA","phone":"15550001111","pushName":"Alice"}"#,
    );
    assert_eq!(status, 404, "{body}");
    assert!(body["error"].is_string());
    let (status, _) = http(
        &addr,
        "POST",
        "/admin/pair-code",
        r#"{"phone":"15550001111","code":"ABCD-EFGH"}"#,
    );
    assert_eq!(status, 404);
    let (status, _) = http(
        &addr,
        "POST",
        "/admin/devices/15550001111:1@s.whatsapp.net/unlink",
        "",
    );
    assert_eq!(status, 404);
    let (status, body) = http(&addr, "POST", "/admin/faults", r#"{"latencyMs":5}"#);
    assert_eq!(status, 200);
    assert_eq!(
        body,
        serde_json::json!({"refuseConnections": false, "latencyMs": 5, "refusedCount": 0})
    );
    let (status, _) = http(&addr, "POST", "/admin/scan-qr", "not json");
    assert_eq!(status, 400);
    child.kill().unwrap();
    let _ = child.wait();
}
