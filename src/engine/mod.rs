//! The WhatsApp engine: the only module that names whatsapp-rust types.
//!
//! Owns: one whatsapp-rust `Bot` per running session — its device store (SQLite file in the
//! session's folder, or the session's own MongoDB database), transport, pinned WhatsApp Web
//! version — the translation of its events into [`EngineEvent`]s, the few lifecycle
//! [`Control`]s whose order matters (logout, pairing code), and [`Session`], the cloneable
//! handle through which everything else reaches the client. Called by the per-session
//! runtime (`sessions::runtime`) once per connection attempt; [`run`] lives as long as the
//! client, and every [`Session`] it handed out goes stale when it returns. Stopping
//! disconnects without logging out: credentials stay in the store.
//!
//! # Adding a feature file
//! Request/response operations are plain `async fn`s on [`Session`], one file per WAHA
//! feature (`messaging.rs`, `groups.rs`; `media.rs`… later). To add one:
//! 1. create `engine/<feature>.rs` with `impl super::Session { pub async fn …(&self, …) }`,
//!    each starting with `let client = self.client()?;` (a stale handle then answers
//!    [`Error::NotRunning`] instead of talking to a dead client);
//! 2. take and return wharf's own types only (ids as WAHA strings, our structs) — no
//!    whatsapp-rust or wacore type may leave `engine/`;
//! 3. add `pub mod <feature>;` below.
//!
//! No enum variant, no match arm and no task: the call runs on the caller's task. Whatever
//! whatsapp-rust spawns meanwhile lands on the runtime the session was started on (see
//! [`PinnedRuntime`]), never on the caller's (an actix worker's) runtime.

pub mod calls;
mod channel_media;
pub mod channel_search;
pub mod channels;
pub mod chat_actions;
pub mod contacts;
pub mod dump;
pub mod engine_events;
pub mod groups;
pub mod history;
pub mod idle_sqlite;
pub mod labels;
pub mod media;
pub mod media_http;
pub mod messaging;
pub mod mongo_store;
pub mod outgoing_media;
pub mod polls;
pub mod presence;
pub mod profile;
pub mod proxy;
pub mod status;
pub mod transport;
mod write_buffer;

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};
use whatsapp_rust::{
    pair_code::PairCodeOptions,
    prelude::*,
    store::traits::Backend,
    wacore::runtime::{AbortHandle, Runtime},
};

use crate::model::session::{MeInfo, SessionConfig};

/// WhatsApp Web version announced to the server (`WHARF_WA_VERSION` overrides it). Pinned so
/// the client never fetches `web.whatsapp.com/sw.js` to discover it.
pub const DEFAULT_WA_VERSION: (u32, u32, u32) = (2, 3000, 1_030_000_000);

/// Parses `2.3000.1030000000`.
pub fn parse_wa_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.trim().split('.').map(|p| p.parse::<u32>().ok());
    let v = (parts.next()??, parts.next()??, parts.next()??);
    parts.next().is_none().then_some(v)
}

/// Where a session's device keys live: plain data chosen by the store
/// (`store.session(name).device()`); [`open_backend`] turns it into whatsapp-rust's backend.
pub use crate::store::DeviceLocation as DeviceStore;

/// Everything the engine needs to run one session.
#[derive(Debug, Clone)]
pub struct StartSpec {
    /// Session name.
    pub session: String,
    /// The session's config (proxy, client name…).
    pub config: Option<SessionConfig>,
    /// WhatsApp websocket override (`WHARF_WA_URL`, mock-network builds only).
    pub wa_url: Option<String>,
    /// Announced WhatsApp Web version.
    pub wa_version: (u32, u32, u32),
    /// The proxy to reach WhatsApp through: the session's `config.proxy`, else
    /// `WHATSAPP_PROXY_SERVER` (validated when stored).
    pub proxy: Option<crate::model::session::ProxyConfig>,
    /// Device keys.
    pub device: DeviceStore,
    /// No QR or login within this long after (re)connecting → [`Error::ConnectTimeout`].
    pub connect_timeout: Duration,
    /// An embedded device store unused this long closes until its next use (0 = never;
    /// [`idle_sqlite`]).
    pub device_store_idle: Duration,
    /// One-time pre-keys generated and uploaded per batch (`WHARF_PREKEY_UPLOAD_COUNT`).
    pub prekey_upload_count: usize,
    /// Cluster mode: the session's lease. Device-key writes and new connections are
    /// refused once it is not provably held (`crate::cluster`).
    pub fence: Option<crate::cluster::Fence>,
    /// Whether to report every raw event as [`EngineEvent::Raw`] (`engine.event`).
    pub engine_events: engine_events::EngineEventsWanted,
}

/// What the engine reports to the session runtime.
#[derive(Debug, Clone, PartialEq)]
pub enum EngineEvent {
    /// Show this QR code (raw string) for `timeout`.
    QrCode {
        /// The raw QR payload.
        code: String,
        /// How long it is valid.
        timeout: Duration,
    },
    /// A pairing code was issued for a phone number.
    PairingCode {
        /// `ABCD-EFGH`.
        code: String,
    },
    /// Logged in and connected as `me`; `session` reaches the client until the connection
    /// ends.
    Connected {
        /// The account.
        me: MeInfo,
        /// The live handle (stale once [`run`] returns).
        session: Session,
    },
    /// The phone accepted the QR (or code): the client signed the pairing and will log in
    /// on the connection the server opens next. The QR timeout no longer applies.
    Paired,
    /// Unexpected socket loss; the engine reconnects by itself.
    Disconnected,
    /// Every QR expired unscanned (terminal).
    QrExhausted,
    /// Unlinked from the phone or credentials rejected (terminal).
    LoggedOut {
        /// Why, for the status data.
        reason: String,
    },
    /// Another connection replaced this one (terminal).
    StreamReplaced,
    /// A message arrived (or one of ours was sent from another device).
    Message(Box<messaging::InboundMessage>),
    /// Our messages were delivered, read or played.
    Ack(messaging::Ack),
    /// A contact's presence or typing state.
    Presence(messaging::Presence),
    /// A group we are in changed (or we joined or left one).
    Group(groups::GroupChange),
    /// The phone's history (chats, recent messages) for this newly linked device.
    History(history::HistoryBlob),
    /// A call rang, was answered or was declined.
    Call(calls::CallSignal),
    /// An app-state chat mutation (archive…), from any device of the account.
    Chat(chat_actions::AppStateChange),
    /// A raw engine event, rendered and redacted (`engine.event`), reported only while
    /// [`StartSpec::engine_events`] says someone listens.
    Raw {
        /// `events.<Variant>`.
        event: String,
        /// The event's JSON.
        data: serde_json::Value,
    },
}

/// Lifecycle requests the runtime forwards to a running engine: only those whose order
/// against the connection matters (request/response operations are [`Session`] methods).
#[derive(Debug)]
pub enum Control {
    /// `POST /api/{session}/auth/request-code`.
    RequestCode {
        /// Digits only, with country code.
        phone: String,
        /// The code (`ABCD-EFGH`) or why not.
        reply: oneshot::Sender<Result<String, Error>>,
    },
    /// Unlink this device from the phone (logout/delete of a WORKING session). Handled in
    /// line: it must finish before the runtime stops the client.
    Logout {
        /// Done.
        reply: oneshot::Sender<Result<(), Error>>,
    },
}

/// A cloneable handle on one connection's client: the request/response operations of each
/// feature file (`messaging.rs`, …) are `async fn`s on it and run on the caller's task.
///
/// Handed out by [`run`] with [`EngineEvent::Connected`]; once [`run`] returns the handle
/// is stale and every call answers [`Error::NotRunning`] (never a panic, never a call into
/// a disconnected client).
#[derive(Clone)]
pub struct Session {
    inner: Arc<SessionInner>,
}

struct SessionInner {
    /// Session name (for logs and for the domain layer to find the session's stores).
    name: String,
    /// The whatsapp-rust client; private to `engine/`.
    client: Arc<Client>,
    /// Cancelled when the connection ends (by [`run`], on every exit path).
    closed: CancellationToken,
    /// Keys of the polls seen on this connection (for decrypting votes).
    polls: polls::PollCache,
    /// Presence subscriptions and what they showed.
    presences: presence::Book,
}

impl Session {
    fn new(name: String, client: Arc<Client>) -> Self {
        Self {
            inner: Arc::new(SessionInner {
                name,
                client,
                closed: CancellationToken::new(),
                polls: polls::PollCache::default(),
                presences: presence::Book::default(),
            }),
        }
    }

    /// The session's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Whether the connection this handle belongs to is still up.
    pub fn is_live(&self) -> bool {
        !self.inner.closed.is_cancelled()
    }

    /// The client, for the feature files; `NotRunning` on a stale handle.
    fn client(&self) -> Result<&Arc<Client>, Error> {
        if self.is_live() {
            Ok(&self.inner.client)
        } else {
            Err(Error::NotRunning)
        }
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("name", &self.inner.name)
            .field("live", &self.is_live())
            .finish()
    }
}

/// Two handles are equal when they reach the same connection.
impl PartialEq for Session {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// whatsapp-rust's default runtime spawns on the *ambient* runtime. Operations now run on
/// the caller's task — an actix worker, a single-threaded runtime that is not the
/// session's — so the client is given this runtime instead: every task it spawns goes to
/// the runtime the session was started on (`../shared/reference/whatsapp-rust.md` §1).
/// The client owns those tasks (it aborts or ends them on disconnect).
struct PinnedRuntime(tokio::runtime::Handle);

impl Runtime for PinnedRuntime {
    fn spawn(
        &self,
        future: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>,
    ) -> AbortHandle {
        let handle = self.0.spawn(future);
        AbortHandle::new(move || handle.abort())
    }

    fn spawn_detached(&self, future: std::pin::Pin<Box<dyn Future<Output = ()> + Send + 'static>>) {
        drop(self.0.spawn(future));
    }

    fn sleep(&self, duration: Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }

    fn spawn_blocking(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send>> {
        let task = self.0.spawn_blocking(f);
        Box::pin(async move {
            let _ = task.await;
        })
    }

    fn yield_now(&self) -> Option<std::pin::Pin<Box<dyn Future<Output = ()> + Send>>> {
        // The session runtime is multi-threaded: no cooperative yielding needed.
        None
    }
}

/// Engine failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The device store could not be opened.
    #[error("cannot open the session's device store: {0}")]
    Store(String),
    /// The device store is there but unreadable: retrying cannot help (terminal FAILED).
    #[error("the session's device store is damaged: {0}")]
    Damaged(String),
    /// The client could not be built.
    #[error("cannot start the WhatsApp client: {0}")]
    Build(String),
    /// Neither a QR code nor a login within the deadline.
    #[error("could not connect to WhatsApp within {0:?}")]
    ConnectTimeout(Duration),
    /// The server refused the pairing-code request.
    #[error("pairing code request failed: {0}")]
    PairCode(String),
    /// The engine stopped before answering.
    #[error("the session is not running")]
    NotRunning,
    /// A poll vote could not be decrypted.
    #[error("poll vote: {0}")]
    PollVote(String),
    /// Downloading a message's media failed.
    #[error("media download failed: {0}")]
    Download(String),
    /// The request names something invalid (e.g. a chat id).
    #[error("{0}")]
    BadRequest(String),
    /// WhatsApp refused or failed to take a message.
    #[error("sending failed: {0}")]
    Send(String),
    /// WhatsApp answered a request with an error (403 not allowed, 404 unknown group or
    /// code, 409 conflict, …).
    #[error("WhatsApp refused the request: {code} {text}")]
    Refused {
        /// WhatsApp's error code (HTTP-like).
        code: u16,
        /// WhatsApp's error text (`forbidden`, `item-not-found`, …).
        text: String,
    },
    /// The request is well-formed but cannot be done (WAHA's 422 with this message).
    #[error("{0}")]
    Unprocessable(String),
    /// A `mock-network` build (certificate checks off) was asked to reach WhatsApp itself.
    #[error(
        "this is a test build (mock-network): it connects only to WHARF_WA_URL, never to WhatsApp"
    )]
    MockNetworkWithoutUrl,
}

impl Error {
    /// Whether the runtime should try again (with backoff) after this error.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::ConnectTimeout(_) | Self::Build(_) | Self::Store(_)
        )
    }
}

/// How a [`run`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// Cancelled by the runtime (stop/shutdown); nothing to do.
    Stopped {
        /// Whether the client's final flush (keys, receipts, device snapshot) finished
        /// within [`FLUSH_DEADLINE`].
        flushed: bool,
    },
    /// A terminal event was reported; the session must not reconnect by itself.
    Terminal,
}

/// What the bot's event handler forwards (only what the runtime needs).
enum Raw {
    Qr(String, Duration),
    PairCode(String),
    Paired,
    Connected,
    Disconnected,
    /// The client dials WhatsApp (from [`transport`]: on the first connect and on every
    /// reconnect). While logged in, that means the connection it had is over — the only
    /// sign of it when the end was one the client expected (a `515` stream error: it
    /// reconnects at once and emits no `Disconnected`).
    Dialing,
    LoggedOut(String),
    Replaced,
    QrExhausted,
    Fatal(String),
    Inbound(Vec<messaging::InboundMessage>),
    Ack(messaging::Ack),
    Presence(messaging::Presence),
    Group(groups::GroupChange),
    History(history::HistoryBlob),
    Call(calls::CallSignal),
    Chat(chat_actions::AppStateChange),
    Engine(String, serde_json::Value),
}

/// The handler runs inline in the client's event loop and cannot wait, and dropping a
/// message is not an option, so this queue is unbounded. What drains it does one store
/// write and one outbox write per message, far faster than WhatsApp delivers; a stalled
/// store shows up as this queue's length in the logs (`raw_backlog`).
struct Forwarder {
    session: String,
    tx: mpsc::UnboundedSender<Raw>,
    engine_events: engine_events::EngineEventsWanted,
}

impl EventHandler for Forwarder {
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "Event is non_exhaustive; only connection events are forwarded here"
    )]
    fn handle_event(&self, event: Arc<Event>) {
        // `engine.event` comes first: the raw event before what wharf makes of it.
        if self.engine_events.get() {
            let (name, data) = engine_events::render(&event);
            let _ = self.tx.send(Raw::Engine(name, data));
        }
        let raw = match &*event {
            Event::PairingQrCode(q) => Raw::Qr(q.code.clone(), q.timeout),
            Event::PairingCode(c) => Raw::PairCode(c.code.clone()),
            Event::PairSuccess(_) => Raw::Paired,
            Event::Connected(_) => Raw::Connected,
            Event::Disconnected(_) => Raw::Disconnected,
            Event::LoggedOut(l) => Raw::LoggedOut(format!("logged out: {:?}", l.reason)),
            Event::StreamReplaced(_) => Raw::Replaced,
            Event::PairingQrCodesExhausted(_) => Raw::QrExhausted,
            Event::TemporaryBan(b) => Raw::Fatal(format!("temporarily banned: {:?}", b.code)),
            Event::ClientOutdated(_) => {
                Raw::Fatal("WhatsApp rejected the client version (set WHARF_WA_VERSION)".into())
            }
            Event::Messages(_) => Raw::Inbound(messaging::inbound(&event)),
            Event::Receipt(_) => match messaging::ack(&event) {
                Some(a) => Raw::Ack(a),
                None => return,
            },
            Event::ServerAck(_) => match messaging::server_ack(&event) {
                Some(a) => Raw::Ack(a),
                None => return,
            },
            Event::Presence(_) | Event::ChatPresence(_) => match messaging::presence(&event) {
                Some(p) => Raw::Presence(p),
                None => return,
            },
            Event::HistorySync(h) => Raw::History(history::HistoryBlob::new((**h).clone())),
            Event::GroupUpdate(_) | Event::PictureUpdate(_) => match groups::change(&event) {
                Some(c) => Raw::Group(c),
                None => return,
            },
            Event::IncomingCall(_) => match calls::signal(&event) {
                Some(c) => Raw::Call(c),
                None => return,
            },
            Event::ArchiveUpdate(_)
            | Event::LabelEditUpdate(_)
            | Event::LabelAssociationUpdate(_) => match chat_actions::change(&event) {
                Some(c) => Raw::Chat(c),
                None => return,
            },
            _ => return,
        };
        if self.tx.send(raw).is_err() {
            tracing::debug!(
                session = self.session,
                "event after the session stopped; ignored"
            );
        }
    }
}

fn me_of(client: &Client) -> Option<MeInfo> {
    let pn = client.pn()?;
    Some(MeInfo {
        id: format!("{}@c.us", pn.user),
        lid: client.lid().map(|l| format!("{}@lid", l.user)),
        jid: Some(format!("{}:{}@s.whatsapp.net", pn.user, pn.device)),
        push_name: client.push_name(),
    })
}

/// WAHA shows codes as `ABCD-EFGH`.
fn dashed(code: &str) -> String {
    if code.len() == 8 && !code.contains('-') {
        format!("{}-{}", &code[..4], &code[4..])
    } else {
        code.to_string()
    }
}

/// An error with its whole `source()` chain, for the logs and the status data.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Fails at once on a device database that SQLite cannot read. Without this, the engine's
/// connection pool retries a damaged file for its whole 30 s checkout timeout while the
/// session shows `STARTING`; now it goes `FAILED` with the reason.
async fn check_sqlite(path: &std::path::Path) -> Result<(), Error> {
    if !tokio::fs::try_exists(path).await.unwrap_or(false) {
        return Ok(());
    }
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let conn = rusqlite::Connection::open_with_flags(
            &path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(2))?;
        conn.query_row("PRAGMA schema_version", [], |r| r.get::<_, i64>(0))
            .map(drop)
    })
    .await
    .map_err(|e| Error::Store(e.to_string()))?
    .map_err(|e| Error::Damaged(e.to_string()))
}

/// The session folder created and `whatsapp.db` checked readable: the path to open.
async fn prepare_sqlite(dir: &std::path::Path) -> Result<std::path::PathBuf, Error> {
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(|e| Error::Store(e.to_string()))?;
    let path = dir.join("whatsapp.db");
    check_sqlite(&path).await?;
    Ok(path)
}

pub(crate) async fn open_backend(
    device: &DeviceStore,
    fence: Option<&crate::cluster::Fence>,
) -> Result<Arc<dyn Backend>, Error> {
    match device {
        DeviceStore::Sqlite { dir } => {
            let path = prepare_sqlite(dir).await?;
            let store = SqliteStore::new(&path.to_string_lossy())
                .await
                .map_err(|e| Error::Store(chain(&e)))?;
            Ok(Arc::new(store))
        }
        DeviceStore::Mongo { db } => {
            let store = mongo_store::MongoDeviceStore::open(db.clone())
                .await
                .map(|s| s.fenced(fence.cloned()))
                .map_err(|e| Error::Store(chain(&e)))?;
            Ok(Arc::new(store))
        }
    }
}

/// `config.client` as the Linked Devices label: `deviceName` is the OS shown, `browserName`
/// the browser icon (WhatsApp knows a fixed list; other names keep the default).
fn device_props(
    client: Option<&crate::model::session::ClientSessionConfig>,
) -> Option<whatsapp_rust::wacore::store::DevicePropsOverride> {
    use whatsapp_rust::waproto::whatsapp::device_props::PlatformType;
    let client = client?;
    let mut props = whatsapp_rust::wacore::store::DevicePropsOverride::new();
    if let Some(name) = client.device_name.clone().filter(|n| !n.trim().is_empty()) {
        props = props.with_os(name);
    }
    let platform = match client.browser_name.as_deref().map(str::to_ascii_lowercase) {
        Some(b) if b.contains("firefox") => Some(PlatformType::FIREFOX),
        Some(b) if b.contains("edge") => Some(PlatformType::EDGE),
        Some(b) if b.contains("opera") => Some(PlatformType::OPERA),
        Some(b) if b.contains("safari") => Some(PlatformType::SAFARI),
        Some(b) if b.contains("chrome") => Some(PlatformType::CHROME),
        Some(b) if b == "ie" || b.contains("explorer") => Some(PlatformType::IE),
        Some(b) if b.contains("desktop") => Some(PlatformType::DESKTOP),
        _ => None,
    };
    if let Some(p) = platform {
        props = props.with_platform_type(p);
    }
    (!props.is_empty()).then_some(props)
}

fn transport(spec: &StartSpec, proxy: Option<proxy::Proxy>) -> transport::NoDelayTransportFactory {
    let factory = match &spec.wa_url {
        // Only mock-network builds accept a URL (config refuses it otherwise); this cfg keeps
        // a default build from ever pointing the client elsewhere even if that changed.
        Some(url) if cfg!(feature = "mock-network") => {
            transport::NoDelayTransportFactory::new(Some(url.clone()), proxy)
        }
        Some(_) | None => transport::NoDelayTransportFactory::new(None, proxy),
    };
    factory.fenced(spec.fence.clone())
}

/// Runs one session's client until it ends, a terminal event, or `cancel`. Pairing-code
/// requests run beside the event loop on `tasks` (the session's tracker, joined on stop).
///
/// # Errors
/// Store or client construction failed, or nothing happened within `connect_timeout`.
///
/// # Cancel safety
/// On `cancel` the client is disconnected gracefully (flushing its state), never logged out.
pub async fn run(
    spec: StartSpec,
    events: mpsc::Sender<EngineEvent>,
    control: &mut mpsc::Receiver<Control>,
    tasks: &TaskTracker,
    cancel: CancellationToken,
) -> Result<Exit, Error> {
    // Runtime guard: a build that skips WhatsApp's certificate checks must never talk to
    // WhatsApp's servers.
    if cfg!(feature = "mock-network") && spec.wa_url.is_none() {
        return Err(Error::MockNetworkWithoutUrl);
    }
    if let Some(fence) = &spec.fence {
        fence.check().map_err(|e| Error::Store(e.to_string()))?;
    }
    // Ends the idle-closing loop (if any) on every way out of this function.
    let idle_stop = cancel.child_token();
    let _idle_stop = idle_stop.clone().drop_guard();
    let backend = match &spec.device {
        DeviceStore::Sqlite { dir } if !spec.device_store_idle.is_zero() => {
            let path = prepare_sqlite(dir).await?;
            let store = idle_sqlite::IdleSqlite::open(path, spec.device_store_idle)
                .await
                .map_err(|e| Error::Store(chain(&e)))?;
            tasks.spawn(store.clone().close_when_idle(idle_stop));
            store as Arc<dyn Backend>
        }
        DeviceStore::Sqlite { .. } | DeviceStore::Mongo { .. } => {
            open_backend(&spec.device, spec.fence.as_ref()).await?
        }
    };
    // The proxy carries the websocket and the media client alike.
    let proxy = spec
        .proxy
        .as_ref()
        .map(proxy::Proxy::parse)
        .transpose()
        .map_err(|e| Error::Build(e.to_string()))?;
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
    let mut builder = Bot::builder()
        .with_runtime(PinnedRuntime(tokio::runtime::Handle::current()))
        .with_backend_arc(backend)
        .with_transport_factory(transport(&spec, proxy.clone()).dialing(raw_tx.clone()))
        .with_http_client(media_http::MediaHttp::new(
            spec.wa_url.as_deref(),
            proxy.as_ref(),
        ))
        .with_version(spec.wa_version)
        .with_wanted_pre_key_count(spec.prekey_upload_count)
        .with_event_handler(Forwarder {
            session: spec.session.clone(),
            tx: raw_tx,
            engine_events: spec.engine_events.clone(),
        });
    if let Some(props) = device_props(spec.config.as_ref().and_then(|c| c.client.as_ref())) {
        builder = builder.with_device_props(props);
    }
    let bot = builder
        .build()
        .await
        .map_err(|e| Error::Build(e.to_string()))?;
    let client = bot.client();
    let live = Session::new(spec.session.clone(), client.clone());
    // Every way out of this function makes the handles handed out stale.
    let _stale_on_exit = live.inner.closed.clone().drop_guard();
    let mut handle = bot.spawn();

    // The watchdog: armed while we wait for a QR or a login, disarmed once either shows.
    let mut deadline = Some(tokio::time::Instant::now() + spec.connect_timeout);
    // Whether the client is logged in on a connection that has not ended (for `Dialing`).
    let mut up = false;
    let exit = loop {
        let sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            // Biased: events the client emitted before its run loop ended (a logout, say)
            // must be seen before the end itself.
            biased;
            () = cancel.cancelled() => break Ok(Exit::Stopped { flushed: false }),
            Some(raw) = raw_rx.recv() => {
                let mut stop = false;
                for event in translate(raw, &live, &spec, &mut deadline, &mut up) {
                    let terminal = is_terminal(&event);
                    if events.send(event).await.is_err() || terminal {
                        stop = true;
                        break;
                    }
                }
                if stop {
                    break Ok(Exit::Terminal);
                }
            }
            Some(ctl) = control.recv() => match ctl {
                // Logout must finish before the runtime stops the client.
                Control::Logout { reply } => {
                    client.logout().await;
                    let _ = reply.send(Ok(()));
                }
                // The server may take a while to answer; intake must not wait for it. The
                // task is the session's (joined on stop); a stop drops the reply, which the
                // caller sees as NotRunning.
                Control::RequestCode { phone, reply } => {
                    let client = client.clone();
                    let cancel = cancel.clone();
                    tasks.spawn(async move {
                        tokio::select! {
                            () = cancel.cancelled() => {}
                            code = request_code(&client, phone) => {
                                let _ = reply.send(code);
                            }
                        }
                    });
                }
            },
            () = &mut handle => {
                // The run loop ended by itself; report anything it said on the way out.
                let mut terminal = false;
                while let Ok(raw) = raw_rx.try_recv() {
                    for event in translate(raw, &live, &spec, &mut deadline, &mut up) {
                        terminal |= is_terminal(&event);
                        let _ = events.send(event).await;
                    }
                }
                break if terminal {
                    Ok(Exit::Terminal)
                } else {
                    Err(Error::Build("the WhatsApp client stopped".into()))
                };
            }
            () = sleep => break Err(Error::ConnectTimeout(spec.connect_timeout)),
        }
    };
    // Graceful: flushes keys and receipts; a logout is only ever an explicit command.
    // Bounded below the runtime's stop deadline, so the runtime still gets to clean up.
    let flushed = tokio::time::timeout(FLUSH_DEADLINE, handle.shutdown())
        .await
        .is_ok();
    if !flushed {
        tracing::warn!(
            session = spec.session,
            "WhatsApp client did not stop in {FLUSH_DEADLINE:?}"
        );
    }
    match exit {
        Ok(Exit::Stopped { .. }) => Ok(Exit::Stopped { flushed }),
        other => other,
    }
}

/// How long a stopping client may take to flush and close: below the session layer's stop
/// deadline (5 s, shared by every session at shutdown), so the runtime still winds down.
pub const FLUSH_DEADLINE: Duration = Duration::from_secs(4);

fn is_terminal(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::LoggedOut { .. } | EngineEvent::StreamReplaced | EngineEvent::QrExhausted
    )
}

/// Maps a forwarded client event to ours, re-arming the connect watchdog as needed.
fn translate(
    raw: Raw,
    live: &Session,
    spec: &StartSpec,
    deadline: &mut Option<tokio::time::Instant>,
    up: &mut bool,
) -> Vec<EngineEvent> {
    vec![match raw {
        Raw::Inbound(msgs) => {
            return msgs
                .into_iter()
                .map(|mut m| {
                    // The media is fetched through the connection it arrived on.
                    if let messaging::InboundKind::Media { media, .. } = &mut m.kind {
                        media.source.attach(live);
                    } else if let messaging::InboundKind::Poll { key: Some(key), .. } = &m.kind {
                        live.remember_poll(key.clone());
                    } else if let messaging::InboundKind::PollVote { vote, .. } = &mut m.kind {
                        vote.attach(live);
                    } else if let messaging::InboundKind::EventCreation { key: Some(key), .. } =
                        &m.kind
                    {
                        live.remember_poll(key.clone());
                    } else if let messaging::InboundKind::EventResponse { response, .. } =
                        &mut m.kind
                    {
                        response.attach(live);
                    }
                    EngineEvent::Message(Box::new(m))
                })
                .collect();
        }
        Raw::Ack(a) => EngineEvent::Ack(a),
        Raw::Presence(p) => {
            live.record_presence(&p);
            EngineEvent::Presence(p)
        }
        Raw::Group(c) => EngineEvent::Group(c),
        Raw::History(h) => EngineEvent::History(h),
        Raw::Call(c) => EngineEvent::Call(c),
        Raw::Chat(c) => EngineEvent::Chat(c),
        Raw::Engine(event, data) => EngineEvent::Raw { event, data },
        Raw::Qr(code, timeout) => {
            *deadline = None;
            EngineEvent::QrCode { code, timeout }
        }
        Raw::PairCode(code) => EngineEvent::PairingCode {
            code: dashed(&code),
        },
        Raw::Paired => EngineEvent::Paired,
        Raw::Connected => {
            *deadline = None;
            *up = true;
            let Some(me) = me_of(&live.inner.client) else {
                tracing::warn!(session = spec.session, "connected without an identity");
                return Vec::new();
            };
            EngineEvent::Connected {
                me,
                session: live.clone(),
            }
        }
        Raw::Disconnected => {
            *up = false;
            *deadline = Some(tokio::time::Instant::now() + spec.connect_timeout);
            EngineEvent::Disconnected
        }
        // A dial while logged in: the connection ended without a `Disconnected` (one the
        // client expected, e.g. a `515`). Reported as one, so the session leaves WORKING
        // (STARTING until it is logged in again) instead of showing WORKING on a dead
        // connection; the watchdog runs again as after any disconnect.
        Raw::Dialing if *up => {
            *up = false;
            *deadline = Some(tokio::time::Instant::now() + spec.connect_timeout);
            EngineEvent::Disconnected
        }
        Raw::Dialing => return Vec::new(),
        Raw::LoggedOut(reason) | Raw::Fatal(reason) => EngineEvent::LoggedOut { reason },
        Raw::Replaced => EngineEvent::StreamReplaced,
        Raw::QrExhausted => EngineEvent::QrExhausted,
    }]
}

/// Asks the server for a pairing code; one outstanding code at a time (a new request
/// replaces the previous one).
async fn request_code(client: &Arc<Client>, phone: String) -> Result<String, Error> {
    client.cancel_pair_code().await;
    client
        .pair_with_code(PairCodeOptions {
            phone_number: phone,
            show_push_notification: true,
            custom_code: None,
            platform_id: None,
            display_os: None,
        })
        .await
        .map(|c| dashed(&c))
        .map_err(|e| Error::PairCode(e.to_string()))
}

#[cfg(test)]
mod device_props_tests {
    use whatsapp_rust::waproto::whatsapp::device_props::PlatformType;

    use super::device_props;
    use crate::model::session::ClientSessionConfig;

    #[test]
    fn client_label_becomes_device_props() {
        let c = |d: Option<&str>, b: Option<&str>| ClientSessionConfig {
            device_name: d.map(String::from),
            browser_name: b.map(String::from),
        };
        assert!(device_props(None).is_none());
        assert!(device_props(Some(&c(None, Some("Netscape")))).is_none());
        let p = device_props(Some(&c(Some("MacOS"), Some("firefox")))).unwrap();
        assert_eq!(p.os.as_deref(), Some("MacOS"));
        assert_eq!(p.platform_type, Some(PlatformType::FIREFOX));
        let p = device_props(Some(&c(None, Some("Microsoft Edge")))).unwrap();
        assert_eq!((p.os, p.platform_type), (None, Some(PlatformType::EDGE)));
    }
}
