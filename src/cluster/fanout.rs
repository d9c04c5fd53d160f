//! Cluster mode: worker-to-worker event fan-out, so that `/ws` on any worker streams the
//! events of every session, wherever it runs (issue 15 item 4).
//!
//! Owns: one [`FanOut`] per process (built by `app::App::build` in cluster mode, kept in
//! `AppState` for the `/ws` handler, stopped and joined by `App::run_until_stopped` after
//! the `/ws` clients are closed): its membership loop and one *link* task per live peer.
//! A link reads the peer's `GET /api/cluster/events` (`api::peer_events`, signed with the
//! cluster credential) and hands every envelope to [`EventBus::relay`], which only this
//! worker's `/ws` clients read. Links exist only while this worker has `/ws` clients; the
//! loop reconciles them with the membership (`wharf_workers`) every tick and whenever a
//! client connects ([`FanOut::ready`]), so a worker joining or dying is picked up within a
//! tick, and a broken stream is redialled with a short backoff.
//!
//! Each event is published once, on the worker running its session; that worker's local
//! clients read it from the bus, the others through exactly one link each. Relayed
//! envelopes are never re-exported, so there are no duplicates and no loops.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::ClusterSettings;
use crate::{
    events::{
        EventBus,
        relay::{KEEP_ALIVE, Relayed},
    },
    store::mongo::cluster::{ClusterStore, WorkerRow},
};

/// The peer stream's path (`api::peer_events::PATH`; repeated here so the domain side does
/// not import the HTTP layer).
const PEER_PATH: &str = "/api/cluster/events";

/// Longest wait between two dials of a failing peer.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The fan-out of one worker. Cheap to clone.
#[derive(Clone)]
pub struct FanOut {
    inner: Arc<Inner>,
}

struct Inner {
    bus: EventBus,
    store: ClusterStore,
    settings: ClusterSettings,
    http: reqwest::Client,
    links: Mutex<HashMap<String, Link>>,
    /// Rings the loop: a `/ws` client connected.
    wake: Notify,
    cancel: CancellationToken,
    task: Mutex<Option<JoinHandle<()>>>,
}

/// A running subscription to one peer.
struct Link {
    url: String,
    cancel: CancellationToken,
    join: JoinHandle<()>,
    /// `true` while the peer's stream is open (its first line was read).
    ready: watch::Receiver<bool>,
}

impl FanOut {
    /// Builds the fan-out and starts its loop on the current runtime.
    pub fn start(bus: EventBus, store: ClusterStore, settings: ClusterSettings) -> Self {
        let http = reqwest::Client::builder()
            // Peers are reached directly, never through a proxy from the environment.
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .unwrap_or_default();
        let this = Self {
            inner: Arc::new(Inner {
                bus,
                store,
                settings,
                http,
                links: Mutex::new(HashMap::new()),
                wake: Notify::new(),
                cancel: CancellationToken::new(),
                task: Mutex::new(None),
            }),
        };
        let me = this.clone();
        let join = tokio::spawn(async move { me.run().await });
        *this.inner.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(join);
        this
    }

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<String, Link>> {
        self.inner.links.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(&self) {
        let tick = self.inner.settings.tick();
        loop {
            tokio::select! {
                () = self.inner.cancel.cancelled() => return,
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(tick) => {}
            }
            self.sync().await;
        }
    }

    /// Reconciles the links with the membership: one per live peer while this worker has
    /// `/ws` clients, none otherwise.
    async fn sync(&self) {
        let wanted: Vec<WorkerRow> = if self.inner.bus.ws_clients() == 0 {
            Vec::new()
        } else {
            let dead = i64::try_from(self.inner.settings.dead_after.as_millis()).unwrap_or(0);
            match self
                .inner
                .store
                .live_workers(crate::clock::now_ms() - dead)
                .await
            {
                Ok(live) => live
                    .into_iter()
                    .filter(|w| w.id != self.inner.settings.worker_id)
                    .collect(),
                Err(e) => {
                    // Keep the links as they are until the membership can be read again.
                    tracing::warn!(error = %e, "fan-out: cannot read the cluster membership");
                    return;
                }
            }
        };
        let stale: Vec<Link> = {
            let mut links = self.links();
            let gone: Vec<String> = links
                .iter()
                .filter(|(id, l)| !wanted.iter().any(|w| &w.id == *id && w.url == l.url))
                .map(|(id, _)| id.clone())
                .collect();
            let stale = gone.iter().filter_map(|id| links.remove(id)).collect();
            for w in &wanted {
                if !links.contains_key(&w.id) {
                    links.insert(w.id.clone(), self.link(w));
                }
            }
            stale
        };
        for link in stale {
            link.cancel.cancel();
            let _ = link.join.await;
        }
    }

    fn link(&self, peer: &WorkerRow) -> Link {
        let cancel = self.inner.cancel.child_token();
        let (tx, ready) = watch::channel(false);
        let task = LinkTask {
            peer: peer.id.clone(),
            url: format!("{}{PEER_PATH}", peer.url.trim_end_matches('/')),
            http: self.inner.http.clone(),
            settings: self.inner.settings.clone(),
            bus: self.inner.bus.clone(),
            ready: tx,
        };
        let token = cancel.clone();
        let join = tokio::spawn(async move { task.run(token).await });
        Link {
            url: peer.url.clone(),
            cancel,
            join,
            ready,
        }
    }

    /// A `/ws` client subscribed (it holds [`EventBus::subscribe_relayed`]): links to every
    /// live peer are opened now, and this waits (at most `within`) until each is streaming,
    /// so the client's handshake completes only once remote events reach it.
    pub async fn ready(&self, within: Duration) {
        self.sync().await;
        let mut waits: Vec<watch::Receiver<bool>> =
            self.links().values().map(|l| l.ready.clone()).collect();
        let all = async {
            for w in &mut waits {
                let _ = w.wait_for(|open| *open).await;
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("fan-out: some peers are not streaming yet");
        }
        self.inner.wake.notify_one();
    }

    /// Peers whose stream is open now (for `/api/server/status`).
    pub fn streaming(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .links()
            .iter()
            .filter(|(_, l)| *l.ready.borrow())
            .map(|(id, _)| id.clone())
            .collect();
        ids.sort();
        ids
    }

    /// Stops the loop and every link, and waits for them.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        let task = self
            .inner
            .task
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        let links: Vec<Link> = self.links().drain().map(|(_, l)| l).collect();
        for link in links {
            link.cancel.cancel();
            let _ = link.join.await;
        }
    }
}

/// What one link task needs.
struct LinkTask {
    peer: String,
    url: String,
    http: reqwest::Client,
    settings: ClusterSettings,
    bus: EventBus,
    ready: watch::Sender<bool>,
}

impl LinkTask {
    async fn run(self, cancel: CancellationToken) {
        let mut backoff = Duration::from_millis(200);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                streamed = self.stream() => {
                    self.ready.send_replace(false);
                    match streamed {
                        // It was up: redial promptly.
                        Ok(()) => backoff = Duration::from_millis(200),
                        Err(e) => {
                            tracing::debug!(peer = self.peer, error = %e, "fan-out: peer stream failed");
                        }
                    }
                }
            }
            tokio::select! {
                () = cancel.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One subscription, until the stream ends: `Ok` if it had opened.
    async fn stream(&self) -> Result<(), String> {
        let credential = self.settings.peer.sign("GET", PEER_PATH);
        let mut res = self
            .http
            .get(&self.url)
            .header(super::peer::HEADER, credential)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if !res.status().is_success() {
            return Err(format!("{} answered {}", self.url, res.status()));
        }
        let mut buf: Vec<u8> = Vec::new();
        let mut opened = false;
        loop {
            let chunk = tokio::time::timeout(KEEP_ALIVE * 3, res.chunk())
                .await
                .map_err(|_| "silent for three keep-alives".to_string());
            let chunk = match chunk {
                Ok(Ok(Some(c))) => c,
                Ok(Ok(None)) => return if opened { Ok(()) } else { Err("closed".into()) },
                Ok(Err(e)) => {
                    return if opened { Ok(()) } else { Err(e.to_string()) };
                }
                Err(e) => return if opened { Ok(()) } else { Err(e) },
            };
            if !opened {
                opened = true;
                self.ready.send_replace(true);
                tracing::info!(peer = self.peer, "fan-out: streaming the peer's events");
            }
            buf.extend_from_slice(&chunk);
            while let Some(end) = buf.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                if let Some(event) = std::str::from_utf8(&line).ok().and_then(Relayed::from_line) {
                    self.bus.relay(Arc::new(event));
                }
            }
        }
    }
}
