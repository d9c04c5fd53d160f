//! Issue 11 item 7 end to end: a session paired to a mock phone that already has chats
//! shows them right after pairing — `GET /chats`, `/chats/{id}/messages`,
//! `/contacts/all` and `/lids` — from the history sync the phone pushes (mockwa's
//! `INITIAL_BOOTSTRAP` blob), without `message` webhooks; on both stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550001111";
const B: &str = "15550002222";
const C: &str = "15550003333";
const T0: u64 = 1_700_000_000;

fn seed() -> Vec<mockwa::SeedChat> {
    let msg = |id: &str, from_me: bool, text: &str, dt: u64| mockwa::SeedMessage {
        id: id.into(),
        from_me,
        text: text.into(),
        timestamp: T0 + dt,
    };
    vec![
        mockwa::SeedChat {
            phone: B.into(),
            name: None,
            push_name: Some("Bea".into()),
            messages: vec![
                msg("3EB0HIST0001", false, "old hello from B", 0),
                msg("3EB0HIST0002", true, "old answer to B", 60),
            ],
        },
        mockwa::SeedChat {
            phone: C.into(),
            name: Some("Carol's chat".into()),
            push_name: None,
            messages: vec![msg("3EB0HIST0003", false, "C was here", 30)],
        },
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_shows_the_phones_chats_right_after_pairing() {
    for store in StoreKind::all("history_sync") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        net.seed_history(A, seed()).unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let body = json!({
            "name": "a",
            "config": {"webhooks": [{"url": sink.url("/a"), "events": ["*"]}]},
        });
        app.pair_created(&net, &body.to_string(), "a", A).await;

        let chats = eventually(Duration::from_secs(30), "synced chats", || async {
            let r = app.get("/api/a/chats?sortBy=id&sortOrder=asc").await;
            let v = r.json();
            // The chats come first, the push names that name them with the blob's end.
            if v.as_array()
                .is_some_and(|a| a.len() == 2 && a.iter().all(|c| c["name"].is_string()))
            {
                Ok(v)
            } else {
                Err(r.text)
            }
        })
        .await;
        let rows: Vec<(Value, Value, Value)> = chats
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["id"].clone(),
                    c["name"].clone(),
                    c["conversationTimestamp"].clone(),
                )
            })
            .collect();
        assert_eq!(
            rows,
            vec![
                (json!(format!("{B}@c.us")), json!("Bea"), json!(T0 + 60)),
                (
                    json!(format!("{C}@c.us")),
                    json!("Carol's chat"),
                    json!(T0 + 30)
                ),
            ]
        );
        let msgs = app
            .get(&format!("/api/a/chats/{B}@c.us/messages?sortOrder=asc"))
            .await
            .json();
        let got: Vec<(Value, Value, Value)> = msgs
            .as_array()
            .unwrap()
            .iter()
            .map(|m| (m["id"].clone(), m["fromMe"].clone(), m["body"].clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    json!(format!("false_{B}@c.us_3EB0HIST0001")),
                    json!(false),
                    json!("old hello from B")
                ),
                (
                    json!(format!("true_{B}@c.us_3EB0HIST0002")),
                    json!(true),
                    json!("old answer to B")
                ),
            ]
        );
        assert_eq!(msgs[0]["from"], format!("{B}@c.us"));
        assert_eq!(msgs[1]["to"], format!("{B}@c.us"));

        // Contacts and LIDs from the blob.
        let all = app.get("/api/contacts/all?session=a").await.json();
        let b = all
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == format!("{B}@c.us").as_str())
            .unwrap_or_else(|| panic!("{all}"));
        assert_eq!(b["pushname"], "Bea");
        let lids = app.get("/api/a/lids").await.json();
        for phone in [B, C] {
            assert!(
                lids.as_array()
                    .unwrap()
                    .iter()
                    .any(|p| p["pn"] == format!("{phone}@c.us").as_str()
                        && p["lid"].as_str().is_some_and(|l| l.ends_with("@lid"))),
                "{phone} in {lids}"
            );
        }

        // No `message` webhooks for history (WAHA fires none): a live message after the
        // sync is the only one.
        app.pair(&net, "b", B).await;
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "b", "chatId": format!("{A}@c.us"), "text": "live"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        eventually(Duration::from_secs(30), "the live message", || async {
            let bodies: Vec<String> = sink
                .delivered("/a")
                .iter()
                .map(crate::support::sink::Received::json)
                .filter(|v| v["event"] == "message")
                .map(|v| v["payload"]["body"].as_str().unwrap_or("").to_string())
                .collect();
            if bodies.iter().any(|b| b == "live") {
                Ok(bodies)
            } else {
                Err(format!("{bodies:?}"))
            }
        })
        .await
        .into_iter()
        .for_each(|b| assert_eq!(b, "live", "history must not fire `message`"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_depth_keeps_the_newest_messages_per_chat() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    net.seed_history(A, seed()).unwrap();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHARF_HISTORY_SYNC_DEPTH", "1")],
    )
    .await;
    app.pair(&net, "a", A).await;
    let msgs = eventually(Duration::from_secs(30), "B's synced chat", || async {
        let r = app
            .get(&format!("/api/a/chats/{B}@c.us/messages?sortOrder=asc"))
            .await;
        let v = r.json();
        if v.as_array().is_some_and(|a| !a.is_empty()) {
            Ok(v)
        } else {
            Err(r.text)
        }
    })
    .await;
    let bodies: Vec<&str> = msgs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert_eq!(bodies, ["old answer to B"], "{msgs}");
}

/// The phone's history is large: 50 chats of 40 messages each (2,000), sent the way
/// WhatsApp sends all but the smallest history — an encrypted blob on the CDN that the
/// companion downloads (mockwa `external: true`, so the inline path cannot serve it) and
/// wharf reads chat by chat. Depth 25 keeps each chat's newest 25; no `message` webhooks.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_history_arrives_through_the_cdn_blob() {
    const CHATS: u64 = 50;
    const PER_CHAT: u64 = 40;
    const DEPTH: usize = 25;
    let peer = |c: u64| format!("1555100{c:04}");
    let chats: Vec<mockwa::SeedChat> = (0..CHATS)
        .map(|c| mockwa::SeedChat {
            phone: peer(c),
            name: None,
            push_name: Some(format!("Peer {c}")),
            messages: (0..PER_CHAT)
                .map(|m| mockwa::SeedMessage {
                    id: format!("3EB0BULK{c:03}{m:03}"),
                    from_me: m % 3 == 0,
                    text: format!("chat {c} message {m}"),
                    timestamp: T0 + c * 1000 + m,
                })
                .collect(),
        })
        .collect();
    for store in StoreKind::all("history_cdn") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        net.seed_history_with(
            A,
            mockwa::SeedHistory {
                chats: chats.clone(),
                external: Some(true),
            },
        )
        .unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[("WHARF_HISTORY_SYNC_DEPTH", "25")]).await;
        let body = json!({
            "name": "a",
            "config": {"webhooks": [{"url": sink.url("/a"), "events": ["message"]}]},
        });
        app.pair_created(&net, &body.to_string(), "a", A).await;

        // Every chat, named by its peer's push name (the blob's end): the whole blob was read.
        let listed = eventually(Duration::from_secs(60), "50 synced chats", || async {
            let r = app.get("/api/a/chats?limit=1000").await;
            let v = r.json();
            if v.as_array().is_some_and(|a| {
                a.len() == CHATS as usize && a.iter().all(|c| c["name"].is_string())
            }) {
                Ok(v)
            } else {
                Err(format!("{} chats", v.as_array().map_or(0, Vec::len)))
            }
        })
        .await;
        let mut ids: Vec<String> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        ids.sort();
        let want: Vec<String> = (0..CHATS).map(|c| format!("{}@c.us", peer(c))).collect();
        assert_eq!(ids, want);
        // Each chat keeps its newest 25 messages, in order.
        for c in [0, CHATS / 2, CHATS - 1] {
            let msgs = app
                .get(&format!(
                    "/api/a/chats/{}@c.us/messages?sortOrder=asc&limit=1000",
                    peer(c)
                ))
                .await
                .json();
            let bodies: Vec<&str> = msgs
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|m| m["body"].as_str())
                .collect();
            let want: Vec<String> = (PER_CHAT - DEPTH as u64..PER_CHAT)
                .map(|m| format!("chat {c} message {m}"))
                .collect();
            assert_eq!(bodies, want, "chat {c}");
        }
        // The peers' LID pairs came with it.
        let count = app.get("/api/a/lids/count").await.json();
        assert!(
            count["count"].as_u64().is_some_and(|n| n >= CHATS),
            "{count}"
        );

        // No `message` webhook for any of it: a live message after the sync is the only one.
        app.pair(&net, "b", B).await;
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "b", "chatId": format!("{A}@c.us"), "text": "live"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        eventually(Duration::from_secs(30), "the live message", || async {
            let bodies: Vec<String> = sink
                .delivered("/a")
                .iter()
                .map(crate::support::sink::Received::json)
                .filter(|v| v["event"] == "message")
                .map(|v| v["payload"]["body"].as_str().unwrap_or("").to_string())
                .collect();
            if bodies.iter().any(|b| b == "live") {
                Ok(bodies)
            } else {
                Err(format!("{bodies:?}"))
            }
        })
        .await
        .into_iter()
        .for_each(|b| assert_eq!(b, "live", "history must not fire `message`"));
    }
}
