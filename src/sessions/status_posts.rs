//! Status (stories) posts for the `🟢 Status` routes: text, image, voice and video
//! statuses to a list of contacts, and their deletion. (Not the session status machine,
//! which is `sessions::status`.)
//!
//! Owns: nothing long-lived. Media statuses go through the same staging, conversion and
//! recording as `sendImage`/`sendVoice`/`sendVideo` (`sessions::sending`); a text status is
//! recorded the same way, so both come back as WAHA's `WAMessage` (`to:
//! status@broadcast`) with a `message.any` event. Called by `api/status.rs` with the
//! engine handle of the WORKING gate.

use super::{
    Result, SessionManager,
    sending::{FetchLimits, SendMedia},
};
use crate::{
    engine::{
        self,
        status::{STATUS_CHAT, TextStatus},
    },
    model::message::{MessageId, WAMessage},
};

/// A text status to post.
#[derive(Debug, Clone)]
pub struct TextPost {
    /// Body.
    pub text: String,
    /// `#rrggbb` (WAHA's `backgroundColor`).
    pub background_color: String,
    /// WhatsApp's font number.
    pub font: i64,
    /// Pre-generated id.
    pub id: Option<String>,
    /// Who sees it.
    pub contacts: Vec<String>,
}

fn bad(msg: String) -> super::Error {
    super::Error::Engine(engine::Error::BadRequest(msg))
}

/// `#rrggbb` (or `#aarrggbb`) → `0xAARRGGBB`, opaque unless an alpha is given.
fn argb(color: &str) -> Option<u32> {
    let hex = color.trim().strip_prefix('#')?;
    let value = u32::from_str_radix(hex, 16).ok()?;
    match hex.len() {
        6 => Some(0xFF00_0000 | value),
        8 => Some(value),
        _ => None,
    }
}

/// The WhatsApp id of a status: a bare id, or WAHA's serialized
/// `true_status@broadcast_<id>` form.
fn status_wa_id(id: &str) -> Result<String> {
    let id = id.trim();
    if id.is_empty() {
        return Err(bad("id should not be empty".into()));
    }
    if id.contains('_') {
        return MessageId::parse(id)
            .map(|m| m.wa_id)
            .ok_or_else(|| super::Error::BadMessageId(id.to_string()));
    }
    Ok(id.to_string())
}

impl SessionManager {
    /// Posts a text status and records it.
    ///
    /// # Errors
    /// A bad colour or recipient list (nothing sent), the engine's refusal.
    pub async fn post_text_status(
        &self,
        engine: &engine::Session,
        post: TextPost,
    ) -> Result<WAMessage> {
        let background_argb = argb(&post.background_color).ok_or_else(|| {
            bad(format!(
                "backgroundColor must be a hex colour like #38b42f, got {:?}",
                post.background_color
            ))
        })?;
        let text = post.text.clone();
        let sent = engine
            .post_text_status(
                TextStatus {
                    text: post.text,
                    background_argb,
                    font: post.font,
                },
                &post.contacts,
                post.id,
            )
            .await?;
        self.record_sent(engine.name(), &sent, |m| m.body = text)
            .await
    }

    /// Posts an image, voice or video status (`req.chat` is ignored) and records it.
    ///
    /// # Errors
    /// As `send_media`; a bad recipient list.
    pub async fn post_media_status(
        &self,
        engine: &engine::Session,
        mut req: SendMedia,
        limits: FetchLimits,
        contacts: Vec<String>,
    ) -> Result<WAMessage> {
        if contacts.is_empty() {
            return Err(bad(
                "contacts: list the contacts the status goes to (wharf keeps no address book)"
                    .into(),
            ));
        }
        req.chat = STATUS_CHAT.into();
        req.reply_to = None;
        self.send_media_to(engine, req, limits, contacts).await
    }

    /// Deletes (revokes) our status `id` for `contacts`.
    ///
    /// # Errors
    /// A bad id or recipient list, the engine's refusal.
    pub async fn delete_status(
        &self,
        engine: &engine::Session,
        id: &str,
        contacts: &[String],
    ) -> Result<()> {
        let wa_id = status_wa_id(id)?;
        engine.revoke_status(&wa_id, contacts).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn colours_become_argb() {
        assert_eq!(super::argb("#38b42f"), Some(0xFF38_B42F));
        assert_eq!(super::argb("#8038b42f"), Some(0x8038_B42F));
        assert_eq!(super::argb("38b42f"), None);
        assert_eq!(super::argb("#xyz"), None);
    }

    #[test]
    fn status_ids_are_bare_or_serialized() {
        assert_eq!(super::status_wa_id("ABC").unwrap(), "ABC");
        assert_eq!(
            super::status_wa_id("true_status@broadcast_ABC").unwrap(),
            "ABC"
        );
        assert!(super::status_wa_id(" ").is_err());
    }
}
