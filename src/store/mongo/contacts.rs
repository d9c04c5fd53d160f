//! The contact store and LID map on MongoDB: collections `contacts` and `lids` in the
//! session's own database `waha_{WAHA_SESSION_NAMESPACE}_{session}` (dropped with the
//! session).
//!
//! Owns: the document layout and indexes; implements [`ContactBackend`] for [`MongoSession`]
//! through the store's one client, error mapping and index memo (`store/mongo/mod.rs`).
//! Called through `store::SessionContacts`.
//!
//! `contacts`: `{_id, name, pushname, sortName, isBlocked, isWAContact, pictureUrl,
//! pictureAt}`; a patch reads the document, applies the fields it carries and replaces it
//! whole (plain CRUD, so any MongoDB-compatible server serves it; the data is a cache of
//! what WhatsApp tells us, so a lost race costs one push name until the next message).
//! `lids`: `{_id: lid, pn}` with a unique index on `pn`.

use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::IndexOptions;

use super::{MongoSession, is_duplicate_key};
use crate::store::{
    ContactBackend, ContactPatch, ContactQuery, ContactRecord, ContactSortBy, LidPair, Result,
    SortOrder,
};

const CONTACTS: &str = "contacts";
const LIDS: &str = "lids";

impl MongoSession {
    /// Creates the indexes before the session's first write.
    async fn ensure_contact_indexes(&self) -> Result<()> {
        self.ensure_indexes(
            CONTACTS,
            vec![
                (
                    self.coll(CONTACTS),
                    vec![
                        IndexModel::builder()
                            .keys(doc! { "sortName": 1, "_id": 1 })
                            .build(),
                    ],
                ),
                (
                    self.coll(LIDS),
                    vec![
                        IndexModel::builder()
                            .keys(doc! { "pn": 1 })
                            .options(IndexOptions::builder().unique(true).build())
                            .build(),
                    ],
                ),
            ],
        )
        .await
    }

    async fn one_lid(&self, filter: Document) -> Result<Option<LidPair>> {
        Ok(self
            .coll(LIDS)
            .find_one(filter)
            .await
            .map_err(|e| self.err(&e))?
            .and_then(|d| pair(&d)))
    }

    async fn put_lid(&self, p: &LidPair) -> Result<()> {
        let coll = self.coll(LIDS);
        // A newer pair wins over an older one sharing either side. Only the *other*
        // pairs are deleted and this one is upserted in place: MongoDB has no
        // transaction here, and deleting then re-inserting a pair learnt again (every
        // message, receipt or group fetch re-learns known pairs) would make it vanish
        // for readers in between.
        let found: Vec<Document> = coll
            .find(doc! { "$or": [ { "_id": &p.lid }, { "pn": &p.pn } ] })
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let found: Vec<LidPair> = found.iter().filter_map(pair).collect();
        if found.len() == 1 && found[0] == *p {
            // Known already (the common case: every message re-learns its pair): the
            // read was the only round trip.
            return Ok(());
        }
        for old in found.iter().filter(|old| *old != p) {
            coll.delete_one(doc! { "_id": &old.lid })
                .await
                .map_err(|e| self.err(&e))?;
        }
        match coll
            .replace_one(doc! { "_id": &p.lid }, doc! { "_id": &p.lid, "pn": &p.pn })
            .upsert(true)
            .await
        {
            // Someone stored the same pair meanwhile: nothing to do.
            Err(e) if is_duplicate_key(&e) => Ok(()),
            r => r.map(drop).map_err(|e| self.err(&e)),
        }
    }
}

impl ContactBackend for MongoSession {
    async fn merge_contacts(&self, patches: &[ContactPatch]) -> Result<()> {
        self.ensure_contact_indexes().await?;
        // Every patch as update statements (no read first), all in one `update` command
        // (ordered: a patch's statements apply in order, patches in the caller's order).
        let statements: Vec<Bson> = patches
            .iter()
            .flat_map(patch_statements)
            .map(Bson::Document)
            .collect();
        if statements.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            let reply = self
                .db
                .run_command(
                    doc! { "update": CONTACTS, "updates": statements.clone(), "ordered": true },
                )
                .await
                .map_err(|e| self.err(&e))?;
            // Two first upserts of one contact can race (E11000 on `_id`): the second
            // attempt finds the document and updates it.
            let raced = reply.get_array("writeErrors").is_ok_and(|errors| {
                errors.iter().all(|e| {
                    matches!(e, Bson::Document(d)
                        if d.get("code").and_then(super::bson_i64)
                            == Some(i64::from(super::DUPLICATE_KEY)))
                })
            });
            if raced && attempt == 0 {
                attempt += 1;
                continue;
            }
            if reply.get_array("writeErrors").is_ok() || reply.contains_key("writeConcernError") {
                return Err(crate::store::Error::Backend(format!(
                    "mongodb: contacts update failed: {reply}"
                )));
            }
            return Ok(());
        }
    }

    async fn get_contact(&self, id: &str) -> Result<Option<ContactRecord>> {
        Ok(self
            .coll(CONTACTS)
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?
            .as_ref()
            .map(record))
    }

    async fn list_contacts(&self, q: &ContactQuery) -> Result<Vec<ContactRecord>> {
        let dir = match q.sort_order {
            SortOrder::Asc => 1,
            SortOrder::Desc => -1,
        };
        let sort = match q.sort_by {
            ContactSortBy::Id => doc! { "_id": dir },
            ContactSortBy::Name => doc! { "sortName": dir, "_id": dir },
        };
        let docs = self
            .find_page(CONTACTS, doc! {}, sort, q.offset, q.limit)
            .await?;
        Ok(docs.iter().map(record).collect())
    }

    async fn upsert_lids(&self, pairs: &[LidPair]) -> Result<()> {
        self.ensure_contact_indexes().await?;
        for p in pairs {
            self.put_lid(p).await?;
        }
        Ok(())
    }

    async fn lid_by_lid(&self, lid: &str) -> Result<Option<LidPair>> {
        self.one_lid(doc! { "_id": lid }).await
    }

    async fn lid_by_pn(&self, pn: &str) -> Result<Option<LidPair>> {
        self.one_lid(doc! { "pn": pn }).await
    }

    async fn list_lids(&self, limit: Option<u32>, offset: u32) -> Result<Vec<LidPair>> {
        let coll = self.coll(LIDS);
        let mut find = coll
            .find(doc! {})
            .sort(doc! { "_id": 1 })
            .skip(u64::from(offset));
        if let Some(l) = limit {
            find = find.limit(i64::from(l));
        }
        let docs: Vec<Document> = find
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        Ok(docs.iter().filter_map(pair).collect())
    }

    async fn count_lids(&self) -> Result<u64> {
        self.coll(LIDS)
            .count_documents(doc! {})
            .await
            .map_err(|e| self.err(&e))
    }
}

/// One patch as `update` statements, the rule both backends share (carried fields
/// overwrite, the others stay; `sortName` is the saved name, else the push name) without
/// reading first:
/// an upsert that sets the carried fields (the others get their defaults on insert), then,
/// when only a push name is carried, `sortName` follows it where no saved name exists.
fn patch_statements(p: &ContactPatch) -> Vec<Document> {
    let mut set = Document::new();
    if let Some(n) = &p.name {
        set.insert("name", n.as_str());
        set.insert("sortName", n.as_str());
    }
    if let Some(n) = &p.pushname {
        set.insert("pushname", n.as_str());
    }
    if let Some(b) = p.is_blocked {
        set.insert("isBlocked", b);
    }
    if let Some(b) = p.is_wa_contact {
        set.insert("isWAContact", b);
    }
    if let Some((url, at)) = &p.picture {
        set.insert("pictureUrl", opt(url.as_ref()));
        set.insert("pictureAt", *at);
    }
    let defaults = encode(&ContactRecord {
        id: p.id.clone(),
        pushname: p.pushname.clone(),
        ..ContactRecord::default()
    });
    let mut on_insert = Document::new();
    for (k, v) in defaults {
        if k != "_id" && !set.contains_key(&k) {
            on_insert.insert(k, v);
        }
    }
    let mut update = Document::new();
    if !set.is_empty() {
        update.insert("$set", set);
    }
    // Never both empty: without a carried field every default goes in on insert.
    if !on_insert.is_empty() {
        update.insert("$setOnInsert", on_insert);
    }
    let mut out = vec![doc! { "q": { "_id": &p.id }, "u": update, "upsert": true }];
    if p.name.is_none()
        && let Some(push) = &p.pushname
    {
        out.push(doc! {
            "q": { "_id": &p.id, "name": Bson::Null },
            "u": { "$set": { "sortName": push.as_str() } },
        });
    }
    out
}

fn opt(v: Option<&String>) -> Bson {
    v.map_or(Bson::Null, |s| Bson::String(s.clone()))
}

fn encode(c: &ContactRecord) -> Document {
    doc! {
        "_id": &c.id,
        "name": opt(c.name.as_ref()),
        "pushname": opt(c.pushname.as_ref()),
        "sortName": opt(c.name.as_ref().or(c.pushname.as_ref())),
        "isBlocked": c.is_blocked,
        "isWAContact": c.is_wa_contact,
        "pictureUrl": opt(c.picture_url.as_ref()),
        "pictureAt": c.picture_at.map_or(Bson::Null, Bson::Int64),
    }
}

/// Lenient: a field of the wrong type reads as absent (the data is a cache).
fn record(d: &Document) -> ContactRecord {
    let s = |k: &str| d.get_str(k).ok().map(str::to_owned);
    ContactRecord {
        id: s("_id").unwrap_or_default(),
        name: s("name"),
        pushname: s("pushname"),
        is_blocked: d.get_bool("isBlocked").unwrap_or(false),
        is_wa_contact: d.get_bool("isWAContact").unwrap_or(false),
        picture_url: s("pictureUrl"),
        picture_at: d.get_i64("pictureAt").ok(),
    }
}

fn pair(d: &Document) -> Option<LidPair> {
    Some(LidPair {
        lid: d.get_str("_id").ok()?.to_owned(),
        pn: d.get_str("pn").ok()?.to_owned(),
    })
}
