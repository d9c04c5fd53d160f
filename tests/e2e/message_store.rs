//! The message store (`wharf::messages::MessageStore`), the same cases on both backends.
//!
//! Owns: the cases (plain `async fn case(&Fixture)`, a `support::store::TestStore` with the
//! message store over it). The `cases!`
//! macro turns every case into `message_store::sqlite::<case>` (a tempdir) and
//! `message_store::mongo::<case>` (a fresh namespace on the binary's shared MongoDB,
//! skipped when there is none).

use std::time::Duration;

use serde_json::{Map, Value, json};
use wharf::events::outbox::{NewRow, Outbox, Retry};
use wharf::messages::{ChatQuery, ChatSortBy, MessageQuery, MessageStore, SortOrder};
use wharf::model::message::{MessageSource, WAMessage, ack, message_id};
use wharf::store::SessionRecord;

use crate::support::{
    poll::eventually,
    store::{Target, TestStore},
};

const S: &str = "alice";
const CHAT_A: &str = "15550001111@c.us";
const CHAT_B: &str = "15550002222@c.us";
const GROUP: &str = "120363000000000001@g.us";

/// One backend under test (`support::store`), with the message store over it.
struct Fixture {
    base: TestStore,
    messages: MessageStore,
}

impl std::ops::Deref for Fixture {
    type Target = TestStore;
    fn deref(&self) -> &TestStore {
        &self.base
    }
}

impl Fixture {
    async fn sqlite() -> Self {
        Self::over(TestStore::sqlite().await)
    }

    async fn mongo(test: &str) -> Option<Self> {
        Some(Self::over(TestStore::mongo(test).await?))
    }

    fn over(base: TestStore) -> Self {
        Self {
            messages: MessageStore::new(base.store.clone()),
            base,
        }
    }

    /// A brand-new `Store` + `MessageStore` over the same data (a process restart).
    async fn reopen(&self) -> MessageStore {
        MessageStore::new(self.base.reopen().await)
    }
}

macro_rules! cases {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let f = super::Fixture::sqlite().await;
                    super::$case(&f).await;
                }
            )*
        }
        mod mongo {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let Some(f) = super::Fixture::mongo(concat!("message_store::", stringify!($case))).await else {
                        return;
                    };
                    super::$case(&f).await;
                }
            )*
        }
    };
}

cases!(
    save_get_and_list_with_every_filter_and_sort,
    upsert_is_idempotent_and_never_lowers_the_ack,
    ack_only_increases_by_raw_id,
    edit_changes_the_body_and_revoke_returns_the_before,
    chats_are_ordered_by_last_message_and_paged,
    mark_read_marks_recent_unread_incoming_only,
    purge_deletes_older_messages_and_empty_chats,
    retention_task_purges_old_messages,
    retention_task_stop_cancels_and_joins,
    sessions_are_isolated,
    history_survives_a_reopen,
    missing_session_reads_empty_and_creates_nothing,
    many_sessions_beyond_the_connection_cache,
    delete_session_forgets_caches_and_recreated_session_starts_empty,
);

/// A text message in `chat` with raw id `wa`.
fn msg(chat: &str, wa: &str, ts: i64, from_me: bool, ack_code: i32, body: &str) -> WAMessage {
    let participant = chat.ends_with("@g.us").then_some("15550009999@c.us");
    WAMessage {
        id: message_id(from_me, chat, wa, participant),
        timestamp: ts,
        from: if from_me { "15550000000@c.us" } else { chat }.to_string(),
        from_me,
        source: if from_me {
            MessageSource::Api
        } else {
            MessageSource::App
        },
        to: Some(if from_me { chat } else { "15550000000@c.us" }.to_string()),
        participant: participant.map(String::from),
        author: None,
        body: body.to_string(),
        has_media: false,
        media: None,
        media_url: None,
        ack: ack_code,
        ack_name: ack::name(ack_code).to_string(),
        location: None,
        v_cards: vec![],
        reply_to: None,
        data: Map::new(),
    }
}

fn wa_ids(v: &[WAMessage]) -> Vec<&str> {
    v.iter()
        .map(|m| m.id.split('_').nth(2).expect("WAHA id has a wa id segment"))
        .collect()
}

fn all() -> MessageQuery {
    MessageQuery::default()
}

/// Five messages in CHAT_A (t=100..500) plus one in CHAT_B.
async fn seed(m: &MessageStore, session: &str) {
    let rows = [
        msg(CHAT_A, "A1", 100, false, ack::DEVICE, "one"),
        msg(CHAT_A, "A2", 200, true, ack::READ, "two"),
        msg(CHAT_A, "A3", 300, false, ack::READ, "three"),
        msg(CHAT_A, "A4", 400, true, ack::SERVER, "four"),
        msg(CHAT_A, "A5", 500, true, ack::PLAYED, "five"),
        msg(CHAT_B, "B1", 250, false, ack::DEVICE, "bee"),
    ];
    for r in &rows {
        m.save(session, r).await.expect("save");
    }
}

async fn save_get_and_list_with_every_filter_and_sort(f: &Fixture) {
    let m = &f.messages;
    seed(m, S).await;
    let a3 = msg(CHAT_A, "A3", 300, false, ack::READ, "three");
    assert_eq!(m.get(S, &a3.id).await.unwrap(), Some(a3.clone()));
    assert_eq!(m.find_by_wa_id(S, "A3").await.unwrap(), Some(a3));
    assert_eq!(m.get(S, "false_1@c.us_NOPE").await.unwrap(), None);
    assert_eq!(m.find_by_wa_id(S, "NOPE").await.unwrap(), None);

    // Default: newest first, only this chat.
    let list = m.list(S, CHAT_A, &all()).await.unwrap();
    assert_eq!(wa_ids(&list), ["A5", "A4", "A3", "A2", "A1"]);
    let asc = MessageQuery {
        sort_order: SortOrder::Asc,
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &asc).await.unwrap()),
        ["A1", "A2", "A3", "A4", "A5"]
    );
    // Paging.
    let page = MessageQuery {
        limit: Some(2),
        offset: 1,
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &page).await.unwrap()),
        ["A4", "A3"]
    );
    let zero = MessageQuery {
        limit: Some(0),
        ..all()
    };
    assert!(m.list(S, CHAT_A, &zero).await.unwrap().is_empty());
    // Inclusive timestamp bounds.
    let window = MessageQuery {
        timestamp_gte: Some(200),
        timestamp_lte: Some(400),
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &window).await.unwrap()),
        ["A4", "A3", "A2"]
    );
    let mine = MessageQuery {
        from_me: Some(true),
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &mine).await.unwrap()),
        ["A5", "A4", "A2"]
    );
    let theirs = MessageQuery {
        from_me: Some(false),
        sort_order: SortOrder::Asc,
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &theirs).await.unwrap()),
        ["A1", "A3"]
    );
    let read = MessageQuery {
        ack: Some(ack::READ),
        ..all()
    };
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &read).await.unwrap()),
        ["A3", "A2"]
    );
    let combined = MessageQuery {
        from_me: Some(true),
        timestamp_gte: Some(300),
        ack: Some(ack::SERVER),
        ..all()
    };
    assert_eq!(wa_ids(&m.list(S, CHAT_A, &combined).await.unwrap()), ["A4"]);
    assert_eq!(wa_ids(&m.list(S, CHAT_B, &all()).await.unwrap()), ["B1"]);
    assert!(
        m.list(S, "15559999999@c.us", &all())
            .await
            .unwrap()
            .is_empty()
    );

    // Same-second messages come in a stable order (ties by id) so pages never overlap.
    for wa in ["T1", "T2", "T3"] {
        m.save(S, &msg(GROUP, wa, 50, false, ack::DEVICE, wa))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for offset in 0..3 {
        let q = MessageQuery {
            limit: Some(1),
            offset,
            ..all()
        };
        let page = m.list(S, GROUP, &q).await.unwrap();
        seen.extend(wa_ids(&page).iter().map(|s| s.to_string()));
    }
    assert_eq!(seen, ["T3", "T2", "T1"]);
    let all_group = m.list(S, GROUP, &all()).await.unwrap();
    assert_eq!(wa_ids(&all_group), ["T3", "T2", "T1"]);
    assert_eq!(
        all_group[0].participant.as_deref(),
        Some("15550009999@c.us")
    );

    // Rich fields round-trip exactly.
    let mut rich = msg(CHAT_B, "RICH", 260, false, ack::DEVICE, "");
    rich.has_media = true;
    rich.media = Some(wharf::model::message::WAMedia {
        url: Some("http://localhost:3000/api/files/alice/x.jpg".into()),
        mimetype: Some("image/jpeg".into()),
        filename: None,
        s3: None,
        error: None,
    });
    rich.media_url = Some("http://localhost:3000/api/files/alice/x.jpg".into());
    rich.v_cards = vec!["BEGIN:VCARD\nEND:VCARD".into()];
    rich.data = json!({"Info": {"PushName": "Bee", "n": 1.5, "big": 1_700_000_000_000_i64, "list": [1, "x", null]}})
        .as_object()
        .cloned()
        .unwrap();
    m.save(S, &rich).await.unwrap();
    assert_eq!(m.get(S, &rich.id).await.unwrap(), Some(rich));
}

async fn upsert_is_idempotent_and_never_lowers_the_ack(f: &Fixture) {
    let m = &f.messages;
    let one = msg(CHAT_A, "U1", 100, true, ack::PENDING, "hello");
    m.save(S, &one).await.unwrap();
    m.save(S, &one).await.unwrap();
    assert_eq!(m.list(S, CHAT_A, &all()).await.unwrap(), vec![one.clone()]);
    assert_eq!(m.chats(S, &ChatQuery::default()).await.unwrap().len(), 1);

    // A re-save replaces the content…
    let mut changed = one.clone();
    changed.body = "hello again".into();
    changed.set_ack(ack::SERVER);
    m.save(S, &changed).await.unwrap();
    assert_eq!(m.get(S, &one.id).await.unwrap(), Some(changed.clone()));
    // …but never takes the ack back (a receipt may beat the engine's save).
    m.set_ack(S, "U1", ack::READ).await.unwrap();
    m.save(S, &changed).await.unwrap();
    let stored = m.get(S, &one.id).await.unwrap().unwrap();
    assert_eq!((stored.ack, stored.ack_name.as_str()), (ack::READ, "READ"));
    assert_eq!(stored.body, "hello again");
    assert_eq!(m.list(S, CHAT_A, &all()).await.unwrap().len(), 1);
}

async fn ack_only_increases_by_raw_id(f: &Fixture) {
    let m = &f.messages;
    m.save(S, &msg(CHAT_A, "K1", 100, true, ack::PENDING, "k"))
        .await
        .unwrap();
    let up = m.set_ack(S, "K1", ack::DEVICE).await.unwrap().unwrap();
    assert_eq!((up.ack, up.ack_name.as_str()), (2, "DEVICE"));
    // Late SERVER receipt after DEVICE: stays DEVICE, the message is still returned.
    let same = m.set_ack(S, "K1", ack::SERVER).await.unwrap().unwrap();
    assert_eq!((same.ack, same.ack_name.as_str()), (2, "DEVICE"));
    let read = m.set_ack(S, "K1", ack::READ).await.unwrap().unwrap();
    assert_eq!(read.ack_name, "READ");
    let played = m.set_ack(S, "K1", ack::PLAYED).await.unwrap().unwrap();
    assert_eq!(played.ack_name, "PLAYED");
    assert_eq!(
        m.set_ack(S, "K1", ack::ERROR).await.unwrap().unwrap().ack,
        ack::PLAYED
    );
    assert_eq!(
        m.find_by_wa_id(S, "K1").await.unwrap().unwrap().ack,
        ack::PLAYED
    );
    // A pending send may fail.
    m.save(S, &msg(CHAT_A, "K2", 110, true, ack::PENDING, "k2"))
        .await
        .unwrap();
    let failed = m.set_ack(S, "K2", ack::ERROR).await.unwrap().unwrap();
    assert_eq!((failed.ack, failed.ack_name.as_str()), (-1, "ERROR"));
    // So may one the server took (its nack comes instead of its ack), but not one
    // delivered.
    m.save(S, &msg(CHAT_A, "K3", 111, true, ack::SERVER, "k3"))
        .await
        .unwrap();
    let nacked = m.set_ack(S, "K3", ack::ERROR).await.unwrap().unwrap();
    assert_eq!(nacked.ack, ack::ERROR);
    // Unknown id.
    assert_eq!(m.set_ack(S, "NOPE", ack::READ).await.unwrap(), None);
    assert_eq!(m.set_ack("nobody", "K1", ack::READ).await.unwrap(), None);
    // The chat's last message reflects the ack.
    let chats = m.chats(S, &ChatQuery::default()).await.unwrap();
    assert_eq!(chats[0].last_message.as_ref().unwrap().ack, ack::ERROR);
}

async fn edit_changes_the_body_and_revoke_returns_the_before(f: &Fixture) {
    let m = &f.messages;
    let original = msg(CHAT_A, "E1", 100, false, ack::DEVICE, "tpyo");
    m.save(S, &original).await.unwrap();
    let edited = m.edit(S, "E1", "typo").await.unwrap().unwrap();
    assert_eq!(edited.body, "typo");
    assert_eq!(edited.id, original.id);
    assert_eq!(m.get(S, &original.id).await.unwrap().unwrap().body, "typo");
    assert_eq!(m.edit(S, "NOPE", "x").await.unwrap(), None);

    let before = m.revoke(S, "E1").await.unwrap().unwrap();
    assert_eq!(before.body, "typo", "revoke answers the message as it was");
    assert!(before.data.get("revoked").is_none());
    let after = m.get(S, &original.id).await.unwrap().unwrap();
    assert_eq!(after.body, "");
    assert_eq!(after.data.get("revoked"), Some(&Value::Bool(true)));
    assert_eq!(m.revoke(S, "NOPE").await.unwrap(), None);
    let chat = &m.chats(S, &ChatQuery::default()).await.unwrap()[0];
    assert_eq!(chat.last_message.as_ref().unwrap().body, "");
}

async fn chats_are_ordered_by_last_message_and_paged(f: &Fixture) {
    let m = &f.messages;
    seed(m, S).await;
    let mut named = msg(CHAT_B, "B2", 600, false, ack::DEVICE, "latest");
    named.data = json!({"pushName": "Bob"}).as_object().cloned().unwrap();
    m.save(S, &named).await.unwrap();
    m.save(S, &msg(GROUP, "G1", 350, false, ack::DEVICE, "group"))
        .await
        .unwrap();
    // An older message arriving late does not replace the last message.
    m.save(S, &msg(CHAT_A, "A0", 50, false, ack::DEVICE, "old"))
        .await
        .unwrap();

    let chats = m.chats(S, &ChatQuery::default()).await.unwrap();
    let order: Vec<&str> = chats.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, [CHAT_B, CHAT_A, GROUP]);
    assert_eq!(chats[0].name.as_deref(), Some("Bob"));
    assert_eq!(chats[0].conversation_timestamp, 600);
    assert_eq!(chats[0].last_message.as_ref().unwrap().body, "latest");
    assert_eq!(chats[1].conversation_timestamp, 500);
    assert_eq!(chats[1].last_message.as_ref().unwrap().body, "five");
    assert_eq!(chats[1].name, None, "own messages do not name a chat");
    assert_eq!(
        chats[2].name, None,
        "a member's push name is not the group's"
    );

    let asc = ChatQuery {
        sort_order: SortOrder::Asc,
        ..ChatQuery::default()
    };
    let order: Vec<String> = m
        .chats(S, &asc)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, [GROUP, CHAT_A, CHAT_B]);
    let page = ChatQuery {
        limit: Some(1),
        offset: 1,
        ..ChatQuery::default()
    };
    let p = m.chats(S, &page).await.unwrap();
    assert_eq!(p.len(), 1);
    assert_eq!(p[0].id, CHAT_A);
    let by_id = ChatQuery {
        sort_by: ChatSortBy::Id,
        sort_order: SortOrder::Asc,
        ..ChatQuery::default()
    };
    let order: Vec<String> = m
        .chats(S, &by_id)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(order, [GROUP, CHAT_A, CHAT_B]);
    m.set_chat_name(S, GROUP, "Team").await.unwrap();
    let by_name = ChatQuery {
        sort_by: ChatSortBy::Name,
        sort_order: SortOrder::Desc,
        ..ChatQuery::default()
    };
    let rows = m.chats(S, &by_name).await.unwrap();
    let names: Vec<Option<&str>> = rows.iter().map(|c| c.name.as_deref()).collect();
    assert_eq!(names, [Some("Team"), Some("Bob"), None]);
    let only = ChatQuery {
        ids: Some(vec![GROUP.into(), "15559999999@c.us".into()]),
        ..ChatQuery::default()
    };
    let rows = m.chats(S, &only).await.unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].id, GROUP);
    let none = ChatQuery {
        ids: Some(vec![]),
        ..ChatQuery::default()
    };
    assert!(m.chats(S, &none).await.unwrap().is_empty());
    // A name set later is kept when messages without a push name arrive.
    m.save(S, &msg(GROUP, "G2", 700, false, ack::DEVICE, "again"))
        .await
        .unwrap();
    let top = &m.chats(S, &ChatQuery::default()).await.unwrap()[0];
    assert_eq!(
        (top.id.as_str(), top.name.as_deref()),
        (GROUP, Some("Team"))
    );
}

async fn mark_read_marks_recent_unread_incoming_only(f: &Fixture) {
    let m = &f.messages;
    seed(m, S).await; // A1 incoming DEVICE (t=100), A3 incoming READ (t=300)
    m.save(S, &msg(CHAT_A, "A6", 600, false, ack::SERVER, "six"))
        .await
        .unwrap();
    m.save(S, &msg(CHAT_A, "A7", 700, false, ack::DEVICE, "seven"))
        .await
        .unwrap();
    // Newest first, limited.
    let read = m.mark_read(S, CHAT_A, Some(1), None).await.unwrap();
    assert_eq!(wa_ids(&read), ["A7"]);
    assert_eq!(read[0].ack_name, "READ");
    // Not older than the cutoff.
    let read = m.mark_read(S, CHAT_A, None, Some(150)).await.unwrap();
    assert_eq!(wa_ids(&read), ["A6"]);
    let read = m.mark_read(S, CHAT_A, None, None).await.unwrap();
    assert_eq!(wa_ids(&read), ["A1"]);
    assert!(m.mark_read(S, CHAT_A, None, None).await.unwrap().is_empty());
    let unread = MessageQuery {
        from_me: Some(false),
        ..all()
    };
    assert!(
        m.list(S, CHAT_A, &unread)
            .await
            .unwrap()
            .iter()
            .all(|x| x.ack == ack::READ)
    );
    // Own messages untouched.
    let a4 = m.find_by_wa_id(S, "A4").await.unwrap().unwrap();
    assert_eq!(a4.ack, ack::SERVER);
    assert!(
        m.mark_read("nobody", CHAT_A, None, None)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn purge_deletes_older_messages_and_empty_chats(f: &Fixture) {
    let m = &f.messages;
    seed(m, S).await;
    // Cutoff 300: A1, A2 and B1 (250) go; messages at exactly 300 stay.
    assert_eq!(m.purge_older_than(S, 300).await.unwrap(), 3);
    assert_eq!(
        wa_ids(&m.list(S, CHAT_A, &all()).await.unwrap()),
        ["A5", "A4", "A3"]
    );
    let chats = m.chats(S, &ChatQuery::default()).await.unwrap();
    assert_eq!(chats.len(), 1, "chat B had only old messages");
    assert_eq!(chats[0].id, CHAT_A);
    assert_eq!(m.purge_older_than(S, 300).await.unwrap(), 0);
    assert_eq!(m.purge_older_than("nobody", 1_000).await.unwrap(), 0);
    assert_eq!(m.purge_older_than(S, i64::MAX).await.unwrap(), 3);
    assert!(m.chats(S, &ChatQuery::default()).await.unwrap().is_empty());
}

async fn retention_task_purges_old_messages(f: &Fixture) {
    let m = &f.messages;
    for name in [S, "bob"] {
        f.store
            .insert_session(&SessionRecord {
                name: name.into(),
                config: None,
            })
            .await
            .unwrap();
    }
    let now = chrono::Utc::now().timestamp();
    m.save(S, &msg(CHAT_A, "OLD", now - 3 * 86_400, false, 2, "old"))
        .await
        .unwrap();
    m.save(S, &msg(CHAT_A, "NEW", now - 3_600, false, 2, "new"))
        .await
        .unwrap();
    m.save(
        "bob",
        &msg(CHAT_B, "OLDB", now - 5 * 86_400, false, 2, "old"),
    )
    .await
    .unwrap();
    let none = m.spawn_retention(0, Duration::from_millis(50), Default::default());
    assert!(none.is_none(), "0 days = keep forever, no task");
    let cancel = tokio_util::sync::CancellationToken::new();
    let task = m
        .spawn_retention(2, Duration::from_millis(50), cancel.clone())
        .expect("task");
    eventually(Duration::from_secs(10), "retention purges", || async {
        let left = m.list(S, CHAT_A, &all()).await.unwrap();
        let bob = m.list("bob", CHAT_B, &all()).await.unwrap();
        if wa_ids(&left) == ["NEW"] && bob.is_empty() {
            Ok(())
        } else {
            Err(format!("{:?} {:?}", wa_ids(&left), wa_ids(&bob)))
        }
    })
    .await;
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), task.join())
        .await
        .expect("task stops on cancel")
        .expect("task");
}

async fn retention_task_stop_cancels_and_joins(f: &Fixture) {
    // Hourly, like the App's: stop must not wait for the next round.
    let task = f
        .messages
        .spawn_retention(1, Duration::from_secs(3600), Default::default())
        .expect("task");
    assert!(
        task.stop(Duration::from_secs(5)).await,
        "the task ends when stopped, without waiting for its next round"
    );
}

async fn sessions_are_isolated(f: &Fixture) {
    let m = &f.messages;
    seed(m, S).await;
    let other = msg(CHAT_A, "A1", 100, false, ack::DEVICE, "bob's copy");
    m.save("bob", &other).await.unwrap();
    assert_eq!(
        wa_ids(&m.list("bob", CHAT_A, &all()).await.unwrap()),
        ["A1"]
    );
    assert_eq!(m.list(S, CHAT_A, &all()).await.unwrap().len(), 5);
    assert_eq!(
        m.get(S, &other.id).await.unwrap().unwrap().body,
        "one",
        "same WAHA id, separate sessions"
    );
    m.set_ack("bob", "A1", ack::PLAYED).await.unwrap();
    assert_eq!(
        m.find_by_wa_id(S, "A1").await.unwrap().unwrap().ack,
        ack::DEVICE
    );
    assert_eq!(
        m.chats("bob", &ChatQuery::default()).await.unwrap().len(),
        1
    );
    assert_eq!(m.purge_older_than("bob", i64::MAX).await.unwrap(), 1);
    assert_eq!(m.list(S, CHAT_A, &all()).await.unwrap().len(), 5);
    // Deleting a session's data deletes its history: a new session with the same name
    // starts empty (no stale connection to a deleted file).
    f.store.drop_session_data(S).await.unwrap();
    assert!(m.list(S, CHAT_A, &all()).await.unwrap().is_empty());
    m.save(S, &msg(CHAT_B, "N1", 1, false, 2, "fresh"))
        .await
        .unwrap();
    assert_eq!(m.chats(S, &ChatQuery::default()).await.unwrap().len(), 1);
}

async fn history_survives_a_reopen(f: &Fixture) {
    seed(&f.messages, S).await;
    f.messages.set_ack(S, "A4", ack::READ).await.unwrap();
    let reopened = f.reopen().await;
    let list = reopened.list(S, CHAT_A, &all()).await.unwrap();
    assert_eq!(wa_ids(&list), ["A5", "A4", "A3", "A2", "A1"]);
    assert_eq!(list[1].ack, ack::READ);
    let chats = reopened.chats(S, &ChatQuery::default()).await.unwrap();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0].id, CHAT_A);
    // The first handle keeps working alongside (two handles on one history).
    f.messages
        .save(S, &msg(CHAT_A, "A9", 900, false, 2, "nine"))
        .await
        .unwrap();
    assert_eq!(
        wa_ids(&reopened.list(S, CHAT_A, &all()).await.unwrap())[0],
        "A9"
    );
}

async fn missing_session_reads_empty_and_creates_nothing(f: &Fixture) {
    let m = &f.messages;
    assert!(m.list("ghost", CHAT_A, &all()).await.unwrap().is_empty());
    assert!(
        m.chats("ghost", &ChatQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(m.get("ghost", "false_1@c.us_X").await.unwrap(), None);
    assert_eq!(m.edit("ghost", "X", "y").await.unwrap(), None);
    assert_eq!(m.revoke("ghost", "X").await.unwrap(), None);
    if let Target::Sqlite { base } = &f.target {
        assert!(
            !base.path().join("gows").join("ghost").exists(),
            "reads must not create a session folder"
        );
        m.save("ghost", &msg(CHAT_A, "X", 1, false, 2, "x"))
            .await
            .unwrap();
        assert!(
            base.path()
                .join("gows")
                .join("ghost")
                .join("messages.sqlite3")
                .exists()
        );
    }
}

async fn many_sessions_beyond_the_connection_cache(f: &Fixture) {
    // More sessions than SQLite connections kept open (32), written concurrently and
    // interleaved: evicted sessions reopen with their history intact.
    let m = &f.messages;
    let tasks: Vec<_> = (0..80)
        .map(|i| {
            let m = m.clone();
            tokio::spawn(async move {
                let session = format!("s{}", i % 40);
                m.save(&session, &msg(CHAT_A, &format!("W{i}"), i, false, 2, "x"))
                    .await
                    .expect("save");
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("task");
    }
    for i in 0..40_i64 {
        let list = m.list(&format!("s{i}"), CHAT_A, &all()).await.unwrap();
        let expected = [format!("W{}", i + 40), format!("W{i}")];
        assert_eq!(wa_ids(&list), expected, "session s{i}");
    }
}

/// One outbox row for `url`.
fn outbox_row(url: &str) -> NewRow {
    NewRow {
        event_id: "evt_1".into(),
        event: "message".into(),
        body: "{}".into(),
        url: url.into(),
        headers: vec![],
        hmac_key: None,
        retry: Retry::from_config(None),
        created_ms: 1,
    }
}

async fn delete_session_forgets_caches_and_recreated_session_starts_empty(f: &Fixture) {
    const URL: &str = "http://127.0.0.1:9/hook";
    let record = SessionRecord {
        name: S.into(),
        config: None,
    };
    let outbox = Outbox::new(&f.store);
    f.store.insert_session(&record).await.unwrap();
    seed(&f.messages, S).await;
    outbox.append(S, vec![outbox_row(URL)]).await.unwrap();
    assert_eq!(outbox.pending(S, URL, 10).await.unwrap().unwrap().len(), 1);
    assert!(f.store.caches_session(S), "history and outbox were used");

    f.store.delete_session(S).await.unwrap();
    assert!(
        !f.store.caches_session(S),
        "a deleted session leaves no connection, index memo or lock behind"
    );

    // Same name again: a fresh history and outbox, through newly opened handles.
    f.store.insert_session(&record).await.unwrap();
    assert!(f.messages.list(S, CHAT_A, &all()).await.unwrap().is_empty());
    assert!(
        f.messages
            .chats(S, &ChatQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        outbox
            .pending(S, URL, 10)
            .await
            .unwrap()
            .unwrap_or_default()
            .is_empty()
    );
    assert!(outbox.pending_urls(S).await.unwrap().is_empty());
    f.messages
        .save(S, &msg(CHAT_B, "N1", 1, false, 2, "fresh"))
        .await
        .unwrap();
    outbox.append(S, vec![outbox_row(URL)]).await.unwrap();
    assert!(f.store.caches_session(S), "new handles were opened");
    assert_eq!(
        wa_ids(&f.messages.list(S, CHAT_B, &all()).await.unwrap()),
        ["N1"]
    );
    let pending = outbox.pending(S, URL, 10).await.unwrap().unwrap();
    assert_eq!(pending.len(), 1);
    f.store.delete_session(S).await.unwrap();
}

#[test]
fn retention_days_is_read_from_the_environment() {
    let parse = |v: Option<&str>| {
        let mut vars = std::collections::BTreeMap::new();
        if let Some(v) = v {
            vars.insert("WHARF_MESSAGES_RETENTION_DAYS".to_string(), v.to_string());
        }
        wharf::config::Config::from_vars(vars)
    };
    assert_eq!(parse(None).unwrap().messages_retention_days, 0);
    assert_eq!(parse(Some("30")).unwrap().messages_retention_days, 30);
    let err = parse(Some("a week")).unwrap_err().to_string();
    assert!(err.contains("WHARF_MESSAGES_RETENTION_DAYS"), "{err}");
}
