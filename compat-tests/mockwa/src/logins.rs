//! Login bookkeeping per companion device: how many times it logged in and how many of
//! those logins replaced a connection that was still open (the real server answers the
//! older socket with `stream:error conflict replaced`; two live clients of one device are
//! what a correct cluster of wharf workers must never produce).
//!
//! Owns: [`LoginStats`] (kept in `State::logins`, lives with the network). Written by
//! `conn.rs` on every successful login, read by the admin API's device list.

use crate::state::{DevKey, State};

/// Logins of one device since the network started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct LoginStats {
    /// Successful logins.
    pub(crate) logins: u64,
    /// Logins that found another connection of the device still open (and closed it).
    pub(crate) replaced: u64,
}

/// Counts one login of `key`; `replaced` when it displaced an open connection.
pub(crate) fn record(st: &mut State, key: &DevKey, replaced: bool) {
    let s = st.logins.entry(key.clone()).or_default();
    s.logins += 1;
    if replaced {
        s.replaced += 1;
    }
}
