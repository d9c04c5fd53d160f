//! Storage: everything wharf persists goes through [`Store`].
//!
//! Owns: the choice of backend (embedded SQLite under `WAHA_LOCAL_STORE_BASE_DIR`, or
//! MongoDB when `WHATSAPP_SESSIONS_MONGO_URL` is set) and the per-session handle
//! [`SessionStore`] that message history, the webhook outbox and the engine's device keys
//! all come from. Built once by `app::App::build`, cloned (cheaply) into every component,
//! lives for the whole process.
//!
//! Layout mirrors WAHA's so an existing WAHA database is picked up as is
//! (`../shared/reference/waha.md` §7):
//! * a *main* store per `WAHA_NAMESPACE`: session configs, `me`, worker assignment,
//!   api keys;
//! * one *per-session* store per `WAHA_SESSION_NAMESPACE` + session name: engine
//!   credentials, messages, outbox, group cache. Deleting a session drops it and every cache of it.
//!
//! Code is organised by backend: [`contract`] states what each concern must do,
//! [`sqlite`] and [`mongo`] each hold one shared set of helpers (open, error mapping,
//! duplicate keys, caches that forget) and one file per concern. The backend is an enum
//! with static dispatch (qdrant's `Shard` pattern): no `dyn`, no `async_trait`, no generic
//! `App<S>`. [`Store::session`] is the only place that picks a backend for per-session data.

pub mod contract;
pub mod dump;
pub mod mongo;
pub mod sqlite;

use std::path::PathBuf;

pub use self::contract::{
    ApiKeyRecord, ChatQuery, ChatRow, ChatSortBy, ContactBackend, ContactPatch, ContactQuery,
    ContactRecord, ContactSortBy, DeadLetter, Error, GroupBackend, GroupQuery, GroupSortBy,
    KeyActions, KeyBackend, LabelBackend, LidPair, MessageBackend, MessageQuery, Namespaces,
    NewRow, OutboxBackend, Result, Retry, Row, SessionRecord, SortOrder, StoreBackend,
};
use crate::model::groups::Group;
use crate::model::message::WAMessage;
use crate::model::name::{self, SessionName};
use crate::model::session::MeInfo;

/// The one backend in use.
#[derive(Clone)]
enum Backend {
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
    ($on:expr, $enum:ident, $b:ident => $e:expr) => {
        match $on {
            $enum::Sqlite($b) => $e,
            $enum::Mongo($b) => $e,
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

    /// Longest session name this store can hold (see [`name::max_len`]): WAHA's 54, or
    /// less on MongoDB with a long `WAHA_SESSION_NAMESPACE`.
    pub fn name_max_len(&self) -> usize {
        match &self.backend {
            Backend::Sqlite(_) => name::max_len(None),
            Backend::Mongo(m) => name::max_len(Some(&m.namespaces().session)),
        }
    }

    /// Checks `raw` once, so it can become a folder or a database name.
    ///
    /// # Errors
    /// [`Error::Backend`] when it is empty, too long for this store or has characters
    /// outside `[a-zA-Z0-9_-]` (the API rejects those earlier, with WAHA's messages).
    pub fn session_name(&self, raw: &str) -> Result<SessionName> {
        SessionName::parse(raw, self.name_max_len())
            .map_err(|_| Error::Backend(format!("invalid session name {raw:?}")))
    }

    /// The per-session storage of `name`: its messages, its outbox and where the engine
    /// keeps its device keys. Cheap (handles and a path); nothing is opened or created
    /// until used.
    pub fn session(&self, name: &SessionName) -> SessionStore {
        let backend = match &self.backend {
            Backend::Sqlite(s) => SessionBackend::Sqlite(s.session(name)),
            Backend::Mongo(m) => SessionBackend::Mongo(m.session(name)),
        };
        SessionStore {
            name: name.clone(),
            backend,
        }
    }

    /// The cluster coordination collections (`WHARF_CLUSTER`): only on MongoDB.
    pub fn cluster(&self) -> Option<mongo::cluster::ClusterStore> {
        match &self.backend {
            Backend::Sqlite(_) => None,
            Backend::Mongo(m) => Some(mongo::cluster::ClusterStore::new(m.clone())),
        }
    }

    /// Whether this process holds any per-session cache of `session`: open SQLite
    /// connections, MongoDB index memos or outbox append locks. `false` once the session
    /// was deleted (or its data dropped) — the guarantee the contract tests pin.
    pub fn caches_session(&self, session: &str) -> bool {
        match &self.backend {
            Backend::Sqlite(s) => s.cached_connections(session) > 0,
            Backend::Mongo(m) => m.remembers(session),
        }
    }

    /// See [`KeyBackend::list_keys`].
    pub async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        dispatch!(&self.backend, Backend, b => b.list_keys().await)
    }

    /// See [`KeyBackend::get_key`].
    pub async fn get_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        dispatch!(&self.backend, Backend, b => b.get_key(id).await)
    }

    /// See [`KeyBackend::find_key`].
    pub async fn find_key(&self, stored: &str) -> Result<Option<ApiKeyRecord>> {
        dispatch!(&self.backend, Backend, b => b.find_key(stored).await)
    }

    /// See [`KeyBackend::insert_key`].
    pub async fn insert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.insert_key(record).await)
    }

    /// See [`KeyBackend::upsert_key`].
    pub async fn upsert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.upsert_key(record).await)
    }

    /// See [`KeyBackend::delete_key`].
    pub async fn delete_key(&self, id: &str) -> Result<bool> {
        dispatch!(&self.backend, Backend, b => b.delete_key(id).await)
    }

    /// See [`StoreBackend::ping`].
    pub async fn ping(&self) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.ping().await)
    }
    /// See [`StoreBackend::list_sessions`].
    pub async fn list_sessions(&self) -> Result<Vec<SessionRecord>> {
        dispatch!(&self.backend, Backend, b => b.list_sessions().await)
    }
    /// See [`StoreBackend::get_session`].
    pub async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>> {
        dispatch!(&self.backend, Backend, b => b.get_session(name).await)
    }
    /// See [`StoreBackend::insert_session`].
    pub async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.insert_session(record).await)
    }
    /// See [`StoreBackend::upsert_session`].
    pub async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.upsert_session(record).await)
    }
    /// See [`StoreBackend::delete_session`].
    pub async fn delete_session(&self, name: &str) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.delete_session(name).await)
    }
    /// See [`StoreBackend::get_me`].
    pub async fn get_me(&self, name: &str) -> Result<Option<MeInfo>> {
        dispatch!(&self.backend, Backend, b => b.get_me(name).await)
    }
    /// See [`StoreBackend::list_me`].
    pub async fn list_me(&self) -> Result<std::collections::HashMap<String, MeInfo>> {
        dispatch!(&self.backend, Backend, b => b.list_me().await)
    }
    /// See [`StoreBackend::set_me`].
    pub async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.set_me(name, me).await)
    }
    /// See [`StoreBackend::assign_worker`].
    pub async fn assign_worker(&self, name: &str, worker: &str) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.assign_worker(name, worker).await)
    }
    /// See [`StoreBackend::unassign_worker`].
    pub async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.unassign_worker(name, worker).await)
    }
    /// See [`StoreBackend::sessions_of_worker`].
    pub async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>> {
        dispatch!(&self.backend, Backend, b => b.sessions_of_worker(worker).await)
    }
    /// See [`StoreBackend::drop_session_data`].
    pub async fn drop_session_data(&self, name: &str) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.drop_session_data(name).await)
    }
    /// See [`StoreBackend::orphans`].
    pub async fn orphans(&self) -> Result<Vec<String>> {
        dispatch!(&self.backend, Backend, b => b.orphans().await)
    }
    /// See [`StoreBackend::wipe_credentials`].
    pub async fn wipe_credentials(&self, name: &str) -> Result<()> {
        dispatch!(&self.backend, Backend, b => b.wipe_credentials(name).await)
    }
}

/// Where one session's engine keeps its device keys: plain data, turned into a
/// whatsapp-rust storage backend by the engine (the only module naming its types).
#[derive(Debug, Clone)]
pub enum DeviceLocation {
    /// `whatsapp.db` inside the session's folder of the embedded store.
    Sqlite {
        /// `{base}/{session_namespace}/{session}`.
        dir: PathBuf,
    },
    /// Collections `wa_*` of the session's own database `waha_{ns}_{session}`.
    Mongo {
        /// The session database (a handle from the process-wide client).
        db: mongodb::Database,
    },
}

/// One session's backend handle.
#[derive(Clone)]
enum SessionBackend {
    Sqlite(sqlite::SqliteSession),
    Mongo(mongo::MongoSession),
}

/// One session's storage, from [`Store::session`]. Cheap to clone; lives as long as the
/// caller keeps it (usually one call).
#[derive(Clone)]
pub struct SessionStore {
    name: SessionName,
    backend: SessionBackend,
}

impl SessionStore {
    /// The session this handle belongs to.
    pub fn name(&self) -> &SessionName {
        &self.name
    }

    /// The session's message history.
    pub fn messages(&self) -> SessionMessages<'_> {
        SessionMessages(&self.backend)
    }

    /// The session's webhook outbox.
    pub fn outbox(&self) -> SessionOutbox<'_> {
        SessionOutbox(&self.backend)
    }

    /// The session's group cache.
    pub fn groups(&self) -> SessionGroups<'_> {
        SessionGroups(&self.backend)
    }

    /// The session's contacts and LID map.
    pub fn contacts(&self) -> SessionContacts<'_> {
        SessionContacts(&self.backend)
    }

    /// Every outbox row, pending and dead (see [`dump::DumpBackend::outbox_entries`]).
    pub async fn outbox_entries(&self) -> Result<Vec<dump::OutboxEntry>> {
        use dump::DumpBackend as _;
        dispatch!(&self.backend, SessionBackend, b => b.outbox_entries().await)
    }

    /// See [`dump::DumpBackend::restore_outbox`].
    pub async fn restore_outbox(&self, entries: &[dump::OutboxEntry]) -> Result<()> {
        use dump::DumpBackend as _;
        dispatch!(&self.backend, SessionBackend, b => b.restore_outbox(entries).await)
    }

    /// The session's labels.
    pub fn labels(&self) -> SessionLabels<'_> {
        SessionLabels(&self.backend)
    }

    /// Where the engine keeps the session's device keys.
    pub fn device(&self) -> DeviceLocation {
        match &self.backend {
            SessionBackend::Sqlite(s) => DeviceLocation::Sqlite {
                dir: s.dir().to_path_buf(),
            },
            SessionBackend::Mongo(m) => DeviceLocation::Mongo { db: m.db().clone() },
        }
    }
}

/// One session's message history (see [`MessageBackend`]).
pub struct SessionMessages<'a>(&'a SessionBackend);

impl SessionMessages<'_> {
    /// See [`MessageBackend::save`].
    pub async fn save(&self, msg: &WAMessage) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.save(msg).await)
    }
    /// See [`MessageBackend::set_chat_name`].
    pub async fn set_chat_name(&self, chat_id: &str, name: &str) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.set_chat_name(chat_id, name).await)
    }
    /// See [`MessageBackend::set_ack`].
    pub async fn set_ack(&self, wa_id: &str, ack: i32) -> Result<Option<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.set_ack(wa_id, ack).await)
    }
    /// See [`MessageBackend::get`].
    pub async fn get(&self, id: &str) -> Result<Option<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.get(id).await)
    }
    /// See [`MessageBackend::find_by_wa_id`].
    pub async fn find_by_wa_id(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.find_by_wa_id(wa_id).await)
    }
    /// See [`MessageBackend::edit`].
    pub async fn edit(&self, wa_id: &str, new_body: &str) -> Result<Option<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.edit(wa_id, new_body).await)
    }
    /// See [`MessageBackend::revoke`].
    pub async fn revoke(&self, wa_id: &str) -> Result<Option<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.revoke(wa_id).await)
    }
    /// See [`MessageBackend::list`].
    pub async fn list(&self, chat_id: &str, q: &MessageQuery) -> Result<Vec<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.list(chat_id, q).await)
    }
    /// See [`MessageBackend::chats`].
    pub async fn chats(&self, q: &ChatQuery) -> Result<Vec<ChatRow>> {
        dispatch!(self.0, SessionBackend, b => b.chats(q).await)
    }
    /// See [`MessageBackend::mark_read`].
    pub async fn mark_read(
        &self,
        chat_id: &str,
        limit: Option<u32>,
        since_unix_s: Option<i64>,
    ) -> Result<Vec<WAMessage>> {
        dispatch!(self.0, SessionBackend, b => b.mark_read(chat_id, limit, since_unix_s).await)
    }
    /// See [`MessageBackend::purge_older_than`].
    pub async fn purge_older_than(&self, cutoff_unix_s: i64) -> Result<u64> {
        dispatch!(self.0, SessionBackend, b => b.purge_older_than(cutoff_unix_s).await)
    }
    /// See [`MessageBackend::delete_chat_messages`].
    pub async fn delete_chat(&self, chat_id: &str, chat_too: bool) -> Result<u64> {
        dispatch!(self.0, SessionBackend, b => b.delete_chat_messages(chat_id, chat_too).await)
    }
}

/// One session's webhook outbox (see [`OutboxBackend`]).
pub struct SessionOutbox<'a>(&'a SessionBackend);

impl SessionOutbox<'_> {
    /// See [`OutboxBackend::append`].
    pub async fn append(&self, rows: Vec<NewRow>) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.append(rows).await)
    }
    /// See [`OutboxBackend::pending`].
    pub async fn pending(&self, url: &str, after: i64, limit: usize) -> Result<Option<Vec<Row>>> {
        dispatch!(self.0, SessionBackend, b => b.pending(url, after, limit).await)
    }
    /// See [`OutboxBackend::delivered`].
    pub async fn delivered(&self, seqs: Vec<i64>) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.delivered(seqs).await)
    }
    /// See [`OutboxBackend::failed`].
    pub async fn failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.failed(seq, attempts, next_attempt_ms, error, dead).await)
    }
    /// See [`OutboxBackend::pending_urls`].
    pub async fn pending_urls(&self) -> Result<Vec<String>> {
        dispatch!(self.0, SessionBackend, b => b.pending_urls().await)
    }
    /// See [`OutboxBackend::dead`].
    pub async fn dead(&self) -> Result<Vec<DeadLetter>> {
        dispatch!(self.0, SessionBackend, b => b.dead().await)
    }
    /// See [`OutboxBackend::replay`].
    pub async fn replay(&self, id: Option<i64>, now_ms: i64) -> Result<(u64, Vec<String>)> {
        dispatch!(self.0, SessionBackend, b => b.replay(id, now_ms).await)
    }
}

/// One session's group cache (see [`GroupBackend`]).
pub struct SessionGroups<'a>(&'a SessionBackend);

impl SessionGroups<'_> {
    /// See [`GroupBackend::upsert_groups`].
    pub async fn upsert(&self, groups: &[Group]) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.upsert_groups(groups).await)
    }
    /// See [`GroupBackend::replace_groups`].
    pub async fn replace(&self, groups: &[Group]) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.replace_groups(groups).await)
    }
    /// See [`GroupBackend::get_group`].
    pub async fn get(&self, id: &str) -> Result<Option<Group>> {
        dispatch!(self.0, SessionBackend, b => b.get_group(id).await)
    }
    /// See [`GroupBackend::list_groups`].
    pub async fn list(&self, q: &GroupQuery) -> Result<Vec<Group>> {
        dispatch!(self.0, SessionBackend, b => b.list_groups(q).await)
    }
    /// See [`GroupBackend::count_groups`].
    pub async fn count(&self) -> Result<u64> {
        dispatch!(self.0, SessionBackend, b => b.count_groups().await)
    }
    /// See [`GroupBackend::delete_group`].
    pub async fn delete(&self, id: &str) -> Result<bool> {
        dispatch!(self.0, SessionBackend, b => b.delete_group(id).await)
    }
}

/// One session's contacts and LID map (see [`ContactBackend`]).
pub struct SessionContacts<'a>(&'a SessionBackend);

impl SessionContacts<'_> {
    /// See [`ContactBackend::merge_contacts`].
    pub async fn merge(&self, patches: &[ContactPatch]) -> Result<()> {
        if patches.is_empty() {
            return Ok(());
        }
        dispatch!(self.0, SessionBackend, b => b.merge_contacts(patches).await)
    }
    /// See [`ContactBackend::get_contact`].
    pub async fn get(&self, id: &str) -> Result<Option<ContactRecord>> {
        dispatch!(self.0, SessionBackend, b => b.get_contact(id).await)
    }
    /// See [`ContactBackend::list_contacts`].
    pub async fn list(&self, q: &ContactQuery) -> Result<Vec<ContactRecord>> {
        dispatch!(self.0, SessionBackend, b => b.list_contacts(q).await)
    }
    /// See [`ContactBackend::upsert_lids`].
    pub async fn upsert_lids(&self, pairs: &[LidPair]) -> Result<()> {
        if pairs.is_empty() {
            return Ok(());
        }
        dispatch!(self.0, SessionBackend, b => b.upsert_lids(pairs).await)
    }
    /// See [`ContactBackend::lid_by_lid`].
    pub async fn lid_by_lid(&self, lid: &str) -> Result<Option<LidPair>> {
        dispatch!(self.0, SessionBackend, b => b.lid_by_lid(lid).await)
    }
    /// See [`ContactBackend::lid_by_pn`].
    pub async fn lid_by_pn(&self, pn: &str) -> Result<Option<LidPair>> {
        dispatch!(self.0, SessionBackend, b => b.lid_by_pn(pn).await)
    }
    /// See [`ContactBackend::list_lids`].
    pub async fn list_lids(&self, limit: Option<u32>, offset: u32) -> Result<Vec<LidPair>> {
        dispatch!(self.0, SessionBackend, b => b.list_lids(limit, offset).await)
    }
    /// See [`ContactBackend::count_lids`].
    pub async fn count_lids(&self) -> Result<u64> {
        dispatch!(self.0, SessionBackend, b => b.count_lids().await)
    }
}

/// One session's labels (see [`LabelBackend`]).
pub struct SessionLabels<'a>(&'a SessionBackend);

impl SessionLabels<'_> {
    /// See [`LabelBackend::upsert_label`].
    pub async fn upsert(&self, label: &crate::model::labels::Label) -> Result<()> {
        dispatch!(self.0, SessionBackend, b => b.upsert_label(label).await)
    }
    /// See [`LabelBackend::get_label`].
    pub async fn get(&self, id: &str) -> Result<Option<crate::model::labels::Label>> {
        dispatch!(self.0, SessionBackend, b => b.get_label(id).await)
    }
    /// See [`LabelBackend::list_labels`].
    pub async fn list(&self) -> Result<Vec<crate::model::labels::Label>> {
        dispatch!(self.0, SessionBackend, b => b.list_labels().await)
    }
    /// See [`LabelBackend::delete_label`].
    pub async fn delete(&self, id: &str) -> Result<bool> {
        dispatch!(self.0, SessionBackend, b => b.delete_label(id).await)
    }
    /// See [`LabelBackend::set_label_chat`].
    pub async fn set_chat(&self, label: &str, chat: &str, on: bool) -> Result<bool> {
        dispatch!(self.0, SessionBackend, b => b.set_label_chat(label, chat, on).await)
    }
    /// See [`LabelBackend::label_chats`].
    pub async fn chats_of(&self, label: &str) -> Result<Vec<String>> {
        dispatch!(self.0, SessionBackend, b => b.label_chats(label).await)
    }
    /// See [`LabelBackend::chat_labels`].
    pub async fn of_chat(&self, chat: &str) -> Result<Vec<String>> {
        dispatch!(self.0, SessionBackend, b => b.chat_labels(chat).await)
    }
}
