//! The WhatsApp engine: the only module that names whatsapp-rust types.
//!
//! Owns: one whatsapp-rust `Bot` per running session — its device store (SQLite file in the
//! session's folder, or the session's own MongoDB database), transport, pinned WhatsApp Web
//! version — and the translation of its events into [`EngineEvent`]s and of
//! [`EngineCommand`]s into client calls. Called by the per-session runtime
//! (`sessions::runtime`) once per connection attempt; [`run`] lives as long as the client.
//! Stopping disconnects without logging out: credentials stay in the store.

pub mod messaging;
pub mod mongo_store;

use std::{sync::Arc, time::Duration};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use whatsapp_rust::{
    pair_code::PairCodeOptions, prelude::*, store::traits::Backend,
    transport::TokioWebSocketTransportFactory,
};

use crate::sessions::config::{MeInfo, SessionConfig};

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
    /// Device keys.
    pub device: DeviceStore,
    /// No QR or login within this long after (re)connecting → [`Error::ConnectTimeout`].
    pub connect_timeout: Duration,
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
    /// Logged in and connected as `me`.
    Connected {
        /// The account.
        me: MeInfo,
    },
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
    Message(messaging::InboundMessage),
    /// Our messages were delivered, read or played.
    Ack(messaging::Ack),
    /// A contact's presence or typing state.
    Presence(messaging::Presence),
}

/// Requests the runtime forwards to a running engine.
#[derive(Debug)]
pub enum EngineCommand {
    /// `POST /api/{session}/auth/request-code`.
    RequestCode {
        /// Digits only, with country code.
        phone: String,
        /// The code (`ABCD-EFGH`) or why not.
        reply: oneshot::Sender<Result<String, Error>>,
    },
    /// Unlink this device from the phone (logout/delete of a WORKING session).
    Logout {
        /// Done.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Send a text (`reply_to` = quoted `(wa_id, sender, body)`).
    SendText {
        /// WAHA chat id.
        chat: String,
        /// Body.
        text: String,
        /// Quoted message.
        reply_to: Option<(String, String, String)>,
        /// Mentioned chat ids (`"all"` = the whole group).
        mentions: Vec<String>,
        /// Pre-generated WhatsApp id.
        id: Option<String>,
        /// What was sent.
        reply: oneshot::Sender<Result<messaging::Sent, Error>>,
    },
    /// Read receipts.
    SendSeen {
        /// WAHA chat id.
        chat: String,
        /// Sender of the messages in groups.
        participant: Option<String>,
        /// WhatsApp ids.
        ids: Vec<String>,
        /// Done.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Typing indicator on/off.
    Typing {
        /// WAHA chat id.
        chat: String,
        /// Composing (true) or paused.
        on: bool,
        /// Done.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// React to a message.
    React {
        /// WAHA chat id.
        chat: String,
        /// Target WhatsApp id.
        target_id: String,
        /// Whether the target is ours.
        target_from_me: bool,
        /// Target's sender in groups.
        participant: Option<String>,
        /// Emoji (`""` removes).
        emoji: String,
        /// What was sent.
        reply: oneshot::Sender<Result<messaging::Sent, Error>>,
    },
    /// Edit one of our messages.
    Edit {
        /// WAHA chat id.
        chat: String,
        /// Target WhatsApp id.
        target_id: String,
        /// New text.
        text: String,
        /// The edit's own id.
        reply: oneshot::Sender<Result<String, Error>>,
    },
    /// Revoke one of our messages.
    Revoke {
        /// WAHA chat id.
        chat: String,
        /// Target WhatsApp id.
        target_id: String,
        /// Done.
        reply: oneshot::Sender<Result<(), Error>>,
    },
    /// Is this phone number on WhatsApp?
    CheckExists {
        /// Digits.
        phone: String,
        /// Its chat id when it is.
        reply: oneshot::Sender<Result<Option<String>, Error>>,
    },
}

/// Engine failures.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The device store could not be opened.
    #[error("cannot open the session's device store: {0}")]
    Store(String),
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
    /// The request names something invalid (e.g. a chat id).
    #[error("{0}")]
    BadRequest(String),
    /// WhatsApp refused or failed to take a message.
    #[error("sending failed: {0}")]
    Send(String),
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
    Stopped,
    /// A terminal event was reported; the session must not reconnect by itself.
    Terminal,
}

/// What the bot's event handler forwards (only what the runtime needs).
enum Raw {
    Qr(String, Duration),
    PairCode(String),
    Connected,
    Disconnected,
    LoggedOut(String),
    Replaced,
    QrExhausted,
    Fatal(String),
    Inbound(Vec<messaging::InboundMessage>),
    Ack(messaging::Ack),
    Presence(messaging::Presence),
}

/// The handler runs inline in the client's event loop and cannot wait, and dropping a
/// message is not an option, so this queue is unbounded. What drains it does one store
/// write and one outbox write per message, far faster than WhatsApp delivers; a stalled
/// store shows up as this queue's length in the logs (`raw_backlog`).
struct Forwarder {
    session: String,
    tx: mpsc::UnboundedSender<Raw>,
}

impl EventHandler for Forwarder {
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "Event is non_exhaustive; only connection events are forwarded here"
    )]
    fn handle_event(&self, event: Arc<Event>) {
        let raw = match &*event {
            Event::PairingQrCode(q) => Raw::Qr(q.code.clone(), q.timeout),
            Event::PairingCode(c) => Raw::PairCode(c.code.clone()),
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

async fn open_backend(device: &DeviceStore) -> Result<Arc<dyn Backend>, Error> {
    match device {
        DeviceStore::Sqlite { dir } => {
            tokio::fs::create_dir_all(dir)
                .await
                .map_err(|e| Error::Store(e.to_string()))?;
            let path = dir.join("whatsapp.db");
            let store = SqliteStore::new(&path.to_string_lossy())
                .await
                .map_err(|e| Error::Store(chain(&e)))?;
            Ok(Arc::new(store))
        }
        DeviceStore::Mongo { db } => {
            let store = mongo_store::MongoDeviceStore::open(db.clone())
                .await
                .map_err(|e| Error::Store(chain(&e)))?;
            Ok(Arc::new(store))
        }
    }
}

fn transport(spec: &StartSpec) -> TokioWebSocketTransportFactory {
    let factory = TokioWebSocketTransportFactory::new();
    match &spec.wa_url {
        // Only mock-network builds accept a URL (config refuses it otherwise); this cfg keeps
        // a default build from ever pointing the client elsewhere even if that changed.
        Some(url) if cfg!(feature = "mock-network") => factory.with_url(url.clone()),
        Some(_) | None => factory,
    }
}

/// Runs one session's client until it ends, a terminal event, or `cancel`.
///
/// # Errors
/// Store or client construction failed, or nothing happened within `connect_timeout`.
///
/// # Cancel safety
/// On `cancel` the client is disconnected gracefully (flushing its state), never logged out.
pub async fn run(
    spec: StartSpec,
    events: mpsc::Sender<EngineEvent>,
    commands: &mut mpsc::Receiver<EngineCommand>,
    cancel: CancellationToken,
) -> Result<Exit, Error> {
    // Runtime guard: a build that skips WhatsApp's certificate checks must never talk to
    // WhatsApp's servers.
    if cfg!(feature = "mock-network") && spec.wa_url.is_none() {
        return Err(Error::MockNetworkWithoutUrl);
    }
    let backend = open_backend(&spec.device).await?;
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel();
    let mut builder = Bot::builder()
        .with_backend_arc(backend)
        .with_transport_factory(transport(&spec))
        .with_version(spec.wa_version)
        .skip_history_sync()
        .with_event_handler(Forwarder {
            session: spec.session.clone(),
            tx: raw_tx,
        });
    if let Some(name) = spec
        .config
        .as_ref()
        .and_then(|c| c.client.as_ref())
        .and_then(|c| c.device_name.clone())
    {
        builder = builder.with_device_props(
            whatsapp_rust::wacore::store::DevicePropsOverride::new().with_os(name),
        );
    }
    let bot = builder
        .build()
        .await
        .map_err(|e| Error::Build(e.to_string()))?;
    let client = bot.client();
    let mut handle = bot.spawn();

    // The watchdog: armed while we wait for a QR or a login, disarmed once either shows.
    let mut deadline = Some(tokio::time::Instant::now() + spec.connect_timeout);
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
            () = cancel.cancelled() => break Ok(Exit::Stopped),
            Some(raw) = raw_rx.recv() => {
                let mut stop = false;
                for event in translate(raw, &client, &spec, &mut deadline) {
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
            Some(cmd) = commands.recv() => match cmd {
                // Logout must finish before the runtime stops the client.
                EngineCommand::Logout { reply } => {
                    client.logout().await;
                    let _ = reply.send(Ok(()));
                }
                // Sends run beside the event loop so a slow send never delays intake.
                other @ (EngineCommand::RequestCode { .. }
                | EngineCommand::SendText { .. }
                | EngineCommand::SendSeen { .. }
                | EngineCommand::Typing { .. }
                | EngineCommand::React { .. }
                | EngineCommand::Edit { .. }
                | EngineCommand::Revoke { .. }
                | EngineCommand::CheckExists { .. }) => {
                    let client = client.clone();
                    tokio::spawn(handle_command(client, other));
                }
            },
            () = &mut handle => {
                // The run loop ended by itself; report anything it said on the way out.
                let mut terminal = false;
                while let Ok(raw) = raw_rx.try_recv() {
                    for event in translate(raw, &client, &spec, &mut deadline) {
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
    if tokio::time::timeout(Duration::from_secs(3), handle.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            session = spec.session,
            "WhatsApp client did not stop in 3 s"
        );
    }
    exit
}

fn is_terminal(event: &EngineEvent) -> bool {
    matches!(
        event,
        EngineEvent::LoggedOut { .. } | EngineEvent::StreamReplaced | EngineEvent::QrExhausted
    )
}

/// Maps a forwarded client event to ours, re-arming the connect watchdog as needed.
fn translate(
    raw: Raw,
    client: &Client,
    spec: &StartSpec,
    deadline: &mut Option<tokio::time::Instant>,
) -> Vec<EngineEvent> {
    vec![match raw {
        Raw::Inbound(msgs) => return msgs.into_iter().map(EngineEvent::Message).collect(),
        Raw::Ack(a) => EngineEvent::Ack(a),
        Raw::Presence(p) => EngineEvent::Presence(p),
        Raw::Qr(code, timeout) => {
            *deadline = None;
            EngineEvent::QrCode { code, timeout }
        }
        Raw::PairCode(code) => EngineEvent::PairingCode {
            code: dashed(&code),
        },
        Raw::Connected => {
            *deadline = None;
            let Some(me) = me_of(client) else {
                tracing::warn!(session = spec.session, "connected without an identity");
                return Vec::new();
            };
            EngineEvent::Connected { me }
        }
        Raw::Disconnected => {
            *deadline = Some(tokio::time::Instant::now() + spec.connect_timeout);
            EngineEvent::Disconnected
        }
        Raw::LoggedOut(reason) | Raw::Fatal(reason) => EngineEvent::LoggedOut { reason },
        Raw::Replaced => EngineEvent::StreamReplaced,
        Raw::QrExhausted => EngineEvent::QrExhausted,
    }]
}

async fn handle_command(client: Arc<Client>, cmd: EngineCommand) {
    let client = &client;
    match cmd {
        EngineCommand::RequestCode { phone, reply } => {
            // One outstanding code at a time: a new request replaces the previous one.
            client.cancel_pair_code().await;
            let result = client
                .pair_with_code(PairCodeOptions {
                    phone_number: phone,
                    show_push_notification: true,
                    custom_code: None,
                    platform_id: None,
                    display_os: None,
                })
                .await
                .map(|c| dashed(&c))
                .map_err(|e| Error::PairCode(e.to_string()));
            let _ = reply.send(result);
        }
        EngineCommand::Logout { reply } => {
            client.logout().await;
            let _ = reply.send(Ok(()));
        }
        EngineCommand::SendText {
            chat,
            text,
            reply_to,
            mentions,
            id,
            reply,
        } => {
            let _ = reply
                .send(messaging::send_text(client, &chat, text, reply_to, &mentions, id).await);
        }
        EngineCommand::SendSeen {
            chat,
            participant,
            ids,
            reply,
        } => {
            let _ =
                reply.send(messaging::send_seen(client, &chat, participant.as_deref(), &ids).await);
        }
        EngineCommand::Typing { chat, on, reply } => {
            let _ = reply.send(messaging::typing(client, &chat, on).await);
        }
        EngineCommand::React {
            chat,
            target_id,
            target_from_me,
            participant,
            emoji,
            reply,
        } => {
            let result = messaging::react(
                client,
                &chat,
                &target_id,
                target_from_me,
                participant.as_deref(),
                &emoji,
            )
            .await;
            let _ = reply.send(result);
        }
        EngineCommand::Edit {
            chat,
            target_id,
            text,
            reply,
        } => {
            let _ = reply.send(messaging::edit(client, &chat, &target_id, text).await);
        }
        EngineCommand::Revoke {
            chat,
            target_id,
            reply,
        } => {
            let _ = reply.send(messaging::revoke(client, &chat, &target_id).await);
        }
        EngineCommand::CheckExists { phone, reply } => {
            let _ = reply.send(messaging::check_exists(client, &phone).await);
        }
    }
}
