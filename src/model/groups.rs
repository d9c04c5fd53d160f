//! WAHA's `👥 Groups` vocabulary: request bodies, `GroupInfo` / `GroupParticipant` as WAHA
//! shows them (waha.md §4.6, the Groups schemas of `waha-openapi.json`), and [`Group`], the
//! one snapshot of a group that the engine reads from WhatsApp, the per-session group
//! cache stores and every Groups route and group event is rendered from.
//!
//! Owns: serde + utoipa types and the id checks of group routes; no I/O. Used by
//! `api/groups.rs` (bodies, responses), `engine/groups.rs` (what it returns),
//! `store/*/groups.rs` (what it persists), `sessions/groups.rs` and the inbox (events).
//! Plain data, alive while a request or an event is in flight.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use super::events::GroupParticipant;

/// Role names of `GroupParticipant.role`.
pub mod role {
    /// A member.
    pub const PARTICIPANT: &str = "participant";
    /// An admin.
    pub const ADMIN: &str = "admin";
    /// The creator (super admin).
    pub const SUPERADMIN: &str = "superadmin";
    /// No longer a member (`group.v2.participants` of type `leave`).
    pub const LEFT: &str = "left";
}

/// `member_add_mode` values as WhatsApp names them.
pub mod add_mode {
    /// Only admins add members.
    pub const ADMIN_ADD: &str = "admin_add";
    /// Every member adds members (WhatsApp's default).
    pub const ALL_MEMBER_ADD: &str = "all_member_add";
}

/// `member_share_history_mode` values as WhatsApp names them.
pub mod share_mode {
    /// Only admins share history with new members.
    pub const ADMIN_SHARE: &str = "admin_share";
    /// Every member shares history with new members.
    pub const ALL_MEMBER_SHARE: &str = "all_member_share";
}

/// A group as wharf knows it: what WhatsApp's group query answers plus the settings the
/// query leaves out but notifications and our own changes tell (add mode, share-history
/// mode). Stored as is (camelCase JSON) in the per-session group cache.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Group {
    /// `…@g.us`.
    pub id: String,
    /// Name.
    pub subject: String,
    /// Description, when set.
    #[serde(default)]
    pub description: Option<String>,
    /// Creator (WAHA id), when known.
    #[serde(default)]
    pub owner: Option<String>,
    /// Creation time, unix seconds.
    #[serde(default)]
    pub creation: Option<i64>,
    /// Only admins send messages (`messages-admin-only`).
    #[serde(default)]
    pub announce: bool,
    /// Only admins edit the group info (`info-admin-only`).
    #[serde(default)]
    pub locked: bool,
    /// New members need an admin's approval (`membership-approval`).
    #[serde(default)]
    pub membership_approval: bool,
    /// [`add_mode`] value, when known.
    #[serde(default)]
    pub member_add_mode: Option<String>,
    /// [`share_mode`] value, when known.
    #[serde(default)]
    pub member_share_history_mode: Option<String>,
    /// Invite URL, when this session (an admin) asked for it.
    #[serde(default)]
    pub invite: Option<String>,
    /// Members.
    #[serde(default)]
    pub participants: Vec<GroupParticipant>,
}

impl Group {
    /// Fills what a fresh query from WhatsApp could not tell from what was known before
    /// (`previous`, e.g. the cached row): settings WhatsApp's group query omits and the
    /// invite URL.
    #[must_use]
    pub fn merged_with(mut self, previous: Option<&Group>) -> Self {
        if let Some(prev) = previous {
            if self.member_add_mode.is_none() {
                self.member_add_mode.clone_from(&prev.member_add_mode);
            }
            if self.member_share_history_mode.is_none() {
                self.member_share_history_mode
                    .clone_from(&prev.member_share_history_mode);
            }
            if self.invite.is_none() {
                self.invite.clone_from(&prev.invite);
            }
        }
        self
    }

    /// WAHA's normalized `GroupInfo`.
    pub fn info(&self) -> GroupInfo {
        GroupInfo {
            id: self.id.clone(),
            subject: self.subject.clone(),
            description: self.description.clone().unwrap_or_default(),
            invite: self.invite.clone(),
            members_can_add_new_member: self.member_add_mode.as_deref()
                != Some(add_mode::ADMIN_ADD),
            members_can_send_messages: !self.announce,
            new_members_approval_required: self.membership_approval,
            participants: Some(self.participants.clone()),
        }
    }

    /// Whether `me` (a WAHA id, `@c.us` or `@lid`) is one of the group's admins.
    pub fn is_admin(&self, me: &[&str]) -> bool {
        self.participants.iter().any(|p| {
            (me.contains(&p.id.as_str()) || p.pn.as_deref().is_some_and(|pn| me.contains(&pn)))
                && (p.role == role::ADMIN || p.role == role::SUPERADMIN)
        })
    }
}

/// `GroupInfo`: the normalized group of `group.v2.join` and of wharf's Groups reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupInfo {
    /// Group id.
    #[schema(example = "123456789@g.us")]
    pub id: String,
    /// Group Name.
    #[schema(example = "Group Name")]
    pub subject: String,
    /// Group Description.
    #[schema(example = "Group Description")]
    pub description: String,
    /// Invite URL
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "https://chat.whatsapp.com/1234567890abcdef")]
    pub invite: Option<String>,
    /// Members can add new members
    pub members_can_add_new_member: bool,
    /// Members can send messages to the group
    pub members_can_send_messages: bool,
    /// Admin approval required for new members
    pub new_members_approval_required: bool,
    /// Members (absent with `exclude=participants`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participants: Option<Vec<GroupParticipant>>,
}

/// `Participant`: one member named in a request.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct Participant {
    /// `123456789@c.us` (or `…@lid`, or bare digits).
    #[schema(example = "123456789@c.us")]
    pub id: String,
}

/// `CreateGroupRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct CreateGroupRequest {
    /// Group name.
    pub name: String,
    /// Members besides this session.
    pub participants: Vec<Participant>,
}

/// `ParticipantsRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ParticipantsRequest {
    /// Members to act on.
    pub participants: Vec<Participant>,
}

/// `JoinGroupRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct JoinGroupRequest {
    /// Group code (123) or url (https://chat.whatsapp.com/123)
    #[schema(example = "https://chat.whatsapp.com/1234567890abcdef")]
    pub code: String,
}

/// `JoinGroupResponse`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JoinGroupResponse {
    /// Group ID
    #[schema(example = "123@g.us")]
    pub id: String,
}

/// `DescriptionRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct DescriptionRequest {
    /// New description (`""` removes it).
    pub description: String,
}

/// `SubjectRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct SubjectRequest {
    /// New name.
    pub subject: String,
}

/// `SettingsSecurityChangeInfo`: the body and answer of `…/settings/security/
/// info-admin-only` and `…/messages-admin-only`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsSecurityChangeInfo {
    /// `true` = only admins may (edit the info / send messages).
    #[schema(default = true)]
    pub admins_only: bool,
}

/// `CountResponse`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CountResponse {
    /// How many.
    pub count: u64,
}

/// `ChatPictureResponse`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ChatPictureResponse {
    /// Picture URL; `null` when the group has none.
    pub url: Option<String>,
}

/// `Result`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(as = Result)]
pub struct ResultResponse {
    /// Done.
    pub success: bool,
}

/// `RemoteFile` / `BinaryFile`: the picture of `PUT …/picture`.
#[derive(Debug, Clone, Deserialize)]
pub struct PictureFile {
    /// MIME type of the attachment.
    pub mimetype: Option<String>,
    /// File name.
    #[serde(default)]
    pub filename: Option<String>,
    /// Where to download it from (RemoteFile).
    #[serde(default)]
    pub url: Option<String>,
    /// Base64-encoded data (BinaryFile).
    #[serde(default)]
    pub data: Option<crate::model::send::FileData>,
}

/// `ProfilePictureRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProfilePictureRequest {
    /// The picture (JPEG): `RemoteFile` (`url`) or `BinaryFile` (base64 `data`).
    #[schema(value_type = Object)]
    pub file: PictureFile,
}

/// The outcome for one member of a participants operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParticipantResult {
    /// The member.
    pub id: String,
    /// `null` when done, else WhatsApp's error code (`409` already a member, `404`
    /// unknown number or no such request, `403` not allowed).
    pub error: Option<String>,
}

/// `GroupJoinRequest` (newer WAHA): a pending request to join.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupJoinRequest {
    /// ID of the user requesting to join the group
    #[schema(example = "123456789@c.us")]
    pub requester_id: String,
    /// Phone number ID of the requester, if known
    pub requester_pn: Option<String>,
    /// ID of the user who created the request (the requester, for invite links)
    pub added_by_id: String,
    /// ID of the parent community group, `""` for a plain group
    pub parent_group_id: String,
    /// How the request was created (`invite_link`, `non_admin_add`, `linked_group_join`)
    pub request_method: String,
    /// Unix timestamp when the request was created
    pub timestamp: i64,
}

/// `GroupJoinRequestResult` (newer WAHA): the outcome for one requester.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct GroupJoinRequestResult {
    /// ID of the participant the action was applied to
    pub requester_id: String,
    /// Done.
    pub success: bool,
    /// WhatsApp's error code (`404`: no such request), `null` when done.
    pub error: Option<u16>,
}

/// `SettingsMemberAddMode` (newer WAHA): `…/settings/security/member-add-mode`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsMemberAddMode {
    /// Members (not only admins) can add new members.
    pub members_can_add_new_member: bool,
}

/// `SettingsMemberShareHistoryMode` (newer WAHA): `…/member-share-history-mode`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsMemberShareHistoryMode {
    /// Members (not only admins) can send message history to new members.
    pub members_can_share_history: bool,
}

/// `SettingsMembershipApproval` (newer WAHA): `…/settings/security/membership-approval`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SettingsMembershipApproval {
    /// Admins must approve new members.
    pub new_members_approval_required: bool,
}

/// `sortBy` of `GET /groups`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GroupSortBy {
    /// Group id.
    #[default]
    Id,
    /// Group name.
    Subject,
}

/// Whether `s` is a group id (`…@g.us`).
pub fn is_group_id(s: &str) -> bool {
    s.ends_with("@g.us") && super::message::is_chat_id(s)
}

/// Whether `s` names a user a group can hold: `digits@c.us`, `digits@lid` or bare digits.
pub fn is_member_id(s: &str) -> bool {
    let digits = |u: &str| !u.is_empty() && u.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('@') {
        None => digits(s),
        Some((user, "c.us" | "lid" | "s.whatsapp.net")) => digits(user),
        Some(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, role: &str) -> GroupParticipant {
        GroupParticipant {
            id: id.into(),
            pn: Some(id.into()),
            role: role.into(),
        }
    }

    #[test]
    fn ids() {
        assert!(is_group_id("120363000000000001@g.us"));
        assert!(is_group_id("15550001111-1600000000@g.us"));
        assert!(!is_group_id("123@c.us"));
        assert!(!is_group_id("@g.us"));
        assert!(is_member_id("123@c.us"));
        assert!(is_member_id("123@lid"));
        assert!(is_member_id("123"));
        assert!(!is_member_id("123@g.us"));
        assert!(!is_member_id("abc@c.us"));
        assert!(!is_member_id(""));
    }

    #[test]
    fn info_and_merge() {
        let g = Group {
            id: "1@g.us".into(),
            subject: "s".into(),
            announce: true,
            participants: vec![
                member("1@c.us", role::SUPERADMIN),
                member("2@c.us", "participant"),
            ],
            ..Group::default()
        };
        let info = g.info();
        assert!(!info.members_can_send_messages);
        assert!(info.members_can_add_new_member);
        assert_eq!(info.description, "");
        assert!(g.is_admin(&["1@c.us"]));
        assert!(!g.is_admin(&["2@c.us"]));
        let prev = Group {
            member_add_mode: Some(add_mode::ADMIN_ADD.into()),
            invite: Some("https://chat.whatsapp.com/X".into()),
            ..g.clone()
        };
        let merged = g.merged_with(Some(&prev));
        assert!(!merged.info().members_can_add_new_member);
        assert_eq!(
            merged.invite.as_deref(),
            Some("https://chat.whatsapp.com/X")
        );
        let json = serde_json::to_value(merged.info()).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "subject",
                "description",
                "invite",
                "membersCanAddNewMember",
                "membersCanSendMessages",
                "newMembersApprovalRequired",
                "participants"
            ]
        );
    }
}
