//! Cluster mode: worker-to-worker event fan-out, so that `/ws` on any worker streams the
//! events of every session, wherever it runs (issue 15 item 4).
//!
//! Owns: one [`FanOut`] per process (built by `app::App::build` in cluster mode, kept in
//! `AppState` for the `/ws` handler, stopped and joined by `App::run_until_stopped` after
//! the `/ws` clients are closed): its membership loop and one *link* task per live peer.
//! A link reads the peer's `GET /api/cluster/events` (`api::peer_events`, signed with the
//! cluster credential) and hands every envelope to [`EventBus::relay`], which only this
//! worker's `/ws` clients read. Links exist only while this worker has `/ws` clients; the
//! loop reconciles them with the membership (the lease loop's snapshot of `wharf_workers`) every tick and whenever a
//! client connects ([`FanOut::ready`]), so a worker joining or dying is picked up within a
//! tick, and a broken stream is redialled with a short backoff.
//!
//! Each event is published once, on the worker running its session; that worker's local
//! clients read it from the bus, the others through exactly one link each. Relayed
//! envelopes are never re-exported, so there are no duplicates and no loops. Sessions
//! render `engine.event` only while someone listens, so it has its own link per peer
//! (`?engine=1`, which makes the peer render them), open only while a local client asked
//! for it by name; the main link carries every other event.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

use super::ClusterSettings;
use crate::events::{
    EventBus,
    relay::{ENGINE_QUERY, KEEP_ALIVE, Relayed},
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
    /// The other live workers (id, URL): the lease loop's membership snapshot, refreshed
    /// every tick, so the fan-out reads nothing from MongoDB itself.
    peers: Peers,
    settings: ClusterSettings,
    http: reqwest::Client,
    /// By (peer, engine): the engine link carries only `engine.event` (see below).
    links: Mutex<HashMap<(String, bool), Link>>,
    /// Local `/ws` clients that asked for `engine.event` ([`EngineClient`]).
    engine_clients: AtomicUsize,
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

/// Where the fan-out learns the other live workers (id, URL).
pub type Peers = Arc<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

impl FanOut {
    /// Builds the fan-out and starts its loop on the current runtime.
    pub fn start(bus: EventBus, peers: Peers, settings: ClusterSettings) -> Self {
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
                peers,
                settings,
                http,
                links: Mutex::new(HashMap::new()),
                engine_clients: AtomicUsize::new(0),
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

    fn links(&self) -> std::sync::MutexGuard<'_, HashMap<(String, bool), Link>> {
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
    /// `/ws` clients, plus one for `engine.event` while one of them asked for it by name;
    /// none otherwise.
    async fn sync(&self) {
        let peers: Vec<(String, String)> = if self.inner.bus.ws_clients() == 0 {
            Vec::new()
        } else {
            (self.inner.peers)()
        };
        let engine = self.inner.engine_clients.load(Ordering::Acquire) > 0;
        let wanted: Vec<(&(String, String), bool)> = peers
            .iter()
            .flat_map(|w| [(w, false), (w, true)])
            .filter(|(_, e)| !e || engine)
            .collect();
        let stale: Vec<Link> = {
            let mut links = self.links();
            let gone: Vec<(String, bool)> = links
                .iter()
                .filter(|((id, e), l)| {
                    !wanted
                        .iter()
                        .any(|((wid, url), we)| wid == id && we == e && *url == l.url)
                })
                .map(|(k, _)| k.clone())
                .collect();
            let stale = gone.iter().filter_map(|k| links.remove(k)).collect();
            for (w, e) in &wanted {
                links
                    .entry((w.0.clone(), *e))
                    .or_insert_with(|| self.link(&w.0, &w.1, *e));
            }
            stale
        };
        for link in stale {
            link.cancel.cancel();
            let _ = link.join.await;
        }
    }

    fn link(&self, peer: &str, peer_url: &str, engine: bool) -> Link {
        let cancel = self.inner.cancel.child_token();
        let (tx, ready) = watch::channel(false);
        let path = if engine {
            format!("{PEER_PATH}?{ENGINE_QUERY}")
        } else {
            PEER_PATH.to_string()
        };
        let task = LinkTask {
            peer: peer.to_string(),
            url: format!("{}{path}", peer_url.trim_end_matches('/')),
            path,
            http: self.inner.http.clone(),
            settings: self.inner.settings.clone(),
            bus: self.inner.bus.clone(),
            ready: tx,
        };
        let token = cancel.clone();
        let join = tokio::spawn(async move { task.run(token).await });
        Link {
            url: peer_url.to_string(),
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

    /// A `/ws` client that asked for `engine.event` by name: while the returned guard
    /// lives, every peer streams its `engine.event`s here too (and its sessions render
    /// them). Call [`Self::ready`] after taking it.
    pub fn engine_client(&self) -> EngineClient {
        self.inner.engine_clients.fetch_add(1, Ordering::AcqRel);
        EngineClient(self.clone())
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

/// Held by a `/ws` client subscribed to `engine.event` (see [`FanOut::engine_client`]);
/// the engine links close at the next tick after the last one drops.
#[must_use]
pub struct EngineClient(FanOut);

impl Drop for EngineClient {
    fn drop(&mut self) {
        self.0.inner.engine_clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What one link task needs.
struct LinkTask {
    peer: String,
    url: String,
    /// The signed request line's path and query.
    path: String,
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
        let credential = self.settings.peer.sign("GET", &self.path);
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
