//! App state: a companion's patch is kept and decoded by the phone, reaches
//! the account's other companion (`server_sync` → re-sync → event), and a
//! change the phone makes reaches every companion.

use std::time::Duration;

use mockwa::{LabelChatState, MockNetwork, PhoneAction};
use whatsapp_rust::prelude::*;

use crate::harness::{eventually, paired_client};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archive_and_labels_round_trip() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let phone = "15550007001";
    let (a, _) = paired_client(&net, phone, "Ann").await;
    let (b, _) = paired_client(&net, phone, "Ann").await;
    let chat: Jid = "15550007002@s.whatsapp.net".parse().unwrap();

    a.client
        .chat_actions()
        .archive_chat(&chat, None)
        .await
        .expect("archive_chat");
    assert_eq!(net.app_state(phone).archived, vec![chat.to_string()]);
    let seen = b
        .wait_for(
            "ArchiveUpdate on the other companion",
            Duration::from_secs(20),
            |e| match e {
                Event::ArchiveUpdate(u) => Some((u.jid.to_string(), u.action.archived)),
                _ => None,
            },
        )
        .await;
    assert_eq!(seen, (chat.to_string(), Some(true)));

    // The phone makes changes: both companions hear of them.
    net.phone_action(
        phone,
        &PhoneAction::LabelEdit {
            label_id: "7".into(),
            name: "VIP".into(),
            color: 3,
            deleted: false,
        },
    )
    .expect("phone label");
    for c in [&a, &b] {
        let name = c
            .wait_for("LabelEditUpdate", Duration::from_secs(20), |e| match e {
                Event::LabelEditUpdate(u) if u.label_id == "7" => u.action.name.clone(),
                _ => None,
            })
            .await;
        assert_eq!(name, "VIP");
    }
    net.phone_action(
        phone,
        &PhoneAction::Archive {
            chat_id: chat.to_string(),
            archived: false,
        },
    )
    .expect("phone unarchive");
    a.wait_for(
        "unarchive from the phone",
        Duration::from_secs(20),
        |e| match e {
            Event::ArchiveUpdate(u) if u.action.archived == Some(false) => Some(()),
            _ => None,
        },
    )
    .await;
    assert!(net.app_state(phone).archived.is_empty());

    // A companion builds on the phone's patches (its base must have moved).
    b.client
        .labels()
        .add_chat_label("7", &chat)
        .await
        .expect("label chat");
    eventually("label on the chat", Duration::from_secs(10), || {
        net.app_state(phone).label_chats
            == vec![LabelChatState {
                label_id: "7".into(),
                chat_id: chat.to_string(),
            }]
    })
    .await;
    a.stop().await;
    b.stop().await;
}
