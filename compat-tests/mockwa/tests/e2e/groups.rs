//! Groups: create with two members, messages from each of the three members
//! fan out to the others, then subject / invite / participant operations.

use mockwa::MockNetwork;
use whatsapp_rust::prelude::*;
use whatsapp_rust::{
    GroupCreateOptions, GroupDescription, GroupParticipantOptions, GroupSubject,
    PreviousDescription,
};

use crate::harness::{paired_client, paired_client_http, wait_text};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_member_group() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _), (c, _)) = tokio::join!(
        paired_client(&net, "15550006001", "Ann"),
        paired_client(&net, "15550006002", "Ben"),
        // One member is linked through the HTTP admin API instead.
        paired_client_http(&net, "15550006003", "Cat"),
    );
    let created = a
        .client
        .groups()
        .create_group(
            GroupCreateOptions::builder()
                .subject("mock group")
                .participants(vec![
                    GroupParticipantOptions::new(Jid::pn("15550006002")),
                    GroupParticipantOptions::new(Jid::pn("15550006003")),
                ])
                .finish(),
        )
        .await
        .expect("create_group");
    let gid = created.metadata.id.clone();
    assert_eq!(created.metadata.participants.len(), 3);

    let members = [(&a, "Ann"), (&b, "Ben"), (&c, "Cat")];
    for (sender, name) in members {
        let text = format!("hello from {name}");
        sender
            .client
            .send_text(gid.clone(), text.clone())
            .await
            .expect("group send");
        for (receiver, rname) in members {
            if rname == name {
                continue;
            }
            let info = wait_text(receiver, &format!("{text} at {rname}"), |t, _| t == text).await;
            assert!(info.source.is_group);
            assert_eq!(info.source.chat, gid);
        }
    }

    // Admin operations.
    a.client
        .groups()
        .set_subject(&gid, GroupSubject::new("renamed").unwrap())
        .await
        .expect("subject");
    let meta = b
        .client
        .groups()
        .query_info(&gid)
        .await
        .expect("query_info");
    assert_eq!(meta.participants.len(), 3);
    let link = a
        .client
        .groups()
        .get_invite_link(&gid, false)
        .await
        .expect("invite link");
    assert!(link.starts_with("https://chat.whatsapp.com/"), "{link}");
    a.client
        .groups()
        .promote_participants(&gid, &[Jid::pn("15550006002")])
        .await
        .expect("promote");
    a.client
        .groups()
        .remove_participants(&gid, &[Jid::pn("15550006003")])
        .await
        .expect("remove");
    // Cat rejoins with the invite code.
    let code = link.rsplit('/').next().unwrap().to_string();
    let joined = c
        .client
        .groups()
        .join_with_invite_code(&code)
        .await
        .expect("join");
    assert_eq!(joined.group_jid(), &gid);
    c.client.groups().leave(gid.clone()).await.expect("leave");

    // Description, demote, and adding Cat back: her messages still reach
    // everyone (sender keys are redistributed through the relay).
    a.client
        .groups()
        .set_description(
            gid.clone(),
            Some(GroupDescription::new("about this group").unwrap()),
            PreviousDescription::Resolve,
        )
        .await
        .expect("description");
    a.client
        .groups()
        .demote_participants(&gid, &[Jid::pn("15550006002")])
        .await
        .expect("demote");
    let added = a
        .client
        .groups()
        .add_participants(gid.clone(), &[Jid::pn("15550006003")])
        .await
        .expect("add");
    assert_eq!(added.len(), 1);
    let meta = a
        .client
        .groups()
        .query_info(&gid)
        .await
        .expect("query_info");
    assert_eq!(meta.participants.len(), 3);
    c.client
        .send_text(gid.clone(), "cat is back")
        .await
        .expect("send after re-add");
    for (receiver, rname) in [(&a, "Ann"), (&b, "Ben")] {
        wait_text(receiver, &format!("cat is back at {rname}"), |t, _| {
            t == "cat is back"
        })
        .await;
    }
    for cl in [a, b, c] {
        cl.stop().await;
    }
}
