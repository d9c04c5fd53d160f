//! Contacts through the engine: whatsapp-rust's `client.contacts()` (usync user info,
//! `is_on_whatsapp`, profile pictures) and `client.blocking()`, translated to WAHA ids.
//!
//! Owns: one `async fn` per contact operation on [`Session`] and the mapping of WhatsApp's
//! refusals to [`Error::Refused`]. Called by the domain (`sessions::contacts`) on the
//! caller's task, for as long as the handle is live.

use whatsapp_rust::{
    Jid,
    features::{BlockingError, ContactError},
    request::IqError,
};

use super::{
    Error, Session,
    messaging::{parse_chat, waha_id},
};

/// What WhatsApp tells about one user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user as asked (WAHA id).
    pub id: String,
    /// Its LID (`…@lid`), when WhatsApp told it.
    pub lid: Option<String>,
    /// Its phone-number id (`…@c.us`), when WhatsApp told it.
    pub pn: Option<String>,
    /// Its "about" text; `None` when it has none or hides it.
    pub about: Option<String>,
    /// Registered on WhatsApp.
    pub exists: bool,
}

fn user_jid(id: &str) -> Result<Jid, Error> {
    parse_chat(id)
        .filter(|j| j.server == "s.whatsapp.net" || j.server == "lid")
        .ok_or_else(|| Error::BadRequest(format!("{id:?} is not a contact id")))
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "ContactError and IqError are non_exhaustive; the rest is a failed call"
)]
fn contact_err(e: ContactError) -> Error {
    match e {
        ContactError::Iq(IqError::ServerError { code, text, .. }) => Error::Refused { code, text },
        ContactError::InvalidJid(text) => Error::BadRequest(text),
        other => Error::Send(super::chain(&other)),
    }
}

#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "BlockingError and IqError are non_exhaustive; the rest is a failed call"
)]
fn blocking_err(e: BlockingError) -> Error {
    match e {
        BlockingError::Iq(IqError::ServerError { code, text, .. }) => Error::Refused { code, text },
        BlockingError::InvalidJid(text) => Error::BadRequest(text),
        other => Error::Send(super::chain(&other)),
    }
}

impl Session {
    /// Looks a user up (usync): existence, LID, phone number and, with `about`, its
    /// about text (one more query).
    ///
    /// # Errors
    /// Stale handle, a non-user id, or WhatsApp refused the query.
    pub async fn user_info(&self, id: &str, about: bool) -> Result<UserInfo, Error> {
        let client = self.client()?;
        let jid = user_jid(id)?;
        let asked = waha_id(&jid);
        // Existence and the LID ↔ PN pair come from the existence query (it learns
        // the pair in whatsapp-rust's own cache too, which blocking needs).
        let exists = client
            .contacts()
            .is_on_whatsapp(std::slice::from_ref(&jid))
            .await
            .map_err(contact_err)?;
        let mut out = UserInfo {
            id: asked.clone(),
            ..UserInfo::default()
        };
        for r in exists {
            out.exists |= r.is_registered;
            if r.jid.server == "lid" {
                out.lid = Some(waha_id(&r.jid));
                out.pn = r.pn_jid.as_ref().map(waha_id);
            } else {
                out.pn = Some(waha_id(&r.jid));
                out.lid = r.lid.as_ref().map(waha_id);
            }
        }
        if !about {
            return Ok(out);
        }
        let info = client
            .contacts()
            .get_user_info(std::slice::from_ref(&jid))
            .await
            .map_err(contact_err)?;
        if let Some(i) = info.into_values().next() {
            out.about = i.status.filter(|s| !s.is_empty());
            if out.lid.is_none() {
                out.lid = i.lid.as_ref().map(waha_id);
            }
        }
        Ok(out)
    }

    /// The URL of a user's full profile picture; `None` when it has none (or hides it).
    ///
    /// # Errors
    /// Stale handle, a non-user id, or WhatsApp refused the query.
    pub async fn profile_picture(&self, id: &str) -> Result<Option<String>, Error> {
        let client = self.client()?;
        let jid = user_jid(id)?;
        client
            .contacts()
            .get_profile_picture(&jid, false)
            .await
            .map(|p| p.map(|p| p.url))
            .map_err(contact_err)
    }

    /// Blocks (`true`) or unblocks a user.
    ///
    /// # Errors
    /// Stale handle, a non-user id, no known LID for it, or WhatsApp refused.
    pub async fn set_blocked(&self, id: &str, blocked: bool) -> Result<(), Error> {
        let client = self.client()?;
        let jid = user_jid(id)?;
        // Blocking needs the LID ↔ PN pair; an existence query teaches it when the
        // client has not seen the user yet.
        if client.get_lid_pn_entry(&jid).await.ok().flatten().is_none() {
            client
                .contacts()
                .is_on_whatsapp(std::slice::from_ref(&jid))
                .await
                .map_err(contact_err)?;
        }
        let blocking = client.blocking();
        if blocked {
            blocking.block(&jid).await.map_err(blocking_err)
        } else {
            blocking.unblock(&jid).await.map_err(blocking_err)
        }
    }

    /// The account's block list, as WAHA ids (the ids WhatsApp lists, usually `@lid`).
    ///
    /// # Errors
    /// Stale handle, or WhatsApp refused.
    pub async fn blocklist(&self) -> Result<Vec<String>, Error> {
        let client = self.client()?;
        let list = client
            .blocking()
            .get_blocklist()
            .await
            .map_err(blocking_err)?;
        Ok(list.iter().map(|e| waha_id(&e.jid)).collect())
    }
}
