//! The MongoDB backend (`WHATSAPP_SESSIONS_MONGO_URL`).
//!
//! Owns: the process's single [`mongodb::Client`] (one connection pool shared by the main
//! store, every session's database and the engine's device stores — never a client per
//! session), the main database `waha_{WAHA_NAMESPACE}`, and the one set of helpers every
//! concern uses: error classification *with* credential redaction ([`Redactor`]),
//! duplicate-key detection, upsert-with-retry, and an index memo and per-session append
//! locks that forget a session when it is deleted. Built once by [`super::Store::mongo`] at
//! boot; clones share everything; lives for the whole process.
//!
//! One file per concern: [`sessions`] (the main store, WAHA's collections), [`messages`]
//! (`messages`, `chats`), [`outbox`] (`outbox`, `counters`) and [`groups`] (`groups`, the
//! group cache) in the session database
//! `waha_{WAHA_SESSION_NAMESPACE}_{session}`. The engine's `wa_*` collections live in the
//! same database ([`super::DeviceLocation::Mongo`]) and its store reuses
//! [`is_duplicate_key`] and [`is_unreachable`].
//!
//! Error messages never carry the connection URL's credentials: every driver message is
//! passed through [`Redactor`] before it leaves this module.

pub mod cluster;
pub mod contacts;
pub mod dump;
pub mod groups;
pub mod keys;
pub mod labels;
pub mod messages;
pub mod outbox;
pub mod sessions;

use std::collections::HashMap;
use std::sync::{Arc, Mutex as StdMutex};
use std::time::{Duration, Instant};

use mongodb::bson::Document;
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::event::{EventHandler, command::CommandEvent};
use mongodb::options::ClientOptions;
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Error, Namespaces, Result};
use crate::model::name::SessionName;

/// How long an operation waits for a usable server before failing (driver default: 30 s).
/// Applied only when the URL does not set `serverSelectionTimeoutMS` itself.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP connect timeout (driver default: 10 s), unless the URL sets `connectTimeoutMS`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `/health` must answer quickly while the database is down, so `ping` gives up well before
/// the server-selection timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// MongoDB's duplicate-key error code (E11000).
pub const DUPLICATE_KEY: i32 = 11000;

/// Index creation conflicts with an existing index of the same keys or name
/// (`IndexOptionsConflict`, `IndexKeySpecsConflict`): an index created by WAHA or an
/// operator; logged and kept rather than failing.
const INDEX_CONFLICTS: [i32; 2] = [85, 86];

/// How often a writer re-checks a session's indexes even without a delete in this process:
/// another instance may have dropped the database, and `createIndexes` is idempotent.
const INDEX_RECHECK: Duration = Duration::from_secs(600);

/// MongoDB store: one shared client, WAHA's main database, per-session databases.
///
/// Cheap to clone ([`Client`] and [`Database`] are handles, the memos are [`Arc`]s).
#[derive(Clone)]
pub struct MongoStore {
    /// The one client (and pool) of the process.
    client: Client,
    /// `waha_{WAHA_NAMESPACE}`.
    main: Database,
    /// Database naming.
    ns: Namespaces,
    /// Strips the URL's credentials from error messages.
    redactor: Redactor,
    /// Per-session memos; forgotten when the session's database is dropped.
    memo: Arc<SessionMemo>,
}

/// What this process remembers per session: which indexes it ensured (and when), and the
/// lock that orders outbox appends.
#[derive(Default)]
struct SessionMemo {
    /// (session, concern) → when its indexes were last ensured.
    indexed: StdMutex<HashMap<(String, &'static str), Instant>>,
    /// session → lock around (allocate seq, insert) of the outbox.
    append_locks: StdMutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl SessionMemo {
    fn forget(&self, session: &str) {
        self.indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|(s, _), _| s != session);
        self.append_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(session);
    }
}

impl MongoStore {
    /// Connects to `url` and creates WAHA's indexes on the main database (idempotent).
    ///
    /// Unless the URL says otherwise, server selection and TCP connect time out after 5 s.
    ///
    /// # Errors
    /// [`Error::Backend`] for an invalid URL, [`Error::Unavailable`] when the server cannot
    /// be reached; messages never contain the URL's password.
    pub async fn connect(url: &str, ns: Namespaces) -> Result<Self> {
        let redactor = Redactor::new(url);
        let mut opts = ClientOptions::parse(url)
            .await
            .map_err(|e| redactor.parse_error(&e))?;
        opts.server_selection_timeout
            .get_or_insert(SERVER_SELECTION_TIMEOUT);
        opts.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
        opts.app_name.get_or_insert_with(|| "wharf".to_owned());
        // Every command is a round trip: `/metrics` counts them by name
        // (`wharf_mongo_commands_total`), which is how issue 16 measures and cuts them.
        opts.command_event_handler = Some(EventHandler::callback(|event: CommandEvent| {
            if let CommandEvent::Started(started) = event {
                crate::metrics::global()
                    .mongo_command(&started.command_name, command_collection(&started.command));
            }
        }));
        let client = Client::with_options(opts).map_err(|e| redactor.error(&e))?;
        let main = client.database(&ns.main_db());
        let store = Self {
            client,
            main,
            ns,
            redactor,
            memo: Arc::default(),
        };
        store.create_indexes().await?;
        store.sweep_deletes().await?;
        Ok(store)
    }

    /// Database naming in use.
    pub fn namespaces(&self) -> &Namespaces {
        &self.ns
    }

    /// The per-session database `waha_{WAHA_SESSION_NAMESPACE}_{session}` (a handle; the
    /// server creates it on first write). Dropped by `delete_session`/`drop_session_data`.
    fn session_db(&self, session: &SessionName) -> Database {
        self.client.database(&self.ns.session_db(session))
    }

    /// One session's handle (see [`super::Store::session`]).
    pub(super) fn session(&self, name: &SessionName) -> MongoSession {
        MongoSession {
            db: self.session_db(name),
            store: self.clone(),
            name: name.clone(),
        }
    }

    /// Forgets every memo of `session` (its database was dropped): indexes are ensured
    /// again on the next write.
    fn forget(&self, session: &str) {
        self.memo.forget(session);
    }

    /// Maps a driver error, redacting the URL's credentials.
    fn err(&self, e: &mongodb::error::Error) -> Error {
        self.redactor.error(e)
    }

    /// `replaceOne(filter, replacement, {upsert: true})`, as WAHA writes all its documents.
    ///
    /// Two concurrent upserts of a new key can both miss and insert; the unique index then
    /// fails one with E11000. Servers since 4.2 retry that internally, older ones do not, so
    /// it is retried once here (the second attempt finds the document and replaces it).
    async fn replace_upsert(
        &self,
        coll: &Collection<Document>,
        filter: Document,
        replacement: Document,
    ) -> Result<()> {
        let mut retried = false;
        loop {
            match coll
                .replace_one(filter.clone(), &replacement)
                .upsert(true)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if !retried && is_duplicate_key(&e) => retried = true,
                Err(e) => return Err(self.err(&e)),
            }
        }
    }

    /// Creates `models` on `coll`, keeping (and logging) a conflicting existing index.
    async fn create_indexes_keeping(
        &self,
        coll: &Collection<Document>,
        models: Vec<IndexModel>,
    ) -> Result<()> {
        match coll.create_indexes(models).await {
            Ok(_) => Ok(()),
            Err(e) if command_code(&e).is_some_and(|c| INDEX_CONFLICTS.contains(&c)) => {
                tracing::warn!(
                    collection = coll.name(),
                    error = %self.redactor.apply(&e.to_string()),
                    "mongodb: keeping an existing, different index"
                );
                Ok(())
            }
            Err(e) => Err(self.err(&e)),
        }
    }
}

/// One session's database. Cheap to clone.
#[derive(Clone)]
pub struct MongoSession {
    store: MongoStore,
    name: SessionName,
    db: Database,
}

impl MongoSession {
    /// `waha_{WAHA_SESSION_NAMESPACE}_{session}`.
    pub fn db(&self) -> &Database {
        &self.db
    }

    fn coll(&self, name: &str) -> Collection<Document> {
        self.db.collection(name)
    }

    fn err(&self, e: &mongodb::error::Error) -> Error {
        self.store.err(e)
    }

    /// One page of `collection` (every list route: chats, groups, contacts): `filter`,
    /// `sort`, then `offset` and `limit` (`None` = all).
    async fn find_page(
        &self,
        collection: &str,
        filter: Document,
        sort: Document,
        offset: u32,
        limit: Option<u32>,
    ) -> Result<Vec<Document>> {
        use futures_util::TryStreamExt as _;
        let coll = self.coll(collection);
        let mut find = coll.find(filter).sort(sort).skip(u64::from(offset));
        if let Some(l) = limit {
            find = find.limit(i64::from(l));
        }
        find.await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))
    }

    /// Ensures `concern`'s indexes once per process (and every [`INDEX_RECHECK`]), and
    /// again after the session was deleted (the memo forgets it).
    async fn ensure_indexes(
        &self,
        concern: &'static str,
        wanted: Vec<(Collection<Document>, Vec<IndexModel>)>,
    ) -> Result<()> {
        let key = (self.name.as_str().to_owned(), concern);
        let fresh = self
            .store
            .memo
            .indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .is_some_and(|at| at.elapsed() < INDEX_RECHECK);
        if fresh {
            return Ok(());
        }
        for (coll, models) in wanted {
            self.store.create_indexes_keeping(&coll, models).await?;
        }
        self.store
            .memo
            .indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, Instant::now());
        Ok(())
    }

    /// The lock ordering this session's outbox appends.
    fn append_lock(&self) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self
            .store
            .memo
            .append_locks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(self.name.as_str().to_owned()).or_default())
    }
}

impl MongoStore {
    /// Whether this process holds any memo of `session` (index or append lock): none after
    /// the session was deleted. For tests of the memo-forgets-on-delete guarantee.
    pub(super) fn remembers(&self, session: &str) -> bool {
        let indexed = self
            .memo
            .indexed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .keys()
            .any(|(s, _)| s == session);
        indexed
            || self
                .memo
                .append_locks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .contains_key(session)
    }
}

/// The collection a command names: the value of its first field for the collection
/// commands (`find`, `update`, `insert`, `createIndexes`, …), the `collection` field of a
/// `getMore`; `None` for database commands (`hello`, `ping`, `aggregate: 1`).
fn command_collection(command: &Document) -> Option<&str> {
    let (name, value) = command.iter().next()?;
    if name == "getMore" {
        return command.get_str("collection").ok();
    }
    value.as_str()
}

/// The server error code of a failed command or write, if any.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "ErrorKind is #[non_exhaustive]; only server replies carry a code"
)]
fn command_code(e: &mongodb::error::Error) -> Option<i32> {
    match e.kind.as_ref() {
        ErrorKind::Command(c) => Some(c.code),
        ErrorKind::Write(WriteFailure::WriteError(w)) => Some(w.code),
        ErrorKind::Write(WriteFailure::WriteConcernError(w)) => Some(w.code),
        _ => None,
    }
}

/// An insert (or upsert) lost to an existing key (E11000).
pub fn is_duplicate_key(e: &mongodb::error::Error) -> bool {
    command_code(e) == Some(DUPLICATE_KEY)
}

/// The server could not be reached or talked to (as opposed to a reply saying no).
pub fn is_unreachable(e: &mongodb::error::Error) -> bool {
    matches!(
        e.kind.as_ref(),
        ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Authentication { .. }
            | ErrorKind::Shutdown
    )
}

/// A numeric BSON value as i64 (documents written by others may use any numeric type).
fn bson_i64(b: &mongodb::bson::Bson) -> Option<i64> {
    use mongodb::bson::Bson;
    if let Bson::Int32(v) = b {
        Some(i64::from(*v))
    } else if let Bson::Int64(v) = b {
        Some(*v)
    } else if let Bson::Double(v) = b {
        // Saturating cast: the numbers we store are integral.
        Some(*v as i64)
    } else {
        None
    }
}

/// Removes the connection URL's credentials from messages (the driver's errors may echo
/// the URL or parts of it, e.g. on a parse error).
#[derive(Clone, Debug)]
struct Redactor {
    /// Strings to hide, longest first so the URL is replaced before its parts.
    secrets: Vec<String>,
}

impl Redactor {
    fn new(url: &str) -> Self {
        let mut secrets = Vec::new();
        if let Some((_, rest)) = url.split_once("://") {
            // Userinfo ends at the last `@`. Searching the whole rest (not just the
            // authority) copes with an unescaped `/` or `@` in the password; at worst it
            // hides more than needed.
            if let Some((userinfo, _)) = rest.rsplit_once('@')
                && let Some((_, password)) = userinfo.split_once(':')
                && !password.is_empty()
            {
                secrets.push(url.to_owned());
                secrets.push(userinfo.to_owned());
                secrets.push(password.to_owned());
                secrets.push(percent_decode(password));
            }
        }
        secrets.retain(|s| !s.is_empty());
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        secrets.dedup();
        Self { secrets }
    }

    fn apply(&self, msg: &str) -> String {
        let mut out = msg.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), "***");
            }
        }
        out
    }

    /// Maps a failure to parse the URL (or resolve a `mongodb+srv` seed list): a malformed
    /// URL is a configuration error, anything else (DNS) "unavailable".
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "ErrorKind is #[non_exhaustive]; only an invalid argument is the URL's fault"
    )]
    fn parse_error(&self, e: &mongodb::error::Error) -> Error {
        let msg = self.apply(&e.to_string());
        match e.kind.as_ref() {
            ErrorKind::InvalidArgument { .. } => {
                Error::Backend(format!("invalid MongoDB URL: {msg}"))
            }
            _ => Error::Unavailable(format!("mongodb: {msg}")),
        }
    }

    /// Maps a driver error: no server / network / auth trouble is "unavailable", undecodable
    /// data is "corrupt", the rest "backend".
    fn error(&self, e: &mongodb::error::Error) -> Error {
        let msg = self.apply(&e.to_string());
        if is_unreachable(e) {
            Error::Unavailable(format!("mongodb: {msg}"))
        } else if matches!(e.kind.as_ref(), ErrorKind::BsonDeserialization(_)) {
            Error::Corrupt(format!("mongodb: {msg}"))
        } else {
            Error::Backend(format!("mongodb: {msg}"))
        }
    }
}

/// Minimal `%XX` decoding for the password as the driver sees it.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(b) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}
