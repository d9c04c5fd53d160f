//! WAHA's wire vocabulary: the JSON shapes users send and receive and that events carry,
//! named as WAHA's OpenAPI schemas (`../shared/reference/waha-openapi.json`), and the small
//! value types every layer shares.
//!
//! Owns: serde + utoipa types and validation only — no I/O, no clocks (bar the envelope's id
//! and timestamp), no actix, no whatsapp-rust, nothing that imports another wharf layer.
//! Every layer imports from here (`api` for bodies, `sessions` and `events` for payloads,
//! `store` and `engine` for what they persist or translate), so none of them has to import
//! another one upward. Lives for the process as plain types.
//!
//! * [`name`]: `SessionName`, validated once, the only way a name becomes a folder or a
//!   database.
//! * [`session`]: `SessionConfig`, `MeInfo`, `WebhookConfig` and friends, `SessionStatus`.
//! * [`message`]: `WAMessage`, ack codes, WAHA's message and chat ids.
//! * [`events`]: the webhook/WebSocket envelope and one struct per event payload.
//! * [`groups`]: `GroupInfo`, `GroupParticipant`, the Groups bodies and the cached [`groups::Group`].
//! * [`profile`]: the Profile, Presence and Calls bodies (`MyProfile`, `WAHASessionPresence`…).
//! * [`send`]: the bodies of the media, poll, location… send operations.

pub mod contacts;
pub mod events;
pub mod groups;
pub mod labels;
pub mod message;
pub mod name;
pub mod profile;
pub mod send;
pub mod session;
