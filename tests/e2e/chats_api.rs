//! `💬 Chats` read routes end to end: the WORKING gate, chat-id validation, and history
//! seeded into the store read back through the API, on every store.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use wharf::messages::MessageStore;
use wharf::model::message::{MessageSource, WAMessage, ack, message_id};

use crate::support::app::{StoreKind, TestApp};
use crate::support::messages::message_store;

const CHAT: &str = "15550002222@c.us";
const OTHER: &str = "15550003333@c.us";
const GROUP: &str = "120363000000000001@g.us";

/// Every read route of this file, as (method, path with `{s}` for the session).
const ROUTES: [(&str, &str); 7] = [
    ("GET", "/api/{s}/chats"),
    ("GET", "/api/{s}/chats/overview"),
    ("POST", "/api/{s}/chats/overview"),
    ("GET", "/api/{s}/chats/15550002222@c.us/messages"),
    (
        "GET",
        "/api/{s}/chats/15550002222@c.us/messages/false_15550002222@c.us_AAA",
    ),
    ("POST", "/api/{s}/chats/15550002222@c.us/messages/read"),
    ("GET", "/api/{s}/chats/not-a-chat/messages"),
];

async fn call(app: &TestApp, method: &str, path: &str) -> crate::support::app::Reply {
    let method = Method::from_bytes(method.as_bytes()).expect("method");
    let body = (method == Method::POST).then_some(r#"{"pagination":{"limit":5}}"#);
    app.request(method, path, Some(crate::support::app::API_KEY), body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_routes_need_a_working_session() {
    for store in StoreKind::all("chats_routes_need_a_working_session") {
        let app = TestApp::spawn(store).await;
        let r = app
            .post("/api/sessions", r#"{"name":"x","start":false}"#)
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for (method, path) in ROUTES {
            // A stopped session: WAHA's status body, even before the chat id is checked.
            let r = call(&app, method, &path.replace("{s}", "x")).await;
            assert_eq!(r.status, 422, "{method} {path}: {}", r.text);
            assert_eq!(
                r.text,
                r#"{"error":"Session status is not as expected. Try again later or restart the session","session":"x","status":"STOPPED","expected":["WORKING"]}"#,
                "{method} {path}"
            );
            // An unknown session.
            let r = call(&app, method, &path.replace("{s}", "nope")).await;
            assert_eq!(r.status, 422, "{method} {path}: {}", r.text);
            assert_eq!(
                r.text, r#"{"error":"Session \"nope\" does not exist","session":"nope"}"#,
                "{method} {path}"
            );
        }
        // Still behind the API key.
        let r = app.request(Method::GET, "/api/x/chats", None, None).await;
        assert_eq!(r.status, 401);
    }
}

fn message(chat: &str, wa: &str, ts: i64, from_me: bool, ack_code: i32, body: &str) -> WAMessage {
    let participant = chat.ends_with("@g.us").then_some("15550004444@c.us");
    WAMessage {
        id: message_id(from_me, chat, wa, participant),
        timestamp: ts,
        from: if from_me { "15550001111@c.us" } else { chat }.to_string(),
        from_me,
        source: if from_me {
            MessageSource::Api
        } else {
            MessageSource::App
        },
        to: Some(if from_me { chat } else { "15550001111@c.us" }.to_string()),
        participant: participant.map(String::from),
        author: None,
        body: body.to_string(),
        has_media: false,
        media: None,
        media_url: None,
        ack: ack_code,
        ack_name: ack::name(ack_code).to_string(),
        location: None,
        v_cards: vec![],
        reply_to: None,
        data: serde_json::Map::new(),
    }
}

/// Seeds 12 messages in CHAT (t = 1000..1011, alternating fromMe), one in OTHER (named
/// "Carol", t=2000) and one in GROUP (t=500). Times are recent so `read` (7 days) sees
/// them.
async fn seed(m: &MessageStore, session: &str, base: i64) -> Vec<WAMessage> {
    let mut all = Vec::new();
    for i in 0..12 {
        let from_me = i % 2 == 1;
        let ack_code = if from_me { ack::DEVICE } else { ack::SERVER };
        all.push(message(
            CHAT,
            &format!("M{i:02}"),
            base + i,
            from_me,
            ack_code,
            &format!("msg {i}"),
        ));
    }
    let mut carol = message(OTHER, "C1", base + 1000, false, ack::DEVICE, "from carol");
    carol.data = json!({"pushName": "Carol"}).as_object().cloned().unwrap();
    all.push(carol);
    all.push(message(
        GROUP,
        "G1",
        base - 500,
        false,
        ack::DEVICE,
        "group hi",
    ));
    for m_ in &all {
        m.save(session, m_).await.expect("seed");
    }
    all
}

/// Drops the chats the engine itself recorded during pairing (the self chat), so the
/// assertions see only what this test seeded.
fn seeded_only(v: Value) -> Value {
    let seeded = [CHAT, OTHER, GROUP];
    Value::Array(
        v.as_array()
            .expect("array")
            .iter()
            .filter(|c| seeded.iter().any(|id| c["id"] == *id))
            .cloned()
            .collect(),
    )
}

fn json_of(v: &[&WAMessage]) -> Value {
    serde_json::to_value(v).unwrap()
}

async fn r_first(app: &TestApp) -> serde_json::Value {
    app.get(&format!("/api/alice/chats/{CHAT}/messages"))
        .await
        .json()[0]
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_api_reads_stored_history() {
    for store in StoreKind::all("chats_api_reads_stored_history") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "alice", "15550001111").await;
        let m = message_store(&app).await;
        let base = chrono::Utc::now().timestamp() - 3_600;
        let all = seed(&m, "alice", base).await;
        let chat_msgs: Vec<&WAMessage> = all[..12].iter().collect();
        let newest_first: Vec<&WAMessage> = chat_msgs.iter().rev().copied().collect();

        // Messages: default page = 10, newest first, exact WAMessage JSON.
        let r = app.get(&format!("/api/alice/chats/{CHAT}/messages")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json_of(&newest_first[..10]));
        // `limit=0` is no limit, as WAHA's paginators read it (`if (limit)`).
        let r = app
            .get(&format!("/api/alice/chats/{CHAT}/messages?limit=0"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json_of(&newest_first));
        let r = app.get("/api/alice/chats/overview?limit=0").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let all_chats = app.get("/api/alice/chats").await.json();
        assert_eq!(
            r.json().as_array().map(Vec::len),
            all_chats.as_array().map(Vec::len)
        );
        let first = &r_first(&app).await;
        let keys: Vec<&String> = first.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            [
                "id",
                "timestamp",
                "from",
                "fromMe",
                "source",
                "to",
                "participant",
                "author",
                "body",
                "hasMedia",
                "media",
                "mediaUrl",
                "ack",
                "ackName",
                "location",
                "vCards",
                "replyTo",
                "_data"
            ]
        );
        // Paging and ascending order; percent-encoded chat id.
        let r = app
            .get("/api/alice/chats/15550002222%40c.us/messages?limit=3&offset=2&sortOrder=asc&sortBy=timestamp&downloadMedia=false")
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json_of(&chat_msgs[2..5]));
        // Filters.
        let q = format!(
            "/api/alice/chats/{CHAT}/messages?limit=100&filter.timestamp.gte={}&filter.timestamp.lte={}&filter.fromMe=true",
            base + 3,
            base + 7
        );
        let r = app.get(&q).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let expected: Vec<&WAMessage> = newest_first
            .iter()
            .copied()
            .filter(|x| x.from_me && (base + 3..=base + 7).contains(&x.timestamp))
            .collect();
        assert_eq!(expected.len(), 3);
        assert_eq!(r.json(), json_of(&expected));
        let r = app
            .get(&format!(
                "/api/alice/chats/{CHAT}/messages?limit=100&filter.ack=SERVER&filter.fromMe=false"
            ))
            .await;
        assert_eq!(r.json().as_array().unwrap().len(), 6, "{}", r.text);
        let r = app
            .get(&format!("/api/alice/chats/{CHAT}/messages?filter.ack=READ"))
            .await;
        assert_eq!(r.json(), json!([]));

        // One message, by WAHA id or bare WhatsApp id; wrong chat or unknown = 404.
        let want = &chat_msgs[4];
        let r = app
            .get(&format!("/api/alice/chats/{CHAT}/messages/{}", want.id))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), serde_json::to_value(want).unwrap());
        let r = app
            .get(&format!(
                "/api/alice/chats/{CHAT}/messages/M04?downloadMedia=true"
            ))
            .await;
        assert_eq!(r.json(), serde_json::to_value(want).unwrap());
        let r = app
            .get(&format!("/api/alice/chats/{OTHER}/messages/{}", want.id))
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(
            r.text,
            r#"{"message":"Message not found","error":"Not Found","statusCode":404}"#
        );

        // Chats: by last message, newest first; named from the peer's push name.
        let r = app.get("/api/alice/chats").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            seeded_only(r.json()),
            json!([
                {"id": OTHER, "name": "Carol", "conversationTimestamp": base + 1000},
                {"id": CHAT, "name": null, "conversationTimestamp": base + 11},
                {"id": GROUP, "name": null, "conversationTimestamp": base - 500},
            ])
        );
        let r = app
            .get("/api/alice/chats?sortBy=id&sortOrder=desc&limit=2&offset=0")
            .await;
        let ids: Vec<Value> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(ids, [json!(OTHER), json!(CHAT)]);
        let r = app
            .get("/api/alice/chats?sortBy=messageTimestamp&sortOrder=asc")
            .await;
        assert_eq!(r.json()[0]["id"], GROUP);

        // Overview (GET and POST).
        let r = app
            .get(&format!(
                "/api/alice/chats/overview?limit=2&ids={GROUP},{CHAT},{OTHER}"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.json(),
            json!([
                {
                    "id": OTHER, "name": "Carol", "picture": null,
                    "lastMessage": serde_json::to_value(&all[12]).unwrap(),
                    "_chat": {"id": OTHER, "name": "Carol", "conversationTimestamp": base + 1000},
                },
                {
                    "id": CHAT, "name": null, "picture": null,
                    "lastMessage": serde_json::to_value(chat_msgs[11]).unwrap(),
                    "_chat": {"id": CHAT, "name": null, "conversationTimestamp": base + 11},
                },
            ])
        );
        let r = app
            .get(&format!("/api/alice/chats/overview?ids={GROUP}&ids={CHAT}"))
            .await;
        let ids: Vec<Value> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(ids, [json!(CHAT), json!(GROUP)]);
        let r = app
            .post(
                "/api/alice/chats/overview",
                &json!({"pagination": {"limit": 10, "offset": 1}, "filter": {"ids": [OTHER, GROUP]}}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let ids: Vec<Value> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].clone())
            .collect();
        assert_eq!(ids, [json!(GROUP)]);
        let r = app.post("/api/alice/chats/overview", "{}").await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(
            r.json()["message"],
            json!(["pagination should not be empty"])
        );

        // Read: incoming unread messages of the chat, newest first, limited.
        let r = app
            .post(
                &format!("/api/alice/chats/{CHAT}/messages/read?messages=2"),
                "",
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.json(),
            json!({"ids": [chat_msgs[10].id, chat_msgs[8].id]})
        );
        let r = app
            .get(&format!(
                "/api/alice/chats/{CHAT}/messages/{}",
                chat_msgs[10].id
            ))
            .await;
        assert_eq!(r.json()["ackName"], "READ");
        let r = app
            .post(&format!("/api/alice/chats/{CHAT}/messages/read"), "")
            .await;
        assert_eq!(r.json()["ids"].as_array().unwrap().len(), 4, "{}", r.text);
        let r = app
            .post(&format!("/api/alice/chats/{CHAT}/messages/read?days=7"), "")
            .await;
        assert_eq!(r.json(), json!({"ids": []}));

        // Bad input: 400s with clear messages.
        for path in [
            "/api/alice/chats/12345/messages",
            "/api/alice/chats/abc@c.us/messages",
            "/api/alice/chats/1@s.whatsapp.net/messages/x",
        ] {
            let r = app.get(path).await;
            assert_eq!(r.status, 400, "{path}: {}", r.text);
            assert!(
                r.json()["message"]
                    .as_str()
                    .unwrap()
                    .starts_with("chatId must be a valid WhatsApp chat id"),
                "{}",
                r.text
            );
        }
        let r = app.post("/api/alice/chats/12345/messages/read", "").await;
        assert_eq!(r.status, 400, "{}", r.text);
        for (query, message) in [
            (
                "limit=-1",
                "limit must not be less than 0 and must be an integer number",
            ),
            (
                "limit=abc",
                "limit must be a number conforming to the specified constraints",
            ),
            (
                "sortOrder=up",
                "sortOrder must be one of the following values: desc, asc",
            ),
            (
                "filter.fromMe=maybe",
                "filter.fromMe must be a boolean value",
            ),
            (
                "filter.ack=SEEN",
                "filter.ack must be one of the following values: ERROR, PENDING, SERVER, DEVICE, READ, PLAYED",
            ),
        ] {
            let r = app
                .get(&format!("/api/alice/chats/{CHAT}/messages?{query}"))
                .await;
            assert_eq!(r.status, 400, "{query}: {}", r.text);
            assert_eq!(
                r.json(),
                json!({"message": [message], "error": "Bad Request", "statusCode": 400}),
                "{query}"
            );
        }
        let r = app.get("/api/alice/chats?sortBy=unread").await;
        assert_eq!(r.status, 400, "{}", r.text);

        // History outlives a restart of the app.
        let app = app.restart().await;
        app.wait_status("alice", "WORKING", Duration::from_secs(40))
            .await;
        let r = app
            .get(&format!("/api/alice/chats/{CHAT}/messages?limit=1"))
            .await;
        assert_eq!(r.json()[0]["id"], json!(chat_msgs[11].id), "{}", r.text);
    }
}
