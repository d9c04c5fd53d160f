//! Events: the WAHA envelope, durable webhook delivery (outbox, order, retries, crash
//! recovery, dead letters) and the `/ws` stream — on the embedded store and MongoDB.
//!
//! The bus is built directly over a `Store` with an in-process receiver
//! (`support::sink`); the HTTP-level cases (WebSocket, dead-letter endpoints) go through
//! `TestApp`. Retry delays are shortened with each webhook's own `retries.delaySeconds`.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use wharf::{
    events::{EventBus, EventContext, EventSettings},
    model::session::{SessionConfig, WebhookConfig},
    store::Store,
};

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
    store::TestStore,
};

const DEADLINE: Duration = Duration::from_secs(20);

/// Both stores (MongoDB only when available; skipped loudly otherwise).
async fn fixtures(test: &str) -> Vec<TestStore> {
    TestStore::all(test).await
}

fn settings(global: Option<WebhookConfig>) -> EventSettings {
    EventSettings {
        global_webhook: global,
        environment: json!({"version": "2026.7.1", "engine": "GOWS", "tier": "CORE",
            "browser": null, "platform": "linux/x64", "worker": {"id": null}}),
        engine: "GOWS".into(),
        user_agent: "WAHA/2026.7.1".into(),
        ws_ping_interval: Duration::from_secs(60),
        egress: wharf::egress::EgressPolicy::default(),
    }
}

fn bus(store: &Store, global: Option<WebhookConfig>) -> EventBus {
    EventBus::new(
        store.clone(),
        settings(global),
        tokio::runtime::Handle::current(),
        CancellationToken::new(),
    )
}

/// A webhook from its JSON form (as users send it).
fn hook(value: Value) -> WebhookConfig {
    serde_json::from_value(value).expect("webhook config")
}

/// Fast retries: 50 ms constant, `attempts` in all.
fn fast(url: String, events: &[&str], attempts: u32) -> WebhookConfig {
    hook(json!({"url": url, "events": events,
        "retries": {"policy": "constant", "delaySeconds": 0.05, "attempts": attempts}}))
}

fn ctx(session: &str, hooks: Vec<WebhookConfig>) -> EventContext {
    EventContext {
        session: session.into(),
        config: Some(SessionConfig {
            webhooks: Some(hooks),
            ..Default::default()
        }),
        me: None,
    }
}

/// Event ids in delivery order with consecutive duplicates (an at-least-once redelivery
/// of the same event) folded.
fn ids(received: &[crate::support::sink::Received]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in received {
        let id = r.json()["id"].as_str().expect("id").to_string();
        if out.last() != Some(&id) {
            out.push(id);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_session_webhook_envelope_has_waha_shape_headers_and_hmac() {
    for f in fixtures("publish_session_webhook_envelope_has_waha_shape_headers_and_hmac").await {
        let sink = Sink::start().await;
        let bus = bus(&f.store, None);
        let webhook = hook(json!({
            "url": sink.url("/hook"), "events": ["message"],
            "hmac": {"key": "s3cret"},
            "customHeaders": [{"name": "X-Custom", "value": "v1"}],
        }));
        let mut context = ctx("default", vec![webhook]);
        if let Some(c) = context.config.as_mut() {
            c.metadata = Some([("user.id".to_string(), "123".to_string())].into());
        }
        context.me =
            Some(serde_json::from_value(json!({"id": "7111@c.us", "pushName": "~"})).expect("me"));
        let payload = json!({"id": "false_1@c.us_AAA", "from": "1@c.us", "body": "hi"});
        let envelope = bus
            .publish(&context, "message", payload.clone())
            .await
            .expect("publish");
        let got = sink.wait_delivered("/hook", 1, DEADLINE).await;
        let req = &got[0];

        // Body: exactly the envelope the bus returned, keys in WAHA's order.
        assert_eq!(req.body, envelope.json(), "{}", f.name());
        let body = &req.body;
        assert!(body.starts_with(r#"{"id":"evt_"#), "{body}");
        let order = [
            r#"{"id":"#,
            r#","timestamp":"#,
            r#","event":"message""#,
            r#","session":"default""#,
            r#","metadata":{"user.id":"123"}"#,
            r#","me":{"id":"7111@c.us","pushName":"~"}"#,
            r#","payload":"#,
            r#","engine":"GOWS""#,
            r#","environment":{"#,
        ];
        let positions: Vec<usize> = order
            .iter()
            .map(|k| {
                body.find(k)
                    .unwrap_or_else(|| panic!("{k} missing in {body}"))
            })
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "key order: {body}"
        );
        let json = req.json();
        let id = json["id"].as_str().expect("id");
        assert_eq!(id.len(), 4 + 26, "{id}");
        assert!(
            id[4..]
                .chars()
                .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        );
        assert_eq!(json["payload"], payload);
        assert_eq!(json["environment"]["version"], "2026.7.1");

        // Headers as WAHA sends them.
        assert_eq!(req.header("content-type"), "application/json");
        assert_eq!(req.header("user-agent"), "WAHA/2026.7.1");
        assert_eq!(req.header("x-custom"), "v1");
        assert!(!req.header("x-webhook-request-id").is_empty());
        assert_eq!(
            req.header("x-webhook-timestamp"),
            json["timestamp"].to_string()
        );
        assert_eq!(req.header("x-webhook-hmac-algorithm"), "sha512");
        let mut mac = Hmac::<sha2::Sha512>::new_from_slice(b"s3cret").expect("hmac key");
        mac.update(req.body.as_bytes());
        assert_eq!(
            req.header("x-webhook-hmac"),
            hex::encode(mac.finalize().into_bytes()),
            "HMAC over the raw body"
        );

        // No metadata → the key is absent; unknown account → `me: null`; a second
        // request has its own request id.
        bus.publish(
            &ctx(
                "default",
                vec![hook(
                    json!({"url": sink.url("/hook"), "events": ["message"]}),
                )],
            ),
            "message",
            json!({}),
        )
        .await
        .expect("publish");
        let got = sink.wait_delivered("/hook", 2, DEADLINE).await;
        assert!(!got[1].body.contains(r#""metadata""#), "{}", got[1].body);
        assert!(got[1].body.contains(r#","me":null,"#), "{}", got[1].body);
        assert!(!got[1].headers.contains_key("x-webhook-hmac"));
        assert_ne!(
            got[0].header("x-webhook-request-id"),
            got[1].header("x-webhook-request-id")
        );
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_star_and_exact_filters_with_global_webhook_deliver_only_matching() {
    for f in
        fixtures("publish_star_and_exact_filters_with_global_webhook_deliver_only_matching").await
    {
        let sink = Sink::start().await;
        let global = hook(json!({"url": sink.url("/global"), "events": ["session.status"]}));
        let bus = bus(&f.store, Some(global));
        let context = ctx(
            "s1",
            vec![
                hook(json!({"url": sink.url("/star"), "events": ["*"]})),
                hook(json!({"url": sink.url("/exact"), "events": ["message.ack", "engine.event"]})),
            ],
        );
        for event in ["message", "engine.event", "message.ack", "session.status"] {
            bus.publish(&context, event, json!({"n": event}))
                .await
                .expect("publish");
        }
        let events = |path: &str, n: usize| {
            let sink = &sink;
            let path = path.to_string();
            async move {
                sink.wait_delivered(&path, n, DEADLINE)
                    .await
                    .iter()
                    .map(|r| r.json()["event"].as_str().unwrap_or_default().to_string())
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(
            events("/star", 3).await,
            ["message", "message.ack", "session.status"],
            "{}: * excludes engine.event",
            f.name()
        );
        assert_eq!(events("/exact", 2).await, ["engine.event", "message.ack"]);
        assert_eq!(events("/global", 1).await, ["session.status"]);
        // Nothing else trickles in: sentinels published last reach every URL after
        // anything published before them (delivery is ordered per URL).
        for event in ["message.ack", "session.status"] {
            bus.publish(&context, event, json!({"sentinel": event}))
                .await
                .expect("publish sentinel");
        }
        assert_eq!(
            events("/star", 5).await,
            [
                "message",
                "message.ack",
                "session.status",
                "message.ack",
                "session.status"
            ]
        );
        assert_eq!(
            events("/exact", 3).await,
            ["engine.event", "message.ack", "message.ack"]
        );
        assert_eq!(
            events("/global", 2).await,
            ["session.status", "session.status"]
        );
        for path in ["/star", "/exact", "/global"] {
            let last = sink.delivered(path).pop().expect("delivered");
            assert!(
                last.json()["payload"]["sentinel"].is_string(),
                "{path}: {}",
                last.body
            );
        }
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_ignored_group_chat_is_neither_stored_nor_delivered() {
    for f in fixtures("publish_ignored_group_chat_is_neither_stored_nor_delivered").await {
        let sink = Sink::start().await;
        let bus = bus(&f.store, None);
        let mut context = ctx(
            "s1",
            vec![hook(json!({"url": sink.url("/h"), "events": ["*"]}))],
        );
        if let Some(c) = context.config.as_mut() {
            c.ignore = Some(serde_json::from_value(json!({"groups": true})).expect("ignore"));
        }
        bus.publish(
            &context,
            "message",
            json!({"id": "false_1@g.us_A_2@c.us", "from": "1@g.us"}),
        )
        .await
        .expect("publish");
        bus.publish(
            &context,
            "message",
            json!({"id": "false_2@c.us_B", "from": "2@c.us"}),
        )
        .await
        .expect("publish");
        let got = sink.wait_delivered("/h", 1, DEADLINE).await;
        assert_eq!(got[0].json()["payload"]["from"], "2@c.us", "{}", f.name());
        // A sentinel published last arrives after anything published before it (ordered
        // per URL): had the group message gone out, it would be in between.
        bus.publish(
            &context,
            "message",
            json!({"id": "false_3@c.us_C", "from": "3@c.us"}),
        )
        .await
        .expect("publish sentinel");
        let got = sink.wait_delivered("/h", 2, DEADLINE).await;
        assert_eq!(got[1].json()["payload"]["from"], "3@c.us");
        assert_eq!(sink.received().len(), 2);
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_receiver_503_then_200_delivers_each_once_in_order() {
    for f in fixtures("deliver_receiver_503_then_200_delivers_each_once_in_order").await {
        let sink = Sink::start().await;
        sink.fail_next(3);
        let bus = bus(&f.store, None);
        let context = ctx("s1", vec![fast(sink.url("/h"), &["message"], 15)]);
        let mut published = Vec::new();
        for n in 0..5 {
            let e = bus
                .publish(&context, "message", json!({"n": n}))
                .await
                .expect("publish");
            published.push(e.id.clone());
        }
        let got = sink.wait_delivered("/h", 5, DEADLINE).await;
        let delivered: Vec<String> = got
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(delivered, published, "{}: in order, each once", f.name());
        let failed = sink.received().iter().filter(|r| r.status == 503).count();
        assert_eq!(failed, 3);
        // The first event took the three 503s: nothing overtook it.
        let first_ok = sink.received().iter().position(|r| r.status == 200);
        assert_eq!(first_ok, Some(3));
        // No duplicates: a sentinel published last is delivered right after the five
        // (ordered per URL), with nothing in between.
        let sentinel = bus
            .publish(&context, "message", json!({"sentinel": true}))
            .await
            .expect("publish sentinel");
        published.push(sentinel.id.clone());
        let got = sink.wait_delivered("/h", 6, DEADLINE).await;
        let delivered: Vec<String> = got
            .iter()
            .map(|r| r.json()["id"].as_str().unwrap_or_default().to_string())
            .collect();
        assert_eq!(delivered, published, "no duplicates");
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_503_with_retry_after_waits_at_least_that_long() {
    for f in fixtures("deliver_503_with_retry_after_waits_at_least_that_long").await {
        let sink = Sink::start().await;
        sink.fail_next(1);
        sink.retry_after(Some("1"));
        let bus = bus(&f.store, None);
        // 50 ms between attempts, but the receiver asks for a second: the floor wins.
        let context = ctx("s1", vec![fast(sink.url("/h"), &["*"], 5)]);
        bus.publish(&context, "message", json!({}))
            .await
            .expect("publish");
        sink.wait_requests(1, DEADLINE).await;
        let failed_at = tokio::time::Instant::now();
        sink.wait_delivered("/h", 1, DEADLINE).await;
        assert!(
            failed_at.elapsed() >= Duration::from_millis(900),
            "{}: retried after {:?}",
            f.name(),
            failed_at.elapsed()
        );
        assert_eq!(sink.received().len(), 2);
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_after_crash_delivers_pending_in_order_with_same_ids() {
    for f in fixtures("resume_after_crash_delivers_pending_in_order_with_same_ids").await {
        let sink = Sink::start().await;
        sink.fail_always(true);
        let first = bus(&f.store, None);
        let context = ctx("s1", vec![fast(sink.url("/h"), &["*"], 1000)]);
        let mut published = Vec::new();
        for n in 0..4 {
            let e = first
                .publish(&context, "message", json!({"n": n}))
                .await
                .expect("publish");
            published.push(e.id.clone());
        }
        sink.wait_requests(2, DEADLINE).await;
        // Crash: no shutdown, the bus just goes away. The receiver recovers at once, so a
        // dead bus that kept retrying would now deliver too, and its copies would show up
        // among the new bus's in-order deliveries (at most the one request in flight at
        // the crash may be delivered, and then redelivered next to itself).
        drop(first);
        sink.fail_always(false);

        let second = bus(&f.store, None);
        second.resume(&["s1".to_string()]).await;
        sink.wait_delivered("/h", 4, DEADLINE).await;
        // A sentinel published last arrives after everything else for this URL (delivery
        // is ordered per URL): no quiet period to wait out.
        let sentinel = second
            .publish(&context, "message", json!({"sentinel": true}))
            .await
            .expect("publish sentinel");
        published.push(sentinel.id.clone());
        let got = eventually(DEADLINE, "the sentinel is delivered", || async {
            let got = sink.delivered("/h");
            if got.iter().any(|r| r.json()["id"] == sentinel.id.as_str()) {
                Ok(got)
            } else {
                Err(format!("{} delivered", got.len()))
            }
        })
        .await;
        assert_eq!(
            ids(&got),
            published,
            "{}: in order, same ids, nothing from the dead bus",
            f.name()
        );
        second.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_credentials_wipe_keeps_undelivered_events() {
    for f in fixtures("logout_credentials_wipe_keeps_undelivered_events").await {
        let sink = Sink::start().await;
        sink.fail_always(true);
        let first = bus(&f.store, None);
        let context = ctx("s1", vec![fast(sink.url("/h"), &["*"], 1000)]);
        let sent = first
            .publish(&context, "session.status", json!({"status": "WORKING"}))
            .await
            .expect("publish");
        sink.wait_requests(1, DEADLINE).await;
        first.shutdown().await;
        // What logout and unlink do to the session's storage.
        f.store.wipe_credentials("s1").await.expect("wipe");
        sink.fail_always(false);
        let second = bus(&f.store, None);
        second.resume(&["s1".to_string()]).await;
        let got = sink.wait_delivered("/h", 1, DEADLINE).await;
        assert_eq!(ids(&got), std::slice::from_ref(&sent.id), "{}", f.name());
        second.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_attempts_exhausted_dead_letter_then_replay_delivers() {
    for f in fixtures("deliver_attempts_exhausted_dead_letter_then_replay_delivers").await {
        let sink = Sink::start().await;
        sink.fail_always(true);
        let bus = bus(&f.store, None);
        let context = ctx("s1", vec![fast(sink.url("/h"), &["*"], 2)]);
        let mut published = Vec::new();
        for n in 0..3 {
            let e = bus
                .publish(&context, "message", json!({"n": n}))
                .await
                .expect("publish");
            published.push(e.id.clone());
        }
        let dead = eventually(
            DEADLINE,
            &format!("{}: three dead letters", f.name()),
            || async {
                let dead = bus.dead_letters("s1").await.expect("dead letters");
                if dead.len() == 3 {
                    Ok(dead)
                } else {
                    Err(format!("{dead:?}"))
                }
            },
        )
        .await;
        assert_eq!(sink.received().len(), 6, "two attempts each");
        let dead_ids: Vec<&str> = dead.iter().map(|d| d.event_id.as_str()).collect();
        assert_eq!(dead_ids, published);
        assert!(dead.windows(2).all(|w| w[0].id < w[1].id));
        assert!(
            dead.iter()
                .all(|d| d.attempts == 2 && d.last_error.as_deref() == Some("HTTP 503"))
        );
        assert_eq!(dead[0].url, sink.url("/h"));
        assert_eq!(dead[0].event, "message");

        sink.fail_always(false);
        // One by id, then the rest; unknown ids are an error.
        assert!(bus.replay("s1", Some(dead[2].id + 100)).await.is_err());
        assert_eq!(
            bus.replay("s1", Some(dead[0].id))
                .await
                .expect("replay one"),
            1
        );
        let got = sink.wait_delivered("/h", 1, DEADLINE).await;
        assert_eq!(ids(&got), published[..1]);
        assert_eq!(bus.replay("s1", None).await.expect("replay all"), 2);
        let got = sink.wait_delivered("/h", 3, DEADLINE).await;
        assert_eq!(ids(&got), published, "{}", f.name());
        assert!(bus.dead_letters("s1").await.expect("dead").is_empty());
        bus.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliver_slow_receiver_does_not_delay_other_webhook() {
    for f in fixtures("deliver_slow_receiver_does_not_delay_other_webhook").await {
        let slow = Sink::start().await;
        // Far longer than the quick deliveries may take, even on a loaded CI box.
        slow.set_delay(Duration::from_secs(10));
        let quick = Sink::start().await;
        let bus = bus(&f.store, None);
        let context = ctx(
            "s1",
            vec![
                fast(slow.url("/slow"), &["*"], 15),
                fast(quick.url("/quick"), &["*"], 15),
            ],
        );
        let started = tokio::time::Instant::now();
        for n in 0..3 {
            bus.publish(&context, "message", json!({"n": n}))
                .await
                .expect("publish");
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "publish waited for delivery"
        );
        quick
            .wait_delivered("/quick", 3, Duration::from_secs(8))
            .await;
        // All three went out while the slow receiver still sits on its first request.
        assert!(
            slow.delivered("/slow").is_empty(),
            "{}: the quick receiver waited for the slow one",
            f.name()
        );
        bus.shutdown().await;
    }
}

// ---------------------------------------------------------------------------------------
// HTTP level: `/ws` and the dead-letter endpoints, through the real app.

type Ws =
    tokio_websockets::WebSocketStream<tokio_websockets::MaybeTlsStream<tokio::net::TcpStream>>;

async fn ws_connect(app: &TestApp, query: &str) -> Ws {
    let url = format!("{}/ws?{query}", app.base.replacen("http://", "ws://", 1));
    let (ws, _) = tokio_websockets::ClientBuilder::new()
        .uri(&url)
        .expect("ws uri")
        .connect()
        .await
        .expect("websocket handshake");
    ws
}

/// Next text frame (skipping control frames), or the close frame's (code, reason).
async fn ws_next(ws: &mut Ws) -> Result<String, (u16, String)> {
    use futures_util::StreamExt;
    loop {
        let msg = tokio::time::timeout(DEADLINE, ws.next())
            .await
            .expect("websocket frame in time")
            .expect("websocket open")
            .expect("websocket frame");
        if let Some(text) = msg.as_text() {
            return Ok(text.to_string());
        }
        if let Some((code, reason)) = msg.as_close() {
            return Err((code.into(), reason.to_string()));
        }
    }
}

/// Creates `name` with `config` (started), waits until it left `STARTING`, stops it and
/// waits for `STOPPED`: a deterministic, finite burst of `session.status` events.
async fn start_and_stop(app: &TestApp, name: &str, config: Value) {
    let body = json!({"name": name, "config": config}).to_string();
    let r = app.post("/api/sessions", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    let r = app.post(&format!("/api/sessions/{name}/stop"), "").await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_status(name, "STOPPED", DEADLINE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_with_key_and_filters_receives_matching_envelopes() {
    for kind in StoreKind::all("ws_with_key_and_filters_receives_matching_envelopes") {
        let app = TestApp::spawn(kind).await;
        let mut ws = ws_connect(
            &app,
            &format!("X-Api-Key={API_KEY}&session=s1&events=message.ack,engine.event&events=session.status"),
        )
        .await;
        let mut none = ws_connect(&app, &format!("x-api-key={API_KEY}&events=message")).await;
        start_and_stop(&app, "s2", json!({})).await;
        start_and_stop(&app, "s1", json!({"metadata": {"k": "v"}})).await;
        let first: Value = serde_json::from_str(&ws_next(&mut ws).await.expect("text frame"))
            .expect("envelope JSON");
        assert_eq!(first["event"], "session.status", "{:?}: {first}", app.store);
        assert_eq!(first["session"], "s1", "the s2 events were filtered out");
        assert_eq!(first["metadata"], json!({"k": "v"}));
        assert!(
            first["id"]
                .as_str()
                .is_some_and(|id| id.starts_with("evt_"))
        );
        assert_eq!(first["payload"]["name"], "s1");
        // The `events=message` client got none of the status events.
        let quiet = tokio::time::timeout(Duration::from_millis(300), ws_next(&mut none)).await;
        assert!(quiet.is_err(), "unexpected frame: {quiet:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_with_bad_key_closes_1008_unauthorized() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    for query in ["x-api-key=wrong", "session=*"] {
        let mut ws = ws_connect(&app, query).await;
        assert_eq!(
            ws_next(&mut ws).await,
            Err((1008, "Unauthorized".to_string())),
            "{query}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_server_stop_closes_clients_1001_promptly() {
    let mut app = TestApp::spawn(StoreKind::Embedded).await;
    let mut ws = ws_connect(&app, &format!("x-api-key={API_KEY}")).await;
    let started = tokio::time::Instant::now();
    let stop = app.stop();
    let (closed, _) = tokio::join!(ws_next(&mut ws), stop);
    assert_eq!(closed.map_err(|(code, _)| code), Err(1001));
    // actix's graceful stop would otherwise wait its 5 s for the open WebSocket.
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
}

/// A bare actix server with only `/ws` over `bus` (auth off): lets a test pick the ping
/// interval and publish directly.
async fn ws_server(bus: EventBus) -> (String, actix_web::dev::ServerHandle) {
    use actix_web::{HttpRequest, web};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let base = format!("ws://{}", listener.local_addr().expect("addr"));
    let server = actix_web::HttpServer::new(move || {
        let bus = bus.clone();
        actix_web::App::new().route(
            "/ws",
            web::get().to(move |req: HttpRequest, body: web::Payload| {
                let bus = bus.clone();
                async move {
                    let sub = wharf::api::websocket::subscription(req.query_string());
                    wharf::api::websocket::serve(&req, body, &bus, sub, Ok(()))
                }
            }),
        )
    })
    .workers(1)
    .disable_signals()
    .shutdown_timeout(1)
    .listen(listener)
    .expect("listen")
    .run();
    let handle = server.handle();
    tokio::spawn(server);
    (base, handle)
}

async fn ws_connect_url(url: &str) -> Ws {
    tokio_websockets::ClientBuilder::new()
        .uri(url)
        .expect("ws uri")
        .connect()
        .await
        .expect("websocket handshake")
        .0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_client_missing_pongs_is_dropped_live_one_stays() {
    use futures_util::StreamExt;
    let fixture = TestStore::sqlite().await;
    let store = fixture.store.clone();
    let mut s = settings(None);
    s.ws_ping_interval = Duration::from_millis(200);
    let bus = EventBus::new(
        store,
        s,
        tokio::runtime::Handle::current(),
        CancellationToken::new(),
    );
    let (base, server) = ws_server(bus.clone()).await;
    let mut mute = ws_connect_url(&format!("{base}/ws")).await;
    let mut live = ws_connect_url(&format!("{base}/ws")).await;
    // The live client reads (and so answers pings) for 5 intervals; the mute one doesn't.
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    let mut pings = 0;
    while let Ok(frame) = tokio::time::timeout_at(until, live.next()).await {
        let frame = frame.expect("live stays open").expect("frame");
        pings += usize::from(frame.is_ping());
    }
    assert!(pings >= 3, "server pings every 200 ms: {pings}");
    // The live client keeps reading (so answering pings) while the event is published: a
    // publish slowed past two intervals by a loaded machine must not make it look mute.
    let context = ctx("s1", vec![]);
    let (sent, got) = tokio::join!(
        bus.publish(&context, "message", json!({"n": 1})),
        ws_next(&mut live)
    );
    assert_eq!(got, Ok(sent.expect("publish").json().to_string()));
    // The mute client was dropped: after the buffered pings its stream ends, and the
    // envelope published after the drop never reached it.
    let ended = tokio::time::timeout(DEADLINE, async {
        loop {
            match mute.next().await {
                Some(Ok(frame)) if frame.is_ping() => continue,
                other => return other.map(|f| f.map(|f| f.as_text().map(str::to_string))),
            }
        }
    })
    .await
    .expect("the mute client is dropped");
    assert!(
        !matches!(ended, Some(Ok(Some(_)))),
        "mute client got a text frame: {ended:?}"
    );
    // Before an HTTP stop, the app closes WebSocket clients with 1001 (WAHA's code).
    bus.close_websockets();
    assert_eq!(
        ws_next(&mut live).await.map_err(|(code, _)| code),
        Err(1001)
    );
    server.stop(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ws_lagging_subscriber_is_disconnected_others_get_everything() {
    use futures_util::StreamExt;
    let fixture = TestStore::sqlite().await;
    let store = fixture.store.clone();
    let bus = EventBus::new(
        store,
        settings(None),
        tokio::runtime::Handle::current(),
        CancellationToken::new(),
    );
    let (base, server) = ws_server(bus.clone()).await;
    let mut slow = ws_connect_url(&format!("{base}/ws")).await;
    let mut fast = ws_connect_url(&format!("{base}/ws")).await;
    let (count_tx, mut count_rx) = tokio::sync::watch::channel(0usize);
    let reader = tokio::spawn(async move {
        let mut n = 0;
        while let Some(Ok(frame)) = fast.next().await {
            if frame.is_text() {
                n += 1;
                let _ = count_tx.send(n);
            }
        }
        n
    });
    // 2000 envelopes of ~32 KB: far more than the slow client's socket buffers plus the
    // bus's 1024-envelope backlog. Published in chunks the fast client keeps up with.
    let big = "x".repeat(32 * 1024);
    let context = ctx("s1", vec![]);
    let total = 2000;
    for chunk in 0..4 {
        for n in 0..500 {
            let started = tokio::time::Instant::now();
            bus.publish(
                &context,
                "message",
                json!({"n": chunk * 500 + n, "big": big}),
            )
            .await
            .expect("publish");
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "publish blocked"
            );
        }
        let want = (chunk + 1) * 500;
        tokio::time::timeout(DEADLINE, count_rx.wait_for(|n| *n >= want))
            .await
            .expect("fast client keeps up")
            .expect("reader alive");
    }
    // The slow client now reads: what its buffers held, then a 1013 close.
    let mut texts = 0;
    let close = tokio::time::timeout(DEADLINE, async {
        loop {
            match slow.next().await {
                Some(Ok(f)) if f.is_text() => texts += 1,
                Some(Ok(f)) if f.is_close() => {
                    return f.as_close().map(|(c, r)| (u16::from(c), r.to_string()));
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("slow client closed in time");
    assert_eq!(close.map(|(c, _)| c), Some(1013), "after {texts} frames");
    assert!(texts < total, "{texts}");
    server.stop(false).await;
    let got = reader.await.expect("reader");
    assert_eq!(got, total);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_endpoints_list_and_replay() {
    for kind in StoreKind::all("dead_letters_endpoints_list_and_replay") {
        let app = TestApp::spawn(kind).await;
        let sink = Sink::start().await;
        sink.fail_always(true);
        let webhook = json!({"url": sink.url("/h"), "events": ["session.status"],
            "retries": {"policy": "constant", "delaySeconds": 0.05, "attempts": 1}});
        start_and_stop(&app, "dl", json!({"webhooks": [webhook]})).await;
        // Every status event dies after its single attempt. The `STOPPED` event is the
        // last of the burst (it may trail the status the API shows), and delivery is
        // ordered per URL: once the receiver saw it and every request it saw is a dead
        // letter, all are.
        let list = eventually(
            DEADLINE,
            &format!("{:?}: every status event dead-lettered", app.store),
            || async {
                let r = app.get("/api/wharf/sessions/dl/dead-letters").await;
                assert_eq!(r.status, 200, "{}", r.text);
                let list = r.json();
                let n = list.as_array().map_or(0, Vec::len);
                let received = sink.received();
                let stopped_seen = received
                    .iter()
                    .any(|req| req.json()["payload"]["status"] == "STOPPED");
                if stopped_seen && n == received.len() {
                    Ok(list)
                } else {
                    Err(format!(
                        "{} requests, STOPPED seen: {stopped_seen}; {list}",
                        received.len()
                    ))
                }
            },
        )
        .await;
        let dead = list.as_array().expect("array").clone();
        let published: Vec<String> = dead
            .iter()
            .map(|d| d["eventId"].as_str().expect("eventId").to_string())
            .collect();
        let first = &dead[0];
        assert_eq!(first["event"], "session.status");
        assert_eq!(first["url"], sink.url("/h"));
        assert_eq!(first["attempts"], 1);
        assert_eq!(first["lastError"], "HTTP 503");
        assert!(first["createdAt"].as_i64().is_some(), "{first}");
        let ids_in_order: Vec<i64> = dead.iter().map(|d| d["id"].as_i64().expect("id")).collect();
        assert!(ids_in_order.windows(2).all(|w| w[0] < w[1]), "{list}");

        sink.fail_always(false);
        let id = ids_in_order[0];
        let r = app
            .post(
                &format!("/api/wharf/sessions/dl/dead-letters/{id}/replay"),
                "",
            )
            .await;
        assert_eq!((r.status, r.json()), (201, json!({"replayed": 1})));
        let got = sink.wait_delivered("/h", 1, DEADLINE).await;
        assert_eq!(ids(&got), published[..1]);
        let r = app
            .post("/api/wharf/sessions/dl/dead-letters/replay", "")
            .await;
        assert_eq!(
            (r.status, r.json()),
            (201, json!({"replayed": dead.len() - 1}))
        );
        let got = sink.wait_delivered("/h", dead.len(), DEADLINE).await;
        assert_eq!(ids(&got), published, "replayed in seq order");
        let r = app.get("/api/wharf/sessions/dl/dead-letters").await;
        assert_eq!(r.json(), json!([]));

        let r = app.get("/api/wharf/sessions/nope/dead-letters").await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(r.json()["message"], "Session not found");
        let r = app
            .post("/api/wharf/sessions/nope/dead-letters/replay", "")
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app
            .post(
                &format!("/api/wharf/sessions/dl/dead-letters/{}/replay", id + 1000),
                "",
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app
            .request(
                reqwest::Method::GET,
                "/api/wharf/sessions/dl/dead-letters",
                None,
                None,
            )
            .await;
        assert_eq!(r.status, 401, "admin key required");
    }
}
