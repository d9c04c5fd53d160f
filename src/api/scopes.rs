//! The scope rule of every route: who may call it, and for which session and action.
//!
//! Owns: [`RULES`], the one table `api::auth::authenticate` consults for every request
//! bearing a session key or a JWT session token (admin keys are not restricted), and
//! which `tests/e2e/isolation.rs` walks: every operation of the served OpenAPI document
//! (plus `/ws` and `/api/files`) must have a rule here, or that suite fails — and the
//! middleware answers 403 to session keys on a route without one (deny by default).
//!
//! # Adding a route
//! Add one line `("METHOD", "/the/actix/pattern", rule)` to [`RULES`], the pattern spelled
//! exactly as in the handler's `#[get(..)]` attribute (= the OpenAPI path):
//! - [`Rule::Admin`] — server-wide: keys, server, creating sessions;
//! - [`Rule::Session`] — names a session: `from` says where ([`Source::Path`] for a
//!   `{session}` path parameter, [`Source::Query`] for `?session=`, [`Source::Body`] for a
//!   JSON body field, read by the `Body` extractor), `action` what it does: `read` for
//!   GETs of session data, `send` for sends and message/chat changes, `control` for
//!   start/stop/restart/logout/pairing/QR, `setting` for config and webhooks, `delete`,
//!   `app`; `None` only for downloads any key of the session may make (media keys);
//! - [`Rule::Listing`] — the handler narrows the answer itself (`GET /api/sessions`);
//! - [`Rule::Public`] — no key, or the handler authenticates itself (`/ws`).

use actix_web::dev::ResourceDef;

use crate::keys::Action;

/// Where a route names its session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `{session}` path parameter.
    Path,
    /// The n-th path segment (0 = `api`): routes matched by prefix.
    Segment(usize),
    /// `?session=` (default `"default"`).
    Query,
    /// A JSON body field (default `"default"`), checked by the `Body` extractor.
    Body(&'static str),
}

/// What a route requires of a session principal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// Anyone (or the handler checks the credential itself).
    Public,
    /// Admin only: 403 to session keys.
    Admin,
    /// Any principal; the handler shows a session key only its own sessions.
    Listing,
    /// A session principal of the named session, with `action`.
    Session {
        /// Where the session is named.
        from: Source,
        /// What the route does (`None`: any key of the session).
        action: Option<Action>,
    },
}

const fn path(action: Action) -> Rule {
    Rule::Session {
        from: Source::Path,
        action: Some(action),
    }
}
const fn query(action: Action) -> Rule {
    Rule::Session {
        from: Source::Query,
        action: Some(action),
    }
}
const fn body(action: Action) -> Rule {
    Rule::Session {
        from: Source::Body("session"),
        action: Some(action),
    }
}

use Action::{App, Control, Delete, Read, Send, Setting};

/// Every route's rule: (method, actix pattern, rule). See the module doc to add one.
pub const RULES: &[(&str, &str, Rule)] = &[
    // Not in the OpenAPI document.
    ("GET", "/ws", Rule::Public),
    // Cluster mode only; the handler demands the peer credential (`api::peer_events`).
    ("GET", "/api/cluster/events", Rule::Public),
    // Cluster mode only; the handler demands the peer credential (`api::peer_claim`).
    ("POST", "/api/cluster/claim", Rule::Public),
    ("GET", "/-json", Rule::Public),
    // The dashboard: HTTP Basic auth in `api::dashboard`, not the API key.
    ("GET", "/dashboard", Rule::Public),
    ("GET", "/dashboard/{file}", Rule::Public),
    // 🔍 Observability / server
    ("GET", "/ping", Rule::Public),
    ("GET", "/health", Rule::Admin),
    ("GET", "/api/server/version", Rule::Admin),
    ("GET", "/api/version", Rule::Admin),
    ("GET", "/api/server/status", Rule::Admin),
    ("GET", "/api/server/environment", Rule::Admin),
    ("POST", "/api/server/stop", Rule::Admin),
    ("GET", "/api/server/debug/cpu", Rule::Admin),
    ("GET", "/api/server/debug/heapsnapshot", Rule::Admin),
    (
        "GET",
        "/api/server/debug/browser/trace/{session}",
        Rule::Admin,
    ),
    // 🧩 Apps (wharf runs none: see api/unsupported.rs)
    ("GET", "/api/apps", query(App)),
    ("POST", "/api/apps", body(App)),
    ("GET", "/api/apps/{id}", Rule::Admin),
    ("PUT", "/api/apps/{id}", Rule::Admin),
    ("DELETE", "/api/apps/{id}", Rule::Admin),
    ("POST", "/mcp", Rule::Admin),
    // 🔑 Api Keys and wharf's token minting
    ("GET", "/api/keys", Rule::Admin),
    ("POST", "/api/keys", Rule::Admin),
    ("PUT", "/api/keys/{id}", Rule::Admin),
    ("DELETE", "/api/keys/{id}", Rule::Admin),
    ("POST", "/api/keys/media", Rule::Admin),
    ("POST", "/api/keys/control", Rule::Admin),
    ("POST", "/api/wharf/tokens", Rule::Admin),
    // 🖥️ Sessions
    ("GET", "/api/sessions", Rule::Listing),
    ("POST", "/api/sessions", Rule::Admin),
    ("GET", "/api/sessions/{session}", path(Read)),
    ("PUT", "/api/sessions/{session}", path(Setting)),
    ("DELETE", "/api/sessions/{session}", path(Delete)),
    ("GET", "/api/sessions/{session}/me", path(Read)),
    ("POST", "/api/sessions/{session}/start", path(Control)),
    ("POST", "/api/sessions/{session}/stop", path(Control)),
    ("POST", "/api/sessions/{session}/logout", path(Control)),
    ("POST", "/api/sessions/{session}/restart", path(Control)),
    // Deprecated upsert/stop/logout-and-delete by body `name`: admin only (they create or
    // delete sessions).
    ("POST", "/api/sessions/start", Rule::Admin),
    ("POST", "/api/sessions/stop", Rule::Admin),
    ("POST", "/api/sessions/logout", Rule::Admin),
    // 📱 Pairing
    ("GET", "/api/{session}/auth/qr", path(Control)),
    ("POST", "/api/{session}/auth/request-code", path(Control)),
    (
        "GET",
        "/api/{session}/auth/passkey/challenge",
        path(Control),
    ),
    ("POST", "/api/{session}/auth/passkey", path(Control)),
    (
        "GET",
        "/api/{session}/auth/passkey/confirmation",
        path(Control),
    ),
    ("POST", "/api/{session}/auth/passkey/confirm", path(Control)),
    ("GET", "/api/screenshot", query(Read)),
    // 📤 Chatting
    ("POST", "/api/sendText", body(Send)),
    ("GET", "/api/sendText", query(Send)),
    ("POST", "/api/sendSeen", body(Send)),
    ("POST", "/api/startTyping", body(Send)),
    ("POST", "/api/stopTyping", body(Send)),
    ("PUT", "/api/reaction", body(Send)),
    ("POST", "/api/forwardMessage", body(Send)),
    (
        "PUT",
        "/api/{session}/chats/{chatId}/messages/{messageId}",
        path(Send),
    ),
    (
        "DELETE",
        "/api/{session}/chats/{chatId}/messages/{messageId}",
        path(Send),
    ),
    // 💬 Chats
    ("GET", "/api/{session}/chats", path(Read)),
    ("POST", "/api/{session}/chats/{chatId}/archive", path(Send)),
    (
        "POST",
        "/api/{session}/chats/{chatId}/unarchive",
        path(Send),
    ),
    ("POST", "/api/{session}/chats/{chatId}/unread", path(Send)),
    ("DELETE", "/api/{session}/chats/{chatId}", path(Send)),
    (
        "DELETE",
        "/api/{session}/chats/{chatId}/messages",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/chats/{chatId}/messages/{messageId}/pin",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/chats/{chatId}/messages/{messageId}/unpin",
        path(Send),
    ),
    ("GET", "/api/{session}/chats/{chatId}/picture", path(Read)),
    // 🏷️ Labels
    ("GET", "/api/{session}/labels", path(Read)),
    ("POST", "/api/{session}/labels", path(Send)),
    ("GET", "/api/{session}/labels/chats/{chatId}", path(Read)),
    ("PUT", "/api/{session}/labels/chats/{chatId}", path(Send)),
    ("PUT", "/api/{session}/labels/{labelId}", path(Send)),
    ("DELETE", "/api/{session}/labels/{labelId}", path(Send)),
    ("GET", "/api/{session}/labels/{labelId}/chats", path(Read)),
    ("GET", "/api/{session}/chats/overview", path(Read)),
    ("POST", "/api/{session}/chats/overview", path(Read)),
    ("GET", "/api/{session}/chats/{chatId}/messages", path(Read)),
    (
        "GET",
        "/api/{session}/chats/{chatId}/messages/{messageId}",
        path(Read),
    ),
    (
        "POST",
        "/api/{session}/chats/{chatId}/messages/read",
        path(Send),
    ),
    // 👤 Contacts
    ("GET", "/api/contacts/check-exists", query(Read)),
    ("GET", "/api/contacts/all", query(Read)),
    ("GET", "/api/contacts", query(Read)),
    ("GET", "/api/contacts/about", query(Read)),
    ("GET", "/api/contacts/profile-picture", query(Read)),
    ("POST", "/api/contacts/block", body(Send)),
    ("POST", "/api/contacts/unblock", body(Send)),
    ("GET", "/api/{session}/contacts/{id}", path(Read)),
    ("PUT", "/api/{session}/contacts/{chatId}", path(Send)),
    ("GET", "/api/{session}/lids", path(Read)),
    ("GET", "/api/{session}/lids/count", path(Read)),
    ("GET", "/api/{session}/lids/{lid}", path(Read)),
    ("GET", "/api/{session}/lids/pn/{phoneNumber}", path(Read)),
    // 📤 Chatting: media and every other send kind; 🖼️ Media; 👥 Groups (group changes
    // are `send`, reads `read`).
    ("POST", "/api/sendImage", body(Send)),
    ("POST", "/api/sendFile", body(Send)),
    ("POST", "/api/sendVoice", body(Send)),
    ("POST", "/api/sendVideo", body(Send)),
    ("POST", "/api/sendLocation", body(Send)),
    ("POST", "/api/sendContactVcard", body(Send)),
    ("POST", "/api/sendPoll", body(Send)),
    ("POST", "/api/sendPollVote", body(Send)),
    ("POST", "/api/send/link-custom-preview", body(Send)),
    ("POST", "/api/sendList", body(Send)),
    ("POST", "/api/sendButtons", body(Send)),
    ("POST", "/api/send/buttons/reply", body(Send)),
    ("PUT", "/api/star", body(Send)),
    ("GET", "/api/{session}/new-message-id", path(Read)),
    // 📢 Channels
    ("GET", "/api/{session}/channels", path(Read)),
    ("POST", "/api/{session}/channels/search/by-view", path(Read)),
    ("POST", "/api/{session}/channels/search/by-text", path(Read)),
    ("GET", "/api/{session}/channels/search/views", path(Read)),
    (
        "GET",
        "/api/{session}/channels/search/countries",
        path(Read),
    ),
    (
        "GET",
        "/api/{session}/channels/search/categories",
        path(Read),
    ),
    ("POST", "/api/{session}/channels", path(Send)),
    ("GET", "/api/{session}/channels/{id}", path(Read)),
    ("DELETE", "/api/{session}/channels/{id}", path(Send)),
    ("POST", "/api/{session}/channels/{id}/follow", path(Send)),
    ("POST", "/api/{session}/channels/{id}/unfollow", path(Send)),
    ("POST", "/api/{session}/channels/{id}/mute", path(Send)),
    ("POST", "/api/{session}/channels/{id}/unmute", path(Send)),
    (
        "GET",
        "/api/{session}/channels/{id}/messages/preview",
        path(Read),
    ),
    // 🟢 Status
    ("POST", "/api/{session}/status/text", path(Send)),
    ("POST", "/api/{session}/status/image", path(Send)),
    ("POST", "/api/{session}/status/voice", path(Send)),
    ("POST", "/api/{session}/status/video", path(Send)),
    ("POST", "/api/{session}/status/delete", path(Send)),
    ("GET", "/api/{session}/status/new-message-id", path(Read)),
    ("POST", "/api/{session}/events", path(Send)),
    ("POST", "/api/reply", body(Send)),
    ("POST", "/api/sendLinkPreview", body(Send)),
    ("GET", "/api/messages", query(Read)),
    ("GET", "/api/checkNumberStatus", query(Read)),
    ("POST", "/api/{session}/media/convert/voice", path(Send)),
    ("POST", "/api/{session}/media/convert/video", path(Send)),
    ("GET", "/api/{session}/groups", path(Read)),
    ("POST", "/api/{session}/groups", path(Send)),
    ("GET", "/api/{session}/groups/count", path(Read)),
    ("POST", "/api/{session}/groups/refresh", path(Send)),
    ("GET", "/api/{session}/groups/join-info", path(Read)),
    ("POST", "/api/{session}/groups/join", path(Send)),
    ("GET", "/api/{session}/groups/{id}", path(Read)),
    ("DELETE", "/api/{session}/groups/{id}", path(Send)),
    ("POST", "/api/{session}/groups/{id}/leave", path(Send)),
    ("GET", "/api/{session}/groups/{id}/picture", path(Read)),
    ("PUT", "/api/{session}/groups/{id}/picture", path(Send)),
    ("DELETE", "/api/{session}/groups/{id}/picture", path(Send)),
    ("PUT", "/api/{session}/groups/{id}/description", path(Send)),
    ("PUT", "/api/{session}/groups/{id}/subject", path(Send)),
    (
        "GET",
        "/api/{session}/groups/{id}/settings/security/info-admin-only",
        path(Read),
    ),
    (
        "PUT",
        "/api/{session}/groups/{id}/settings/security/info-admin-only",
        path(Send),
    ),
    (
        "GET",
        "/api/{session}/groups/{id}/settings/security/messages-admin-only",
        path(Read),
    ),
    (
        "PUT",
        "/api/{session}/groups/{id}/settings/security/messages-admin-only",
        path(Send),
    ),
    (
        "GET",
        "/api/{session}/groups/{id}/settings/security/member-add-mode",
        path(Read),
    ),
    (
        "PUT",
        "/api/{session}/groups/{id}/settings/security/member-add-mode",
        path(Send),
    ),
    (
        "GET",
        "/api/{session}/groups/{id}/settings/security/member-share-history-mode",
        path(Read),
    ),
    (
        "PUT",
        "/api/{session}/groups/{id}/settings/security/member-share-history-mode",
        path(Send),
    ),
    (
        "GET",
        "/api/{session}/groups/{id}/settings/security/membership-approval",
        path(Read),
    ),
    (
        "PUT",
        "/api/{session}/groups/{id}/settings/security/membership-approval",
        path(Send),
    ),
    ("GET", "/api/{session}/groups/{id}/invite-code", path(Read)),
    (
        "POST",
        "/api/{session}/groups/{id}/invite-code/revoke",
        path(Send),
    ),
    ("GET", "/api/{session}/groups/{id}/participants", path(Read)),
    (
        "GET",
        "/api/{session}/groups/{id}/participants/v2",
        path(Read),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/participants/add",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/participants/remove",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/admin/promote",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/admin/demote",
        path(Send),
    ),
    (
        "GET",
        "/api/{session}/groups/{id}/participants/join-requests",
        path(Read),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/participants/join-requests/approve",
        path(Send),
    ),
    (
        "POST",
        "/api/{session}/groups/{id}/participants/join-requests/reject",
        path(Send),
    ),
    ("POST", "/api/sendSticker", body(Send)),
    // 🆔 Profile, ✅ Presence, 📞 Calls
    ("GET", "/api/{session}/profile", path(Read)),
    ("PUT", "/api/{session}/profile/name", path(Setting)),
    ("PUT", "/api/{session}/profile/status", path(Setting)),
    ("PUT", "/api/{session}/profile/picture", path(Setting)),
    ("DELETE", "/api/{session}/profile/picture", path(Setting)),
    ("POST", "/api/{session}/presence", path(Send)),
    ("GET", "/api/{session}/presence", path(Read)),
    ("GET", "/api/{session}/presence/{chatId}", path(Read)),
    (
        "POST",
        "/api/{session}/presence/{chatId}/subscribe",
        path(Read),
    ),
    ("POST", "/api/{session}/calls/reject", path(Send)),
    ("GET", "/metrics", Rule::Admin),
    // wharf's webhook dead letters
    (
        "GET",
        "/api/wharf/sessions/{session}/dead-letters",
        path(Setting),
    ),
    (
        "POST",
        "/api/wharf/sessions/{session}/dead-letters/replay",
        path(Setting),
    ),
    (
        "POST",
        "/api/wharf/sessions/{session}/dead-letters/{id}/replay",
        path(Setting),
    ),
];

/// Rules for routes matched by pattern prefix (routes whose exact pattern is owned
/// elsewhere). `/api/files/{session}/…`: any key of the session may download its files,
/// media keys included (WAHA). TODO(integrator): when the files route lands, keep it
/// under this prefix or add its exact pattern to [`RULES`].
pub const PREFIX_RULES: &[(&str, &str, Rule)] = &[(
    "GET",
    "/api/files/",
    Rule::Session {
        from: Source::Segment(2),
        action: None,
    },
)];

/// The rule of `method` + `pattern` (an actix route pattern, exactly as in [`RULES`]).
pub fn rule(method: &str, pattern: &str) -> Option<Rule> {
    RULES
        .iter()
        .find(|(m, p, _)| *m == method && *p == pattern)
        .or_else(|| {
            PREFIX_RULES
                .iter()
                .find(|(m, p, _)| *m == method && pattern.starts_with(p))
        })
        .map(|(_, _, r)| *r)
}

/// [`RULES`] compiled into actix resource definitions, once.
static COMPILED: std::sync::LazyLock<Vec<(&'static str, ResourceDef, &'static str, Rule)>> =
    std::sync::LazyLock::new(|| {
        RULES
            .iter()
            .map(|(m, p, r)| (*m, ResourceDef::new(*p), *p, *r))
            .collect()
    });

/// The rule and pattern for a request: the [`RULES`] entries of `method` whose pattern
/// matches `path`, the most specific (fewest parameters) first — as routing picks
/// `/api/sessions/start` over `/api/sessions/{session}`; then [`PREFIX_RULES`].
///
/// (actix's `match_pattern()` cannot be used: it ignores the method, so
/// `POST …/messages/read` would be read as `GET …/messages/{messageId}`.)
pub fn rule_for_request(method: &str, path: &str) -> Option<(&'static str, Rule)> {
    COMPILED
        .iter()
        .filter(|(m, def, _, _)| *m == method && def.is_match(path))
        .min_by_key(|(_, _, p, _)| p.matches('{').count())
        .map(|(_, _, p, r)| (*p, *r))
        .or_else(|| {
            PREFIX_RULES
                .iter()
                .find(|(m, p, _)| *m == method && path.starts_with(p))
                .map(|(_, p, r)| (*p, *r))
        })
}

/// The `{session}` segment of `path` for route `pattern` (both split on `/`; patterns here
/// have no multi-segment parameter before `{session}`).
pub fn path_session(pattern: &str, path: &str) -> Option<String> {
    let index = pattern.split('/').position(|s| s == "{session}")?;
    path.split('/').nth(index).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_rule_is_method_aware_and_most_specific() {
        // actix's `match_pattern` would say `GET …/messages/{messageId}` here.
        assert_eq!(
            rule_for_request("POST", "/api/a/chats/1@c.us/messages/read"),
            Some(("/api/{session}/chats/{chatId}/messages/read", path(Send)))
        );
        assert_eq!(
            rule_for_request("GET", "/api/a/chats/1@c.us/messages/read").map(|(p, _)| p),
            Some("/api/{session}/chats/{chatId}/messages/{messageId}")
        );
        // The fixed deprecated path wins over `{session}`.
        assert_eq!(
            rule_for_request("POST", "/api/sessions/start"),
            Some(("/api/sessions/start", Rule::Admin))
        );
        assert_eq!(
            rule_for_request("GET", "/api/files/a/x.jpg").map(|(_, r)| r),
            Some(Rule::Session {
                from: Source::Segment(2),
                action: None
            })
        );
        assert_eq!(rule_for_request("PATCH", "/api/sessions/a"), None);
        assert_eq!(
            path_session("/api/{session}/chats", "/api/alpha/chats"),
            Some("alpha".into())
        );
    }
}
