//! WAHA's message shape and the identifiers around it.
//!
//! Owns: [`WAMessage`] (`../shared/reference/waha.md` §4.2, schema `WAMessage` of WAHA's
//! spec) with its nested `WAMedia`/`WALocation`/`ReplyToMessage`, the ack codes and their
//! names, and WAHA's message-id form `{fromMe}_{chatId}_{waId}[_{participant}]` (§4.1).
//! Pure data and parsing: used by the message store, the chats and chatting APIs, the
//! session inbox (which builds messages from engine traffic) and the event payloads in
//! [`super::events`]. Plain data; lives as long as its owner.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Ack codes and names (WAHA's `WAMessageAck`): `-1 ERROR, 0 PENDING, 1 SERVER, 2 DEVICE,
/// 3 READ, 4 PLAYED`.
pub mod ack {
    /// Sending failed.
    pub const ERROR: i32 = -1;
    /// Not yet acknowledged by the server.
    pub const PENDING: i32 = 0;
    /// Received by WhatsApp's server (one tick).
    pub const SERVER: i32 = 1;
    /// Delivered to the recipient's device (two ticks).
    pub const DEVICE: i32 = 2;
    /// Read (blue ticks).
    pub const READ: i32 = 3;
    /// Voice/video note played.
    pub const PLAYED: i32 = 4;

    /// Every `(code, name)` pair, in code order.
    pub const ALL: [(i32, &str); 6] = [
        (ERROR, "ERROR"),
        (PENDING, "PENDING"),
        (SERVER, "SERVER"),
        (DEVICE, "DEVICE"),
        (READ, "READ"),
        (PLAYED, "PLAYED"),
    ];

    /// WAHA's `ackName` for a code; `UNKNOWN` for codes WAHA does not define.
    pub fn name(ack: i32) -> &'static str {
        ALL.iter()
            .find(|(code, _)| *code == ack)
            .map_or("UNKNOWN", |(_, name)| name)
    }

    /// The code of an `ackName` (exact, upper case as WAHA writes it), if valid.
    pub fn from_name(name: &str) -> Option<i32> {
        ALL.iter().find(|(_, n)| *n == name).map(|(code, _)| *code)
    }

    /// Whether moving from `current` to `new` is an advance the store accepts: acks only
    /// grow (a late DEVICE receipt must not undo READ), except that a PENDING or SERVER
    /// message may fail: ERROR is reported after the send was queued, and the server's
    /// refusal (a nack, e.g. a group that only admins may write to) comes instead of its
    /// ack, after wharf recorded the send as SERVER.
    pub fn is_advance(current: i32, new: i32) -> bool {
        new > current || ((current == PENDING || current == SERVER) && new == ERROR)
    }
}

/// Who sent a `fromMe` message: through this API or from the phone/another device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageSource {
    /// Sent through wharf's HTTP API.
    Api,
    /// Sent from the WhatsApp app (or received).
    App,
}

/// `S3MediaData`: where a media file lives when S3 media storage is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct S3MediaData {
    /// The name of the S3 bucket.
    #[serde(rename = "Bucket")]
    pub bucket: String,
    /// The key of the object in the S3 bucket (`<session>/<id>.<ext>`).
    #[serde(rename = "Key")]
    pub key: String,
}

/// `WAMedia`: the downloaded media of a message.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
pub struct WAMedia {
    /// `{WAHA_BASE_URL}/api/files/{session}/{messageId}.{ext}`, or null when not downloaded.
    #[serde(default)]
    pub url: Option<String>,
    /// Mimetype of the media.
    #[serde(default)]
    pub mimetype: Option<String>,
    /// The original file name, if any.
    #[serde(default)]
    pub filename: Option<String>,
    /// S3 attributes when S3 media storage is used.
    #[serde(default)]
    pub s3: Option<S3MediaData>,
    /// Why downloading the media failed, if it did.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub error: Option<Value>,
}

/// `WALocation`: a shared location. WAHA sends latitude/longitude as strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WALocation {
    /// Latitude, as a decimal string.
    pub latitude: String,
    /// Longitude, as a decimal string.
    pub longitude: String,
    /// A live location.
    #[serde(default)]
    pub live: bool,
    /// Place name.
    #[serde(default)]
    pub name: Option<String>,
    /// Place address.
    #[serde(default)]
    pub address: Option<String>,
    /// Place URL.
    #[serde(default)]
    pub url: Option<String>,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Thumbnail (base64 JPEG).
    #[serde(default)]
    pub thumbnail: Option<String>,
}

/// `ReplyToMessage`: the quoted message of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ReplyToMessage {
    /// The quoted message's raw WhatsApp id (`AAAA…`, not the WAHA id).
    pub id: String,
    /// Sender of the quoted message.
    #[serde(default)]
    pub participant: Option<String>,
    /// Text of the quoted message.
    #[serde(default)]
    pub body: Option<String>,
    /// The quoted message has media.
    #[serde(rename = "hasMedia", default)]
    pub has_media: bool,
    /// Its media, if downloaded.
    #[serde(default)]
    pub media: Option<WAMedia>,
    /// Raw data of the quoted message.
    #[serde(rename = "_data", default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

/// WAHA's `WAMessage`: the payload of `message` events, send answers and
/// `GET /api/{session}/chats/{chatId}/messages`. Field order and names are WAHA's
/// (waha.md §4.2); absent values serialize as `null`, never omitted, as WAHA does.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WAMessage {
    /// Message ID: `{fromMe}_{chatId}_{waId}[_{participant}]`.
    #[schema(example = "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA")]
    pub id: String,
    /// Unix timestamp (seconds) of when the message was created.
    #[schema(example = 1666943582)]
    pub timestamp: i64,
    /// The chat, or (for `fromMe` messages) our own id.
    #[schema(example = "11111111111@c.us")]
    pub from: String,
    /// Sent by the current user.
    #[serde(rename = "fromMe")]
    pub from_me: bool,
    /// `api` when sent through the API, else `app`.
    #[schema(inline)]
    pub source: MessageSource,
    /// The chat for `fromMe` messages, else our own id.
    #[schema(example = "11111111111@c.us", required = true)]
    pub to: Option<String>,
    /// For groups: the participant who sent the message.
    #[serde(default)]
    #[schema(required = true)]
    pub participant: Option<String>,
    /// For groups: the user that sent the message.
    #[serde(default)]
    pub author: Option<String>,
    /// Text (or caption).
    #[serde(default)]
    #[schema(required = true)]
    pub body: String,
    /// The message has media available for download.
    #[serde(rename = "hasMedia", default)]
    #[schema(required = true)]
    pub has_media: bool,
    /// The media, if any and downloaded.
    #[serde(default)]
    pub media: Option<WAMedia>,
    /// Deprecated duplicate of `media.url`.
    #[serde(rename = "mediaUrl", default)]
    #[schema(required = true)]
    pub media_url: Option<String>,
    /// Ack code (see [`ack`]).
    pub ack: i32,
    /// Ack name (see [`ack::name`]).
    #[serde(rename = "ackName")]
    pub ack_name: String,
    /// Location, for location messages.
    #[serde(default)]
    pub location: Option<WALocation>,
    /// vCards of a contact message.
    #[serde(rename = "vCards", default)]
    pub v_cards: Vec<String>,
    /// The quoted message of a reply, or null.
    #[serde(rename = "replyTo", default)]
    pub reply_to: Option<ReplyToMessage>,
    /// The raw engine message (WAHA: "may be changed anytime").
    #[serde(rename = "_data", default)]
    #[schema(value_type = Object)]
    pub data: Map<String, Value>,
}

impl WAMessage {
    /// Sets `ack` and its matching `ackName`.
    pub fn set_ack(&mut self, ack: i32) {
        self.ack = ack;
        self.ack_name = ack::name(ack).to_string();
    }

    /// The message as WAHA answers with `downloadMedia=false`: `hasMedia` stays, `media`
    /// and `mediaUrl` are null.
    pub fn hide_media(&mut self) {
        self.media = None;
        self.media_url = None;
    }

    /// The chat this message belongs to: the chat part of its WAHA id, or (for an id
    /// that is not in WAHA's form) `to` for own messages and `from` for the others.
    pub fn chat_id(&self) -> String {
        MessageId::parse(&self.id)
            .map(|id| id.chat_id)
            .or_else(|| if self.from_me { self.to.clone() } else { None })
            .unwrap_or_else(|| self.from.clone())
    }

    /// The raw WhatsApp id: the `waId` part of the WAHA id, or the whole id when it is
    /// not in WAHA's form.
    pub fn wa_id(&self) -> String {
        MessageId::parse(&self.id).map_or_else(|| self.id.clone(), |id| id.wa_id)
    }

    /// The sender's display name carried by the raw message, if any (`pushName` /
    /// `notifyName` / whatsmeow's `Info.PushName`), for naming one-to-one chats.
    pub fn push_name(&self) -> Option<String> {
        let d = &self.data;
        [
            d.get("pushName"),
            d.get("notifyName"),
            d.get("Info").and_then(|i| i.get("PushName")),
        ]
        .into_iter()
        .flatten()
        .find_map(|v| v.as_str().filter(|s| !s.is_empty()).map(String::from))
    }
}

/// A WAHA message id, `{fromMe}_{chatId}_{waId}[_{participant}]` (waha.md §4.1), e.g.
/// `false_11111111111@c.us_AAAA` or, in a group, `false_123@g.us_AAAA_999@lid`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageId {
    /// Sent by us.
    pub from_me: bool,
    /// The chat (`…@c.us`, `…@g.us`, `…@lid`, `…@newsletter`, `status@broadcast`).
    pub chat_id: String,
    /// The raw WhatsApp message id.
    pub wa_id: String,
    /// The sender, for messages in groups and broadcasts.
    pub participant: Option<String>,
}

impl MessageId {
    /// Builds an id from its parts.
    pub fn new(from_me: bool, chat_id: &str, wa_id: &str, participant: Option<&str>) -> Self {
        Self {
            from_me,
            chat_id: chat_id.to_string(),
            wa_id: wa_id.to_string(),
            participant: participant.filter(|p| !p.is_empty()).map(String::from),
        }
    }

    /// Parses WAHA's form; `None` when `s` is not one (a bare WhatsApp id, garbage).
    ///
    /// The chat id ends at the first `_` after its `@`; the WhatsApp id is the next
    /// segment; whatever follows is the participant (it must look like a JID).
    pub fn parse(s: &str) -> Option<Self> {
        let (from_me, rest) = if let Some(r) = s.strip_prefix("true_") {
            (true, r)
        } else {
            (false, s.strip_prefix("false_")?)
        };
        let at = rest.find('@')?;
        let chat_end = at + rest[at..].find('_')?;
        let chat_id = &rest[..chat_end];
        let rest = &rest[chat_end + 1..];
        let (wa_id, participant) = match rest.split_once('_') {
            Some((wa, p)) => (wa, Some(p)),
            None => (rest, None),
        };
        if !is_chat_id(chat_id) || wa_id.is_empty() || participant.is_some_and(|p| !p.contains('@'))
        {
            return None;
        }
        Some(Self::new(from_me, chat_id, wa_id, participant))
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}_{}", self.from_me, self.chat_id, self.wa_id)?;
        if let Some(p) = &self.participant {
            write!(f, "_{p}")?;
        }
        Ok(())
    }
}

/// Builds a WAHA message id string (shortcut for [`MessageId::new`] + `to_string`).
pub fn message_id(from_me: bool, chat_id: &str, wa_id: &str, participant: Option<&str>) -> String {
    MessageId::new(from_me, chat_id, wa_id, participant).to_string()
}

/// Whether `s` is a WhatsApp chat id in WAHA's forms (waha.md §4.1): `<digits>@c.us`,
/// `<id>@g.us` (digits, or the legacy `creator-timestamp`), `<digits>@lid`,
/// `<digits>@newsletter`, `status@broadcast` and `<digits>@broadcast` (lists).
/// `@s.whatsapp.net` is refused: WAHA never uses it outside `_data`.
pub fn is_chat_id(s: &str) -> bool {
    let Some((user, server)) = s.split_once('@') else {
        return false;
    };
    let digits = |u: &str| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit());
    match server {
        "c.us" | "lid" | "newsletter" => digits(user),
        "g.us" => {
            !user.is_empty()
                && !user.starts_with('-')
                && !user.ends_with('-')
                && user.bytes().all(|b| b.is_ascii_digit() || b == b'-')
        }
        "broadcast" => user == "status" || digits(user),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_round_trip() {
        for s in [
            "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA",
            "true_123@g.us_3EB0ABC_999@lid",
            "false_status@broadcast_ABC_1555@c.us",
            "true_120363@newsletter_99",
        ] {
            let id = MessageId::parse(s).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(id.to_string(), s);
        }
        let id = MessageId::parse("true_123@g.us_3EB0ABC_999@lid").unwrap();
        assert!(id.from_me);
        assert_eq!(id.chat_id, "123@g.us");
        assert_eq!(id.wa_id, "3EB0ABC");
        assert_eq!(id.participant.as_deref(), Some("999@lid"));
        for bad in [
            "AAAA",
            "maybe_1@c.us_AA",
            "true_1@c.us",
            "true_1@c.us_",
            "true_abc@c.us_AA",
            "true_1@c.us_AA_notajid",
        ] {
            assert_eq!(MessageId::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn chat_ids() {
        for ok in [
            "1555@c.us",
            "1203630@g.us",
            "1555-1600000000@g.us",
            "99@lid",
            "1@newsletter",
            "status@broadcast",
        ] {
            assert!(is_chat_id(ok), "{ok}");
        }
        for bad in [
            "1555",
            "abc@c.us",
            "1@s.whatsapp.net",
            "@c.us",
            "x@broadcast",
            "",
        ] {
            assert!(!is_chat_id(bad), "{bad}");
        }
    }

    #[test]
    fn ack_names_and_order() {
        assert_eq!(ack::name(ack::READ), "READ");
        assert_eq!(ack::name(7), "UNKNOWN");
        assert_eq!(ack::from_name("PLAYED"), Some(4));
        assert_eq!(ack::from_name("read"), None);
        assert!(ack::is_advance(ack::SERVER, ack::READ));
        assert!(!ack::is_advance(ack::READ, ack::DEVICE));
        assert!(ack::is_advance(ack::PENDING, ack::ERROR));
        assert!(ack::is_advance(ack::SERVER, ack::ERROR));
        assert!(!ack::is_advance(ack::DEVICE, ack::ERROR));
    }

    #[test]
    fn serializes_every_field_with_nulls() {
        let m = WAMessage {
            id: "false_1@c.us_A".into(),
            timestamp: 1,
            from: "1@c.us".into(),
            from_me: false,
            source: MessageSource::App,
            to: None,
            participant: None,
            author: None,
            body: "hi".into(),
            has_media: false,
            media: None,
            media_url: None,
            ack: 1,
            ack_name: "SERVER".into(),
            location: None,
            v_cards: vec![],
            reply_to: None,
            data: Map::new(),
        };
        assert_eq!(
            serde_json::to_string(&m).unwrap(),
            r#"{"id":"false_1@c.us_A","timestamp":1,"from":"1@c.us","fromMe":false,"source":"app","to":null,"participant":null,"author":null,"body":"hi","hasMedia":false,"media":null,"mediaUrl":null,"ack":1,"ackName":"SERVER","location":null,"vCards":[],"replyTo":null,"_data":{}}"#
        );
    }
}
