//! 1:1 messaging through the relay: contact lookup, text both ways, fan-out
//! to the sender's other device, delivered/read receipts, chatstate, and the
//! offline queue.

use std::time::Duration;

use mockwa::MockNetwork;
use whatsapp_rust::prelude::*;
use whatsapp_rust::wacore::types::presence::ReceiptType;

use crate::harness::{paired_client, start_client, wait_text};

async fn wait_receipt(c: &crate::harness::TestClient, id: &str, ty: ReceiptType) {
    c.wait_for(
        &format!("{ty:?} receipt for {id}"),
        Duration::from_secs(20),
        |e| match e {
            Event::Receipt(r)
                if r.r#type == ty && r.message_ids.iter().any(|m| m.as_str() == id) =>
            {
                Some(())
            }
            _ => None,
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_text_both_ways_with_receipts_and_offline_queue() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, b_store)) = tokio::join!(
        paired_client(&net, "15550004444", "Alice"),
        paired_client(&net, "15550005555", "Bob"),
    );
    // A second device of Alice, linked afterwards (own-device fan-out).
    let (a2, _) = paired_client(&net, "15550004444", "Alice").await;
    assert_eq!(a2.client.pn().unwrap().device, 2);
    let a_jid = Jid::pn("15550004444");
    let b_jid = Jid::pn("15550005555");

    // is-on-WhatsApp: true only for numbers the mock knows.
    let res = a
        .client
        .contacts()
        .is_on_whatsapp(&[b_jid.clone(), Jid::pn("15559999999")])
        .await
        .expect("is_on_whatsapp");
    let known = |u: &str| {
        res.iter()
            .find(|r| r.jid.user == u)
            .map(|r| r.is_registered)
    };
    assert_eq!(known("15550005555"), Some(true));
    assert_eq!(known("15559999999"), Some(false));

    // Alice -> Bob.
    let sent = a
        .client
        .send_text(b_jid.clone(), "hello bob")
        .await
        .expect("send");
    let info = wait_text(&b, "hello bob at Bob", |t, _| t == "hello bob").await;
    assert_eq!(info.source.sender.user, "15550004444");
    assert!(!info.source.is_from_me);
    // Alice's other device sees her own message.
    let own = wait_text(&a2, "hello bob at Alice's 2nd device", |t, _| {
        t == "hello bob"
    })
    .await;
    assert!(own.source.is_from_me);
    assert_eq!(own.source.chat.user, "15550005555");
    wait_receipt(&a, &sent.message_id, ReceiptType::Delivered).await;
    b.client
        .mark_as_read(&info.source.chat, None, &[info.id.as_str()])
        .await
        .expect("mark_as_read");
    wait_receipt(&a, &sent.message_id, ReceiptType::Read).await;

    // Bob -> Alice (both of her devices).
    b.client
        .send_text(a_jid.clone(), "hi alice")
        .await
        .expect("send back");
    let back = wait_text(&a, "hi alice at Alice", |t, _| t == "hi alice").await;
    assert_eq!(back.source.sender.user, "15550005555");
    wait_text(&a2, "hi alice at Alice's 2nd device", |t, _| {
        t == "hi alice"
    })
    .await;

    // Typing indicator.
    a.client
        .chatstate()
        .send_composing(&b_jid)
        .await
        .expect("composing");
    b.wait_for(
        "ChatPresence from Alice",
        Duration::from_secs(10),
        |e| match e {
            Event::ChatPresence(p) if p.source.chat.user == "15550004444" => Some(()),
            _ => None,
        },
    )
    .await;

    // Presence: Bob goes online, Alice subscribes and sees it.
    b.client
        .presence()
        .set_available()
        .await
        .expect("available");
    a.client
        .presence()
        .subscribe(b_jid.clone())
        .await
        .expect("subscribe");
    a.wait_for("Bob available", Duration::from_secs(10), |e| match e {
        Event::Presence(p) if p.from.user == "15550005555" && !p.unavailable => Some(()),
        _ => None,
    })
    .await;

    // Offline queue: Bob is away (Alice sees him go unavailable), Alice
    // writes, Bob comes back.
    b.stop().await;
    a.wait_for("Bob unavailable", Duration::from_secs(10), |e| match e {
        Event::Presence(p) if p.from.user == "15550005555" && p.unavailable => Some(()),
        _ => None,
    })
    .await;
    let queued = a
        .client
        .send_text(b_jid.clone(), "while you were away")
        .await
        .expect("send");
    let b2 = start_client(&net, b_store).await;
    let got = wait_text(&b2, "queued message", |t, _| t == "while you were away").await;
    assert_eq!(got.id.as_str(), queued.message_id.as_str());
    wait_receipt(&a, &queued.message_id, ReceiptType::Delivered).await;
    for c in [a, a2, b2] {
        c.stop().await;
    }
}
