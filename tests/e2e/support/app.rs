//! `TestApp`: the real wharf app on port 0, against a temp embedded store or MongoDB.
//!
//! Owns: one app instance (its task, stop token, temp dir) and raw HTTP helpers that
//! return status + headers + text + JSON. Each test builds its own; dropped at test end.

use std::{collections::BTreeMap, time::Duration};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{mongo::MongoServer, poll::eventually};

/// The admin key every `TestApp` uses.
pub const API_KEY: &str = "test-admin-key-0123456789abcdef";

/// Which store a test app runs on.
#[derive(Debug, Clone)]
pub enum StoreKind {
    /// SQLite under a temp dir.
    Embedded,
    /// MongoDB at `url`, main namespace `namespace`.
    Mongo {
        /// `mongodb://…`
        url: String,
        /// Unique per test.
        namespace: String,
    },
}

impl StoreKind {
    /// Both stores when MongoDB is available (loudly skipping it otherwise).
    pub fn all(test: &str) -> Vec<StoreKind> {
        let mut v = vec![StoreKind::Embedded];
        if let Some(server) = MongoServer::shared(test) {
            v.push(StoreKind::Mongo {
                url: server.url().to_string(),
                namespace: server.unique_namespace(),
            });
        }
        v
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Reply {
    /// Status code.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub text: String,
}

impl Reply {
    /// Body as JSON (panics with the text when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }
}

/// A running wharf.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The store it runs on.
    pub store: StoreKind,
    /// Temp dir of the embedded store (kept for restarts).
    pub dir: std::sync::Arc<tempfile::TempDir>,
    /// Extra env the app was built with.
    pub extra: BTreeMap<String, String>,
    stop: CancellationToken,
    task: Option<tokio::task::JoinHandle<wharf::sessions::ShutdownReport>>,
    client: reqwest::Client,
}

impl TestApp {
    /// Starts an app on `store` with a fresh temp dir.
    pub async fn spawn(store: StoreKind) -> TestApp {
        Self::spawn_with(store, &[]).await
    }

    /// Starts an app connected to the mock WhatsApp network, with test-short timers.
    pub async fn spawn_wa(
        store: StoreKind,
        net: &mockwa::MockNetwork,
        extra: &[(&str, &str)],
    ) -> TestApp {
        let url = net.ws_url();
        let mut all: Vec<(&str, &str)> = vec![
            ("WHARF_WA_URL", url.as_str()),
            ("WHARF_RESTART_BACKOFF_SECONDS", "0.2"),
            ("WHARF_CONNECT_TIMEOUT_SECONDS", "20"),
        ];
        all.extend_from_slice(extra);
        Self::spawn_with(store, &all).await
    }

    /// Creates and starts `name`, waits for its QR, scans it with the mock phone `phone`,
    /// and waits for `WORKING`. Returns the session JSON.
    pub async fn pair(&self, net: &mockwa::MockNetwork, name: &str, phone: &str) -> Value {
        self.pair_within(net, name, phone, Duration::from_secs(40))
            .await
    }

    /// [`Self::pair`] with an explicit deadline for reaching `WORKING`.
    pub async fn pair_within(
        &self,
        net: &mockwa::MockNetwork,
        name: &str,
        phone: &str,
        working_within: Duration,
    ) -> Value {
        let body = format!(r#"{{"name":"{name}"}}"#);
        let label = format!("Phone {phone}");
        self.pair_created_within(net, &body, name, (phone, &label), working_within)
            .await
    }

    /// Creates a session with `body` (so it can carry webhooks), then pairs it as
    /// [`TestApp::pair`] does.
    pub async fn pair_created(
        &self,
        net: &mockwa::MockNetwork,
        body: &str,
        name: &str,
        phone: &str,
    ) -> Value {
        // The mock phone is named after the session (the webhook tests read it back).
        self.pair_created_within(net, body, name, (phone, name), Duration::from_secs(40))
            .await
    }

    async fn pair_created_within(
        &self,
        net: &mockwa::MockNetwork,
        body: &str,
        name: &str,
        (phone, label): (&str, &str),
        working_within: Duration,
    ) -> Value {
        let r = self.post("/api/sessions", body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        // Generous: under the full suite's load a first connect can hit the 20 s connect
        // timeout (FAILED), and the session reaches the QR on its retry.
        self.wait_status(name, "SCAN_QR_CODE", Duration::from_secs(60))
            .await;
        let qr = self
            .get(&format!("/api/{name}/auth/qr?format=raw"))
            .await
            .json()["value"]
            .as_str()
            .expect("raw QR")
            .to_string();
        net.scan_qr(&qr, phone, label)
            .expect("mock phone scans the QR");
        self.wait_status(name, "WORKING", working_within).await
    }

    /// Starts an app with extra environment variables.
    pub async fn spawn_with(store: StoreKind, extra: &[(&str, &str)]) -> TestApp {
        let dir = std::sync::Arc::new(tempfile::tempdir().expect("tempdir"));
        let extra = extra
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        Self::start(store, dir, extra).await
    }

    async fn start(
        store: StoreKind,
        dir: std::sync::Arc<tempfile::TempDir>,
        extra: BTreeMap<String, String>,
    ) -> TestApp {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        vars.insert("PORT".into(), "0".into());
        vars.insert("WHARF_BIND_HOST".into(), "127.0.0.1".into());
        vars.insert("WAHA_API_KEY".into(), API_KEY.into());
        vars.insert(
            "WAHA_LOCAL_STORE_BASE_DIR".into(),
            dir.path().join("sessions").display().to_string(),
        );
        if let StoreKind::Mongo { url, namespace } = &store {
            vars.insert("WHATSAPP_SESSIONS_MONGO_URL".into(), url.clone());
            vars.insert("WAHA_NAMESPACE".into(), namespace.clone());
            vars.insert("WAHA_SESSION_NAMESPACE".into(), namespace.clone());
        }
        vars.extend(extra.clone());
        if std::env::var_os("TEST_LOG").is_some() {
            vars.insert("WAHA_LOG_LEVEL".into(), "debug".into());
        }
        let config = wharf::config::Config::from_vars(vars).expect("test config");
        if std::env::var_os("TEST_LOG").is_some() {
            wharf::telemetry::init(&config);
        }
        let app = wharf::app::App::build(config).await.expect("app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let stop = app.stop_token();
        let task = tokio::spawn(async move { app.run_until_stopped().await.expect("app runs") });
        TestApp {
            base,
            store,
            dir,
            extra,
            stop,
            task: Some(task),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                // Below the server's 5 s keep-alive, so a pooled connection is never reused
                // just as the server closes it (an `IncompleteMessage` flake under load).
                .pool_idle_timeout(Duration::from_secs(2))
                .build()
                .expect("client"),
        }
    }

    /// Graceful stop (like SIGTERM), waiting for the app to finish; what its session
    /// shutdown did (`None` when it was stopped before).
    pub async fn stop(&mut self) -> Option<wharf::sessions::ShutdownReport> {
        self.stop.cancel();
        let task = self.task.take()?;
        Some(
            tokio::time::timeout(Duration::from_secs(30), task)
                .await
                .expect("app stops in time")
                .expect("app task"),
        )
    }

    /// Stops this app and starts a new one on the same store and directory.
    pub async fn restart(self) -> TestApp {
        self.restart_after(|| ()).await.0
    }

    /// Stops this app, runs `between` (e.g. to take a lock on its files, held as long as
    /// the returned value lives) and starts a new one on the same store and directory.
    pub async fn restart_after<T>(mut self, between: impl FnOnce() -> T) -> (TestApp, T) {
        self.stop().await;
        let held = between();
        let app = Self::start(self.store.clone(), self.dir.clone(), self.extra.clone()).await;
        (app, held)
    }

    /// Any request; `key` = `Some(k)` sends `X-Api-Key: k`.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&str>,
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(k) = key {
            req = req.header("X-Api-Key", k);
        }
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let res = req.send().await.expect("request sent");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        Reply {
            status,
            headers,
            text,
        }
    }

    /// GET with the admin key.
    pub async fn get(&self, path: &str) -> Reply {
        self.request(reqwest::Method::GET, path, Some(API_KEY), None)
            .await
    }
    /// POST JSON with the admin key.
    pub async fn post(&self, path: &str, body: &str) -> Reply {
        self.request(reqwest::Method::POST, path, Some(API_KEY), Some(body))
            .await
    }
    /// PUT JSON with the admin key.
    pub async fn put(&self, path: &str, body: &str) -> Reply {
        self.request(reqwest::Method::PUT, path, Some(API_KEY), Some(body))
            .await
    }
    /// DELETE with the admin key.
    pub async fn delete(&self, path: &str) -> Reply {
        self.request(reqwest::Method::DELETE, path, Some(API_KEY), None)
            .await
    }

    /// Polls `GET /api/sessions/{name}` until `status` or the deadline.
    pub async fn wait_status(&self, name: &str, status: &str, deadline: Duration) -> Value {
        let path = format!("/api/sessions/{name}");
        eventually(
            deadline,
            &format!("session {name} reaches {status}"),
            || async {
                let json = self.get(&path).await.json();
                if json["status"] == status {
                    Ok(json)
                } else {
                    Err(json.to_string())
                }
            },
        )
        .await
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
