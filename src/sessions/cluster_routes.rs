//! Cluster mode: where a request for a session must go (`api::forward` asks).
//!
//! Owns the routing snapshot of this worker: the live workers (id → advertised URL) and
//! the lease table, as the lease loop last read them (`sessions::cluster`, once per tick,
//! plus this worker's own placements and stops at once). A request is routed from memory
//! — no MongoDB read per request; only a session in transit (wanted, no live owner in the
//! snapshot) is looked up once in MongoDB ([`SessionManager::route_fresh`]), which keeps
//! the window after a placement or a takeover short without a read per request. Lives in
//! the manager's cluster context, as long as the manager.

use std::{
    collections::HashMap,
    sync::{Arc, RwLock},
};

use super::SessionManager;
use crate::{
    cluster::peer::PeerCredential,
    store::mongo::cluster::{LeaseRow, WorkerRow},
};

/// Where a session's requests are served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// It runs on this worker (or nowhere needs routing: not cluster mode).
    Local,
    /// Another live worker holds its lease.
    Remote {
        /// That worker's id.
        worker: String,
        /// Its advertised base URL.
        url: String,
    },
    /// It should run (started, not stopped) but no live worker holds it right now: it is
    /// being placed, claimed or handed over.
    Moving,
    /// It runs nowhere and should not (stopped, or unknown): any worker answers alike.
    Idle,
}

/// What the lease loop last saw.
#[derive(Debug, Default)]
struct Snapshot {
    /// Live workers: id → URL.
    workers: HashMap<String, String>,
    /// Lease documents by session (wanted ones, plus this worker's own changes).
    leases: HashMap<String, LeaseRow>,
    /// When they were read (Unix ms): a lease is judged as of then, since its renewals
    /// after that are not in the snapshot (a busy lease loop must not make every lease
    /// look expired).
    read_at: i64,
}

/// The routing snapshot (see the module docs).
#[derive(Debug, Default)]
pub(super) struct Routes {
    snap: RwLock<Arc<Snapshot>>,
}

impl Routes {
    fn read(&self) -> Arc<Snapshot> {
        self.snap
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    fn edit(&self, f: impl FnOnce(&mut Snapshot)) {
        let mut guard = self
            .snap
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut next = Snapshot {
            workers: guard.workers.clone(),
            leases: guard.leases.clone(),
            read_at: guard.read_at,
        };
        f(&mut next);
        *guard = Arc::new(next);
    }

    /// The lease loop's view of the cluster, once per tick.
    pub(super) fn publish(&self, live: &[WorkerRow], leases: &[LeaseRow]) {
        let next = Snapshot {
            workers: live.iter().map(|w| (w.id.clone(), w.url.clone())).collect(),
            leases: leases
                .iter()
                .map(|l| (l.session.clone(), l.clone()))
                .collect(),
            read_at: crate::clock::now_ms(),
        };
        *self
            .snap
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(next);
    }

    /// This worker placed `session` on `target` (seen here before the next tick).
    pub(super) fn placed(&self, session: &str, target: &str) {
        self.edit(|s| {
            let lease = s
                .leases
                .entry(session.to_string())
                .or_insert_with(|| LeaseRow {
                    session: session.to_string(),
                    desired: true,
                    target: None,
                    owner: None,
                    epoch: 0,
                    expires_at: 0,
                });
            lease.desired = true;
            lease.target = Some(target.to_string());
        });
    }

    /// This worker stopped or deleted `session`: it runs nowhere now.
    pub(super) fn unwanted(&self, session: &str) {
        self.edit(|s| {
            s.leases.remove(session);
        });
    }

    fn update(&self, lease: Option<LeaseRow>, session: &str) {
        self.edit(|s| match lease {
            Some(l) => {
                s.leases.insert(session.to_string(), l);
            }
            None => {
                s.leases.remove(session);
            }
        });
    }
}

/// The route of `lease`, held if unexpired at `at` (Unix ms), against the live `workers`.
fn judge(me: &str, workers: &HashMap<String, String>, lease: Option<&LeaseRow>, at: i64) -> Route {
    let Some(lease) = lease.filter(|l| l.desired) else {
        return Route::Idle;
    };
    match lease.owner.as_deref() {
        Some(owner) if owner != me && lease.expires_at > at => match workers.get(owner) {
            Some(url) => Route::Remote {
                worker: owner.to_string(),
                url: url.clone(),
            },
            None => Route::Moving,
        },
        _ => Route::Moving,
    }
}

impl SessionManager {
    fn runs_here(&self, name: &str) -> bool {
        self.inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(name)
    }

    /// Where `name`'s requests go, from memory (see the module docs). Outside cluster
    /// mode always [`Route::Local`].
    pub fn route(&self, name: &str) -> Route {
        let Some(ctx) = self.inner.cluster.as_ref() else {
            return Route::Local;
        };
        if self.runs_here(name) {
            return Route::Local;
        }
        let snap = ctx.routes.read();
        judge(
            &ctx.settings.worker_id,
            &snap.workers,
            snap.leases.get(name),
            snap.read_at,
        )
    }

    /// Re-reads the live workers and the wanted leases (two commands) and publishes them,
    /// as the lease loop does each tick. For `GET /api/sessions`, which lists every
    /// session: a lease loop a tick (or a failed tick) behind must not make a session
    /// that runs elsewhere look stopped here, and drop out of the list.
    pub async fn refresh_routes(&self) {
        let Some(ctx) = self.inner.cluster.as_ref() else {
            return;
        };
        match ctx.live().await {
            Ok(live) => match ctx.store.desired().await {
                Ok(leases) => ctx.routes.publish(&live, &leases),
                Err(e) => tracing::warn!(error = %e, "cannot read the session leases"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot read the cluster members"),
        }
    }

    /// [`Self::route`] with the lease read from MongoDB (for a session in transit, or
    /// when its owner did not answer); the snapshot keeps what was read.
    pub async fn route_fresh(&self, name: &str) -> Route {
        let Some(ctx) = self.inner.cluster.as_ref() else {
            return Route::Local;
        };
        if self.runs_here(name) {
            return Route::Local;
        }
        let lease = match ctx.store.get(name).await {
            Ok(l) => l,
            Err(e) => {
                tracing::warn!(session = name, error = %e, "cannot read a session lease");
                return self.route(name);
            }
        };
        let route = judge(
            &ctx.settings.worker_id,
            &ctx.routes.read().workers,
            lease.as_ref(),
            crate::clock::now_ms(),
        );
        ctx.routes.update(lease, name);
        route
    }

    /// Cluster mode: a session this worker just took over (or is starting) is `STARTING`
    /// for a moment; a request that needs it waits until it leaves `STARTING` (at most
    /// `max`), so a request retried after a hand-over finds it `WORKING` instead of
    /// WAHA's 422. Returns at once outside cluster mode or in any other status.
    pub async fn settle(&self, name: &str, max: std::time::Duration) {
        if self.inner.cluster.is_none() {
            return;
        }
        let state = self
            .inner
            .running
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(name)
            .map(|h| h.state.clone());
        let Some(mut state) = state else {
            return;
        };
        let _ = tokio::time::timeout(
            max,
            state.wait_for(|s| s.status != crate::model::session::SessionStatus::Starting),
        )
        .await;
    }

    /// Cluster mode: the other live workers (id, URL), as the lease loop last saw them.
    pub fn peers(&self) -> Vec<(String, String)> {
        let Some(ctx) = self.inner.cluster.as_ref() else {
            return Vec::new();
        };
        let mut peers: Vec<(String, String)> = ctx
            .routes
            .read()
            .workers
            .iter()
            .filter(|(id, _)| **id != ctx.settings.worker_id)
            .map(|(id, url)| (id.clone(), url.clone()))
            .collect();
        peers.sort();
        peers
    }

    /// Cluster mode: the credential requests to peers are signed with.
    pub fn peer_credential(&self) -> Option<&PeerCredential> {
        self.inner.cluster.as_ref().map(|c| &c.settings.peer)
    }

    /// Cluster mode: how long the lease loop waits between rounds (how stale the routing
    /// snapshot can be); what `Retry-After` tells a client to wait for a moving session.
    pub fn cluster_tick(&self) -> Option<std::time::Duration> {
        self.inner.cluster.as_ref().map(|c| c.settings.tick())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: Option<&str>, desired: bool, expires_at: i64) -> LeaseRow {
        LeaseRow {
            session: "s".into(),
            desired,
            target: Some("w2".into()),
            owner: owner.map(str::to_string),
            epoch: 1,
            expires_at,
        }
    }

    #[test]
    fn a_session_goes_to_its_live_unexpired_owner_only() {
        let workers: HashMap<String, String> = [("w1", "http://a"), ("w2", "http://b")]
            .into_iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect();
        let now = crate::clock::now_ms();
        let later = now + 10_000;
        assert_eq!(
            judge("w1", &workers, Some(&lease(Some("w2"), true, later)), now),
            Route::Remote {
                worker: "w2".into(),
                url: "http://b".into()
            }
        );
        // Expired, dead owner, no owner yet, ours but not running: in transit.
        for l in [
            lease(Some("w2"), true, 1),
            lease(Some("w3"), true, later),
            lease(None, true, 0),
            lease(Some("w1"), true, later),
        ] {
            assert_eq!(judge("w1", &workers, Some(&l), now), Route::Moving, "{l:?}");
        }
        assert_eq!(
            judge("w1", &workers, Some(&lease(Some("w2"), false, later)), now),
            Route::Idle
        );
        assert_eq!(judge("w1", &workers, None, now), Route::Idle);
        // Judged as of the snapshot's read, not as of now.
        assert!(matches!(
            judge(
                "w1",
                &workers,
                Some(&lease(Some("w2"), true, now - 1)),
                now - 2
            ),
            Route::Remote { .. }
        ));
    }
}
