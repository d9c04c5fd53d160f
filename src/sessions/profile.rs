//! The session's own profile: read it, set the push name, the "about" text and the
//! picture.
//!
//! Owns: nothing long-lived. Every operation borrows a live [`engine::Session`] (from the
//! WORKING gate in `api/profile.rs`) for one call. The picture body is read like a group
//! picture's (`sessions::groups::picture_bytes`: base64 `data` or a download of `url`)
//! and must be a JPEG, which is what WhatsApp stores. Never imports actix.

use super::{Error, Result, SessionManager, groups::picture_bytes};
use crate::{
    engine::{self, profile::OwnProfile},
    model::groups::PictureFile,
};

fn bad(msg: impl Into<String>) -> Error {
    Error::Engine(engine::Error::BadRequest(msg.into()))
}

/// The JPEG of a picture body, or why it cannot be a profile picture: not an image at
/// all (its `mimetype` or its bytes say so), or an image in another format (wharf does
/// not transcode).
async fn jpeg(file: PictureFile) -> Result<Vec<u8>> {
    let mimetype = file.mimetype.clone().unwrap_or_default();
    if !mimetype.is_empty() && !mimetype.starts_with("image/") {
        return Err(bad(format!(
            "file must be an image (image/jpeg), got mimetype {mimetype:?}"
        )));
    }
    let bytes = picture_bytes(file).await?;
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(bytes);
    }
    let other = [
        (&b"\x89PNG"[..], "PNG"),
        (b"GIF8", "GIF"),
        (b"RIFF", "WebP"),
        (b"BM", "BMP"),
    ]
    .into_iter()
    .find(|(magic, _)| bytes.starts_with(magic));
    Err(bad(match other {
        Some((_, kind)) => format!("file must be a JPEG image, got {kind}"),
        None => "file must be a JPEG image".to_string(),
    }))
}

impl SessionManager {
    /// Our id, push name and picture.
    ///
    /// # Errors
    /// WhatsApp refused the picture query.
    pub async fn own_profile(&self, engine: &engine::Session) -> Result<OwnProfile> {
        Ok(engine.own_profile().await?)
    }

    /// Sets our push name.
    ///
    /// # Errors
    /// The stanza could not be sent.
    pub async fn set_profile_name(&self, engine: &engine::Session, name: &str) -> Result<()> {
        Ok(engine.set_push_name(name).await?)
    }

    /// Sets our "about" text.
    ///
    /// # Errors
    /// WhatsApp refused it.
    pub async fn set_profile_status(&self, engine: &engine::Session, status: &str) -> Result<()> {
        Ok(engine.set_about(status).await?)
    }

    /// Sets our picture from a `BinaryFile` (base64) or a `RemoteFile` (URL).
    ///
    /// # Errors
    /// Not a JPEG, an undecodable or unreachable file, WhatsApp's refusal.
    pub async fn set_profile_picture(
        &self,
        engine: &engine::Session,
        file: PictureFile,
    ) -> Result<()> {
        let bytes = jpeg(file).await?;
        Ok(engine.set_own_picture(bytes).await?)
    }

    /// Removes our picture.
    ///
    /// # Errors
    /// WhatsApp's refusal.
    pub async fn delete_profile_picture(&self, engine: &engine::Session) -> Result<()> {
        Ok(engine.remove_own_picture().await?)
    }
}
