//! The main store on SQLite: WAHA's tables in `{base}/{WAHA_NAMESPACE}/waha.sqlite3`.
//!
//! Owns: the schema and row encoding of `session_config`, `me`, `session_worker` and
//! `api_key`, and the lifetime of the per-session folders (created with the session,
//! removed with it, together with every cached connection into it). Implements
//! [`StoreBackend`] for [`SqliteStore`]; called through [`crate::store::Store`].
//!
//! The layout and schema are WAHA's (`../shared/reference/waha.md` §7.2, WAHA's
//! `src/core/storage/sql/schemas.ts`): knex key/value tables whose `data` column holds the
//! JSON of the whole entity, so a `.sessions` folder written by WAHA is read as is and WAHA
//! can read ours. Tables are created with `CREATE TABLE IF NOT EXISTS` for that reason.
//!
//! One serialised connection: the main DB is tiny and touched rarely (session
//! create/update/delete, boot), and it makes the per-session folder operations atomic with
//! the rows they belong to (an insert cannot interleave with a delete of the same name).

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};
use serde::{Deserialize, Serialize};

use super::{SqliteStore, create_dir, is_duplicate_key, remove_dir_if_exists, sql_err};
use crate::model::name::{self, SessionName};
use crate::model::session::{MeInfo, SessionConfig};
use crate::store::{Error, Result, SessionRecord, StoreBackend};

/// WAHA's main-DB tables (`schemas.ts`), verbatim column names and constraints.
/// `api_key` rows are written by `keys.rs`.
pub(super) const SCHEMA: &str = r#"
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
CREATE TABLE IF NOT EXISTS wharf_deleting (id TEXT PRIMARY KEY);
"#;

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
    /// `raw` as a [`SessionName`] (WAHA's pattern, not empty, WAHA's length cap): the last
    /// line of defence before a name becomes a folder (`delete_session("..")` must never
    /// remove the wrong tree).
    fn name(raw: &str) -> Result<SessionName> {
        SessionName::parse(raw, name::max_len(None))
            .map_err(|_| Error::Backend(format!("invalid session name {raw:?}")))
    }
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
    sessions_dir: &Path,
    record: &SessionRecord,
    sql: &str,
) -> Result<()> {
    let data = encode_config(&record.name, &record.config)?;
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    match tx.execute(sql, params![record.name, data]) {
        Ok(_) => {}
        Err(e) if is_duplicate_key(&e) => {
            return Err(Error::AlreadyExists(record.name.clone()));
        }
        Err(e) => return Err(sql_err(e)),
    }
    // A delete of this name a crash left half-done: its folder goes before a namesake
    // could inherit its device keys.
    if tx
        .execute("DELETE FROM wharf_deleting WHERE id = ?1", [&record.name])
        .map_err(sql_err)?
        > 0
    {
        remove_dir_if_exists(&sessions_dir.join(&record.name))?;
    }
    create_dir(&sessions_dir.join(&record.name))?;
    tx.commit().map_err(sql_err)
}

/// The session's rows in the main database (config, `me`, worker, api keys).
fn delete_rows(conn: &Connection, name: &str) -> Result<()> {
    for sql in [
        "DELETE FROM session_config WHERE id = ?1",
        "DELETE FROM me WHERE id = ?1",
        "DELETE FROM session_worker WHERE id = ?1",
        "DELETE FROM api_key WHERE session = ?1",
    ] {
        conn.execute(sql, [name]).map_err(sql_err)?;
    }
    Ok(())
}

/// Finishes every delete a crash interrupted (at open, before anything else runs).
pub(super) fn sweep_deletes(conn: &mut Connection, sessions_dir: &Path) -> Result<()> {
    let names: Vec<String> = {
        let mut stmt = conn
            .prepare("SELECT id FROM wharf_deleting")
            .map_err(sql_err)?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(sql_err)?;
        rows.collect::<rusqlite::Result<Vec<_>>>()
            .map_err(sql_err)?
    };
    for name in names {
        // Only names that are valid folder names were ever written here.
        if !name::problems(&name, usize::MAX).is_empty() {
            continue;
        }
        tracing::warn!(session = name, "finishing a delete interrupted by a crash");
        delete_rows(conn, &name)?;
        remove_dir_if_exists(&sessions_dir.join(&name))?;
        conn.execute("DELETE FROM wharf_deleting WHERE id = ?1", [&name])
            .map_err(sql_err)?;
    }
    Ok(())
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
        Self::name(&record.name)?;
        let record = record.clone();
        self.with_conn(move |conn, sessions_dir| {
            write_session(
                conn,
                sessions_dir,
                &record,
                "INSERT INTO session_config (id, data) VALUES (?1, ?2)",
            )
        })
        .await
    }

    async fn upsert_session(&self, record: &SessionRecord) -> Result<()> {
        Self::name(&record.name)?;
        let record = record.clone();
        self.with_conn(move |conn, sessions_dir| {
            write_session(
                conn,
                sessions_dir,
                &record,
                "INSERT INTO session_config (id, data) VALUES (?1, ?2) \
                 ON CONFLICT (id) DO UPDATE SET data = excluded.data",
            )
        })
        .await
    }

    async fn delete_session(&self, name: &str) -> Result<()> {
        let session = Self::name(name)?;
        let name = name.to_owned();
        self.with_conn(move |conn, sessions_dir| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            // The tombstone commits with the rows: a crash before the folder is gone is
            // finished at start-up (`sweep_deletes`) or by the next create of this name.
            tx.execute(
                "INSERT OR IGNORE INTO wharf_deleting (id) VALUES (?1)",
                [&name],
            )
            .map_err(sql_err)?;
            delete_rows(&tx, &name)?;
            tx.commit().map_err(sql_err)?;
            // Rows first: if removing the folder fails the caller retries the (idempotent)
            // delete, and a half-deleted session never shows up in the list.
            remove_dir_if_exists(&sessions_dir.join(&name))?;
            conn.execute("DELETE FROM wharf_deleting WHERE id = ?1", [&name])
                .map(drop)
                .map_err(sql_err)
        })
        .await?;
        // The folder is gone: close every connection into it, so nothing is served from or
        // written to the unlinked files and the slots do not outlive the session.
        self.forget(&session);
        Ok(())
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

    async fn list_me(&self) -> Result<std::collections::HashMap<String, MeInfo>> {
        self.with_conn(|conn, _| {
            let mut stmt = conn
                .prepare_cached("SELECT id, data FROM me WHERE data IS NOT NULL")
                .map_err(sql_err)?;
            let rows = stmt
                .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
                .map_err(sql_err)?;
            let mut out = std::collections::HashMap::new();
            for row in rows {
                let (name, data) = row.map_err(sql_err)?;
                let row = serde_json::from_str::<MeRowIn>(&data)
                    .map_err(|e| Error::Corrupt(format!("me {name:?}: {e}")))?;
                if let Some(me) = row.me {
                    out.insert(name, me);
                }
            }
            Ok(out)
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
        let session = Self::name(name)?;
        let name = name.to_owned();
        self.with_conn(move |conn, sessions_dir| {
            let dir = sessions_dir.join(&name);
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
        .await?;
        self.forget(&session);
        Ok(())
    }

    async fn orphans(&self) -> Result<Vec<String>> {
        self.with_conn(|conn, sessions_dir| {
            let known: std::collections::HashSet<String> = {
                let mut stmt = conn
                    .prepare("SELECT id FROM session_config UNION SELECT id FROM wharf_deleting")
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map([], |r| r.get::<_, String>(0))
                    .map_err(sql_err)?;
                rows.collect::<rusqlite::Result<_>>().map_err(sql_err)?
            };
            let entries = std::fs::read_dir(sessions_dir).map_err(|e| {
                Error::Unavailable(format!("cannot list {}: {e}", sessions_dir.display()))
            })?;
            let mut out = Vec::new();
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
                if !is_dir || known.contains(&name) || !name::problems(&name, usize::MAX).is_empty()
                {
                    continue;
                }
                // An empty folder holds nothing to lose.
                let has_files = std::fs::read_dir(entry.path())
                    .map(|mut d| d.next().is_some())
                    .unwrap_or(false);
                if has_files {
                    out.push(name);
                }
            }
            out.sort();
            Ok(out)
        })
        .await
    }

    async fn wipe_credentials(&self, name: &str) -> Result<()> {
        let dir = self.session_dir(&Self::name(name)?);
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
