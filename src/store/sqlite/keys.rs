//! API keys on SQLite: WAHA's `api_key(id PK, "key" UNIQUE, "isActive", session, data)` in
//! the main database.
//!
//! Owns: the row encoding. `data` holds the whole entity as JSON (WAHA's knex layout:
//! `{id, key, isActive, isAdmin, session, actions}`), with `key` in the stored form
//! (`sha256:<hex>`), never the plaintext. Implements [`KeyBackend`] for [`SqliteStore`];
//! called through [`crate::store::Store`] by `crate::keys` (creation, lookups on every
//! request bearing a non-admin key). Stateless.

use rusqlite::{OptionalExtension, Row, params};
use serde::{Deserialize, Serialize};

use super::{SqliteStore, is_duplicate_key, sql_err};
use crate::store::{ApiKeyRecord, Error, KeyActions, KeyBackend, Result};

/// `api_key.data` (WAHA's `ApiKeyDTO` shape).
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Data {
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    actions: Option<KeyActions>,
    // Written for WAHA's readers; the columns are authoritative here.
    #[serde(default)]
    id: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    is_active: bool,
    #[serde(default)]
    session: Option<String>,
}

const COLUMNS: &str = r#"id, "key", "isActive", session, data"#;

fn decode(row: &Row<'_>) -> rusqlite::Result<(ApiKeyRecord, Option<String>)> {
    let record = ApiKeyRecord {
        id: row.get(0)?,
        key: row.get::<_, Option<String>>(1)?.unwrap_or_default(),
        is_active: row.get::<_, Option<i64>>(2)?.unwrap_or(0) != 0,
        is_admin: false,
        session: row.get(3)?,
        actions: None,
    };
    Ok((record, row.get(4)?))
}

fn finish((mut record, data): (ApiKeyRecord, Option<String>)) -> Result<ApiKeyRecord> {
    if let Some(data) = data {
        let data: Data = serde_json::from_str(&data)
            .map_err(|e| Error::Corrupt(format!("api_key {:?}: {e}", record.id)))?;
        record.is_admin = data.is_admin;
        record.actions = data.actions;
    }
    Ok(record)
}

fn encode(r: &ApiKeyRecord) -> Result<String> {
    serde_json::to_string(&Data {
        is_admin: r.is_admin,
        actions: r.actions,
        id: r.id.clone(),
        key: r.key.clone(),
        is_active: r.is_active,
        session: r.session.clone(),
    })
    .map_err(|e| Error::Backend(format!("cannot encode api key {:?}: {e}", r.id)))
}

impl SqliteStore {
    async fn query_keys(
        &self,
        filter: &'static str,
        arg: Option<String>,
    ) -> Result<Vec<ApiKeyRecord>> {
        self.with_conn(move |conn, _| {
            let sql = format!("SELECT {COLUMNS} FROM api_key {filter} ORDER BY id");
            let mut stmt = conn.prepare_cached(&sql).map_err(sql_err)?;
            let rows = match &arg {
                Some(a) => stmt.query_map([a], decode),
                None => stmt.query_map([], decode),
            }
            .map_err(sql_err)?;
            let mut out = Vec::new();
            for row in rows {
                out.push(finish(row.map_err(sql_err)?)?);
            }
            Ok(out)
        })
        .await
    }
}

impl KeyBackend for SqliteStore {
    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.query_keys("", None).await
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self
            .query_keys("WHERE id = ?1", Some(id.to_owned()))
            .await?
            .into_iter()
            .next())
    }

    async fn find_key(&self, stored: &str) -> Result<Option<ApiKeyRecord>> {
        let stored = stored.to_owned();
        self.with_conn(move |conn, _| {
            let sql = format!(r#"SELECT {COLUMNS} FROM api_key WHERE "key" = ?1"#);
            let row = conn
                .prepare_cached(&sql)
                .map_err(sql_err)?
                .query_row([&stored], decode)
                .optional()
                .map_err(sql_err)?;
            row.map(finish).transpose()
        })
        .await
    }

    async fn insert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let data = encode(record)?;
        let r = record.clone();
        self.with_conn(move |conn, _| {
            match conn.execute(
                r#"INSERT INTO api_key (id, "key", "isActive", session, data) VALUES (?1, ?2, ?3, ?4, ?5)"#,
                params![r.id, r.key, i64::from(r.is_active), r.session, data],
            ) {
                Ok(_) => Ok(()),
                Err(e) if is_duplicate_key(&e) => Err(Error::AlreadyExists(r.id.clone())),
                Err(e) => Err(sql_err(e)),
            }
        })
        .await
    }

    async fn upsert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        let data = encode(record)?;
        let r = record.clone();
        self.with_conn(move |conn, _| {
            conn.execute(
                r#"INSERT INTO api_key (id, "key", "isActive", session, data) VALUES (?1, ?2, ?3, ?4, ?5)
                   ON CONFLICT(id) DO UPDATE SET "key" = excluded."key",
                     "isActive" = excluded."isActive", session = excluded.session,
                     data = excluded.data"#,
                params![r.id, r.key, i64::from(r.is_active), r.session, data],
            )
            .map_err(|e| {
                if is_duplicate_key(&e) {
                    Error::AlreadyExists(r.id.clone())
                } else {
                    sql_err(e)
                }
            })?;
            Ok(())
        })
        .await
    }

    async fn delete_key(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.with_conn(move |conn, _| {
            conn.execute("DELETE FROM api_key WHERE id = ?1", [&id])
                .map(|n| n > 0)
                .map_err(sql_err)
        })
        .await
    }
}
