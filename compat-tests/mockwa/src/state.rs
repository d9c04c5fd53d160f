//! The mock network's in-memory world: phones, linked devices, live
//! connections, pending pairings, groups, media blobs and fault settings.
//!
//! One [`Net`] is created by [`crate::MockNetwork::start`] and shared (behind an
//! `Arc`) by the accept loop, every connection task and the admin layer; it
//! lives until the network is shut down. All mutable state sits behind one
//! `std::sync::Mutex` that is never held across an `.await`, so critical
//! sections stay short and there is no per-device lock or thread.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{Notify, mpsc, oneshot};
use wacore::libsignal::protocol::KeyPair;
use wacore_binary::{Jid, Node};

/// Stanzas kept for a disconnected device before the oldest are dropped.
pub(crate) const OFFLINE_CAP: usize = 1000;
/// Outbound queue depth per live connection (a slow reader is disconnected
/// rather than allowed to grow memory without bound).
pub(crate) const OUTBOUND_CAP: usize = 512;
/// Total bytes of media the mock keeps before refusing uploads.
pub(crate) const MEDIA_CAP_BYTES: usize = 256 * 1024 * 1024;

/// A device address: (phone number, device id).
pub(crate) type DevKey = (String, u16);

/// What a connection task is asked to do by the rest of the network.
pub(crate) enum Out {
    /// Write this node.
    Node(Node),
    /// Optionally write this node (a `stream:error`), then close the socket.
    Close(Option<Node>),
}

/// Handle to a live connection's outbound queue.
#[derive(Clone)]
pub(crate) struct ConnHandle {
    pub(crate) id: u64,
    pub(crate) tx: mpsc::Sender<Out>,
}

impl ConnHandle {
    /// Queues a node; `false` if the connection is gone or hopelessly behind.
    pub(crate) fn send(&self, node: Node) -> bool {
        match self.tx.try_send(Out::Node(node)) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                // A reader this far behind is treated as dead: closing it makes
                // the client reconnect and drain its offline queue instead.
                let _ = self.tx.try_send(Out::Close(None));
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(crate) fn close(&self, node: Option<Node>) {
        let _ = self.tx.try_send(Out::Close(node));
    }
}

/// Registration material a companion announces in its ClientPayload.
#[derive(Clone, Default)]
pub(crate) struct RegData {
    pub(crate) registration: Vec<u8>,
    pub(crate) identity: Vec<u8>,
    pub(crate) skey_id: Vec<u8>,
    pub(crate) skey_val: Vec<u8>,
    pub(crate) skey_sig: Vec<u8>,
}

/// A virtual phone number with its primary device (played by the mock).
pub(crate) struct Phone {
    pub(crate) lid: String,
    pub(crate) push_name: String,
    /// The primary's identity key; it signs companions' ADV identities.
    pub(crate) account: KeyPair,
    pub(crate) raw_id: u32,
    pub(crate) next_device: u16,
    pub(crate) next_key_index: u32,
}

/// A linked companion device.
pub(crate) struct Device {
    pub(crate) noise_pub: [u8; 32],
    pub(crate) reg: RegData,
    /// Latest signed prekey `<skey>` node as uploaded.
    pub(crate) skey: Option<Node>,
    /// One-time prekeys (compact, see `crate::prekeys`), consumed one per bundle fetch.
    pub(crate) prekeys: VecDeque<crate::prekeys::PreKey>,
    /// A prekey-low `<notification type="encrypt"><count/>` went out since the last
    /// upload (the server sends it once, then waits for the device's top-up).
    pub(crate) prekey_low_sent: bool,
    /// The companion-countersigned ADV identity from `pair-device-sign`.
    pub(crate) signed_identity: Option<Vec<u8>>,
    pub(crate) key_index: u32,
    /// Set once `pair-device-sign` arrived; only registered devices log in.
    pub(crate) registered: bool,
    /// The phone still owes this new companion its app-state key share.
    pub(crate) key_share_pending: bool,
    pub(crate) conn: Option<ConnHandle>,
    /// True once the live connection sent its `active` IQ; until then
    /// stanzas wait in `offline`, as on the real server.
    pub(crate) active: bool,
    pub(crate) offline: VecDeque<Node>,
}

/// A connection waiting to be linked by QR.
pub(crate) struct PendingQr {
    pub(crate) conn: ConnHandle,
    pub(crate) noise_pub: [u8; 32],
    pub(crate) reg: RegData,
}

/// The companion's answer in the pair-code flow, handed to the admin call.
pub(crate) struct CompanionFinish {
    pub(crate) iq_id: String,
    pub(crate) wrapped_bundle: Vec<u8>,
    pub(crate) identity_pub: Vec<u8>,
}

/// A connection that asked for a phone-number pairing code.
pub(crate) struct PendingCode {
    pub(crate) conn: ConnHandle,
    pub(crate) noise_pub: [u8; 32],
    pub(crate) reg: RegData,
    pub(crate) wrapped_companion_eph: Vec<u8>,
    pub(crate) pairing_ref: Vec<u8>,
    /// Set while an admin `pair-code` call waits for `companion_finish`.
    pub(crate) finish_tx: Option<oneshot::Sender<CompanionFinish>>,
}

/// A group participant.
#[derive(Clone)]
pub(crate) struct Member {
    pub(crate) phone: String,
    pub(crate) admin: bool,
}

/// A pending request to join a group that requires admin approval.
#[derive(Clone)]
pub(crate) struct JoinRequest {
    pub(crate) phone: String,
    /// When the request was made (seconds since the epoch).
    pub(crate) t: i64,
}

/// A group's profile picture; the bytes live in [`State::media`] under `path`.
#[derive(Clone)]
pub(crate) struct Picture {
    pub(crate) id: String,
    pub(crate) path: String,
}

/// One group as the server keeps it. Members are phones either way; `lid_addressed`
/// only changes how stanzas name them (see `crate::groups::member_jid`).
pub(crate) struct Group {
    pub(crate) subject: String,
    /// `addressing_mode="lid"`: stanzas name members by LID, with `phone_number`.
    pub(crate) lid_addressed: bool,
    pub(crate) subject_owner: String,
    pub(crate) subject_t: i64,
    pub(crate) creator: String,
    pub(crate) creation: i64,
    /// `(id, body)` of the current description.
    pub(crate) description: Option<(String, String)>,
    pub(crate) members: Vec<Member>,
    pub(crate) invite: String,
    /// Only admins may send messages.
    pub(crate) announce: bool,
    /// Only admins may edit the group info (subject, description, picture).
    pub(crate) locked: bool,
    /// Joining by invite link creates a join request instead of a member.
    pub(crate) membership_approval: bool,
    /// `admin_add` or `all_member_add` (who may add participants).
    pub(crate) member_add_mode: &'static str,
    /// `admin_share` / `all_member_share`, once set through MEX.
    pub(crate) share_history_mode: Option<&'static str>,
    /// Pending join requests, oldest first.
    pub(crate) requests: Vec<JoinRequest>,
    pub(crate) picture: Option<Picture>,
}

impl Group {
    /// A fresh group with WhatsApp's defaults (everyone may add members,
    /// info and messages open to all, no approval).
    pub(crate) fn new(subject: String, creator: &str, members: Vec<Member>, t: i64) -> Self {
        Group {
            subject,
            lid_addressed: false,
            subject_owner: creator.to_string(),
            subject_t: t,
            creator: creator.to_string(),
            creation: t,
            description: None,
            members,
            invite: random_token(11),
            announce: false,
            locked: false,
            membership_approval: false,
            member_add_mode: "all_member_add",
            share_history_mode: None,
            requests: Vec::new(),
            picture: None,
        }
    }

    pub(crate) fn member(&self, phone: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.phone == phone)
    }

    pub(crate) fn is_admin(&self, phone: &str) -> bool {
        self.member(phone).is_some_and(|m| m.admin)
    }
}

#[derive(Default)]
pub(crate) struct State {
    pub(crate) phones: HashMap<String, Phone>,
    pub(crate) lid_to_phone: HashMap<String, String>,
    pub(crate) devices: HashMap<DevKey, Device>,
    /// QR ref -> waiting connection id; the connection itself is in `qr_conns`.
    pub(crate) qr_refs: HashMap<String, u64>,
    pub(crate) qr_conns: HashMap<u64, PendingQr>,
    /// Connection id -> device it is being paired as (awaiting pair-device-sign).
    pub(crate) pairing: HashMap<u64, DevKey>,
    pub(crate) pair_codes: HashMap<String, PendingCode>,
    pub(crate) groups: HashMap<String, Group>,
    pub(crate) invites: HashMap<String, String>,
    pub(crate) media: HashMap<String, Arc<Vec<u8>>>,
    pub(crate) media_bytes: usize,
    /// Phone -> devices subscribed to its presence.
    pub(crate) subscribers: HashMap<String, HashSet<DevKey>>,
    /// Phone -> phones that fetched its device list (they get device
    /// add/remove notifications, like contacts on the real server).
    pub(crate) device_watchers: HashMap<String, HashSet<String>>,
    /// Phones whose last presence was `available`.
    pub(crate) online: HashSet<String>,
    pub(crate) next_lid: u64,
    pub(crate) next_group: u64,
    /// Users' block lists and seeded history.
    pub(crate) book: crate::contacts::Book,
    /// Phone -> what its devices set about themselves (about, picture).
    pub(crate) profiles: HashMap<String, crate::profile::Profile>,
    /// Call id -> a call placed through the admin API.
    pub(crate) calls: HashMap<String, crate::calls::Call>,
    /// Phone -> its app state (syncd collections and the phone's key).
    pub(crate) app_state: HashMap<String, crate::appstate::Account>,
    /// Poster's phone -> the devices its statuses go to (see `crate::status`).
    pub(crate) status_audience: HashMap<String, Vec<DevKey>>,
    /// Newsletter id (user part) -> newsletter (see `crate::newsletters`).
    pub(crate) newsletters: HashMap<String, Newsletter>,
    pub(crate) next_newsletter: u64,
    pub(crate) next_newsletter_post: u64,
    /// Upload handle -> a channel's plaintext media (see `crate::newsletter_media`).
    pub(crate) newsletter_uploads: HashMap<String, crate::newsletter_media::Upload>,
    /// Device -> its login counts (see `crate::logins`).
    pub(crate) logins: HashMap<DevKey, crate::logins::LoginStats>,
    /// Newsletter id (user part) -> its channel-directory listing (`crate::directory`).
    pub(crate) directory: HashMap<String, crate::directory::Listing>,
}

/// A newsletter (channel).
pub(crate) struct Newsletter {
    pub(crate) name: String,
    pub(crate) description: String,
    /// The creator's phone.
    pub(crate) owner: String,
    pub(crate) invite: String,
    pub(crate) created: i64,
    /// Follower phone -> muted.
    pub(crate) followers: HashMap<String, bool>,
    /// Posts, oldest first: the `<message>` as followers got it.
    pub(crate) posts: Vec<Node>,
}

/// Fault injection knobs (see `POST /admin/faults`).
#[derive(Default)]
pub(crate) struct Faults {
    pub(crate) refuse_connections: AtomicBool,
    pub(crate) latency_ms: AtomicU64,
    pub(crate) refused: AtomicU64,
}

/// The shared network.
pub(crate) struct Net {
    pub(crate) state: Mutex<State>,
    pub(crate) server_static: KeyPair,
    pub(crate) cert_chain: Vec<u8>,
    pub(crate) addr: SocketAddr,
    pub(crate) faults: Faults,
    pub(crate) next_conn: AtomicU64,
    pub(crate) shutdown: Notify,
    pub(crate) is_shutdown: AtomicBool,
}

impl Net {
    pub(crate) fn new(addr: SocketAddr) -> Self {
        let server_static = wacore::crypto::generate_curve_key_pair();
        let cert_chain =
            crate::noise::build_cert_chain(server_static.public_key.public_key_bytes());
        Self {
            state: Mutex::new(State {
                next_lid: 100_000_000_000_001,
                next_group: 120_363_000_000_000_001,
                next_newsletter: 120_363_400_000_000_000,
                ..State::default()
            }),
            server_static,
            cert_chain,
            addr,
            faults: Faults::default(),
            next_conn: AtomicU64::new(1),
            shutdown: Notify::new(),
            is_shutdown: AtomicBool::new(false),
        }
    }

    /// Locks the world. A poisoned lock (a panic elsewhere) is recovered: the
    /// data is plain maps that stay consistent enough for a test double.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn conn_id(&self) -> u64 {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }
}

impl State {
    /// Resolves a user part (phone number or LID user) to a known phone.
    pub(crate) fn phone_of_user(&self, user: &str) -> Option<String> {
        if self.phones.contains_key(user) {
            return Some(user.to_string());
        }
        self.lid_to_phone.get(user).cloned()
    }

    /// Resolves any user JID (PN or LID) to its phone number.
    pub(crate) fn phone_of(&self, jid: &Jid) -> Option<String> {
        self.phone_of_user(&jid.user)
    }

    /// Ids of the registered companion devices of a phone, ascending.
    pub(crate) fn device_ids(&self, phone: &str) -> Vec<u16> {
        let mut ids: Vec<u16> = self
            .devices
            .iter()
            .filter(|((p, _), d)| p == phone && d.registered)
            .map(|((_, id), _)| *id)
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Creates the phone if new; returns whether it was created.
    pub(crate) fn ensure_phone(&mut self, phone: &str, push_name: &str) -> bool {
        if let Some(p) = self.phones.get_mut(phone) {
            if !push_name.is_empty() {
                p.push_name = push_name.to_string();
            }
            return false;
        }
        let lid = self.next_lid.to_string();
        self.next_lid += 1;
        self.lid_to_phone.insert(lid.clone(), phone.to_string());
        let raw_id = (self.phones.len() as u32)
            .wrapping_mul(7919)
            .wrapping_add(1_000_003);
        self.phones.insert(
            phone.to_string(),
            Phone {
                lid,
                push_name: push_name.to_string(),
                account: wacore::crypto::generate_curve_key_pair(),
                raw_id,
                next_device: 1,
                next_key_index: 1,
            },
        );
        true
    }

    /// Delivers a stanza to one device: live if it is connected and active,
    /// otherwise into its bounded offline queue.
    pub(crate) fn deliver(&mut self, key: &DevKey, node: Node) {
        let Some(dev) = self.devices.get_mut(key) else {
            return;
        };
        if dev.active
            && let Some(conn) = &dev.conn
        {
            if conn.send(node.clone()) {
                return;
            }
            dev.conn = None;
            dev.active = false;
        }
        if dev.offline.len() >= OFFLINE_CAP {
            dev.offline.pop_front();
        }
        dev.offline.push_back(node);
    }

    /// Delivers to every registered device of a phone except `skip`.
    pub(crate) fn deliver_to_phone(&mut self, phone: &str, skip: Option<&DevKey>, node: &Node) {
        for id in self.device_ids(phone) {
            let key = (phone.to_string(), id);
            if Some(&key) == skip {
                continue;
            }
            self.deliver(&key, node.clone());
        }
    }
}

/// Seconds since the epoch.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// A short random token (hex), for refs, ids and invite codes.
pub(crate) fn random_token(bytes: usize) -> String {
    let mut out = String::with_capacity(bytes * 2);
    for _ in 0..bytes {
        let b: u8 = rand::random();
        out.push_str(&format!("{b:02X}"));
    }
    out
}
