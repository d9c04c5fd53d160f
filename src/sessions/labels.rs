//! Labels: the session's label store kept in step with the account's app state, for the
//! `🏷️ Labels` routes (`api/labels.rs`) and the inbox (label mutations from any device).
//!
//! Owns: nothing long-lived. An API change first goes to WhatsApp through a live
//! [`engine::Session`]; only once the server took the patch is the store written (so a
//! refused change leaves it as it was, and a read right after the call sees it). The same
//! change then comes back through the app-state sync like one made on the phone, and
//! [`apply`] — the one place that turns label mutations into store writes and `label.*`
//! events — writes it again (idempotent) and publishes the event once. Never imports actix.

use super::{Result, SessionManager};
use crate::{
    engine::{self, chat_actions::AppStateChange},
    model::{
        events::{Event, LabelChatAssociation},
        labels::{Label, label},
    },
    store::Store,
};

/// Applies a label mutation to `session`'s label store; returns the event to publish
/// (`None` when nothing WAHA reports changed, e.g. an unknown label deleted).
///
/// # Errors
/// The store's error.
pub(crate) async fn apply(
    store: &Store,
    session: &str,
    change: AppStateChange,
) -> Result<Option<Event>> {
    let s = store.session(&store.session_name(session)?);
    let labels = s.labels();
    Ok(match change {
        AppStateChange::LabelEdit {
            id,
            name,
            color,
            deleted: false,
        } => {
            let l = label(&id, &name, color);
            labels.upsert(&l).await?;
            Some(Event::LabelUpsert(l))
        }
        AppStateChange::LabelEdit {
            id,
            name,
            color,
            deleted: true,
        } => {
            // WhatsApp's delete carries no name: report the label as it was known.
            let known = labels.get(&id).await?;
            labels.delete(&id).await?;
            Some(Event::LabelDeleted(
                known.unwrap_or_else(|| label(&id, &name, color)),
            ))
        }
        AppStateChange::LabelChat {
            label: id,
            chat,
            labeled,
        } => {
            labels.set_chat(&id, &chat, labeled).await?;
            let payload = LabelChatAssociation {
                label: labels.get(&id).await?,
                label_id: id,
                chat_id: chat,
            };
            Some(if labeled {
                Event::LabelChatAdded(payload)
            } else {
                Event::LabelChatDeleted(payload)
            })
        }
        AppStateChange::Archive { .. } => None,
    })
}

impl SessionManager {
    fn labels_of(&self, session: &str) -> Result<crate::store::SessionStore> {
        Ok(self.store().session(&self.store().session_name(session)?))
    }

    /// Every label of the session.
    ///
    /// # Errors
    /// The store's error.
    pub async fn list_labels(&self, session: &str) -> Result<Vec<Label>> {
        Ok(self.labels_of(session)?.labels().list().await?)
    }

    /// One label.
    ///
    /// # Errors
    /// The store's error.
    pub async fn label(&self, session: &str, id: &str) -> Result<Option<Label>> {
        Ok(self.labels_of(session)?.labels().get(id).await?)
    }

    /// Creates (`id: None`: the next free numeric id) or edits a label on every device of
    /// the account.
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn put_label(
        &self,
        engine: &engine::Session,
        id: Option<&str>,
        name: &str,
        color: i64,
    ) -> Result<Label> {
        let store = self.labels_of(engine.name())?;
        let id = match id {
            Some(id) => id.to_string(),
            None => {
                let max = store
                    .labels()
                    .list()
                    .await?
                    .iter()
                    .filter_map(|l| l.id.parse::<u64>().ok())
                    .max()
                    .unwrap_or(0);
                (max + 1).to_string()
            }
        };
        engine.put_label(&id, name, color).await?;
        let l = label(&id, name, color);
        store.labels().upsert(&l).await?;
        Ok(l)
    }

    /// Deletes a label on every device of the account.
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn delete_label(&self, engine: &engine::Session, id: &str) -> Result<()> {
        engine.delete_label(id).await?;
        // The label.deleted event needs the label's name: the inbox removes it from the
        // store when the change comes back (it reads it first).
        Ok(())
    }

    /// The chats carrying a label.
    ///
    /// # Errors
    /// The store's error.
    pub async fn label_chats(&self, session: &str, id: &str) -> Result<Vec<String>> {
        Ok(self.labels_of(session)?.labels().chats_of(id).await?)
    }

    /// The labels on a chat.
    ///
    /// # Errors
    /// The store's error.
    pub async fn chat_labels(&self, session: &str, chat: &str) -> Result<Vec<Label>> {
        let store = self.labels_of(session)?;
        let mut out = Vec::new();
        for id in store.labels().of_chat(chat).await? {
            if let Some(l) = store.labels().get(&id).await? {
                out.push(l);
            }
        }
        Ok(out)
    }

    /// Makes `labels` exactly the labels on `chat`: puts on the missing ones and takes off
    /// the others, on every device of the account.
    ///
    /// # Errors
    /// WhatsApp's refusal (what was done before it stays done), the store's error.
    pub async fn set_chat_labels(
        &self,
        engine: &engine::Session,
        chat: &str,
        labels: &[String],
    ) -> Result<()> {
        let store = self.labels_of(engine.name())?;
        let now = store.labels().of_chat(chat).await?;
        for id in now.iter().filter(|id| !labels.contains(id)) {
            engine.label_chat(id, chat, false).await?;
            store.labels().set_chat(id, chat, false).await?;
        }
        for id in labels.iter().filter(|id| !now.contains(id)) {
            engine.label_chat(id, chat, true).await?;
            store.labels().set_chat(id, chat, true).await?;
        }
        Ok(())
    }
}
