//! Issue 11 item 2 end to end: the LID map learnt from group participant lists and from
//! receipts, on both stores.
//!
//! A LID-addressed group (mockwa `addressingMode: "lid"`, as WhatsApp now creates its
//! groups: members named `…@lid` with their `phone_number`) teaches its members' pairs when
//! the session fetches it, and a member added later teaches its pair through the `add`
//! notification; a delivery receipt from a LID-addressed sender (`participant_pn`) teaches
//! that sender's pair. Each pair is absent before and answered by `GET /lids`,
//! `lids/{lid}` and `lids/pn/{phoneNumber}` after.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

const A: &str = "15550001111";
const B: &str = "15550002222";
const C: &str = "15550003333";
const D: &str = "15550004444";

fn cus(phone: &str) -> String {
    format!("{phone}@c.us")
}

/// The LID mockwa assigned `phone`, as a WAHA id.
fn lid_of(net: &mockwa::MockNetwork, phone: &str) -> String {
    let lid = net.profile(phone).unwrap().lid;
    assert!(!lid.is_empty(), "{phone} has no LID");
    format!("{lid}@lid")
}

/// Asserts that session `a` does not know `phone`'s LID yet, either way round.
async fn unknown(app: &TestApp, net: &mockwa::MockNetwork, phone: &str) {
    let lid = lid_of(net, phone);
    assert_eq!(
        app.get(&format!("/api/a/lids/pn/{phone}")).await.json(),
        json!({"lid": null, "pn": cus(phone)})
    );
    assert_eq!(
        app.get(&format!("/api/a/lids/{lid}")).await.json(),
        json!({"lid": lid, "pn": null})
    );
}

/// Waits until session `a` maps `phone` to its LID, then checks every LID route answers it.
async fn known(app: &TestApp, net: &mockwa::MockNetwork, phone: &str) {
    let lid = lid_of(net, phone);
    let pair = json!({"lid": lid, "pn": cus(phone)});
    eventually(Duration::from_secs(30), "the pair in a's map", || async {
        let r = app.get(&format!("/api/a/lids/pn/{phone}")).await;
        if r.json() == pair {
            Ok(())
        } else {
            Err(r.text)
        }
    })
    .await;
    assert_eq!(app.get(&format!("/api/a/lids/{lid}")).await.json(), pair);
    let all = app.get("/api/a/lids?limit=1000").await.json();
    let all = all.as_array().unwrap();
    assert!(all.contains(&pair), "{pair} in {all:?}");
    assert_eq!(
        app.get("/api/a/lids/count").await.json(),
        json!({"count": all.len()}),
        "{all:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lid_group_members_teach_their_pairs() {
    for store in StoreKind::all("lids_groups") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        // D exists on the network (to be added later) but a knows nothing of it.
        net.set_profile(D, Some("dee"), None).unwrap();

        // A LID-addressed group created behind a's back (no notification).
        let gid = net
            .seed_groups(&mockwa::SeedGroups {
                subject: "lid team".into(),
                creator: A.into(),
                participants: vec![B.into(), C.into()],
                addressing_mode: Some("lid".into()),
                ..Default::default()
            })
            .unwrap()
            .remove(0);
        let state = net.group(&gid).unwrap();
        assert_eq!(state.addressing_mode, "lid");
        for phone in [B, C, D] {
            unknown(&app, &net, phone).await;
        }

        // a fetches it: the members come as LIDs with their phone numbers.
        let r = app.get(&format!("/api/a/groups/{gid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let group = r.json();
        let ids: Vec<&Value> = group["participants"]
            .as_array()
            .unwrap_or_else(|| panic!("{group}"))
            .iter()
            .map(|p| &p["id"])
            .collect();
        for phone in [B, C] {
            assert!(ids.contains(&&json!(lid_of(&net, phone))), "{group}");
        }
        for phone in [B, C] {
            known(&app, &net, phone).await;
        }
        unknown(&app, &net, D).await;

        // a adds D: the `add` notification names D by LID with its phone number.
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/add"),
                &json!({"participants": [{"id": cus(D)}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        known(&app, &net, D).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_from_a_lid_sender_teaches_its_pair() {
    for store in StoreKind::all("lids_receipts") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        app.pair(&net, "b", B).await;
        unknown(&app, &net, B).await;

        // a writes to B's LID; b's phone answers with a delivery receipt from that LID,
        // carrying B's phone number.
        let b_lid = lid_of(&net, B);
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "a", "chatId": b_lid, "text": "to a LID"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        known(&app, &net, B).await;
    }
}
