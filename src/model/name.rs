//! [`SessionName`]: a session name checked once, so it can safely become a folder or a
//! database name.
//!
//! Owns: WAHA's name rule (`^[a-zA-Z0-9_-]*$`, `src/nestjs/validation/SessionName.ts`) and
//! the storage limits on top of it (not empty; at most 54 characters, WAHA's cap, and fewer
//! when the MongoDB database `waha_{session_namespace}_{name}` would reach MongoDB's 64-byte
//! limit). Built by the store (`store::Store::session_name`) and, for request bodies, by the
//! API layer, which renders [`NameProblem`]s in WAHA's wording. Values live as long as the
//! request or session handle holding them.

use std::fmt;
use std::sync::Arc;

/// WAHA's cap on session names: 64 − len("waha_noweb").
pub const WAHA_MAX_LEN: usize = 54;

/// MongoDB database names must be shorter than 64 bytes.
const MONGO_DB_NAME_MAX: usize = 63;

/// Longest name a store can hold: [`WAHA_MAX_LEN`], or less on MongoDB when
/// `waha_{session_namespace}_{name}` would pass MongoDB's database-name limit.
/// `mongo_session_namespace` is `None` for the embedded store.
pub fn max_len(mongo_session_namespace: Option<&str>) -> usize {
    match mongo_session_namespace {
        Some(ns) => {
            let prefix = "waha_".len() + ns.len() + "_".len();
            WAHA_MAX_LEN.min(MONGO_DB_NAME_MAX.saturating_sub(prefix))
        }
        None => WAHA_MAX_LEN,
    }
}

/// Why a string is not a usable session name. Carries data; `api/error.rs` and
/// `api/sessions.rs` own WAHA's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty: a name must name something on disk or in MongoDB.
    Empty,
    /// Longer than `max` characters.
    TooLong {
        /// The limit that applied.
        max: usize,
    },
    /// A character outside `[a-zA-Z0-9_-]`.
    Pattern,
}

/// Every problem of a rejected name, in WAHA's order (length first, then pattern).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid session name {name:?}: {problems:?}")]
pub struct InvalidName {
    /// The rejected input.
    pub name: String,
    /// What is wrong with it (never empty).
    pub problems: Vec<NameProblem>,
}

/// A validated session name: non-empty, `[a-zA-Z0-9_-]` only, within the store's length
/// limit. Safe as a single path component (no `.`, `/`, `\`, NUL) and inside a MongoDB
/// database name. Cheap to clone.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionName(Arc<str>);

impl SessionName {
    /// Checks `name` against WAHA's pattern and `max_len` (see [`max_len`]).
    ///
    /// # Errors
    /// [`InvalidName`] listing every problem found.
    pub fn parse(name: &str, max_len: usize) -> Result<Self, InvalidName> {
        let problems = problems(name, max_len);
        if problems.is_empty() {
            Ok(Self(Arc::from(name)))
        } else {
            Err(InvalidName {
                name: name.to_owned(),
                problems,
            })
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What is wrong with `name` under `max_len`, in WAHA's order; empty when nothing is.
pub fn problems(name: &str, max_len: usize) -> Vec<NameProblem> {
    let mut out = Vec::new();
    if name.is_empty() {
        out.push(NameProblem::Empty);
    }
    if name.chars().count() > max_len {
        out.push(NameProblem::TooLong { max: max_len });
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        out.push(NameProblem::Pattern);
    }
    out
}

/// Names that are the first path segment of WAHA's own routes under `/api/` (`/api/files/…`,
/// `/api/sessions/…`, `/api/keys`, …). A session with such a name has routes that collide
/// with them — and an exclusion like WAHA's documented `api/files/(.*)` would open that
/// session's chats and QR code without a key. New sessions may not take them (wharf's
/// addition); sessions already stored keep working.
pub const RESERVED: &[&str] = &[
    "apps",
    "checknumberstatus",
    "contacts",
    "files",
    "forwardmessage",
    "keys",
    "messages",
    "reaction",
    "reply",
    "screenshot",
    "send",
    "server",
    "sessions",
    "star",
    "version",
    "wharf",
];

/// Whether `name` is one of [`RESERVED`] (in any letter case: routing ignores case).
pub fn is_reserved(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    RESERVED.contains(&lower.as_str()) || lower.starts_with("send")
}

impl AsRef<str> for SessionName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for SessionName {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SessionName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

#[cfg(test)]
mod tests;
