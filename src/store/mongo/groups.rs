//! The group cache on MongoDB: collection `groups` in the session's own database
//! `waha_{WAHA_SESSION_NAMESPACE}_{session}` (dropped with the session).
//!
//! Owns: the document layout and index; implements [`GroupBackend`] for [`MongoSession`]
//! through the store's one client, error mapping and index memo (`store/mongo/mod.rs`).
//! Called through `store::SessionGroups`.
//!
//! Each document is the cached [`Group`] itself (camelCase, so it reads like WAHA's
//! `GroupInfo`) plus `_id` (the group id); index `{subject, _id}` for `sortBy=subject`.
//! Every write replaces one whole document, so a group is never half-updated; a full
//! refresh upserts every group, then removes those no longer listed.

use mongodb::IndexModel;
use mongodb::bson::{self, Document, doc};

use super::MongoSession;
use crate::model::groups::Group;
use crate::store::{Error, GroupBackend, GroupQuery, GroupSortBy, Result, SortOrder};

const GROUPS: &str = "groups";

impl MongoSession {
    /// Creates the cache's index before the session's first write.
    async fn ensure_group_indexes(&self) -> Result<()> {
        self.ensure_indexes(
            GROUPS,
            vec![(
                self.coll(GROUPS),
                vec![
                    IndexModel::builder()
                        .keys(doc! { "subject": 1, "_id": 1 })
                        .build(),
                ],
            )],
        )
        .await
    }

    async fn upsert_one(&self, g: &Group) -> Result<()> {
        self.coll(GROUPS)
            .replace_one(doc! { "_id": &g.id }, encode(g)?)
            .upsert(true)
            .await
            .map_err(|e| self.err(&e))
            .map(drop)
    }
}

impl GroupBackend for MongoSession {
    async fn upsert_groups(&self, groups: &[Group]) -> Result<()> {
        self.ensure_group_indexes().await?;
        for g in groups {
            self.upsert_one(g).await?;
        }
        Ok(())
    }

    async fn replace_groups(&self, groups: &[Group]) -> Result<()> {
        self.ensure_group_indexes().await?;
        for g in groups {
            self.upsert_one(g).await?;
        }
        let ids: Vec<&str> = groups.iter().map(|g| g.id.as_str()).collect();
        self.coll(GROUPS)
            .delete_many(doc! { "_id": { "$nin": ids } })
            .await
            .map_err(|e| self.err(&e))
            .map(drop)
    }

    async fn get_group(&self, id: &str) -> Result<Option<Group>> {
        self.coll(GROUPS)
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?
            .map(decode)
            .transpose()
    }

    async fn list_groups(&self, q: &GroupQuery) -> Result<Vec<Group>> {
        let dir = match q.sort_order {
            SortOrder::Asc => 1,
            SortOrder::Desc => -1,
        };
        let sort = match q.sort_by {
            GroupSortBy::Id => doc! { "_id": dir },
            GroupSortBy::Subject => doc! { "subject": dir, "_id": dir },
        };
        let docs = self
            .find_page(GROUPS, doc! {}, sort, q.offset, q.limit)
            .await?;
        docs.into_iter().map(decode).collect()
    }

    async fn count_groups(&self) -> Result<u64> {
        self.coll(GROUPS)
            .count_documents(doc! {})
            .await
            .map_err(|e| self.err(&e))
    }

    async fn delete_group(&self, id: &str) -> Result<bool> {
        let r = self
            .coll(GROUPS)
            .delete_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?;
        Ok(r.deleted_count > 0)
    }
}

fn encode(g: &Group) -> Result<Document> {
    let mut d = bson::to_document(g).map_err(|e| Error::Backend(format!("groups: {e}")))?;
    d.insert("_id", &g.id);
    Ok(d)
}

fn decode(d: Document) -> Result<Group> {
    bson::from_document(d).map_err(|e| Error::Corrupt(format!("groups: {e}")))
}
