//! Golden bytes of every payload wharf emits: the shapes of `../shared/reference/waha.md`
//! §5.3 and WAHA's schemas, in wire order. Webhook bodies are signed over these bytes.

use serde_json::{Map, Value, json};

use super::*;
use crate::model::message::{MessageSource, WAMessage};

fn message(id: &str, body: &str) -> WAMessage {
    let mut data = Map::new();
    data.insert("engine".into(), json!("whatsapp-rust"));
    WAMessage {
        id: id.into(),
        timestamp: 1_700_000_000,
        from: "2@c.us".into(),
        from_me: false,
        source: MessageSource::App,
        to: Some("1@c.us".into()),
        participant: None,
        author: None,
        body: body.into(),
        has_media: false,
        media: None,
        media_url: None,
        ack: 2,
        ack_name: "DEVICE".into(),
        location: None,
        v_cards: vec![],
        reply_to: None,
        data,
    }
}

const MESSAGE_FIELDS: &str = r#""timestamp":1700000000,"from":"2@c.us","fromMe":false,"source":"app","to":"1@c.us","participant":null,"author":null"#;
const MESSAGE_TAIL: &str = r#""hasMedia":false,"media":null,"mediaUrl":null,"ack":2,"ackName":"DEVICE","location":null,"vCards":[],"replyTo":null,"_data":{"engine":"whatsapp-rust"}"#;

fn wire(event: &Event) -> String {
    serde_json::to_string(&event.payload().unwrap()).unwrap()
}

#[test]
fn session_status_payload() {
    let event = Event::SessionStatus(WASessionStatusBody {
        name: "default".into(),
        status: SessionStatus::Failed,
        statuses: vec![
            SessionStatusPoint {
                status: SessionStatus::Starting,
                timestamp: 1,
            },
            SessionStatusPoint {
                status: SessionStatus::Failed,
                timestamp: 2,
            },
        ],
        data: Some(json!({"reason": "logged out"})),
    });
    assert_eq!(event.name(), "session.status");
    assert_eq!(
        wire(&event),
        r#"{"name":"default","status":"FAILED","statuses":[{"status":"STARTING","timestamp":1},{"status":"FAILED","timestamp":2}],"data":{"reason":"logged out"}}"#
    );
    let Event::SessionStatus(mut body) = event else {
        unreachable!()
    };
    body.data = None;
    assert!(wire(&Event::SessionStatus(body)).ends_with(r#","data":null}"#));
}

#[test]
fn message_and_message_any_payloads_are_the_wa_message() {
    let m = message("false_2@c.us_A", "hi");
    let expected =
        format!(r#"{{"id":"false_2@c.us_A",{MESSAGE_FIELDS},"body":"hi",{MESSAGE_TAIL}}}"#);
    assert_eq!(wire(&Event::Message(m.clone())), expected);
    assert_eq!(wire(&Event::MessageAny(m.clone())), expected);
    assert_eq!(Event::Message(m.clone()).name(), "message");
    assert_eq!(Event::MessageAny(m).name(), "message.any");
}

#[test]
fn message_reaction_payload_is_the_message_then_reaction() {
    let event = Event::MessageReaction(WAMessageReaction {
        message: message("false_2@c.us_R", ""),
        reaction: WAReaction {
            text: "👍".into(),
            message_id: "true_2@c.us_A".into(),
        },
    });
    assert_eq!(event.name(), "message.reaction");
    assert_eq!(
        wire(&event),
        format!(
            r#"{{"id":"false_2@c.us_R",{MESSAGE_FIELDS},"body":"",{MESSAGE_TAIL},"reaction":{{"text":"👍","messageId":"true_2@c.us_A"}}}}"#
        )
    );
}

#[test]
fn message_edited_payload_is_the_message_then_edited_id() {
    let event = Event::MessageEdited(WAMessageEditedBody {
        message: message("false_2@c.us_E", "new"),
        edited_message_id: "false_2@c.us_A".into(),
    });
    assert_eq!(event.name(), "message.edited");
    assert_eq!(
        wire(&event),
        format!(
            r#"{{"id":"false_2@c.us_E",{MESSAGE_FIELDS},"body":"new",{MESSAGE_TAIL},"editedMessageId":"false_2@c.us_A"}}"#
        )
    );
}

#[test]
fn message_revoked_payload() {
    let event = Event::MessageRevoked(WAMessageRevokedBody {
        after: message("false_2@c.us_V", ""),
        before: None,
        revoked_message_id: "AAAA".into(),
        data: Map::new(),
    });
    assert_eq!(event.name(), "message.revoked");
    assert_eq!(
        wire(&event),
        format!(
            r#"{{"after":{{"id":"false_2@c.us_V",{MESSAGE_FIELDS},"body":"",{MESSAGE_TAIL}}},"before":null,"revokedMessageId":"AAAA","_data":{{}}}}"#
        )
    );
}

#[test]
fn message_ack_payload() {
    let ack = WAMessageAckBody {
        id: "true_1@g.us_A".into(),
        from: "2@c.us".into(),
        to: "1@g.us".into(),
        participant: Some("2@c.us".into()),
        from_me: true,
        ack: 3,
        ack_name: "READ".into(),
        data: Map::new(),
    };
    let golden = r#"{"id":"true_1@g.us_A","from":"2@c.us","to":"1@g.us","participant":"2@c.us","fromMe":true,"ack":3,"ackName":"READ","_data":{}}"#;
    assert_eq!(wire(&Event::MessageAck(ack.clone())), golden);
    assert_eq!(wire(&Event::MessageAckGroup(ack.clone())), golden);
    assert_eq!(
        Event::MessageAckGroup(ack.clone()).name(),
        "message.ack.group"
    );
    let direct = WAMessageAckBody {
        participant: None,
        ..ack
    };
    assert!(wire(&Event::MessageAck(direct)).contains(r#""participant":null,"#));
}

#[test]
fn presence_update_payload() {
    let event = Event::PresenceUpdate(WAHAChatPresences {
        id: "2@c.us".into(),
        presences: vec![WAHAPresenceData {
            participant: "2@c.us".into(),
            last_known_presence: "typing".into(),
            last_seen: None,
        }],
    });
    assert_eq!(event.name(), "presence.update");
    assert_eq!(
        wire(&event),
        r#"{"id":"2@c.us","presences":[{"participant":"2@c.us","lastKnownPresence":"typing","lastSeen":null}]}"#
    );
}

#[test]
fn group_payloads() {
    let participants = Event::GroupV2Participants(GroupV2ParticipantsEvent {
        kind: "promote".into(),
        timestamp: 1_666_943_582,
        group: GroupId {
            id: "123@g.us".into(),
        },
        participants: vec![GroupParticipant {
            id: "9@lid".into(),
            pn: Some("9@c.us".into()),
            role: "admin".into(),
        }],
        data: Map::new(),
    });
    assert_eq!(participants.name(), "group.v2.participants");
    assert_eq!(
        wire(&participants),
        r#"{"type":"promote","timestamp":1666943582,"group":{"id":"123@g.us"},"participants":[{"id":"9@lid","pn":"9@c.us","role":"admin"}],"_data":{}}"#
    );
    let leave = Event::GroupV2Leave(GroupV2LeaveEvent {
        timestamp: 1,
        group: GroupId {
            id: "1@g.us".into(),
        },
        data: Map::new(),
    });
    assert_eq!(
        wire(&leave),
        r#"{"timestamp":1,"group":{"id":"1@g.us"},"_data":{}}"#
    );
    let join = Event::GroupV2Join(GroupV2JoinEvent {
        timestamp: 1,
        group: json!({"id": "1@g.us", "subject": "S"}),
        data: Map::new(),
    });
    assert_eq!(
        wire(&join),
        r#"{"timestamp":1,"group":{"id":"1@g.us","subject":"S"},"_data":{}}"#
    );
    let update = Event::GroupV2Update(GroupV2UpdateEvent {
        timestamp: 1,
        group: json!({"id": "1@g.us"}),
        data: Map::new(),
    });
    assert_eq!(update.name(), "group.v2.update");
}

#[test]
fn poll_vote_payload() {
    let event = Event::PollVote(PollVotePayload {
        vote: PollVote {
            id: "false_2@c.us_V".into(),
            selected_options: vec!["Awesome!".into()],
            timestamp: 1_692_861_369,
            to: "1@c.us".into(),
            from: "2@c.us".into(),
            from_me: false,
            participant: None,
        },
        poll: MessageDestination {
            id: "true_2@c.us_P".into(),
            to: "2@c.us".into(),
            from: "1@c.us".into(),
            from_me: true,
            participant: None,
        },
        data: Map::new(),
    });
    assert_eq!(
        wire(&event),
        r#"{"vote":{"id":"false_2@c.us_V","selectedOptions":["Awesome!"],"timestamp":1692861369,"to":"1@c.us","from":"2@c.us","fromMe":false},"poll":{"id":"true_2@c.us_P","to":"2@c.us","from":"1@c.us","fromMe":true},"_data":{}}"#
    );
}

#[test]
fn chat_call_label_and_engine_payloads() {
    let archive = Event::ChatArchive(ChatArchiveEvent {
        id: "2@c.us".into(),
        archived: true,
        timestamp: 5,
    });
    assert_eq!(
        wire(&archive),
        r#"{"id":"2@c.us","archived":true,"timestamp":5}"#
    );
    let call = CallData {
        id: "ABC".into(),
        from: "2@c.us".into(),
        timestamp: 5,
        is_video: false,
        is_group: false,
        data: Map::new(),
    };
    let golden =
        r#"{"id":"ABC","from":"2@c.us","timestamp":5,"isVideo":false,"isGroup":false,"_data":{}}"#;
    for e in [
        Event::CallReceived(call.clone()),
        Event::CallAccepted(call.clone()),
        Event::CallRejected(call),
    ] {
        assert_eq!(wire(&e), golden, "{}", e.name());
    }
    let label = Label {
        id: "1".into(),
        name: "Lead".into(),
        color: 0,
        color_hex: "#ff9485".into(),
    };
    assert_eq!(
        wire(&Event::LabelUpsert(label.clone())),
        r##"{"id":"1","name":"Lead","color":0,"colorHex":"#ff9485"}"##
    );
    let association = LabelChatAssociation {
        label_id: "1".into(),
        chat_id: "2@c.us".into(),
        label: None,
    };
    assert_eq!(
        wire(&Event::LabelChatAdded(association)),
        r#"{"labelId":"1","chatId":"2@c.us","label":null}"#
    );
    let engine = Event::EngineEvent(EnginePayload {
        event: "Receipt".into(),
        data: json!({"k": 1}),
    });
    assert_eq!(engine.name(), "engine.event");
    assert_eq!(wire(&engine), r#"{"event":"Receipt","data":{"k":1}}"#);
}

#[test]
fn event_response_payload() {
    let event = Event::EventResponse(EventResponsePayload {
        id: "false_2@c.us_R".into(),
        timestamp: 1,
        from: "2@c.us".into(),
        from_me: false,
        source: MessageSource::App,
        to: "1@c.us".into(),
        participant: None,
        data: Map::new(),
        event_creation_key: MessageDestination {
            id: "true_2@c.us_E".into(),
            to: "2@c.us".into(),
            from: "1@c.us".into(),
            from_me: true,
            participant: None,
        },
        event_response: Some(EventResponse {
            response: "GOING".into(),
            timestamp_ms: 2,
            extra_guest_count: 0,
        }),
    });
    assert_eq!(
        wire(&event),
        r#"{"id":"false_2@c.us_R","timestamp":1,"from":"2@c.us","fromMe":false,"source":"app","to":"1@c.us","participant":null,"_data":{},"eventCreationKey":{"id":"true_2@c.us_E","to":"2@c.us","from":"1@c.us","fromMe":true},"eventResponse":{"response":"GOING","timestampMs":2,"extraGuestCount":0}}"#
    );
}

#[test]
fn names_are_waha_events_and_unique() {
    let names = Event::NAMES;
    assert_eq!(
        names.len(),
        28,
        "every non-deprecated WAHA event, plus the deprecated group.join / group.leave"
    );
    for (i, n) in names.iter().enumerate() {
        assert!(!names[..i].contains(n), "{n} twice");
    }
}

#[test]
fn envelope_is_serialized_once_in_waha_order() {
    let me = MeInfo {
        id: "1@c.us".into(),
        lid: None,
        jid: None,
        push_name: "Me".into(),
    };
    let metadata = [("user.id".to_string(), "123".to_string())].into();
    let environment = json!({"version": "2026.7.1"});
    let event = Event::EngineEvent(EnginePayload {
        event: "x".into(),
        data: Value::Null,
    });
    let envelope = Envelope::new(
        Emitter {
            session: "default",
            metadata: Some(&metadata),
            me: Some(&me),
            engine: "GOWS",
            environment: &environment,
        },
        event.name(),
        event.payload().unwrap(),
    )
    .unwrap();
    assert!(envelope.id.starts_with("evt_") && envelope.id.len() == 30);
    let expected = format!(
        r#"{{"id":"{}","timestamp":{},"event":"engine.event","session":"default","metadata":{{"user.id":"123"}},"me":{{"id":"1@c.us","pushName":"Me"}},"payload":{{"event":"x","data":null}},"engine":"GOWS","environment":{{"version":"2026.7.1"}}}}"#,
        envelope.id, envelope.timestamp
    );
    assert_eq!(envelope.json(), expected);
    // No metadata: the key is absent, and `me` unknown is `null`.
    let bare = Envelope::new(
        Emitter {
            session: "s",
            metadata: None,
            me: None,
            engine: "GOWS",
            environment: &environment,
        },
        event.name(),
        event.payload().unwrap(),
    )
    .unwrap();
    assert!(bare.json().contains(r#""session":"s","me":null,"payload""#));
}

#[test]
fn ulid_has_26_lowercase_crockford_chars() {
    let id = ulid_lower();
    assert_eq!(id.len(), 26);
    assert!(
        id.chars()
            .all(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
    );
    assert!(id.starts_with('0'), "48-bit time fits in 10 chars: {id}");
}
