//! Issue 5 end to end: two paired sessions message each other through the mock network;
//! webhooks (envelope, HMAC), WebSocket, history, acks, reactions, edits, revokes.

use std::time::Duration;

use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha512;

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const SECRET: &str = "hook-secret";

fn hook(sink: &Sink, path: &str) -> String {
    format!(
        r#"{{"name":"bob","config":{{"metadata":{{"user.id":"42"}},"webhooks":[{{"url":"{}","events":["*"],"hmac":{{"key":"{SECRET}"}},"retries":{{"delaySeconds":0.05,"attempts":200,"policy":"constant"}},"customHeaders":[{{"name":"X-Test","value":"yes"}}]}}]}}}}"#,
        sink.url(path)
    )
}

/// Pairs `name` created with `body` (so it can carry webhooks).
async fn pair_with(app: &TestApp, net: &mockwa::MockNetwork, body: &str, name: &str, phone: &str) {
    app.pair_created(net, body, name, phone).await;
}

/// Alice (webhook on `/alice` for `alice_events`) and Bob (the full `hook` on `/bob`),
/// both paired on a fresh mock network.
async fn alice_and_bob(
    store: StoreKind,
    alice_events: &str,
    alice_phone: &str,
    bob_phone: &str,
) -> (mockwa::MockNetwork, Sink, TestApp) {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(store, &net, &[]).await;
    let alice = format!(
        r#"{{"name":"alice","config":{{"webhooks":[{{"url":"{}","events":["{alice_events}"]}}]}}}}"#,
        sink.url("/alice")
    );
    pair_with(&app, &net, &alice, "alice", alice_phone).await;
    pair_with(&app, &net, &hook(&sink, "/bob"), "bob", bob_phone).await;
    (net, sink, app)
}

async fn wait_event(
    sink: &Sink,
    path: &str,
    event: &str,
    pred: impl Fn(&Value) -> bool,
) -> (Value, crate::support::sink::Received) {
    eventually(
        Duration::from_secs(30),
        &format!("{event} at {path}"),
        || async {
            for r in sink.delivered(path) {
                let v = r.json();
                if v["event"] == event && pred(&v) {
                    return Ok((v, r));
                }
            }
            Err(format!(
                "got {:?}",
                sink.delivered(path)
                    .iter()
                    .map(|r| r.json()["event"].clone())
                    .collect::<Vec<_>>()
            ))
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_both_ways_with_webhook_history_and_acks() {
    for store in StoreKind::all("text_both_ways") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "alice", "15550001111").await;
        pair_with(&app, &net, &hook(&sink, "/bob"), "bob", "15550002222").await;
        // Alice's own webhook, for acks.
        let alice_hook = format!(
            r#"{{"config":{{"webhooks":[{{"url":"{}","events":["message.ack","message.any"]}}]}}}}"#,
            sink.url("/alice")
        );
        assert_eq!(
            app.put("/api/sessions/alice", &alice_hook).await.status,
            200
        );
        app.wait_status("alice", "WORKING", Duration::from_secs(40))
            .await;

        let ws_url = format!(
            "{}/ws?x-api-key={}&session=bob&events=message",
            app.base.replacen("http", "ws", 1),
            crate::support::app::API_KEY
        );
        let (mut ws, _) = tokio_websockets::ClientBuilder::new()
            .uri(&ws_url)
            .unwrap()
            .connect()
            .await
            .expect("websocket");
        let r = app
            .post(
                "/api/sendText",
                r#"{"session":"alice","chatId":"15550002222@c.us","text":"hello bob"}"#,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sent = r.json();
        let wa_id = sent["id"]
            .as_str()
            .unwrap()
            .rsplit('_')
            .next()
            .unwrap()
            .to_string();
        assert_eq!(sent["id"], format!("true_15550002222@c.us_{wa_id}"));
        assert_eq!(sent["fromMe"], true);
        assert_eq!(sent["body"], "hello bob");
        assert_eq!(sent["source"], "api");

        let (env, raw) = wait_event(&sink, "/bob", "message", |v| {
            v["payload"]["body"] == "hello bob"
        })
        .await;
        // Envelope: WAHA's keys in WAHA's order.
        let keys: Vec<&str> = env
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "id",
                "timestamp",
                "event",
                "session",
                "metadata",
                "me",
                "payload",
                "engine",
                "environment"
            ]
        );
        assert!(env["id"].as_str().unwrap().starts_with("evt_"));
        assert_eq!(env["session"], "bob");
        assert_eq!(env["metadata"], json!({"user.id": "42"}));
        assert_eq!(env["me"]["id"], "15550002222@c.us");
        assert_eq!(env["engine"], "GOWS");
        let p = &env["payload"];
        assert_eq!(p["from"], "15550001111@c.us");
        assert_eq!(p["fromMe"], false);
        assert_eq!(p["id"], format!("false_15550001111@c.us_{wa_id}"));
        // Headers and HMAC over the raw body.
        assert_eq!(raw.header("x-test"), "yes");
        assert_eq!(raw.header("x-webhook-hmac-algorithm"), "sha512");
        assert_eq!(
            raw.header("x-webhook-timestamp"),
            env["timestamp"].to_string()
        );
        let mut mac = Hmac::<Sha512>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(raw.body.as_bytes());
        assert_eq!(
            raw.header("x-webhook-hmac"),
            hex::encode(mac.finalize().into_bytes())
        );
        // The WebSocket frame is the very same envelope.
        let frame = loop {
            use futures_util::StreamExt;
            let msg = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("ws frame in time")
                .expect("ws open")
                .expect("ws frame");
            if let Some(text) = msg.as_text() {
                let v: Value = serde_json::from_str(text).unwrap();
                if v["id"] == env["id"] {
                    break text.to_string();
                }
            }
        };
        assert_eq!(
            frame, raw.body,
            "WebSocket and webhook carry the same bytes"
        );

        // History through the API.
        let history = app
            .get("/api/bob/chats/15550001111@c.us/messages?limit=10")
            .await;
        assert_eq!(history.status, 200, "{}", history.text);
        assert!(
            history
                .json()
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["body"] == "hello bob"),
            "{}",
            history.text
        );

        // Bob reads it → Alice sees acks up to READ.
        let r = app
            .post(
                "/api/sendSeen",
                &format!(r#"{{"session":"bob","chatId":"15550001111@c.us","messageIds":["false_15550001111@c.us_{wa_id}"]}}"#),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        wait_event(&sink, "/alice", "message.ack", |v| {
            v["payload"]["ack"] == 3 && v["payload"]["ackName"] == "READ"
        })
        .await;

        // And back: Bob answers, quoting.
        let r = app
            .post(
                "/api/sendText",
                &format!(r#"{{"session":"bob","chatId":"15550001111@c.us","text":"hi alice","reply_to":"false_15550001111@c.us_{wa_id}"}}"#),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let (env, _) = wait_event(&sink, "/alice", "message.any", |v| {
            v["payload"]["body"] == "hi alice"
        })
        .await;
        assert_eq!(env["payload"]["fromMe"], false);
        assert_eq!(env["payload"]["replyTo"]["id"], wa_id);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaction_edit_and_revoke_produce_their_events() {
    for store in StoreKind::all("reaction_edit_revoke") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let alice = format!(
            r#"{{"name":"alice","config":{{"webhooks":[{{"url":"{}","events":["message.reaction"]}}]}}}}"#,
            sink.url("/alice")
        );
        pair_with(&app, &net, &alice, "alice", "15550003333").await;
        pair_with(&app, &net, &hook(&sink, "/bob"), "bob", "15550004444").await;
        let sent = app
            .post(
                "/api/sendText",
                r#"{"session":"alice","chatId":"15550004444@c.us","text":"original"}"#,
            )
            .await
            .json();
        let id = sent["id"].as_str().unwrap().to_string();
        let wa_id = id.rsplit('_').next().unwrap().to_string();
        wait_event(&sink, "/bob", "message", |v| {
            v["payload"]["body"] == "original"
        })
        .await;

        // Bob reacts to Alice's message (seen from Bob's side: false_<alice>_<id>).
        let bob_view = format!("false_15550003333@c.us_{wa_id}");
        let r = app
            .put(
                "/api/reaction",
                &format!(r#"{{"session":"bob","messageId":"{bob_view}","reaction":"👍"}}"#),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        // Alice's webhook: message.reaction pointing at her own message.
        let (reaction, _) = wait_event(&sink, "/alice", "message.reaction", |_| true).await;
        assert_eq!(reaction["payload"]["reaction"]["text"], "👍");
        assert_eq!(reaction["payload"]["reaction"]["messageId"], id);
        assert_eq!(reaction["payload"]["from"], "15550004444@c.us");

        // Alice edits and revokes her message; Bob's webhook sees both.
        let r = app
            .put(
                &format!("/api/alice/chats/15550004444@c.us/messages/{id}"),
                r#"{"text":"edited"}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (edited, _) = wait_event(&sink, "/bob", "message.edited", |_| true).await;
        assert_eq!(edited["payload"]["body"], "edited");
        assert!(
            edited["payload"]["editedMessageId"]
                .as_str()
                .unwrap()
                .ends_with(&wa_id)
        );
        let r = app
            .delete(&format!("/api/alice/chats/15550004444@c.us/messages/{id}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let (revoked, _) = wait_event(&sink, "/bob", "message.revoked", |_| true).await;
        assert!(
            revoked["payload"]["revokedMessageId"]
                .as_str()
                .unwrap()
                .ends_with(&wa_id)
        );
        assert_eq!(revoked["payload"]["before"]["body"], "edited");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sending_while_not_working_returns_exact_422() {
    let app = TestApp::spawn(StoreKind::Embedded).await;
    app.post("/api/sessions", r#"{"name":"idle","start":false}"#)
        .await;
    for (path, body) in [
        (
            "/api/sendText",
            r#"{"session":"idle","chatId":"1@c.us","text":"x"}"#,
        ),
        ("/api/sendSeen", r#"{"session":"idle","chatId":"1@c.us"}"#),
        (
            "/api/startTyping",
            r#"{"session":"idle","chatId":"1@c.us"}"#,
        ),
        ("/api/stopTyping", r#"{"session":"idle","chatId":"1@c.us"}"#),
        (
            "/api/forwardMessage",
            r#"{"session":"idle","chatId":"1@c.us","messageId":"true_1@c.us_A"}"#,
        ),
    ] {
        let r = app.post(path, body).await;
        assert_eq!(r.status, 422, "{path}");
        assert_eq!(
            r.text,
            r#"{"error":"Session status is not as expected. Try again later or restart the session","session":"idle","status":"STOPPED","expected":["WORKING"]}"#,
            "{path}"
        );
    }
    let r = app
        .put(
            "/api/reaction",
            r#"{"session":"idle","messageId":"true_1@c.us_A","reaction":"x"}"#,
        )
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .get("/api/contacts/check-exists?phone=123456&session=idle")
        .await;
    assert_eq!(r.status, 422);
    let r = app
        .post(
            "/api/sendText",
            r#"{"session":"ghost","chatId":"1@c.us","text":"x"}"#,
        )
        .await;
    assert_eq!(
        r.text,
        r#"{"error":"Session \"ghost\" does not exist","session":"ghost"}"#
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_chat_id_is_a_clear_400_and_check_exists_works() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    app.pair(&net, "alice", "15550005555").await;
    let r = app
        .post(
            "/api/sendText",
            r#"{"session":"alice","chatId":"not a chat","text":"x"}"#,
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(
        r.json()["message"][0].as_str().unwrap().contains("chatId"),
        "{}",
        r.text
    );
    let r = app
        .get("/api/contacts/check-exists?phone=15550005555&session=alice")
        .await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(
        r.json(),
        json!({"chatId": "15550005555@c.us", "numberExists": true})
    );
    let r = app
        .get("/api/contacts/check-exists?phone=19990000000&session=alice")
        .await;
    assert_eq!(r.json(), json!({"numberExists": false}));
}

/// The real binary: the receiver is down (503) while Alice sends 3 messages, wharf is
/// SIGKILLed and restarted, the receiver recovers → all 3 arrive, in order, same ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_survive_sigkill_in_order() {
    use crate::support::process::{Wharf, store_env};
    for store in StoreKind::all("webhooks_survive_sigkill") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let dir = tempfile::tempdir().unwrap();
        let key = "durable-test-key-0123456789";
        let mut owned = store_env(&store);
        owned.push(("WHARF_WA_URL".into(), net.ws_url()));
        owned.push(("WAHA_PRINT_QR".into(), "false".into()));
        let env: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();

        let mut wharf = Wharf::start(dir.path(), key, &env).await;
        wharf.pair(&net, "alice", "15550006666", json!({})).await;
        let bob_hooks = json!({"webhooks": [{"url": sink.url("/bob"), "events": ["message"],
        "retries": {"delaySeconds": 0.05, "attempts": 1000, "policy": "constant"}}]});
        wharf.pair(&net, "bob", "15550007777", bob_hooks).await;

        sink.fail_always(true);
        // A WebSocket sees each event right after it is in the outbox: proof that all three
        // are durable before the crash (the webhook is stuck on the first, in order).
        let ws_url = format!(
            "{}/ws?x-api-key={key}&session=bob&events=message",
            wharf.base.replacen("http", "ws", 1)
        );
        let (mut ws, _) = tokio_websockets::ClientBuilder::new()
            .uri(&ws_url)
            .unwrap()
            .connect()
            .await
            .expect("websocket");
        let mut sent_ids = Vec::new();
        for i in 1..=3 {
            let body = json!({"session": "alice", "chatId": "15550007777@c.us", "text": format!("msg {i}")});
            let (st, m) = wharf
                .call(reqwest::Method::POST, "/api/sendText", Some(body))
                .await;
            assert_eq!(st, 201, "{m}");
            sent_ids.push(
                m["id"]
                    .as_str()
                    .unwrap()
                    .rsplit('_')
                    .next()
                    .unwrap()
                    .to_string(),
            );
        }
        let mut outboxed = Vec::new();
        while outboxed.len() < 3 {
            use futures_util::StreamExt;
            let frame = tokio::time::timeout(Duration::from_secs(30), ws.next())
                .await
                .expect("event in time")
                .expect("open")
                .expect("frame");
            if let Some(text) = frame.as_text() {
                let v: Value = serde_json::from_str(text).unwrap();
                outboxed.push(v["id"].as_str().unwrap().to_string());
            }
        }
        assert!(
            sink.delivered("/bob").is_empty(),
            "nothing delivered while the receiver is down"
        );

        wharf.kill();
        sink.fail_always(false);
        let _wharf = Wharf::start(dir.path(), key, &env).await;

        let delivered = sink
            .wait_delivered("/bob", 3, Duration::from_secs(40))
            .await;
        let bodies: Vec<String> = delivered
            .iter()
            .map(|r| r.json()["payload"]["body"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(bodies, ["msg 1", "msg 2", "msg 3"], "in order, none lost");
        for (r, wa_id) in delivered.iter().zip(&sent_ids) {
            let v = r.json();
            assert_eq!(
                v["payload"]["id"],
                format!("false_15550006666@c.us_{wa_id}")
            );
            assert!(
                outboxed.contains(&v["id"].as_str().unwrap().to_string()),
                "same event id after the crash"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_server_ack_reach_webhooks() {
    let (_net, sink, app) = alice_and_bob(
        StoreKind::Embedded,
        "message.ack",
        "15550008881",
        "15550008882",
    )
    .await;
    let r = app
        .post(
            "/api/startTyping",
            r#"{"session":"alice","chatId":"15550008882@c.us"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (env, _) = wait_event(&sink, "/bob", "presence.update", |v| {
        v["payload"]["presences"][0]["lastKnownPresence"] == "typing"
    })
    .await;
    assert_eq!(
        env["payload"]["presences"][0]["participant"],
        "15550008881@c.us"
    );
    let r = app
        .post(
            "/api/stopTyping",
            r#"{"session":"alice","chatId":"15550008882@c.us"}"#,
        )
        .await;
    assert_eq!(r.status, 201);
    wait_event(&sink, "/bob", "presence.update", |v| {
        v["payload"]["presences"][0]["lastKnownPresence"] == "paused"
    })
    .await;
    let sent = app
        .post(
            "/api/sendText",
            r#"{"session":"alice","chatId":"15550008882@c.us","text":"ack me"}"#,
        )
        .await
        .json();
    let (ack, _) = wait_event(&sink, "/alice", "message.ack", |v| {
        v["payload"]["id"] == sent["id"]
    })
    .await;
    assert!(ack["payload"]["ack"].as_i64().unwrap() >= 1);
    wait_event(&sink, "/alice", "message.ack", |v| {
        v["payload"]["id"] == sent["id"] && v["payload"]["ackName"] == "SERVER"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_read_marks_history_and_sends_read_receipts() {
    let (_net, sink, app) = alice_and_bob(
        StoreKind::Embedded,
        "message.ack",
        "15550009991",
        "15550009992",
    )
    .await;
    let sent = app
        .post(
            "/api/sendText",
            r#"{"session":"alice","chatId":"15550009992@c.us","text":"read me"}"#,
        )
        .await
        .json();
    wait_event(&sink, "/bob", "message", |v| {
        v["payload"]["body"] == "read me"
    })
    .await;
    let r = app
        .post("/api/bob/chats/15550009991@c.us/messages/read", "")
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let wa_id = sent["id"]
        .as_str()
        .unwrap()
        .rsplit('_')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        r.json()["ids"],
        json!([format!("false_15550009991@c.us_{wa_id}")])
    );
    wait_event(&sink, "/alice", "message.ack", |v| {
        v["payload"]["id"] == sent["id"] && v["payload"]["ackName"] == "READ"
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mentions_reach_the_recipient() {
    let (_net, sink, app) = alice_and_bob(
        StoreKind::Embedded,
        "message.ack",
        "15550009981",
        "15550009982",
    )
    .await;
    let r = app
        .post(
            "/api/sendText",
            r#"{"session":"alice","chatId":"15550009982@c.us","text":"hey @15550009982","mentions":["15550009982@c.us"]}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let (env, _) = wait_event(&sink, "/bob", "message", |v| {
        v["payload"]["body"] == "hey @15550009982"
    })
    .await;
    assert_eq!(
        env["payload"]["_data"]["mentionedIds"],
        json!(["15550009982@c.us"])
    );
}

/// The value of one series in `/metrics` (0 when absent).
fn series(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// `/metrics` (issue 14): counters move when a message is sent, received and delivered
/// to a webhook. Counters are process-wide (other tests run alongside), so deltas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_move_when_a_message_is_sent_received_and_delivered() {
    let (_net, sink, app) = alice_and_bob(
        StoreKind::Embedded,
        "message.any",
        "15550007771",
        "15550007772",
    )
    .await;
    let before = app.get("/metrics").await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert!(
        before
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/openmetrics-text")),
        "{:?}",
        before.headers
    );
    assert!(before.text.ends_with("# EOF\n"));
    assert_eq!(
        series(&before.text, r#"wharf_sessions{status="WORKING"}"#),
        2.0
    );
    let unauthorized = app
        .request(reqwest::Method::GET, "/metrics", None, None)
        .await;
    assert_eq!(unauthorized.status, 401);

    let r = app
        .post(
            "/api/sendText",
            r#"{"session":"alice","chatId":"15550007772@c.us","text":"metered"}"#,
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    wait_event(&sink, "/bob", "message", |v| {
        v["payload"]["body"] == "metered"
    })
    .await;
    let after = eventually(Duration::from_secs(10), "counters move", || async {
        let text = app.get("/metrics").await.text;
        let moved = |s: &str| series(&text, s) > series(&before.text, s);
        if moved(r#"wharf_messages_total{direction="out",session=""}"#)
            && moved(r#"wharf_messages_total{direction="in",session=""}"#)
            && moved(r#"wharf_webhook_deliveries_total{result="delivered",session=""}"#)
        {
            Ok(text)
        } else {
            Err(text)
        }
    })
    .await;
    assert!(
        series(
            &after,
            r#"wharf_http_requests_total{method="POST",route="/api/sendText",status="201"}"#
        ) >= 1.0,
        "{after}"
    );
    assert!(series(&after, "wharf_process_resident_memory_bytes") > 0.0);
    assert!(series(&after, "wharf_process_open_fds") > 0.0);
}
