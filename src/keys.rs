//! API keys (WAHA's `/api/keys`, `../shared/reference/waha.md` §3.2–3.3): generation,
//! storage form, verification and the derived media/control keys.
//!
//! Owns: [`Keys`], built once in `app::App::build` and held by `api::AppState` for the
//! life of the process, and the rules no other module should know:
//! - a key is never stored in clear: the `"key"` column holds `sha256:<hex>` of it
//!   ([`stored_form`]); the plaintext exists only in the create response;
//! - a row migrated from WAHA holds the plaintext: it is accepted once and rehashed in
//!   place ([`Keys::resolve`]);
//! - the idempotent media/control keys are *derived*, `key_` + hex(HMAC-SHA256(secret,
//!   "media:<session>")), so the same key comes back every time without being kept. The
//!   secret is the admin key material (`WAHA_API_KEY`, or the bytes of its `sha512:`
//!   form): rotating `WAHA_API_KEY` rotates these keys. With auth disabled it is a random
//!   per-process secret (the routes still work; keys change at restart).
//!
//! No cache: every request with a non-admin key reads the store (one indexed lookup), so a
//! revoked or deactivated key stops working at once, in every instance sharing the store.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{ApiKey, Secret};
use crate::store::{self, ApiKeyRecord, KeyActions, Store};

pub mod jwt;

/// What a route does to a session (WAHA's `SessionActionsDTO` members).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read session data.
    Read,
    /// Send messages, manage chats/messages.
    Send,
    /// Start/stop/restart/logout/pairing.
    Control,
    /// Session config, webhooks.
    Setting,
    /// Apps.
    App,
    /// Delete the session.
    Delete,
}

impl Action {
    /// The claim / DTO name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Send => "send",
            Self::Control => "control",
            Self::Setting => "setting",
            Self::App => "app",
            Self::Delete => "delete",
        }
    }
}

/// Whether `actions` allow `action`.
pub fn allows(actions: &KeyActions, action: Action) -> bool {
    match action {
        Action::Read => actions.read,
        Action::Send => actions.send,
        Action::Control => actions.control,
        Action::Setting => actions.setting,
        Action::App => actions.app,
        Action::Delete => actions.delete,
    }
}

/// What a presented key grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// An admin key from the store.
    Admin,
    /// A key bound to one session.
    Session {
        /// The session.
        session: String,
        /// Its actions (defaults applied).
        actions: KeyActions,
    },
}

/// Which derived key ([`Keys::derived`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Derived {
    /// `POST /api/keys/media`: downloads only (all actions false).
    Media,
    /// `POST /api/keys/control`: `control` only.
    Control,
}

impl Derived {
    fn label(self) -> &'static str {
        match self {
            Self::Media => "media",
            Self::Control => "control",
        }
    }
    /// The actions of the derived key.
    pub fn actions(self) -> KeyActions {
        match self {
            Self::Media => KeyActions::NONE,
            Self::Control => KeyActions {
                control: true,
                ..KeyActions::NONE
            },
        }
    }
}

/// The `"key"` column value of `plain`: `sha256:<hex>`.
pub fn stored_form(plain: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(plain.as_bytes())))
}

/// What `GET /api/keys` shows instead of a key it no longer knows: WAHA's `key_` prefix,
/// then the first 8 hex digits of the stored hash, then `…` (wharf's deviation: WAHA shows
/// the key in clear).
pub fn masked(stored: &str) -> String {
    let digest = stored.strip_prefix("sha256:").map_or_else(
        || {
            stored_form(stored)
                .trim_start_matches("sha256:")
                .to_string()
        },
        str::to_string,
    );
    format!("key_{}…", &digest[..digest.len().min(8)])
}

/// A fresh random id and key: `key_id_<32 hex>`, `key_<32 hex>`.
pub fn generate() -> (String, String) {
    (
        format!("key_id_{}", uuid::Uuid::new_v4().simple()),
        format!("key_{}", uuid::Uuid::new_v4().simple()),
    )
}

/// Keys: the store and the secret the derived keys come from. Cheap to clone.
#[derive(Clone)]
pub struct Keys {
    store: Store,
    secret: std::sync::Arc<Secret<Vec<u8>>>,
}

impl Keys {
    /// Binds the keys to `store`, deriving the media/control secret from `admin`.
    pub fn new(store: Store, admin: &ApiKey) -> Self {
        let secret = match admin {
            ApiKey::Plain(k) => k.expose().as_bytes().to_vec(),
            ApiKey::Sha512(h) => h.expose().clone(),
            ApiKey::Disabled => {
                let mut bytes = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut bytes);
                bytes.to_vec()
            }
        };
        Self {
            store,
            secret: std::sync::Arc::new(Secret::new(secret)),
        }
    }

    /// The store the keys live in.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The media/control key of `session`: id `key_id_<kind>_<session>`, key
    /// `key_` + hex(HMAC-SHA256(secret, "<kind>:<session>")).
    pub fn derived(&self, kind: Derived, session: &str) -> (String, String) {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(self.secret.expose())
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(format!("{}:{session}", kind.label()).as_bytes());
        let key = format!("key_{}", hex::encode(mac.finalize().into_bytes()));
        (format!("key_id_{}_{session}", kind.label()), key)
    }

    /// What `presented` grants, if it is an active stored key. A plaintext row (written by
    /// WAHA) is rehashed in place on first use.
    ///
    /// # Errors
    /// The store's.
    pub async fn resolve(&self, presented: &str) -> store::Result<Option<Grant>> {
        // Every key WAHA or wharf issues starts with `key_`; anything else is not looked up.
        if !presented.starts_with("key_") {
            return Ok(None);
        }
        let hashed = stored_form(presented);
        let record = match self.store.find_key(&hashed).await? {
            Some(r) if bool::from(r.key.as_bytes().ct_eq(hashed.as_bytes())) => Some(r),
            Some(_) | None => match self.store.find_key(presented).await? {
                Some(r) if bool::from(r.key.as_bytes().ct_eq(presented.as_bytes())) => {
                    let rehashed = ApiKeyRecord {
                        key: hashed,
                        ..r.clone()
                    };
                    self.store.upsert_key(&rehashed).await?;
                    tracing::info!(id = %r.id, "api key stored in clear (from WAHA) rehashed");
                    Some(rehashed)
                }
                Some(_) | None => None,
            },
        };
        Ok(record.filter(|r| r.is_active).and_then(grant))
    }
}

/// The grant of an active record; a session key without a session grants nothing.
fn grant(r: ApiKeyRecord) -> Option<Grant> {
    if r.is_admin {
        return Some(Grant::Admin);
    }
    Some(Grant::Session {
        session: r.session?,
        actions: r.actions.unwrap_or(KeyActions::DEFAULT),
    })
}
