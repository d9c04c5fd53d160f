//! Cluster mode, request routing (`api::forward`): three real wharf workers on one
//! MongoDB and one mock WhatsApp network; every operation called through a worker that
//! does NOT run the session answers what the owner answers.
//!
//! Sessions are spread across the workers and paired through a non-owner (QR read there,
//! status polled there); then, through every worker, on a session another worker runs:
//! sendText (the receiver's webhook gets it), GET session and `/me`, a group with its
//! participants, presence, chats and messages lists, labels, channels, an invalid send
//! (the same 400), stop and start (no new QR); `GET /api/sessions` on every worker shows
//! every session with its real status. A forged, stale or key-less `X-Wharf-Cluster` is
//! refused and a valid one is never forwarded again. Last, SIGTERM one worker while a
//! client (which, like a load balancer, stops sending to the terminating worker) sends
//! to its sessions through the others with one retry: no request fails.

use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use hmac::{Hmac, Mac};
use mongodb::bson::doc;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::Sha256;

use crate::support::{
    cluster::{KEY, SECRET, cluster_env, lease, logins, start_worker, wait_members, wait_where},
    poll::eventually,
    process::Wharf,
    sink::Sink,
};

/// Sessions spread over the three workers: the 60 of the issue.
const SESSIONS: usize = 60;
/// Sessions paired at the same time.
const PAIR_BATCH: usize = 3;

fn name(i: usize) -> String {
    format!("r{i}")
}

fn phone(i: usize) -> String {
    format!("1555801{i:04}")
}

fn cus(i: usize) -> String {
    format!("{}@c.us", phone(i))
}

/// A raw request: status, `Retry-After`, body.
async fn raw(
    w: &Wharf,
    method: Method,
    path: &str,
    headers: &[(&str, String)],
    body: Option<&Value>,
) -> (u16, Option<String>, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", w.base));
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    if let Some(b) = body {
        req = req.json(b);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok())
                .map(str::to_string);
            (status, retry, r.json().await.unwrap_or_default())
        }
        Err(_) => (0, None, Value::Null),
    }
}

fn key() -> Vec<(&'static str, String)> {
    vec![("X-Api-Key", KEY.to_string())]
}

/// A cluster credential for `method path` signed `age_ms` ago with `secret`, the way a
/// worker signs (`cluster::peer`).
fn credential(secret: &str, worker: &str, method: &str, path: &str, age_ms: i64) -> String {
    let ms = (chrono::Utc::now().timestamp_millis() - age_ms).to_string();
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    for part in ["v1", worker, &ms, method, path] {
        mac.update(part.as_bytes());
        mac.update(b"\n");
    }
    format!(
        "v1 {worker} {ms} {}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// `GET path` through `via` and through `owner`: same status, same body (`timestamps`
/// aside: activity moves on).
async fn same_as_owner(via: &Wharf, owner: &Wharf, path: &str) -> Value {
    let strip = |mut v: Value| {
        if let Some(o) = v.as_object_mut() {
            o.remove("timestamps");
        }
        v
    };
    let (s1, _, b1) = raw(via, Method::GET, path, &key(), None).await;
    let (s2, _, b2) = raw(owner, Method::GET, path, &key(), None).await;
    assert_eq!((s1, strip(b1.clone())), (s2, strip(b2)), "GET {path}");
    b1
}

/// Polls `GET /api/sessions/{name}` through `via` until `status` on worker `owner`.
async fn wait_status_via(via: &Wharf, name: &str, status: &str, owner: Option<&str>) -> Value {
    eventually(
        Duration::from_secs(40),
        &format!("{name} {status} through {}", via.base),
        || async {
            let (_, _, s) = raw(
                via,
                Method::GET,
                &format!("/api/sessions/{name}"),
                &key(),
                None,
            )
            .await;
            let on = owner.is_none_or(|o| s["assignedWorker"] == o);
            if s["status"] == status && on {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await
}

fn worker_index(id: &str) -> usize {
    id.trim_start_matches('w').parse().expect("worker id wN")
}

/// Creates session `i` through `w[0]` (one at a time: placement counts what is placed).
async fn create(w: &[&Wharf], sink: &Sink, i: usize) {
    let n = name(i);
    let body = json!({
        "name": n,
        "config": {"webhooks": [{
            "url": sink.url(&format!("/{n}")),
            "events": ["message"],
            "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
        }]},
    });
    let (st, _, created) = raw(w[0], Method::POST, "/api/sessions", &key(), Some(&body)).await;
    assert_eq!(st, 201, "{created}");
}

/// Pairs session `i` through a worker that does not run it; returns the owner's index.
async fn pair_through_non_owner(
    w: &[&Wharf],
    main: &mongodb::Database,
    net: &mockwa::MockNetwork,
    i: usize,
) -> usize {
    let n = name(i);
    let target = lease(main, &n).await;
    let owner = worker_index(target.get_str("target").expect("placed"));
    let via = w[(owner + 1) % w.len()];
    let owner_id = format!("w{owner}");
    wait_status_via(via, &n, "SCAN_QR_CODE", Some(&owner_id)).await;
    // The QR may rotate between the read and the scan: read it again then.
    eventually(Duration::from_secs(40), &format!("{n} scanned"), || async {
        let (st, _, qr) = raw(
            via,
            Method::GET,
            &format!("/api/{n}/auth/qr?format=raw"),
            &key(),
            None,
        )
        .await;
        assert_eq!(st, 200, "QR through a non-owner: {qr}");
        let value = qr["value"].as_str().expect("raw QR");
        net.scan_qr(value, &phone(i), &n)
            .map(|_| ())
            .map_err(|e| format!("{e:?}"))
    })
    .await;
    wait_status_via(via, &n, "WORKING", Some(&owner_id)).await;
    owner
}

/// Waits until the `message` webhook of session `to` carries `text`.
async fn wait_message(sink: &Sink, to: usize, text: &str) {
    sink.wait_message(&format!("/{}", name(to)), text).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_works_through_every_worker() {
    let test = "cluster_routing::every_operation_works_through_every_worker";
    let Some(fx) = crate::support::cluster::ClusterFixture::start(test).await else {
        return;
    };
    let (mongo, ns, client, main, net, dir) =
        (fx.mongo, &fx.ns, &fx.client, &fx.main, &fx.net, &fx.dir);
    let sink = Sink::start().await;
    // The default lease (10 s) and death (15 s) bounds: this test moves sessions only by
    // hand-over, and short leases churn on a loaded machine (a slow lease-loop round
    // reads as a dead worker).
    let env: Vec<(String, String)> = cluster_env(mongo, ns, &net.ws_url())
        .into_iter()
        .filter(|(k, _)| k != "WHARF_CLUSTER_LEASE_SECONDS" && k != "WHARF_CLUSTER_DEAD_SECONDS")
        .collect();
    let w0 = start_worker(dir.path(), "w0", &env).await;
    let mut w1 = start_worker(dir.path(), "w1", &env).await;
    let w2 = start_worker(dir.path(), "w2", &env).await;
    wait_members(main, 3).await;
    let w = [&w0, &w1, &w2];

    // 1. Sessions spread across the workers, each paired through a worker that does not
    //    run it (QR and status read there, forwarded to the owner).
    let mut owner: BTreeMap<usize, usize> = BTreeMap::new();
    for batch in (0..SESSIONS).collect::<Vec<_>>().chunks(PAIR_BATCH) {
        // Created when their turn comes, as a user pairs a session right after creating
        // it: 60 pairings take minutes here, longer than a QR is shown
        // (`WHARF_QR_TIMEOUT_SECONDS`, 160 s).
        for &i in batch {
            create(&w, &sink, i).await;
        }
        let paired = futures_util::future::join_all(
            batch
                .iter()
                .map(|&i| pair_through_non_owner(&w, main, net, i)),
        )
        .await;
        for (&i, o) in batch.iter().zip(paired) {
            owner.insert(i, o);
        }
    }
    for k in 0..3 {
        let n = owner.values().filter(|&&o| o == k).count();
        assert!(n >= SESSIONS / 3 - 1, "spread: {owner:?}");
    }
    let before = logins(net);

    // 2. Through every worker, on a session another worker runs.
    for (via_i, via) in w.iter().enumerate() {
        let (&a, &a_owner) = owner
            .iter()
            .find(|&(_, &o)| o != via_i)
            .expect("a session elsewhere");
        let b = (a + 1) % SESSIONS;
        let (an, owner_w) = (name(a), w[a_owner]);

        // sendText: the receiver's webhook gets it.
        let text = format!("hello through w{via_i}");
        let (st, _, sent) = raw(
            via,
            Method::POST,
            "/api/sendText",
            &key(),
            Some(&json!({"session": an, "chatId": cus(b), "text": text})),
        )
        .await;
        assert_eq!(st, 201, "{sent}");
        assert!(
            sent["id"].as_str().is_some_and(|id| id.contains(&cus(b))),
            "{sent}"
        );
        wait_message(&sink, b, &text).await;
        // The same refusal as the owner's.
        let bad = json!({"session": an, "text": "no chat"});
        let (s1, _, b1) = raw(via, Method::POST, "/api/sendText", &key(), Some(&bad)).await;
        let (s2, _, b2) = raw(owner_w, Method::POST, "/api/sendText", &key(), Some(&bad)).await;
        assert_eq!((s1, &b1), (s2, &b2), "invalid send");
        assert_eq!(s1, 400, "{b1}");

        // Status reads are the owner's.
        let info = same_as_owner(via, owner_w, &format!("/api/sessions/{an}")).await;
        assert_eq!(info["status"], "WORKING", "{info}");
        assert_eq!(info["assignedWorker"], format!("w{a_owner}").as_str());
        let me = same_as_owner(via, owner_w, &format!("/api/sessions/{an}/me")).await;
        assert_eq!(me["id"], cus(a).as_str(), "{me}");

        // A group with B, and its participants.
        let (st, _, group) = raw(
            via,
            Method::POST,
            &format!("/api/{an}/groups"),
            &key(),
            Some(&json!({"name": format!("g{via_i}"), "participants": [{"id": cus(b)}]})),
        )
        .await;
        assert_eq!(st, 201, "{group}");
        let gid = group["id"].as_str().expect("group id").to_string();
        let parts = same_as_owner(
            via,
            owner_w,
            &format!("/api/{an}/groups/{gid}/participants"),
        )
        .await;
        assert_eq!(parts.as_array().map(Vec::len), Some(2), "{parts}");

        // Presence.
        let (st, _, p) = raw(
            via,
            Method::POST,
            &format!("/api/{an}/presence"),
            &key(),
            Some(&json!({"presence": "online"})),
        )
        .await;
        assert_eq!(st, 201, "{p}");

        // Chats and messages, labels, channels: the owner's answers.
        let chats = same_as_owner(via, owner_w, &format!("/api/{an}/chats")).await;
        assert!(chats.as_array().is_some_and(|c| !c.is_empty()), "{chats}");
        let msgs = same_as_owner(
            via,
            owner_w,
            &format!("/api/{an}/chats/{}/messages?limit=5", cus(b)),
        )
        .await;
        assert!(
            msgs.as_array()
                .is_some_and(|m| m.iter().any(|x| x["body"] == text.as_str())),
            "{msgs}"
        );
        same_as_owner(via, owner_w, &format!("/api/{an}/labels")).await;
        same_as_owner(via, owner_w, &format!("/api/{an}/channels")).await;

        // Stop and start through this worker: STOPPED everywhere, then WORKING again from
        // the stored keys (no QR).
        let (st, _, r) = raw(
            via,
            Method::POST,
            &format!("/api/sessions/{an}/stop"),
            &key(),
            None,
        )
        .await;
        assert_eq!(st, 201, "{r}");
        for other in w {
            wait_status_via(other, &an, "STOPPED", None).await;
        }
        let (st, _, r) = raw(
            via,
            Method::POST,
            &format!("/api/sessions/{an}/start"),
            &key(),
            None,
        )
        .await;
        assert_eq!(st, 201, "{r}");
        let info = wait_status_via(via, &an, "WORKING", None).await;
        let at = worker_index(info["assignedWorker"].as_str().expect("worker"));
        owner.insert(a, at);
    }
    let after = logins(net);
    for (phone, (connected, _, replaced)) in &after {
        assert!(*connected, "{phone} connected: {after:?}");
        assert_eq!(*replaced, before[phone].2, "{phone} never connected twice");
    }

    // 3. The sessions list of every worker shows every session where it runs.
    for via in w {
        eventually(
            Duration::from_secs(20),
            "every session WORKING in the list",
            || async {
                let (st, _, list) = raw(via, Method::GET, "/api/sessions", &key(), None).await;
                let list = list.as_array().cloned().unwrap_or_default();
                let ok = st == 200
                    && list.len() == SESSIONS
                    && list.iter().all(|s| {
                        let i: usize = s["name"].as_str().unwrap_or("r")[1..]
                            .parse()
                            .unwrap_or(usize::MAX);
                        s["status"] == "WORKING"
                            && owner
                                .get(&i)
                                .is_some_and(|o| s["assignedWorker"] == format!("w{o}").as_str())
                    });
                if ok {
                    Ok(())
                } else {
                    Err(format!("{st} {list:?}"))
                }
            },
        )
        .await;
    }

    // 4. The cluster credential: forged, stale or without the client's key → 401; a valid
    //    one is never forwarded again (this worker does not run the session: 503).
    let (&a, &a_owner) = owner.iter().next().expect("a session");
    let via = w[(a_owner + 1) % 3];
    let path = format!("/api/{}/chats", name(a));
    let unauthorized = json!({"message": "Unauthorized", "statusCode": 401});
    let forged = credential("not-the-cluster-secret!", "w0", "GET", &path, 0);
    let stale = credential(SECRET, "w0", "GET", &path, 120_000);
    let other_request = credential(SECRET, "w0", "GET", "/api/sessions", 0);
    for bad in [forged, stale, other_request, "v1 w0".to_string()] {
        let mut h = key();
        h.push(("X-Wharf-Cluster", bad.clone()));
        let (st, _, body) = raw(via, Method::GET, &path, &h, None).await;
        assert_eq!((st, &body), (401, &unauthorized), "{bad}");
    }
    let valid = credential(SECRET, "w0", "GET", &path, 0);
    let (st, _, body) = raw(
        via,
        Method::GET,
        &path,
        &[("X-Wharf-Cluster", valid.clone())],
        None,
    )
    .await;
    assert_eq!(
        (st, &body),
        (401, &unauthorized),
        "no key: the credential grants nothing"
    );
    let mut h = key();
    h.push(("X-Wharf-Cluster", valid));
    let (st, retry, body) = raw(via, Method::GET, &path, &h, None).await;
    assert_eq!(st, 503, "a peer's request is not forwarded again: {body}");
    assert!(retry.is_some(), "Retry-After");
    let (st, _, body) = raw(via, Method::GET, &path, &key(), None).await;
    assert_eq!(st, 200, "and forwarded without it: {body}");

    // 5. SIGTERM w1 while a client sends to w1's sessions through w0 and w2, retrying a
    //    failed request once after its `Retry-After`: none fails.
    let moving: Vec<usize> = owner
        .iter()
        .filter(|(_, o)| **o == 1)
        .map(|(i, _)| *i)
        .collect();
    assert!(!moving.is_empty(), "{owner:?}");
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let bases = [w0.base.clone(), w2.base.clone()];
    let loop_task = {
        let (stop, failures, sent, moving) =
            (stop.clone(), failures.clone(), sent.clone(), moving.clone());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut k = 0usize;
            while !stop.load(Ordering::Acquire) {
                let i = moving[k % moving.len()];
                let body = json!({"session": name(i), "chatId": cus((i + 1) % SESSIONS), "text": format!("during drain {k}")});
                let mut outcome = Vec::new();
                for attempt in 0..2 {
                    let base = &bases[(k + attempt) % bases.len()];
                    let r = http
                        .post(format!("{base}/api/sendText"))
                        .header("X-Api-Key", KEY)
                        .json(&body)
                        .send()
                        .await;
                    match r {
                        Ok(r) if r.status().as_u16() == 201 => {
                            outcome.clear();
                            break;
                        }
                        Ok(r) => {
                            let wait = r
                                .headers()
                                .get("retry-after")
                                .and_then(|v| v.to_str().ok())
                                .and_then(|v| v.parse::<u64>().ok())
                                .unwrap_or(1);
                            outcome.push(format!(
                                "{} {}",
                                r.status(),
                                r.text().await.unwrap_or_default()
                            ));
                            // The client honours `Retry-After` before its one retry: that
                            // is the protocol under test, not a wait for a condition.
                            tokio::time::sleep(Duration::from_secs(wait)).await;
                        }
                        Err(e) => outcome.push(e.to_string()),
                    }
                }
                if !outcome.is_empty() {
                    failures.lock().unwrap().push(format!("#{k}: {outcome:?}"));
                }
                sent.fetch_add(1, Ordering::AcqRel);
                k += 1;
            }
        })
    };
    eventually(Duration::from_secs(20), "the client is sending", || async {
        let n = sent.load(Ordering::Acquire);
        if n >= 3 {
            Ok(())
        } else {
            Err(format!("{n} sent"))
        }
    })
    .await;
    w1.signal("TERM");
    let code = eventually(Duration::from_secs(30), "w1 exits on SIGTERM", || {
        let c = w1.exited();
        async move { c.ok_or_else(|| "running".to_string()) }
    })
    .await;
    assert_eq!(code, Some(0));
    {
        let alive = [Some(&w0), None, Some(&w2)];
        for &i in &moving {
            wait_where(&alive, &name(i), "WORKING", Duration::from_secs(30)).await;
        }
    }
    let after_drain = sent.load(Ordering::Acquire);
    eventually(
        Duration::from_secs(30),
        "the client keeps sending after the hand-over",
        || async {
            let n = sent.load(Ordering::Acquire);
            if n >= after_drain + 5 {
                Ok(())
            } else {
                Err(format!("{n} sent"))
            }
        },
    )
    .await;
    stop.store(true, Ordering::Release);
    loop_task.await.expect("client loop");
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "requests failed twice during the drain: {failures:?}"
    );
    let l = main
        .collection::<mongodb::bson::Document>("wharf_leases")
        .count_documents(doc! {"owner": "w1"})
        .await
        .unwrap();
    assert_eq!(l, 0, "w1 released everything");
    drop(w0);
    drop(w2);
    crate::support::mongo::drop_namespace(client, ns).await;
}
