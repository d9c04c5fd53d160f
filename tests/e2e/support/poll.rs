//! `eventually`: the one way the tests wait for something asynchronous to become true.
//!
//! Owns no state: every wait in `tests/e2e` polls a probe with a deadline through these two
//! functions (async, and a blocking twin for the tests that drive a child process with
//! `std`), instead of hand-written `loop { …; sleep }` blocks. A probe answers `Ok(value)`
//! when the condition holds and `Err(observation)` while it does not; at the deadline the
//! test panics with what it was waiting for and the last observation, which is what a
//! failing CI log needs.

use std::{future::Future, time::Duration};

/// Pause between two probes: short against the test timers (50 ms retries, 200 ms pings),
/// long enough not to spin on a 2-core machine.
pub const POLL_EVERY: Duration = Duration::from_millis(25);

/// Polls `probe` until it returns `Ok`, and returns that value.
///
/// # Panics
/// When `deadline` passes first: the message names `what` and the probe's last `Err`.
pub async fn eventually<T, F, Fut>(deadline: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        match probe().await {
            Ok(value) => return value,
            Err(last) => assert!(
                tokio::time::Instant::now() < until,
                "{what}: not within {deadline:?}; last: {last}"
            ),
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

/// [`eventually`] for blocking code (a thread that owns a child process).
///
/// # Panics
/// When `deadline` passes first: the message names `what` and the probe's last `Err`.
pub fn eventually_blocking<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl FnMut() -> Result<T, String>,
) -> T {
    let until = std::time::Instant::now() + deadline;
    loop {
        match probe() {
            Ok(value) => return value,
            Err(last) => assert!(
                std::time::Instant::now() < until,
                "{what}: not within {deadline:?}; last: {last}"
            ),
        }
        std::thread::sleep(POLL_EVERY);
    }
}
