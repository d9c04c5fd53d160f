//! Chatting orchestration: what happens around one engine call for the `📤 Chatting` and
//! `💬 Chats` routes — quote resolution, the send, recording it in the session's history
//! and publishing it as WAHA events.
//!
//! Owns: nothing long-lived; every function borrows a live [`engine::Session`] (from the
//! WORKING gate, [`SessionManager::engine`]) for one call. Called by the thin handlers of
//! `api/chatting.rs`, `api/chats.rs` and `api/contacts.rs`; never imports actix. Errors are
//! [`Error`]s carrying data; `api/error.rs` turns them into WAHA's bodies.

use super::{Error, Result, SessionManager};
use crate::{
    engine::{
        self,
        messaging::{OutgoingText, Quote},
    },
    model::message::{MessageId, ReplyToMessage, WAMessage},
};

/// A text to send (`POST /api/sendText`, `GET /api/sendText`, forwards).
#[derive(Debug, Clone, Default)]
pub struct SendText {
    /// WAHA chat id (or a bare phone number).
    pub chat: String,
    /// Body.
    pub text: String,
    /// WAHA id of the message to reply to (`""` = none).
    pub reply_to: Option<String>,
    /// Mentioned chat ids (`"all"` = every group participant).
    pub mentions: Vec<String>,
    /// Pre-generated WhatsApp id.
    pub id: Option<String>,
    /// Generate a link preview for the text's first URL, fetching within these limits
    /// (`linkPreview`, WAHA's default `true` on `POST /api/sendText`); `None`: plain text.
    pub link_preview: Option<super::sending::FetchLimits>,
}

fn parse_message_id(id: &str) -> Result<MessageId> {
    MessageId::parse(id).ok_or_else(|| Error::BadMessageId(id.to_string()))
}

impl SessionManager {
    /// The account of a running session (for the `from` of what we send).
    pub(super) fn live_me(&self, name: &str) -> Option<crate::model::session::MeInfo> {
        self.live_state(name).and_then(|s| s.me)
    }

    /// Resolves a quoted message: its sender from the id, its text from the history.
    pub(super) async fn quote(
        &self,
        session: &str,
        reply_to: &str,
    ) -> Result<(Quote, ReplyToMessage)> {
        let parsed = parse_message_id(reply_to)?;
        let stored = self.messages().get(session, reply_to).await?;
        if stored.is_none() {
            // WAHA quotes unknown messages too (the phone shows the quote without text).
            tracing::debug!(
                session,
                id = reply_to,
                "quoted message not in history; quoting it without text"
            );
        }
        let body = stored.map(|m| m.body).unwrap_or_default();
        let sender = match (&parsed.participant, parsed.from_me) {
            (Some(p), _) => p.clone(),
            (None, true) => self.live_me(session).map(|m| m.id).unwrap_or_default(),
            (None, false) => parsed.chat_id.clone(),
        };
        let quote = Quote {
            wa_id: parsed.wa_id.clone(),
            sender: sender.clone(),
            body: body.clone(),
        };
        let reply = ReplyToMessage {
            id: parsed.wa_id,
            participant: Some(sender),
            body: Some(body),
            has_media: false,
            media: None,
            data: serde_json::Map::new(),
        };
        Ok((quote, reply))
    }

    /// Sends a text: resolves the quote, sends, records and publishes (`message.any`);
    /// returns the `WAMessage` as WAHA answers it.
    ///
    /// # Errors
    /// A bad quoted id, the history lookup of the quote, the engine's refusal.
    pub async fn send_text(&self, engine: &engine::Session, req: SendText) -> Result<WAMessage> {
        if let Some(limits) = req.link_preview
            && req.mentions.is_empty()
            && let Some(preview) = self.link_preview_for(&req.text, limits.clone()).await
        {
            let kind = super::sending::SendKind::LinkPreview {
                preview,
                image: None,
            };
            return self
                .send_kind(engine, req.chat, req.reply_to, req.id, kind, limits)
                .await;
        }
        let session = engine.name();
        let inbox = self.inbox(session).await?;
        let (quote, reply_to) = match req.reply_to.filter(|r| !r.is_empty()) {
            Some(r) => {
                let (q, m) = self.quote(session, &r).await?;
                (Some(q), Some(m))
            }
            None => (None, None),
        };
        let body = req.text.clone();
        let sent = engine
            .send_text(OutgoingText {
                chat: req.chat,
                text: req.text,
                quote,
                mentions: req.mentions,
                id: req.id,
            })
            .await?;
        let me = self.live_me(session);
        Ok(inbox.sent(me.as_ref(), &sent, body, reply_to).await)
    }

    /// Forwards a stored message to `chat`: a media message re-sends its stored file (see
    /// [`SessionManager::forward_media`]), anything else its text.
    ///
    /// # Errors
    /// A bad id, `MessageNotFound`, a media message without a stored file, the engine's
    /// refusal.
    pub async fn forward_message(
        &self,
        engine: &engine::Session,
        chat: String,
        message_id: &str,
        id: Option<String>,
    ) -> Result<WAMessage> {
        parse_message_id(message_id)?;
        let original = self
            .messages()
            .get(engine.name(), message_id)
            .await?
            .ok_or_else(|| Error::MessageNotFound(message_id.to_string()))?;
        if original.has_media {
            return self.forward_media(engine, chat, id, &original).await;
        }
        let req = SendText {
            chat,
            text: original.body,
            id,
            ..SendText::default()
        };
        self.send_text(engine, req).await
    }

    /// Read receipts for WAHA message ids (`participant` defaults to the first id's).
    ///
    /// # Errors
    /// A bad id, the engine's refusal.
    pub async fn send_seen(
        &self,
        engine: &engine::Session,
        chat: &str,
        message_ids: &[String],
        participant: Option<String>,
    ) -> Result<()> {
        let mut participant = participant;
        let mut wa_ids = Vec::with_capacity(message_ids.len());
        for id in message_ids {
            let parsed = parse_message_id(id)?;
            if participant.is_none() {
                participant = parsed.participant.clone();
            }
            wa_ids.push(parsed.wa_id);
        }
        engine
            .send_seen(chat, participant.as_deref(), &wa_ids)
            .await?;
        Ok(())
    }

    /// Typing on (`true`) or off in `chat`.
    ///
    /// # Errors
    /// The engine's refusal.
    pub async fn typing(&self, engine: &engine::Session, chat: &str, on: bool) -> Result<()> {
        engine.typing(chat, on).await?;
        Ok(())
    }

    /// Reacts to a message (`""` removes the reaction).
    ///
    /// # Errors
    /// A bad id, the engine's refusal.
    pub async fn react(
        &self,
        engine: &engine::Session,
        message_id: &str,
        emoji: &str,
    ) -> Result<()> {
        let target = parse_message_id(message_id)?;
        engine
            .react(
                &target.chat_id,
                &target.wa_id,
                target.from_me,
                target.participant.as_deref(),
                emoji,
            )
            .await?;
        Ok(())
    }

    /// Edits one of our messages, then the history.
    ///
    /// # Errors
    /// A bad id, the engine's refusal.
    pub async fn edit_message(
        &self,
        engine: &engine::Session,
        chat: &str,
        message_id: &str,
        text: String,
    ) -> Result<()> {
        let target = parse_message_id(message_id)?;
        let new_body = text.clone();
        engine.edit(chat, &target.wa_id, text).await?;
        // Logged, not propagated: WhatsApp has the edit already, and WAHA answers 200 once
        // the engine accepted it. A 500 here would make clients retry an edit that happened.
        if let Err(e) = self
            .messages()
            .edit(engine.name(), &target.wa_id, &new_body)
            .await
        {
            tracing::error!(
                session = engine.name(),
                id = message_id,
                error = %e,
                "message edited on WhatsApp but not in the history"
            );
        }
        Ok(())
    }

    /// Revokes ("deletes for everyone") one of our messages, then marks it in the history.
    ///
    /// # Errors
    /// A bad id, the engine's refusal.
    pub async fn delete_message(
        &self,
        engine: &engine::Session,
        chat: &str,
        message_id: &str,
    ) -> Result<()> {
        let target = parse_message_id(message_id)?;
        engine.revoke(chat, &target.wa_id).await?;
        // Logged, not propagated, for the same reason as edits: the revoke happened on
        // WhatsApp and WAHA answers 200 for it.
        if let Err(e) = self.messages().revoke(engine.name(), &target.wa_id).await {
            tracing::error!(
                session = engine.name(),
                id = message_id,
                error = %e,
                "message revoked on WhatsApp but not in the history"
            );
        }
        Ok(())
    }

    /// Marks a chat's unread messages (at most `limit`, none before `since_unix_s`) as READ
    /// and sends the read receipts, one per sender (groups need it); returns their ids.
    ///
    /// # Errors
    /// The history, the engine's refusal.
    pub async fn read_chat_messages(
        &self,
        engine: &engine::Session,
        chat: &str,
        limit: Option<u32>,
        since_unix_s: Option<i64>,
    ) -> Result<Vec<String>> {
        let read = self
            .messages()
            .mark_read(engine.name(), chat, limit, since_unix_s)
            .await?;
        let mut by_sender: std::collections::BTreeMap<Option<String>, Vec<String>> =
            std::collections::BTreeMap::new();
        for m in &read {
            by_sender
                .entry(m.participant.clone())
                .or_default()
                .push(m.wa_id());
        }
        for (participant, ids) in by_sender {
            engine.send_seen(chat, participant.as_deref(), &ids).await?;
        }
        Ok(read.into_iter().map(|m| m.id).collect())
    }

    /// Whether `phone` (digits) has WhatsApp; its chat id when it does.
    ///
    /// # Errors
    /// The engine's refusal.
    pub async fn check_exists(
        &self,
        engine: &engine::Session,
        phone: &str,
    ) -> Result<Option<String>> {
        Ok(engine.check_exists(phone).await?)
    }
}
