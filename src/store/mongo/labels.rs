//! Labels on MongoDB: collections `labels` (`_id` = label id, `name`, `color`) and
//! `label_chats` (`_id` = `label|chat`, `labelId`, `chatId`) in the session's own database
//! (dropped with the session).
//!
//! Owns: the document layout and indexes; implements [`LabelBackend`] for [`MongoSession`]
//! through the store's one client and error mapping (`store/mongo/mod.rs`). Called through
//! `store::SessionLabels`. Every write is one document.

use futures_util::TryStreamExt;
use mongodb::IndexModel;
use mongodb::bson::{Document, doc};

use super::MongoSession;
use crate::model::labels::{Label, label};
use crate::store::{Error, LabelBackend, Result};

const LABELS: &str = "labels";
const LABEL_CHATS: &str = "label_chats";

fn decode(d: &Document) -> Result<Label> {
    let id = d
        .get_str("_id")
        .map_err(|e| Error::Corrupt(format!("labels: {e}")))?;
    let name = d
        .get_str("name")
        .map_err(|e| Error::Corrupt(format!("labels: {e}")))?;
    let color = d
        .get_i64("color")
        .map_err(|e| Error::Corrupt(format!("labels: {e}")))?;
    Ok(label(id, name, color))
}

impl MongoSession {
    async fn ensure_label_indexes(&self) -> Result<()> {
        self.ensure_indexes(
            LABEL_CHATS,
            vec![(
                self.coll(LABEL_CHATS),
                vec![
                    IndexModel::builder()
                        .keys(doc! { "chatId": 1, "labelId": 1 })
                        .build(),
                    IndexModel::builder()
                        .keys(doc! { "labelId": 1, "chatId": 1 })
                        .build(),
                ],
            )],
        )
        .await
    }

    async fn strings(&self, filter: Document, field: &str) -> Result<Vec<String>> {
        let docs: Vec<Document> = self
            .coll(LABEL_CHATS)
            .find(filter)
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out: Vec<String> = docs
            .iter()
            .filter_map(|d| d.get_str(field).ok().map(str::to_string))
            .collect();
        out.sort_by(|a, b| {
            (a.parse::<u64>().ok(), a.as_str()).cmp(&(b.parse::<u64>().ok(), b.as_str()))
        });
        Ok(out)
    }
}

impl LabelBackend for MongoSession {
    async fn upsert_label(&self, l: &Label) -> Result<()> {
        self.coll(LABELS)
            .replace_one(
                doc! { "_id": &l.id },
                doc! { "_id": &l.id, "name": &l.name, "color": l.color },
            )
            .upsert(true)
            .await
            .map_err(|e| self.err(&e))
            .map(drop)
    }

    async fn get_label(&self, id: &str) -> Result<Option<Label>> {
        self.coll(LABELS)
            .find_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?
            .as_ref()
            .map(decode)
            .transpose()
    }

    async fn list_labels(&self) -> Result<Vec<Label>> {
        let docs: Vec<Document> = self
            .coll(LABELS)
            .find(doc! {})
            .await
            .map_err(|e| self.err(&e))?
            .try_collect()
            .await
            .map_err(|e| self.err(&e))?;
        let mut out = docs.iter().map(decode).collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| {
            (a.id.parse::<u64>().ok(), a.id.as_str())
                .cmp(&(b.id.parse::<u64>().ok(), b.id.as_str()))
        });
        Ok(out)
    }

    async fn delete_label(&self, id: &str) -> Result<bool> {
        self.coll(LABEL_CHATS)
            .delete_many(doc! { "labelId": id })
            .await
            .map_err(|e| self.err(&e))?;
        let r = self
            .coll(LABELS)
            .delete_one(doc! { "_id": id })
            .await
            .map_err(|e| self.err(&e))?;
        Ok(r.deleted_count > 0)
    }

    async fn set_label_chat(&self, label_id: &str, chat: &str, on: bool) -> Result<bool> {
        let key = format!("{label_id}|{chat}");
        if on {
            self.ensure_label_indexes().await?;
            let r = self
                .coll(LABEL_CHATS)
                .replace_one(
                    doc! { "_id": &key },
                    doc! { "_id": &key, "labelId": label_id, "chatId": chat },
                )
                .upsert(true)
                .await
                .map_err(|e| self.err(&e))?;
            Ok(r.upserted_id.is_some())
        } else {
            let r = self
                .coll(LABEL_CHATS)
                .delete_one(doc! { "_id": &key })
                .await
                .map_err(|e| self.err(&e))?;
            Ok(r.deleted_count > 0)
        }
    }

    async fn label_chats(&self, label_id: &str) -> Result<Vec<String>> {
        let mut v = self.strings(doc! { "labelId": label_id }, "chatId").await?;
        v.sort();
        Ok(v)
    }

    async fn chat_labels(&self, chat: &str) -> Result<Vec<String>> {
        self.strings(doc! { "chatId": chat }, "labelId").await
    }
}
