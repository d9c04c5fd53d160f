//! Issue 12 item 4, `engine.event`: a webhook that names `engine.event` receives every raw
//! whatsapp-rust event of the session (`{event: "events.<Variant>", data}`, secrets
//! redacted) — the connection after pairing, an incoming message — while a `*` webhook
//! of the same session never does (WAHA keeps it out of the wildcard). Both stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const ENG: &str = "15550009401";
const PEER: &str = "15550009402";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn engine_event_goes_only_to_webhooks_that_name_it() {
    for store in StoreKind::all("engine_event") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let retries = json!({"delaySeconds": 0.05, "attempts": 200, "policy": "constant"});
        let body = json!({
            "name": "eng",
            "config": {"webhooks": [
                {"url": sink.url("/raw"), "events": ["engine.event"], "retries": retries},
                {"url": sink.url("/all"), "events": ["*"], "retries": retries},
            ]},
        });
        app.pair_created(&net, &body.to_string(), "eng", ENG).await;
        app.pair(&net, "peer", PEER).await;
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "peer", "chatId": format!("{ENG}@c.us"), "text": "raw hello"})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);

        // The `*` webhook gets the message, as a `message` event.
        eventually(Duration::from_secs(60), "the message on /all", || async {
            sink.delivered("/all")
                .iter()
                .map(|r| r.json())
                .find(|e| e["event"] == "message" && e["payload"]["body"] == "raw hello")
                .map(drop)
                .ok_or_else(|| format!("{} on /all", sink.delivered("/all").len()))
        })
        .await;
        // The engine.event webhook gets the raw events: the connection, and the message.
        let raw: Vec<Value> = eventually(Duration::from_secs(60), "raw events", || async {
            let got: Vec<Value> = sink.delivered("/raw").iter().map(|r| r.json()).collect();
            let names: Vec<String> = got
                .iter()
                .map(|e| e["payload"]["event"].as_str().unwrap_or("").to_string())
                .collect();
            let connected = names.iter().any(|n| n == "events.Connected");
            let message = got.iter().any(|e| {
                e["payload"]["event"]
                    .as_str()
                    .is_some_and(|n| n.starts_with("events.Message"))
                    && e["payload"]["data"].to_string().contains("raw hello")
            });
            if connected && message {
                Ok(got)
            } else {
                Err(format!("{names:?}"))
            }
        })
        .await;
        for e in &raw {
            assert_eq!(e["event"], "engine.event", "{e}");
            assert_eq!(e["session"], "eng", "{e}");
            let text = e["payload"].to_string();
            assert!(!text.contains("\"mediaKey\":["), "{text}");
            assert!(!text.contains("\"media_key\":["), "{text}");
        }
        // Never through `*`.
        let all = sink.delivered("/all");
        assert!(
            all.iter().all(|r| r.json()["event"] != "engine.event"),
            "{:?}",
            all.iter()
                .map(|r| r.json()["event"].clone())
                .collect::<Vec<_>>()
        );
    }
}
