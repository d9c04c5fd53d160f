//! Sending everything that is not plain text: what happens around one engine send for the
//! media, location, contact, poll, event, list and link-preview routes.
//!
//! Owns: turning a WAHA `file` (`url` or base64 `data`) into a plaintext temp file —
//! fetched with a size cap and a timeout, streamed to disk chunk by chunk, never held whole
//! in memory; decoded base64 is written out the same way — then the engine send, and
//! recording what was sent (history + `message.any`) only after WhatsApp took it, so a
//! failed fetch, upload or send leaves no trace. Called by the thin handlers of
//! `api/sending.rs`; never imports actix. Nothing outlives a call: temp files are removed
//! when their [`tempfile::TempPath`] drops, on every path.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Map, Value, json};
use tokio::io::AsyncWriteExt;

use super::{Error, Result, SessionManager};
use crate::{
    engine::{
        self,
        outgoing_media::{
            Envelope, MediaKind, OutgoingContact, OutgoingEvent, OutgoingLinkPreview, OutgoingList,
            OutgoingLocation, OutgoingMedia, OutgoingPoll, PollVote, SentMessage,
        },
    },
    events::EventContext,
    model::{
        events::Event,
        message::{
            MessageId, MessageSource, ReplyToMessage, WALocation, WAMedia, WAMessage, ack,
            message_id,
        },
        send::{ContactInput, FileData, FileInput, FileProblem, FileSource},
    },
};

/// Bounds on fetching a `file.url` (from `Config`), and the app's client that fetches it.
#[derive(Debug, Clone)]
pub struct FetchLimits {
    /// Largest file accepted, bytes.
    pub max_bytes: u64,
    /// Whole-fetch deadline.
    pub timeout: Duration,
    /// The app's egress policy: literal addresses are checked before any request (they
    /// never reach the client's resolver).
    pub egress: crate::egress::EgressPolicy,
    /// The app's client for user-given URLs ([`crate::egress::EgressPolicy::http_client`]).
    pub http: reqwest::Client,
}

/// Why a media send was refused before anything was sent (data; wording in `api/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The `file` object is malformed.
    #[error("invalid file: {0:?}")]
    File(FileProblem),
    /// `file.data` is not base64.
    #[error("file.data is not valid base64")]
    InvalidBase64,
    /// `file.url` is not an `http(s)://` URL.
    #[error("file.url {0:?} is not an http(s) URL")]
    NotHttpUrl(String),
    /// Fetching `file.url` failed (unreachable, error status, timeout).
    #[error("could not fetch {url}: {reason}")]
    FetchFailed {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The file is bigger than the cap.
    #[error("the file is larger than {max_bytes} bytes")]
    TooLarge {
        /// The cap.
        max_bytes: u64,
    },
    /// Staging the file on disk failed (a server-side problem).
    #[error("cannot stage the file: {0}")]
    Disk(String),
    /// `convert: true` (or a conversion route) needs `ffmpeg`, which is not installed.
    #[error("ffmpeg is not installed")]
    FfmpegMissing,
    /// ffmpeg could not convert the file (not audio/video, corrupt, too slow).
    #[error("cannot convert the file: {0}")]
    Unconvertible(String),
    /// The operation exists in WAHA but its GOWS engine does not implement it.
    #[error("not implemented by the engine")]
    NotImplemented,
    /// `forwardMessage` of a media message whose file wharf does not have (not
    /// downloaded, failed, or swept); the reason says which.
    #[error("cannot forward the media: {0}")]
    NotForwardable(String),
}

impl From<MediaError> for Error {
    fn from(e: MediaError) -> Self {
        Error::Media(e)
    }
}

/// A media send (`sendImage`, `sendFile`, `sendVoice`, `sendVideo`, `sendSticker`).
#[derive(Debug, Clone)]
pub struct SendMedia {
    /// WAHA chat id.
    pub chat: String,
    /// The file.
    pub file: FileInput,
    /// What it becomes.
    pub kind: MediaKind,
    /// Caption.
    pub caption: Option<String>,
    /// WAHA id of the message replied to.
    pub reply_to: Option<String>,
    /// Pre-generated WhatsApp id.
    pub id: Option<String>,
    /// Convert with ffmpeg first (voice → OGG/Opus, video → MP4/H.264).
    pub convert: bool,
}

/// What a non-media send carries (its WAMessage fields and the engine message).
#[derive(Debug, Clone)]
pub enum SendKind {
    /// `sendLocation`.
    Location(OutgoingLocation),
    /// `sendContactVcard`.
    Contacts(Vec<ContactInput>),
    /// `sendPoll`.
    Poll(OutgoingPoll),
    /// `POST /api/{session}/events`.
    Event(OutgoingEvent),
    /// `sendList`.
    List(OutgoingList),
    /// `send/link-custom-preview` and `sendLinkPreview`: the image (if any) is fetched.
    LinkPreview {
        /// Text, URL, title, description.
        preview: OutgoingLinkPreview,
        /// `preview.image`, when given.
        image: Option<FileInput>,
    },
}

/// A staged media file and what it is sent as.
struct StagedMedia {
    staged: Staged,
    kind: MediaKind,
    mimetype: String,
    filename: Option<String>,
    caption: Option<String>,
    convert: bool,
}

/// A plaintext file on disk, removed when dropped.
struct Staged {
    path: StagedPath,
    len: u64,
}

/// A staged file's path: a temp file of its own, or one the body reader spooled (shared
/// with the request's DTO; removed when both are done with it).
enum StagedPath {
    Own(tempfile::TempPath),
    Spooled(std::sync::Arc<crate::media::spool::Spooled>),
}

impl std::ops::Deref for StagedPath {
    type Target = std::path::Path;
    fn deref(&self) -> &std::path::Path {
        match self {
            Self::Own(path) => path,
            Self::Spooled(file) => file.path(),
        }
    }
}

impl AsRef<std::path::Path> for StagedPath {
    fn as_ref(&self) -> &std::path::Path {
        self
    }
}

fn disk(e: impl std::fmt::Display) -> MediaError {
    MediaError::Disk(e.to_string())
}

async fn temp_file() -> std::result::Result<(tokio::fs::File, tempfile::TempPath), MediaError> {
    let file =
        tokio::task::spawn_blocking(|| tempfile::Builder::new().prefix("wharf-send-").tempfile())
            .await
            .map_err(disk)?
            .map_err(disk)?;
    let (file, path) = file.into_parts();
    Ok((tokio::fs::File::from_std(file), path))
}

/// Fetches `url` into a temp file: streamed, capped, under one deadline.
async fn fetch(url: &str, limits: &FetchLimits) -> std::result::Result<Staged, MediaError> {
    let parsed = reqwest::Url::parse(url).map_err(|_| MediaError::NotHttpUrl(url.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(MediaError::NotHttpUrl(url.to_string()));
    }
    let failed = |reason: String| MediaError::FetchFailed {
        url: url.to_string(),
        reason,
    };
    // Literal addresses never reach the policy's resolver: checked here.
    if let Err(e) = limits.egress.check_url(url) {
        return Err(failed(e.to_string()));
    }
    let work = async {
        let mut resp = limits
            .http
            .get(parsed)
            .send()
            .await
            .map_err(|e| failed(chain(&e)))?;
        if !resp.status().is_success() {
            return Err(failed(format!("HTTP {}", resp.status().as_u16())));
        }
        let too_large = MediaError::TooLarge {
            max_bytes: limits.max_bytes,
        };
        if resp.content_length().is_some_and(|n| n > limits.max_bytes) {
            return Err(too_large);
        }
        let (mut file, path) = temp_file().await?;
        let mut len: u64 = 0;
        while let Some(chunk) = resp.chunk().await.map_err(|e| failed(chain(&e)))? {
            len += chunk.len() as u64;
            if len > limits.max_bytes {
                return Err(too_large);
            }
            file.write_all(&chunk).await.map_err(disk)?;
        }
        file.flush().await.map_err(disk)?;
        Ok(Staged {
            path: StagedPath::Own(path),
            len,
        })
    };
    match tokio::time::timeout(limits.timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(failed(format!("timed out after {:?}", limits.timeout))),
    }
}

/// The error and its sources, one line (reqwest hides the useful part in the chain).
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Decodes base64 `data` into a temp file, one bounded chunk at a time.
async fn decode(data: &str, limits: &FetchLimits) -> std::result::Result<Staged, MediaError> {
    // A `data:<mime>;base64,` prefix is tolerated (browsers hand those out).
    let data = match data.split_once(";base64,") {
        Some((head, rest)) if head.starts_with("data:") => rest,
        _ => data,
    };
    // MIME-style line breaks: rare, and only then is a compact copy made.
    let compact;
    let data = if data.bytes().any(|b| b.is_ascii_whitespace()) {
        compact = data
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect::<String>();
        compact.as_str()
    } else {
        data
    };
    let decoded_len = (data.len() / 4) * 3;
    if decoded_len as u64 > limits.max_bytes.saturating_add(3) {
        return Err(MediaError::TooLarge {
            max_bytes: limits.max_bytes,
        });
    }
    let (mut file, path) = temp_file().await?;
    let engine = base64::engine::general_purpose::STANDARD;
    let mut len: u64 = 0;
    // 64 KiB of base64 per step; a multiple of 4 so that padding only ends the last one.
    for chunk in data.as_bytes().chunks(64 * 1024) {
        let bytes = engine
            .decode(chunk)
            .map_err(|_| MediaError::InvalidBase64)?;
        len += bytes.len() as u64;
        file.write_all(&bytes).await.map_err(disk)?;
    }
    if len > limits.max_bytes {
        return Err(MediaError::TooLarge {
            max_bytes: limits.max_bytes,
        });
    }
    file.flush().await.map_err(disk)?;
    Ok(Staged {
        path: StagedPath::Own(path),
        len,
    })
}

/// Validates a `file` and stages its bytes on disk.
async fn stage(file: &FileInput, limits: &FetchLimits) -> std::result::Result<Staged, MediaError> {
    file.mimetype().map_err(MediaError::File)?;
    match file.source().map_err(MediaError::File)? {
        FileSource::Url(url) => fetch(url, limits).await,
        FileSource::Data(data) => decode(data, limits).await,
        FileSource::Spooled(file) => {
            if file.is_invalid() {
                return Err(MediaError::InvalidBase64);
            }
            if file.len() > limits.max_bytes {
                return Err(MediaError::TooLarge {
                    max_bytes: limits.max_bytes,
                });
            }
            Ok(Staged {
                len: file.len(),
                path: StagedPath::Spooled(file.clone()),
            })
        }
    }
}

/// A vCard 3.0 for a contact given by its fields (WAHA's `toVcardV3`).
fn vcard_of(c: &ContactInput) -> String {
    if let Some(v) = c.vcard.as_deref().filter(|v| !v.is_empty()) {
        return v.to_string();
    }
    let name = c.full_name.clone().unwrap_or_default();
    let phone = c.phone_number.clone().unwrap_or_default();
    let waid = c
        .whatsapp_id
        .clone()
        .unwrap_or_else(|| phone.chars().filter(char::is_ascii_digit).collect());
    let mut v = format!("BEGIN:VCARD\nVERSION:3.0\nFN:{name}\n");
    if let Some(org) = c.organization.as_deref().filter(|o| !o.is_empty()) {
        v.push_str(&format!("ORG:{org};\n"));
    }
    v.push_str(&format!(
        "TEL;type=CELL;type=VOICE;waid={waid}:{phone}\nEND:VCARD"
    ));
    v
}

/// The `FN:` of a vCard (the card's display name).
fn vcard_name(vcard: &str) -> Option<String> {
    vcard
        .lines()
        .find_map(|l| l.trim().strip_prefix("FN:"))
        .map(|n| n.trim().to_string())
        .filter(|n| !n.is_empty())
}

impl SessionManager {
    /// Resolves `reply_to` (if any) into the engine's quote and the WAMessage's `replyTo`.
    async fn reply_of(
        &self,
        session: &str,
        reply_to: Option<String>,
    ) -> Result<(Option<engine::messaging::Quote>, Option<ReplyToMessage>)> {
        match reply_to.filter(|r| !r.is_empty()) {
            Some(r) => {
                let (q, m) = self.quote(session, &r).await?;
                Ok((Some(q), Some(m)))
            }
            None => Ok((None, None)),
        }
    }

    /// Records what WhatsApp accepted (history + `message.any`) and returns it as WAHA
    /// answers it. Recording problems are logged, never turned into an error: the
    /// message is sent, and a 500 would make the client send it again.
    pub(super) async fn record_sent(
        &self,
        session: &str,
        sent: &SentMessage,
        fill: impl FnOnce(&mut WAMessage),
    ) -> Result<WAMessage> {
        let SentMessage { sent, raw } = sent;
        let inbox = self.inbox(session).await?;
        let me = self.live_me(session);
        let mut data = Map::new();
        data.insert("engine".into(), json!("whatsapp-rust"));
        data.insert("message".into(), raw.clone());
        let mut msg = WAMessage {
            id: message_id(true, &sent.chat, &sent.wa_id, None),
            timestamp: sent.timestamp,
            from: me.as_ref().map(|m| m.id.clone()).unwrap_or_default(),
            from_me: true,
            source: MessageSource::Api,
            to: Some(sent.chat.clone()),
            participant: None,
            author: None,
            body: String::new(),
            has_media: false,
            media: None,
            media_url: None,
            ack: ack::SERVER,
            ack_name: ack::name(ack::SERVER).to_string(),
            location: None,
            v_cards: Vec::new(),
            reply_to: None,
            data,
        };
        fill(&mut msg);
        if let Err(e) = inbox.messages.save(session, &msg).await {
            tracing::error!(session, id = msg.id, error = %e, "sent, but could not store the message");
        }
        let ctx = EventContext {
            session: session.to_string(),
            config: inbox.config.clone(),
            me,
        };
        if let Err(e) = inbox
            .events
            .emit(&ctx, &Event::MessageAny(msg.clone()))
            .await
        {
            tracing::error!(session, id = msg.id, error = %e, "sent, but could not record message.any");
        }
        Ok(msg)
    }

    /// Sends a media file: validates and stages it, sends it, records it.
    ///
    /// # Errors
    /// [`MediaError`]s for bad input (nothing sent), a bad quoted id, the engine's refusal.
    pub async fn send_media(
        &self,
        engine: &engine::Session,
        req: SendMedia,
        limits: FetchLimits,
    ) -> Result<WAMessage> {
        self.send_media_to(engine, req, limits, Vec::new()).await
    }

    /// [`Self::send_media`]; with `status_to`, as a status post for those contacts
    /// (`req.chat` is then `status@broadcast`; see `sessions::status_posts`).
    pub(super) async fn send_media_to(
        &self,
        engine: &engine::Session,
        req: SendMedia,
        limits: FetchLimits,
        status_to: Vec<String>,
    ) -> Result<WAMessage> {
        let mimetype = req.file.mimetype().map_err(MediaError::File)?.to_string();
        let (quote, reply_to) = self.reply_of(engine.name(), req.reply_to).await?;
        let staged = stage(&req.file, &limits).await?;
        let filename = req.file.filename.clone();
        let media = StagedMedia {
            staged,
            kind: req.kind,
            mimetype,
            filename,
            caption: req.caption,
            convert: req.convert,
        };
        let envelope = Envelope {
            chat: req.chat,
            quote,
            id: req.id,
            status_to,
        };
        self.send_staged(engine, envelope, reply_to, media, false)
            .await
    }

    /// Forwards a stored media message (`forwardMessage`): its file is read back from
    /// the media storage (local folder or S3) into a temp file and sent as a new media
    /// message of the same kind, mimetype, file name and caption, marked as forwarded.
    ///
    /// # Errors
    /// [`MediaError::NotForwardable`] when wharf has no file for it; the engine's refusal.
    pub(super) async fn forward_media(
        &self,
        engine: &engine::Session,
        chat: String,
        id: Option<String>,
        original: &WAMessage,
    ) -> Result<WAMessage> {
        let session = engine.name();
        let Some(media) = original.media.as_ref() else {
            return Err(MediaError::NotForwardable(
                "its media was not downloaded (WHATSAPP_DOWNLOAD_MEDIA, WHATSAPP_FILES_MIMETYPES, or a message sent through the API)".into(),
            )
            .into());
        };
        if media.url.is_none() {
            let why = media
                .error
                .as_ref()
                .and_then(|e| e.get("message"))
                .and_then(Value::as_str)
                .map_or_else(
                    || "its media was not downloaded".to_string(),
                    |e| format!("its media download failed: {e}"),
                );
            return Err(MediaError::NotForwardable(why).into());
        }
        let mimetype = media.mimetype.clone().unwrap_or_default();
        let file_name = crate::media::file_name(&original.id, &mimetype, media.filename.as_deref());
        let staged = self.stage_stored(session, &file_name).await?;
        let kind = original
            .data
            .get("type")
            .and_then(Value::as_str)
            .map_or(MediaKind::Document, forwarded_kind);
        let mimetype = if mimetype.is_empty() {
            crate::media::mimetype_of(&file_name).to_string()
        } else {
            mimetype
        };
        let media = StagedMedia {
            staged,
            kind,
            mimetype,
            filename: media.filename.clone(),
            caption: (!original.body.is_empty()).then(|| original.body.clone()),
            convert: false,
        };
        let envelope = Envelope {
            chat,
            quote: None,
            id,
            status_to: Vec::new(),
        };
        self.send_staged(engine, envelope, None, media, true).await
    }

    /// Copies the stored `{session}/{file_name}` into a temp file, chunk by chunk.
    async fn stage_stored(
        &self,
        session: &str,
        file_name: &str,
    ) -> std::result::Result<Staged, MediaError> {
        use futures_util::StreamExt as _;
        let opened = self
            .inner
            .media
            .open(session, file_name)
            .await
            .map_err(|e| {
                MediaError::NotForwardable(format!("its media file cannot be read: {e}"))
            })?;
        let Some(mut stored) = opened else {
            return Err(MediaError::NotForwardable(
                "its media file is no longer stored (WHATSAPP_FILES_LIFETIME)".into(),
            ));
        };
        let (mut file, path) = temp_file().await?;
        let mut len: u64 = 0;
        while let Some(chunk) = stored.body.next().await {
            let chunk = chunk.map_err(|e| {
                MediaError::NotForwardable(format!("its media file cannot be read: {e}"))
            })?;
            len += chunk.len() as u64;
            file.write_all(&chunk).await.map_err(disk)?;
        }
        file.flush().await.map_err(disk)?;
        Ok(Staged {
            path: StagedPath::Own(path),
            len,
        })
    }

    /// Converts (if asked), sends and records a staged media file.
    async fn send_staged(
        &self,
        engine: &engine::Session,
        envelope: Envelope,
        reply_to: Option<ReplyToMessage>,
        req: StagedMedia,
        forwarded: bool,
    ) -> Result<WAMessage> {
        let session = engine.name();
        let StagedMedia {
            staged,
            kind,
            mimetype,
            filename,
            caption,
            convert,
        } = req;
        let converted = match (convert, kind) {
            (true, MediaKind::Voice) => Some(super::convert::voice(&staged.path).await?),
            (true, MediaKind::Video | MediaKind::VideoNote) => {
                Some(super::convert::video(&staged.path).await?)
            }
            _ => None,
        };
        let (path, mimetype, seconds, waveform) = match &converted {
            Some(c) => (
                c.path.to_path_buf(),
                c.mimetype.to_string(),
                c.seconds,
                c.waveform.clone(),
            ),
            // WAHA computes a voice note's duration and waveform even without `convert`;
            // best effort here (no ffmpeg, or not decodable: sent without them).
            None if kind == MediaKind::Voice => {
                let (seconds, waveform) = super::convert::waveform(&staged.path)
                    .await
                    .map_or((None, None), |(s, w)| (Some(s), Some(w)));
                (staged.path.to_path_buf(), mimetype, seconds, waveform)
            }
            None => (staged.path.to_path_buf(), mimetype, None, None),
        };
        let thumbnail = match kind {
            MediaKind::Image | MediaKind::Video | MediaKind::VideoNote => {
                super::convert::thumbnail(&path).await
            }
            MediaKind::Document | MediaKind::Voice | MediaKind::Sticker => None,
        };
        let outgoing = engine::outgoing_media::Outgoing::Media(OutgoingMedia {
            kind,
            path,
            mimetype: mimetype.clone(),
            filename: filename.clone(),
            caption: caption.clone(),
            seconds,
            waveform,
            thumbnail,
        });
        let sent = if forwarded {
            engine.send_forwarded(envelope, outgoing).await?
        } else {
            engine.send(envelope, outgoing).await?
        };
        let size = staged.len;
        drop(converted);
        drop(staged);
        self.record_sent(session, &sent, |m| {
            m.body = caption.unwrap_or_default();
            m.has_media = true;
            m.media = Some(WAMedia {
                url: None,
                mimetype: Some(mimetype),
                filename,
                s3: None,
                error: None,
            });
            m.reply_to = reply_to;
            m.data.insert("type".into(), json!(media_type_name(kind)));
            m.data.insert("size".into(), json!(size));
        })
        .await
    }

    /// Sends a location, contact cards, a poll, an event, a list or a link preview.
    ///
    /// # Errors
    /// Bad input (nothing sent), a bad quoted id, the engine's refusal.
    pub async fn send_kind(
        &self,
        engine: &engine::Session,
        chat: String,
        reply_to: Option<String>,
        id: Option<String>,
        kind: SendKind,
        limits: FetchLimits,
    ) -> Result<WAMessage> {
        use engine::outgoing_media::Outgoing;
        let session = engine.name();
        let (quote, reply) = self.reply_of(session, reply_to).await?;
        let envelope = Envelope {
            chat,
            quote,
            id,
            status_to: Vec::new(),
        };
        let (outgoing, fill): (Outgoing, Fill) = match kind {
            SendKind::Location(l) => {
                let location = WALocation {
                    latitude: l.latitude.to_string(),
                    longitude: l.longitude.to_string(),
                    live: false,
                    name: l.name.clone(),
                    address: None,
                    url: None,
                    description: l.name.clone(),
                    thumbnail: None,
                };
                (
                    Outgoing::Location(l),
                    Box::new(move |m: &mut WAMessage| {
                        m.location = Some(location);
                        m.data.insert("type".into(), json!("location"));
                    }),
                )
            }
            SendKind::Contacts(contacts) => {
                if contacts.is_empty() {
                    return Err(
                        engine::Error::BadRequest("contacts should not be empty".into()).into(),
                    );
                }
                let cards: Vec<OutgoingContact> = contacts
                    .iter()
                    .map(|c| {
                        let vcard = vcard_of(c);
                        let display_name = c
                            .full_name
                            .clone()
                            .or_else(|| vcard_name(&vcard))
                            .unwrap_or_default();
                        OutgoingContact {
                            display_name,
                            vcard,
                        }
                    })
                    .collect();
                let v_cards: Vec<String> = cards.iter().map(|c| c.vcard.clone()).collect();
                (
                    Outgoing::Contacts(cards),
                    Box::new(move |m: &mut WAMessage| {
                        m.v_cards = v_cards;
                        m.data.insert("type".into(), json!("vcard"));
                    }),
                )
            }
            SendKind::Poll(p) => {
                let poll = json!({
                    "name": p.name,
                    "options": p.options,
                    "multipleAnswers": p.multiple_answers,
                });
                let body = p.name.clone();
                (
                    Outgoing::Poll(p),
                    Box::new(move |m: &mut WAMessage| {
                        m.body = body;
                        m.data.insert("type".into(), json!("poll"));
                        m.data.insert("poll".into(), poll);
                    }),
                )
            }
            SendKind::Event(e) => {
                let event = json!({
                    "name": e.name,
                    "description": e.description,
                    "startTime": e.start_time,
                    "endTime": e.end_time,
                    "location": e.location.as_ref().map(|n| json!({"name": n})),
                    "extraGuestsAllowed": e.extra_guests_allowed,
                });
                let body = e.name.clone();
                (
                    Outgoing::Event(e),
                    Box::new(move |m: &mut WAMessage| {
                        m.body = body;
                        m.data.insert("type".into(), json!("event"));
                        m.data.insert("event".into(), event);
                    }),
                )
            }
            SendKind::List(l) => {
                let body = l.description.clone().unwrap_or_else(|| l.title.clone());
                (
                    Outgoing::List(l),
                    Box::new(move |m: &mut WAMessage| {
                        m.body = body;
                        m.data.insert("type".into(), json!("list"));
                    }),
                )
            }
            SendKind::LinkPreview { mut preview, image } => {
                if let Some(image) = image {
                    preview.thumbnail = Some(self.preview_image(&image, &limits).await?);
                }
                let body = preview.text.clone();
                (
                    Outgoing::LinkPreview(preview),
                    Box::new(move |m: &mut WAMessage| {
                        m.body = body;
                        m.data.insert("type".into(), json!("text"));
                    }),
                )
            }
        };
        let sent = engine.send(envelope, outgoing).await?;
        self.record_sent(session, &sent, move |m| {
            m.reply_to = reply;
            fill(m);
        })
        .await
    }

    /// The bytes of a link-preview image (small: WhatsApp inlines it in the message).
    async fn preview_image(&self, image: &FileInput, limits: &FetchLimits) -> Result<Vec<u8>> {
        // The preview carries no mimetype; it is a JPEG thumbnail by WhatsApp's definition.
        let with_type = FileInput {
            mimetype: Some("image/jpeg".into()),
            ..image.clone()
        };
        let limits = FetchLimits {
            max_bytes: limits.max_bytes.min(PREVIEW_MAX_BYTES),
            ..limits.clone()
        };
        let staged = stage(&with_type, &limits).await?;
        Ok(tokio::fs::read(&staged.path).await.map_err(disk)?)
    }

    /// Converts a file (`url` or base64 `data`) for `POST /api/{session}/media/convert/…`;
    /// returns the MIME type and the converted bytes (WAHA answers them whole).
    ///
    /// # Errors
    /// Bad input, ffmpeg missing or unable to convert it.
    pub async fn convert_file(
        &self,
        url: Option<String>,
        data: Option<FileData>,
        video: bool,
        limits: FetchLimits,
    ) -> Result<(&'static str, Vec<u8>)> {
        let file = FileInput {
            mimetype: Some(if video { "video/mp4" } else { "audio/ogg" }.into()),
            filename: None,
            url,
            data,
        };
        let staged = stage(&file, &limits).await?;
        let converted = if video {
            super::convert::video(&staged.path).await?
        } else {
            super::convert::voice(&staged.path).await?
        };
        let bytes = tokio::fs::read(&converted.path).await.map_err(disk)?;
        Ok((converted.mimetype, bytes))
    }

    /// Votes on a poll.
    ///
    /// # Errors
    /// A bad poll id, the engine's refusal.
    pub async fn send_poll_vote(
        &self,
        engine: &engine::Session,
        chat: String,
        poll_message_id: &str,
        votes: Vec<String>,
    ) -> Result<Value> {
        // WAHA's full id, or (GOWS) the bare WhatsApp id of a poll in `chat`.
        let (poll_id, from_me, participant, poll_chat) = match MessageId::parse(poll_message_id) {
            Some(id) => (id.wa_id, id.from_me, id.participant, Some(id.chat_id)),
            None if !poll_message_id.is_empty() && !poll_message_id.contains('_') => {
                let stored = self
                    .messages()
                    .find_by_wa_id(engine.name(), poll_message_id)
                    .await?;
                let from_me = stored.as_ref().is_some_and(|m| m.from_me);
                let participant = stored.and_then(|m| m.participant);
                (poll_message_id.to_string(), from_me, participant, None)
            }
            None => return Err(Error::BadMessageId(poll_message_id.to_string())),
        };
        let sent = engine
            .vote(PollVote {
                chat,
                poll_chat,
                poll_id,
                poll_from_me: from_me,
                participant,
                options: votes,
            })
            .await?;
        // GOWS answers `{id, _data}` for a vote; the vote is no chat message to record.
        Ok(json!({
            "id": message_id(true, &sent.chat, &sent.wa_id, None),
            "_data": {"engine": "whatsapp-rust", "type": "poll_vote"},
        }))
    }

    /// Stars or unstars a message.
    ///
    /// # Errors
    /// A bad id, the engine's refusal.
    pub async fn star_message(
        &self,
        engine: &engine::Session,
        chat: &str,
        message_id: &str,
        star: bool,
    ) -> Result<()> {
        let id = MessageId::parse(message_id)
            .ok_or_else(|| Error::BadMessageId(message_id.to_string()))?;
        engine
            .star(chat, &id.wa_id, id.from_me, id.participant.as_deref(), star)
            .await?;
        Ok(())
    }
}

/// Fills the kind-specific fields of the recorded `WAMessage`.
type Fill = Box<dyn FnOnce(&mut WAMessage) + Send>;

/// Link-preview thumbnails are inlined in the message: keep them small.
const PREVIEW_MAX_BYTES: u64 = 5 * 1024 * 1024;

/// The kind to re-send a stored media as, from its `_data.type`. WhatsApp's plain
/// (non-voice) audio has no send route in WAHA: it goes out as a voice note, which plays
/// the same file inline.
fn forwarded_kind(type_name: &str) -> MediaKind {
    match type_name {
        "image" => MediaKind::Image,
        "ptt" | "audio" => MediaKind::Voice,
        "video" => MediaKind::Video,
        "ptv" => MediaKind::VideoNote,
        "sticker" => MediaKind::Sticker,
        _ => MediaKind::Document,
    }
}

fn media_type_name(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "image",
        MediaKind::Document => "document",
        MediaKind::Voice => "ptt",
        MediaKind::Video => "video",
        MediaKind::VideoNote => "ptv",
        MediaKind::Sticker => "sticker",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vcards_from_fields_and_names_from_vcards() {
        let c = ContactInput {
            full_name: Some("John Doe".into()),
            organization: Some("ACME".into()),
            phone_number: Some("+91 11111 11111".into()),
            whatsapp_id: Some("911111111111".into()),
            vcard: None,
        };
        let v = vcard_of(&c);
        assert_eq!(
            v,
            "BEGIN:VCARD\nVERSION:3.0\nFN:John Doe\nORG:ACME;\nTEL;type=CELL;type=VOICE;waid=911111111111:+91 11111 11111\nEND:VCARD"
        );
        assert_eq!(vcard_name(&v).as_deref(), Some("John Doe"));
    }
}

/// What a page says about itself, for a link preview (`linkPreview: true` on `sendText`).
mod preview {
    use std::{sync::OnceLock, time::Duration};

    use regex::Regex;

    /// How much of a page is read looking for its `<meta>` tags.
    const PAGE_MAX_BYTES: usize = 512 * 1024;
    /// The whole lookup (page and image) must fit in this.
    pub const BUDGET: Duration = Duration::from_secs(5);

    /// Title, description and image URL of a page.
    #[derive(Debug, Default, PartialEq, Eq)]
    pub struct PageMeta {
        pub title: Option<String>,
        pub description: Option<String>,
        pub image: Option<String>,
    }

    /// The first `http(s)://` URL in a text.
    pub fn first_url(text: &str) -> Option<String> {
        static URL: OnceLock<Regex> = OnceLock::new();
        let re = URL.get_or_init(|| Regex::new(r#"https?://[^\s<>"']+"#).expect("valid regex"));
        re.find(text).map(|m| {
            m.as_str()
                .trim_end_matches(['.', ',', ')', '!', '?', ';', ':'])
                .to_string()
        })
    }

    /// Reads at most [`PAGE_MAX_BYTES`] of an HTML page.
    pub async fn fetch_page(url: &str, limits: &super::FetchLimits) -> Option<String> {
        limits.egress.check_url(url).ok()?;
        let mut resp = limits.http.get(url).send().await.ok()?;
        let html = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("html"));
        if !resp.status().is_success() || !html {
            return None;
        }
        let mut body = Vec::new();
        while let Ok(Some(chunk)) = resp.chunk().await {
            body.extend_from_slice(&chunk);
            if body.len() >= PAGE_MAX_BYTES
                || body.windows(7).any(|w| w.eq_ignore_ascii_case(b"</head>"))
            {
                break;
            }
        }
        Some(String::from_utf8_lossy(&body).into_owned())
    }

    fn unescape(s: &str) -> String {
        s.replace("&quot;", "\"")
            .replace("&#39;", "'")
            .replace("&#x27;", "'")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&amp;", "&")
            .trim()
            .to_string()
    }

    /// OpenGraph (then Twitter, then plain HTML) title, description and image.
    pub fn parse(html: &str, base: &str) -> PageMeta {
        static META: OnceLock<Regex> = OnceLock::new();
        static ATTR: OnceLock<Regex> = OnceLock::new();
        static TITLE: OnceLock<Regex> = OnceLock::new();
        let meta = META.get_or_init(|| Regex::new(r"(?is)<meta\s[^>]*>").expect("valid regex"));
        let attr = ATTR.get_or_init(|| {
            Regex::new(r#"(?is)([a-z:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)')"#).expect("valid regex")
        });
        let title = TITLE
            .get_or_init(|| Regex::new(r"(?is)<title[^>]*>(.*?)</title>").expect("valid regex"));
        let mut found: Vec<(String, String)> = Vec::new();
        for tag in meta.find_iter(html) {
            let (mut key, mut content) = (None, None);
            for a in attr.captures_iter(tag.as_str()) {
                let name = a[1].to_ascii_lowercase();
                let value = a.get(2).or_else(|| a.get(3)).map_or("", |m| m.as_str());
                match name.as_str() {
                    "property" | "name" => key = Some(value.to_ascii_lowercase()),
                    "content" => content = Some(unescape(value)),
                    _ => {}
                }
            }
            if let (Some(k), Some(c)) = (key, content)
                && !c.is_empty()
            {
                found.push((k, c));
            }
        }
        let pick = |keys: &[&str]| {
            keys.iter().find_map(|k| {
                found
                    .iter()
                    .find(|(name, _)| name == k)
                    .map(|(_, c)| c.clone())
            })
        };
        let image = pick(&["og:image", "og:image:url", "twitter:image"]).and_then(|i| {
            reqwest::Url::parse(base)
                .ok()
                .and_then(|b| b.join(&i).ok())
                .map(|u| u.to_string())
        });
        PageMeta {
            title: pick(&["og:title", "twitter:title"]).or_else(|| {
                title
                    .captures(html)
                    .map(|c| unescape(&c[1]))
                    .filter(|t| !t.is_empty())
            }),
            description: pick(&["og:description", "twitter:description", "description"]),
            image,
        }
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn finds_the_url_and_the_page_meta() {
            assert_eq!(
                first_url("see https://a.test/x?y=1. ok").as_deref(),
                Some("https://a.test/x?y=1")
            );
            assert_eq!(first_url("no link here"), None);
            let html = r#"<html><head><title>Plain</title>
                <meta property="og:title" content="Rich &amp; famous">
                <meta name='description' content='About it'>
                <meta content="/img/p.jpg" property="og:image"></head>"#;
            assert_eq!(
                parse(html, "http://a.test/page"),
                PageMeta {
                    title: Some("Rich & famous".into()),
                    description: Some("About it".into()),
                    image: Some("http://a.test/img/p.jpg".into()),
                }
            );
            assert_eq!(
                parse("<title> T </title>", "http://a.test")
                    .title
                    .as_deref(),
                Some("T")
            );
        }
    }
}

impl SessionManager {
    /// A link preview for `text` (its first URL), or `None` when there is no URL, the page
    /// is not HTML, says nothing, or does not answer within [`preview::BUDGET`]. Never an
    /// error: a text without a preview is still sent.
    pub async fn link_preview_for(
        &self,
        text: &str,
        limits: FetchLimits,
    ) -> Option<OutgoingLinkPreview> {
        let url = preview::first_url(text)?;
        let work = async {
            let html = preview::fetch_page(&url, &limits).await?;
            let meta = preview::parse(&html, &url);
            let title = meta.title?;
            let thumbnail = match meta.image {
                Some(image) => {
                    let file = FileInput {
                        mimetype: Some("image/jpeg".into()),
                        url: Some(image),
                        ..FileInput::default()
                    };
                    self.preview_image(&file, &limits).await.ok()
                }
                None => None,
            };
            Some(OutgoingLinkPreview {
                text: text.to_string(),
                url: url.clone(),
                title,
                description: meta.description,
                thumbnail,
            })
        };
        tokio::time::timeout(preview::BUDGET, work)
            .await
            .ok()
            .flatten()
    }
}
