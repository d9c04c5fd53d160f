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
        for old in found.iter().filter_map(pair).filter(|old| old != p) {
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
        let coll = self.coll(CONTACTS);
        for p in patches {
            let old = coll
                .find_one(doc! { "_id": &p.id })
                .await
                .map_err(|e| self.err(&e))?;
            let mut c = old.as_ref().map_or_else(
                || ContactRecord {
                    id: p.id.clone(),
                    ..ContactRecord::default()
                },
                record,
            );
            apply(&mut c, p);
            coll.replace_one(doc! { "_id": &p.id }, encode(&c))
                .upsert(true)
                .await
                .map_err(|e| self.err(&e))?;
        }
        Ok(())
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

/// The rule both backends share: carried fields overwrite, the others stay.
fn apply(c: &mut ContactRecord, p: &ContactPatch) {
    if let Some(n) = &p.name {
        c.name = Some(n.clone());
    }
    if let Some(n) = &p.pushname {
        c.pushname = Some(n.clone());
    }
    if let Some(b) = p.is_blocked {
        c.is_blocked = b;
    }
    if let Some(b) = p.is_wa_contact {
        c.is_wa_contact = b;
    }
    if let Some((url, at)) = &p.picture {
        c.picture_url = url.clone();
        c.picture_at = Some(*at);
    }
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
