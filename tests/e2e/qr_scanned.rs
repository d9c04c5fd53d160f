//! The QR timeout (`WHARF_QR_TIMEOUT_SECONDS`) stops counting once the phone accepted a
//! scan: finishing the pairing (device keys, pre-keys, the login on the connection the
//! server opens next) can take seconds on a loaded store, and a timeout firing in between
//! used to fail a session the phone had just linked (found pairing 60 sessions across a
//! cluster: the last ones were scanned close to the 160 s bound and became `FAILED`).
//!
//! Provoked deterministically: the mock network refuses new connections right after the
//! scan, so the login that follows pair-success cannot happen until the QR timeout has
//! long passed; then it lets the client in and the session must reach `WORKING`.

use std::time::{Duration, Instant};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

/// The QR timeout of the app under test (seconds).
const QR_TIMEOUT: u64 = 3;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scanned_qr_is_not_failed_by_the_qr_timeout_while_logging_in() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let timeout = QR_TIMEOUT.to_string();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[
            ("WHARF_QR_TIMEOUT_SECONDS", timeout.as_str()),
            // Far beyond the window below: only the QR timeout could fail the session.
            ("WHARF_CONNECT_TIMEOUT_SECONDS", "60"),
        ],
    )
    .await;
    let r = app.post("/api/sessions", r#"{"name":"slowlogin"}"#).await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.wait_status("slowlogin", "SCAN_QR_CODE", Duration::from_secs(60))
        .await;
    let qr = app.get("/api/slowlogin/auth/qr?format=raw").await.json()["value"]
        .as_str()
        .expect("raw QR")
        .to_string();
    // The QR was shown before this instant, so its timeout falls before `shown + QR_TIMEOUT`.
    let shown = Instant::now();
    net.set_faults(&mockwa::FaultSettings {
        refuse_connections: Some(true),
        ..Default::default()
    });
    net.scan_qr(&qr, "15550001234", "Slow Login")
        .expect("the phone accepts the scan");

    // Until well past the QR timeout, the session (scanned, waiting to log in) never fails.
    let past = shown + Duration::from_secs(QR_TIMEOUT + 2);
    eventually(
        Duration::from_secs(QR_TIMEOUT + 20),
        "the QR timeout has passed",
        || async {
            let s = app.get("/api/sessions/slowlogin").await.json();
            assert_ne!(
                s["status"], "FAILED",
                "a scanned session was failed by the QR timeout: {s}"
            );
            if Instant::now() > past {
                Ok(())
            } else {
                Err(format!("{} s to go", (past - Instant::now()).as_secs_f32()))
            }
        },
    )
    .await;
    let refused = net.faults().refused_count.unwrap_or(0);
    assert!(refused > 0, "the client tried to log in meanwhile");

    net.set_faults(&mockwa::FaultSettings {
        refuse_connections: Some(false),
        ..Default::default()
    });
    let s = app
        .wait_status("slowlogin", "WORKING", Duration::from_secs(60))
        .await;
    assert_eq!(s["me"]["id"], "15550001234@c.us", "{s}");
}
