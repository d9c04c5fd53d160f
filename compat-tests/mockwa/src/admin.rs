//! The admin operations — one implementation shared by the HTTP admin API
//! ([`crate::server`]) and the in-process library API ([`crate::MockNetwork`]).
//!
//! Every operation is short: it locks the world, queues stanzas on the
//! affected connections and returns. Only `pair_code` waits (for the
//! companion's `companion_finish`, bounded by a timeout).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;
use wacore_binary::Jid;

use crate::phone::{self, LinkRequest};
use crate::state::{DevKey, Net};
use crate::wire::{B, device_jid_string, server_jid};

/// How long `pair_code` waits for the companion to answer `primary_hello`.
const COMPANION_FINISH_TIMEOUT: Duration = Duration::from_secs(30);

/// Why an admin operation failed; maps 1:1 onto HTTP status codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminError {
    /// 400: the request itself is malformed.
    BadRequest(String),
    /// 404: no such QR / pairing request / device.
    NotFound(String),
    /// 500: something inside the mock failed.
    Internal(String),
}

impl AdminError {
    /// The HTTP status the admin API answers with.
    pub fn status(&self) -> u16 {
        match self {
            AdminError::BadRequest(_) => 400,
            AdminError::NotFound(_) => 404,
            AdminError::Internal(_) => 500,
        }
    }

    /// Human-readable reason (also the `error` field of the JSON body).
    pub fn message(&self) -> &str {
        match self {
            AdminError::BadRequest(m) | AdminError::NotFound(m) | AdminError::Internal(m) => m,
        }
    }
}

impl std::fmt::Display for AdminError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status(), self.message())
    }
}

impl std::error::Error for AdminError {}

/// One linked companion device, as listed by `GET /admin/devices`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// Device JID, e.g. `15550001111:1@s.whatsapp.net`.
    pub jid: String,
    /// Phone number (digits only).
    pub phone: String,
    /// Whether the device currently has a logged-in socket.
    pub connected: bool,
    /// Successful logins since the network started.
    #[serde(default)]
    pub logins: u64,
    /// Logins that displaced a still-open connection of the device (`conflict replaced`).
    #[serde(default)]
    pub replaced: u64,
    /// One-time pre-keys the device has uploaded and nobody has fetched yet.
    #[serde(default)]
    pub prekeys: usize,
}

/// Fault settings (`POST /admin/faults`); absent fields are left unchanged.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FaultSettings {
    /// Refuse new websocket connections (the TCP connection is closed at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_connections: Option<bool>,
    /// Delay every stanza the mock sends by this many milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    /// Read-only: websocket connections refused so far (ignored on input).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refused_count: Option<u64>,
}

fn check_phone(phone: &str) -> Result<(), AdminError> {
    if (5..=20).contains(&phone.len()) && phone.chars().all(|c| c.is_ascii_digit()) {
        Ok(())
    } else {
        Err(AdminError::BadRequest(
            "phone must be 5-20 digits, no '+'".into(),
        ))
    }
}

fn dev_key(net: &Net, jid: &str) -> Result<DevKey, AdminError> {
    let j: Jid = jid
        .parse()
        .map_err(|_| AdminError::BadRequest(format!("not a JID: {jid}")))?;
    let st = net.lock();
    let phone = st
        .phone_of(&j)
        .ok_or_else(|| AdminError::NotFound(format!("unknown device {jid}")))?;
    let key = (phone, j.device);
    if st.devices.get(&key).is_some_and(|d| d.registered) {
        Ok(key)
    } else {
        Err(AdminError::NotFound(format!("unknown device {jid}")))
    }
}

/// The phone scans a QR a connected client shows; returns the new device JID.
pub(crate) fn scan_qr(
    net: &Net,
    qr: &str,
    phone: &str,
    push_name: &str,
) -> Result<String, AdminError> {
    check_phone(phone)?;
    let fields = phone::parse_qr(qr).map_err(|e| AdminError::BadRequest(e.to_string()))?;
    let mut st = net.lock();
    let not_showing = || AdminError::NotFound("no connected client is showing this QR".into());
    let conn_id = *st
        .qr_refs
        .get(&fields.pairing_ref)
        .ok_or_else(not_showing)?;
    let pending = st.qr_conns.get(&conn_id).ok_or_else(not_showing)?;
    if pending.noise_pub[..] != fields.noise_pub[..] {
        return Err(not_showing());
    }
    let conn = pending.conn.clone();
    let noise_pub = pending.noise_pub;
    let reg = pending.reg.clone();
    st.ensure_phone(phone, push_name);
    let key = phone::link(
        &mut st,
        LinkRequest {
            conn: &conn,
            noise_pub,
            reg,
            identity_pub: &fields.identity_pub,
            adv_secret: &fields.adv_secret,
            phone,
        },
    )
    .map_err(|e| AdminError::NotFound(e.to_string()))?;
    // One scan per QR session: the other refs are now void.
    st.qr_conns.remove(&conn_id);
    st.qr_refs.retain(|_, c| *c != conn_id);
    Ok(device_jid_string(&key.0, key.1))
}

/// The phone's user types the pairing code a client displays.
pub(crate) async fn pair_code(
    net: &Arc<Net>,
    phone: &str,
    code: &str,
) -> Result<String, AdminError> {
    check_phone(phone)?;
    let clean: String = code.chars().filter(|c| *c != '-').collect();
    if clean.len() != 8 || !clean.chars().all(|c| c.is_ascii_alphanumeric()) {
        return Err(AdminError::BadRequest(
            "code must be 8 characters (ABCD-EFGH)".into(),
        ));
    }
    let (tx, rx) = oneshot::channel();
    let (conn, wrapped, pairing_ref, noise_pub, reg, account) = {
        let mut st = net.lock();
        let not_found = || AdminError::NotFound(format!("no client requested a code for {phone}"));
        let pending = st.pair_codes.get(phone).ok_or_else(not_found)?;
        let snapshot = (
            pending.conn.clone(),
            pending.wrapped_companion_eph.clone(),
            pending.pairing_ref.clone(),
            pending.noise_pub,
            pending.reg.clone(),
        );
        st.ensure_phone(phone, "");
        let account = st
            .phones
            .get(phone)
            .map(|p| p.account.clone())
            .ok_or_else(|| AdminError::Internal("phone vanished".into()))?;
        if let Some(p) = st.pair_codes.get_mut(phone) {
            p.finish_tx = Some(tx);
        }
        (
            snapshot.0, snapshot.1, snapshot.2, snapshot.3, snapshot.4, account,
        )
    };
    let code_owned = clean.to_uppercase();
    let ref_clone = pairing_ref.clone();
    let account_pub = account.public_key.public_key_bytes().to_vec();
    let hello = tokio::task::spawn_blocking(move || {
        phone::primary_hello(&code_owned, &wrapped, &ref_clone, &account_pub)
    })
    .await
    .map_err(|e| AdminError::Internal(e.to_string()))?
    .map_err(|e| AdminError::BadRequest(e.to_string()))?;
    if !conn.send(hello.notification.clone()) {
        return Err(AdminError::NotFound("the client disconnected".into()));
    }
    let finish = match tokio::time::timeout(COMPANION_FINISH_TIMEOUT, rx).await {
        Ok(Ok(f)) => f,
        _ => {
            return Err(AdminError::NotFound(
                "the client did not answer; wrong code or client gone".into(),
            ));
        }
    };
    let answer = |ok: bool| {
        let b = B::new("iq")
            .a("from", server_jid())
            .a("id", finish.iq_id.clone());
        if ok {
            b.a("type", "result").build()
        } else {
            b.a("type", "error")
                .kids([B::new("error")
                    .a("code", "400")
                    .a("text", "bad-request")
                    .build()])
                .build()
        }
    };
    let (identity_pub, adv_secret) =
        match phone::open_key_bundle(&hello, &account, &finish.wrapped_bundle) {
            Ok(v) => v,
            Err(_) => {
                conn.send(answer(false));
                return Err(AdminError::NotFound(format!(
                    "code {code} does not match the one the client for {phone} shows"
                )));
            }
        };
    if identity_pub != finish.identity_pub {
        conn.send(answer(false));
        return Err(AdminError::NotFound("companion identity mismatch".into()));
    }
    conn.send(answer(true));
    let mut st = net.lock();
    let key = phone::link(
        &mut st,
        LinkRequest {
            conn: &conn,
            noise_pub,
            reg,
            identity_pub: &identity_pub,
            adv_secret: &adv_secret,
            phone,
        },
    )
    .map_err(|e| AdminError::NotFound(e.to_string()))?;
    st.pair_codes.remove(phone);
    Ok(device_jid_string(&key.0, key.1))
}

/// All linked (registered) companion devices, sorted by JID.
pub(crate) fn devices(net: &Net) -> Vec<DeviceInfo> {
    let st = net.lock();
    let mut out: Vec<DeviceInfo> = st
        .devices
        .iter()
        .filter(|(_, d)| d.registered)
        .map(|((phone, id), d)| {
            let stats = st
                .logins
                .get(&(phone.clone(), *id))
                .copied()
                .unwrap_or_default();
            DeviceInfo {
                jid: device_jid_string(phone, *id),
                phone: phone.clone(),
                connected: d.conn.is_some(),
                logins: stats.logins,
                replaced: stats.replaced,
                prekeys: d.prekeys.len(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.jid.cmp(&b.jid));
    out
}

/// Other devices fetch `count` of the device's key bundles, each consuming one one-time
/// prekey exactly as a bundle fetch does (so crossing the low mark sends the device the
/// server's prekey-low notification). Returns how many prekeys are left.
pub(crate) fn take_prekeys(net: &Net, jid: &str, count: usize) -> Result<usize, AdminError> {
    let key = dev_key(net, jid)?;
    let j: Jid = jid
        .parse()
        .map_err(|_| AdminError::BadRequest(format!("not a JID: {jid}")))?;
    let mut st = net.lock();
    for _ in 0..count {
        crate::proto::key_bundle(&mut st, &j);
    }
    Ok(st.devices.get(&key).map_or(0, |d| d.prekeys.len()))
}

/// Drops the device's socket without a stream error (the client reconnects).
pub(crate) fn disconnect(net: &Net, jid: &str) -> Result<(), AdminError> {
    let key = dev_key(net, jid)?;
    let mut st = net.lock();
    if let Some(dev) = st.devices.get_mut(&key)
        && let Some(conn) = dev.conn.take()
    {
        dev.active = false;
        conn.close(None);
    }
    Ok(())
}

/// The phone removes the device: it is forgotten and, if connected, told so
/// (`stream:error 401 device_removed` -> the client sees `LoggedOut`).
pub(crate) fn unlink(net: &Net, jid: &str) -> Result<(), AdminError> {
    let key = dev_key(net, jid)?;
    let mut st = net.lock();
    let removed = st.devices.remove(&key);
    if let Some(mut dev) = removed {
        // Announce with the device's key index, after it left the valid list.
        dev.registered = false;
        let conn = dev.conn.take();
        st.devices.insert(key.clone(), dev);
        crate::phone::announce_device(&mut st, &key, "remove");
        st.devices.remove(&key);
        if let Some(conn) = conn {
            conn.close(Some(
                B::new("stream:error")
                    .a("code", "401")
                    .kids([B::new("conflict").a("type", "device_removed").build()])
                    .build(),
            ));
        }
    }
    Ok(())
}

/// Sends a stream error to a connected device and closes its socket.
/// `code` is `"515"` (restart, client reconnects), `"conflict"` (replaced by
/// another session) or any numeric stream-error code.
pub(crate) fn stream_error(net: &Net, jid: &str, code: &str) -> Result<(), AdminError> {
    let node = match code {
        "conflict" | "replaced" => B::new("stream:error")
            .kids([B::new("conflict").a("type", "replaced").build()])
            .build(),
        c if !c.is_empty() && c.chars().all(|ch| ch.is_ascii_digit()) => {
            B::new("stream:error").a("code", c.to_string()).build()
        }
        _ => {
            return Err(AdminError::BadRequest(
                "code must be \"515\", \"conflict\" or a number".into(),
            ));
        }
    };
    let key = dev_key(net, jid)?;
    let mut st = net.lock();
    let Some(dev) = st.devices.get_mut(&key) else {
        return Err(AdminError::NotFound(format!("unknown device {jid}")));
    };
    let Some(conn) = dev.conn.take() else {
        return Err(AdminError::NotFound(format!("{jid} is not connected")));
    };
    dev.active = false;
    conn.close(Some(node));
    Ok(())
}

/// Applies fault settings and returns the resulting full settings.
pub(crate) fn set_faults(net: &Net, f: &FaultSettings) -> FaultSettings {
    if let Some(r) = f.refuse_connections {
        net.faults.refuse_connections.store(r, Ordering::Relaxed);
    }
    if let Some(l) = f.latency_ms {
        net.faults
            .latency_ms
            .store(l.min(60_000), Ordering::Relaxed);
    }
    get_faults(net)
}

pub(crate) fn get_faults(net: &Net) -> FaultSettings {
    FaultSettings {
        refuse_connections: Some(net.faults.refuse_connections.load(Ordering::Relaxed)),
        latency_ms: Some(net.faults.latency_ms.load(Ordering::Relaxed)),
        refused_count: Some(net.faults.refused.load(Ordering::Relaxed)),
    }
}

/// One participant in [`GroupState`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupMemberState {
    /// Phone number (digits only).
    pub phone: String,
    /// The phone's LID (digits only), what a LID-addressed group names it by.
    pub lid: String,
    /// `superadmin` (the creator while admin), `admin` or `participant`.
    pub role: String,
}

/// A group as the mock server holds it (`GET /admin/groups/{id}`), for tests
/// that check what a client did without going through another client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GroupState {
    /// Group JID, e.g. `120363000000000001@g.us`.
    pub id: String,
    pub subject: String,
    pub description: Option<String>,
    /// Creator's phone number.
    pub creator: String,
    pub participants: Vec<GroupMemberState>,
    /// Only admins may send messages.
    pub announce: bool,
    /// Only admins may edit the group info.
    pub locked: bool,
    pub membership_approval: bool,
    /// `admin_add` or `all_member_add`.
    pub member_add_mode: String,
    /// `admin_share` / `all_member_share`, once set.
    pub member_share_history_mode: Option<String>,
    /// Current invite code (`https://chat.whatsapp.com/<code>`).
    pub invite_code: String,
    /// Phones with a pending join request, oldest first.
    pub join_requests: Vec<String>,
    /// Current picture id, if any.
    pub picture_id: Option<String>,
    /// `"pn"` or `"lid"`.
    pub addressing_mode: String,
}

/// Groups to create outside the protocol (`POST /admin/groups`), e.g. to
/// give a session hundreds of groups for a refresh benchmark.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SeedGroups {
    /// Subject; with `count > 1` each group gets ` #N` appended.
    pub subject: String,
    /// Creator's phone (first admin). Unknown phones are created.
    pub creator: String,
    /// Other members' phones.
    #[serde(default)]
    pub participants: Vec<String>,
    /// Members (among `participants`) who start as admins.
    #[serde(default)]
    pub admins: Vec<String>,
    /// How many identical groups to create (default 1, at most 5,000).
    #[serde(default)]
    pub count: Option<u32>,
    /// Send members the `create` notification (default false: clients see
    /// the groups on their next `participating` refresh).
    #[serde(default)]
    pub notify: bool,
    /// `"pn"` (default) or `"lid"`: a LID-addressed group names its members by
    /// LID with their `phone_number` in every stanza, as WhatsApp's LID groups do.
    #[serde(default)]
    pub addressing_mode: Option<String>,
}

fn group_state(id: &str, g: &crate::state::Group, st: &crate::state::State) -> GroupState {
    GroupState {
        id: Jid::group(id.to_string()).to_string(),
        subject: g.subject.clone(),
        description: g.description.as_ref().map(|(_, b)| b.clone()),
        creator: g.creator.clone(),
        participants: g
            .members
            .iter()
            .map(|m| GroupMemberState {
                phone: m.phone.clone(),
                lid: st
                    .phones
                    .get(&m.phone)
                    .map(|p| p.lid.clone())
                    .unwrap_or_default(),
                role: match (m.admin, m.phone == g.creator) {
                    (true, true) => "superadmin",
                    (true, false) => "admin",
                    (false, _) => "participant",
                }
                .to_string(),
            })
            .collect(),
        announce: g.announce,
        locked: g.locked,
        membership_approval: g.membership_approval,
        member_add_mode: g.member_add_mode.to_string(),
        member_share_history_mode: g.share_history_mode.map(str::to_string),
        invite_code: g.invite.clone(),
        join_requests: g.requests.iter().map(|r| r.phone.clone()).collect(),
        picture_id: g
            .picture
            .as_ref()
            .filter(|p| st.media.contains_key(&p.path))
            .map(|p| p.id.clone()),
        addressing_mode: if g.lid_addressed { "lid" } else { "pn" }.to_string(),
    }
}

/// The group with this JID (`120363…@g.us`) or bare id.
pub(crate) fn group(net: &Net, jid: &str) -> Result<GroupState, AdminError> {
    let id = jid.split('@').next().unwrap_or_default();
    let st = net.lock();
    st.groups
        .get(id)
        .map(|g| group_state(id, g, &st))
        .ok_or_else(|| AdminError::NotFound(format!("unknown group {jid}")))
}

/// Every group, in creation order.
pub(crate) fn groups(net: &Net) -> Vec<GroupState> {
    let st = net.lock();
    let mut ids: Vec<&String> = st.groups.keys().collect();
    ids.sort_unstable_by(|a, b| a.len().cmp(&b.len()).then(a.cmp(b)));
    ids.into_iter()
        .filter_map(|id| st.groups.get(id).map(|g| group_state(id, g, &st)))
        .collect()
}

/// Creates `count` groups; returns their JIDs.
pub(crate) fn seed_groups(net: &Net, s: &SeedGroups) -> Result<Vec<String>, AdminError> {
    check_phone(&s.creator)?;
    for p in s.participants.iter().chain(&s.admins) {
        check_phone(p)?;
    }
    let lid_addressed = match s.addressing_mode.as_deref() {
        None | Some("pn") => false,
        Some("lid") => true,
        Some(other) => {
            return Err(AdminError::BadRequest(format!(
                "addressingMode must be \"pn\" or \"lid\", got {other:?}"
            )));
        }
    };
    let count = s.count.unwrap_or(1);
    if !(1..=5000).contains(&count) {
        return Err(AdminError::BadRequest("count must be 1-5000".into()));
    }
    let mut st = net.lock();
    for p in std::iter::once(&s.creator).chain(&s.participants) {
        st.ensure_phone(p, "");
    }
    let mut out = Vec::with_capacity(count as usize);
    for i in 1..=count {
        let subject = if count > 1 {
            format!("{} #{i}", s.subject)
        } else {
            s.subject.clone()
        };
        let id = crate::groups::seed(
            &mut st,
            &subject,
            &s.creator,
            (&s.participants, &s.admins),
            lid_addressed,
            s.notify,
        );
        out.push(Jid::group(id).to_string());
    }
    Ok(out)
}

/// `POST /admin/phones/{phone}/profile`: absent fields are left unchanged, `""` removes.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProfileBody {
    /// The about ("status") text.
    #[serde(default)]
    pub(crate) about: Option<String>,
    /// The profile picture, base64 (a JPEG).
    #[serde(default)]
    pub(crate) picture: Option<String>,
}

impl ProfileBody {
    /// The picture's bytes (`Some(vec![])` for `""`).
    pub(crate) fn picture_bytes(&self) -> Result<Option<Vec<u8>>, AdminError> {
        use base64::Engine as _;
        self.picture
            .as_deref()
            .map(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b)
                    .map_err(|e| AdminError::BadRequest(format!("picture is not base64: {e}")))
            })
            .transpose()
    }
}

/// Sets a phone's about text and/or picture (the phone is created if new).
pub(crate) fn set_profile(
    net: &Net,
    phone: &str,
    about: Option<String>,
    picture: Option<Vec<u8>>,
) -> Result<(), AdminError> {
    check_phone(phone)?;
    let mut st = net.lock();
    crate::contacts::set_profile(&mut st, phone, about, picture).map_err(AdminError::BadRequest)
}

/// The phones `phone` blocked, sorted.
pub(crate) fn blocklist(net: &Net, phone: &str) -> Vec<String> {
    crate::contacts::blocklist(&net.lock(), phone)
}

/// Seeds (replaces) the chats `phone` already has; creates the phone and its peers if new.
pub(crate) fn seed_history(
    net: &Net,
    phone: &str,
    history: crate::history::SeedHistory,
) -> Result<(), AdminError> {
    check_phone(phone)?;
    let chats = &history.chats;
    for c in chats {
        check_phone(&c.phone)?;
    }
    let mut st = net.lock();
    st.ensure_phone(phone, "");
    for c in chats {
        st.ensure_phone(&c.phone, c.push_name.as_deref().unwrap_or(""));
    }
    st.book.history.insert(phone.to_string(), history);
    Ok(())
}

/// The phone's decoded app state (empty for an unknown phone).
pub(crate) fn app_state(net: &Net, phone: &str) -> crate::appstate::AppStateView {
    crate::appstate::view(&net.lock(), phone)
}

/// The phone pushes an app-state mutation to its companions.
pub(crate) fn phone_action(
    net: &Net,
    phone: &str,
    action: &crate::appstate::PhoneAction,
) -> Result<u64, AdminError> {
    check_phone(phone)?;
    let mut st = net.lock();
    if !st.phones.contains_key(phone) {
        return Err(AdminError::NotFound(format!("unknown phone {phone}")));
    }
    crate::appstate::phone_push(&mut st, phone, action)
        .map_err(|e| AdminError::Internal(format!("{e:#}")))
}
