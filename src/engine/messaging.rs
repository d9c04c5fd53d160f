//! Messages through the engine: whatsapp-rust's inbound events and outbound calls,
//! translated to and from plain wharf types (no whatsapp-rust type leaves this module).
//!
//! Owns: WAHA chat-id ↔ `Jid` mapping, [`InboundMessage`] extraction from
//! `Event::Messages`, receipts → acks, and the chatting operations on [`Session`] (send
//! text, seen, typing, reaction, edit, revoke, check-exists). Events: called by
//! `engine::run` for each event of one session's client. Operations: called by the domain
//! (`sessions::chatting`) on the caller's task, for as long as the handle is live.

use std::sync::Arc;

use whatsapp_rust::{Jid, prelude::*, send::RevokeType, waproto::whatsapp as wa};

use super::{Error, Session};

/// `123@c.us` / `123` / `x@g.us` / `x@lid` → a `Jid`.
pub fn parse_chat(chat: &str) -> Option<Jid> {
    let chat = chat.trim();
    let full = match chat.split_once('@') {
        None if !chat.is_empty() && chat.chars().all(|c| c.is_ascii_digit()) => {
            format!("{chat}@s.whatsapp.net")
        }
        None => return None,
        Some((user, "c.us")) => format!("{user}@s.whatsapp.net"),
        Some(_) => chat.to_string(),
    };
    full.parse::<Jid>().ok().filter(|j| !j.user.is_empty())
}

/// A `Jid` as WAHA writes chat ids (`@c.us` for phone numbers, no device part).
pub fn waha_id(jid: &Jid) -> String {
    let server = jid.server.to_string();
    let server = if server == "s.whatsapp.net" {
        "c.us".to_string()
    } else {
        server
    };
    format!("{}@{server}", jid.user)
}

/// What a received (or own, from another device) message means for wharf.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundKind {
    /// Text (or a caption); `reply_to` is the quoted WhatsApp id.
    Text {
        /// Body.
        body: String,
        /// Quoted message id.
        reply_to: Option<String>,
        /// Quoted message's sender (WAHA id).
        reply_participant: Option<String>,
        /// Mentioned WAHA ids.
        mentions: Vec<String>,
    },
    /// A reaction to `target_id` (`""` removes it).
    Reaction {
        /// Reacted-to WhatsApp id.
        target_id: String,
        /// Emoji.
        text: String,
    },
    /// An edit of `target_id`.
    Edit {
        /// Edited WhatsApp id.
        target_id: String,
        /// New body.
        body: String,
    },
    /// A revoke ("delete for everyone") of `target_id`.
    Revoke {
        /// Revoked WhatsApp id.
        target_id: String,
    },
    /// A media message (image, video, audio, voice, document, sticker).
    Media {
        /// Caption (`""` without one).
        body: String,
        /// The media and how to fetch it.
        media: super::media::InboundMedia,
        /// Reply/mentions.
        context: Context,
    },
    /// A shared (or live) location.
    Location {
        /// Where.
        location: Location,
        /// Reply/mentions.
        context: Context,
    },
    /// One or more contact cards.
    Contacts {
        /// The vCards.
        vcards: Vec<String>,
        /// Reply/mentions.
        context: Context,
    },
    /// A new poll.
    Poll {
        /// Question.
        name: String,
        /// Option names.
        options: Vec<String>,
        /// More than one answer allowed.
        multiple_answers: bool,
        /// Reply/mentions.
        context: Context,
        /// What decrypting its votes needs (absent when the message carries no secret).
        key: Option<super::polls::PollKey>,
    },
    /// A vote on a poll (encrypted; [`super::polls::VoteRef::decrypt`] opens it).
    PollVote {
        /// The poll's WhatsApp id.
        poll_id: String,
        /// The poll key's `fromMe`, as the voter sees it.
        poll_from_me: bool,
        /// Unix seconds of the vote.
        timestamp: i64,
        /// The encrypted vote.
        vote: super::polls::VoteRef,
    },
    /// An event invitation (`eventMessage`).
    EventCreation {
        /// Name, description, times, location (WAHA's `EventMessage` shape, as JSON).
        event: serde_json::Value,
        /// Reply/mentions.
        context: Context,
        /// What decrypting its responses needs.
        key: Option<super::polls::PollKey>,
    },
    /// A response (RSVP) to an event invitation.
    EventResponse {
        /// The event message's WhatsApp id.
        event_id: String,
        /// The event key's `fromMe`, as the responder sees it.
        event_from_me: bool,
        /// The encrypted response.
        response: super::polls::EventResponseRef,
    },
    /// Anything else: the body is its caption or empty.
    Other {
        /// Caption, if any.
        body: String,
        /// WhatsApp's message type name.
        kind: String,
    },
    /// A message pinned (`pinned`) or unpinned for everyone in the chat.
    Pin {
        /// The pinned message's WhatsApp id.
        target_id: String,
        /// Whether the pinned message is ours (the pinner's view: `key.fromMe`).
        target_from_me: bool,
        /// Pin (`true`) or unpin.
        pinned: bool,
    },
}

/// The reply and mentions of a message (its `contextInfo`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Context {
    /// Quoted message id.
    pub reply_to: Option<String>,
    /// Quoted message's sender (WAHA id).
    pub reply_participant: Option<String>,
    /// Whether the quoted message has media (from the quote WhatsApp embeds).
    pub reply_has_media: bool,
    /// The quoted text or caption, as embedded in the reply.
    pub reply_body: Option<String>,
    /// Mentioned WAHA ids.
    pub mentions: Vec<String>,
}

/// A location (WAHA's `WALocation` before formatting).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Location {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Live location.
    pub live: bool,
    /// Place name.
    pub name: Option<String>,
    /// Place address.
    pub address: Option<String>,
    /// Place URL.
    pub url: Option<String>,
    /// Comment / caption.
    pub description: Option<String>,
    /// JPEG thumbnail.
    pub thumbnail: Option<Vec<u8>>,
}

/// A message as the session runtime records and publishes it.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// WhatsApp message id.
    pub wa_id: String,
    /// WAHA chat id.
    pub chat: String,
    /// WAHA id of the sender (the participant in groups).
    pub sender: String,
    /// The sender's other id (its phone number when `sender` is a LID, or the reverse),
    /// when the server told it.
    pub sender_alt: Option<String>,
    /// Sent by this account (from another of its devices).
    pub from_me: bool,
    /// Group chat.
    pub is_group: bool,
    /// Unix seconds.
    pub timestamp: i64,
    /// Sender's push name.
    pub push_name: String,
    /// What it is.
    pub kind: InboundKind,
}

/// A delivery/read receipt for our messages.
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    /// WhatsApp ids acknowledged.
    pub ids: Vec<String>,
    /// WAHA chat id.
    pub chat: String,
    /// Who acknowledged (WAHA id).
    pub from: String,
    /// The acknowledger's other id, when the receipt carried it (a LID sender's phone
    /// number, `participant_pn`), so the session learns the pair from receipts too.
    pub from_alt: Option<String>,
    /// WAHA ack: 2 DEVICE, 3 READ, 4 PLAYED.
    pub ack: i32,
}

/// Someone's presence in a chat (`presence.update`).
#[derive(Debug, Clone, PartialEq)]
pub struct Presence {
    /// WAHA chat id.
    pub chat: String,
    /// Who (WAHA id).
    pub participant: String,
    /// `online`, `offline`, `typing`, `recording` or `paused` (WAHA's names).
    pub state: String,
    /// Last seen, unix seconds.
    pub last_seen: Option<i64>,
}

/// The presence of an `Event::Presence` / `Event::ChatPresence`.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "Event is non_exhaustive; only presence kinds map"
)]
pub fn presence(event: &Event) -> Option<Presence> {
    use whatsapp_rust::wacore::types::presence::{ChatPresence, ChatPresenceMedia};
    match event {
        Event::Presence(p) => Some(Presence {
            chat: waha_id(&p.from),
            participant: waha_id(&p.from),
            state: if p.unavailable { "offline" } else { "online" }.into(),
            last_seen: p.last_seen.map(|t| t.timestamp()),
        }),
        Event::ChatPresence(p) => Some(Presence {
            chat: waha_id(&p.source.chat),
            participant: waha_id(&p.source.sender),
            state: match (p.state, p.media) {
                (ChatPresence::Composing, ChatPresenceMedia::Audio) => "recording",
                (ChatPresence::Composing, _) => "typing",
                (ChatPresence::Paused, _) => "paused",
            }
            .into(),
            last_seen: None,
        }),
        _ => None,
    }
}

/// The server's ack of one of our messages (WAHA's `SERVER`, ack 1), or its refusal
/// (`ERROR`, ack -1).
pub fn server_ack(event: &Event) -> Option<Ack> {
    let Event::ServerAck(a) = event else {
        return None;
    };
    if a.class.as_deref() != Some("message") {
        return None;
    }
    let chat = a.from.as_ref().map(waha_id)?;
    // A nack (e.g. 403: not a member, or a non-admin in an admin-only group): nobody got
    // the message, which WAHA reports as ack ERROR (-1).
    let ack = if a.error.is_some() { -1 } else { 1 };
    Some(Ack {
        ids: vec![a.id.clone()],
        chat: chat.clone(),
        from: chat,
        from_alt: None,
        ack,
    })
}

/// What an outgoing message became.
#[derive(Debug, Clone, PartialEq)]
pub struct Sent {
    /// WhatsApp id.
    pub wa_id: String,
    /// WAHA chat id.
    pub chat: String,
    /// Unix seconds.
    pub timestamp: i64,
}

fn context_of(c: Option<&wa::ContextInfo>) -> Context {
    let Some(c) = c else {
        return Context::default();
    };
    let quoted = c.quoted_message.as_option();
    Context {
        reply_to: c.stanza_id.clone(),
        reply_participant: c
            .participant
            .as_deref()
            .and_then(parse_chat)
            .map(|j| waha_id(&j)),
        reply_has_media: quoted
            .is_some_and(|q| super::media::inbound_media(&Arc::new(q.clone())).is_some()),
        reply_body: quoted.and_then(|q| {
            q.text_content()
                .or_else(|| q.get_caption())
                .map(str::to_string)
        }),
        mentions: c
            .mentioned_jid
            .iter()
            .filter_map(|j| parse_chat(j))
            .map(|j| waha_id(&j))
            .collect(),
    }
}

/// The `contextInfo` of whichever sub-message `msg` carries.
fn context_info(msg: &wa::Message) -> Option<&wa::ContextInfo> {
    let candidates = [
        msg.extended_text_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.image_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.video_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.ptv_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.audio_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        super::media::document(msg).and_then(|x| x.context_info.as_option()),
        msg.sticker_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.location_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.live_location_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.contact_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
        msg.contacts_array_message
            .as_option()
            .and_then(|x| x.context_info.as_option()),
    ];
    candidates.into_iter().flatten().next()
}

fn poll_creation(msg: &wa::Message) -> Option<&wa::message::PollCreationMessage> {
    [
        msg.poll_creation_message.as_option(),
        msg.poll_creation_message_v2.as_option(),
        msg.poll_creation_message_v3.as_option(),
        msg.poll_creation_message_v5.as_option(),
        msg.poll_creation_message_v6.as_option(),
    ]
    .into_iter()
    .flatten()
    .next()
}

fn message_kind(full: &wa::Message) -> InboundKind {
    let msg = full.get_base_message();
    if let Some(r) = msg.reaction_message.as_option() {
        return InboundKind::Reaction {
            target_id: r
                .key
                .as_option()
                .and_then(|k| k.id.clone())
                .unwrap_or_default(),
            text: r.text.clone().unwrap_or_default(),
        };
    }
    if let Some(p) = msg.protocol_message.as_option() {
        let target_id = p
            .key
            .as_option()
            .and_then(|k| k.id.clone())
            .unwrap_or_default();
        match p.r#type {
            Some(wa::message::protocol_message::Type::REVOKE) => {
                return InboundKind::Revoke { target_id };
            }
            Some(wa::message::protocol_message::Type::MESSAGE_EDIT) => {
                let body = p
                    .edited_message
                    .as_option()
                    .and_then(|m| m.text_content().map(str::to_string))
                    .unwrap_or_default();
                return InboundKind::Edit { target_id, body };
            }
            _ => {
                return InboundKind::Other {
                    body: String::new(),
                    kind: "protocol".into(),
                };
            }
        }
    }
    if let Some(p) = msg.pin_in_chat_message.as_option() {
        let key = p.key.as_option();
        return InboundKind::Pin {
            target_id: key.and_then(|k| k.id.clone()).unwrap_or_default(),
            target_from_me: key.and_then(|k| k.from_me).unwrap_or(false),
            pinned: p.r#type != Some(wa::message::pin_in_chat_message::Type::UNPIN_FOR_ALL),
        };
    }
    if let Some(body) = msg.text_content() {
        let context = msg
            .extended_text_message
            .as_option()
            .and_then(|e| e.context_info.as_option());
        return InboundKind::Text {
            body: body.to_string(),
            reply_to: context.and_then(|c| c.stanza_id.clone()),
            reply_participant: context
                .and_then(|c| c.participant.as_deref())
                .and_then(parse_chat)
                .map(|j| waha_id(&j)),
            mentions: context
                .map(|c| {
                    c.mentioned_jid
                        .iter()
                        .filter_map(|j| parse_chat(j))
                        .map(|j| waha_id(&j))
                        .collect()
                })
                .unwrap_or_default(),
        };
    }
    let context = context_of(context_info(msg));
    if let Some((media, caption)) = super::media::inbound_media(&Arc::new(msg.clone())) {
        return InboundKind::Media {
            body: caption.unwrap_or_default(),
            media,
            context,
        };
    }
    if let Some(l) = msg.location_message.as_option() {
        return InboundKind::Location {
            location: Location {
                latitude: l.degrees_latitude.unwrap_or_default(),
                longitude: l.degrees_longitude.unwrap_or_default(),
                live: l.is_live.unwrap_or(false),
                name: l.name.clone(),
                address: l.address.clone(),
                url: l.url.clone(),
                description: l.comment.clone(),
                thumbnail: l.jpeg_thumbnail.clone(),
            },
            context,
        };
    }
    if let Some(l) = msg.live_location_message.as_option() {
        return InboundKind::Location {
            location: Location {
                latitude: l.degrees_latitude.unwrap_or_default(),
                longitude: l.degrees_longitude.unwrap_or_default(),
                live: true,
                description: l.caption.clone(),
                thumbnail: l.jpeg_thumbnail.clone(),
                ..Location::default()
            },
            context,
        };
    }
    if let Some(c) = msg.contact_message.as_option() {
        return InboundKind::Contacts {
            vcards: c.vcard.iter().cloned().collect(),
            context,
        };
    }
    if let Some(c) = msg.contacts_array_message.as_option() {
        return InboundKind::Contacts {
            vcards: c.contacts.iter().filter_map(|c| c.vcard.clone()).collect(),
            context,
        };
    }
    if let Some(u) = msg.poll_update_message.as_option()
        && let Some((poll_id, poll_from_me, vote)) = super::polls::VoteRef::of(u)
    {
        return InboundKind::PollVote {
            poll_id,
            poll_from_me,
            timestamp: u.sender_timestamp_ms.unwrap_or_default() / 1000,
            vote,
        };
    }
    if let Some(e) = msg.enc_event_response_message.as_option()
        && let Some((event_id, event_from_me, response)) = super::polls::EventResponseRef::of(e)
    {
        return InboundKind::EventResponse {
            event_id,
            event_from_me,
            response,
        };
    }
    if let Some(e) = msg.event_message.as_option() {
        // WAHA's `EventMessage` (the `POST /api/{session}/events` request's `event`).
        let mut event = serde_json::json!({
            "name": e.name.clone().unwrap_or_default(),
            "description": e.description,
            "startTime": e.start_time,
            "endTime": e.end_time,
            "location": e.location.as_option().map(|l| serde_json::json!({"name": l.name})),
            "extraGuestsAllowed": e.extra_guests_allowed.unwrap_or(false),
        });
        if e.is_canceled == Some(true) {
            event["isCanceled"] = true.into();
        }
        return InboundKind::EventCreation {
            event,
            context: context_of(e.context_info.as_option()),
            key: None,
        };
    }
    if let Some(p) = poll_creation(msg) {
        return InboundKind::Poll {
            key: None,
            name: p.name.clone().unwrap_or_default(),
            options: p
                .options
                .iter()
                .filter_map(|o| o.option_name.clone())
                .collect(),
            multiple_answers: p.selectable_options_count.unwrap_or(0) != 1,
            context,
        };
    }
    InboundKind::Other {
        body: String::new(),
        kind: "unsupported".into(),
    }
}

/// The messages of an `Event::Messages` batch.
pub fn inbound(event: &Event) -> Vec<InboundMessage> {
    let Event::Messages(batch) = event else {
        return Vec::new();
    };
    batch
        .messages
        .iter()
        .map(|m| {
            let info = &m.info;
            let mut kind = message_kind(&m.message);
            if let InboundKind::Poll { key, options, .. } = &mut kind {
                *key =
                    super::polls::PollKey::of(&info.id, &m.message, &info.source.sender, options);
            } else if let InboundKind::EventCreation { key, .. } = &mut kind {
                *key = super::polls::PollKey::of(&info.id, &m.message, &info.source.sender, &[]);
            } else if let InboundKind::EventResponse { response, .. } = &mut kind {
                response.set_responder(&info.source.sender);
            } else if let InboundKind::PollVote {
                vote, timestamp, ..
            } = &mut kind
            {
                vote.set_voter(&info.source.sender);
                if *timestamp == 0 {
                    *timestamp = info.timestamp.timestamp();
                }
            }
            InboundMessage {
                wa_id: info.id.to_string(),
                chat: waha_id(&info.source.chat),
                sender: waha_id(&info.source.sender),
                sender_alt: info.source.sender_alt.as_ref().map(waha_id),
                from_me: info.source.is_from_me,
                is_group: info.source.is_group,
                timestamp: info.timestamp.timestamp(),
                push_name: info.push_name.clone(),
                kind,
            }
        })
        .collect()
}

/// The ack of an `Event::Receipt`, when it is one WAHA reports.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "only delivery/read/played receipts are acks in WAHA"
)]
pub fn ack(event: &Event) -> Option<Ack> {
    use whatsapp_rust::wacore::types::presence::ReceiptType as R;
    let Event::Receipt(r) = event else {
        return None;
    };
    let ack = match r.r#type {
        R::Delivered => 2,
        R::Read | R::ReadSelf => 3,
        R::Played | R::PlayedSelf => 4,
        _ => return None,
    };
    Some(Ack {
        ids: r.message_ids.iter().map(ToString::to_string).collect(),
        chat: waha_id(&r.source.chat),
        from: waha_id(&r.source.sender),
        from_alt: r.source.sender_alt.as_ref().map(waha_id),
        ack,
    })
}

fn bad_chat(chat: &str) -> Error {
    Error::BadRequest(format!("chatId {chat:?} is not a valid WhatsApp chat id"))
}

fn send_err(e: impl std::fmt::Display) -> Error {
    Error::Send(e.to_string())
}

/// The JIDs `mentions` names (`"all"` = every participant of the group `to`).
async fn mentioned_jids(client: &Arc<Client>, to: &Jid, mentions: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    for m in mentions {
        if m == "all" {
            if to.server == "g.us"
                && let Ok(meta) = client.groups().get_metadata(to).await
            {
                out.extend(meta.participants.iter().map(|p| p.jid.to_string()));
            }
        } else if let Some(jid) = parse_chat(m) {
            out.push(jid.to_string());
        }
    }
    out.dedup();
    out
}

/// A quoted message, as a reply needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Quote {
    /// The quoted WhatsApp id.
    pub wa_id: String,
    /// Its sender (WAHA id).
    pub sender: String,
    /// Its text (`""` when unknown).
    pub body: String,
}

/// An outgoing text.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingText {
    /// WAHA chat id.
    pub chat: String,
    /// Body.
    pub text: String,
    /// The message replied to.
    pub quote: Option<Quote>,
    /// Mentioned chat ids (`"all"` = every participant of the group).
    pub mentions: Vec<String>,
    /// Pre-generated WhatsApp id.
    pub id: Option<String>,
}

impl Session {
    /// Sends a text, optionally quoting a message and mentioning chat ids (or `"all"` in
    /// groups).
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn send_text(&self, out: OutgoingText) -> Result<Sent, Error> {
        send_text(self.client()?, out).await
    }

    /// Read receipts for `ids` in `chat` (`participant` = sender in groups).
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn send_seen(
        &self,
        chat: &str,
        participant: Option<&str>,
        ids: &[String],
    ) -> Result<(), Error> {
        send_seen(self.client()?, chat, participant, ids).await
    }

    /// Composing (`true`) or paused.
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn typing(&self, chat: &str, on: bool) -> Result<(), Error> {
        typing(self.client()?, chat, on).await
    }

    /// Reacts to a message identified by its parts (`emoji` `""` removes the reaction).
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn react(
        &self,
        chat: &str,
        target_id: &str,
        target_from_me: bool,
        participant: Option<&str>,
        emoji: &str,
    ) -> Result<Sent, Error> {
        react(
            self.client()?,
            chat,
            target_id,
            target_from_me,
            participant,
            emoji,
        )
        .await
    }

    /// Edits our own message; returns the edit's own id.
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn edit(&self, chat: &str, target_id: &str, text: String) -> Result<String, Error> {
        edit(self.client()?, chat, target_id, text).await
    }

    /// Revokes ("delete for everyone") our own message.
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or WhatsApp refused it.
    pub async fn revoke(&self, chat: &str, target_id: &str) -> Result<(), Error> {
        revoke(self.client()?, chat, target_id).await
    }

    /// Whether `phone` (digits) has WhatsApp; its chat id when it does.
    ///
    /// # Errors
    /// Stale handle, or WhatsApp refused the query.
    pub async fn check_exists(&self, phone: &str) -> Result<Option<String>, Error> {
        check_exists(self.client()?, phone).await
    }
}

async fn send_text(client: &Arc<Client>, out: OutgoingText) -> Result<Sent, Error> {
    let OutgoingText {
        chat,
        text,
        quote,
        mentions,
        id,
    } = out;
    let chat = chat.as_str();
    let to = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    let mentioned = mentioned_jids(client, &to, &mentions).await;
    let message = match quote {
        Some(Quote {
            wa_id: quoted_id,
            sender: quoted_sender,
            body: quoted_body,
        }) => {
            let sender = parse_chat(&quoted_sender).unwrap_or_else(|| to.clone());
            let quoted = wa::Message::text(quoted_body);
            let context = whatsapp_rust::wacore::proto_helpers::build_quote_context(
                quoted_id,
                sender.to_string(),
                &quoted,
            );
            wa::Message::text_with_context(
                text,
                wa::ContextInfo {
                    mentioned_jid: mentioned,
                    ..context
                },
            )
        }
        None if !mentioned.is_empty() => wa::Message::text_with_context(
            text,
            wa::ContextInfo {
                mentioned_jid: mentioned,
                ..Default::default()
            },
        ),
        None => wa::Message::text(text),
    };
    let mut options = SendOptions::default();
    if let Some(id) = id {
        options = options.with_message_id(id);
    }
    let result = client
        .send_message_with_options(to.clone(), message, options)
        .await
        .map_err(send_err)?;
    Ok(Sent {
        wa_id: result.message_id,
        chat: waha_id(&to),
        timestamp: chrono::Utc::now().timestamp(),
    })
}

async fn send_seen(
    client: &Arc<Client>,
    chat: &str,
    participant: Option<&str>,
    ids: &[String],
) -> Result<(), Error> {
    let chat_jid = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    let sender = participant.and_then(parse_chat);
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    client
        .mark_as_read(&chat_jid, sender.as_ref(), &ids)
        .await
        .map_err(send_err)
}

async fn typing(client: &Arc<Client>, chat: &str, on: bool) -> Result<(), Error> {
    let jid = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    let r = if on {
        client.chatstate().send_composing(&jid).await
    } else {
        client.chatstate().send_paused(&jid).await
    };
    r.map_err(send_err)
}

async fn react(
    client: &Arc<Client>,
    chat: &str,
    target_id: &str,
    target_from_me: bool,
    participant: Option<&str>,
    emoji: &str,
) -> Result<Sent, Error> {
    let jid = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    let key = wa::MessageKey {
        remote_jid: Some(jid.to_string()),
        from_me: Some(target_from_me),
        id: Some(target_id.to_string()),
        participant: participant.and_then(parse_chat).map(|p| p.to_string()),
    };
    let result = client
        .send_reaction(jid.clone(), key, emoji)
        .await
        .map_err(send_err)?;
    Ok(Sent {
        wa_id: result.message_id,
        chat: waha_id(&jid),
        timestamp: chrono::Utc::now().timestamp(),
    })
}

async fn edit(
    client: &Arc<Client>,
    chat: &str,
    target_id: &str,
    text: String,
) -> Result<String, Error> {
    let jid = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    client
        .edit_message(jid, target_id.to_string(), wa::Message::text(text))
        .await
        .map_err(send_err)
}

async fn revoke(client: &Arc<Client>, chat: &str, target_id: &str) -> Result<(), Error> {
    let jid = parse_chat(chat).ok_or_else(|| bad_chat(chat))?;
    client
        .revoke_message(jid, target_id.to_string(), RevokeType::Sender)
        .await
        .map_err(send_err)
}

async fn check_exists(client: &Arc<Client>, phone: &str) -> Result<Option<String>, Error> {
    let jid = Jid::pn(phone.to_string());
    let results = client
        .contacts()
        .is_on_whatsapp(&[jid])
        .await
        .map_err(send_err)?;
    Ok(results
        .into_iter()
        .find(|r| r.is_registered)
        .map(|r| waha_id(&r.jid)))
}
