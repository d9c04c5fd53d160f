//! Inbound media through the engine: what a media message carries ([`InboundMedia`]) and
//! the opaque reference that can fetch it ([`MediaRef`]).
//!
//! Owns: the download-and-decrypt call (whatsapp-rust streams the CDN body through the
//! decryptor into a file: constant memory, one copy on disk; the CDN client, with the
//! mock network's scheme rewrite, is `media_http`). Called by `engine::run` (which
//! attaches the connection), by `messaging::inbound` (which builds [`InboundMedia`]) and
//! by the session's media pipeline (`sessions::inbox`), which calls
//! [`MediaRef::download_to`] off the event path. A [`MediaRef`] lives as long as the
//! inbound message that holds it; it reaches the connection it arrived on, and answers
//! [`Error::NotRunning`] once that connection is gone.

use std::sync::Arc;

use whatsapp_rust::{download::Downloadable, waproto::whatsapp as wa};

use super::{Error, Session};

/// What kind of media a message carries (WhatsApp's sub-message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `imageMessage`.
    Image,
    /// `videoMessage` (or a round video note, `ptvMessage`).
    Video,
    /// `audioMessage` without `ptt`.
    Audio,
    /// `audioMessage` with `ptt` (a voice note).
    Voice,
    /// `documentMessage` (also inside `documentWithCaptionMessage`).
    Document,
    /// `stickerMessage`.
    Sticker,
}

impl MediaKind {
    /// WAHA/whatsmeow's name of the message type (`_data.type`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Voice => "ptt",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }
}

/// The media of an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMedia {
    /// What it is.
    pub kind: MediaKind,
    /// Its mimetype as the sender declared it (`""` when it did not).
    pub mimetype: String,
    /// The document's file name, if any.
    pub filename: Option<String>,
    /// Declared size in bytes.
    pub size: Option<u64>,
    /// How to fetch it.
    pub source: MediaRef,
}

/// An opaque handle that downloads one message's media: the message itself (it holds the
/// CDN path and the keys) and the connection it arrived on.
#[derive(Clone)]
pub struct MediaRef {
    message: Arc<wa::Message>,
    kind: MediaKind,
    /// Set by `engine::run` when the message is handed over (the connection it came on).
    session: Option<Session>,
}

impl std::fmt::Debug for MediaRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MediaRef")
            .field("kind", &self.kind)
            .finish()
    }
}

/// Two references are equal when they point at the same message.
impl PartialEq for MediaRef {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.message, &other.message) && self.kind == other.kind
    }
}

impl MediaRef {
    pub(super) fn new(message: Arc<wa::Message>, kind: MediaKind) -> Self {
        Self {
            message,
            kind,
            session: None,
        }
    }

    pub(super) fn attach(&mut self, session: &Session) {
        self.session = Some(session.clone());
    }

    fn downloadable(&self) -> Option<&dyn Downloadable> {
        let m = &*self.message;
        match self.kind {
            MediaKind::Image => m.image_message.as_option().map(|x| x as &dyn Downloadable),
            MediaKind::Video => m
                .video_message
                .as_option()
                .or_else(|| m.ptv_message.as_option())
                .map(|x| x as &dyn Downloadable),
            MediaKind::Audio | MediaKind::Voice => {
                m.audio_message.as_option().map(|x| x as &dyn Downloadable)
            }
            MediaKind::Document => document(m).map(|x| x as &dyn Downloadable),
            MediaKind::Sticker => m
                .sticker_message
                .as_option()
                .map(|x| x as &dyn Downloadable),
        }
    }

    /// Downloads and decrypts the media into `file` (emptied first; rewound to the start
    /// when done). The CDN body is streamed through the decryptor on a blocking thread, so
    /// memory stays small whatever the file's size; on failure the file is emptied.
    ///
    /// # Errors
    /// The connection is gone ([`Error::NotRunning`]) or the download failed
    /// ([`Error::Download`], with WhatsApp's reason).
    ///
    /// # Cancel safety
    /// Dropping the future abandons the download; the blocking part may still finish
    /// writing into the (then unused) file.
    pub async fn download_to(&self, file: std::fs::File) -> Result<std::fs::File, Error> {
        let session = self.session.as_ref().ok_or(Error::NotRunning)?;
        let client = session.client()?;
        let downloadable = self
            .downloadable()
            .ok_or_else(|| Error::Download("the message has no media".into()))?;
        client
            .download_to_writer(downloadable, file)
            .await
            .map_err(|e| Error::Download(format!("{e:#}")))
    }
}

/// The document of a message, also inside `documentWithCaptionMessage`.
pub(super) fn document(m: &wa::Message) -> Option<&wa::message::DocumentMessage> {
    m.document_message.as_option().or_else(|| {
        m.document_with_caption_message
            .as_option()
            .and_then(|f| f.message.as_option())
            .and_then(|inner| inner.document_message.as_option())
    })
}

/// The media of a (base) message, if it has one.
pub(super) fn inbound_media(m: &Arc<wa::Message>) -> Option<(InboundMedia, Option<String>)> {
    let media = |kind: MediaKind,
                 mimetype: &Option<String>,
                 filename: Option<String>,
                 size: Option<u64>| InboundMedia {
        kind,
        mimetype: mimetype.clone().unwrap_or_default(),
        filename,
        size,
        source: MediaRef::new(m.clone(), kind),
    };
    if let Some(x) = m.image_message.as_option() {
        return Some((
            media(MediaKind::Image, &x.mimetype, None, x.file_length),
            x.caption.clone(),
        ));
    }
    if let Some(x) = m
        .video_message
        .as_option()
        .or_else(|| m.ptv_message.as_option())
    {
        return Some((
            media(MediaKind::Video, &x.mimetype, None, x.file_length),
            x.caption.clone(),
        ));
    }
    if let Some(x) = m.audio_message.as_option() {
        let kind = if x.ptt == Some(true) {
            MediaKind::Voice
        } else {
            MediaKind::Audio
        };
        return Some((media(kind, &x.mimetype, None, x.file_length), None));
    }
    if let Some(x) = document(m) {
        return Some((
            media(
                MediaKind::Document,
                &x.mimetype,
                x.file_name.clone(),
                x.file_length,
            ),
            x.caption.clone(),
        ));
    }
    if let Some(x) = m.sticker_message.as_option() {
        return Some((
            media(MediaKind::Sticker, &x.mimetype, None, x.file_length),
            None,
        ));
    }
    None
}
