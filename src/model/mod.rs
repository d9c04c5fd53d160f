//! WAHA's wire vocabulary and the small value types every layer shares.
//!
//! Owns: plain data types with no behaviour beyond validation (no I/O, no actix, no
//! whatsapp-rust). Imported by `api`, `sessions`, `store`, `events` and `engine` alike, so it
//! imports none of them. Types live as long as the values that carry them.

pub mod name;
