//! The one integration-test binary: the real app on port 0 (and the real binary where
//! process behaviour matters), against the embedded store and MongoDB.

mod binary;
mod channels;
mod chat_actions;
mod chats_api;
mod contacts;
mod dashboard;
mod engine_store;
mod errors;
mod events;
mod groups;
mod history;
mod isolation;
mod jwt;
mod keys;
mod labels;
mod lids;
mod media_recv;
mod media_send;
mod message_store;
mod messaging;
mod observability;
mod openapi;
mod pairing;
mod profile_presence;
mod proxy;
mod routing;
mod scale;
mod security;
mod session_defaults;
mod sessions;
mod status_posts;
mod store_contract;
mod support;
mod unsupported_ops;
