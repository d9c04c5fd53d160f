//! Media posts to channels (WhatsApp newsletters): image, video, video note, voice,
//! document and sticker messages to a `…@newsletter` chat.
//!
//! Channel media is not end-to-end encrypted: WhatsApp wants the plaintext on its CDN
//! (`POST https://{media host}/newsletter/newsletter-{image|video|audio|document}/{token}`,
//! `token` the base64url SHA-256 of the plaintext, the media connection's `auth`), answers
//! `{url, direct_path, handle}`, and the post names the upload by `media_id="{handle}"`
//! on its `<message>`; the message proto carries the CDN fields and the plaintext hash
//! but no media key (followers download the plaintext and check its SHA-256, which
//! whatsapp-rust's download does for any media without a key). whatsapp-rust 0.7.0's
//! upload always encrypts, so the upload and the stanza are built here, over its media
//! connection and its HTTP client (wharf's `media_http`: proxy and mock-network rewrite
//! included).
//!
//! Owns: that upload (streamed from the caller's file, constant memory), the keyless
//! media message and the `<message media_id>` stanza. Called by `outgoing_media`'s send
//! when the chat is a channel, on the caller's task; holds nothing between calls.

use std::{
    io::Read,
    path::{Path, PathBuf},
    sync::Arc,
};

use base64::Engine as _;
use sha2::Digest as _;
use whatsapp_rust::{
    Jid, NewsletterRole, NodeBuilder,
    buffa::MessageField,
    download::MediaType,
    http::HttpRequest,
    prelude::*,
    waproto::{codec::message_to_vec, whatsapp as wa},
};

use super::{
    Error,
    outgoing_media::{MediaKind, OutgoingMedia, media_type},
};

/// What the CDN answered for a plaintext channel upload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
struct Uploaded {
    url: String,
    direct_path: String,
    /// Names the upload in the post's `media_id`.
    #[serde(default)]
    handle: String,
}

/// A plaintext upload: the CDN's answer and the file's hash and size.
#[derive(Debug, Clone)]
struct PlainUpload {
    uploaded: Uploaded,
    file_sha256: [u8; 32],
    file_length: u64,
}

fn send_err(e: impl std::fmt::Display) -> Error {
    Error::Send(e.to_string())
}

/// `Origin` WhatsApp's CDN expects on uploads (as whatsapp-rust and whatsmeow send it).
const WEB_ORIGIN: &str = "https://web.whatsapp.com";

/// The CDN's upload path for a channel's media of `kind`.
fn upload_path(kind: MediaType) -> String {
    format!("/newsletter/newsletter-{}", kind.mms_type())
}

/// SHA-256 and size of a file, read in blocks on a blocking thread.
async fn hash_file(path: &Path) -> Result<([u8; 32], u64), Error> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || -> std::io::Result<([u8; 32], u64)> {
        let mut f = std::io::BufReader::new(std::fs::File::open(&path)?);
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut len: u64 = 0;
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            len += n as u64;
        }
        Ok((hasher.finalize().into(), len))
    })
    .await
    .map_err(send_err)?
    .map_err(|e| send_err(format!("cannot read the media file: {e}")))
}

/// Uploads the plaintext at `path` to the CDN for a channel post: every media host in
/// turn; a refused `auth` (401/403) refreshes the media connection once.
async fn upload_plain(
    client: &Arc<Client>,
    path: &Path,
    kind: MediaType,
) -> Result<PlainUpload, Error> {
    let (file_sha256, file_length) = hash_file(path).await?;
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(file_sha256);
    let prefix = upload_path(kind);
    let mut last = String::from("no media host answered");
    for attempt in 0..2 {
        let conn = client
            .refresh_media_conn(attempt > 0)
            .await
            .map_err(|e| send_err(format!("channel media upload failed: {e}")))?;
        if conn.hosts.is_empty() {
            return Err(send_err("channel media upload failed: no media hosts"));
        }
        let mut auth_refused = false;
        for host in &conn.hosts {
            let url = format!(
                "https://{}{prefix}/{token}?auth={}&token={token}",
                host.hostname,
                super::media_http::percent(&conn.auth)
            );
            let request = HttpRequest::post(url)
                .with_header("Content-Type", "application/octet-stream")
                .with_header("Origin", WEB_ORIGIN);
            let http = Arc::clone(&client.http_client);
            let body: PathBuf = path.to_path_buf();
            let answer = tokio::task::spawn_blocking(move || {
                let reader = std::io::BufReader::new(std::fs::File::open(&body)?);
                http.execute_upload(request, Box::new(reader), file_length)
            })
            .await
            .map_err(send_err)?;
            match answer {
                Ok(r) if r.status_code < 400 => {
                    let uploaded: Uploaded = serde_json::from_slice(&r.body).map_err(|e| {
                        send_err(format!("channel media upload: unreadable answer: {e}"))
                    })?;
                    return Ok(PlainUpload {
                        uploaded,
                        file_sha256,
                        file_length,
                    });
                }
                Ok(r) if matches!(r.status_code, 401 | 403) => {
                    last = format!("HTTP {}", r.status_code);
                    auth_refused = true;
                    break;
                }
                Ok(r) => last = format!("HTTP {}", r.status_code),
                Err(e) => last = format!("{e:#}"),
            }
        }
        if !auth_refused {
            break;
        }
    }
    Err(send_err(format!("channel media upload failed: {last}")))
}

/// The keyless media message of a channel post (CDN fields and plaintext hash only).
fn keyless_message(
    m: OutgoingMedia,
    up: &PlainUpload,
    context: Option<wa::ContextInfo>,
) -> wa::Message {
    let url = Some(up.uploaded.url.clone());
    let direct_path = Some(up.uploaded.direct_path.clone());
    let file_sha256 = Some(up.file_sha256.to_vec());
    let file_length = Some(up.file_length);
    let mimetype = Some(m.mimetype);
    let context_info: MessageField<wa::ContextInfo> = context.into();
    match m.kind {
        MediaKind::Image => wa::Message {
            image_message: MessageField::some(wa::message::ImageMessage {
                url,
                direct_path,
                file_sha256,
                file_length,
                mimetype,
                caption: m.caption,
                jpeg_thumbnail: m.thumbnail,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Video | MediaKind::VideoNote => {
            let video = MessageField::some(wa::message::VideoMessage {
                url,
                direct_path,
                file_sha256,
                file_length,
                mimetype,
                caption: m.caption,
                seconds: m.seconds,
                jpeg_thumbnail: m.thumbnail,
                context_info,
                ..Default::default()
            });
            if m.kind == MediaKind::VideoNote {
                wa::Message {
                    ptv_message: video,
                    ..Default::default()
                }
            } else {
                wa::Message {
                    video_message: video,
                    ..Default::default()
                }
            }
        }
        MediaKind::Voice => wa::Message {
            audio_message: MessageField::some(wa::message::AudioMessage {
                url,
                direct_path,
                file_sha256,
                file_length,
                mimetype,
                seconds: m.seconds,
                ptt: Some(true),
                waveform: m.waveform,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Document => wa::Message {
            document_message: MessageField::some(wa::message::DocumentMessage {
                url,
                direct_path,
                file_sha256,
                file_length,
                mimetype,
                title: m.filename.clone(),
                file_name: m.filename,
                caption: m.caption,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
        MediaKind::Sticker => wa::Message {
            sticker_message: MessageField::some(wa::message::StickerMessage {
                url,
                direct_path,
                file_sha256,
                file_length,
                mimetype,
                context_info,
                ..Default::default()
            }),
            ..Default::default()
        },
    }
}

/// Only the channel's owner and admins post: checked before the upload, so that a post
/// WhatsApp would drop is a `403` here rather than a silent success.
async fn check_can_post(client: &Arc<Client>, to: &Jid) -> Result<(), Error> {
    let meta = client
        .newsletter()
        .get_metadata(to)
        .await
        .map_err(super::channels::err)?;
    match meta.role {
        Some(NewsletterRole::Owner | NewsletterRole::Admin) => Ok(()),
        _ => Err(Error::Refused {
            code: 403,
            text: format!("forbidden: only the owner or an admin of {to} can post to it"),
        }),
    }
}

/// Uploads `m` in the clear and posts it to the channel `to` (with `id`, or a fresh
/// one). Returns the post's id and its message.
///
/// # Errors
/// Not the owner or an admin (403), unknown channel (404), the upload or the send failed.
pub(super) async fn send(
    client: &Arc<Client>,
    to: &Jid,
    m: OutgoingMedia,
    context: Option<wa::ContextInfo>,
    id: Option<String>,
) -> Result<(String, wa::Message), Error> {
    check_can_post(client, to).await?;
    let up = upload_plain(client, &m.path, media_type(m.kind)).await?;
    let handle = up.uploaded.handle.clone();
    let message = keyless_message(m, &up, context);
    let id = id.unwrap_or_else(|| client.generate_message_id());
    let mut plaintext = NodeBuilder::new("plaintext");
    if let Some(mt) = whatsapp_rust::wacore::send::media_type_from_message(&message) {
        plaintext = plaintext.attr("mediatype", mt);
    }
    let mut stanza = NodeBuilder::new("message")
        .attr("to", to.clone())
        .attr(
            "type",
            whatsapp_rust::wacore::send::stanza_type_from_message(&message),
        )
        .attr("id", id.clone());
    if !handle.is_empty() {
        stanza = stanza.attr("media_id", handle);
    }
    let stanza = stanza
        .children([plaintext.bytes(message_to_vec(&message)).build()])
        .build();
    client.send_node(stanza).await.map_err(send_err)?;
    Ok((id, message))
}

#[cfg(test)]
mod tests {
    use super::upload_path;
    use whatsapp_rust::download::MediaType;

    #[test]
    fn channel_uploads_go_under_newsletter_with_the_media_type() {
        assert_eq!(
            upload_path(MediaType::Image),
            "/newsletter/newsletter-image"
        );
        assert_eq!(
            upload_path(MediaType::Audio),
            "/newsletter/newsletter-audio"
        );
        assert_eq!(
            upload_path(MediaType::Document),
            "/newsletter/newsletter-document"
        );
        assert_eq!(
            crate::engine::media_http::percent("a+b/c=="),
            "a%2Bb%2Fc%3D%3D"
        );
    }
}
