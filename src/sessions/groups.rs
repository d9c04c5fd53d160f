//! Groups orchestration: one engine call plus what keeps the session's group cache true —
//! for the `👥 Groups` routes, the inbox (group notifications) and the runtime (refresh
//! on pairing).
//!
//! Owns: nothing long-lived. Every operation borrows a live [`engine::Session`] (from the
//! WORKING gate) for one call: the engine asks WhatsApp, and only when WhatsApp said yes is
//! the cache touched (the group re-read from WhatsApp and replaced whole, or removed), so a
//! refused or failed operation leaves the cache as it was. Reads (`GET /groups`, count,
//! one group, settings) answer from the cache; a group missing from it is read from
//! WhatsApp once and cached. Called by `api/groups.rs`, `sessions::inbox` and
//! `sessions::runtime`; never imports actix.

use std::{
    collections::HashMap,
    sync::{Arc, LazyLock, Mutex},
};

use base64::Engine as _;

use super::{Error, Result, SessionManager};
use crate::{
    engine::{
        self,
        groups::{ParticipantAction, Setting},
    },
    model::{
        groups::{Group, GroupJoinRequest, ParticipantResult, PictureFile, add_mode, share_mode},
        send::FileData,
    },
    store::{GroupQuery, SessionStore, Store},
};

/// Largest group picture wharf downloads from a URL (WhatsApp's own limit is far lower).
const MAX_PICTURE_BYTES: usize = 5 * 1024 * 1024;

/// One lock per session around every read-merge-write of its group cache. An API change
/// and the notification it causes re-read the same group at once; without the lock the
/// slower one could write back a merge made from the cache as it was before the other's
/// write (losing e.g. the share-history mode the API call just set). The WhatsApp query
/// itself runs outside the lock. Process-wide because both the API (through the manager)
/// and the session runtime (through its inbox) write; one small entry per session name.
static CACHE_LOCKS: LazyLock<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
    LazyLock::new(Mutex::default);

/// Holds `session`'s cache lock until the guard drops.
async fn lock(session: &str) -> tokio::sync::OwnedMutexGuard<()> {
    let lock = {
        let mut locks = CACHE_LOCKS
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        Arc::clone(locks.entry(session.to_string()).or_default())
    };
    lock.lock_owned().await
}

/// The cache of `session`.
fn cache(store: &Store, session: &str) -> Result<SessionStore> {
    Ok(store.session(&store.session_name(session)?))
}

/// Reads `id` from WhatsApp, keeps what the cache knew that the query does not tell,
/// applies `patch` (what the caller knows changed) and replaces the cached group.
///
/// # Errors
/// WhatsApp's refusal (the cache is then untouched), the store's error.
pub(crate) async fn refetch(
    store: &Store,
    engine: &engine::Session,
    id: &str,
    patch: impl FnOnce(&mut Group),
) -> Result<Group> {
    let fresh = engine.group_info(id).await?;
    let groups = cache(store, engine.name())?;
    let _guard = lock(engine.name()).await;
    let cached = groups.groups().get(id).await?;
    let mut group = fresh.merged_with(cached.as_ref());
    patch(&mut group);
    groups.groups().upsert(std::slice::from_ref(&group)).await?;
    super::contacts::learn_groups(store, engine.name(), std::slice::from_ref(&group)).await;
    Ok(group)
}

/// Replaces the cache with every group WhatsApp lists for the session; returns how many.
///
/// # Errors
/// WhatsApp's refusal (the cache is then untouched), the store's error.
///
/// # Cancel safety
/// Dropped while asking WhatsApp: nothing was written. Dropped while writing: SQLite
/// finishes its one transaction anyway; MongoDB keeps the groups upserted so far (each
/// whole) and any it did not remove yet — a superset of the truth until the next refresh,
/// never a half-written group.
pub(crate) async fn refresh(store: &Store, engine: &engine::Session) -> Result<usize> {
    let fresh = engine.participating_groups().await?;
    let groups = cache(store, engine.name())?;
    let _guard = lock(engine.name()).await;
    if fresh.is_empty() && groups.groups().count().await? == 0 {
        // The common case of a freshly paired account: nothing to write (and, on MongoDB,
        // no collection or index to create for it).
        return Ok(0);
    }
    let mut merged = Vec::with_capacity(fresh.len());
    for g in fresh {
        let cached = groups.groups().get(&g.id).await?;
        merged.push(g.merged_with(cached.as_ref()));
    }
    groups.groups().replace(&merged).await?;
    super::contacts::learn_groups(store, engine.name(), &merged).await;
    Ok(merged.len())
}

/// Removes `id` from the cache of `session` (we left or were removed).
///
/// # Errors
/// The store's error.
pub(crate) async fn forget(store: &Store, session: &str, id: &str) -> Result<()> {
    let _guard = lock(session).await;
    Ok(cache(store, session)?.groups().delete(id).await.map(drop)?)
}

/// The cached group, for the inbox's fallbacks.
///
/// # Errors
/// The store's error.
pub(crate) async fn cached(store: &Store, session: &str, id: &str) -> Result<Option<Group>> {
    Ok(cache(store, session)?.groups().get(id).await?)
}

/// After a change WhatsApp accepted: the cache follows, but a failure to re-read is only
/// logged (the change itself happened; the notification will bring the group again).
async fn follow(store: &Store, engine: &engine::Session, id: &str, patch: impl FnOnce(&mut Group)) {
    if let Err(e) = refetch(store, engine, id, patch).await {
        tracing::warn!(session = engine.name(), group = id, error = %e, "could not re-read the group after a change");
    }
}

impl SessionManager {
    /// A page of the cached groups.
    ///
    /// # Errors
    /// The store's error.
    pub async fn list_groups(&self, session: &str, q: &GroupQuery) -> Result<Vec<Group>> {
        cache(self.store(), session)?
            .groups()
            .list(q)
            .await
            .map_err(Into::into)
    }

    /// How many groups are cached.
    ///
    /// # Errors
    /// The store's error.
    pub async fn count_groups(&self, session: &str) -> Result<u64> {
        cache(self.store(), session)?
            .groups()
            .count()
            .await
            .map_err(Into::into)
    }

    /// Re-reads every group from WhatsApp into the cache; returns how many.
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn refresh_groups(&self, engine: &engine::Session) -> Result<usize> {
        refresh(self.store(), engine).await
    }

    /// One group: from the cache, else from WhatsApp (then cached).
    ///
    /// # Errors
    /// WhatsApp's refusal (404 unknown, 403 not a member), the store's error.
    pub async fn group(&self, engine: &engine::Session, id: &str) -> Result<Group> {
        if let Some(g) = cached(self.store(), engine.name(), id).await? {
            return Ok(g);
        }
        refetch(self.store(), engine, id, |_| {}).await
    }

    /// Creates a group (we are its superadmin) and caches it.
    ///
    /// # Errors
    /// Bad ids, WhatsApp's refusal, the store's error.
    pub async fn create_group(
        &self,
        engine: &engine::Session,
        subject: &str,
        participants: &[String],
    ) -> Result<Group> {
        let group = engine.create_group(subject, participants).await?;
        let _guard = lock(engine.name()).await;
        cache(self.store(), engine.name())?
            .groups()
            .upsert(std::slice::from_ref(&group))
            .await?;
        super::contacts::learn_groups(self.store(), engine.name(), std::slice::from_ref(&group))
            .await;
        Ok(group)
    }

    /// Leaves a group and forgets it.
    ///
    /// # Errors
    /// WhatsApp's refusal, the store's error.
    pub async fn leave_group(&self, engine: &engine::Session, id: &str) -> Result<()> {
        engine.leave_group(id).await?;
        forget(self.store(), engine.name(), id).await
    }

    /// "Deletes" a group the way WhatsApp's apps do (plain groups cannot be deleted for
    /// everyone): removes every other member, then leaves — the group ends with its last
    /// member. Needs admin rights.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when not an admin), the store's error.
    pub async fn delete_group(&self, engine: &engine::Session, id: &str) -> Result<()> {
        let group = engine.group_info(id).await?;
        let me = self.live_state(engine.name()).and_then(|s| s.me);
        let mine: Vec<String> = me
            .map(|m| [Some(m.id), m.lid].into_iter().flatten().collect())
            .unwrap_or_default();
        let others: Vec<String> = group
            .participants
            .iter()
            .filter(|p| !mine.contains(&p.id) && !p.pn.as_ref().is_some_and(|pn| mine.contains(pn)))
            .map(|p| p.id.clone())
            .collect();
        if !others.is_empty() {
            engine
                .change_participants(id, ParticipantAction::Remove, &others)
                .await?;
        }
        self.leave_group(engine, id).await
    }

    /// Renames a group.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when locked and not an admin).
    pub async fn set_group_subject(
        &self,
        engine: &engine::Session,
        id: &str,
        subject: &str,
    ) -> Result<()> {
        engine.set_group_subject(id, subject).await?;
        follow(self.store(), engine, id, |_| {}).await;
        Ok(())
    }

    /// Sets (or with `""` removes) a group's description.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when locked and not an admin).
    pub async fn set_group_description(
        &self,
        engine: &engine::Session,
        id: &str,
        description: &str,
    ) -> Result<()> {
        engine.set_group_description(id, description).await?;
        follow(self.store(), engine, id, |_| {}).await;
        Ok(())
    }

    /// The group picture's URL.
    ///
    /// # Errors
    /// WhatsApp's refusal.
    pub async fn group_picture(
        &self,
        engine: &engine::Session,
        id: &str,
    ) -> Result<Option<String>> {
        Ok(engine.group_picture(id).await?)
    }

    /// Sets the group picture from a `BinaryFile` (base64) or a `RemoteFile` (URL).
    ///
    /// # Errors
    /// An undecodable or unreachable file, WhatsApp's refusal.
    pub async fn set_group_picture(
        &self,
        engine: &engine::Session,
        id: &str,
        file: PictureFile,
    ) -> Result<()> {
        let bytes = picture_bytes(file).await?;
        engine.set_group_picture(id, bytes).await?;
        Ok(())
    }

    /// Removes the group picture.
    ///
    /// # Errors
    /// WhatsApp's refusal.
    pub async fn delete_group_picture(&self, engine: &engine::Session, id: &str) -> Result<()> {
        Ok(engine.delete_group_picture(id).await?)
    }

    /// A security setting, from the cached group.
    ///
    /// # Errors
    /// As [`SessionManager::group`].
    pub async fn group_setting(
        &self,
        engine: &engine::Session,
        id: &str,
        setting: Setting,
    ) -> Result<bool> {
        let g = self.group(engine, id).await?;
        Ok(match setting {
            Setting::MessagesAdminOnly => g.announce,
            Setting::InfoAdminOnly => g.locked,
            Setting::MembershipApproval => g.membership_approval,
            Setting::MemberAddAdminOnly => {
                g.member_add_mode.as_deref() == Some(add_mode::ADMIN_ADD)
            }
            Setting::ShareHistoryAdminOnly => {
                g.member_share_history_mode.as_deref() == Some(share_mode::ADMIN_SHARE)
            }
        })
    }

    /// Turns a security setting on or off.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when not an admin).
    pub async fn set_group_setting(
        &self,
        engine: &engine::Session,
        id: &str,
        setting: Setting,
        admins_only: bool,
    ) -> Result<()> {
        engine.set_group_setting(id, setting, admins_only).await?;
        follow(self.store(), engine, id, |g| {
            apply_setting(g, setting, admins_only)
        })
        .await;
        Ok(())
    }

    /// The invite URL; `revoke` replaces the code first.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when not an admin).
    pub async fn group_invite(
        &self,
        engine: &engine::Session,
        id: &str,
        revoke: bool,
    ) -> Result<String> {
        let url = engine.group_invite(id, revoke).await?;
        let groups = cache(self.store(), engine.name())?;
        let _guard = lock(engine.name()).await;
        if let Some(mut g) = groups.groups().get(id).await? {
            g.invite = Some(url.clone());
            groups.groups().upsert(std::slice::from_ref(&g)).await?;
        }
        Ok(url)
    }

    /// The group behind an invite code, without joining.
    ///
    /// # Errors
    /// WhatsApp's refusal (404 unknown or revoked code).
    pub async fn group_join_info(&self, engine: &engine::Session, code: &str) -> Result<Group> {
        Ok(engine.group_join_info(code).await?)
    }

    /// Joins by invite code; the group is cached unless it waits for an admin's approval.
    ///
    /// # Errors
    /// WhatsApp's refusal (404 unknown or revoked code).
    pub async fn join_group(&self, engine: &engine::Session, code: &str) -> Result<String> {
        let joined = engine.join_group(code).await?;
        if !joined.pending {
            follow(self.store(), engine, &joined.id, |_| {}).await;
        }
        Ok(joined.id)
    }

    /// Adds, removes, promotes or demotes members; one result per member.
    ///
    /// # Errors
    /// WhatsApp's refusal of the whole request (403 when not an admin).
    pub async fn change_participants(
        &self,
        engine: &engine::Session,
        id: &str,
        action: ParticipantAction,
        members: &[String],
    ) -> Result<Vec<ParticipantResult>> {
        let results = engine.change_participants(id, action, members).await?;
        follow(self.store(), engine, id, |_| {}).await;
        Ok(results)
    }

    /// Pending requests to join.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when not an admin).
    pub async fn group_join_requests(
        &self,
        engine: &engine::Session,
        id: &str,
    ) -> Result<Vec<GroupJoinRequest>> {
        Ok(engine.group_join_requests(id).await?)
    }

    /// Approves or rejects requests to join.
    ///
    /// # Errors
    /// WhatsApp's refusal (403 when not an admin).
    pub async fn answer_join_requests(
        &self,
        engine: &engine::Session,
        id: &str,
        members: &[String],
        approve: bool,
    ) -> Result<Vec<ParticipantResult>> {
        let results = engine.answer_join_requests(id, members, approve).await?;
        if approve {
            follow(self.store(), engine, id, |_| {}).await;
        }
        Ok(results)
    }
}

/// What a setting change means for the cached group (WhatsApp's group query does not
/// report the two modes, so the cache records what was set).
pub(crate) fn apply_setting(g: &mut Group, setting: Setting, admins_only: bool) {
    match setting {
        Setting::MessagesAdminOnly => g.announce = admins_only,
        Setting::InfoAdminOnly => g.locked = admins_only,
        Setting::MembershipApproval => g.membership_approval = admins_only,
        Setting::MemberAddAdminOnly => {
            g.member_add_mode = Some(
                if admins_only {
                    add_mode::ADMIN_ADD
                } else {
                    add_mode::ALL_MEMBER_ADD
                }
                .into(),
            );
        }
        Setting::ShareHistoryAdminOnly => {
            g.member_share_history_mode = Some(
                if admins_only {
                    share_mode::ADMIN_SHARE
                } else {
                    share_mode::ALL_MEMBER_SHARE
                }
                .into(),
            );
        }
    }
}

fn bad(msg: impl Into<String>) -> Error {
    Error::Engine(engine::Error::BadRequest(msg.into()))
}

/// The bytes of a picture body: base64 `data`, else a download of `url`.
pub(crate) async fn picture_bytes(file: PictureFile) -> Result<Vec<u8>> {
    match file.data.filter(|d| !d.is_empty()) {
        Some(FileData::Base64(data)) => {
            return base64::engine::general_purpose::STANDARD
                .decode(data.trim())
                .map_err(|e| bad(format!("file.data must be base64: {e}")));
        }
        Some(FileData::Spooled(spooled)) => {
            if spooled.is_invalid() {
                return Err(bad("file.data must be base64"));
            }
            return tokio::fs::read(spooled.path())
                .await
                .map_err(|e| bad(format!("file.data could not be read back: {e}")));
        }
        None => {}
    }
    let Some(url) = file.url.filter(|u| !u.is_empty()) else {
        return Err(bad("file must have either data or url"));
    };
    let response = reqwest::get(&url)
        .await
        .and_then(reqwest::Response::error_for_status)
        .map_err(|e| bad(format!("file.url could not be downloaded: {e}")))?;
    let bytes = response
        .bytes()
        .await
        .map_err(|e| bad(format!("file.url could not be downloaded: {e}")))?;
    if bytes.len() > MAX_PICTURE_BYTES {
        return Err(bad("file is larger than 5 MB"));
    }
    Ok(bytes.to_vec())
}
