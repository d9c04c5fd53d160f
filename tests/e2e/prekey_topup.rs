//! Issue 16, pairing cost: wharf uploads whatsmeow's batch of 50 one-time pre-keys on
//! pairing (WAHA's GOWS engine; whatsapp-rust's own default is WhatsApp Web's 812), so
//! the server-side top-up must work: when the mock's count for a device falls below 5 it
//! sends the prekey-low notification, the session uploads a new batch, and a peer that
//! fetches a key of that new batch opens a Signal session the device can decrypt.

use std::time::Duration;

use serde_json::json;

use crate::support::{
    app::{StoreKind, TestApp},
    poll::eventually,
    sink::Sink,
};

const A: &str = "15550007101";
const B: &str = "15550007102";

/// `phone`'s (only) companion device: its JID and the one-time pre-keys the mock holds.
fn device_of(net: &mockwa::MockNetwork, phone: &str) -> (String, usize) {
    let d = crate::support::only_companion(net, phone);
    (d.jid, d.prekeys)
}

async fn wait_prekeys(net: &mockwa::MockNetwork, phone: &str, want: usize, what: &str) {
    eventually(Duration::from_secs(30), what, || async {
        match device_of(net, phone).1 {
            n if n == want => Ok(()),
            n => Err(format!("{n} pre-keys on the mock")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prekeys_low_makes_the_session_upload_a_new_batch_that_peers_can_use() {
    for store in
        StoreKind::all("prekeys_low_makes_the_session_upload_a_new_batch_that_peers_can_use")
    {
        let net = mockwa::MockNetwork::start("127.0.0.1:0").await.unwrap();
        let sink = Sink::start().await;
        let app = TestApp::spawn_wa(store, &net, &[]).await;
        for (name, phone) in [("a", A), ("b", B)] {
            let body = json!({
                "name": name,
                "config": {"webhooks": [{"url": sink.url(&format!("/{name}")), "events": ["message"]}]},
            });
            app.pair_created(&net, &body.to_string(), name, phone).await;
        }
        // The default batch on pairing: whatsmeow's 50.
        wait_prekeys(&net, A, 50, "50 pre-keys uploaded on pairing").await;

        // Other devices fetch 46 of a's bundles: 4 left, below the mock's low mark of 5.
        let (jid, _) = device_of(&net, A);
        assert_eq!(net.take_prekeys(&jid, 46).expect("take"), 4);
        wait_prekeys(&net, A, 54, "a new batch of 50 after prekey-low").await;

        // Drain the old batch: the next bundle fetch hands out a key of the new one.
        assert_eq!(net.take_prekeys(&jid, 4).expect("take"), 50);

        // b has never talked to a: it fetches a's bundle (a new-batch key) to encrypt, and
        // a can only decrypt if that key was stored when it was uploaded.
        let text = format!("topup-{}", std::process::id());
        let body = json!({"session": "b", "chatId": format!("{A}@c.us"), "text": text});
        let r = app.post("/api/sendText", &body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        sink.wait_message("/a", &text).await;
        assert_eq!(
            device_of(&net, A).1,
            49,
            "b's first message used one of a's pre-keys"
        );

        // And the session keeps working the other way.
        let text = format!("topup-reply-{}", std::process::id());
        let body = json!({"session": "a", "chatId": format!("{B}@c.us"), "text": text});
        let r = app.post("/api/sendText", &body.to_string()).await;
        assert_eq!(r.status, 201, "{}", r.text);
        sink.wait_message("/b", &text).await;
    }
}
