//! The storage contract: everything wharf persists goes through [`Store`].
//!
//! Owns: the choice of backend (embedded SQLite under `WAHA_LOCAL_STORE_BASE_DIR`, or
//! MongoDB when `WHATSAPP_SESSIONS_MONGO_URL` is set) and the domain structs the rest of
//! the server reads and writes. Built once by `app::App::build`, cloned (cheaply) into
//! every component, lives for the whole process.
//!
//! Layout mirrors WAHA's so an existing WAHA database is picked up as is
//! (`../shared/reference/waha.md` §7):
//! * a *main* store per `WAHA_NAMESPACE`: session configs, `me`, worker assignment,
//!   api keys;
//! * one *per-session* store per `WAHA_SESSION_NAMESPACE` + session name: engine
//!   credentials, messages, outbox (later issues). Deleting a session drops it.
//!
//! The backends are an enum with static dispatch (qdrant's `Shard` pattern): no
//! `dyn`, no `async_trait`, no generic `App<S>`.

pub mod mongo;
pub mod sqlite;

use crate::sessions::config::{MeInfo, SessionConfig};

/// Errors of the storage layer. Carries data, never WAHA wording (that is `api/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An insert hit an existing key (e.g. creating a session twice).
    #[error("record already exists: {0}")]
    AlreadyExists(String),
    /// The backend could not be reached or answered with an error.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (a corrupt or foreign row).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else from the backend.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Result alias of the storage layer.
pub type Result<T> = std::result::Result<T, Error>;

/// A persisted session: its name (the id) and its WAHA `SessionConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Session name, validated by the API layer (`^[a-zA-Z0-9_-]*$`, ≤ 54 chars).
    pub name: String,
    /// The full `SessionConfig` as last saved (PUT replaces it whole); `None` = no config.
    pub config: Option<SessionConfig>,
}

/// Where the data lives: main database names and the per-session naming rule.
#[derive(Debug, Clone)]
pub struct Namespaces {
    /// `WAHA_NAMESPACE`, e.g. `gows` → Mongo database `waha_gows`, folder `.sessions/gows`.
    pub main: String,
    /// `WAHA_SESSION_NAMESPACE`, e.g. `gows` → `waha_gows_{session}`.
    pub session: String,
}

impl Namespaces {
    /// MongoDB database of the main store: `waha_{namespace}`.
    pub fn main_db(&self) -> String {
        format!("waha_{}", self.main)
    }
    /// MongoDB database of one session: `waha_{session_namespace}_{session}`.
    pub fn session_db(&self, session: &str) -> String {
        format!("waha_{}_{}", self.session, session)
    }
}

/// What every backend must do. Native `async fn` (no `async_trait`); called only through
/// [`Store`]'s static dispatch.
#[allow(async_fn_in_trait)]
pub trait StoreBackend {
    /// Cheap liveness probe for `/health`.
    async fn ping(&self) -> Result<()>;
    /// All stored sessions, ordered by name.
    async fn list_sessions(&self) -> Result<Vec<SessionRecord>>;
    /// One session, or `None`.
    async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>>;
    /// Insert a new session; [`Error::AlreadyExists`] when the name is taken (atomic).
    async fn insert_session(&self, record: &SessionRecord) -> Result<()>;
    /// Insert or fully replace a session's config.
    async fn upsert_session(&self, record: &SessionRecord) -> Result<()>;
    /// Remove the session's config, `me`, worker row and api keys bound to it, and drop its
    /// per-session database/folder. Idempotent.
    async fn delete_session(&self, name: &str) -> Result<()>;
    /// Stored account info of a session (set once the session is authenticated).
    async fn get_me(&self, name: &str) -> Result<Option<MeInfo>>;
    /// Save or clear (`None`) the account info of a session.
    async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()>;
    /// Mark the session as running on `worker` (WAHA's `session_worker`).
    async fn assign_worker(&self, name: &str, worker: &str) -> Result<()>;
    /// Remove the session's assignment to `worker` (only that worker's row).
    async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()>;
    /// Sessions assigned to `worker`, ordered by name — restored on boot.
    async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>>;
    /// Drop the per-session database/folder only, keeping config.
    async fn drop_session_data(&self, name: &str) -> Result<()>;
    /// Remove only the WhatsApp credentials of a session (logout, unlink): SQLite's
    /// `whatsapp.db*` files, MongoDB's `wa_*` collections. Messages and undelivered
    /// webhooks stay. Idempotent.
    async fn wipe_credentials(&self, name: &str) -> Result<()>;
}

/// The one backend in use.
#[derive(Clone)]
pub enum Backend {
    /// Embedded default: SQLite files under `WAHA_LOCAL_STORE_BASE_DIR`.
    Sqlite(sqlite::SqliteStore),
    /// `WHATSAPP_SESSIONS_MONGO_URL`: one shared client, database per session.
    Mongo(mongo::MongoStore),
}

/// Cheap-to-clone handle to the storage backend.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
}

macro_rules! dispatch {
    ($self:ident, $b:ident => $e:expr) => {
        match &$self.backend {
            Backend::Sqlite($b) => $e,
            Backend::Mongo($b) => $e,
        }
    };
}

impl Store {
    /// Opens the embedded store under `base_dir` (created if missing).
    ///
    /// # Errors
    /// When the folder or the main database cannot be created.
    pub async fn sqlite(base_dir: &std::path::Path, ns: Namespaces) -> Result<Self> {
        Ok(Self {
            backend: Backend::Sqlite(sqlite::SqliteStore::open(base_dir, ns).await?),
        })
    }

    /// Connects to MongoDB (one client, one pool for the process) and creates indexes.
    ///
    /// # Errors
    /// When the URL is invalid or the server cannot be reached.
    pub async fn mongo(url: &str, ns: Namespaces) -> Result<Self> {
        Ok(Self {
            backend: Backend::Mongo(mongo::MongoStore::connect(url, ns).await?),
        })
    }

    /// Short name of the backend for logs and `/health`: `sqlite` or `mongodb`.
    pub fn kind(&self) -> &'static str {
        match &self.backend {
            Backend::Sqlite(_) => "sqlite",
            Backend::Mongo(_) => "mongodb",
        }
    }

    /// The backend itself, for engine code that needs backend-specific handles.
    pub fn backend(&self) -> &Backend {
        &self.backend
    }

    /// See [`StoreBackend::ping`].
    pub async fn ping(&self) -> Result<()> {
        dispatch!(self, b => b.ping().await)
    }
    /// See [`StoreBackend::list_sessions`].
    pub async fn list_sessions(&self) -> Result<Vec<SessionRecord>> {
        dispatch!(self, b => b.list_sessions().await)
    }
    /// See [`StoreBackend::get_session`].
    pub async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>> {
        dispatch!(self, b => b.get_session(name).await)
    }
    /// See [`StoreBackend::insert_session`].
    pub async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        dispatch!(self, b => b.insert_session(record).await)
    }
    /// See [`StoreBackend::upsert_session`].
    pub async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        dispatch!(self, b => b.upsert_session(record).await)
    }
    /// See [`StoreBackend::delete_session`].
    pub async fn delete_session(&self, name: &str) -> Result<()> {
        dispatch!(self, b => b.delete_session(name).await)
    }
    /// See [`StoreBackend::get_me`].
    pub async fn get_me(&self, name: &str) -> Result<Option<MeInfo>> {
        dispatch!(self, b => b.get_me(name).await)
    }
    /// See [`StoreBackend::set_me`].
    pub async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()> {
        dispatch!(self, b => b.set_me(name, me).await)
    }
    /// See [`StoreBackend::assign_worker`].
    pub async fn assign_worker(&self, name: &str, worker: &str) -> Result<()> {
        dispatch!(self, b => b.assign_worker(name, worker).await)
    }
    /// See [`StoreBackend::unassign_worker`].
    pub async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()> {
        dispatch!(self, b => b.unassign_worker(name, worker).await)
    }
    /// See [`StoreBackend::sessions_of_worker`].
    pub async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>> {
        dispatch!(self, b => b.sessions_of_worker(worker).await)
    }
    /// See [`StoreBackend::drop_session_data`].
    pub async fn drop_session_data(&self, name: &str) -> Result<()> {
        dispatch!(self, b => b.drop_session_data(name).await)
    }
    /// See [`StoreBackend::wipe_credentials`].
    pub async fn wipe_credentials(&self, name: &str) -> Result<()> {
        dispatch!(self, b => b.wipe_credentials(name).await)
    }
}
