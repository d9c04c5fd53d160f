//! The one integration-test binary: the real app on port 0 (and the real binary where
//! process behaviour matters), against the embedded store and MongoDB.

mod binary;
mod channels;
mod chats_api;
mod engine_store;
mod errors;
mod events;
mod groups;
mod isolation;
mod jwt;
mod keys;
mod media_recv;
mod media_send;
mod message_store;
mod messaging;
mod observability;
mod openapi;
mod pairing;
mod routing;
mod scale;
mod security;
mod sessions;
mod status_posts;
mod store_contract;
mod support;
mod unsupported_ops;
