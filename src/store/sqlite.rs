//! The embedded SQLite backend (the default, like WAHA's "local" store).
//!
//! Owns: the main database `{base}/{WAHA_NAMESPACE}/waha.sqlite3` and the per-session
//! folders `{base}/{WAHA_SESSION_NAMESPACE}/{session}/`. Built once by
//! [`super::Store::sqlite`] at boot and cloned into every component; lives for the whole
//! process.
//!
//! The layout and schema are WAHA's (`../shared/reference/waha.md` §7.2, WAHA's
//! `src/core/storage/sql/schemas.ts`): knex key/value tables whose `data` column holds the
//! JSON of the whole entity, so a `.sessions` folder written by WAHA is read as is and WAHA
//! can read ours. Tables are created with `CREATE TABLE IF NOT EXISTS` for that reason.
//!
//! rusqlite is blocking: every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]) over one connection behind a mutex. The main DB is
//! tiny and touched rarely (session create/update/delete, boot), so one serialised
//! connection is plenty, and it makes the per-session folder operations atomic with the
//! rows they belong to (an insert cannot interleave with a delete of the same name).
//! The mutex is tokio's, taken *before* entering the blocking pool: callers queue as
//! futures instead of parking one blocking thread each.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

use super::{Error, Namespaces, Result, SessionRecord, StoreBackend};
use crate::sessions::config::{MeInfo, SessionConfig};

/// File name of the main database inside `{base}/{namespace}/` (WAHA's name).
const MAIN_DB_FILE: &str = "waha.sqlite3";

/// WAHA opens its knex SQLite with `busy_timeout = 5000` ms; another process (e.g. a WAHA
/// or wharf instance sharing the folder) holding the write lock is waited for, not failed.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// WAHA's main-DB tables (`schemas.ts`), verbatim column names and constraints.
/// `api_key` is created for layout compatibility; api keys are not stored by us yet.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS session_config (id TEXT PRIMARY KEY, data TEXT);
CREATE TABLE IF NOT EXISTS me (id TEXT PRIMARY KEY, data TEXT);
CREATE TABLE IF NOT EXISTS session_worker (id TEXT UNIQUE, worker TEXT, data TEXT);
CREATE TABLE IF NOT EXISTS api_key (
    id TEXT PRIMARY KEY,
    "key" TEXT UNIQUE,
    "isActive" INTEGER,
    session TEXT,
    data TEXT
);
"#;

/// SQLite store: one connection to the main DB plus the per-session folders.
///
/// Cheap to clone (an [`Arc`]).
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

/// The state shared by all clones.
struct Inner {
    /// The one connection to `waha.sqlite3`; the guard is moved into the blocking task.
    conn: Arc<Mutex<Connection>>,
    /// `{base}/{WAHA_SESSION_NAMESPACE}`: parent of the per-session folders.
    sessions_dir: PathBuf,
    /// `{base}/{WAHA_NAMESPACE}/waha.sqlite3`.
    db_path: PathBuf,
}

/// `session_config.data`: WAHA's `{"id": name, "config": SessionConfig | null}`.
#[derive(Serialize)]
struct ConfigRowOut<'a> {
    id: &'a str,
    config: &'a Option<SessionConfig>,
}

/// Reading side of `session_config.data`; unknown keys are ignored, a missing `config`
/// is `None` (WAHA writes `null` for a session created without config).
#[derive(Deserialize)]
struct ConfigRowIn {
    #[serde(default)]
    config: Option<SessionConfig>,
}

/// `me.data`: WAHA's `{"id": name, "me": MeInfo}`.
#[derive(Serialize)]
struct MeRowOut<'a> {
    id: &'a str,
    me: &'a MeInfo,
}

/// Reading side of `me.data`.
#[derive(Deserialize)]
struct MeRowIn {
    #[serde(default)]
    me: Option<MeInfo>,
}

/// `session_worker.data`: WAHA's `{"id": name, "worker": worker}`.
#[derive(Serialize)]
struct WorkerRowOut<'a> {
    id: &'a str,
    worker: &'a str,
}

impl SqliteStore {
    /// Opens (creating if needed) `{base_dir}/{ns.main}/waha.sqlite3` in WAL mode with
    /// WAHA's tables, and the `{base_dir}/{ns.session}` folder.
    ///
    /// # Errors
    /// [`Error::Unavailable`] when the folders or the database cannot be created or opened.
    pub async fn open(base_dir: &Path, ns: Namespaces) -> Result<Self> {
        check_namespace(&ns.main)?;
        check_namespace(&ns.session)?;
        let main_dir = base_dir.join(&ns.main);
        let sessions_dir = base_dir.join(&ns.session);
        let db_path = main_dir.join(MAIN_DB_FILE);
        let path = db_path.clone();
        let conn = blocking(move || {
            std::fs::create_dir_all(&main_dir).map_err(|e| io_err("create", &main_dir, &e))?;
            std::fs::create_dir_all(&sessions_dir)
                .map_err(|e| io_err("create", &sessions_dir, &e))?;
            let conn = Connection::open(&path)
                .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
            init_connection(&conn).map_err(sql_err)?;
            Ok((conn, sessions_dir))
        })
        .await?;
        let (conn, sessions_dir) = conn;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Arc::new(Mutex::new(conn)),
                sessions_dir,
                db_path,
            }),
        })
    }

    /// Path of the main database file (`{base}/{WAHA_NAMESPACE}/waha.sqlite3`).
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// The per-session folder `{base}/{WAHA_SESSION_NAMESPACE}/{session}` where engine
    /// code keeps a session's credentials and data. Not created here.
    ///
    /// # Errors
    /// [`Error::Backend`] when `session` is not a safe single path component.
    pub fn session_dir(&self, session: &str) -> Result<PathBuf> {
        check_name(session)?;
        Ok(self.inner.sessions_dir.join(session))
    }

    /// Runs `f` with the connection on the blocking pool.
    ///
    /// # Cancel safety
    /// Dropping the future before the lock is taken does nothing; after that, `f` still
    /// runs to completion on the blocking pool (a write is never half-done) and the lock is
    /// released when it ends.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Inner) -> Result<T> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.inner.conn).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        blocking(move || f(&mut conn, &inner)).await
    }
}

/// Applies WAHA's connection settings and creates the tables.
fn init_connection(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // `journal_mode` answers with the resulting mode; WAL persists in the file.
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "sqlite: WAL journal mode not available");
    }
    conn.execute_batch(SCHEMA)
}

/// Runs blocking work on tokio's blocking pool.
async fn blocking<T, F>(f: F) -> Result<T>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Backend(format!("sqlite task failed: {e}")))?
}

/// Rejects session names that are not one safe path component, before any filesystem
/// access. The API allows only `[a-zA-Z0-9_-]`; this is the last line of defence against
/// `delete_session("..")` removing the wrong tree. Names starting with the main DB's file
/// name are refused too: with both namespaces equal (WAHA's default) the session folder
/// would be `waha.sqlite3` itself or its `-wal`/`-shm` companions.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name == "."
        || name.contains("..")
        || name.contains(['/', '\\', '\0'])
        || name.starts_with(MAIN_DB_FILE)
    {
        return Err(Error::Backend(format!("invalid session name {name:?}")));
    }
    Ok(())
}

/// Namespaces become folder names too.
fn check_namespace(ns: &str) -> Result<()> {
    check_name(ns).map_err(|_| Error::Backend(format!("invalid namespace {ns:?}")))
}

/// Maps a rusqlite error: lock/IO/open failures are "unavailable", the rest "backend".
fn sql_err(e: rusqlite::Error) -> Error {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::DatabaseBusy
            | ErrorCode::DatabaseLocked
            | ErrorCode::CannotOpen
            | ErrorCode::SystemIoFailure
            | ErrorCode::DiskFull
            | ErrorCode::ReadOnly
            | ErrorCode::PermissionDenied,
        ) => Error::Unavailable(format!("sqlite: {e}")),
        _ => Error::Backend(format!("sqlite: {e}")),
    }
}

/// Maps a filesystem error on a per-session path.
fn io_err(op: &str, path: &Path, e: &io::Error) -> Error {
    Error::Unavailable(format!("cannot {op} {}: {e}", path.display()))
}

/// `remove_dir_all` that treats "already gone" as success (deletes are idempotent).
fn remove_dir_if_exists(path: &Path) -> Result<()> {
    match std::fs::remove_dir_all(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err("remove", path, &e)),
    }
}

fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| io_err("create", path, &e))
}

fn encode_config(name: &str, config: &Option<SessionConfig>) -> Result<String> {
    serde_json::to_string(&ConfigRowOut { id: name, config })
        .map_err(|e| Error::Backend(format!("cannot encode config of {name:?}: {e}")))
}

fn decode_config(name: String, data: Option<String>) -> Result<SessionRecord> {
    let config = match data {
        // A row without data is what a bare knex insert would leave: no config.
        None => None,
        Some(data) => {
            serde_json::from_str::<ConfigRowIn>(&data)
                .map_err(|e| Error::Corrupt(format!("session_config {name:?}: {e}")))?
                .config
        }
    };
    Ok(SessionRecord { name, config })
}

/// Insert-or-replace of a session row plus its folder, in one transaction so a failed
/// folder creation leaves no row behind.
fn write_session(
    conn: &mut Connection,
    inner: &Inner,
    record: &SessionRecord,
    sql: &str,
) -> Result<()> {
    let data = encode_config(&record.name, &record.config)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    match tx.execute(sql, params![record.name, data]) {
        Ok(_) => {}
        Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
            return Err(Error::AlreadyExists(record.name.clone()));
        }
        Err(e) => return Err(sql_err(e)),
    }
    create_dir(&inner.sessions_dir.join(&record.name))?;
    tx.commit().map_err(sql_err)
}

impl StoreBackend for SqliteStore {
    async fn ping(&self) -> Result<()> {
        self.with_conn(|conn, _| conn.query_row("SELECT 1", [], |_| Ok(())).map_err(sql_err))
            .await
    }

    async fn list_sessions(&self) -> Result<Vec<SessionRecord>> {
        self.with_conn(|conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT id, data FROM session_config ORDER BY id")
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([], |r| {
                    Ok((r.get::<_, String>(0)?, r.get::<_, Option<String>>(1)?))
                })
                .map_err(sql_err)?;
            let mut out = Vec::new();
            for row in rows {
                let (name, data) = row.map_err(sql_err)?;
                out.push(decode_config(name, data)?);
            }
            Ok(out)
        })
        .await
    }

    async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let data = conn
                .query_row(
                    "SELECT data FROM session_config WHERE id = ?1",
                    [&name],
                    |r| r.get::<_, Option<String>>(0),
                )
                .optional()
                .map_err(sql_err)?;
            data.map(|data| decode_config(name, data)).transpose()
        })
        .await
    }

    async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        check_name(&record.name)?;
        let record = record.clone();
        self.with_conn(move |conn, inner| {
            write_session(
                conn,
                inner,
                &record,
                "INSERT INTO session_config (id, data) VALUES (?1, ?2)",
            )
        })
        .await
    }

    async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        check_name(&record.name)?;
        let record = record.clone();
        self.with_conn(move |conn, inner| {
            write_session(
                conn,
                inner,
                &record,
                "INSERT INTO session_config (id, data) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )
        })
        .await
    }

    async fn delete_session(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let name = name.to_owned();
        self.with_conn(move |conn, inner| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            for sql in [
                "DELETE FROM session_config WHERE id = ?1",
                "DELETE FROM me WHERE id = ?1",
                "DELETE FROM session_worker WHERE id = ?1",
                "DELETE FROM api_key WHERE session = ?1",
            ] {
                tx.execute(sql, [&name]).map_err(sql_err)?;
            }
            tx.commit().map_err(sql_err)?;
            // Rows first: if removing the folder fails the caller retries the (idempotent)
            // delete, and a half-deleted session never shows up in the list.
            remove_dir_if_exists(&inner.sessions_dir.join(&name))
        })
        .await
    }

    async fn get_me(&self, name: &str) -> Result<Option<MeInfo>> {
        let name = name.to_owned();
        self.with_conn(move |conn, _| {
            let data = conn
                .query_row("SELECT data FROM me WHERE id = ?1", [&name], |r| {
                    r.get::<_, Option<String>>(0)
                })
                .optional()
                .map_err(sql_err)?
                .flatten();
            let Some(data) = data else { return Ok(None) };
            serde_json::from_str::<MeRowIn>(&data)
                .map(|row| row.me)
                .map_err(|e| Error::Corrupt(format!("me {name:?}: {e}")))
        })
        .await
    }

    async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()> {
        let name = name.to_owned();
        let data = me
            .map(|me| serde_json::to_string(&MeRowOut { id: &name, me }))
            .transpose()
            .map_err(|e| Error::Backend(format!("cannot encode me of {name:?}: {e}")))?;
        self.with_conn(move |conn, _| {
            let res = match data {
                Some(data) => conn.execute(
                    "INSERT INTO me (id, data) VALUES (?1, ?2) \
                     ON CONFLICT (id) DO UPDATE SET data = excluded.data",
                    params![name, data],
                ),
                // WAHA removes the row on logout rather than storing `null`.
                None => conn.execute("DELETE FROM me WHERE id = ?1", [&name]),
            };
            res.map(drop).map_err(sql_err)
        })
        .await
    }

    async fn assign_worker(&self, name: &str, worker: &str) -> Result<()> {
        let (name, worker) = (name.to_owned(), worker.to_owned());
        self.with_conn(move |conn, _| {
            let data = serde_json::to_string(&WorkerRowOut {
                id: &name,
                worker: &worker,
            })
            .map_err(|e| Error::Backend(format!("cannot encode worker row: {e}")))?;
            conn.execute(
                "INSERT INTO session_worker (id, worker, data) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO UPDATE SET worker = excluded.worker, data = excluded.data",
                params![name, worker, data],
            )
            .map(drop)
            .map_err(sql_err)
        })
        .await
    }

    async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()> {
        let (name, worker) = (name.to_owned(), worker.to_owned());
        self.with_conn(move |conn, _| {
            conn.execute(
                "DELETE FROM session_worker WHERE id = ?1 AND worker = ?2",
                params![name, worker],
            )
            .map(drop)
            .map_err(sql_err)
        })
        .await
    }

    async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>> {
        let worker = worker.to_owned();
        self.with_conn(move |conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT id FROM session_worker WHERE worker = ?1 ORDER BY id")
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([&worker], |r| r.get::<_, String>(0))
                .map_err(sql_err)?;
            rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
        })
        .await
    }

    async fn drop_session_data(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let name = name.to_owned();
        self.with_conn(move |conn, inner| {
            let dir = inner.sessions_dir.join(&name);
            remove_dir_if_exists(&dir)?;
            // Recreate the (now empty) folder only for a stored session, so a stray call
            // does not leave folders of unknown sessions behind.
            let exists = conn
                .query_row(
                    "SELECT 1 FROM session_config WHERE id = ?1",
                    [&name],
                    |_| Ok(()),
                )
                .optional()
                .map_err(sql_err)?
                .is_some();
            if exists { create_dir(&dir) } else { Ok(()) }
        })
        .await
    }

    async fn wipe_credentials(&self, name: &str) -> Result<()> {
        let dir = self.session_dir(name)?;
        tokio::task::spawn_blocking(move || -> Result<()> {
            let entries = match std::fs::read_dir(&dir) {
                Ok(e) => e,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                Err(e) => {
                    return Err(Error::Backend(format!(
                        "cannot list {}: {e}",
                        dir.display()
                    )));
                }
            };
            for entry in entries.flatten() {
                // whatsapp.db, whatsapp.db-wal, whatsapp.db-shm: the engine's key store.
                if entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with("whatsapp.db")
                {
                    std::fs::remove_file(entry.path()).map_err(|e| {
                        Error::Backend(format!("cannot remove {}: {e}", entry.path().display()))
                    })?;
                }
            }
            Ok(())
        })
        .await
        .map_err(|e| Error::Backend(e.to_string()))?
    }
}
