//! `/ping`, `/health`, `/api/server/*`, `/api/version`.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    mongo::MongoServer,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_is_public_and_answers_pong() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.request(Method::GET, "/ping", None, None).await;
    assert_eq!((r.status, r.text.as_str()), (200, r#"{"message":"pong"}"#));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_store_up_on_every_store() {
    for store in StoreKind::all("health_up") {
        let mongo = matches!(store, StoreKind::Mongo { .. });
        let app = TestApp::spawn(store).await;
        assert_eq!(
            app.request(Method::GET, "/health", None, None).await.status,
            401
        );
        let r = app.get("/health").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let body = r.json();
        assert_eq!(body["status"], "ok");
        let key = if mongo {
            "mongodb"
        } else {
            "sessionsFiles.space"
        };
        assert_eq!(body["info"][key]["status"], "up");
        assert_eq!(body["info"]["mediaFiles.space"]["status"], "up");
        assert_eq!(
            body["info"]["mediaFiles.space"]["threshold"],
            100 * 1024 * 1024
        );
        assert!(body["info"]["mediaFiles.space"]["free"].as_u64().unwrap() > 0);
        assert_eq!(body["error"], json!({}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_returns_503_when_disk_is_below_threshold() {
    // A threshold no disk can meet: the media indicator goes down, the answer is 503.
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[("WHATSAPP_HEALTH_MEDIA_FILES_THRESHOLD_MB", "999999999")],
    )
    .await;
    let r = app.get("/health").await;
    assert_eq!(r.status, 503, "{}", r.text);
    let body = r.json();
    assert_eq!(body["status"], "error");
    assert_eq!(body["error"]["mediaFiles.space"]["status"], "down");
    assert_eq!(body["info"]["sessionsFiles.space"]["status"], "up");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_returns_503_when_mongo_is_down() {
    let Ok(bin) = std::env::var("MONGO_SERVER_BIN") else {
        eprintln!("SKIPPED (no MongoDB): set MONGO_SERVER_BIN");
        return;
    };
    let own = MongoServer::spawn(&bin);
    let app = TestApp::spawn(StoreKind::Mongo {
        url: own.url().into(),
        namespace: own.unique_namespace(),
    })
    .await;
    assert_eq!(app.get("/health").await.status, 200);
    own.stop();
    let until = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let r = app.get("/health").await;
        if r.status == 503 {
            let body = r.json();
            assert_eq!(body["status"], "error");
            assert_eq!(body["error"]["mongodb"]["status"], "down");
            assert!(!r.text.contains(own.url()) || !own.url().contains('@'));
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "health never turned 503: {}",
            r.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn version_endpoints_return_waha_environment() {
    let app = TestApp::spawn_with(StoreKind::Embedded, &[("WAHA_WORKER_ID", "w1")]).await;
    for path in ["/api/server/version", "/api/version"] {
        let v = app.get(path).await.json();
        assert_eq!(v["version"], "2026.7.1");
        assert_eq!(v["engine"], "GOWS");
        assert_eq!(v["tier"], "CORE");
        assert_eq!(v["browser"], serde_json::Value::Null);
        assert!(v["platform"].as_str().unwrap().contains('/'));
        assert_eq!(v["worker"], json!({"id": "w1"}));
    }
    let app =
        TestApp::spawn_with(StoreKind::Embedded, &[("WHATSAPP_DEFAULT_ENGINE", "NOWEB")]).await;
    assert_eq!(
        app.get("/api/server/version").await.json()["engine"],
        "NOWEB"
    );
    assert_eq!(
        app.get("/api/server/version").await.json()["worker"],
        json!({"id": null})
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_status_reports_uptime() {
    let app = TestApp::spawn_with(StoreKind::Embedded, &[("WAHA_WORKER_ID", "w9")]).await;
    let s = app.get("/api/server/status").await.json();
    let start = s["startTimestamp"].as_i64().unwrap();
    assert!(start > 1_700_000_000_000);
    assert!(s["uptime"].as_i64().unwrap() >= 0);
    assert_eq!(s["worker"], json!({"id": "w9"}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_never_prints_secrets() {
    let app = TestApp::spawn_with(
        StoreKind::Embedded,
        &[
            ("WHATSAPP_HOOK_URL", "https://hooks.example.com/x"),
            ("WHATSAPP_HOOK_HMAC_KEY", "hmac-secret-value"),
            ("WAHA_DASHBOARD_PASSWORD", "dash-secret-value"),
            ("WAHA_PUBLIC_URL", "https://user:url-secret@example.com/p"),
            ("OTHER_VAR", "x"),
        ],
    )
    .await;
    let r = app.get("/api/server/environment").await;
    assert_eq!(r.status, 200);
    for secret in [
        API_KEY,
        "hmac-secret-value",
        "dash-secret-value",
        "url-secret",
    ] {
        assert!(!r.text.contains(secret), "{secret} leaked: {}", r.text);
    }
    let env = r.json();
    assert_eq!(env["WAHA_API_KEY"], "***");
    assert_eq!(env["WHATSAPP_HOOK_URL"], "https://hooks.example.com/x");
    assert_eq!(env["WAHA_PUBLIC_URL"], "https://user:***@example.com/p");
    assert!(env.get("OTHER_VAR").is_none());
    let all = app.get("/api/server/environment?all=true").await.json();
    assert_eq!(all["OTHER_VAR"], "x");
    // Sorted by key, like WAHA.
    let keys: Vec<&String> = env.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_stop_answers_201_then_stops_gracefully() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    let r = app.post("/api/server/stop", r#"{"force":false}"#).await;
    assert_eq!((r.status, r.text.as_str()), (201, r#"{"stopping":true}"#));
    let until = tokio::time::Instant::now() + Duration::from_secs(15);
    let client = reqwest::Client::new();
    loop {
        if client
            .get(format!("{}/ping", app.base))
            .send()
            .await
            .is_err()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "server still answers after stop"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
