//! Cluster mode: EVERY operation of the OpenAPI document wharf serves (`openapi/openapi.json`)
//! answered through every worker (issue 15: "every API operation works through every
//! worker").
//!
//! Three real wharf workers on one MongoDB and one mock WhatsApp network; two paired
//! sessions `a` and `b` on different workers. The test walks the document, builds a request
//! for each operation (path parameters filled with `a`, `b`'s chat, a message `a` sent, a
//! group, a label and a channel created through the API, …; bodies from [`body`], else
//! built from the schema's examples) and:
//! - for an operation that names a session: calls it on `a` through `a`'s owner, then
//!   through each of the two other workers. Each answer through a non-owner must have the
//!   owner's status (reads: the same body, volatile fields aside), never a
//!   session-not-found `404`, a `502`/`503`, or a `422` about `a`'s status (it is
//!   `WORKING`); and the owner must have served both (its
//!   `wharf_cluster_peer_requests_total` grows by 2): a route that is not forwarded fails
//!   here;
//! - for a server-wide operation (server, keys, sessions list and create, …): calls it
//!   through every worker; same status, and for reads the same body.
//!
//! The lifecycle operations that end or move `a` (restart, update, stop, start, the
//! deprecated stop/logout, logout, delete) run last, through a non-owner, each checked by
//! its effect on every worker; then the peers' `POST /api/cluster/claim` refuses all but
//! the cluster credential, and `POST /api/server/stop` stops the worker it is sent to.
//! Every operation of the document must have been called.

use std::{collections::BTreeMap, time::Duration};

use base64::Engine as _;
use reqwest::Method;
use serde_json::{Value, json};

use crate::support::{
    cluster::{ClusterFixture, KEY, cluster_env, lease, start_worker, wait_members},
    poll::eventually,
    process::Wharf,
};

const A: &str = "opa";
const B: &str = "opb";
const PHONE_A: &str = "15558100001";
const PHONE_B: &str = "15558100002";

/// One operation of the document.
#[derive(Debug, Clone)]
struct Op {
    id: String,
    method: Method,
    /// The path template (`/api/{session}/chats/{chatId}`).
    path: String,
    /// Required query parameters.
    query: Vec<String>,
    /// The request body's schema, when it has one.
    schema: Option<Value>,
}

fn spec() -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi/openapi.json");
    serde_json::from_slice(&std::fs::read(path).expect("openapi.json")).expect("JSON")
}

fn operations(spec: &Value) -> Vec<Op> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (m, op) in item.as_object().expect("path item") {
            let method = match m.as_str() {
                "get" => Method::GET,
                "post" => Method::POST,
                "put" => Method::PUT,
                "delete" => Method::DELETE,
                "patch" => Method::PATCH,
                _ => continue,
            };
            let query = op["parameters"]
                .as_array()
                .into_iter()
                .flatten()
                // The required ones, and `session` always (optional where it defaults).
                .filter(|p| p["in"] == "query" && (p["required"] == true || p["name"] == "session"))
                .filter_map(|p| p["name"].as_str().map(str::to_string))
                .collect();
            let schema = op["requestBody"]["content"]["application/json"]["schema"]
                .as_object()
                .map(|s| Value::Object(s.clone()));
            ops.push(Op {
                id: op["operationId"].as_str().expect("operationId").to_string(),
                method,
                path: path.clone(),
                query,
                schema,
            });
        }
    }
    ops
}

/// An example built from a schema (`example`, then `default`, then the properties'),
/// following `$ref`s: the fallback body of an operation [`body`] does not list.
fn example(spec: &Value, schema: &Value, depth: usize) -> Value {
    if depth > 6 {
        return Value::Null;
    }
    if let Some(r) = schema["$ref"].as_str() {
        let name = r.rsplit('/').next().unwrap_or_default();
        return example(spec, &spec["components"]["schemas"][name], depth + 1);
    }
    for k in ["example", "default"] {
        if !schema[k].is_null() {
            return schema[k].clone();
        }
    }
    for k in ["oneOf", "anyOf"] {
        if let Some(first) = schema[k].as_array().and_then(|a| a.first()) {
            return example(spec, first, depth + 1);
        }
    }
    if let Some(all) = schema["allOf"].as_array() {
        let mut out = serde_json::Map::new();
        for s in all {
            if let Value::Object(o) = example(spec, s, depth + 1) {
                out.extend(o);
            }
        }
        return Value::Object(out);
    }
    if let Some(props) = schema["properties"].as_object() {
        let mut out = serde_json::Map::new();
        for (k, v) in props {
            let e = example(spec, v, depth + 1);
            if !e.is_null() {
                out.insert(k.clone(), e);
            }
        }
        return Value::Object(out);
    }
    Value::Null
}

/// What the requests are built from.
struct Ctx {
    /// `b`'s chat as `a` sees it.
    chat: String,
    /// A text message `a` sent to `b`.
    msg: String,
    /// A poll `a` sent to `b`.
    poll: String,
    /// A group of `a` with `b`.
    group: String,
    /// Its invite code.
    invite: String,
    /// A second group, for the operations that clear or delete a chat.
    scratch: String,
    /// A label of `a`.
    label: String,
    /// A channel `a` created.
    channel: String,
    /// `b`'s LID.
    lid: String,
    /// Sequence for unique names.
    n: std::sync::atomic::AtomicUsize,
}

impl Ctx {
    fn next(&self) -> usize {
        self.n.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn jpeg() -> String {
    b64(&[0xFF, 0xD8, 0xFF, 0xE0, b'p', b'i', b'c'])
}

fn file(mimetype: &str, filename: &str) -> Value {
    json!({"mimetype": mimetype, "filename": filename, "data": b64(&[7u8; 600])})
}

/// The body of each operation that takes one (`None`: built from the schema).
fn body(id: &str, c: &Ctx) -> Option<Value> {
    let chat = c.chat.as_str();
    let s = A;
    Some(match id {
        "SessionsController_DEPRACATED_start" => json!({"name": s}),
        "SessionsController_DEPRECATED_stop" | "SessionsController_DEPRECATED_logout" => {
            json!({"name": s})
        }
        "SessionsController_create" => json!({"name": format!("opx{}", c.next()), "start": false}),
        "SessionsController_update" => json!({"config": {"metadata": {"k": "v"}}}),
        "AuthController_requestCode" => json!({"phoneNumber": PHONE_A}),
        "ChattingController_sendText" => {
            json!({"session": s, "chatId": chat, "text": format!("op text {}", c.next())})
        }
        "ChattingController_sendSeen"
        | "ChattingController_startTyping"
        | "ChattingController_stopTyping" => json!({"session": s, "chatId": chat}),
        "ChattingController_setReaction" => {
            json!({"session": s, "messageId": c.msg, "reaction": "👍"})
        }
        "ChattingController_forwardMessage" => {
            json!({"session": s, "chatId": chat, "messageId": c.msg})
        }
        "ChatsController_editMessage" => json!({"text": "edited"}),
        "ChattingController_sendImage" => {
            json!({"session": s, "chatId": chat, "caption": "img", "file": file("image/jpeg", "a.jpg")})
        }
        "ChattingController_sendFile" => {
            json!({"session": s, "chatId": chat, "file": file("application/pdf", "a.pdf")})
        }
        "ChattingController_sendVoice" => json!({"session": s, "chatId": chat, "convert": false,
            "file": file("audio/ogg; codecs=opus", "a.ogg")}),
        "ChattingController_sendVideo" => json!({"session": s, "chatId": chat, "convert": false,
            "file": file("video/mp4", "a.mp4")}),
        "ChattingController_sendLocation" => json!({"session": s, "chatId": chat,
            "latitude": 38.89, "longitude": -77.09, "title": "office"}),
        "ChattingController_sendContactVcard" => json!({"session": s, "chatId": chat,
            "contacts": [{"fullName": "Jane Roe", "phoneNumber": "+15558100009"}]}),
        "ChattingController_sendPoll" => json!({"session": s, "chatId": chat,
            "poll": {"name": "lunch?", "options": ["yes", "no"], "multipleAnswers": false}}),
        "ChattingController_sendPollVote" => json!({"session": s, "chatId": chat,
            "pollMessageId": c.poll, "votes": ["yes"]}),
        "ChattingController_sendLinkCustomPreview" => json!({"session": s, "chatId": chat,
            "text": "see http://127.0.0.1:9/page",
            "preview": {"url": "http://127.0.0.1:9/page", "title": "a page"}}),
        "ChattingController_sendList" => json!({"session": s, "chatId": chat,
            "message": {"title": "t", "description": "d", "button": "b",
                "sections": [{"title": "s", "rows": [{"title": "r", "rowId": "1"}]}]}}),
        "ChattingController_sendButtons" => json!({"session": s, "chatId": chat,
            "body": "b", "buttons": [{"type": "reply", "text": "yes"}]}),
        "ChattingController_sendButtonsReply" => json!({"session": s, "chatId": chat,
            "replyTo": c.msg, "selectedDisplayText": "yes", "selectedButtonID": "1"}),
        "ChattingController_setStar" => {
            json!({"session": s, "chatId": chat, "messageId": c.msg, "star": true})
        }
        "EventsController_sendEvent" => json!({"chatId": chat,
            "event": {"name": "meeting", "startTime": chrono::Utc::now().timestamp() + 3600}}),
        "ChattingController_reply" => {
            json!({"session": s, "chatId": chat, "text": "a reply", "reply_to": c.msg})
        }
        "ChattingController_sendLinkPreview_DEPRECATED" => json!({"session": s, "chatId": chat,
            "url": "http://127.0.0.1:9/page", "title": "a page"}),
        "MediaController_convertVoice" | "MediaController_convertVideo" => {
            json!({"data": b64(&[1u8; 64])})
        }
        "ChatsController_postChatsOverview" => {
            json!({"pagination": {"limit": 20}, "filter": {"ids": [chat]}})
        }
        "ChatsController_pinMessage" => json!({"duration": 86400}),
        "ContactsController_block" | "ContactsController_unblock" => {
            json!({"session": s, "contactId": chat})
        }
        "ContactsSessionController_put" => json!({"firstName": "Bea", "lastName": "Two"}),
        "GroupsController_createGroup" => {
            json!({"name": format!("g{}", c.next()), "participants": [{"id": chat}]})
        }
        "GroupsController_joinGroup" => json!({"code": c.invite}),
        "GroupsController_setPicture" | "ProfileController_setProfilePicture" => {
            json!({"file": {"mimetype": "image/jpeg", "data": jpeg()}})
        }
        "GroupsController_setDescription" => json!({"description": "about"}),
        "GroupsController_setSubject" => json!({"subject": "subject"}),
        "GroupsController_setInfoAdminOnly" | "GroupsController_setMessagesAdminOnly" => {
            json!({"adminsOnly": true})
        }
        "GroupsController_setMemberAddMode" => json!({"membersCanAddNewMember": false}),
        "GroupsController_setMemberShareHistoryMode" => json!({"membersCanShareHistory": true}),
        "GroupsController_setMembershipApproval" => json!({"newMembersApprovalRequired": false}),
        "GroupsController_addParticipants"
        | "GroupsController_removeParticipants"
        | "GroupsController_promoteToAdmin"
        | "GroupsController_demoteToAdmin"
        | "GroupsController_approveJoinRequests"
        | "GroupsController_rejectJoinRequests" => json!({"participants": [{"id": chat}]}),
        "ProfileController_setProfileName" => json!({"name": "Op A"}),
        "ProfileController_setProfileStatus" => json!({"status": "busy"}),
        "PresenceController_setPresence" => json!({"presence": "online"}),
        "CallsController_rejectCall" => json!({"from": chat, "id": "OPCALL0000000000"}),
        "LabelsController_create" => json!({"name": format!("l{}", c.next()), "color": 1}),
        "LabelsController_update" => json!({"name": format!("renamed{}", c.next()), "color": 2}),
        "LabelsController_putChatLabels" => json!({"labels": [{"id": c.label}]}),
        "ApiKeysController_media" | "ApiKeysController_control" => json!({"session": s}),
        "ApiKeysController_create" | "ApiKeysController_update" => {
            json!({"isAdmin": false, "session": s, "isActive": true})
        }
        "WharfTokens_create" => json!({"session": s, "ttlSeconds": 600}),
        "ServerController_stop" => json!({}),
        "AppsController_create" | "AppsController_update" => {
            json!({"id": "app1", "session": s, "app": "chatwoot", "config": {}})
        }
        "McpController_post" => json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}),
        "StatusController_sendTextStatus" => {
            json!({"text": "status", "backgroundColor": "#38b42f", "font": 0})
        }
        "StatusController_sendImageStatus" | "StatusController_sendVideoStatus" => {
            json!({"file": file("image/jpeg", "s.jpg")})
        }
        "StatusController_sendVoiceStatus" => {
            json!({"file": file("audio/ogg; codecs=opus", "s.ogg"), "convert": false})
        }
        "StatusController_deleteStatus" => json!({"id": "AAAAAAAAAAAAAAAAA"}),
        "ChannelsController_searchByView" => json!({"view": "RECOMMENDED", "countries": ["US"],
            "categories": [], "limit": 50, "startCursor": ""}),
        "ChannelsController_searchByText" => {
            json!({"text": "news", "categories": [], "limit": 50, "startCursor": ""})
        }
        "ChannelsController_create" => json!({"name": format!("ch{}", c.next())}),
        _ => return None,
    })
}

/// The required query parameters' values.
fn query_value(op: &Op, name: &str, c: &Ctx) -> String {
    match name {
        "session" => A.to_string(),
        "format" => "raw".to_string(),
        "phone" => PHONE_B.to_string(),
        "text" => "op-get".to_string(),
        "chatId" | "contactId" => c.chat.clone(),
        "limit" => "5".to_string(),
        "code" => c.invite.clone(),
        other => panic!("{}: no value for the query parameter {other}", op.id),
    }
}

/// Operations whose requests consume what they act on: each call gets a fresh one,
/// created through `owner`.
async fn fresh_id(op: &Op, c: &Ctx, owner: &Wharf) -> Option<(String, String)> {
    match op.id.as_str() {
        "ChatsController_deleteMessage" => {
            let (st, m) = call(
                owner,
                Method::POST,
                "/api/sendText",
                Some(&json!({"session": A, "chatId": c.chat, "text": "to delete"})),
            )
            .await;
            assert_eq!(st, 201, "{m}");
            Some(("messageId".into(), m["id"].as_str().expect("id").into()))
        }
        "GroupsController_deleteGroup" | "GroupsController_leaveGroup" => {
            let (st, g) = call(
                owner,
                Method::POST,
                &format!("/api/{A}/groups"),
                Some(
                    &json!({"name": format!("tmp{}", c.next()), "participants": [{"id": c.chat}]}),
                ),
            )
            .await;
            assert_eq!(st, 201, "{g}");
            Some(("id".into(), g["id"].as_str().expect("group id").into()))
        }
        "LabelsController_delete" => {
            let (st, l) = call(
                owner,
                Method::POST,
                &format!("/api/{A}/labels"),
                Some(&json!({"name": format!("del{}", c.next()), "color": 3})),
            )
            .await;
            assert_eq!(st, 201, "{l}");
            Some(("labelId".into(), l["id"].as_str().expect("label id").into()))
        }
        "ChannelsController_delete" => {
            let (st, ch) = call(
                owner,
                Method::POST,
                &format!("/api/{A}/channels"),
                Some(&json!({"name": format!("delch{}", c.next())})),
            )
            .await;
            assert_eq!(st, 201, "{ch}");
            Some(("id".into(), ch["id"].as_str().expect("channel id").into()))
        }
        "ApiKeysController_delete" | "ApiKeysController_update" => {
            let (st, k) = call(
                owner,
                Method::POST,
                "/api/keys",
                Some(&json!({"isAdmin": false, "session": A, "isActive": true})),
            )
            .await;
            assert_eq!(st, 201, "{k}");
            Some(("id".into(), k["id"].as_str().expect("key id").into()))
        }
        _ => None,
    }
}

/// A path parameter's value.
fn path_value(op: &Op, name: &str, c: &Ctx) -> String {
    let chats_of_scratch = matches!(
        op.id.as_str(),
        "ChatsController_clearMessages" | "ChatsController_deleteChat"
    );
    match name {
        "session" => A.to_string(),
        "chatId" if chats_of_scratch => c.scratch.clone(),
        "chatId" => c.chat.clone(),
        "messageId" => c.msg.clone(),
        "labelId" => c.label.clone(),
        "lid" => c.lid.clone(),
        "phoneNumber" => PHONE_B.to_string(),
        "id" if op.path.contains("/groups/") => c.group.clone(),
        "id" if op.path.contains("/channels/") => c.channel.clone(),
        "id" if op.path.contains("/contacts/") => c.chat.clone(),
        "id" if op.path.contains("/apps/") => "app1".to_string(),
        "id" if op.path.contains("/dead-letters/") => "no-such-letter".to_string(),
        "id" => "no-such-id".to_string(),
        other => panic!("{}: no value for the path parameter {other}", op.id),
    }
}

/// A request for `op`: (method, path and query, body).
async fn request(spec: &Value, op: &Op, c: &Ctx, owner: &Wharf) -> (Method, String, Option<Value>) {
    let fresh = fresh_id(op, c, owner).await;
    let mut path = String::new();
    let mut rest = op.path.as_str();
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closing brace") + open;
        path.push_str(&rest[..open]);
        let name = &rest[open + 1..close];
        let value = match &fresh {
            Some((n, v)) if n == name => v.clone(),
            _ => path_value(op, name, c),
        };
        path.push_str(&urlencoding(&value));
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    for q in &op.query {
        query.append_pair(q, &query_value(op, q, c));
    }
    if op.id == "ServerDebugController_cpuProfile" || op.id == "ServerDebugController_browserTrace"
    {
        query.append_pair("seconds", "1");
    }
    let q = query.finish();
    if !q.is_empty() {
        path = format!("{path}?{q}");
    }
    let body = op.schema.as_ref().map(|schema| {
        body(&op.id, c).unwrap_or_else(|| {
            let mut b = example(spec, schema, 0);
            if let Some(o) = b.as_object_mut()
                && o.contains_key("session")
            {
                o.insert("session".into(), A.into());
            }
            let text = b.to_string();
            // Tests never reach the internet: an example with a URL needs a table entry.
            assert!(
                !text.contains("://"),
                "{}: the spec's example has a URL; add a body to the table: {text}",
                op.id
            );
            b
        })
    });
    (op.method.clone(), path, body)
}

fn urlencoding(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn call(w: &Wharf, method: Method, path: &str, body: Option<&Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("{}{path}", w.base))
        .header("X-Api-Key", KEY)
        .timeout(Duration::from_secs(120));
    if let Some(b) = body {
        req = req.json(b);
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status().as_u16();
            let text = r.text().await.unwrap_or_default();
            (
                status,
                serde_json::from_str(&text).unwrap_or(Value::String(text)),
            )
        }
        Err(e) => (0, Value::String(e.to_string())),
    }
}

/// Fields that differ between two identical reads: times, acks moving on, per-call ids.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Object(o) => Value::Object(
            o.iter()
                .filter(|(k, _)| {
                    !matches!(
                        k.as_str(),
                        "timestamp"
                            | "timestamps"
                            | "ack"
                            | "ackName"
                            | "lastSeen"
                            | "heartbeatAgeMs"
                            | "expiresInMs"
                            | "uptime"
                            | "uptimeMs"
                            // The worker that answers (server version, status).
                            | "worker"
                    )
                })
                .map(|(k, v)| (k.clone(), normalise(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(normalise).collect()),
        other @ (Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_)) => {
            other.clone()
        }
    }
}

/// Reads whose answer is new on every call (ids made up per call) or per worker.
fn volatile(id: &str) -> bool {
    matches!(
        id,
        "ChattingController_getNewMessageId"
            | "StatusController_getNewMessageId"
            // A GET that sends: a new message each time.
            | "ChattingController_sendTextGet"
            // Live presences: the first read subscribes, and what `b` shows arrives after.
            | "PresenceController_getPresence"
            | "PresenceController_getPresenceAll"
            | "ServerController_status"
            | "ServerController_environment"
            | "ServerDebugController_heapsnapshot"
            | "ServerDebugController_cpuProfile"
            | "HealthController_check"
    )
}

/// Operations run last, by hand (they end or move `a`, or stop a worker).
fn lifecycle(id: &str) -> bool {
    matches!(
        id,
        "SessionsController_update"
            | "SessionsController_delete"
            | "SessionsController_stop"
            | "SessionsController_start"
            | "SessionsController_restart"
            | "SessionsController_logout"
            | "SessionsController_DEPRECATED_stop"
            | "SessionsController_DEPRECATED_logout"
            | "ServerController_stop"
    )
}

/// Server-wide operations: answered by the worker asked (nothing to forward).
fn server_wide(op: &Op) -> bool {
    matches!(
        op.id.as_str(),
        "SessionsController_list"
            | "SessionsController_create"
            | "ApiKeysController_media"
            | "ApiKeysController_control"
            | "ApiKeysController_list"
            | "ApiKeysController_create"
            | "ApiKeysController_update"
            | "ApiKeysController_delete"
            | "WharfTokens_create"
            | "PingController_ping"
            | "HealthController_check"
            | "ServerController_get"
            | "ServerController_environment"
            | "ServerController_status"
            | "VersionController_get"
            | "ServerDebugController_cpuProfile"
            | "ServerDebugController_heapsnapshot"
            | "AppsController_get"
            | "AppsController_update"
            | "AppsController_delete"
            | "McpController_post"
    )
}

/// The owner's count of requests it served for peers.
async fn peer_requests(w: &Wharf) -> u64 {
    let text = w.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix("wharf_cluster_peer_requests_total "))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map_or_else(
            || panic!("no peer request counter in /metrics"),
            |v| v as u64,
        )
}

/// What a non-owner's answer must not be: the session unknown, the owner unreachable or
/// the session in transit, or a status refusal naming a status (the session is WORKING).
fn broken(status: u16, body: &Value) -> Option<&'static str> {
    let text = body.to_string();
    if status == 0 {
        Some("no answer")
    } else if status == 502 || status == 503 {
        Some("owner unreachable / session moving")
    } else if status == 404 && text.contains("didn't find a session") {
        Some("session not found")
    } else if status == 422
        && body["expected"]
            .as_array()
            .is_some_and(|e| e.iter().any(|s| s == "WORKING"))
    {
        // A route for another status (the QR, a passkey) refuses a WORKING session on the
        // owner too; the WORKING gate must not.
        Some("refused by the WORKING gate")
    } else {
        None
    }
}

/// The worker index owning `name` by its lease.
async fn owner_of(main: &mongodb::Database, name: &str) -> usize {
    let l = lease(main, name).await;
    let owner = l
        .get_str("owner")
        .or_else(|_| l.get_str("target"))
        .expect("placed");
    owner.trim_start_matches('w').parse().expect("wN")
}

/// Polls `GET /api/sessions/{name}` through `w` until `status` (any worker).
async fn wait_via(w: &Wharf, name: &str, status: &str) -> Value {
    eventually(
        Duration::from_secs(60),
        &format!("{name} {status} through {}", w.base),
        || async {
            let (_, s) = call(w, Method::GET, &format!("/api/sessions/{name}"), None).await;
            if s["status"] == status {
                Ok(s)
            } else {
                Err(s.to_string())
            }
        },
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_of_the_document_works_through_every_worker() {
    let test = "cluster_ops::every_operation_of_the_document_works_through_every_worker";
    let Some(fx) = ClusterFixture::start(test).await else {
        return;
    };
    // The default lease and death bounds (see cluster_routing.rs): sessions move here only
    // when the test moves them.
    let env: Vec<(String, String)> = cluster_env(fx.mongo, &fx.ns, &fx.net.ws_url())
        .into_iter()
        .filter(|(k, _)| k != "WHARF_CLUSTER_LEASE_SECONDS" && k != "WHARF_CLUSTER_DEAD_SECONDS")
        .collect();
    let w0 = start_worker(fx.dir.path(), "w0", &env).await;
    let w1 = start_worker(fx.dir.path(), "w1", &env).await;
    let mut w2 = start_worker(fx.dir.path(), "w2", &env).await;
    wait_members(&fx.main, 3).await;
    let w = [&w0, &w1, &w2];

    // Two sessions, created through w0: `a` lands on w0 (ties go to the worker asked), `b`
    // on the least loaded other one.
    w0.pair(&fx.net, A, PHONE_A, json!({})).await;
    w0.pair(&fx.net, B, PHONE_B, json!({})).await;
    let oa = owner_of(&fx.main, A).await;
    let ob = owner_of(&fx.main, B).await;
    assert_ne!(oa, ob, "a and b on different workers");
    let owner = w[oa];
    let others: Vec<&Wharf> = (0..3).filter(|&i| i != oa).map(|i| w[i]).collect();
    let chat = format!("{PHONE_B}@c.us");

    // What the requests act on, made through the owner.
    let (st, m) = call(
        owner,
        Method::POST,
        "/api/sendText",
        Some(&json!({"session": A, "chatId": chat, "text": "first"})),
    )
    .await;
    assert_eq!(st, 201, "{m}");
    let msg = m["id"].as_str().expect("id").to_string();
    let (st, p) = call(
        owner,
        Method::POST,
        "/api/sendPoll",
        Some(&json!({"session": A, "chatId": chat,
            "poll": {"name": "q", "options": ["yes", "no"], "multipleAnswers": false}})),
    )
    .await;
    assert_eq!(st, 201, "{p}");
    let poll = p["id"].as_str().expect("poll id").to_string();
    let mut groups = Vec::new();
    for g in ["ops", "scratch"] {
        let (st, r) = call(
            owner,
            Method::POST,
            &format!("/api/{A}/groups"),
            Some(&json!({"name": g, "participants": [{"id": chat}]})),
        )
        .await;
        assert_eq!(st, 201, "{r}");
        groups.push(r["id"].as_str().expect("group id").to_string());
    }
    let (st, inv) = call(
        owner,
        Method::GET,
        &format!("/api/{A}/groups/{}/invite-code", groups[0]),
        None,
    )
    .await;
    assert_eq!(st, 200, "{inv}");
    let invite = inv
        .as_str()
        .map(str::to_string)
        .or_else(|| inv["code"].as_str().map(str::to_string))
        .unwrap_or_else(|| inv.to_string());
    let (st, l) = call(
        owner,
        Method::POST,
        &format!("/api/{A}/labels"),
        Some(&json!({"name": "ops", "color": 1})),
    )
    .await;
    assert_eq!(st, 201, "{l}");
    let label = l["id"].as_str().expect("label id").to_string();
    let (st, ch) = call(
        owner,
        Method::POST,
        &format!("/api/{A}/channels"),
        Some(&json!({"name": "ops channel"})),
    )
    .await;
    assert_eq!(st, 201, "{ch}");
    let channel = ch["id"].as_str().expect("channel id").to_string();
    let (st, lid) = call(
        owner,
        Method::GET,
        &format!("/api/{A}/lids/pn/{PHONE_B}"),
        None,
    )
    .await;
    assert_eq!(st, 200, "{lid}");
    let lid = lid["lid"]
        .as_str()
        .map_or_else(|| format!("{PHONE_B}@lid"), str::to_string);
    let c = Ctx {
        chat: chat.clone(),
        msg,
        poll,
        group: groups[0].clone(),
        invite,
        scratch: groups[1].clone(),
        label,
        channel,
        lid,
        n: std::sync::atomic::AtomicUsize::new(0),
    };

    let spec = spec();
    let ops = operations(&spec);
    let mut failures: Vec<String> = Vec::new();
    let mut seen: BTreeMap<String, String> = BTreeMap::new();
    // Destructive chat operations after the others (they empty the scratch chat only, but
    // keep reads of it before them).
    let mut ordered: Vec<&Op> = ops.iter().filter(|o| !lifecycle(&o.id)).collect();
    ordered.sort_by_key(|o| o.method == Method::DELETE);
    for op in ordered {
        if server_wide(op) {
            // Every worker answers it itself: the same status (and body, for reads).
            let mut answers = Vec::new();
            for via in w {
                let (method, path, body) = request(&spec, op, &c, via).await;
                let (st, b) = call(via, method, &path, body.as_ref()).await;
                answers.push((st, b));
            }
            let (s0, b0) = &answers[0];
            for (i, (s, b)) in answers.iter().enumerate().skip(1) {
                if s != s0 {
                    failures.push(format!("{}: w{i} {s} but w0 {s0}: {b} / {b0}", op.id));
                } else if op.method == Method::GET
                    && !volatile(&op.id)
                    && normalise(b) != normalise(b0)
                {
                    failures.push(format!("{}: w{i} answers {b}, w0 {b0}", op.id));
                }
                if *s == 0 || *s >= 500 && *s != 501 {
                    failures.push(format!("{}: w{i} {s} {b}", op.id));
                }
            }
            seen.insert(op.id.clone(), format!("{s0} (every worker)"));
            continue;
        }
        let (method, path, body) = request(&spec, op, &c, owner).await;
        let (s_owner, b_owner) = call(owner, method, &path, body.as_ref()).await;
        if let Some(why) = broken(s_owner, &b_owner) {
            failures.push(format!(
                "{} through the owner: {why}: {s_owner} {b_owner}",
                op.id
            ));
        }
        let before = peer_requests(owner).await;
        for via in &others {
            let (method, path, body) = request(&spec, op, &c, owner).await;
            let (s, b) = call(via, method.clone(), &path, body.as_ref()).await;
            if let Some(why) = broken(s, &b) {
                failures.push(format!(
                    "{} {method} {path} through {}: {why}: {s} {b}",
                    op.id, via.base
                ));
            } else if s != s_owner {
                failures.push(format!(
                    "{} {method} {path}: {s} through {} but {s_owner} through the owner: {b} / {b_owner}",
                    op.id, via.base
                ));
            } else if op.method == Method::GET
                && !volatile(&op.id)
                && normalise(&b) != normalise(&b_owner)
            {
                failures.push(format!(
                    "{} {path}: through {} {b}, through the owner {b_owner}",
                    op.id, via.base
                ));
            }
        }
        let served = peer_requests(owner).await - before;
        if served != 2 {
            failures.push(format!(
                "{} {}: the owner served {served} of the 2 requests sent through the others (not forwarded?)",
                op.id, op.path
            ));
        }
        seen.insert(op.id.clone(), s_owner.to_string());
    }

    // The lifecycle, through a non-owner each time; each checked on every worker.
    let via = |owner: usize| w[(owner + 1) % 3];
    let mut oa = owner_of(&fx.main, A).await;
    for (id, method, path, body, want, then) in [
        (
            "SessionsController_restart",
            Method::POST,
            format!("/api/sessions/{A}/restart"),
            None,
            201,
            "WORKING",
        ),
        (
            "SessionsController_update",
            Method::PUT,
            format!("/api/sessions/{A}"),
            Some(json!({"config": {"metadata": {"k": "v"}}})),
            200,
            "WORKING",
        ),
        (
            "SessionsController_stop",
            Method::POST,
            format!("/api/sessions/{A}/stop"),
            None,
            201,
            "STOPPED",
        ),
        (
            "SessionsController_start",
            Method::POST,
            format!("/api/sessions/{A}/start"),
            None,
            201,
            "WORKING",
        ),
        (
            "SessionsController_DEPRECATED_stop",
            Method::POST,
            "/api/sessions/stop".to_string(),
            Some(json!({"name": A})),
            201,
            "STOPPED",
        ),
        (
            "SessionsController_DEPRACATED_start",
            Method::POST,
            "/api/sessions/start".to_string(),
            Some(json!({"name": A})),
            201,
            "WORKING",
        ),
        (
            "SessionsController_logout",
            Method::POST,
            format!("/api/sessions/{A}/logout"),
            None,
            201,
            "SCAN_QR_CODE",
        ),
    ] {
        let through = via(oa);
        let (st, b) = call(through, method, &path, body.as_ref()).await;
        if st != want {
            failures.push(format!("{id} through a non-owner: {st} {b}, want {want}"));
        }
        for other in w {
            wait_via(other, A, then).await;
        }
        if then != "STOPPED" {
            oa = owner_of(&fx.main, A).await;
        }
        seen.insert(id.to_string(), format!("{st} (lifecycle)"));
    }
    // `b` through a non-owner: the deprecated logout (stop, log out, delete), then `a`
    // deleted through a non-owner; both gone on every worker.
    let (st, r) = call(
        via(ob),
        Method::POST,
        "/api/sessions/logout",
        Some(&json!({"name": B})),
    )
    .await;
    if st != 201 {
        failures.push(format!("DEPRECATED_logout through a non-owner: {st} {r}"));
    }
    seen.insert(
        "SessionsController_DEPRECATED_logout".into(),
        st.to_string(),
    );
    let (st, r) = call(via(oa), Method::DELETE, &format!("/api/sessions/{A}"), None).await;
    if st != 200 {
        failures.push(format!("delete through a non-owner: {st} {r}"));
    }
    seen.insert("SessionsController_delete".into(), st.to_string());
    for other in w {
        for name in [A, B] {
            eventually(
                Duration::from_secs(30),
                &format!("{name} gone through {}", other.base),
                || async {
                    let (st, r) =
                        call(other, Method::GET, &format!("/api/sessions/{name}"), None).await;
                    if st == 404 {
                        Ok(())
                    } else {
                        Err(format!("{st} {r}"))
                    }
                },
            )
            .await;
        }
    }

    // The drain's hand-over call (`POST /api/cluster/claim`, not in the document): the
    // cluster credential for this very request line, nothing else.
    let member = wharf::cluster::peer::PeerCredential::new(crate::support::cluster::SECRET, "w9");
    let stranger = wharf::cluster::peer::PeerCredential::new("another-secret-0123456", "w9");
    let claim = |credential: Option<String>| {
        let mut req = reqwest::Client::new()
            .post(format!("{}/api/cluster/claim", w0.base))
            .header("X-Api-Key", KEY);
        if let Some(c) = credential {
            req = req.header("X-Wharf-Cluster", c);
        }
        async move { req.send().await.map(|r| r.status().as_u16()).unwrap_or(0) }
    };
    for bad in [
        None,
        Some(stranger.sign("POST", "/api/cluster/claim")),
        Some(member.sign("GET", "/api/cluster/claim")),
        Some(member.sign("POST", "/api/cluster/events")),
    ] {
        assert_eq!(claim(bad.clone()).await, 401, "{bad:?}");
    }
    assert_eq!(
        claim(Some(member.sign("POST", "/api/cluster/claim"))).await,
        204
    );

    // Last: `POST /api/server/stop` through w2 stops w2 (drained, exits).
    let (st, r) = call(&w2, Method::POST, "/api/server/stop", Some(&json!({}))).await;
    seen.insert("ServerController_stop".into(), st.to_string());
    if st != 201 {
        failures.push(format!("server stop: {st} {r}"));
    } else {
        eventually(Duration::from_secs(30), "w2 exits", || {
            let c = w2.exited();
            async move { c.map(|_| ()).ok_or_else(|| "running".to_string()) }
        })
        .await;
    }

    let missing: Vec<&str> = ops
        .iter()
        .map(|o| o.id.as_str())
        .filter(|id| !seen.contains_key(*id))
        .collect();
    println!("{} operations:", seen.len());
    for (id, st) in &seen {
        println!("  {id}: {st}");
    }
    assert!(missing.is_empty(), "operations never called: {missing:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(w0);
    drop(w1);
    crate::support::mongo::drop_namespace(&fx.client, &fx.ns).await;
}
