//! Issue 9, sending half: every send operation from one paired session (alice) to another
//! (bob) through the mock network, on both stores — and every bad `file` refused with
//! WAHA's 400 before anything is sent.
//!
//! Media are checked end to end at the byte level: the sent message's `_data.message`
//! names the CDN path and media key, the encrypted blob is fetched back from mockwa and
//! decrypted, and must equal what was sent. Files given by URL come from [`FileServer`], a
//! tiny loopback HTTP server owned by each test.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use base64::Engine as _;
use serde_json::{Value, json};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpListener,
};
use whatsapp_rust::wacore::download::{DownloadUtils, MediaType};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const ALICE: &str = "15550001111";
const BOB: &str = "15550002222";

/// A loopback HTTP/1.1 server: `GET /f/{name}` serves a registered file; `/huge-declared`
/// announces 50 MB and sends a few bytes; `/huge-chunked` streams 3 MB without a length;
/// anything else is a 404. One request per connection. Stops when dropped.
struct FileServer {
    base: String,
    files: Arc<Mutex<HashMap<String, Vec<u8>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FileServer {
    async fn start() -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let files: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
        let served = files.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let files = served.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let text = String::from_utf8_lossy(&head);
                    let path = text.split_whitespace().nth(1).unwrap_or("/").to_string();
                    let _ = serve(&mut sock, &path, &files).await;
                });
            }
        });
        FileServer { base, files, task }
    }

    fn put(&self, name: &str, bytes: Vec<u8>) -> String {
        self.files.lock().unwrap().insert(name.to_string(), bytes);
        format!("{}/f/{name}", self.base)
    }
}

async fn serve(
    sock: &mut tokio::net::TcpStream,
    path: &str,
    files: &Mutex<HashMap<String, Vec<u8>>>,
) -> std::io::Result<()> {
    if path == "/huge-declared" {
        sock.write_all(
            b"HTTP/1.1 200 OK\r\nContent-Length: 52428800\r\nConnection: close\r\n\r\nxxxx",
        )
        .await?;
        return sock.shutdown().await;
    }
    if path == "/huge-chunked" {
        sock.write_all(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .await?;
        let chunk = vec![7u8; 64 * 1024];
        for _ in 0..48 {
            sock.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                .await?;
            sock.write_all(&chunk).await?;
            sock.write_all(b"\r\n").await?;
        }
        sock.write_all(b"0\r\n\r\n").await?;
        return sock.shutdown().await;
    }
    let body = path
        .strip_prefix("/f/")
        .and_then(|name| files.lock().unwrap().get(name).cloned());
    match body {
        Some(body) => {
            let kind = if path.ends_with(".html") {
                "Content-Type: text/html; charset=utf-8\r\n"
            } else {
                ""
            };
            sock.write_all(
                format!(
                    "HTTP/1.1 200 OK\r\n{kind}Content-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                )
                .as_bytes(),
            )
            .await?;
            sock.write_all(&body).await?;
        }
        None => {
            sock.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            )
            .await?;
        }
    }
    sock.shutdown().await
}

/// Deterministic, non-repeating bytes (so a truncation or a swap cannot go unnoticed).
fn bytes(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1] ^ seed)
        .collect()
}

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(b)
}

/// `secs` seconds of a 440 Hz tone as a 8 kHz mono 16-bit WAV.
fn wav_tone(secs: u32) -> Vec<u8> {
    let rate = 8000u32;
    let samples: Vec<i16> = (0..rate * secs)
        .map(|i| ((i as f32 * 440.0 * std::f32::consts::TAU / rate as f32).sin() * 12000.0) as i16)
        .collect();
    let data_len = samples.len() as u32 * 2;
    let mut w = Vec::with_capacity(44 + data_len as usize);
    w.extend_from_slice(b"RIFF");
    w.extend_from_slice(&(36 + data_len).to_le_bytes());
    w.extend_from_slice(b"WAVEfmt ");
    w.extend_from_slice(&16u32.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&1u16.to_le_bytes());
    w.extend_from_slice(&rate.to_le_bytes());
    w.extend_from_slice(&(rate * 2).to_le_bytes());
    w.extend_from_slice(&2u16.to_le_bytes());
    w.extend_from_slice(&16u16.to_le_bytes());
    w.extend_from_slice(b"data");
    w.extend_from_slice(&data_len.to_le_bytes());
    for s in samples {
        w.extend_from_slice(&s.to_le_bytes());
    }
    w
}

/// A one-second AVI (MPEG-4 part 2, odd-sized frames) made by ffmpeg's test source.
fn avi_clip() -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clip.avi");
    let status = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-nostdin",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc=duration=1:size=65x49:rate=5")
        .args(["-c:v", "mpeg4", "-f", "avi"])
        .arg(&out)
        .status()
        .expect("ffmpeg is installed (the conversion tests need it)");
    assert!(status.success());
    std::fs::read(out).unwrap()
}

/// Creates `name` with a webhook for `message` and `message.any` on `sink_path`, pairs it.
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
            "events": ["message", "message.any", "poll.vote", "poll.vote.failed"],
            "retries": {"delaySeconds": 0.05, "attempts": 100, "policy": "constant"},
        }]},
    });
    app.pair_created(net, &body.to_string(), name, phone).await;
}

/// The WhatsApp id at the end of a WAHA message id.
fn wa_id(id: &Value) -> String {
    let id = id.as_str().unwrap_or_else(|| panic!("no id: {id}"));
    MessageIdParts::of(id).wa_id
}

struct MessageIdParts {
    wa_id: String,
}

impl MessageIdParts {
    fn of(id: &str) -> Self {
        let m = wharf::model::message::MessageId::parse(id)
            .unwrap_or_else(|| panic!("not a WAHA message id: {id}"));
        Self { wa_id: m.wa_id }
    }
}

/// Waits for `event` at `/{session}` whose payload id carries `wa_id`; returns the payload.
async fn delivered(sink: &Sink, session: &str, event: &str, wa: &str) -> Value {
    let path = format!("/{session}");
    eventually(
        Duration::from_secs(30),
        &format!("{event} {wa} at {path}"),
        || async {
            sink.delivered(&path)
                .iter()
                .map(|r| r.json())
                .find(|v| {
                    v["event"] == event
                        && v["payload"]["id"]
                            .as_str()
                            .and_then(wharf::model::message::MessageId::parse)
                            .is_some_and(|id| id.wa_id == wa)
                })
                .map(|v| v["payload"].clone())
                .ok_or_else(|| format!("{} requests so far", sink.delivered(&path).len()))
        },
    )
    .await
}

/// A field of the raw message JSON under either naming (`directPath` / `direct_path`).
fn field<'a>(v: &'a Value, camel: &str, snake: &str) -> &'a Value {
    if v[camel].is_null() {
        &v[snake]
    } else {
        &v[camel]
    }
}

fn raw_bytes(v: &Value) -> Vec<u8> {
    if let Some(s) = v.as_str() {
        return base64::engine::general_purpose::STANDARD
            .decode(s)
            .unwrap_or_else(|e| panic!("bytes field {s:?}: {e}"));
    }
    let a = v.as_array().unwrap_or_else(|| panic!("bytes field: {v}"));
    a.iter().map(|n| n.as_u64().unwrap() as u8).collect()
}

/// Downloads the sent media from the mock CDN, decrypts it, and returns the plaintext.
async fn cdn_plaintext(
    net: &mockwa::MockNetwork,
    sent: &Value,
    (camel, snake): (&str, &str),
    kind: MediaType,
) -> Vec<u8> {
    let message = &sent["_data"]["message"];
    let media = field(message, camel, snake);
    assert!(media.is_object(), "{camel} in {message}");
    assert!(
        media["mimetype"].is_string(),
        "the {camel} carries its mimetype: {media}"
    );
    let path = field(media, "directPath", "direct_path")
        .as_str()
        .unwrap_or_else(|| panic!("directPath in {media}"));
    let key = raw_bytes(field(media, "mediaKey", "media_key"));
    let enc = reqwest::get(format!("http://{}{path}", net.addr()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    DownloadUtils::verify_and_decrypt(&enc, &key, kind).expect("decrypts with the sent key")
}

async fn post_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let r = app.post(path, &body.to_string()).await;
    assert_eq!(r.status, 201, "{path}: {}", r.text);
    r.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_every_kind_reaches_the_other_session_with_the_same_bytes() {
    for store in StoreKind::all("media_send_every_kind") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let files = FileServer::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        pair_hooked(&app, &net, &sink, "alice", ALICE).await;
        pair_hooked(&app, &net, &sink, "bob", BOB).await;
        let to_bob = format!("{BOB}@c.us");

        // Image by URL, with a caption and a pre-generated id.
        let image = bytes(150_000, 1);
        let r = app.get("/api/alice/new-message-id").await;
        assert_eq!(r.status, 200, "{}", r.text);
        let own_id = r.json()["id"].as_str().unwrap().to_string();
        assert!(own_id.len() >= 16, "{own_id}");
        let sent = post_ok(
            &app,
            "/api/sendImage",
            json!({"session":"alice","chatId":to_bob,"caption":"a picture","id":own_id,
                   "file":{"mimetype":"image/jpeg","url":files.put("a.jpg", image.clone())}}),
        )
        .await;
        assert_eq!(sent["id"], format!("true_{to_bob}_{own_id}"), "{sent}");
        assert_eq!(sent["fromMe"], true);
        assert_eq!(sent["source"], "api");
        assert_eq!(sent["body"], "a picture");
        assert_eq!(sent["hasMedia"], true);
        assert_eq!(sent["media"]["mimetype"], "image/jpeg");
        assert_eq!(
            cdn_plaintext(
                &net,
                &sent,
                ("imageMessage", "image_message"),
                MediaType::Image
            )
            .await,
            image
        );
        delivered(&sink, "bob", "message", &own_id).await;

        // A document by base64, with its file name.
        let doc = bytes(70_001, 2);
        let sent = post_ok(
            &app,
            "/api/sendFile",
            json!({"session":"alice","chatId":to_bob,
                   "file":{"mimetype":"application/pdf","filename":"report.pdf","data":b64(&doc)}}),
        )
        .await;
        assert_eq!(sent["media"]["filename"], "report.pdf");
        let raw = field(
            &sent["_data"]["message"],
            "documentMessage",
            "document_message",
        );
        assert_eq!(field(raw, "fileName", "file_name"), "report.pdf");
        assert_eq!(
            cdn_plaintext(
                &net,
                &sent,
                ("documentMessage", "document_message"),
                MediaType::Document
            )
            .await,
            doc
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A voice note (already OGG/Opus: no conversion asked).
        let voice = bytes(20_000, 3);
        let sent = post_ok(
            &app,
            "/api/sendVoice",
            json!({"session":"alice","chatId":to_bob,"convert":false,
                   "file":{"mimetype":"audio/ogg; codecs=opus","data":b64(&voice)}}),
        )
        .await;
        let raw = field(&sent["_data"]["message"], "audioMessage", "audio_message");
        assert_eq!(raw["ptt"], true, "{raw}");
        assert_eq!(
            cdn_plaintext(
                &net,
                &sent,
                ("audioMessage", "audio_message"),
                MediaType::Audio
            )
            .await,
            voice
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A video, then the same as a round video note.
        let video = bytes(90_000, 4);
        let url = files.put("v.mp4", video.clone());
        let sent = post_ok(
            &app,
            "/api/sendVideo",
            json!({"session":"alice","chatId":to_bob,"caption":"watch","convert":false,
                   "file":{"mimetype":"video/mp4","filename":"v.mp4","url":url}}),
        )
        .await;
        assert_eq!(sent["body"], "watch");
        assert_eq!(
            cdn_plaintext(
                &net,
                &sent,
                ("videoMessage", "video_message"),
                MediaType::Video
            )
            .await,
            video
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;
        let sent = post_ok(
            &app,
            "/api/sendVideo",
            json!({"session":"alice","chatId":to_bob,"asNote":true,"convert":false,
                   "file":{"mimetype":"video/mp4","url":url}}),
        )
        .await;
        assert_eq!(
            cdn_plaintext(&net, &sent, ("ptvMessage", "ptv_message"), MediaType::Video).await,
            video
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A sticker.
        let sticker = bytes(9_000, 5);
        let sent = post_ok(
            &app,
            "/api/sendSticker",
            json!({"session":"alice","chatId":to_bob,
                   "file":{"mimetype":"image/webp","data":b64(&sticker)}}),
        )
        .await;
        assert_eq!(
            cdn_plaintext(
                &net,
                &sent,
                ("stickerMessage", "sticker_message"),
                MediaType::Sticker
            )
            .await,
            sticker
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A location.
        let sent = post_ok(
            &app,
            "/api/sendLocation",
            json!({"session":"alice","chatId":to_bob,"latitude":38.8937255,
                   "longitude":-77.0969763,"title":"Our office"}),
        )
        .await;
        assert_eq!(sent["location"]["latitude"], "38.8937255");
        assert_eq!(sent["location"]["longitude"], "-77.0969763");
        assert_eq!(sent["location"]["name"], "Our office");
        let raw = field(
            &sent["_data"]["message"],
            "locationMessage",
            "location_message",
        );
        assert_eq!(
            field(raw, "degreesLatitude", "degrees_latitude"),
            38.8937255
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // Contact cards: one from fields, one raw.
        let sent = post_ok(
            &app,
            "/api/sendContactVcard",
            json!({"session":"alice","chatId":to_bob,"contacts":[
                {"fullName":"John Doe","organization":"ACME","phoneNumber":"+1 555 000 3333",
                 "whatsappId":"15550003333"},
                {"vcard":"BEGIN:VCARD\nVERSION:3.0\nFN:Jane Doe\nTEL;type=CELL;waid=15550004444:+15550004444\nEND:VCARD"}]}),
        )
        .await;
        let cards = sent["vCards"].as_array().unwrap();
        assert_eq!(cards.len(), 2);
        assert!(
            cards[0].as_str().unwrap().contains("FN:John Doe"),
            "{cards:?}"
        );
        assert!(
            cards[0].as_str().unwrap().contains("waid=15550003333"),
            "{cards:?}"
        );
        assert!(
            cards[1].as_str().unwrap().contains("FN:Jane Doe"),
            "{cards:?}"
        );
        assert!(
            field(
                &sent["_data"]["message"],
                "contactsArrayMessage",
                "contacts_array_message"
            )
            .is_object()
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A poll, which bob votes on: alice receives the vote.
        let poll = post_ok(
            &app,
            "/api/sendPoll",
            json!({"session":"alice","chatId":to_bob,
                   "poll":{"name":"How are you?","options":["Good","Bad"],"multipleAnswers":false}}),
        )
        .await;
        assert_eq!(poll["body"], "How are you?");
        assert!(
            field(
                &poll["_data"]["message"],
                "pollCreationMessageV3",
                "poll_creation_message_v3"
            )
            .is_object(),
            "{poll}"
        );
        let poll_wa = wa_id(&poll["id"]);
        let at_bob = delivered(&sink, "bob", "message", &poll_wa).await;
        let vote = post_ok(
            &app,
            "/api/sendPollVote",
            json!({"session":"bob","chatId":format!("{ALICE}@c.us"),
                   "pollMessageId":at_bob["id"],"votes":["Good"]}),
        )
        .await;
        // WAHA: a vote is a `poll.vote` event (decrypted: alice sent the poll, so she
        // holds its secret), not a `message`.
        let vote_wa = wa_id(&vote["id"]);
        let got = eventually(Duration::from_secs(30), "poll.vote at /alice", || async {
            sink.delivered("/alice")
                .iter()
                .map(|r| r.json())
                .find(|v| {
                    v["event"] == "poll.vote"
                        && v["payload"]["vote"]["id"]
                            .as_str()
                            .is_some_and(|id| id.contains(&vote_wa))
                })
                .map(|v| v["payload"].clone())
                .ok_or_else(|| format!("{} requests so far", sink.delivered("/alice").len()))
        })
        .await;
        assert_eq!(got["vote"]["selectedOptions"], json!(["Good"]), "{got}");

        // An event.
        let sent = post_ok(
            &app,
            "/api/alice/events",
            json!({"chatId":to_bob,"event":{"name":"Launch","description":"Big day",
                   "startTime":2063137000,"location":{"name":"HQ"},"extraGuestsAllowed":true}}),
        )
        .await;
        assert_eq!(sent["body"], "Launch");
        assert!(field(&sent["_data"]["message"], "eventMessage", "event_message").is_object());
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A list.
        let sent = post_ok(
            &app,
            "/api/sendList",
            json!({"session":"alice","chatId":to_bob,"message":{"title":"Menu","button":"Choose",
                   "sections":[{"title":"Main","rows":[{"title":"One","rowId":"1"}]}]}}),
        )
        .await;
        assert!(field(&sent["_data"]["message"], "listMessage", "list_message").is_object());
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // A custom link preview (the image fetched from the loopback server).
        let thumb = bytes(3_000, 6);
        let sent = post_ok(
            &app,
            "/api/send/link-custom-preview",
            json!({"session":"alice","chatId":to_bob,"text":"see https://example.test/x",
                   "preview":{"url":"https://example.test/x","title":"Example","description":"An example",
                              "image":{"url":files.put("t.jpg", thumb.clone())}}}),
        )
        .await;
        let raw = field(
            &sent["_data"]["message"],
            "extendedTextMessage",
            "extended_text_message",
        );
        assert_eq!(raw["title"], "Example");
        assert_eq!(
            raw_bytes(field(raw, "jpegThumbnail", "jpeg_thumbnail")),
            thumb
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // `linkPreview` (default true) on sendText: the page's OpenGraph title, description
        // and image (fetched from the loopback server) make the preview.
        let og_image = files.put("og.jpg", bytes(2_000, 7));
        let page = files.put(
            "page.html",
            format!(
                r#"<html><head><title>Plain</title><meta property="og:title" content="Rich &amp; famous">
                <meta name="description" content="About it"><meta property="og:image" content="{og_image}"></head></html>"#
            )
            .into_bytes(),
        );
        let sent = post_ok(
            &app,
            "/api/sendText",
            json!({"session":"alice","chatId":to_bob,"text":format!("look {page} now")}),
        )
        .await;
        assert_eq!(sent["body"], format!("look {page} now"));
        let raw = field(
            &sent["_data"]["message"],
            "extendedTextMessage",
            "extended_text_message",
        );
        assert_eq!(raw["title"], "Rich & famous", "{sent}");
        assert_eq!(raw["description"], "About it");
        assert_eq!(field(raw, "matchedText", "matched_text"), page.as_str());
        assert_eq!(
            raw_bytes(field(raw, "jpegThumbnail", "jpeg_thumbnail")),
            bytes(2_000, 7)
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;
        let sent = post_ok(
            &app,
            "/api/sendText",
            json!({"session":"alice","chatId":to_bob,"text":format!("plain {page}"),"linkPreview":false}),
        )
        .await;
        assert!(
            sent["_data"]["message"].is_null(),
            "no preview asked: {sent}"
        );

        // The deprecated reply and link preview.
        let replied = post_ok(
            &app,
            "/api/reply",
            json!({"session":"alice","chatId":to_bob,"text":"re: poll","reply_to":poll["id"]}),
        )
        .await;
        assert_eq!(replied["replyTo"]["id"], poll_wa);
        delivered(&sink, "bob", "message", &wa_id(&replied["id"])).await;
        let sent = post_ok(
            &app,
            "/api/sendLinkPreview",
            json!({"session":"alice","chatId":to_bob,"url":"https://example.test/y","title":"Y"}),
        )
        .await;
        assert_eq!(sent["body"], "https://example.test/y");
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // Star and unstar the image.
        for star in [true, false] {
            let body = json!({"session":"alice","chatId":to_bob,"star":star,
                              "messageId":format!("true_{to_bob}_{own_id}")});
            let r = app.put("/api/star", &body.to_string()).await;
            assert_eq!(r.status, 200, "star {star}: {}", r.text);
        }

        // Converted with ffmpeg: a WAV becomes an OGG/Opus voice note with duration and
        // waveform; an AVI becomes an MP4.
        let sent = post_ok(
            &app,
            "/api/sendVoice",
            json!({"session":"alice","chatId":to_bob,"convert":true,
                   "file":{"mimetype":"audio/wav","data":b64(&wav_tone(2))}}),
        )
        .await;
        let raw = field(&sent["_data"]["message"], "audioMessage", "audio_message");
        assert_eq!(raw["mimetype"], "audio/ogg; codecs=opus", "{raw}");
        assert_eq!(raw["seconds"], 2, "{raw}");
        assert_eq!(raw_bytes(&raw["waveform"]).len(), 64, "{raw}");
        assert_eq!(sent["media"]["mimetype"], "audio/ogg; codecs=opus");
        let ogg = cdn_plaintext(
            &net,
            &sent,
            ("audioMessage", "audio_message"),
            MediaType::Audio,
        )
        .await;
        assert_eq!(&ogg[..4], b"OggS");
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;
        let sent = post_ok(
            &app,
            "/api/sendVideo",
            json!({"session":"alice","chatId":to_bob,"convert":true,
                   "file":{"mimetype":"video/x-msvideo","url":files.put("in.avi", avi_clip())}}),
        )
        .await;
        assert_eq!(sent["media"]["mimetype"], "video/mp4");
        let mp4 = cdn_plaintext(
            &net,
            &sent,
            ("videoMessage", "video_message"),
            MediaType::Video,
        )
        .await;
        assert_eq!(&mp4[4..8], b"ftyp");
        // A real video gets an inline JPEG thumbnail (its first frame, made by ffmpeg).
        let video_msg = field(&sent["_data"]["message"], "videoMessage", "video_message");
        let thumb = field(video_msg, "jpegThumbnail", "jpeg_thumbnail");
        assert!(
            thumb.as_str().is_some_and(|t| !t.is_empty())
                || thumb.as_array().is_some_and(|t| !t.is_empty()),
            "no thumbnail: {video_msg}"
        );
        delivered(&sink, "bob", "message", &wa_id(&sent["id"])).await;

        // Buttons: WAHA's GOWS engine answers 422 for both.
        for (path, body) in [
            (
                "/api/sendButtons",
                json!({"session":"alice","chatId":to_bob,"header":"h","body":"b","footer":"f","buttons":[]}),
            ),
            (
                "/api/send/buttons/reply",
                json!({"session":"alice","chatId":to_bob,"selectedDisplayText":"x","selectedButtonID":"1"}),
            ),
        ] {
            let r = app.post(path, &body.to_string()).await;
            assert_eq!(r.status, 422, "{path}");
            assert_eq!(
                r.text,
                r#"{"message":"The method is not implemented by the engine.","error":"Unprocessable Entity","statusCode":422}"#
            );
        }

        // Everything sent is in alice's history (the deprecated listing too).
        let r = app
            .get(&format!(
                "/api/messages?session=alice&chatId={to_bob}&limit=100&filter.fromMe=true"
            ))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let listed = r.json();
        let image_row = listed
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == format!("true_{to_bob}_{own_id}"))
            .unwrap_or_else(|| panic!("image in {listed}"));
        assert_eq!(image_row["hasMedia"], true);
        assert_eq!(image_row["media"]["mimetype"], "image/jpeg");
        assert_eq!(listed.as_array().unwrap().len(), 18, "{listed}");

        let r = app
            .get(&format!("/api/checkNumberStatus?session=alice&phone={BOB}"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"chatId": to_bob, "numberExists": true}));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_media_bad_file_is_400_and_nothing_is_sent() {
    for store in StoreKind::all("media_send_bad_input") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let files = FileServer::start().await;
        let app = TestApp::spawn_wa(store, &net, &[("WHARF_MEDIA_MAX_MB", "1")]).await;
        pair_hooked(&app, &net, &sink, "alice", ALICE).await;
        let to_bob = format!("{BOB}@c.us");
        let big = b64(&bytes(1024 * 1024 + 10, 9));
        let validation =
            |m: &str| format!(r#"{{"message":["{m}"],"error":"Bad Request","statusCode":400}}"#);
        let cases: Vec<(&str, Value, String)> = vec![
            (
                "/api/sendImage",
                json!({"url": files.put("ok.jpg", vec![1, 2, 3])}),
                validation("file.mimetype should not be empty"),
            ),
            (
                "/api/sendFile",
                json!({"mimetype":"text/plain","url":files.put("ok.txt", vec![1]),"data":"AAAA"}),
                validation("file must contain either url or data, not both"),
            ),
            (
                "/api/sendVoice",
                json!({"mimetype":"audio/ogg"}),
                validation("file must contain either url or data"),
            ),
            (
                "/api/sendImage",
                json!({"mimetype":"image/png","data":"not base64!!"}),
                validation("file.data must be base64 encoded"),
            ),
            (
                // Large enough to be decoded to disk while the body arrives (spooled).
                "/api/sendImage",
                json!({"mimetype":"image/png","data":format!("{}*{}", &big[..70_000], &big[..4])}),
                validation("file.data must be base64 encoded"),
            ),
            (
                "/api/sendVideo",
                json!({"mimetype":"video/mp4","url":"ftp://127.0.0.1/v.mp4"}),
                validation("file.url must be a URL address"),
            ),
            (
                "/api/sendFile",
                json!({"mimetype":"text/plain","data":big}),
                r#"{"message":"The file is too large: the limit is 1048576 bytes","error":"Bad Request","statusCode":400}"#.to_string(),
            ),
            (
                "/api/sendFile",
                json!({"mimetype":"text/plain","url":format!("{}/huge-declared", files.base)}),
                r#"{"message":"The file is too large: the limit is 1048576 bytes","error":"Bad Request","statusCode":400}"#.to_string(),
            ),
            (
                "/api/sendFile",
                json!({"mimetype":"text/plain","url":format!("{}/huge-chunked", files.base)}),
                r#"{"message":"The file is too large: the limit is 1048576 bytes","error":"Bad Request","statusCode":400}"#.to_string(),
            ),
        ];
        for (path, file, want) in cases {
            let body = json!({"session":"alice","chatId":to_bob,"file":file});
            let r = app.post(path, &body.to_string()).await;
            assert_eq!(r.status, 400, "{path} {file}: {}", r.text);
            assert_eq!(r.text, want, "{path} {file}");
        }
        // Unreachable and failing URLs: a 400 that says which URL and why.
        for url in [
            format!("{}/missing.jpg", files.base),
            "http://127.0.0.1:1/nothing-listens-here".to_string(),
        ] {
            let body = json!({"session":"alice","chatId":to_bob,
                              "file":{"mimetype":"image/jpeg","url":url}});
            let r = app.post("/api/sendImage", &body.to_string()).await;
            assert_eq!(r.status, 400, "{url}: {}", r.text);
            let v = r.json();
            let message = v["message"].as_str().unwrap();
            assert!(
                message.starts_with(&format!("Failed to download the file from '{url}': ")),
                "{message}"
            );
            assert_eq!(v["error"], "Bad Request");
        }
        // A file ffmpeg cannot read: 400, nothing sent.
        let body = json!({"session":"alice","chatId":to_bob,"convert":true,
                          "file":{"mimetype":"audio/wav","data":b64(b"not audio at all")}});
        let r = app.post("/api/sendVoice", &body.to_string()).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(
            r.json()["message"]
                .as_str()
                .unwrap()
                .starts_with("Cannot convert the file with ffmpeg: "),
            "{}",
            r.text
        );
        // The conversion routes: the bytes, or a Base64File for `Accept: application/json`.
        let body = json!({"data": b64(&wav_tone(1))}).to_string();
        let r = app.post("/api/alice/media/convert/voice", &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.headers["content-type"], "audio/ogg; codecs=opus");
        let r = reqwest::Client::new()
            .post(format!("{}/api/alice/media/convert/voice", app.base))
            .header("X-Api-Key", crate::support::app::API_KEY)
            .header("content-type", "application/json")
            .header("accept", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let file: Value = r.json().await.unwrap();
        assert_eq!(file["mimetype"], "audio/ogg; codecs=opus");
        let ogg = base64::engine::general_purpose::STANDARD
            .decode(file["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(&ogg[..4], b"OggS");
        let body = json!({"url": files.put("c.avi", avi_clip())}).to_string();
        let r = app.post("/api/alice/media/convert/video", &body).await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.headers["content-type"], "video/mp4");
        let r = app
            .post("/api/alice/media/convert/video", r#"{"data":"AAAA"}"#)
            .await;
        assert_eq!(r.status, 400, "{}", r.text);

        // Invalid polls, a vote on a poll this session never saw, a list to a group.
        let r = app
            .post(
                "/api/sendPoll",
                &json!({"session":"alice","chatId":to_bob,"poll":{"name":"Q","options":["only"]}})
                    .to_string(),
            )
            .await;
        assert_eq!(
            r.text,
            r#"{"message":["poll.options must contain between 2 and 12 options"],"error":"Bad Request","statusCode":400}"#
        );
        let r = app
            .post(
                "/api/sendPoll",
                &json!({"session":"alice","chatId":to_bob,"poll":{"name":"Q","options":["a","a"]}})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        let r = app
            .post(
                "/api/sendPollVote",
                &json!({"session":"alice","chatId":to_bob,"votes":["a"],
                        "pollMessageId":format!("false_{to_bob}_3EB0000000000000000000")})
                .to_string(),
            )
            .await;
        assert_eq!(r.status, 422, "{}", r.text);
        let r = app
            .post(
                "/api/sendList",
                &json!({"session":"alice","chatId":"120363000000000001@g.us","message":{"title":"M",
                        "button":"B","sections":[{"title":"S","rows":[{"title":"R","rowId":"1"}]}]}})
                .to_string(),
            )
            .await;
        assert_eq!(
            r.text,
            r#"{"message":"List message can only be sent to a direct message chat.","error":"Unprocessable Entity","statusCode":422}"#
        );

        // Nothing of it was sent or recorded.
        let r = app
            .get(&format!("/api/alice/chats/{to_bob}/messages?limit=100"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!([]));
        assert!(
            sink.delivered("/alice")
                .iter()
                .all(|d| d.json()["event"] != "message.any"),
            "no message.any for refused sends"
        );
    }
}
