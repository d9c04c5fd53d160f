//! WAHA's `👤 Contacts` and LID wire types: the contact object, `about`, the profile
//! picture, `ContactRequest`, `ContactUpdateBody` and `LidToPhoneNumber`.
//!
//! Owns: only shapes (serde + utoipa). Built by `sessions::contacts` from the session's
//! contact store, serialized by `api/contacts.rs`; values live for one request.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A contact, as WAHA answers `GET /api/contacts*` (waha.md §4.5).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    /// `…@c.us` (or `…@lid` when no phone number is known).
    pub id: String,
    /// The user part of the id (digits).
    pub number: String,
    /// The name saved for it (`PUT /api/{session}/contacts/{chatId}`).
    pub name: Option<String>,
    /// The name it announces itself.
    pub pushname: Option<String>,
    /// The saved first name.
    pub short_name: Option<String>,
    /// This is the session's own account.
    pub is_me: bool,
    /// Always `false` here: groups are not contacts.
    pub is_group: bool,
    /// Known to be on WhatsApp.
    #[serde(rename = "isWAContact")]
    pub is_wa_contact: bool,
    /// Saved by this account.
    pub is_my_contact: bool,
    /// Blocked by this account.
    pub is_blocked: bool,
}

/// `{about}` of `GET /api/contacts/about`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactAbout {
    /// The about text; `null` when none (or hidden).
    pub about: Option<String>,
}

/// `{profilePictureURL}` of `GET /api/contacts/profile-picture`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ContactProfilePicture {
    /// The picture URL; `null` when none (or hidden).
    #[serde(rename = "profilePictureURL")]
    pub profile_picture_url: Option<String>,
}

/// `ContactRequest` (block / unblock).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactRequest {
    /// `11111111111@c.us` (bare digits accepted).
    #[schema(example = "11111111111@c.us")]
    pub contact_id: String,
    /// Session name.
    #[serde(default = "default_session")]
    #[schema(default = "default")]
    pub session: String,
}

fn default_session() -> String {
    "default".into()
}

/// `ContactUpdateBody`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ContactUpdateBody {
    /// Contact First Name
    #[schema(example = "John")]
    pub first_name: String,
    /// Contact Last Name
    #[schema(example = "Doe")]
    pub last_name: String,
}

/// `LidToPhoneNumber`: either side is `null` when unknown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct LidToPhoneNumber {
    /// Linked ID for the user
    #[schema(example = "1111111@lid")]
    pub lid: Option<String>,
    /// Phone number (chat id) for the user
    #[schema(example = "3333333@c.us")]
    pub pn: Option<String>,
}

/// A user id as the contacts routes accept it: `…@c.us`, `…@s.whatsapp.net`, `…@lid` or
/// bare digits (→ `@c.us`, as WAHA). `None` for anything else (groups included).
pub fn contact_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let (user, server) = raw.split_once('@').unwrap_or((raw, "c.us"));
    let user = user.strip_prefix('+').unwrap_or(user);
    // A device suffix (`123:4@s.whatsapp.net`) names the same user.
    let user = user.split(':').next().unwrap_or(user);
    if user.is_empty() || user.len() > 20 || !user.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    match server {
        "c.us" | "s.whatsapp.net" => Some(format!("{user}@c.us")),
        "lid" => Some(format!("{user}@lid")),
        _ => None,
    }
}

/// A phone number as `lids/pn/{phoneNumber}` accepts it (digits, `+digits`, `…@c.us`).
pub fn phone_id(raw: &str) -> Option<String> {
    contact_id(raw).filter(|id| id.ends_with("@c.us"))
}

/// A LID as `lids/{lid}` accepts it (`…@lid`, or bare digits).
pub fn lid_id(raw: &str) -> Option<String> {
    let raw = raw.trim();
    let user = raw.strip_suffix("@lid").unwrap_or(raw);
    (!user.is_empty() && user.len() <= 20 && user.chars().all(|c| c.is_ascii_digit()))
        .then(|| format!("{user}@lid"))
}
