//! Issue 11 (items 1, 2 and the matching mockwa parts) end to end: the contact store and
//! LID map of a session, fed by real traffic between two sessions paired through the mock
//! network, and the `👤 Contacts` / LID routes over them, on both stores.
//!
//! Push names and LID ↔ phone pairs learnt from a message; saved names; `about` and the
//! profile picture of a mock phone (set through mockwa's admin API; the picture's 24 h
//! cache and `refresh=true`); block/unblock reaching the mock's block list; the LID
//! routes both ways; and bad input (invalid ids → 400, unknown contact → 404).

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
};

const A: &str = "15550001111";
const B: &str = "15550002222";
const NOBODY: &str = "15559990000";

fn cus(phone: &str) -> String {
    format!("{phone}@c.us")
}

/// B's LID pair as session `a` knows it (learnt from B's message).
async fn b_pair(app: &TestApp) -> Value {
    eventually(Duration::from_secs(30), "B's LID in a's map", || async {
        let r = app.get("/api/a/lids").await;
        assert_eq!(r.status, 200, "{}", r.text);
        r.json()
            .as_array()
            .and_then(|v| v.iter().find(|p| p["pn"] == cus(B).as_str()).cloned())
            .ok_or_else(|| r.text.clone())
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contacts_and_lids_learnt_from_traffic() {
    for store in StoreKind::all("contacts_flow") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        app.pair(&net, "b", B).await;

        // Nothing known yet.
        let r = app.get("/api/contacts/all?session=a").await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!([]));
        // At most its own pair (learnt from its own phone's protocol messages).
        let own = app.get("/api/a/lids").await.json();
        assert!(
            own.as_array()
                .unwrap()
                .iter()
                .all(|p| p["pn"] == cus(A).as_str()),
            "{own}"
        );

        // B writes to A: A learns B's push name and B's LID.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "b", "chatId": cus(A), "text": "hello"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let all = eventually(Duration::from_secs(30), "B in a's contacts", || async {
            let r = app.get("/api/contacts/all?session=a").await;
            let v = r.json();
            if v.as_array().is_some_and(|a| !a.is_empty()) {
                Ok(v)
            } else {
                Err(r.text)
            }
        })
        .await;
        assert_eq!(
            all,
            json!([{
                "id": cus(B), "number": B, "name": null, "pushname": format!("Phone {B}"),
                "shortName": null, "isMe": false, "isGroup": false, "isWAContact": true,
                "isMyContact": false, "isBlocked": false,
            }])
        );
        let pair = b_pair(&app).await;
        let lid = pair["lid"].as_str().unwrap().to_string();
        assert!(lid.ends_with("@lid"), "{pair}");
        let b_me = app.get("/api/sessions/b/me").await.json();
        if let Some(own) = b_me["lid"].as_str() {
            assert_eq!(own, lid, "a learnt the LID b has");
        }
        // Every pair is a's own or B's (a's own may be learnt at any time), and the count
        // is the listing's length.
        let pairs = app.get("/api/a/lids").await.json();
        let pairs = pairs.as_array().unwrap().clone();
        assert!(
            pairs
                .iter()
                .all(|p| p["pn"] == cus(A).as_str() || p["pn"] == cus(B).as_str()),
            "{pairs:?}"
        );
        assert_eq!(
            app.get("/api/a/lids/count").await.json(),
            json!({"count": pairs.len()})
        );
        assert_eq!(
            app.get(&format!("/api/a/lids/{lid}")).await.json(),
            json!({"lid": lid, "pn": cus(B)})
        );
        let lid_digits = lid.trim_end_matches("@lid");
        assert_eq!(
            app.get(&format!("/api/a/lids/{lid_digits}")).await.json(),
            json!({"lid": lid, "pn": cus(B)})
        );
        for pn in [B.to_string(), cus(B)] {
            assert_eq!(
                app.get(&format!("/api/a/lids/pn/{pn}")).await.json(),
                json!({"lid": lid, "pn": cus(B)})
            );
        }
        // Unknown either way: the other side is null (WAHA).
        assert_eq!(
            app.get("/api/a/lids/999999999@lid").await.json(),
            json!({"lid": "999999999@lid", "pn": null})
        );
        assert_eq!(
            app.get(&format!("/api/a/lids/pn/{NOBODY}")).await.json(),
            json!({"lid": null, "pn": cus(NOBODY)})
        );
        assert_eq!(
            app.get(&format!("/api/a/lids?limit=1&offset={}", pairs.len()))
                .await
                .json(),
            json!([])
        );
        let page = app.get("/api/a/lids?limit=1").await.json();
        assert_eq!(page.as_array().map(Vec::len), Some(1), "{page}");
        // The contact is found by its LID too.
        let r = app.get(&format!("/api/a/contacts/{lid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["id"], cus(B));

        // A saves a name for B (bare digits accepted).
        let r = app
            .put(
                &format!("/api/a/contacts/{B}"),
                &json!({"firstName": "Bob", "lastName": "Builder"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        // It reached the account: the phone's app state holds the contact mutation.
        let index = vec!["contact".to_string(), format!("{B}@s.whatsapp.net")];
        crate::support::poll::eventually(Duration::from_secs(10), "contact on the phone", || {
            let found = net.app_state(A).indexes.contains(&index);
            let indexes = net.app_state(A).indexes;
            async move {
                if found {
                    Ok(())
                } else {
                    Err(format!("{indexes:?}"))
                }
            }
        })
        .await;
        for path in [
            format!("/api/a/contacts/{}", cus(B)),
            format!("/api/contacts?contactId={B}&session=a"),
        ] {
            let r = app.get(&path).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            let c = r.json();
            assert_eq!(c["name"], "Bob Builder", "{c}");
            assert_eq!(c["shortName"], "Bob");
            assert_eq!(c["pushname"], format!("Phone {B}"), "a push name stays");
            assert_eq!(c["isMyContact"], true);
        }
        // A saved contact nobody wrote from is listed too; sortBy=name orders them.
        let r = app
            .put(
                &format!("/api/a/contacts/{}", cus(NOBODY)),
                &json!({"firstName": "Zed", "lastName": ""}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let names = |v: Value| -> Vec<String> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap_or("").to_string())
                .collect()
        };
        assert_eq!(
            names(
                app.get("/api/contacts/all?session=a&sortBy=name&sortOrder=desc")
                    .await
                    .json()
            ),
            ["Zed", "Bob Builder"]
        );
        assert_eq!(
            names(
                app.get("/api/contacts/all?session=a&sortBy=name&limit=1&offset=1")
                    .await
                    .json()
            ),
            ["Zed"]
        );
        // b learnt nothing about itself from its own send.
        assert_eq!(
            app.get("/api/contacts/all?session=b").await.json(),
            json!([])
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn about_picture_and_blocking_reach_the_mock() {
    for store in StoreKind::all("contacts_profile") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        app.pair(&net, "b", B).await;

        // About: what the mock phone says, null when it has none.
        let about = |id: String| {
            let app = &app;
            async move {
                let r = app
                    .get(&format!("/api/contacts/about?contactId={id}&session=a"))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.json()
            }
        };
        assert_eq!(about(cus(B)).await, json!({"about": null}));
        net.set_profile(B, Some("Busy building"), None).unwrap();
        assert_eq!(
            about(B.to_string()).await,
            json!({"about": "Busy building"})
        );
        // The lookup taught a the pair (usync answers carry the LID).
        let pair = app.get(&format!("/api/a/lids/pn/{B}")).await.json();
        assert!(
            pair["lid"].as_str().is_some_and(|l| l.ends_with("@lid")),
            "{pair}"
        );

        // Profile picture: none, then the mock's (downloadable), cached until refresh.
        let picture = |refresh: bool| {
            let app = &app;
            async move {
                let r = app
                    .get(&format!(
                        "/api/contacts/profile-picture?contactId={B}&session=a&refresh={refresh}"
                    ))
                    .await;
                assert_eq!(r.status, 200, "{}", r.text);
                r.json()["profilePictureURL"].clone()
            }
        };
        assert_eq!(picture(false).await, Value::Null);
        let jpeg1 = b"\xFF\xD8\xFF\xE0first".to_vec();
        net.set_profile(B, None, Some(jpeg1.clone())).unwrap();
        assert_eq!(picture(false).await, Value::Null, "served from the cache");
        let url1 = picture(true).await;
        let url1 = url1.as_str().expect("a URL after refresh").to_string();
        let got = reqwest::get(&url1).await.unwrap().bytes().await.unwrap();
        assert_eq!(got.as_ref(), jpeg1.as_slice());
        net.set_profile(B, None, Some(b"\xFF\xD8\xFF\xE0second".to_vec()))
            .unwrap();
        assert_eq!(picture(false).await, json!(url1), "still cached");
        let url2 = picture(true).await;
        assert!(url2.is_string() && url2 != json!(url1), "{url2}");

        // The chat list shows B with its name and the cached picture.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session":"b","chatId":cus(A),"text":"hello a"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let chat = eventually(Duration::from_secs(15), "B's chat in a's overview", || {
            let app = &app;
            async move {
                let all = app.get("/api/a/chats/overview").await.json();
                all.as_array()
                    .and_then(|a| a.iter().find(|c| c["id"] == cus(B).as_str()).cloned())
                    .ok_or_else(|| format!("{all}"))
            }
        })
        .await;
        assert_eq!(chat["picture"], url2, "{chat}");
        assert_eq!(chat["name"], format!("Phone {B}"), "{chat}");
        let chats = app.get("/api/a/chats").await.json();
        let listed = chats
            .as_array()
            .and_then(|a| a.iter().find(|c| c["id"] == cus(B).as_str()).cloned())
            .unwrap_or_default();
        assert_eq!(listed["name"], format!("Phone {B}"), "{chats}");

        // Block / unblock: the mock's block list follows, and so does GET.
        assert!(net.blocklist(A).is_empty());
        let r = app
            .post(
                "/api/contacts/block",
                &json!({"contactId": B, "session": "a"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(net.blocklist(A), vec![B.to_string()]);
        let c = app.get(&format!("/api/a/contacts/{B}")).await;
        assert_eq!(c.status, 200, "{}", c.text);
        assert_eq!(c.json()["isBlocked"], true);
        let r = app
            .post(
                "/api/contacts/unblock",
                &json!({"contactId": cus(B), "session": "a"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert!(net.blocklist(A).is_empty());
        assert_eq!(
            app.get(&format!("/api/a/contacts/{B}")).await.json()["isBlocked"],
            false
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_is_a_400_and_unknown_contacts_a_404() {
    let store = StoreKind::Embedded;
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let app = TestApp::spawn_wa(store, &net, &[]).await;
    app.pair(&net, "a", A).await;

    for path in [
        "/api/contacts?contactId=not-a-phone&session=a".to_string(),
        "/api/a/contacts/123@g.us".to_string(),
        "/api/contacts/about?contactId=abc&session=a".to_string(),
        "/api/contacts/profile-picture?contactId=12ab&session=a".to_string(),
        "/api/a/lids/pn/abc".to_string(),
        "/api/a/lids/x@lid".to_string(),
        "/api/a/lids?limit=-1".to_string(),
        "/api/contacts/all?session=a&sortBy=bogus".to_string(),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
        assert_eq!(r.json()["statusCode"], 400, "{path}: {}", r.text);
    }
    for (path, body) in [
        (
            "/api/contacts/block",
            json!({"contactId": "x", "session": "a"}),
        ),
        (
            "/api/contacts/unblock",
            json!({"contactId": "", "session": "a"}),
        ),
    ] {
        let r = app.post(path, &body.to_string()).await;
        assert_eq!(r.status, 400, "{path}: {}", r.text);
    }
    let r = app
        .put(
            "/api/a/contacts/abc",
            &json!({"firstName": "A", "lastName": "B"}).to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);
    let r = app
        .put(
            &format!("/api/a/contacts/{NOBODY}"),
            &json!({"firstName": " ", "lastName": ""}).to_string(),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.text);

    // A valid id the session knows nothing of.
    for path in [
        format!("/api/a/contacts/{NOBODY}"),
        format!("/api/contacts?contactId={NOBODY}&session=a"),
    ] {
        let r = app.get(&path).await;
        assert_eq!(r.status, 404, "{path}: {}", r.text);
        assert_eq!(
            r.json(),
            json!({"message": "Contact not found", "error": "Not Found", "statusCode": 404})
        );
    }
    // Not running → WAHA's 422 for an unknown session.
    let r = app.get("/api/contacts/all?session=nope").await;
    assert_eq!(r.status, 422, "{}", r.text);
}

/// The contact-store contract on both stores: a patch overwrites only what it carries,
/// sorting and paging, the picture cache, and one LID per phone number (a newer pair
/// replaces an older one sharing either side).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn contact_store_merges_fields_and_keeps_one_pair_per_side() {
    use wharf::store::{ContactPatch, ContactQuery, ContactSortBy, LidPair, SortOrder};

    for ts in crate::support::store::TestStore::all("contacts_store").await {
        let name = ts.name();
        let s = ts.store.session(&ts.store.session_name("default").unwrap());
        let c = s.contacts();
        assert_eq!(c.get("1@c.us").await.unwrap(), None, "{name}");
        assert!(c.list(&ContactQuery::default()).await.unwrap().is_empty());
        assert_eq!(c.count_lids().await.unwrap(), 0);
        assert_eq!(c.lid_by_pn("1@c.us").await.unwrap(), None);

        let patch = |id: &str| ContactPatch {
            id: id.into(),
            ..ContactPatch::default()
        };
        c.merge(&[ContactPatch {
            pushname: Some("Ann".into()),
            is_wa_contact: Some(true),
            ..patch("1@c.us")
        }])
        .await
        .unwrap();
        c.merge(&[ContactPatch {
            name: Some("Anna Smith".into()),
            picture: Some((Some("http://p/1.jpg".into()), 10)),
            ..patch("1@c.us")
        }])
        .await
        .unwrap();
        c.merge(&[ContactPatch {
            pushname: Some("Annie".into()),
            is_blocked: Some(true),
            ..patch("1@c.us")
        }])
        .await
        .unwrap();
        let got = c.get("1@c.us").await.unwrap().unwrap();
        assert_eq!(got.name.as_deref(), Some("Anna Smith"), "{name}");
        assert_eq!(got.pushname.as_deref(), Some("Annie"), "{name}");
        assert!(got.is_blocked && got.is_wa_contact, "{name}: {got:?}");
        assert_eq!(got.picture_url.as_deref(), Some("http://p/1.jpg"));
        assert_eq!(got.picture_at, Some(10));
        // "No picture" is cached too (the URL goes, the fetch time stays).
        c.merge(&[ContactPatch {
            picture: Some((None, 20)),
            is_blocked: Some(false),
            ..patch("1@c.us")
        }])
        .await
        .unwrap();
        let got = c.get("1@c.us").await.unwrap().unwrap();
        assert_eq!(
            (got.picture_url, got.picture_at),
            (None, Some(20)),
            "{name}"
        );
        assert!(!got.is_blocked);

        // Sorting by the display name (saved, else push name), and paging.
        c.merge(&[
            ContactPatch {
                pushname: Some("Zoe".into()),
                ..patch("2@c.us")
            },
            ContactPatch {
                pushname: Some("Bob".into()),
                ..patch("3@lid")
            },
        ])
        .await
        .unwrap();
        let ids = |v: Vec<wharf::store::ContactRecord>| -> Vec<String> {
            v.into_iter().map(|r| r.id).collect()
        };
        let by_name = ContactQuery {
            sort_by: ContactSortBy::Name,
            sort_order: SortOrder::Asc,
            ..ContactQuery::default()
        };
        assert_eq!(
            ids(c.list(&by_name).await.unwrap()),
            ["1@c.us", "3@lid", "2@c.us"],
            "{name}"
        );
        let page = ContactQuery {
            limit: Some(1),
            offset: 1,
            sort_by: ContactSortBy::Id,
            sort_order: SortOrder::Desc,
        };
        assert_eq!(ids(c.list(&page).await.unwrap()), ["2@c.us"], "{name}");

        // LIDs: one pair per LID and per phone number.
        let pair = |lid: &str, pn: &str| LidPair {
            lid: lid.into(),
            pn: pn.into(),
        };
        c.upsert_lids(&[pair("10@lid", "1@c.us"), pair("20@lid", "2@c.us")])
            .await
            .unwrap();
        c.upsert_lids(&[pair("10@lid", "1@c.us")]).await.unwrap();
        assert_eq!(c.count_lids().await.unwrap(), 2, "{name}");
        // The phone number moved to another LID: the old pair goes.
        c.upsert_lids(&[pair("11@lid", "1@c.us")]).await.unwrap();
        assert_eq!(c.lid_by_lid("10@lid").await.unwrap(), None, "{name}");
        assert_eq!(
            c.lid_by_pn("1@c.us").await.unwrap(),
            Some(pair("11@lid", "1@c.us"))
        );
        // A LID now names another number: its old pair goes too.
        c.upsert_lids(&[pair("20@lid", "3@c.us")]).await.unwrap();
        assert_eq!(c.lid_by_pn("2@c.us").await.unwrap(), None, "{name}");
        assert_eq!(
            c.list_lids(None, 0).await.unwrap(),
            vec![pair("11@lid", "1@c.us"), pair("20@lid", "3@c.us")],
            "{name}"
        );
        assert_eq!(
            c.list_lids(Some(1), 1).await.unwrap(),
            vec![pair("20@lid", "3@c.us")]
        );
        assert_eq!(c.count_lids().await.unwrap(), 2);
    }
}
