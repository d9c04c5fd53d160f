//! One running session: a task that drives the engine and the status machine.
//!
//! Owns: the session's live status (a `watch` channel the manager reads) and its engine
//! task. Spawned by [`super::SessionManager`] on start, on the runtime handle the manager
//! captured at build time; lives until stop (its cancellation token) or the engine ends.
//! Stopping never logs the session out: the credentials stay in the store.

use std::{collections::VecDeque, time::Duration};

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use super::status::{Input, SessionStatus, next};
use crate::{
    engine::{self, EngineEvent, StartSpec},
    sessions::config::MeInfo,
    store::Store,
};

/// How many past statuses a `session.status` payload carries (WAHA: the last 3).
const STATUS_HISTORY: usize = 3;

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
        true
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// The manager's handle on a running session.
#[must_use = "dropping the handle leaves the task running unobserved; call stop()"]
pub struct RuntimeHandle {
    /// Live state, updated by the task.
    pub state: watch::Receiver<LiveState>,
    cancel: CancellationToken,
    join: tokio::task::JoinHandle<()>,
}

impl RuntimeHandle {
    /// Two-phase stop: signal, then wait for the task up to `deadline`.
    pub async fn stop(self, deadline: Duration) {
        self.cancel.cancel();
        let abort = self.join.abort_handle();
        if tokio::time::timeout(deadline, self.join).await.is_err() {
            tracing::warn!("session task did not stop in {deadline:?}; aborting it");
            abort.abort();
        }
    }
}

/// Spawns the runtime of one session on `rt`.
pub fn spawn(
    rt: &tokio::runtime::Handle,
    spec: StartSpec,
    store: Store,
    me: Option<MeInfo>,
    cancel: CancellationToken,
) -> RuntimeHandle {
    let mut initial = LiveState::new(me);
    initial.apply(&Input::Start);
    let (tx, rx) = watch::channel(initial);
    let join = rt.spawn(run(spec, store, tx, cancel.clone()));
    RuntimeHandle {
        state: rx,
        cancel,
        join,
    }
}

async fn run(
    spec: StartSpec,
    store: Store,
    state: watch::Sender<LiveState>,
    cancel: CancellationToken,
) {
    let session = spec.session.clone();
    // Bounded: the engine waits when the runtime lags (status changes are few and small).
    let (tx, mut rx) = mpsc::channel::<EngineEvent>(64);
    let engine = engine::run(spec, tx, cancel.child_token());
    tokio::pin!(engine);
    let mut engine_done = false;
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            result = &mut engine, if !engine_done => {
                engine_done = true;
                let reason = match result {
                    Ok(()) => "the WhatsApp connection ended".to_string(),
                    Err(e) => e.to_string(),
                };
                tracing::warn!(session, %reason, "engine stopped");
                state.send_modify(|s| {
                    if s.apply(&Input::ConnectFailed) {
                        s.failure = Some(reason);
                    }
                });
            }
            Some(event) = rx.recv() => {
                handle_event(&session, &store, &state, event).await;
            }
        }
    }
}

async fn handle_event(
    session: &str,
    store: &Store,
    state: &watch::Sender<LiveState>,
    event: EngineEvent,
) {
    match event {
        EngineEvent::QrCode { code, .. } => state.send_modify(|s| {
            s.apply(&Input::QrCode);
            s.qr = Some(code);
        }),
        EngineEvent::PairingCode { .. } => {
            state.send_modify(|s| {
                s.apply(&Input::PairingCode);
            });
        }
        EngineEvent::Connected { me } => {
            if let Err(e) = store.set_me(session, Some(&me)).await {
                tracing::error!(session, error = %e, "could not save me");
            }
            state.send_modify(|s| {
                s.me = Some(me);
                s.apply(&Input::Connected);
            });
        }
        EngineEvent::Disconnected => state.send_modify(|s| {
            s.apply(&Input::Disconnected);
        }),
        EngineEvent::QrExhausted => state.send_modify(|s| {
            if s.apply(&Input::QrExhausted) {
                s.failure = Some("QR code was not scanned in time".into());
            }
        }),
        EngineEvent::LoggedOut { reason } => state.send_modify(|s| {
            if s.apply(&Input::LoggedOut) {
                s.failure = Some(reason);
            }
        }),
        EngineEvent::StreamReplaced => state.send_modify(|s| {
            if s.apply(&Input::StreamReplaced) {
                s.failure = Some("stream replaced by another connection".into());
            }
        }),
    }
}
