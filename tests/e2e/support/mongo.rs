//! MongoDB for the tests: one server per test binary, a fresh namespace per test.
//!
//! Owns: the SecantusDB child process (a MongoDB wire-protocol server over WiredTiger, see
//! `../shared/reference/mongodb-for-tests.md`), started lazily on first use from
//! `MONGO_SERVER_BIN` (the path printed by `.ci/install-mongo.sh`) and living until the
//! test binary exits. `WHARF_TEST_MONGO_URL` points the tests at a real MongoDB instead.
//! With neither set, Mongo tests print `SKIPPED (no MongoDB)` and return, unless
//! `WHARF_REQUIRE_MONGO=1` (as in `compat-tests/python`): then they fail. `.ci/run` sets
//! both `MONGO_SERVER_BIN` and `WHARF_REQUIRE_MONGO=1`.
//!
//! Statics are never dropped, so the server is not killed by a destructor: it runs under a
//! tiny `sh` wrapper that reads its stdin, a pipe held by this process. When the test
//! binary ends — normally, by panic or by SIGKILL — the pipe closes, `read` sees EOF and
//! the wrapper SIGTERMs the server (which removes its `:memory:` data dir).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How long SecantusDB may take to print its `listening on` line (~0.5 s normally; the
/// shared 2-core CI box can be slow while cargo builds).
const START_DEADLINE: Duration = Duration::from_secs(60);

/// Runs the server in the background and SIGTERMs it when stdin reaches EOF.
/// `$0` is the server binary. The background job's stdin is /dev/null (POSIX, no job
/// control), so only the wrapper reads our pipe.
const WRAPPER: &str = r#"
"$0" --host 127.0.0.1 --port 0 --storage-path :memory: >/dev/null &
pid=$!
while read -r _; do :; done
kill -TERM "$pid" 2>/dev/null
wait "$pid"
"#;

/// A MongoDB the tests can use: a spawned SecantusDB or an external server.
pub struct MongoServer {
    /// `mongodb://127.0.0.1:PORT/` (or `WHARF_TEST_MONGO_URL`).
    url: String,
    /// The `sh` wrapper and the write end of its stdin (closing it stops the server).
    process: Mutex<Option<(Child, ChildStdin)>>,
    /// Per-process prefix of namespaces, so runs against a shared real MongoDB never
    /// collide.
    prefix: String,
    /// Next namespace number.
    next: AtomicU64,
}

static SHARED: OnceLock<Option<MongoServer>> = OnceLock::new();

impl MongoServer {
    /// The server shared by every test of this binary, started on first call; `None`
    /// (after a loud `SKIPPED` line naming `test`) when no MongoDB is configured.
    ///
    /// # Panics
    /// When `MONGO_SERVER_BIN` is set but the server does not start.
    pub fn shared(test: &str) -> Option<&'static MongoServer> {
        let server = SHARED.get_or_init(|| {
            if let Some(url) = env_nonempty("WHARF_TEST_MONGO_URL") {
                return Some(Self::external(url));
            }
            env_nonempty("MONGO_SERVER_BIN").map(|bin| Self::spawn(&bin))
        });
        if server.is_none() {
            skip_without_mongo(test);
        }
        server.as_ref()
    }

    /// A SecantusDB of the calling test's own (for tests that stop it or provision users
    /// on it), from `MONGO_SERVER_BIN`; `None` (skipped loudly, or a failure under
    /// `WHARF_REQUIRE_MONGO=1`) without it.
    ///
    /// # Panics
    /// When the server does not start, or none is configured and one is required.
    pub fn private(test: &str) -> Option<Self> {
        let Some(bin) = env_nonempty("MONGO_SERVER_BIN") else {
            skip_without_mongo(test);
            return None;
        };
        Some(Self::spawn(&bin))
    }

    /// Uses an already running MongoDB.
    pub fn external(url: String) -> Self {
        Self {
            url,
            process: Mutex::new(None),
            prefix: process_prefix(),
            next: AtomicU64::new(0),
        }
    }

    /// Starts a private SecantusDB from `bin` (`secantusd-py`) on a free port and waits
    /// for its `listening on 127.0.0.1:PORT` line.
    ///
    /// # Panics
    /// When the server cannot be spawned or does not announce its port in time.
    pub fn spawn(bin: &str) -> Self {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg(bin)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {bin} through sh: {e}"));
        let stdin = child.stdin.take().expect("piped stdin");
        let stderr = child.stderr.take().expect("piped stderr");

        // The reader thread outlives start-up: it keeps draining the server's log so a
        // full pipe never blocks the server.
        let (tx, rx) = mpsc::channel::<Result<u16, String>>();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            let mut seen = Vec::new();
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(sender) = &tx {
                    if let Some(port) = parse_port(&line) {
                        let _ = sender.send(Ok(port));
                        tx = None;
                    } else if seen.len() < 50 {
                        seen.push(line);
                    }
                }
            }
            if let Some(sender) = tx {
                let _ = sender.send(Err(seen.join("\n")));
            }
        });
        let port = match rx.recv_timeout(START_DEADLINE) {
            Ok(Ok(port)) => port,
            Ok(Err(log)) => panic!("{bin} exited before listening:\n{log}"),
            Err(e) => panic!("{bin} did not print `listening on` within {START_DEADLINE:?}: {e}"),
        };
        Self {
            url: format!("mongodb://127.0.0.1:{port}/"),
            process: Mutex::new(Some((child, stdin))),
            prefix: process_prefix(),
            next: AtomicU64::new(0),
        }
    }

    /// Connection string of the server.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// A namespace no other test (of this run or a concurrent one) uses, e.g. `t1a2b3c_4`;
    /// short enough for MongoDB's 63-byte database names (`waha_{ns}_{session}`).
    pub fn unique_namespace(&self) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        format!("{}_{n}", self.prefix)
    }

    /// Stops a spawned server and waits for it to exit (no-op for an external one).
    pub fn stop(&self) {
        let taken = self
            .process
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some((mut child, stdin)) = taken {
            drop(stdin); // EOF: the wrapper SIGTERMs the server and waits for it
            let _ = child.wait();
        }
    }
}

impl Drop for MongoServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Drops every database of namespace `ns` (`waha_{ns}` and `waha_{ns}_*`); keeps a real,
/// shared MongoDB clean after a passing test.
pub async fn drop_namespace(client: &mongodb::Client, ns: &str) {
    let main = format!("waha_{ns}");
    let per_session = format!("waha_{ns}_");
    let Ok(names) = client.list_database_names().await else {
        return;
    };
    for name in names {
        if name == main || name.starts_with(&per_session) {
            let _ = client.database(&name).drop().await;
        }
    }
}

/// `... INFO secantus.server: secantus listening on 127.0.0.1:PORT` → PORT.
fn parse_port(line: &str) -> Option<u16> {
    let (_, addr) = line.split_once("listening on ")?;
    let (_, port) = addr.trim().rsplit_once(':')?;
    port.parse().ok()
}

/// Says loudly that `test` skips its MongoDB case, or fails it under
/// `WHARF_REQUIRE_MONGO=1` (CI, where a missing server is a setup error).
fn skip_without_mongo(test: &str) {
    let hint =
        "set MONGO_SERVER_BIN (path printed by .ci/install-mongo.sh) or WHARF_TEST_MONGO_URL";
    assert!(
        std::env::var("WHARF_REQUIRE_MONGO").as_deref() != Ok("1"),
        "{test}: no MongoDB configured but WHARF_REQUIRE_MONGO=1: {hint}"
    );
    // Straight to the process's stderr: libtest captures `eprintln!`, and a skipped
    // backend must be visible even when the test passes.
    let _ = writeln!(
        std::io::stderr().lock(),
        "{test}: SKIPPED (no MongoDB): {hint}"
    );
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn process_prefix() -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mix = (u64::from(std::process::id()) << 20) ^ u64::from(nanos);
    format!("t{:06x}", mix & 0xff_ffff)
}
