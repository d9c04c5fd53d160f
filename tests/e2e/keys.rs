//! `/api/keys` (WAHA's API keys, issue 13 item 1) and what the keys can do (item 2):
//! shapes, defaults, hashing at rest, the derived media/control keys, revocation, the
//! `/ws` narrowing and the JWT session tokens (item 3). Both stores where the store is
//! involved. The route-by-route matrix is `isolation.rs`.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::app::{Reply, StoreKind, TestApp};

/// Creates stopped sessions `names`.
pub async fn sessions(app: &TestApp, names: &[&str]) {
    for name in names {
        let r = app
            .post(
                "/api/sessions",
                &format!(r#"{{"name":"{name}","start":false}}"#),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}

/// Creates a key with `body` (admin) and returns the create answer.
pub async fn create_key(app: &TestApp, body: Value) -> Value {
    let r = app.post("/api/keys", &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    r.json()
}

async fn call(app: &TestApp, method: Method, path: &str, key: &str, body: Option<&str>) -> Reply {
    app.request(method, path, Some(key), body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_key_created_listed_masked_scoped_revoked() {
    for store in StoreKind::all("keys::session_key_created_listed_masked_scoped_revoked") {
        let app = TestApp::spawn(store).await;
        sessions(&app, &["alpha", "beta"]).await;
        let created = create_key(
            &app,
            json!({"session": "alpha", "isAdmin": false, "isActive": true}),
        )
        .await;
        let id = created["id"].as_str().expect("id").to_string();
        let key = created["key"].as_str().expect("key").to_string();
        assert!(id.starts_with("key_id_"), "{created}");
        assert!(key.starts_with("key_") && key.len() > 20, "{created}");
        assert_eq!(
            created,
            json!({"id": id, "key": key, "isActive": true, "isAdmin": false, "session": "alpha",
                   "actions": {"read": true, "send": true, "control": true, "setting": true,
                               "app": true, "delete": false}})
        );
        // Listed masked: the plaintext is never shown again.
        let list = app.get("/api/keys").await;
        assert_eq!(list.status, 200, "{}", list.text);
        assert!(!list.text.contains(&key), "{}", list.text);
        assert_eq!(list.json()[0]["id"], json!(id));
        assert!(list.json()[0]["key"].as_str().unwrap().starts_with("key_"));

        // The key sees only its session.
        let r = call(&app, Method::GET, "/api/sessions?all=true", &key, None).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let names: Vec<&str> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["name"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
            .leak()
            .iter()
            .map(String::as_str)
            .collect();
        assert_eq!(names, ["alpha"]);
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &key, None)
                .await
                .status,
            200
        );
        let r = call(&app, Method::GET, "/api/sessions/beta", &key, None).await;
        assert_eq!(
            (r.status, r.json()),
            (403, json!({"message": "Forbidden", "statusCode": 403}))
        );
        // No `delete` by default; admin routes are admin-only.
        assert_eq!(
            call(&app, Method::DELETE, "/api/sessions/alpha", &key, None)
                .await
                .status,
            403
        );
        assert_eq!(
            call(&app, Method::GET, "/api/keys", &key, None)
                .await
                .status,
            403
        );
        assert_eq!(
            call(&app, Method::POST, "/api/sessions", &key, Some("{}"))
                .await
                .status,
            403
        );
        // A body naming another session.
        let r = call(
            &app,
            Method::POST,
            "/api/sendText",
            &key,
            Some(r#"{"session":"beta","chatId":"1@c.us","text":"x"}"#),
        )
        .await;
        assert_eq!(r.status, 403, "{}", r.text);

        // Deactivated: refused at once; reactivated: accepted again.
        let r = app
            .put(
                &format!("/api/keys/{id}"),
                r#"{"session":"alpha","isAdmin":false,"isActive":false}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["isActive"], json!(false));
        assert!(!r.text.contains(&key));
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &key, None)
                .await
                .status,
            401
        );
        let r = app
            .put(
                &format!("/api/keys/{id}"),
                r#"{"session":"alpha","isAdmin":false,"isActive":true,"actions":{"read":true}}"#,
            )
            .await;
        assert_eq!(
            r.json()["actions"],
            json!({"read": true, "send": false, "control": false,
            "setting": false, "app": false, "delete": false})
        );
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &key, None)
                .await
                .status,
            200
        );
        // Read-only now: a write is refused.
        assert_eq!(
            call(&app, Method::POST, "/api/sessions/alpha/start", &key, None)
                .await
                .status,
            403
        );
        // Deleted: refused at once.
        let r = app.delete(&format!("/api/keys/{id}")).await;
        assert_eq!((r.status, r.json()), (200, json!({"result": true})));
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &key, None)
                .await
                .status,
            401
        );
        assert_eq!(app.delete(&format!("/api/keys/{id}")).await.status, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_requests_validated_unknown_session_422() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    sessions(&app, &["alpha"]).await;
    let r = app
        .post(
            "/api/keys",
            r#"{"session":"nope","isAdmin":false,"isActive":true}"#,
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text);
    assert_eq!(r.json()["session"], json!("nope"));
    let r = app.post("/api/keys/media", r#"{"session":"nope"}"#).await;
    assert_eq!(r.status, 422, "{}", r.text);
    // Actions only on session keys; a session key needs a session.
    let r = app
        .post(
            "/api/keys",
            r#"{"isAdmin":true,"session":null,"isActive":true,"actions":{"read":true}}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .post(
            "/api/keys",
            r#"{"isAdmin":false,"session":null,"isActive":true}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert_eq!(
        app.put(
            "/api/keys/key_id_nope",
            r#"{"isAdmin":true,"session":null,"isActive":true}"#
        )
        .await
        .status,
        404
    );
    // A stored admin key can do admin things.
    let admin = create_key(
        &app,
        json!({"isAdmin": true, "session": null, "isActive": true}),
    )
    .await;
    assert_eq!(admin["actions"], Value::Null);
    let k = admin["key"].as_str().unwrap();
    assert_eq!(
        call(&app, Method::GET, "/api/keys", k, None).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_and_control_keys_idempotent_derived_and_scoped() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    for store in StoreKind::all("keys::media_and_control_keys_idempotent_derived_and_scoped") {
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        sessions(&app, &["alpha", "beta"]).await;
        let m1 = app.post("/api/keys/media", r#"{"session":"alpha"}"#).await;
        assert_eq!(m1.status, 201, "{}", m1.text);
        let m2 = app.post("/api/keys/media", r#"{"session":"alpha"}"#).await;
        assert_eq!(m1.json(), m2.json());
        assert_eq!(m1.json()["id"], json!("key_id_media_alpha"));
        assert_eq!(
            m1.json()["actions"],
            json!({"read": false, "send": false, "control": false,
            "setting": false, "app": false, "delete": false})
        );
        let media = m1.json()["key"].as_str().unwrap().to_string();
        // Not stored in clear (the listing shows a mask), yet the same key each time.
        assert!(!app.get("/api/keys").await.text.contains(&media));
        // A media key reads nothing but files.
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &media, None)
                .await
                .status,
            403
        );
        let c = app
            .post("/api/keys/control", r#"{"session":"alpha"}"#)
            .await;
        assert_eq!(c.status, 201, "{}", c.text);
        assert_eq!(c.json()["id"], json!("key_id_control_alpha"));
        let control = c.json()["key"].as_str().unwrap().to_string();
        assert_ne!(control, media);
        let r = call(
            &app,
            Method::POST,
            "/api/sessions/alpha/stop",
            &control,
            None,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            call(
                &app,
                Method::POST,
                "/api/sessions/beta/stop",
                &control,
                None
            )
            .await
            .status,
            403
        );
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha/me", &control, None)
                .await
                .status,
            403
        );
        // Another session's media key differs.
        let b = app.post("/api/keys/media", r#"{"session":"beta"}"#).await;
        assert_ne!(b.json()["key"], json!(media));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn derived_keys_rotate_with_the_admin_key() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    sessions(&app, &["alpha"]).await;
    let before = app
        .post("/api/keys/media", r#"{"session":"alpha"}"#)
        .await
        .json()["key"]
        .clone();
    let mut app = app;
    app.extra.insert(
        "WAHA_API_KEY".into(),
        "another-admin-key-0123456789abcdef".into(),
    );
    let app = app.restart().await;
    let after = app
        .request(
            Method::POST,
            "/api/keys/media",
            Some("another-admin-key-0123456789abcdef"),
            Some(r#"{"session":"alpha"}"#),
        )
        .await;
    assert_eq!(after.status, 201, "{}", after.text);
    assert_ne!(after.json()["key"], before);
    // The old derived key no longer works.
    let old = before.as_str().unwrap();
    assert_eq!(
        call(&app, Method::GET, "/api/keys", old, None).await.status,
        401
    );
}

/// Finds `waha.sqlite3` under the app's temp dir.
fn main_db(app: &TestApp) -> std::path::PathBuf {
    fn walk(dir: &std::path::Path) -> Option<std::path::PathBuf> {
        for e in std::fs::read_dir(dir).ok()?.flatten() {
            let p = e.path();
            if p.is_dir() {
                if let Some(f) = walk(&p) {
                    return Some(f);
                }
            } else if p.file_name().is_some_and(|n| n == "waha.sqlite3") {
                return Some(p);
            }
        }
        None
    }
    walk(app.dir.path()).expect("waha.sqlite3")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_hashed_at_rest_and_waha_plaintext_rows_rehashed_on_use() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    sessions(&app, &["alpha"]).await;
    let created = create_key(
        &app,
        json!({"session": "alpha", "isAdmin": false, "isActive": true}),
    )
    .await;
    let key = created["key"].as_str().unwrap().to_string();
    let db = rusqlite::Connection::open(main_db(&app)).expect("open main db");
    let stored: (String, String) = db
        .query_row(
            r#"SELECT "key", data FROM api_key WHERE id = ?1"#,
            [created["id"].as_str().unwrap()],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert!(stored.0.starts_with("sha256:"), "{stored:?}");
    assert!(
        !stored.0.contains(&key) && !stored.1.contains(&key),
        "{stored:?}"
    );
    // A row as WAHA writes it: the key in clear.
    let legacy = "key_0123456789abcdef0123456789abcdef";
    db.execute(
        r#"INSERT INTO api_key (id, "key", "isActive", session, data) VALUES ('key_id_waha', ?1, 1, 'alpha', ?2)"#,
        rusqlite::params![legacy, json!({"id": "key_id_waha", "key": legacy, "isActive": true,
            "isAdmin": false, "session": "alpha", "actions": null}).to_string()],
    )
    .expect("insert WAHA row");
    let r = call(&app, Method::GET, "/api/sessions/alpha", legacy, None).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let now: (String, String) = db
        .query_row(
            r#"SELECT "key", data FROM api_key WHERE id = 'key_id_waha'"#,
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("row");
    assert!(
        now.0.starts_with("sha256:") && !now.1.contains(legacy),
        "{now:?}"
    );
    // Still accepted after the rehash.
    assert_eq!(
        call(&app, Method::GET, "/api/sessions/alpha", legacy, None)
            .await
            .status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_session_revokes_its_keys() {
    for store in StoreKind::all("keys::deleting_a_session_revokes_its_keys") {
        let app = TestApp::spawn(store).await;
        sessions(&app, &["alpha"]).await;
        let key = create_key(
            &app,
            json!({"session": "alpha", "isAdmin": false, "isActive": true}),
        )
        .await["key"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(app.delete("/api/sessions/alpha").await.status, 200);
        sessions(&app, &["alpha"]).await;
        assert_eq!(
            call(&app, Method::GET, "/api/sessions/alpha", &key, None)
                .await
                .status,
            401
        );
    }
}

type Ws =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

pub async fn ws(app: &TestApp, query: &str) -> Ws {
    let url = format!("{}/ws?{query}", app.base.replacen("http://", "ws://", 1));
    tokio_websockets::ClientBuilder::new()
        .uri(&url)
        .expect("ws uri")
        .connect()
        .await
        .expect("websocket handshake")
        .0
}

/// The close frame (code, reason), skipping text and control frames; `None` if the
/// connection stays open for `wait`.
pub async fn ws_closed(ws: &mut Ws, wait: Duration) -> Option<(u16, String)> {
    use futures_util::StreamExt;
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .ok()??
            .ok()?;
        if let Some((code, reason)) = msg.as_close() {
            return Some((code.into(), reason.to_string()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_session_key_narrowed_other_session_forbidden() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    sessions(&app, &["alpha", "beta"]).await;
    let key = create_key(
        &app,
        json!({"session": "alpha", "isAdmin": false, "isActive": true}),
    )
    .await["key"]
        .as_str()
        .unwrap()
        .to_string();
    let mut other = ws(&app, &format!("x-api-key={key}&session=beta")).await;
    assert_eq!(
        ws_closed(&mut other, Duration::from_secs(10)).await,
        Some((1008, "Forbidden".into()))
    );
    let mut bad = ws(&app, "x-api-key=key_wrong").await;
    assert_eq!(
        ws_closed(&mut bad, Duration::from_secs(10)).await,
        Some((1008, "Unauthorized".into()))
    );
    // `session=*` is narrowed, not refused: the socket stays open and gets alpha's events.
    let mut own = ws(&app, &format!("x-api-key={key}")).await;
    let mut own_named = ws(&app, &format!("x-api-key={key}&session=alpha")).await;
    assert_eq!(app.post("/api/sessions/beta/start", "").await.status, 201);
    assert_eq!(app.post("/api/sessions/alpha/start", "").await.status, 201);
    for socket in [&mut own, &mut own_named] {
        use futures_util::StreamExt;
        let text = loop {
            let msg = tokio::time::timeout(Duration::from_secs(20), socket.next())
                .await
                .expect("event in time")
                .expect("open")
                .expect("frame");
            if let Some(t) = msg.as_text() {
                break t.to_string();
            }
        };
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["session"], json!("alpha"), "{v}");
    }
}
