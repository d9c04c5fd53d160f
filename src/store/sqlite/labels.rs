//! Labels on SQLite: `{session_dir}/labels.sqlite3`, one file per session (deleted with the
//! session's folder).
//!
//! Owns: the schema and the SQL of [`LabelBackend`] for [`SqliteSession`]; connections come
//! from the backend's per-session cache (`store/sqlite/mod.rs`). Called through
//! `store::SessionLabels`. Every write is one statement or one transaction.

use rusqlite::{OptionalExtension, params};

use super::{SessionDb, SqliteSession, sql_err};
use crate::model::labels::{Label, label};
use crate::store::{LabelBackend, Result};

/// The labels can always be rebuilt from the app state: NORMAL durability is plenty.
static DB: SessionDb = SessionDb {
    file: "labels.sqlite3",
    schema: SCHEMA,
    synchronous: "NORMAL",
};

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS labels (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    color INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS label_chats (
    label_id TEXT NOT NULL,
    chat_id TEXT NOT NULL,
    PRIMARY KEY (label_id, chat_id)
);
CREATE INDEX IF NOT EXISTS label_chats_chat ON label_chats (chat_id, label_id);
"#;

fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Label> {
    Ok(label(
        &r.get::<_, String>(0)?,
        &r.get::<_, String>(1)?,
        r.get(2)?,
    ))
}

fn strings(c: &mut rusqlite::Connection, sql: &str, arg: &str) -> Result<Vec<String>> {
    let mut stmt = c.prepare(sql).map_err(sql_err)?;
    let rows = stmt
        .query_map([arg], |r| r.get::<_, String>(0))
        .map_err(sql_err)?;
    rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
}

impl LabelBackend for SqliteSession {
    async fn upsert_label(&self, l: &Label) -> Result<()> {
        let l = l.clone();
        self.with_conn(&DB, true, move |c| {
            c.execute(
                "INSERT INTO labels (id, name, color) VALUES (?1, ?2, ?3) \
                 ON CONFLICT(id) DO UPDATE SET name = excluded.name, color = excluded.color",
                params![l.id, l.name, l.color],
            )
            .map_err(sql_err)
        })
        .await
        .map(drop)
    }

    async fn get_label(&self, id: &str) -> Result<Option<Label>> {
        let id = id.to_owned();
        self.with_conn(&DB, false, move |c| {
            c.query_row(
                "SELECT id, name, color FROM labels WHERE id = ?1",
                [&id],
                row,
            )
            .optional()
            .map_err(sql_err)
        })
        .await
        .map(Option::flatten)
    }

    async fn list_labels(&self) -> Result<Vec<Label>> {
        Ok(self
            .with_conn(&DB, false, |c| {
                let mut stmt = c
                    .prepare(
                        "SELECT id, name, color FROM labels \
                         ORDER BY CAST(id AS INTEGER), id",
                    )
                    .map_err(sql_err)?;
                let rows = stmt.query_map([], row).map_err(sql_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
            })
            .await?
            .unwrap_or_default())
    }

    async fn delete_label(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let n = self
            .with_conn(&DB, false, move |c| {
                let tx = c.transaction().map_err(sql_err)?;
                tx.execute("DELETE FROM label_chats WHERE label_id = ?1", [&id])
                    .map_err(sql_err)?;
                let n = tx
                    .execute("DELETE FROM labels WHERE id = ?1", [&id])
                    .map_err(sql_err)?;
                tx.commit().map_err(sql_err)?;
                Ok(n)
            })
            .await?
            .unwrap_or(0);
        Ok(n > 0)
    }

    async fn set_label_chat(&self, label_id: &str, chat: &str, on: bool) -> Result<bool> {
        let (label_id, chat) = (label_id.to_owned(), chat.to_owned());
        let n = self
            .with_conn(&DB, true, move |c| {
                let sql = if on {
                    "INSERT OR IGNORE INTO label_chats (label_id, chat_id) VALUES (?1, ?2)"
                } else {
                    "DELETE FROM label_chats WHERE label_id = ?1 AND chat_id = ?2"
                };
                c.execute(sql, params![label_id, chat]).map_err(sql_err)
            })
            .await?
            .unwrap_or(0);
        Ok(n > 0)
    }

    async fn label_chats(&self, label_id: &str) -> Result<Vec<String>> {
        let label_id = label_id.to_owned();
        Ok(self
            .with_conn(&DB, false, move |c| {
                strings(
                    c,
                    "SELECT chat_id FROM label_chats WHERE label_id = ?1 ORDER BY chat_id",
                    &label_id,
                )
            })
            .await?
            .unwrap_or_default())
    }

    async fn chat_labels(&self, chat: &str) -> Result<Vec<String>> {
        let chat = chat.to_owned();
        Ok(self
            .with_conn(&DB, false, move |c| {
                strings(
                    c,
                    "SELECT label_id FROM label_chats WHERE chat_id = ?1 \
                     ORDER BY CAST(label_id AS INTEGER), label_id",
                    &chat,
                )
            })
            .await?
            .unwrap_or_default())
    }
}
