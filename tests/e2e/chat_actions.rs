//! Chat management end to end (issue 11 item 5): archive, unarchive and mark unread on a
//! session reach the phone's app state (mockwa decodes every patch with the account's
//! key), an archive made on the phone reaches the session as `chat.archive`, on both
//! stores; bad input gets WAHA's 400 / 422.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550004101";
const B: &str = "15550004102";

/// The `chat.archive` deliveries on `/a`, as `(id, archived)`.
fn archives(sink: &Sink) -> Vec<(String, bool)> {
    sink.delivered("/a")
        .iter()
        .map(crate::support::sink::Received::json)
        .filter(|v| v["event"] == "chat.archive")
        .map(|v| {
            let p: &Value = &v["payload"];
            assert!(p["timestamp"].as_i64().unwrap() > 1_600_000_000, "{p}");
            (
                p["id"].as_str().unwrap().to_string(),
                p["archived"].as_bool().unwrap(),
            )
        })
        .collect()
}

async fn wait_archives(sink: &Sink, want: &[(&str, bool)]) {
    let want: Vec<(String, bool)> = want.iter().map(|(c, a)| ((*c).to_string(), *a)).collect();
    eventually(Duration::from_secs(30), "chat.archive events", || async {
        let got = archives(sink);
        if got == want {
            Ok(())
        } else {
            Err(format!("got {got:?}"))
        }
    })
    .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_unarchive_unread_both_ways() {
    for store in StoreKind::all("chat_actions") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let body = json!({
            "name": "a",
            "config": {"webhooks": [{
                "url": sink.url("/a"),
                "events": ["chat.archive"],
                "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
            }]},
        });
        app.pair_created(&net, &body.to_string(), "a", A).await;
        let chat = format!("{B}@c.us");
        let jid = format!("{B}@s.whatsapp.net");

        // The session archives: the phone sees it, and the session's own change comes
        // back through the app-state sync as one chat.archive.
        let r = app.post(&format!("/api/a/chats/{chat}/archive"), "").await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        wait_phone(&net, "archived on the phone", |v| {
            v.archived == [jid.clone()]
        })
        .await;
        wait_archives(&sink, &[(&chat, true)]).await;

        // The phone unarchives: the session hears it.
        net.phone_action(
            A,
            &mockwa::PhoneAction::Archive {
                chat_id: jid.clone(),
                archived: false,
            },
        )
        .unwrap();
        wait_archives(&sink, &[(&chat, true), (&chat, false)]).await;
        assert!(net.app_state(A).archived.is_empty());

        // Archive again then unarchive from the session.
        let r = app.post(&format!("/api/a/chats/{chat}/archive"), "").await;
        assert_eq!(r.status, 201, "{}", r.text);
        wait_phone(&net, "archived again", |v| v.archived == [jid.clone()]).await;
        let r = app
            .post(&format!("/api/a/chats/{chat}/unarchive"), "")
            .await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        wait_phone(&net, "unarchived", |v| v.archived.is_empty()).await;
        wait_archives(
            &sink,
            &[(&chat, true), (&chat, false), (&chat, true), (&chat, false)],
        )
        .await;

        // Unread: the phone sees the chat marked unread.
        let r = app.post(&format!("/api/a/chats/{chat}/unread"), "").await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        wait_phone(&net, "unread on the phone", |v| v.unread == [jid.clone()]).await;

        // Bad input: a chat id that is none of WhatsApp's forms.
        for path in ["archive", "unarchive", "unread"] {
            let r = app
                .post(&format!("/api/a/chats/not-a-chat/{path}"), "")
                .await;
            assert_eq!(r.status, 400, "{}", r.text);
            assert!(
                r.json()["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("chatId must be a valid WhatsApp chat id"),
                "{}",
                r.text
            );
        }
        // A session that is not WORKING: WAHA's 422, nothing reaches the phone.
        let before = net.app_state(A).versions;
        assert_eq!(app.post("/api/sessions/a/stop", "").await.status, 201);
        let r = app.post(&format!("/api/a/chats/{chat}/archive"), "").await;
        assert_eq!(r.status, 422, "{}", r.text);
        assert_eq!(net.app_state(A).versions, before);
    }
}

/// Pins a message, reads chat pictures, clears and deletes a chat: two sessions (A and B).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_picture_clear_and_delete() {
    for store in StoreKind::all("chat_actions_more") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        app.pair(&net, "b", B).await;
        let chat = format!("{B}@c.us");
        let jid = format!("{B}@s.whatsapp.net");

        let send = |text: &'static str| {
            let body = json!({"session": "a", "chatId": chat, "text": text}).to_string();
            let app = &app;
            async move {
                let r = app.post("/api/sendText", &body).await;
                assert_eq!(r.status, 201, "{}", r.text);
                r.json()["id"].as_str().unwrap().to_string()
            }
        };
        let id = send("pin me").await;

        // Pin and unpin (WhatsApp's three durations only).
        let pin = format!("/api/a/chats/{chat}/messages/{id}/pin");
        let r = app.post(&pin, r#"{"duration":86400}"#).await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        // The pin is a message to everyone in the chat: B's session receives it as a
        // message of type `pin` naming the pinned message by B's id for it.
        let pinned_id = format!("false_{A}@c.us_{}", id.rsplit('_').next().unwrap());
        let pins = |n: usize| {
            let app = &app;
            let pinned_id = pinned_id.clone();
            async move {
                let r = app
                    .get(&format!("/api/b/chats/{A}@c.us/messages?sortOrder=asc"))
                    .await;
                let flags: Vec<bool> = r
                    .json()
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .filter(|m| {
                                m["_data"]["type"] == "pin"
                                    && m["_data"]["pinnedMessageId"] == pinned_id.as_str()
                            })
                            .map(|m| m["_data"]["pinned"] == true)
                            .collect()
                    })
                    .unwrap_or_default();
                // Both arrive within one second: the history orders them by id then.
                let mut flags = flags;
                flags.sort_unstable();
                let want: Vec<bool> = if n == 1 {
                    vec![true]
                } else {
                    vec![false, true]
                };
                if flags == want { Ok(()) } else { Err(r.text) }
            }
        };
        eventually(Duration::from_secs(15), "the pin at B", || pins(1)).await;
        let r = app
            .post(&format!("/api/a/chats/{chat}/messages/{id}/unpin"), "")
            .await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        eventually(Duration::from_secs(15), "the unpin at B", || pins(2)).await;
        let r = app.post(&pin, r#"{"duration":5}"#).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app.post(&pin, r#"{}"#).await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app
            .post(
                &format!("/api/a/chats/{chat}/messages/not-an-id/pin"),
                r#"{"duration":86400}"#,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);

        // Pictures: a contact without one, a group with one (the groups API sets it).
        let r = app
            .get(&format!("/api/a/chats/{chat}/picture?refresh=true"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"url": null}));
        let r = app
            .post(
                "/api/a/groups",
                &json!({"name": "pics", "participants": [{"id": chat}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let gid = r.json()["id"].as_str().unwrap().to_string();
        let data = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            [0xFF, 0xD8, 0xFF, 0xE0, b'p', b'i', b'c'],
        );
        let r = app
            .put(
                &format!("/api/a/groups/{gid}/picture"),
                &json!({"file": {"mimetype": "image/jpeg", "data": data}}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let group_url = app
            .get(&format!("/api/a/groups/{gid}/picture"))
            .await
            .json()["url"]
            .clone();
        assert!(group_url.is_string(), "{group_url}");
        let r = app.get(&format!("/api/a/chats/{gid}/picture")).await;
        assert_eq!(r.json(), json!({"url": group_url}));
        let r = app.get("/api/a/chats/not-a-chat/picture").await;
        assert_eq!(r.status, 400, "{}", r.text);

        // Clear: the phone sees clearChat, wharf's history of the chat is empty.
        let messages = format!("/api/a/chats/{chat}/messages");
        assert!(
            !app.get(&messages)
                .await
                .json()
                .as_array()
                .unwrap()
                .is_empty()
        );
        let r = app.delete(&messages).await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        wait_phone(&net, "clearChat on the phone", |v| {
            v.indexes.contains(&vec![
                "clearChat".into(),
                jid.clone(),
                "0".into(),
                "0".into(),
            ])
        })
        .await;
        assert_eq!(app.get(&messages).await.json(), json!([]));

        // Delete: the phone sees deleteChat, the chat is gone from GET /chats.
        send("after clear").await;
        let has_chat = |chats: &Value| {
            chats
                .as_array()
                .unwrap()
                .iter()
                .any(|c| c["id"] == chat.as_str())
        };
        assert!(has_chat(&app.get("/api/a/chats").await.json()));
        let r = app.delete(&format!("/api/a/chats/{chat}")).await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        wait_phone(&net, "deleteChat on the phone", |v| {
            v.indexes
                .contains(&vec!["deleteChat".into(), jid.clone(), "0".into()])
        })
        .await;
        assert_eq!(app.get(&messages).await.json(), json!([]));
        assert!(!has_chat(&app.get("/api/a/chats").await.json()));
        let r = app.delete("/api/a/chats/not-a-chat").await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
}
