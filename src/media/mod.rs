//! Media files: where downloaded media go, how they are named and served, and how long
//! they stay.
//!
//! Owns: [`MediaService`] — the media settings (`WHATSAPP_DOWNLOAD_MEDIA`,
//! `WHATSAPP_FILES_MIMETYPES`, `WHATSAPP_FILES_LIFETIME`, `WHATSAPP_FILES_FOLDER`,
//! `WAHA_MEDIA_STORAGE`, `WAHA_S3_*`; `../shared/reference/waha.md` §7.4, §8), the
//! partial-download folder, the storage backend ([`Storage`]: a local folder or an S3
//! bucket, one contract in [`MediaBackend`]), WAHA's file naming (`{messageId}.{ext}`) and
//! the lifetime sweeper ([`SweeperTask`], owned by `App`). Built once by `App::build`;
//! cloned (cheaply) into every session's inbox (which stores what the engine downloads)
//! and into the HTTP state (the files route reads through [`MediaService::open`]); lives
//! for the process. No actix, no whatsapp-rust here: bytes arrive as a file on disk and
//! leave as a byte stream.

mod local;
mod s3;
pub mod spool;
mod sweeper;

use std::{
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
};

use bytes::Bytes;
use futures_util::Stream;

pub use self::sweeper::SweeperTask;
use crate::{
    config::{MediaConfig, MediaStorageKind},
    model::message::S3MediaData,
};

/// A file's bytes, streamed (never held whole in memory).
pub type ByteStream = Pin<Box<dyn Stream<Item = std::io::Result<Bytes>> + Send>>;

/// Media-layer failures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The local filesystem failed.
    #[error("media file I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The S3 server refused or could not be reached.
    #[error("S3: {0}")]
    S3(String),
}

/// Where a stored file can be fetched.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored {
    /// `media.url`.
    pub url: String,
    /// `media.s3`, with S3 storage.
    pub s3: Option<S3MediaData>,
}

/// A stored file opened for serving.
pub struct MediaFile {
    /// Its size, when known.
    pub len: Option<u64>,
    /// `Content-Type`.
    pub mimetype: String,
    /// Its bytes.
    pub body: ByteStream,
}

/// What every storage backend does.
pub trait MediaBackend {
    /// Moves the finished download at `partial` to `{session}/{file_name}` and says where
    /// it can be fetched. `partial` is gone afterwards (moved or deleted).
    fn store(
        &self,
        session: &str,
        file_name: &str,
        partial: &Path,
        mimetype: &str,
    ) -> impl Future<Output = Result<Stored, Error>> + Send;

    /// Opens `{session}/{file_name}` for the files route; `None` when it is not there.
    fn open(
        &self,
        session: &str,
        file_name: &str,
    ) -> impl Future<Output = Result<Option<MediaFile>, Error>> + Send;
}

/// The configured backend.
pub enum Storage {
    /// `WAHA_MEDIA_STORAGE=LOCAL`.
    Local(local::LocalStorage),
    /// `WAHA_MEDIA_STORAGE=S3`.
    S3(s3::S3Storage),
}

impl MediaBackend for Storage {
    async fn store(
        &self,
        session: &str,
        file_name: &str,
        partial: &Path,
        mimetype: &str,
    ) -> Result<Stored, Error> {
        match self {
            Self::Local(b) => b.store(session, file_name, partial, mimetype).await,
            Self::S3(b) => b.store(session, file_name, partial, mimetype).await,
        }
    }

    async fn open(&self, session: &str, file_name: &str) -> Result<Option<MediaFile>, Error> {
        match self {
            Self::Local(b) => b.open(session, file_name).await,
            Self::S3(b) => b.open(session, file_name).await,
        }
    }
}

/// Media settings + storage; cheap to clone.
#[derive(Clone)]
pub struct MediaService {
    inner: Arc<Inner>,
}

struct Inner {
    config: MediaConfig,
    storage: Storage,
}

impl MediaService {
    /// The service `config` asks for; `base_url` is `WAHA_BASE_URL` (media URLs start
    /// with it).
    ///
    /// # Errors
    /// The S3 settings are unusable.
    pub fn new(config: MediaConfig, base_url: &str) -> Result<Self, Error> {
        let storage = match &config.storage {
            MediaStorageKind::Local => {
                Storage::Local(local::LocalStorage::new(config.folder.clone(), base_url))
            }
            MediaStorageKind::S3(s3) => Storage::S3(s3::S3Storage::new(s3, base_url)?),
        };
        Ok(Self {
            inner: Arc::new(Inner { config, storage }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MediaConfig {
        &self.inner.config
    }

    /// Whether a media with this mimetype is downloaded (`WHATSAPP_DOWNLOAD_MEDIA` and the
    /// `WHATSAPP_FILES_MIMETYPES` prefixes, as WAHA: an empty list allows every type).
    pub fn should_download(&self, mimetype: &str) -> bool {
        let c = &self.inner.config;
        if !c.download {
            return false;
        }
        let mimetype = mimetype.to_ascii_lowercase();
        c.mimetypes.is_empty() || c.mimetypes.iter().any(|p| mimetype.starts_with(p))
    }

    /// A fresh file for a download in progress (`{folder}/.partial/…`, same filesystem as
    /// local storage so storing is a rename).
    ///
    /// # Errors
    /// The folder cannot be created or written.
    pub async fn partial_file(&self) -> Result<(PathBuf, std::fs::File), Error> {
        let dir = self.inner.config.folder.join(".partial");
        tokio::fs::create_dir_all(&dir).await?;
        let path = dir.join(uuid::Uuid::new_v4().simple().to_string());
        let file = tokio::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .await?
            .into_std()
            .await;
        Ok((path, file))
    }

    /// Removes downloads a previous run left unfinished (a crash mid-download); called
    /// once at start, before any session runs.
    pub async fn remove_partials(&self) {
        let dir = self.inner.config.folder.join(".partial");
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "media: cannot remove partial downloads")
            }
        }
    }

    /// Stores a finished download (see [`MediaBackend::store`]).
    ///
    /// # Errors
    /// The backend failed; the partial file is removed either way.
    pub async fn store(
        &self,
        session: &str,
        file_name: &str,
        partial: &Path,
        mimetype: &str,
    ) -> Result<Stored, Error> {
        let stored = self
            .inner
            .storage
            .store(session, file_name, partial, mimetype)
            .await;
        // Moved on success; on failure it must not linger.
        let _ = tokio::fs::remove_file(partial).await;
        stored
    }

    /// Opens a stored file for `GET /api/files/{session}/{file}`; `None` when there is no
    /// such file (swept, never downloaded, or a name that cannot be one of ours).
    ///
    /// # Errors
    /// The backend failed.
    pub async fn open(&self, session: &str, file_name: &str) -> Result<Option<MediaFile>, Error> {
        if !is_safe_name(session) || !is_safe_name(file_name) {
            return Ok(None);
        }
        self.inner.storage.open(session, file_name).await
    }

    /// Starts the lifetime sweeper (`None` when `WHATSAPP_FILES_LIFETIME` is 0 or storage
    /// is not local: S3 objects expire through the bucket's lifecycle rules, as in WAHA).
    #[must_use = "the sweeper must be kept and stopped on shutdown"]
    pub fn spawn_sweeper(
        &self,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Option<SweeperTask> {
        let c = &self.inner.config;
        if c.lifetime.is_zero() || !matches!(c.storage, MediaStorageKind::Local) {
            return None;
        }
        Some(sweeper::spawn(c.folder.clone(), c.lifetime, cancel))
    }
}

/// A path segment we could have written: no separators, not hidden, not `..`.
fn is_safe_name(s: &str) -> bool {
    !s.is_empty() && !s.starts_with('.') && !s.contains(['/', '\\', '\0'])
}

/// WAHA's file name: `{messageId}.{ext}`, the extension from the mimetype (or the
/// document's own name when the mimetype says nothing).
pub fn file_name(message_id: &str, mimetype: &str, filename: Option<&str>) -> String {
    let ext = extension(mimetype)
        .map(str::to_string)
        .or_else(|| {
            filename
                .and_then(|f| f.rsplit_once('.'))
                .map(|(_, e)| e.to_ascii_lowercase())
                .filter(|e| {
                    !e.is_empty() && e.len() <= 10 && e.bytes().all(|b| b.is_ascii_alphanumeric())
                })
        })
        .unwrap_or_else(|| "bin".to_string());
    format!("{message_id}.{ext}")
}

/// Mimetype (parameters ignored) ↔ extension, the common WhatsApp types first.
const TYPES: &[(&str, &str)] = &[
    ("image/jpeg", "jpeg"),
    ("image/png", "png"),
    ("image/webp", "webp"),
    ("image/gif", "gif"),
    ("video/mp4", "mp4"),
    ("video/3gpp", "3gp"),
    ("video/quicktime", "mov"),
    ("audio/ogg", "oga"),
    ("audio/mpeg", "mp3"),
    ("audio/mp4", "m4a"),
    ("audio/aac", "aac"),
    ("audio/wav", "wav"),
    ("audio/amr", "amr"),
    ("application/pdf", "pdf"),
    ("application/zip", "zip"),
    ("application/json", "json"),
    ("application/msword", "doc"),
    (
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        "docx",
    ),
    ("application/vnd.ms-excel", "xls"),
    (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "xlsx",
    ),
    ("text/plain", "txt"),
    ("text/csv", "csv"),
    ("text/vcard", "vcf"),
];

fn extension(mimetype: &str) -> Option<&'static str> {
    let base = mimetype.split(';').next()?.trim().to_ascii_lowercase();
    TYPES.iter().find(|(m, _)| *m == base).map(|(_, e)| *e)
}

/// The mimetype to serve a stored file with (from its extension).
pub fn mimetype_of(file_name: &str) -> &'static str {
    let ext = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "jpg" => "image/jpeg",
        "ogg" | "opus" => "audio/ogg",
        _ => TYPES
            .iter()
            .find(|(_, e)| *e == ext)
            .map_or("application/octet-stream", |(m, _)| *m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_follow_waha() {
        assert_eq!(
            file_name("false_1@c.us_AA", "image/jpeg", None),
            "false_1@c.us_AA.jpeg"
        );
        assert_eq!(file_name("x", "audio/ogg; codecs=opus", None), "x.oga");
        assert_eq!(file_name("x", "", Some("report.PDF")), "x.pdf");
        assert_eq!(file_name("x", "application/x-weird", None), "x.bin");
        assert_eq!(mimetype_of("a.oga"), "audio/ogg");
        assert_eq!(mimetype_of("a.unknown"), "application/octet-stream");
        assert!(!is_safe_name(".."));
        assert!(!is_safe_name("a/b"));
        assert!(is_safe_name("false_1@c.us_AA.jpeg"));
    }

    fn service(download: bool, mimetypes: &[&str]) -> MediaService {
        MediaService::new(
            MediaConfig {
                download,
                mimetypes: mimetypes.iter().map(|m| (*m).to_string()).collect(),
                lifetime: std::time::Duration::ZERO,
                folder: PathBuf::from("/nonexistent"),
                storage: MediaStorageKind::Local,
                download_timeout: std::time::Duration::from_secs(1),
            },
            "http://localhost:3000",
        )
        .unwrap()
    }

    #[test]
    fn mimetype_prefixes_and_download_switch_decide_what_is_downloaded() {
        let all = service(true, &[]);
        assert!(all.should_download("image/jpeg"));
        assert!(all.should_download(""));
        let some = service(true, &["audio", "image/png"]);
        assert!(some.should_download("audio/ogg; codecs=opus"));
        assert!(some.should_download("IMAGE/PNG"));
        assert!(!some.should_download("image/jpeg"));
        assert!(!some.should_download("video/mp4"));
        assert!(!service(false, &[]).should_download("image/jpeg"));
    }
}
