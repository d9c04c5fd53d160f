//! Regression tests for the defects found by probing (issue 13, item 5): loose and hostile
//! bodies, credentials echoed or logged, reserved session names, the egress policy.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use wharf::store::SessionRecord;

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    poll::eventually,
    process::{Wharf, free_port},
    store::{Target, TestStore},
};

async fn raw_post(
    app: &TestApp,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(format!("{}{path}", app.base))
        .header("X-Api-Key", API_KEY)
        .body(body.to_string());
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loose_bodies_are_refused_as_body_parser_and_class_validator_do() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    // A DTO field given an array.
    let r = app
        .post("/api/sessions", r#"{"name":"a","config":[]}"#)
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(r.json()["message"], json!(["config must be an object"]));
    // A top-level `null`: body-parser's strict mode.
    let r = app.post("/api/sessions", "null").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"message": "Unexpected token 'n', \"null\" is not valid JSON",
               "error": "Bad Request", "statusCode": 400})
    );
    // A top-level array: class-validator's unknown value.
    let r = app.post("/api/sessions", "[]").await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        r.json()["message"],
        json!(["an unknown value was passed to the validate function"])
    );
    // JSON sent as text/plain is not read (body-parser only parses JSON types): the
    // request is an empty body, so WAHA's generated name is used, not the one sent.
    let (status, body) = raw_post(
        &app,
        "/api/sessions",
        Some("text/plain"),
        r#"{"name":"plain","start":false}"#,
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let name = body["name"].as_str().expect("name");
    assert!(name.starts_with("session_"), "{body}");
    let sessions = app.get("/api/sessions?all=true").await.json();
    assert_eq!(sessions.as_array().map(Vec::len), Some(1), "{sessions}");
    assert_ne!(sessions[0]["name"], "plain");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_of_millions_of_values_is_refused_and_ping_stays_up() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    // ~10 MB, five million values: a value tree of it would take gigabytes.
    let body = format!(r#"{{"name":"x","pad":[{}1]}}"#, "1,".repeat(5_000_000));
    let post = raw_post(&app, "/api/sessions", Some("application/json"), &body);
    let ping = async {
        // While the big body is being read and checked, /ping keeps answering.
        for _ in 0..5 {
            let r = app.request(Method::GET, "/ping", None, None).await;
            assert_eq!(r.status, 200);
        }
    };
    let ((status, body), ()) = tokio::join!(post, ping);
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["message"], "request entity too large");
    assert_eq!(app.get("/api/sessions?all=true").await.json(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reserved_session_names_are_refused() {
    // WAHA's documented exclusion `api/files/(.*)` would open a session named `files`.
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WAHA_API_KEY_EXCLUDE_PATH", "api/files/(.*)")],
    )
    .await;
    for name in ["files", "Files", "sessions", "keys", "server", "sendText"] {
        let r = app
            .post(
                "/api/sessions",
                &json!({"name": name, "start": false}).to_string(),
            )
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
        assert!(r.text.contains("is reserved"), "{}", r.text);
    }
    let r = app
        .post("/api/sessions", r#"{"name":"filesystem","start":false}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // The exclusion still matches the whole path only.
    let r = app
        .request(Method::GET, "/api/filesystem/chats", None, None)
        .await;
    assert_eq!(r.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_urls_to_metadata_link_local_or_wharf_itself_are_refused() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let own_port: u16 = app
        .base
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let refused = [
        "http://169.254.169.254/latest/meta-data".to_string(),
        "http://[fd00:ec2::254]/latest".to_string(),
        format!("http://127.0.0.1:{own_port}/api/sessions"),
    ];
    for url in &refused {
        let body = json!({"name": "s", "start": false, "config": {"webhooks": [{"url": url, "events": ["message"]}]}});
        let r = app.post("/api/sessions", &body.to_string()).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text);
        assert!(r.text.contains("egress policy"), "{}", r.text);
    }
    for url in ["http://127.0.0.1:9/a\u{0}b", "http://127.0.0.1:9/\r\nX: y"] {
        let body = json!({"name": "s", "start": false, "config": {"webhooks": [{"url": url, "events": ["message"]}]}});
        let r = app.post("/api/sessions", &body.to_string()).await;
        assert_eq!(r.status, 400, "{url:?}: {}", r.text);
        assert_eq!(
            r.json()["message"],
            json!(["config.webhooks.0.url must be a URL address"])
        );
    }
    // Loopback and private receivers stay allowed.
    let body = json!({"name": "s", "start": false,
        "config": {"webhooks": [{"url": "http://127.0.0.1:9/hook", "events": ["message"]}, {"url": "http://10.0.0.7/hook", "events": ["message"]}]}});
    let r = app.post("/api/sessions", &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    // An explicit allow list re-opens a range.
    let open = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WHARF_EGRESS_ALLOW", "169.254.169.254/32")],
    )
    .await;
    let body = json!({"name": "s", "start": false,
        "config": {"webhooks": [{"url": "http://169.254.169.254/x", "events": ["message"]}]}});
    assert_eq!(
        open.post("/api/sessions", &body.to_string()).await.status,
        201
    );
}

/// Hook URL tokens and custom header values show nowhere: not in
/// `/api/server/environment`, not in dead letters, not in the log (the real binary's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hook_secrets_never_show_in_environment_dead_letters_or_log() {
    const TOKEN: &str = "tok-5b0e9c-never-shown";
    const HEADER: &str = "hdr-77a1d4-never-shown";
    let dir = tempfile::tempdir().expect("tempdir");
    // Nothing listens there: every delivery fails.
    let hook = format!("http://127.0.0.1:{}/hook?token={TOKEN}", free_port());
    let headers = format!("X-Auth: {HEADER}");
    let dead_port = format!("ws://127.0.0.1:{}/ws/chat", free_port());
    let wharf = Wharf::start(
        dir.path(),
        API_KEY,
        &[
            ("WHATSAPP_HOOK_URL", hook.as_str()),
            ("WHATSAPP_HOOK_EVENTS", "session.status"),
            ("WHATSAPP_HOOK_CUSTOM_HEADERS", headers.as_str()),
            ("WHATSAPP_HOOK_RETRIES_ATTEMPTS", "1"),
            ("WHATSAPP_HOOK_RETRIES_DELAY_SECONDS", "0.05"),
            ("WHARF_WA_URL", dead_port.as_str()),
            ("WAHA_LOG_LEVEL", "debug"),
        ],
    )
    .await;
    let (status, env) = wharf
        .call(Method::GET, "/api/server/environment", None)
        .await;
    assert_eq!(status, 200, "{env}");
    let text = env.to_string();
    assert!(!text.contains(TOKEN) && !text.contains(HEADER), "{env}");
    assert_eq!(env["WHATSAPP_HOOK_CUSTOM_HEADERS"], "X-Auth:***");
    assert!(
        env["WHATSAPP_HOOK_URL"]
            .as_str()
            .is_some_and(|u| u.ends_with("/hook?token=***")),
        "{env}"
    );

    let (status, body) = wharf
        .call(Method::POST, "/api/sessions", Some(json!({"name": "s1"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let dead = eventually(Duration::from_secs(20), "a dead letter", || async {
        match wharf
            .call(Method::GET, "/api/wharf/sessions/s1/dead-letters", None)
            .await
        {
            (200, Value::Array(list)) if !list.is_empty() => Ok(Value::Array(list)),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await;
    assert!(!dead.to_string().contains(TOKEN), "{dead}");
    let log = std::fs::read_to_string(&wharf.log).expect("log");
    assert!(
        log.contains("token=***"),
        "the log names the receiver: {log}"
    );
    assert!(!log.contains(TOKEN), "hook token in the log: {log}");
    assert!(!log.contains(HEADER), "header value in the log: {log}");
    // Not a terminal: no colour escape sequences.
    assert!(!log.contains('\u{1b}'), "ANSI escapes in a log file: {log}");
}

/// Device data a session leaves in its own database/folder (what a namesake must not see).
async fn plant_device_data(f: &TestStore, name: &str) {
    match &f.target {
        Target::Sqlite { base } => {
            let dir = base.path().join(&f.ns.session).join(name);
            std::fs::create_dir_all(&dir).expect("dir");
            std::fs::write(dir.join("whatsapp.db"), b"device keys").expect("write");
        }
        Target::Mongo { url } => {
            let client = mongodb::Client::with_uri_str(url).await.expect("client");
            client
                .database(&f.ns.session_db(name))
                .collection::<mongodb::bson::Document>("wa_identity")
                .insert_one(mongodb::bson::doc! {"k": 1})
                .await
                .expect("insert");
        }
    }
}

async fn has_device_data(f: &TestStore, name: &str) -> bool {
    match &f.target {
        Target::Sqlite { base } => base
            .path()
            .join(&f.ns.session)
            .join(name)
            .join("whatsapp.db")
            .exists(),
        Target::Mongo { url } => {
            let client = mongodb::Client::with_uri_str(url).await.expect("client");
            let names = client.list_database_names().await.expect("list databases");
            names.contains(&f.ns.session_db(name))
        }
    }
}

/// What a SIGKILL between a delete's two halves leaves: the tombstone and no rows, the
/// session's own database or folder still there.
async fn crash_mid_delete(f: &TestStore, name: &str) {
    match &f.target {
        Target::Sqlite { base } => {
            let db = base.path().join(&f.ns.main).join("waha.sqlite3");
            let conn = rusqlite::Connection::open(db).expect("open main db");
            conn.execute("INSERT INTO wharf_deleting (id) VALUES (?1)", [name])
                .expect("tombstone");
            conn.execute("DELETE FROM session_config WHERE id = ?1", [name])
                .expect("delete row");
        }
        Target::Mongo { url } => {
            let client = mongodb::Client::with_uri_str(url).await.expect("client");
            let main = client.database(&f.ns.main_db());
            main.collection::<mongodb::bson::Document>("wharf_deleting")
                .insert_one(mongodb::bson::doc! {"name": name})
                .await
                .expect("tombstone");
            main.collection::<mongodb::bson::Document>("sessions")
                .delete_one(mongodb::bson::doc! {"name": name})
                .await
                .expect("delete row");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_cut_by_a_crash_is_finished_and_never_inherited() {
    for f in
        TestStore::all("security::a_delete_cut_by_a_crash_is_finished_and_never_inherited").await
    {
        let record = |name: &str| SessionRecord {
            name: name.to_owned(),
            config: None,
        };
        // Finished at the next start.
        f.store.insert_session(&record("s1")).await.expect("insert");
        plant_device_data(&f, "s1").await;
        assert!(has_device_data(&f, "s1").await, "{}", f.name());
        crash_mid_delete(&f, "s1").await;
        let reopened = f.reopen().await;
        assert!(
            !has_device_data(&f, "s1").await,
            "{}: swept at start",
            f.name()
        );
        assert!(reopened.get_session("s1").await.expect("get").is_none());
        // Or by a namesake's create, before the store is reopened.
        reopened
            .insert_session(&record("s2"))
            .await
            .expect("insert");
        plant_device_data(&f, "s2").await;
        crash_mid_delete(&f, "s2").await;
        reopened
            .insert_session(&record("s2"))
            .await
            .expect("re-create");
        assert!(
            !has_device_data(&f, "s2").await,
            "{}: a namesake inherited device keys",
            f.name()
        );
        // A whole delete leaves no tombstone behind: a later namesake keeps its data.
        reopened.delete_session("s2").await.expect("delete");
        reopened
            .insert_session(&record("s2"))
            .await
            .expect("insert");
        plant_device_data(&f, "s2").await;
        let again = f.reopen().await;
        assert!(has_device_data(&f, "s2").await, "{}", f.name());
        assert!(again.get_session("s2").await.expect("get").is_some());
    }
}

/// The main database file replaced by an older copy (or its `-wal` lost): sessions whose
/// folders hold data are unknown to it. wharf refuses to start rather than boot "healthy"
/// with fewer sessions; `WHARF_STORE_ALLOW_ORPHANS=true` starts anyway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_main_store_that_lost_sessions_refuses_to_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let wharf = Wharf::start(dir.path(), API_KEY, &[]).await;
    let (status, body) = wharf
        .call(
            Method::POST,
            "/api/sessions",
            Some(json!({"name": "s1", "start": false})),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    drop(wharf);
    let main = dir.path().join(".sessions/gows");
    // The session's own data, and then an empty main database in place of the real one.
    std::fs::write(main.join("s1").join("whatsapp.db"), b"device keys").expect("write");
    for f in ["waha.sqlite3", "waha.sqlite3-wal", "waha.sqlite3-shm"] {
        let _ = std::fs::remove_file(main.join(f));
    }
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_wharf"))
        .current_dir(dir.path())
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", free_port().to_string())
        .env("WAHA_API_KEY", API_KEY)
        .output()
        .expect("run wharf");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "started on a store that lost s1: {text}"
    );
    assert!(
        text.contains("s1") && text.contains("WHARF_STORE_ALLOW_ORPHANS"),
        "{text}"
    );
    let wharf = Wharf::start(
        dir.path(),
        API_KEY,
        &[("WHARF_STORE_ALLOW_ORPHANS", "true")],
    )
    .await;
    let (status, _) = wharf.call(Method::GET, "/ping", None).await;
    assert_eq!(status, 200);
    assert!(
        main.join("s1").join("whatsapp.db").exists(),
        "the data is left alone"
    );
}

/// A loopback server that answers every request with a redirect to `location`.
async fn redirector(location: &'static str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let reply = format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    format!("http://{addr}/image.png")
}

/// Media URLs of sends go through the same egress policy as webhooks: metadata and
/// link-local targets, wharf's own port, and redirects to them are refused with a 400.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_urls_to_metadata_or_wharf_itself_are_refused() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    app.pair(&net, "alice", "15550003331").await;
    let own = format!("{}/api/sessions", app.base);
    let redirect = redirector("http://169.254.169.254/latest/meta-data").await;
    for url in [
        "http://169.254.169.254/latest/meta-data".to_string(),
        own,
        redirect,
    ] {
        let body = json!({"session": "alice", "chatId": "15550003332@c.us",
            "file": {"mimetype": "image/png", "url": url}});
        let r = app.post("/api/sendImage", &body.to_string()).await;
        assert_eq!(r.status, 400, "{url}: {}", r.text);
        assert!(
            r.text.contains("egress policy") || r.text.contains("refused"),
            "{url}: {}",
            r.text
        );
    }
}

/// Each app's "wharf itself" is its own port: two apps in one process (as in this test
/// binary) do not refuse each other's ports, and a port a stopped app freed is an
/// ordinary one. (The policy was once process-wide: a test file server that got a stopped
/// app's port was refused by every later app.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_apps_port_is_not_refused_by_another_app() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let mut first = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    app.pair(&net, "alice", "15550003341").await;
    let freed: std::net::SocketAddr = first.base.trim_start_matches("http://").parse().unwrap();
    first.stop().await;
    // The kernel may hand this port to anything now; here, to a file server.
    let listener = eventually(Duration::from_secs(10), "the freed port binds", || async {
        tokio::net::TcpListener::bind(freed)
            .await
            .map_err(|e| e.to_string())
    })
    .await;
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let mut buf = [0u8; 2048];
            let _ = s.read(&mut buf).await;
            let reply = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello";
            let _ = s.write_all(reply.as_bytes()).await;
        }
    });
    let send = |url: String| {
        json!({"session": "alice", "chatId": "15550003342@c.us",
            "file": {"mimetype": "text/plain", "filename": "a.txt", "url": url}})
        .to_string()
    };
    let r = app
        .post("/api/sendFile", &send(format!("http://{freed}/a.txt")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    // Its own port stays refused.
    let r = app
        .post("/api/sendFile", &send(format!("{}/api/sessions", app.base)))
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("egress policy"), "{}", r.text);
}

/// A session whose device database is damaged goes FAILED at once, naming the reason,
/// instead of sitting in STARTING while the engine's pool retries for 30 s; the other
/// sessions are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_device_database_fails_fast_with_the_reason() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    let r = app
        .post("/api/sessions", r#"{"name":"dmg","start":false}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let db = app.dir.path().join("sessions/gows/dmg/whatsapp.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    std::fs::write(&db, vec![0x5a_u8; 64 * 1024]).unwrap();
    let started = std::time::Instant::now();
    let r = app.post("/api/sessions/dmg/start", "{}").await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_status("dmg", "FAILED", Duration::from_secs(10))
        .await;
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );
    // It stays FAILED (retrying cannot repair a file), and the data is left for the operator.
    let again = app.get("/api/sessions/dmg").await.json();
    assert_eq!(again["status"], "FAILED", "{again}");
    assert!(db.exists());
    // Another session on the same server pairs as usual.
    app.pair(&net, "healthy", "15550004441").await;
}
