//! S3 media storage (`WAHA_MEDIA_STORAGE=S3`): objects `{session}/{file}` in
//! `WAHA_S3_BUCKET`, through the maintained `rust-s3` crate (signing is its business).
//!
//! Owns: the bucket handle and the URL policy: presigned GET URLs (7 days, S3's maximum)
//! by default, or — with `WAHA_S3_PROXY_FILES=true` — wharf's own
//! `{WAHA_BASE_URL}/api/files/{session}/{file}`, which streams the object from the bucket.
//! `media.s3` is `{Bucket, Key}` either way (waha.md §4.2). Built by
//! [`super::MediaService::new`]; lives as long as it.

use std::path::Path;

use futures_util::StreamExt;
use s3::{Bucket, Region, creds::Credentials};

use super::{Error, MediaBackend, MediaFile, Stored, mimetype_of};
use crate::{config::S3Config, model::message::S3MediaData};

/// Presigned URLs live this long (S3's maximum, 7 days).
const PRESIGN_SECONDS: u32 = 7 * 24 * 3600;

/// One bucket.
pub struct S3Storage {
    bucket: Box<Bucket>,
    proxy_files: bool,
    base_url: String,
}

fn s3_err(e: impl std::fmt::Display) -> Error {
    Error::S3(e.to_string())
}

impl S3Storage {
    /// The bucket `config` names.
    ///
    /// # Errors
    /// The region or credentials are unusable.
    pub fn new(config: &S3Config, base_url: &str) -> Result<Self, Error> {
        let region = match &config.endpoint {
            Some(endpoint) => Region::Custom {
                region: config.region.clone(),
                endpoint: endpoint.trim_end_matches('/').to_string(),
            },
            None => config.region.parse().map_err(s3_err)?,
        };
        let credentials = Credentials::new(
            config.access_key_id.as_deref(),
            config
                .secret_access_key
                .as_ref()
                .map(|s| s.expose().as_str()),
            None,
            None,
            None,
        )
        .map_err(s3_err)?;
        let mut bucket = Bucket::new(&config.bucket, region, credentials).map_err(s3_err)?;
        if config.force_path_style {
            bucket = bucket.with_path_style();
        }
        Ok(Self {
            bucket,
            proxy_files: config.proxy_files,
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }
}

fn ok_status(status: u16, what: &str) -> Result<(), Error> {
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(Error::S3(format!("{what}: HTTP {status}")))
    }
}

impl MediaBackend for S3Storage {
    async fn store(
        &self,
        session: &str,
        file_name: &str,
        partial: &Path,
        mimetype: &str,
    ) -> Result<Stored, Error> {
        let key = format!("{session}/{file_name}");
        // Streamed from the file (multipart above the crate's chunk size): the media is
        // never in memory whole.
        let mut file = tokio::fs::File::open(partial).await?;
        let mimetype = if mimetype.is_empty() {
            mimetype_of(file_name)
        } else {
            mimetype
        };
        let put = self
            .bucket
            .put_object_stream_with_content_type(&mut file, &key, mimetype)
            .await
            .map_err(s3_err)?;
        ok_status(put.status_code(), "upload")?;
        let url = if self.proxy_files {
            format!("{}/api/files/{session}/{file_name}", self.base_url)
        } else {
            self.bucket
                .presign_get(&key, PRESIGN_SECONDS, None)
                .await
                .map_err(s3_err)?
        };
        Ok(Stored {
            url,
            s3: Some(S3MediaData {
                bucket: self.bucket.name(),
                key,
            }),
        })
    }

    async fn open(&self, session: &str, file_name: &str) -> Result<Option<MediaFile>, Error> {
        let key = format!("{session}/{file_name}");
        let stream = match self.bucket.get_object_stream(&key).await {
            Ok(s) => s,
            Err(s3::error::S3Error::HttpFailWithBody(404, _)) => return Ok(None),
            Err(e) => return Err(s3_err(e)),
        };
        if stream.status_code == 404 {
            return Ok(None);
        }
        ok_status(stream.status_code, "download")?;
        Ok(Some(MediaFile {
            len: None,
            mimetype: mimetype_of(file_name).to_string(),
            body: Box::pin(
                stream
                    .bytes
                    .map(|chunk| chunk.map_err(std::io::Error::other)),
            ),
        }))
    }
}
