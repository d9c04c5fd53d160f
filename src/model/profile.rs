//! WAHA's wire types of the `🆔 Profile`, `✅ Presence` and `📞 Calls` routes
//! (`MyProfile`, `ProfileNameRequest`, `ProfileStatusRequest`, `WAHASessionPresence`,
//! `RejectCallRequest`). Used by `api/profile.rs`, `api/presence.rs` and `api/calls.rs`;
//! plain data.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `MyProfile`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MyProfile {
    /// Our id.
    #[schema(example = "11111111111@c.us")]
    pub id: String,
    /// Our picture's URL (`null` without one).
    #[schema(example = "https://example.com/picture.jpg")]
    pub picture: Option<String>,
    /// Our push name.
    pub name: String,
}

/// `ProfileNameRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProfileNameRequest {
    /// New push name.
    #[schema(example = "My New Name")]
    pub name: String,
}

/// `ProfileStatusRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct ProfileStatusRequest {
    /// New "about" text.
    #[schema(example = "🎉 Hey there! I am using WhatsApp 🎉")]
    pub status: String,
}

/// `WAHAPresenceStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum PresenceStatus {
    /// Unavailable.
    Offline,
    /// Available.
    Online,
    /// Composing in a chat.
    Typing,
    /// Recording audio in a chat.
    Recording,
    /// Stopped composing.
    Paused,
}

/// `WAHASessionPresence`: the body of `POST /api/{session}/presence`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WAHASessionPresence {
    /// Chat ID - either group id or contact id. Required for chat-related presence
    /// statuses; omit for ONLINE/OFFLINE.
    #[schema(example = "11111111111@c.us")]
    #[serde(default)]
    pub chat_id: Option<String>,
    /// The presence.
    #[schema(inline)]
    pub presence: PresenceStatus,
}

/// `RejectCallRequest`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct RejectCallRequest {
    /// The caller.
    #[schema(example = "11111111111@c.us")]
    pub from: String,
    /// Call ID
    #[schema(example = "ABCDEFGABCDEFGABCDEFGABCDEFG")]
    pub id: String,
}
