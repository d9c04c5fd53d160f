//! Events: WAHA's webhook envelope, the durable per-session outbox, webhook delivery and
//! the WebSocket fan-out (`../shared/reference/waha.md` §5, §6).
//!
//! Owns: [`EventBus`] — built once by `app::App::build` over the [`Store`], cloned into
//! the session runtimes (which `publish`) and into `AppState` (the `/ws` route and the
//! dead-letter endpoints); it lives for the process and is stopped by
//! [`EventBus::shutdown`] after the sessions. Dropping the last clone without `shutdown`
//! cancels the delivery workers too (that is how the tests simulate a crash).
//!
//! WAHA sends each event fire-and-forget and drops it after the last retry or on restart.
//! wharf writes one outbox row per matching webhook *before* delivery
//! ([`outbox`]), deletes it only after a 2xx, delivers strictly in order per
//! (session, url) ([`webhook`]), and parks exhausted rows in a dead-letter list that the
//! admin can replay. Delivery is at least once; a redelivered event keeps its `id`.
//! Concurrent publishes of a session share one durable write (group commit, `commit.rs`).
//!
//! The wire shapes (the envelope, one typed payload per event) are WAHA vocabulary and
//! live in [`crate::model::events`]; this module decides who receives them.

mod commit;
pub mod outbox;
pub mod relay;
pub mod webhook;
pub mod websocket;

use std::{sync::Arc, time::Duration};

use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use self::{
    commit::Committer,
    outbox::{NewRow, Outbox, Retry},
    webhook::Delivery,
};
pub use crate::model::events::{Envelope, Event};
use crate::{
    model::{
        events::Emitter,
        session::{IgnoreConfig, MeInfo, SessionConfig, WebhookConfig},
    },
    store::Store,
};

/// WAHA's event names (`WAHAEvents`, §5.2), deprecated ones included.
pub const EVENT_NAMES: [&str; 30] = [
    "session.status",
    "message",
    "message.reaction",
    "message.any",
    "message.ack",
    "message.ack.group",
    "message.waiting",
    "message.revoked",
    "message.edited",
    "group.v2.join",
    "group.v2.leave",
    "group.v2.update",
    "group.v2.participants",
    "presence.update",
    "poll.vote",
    "poll.vote.failed",
    "chat.archive",
    "call.received",
    "call.accepted",
    "call.rejected",
    "label.upsert",
    "label.deleted",
    "label.chat.added",
    "label.chat.deleted",
    "event.response",
    "event.response.failed",
    "engine.event",
    "state.change",
    "group.join",
    "group.leave",
];

/// Events the wildcard `*` does not include (WAHA docs: subscribe to them by name).
const NOT_IN_WILDCARD: [&str; 1] = ["engine.event"];

/// How many envelopes a WebSocket subscriber may fall behind before it is disconnected.
const WS_CHANNEL_CAPACITY: usize = 1024;

/// Errors of the event layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The outbox could not be written or read.
    #[error("outbox: {0}")]
    Outbox(String),
    /// The envelope could not be serialized.
    #[error("cannot serialize the event: {0}")]
    Serialize(String),
    /// No dead letter with that id.
    #[error("dead letter {0} not found")]
    NotFound(i64),
}

/// What `publish` needs to know about the session emitting the event.
#[derive(Debug, Clone)]
pub struct EventContext {
    /// Session name.
    pub session: String,
    /// Its stored config (webhooks, metadata, ignore rules).
    pub config: Option<SessionConfig>,
    /// The account, once authenticated.
    pub me: Option<MeInfo>,
}

/// Process-wide settings of the bus (from `Config`).
#[derive(Debug, Clone)]
pub struct EventSettings {
    /// `WHATSAPP_HOOK_*`: applied to every session, never shown in its config.
    pub global_webhook: Option<WebhookConfig>,
    /// `WAHAEnvironment` JSON, copied into every envelope.
    pub environment: serde_json::Value,
    /// Engine name reported in envelopes, e.g. `GOWS`.
    pub engine: String,
    /// `User-Agent` of webhook requests, e.g. `WAHA/2026.7.1`.
    pub user_agent: String,
    /// WebSocket heartbeat period (WAHA: 60 s).
    pub ws_ping_interval: Duration,
    /// Which addresses webhook requests may reach.
    pub egress: crate::egress::EgressPolicy,
}

/// The event hub. Cheap to clone.
#[derive(Clone)]
pub struct EventBus {
    inner: Arc<Inner>,
}

struct Inner {
    /// The token `new` was given: cancelled = the server is stopping (WebSocket clients
    /// are closed with 1001, workers stop).
    cancel: CancellationToken,
    /// Child of `cancel`: closes only the WebSocket clients (see `close_websockets`).
    ws_closing: CancellationToken,
    outbox: Outbox,
    /// Groups concurrent publishes of a session into one durable append.
    committer: Committer,
    settings: EventSettings,
    ws: broadcast::Sender<Arc<Envelope>>,
    /// Cluster mode: envelopes of sessions other workers run, relayed for this worker's
    /// `/ws` clients only (never to webhooks, never on to other peers).
    relayed: broadcast::Sender<Arc<relay::Relayed>>,
    delivery: Delivery,
    /// WebSocket clients subscribed to `engine.event` (see [`EngineEventsGuard`]).
    engine_listeners: std::sync::atomic::AtomicUsize,
}

/// Held by a WebSocket client subscribed to `engine.event`: while any is held, sessions
/// render their raw engine events. Dropped when the client goes.
#[must_use]
pub struct EngineEventsGuard(EventBus);

impl Drop for EngineEventsGuard {
    fn drop(&mut self) {
        self.0
            .inner
            .engine_listeners
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The last handle is gone without `shutdown` (a test's simulated crash, or a
        // builder error): stop the workers so they do not outlive the bus.
        self.cancel.cancel();
    }
}

impl EventBus {
    /// Builds the bus; delivery tasks run on `rt` under a child of `cancel`.
    pub fn new(
        store: Store,
        settings: EventSettings,
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
    ) -> Self {
        let outbox = Outbox::new(&store);
        let committer = Committer::new(outbox.clone(), rt.clone(), cancel.child_token());
        let delivery = Delivery::new(
            outbox.clone(),
            settings.user_agent.clone(),
            settings.egress.clone(),
            rt,
            cancel.child_token(),
        );
        let (ws, _) = broadcast::channel(WS_CHANNEL_CAPACITY);
        let (relayed, _) = broadcast::channel(WS_CHANNEL_CAPACITY);
        Self {
            inner: Arc::new(Inner {
                ws_closing: cancel.child_token(),
                cancel,
                outbox,
                committer,
                settings,
                ws,
                relayed,
                delivery,
                engine_listeners: std::sync::atomic::AtomicUsize::new(0),
            }),
        }
    }

    /// The settings the bus was built with.
    pub fn settings(&self) -> &EventSettings {
        &self.inner.settings
    }

    /// Publishes a typed WAHA event: [`Self::publish`] with its name and payload. This is
    /// how sessions publish; a new event is a struct in [`crate::model::events`].
    ///
    /// # Errors
    /// As [`Self::publish`], and [`Error::Serialize`] if the payload cannot be serialized.
    ///
    /// # Cancel safety
    /// Not cancel safe, as [`Self::publish`].
    pub async fn emit(&self, ctx: &EventContext, event: &Event) -> Result<Arc<Envelope>, Error> {
        let payload = event
            .payload()
            .map_err(|e| Error::Serialize(e.to_string()))?;
        self.publish(ctx, event.name(), payload).await
    }

    /// Wraps `payload` in an envelope for event `event`, writes one outbox row per matching
    /// webhook (the session's webhooks and the global one) durably, wakes the delivery
    /// workers, and fans out to WebSocket subscribers. Returns after the write. Events from
    /// chats the session's `config.ignore` excludes are returned but neither stored nor
    /// broadcast. Sessions use the typed [`Self::emit`]; this untyped entry stays for
    /// payloads with no struct yet and for the bus's own tests.
    ///
    /// # Errors
    /// [`Error::Outbox`] when the write failed (the WebSocket fan-out still happened).
    ///
    /// # Cancel safety
    /// Not cancel safe: dropped mid-write, the rows may or may not have been stored.
    pub async fn publish(
        &self,
        ctx: &EventContext,
        event: &str,
        payload: serde_json::Value,
    ) -> Result<Arc<Envelope>, Error> {
        if event == "message.any" {
            // Every new message passes here once: received (in) or sent by the account.
            let from_me = payload.get("fromMe").and_then(serde_json::Value::as_bool);
            crate::metrics::global().message(&ctx.session, !from_me.unwrap_or(false));
        }
        let envelope = Arc::new(self.envelope(ctx, event, payload)?);
        let ignore = ctx.config.as_ref().and_then(|c| c.ignore.as_ref());
        if ignore.is_some_and(|i| is_ignored(i, event, &envelope.payload)) {
            return Ok(envelope);
        }
        let session_hooks = ctx
            .config
            .as_ref()
            .and_then(|c| c.webhooks.as_deref())
            .unwrap_or_default();
        let rows: Vec<NewRow> = session_hooks
            .iter()
            .chain(self.inner.settings.global_webhook.as_ref())
            .filter(|hook| webhook_wants(&hook.events, event))
            .map(|hook| NewRow::new(&envelope, hook))
            .collect();
        let written = if rows.is_empty() {
            Ok(())
        } else {
            let urls: Vec<String> = rows.iter().map(|r| r.url.clone()).collect();
            let res = self.inner.committer.append(&ctx.session, rows).await;
            if res.is_ok() {
                for url in urls {
                    self.inner.delivery.wake(&ctx.session, &url);
                }
            }
            res
        };
        // No receiver is fine (nobody connected to /ws).
        let _ = self.inner.ws.send(envelope.clone());
        written.map(|()| envelope)
    }

    fn envelope(
        &self,
        ctx: &EventContext,
        event: &str,
        payload: serde_json::Value,
    ) -> Result<Envelope, Error> {
        let settings = &self.inner.settings;
        let from = Emitter {
            session: &ctx.session,
            metadata: ctx.config.as_ref().and_then(|c| c.metadata.as_ref()),
            me: ctx.me.as_ref(),
            engine: &settings.engine,
            environment: &settings.environment,
        };
        Envelope::new(from, event, payload).map_err(|e| Error::Serialize(e.to_string()))
    }

    /// Registers a WebSocket client that wants `engine.event` (until the guard drops).
    pub fn listen_engine_events(&self) -> EngineEventsGuard {
        self.inner
            .engine_listeners
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        EngineEventsGuard(self.clone())
    }

    /// How many WebSocket clients want `engine.event` now.
    pub fn engine_event_listeners(&self) -> usize {
        self.inner
            .engine_listeners
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A new WebSocket-style subscription to every published envelope.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Envelope>> {
        self.inner.ws.subscribe()
    }

    /// Cluster mode: a `/ws` client's subscription to the events other workers relay.
    pub fn subscribe_relayed(&self) -> broadcast::Receiver<Arc<relay::Relayed>> {
        self.inner.relayed.subscribe()
    }

    /// Cluster mode: how many `/ws` clients are connected here (each holds one relayed
    /// subscription); the fan-out keeps peer streams open only while there are some.
    pub fn ws_clients(&self) -> usize {
        self.inner.relayed.receiver_count()
    }

    /// Cluster mode: hands an envelope received from a peer to this worker's `/ws` clients.
    pub fn relay(&self, event: Arc<relay::Relayed>) {
        // No receiver is fine (the last client just left).
        let _ = self.inner.relayed.send(event);
    }

    /// Boot: starts delivery for every session in `sessions` that has undelivered rows.
    pub async fn resume(&self, sessions: &[String]) {
        for session in sessions {
            match self.inner.outbox.pending_urls(session).await {
                Ok(urls) => {
                    for url in urls {
                        self.inner.delivery.wake(session, &url);
                    }
                }
                Err(e) => tracing::warn!(session, error = %e, "cannot read the webhook outbox"),
            }
        }
    }

    /// Closes WebSocket clients (1001), writes the appends still queued, stops the
    /// delivery workers and waits for them. Undelivered rows stay in the outbox.
    pub async fn shutdown(&self) {
        self.inner.cancel.cancel();
        self.inner.committer.shutdown().await;
        self.inner.delivery.shutdown().await;
    }

    /// Closes every WebSocket client with 1001 now, leaving webhook delivery running.
    /// Call it before stopping the HTTP server: actix's graceful stop otherwise waits its
    /// whole shutdown timeout for these never-ending responses.
    pub fn close_websockets(&self) {
        self.inner.ws_closing.cancel();
    }

    /// Cancelled when WebSocket clients must go: `close_websockets`, `shutdown`, the
    /// bus's token, or the last handle dropped.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.ws_closing.clone()
    }

    /// Dead letters of `session`, oldest first.
    ///
    /// # Errors
    /// [`Error::Outbox`] when the outbox cannot be read.
    pub async fn dead_letters(&self, session: &str) -> Result<Vec<outbox::DeadLetter>, Error> {
        self.inner.outbox.dead(session).await
    }

    /// Moves dead letters of `session` back to pending (all, or the one with seq `id`),
    /// attempts reset, and wakes delivery. Returns how many were moved.
    ///
    /// # Errors
    /// [`Error::NotFound`] when `id` names no dead letter, [`Error::Outbox`] on storage
    /// failures.
    pub async fn replay(&self, session: &str, id: Option<i64>) -> Result<u64, Error> {
        let (count, urls) = self.inner.outbox.replay(session, id).await?;
        if id.is_some() && count == 0 {
            return Err(Error::NotFound(id.unwrap_or_default()));
        }
        for url in urls {
            self.inner.delivery.wake(session, &url);
        }
        Ok(count)
    }
}

/// Whether a webhook (or WebSocket) subscribed to `events` gets `event`: exact names, or
/// `*` for everything but [`NOT_IN_WILDCARD`].
pub fn webhook_wants(events: &[String], event: &str) -> bool {
    events
        .iter()
        .any(|e| e == event || (e == "*" && !NOT_IN_WILDCARD.contains(&event)))
}

/// WAHA's `IgnoreConfig` applied to message-like payloads: the chat is read from
/// `payload.from`, `payload.to` and the chat part of `payload.id` (`true_<chat>_<msg>`).
/// `null` options count as "do not ignore".
fn is_ignored(ignore: &IgnoreConfig, event: &str, payload: &serde_json::Value) -> bool {
    if matches!(event, "session.status" | "state.change" | "engine.event") {
        return false;
    }
    let on = |o: Option<bool>| o.unwrap_or(false);
    let (status, groups, channels, broadcast) = (
        on(ignore.status),
        on(ignore.groups),
        on(ignore.channels),
        on(ignore.broadcast),
    );
    if !(status || groups || channels || broadcast) {
        return false;
    }
    let text = |k: &str| payload.get(k).and_then(serde_json::Value::as_str);
    let id_chat = text("id").filter(|id| id.contains('@')).map(|id| {
        // Message ids are `{fromMe}_{chat}_{msgId}[_{participant}]`; a bare jid is a chat.
        if id.contains('_') {
            id.split('_').nth(1).unwrap_or(id)
        } else {
            id
        }
    });
    [text("from"), text("to"), id_chat]
        .into_iter()
        .flatten()
        .any(|jid| {
            (status && jid == "status@broadcast")
                || (groups && jid.ends_with("@g.us"))
                || (channels && jid.ends_with("@newsletter"))
                || (broadcast && jid.ends_with("@broadcast"))
        })
}

impl NewRow {
    /// The outbox row delivering `envelope` to `hook`.
    fn new(envelope: &Envelope, hook: &WebhookConfig) -> Self {
        Self {
            event_id: envelope.id.clone(),
            event: envelope.event.clone(),
            body: envelope.json().to_string(),
            url: hook.url.clone(),
            headers: hook
                .custom_headers
                .iter()
                .flatten()
                .map(|h| (h.name.clone(), h.value.clone()))
                .collect(),
            hmac_key: hook.hmac.as_ref().and_then(|h| h.key.clone()),
            retry: Retry::from_config(hook.retries.as_ref()),
            created_ms: envelope.timestamp,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_typed_event_is_a_waha_event_name() {
        for name in Event::NAMES {
            assert!(EVENT_NAMES.contains(name), "{name}");
        }
    }

    #[test]
    fn wildcard_excludes_engine_event() {
        let star = vec!["*".to_string()];
        assert!(webhook_wants(&star, "message"));
        assert!(!webhook_wants(&star, "engine.event"));
        assert!(webhook_wants(&["engine.event".to_string()], "engine.event"));
        assert!(!webhook_wants(&["message".to_string()], "message.any"));
    }

    #[test]
    fn ignore_reads_chat_from_from_to_and_id() {
        let groups = IgnoreConfig {
            groups: Some(true),
            ..Default::default()
        };
        let group_msg = serde_json::json!({"id": "false_1@g.us_AAA_2@c.us", "from": "1@g.us"});
        assert!(is_ignored(&groups, "message", &group_msg));
        let sent = serde_json::json!({"id": "true_1@g.us_AAA", "from": "me@c.us"});
        assert!(is_ignored(&groups, "message.any", &sent));
        let direct = serde_json::json!({"id": "false_2@c.us_AAA", "from": "2@c.us"});
        assert!(!is_ignored(&groups, "message", &direct));
        let status = IgnoreConfig {
            status: Some(true),
            ..Default::default()
        };
        let story = serde_json::json!({"from": "status@broadcast"});
        assert!(is_ignored(&status, "message", &story));
        assert!(!is_ignored(&status, "session.status", &story));
    }
}
