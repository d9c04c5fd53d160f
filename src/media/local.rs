//! Local media storage (`WAHA_MEDIA_STORAGE=LOCAL`, the default): files in
//! `WHATSAPP_FILES_FOLDER/{session}/{file}`, served by wharf at
//! `{WAHA_BASE_URL}/api/files/{session}/{file}` (waha.md §4.2).
//!
//! Owns: that folder layout. Built by [`super::MediaService::new`]; lives as long as it.

use std::path::{Path, PathBuf};

use tokio_util::io::ReaderStream;

use super::{Error, MediaBackend, MediaFile, Stored, mimetype_of};

/// Files under one folder.
pub struct LocalStorage {
    folder: PathBuf,
    base_url: String,
}

impl LocalStorage {
    /// Files under `folder`; URLs start with `base_url`.
    pub fn new(folder: PathBuf, base_url: &str) -> Self {
        Self {
            folder,
            base_url: base_url.trim_end_matches('/').to_string(),
        }
    }
}

impl MediaBackend for LocalStorage {
    async fn store(
        &self,
        session: &str,
        file_name: &str,
        partial: &Path,
        _mimetype: &str,
    ) -> Result<Stored, Error> {
        let dir = self.folder.join(session);
        tokio::fs::create_dir_all(&dir).await?;
        // The partial file is in the same folder tree: a rename, never a copy.
        tokio::fs::rename(partial, dir.join(file_name)).await?;
        Ok(Stored {
            url: format!("{}/api/files/{session}/{file_name}", self.base_url),
            s3: None,
        })
    }

    async fn open(&self, session: &str, file_name: &str) -> Result<Option<MediaFile>, Error> {
        let path = self.folder.join(session).join(file_name);
        let file = match tokio::fs::File::open(&path).await {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let meta = file.metadata().await?;
        if !meta.is_file() {
            return Ok(None);
        }
        Ok(Some(MediaFile {
            len: Some(meta.len()),
            mimetype: mimetype_of(file_name).to_string(),
            body: Box::pin(ReaderStream::new(file)),
        }))
    }
}
