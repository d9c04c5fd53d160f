//! One task per client websocket: Noise handshake, registration or login,
//! then the node loop that feeds [`crate::proto`] and writes whatever the rest
//! of the network queues for this device.
//!
//! Spawned by [`crate::server`] for each `/ws/chat` upgrade; lives until the
//! socket closes, the network asks it to close (admin calls, stream errors,
//! unlink) or the network shuts down. Malformed input ends only this task.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_websockets::{Message, WebSocketStream};
use wacore_binary::Node;

use crate::noise::{FrameReader, Transport, XxResponder};
use crate::state::{ConnHandle, DevKey, Net, OUTBOUND_CAP, Out, PendingQr, RegData, now};
use crate::wire::{B, attr, child, lid_jid, server_jid};

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(20);
/// How many QR refs a registering client gets (the real server sends six).
const QR_REFS: usize = 6;

type Ws = WebSocketStream<TcpStream>;

/// Who is on the other end of this connection.
pub(crate) enum Role {
    /// Unpaired companion waiting for a QR scan or pairing code.
    Registering,
    /// Logged-in companion device.
    Device(DevKey),
}

/// Per-connection context handed to protocol handlers.
pub(crate) struct Conn {
    pub(crate) net: Arc<Net>,
    pub(crate) handle: ConnHandle,
    pub(crate) role: Role,
    pub(crate) noise_pub: [u8; 32],
    pub(crate) reg: RegData,
}

/// What a handler wants the connection loop to do.
#[derive(Default)]
pub(crate) struct Flow {
    pub(crate) replies: Vec<Node>,
    /// Close after writing `replies`.
    pub(crate) close: bool,
}

impl Flow {
    pub(crate) fn reply(node: Node) -> Self {
        Flow {
            replies: vec![node],
            close: false,
        }
    }
}

/// Entry point for an upgraded websocket.
pub(crate) async fn serve(net: Arc<Net>, ws: Ws) {
    if let Err(e) = run(net, ws).await {
        tracing::debug!("mockwa connection ended: {e:#}");
    }
}

async fn next_frame(ws: &mut Ws, reader: &mut FrameReader) -> Result<bytes::BytesMut> {
    loop {
        if let Some(f) = reader.next_frame()? {
            return Ok(f);
        }
        match ws.next().await {
            Some(Ok(m)) if m.is_binary() => reader.feed(m.as_payload())?,
            Some(Ok(m)) if m.is_close() => bail!("closed during handshake"),
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(e.into()),
            None => bail!("eof during handshake"),
        }
    }
}

async fn write_node(net: &Net, ws: &mut Ws, tp: &mut Transport, node: &Node) -> Result<()> {
    let latency = net.faults.latency_ms.load(Ordering::Relaxed);
    if latency > 0 {
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
    let bytes = tp.encode(node)?;
    ws.send(Message::binary(bytes)).await?;
    Ok(())
}

async fn run(net: Arc<Net>, mut ws: Ws) -> Result<()> {
    let mut reader = FrameReader::new();
    let hello = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_frame(&mut ws, &mut reader))
        .await
        .context("handshake timeout")??;
    let (responder, server_hello) =
        XxResponder::respond(&hello, &net.server_static, &net.cert_chain)?;
    ws.send(Message::binary(server_hello)).await?;
    let finish = tokio::time::timeout(HANDSHAKE_TIMEOUT, next_frame(&mut ws, &mut reader))
        .await
        .context("handshake timeout")??;
    let hs = responder.finish(&finish)?;
    let mut tp = hs.transport;

    let (tx, mut rx) = mpsc::channel(OUTBOUND_CAP);
    let handle = ConnHandle {
        id: net.conn_id(),
        tx,
    };
    let mut conn = Conn {
        net: net.clone(),
        handle,
        role: Role::Registering,
        noise_pub: hs.client_static,
        reg: RegData::default(),
    };
    let start = conn.start(&hs.payload);
    let result = async {
        for n in &start.replies {
            write_node(&net, &mut ws, &mut tp, n).await?;
        }
        if start.close {
            return Ok(());
        }
        loop {
            if net.is_shutdown.load(Ordering::Relaxed) {
                return Ok(());
            }
            tokio::select! {
                msg = ws.next() => {
                    let m = match msg {
                        None => return Ok(()),
                        Some(Err(e)) => return Err(e.into()),
                        Some(Ok(m)) => m,
                    };
                    if m.is_close() {
                        return Ok(());
                    }
                    if !m.is_binary() {
                        continue;
                    }
                    reader.feed(m.as_payload())?;
                    while let Some(f) = reader.next_frame()? {
                        let node = tp.decode(f)?;
                        let flow = crate::proto::handle(&mut conn, node);
                        for n in &flow.replies {
                            write_node(&net, &mut ws, &mut tp, n).await?;
                        }
                        if flow.close {
                            return Ok(());
                        }
                    }
                }
                out = rx.recv() => match out {
                    Some(Out::Node(n)) => write_node(&net, &mut ws, &mut tp, &n).await?,
                    Some(Out::Close(n)) => {
                        if let Some(n) = n {
                            write_node(&net, &mut ws, &mut tp, &n).await?;
                        }
                        return Ok(());
                    }
                    None => return Ok(()),
                },
                _ = net.shutdown.notified() => return Ok(()),
            }
        }
    }
    .await;
    conn.cleanup();
    let _ = ws.close().await;
    result
}

impl Conn {
    /// Decides registration vs login from the ClientPayload.
    fn start(&mut self, payload: &waproto::whatsapp::ClientPayload) -> Flow {
        if let Some(pd) = payload.device_pairing_data.as_option() {
            self.reg = RegData {
                registration: pd.e_regid.clone().unwrap_or_default(),
                identity: pd.e_ident.clone().unwrap_or_default(),
                skey_id: pd.e_skey_id.clone().unwrap_or_default(),
                skey_val: pd.e_skey_val.clone().unwrap_or_default(),
                skey_sig: pd.e_skey_sig.clone().unwrap_or_default(),
            };
            return self.start_registration();
        }
        let phone = payload.username.map(|u| u.to_string()).unwrap_or_default();
        let device = payload.device.unwrap_or(0);
        self.start_login(phone, device)
    }

    fn start_registration(&mut self) -> Flow {
        let mut st = self.net.lock();
        let refs: Vec<String> = (0..QR_REFS)
            .map(|_| format!("2@{}", crate::state::random_token(24)))
            .collect();
        for r in &refs {
            st.qr_refs.insert(r.clone(), self.handle.id);
        }
        st.qr_conns.insert(
            self.handle.id,
            PendingQr {
                conn: self.handle.clone(),
                noise_pub: self.noise_pub,
                reg: self.reg.clone(),
            },
        );
        let iq = B::new("iq")
            .a("from", server_jid())
            .a("type", "set")
            .a("xmlns", "md")
            .a("id", crate::state::random_token(8))
            .kids([B::new("pair-device")
                .kids(
                    refs.into_iter()
                        .map(|r| B::new("ref").bytes(r.into_bytes()).build()),
                )
                .build()])
            .build();
        Flow::reply(iq)
    }

    fn start_login(&mut self, phone: String, device: u32) -> Flow {
        let failure = || Flow {
            replies: vec![
                B::new("failure")
                    .a("reason", "401")
                    .a("location", "mockwa")
                    .build(),
            ],
            close: true,
        };
        let Ok(device) = u16::try_from(device) else {
            return failure();
        };
        let key: DevKey = (phone, device);
        let mut st = self.net.lock();
        let lid = match st.phones.get(&key.0) {
            Some(p) => p.lid.clone(),
            None => return failure(),
        };
        let Some(dev) = st.devices.get_mut(&key) else {
            return failure();
        };
        if !dev.registered || dev.noise_pub != self.noise_pub {
            return failure();
        }
        let replaced = dev.conn.take();
        let was_open = replaced.is_some();
        if let Some(old) = replaced {
            old.close(Some(
                B::new("stream:error")
                    .kids([B::new("conflict").a("type", "replaced").build()])
                    .build(),
            ));
        }
        dev.conn = Some(self.handle.clone());
        dev.active = false;
        crate::logins::record(&mut st, &key, was_open);
        let Some(dev) = st.devices.get_mut(&key) else {
            return failure();
        };
        self.role = Role::Device(key.clone());
        if dev.key_share_pending {
            dev.key_share_pending = false;
            let skey = dev.skey.clone().unwrap_or_else(|| {
                B::new("skey")
                    .kids([
                        B::new("id").bytes(dev.reg.skey_id.clone()).build(),
                        B::new("value").bytes(dev.reg.skey_val.clone()).build(),
                        B::new("signature").bytes(dev.reg.skey_sig.clone()).build(),
                    ])
                    .build()
            });
            let bundle = crate::signal::Bundle {
                registration: dev.reg.registration.clone(),
                identity: dev.reg.identity.clone(),
                skey,
                prekey: dev.prekeys.pop_front().map(|k| k.to_node()),
            };
            // A seeded phone sends its history right after the key share.
            let history: Vec<_> = crate::history::pushed(&mut st, &key.0)
                .into_iter()
                .collect();
            // Every companion gets the account's one key, so all of them
            // (and the phone) can read each other's app-state patches.
            let app_key = {
                let k = &crate::appstate::account(&mut st, &key.0).key;
                (k.id.clone(), k.data)
            };
            if let Some(phone) = st.phones.get(&key.0) {
                let account = phone.account.clone();
                let raw_id = phone.raw_id;
                let net = self.net.clone();
                let key = key.clone();
                tokio::spawn(async move {
                    match crate::signal::key_share_message(
                        &account, raw_id, &key.0, key.1, bundle, app_key, history,
                    )
                    .await
                    {
                        Ok(nodes) => {
                            let mut st = net.lock();
                            for node in nodes {
                                st.deliver(&key, node);
                            }
                        }
                        Err(e) => tracing::debug!("mockwa key share for {key:?} failed: {e:#}"),
                    }
                });
            }
        }
        let t = now();
        Flow::reply(
            B::new("success")
                .a("t", t.to_string())
                .a("lid", lid_jid(&lid, key.1))
                .a("location", "mockwa")
                .a("creation", t.to_string())
                .a("props", "1")
                .build(),
        )
    }

    /// Forgets this connection everywhere it is referenced.
    fn cleanup(&mut self) {
        let id = self.handle.id;
        let mut st = self.net.lock();
        if st.qr_conns.remove(&id).is_some() {
            st.qr_refs.retain(|_, c| *c != id);
        }
        st.pair_codes.retain(|_, p| p.conn.id != id);
        if let Some(key) = st.pairing.remove(&id)
            && st.devices.get(&key).is_some_and(|d| !d.registered)
        {
            st.devices.remove(&key);
        }
        if let Role::Device(key) = &self.role
            && let Some(dev) = st.devices.get_mut(key)
            && dev.conn.as_ref().is_some_and(|c| c.id == id)
        {
            dev.conn = None;
            dev.active = false;
            // The last socket of an "available" phone closing makes it
            // unavailable to its presence subscribers.
            let phone = key.0.clone();
            let still_connected = st
                .devices
                .iter()
                .any(|((p, _), d)| *p == phone && d.conn.is_some());
            if !still_connected && st.online.remove(&phone) {
                let node = B::new("presence")
                    .a("from", crate::wire::pn_jid(&phone, 0))
                    .a("type", "unavailable")
                    .a("last", now().to_string())
                    .build();
                let subs: Vec<DevKey> = st
                    .subscribers
                    .get(&phone)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                for s in subs {
                    st.deliver(&s, node.clone());
                }
            }
        }
    }

    /// The device this connection is logged in as, if any.
    pub(crate) fn device(&self) -> Option<&DevKey> {
        match &self.role {
            Role::Device(k) => Some(k),
            Role::Registering => None,
        }
    }
}

/// Convenience for handlers: the `id` attribute or empty.
pub(crate) fn id_of(n: &Node) -> String {
    attr(n, "id").unwrap_or_default()
}

/// Convenience for handlers: whether `n` has a child `tag`.
pub(crate) fn has(n: &Node, tag: &str) -> bool {
    child(n, tag).is_some()
}
