//! What happens to a message: recorded in the session's message store, then published as
//! WAHA events (`message`, `message.any`, `message.ack`, `message.reaction`,
//! `message.edited`, `message.revoked`, `session.status`). And what happens on a group
//! notification: the session's group cache follows it (`sessions::groups`), then
//! `group.v2.join|leave|update|participants` (and the deprecated `group.join|leave`) go out.
//!
//! Owns: the translation from engine messages/acks/presences to `WAMessage` and the typed
//! event payloads of [`crate::model::events`] (one arm per event). Called by the session
//! runtime for inbound traffic and by the chatting API for what it sends. Stateless; one
//! [`Inbox`] per running session, cloned cheaply.

use serde_json::{Map, Value, json};
use tokio_util::sync::CancellationToken;

use crate::{
    engine::{
        self,
        groups::{ChangeKind, GroupChange, ParticipantAction},
        media::InboundMedia,
        messaging::{Ack, Context, InboundKind, InboundMessage, Location, Presence, Sent},
    },
    events::{EventBus, EventContext},
    media::MediaService,
    messages::MessageStore,
    model::{
        events::{
            Event, EventResponse, EventResponsePayload, GroupId, GroupV2JoinEvent,
            GroupV2LeaveEvent, GroupV2ParticipantsEvent, GroupV2UpdateEvent, MessageDestination,
            PollVote, PollVotePayload, SessionStatusPoint, WAHAChatPresences, WAHAPresenceData,
            WAMessageAckBody, WAMessageEditedBody, WAMessageReaction, WAMessageRevokedBody,
            WAReaction, WASessionStatusBody,
        },
        groups::{Group, GroupParticipant, add_mode, role},
        message::{MessageSource, ReplyToMessage, WALocation, WAMedia, WAMessage, ack, message_id},
        session::{MeInfo, SessionConfig, SessionStatus},
    },
    store::Store,
};

/// A session's message sink.
#[derive(Clone)]
pub struct Inbox {
    /// Session name.
    pub session: String,
    /// Its config (webhooks, metadata, ignore rules).
    pub config: Option<SessionConfig>,
    /// Message history.
    pub messages: MessageStore,
    /// Events.
    pub events: EventBus,
    /// The store (the session's group cache).
    pub store: Store,
    /// Where downloaded media go.
    pub media: MediaService,
    /// Newest synced-history messages kept per chat (`WHARF_HISTORY_SYNC_DEPTH`).
    pub history_depth: usize,
    /// Cluster mode: the session's lease; nothing is published once it is lost.
    pub fence: Option<crate::cluster::Fence>,
}

impl Inbox {
    /// Whether a lost lease forbids this session's writes (cluster mode): events and
    /// messages are then dropped here, the new owner publishes its own.
    pub fn fenced(&self) -> bool {
        self.fence.as_ref().is_some_and(|f| f.check().is_err())
    }
}

/// The WAHA id of an inbound message (`participant` is the sender in groups).
fn inbound_id(m: &InboundMessage) -> String {
    let participant = m.is_group.then(|| m.sender.clone());
    message_id(m.from_me, &m.chat, &m.wa_id, participant.as_deref())
}

fn location(l: Location) -> WALocation {
    use base64::Engine as _;
    WALocation {
        latitude: l.latitude.to_string(),
        longitude: l.longitude.to_string(),
        live: l.live,
        name: l.name,
        address: l.address,
        url: l.url,
        description: l.description,
        thumbnail: l
            .thumbnail
            .map(|t| base64::engine::general_purpose::STANDARD.encode(t)),
    }
}

/// The addressing part every `WAMessage` of one WhatsApp message shares.
#[derive(Clone)]
struct Head {
    id: String,
    timestamp: i64,
    from: String,
    from_me: bool,
    to: String,
    participant: Option<String>,
}

fn base_message(head: &Head, source: MessageSource, body: String) -> WAMessage {
    let Head {
        id,
        timestamp,
        from,
        from_me,
        to,
        participant,
    } = head.clone();
    let mut data = Map::new();
    data.insert("engine".into(), json!("whatsapp-rust"));
    WAMessage {
        id,
        timestamp,
        from,
        from_me,
        source,
        to: Some(to),
        participant,
        author: None,
        body,
        has_media: false,
        media: None,
        media_url: None,
        ack: if from_me { ack::SERVER } else { ack::DEVICE },
        ack_name: ack::name(if from_me { ack::SERVER } else { ack::DEVICE }).to_string(),
        location: None,
        v_cards: Vec::new(),
        reply_to: None,
        data,
    }
}

impl Inbox {
    fn ctx(&self, me: Option<&MeInfo>) -> EventContext {
        EventContext {
            session: self.session.clone(),
            config: self.config.clone(),
            me: me.cloned(),
        }
    }

    pub(super) async fn publish(&self, me: Option<&MeInfo>, event: Event) {
        if let Err(e) = self.events.emit(&self.ctx(me), &event).await {
            let event = event.name();
            tracing::error!(session = self.session, event, error = %e, "could not record event");
        }
    }

    /// `message` (when someone else wrote it) and `message.any` for a new message.
    async fn publish_message(&self, me: Option<&MeInfo>, msg: WAMessage) {
        if !msg.from_me {
            self.publish(me, Event::Message(msg.clone())).await;
        }
        self.publish(me, Event::MessageAny(msg)).await;
    }

    async fn save(&self, msg: &WAMessage) {
        if let Err(e) = self.messages.save(&self.session, msg).await {
            tracing::error!(session = self.session, id = msg.id, error = %e, "could not store message");
        }
    }

    /// `session.status` with the last statuses (WAHA's payload).
    pub async fn status(
        &self,
        me: Option<&MeInfo>,
        status: SessionStatus,
        history: &[(SessionStatus, i64)],
        data: Option<Value>,
    ) {
        let statuses = history
            .iter()
            .map(|&(status, timestamp)| SessionStatusPoint { status, timestamp })
            .collect();
        let payload = WASessionStatusBody {
            name: self.session.clone(),
            status,
            statuses,
            data,
        };
        self.publish(me, Event::SessionStatus(payload)).await;
    }

    /// Downloads the media of `m` (if it has one and the settings want it) and stores it;
    /// `None` when it is not to be downloaded (WAHA then sends `media: null`). A failed
    /// download is `Some` with `url: null` and `error` set — never a lost message.
    /// Runs off the session's event path (see `sessions::delivery`); `cancel` (the session
    /// stopping) and `WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS` bound it.
    pub async fn fetch_media(
        &self,
        m: &InboundMessage,
        cancel: &CancellationToken,
    ) -> Option<WAMedia> {
        let InboundKind::Media { media, .. } = &m.kind else {
            return None;
        };
        if !self.media.should_download(&media.mimetype) {
            return None;
        }
        let id = inbound_id(m);
        let file_name = crate::media::file_name(&id, &media.mimetype, media.filename.as_deref());
        let mut out = WAMedia {
            url: None,
            mimetype: (!media.mimetype.is_empty()).then(|| media.mimetype.clone()),
            filename: media.filename.clone(),
            s3: None,
            error: None,
        };
        match self.download(media, &file_name, cancel).await {
            Ok(stored) => {
                out.url = Some(stored.url);
                out.s3 = stored.s3;
            }
            Err(e) => {
                tracing::warn!(session = self.session, id, error = %e, "media download failed");
                out.error = Some(json!({ "message": e, "name": "Error" }));
            }
        }
        Some(out)
    }

    async fn download(
        &self,
        media: &InboundMedia,
        file_name: &str,
        cancel: &CancellationToken,
    ) -> Result<crate::media::Stored, String> {
        let (path, file) = self.media.partial_file().await.map_err(|e| e.to_string())?;
        let timeout = self.media.config().download_timeout;
        let fetched = tokio::select! {
            () = cancel.cancelled() => Err("the session stopped before the media was downloaded".to_string()),
            r = tokio::time::timeout(timeout, media.source.download_to(file)) => match r {
                Ok(Ok(file)) => Ok(file),
                Ok(Err(e)) => Err(e.to_string()),
                Err(_) => Err(format!("media download timed out after {timeout:?}")),
            },
        };
        match fetched {
            Ok(file) => {
                drop(file);
                self.media
                    .store(&self.session, file_name, &path, &media.mimetype)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => {
                let _ = tokio::fs::remove_file(&path).await;
                Err(e)
            }
        }
    }

    /// The `replyTo` of a message with this context: the quoted message as stored (with
    /// its media), else what the reply itself embeds.
    async fn reply_to(&self, context: &Context) -> Option<ReplyToMessage> {
        let quoted = context.reply_to.clone()?;
        let stored = self
            .messages
            .find_by_wa_id(&self.session, &quoted)
            .await
            .ok()
            .flatten();
        Some(match stored {
            Some(q) => ReplyToMessage {
                id: quoted,
                participant: context.reply_participant.clone(),
                body: Some(q.body),
                has_media: q.has_media,
                media: q.media,
                data: Map::new(),
            },
            None => ReplyToMessage {
                id: quoted,
                participant: context.reply_participant.clone(),
                body: context.reply_body.clone(),
                has_media: context.reply_has_media,
                media: None,
                data: Map::new(),
            },
        })
    }

    /// A message from WhatsApp (incoming, or ours from another device), its media already
    /// fetched by [`Self::fetch_media`].
    pub async fn inbound(&self, me: Option<&MeInfo>, m: InboundMessage, media: Option<WAMedia>) {
        super::contacts::learn_message(&self.store, &self.session, &m).await;
        let me_id = me.map(|m| m.id.clone()).unwrap_or_default();
        let participant = m.is_group.then(|| m.sender.clone());
        let id = inbound_id(&m);
        let (from, to) = if m.from_me {
            (me_id.clone(), m.chat.clone())
        } else {
            (m.chat.clone(), me_id.clone())
        };
        let head = Head {
            id,
            timestamp: m.timestamp,
            from,
            from_me: m.from_me,
            to,
            participant,
        };
        match m.kind {
            InboundKind::Text {
                body,
                reply_to,
                reply_participant,
                mentions,
            } => {
                let mut msg = base_message(&head, MessageSource::App, body);
                msg.data.insert("pushName".into(), json!(m.push_name));
                if !mentions.is_empty() {
                    msg.data.insert("mentionedIds".into(), json!(mentions));
                }
                msg.reply_to = self
                    .reply_to(&Context {
                        reply_to,
                        reply_participant,
                        ..Context::default()
                    })
                    .await;
                self.save(&msg).await;
                self.publish_message(me, msg).await;
            }
            InboundKind::Reaction { target_id, text } => {
                let message = base_message(&head, MessageSource::App, String::new());
                let target = self
                    .messages
                    .find_by_wa_id(&self.session, &target_id)
                    .await
                    .ok()
                    .flatten();
                let message_id = target.map(|t| t.id).unwrap_or(target_id);
                let payload = WAMessageReaction {
                    message,
                    reaction: WAReaction { text, message_id },
                };
                self.publish(me, Event::MessageReaction(payload)).await;
            }
            InboundKind::Edit { target_id, body } => {
                let edited = self
                    .messages
                    .edit(&self.session, &target_id, &body)
                    .await
                    .ok()
                    .flatten();
                let edited_message_id = edited.map_or(target_id, |e| e.id);
                let payload = WAMessageEditedBody {
                    message: base_message(&head, MessageSource::App, body),
                    edited_message_id,
                };
                self.publish(me, Event::MessageEdited(payload)).await;
            }
            InboundKind::Revoke { target_id } => {
                let before = self
                    .messages
                    .revoke(&self.session, &target_id)
                    .await
                    .ok()
                    .flatten();
                let revoked_message_id = before
                    .as_ref()
                    .map_or_else(|| target_id.clone(), |b| b.id.clone());
                let payload = WAMessageRevokedBody {
                    after: base_message(&head, MessageSource::App, String::new()),
                    before,
                    revoked_message_id,
                    data: Map::new(),
                };
                self.publish(me, Event::MessageRevoked(payload)).await;
            }
            InboundKind::Media {
                body,
                media: inbound,
                context,
            } => {
                let mut msg = base_message(&head, MessageSource::App, body);
                msg.data.insert("pushName".into(), json!(m.push_name));
                msg.data.insert("type".into(), json!(inbound.kind.as_str()));
                if let Some(size) = inbound.size {
                    msg.data.insert("size".into(), json!(size));
                }
                msg.has_media = true;
                msg.media_url = media.as_ref().and_then(|x| x.url.clone());
                msg.media = media;
                self.finish_inbound(me, msg, &context).await;
            }
            InboundKind::Location {
                location: l,
                context,
            } => {
                let mut msg = base_message(&head, MessageSource::App, String::new());
                msg.data.insert("pushName".into(), json!(m.push_name));
                msg.data.insert("type".into(), json!("location"));
                msg.location = Some(location(l));
                self.finish_inbound(me, msg, &context).await;
            }
            InboundKind::Contacts { vcards, context } => {
                let mut msg = base_message(&head, MessageSource::App, String::new());
                msg.data.insert("pushName".into(), json!(m.push_name));
                msg.data.insert("type".into(), json!("vcard"));
                msg.v_cards = vcards;
                self.finish_inbound(me, msg, &context).await;
            }
            InboundKind::Poll {
                name,
                options,
                multiple_answers,
                context,
                key: _,
            } => {
                let mut msg = base_message(&head, MessageSource::App, String::new());
                msg.data.insert("pushName".into(), json!(m.push_name));
                msg.data.insert("type".into(), json!("poll_creation"));
                // WAHA's `MessagePoll` (the sendPoll request shape) under `_data.poll`.
                msg.data.insert(
                    "poll".into(),
                    json!({ "name": name, "options": options, "multipleAnswers": multiple_answers }),
                );
                self.finish_inbound(me, msg, &context).await;
            }
            InboundKind::PollVote {
                poll_id,
                poll_from_me,
                timestamp,
                vote,
            } => {
                let poll = self
                    .target(&poll_id, poll_from_me, head.from_me, &m.chat, &me_id)
                    .await;
                let decrypted = vote.decrypt().await;
                let mut payload = PollVotePayload {
                    vote: PollVote {
                        id: head.id.clone(),
                        selected_options: Vec::new(),
                        timestamp,
                        to: head.to.clone(),
                        from: head.from.clone(),
                        from_me: head.from_me,
                        participant: head.participant.clone(),
                    },
                    poll,
                    data: Map::new(),
                };
                match decrypted {
                    Ok(options) => {
                        payload.vote.selected_options = options;
                        self.publish(me, Event::PollVote(payload)).await;
                    }
                    Err(e) => {
                        tracing::warn!(session = self.session, poll_id, error = %e, "poll vote not decrypted");
                        self.publish(me, Event::PollVoteFailed(payload)).await;
                    }
                }
            }
            InboundKind::EventCreation {
                event,
                context,
                key: _,
            } => {
                let mut msg = base_message(&head, MessageSource::App, String::new());
                msg.data.insert("pushName".into(), json!(m.push_name));
                msg.data.insert("type".into(), json!("event_creation"));
                msg.data.insert("event".into(), event);
                self.finish_inbound(me, msg, &context).await;
            }
            InboundKind::EventResponse {
                event_id,
                event_from_me,
                response,
            } => {
                let event = self
                    .target(&event_id, event_from_me, head.from_me, &m.chat, &me_id)
                    .await;
                let mut payload = EventResponsePayload {
                    id: head.id.clone(),
                    timestamp: head.timestamp,
                    from: head.from.clone(),
                    from_me: head.from_me,
                    source: MessageSource::App,
                    to: head.to.clone(),
                    participant: head.participant.clone(),
                    data: Map::new(),
                    event_creation_key: event,
                    event_response: None,
                };
                match response.decrypt() {
                    Ok(answer) => {
                        payload.event_response = Some(EventResponse {
                            response: answer.response,
                            timestamp_ms: answer.timestamp_ms,
                            extra_guest_count: answer.extra_guest_count,
                        });
                        self.publish(me, Event::EventResponse(payload)).await;
                    }
                    Err(e) => {
                        tracing::warn!(session = self.session, event_id, error = %e, "event response not decrypted");
                        self.publish(me, Event::EventResponseFailed(payload)).await;
                    }
                }
            }
            // Protocol traffic (key shares, history notices…) is not a chat message.
            InboundKind::Other { kind, .. } if kind == "protocol" => {}
            // WAHA's engines pass a pin through as a message of its own kind; the pinned
            // message is named by its id as the receiver stores it.
            InboundKind::Pin {
                target_id,
                target_from_me,
                pinned,
            } => {
                let mut msg = base_message(&head, MessageSource::App, String::new());
                // `target_from_me` is the pinner's view: ours when we pinned (from another
                // device), the other way round when the peer of a one-to-one chat did; in a
                // group the pinner's own message names the pinner as participant.
                let ours = if m.from_me {
                    target_from_me
                } else {
                    !m.is_group && !target_from_me
                };
                let participant =
                    (m.is_group && target_from_me && !m.from_me).then(|| m.sender.clone());
                let target = message_id(ours, &m.chat, &target_id, participant.as_deref());
                msg.data.insert("type".into(), json!("pin"));
                msg.data.insert("pinned".into(), json!(pinned));
                msg.data.insert("pinnedMessageId".into(), json!(target));
                self.save(&msg).await;
                self.publish_message(me, msg).await;
            }
            InboundKind::Other { body, kind } => {
                let mut msg = base_message(&head, MessageSource::App, body);
                msg.data.insert("type".into(), json!(kind));
                self.save(&msg).await;
                self.publish_message(me, msg).await;
            }
        }
    }

    /// Mentions + reply, then stored and published.
    async fn finish_inbound(&self, me: Option<&MeInfo>, mut msg: WAMessage, context: &Context) {
        if !context.mentions.is_empty() {
            msg.data
                .insert("mentionedIds".into(), json!(context.mentions));
        }
        msg.reply_to = self.reply_to(context).await;
        self.save(&msg).await;
        self.publish_message(me, msg).await;
    }

    /// Receipts for our messages: the stored ack moves forward and `message.ack` goes out.
    /// A receipt naming its sender both ways teaches that LID ↔ phone pair.
    pub async fn ack(&self, me: Option<&MeInfo>, a: Ack) {
        if let Some(alt) = &a.from_alt {
            super::contacts::learn_pair(&self.store, &self.session, &a.from, alt).await;
        }
        for wa_id in &a.ids {
            let updated = self
                .messages
                .set_ack(&self.session, wa_id, a.ack)
                .await
                .ok()
                .flatten();
            let (id, to) = match &updated {
                Some(m) => (m.id.clone(), m.to.clone().unwrap_or_else(|| a.chat.clone())),
                None => (message_id(true, &a.chat, wa_id, None), a.chat.clone()),
            };
            let payload = WAMessageAckBody {
                id,
                from: a.from.clone(),
                to,
                // The server's own ack (from = the group) has no participant.
                participant: (a.chat.ends_with("@g.us") && a.from != a.chat)
                    .then(|| a.from.clone()),
                from_me: true,
                ack: a.ack,
                ack_name: ack::name(a.ack).to_string(),
                data: Map::new(),
            };
            // WAHA: receipts in groups are `message.ack.group`, not `message.ack`.
            let event = if a.chat.ends_with("@g.us") {
                Event::MessageAckGroup(payload)
            } else {
                Event::MessageAck(payload)
            };
            self.publish(me, event).await;
        }
    }

    /// `presence.update`: `{id, presences:[{participant, lastKnownPresence, lastSeen}]}`.
    pub async fn presence(&self, me: Option<&MeInfo>, p: Presence) {
        let payload = WAHAChatPresences {
            id: p.chat,
            presences: vec![WAHAPresenceData {
                participant: p.participant,
                last_known_presence: p.state,
                last_seen: p.last_seen,
            }],
        };
        self.publish(me, Event::PresenceUpdate(payload)).await;
    }

    /// What the API sent: stored and published as `message.any`; returns the `WAMessage`.
    pub async fn sent(
        &self,
        me: Option<&MeInfo>,
        sent: &Sent,
        body: String,
        reply_to: Option<ReplyToMessage>,
    ) -> WAMessage {
        let me_id = me.map(|m| m.id.clone()).unwrap_or_default();
        let id = message_id(true, &sent.chat, &sent.wa_id, None);
        let mut msg = base_message(
            &Head {
                id,
                timestamp: sent.timestamp,
                from: me_id,
                from_me: true,
                to: sent.chat.clone(),
                participant: None,
            },
            MessageSource::Api,
            body,
        );
        msg.reply_to = reply_to;
        self.save(&msg).await;
        self.publish(me, Event::MessageAny(msg.clone())).await;
        msg
    }
}

/// The ids this account goes by (`@c.us`, `@lid`).
fn my_ids(me: Option<&MeInfo>) -> Vec<String> {
    me.map(|m| {
        [Some(m.id.clone()), m.lid.clone()]
            .into_iter()
            .flatten()
            .collect()
    })
    .unwrap_or_default()
}

impl Inbox {
    /// Re-reads the group into the cache (patched with what the notification says); on
    /// failure, the cached group patched the same way, or `None`.
    async fn follow_group(
        &self,
        engine: Option<&engine::Session>,
        id: &str,
        patch: impl Fn(&mut Group),
    ) -> Option<Group> {
        if let Some(engine) = engine.filter(|e| e.is_live()) {
            match super::groups::refetch(&self.store, engine, id, &patch).await {
                Ok(g) => return Some(g),
                Err(e) => {
                    tracing::debug!(session = self.session, group = id, error = %e, "could not re-read the group");
                }
            }
        }
        let mut cached = super::groups::cached(&self.store, &self.session, id)
            .await
            .ok()
            .flatten()?;
        patch(&mut cached);
        Some(cached)
    }

    /// `group.v2.join` and the deprecated `group.join`.
    async fn publish_join(
        &self,
        me: Option<&MeInfo>,
        timestamp: i64,
        id: &str,
        group: Option<Group>,
    ) {
        let group = group.map_or_else(
            || json!({ "id": id }),
            |g| serde_json::to_value(g.info()).unwrap_or_else(|_| json!({ "id": id })),
        );
        self.publish(me, Event::GroupJoin(group.clone())).await;
        let payload = GroupV2JoinEvent {
            timestamp,
            group,
            data: Map::new(),
        };
        self.publish(me, Event::GroupV2Join(payload)).await;
    }

    /// The message a vote or an RSVP answers (`target_id`): as stored, or — not stored —
    /// rebuilt from its key as the voter wrote it (`target_from_me` is the voter's view,
    /// so ours is the opposite unless we answered ourselves).
    async fn target(
        &self,
        target_id: &str,
        target_from_me: bool,
        answer_from_me: bool,
        chat: &str,
        me_id: &str,
    ) -> MessageDestination {
        if let Ok(Some(p)) = self.messages.find_by_wa_id(&self.session, target_id).await {
            return MessageDestination {
                id: p.id.clone(),
                to: p.to.clone().unwrap_or_default(),
                from: p.from.clone(),
                from_me: p.from_me,
                participant: p.participant.clone(),
            };
        }
        let from_me = if answer_from_me {
            target_from_me
        } else {
            !target_from_me
        };
        let (from, to) = if from_me {
            (me_id.to_string(), chat.to_string())
        } else {
            (chat.to_string(), me_id.to_string())
        };
        MessageDestination {
            id: message_id(from_me, chat, target_id, None),
            to,
            from,
            from_me,
            participant: None,
        }
    }

    /// An app-state mutation from any device of the account (this one's own come back
    /// too): `chat.archive` `{id, archived, timestamp}`, or a label change — label store
    /// first, then `label.*` (see `sessions::labels::apply`).
    pub async fn chat_change(&self, me: Option<&MeInfo>, c: engine::chat_actions::AppStateChange) {
        let event = match c {
            engine::chat_actions::AppStateChange::Archive {
                chat,
                archived,
                timestamp,
            } => Some(Event::ChatArchive(crate::model::events::ChatArchiveEvent {
                id: chat,
                archived,
                timestamp,
            })),
            other @ (engine::chat_actions::AppStateChange::LabelEdit { .. }
            | engine::chat_actions::AppStateChange::LabelChat { .. }) => {
                match super::labels::apply(&self.store, &self.session, other).await {
                    Ok(event) => event,
                    Err(e) => {
                        tracing::error!(session = self.session, error = %e, "could not store a label change");
                        None
                    }
                }
            }
        };
        if let Some(event) = event {
            self.publish(me, event).await;
        }
    }

    /// A group notification (or our own change coming back): cache, then events.
    pub async fn group(
        &self,
        me: Option<&MeInfo>,
        engine: Option<&engine::Session>,
        change: GroupChange,
    ) {
        let GroupChange {
            group: id,
            actor,
            timestamp,
            kind,
        } = change;
        let mut data = Map::new();
        if let Some(actor) = &actor {
            data.insert("author".into(), json!(actor));
        }
        let update = |fields: Value| {
            let mut group = json!({ "id": id });
            if let (Some(g), Value::Object(f)) = (group.as_object_mut(), fields) {
                g.extend(f);
            }
            Event::GroupV2Update(GroupV2UpdateEvent {
                timestamp,
                group,
                data: data.clone(),
            })
        };
        match kind {
            ChangeKind::Created => {
                let g = self.follow_group(engine, &id, |_| {}).await;
                self.publish_join(me, timestamp, &id, g).await;
            }
            ChangeKind::Participants { action, members } => {
                // LID groups name members by LID with their phone number: learn the pairs.
                for (id, pn) in &members {
                    if let Some(pn) = pn {
                        super::contacts::learn_pair(&self.store, &self.session, id, pn).await;
                    }
                }
                let mine = my_ids(me);
                let includes_me = members.iter().any(|(m, pn)| {
                    mine.contains(m) || pn.as_ref().is_some_and(|pn| mine.contains(pn))
                });
                let (kind, role) = match action {
                    ParticipantAction::Add => ("join", role::PARTICIPANT),
                    ParticipantAction::Remove => ("leave", role::LEFT),
                    ParticipantAction::Promote => ("promote", role::ADMIN),
                    ParticipantAction::Demote => ("demote", role::PARTICIPANT),
                };
                let joined_group = match (action, includes_me) {
                    (ParticipantAction::Remove, true) => {
                        if let Err(e) = super::groups::forget(&self.store, &self.session, &id).await
                        {
                            tracing::error!(session = self.session, group = id, error = %e, "could not forget the group");
                        }
                        None
                    }
                    (_, _) => self.follow_group(engine, &id, |_| {}).await,
                };
                let participants = members
                    .into_iter()
                    .map(|(id, pn)| GroupParticipant {
                        id,
                        pn,
                        role: role.to_string(),
                    })
                    .collect();
                let payload = GroupV2ParticipantsEvent {
                    kind: kind.to_string(),
                    timestamp,
                    group: GroupId { id: id.clone() },
                    participants,
                    data: data.clone(),
                };
                self.publish(me, Event::GroupV2Participants(payload)).await;
                match (action, includes_me) {
                    (ParticipantAction::Add, true) => {
                        self.publish_join(me, timestamp, &id, joined_group).await;
                    }
                    (ParticipantAction::Remove, true) => {
                        self.publish(
                            me,
                            Event::GroupLeave(json!({ "id": id, "timestamp": timestamp })),
                        )
                        .await;
                        let payload = GroupV2LeaveEvent {
                            timestamp,
                            group: GroupId { id: id.clone() },
                            data: data.clone(),
                        };
                        self.publish(me, Event::GroupV2Leave(payload)).await;
                    }
                    _ => {}
                }
            }
            ChangeKind::Subject(subject) => {
                self.follow_group(engine, &id, |g| g.subject.clone_from(&subject))
                    .await;
                self.publish(me, update(json!({ "subject": subject })))
                    .await;
            }
            ChangeKind::Description(description) => {
                self.follow_group(engine, &id, |g| g.description.clone_from(&description))
                    .await;
                let text = description.unwrap_or_default();
                self.publish(me, update(json!({ "description": text })))
                    .await;
            }
            ChangeKind::Announce(on) => {
                self.follow_group(engine, &id, |g| g.announce = on).await;
                self.publish(me, update(json!({ "membersCanSendMessages": !on })))
                    .await;
            }
            ChangeKind::Locked(on) => {
                self.follow_group(engine, &id, |g| g.locked = on).await;
                self.publish(me, update(json!({ "infoAdminOnly": on })))
                    .await;
            }
            ChangeKind::MembershipApproval(on) => {
                self.follow_group(engine, &id, |g| g.membership_approval = on)
                    .await;
                self.publish(me, update(json!({ "newMembersApprovalRequired": on })))
                    .await;
            }
            ChangeKind::MemberAddMode(mode) => {
                self.follow_group(engine, &id, |g| g.member_add_mode = Some(mode.clone()))
                    .await;
                let all = mode != add_mode::ADMIN_ADD;
                self.publish(me, update(json!({ "membersCanAddNewMember": all })))
                    .await;
            }
            ChangeKind::ShareHistoryMode => {
                let g = self.follow_group(engine, &id, |_| {}).await;
                let mode = g.and_then(|g| g.member_share_history_mode);
                self.publish(me, update(json!({ "memberShareHistoryMode": mode })))
                    .await;
            }
            ChangeKind::InviteRevoked => {
                self.follow_group(engine, &id, |g| g.invite = None).await;
                self.publish(me, update(json!({ "invite": null }))).await;
            }
            ChangeKind::Picture { removed } => {
                let url = match engine.filter(|e| e.is_live()) {
                    Some(e) if !removed => e.group_picture(&id).await.ok().flatten(),
                    _ => None,
                };
                self.publish(me, update(json!({ "picture": url }))).await;
            }
        }
    }
}
