//! The contact store and LID map on SQLite: `{session_dir}/contacts.sqlite3`, one file per
//! session (deleted with the session's folder).
//!
//! Owns: the schema and the SQL of [`ContactBackend`] for [`SqliteSession`]; connections come
//! from the backend's one per-session cache (`store/sqlite/mod.rs`). Called through
//! `store::SessionContacts`. A patch batch is one transaction; a patch only overwrites the
//! columns it carries (`COALESCE` on the incoming value), so a push name never erases a
//! saved name and the other way round.

use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use super::{SessionDb, SqliteSession, sql_err};
use crate::store::{
    ContactBackend, ContactPatch, ContactQuery, ContactRecord, ContactSortBy, LidPair, Result,
    SortOrder,
};

/// Everything here is re-learnt from WhatsApp traffic: NORMAL durability is plenty.
static DB: SessionDb = SessionDb {
    file: "contacts.sqlite3",
    schema: SCHEMA,
    synchronous: "NORMAL",
};

/// `sort_name` is the display name (saved, else push name) kept for `sortBy=name`.
/// `lids.pn` is unique: one phone number has one LID.
const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS contacts (
    id TEXT PRIMARY KEY,
    name TEXT,
    pushname TEXT,
    sort_name TEXT,
    blocked INTEGER NOT NULL DEFAULT 0,
    wa_contact INTEGER NOT NULL DEFAULT 0,
    picture_url TEXT,
    picture_at INTEGER
);
CREATE INDEX IF NOT EXISTS contacts_sort_name ON contacts (sort_name, id);
CREATE TABLE IF NOT EXISTS lids (
    lid TEXT PRIMARY KEY,
    pn TEXT NOT NULL UNIQUE
);
"#;

const COLUMNS: &str = "id, name, pushname, blocked, wa_contact, picture_url, picture_at";

impl ContactBackend for SqliteSession {
    async fn merge_contacts(&self, patches: &[ContactPatch]) -> Result<()> {
        let patches = patches.to_vec();
        self.with_conn(&DB, true, move |c| merge(c, &patches))
            .await
            .map(drop)
    }

    async fn get_contact(&self, id: &str) -> Result<Option<ContactRecord>> {
        let id = id.to_owned();
        self.with_conn(&DB, false, move |c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM contacts WHERE id = ?1"),
                [&id],
                record,
            )
            .optional()
            .map_err(sql_err)
        })
        .await
        .map(Option::flatten)
    }

    async fn list_contacts(&self, q: &ContactQuery) -> Result<Vec<ContactRecord>> {
        let dir = match q.sort_order {
            SortOrder::Asc => "ASC",
            SortOrder::Desc => "DESC",
        };
        let order = match q.sort_by {
            ContactSortBy::Id => format!("id {dir}"),
            ContactSortBy::Name => format!("sort_name {dir}, id {dir}"),
        };
        // SQLite: a negative LIMIT means "no limit".
        let limit = q.limit.map_or(-1, i64::from);
        let offset = i64::from(q.offset);
        let sql = format!("SELECT {COLUMNS} FROM contacts ORDER BY {order} LIMIT ?1 OFFSET ?2");
        Ok(self
            .with_conn(&DB, false, move |c| {
                let mut stmt = c.prepare(&sql).map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![limit, offset], record)
                    .map_err(sql_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
            })
            .await?
            .unwrap_or_default())
    }

    async fn upsert_lids(&self, pairs: &[LidPair]) -> Result<()> {
        let pairs = pairs.to_vec();
        self.with_conn(&DB, true, move |c| {
            let tx = c
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(sql_err)?;
            {
                // A newer pair wins over an older one sharing either side.
                let mut del = tx
                    .prepare("DELETE FROM lids WHERE (lid = ?1 OR pn = ?2)")
                    .map_err(sql_err)?;
                let mut ins = tx
                    .prepare("INSERT INTO lids (lid, pn) VALUES (?1, ?2)")
                    .map_err(sql_err)?;
                for p in &pairs {
                    del.execute(params![p.lid, p.pn]).map_err(sql_err)?;
                    ins.execute(params![p.lid, p.pn]).map_err(sql_err)?;
                }
            }
            tx.commit().map_err(sql_err)
        })
        .await
        .map(drop)
    }

    async fn lid_by_lid(&self, lid: &str) -> Result<Option<LidPair>> {
        self.one_lid("lid", lid).await
    }

    async fn lid_by_pn(&self, pn: &str) -> Result<Option<LidPair>> {
        self.one_lid("pn", pn).await
    }

    async fn list_lids(&self, limit: Option<u32>, offset: u32) -> Result<Vec<LidPair>> {
        let limit = limit.map_or(-1, i64::from);
        Ok(self
            .with_conn(&DB, false, move |c| {
                let mut stmt = c
                    .prepare("SELECT lid, pn FROM lids ORDER BY lid LIMIT ?1 OFFSET ?2")
                    .map_err(sql_err)?;
                let rows = stmt
                    .query_map(params![limit, i64::from(offset)], pair)
                    .map_err(sql_err)?;
                rows.collect::<rusqlite::Result<Vec<_>>>().map_err(sql_err)
            })
            .await?
            .unwrap_or_default())
    }

    async fn count_lids(&self) -> Result<u64> {
        let n = self
            .with_conn(&DB, false, |c| {
                c.query_row("SELECT COUNT(*) FROM lids", [], |r| r.get::<_, i64>(0))
                    .map_err(sql_err)
            })
            .await?
            .unwrap_or(0);
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

impl SqliteSession {
    /// The pair whose `column` (`lid` or `pn`, never user input) equals `value`.
    async fn one_lid(&self, column: &'static str, value: &str) -> Result<Option<LidPair>> {
        let value = value.to_owned();
        self.with_conn(&DB, false, move |c| {
            c.query_row(
                &format!("SELECT lid, pn FROM lids WHERE {column} = ?1"),
                [&value],
                pair,
            )
            .optional()
            .map_err(sql_err)
        })
        .await
        .map(Option::flatten)
    }
}

fn merge(conn: &mut Connection, patches: &[ContactPatch]) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err)?;
    {
        let mut stmt = tx
            .prepare(
                "INSERT INTO contacts (id, name, pushname, sort_name, blocked, wa_contact, \
                 picture_url, picture_at) \
                 VALUES (?1, ?2, ?3, COALESCE(?2, ?3), COALESCE(?4, 0), COALESCE(?5, 0), ?6, ?7) \
                 ON CONFLICT(id) DO UPDATE SET \
                   name = COALESCE(?2, name), \
                   pushname = COALESCE(?3, pushname), \
                   sort_name = COALESCE(?2, name, ?3, pushname), \
                   blocked = COALESCE(?4, blocked), \
                   wa_contact = COALESCE(?5, wa_contact), \
                   picture_url = CASE WHEN ?7 IS NULL THEN picture_url ELSE ?6 END, \
                   picture_at = COALESCE(?7, picture_at)",
            )
            .map_err(sql_err)?;
        for p in patches {
            let (url, at) = match &p.picture {
                Some((url, at)) => (url.clone(), Some(*at)),
                None => (None, None),
            };
            stmt.execute(params![
                p.id,
                p.name,
                p.pushname,
                p.is_blocked,
                p.is_wa_contact,
                url,
                at
            ])
            .map_err(sql_err)?;
        }
    }
    tx.commit().map_err(sql_err)
}

fn record(r: &Row<'_>) -> rusqlite::Result<ContactRecord> {
    Ok(ContactRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        pushname: r.get(2)?,
        is_blocked: r.get(3)?,
        is_wa_contact: r.get(4)?,
        picture_url: r.get(5)?,
        picture_at: r.get(6)?,
    })
}

fn pair(r: &Row<'_>) -> rusqlite::Result<LidPair> {
    Ok(LidPair {
        lid: r.get(0)?,
        pn: r.get(1)?,
    })
}
