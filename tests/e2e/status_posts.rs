//! Issue 12 item 2 end to end: `🟢 Status`. Text, image, voice and video statuses posted by `alice`
//! for `bob` arrive at bob as `message` events from `status@broadcast` (WAHA's shape:
//! `participant` is the poster, the id carries it); a contact not listed gets nothing;
//! delete revokes it at bob (`message.revoked`). Both stores, through mockwa.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const ALICE: &str = "15550007001";
const BOB: &str = "15550007002";
const CAROL: &str = "15550007003";

async fn pair_hooked(
    app: &TestApp,
    net: &mockwa::MockNetwork,
    sink: &Sink,
    name: &str,
    phone: &str,
) {
    let body = json!({
        "name": name,
        "config": {"webhooks": [{
            "url": sink.url(&format!("/{name}")),
            "events": ["message", "message.revoked"],
            "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
        }]},
    });
    app.pair_created(net, &body.to_string(), name, phone).await;
}

/// The first `event` on `path` whose payload matches `pred`.
async fn wait_event(sink: &Sink, path: &str, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{event} at {path}"),
        || async {
            let all: Vec<Value> = sink
                .delivered(path)
                .iter()
                .map(crate::support::sink::Received::json)
                .collect();
            all.iter()
                .find(|v| v["event"] == event && pred(&v["payload"]))
                .map(|v| v["payload"].clone())
                .ok_or_else(|| format!("got {all:?}"))
        },
    )
    .await
}

fn statuses(sink: &Sink, path: &str) -> usize {
    sink.delivered(path)
        .iter()
        .map(crate::support::sink::Received::json)
        .filter(|v| v["event"] == "message" && v["payload"]["from"] == "status@broadcast")
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_and_image_statuses_reach_listed_contacts_and_delete_revokes() {
    for store in StoreKind::all("status_posts") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        pair_hooked(&app, &net, &sink, "alice", ALICE).await;
        pair_hooked(&app, &net, &sink, "bob", BOB).await;
        pair_hooked(&app, &net, &sink, "carol", CAROL).await;
        let bob = format!("{BOB}@c.us");
        let alice = format!("{ALICE}@c.us");

        // A pre-generated id, as WAHA's "batch contacts" flow uses it.
        let r = app.get("/api/alice/status/new-message-id").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let own_id = r.json()["id"].as_str().unwrap().to_string();

        let r = app
            .post(
                "/api/alice/status/text",
                &json!({"id": own_id, "contacts": [bob], "text": "hello status",
                        "backgroundColor": "#38b42f", "font": 1})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sent = r.json();
        assert_eq!(
            sent["id"],
            format!("true_status@broadcast_{own_id}"),
            "{sent}"
        );
        assert_eq!(sent["to"], "status@broadcast");
        assert_eq!(sent["body"], "hello status");

        let got = wait_event(&sink, "/bob", "message", |p| {
            p["from"] == "status@broadcast" && p["body"] == "hello status"
        })
        .await;
        assert_eq!(got["participant"], alice.as_str(), "{got}");
        assert_eq!(got["fromMe"], false);
        assert_eq!(
            got["id"],
            format!("false_status@broadcast_{own_id}_{alice}"),
            "{got}"
        );

        // An image status, by content, with a caption.
        let image = base64::engine::general_purpose::STANDARD.encode(vec![7u8; 4096]);
        let r = app
            .post(
                "/api/alice/status/image",
                &json!({"contacts": [bob], "caption": "a picture",
                        "file": {"mimetype": "image/jpeg", "data": image}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let image_sent = r.json();
        assert_eq!(image_sent["hasMedia"], true, "{image_sent}");
        let image_id = image_sent["id"].as_str().unwrap().to_string();
        let got = wait_event(&sink, "/bob", "message", |p| {
            p["from"] == "status@broadcast" && p["body"] == "a picture"
        })
        .await;
        assert_eq!(got["hasMedia"], true, "{got}");
        assert_eq!(got["participant"], alice.as_str());

        // Voice and video statuses take the same media path (no conversion asked).
        let clip = base64::engine::general_purpose::STANDARD.encode(vec![9u8; 2048]);
        for (path, body, kind) in [
            (
                "/api/alice/status/voice",
                json!({"contacts": [bob], "convert": false, "backgroundColor": "#112233",
                       "file": {"mimetype": "audio/ogg; codecs=opus", "data": clip}}),
                "voice",
            ),
            (
                "/api/alice/status/video",
                json!({"contacts": [bob], "convert": false, "caption": "a clip",
                       "file": {"mimetype": "video/mp4", "data": clip}}),
                "video",
            ),
        ] {
            let r = app.post(path, &body.to_string()).await;
            assert_eq!(r.status, 201, "{kind}: {}", r.text);
            let sent = r.json();
            assert_eq!(sent["hasMedia"], true, "{kind}: {sent}");
            let wa = sent["id"]
                .as_str()
                .unwrap()
                .rsplit('_')
                .next()
                .unwrap()
                .to_string();
            let got = wait_event(&sink, "/bob", "message", |p| {
                p["from"] == "status@broadcast"
                    && p["id"].as_str().is_some_and(|id| id.contains(&wa))
            })
            .await;
            assert_eq!(got["hasMedia"], true, "{kind}: {got}");
        }

        // Delete: bob's copy is revoked (WAHA's serialized id is accepted too).
        let r = app
            .post(
                "/api/alice/status/delete",
                &json!({"id": image_id, "contacts": [bob]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let wa_image_id = image_id.rsplit('_').next().unwrap().to_string();
        let revoked = wait_event(&sink, "/bob", "message.revoked", |p| {
            p["revokedMessageId"]
                .as_str()
                .is_some_and(|id| id.contains(&wa_image_id))
        })
        .await;
        assert_eq!(revoked["after"]["from"], "status@broadcast", "{revoked}");

        // Carol was never listed: none of alice's statuses reached her. A message sent
        // to her afterwards arrives behind anything mockwa had queued for her.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "alice", "chatId": format!("{CAROL}@c.us"), "text": "after"})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        wait_event(&sink, "/carol", "message", |p| p["body"] == "after").await;
        assert_eq!(statuses(&sink, "/carol"), 0);
        assert!(statuses(&sink, "/bob") >= 4);

        // Bad input: no contacts, a bad colour, an empty text; an unknown session.
        for (path, body) in [
            ("/api/alice/status/text", json!({"text": "x"})),
            (
                "/api/alice/status/text",
                json!({"text": "x", "contacts": [bob], "backgroundColor": "green"}),
            ),
            (
                "/api/alice/status/text",
                json!({"text": " ", "contacts": [bob]}),
            ),
            (
                "/api/alice/status/text",
                json!({"text": "x", "contacts": ["123@g.us"]}),
            ),
            ("/api/alice/status/delete", json!({"contacts": [bob]})),
            (
                "/api/alice/status/image",
                json!({"contacts": [bob], "file": {"mimetype": "image/jpeg"}}),
            ),
        ] {
            let r = app.post(path, &body.to_string()).await;
            assert_eq!(r.status, 400, "{path} {body}: {}", r.text);
        }
        let r = app
            .post(
                "/api/nobody/status/text",
                &json!({"text": "x", "contacts": [bob]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
    }
}
