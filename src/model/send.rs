//! The request and response bodies of WAHA's send operations beyond `sendText`: media,
//! locations, contact cards, polls and votes, lists, buttons, link previews, stars, events,
//! the deprecated `reply`/`sendLinkPreview`/`messages`/`checkNumberStatus`, and the media
//! conversion routes (`../shared/reference/waha-openapi.json`, same schema names).
//!
//! Owns: serde + utoipa shapes only; what a valid `file` is ([`FileInput::source`]) is the
//! one rule kept here because every media route shares it. Used by `api/sending.rs`
//! (parsing, the OpenAPI document) and `sessions::sending` (the domain reads them); plain
//! data that lives for one request.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use crate::media::spool::{self, Spooled};

/// A file's `data`: base64 text, or — when it was large — the bytes the body reader already
/// decoded to disk (`api::extract`, `media::spool`); the wire shape is a string either way.
#[derive(Debug, Clone)]
pub enum FileData {
    /// The base64 text as sent.
    Base64(String),
    /// Decoded while the request arrived.
    Spooled(Arc<Spooled>),
}

impl FileData {
    /// Whether nothing was sent (`""` counts as absent, as in WAHA).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        match self {
            Self::Base64(text) => text.is_empty(),
            Self::Spooled(_) => false,
        }
    }
}

impl From<String> for FileData {
    fn from(text: String) -> Self {
        Self::Base64(text)
    }
}

impl From<&str> for FileData {
    fn from(text: &str) -> Self {
        Self::Base64(text.to_string())
    }
}

impl<'de> Deserialize<'de> for FileData {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        Ok(match spool::take(&text) {
            Some(file) => Self::Spooled(file),
            None => Self::Base64(text),
        })
    }
}

fn default_session() -> String {
    "default".into()
}

/// `RemoteFile` (`{mimetype, filename?, url}`) or `BinaryFile` (`{mimetype, filename?,
/// data}`, base64). One struct takes both; [`FileInput::source`] enforces "exactly one of
/// `url` and `data`".
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct FileInput {
    /// MIME type of the attachment.
    #[schema(example = "image/jpeg")]
    #[serde(default)]
    pub mimetype: Option<String>,
    /// Document file name. Optional
    #[schema(example = "filename.jpg")]
    #[serde(default)]
    pub filename: Option<String>,
    /// Where to fetch the file (`http://` or `https://`).
    #[schema(example = "https://picsum.photos/1024")]
    #[serde(default)]
    pub url: Option<String>,
    /// Base64-encoded data of the file
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub data: Option<FileData>,
}

/// `RemoteFile` (documentation of [`FileInput`]'s URL form).
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; FileInput parses it")]
pub struct RemoteFile {
    /// MIME type of the attachment.
    #[schema(example = "image/jpeg")]
    mimetype: String,
    /// Document file name. Value can be null
    #[schema(example = "filename.jpg")]
    filename: Option<String>,
    /// Where to fetch the file (`http://` or `https://`).
    #[schema(example = "https://picsum.photos/1024")]
    url: String,
}

/// `BinaryFile` (documentation of [`FileInput`]'s base64 form).
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; FileInput parses it")]
pub struct BinaryFile {
    /// MIME type of the attachment.
    #[schema(example = "image/jpeg")]
    mimetype: String,
    /// Document file name. Optional
    #[schema(example = "filename.jpeg")]
    filename: Option<String>,
    /// Base64-encoded data of the file
    data: String,
}

/// `RemoteFile | BinaryFile`, inlined where a `file` is documented.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; FileInput parses it")]
#[serde(untagged)]
pub enum FileDoc {
    /// By URL.
    Remote(RemoteFile),
    /// By content.
    Binary(BinaryFile),
}

/// `VCardContact`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; ContactInput parses it")]
pub struct VCardContact {
    /// The vcard string
    vcard: String,
}

/// `Contact`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; ContactInput parses it")]
pub struct Contact {
    /// The full name of the contact
    #[serde(rename = "fullName")]
    full_name: String,
    /// The organization of the contact
    organization: Option<String>,
    /// The phone number of the contact
    #[serde(rename = "phoneNumber")]
    phone_number: String,
    /// The whatsapp id of the contact. DO NOT add + or @c.us
    #[serde(rename = "whatsappId")]
    whatsapp_id: Option<String>,
    /// The vcard string (built from the fields when null)
    vcard: Option<String>,
}

/// `VCardContact | Contact`, inlined where a contact is documented.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; ContactInput parses it")]
#[serde(untagged)]
pub enum ContactDoc {
    /// A raw vCard.
    VCard(VCardContact),
    /// Fields.
    Fields(Contact),
}

/// `FileURL`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; PreviewImage parses it")]
pub struct FileURL {
    /// Where to fetch it.
    url: String,
}

/// `FileContent`.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; PreviewImage parses it")]
pub struct FileContent {
    /// Base64-encoded data of the file
    data: String,
}

/// `FileURL | FileContent`, inlined where a preview image is documented.
#[derive(ToSchema)]
#[allow(dead_code, reason = "documents the wire shape; PreviewImage parses it")]
#[serde(untagged)]
pub enum PreviewImageDoc {
    /// By URL.
    Url(FileURL),
    /// By content.
    Content(FileContent),
}

/// Where a file's bytes come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileSource<'a> {
    /// Fetch this URL.
    Url(&'a str),
    /// Decode this base64.
    Data(&'a str),
    /// Already decoded (a large `data`, see [`FileData`]).
    Spooled(&'a Arc<Spooled>),
}

/// Why a `file` object is not valid (worded by `api/error.rs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileProblem {
    /// `mimetype` missing or empty.
    MissingMimetype,
    /// Both `url` and `data`.
    BothUrlAndData,
    /// Neither `url` nor `data`.
    NeitherUrlNorData,
}

impl FileInput {
    /// The file's source, when exactly one of `url` and `data` is given.
    ///
    /// # Errors
    /// Both or neither are given.
    pub fn source(&self) -> Result<FileSource<'_>, FileProblem> {
        let url = self.url.as_deref().filter(|u| !u.is_empty());
        let data = self.data.as_ref().filter(|d| !d.is_empty());
        match (url, data) {
            (Some(u), None) => Ok(FileSource::Url(u)),
            (None, Some(FileData::Base64(d))) => Ok(FileSource::Data(d)),
            (None, Some(FileData::Spooled(f))) => Ok(FileSource::Spooled(f)),
            (Some(_), Some(_)) => Err(FileProblem::BothUrlAndData),
            (None, None) => Err(FileProblem::NeitherUrlNorData),
        }
    }

    /// The MIME type, required on every send.
    ///
    /// # Errors
    /// It is missing or empty.
    pub fn mimetype(&self) -> Result<&str, FileProblem> {
        self.mimetype
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .ok_or(FileProblem::MissingMimetype)
    }
}

/// Image, file and sticker requests share one shape under three WAHA schema names.
macro_rules! media_request {
    ($($(#[$doc:meta])* $name:ident),*) => {$(
        $(#[$doc])*
        #[derive(Debug, Clone, Deserialize, ToSchema)]
        pub struct $name {
            /// Chat id.
            #[schema(example = "11111111111@c.us")]
            #[serde(rename = "chatId")]
            pub chat_id: String,
            /// The file.
            #[schema(value_type = FileDoc, inline)]
            pub file: FileInput,
            /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
            #[serde(default)]
            pub reply_to: Option<String>,
            /// Caption.
            #[serde(default)]
            pub caption: Option<String>,
            /// Pre-generated message id.
            #[serde(default)]
            pub id: Option<String>,
            /// Session name.
            #[serde(default = "default_session")]
            pub session: String,
        }
    )*};
}

media_request!(
    /// `MessageImageRequest`.
    MessageImageRequest,
    /// `MessageFileRequest`.
    MessageFileRequest,
    /// `MessageStickerRequest` (a WebP image).
    MessageStickerRequest
);

/// `MessageVoiceRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageVoiceRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The file (`audio/ogg; codecs=opus` unless `convert`).
    #[schema(value_type = FileDoc, inline)]
    pub file: FileInput,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Convert the input file to the required format using ffmpeg before sending
    #[serde(default)]
    #[schema(value_type = bool)]
    pub convert: Option<bool>,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageVideoRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageVideoRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The file (`video/mp4` unless `convert`).
    #[schema(value_type = FileDoc, inline)]
    pub file: FileInput,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Send as video note (aka instant or round video).
    #[serde(default, rename = "asNote")]
    pub as_note: Option<bool>,
    /// Convert the input file to the required format using ffmpeg before sending
    #[serde(default)]
    #[schema(value_type = bool)]
    pub convert: Option<bool>,
    /// Caption.
    #[serde(default)]
    pub caption: Option<String>,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageLocationRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageLocationRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// Latitude.
    #[schema(example = 38.8937255)]
    pub latitude: f64,
    /// Longitude.
    #[schema(example = -77.0969763)]
    pub longitude: f64,
    /// Place name.
    #[schema(example = "Our office")]
    pub title: String,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `VCardContact` or `Contact`: a raw vCard, or the fields one is built from.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct ContactInput {
    /// The vcard string
    #[serde(default)]
    pub vcard: Option<String>,
    /// The full name of the contact
    #[serde(default, rename = "fullName")]
    pub full_name: Option<String>,
    /// The organization of the contact
    #[serde(default)]
    pub organization: Option<String>,
    /// The phone number of the contact
    #[serde(default, rename = "phoneNumber")]
    pub phone_number: Option<String>,
    /// The whatsapp id of the contact. DO NOT add + or @c.us
    #[serde(default, rename = "whatsappId")]
    pub whatsapp_id: Option<String>,
}

/// `MessageContactVcardRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageContactVcardRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// The contacts.
    #[schema(value_type = Vec<ContactDoc>, inline)]
    pub contacts: Vec<ContactInput>,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessagePoll`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessagePoll {
    /// Question.
    #[schema(example = "How are you?")]
    pub name: String,
    /// Options.
    #[schema(example = json!(["Awesome!", "Good!", "Not bad!"]))]
    pub options: Vec<String>,
    /// Several answers allowed. WAHA documents it as an object (the SDK's model then
    /// sends `{}`), so anything but `true` means one answer.
    #[serde(default, rename = "multipleAnswers")]
    #[schema(value_type = bool)]
    pub multiple_answers: Option<Value>,
}

impl MessagePoll {
    /// Whether several answers are allowed.
    pub fn multiple(&self) -> bool {
        matches!(self.multiple_answers, Some(Value::Bool(true)))
    }
}

/// `MessagePollRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessagePollRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The poll.
    pub poll: MessagePoll,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessagePollVoteRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessagePollVoteRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The ID of the poll message. Format: {fromMe}_{chatID}_{messageId}[_{participant}] or just ID for GOWS
    #[serde(rename = "pollMessageId")]
    pub poll_message_id: String,
    /// Only for Channels - server message id (if known); accepted, not used.
    #[serde(default, rename = "pollServerId")]
    pub poll_server_id: Option<f64>,
    /// Poll options you are voting for. WAHA's document nests them one level deeper
    /// (the SDK then sends `[["A"]]`); both forms are accepted.
    #[schema(value_type = Vec<String>)]
    pub votes: Vec<Vote>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// One entry of `votes`: an option name, or a list of them.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Vote {
    /// `"A"`.
    One(String),
    /// `["A", "B"]`.
    Many(Vec<String>),
}

/// The option names of `votes`, flattened.
pub fn vote_options(votes: Vec<Vote>) -> Vec<String> {
    votes
        .into_iter()
        .flat_map(|v| match v {
            Vote::One(o) => vec![o],
            Vote::Many(os) => os,
        })
        .collect()
}

/// `FileURL` or `FileContent`: a link-preview image.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct PreviewImage {
    /// Where to fetch it.
    #[serde(default)]
    pub url: Option<String>,
    /// Base64-encoded data of the file
    #[serde(default)]
    pub data: Option<String>,
}

/// `LinkPreviewData`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct LinkPreviewData {
    /// The image.
    #[serde(default)]
    #[schema(value_type = Option<PreviewImageDoc>, inline)]
    pub image: Option<PreviewImage>,
    /// The previewed URL.
    pub url: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
}

/// `MessageLinkCustomPreviewRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageLinkCustomPreviewRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The text to send. MUST include the URL provided in preview.url
    pub text: String,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Accepted; the thumbnail is always inlined.
    #[serde(default, rename = "linkPreviewHighQuality")]
    pub link_preview_high_quality: Option<bool>,
    /// The preview.
    pub preview: LinkPreviewData,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `Row`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Row {
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Id.
    #[serde(rename = "rowId")]
    pub row_id: String,
}

/// `Section`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Section {
    /// Title.
    pub title: String,
    /// Rows.
    pub rows: Vec<Row>,
}

/// `SendListMessage`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendListMessage {
    /// Title.
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: Option<String>,
    /// Footer.
    #[serde(default)]
    pub footer: Option<String>,
    /// Button text.
    pub button: String,
    /// Sections.
    pub sections: Vec<Section>,
}

/// `SendListRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendListRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The list.
    pub message: SendListMessage,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `SendButtonsRequest` (parsed, then refused: GOWS does not implement it).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SendButtonsRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Header.
    #[serde(default)]
    pub header: Option<String>,
    /// Header image.
    #[serde(default, rename = "headerImage")]
    #[schema(value_type = Option<FileDoc>, inline)]
    pub header_image: Option<FileInput>,
    /// Body.
    #[serde(default)]
    pub body: Option<String>,
    /// Footer.
    #[serde(default)]
    pub footer: Option<String>,
    /// Buttons.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub buttons: Vec<Value>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageButtonReply` (parsed, then refused: GOWS does not implement it).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageButtonReply {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The ID of the message to reply to.
    #[serde(default, rename = "replyTo")]
    pub reply_to: Option<String>,
    /// Text of the chosen button.
    #[serde(default, rename = "selectedDisplayText")]
    pub selected_display_text: Option<String>,
    /// Id of the chosen button.
    #[serde(default, rename = "selectedButtonID")]
    pub selected_button_id: Option<String>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageStarRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageStarRequest {
    /// Message id.
    #[schema(example = "false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA")]
    #[serde(rename = "messageId")]
    pub message_id: String,
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Star (`true`) or unstar.
    pub star: bool,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `NewMessageIDResponse`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NewMessageIDResponse {
    /// Pre-generated message id
    #[schema(example = "BBBBBBBBBBBBBBBBB")]
    pub id: String,
}

/// `EventLocation`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EventLocation {
    /// Name of the location
    pub name: String,
}

/// `EventMessage`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EventMessage {
    /// Name of the event
    pub name: String,
    /// Description of the event
    #[serde(default)]
    pub description: Option<String>,
    /// Start time of the event (Unix timestamp in seconds)
    #[serde(rename = "startTime")]
    pub start_time: f64,
    /// End time of the event (Unix timestamp in seconds)
    #[serde(default, rename = "endTime")]
    pub end_time: Option<f64>,
    /// Location of the event
    #[serde(default)]
    pub location: Option<EventLocation>,
    /// Whether extra guests are allowed
    #[serde(default, rename = "extraGuestsAllowed")]
    pub extra_guests_allowed: Option<bool>,
}

/// `EventMessageRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct EventMessageRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// The event.
    pub event: EventMessage,
}

/// `MessageReplyRequest` (deprecated `POST /api/reply`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageReplyRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// The ID of the message to reply to - false_11111111111@c.us_AAAAAAAAAAAAAAAAAAAA
    #[serde(default)]
    pub reply_to: Option<String>,
    /// Text.
    pub text: String,
    /// Accepted; not used.
    #[serde(default, rename = "linkPreview")]
    pub link_preview: Option<bool>,
    /// Accepted; not used.
    #[serde(default, rename = "linkPreviewHighQuality")]
    pub link_preview_high_quality: Option<bool>,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `MessageLinkPreviewRequest` (deprecated `POST /api/sendLinkPreview`).
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct MessageLinkPreviewRequest {
    /// Chat id.
    #[schema(example = "11111111111@c.us")]
    #[serde(rename = "chatId")]
    pub chat_id: String,
    /// Pre-generated message id.
    #[serde(default)]
    pub id: Option<String>,
    /// The URL (sent as the text, with its preview).
    pub url: String,
    /// Preview title.
    pub title: String,
    /// Session name.
    #[serde(default = "default_session")]
    pub session: String,
}

/// `VoiceFileDTO`: a file to convert to a voice note.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct VoiceFileDTO {
    /// The URL for the voice file
    #[serde(default)]
    pub url: Option<String>,
    /// Base64 content of the file
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub data: Option<FileData>,
}

/// `VideoFileDTO`: a file to convert to an MP4 video.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct VideoFileDTO {
    /// The URL for the video file
    #[serde(default)]
    pub url: Option<String>,
    /// Base64 content of the file
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub data: Option<FileData>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_needs_exactly_one_source_and_a_mimetype() {
        let f = |url: Option<&str>, data: Option<&str>| FileInput {
            mimetype: Some("image/png".into()),
            filename: None,
            url: url.map(String::from),
            data: data.map(FileData::from),
        };
        assert_eq!(
            f(Some("http://x"), None).source(),
            Ok(FileSource::Url("http://x"))
        );
        assert_eq!(f(None, Some("AA==")).source(), Ok(FileSource::Data("AA==")));
        assert_eq!(
            f(Some("http://x"), Some("AA==")).source(),
            Err(FileProblem::BothUrlAndData)
        );
        assert_eq!(f(None, None).source(), Err(FileProblem::NeitherUrlNorData));
        assert_eq!(
            FileInput::default().mimetype(),
            Err(FileProblem::MissingMimetype)
        );
    }
}
