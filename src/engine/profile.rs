//! The session's own profile through the engine: push name, "about" text and picture,
//! with whatsapp-rust's `client.profile()` calls and `get_profile_picture` for reading the
//! picture back.
//!
//! Owns: one `async fn` per profile operation on [`Session`] and the mapping of WhatsApp's
//! refusals to [`Error::Refused`]. Called by the domain (`sessions::profile`) on the
//! caller's task, for as long as the handle is live.

use whatsapp_rust::{
    Jid,
    features::{ContactError, ProfileError},
    request::IqError,
};

use super::{Error, Session, messaging::waha_id};

/// What `GET /api/{session}/profile` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnProfile {
    /// Our WAHA id (`…@c.us`).
    pub id: String,
    /// Our push name.
    pub name: String,
    /// Our picture's URL, `None` when there is none.
    pub picture: Option<String>,
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "ProfileError and IqError are non_exhaustive; the rest is a failed call"
)]
fn profile_err(e: ProfileError) -> Error {
    match e {
        ProfileError::Iq(IqError::ServerError { code, text, .. }) => Error::Refused { code, text },
        ProfileError::InvalidArgument(text) => Error::BadRequest(text),
        other => Error::Send(super::chain(&other)),
    }
}

impl Session {
    /// Our id, push name and picture URL (WhatsApp is asked for the picture).
    ///
    /// # Errors
    /// Stale handle, no identity yet, or WhatsApp refused the picture query.
    pub async fn own_profile(&self) -> Result<OwnProfile, Error> {
        let client = self.client()?;
        let pn = client.pn().ok_or(Error::NotRunning)?;
        let me = Jid::pn(pn.user.clone());
        let picture = match client.contacts().get_profile_picture(&me, false).await {
            Ok(p) => p.map(|p| p.url),
            // No picture is a 404 from WhatsApp, not an error for the caller.
            Err(ContactError::Iq(IqError::ServerError { code: 404, .. })) => None,
            Err(ContactError::Iq(IqError::ServerError { code, text, .. })) => {
                return Err(Error::Refused { code, text });
            }
            Err(e) => return Err(Error::Send(super::chain(&e))),
        };
        Ok(OwnProfile {
            id: waha_id(&me),
            name: client.push_name(),
            picture,
        })
    }

    /// Sets our push name (the name others see on our messages).
    ///
    /// # Errors
    /// Stale handle, an empty name, or the stanza could not be sent.
    pub async fn set_push_name(&self, name: &str) -> Result<(), Error> {
        self.client()?
            .profile()
            .set_push_name(name)
            .await
            .map_err(profile_err)
    }

    /// Sets our "about" text.
    ///
    /// # Errors
    /// Stale handle or WhatsApp refused it.
    pub async fn set_about(&self, text: &str) -> Result<(), Error> {
        self.client()?
            .profile()
            .set_status_text(text)
            .await
            .map_err(profile_err)
    }

    /// Sets our picture (JPEG bytes, not empty).
    ///
    /// # Errors
    /// Stale handle or WhatsApp refused it.
    pub async fn set_own_picture(&self, jpeg: Vec<u8>) -> Result<(), Error> {
        if jpeg.is_empty() {
            return Err(Error::BadRequest("the picture is empty".into()));
        }
        self.client()?
            .profile()
            .set_profile_picture(jpeg)
            .await
            .map(drop)
            .map_err(profile_err)
    }

    /// Removes our picture.
    ///
    /// # Errors
    /// Stale handle or WhatsApp refused it.
    pub async fn remove_own_picture(&self) -> Result<(), Error> {
        self.client()?
            .profile()
            .remove_profile_picture()
            .await
            .map(drop)
            .map_err(profile_err)
    }
}
