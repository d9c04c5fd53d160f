//! Channels (WhatsApp newsletters) through the engine: create, read, list the followed
//! ones, follow, unfollow, mute, unmute and delete, via whatsapp-rust's
//! `client.newsletter()` and one raw MEX mutation (delete, which the feature API lacks).
//!
//! Owns: the translation of `NewsletterMetadata` into plain [`ChannelInfo`] and of
//! newsletter errors into [`Error`]s (a MEX error code is WhatsApp's HTTP-like code, so
//! 403/404 stay 4xx). Called by `api/channels.rs` with the engine handle of the WORKING
//! gate, on the caller's task; holds nothing between calls.

use std::sync::Arc;

use whatsapp_rust::{
    Jid, MexError, MexRequest, NewsletterError, NewsletterMetadata, NewsletterRole,
    NewsletterVerification, prelude::*,
};

use super::{Error, Session};

/// One post of a channel (`GET …/channels/{id}/messages/preview`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelPost {
    /// The wire message id.
    pub wa_id: String,
    /// Unix seconds.
    pub timestamp: i64,
    /// Posted by this account.
    pub from_me: bool,
    /// Text or caption.
    pub body: String,
    /// Carries media.
    pub has_media: bool,
    /// Reaction counts by emoji.
    pub reactions: Vec<(String, u64)>,
}

/// A channel as wharf reports it (WAHA's `Channel` before formatting).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelInfo {
    /// `123@newsletter`.
    pub id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Invite code (the part after `https://www.whatsapp.com/channel/`).
    pub invite: Option<String>,
    /// Picture URL.
    pub picture: Option<String>,
    /// Preview URL.
    pub preview: Option<String>,
    /// `OWNER`, `ADMIN`, `SUBSCRIBER` or `GUEST`.
    pub role: &'static str,
    /// Verified badge.
    pub verified: bool,
    /// Followers.
    pub subscribers: u64,
}

fn info(m: NewsletterMetadata) -> ChannelInfo {
    ChannelInfo {
        id: m.jid.to_string(),
        name: m.name,
        description: m.description,
        invite: m.invite_code,
        picture: m.picture_url,
        preview: m.preview_url,
        role: match m.role {
            Some(NewsletterRole::Owner) => "OWNER",
            Some(NewsletterRole::Admin) => "ADMIN",
            Some(NewsletterRole::Subscriber) => "SUBSCRIBER",
            _ => "GUEST",
        },
        verified: m.verification == NewsletterVerification::Verified,
        subscribers: m.subscriber_count,
    }
}

/// A MEX refusal keeps WhatsApp's code (403 not the owner, 404 unknown channel).
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "MexError is non_exhaustive; every other kind carries its code in its text"
)]
pub(super) fn mex_err(e: MexError) -> Error {
    match e {
        MexError::ExtensionError { code, message } => Error::Refused {
            code: u16::try_from(code).unwrap_or(502),
            text: message,
        },
        // A GraphQL error comes back through the IQ layer as text:
        // "MEX fatal error (query=…, code=403): forbidden".
        other => {
            let text = format!("{other:?}");
            let code = text
                .split("code=")
                .nth(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(char::is_ascii_digit)
                        .collect::<String>()
                })
                .and_then(|digits| digits.parse::<u16>().ok());
            match code {
                Some(code) => Error::Refused { code, text },
                None => Error::Send(other.to_string()),
            }
        }
    }
}

/// A newsletter error; an empty answer for a channel means it does not exist (404).
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "transport kinds all mean the request did not complete"
)]
pub(super) fn err(e: NewsletterError) -> Error {
    match e {
        NewsletterError::Mex(m) => mex_err(m),
        NewsletterError::InvalidRequest(text) => Error::Refused { code: 404, text },
        other => Error::Send(other.to_string()),
    }
}

/// `123@newsletter` → its `Jid` (`400` otherwise).
pub fn newsletter_jid(id: &str) -> Result<Jid, Error> {
    id.parse::<Jid>()
        .ok()
        .filter(|j| j.server == "newsletter" && !j.user.is_empty())
        .ok_or_else(|| Error::BadRequest(format!("id {id:?} is not a channel id (123@newsletter)")))
}

impl Session {
    fn newsletter_client(&self) -> Result<&Arc<Client>, Error> {
        self.client()
    }

    /// Creates a channel owned by this account.
    ///
    /// # Errors
    /// Stale handle, WhatsApp refused it.
    pub async fn channel_create(
        &self,
        name: &str,
        description: Option<&str>,
    ) -> Result<ChannelInfo, Error> {
        let client = self.newsletter_client()?;
        client
            .newsletter()
            .create(name, description)
            .await
            .map(info)
            .map_err(err)
    }

    /// Reads a channel (with this account's role in it) by its `…@newsletter` id, or by
    /// its invite code or link (`https://www.whatsapp.com/channel/<code>`), as WAHA does.
    ///
    /// # Errors
    /// Stale handle, a bad id, unknown channel (404).
    pub async fn channel_get(&self, id: &str) -> Result<ChannelInfo, Error> {
        let client = self.newsletter_client()?;
        if id.contains('@') {
            let jid = newsletter_jid(id)?;
            return client
                .newsletter()
                .get_metadata(&jid)
                .await
                .map(info)
                .map_err(err);
        }
        let code = id
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default();
        if code.is_empty() {
            return Err(Error::BadRequest(format!(
                "id {id:?} is neither a channel id (123@newsletter) nor an invite code"
            )));
        }
        client
            .newsletter()
            .get_metadata_by_invite(code)
            .await
            .map(info)
            .map_err(err)
    }

    /// The channels this account owns or follows.
    ///
    /// # Errors
    /// Stale handle, WhatsApp refused it.
    pub async fn channel_list(&self) -> Result<Vec<ChannelInfo>, Error> {
        let client = self.newsletter_client()?;
        client
            .newsletter()
            .list_subscribed()
            .await
            .map(|v| v.into_iter().map(info).collect())
            .map_err(err)
    }

    /// Follows (`true`) or unfollows a channel.
    ///
    /// # Errors
    /// Stale handle, a bad id, unknown channel (404).
    pub async fn channel_follow(&self, id: &str, follow: bool) -> Result<(), Error> {
        let jid = newsletter_jid(id)?;
        let client = self.newsletter_client()?;
        let n = client.newsletter();
        if follow {
            n.join(&jid).await.map(|_| ()).map_err(err)
        } else {
            n.leave(&jid).await.map_err(err)
        }
    }

    /// Mutes (`true`) or unmutes a followed channel.
    ///
    /// # Errors
    /// Stale handle, a bad id, unknown or not followed channel.
    pub async fn channel_mute(&self, id: &str, muted: bool) -> Result<(), Error> {
        let jid = newsletter_jid(id)?;
        let client = self.newsletter_client()?;
        client
            .newsletter()
            .set_follower_mute(&jid, muted)
            .await
            .map_err(err)
    }

    /// The latest `limit` posts of a channel (by id, invite code or link), oldest first.
    ///
    /// # Errors
    /// Stale handle, a bad id, unknown channel (404).
    pub async fn channel_posts(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<(String, Vec<ChannelPost>), Error> {
        let jid: Jid = if id.contains('@') {
            newsletter_jid(id)?
        } else {
            self.channel_get(id)
                .await?
                .id
                .parse()
                .map_err(|_| Error::BadRequest(format!("id {id:?}")))?
        };
        let client = self.newsletter_client()?;
        let posts = client
            .newsletter()
            .get_messages(jid.clone(), limit, None)
            .await
            .map_err(err)?;
        let posts = posts
            .into_iter()
            .map(|p| {
                let message = p.message.unwrap_or_default();
                let media = super::media::inbound_media(&Arc::new(message.clone()));
                let body = message
                    .text_content()
                    .map(str::to_string)
                    .or_else(|| media.as_ref().and_then(|(_, c)| c.clone()))
                    .unwrap_or_default();
                ChannelPost {
                    wa_id: p.message_id,
                    timestamp: i64::try_from(p.timestamp).unwrap_or_default(),
                    from_me: p.is_sender,
                    body,
                    has_media: media.is_some(),
                    reactions: p.reactions.into_iter().map(|r| (r.code, r.count)).collect(),
                }
            })
            .collect();
        Ok((jid.to_string(), posts))
    }

    /// Deletes a channel this account owns.
    ///
    /// # Errors
    /// Stale handle, a bad id, unknown channel (404), not the owner (403).
    pub async fn channel_delete(&self, id: &str) -> Result<(), Error> {
        use whatsapp_rust::wacore::iq::mex_operations::delete_newsletter as op;
        let jid = newsletter_jid(id)?;
        let client = self.newsletter_client()?;
        let request = MexRequest::new(
            op::NAME,
            op::DOC_ID,
            op::Variables {
                newsletter_id: Some(jid.to_string()),
            },
        );
        client.mex().mutate(request).await.map_err(mex_err)?;
        Ok(())
    }
}
