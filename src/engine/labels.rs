//! Labels through the engine: whatsapp-rust's `client.labels()` app-state mutations
//! (create or edit, delete, put on / take off a chat). What a label mutation synced from
//! any device means is [`super::chat_actions::AppStateChange`].
//!
//! Called by the domain (`sessions::labels`) on the caller's task for as long as the handle
//! is live; each call sends one app-state patch and returns once the server took it.

use super::{
    Error, Session,
    chat_actions::{app_state_err, chat_jid},
};

impl Session {
    /// Creates or edits label `id` (WhatsApp's colour index `color`).
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`], [`Error::Refused`].
    pub async fn put_label(&self, id: &str, name: &str, color: i64) -> Result<(), Error> {
        let client = self.client()?;
        let color =
            i32::try_from(color).map_err(|_| Error::BadRequest("color out of range".into()))?;
        client
            .labels()
            .create_label(id, name, color)
            .await
            .map_err(app_state_err)
    }

    /// Deletes label `id`.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`], [`Error::Refused`].
    pub async fn delete_label(&self, id: &str) -> Result<(), Error> {
        let client = self.client()?;
        client
            .labels()
            .delete_label(id)
            .await
            .map_err(app_state_err)
    }

    /// Puts label `id` on `chat` (`on`) or takes it off.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`], [`Error::Refused`].
    pub async fn label_chat(&self, id: &str, chat: &str, on: bool) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(chat)?;
        let labels = client.labels();
        let sent = if on {
            labels.add_chat_label(id, &jid).await
        } else {
            labels.remove_chat_label(id, &jid).await
        };
        sent.map_err(app_state_err)
    }
}
