//! API keys on MongoDB: WAHA's `api_key` collection in the main database
//! `waha_{WAHA_NAMESPACE}` (unique `id`, unique `key`, `session` — indexes made in
//! `sessions.rs`).
//!
//! Owns: the document encoding `{id, key, isActive, isAdmin, session, actions}` (WAHA's
//! entity), with `key` in the stored form (`sha256:<hex>`), never the plaintext.
//! Implements [`KeyBackend`] for [`MongoStore`]; called through [`crate::store::Store`].
//! Stateless.

use futures_util::TryStreamExt;
use mongodb::bson::{self, Document, doc};
use mongodb::options::ReplaceOptions;
use serde::{Deserialize, Serialize};

use super::{MongoStore, is_duplicate_key};
use crate::store::{ApiKeyRecord, Error, KeyActions, KeyBackend, Result};

/// The stored document.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Doc {
    id: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    is_active: bool,
    #[serde(default)]
    is_admin: bool,
    #[serde(default)]
    session: Option<String>,
    #[serde(default)]
    actions: Option<KeyActions>,
}

fn encode(r: &ApiKeyRecord) -> Result<Document> {
    bson::to_document(&Doc {
        id: r.id.clone(),
        key: r.key.clone(),
        is_active: r.is_active,
        is_admin: r.is_admin,
        session: r.session.clone(),
        actions: r.actions,
    })
    .map_err(|e| Error::Backend(format!("cannot encode api key {:?}: {e}", r.id)))
}

fn decode(mut d: Document) -> Result<ApiKeyRecord> {
    d.remove("_id");
    let d: Doc =
        bson::from_document(d).map_err(|e| Error::Corrupt(format!("api_key document: {e}")))?;
    Ok(ApiKeyRecord {
        id: d.id,
        key: d.key,
        is_active: d.is_active,
        is_admin: d.is_admin,
        session: d.session,
        actions: d.actions,
    })
}

impl MongoStore {
    async fn find_keys(&self, filter: Document) -> Result<Vec<ApiKeyRecord>> {
        let docs: Vec<Document> = self
            .api_keys()
            .find(filter)
            .sort(doc! { "id": 1 })
            .await
            .map_err(|e| self.redactor.error(&e))?
            .try_collect()
            .await
            .map_err(|e| self.redactor.error(&e))?;
        docs.into_iter().map(decode).collect()
    }
}

impl KeyBackend for MongoStore {
    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        self.find_keys(doc! {}).await
    }

    async fn get_key(&self, id: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self.find_keys(doc! { "id": id }).await?.into_iter().next())
    }

    async fn find_key(&self, stored: &str) -> Result<Option<ApiKeyRecord>> {
        Ok(self
            .find_keys(doc! { "key": stored })
            .await?
            .into_iter()
            .next())
    }

    async fn insert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        match self.api_keys().insert_one(encode(record)?).await {
            Ok(_) => Ok(()),
            Err(e) if is_duplicate_key(&e) => Err(Error::AlreadyExists(record.id.clone())),
            Err(e) => Err(self.redactor.error(&e)),
        }
    }

    async fn upsert_key(&self, record: &ApiKeyRecord) -> Result<()> {
        // Two concurrent upserts of a new id can both try to insert; the loser's retry
        // then replaces the winner's document.
        let mut retried = false;
        loop {
            let options = ReplaceOptions::builder().upsert(true).build();
            match self
                .api_keys()
                .replace_one(doc! { "id": &record.id }, encode(record)?)
                .with_options(options)
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_duplicate_key(&e) && !retried => retried = true,
                Err(e) if is_duplicate_key(&e) => {
                    return Err(Error::AlreadyExists(record.id.clone()));
                }
                Err(e) => return Err(self.redactor.error(&e)),
            }
        }
    }

    async fn delete_key(&self, id: &str) -> Result<bool> {
        let res = self
            .api_keys()
            .delete_one(doc! { "id": id })
            .await
            .map_err(|e| self.redactor.error(&e))?;
        Ok(res.deleted_count > 0)
    }
}
