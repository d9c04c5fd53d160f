//! Groups through the engine: whatsapp-rust's `client.groups()` calls and its `w:gp2`
//! notifications, translated to and from wharf's own types ([`Group`], WAHA ids).
//!
//! Owns: one `async fn` per group operation on [`Session`] (create, info, participating,
//! leave, subject, description, picture, the five security settings, invite code,
//! join-info, join, participants add/remove/promote/demote, join requests), the mapping of
//! WhatsApp's refusals to [`Error::Refused`], and [`GroupChange`], what a group
//! notification means. Operations: called by the domain (`sessions::groups`) on the
//! caller's task for as long as the handle is live. Notifications: translated by
//! `engine::run`'s event handler, one per `Event::GroupUpdate` / group `PictureUpdate`.

use whatsapp_rust::{
    Jid,
    features::{
        GroupCreateOptions, GroupDescription, GroupError, GroupMetadata, GroupParticipantOptions,
        GroupSubject, JoinGroupResult, MemberAddMode, MemberShareHistoryMode,
        MembershipApprovalMode, MexError, ParticipantType, PreviousDescription,
    },
    prelude::*,
    request::IqError,
    wacore::stanza::groups::GroupNotificationAction,
};

use super::{
    Error, Session,
    messaging::{parse_chat, waha_id},
};
use crate::model::groups::{
    Group, GroupJoinRequest, GroupParticipant, ParticipantResult, add_mode, role, share_mode,
};

/// What a participants operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParticipantAction {
    /// Add members.
    Add,
    /// Remove members.
    Remove,
    /// Make members admins.
    Promote,
    /// Make admins plain members.
    Demote,
}

/// A security setting of a group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// Only admins send messages (`announce`).
    MessagesAdminOnly,
    /// Only admins edit the group info (`locked`).
    InfoAdminOnly,
    /// Only admins add members (`member_add_mode = admin_add`).
    MemberAddAdminOnly,
    /// Admins approve new members (`membership_approval_mode`).
    MembershipApproval,
    /// Only admins share history with new members (`member_share_history_mode`).
    ShareHistoryAdminOnly,
}

/// The outcome of joining by invite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Joined {
    /// The group.
    pub id: String,
    /// The group needs an admin's approval first.
    pub pending: bool,
}

/// What a group notification says (one per `w:gp2` child, or a group picture change).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupChange {
    /// The group.
    pub group: String,
    /// Who did it (WAHA id), when WhatsApp says.
    pub actor: Option<String>,
    /// Unix seconds.
    pub timestamp: i64,
    /// What changed.
    pub kind: ChangeKind,
}

/// The kinds of [`GroupChange`] wharf reports.
#[derive(Debug, Clone, PartialEq)]
pub enum ChangeKind {
    /// The group was created with us in it.
    Created,
    /// Members joined, left (or were removed), were promoted or demoted.
    Participants {
        /// Which.
        action: ParticipantAction,
        /// Who: `(id, pn)` as WAHA ids.
        members: Vec<(String, Option<String>)>,
    },
    /// New name.
    Subject(String),
    /// New description (`None` = removed).
    Description(Option<String>),
    /// `messages-admin-only` on/off.
    Announce(bool),
    /// `info-admin-only` on/off.
    Locked(bool),
    /// Membership approval on/off.
    MembershipApproval(bool),
    /// `member_add_mode` ([`add_mode`] value).
    MemberAddMode(String),
    /// The share-history mode changed (WhatsApp's notification does not say to what).
    ShareHistoryMode,
    /// The invite code was revoked.
    InviteRevoked,
    /// The group picture was set or removed.
    Picture {
        /// Removed rather than set.
        removed: bool,
    },
}

/// Maps whatsapp-rust's group errors: server refusals keep their code (403 not allowed,
/// 404 unknown group or code, 409 conflict), malformed requests are bad requests, the rest
/// is a failed call.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "GroupError, IqError and MexError are non_exhaustive; the rest is a failed call"
)]
fn group_err(e: GroupError) -> Error {
    match e {
        GroupError::Iq(IqError::ServerError { code, text, .. }) => Error::Refused { code, text },
        GroupError::DescriptionConflict => Error::Refused {
            code: 409,
            text: "conflict".into(),
        },
        GroupError::Mex(MexError::ExtensionError { code, message }) => Error::Refused {
            code: u16::try_from(code).unwrap_or(500),
            text: message,
        },
        GroupError::Mex(MexError::Request(IqError::ServerError { code, text, .. })) => {
            Error::Refused { code, text }
        }
        GroupError::InvalidRequest(text) => Error::BadRequest(text),
        other => {
            // A MEX refusal may only be visible in the error's text (`code=403`).
            let text = super::chain(&other);
            match mex_code(&text) {
                Some(code) => Error::Refused { code, text },
                None => Error::Send(text),
            }
        }
    }
}

/// `code=NNN` inside an error text.
fn mex_code(text: &str) -> Option<u16> {
    let rest = &text[text.find("code=")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok().filter(|c| (400..600).contains(c))
}

fn group_jid(id: &str) -> Result<Jid, Error> {
    parse_chat(id)
        .filter(|j| j.server == "g.us")
        .ok_or_else(|| Error::BadRequest(format!("{id:?} is not a group id")))
}

fn member_jids(ids: &[String]) -> Result<Vec<Jid>, Error> {
    ids.iter()
        .map(|id| {
            parse_chat(id)
                .filter(|j| j.server != "g.us")
                .ok_or_else(|| Error::BadRequest(format!("{id:?} is not a valid participant id")))
        })
        .collect()
}

fn role_of(t: ParticipantType) -> &'static str {
    match t {
        ParticipantType::Member => role::PARTICIPANT,
        ParticipantType::Admin => role::ADMIN,
        ParticipantType::SuperAdmin => role::SUPERADMIN,
    }
}

/// A group as wharf keeps it. `GroupMetadata` leaves the two modes `None` when WhatsApp
/// sent them as raw bytes; callers merge them from what they knew before.
fn snapshot(meta: &GroupMetadata) -> Group {
    Group {
        id: waha_id(&meta.id),
        subject: meta.subject.clone(),
        description: meta.description.clone().filter(|d| !d.is_empty()),
        owner: meta
            .creator_pn
            .as_ref()
            .or(meta.creator.as_ref())
            .map(waha_id),
        creation: meta.creation_time.and_then(|t| i64::try_from(t).ok()),
        announce: meta.is_announcement,
        locked: meta.is_locked,
        membership_approval: meta.membership_approval,
        member_add_mode: meta.member_add_mode.map(|m| {
            match m {
                MemberAddMode::AdminAdd => add_mode::ADMIN_ADD,
                MemberAddMode::AllMemberAdd => add_mode::ALL_MEMBER_ADD,
            }
            .to_string()
        }),
        member_share_history_mode: meta.member_share_history_mode.map(|m| {
            match m {
                MemberShareHistoryMode::AdminShare => share_mode::ADMIN_SHARE,
                MemberShareHistoryMode::AllMemberShare => share_mode::ALL_MEMBER_SHARE,
            }
            .to_string()
        }),
        invite: None,
        participants: meta
            .participants
            .iter()
            .map(|p| {
                let pn = p
                    .phone_number
                    .as_ref()
                    .map(waha_id)
                    .or_else(|| (p.jid.server == "s.whatsapp.net").then(|| waha_id(&p.jid)));
                GroupParticipant {
                    id: waha_id(&p.jid),
                    pn,
                    role: role_of(p.participant_type).to_string(),
                }
            })
            .collect(),
    }
}

fn results(r: Vec<whatsapp_rust::features::ParticipantChangeResponse>) -> Vec<ParticipantResult> {
    r.into_iter()
        .map(|p| ParticipantResult {
            id: waha_id(&p.jid),
            error: p.error,
        })
        .collect()
}

impl Session {
    /// Creates a group named `subject` with `participants` (WAHA ids); we are its creator.
    ///
    /// # Errors
    /// Stale handle, bad ids, or WhatsApp refused it.
    pub async fn create_group(
        &self,
        subject: &str,
        participants: &[String],
    ) -> Result<Group, Error> {
        let client = self.client()?;
        let mut options = GroupCreateOptions::new(subject.to_string());
        for jid in member_jids(participants)? {
            options = options.with_participant(GroupParticipantOptions::new(jid));
        }
        options.member_add_mode = Some(MemberAddMode::AllMemberAdd);
        let created = client
            .groups()
            .create_group(options)
            .await
            .map_err(group_err)?;
        let mut group = snapshot(&created.metadata);
        group.member_add_mode = Some(add_mode::ALL_MEMBER_ADD.into());
        Ok(group)
    }

    /// The group as WhatsApp knows it now (members only).
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it (404 unknown, 403 not a member).
    pub async fn group_info(&self, id: &str) -> Result<Group, Error> {
        let client = self.client()?;
        let jid = group_jid(id)?;
        let meta = client
            .groups()
            .get_metadata(&jid)
            .await
            .map_err(group_err)?;
        Ok(snapshot(&meta))
    }

    /// Every group we are in.
    ///
    /// # Errors
    /// Stale handle, or WhatsApp refused it.
    pub async fn participating_groups(&self) -> Result<Vec<Group>, Error> {
        let client = self.client()?;
        let all = client
            .groups()
            .get_participating()
            .await
            .map_err(group_err)?;
        Ok(all.values().map(snapshot).collect())
    }

    /// Leaves the group.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it.
    pub async fn leave_group(&self, id: &str) -> Result<(), Error> {
        let client = self.client()?;
        client
            .groups()
            .leave(group_jid(id)?)
            .await
            .map_err(group_err)
    }

    /// Renames the group.
    ///
    /// # Errors
    /// Stale handle, bad id or subject, or WhatsApp refused it.
    pub async fn set_group_subject(&self, id: &str, subject: &str) -> Result<(), Error> {
        let client = self.client()?;
        let subject = GroupSubject::new(subject).map_err(|e| Error::BadRequest(e.to_string()))?;
        client
            .groups()
            .set_subject(group_jid(id)?, subject)
            .await
            .map_err(group_err)
    }

    /// Sets the description (`""` removes it).
    ///
    /// # Errors
    /// Stale handle, bad id or text, or WhatsApp refused it.
    pub async fn set_group_description(&self, id: &str, description: &str) -> Result<(), Error> {
        let client = self.client()?;
        let description = if description.is_empty() {
            None
        } else {
            Some(GroupDescription::new(description).map_err(|e| Error::BadRequest(e.to_string()))?)
        };
        client
            .groups()
            .set_description(group_jid(id)?, description, PreviousDescription::Resolve)
            .await
            .map_err(group_err)
    }

    /// The group picture's URL, `None` when it has none.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it.
    pub async fn group_picture(&self, id: &str) -> Result<Option<String>, Error> {
        let client = self.client()?;
        let jid = group_jid(id)?;
        match client.contacts().get_profile_picture(&jid, false).await {
            Ok(p) => Ok(p.map(|p| p.url)),
            Err(whatsapp_rust::features::ContactError::Iq(IqError::ServerError {
                code,
                text,
                ..
            })) => Err(Error::Refused { code, text }),
            Err(e) => Err(Error::Send(e.to_string())),
        }
    }

    /// Sets the group picture (JPEG bytes).
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it.
    pub async fn set_group_picture(&self, id: &str, jpeg: Vec<u8>) -> Result<(), Error> {
        let client = self.client()?;
        client
            .groups()
            .set_profile_picture(group_jid(id)?, jpeg)
            .await
            .map(drop)
            .map_err(group_err)
    }

    /// Removes the group picture.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it.
    pub async fn delete_group_picture(&self, id: &str) -> Result<(), Error> {
        let client = self.client()?;
        client
            .groups()
            .remove_profile_picture(group_jid(id)?)
            .await
            .map(drop)
            .map_err(group_err)
    }

    /// Turns a security setting on (`admins_only = true`) or off.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it (403 when not an admin).
    pub async fn set_group_setting(
        &self,
        id: &str,
        setting: Setting,
        admins_only: bool,
    ) -> Result<(), Error> {
        let client = self.client()?;
        let jid = group_jid(id)?;
        let groups = client.groups();
        match setting {
            Setting::MessagesAdminOnly => groups.set_announce(jid, admins_only).await,
            Setting::InfoAdminOnly => groups.set_locked(jid, admins_only).await,
            Setting::MemberAddAdminOnly => {
                let mode = if admins_only {
                    MemberAddMode::AdminAdd
                } else {
                    MemberAddMode::AllMemberAdd
                };
                groups.set_member_add_mode(jid, mode).await
            }
            Setting::MembershipApproval => {
                let mode = if admins_only {
                    MembershipApprovalMode::On
                } else {
                    MembershipApprovalMode::Off
                };
                groups.set_membership_approval(jid, mode).await
            }
            Setting::ShareHistoryAdminOnly => {
                let mode = if admins_only {
                    MemberShareHistoryMode::AdminShare
                } else {
                    MemberShareHistoryMode::AllMemberShare
                };
                groups.set_member_share_history_mode(&jid, mode).await
            }
        }
        .map_err(group_err)
    }

    /// The invite URL (`https://chat.whatsapp.com/CODE`); `revoke` replaces the code first.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it (403 when not an admin).
    pub async fn group_invite(&self, id: &str, revoke: bool) -> Result<String, Error> {
        let client = self.client()?;
        client
            .groups()
            .get_invite_link(group_jid(id)?, revoke)
            .await
            .map_err(group_err)
    }

    /// The group an invite code (or URL) leads to, without joining.
    ///
    /// # Errors
    /// Stale handle, bad code, or WhatsApp refused it (404 unknown or revoked code).
    pub async fn group_join_info(&self, code: &str) -> Result<Group, Error> {
        let client = self.client()?;
        let meta = client
            .groups()
            .get_invite_info(code)
            .await
            .map_err(group_err)?;
        Ok(snapshot(&meta))
    }

    /// Joins by invite code (or URL).
    ///
    /// # Errors
    /// Stale handle, bad code, or WhatsApp refused it (404 unknown or revoked code).
    pub async fn join_group(&self, code: &str) -> Result<Joined, Error> {
        let client = self.client()?;
        match client
            .groups()
            .join_with_invite_code(code)
            .await
            .map_err(group_err)?
        {
            JoinGroupResult::Joined(jid) => Ok(Joined {
                id: waha_id(&jid),
                pending: false,
            }),
            JoinGroupResult::PendingApproval(jid) => Ok(Joined {
                id: waha_id(&jid),
                pending: true,
            }),
        }
    }

    /// Adds, removes, promotes or demotes members; one result per member.
    ///
    /// # Errors
    /// Stale handle, bad ids, or WhatsApp refused the whole request (403 not an admin).
    pub async fn change_participants(
        &self,
        id: &str,
        action: ParticipantAction,
        members: &[String],
    ) -> Result<Vec<ParticipantResult>, Error> {
        let client = self.client()?;
        let jid = group_jid(id)?;
        let members = member_jids(members)?;
        let groups = client.groups();
        let r = match action {
            ParticipantAction::Add => groups.add_participants(jid, &members).await,
            ParticipantAction::Remove => groups.remove_participants(jid, &members).await,
            ParticipantAction::Promote => groups.promote_participants(jid, &members).await,
            ParticipantAction::Demote => groups.demote_participants(jid, &members).await,
        };
        r.map(results).map_err(group_err)
    }

    /// Pending requests to join.
    ///
    /// # Errors
    /// Stale handle, bad id, or WhatsApp refused it (403 when not an admin).
    pub async fn group_join_requests(&self, id: &str) -> Result<Vec<GroupJoinRequest>, Error> {
        let client = self.client()?;
        let r = client
            .groups()
            .get_membership_requests(group_jid(id)?)
            .await
            .map_err(group_err)?;
        Ok(r.into_iter()
            .map(|m| {
                let requester = waha_id(&m.jid);
                GroupJoinRequest {
                    requester_pn: (m.jid.server == "s.whatsapp.net").then(|| requester.clone()),
                    added_by_id: requester.clone(),
                    requester_id: requester,
                    // wacore reports no community parent or method for these requests; the
                    // requests WhatsApp lists to admins of a plain group come from its link.
                    parent_group_id: String::new(),
                    request_method: "invite_link".into(),
                    timestamp: m
                        .request_time
                        .and_then(|t| i64::try_from(t).ok())
                        .unwrap_or_default(),
                }
            })
            .collect())
    }

    /// Approves (`approve = true`) or rejects requests to join.
    ///
    /// # Errors
    /// Stale handle, bad ids, or WhatsApp refused it (403 when not an admin).
    pub async fn answer_join_requests(
        &self,
        id: &str,
        members: &[String],
        approve: bool,
    ) -> Result<Vec<ParticipantResult>, Error> {
        let client = self.client()?;
        let jid = group_jid(id)?;
        let members = member_jids(members)?;
        let groups = client.groups();
        let r = if approve {
            groups.approve_membership_requests(jid, &members).await
        } else {
            groups.reject_membership_requests(jid, &members).await
        };
        r.map(results).map_err(group_err)
    }
}

fn members_of(
    participants: &[whatsapp_rust::wacore::stanza::groups::GroupParticipantInfo],
) -> Vec<(String, Option<String>)> {
    participants
        .iter()
        .map(|p| {
            let pn = p
                .phone_number
                .as_ref()
                .map(waha_id)
                .or_else(|| (p.jid.server == "s.whatsapp.net").then(|| waha_id(&p.jid)));
            (waha_id(&p.jid), pn)
        })
        .collect()
}

/// The change an `Event::GroupUpdate` / group `Event::PictureUpdate` reports, when it is
/// one wharf publishes.
#[expect(
    clippy::wildcard_enum_match_arm,
    reason = "Event and GroupNotificationAction are non_exhaustive; only WAHA's group events map"
)]
pub fn change(event: &Event) -> Option<GroupChange> {
    match event {
        Event::GroupUpdate(u) => {
            let kind = match &u.action {
                GroupNotificationAction::Create { .. } => ChangeKind::Created,
                GroupNotificationAction::Add { participants, .. } => ChangeKind::Participants {
                    action: ParticipantAction::Add,
                    members: members_of(participants),
                },
                GroupNotificationAction::Remove { participants, .. } => ChangeKind::Participants {
                    action: ParticipantAction::Remove,
                    members: members_of(participants),
                },
                GroupNotificationAction::Promote { participants } => ChangeKind::Participants {
                    action: ParticipantAction::Promote,
                    members: members_of(participants),
                },
                GroupNotificationAction::Demote { participants } => ChangeKind::Participants {
                    action: ParticipantAction::Demote,
                    members: members_of(participants),
                },
                GroupNotificationAction::Subject { subject, .. } => {
                    ChangeKind::Subject(subject.clone())
                }
                GroupNotificationAction::Description { description, .. } => {
                    ChangeKind::Description(description.clone().filter(|d| !d.is_empty()))
                }
                GroupNotificationAction::Announce => ChangeKind::Announce(true),
                GroupNotificationAction::NotAnnounce => ChangeKind::Announce(false),
                GroupNotificationAction::Locked { .. } => ChangeKind::Locked(true),
                GroupNotificationAction::Unlocked => ChangeKind::Locked(false),
                GroupNotificationAction::MembershipApprovalMode { enabled } => {
                    ChangeKind::MembershipApproval(*enabled)
                }
                GroupNotificationAction::MemberAddMode { mode } => {
                    ChangeKind::MemberAddMode(mode.clone())
                }
                GroupNotificationAction::RevokeInvite => ChangeKind::InviteRevoked,
                GroupNotificationAction::Unknown { tag }
                    if tag == "member_share_group_history_mode" =>
                {
                    ChangeKind::ShareHistoryMode
                }
                _ => return None,
            };
            Some(GroupChange {
                group: waha_id(&u.group_jid),
                actor: u
                    .participant_pn
                    .as_ref()
                    .or(u.participant.as_ref())
                    .map(waha_id),
                timestamp: u.timestamp.timestamp(),
                kind,
            })
        }
        Event::PictureUpdate(p) if p.jid.server == "g.us" => Some(GroupChange {
            group: waha_id(&p.jid),
            actor: p.author.as_ref().map(waha_id),
            timestamp: p.timestamp.timestamp(),
            kind: ChangeKind::Picture { removed: p.removed },
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mex_codes() {
        assert_eq!(
            mex_code("MEX error: code=403, message='forbidden'"),
            Some(403)
        );
        assert_eq!(mex_code("no code"), None);
        assert_eq!(mex_code("code=12"), None);
    }
}
