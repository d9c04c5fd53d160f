//! Cluster mode (`WHARF_CLUSTER=true`): several wharf workers on one MongoDB.
//!
//! Owns: the cluster settings ([`ClusterSettings`], parsed by `config`) and the fencing
//! token of one locally running session ([`Fence`]). The coordination itself — membership
//! heartbeat, lease acquisition and renewal, placement, failover, drain — is the session
//! manager's lease loop (`sessions::cluster`); the documents are `store::mongo::cluster`.
//! A [`Fence`] is created when this worker acquires a session's lease, shared by the
//! session's runtime, its device store (engine) and its event publication, and dies with
//! the session.
//!
//! The fencing model: a lease is valid on the holder only until `t0 + ttl - margin` on the
//! holder's **monotonic** clock, `t0` being taken *before* the acquiring or renewing
//! request was sent. A frozen (SIGSTOP) or partitioned holder therefore finds its fence
//! expired the moment it runs again, before it can write, even if no renewal ever told it
//! the lease was lost. Every write that matters checks [`Fence::holds`]: device keys and
//! Signal state (`engine::mongo_store`), new WhatsApp connections (`engine::transport`),
//! messages and webhook outbox rows (`sessions::delivery`, `sessions::runtime`). The device
//! document additionally carries the epoch, and its writes are filtered by `epoch ≤ mine`,
//! so even a write already in flight when the fence closed cannot overwrite a newer
//! owner's device keys.
//!
//! [`peer`] is the credential workers present to each other (`WHARF_CLUSTER_SECRET`);
//! [`fanout`] streams other workers' events to this worker's `/ws` clients; [`view`] is
//! what status, metrics and the dashboard show of the cluster.

pub mod fanout;
pub mod nudge;
pub mod peer;
pub mod view;

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use tokio_util::sync::CancellationToken;

/// `WHARF_CLUSTER*` settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// This worker's id (`WAHA_WORKER_ID`, or generated at boot).
    pub worker_id: String,
    /// `WHARF_ADVERTISE_URL`: where other workers reach this one.
    pub advertise_url: String,
    /// `WHARF_CLUSTER_CAPACITY` (500): sessions this worker accepts.
    pub capacity: u64,
    /// `WHARF_CLUSTER_LEASE_SECONDS` (10): lease length.
    pub lease_ttl: Duration,
    /// `WHARF_CLUSTER_DEAD_SECONDS` (15): no heartbeat for this long → the worker is dead.
    pub dead_after: Duration,
    /// `WHARF_CLUSTER_SECRET` (required): signs requests between workers.
    pub peer: peer::PeerCredential,
}

impl ClusterSettings {
    /// How often the lease loop runs: heartbeat, renewals, claims (a third of the lease,
    /// at most 2 s so takeovers are prompt).
    pub fn tick(&self) -> Duration {
        (self.lease_ttl / 3).min(Duration::from_secs(2))
    }

    /// Subtracted from the lease on the holder's monotonic clock: covers the wall-clock
    /// skew between workers and the time a write spends in flight (a fifth of the lease,
    /// at least 500 ms).
    pub fn margin(&self) -> Duration {
        (self.lease_ttl / 5).max(Duration::from_millis(500))
    }
}

/// A session's proof of ownership on this worker: the lease epoch and how long the lease
/// is provably held (monotonic clock). Cheap to clone; all clones see renewals and loss.
#[derive(Clone, Debug)]
pub struct Fence {
    inner: Arc<FenceInner>,
}

#[derive(Debug)]
struct FenceInner {
    epoch: i64,
    valid_until: Mutex<Instant>,
    revoked: AtomicBool,
    /// Cancelled once the fence is known lost (revoked, or found expired by the watcher).
    lost: CancellationToken,
}

/// A write refused because the lease is not provably held.
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the session's lease (epoch {epoch}) is not held by this worker any more")]
pub struct Fenced {
    /// The epoch of the lost lease.
    pub epoch: i64,
}

impl Fence {
    /// A fence for a lease of `epoch`, valid until `valid_until`.
    pub fn new(epoch: i64, valid_until: Instant) -> Self {
        Self {
            inner: Arc::new(FenceInner {
                epoch,
                valid_until: Mutex::new(valid_until),
                revoked: AtomicBool::new(false),
                lost: CancellationToken::new(),
            }),
        }
    }

    /// The lease epoch.
    pub fn epoch(&self) -> i64 {
        self.inner.epoch
    }

    fn deadline(&self) -> Instant {
        *self
            .inner
            .valid_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the lease is provably ours right now.
    pub fn holds(&self) -> bool {
        !self.inner.revoked.load(Ordering::Acquire) && Instant::now() < self.deadline()
    }

    /// `Ok` while [`Self::holds`].
    ///
    /// # Errors
    /// [`Fenced`] once the lease is not provably held.
    pub fn check(&self) -> Result<(), Fenced> {
        if self.holds() {
            Ok(())
        } else {
            self.inner.lost.cancel();
            Err(Fenced {
                epoch: self.inner.epoch,
            })
        }
    }

    /// A renewal succeeded: the lease holds until `until` (never shortened).
    pub fn extend(&self, until: Instant) {
        let mut d = self
            .inner
            .valid_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if until > *d {
            *d = until;
        }
    }

    /// The lease is known lost (a renewal found it taken, or the session was dropped).
    pub fn revoke(&self) {
        self.inner.revoked.store(true, Ordering::Release);
        self.inner.lost.cancel();
    }

    /// Resolves once the fence is lost: revoked, or its deadline passed without renewal.
    ///
    /// # Cancel safety
    /// Cancel safe (it only waits).
    pub async fn lost(&self) {
        loop {
            if !self.holds() {
                self.inner.lost.cancel();
                return;
            }
            let deadline = tokio::time::Instant::from_std(self.deadline());
            tokio::select! {
                () = self.inner.lost.cancelled() => return,
                () = tokio::time::sleep_until(deadline) => {}
            }
        }
    }
}
