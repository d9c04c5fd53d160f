//! The MongoDB backend (`WHATSAPP_SESSIONS_MONGO_URL`).
//!
//! Owns: the process's single [`mongodb::Client`] (one connection pool shared by the main
//! store and every session's database — never a client per session), the main database
//! `waha_{WAHA_NAMESPACE}` and the lifetime of the per-session databases
//! `waha_{WAHA_SESSION_NAMESPACE}_{session}`. Built once by [`super::Store::mongo`] at
//! boot; clones share the client; lives for the whole process.
//!
//! Collections and document shapes are WAHA's (`../shared/reference/waha.md` §7.3), so a
//! WAHA Mongo deployment is picked up as is:
//! * `sessions`: `{...SessionConfig, name}`, written like WAHA's
//!   `MongoSessionConfigRepository` (`replaceOne({name}, {...config, name}, {upsert})`);
//!   a document holding only `name` is a session without config. Consequence of the flat
//!   shape (WAHA has it too): `Some(SessionConfig::default())`, an empty config, is stored
//!   as that same document and reads back as `None` (SQLite keeps the two apart);
//! * `me`: `{session, me}`;
//! * `session_worker`: `{id, worker}`;
//! * `api_key`: indexes only for now (unique `id`, unique `key`, `session`).
//!
//! Error messages never carry the connection URL's credentials: every driver message is
//! passed through [`Redactor`] before it leaves this module.

use std::time::Duration;

use futures_util::TryStreamExt;
use mongodb::bson::{self, Bson, Document, doc};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions};
use mongodb::{Client, Collection, Database, IndexModel};

use super::{Error, Namespaces, Result, SessionRecord, StoreBackend};
use crate::sessions::config::{MeInfo, SessionConfig};

/// How long an operation waits for a usable server before failing (driver default: 30 s).
/// Applied only when the URL does not set `serverSelectionTimeoutMS` itself.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);

/// TCP connect timeout (driver default: 10 s), unless the URL sets `connectTimeoutMS`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `/health` must answer quickly while the database is down, so `ping` gives up well before
/// the server-selection timeout.
const PING_TIMEOUT: Duration = Duration::from_secs(2);

/// MongoDB's duplicate-key error code (E11000).
const DUPLICATE_KEY: i32 = 11000;

/// Index creation conflicts with an existing index of the same keys or name
/// (`IndexOptionsConflict`, `IndexKeySpecsConflict`): an index created by WAHA or an
/// operator; logged and kept rather than failing boot.
const INDEX_CONFLICTS: [i32; 2] = [85, 86];

/// MongoDB store: one shared client, WAHA's main database and per-session databases.
///
/// Cheap to clone ([`Client`] and [`Database`] are handles).
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
        let client = Client::with_options(opts).map_err(|e| redactor.error(&e))?;
        let main = client.database(&ns.main_db());
        let store = Self {
            client,
            main,
            ns,
            redactor,
        };
        store.create_indexes().await?;
        Ok(store)
    }

    /// The process-wide client, for engine code that needs its own collections.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The per-session database `waha_{WAHA_SESSION_NAMESPACE}_{session}` (a handle; the
    /// server creates it on first write). Dropped by `delete_session`/`drop_session_data`.
    pub fn session_db(&self, session: &str) -> Database {
        self.client.database(&self.ns.session_db(session))
    }

    fn sessions(&self) -> Collection<Document> {
        self.main.collection("sessions")
    }

    fn me(&self) -> Collection<Document> {
        self.main.collection("me")
    }

    fn workers(&self) -> Collection<Document> {
        self.main.collection("session_worker")
    }

    fn api_keys(&self) -> Collection<Document> {
        self.main.collection("api_key")
    }

    /// WAHA's indexes. `unique name` on `sessions` is what makes `insert_session` atomic.
    async fn create_indexes(&self) -> Result<()> {
        let unique = |keys: Document| {
            IndexModel::builder()
                .keys(keys)
                .options(IndexOptions::builder().unique(true).build())
                .build()
        };
        let plain = |keys: Document| IndexModel::builder().keys(keys).build();
        let wanted = [
            (self.sessions(), unique(doc! { "name": 1 })),
            (self.me(), unique(doc! { "session": 1 })),
            (self.workers(), unique(doc! { "id": 1 })),
            (self.workers(), plain(doc! { "worker": 1 })),
            (self.api_keys(), unique(doc! { "id": 1 })),
            (self.api_keys(), unique(doc! { "key": 1 })),
            (self.api_keys(), plain(doc! { "session": 1 })),
        ];
        for (coll, model) in wanted {
            let keys = model.keys.clone();
            match coll.create_index(model).await {
                Ok(_) => {}
                Err(e) if INDEX_CONFLICTS.iter().any(|c| command_code(&e) == Some(*c)) => {
                    tracing::warn!(
                        collection = coll.name(),
                        ?keys,
                        error = %self.redactor.apply(&e.to_string()),
                        "mongodb: keeping an existing, different index"
                    );
                }
                Err(e) => return Err(self.redactor.error(&e)),
            }
        }
        Ok(())
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
                Err(e) if !retried && command_code(&e) == Some(DUPLICATE_KEY) => retried = true,
                Err(e) => return Err(self.err(&e)),
            }
        }
    }

    fn err(&self, e: &mongodb::error::Error) -> Error {
        self.redactor.error(e)
    }
}

/// Names must be usable inside a database name (`waha_{ns}_{name}`): MongoDB forbids
/// `/\. "$*<>:|?` and NUL there. The API allows only `[a-zA-Z0-9_-]`; this guards the
/// calls that create or drop per-session data.
fn check_name(name: &str) -> Result<()> {
    const FORBIDDEN: [char; 11] = ['/', '\\', '.', ' ', '"', '$', '*', '<', '>', ':', '|'];
    if name.is_empty() || name.contains(FORBIDDEN) || name.contains(['?', '\0']) {
        return Err(Error::Backend(format!("invalid session name {name:?}")));
    }
    Ok(())
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

/// `sessions` document → record: WAHA reads it with `_id` and `name` projected away; what
/// is left is the config, and nothing left means "no config".
fn decode_session(mut d: Document) -> Result<SessionRecord> {
    let name = match d.remove("name") {
        Some(Bson::String(name)) => name,
        other => {
            return Err(Error::Corrupt(format!(
                "sessions document without a string name: {other:?}"
            )));
        }
    };
    d.remove("_id");
    let config = if d.is_empty() {
        None
    } else {
        Some(
            bson::from_document::<SessionConfig>(d)
                .map_err(|e| Error::Corrupt(format!("sessions {name:?}: {e}")))?,
        )
    };
    Ok(SessionRecord { name, config })
}

/// Record → `sessions` document `{...config, name}` (WAHA's spread order: name last).
fn encode_session(record: &SessionRecord) -> Result<Document> {
    let mut d = match &record.config {
        Some(config) => bson::to_document(config).map_err(|e| {
            Error::Backend(format!("cannot encode config of {:?}: {e}", record.name))
        })?,
        None => Document::new(),
    };
    // A config can never carry its own `name` (no such field), but make sure the key is ours.
    d.remove("name");
    d.insert("name", record.name.as_str());
    Ok(d)
}

impl StoreBackend for MongoStore {
    async fn ping(&self) -> Result<()> {
        match tokio::time::timeout(PING_TIMEOUT, self.main.run_command(doc! { "ping": 1 })).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(self.err(&e)),
            Err(_) => Err(Error::Unavailable(format!(
                "mongodb did not answer ping within {PING_TIMEOUT:?}"
            ))),
        }
    }

    async fn list_sessions(&self) -> Result<Vec<SessionRecord>> {
        let docs: Vec<Document> = self
            .sessions()
            .find(doc! {})
            .sort(doc! { "name": 1 })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = docs
            .into_iter()
            .map(decode_session)
            .collect::<Result<Vec<_>>>()?;
        // Same byte order as SQLite's `ORDER BY id` whatever the server's collation.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>> {
        self.sessions()
            .find_one(doc! { "name": name })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode_session)
            .transpose()
    }

    async fn insert_session(&self, record: &SessionRecord) -> Result<()> {
        check_name(&record.name)?;
        let d = encode_session(record)?;
        // Atomic through the unique `name` index: the loser of a race gets E11000.
        match self.sessions().insert_one(d).await {
            Ok(_) => Ok(()),
            Err(e) if command_code(&e) == Some(DUPLICATE_KEY) => {
                Err(Error::AlreadyExists(record.name.clone()))
            }
            Err(e) => Err(self.err(&e)),
        }
    }

    async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        check_name(&record.name)?;
        let d = encode_session(record)?;
        self.replace_upsert(&self.sessions(), doc! { "name": &record.name }, d)
            .await
    }

    async fn delete_session(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let res = async {
            self.sessions().delete_one(doc! { "name": name }).await?;
            self.me().delete_one(doc! { "session": name }).await?;
            self.workers().delete_one(doc! { "id": name }).await?;
            self.api_keys()
                .delete_many(doc! { "session": name })
                .await?;
            // Dropping a database that does not exist is a no-op: delete stays idempotent.
            self.session_db(name).drop().await
        }
        .await;
        res.map_err(|e| self.err(&e))
    }

    async fn get_me(&self, name: &str) -> Result<Option<MeInfo>> {
        let Some(mut d) = self
            .me()
            .find_one(doc! { "session": name })
            .await
            .map_err(|e| self.err(&e))?
        else {
            return Ok(None);
        };
        match d.remove("me") {
            None | Some(Bson::Null) => Ok(None),
            Some(me) => bson::from_bson::<MeInfo>(me)
                .map(Some)
                .map_err(|e| Error::Corrupt(format!("me {name:?}: {e}"))),
        }
    }

    async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()> {
        match me {
            Some(me) => {
                let me = bson::to_bson(me)
                    .map_err(|e| Error::Backend(format!("cannot encode me of {name:?}: {e}")))?;
                let d = doc! { "session": name, "me": me };
                self.replace_upsert(&self.me(), doc! { "session": name }, d)
                    .await
            }
            // Like the SQL backends: logout removes the document.
            None => self
                .me()
                .delete_one(doc! { "session": name })
                .await
                .map(drop)
                .map_err(|e| self.err(&e)),
        }
    }

    async fn assign_worker(&self, name: &str, worker: &str) -> Result<()> {
        let d = doc! { "id": name, "worker": worker };
        self.replace_upsert(&self.workers(), doc! { "id": name }, d)
            .await
    }

    async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()> {
        self.workers()
            .delete_one(doc! { "id": name, "worker": worker })
            .await
            .map(drop)
            .map_err(|e| self.err(&e))
    }

    async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>> {
        let docs: Vec<Document> = self
            .workers()
            .find(doc! { "worker": worker })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = docs
            .into_iter()
            .map(|d| match d.get("id") {
                Some(Bson::String(id)) => Ok(id.clone()),
                other => Err(Error::Corrupt(format!(
                    "session_worker document without a string id: {other:?}"
                ))),
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort();
        Ok(out)
    }

    async fn drop_session_data(&self, name: &str) -> Result<()> {
        check_name(name)?;
        self.session_db(name).drop().await.map_err(|e| self.err(&e))
    }

    async fn wipe_credentials(&self, name: &str) -> Result<()> {
        check_name(name)?;
        let db = self.session_db(name);
        let names = db.list_collection_names().await.map_err(|e| self.err(&e))?;
        // `wa_*` collections are the engine's key store (engine::mongo_store).
        for coll in names.into_iter().filter(|n| n.starts_with("wa_")) {
            db.collection::<mongodb::bson::Document>(&coll)
                .drop()
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
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
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "ErrorKind is #[non_exhaustive]; unlisted kinds are generic backend errors"
    )]
    fn error(&self, e: &mongodb::error::Error) -> Error {
        let msg = self.apply(&e.to_string());
        match e.kind.as_ref() {
            ErrorKind::ServerSelection { .. }
            | ErrorKind::Io(_)
            | ErrorKind::ConnectionPoolCleared { .. }
            | ErrorKind::DnsResolve { .. }
            | ErrorKind::Authentication { .. }
            | ErrorKind::Shutdown => Error::Unavailable(format!("mongodb: {msg}")),
            ErrorKind::BsonDeserialization(_) => Error::Corrupt(format!("mongodb: {msg}")),
            _ => Error::Backend(format!("mongodb: {msg}")),
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
