//! `mockwa`: a mock WhatsApp Web multi-device network for offline end-to-end
//! tests.
//!
//! It speaks the server side of the protocol real clients use (Noise XX over
//! a websocket, binary nodes), plays every phone's primary device (QR and
//! pairing-code linking, unlinking) and relays ciphertext between the
//! companion devices of different numbers: usync, prekey bundles, messages,
//! receipts, chatstates, presence, groups, media and an offline queue. It
//! never decrypts messages: both ends are real clients. Its only Signal use
//! is the phone's app-state key share to a newly linked companion.
//!
//! Start it in-process with [`MockNetwork::start`] or run the `mockwa` binary
//! (`mockwa --listen 127.0.0.1:0`). One port serves the websocket
//! (`/ws/chat`), the admin API (`/admin/...`, see README.md) and media.
//! Clients must be whatsapp-rust builds with `danger-skip-cert-chain-verify`
//! (the mock's Noise certificate is zero-signed).

mod admin;
mod appstate;
mod calls;
mod conn;
mod contacts;
mod directory;
mod groups;
mod history;
mod logins;
mod newsletter_media;
mod newsletters;
mod noise;
mod phone;
mod prekeys;
mod profile;
mod proto;
mod server;
mod signal;
mod state;
mod status;
mod wire;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

pub use admin::{AdminError, DeviceInfo, FaultSettings, GroupMemberState, GroupState, SeedGroups};
pub use appstate::{AppStateView, LabelChatState, LabelState, PhoneAction};
pub use calls::{CallState, PlaceCall};
pub use directory::Listing;
pub use history::{SeedChat, SeedHistory, SeedMessage};
pub use profile::ProfileState;

use state::Net;

/// A running mock network. Dropping it stops accepting and closes every
/// connection (without waiting); [`MockNetwork::shutdown`] also waits for the
/// accept loop to end.
pub struct MockNetwork {
    net: Arc<Net>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl MockNetwork {
    /// Binds `listen` (e.g. `"127.0.0.1:0"`) and starts serving on the
    /// current tokio runtime.
    pub async fn start(listen: &str) -> std::io::Result<MockNetwork> {
        let listener = tokio::net::TcpListener::bind(listen).await?;
        let addr = listener.local_addr()?;
        let net = Arc::new(Net::new(addr));
        let task = tokio::spawn(server::accept_loop(net.clone(), listener));
        Ok(MockNetwork {
            net,
            task: Some(task),
        })
    }

    /// The bound address (with the real port when started on port 0).
    pub fn addr(&self) -> SocketAddr {
        self.net.addr
    }

    /// `ws://HOST:PORT/ws/chat`, for `TokioWebSocketTransportFactory::with_url`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/ws/chat", self.net.addr)
    }

    /// `http://HOST:PORT/admin` (no trailing slash).
    pub fn admin_url(&self) -> String {
        format!("http://{}/admin", self.net.addr)
    }

    /// The phone `phone` (digits, no `+`; created if new, with push name
    /// `push_name`) scans the QR string a connected client shows. Returns the
    /// new device JID (`PHONE:N@s.whatsapp.net`); `NotFound` if no connected
    /// client shows that QR.
    pub fn scan_qr(&self, qr: &str, phone: &str, push_name: &str) -> Result<String, AdminError> {
        admin::scan_qr(&self.net, qr, phone, push_name)
    }

    /// The user of `phone` types `code` (`ABCD-EFGH`) that a client requested
    /// with `pair_with_code`. Waits for the client's `companion_finish` and
    /// returns the new device JID; `NotFound` if no client asked for a code
    /// for that phone or the code does not match.
    pub async fn pair_code(&self, phone: &str, code: &str) -> Result<String, AdminError> {
        admin::pair_code(&self.net, phone, code).await
    }

    /// All linked companion devices.
    pub fn devices(&self) -> Vec<DeviceInfo> {
        admin::devices(&self.net)
    }

    /// Other devices fetch `count` of `jid`'s key bundles, consuming its one-time prekeys
    /// as bundle fetches do; crossing the low mark (fewer than 5 left) sends the device the
    /// server's prekey-low notification once per upload. Returns the prekeys left.
    pub fn take_prekeys(&self, jid: &str, count: usize) -> Result<usize, AdminError> {
        admin::take_prekeys(&self.net, jid, count)
    }

    /// Drops the device's socket (no stream error); the client reconnects.
    pub fn disconnect(&self, jid: &str) -> Result<(), AdminError> {
        admin::disconnect(&self.net, jid)
    }

    /// The phone unlinks the device; a connected client is logged out.
    pub fn unlink(&self, jid: &str) -> Result<(), AdminError> {
        admin::unlink(&self.net, jid)
    }

    /// Sends `<stream:error>` (`"515"`, `"conflict"` or a numeric code) to a
    /// connected device and closes its socket.
    pub fn stream_error(&self, jid: &str, code: &str) -> Result<(), AdminError> {
        admin::stream_error(&self.net, jid, code)
    }

    /// Current fault settings (with `refused_count`).
    pub fn faults(&self) -> FaultSettings {
        admin::get_faults(&self.net)
    }

    /// Applies fault settings; returns the full resulting settings.
    pub fn set_faults(&self, faults: &FaultSettings) -> FaultSettings {
        admin::set_faults(&self.net, faults)
    }

    /// One group's server-side state (JID `120363…@g.us` or bare id).
    pub fn group(&self, jid: &str) -> Result<GroupState, AdminError> {
        admin::group(&self.net, jid)
    }

    /// Every group, in creation order.
    pub fn groups(&self) -> Vec<GroupState> {
        admin::groups(&self.net)
    }

    /// Creates groups outside the protocol; returns their JIDs.
    pub fn seed_groups(&self, seed: &SeedGroups) -> Result<Vec<String>, AdminError> {
        admin::seed_groups(&self.net, seed)
    }

    /// Sets a phone's about text and/or profile picture (JPEG bytes); `Some("")` /
    /// `Some(vec![])` removes it, `None` leaves it. Creates the phone if new.
    pub fn set_profile(
        &self,
        phone: &str,
        about: Option<&str>,
        picture: Option<Vec<u8>>,
    ) -> Result<(), AdminError> {
        admin::set_profile(&self.net, phone, about.map(str::to_string), picture)
    }

    /// Gives `phone` these chats (replacing earlier seeds): a companion linked to it
    /// afterwards receives them as its initial history sync.
    pub fn seed_history(&self, phone: &str, chats: Vec<SeedChat>) -> Result<(), AdminError> {
        let history = SeedHistory {
            chats,
            external: None,
        };
        admin::seed_history(&self.net, phone, history)
    }

    /// [`Self::seed_history`] with the delivery chosen: `external: Some(true)` puts the
    /// blob on the mock CDN whatever its size (see `src/history.rs`).
    pub fn seed_history_with(&self, phone: &str, history: SeedHistory) -> Result<(), AdminError> {
        admin::seed_history(&self.net, phone, history)
    }

    /// The phone numbers `phone` has blocked, sorted.
    pub fn blocklist(&self, phone: &str) -> Vec<String> {
        admin::blocklist(&self.net, phone)
    }

    /// The phone's decoded app state (archived/pinned/unread chats, labels).
    pub fn app_state(&self, phone: &str) -> AppStateView {
        admin::app_state(&self.net, phone)
    }

    /// The phone's user makes a change (archive a chat, create a label, …):
    /// the phone pushes an app-state patch to every companion. Returns the
    /// collection's new version.
    pub fn phone_action(&self, phone: &str, action: &PhoneAction) -> Result<u64, AdminError> {
        admin::phone_action(&self.net, phone, action)
    }

    /// Lists newsletter `id` (`123@newsletter`) in the channel directory: its country,
    /// categories and whether it is featured (`POST /admin/newsletters/{id}/directory`).
    pub fn list_newsletter(&self, id: &str, listing: Listing) -> Result<(), AdminError> {
        directory::list(&self.net, id, listing)
    }

    /// Stops accepting and closes every connection.
    pub async fn shutdown(mut self) {
        self.signal_shutdown();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }

    fn signal_shutdown(&self) {
        self.net.is_shutdown.store(true, Ordering::Relaxed);
        self.net.shutdown.notify_waiters();
    }
}

impl Drop for MockNetwork {
    fn drop(&mut self) {
        self.signal_shutdown();
    }
}
