//! Stopping a session joins every task of its tracker: nothing outlives `stop`.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::stop_tracked;

/// A task that winds down (briefly) after `cancel`, then counts itself done.
fn cooperative(
    tracker: &TaskTracker,
    cancel: &CancellationToken,
    done: &Arc<AtomicUsize>,
) -> tokio::task::JoinHandle<()> {
    let (cancel, done) = (cancel.clone(), done.clone());
    tracker.spawn(async move {
        cancel.cancelled().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
        done.fetch_add(1, Ordering::SeqCst);
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_tracked_cancelled_tasks_are_all_joined() {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    let done = Arc::new(AtomicUsize::new(0));
    let main = cooperative(&tracker, &cancel, &done);
    for _ in 0..3 {
        cooperative(&tracker, &cancel, &done);
    }
    let joined = stop_tracked(
        &cancel,
        &tracker,
        &main.abort_handle(),
        Duration::from_secs(5),
    )
    .await;
    assert!(joined);
    // Every task ran to its end before stop returned.
    assert_eq!(done.load(Ordering::SeqCst), 4);
    assert!(tracker.is_empty());
    assert!(main.is_finished());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_tracked_stuck_runtime_is_aborted_after_deadline() {
    let cancel = CancellationToken::new();
    let tracker = TaskTracker::new();
    // Ignores cancellation: only the abort ends it.
    let main = tracker.spawn(std::future::pending::<()>());
    let started = tokio::time::Instant::now();
    let joined = stop_tracked(
        &cancel,
        &tracker,
        &main.abort_handle(),
        Duration::from_millis(100),
    )
    .await;
    assert!(!joined);
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(tracker.is_empty(), "the aborted task is joined too");
}
