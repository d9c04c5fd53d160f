//! The embedded SQLite backend (the default, like WAHA's "local" store).
//!
//! Owns: the main database `{base}/{WAHA_NAMESPACE}/waha.sqlite3`, the per-session folders
//! `{base}/{WAHA_SESSION_NAMESPACE}/{session}/` and the one set of helpers every concern
//! uses: opening a database in WAL mode, error classification, duplicate-key detection, the
//! blocking-pool bridge and ONE bounded cache of per-session connections that forgets a
//! session when it is deleted. Built once by [`super::Store::sqlite`] at boot and cloned
//! into every component; lives for the whole process.
//!
//! One file per concern: [`sessions`] (the main store, WAHA's tables), [`messages`]
//! (`messages.sqlite3`), [`outbox`] (`events.sqlite3`) and [`groups`] (`groups.sqlite3`)
//! in the session folder. The
//! engine's `whatsapp.db` sits in the same folder ([`super::DeviceLocation::Sqlite`]).
//!
//! rusqlite is blocking: every call runs on tokio's blocking pool
//! ([`tokio::task::spawn_blocking`]). Each connection sits behind a tokio mutex taken
//! *before* entering the blocking pool, so callers queue as futures instead of parking one
//! blocking thread each.

pub mod contacts;
pub mod dump;
pub mod groups;
pub mod keys;
pub mod labels;
pub mod messages;
pub mod outbox;
pub mod sessions;

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode};
use tokio::sync::Mutex;

use super::{Error, Namespaces, Result};
use crate::model::name::SessionName;

/// File name of the main database inside `{base}/{namespace}/` (WAHA's name).
const MAIN_DB_FILE: &str = "waha.sqlite3";

/// WAHA opens its knex SQLite with `busy_timeout = 5000` ms; another process (e.g. a WAHA
/// or wharf instance sharing the folder) holding the write lock is waited for, not failed.
const BUSY_TIMEOUT: Duration = Duration::from_millis(5000);

/// Per-session connections kept open at most (all concerns together); the least recently
/// used one is closed beyond that. Each costs a file descriptor pair (db + WAL) and
/// SQLite's page cache: ≤ 0.03 descriptors per session at 10,000 sessions. 128 (was 48)
/// so that the outboxes of 100 sessions publishing at once (issue 16's webhook target)
/// stay open: with 48 every append, read and removal of a session reopened its file, and
/// each close checkpointed the WAL — 23 % more CPU per delivered event in
/// `benches/webhooks.rs` (debug build, 100 sessions).
const MAX_OPEN: usize = 128;

/// SQLite store: one connection to the main DB, the per-session folders and the cache of
/// per-session connections.
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
    /// Open per-session databases.
    cache: ConnCache,
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
        let (conn, sessions_dir) = blocking(move || {
            create_dir(&main_dir)?;
            create_dir(&sessions_dir)?;
            let conn = open_wal(&path, None)?;
            let mut conn = conn;
            conn.execute_batch(sessions::SCHEMA).map_err(sql_err)?;
            sessions::sweep_deletes(&mut conn, &sessions_dir)?;
            Ok((conn, sessions_dir))
        })
        .await?;
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Arc::new(Mutex::new(conn)),
                sessions_dir,
                db_path,
                cache: ConnCache::default(),
            }),
        })
    }

    /// Path of the main database file (`{base}/{WAHA_NAMESPACE}/waha.sqlite3`).
    pub fn db_path(&self) -> &Path {
        &self.inner.db_path
    }

    /// The per-session folder `{base}/{WAHA_SESSION_NAMESPACE}/{session}`. Not created here.
    pub fn session_dir(&self, session: &SessionName) -> PathBuf {
        self.inner.sessions_dir.join(session.as_str())
    }

    /// One session's handle (see [`super::Store::session`]).
    pub(super) fn session(&self, name: &SessionName) -> SqliteSession {
        SqliteSession {
            store: self.clone(),
            dir: self.session_dir(name),
            name: name.clone(),
        }
    }

    /// Closes every cached connection of `session` (its folder was removed).
    fn forget(&self, session: &str) {
        self.inner.cache.forget(session);
    }

    /// Runs `f` with the main connection on the blocking pool.
    ///
    /// # Cancel safety
    /// Dropping the future before the lock is taken does nothing; after that, `f` still
    /// runs to completion on the blocking pool (a write is never half-done) and the lock is
    /// released when it ends.
    async fn with_conn<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection, &Path) -> Result<T> + Send + 'static,
    {
        let mut conn = Arc::clone(&self.inner.conn).lock_owned().await;
        let inner = Arc::clone(&self.inner);
        blocking(move || f(&mut conn, &inner.sessions_dir)).await
    }
}

/// One session's databases in its folder. Cheap to clone.
#[derive(Clone)]
pub struct SqliteSession {
    store: SqliteStore,
    name: SessionName,
    dir: PathBuf,
}

impl SqliteSession {
    /// The session's folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on this session's `db` connection in the blocking pool. With
    /// `create = false` a session without that file answers `None` and no file is created
    /// (reads must not litter folders of sessions that never stored anything). Every call
    /// first checks that the file still exists: a session deleted (folder removed) and
    /// created again must never see, or write into, the unlinked old file.
    ///
    /// # Cancel safety
    /// Dropping the future before the lock is taken does nothing; after that `f` runs to
    /// completion (a transaction is never half-done).
    async fn with_conn<T, F>(&self, db: &'static SessionDb, create: bool, f: F) -> Result<Option<T>>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T> + Send + 'static,
    {
        let path = self.dir.join(db.file);
        let (slot, evicted) = self.store.inner.cache.slot(self.name.as_str(), db.file);
        let mut guard = slot.lock_owned().await;
        blocking(move || {
            // The evicted connection (if this was its last user) closes here, on the
            // blocking pool, before this call's own work.
            drop(evicted);
            if !path.exists() {
                *guard = None;
                if !create {
                    return Ok(None);
                }
            }
            if guard.is_none() {
                if let Some(dir) = path.parent() {
                    create_dir(dir)?;
                }
                let conn = open_wal(&path, Some(db.synchronous))?;
                conn.execute_batch(db.schema).map_err(sql_err)?;
                *guard = Some(conn);
            }
            match guard.as_mut() {
                Some(conn) => f(conn).map(Some),
                None => Err(Error::Backend("sqlite: connection not open".into())),
            }
        })
        .await
    }
}

/// A per-session database file: its name, schema and durability.
struct SessionDb {
    /// File name inside the session folder.
    file: &'static str,
    /// `CREATE … IF NOT EXISTS` statements run on open.
    schema: &'static str,
    /// `PRAGMA synchronous` value (on top of WAL).
    synchronous: &'static str,
}

/// A session's connection slot: `None` until first opened (or after its file vanished).
type Slot = Arc<Mutex<Option<Connection>>>;

/// The bounded LRU cache of per-session connections, keyed by (session, file).
#[derive(Default)]
struct ConnCache {
    inner: StdMutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// (session, file) → (slot, last use tick).
    slots: HashMap<(String, &'static str), (Slot, u64)>,
    /// Monotonic use counter for LRU eviction.
    tick: u64,
}

impl ConnCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The slot of (`session`, `file`), inserted (evicting the least recently used) if
    /// needed; with the evicted slot, which the caller must drop on the blocking pool.
    fn slot(&self, session: &str, file: &'static str) -> (Slot, Option<Slot>) {
        let mut cache = self.lock();
        cache.tick += 1;
        let tick = cache.tick;
        let key = (session.to_owned(), file);
        if let Some((slot, used)) = cache.slots.get_mut(&key) {
            *used = tick;
            return (Arc::clone(slot), None);
        }
        let mut evicted = None;
        if cache.slots.len() >= MAX_OPEN
            && let Some(oldest) = cache
                .slots
                .iter()
                .min_by_key(|(_, (_, used))| *used)
                .map(|(key, _)| key.clone())
        {
            // A call still holding the evicted slot finishes on it; the connection closes
            // when the last Arc goes. Not here: closing a WAL database checkpoints it
            // (page writes and an fsync), which must not run under this process-wide lock
            // nor on an async worker (issue 16: 100 sessions' outboxes cycling through
            // this cache stalled every session's storage behind one close).
            evicted = cache.slots.remove(&oldest).map(|(slot, _)| slot);
        }
        let slot: Slot = Arc::new(Mutex::new(None));
        cache.slots.insert(key, (Arc::clone(&slot), tick));
        (slot, evicted)
    }

    /// Drops every slot of `session`.
    fn forget(&self, session: &str) {
        self.lock().slots.retain(|(s, _), _| s != session);
    }

    /// How many connections are cached for `session` (tests of the forget guarantee).
    fn open_for(&self, session: &str) -> usize {
        self.lock()
            .slots
            .keys()
            .filter(|(s, _)| s == session)
            .count()
    }
}

impl SqliteStore {
    /// Number of per-session connection slots cached for `session`: 0 after the session
    /// was deleted. For tests of the cache-forgets-on-delete guarantee.
    pub(super) fn cached_connections(&self, session: &str) -> usize {
        self.inner.cache.open_for(session)
    }
}

/// Opens `path` with WAHA's busy timeout in WAL mode (which persists in the file), and
/// `PRAGMA synchronous = {synchronous}` when given.
fn open_wal(path: &Path, synchronous: Option<&str>) -> Result<Connection> {
    let conn = Connection::open(path)
        .map_err(|e| Error::Unavailable(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err)?;
    // `journal_mode` answers with the resulting mode.
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .map_err(sql_err)?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, path = %path.display(), "sqlite: WAL journal mode not available");
    }
    if let Some(level) = synchronous {
        conn.pragma_update(None, "synchronous", level)
            .map_err(sql_err)?;
    }
    Ok(conn)
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

/// Namespaces become folder names: one safe path component, and never the main DB's file
/// name (with both namespaces equal, WAHA's default, a session folder sits next to it).
fn check_namespace(ns: &str) -> Result<()> {
    if ns.is_empty()
        || ns == "."
        || ns.contains("..")
        || ns.contains(['/', '\\', '\0'])
        || ns.starts_with(MAIN_DB_FILE)
    {
        return Err(Error::Backend(format!("invalid namespace {ns:?}")));
    }
    Ok(())
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

/// A constraint violation: the insert hit an existing key.
fn is_duplicate_key(e: &rusqlite::Error) -> bool {
    e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation)
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
