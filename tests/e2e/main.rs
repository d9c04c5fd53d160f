//! The one integration-test binary: the real app on port 0 (and the real binary where
//! process behaviour matters), against the embedded store and MongoDB.

mod binary;
mod chats_api;
mod engine_store;
mod errors;
mod events;
mod media_recv;
mod message_store;
mod messaging;
mod observability;
mod openapi;
mod pairing;
mod sessions;
mod store_contract;
mod support;
