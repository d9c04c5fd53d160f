//! One running session: a task that drives the engine and the status machine.
//!
//! Owns: the session's live status (a `watch` channel the manager reads) with the live
//! [`engine::Session`] handle while WORKING, the lifecycle [`Control`] channel to the engine
//! (logout, pairing code: the operations whose order against the connection matters),
//! retries with backoff after retryable failures, the QR deadline, and the session's
//! [`TaskTracker`] + [`CancellationToken`] (a child of the manager's): every task of the
//! session — the runtime itself, pairing-code requests, group-cache refreshes — runs on
//! that tracker, and stop cancels the token and joins the tracker. Spawned by
//! [`super::SessionManager`] on start, on the runtime handle the manager captured at build
//! time; lives until stop or a terminal failure. Stopping never logs the session out: the
//! credentials stay in the store.

use std::{
    collections::VecDeque,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{mpsc, oneshot, watch},
    task::AbortHandle,
};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    delivery::{self, Delivery, Job},
    inbox::Inbox,
    status::{Input, next},
};
use crate::{
    engine::{self, Control, EngineEvent, Exit, StartSpec},
    model::session::{MeInfo, SessionStatus},
    store::Store,
};

/// How many past statuses a `session.status` payload carries (WAHA: the last 3).
const STATUS_HISTORY: usize = 3;

/// Timers of a runtime (shortened by tests through `Config`).
#[derive(Debug, Clone, Copy)]
pub struct Timers {
    /// QR codes shown this long without a scan → `FAILED` (WAHA: 60 s + 5 × 20 s).
    pub qr_timeout: Duration,
    /// First delay before restarting after a retryable failure (doubles, capped at 60 s).
    pub restart_backoff: Duration,
    /// `WAHA_PRINT_QR`: draw each new QR code in the log.
    pub print_qr: bool,
}

/// A session's live state as the API sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveState {
    /// Current status.
    pub status: SessionStatus,
    /// The last statuses with their times in ms, newest last.
    pub statuses: VecDeque<(SessionStatus, i64)>,
    /// Last activity (status change or event), ms.
    pub activity_ms: Option<i64>,
    /// The account, once known.
    pub me: Option<MeInfo>,
    /// The current raw QR code while in `SCAN_QR_CODE`.
    pub qr: Option<String>,
    /// Why the session failed, when it did.
    pub failure: Option<String>,
    /// The engine handle, set while `WORKING` only (cleared on any other status, so a
    /// caller never gets a handle to a connection that is not up).
    pub engine: Option<engine::Session>,
}

impl LiveState {
    fn new(me: Option<MeInfo>) -> Self {
        Self {
            status: SessionStatus::Stopped,
            statuses: VecDeque::new(),
            activity_ms: None,
            me,
            qr: None,
            failure: None,
            engine: None,
        }
    }

    /// Applies a status-machine input; returns whether the status changed (or re-emitted).
    fn apply(&mut self, input: &Input) -> bool {
        let Some(to) = next(self.status, input) else {
            return false;
        };
        let now = now_ms();
        self.status = to;
        self.activity_ms = Some(now);
        self.statuses.push_back((to, now));
        while self.statuses.len() > STATUS_HISTORY {
            self.statuses.pop_front();
        }
        if to != SessionStatus::ScanQrCode {
            self.qr = None;
        }
        if to != SessionStatus::Failed {
            self.failure = None;
        }
        if to != SessionStatus::Working {
            self.engine = None;
        }
        true
    }

    fn fail(&mut self, input: &Input, reason: impl Into<String>) {
        if self.apply(input) {
            self.failure = Some(reason.into());
        }
    }
}

// Moved to `crate::clock`; re-exported for callers not yet pointed there.
use crate::clock::now_ms;

/// The manager's handle on a running session.
#[must_use = "dropping the handle leaves the task running unobserved; call stop()"]
pub struct RuntimeHandle {
    /// Live state, updated by the task.
    pub state: watch::Receiver<LiveState>,
    control: mpsc::Sender<Control>,
    cancel: CancellationToken,
    /// Every task of this session (the runtime task first).
    tracker: TaskTracker,
    /// The runtime task, aborted when it outlives the stop deadline.
    main: AbortHandle,
    /// Cleared by the runtime task when a stop cut its client's final flush short.
    flushed: Arc<AtomicBool>,
    /// The stored record the session was started with (set by the manager): a config
    /// change restarts the session, so while it runs this is what the store holds, and
    /// API sends build their inbox from it without reading the store.
    pub record: Option<Arc<crate::store::SessionRecord>>,
}

impl RuntimeHandle {
    /// Two-phase stop: signal, then join every task of the session up to `deadline`.
    /// Returns whether the session stopped cleanly: in time, its client's final flush done.
    pub async fn stop(self, deadline: Duration) -> bool {
        if !stop_tracked(&self.cancel, &self.tracker, &self.main, deadline).await {
            tracing::warn!("session tasks did not stop in {deadline:?}; aborted the runtime");
            return false;
        }
        self.flushed.load(Ordering::Acquire)
    }

    /// The lifecycle channel to the engine (cloned, so callers need no lock while waiting).
    pub fn control(&self) -> mpsc::Sender<Control> {
        self.control.clone()
    }
}

/// Cancels `cancel`, closes `tracker` and waits for all of its tasks up to `deadline`;
/// past it `main` is aborted and the wait goes on briefly for the abort to land. Returns
/// whether everything stopped by itself in time.
pub(crate) async fn stop_tracked(
    cancel: &CancellationToken,
    tracker: &TaskTracker,
    main: &AbortHandle,
    deadline: Duration,
) -> bool {
    cancel.cancel();
    tracker.close();
    if tokio::time::timeout(deadline, tracker.wait()).await.is_ok() {
        return true;
    }
    main.abort();
    // Other tasks of the tracker all select on `cancel`; give the abort a moment to land.
    let _ = tokio::time::timeout(Duration::from_secs(1), tracker.wait()).await;
    false
}

/// Asks the engine behind `control` for a pairing code for `phone`.
///
/// # Errors
/// The engine is not running or the server refused.
pub async fn request_code_via(
    control: mpsc::Sender<Control>,
    phone: String,
) -> Result<String, engine::Error> {
    let (reply, rx) = oneshot::channel();
    control
        .send(Control::RequestCode { phone, reply })
        .await
        .map_err(|_| engine::Error::NotRunning)?;
    rx.await.map_err(|_| engine::Error::NotRunning)?
}

/// Unlinks the device from the phone (best effort, bounded by `deadline`).
pub async fn logout_via(control: mpsc::Sender<Control>, deadline: Duration) {
    let (reply, rx) = oneshot::channel();
    if control.send(Control::Logout { reply }).await.is_ok() {
        let _ = tokio::time::timeout(deadline, rx).await;
    }
}

/// Spawns the runtime of one session on `rt`, as the first task of a new per-session
/// tracker; `cancel` (a child of the manager's token) stops it.
pub fn spawn(
    rt: &tokio::runtime::Handle,
    spec: StartSpec,
    store: Store,
    me: Option<MeInfo>,
    timers: Timers,
    inbox: Inbox,
    cancel: CancellationToken,
) -> RuntimeHandle {
    let mut initial = LiveState::new(me);
    initial.apply(&Input::Start);
    let (tx, rx) = watch::channel(initial);
    // Lifecycle requests wait here while the engine works through earlier ones; a full
    // queue makes callers wait (backpressure), never drops. They are rare (a logout, a
    // pairing code), so the bound is small.
    let (control_tx, control_rx) = mpsc::channel(8);
    let tracker = TaskTracker::new();
    let flushed = Arc::new(AtomicBool::new(true));
    // Inbound traffic is published in order by its own task (media downloads off this
    // runtime's path); it ends when the runtime task drops `delivery`.
    let delivery = delivery::spawn(inbox.clone(), &tracker, rt, cancel.child_token());
    if let Some(fence) = spec.fence.clone() {
        // Cluster mode: a lost lease stops the session at once (without logout; every
        // write is fenced off meanwhile). The manager's lease loop then forgets it.
        let cancel = cancel.clone();
        tracker.spawn_on(
            async move {
                tokio::select! {
                    () = fence.lost() => {
                        tracing::warn!(epoch = fence.epoch(), "session lease lost; stopping it here");
                        cancel.cancel();
                    }
                    () = cancel.cancelled() => {}
                }
            },
            rt,
        );
    }
    let task = Task {
        delivery,
        spec,
        store,
        state: tx,
        control: control_rx,
        timers,
        inbox,
        cancel: cancel.clone(),
        tracker: tracker.clone(),
        flushed: flushed.clone(),
    };
    let main = tracker.spawn_on(run(task), rt).abort_handle();
    RuntimeHandle {
        state: rx,
        control: control_tx,
        cancel,
        tracker,
        main,
        flushed,
        record: None,
    }
}

/// What the runtime task owns.
struct Task {
    /// Ordered publication of messages, acks and presences.
    delivery: Delivery,
    spec: StartSpec,
    store: Store,
    state: watch::Sender<LiveState>,
    control: mpsc::Receiver<Control>,
    timers: Timers,
    inbox: Inbox,
    cancel: CancellationToken,
    /// The session's tracker, for the tasks the engine starts beside its event loop.
    tracker: TaskTracker,
    /// See [`RuntimeHandle`]'s field.
    flushed: Arc<AtomicBool>,
}

async fn run(task: Task) {
    let Task {
        delivery,
        spec,
        store,
        state,
        mut control,
        timers,
        inbox,
        cancel,
        tracker,
        flushed,
    } = task;
    let session = spec.session.clone();
    let mut backoff = timers.restart_backoff;
    let mut published = None;
    publish_status(&inbox, &state, &mut published).await;
    loop {
        let outcome = run_once(
            &spec,
            &store,
            &state,
            &mut control,
            &tracker,
            timers,
            &inbox,
            &delivery,
            &mut published,
            &cancel,
        )
        .await;
        // Whatever happened, this connection is over: no caller may reach it any more, and
        // the session is not WORKING on it either (never WORKING without an engine: the
        // gate's refusal would name WORKING). A failure below moves it on to FAILED.
        state.send_modify(|s| {
            s.apply(&Input::Disconnected);
            s.engine = None;
        });
        if !matches!(outcome, Outcome::Stopped { .. }) {
            publish_status(&inbox, &state, &mut published).await;
        }
        match outcome {
            // Stopped from outside: by the manager, which has already taken the session
            // out of its registry and announces STOPPED itself; or by the lost lease's fence
            // (cluster mode), which publishes nothing. So no event for the STARTING above.
            Outcome::Stopped { flushed: clean } => {
                flushed.store(clean, Ordering::Release);
                return;
            }
            Outcome::Terminal => return,
            Outcome::Retry(reason) => {
                tracing::warn!(session, %reason, "session failed; restarting in {backoff:?}");
                state.send_modify(|s| s.fail(&Input::ConnectFailed, reason));
                publish_status(&inbox, &state, &mut published).await;
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                state.send_modify(|s| {
                    s.apply(&Input::Start);
                });
                publish_status(&inbox, &state, &mut published).await;
            }
        }
    }
}

/// Publishes `session.status` when the status history moved since the last publish
/// (every QR rotation counts: WAHA emits one event per QR).
async fn publish_status(
    inbox: &Inbox,
    state: &watch::Sender<LiveState>,
    published: &mut Option<(SessionStatus, i64)>,
) {
    if inbox.fenced() {
        // Cluster mode, lease lost: this worker's view of the session is not news.
        return;
    }
    let snapshot = state.borrow().clone();
    let last = snapshot.statuses.back().copied();
    if last.is_none() || last == *published {
        return;
    }
    *published = last;
    // One structured line per state change (WAHA_LOG_FORMAT=JSON makes it one object).
    let previous = snapshot
        .statuses
        .iter()
        .rev()
        .nth(1)
        .map(|(s, _)| s.as_str());
    tracing::info!(
        session = inbox.session,
        status = snapshot.status.as_str(),
        previous,
        reason = snapshot.failure.as_deref(),
        "session status"
    );
    let history: Vec<(SessionStatus, i64)> = snapshot.statuses.iter().copied().collect();
    let data = snapshot
        .failure
        .as_ref()
        .map(|f| serde_json::json!({ "reason": f }));
    inbox
        .status(snapshot.me.as_ref(), snapshot.status, &history, data)
        .await;
}

enum Outcome {
    /// Stopped on request; whether the client flushed in time.
    Stopped {
        flushed: bool,
    },
    Terminal,
    Retry(String),
}

#[expect(
    clippy::too_many_arguments,
    reason = "one connection attempt borrows the runtime's whole state; a struct would only rename it"
)]
async fn run_once(
    spec: &StartSpec,
    store: &Store,
    state: &watch::Sender<LiveState>,
    control: &mut mpsc::Receiver<Control>,
    tracker: &TaskTracker,
    timers: Timers,
    inbox: &Inbox,
    delivery: &Delivery,
    published: &mut Option<(SessionStatus, i64)>,
    cancel: &CancellationToken,
) -> Outcome {
    let session = spec.session.as_str();
    // Bounded: the engine waits when the runtime lags (status changes are few and small).
    let (tx, mut rx) = mpsc::channel::<EngineEvent>(64);
    let engine_cancel = cancel.child_token();
    let engine = engine::run(spec.clone(), tx, control, tracker, engine_cancel.clone());
    tokio::pin!(engine);
    let mut qr_deadline: Option<tokio::time::Instant> = None;
    let mut logged_out = false;
    // The group-cache refresh of this connection (see `refresh_groups`), joined before the
    // connection's end is acted on.
    let mut refresh: Option<Refresh> = None;
    let result = loop {
        let qr_timer = async {
            match qr_deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = &mut engine => break result,
            () = qr_timer => {
                tracing::info!(session, "QR code was not scanned in time");
                state.send_modify(|s| s.fail(&Input::QrExhausted, "QR code was not scanned in time"));
                publish_status(inbox, state, published).await;
                // Stop the client; the session stays FAILED until started again (WAHA).
                engine_cancel.cancel();
                let _ = (&mut engine).await;
                stop_refresh(&mut refresh).await;
                return Outcome::Terminal;
            }
            Some(event) = rx.recv() => {
                if inbox.fenced() {
                    // Cluster mode, lease lost: nothing of this connection is written; the
                    // fence watcher is stopping the session.
                    continue;
                }
                if matches!(event, EngineEvent::QrCode { .. }) && qr_deadline.is_none() {
                    qr_deadline = Some(tokio::time::Instant::now() + timers.qr_timeout);
                }
                // A scanned QR stops the clock: finishing the pairing (keys, pre-keys, the
                // login on a new connection) can take seconds on a loaded store, and a
                // timeout firing meanwhile would fail a session the phone just linked.
                if matches!(event, EngineEvent::Connected { .. } | EngineEvent::Paired) {
                    qr_deadline = None;
                }
                logged_out |= matches!(event, EngineEvent::LoggedOut { .. });
                if timers.print_qr && let EngineEvent::QrCode { code, .. } = &event {
                    print_qr(session, code);
                }
                let connected = matches!(event, EngineEvent::Connected { .. });
                apply_event(session, store, state, delivery, event).await;
                if connected {
                    stop_refresh(&mut refresh).await;
                    refresh = refresh_groups(store, state, tracker, cancel);
                }
                publish_status(inbox, state, published).await;
            }
        }
    };
    // The client is gone: its refresh must not outlive it (it holds the client, and with it
    // the device store that a logout is about to wipe).
    stop_refresh(&mut refresh).await;
    // Events the engine queued before it returned still count.
    while let Ok(event) = rx.try_recv() {
        logged_out |= matches!(event, EngineEvent::LoggedOut { .. });
        apply_event(session, store, state, delivery, event).await;
        publish_status(inbox, state, published).await;
    }
    match result {
        Ok(Exit::Stopped { flushed }) => Outcome::Stopped { flushed },
        Ok(Exit::Terminal) => {
            if logged_out && !inbox.fenced() {
                // The credentials are dead; wipe them so the next start shows a fresh QR.
                if let Err(e) = store.wipe_credentials(session).await {
                    tracing::error!(session, error = %e, "could not wipe credentials");
                }
            }
            Outcome::Terminal
        }
        Err(e) if e.is_retryable() => Outcome::Retry(e.to_string()),
        Err(e) => {
            state.send_modify(|s| s.fail(&Input::ConnectFailed, e.to_string()));
            publish_status(inbox, state, published).await;
            Outcome::Terminal
        }
    }
}

/// A running group-cache refresh: its token and its task.
struct Refresh {
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

/// Cancels and joins `refresh`, if any.
async fn stop_refresh(refresh: &mut Option<Refresh>) {
    if let Some(Refresh { cancel, task }) = refresh.take() {
        cancel.cancel();
        let _ = task.await;
    }
}

/// Once WORKING (after pairing or a reconnect), the group cache is refreshed from
/// WhatsApp beside the event loop, so a long list never delays the session's events. The
/// task runs on the session's tracker under a child of its token; its owner, `run_once`,
/// cancels and joins it when the connection ends.
fn refresh_groups(
    store: &Store,
    state: &watch::Sender<LiveState>,
    tracker: &TaskTracker,
    cancel: &CancellationToken,
) -> Option<Refresh> {
    let live = state.borrow().engine.clone()?;
    let store = store.clone();
    let cancel = cancel.child_token();
    let token = cancel.clone();
    let task = tracker.spawn(async move {
        tokio::select! {
            () = token.cancelled() => {}
            r = super::groups::refresh(&store, &live) => match r {
                Ok(n) => tracing::debug!(session = live.name(), groups = n, "group cache refreshed"),
                Err(e) => tracing::warn!(session = live.name(), error = %e, "could not refresh the group cache"),
            },
        }
    });
    Some(Refresh { cancel, task })
}

/// Logs a QR code drawn with Unicode half blocks (WAHA prints an ASCII QR likewise).
fn print_qr(session: &str, code: &str) {
    match qrcode::QrCode::new(code.as_bytes()) {
        Ok(qr) => {
            let art = qr
                .render::<qrcode::render::unicode::Dense1x2>()
                .dark_color(qrcode::render::unicode::Dense1x2::Light)
                .light_color(qrcode::render::unicode::Dense1x2::Dark)
                .build();
            tracing::info!(
                session,
                "scan this QR code with WhatsApp > Linked devices:\n{art}"
            );
        }
        Err(e) => tracing::warn!(session, error = %e, "cannot draw the QR code"),
    }
}

async fn apply_event(
    session: &str,
    store: &Store,
    state: &watch::Sender<LiveState>,
    delivery: &Delivery,
    event: EngineEvent,
) {
    match event {
        EngineEvent::QrCode { code, .. } => state.send_modify(|s| {
            s.apply(&Input::QrCode);
            s.qr = Some(code);
        }),
        EngineEvent::PairingCode { .. } => state.send_modify(|s| {
            s.apply(&Input::PairingCode);
        }),
        EngineEvent::Connected { me, session: live } => {
            // The live state starts with the stored account, so a restart or reconnect of
            // the same account writes nothing (one store round trip per session and start,
            // issue 16). A failed save is tried again at the next start, which begins
            // from what the store really holds.
            let known = state.borrow().me.as_ref() == Some(&me);
            if !known && let Err(e) = store.set_me(session, Some(&me)).await {
                tracing::error!(session, error = %e, "could not save me");
            }
            tracing::info!(session, id = me.id, "session is WORKING");
            state.send_modify(|s| {
                s.me = Some(me);
                s.apply(&Input::Connected);
                if s.status == SessionStatus::Working {
                    s.engine = Some(live);
                }
            });
        }
        EngineEvent::Paired => tracing::info!(session, "QR accepted by the phone; logging in"),
        EngineEvent::Disconnected => state.send_modify(|s| {
            crate::metrics::global().reconnect();
            s.apply(&Input::Disconnected);
        }),
        EngineEvent::QrExhausted => state.send_modify(|s| {
            s.fail(&Input::QrExhausted, "QR code was not scanned in time");
        }),
        EngineEvent::LoggedOut { reason } => {
            // The account is gone at once; the keys are wiped once the client has stopped
            // writing them (see run_once).
            if let Err(e) = store.set_me(session, None).await {
                tracing::error!(session, error = %e, "could not clear me");
            }
            state.send_modify(|s| {
                s.me = None;
                s.fail(&Input::LoggedOut, reason);
            });
        }
        EngineEvent::Message(m) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Message(me, m)).await;
        }
        EngineEvent::Ack(a) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Ack(me, a)).await;
        }
        EngineEvent::Presence(p) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Presence(me, p)).await;
        }
        EngineEvent::Group(c) => {
            let (me, live) = {
                let s = state.borrow();
                (s.me.clone(), s.engine.clone())
            };
            delivery.push(Job::Group(me, live, c)).await;
        }
        EngineEvent::History(h) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::History(me, h)).await;
        }
        EngineEvent::Call(c) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Call(me, c)).await;
        }
        EngineEvent::Chat(c) => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Chat(me, c)).await;
        }
        EngineEvent::Raw { event, data } => {
            let me = state.borrow().me.clone();
            delivery.push(Job::Engine(me, event, data)).await;
        }
        EngineEvent::StreamReplaced => state.send_modify(|s| {
            s.fail(
                &Input::StreamReplaced,
                "stream replaced by another connection",
            );
        }),
    }
}

#[cfg(test)]
mod tests;
