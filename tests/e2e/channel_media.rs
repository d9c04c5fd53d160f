//! Issue 12, media posts to channels end to end: `alice` creates a channel, `bob`
//! follows it; alice posts an image (by loopback URL), a voice note, a video and a file
//! (by base64) with `/api/send*` to the `…@newsletter` chat; bob's webhook gets each as
//! a `message` from the channel with `hasMedia` and a `media.url` that serves the same
//! bytes; the preview lists them. The uploads go through mockwa's plaintext channel CDN,
//! which refuses a post that carries a media key or names no upload — so this fails if
//! wharf encrypts channel media. Bad input and a channel bob does not own are 4xx.
//! Both stores.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const ALICE: &str = "15550009101";
const BOB: &str = "15550009102";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn bytes(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

/// A loopback HTTP server answering every GET with `body`; stops when the task is dropped.
async fn serve_once_per_conn(body: Vec<u8>) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/photo.jpg", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = sock.write_all(head.as_bytes()).await;
                let _ = sock.write_all(&body).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    (url, task)
}

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
            "events": ["message"],
            "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
        }]},
    });
    app.pair_created(net, &body.to_string(), name, phone).await;
}

/// The `message` event at `path` whose id ends with `wa_id`, once its media is there.
async fn wait_media(sink: &Sink, path: &str, wa_id: &str) -> Value {
    eventually(
        Duration::from_secs(40),
        &format!("message {wa_id} at {path}"),
        || async {
            let all: Vec<Value> = sink
                .delivered(path)
                .iter()
                .map(crate::support::sink::Received::json)
                .collect();
            all.iter()
                .find(|v| {
                    v["event"] == "message"
                        && v["payload"]["id"]
                            .as_str()
                            .is_some_and(|id| id.ends_with(wa_id))
                })
                .map(|v| v["payload"].clone())
                .ok_or_else(|| format!("got {all:?}"))
        },
    )
    .await
}

/// GETs a `/api/files/…` URL's path on `app`.
async fn fetch(app: &TestApp, url: &str) -> (u16, Vec<u8>) {
    let path = url
        .find("/api/files/")
        .map(|i| &url[i..])
        .unwrap_or_else(|| panic!("not a files URL: {url}"));
    let res = reqwest::Client::new()
        .get(format!("{}{path}", app.base))
        .header("X-Api-Key", API_KEY)
        .send()
        .await
        .expect("GET media");
    let status = res.status().as_u16();
    (status, res.bytes().await.expect("body").to_vec())
}

fn wa_id(sent: &Value) -> String {
    sent["id"]
        .as_str()
        .and_then(|id| id.rsplit('_').next())
        .unwrap_or_else(|| panic!("no id: {sent}"))
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn media_posts_reach_followers_in_the_clear() {
    for store in StoreKind::all("channel_media") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        pair_hooked(&app, &net, &sink, "alice", ALICE).await;
        pair_hooked(&app, &net, &sink, "bob", BOB).await;

        let r = app
            .post(
                "/api/alice/channels",
                &json!({"name": "Pictures"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let channel = r.json()["id"].as_str().unwrap().to_string();
        let r = app
            .post(&format!("/api/bob/channels/{channel}/follow"), "{}")
            .await;
        assert_eq!(r.status, 201, "{}", r.text);

        // An image by URL (a loopback server), with a caption.
        let image = bytes(1, 5000);
        let (image_url, server) = serve_once_per_conn(image.clone()).await;
        let r = app
            .post(
                "/api/sendImage",
                &json!({"session": "alice", "chatId": channel, "caption": "a picture",
                        "file": {"mimetype": "image/jpeg", "url": image_url}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sent = r.json();
        assert_eq!(sent["to"], channel.as_str(), "{sent}");
        assert_eq!(sent["fromMe"], true);
        assert_eq!(sent["hasMedia"], true);
        assert_eq!(sent["body"], "a picture");
        assert!(
            sent["id"]
                .as_str()
                .unwrap()
                .starts_with(&format!("true_{channel}_")),
            "{sent}"
        );
        // The message as sent carries the plaintext hash, never a media key.
        let msg = &sent["_data"]["message"];
        let raw = if msg["imageMessage"].is_null() {
            &msg["image_message"]
        } else {
            &msg["imageMessage"]
        };
        assert!(raw.is_object(), "{sent}");
        assert!(
            !raw["fileSha256"].is_null() || !raw["file_sha256"].is_null(),
            "{sent}"
        );
        assert!(
            raw["mediaKey"].is_null() && raw["media_key"].is_null(),
            "{sent}"
        );
        let got = wait_media(&sink, "/bob", &wa_id(&sent)).await;
        assert_eq!(got["from"], channel.as_str(), "{got}");
        assert_eq!(got["fromMe"], false);
        assert_eq!(got["hasMedia"], true);
        assert_eq!(got["body"], "a picture");
        assert_eq!(got["media"]["mimetype"], "image/jpeg", "{got}");
        let url = got["media"]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("no media url: {got}"));
        let (status, body) = fetch(&app, url).await;
        assert_eq!(status, 200);
        assert!(body == image, "the image downloads byte-identical");
        drop(server);

        // A voice note, a video and a file by base64.
        let voice = bytes(2, 3000);
        let video = bytes(3, 7000);
        let doc = bytes(4, 1234);
        for (path, body, want, mimetype) in [
            (
                "/api/sendVoice",
                json!({"session": "alice", "chatId": channel, "convert": false,
                       "file": {"mimetype": "audio/ogg; codecs=opus", "data": b64(&voice)}}),
                &voice,
                "audio/ogg; codecs=opus",
            ),
            (
                "/api/sendVideo",
                json!({"session": "alice", "chatId": channel, "convert": false,
                       "caption": "a clip",
                       "file": {"mimetype": "video/mp4", "data": b64(&video)}}),
                &video,
                "video/mp4",
            ),
            (
                "/api/sendFile",
                json!({"session": "alice", "chatId": channel, "caption": "the report",
                       "file": {"mimetype": "application/pdf", "filename": "report.pdf",
                                "data": b64(&doc)}}),
                &doc,
                "application/pdf",
            ),
        ] {
            let r = app.post(path, &body.to_string()).await;
            assert_eq!(r.status, 201, "{path}: {}", r.text);
            let sent = r.json();
            assert_eq!(sent["hasMedia"], true, "{path}: {sent}");
            let got = wait_media(&sink, "/bob", &wa_id(&sent)).await;
            assert_eq!(got["hasMedia"], true, "{path}: {got}");
            assert_eq!(got["media"]["mimetype"], mimetype, "{path}: {got}");
            let url = got["media"]["url"]
                .as_str()
                .unwrap_or_else(|| panic!("{path}: no media url: {got}"));
            let (status, body) = fetch(&app, url).await;
            assert_eq!(status, 200, "{path}");
            assert!(&body == want, "{path}: downloads byte-identical");
            if path == "/api/sendFile" {
                assert_eq!(got["media"]["filename"], "report.pdf", "{got}");
                assert_eq!(got["body"], "the report");
            }
        }

        // The preview lists the media posts, for the owner and the follower.
        for who in ["alice", "bob"] {
            let r = app
                .get(&format!(
                    "/api/{who}/channels/{channel}/messages/preview?limit=10&downloadMedia=false"
                ))
                .await;
            assert_eq!(r.status, 200, "{}", r.text);
            let posts = r.json();
            let posts = posts.as_array().unwrap();
            assert_eq!(posts.len(), 4, "{who}: {posts:?}");
            assert!(
                posts.iter().all(|p| p["message"]["hasMedia"] == true),
                "{who}: {posts:?}"
            );
            assert_eq!(posts[0]["message"]["body"], "a picture");
            assert_eq!(posts[0]["message"]["fromMe"], who == "alice");
        }

        // Bad input: WAHA's 400s, nothing sent.
        let r = app
            .post(
                "/api/sendImage",
                &json!({"session": "alice", "chatId": channel,
                        "file": {"mimetype": "image/png", "data": "not base64!!"}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(
            r.text,
            r#"{"message":["file.data must be base64 encoded"],"error":"Bad Request","statusCode":400}"#
        );
        let refused = "http://169.254.169.254/latest/meta-data";
        let r = app
            .post(
                "/api/sendImage",
                &json!({"session": "alice", "chatId": channel,
                        "file": {"mimetype": "image/jpeg", "url": refused}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("Failed to download the file from '{refused}': ")),
            "{}",
            r.text
        );
        // Only the owner posts: bob (a follower) is refused, and so is an unknown channel.
        let r = app
            .post(
                "/api/sendFile",
                &json!({"session": "bob", "chatId": channel,
                        "file": {"mimetype": "text/plain", "data": b64(b"not mine")}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
        let r = app
            .post(
                "/api/sendFile",
                &json!({"session": "alice", "chatId": "999@newsletter",
                        "file": {"mimetype": "text/plain", "data": b64(b"nowhere")}})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app
            .get(&format!(
                "/api/alice/channels/{channel}/messages/preview?limit=10"
            ))
            .await;
        assert_eq!(r.json().as_array().map(Vec::len), Some(4), "{}", r.text);
    }
}
