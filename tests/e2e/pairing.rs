//! Real sessions end to end: wharf's whatsapp-rust engine against the in-process mock
//! WhatsApp network (`mockwa`), on every store.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

fn decode_png_qr(png_bytes: &[u8]) -> String {
    let decoder = png::Decoder::new(std::io::Cursor::new(png_bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size().expect("size")];
    let info = reader.next_frame(&mut buf).expect("png frame");
    assert_eq!(info.color_type, png::ColorType::Grayscale);
    let (w, h) = (info.width as usize, info.height as usize);
    let mut img = rqrr::PreparedImage::prepare_from_greyscale(w, h, |x, y| buf[y * w + x]);
    let grids = img.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("QR decodes").1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_pairing_reaches_working_and_serves_all_qr_formats() {
    for store in StoreKind::all("qr_pairing") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let r = app.post("/api/sessions", r#"{"name":"alice"}"#).await;
        assert_eq!(r.status, 201);
        app.wait_status("alice", "SCAN_QR_CODE", Duration::from_secs(60))
            .await;

        let raw = app.get("/api/alice/auth/qr?format=raw").await;
        assert_eq!(raw.status, 200, "{}", raw.text);
        let qr = raw.json()["value"].as_str().unwrap().to_string();
        assert!(qr.starts_with("2@") || qr.contains(','), "{qr}");

        let png = app.get("/api/alice/auth/qr").await;
        assert_eq!(png.status, 200);
        assert_eq!(png.headers["content-type"], "image/png");
        let bytes = reqwest::Client::new()
            .get(format!("{}/api/alice/auth/qr?format=image", app.base))
            .header("X-Api-Key", crate::support::app::API_KEY)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(decode_png_qr(&bytes), qr, "the PNG encodes the raw QR");

        let b64 = reqwest::Client::new()
            .get(format!("{}/api/alice/auth/qr", app.base))
            .header("X-Api-Key", crate::support::app::API_KEY)
            .header("Accept", "application/json")
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(b64["mimetype"], "image/png");
        use base64::Engine as _;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(b64["data"].as_str().unwrap())
            .unwrap();
        assert_eq!(decode_png_qr(&decoded), qr);

        net.scan_qr(&qr, "15550001111", "Alice").expect("scan");
        let working = app
            .wait_status("alice", "WORKING", Duration::from_secs(40))
            .await;
        assert_eq!(working["me"]["id"], "15550001111@c.us");
        assert!(
            working["me"]["jid"]
                .as_str()
                .unwrap()
                .starts_with("15550001111:")
        );
        assert_eq!(
            app.get("/api/sessions/alice/me").await.json()["id"],
            "15550001111@c.us"
        );

        // QR of a WORKING session: WAHA's exact 422.
        let r = app.get("/api/alice/auth/qr?format=raw").await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.text,
            r#"{"error":"Session status is not as expected. Try again later or restart the session","session":"alice","status":"WORKING","expected":["SCAN_QR_CODE"]}"#
        );
        // Request-code while WORKING: WAHA's 422 message.
        let r = app
            .post(
                "/api/alice/auth/request-code",
                r#"{"phoneNumber":"15550001111"}"#,
            )
            .await;
        assert_eq!(r.status, 422);
        assert_eq!(
            r.text,
            r#"{"message":"Can request code only in SCAN_QR_CODE status. The current status is WORKING","error":"Unprocessable Entity","statusCode":422}"#
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_of_unknown_or_stopped_session_returns_422() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    let r = app.get("/api/ghost/auth/qr").await;
    assert_eq!(r.status, 422);
    assert_eq!(
        r.text,
        r#"{"error":"Session \"ghost\" does not exist","session":"ghost"}"#
    );
    app.post("/api/sessions", r#"{"name":"idle","start":false}"#)
        .await;
    let r = app.get("/api/idle/auth/qr").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["status"], "STOPPED");
    assert_eq!(r.json()["expected"], json!(["SCAN_QR_CODE"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_code_reaches_working() {
    for store in StoreKind::all("pairing_code") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.post("/api/sessions", r#"{"name":"bob"}"#).await;
        let r = app
            .post(
                "/api/bob/auth/request-code",
                r#"{"phoneNumber":"+1 555 000 2222"}"#,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let code = r.json()["code"].as_str().unwrap().to_string();
        assert_eq!(code.len(), 9, "{code}");
        assert_eq!(&code[4..5], "-");
        net.pair_code("15550002222", &code)
            .await
            .expect("phone confirms the code");
        let working = app
            .wait_status("bob", "WORKING", Duration::from_secs(40))
            .await;
        assert_eq!(working["me"]["id"], "15550002222@c.us");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graceful_restart_logs_back_in_without_scanning() {
    for store in StoreKind::all("graceful_restart") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "carol", "15550003333").await;
        let app = app.restart().await;
        let s = app
            .wait_status("carol", "WORKING", Duration::from_secs(30))
            .await;
        assert_eq!(s["me"]["id"], "15550003333@c.us");
        assert_eq!(net.devices().len(), 1, "no second device was linked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_from_phone_fails_then_stop_and_delete() {
    for store in StoreKind::all("unlink") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let s = app.pair(&net, "dave", "15550004444").await;
        let jid = net.devices()[0].jid.clone();
        assert!(jid.starts_with("15550004444:"), "{jid} vs {s}");
        net.unlink(&jid).expect("phone unlinks");
        app.wait_status("dave", "FAILED", Duration::from_secs(20))
            .await;
        let r = app.post("/api/sessions/dave/stop", "").await;
        assert_eq!(r.json()["status"], "STOPPED");
        assert_eq!(
            app.get("/api/sessions/dave/me").await.text,
            "null",
            "credentials wiped"
        );
        // Starting again asks for a fresh QR (the dead credentials are gone).
        app.post("/api/sessions/dave/start", "").await;
        app.wait_status("dave", "SCAN_QR_CODE", Duration::from_secs(60))
            .await;
        assert_eq!(app.delete("/api/sessions/dave").await.status, 200);
        assert_eq!(app.get("/api/sessions/dave").await.status, 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unscanned_qr_fails_after_the_qr_timeout() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHARF_QR_TIMEOUT_SECONDS", "1")],
    )
    .await;
    app.post("/api/sessions", r#"{"name":"late"}"#).await;
    app.wait_status("late", "SCAN_QR_CODE", Duration::from_secs(60))
        .await;
    app.wait_status("late", "FAILED", Duration::from_secs(10))
        .await;
    // FAILED by QR timeout is final: no automatic restart.
    let r = app.get("/api/late/auth/qr?format=raw").await;
    assert_eq!(r.status, 422);
    assert_eq!(r.json()["status"], "FAILED");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_of_working_session_unlinks_and_shows_new_qr() {
    for store in StoreKind::all("logout_working") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "erin", "15550005555").await;
        assert_eq!(net.devices().len(), 1);
        let r = app.post("/api/sessions/erin/logout", "").await;
        assert_eq!(r.status, 201);
        app.wait_status("erin", "SCAN_QR_CODE", Duration::from_secs(60))
            .await;
        assert!(
            net.devices().is_empty(),
            "the phone no longer lists the device"
        );
        assert_eq!(app.get("/api/sessions/erin/me").await.text, "null");
        // A fresh QR means fresh keys: pairing again links a new device.
        let qr = app.get("/api/erin/auth/qr?format=raw").await.json()["value"]
            .as_str()
            .unwrap()
            .to_string();
        net.scan_qr(&qr, "15550005555", "Erin").unwrap();
        app.wait_status("erin", "WORKING", Duration::from_secs(40))
            .await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_sessions_pair_in_parallel() {
    for store in StoreKind::all("twenty_sessions") {
        let started = std::time::Instant::now();
        let label = format!("{store:?}");
        let net = std::sync::Arc::new(mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap());
        let app = std::sync::Arc::new(TestApp::spawn_wa(store, &net, &[]).await);
        let mut tasks = Vec::new();
        for i in 0..20 {
            let (app, net) = (app.clone(), net.clone());
            tasks.push(tokio::spawn(async move {
                let name = format!("bulk{i}");
                let phone = format!("1555100{i:04}");
                // Generous: the MongoDB test server (SecantusDB) takes ~1 ms per write and each
                // new device uploads a batch of prekeys; a real MongoDB is far faster.
                let s = app
                    .pair_within(&net, &name, &phone, Duration::from_secs(180))
                    .await;
                assert_eq!(s["me"]["id"], format!("{phone}@c.us"));
            }));
        }
        for t in tasks {
            t.await.expect("session paired");
        }
        let working = app.get("/api/sessions").await.json();
        assert_eq!(
            working
                .as_array()
                .unwrap()
                .iter()
                .filter(|s| s["status"] == "WORKING")
                .count(),
            20
        );
        assert_eq!(net.devices().iter().filter(|d| d.connected).count(), 20);
        eprintln!("20 sessions paired in {:?} on {label}", started.elapsed());
    }
}

/// The real binary, killed with SIGKILL while WORKING, comes back WORKING without a scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_then_restart_resumes_working_sessions() {
    use crate::support::process::{Wharf, store_env};
    for store in StoreKind::all("sigkill_restart") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let mut owned = store_env(&store);
        owned.push(("WHARF_WA_URL".into(), net.ws_url()));
        let env: Vec<(&str, &str)> = owned
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let key = "sigkill-test-key-0123456789";

        let mut wharf = Wharf::start(dir.path(), key, &env).await;
        wharf.pair(&net, "k1", "15550007777", json!({})).await;
        // WAHA_PRINT_QR defaults to true: the QR was drawn in the log.
        let log = std::fs::read_to_string(&wharf.log).unwrap();
        assert!(
            log.contains("scan this QR code") && log.contains('▀'),
            "{log}"
        );
        wharf.kill();

        let wharf = Wharf::start(dir.path(), key, &env).await;
        let s = wharf.wait_status("k1", "WORKING", 40).await;
        assert_eq!(s["me"]["id"], "15550007777@c.us");
        assert_eq!(net.devices().len(), 1, "logged back in, not re-paired");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transient_disconnect_recovers_and_replaced_stream_fails() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(StoreKind::Embedded, &net, &[]).await;
    app.pair(&net, "flaky", "15550008888").await;
    let jid = net.devices()[0].jid.clone();
    net.disconnect(&jid).unwrap();
    // WORKING → STARTING → WORKING by itself (the engine reconnects).
    eventually(Duration::from_secs(30), "flaky recovers", || async {
        let s = app.get("/api/sessions/flaky").await.json();
        if s["status"] == "WORKING" && net.devices()[0].connected {
            Ok(())
        } else {
            Err(s.to_string())
        }
    })
    .await;
    net.stream_error(&jid, "conflict").unwrap();
    app.wait_status("flaky", "FAILED", Duration::from_secs(20))
        .await;
}

/// WAHA's "stuck in STARTING" pain: no connection within the timeout → FAILED, then an
/// automatic restart with backoff that succeeds once the network is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_network_fails_then_restarts_by_itself() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    net.set_faults(&mockwa::FaultSettings {
        refuse_connections: Some(true),
        ..Default::default()
    });
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WHARF_CONNECT_TIMEOUT_SECONDS", "1"),
            ("WHARF_RESTART_BACKOFF_SECONDS", "0.5"),
        ],
    )
    .await;
    app.post("/api/sessions", r#"{"name":"offline"}"#).await;
    let failed = app
        .wait_status("offline", "FAILED", Duration::from_secs(20))
        .await;
    assert_eq!(failed["status"], "FAILED");
    net.set_faults(&mockwa::FaultSettings {
        refuse_connections: Some(false),
        ..Default::default()
    });
    // The restart loop brings it to the QR without anyone calling start.
    app.wait_status("offline", "SCAN_QR_CODE", Duration::from_secs(30))
        .await;
}
