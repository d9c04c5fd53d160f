//! The real `wharf` binary as a child process, for what only a process shows: SIGKILL,
//! restarts, the log. Owns the child (killed on drop) and a small HTTP client.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

use serde_json::Value;

use super::poll::eventually;

/// The environment that points a process at `store` (nothing for the embedded one).
pub fn store_env(store: &super::app::StoreKind) -> Vec<(String, String)> {
    match store {
        super::app::StoreKind::Embedded => Vec::new(),
        super::app::StoreKind::Mongo { url, namespace } => vec![
            ("WHATSAPP_SESSIONS_MONGO_URL".into(), url.clone()),
            ("WAHA_NAMESPACE".into(), namespace.clone()),
            ("WAHA_SESSION_NAMESPACE".into(), namespace.clone()),
        ],
    }
}

/// A free loopback port (bound then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A running wharf process.
pub struct Wharf {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// Its stdout (the log).
    pub log: PathBuf,
    key: String,
    child: Child,
    client: reqwest::Client,
}

impl Wharf {
    /// Starts the binary in `dir` (its `.sessions` live there) on a free port with only
    /// `PATH`, `PORT`, `WAHA_API_KEY` and `env` set, and waits until it answers `/ping`.
    pub async fn start(dir: &Path, key: &str, env: &[(&str, &str)]) -> Wharf {
        let port = free_port();
        let log = dir.join(format!("out-{port}.log"));
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_wharf"));
        cmd.current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("PORT", port.to_string())
            .env("WAHA_API_KEY", key)
            .stdout(std::fs::File::create(&log).expect("log file"))
            .stderr(Stdio::null());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let wharf = Wharf {
            base: format!("http://127.0.0.1:{port}"),
            log,
            key: key.to_string(),
            child: cmd.spawn().expect("wharf starts"),
            client: reqwest::Client::new(),
        };
        eventually(Duration::from_secs(30), "wharf answers /ping", || async {
            match wharf.call(reqwest::Method::GET, "/ping", None).await {
                (200, _) => Ok(()),
                (status, body) => Err(format!("{status} {body}")),
            }
        })
        .await;
        wharf
    }

    /// A request with the key; `(0, Null)` when the connection fails.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.base))
            .header("X-Api-Key", &self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.json().await.unwrap_or_default()),
            Err(_) => (0, Value::Null),
        }
    }

    /// The `/metrics` text (with the key).
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.base))
            .header("X-Api-Key", &self.key)
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("metrics text")
    }

    /// Polls `GET /api/sessions/{name}` until `want` (panics after `secs`).
    pub async fn wait_status(&self, name: &str, want: &str, secs: u64) -> Value {
        let path = format!("/api/sessions/{name}");
        eventually(
            Duration::from_secs(secs),
            &format!("{name} reaches {want}"),
            || async {
                let (_, s) = self.call(reqwest::Method::GET, &path, None).await;
                if s["status"] == want {
                    Ok(s)
                } else {
                    Err(s.to_string())
                }
            },
        )
        .await
    }

    /// Creates `name` with `config`, scans its QR with the mock phone `phone`, waits WORKING.
    pub async fn pair(&self, net: &mockwa::MockNetwork, name: &str, phone: &str, config: Value) {
        let body = serde_json::json!({"name": name, "config": config});
        let (st, r) = self
            .call(reqwest::Method::POST, "/api/sessions", Some(body))
            .await;
        assert_eq!(st, 201, "{r}");
        self.wait_status(name, "SCAN_QR_CODE", 20).await;
        let (_, qr) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/{name}/auth/qr?format=raw"),
                None,
            )
            .await;
        net.scan_qr(qr["value"].as_str().expect("raw QR"), phone, name)
            .expect("scan");
        self.wait_status(name, "WORKING", 40).await;
    }

    /// Sends `signal` (`STOP`, `CONT`, `TERM`, …) with `kill(1)`.
    pub fn signal(&self, signal: &str) {
        let ok = Command::new("kill")
            .args([format!("-{signal}"), self.child.id().to_string()])
            .status()
            .expect("kill runs")
            .success();
        assert!(ok, "kill -{signal} {}", self.child.id());
    }

    /// The exit code once the process has exited (`Some(None)`: killed by a signal).
    pub fn exited(&mut self) -> Option<Option<i32>> {
        self.child.try_wait().expect("try_wait").map(|s| s.code())
    }

    /// SIGTERM, and waits (up to 30 s) for a graceful exit.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        self.kill();
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Wharf {
    fn drop(&mut self) {
        self.kill();
    }
}
