//! Issue 12 item 3 (the channel management part) end to end: `alice` creates a channel,
//! `bob` follows, mutes, unmutes and unfollows it, `alice` deletes it — each step seen
//! through WAHA's `Channel` answers of both sessions; WhatsApp's refusals are 4xx. Both
//! stores, through mockwa's newsletters.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

const ALICE: &str = "15550009001";
const BOB: &str = "15550009002";

fn ok(r: &crate::support::app::Reply, status: u16) -> Value {
    assert_eq!(r.status, status, "{}", r.text);
    if r.text.is_empty() {
        Value::Null
    } else {
        r.json()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_follow_mute_unfollow_and_delete_a_channel() {
    for store in StoreKind::all("channels") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "alice", ALICE).await;
        app.pair(&net, "bob", BOB).await;

        let created = ok(
            &app.post(
                "/api/alice/channels",
                &json!({"name": "Wharf news", "description": "All about wharf"}).to_string(),
            )
            .await,
            201,
        );
        let id = created["id"].as_str().unwrap().to_string();
        assert!(id.ends_with("@newsletter"), "{created}");
        assert_eq!(created["name"], "Wharf news");
        assert_eq!(created["description"], "All about wharf");
        assert_eq!(created["role"], "OWNER");
        assert_eq!(created["verified"], false);
        assert_eq!(created["subscribersCount"], 0);
        assert!(
            created["invite"]
                .as_str()
                .unwrap()
                .starts_with("https://www.whatsapp.com/channel/"),
            "{created}"
        );

        // Bob sees it as a guest (by id, and by invite code or link), follows it, and
        // then is a subscriber.
        let seen = ok(&app.get(&format!("/api/bob/channels/{id}")).await, 200);
        assert_eq!(seen["role"], "GUEST");
        let link = created["invite"].as_str().unwrap().to_string();
        let code = link.rsplit('/').next().unwrap().to_string();
        let by_code = ok(&app.get(&format!("/api/bob/channels/{code}")).await, 200);
        assert_eq!(by_code["id"], id.as_str());
        let encoded = link.replace(':', "%3A").replace('/', "%2F");
        let by_link = ok(&app.get(&format!("/api/bob/channels/{encoded}")).await, 200);
        assert_eq!(by_link["id"], id.as_str());
        let r = app.get("/api/bob/channels/nosuchcode").await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(ok(&app.get("/api/bob/channels").await, 200), json!([]));
        ok(
            &app.post(&format!("/api/bob/channels/{id}/follow"), "{}")
                .await,
            201,
        );
        let seen = ok(&app.get(&format!("/api/bob/channels/{id}")).await, 200);
        assert_eq!(seen["role"], "SUBSCRIBER");
        let mine = ok(&app.get(&format!("/api/alice/channels/{id}")).await, 200);
        assert_eq!(mine["subscribersCount"], 1);
        let listed = ok(&app.get("/api/bob/channels?role=SUBSCRIBER").await, 200);
        assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
        assert_eq!(listed[0]["id"], id.as_str());
        assert_eq!(
            ok(&app.get("/api/bob/channels?role=OWNER").await, 200),
            json!([])
        );
        let owned = ok(&app.get("/api/alice/channels?role=OWNER").await, 200);
        assert_eq!(owned[0]["id"], id.as_str());

        // Alice posts; bob, a follower, receives it as a message from the channel.
        let sent = ok(
            &app.post(
                "/api/sendText",
                &json!({"session": "alice", "chatId": id, "text": "first post"}).to_string(),
            )
            .await,
            201,
        );
        assert_eq!(sent["to"], id.as_str(), "{sent}");
        let history = format!("/api/bob/chats/{id}/messages?limit=20");
        let got = eventually(Duration::from_secs(30), "bob gets the post", || async {
            let r = app.get(&history).await;
            let list = r.json();
            list.as_array()
                .and_then(|l| l.iter().find(|m| m["body"] == "first post").cloned())
                .ok_or_else(|| r.text.clone())
        })
        .await;
        assert_eq!(got["from"], id.as_str(), "{got}");
        assert_eq!(got["fromMe"], false);
        // The preview lists the post, for a follower and for the owner.
        let preview = ok(
            &app.get(&format!(
                "/api/bob/channels/{id}/messages/preview?limit=5&downloadMedia=false"
            ))
            .await,
            200,
        );
        assert_eq!(preview.as_array().map(Vec::len), Some(1), "{preview}");
        assert_eq!(preview[0]["message"]["body"], "first post");
        assert_eq!(preview[0]["message"]["fromMe"], false);
        assert_eq!(preview[0]["message"]["from"], id.as_str());
        assert_eq!(preview[0]["reactions"], json!({}));
        let own = ok(
            &app.get(&format!(
                "/api/alice/channels/{id}/messages/preview?limit=5&downloadMedia=false"
            ))
            .await,
            200,
        );
        assert_eq!(own[0]["message"]["fromMe"], true, "{own}");
        // Only the owner posts.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "bob", "chatId": id, "text": "not mine"}).to_string(),
            )
            .await;
        assert_ne!(r.status, 500, "{}", r.text);

        // Mute and unmute; only a follower can.
        ok(
            &app.post(&format!("/api/bob/channels/{id}/mute"), "{}")
                .await,
            201,
        );
        ok(
            &app.post(&format!("/api/bob/channels/{id}/unmute"), "{}")
                .await,
            201,
        );

        // Bob cannot delete alice's channel; he unfollows it.
        let r = app.delete(&format!("/api/bob/channels/{id}")).await;
        assert_eq!(r.status, 403, "{}", r.text);
        ok(
            &app.post(&format!("/api/bob/channels/{id}/unfollow"), "{}")
                .await,
            201,
        );
        assert_eq!(ok(&app.get("/api/bob/channels").await, 200), json!([]));
        // A post after the unfollow does not reach bob: a direct message sent after it
        // arrives, the post never does.
        ok(
            &app.post(
                "/api/sendText",
                &json!({"session": "alice", "chatId": id, "text": "after unfollow"}).to_string(),
            )
            .await,
            201,
        );
        ok(
            &app.post(
                "/api/sendText",
                &json!({"session": "alice", "chatId": format!("{BOB}@c.us"), "text": "barrier"})
                    .to_string(),
            )
            .await,
            201,
        );
        let direct = format!("/api/bob/chats/{ALICE}@c.us/messages?limit=20");
        eventually(Duration::from_secs(30), "bob gets the barrier", || async {
            let r = app.get(&direct).await;
            r.text
                .contains("barrier")
                .then_some(())
                .ok_or_else(|| r.text.clone())
        })
        .await;
        let r = app.get(&history).await;
        assert!(!r.text.contains("after unfollow"), "{}", r.text);
        let r = app
            .post(&format!("/api/bob/channels/{id}/mute"), "{}")
            .await;
        assert_eq!(r.status, 403, "not a follower: {}", r.text);

        // Alice deletes it: it is gone for both.
        ok(&app.delete(&format!("/api/alice/channels/{id}")).await, 200);
        let r = app.get(&format!("/api/bob/channels/{id}")).await;
        assert_eq!(r.status, 404, "{}", r.text);
        assert_eq!(ok(&app.get("/api/alice/channels").await, 200), json!([]));

        // Bad input.
        let r = app.get("/api/alice/channels/123@c.us").await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app
            .post("/api/alice/channels", &json!({"name": " "}).to_string())
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app
            .post("/api/alice/channels/999@newsletter/follow", "{}")
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app.get("/api/alice/channels?role=KING").await;
        assert_eq!(r.status, 400, "{}", r.text);
    }
}
