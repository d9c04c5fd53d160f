//! Cluster mode, lease renewal in O(1) commands per tick (`sessions::cluster`): a real
//! wharf worker holding several leases renews them all with one `updateMany` per lease-loop
//! tick (counted on its `/metrics` with `WHARF_METRICS_MONGO_COLLECTIONS`, against its
//! heartbeats, one per tick), and a lease another worker takes over is dropped by the old
//! holder after its next batch renewal — only that session, without writing to the lease,
//! while the others keep being renewed with one command per tick again.

use std::{collections::BTreeMap, time::Duration};

use mongodb::bson::{Document, doc};
use reqwest::Method;
use serde_json::json;

use crate::support::{
    cluster::{cluster_env, lease, start_worker, wait_members},
    poll::eventually,
    process::Wharf,
};

/// Leases the worker holds.
const N: usize = 6;

fn name(i: usize) -> String {
    format!("rn{i}")
}

/// `wharf_mongo_collection_commands_total{command, collection}` from `w`'s `/metrics`.
async fn commands(w: &Wharf) -> BTreeMap<(String, String), u64> {
    let text = w.metrics().await;
    let mut out = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("wharf_mongo_collection_commands_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.split_once("} ") else {
            continue;
        };
        let label = |k: &str| {
            labels
                .split(',')
                .find_map(|kv| kv.strip_prefix(&format!("{k}=\"")))
                .map(|v| v.trim_end_matches('"').to_string())
                .unwrap_or_default()
        };
        let n = value.parse::<f64>().unwrap_or(0.0) as u64;
        out.insert((label("command"), label("collection")), n);
    }
    out
}

fn count(m: &BTreeMap<(String, String), u64>, command: &str, collection: &str) -> u64 {
    m.get(&(command.to_string(), collection.to_string()))
        .copied()
        .unwrap_or(0)
}

/// Over `ticks` lease-loop ticks of `w` (its heartbeats: one `update` of `wharf_workers`
/// per tick), how many `update` and `find` commands went to `wharf_leases`: `(ticks seen,
/// updates, finds)`. `/metrics` is read only at both ends (its cluster view reads the
/// leases too); the ticks are watched in MongoDB meanwhile.
async fn per_ticks(w: &Wharf, main: &mongodb::Database, ticks: u64) -> (u64, u64, u64) {
    let beat = || async {
        main.collection::<Document>("wharf_workers")
            .find_one(doc! {"_id": "w0"})
            .await
            .ok()
            .flatten()
            .and_then(|d| d.get_i64("heartbeat_at").ok())
            .unwrap_or(0)
    };
    let start = commands(w).await;
    let last = std::cell::Cell::new(beat().await);
    let seen = std::cell::Cell::new(0_u64);
    eventually(
        Duration::from_secs(30),
        &format!("{ticks} lease-loop ticks"),
        || async {
            let now = beat().await;
            if now != last.get() {
                last.set(now);
                seen.set(seen.get() + 1);
            }
            if seen.get() >= ticks {
                Ok(())
            } else {
                Err(format!("{} ticks", seen.get()))
            }
        },
    )
    .await;
    let end = commands(w).await;
    let delta = |command: &str, collection: &str| {
        count(&end, command, collection) - count(&start, command, collection)
    };
    (
        delta("update", "wharf_workers"),
        delta("update", "wharf_leases"),
        delta("find", "wharf_leases"),
    )
}

/// Every lease's `expires_at`, by session.
async fn expiries(main: &mongodb::Database) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for i in 0..N {
        let l = lease(main, &name(i)).await;
        out.insert(name(i), l.get_i64("expires_at").unwrap_or(0));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_renewal_command_per_tick_and_a_lost_lease_is_dropped() {
    let test = "cluster_renewal::one_renewal_command_per_tick_and_a_lost_lease_is_dropped";
    let Some(fx) = crate::support::cluster::ClusterFixture::start(test).await else {
        return;
    };
    let (mongo, ns, client, main, net, dir) =
        (fx.mongo, &fx.ns, &fx.client, &fx.main, &fx.net, &fx.dir);
    let mut env = cluster_env(mongo, ns, &net.ws_url());
    env.push(("WHARF_METRICS_MONGO_COLLECTIONS".into(), "true".into()));
    let w0 = start_worker(dir.path(), "w0", &env).await;
    wait_members(main, 1).await;

    // N sessions, each holding a lease on w0 (showing a QR is enough to hold one).
    for i in 0..N {
        let (st, body) = w0
            .call(
                Method::POST,
                "/api/sessions",
                Some(json!({"name": name(i)})),
            )
            .await;
        assert_eq!(st, 201, "{body}");
    }
    for i in 0..N {
        w0.wait_status(&name(i), "SCAN_QR_CODE", 60).await;
        let l = lease(main, &name(i)).await;
        assert_eq!(l.get_str("owner").unwrap_or(""), "w0", "{l}");
    }

    // Quiet: one renewal (`update` on `wharf_leases`) per tick for all N leases, and no
    // `find` beyond the claim round's one per tick (and one `/metrics` read). A window may
    // cut a tick between its heartbeat and its renewal: ± 1.
    let before = expiries(main).await;
    let (ticks, updates, finds) = per_ticks(&w0, main, 4).await;
    eprintln!("{N} leases: {ticks} ticks, {updates} lease updates, {finds} lease finds");
    assert!(ticks >= 3, "the heartbeats are counted: {ticks}");
    assert!(
        updates <= ticks + 1 && updates + 1 >= ticks,
        "{ticks} ticks, {updates} lease updates for {N} leases (one per tick expected)"
    );
    assert!(finds <= ticks + 2, "{ticks} ticks, {finds} lease finds");
    let after = expiries(main).await;
    for (s, e) in &before {
        assert!(after[s] > *e, "{s} renewed: {e} → {}", after[s]);
    }

    // Another worker takes `rn0` over (what its acquisition writes: owner, run, a higher
    // epoch, a fresh expiry). w0's next batch renewal matches N − 1: it finds out which
    // one it lost and drops exactly that session, writing nothing to its lease.
    let victim = name(0);
    let taken = lease(main, &victim).await;
    let epoch = taken.get_i64("epoch").expect("epoch");
    let far = chrono::Utc::now().timestamp_millis() + 600_000;
    main.collection::<Document>("wharf_leases")
        .update_one(
            doc! {"_id": &victim},
            doc! {
                "$set": {"owner": "w9", "run": "another-process", "expires_at": far},
                "$inc": {"epoch": 1_i64},
            },
        )
        .await
        .expect("take over");
    eventually(
        Duration::from_secs(20),
        &format!("w0 drops {victim}"),
        || async {
            let log = std::fs::read_to_string(&w0.log).unwrap_or_default();
            let dropped = log.lines().any(|l| {
                l.contains("session dropped (lease lost)") && l.contains(&format!("\"{victim}\""))
            });
            if dropped {
                Ok(())
            } else {
                Err("not yet".into())
            }
        },
    )
    .await;
    let log = std::fs::read_to_string(&w0.log).unwrap_or_default();
    let lost: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("lease taken over or withdrawn"))
        .collect();
    assert_eq!(lost.len(), 1, "only the taken lease is lost: {lost:?}");
    assert!(lost[0].contains(&format!("\"{victim}\"")), "{lost:?}");
    let (_, s) = w0
        .call(Method::GET, &format!("/api/sessions/{victim}"), None)
        .await;
    assert_ne!(s["status"], "SCAN_QR_CODE", "no longer runs on w0: {s}");
    let l = lease(main, &victim).await;
    assert_eq!(
        (
            l.get_str("owner").unwrap_or(""),
            l.get_i64("epoch").unwrap_or(0),
            l.get_i64("expires_at").unwrap_or(0)
        ),
        ("w9", epoch + 1, far),
        "the old holder wrote nothing to the taken lease: {l}"
    );

    // The others are still w0's, still renewed with one command per tick.
    let before = expiries(main).await;
    let (ticks, updates, _) = per_ticks(&w0, main, 3).await;
    eprintln!("{} leases: {ticks} ticks, {updates} lease updates", N - 1);
    assert!(ticks >= 2, "the heartbeats are counted: {ticks}");
    assert!(
        updates <= ticks + 1 && updates + 1 >= ticks,
        "{ticks} ticks, {updates} lease updates for {} leases",
        N - 1
    );
    let after = expiries(main).await;
    for i in 1..N {
        let s = name(i);
        assert!(after[&s] > before[&s], "{s} still renewed");
        let (_, st) = w0
            .call(Method::GET, &format!("/api/sessions/{s}"), None)
            .await;
        assert_eq!(st["status"], "SCAN_QR_CODE", "{s} still runs on w0: {st}");
    }
    assert_eq!(after[&victim], far, "the taken lease is not renewed by w0");
    drop(w0);
    crate::support::mongo::drop_namespace(client, ns).await;
}
