//! Issue 9, receiving: a contact's phone (a real whatsapp-rust client on the mock network)
//! sends every kind of message to a paired wharf session; the webhook `message` carries
//! WAHA's parsed `WAMessage`, and media URLs serve the exact bytes (local folder and S3).

use std::time::Duration;

use serde_json::{Value, json};
use whatsapp_rust::{
    download::MediaType,
    media::{
        AudioOptions, DocumentOptions, ImageOptions, VideoOptions, audio_message, document_message,
        image_message, video_message,
    },
    prelude::*,
    waproto::whatsapp as wa,
};

use crate::support::{
    app::{API_KEY, StoreKind, TestApp},
    phone::Phone,
    poll::eventually,
    s3::SeaweedFs,
    sink::Sink,
};

const ALICE: &str = "15550009001";
const BOB: &str = "15550009002";
const CAROL: &str = "15550009003";

/// Creates `bob` with a webhook to `sink` (`/bob`, `events`) and pairs it with `BOB`.
async fn pair_bob(app: &TestApp, net: &mockwa::MockNetwork, sink: &Sink, events: &str) {
    pair_session(app, net, sink, "bob", BOB, events).await;
}

/// Creates session `name` with a webhook to `sink` (`/{name}`, `events`) and pairs it
/// with the phone number `phone`.
async fn pair_session(
    app: &TestApp,
    net: &mockwa::MockNetwork,
    sink: &Sink,
    name: &str,
    phone: &str,
    events: &str,
) {
    let body = format!(
        r#"{{"name":"{name}","config":{{"webhooks":[{{"url":"{}","events":{events},"retries":{{"delaySeconds":0.05,"attempts":100,"policy":"constant"}}}}]}}}}"#,
        sink.url(&format!("/{name}"))
    );
    let r = app.post("/api/sessions", &body).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_status(name, "SCAN_QR_CODE", Duration::from_secs(60))
        .await;
    let qr = app
        .get(&format!("/api/{name}/auth/qr?format=raw"))
        .await
        .json()["value"]
        .as_str()
        .expect("raw QR")
        .to_string();
    net.scan_qr(&qr, phone, name).expect("scan");
    app.wait_status(name, "WORKING", Duration::from_secs(40))
        .await;
}

/// The payload of the `event` whose message id ends with `wa_id`, delivered to `/bob`.
async fn payload_of(sink: &Sink, event: &str, wa_id: &str) -> Value {
    payload_at(sink, "/bob", event, wa_id).await
}

/// The payload of the `event` whose message id ends with `wa_id`, delivered to `path`.
async fn payload_at(sink: &Sink, path: &str, event: &str, wa_id: &str) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{event} for {wa_id} at {path}"),
        || async {
            sink.delivered(path)
                .iter()
                .map(|r| r.json())
                .find(|v| {
                    v["event"] == event
                        && v["payload"]["id"]
                            .as_str()
                            .is_some_and(|id| id.ends_with(wa_id))
                })
                .map(|v| v["payload"].clone())
                .ok_or_else(|| {
                    format!(
                        "got {:?}",
                        sink.delivered(path)
                            .iter()
                            .map(|r| r.json()["event"].clone())
                            .collect::<Vec<_>>()
                    )
                })
        },
    )
    .await
}

/// GETs a media URL's path on `app` (URLs carry `WAHA_BASE_URL`, which a port-0 test
/// app cannot know) with `key`; returns status and raw bytes.
async fn fetch(app: &TestApp, url: &str, key: Option<&str>) -> (u16, Vec<u8>, String) {
    let path = url
        .find("/api/files/")
        .map(|i| &url[i..])
        .unwrap_or_else(|| panic!("not a files URL: {url}"));
    fetch_url(&format!("{}{path}", app.base), key).await
}

async fn fetch_url(url: &str, key: Option<&str>) -> (u16, Vec<u8>, String) {
    let mut req = reqwest::Client::new().get(url);
    if let Some(k) = key {
        req = req.header("X-Api-Key", k);
    }
    let res = req.send().await.expect("GET media");
    let status = res.status().as_u16();
    let ctype = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, res.bytes().await.expect("body").to_vec(), ctype)
}

fn bytes(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 7) % 251) as u8)
        .collect()
}

fn sticker(up: whatsapp_rust::upload::UploadResponse) -> wa::Message {
    wa::Message {
        sticker_message: whatsapp_rust::waproto::buffa::MessageField::some(
            wa::message::StickerMessage {
                url: Some(up.url),
                direct_path: Some(up.direct_path),
                media_key: Some(up.media_key.to_vec()),
                file_sha256: Some(up.file_sha256.to_vec()),
                file_enc_sha256: Some(up.file_enc_sha256.to_vec()),
                file_length: Some(up.file_length),
                media_key_timestamp: Some(up.media_key_timestamp),
                mimetype: Some("image/webp".into()),
                ..Default::default()
            },
        ),
        ..Default::default()
    }
}

/// Sends one of each media kind; checks payload, URL and bytes. Returns the image's WAHA
/// message id and its media URL.
async fn media_kinds_round_trip(app: &TestApp, sink: &Sink, alice: &Phone) -> (String, String) {
    struct Case {
        name: &'static str,
        data: Vec<u8>,
        kind: MediaType,
        mimetype: &'static str,
        caption: &'static str,
        filename: Option<&'static str>,
        ext: &'static str,
    }
    let cases = [
        Case {
            name: "image",
            data: bytes(1, 40_000),
            kind: MediaType::Image,
            mimetype: "image/jpeg",
            caption: "a picture",
            filename: None,
            ext: "jpeg",
        },
        Case {
            name: "document",
            data: bytes(2, 70_000),
            kind: MediaType::Document,
            mimetype: "application/pdf",
            caption: "the report",
            filename: Some("report.pdf"),
            ext: "pdf",
        },
        Case {
            name: "ptt",
            data: bytes(3, 9_000),
            kind: MediaType::Audio,
            mimetype: "audio/ogg; codecs=opus",
            caption: "",
            filename: None,
            ext: "oga",
        },
        Case {
            name: "video",
            data: bytes(4, 150_000),
            kind: MediaType::Video,
            mimetype: "video/mp4",
            caption: "a clip",
            filename: None,
            ext: "mp4",
        },
        Case {
            name: "sticker",
            data: bytes(5, 3_000),
            kind: MediaType::Sticker,
            mimetype: "image/webp",
            caption: "",
            filename: None,
            ext: "webp",
        },
    ];
    let mut image = None;
    for case in cases {
        let up = alice.upload(&case.data, case.kind).await;
        let caption = (!case.caption.is_empty()).then(|| case.caption.to_string());
        let mimetype = Some(case.mimetype.to_string());
        let message = match case.name {
            "image" => image_message(
                up,
                ImageOptions {
                    caption,
                    mimetype,
                    ..Default::default()
                },
            ),
            "document" => document_message(
                up,
                DocumentOptions {
                    caption,
                    mimetype,
                    file_name: case.filename.map(str::to_string),
                    ..Default::default()
                },
            ),
            "ptt" => audio_message(
                up,
                AudioOptions {
                    mimetype,
                    ptt: Some(true),
                    duration_seconds: Some(3),
                    ..Default::default()
                },
            ),
            "video" => video_message(
                up,
                VideoOptions {
                    caption,
                    mimetype,
                    ..Default::default()
                },
            ),
            _ => sticker(up),
        };
        let wa_id = alice.send(BOB, message).await;
        let p = payload_of(sink, "message", &wa_id).await;
        let id = format!("false_{ALICE}@c.us_{wa_id}");
        assert_eq!(p["id"], id, "{}: {p}", case.name);
        assert_eq!(p["hasMedia"], true, "{}: {p}", case.name);
        assert_eq!(p["body"], case.caption, "{}: {p}", case.name);
        assert_eq!(p["_data"]["type"], case.name, "{}: {p}", case.name);
        let media = &p["media"];
        assert_eq!(media["mimetype"], case.mimetype, "{}: {p}", case.name);
        assert_eq!(media["error"], Value::Null, "{}: {p}", case.name);
        assert_eq!(
            media["filename"],
            case.filename.map_or(Value::Null, |f| json!(f)),
            "{}: {p}",
            case.name
        );
        let url = media["url"].as_str().unwrap_or_else(|| panic!("url: {p}"));
        assert_eq!(p["mediaUrl"], url, "legacy mediaUrl duplicates media.url");
        assert!(url.ends_with(&format!("/{id}.{}", case.ext)), "{url}");
        let (status, got, _) = fetch(app, url, Some(API_KEY)).await;
        assert_eq!(status, 200, "{}", case.name);
        assert!(got == case.data, "{}: downloaded bytes differ", case.name);
        if case.name == "image" {
            image = Some((id, url.to_string()));
        }
    }
    image.expect("the image case ran")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_media_location_vcard_poll_arrive_parsed_with_downloadable_files() {
    for store in StoreKind::all("inbound_media") {
        let files = tempfile::tempdir().unwrap();
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let folder = files.path().display().to_string();
        let app = TestApp::spawn_wa(store, &net, &[("WHATSAPP_FILES_FOLDER", &folder)]).await;
        pair_bob(&app, &net, &sink, r#"["message","poll.vote","poll.vote.failed","event.response","event.response.failed"]"#).await;
        let alice = Phone::pair(&net, ALICE).await;

        let (image_id, image_url) = media_kinds_round_trip(&app, &sink, &alice).await;
        // Stored under the session's folder, named as WAHA names it.
        assert!(
            files
                .path()
                .join("bob")
                .join(format!("{image_id}.jpeg"))
                .is_file()
        );

        // The files route: key required; a missing file is WAHA's FILE_NOT_FOUND body.
        let (status, _, _) = fetch(&app, &image_url, None).await;
        assert_eq!(status, 401);
        let (status, _, ctype) = fetch(&app, &image_url, Some(API_KEY)).await;
        assert_eq!((status, ctype.as_str()), (200, "image/jpeg"));
        let missing = app.get("/api/files/bob/false_1@c.us_NOPE.jpeg").await;
        assert_eq!(missing.status, 404);
        assert_eq!(
            missing.text,
            r#"{"error":{"code":404,"key":"FILE_NOT_FOUND","message":"File not found","details":"File not found or no longer available"}}"#
        );
        assert_eq!(app.get("/api/files/bob/..").await.status, 404);

        // The chats routes: the stored media, or none with downloadMedia=false.
        let path = format!("/api/bob/chats/{ALICE}@c.us/messages/{image_id}");
        let m = app.get(&path).await.json();
        assert_eq!(m["media"]["url"], image_url.as_str(), "{m}");
        let m = app.get(&format!("{path}?downloadMedia=false")).await.json();
        assert_eq!(
            (m["hasMedia"].clone(), m["media"].clone()),
            (json!(true), Value::Null)
        );
        let list = app
            .get(&format!(
                "/api/bob/chats/{ALICE}@c.us/messages?limit=50&downloadMedia=false"
            ))
            .await
            .json();
        let listed = list
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == image_id.as_str());
        assert_eq!(listed.unwrap()["mediaUrl"], Value::Null);

        // A reply to the image: replyTo carries the quoted message's media.
        let image_wa_id = image_id.rsplit('_').next().unwrap().to_string();
        let quoted = wa::Message::text("a picture".to_string());
        let context = whatsapp_rust::wacore::proto_helpers::build_quote_context(
            image_wa_id.clone(),
            format!("{ALICE}@s.whatsapp.net"),
            &quoted,
        );
        let reply = alice
            .send(
                BOB,
                wa::Message::text_with_context("nice, right?".to_string(), context),
            )
            .await;
        let p = payload_of(&sink, "message", &reply).await;
        assert_eq!(p["body"], "nice, right?");
        assert_eq!(p["replyTo"]["id"], image_wa_id.as_str(), "{p}");
        assert_eq!(p["replyTo"]["hasMedia"], true, "{p}");
        assert_eq!(p["replyTo"]["media"]["url"], image_url.as_str(), "{p}");

        // Location.
        let location = wa::Message {
            location_message: whatsapp_rust::waproto::buffa::MessageField::some(
                wa::message::LocationMessage {
                    degrees_latitude: Some(52.52),
                    degrees_longitude: Some(13.405),
                    name: Some("Berlin".into()),
                    address: Some("Pariser Platz".into()),
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        let wa_id = alice.send(BOB, location).await;
        let p = payload_of(&sink, "message", &wa_id).await;
        assert_eq!(p["hasMedia"], false);
        assert_eq!(p["location"]["latitude"], "52.52", "{p}");
        assert_eq!(p["location"]["longitude"], "13.405", "{p}");
        assert_eq!(p["location"]["name"], "Berlin", "{p}");
        assert_eq!(p["location"]["address"], "Pariser Platz", "{p}");
        assert_eq!(p["location"]["live"], false, "{p}");

        // vCard.
        let vcard = "BEGIN:VCARD\nVERSION:3.0\nFN:Carol\nTEL;type=CELL;waid=15550009003:+15550009003\nEND:VCARD";
        let contact = wa::Message {
            contact_message: whatsapp_rust::waproto::buffa::MessageField::some(
                wa::message::ContactMessage {
                    display_name: Some("Carol".into()),
                    vcard: Some(vcard.into()),
                    ..Default::default()
                },
            ),
            ..Default::default()
        };
        let wa_id = alice.send(BOB, contact).await;
        let p = payload_of(&sink, "message", &wa_id).await;
        assert_eq!(p["vCards"], json!([vcard]), "{p}");

        // Poll creation.
        let poll = alice
            .client
            .polls()
            .create(
                &Jid::pn(BOB.to_string()),
                "Lunch?",
                &["Pizza".to_string(), "Sushi".to_string()],
                1,
            )
            .await
            .expect("poll sent");
        let p = payload_of(&sink, "message", &poll.0.message_id).await;
        assert_eq!(
            p["_data"]["poll"],
            json!({"name": "Lunch?", "options": ["Pizza", "Sushi"], "multipleAnswers": false}),
            "{p}"
        );

        // A vote on it: `poll.vote` with the option names, decrypted.
        let (sent, secret) = poll;
        let vote = alice
            .client
            .polls()
            .vote(
                Jid::pn(BOB.to_string()),
                &sent.message_id,
                &Jid::pn(ALICE.to_string()),
                &secret,
                &["Sushi".to_string()],
            )
            .await
            .expect("vote sent");
        let v = eventually(Duration::from_secs(30), "poll.vote", || async {
            sink.delivered("/bob")
                .iter()
                .map(|r| r.json())
                .find(|v| {
                    v["event"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("poll.vote"))
                })
                .ok_or_else(|| "no poll.vote yet".to_string())
        })
        .await;
        assert_eq!(v["event"], "poll.vote", "{v}");
        let p = &v["payload"];
        assert_eq!(p["vote"]["selectedOptions"], json!(["Sushi"]), "{p}");
        assert_eq!(
            p["vote"]["id"],
            format!("false_{ALICE}@c.us_{}", vote.message_id),
            "{p}"
        );
        assert_eq!(p["vote"]["fromMe"], false, "{p}");
        assert_eq!(
            p["poll"]["id"],
            format!("false_{ALICE}@c.us_{}", sent.message_id),
            "{p}"
        );

        // An event invitation, then an RSVP to it: `event.response`, decrypted.
        let (created, secret) = alice
            .client
            .events()
            .create(
                Jid::pn(BOB.to_string()),
                whatsapp_rust::EventCreationParams {
                    name: "Launch party".into(),
                    description: Some("rooftop".into()),
                    start_time: Some(1_900_000_000),
                    end_time: None,
                    join_link: None,
                    location: None,
                    is_scheduled_call: None,
                    extra_guests_allowed: Some(true),
                },
            )
            .await
            .expect("event sent");
        let p = payload_of(&sink, "message", &created.message_id).await;
        assert_eq!(p["_data"]["type"], "event_creation", "{p}");
        assert_eq!(p["_data"]["event"]["name"], "Launch party", "{p}");
        assert_eq!(p["_data"]["event"]["startTime"], 1_900_000_000, "{p}");
        alice
            .client
            .events()
            .respond(
                Jid::pn(BOB.to_string()),
                &created.message_id,
                &Jid::pn(ALICE.to_string()),
                &secret,
                whatsapp_rust::EventResponseType::GOING,
                Some(2),
            )
            .await
            .expect("RSVP sent");
        let v = eventually(Duration::from_secs(30), "event.response", || async {
            sink.delivered("/bob")
                .iter()
                .map(|r| r.json())
                .find(|v| {
                    v["event"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("event.response"))
                })
                .ok_or_else(|| "no event.response yet".to_string())
        })
        .await;
        assert_eq!(v["event"], "event.response", "{v}");
        let p = &v["payload"];
        assert_eq!(p["eventResponse"]["response"], "GOING", "{p}");
        assert_eq!(p["eventResponse"]["extraGuestCount"], 2, "{p}");
        assert_eq!(
            p["eventCreationKey"]["id"],
            format!("false_{ALICE}@c.us_{}", created.message_id),
            "{p}"
        );

        alice.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forward_message_resends_received_media_byte_identical_to_another_session() {
    for store in StoreKind::all("forward_media") {
        let files = tempfile::tempdir().unwrap();
        let folder = files.path().display().to_string();
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[("WHATSAPP_FILES_FOLDER", &folder)]).await;
        pair_bob(&app, &net, &sink, r#"["message"]"#).await;
        pair_session(&app, &net, &sink, "carol", CAROL, r#"["message"]"#).await;
        let alice = Phone::pair(&net, ALICE).await;

        // Bob receives a document (kind, mimetype, file name and caption to keep).
        let data = bytes(12, 60_000);
        let up = alice.upload(&data, MediaType::Document).await;
        let wa_id = alice
            .send(
                BOB,
                document_message(
                    up,
                    DocumentOptions {
                        caption: Some("the figures".into()),
                        mimetype: Some("application/pdf".into()),
                        file_name: Some("q3.pdf".into()),
                        ..Default::default()
                    },
                ),
            )
            .await;
        let received = payload_of(&sink, "message", &wa_id).await;
        assert!(received["media"]["url"].is_string(), "{received}");

        // … and forwards it to Carol.
        let r = app
            .post(
                "/api/forwardMessage",
                &json!({
                    "session": "bob",
                    "chatId": format!("{CAROL}@c.us"),
                    "messageId": received["id"],
                })
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sent = r.json();
        assert_eq!(sent["hasMedia"], true, "{sent}");
        assert_eq!(sent["body"], "the figures", "{sent}");
        assert_eq!(sent["_data"]["type"], "document", "{sent}");
        let document = {
            let m = &sent["_data"]["message"];
            if m["documentMessage"].is_null() {
                m["document_message"].clone()
            } else {
                m["documentMessage"].clone()
            }
        };
        let context = if document["contextInfo"].is_null() {
            &document["context_info"]
        } else {
            &document["contextInfo"]
        };
        let forwarded = if context["isForwarded"].is_null() {
            &context["is_forwarded"]
        } else {
            &context["isForwarded"]
        };
        assert_eq!(forwarded, &json!(true), "marked forwarded: {sent}");
        let forward_wa_id = sent["id"].as_str().unwrap().rsplit('_').next().unwrap();

        // Carol's webhook: the same kind, mimetype, name, caption, and the same bytes.
        let p = payload_at(&sink, "/carol", "message", forward_wa_id).await;
        assert_eq!(p["hasMedia"], true, "{p}");
        assert_eq!(p["body"], "the figures", "{p}");
        assert_eq!(p["_data"]["type"], "document", "{p}");
        assert_eq!(p["media"]["mimetype"], "application/pdf", "{p}");
        assert_eq!(p["media"]["filename"], "q3.pdf", "{p}");
        let url = p["media"]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("url: {p}"));
        let (status, got, _) = fetch(&app, url, Some(API_KEY)).await;
        assert_eq!(status, 200);
        assert!(got == data, "forwarded bytes differ");

        // Bob's own forward has no stored file (sent media are not kept): a 400 naming
        // why, nothing sent.
        let r = app
            .post(
                "/api/forwardMessage",
                &json!({
                    "session": "bob",
                    "chatId": format!("{CAROL}@c.us"),
                    "messageId": sent["id"],
                })
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.text.contains("cannot be forwarded"), "{}", r.text);
        assert!(r.text.contains("not downloaded"), "{}", r.text);

        // Text still forwards as text.
        let text = alice
            .send(BOB, wa::Message::text("plain words".to_string()))
            .await;
        let t = payload_of(&sink, "message", &text).await;
        let r = app
            .post(
                "/api/forwardMessage",
                &json!({
                    "session": "bob",
                    "chatId": format!("{CAROL}@c.us"),
                    "messageId": t["id"],
                })
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let fwd = r.json();
        assert_eq!(fwd["body"], "plain words", "{fwd}");
        assert_eq!(fwd["hasMedia"], false, "{fwd}");
        let fwd_wa_id = fwd["id"].as_str().unwrap().rsplit('_').next().unwrap();
        let p = payload_at(&sink, "/carol", "message", fwd_wa_id).await;
        assert_eq!(p["body"], "plain words", "{p}");
        alice.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn download_media_false_nulls_media_lifetime_removes_files_slow_download_gives_error() {
    // WHATSAPP_DOWNLOAD_MEDIA=false: hasMedia stays true, media and mediaUrl are null.
    let files = tempfile::tempdir().unwrap();
    let folder = files.path().display().to_string();
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WHATSAPP_FILES_FOLDER", &folder),
            ("WHATSAPP_DOWNLOAD_MEDIA", "false"),
        ],
    )
    .await;
    pair_bob(&app, &net, &sink, r#"["message"]"#).await;
    let alice = Phone::pair(&net, ALICE).await;
    let up = alice.upload(&bytes(9, 5_000), MediaType::Image).await;
    let wa_id = alice
        .send(BOB, image_message(up, ImageOptions::default()))
        .await;
    let p = payload_of(&sink, "message", &wa_id).await;
    assert_eq!(p["hasMedia"], true, "{p}");
    assert_eq!(p["media"], Value::Null, "{p}");
    assert_eq!(p["mediaUrl"], Value::Null, "{p}");
    assert!(!files.path().join("bob").exists(), "nothing downloaded");
    // Such a message cannot be forwarded with its media: a 400 that says why.
    let r = app
        .post(
            "/api/forwardMessage",
            &json!({"session": "bob", "chatId": format!("{ALICE}@c.us"), "messageId": p["id"]})
                .to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("not downloaded"), "{}", r.text);
    alice.stop().await;
    drop(app);

    // WHATSAPP_FILES_LIFETIME: the file is served, then removed (404 FILE_NOT_FOUND).
    let files = tempfile::tempdir().unwrap();
    let folder = files.path().display().to_string();
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WHATSAPP_FILES_FOLDER", &folder),
            ("WHATSAPP_FILES_LIFETIME", "2"),
        ],
    )
    .await;
    pair_bob(&app, &net, &sink, r#"["message"]"#).await;
    let alice = Phone::pair(&net, ALICE).await;
    let up = alice.upload(&bytes(8, 5_000), MediaType::Image).await;
    let wa_id = alice
        .send(BOB, image_message(up, ImageOptions::default()))
        .await;
    let p = payload_of(&sink, "message", &wa_id).await;
    let url = p["media"]["url"].as_str().expect("downloaded").to_string();
    let id = p["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(20), "the file expires", || async {
        let (status, body, _) = fetch(&app, &url, Some(API_KEY)).await;
        if status == 404 && !files.path().join("bob").join(format!("{id}.jpeg")).exists() {
            Ok(body)
        } else {
            Err(format!("status {status}"))
        }
    })
    .await;
    alice.stop().await;
    drop(app);

    // WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS: a download slower than that is given up; the
    // message still goes out, with media.error (no CDN answers within a microsecond).
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WHATSAPP_FILES_FOLDER", &folder),
            ("WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS", "0.000001"),
        ],
    )
    .await;
    pair_bob(&app, &net, &sink, r#"["message"]"#).await;
    let alice = Phone::pair(&net, ALICE).await;
    let up = alice.upload(&bytes(6, 5_000), MediaType::Image).await;
    let wa_id = alice
        .send(BOB, image_message(up, ImageOptions::default()))
        .await;
    let p = payload_of(&sink, "message", &wa_id).await;
    assert_eq!(p["media"]["url"], Value::Null, "{p}");
    assert!(
        p["media"]["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("timed out")),
        "{p}"
    );
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_download_gives_media_error_and_null_url_without_losing_the_message() {
    let files = tempfile::tempdir().unwrap();
    let folder = files.path().display().to_string();
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHATSAPP_FILES_FOLDER", &folder)],
    )
    .await;
    pair_bob(&app, &net, &sink, r#"["message"]"#).await;
    let alice = Phone::pair(&net, ALICE).await;
    let mut up = alice.upload(&bytes(7, 5_000), MediaType::Image).await;
    // A path the CDN never had: the download fails with 404.
    up.direct_path = "/v/t62.7118-24/00000000_nothing_here.enc".into();
    up.url = String::new();
    let broken = alice
        .send(BOB, image_message(up, ImageOptions::default()))
        .await;
    // A text right after it: still delivered, and after the broken one.
    let after = alice
        .send(BOB, wa::Message::text("after".to_string()))
        .await;
    let p = payload_of(&sink, "message", &broken).await;
    assert_eq!(p["hasMedia"], true, "{p}");
    assert_eq!(p["media"]["url"], Value::Null, "{p}");
    assert!(p["media"]["error"].is_object(), "{p}");
    assert_eq!(p["media"]["mimetype"], "image/jpeg", "{p}");
    payload_of(&sink, "message", &after).await;
    let order: Vec<String> = sink
        .delivered("/bob")
        .iter()
        .map(|r| r.json())
        .filter(|v| v["event"] == "message")
        .filter_map(|v| v["payload"]["id"].as_str().map(str::to_string))
        .collect();
    let pos = |w: &str| order.iter().position(|id| id.ends_with(w)).unwrap();
    assert!(
        pos(&broken) < pos(&after),
        "per-session order kept: {order:?}"
    );
    alice.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_storage_stores_media_in_the_bucket_with_presigned_and_proxied_urls() {
    let Some(s3) = SeaweedFs::start("s3_storage").await else {
        return;
    };
    for (store, proxy) in StoreKind::all("s3_storage")
        .into_iter()
        .zip([false, true].into_iter().cycle())
    {
        let bucket = s3.bucket_name();
        let files = tempfile::tempdir().unwrap();
        let folder = files.path().display().to_string();
        let endpoint = s3.endpoint();
        let proxy_files = proxy.to_string();
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(
            store,
            &net,
            &[
                ("WHATSAPP_FILES_FOLDER", &folder),
                ("WAHA_MEDIA_STORAGE", "S3"),
                ("WAHA_S3_REGION", "us-east-1"),
                ("WAHA_S3_BUCKET", &bucket),
                ("WAHA_S3_ACCESS_KEY_ID", crate::support::s3::ACCESS_KEY),
                ("WAHA_S3_SECRET_ACCESS_KEY", crate::support::s3::SECRET_KEY),
                ("WAHA_S3_ENDPOINT", &endpoint),
                ("WAHA_S3_FORCE_PATH_STYLE", "true"),
                ("WAHA_S3_PROXY_FILES", &proxy_files),
            ],
        )
        .await;
        pair_bob(&app, &net, &sink, r#"["message"]"#).await;
        let alice = Phone::pair(&net, ALICE).await;
        let data = bytes(11, 300_000);
        let up = alice.upload(&data, MediaType::Image).await;
        let wa_id = alice
            .send(
                BOB,
                image_message(
                    up,
                    ImageOptions {
                        caption: Some("to the bucket".into()),
                        ..Default::default()
                    },
                ),
            )
            .await;
        let p = payload_of(&sink, "message", &wa_id).await;
        let id = p["id"].as_str().unwrap().to_string();
        let key = format!("bob/{id}.jpeg");
        assert_eq!(
            p["media"]["s3"],
            json!({"Bucket": bucket, "Key": key}),
            "{p}"
        );
        assert_eq!(p["media"]["error"], Value::Null, "{p}");
        let url = p["media"]["url"].as_str().expect("url").to_string();
        assert_eq!(p["mediaUrl"], url.as_str());
        // Nothing left in the local folder: the file went to the bucket.
        assert!(!files.path().join("bob").exists());
        // The object itself, read back from the S3 server.
        assert!(s3.get_object(&bucket, &key).await == data, "object bytes");
        if proxy {
            assert!(url.contains(&format!("/api/files/bob/{id}.jpeg")), "{url}");
            let (status, got, ctype) = fetch(&app, &url, Some(API_KEY)).await;
            assert_eq!((status, ctype.as_str()), (200, "image/jpeg"));
            assert!(got == data, "proxied bytes");
            let (status, _, _) = fetch(&app, &url, None).await;
            assert_eq!(status, 401);
        } else {
            assert!(url.starts_with(&endpoint), "{url}");
            assert!(url.contains("X-Amz-Signature="), "presigned: {url}");
            let (status, got, _) = fetch_url(&url, None).await;
            assert_eq!(status, 200);
            assert!(got == data, "presigned bytes");
        }

        // forwardMessage reads the file back from the bucket: Carol gets the same bytes.
        pair_session(&app, &net, &sink, "carol", CAROL, r#"["message"]"#).await;
        let r = app
            .post(
                "/api/forwardMessage",
                &json!({"session": "bob", "chatId": format!("{CAROL}@c.us"), "messageId": id})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let sent = r.json();
        let forward_wa_id = sent["id"].as_str().unwrap().rsplit('_').next().unwrap();
        let p = payload_at(&sink, "/carol", "message", forward_wa_id).await;
        assert_eq!(p["hasMedia"], true, "{p}");
        assert_eq!(p["body"], "to the bucket", "{p}");
        assert_eq!(p["_data"]["type"], "image", "{p}");
        let url = p["media"]["url"].as_str().expect("url");
        let (status, got, _) = if proxy {
            fetch(&app, url, Some(API_KEY)).await
        } else {
            fetch_url(url, None).await
        };
        assert_eq!(status, 200);
        assert!(got == data, "forwarded bytes (S3)");
        alice.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_receipts_are_message_ack_group_not_message_ack() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    pair_bob(&app, &net, &sink, r#"["message.ack","message.ack.group"]"#).await;
    let alice = Phone::pair(&net, ALICE).await;
    let group = net
        .seed_groups(&mockwa::SeedGroups {
            subject: "acks".into(),
            creator: ALICE.into(),
            participants: vec![BOB.into()],
            ..Default::default()
        })
        .expect("group")
        .remove(0);
    let r = app
        .post(
            "/api/sendText",
            &format!(r#"{{"session":"bob","chatId":"{group}","text":"to the group"}}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let id = r.json()["id"].as_str().unwrap().to_string();
    // Alice's device confirms delivery: a group receipt.
    let v = eventually(Duration::from_secs(30), "message.ack.group", || async {
        sink.delivered("/bob")
            .iter()
            .map(|r| r.json())
            .find(|v| {
                v["event"] == "message.ack.group"
                    && v["payload"]["id"] == id.as_str()
                    && v["payload"]["ack"].as_i64() >= Some(2)
            })
            .ok_or_else(|| "none yet".to_string())
    })
    .await;
    assert_eq!(v["payload"]["participant"], format!("{ALICE}@c.us"), "{v}");
    assert!(v["payload"]["ack"].as_i64().unwrap() >= 2, "{v}");
    // Acks of group messages never go out as `message.ack`.
    assert!(
        sink.delivered("/bob")
            .iter()
            .map(|r| r.json())
            .all(|v| v["event"] != "message.ack"),
        "{:?}",
        sink.delivered("/bob")
    );
    alice.stop().await;
}
