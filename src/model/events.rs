//! WAHA's events on the wire: the envelope every webhook body and WebSocket frame is, and
//! one typed payload per event WAHA documents (`../shared/reference/waha.md` §5.3, the
//! `webhooks` section and schemas of `waha-openapi.json`).
//!
//! Owns: [`Envelope`] (WAHA's `WAHAWebhook*` body: id, time, session, payload, engine,
//! environment), [`Event`] (an event name together with its payload) and the payload
//! structs, named as WAHA's schemas. The session inbox builds an [`Event`] from engine
//! traffic, `events::EventBus::emit` wraps it in an [`Envelope`]; webhook delivery and
//! the WebSocket send the envelope's bytes. Plain data, alive while an event is in flight.
//!
//! Adding an event is a payload struct here plus one line in the `events!` list below (its
//! name and payload type); the publisher then builds it like any other. Field order in
//! each struct is the wire order (webhook bodies are signed over the bytes and pinned by
//! tests), so do not reorder fields.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{
    message::{MessageSource, WAMessage},
    session::{MeInfo, SessionStatus},
};

/// WAHA's webhook body (§5.3). Field order is the wire order (`populateSessionInfo`).
#[derive(Debug, Clone, Serialize)]
pub struct Envelope {
    /// `evt_` + lower-case ULID.
    pub id: String,
    /// ms since epoch.
    pub timestamp: i64,
    /// Event name.
    pub event: String,
    /// Session name.
    pub session: String,
    /// The session config's `metadata`; absent when the session has none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// The account, `null` when unknown.
    pub me: Option<MeInfo>,
    /// Event-specific payload (an [`Event`]'s payload, kept as JSON so that filters such
    /// as `IgnoreConfig` can read any event the same way).
    pub payload: Value,
    /// Engine name.
    pub engine: String,
    /// `WAHAEnvironment`.
    pub environment: Value,
    /// The serialized body, computed once: webhooks sign and send exactly these bytes.
    #[serde(skip)]
    json: String,
}

/// Who emits an event: the session part of an [`Envelope`].
#[derive(Debug, Clone, Copy)]
pub struct Emitter<'a> {
    /// Session name.
    pub session: &'a str,
    /// The session config's `metadata`.
    pub metadata: Option<&'a BTreeMap<String, String>>,
    /// The account, once authenticated.
    pub me: Option<&'a MeInfo>,
    /// Engine name, e.g. `GOWS`.
    pub engine: &'a str,
    /// `WAHAEnvironment` JSON.
    pub environment: &'a Value,
}

impl Envelope {
    /// Stamps event `event` with `payload` (normally an [`Event`]'s name and
    /// [`Event::payload`]) as emitted now by `from`, with a fresh `evt_` id, and
    /// serializes the body once.
    ///
    /// # Errors
    /// When the body cannot be serialized (a map with non-string keys; never for the
    /// payloads defined here).
    pub fn new(from: Emitter<'_>, event: &str, payload: Value) -> Result<Self, serde_json::Error> {
        let mut envelope = Self {
            id: format!("evt_{}", ulid_lower()),
            timestamp: crate::clock::now_ms(),
            event: event.to_string(),
            session: from.session.to_string(),
            metadata: from.metadata.cloned(),
            me: from.me.cloned(),
            payload,
            engine: from.engine.to_string(),
            environment: from.environment.clone(),
            json: String::new(),
        };
        envelope.json = serde_json::to_string(&envelope)?;
        Ok(envelope)
    }

    /// The envelope as sent (webhook body, WebSocket text frame).
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// A lower-case ULID: 48-bit ms timestamp + 80 random bits, Crockford base32 (WAHA's
/// event ids, https://github.com/ulid/spec).
fn ulid_lower() -> String {
    const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
    let ms = u128::try_from(crate::clock::now_ms().max(0)).unwrap_or_default();
    let random: u128 = rand::random::<u128>() & ((1u128 << 80) - 1);
    let value = ((ms & ((1u128 << 48) - 1)) << 80) | random;
    (0..26)
        .rev()
        .map(|i| ALPHABET[((value >> (i * 5)) & 0x1f) as usize] as char)
        .collect()
}

/// Declares [`Event`]: one variant per WAHA event name with its payload type, plus the
/// name and payload translations, so that the three cannot disagree.
macro_rules! events {
    ($( $(#[$doc:meta])* $variant:ident($payload:ty) = $name:literal, )*) => {
        /// An event wharf emits: WAHA's event name and its typed payload.
        #[derive(Debug, Clone, PartialEq)]
        #[expect(
            clippy::large_enum_variant,
            reason = "one short-lived value per event, serialized right away; boxing the \
                      message payloads would only add an allocation"
        )]
        pub enum Event {
            $( $(#[$doc])* $variant($payload), )*
        }

        impl Event {
            /// Every event name an [`Event`] can carry, in declaration order.
            pub const NAMES: &[&str] = &[$( $name, )*];

            /// WAHA's event name (`WAHAEvents`).
            pub fn name(&self) -> &'static str {
                match self {
                    $( Self::$variant(_) => $name, )*
                }
            }

            /// The payload as JSON, fields in wire order.
            ///
            /// # Errors
            /// When the payload cannot be serialized (never for the types defined here).
            pub fn payload(&self) -> Result<Value, serde_json::Error> {
                match self {
                    $( Self::$variant(p) => serde_json::to_value(p), )*
                }
            }
        }
    };
}

events! {
    /// The session's status changed (also once per QR rotation).
    SessionStatus(WASessionStatusBody) = "session.status",
    /// An incoming message (not our own).
    Message(WAMessage) = "message",
    /// Someone reacted to a message, or removed a reaction.
    MessageReaction(WAMessageReaction) = "message.reaction",
    /// Every message created, our own included.
    MessageAny(WAMessage) = "message.any",
    /// A receipt for one of our messages.
    MessageAck(WAMessageAckBody) = "message.ack",
    /// A receipt from a group participant.
    MessageAckGroup(WAMessageAckBody) = "message.ack.group",
    /// A message was revoked ("deleted for everyone").
    MessageRevoked(WAMessageRevokedBody) = "message.revoked",
    /// A message was edited.
    MessageEdited(WAMessageEditedBody) = "message.edited",
    /// We joined a group (or were added).
    GroupV2Join(GroupV2JoinEvent) = "group.v2.join",
    /// We left a group (or were removed).
    GroupV2Leave(GroupV2LeaveEvent) = "group.v2.leave",
    /// A group's info changed.
    GroupV2Update(GroupV2UpdateEvent) = "group.v2.update",
    /// Participants joined, left, were promoted or demoted.
    GroupV2Participants(GroupV2ParticipantsEvent) = "group.v2.participants",
    /// Deprecated: we joined a group (the payload is the group, as `group.v2.join`'s).
    GroupJoin(Value) = "group.join",
    /// Deprecated: we left a group (`{id}` and the time).
    GroupLeave(Value) = "group.leave",
    /// Someone's presence in a chat.
    PresenceUpdate(WAHAChatPresences) = "presence.update",
    /// A poll vote.
    PollVote(PollVotePayload) = "poll.vote",
    /// A poll vote that could not be decrypted.
    PollVoteFailed(PollVotePayload) = "poll.vote.failed",
    /// A chat was archived or unarchived.
    ChatArchive(ChatArchiveEvent) = "chat.archive",
    /// An incoming call.
    CallReceived(CallData) = "call.received",
    /// A call was accepted.
    CallAccepted(CallData) = "call.accepted",
    /// A call was rejected.
    CallRejected(CallData) = "call.rejected",
    /// A label was created or changed.
    LabelUpsert(Label) = "label.upsert",
    /// A label was deleted.
    LabelDeleted(Label) = "label.deleted",
    /// A label was put on a chat.
    LabelChatAdded(LabelChatAssociation) = "label.chat.added",
    /// A label was taken off a chat.
    LabelChatDeleted(LabelChatAssociation) = "label.chat.deleted",
    /// A response to an event message.
    EventResponse(EventResponsePayload) = "event.response",
    /// A response to an event message that could not be decrypted.
    EventResponseFailed(EventResponsePayload) = "event.response.failed",
    /// A raw engine event (not in the `*` wildcard).
    EngineEvent(EnginePayload) = "engine.event",
}

/// `SessionStatusPoint`: one entry of a status history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SessionStatusPoint {
    /// The status entered.
    pub status: SessionStatus,
    /// When, in ms.
    pub timestamp: i64,
}

/// `WASessionStatusBody`: the `session.status` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WASessionStatusBody {
    /// Session name.
    #[schema(example = "default")]
    pub name: String,
    /// The current status.
    pub status: SessionStatus,
    /// The last statuses (WAHA: 3), oldest first.
    pub statuses: Vec<SessionStatusPoint>,
    /// Extra info of the current status, `null` for most (wharf: `{reason}` on FAILED).
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// `WAReaction`: the reaction of a `message.reaction` event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WAReaction {
    /// The emoji, or `""` when the reaction was removed.
    pub text: String,
    /// The message reacted to (WAHA id when known, else the raw WhatsApp id).
    pub message_id: String,
}

/// `WAMessageReaction`: the `message.reaction` payload. WAHA documents the message's
/// addressing fields; wharf sends the whole reaction message (as WAHA's engines do) with
/// `reaction` last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAMessageReaction {
    /// The reaction message itself.
    #[serde(flatten)]
    pub message: WAMessage,
    /// What was reacted, to what.
    pub reaction: WAReaction,
}

/// `WAMessageAckBody`: the `message.ack` / `message.ack.group` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAMessageAckBody {
    /// WAHA id of the acknowledged message.
    pub id: String,
    /// Who acknowledged.
    pub from: String,
    /// The chat the message went to.
    pub to: String,
    /// In groups: who acknowledged; `null` elsewhere.
    pub participant: Option<String>,
    /// Always `true` today: receipts are for our messages.
    #[serde(rename = "fromMe")]
    pub from_me: bool,
    /// Ack code (`model::message::ack`).
    pub ack: i32,
    /// Ack name.
    #[serde(rename = "ackName")]
    pub ack_name: String,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `WAMessageRevokedBody`: the `message.revoked` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAMessageRevokedBody {
    /// The revoke notice as a message (empty body).
    pub after: WAMessage,
    /// The revoked message as it was stored, `null` when unknown.
    pub before: Option<WAMessage>,
    /// Id of the revoked message (WAHA id when known, else the raw WhatsApp id).
    #[serde(rename = "revokedMessageId")]
    pub revoked_message_id: String,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `WAMessageEditedBody`: the `message.edited` payload, a `WAMessage` with the new body
/// plus `editedMessageId` last.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAMessageEditedBody {
    /// The edit as a message (its body is the new text).
    #[serde(flatten)]
    pub message: WAMessage,
    /// Id of the edited message (WAHA id when known, else the raw WhatsApp id).
    #[serde(rename = "editedMessageId")]
    pub edited_message_id: String,
}

/// `WAHAPresenceData`: one participant's presence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WAHAPresenceData {
    /// The participant or contact.
    pub participant: String,
    /// `offline`, `online`, `typing`, `recording` or `paused` (`WAHAPresenceStatus`).
    pub last_known_presence: String,
    /// Last seen, Unix seconds, when known.
    pub last_seen: Option<i64>,
}

/// `WAHAChatPresences`: the `presence.update` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAHAChatPresences {
    /// The chat: a contact or a group.
    pub id: String,
    /// Presences in that chat.
    pub presences: Vec<WAHAPresenceData>,
}

/// `GroupId`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupId {
    /// `…@g.us`.
    pub id: String,
}

/// `GroupParticipant`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct GroupParticipant {
    /// Member id, `@c.us` or `@lid`.
    pub id: String,
    /// Member id in `@c.us` form, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pn: Option<String>,
    /// `left`, `participant`, `admin` or `superadmin`.
    pub role: String,
}

/// `GroupV2JoinEvent`: the `group.v2.join` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupV2JoinEvent {
    /// Unix seconds.
    pub timestamp: i64,
    /// The group (`GroupInfo`).
    #[schema(value_type = Object)]
    pub group: Value,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `GroupV2LeaveEvent`: the `group.v2.leave` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupV2LeaveEvent {
    /// Unix seconds.
    pub timestamp: i64,
    /// The group.
    pub group: GroupId,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `GroupV2UpdateEvent`: the `group.v2.update` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupV2UpdateEvent {
    /// Unix seconds.
    pub timestamp: i64,
    /// The changed group fields, with its `id`.
    #[schema(value_type = Object)]
    pub group: Value,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `GroupV2ParticipantsEvent`: the `group.v2.participants` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GroupV2ParticipantsEvent {
    /// `join`, `leave`, `promote` or `demote`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// The group.
    pub group: GroupId,
    /// Who joined, left, was promoted or demoted.
    pub participants: Vec<GroupParticipant>,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `MessageDestination`: a message's addressing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MessageDestination {
    /// WAHA message id.
    pub id: String,
    /// Recipient.
    pub to: String,
    /// Sender.
    pub from: String,
    /// Sent by us.
    pub from_me: bool,
    /// In groups: the sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
}

/// `PollVote`: one vote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PollVote {
    /// WAHA id of the vote message.
    pub id: String,
    /// The options chosen (names).
    pub selected_options: Vec<String>,
    /// When (WAHA: ms).
    pub timestamp: i64,
    /// Recipient.
    pub to: String,
    /// Voter.
    pub from: String,
    /// Our own vote.
    pub from_me: bool,
    /// In groups: the voter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
}

/// `PollVotePayload`: the `poll.vote` / `poll.vote.failed` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PollVotePayload {
    /// The vote.
    pub vote: PollVote,
    /// The poll voted on.
    pub poll: MessageDestination,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `ChatArchiveEvent`: the `chat.archive` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChatArchiveEvent {
    /// The chat.
    pub id: String,
    /// Archived (`true`) or unarchived.
    pub archived: bool,
    /// Unix seconds.
    pub timestamp: i64,
}

/// `CallData`: the `call.received` / `call.accepted` / `call.rejected` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CallData {
    /// Call id.
    pub id: String,
    /// Caller.
    pub from: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// A video call.
    pub is_video: bool,
    /// A group call.
    pub is_group: bool,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// `Label`: the `label.upsert` / `label.deleted` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Label {
    /// Label id.
    pub id: String,
    /// Label name.
    pub name: String,
    /// Colour number (WhatsApp's palette index, not hex).
    pub color: i64,
    /// Colour in hex, `#ff9485`.
    pub color_hex: String,
}

/// `LabelChatAssociation`: the `label.chat.added` / `label.chat.deleted` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LabelChatAssociation {
    /// Label id.
    pub label_id: String,
    /// Chat id.
    pub chat_id: String,
    /// The label, `null` when unknown.
    pub label: Option<Label>,
}

/// `EventResponse`: an answer to an event invitation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct EventResponse {
    /// `UNKNOWN`, `GOING`, `NOT_GOING` or `MAYBE`.
    pub response: String,
    /// When, ms.
    pub timestamp_ms: i64,
    /// Extra guests.
    pub extra_guest_count: i64,
}

/// `EventResponsePayload`: the `event.response` / `event.response.failed` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventResponsePayload {
    /// WAHA id of the response message.
    pub id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Sender.
    pub from: String,
    /// Sent by us.
    #[serde(rename = "fromMe")]
    pub from_me: bool,
    /// `api` or `app`.
    pub source: MessageSource,
    /// Recipient.
    pub to: String,
    /// In groups: the sender.
    pub participant: Option<String>,
    /// Raw engine data.
    #[serde(rename = "_data")]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
    /// The event message answered.
    #[serde(rename = "eventCreationKey")]
    pub event_creation_key: MessageDestination,
    /// The answer; absent when it could not be decrypted.
    #[serde(
        rename = "eventResponse",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub event_response: Option<EventResponse>,
}

/// `EnginePayload`: the `engine.event` payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EnginePayload {
    /// The engine's event name.
    pub event: String,
    /// The engine's data.
    #[schema(value_type = Object)]
    pub data: Value,
}

#[cfg(test)]
mod tests;
