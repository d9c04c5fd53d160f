//! Contacts and the LID map of a session: what the `👤 Contacts` and LID routes read and
//! change, and what the session learns on its own from its traffic.
//!
//! Owns: nothing long-lived. Learning ([`learn_message`], [`learn_pair`], [`learn_groups`],
//! [`learn_user`]) is called by the inbox (messages, receipts, group notifications), the
//! group cache and the check-exists lookup as they see push names and LID ↔ phone-number
//! pairs; a failure to record is logged, never
//! surfaced (the message or group itself is what matters). The operations on
//! [`SessionManager`] serve `api/contacts.rs` and `api/lids.rs`: reads answer from the
//! session's contact store; `about` asks WhatsApp; the profile picture is cached for
//! [`PICTURE_TTL_S`]; block/unblock go to WhatsApp first and the store follows only when
//! WhatsApp said yes. Never imports actix.

use super::{Result, SessionManager};
use crate::{
    engine::{self, messaging::InboundMessage},
    model::{
        contacts::{Contact, LidToPhoneNumber},
        groups::Group,
        session::MeInfo,
    },
    store::{ContactPatch, ContactQuery, ContactRecord, LidPair, SessionStore, Store},
};

/// How long a fetched profile picture is served from the store (WAHA: 24 h).
pub const PICTURE_TTL_S: i64 = 24 * 60 * 60;

fn contacts(store: &Store, session: &str) -> Result<SessionStore> {
    Ok(store.session(&store.session_name(session)?))
}

/// `(lid, pn)` from two WAHA ids in either order, when one is each.
fn pair_of(a: &str, b: &str) -> Option<LidPair> {
    let (lid, pn) = if a.ends_with("@lid") { (a, b) } else { (b, a) };
    (lid.ends_with("@lid") && pn.ends_with("@c.us")).then(|| LidPair {
        lid: lid.to_string(),
        pn: pn.to_string(),
    })
}

async fn record(store: &Store, session: &str, patches: &[ContactPatch], pairs: &[LidPair]) {
    let Ok(s) = contacts(store, session) else {
        return;
    };
    tracing::debug!(session, ?pairs, "learnt LID pairs");
    if let Err(e) = s.contacts().upsert_lids(pairs).await {
        tracing::warn!(session, error = %e, "could not record LID mappings");
    }
    if let Err(e) = s.contacts().merge(patches).await {
        tracing::warn!(session, error = %e, "could not record contacts");
    }
}

/// Records what a history sync (or any other bulk source) taught.
pub(crate) async fn learn(
    store: &Store,
    session: &str,
    patches: &[ContactPatch],
    pairs: &[LidPair],
) {
    record(store, session, patches, pairs).await;
}

/// A message teaches the sender's push name and, from its addressing, the sender's
/// LID ↔ phone-number pair. The push name goes to the phone-number id when it is known
/// (that is the id WAHA users list and address).
pub(crate) async fn learn_message(store: &Store, session: &str, m: &InboundMessage) {
    let pair = m
        .sender_alt
        .as_deref()
        .and_then(|alt| pair_of(&m.sender, alt));
    let mut patches = Vec::new();
    let is_user = m.sender.ends_with("@c.us") || m.sender.ends_with("@lid");
    if !m.from_me && is_user {
        let id = pair
            .as_ref()
            .map_or_else(|| m.sender.clone(), |p| p.pn.clone());
        patches.push(ContactPatch {
            id,
            pushname: Some(m.push_name.clone()).filter(|n| !n.trim().is_empty()),
            is_wa_contact: Some(true),
            ..ContactPatch::default()
        });
    }
    let pairs: Vec<LidPair> = pair.into_iter().collect();
    if !patches.is_empty() || !pairs.is_empty() {
        record(store, session, &patches, &pairs).await;
    }
}

/// Two ids of one user seen together (a receipt's sender and its `participant_pn`, a
/// group notification's member and its `phone_number`): recorded when one is a LID and
/// the other a phone number.
pub(crate) async fn learn_pair(store: &Store, session: &str, a: &str, b: &str) {
    if let Some(pair) = pair_of(a, b) {
        record(store, session, &[], &[pair]).await;
    }
}

/// Group participant lists name members by LID with their phone number.
pub(crate) async fn learn_groups(store: &Store, session: &str, groups: &[Group]) {
    let pairs: Vec<LidPair> = groups
        .iter()
        .flat_map(|g| g.participants.iter())
        .filter_map(|p| p.pn.as_deref().and_then(|pn| pair_of(&p.id, pn)))
        .collect();
    if !pairs.is_empty() {
        record(store, session, &[], &pairs).await;
    }
}

/// An existence / user-info answer: the user is (or is not) on WhatsApp, and its pair.
pub(crate) async fn learn_user(store: &Store, session: &str, u: &engine::contacts::UserInfo) {
    let pairs: Vec<LidPair> = match (&u.lid, &u.pn) {
        (Some(lid), Some(pn)) => pair_of(lid, pn).into_iter().collect(),
        _ => Vec::new(),
    };
    let id = u.pn.clone().unwrap_or_else(|| u.id.clone());
    let patch = ContactPatch {
        id,
        is_wa_contact: Some(u.exists),
        ..ContactPatch::default()
    };
    // A number that is not on WhatsApp is not made a contact by asking about it.
    let patches: Vec<ContactPatch> = if u.exists { vec![patch] } else { Vec::new() };
    record(store, session, &patches, &pairs).await;
}

/// The WAHA contact object of a stored contact.
fn contact(r: &ContactRecord, me: Option<&MeInfo>) -> Contact {
    let number = r.id.split('@').next().unwrap_or_default().to_string();
    let is_me = me.is_some_and(|m| m.id == r.id || m.lid.as_deref() == Some(&r.id));
    Contact {
        id: r.id.clone(),
        number,
        short_name: r
            .name
            .as_deref()
            .and_then(|n| n.split_whitespace().next())
            .map(str::to_string),
        name: r.name.clone(),
        pushname: r.pushname.clone(),
        is_me,
        is_group: false,
        is_wa_contact: r.is_wa_contact,
        is_my_contact: r.name.is_some(),
        is_blocked: r.is_blocked,
    }
}

/// A chat's name and picture as the contact store knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatFace {
    /// Saved name, else push name.
    pub name: Option<String>,
    /// Cached profile picture URL.
    pub picture: Option<String>,
}

impl SessionManager {
    async fn me_of(&self, session: &str) -> Option<MeInfo> {
        self.store().get_me(session).await.ok().flatten()
    }

    /// What the contact store knows to show for these chats (`/chats`, `/chats/overview`):
    /// a saved name, else the push name, and the profile picture URL last fetched (never
    /// fetched here: `GET /api/contacts/profile-picture` fills it). Groups and unknown
    /// chats are left out.
    ///
    /// # Errors
    /// The store's error.
    pub async fn chat_faces(
        &self,
        session: &str,
        ids: &[String],
    ) -> Result<std::collections::HashMap<String, ChatFace>> {
        let s = contacts(self.store(), session)?;
        let mut faces = std::collections::HashMap::new();
        for id in ids.iter().filter(|id| !id.ends_with("@g.us")) {
            if let Some(r) = s.contacts().get(id).await? {
                let face = ChatFace {
                    name: r.name.clone().or_else(|| r.pushname.clone()),
                    picture: r.picture_url.clone(),
                };
                faces.insert(id.clone(), face);
            }
        }
        Ok(faces)
    }

    /// A page of the session's contacts.
    ///
    /// # Errors
    /// The store's error.
    pub async fn list_contacts(&self, session: &str, q: &ContactQuery) -> Result<Vec<Contact>> {
        let rows = contacts(self.store(), session)?.contacts().list(q).await?;
        let me = self.me_of(session).await;
        Ok(rows.iter().map(|r| contact(r, me.as_ref())).collect())
    }

    /// One contact (`id` already normalized); a `@c.us` id also finds what was learnt
    /// under its LID, and the other way round. `None` when the session knows nothing of it.
    ///
    /// # Errors
    /// The store's error.
    pub async fn contact(&self, session: &str, id: &str) -> Result<Option<Contact>> {
        let s = contacts(self.store(), session)?;
        let mut found = s.contacts().get(id).await?;
        if found.is_none() {
            let other = if id.ends_with("@lid") {
                s.contacts().lid_by_lid(id).await?.map(|p| p.pn)
            } else {
                s.contacts().lid_by_pn(id).await?.map(|p| p.lid)
            };
            if let Some(other) = other {
                found = s.contacts().get(&other).await?;
            }
        }
        let me = self.me_of(session).await;
        Ok(found.map(|r| contact(&r, me.as_ref())))
    }

    /// Saves a name for a contact: on the account (WhatsApp's `contact` app-state
    /// mutation, so the phone's address book and every device get it), then in the
    /// session's contact store. A `@lid` id is kept in the store only (WhatsApp keys contact
    /// names by phone number).
    ///
    /// # Errors
    /// WhatsApp's refusal (nothing is stored then), the store's error.
    pub async fn save_contact_name(
        &self,
        engine: &engine::Session,
        id: &str,
        (full, first): (&str, &str),
    ) -> Result<()> {
        if !id.ends_with("@lid") {
            engine.save_contact(id, full, first).await?;
        }
        let session = engine.name();
        let name = full;
        contacts(self.store(), session)?
            .contacts()
            .merge(&[ContactPatch {
                id: id.to_string(),
                name: Some(name.to_string()),
                ..ContactPatch::default()
            }])
            .await?;
        Ok(())
    }

    /// The user's about text, asked of WhatsApp (what the answer teaches is recorded).
    ///
    /// # Errors
    /// WhatsApp's refusal.
    pub async fn contact_about(
        &self,
        engine: &engine::Session,
        id: &str,
    ) -> Result<Option<String>> {
        let info = engine.user_info(id, true).await?;
        learn_user(self.store(), engine.name(), &info).await;
        Ok(info.about)
    }

    /// Whether (and as what) a phone number is on WhatsApp; what the answer teaches is
    /// recorded. The chat id when it is.
    ///
    /// # Errors
    /// WhatsApp's refusal.
    pub async fn lookup_phone(
        &self,
        engine: &engine::Session,
        phone: &str,
    ) -> Result<Option<String>> {
        let info = engine.user_info(&format!("{phone}@c.us"), false).await?;
        learn_user(self.store(), engine.name(), &info).await;
        Ok(info.exists.then(|| info.pn.unwrap_or(info.id)))
    }

    /// The profile picture URL: from the store when fetched less than [`PICTURE_TTL_S`]
    /// ago (and `refresh` is false), else from WhatsApp (then stored).
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn contact_picture(
        &self,
        engine: &engine::Session,
        id: &str,
        refresh: bool,
    ) -> Result<Option<String>> {
        let s = contacts(self.store(), engine.name())?;
        let now = crate::clock::now_s();
        if !refresh
            && let Some(r) = s.contacts().get(id).await?
            && let Some(at) = r.picture_at
            && now - at < PICTURE_TTL_S
        {
            return Ok(r.picture_url);
        }
        let url = engine.profile_picture(id).await?;
        s.contacts()
            .merge(&[ContactPatch {
                id: id.to_string(),
                picture: Some((url.clone(), now)),
                ..ContactPatch::default()
            }])
            .await?;
        Ok(url)
    }

    /// Blocks or unblocks on WhatsApp, then records it.
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn set_blocked(
        &self,
        engine: &engine::Session,
        id: &str,
        blocked: bool,
    ) -> Result<()> {
        engine.set_blocked(id, blocked).await?;
        contacts(self.store(), engine.name())?
            .contacts()
            .merge(&[ContactPatch {
                id: id.to_string(),
                is_blocked: Some(blocked),
                ..ContactPatch::default()
            }])
            .await?;
        Ok(())
    }

    /// A page of LID ↔ phone-number pairs.
    ///
    /// # Errors
    /// The store's error.
    pub async fn list_lids(
        &self,
        session: &str,
        limit: Option<u32>,
        offset: u32,
    ) -> Result<Vec<LidToPhoneNumber>> {
        let pairs = contacts(self.store(), session)?
            .contacts()
            .list_lids(limit, offset)
            .await?;
        Ok(pairs
            .into_iter()
            .map(|p| LidToPhoneNumber {
                lid: Some(p.lid),
                pn: Some(p.pn),
            })
            .collect())
    }

    /// How many pairs are known.
    ///
    /// # Errors
    /// The store's error.
    pub async fn count_lids(&self, session: &str) -> Result<u64> {
        Ok(contacts(self.store(), session)?
            .contacts()
            .count_lids()
            .await?)
    }

    /// The phone number of a LID (`pn: null` when unknown).
    ///
    /// # Errors
    /// The store's error.
    pub async fn pn_of_lid(&self, session: &str, lid: &str) -> Result<LidToPhoneNumber> {
        let p = contacts(self.store(), session)?
            .contacts()
            .lid_by_lid(lid)
            .await?;
        Ok(LidToPhoneNumber {
            lid: Some(lid.to_string()),
            pn: p.map(|p| p.pn),
        })
    }

    /// The LID of a phone number (`lid: null` when unknown).
    ///
    /// # Errors
    /// The store's error.
    pub async fn lid_of_pn(&self, session: &str, pn: &str) -> Result<LidToPhoneNumber> {
        let p = contacts(self.store(), session)?
            .contacts()
            .lid_by_pn(pn)
            .await?;
        Ok(LidToPhoneNumber {
            lid: p.map(|p| p.lid),
            pn: Some(pn.to_string()),
        })
    }
}
