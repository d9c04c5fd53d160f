//! Issue 11 items 3, 4 and 6 end to end: the `🆔 Profile`, `✅ Presence` and `📞 Calls`
//! routes and the `presence.update` / `call.*` events, two sessions paired through the
//! mock network, on both stores.
//!
//! Each operation is checked where it lands: profile changes in the mock's account
//! (`net.profile`) and in `GET /profile`; presence on the other session's webhook (in
//! order, each once) and in its `GET /presence`; a reject in the mock's call record and
//! on the caller's session; calls the mock phone rings, answers or declines on the
//! callee's webhook.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550001111";
const B: &str = "15550002222";

fn cus(phone: &str) -> String {
    format!("{phone}@c.us")
}

/// Sessions `a` and `b` (phones A and B) on a fresh network, webhooks on `/a`, `/b`.
async fn two(store: StoreKind) -> (mockwa::MockNetwork, Sink, TestApp) {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(store, &net, &[]).await;
    for (name, phone) in [("a", A), ("b", B)] {
        let body = json!({
            "name": name,
            "config": {"webhooks": [{
                "url": sink.url(&format!("/{name}")),
                "events": ["*"],
                "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
            }]},
        });
        app.pair_created(&net, &body.to_string(), name, phone).await;
    }
    (net, sink, app)
}

/// The payloads of `event` delivered on `path` so far, in delivery order.
fn payloads(sink: &Sink, path: &str, event: &str) -> Vec<Value> {
    sink.delivered(path)
        .iter()
        .map(crate::support::sink::Received::json)
        .filter(|v| v["event"] == event)
        .map(|v| v["payload"].clone())
        .collect()
}

/// Waits until some `event` payload on `path` matches `pred`; returns it.
async fn wait_payload(
    sink: &Sink,
    path: &str,
    event: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{event} at {path}"),
        || async {
            payloads(sink, path, event)
                .into_iter()
                .find(|p| pred(p))
                .ok_or_else(|| {
                    format!(
                        "got {:?}",
                        sink.delivered(path)
                            .iter()
                            .map(|r| {
                                let v = r.json();
                                format!("{} {}", v["event"], v["payload"])
                            })
                            .collect::<Vec<_>>()
                    )
                })
        },
    )
    .await
}

/// The `lastKnownPresence`s `path` has received for `chat`, in order.
fn presences_of(sink: &Sink, path: &str, chat: &str) -> Vec<String> {
    payloads(sink, path, "presence.update")
        .into_iter()
        .filter(|p| p["id"] == chat)
        .map(|p| {
            p["presences"][0]["lastKnownPresence"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

fn assert_400(r: &crate::support::app::Reply, needle: &str) {
    assert_eq!(r.status, 400, "{}", r.text);
    let body = r.json();
    assert_eq!(body["statusCode"], 400, "{body}");
    assert!(
        body["message"].to_string().contains(needle),
        "{needle:?} not in {body}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn profile_changes_reach_the_account() {
    for store in StoreKind::all("profile_flow") {
        let (net, _sink, app) = two(store).await;

        // Fresh: the push name the phone paired with, no picture.
        let r = app.get("/api/a/profile").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json(),
            json!({"id": cus(A), "picture": null, "name": "a"})
        );

        // Name: WhatsApp (the mock's account) and GET both show it.
        let r = app
            .put("/api/a/profile/name", r#"{"name":"Alice Cooper"}"#)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        eventually(Duration::from_secs(20), "push name at the mock", || async {
            let p = net.profile(A).unwrap();
            (p.push_name == "Alice Cooper")
                .then_some(())
                .ok_or(format!("{p:?}"))
        })
        .await;
        assert_eq!(
            app.get("/api/a/profile").await.json()["name"],
            "Alice Cooper"
        );

        // About.
        let r = app
            .put("/api/a/profile/status", r#"{"status":"🎉 at work"}"#)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        assert_eq!(net.profile(A).unwrap().about.as_deref(), Some("🎉 at work"));

        // Picture: set from base64, the URL GET shows serves the same bytes.
        let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
            .into_iter()
            .chain(b"wharf-profile".iter().copied())
            .collect();
        let data = base64::engine::general_purpose::STANDARD.encode(&jpeg);
        let r = app
            .put(
                "/api/a/profile/picture",
                &json!({"file": {"mimetype": "image/jpeg", "filename": "me.jpg", "data": data}})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        let at_mock = net.profile(A).unwrap();
        let url = at_mock.picture_url.clone().expect("picture at the mock");
        let got = app.get("/api/a/profile").await.json();
        assert_eq!(got["picture"], url.as_str(), "{got}");
        let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), jpeg.as_slice());
        // B's account is untouched.
        assert_eq!(net.profile(B).unwrap().picture_id, None);

        // Delete.
        let r = app.delete("/api/a/profile/picture").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        assert_eq!(net.profile(A).unwrap().picture_id, None);
        assert_eq!(
            app.get("/api/a/profile").await.json()["picture"],
            Value::Null
        );

        // Bad input: 400s, nothing changes at the mock.
        assert_400(
            &app.put("/api/a/profile/name", r#"{"name":"  "}"#).await,
            "name should not be empty",
        );
        assert_400(&app.put("/api/a/profile/name", "{}").await, "name");
        assert_400(&app.put("/api/a/profile/status", "{}").await, "status");
        let text = base64::engine::general_purpose::STANDARD.encode(b"hello, world");
        assert_400(
            &app.put(
                "/api/a/profile/picture",
                &json!({"file": {"mimetype": "text/plain", "data": text}}).to_string(),
            )
            .await,
            "must be an image",
        );
        assert_400(
            &app.put(
                "/api/a/profile/picture",
                &json!({"file": {"mimetype": "image/jpeg", "data": text}}).to_string(),
            )
            .await,
            "must be a JPEG",
        );
        let png = base64::engine::general_purpose::STANDARD.encode(b"\x89PNG\r\n\x1a\nrest");
        assert_400(
            &app.put(
                "/api/a/profile/picture",
                &json!({"file": {"mimetype": "image/png", "data": png}}).to_string(),
            )
            .await,
            "got PNG",
        );
        assert_400(
            &app.put("/api/a/profile/picture", r#"{"file":{}}"#).await,
            "either data or url",
        );
        let p = net.profile(A).unwrap();
        assert_eq!((p.push_name.as_str(), p.picture_id), ("Alice Cooper", None));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn presence_reaches_subscribers_in_order() {
    for store in StoreKind::all("presence_flow") {
        let (_net, sink, app) = two(store).await;
        let (a, b) = (cus(A), cus(B));

        // A subscribes to B: WhatsApp answers with B's presence right away.
        let r = app
            .post(&format!("/api/a/presence/{b}/subscribe"), "")
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.text, "");
        wait_payload(&sink, "/a", "presence.update", |p| p["id"] == b.as_str()).await;
        let before = presences_of(&sink, "/a", &b).len();

        // B: online, typing, recording, paused (in A's chat), offline. Each step waits
        // for A to see it: WhatsApp gives no order between a `<presence>` and a
        // `<chatstate>` stanza (whatsapp-rust handles them concurrently), so "in order"
        // means B's changes as A sees them, one after the other.
        let want = ["online", "typing", "recording", "paused", "offline"];
        for (body, state) in [
            json!({"presence": "online"}),
            json!({"chatId": a, "presence": "typing"}),
            json!({"chatId": a, "presence": "recording"}),
            json!({"chatId": a, "presence": "paused"}),
            json!({"presence": "offline"}),
        ]
        .into_iter()
        .zip(want)
        {
            let seen = presences_of(&sink, "/a", &b).len();
            let r = app.post("/api/b/presence", &body.to_string()).await;
            assert_eq!(r.status, 201, "{body}: {}", r.text);
            assert_eq!(r.text, "");
            eventually(
                Duration::from_secs(30),
                &format!("B {state} at A"),
                || async {
                    let got = presences_of(&sink, "/a", &b);
                    (got.len() > seen && got.last().map(String::as_str) == Some(state))
                        .then_some(())
                        .ok_or(format!("{got:?}"))
                },
            )
            .await;
        }
        // Each once.
        assert_eq!(presences_of(&sink, "/a", &b)[before..], want);
        let typing = payloads(&sink, "/a", "presence.update")
            .into_iter()
            .find(|p| p["presences"][0]["lastKnownPresence"] == "typing")
            .unwrap();
        assert_eq!(
            typing,
            json!({"id": b, "presences": [
                {"participant": b, "lastKnownPresence": "typing", "lastSeen": null}
            ]})
        );

        // A's GETs show B's last presence (the subscribed chats only).
        let all = app.get("/api/a/presence").await;
        assert_eq!(all.status, 200, "{}", all.text);
        let all = all.json();
        assert_eq!(all.as_array().map(Vec::len), Some(1), "{all}");
        assert_eq!(all[0]["id"], b.as_str());
        assert_eq!(all[0]["presences"][0]["participant"], b.as_str());
        assert_eq!(all[0]["presences"][0]["lastKnownPresence"], "offline");
        let one = app.get(&format!("/api/a/presence/{b}")).await;
        assert_eq!(one.status, 200, "{}", one.text);
        assert_eq!(one.json(), all[0]);

        // GET on a chat B is not subscribed to subscribes it: A going online reaches B.
        let r = app.get(&format!("/api/b/presence/{A}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["id"], a.as_str());
        wait_payload(&sink, "/b", "presence.update", |p| p["id"] == a.as_str()).await;
        let before_b = presences_of(&sink, "/b", &a).len();
        let r = app
            .post("/api/a/presence", r#"{"presence":"online"}"#)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        eventually(Duration::from_secs(30), "A online at B", || async {
            let got = presences_of(&sink, "/b", &a);
            (got.len() > before_b && got[before_b..].iter().all(|p| p == "online"))
                .then_some(())
                .ok_or(format!("{got:?}"))
        })
        .await;
        let all_b = app.get("/api/b/presence").await.json();
        assert_eq!(all_b[0]["id"], a.as_str(), "{all_b}");
        assert_eq!(all_b[0]["presences"][0]["lastKnownPresence"], "online");

        // Bad input.
        assert_400(
            &app.post("/api/a/presence", r#"{"presence":"dancing"}"#)
                .await,
            "presence must be one of the following values",
        );
        assert_400(
            &app.post("/api/a/presence", r#"{"presence":"typing"}"#)
                .await,
            "chatId",
        );
        assert_400(
            &app.post(
                "/api/a/presence",
                r#"{"presence":"typing","chatId":"not a chat"}"#,
            )
            .await,
            "chatId must be a chat id",
        );
        assert_400(&app.post("/api/a/presence", "{}").await, "presence");
        assert_400(&app.get("/api/a/presence/nobody").await, "chatId");
        assert_400(
            &app.post("/api/a/presence/x@y/subscribe", "").await,
            "chatId",
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn calls_ring_and_are_rejected_or_answered() {
    for store in StoreKind::all("calls_flow") {
        let (net, sink, app) = two(store).await;

        // B's phone calls A: A's session sees it ring.
        let call = net
            .place_call(&mockwa::PlaceCall {
                from: B.into(),
                to: A.into(),
                video: false,
            })
            .unwrap();
        let got = wait_payload(&sink, "/a", "call.received", |p| {
            p["id"] == call.id.as_str()
        })
        .await;
        assert_eq!(got["from"], cus(B));
        assert_eq!(got["isVideo"], false);
        assert_eq!(got["isGroup"], false);
        assert!(got["timestamp"].as_i64().is_some_and(|t| t > 0), "{got}");
        assert_eq!(got["_data"]["CallID"], call.id.as_str());

        // A rejects it: the mock records A's device declining, B's session hears it.
        let r = app
            .post(
                "/api/a/calls/reject",
                &json!({"from": cus(B), "id": call.id}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.text, "");
        eventually(Duration::from_secs(20), "reject at the mock", || async {
            let c = net.call(&call.id).unwrap();
            (c.state == "rejected")
                .then_some(())
                .ok_or(format!("{c:?}"))
        })
        .await;
        assert_eq!(
            net.call(&call.id).unwrap().by.as_deref(),
            Some(format!("{A}:1@s.whatsapp.net").as_str())
        );
        let rejected = wait_payload(&sink, "/b", "call.rejected", |p| {
            p["id"] == call.id.as_str()
        })
        .await;
        assert_eq!(rejected["from"], cus(B));

        // A video call the phone (A's primary) answers: call.accepted on both sides.
        let video = net
            .place_call(&mockwa::PlaceCall {
                from: B.into(),
                to: A.into(),
                video: true,
            })
            .unwrap();
        let got = wait_payload(&sink, "/a", "call.received", |p| {
            p["id"] == video.id.as_str()
        })
        .await;
        assert_eq!(got["isVideo"], true);
        net.answer_call(&video.id, true).unwrap();
        wait_payload(&sink, "/a", "call.accepted", |p| {
            p["id"] == video.id.as_str()
        })
        .await;
        wait_payload(&sink, "/b", "call.accepted", |p| {
            p["id"] == video.id.as_str()
        })
        .await;

        // One the phone declines: call.rejected on A's session.
        let third = net
            .place_call(&mockwa::PlaceCall {
                from: B.into(),
                to: A.into(),
                video: false,
            })
            .unwrap();
        wait_payload(&sink, "/a", "call.received", |p| {
            p["id"] == third.id.as_str()
        })
        .await;
        net.answer_call(&third.id, false).unwrap();
        wait_payload(&sink, "/a", "call.rejected", |p| {
            p["id"] == third.id.as_str()
        })
        .await;

        // Each event once.
        let count = |path: &str, event: &str, id: &str| {
            payloads(&sink, path, event)
                .iter()
                .filter(|p| p["id"] == id)
                .count()
        };
        assert_eq!(count("/a", "call.received", &call.id), 1);
        assert_eq!(count("/b", "call.rejected", &call.id), 1);
        assert_eq!(count("/a", "call.received", &video.id), 1);
        assert_eq!(count("/a", "call.accepted", &video.id), 1);
        assert_eq!(count("/a", "call.rejected", &third.id), 1);
        // Nothing rang on B's own session: it was its phone that called.
        assert!(payloads(&sink, "/b", "call.received").is_empty());

        // Bad input.
        assert_400(&app.post("/api/a/calls/reject", "{}").await, "from");
        assert_400(
            &app.post(
                "/api/a/calls/reject",
                &json!({"from": cus(B), "id": " "}).to_string(),
            )
            .await,
            "id should not be empty",
        );
        assert_400(
            &app.post("/api/a/calls/reject", r#"{"from":"nobody","id":"X1"}"#)
                .await,
            "from must be",
        );
    }
}
