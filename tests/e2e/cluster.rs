//! Cluster mode (`WHARF_CLUSTER=true`): three real wharf processes on one MongoDB and one
//! mock WhatsApp network. Sessions are placed across the workers; SIGKILL of a worker
//! moves its sessions to the others (WORKING again from the keys in MongoDB, no QR);
//! a worker frozen with SIGSTOP past its leases is fenced: resumed, it drops its copies
//! without writing and never reconnects them; SIGTERM hands sessions over before exiting.
//! mockwa counts logins per device and how many displaced a still-open connection.

use std::{collections::BTreeMap, time::Duration};

use mongodb::bson::Document;
use mongodb::bson::doc;
use reqwest::Method;
use serde_json::json;

use crate::support::{
    cluster::{cluster_env, lease, logins, start_worker, wait_members, wait_where},
    poll::eventually,
};

/// The bound the issue sets for a takeover after the lease expired, plus the lease itself
/// and the time to be declared dead.
const TAKEOVER: Duration = Duration::from_secs(30 + 4 + 5);

const SESSIONS: [(&str, &str); 6] = [
    ("c1", "15557000001"),
    ("c2", "15557000002"),
    ("c3", "15557000003"),
    ("c4", "15557000004"),
    ("c5", "15557000005"),
    ("c6", "15557000006"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_spread_fail_over_are_fenced_and_drain() {
    let test = "cluster::sessions_spread_fail_over_are_fenced_and_drain";
    let Some(fx) = crate::support::cluster::ClusterFixture::start(test).await else {
        return;
    };
    let (mongo, ns, client, main, net, dir) =
        (fx.mongo, &fx.ns, &fx.client, &fx.main, &fx.net, &fx.dir);
    let env = cluster_env(mongo, ns, &net.ws_url());
    let mut w0 = start_worker(dir.path(), "w0", &env).await;
    let mut w1 = start_worker(dir.path(), "w1", &env).await;
    let w2 = start_worker(dir.path(), "w2", &env).await;
    // Every worker has announced itself before anything is placed.
    wait_members(main, 3).await;

    // Six sessions, all created through w0, are placed across the three workers and
    // paired wherever they landed.
    let mut owner = BTreeMap::new();
    {
        let all = [Some(&w0), Some(&w1), Some(&w2)];
        for (name, phone) in SESSIONS {
            let (st, body) = w0
                .call(Method::POST, "/api/sessions", Some(json!({"name": name})))
                .await;
            assert_eq!(st, 201, "{body}");
            let at = wait_where(&all, name, "SCAN_QR_CODE", Duration::from_secs(30)).await;
            let (_, qr) = all[at]
                .unwrap()
                .call(
                    Method::GET,
                    &format!("/api/{name}/auth/qr?format=raw"),
                    None,
                )
                .await;
            net.scan_qr(qr["value"].as_str().expect("raw QR"), phone, name)
                .expect("scan");
            let at = wait_where(&all, name, "WORKING", Duration::from_secs(40)).await;
            owner.insert(name, at);
        }
    }
    let per_worker =
        |owner: &BTreeMap<&str, usize>, w: usize| owner.values().filter(|&&o| o == w).count();
    for w in 0..3 {
        assert_eq!(
            per_worker(&owner, w),
            2,
            "least-loaded placement: {owner:?}"
        );
    }
    let before = logins(net);
    assert!(
        before.values().all(|&(c, l, r)| c && l >= 1 && r == 0),
        "{before:?}"
    );

    // SIGKILL w1: its two sessions come back WORKING on w0 / w2 from MongoDB, no QR, and
    // no device ever has two open connections.
    let moved: Vec<&str> = owner
        .iter()
        .filter(|(_, o)| **o == 1)
        .map(|(n, _)| *n)
        .collect();
    w1.kill();
    {
        let alive = [Some(&w0), None, Some(&w2)];
        for name in &moved {
            let at = wait_where(&alive, name, "WORKING", TAKEOVER).await;
            owner.insert(name, at);
        }
    }
    let after_kill = logins(net);
    assert!(
        after_kill.values().all(|&(c, _, r)| c && r == 0),
        "no device connected twice: {after_kill:?}"
    );
    for name in &moved {
        let l = lease(main, name).await;
        assert!(l.get_i64("epoch").unwrap() >= 2, "taken over: {l}");
    }

    // SIGSTOP w2 past its leases: w0 takes its sessions over. Resumed, w2 is fenced: it
    // drops its copies, writes nothing and never reconnects them.
    let frozen: Vec<&str> = owner
        .iter()
        .filter(|(_, o)| **o == 2)
        .map(|(n, _)| *n)
        .collect();
    assert!(!frozen.is_empty(), "{owner:?}");
    w2.signal("STOP");
    {
        let alive = [Some(&w0), None, None];
        for name in &frozen {
            wait_where(&alive, name, "WORKING", TAKEOVER).await;
            owner.insert(name, 0);
        }
    }
    let taken: BTreeMap<&str, i64> = {
        let mut m = BTreeMap::new();
        for name in &frozen {
            let l = lease(main, name).await;
            assert_eq!(l.get_str("owner").unwrap(), "w0", "{l}");
            m.insert(*name, l.get_i64("epoch").unwrap());
        }
        m
    };
    let during = logins(net);
    w2.signal("CONT");
    for name in &frozen {
        // Once w2 dropped its copy it forwards the session's requests to w0.
        eventually(
            Duration::from_secs(20),
            &format!("resumed w2 dropped {name}"),
            || async {
                let (_, s) = w2
                    .call(Method::GET, &format!("/api/sessions/{name}"), None)
                    .await;
                if s["status"] == "WORKING" && s["assignedWorker"] == "w0" {
                    Ok(())
                } else {
                    Err(s.to_string())
                }
            },
        )
        .await;
    }
    // w2 also logs why.
    let log = std::fs::read_to_string(&w2.log).unwrap_or_default();
    assert!(log.contains("lease lost"), "w2 says it was fenced");
    for name in &frozen {
        let l = lease(main, name).await;
        assert_eq!(l.get_str("owner").unwrap(), "w0", "lease stays w0's: {l}");
        assert_eq!(l.get_i64("epoch").unwrap(), taken[name], "{l}");
        // The device document was last written by the new owner's epoch, never by w2's.
        let device = client
            .database(&format!("waha_{ns}_{name}"))
            .collection::<Document>("wa_device")
            .find_one(doc! {"_id": "device"})
            .await
            .unwrap()
            .expect("device keys");
        if let Ok(e) = device.get_i64("epoch") {
            assert!(e <= taken[name], "device epoch {e} ≤ {}", taken[name]);
        }
        // Still WORKING on w0, and w2 did not log the device in again after it resumed.
        let (_, s) = w0
            .call(Method::GET, &format!("/api/sessions/{name}"), None)
            .await;
        assert_eq!(s["status"], "WORKING", "{s}");
    }
    let after_cont = logins(net);
    for (phone, (connected, n, replaced)) in &after_cont {
        let (_, n_before, r_before) = during[phone];
        assert!(*connected, "{phone} connected");
        assert_eq!(
            (*n, *replaced),
            (n_before, r_before),
            "{phone}: the resumed worker never logged in again"
        );
    }

    // SIGTERM w0: every session is handed to w2 (placed there, stopped, released) before
    // w0 exits; w2 runs them all, none displaced a live connection.
    let replaced_before: u64 = after_cont.values().map(|v| v.2).sum();
    w0.signal("TERM");
    let code = eventually(Duration::from_secs(30), "w0 exits on SIGTERM", || {
        let c = w0.exited();
        async move { c.ok_or_else(|| "running".to_string()) }
    })
    .await;
    assert_eq!(code, Some(0));
    for (name, _) in SESSIONS {
        let l = lease(main, name).await;
        assert_eq!(
            l.get_str("target").unwrap_or(""),
            "w2",
            "placed before exit: {l}"
        );
        assert_ne!(
            l.get_str("owner").unwrap_or(""),
            "w0",
            "released before exit: {l}"
        );
    }
    {
        let alive = [None, None, Some(&w2)];
        for (name, _) in SESSIONS {
            wait_where(&alive, name, "WORKING", Duration::from_secs(30)).await;
        }
    }
    let end = logins(net);
    let replaced_after: u64 = end.values().map(|v| v.2).sum();
    assert_eq!(
        replaced_after, replaced_before,
        "drain overlaps nothing: {end:?}"
    );
    drop(w1);
    drop(w2);
    crate::support::mongo::drop_namespace(client, ns).await;
}
