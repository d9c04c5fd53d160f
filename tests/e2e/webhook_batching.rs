//! Webhook throughput machinery (issue 16, item 5) on both stores: group-committed outbox
//! appends from concurrent publishers, batched and pipelined removal of delivered rows,
//! and the committer's flush on shutdown — without giving up order or at-least-once.
//!
//! The bus is built directly over a `Store` with an in-process receiver (`support::sink`),
//! as in `events.rs`.

use std::time::Duration;

use serde_json::json;
use tokio_util::sync::CancellationToken;
use wharf::{
    events::{EventBus, EventContext, EventSettings, outbox::Outbox},
    model::session::{SessionConfig, WebhookConfig},
    store::Store,
};

use crate::support::{poll::eventually, sink::Sink, store::TestStore};

const DEADLINE: Duration = Duration::from_secs(30);
const PUBLISHERS: usize = 8;
const EACH: usize = 25;

fn bus(store: &Store) -> EventBus {
    EventBus::new(
        store.clone(),
        EventSettings {
            global_webhook: None,
            environment: json!({"version": "2026.7.1", "engine": "GOWS", "tier": "CORE",
                "browser": null, "platform": "linux/x64", "worker": {"id": null}}),
            engine: "GOWS".into(),
            user_agent: "WAHA/2026.7.1".into(),
            ws_ping_interval: Duration::from_secs(60),
            egress: wharf::egress::EgressPolicy::default(),
        },
        tokio::runtime::Handle::current(),
        CancellationToken::new(),
    )
}

fn ctx(session: &str, url: String) -> EventContext {
    let hook: WebhookConfig = serde_json::from_value(json!({"url": url, "events": ["message"],
        "retries": {"policy": "constant", "delaySeconds": 0.05, "attempts": 100}}))
    .expect("webhook");
    EventContext {
        session: session.into(),
        config: Some(SessionConfig {
            webhooks: Some(vec![hook]),
            ..Default::default()
        }),
        me: None,
    }
}

/// `PUBLISHERS` tasks each publish `EACH` events (`{"p", "n"}`) one after another, all at
/// once on `session`; returns every event id.
async fn publish_concurrently(bus: &EventBus, context: &EventContext) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for p in 0..PUBLISHERS {
        let (bus, context) = (bus.clone(), context.clone());
        tasks.spawn(async move {
            let mut ids = Vec::new();
            for n in 0..EACH {
                let e = bus
                    .publish(&context, "message", json!({"p": p, "n": n}))
                    .await
                    .expect("publish");
                ids.push(e.id.clone());
            }
            ids
        });
    }
    let mut ids = Vec::new();
    while let Some(done) = tasks.join_next().await {
        ids.extend(done.expect("publisher"));
    }
    ids
}

/// Asserts each publisher's events arrived in the order it published them (per-URL
/// order; duplicates of the event just delivered are allowed: at least once) and that
/// every id in `ids` arrived.
fn assert_complete_and_ordered(name: &str, got: &[crate::support::sink::Received], ids: &[String]) {
    let mut last = [-1_i64; PUBLISHERS];
    let mut seen = std::collections::HashSet::new();
    for r in got.iter().filter(|r| r.status == 200) {
        let v = r.json();
        let p = usize::try_from(v["payload"]["p"].as_u64().expect("p")).expect("p");
        let n = i64::try_from(v["payload"]["n"].as_u64().expect("n")).expect("n");
        assert!(
            n >= last[p],
            "{name}: publisher {p}: event {n} arrived after {}",
            last[p]
        );
        last[p] = n;
        seen.insert(v["id"].as_str().expect("id").to_string());
    }
    let missing = ids.iter().filter(|id| !seen.contains(*id)).count();
    assert_eq!(missing, 0, "{name}: {missing} events never arrived");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_publishes_arrive_in_order_once_and_leave_no_rows() {
    for f in TestStore::all("concurrent_publishes_arrive_in_order_once_and_leave_no_rows").await {
        let sink = Sink::start().await;
        let first = bus(&f.store);
        let context = ctx("s1", sink.url("/h"));
        let ids = publish_concurrently(&first, &context).await;
        let total = PUBLISHERS * EACH;
        let got = sink.wait_delivered("/h", total, DEADLINE).await;
        assert_complete_and_ordered(f.name(), &got, &ids);
        // The delivered rows are removed (in batches, behind the sends).
        let outbox = Outbox::new(&f.store);
        eventually(DEADLINE, "the outbox is empty", || async {
            let left = outbox
                .pending("s1", &sink.url("/h"), 1_000)
                .await
                .map_err(|e| e.to_string())?
                .unwrap_or_default()
                .len();
            if left == 0 {
                Ok(())
            } else {
                Err(format!("{left} rows still pending"))
            }
        })
        .await;
        first.shutdown().await;
        // A restart finds nothing to resend: a sentinel is the only new delivery.
        let second = bus(&f.store);
        second.resume(&["s1".to_string()]).await;
        let sentinel = second
            .publish(&context, "message", json!({"p": 0, "n": EACH}))
            .await
            .expect("sentinel");
        let got = sink.wait_delivered("/h", total + 1, DEADLINE).await;
        assert_eq!(
            got.last().map(|r| r.json()["id"].clone()),
            Some(json!(sentinel.id)),
            "{}: the sentinel came right after the first run",
            f.name()
        );
        assert_eq!(got.len(), total + 1, "{}: nothing was resent", f.name());
        second.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_during_concurrent_publishes_loses_nothing() {
    for f in TestStore::all("shutdown_during_concurrent_publishes_loses_nothing").await {
        let sink = Sink::start().await;
        // The receiver refuses everything at first: all rows stay in the outbox.
        sink.fail_always(true);
        let first = bus(&f.store);
        let context = ctx("s1", sink.url("/h"));
        let ids = publish_concurrently(&first, &context).await;
        // Every publish returned: its rows are durable, whatever the committer batched.
        first.shutdown().await;
        sink.fail_always(false);
        let second = bus(&f.store);
        second.resume(&["s1".to_string()]).await;
        let total = PUBLISHERS * EACH;
        let got = eventually(DEADLINE, "every event after the restart", || async {
            let got = sink.delivered("/h");
            if got.len() >= total {
                Ok(got)
            } else {
                Err(format!("{} of {total}", got.len()))
            }
        })
        .await;
        assert_complete_and_ordered(f.name(), &got, &ids);
        second.shutdown().await;
    }
}
