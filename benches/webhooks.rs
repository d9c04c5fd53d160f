//! Webhook throughput of issue 16 (item 5), each figure printed next to its target.
//!
//! What it does: opens a real store (the embedded SQLite store in a temp folder, or
//! MongoDB with `WHARF_BENCH_MONGO_URL`), builds wharf's real [`EventBus`] over it and
//! starts a loopback HTTP/1.1 receiver in the same process. Events go through the real
//! path — `EventBus::publish` → durable outbox append → delivery worker → `POST` — only the
//! WhatsApp side is skipped, so what is measured is the outbox and delivery, not the
//! network that produces events. Phases:
//! - aggregate: S sessions (default 100), each with C concurrent publishers (default 4),
//!   E events per session (default 200), all to one receiver URL: delivered events/s from
//!   the first publish to the last arrival, and the publish (durable append) rate;
//! - single queue: one session, one URL, C concurrent publishers, E×S/10 events;
//! - end-to-end latency (publish call → arrival at the receiver) p50/p99 in each phase.
//!
//! Every event is checked: delivered at least once, duplicates counted, and each
//! publisher's events arrive in the order it published them (per-URL order).
//!
//! ```sh
//! cargo bench -p wharf --bench webhooks
//! cargo bench -p wharf --profile dev --bench webhooks      # debug build, faster to build
//! WHARF_BENCH_SESSIONS=10 WHARF_BENCH_EVENTS=100 cargo bench -p wharf --bench webhooks
//! WHARF_BENCH_MONGO_URL=mongodb://127.0.0.1:27017/ cargo bench -p wharf --bench webhooks
//! ```
//!
//! It never fails on a figure, only when an event is lost or out of order. The `/metrics`
//! counter `wharf_mongo_commands_total` (MongoDB runs) is printed per delivered event.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use wharf::{
    events::{EventBus, EventContext, EventSettings},
    model::session::{SessionConfig, WebhookConfig},
    store::{Namespaces, Store},
};

fn env_number(name: &str, default: usize) -> usize {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}: expected a number, got {v:?}")),
        _ => default,
    }
}

/// A loopback HTTP/1.1 receiver (keep-alive, `Content-Length` bodies only, which is what
/// wharf sends): every body goes to the channel with its arrival time. Also counts the
/// connections it accepted (keep-alive check).
async fn start_receiver() -> (
    String,
    mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("receiver");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, rx) = mpsc::unbounded_channel();
    let connections = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = connections.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = stream.set_nodelay(true);
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut stream = BufReader::new(stream);
                let mut line = String::new();
                loop {
                    let mut length = 0usize;
                    let mut first = true;
                    loop {
                        line.clear();
                        match stream.read_line(&mut line).await {
                            Ok(0) | Err(_) => return,
                            Ok(_) => {}
                        }
                        let l = line.trim_end();
                        if l.is_empty() && !first {
                            break;
                        }
                        first = false;
                        if let Some((k, v)) = l.split_once(':')
                            && k.eq_ignore_ascii_case("content-length")
                        {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if stream.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = tx.send((Instant::now(), body));
                    if stream
                        .get_mut()
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
    });
    (url, rx, connections)
}

fn settings() -> EventSettings {
    EventSettings {
        global_webhook: None,
        environment: json!({"version": "bench", "engine": "GOWS", "tier": "CORE",
            "browser": null, "platform": "linux/x64", "worker": {"id": null}}),
        engine: "GOWS".into(),
        user_agent: "WAHA/bench".into(),
        ws_ping_interval: Duration::from_secs(60),
        egress: wharf::egress::EgressPolicy::default(),
    }
}

fn ctx(session: &str, url: &str) -> EventContext {
    let hook: WebhookConfig =
        serde_json::from_value(json!({"url": url, "events": ["message"]})).expect("webhook");
    EventContext {
        session: session.into(),
        config: Some(SessionConfig {
            webhooks: Some(vec![hook]),
            ..Default::default()
        }),
        me: None,
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// What one phase measured.
struct Phase {
    events: usize,
    delivered_per_s: f64,
    published_per_s: f64,
    p50: Duration,
    p99: Duration,
    duplicates: usize,
}

/// Publishes `per_session` events on each of `sessions` with `publishers` concurrent
/// publishers per session, and waits until the receiver got every one.
async fn phase(
    bus: &EventBus,
    url: &str,
    hooks: &mut mpsc::UnboundedReceiver<(Instant, Vec<u8>)>,
    tag: &str,
    sessions: usize,
    per_session: usize,
    publishers: usize,
) -> Phase {
    while hooks.try_recv().is_ok() {}
    let total = sessions * per_session;
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..sessions {
        for p in 0..publishers {
            let bus = bus.clone();
            let context = ctx(&format!("{tag}{s:04}"), url);
            // Publisher p sends n = p, p + publishers, … sequentially.
            let mine: Vec<usize> = (p..per_session).step_by(publishers).collect();
            tasks.spawn(async move {
                let mut sent = Vec::with_capacity(mine.len());
                for n in mine {
                    let at = Instant::now();
                    let e = bus
                        .publish(&context, "message", json!({"s": s, "p": p, "n": n}))
                        .await
                        .expect("publish");
                    sent.push((e.id.clone(), at));
                }
                sent
            });
        }
    }
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(total);
    let mut last_publish = started;
    while let Some(done) = tasks.join_next().await {
        for (id, at) in done.expect("publisher") {
            sent_at.insert(id, at);
        }
        last_publish = Instant::now();
    }
    let published_per_s = total as f64 / (last_publish - started).as_secs_f64();

    let mut latencies = Vec::with_capacity(total);
    let mut seen: HashMap<String, ()> = HashMap::with_capacity(total);
    let mut last_n: HashMap<(u64, u64), i64> = HashMap::new();
    let mut duplicates = 0;
    let mut last_arrival = started;
    while seen.len() < total {
        let (at, body) = tokio::time::timeout(Duration::from_secs(120), hooks.recv())
            .await
            .unwrap_or_else(|_| panic!("{tag}: only {}/{total} events in 120 s", seen.len()))
            .expect("receiver");
        let v: Value = serde_json::from_slice(&body).expect("envelope");
        let id = v["id"].as_str().expect("id").to_string();
        if seen.insert(id.clone(), ()).is_some() {
            duplicates += 1;
            continue;
        }
        let key = (
            v["payload"]["s"].as_u64().expect("s"),
            v["payload"]["p"].as_u64().expect("p"),
        );
        let n = i64::try_from(v["payload"]["n"].as_u64().expect("n")).expect("n");
        let before = last_n.insert(key, n).unwrap_or(-1);
        assert!(
            n > before,
            "{tag}: publisher {key:?} event {n} arrived after {before}"
        );
        if let Some(t0) = sent_at.get(&id) {
            latencies.push(at - *t0);
        }
        last_arrival = at;
    }
    latencies.sort();
    Phase {
        events: total,
        delivered_per_s: total as f64 / (last_arrival - started).as_secs_f64(),
        published_per_s,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
        duplicates,
    }
}

/// `wharf_mongo_commands_total` by command name, from the process registry.
fn mongo_commands() -> HashMap<String, f64> {
    let text = wharf::metrics::global().render(std::iter::empty());
    let mut out = HashMap::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("wharf_mongo_commands_total{")
            && let Some((labels, value)) = rest.split_once("} ")
            && let Some(name) = labels
                .split(',')
                .find_map(|l| l.strip_prefix("command=\""))
                .map(|n| n.trim_end_matches('"').to_string())
        {
            *out.entry(name).or_insert(0.0) += value.trim().parse::<f64>().unwrap_or(0.0);
        }
    }
    out
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(run());
}

async fn run() {
    let sessions = env_number("WHARF_BENCH_SESSIONS", 100).max(1);
    let per_session = env_number("WHARF_BENCH_EVENTS", 200).max(1);
    let publishers = env_number("WHARF_BENCH_PUBLISHERS", 4).max(1);
    let single = (sessions * per_session / 10).max(100);
    let mongo = std::env::var("WHARF_BENCH_MONGO_URL")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let stamp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ns = Namespaces {
        main: format!("benchwh{}x{stamp}", std::process::id()),
        session: format!("benchwh{}x{stamp}", std::process::id()),
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let store = match &mongo {
        Some(url) => Store::mongo(url, ns).await.expect("mongo store"),
        None => Store::sqlite(dir.path(), ns).await.expect("sqlite store"),
    };
    let profile = if cfg!(debug_assertions) {
        "debug"
    } else {
        "release"
    };
    println!(
        "webhooks: {} store, {profile} build; aggregate {sessions} sessions × {per_session} events \
         ({publishers} publishers each), single queue {single} events",
        store.kind()
    );
    let (url, mut hooks, connections) = start_receiver().await;
    let cancel = CancellationToken::new();
    let bus = EventBus::new(
        store.clone(),
        settings(),
        tokio::runtime::Handle::current(),
        cancel.clone(),
    );

    let before = mongo_commands();
    let agg = phase(
        &bus,
        &url,
        &mut hooks,
        "agg",
        sessions,
        per_session,
        publishers,
    )
    .await;
    let after = mongo_commands();
    let one = phase(&bus, &url, &mut hooks, "one", 1, single, publishers).await;
    bus.shutdown().await;

    let verdict = |ok: bool| if ok { "PASS" } else { "MISS" };
    let row = |what: &str, value: String, target: &str, ok: Option<bool>| {
        println!(
            "| {what:<44} | {value:>14} | {target:<14} | {:<4} |",
            ok.map_or("", verdict)
        );
    };
    println!();
    println!(
        "| {:<44} | {:>14} | {:<14} | {:<4} |",
        "figure", "value", "target", ""
    );
    println!("|{:-<46}|{:-<16}|{:-<16}|{:-<6}|", "", "", "", "");
    row(
        &format!("aggregate delivered events/s ({sessions} sessions)"),
        format!("{:.0}", agg.delivered_per_s),
        ">= 10,000",
        Some(agg.delivered_per_s >= 10_000.0),
    );
    row(
        "aggregate durable publishes/s",
        format!("{:.0}", agg.published_per_s),
        "",
        None,
    );
    row("aggregate end to end p50", ms(agg.p50), "", None);
    row("aggregate end to end p99", ms(agg.p99), "", None);
    row(
        "single (session, URL) queue delivered events/s",
        format!("{:.0}", one.delivered_per_s),
        ">= 1,000",
        Some(one.delivered_per_s >= 1_000.0),
    );
    row(
        "single queue durable publishes/s",
        format!("{:.0}", one.published_per_s),
        "",
        None,
    );
    row("single queue end to end p50", ms(one.p50), "", None);
    row("single queue end to end p99", ms(one.p99), "", None);
    row(
        "duplicates (at least once; 0 expected here)",
        format!("{}", agg.duplicates + one.duplicates),
        "",
        None,
    );
    row(
        "receiver connections (keep-alive)",
        format!("{}", connections.load(std::sync::atomic::Ordering::Relaxed)),
        "",
        None,
    );
    if mongo.is_some() {
        let mut names: Vec<&String> = after.keys().collect();
        names.sort();
        println!();
        println!("MongoDB commands per event (aggregate phase, publish + delivery):");
        for name in names {
            let d = after[name] - before.get(name).copied().unwrap_or(0.0);
            if d > 0.0 {
                println!("  {name:<16} {:.3}", d / agg.events as f64);
            }
        }
    }
    println!();
    println!("(receiver and publishers share the machine with the bus)");
    cancel.cancel();
    drop(dir);
}
