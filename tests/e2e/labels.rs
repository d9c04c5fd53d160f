//! Labels end to end (issue 12 item 1): labels and chat labels made on the session reach
//! the phone's app state, those made on the phone reach the session (store and `label.*`
//! webhooks), both listed through the GET routes, on both stores; WAHA's 400/404/422 for
//! bad input.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550004201";
const B: &str = "15550004202";
const C: &str = "15550004203";

/// Waits for the `n`-th (0-based) `event` on `/a` whose payload matches `pred`.
async fn wait_event(sink: &Sink, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    eventually(Duration::from_secs(30), event, || async {
        let all: Vec<Value> = sink
            .delivered("/a")
            .iter()
            .map(crate::support::sink::Received::json)
            .collect();
        all.iter()
            .find(|v| v["event"] == event && pred(&v["payload"]))
            .map(|v| v["payload"].clone())
            .ok_or_else(|| {
                format!(
                    "got {:?}",
                    all.iter()
                        .map(|v| format!("{} {}", v["event"], v["payload"]))
                        .collect::<Vec<_>>()
                )
            })
    })
    .await
}

async fn wait_phone(
    net: &mockwa::MockNetwork,
    what: &str,
    f: impl Fn(&mockwa::AppStateView) -> bool,
) {
    eventually(Duration::from_secs(30), what, || async {
        let v = net.app_state(A);
        if f(&v) { Ok(()) } else { Err(format!("{v:?}")) }
    })
    .await;
}

async fn wait_get(app: &TestApp, path: &str, want: Value) {
    eventually(Duration::from_secs(30), path, || async {
        let r = app.get(path).await;
        if r.status == 200 && r.json() == want {
            Ok(())
        } else {
            Err(format!("{} {}", r.status, r.text))
        }
    })
    .await;
}

fn phone_label(id: &str, name: &str, color: i32, deleted: bool) -> mockwa::LabelState {
    mockwa::LabelState {
        id: id.into(),
        name: name.into(),
        color,
        deleted,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labels_both_ways() {
    for store in StoreKind::all("labels") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let body = json!({
            "name": "a",
            "config": {"webhooks": [{
                "url": sink.url("/a"),
                "events": ["label.upsert", "label.deleted", "label.chat.added", "label.chat.deleted"],
                "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
            }]},
        });
        app.pair_created(&net, &body.to_string(), "a", A).await;
        let vip = json!({"id": "1", "name": "VIP", "color": 1, "colorHex": "#64c4ff"});

        // Created on the session: on the phone, in the store, as label.upsert.
        let r = app
            .post("/api/a/labels", r##"{"name":"VIP","colorHex":"#64c4ff"}"##)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json(), vip);
        wait_phone(&net, "label on the phone", |v| {
            v.labels == [phone_label("1", "VIP", 1, false)]
        })
        .await;
        assert_eq!(
            wait_event(&sink, "label.upsert", |p| p["id"] == "1").await,
            vip
        );
        assert_eq!(app.get("/api/a/labels").await.json(), json!([vip]));

        // Created on the phone: in the session's store, as label.upsert.
        net.phone_action(
            A,
            &mockwa::PhoneAction::LabelEdit {
                label_id: "7".into(),
                name: "Lead".into(),
                color: 3,
                deleted: false,
            },
        )
        .unwrap();
        let lead = json!({"id": "7", "name": "Lead", "color": 3, "colorHex": "#dfaef0"});
        assert_eq!(
            wait_event(&sink, "label.upsert", |p| p["id"] == "7").await,
            lead
        );
        wait_get(&app, "/api/a/labels", json!([vip, lead])).await;

        // A label on a chat, from the session.
        let chat_b = format!("{B}@c.us");
        let r = app
            .put(
                &format!("/api/a/labels/chats/{chat_b}"),
                r#"{"labels":[{"id":"1"}]}"#,
            )
            .await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        wait_phone(&net, "label on the chat on the phone", |v| {
            v.label_chats
                == [mockwa::LabelChatState {
                    label_id: "1".into(),
                    chat_id: format!("{B}@s.whatsapp.net"),
                }]
        })
        .await;
        let added = wait_event(&sink, "label.chat.added", |p| p["labelId"] == "1").await;
        assert_eq!(
            added,
            json!({"labelId": "1", "chatId": chat_b, "label": vip})
        );
        assert_eq!(
            app.get(&format!("/api/a/labels/chats/{chat_b}"))
                .await
                .json(),
            json!([vip])
        );
        assert_eq!(
            app.get("/api/a/labels/1/chats").await.json(),
            json!([{"id": chat_b}])
        );

        // …and from the phone.
        net.phone_action(
            A,
            &mockwa::PhoneAction::LabelChat {
                label_id: "7".into(),
                chat_id: format!("{C}@s.whatsapp.net"),
                labeled: true,
            },
        )
        .unwrap();
        let chat_c = format!("{C}@c.us");
        let added = wait_event(&sink, "label.chat.added", |p| p["labelId"] == "7").await;
        assert_eq!(
            added,
            json!({"labelId": "7", "chatId": chat_c, "label": lead})
        );
        wait_get(&app, "/api/a/labels/7/chats", json!([{"id": chat_c}])).await;
        wait_get(
            &app,
            &format!("/api/a/labels/chats/{chat_c}"),
            json!([lead]),
        )
        .await;

        // Replacing a chat's labels takes off the ones not listed.
        let r = app
            .put(
                &format!("/api/a/labels/chats/{chat_b}"),
                r#"{"labels":[{"id":"7"}]}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let deleted = wait_event(&sink, "label.chat.deleted", |p| p["labelId"] == "1").await;
        assert_eq!(deleted["chatId"], chat_b.as_str());
        wait_phone(&net, "labels of B replaced", |v| {
            v.label_chats
                .iter()
                .filter(|c| c.chat_id.starts_with(B))
                .count()
                == 1
                && v.label_chats
                    .iter()
                    .any(|c| c.chat_id.starts_with(B) && c.label_id == "7")
        })
        .await;
        assert_eq!(
            app.get(&format!("/api/a/labels/chats/{chat_b}"))
                .await
                .json(),
            json!([lead])
        );

        // Update and delete.
        let r = app
            .put("/api/a/labels/1", r#"{"name":"VIP2","color":2}"#)
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json(),
            json!({"id": "1", "name": "VIP2", "color": 2, "colorHex": "#ffd429"})
        );
        wait_phone(&net, "renamed on the phone", |v| {
            v.labels.contains(&phone_label("1", "VIP2", 2, false))
        })
        .await;
        let r = app.delete("/api/a/labels/1").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"result": true}));
        let gone = wait_event(&sink, "label.deleted", |p| p["id"] == "1").await;
        assert_eq!(gone["name"], "VIP2");
        wait_get(&app, "/api/a/labels", json!([lead])).await;
        wait_phone(&net, "deleted on the phone", |v| {
            v.labels.iter().any(|l| l.id == "1" && l.deleted)
        })
        .await;

        // Bad input.
        let cases: &[(&str, &str, u16, &str)] = &[
            (
                "POST",
                r#"{"name":"x"}"#,
                422,
                "'color' or 'colorHex' is required",
            ),
            (
                "POST",
                r##"{"name":"x","color":1,"colorHex":"#64c4ff"}"##,
                422,
                "Use either 'color' or 'colorHex'",
            ),
            (
                "POST",
                r##"{"name":"x","colorHex":"#123456"}"##,
                422,
                "Invalid 'colorHex'. Possible values: #ff9485",
            ),
            (
                "POST",
                r#"{"name":"Lead","color":0}"#,
                422,
                "Label with 'Lead' already exists, id: 7",
            ),
            ("POST", r#"{"color":1}"#, 400, "name must be a string"),
        ];
        for (method, body, status, message) in cases {
            assert_eq!(*method, "POST");
            let r = app.post("/api/a/labels", body).await;
            assert_eq!(r.status, *status, "{body}: {}", r.text);
            let got = r.json();
            let text = got["message"]
                .as_array()
                .map_or(&got["message"], |m| &m[0])
                .as_str()
                .unwrap()
                .to_string();
            assert!(text.starts_with(message), "{body}: {text}");
        }
        for r in [
            app.put("/api/a/labels/99", r#"{"name":"y","color":1}"#)
                .await,
            app.delete("/api/a/labels/99").await,
            app.put(
                &format!("/api/a/labels/chats/{chat_b}"),
                r#"{"labels":[{"id":"99"}]}"#,
            )
            .await,
        ] {
            assert_eq!(r.status, 404, "{}", r.text);
            assert_eq!(r.json()["message"], "Label not found");
        }
        let r = app.get("/api/a/labels/chats/not-a-chat").await;
        assert_eq!(r.status, 400, "{}", r.text);
        // Nothing of that reached the phone: still two labels ever made.
        assert_eq!(net.app_state(A).labels.len(), 2);
    }
}
