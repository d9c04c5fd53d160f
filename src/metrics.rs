//! Prometheus metrics: what `/metrics` shows (issue 14, item 3).
//!
//! Owns the process-wide [`Metrics`] registry (like Prometheus' default registry: one per
//! process, so several apps in one test process share counters — tests compare deltas)
//! and the OpenMetrics text encoding. Counters are bumped where things happen: the HTTP
//! middleware (`api`), the inbox and chatting (`sessions`), webhook delivery (`events`),
//! the session runtime (reconnects). Gauges that describe state (sessions by status,
//! process RSS, CPU, open files) are set at scrape time by [`Metrics::render`].
//!
//! Cardinality: label values are route *templates*, statuses and results; the session
//! name is a label only when `WHARF_METRICS_SESSION_LABELS=true` (10,000 sessions would
//! otherwise make 10,000 series per metric).

use std::sync::{
    OnceLock,
    atomic::{AtomicBool, Ordering},
};

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::{Registry, Unit},
};

/// `method`, `route` (template), `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    method: String,
    route: String,
    status: String,
}

/// `method`, `route`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    route: String,
}

/// `direction` (`in` / `out`) and, opt-in, `session`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    direction: &'static str,
    session: String,
}

/// `result` (`delivered` / `failed` / `dead`) and, opt-in, `session`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WebhookLabels {
    result: &'static str,
    session: String,
}

/// `status` of a session.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabels {
    status: String,
}

/// `command`: a MongoDB command name (`find`, `insert`, `update`, …).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CommandLabels {
    command: String,
}

/// `command` and `collection` (the collection name only, never the database: the set is
/// the fixed list of collections wharf uses, whatever the number of sessions).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CollectionCommandLabels {
    command: String,
    collection: String,
}

/// Every metric wharf exports.
pub struct Metrics {
    registry: Registry,
    per_session: AtomicBool,
    per_collection: AtomicBool,
    http_requests: Family<HttpLabels, Counter>,
    http_duration: Family<RouteLabels, Histogram>,
    messages: Family<MessageLabels, Counter>,
    webhooks: Family<WebhookLabels, Counter>,
    webhook_latency: Histogram,
    reconnects: Counter,
    sessions: Family<StatusLabels, Gauge>,
    rss: Gauge,
    cpu_ms: Gauge,
    open_fds: Gauge,
    mongo_commands: Family<CommandLabels, Counter>,
    mongo_collection_commands: Family<CollectionCommandLabels, Counter>,
}

fn latency_buckets() -> impl Iterator<Item = f64> {
    [
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ]
    .into_iter()
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("wharf");
        let http_requests = Family::<HttpLabels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests by method, route template and status",
            http_requests.clone(),
        );
        let http_duration = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(latency_buckets())
        });
        registry.register_with_unit(
            "http_request_duration",
            "HTTP request latency by method and route template",
            Unit::Seconds,
            http_duration.clone(),
        );
        let messages = Family::<MessageLabels, Counter>::default();
        registry.register(
            "messages",
            "WhatsApp messages received (in) and sent through the API (out)",
            messages.clone(),
        );
        let webhooks = Family::<WebhookLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook attempts by result: delivered, failed (to be retried), dead (letter)",
            webhooks.clone(),
        );
        let webhook_latency = Histogram::new(latency_buckets());
        registry.register_with_unit(
            "webhook_delivery_latency",
            "Time from an event to its successful delivery",
            Unit::Seconds,
            webhook_latency.clone(),
        );
        let reconnects = Counter::default();
        registry.register(
            "engine_reconnects",
            "WhatsApp connections lost by WORKING sessions (each is followed by a reconnect)",
            reconnects.clone(),
        );
        let sessions = Family::<StatusLabels, Gauge>::default();
        registry.register("sessions", "Sessions by status", sessions.clone());
        let rss = Gauge::default();
        registry.register_with_unit(
            "process_resident_memory",
            "Resident memory of the process",
            Unit::Bytes,
            rss.clone(),
        );
        let cpu_ms = Gauge::default();
        registry.register(
            "process_cpu_milliseconds",
            "CPU time (user + system) used by the process, in milliseconds",
            cpu_ms.clone(),
        );
        let open_fds = Gauge::default();
        registry.register(
            "process_open_fds",
            "Open file descriptors",
            open_fds.clone(),
        );
        let mongo_commands = Family::<CommandLabels, Counter>::default();
        registry.register(
            "mongo_commands",
            "MongoDB commands sent (database round trips), by command name",
            mongo_commands.clone(),
        );
        let mongo_collection_commands = Family::<CollectionCommandLabels, Counter>::default();
        registry.register(
            "mongo_collection_commands",
            "MongoDB commands by command and collection name; empty unless \
             WHARF_METRICS_MONGO_COLLECTIONS=true (for finding where round trips go)",
            mongo_collection_commands.clone(),
        );
        // Zero series from the start, so dashboards show 0 rather than "no data" and every
        // family is in the very first scrape.
        for direction in ["in", "out"] {
            let _ = messages.get_or_create(&MessageLabels {
                direction,
                session: String::new(),
            });
        }
        for result in ["delivered", "failed", "dead"] {
            let _ = webhooks.get_or_create(&WebhookLabels {
                result,
                session: String::new(),
            });
        }
        Self {
            registry,
            per_session: AtomicBool::new(false),
            per_collection: AtomicBool::new(false),
            http_requests,
            http_duration,
            messages,
            webhooks,
            webhook_latency,
            reconnects,
            sessions,
            rss,
            cpu_ms,
            open_fds,
            mongo_commands,
            mongo_collection_commands,
        }
    }

    /// One MongoDB command sent (the store's command monitor calls this); `collection`
    /// is the collection it names, if any, counted only when
    /// [`Metrics::set_collection_labels`] is on.
    pub fn mongo_command(&self, command: &str, collection: Option<&str>) {
        self.mongo_commands
            .get_or_create(&CommandLabels {
                command: command.to_string(),
            })
            .inc();
        if self.per_collection.load(Ordering::Relaxed) {
            self.mongo_collection_commands
                .get_or_create(&CollectionCommandLabels {
                    command: command.to_string(),
                    collection: collection.unwrap_or_default().to_string(),
                })
                .inc();
        }
    }

    /// Counts MongoDB commands by collection too (`WHARF_METRICS_MONGO_COLLECTIONS`).
    pub fn set_collection_labels(&self, on: bool) {
        self.per_collection.store(on, Ordering::Relaxed);
    }

    /// Adds the `session` label to message and webhook metrics from now on.
    pub fn set_session_labels(&self, on: bool) {
        self.per_session.store(on, Ordering::Relaxed);
    }

    fn session_label(&self, session: &str) -> String {
        if self.per_session.load(Ordering::Relaxed) {
            session.to_string()
        } else {
            String::new()
        }
    }

    /// One HTTP request answered.
    pub fn http(&self, method: &str, route: &str, status: u16, seconds: f64) {
        self.http_requests
            .get_or_create(&HttpLabels {
                method: method.to_string(),
                route: route.to_string(),
                status: status.to_string(),
            })
            .inc();
        self.http_duration
            .get_or_create(&RouteLabels {
                method: method.to_string(),
                route: route.to_string(),
            })
            .observe(seconds);
    }

    /// A message received by `session` (`inbound`) or sent through the API.
    pub fn message(&self, session: &str, inbound: bool) {
        self.messages
            .get_or_create(&MessageLabels {
                direction: if inbound { "in" } else { "out" },
                session: self.session_label(session),
            })
            .inc();
    }

    /// A webhook delivered, `latency_ms` after its event.
    pub fn webhook_delivered(&self, session: &str, latency_ms: i64) {
        self.webhook(session, "delivered");
        #[allow(clippy::cast_precision_loss)]
        self.webhook_latency
            .observe(latency_ms.max(0) as f64 / 1000.0);
    }

    /// A webhook attempt failed; `dead` = it was the last one.
    pub fn webhook_failed(&self, session: &str, dead: bool) {
        self.webhook(session, if dead { "dead" } else { "failed" });
    }

    fn webhook(&self, session: &str, result: &'static str) {
        self.webhooks
            .get_or_create(&WebhookLabels {
                result,
                session: self.session_label(session),
            })
            .inc();
    }

    /// A WORKING session lost its connection.
    pub fn reconnect(&self) {
        self.reconnects.inc();
    }

    /// The OpenMetrics text, with the state gauges set first: `statuses` holds one entry
    /// per session (its WAHA status name).
    pub fn render<'a>(&self, statuses: impl IntoIterator<Item = &'a str>) -> String {
        self.sessions.clear();
        for status in ["STOPPED", "STARTING", "SCAN_QR_CODE", "WORKING", "FAILED"] {
            let _ = self.sessions.get_or_create(&StatusLabels {
                status: status.to_string(),
            });
        }
        for s in statuses {
            self.sessions
                .get_or_create(&StatusLabels {
                    status: s.to_string(),
                })
                .inc();
        }
        let p = process_stats();
        self.rss.set(p.rss_bytes);
        self.cpu_ms.set(p.cpu_ms);
        self.open_fds.set(p.open_fds);
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// The process-wide registry.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

#[derive(Default)]
struct ProcessStats {
    rss_bytes: i64,
    cpu_ms: i64,
    open_fds: i64,
}

/// From `/proc/self` (Linux); zeros elsewhere.
fn process_stats() -> ProcessStats {
    let mut p = ProcessStats::default();
    // statm: size resident ... in pages.
    if let Ok(statm) = std::fs::read_to_string("/proc/self/statm")
        && let Some(pages) = statm
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse::<i64>().ok())
    {
        p.rss_bytes = pages.saturating_mul(page_size());
    }
    // stat: fields 14 and 15 are utime and stime in clock ticks (100 Hz on Linux).
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat")
        && let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r)
    {
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let tick = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(0)
        };
        // After ")", field 3 (state) is index 0, so utime (14) is index 11.
        p.cpu_ms = (tick(11) + tick(12)).saturating_mul(10);
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        p.open_fds = i64::try_from(dir.count()).unwrap_or(i64::MAX);
    }
    p
}

fn page_size() -> i64 {
    // 4 KiB on every Linux target wharf ships for; rustix would tell, at the cost of a
    // feature for one number.
    4096
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_with_counters_and_gauges() {
        let m = Metrics::new();
        m.http("GET", "/api/sessions", 200, 0.003);
        m.message("s1", true);
        m.message("s1", false);
        m.webhook_delivered("s1", 12);
        m.webhook_failed("s1", true);
        let text = m.render(["WORKING", "WORKING", "STOPPED"]);
        assert!(
            text.contains(
                r#"wharf_http_requests_total{method="GET",route="/api/sessions",status="200"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"wharf_sessions{status="WORKING"} 2"#),
            "{text}"
        );
        assert!(
            text.contains(r#"wharf_messages_total{direction="in",session=""} 1"#),
            "{text}"
        );
        assert!(text.contains(r#"wharf_webhook_deliveries_total{result="dead",session=""} 1"#));
        assert!(
            text.contains("wharf_process_resident_memory_bytes "),
            "{text}"
        );
        assert!(text.ends_with("# EOF\n"), "{text}");
        m.set_session_labels(true);
        m.message("s1", true);
        assert!(m.render([]).contains(r#"direction="in",session="s1""#));
    }
}
