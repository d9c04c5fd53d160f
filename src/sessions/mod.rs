//! The session registry: which sessions exist (the store) and which run (this process).
//!
//! Owns: per-session runtimes ([`runtime::RuntimeHandle`]), the per-name lock that serializes
//! mutating calls (WAHA's `AsyncLock`), worker assignment, boot restoration, and the way to
//! a WORKING session's live [`engine::Session`] ([`SessionManager::engine`]); the domain
//! operations are in [`chatting`] and [`groups`]. Built once
//! by `app::App::build` with the runtime handle and a child of the root cancellation token;
//! lives for the process. Never imports actix: handlers call these methods (and the
//! orchestration in [`chatting`]) and map [`Error`] to WAHA's bodies in `api/error.rs`.

pub mod calls;
pub mod chat_actions;
pub mod chatting;
pub mod cluster;
pub mod cluster_routes;
pub mod contacts;
pub mod convert;
pub mod delivery;
pub mod groups;
pub mod history;
pub mod inbox;
pub mod labels;
pub mod presence;
pub mod profile;
pub mod runtime;
pub mod sending;
pub mod status;
pub mod status_posts;

use std::{
    collections::{HashMap, HashSet},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::Duration,
};

use futures_util::StreamExt;
use tokio::task::JoinHandle;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::runtime::{LiveState, RuntimeHandle};
use crate::{
    engine::{self, StartSpec},
    model::session::{MeInfo, SessionConfig, SessionStatus},
    store::{self, SessionRecord, Store},
};

/// How long a stopping session may take before its task is aborted; at shutdown, how long
/// all sessions together may take (they stop in parallel under this one deadline).
pub const STOP_DEADLINE: Duration = Duration::from_secs(5);

/// Sessions started at a time by the boot restore (issue 16: bounded, so 10,000 stored
/// sessions neither start one by one nor all at once against the store).
pub const RESTORE_PARALLELISM: usize = 32;

/// Errors of the session layer (data only; WAHA wording lives in `api/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No session with that name is stored.
    #[error("session {0:?} not found")]
    NotFound(String),
    /// Creating a session whose name is taken.
    #[error("session {0:?} already exists")]
    AlreadyExists(String),
    /// Starting a session that is running.
    #[error("session {0:?} is already started")]
    AlreadyStarted(String),
    /// The session is not in a status the operation needs.
    #[error("session {session:?} is {status:?}, expected one of {expected:?}")]
    WrongStatus {
        /// Session name.
        session: String,
        /// Its status now.
        status: SessionStatus,
        /// What the operation needs.
        expected: Vec<SessionStatus>,
    },
    /// The session is not running (request-code and similar routes).
    #[error("session {0:?} is not running")]
    NotRunning(String),
    /// A message id that is not WAHA's `{fromMe}_{chat}_{id}[_{participant}]` form.
    #[error("invalid message id {0:?}")]
    BadMessageId(String),
    /// The message is not in the session's history.
    #[error("message {0:?} not found")]
    MessageNotFound(String),
    /// A pairing code can only be requested while the QR is shown.
    #[error("can request a code only in SCAN_QR_CODE, not {status:?}")]
    CodeWrongStatus {
        /// Current status.
        status: SessionStatus,
    },
    /// A send was refused before anything was sent (bad `file`, fetch failure…).
    #[error(transparent)]
    Media(sending::MediaError),
    /// The engine refused.
    #[error(transparent)]
    Engine(#[from] engine::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// Result alias of the session layer.
pub type Result<T> = std::result::Result<T, Error>;

/// What the API shows of a session (`SessionInfo` / `SessionDTO`).
#[derive(Debug, Clone)]
pub struct SessionView {
    /// Name (id).
    pub name: String,
    /// Current status.
    pub status: SessionStatus,
    /// Stored config.
    pub config: Option<SessionConfig>,
    /// The account, when known.
    pub me: Option<MeInfo>,
    /// Last activity, ms.
    pub activity_ms: Option<i64>,
    /// Worker the session runs on, when running.
    pub assigned_worker: Option<String>,
}

/// Settings the manager needs from `Config`.
#[derive(Debug, Clone)]
pub struct ManagerSettings {
    /// `WAHA_WORKER_ID`.
    pub worker_id: String,
    /// `WHARF_WA_URL` (mock-network builds).
    pub wa_url: Option<String>,
    /// `WHARF_WA_VERSION`.
    pub wa_version: (u32, u32, u32),
    /// `WHATSAPP_PROXY_SERVER` (+ `_USERNAME`, `_PASSWORD`): sessions without their own
    /// `config.proxy` use it.
    pub proxy: Option<crate::model::session::ProxyConfig>,
    /// `WAHA_SESSION_CONFIG_IGNORE_*`, `WAHA_CLIENT_*`: applied to created/updated configs.
    pub defaults: crate::model::session::SessionDefaults,
    /// `WHARF_HISTORY_SYNC_DEPTH`: newest synced-history messages kept per chat.
    pub history_depth: usize,
    /// No QR or login within this long → the attempt failed (then retried with backoff).
    pub connect_timeout: Duration,
    /// `WHARF_DEVICE_STORE_IDLE_SECONDS`: idle embedded device stores close (0 = never).
    pub device_store_idle: Duration,
    /// `WHARF_PREKEY_UPLOAD_COUNT`: one-time pre-keys per upload batch.
    pub prekey_upload_count: usize,
    /// QR and restart timers.
    pub timers: runtime::Timers,
    /// `WHARF_CLUSTER`: leases, placement and failover (`cluster`); needs MongoDB.
    pub cluster: Option<crate::cluster::ClusterSettings>,
}

/// What [`SessionManager::shutdown`] did, for the log and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShutdownReport {
    /// Sessions that were running (or queued for restore) when shutdown began.
    pub sessions: usize,
    /// Of those, how many stopped by themselves within the deadline, their client's final
    /// flush done (the rest were aborted).
    pub flushed: usize,
    /// Wall time of the whole session shutdown.
    pub elapsed: Duration,
}

/// Cheap-to-clone handle to the registry.
#[derive(Clone)]
pub struct SessionManager {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    messages: crate::messages::MessageStore,
    events: crate::events::EventBus,
    media: crate::media::MediaService,
    settings: ManagerSettings,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    tracker: TaskTracker,
    running: Mutex<HashMap<String, RuntimeHandle>>,
    /// Sessions the boot restore will start but has not yet: shown as `STARTING`. A user
    /// start/stop/restart/update/delete takes the name out (under its lock), so the restore
    /// then leaves it alone.
    queued: Mutex<HashSet<String>>,
    /// The boot restore task (at most one); joined by [`SessionManager::shutdown`].
    restore: Mutex<Option<JoinHandle<()>>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Bumped after every write of session records or stored accounts made through the
    /// registry: part of [`SessionManager::list_fingerprint`].
    records_gen: AtomicU64,
    /// Cluster mode's state (`None` otherwise).
    cluster: Option<cluster::Ctx>,
}

impl SessionManager {
    /// A registry over `store`; sessions run on `rt` under children of `cancel`.
    pub fn new(
        store: Store,
        messages: crate::messages::MessageStore,
        events: crate::events::EventBus,
        media: crate::media::MediaService,
        settings: ManagerSettings,
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
    ) -> Self {
        let cluster = settings.cluster.clone().and_then(|c| {
            let Some(cs) = store.cluster() else {
                tracing::error!("WHARF_CLUSTER needs the MongoDB store; running alone");
                return None;
            };
            Some(cluster::Ctx::new(c, cs))
        });
        Self {
            inner: Arc::new(Inner {
                cluster,
                store,
                messages,
                events,
                media,
                settings,
                rt,
                cancel,
                tracker: TaskTracker::new(),
                running: Mutex::new(HashMap::new()),
                queued: Mutex::new(HashSet::new()),
                restore: Mutex::new(None),
                locks: Mutex::new(HashMap::new()),
                records_gen: AtomicU64::new(0),
            }),
        }
    }

    /// The message/event sink of a session: config from the record a running session was
    /// started with (what the store holds: a config change restarts it), else read from
    /// the store. Saves a store round trip per API send (issue 16).
    pub async fn inbox(&self, name: &str) -> Result<inbox::Inbox> {
        let running = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.get(name).and_then(|h| h.record.clone())
        };
        if let Some(record) = running {
            return Ok(self.inbox_for(&record));
        }
        let record = self.record(name).await?;
        Ok(self.inbox_for(&record))
    }

    /// `engine.event` is rendered while a webhook of the session (or the global one) names
    /// it, or a WebSocket client asks for it (never through `*`).
    fn engine_events_wanted(
        &self,
        record: &SessionRecord,
    ) -> engine::engine_events::EngineEventsWanted {
        let bus = self.inner.events.clone();
        let named = |events: &[String]| events.iter().any(|e| e == "engine.event");
        let hooks = record
            .config
            .as_ref()
            .and_then(|c| c.webhooks.as_deref())
            .unwrap_or_default()
            .iter()
            .chain(bus.settings().global_webhook.as_ref())
            .any(|h| named(&h.events));
        engine::engine_events::EngineEventsWanted(std::sync::Arc::new(move || {
            hooks || bus.engine_event_listeners() > 0
        }))
    }

    fn inbox_for(&self, record: &SessionRecord) -> inbox::Inbox {
        inbox::Inbox {
            session: record.name.clone(),
            config: record.config.clone(),
            messages: self.inner.messages.clone(),
            events: self.inner.events.clone(),
            store: self.inner.store.clone(),
            media: self.inner.media.clone(),
            history_depth: self.inner.settings.history_depth,
            fence: None,
        }
    }

    /// The event bus (WebSocket subscriptions, dead letters).
    pub fn events(&self) -> &crate::events::EventBus {
        &self.inner.events
    }

    /// The message store.
    pub fn messages(&self) -> &crate::messages::MessageStore {
        &self.inner.messages
    }

    /// The store behind the registry.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// Serializes mutating calls per session name (WAHA: `AsyncLock` per session).
    async fn lock(&self, name: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut locks = self.inner.locks.lock().unwrap_or_else(|p| p.into_inner());
            locks.entry(name.to_string()).or_default().clone()
        };
        lock.lock_owned().await
    }

    fn live(&self, name: &str) -> Option<LiveState> {
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        running.get(name).map(|h| h.state.borrow().clone())
    }

    /// The live state of a running session (for the auth and chat routes).
    pub fn live_state(&self, name: &str) -> Option<LiveState> {
        self.live(name)
    }

    /// Whether the boot restore has yet to start `name`.
    fn is_queued(&self, name: &str) -> bool {
        let queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.contains(name)
    }

    /// Takes `name` out of the restore queue; whether it was in it.
    fn dequeue(&self, name: &str) -> bool {
        let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.remove(name)
    }

    /// Current status of a session that exists: running status, `STARTING` while queued for
    /// restore, or `STOPPED`.
    pub fn status_of(&self, name: &str) -> SessionStatus {
        // Queue first, running second: a start moves a session from one to the other (under
        // the `running` lock), so this order never sees it in neither.
        let queued = self.is_queued(name);
        match self.live(name) {
            Some(s) => s.status,
            None if queued => SessionStatus::Starting,
            None => SessionStatus::Stopped,
        }
    }

    /// The view of a session that is not running: `me` is what the store holds (read by
    /// the caller, once per listing); `queued` was read before the live state (see
    /// [`Self::status_of`]).
    fn idle_view(&self, record: SessionRecord, me: Option<MeInfo>, queued: bool) -> SessionView {
        SessionView {
            name: record.name,
            // A queued session is as good as started: it shows as WAHA shows one booting.
            status: if queued {
                SessionStatus::Starting
            } else {
                SessionStatus::Stopped
            },
            config: record.config,
            me,
            activity_ms: None,
            assigned_worker: queued.then(|| self.worker()).flatten(),
        }
    }

    fn live_view(&self, record: SessionRecord, live: LiveState) -> SessionView {
        SessionView {
            name: record.name,
            status: live.status,
            config: record.config,
            me: live.me,
            activity_ms: live.activity_ms,
            assigned_worker: self.worker(),
        }
    }

    fn worker(&self) -> Option<String> {
        Some(self.inner.settings.worker_id.clone()).filter(|w| !w.is_empty())
    }

    async fn view(&self, record: SessionRecord) -> Result<SessionView> {
        let queued = self.is_queued(&record.name);
        match self.live(&record.name) {
            Some(live) => Ok(self.live_view(record, live)),
            None => {
                let me = self.inner.store.get_me(&record.name).await?;
                let mut view = self.idle_view(record, me, queued);
                if view.assigned_worker.is_none() {
                    // Cluster mode: the worker it runs on (or is placed on), if another.
                    view.assigned_worker = self.remote_worker(&view.name).await;
                    // Wanted and placed elsewhere (a live owner's requests are forwarded
                    // there, so this is a session being placed, claimed or handed over).
                    if view.assigned_worker.is_some() {
                        view.status = SessionStatus::Starting;
                    }
                }
                Ok(view)
            }
        }
    }

    async fn record(&self, name: &str) -> Result<SessionRecord> {
        self.inner
            .store
            .get_session(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// A value that changes whenever [`Self::list`] could answer differently: the records
    /// generation, the restore queue, and each running session's status, activity and
    /// account. O(sessions) in memory, no store read, so `GET /api/sessions` can serve a
    /// cached answer while it holds (issue 16: at 1,000 sessions the answer is ~0.3 MB
    /// of JSON, and building it per request capped the route at ~500 req/s).
    ///
    /// Computed before the data it guards is read: a change racing a rebuild only makes the
    /// next call miss, never serves stale data after the change is visible.
    ///
    /// `None` in cluster mode: other workers change what the listing shows (placements,
    /// leases) without this registry knowing, so nothing is cached there.
    pub fn list_fingerprint(&self) -> Option<u64> {
        if self.is_cluster() {
            return None;
        }
        use std::hash::{Hash, Hasher};
        // `DefaultHasher::new()` has fixed keys, so fingerprints compare across calls.
        // Per-entry hashes are summed: the maps' iteration order does not matter.
        fn entry(f: impl FnOnce(&mut std::collections::hash_map::DefaultHasher)) -> u64 {
            let mut h = std::collections::hash_map::DefaultHasher::new();
            f(&mut h);
            h.finish()
        }
        let mut sum = self.inner.records_gen.load(Ordering::Acquire);
        {
            let queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
            sum = sum.wrapping_mul(31).wrapping_add(queued.len() as u64);
            for name in queued.iter() {
                sum = sum.wrapping_add(entry(|h| (0u8, name).hash(h)));
            }
        }
        let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        sum = sum.wrapping_mul(31).wrapping_add(running.len() as u64);
        for (name, handle) in running.iter() {
            let live = handle.state.borrow();
            sum = sum.wrapping_add(entry(|h| {
                (1u8, name, live.status, live.activity_ms).hash(h);
                if let Some(me) = &live.me {
                    (&me.id, &me.lid, &me.jid, &me.push_name).hash(h);
                }
            }));
        }
        Some(sum)
    }

    fn records_changed(&self) {
        self.inner.records_gen.fetch_add(1, Ordering::AcqRel);
    }

    /// Sessions ordered by name; only running (or queued for restore) ones unless `all`.
    ///
    /// Two store reads at most whatever the number of sessions: the records, and the stored
    /// accounts of the sessions not running (running ones carry theirs in the live state).
    pub async fn list(&self, all: bool) -> Result<Vec<SessionView>> {
        let records = self.inner.store.list_sessions().await?;
        let mut live = Vec::with_capacity(records.len());
        let mut need_me = false;
        for record in records {
            let queued = self.is_queued(&record.name);
            let state = self.live(&record.name);
            if state.is_none() {
                if !all && !queued {
                    continue;
                }
                need_me = true;
            }
            live.push((record, state, queued));
        }
        let mut stored_me = if need_me {
            self.inner.store.list_me().await?
        } else {
            HashMap::new()
        };
        Ok(live
            .into_iter()
            .map(|(record, state, queued)| match state {
                Some(state) => self.live_view(record, state),
                None => {
                    let me = stored_me.remove(&record.name);
                    self.idle_view(record, me, queued)
                }
            })
            .collect())
    }

    /// One session.
    pub async fn get(&self, name: &str) -> Result<SessionView> {
        let record = self.current_record(name).await?;
        self.view(record).await
    }

    /// The stored account of a session (`None` before pairing).
    pub async fn me(&self, name: &str) -> Result<Option<MeInfo>> {
        self.current_record(name).await?;
        if let Some(live) = self.live(name) {
            return Ok(live.me);
        }
        Ok(self.inner.store.get_me(name).await?)
    }

    /// The record of `name`: a running session's start record (what the store holds: a
    /// config change restarts it, a delete stops it first), else the store's. Not in
    /// cluster mode, where another worker may change the stored record meanwhile.
    /// Spares `GET /api/sessions/{name}` a store read per call (issue 16).
    async fn current_record(&self, name: &str) -> Result<SessionRecord> {
        if !self.is_cluster() {
            let running = {
                let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
                running.get(name).and_then(|h| h.record.clone())
            };
            if let Some(record) = running {
                return Ok(SessionRecord::clone(&record));
            }
        }
        self.record(name).await
    }

    /// Creates a session (and starts it when `start`).
    pub async fn create(
        &self,
        name: &str,
        config: Option<SessionConfig>,
        start: bool,
    ) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let record = SessionRecord {
            name: name.to_string(),
            config: self.inner.settings.defaults.apply(config),
        };
        let inserted = self.inner.store.insert_session(&record).await;
        self.records_changed();
        inserted.map_err(|e| match e {
            store::Error::AlreadyExists(_) => Error::AlreadyExists(name.to_string()),
            other @ (store::Error::Unavailable(_)
            | store::Error::Corrupt(_)
            | store::Error::Backend(_)) => Error::Store(other),
        })?;
        if start {
            self.start_locked(&record).await?;
        }
        self.view(record).await
    }

    /// Replaces a session's config; a running session is restarted with it.
    pub async fn update(&self, name: &str, config: Option<SessionConfig>) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let mut record = self.record(name).await?;
        record.config = self.inner.settings.defaults.apply(config);
        let was_running = self.stop_locked(name, false).await?;
        let stored = self.inner.store.upsert_session(&record).await;
        self.records_changed();
        stored?;
        if was_running {
            self.start_locked(&record).await?;
        }
        self.view(record).await
    }

    /// Upsert + start (deprecated `POST /api/sessions/start`).
    pub async fn upsert_and_start(
        &self,
        name: &str,
        config: Option<SessionConfig>,
    ) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        if self.live(name).is_some() {
            return Err(Error::AlreadyStarted(name.to_string()));
        }
        let record = SessionRecord {
            name: name.to_string(),
            config: self.inner.settings.defaults.apply(config),
        };
        let stored = self.inner.store.upsert_session(&record).await;
        self.records_changed();
        stored?;
        self.start_locked(&record).await?;
        self.view(record).await
    }

    /// Starts a stored session; `AlreadyStarted` when it runs (WAHA 2026 behaviour).
    pub async fn start(&self, name: &str) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let record = self.record(name).await?;
        if self.live(name).is_some() {
            return Err(Error::AlreadyStarted(name.to_string()));
        }
        self.start_locked(&record).await?;
        self.view(record).await
    }

    /// Stops a session if it runs (idempotent); never logs out.
    pub async fn stop(&self, name: &str) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let record = self.record(name).await?;
        self.stop_locked(name, true).await?;
        self.view(record).await
    }

    /// Stop + start.
    pub async fn restart(&self, name: &str) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let record = self.record(name).await?;
        self.stop_locked(name, false).await?;
        self.start_locked(&record).await?;
        self.view(record).await
    }

    /// Wipes the credentials, keeping the config; a running session starts again (new QR).
    pub async fn logout(&self, name: &str) -> Result<SessionView> {
        let _guard = self.lock(name).await;
        let record = self.record(name).await?;
        self.unlink_if_working(name).await;
        let was_running = self.stop_locked(name, false).await?;
        self.wipe_credentials(name).await?;
        if was_running {
            self.start_locked(&record).await?;
        }
        self.view(record).await
    }

    /// Stops, logs out and deletes everything of the session. Idempotent.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let _guard = self.lock(name).await;
        self.unlink_if_working(name).await;
        self.stop_locked(name, true).await?;
        let deleted = self.inner.store.delete_session(name).await;
        self.records_changed();
        deleted?;
        Ok(())
    }

    /// The live engine handle of a WORKING session (the WORKING gate of the API).
    ///
    /// The handle stays usable while the connection is up; once it ends, calls on it answer
    /// [`engine::Error::NotRunning`].
    ///
    /// # Errors
    /// `NotFound` when no such session is stored; `WrongStatus` (expected WORKING) when it
    /// is stored but not WORKING; the store's error.
    pub async fn engine(&self, name: &str) -> Result<engine::Session> {
        let live = self.live(name);
        if let Some(engine) = live
            .as_ref()
            .filter(|s| s.status == SessionStatus::Working)
            .and_then(|s| s.engine.clone())
        {
            return Ok(engine);
        }
        self.record(name).await?;
        Err(Error::WrongStatus {
            session: name.to_string(),
            status: live.map_or_else(|| self.status_of(name), |s| s.status),
            expected: vec![SessionStatus::Working],
        })
    }

    /// WAHA: logging out a WORKING session also removes the device from the phone.
    async fn unlink_if_working(&self, name: &str) {
        let control = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running
                .get(name)
                .filter(|h| h.state.borrow().status == SessionStatus::Working)
                .map(RuntimeHandle::control)
        };
        if let Some(control) = control {
            runtime::logout_via(control, Duration::from_secs(5)).await;
        }
    }

    /// Requests a pairing code (`POST /api/{session}/auth/request-code`): the session must be
    /// in `SCAN_QR_CODE` (waiting while it is still `STARTING`).
    pub async fn request_code(&self, name: &str, phone: String, wait: Duration) -> Result<String> {
        self.record(name).await?;
        let status = self
            .wait_for_status(name, &[SessionStatus::ScanQrCode], wait)
            .await;
        match status {
            None => Err(Error::NotRunning(name.to_string())),
            Some(SessionStatus::ScanQrCode) => {
                let control = {
                    let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
                    running.get(name).map(RuntimeHandle::control)
                };
                let control = control.ok_or_else(|| Error::NotRunning(name.to_string()))?;
                runtime::request_code_via(control, phone)
                    .await
                    .map_err(Error::Engine)
            }
            Some(status) => Err(Error::CodeWrongStatus { status }),
        }
    }

    /// Waits (polling the live state) until the session is in one of `wanted`, it settles in
    /// a status that cannot lead there by itself, or `wait` passes. `None` = not running.
    pub async fn wait_for_status(
        &self,
        name: &str,
        wanted: &[SessionStatus],
        wait: Duration,
    ) -> Option<SessionStatus> {
        let mut rx = {
            let running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.get(name)?.state.clone()
        };
        let until = tokio::time::Instant::now() + wait;
        loop {
            let status = rx.borrow_and_update().status;
            // Only STARTING moves on by itself towards a QR or a login.
            if wanted.contains(&status) || status != SessionStatus::Starting {
                return Some(status);
            }
            match tokio::time::timeout_at(until, rx.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return Some(rx.borrow().status),
            }
        }
    }

    async fn wipe_credentials(&self, name: &str) -> Result<()> {
        // Bumped even when a step fails (here and after every record write): a failed
        // write may still have been applied, and a spurious bump only costs one rebuild.
        let wiped = self.inner.store.wipe_credentials(name).await;
        let cleared = match wiped {
            Ok(()) => self.inner.store.set_me(name, None).await,
            Err(e) => Err(e),
        };
        self.records_changed();
        cleared?;
        Ok(())
    }

    /// Starts the runtime; caller holds the session lock and has checked it is not running.
    /// In cluster mode the session is placed first and starts here only if it lands here.
    async fn start_locked(&self, record: &SessionRecord) -> Result<()> {
        if self.is_cluster() {
            return match self.place_for_start(record).await? {
                Some(fence) => self.spawn_runtime(record, Some(fence)).await,
                None => {
                    self.dequeue(&record.name);
                    Ok(())
                }
            };
        }
        self.spawn_runtime(record, None).await
    }

    /// Spawns the runtime of `record` here (with its lease's `fence` in cluster mode).
    async fn spawn_runtime(
        &self,
        record: &SessionRecord,
        fence: Option<crate::cluster::Fence>,
    ) -> Result<()> {
        let worker = &self.inner.settings.worker_id;
        self.inner.store.assign_worker(&record.name, worker).await?;
        let me = self.inner.store.get_me(&record.name).await?;
        let store = &self.inner.store;
        let device = store.session(&store.session_name(&record.name)?).device();
        let settings = &self.inner.settings;
        let spec = StartSpec {
            session: record.name.clone(),
            config: record.config.clone(),
            wa_url: settings.wa_url.clone(),
            wa_version: settings.wa_version,
            proxy: record
                .config
                .as_ref()
                .and_then(|c| c.proxy.clone())
                .or_else(|| settings.proxy.clone()),
            device,
            connect_timeout: settings.connect_timeout,
            device_store_idle: settings.device_store_idle,
            prekey_upload_count: settings.prekey_upload_count,
            fence: fence.clone(),
            engine_events: self.engine_events_wanted(record),
        };
        let mut inbox = self.inbox_for(record);
        inbox.fence = fence;
        let mut handle = runtime::spawn(
            &self.inner.rt,
            spec,
            self.inner.store.clone(),
            me,
            settings.timers,
            inbox,
            self.inner.cancel.child_token(),
        );
        handle.record = Some(Arc::new(record.clone()));
        tracing::info!(session = record.name, "session started");
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
        self.dequeue(&record.name);
        if let Some(old) = running.insert(record.name.clone(), handle) {
            // Unreachable under the session lock; never leak a task if it happens.
            self.inner
                .tracker
                .spawn_on(old.stop(STOP_DEADLINE), &self.inner.rt);
        }
        Ok(())
    }

    /// Stops the runtime if any; returns whether it was running. `unassign` removes the
    /// worker row (user stop/delete) — a restart keeps it so a crash mid-restart restores.
    async fn stop_locked(&self, name: &str, unassign: bool) -> Result<bool> {
        let handle = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.remove(name)
        };
        // A session still queued for restore counts as running: an update or a logout
        // starts it again at once, a stop keeps the restore from starting it later.
        let was_queued = self.dequeue(name);
        let was_running = handle.is_some() || was_queued;
        if let Some(handle) = handle {
            let me = handle.state.borrow().me.clone();
            handle.stop(STOP_DEADLINE).await;
            tracing::info!(session = name, "session stopped");
            if let Ok(Some(record)) = self.inner.store.get_session(name).await {
                let now = crate::clock::now_ms();
                self.inbox_for(&record)
                    .status(
                        me.as_ref(),
                        SessionStatus::Stopped,
                        &[(SessionStatus::Stopped, now)],
                        None,
                    )
                    .await;
            }
        }
        if unassign {
            self.inner
                .store
                .unassign_worker(name, &self.inner.settings.worker_id)
                .await?;
            self.unwant(name).await?;
        }
        Ok(was_running)
    }

    /// Boot, step 1: decides what WAHA would start (`WAHA_WORKER_RESTART_SESSIONS`,
    /// `WHATSAPP_RESTART_ALL_SESSIONS`, `WHATSAPP_START_SESSION`), creating the named
    /// sessions that do not exist (WAHA does), and queues them: from now on they show as
    /// `STARTING`. One or two store reads plus one per named session, whatever the number
    /// of stored sessions, so the HTTP server is up right after. Returns the queued names.
    ///
    /// # Errors
    /// The store cannot list the sessions.
    pub async fn plan_restore(
        &self,
        worker_sessions: bool,
        all: bool,
        named: &[String],
    ) -> Result<Vec<String>> {
        let mut names: Vec<String> = Vec::new();
        if self.is_cluster() {
            // The lease loop starts what is placed here; boot only marks WAHA's restart
            // set wanted (placing it across the cluster).
            let mut want: Vec<String> = named.to_vec();
            if all {
                want.extend(
                    self.inner
                        .store
                        .list_sessions()
                        .await?
                        .into_iter()
                        .map(|r| r.name),
                );
            }
            for n in named {
                match self.create(n, None, false).await {
                    Ok(_) | Err(Error::AlreadyExists(_)) => {}
                    Err(e) => tracing::error!(session = n, error = %e, "could not create session"),
                }
            }
            self.want_all(&want).await?;
            return Ok(names);
        }
        if all {
            names.extend(
                self.inner
                    .store
                    .list_sessions()
                    .await?
                    .into_iter()
                    .map(|r| r.name),
            );
        } else if worker_sessions {
            names.extend(
                self.inner
                    .store
                    .sessions_of_worker(&self.inner.settings.worker_id)
                    .await?,
            );
        }
        for n in named {
            if names.contains(n) {
                continue;
            }
            // WAHA: WHATSAPP_START_SESSION creates the session if it does not exist.
            match self.create(n, None, false).await {
                Ok(_) | Err(Error::AlreadyExists(_)) => names.push(n.clone()),
                Err(e) => tracing::error!(session = n, error = %e, "could not create session"),
            }
        }
        let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
        queued.extend(names.iter().cloned());
        Ok(names)
    }

    /// Boot, step 2: starts the queued `names` in the background, [`RESTORE_PARALLELISM`]
    /// at a time (one at a time, `delay` apart, when `WAHA_AUTO_START_DELAY_SECONDS` asks
    /// for spacing), logging progress. The task is the manager's: shutdown cancels and joins
    /// it before stopping the sessions. `beside` runs alongside on the same task (the app
    /// resumes undelivered webhooks there).
    pub fn spawn_restore(
        &self,
        names: Vec<String>,
        delay: Duration,
        beside: impl Future<Output = ()> + Send + 'static,
    ) {
        self.spawn_lease_loop();
        let this = self.clone();
        let task = self.inner.rt.spawn(async move {
            let ((), started) = tokio::join!(beside, this.restore(&names, delay));
            if started > 0 {
                tracing::info!("restored {started} sessions");
            }
        });
        let mut slot = self.inner.restore.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(old) = slot.replace(task) {
            // One boot per process; a second call never leaves a task unowned either.
            old.abort();
        }
    }

    /// Starts the queued `names`; returns how many run now. Stops starting new ones when the
    /// manager is cancelled.
    async fn restore(&self, names: &[String], delay: Duration) -> usize {
        let total = names.len();
        let done = AtomicUsize::new(0);
        let started = AtomicUsize::new(0);
        let cancel = &self.inner.cancel;
        let one = async |i: usize, name: &String| {
            if i > 0 && !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = cancel.cancelled() => return,
                }
            }
            if cancel.is_cancelled() {
                return;
            }
            match self.restore_one(name).await {
                Ok(true) => {
                    started.fetch_add(1, Ordering::Relaxed);
                }
                Ok(false) => {}
                Err(e) => tracing::error!(session = name, error = %e, "could not restore session"),
            }
            let n = done.fetch_add(1, Ordering::Relaxed) + 1;
            if n.is_multiple_of(500) || n == total {
                tracing::info!("restored {n}/{total} sessions");
            }
        };
        let parallel = if delay.is_zero() {
            RESTORE_PARALLELISM
        } else {
            1
        };
        futures_util::stream::iter(names.iter().enumerate())
            .for_each_concurrent(parallel, |(i, name)| one(i, name))
            .await;
        // Whatever was not reached (cancelled) is not starting any more.
        for name in names {
            self.dequeue(name);
        }
        started.into_inner()
    }

    /// Starts one queued session unless a user call took it out of the queue meanwhile;
    /// whether it runs now.
    async fn restore_one(&self, name: &str) -> Result<bool> {
        let _guard = self.lock(name).await;
        if !self.is_queued(name) {
            // Started, stopped or deleted by a user call meanwhile: theirs is the last word.
            return Ok(self.live(name).is_some());
        }
        let Some(record) = self.inner.store.get_session(name).await? else {
            self.dequeue(name);
            return Ok(false);
        };
        if let Err(e) = self.start_locked(&record).await {
            self.dequeue(name);
            return Err(e);
        }
        Ok(true)
    }

    /// Shutdown: ends the boot restore, then stops every runtime in parallel under one
    /// [`STOP_DEADLINE`] (each client still flushes its state), never logging out; worker
    /// rows stay so the next boot restores the same sessions.
    pub async fn shutdown(&self) -> ShutdownReport {
        let begin = tokio::time::Instant::now();
        // Cluster mode: sessions move to other workers first (no-op otherwise).
        self.drain().await;
        self.inner.cancel.cancel();
        // The restore starts nothing once cancelled; the starts in flight finish (each only
        // spawns a runtime), so every session that runs is in `running` after this.
        let restore = self
            .inner
            .restore
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = restore
            && let Err(e) = task.await
            && e.is_panic()
        {
            tracing::error!(error = %e, "the restore task panicked");
        }
        let handles: Vec<(String, RuntimeHandle)> = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.drain().collect()
        };
        let queued = {
            let mut queued = self.inner.queued.lock().unwrap_or_else(|p| p.into_inner());
            std::mem::take(&mut *queued).len()
        };
        let sessions = handles.len() + queued;
        let stops = handles.into_iter().map(|(name, handle)| async move {
            let in_time = handle.stop(STOP_DEADLINE).await;
            tracing::debug!(session = name, in_time, "session stopped for shutdown");
            in_time
        });
        // All at once: every session already saw the cancellation above, so they flush
        // concurrently and one deadline bounds the lot (issue 16: serial joins took 4.5 s
        // for 1,000 sessions and cut flushes short).
        let flushed = futures_util::future::join_all(stops)
            .await
            .into_iter()
            .filter(|in_time| *in_time)
            .count()
            + queued;
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
        let report = ShutdownReport {
            sessions,
            flushed,
            elapsed: begin.elapsed(),
        };
        if report.flushed < report.sessions {
            tracing::warn!(
                "stopped {} sessions in {:?}; {} did not finish in {STOP_DEADLINE:?}",
                report.sessions,
                report.elapsed,
                report.sessions - report.flushed
            );
        } else {
            tracing::info!(
                "stopped {} sessions in {:?}",
                report.sessions,
                report.elapsed
            );
        }
        report
    }
}
