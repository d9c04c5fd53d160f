//! Typed configuration from WAHA's own environment variables.
//!
//! Owns: the table of variable names and defaults (`../shared/reference/waha.md` §8), their
//! parsing and validation, and the weak-API-key rule. Built once in `main` (from the process
//! environment plus an optional `.env` file) or by tests (from a map); lives for the process.
//! Parsing is pure ([`Config::from_vars`]) and reports *every* bad variable at once.

use std::{collections::BTreeMap, fmt, path::PathBuf, time::Duration};

use sha2::{Digest, Sha512};

use crate::model::session::{
    CustomHeader, HmacConfiguration, RetriesConfiguration, RetryPolicy, WebhookConfig,
};

/// The WAHA API version wharf implements (reported by `/api/server/version`).
pub const WAHA_VERSION: &str = "2026.7.1";

/// A value whose `Debug` never prints it (API keys, passwords, URLs with credentials).
#[derive(Clone, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    /// Wraps a secret value.
    pub fn new(value: T) -> Self {
        Self(value)
    }
    /// The secret itself; call sites are easy to grep.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Which WAHA engine wharf reports. The implementation is always whatsapp-rust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EngineName {
    /// whatsapp-web.js
    Webjs,
    /// wppconnect
    Wpp,
    /// Baileys
    Noweb,
    /// whatsmeow; wharf's default: a native protocol client, no browser.
    Gows,
}

impl EngineName {
    /// Upper-case name as WAHA prints it (`GOWS`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webjs => "WEBJS",
            Self::Wpp => "WPP",
            Self::Noweb => "NOWEB",
            Self::Gows => "GOWS",
        }
    }
    fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_uppercase().as_str() {
            "WEBJS" => Some(Self::Webjs),
            "WPP" => Some(Self::Wpp),
            "NOWEB" => Some(Self::Noweb),
            "GOWS" => Some(Self::Gows),
            _ => None,
        }
    }
}

/// How requests are authenticated with the admin key.
#[derive(Debug, Clone)]
pub enum ApiKey {
    /// `WAHA_NO_API_KEY=true`: no authentication at all.
    Disabled,
    /// A plain key, compared in constant time.
    Plain(Secret<String>),
    /// `sha512:<hex>`: the presented key is hashed and compared in constant time.
    Sha512(Secret<Vec<u8>>),
}

impl ApiKey {
    /// Whether `presented` is the admin key (constant-time).
    pub fn matches(&self, presented: &str) -> bool {
        use subtle::ConstantTimeEq;
        match self {
            Self::Disabled => true,
            Self::Plain(key) => {
                let (a, b) = (key.expose().as_bytes(), presented.as_bytes());
                // Length is not secret (WAHA leaks it too); content is.
                a.len() == b.len() && bool::from(a.ct_eq(b))
            }
            Self::Sha512(hash) => {
                let digest = Sha512::digest(presented.as_bytes());
                bool::from(digest.as_slice().ct_eq(hash.expose()))
            }
        }
    }
}

/// Log output format (`WAHA_LOG_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// Everything wharf reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `PORT` / `WHATSAPP_API_PORT` (3000). 0 picks a free port (tests).
    pub port: u16,
    /// Interface to bind (`WHARF_BIND_HOST`, default all interfaces like WAHA).
    pub bind_host: String,
    /// `WHATSAPP_API_HOSTNAME` (localhost), used in the base URL.
    pub hostname: String,
    /// `WHATSAPP_API_SCHEMA` (http).
    pub schema: String,
    /// `WAHA_BASE_URL`, or `{schema}://{hostname}:{port}`; no trailing `/`.
    pub base_url: String,
    /// Admin API key.
    pub api_key: ApiKey,
    /// A key generated because none (or a weak one) was configured; printed once at start.
    pub generated_api_key: Option<Secret<String>>,
    /// `WAHA_API_KEY_EXCLUDE_PATH` / `WHATSAPP_API_KEY_EXCLUDE_PATH`: anchored regexes over the
    /// path without its leading `/`.
    pub api_key_exclude: Vec<regex::Regex>,
    /// `WHATSAPP_SESSIONS_MONGO_URL`: MongoDB store when set.
    pub mongo_url: Option<Secret<String>>,
    /// `WAHA_LOCAL_STORE_BASE_DIR` (`./.sessions`).
    pub local_store_base_dir: PathBuf,
    /// `WHATSAPP_FILES_FOLDER` (`/tmp/whatsapp-files`): media files (watched by `/health`).
    pub files_folder: PathBuf,
    /// Inbound media: download, filter, lifetime and storage backend.
    pub media: MediaConfig,
    /// `WHATSAPP_HEALTH_MEDIA_FILES_THRESHOLD_MB` (100): free space below it → unhealthy.
    pub health_media_threshold_mb: u64,
    /// `WHATSAPP_HEALTH_SESSIONS_FILES_THRESHOLD_MB` (100), likewise for the local store.
    pub health_sessions_threshold_mb: u64,
    /// `WHATSAPP_DEFAULT_ENGINE` (reported engine; default GOWS).
    pub engine: EngineName,
    /// `WAHA_NAMESPACE` (engine name lower-case).
    pub namespace: String,
    /// `WAHA_SESSION_NAMESPACE` (engine name lower-case).
    pub session_namespace: String,
    /// `WAHA_WORKER_ID` ('').
    pub worker_id: String,
    /// `WAHA_WORKER_RESTART_SESSIONS` (true).
    pub worker_restart_sessions: bool,
    /// `WHATSAPP_RESTART_ALL_SESSIONS` / `WAHA_RESTART_ALL_SESSIONS` (false).
    pub restart_all_sessions: bool,
    /// `WHATSAPP_START_SESSION`: names started at boot.
    pub start_sessions: Vec<String>,
    /// `WAHA_AUTO_START_DELAY_SECONDS` (0): spacing between restored sessions.
    pub auto_start_delay: Duration,
    /// `WAHA_PRINT_QR` (true).
    pub print_qr: bool,
    /// `WAHA_LOG_LEVEL` (info; `DEBUG=1` forces debug).
    pub log_level: String,
    /// `WAHA_LOG_FORMAT` (PRETTY).
    pub log_format: LogFormat,
    /// `WHATSAPP_SWAGGER_ENABLED` (true).
    pub swagger_enabled: bool,
    /// `WAHA_DASHBOARD_*`: the `/dashboard` UI and its login.
    pub dashboard: dashboard::DashboardConfig,
    /// `WAHA_DEBUG_MODE` (false): opens `/api/server/debug/*`.
    pub debug_mode: bool,
    /// The global webhook from `WHATSAPP_HOOK_*`, if any.
    pub global_webhook: Option<WebhookConfig>,
    /// `WHARF_WA_URL`: WhatsApp websocket URL override; only in `mock-network` builds.
    pub wa_url: Option<String>,
    /// `WHATSAPP_PROXY_SERVER` (+ `_USERNAME`, `_PASSWORD`): the proxy of every session
    /// without its own `config.proxy`.
    pub proxy: Option<crate::model::session::ProxyConfig>,
    /// `WAHA_SESSION_CONFIG_IGNORE_*` and `WAHA_CLIENT_*`.
    pub session_defaults: crate::model::session::SessionDefaults,
    /// `WHARF_HISTORY_SYNC_DEPTH` (100): newest synced-history messages kept per chat
    /// (0: chats and contacts only).
    pub history_depth: usize,
    /// `WHARF_WA_VERSION`: WhatsApp Web version announced (pinned; never fetched).
    pub wa_version: (u32, u32, u32),
    /// `WHARF_CONNECT_TIMEOUT_SECONDS` (60): no QR or login by then → FAILED, then retried.
    pub connect_timeout: Duration,
    /// `WHARF_DEVICE_STORE_IDLE_SECONDS` (10; 0 = never): an embedded device store
    /// (`whatsapp.db`) unused this long closes its connection until the next use (issue 16:
    /// descriptors and memory of idle sessions).
    pub device_store_idle: Duration,
    /// `WHARF_PREKEY_UPLOAD_COUNT` (50, whatsmeow's `WantedPreKeyCount`, i.e. what WAHA's
    /// GOWS engine uploads; whatsapp-rust's own default is WhatsApp Web's 812): one-time
    /// pre-keys generated and uploaded per batch (on pairing and whenever the server runs
    /// low; 5–65,535). Fewer make pairing cheaper (issue 16); the server asks for more when
    /// it runs low.
    pub prekey_upload_count: usize,
    /// `WHARF_QR_TIMEOUT_SECONDS` (160 = WAHA's 60 s + 5 × 20 s): unscanned QR → FAILED.
    pub qr_timeout: Duration,
    /// `WHARF_RESTART_BACKOFF_SECONDS` (2): first delay of the automatic restart after a
    /// retryable failure (doubles up to 60 s).
    pub restart_backoff: Duration,
    /// The variables wharf was started with (for `/api/server/environment`).
    pub environment: Secret<BTreeMap<String, String>>,
    /// `WHARF_MESSAGES_RETENTION_DAYS` (0 = keep forever): stored messages older than
    /// this are purged periodically (wharf only; WAHA's stores keep everything).
    pub messages_retention_days: u32,
    /// `WHARF_EGRESS_DENY` / `WHARF_EGRESS_ALLOW`: where webhook (and media) requests may go.
    pub egress: crate::egress::EgressPolicy,
    /// `WHARF_STORE_ALLOW_ORPHANS`: start even when the store's integrity check finds
    /// per-session data the main database does not know.
    pub store_allow_orphans: bool,
    /// `WHARF_METRICS_SESSION_LABELS`: label message and webhook metrics by session.
    pub metrics_session_labels: bool,
    /// `WHARF_METRICS_MONGO_COLLECTIONS`: count MongoDB commands by collection too
    /// (`wharf_mongo_collection_commands_total`), to see where round trips go.
    pub metrics_mongo_collections: bool,
    /// `WHARF_MEDIA_MAX_MB` (100): the largest media file a send accepts (a `file.url`
    /// whose response is bigger, or `file.data` that decodes bigger, is a 400).
    pub media_max_bytes: u64,
    /// `WHARF_MEDIA_FETCH_TIMEOUT_SECONDS` (60): how long fetching a `file.url` may take.
    pub media_fetch_timeout: Duration,
    /// `WHARF_JWT_SECRET` / `WHARF_JWT_PUBLIC_KEY` / `WHARF_JWT_AUDIENCE` /
    /// `WHARF_JWT_ISSUER`: session tokens (`keys::jwt`).
    pub jwt: crate::keys::jwt::JwtSettings,
    /// `WHARF_CLUSTER` (false) and `WHARF_CLUSTER_*`: several workers on one MongoDB
    /// (`crate::cluster`); `None` when off.
    pub cluster: Option<crate::cluster::ClusterSettings>,
}

/// Where downloaded media go (`WAHA_MEDIA_STORAGE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaStorageKind {
    /// `LOCAL` (default): files under `WHATSAPP_FILES_FOLDER`, served at `/api/files/…`.
    Local,
    /// `S3`: objects `<session>/<file>` in `WAHA_S3_BUCKET`.
    S3(S3Config),
}

/// `WAHA_S3_*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `WAHA_S3_REGION` (`us-east-1`).
    pub region: String,
    /// `WAHA_S3_BUCKET` (required).
    pub bucket: String,
    /// `WAHA_S3_ACCESS_KEY_ID`.
    pub access_key_id: Option<String>,
    /// `WAHA_S3_SECRET_ACCESS_KEY`.
    pub secret_access_key: Option<Secret<String>>,
    /// `WAHA_S3_ENDPOINT`: an S3-compatible server (MinIO, SeaweedFS…); AWS when unset.
    pub endpoint: Option<String>,
    /// `WAHA_S3_FORCE_PATH_STYLE` (false): `endpoint/bucket/key` instead of
    /// `bucket.endpoint/key`.
    pub force_path_style: bool,
    /// `WAHA_S3_PROXY_FILES` (false): media URLs point at wharf, which streams the object,
    /// instead of presigned S3 URLs.
    pub proxy_files: bool,
}

/// Inbound media settings (`../shared/reference/waha.md` §7.4, §8).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaConfig {
    /// `WHATSAPP_DOWNLOAD_MEDIA` (true): false keeps every media undownloaded (`media: null`).
    pub download: bool,
    /// `WHATSAPP_FILES_MIMETYPES` ('' = all): only mimetypes starting with one of these
    /// prefixes are downloaded (`audio,image/png`).
    pub mimetypes: Vec<String>,
    /// `WHATSAPP_FILES_LIFETIME` (180 s; 0 = keep): local files older than this are removed.
    pub lifetime: Duration,
    /// `WHATSAPP_FILES_FOLDER` (`/tmp/whatsapp-files`).
    pub folder: PathBuf,
    /// `WAHA_MEDIA_STORAGE` (`LOCAL`).
    pub storage: MediaStorageKind,
    /// `WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS` (120): a download still running after this is
    /// given up (`media.error`), so a stuck CDN holds a chat's later events at most this long.
    pub download_timeout: Duration,
}

fn parse_media(r: &mut Reader<'_>, folder: &std::path::Path) -> MediaConfig {
    let download = r.bool(&["WHATSAPP_DOWNLOAD_MEDIA"], true);
    let mimetypes = r
        .string(&["WHATSAPP_FILES_MIMETYPES"], "")
        .split(',')
        .map(|m| m.trim().to_ascii_lowercase())
        .filter(|m| !m.is_empty())
        .collect();
    let lifetime = r.number::<f64>(&["WHATSAPP_FILES_LIFETIME"], 180.0);
    let lifetime = if lifetime.is_finite() && lifetime >= 0.0 {
        Duration::from_secs_f64(lifetime)
    } else {
        r.errors
            .push("WHATSAPP_FILES_LIFETIME: expected a number of seconds (0 keeps files)".into());
        Duration::ZERO
    };
    let timeout = r.number::<f64>(&["WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS"], 120.0);
    let download_timeout = if timeout.is_finite() && timeout > 0.0 {
        Duration::from_secs_f64(timeout)
    } else {
        r.errors.push(
            "WHARF_MEDIA_DOWNLOAD_TIMEOUT_SECONDS: expected a positive number of seconds".into(),
        );
        Duration::from_secs(120)
    };
    let storage = match r
        .string(&["WAHA_MEDIA_STORAGE"], "LOCAL")
        .to_ascii_uppercase()
        .as_str()
    {
        "LOCAL" => MediaStorageKind::Local,
        "S3" => {
            let bucket = r.string(&["WAHA_S3_BUCKET"], "");
            if bucket.is_empty() {
                r.errors
                    .push("WAHA_S3_BUCKET: required when WAHA_MEDIA_STORAGE=S3".into());
            }
            let endpoint = r.get(&["WAHA_S3_ENDPOINT"]).map(|(_, v)| v);
            if let Some(e) = &endpoint
                && !(e.starts_with("http://") || e.starts_with("https://"))
            {
                r.errors.push(format!(
                    "WAHA_S3_ENDPOINT: must be an http(s) URL, got {e:?}"
                ));
            }
            MediaStorageKind::S3(S3Config {
                region: r.string(&["WAHA_S3_REGION"], "us-east-1"),
                bucket,
                access_key_id: r.get(&["WAHA_S3_ACCESS_KEY_ID"]).map(|(_, v)| v),
                secret_access_key: r
                    .get(&["WAHA_S3_SECRET_ACCESS_KEY"])
                    .map(|(_, v)| Secret::new(v)),
                endpoint,
                force_path_style: r.bool(&["WAHA_S3_FORCE_PATH_STYLE"], false),
                proxy_files: r.bool(&["WAHA_S3_PROXY_FILES"], false),
            })
        }
        "POSTGRESQL" => {
            r.errors.push(
                "WAHA_MEDIA_STORAGE: PostgreSQL media storage is not supported by wharf; use \
                 LOCAL or S3"
                    .into(),
            );
            MediaStorageKind::Local
        }
        other => {
            r.errors.push(format!(
                "WAHA_MEDIA_STORAGE: expected LOCAL or S3, got {other:?}"
            ));
            MediaStorageKind::Local
        }
    };
    MediaConfig {
        download,
        mimetypes,
        lifetime,
        folder: folder.to_path_buf(),
        storage,
        download_timeout,
    }
}

/// Every configuration problem found, reported together.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n  - {}", .0.join("\n  - "))]
pub struct ConfigError(pub Vec<String>);

/// Keys WAHA considers weak and replaces by a random one (waha.md §3.2, since 2025.10.3).
fn is_weak_key(key: &str) -> bool {
    const WEAK: &[&str] = &["", "123", "321", "waha", "admin"];
    let zeros = "0".repeat(32);
    let ones = "1".repeat(32);
    let zeros_sha = format!("sha512:{}", hex::encode(Sha512::digest(zeros.as_bytes())));
    WEAK.contains(&key) || key == zeros || key == ones || key.eq_ignore_ascii_case(&zeros_sha)
}

/// A random key like WAHA's: uuid4 hex without dashes.
pub fn random_key() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

struct Reader<'a> {
    vars: &'a BTreeMap<String, String>,
    errors: Vec<String>,
}

impl Reader<'_> {
    /// The first set (non-empty after trim) variable among `names`.
    fn get(&self, names: &[&str]) -> Option<(String, String)> {
        names.iter().find_map(|n| {
            self.vars
                .get(*n)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
                .map(|v| ((*n).to_string(), v.to_string()))
        })
    }
    fn string(&self, names: &[&str], default: &str) -> String {
        self.get(names)
            .map_or_else(|| default.to_string(), |(_, v)| v)
    }
    fn bool(&mut self, names: &[&str], default: bool) -> bool {
        match self.get(names) {
            None => default,
            Some((name, v)) => match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" | "on" => true,
                "false" | "0" | "no" | "off" => false,
                _ => {
                    self.errors
                        .push(format!("{name}: expected true or false, got {v:?}"));
                    default
                }
            },
        }
    }
    fn number<T: std::str::FromStr>(&mut self, names: &[&str], default: T) -> T {
        match self.get(names) {
            None => default,
            Some((name, v)) => v.parse().unwrap_or_else(|_| {
                self.errors
                    .push(format!("{name}: expected a number, got {v:?}"));
                default
            }),
        }
    }
}

impl Config {
    /// Reads the process environment, with `.env` (if present in the working directory)
    /// filling in variables the environment does not set.
    ///
    /// # Errors
    /// Every invalid variable, in one [`ConfigError`].
    pub fn from_process_env() -> Result<Self, ConfigError> {
        let mut vars: BTreeMap<String, String> = BTreeMap::new();
        if let Ok(iter) = dotenvy::from_path_iter(".env") {
            for (k, v) in iter.flatten() {
                vars.insert(k, v);
            }
        }
        vars.extend(std::env::vars());
        Self::from_vars(vars)
    }

    /// Pure parse of a variable map (tests pass their own).
    ///
    /// # Errors
    /// Every invalid variable, in one [`ConfigError`].
    pub fn from_vars(vars: BTreeMap<String, String>) -> Result<Self, ConfigError> {
        let mut r = Reader {
            vars: &vars,
            errors: Vec::new(),
        };

        // WAHA: PORT wins over WHATSAPP_API_PORT.
        let port = r.number::<u16>(&["PORT", "WHATSAPP_API_PORT"], 3000);
        let bind_host = r.string(&["WHARF_BIND_HOST"], "0.0.0.0");
        let hostname = r.string(&["WHATSAPP_API_HOSTNAME"], "localhost");
        let schema = r
            .string(&["WHATSAPP_API_SCHEMA"], "http")
            .to_ascii_lowercase();
        if schema != "http" && schema != "https" {
            r.errors.push(format!(
                "WHATSAPP_API_SCHEMA: expected http or https, got {schema:?}"
            ));
        }
        let base_url = r
            .get(&["WAHA_BASE_URL"])
            .map(|(_, v)| v.trim_end_matches('/').to_string())
            .unwrap_or_else(|| format!("{schema}://{hostname}:{port}"));

        let no_api_key = r.bool(&["WAHA_NO_API_KEY"], false);
        let mut generated_api_key = None;
        let api_key = if no_api_key {
            ApiKey::Disabled
        } else {
            // WHATSAPP_API_KEY is copied into WAHA_API_KEY when set (waha.md §3.2).
            let raw = vars
                .get("WHATSAPP_API_KEY")
                .or_else(|| vars.get("WAHA_API_KEY"))
                .map(|s| s.trim().to_string())
                .unwrap_or_default();
            if is_weak_key(&raw) {
                let key = random_key();
                generated_api_key = Some(Secret::new(key.clone()));
                ApiKey::Plain(Secret::new(key))
            } else if let Some(hexed) = raw.strip_prefix("sha512:") {
                match hex::decode(hexed) {
                    Ok(bytes) if bytes.len() == 64 => ApiKey::Sha512(Secret::new(bytes)),
                    _ => {
                        r.errors.push(
                            "WAHA_API_KEY: sha512: must be followed by 128 hex characters".into(),
                        );
                        ApiKey::Disabled
                    }
                }
            } else {
                ApiKey::Plain(Secret::new(raw))
            }
        };

        let mut api_key_exclude = Vec::new();
        if let Some((name, list)) =
            r.get(&["WAHA_API_KEY_EXCLUDE_PATH", "WHATSAPP_API_KEY_EXCLUDE_PATH"])
        {
            for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
                let part = part.trim_start_matches('/');
                match regex::Regex::new(&format!("^(?:{part})$")) {
                    Ok(re) => api_key_exclude.push(re),
                    Err(e) => r.errors.push(format!("{name}: bad pattern {part:?}: {e}")),
                }
            }
        }

        let mongo_url = r
            .get(&["WHATSAPP_SESSIONS_MONGO_URL"])
            .map(|(_, v)| Secret::new(v));
        if let Some(url) = &mongo_url
            && !(url.expose().starts_with("mongodb://")
                || url.expose().starts_with("mongodb+srv://"))
        {
            r.errors.push(
                "WHATSAPP_SESSIONS_MONGO_URL: must start with mongodb:// or mongodb+srv://".into(),
            );
        }
        if r.get(&["WHATSAPP_SESSIONS_POSTGRESQL_URL"]).is_some() {
            r.errors.push(
                "WHATSAPP_SESSIONS_POSTGRESQL_URL: PostgreSQL storage is not supported by wharf; \
                 use WHATSAPP_SESSIONS_MONGO_URL or the embedded store"
                    .into(),
            );
        }
        let local_store_base_dir =
            PathBuf::from(r.string(&["WAHA_LOCAL_STORE_BASE_DIR"], "./.sessions"));

        let files_folder =
            PathBuf::from(r.string(&["WHATSAPP_FILES_FOLDER"], "/tmp/whatsapp-files"));
        let media = parse_media(&mut r, &files_folder);
        let health_media_threshold_mb =
            r.number::<u64>(&["WHATSAPP_HEALTH_MEDIA_FILES_THRESHOLD_MB"], 100);
        let health_sessions_threshold_mb = r.number::<u64>(
            &[
                "WHATSAPP_HEALTH_SESSIONS_FILES_THRESHOLD_MB",
                "WHATSAPP_HEALTH_SESSION_FILES_THRESHOLD_MB",
            ],
            100,
        );
        let engine = match r.get(&["WHATSAPP_DEFAULT_ENGINE"]) {
            None => EngineName::Gows,
            Some((name, v)) => EngineName::parse(&v).unwrap_or_else(|| {
                r.errors.push(format!(
                    "{name}: expected one of WEBJS, WPP, NOWEB, GOWS, got {v:?}"
                ));
                EngineName::Gows
            }),
        };
        let engine_ns = engine.as_str().to_ascii_lowercase();
        let namespace = r.string(&["WAHA_NAMESPACE"], &engine_ns);
        let session_namespace = r.string(&["WAHA_SESSION_NAMESPACE"], &engine_ns);
        for (name, ns) in [
            ("WAHA_NAMESPACE", &namespace),
            ("WAHA_SESSION_NAMESPACE", &session_namespace),
        ] {
            if !ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
            {
                r.errors.push(format!(
                    "{name}: only letters, digits, '-' and '_' are allowed, got {ns:?}"
                ));
            }
        }

        let mut worker_id = r.string(&["WAHA_WORKER_ID"], "");
        let worker_restart_sessions = r.bool(&["WAHA_WORKER_RESTART_SESSIONS"], true);
        let restart_all_sessions = r.bool(
            &["WHATSAPP_RESTART_ALL_SESSIONS", "WAHA_RESTART_ALL_SESSIONS"],
            false,
        );
        let start_sessions = r
            .string(&["WHATSAPP_START_SESSION"], "")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect();
        let auto_start_delay = Duration::from_secs_f64(
            r.number::<f64>(&["WAHA_AUTO_START_DELAY_SECONDS"], 0.0)
                .max(0.0),
        );
        let print_qr = r.bool(&["WAHA_PRINT_QR"], true);

        let debug = r.bool(&["DEBUG"], false);
        let mut log_level = r.string(&["WAHA_LOG_LEVEL"], "info").to_ascii_lowercase();
        if !["error", "warn", "info", "debug", "trace"].contains(&log_level.as_str()) {
            r.errors.push(format!(
                "WAHA_LOG_LEVEL: expected error, warn, info, debug or trace, got {log_level:?}"
            ));
            log_level = "info".into();
        }
        if debug {
            log_level = "debug".into();
        }
        let log_format = match r
            .string(&["WAHA_LOG_FORMAT"], "PRETTY")
            .to_ascii_uppercase()
            .as_str()
        {
            "PRETTY" => LogFormat::Pretty,
            "JSON" => LogFormat::Json,
            other => {
                r.errors.push(format!(
                    "WAHA_LOG_FORMAT: expected PRETTY or JSON, got {other:?}"
                ));
                LogFormat::Pretty
            }
        };
        let swagger_enabled = r.bool(&["WHATSAPP_SWAGGER_ENABLED"], true);
        let dashboard = dashboard::DashboardConfig::read(&mut r);
        let debug_mode = r.bool(&["WAHA_DEBUG_MODE"], false);

        let global_webhook = parse_global_webhook(&mut r);

        let proxy = r.get(&["WHATSAPP_PROXY_SERVER"]).map(|(_, server)| {
            crate::model::session::ProxyConfig {
                server,
                username: r
                    .get(&["WHATSAPP_PROXY_SERVER_USERNAME", "WHATSAPP_PROXY_USERNAME"])
                    .map(|(_, v)| v),
                password: r
                    .get(&["WHATSAPP_PROXY_SERVER_PASSWORD", "WHATSAPP_PROXY_PASSWORD"])
                    .map(|(_, v)| v),
            }
        });
        if let Some(p) = &proxy
            && crate::engine::proxy::Proxy::parse(p).is_err()
        {
            r.errors.push(format!(
                "WHATSAPP_PROXY_SERVER: expected host:port (or http://host:port, socks5://host:port), got {:?}",
                p.server
            ));
        }
        let opt_bool = |r: &mut Reader, name: &str| r.get(&[name]).map(|_| r.bool(&[name], false));
        let session_defaults = crate::model::session::SessionDefaults {
            ignore: crate::model::session::IgnoreConfig {
                status: opt_bool(&mut r, "WAHA_SESSION_CONFIG_IGNORE_STATUS"),
                groups: opt_bool(&mut r, "WAHA_SESSION_CONFIG_IGNORE_GROUPS"),
                channels: opt_bool(&mut r, "WAHA_SESSION_CONFIG_IGNORE_CHANNELS"),
                broadcast: opt_bool(&mut r, "WAHA_SESSION_CONFIG_IGNORE_BROADCAST"),
            },
            client: crate::model::session::ClientSessionConfig {
                device_name: r.get(&["WAHA_CLIENT_DEVICE_NAME"]).map(|(_, v)| v),
                browser_name: r.get(&["WAHA_CLIENT_BROWSER_NAME"]).map(|(_, v)| v),
            },
        };
        let history_depth = match r.get(&["WHARF_HISTORY_SYNC_DEPTH"]) {
            None => crate::sessions::history::HISTORY_DEPTH,
            Some((_, v)) => v.parse::<usize>().unwrap_or_else(|_| {
                r.errors.push(format!(
                    "WHARF_HISTORY_SYNC_DEPTH: expected a whole number of messages, got {v:?}"
                ));
                0
            }),
        };
        let wa_url = r.get(&["WHARF_WA_URL"]).map(|(_, v)| v);
        if wa_url.is_some() && !cfg!(feature = "mock-network") {
            r.errors.push(
                "WHARF_WA_URL: this build only connects to WhatsApp itself; the variable is \
                 accepted only by test builds with the `mock-network` feature"
                    .into(),
            );
        }

        let wa_version = match r.get(&["WHARF_WA_VERSION"]) {
            None => crate::engine::DEFAULT_WA_VERSION,
            Some((name, v)) => crate::engine::parse_wa_version(&v).unwrap_or_else(|| {
                r.errors
                    .push(format!("{name}: expected MAJOR.MINOR.PATCH, got {v:?}"));
                crate::engine::DEFAULT_WA_VERSION
            }),
        };
        let seconds = |r: &mut Reader<'_>, name: &str, default: f64| {
            let v = r.number::<f64>(&[name], default);
            if v.is_finite() && v > 0.0 {
                Duration::from_secs_f64(v)
            } else {
                r.errors
                    .push(format!("{name}: expected a positive number of seconds"));
                Duration::from_secs_f64(default)
            }
        };
        let connect_timeout = seconds(&mut r, "WHARF_CONNECT_TIMEOUT_SECONDS", 60.0);
        let device_store_idle = r.number::<f64>(&["WHARF_DEVICE_STORE_IDLE_SECONDS"], 10.0);
        if !(device_store_idle.is_finite() && device_store_idle >= 0.0) {
            r.errors.push(
                "WHARF_DEVICE_STORE_IDLE_SECONDS: expected a number of seconds (0 = never)".into(),
            );
        }
        let device_store_idle = Duration::from_secs_f64(device_store_idle.clamp(0.0, 1e9));
        let prekey_upload_count = r.number::<usize>(&["WHARF_PREKEY_UPLOAD_COUNT"], 50);
        if !(5..=65_535).contains(&prekey_upload_count) {
            r.errors
                .push("WHARF_PREKEY_UPLOAD_COUNT: expected a count from 5 to 65535".into());
        }
        let qr_timeout = seconds(&mut r, "WHARF_QR_TIMEOUT_SECONDS", 160.0);
        let restart_backoff = seconds(&mut r, "WHARF_RESTART_BACKOFF_SECONDS", 2.0);

        let messages_retention_days = r.number::<u32>(&["WHARF_MESSAGES_RETENTION_DAYS"], 0);
        let media_max_mb = r.number::<f64>(&["WHARF_MEDIA_MAX_MB"], 100.0);
        if !(media_max_mb.is_finite() && media_max_mb > 0.0) {
            r.errors
                .push("WHARF_MEDIA_MAX_MB: expected a positive number of megabytes".into());
        }
        let media_max_bytes = (media_max_mb.max(0.0) * 1024.0 * 1024.0) as u64;
        let media_fetch_timeout = seconds(&mut r, "WHARF_MEDIA_FETCH_TIMEOUT_SECONDS", 60.0);

        let ranges = |r: &mut Reader<'_>, name: &str| match r.get(&[name]) {
            None => Vec::new(),
            Some((name, v)) => crate::egress::EgressPolicy::parse_ranges(&v).unwrap_or_else(|e| {
                r.errors.push(format!("{name}: {e}"));
                Vec::new()
            }),
        };
        let egress_deny = ranges(&mut r, "WHARF_EGRESS_DENY");
        let egress_allow = ranges(&mut r, "WHARF_EGRESS_ALLOW");
        let egress = crate::egress::EgressPolicy::new(&egress_deny, &egress_allow);
        let store_allow_orphans = r.bool(&["WHARF_STORE_ALLOW_ORPHANS"], false);
        let metrics_session_labels = r.bool(&["WHARF_METRICS_SESSION_LABELS"], false);
        let metrics_mongo_collections = r.bool(&["WHARF_METRICS_MONGO_COLLECTIONS"], false);
        let jwt = crate::keys::jwt::JwtSettings {
            secret: r.get(&["WHARF_JWT_SECRET"]).map(|(_, v)| Secret::new(v)),
            public_key: r
                .get(&["WHARF_JWT_PUBLIC_KEY"])
                .map(|(_, v)| PathBuf::from(v)),
            audience: r.get(&["WHARF_JWT_AUDIENCE"]).map(|(_, v)| v),
            issuer: r.get(&["WHARF_JWT_ISSUER"]).map(|(_, v)| v),
        };
        let cluster = parse_cluster(&mut r, mongo_url.is_some(), &mut worker_id, &base_url);

        if !r.errors.is_empty() {
            return Err(ConfigError(r.errors));
        }
        Ok(Self {
            port,
            bind_host,
            hostname,
            schema,
            base_url,
            api_key,
            generated_api_key,
            api_key_exclude,
            mongo_url,
            local_store_base_dir,
            files_folder,
            media,
            health_media_threshold_mb,
            health_sessions_threshold_mb,
            engine,
            namespace,
            session_namespace,
            worker_id,
            worker_restart_sessions,
            restart_all_sessions,
            start_sessions,
            auto_start_delay,
            print_qr,
            log_level,
            log_format,
            swagger_enabled,
            dashboard,
            debug_mode,
            global_webhook,
            wa_url,
            proxy,
            session_defaults,
            history_depth,
            wa_version,
            connect_timeout,
            device_store_idle,
            prekey_upload_count,
            qr_timeout,
            restart_backoff,
            environment: Secret::new(vars),
            messages_retention_days,
            egress,
            store_allow_orphans,
            metrics_session_labels,
            metrics_mongo_collections,
            media_max_bytes,
            media_fetch_timeout,
            jwt,
            cluster,
        })
    }
}

/// `WHARF_CLUSTER` and friends. Cluster mode needs MongoDB (the workers coordinate through
/// it); without `WAHA_WORKER_ID` a worker id is generated (and used as the worker id).
fn parse_cluster(
    r: &mut Reader<'_>,
    mongo: bool,
    worker_id: &mut String,
    base_url: &str,
) -> Option<crate::cluster::ClusterSettings> {
    if !r.bool(&["WHARF_CLUSTER"], false) {
        return None;
    }
    if !mongo {
        r.errors.push(
            "WHARF_CLUSTER: cluster mode needs the MongoDB store (WHATSAPP_SESSIONS_MONGO_URL)"
                .into(),
        );
    }
    if worker_id.is_empty() {
        *worker_id = format!("wharf-{}", &random_key()[..12]);
    }
    let advertise_url = r
        .string(&["WHARF_ADVERTISE_URL"], base_url)
        .trim_end_matches('/')
        .to_string();
    if !(advertise_url.starts_with("http://") || advertise_url.starts_with("https://")) {
        r.errors.push(format!(
            "WHARF_ADVERTISE_URL: must be an http(s) URL, got {advertise_url:?}"
        ));
    }
    let capacity = r.number::<u64>(&["WHARF_CLUSTER_CAPACITY"], 500);
    if capacity == 0 {
        r.errors
            .push("WHARF_CLUSTER_CAPACITY: expected a positive number of sessions".into());
    }
    let mut secs = |name: &str, default: f64| {
        let v = r.number::<f64>(&[name], default);
        if v.is_finite() && v >= 1.0 {
            Duration::from_secs_f64(v)
        } else {
            r.errors
                .push(format!("{name}: expected a number of seconds, at least 1"));
            Duration::from_secs_f64(default)
        }
    };
    let lease_ttl = secs("WHARF_CLUSTER_LEASE_SECONDS", 10.0);
    let dead_after = secs("WHARF_CLUSTER_DEAD_SECONDS", 15.0);
    let secret = r.string(&["WHARF_CLUSTER_SECRET"], "");
    if secret.len() < crate::cluster::peer::MIN_SECRET_LEN {
        r.errors.push(format!(
            "WHARF_CLUSTER_SECRET: cluster mode needs a shared secret of at least {} characters (the same on every worker)",
            crate::cluster::peer::MIN_SECRET_LEN
        ));
    }
    Some(crate::cluster::ClusterSettings {
        peer: crate::cluster::peer::PeerCredential::new(&secret, worker_id),
        worker_id: worker_id.clone(),
        advertise_url,
        capacity,
        lease_ttl,
        dead_after,
    })
}

/// A JSON number that prints `2` for 2.0, as JavaScript does.
fn json_number(x: f64) -> serde_json::Number {
    if x.fract() == 0.0 && x.abs() < 9.0e15 {
        serde_json::Number::from(x as i64)
    } else {
        serde_json::Number::from_f64(x).unwrap_or_else(|| serde_json::Number::from(0))
    }
}

/// `WHATSAPP_HOOK_URL` and friends; an invalid value aborts boot, as in WAHA.
fn parse_global_webhook(r: &mut Reader<'_>) -> Option<WebhookConfig> {
    let (_, url) = r.get(&["WHATSAPP_HOOK_URL"])?;
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        r.errors.push(format!(
            "WHATSAPP_HOOK_URL: must be an http(s) URL, got {url:?}"
        ));
    }
    let events = r
        .string(&["WHATSAPP_HOOK_EVENTS"], "*")
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect();
    let hmac = r
        .get(&["WHATSAPP_HOOK_HMAC_KEY"])
        .map(|(_, key)| HmacConfiguration { key: Some(key) });
    let policy = match r.get(&["WHATSAPP_HOOK_RETRIES_POLICY"]) {
        None => None,
        Some((name, v)) => match v.to_ascii_lowercase().as_str() {
            "constant" => Some(RetryPolicy::Constant),
            "linear" => Some(RetryPolicy::Linear),
            "exponential" => Some(RetryPolicy::Exponential),
            _ => {
                r.errors.push(format!(
                    "{name}: expected constant, linear or exponential, got {v:?}"
                ));
                None
            }
        },
    };
    let delay = r
        .get(&["WHATSAPP_HOOK_RETRIES_DELAY_SECONDS"])
        .map(|_| json_number(r.number::<f64>(&["WHATSAPP_HOOK_RETRIES_DELAY_SECONDS"], 2.0)));
    let attempts = r
        .get(&["WHATSAPP_HOOK_RETRIES_ATTEMPTS"])
        .map(|_| json_number(r.number::<f64>(&["WHATSAPP_HOOK_RETRIES_ATTEMPTS"], 15.0)));
    let retries = (policy.is_some() || delay.is_some() || attempts.is_some()).then_some(
        RetriesConfiguration {
            delay_seconds: delay,
            attempts,
            policy,
        },
    );
    let mut headers = Vec::new();
    if let Some((name, v)) = r.get(&["WHATSAPP_HOOK_CUSTOM_HEADERS"]) {
        // WAHA format: "H1:v1;H2:v2".
        for pair in v.split(';').map(str::trim).filter(|p| !p.is_empty()) {
            match pair.split_once(':') {
                Some((h, val)) if !h.trim().is_empty() => headers.push(CustomHeader {
                    name: h.trim().to_string(),
                    value: val.trim().to_string(),
                }),
                _ => r.errors.push(format!(
                    "{name}: expected 'Name:value;Name2:value2', got {pair:?}"
                )),
            }
        }
    }
    Some(WebhookConfig {
        url,
        events,
        hmac,
        retries,
        custom_headers: (!headers.is_empty()).then_some(headers),
    })
}

pub mod dashboard;

#[cfg(test)]
mod tests;
