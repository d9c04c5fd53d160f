//! Poll votes and event responses through the engine: the keys of polls and event
//! messages seen on a connection ([`PollKey`]) and the decryption of the votes
//! ([`VoteRef`]) and RSVPs ([`EventResponseRef`]) sent to them.
//!
//! A vote (an RSVP) is encrypted with the poll's (event's) message secret, which only the
//! poll's (event's) own message carries. Owns: reading that secret (and the creator and option names) from a received
//! poll, the per-connection cache of them on [`Session`] (bounded; filled by `engine::run`
//! as polls arrive), and turning a vote's ciphertext back into option names. Called by
//! `messaging::inbound` (parsing), `engine::run` (cache, attach) and the session inbox
//! (decrypt). A vote on a poll this connection never saw (sent before wharf was linked,
//! or before a restart) cannot be opened: the inbox then emits `poll.vote.failed`.

use std::collections::HashMap;

use whatsapp_rust::{Jid, PollVoteCiphertext, waproto::whatsapp as wa};

use super::{Error, Session};

/// Polls remembered per connection; the oldest half is dropped when full.
const MAX_POLLS: usize = 4096;

/// What decrypting votes on one poll needs.
#[derive(Clone)]
pub struct PollKey {
    id: String,
    secret: Vec<u8>,
    creator: Jid,
    options: Vec<String>,
}

impl std::fmt::Debug for PollKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PollKey").field("id", &self.id).finish()
    }
}

impl PartialEq for PollKey {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl PollKey {
    /// The key of the poll `full` (its message secret), sent by `creator` with `options`.
    pub(super) fn of(
        id: &str,
        full: &wa::Message,
        creator: &Jid,
        options: &[String],
    ) -> Option<Self> {
        let secret = full
            .message_context_info
            .as_option()
            .and_then(|c| c.message_secret.clone())?;
        Some(Self {
            id: id.to_string(),
            secret,
            creator: creator.to_non_ad(),
            options: options.to_vec(),
        })
    }
}

/// An encrypted vote, decryptable through the connection it arrived on.
#[derive(Clone)]
pub struct VoteRef {
    poll_id: String,
    enc_payload: Vec<u8>,
    enc_iv: Vec<u8>,
    voter: Option<Jid>,
    session: Option<Session>,
}

impl std::fmt::Debug for VoteRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VoteRef")
            .field("poll_id", &self.poll_id)
            .finish()
    }
}

impl PartialEq for VoteRef {
    fn eq(&self, other: &Self) -> bool {
        self.poll_id == other.poll_id && self.enc_payload == other.enc_payload
    }
}

impl VoteRef {
    /// The vote of a `pollUpdateMessage`.
    pub(super) fn of(update: &wa::message::PollUpdateMessage) -> Option<(String, bool, Self)> {
        let key = update.poll_creation_message_key.as_option()?;
        let vote = update.vote.as_option()?;
        let poll_id = key.id.clone()?;
        Some((
            poll_id.clone(),
            key.from_me.unwrap_or(false),
            Self {
                poll_id,
                enc_payload: vote.enc_payload.clone().unwrap_or_default(),
                enc_iv: vote.enc_iv.clone().unwrap_or_default(),
                voter: None,
                session: None,
            },
        ))
    }

    pub(super) fn set_voter(&mut self, voter: &Jid) {
        self.voter = Some(voter.to_non_ad());
    }

    pub(super) fn attach(&mut self, session: &Session) {
        self.session = Some(session.clone());
    }

    /// The names of the options chosen (empty: the vote was withdrawn).
    ///
    /// # Errors
    /// The connection is gone, this connection never saw the poll, or the vote does not
    /// decrypt ([`Error::PollVote`]).
    pub async fn decrypt(&self) -> Result<Vec<String>, Error> {
        let session = self.session.as_ref().ok_or(Error::NotRunning)?;
        let client = session.client()?;
        let key = session
            .poll_key(&self.poll_id)
            .ok_or_else(|| Error::PollVote(format!("poll {} is unknown", self.poll_id)))?;
        let voter = self
            .voter
            .as_ref()
            .ok_or_else(|| Error::PollVote("the voter is unknown".into()))?;
        let hashes = client
            .polls()
            .decrypt_vote(
                PollVoteCiphertext {
                    enc_payload: &self.enc_payload,
                    enc_iv: &self.enc_iv,
                },
                &key.secret,
                &self.poll_id,
                &key.creator,
                voter,
            )
            .await
            .map_err(|e| Error::PollVote(e.to_string()))?;
        Ok(key
            .options
            .iter()
            .filter(|o| {
                let h = whatsapp_rust::wacore::poll::compute_option_hash(o);
                hashes.iter().any(|x| x.as_slice() == h)
            })
            .cloned()
            .collect())
    }
}

/// What an event response says.
#[derive(Debug, Clone, PartialEq)]
pub struct EventAnswer {
    /// `UNKNOWN`, `GOING`, `NOT_GOING` or `MAYBE`.
    pub response: String,
    /// When, ms.
    pub timestamp_ms: i64,
    /// Extra guests.
    pub extra_guest_count: i64,
}

/// An encrypted response to an event message.
#[derive(Clone)]
pub struct EventResponseRef {
    event_id: String,
    enc_payload: Vec<u8>,
    enc_iv: Vec<u8>,
    responder: Option<Jid>,
    session: Option<Session>,
}

impl std::fmt::Debug for EventResponseRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventResponseRef")
            .field("event_id", &self.event_id)
            .finish()
    }
}

impl PartialEq for EventResponseRef {
    fn eq(&self, other: &Self) -> bool {
        self.event_id == other.event_id && self.enc_payload == other.enc_payload
    }
}

impl EventResponseRef {
    /// The response of an `encEventResponseMessage`: (event id, its key's `fromMe`, ref).
    pub(super) fn of(enc: &wa::message::EncEventResponseMessage) -> Option<(String, bool, Self)> {
        let key = enc.event_creation_message_key.as_option()?;
        let event_id = key.id.clone()?;
        Some((
            event_id.clone(),
            key.from_me.unwrap_or(false),
            Self {
                event_id,
                enc_payload: enc.enc_payload.clone().unwrap_or_default(),
                enc_iv: enc.enc_iv.clone().unwrap_or_default(),
                responder: None,
                session: None,
            },
        ))
    }

    pub(super) fn set_responder(&mut self, responder: &Jid) {
        self.responder = Some(responder.to_non_ad());
    }

    pub(super) fn attach(&mut self, session: &Session) {
        self.session = Some(session.clone());
    }

    /// The decrypted answer.
    ///
    /// # Errors
    /// The connection is gone, this connection never saw the event, or the response does
    /// not decrypt ([`Error::PollVote`]).
    pub fn decrypt(&self) -> Result<EventAnswer, Error> {
        let session = self.session.as_ref().ok_or(Error::NotRunning)?;
        session.client()?;
        let key = session
            .poll_key(&self.event_id)
            .ok_or_else(|| Error::PollVote(format!("event {} is unknown", self.event_id)))?;
        let responder = self
            .responder
            .as_ref()
            .ok_or_else(|| Error::PollVote("the responder is unknown".into()))?;
        let answer = whatsapp_rust::wacore::event::decrypt_event_response_with_secret(
            &self.enc_payload,
            &self.enc_iv,
            &key.secret,
            &self.event_id,
            &key.creator.to_string(),
            &responder.to_string(),
        )
        .map_err(|e| Error::PollVote(e.to_string()))?;
        use wa::message::event_response_message::EventResponseType as T;
        let response = match answer.response {
            Some(T::GOING) => "GOING",
            Some(T::NOT_GOING) => "NOT_GOING",
            Some(T::MAYBE) => "MAYBE",
            Some(T::UNKNOWN) | None => "UNKNOWN",
        };
        Ok(EventAnswer {
            response: response.into(),
            timestamp_ms: answer.timestamp_ms.unwrap_or_default(),
            extra_guest_count: answer.extra_guest_count.map_or(0, i64::from),
        })
    }
}

impl Session {
    /// Remembers a poll's key for the votes that follow.
    pub(super) fn remember_poll(&self, key: PollKey) {
        let mut polls = self.inner.polls.lock().unwrap_or_else(|p| p.into_inner());
        if polls.len() >= MAX_POLLS {
            // Arbitrary half: a HashMap keeps no order, and an old poll's votes only
            // degrade to `poll.vote.failed`.
            let drop: Vec<String> = polls.keys().take(MAX_POLLS / 2).cloned().collect();
            for k in drop {
                polls.remove(&k);
            }
        }
        polls.insert(key.id.clone(), key);
    }

    fn poll_key(&self, id: &str) -> Option<PollKey> {
        let polls = self.inner.polls.lock().unwrap_or_else(|p| p.into_inner());
        polls.get(id).cloned()
    }
}

/// The cache, as [`super::SessionInner`] holds it.
pub(super) type PollCache = std::sync::Mutex<HashMap<String, PollKey>>;
