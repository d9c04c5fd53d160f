//! Linking and session lifecycle: QR, restart login, pairing code, unlink,
//! disconnect + reconnect, connect-time measurement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use mockwa::{FaultSettings, MockNetwork};
use whatsapp_rust::pair_code::PairCodeOptions;
use whatsapp_rust::prelude::*;
use whatsapp_rust::wacore::store::InMemoryBackend;

use crate::harness::{admin_http, eventually, paired_client, start_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qr_pairing_then_restart_login() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let backend = Arc::new(InMemoryBackend::new());
    let c = start_client(&net, backend.clone()).await;
    let qr = c.qr().await;
    // A QR nobody shows is a 404.
    let bad = net.scan_qr("2@nope,AAAA,AAAA,AAAA,WA", "15550001111", "Alice");
    assert_eq!(bad.unwrap_err().status(), 404);
    let t0 = Instant::now();
    let jid = net.scan_qr(&qr, "15550001111", "Alice").unwrap();
    assert_eq!(jid, "15550001111:1@s.whatsapp.net");
    c.connected(Duration::from_secs(40)).await;
    let first = t0.elapsed();
    eprintln!("QR scan -> Connected: {first:?}");
    // The mock phone's app-state key share ends the client's 10 s grace.
    assert!(
        first < Duration::from_secs(5),
        "first connect took {first:?}"
    );
    let pn = c.client.pn().expect("pn after pairing");
    assert_eq!(pn.user, "15550001111");
    assert_eq!(pn.device, 1);
    assert!(c.client.lid().is_some());
    let devs = net.devices();
    assert_eq!(devs.len(), 1);
    assert!(devs[0].connected);

    // "Process restart": a new client over the same store logs in directly.
    c.stop().await;
    eventually("device shows disconnected", Duration::from_secs(5), || {
        !net.devices()[0].connected
    })
    .await;
    let t1 = Instant::now();
    let c2 = start_client(&net, backend).await;
    c2.connected(Duration::from_secs(10)).await;
    let login = t1.elapsed();
    eprintln!("restart connect -> Connected: {login:?}");
    assert!(login < Duration::from_secs(3), "login took {login:?}");
    assert_eq!(c2.client.pn().unwrap().user, "15550001111");
    assert!(net.devices()[0].connected);

    // The client logs itself out: the phone forgets the device.
    c2.client.logout().await;
    c2.wait_for("LoggedOut", Duration::from_secs(10), |e| {
        matches!(e, Event::LoggedOut(_)).then_some(())
    })
    .await;
    eventually(
        "device removed after logout",
        Duration::from_secs(5),
        || net.devices().is_empty(),
    )
    .await;
    c2.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairing_code_links() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let backend = Arc::new(InMemoryBackend::new());
    let c = start_client(&net, backend).await;
    // The socket must be up (the QR flow starts alongside) before asking.
    let _ = c.qr().await;
    // No code requested yet for this phone.
    assert_eq!(
        net.pair_code("15550002222", "ABCD-EFGH")
            .await
            .unwrap_err()
            .status(),
        404
    );
    let code = c
        .client
        .pair_with_code(PairCodeOptions {
            phone_number: "15550002222".into(),
            show_push_notification: true,
            custom_code: None,
            platform_id: None,
            display_os: None,
        })
        .await
        .expect("pair_with_code");
    // A second client asks for a code; the "phone" types a wrong one: 404.
    let other = start_client(&net, Arc::new(InMemoryBackend::new())).await;
    let _ = other.qr().await;
    let other_code = other
        .client
        .pair_with_code(PairCodeOptions {
            phone_number: "15550002223".into(),
            show_push_notification: true,
            custom_code: None,
            platform_id: None,
            display_os: None,
        })
        .await
        .expect("pair_with_code");
    let wrong = if other_code.starts_with('A') {
        "BBBB-BBBB"
    } else {
        "AAAA-AAAA"
    };
    let err = net.pair_code("15550002223", wrong).await.unwrap_err();
    assert_eq!(err.status(), 404, "{err}");
    other.stop().await;

    let jid = net
        .pair_code("15550002222", &code)
        .await
        .expect("pair-code");
    assert!(jid.starts_with("15550002222:"), "{jid}");
    c.connected(Duration::from_secs(40)).await;
    assert_eq!(c.client.pn().unwrap().user, "15550002222");
    c.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unlink_logs_out_and_disconnect_reconnects() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let (c, store) = paired_client(&net, "15550003333", "Carol").await;
    let jid = c.client.pn().unwrap().to_string();

    // Dropped socket (via the HTTP API, JID percent-encoded): the client
    // reconnects by itself.
    c.clear();
    let (status, devs) = admin_http(&net, "GET", "/admin/devices", "").await;
    assert_eq!(status, 200);
    assert_eq!(devs[0]["jid"], jid.as_str());
    assert_eq!(devs[0]["connected"], true);
    let enc = jid.replace(':', "%3A").replace('@', "%40");
    let (status, _) = admin_http(
        &net,
        "POST",
        &format!("/admin/devices/{enc}/disconnect"),
        "",
    )
    .await;
    assert_eq!(status, 200);
    c.wait_for("Disconnected", Duration::from_secs(10), |e| {
        matches!(e, Event::Disconnected(_)).then_some(())
    })
    .await;
    c.connected(Duration::from_secs(15)).await;
    assert!(net.devices()[0].connected);

    // 515 from the server: immediate reconnect.
    c.clear();
    net.stream_error(&jid, "515").unwrap();
    c.connected(Duration::from_secs(15)).await;

    // Faults: while connections are refused the client cannot get back in;
    // once allowed again it reconnects on its own.
    net.set_faults(&FaultSettings {
        refuse_connections: Some(true),
        ..Default::default()
    });
    c.clear();
    net.disconnect(&jid).unwrap();
    eventually(
        "a reconnect attempt is refused",
        Duration::from_secs(15),
        || net.faults().refused_count.unwrap_or(0) > 0,
    )
    .await;
    assert!(!net.devices()[0].connected);
    net.set_faults(&FaultSettings {
        refuse_connections: Some(false),
        latency_ms: Some(50),
        ..Default::default()
    });
    c.connected(Duration::from_secs(20)).await;
    net.set_faults(&FaultSettings {
        latency_ms: Some(0),
        ..Default::default()
    });

    // Another session takes over: StreamReplaced, no reconnect.
    c.clear();
    net.stream_error(&jid, "conflict").unwrap();
    c.wait_for("StreamReplaced", Duration::from_secs(10), |e| {
        matches!(e, Event::StreamReplaced(_)).then_some(())
    })
    .await;
    c.stop().await;
    // A new client on the same store logs back in (the device is still linked).
    let c = start_client(&net, store).await;
    c.connected(Duration::from_secs(10)).await;

    // The phone unlinks the device: LoggedOut, and it is gone.
    net.unlink(&jid).unwrap();
    c.wait_for("LoggedOut", Duration::from_secs(10), |e| {
        matches!(e, Event::LoggedOut(_)).then_some(())
    })
    .await;
    assert!(net.devices().is_empty());
    assert_eq!(net.unlink(&jid).unwrap_err().status(), 404);
    c.stop().await;
}
