//! End-to-end tests: real, unmodified whatsapp-rust 0.7.0 clients against an
//! in-process mockwa (plus one test of the built binary). One test binary on
//! purpose: each binary that links whatsapp-rust costs minutes to build.

// `Event` is a 61-variant `#[non_exhaustive]` enum; each wait picks one
// variant and ignores the rest, which is what a wildcard arm says.
#![allow(clippy::wildcard_enum_match_arm)]

mod appstate;
mod binary;
mod groups;
mod harness;
mod media;
mod messaging;
mod pairing;
mod robustness;
