//! Cluster mode on the session registry: membership heartbeat, session leases, placement,
//! failover and drain (`WHARF_CLUSTER=true`, MongoDB store only).
//!
//! Owns: this worker's lease loop ([`LeaseLoop`]: one task, started by
//! [`super::SessionManager::spawn_restore`] once the server answers, cancelled and joined
//! by [`super::SessionManager::shutdown`] before the sessions stop) and the fences of the
//! leases this worker holds. Each tick (`ClusterSettings::tick`) the loop
//! 1. heartbeats this worker's document (`wharf_workers`);
//! 2. renews every held lease with ONE `updateMany` (filtered on this worker's id, this
//!    process's run id and each lease's epoch), extending the fences on success; only when
//!    it matched fewer than it held does one `find` tell which were lost, and those
//!    sessions are dropped without writing (no logout, no status event);
//! 3. forgets sessions whose fence expired without a renewal (a frozen or cut-off worker);
//! 4. re-places wanted sessions whose target worker is dead (or unset) on the least-loaded
//!    live worker, and claims the free or expired ones placed on this worker, up to its
//!    capacity, starting them from the device keys in MongoDB (no QR).
//!
//! A user start places the session (least-loaded live worker); if that is this worker it
//! acquires and starts it at once, otherwise the target's loop claims it within a tick.
//! A user stop marks it unwanted and releases it. SIGTERM drains: the loop is stopped,
//! this worker leaves the membership, each session is placed elsewhere, stopped here
//! (flushing its keys while the lease still holds) and only then released, so the next
//! owner connects after this one disconnected; then the target is told to claim it now
//! (`cluster::nudge` → [`SessionManager::claim_soon`]: its loop wakes and claims the
//! sessions handed over concurrently) instead of on its next tick.

use std::{
    collections::HashMap,
    sync::Mutex,
    time::{Duration, Instant},
};

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{Result, STOP_DEADLINE, SessionManager};
use crate::{
    cluster::{ClusterSettings, Fence},
    store::{
        SessionRecord,
        mongo::cluster::{ClusterStore, LeaseRow, WorkerRow},
    },
};

/// The cluster state of a manager (present only in cluster mode).
pub(super) struct Ctx {
    pub(super) settings: ClusterSettings,
    pub(super) store: ClusterStore,
    /// What requests are routed by (`sessions::cluster_routes`), refreshed every tick.
    pub(super) routes: super::cluster_routes::Routes,
    /// This process's incarnation, stored with every lease it takes: renewals match it, so
    /// a restarted worker with the same `WAHA_WORKER_ID` never renews its predecessor's.
    run: String,
    /// Leases this worker holds, by session.
    fences: Mutex<HashMap<String, Fence>>,
    /// The lease loop, joined on shutdown.
    task: Mutex<Option<LeaseLoop>>,
    /// Wakes the lease loop for a round now (a draining peer handed a session over).
    wake: tokio::sync::Notify,
    /// The sessions peers handed over since the loop last looked (claimed first).
    handed: Mutex<Vec<String>>,
}

/// The running lease loop: its token and task.
struct LeaseLoop {
    cancel: CancellationToken,
    join: JoinHandle<()>,
}

impl Ctx {
    pub(super) fn new(settings: ClusterSettings, store: ClusterStore) -> Self {
        Self {
            settings,
            store,
            routes: super::cluster_routes::Routes::default(),
            run: uuid::Uuid::new_v4().simple().to_string(),
            fences: Mutex::new(HashMap::new()),
            task: Mutex::new(None),
            wake: tokio::sync::Notify::new(),
            handed: Mutex::new(Vec::new()),
        }
    }

    fn fences(&self) -> std::sync::MutexGuard<'_, HashMap<String, Fence>> {
        self.fences.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn me(&self) -> &str {
        &self.settings.worker_id
    }

    /// This worker's id and this process's incarnation: who a lease names.
    fn holder(&self) -> (&str, &str) {
        (&self.settings.worker_id, &self.run)
    }

    fn ttl_ms(&self) -> i64 {
        i64::try_from(self.settings.lease_ttl.as_millis()).unwrap_or(i64::MAX)
    }

    /// How long a lease taken or renewed by a request sent at `t0` provably holds here.
    fn valid_until(&self, t0: Instant) -> Instant {
        t0 + self.settings.lease_ttl - self.settings.margin()
    }

    pub(super) async fn live(&self) -> Result<Vec<WorkerRow>> {
        let dead = i64::try_from(self.settings.dead_after.as_millis()).unwrap_or(i64::MAX);
        Ok(self
            .store
            .live_workers(crate::clock::now_ms() - dead)
            .await?)
    }
}

/// The least-loaded live worker with room, `load` being the wanted sessions placed on each;
/// `except` is never chosen (a draining worker). Ties go to `prefer`, then by id.
fn least_loaded<'a>(
    live: &'a [WorkerRow],
    load: &HashMap<String, u64>,
    except: Option<&str>,
    prefer: &str,
) -> Option<&'a WorkerRow> {
    live.iter()
        .filter(|w| Some(w.id.as_str()) != except)
        .filter(|w| load.get(&w.id).copied().unwrap_or(0) < w.capacity)
        .min_by(|a, b| {
            let ratio = |w: &WorkerRow| {
                // Compare load/capacity without floats: a.load * b.cap vs b.load * a.cap.
                u128::from(load.get(&w.id).copied().unwrap_or(0))
            };
            (ratio(a) * u128::from(b.capacity))
                .cmp(&(ratio(b) * u128::from(a.capacity)))
                .then_with(|| (b.id == prefer).cmp(&(a.id == prefer)))
                .then_with(|| a.id.cmp(&b.id))
        })
}

fn loads(leases: &[LeaseRow]) -> HashMap<String, u64> {
    let mut load = HashMap::new();
    for l in leases.iter().filter(|l| l.desired) {
        if let Some(t) = &l.target {
            *load.entry(t.clone()).or_insert(0) += 1;
        }
    }
    load
}

impl SessionManager {
    fn cluster(&self) -> Option<&Ctx> {
        self.inner.cluster.as_ref()
    }

    /// Cluster mode, user start: places `record` and, when it lands here, acquires its lease.
    /// `Some(fence)`: start it here now; `None`: another worker will (or does) run it.
    /// Outside cluster mode: `Ok(None)` is never returned (callers check
    /// [`Self::is_cluster`] first).
    pub(super) async fn place_for_start(&self, record: &SessionRecord) -> Result<Option<Fence>> {
        let Some(ctx) = self.cluster() else {
            return Ok(None);
        };
        if let Some(fence) = ctx.fences().get(&record.name).filter(|f| f.holds()) {
            // A restart (stop + start) keeps the lease it already holds.
            return Ok(Some(fence.clone()));
        }
        let live = ctx.live().await?;
        let leases = ctx.store.desired().await?;
        let mut load = loads(&leases);
        // This session's own placement does not count against its current target.
        if let Some(t) = leases
            .iter()
            .find(|l| l.session == record.name)
            .and_then(|l| l.target.clone())
        {
            load.entry(t).and_modify(|n| *n = n.saturating_sub(1));
        }
        let target = least_loaded(&live, &load, None, ctx.me())
            .map_or_else(|| ctx.me().to_string(), |w| w.id.clone());
        ctx.store.place(&record.name, &target, None).await?;
        ctx.routes.placed(&record.name, &target);
        tracing::info!(session = record.name, worker = target, "session placed");
        if target != ctx.me() {
            return Ok(None);
        }
        self.acquire(ctx, &record.name).await
    }

    /// Takes the lease of `name` for this worker; `Some(fence)` when it is ours now.
    async fn acquire(&self, ctx: &Ctx, name: &str) -> Result<Option<Fence>> {
        let t0 = Instant::now();
        let epoch = ctx
            .store
            .acquire(name, ctx.holder(), crate::clock::now_ms(), ctx.ttl_ms())
            .await?;
        let Some(epoch) = epoch else {
            return Ok(None);
        };
        let fence = Fence::new(epoch, ctx.valid_until(t0));
        ctx.fences().insert(name.to_string(), fence.clone());
        tracing::info!(session = name, epoch, "session lease acquired");
        Ok(Some(fence))
    }

    /// Cluster mode, user stop or delete: the session should run nowhere; this worker's
    /// lease (if any) is released.
    pub(super) async fn unwant(&self, name: &str) -> Result<()> {
        let Some(ctx) = self.cluster() else {
            return Ok(());
        };
        ctx.store.unwant(name).await?;
        ctx.routes.unwanted(name);
        let fence = ctx.fences().remove(name);
        if let Some(fence) = fence {
            fence.revoke();
            ctx.store.release(name, ctx.me(), fence.epoch()).await?;
        }
        Ok(())
    }

    /// Cluster mode, boot: the sessions WAHA would restart (`all`, named) are marked wanted
    /// (placed) unless they already are; the lease loops start them wherever they land.
    pub(super) async fn want_all(&self, names: &[String]) -> Result<()> {
        let Some(ctx) = self.cluster() else {
            return Ok(());
        };
        let wanted: Vec<String> = ctx
            .store
            .desired()
            .await?
            .into_iter()
            .map(|l| l.session)
            .collect();
        for name in names.iter().filter(|n| !wanted.contains(n)) {
            if let Some(record) = self.inner.store.get_session(name).await? {
                // The loop claims it if it lands here (no lease is taken at boot).
                let live = ctx.live().await?;
                let leases = ctx.store.desired().await?;
                let target = least_loaded(&live, &loads(&leases), None, ctx.me())
                    .map_or_else(|| ctx.me().to_string(), |w| w.id.clone());
                ctx.store.place(&record.name, &target, None).await?;
            }
        }
        Ok(())
    }

    /// Starts the lease loop (cluster mode; no-op otherwise). Owned by the manager.
    pub(super) fn spawn_lease_loop(&self) {
        let Some(ctx) = self.cluster() else {
            return;
        };
        let cancel = self.inner.cancel.child_token();
        let this = self.clone();
        let token = cancel.clone();
        let join = self.inner.rt.spawn(async move {
            let tick = this
                .cluster()
                .map_or(Duration::from_secs(2), |c| c.settings.tick());
            let Some(ctx) = this.cluster() else {
                return;
            };
            let mut every = tokio::time::interval(tick);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let woken = tokio::select! {
                    () = token.cancelled() => return,
                    _ = every.tick() => false,
                    // A peer handed a session over: claim it now, not a tick later (a wake
                    // during a round is kept, and runs the next round right after it).
                    () = ctx.wake.notified() => true,
                };
                if woken {
                    every.reset();
                    tokio::select! {
                        () = token.cancelled() => return,
                        () = this.claim_handed(ctx) => {}
                    }
                }
                tokio::select! {
                    () = token.cancelled() => return,
                    () = this.lease_tick() => {}
                }
            }
        });
        let old = ctx
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .replace(LeaseLoop { cancel, join });
        if let Some(old) = old {
            old.cancel.cancel();
            old.join.abort();
        }
    }

    /// One round of the lease loop (see the module docs).
    async fn lease_tick(&self) {
        let Some(ctx) = self.cluster() else {
            return;
        };
        let running = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.len()
        };
        let beat = WorkerRow {
            id: ctx.me().to_string(),
            url: ctx.settings.advertise_url.clone(),
            capacity: ctx.settings.capacity,
            sessions: u64::try_from(running).unwrap_or(u64::MAX),
            heartbeat_at: crate::clock::now_ms(),
        };
        if let Err(e) = ctx.store.heartbeat(&beat).await {
            tracing::warn!(error = %e, "cluster heartbeat failed");
        }
        self.renew_all(ctx).await;
        self.forget_fenced(ctx).await;
        if let Err(e) = self.claim(ctx).await {
            tracing::warn!(error = %e, "cluster claim round failed");
        }
    }

    /// Renews every lease this worker provably holds with one command (`updateMany`), and
    /// only when it matched fewer finds out, with one `find`, which were lost: those are
    /// revoked (dropped without writing by [`Self::forget_fenced`]), the rest extended.
    /// `t0` is taken before the command: a renewal extends a fence to `t0 + lease − margin`
    /// on the monotonic clock, whatever the command's latency.
    async fn renew_all(&self, ctx: &Ctx) {
        let held: Vec<(String, Fence)> = ctx
            .fences()
            .iter()
            .filter(|(_, fence)| fence.holds())
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect();
        if held.is_empty() {
            return;
        }
        let t0 = Instant::now();
        let expires_at = crate::clock::now_ms() + ctx.ttl_ms();
        let keys: Vec<(&str, i64)> = held.iter().map(|(n, f)| (n.as_str(), f.epoch())).collect();
        let matched = match ctx.store.renew_all(ctx.holder(), &keys, expires_at).await {
            Ok(n) => n,
            Err(e) => {
                // The fences run out by themselves if this goes on.
                tracing::warn!(error = %e, leases = held.len(), "lease renewal failed");
                return;
            }
        };
        if usize::try_from(matched).is_ok_and(|m| m == held.len()) {
            for (_, fence) in &held {
                fence.extend(ctx.valid_until(t0));
            }
            return;
        }
        let names: Vec<&str> = keys.iter().map(|(n, _)| *n).collect();
        let renewed = match ctx.store.renewed(ctx.holder(), &names, expires_at).await {
            Ok(r) => r,
            Err(e) => {
                // Which ones were renewed is unknown: extend none (the lost ones must not
                // be), and let the next tick renew them again.
                tracing::warn!(error = %e, "cannot tell which leases were lost");
                return;
            }
        };
        for (name, fence) in &held {
            if renewed
                .iter()
                .any(|(n, epoch)| n == name && *epoch == fence.epoch())
            {
                fence.extend(ctx.valid_until(t0));
            } else {
                tracing::warn!(
                    session = name,
                    epoch = fence.epoch(),
                    "session lease taken over or withdrawn; dropping the session here"
                );
                fence.revoke();
            }
        }
    }

    /// Drops, without writing anything, every session whose fence no longer holds.
    async fn forget_fenced(&self, ctx: &Ctx) {
        let lost: Vec<(String, Fence)> = ctx
            .fences()
            .iter()
            .filter(|(_, f)| !f.holds())
            .map(|(n, f)| (n.clone(), f.clone()))
            .collect();
        for (name, fence) in lost {
            let _guard = self.lock(&name).await;
            // Still the same lease (a user call may have replaced it meanwhile)?
            let same = ctx
                .fences()
                .get(&name)
                .is_some_and(|f| f.epoch() == fence.epoch() && !f.holds());
            if !same {
                continue;
            }
            ctx.fences().remove(&name);
            fence.revoke();
            crate::cluster::view::fenced();
            let handle = {
                let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
                running.remove(&name)
            };
            if let Some(handle) = handle {
                // Every write is fenced off already: stopping flushes nothing.
                handle.stop(STOP_DEADLINE).await;
                tracing::info!(session = name, "session dropped (lease lost)");
            }
        }
    }

    /// Re-places orphans (target dead or unset) and claims what is placed here.
    async fn claim(&self, ctx: &Ctx) -> Result<()> {
        let started = Instant::now();
        let live = ctx.live().await?;
        let mut leases = ctx.store.desired().await?;
        ctx.routes.publish(&live, &leases);
        let now = crate::clock::now_ms();
        let is_live = |id: &str| live.iter().any(|w| w.id == id);
        let mut load = loads(&leases);
        for lease in &mut leases {
            let held = lease.owner.as_deref().is_some_and(is_live) && lease.expires_at > now;
            if held {
                continue;
            }
            let orphan = lease.target.as_deref().is_none_or(|t| !is_live(t));
            if orphan {
                let Some(to) = least_loaded(&live, &load, None, ctx.me()) else {
                    continue;
                };
                let to = to.id.clone();
                if ctx
                    .store
                    .place(&lease.session, &to, Some(lease.target.as_deref()))
                    .await?
                {
                    tracing::info!(
                        session = lease.session,
                        from = lease.target,
                        to,
                        "session re-placed (its worker is gone)"
                    );
                    if let Some(old) = &lease.target {
                        load.entry(old.clone())
                            .and_modify(|n| *n = n.saturating_sub(1));
                    }
                    *load.entry(to.clone()).or_insert(0) += 1;
                    lease.target = Some(to);
                }
            }
            // A claim starts a session (a few hundred ms); many at once (a mass
            // placement, a takeover) would hold the loop past its leases' renewals, so a
            // round claims for at most one tick and leaves the rest to the next.
            if lease.target.as_deref() == Some(ctx.me()) && started.elapsed() < ctx.settings.tick()
            {
                self.claim_one(ctx, &lease.session).await;
                // Another worker held it last: a takeover (for `/metrics`).
                let taken = ctx
                    .fences()
                    .get(&lease.session)
                    .is_some_and(|f| f.epoch() > lease.epoch);
                if taken && lease.owner.as_deref().is_some_and(|o| o != ctx.me()) {
                    crate::cluster::view::takeover();
                }
            }
        }
        Ok(())
    }

    /// Acquires and starts one session placed here, unless it runs here already or this
    /// worker is full.
    async fn claim_one(&self, ctx: &Ctx, name: &str) {
        let _guard = self.lock(name).await;
        let full = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            if running.contains_key(name) {
                return;
            }
            running.len() >= usize::try_from(ctx.settings.capacity).unwrap_or(usize::MAX)
        };
        if full {
            return;
        }
        let record = match self.inner.store.get_session(name).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                // Deleted: nothing to run.
                let _ = ctx.store.forget(name).await;
                return;
            }
            Err(e) => {
                tracing::warn!(session = name, error = %e, "cannot read a session to claim");
                return;
            }
        };
        let fence = match self.acquire(ctx, name).await {
            Ok(Some(f)) => f,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(session = name, error = %e, "cannot acquire a session lease");
                return;
            }
        };
        if let Err(e) = self.spawn_runtime(&record, Some(fence)).await {
            tracing::error!(session = name, error = %e, "cannot start a claimed session");
            return;
        }
        tracing::info!(session = name, "session claimed");
        // Its undelivered webhooks are this worker's to deliver now.
        self.inner.events.resume(&[name.to_string()]).await;
    }

    /// Shutdown, cluster mode: stops the lease loop, leaves the membership, hands every
    /// session to another worker (placed there, stopped here, then released), in that
    /// order so the next owner never connects while this one still does.
    pub(super) async fn drain(&self) {
        let Some(ctx) = self.cluster() else {
            return;
        };
        let task = ctx.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(LeaseLoop { cancel, join }) = task {
            cancel.cancel();
            let _ = join.await;
        }
        if let Err(e) = ctx.store.leave(ctx.me()).await {
            tracing::warn!(error = %e, "cannot leave the cluster membership");
        }
        let live = ctx.live().await.unwrap_or_default();
        let leases = ctx.store.desired().await.unwrap_or_default();
        let mut load = loads(&leases);
        let handles: Vec<(String, super::runtime::RuntimeHandle)> = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.drain().collect()
        };
        let count = handles.len();
        let moves = handles.into_iter().map(|(name, handle)| {
            let target = least_loaded(&live, &load, Some(ctx.me()), "");
            let to = target.map(|w| w.id.clone());
            let url = target.map(|w| w.url.clone());
            if let Some(to) = &to {
                *load.entry(to.clone()).or_insert(0) += 1;
            }
            async move {
                if let Some(to) = &to
                    && let Err(e) = ctx.store.place(&name, to, Some(Some(ctx.me()))).await
                {
                    tracing::warn!(session = name, error = %e, "cannot hand the session over");
                }
                handle.stop(STOP_DEADLINE).await;
                let fence = ctx.fences().remove(&name);
                if let Some(fence) = fence {
                    fence.revoke();
                    if let Err(e) = ctx.store.release(&name, ctx.me(), fence.epoch()).await {
                        tracing::warn!(session = name, error = %e, "cannot release the lease");
                    }
                }
                // The target claims it now rather than on its next tick (up to 2 s later).
                if let Some(url) = &url
                    && let Err(e) =
                        crate::cluster::nudge::claim_now(url, &ctx.settings.peer, &name).await
                {
                    tracing::info!(session = name, to, error = %e, "the target will claim on its own tick");
                }
                tracing::info!(session = name, to, "session handed over");
            }
        });
        futures_util::future::join_all(moves).await;
        if count > 0 {
            tracing::info!("drained {count} sessions to other workers");
        }
    }

    /// Cluster mode: a peer handed `session` over (`POST /api/cluster/claim`, a draining
    /// peer): the lease loop claims it now and runs a round. No-op otherwise.
    pub fn claim_soon(&self, session: Option<String>) {
        if let Some(ctx) = self.cluster() {
            if let Some(s) = session {
                ctx.handed.lock().unwrap_or_else(|p| p.into_inner()).push(s);
            }
            ctx.wake.notify_one();
        }
    }

    /// The lease loop, woken: claims the sessions handed over that are still placed here,
    /// all at once (a round claims one at a time, for at most a tick).
    async fn claim_handed(&self, ctx: &Ctx) {
        let mut names: Vec<String> =
            std::mem::take(&mut *ctx.handed.lock().unwrap_or_else(|p| p.into_inner()));
        names.sort();
        names.dedup();
        let claims = names.iter().map(|name| async move {
            match ctx.store.get(name).await {
                Ok(Some(l)) if l.desired && l.target.as_deref() == Some(ctx.me()) => {
                    self.claim_one(ctx, name).await;
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(session = name, error = %e, "cannot read a lease handed over")
                }
            }
        });
        futures_util::future::join_all(claims).await;
    }

    /// Whether cluster mode is on.
    pub fn is_cluster(&self) -> bool {
        self.inner.cluster.is_some()
    }

    /// Cluster mode: the worker a session not running here is placed on or held by.
    pub(super) async fn remote_worker(&self, name: &str) -> Option<String> {
        let ctx = self.cluster()?;
        let lease = ctx.store.get(name).await.ok()??;
        lease
            .desired
            .then(|| lease.owner.or(lease.target))
            .flatten()
    }
}
