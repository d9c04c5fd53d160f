//! Issue 10 end to end: the `👥 Groups` API and the group events, three sessions paired
//! through the mock network, on both stores.
//!
//! The flow of the issue's "Done when" (create, add, promote, subject, description,
//! messages-admin-only, a refused send, revoke, leave, rejoin by code, remove), each step
//! checked on the right sessions' webhooks and through the GET routes (which answer from
//! each session's group cache); then pictures, join requests, settings, group messaging
//! (mentions, replies, participant ids) and bad input.

use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550001111";
const B: &str = "15550002222";
const C: &str = "15550003333";

fn cus(phone: &str) -> String {
    format!("{phone}@c.us")
}

/// Creates `name` with a webhook for every event on `/{name}`, pairs it as `phone`.
async fn pair_hooked(
    app: &TestApp,
    net: &mockwa::MockNetwork,
    sink: &Sink,
    name: &str,
    phone: &str,
) {
    let body = json!({
        "name": name,
        "config": {"webhooks": [{
            "url": sink.url(&format!("/{name}")),
            "events": ["*"],
            "retries": {"delaySeconds": 0.05, "attempts": 200, "policy": "constant"},
        }]},
    });
    app.pair_created(net, &body.to_string(), name, phone).await;
}

/// Sessions `a`, `b`, `c` (phones A, B, C) on a fresh network, webhooks on `/a`, `/b`, `/c`.
async fn three(store: StoreKind) -> (mockwa::MockNetwork, Sink, TestApp) {
    let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
    let sink = Sink::start().await;
    let app = TestApp::spawn_wa(store, &net, &[]).await;
    pair_hooked(&app, &net, &sink, "a", A).await;
    pair_hooked(&app, &net, &sink, "b", B).await;
    pair_hooked(&app, &net, &sink, "c", C).await;
    (net, sink, app)
}

/// The `n`-th (0-based) delivery of `event` on `path` whose payload matches `pred`.
async fn wait_nth(
    sink: &Sink,
    path: &str,
    event: &str,
    n: usize,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    eventually(
        Duration::from_secs(30),
        &format!("{event} #{n} at {path}"),
        || async {
            let hits: Vec<Value> = sink
                .delivered(path)
                .iter()
                .map(crate::support::sink::Received::json)
                .filter(|v| v["event"] == event && pred(&v["payload"]))
                .collect();
            hits.get(n).cloned().ok_or_else(|| {
                format!(
                    "got {:?}",
                    sink.delivered(path)
                        .iter()
                        .map(|r| {
                            let v = r.json();
                            format!("{} {}", v["event"], v["payload"])
                        })
                        .collect::<Vec<_>>()
                )
            })
        },
    )
    .await
}

async fn wait_event(sink: &Sink, path: &str, event: &str, pred: impl Fn(&Value) -> bool) -> Value {
    wait_nth(sink, path, event, 0, pred).await
}

/// How many deliveries of `event` on `path` match `pred` right now.
fn count_events(sink: &Sink, path: &str, event: &str, pred: impl Fn(&Value) -> bool) -> usize {
    sink.delivered(path)
        .iter()
        .map(crate::support::sink::Received::json)
        .filter(|v| v["event"] == event && pred(&v["payload"]))
        .count()
}

/// A `group.v2.participants` predicate: `kind` for the group, naming `who`.
fn participants_event(
    gid: &str,
    kind: &'static str,
    who: &str,
    role: &'static str,
) -> impl Fn(&Value) -> bool {
    let (gid, who) = (gid.to_string(), who.to_string());
    move |p: &Value| {
        p["group"]["id"] == gid.as_str()
            && p["type"] == kind
            && p["participants"].as_array().is_some_and(|ps| {
                ps.iter()
                    .any(|x| x["id"] == who.as_str() && x["role"] == role)
            })
    }
}

fn roles(participants: &Value) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = participants
        .as_array()
        .unwrap_or_else(|| panic!("participants: {participants}"))
        .iter()
        .map(|p| {
            (
                p["id"].as_str().unwrap().to_string(),
                p["role"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    v.sort();
    v
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = list
        .iter()
        .map(|(id, role)| (cus(id), (*role).to_string()))
        .collect();
    v.sort();
    v
}

/// A creates a group with B.
async fn create(app: &TestApp, sink: &Sink, subject: &str, members: &[&str]) -> String {
    let participants: Vec<Value> = members.iter().map(|p| json!({"id": cus(p)})).collect();
    let r = app
        .post(
            "/api/a/groups",
            &json!({"name": subject, "participants": participants}).to_string(),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    let created = r.json();
    let gid = created["id"].as_str().unwrap().to_string();
    assert!(gid.ends_with("@g.us"), "{created}");
    assert_eq!(created["subject"], subject);
    // The creator's own `group.v2.join` (WAHA: "the session was added or created a group").
    wait_event(sink, "/a", "group.v2.join", |p| {
        p["group"]["id"] == gid.as_str()
    })
    .await;
    gid
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_issue_flow_on_webhooks_and_get_routes() {
    for store in StoreKind::all("groups_flow") {
        let (_net, sink, app) = three(store).await;

        // 1. A creates the group with B: both get group.v2.join (and the deprecated
        //    group.join) with WAHA's GroupInfo; both caches have it.
        let gid = create(&app, &sink, "team", &[B]).await;
        let join = wait_event(&sink, "/b", "group.v2.join", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        let g = &join["payload"]["group"];
        assert_eq!(g["subject"], "team");
        assert_eq!(g["membersCanSendMessages"], true);
        assert_eq!(g["membersCanAddNewMember"], true);
        assert_eq!(g["newMembersApprovalRequired"], false);
        assert_eq!(
            roles(&g["participants"]),
            pairs(&[(A, "superadmin"), (B, "participant")])
        );
        assert!(
            g["participants"][0]["pn"]
                .as_str()
                .unwrap()
                .ends_with("@c.us")
        );
        assert!(join["payload"]["timestamp"].as_i64().unwrap() > 1_600_000_000);
        wait_event(&sink, "/b", "group.join", |p| p["id"] == gid.as_str()).await;
        let r = app.get(&format!("/api/b/groups/{gid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["subject"], "team");
        assert_eq!(
            app.get("/api/b/groups/count").await.json(),
            json!({"count": 1})
        );
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 0})
        );

        // 2. A adds C: C joins, A and B see a participants join.
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/add"),
                &json!({"participants": [{"id": cus(C)}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json(), json!([{"id": cus(C), "error": null}]));
        wait_event(&sink, "/c", "group.v2.join", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        for who in ["/a", "/b"] {
            wait_event(
                &sink,
                who,
                "group.v2.participants",
                participants_event(&gid, "join", &cus(C), "participant"),
            )
            .await;
        }
        let r = app
            .get(&format!("/api/a/groups/{gid}/participants/v2"))
            .await;
        assert_eq!(
            roles(&r.json()),
            pairs(&[(A, "superadmin"), (B, "participant"), (C, "participant")])
        );
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 1})
        );

        // 3. A promotes B; everybody sees it, B's own cache says admin.
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/admin/promote"),
                &json!({"participants": [{"id": cus(B)}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for who in ["/a", "/b", "/c"] {
            wait_event(
                &sink,
                who,
                "group.v2.participants",
                participants_event(&gid, "promote", &cus(B), "admin"),
            )
            .await;
        }
        let r = app.get(&format!("/api/b/groups/{gid}/participants")).await;
        assert_eq!(
            roles(&r.json()),
            pairs(&[(A, "superadmin"), (B, "admin"), (C, "participant")])
        );

        // 4. B (now an admin) renames the group and describes it.
        let r = app
            .put(
                &format!("/api/b/groups/{gid}/subject"),
                r#"{"subject":"renamed"}"#,
            )
            .await;
        assert_eq!((r.status, r.text.as_str()), (200, ""));
        for who in ["/a", "/b", "/c"] {
            let e = wait_event(&sink, who, "group.v2.update", |p| {
                p["group"]["subject"] == "renamed"
            })
            .await;
            assert_eq!(e["payload"]["group"]["id"], gid.as_str());
            assert_eq!(e["payload"]["_data"]["author"], cus(B).as_str());
        }
        let r = app
            .put(
                &format!("/api/b/groups/{gid}/description"),
                r#"{"description":"about us"}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        for who in ["/a", "/c"] {
            wait_event(&sink, who, "group.v2.update", |p| {
                p["group"]["description"] == "about us"
            })
            .await;
        }
        let g = app.get(&format!("/api/c/groups/{gid}")).await.json();
        assert_eq!(
            (&g["subject"], &g["description"]),
            (&json!("renamed"), &json!("about us"))
        );

        // 5. A sets messages-admin-only; C (not an admin) may not undo it.
        let r = app
            .put(
                &format!("/api/a/groups/{gid}/settings/security/messages-admin-only"),
                r#"{"adminsOnly":true}"#,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        wait_event(&sink, "/c", "group.v2.update", |p| {
            p["group"]["membersCanSendMessages"] == false
        })
        .await;
        let r = app
            .get(&format!(
                "/api/c/groups/{gid}/settings/security/messages-admin-only"
            ))
            .await;
        assert_eq!(r.json(), json!({"adminsOnly": true}));
        assert_eq!(
            app.get(&format!("/api/c/groups/{gid}")).await.json()["membersCanSendMessages"],
            false
        );
        let r = app
            .put(
                &format!("/api/c/groups/{gid}/settings/security/messages-admin-only"),
                r#"{"adminsOnly":false}"#,
            )
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
        assert_eq!(r.json()["statusCode"], 403);
        assert_eq!(r.json()["error"], "Forbidden");
        // The refusal left C's cache alone.
        assert_eq!(
            app.get(&format!(
                "/api/c/groups/{gid}/settings/security/messages-admin-only"
            ))
            .await
            .json(),
            json!({"adminsOnly": true})
        );

        // 6. C's send is refused by the server: an ERROR ack on C's webhook — a group
        //    chat's acks are `message.ack.group`, as WAHA emits them — nobody receives it;
        //    an admin's message still goes through.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "c", "chatId": gid, "text": "may I?"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let refused_id = r.json()["id"].as_str().unwrap().to_string();
        let ack = wait_event(&sink, "/c", "message.ack.group", |p| {
            p["id"] == refused_id.as_str() && p["ack"] == -1
        })
        .await;
        assert_eq!(ack["payload"]["ackName"], "ERROR");
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "b", "chatId": gid, "text": "admins only now"}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        wait_event(&sink, "/a", "message", |p| p["body"] == "admins only now").await;
        assert_eq!(
            count_events(&sink, "/a", "message", |p| p["body"] == "may I?"),
            0
        );
        assert_eq!(
            count_events(&sink, "/b", "message", |p| p["body"] == "may I?"),
            0
        );

        // 7. A revokes the invite code: a new code, the old one is dead, members see it.
        let r = app.get(&format!("/api/a/groups/{gid}/invite-code")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        let old = r.text.clone();
        assert!(old.starts_with("https://chat.whatsapp.com/"), "{old}");
        let r = app
            .post(&format!("/api/a/groups/{gid}/invite-code/revoke"), "")
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let new = r.text.clone();
        assert!(
            new.starts_with("https://chat.whatsapp.com/") && new != old,
            "{old} {new}"
        );
        wait_event(&sink, "/b", "group.v2.update", |p| {
            p["group"]["id"] == gid.as_str() && p["group"].get("invite").is_some()
        })
        .await;
        let r = app
            .get(&format!("/api/c/groups/join-info?code={}", urlencode(&old)))
            .await;
        assert_eq!(r.status, 404, "{}", r.text);
        let r = app
            .get(&format!("/api/c/groups/join-info?code={}", urlencode(&new)))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json()["id"], gid.as_str());
        assert_eq!(r.json()["subject"], "renamed");

        // 8. C leaves: C's leave events, the others' participants leave; C's cache
        //    forgets the group and WhatsApp no longer answers C about it.
        let r = app.post(&format!("/api/c/groups/{gid}/leave"), "").await;
        assert_eq!((r.status, r.text.as_str()), (201, ""));
        wait_event(&sink, "/c", "group.v2.leave", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        wait_event(&sink, "/c", "group.leave", |p| p["id"] == gid.as_str()).await;
        for who in ["/a", "/b"] {
            wait_event(
                &sink,
                who,
                "group.v2.participants",
                participants_event(&gid, "leave", &cus(C), "left"),
            )
            .await;
        }
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 0})
        );
        let r = app.get(&format!("/api/c/groups/{gid}")).await;
        assert_eq!(r.status, 403, "{}", r.text);

        // 9. C rejoins with the new code.
        let r = app
            .post("/api/c/groups/join", &json!({"code": new}).to_string())
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json(), json!({"id": gid}));
        wait_nth(&sink, "/c", "group.v2.join", 1, |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        wait_nth(
            &sink,
            "/a",
            "group.v2.participants",
            1,
            participants_event(&gid, "join", &cus(C), "participant"),
        )
        .await;
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 1})
        );

        // 10. A removes C.
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/remove"),
                &json!({"participants": [{"id": cus(C)}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        wait_nth(&sink, "/c", "group.v2.leave", 1, |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        wait_nth(
            &sink,
            "/b",
            "group.v2.participants",
            1,
            participants_event(&gid, "leave", &cus(C), "left"),
        )
        .await;
        let r = app
            .get(&format!("/api/a/groups/{gid}/participants/v2"))
            .await;
        assert_eq!(roles(&r.json()), pairs(&[(A, "superadmin"), (B, "admin")]));
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 0})
        );

        // The list: from the cache, WAHA's GroupInfo, `exclude=participants`.
        let list = app.get("/api/a/groups?exclude=participants").await.json();
        assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
        assert_eq!(list[0]["id"], gid.as_str());
        assert!(list[0].get("participants").is_none(), "{list}");
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pictures_settings_join_requests_refresh_and_bad_input() {
    for store in StoreKind::all("groups_more") {
        let (net, sink, app) = three(store).await;
        let gid = create(&app, &sink, "club", &[B]).await;
        wait_event(&sink, "/b", "group.v2.join", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;

        // Pictures: set (BinaryFile), read back the bytes through the URL, delete.
        assert_eq!(
            app.get(&format!("/api/a/groups/{gid}/picture"))
                .await
                .json(),
            json!({"url": null})
        );
        let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
            .into_iter()
            .chain(b"wharf-picture".iter().copied())
            .collect();
        let data = base64::engine::general_purpose::STANDARD.encode(&jpeg);
        let r = app
            .put(
                &format!("/api/a/groups/{gid}/picture"),
                &json!({"file": {"mimetype": "image/jpeg", "data": data}}).to_string(),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(r.json(), json!({"success": true}));
        let e = wait_event(&sink, "/b", "group.v2.update", |p| {
            p["group"]["picture"].is_string()
        })
        .await;
        let url = app
            .get(&format!("/api/b/groups/{gid}/picture"))
            .await
            .json()["url"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(e["payload"]["group"]["picture"], url.as_str());
        let bytes = reqwest::get(&url).await.unwrap().bytes().await.unwrap();
        assert_eq!(bytes.as_ref(), jpeg.as_slice());
        let r = app.delete(&format!("/api/a/groups/{gid}/picture")).await;
        assert_eq!(r.json(), json!({"success": true}));
        wait_event(&sink, "/b", "group.v2.update", |p| {
            p["group"].get("picture").is_some_and(Value::is_null)
        })
        .await;
        assert_eq!(
            app.get(&format!("/api/a/groups/{gid}/picture"))
                .await
                .json(),
            json!({"url": null})
        );

        // Settings: each one set and read back, in wharf's cache and on the mock server.
        // (path, body key, its value before / after "only admins", mock server field, its
        // value after): the two older routes take `adminsOnly`, the newer ones say what
        // members may (`membersCan…`) or whether approval is required.
        for (path, key, before, after, field, on) in [
            (
                "info-admin-only",
                "adminsOnly",
                false,
                true,
                "locked",
                json!(true),
            ),
            (
                "member-add-mode",
                "membersCanAddNewMember",
                true,
                false,
                "memberAddMode",
                json!("admin_add"),
            ),
            (
                "member-share-history-mode",
                "membersCanShareHistory",
                true,
                false,
                "memberShareHistoryMode",
                json!("admin_share"),
            ),
            (
                "membership-approval",
                "newMembersApprovalRequired",
                false,
                true,
                "membershipApproval",
                json!(true),
            ),
        ] {
            let url = format!("/api/a/groups/{gid}/settings/security/{path}");
            assert_eq!(app.get(&url).await.json(), json!({key: before}), "{path}");
            let r = app.put(&url, &json!({key: after}).to_string()).await;
            assert_eq!(r.status, 200, "{path}: {}", r.text);
            assert_eq!(app.get(&url).await.json(), json!({key: after}), "{path}");
            let state = serde_json::to_value(net.group(&gid).unwrap()).unwrap();
            assert_eq!(state[field], on, "{path}: {state}");
        }
        let info = app.get(&format!("/api/a/groups/{gid}")).await.json();
        assert_eq!(info["membersCanAddNewMember"], false);
        assert_eq!(info["newMembersApprovalRequired"], true);
        // Member-add mode reached B through the notification too.
        wait_event(&sink, "/b", "group.v2.update", |p| {
            p["group"]["membersCanAddNewMember"] == false
        })
        .await;
        assert_eq!(
            app.get(&format!(
                "/api/b/groups/{gid}/settings/security/member-add-mode"
            ))
            .await
            .json(),
            json!({"membersCanAddNewMember": false})
        );

        // Join requests (approval is on now): C asks, A sees and approves.
        let code = app
            .get(&format!("/api/a/groups/{gid}/invite-code"))
            .await
            .text;
        let r = app
            .post("/api/c/groups/join", &json!({"code": code}).to_string())
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(r.json(), json!({"id": gid}));
        assert_eq!(
            app.get("/api/c/groups/count").await.json(),
            json!({"count": 0})
        );
        let r = app
            .get(&format!("/api/a/groups/{gid}/participants/join-requests"))
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        let requests = r.json();
        assert_eq!(requests[0]["requesterId"], cus(C).as_str(), "{requests}");
        assert_eq!(requests[0]["requesterPn"], cus(C).as_str(), "{requests}");
        assert_eq!(requests[0]["requestMethod"], "invite_link", "{requests}");
        assert!(
            requests[0]["timestamp"].as_i64().unwrap() > 1_600_000_000,
            "{requests}"
        );
        // B is no admin: refused with a clear 403.
        let r = app
            .get(&format!("/api/b/groups/{gid}/participants/join-requests"))
            .await;
        assert_eq!(r.status, 403, "{}", r.text);
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/join-requests/reject"),
                &json!({"participants": [{"id": "15559999999@c.us"}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.json(),
            json!([{"requesterId": "15559999999@c.us", "success": false, "error": 404}])
        );
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/join-requests/approve"),
                &json!({"participants": [{"id": cus(C)}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            r.json(),
            json!([{"requesterId": cus(C), "success": true, "error": null}])
        );
        wait_event(&sink, "/c", "group.v2.join", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;

        // Refresh: groups created behind the session's back show up after it.
        let seeded = net
            .seed_groups(&mockwa::SeedGroups {
                subject: "bulk".into(),
                creator: A.into(),
                participants: vec![B.into()],
                count: Some(3),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(
            app.get("/api/b/groups/count").await.json(),
            json!({"count": 1})
        );
        let r = app.post("/api/b/groups/refresh", "").await;
        assert_eq!(r.status, 201, "{}", r.text);
        assert_eq!(
            app.get("/api/b/groups/count").await.json(),
            json!({"count": 4})
        );
        let page = app
            .get("/api/b/groups?sortBy=subject&sortOrder=desc&limit=2&offset=1")
            .await
            .json();
        let subjects: Vec<&str> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g["subject"].as_str().unwrap())
            .collect();
        assert_eq!(subjects, ["bulk #3", "bulk #2"], "{page}");
        // A seeded group not yet cached by C is read from WhatsApp on demand... C is no
        // member: WhatsApp's 403.
        let r = app.get(&format!("/api/c/groups/{}", seeded[0])).await;
        assert_eq!(r.status, 403, "{}", r.text);

        // Bad input.
        let r = app.get("/api/a/groups/120363999999999999@g.us").await;
        assert_eq!(
            r.text,
            r#"{"message":"WhatsApp: not found (404 item-not-found) - unknown group, or an invalid or revoked invite code","error":"Not Found","statusCode":404}"#
        );
        let r = app.get("/api/a/groups/123@c.us").await;
        // Exact bodies: class-validator's array for bad input, Nest's HttpException shape
        // for WhatsApp's refusals.
        assert_eq!(
            r.text,
            r#"{"message":["id must be a group id like 123123123@g.us, got \"123@c.us\""],"error":"Bad Request","statusCode":400}"#
        );
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/add"),
                r#"{"participants":[]}"#,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(
            r.json()["message"],
            json!(["participants should not be empty"])
        );
        let r = app.post("/api/a/groups", r#"{"name":"x"}"#).await;
        assert_eq!(r.status, 400, "{}", r.text);
        assert_eq!(
            r.json()["message"],
            json!(["participants should not be empty"])
        );
        let r = app
            .post(
                &format!("/api/a/groups/{gid}/participants/add"),
                r#"{"participants":[{"id":"123@g.us"}]}"#,
            )
            .await;
        assert_eq!(r.status, 400, "{}", r.text);
        // Not an admin: C may not remove A.
        let r = app
            .post(
                &format!("/api/c/groups/{gid}/participants/remove"),
                &json!({"participants": [{"id": cus(A)}]}).to_string(),
            )
            .await;
        assert_eq!(
            r.text,
            r#"{"message":"WhatsApp refused: not allowed (403 forbidden) - the session is not an admin of the group, or not a member","error":"Forbidden","statusCode":403}"#
        );
        // Nothing of that touched A's view of the group.
        let r = app
            .get(&format!("/api/a/groups/{gid}/participants/v2"))
            .await;
        assert_eq!(
            roles(&r.json()),
            pairs(&[(A, "superadmin"), (B, "participant"), (C, "participant")])
        );
        // A session that is not WORKING: WAHA's 422.
        assert_eq!(app.post("/api/sessions/c/stop", "").await.status, 201);
        let r = app.get("/api/c/groups").await;
        assert_eq!(r.status, 422, "{}", r.text);

        // Delete: A removes everyone and leaves; the group is gone for all.
        let r = app.delete(&format!("/api/a/groups/{gid}")).await;
        assert_eq!(r.status, 200, "{}", r.text);
        wait_event(&sink, "/b", "group.v2.leave", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;
        assert!(net.group(&gid).is_err(), "the group should have ended");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_messages_mentions_replies_and_participant_ids() {
    for store in StoreKind::all("groups_messaging") {
        let (_net, sink, app) = three(store).await;
        let gid = create(&app, &sink, "chat", &[B, C]).await;
        wait_event(&sink, "/c", "group.v2.join", |p| {
            p["group"]["id"] == gid.as_str()
        })
        .await;

        // A mentions B.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "a", "chatId": gid, "text": "hi @15550002222", "mentions": [cus(B)]}).to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let wa_id = r.json()["id"]
            .as_str()
            .unwrap()
            .rsplit('_')
            .next()
            .unwrap()
            .to_string();
        let m = wait_event(&sink, "/b", "message", |p| p["body"] == "hi @15550002222").await;
        let p = &m["payload"];
        assert_eq!(p["from"], gid.as_str());
        assert_eq!(p["participant"], cus(A).as_str());
        assert_eq!(p["id"], format!("false_{gid}_{wa_id}_{}", cus(A)));
        assert_eq!(p["_data"]["mentionedIds"], json!([cus(B)]));

        // A mentions everybody.
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "a", "chatId": gid, "text": "hi all", "mentions": ["all"]})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        let m = wait_event(&sink, "/c", "message", |p| p["body"] == "hi all").await;
        let mut mentioned: Vec<String> = m["payload"]["_data"]["mentionedIds"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        mentioned.sort();
        assert_eq!(mentioned, [cus(A), cus(B), cus(C)]);

        // C replies to A's message (by the id C received it under).
        let received = wait_event(&sink, "/c", "message", |p| p["body"] == "hi @15550002222").await;
        let quoted = received["payload"]["id"].as_str().unwrap().to_string();
        let r = app
            .post(
                "/api/sendText",
                &json!({"session": "c", "chatId": gid, "text": "welcome back", "reply_to": quoted})
                    .to_string(),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text);
        for who in ["/a", "/b"] {
            let m = wait_event(&sink, who, "message", |p| p["body"] == "welcome back").await;
            let p = &m["payload"];
            assert_eq!(p["participant"], cus(C).as_str());
            assert_eq!(p["replyTo"]["id"], wa_id.as_str(), "{p}");
            assert_eq!(p["replyTo"]["participant"], cus(A).as_str(), "{p}");
        }
        // The stored history keeps the participant suffix.
        let r = app
            .get(&format!("/api/b/chats/{gid}/messages?limit=10"))
            .await;
        let ids: Vec<String> = r
            .json()
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect();
        assert!(
            ids.iter().any(|i| i.ends_with(&format!("_{}", cus(C)))),
            "{ids:?}"
        );
    }
}

/// The group cache's figure (issue 10: "`GET /groups` with 500 groups answers from the
/// cache in milliseconds"). Ignored by default (a benchmark, not a check):
/// `cargo wt --test e2e groups::bench -- --ignored --nocapture`, with
/// `MONGO_SERVER_BIN` set for the MongoDB figure too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: prints p50/p95 of GET /groups over 500 cached groups"]
async fn bench_get_groups_500_from_cache() {
    const GROUPS: u32 = 500;
    const RUNS: usize = 50;
    for store in StoreKind::all("groups_bench") {
        let name = match &store {
            StoreKind::Embedded => "sqlite",
            StoreKind::Mongo { .. } => "mongodb",
        };
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        app.pair(&net, "a", A).await;
        net.seed_groups(&mockwa::SeedGroups {
            subject: "bulk".into(),
            creator: A.into(),
            participants: vec![B.into(), C.into()],
            count: Some(GROUPS),
            ..Default::default()
        })
        .unwrap();
        let started = std::time::Instant::now();
        let r = app.post("/api/a/groups/refresh", "").await;
        assert_eq!(r.status, 201, "{}", r.text);
        let refresh = started.elapsed();
        assert_eq!(
            app.get("/api/a/groups/count").await.json(),
            json!({"count": GROUPS})
        );
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = std::time::Instant::now();
            let r = app.get("/api/a/groups").await;
            times.push(started.elapsed());
            assert_eq!(r.status, 200);
            assert_eq!(r.json().as_array().map(Vec::len), Some(GROUPS as usize));
        }
        times.sort();
        let (p50, p95) = (times[RUNS / 2], times[RUNS * 95 / 100]);
        let mut small = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let started = std::time::Instant::now();
            let r = app.get("/api/a/groups?limit=20&exclude=participants").await;
            small.push(started.elapsed());
            assert_eq!(r.status, 200);
        }
        small.sort();
        println!(
            "groups bench [{name}, debug build]: GET /api/a/groups ({GROUPS} groups x 3 members, from the cache) \
             p50 {:.1} ms, p95 {:.1} ms; ?limit=20&exclude=participants p50 {:.1} ms; \
             POST /groups/refresh (WhatsApp query + cache rewrite) {:.0} ms. Target: milliseconds.",
            p50.as_secs_f64() * 1e3,
            p95.as_secs_f64() * 1e3,
            small[RUNS / 2].as_secs_f64() * 1e3,
            refresh.as_secs_f64() * 1e3,
        );
        // A generous ceiling even for a loaded debug build: a cache that queried WhatsApp
        // (hundreds of ms for 500 groups) or scanned badly would blow it.
        assert!(p50 < Duration::from_millis(250), "p50 {p50:?}");
    }
}
