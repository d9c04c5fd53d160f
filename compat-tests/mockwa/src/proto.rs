//! Stanza handling for one connection: the IQs a client sends at login and
//! later, and the relay of `<message>`, `<receipt>`, `<chatstate>` and
//! `<presence>` between devices.
//!
//! Called by [`crate::conn`] for every decoded node; groups live in
//! [`crate::groups`]. The mock is a relay: ciphertexts are forwarded untouched,
//! only routing attributes are rewritten.

use wacore_binary::{Jid, Node, Server};

use crate::conn::{Conn, Flow, has, id_of};
use crate::state::{CompanionFinish, DevKey, PendingCode, State, now};
use crate::wire::{
    B, attr, attr_jid, bytes, child, children, iq_error, iq_result, lid_jid, pn_jid,
};

/// Dispatches one inbound node.
pub(crate) fn handle(c: &mut Conn, n: Node) -> Flow {
    match n.tag.as_ref() {
        "iq" => iq(c, &n),
        "message" => message(c, &n),
        // The offer-ack of a call the mock placed: nobody to tell.
        "receipt" if has(&n, "offer") => Flow::default(),
        "receipt" => receipt(c, &n),
        "call" => crate::calls::stanza(c, &n),
        "chatstate" => chatstate(c, &n),
        "presence" => presence(c, &n),
        // Client acks of our stanzas, unknown tags: nothing to do.
        _ => Flow::default(),
    }
}

fn iq(c: &mut Conn, n: &Node) -> Flow {
    let ty = attr(n, "type").unwrap_or_default();
    if ty == "result" || ty == "error" {
        return iq_answer(c, n);
    }
    let xmlns = attr(n, "xmlns").unwrap_or_default();
    match xmlns.as_str() {
        "md" => md(c, n),
        "encrypt" => encrypt(c, n, &ty),
        "usync" => usync(c, n),
        "w:sync:app:state" => app_state(c, n),
        "w:m" => Flow::reply(media_conn(c, n)),
        "w:g2" => crate::groups::iq(c, n),
        "passive" => passive(c, n),
        "privacy" => Flow::reply(privacy(n)),
        "blocklist" => crate::contacts::blocklist_iq(c, n),
        "w" if has(n, "props") => Flow::reply(iq_result(
            n,
            vec![
                B::new("props")
                    .a("protocol", "2")
                    .a("hash", "mockwa")
                    .build(),
            ],
        )),
        "abt" => Flow::reply(iq_result(
            n,
            vec![
                B::new("props")
                    .a("protocol", "1")
                    .a("hash", "mockwa")
                    .a("refresh", "86400")
                    .build(),
            ],
        )),
        "w:profile:picture" => match crate::groups::picture_iq(c, n) {
            Some(flow) => flow,
            // Reads see what a phone set through the admin API or one of its devices;
            // writes come from the account's own devices.
            None if ty == "get" => crate::contacts::picture_iq(c, n),
            None => crate::profile::picture_iq(c, n),
        },
        "newsletter" if has(n, "messages") => crate::newsletters::messages(c, n),
        "w:mex" => match crate::newsletters::mex(c, n) {
            Some(flow) => flow,
            None => crate::groups::mex(c, n),
        },
        "status" if ty == "get" => Flow::reply(iq_error(n, 404, "item-not-found")),
        "status" => crate::profile::status_iq(c, n),
        // Pings, dirty bits, profile sets and anything unknown: plain result.
        _ => Flow::reply(iq_result(n, vec![])),
    }
}

/// Answers the client gave to IQs the server sent (pair-device ack,
/// pair-device-sign).
fn iq_answer(c: &mut Conn, n: &Node) -> Flow {
    let Some(sign) = child(n, "pair-device-sign") else {
        return Flow::default();
    };
    let identity = child(sign, "device-identity")
        .and_then(bytes)
        .map(<[u8]>::to_vec);
    let mut st = c.net.lock();
    let Some(key) = st.pairing.remove(&c.handle.id) else {
        return Flow::default();
    };
    if let Some(dev) = st.devices.get_mut(&key) {
        dev.signed_identity = identity;
        dev.registered = true;
    }
    crate::phone::announce_device(&mut st, &key, "add");
    // Pairing is done: this socket no longer shows QR refs or a code.
    if st.qr_conns.remove(&c.handle.id).is_some() {
        let id = c.handle.id;
        st.qr_refs.retain(|_, v| *v != id);
    }
    let id = c.handle.id;
    st.pair_codes.retain(|_, p| p.conn.id != id);
    // As the real server: restart the stream so the client logs in.
    Flow {
        replies: vec![B::new("stream:error").a("code", "515").build()],
        close: true,
    }
}

fn md(c: &mut Conn, n: &Node) -> Flow {
    if let Some(reg) = child(n, "link_code_companion_reg") {
        return link_code(c, n, reg);
    }
    if let Some(rm) = child(n, "remove-companion-device") {
        // The client logging itself out.
        let target = attr_jid(rm, "jid");
        let mut st = c.net.lock();
        let key = match (target, c.device()) {
            (Some(j), _) => st.phone_of(&j).map(|p| (p, j.device)),
            (None, Some(k)) => Some(k.clone()),
            (None, None) => None,
        };
        if let Some(k) = key {
            st.devices.remove(&k);
        }
        return Flow::reply(iq_result(n, vec![]));
    }
    Flow::reply(iq_result(n, vec![]))
}

/// Companion side of the phone-number pairing code exchange.
fn link_code(c: &mut Conn, n: &Node, reg: &Node) -> Flow {
    let stage = attr(reg, "stage").unwrap_or_default();
    let phone = attr_jid(reg, "jid")
        .map(|j| j.user.to_string())
        .unwrap_or_default();
    if phone.is_empty() || !phone.chars().all(|ch| ch.is_ascii_digit()) {
        return Flow::reply(iq_error(n, 400, "bad-request"));
    }
    match stage.as_str() {
        "companion_hello" => {
            let Some(wrapped) = child(reg, "link_code_pairing_wrapped_companion_ephemeral_pub")
                .and_then(bytes)
                .filter(|b| b.len() == 80)
            else {
                return Flow::reply(iq_error(n, 400, "bad-request"));
            };
            let pairing_ref = crate::state::random_token(16).into_bytes();
            let mut st = c.net.lock();
            st.pair_codes.insert(
                phone,
                PendingCode {
                    conn: c.handle.clone(),
                    noise_pub: c.noise_pub,
                    reg: c.reg.clone(),
                    wrapped_companion_eph: wrapped.to_vec(),
                    pairing_ref: pairing_ref.clone(),
                    finish_tx: None,
                },
            );
            Flow::reply(iq_result(
                n,
                vec![
                    B::new("link_code_companion_reg")
                        .kids([B::new("link_code_pairing_ref").bytes(pairing_ref).build()])
                        .build(),
                ],
            ))
        }
        "companion_finish" => {
            let wrapped = child(reg, "link_code_pairing_wrapped_key_bundle").and_then(bytes);
            let identity = child(reg, "companion_identity_public").and_then(bytes);
            let mut st = c.net.lock();
            let waiter = st
                .pair_codes
                .get_mut(&phone)
                .filter(|p| p.conn.id == c.handle.id)
                .and_then(|p| p.finish_tx.take());
            match (waiter, wrapped, identity) {
                (Some(tx), Some(w), Some(i)) => {
                    // The admin call answers this IQ once it has checked the bundle.
                    let _ = tx.send(CompanionFinish {
                        iq_id: id_of(n),
                        wrapped_bundle: w.to_vec(),
                        identity_pub: i.to_vec(),
                    });
                    Flow::default()
                }
                _ => Flow::reply(iq_error(n, 400, "bad-request")),
            }
        }
        _ => Flow::reply(iq_result(n, vec![])),
    }
}

fn encrypt(c: &mut Conn, n: &Node, ty: &str) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::reply(iq_error(n, 401, "not-authorized"));
    };
    let mut st = c.net.lock();
    if ty == "set" {
        if let Some(dev) = st.devices.get_mut(&me) {
            if let Some(r) = child(n, "registration").and_then(bytes) {
                dev.reg.registration = r.to_vec();
            }
            if let Some(i) = child(n, "identity").and_then(bytes) {
                dev.reg.identity = i.to_vec();
            }
            if let Some(s) = child(n, "skey") {
                dev.skey = Some(s.clone());
            }
            if let Some(s) = child(n, "rotate").and_then(|r| child(r, "skey")) {
                dev.skey = Some(s.clone());
            }
            if let Some(list) = child(n, "list") {
                dev.prekey_low_sent = false;
                for k in children(list) {
                    if dev.prekeys.len() < 2000 {
                        dev.prekeys.push_back(crate::prekeys::PreKey::from_node(k));
                    }
                }
            }
        }
        return Flow::reply(iq_result(n, vec![]));
    }
    if has(n, "count") {
        let count = st.devices.get(&me).map_or(0, |d| d.prekeys.len());
        return Flow::reply(iq_result(
            n,
            vec![B::new("count").a("value", count.to_string()).build()],
        ));
    }
    if let Some(key) = child(n, "key") {
        let users: Vec<Node> = children(key)
            .iter()
            .filter_map(|u| attr_jid(u, "jid"))
            .map(|j| key_bundle(&mut st, &j))
            .collect();
        return Flow::reply(iq_result(n, vec![B::new("list").kids(users).build()]));
    }
    // `digest` and anything else: 406 makes the client skip validation.
    Flow::reply(iq_error(n, 406, "not-acceptable"))
}

/// One `<user>` of a prekey fetch answer (consumes a one-time prekey).
pub(crate) fn key_bundle(st: &mut State, jid: &Jid) -> Node {
    let not_found = || {
        B::new("user")
            .a("jid", jid.clone())
            .kids([B::new("error")
                .a("code", "404")
                .a("text", "item-not-found")
                .build()])
            .build()
    };
    let Some(phone) = st.phone_of(jid) else {
        return not_found();
    };
    let Some(dev) = st.devices.get_mut(&(phone.clone(), jid.device)) else {
        return not_found();
    };
    let Some(skey) = dev.skey.clone().or_else(|| {
        (!dev.reg.skey_val.is_empty()).then(|| {
            B::new("skey")
                .kids([
                    B::new("id").bytes(dev.reg.skey_id.clone()).build(),
                    B::new("value").bytes(dev.reg.skey_val.clone()).build(),
                    B::new("signature").bytes(dev.reg.skey_sig.clone()).build(),
                ])
                .build()
        })
    }) else {
        return not_found();
    };
    let mut kids = vec![
        B::new("registration")
            .bytes(dev.reg.registration.clone())
            .build(),
        B::new("type").bytes(vec![5u8]).build(),
        B::new("identity").bytes(dev.reg.identity.clone()).build(),
        skey,
    ];
    if let Some(k) = dev.prekeys.pop_front() {
        kids.push(k.to_node());
    }
    if let Some(id) = &dev.signed_identity {
        kids.push(B::new("device-identity").bytes(id.clone()).build());
    }
    let low = (dev.prekeys.len() < PREKEY_LOW && !dev.prekey_low_sent).then(|| {
        dev.prekey_low_sent = true;
        dev.prekeys.len()
    });
    let user = B::new("user").a("jid", jid.clone()).kids(kids).build();
    if let Some(left) = low {
        st.deliver(&(phone, jid.device), prekey_low(left));
    }
    user
}

/// Below this many one-time prekeys the server tells the device to upload more. The real
/// server's threshold is not public; 5 is whatsmeow's and Baileys' `MinPreKeyCount`, the
/// count under which they top up on their own at login.
const PREKEY_LOW: usize = 5;

/// `<notification type="encrypt"><count value=N/></notification>`: the server's
/// "prekeys running low", which makes the client upload a new batch.
fn prekey_low(left: usize) -> Node {
    B::new("notification")
        .a("from", crate::wire::server_jid())
        .a("type", "encrypt")
        .a("id", crate::state::random_token(8))
        .a("t", crate::state::now().to_string())
        .kids([B::new("count").a("value", left.to_string()).build()])
        .build()
}

/// usync: contact lookup, LID mapping and device lists.
fn usync(c: &mut Conn, n: &Node) -> Flow {
    let Some(us) = child(n, "usync") else {
        return Flow::reply(iq_error(n, 400, "bad-request"));
    };
    let query: Vec<String> = child(us, "query")
        .map(|q| children(q).iter().map(|k| k.tag.to_string()).collect())
        .unwrap_or_default();
    let mut st = c.net.lock();
    let watcher = c.device().map(|k| k.0.clone());
    let mut users = Vec::new();
    for u in child(us, "list").map(children).unwrap_or(&[]) {
        // Either `<user jid=..>` or `<user><contact>+1555..</contact></user>`.
        let (jid, contact) = match attr_jid(u, "jid") {
            Some(j) => (j, None),
            None => {
                let Some(raw) = child(u, "contact").and_then(crate::wire::text) else {
                    continue;
                };
                let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
                (Jid::pn(digits), Some(raw))
            }
        };
        let phone = st.phone_of(&jid);
        let mut kids = Vec::new();
        for q in &query {
            match q.as_str() {
                "contact" => {
                    let ty = if phone.is_some() { "in" } else { "out" };
                    let mut b = B::new("contact").a("type", ty);
                    if let Some(raw) = &contact {
                        b = b.bytes(raw.clone().into_bytes());
                    }
                    kids.push(b.build());
                }
                "lid" => {
                    if let Some(p) = phone.as_ref().and_then(|p| st.phones.get(p)) {
                        kids.push(B::new("lid").a("val", lid_jid(&p.lid, 0)).build());
                    } else {
                        kids.push(B::new("lid").build());
                    }
                }
                "devices" => {
                    if let (Some(p), Some(w)) = (&phone, &watcher) {
                        st.device_watchers
                            .entry(p.clone())
                            .or_default()
                            .insert(w.clone());
                    }
                    let ids = phone
                        .as_deref()
                        .map(|p| st.device_ids(p))
                        .unwrap_or_default();
                    let mut indexes = Vec::new();
                    // Device 0 is the primary (played by the mock): listed so
                    // clients see a normal account, though it has no prekeys.
                    let mut list = vec![B::new("device").a("id", "0").build()];
                    for id in ids {
                        let ki = phone
                            .as_ref()
                            .and_then(|p| st.devices.get(&(p.clone(), id)))
                            .map_or(0, |d| d.key_index);
                        indexes.push(ki);
                        list.push(
                            B::new("device")
                                .a("id", id.to_string())
                                .a("key-index", ki.to_string())
                                .build(),
                        );
                    }
                    let mut dkids = vec![B::new("device-list").kids(list).build()];
                    if let Some(p) = phone.as_ref().and_then(|p| st.phones.get(p))
                        && !indexes.is_empty()
                        && let Ok(signed) =
                            crate::phone::signed_key_index_list(&p.account, p.raw_id, &indexes)
                    {
                        dkids.push(
                            B::new("key-index-list")
                                .a("ts", now().to_string())
                                .bytes(signed)
                                .build(),
                        );
                    }
                    kids.push(B::new("devices").kids(dkids).build());
                }
                "business" => {}
                "status" | "picture" => {
                    kids.push(crate::contacts::usync_part(&st, q, phone.as_deref()));
                }
                "disappearing_mode" => {
                    kids.push(
                        B::new(q.clone())
                            .kids([B::new("error")
                                .a("code", "404")
                                .a("text", "item-not-found")
                                .build()])
                            .build(),
                    );
                }
                _ => {}
            }
        }
        let mut ub = B::new("user").a("jid", jid.to_non_ad());
        if jid.server == Server::Lid
            && let Some(p) = &phone
        {
            ub = ub.a("pn_jid", Jid::pn(p.clone()));
        }
        users.push(ub.kids(kids).build());
    }
    let mut ub = B::new("usync");
    for k in ["sid", "mode", "context", "index", "last"] {
        if let Some(v) = attr(us, k) {
            ub = ub.a(k, v);
        }
    }
    Flow::reply(iq_result(
        n,
        vec![ub.kids([B::new("list").kids(users).build()]).build()],
    ))
}

/// App-state sync: the mock keeps no app state; 409 per collection is what
/// the client treats as "nothing to sync". A patch the client sends (star,
/// archive, …) is accepted without being kept: an empty `<sync/>` answer is
/// whatsapp-rust's "accepted" (it then re-syncs, gets the 409 and moves on).
fn app_state(c: &mut Conn, n: &Node) -> Flow {
    if let Some(dev) = c.device().cloned() {
        let mut st = c.net.lock();
        return Flow::reply(crate::appstate::iq(&mut st, &dev, n));
    }
    let cols = child(n, "sync").map(children).unwrap_or(&[]);
    if cols.iter().any(|col| child(col, "patch").is_some()) {
        return Flow::reply(iq_result(n, vec![B::new("sync").build()]));
    }
    let cols: Vec<Node> = cols
        .iter()
        .filter_map(|col| attr(col, "name"))
        .map(|name| {
            B::new("collection")
                .a("name", name)
                .a("type", "error")
                .kids([B::new("error")
                    .a("code", "409")
                    .a("text", "conflict")
                    .build()])
                .build()
        })
        .collect();
    Flow::reply(iq_result(n, vec![B::new("sync").kids(cols).build()]))
}

fn media_conn(c: &Conn, n: &Node) -> Node {
    iq_result(
        n,
        vec![
            B::new("media_conn")
                .a("auth", "mockwa-auth")
                .a("ttl", "3600")
                .a("auth_ttl", "3600")
                .a("max_buckets", "12")
                .kids([B::new("host").a("hostname", c.net.addr.to_string()).build()])
                .build(),
        ],
    )
}

fn privacy(n: &Node) -> Node {
    let cats = [
        ("last", "all"),
        ("online", "all"),
        ("profile", "all"),
        ("status", "all"),
        ("readreceipts", "all"),
        ("groupadd", "all"),
        ("calladd", "all"),
    ];
    iq_result(
        n,
        vec![
            B::new("privacy")
                .kids(
                    cats.iter()
                        .map(|(k, v)| B::new("category").a("name", *k).a("value", *v).build()),
                )
                .build(),
        ],
    )
}

/// `active` ends passive mode: flush the offline queue, then `<ib><offline>`.
fn passive(c: &mut Conn, n: &Node) -> Flow {
    let mut replies = vec![iq_result(n, vec![])];
    if !has(n, "active") {
        return Flow {
            replies,
            close: false,
        };
    }
    let Some(me) = c.device().cloned() else {
        return Flow {
            replies,
            close: false,
        };
    };
    let mut st = c.net.lock();
    if let Some(dev) = st.devices.get_mut(&me) {
        let queued: Vec<Node> = dev.offline.drain(..).collect();
        let count = queued.len();
        for mut q in queued {
            q.attrs.insert("offline", "1");
            replies.push(q);
        }
        replies.push(
            B::new("ib")
                .kids([B::new("offline").a("count", count.to_string()).build()])
                .build(),
        );
        dev.active = true;
    }
    Flow {
        replies,
        close: false,
    }
}

/// How a device appears as a sender: PN or LID form, matching the chat.
fn sender_jid(st: &State, me: &DevKey, lid_form: bool) -> Jid {
    match st.phones.get(&me.0) {
        Some(p) if lid_form => lid_jid(&p.lid, me.1),
        _ => pn_jid(&me.0, me.1),
    }
}

fn push_name(st: &State, phone: &str) -> String {
    st.phones
        .get(phone)
        .map(|p| p.push_name.clone())
        .unwrap_or_default()
}

/// Copies a stanza's attributes except the ones routing rewrites.
fn copy_attrs(src: &Node, skip: &[&str]) -> B {
    let mut b = B::new(src.tag.clone());
    for (k, v) in src.attrs.iter() {
        if !skip.contains(&k.as_ref()) {
            b = b.a(k.clone(), v.clone());
        }
    }
    b
}

fn server_ack(n: &Node, class: &'static str, from: Jid) -> Node {
    let mut b = B::new("ack")
        .a("class", class)
        .a("id", id_of(n))
        .a("from", from)
        .a("t", now().to_string());
    if let Some(t) = attr(n, "type")
        && class == "receipt"
    {
        b = b.a("type", t);
    }
    b.build()
}

/// `<message>` fan-out to every addressed device (including the sender's
/// other devices), then a server ack to the sender.
fn message(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::default();
    };
    let Some(to) = attr_jid(n, "to") else {
        return Flow::default();
    };
    let mut st = c.net.lock();
    let ack = server_ack(n, "message", to.clone());
    if to.server == Server::Newsletter {
        return Flow::reply(crate::newsletters::post(&mut st, &me, &to, n));
    }
    if to.server == Server::Broadcast && to.user == "status" {
        crate::status::fan_out(&mut st, &me, n);
        return Flow::reply(ack);
    }
    if to.server == Server::Group {
        if let Some(code) = crate::groups::send_refusal(&st, &me, &to) {
            // A nack: the client raises `ServerAck { error: Some(code) }`
            // and nobody receives the message.
            let mut nack = ack;
            nack.attrs.insert("error", code);
            return Flow::reply(nack);
        }
        crate::groups::fan_out(&mut st, &me, &to, n);
        return Flow::reply(ack);
    }
    let Some(peer) = st.phone_of(&to) else {
        return Flow::reply(ack);
    };
    let lid_form = to.server == Server::Lid;
    let from = sender_jid(&st, &me, lid_form);
    let notify = push_name(&st, &me.0);
    let shared: Vec<Node> = children(n)
        .iter()
        .filter(|k| k.tag != "participants")
        .cloned()
        .collect();
    let mut base = copy_attrs(n, &["to"])
        .a("from", from)
        .a("t", now().to_string())
        .a("notify", notify);
    if let Some((key, alt)) = crate::contacts::sender_alt(&st, &me.0, lid_form) {
        base = base.a(key, alt);
    }
    let mut targets: Vec<(DevKey, Vec<Node>)> = Vec::new();
    if let Some(parts) = child(n, "participants") {
        for t in children(parts) {
            let Some(j) = attr_jid(t, "jid") else {
                continue;
            };
            let Some(p) = st.phone_of(&j) else { continue };
            targets.push(((p, j.device), children(t).to_vec()));
        }
    } else {
        for id in st.device_ids(&peer) {
            targets.push(((peer.clone(), id), Vec::new()));
        }
    }
    for (key, own) in targets {
        if key == me {
            continue;
        }
        let mut b = base_clone(&base);
        if key.0 == me.0 {
            // Sent to our own other devices: they need the chat it belongs to.
            b = b.a("recipient", to.to_non_ad());
        }
        let mut kids = own;
        kids.extend(shared.iter().cloned());
        st.deliver(&key, b.kids(kids).build());
    }
    Flow::reply(ack)
}

fn base_clone(b: &B) -> B {
    B::from_node(b.peek().clone())
}

/// A receipt from a LID-addressed sender carries its phone number too
/// (`participant_pn`, which whatsapp-rust reads into the receipt's `sender_alt`),
/// so the receiving side learns the LID ↔ phone pair from receipts as well.
fn with_pn(b: B, me: &DevKey, lid_form: bool) -> B {
    if lid_form {
        b.a("participant_pn", pn_jid(&me.0, 0))
    } else {
        b
    }
}

/// `<receipt>` routing: to every device of the original sender.
fn receipt(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::default();
    };
    let Some(to) = attr_jid(n, "to") else {
        return Flow::default();
    };
    let mut st = c.net.lock();
    let ack = server_ack(n, "receipt", to.clone());
    let (target_phone, out) = if to.server == Server::Group {
        let Some(p) = attr_jid(n, "participant") else {
            return Flow::reply(ack);
        };
        let lid_form = p.server == Server::Lid;
        let Some(target) = st.phone_of(&p) else {
            return Flow::reply(ack);
        };
        let b = copy_attrs(n, &["to", "participant"])
            .a("from", to.to_non_ad())
            .a("participant", sender_jid(&st, &me, lid_form))
            .a("t", now().to_string());
        (
            target,
            with_pn(b, &me, lid_form).kids(children(n).to_vec()).build(),
        )
    } else {
        let Some(target) = st.phone_of(&to) else {
            return Flow::reply(ack);
        };
        let lid_form = to.server == Server::Lid;
        let b = copy_attrs(n, &["to"])
            .a("from", sender_jid(&st, &me, lid_form))
            .a("t", now().to_string());
        (
            target,
            with_pn(b, &me, lid_form).kids(children(n).to_vec()).build(),
        )
    };
    // A device that is not "online" acknowledges delivery as `inactive`; the
    // sender sees that as a plain delivery receipt, as from the real server.
    let mut out = out;
    if attr(&out, "type").as_deref() == Some("inactive") {
        out.attrs.0.retain(|(k, _)| k != "type");
    }
    if target_phone == me.0 {
        // A receipt for our own message on another device (e.g. read-self).
        st.deliver_to_phone(&target_phone, Some(&me), &out);
    } else {
        st.deliver_to_phone(&target_phone, None, &out);
    }
    Flow::reply(ack)
}

fn chatstate(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::default();
    };
    let Some(to) = attr_jid(n, "to") else {
        return Flow::default();
    };
    let mut st = c.net.lock();
    if to.server == Server::Group {
        let from = pn_jid(&me.0, 0);
        let node = B::new("chatstate")
            .a("from", to.to_non_ad())
            .a("participant", from)
            .kids(children(n).to_vec())
            .build();
        crate::groups::to_members(&mut st, &to, Some(&me), &node);
        return Flow::default();
    }
    if let Some(peer) = st.phone_of(&to) {
        let from = if to.server == Server::Lid {
            st.phones
                .get(&me.0)
                .map(|p| lid_jid(&p.lid, 0))
                .unwrap_or_else(|| pn_jid(&me.0, 0))
        } else {
            pn_jid(&me.0, 0)
        };
        let node = B::new("chatstate")
            .a("from", from)
            .kids(children(n).to_vec())
            .build();
        st.deliver_to_phone(&peer, None, &node);
    }
    Flow::default()
}

fn presence(c: &mut Conn, n: &Node) -> Flow {
    let Some(me) = c.device().cloned() else {
        return Flow::default();
    };
    let ty = attr(n, "type").unwrap_or_default();
    let mut st = c.net.lock();
    match ty.as_str() {
        "subscribe" => {
            let Some(to) = attr_jid(n, "to") else {
                return Flow::default();
            };
            let Some(peer) = st.phone_of(&to) else {
                return Flow::default();
            };
            st.subscribers.entry(peer.clone()).or_default().insert(me);
            let online = st.online.contains(&peer);
            Flow::reply(
                B::new("presence")
                    .a("from", to.to_non_ad())
                    .a("type", if online { "available" } else { "unavailable" })
                    .a("last", now().to_string())
                    .build(),
            )
        }
        "unsubscribe" => {
            if let Some(peer) = attr_jid(n, "to").and_then(|j| st.phone_of(&j))
                && let Some(s) = st.subscribers.get_mut(&peer)
            {
                s.remove(&me);
            }
            Flow::default()
        }
        "available" | "unavailable" | "" => {
            let available = ty != "unavailable";
            if let Some(name) = attr(n, "name")
                && let Some(p) = st.phones.get_mut(&me.0)
                && !name.is_empty()
            {
                p.push_name = name;
            }
            if available {
                st.online.insert(me.0.clone());
            } else {
                st.online.remove(&me.0);
            }
            let node = B::new("presence")
                .a("from", pn_jid(&me.0, 0))
                .a(
                    "type",
                    if available {
                        "available"
                    } else {
                        "unavailable"
                    },
                )
                .a("last", now().to_string())
                .build();
            let subs: Vec<DevKey> = st
                .subscribers
                .get(&me.0)
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default();
            for s in subs {
                st.deliver(&s, node.clone());
            }
            Flow::default()
        }
        _ => Flow::default(),
    }
}

/// `<notification>` helper used by other modules.
pub(crate) fn notification(ty: &'static str, from: Jid, kids: Vec<Node>) -> Node {
    B::new("notification")
        .a("from", from)
        .a("type", ty)
        .a("id", crate::state::random_token(8))
        .a("t", now().to_string())
        .kids(kids)
        .build()
}
