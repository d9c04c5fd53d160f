//! Webhook delivery: one worker task per (session, url), strictly in outbox order.
//!
//! Owns: the shared HTTP client, the worker registry and the retry schedule. Built by
//! [`super::EventBus::new`]; workers are spawned on demand by `wake` (publish, replay,
//! boot `resume`) on the runtime handle under a child cancellation token, tracked, and
//! joined by `shutdown`. An idle worker retires after [`IDLE_RETIRE`].
//!
//! Wire format as WAHA's `WebhookPlugin.sender.ts` (`../shared/reference/waha.md` §5.4):
//! `POST url` with the envelope as body, `content-type`, `User-Agent`, custom headers,
//! `X-Webhook-Request-Id`, `X-Webhook-Timestamp`, and `X-Webhook-Hmac` (+ algorithm) when
//! a key is set. Retries follow WAHA's `axios-retry` setup (every failure is retried,
//! `Retry-After` is a floor) — but the schedule is persisted in the outbox, and an
//! exhausted event becomes a dead letter instead of being dropped.
//!
//! Isolation: each (session, url) has its own task reading small batches from the
//! outbox, so a slow or failing receiver only holds back its own queue and memory stays
//! bounded whatever the backlog.
//!
//! Per-event cost (issue 16: 100 queues to one receiver share two cores): the body is
//! the stored bytes, sent as is (never re-serialized); a queue parses and checks its URL
//! once, builds its fixed headers once and reuses them while the rows' custom headers do
//! not change, signs a row once (not per attempt), and builds the request directly.

use std::{
    collections::HashMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use bytes::Bytes;
use hmac::{Hmac, Mac};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use sha2::Sha512;
use tokio::sync::Notify;
use tokio_util::{sync::CancellationToken, task::TaskTracker};

use super::outbox::{Outbox, Row};
use crate::model::session::RetryPolicy;

/// Rows a worker reads at once; their removals are written together.
const BATCH: usize = 64;
/// A worker with nothing to do for this long exits (a new event starts it again).
const IDLE_RETIRE: Duration = Duration::from_secs(120);
/// Pause after a storage error before the worker tries again.
const STORE_BACKOFF: Duration = Duration::from_secs(1);
/// One request may take this long (WAHA has no limit; a hung receiver must not hold its
/// queue forever).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Idle keep-alive connections to receivers are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(90);
/// Upper bound of one retry delay (exponential policies and `Retry-After` included).
const MAX_DELAY_MS: u64 = 3_600_000;
/// How long `shutdown` waits for workers to notice the cancellation.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(5);

/// The worker registry and what workers share.
pub(crate) struct Delivery {
    shared: Arc<Shared>,
}

struct Shared {
    outbox: Outbox,
    client: reqwest::Client,
    egress: crate::egress::EgressPolicy,
    /// `content-type` and `User-Agent`: the headers every request starts with.
    base_headers: HeaderMap,
    rt: tokio::runtime::Handle,
    cancel: CancellationToken,
    tracker: TaskTracker,
    /// Session → url → its worker. Nested so that `wake` (once per publish) looks up
    /// with borrowed names, allocating nothing for a running worker.
    workers: Mutex<HashMap<String, HashMap<String, WorkerSlot>>>,
}

/// How `wake` reaches a running worker.
struct WorkerSlot {
    notify: Arc<Notify>,
    /// Bumped by every wake, under the registry lock: a worker retires only if it saw
    /// the latest value, so a wake is never lost to a retiring worker.
    wakes: Arc<AtomicU64>,
}

impl Delivery {
    pub(crate) fn new(
        outbox: Outbox,
        user_agent: String,
        egress: crate::egress::EgressPolicy,
        rt: tokio::runtime::Handle,
        cancel: CancellationToken,
    ) -> Self {
        let client = reqwest::Client::builder()
            .dns_resolver(egress.resolver())
            .timeout(REQUEST_TIMEOUT)
            // reqwest's default today; stated so a webhook never waits on Nagle (issue 16).
            .tcp_nodelay(true)
            .connect_timeout(CONNECT_TIMEOUT)
            // Keep-alive: each (session, url) worker sends one request at a time and
            // reuses a pooled connection to its receiver; idle ones close after 90 s.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // WAHA's HTTPS agent uses `rejectUnauthorized: false`; receivers with
            // self-signed certificates that work with WAHA must keep working.
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "webhook client: falling back to defaults");
                reqwest::Client::new()
            });
        let mut base_headers = HeaderMap::new();
        base_headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = HeaderValue::from_str(&user_agent) {
            base_headers.insert(reqwest::header::USER_AGENT, v);
        }
        Self {
            shared: Arc::new(Shared {
                outbox,
                client,
                egress,
                base_headers,
                rt,
                cancel,
                tracker: TaskTracker::new(),
                workers: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Makes sure the (session, url) worker runs and looks at the outbox again.
    pub(crate) fn wake(&self, session: &str, url: &str) {
        let shared = &self.shared;
        if shared.cancel.is_cancelled() {
            return;
        }
        let Ok(mut workers) = shared.workers.lock() else {
            return;
        };
        if let Some(slot) = workers.get(session).and_then(|urls| urls.get(url)) {
            slot.wakes.fetch_add(1, Ordering::SeqCst);
            slot.notify.notify_one();
            return;
        }
        let slot = WorkerSlot {
            notify: Arc::new(Notify::new()),
            wakes: Arc::new(AtomicU64::new(0)),
        };
        let worker = Worker {
            shared: Arc::clone(shared),
            session: session.to_string(),
            url: url.to_string(),
            target: target(&shared.egress, url),
            notify: Arc::clone(&slot.notify),
            wakes: Arc::clone(&slot.wakes),
        };
        workers
            .entry(session.to_string())
            .or_default()
            .insert(url.to_string(), slot);
        shared.tracker.spawn_on(worker.run(), &shared.rt);
    }

    /// Cancels and joins the workers (bounded by [`SHUTDOWN_DEADLINE`]).
    pub(crate) async fn shutdown(&self) {
        self.shared.cancel.cancel();
        self.shared.tracker.close();
        if tokio::time::timeout(SHUTDOWN_DEADLINE, self.shared.tracker.wait())
            .await
            .is_err()
        {
            tracing::warn!("webhook workers did not stop in time");
        }
        if let Ok(mut w) = self.shared.workers.lock() {
            w.clear();
        }
    }
}

/// The queue's URL, parsed and checked against the egress policy once: every row of a
/// (session, url) queue has that URL and the policy is fixed for the process. `Err` is
/// the refusal, recorded as each attempt's failure (so the rows end as dead letters, as
/// when it was checked per request).
fn target(egress: &crate::egress::EgressPolicy, url: &str) -> Result<reqwest::Url, String> {
    // Literal addresses never reach the resolver, so they are checked here; names are
    // checked after resolution (`EgressPolicy::resolver`).
    egress.check_url(url).map_err(|e| e.to_string())?;
    reqwest::Url::parse(url).map_err(|e| format!("builder error: {e}"))
}

/// One (session, url) queue.
struct Worker {
    shared: Arc<Shared>,
    session: String,
    url: String,
    /// `url` parsed, or why it may not be reached.
    target: Result<reqwest::Url, String>,
    notify: Arc<Notify>,
    wakes: Arc<AtomicU64>,
}

/// What every attempt of one row sends: the stored body bytes and the headers but the
/// per-request id.
struct Prepared {
    body: Bytes,
    headers: HeaderMap,
}

/// The queue's base and custom headers, rebuilt only when a row's custom headers differ
/// from the previous row's (a webhook's rows share them unless its config changed).
#[derive(Default)]
struct HeaderCache {
    custom: Option<Vec<(String, String)>>,
    headers: HeaderMap,
}

/// Why an attempt failed.
struct Failure {
    error: String,
    retry_after_ms: Option<u64>,
}

/// How one row's delivery ended.
enum Outcome {
    /// 2xx: the row is to be removed.
    Delivered,
    /// Attempts exhausted: the row is a dead letter now.
    Dead,
    /// The bus is stopping; the row stays pending.
    Cancelled,
}

impl Worker {
    /// Reads pending rows in batches and delivers them one by one, in seq order.
    ///
    /// Removal is pipelined: a batch's delivered rows are deleted in one write that runs
    /// while the next batch is being sent (reads then start after `cursor`, the last seq
    /// handled). A crash before that write completes only redelivers them (at least
    /// once). Once the queue looks empty the cursor goes back to 0, so rows that became
    /// pending again below it (replayed dead letters) are found.
    async fn run(self) {
        let cancel = self.shared.cancel.clone();
        let mut cursor = 0_i64;
        let mut removing: Option<tokio::task::JoinHandle<bool>> = None;
        let mut cache = HeaderCache::default();
        loop {
            let seen = self.wakes.load(Ordering::SeqCst);
            let rows = match self
                .shared
                .outbox
                .pending_after(&self.session, &self.url, cursor, BATCH)
                .await
            {
                Ok(Some(rows)) => rows,
                // The session's outbox was deleted with the session.
                Ok(None) => Vec::new(),
                Err(e) => {
                    tracing::warn!(session = self.session, url = crate::redact::url(&self.url), error = %e,
                        "webhook outbox unreadable; retrying");
                    if sleep_or_cancel(&cancel, STORE_BACKOFF).await {
                        settle(removing.take()).await;
                        return;
                    }
                    continue;
                }
            };
            if rows.is_empty() {
                if removing.is_some() || cursor != 0 {
                    settle(removing.take()).await;
                    cursor = 0;
                    continue;
                }
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = self.notify.notified() => continue,
                    () = tokio::time::sleep(IDLE_RETIRE) => {
                        if self.retire(seen) {
                            return;
                        }
                        continue;
                    }
                }
            }
            let mut delivered = Vec::with_capacity(rows.len());
            let mut cancelled = false;
            for row in rows {
                let seq = row.seq;
                match self.deliver(row, &mut cache).await {
                    Outcome::Delivered => delivered.push(seq),
                    Outcome::Dead => {}
                    Outcome::Cancelled => {
                        cancelled = true;
                        break;
                    }
                }
                cursor = seq;
            }
            // One removal in flight at a time, in order: the previous batch's first.
            if !settle(removing.take()).await {
                // Its rows are still pending: read from the start again (they are
                // redelivered, at least once).
                cursor = 0;
            }
            if cancelled {
                // Stopping: remove what was delivered now, so a restart does not resend it.
                let outbox = &self.shared.outbox;
                if let Err(e) = outbox.delivered(&self.session, delivered).await {
                    tracing::warn!(session = self.session, error = %e,
                        "delivered webhooks not removed from the outbox");
                }
                return;
            }
            if !delivered.is_empty() {
                let (outbox, session) = (self.shared.outbox.clone(), self.session.clone());
                removing = Some(self.shared.tracker.spawn_on(
                    async move {
                        match outbox.delivered(&session, delivered).await {
                            Ok(()) => true,
                            Err(e) => {
                                // Still pending in storage: sent again (at least once).
                                tracing::warn!(session, error = %e,
                                    "delivered webhooks not removed from the outbox");
                                false
                            }
                        }
                    },
                    &self.shared.rt,
                ));
            }
        }
    }

    /// Leaves the registry unless a wake arrived since `seen`. True = exit.
    fn retire(&self, seen: u64) -> bool {
        let Ok(mut workers) = self.shared.workers.lock() else {
            return true;
        };
        if self.wakes.load(Ordering::SeqCst) != seen {
            return false;
        }
        if let Some(urls) = workers.get_mut(&self.session) {
            urls.remove(&self.url);
            if urls.is_empty() {
                workers.remove(&self.session);
            }
        }
        true
    }

    /// Delivers one row, retrying until a 2xx or the last attempt. The caller removes a
    /// delivered row.
    async fn deliver(&self, mut row: Row, cache: &mut HeaderCache) -> Outcome {
        let cancel = &self.shared.cancel;
        let outbox = &self.shared.outbox;
        let prepared = self.prepare(&mut row, cache);
        let mut attempts = row.attempts;
        let mut next = row.next_attempt_ms;
        loop {
            let wait = next - crate::clock::now_ms();
            if wait > 0 && sleep_or_cancel(cancel, Duration::from_millis(wait.unsigned_abs())).await
            {
                return Outcome::Cancelled;
            }
            let outcome = tokio::select! {
                () = cancel.cancelled() => return Outcome::Cancelled,
                r = self.send(&prepared) => r,
            };
            match outcome {
                Ok(()) => {
                    crate::metrics::global().webhook_delivered(
                        &self.session,
                        crate::clock::now_ms() - row.new.created_ms,
                    );
                    tracing::debug!(
                        session = self.session,
                        url = crate::redact::url(&self.url),
                        event = row.new.event,
                        id = row.new.event_id,
                        "webhook delivered"
                    );
                    return Outcome::Delivered;
                }
                Err(failure) => {
                    attempts = attempts.saturating_add(1);
                    let dead = attempts >= row.new.retry.max_attempts;
                    crate::metrics::global().webhook_failed(&self.session, dead);
                    let delay = retry_delay_ms(
                        row.new.retry.policy,
                        row.new.retry.delay_ms,
                        attempts,
                        failure.retry_after_ms,
                    );
                    next = crate::clock::now_ms()
                        .saturating_add(i64::try_from(delay).unwrap_or(i64::MAX));
                    if let Err(e) = outbox
                        .failed(&self.session, row.seq, attempts, next, &failure.error, dead)
                        .await
                    {
                        tracing::warn!(session = self.session, seq = row.seq, error = %e,
                            "cannot record a webhook attempt");
                    }
                    if dead {
                        tracing::warn!(
                            session = self.session,
                            url = crate::redact::url(&self.url),
                            event = row.new.event,
                            id = row.new.event_id,
                            attempts,
                            error = failure.error,
                            "webhook attempts exhausted; dead letter"
                        );
                        return Outcome::Dead;
                    }
                    tracing::debug!(
                        session = self.session,
                        url = crate::redact::url(&self.url),
                        attempts,
                        error = failure.error,
                        delay_ms = delay,
                        "webhook failed; will retry"
                    );
                }
            }
        }
    }

    /// The body and headers of every attempt at `row` (its body moves into the result).
    fn prepare(&self, row: &mut Row, cache: &mut HeaderCache) -> Prepared {
        if cache.custom.as_ref() != Some(&row.new.headers) {
            cache.headers = custom_headers(&self.shared.base_headers, &row.new.headers);
            cache.custom = Some(row.new.headers.clone());
        }
        let mut headers = cache.headers.clone();
        headers.insert("x-webhook-timestamp", HeaderValue::from(row.new.created_ms));
        let body = Bytes::from(std::mem::take(&mut row.new.body));
        if let Some(key) = &row.new.hmac_key {
            let signature = hmac_sha512_hex(key, &body);
            if let Ok(v) = HeaderValue::from_str(&signature) {
                headers.insert("x-webhook-hmac", v);
                headers.insert(
                    "x-webhook-hmac-algorithm",
                    HeaderValue::from_static("sha512"),
                );
            }
        }
        Prepared { body, headers }
    }

    /// One POST of the row's exact body, with a fresh `X-Webhook-Request-Id`.
    ///
    /// # Cancel safety
    /// Cancel safe: dropping it abandons the request; the row stays pending.
    async fn send(&self, prepared: &Prepared) -> Result<(), Failure> {
        let url = match &self.target {
            Ok(url) => url.clone(),
            Err(error) => {
                return Err(Failure {
                    error: error.clone(),
                    retry_after_ms: None,
                });
            }
        };
        let mut request = reqwest::Request::new(reqwest::Method::POST, url);
        let headers = request.headers_mut();
        *headers = prepared.headers.clone();
        headers.insert("x-webhook-request-id", request_id());
        *request.body_mut() = Some(prepared.body.clone().into());
        let res = self
            .shared
            .client
            .execute(request)
            .await
            .map_err(|e| Failure {
                error: error_chain(&e),
                retry_after_ms: None,
            })?;
        let status = res.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after_ms = res
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after_ms);
        Err(Failure {
            error: format!("HTTP {}", status.as_u16()),
            retry_after_ms,
        })
    }
}

/// `base` plus a webhook's custom headers, in order (a custom header replaces a base one
/// of the same name, as before; invalid ones are skipped).
fn custom_headers(base: &HeaderMap, custom: &[(String, String)]) -> HeaderMap {
    let mut headers = base.clone();
    for (name, value) in custom {
        match (
            HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(value),
        ) {
            (Ok(n), Ok(v)) => {
                headers.insert(n, v);
            }
            _ => tracing::warn!(header = name, "skipping an invalid custom webhook header"),
        }
    }
    headers
}

/// A fresh `X-Webhook-Request-Id`: a v4 UUID, 32 lower-case hex digits, drawn from the
/// thread-local generator (no system call per request).
fn request_id() -> HeaderValue {
    let id = uuid::Builder::from_random_bytes(rand::random()).into_uuid();
    let mut buf = [0u8; uuid::fmt::Simple::LENGTH];
    HeaderValue::from_str(id.simple().encode_lower(&mut buf))
        .unwrap_or_else(|_| HeaderValue::from_static("0"))
}

/// hex(HMAC-SHA512(key, body)), as WAHA signs (`crypto.createHmac('sha512', key)`).
pub fn hmac_sha512_hex(key: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length; the error arm is unreachable for Hmac<Sha512>.
    match Hmac::<Sha512>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}

/// Delay before the attempt after `failures` failures (1 = first retry), in ms:
/// constant = d, linear = n×d, exponential = 2^(n-1)×d + 0–20 % jitter (WAHA docs: 2,
/// 4.1, 8.4, 16.3 s for d = 2 s). `Retry-After` is a floor. Capped at an hour.
pub fn retry_delay_ms(
    policy: RetryPolicy,
    delay_ms: u64,
    failures: u32,
    retry_after_ms: Option<u64>,
) -> u64 {
    let n = u64::from(failures.max(1));
    let base = match policy {
        RetryPolicy::Constant => delay_ms,
        RetryPolicy::Linear => delay_ms.saturating_mul(n),
        RetryPolicy::Exponential => {
            let exp = delay_ms.saturating_mul(1u64 << (n - 1).min(40));
            let jitter = (exp as f64 * rand::random::<f64>() * 0.2) as u64;
            exp.saturating_add(jitter)
        }
    };
    base.max(retry_after_ms.unwrap_or(0)).min(MAX_DELAY_MS)
}

/// `Retry-After`: delta-seconds or an HTTP date.
fn parse_retry_after_ms(value: &str) -> Option<u64> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.saturating_mul(1000));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let ms = at.timestamp_millis() - crate::clock::now_ms();
    Some(u64::try_from(ms).unwrap_or(0))
}

/// The error and its sources, e.g. `error sending request: connection refused`.
fn error_chain(e: &reqwest::Error) -> String {
    // reqwest's text names the URL, query tokens included: it goes to logs and to dead
    // letters, so the URL is left out (the row already has it).
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(&format!(" for url ({url})"), "");
        text = text.replace(url.as_str(), &crate::redact::url(url.as_str()));
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Waits for a removal started by a worker. True = it succeeded (or there was none).
///
/// # Cancel safety
/// Cancel safe: the removal runs on as its own task.
async fn settle(removing: Option<tokio::task::JoinHandle<bool>>) -> bool {
    match removing {
        Some(task) => task.await.unwrap_or(false),
        None => true,
    }
}

/// Sleeps unless cancelled first. True = cancelled.
///
/// # Cancel safety
/// Cancel safe.
async fn sleep_or_cancel(cancel: &CancellationToken, d: Duration) -> bool {
    tokio::select! {
        () = cancel.cancelled() => true,
        () = tokio::time::sleep(d) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_follow_waha_policies() {
        assert_eq!(retry_delay_ms(RetryPolicy::Constant, 2000, 3, None), 2000);
        assert_eq!(retry_delay_ms(RetryPolicy::Linear, 2000, 3, None), 6000);
        let e = retry_delay_ms(RetryPolicy::Exponential, 2000, 3, None);
        assert!((8000..=9600).contains(&e), "{e}");
        assert_eq!(retry_delay_ms(RetryPolicy::Constant, 0, 1, None), 0);
        assert_eq!(
            retry_delay_ms(RetryPolicy::Constant, 10, 1, Some(3000)),
            3000
        );
        assert_eq!(
            retry_delay_ms(RetryPolicy::Exponential, 2000, 200, None),
            MAX_DELAY_MS
        );
    }

    #[test]
    fn retry_after_parses_seconds_and_dates() {
        assert_eq!(parse_retry_after_ms("3"), Some(3000));
        assert_eq!(
            parse_retry_after_ms("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(0)
        );
        assert_eq!(parse_retry_after_ms("soon"), None);
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        let sig = hmac_sha512_hex("Jefe", b"what do ya want for nothing?");
        assert!(
            sig.starts_with("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554")
        );
    }
}
