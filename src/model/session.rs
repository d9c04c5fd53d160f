//! WAHA's session vocabulary: `SessionConfig` (the per-session settings users send and we
//! persist) with its webhook, proxy and ignore settings, `MeInfo`, and the
//! `WAHASessionStatus` values.
//!
//! Owns: the serde shapes (field names exactly as WAHA's spec, schema names for utoipa).
//! Used by the API (request/response bodies), the session manager and status machine,
//! the event bus (webhook settings, envelope `me`), the store and `config` (the global
//! webhook). Unknown fields are dropped on input, as WAHA's `ValidationPipe{whitelist}`
//! does. Plain data; lives as long as its owner.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Session settings (`SessionConfig` in WAHA's spec). Every field is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionConfig {
    /// Metadata for the session. You'll get 'metadata' in all webhooks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = json!({"user.id": "123", "user.email": "email@example.com"}))]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Proxy for this session (wins over `WHATSAPP_PROXY_SERVER`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ProxyConfig>,
    /// Per-session debug logging.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    /// Ignore some events related to specific chats.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore: Option<IgnoreConfig>,
    /// How the connected session renders in the phone's "Linked devices".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<ClientSessionConfig>,
    /// NOWEB-specific settings (accepted and echoed for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noweb: Option<NowebConfig>,
    /// GOWS-specific settings (accepted and echoed for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gows: Option<GowsConfig>,
    /// WebJS-specific settings (accepted and echoed for compatibility).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webjs: Option<WebjsConfig>,
    /// Webhooks of this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhooks: Option<Vec<WebhookConfig>>,
}

/// `ProxyConfig`: `server` is `host:port` without a scheme.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ProxyConfig {
    /// `host:port`.
    #[schema(example = "localhost:3128")]
    pub server: String,
    /// Optional proxy user.
    #[serde(default)]
    pub username: Option<String>,
    /// Optional proxy password.
    #[serde(default)]
    pub password: Option<String>,
}

/// `IgnoreConfig`: event sources to drop. `null` = use the `WAHA_SESSION_CONFIG_IGNORE_*` default.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IgnoreConfig {
    /// Ignore status@broadcast (stories) events.
    #[serde(default)]
    pub status: Option<bool>,
    /// Ignore group events.
    #[serde(default)]
    pub groups: Option<bool>,
    /// Ignore channel events.
    #[serde(default)]
    pub channels: Option<bool>,
    /// Ignore broadcast events (lists and status).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broadcast: Option<bool>,
}

/// `WAHA_SESSION_CONFIG_IGNORE_*` and `WAHA_CLIENT_*`: what a session's unset `ignore` and
/// `client` options become when it is created or updated (only the variables that are set).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SessionDefaults {
    /// Default `config.ignore` options.
    pub ignore: IgnoreConfig,
    /// Default `config.client` label.
    pub client: ClientSessionConfig,
}

impl SessionDefaults {
    /// `config` with every unset `ignore`/`client` option that has a default filled in; the
    /// stored config then shows what the session runs with.
    #[must_use]
    pub fn apply(&self, config: Option<SessionConfig>) -> Option<SessionConfig> {
        if *self == Self::default() {
            return config;
        }
        let mut config = config.unwrap_or_default();
        if self.ignore != IgnoreConfig::default() {
            let ignore = config.ignore.get_or_insert_with(IgnoreConfig::default);
            let d = &self.ignore;
            ignore.status = ignore.status.or(d.status);
            ignore.groups = ignore.groups.or(d.groups);
            ignore.channels = ignore.channels.or(d.channels);
            ignore.broadcast = ignore.broadcast.or(d.broadcast);
        }
        if self.client != ClientSessionConfig::default() {
            let client = config
                .client
                .get_or_insert_with(ClientSessionConfig::default);
            let d = &self.client;
            client.device_name = client.device_name.take().or_else(|| d.device_name.clone());
            client.browser_name = client
                .browser_name
                .take()
                .or_else(|| d.browser_name.clone());
        }
        Some(config)
    }
}

/// `ClientSessionConfig`: the label shown in Linked Devices, "Browser (Device)".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ClientSessionConfig {
    /// e.g. `MacOS`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_name: Option<String>,
    /// e.g. `Firefox`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub browser_name: Option<String>,
}

/// `NowebConfig` (accepted for compatibility with NOWEB clients).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NowebConfig {
    /// Mark the session as online when it connects.
    #[serde(default = "default_true")]
    pub mark_online: bool,
    /// NOWEB store settings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<NowebStoreConfig>,
}

fn default_true() -> bool {
    true
}

/// `NowebStoreConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct NowebStoreConfig {
    /// Enable the store for contacts, chats and messages.
    #[serde(default)]
    pub enabled: bool,
    /// Full sync on pairing.
    #[serde(default)]
    pub full_sync: bool,
}

/// `GowsConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GowsConfig {
    /// What to keep locally.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<GowsStorageConfig>,
}

/// `GowsStorageConfig`: `null` = enabled.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GowsStorageConfig {
    /// Store messages.
    #[serde(default)]
    pub messages: Option<bool>,
    /// Store groups.
    #[serde(default)]
    pub groups: Option<bool>,
    /// Store chats.
    #[serde(default)]
    pub chats: Option<bool>,
    /// Store labels.
    #[serde(default)]
    pub labels: Option<bool>,
}

/// `WebjsConfig`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebjsConfig {
    /// WEBJS tag events (accepted, no effect here).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags_events_on: Option<bool>,
}

/// `WebhookConfig`: one webhook of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebhookConfig {
    /// Where events are POSTed.
    #[schema(example = "https://webhook.site/11111111-1111-1111-1111-11111111")]
    pub url: String,
    /// Event names, or `*` for all.
    #[schema(example = json!(["message", "session.status"]))]
    pub events: Vec<String>,
    /// HMAC-SHA512 signing key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hmac: Option<HmacConfiguration>,
    /// Retry policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetriesConfiguration>,
    /// Extra headers sent with every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_headers: Option<Vec<CustomHeader>>,
}

/// `HmacConfiguration`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HmacConfiguration {
    /// The shared secret; `null` = no signature.
    #[serde(default)]
    pub key: Option<String>,
}

/// `RetriesConfiguration` (WAHA defaults: constant, 2 s, 15 attempts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetriesConfiguration {
    /// Base delay in seconds (kept as the JSON number sent, so `2` stays `2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, example = 2)]
    pub delay_seconds: Option<serde_json::Number>,
    /// How many attempts in all.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<f64>, example = 15)]
    pub attempts: Option<serde_json::Number>,
    /// `linear`, `exponential` or `constant`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(inline)]
    pub policy: Option<RetryPolicy>,
}

/// Webhook retry policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RetryPolicy {
    /// n × delay.
    Linear,
    /// 2^n × delay + jitter.
    Exponential,
    /// delay every time.
    Constant,
}

/// `CustomHeader`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CustomHeader {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// `MeInfo`: the WhatsApp account a session is logged in as.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MeInfo {
    /// `<phone>@c.us`.
    #[schema(example = "11111111111@c.us")]
    pub id: String,
    /// `<lid>@lid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "123123@lid")]
    pub lid: Option<String>,
    /// Id with device number, `<phone>:<device>@s.whatsapp.net`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "123123:123@s.whatsapp.net")]
    pub jid: Option<String>,
    /// The account's push name.
    pub push_name: String,
}

// waha.md §1.1. Which input moves a session from one status to another is
// `sessions::status`'s business; this is only the wire value. (The doc line below is the
// schema description in the OpenAPI document: keep it as is.)
/// `WAHASessionStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SessionStatus {
    /// Not running.
    Stopped,
    /// Connecting (or reconnecting after a transient drop).
    Starting,
    /// Waiting for a QR scan or pairing code.
    ScanQrCode,
    /// Passkey pairing (GOWS only in WAHA; never entered by wharf yet).
    PasskeyRequired,
    /// Passkey confirmation (GOWS only in WAHA; never entered by wharf yet).
    PasskeyConfirmationRequired,
    /// Logged in and connected.
    Working,
    /// Gave up: QR never scanned, logged out from the phone, replaced, or could not connect.
    Failed,
}

impl SessionStatus {
    /// The wire name (`SCAN_QR_CODE`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Stopped => "STOPPED",
            Self::Starting => "STARTING",
            Self::ScanQrCode => "SCAN_QR_CODE",
            Self::PasskeyRequired => "PASSKEY_REQUIRED",
            Self::PasskeyConfirmationRequired => "PASSKEY_CONFIRMATION_REQUIRED",
            Self::Working => "WORKING",
            Self::Failed => "FAILED",
        }
    }

    /// Whether a runtime exists for the session (it is "running" in WAHA's sense).
    pub fn is_running(self) -> bool {
        !matches!(self, Self::Stopped)
    }
}
