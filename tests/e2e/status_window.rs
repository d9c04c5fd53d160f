//! A session whose WhatsApp connection ended is not `WORKING` (issue 15: the 422 that said
//! "WORKING").
//!
//! A `515` stream error is a disconnect the client expects: it redials at once and emits
//! no `Disconnected`. With mockwa refusing connections the redial fails, so the session
//! has no connection for as long as the test wants. The status must say so: `STARTING`
//! in `GET /api/sessions/{name}`, in a `session.status` webhook, and in the WORKING gate's
//! `422` of a send — all three agreeing. Once connections are accepted again it is
//! `WORKING` again by itself (a `session.status` `WORKING`) and sends go through. Both
//! stores.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

/// The `session.status` payloads `sink` got at `/hook`, in order.
fn statuses(sink: &Sink) -> Vec<String> {
    sink.delivered("/hook")
        .iter()
        .map(|r| r.json())
        .filter(|e| e["event"] == "session.status")
        .filter_map(|e| e["payload"]["status"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_without_its_connection_is_starting_everywhere() {
    for store in StoreKind::all("status_window::a_session_without_its_connection_is_starting") {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        let body = json!({"name": "gap", "config": {"webhooks": [{
            "url": sink.url("/hook"),
            "events": ["session.status"],
        }]}});
        app.pair_created(&net, &body.to_string(), "gap", "15558200001")
            .await;
        eventually(Duration::from_secs(20), "WORKING announced", || async {
            let s = statuses(&sink);
            if s.last().map(String::as_str) == Some("WORKING") {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        })
        .await;
        let announced = statuses(&sink).len();
        let jid = net.devices()[0].jid.clone();

        // The connection ends (a 515) and cannot come back.
        net.set_faults(&mockwa::FaultSettings {
            refuse_connections: Some(true),
            ..Default::default()
        });
        net.stream_error(&jid, "515").unwrap();
        let refused_before = net.faults().refused_count.unwrap_or(0);
        eventually(Duration::from_secs(20), "the redial is refused", || async {
            let n = net.faults().refused_count.unwrap_or(0);
            if n > refused_before {
                Ok(())
            } else {
                Err(format!("{n} refused"))
            }
        })
        .await;

        // Every view agrees: STARTING.
        let s = app.get("/api/sessions/gap").await.json();
        assert_eq!(s["status"], "STARTING", "{s}");
        let send = json!({"session": "gap", "chatId": "15558200002@c.us", "text": "no link"});
        let r = app.post("/api/sendText", &send.to_string()).await;
        assert_eq!(r.status, 422, "{}", r.text);
        let refusal: Value = r.json();
        assert_eq!(refusal["status"], "STARTING", "{refusal}");
        assert_eq!(refusal["expected"], json!(["WORKING"]), "{refusal}");
        eventually(Duration::from_secs(20), "STARTING announced", || async {
            let s = statuses(&sink);
            if s[announced..].iter().any(|x| x == "STARTING") {
                Ok(())
            } else {
                Err(format!("{s:?}"))
            }
        })
        .await;

        // Back: WORKING by itself, announced, and the send goes through.
        net.set_faults(&mockwa::FaultSettings {
            refuse_connections: Some(false),
            ..Default::default()
        });
        app.wait_status("gap", "WORKING", Duration::from_secs(40))
            .await;
        eventually(
            Duration::from_secs(20),
            "WORKING announced again",
            || async {
                let s = statuses(&sink);
                if s[announced..].ends_with(&["STARTING".into(), "WORKING".into()]) {
                    Ok(())
                } else {
                    Err(format!("{s:?}"))
                }
            },
        )
        .await;
        let r = app.post("/api/sendText", &send.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
    }
}
