//! Group commit of outbox appends: many concurrent publishes of one session share one
//! durable write (one SQLite transaction and fsync, or one MongoDB counter bump and
//! `insert_many`).
//!
//! Owns: one committer task per session with appends in flight, and their registry.
//! [`super::EventBus::publish`] hands its rows to [`Committer::append`] and waits; the
//! session's committer takes everything queued (up to [`MAX_BATCH_ROWS`]), writes it as
//! one append — rows in arrival order, so seqs follow publish order — and acks each
//! publisher only once the batch is durable. No timer: a batch is whatever arrived while
//! the previous write was in flight, so a lone publish waits for nothing but its own write.
//!
//! Lifetime: built once with the bus. Committers are spawned on demand on the bus's
//! runtime under a child of its cancellation token, tracked, retire after [`IDLE_RETIRE`]
//! without work, and are joined by [`Committer::shutdown`]. On cancellation a committer
//! stops taking new work, writes everything already queued, acks it, and exits; appends
//! arriving after that are written directly (still durable, just not grouped).

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use tokio::sync::{mpsc, oneshot};
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::{
    Error,
    outbox::{NewRow, Outbox},
};

/// Rows written in one append at most (bounds one transaction and one `insert_many`).
const MAX_BATCH_ROWS: usize = 1_024;
/// A committer with nothing to write for this long exits (the next append starts one).
const IDLE_RETIRE: Duration = Duration::from_secs(60);
/// How long `shutdown` waits for committers to flush.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// One publish waiting for its rows to be durable.
struct Job {
    rows: Vec<NewRow>,
    done: oneshot::Sender<Result<(), Error>>,
}

/// The per-session committers. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Committer {
    shared: Arc<Shared>,
}

struct Shared {
    outbox: Outbox,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Session → its committer's queue. Jobs are sent under this lock, and a committer
    /// retires under it only with an empty queue, so no job is left behind.
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Job>>>,
}

impl Committer {
    pub(crate) fn new(
        outbox: Outbox,
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
    ) -> Self {
        Self {
            shared: Arc::new(Shared {
                outbox,
                rt,
                cancel,
                tracker: TaskTracker::new(),
                queues: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Appends `rows` to `session`'s outbox durably, grouped with concurrent appends.
    ///
    /// # Errors
    /// [`Error::Outbox`] when the (shared) write failed: none of its rows were written.
    ///
    /// # Cancel safety
    /// Dropped after queueing, the rows are still written (the committer owns them).
    pub(crate) async fn append(&self, session: &str, rows: Vec<NewRow>) -> Result<(), Error> {
        let (done, ack) = oneshot::channel();
        match self.enqueue(session, Job { rows, done }) {
            None => ack
                .await
                .unwrap_or_else(|_| Err(Error::Outbox("the outbox committer stopped".into()))),
            // Stopping or stopped: no committer; write it here.
            Some(job) => self.shared.outbox.append(session, job.rows).await,
        }
    }

    /// Queues `job` with the session's committer (spawning it if needed): `None` when
    /// queued, `Some(job)` back when no committer can take it (the bus is stopping).
    fn enqueue(&self, session: &str, job: Job) -> Option<Job> {
        let shared = &self.shared;
        if shared.cancel.is_cancelled() {
            return Some(job);
        }
        let Ok(mut queues) = shared.queues.lock() else {
            return Some(job);
        };
        let tx = queues.entry(session.to_string()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = Task {
                shared: Arc::clone(shared),
                session: session.to_string(),
                rx,
            };
            shared.tracker.spawn_on(task.run(), &shared.rt);
            tx
        });
        tx.send(job).err().map(|e| e.0)
    }

    /// Cancels the committers and waits (bounded) until each has flushed its queue.
    pub(crate) async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("outbox committers did not flush in time");
        }
    }
}

/// One session's committer.
struct Task {
    shared: Arc<Shared>,
    session: String,
    rx: mpsc::UnboundedReceiver<Job>,
}

impl Task {
    async fn run(mut self) {
        let cancel = self.shared.cancel.clone();
        loop {
            let first = tokio::select! {
                biased;
                job = self.rx.recv() => job,
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(IDLE_RETIRE) => {
                    if self.retire() {
                        return;
                    }
                    continue;
                }
            };
            let Some(first) = first else { return };
            self.commit(first).await;
        }
        // Stopping: refuse new jobs (their publishers write directly), flush the queue.
        self.rx.close();
        while let Some(job) = self.rx.recv().await {
            self.commit(job).await;
        }
    }

    /// Leaves the registry if nothing is queued. True = exit.
    fn retire(&mut self) -> bool {
        let Ok(mut queues) = self.shared.queues.lock() else {
            return true;
        };
        if !self.rx.is_empty() {
            return false;
        }
        queues.remove(&self.session);
        self.rx.close();
        true
    }

    /// Writes `first` and whatever else is queued (up to [`MAX_BATCH_ROWS`]) as one
    /// append, then acks every publisher in the batch with its outcome.
    async fn commit(&mut self, first: Job) {
        let mut rows = first.rows;
        let mut acks = vec![first.done];
        while rows.len() < MAX_BATCH_ROWS {
            let Ok(job) = self.rx.try_recv() else { break };
            rows.extend(job.rows);
            acks.push(job.done);
        }
        let outcome = self.shared.outbox.append(&self.session, rows).await;
        for ack in acks {
            // A publisher that went away does not need its answer.
            let _ = ack.send(match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(Error::Outbox(outbox_message(e))),
            });
        }
    }
}

/// The message of an outbox error, to hand the same failure to every publisher.
fn outbox_message(e: &Error) -> String {
    if let Error::Outbox(m) = e {
        m.clone()
    } else {
        e.to_string()
    }
}
