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

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
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

/// What the receiver keeps of one request: its arrival time, the envelope `id` and the
/// bench's payload counters (session, publisher, sequence number).
struct Arrival {
    at: Instant,
    id: String,
    s: u64,
    p: u64,
    n: u64,
}

/// The receiver's side of the run, read when the phases are over.
struct Receiver {
    url: String,
    arrivals: mpsc::UnboundedReceiver<Arrival>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    /// CPU ticks (`utime + stime` of `/proc/thread-self/stat`) of the receiver's thread.
    cpu_ticks: Arc<AtomicU64>,
}

/// A loopback HTTP/1.1 receiver as cheap as a correct one can be, so that the figure
/// measures wharf and not the receiver: its own OS thread with a single-threaded runtime
/// (its CPU time is read from `/proc/thread-self/stat` and printed), keep-alive,
/// pipelining-safe, one buffer per connection, no header map and no JSON parser — only
/// the head's end, `Content-Length`, and the envelope's `id` and payload counters are
/// read; a request it cannot read fails the run. Every request is answered `200` with an
/// empty body.
fn start_receiver() -> Receiver {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("receiver");
    listener.set_nonblocking(true).expect("nonblocking");
    let url = format!("http://{}/hook", listener.local_addr().expect("addr"));
    let (tx, arrivals) = mpsc::unbounded_channel();
    let connections = Arc::new(AtomicUsize::new(0));
    let requests = Arc::new(AtomicUsize::new(0));
    let cpu_ticks = Arc::new(AtomicU64::new(0));
    let (conns, reqs, ticks) = (connections.clone(), requests.clone(), cpu_ticks.clone());
    std::thread::Builder::new()
        .name("bench-receiver".into())
        .spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("receiver runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                // The thread's CPU is sampled every 100 ms; the last sample is read after
                // the run (the receiver is idle by then).
                let sampler = {
                    let ticks = ticks.clone();
                    tokio::spawn(async move {
                        loop {
                            ticks.store(thread_cpu_ticks(), Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(100)).await;
                        }
                    })
                };
                while let Ok((stream, _)) = listener.accept().await {
                    conns.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.set_nodelay(true);
                    tokio::spawn(serve(stream, tx.clone(), reqs.clone()));
                }
                sampler.abort();
            });
        })
        .expect("receiver thread");
    Receiver {
        url,
        arrivals,
        connections,
        requests,
        cpu_ticks,
    }
}

/// One keep-alive connection: answers every complete request in the buffer, then reads.
async fn serve(
    mut stream: tokio::net::TcpStream,
    tx: mpsc::UnboundedSender<Arrival>,
    requests: Arc<AtomicUsize>,
) {
    const OK: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
    let mut buf: Vec<u8> = Vec::with_capacity(8 * 1024);
    let mut out: Vec<u8> = Vec::with_capacity(OK.len());
    loop {
        let mut start = 0;
        while let Some(head) = find(&buf[start..], b"\r\n\r\n") {
            let length = content_length(&buf[start..start + head]);
            let body_at = start + head + 4;
            if buf.len() < body_at + length {
                break;
            }
            let at = Instant::now();
            let body = &buf[body_at..body_at + length];
            let arrival = arrival(at, body).unwrap_or_else(|| {
                panic!("unreadable envelope: {}", String::from_utf8_lossy(body))
            });
            let _ = tx.send(arrival);
            requests.fetch_add(1, Ordering::Relaxed);
            out.extend_from_slice(OK);
            start = body_at + length;
        }
        buf.drain(..start);
        if !out.is_empty() {
            if stream.write_all(&out).await.is_err() {
                return;
            }
            out.clear();
        }
        match stream.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Where `needle` starts in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// `Content-Length` of a request head (0 when absent: wharf always sends it).
fn content_length(head: &[u8]) -> usize {
    head.split(|b| *b == b'\n')
        .find_map(|line| {
            let (name, value) = line.split_at(line.iter().position(|b| *b == b':')?);
            name.eq_ignore_ascii_case(b"content-length").then(|| {
                std::str::from_utf8(&value[1..])
                    .ok()
                    .and_then(|v| v.trim().parse().ok())
            })?
        })
        .unwrap_or(0)
}

/// The envelope's `id` (its first field, as WAHA's) and the payload's `s`, `p`, `n`.
fn arrival(at: Instant, body: &[u8]) -> Option<Arrival> {
    let rest = body.strip_prefix(b"{\"id\":\"")?;
    let id = std::str::from_utf8(&rest[..rest.iter().position(|b| *b == b'"')?]).ok()?;
    let payload_at = find(body, b"\"payload\":{")? + 11;
    let payload = &body[payload_at..];
    let payload = &payload[..payload.iter().position(|b| *b == b'}')?];
    let number = |key: &[u8]| -> Option<u64> {
        let at = find(payload, key)? + key.len();
        let digits = payload[at..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count();
        std::str::from_utf8(&payload[at..at + digits])
            .ok()?
            .parse()
            .ok()
    };
    Some(Arrival {
        at,
        id: id.to_string(),
        s: number(b"\"s\":")?,
        p: number(b"\"p\":")?,
        n: number(b"\"n\":")?,
    })
}

/// `utime + stime` of the calling thread, in clock ticks (`/proc/thread-self/stat`).
fn thread_cpu_ticks() -> u64 {
    proc_cpu_ticks("/proc/thread-self/stat")
}

/// `utime + stime` (fields 14 and 15) of a `/proc/…/stat` file; 0 if unreadable.
fn proc_cpu_ticks(path: &str) -> u64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0;
    };
    // Fields after the command name, which is in parentheses and may hold spaces.
    let Some((_, fields)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = fields.split_whitespace().collect();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // fields[0] is field 3 (state): utime is field 14, stime field 15.
    tick(11) + tick(12)
}

/// Clock ticks per second of `/proc` CPU times (`USER_HZ`, 100 on Linux).
const TICKS_PER_S: f64 = 100.0;

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
    hooks: &mut mpsc::UnboundedReceiver<Arrival>,
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
    let mut seen: HashSet<String> = HashSet::with_capacity(total);
    let mut last_n: HashMap<(u64, u64), u64> = HashMap::new();
    let mut duplicates = 0;
    let mut last_arrival = started;
    while seen.len() < total {
        let got = tokio::time::timeout(Duration::from_secs(120), hooks.recv())
            .await
            .unwrap_or_else(|_| panic!("{tag}: only {}/{total} events in 120 s", seen.len()))
            .expect("receiver");
        let Some(t0) = sent_at.get(&got.id) else {
            panic!("{tag}: an event that was not published: {}", got.id);
        };
        if !seen.insert(got.id.clone()) {
            duplicates += 1;
            continue;
        }
        let key = (got.s, got.p);
        if let Some(before) = last_n.insert(key, got.n) {
            assert!(
                got.n > before,
                "{tag}: publisher {key:?} event {} arrived after {before}",
                got.n
            );
        }
        latencies.push(got.at - *t0);
        last_arrival = got.at;
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
    let mut receiver = start_receiver();
    let url = receiver.url.clone();
    let cpu_at_start = proc_cpu_ticks("/proc/self/stat");
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
        &mut receiver.arrivals,
        "agg",
        sessions,
        per_session,
        publishers,
    )
    .await;
    let after = mongo_commands();
    let one = phase(
        &bus,
        &url,
        &mut receiver.arrivals,
        "one",
        1,
        single,
        publishers,
    )
    .await;
    // Lets the receiver's CPU sampler take its last sample (the receiver is idle now).
    tokio::time::sleep(Duration::from_millis(250)).await;
    let process_ticks = proc_cpu_ticks("/proc/self/stat") - cpu_at_start;
    let receiver_ticks = receiver.cpu_ticks.load(Ordering::Relaxed);
    let requests = receiver.requests.load(Ordering::Relaxed);
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
        format!("{}", receiver.connections.load(Ordering::Relaxed)),
        "",
        None,
    );
    let per_request_us = |ticks: u64| ticks as f64 / TICKS_PER_S * 1e6 / requests.max(1) as f64;
    row(
        "receiver thread CPU per request",
        format!("{:.1} µs", per_request_us(receiver_ticks)),
        "",
        None,
    );
    row(
        "whole process CPU per request (both phases)",
        format!("{:.1} µs", per_request_us(process_ticks)),
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
    println!(
        "(receiver and publishers share the machine with the bus; the receiver used {:.1} % \
         of the process CPU)",
        100.0 * receiver_ticks as f64 / process_ticks.max(1) as f64
    );
    cancel.cancel();
    drop(dir);
}
