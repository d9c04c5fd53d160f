//! The session registry: which sessions exist (the store) and which run (this process).
//!
//! Owns: per-session runtimes ([`runtime::RuntimeHandle`]), the per-name lock that serializes
//! mutating calls (WAHA's `AsyncLock`), worker assignment, boot restoration, and the way to
//! a WORKING session's live [`engine::Session`] ([`SessionManager::engine`]). Built once
//! by `app::App::build` with the runtime handle and a child of the root cancellation token;
//! lives for the process. Never imports actix: handlers call these methods (and the
//! orchestration in [`chatting`]) and map [`Error`] to WAHA's bodies in `api/error.rs`.

pub mod chatting;
pub mod delivery;
pub mod inbox;
pub mod runtime;
pub mod status;

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use self::runtime::{LiveState, RuntimeHandle};
use crate::{
    engine::{self, StartSpec},
    model::session::{MeInfo, SessionConfig, SessionStatus},
    store::{self, SessionRecord, Store},
};

/// How long a stopping session may take before its task is aborted.
const STOP_DEADLINE: Duration = Duration::from_secs(5);

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
    /// No QR or login within this long → the attempt failed (then retried with backoff).
    pub connect_timeout: Duration,
    /// QR and restart timers.
    pub timers: runtime::Timers,
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
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
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
        Self {
            inner: Arc::new(Inner {
                store,
                messages,
                events,
                media,
                settings,
                rt,
                cancel,
                tracker: TaskTracker::new(),
                running: Mutex::new(HashMap::new()),
                locks: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The message/event sink of a session (config read from the store).
    pub async fn inbox(&self, name: &str) -> Result<inbox::Inbox> {
        let record = self.record(name).await?;
        Ok(self.inbox_for(&record))
    }

    fn inbox_for(&self, record: &SessionRecord) -> inbox::Inbox {
        inbox::Inbox {
            session: record.name.clone(),
            config: record.config.clone(),
            messages: self.inner.messages.clone(),
            events: self.inner.events.clone(),
            media: self.inner.media.clone(),
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

    /// Current status of a session that exists: running status or `STOPPED`.
    pub fn status_of(&self, name: &str) -> SessionStatus {
        self.live(name).map_or(SessionStatus::Stopped, |s| s.status)
    }

    async fn view(&self, record: SessionRecord) -> Result<SessionView> {
        let live = self.live(&record.name);
        let (status, me, activity_ms, assigned_worker) = match live {
            Some(s) => (
                s.status,
                s.me,
                s.activity_ms,
                Some(self.inner.settings.worker_id.clone()),
            ),
            None => (
                SessionStatus::Stopped,
                self.inner.store.get_me(&record.name).await?,
                None,
                None,
            ),
        };
        Ok(SessionView {
            name: record.name,
            status,
            config: record.config,
            me,
            activity_ms,
            assigned_worker: assigned_worker.filter(|w| !w.is_empty()),
        })
    }

    async fn record(&self, name: &str) -> Result<SessionRecord> {
        self.inner
            .store
            .get_session(name)
            .await?
            .ok_or_else(|| Error::NotFound(name.to_string()))
    }

    /// Sessions ordered by name; only running ones unless `all`.
    pub async fn list(&self, all: bool) -> Result<Vec<SessionView>> {
        let mut out = Vec::new();
        for record in self.inner.store.list_sessions().await? {
            if all || self.live(&record.name).is_some() {
                out.push(self.view(record).await?);
            }
        }
        Ok(out)
    }

    /// One session.
    pub async fn get(&self, name: &str) -> Result<SessionView> {
        let record = self.record(name).await?;
        self.view(record).await
    }

    /// The stored account of a session (`None` before pairing).
    pub async fn me(&self, name: &str) -> Result<Option<MeInfo>> {
        self.record(name).await?;
        if let Some(live) = self.live(name) {
            return Ok(live.me);
        }
        Ok(self.inner.store.get_me(name).await?)
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
            config,
        };
        self.inner
            .store
            .insert_session(&record)
            .await
            .map_err(|e| match e {
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
        record.config = config;
        let was_running = self.stop_locked(name, false).await?;
        self.inner.store.upsert_session(&record).await?;
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
            config,
        };
        self.inner.store.upsert_session(&record).await?;
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
        self.inner.store.delete_session(name).await?;
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
            status: live.map_or(SessionStatus::Stopped, |s| s.status),
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
        self.inner.store.wipe_credentials(name).await?;
        self.inner.store.set_me(name, None).await?;
        Ok(())
    }

    /// Starts the runtime; caller holds the session lock and has checked it is not running.
    async fn start_locked(&self, record: &SessionRecord) -> Result<()> {
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
            device,
            connect_timeout: settings.connect_timeout,
        };
        let handle = runtime::spawn(
            &self.inner.rt,
            spec,
            self.inner.store.clone(),
            me,
            settings.timers,
            self.inbox_for(record),
            self.inner.cancel.child_token(),
        );
        tracing::info!(session = record.name, "session started");
        let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
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
        let was_running = handle.is_some();
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
        }
        Ok(was_running)
    }

    /// Boot: start what WAHA would (`WAHA_WORKER_RESTART_SESSIONS`, `WHATSAPP_RESTART_ALL_SESSIONS`,
    /// `WHATSAPP_START_SESSION`), spaced by `delay`, logging progress.
    pub async fn restore(
        &self,
        worker_sessions: bool,
        all: bool,
        named: &[String],
        delay: Duration,
    ) -> Result<usize> {
        let mut names: Vec<String> = Vec::new();
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
            if !names.contains(n) {
                names.push(n.clone());
            }
        }
        let total = names.len();
        let mut started = 0;
        for (i, name) in names.iter().enumerate() {
            if i > 0 && !delay.is_zero() {
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = self.inner.cancel.cancelled() => break,
                }
            }
            let result = match self.inner.store.get_session(name).await? {
                Some(_) => self.start(name).await.map(|_| ()),
                // WAHA: WHATSAPP_START_SESSION creates the session if it does not exist.
                None => self.create(name, None, true).await.map(|_| ()),
            };
            match result {
                Ok(()) | Err(Error::AlreadyStarted(_)) => started += 1,
                Err(e) => tracing::error!(session = name, error = %e, "could not restore session"),
            }
            if (i + 1) % 50 == 0 || i + 1 == total {
                tracing::info!("restored {}/{} sessions", i + 1, total);
            }
        }
        Ok(started)
    }

    /// Shutdown: stop every runtime (two-phase), never logging out; worker rows stay so the
    /// next boot restores the same sessions.
    pub async fn shutdown(&self) {
        let handles: Vec<(String, RuntimeHandle)> = {
            let mut running = self.inner.running.lock().unwrap_or_else(|p| p.into_inner());
            running.drain().collect()
        };
        self.inner.cancel.cancel();
        for (name, handle) in handles {
            handle.stop(STOP_DEADLINE).await;
            tracing::debug!(session = name, "session stopped for shutdown");
        }
        self.inner.tracker.close();
        self.inner.tracker.wait().await;
    }
}
