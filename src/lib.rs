//! wharf: a WhatsApp HTTP API server, wire-compatible with WAHA.
//!
//! Layers, outermost first: [`api`] (actix handlers, WAHA's wire format) → [`sessions`]
//! (registry, per-session runtime, status machine) → [`engine`] (the WhatsApp client) and
//! [`store`] (SQLite or MongoDB). [`app`] wires them; [`config`] reads WAHA's environment.
//! [`model`] holds WAHA's wire types that every layer shares; [`clock`] the time helpers.

pub mod api;
pub mod app;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod egress;
pub mod engine;
pub mod events;
pub mod keys;
pub mod limits;
pub mod media;
pub mod messages;
pub mod metrics;
pub mod model;
pub mod redact;
pub mod sessions;
pub mod store;
pub mod telemetry;
