//! Groups: create with two members, messages from each of the three members
//! fan out to the others, then subject / invite / participant operations;
//! the `w:gp2` notifications every member device receives (as whatsapp-rust
//! `GroupUpdate` events), settings, invite codes and join requests,
//! pictures, admin checks, leaving, and a 500-group `participating` refresh.

use mockwa::MockNetwork;
use whatsapp_rust::prelude::*;
use whatsapp_rust::{
    GroupCreateOptions, GroupDescription, GroupParticipantOptions, GroupSubject,
    PreviousDescription,
};

use std::time::{Duration, Instant};

use whatsapp_rust::wacore::stanza::groups::GroupNotificationAction as A;
use whatsapp_rust::{
    GroupError, IqError, JoinGroupResult, MemberAddMode, MemberShareHistoryMode,
    MembershipApprovalMode,
};

use crate::harness::{
    TestClient, admin_http, paired_client, paired_client_http, wait_group, wait_text,
};

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

/// The server's error code inside a failed group operation.
fn iq_code(e: &GroupError) -> Option<u16> {
    match e {
        GroupError::Iq(IqError::ServerError { code, .. }) => Some(*code),
        _ => None,
    }
}

/// Whether `jids` names `phone` (PN form).
fn has_phone<'a>(mut jids: impl Iterator<Item = &'a Jid>, phone: &str) -> bool {
    jids.any(|j| j.user == phone)
}

async fn create(owner: &TestClient, subject: &str, members: &[&str]) -> Jid {
    owner
        .client
        .groups()
        .create_group(
            GroupCreateOptions::builder()
                .subject(subject)
                .participants(
                    members
                        .iter()
                        .map(|p| GroupParticipantOptions::new(Jid::pn(*p)))
                        .collect(),
                )
                .finish(),
        )
        .await
        .expect("create_group")
        .metadata
        .id
}

/// Every member device sees every change as a `GroupUpdate`, the acting
/// device and the actor's other device included; settings show in `info`;
/// a non-admin's message to an announcement group is nacked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_changes_notify_every_member_device() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a1, _), (b, _), (c, _)) = tokio::join!(
        paired_client(&net, "15550007001", "Ann"),
        paired_client(&net, "15550007002", "Ben"),
        paired_client(&net, "15550007003", "Cat"),
    );
    // Ann's second linked device.
    let (a2, _) = paired_client(&net, "15550007001", "Ann").await;

    let gid = create(&a1, "notify", &["15550007002"]).await;
    for (cl, who) in [(&a1, "a1"), (&a2, "a2"), (&b, "b")] {
        wait_group(cl, &format!("create at {who}"), |u| {
            (u.group_jid == gid && matches!(u.action, A::Create { .. })).then_some(())
        })
        .await;
    }

    a1.client
        .groups()
        .add_participants(gid.clone(), &[Jid::pn("15550007003")])
        .await
        .expect("add");
    for (cl, who) in [(&a1, "a1"), (&a2, "a2"), (&b, "b"), (&c, "c")] {
        let actor = wait_group(cl, &format!("add at {who}"), |u| match &u.action {
            A::Add { participants, .. }
                if has_phone(participants.iter().map(|p| &p.jid), "15550007003") =>
            {
                Some(u.participant.clone())
            }
            _ => None,
        })
        .await;
        assert_eq!(
            actor.map(|j| j.user.to_string()).as_deref(),
            Some("15550007001")
        );
    }

    a1.client
        .groups()
        .promote_participants(&gid, &[Jid::pn("15550007002")])
        .await
        .expect("promote");
    for (cl, who) in [(&a2, "a2"), (&c, "c")] {
        wait_group(cl, &format!("promote at {who}"), |u| match &u.action {
            A::Promote { participants }
                if has_phone(participants.iter().map(|p| &p.jid), "15550007002") =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }

    // Ben, now an admin, renames and describes the group.
    b.client
        .groups()
        .set_subject(&gid, GroupSubject::new("renamed by Ben").unwrap())
        .await
        .expect("subject");
    b.client
        .groups()
        .set_description(
            gid.clone(),
            Some(GroupDescription::new("Ben's words").unwrap()),
            PreviousDescription::Resolve,
        )
        .await
        .expect("description");
    for (cl, who) in [(&a1, "a1"), (&c, "c")] {
        wait_group(cl, &format!("subject at {who}"), |u| match &u.action {
            A::Subject { subject, .. } if subject == "renamed by Ben" => Some(()),
            _ => None,
        })
        .await;
        wait_group(cl, &format!("description at {who}"), |u| match &u.action {
            A::Description { description, .. } => {
                (description.as_deref() == Some("Ben's words")).then_some(())
            }
            _ => None,
        })
        .await;
    }
    // A stale `prev` token is a conflict, as on WhatsApp.
    let stale = a1
        .client
        .groups()
        .set_description(
            gid.clone(),
            Some(GroupDescription::new("lost update").unwrap()),
            PreviousDescription::Absent,
        )
        .await
        .expect_err("stale description");
    assert!(
        matches!(stale, GroupError::DescriptionConflict),
        "{stale:?}"
    );

    // Settings, each announced and reflected in the group info.
    let g = a1.client.groups();
    g.set_locked(gid.clone(), true).await.expect("locked");
    g.set_announce(gid.clone(), true).await.expect("announce");
    g.set_member_add_mode(&gid, MemberAddMode::AdminAdd)
        .await
        .expect("member add mode");
    g.set_membership_approval(&gid, MembershipApprovalMode::On)
        .await
        .expect("membership approval");
    g.set_member_share_history_mode(&gid, MemberShareHistoryMode::AllMemberShare)
        .await
        .expect("share history mode");
    for (cl, who) in [(&a2, "a2"), (&c, "c")] {
        wait_group(cl, &format!("locked at {who}"), |u| {
            matches!(u.action, A::Locked { .. }).then_some(())
        })
        .await;
        wait_group(cl, &format!("announcement at {who}"), |u| {
            matches!(u.action, A::Announce).then_some(())
        })
        .await;
        wait_group(cl, &format!("member_add_mode at {who}"), |u| {
            match &u.action {
                A::MemberAddMode { mode } if mode == "admin_add" => Some(()),
                _ => None,
            }
        })
        .await;
        wait_group(cl, &format!("approval at {who}"), |u| {
            matches!(u.action, A::MembershipApprovalMode { enabled: true }).then_some(())
        })
        .await;
        wait_group(cl, &format!("share history at {who}"), |u| {
            match &u.action {
                A::Unknown { tag } if tag == "member_share_group_history_mode" => Some(()),
                _ => None,
            }
        })
        .await;
    }
    let meta = c
        .client
        .groups()
        .get_metadata(&gid)
        .await
        .expect("metadata");
    assert_eq!(meta.subject, "renamed by Ben");
    assert_eq!(meta.description.as_deref(), Some("Ben's words"));
    assert!(meta.is_locked && meta.is_announcement && meta.membership_approval);
    // The info node carries `<member_add_mode>admin_add</…>` and
    // `<member_share_group_history_mode>`, but whatsapp-rust 0.7.0 parses
    // them only from string content, and these values are no binary-XML
    // tokens, so they travel (as from WhatsApp) as bytes and parse to None.
    // The notifications above do carry them; the server state has them.
    let state = net.group(&gid.to_string()).unwrap();
    assert_eq!(state.member_add_mode, "admin_add");
    assert_eq!(
        state.member_share_history_mode.as_deref(),
        Some("all_member_share")
    );
    let roles: Vec<(String, bool)> = meta
        .participants
        .iter()
        .map(|p| (p.jid.user.to_string(), p.is_admin()))
        .collect();
    assert!(roles.contains(&("15550007002".into(), true)), "{roles:?}");
    assert!(roles.contains(&("15550007003".into(), false)), "{roles:?}");

    // Cat is not an admin: info edits, settings and adds are refused with
    // 403, and her message to the announcement group is nacked.
    let cg = c.client.groups();
    let e = cg
        .set_subject(&gid, GroupSubject::new("cat's").unwrap())
        .await
        .expect_err("locked subject");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");
    let e = cg
        .set_announce(gid.clone(), false)
        .await
        .expect_err("announce");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");
    let e = cg
        .add_participants(gid.clone(), &[Jid::pn("15550007009")])
        .await
        .expect_err("admin_add");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");
    let sent = c
        .client
        .send_text(gid.clone(), "cat speaks")
        .await
        .expect("send is queued");
    let code = c
        .wait_for(
            "nack of cat's message",
            Duration::from_secs(20),
            |e| match e {
                Event::ServerAck(ack) if ack.id == sent.message_id => Some(ack.error.clone()),
                _ => None,
            },
        )
        .await;
    assert_eq!(code.as_deref(), Some("403"));
    // Admins still write.
    b.client
        .send_text(gid.clone(), "admins only")
        .await
        .expect("admin send");
    wait_text(&c, "admin message at cat", |t, _| t == "admins only").await;
    assert_eq!(
        net.group(&gid.to_string()).unwrap().subject,
        "renamed by Ben"
    );
    for cl in [a1, a2, b, c] {
        cl.stop().await;
    }
}

/// Invite codes: join-info without joining, revoke (the old code dies),
/// join by code, leave; with membership approval a join becomes a request
/// that admins list, reject and approve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invite_codes_and_join_requests() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _), (c, _)) = tokio::join!(
        paired_client(&net, "15550008001", "Ann"),
        paired_client(&net, "15550008002", "Ben"),
        paired_client(&net, "15550008003", "Cat"),
    );
    let gid = create(&a, "invites", &["15550008002"]).await;
    let link = a
        .client
        .groups()
        .get_invite_link(&gid, false)
        .await
        .unwrap();
    let old_code = link.rsplit('/').next().unwrap().to_string();

    // join-info: the group, without joining; Ben (no admin) may not see the link.
    let info = c.client.groups().get_invite_info(&old_code).await.unwrap();
    assert_eq!(info.id, gid);
    assert_eq!(info.subject, "invites");
    assert_eq!(net.group(&gid.to_string()).unwrap().participants.len(), 2);
    let e = b
        .client
        .groups()
        .get_invite_link(&gid, false)
        .await
        .expect_err("non-admin link");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");

    // Revoke: a new code; the old one is unknown now.
    let new_link = a.client.groups().get_invite_link(&gid, true).await.unwrap();
    let code = new_link.rsplit('/').next().unwrap().to_string();
    assert_ne!(code, old_code);
    wait_group(&b, "revoke at ben", |u| {
        matches!(u.action, A::RevokeInvite).then_some(())
    })
    .await;
    let e = c
        .client
        .groups()
        .join_with_invite_code(&old_code)
        .await
        .expect_err("revoked code");
    assert_eq!(iq_code(&e), Some(404), "{e:?}");
    let e = c
        .client
        .groups()
        .get_invite_info(&old_code)
        .await
        .expect_err("revoked code info");
    assert_eq!(iq_code(&e), Some(404), "{e:?}");

    // Join by code, then leave (a self-`remove` with Cat as the actor).
    let joined = c
        .client
        .groups()
        .join_with_invite_code(&code)
        .await
        .unwrap();
    assert!(matches!(joined, JoinGroupResult::Joined(ref j) if *j == gid));
    for (cl, who) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        wait_group(cl, &format!("invite join at {who}"), |u| match &u.action {
            A::Add {
                participants,
                reason,
            } if reason.as_deref() == Some("invite")
                && has_phone(participants.iter().map(|p| &p.jid), "15550008003") =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }
    c.client.groups().leave(gid.clone()).await.expect("leave");
    let actor = wait_group(&a, "leave at ann", |u| match &u.action {
        A::Remove { participants, .. }
            if has_phone(participants.iter().map(|p| &p.jid), "15550008003") =>
        {
            Some(u.participant.clone())
        }
        _ => None,
    })
    .await;
    assert_eq!(
        actor.map(|j| j.user.to_string()).as_deref(),
        Some("15550008003")
    );
    // A former member cannot send: the client's group lookup (its cache was
    // dropped by the leave) is refused with 403 before anything is sent; a
    // message sent anyway on stale metadata would be nacked with 403.
    let e = c
        .client
        .send_text(gid.clone(), "still here?")
        .await
        .expect_err("send after leaving");
    assert!(format!("{e:?}").contains("403"), "{e:?}");

    // Approval on: joining makes a request the admins see.
    a.client
        .groups()
        .set_membership_approval(&gid, MembershipApprovalMode::On)
        .await
        .unwrap();
    let pending = c
        .client
        .groups()
        .join_with_invite_code(&code)
        .await
        .unwrap();
    assert!(matches!(pending, JoinGroupResult::PendingApproval(ref j) if *j == gid));
    wait_group(&a, "join request at ann", |u| match &u.action {
        A::CreatedMembershipRequests { requests, .. }
            if has_phone(requests.iter().map(|p| &p.jid), "15550008003") =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    let reqs = a
        .client
        .groups()
        .get_membership_requests(&gid)
        .await
        .unwrap();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].jid.user, "15550008003");
    assert!(reqs[0].request_time.is_some());
    let e = b
        .client
        .groups()
        .get_membership_requests(&gid)
        .await
        .expect_err("non-admin requests");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");

    // Reject, request again, approve.
    let r = a
        .client
        .groups()
        .reject_membership_requests(&gid, &[Jid::pn("15550008003")])
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    wait_group(&c, "rejection at cat", |u| match &u.action {
        A::RevokedMembershipRequests { participants }
            if has_phone(participants.iter(), "15550008003") =>
        {
            Some(())
        }
        _ => None,
    })
    .await;
    assert!(
        net.group(&gid.to_string())
            .unwrap()
            .join_requests
            .is_empty()
    );
    c.client
        .groups()
        .join_with_invite_code(&code)
        .await
        .unwrap();
    let r = a
        .client
        .groups()
        .approve_membership_requests(&gid, &[Jid::pn("15550008003")])
        .await
        .unwrap();
    assert_eq!(r.len(), 1);
    for (cl, who) in [(&b, "b"), (&c, "c")] {
        wait_group(cl, &format!("approved add at {who}"), |u| match &u.action {
            A::Add {
                participants,
                reason,
            } if reason.is_none()
                && has_phone(participants.iter().map(|p| &p.jid), "15550008003") =>
            {
                Some(())
            }
            _ => None,
        })
        .await;
    }
    let state = net.group(&gid.to_string()).unwrap();
    assert_eq!(state.participants.len(), 3);
    assert!(state.join_requests.is_empty());
    assert_eq!(state.invite_code, code);
    for cl in [a, b, c] {
        cl.stop().await;
    }
}

/// Group pictures: set (members get `PictureUpdate`), get as the client
/// parses it, download over the mock's HTTP, delete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_picture_set_get_download_delete() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _)) = tokio::join!(
        paired_client(&net, "15550009001", "Ann"),
        paired_client(&net, "15550009002", "Ben"),
    );
    let gid = create(&a, "picture", &["15550009002"]).await;
    let none = b
        .client
        .contacts()
        .get_profile_picture(&gid, false)
        .await
        .unwrap();
    assert!(none.is_none());

    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..2000u32).map(|i| (i % 251) as u8))
        .collect();
    let set = a
        .client
        .groups()
        .set_profile_picture(gid.clone(), jpeg.clone())
        .await
        .expect("set picture");
    assert!(!set.id.is_empty());
    let (author, pid) = b
        .wait_for("picture set at ben", Duration::from_secs(20), |e| match e {
            Event::PictureUpdate(p) if p.jid == gid && !p.removed => {
                Some((p.author.clone(), p.picture_id.clone()))
            }
            _ => None,
        })
        .await;
    assert_eq!(
        author.map(|j| j.user.to_string()).as_deref(),
        Some("15550009001")
    );
    assert_eq!(pid.as_deref(), Some(set.id.as_str()));

    let pic = b
        .client
        .contacts()
        .get_profile_picture(&gid, false)
        .await
        .unwrap()
        .expect("picture");
    assert_eq!(pic.id, set.id);
    let path = pic.direct_path.clone().expect("direct_path");
    assert_eq!(pic.url, format!("http://{}{path}", net.addr()));
    let downloaded = http_get(&net, &path).await;
    assert_eq!(downloaded, jpeg);
    assert_eq!(
        net.group(&gid.to_string()).unwrap().picture_id,
        Some(set.id.clone())
    );

    // Non-admins may change the picture until the group is locked.
    a.client
        .groups()
        .set_locked(gid.clone(), true)
        .await
        .unwrap();
    let e = b
        .client
        .groups()
        .set_profile_picture(gid.clone(), jpeg.clone())
        .await
        .expect_err("locked picture");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");

    a.client
        .groups()
        .remove_profile_picture(gid.clone())
        .await
        .expect("remove picture");
    b.wait_for(
        "picture removed at ben",
        Duration::from_secs(20),
        |e| match e {
            Event::PictureUpdate(p) if p.jid == gid && p.removed => Some(()),
            _ => None,
        },
    )
    .await;
    let gone = b
        .client
        .contacts()
        .get_profile_picture(&gid, false)
        .await
        .unwrap();
    assert!(gone.is_none());
    assert!(
        http_get(&net, &path).await.is_empty(),
        "old picture still served"
    );
    for cl in [a, b] {
        cl.stop().await;
    }
}

/// Body of a plain HTTP GET on the mock (empty unless 200).
async fn http_get(net: &MockNetwork, path: &str) -> Vec<u8> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(net.addr()).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: mock\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await.unwrap();
    let split = resp.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    if !resp.starts_with(b"HTTP/1.1 200") {
        return Vec::new();
    }
    resp[split..].to_vec()
}

/// Unknown groups are 404 `item-not-found`, non-members 403; admin-only
/// participant changes are refused to members.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_errors_unknown_group_and_not_admin() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _), (c, _)) = tokio::join!(
        paired_client(&net, "15550010001", "Ann"),
        paired_client(&net, "15550010002", "Ben"),
        paired_client(&net, "15550010003", "Cat"),
    );
    let gid = create(&a, "errors", &["15550010002"]).await;
    let unknown = Jid::group("120363999999999999".to_string());
    let e = a
        .client
        .groups()
        .get_metadata(&unknown)
        .await
        .expect_err("unknown group");
    assert_eq!(iq_code(&e), Some(404), "{e:?}");
    let e = a
        .client
        .groups()
        .set_subject(&unknown, GroupSubject::new("x").unwrap())
        .await
        .expect_err("unknown group subject");
    assert_eq!(iq_code(&e), Some(404), "{e:?}");
    let e = c
        .client
        .groups()
        .get_metadata(&gid)
        .await
        .expect_err("not a member");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");
    let bg = b.client.groups();
    for (what, r) in [
        (
            "promote",
            bg.promote_participants(&gid, &[Jid::pn("15550010002")])
                .await,
        ),
        (
            "demote",
            bg.demote_participants(&gid, &[Jid::pn("15550010001")])
                .await,
        ),
        (
            "remove",
            bg.remove_participants(&gid, &[Jid::pn("15550010001")])
                .await,
        ),
    ] {
        let e = r.expect_err(what);
        assert_eq!(iq_code(&e), Some(403), "{what}: {e:?}");
    }
    let e = bg.set_locked(gid.clone(), true).await.expect_err("locked");
    assert_eq!(iq_code(&e), Some(403), "{e:?}");
    let e = bg
        .set_member_share_history_mode(&gid, MemberShareHistoryMode::AdminShare)
        .await
        .expect_err("share history mode");
    // MEX errors reach the caller as a parse error carrying the code.
    assert!(format!("{e:?}").contains("code=403"), "{e:?}");
    // In all_member_add mode (the default) any member may add.
    let added = bg
        .add_participants(gid.clone(), &[Jid::pn("15550010003")])
        .await
        .expect("member add");
    assert_eq!(added.len(), 1);
    // Unchanged by the refusals.
    let state = net.group(&gid.to_string()).unwrap();
    assert_eq!(state.participants.len(), 3);
    assert!(!state.locked);
    assert_eq!(state.participants[0].role, "superadmin");
    for cl in [a, b, c] {
        cl.stop().await;
    }
}

/// The last admin leaving hands admin to the longest-standing member; the
/// last member leaving ends the group. A 500-group `participating` refresh
/// (seeded through the admin API) is fast.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leave_succession_and_participating_500_groups() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _)) = tokio::join!(
        paired_client(&net, "15550011001", "Ann"),
        paired_client(&net, "15550011002", "Ben"),
    );
    let gid = create(&a, "succession", &["15550011002"]).await;
    a.client.groups().leave(gid.clone()).await.expect("leave");
    let actor = wait_group(&b, "succession at ben", |u| match &u.action {
        A::Promote { participants }
            if has_phone(participants.iter().map(|p| &p.jid), "15550011002") =>
        {
            Some(u.participant.clone())
        }
        _ => None,
    })
    .await;
    assert!(actor.is_none(), "server-side promote has no actor");
    let state = net.group(&gid.to_string()).unwrap();
    assert_eq!(state.participants.len(), 1);
    assert_eq!(state.participants[0].role, "admin");
    b.client
        .groups()
        .leave(gid.clone())
        .await
        .expect("last leave");
    assert_eq!(net.group(&gid.to_string()).unwrap_err().status(), 404);

    // Seed 500 groups over HTTP (Ann creates, Ben is a member).
    let body = serde_json::json!({
        "subject": "bulk", "creator": "15550011001",
        "participants": ["15550011002", "15550012000"], "count": 500
    })
    .to_string();
    let (status, v) = admin_http(&net, "POST", "/admin/groups", &body).await;
    assert_eq!(status, 200, "{v}");
    let ids = v["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 500);
    let (status, one) = admin_http(
        &net,
        "GET",
        &format!("/admin/groups/{}", ids[499].as_str().unwrap()),
        "",
    )
    .await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["subject"], "bulk #500");
    assert_eq!(one["participants"].as_array().unwrap().len(), 3);
    let (status, _) = admin_http(&net, "GET", "/admin/groups/123@g.us", "").await;
    assert_eq!(status, 404);
    let (status, list) = admin_http(&net, "GET", "/admin/groups", "").await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 500);
    assert_eq!(list[0]["subject"], "bulk #1");
    let (status, bad) = admin_http(
        &net,
        "POST",
        "/admin/groups",
        r#"{"subject":"x","creator":"+1","count":1}"#,
    )
    .await;
    assert_eq!(status, 400, "{bad}");

    let started = Instant::now();
    let all = b
        .client
        .groups()
        .get_participating()
        .await
        .expect("participating");
    let took = started.elapsed();
    println!("participating: {} groups in {took:?}", all.len());
    assert_eq!(all.len(), 500);
    assert!(all.values().all(|g| g.participants.len() == 3));
    assert!(took < Duration::from_secs(5), "participating took {took:?}");
    for cl in [a, b] {
        cl.stop().await;
    }
}
