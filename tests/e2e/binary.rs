//! The real `wharf` binary: start-up errors, `PORT`, SIGTERM, restart persistence.

use std::{
    io::Read,
    process::{Command, Stdio},
    time::Duration,
};

use crate::support::poll::eventually_blocking;

const KEY: &str = "binary-test-key-0123456789";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wharf(dir: &std::path::Path, port: u16) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
    cmd.current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("WAHA_API_KEY", KEY)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn wait_ping(port: u16) {
    eventually_blocking(
        Duration::from_secs(30),
        &format!("wharf listens on {port}"),
        || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(drop)
                .map_err(|e| e.to_string())
        },
    );
}

fn http(port: u16, method: &str, path: &str) -> (u16, String) {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nX-Api-Key: {KEY}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out[9..12].parse().unwrap();
    let body = out.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

#[test]
fn bad_environment_stops_startup_naming_every_variable() {
    let dir = tempfile::tempdir().unwrap();
    let out = wharf(dir.path(), free_port())
        .env("WAHA_NO_API_KEY", "perhaps")
        .env("WHATSAPP_DEFAULT_ENGINE", "VENOM")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("WAHA_NO_API_KEY") && err.contains("WHATSAPP_DEFAULT_ENGINE"),
        "{err}"
    );
}

#[test]
fn sigterm_stops_gracefully_and_sessions_persist_across_processes() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut child = wharf(dir.path(), port).spawn().unwrap();
    wait_ping(port);
    assert_eq!(
        http(port, "GET", "/ping"),
        (200, r#"{"message":"pong"}"#.into())
    );
    let (status, _) = http(port, "POST", "/api/sessions/start");
    assert_eq!(status, 400, "name is required");
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    use std::io::Write;
    let body = r#"{"name":"persisted","start":false}"#;
    write!(
        s,
        "POST /api/sessions HTTP/1.1\r\nHost: x\r\nX-Api-Key: {KEY}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    assert!(out.starts_with("HTTP/1.1 201"), "{out}");

    // SIGTERM → exits 0 in time.
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let code = eventually_blocking(
        Duration::from_secs(20),
        "wharf exits on SIGTERM",
        || match child.try_wait().unwrap() {
            Some(st) => Ok(st.code()),
            None => Err("still running".into()),
        },
    );
    assert_eq!(code, Some(0));
    assert!(
        dir.path().join(".sessions/gows/waha.sqlite3").exists(),
        "default store layout"
    );

    let port = free_port();
    let mut child = wharf(dir.path(), port).spawn().unwrap();
    wait_ping(port);
    let (status, body) = http(port, "GET", "/api/sessions?all=true");
    assert_eq!(status, 200);
    assert!(
        body.contains(r#""name":"persisted""#) && body.contains("STOPPED"),
        "{body}"
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

/// `wharf healthcheck` (the container healthcheck of docker/compose.yaml): 0 while the
/// server answers `/ping` and, with the key, `/health`; 1 with a wrong key or no server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthcheck_subcommand_reports_the_local_server() {
    let dir = tempfile::tempdir().unwrap();
    let wharf = crate::support::process::Wharf::start(dir.path(), KEY, &[]).await;
    let port = wharf.base.rsplit(':').next().unwrap().to_string();
    let check = |key: &str, port: &str| {
        Command::new(env!("CARGO_BIN_EXE_wharf"))
            .arg("healthcheck")
            .env_clear()
            .env("PORT", port)
            .env("WAHA_API_KEY", key)
            .status()
            .unwrap()
            .code()
    };
    assert_eq!(check(KEY, &port), Some(0));
    assert_eq!(check("wrong-key-0123456789", &port), Some(1));
    assert_eq!(check(KEY, &free_port().to_string()), Some(1));
}
