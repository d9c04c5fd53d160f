//! The session's ordered delivery of inbound traffic: messages, acks and presences go
//! through here so media downloads run off the runtime's event path while every event
//! still goes out in the order WhatsApp delivered it.
//!
//! Owns: one task per running session (spawned on the session's tracker by
//! `runtime::spawn`, ended when the runtime drops its [`Delivery`] sender — it then
//! drains what is queued — and joined with the tracker on stop) and its bounded queue.
//! Each job is *prepared* concurrently (a media message downloads its file; everything
//! else is ready at once), at most [`IN_FLIGHT`] at a time, and *published* strictly in
//! arrival order (a `FuturesOrdered`): WAHA emits `message` after the download, with the
//! media URL in it, and so do we. A slow CDN delays the events queued behind that message
//! (never the status machine, other sessions or the API) by at most the download timeout,
//! after which the message goes out with `media.error`. On stop, downloads in progress
//! give up at once (the message is still published, with `media.error`).

use futures_util::{StreamExt, stream::FuturesOrdered};
use tokio::sync::mpsc;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::inbox::Inbox;
use crate::{
    engine::{
        self,
        calls::CallSignal,
        groups::GroupChange,
        messaging::{Ack, InboundMessage, Presence},
    },
    model::{message::WAMedia, session::MeInfo},
};

/// Downloads running at once per session.
pub const IN_FLIGHT: usize = 4;

/// Jobs queued behind those: the runtime waits (backpressure to the engine's queue) when
/// this many are waiting.
const QUEUE: usize = 256;

/// One piece of inbound traffic, with the account as it was when it arrived.
#[derive(Debug)]
pub enum Job {
    /// A message.
    Message(Option<MeInfo>, Box<InboundMessage>),
    /// A receipt.
    Ack(Option<MeInfo>, Ack),
    /// A presence.
    Presence(Option<MeInfo>, Presence),
    /// A group notification, with the live connection (the group cache refreshes through
    /// it); in the same queue, so it is published in order with the messages around it.
    Group(Option<MeInfo>, Option<engine::Session>, GroupChange),
    /// The phone's history for this newly linked device (stored in order, before the
    /// live traffic queued behind it).
    History(Option<MeInfo>, engine::history::HistoryBlob),
    /// A call rang, was answered or declined.
    Call(Option<MeInfo>, CallSignal),
    /// An app-state chat mutation (archive…).
    Chat(Option<MeInfo>, engine::chat_actions::AppStateChange),
    /// A raw engine event (`engine.event`), in order with the rest.
    Engine(Option<MeInfo>, String, serde_json::Value),
}

/// A job ready to publish.
enum Ready {
    Message(Option<MeInfo>, Box<InboundMessage>, Option<WAMedia>),
    Ack(Option<MeInfo>, Ack),
    Presence(Option<MeInfo>, Presence),
    Group(Option<MeInfo>, Option<engine::Session>, GroupChange),
    History(
        Option<MeInfo>,
        engine::history::HistoryBlob,
        CancellationToken,
    ),
    Call(Option<MeInfo>, CallSignal),
    Chat(Option<MeInfo>, engine::chat_actions::AppStateChange),
    Engine(Option<MeInfo>, String, serde_json::Value),
}

/// The runtime's end of the queue. Dropping it ends the task once the queue is drained.
pub struct Delivery {
    tx: mpsc::Sender<Job>,
}

impl Delivery {
    /// Queues `job`; waits while the queue is full.
    pub async fn push(&self, job: Job) {
        if self.tx.send(job).await.is_err() {
            tracing::warn!("delivery task is gone; inbound event dropped");
        }
    }
}

/// Starts the delivery task of one session on `tracker` (the session's).
pub fn spawn(
    inbox: Inbox,
    tracker: &TaskTracker,
    rt: &tokio::runtime::Handle,
    cancel: CancellationToken,
) -> Delivery {
    let (tx, rx) = mpsc::channel(QUEUE);
    tracker.spawn_on(run(inbox, rx, cancel), rt);
    Delivery { tx }
}

async fn prepare(inbox: Inbox, job: Job, cancel: CancellationToken) -> Ready {
    match job {
        Job::Message(me, m) => {
            let media = inbox.fetch_media(&m, &cancel).await;
            Ready::Message(me, m, media)
        }
        Job::Ack(me, a) => Ready::Ack(me, a),
        Job::Presence(me, p) => Ready::Presence(me, p),
        Job::Group(me, live, c) => Ready::Group(me, live, c),
        Job::History(me, blob) => Ready::History(me, blob, cancel),
        Job::Call(me, c) => Ready::Call(me, c),
        Job::Chat(me, c) => Ready::Chat(me, c),
        Job::Engine(me, e, d) => Ready::Engine(me, e, d),
    }
}

async fn publish(inbox: &Inbox, ready: Ready) {
    if inbox.fenced() {
        // Cluster mode, lease lost: the new owner receives and publishes this traffic.
        return;
    }
    match ready {
        Ready::Message(me, m, media) => inbox.inbound(me.as_ref(), *m, media).await,
        Ready::Ack(me, a) => inbox.ack(me.as_ref(), a).await,
        Ready::Presence(me, p) => inbox.presence(me.as_ref(), p).await,
        Ready::Group(me, live, c) => inbox.group(me.as_ref(), live.as_ref(), c).await,
        Ready::History(me, blob, cancel) => {
            super::history::store(inbox, me.as_ref(), blob, &cancel).await;
        }
        Ready::Call(me, c) => inbox.call(me.as_ref(), c).await,
        Ready::Chat(me, c) => inbox.chat_change(me.as_ref(), c).await,
        Ready::Engine(me, event, data) => {
            let payload = crate::model::events::EnginePayload { event, data };
            inbox
                .publish(
                    me.as_ref(),
                    crate::model::events::Event::EngineEvent(payload),
                )
                .await;
        }
    }
}

async fn run(inbox: Inbox, mut rx: mpsc::Receiver<Job>, cancel: CancellationToken) {
    let mut in_flight = FuturesOrdered::new();
    let mut closed = false;
    loop {
        if closed && in_flight.is_empty() {
            break;
        }
        tokio::select! {
            // Publishing first keeps the backlog short.
            biased;
            Some(ready) = in_flight.next(), if !in_flight.is_empty() => {
                // Boxed: publishing (a history import, a media message) is the largest
                // state this task ever awaits; inline, every idle session would carry it
                // in its task for life (~18 KiB per session in a debug build).
                Box::pin(publish(&inbox, ready)).await;
            }
            job = rx.recv(), if !closed && in_flight.len() < IN_FLIGHT => match job {
                Some(job) => in_flight.push_back(prepare(inbox.clone(), job, cancel.clone())),
                None => closed = true,
            },
        }
    }
}
