//! Cluster mode: what the operations surfaces show about the cluster — the `cluster`
//! object of `GET /api/server/status`, the `wharf_cluster_*` series of `/metrics` and the
//! dashboard's worker column (which reads the status).
//!
//! Owns: [`ClusterView`] (a snapshot read from `wharf_workers` and `wharf_leases` on
//! request; nothing is cached, so every worker answers the same for the whole cluster) and
//! this process's cluster counters ([`takeover`], [`fenced`]), bumped by the lease loop
//! (`sessions::cluster`) and rendered by [`metrics`]. Called by `api::observability`.

use std::sync::{OnceLock, atomic::AtomicI64};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge},
    registry::Registry,
};
use serde::Serialize;

use super::ClusterSettings;
use crate::store::{self, mongo::cluster::ClusterStore};

/// The cluster as one worker sees it now.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterView {
    /// The answering worker's id.
    pub worker: String,
    /// Live workers (heartbeat within `WHARF_CLUSTER_DEAD_SECONDS`), by id.
    pub workers: Vec<WorkerView>,
    /// The leases of every session that should run, by session.
    pub leases: Vec<LeaseView>,
}

/// One live worker.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkerView {
    /// Worker id.
    pub id: String,
    /// Its advertised base URL.
    pub url: String,
    /// Sessions it accepts.
    pub capacity: u64,
    /// Sessions it ran at its last heartbeat.
    pub sessions: u64,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: i64,
}

/// One session's lease.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LeaseView {
    /// Session name.
    pub session: String,
    /// The worker holding the lease now (`null` when free or expired).
    pub owner: Option<String>,
    /// The worker placement chose.
    pub target: Option<String>,
    /// Fencing epoch of the last acquisition.
    pub epoch: i64,
    /// Milliseconds until the lease runs out (negative: expired).
    pub expires_in_ms: i64,
}

impl ClusterView {
    /// Reads the membership and the leases.
    ///
    /// # Errors
    /// The database failed.
    pub async fn read(store: &ClusterStore, settings: &ClusterSettings) -> store::Result<Self> {
        let now = crate::clock::now_ms();
        let dead = i64::try_from(settings.dead_after.as_millis()).unwrap_or(i64::MAX);
        let workers = store
            .live_workers(now - dead)
            .await?
            .into_iter()
            .map(|w| WorkerView {
                heartbeat_age_ms: (now - w.heartbeat_at).max(0),
                id: w.id,
                url: w.url,
                capacity: w.capacity,
                sessions: w.sessions,
            })
            .collect::<Vec<_>>();
        let leases = store
            .desired()
            .await?
            .into_iter()
            .map(|l| {
                let held = l.expires_at > now && l.owner.is_some();
                LeaseView {
                    owner: l.owner.filter(|_| held),
                    target: l.target,
                    epoch: l.epoch,
                    expires_in_ms: l.expires_at - now,
                    session: l.session,
                }
            })
            .collect();
        Ok(Self {
            worker: settings.worker_id.clone(),
            workers,
            leases,
        })
    }

    /// The worker each running session is on (held leases only).
    pub fn owner_of(&self, session: &str) -> Option<&str> {
        self.leases
            .iter()
            .find(|l| l.session == session)
            .and_then(|l| l.owner.as_deref())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: String,
}

struct Counters {
    takeovers: Counter,
    fenced: Counter,
    forwarded: Counter,
    from_peers: Counter,
}

fn counters() -> &'static Counters {
    static C: OnceLock<Counters> = OnceLock::new();
    C.get_or_init(|| Counters {
        takeovers: Counter::default(),
        fenced: Counter::default(),
        forwarded: Counter::default(),
        from_peers: Counter::default(),
    })
}

/// This worker forwarded a request to the worker running its session (`api::forward`).
pub fn forwarded() {
    counters().forwarded.inc();
}

/// This worker received a request another worker forwarded (a valid `X-Wharf-Cluster`).
pub fn from_peer() {
    counters().from_peers.inc();
}

/// This worker took over a session whose lease another worker held (it died, froze or
/// was cut off).
pub fn takeover() {
    counters().takeovers.inc();
}

/// This worker dropped a session because its lease was lost (fenced off).
pub fn fenced() {
    counters().fenced.inc();
}

/// The `wharf_cluster_*` series, OpenMetrics text without the final `# EOF` (appended to
/// the process registry's rendering by `api::observability`).
pub fn metrics(view: &ClusterView) -> String {
    let mut registry = Registry::with_prefix("wharf_cluster");
    let workers = Gauge::<i64, AtomicI64>::default();
    workers.set(i64::try_from(view.workers.len()).unwrap_or(i64::MAX));
    registry.register(
        "workers",
        "Live workers in the cluster (the same on every worker: aggregate with max)",
        workers,
    );
    let sessions = Family::<WorkerLabels, Gauge>::default();
    for w in &view.workers {
        let _ = sessions.get_or_create(&WorkerLabels {
            worker: w.id.clone(),
        });
    }
    for owner in view.leases.iter().filter_map(|l| l.owner.as_ref()) {
        sessions
            .get_or_create(&WorkerLabels {
                worker: owner.clone(),
            })
            .inc();
    }
    registry.register(
        "sessions",
        "Sessions whose lease each worker holds (the same on every worker)",
        sessions,
    );
    let c = counters();
    registry.register(
        "lease_takeovers",
        "Sessions this worker took over from a dead, frozen or cut-off worker",
        c.takeovers.clone(),
    );
    registry.register(
        "fenced",
        "Sessions this worker dropped because it lost their lease (fenced off)",
        c.fenced.clone(),
    );
    registry.register(
        "forwarded_requests",
        "Requests this worker forwarded to the worker running their session",
        c.forwarded.clone(),
    );
    registry.register(
        "peer_requests",
        "Requests other workers forwarded to this one (it runs their session)",
        c.from_peers.clone(),
    );
    let mut out = String::new();
    let _ = encode(&mut out, &registry);
    out.strip_suffix("# EOF\n").unwrap_or(&out).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_count_held_leases_per_live_worker() {
        let view = ClusterView {
            worker: "a".into(),
            workers: ["a", "b"]
                .iter()
                .map(|id| WorkerView {
                    id: (*id).into(),
                    url: String::new(),
                    capacity: 10,
                    sessions: 0,
                    heartbeat_age_ms: 0,
                })
                .collect(),
            leases: vec![
                LeaseView {
                    session: "s1".into(),
                    owner: Some("a".into()),
                    target: Some("a".into()),
                    epoch: 1,
                    expires_in_ms: 1000,
                },
                LeaseView {
                    session: "s2".into(),
                    owner: None,
                    target: Some("b".into()),
                    epoch: 3,
                    expires_in_ms: -5,
                },
            ],
        };
        let text = metrics(&view);
        assert!(text.contains("wharf_cluster_workers 2\n"), "{text}");
        assert!(
            text.contains("wharf_cluster_sessions{worker=\"a\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("wharf_cluster_sessions{worker=\"b\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains("wharf_cluster_lease_takeovers_total "),
            "{text}"
        );
        assert!(text.contains("wharf_cluster_fenced_total "), "{text}");
        assert!(!text.contains("# EOF"), "{text}");
        assert_eq!(view.owner_of("s1"), Some("a"));
        assert_eq!(view.owner_of("s2"), None);
    }
}
