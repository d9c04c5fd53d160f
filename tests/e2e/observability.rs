//! `/ping`, `/health`, `/api/server/*`, `/api/version`.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use mongodb::bson::doc;

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    mongo::MongoServer,
    poll::eventually,
    process::Wharf,
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

/// A credentialed MongoDB URL: its password shows nowhere — not in
/// `/api/server/environment`, not in `/health` (up, nor down with a driver error), not in
/// the log. The real binary runs, so the log is the one users see.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_returns_503_when_mongo_is_down_and_never_shows_its_password() {
    const SECRET: &str = "pw-8c1f2e7d-never-shown";
    let test = "observability::health_returns_503_when_mongo_is_down_and_never_shows_its_password";
    // A private server: this test provisions a user on it, then stops it.
    let Some(own) = MongoServer::private(test) else {
        return;
    };
    // Like mongod without `--auth`, SecantusDB then authenticates that user (SCRAM).
    mongodb::Client::with_uri_str(own.url())
        .await
        .expect("mongodb client")
        .database("admin")
        .run_command(doc! {"createUser": "wharf", "pwd": SECRET, "roles": ["root"]})
        .await
        .expect("createUser");
    let url = own
        .url()
        .replacen("mongodb://", &format!("mongodb://wharf:{SECRET}@"), 1);
    let shown = own.url().replacen("mongodb://", "mongodb://wharf:***@", 1);
    let ns = own.unique_namespace();
    let dir = tempfile::tempdir().expect("tempdir");
    let wharf = Wharf::start(
        dir.path(),
        API_KEY,
        &[
            ("WHATSAPP_SESSIONS_MONGO_URL", url.as_str()),
            ("WAHA_NAMESPACE", ns.as_str()),
            ("WAHA_SESSION_NAMESPACE", ns.as_str()),
        ],
    )
    .await;

    let (status, env) = wharf
        .call(Method::GET, "/api/server/environment", None)
        .await;
    assert_eq!(status, 200, "{env}");
    assert_eq!(env["WHATSAPP_SESSIONS_MONGO_URL"], shown.as_str());
    assert!(!env.to_string().contains(SECRET), "{env}");
    let (status, health) = wharf.call(Method::GET, "/health", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["info"]["mongodb"]["status"], "up");
    assert!(!health.to_string().contains(SECRET), "{health}");

    // `stop` waits for the process to exit: keep the runtime's other worker free.
    tokio::task::block_in_place(|| own.stop());
    let health = eventually(Duration::from_secs(20), "/health turns 503", || async {
        match wharf.call(Method::GET, "/health", None).await {
            (503, body) => Ok(body),
            (status, body) => Err(format!("{status} {body}")),
        }
    })
    .await;
    assert_eq!(health["status"], "error");
    assert_eq!(health["error"]["mongodb"]["status"], "down");
    assert!(!health.to_string().contains(SECRET), "{health}");
    // A 500 echoes the query (WAHA's shape) but never a key presented there.
    let res = reqwest::Client::new()
        .get(format!(
            "{}/api/sessions?probe=1&x-api-key={API_KEY}",
            wharf.base
        ))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), 500);
    let body: serde_json::Value = res.json().await.expect("json");
    assert_eq!(body["request"]["query"], json!({"probe": "1"}), "{body}");
    assert!(!body.to_string().contains(API_KEY), "{body}");
    let log = std::fs::read_to_string(&wharf.log).expect("log");
    assert!(log.contains(&ns), "the log names the store: {log}");
    assert!(!log.contains(SECRET), "password in the log: {log}");
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
    let client = reqwest::Client::new();
    let ping = format!("{}/ping", app.base);
    eventually(
        Duration::from_secs(15),
        "the server stops answering",
        || async {
            match client.get(&ping).send().await {
                Err(_) => Ok(()),
                Ok(r) => Err(format!("still answers {}", r.status())),
            }
        },
    )
    .await;
}

/// Logs (issue 14): the startup line names where Swagger, the spec and `/metrics` are;
/// every session state change is one structured line (`WAHA_LOG_FORMAT=JSON`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_line_and_one_structured_line_per_status_change() {
    let dir = tempfile::tempdir().expect("tempdir");
    let dead = format!(
        "ws://127.0.0.1:{}/ws/chat",
        crate::support::process::free_port()
    );
    let wharf = Wharf::start(
        dir.path(),
        API_KEY,
        &[
            ("WAHA_LOG_FORMAT", "JSON"),
            ("WHARF_WA_URL", dead.as_str()),
            ("WHARF_CONNECT_TIMEOUT_SECONDS", "1"),
        ],
    )
    .await;
    let (status, body) = wharf
        .call(Method::POST, "/api/sessions", Some(json!({"name": "s1"})))
        .await;
    assert_eq!(status, 201, "{body}");
    let lines = eventually(Duration::from_secs(20), "status lines", || async {
        let log = std::fs::read_to_string(&wharf.log).unwrap_or_default();
        let statuses: Vec<serde_json::Value> = log
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| {
                v["fields"]["message"] == "session status" && v["fields"]["session"] == "s1"
            })
            .collect();
        // STARTING, then FAILED (nothing answers at the WhatsApp URL) with a reason.
        if statuses.iter().any(|v| v["fields"]["status"] == "FAILED") {
            Ok((log, statuses))
        } else {
            Err(log)
        }
    })
    .await;
    let (log, statuses) = lines;
    assert_eq!(statuses[0]["fields"]["status"], "STARTING", "{log}");
    let failed = statuses
        .iter()
        .find(|v| v["fields"]["status"] == "FAILED")
        .expect("a FAILED line");
    assert!(failed["fields"]["reason"].is_string(), "{failed}");
    assert_eq!(failed["fields"]["previous"], "STARTING", "{failed}");
    assert!(
        log.contains("/metrics") && log.contains("Swagger UI") && log.contains("/-json"),
        "{log}"
    );
}
