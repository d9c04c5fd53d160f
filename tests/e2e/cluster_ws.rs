//! Cluster mode, operations side (issue 15 items 4 and 5): three real wharf processes on
//! one MongoDB and one mock WhatsApp network, a session on each.
//! - `/ws` on worker w0 streams the `message` events of the sessions w1 and w2 run (each
//!   exactly once), and a session-scoped key there sees only its own session; a client
//!   asking for `engine.event` gets those of a session on w1;
//! - `GET /api/server/status` and `/metrics` on every worker show all workers and leases;
//! - SIGKILL w1 while its session's webhook receiver answers 503: the event already in the
//!   dead worker's outbox is delivered by the new owner with the same `id`, and messages
//!   sent to that session during the gap (queued by the network for the offline device)
//!   are delivered as webhooks afterwards, and reach the `/ws` client on w0 too;
//! - a fourth worker joins: the `/ws` client on w0 gets the events of its session.

use std::{collections::BTreeMap, time::Duration};

use futures_util::StreamExt;
use mongodb::bson::{Document, doc};
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{poll::eventually, process::Wharf, sink::Sink};

const KEY: &str = "cluster-ws-test-key-0123456789";
const SECRET: &str = "e2e-cluster-ws-secret-0123";
const WAIT: Duration = Duration::from_secs(30);
/// Lease 4 s, dead after 5 s: the takeover bound of `cluster.rs`.
const TAKEOVER: Duration = Duration::from_secs(30 + 4 + 5);

/// (session, its phone, the worker that runs it).
const SESSIONS: [(&str, &str, usize); 3] = [
    ("wa", "15558000001", 0),
    ("wb", "15558000002", 1),
    ("wc", "15558000003", 2),
];

type Ws =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws(w: &Wharf, query: &str) -> Ws {
    let url = format!("{}/ws?{query}", w.base.replacen("http://", "ws://", 1));
    tokio_websockets::ClientBuilder::new()
        .uri(&url)
        .expect("ws uri")
        .connect()
        .await
        .expect("websocket handshake")
        .0
}

/// Reads envelopes from `ws` into `seen` until `done(seen)` holds; panics after `within`.
async fn read_until(
    ws: &mut Ws,
    seen: &mut Vec<Value>,
    within: Duration,
    what: &str,
    done: impl Fn(&[Value]) -> bool,
) {
    let deadline = tokio::time::Instant::now() + within;
    while !done(seen) {
        let msg = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| panic!("{what}: not within {within:?}; seen {seen:#?}"))
            .expect("websocket open")
            .expect("websocket frame");
        if let Some(text) = msg.as_text() {
            let mut e: Value = serde_json::from_str(text).expect("envelope JSON");
            // When the test read it (same machine, same clock as the publisher).
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis();
            e["wharfReceivedMs"] = json!(i64::try_from(now).unwrap());
            seen.push(e);
        }
    }
}

fn bodies(seen: &[Value], session: &str) -> Vec<String> {
    seen.iter()
        .filter(|e| e["session"] == session && e["event"] == "message")
        .map(|e| {
            e["payload"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn has(seen: &[Value], session: &str, body: &str) -> bool {
    bodies(seen, session).iter().any(|b| b == body)
}

/// (status, session, body) of every request the sink saw.
fn summary(sink: &Sink) -> Vec<(u16, String, String)> {
    sink.received()
        .iter()
        .map(|r| {
            let e = r.json();
            let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
            (r.status, text(&e["session"]), text(&e["payload"]["body"]))
        })
        .collect()
}

async fn send(w: &Wharf, from: &str, to_phone: &str, text: &str) {
    let body = json!({"session": from, "chatId": format!("{to_phone}@c.us"), "text": text});
    let (st, r) = w.call(Method::POST, "/api/sendText", Some(body)).await;
    assert_eq!(st, 201, "sendText {text}: {r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_fans_out_status_metrics_show_the_cluster_and_webhooks_survive_a_kill() {
    let test =
        "cluster_ws::ws_fans_out_status_metrics_show_the_cluster_and_webhooks_survive_a_kill";
    let Some(fx) = crate::support::cluster::ClusterFixture::start(test).await else {
        return;
    };
    let (mongo, ns, main, net, dir) = (fx.mongo, &fx.ns, &fx.main, &fx.net, &fx.dir);
    let sink = Sink::start().await;
    let env: Vec<(&str, String)> = vec![
        ("WHATSAPP_SESSIONS_MONGO_URL", mongo.url().into()),
        ("WAHA_NAMESPACE", ns.clone()),
        ("WAHA_SESSION_NAMESPACE", ns.clone()),
        ("WHARF_WA_URL", net.ws_url()),
        ("WHARF_CLUSTER", "true".into()),
        ("WHARF_CLUSTER_SECRET", SECRET.into()),
        ("WHARF_CLUSTER_LEASE_SECONDS", "4".into()),
        ("WHARF_CLUSTER_DEAD_SECONDS", "5".into()),
        ("WAHA_PRINT_QR", "false".into()),
    ];
    let start = |id: &'static str| {
        let mut all: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.push(("WAHA_WORKER_ID", id));
        let dir = dir.path().to_path_buf();
        async move { Wharf::start(&dir, KEY, &all).await }
    };
    let w0 = start("w0").await;
    let mut w1 = start("w1").await;
    let w2 = start("w2").await;
    eventually(WAIT, "three workers heartbeat", || async {
        let n = main
            .collection::<Document>("wharf_workers")
            .count_documents(doc! {})
            .await
            .map_err(|e| e.to_string())?;
        if n == 3 {
            Ok(())
        } else {
            Err(format!("{n} workers"))
        }
    })
    .await;
    let workers = [&w0, &w1, &w2];
    // Each session is created through the worker meant to run it: least-loaded placement
    // with ties to the asked worker puts it there. Their webhooks retry every second.
    let hook = json!({
        "webhooks": [{
            "url": sink.url("/hook"),
            "events": ["message"],
            "retries": {"policy": "constant", "delaySeconds": 1, "attempts": 100},
        }]
    });
    for (name, phone, at) in SESSIONS {
        workers[at].pair(net, name, phone, hook.clone()).await;
    }

    // Status on every worker: the three live workers and the three leases, held by the
    // workers that run them.
    for w in workers {
        let (st, s) = w.call(Method::GET, "/api/server/status", None).await;
        assert_eq!(st, 200, "{s}");
        assert!(s["startTimestamp"].is_i64() && s["uptime"].is_i64(), "{s}");
        let c = &s["cluster"];
        assert_eq!(c["worker"], s["worker"]["id"], "{s}");
        let ids: Vec<&str> = c["workers"]
            .as_array()
            .expect("workers")
            .iter()
            .map(|w| w["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, ["w0", "w1", "w2"], "{s}");
        for wk in c["workers"].as_array().unwrap() {
            assert!(wk["url"].as_str().unwrap().starts_with("http://"), "{wk}");
            assert!(wk["heartbeatAgeMs"].as_i64().unwrap() < 5000, "{wk}");
            assert_eq!(wk["capacity"], 500, "{wk}");
        }
        let leases: BTreeMap<&str, (&str, i64)> = c["leases"]
            .as_array()
            .expect("leases")
            .iter()
            .map(|l| {
                (
                    l["session"].as_str().unwrap(),
                    (
                        l["owner"].as_str().unwrap_or("-"),
                        l["expiresInMs"].as_i64().unwrap(),
                    ),
                )
            })
            .collect();
        for (name, _, at) in SESSIONS {
            let (owner, expires) = leases[name];
            assert_eq!(owner, format!("w{at}"), "{s}");
            assert!(expires > 0, "{s}");
        }
        // `/metrics`: the cluster series, before the closing `# EOF`.
        let text = w.metrics().await;
        assert!(text.contains("\nwharf_cluster_workers 3\n"), "{text}");
        for at in 0..3 {
            let line = format!("\nwharf_cluster_sessions{{worker=\"w{at}\"}} 1\n");
            assert!(text.contains(&line), "{line} in {text}");
        }
        assert!(
            text.contains("\nwharf_cluster_lease_takeovers_total "),
            "{text}"
        );
        assert!(text.contains("\nwharf_cluster_fenced_total "), "{text}");
        assert!(text.ends_with("# EOF\n"), "{text}");
    }
    // The peer stream is for members only: no credential, or one signed with another
    // secret or for another request, is refused; a member's opens with a keep-alive line.
    let (st, _) = w1.call(Method::GET, "/api/cluster/events", None).await;
    assert_eq!(st, 401, "no cluster credential");
    let peer_get = |credential: String| {
        reqwest::Client::new()
            .get(format!("{}/api/cluster/events", w1.base))
            .header("X-Wharf-Cluster", credential)
            .send()
    };
    let member = wharf::cluster::peer::PeerCredential::new(SECRET, "w9");
    let stranger = wharf::cluster::peer::PeerCredential::new("another-secret-0123456", "w9");
    for bad in [
        stranger.sign("GET", "/api/cluster/events"),
        member.sign("GET", "/api/cluster/events?x=1"),
        member.sign("POST", "/api/cluster/events"),
    ] {
        assert_eq!(peer_get(bad).await.unwrap().status(), 401);
    }
    let mut stream = peer_get(member.sign("GET", "/api/cluster/events"))
        .await
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert_eq!(
        stream.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    let first = tokio::time::timeout(WAIT, stream.chunk())
        .await
        .expect("first line in time")
        .unwrap()
        .expect("a first chunk");
    assert_eq!(&first[..], b"\n");
    drop(stream);

    // `/ws` on w0, admin key, messages only; and a key scoped to `wc`.
    let mut all = ws(&w0, &format!("x-api-key={KEY}&events=message")).await;
    let (st, key) = w0
        .call(
            Method::POST,
            "/api/keys",
            Some(json!({"session": "wc", "isAdmin": false, "isActive": true})),
        )
        .await;
    assert_eq!(st, 201, "{key}");
    let scoped_key = key["key"].as_str().expect("key").to_string();
    let mut scoped = ws(&w0, &format!("x-api-key={scoped_key}&events=message")).await;
    let mut seen = Vec::new();
    let mut seen_scoped = Vec::new();

    // wa (on w0) writes to wb (on w1): wb's `message` reaches w0's client through w1.
    send(&w0, "wa", SESSIONS[1].1, "to-b-1").await;
    read_until(&mut all, &mut seen, WAIT, "wb's message on w0", |s| {
        has(s, "wb", "to-b-1")
    })
    .await;
    // Then to wc (on w2). The scoped client reads the relayed events in the same order as
    // the admin one, so wb's event (relayed before this was sent) came before it.
    send(&w0, "wa", SESSIONS[2].1, "to-c-1").await;
    read_until(&mut all, &mut seen, WAIT, "wc's message on w0", |s| {
        has(s, "wc", "to-c-1")
    })
    .await;
    read_until(
        &mut scoped,
        &mut seen_scoped,
        WAIT,
        "wc's message, scoped",
        |s| has(s, "wc", "to-c-1"),
    )
    .await;
    assert!(
        seen_scoped.iter().all(|e| e["session"] == "wc"),
        "a key for wc sees only wc: {seen_scoped:#?}"
    );
    // A marker from the other direction, then: every message arrived exactly once.
    send(&w0, "wa", SESSIONS[1].1, "to-b-2").await;
    read_until(&mut all, &mut seen, WAIT, "the marker", |s| {
        has(s, "wb", "to-b-2")
    })
    .await;
    assert_eq!(bodies(&seen, "wb"), ["to-b-1", "to-b-2"], "{seen:#?}");
    // Not a timed assertion: the relay's latency, for the README's design note.
    for e in seen.iter().filter(|e| e["event"] == "message") {
        eprintln!(
            "relayed {} from {}: received {} ms after it was published",
            e["payload"]["body"],
            e["session"],
            e["wharfReceivedMs"].as_i64().unwrap_or(0) - e["timestamp"].as_i64().unwrap_or(0)
        );
    }
    assert_eq!(bodies(&seen, "wc"), ["to-c-1"], "{seen:#?}");
    drop(scoped);
    // `engine.event` by name: sessions render it only while someone listens, so w0 opens
    // an engine link to its peers, and wb's raw events (rendered on w1) arrive on w0.
    let mut engine = ws(
        &w0,
        &format!("x-api-key={KEY}&events=engine.event&session=wb"),
    )
    .await;
    send(&w0, "wa", SESSIONS[1].1, "to-b-engine").await;
    let mut raw = Vec::new();
    read_until(
        &mut engine,
        &mut raw,
        WAIT,
        "wb's engine.event on w0",
        |s| !s.is_empty(),
    )
    .await;
    assert!(
        raw.iter()
            .all(|e| e["event"] == "engine.event" && e["session"] == "wb"),
        "{raw:#?}"
    );
    drop(engine);
    read_until(&mut all, &mut seen, WAIT, "to-b-engine", |s| {
        has(s, "wb", "to-b-engine")
    })
    .await;

    // Failover. Once everything so far is delivered (delivery is in order per session
    // and URL), wb's receiver fails: the next event stays in w1's outbox, retried.
    eventually(
        WAIT,
        "the messages so far delivered as webhooks",
        || async {
            let got: Vec<Value> = sink.delivered("/hook").iter().map(|r| r.json()).collect();
            let sent = ["to-b-1", "to-c-1", "to-b-2", "to-b-engine"];
            if sent
                .iter()
                .all(|b| got.iter().any(|e| e["payload"]["body"] == *b))
            {
                Ok(())
            } else {
                Err(format!("the receiver saw {:?}", summary(&sink)))
            }
        },
    )
    .await;
    sink.fail_always(true);
    let before = sink.received().len();
    send(&w0, "wa", SESSIONS[1].1, "before-kill").await;
    let pending_id = eventually(WAIT, "w1 tried to deliver before-kill", || async {
        sink.received()[before..]
            .iter()
            .map(|r| r.json())
            .find(|e| e["payload"]["body"] == "before-kill")
            .map(|e| e["id"].as_str().unwrap().to_string())
            .ok_or_else(|| format!("the receiver saw {:?}", summary(&sink)))
    })
    .await;
    w1.kill();
    let phone_b = SESSIONS[1].1;
    eventually(WAIT, "wb's device is offline", || async {
        let d = net.devices();
        let b = d.iter().find(|d| d.phone == phone_b).ok_or("no device")?;
        if b.connected {
            Err("still connected".to_string())
        } else {
            Ok(())
        }
    })
    .await;
    // Sent while nobody runs wb: the network queues them for the device.
    send(&w0, "wa", phone_b, "gap-1").await;
    send(&w0, "wa", phone_b, "gap-2").await;
    sink.fail_always(false);
    let alive = [&w0, &w2];
    eventually(TAKEOVER, "wb WORKING on a survivor", || async {
        for w in alive {
            let (_, s) = w.call(Method::GET, "/api/sessions/wb", None).await;
            if s["status"] == "WORKING" {
                return Ok(());
            }
        }
        Err("not yet".to_string())
    })
    .await;
    let delivered = eventually(WAIT, "wb's webhooks after the takeover", || async {
        let got: Vec<Value> = sink.delivered("/hook").iter().map(|r| r.json()).collect();
        let wb = |body: &str| {
            got.iter()
                .any(|e| e["session"] == "wb" && e["payload"]["body"] == body)
        };
        if wb("before-kill") && wb("gap-1") && wb("gap-2") {
            Ok(got)
        } else {
            Err(format!(
                "delivered so far: {:?}",
                got.iter()
                    .map(|e| &e["payload"]["body"])
                    .collect::<Vec<_>>()
            ))
        }
    })
    .await;
    let ids: Vec<&str> = delivered
        .iter()
        .filter(|e| e["payload"]["body"] == "before-kill")
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.iter().all(|id| *id == pending_id),
        "the event keeps its id on redelivery: {pending_id} vs {ids:?}"
    );
    // The `/ws` client on w0 got the gap messages too, from wherever wb runs now.
    read_until(&mut all, &mut seen, WAIT, "the gap messages on /ws", |s| {
        has(s, "wb", "gap-1") && has(s, "wb", "gap-2")
    })
    .await;
    // The survivors' metrics count the takeover.
    let mut takeovers = 0.0;
    for w in alive {
        let text = w.metrics().await;
        let line = text
            .lines()
            .find(|l| l.starts_with("wharf_cluster_lease_takeovers_total "))
            .expect("takeovers line");
        takeovers += line.rsplit(' ').next().unwrap().parse::<f64>().unwrap();
    }
    assert!(takeovers >= 1.0, "a takeover was counted");

    // A worker joining: w0's fan-out links to it within a tick, and the `/ws` client there
    // gets the events of the session it runs (resent until the link is up: the join
    // itself is not observable from outside).
    let w3 = start("w3").await;
    w3.pair(net, "wd", "15558000004", json!({})).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut i = 0;
    while bodies(&seen, "wd").is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing from wd (on the new worker w3) on w0 after {i} messages"
        );
        i += 1;
        send(&w0, "wa", "15558000004", &format!("to-d-{i}")).await;
        let wait = tokio::time::Instant::now() + Duration::from_secs(3);
        while let Ok(Some(Ok(msg))) = tokio::time::timeout_at(wait, all.next()).await {
            if let Some(t) = msg.as_text() {
                seen.push(serde_json::from_str(t).expect("envelope JSON"));
            }
            if !bodies(&seen, "wd").is_empty() {
                break;
            }
        }
    }
}

/// Outside cluster mode (both stores): no peer stream, no `cluster` in the status, no
/// `wharf_cluster_*` series — WAHA's shapes only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_cluster_mode_nothing_of_the_cluster_shows() {
    use crate::support::app::{StoreKind, TestApp};
    for store in StoreKind::all("cluster_ws_off") {
        let app = TestApp::spawn(store).await;
        let r = app.get("/api/cluster/events").await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app.get("/api/server/status").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let status = r.json();
        let mut keys: Vec<&String> = status.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["startTimestamp", "uptime", "worker"], "{status}");
        let r = app.get("/metrics").await;
        assert_eq!(r.status, 200);
        assert!(!r.text.contains("wharf_cluster_"), "{}", r.text);
    }
}
