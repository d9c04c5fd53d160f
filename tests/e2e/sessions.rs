//! `/api/sessions…` end to end, on every store.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::app::{StoreKind, TestApp};

const FULL_CONFIG: &str = r#"{
  "metadata": {"user.id": "123", "user.email": "a@b.c"},
  "proxy": {"server": "localhost:3128", "username": "u", "password": "p"},
  "debug": true,
  "ignore": {"status": true, "groups": false, "channels": null, "broadcast": true},
  "client": {"deviceName": "MacOS", "browserName": "Firefox"},
  "noweb": {"markOnline": false, "store": {"enabled": true, "fullSync": false}},
  "webhooks": [{
    "url": "https://example.com/hook",
    "events": ["message", "session.status"],
    "hmac": {"key": "super-secret"},
    "retries": {"delaySeconds": 2, "attempts": 5, "policy": "linear"},
    "customHeaders": [{"name": "X-Request-ID", "value": "123"}]
  }]
}"#;

async fn each_store(test: &str, f: impl AsyncFn(TestApp)) {
    for store in StoreKind::all(test) {
        eprintln!("-- {test} on {store:?}");
        f(TestApp::spawn(store).await).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_stopped_session_returns_201_and_round_trips_config() {
    each_store("create_stopped_session", async |app| {
        let body = format!(r#"{{"name":"alpha","start":false,"config":{FULL_CONFIG}}}"#);
        let r = app.post("/api/sessions", &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        let created = r.json();
        assert_eq!(created["name"], "alpha");
        assert_eq!(created["status"], "STOPPED");
        let expected: Value = serde_json::from_str(FULL_CONFIG).unwrap();
        // `channels: null` is echoed as null; everything else exactly as sent.
        assert_eq!(created["config"], expected);

        let got = app.get("/api/sessions/alpha").await.json();
        assert_eq!(got["config"], expected);
        assert_eq!(got["status"], "STOPPED");
        assert_eq!(got["me"], Value::Null);
        assert_eq!(got["presence"], Value::Null);
        assert_eq!(got["timestamps"], json!({"activity": null}));
        assert_eq!(got["engine"], json!({"engine": "GOWS"}));
        assert!(got.get("apps").is_none());
        let expanded = app.get("/api/sessions/alpha?expand=apps").await.json();
        assert_eq!(expanded["apps"], json!([]));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_without_all_hides_stopped_sessions() {
    each_store("list_without_all", async |app| {
        app.post("/api/sessions", r#"{"name":"b-stopped","start":false}"#)
            .await;
        app.post("/api/sessions", r#"{"name":"a-running"}"#).await;
        let running: Vec<String> = names(&app.get("/api/sessions").await.json());
        assert_eq!(running, vec!["a-running"]);
        let all = names(&app.get("/api/sessions?all=true").await.json());
        assert_eq!(all, vec!["a-running", "b-stopped"]);
        let r = app.get("/api/sessions?all=maybe").await;
        assert_eq!(r.status, 400);
    })
    .await;
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_without_name_generates_session_hex() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    for body in [r#"{"start":false}"#, r#"{"name":"","start":false}"#, ""] {
        let r = app.post("/api/sessions", body).await;
        assert_eq!(r.status, 201, "{body}: {}", r.text);
        let name = r.json()["name"].as_str().unwrap().to_string();
        let hex = name.strip_prefix("session_").expect("prefix");
        assert_eq!(hex.len(), 32);
        assert!(
            hex.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_replaces_config_fully() {
    each_store("update_replaces_config", async |app| {
        let body = format!(r#"{{"name":"u1","start":false,"config":{FULL_CONFIG}}}"#);
        app.post("/api/sessions", &body).await;
        let r = app
            .put("/api/sessions/u1", r#"{"config":{"debug":false}}"#)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["config"], json!({"debug": false}));
        assert_eq!(
            app.get("/api/sessions/u1").await.json()["config"],
            json!({"debug": false})
        );
        let r = app.put("/api/sessions/u1", "{}").await;
        assert_eq!(r.json()["config"], json!({}));
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn start_stop_restart_logout_follow_waha_statuses() {
    each_store("start_stop", async |app| {
        app.post("/api/sessions", r#"{"name":"s1","start":false}"#)
            .await;
        let r = app.post("/api/sessions/s1/start", "").await;
        assert_eq!(r.status, 201);
        assert_ne!(r.json()["status"], "STOPPED");
        // No engine in this build: the session must not hang in STARTING.
        let failed = app
            .wait_status("s1", "FAILED", Duration::from_secs(10))
            .await;
        assert!(failed["timestamps"]["activity"].is_i64());
        assert_eq!(names(&app.get("/api/sessions").await.json()), vec!["s1"]);

        let r = app.post("/api/sessions/s1/restart", "").await;
        assert_eq!(r.status, 201);
        let r = app.post("/api/sessions/s1/stop", "").await;
        assert_eq!(r.status, 201);
        assert_eq!(r.json()["status"], "STOPPED");
        // Stop is idempotent.
        let r = app.post("/api/sessions/s1/stop", "").await;
        assert_eq!(
            (r.status, r.json()["status"].clone()),
            (201, json!("STOPPED"))
        );
        // Logout of a stopped session keeps it stopped and keeps its config.
        let r = app.post("/api/sessions/s1/logout", "").await;
        assert_eq!(
            (r.status, r.json()["status"].clone()),
            (201, json!("STOPPED"))
        );
        assert_eq!(app.get("/api/sessions/s1/me").await.text, "null");
        assert_eq!(
            app.get("/api/sessions?all=true")
                .await
                .json()
                .as_array()
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_is_idempotent_and_removes_session() {
    each_store("delete", async |app| {
        app.post("/api/sessions", r#"{"name":"d1"}"#).await;
        let r = app.delete("/api/sessions/d1").await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        assert_eq!(app.get("/api/sessions/d1").await.status, 404);
        assert_eq!(app.delete("/api/sessions/d1").await.status, 200);
        assert_eq!(app.delete("/api/sessions/bad.name").await.status, 200);
        assert_eq!(app.get("/api/sessions?all=true").await.json(), json!([]));
        // The name is free again.
        assert_eq!(
            app.post("/api/sessions", r#"{"name":"d1","start":false}"#)
                .await
                .status,
            201
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_survive_restart_and_running_ones_are_restored() {
    for store in StoreKind::all("sessions_survive_restart") {
        let app = TestApp::spawn(store).await;
        app.post(
            "/api/sessions",
            r#"{"name":"kept","start":false,"config":{"debug":true}}"#,
        )
        .await;
        app.post("/api/sessions", r#"{"name":"runner"}"#).await;
        app.post("/api/sessions", r#"{"name":"stopped-later"}"#)
            .await;
        app.post("/api/sessions/stopped-later/stop", "").await;
        let app = app.restart().await;
        let all = app.get("/api/sessions?all=true").await.json();
        assert_eq!(names(&all), vec!["kept", "runner", "stopped-later"]);
        assert_eq!(all[0]["status"], "STOPPED");
        assert_eq!(all[0]["config"], json!({"debug": true}));
        // Only the session that was running on this worker comes back.
        assert_eq!(
            names(&app.get("/api/sessions").await.json()),
            vec!["runner"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_all_and_start_session_env_start_sessions_on_boot() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    app.post("/api/sessions", r#"{"name":"one","start":false}"#)
        .await;
    app.post("/api/sessions", r#"{"name":"two","start":false}"#)
        .await;
    let mut app = app;
    app.extra
        .insert("WHATSAPP_RESTART_ALL_SESSIONS".into(), "true".into());
    app.extra
        .insert("WHATSAPP_START_SESSION".into(), "three".into());
    let app = app.restart().await;
    assert_eq!(
        names(&app.get("/api/sessions").await.json()),
        vec!["one", "three", "two"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_creates_of_one_name_yield_one_201() {
    each_store("concurrent_creates", async |app| {
        let app = std::sync::Arc::new(app);
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let app = app.clone();
            tasks.push(tokio::spawn(async move {
                app.post("/api/sessions", r#"{"name":"race","start":false}"#)
                    .await
                    .status
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await.unwrap());
        }
        codes.sort_unstable();
        assert_eq!(codes.iter().filter(|c| **c == 201).count(), 1, "{codes:?}");
        assert_eq!(codes.iter().filter(|c| **c == 422).count(), 9, "{codes:?}");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deprecated_routes_behave_like_waha() {
    each_store("deprecated_routes", async |app| {
        let r = app
            .post(
                "/api/sessions/start",
                r#"{"name":"old","config":{"debug":true}}"#,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json()["config"], json!({"debug": true}));
        let r = app.post("/api/sessions/start", r#"{"name":"old"}"#).await;
        assert_eq!(r.status, 422);
        let r = app.post("/api/sessions/stop", r#"{"name":"old"}"#).await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        assert_eq!(
            app.get("/api/sessions/old").await.json()["status"],
            "STOPPED"
        );
        let r = app
            .post("/api/sessions/stop", r#"{"name":"old","logout":true}"#)
            .await;
        assert_eq!(r.status, 201);
        assert_eq!(app.get("/api/sessions/old").await.status, 404);
        app.post("/api/sessions", r#"{"name":"old2","start":false}"#)
            .await;
        assert_eq!(
            app.post("/api/sessions/logout", r#"{"name":"old2"}"#)
                .await
                .status,
            201
        );
        assert_eq!(app.get("/api/sessions/old2").await.status, 404);
        assert_eq!(app.post("/api/sessions/start", r#"{}"#).await.status, 400);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mongo_name_limit_keeps_database_name_under_64_bytes() {
    let Some(server) = crate::support::mongo::MongoServer::shared("mongo_name_limit") else {
        return;
    };
    let ns = server.unique_namespace();
    let app = TestApp::spawn(StoreKind::Mongo {
        url: server.url().into(),
        namespace: ns.clone(),
    })
    .await;
    let max = 63 - format!("waha_{ns}_").len();
    let ok = "a".repeat(max.min(54));
    assert_eq!(
        app.post(
            "/api/sessions",
            &format!(r#"{{"name":"{ok}","start":false}}"#)
        )
        .await
        .status,
        201
    );
    let too_long = "b".repeat(max.min(54) + 1);
    let r = app
        .post(
            "/api/sessions",
            &format!(r#"{{"name":"{too_long}","start":false}}"#),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
}

/// `GET /api/sessions` is served from a cache while nothing changed (issue 16): every kind
/// of change must show in the very next listing, for each (`all`, `expand`) variant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cached_listing_shows_every_change_at_once() {
    each_store("cached_listing", async |app| {
        let list = async |q: &str| app.get(&format!("/api/sessions{q}")).await.json();
        let find = |l: &Value, n: &str| {
            l.as_array()
                .unwrap()
                .iter()
                .find(|s| s["name"] == n)
                .cloned()
        };
        // Warm both variants, then create: the new session is listed at once.
        assert_eq!(list("?all=true").await, json!([]));
        assert_eq!(list("").await, json!([]));
        app.post("/api/sessions", r#"{"name":"c1","start":false}"#)
            .await;
        assert_eq!(names(&list("?all=true").await), vec!["c1"]);
        assert_eq!(list("").await, json!([]));
        // Two identical calls answer the same bytes.
        let a = app.get("/api/sessions?all=true").await.text;
        assert_eq!(a, app.get("/api/sessions?all=true").await.text);
        // A config change.
        app.put("/api/sessions/c1", r#"{"config":{"debug":true}}"#)
            .await;
        let c1 = find(&list("?all=true").await, "c1").unwrap();
        assert_eq!(c1["config"], json!({"debug": true}));
        // expand=apps is its own variant.
        let c1 = find(&list("?all=true&expand=apps").await, "c1").unwrap();
        assert_eq!(c1["apps"], json!([]));
        assert!(
            find(&list("?all=true").await, "c1")
                .unwrap()
                .get("apps")
                .is_none()
        );
        // Status changes made by the running session itself (no engine in this build:
        // STARTING, then FAILED).
        app.post("/api/sessions/c1/start", "").await;
        assert_eq!(names(&list("").await), vec!["c1"]);
        assert_ne!(find(&list("").await, "c1").unwrap()["status"], "STOPPED");
        crate::support::poll::eventually(Duration::from_secs(30), "FAILED listed", || async {
            let s = find(&list("").await, "c1").unwrap()["status"].clone();
            if s == "FAILED" {
                Ok(())
            } else {
                Err(s.to_string())
            }
        })
        .await;
        // Stop, then delete.
        app.post("/api/sessions/c1/stop", "").await;
        assert_eq!(list("").await, json!([]));
        assert_eq!(
            find(&list("?all=true").await, "c1").unwrap()["status"],
            "STOPPED"
        );
        app.delete("/api/sessions/c1").await;
        assert_eq!(list("?all=true").await, json!([]));
    })
    .await;
}
