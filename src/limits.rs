//! Process limits: the open-file limit that caps how many sessions one process can hold.
//!
//! Owns: raising the soft `RLIMIT_NOFILE` to the hard limit at start (the common default
//! soft limit, 1,024, failed around 250 sessions on the embedded store — issue 16) and the
//! startup warning when even that cannot hold the stored sessions. Called once by
//! `app::App::build` before the store opens; holds no state.

use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};

/// Descriptors one running session is counted for, per store. MongoDB: the WhatsApp socket
/// (the driver's pool is shared). Embedded store: the socket plus the device store
/// (`whatsapp.db`), whose database, WAL and shared-memory files (3) are open only while the
/// session uses its keys and close after `WHARF_DEVICE_STORE_IDLE_SECONDS` idle
/// (`engine::idle_sqlite`): an idle session holds 1, a busy one 4; 2 leaves room for a third
/// of the sessions being busy at once (a restore, a broadcast). Measured in
/// `benches/scale.rs`.
pub fn fds_per_session(store_kind: &str) -> u64 {
    if store_kind == "sqlite" { 2 } else { 1 }
}

/// Descriptors the process needs besides its sessions: the main database, listeners, the
/// MongoDB pool, webhook connections, logs, the runtime's own.
pub const BASE_FDS: u64 = 256;

/// Raises the soft open-file limit to the hard one and logs both. Returns the soft limit
/// in force afterwards (`None` = unlimited).
pub fn raise_nofile_limit() -> Option<u64> {
    let before = getrlimit(Resource::Nofile);
    let Some(soft) = before.current else {
        tracing::info!("open files: unlimited");
        return None;
    };
    if before.maximum.is_some_and(|hard| hard <= soft) {
        tracing::info!("open files: soft limit {soft} (already the hard limit)");
        return Some(soft);
    }
    let raised = Rlimit {
        current: before.maximum,
        maximum: before.maximum,
    };
    match setrlimit(Resource::Nofile, raised) {
        Ok(()) => {
            let now = getrlimit(Resource::Nofile).current;
            tracing::info!(
                "open files: soft limit raised from {soft} to {}",
                now.map_or_else(|| "unlimited".to_string(), |n| n.to_string())
            );
            now
        }
        Err(e) => {
            tracing::warn!(error = %e, "open files: cannot raise the soft limit {soft}");
            Some(soft)
        }
    }
}

/// How many sessions `limit` descriptors can hold on `store_kind` (`None` = no limit).
pub fn session_capacity(limit: Option<u64>, store_kind: &str) -> Option<u64> {
    limit.map(|l| l.saturating_sub(BASE_FDS) / fds_per_session(store_kind))
}

/// Warns, at start, when the open-file limit cannot hold `sessions` stored sessions.
pub fn check_capacity(limit: Option<u64>, store_kind: &str, sessions: usize) {
    let Some(capacity) = session_capacity(limit, store_kind) else {
        return;
    };
    if sessions as u64 <= capacity {
        tracing::info!(
            "open files: the limit ({}) holds about {capacity} running sessions on the {store_kind} \
             store ({} descriptors each); {sessions} are stored",
            limit.unwrap_or_default(),
            fds_per_session(store_kind),
        );
    } else {
        tracing::warn!(
            "open files: the limit ({}) holds about {capacity} running sessions on the {store_kind} \
             store ({} descriptors each), but {sessions} are stored; sessions past that will \
             fail to connect. Raise the hard limit (ulimit -Hn, LimitNOFILE=, docker --ulimit nofile=)",
            limit.unwrap_or_default(),
            fds_per_session(store_kind),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_counts_descriptors_per_store() {
        assert_eq!(session_capacity(None, "sqlite"), None);
        assert_eq!(session_capacity(Some(1024), "sqlite"), Some(384));
        assert_eq!(session_capacity(Some(300), "sqlite"), Some(22));
        assert_eq!(session_capacity(Some(1024), "mongodb"), Some(768));
        assert_eq!(session_capacity(Some(100), "sqlite"), Some(0));
    }

    #[test]
    fn raise_leaves_the_soft_limit_at_the_hard_limit() {
        let after = raise_nofile_limit();
        let now = getrlimit(Resource::Nofile);
        assert_eq!(after, now.current);
        assert_eq!(now.current, now.maximum);
    }
}
