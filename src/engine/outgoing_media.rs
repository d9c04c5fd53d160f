//! Everything sent that is not plain text: media (encrypted and uploaded to WhatsApp's
//! CDN), locations, contact cards, polls and votes, events, lists, link previews, stars and
//! pre-generated message ids — built as whatsapp-rust messages from plain wharf types.
//!
//! Owns: the translation of [`Outgoing`] into a `wa::Message` (quote context included), the
//! media pipeline (plaintext temp file → encrypted temp file → `upload_stream`, so memory
//! stays flat whatever the file size) and the poll-secret lookup a vote needs. Called by the
//! domain (`sessions::sending`) on the caller's task, for as long as the handle is live;
//! holds nothing between calls (the encrypted temp file is removed when the call returns).

use std::{
    io::{Read, Seek},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use whatsapp_rust::wacore::upload::{EncryptedMediaInfo, UploadSource, encrypt_media_streaming};
use whatsapp_rust::{
    Jid,
    buffa::MessageField,
    download::MediaType,
    media::{AudioOptions, DocumentOptions, ImageOptions, VideoOptions},
    prelude::*,
    upload::UploadResponse,
    waproto::whatsapp as wa,
};

use super::{
    Error, Session,
    messaging::{Quote, Sent, parse_chat, waha_id},
};

/// What kind of media message a file becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    /// `imageMessage`.
    Image,
    /// `documentMessage` (any file).
    Document,
    /// `audioMessage` with `ptt` (a voice note).
    Voice,
    /// `videoMessage`.
    Video,
    /// `ptvMessage`: a round video note.
    VideoNote,
    /// `stickerMessage` (WebP).
    Sticker,
}

/// A media file to send; the plaintext is on disk at `path` (owned by the caller).
#[derive(Debug, Clone)]
pub struct OutgoingMedia {
    /// Kind of message.
    pub kind: MediaKind,
    /// Plaintext file.
    pub path: PathBuf,
    /// MIME type announced to the recipient.
    pub mimetype: String,
    /// File name (documents).
    pub filename: Option<String>,
    /// Caption (image, video, document).
    pub caption: Option<String>,
    /// Duration in seconds (voice, video), when known.
    pub seconds: Option<u32>,
    /// Voice-note waveform (64 samples, 0–100), when known.
    pub waveform: Option<Vec<u8>>,
    /// Small JPEG preview shown before the download (image, video), when made.
    pub thumbnail: Option<Vec<u8>>,
}

/// A shared location.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingLocation {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Place name.
    pub name: Option<String>,
}

/// One contact card.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingContact {
    /// Display name.
    pub display_name: String,
    /// vCard 3.0 text.
    pub vcard: String,
}

/// A poll.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingPoll {
    /// Question.
    pub name: String,
    /// Options (2–12, distinct).
    pub options: Vec<String>,
    /// Several answers allowed.
    pub multiple_answers: bool,
}

/// An event invitation.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingEvent {
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Unix seconds.
    pub start_time: i64,
    /// Unix seconds.
    pub end_time: Option<i64>,
    /// Location name.
    pub location: Option<String>,
    /// Guests may bring others.
    pub extra_guests_allowed: Option<bool>,
}

/// A list row: `(title, row id, description)`.
pub type ListRow = (String, String, Option<String>);

/// A list message (single-select menu).
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingList {
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// Footer.
    pub footer: Option<String>,
    /// Button text.
    pub button: String,
    /// `(section title, [(row title, row id, row description)])`.
    pub sections: Vec<(String, Vec<ListRow>)>,
}

/// A text with a link preview that the caller supplies.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingLinkPreview {
    /// Full text (contains `url`).
    pub text: String,
    /// The previewed URL.
    pub url: String,
    /// Title.
    pub title: String,
    /// Description.
    pub description: Option<String>,
    /// JPEG thumbnail bytes (small; inlined in the message).
    pub thumbnail: Option<Vec<u8>>,
}

/// Any non-text message [`Session::send`] can build.
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// A media file.
    Media(OutgoingMedia),
    /// A location.
    Location(OutgoingLocation),
    /// One or more contact cards.
    Contacts(Vec<OutgoingContact>),
    /// A poll.
    Poll(OutgoingPoll),
    /// An event.
    Event(OutgoingEvent),
    /// A list.
    List(OutgoingList),
    /// A text with a custom link preview.
    LinkPreview(OutgoingLinkPreview),
}

/// Addressing shared by every send.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    /// WAHA chat id.
    pub chat: String,
    /// The message replied to.
    pub quote: Option<Quote>,
    /// Pre-generated WhatsApp id.
    pub id: Option<String>,
    /// Set for a status post (`chat` is `status@broadcast`): the contacts it goes to.
    pub status_to: Vec<String>,
}

/// What [`Session::send`] sent.
#[derive(Debug, Clone)]
pub struct SentMessage {
    /// Id, chat, time.
    pub sent: Sent,
    /// The message as sent, as JSON (WAHA's GOWS returns the raw message as `_data`).
    pub raw: serde_json::Value,
}

/// A vote on a poll.
#[derive(Debug, Clone, PartialEq)]
pub struct PollVote {
    /// WAHA chat id.
    pub chat: String,
    /// The chat named by the poll's WAHA id, when it differs (a `@lid` chat, say).
    pub poll_chat: Option<String>,
    /// The poll's WhatsApp id.
    pub poll_id: String,
    /// The poll is ours.
    pub poll_from_me: bool,
    /// Who created the poll, in groups (WAHA id).
    pub participant: Option<String>,
    /// Names of the chosen options (empty withdraws the vote).
    pub options: Vec<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

fn send_err(e: impl std::fmt::Display) -> Error {
    Error::Send(e.to_string())
}

fn chat_jid(chat: &str) -> Result<Jid, Error> {
    parse_chat(chat).ok_or_else(|| bad(format!("chatId {chat:?} is not a valid WhatsApp chat id")))
}

impl Session {
    /// Sends a non-text message (media, location, contacts, poll, event, list, preview).
    ///
    /// # Errors
    /// Stale handle, invalid chat id or content, the upload or the send failed.
    pub async fn send(&self, envelope: Envelope, out: Outgoing) -> Result<SentMessage, Error> {
        self.send_marked(envelope, out, false).await
    }

    /// [`Session::send`], marked as forwarded (the phones' "Forwarded" label).
    ///
    /// # Errors
    /// As [`Session::send`].
    pub async fn send_forwarded(
        &self,
        envelope: Envelope,
        out: Outgoing,
    ) -> Result<SentMessage, Error> {
        self.send_marked(envelope, out, true).await
    }

    async fn send_marked(
        &self,
        envelope: Envelope,
        out: Outgoing,
        forwarded: bool,
    ) -> Result<SentMessage, Error> {
        let client = self.client()?;
        let to = chat_jid(&envelope.chat)?;
        let mut context = envelope.quote.as_ref().map(|q| quote_context(q, &to));
        if forwarded {
            let ctx = context.get_or_insert_with(wa::ContextInfo::default);
            ctx.is_forwarded = Some(true);
            ctx.forwarding_score = Some(1);
        }
        // Votes on our own polls (and answers to our events) are encrypted with the
        // secret we generate here: remembered after the send, so they can be read.
        // A channel's media is uploaded in the clear and posted by its upload handle.
        let out = match out {
            Outgoing::Media(m) if to.server == "newsletter" => {
                let (wa_id, message) =
                    super::channel_media::send(client, &to, m, context, envelope.id).await?;
                return Ok(SentMessage {
                    sent: Sent {
                        wa_id,
                        chat: waha_id(&to),
                        timestamp: chrono::Utc::now().timestamp(),
                    },
                    raw: serde_json::to_value(&message).unwrap_or_default(),
                });
            }
            other @ (Outgoing::Media(_)
            | Outgoing::Location(_)
            | Outgoing::Contacts(_)
            | Outgoing::Poll(_)
            | Outgoing::Event(_)
            | Outgoing::List(_)
            | Outgoing::LinkPreview(_)) => other,
        };
        let vote_options = match &out {
            Outgoing::Poll(p) => Some(p.options.clone()),
            Outgoing::Event(_) => Some(Vec::new()),
            Outgoing::Media(_)
            | Outgoing::Location(_)
            | Outgoing::Contacts(_)
            | Outgoing::List(_)
            | Outgoing::LinkPreview(_) => None,
        };
        let mut message = match out {
            Outgoing::Media(m) => media_message(client, m, context.clone()).await?,
            Outgoing::Location(l) => wa::Message {
                location_message: MessageField::some(wa::message::LocationMessage {
                    degrees_latitude: Some(l.latitude),
                    degrees_longitude: Some(l.longitude),
                    name: l.name,
                    ..Default::default()
                }),
                ..Default::default()
            },
            Outgoing::Contacts(contacts) => contacts_message(contacts)?,
            Outgoing::Poll(p) => poll_message(p)?,
            Outgoing::Event(e) => event_message(e),
            Outgoing::List(l) => {
                if to.server != "s.whatsapp.net" && to.server != "lid" {
                    // WAHA GOWS: lists go to direct chats only.
                    return Err(Error::Unprocessable(
                        "List message can only be sent to a direct message chat.".into(),
                    ));
                }
                list_message(l)
            }
            Outgoing::LinkPreview(p) => wa::Message {
                extended_text_message: MessageField::some(wa::message::ExtendedTextMessage {
                    text: Some(p.text),
                    matched_text: Some(p.url),
                    title: Some(p.title),
                    description: p.description,
                    jpeg_thumbnail: p.thumbnail,
                    preview_type: Some(wa::message::extended_text_message::PreviewType::NONE),
                    ..Default::default()
                }),
                ..Default::default()
            },
        };
        if let Some(ctx) = context {
            set_context(&mut message, ctx);
        }
        let mut options = SendOptions::default();
        if let Some(id) = envelope.id.clone() {
            options = options.with_message_id(id);
        }
        let raw = serde_json::to_value(&message).unwrap_or_default();
        let secret = wa::Message {
            message_context_info: message.message_context_info.clone(),
            ..Default::default()
        };
        if !envelope.status_to.is_empty() {
            // A status post: to status@broadcast, encrypted for the listed contacts.
            let wa_id =
                super::status::send_status(client, message, &envelope.status_to, envelope.id)
                    .await?;
            return Ok(SentMessage {
                sent: Sent {
                    wa_id,
                    chat: super::status::STATUS_CHAT.into(),
                    timestamp: chrono::Utc::now().timestamp(),
                },
                raw,
            });
        }
        let result = client
            .send_message_with_options(to.clone(), message, options)
            .await
            .map_err(send_err)?;
        if let (Some(opts), Some(me)) = (vote_options, client.pn())
            && let Some(key) = super::polls::PollKey::of(&result.message_id, &secret, &me, &opts)
        {
            self.remember_poll(key);
        }
        Ok(SentMessage {
            sent: Sent {
                wa_id: result.message_id,
                chat: waha_id(&to),
                timestamp: chrono::Utc::now().timestamp(),
            },
            raw,
        })
    }

    /// Votes on a poll (ours or someone else's) with the options named.
    ///
    /// # Errors
    /// Stale handle, invalid chat id, the poll is unknown to this device (no secret), or
    /// WhatsApp refused the vote.
    pub async fn vote(&self, vote: PollVote) -> Result<Sent, Error> {
        let client = self.client()?;
        let chat = chat_jid(&vote.chat)?;
        let creator = if vote.poll_from_me {
            client
                .pn()
                .map(|j| j.to_non_ad())
                .ok_or(Error::NotRunning)?
        } else {
            match vote.participant.as_deref().and_then(parse_chat) {
                Some(p) => p,
                None => chat.clone(),
            }
        };
        let mut chats = vec![chat.clone()];
        chats.extend(vote.poll_chat.as_deref().and_then(parse_chat));
        let secret = poll_secret(client, &chats, &creator, &vote.poll_id)
            .await
            .ok_or_else(|| {
                Error::Unprocessable(format!(
                    "Poll message '{}' not found (its secret is unknown to this session)",
                    vote.poll_id
                ))
            })?;
        let result = client
            .polls()
            .vote(
                chat.clone(),
                &vote.poll_id,
                &creator,
                &secret,
                &vote.options,
            )
            .await
            .map_err(send_err)?;
        Ok(Sent {
            wa_id: result.message_id,
            chat: waha_id(&chat),
            timestamp: chrono::Utc::now().timestamp(),
        })
    }

    /// Stars (`true`) or unstars a message for this account (synced to its devices).
    ///
    /// # Errors
    /// Stale handle, invalid chat id, or the app-state sync refused it.
    pub async fn star(
        &self,
        chat: &str,
        wa_id: &str,
        from_me: bool,
        participant: Option<&str>,
        star: bool,
    ) -> Result<(), Error> {
        let client = self.client()?;
        let chat = chat_jid(chat)?;
        let participant = participant.and_then(parse_chat);
        let r = if star {
            client
                .chat_actions()
                .star_message(&chat, participant.as_ref(), wa_id, from_me)
                .await
        } else {
            client
                .chat_actions()
                .unstar_message(&chat, participant.as_ref(), wa_id, from_me)
                .await
        };
        r.map_err(send_err)
    }

    /// A fresh WhatsApp message id, for `id` on a later send.
    ///
    /// # Errors
    /// Stale handle.
    pub fn new_message_id(&self) -> Result<String, Error> {
        Ok(self.client()?.generate_message_id())
    }
}

/// The quote of a reply, as the context of the message that replies.
fn quote_context(q: &Quote, to: &Jid) -> wa::ContextInfo {
    let sender = parse_chat(&q.sender).unwrap_or_else(|| to.clone());
    let quoted = wa::Message::text(q.body.clone());
    whatsapp_rust::wacore::proto_helpers::build_quote_context(
        q.wa_id.clone(),
        sender.to_string(),
        &quoted,
    )
}

/// Puts the reply context on whichever sub-message `message` carries.
fn set_context(message: &mut wa::Message, ctx: wa::ContextInfo) {
    let ctx = MessageField::some(ctx);
    macro_rules! put {
        ($($field:ident),*) => {$(
            if let Some(m) = message.$field.as_option_mut() {
                m.context_info = ctx;
                return;
            }
        )*};
    }
    put!(
        image_message,
        video_message,
        ptv_message,
        audio_message,
        document_message,
        sticker_message,
        location_message,
        contact_message,
        contacts_array_message,
        extended_text_message,
        poll_creation_message,
        poll_creation_message_v3,
        event_message,
        list_message
    );
}

fn contacts_message(contacts: Vec<OutgoingContact>) -> Result<wa::Message, Error> {
    let mut cards: Vec<wa::message::ContactMessage> = contacts
        .into_iter()
        .map(|c| wa::message::ContactMessage {
            display_name: Some(c.display_name),
            vcard: Some(c.vcard),
            ..Default::default()
        })
        .collect();
    match cards.len() {
        0 => Err(bad("contacts should not be empty")),
        1 => Ok(wa::Message {
            contact_message: MessageField::some(cards.remove(0)),
            ..Default::default()
        }),
        n => Ok(wa::Message {
            contacts_array_message: MessageField::some(wa::message::ContactsArrayMessage {
                display_name: Some(format!("{n} contacts")),
                contacts: cards,
                ..Default::default()
            }),
            ..Default::default()
        }),
    }
}

/// A 32-byte random secret: polls and events carry one so that votes/RSVPs can be
/// encrypted to their creator (WhatsApp Web refuses polls and events without it).
fn message_secret() -> wa::MessageContextInfo {
    use rand::RngCore;
    let mut secret = vec![0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    wa::MessageContextInfo {
        message_secret: Some(secret),
        ..Default::default()
    }
}

fn poll_message(p: OutgoingPoll) -> Result<wa::Message, Error> {
    if p.options.len() < 2 || p.options.len() > 12 {
        return Err(bad("poll.options must contain between 2 and 12 options"));
    }
    let mut seen = std::collections::HashSet::new();
    if !p.options.iter().all(|o| seen.insert(o)) {
        return Err(bad("poll.options must be unique"));
    }
    let poll = wa::message::PollCreationMessage {
        name: Some(p.name),
        options: p
            .options
            .into_iter()
            .map(|name| wa::message::poll_creation_message::Option {
                option_name: Some(name),
                option_hash: None,
            })
            .collect(),
        // WhatsApp: 1 = single choice, 0 = any number of choices.
        selectable_options_count: Some(if p.multiple_answers { 0 } else { 1 }),
        poll_content_type: Some(wa::message::PollContentType::TEXT),
        ..Default::default()
    };
    // WhatsApp Web: v3 for single-select polls, v1 for multi-select ones.
    let mut message = if p.multiple_answers {
        wa::Message {
            poll_creation_message: MessageField::some(poll),
            ..Default::default()
        }
    } else {
        wa::Message {
            poll_creation_message_v3: MessageField::some(poll),
            ..Default::default()
        }
    };
    message.message_context_info = MessageField::some(message_secret());
    Ok(message)
}

fn event_message(e: OutgoingEvent) -> wa::Message {
    wa::Message {
        event_message: MessageField::some(wa::message::EventMessage {
            name: Some(e.name),
            description: e.description,
            start_time: Some(e.start_time),
            end_time: e.end_time,
            location: e
                .location
                .map(|name| wa::message::LocationMessage {
                    name: Some(name),
                    degrees_latitude: Some(0.0),
                    degrees_longitude: Some(0.0),
                    ..Default::default()
                })
                .into(),
            extra_guests_allowed: e.extra_guests_allowed,
            is_canceled: Some(false),
            ..Default::default()
        }),
        message_context_info: MessageField::some(message_secret()),
        ..Default::default()
    }
}

fn list_message(l: OutgoingList) -> wa::Message {
    use wa::message::list_message::{ListType, Row, Section};
    wa::Message {
        list_message: MessageField::some(wa::message::ListMessage {
            title: Some(l.title),
            description: l.description,
            button_text: Some(l.button),
            footer_text: l.footer,
            list_type: Some(ListType::SINGLE_SELECT),
            sections: l
                .sections
                .into_iter()
                .map(|(title, rows)| Section {
                    title: Some(title),
                    rows: rows
                        .into_iter()
                        .map(|(title, row_id, description)| Row {
                            title: Some(title),
                            row_id: Some(row_id),
                            description,
                        })
                        .collect(),
                })
                .collect(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// The secret of a poll, captured by whatsapp-rust when the poll was sent or received.
/// The capture is written behind (a detached task), so a vote right after the poll
/// arrived may have to wait a moment for it.
async fn poll_secret(
    client: &Arc<Client>,
    chats: &[Jid],
    creator: &Jid,
    poll_id: &str,
) -> Option<Vec<u8>> {
    let backend = client.persistence_manager().backend();
    let chats: Vec<String> = chats.iter().map(Jid::to_non_ad_string).collect();
    let mut senders = chats.clone();
    senders.push(creator.to_non_ad_string());
    if let Some(lid) = client.lid() {
        senders.push(lid.to_non_ad_string());
    }
    if let Some(pn) = client.pn() {
        senders.push(pn.to_non_ad_string());
    }
    senders.dedup();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    loop {
        for chat in &chats {
            for sender in &senders {
                if let Ok(Some(secret)) = backend.get_msg_secret(chat, sender, poll_id).await {
                    return Some(secret);
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(super) fn media_type(kind: MediaKind) -> MediaType {
    match kind {
        MediaKind::Image => MediaType::Image,
        MediaKind::Document => MediaType::Document,
        MediaKind::Voice => MediaType::Audio,
        MediaKind::Video | MediaKind::VideoNote => MediaType::Video,
        MediaKind::Sticker => MediaType::Sticker,
    }
}

/// The encrypted blob on disk, read back by the uploader from any offset (retries resume).
struct FileSource {
    path: PathBuf,
    len: u64,
}

impl UploadSource for FileSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn reader_from(&self, offset: u64) -> std::io::Result<Box<dyn Read + Send>> {
        let mut f = std::fs::File::open(&self.path)?;
        f.seek(std::io::SeekFrom::Start(offset))?;
        Ok(Box::new(std::io::BufReader::new(f)))
    }
}

/// Encryption is CPU-bound: at most half the cores (at least one) encrypt at a time, so
/// that many concurrent sends cannot crowd the HTTP workers off the CPU (`/ping` must keep
/// answering); the others wait their turn here, costing nothing while they wait.
fn encryption_slots() -> &'static tokio::sync::Semaphore {
    static SLOTS: std::sync::OnceLock<tokio::sync::Semaphore> = std::sync::OnceLock::new();
    SLOTS.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
        tokio::sync::Semaphore::new((cores / 2).max(1))
    })
}

/// Encrypts `plain` into a temp file next to it (blocking I/O, off the async threads).
async fn encrypt_file(
    plain: &Path,
    kind: MediaType,
) -> Result<(tempfile::TempPath, EncryptedMediaInfo, u64), Error> {
    let plain = plain.to_path_buf();
    let _slot = encryption_slots()
        .acquire()
        .await
        .map_err(|e| send_err(format!("encryption slots closed: {e}")))?;
    tokio::task::spawn_blocking(move || -> Result<_, Error> {
        let io = |e: std::io::Error| send_err(format!("cannot encrypt the media file: {e}"));
        let dir = plain
            .parent()
            .map_or_else(std::env::temp_dir, Path::to_path_buf);
        let input = std::io::BufReader::new(std::fs::File::open(&plain).map_err(io)?);
        let out = tempfile::Builder::new()
            .prefix("wharf-enc-")
            .tempfile_in(dir)
            .map_err(io)?;
        let (file, path) = out.into_parts();
        let mut writer = std::io::BufWriter::new(file);
        let info = encrypt_media_streaming(input, &mut writer, kind).map_err(send_err)?;
        let file = writer.into_inner().map_err(|e| io(e.into_error()))?;
        file.sync_all().map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok((path, info, len))
    })
    .await
    .map_err(send_err)?
}

/// Encrypts and uploads `path`; the encrypted copy is deleted before returning.
async fn upload_file(
    client: &Arc<Client>,
    path: &Path,
    kind: MediaType,
) -> Result<UploadResponse, Error> {
    let (enc_path, info, len) = encrypt_file(path, kind).await?;
    let source = FileSource {
        path: enc_path.to_path_buf(),
        len,
    };
    let result = client.upload_stream(source, info, kind).await;
    drop(enc_path);
    result.map_err(|e| send_err(format!("media upload failed: {e}")))
}

async fn media_message(
    client: &Arc<Client>,
    m: OutgoingMedia,
    context: Option<wa::ContextInfo>,
) -> Result<wa::Message, Error> {
    let upload = upload_file(client, &m.path, media_type(m.kind)).await?;
    let context_info = context.map(Box::new);
    Ok(match m.kind {
        MediaKind::Image => whatsapp_rust::media::image_message(
            upload,
            ImageOptions {
                caption: m.caption,
                mimetype: Some(m.mimetype),
                jpeg_thumbnail: m.thumbnail,
                context_info,
            },
        ),
        MediaKind::Document => whatsapp_rust::media::document_message(
            upload,
            DocumentOptions {
                mimetype: Some(m.mimetype),
                title: m.filename.clone(),
                file_name: m.filename,
                caption: m.caption,
                context_info,
                ..Default::default()
            },
        ),
        MediaKind::Voice => whatsapp_rust::media::audio_message(
            upload,
            AudioOptions {
                mimetype: Some(m.mimetype),
                duration_seconds: m.seconds,
                ptt: Some(true),
                waveform: m.waveform,
                context_info,
            },
        ),
        MediaKind::Video | MediaKind::VideoNote => {
            let mut msg = whatsapp_rust::media::video_message(
                upload,
                VideoOptions {
                    caption: m.caption,
                    mimetype: Some(m.mimetype),
                    duration_seconds: m.seconds,
                    jpeg_thumbnail: m.thumbnail,
                    context_info,
                    ..Default::default()
                },
            );
            if m.kind == MediaKind::VideoNote {
                // A video note is the same VideoMessage under `ptvMessage`.
                msg.ptv_message = std::mem::take(&mut msg.video_message);
            }
            msg
        }
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                url: Some(upload.url),
                direct_path: Some(upload.direct_path),
                media_key: Some(upload.media_key.to_vec()),
                file_sha256: Some(upload.file_sha256.to_vec()),
                file_enc_sha256: Some(upload.file_enc_sha256.to_vec()),
                file_length: Some(upload.file_length),
                media_key_timestamp: Some(upload.media_key_timestamp),
                mimetype: Some(m.mimetype),
                context_info: context_info.map(|c| *c).into(),
                ..Default::default()
            }),
            ..Default::default()
        },
    })
}
