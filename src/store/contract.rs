//! The storage contract: what every backend must do, and the data that crosses it.
//!
//! Owns: the traits each backend implements ([`StoreBackend`] for the main store,
//! [`MessageBackend`] and [`OutboxBackend`] for one session's data), the error type, and
//! the row / query / domain types that travel with them (so `messages/` and `events/`
//! import them from `store` and no import circle appears). Re-exported by `store/mod.rs`;
//! the types live as long as the values using them.
//!
//! A new per-session concern (media index, contacts, group cache, …) is one trait here plus
//! one file per backend (`store/sqlite/<concern>.rs`, `store/mongo/<concern>.rs`) and one
//! accessor on [`super::SessionStore`].
//!
//! The traits use native `async fn` (no `async_trait`) and are only ever called through the
//! concrete dispatch types of `store/mod.rs`, so the `Send`-ness of their futures is known.

#![allow(async_fn_in_trait)]

use serde::Serialize;

use crate::model::groups::Group;
use crate::model::message::WAMessage;
use crate::model::session::{MeInfo, RetryPolicy, SessionConfig};

/// Errors of the storage layer. Carries data, never WAHA wording (that is `api/error.rs`).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An insert hit an existing key (e.g. creating a session twice).
    #[error("record already exists: {0}")]
    AlreadyExists(String),
    /// The backend could not be reached or answered with an error.
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// Stored data could not be decoded (a corrupt or foreign row).
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Anything else from the backend.
    #[error("storage error: {0}")]
    Backend(String),
}

/// Result alias of the storage layer.
pub type Result<T> = std::result::Result<T, Error>;

/// A persisted session: its name (the id) and its WAHA `SessionConfig`.
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// Session name (checked by the store as a `model::name::SessionName` before it becomes
    /// a folder or a database).
    pub name: String,
    /// The full `SessionConfig` as last saved (PUT replaces it whole); `None` = no config.
    pub config: Option<SessionConfig>,
}

/// Where the data lives: main database names and the per-session naming rule.
#[derive(Debug, Clone)]
pub struct Namespaces {
    /// `WAHA_NAMESPACE`, e.g. `gows` → Mongo database `waha_gows`, folder `.sessions/gows`.
    pub main: String,
    /// `WAHA_SESSION_NAMESPACE`, e.g. `gows` → `waha_gows_{session}`.
    pub session: String,
}

impl Namespaces {
    /// MongoDB database of the main store: `waha_{namespace}`.
    pub fn main_db(&self) -> String {
        format!("waha_{}", self.main)
    }
    /// MongoDB database of one session: `waha_{session_namespace}_{session}`.
    pub fn session_db(&self, session: &str) -> String {
        format!("waha_{}_{}", self.session, session)
    }
}

/// What the main store must do. Called only through [`super::Store`]'s static dispatch.
pub trait StoreBackend {
    /// Cheap liveness probe for `/health`.
    async fn ping(&self) -> Result<()>;
    /// All stored sessions, ordered by name.
    async fn list_sessions(&self) -> Result<Vec<SessionRecord>>;
    /// One session, or `None`.
    async fn get_session(&self, name: &str) -> Result<Option<SessionRecord>>;
    /// Insert a new session; [`Error::AlreadyExists`] when the name is taken (atomic).
    async fn insert_session(&self, record: &SessionRecord) -> Result<()>;
    /// Insert or fully replace a session's config.
    async fn upsert_session(&self, record: &SessionRecord) -> Result<()>;
    /// Remove the session's config, `me`, worker row and api keys bound to it, drop its
    /// per-session database/folder and forget every per-session cache (connections, index
    /// memos). Idempotent.
    async fn delete_session(&self, name: &str) -> Result<()>;
    /// Stored account info of a session (set once the session is authenticated).
    async fn get_me(&self, name: &str) -> Result<Option<MeInfo>>;
    /// The stored account info of every session that has one, by session name: one read
    /// for a whole listing (`GET /api/sessions`), instead of one per session.
    async fn list_me(&self) -> Result<std::collections::HashMap<String, MeInfo>>;
    /// Save or clear (`None`) the account info of a session.
    async fn set_me(&self, name: &str, me: Option<&MeInfo>) -> Result<()>;
    /// Mark the session as running on `worker` (WAHA's `session_worker`).
    async fn assign_worker(&self, name: &str, worker: &str) -> Result<()>;
    /// Remove the session's assignment to `worker` (only that worker's row).
    async fn unassign_worker(&self, name: &str, worker: &str) -> Result<()>;
    /// Sessions assigned to `worker`, ordered by name — restored on boot.
    async fn sessions_of_worker(&self, worker: &str) -> Result<Vec<String>>;
    /// Drop the per-session database/folder only (and its caches), keeping config.
    async fn drop_session_data(&self, name: &str) -> Result<()>;
    /// Remove only the WhatsApp credentials of a session (logout, unlink): SQLite's
    /// `whatsapp.db*` files, MongoDB's `wa_*` collections. Messages and undelivered
    /// webhooks stay. Idempotent.
    async fn wipe_credentials(&self, name: &str) -> Result<()>;
    /// Names whose per-session data (a folder holding files, or a database) exists while
    /// the main store knows no such session and no delete of it is pending: the main
    /// store lost them (a missing `-wal` file, an older copy restored). Sorted.
    async fn orphans(&self) -> Result<Vec<String>>;
}

// ---------------------------------------------------------------------------------------
// API keys (WAHA's `api_key` table / collection in the main store)

/// What a session-scoped key may do (WAHA's `SessionActionsDTO`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct KeyActions {
    /// Read session data (messages, chats, contacts, the session itself).
    pub read: bool,
    /// Send messages and manage session entities.
    pub send: bool,
    /// Lifecycle: start, stop, restart, logout, pairing.
    pub control: bool,
    /// Session config and webhooks.
    pub setting: bool,
    /// Apps.
    pub app: bool,
    /// Delete the session.
    pub delete: bool,
}

impl KeyActions {
    /// WAHA's defaults when a session key is created with `actions: null`: everything but
    /// `delete`.
    pub const DEFAULT: Self = Self {
        read: true,
        send: true,
        control: true,
        setting: true,
        app: true,
        delete: false,
    };
    /// Nothing (WAHA's media-download-only key).
    pub const NONE: Self = Self {
        read: false,
        send: false,
        control: false,
        setting: false,
        app: false,
        delete: false,
    };
}

/// One stored API key. `key` is what the `"key"` column holds: `sha256:<hex>` for every
/// key wharf writes; a plaintext `key_…` only in rows written by WAHA (rehashed in place on
/// first use).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    /// `key_id_…`.
    pub id: String,
    /// The stored form of the key (see above); never shown by the API.
    pub key: String,
    /// Inactive keys authenticate nobody.
    pub is_active: bool,
    /// Admin keys can do everything (and have no session).
    pub is_admin: bool,
    /// The one session a non-admin key is bound to.
    pub session: Option<String>,
    /// What a session key may do; `None` = [`KeyActions::DEFAULT`].
    pub actions: Option<KeyActions>,
}

/// What the main store must do with API keys. Called only through [`super::Store`].
pub trait KeyBackend {
    /// Every key, ordered by id.
    async fn list_keys(&self) -> Result<Vec<ApiKeyRecord>>;
    /// One key by id.
    async fn get_key(&self, id: &str) -> Result<Option<ApiKeyRecord>>;
    /// The key whose stored `"key"` column equals `stored` (a unique index serves it).
    async fn find_key(&self, stored: &str) -> Result<Option<ApiKeyRecord>>;
    /// Inserts a key; [`Error::AlreadyExists`] when its id or key is taken.
    async fn insert_key(&self, record: &ApiKeyRecord) -> Result<()>;
    /// Inserts or fully replaces the key with `record.id` (`"key"` column included).
    async fn upsert_key(&self, record: &ApiKeyRecord) -> Result<()>;
    /// Removes a key; `false` when there was none.
    async fn delete_key(&self, id: &str) -> Result<bool>;
}

// ---------------------------------------------------------------------------------------
// Message history

/// Sort direction (WAHA's `sortOrder`: `desc` = new first, the default here).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum SortOrder {
    /// Oldest / A first.
    Asc,
    /// Newest / Z first.
    #[default]
    Desc,
}

/// Filters and paging of a message listing (WAHA's `GetChatMessagesQuery`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageQuery {
    /// At most this many messages; `None` = all.
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
    /// By `timestamp` (ties by id, so pages never overlap).
    pub sort_order: SortOrder,
    /// `filter.timestamp.gte` (inclusive, unix seconds).
    pub timestamp_gte: Option<i64>,
    /// `filter.timestamp.lte` (inclusive, unix seconds).
    pub timestamp_lte: Option<i64>,
    /// `filter.fromMe`.
    pub from_me: Option<bool>,
    /// `filter.ack` (the code; see `model::message::ack`).
    pub ack: Option<i32>,
}

/// Sort key of a chat listing (WAHA's `ChatSortField`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ChatSortBy {
    /// Last message time (`conversationTimestamp`); the default.
    #[default]
    ConversationTimestamp,
    /// Chat id.
    Id,
    /// Chat name (chats without a name sort first ascending).
    Name,
}

/// Paging of a chat listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChatQuery {
    /// At most this many chats; `None` = all.
    pub limit: Option<u32>,
    /// Skip this many first.
    pub offset: u32,
    /// Sort key (ties by id).
    pub sort_by: ChatSortBy,
    /// Sort direction.
    pub sort_order: SortOrder,
    /// Only these chat ids (the overview's `ids` filter); `None` = every chat.
    pub ids: Option<Vec<String>>,
}

/// A chat as the store knows it: built from the messages saved in it.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRow {
    /// Chat id (`…@c.us`, `…@g.us`, …).
    pub id: String,
    /// Display name, when known (the peer's push name, or a name set explicitly).
    pub name: Option<String>,
    /// Timestamp of the newest message (unix seconds; 0 = none yet).
    pub conversation_timestamp: i64,
    /// The newest message as currently stored (acks, edits and revokes included), or
    /// `None` once purged.
    pub last_message: Option<WAMessage>,
}

/// The chat name a message teaches us: the sender's push name in a one-to-one chat.
/// (Our own push name on `fromMe` messages, or a member's in a group, is not the chat's.)
/// Part of the contract: both backends name chats by this rule on [`MessageBackend::save`].
pub(crate) fn chat_name(msg: &WAMessage) -> Option<String> {
    let chat = msg.chat_id();
    if msg.from_me || !(chat.ends_with("@c.us") || chat.ends_with("@lid")) {
        return None;
    }
    msg.push_name()
}

/// One session's message history. See `messages::MessageStore` for the semantics each
/// method promises (the facade documents them for its callers).
pub trait MessageBackend {
    /// Insert or replace by WAHA id, never lowering a stored ack; updates the chat row.
    async fn save(&self, msg: &WAMessage) -> Result<()>;
    /// Names a chat, creating its row if needed.
    async fn set_chat_name(&self, chat_id: &str, name: &str) -> Result<()>;
    /// Advances the ack of every message with `wa_id`; returns the newest one afterwards.
    async fn set_ack(&self, wa_id: &str, ack: i32) -> Result<Option<WAMessage>>;
    /// One message by WAHA id.
    async fn get(&self, id: &str) -> Result<Option<WAMessage>>;
    /// The newest message with this raw WhatsApp id.
    async fn find_by_wa_id(&self, wa_id: &str) -> Result<Option<WAMessage>>;
    /// Replaces the body of the newest message with `wa_id`; returns it as edited.
    async fn edit(&self, wa_id: &str, new_body: &str) -> Result<Option<WAMessage>>;
    /// Marks the newest message with `wa_id` revoked; returns it as it was before.
    async fn revoke(&self, wa_id: &str) -> Result<Option<WAMessage>>;
    /// Messages of one chat, filtered, sorted and paged.
    async fn list(&self, chat_id: &str, q: &MessageQuery) -> Result<Vec<WAMessage>>;
    /// Chats with their last message, sorted and paged.
    async fn chats(&self, q: &ChatQuery) -> Result<Vec<ChatRow>>;
    /// Marks unread incoming messages READ (newest first, bounded); returns them.
    async fn mark_read(
        &self,
        chat_id: &str,
        limit: Option<u32>,
        since_unix_s: Option<i64>,
    ) -> Result<Vec<WAMessage>>;
    /// Deletes messages (and chats) older than the cutoff; returns the messages deleted.
    async fn purge_older_than(&self, cutoff_unix_s: i64) -> Result<u64>;
    /// Deletes a chat's messages (and, with `chat_too`, the chat itself); returns the
    /// messages deleted.
    async fn delete_chat_messages(&self, chat_id: &str, chat_too: bool) -> Result<u64>;
}

// ---------------------------------------------------------------------------------------
// Webhook outbox

/// Retry policy of one outbox row (WAHA `RetriesConfiguration`, resolved to numbers by
/// `events::outbox::Retry::from_config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// constant, linear or exponential.
    pub policy: RetryPolicy,
    /// Base delay, ms (`delaySeconds` × 1000).
    pub delay_ms: u64,
    /// Attempts in all, at least 1.
    pub max_attempts: u32,
}

impl Retry {
    /// The stored spelling of the policy.
    pub(crate) fn policy_str(&self) -> &'static str {
        match self.policy {
            RetryPolicy::Constant => "constant",
            RetryPolicy::Linear => "linear",
            RetryPolicy::Exponential => "exponential",
        }
    }

    /// Reads a stored policy; anything unknown is WAHA's default, constant.
    pub(crate) fn parse_policy(s: &str) -> RetryPolicy {
        match s {
            "linear" => RetryPolicy::Linear,
            "exponential" => RetryPolicy::Exponential,
            _ => RetryPolicy::Constant,
        }
    }
}

/// An outbox row to append.
#[derive(Debug, Clone)]
pub struct NewRow {
    /// Envelope id (`evt_…`): the same on every redelivery.
    pub event_id: String,
    /// Event name.
    pub event: String,
    /// The exact body sent (and signed).
    pub body: String,
    /// Webhook URL.
    pub url: String,
    /// Custom headers, in order.
    pub headers: Vec<(String, String)>,
    /// HMAC-SHA512 key, if any.
    pub hmac_key: Option<String>,
    /// Retry policy.
    pub retry: Retry,
    /// Envelope timestamp, ms (also `X-Webhook-Timestamp`).
    pub created_ms: i64,
}

/// A stored outbox row.
#[derive(Debug, Clone)]
pub struct Row {
    /// Monotonic per session; delivery order.
    pub seq: i64,
    /// Everything appended.
    pub new: NewRow,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not before this time, ms.
    pub next_attempt_ms: i64,
    /// Last failure (status or network error).
    pub last_error: Option<String>,
}

/// A dead letter as the admin API lists it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetter {
    /// Outbox sequence number (the replay id).
    pub id: i64,
    /// Envelope id.
    pub event_id: String,
    /// Event name.
    pub event: String,
    /// Webhook URL.
    pub url: String,
    /// Attempts made.
    pub attempts: u32,
    /// Last failure.
    pub last_error: Option<String>,
    /// Event time, ms.
    pub created_at: i64,
}

/// One session's webhook outbox. See `events::outbox::Outbox` for the semantics.
pub trait OutboxBackend {
    /// Appends `rows` durably, in order, with consecutive seqs.
    async fn append(&self, rows: Vec<NewRow>) -> Result<()>;
    /// Up to `limit` pending rows for `url` with a seq above `after`, lowest seq first;
    /// `None` when the session's outbox is gone.
    async fn pending(&self, url: &str, after: i64, limit: usize) -> Result<Option<Vec<Row>>>;
    /// Removes delivered rows, in one write.
    async fn delivered(&self, seqs: Vec<i64>) -> Result<()>;
    /// Records a failed attempt; `dead` moves the row to the dead letters.
    async fn failed(
        &self,
        seq: i64,
        attempts: u32,
        next_attempt_ms: i64,
        error: &str,
        dead: bool,
    ) -> Result<()>;
    /// Distinct URLs with pending rows, in order of their oldest row.
    async fn pending_urls(&self) -> Result<Vec<String>>;
    /// Dead rows, lowest seq first.
    async fn dead(&self) -> Result<Vec<DeadLetter>>;
    /// Dead → pending (all, or seq `id`), attempts reset, due at `now_ms`. Returns how many
    /// and their distinct URLs.
    async fn replay(&self, id: Option<i64>, now_ms: i64) -> Result<(u64, Vec<String>)>;
}

// ---------------------------------------------------------------------------------------
// Group cache

/// What `GET /api/{session}/groups` sorts by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum GroupSortBy {
    /// Group id.
    #[default]
    Id,
    /// Group name.
    Subject,
}

/// A page of the group cache.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GroupQuery {
    /// At most this many (`None` = all).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: u32,
    /// Sort key (ties by id).
    pub sort_by: GroupSortBy,
    /// Direction.
    pub sort_order: SortOrder,
}

/// One session's group cache: the groups the session is in, as last read from WhatsApp or
/// patched from its notifications, so that listing does not query WhatsApp each time.
/// Every write is whole-group (a group is replaced, never half-updated).
pub trait GroupBackend {
    /// Inserts or replaces these groups.
    async fn upsert_groups(&self, groups: &[Group]) -> Result<()>;
    /// Makes the cache exactly `groups` (a full refresh: groups not listed are removed).
    async fn replace_groups(&self, groups: &[Group]) -> Result<()>;
    /// One group.
    async fn get_group(&self, id: &str) -> Result<Option<Group>>;
    /// A page of groups.
    async fn list_groups(&self, q: &GroupQuery) -> Result<Vec<Group>>;
    /// How many groups.
    async fn count_groups(&self) -> Result<u64>;
    /// Forgets a group (we left it or were removed); `true` when it was there.
    async fn delete_group(&self, id: &str) -> Result<bool>;
}

// ---------------------------------------------------------------------------------------
// Contacts and LIDs

/// What `GET /api/contacts/all` sorts by (WAHA's `sortBy`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ContactSortBy {
    /// Contact id.
    #[default]
    Id,
    /// Display name (the saved name, else the push name; unnamed contacts sort first).
    Name,
}

/// A page of the contact store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactQuery {
    /// At most this many (`None` = all).
    pub limit: Option<u32>,
    /// Skip this many.
    pub offset: u32,
    /// Sort key (ties by id).
    pub sort_by: ContactSortBy,
    /// Direction.
    pub sort_order: SortOrder,
}

/// A contact as the session learnt it. Ids are WAHA ids (`…@c.us` or `…@lid`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactRecord {
    /// `…@c.us` or `…@lid`.
    pub id: String,
    /// The name saved for it (`PUT /contacts/{chatId}`: first + last name).
    pub name: Option<String>,
    /// The push name it last announced.
    pub pushname: Option<String>,
    /// Blocked by this account (as last set through the API or read from WhatsApp).
    pub is_blocked: bool,
    /// Known to be on WhatsApp (an answer, a message or a group membership said so).
    pub is_wa_contact: bool,
    /// Cached profile picture URL (`None` = none, or never fetched).
    pub picture_url: Option<String>,
    /// When the picture was last fetched (unix s); `None` = never.
    pub picture_at: Option<i64>,
}

/// What one observation teaches about a contact: `Some` fields overwrite, `None` keep.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactPatch {
    /// `…@c.us` or `…@lid`.
    pub id: String,
    /// A saved name.
    pub name: Option<String>,
    /// A push name.
    pub pushname: Option<String>,
    /// Blocked or not.
    pub is_blocked: Option<bool>,
    /// Seen on WhatsApp (`Some(true)`), or reported absent.
    pub is_wa_contact: Option<bool>,
    /// A fetched picture: its URL (`None` = it has none) and the fetch time (unix s).
    pub picture: Option<(Option<String>, i64)>,
}

/// One LID ↔ phone-number pair, as WAHA ids (`…@lid`, `…@c.us`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LidPair {
    /// `…@lid`.
    pub lid: String,
    /// `…@c.us`.
    pub pn: String,
}

/// One session's contacts and LID map, fed by what the session sees (push names,
/// `is_on_whatsapp` answers, group participant lists, message addressing) and by the
/// contacts API. A LID maps to one phone number and back: a newer pair replaces an older
/// pair that shares either side.
pub trait ContactBackend {
    /// Applies these patches (each one contact, created if new), in order.
    async fn merge_contacts(&self, patches: &[ContactPatch]) -> Result<()>;
    /// One contact.
    async fn get_contact(&self, id: &str) -> Result<Option<ContactRecord>>;
    /// A page of contacts.
    async fn list_contacts(&self, q: &ContactQuery) -> Result<Vec<ContactRecord>>;
    /// Records LID ↔ phone-number pairs.
    async fn upsert_lids(&self, pairs: &[LidPair]) -> Result<()>;
    /// The pair of a LID (`…@lid`).
    async fn lid_by_lid(&self, lid: &str) -> Result<Option<LidPair>>;
    /// The pair of a phone number (`…@c.us`).
    async fn lid_by_pn(&self, pn: &str) -> Result<Option<LidPair>>;
    /// A page of pairs, by LID.
    async fn list_lids(&self, limit: Option<u32>, offset: u32) -> Result<Vec<LidPair>>;
    /// How many pairs.
    async fn count_lids(&self) -> Result<u64>;
}

/// One session's labels and which chats carry them, kept in step with the account's
/// app state (what WhatsApp's devices share), so listing needs no WhatsApp query.
pub trait LabelBackend {
    /// Inserts or replaces a label.
    async fn upsert_label(&self, label: &crate::model::labels::Label) -> Result<()>;
    /// One label.
    async fn get_label(&self, id: &str) -> Result<Option<crate::model::labels::Label>>;
    /// Every label, by numeric id.
    async fn list_labels(&self) -> Result<Vec<crate::model::labels::Label>>;
    /// Forgets a label and its chats; `true` when it was there.
    async fn delete_label(&self, id: &str) -> Result<bool>;
    /// Puts the label on the chat (`on`) or takes it off; `true` when that changed anything.
    async fn set_label_chat(&self, label: &str, chat: &str, on: bool) -> Result<bool>;
    /// The chats carrying a label, sorted.
    async fn label_chats(&self, label: &str) -> Result<Vec<String>>;
    /// The labels on a chat (ids), sorted.
    async fn chat_labels(&self, chat: &str) -> Result<Vec<String>>;
}
