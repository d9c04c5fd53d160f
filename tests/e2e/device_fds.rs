//! Issue 16, descriptors: an idle session's embedded device store (`whatsapp.db`) closes
//! its SQLite connection (database, `-wal`, `-shm`) and reopens on the next use, with the
//! keys intact across closes and restarts; and the startup warning when the open-file
//! limit cannot hold the stored sessions, seen in the real binary's log under a low
//! `ulimit -n`.

use std::{path::Path, process::Command, time::Duration};

use serde_json::json;

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550007001";
const B: &str = "15550007002";

/// Descriptors of this (test) process open on `{session}/whatsapp.db*` under `root`.
fn device_fds(root: &Path, session: &str) -> usize {
    let prefix = root.to_string_lossy().into_owned();
    let needle = format!("/{session}/whatsapp.db");
    std::fs::read_dir("/proc/self/fd")
        .expect("/proc/self/fd")
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| p.starts_with(&prefix) && p.contains(&needle))
        .count()
}

async fn wait_closed(app: &TestApp, session: &str) {
    eventually(
        Duration::from_secs(20),
        &format!("{session}'s device store closes while idle"),
        || async {
            match device_fds(app.dir.path(), session) {
                0 => Ok(()),
                n => Err(format!("{n} descriptors open")),
            }
        },
    )
    .await;
}

/// Sends `text` from `from` to `to_phone` and waits for it on `to`'s webhook.
async fn send_and_receive(app: &TestApp, sink: &Sink, from: &str, to: &str, to_phone: &str) {
    let text = format!("idle-{from}-{to}-{}", std::process::id());
    let body = json!({"session": from, "chatId": format!("{to_phone}@c.us"), "text": text});
    let r = app.post("/api/sendText", &body.to_string()).await;
    assert_eq!(r.status, 201, "{}", r.text);
    sink.wait_message(&format!("/{to}"), &text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_device_store_closes_reopens_on_use_and_keeps_keys() {
    for store in StoreKind::all("idle_device_store_closes_reopens_on_use_and_keeps_keys") {
        let embedded = matches!(store, StoreKind::Embedded);
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let idle = [("WHARF_DEVICE_STORE_IDLE_SECONDS", "0.3")];
        let app = TestApp::spawn_wa(store, &net, &idle).await;
        for (name, phone) in [("a", A), ("b", B)] {
            let body = json!({
                "name": name,
                "config": {"webhooks": [{"url": sink.url(&format!("/{name}")), "events": ["message"]}]},
            });
            app.pair_created(&net, &body.to_string(), name, phone).await;
        }
        // whatsmeow's batch by default (nothing has fetched any yet).
        for phone in [A, B] {
            eventually(Duration::from_secs(20), "50 pre-keys uploaded", || async {
                match prekeys_of(&net, phone) {
                    50 => Ok(()),
                    n => Err(format!("{n} pre-keys")),
                }
            })
            .await;
        }
        if embedded {
            // The store was open (pairing wrote the keys through it), then idles shut.
            wait_closed(&app, "a").await;
            wait_closed(&app, "b").await;
        }

        // Encrypting on `a` and decrypting on `b` reopen both stores.
        send_and_receive(&app, &sink, "a", "b", B).await;
        send_and_receive(&app, &sink, "b", "a", A).await;
        if embedded {
            wait_closed(&app, "a").await;
            wait_closed(&app, "b").await;
        }

        // What was written through closed-and-reopened stores is what a restart loads.
        let app = app.restart().await;
        app.wait_status("a", "WORKING", Duration::from_secs(40))
            .await;
        app.wait_status("b", "WORKING", Duration::from_secs(40))
            .await;
        send_and_receive(&app, &sink, "a", "b", B).await;
        send_and_receive(&app, &sink, "b", "a", A).await;
        if embedded {
            wait_closed(&app, "a").await;
        }
    }
}

/// One-time pre-keys the mock holds for `phone`'s (only) companion device.
fn prekeys_of(net: &mockwa::MockNetwork, phone: &str) -> usize {
    crate::support::only_companion(net, phone).prekeys
}

/// `WHARF_PREKEY_UPLOAD_COUNT` is the batch whatsapp-rust generates and uploads on pairing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekey_upload_count_sets_the_pairing_batch() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHARF_PREKEY_UPLOAD_COUNT", "20")],
    )
    .await;
    app.pair(&net, "a", A).await;
    eventually(Duration::from_secs(20), "20 pre-keys uploaded", || async {
        match prekeys_of(&net, A) {
            20 => Ok(()),
            n => Err(format!("{n} pre-keys")),
        }
    })
    .await;
}

/// With the idle close switched off (`0`), the store stays open, as before: the test
/// above cannot pass by accident of the descriptors never being opened.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_store_stays_open_when_idle_close_is_off() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(
        StoreKind::Embedded,
        &net,
        &[("WHARF_DEVICE_STORE_IDLE_SECONDS", "0")],
    )
    .await;
    app.pair(&net, "a", A).await;
    // Longer than the other test's idle time, measured by polling something else.
    let until = tokio::time::Instant::now() + Duration::from_secs(1);
    eventually(Duration::from_secs(5), "a second passes", || async {
        if tokio::time::Instant::now() >= until {
            Ok(())
        } else {
            Err("waiting".to_string())
        }
    })
    .await;
    assert!(
        device_fds(app.dir.path(), "a") >= 2,
        "database and WAL stay open"
    );
}

/// The real binary under `ulimit -n 300`: (300 − 256 reserved) / 2 per session = 22
/// sessions fit; 23 stored ones get the warning, 22 do not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_warns_when_open_file_limit_cannot_hold_stored_sessions() {
    let mut app = TestApp::spawn(StoreKind::Embedded).await;
    for i in 0..22 {
        let body = json!({"name": format!("s{i}"), "start": false});
        let r = app.post("/api/sessions", &body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
    app.stop().await;
    let base = app.dir.path().join("sessions");
    let fits = binary_log_under_limit(app.dir.path(), &base, "fits");
    assert!(
        fits.contains("holds about 22 running sessions on the sqlite store (2 descriptors each); 22 are stored")
            && !fits.contains("sessions past that will fail"),
        "{fits}"
    );

    let mut app = app.restart().await;
    let r = app
        .post("/api/sessions", r#"{"name":"s22","start":false}"#)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    app.stop().await;
    let over = binary_log_under_limit(app.dir.path(), &base, "over");
    assert!(
        over.contains("open files: the limit (300) holds about 22 running sessions")
            && over.contains("but 23 are stored; sessions past that will fail"),
        "{over}"
    );
}

/// Runs the binary on the store at `base` with `ulimit -n 300` until it has logged its
/// open-file capacity; returns its log.
fn binary_log_under_limit(dir: &Path, base: &Path, tag: &str) -> String {
    let port = crate::support::process::free_port();
    let log = dir.join(format!("limit-{tag}.log"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -n 300 && exec \"$0\"")
        .arg(env!("CARGO_BIN_EXE_wharf"))
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("PORT", port.to_string())
        .env("WAHA_API_KEY", "limit-test-key-0123456789")
        .env("WAHA_LOCAL_STORE_BASE_DIR", base)
        .stdout(std::fs::File::create(&log).expect("log file"))
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sh starts wharf");
    // The startup check logs one line either way (info when the sessions fit).
    let text = crate::support::poll::eventually_blocking(
        Duration::from_secs(30),
        "wharf logs its open-file capacity",
        || {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if text.contains("holds about") {
                Ok(text)
            } else {
                Err(text)
            }
        },
    );
    let _ = child.kill();
    let _ = child.wait();
    text
}
