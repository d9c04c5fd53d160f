//! Behaviour at scale (issue 16), asserted without timing figures (those are in
//! `benches/scale.rs`): the HTTP API answers while many stored sessions are still being
//! restored, queued sessions show `STARTING` (never `STOPPED`) until they run, shutdown
//! stops them all in parallel under one deadline with every client's final flush done,
//! the stored accounts of a listing come from one read, and the WhatsApp socket is dialled
//! with `TCP_NODELAY`.

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

/// Stored sessions restored at once: several times the restore's parallelism (32), so
/// most of them wait in the queue.
const SESSIONS: usize = 100;

/// The app's main SQLite database (`{base}/{namespace}/waha.sqlite3`).
fn main_db(app: &TestApp) -> PathBuf {
    std::fs::read_dir(app.dir.path().join("sessions"))
        .expect("store folder")
        .filter_map(Result::ok)
        .map(|e| e.path().join("waha.sqlite3"))
        .find(|p| p.exists())
        .expect("the main database")
}

/// Takes the write lock of the SQLite database `db`: every write to it waits while the
/// returned connection lives; reads go on (WAL).
fn hold_write_lock(db: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(db).expect("open the main database");
    conn.execute_batch("BEGIN EXCLUSIVE")
        .expect("take the write lock");
    conn
}

fn with_status<'a>(all: &'a Value, status: &str) -> Vec<&'a str> {
    all.as_array()
        .expect("a list")
        .iter()
        .filter(|s| s["status"] == status)
        .map(|s| s["name"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_many_sessions_http_answers_first_then_all_stop_flushed() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let mut app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[("WAHA_PRINT_QR", "false")]).await;
    app.pair(&net, "paired", "15550001111").await;
    for i in 0..SESSIONS {
        let r = app
            .post(
                "/api/sessions",
                &json!({"name": format!("s{i:03}"), "start": false}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    app.extra
        .insert("WHATSAPP_RESTART_ALL_SESSIONS".into(), "true".into());

    // Restart with the main store's write lock held: no session can start (its worker row
    // waits for the lock), so whatever answers now answers before the restore is done. A
    // restore that ran before serving would hang here instead.
    let db = main_db(&app);
    let (app, lock) = tokio::time::timeout(
        Duration::from_secs(60),
        app.restart_after(move || hold_write_lock(&db)),
    )
    .await
    .expect("the app starts while its sessions cannot");
    let ping = app.request(reqwest::Method::GET, "/ping", None, None).await;
    assert_eq!(
        (ping.status, ping.text.as_str()),
        (200, r#"{"message":"pong"}"#)
    );
    drop(lock);

    // From the first listing on, every session shows STARTING or later, never STOPPED.
    eventually(
        Duration::from_secs(90),
        "every restored session leaves STARTING",
        || async {
            let all = app.get("/api/sessions?all=true").await.json();
            assert_eq!(all.as_array().map(Vec::len), Some(SESSIONS + 1), "{all}");
            let stopped = with_status(&all, "STOPPED");
            assert!(
                stopped.is_empty(),
                "queued sessions shown STOPPED: {stopped:?}"
            );
            match with_status(&all, "STARTING").len() {
                0 => Ok(all),
                n => Err(format!("{n} still STARTING")),
            }
        },
    )
    .await;
    app.wait_status("paired", "WORKING", Duration::from_secs(40))
        .await;
    let all = app.get("/api/sessions?all=true").await.json();
    assert_eq!(with_status(&all, "SCAN_QR_CODE").len(), SESSIONS, "{all}");

    let mut app = app;
    let report = app.stop().await.expect("the app was running");
    assert_eq!(report.sessions, SESSIONS + 1, "{report:?}");
    assert_eq!(report.flushed, report.sessions, "{report:?}");
    // One deadline for all (plus the abort grace), not one per session.
    assert!(
        report.elapsed < wharf::sessions::STOP_DEADLINE + Duration::from_secs(1),
        "{report:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_dial_socket_has_tcp_nodelay() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let stream = wharf::engine::transport::dial("127.0.0.1", port)
        .await
        .expect("dial");
    // Without it every small frame waits for the server's delayed ACK (~40 ms).
    assert!(stream.nodelay().expect("read TCP_NODELAY"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_sessions_stopped_paired_session_shows_stored_me() {
    for store in StoreKind::all("list_sessions_stopped_me") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[("WAHA_PRINT_QR", "false")]).await;
        app.pair(&net, "kept", "15550009999").await;
        let r = app
            .post(
                "/api/sessions",
                &json!({"name": "never", "start": false}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let r = app.post("/api/sessions/kept/stop", "").await;
        assert_eq!(r.json()["status"], "STOPPED");
        // Stopped: `me` comes from the store (one read for the whole listing).
        let all = app.get("/api/sessions?all=true").await.json();
        assert_eq!(all[0]["name"], "kept", "{all}");
        assert_eq!(all[0]["me"]["id"], "15550009999@c.us", "{all}");
        assert_eq!(all[1]["name"], "never", "{all}");
        assert_eq!(all[1]["me"], Value::Null, "{all}");
        let one = app.get("/api/sessions/kept").await.json();
        assert_eq!(one["me"], all[0]["me"]);
        assert_eq!(app.get("/api/sessions").await.json(), json!([]));
    }
}
