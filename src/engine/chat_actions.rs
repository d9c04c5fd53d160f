//! Chat management through the engine: whatsapp-rust's `client.chat_actions()`
//! app-state mutations (archive, unarchive, mark unread), and [`AppStateChange`], what an
//! app-state mutation (a chat's or a label's, see `engine/labels.rs`) synced from any device
//! of the account means.
//!
//! Operations: called by the domain (`sessions::chat_actions`) on the caller's task for
//! as long as the handle is live; each sends one app-state patch and returns once the
//! server took it. Changes: translated by `engine::run`'s event handler, one per
//! `Event::ArchiveUpdate` (full-sync replays included: a fresh device learns the state).

use whatsapp_rust::{
    PinDuration, features::AppStateError, prelude::*, request::IqError, waproto::whatsapp as wa,
};

use super::{
    Error, Session,
    messaging::{parse_chat, waha_id},
};

/// What an app-state mutation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AppStateChange {
    /// A label was created, edited or deleted.
    LabelEdit {
        /// Label id.
        id: String,
        /// Its name.
        name: String,
        /// WhatsApp's colour index.
        color: i64,
        /// Deleted rather than created or edited.
        deleted: bool,
    },
    /// A label was put on a chat (`labeled: true`) or taken off.
    LabelChat {
        /// Label id.
        label: String,
        /// WAHA chat id.
        chat: String,
        /// On or off.
        labeled: bool,
    },
    /// A chat was archived (`archived: true`) or unarchived, on any of the account's
    /// devices (this one included: the client re-reads its own patch).
    Archive {
        /// WAHA chat id.
        chat: String,
        /// Archived or unarchived.
        archived: bool,
        /// Unix seconds.
        timestamp: i64,
    },
}

/// whatsapp-rust's app-state errors: a request it refuses to encode is a bad request,
/// anything else (no key yet, the server refused the patch) a failed call.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "AppStateError is non_exhaustive; anything but a bad request is a failed call"
)]
pub(super) fn app_state_err(e: AppStateError) -> Error {
    match e {
        AppStateError::InvalidRequest(text) => Error::BadRequest(text),
        other => Error::Refused {
            code: 502,
            text: format!("{other:#}"),
        },
    }
}

pub(super) fn chat_jid(chat: &str) -> Result<Jid, Error> {
    parse_chat(chat).ok_or_else(|| Error::BadRequest(format!("invalid chat id: {chat}")))
}

impl Session {
    /// Archives (`archived: true`) or unarchives a chat on every device of the account.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad chat id, [`Error::Refused`].
    pub async fn archive_chat(&self, chat: &str, archived: bool) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(chat)?;
        let actions = client.chat_actions();
        let sent = if archived {
            actions.archive_chat(&jid, None).await
        } else {
            actions.unarchive_chat(&jid, None).await
        };
        sent.map_err(app_state_err)
    }

    /// Saves (or renames) a contact on every device of the account and in the phone's
    /// address book: WhatsApp's `contact` app-state mutation. Phone-number ids only.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad or LID id, [`Error::Refused`].
    pub async fn save_contact(
        &self,
        id: &str,
        full_name: &str,
        first_name: &str,
    ) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(id)?;
        let first = Some(first_name.to_string()).filter(|f| !f.is_empty());
        client
            .chat_actions()
            .save_contact(&jid, Some(full_name.to_string()), first, true)
            .await
            .map_err(app_state_err)
    }

    /// Marks a chat unread on every device of the account.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad chat id, [`Error::Refused`].
    pub async fn mark_chat_unread(&self, chat: &str) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(chat)?;
        client
            .chat_actions()
            .mark_chat_as_read(&jid, false, None)
            .await
            .map_err(app_state_err)
    }
}

/// How long a pin lasts: WhatsApp's three choices, by WAHA's `duration` in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PinFor {
    /// 24 hours (86400).
    Day,
    /// 7 days (604800).
    Week,
    /// 30 days (2592000).
    Month,
}

impl PinFor {
    /// The choice for WAHA's `duration` (seconds), if it is one of WhatsApp's.
    #[must_use]
    pub fn from_secs(secs: f64) -> Option<Self> {
        [
            (86_400.0, Self::Day),
            (604_800.0, Self::Week),
            (2_592_000.0, Self::Month),
        ]
        .into_iter()
        .find(|(s, _)| (*s - secs).abs() < f64::EPSILON)
        .map(|(_, p)| p)
    }
}

/// The message a pin is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinTarget<'a> {
    /// WAHA chat id.
    pub chat: &'a str,
    /// WhatsApp's message id.
    pub wa_id: &'a str,
    /// Whether we sent it.
    pub from_me: bool,
    /// Its sender in a group.
    pub participant: Option<&'a str>,
}

impl Session {
    /// The profile picture URL of a chat (a contact or a group); `None` when it has none.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad chat id, [`Error::Refused`].
    pub async fn chat_picture(&self, chat: &str) -> Result<Option<String>, Error> {
        let client = self.client()?;
        let jid = chat_jid(chat)?;
        match client.contacts().get_profile_picture(&jid, false).await {
            Ok(p) => Ok(p.map(|p| p.url)),
            Err(whatsapp_rust::features::ContactError::Iq(IqError::ServerError {
                code,
                text,
                ..
            })) => Err(Error::Refused { code, text }),
            Err(e) => Err(Error::Send(e.to_string())),
        }
    }

    /// Deletes a chat (`clear_only`: only its messages) on every device of the account.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad chat id, [`Error::Refused`].
    pub async fn delete_chat(&self, chat: &str, clear_only: bool) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(chat)?;
        let actions = client.chat_actions();
        let sent = if clear_only {
            actions.clear_chat(&jid, false, false, None).await
        } else {
            actions.delete_chat(&jid, false, None).await
        };
        sent.map_err(app_state_err)
    }

    /// Pins (`Some(duration)`) or unpins a message for everyone in the chat.
    ///
    /// # Errors
    /// [`Error::NotRunning`], [`Error::BadRequest`] for a bad chat id, [`Error::Send`].
    pub async fn pin_message(
        &self,
        target: &PinTarget<'_>,
        pin: Option<PinFor>,
    ) -> Result<(), Error> {
        let client = self.client()?;
        let jid = chat_jid(target.chat)?;
        let key = wa::MessageKey {
            remote_jid: Some(jid.to_string()),
            from_me: Some(target.from_me),
            id: Some(target.wa_id.to_string()),
            participant: target
                .participant
                .and_then(super::messaging::parse_chat)
                .map(|p| p.to_string()),
        };
        let sent = match pin {
            Some(p) => {
                let duration = match p {
                    PinFor::Day => PinDuration::Hours24,
                    PinFor::Week => PinDuration::Days7,
                    PinFor::Month => PinDuration::Days30,
                };
                client.pin_message(jid, key, duration).await
            }
            None => client.unpin_message(jid, key).await,
        };
        sent.map_err(|e| Error::Send(e.to_string()))
    }
}

/// The change an app-state event reports, when it is one wharf publishes.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "Event is non_exhaustive; only the chat mutations WAHA has events for map"
)]
pub fn change(event: &Event) -> Option<AppStateChange> {
    match event {
        Event::ArchiveUpdate(u) => Some(AppStateChange::Archive {
            chat: waha_id(&u.jid),
            archived: u.action.archived.unwrap_or(false),
            timestamp: u.timestamp.timestamp(),
        }),
        Event::LabelEditUpdate(u) => Some(AppStateChange::LabelEdit {
            id: u.label_id.clone(),
            name: u.action.name.clone().unwrap_or_default(),
            color: i64::from(u.action.color.unwrap_or(0)),
            deleted: u.action.deleted.unwrap_or(false),
        }),
        Event::LabelAssociationUpdate(u) => Some(AppStateChange::LabelChat {
            label: u.label_id.clone(),
            chat: waha_id(&u.chat_jid),
            labeled: u.action.labeled.unwrap_or(false),
        }),
        _ => None,
    }
}
