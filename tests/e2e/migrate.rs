//! `wharf migrate`, `wharf export` / `wharf import` and the boot hint, with the real
//! binary against mockwa: a paired session moves between stores (there and back) and
//! through an encrypted file, and comes up WORKING without a QR scan, with its message
//! history and its undelivered webhooks. Bob runs on a server of his own throughout, so
//! the moved session can prove it still decrypts new messages.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use crate::support::mongo::MongoServer;
use crate::support::poll::eventually;
use crate::support::process::Wharf;
use crate::support::sink::Sink;

const KEY: &str = "migrate-test-key-0123456789";

/// Runs `wharf ARGS` in `dir` with only `PATH` and `env` set.
fn cli(dir: &Path, env: &[(String, String)], args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_wharf"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .output()
        .expect("wharf runs")
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn pairs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

async fn send(w: &Wharf, session: &str, to_phone: &str, body: &str) {
    let (st, r) = w
        .call(
            Method::POST,
            "/api/sendText",
            Some(json!({"session": session, "chatId": format!("{to_phone}@c.us"), "text": body})),
        )
        .await;
    assert_eq!(st, 201, "{r}");
}

/// Waits until the chat's history holds exactly `want` (oldest first).
async fn wait_history(w: &Wharf, session: &str, peer: &str, want: &[&str]) {
    let path = format!("/api/{session}/chats/{peer}@c.us/messages?limit=50&sortOrder=asc");
    eventually(
        Duration::from_secs(40),
        &format!("{session}'s history is {want:?}"),
        || async {
            let (st, v) = w.call(Method::GET, &path, None).await;
            let got: Vec<String> = v
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|m| m["body"].as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            if st == 200 && got == want {
                Ok(())
            } else {
                Err(format!("{st} {got:?}"))
            }
        },
    )
    .await;
}

/// Waits until the sink saw (and failed) a `message` webhook with this body: the event is
/// in the session's outbox.
async fn wait_attempted(sink: &Sink, body: &str) {
    eventually(
        Duration::from_secs(30),
        &format!("a webhook attempt for {body:?}"),
        || async {
            let seen = sink
                .received()
                .iter()
                .any(|r| r.json()["payload"]["body"] == body);
            if seen { Ok(()) } else { Err("none yet".into()) }
        },
    )
    .await;
}

fn delivered_bodies(sink: &Sink) -> Vec<String> {
    sink.delivered("/alice")
        .iter()
        .map(|r| {
            r.json()["payload"]["body"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        })
        .collect()
}

const ALICE: &str = "15550041001";
const BOB: &str = "15550041002";

fn hooks(sink: &Sink) -> Value {
    json!({"webhooks": [{"url": sink.url("/alice"), "events": ["message"],
        "retries": {"delaySeconds": 0.2, "attempts": 10000, "policy": "constant"}}]})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_to_mongodb_and_back_keeps_the_session_working() {
    let Some(mongo) = MongoServer::shared("migrate_to_mongodb_and_back") else {
        return;
    };
    let ns = mongo.unique_namespace();
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let embedded: Vec<(String, String)> = vec![
        ("WHARF_WA_URL".into(), net.ws_url()),
        ("WAHA_PRINT_QR".into(), "false".into()),
        ("WAHA_NAMESPACE".into(), ns.clone()),
        ("WAHA_SESSION_NAMESPACE".into(), ns.clone()),
    ];
    let mut on_mongo = embedded.clone();
    on_mongo.push((
        "WHATSAPP_SESSIONS_MONGO_URL".into(),
        mongo.url().to_string(),
    ));

    let bob_dir = tempfile::tempdir().unwrap();
    let bob = Wharf::start(bob_dir.path(), KEY, &pairs(&embedded)).await;
    bob.pair(&net, "bob", BOB, json!({})).await;

    // Alice on the embedded store: history both ways, one webhook left undelivered.
    let dir = tempfile::tempdir().unwrap();
    sink.fail_always(true);
    let mut alice = Wharf::start(dir.path(), KEY, &pairs(&embedded)).await;
    alice.pair(&net, "alice", ALICE, hooks(&sink)).await;
    send(&bob, "bob", ALICE, "before").await;
    wait_history(&alice, "alice", BOB, &["before"]).await;
    send(&alice, "alice", BOB, "reply").await;
    wait_history(&alice, "alice", BOB, &["before", "reply"]).await;
    wait_attempted(&sink, "before").await;
    alice.terminate();

    // Boot hint: MongoDB configured, the embedded store has a session MongoDB lacks.
    let mut hinted = Wharf::start(dir.path(), KEY, &pairs(&on_mongo)).await;
    let log_path = hinted.log.clone();
    hinted.terminate();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("wharf migrate --from embedded --to \\\"$WHATSAPP_SESSIONS_MONGO_URL\\\"")
            || log.contains("wharf migrate --from embedded --to \"$WHATSAPP_SESSIONS_MONGO_URL\""),
        "{log}"
    );
    assert!(log.contains("alice"), "{log}");

    let out = cli(dir.path(), &embedded, &["migrate", "--to", mongo.url()]);
    assert!(out.status.success(), "{}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("messages")
            && stdout.contains("device.sessions")
            && !stdout.contains("MISMATCH"),
        "{}",
        text(&out)
    );
    // Again: idempotent (an interrupted run is finished by running it again).
    let out = cli(dir.path(), &embedded, &["migrate", "--to", mongo.url()]);
    assert!(out.status.success(), "{}", text(&out));

    // On MongoDB: WORKING without a scan, the history, the webhook delivered.
    let mut alice = Wharf::start(dir.path(), KEY, &pairs(&on_mongo)).await;
    alice.wait_status("alice", "WORKING", 60).await;
    wait_history(&alice, "alice", BOB, &["before", "reply"]).await;
    sink.fail_always(false);
    sink.wait_delivered("/alice", 1, Duration::from_secs(40))
        .await;
    assert_eq!(delivered_bodies(&sink), ["before"], "delivered once");
    // Its keys work: a new message from Bob is decrypted; its webhook stays undelivered.
    sink.fail_always(true);
    send(&bob, "bob", ALICE, "on mongo").await;
    wait_history(&alice, "alice", BOB, &["before", "reply", "on mongo"]).await;
    wait_attempted(&sink, "on mongo").await;
    alice.terminate();

    // And back to an embedded store (a fresh folder).
    let back = tempfile::tempdir().unwrap();
    let to = format!("embedded:{}", back.path().join(".sessions").display());
    let out = cli(dir.path(), &on_mongo, &["migrate", "--to", &to]);
    assert!(out.status.success(), "{}", text(&out));
    let alice = Wharf::start(back.path(), KEY, &pairs(&embedded)).await;
    alice.wait_status("alice", "WORKING", 60).await;
    wait_history(&alice, "alice", BOB, &["before", "reply", "on mongo"]).await;
    sink.fail_always(false);
    sink.wait_delivered("/alice", 2, Duration::from_secs(40))
        .await;
    assert_eq!(delivered_bodies(&sink), ["before", "on mongo"]);
    send(&bob, "bob", ALICE, "back home").await;
    wait_history(
        &alice,
        "alice",
        BOB,
        &["before", "reply", "on mongo", "back home"],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_and_import_move_one_session_in_an_encrypted_file() {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let env: Vec<(String, String)> = vec![
        ("WHARF_WA_URL".into(), net.ws_url()),
        ("WAHA_PRINT_QR".into(), "false".into()),
    ];
    let alice_phone = "15550042001";
    let bob_phone = "15550042002";
    let bob_dir = tempfile::tempdir().unwrap();
    let bob = Wharf::start(bob_dir.path(), KEY, &pairs(&env)).await;
    bob.pair(&net, "bob", bob_phone, json!({})).await;

    // Alice's webhook fails throughout the export: the event must travel in the file.
    let sink = Sink::start().await;
    sink.fail_always(true);
    let dir = tempfile::tempdir().unwrap();
    let mut alice = Wharf::start(dir.path(), KEY, &pairs(&env)).await;
    alice.pair(&net, "alice", alice_phone, hooks(&sink)).await;
    send(&bob, "bob", alice_phone, "exported secret").await;
    wait_history(&alice, "alice", bob_phone, &["exported secret"]).await;
    wait_attempted(&sink, "exported secret").await;
    alice.terminate();

    let mut with_pass = env.clone();
    with_pass.push((
        "WHARF_BACKUP_PASSPHRASE".into(),
        "correct horse battery".into(),
    ));
    let file = dir.path().join("alice.wharf");
    let file_s = file.to_str().unwrap();
    let out = cli(
        dir.path(),
        &with_pass,
        &["export", "alice", "--out", file_s],
    );
    assert!(out.status.success(), "{}", text(&out));
    let bytes = std::fs::read(&file).unwrap();
    assert!(bytes.starts_with(b"WHARFBK1"));
    assert!(
        !bytes.windows(15).any(|w| w == b"exported secret"),
        "the history is encrypted"
    );
    assert!(!dir.path().join("alice.wharf.partial").exists());
    // No passphrase on the command line.
    let out = cli(
        dir.path(),
        &env,
        &["export", "alice", "--out", file_s, "--passphrase", "x"],
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    let fresh = tempfile::tempdir().unwrap();
    // Wrong passphrase, and a changed byte: refused, nothing written.
    let mut wrong = env.clone();
    wrong.push(("WHARF_BACKUP_PASSPHRASE".into(), "wrong".into()));
    let out = cli(fresh.path(), &wrong, &["import", file_s]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("wrong passphrase"),
        "{}",
        text(&out)
    );
    let mut tampered = bytes.clone();
    let at = tampered.len() - 40;
    tampered[at] ^= 1;
    let tampered_file = fresh.path().join("tampered.wharf");
    std::fs::write(&tampered_file, &tampered).unwrap();
    let out = cli(
        fresh.path(),
        &with_pass,
        &["import", tampered_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let truncated_file = fresh.path().join("truncated.wharf");
    std::fs::write(&truncated_file, &bytes[..bytes.len() - 30]).unwrap();
    let out = cli(
        fresh.path(),
        &with_pass,
        &["import", truncated_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        !fresh.path().join(".sessions").exists(),
        "nothing written by a refused import"
    );

    // The passphrase from a file; then the session runs on the fresh store, no scan.
    let pass_file = fresh.path().join("pass");
    std::fs::write(&pass_file, "correct horse battery\n").unwrap();
    let out = cli(
        fresh.path(),
        &env,
        &[
            "import",
            file_s,
            "--passphrase-file",
            pass_file.to_str().unwrap(),
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    // Importing again over it is refused without --replace.
    let out = cli(fresh.path(), &with_pass, &["import", file_s]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));

    let alice = Wharf::start(fresh.path(), KEY, &pairs(&env)).await;
    alice.wait_status("alice", "WORKING", 60).await;
    wait_history(&alice, "alice", bob_phone, &["exported secret"]).await;
    // The undelivered webhook came along and is delivered, once.
    sink.fail_always(false);
    sink.wait_delivered("/alice", 1, Duration::from_secs(40))
        .await;
    assert_eq!(
        delivered_bodies(&sink),
        ["exported secret"],
        "delivered once"
    );
    send(&bob, "bob", alice_phone, "after import").await;
    wait_history(
        &alice,
        "alice",
        bob_phone,
        &["exported secret", "after import"],
    )
    .await;
}
