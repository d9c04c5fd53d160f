//! The group cache on SQLite: `{session_dir}/groups.sqlite3`, one file per session (deleted
//! with the session's folder).
//!
//! Owns: the schema and the SQL of [`GroupBackend`] for [`SqliteSession`]; connections come
//! from the backend's one per-session cache (`store/sqlite/mod.rs`). Called through
//! `store::SessionGroups`. Every write is one transaction, so a group is replaced whole or
//! not at all, and a refresh replaces the whole set at once.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{SessionDb, SqliteSession, sql_err};
use crate::model::groups::Group;
use crate::store::{Error, GroupBackend, GroupQuery, GroupSortBy, Result, SortOrder};

/// The cache can always be rebuilt from WhatsApp: NORMAL durability is plenty.
static DB: SessionDb = SessionDb {
    file: "groups.sqlite3",
    schema: SCHEMA,
    synchronous: "NORMAL",
};

/// `data` is the whole [`Group`] as JSON; `subject` is copied out for sorting.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS groups (
    id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    data TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS groups_subject ON groups (subject, id);
"#;

impl GroupBackend for SqliteSession {
    async fn upsert_groups(&self, groups: &[Group]) -> Result<()> {
        let groups = groups.to_vec();
        self.with_conn(&DB, true, move |c| write(c, &groups, false))
            .await
            .map(drop)
    }

    async fn replace_groups(&self, groups: &[Group]) -> Result<()> {
        let groups = groups.to_vec();
        self.with_conn(&DB, true, move |c| write(c, &groups, true))
            .await
            .map(drop)
    }

    async fn get_group(&self, id: &str) -> Result<Option<Group>> {
        let id = id.to_owned();
        self.with_conn(&DB, false, move |c| {
            let data: Option<String> = c
                .query_row("SELECT data FROM groups WHERE id = ?1", [&id], |r| r.get(0))
                .optional()
                .map_err(sql_err)?;
            data.as_deref().map(decode).transpose()
        })
        .await
        .map(Option::flatten)
    }

    async fn list_groups(&self, q: &GroupQuery) -> Result<Vec<Group>> {
        let q = q.clone();
        Ok(self
            .with_conn(&DB, false, move |c| list(c, &q))
            .await?
            .unwrap_or_default())
    }

    async fn count_groups(&self) -> Result<u64> {
        let n = self
            .with_conn(&DB, false, |c| {
                c.query_row("SELECT COUNT(*) FROM groups", [], |r| r.get::<_, i64>(0))
                    .map_err(sql_err)
            })
            .await?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }

    async fn delete_group(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let n = self
            .with_conn(&DB, false, move |c| {
                c.execute("DELETE FROM groups WHERE id = ?1", [&id])
                    .map_err(sql_err)
            })
            .await?
            .unwrap_or(0);
        Ok(n > 0)
    }
}

fn write(conn: &mut Connection, groups: &[Group], replace_all: bool) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    if replace_all {
        tx.execute("DELETE FROM groups", []).map_err(sql_err)?;
    }
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO groups (id, subject, data) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET subject = excluded.subject, data = excluded.data",
            )
            .map_err(sql_err)?;
        for g in groups {
            let data = serde_json::to_string(g).map_err(|e| Error::Backend(e.to_string()))?;
            stmt.execute(params![g.id, g.subject, data])
                .map_err(sql_err)?;
        }
    }
    tx.commit().map_err(sql_err)
}

fn list(conn: &mut Connection, q: &GroupQuery) -> Result<Vec<Group>> {
    let dir = match q.sort_order {
        SortOrder::Asc => "ASC",
        SortOrder::Desc => "DESC",
    };
    let order = match q.sort_by {
        GroupSortBy::Id => format!("id {dir}"),
        GroupSortBy::Subject => format!("subject {dir}, id {dir}"),
    };
    // SQLite: a negative LIMIT means "no limit".
    let limit = q.limit.map_or(-1, i64::from);
    let sql = format!("SELECT data FROM groups ORDER BY {order} LIMIT ?1 OFFSET ?2");
    let mut stmt = conn.prepare(&sql).map_err(sql_err)?;
    let rows = stmt
        .query_map(params![limit, i64::from(q.offset)], |r| {
            r.get::<_, String>(0)
        })
        .map_err(sql_err)?;
    let mut out = Vec::new();
    for data in rows {
        out.push(decode(&data.map_err(sql_err)?)?);
    }
    Ok(out)
}

fn decode(data: &str) -> Result<Group> {
    serde_json::from_str(data).map_err(|e| Error::Corrupt(format!("groups: {e}")))
}
