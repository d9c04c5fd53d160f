//! Status (stories) through the engine: posting to `status@broadcast` for a list of
//! contacts and revoking a post, via whatsapp-rust's `client.status()`.
//!
//! Owns: the recipient resolution a status send needs (status is LID-addressed: a
//! recipient whose LID the device does not know yet would be dropped silently, so their
//! LIDs are learned with one usync first) and the text-status message. Media statuses are
//! built by `outgoing_media` (the same pipeline as `sendImage`) and handed to
//! [`send_status`]. Called by the domain (`sessions::status_posts`) on the caller's task,
//! for as long as the handle is live; holds nothing between calls.

use std::sync::Arc;

use whatsapp_rust::{
    Jid, StatusSendOptions, buffa::MessageField, prelude::*, waproto::whatsapp as wa,
};

use super::{
    Error, Session,
    messaging::{Sent, parse_chat},
    outgoing_media::SentMessage,
};

/// WAHA's chat id of statuses.
pub const STATUS_CHAT: &str = "status@broadcast";

/// A text status.
#[derive(Debug, Clone, PartialEq)]
pub struct TextStatus {
    /// Body.
    pub text: String,
    /// Background, `0xAARRGGBB`.
    pub background_argb: u32,
    /// WhatsApp's font number (0 = system).
    pub font: i64,
}

/// The recipients as user JIDs (`400` for anything else), with their LIDs learned.
async fn recipients(client: &Arc<Client>, contacts: &[String]) -> Result<Vec<Jid>, Error> {
    let mut jids = Vec::with_capacity(contacts.len());
    for c in contacts {
        let jid = parse_chat(c)
            .filter(|j| j.is_pn() || j.is_lid())
            .ok_or_else(|| {
                Error::BadRequest(format!(
                    "contacts: {c:?} is not a contact id (123@c.us or 123@lid)"
                ))
            })?;
        jids.push(jid.to_non_ad());
    }
    if jids.is_empty() {
        return Err(Error::BadRequest(
            "contacts: list the contacts the status goes to (wharf keeps no address book)".into(),
        ));
    }
    let pns: Vec<Jid> = jids.iter().filter(|j| j.is_pn()).cloned().collect();
    if !pns.is_empty() {
        // The usync answer carries each number's LID, which the client persists: without
        // it the status send leaves that contact out.
        client
            .contacts()
            .is_on_whatsapp(&pns)
            .await
            .map_err(|e| Error::Send(format!("status recipients: {e}")))?;
    }
    Ok(jids)
}

/// Sends `message` as a status to `contacts`; returns its WhatsApp id.
///
/// # Errors
/// Bad or empty recipients (`BadRequest`), WhatsApp refused the send.
pub(super) async fn send_status(
    client: &Arc<Client>,
    message: wa::Message,
    contacts: &[String],
    id: Option<String>,
) -> Result<String, Error> {
    let to = recipients(client, contacts).await?;
    let options = StatusSendOptions {
        message_id: id,
        ..Default::default()
    };
    client
        .status()
        .send_raw(message, &to, options)
        .await
        .map(|r| r.message_id)
        .map_err(|e| Error::Send(e.to_string()))
}

fn font(n: i64) -> wa::message::extended_text_message::FontType {
    use wa::message::extended_text_message::FontType as F;
    match n {
        1 => F::SYSTEM_TEXT,
        2 => F::FB_SCRIPT,
        6 => F::SYSTEM_BOLD,
        7 => F::MORNINGBREEZE_REGULAR,
        8 => F::CALISTOGA_REGULAR,
        9 => F::EXO2_EXTRABOLD,
        10 => F::COURIERPRIME_BOLD,
        _ => F::SYSTEM,
    }
}

impl Session {
    /// Posts a text status for `contacts`.
    ///
    /// # Errors
    /// Stale handle, bad recipients, WhatsApp refused it.
    pub async fn post_text_status(
        &self,
        status: TextStatus,
        contacts: &[String],
        id: Option<String>,
    ) -> Result<SentMessage, Error> {
        let client = self.client()?;
        let message = wa::Message {
            extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                text: Some(status.text),
                background_argb: Some(status.background_argb),
                font: Some(font(status.font)),
                ..Default::default()
            }),
            ..Default::default()
        };
        let raw = serde_json::to_value(&message).unwrap_or_default();
        let wa_id = send_status(client, message, contacts, id).await?;
        Ok(SentMessage {
            sent: Sent {
                wa_id,
                chat: STATUS_CHAT.into(),
                timestamp: chrono::Utc::now().timestamp(),
            },
            raw,
        })
    }

    /// Revokes our status `id` for `contacts` (the ones it was posted to).
    ///
    /// # Errors
    /// Stale handle, bad recipients, WhatsApp refused it.
    pub async fn revoke_status(&self, id: &str, contacts: &[String]) -> Result<(), Error> {
        let client = self.client()?;
        let to = recipients(client, contacts).await?;
        client
            .status()
            .revoke(id, &to, StatusSendOptions::default())
            .await
            .map(|_| ())
            .map_err(|e| Error::Send(e.to_string()))
    }
}
