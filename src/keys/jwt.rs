//! JWT session tokens (wharf's addition, issue 13 item 3): `Authorization: Bearer <JWT>`
//! signed by the operator's backend, naming the session(s) and actions it may use.
//!
//! Owns: [`Verifier`] (built once in `app::App::build` from `WHARF_JWT_SECRET` — HS256 —
//! or `WHARF_JWT_PUBLIC_KEY` — a PEM file, RS256 or ES256 — plus the optional
//! `WHARF_JWT_AUDIENCE`/`WHARF_JWT_ISSUER`), held by `api::AppState` for the process's
//! life; `api::auth` calls [`Verifier::verify`] per request and `api::tokens` calls
//! [`Verifier::mint`] (only with a shared secret).
//!
//! Claims: `exp` (required; 30 s leeway), `session` (one name) and/or `sessions` (names),
//! `actions` (names from `read, send, control, setting, app, delete`; absent = WAHA's
//! defaults: all but `delete`), `aud`/`iss` checked when configured. The algorithm is
//! pinned by the configured key, so `alg: none` and algorithm confusion are refused.

use std::path::PathBuf;

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::config::Secret;
use crate::store::KeyActions;

/// Clock skew accepted on `exp` (seconds).
pub const LEEWAY_SECONDS: u64 = 30;

/// Longest lifetime `mint` issues (a day): the tokens cannot be revoked.
pub const MAX_TTL_SECONDS: u64 = 24 * 3600;

/// What `app` reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct JwtSettings {
    /// `WHARF_JWT_SECRET`: HS256 shared secret.
    pub secret: Option<Secret<String>>,
    /// `WHARF_JWT_PUBLIC_KEY`: PEM file of an RSA or EC (P-256) public key.
    pub public_key: Option<PathBuf>,
    /// `WHARF_JWT_AUDIENCE`.
    pub audience: Option<String>,
    /// `WHARF_JWT_ISSUER`.
    pub issuer: Option<String>,
}

/// Why a verifier cannot be built (a startup error).
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// The PEM file cannot be read.
    #[error("WHARF_JWT_PUBLIC_KEY {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The PEM is neither an RSA nor a P-256 public key.
    #[error("WHARF_JWT_PUBLIC_KEY {0}: not an RSA or EC public key in PEM")]
    BadKey(String),
}

/// Claims wharf reads (and writes when minting).
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// Expiry, seconds since epoch.
    pub exp: u64,
    /// One session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Several sessions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sessions: Vec<String>,
    /// Action names; absent = defaults.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actions: Option<Vec<String>>,
    /// Audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// Issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
}

/// A verified token's grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenGrant {
    /// Sessions it names.
    pub sessions: Vec<String>,
    /// What it may do there.
    pub actions: KeyActions,
}

/// Verifies (and, with a shared secret, mints) session tokens. Cheap to clone.
#[derive(Clone)]
pub struct Verifier {
    decoding: DecodingKey,
    encoding: Option<EncodingKey>,
    validation: Validation,
    audience: Option<String>,
    issuer: Option<String>,
}

impl Verifier {
    /// The verifier `settings` describe, `None` when JWTs are not configured.
    ///
    /// # Errors
    /// An unreadable or unusable public key file.
    pub fn from_settings(settings: &JwtSettings) -> Result<Option<Self>, SetupError> {
        let (decoding, encoding, alg) = if let Some(path) = &settings.public_key {
            let pem = std::fs::read(path).map_err(|source| SetupError::Read {
                path: path.display().to_string(),
                source,
            })?;
            match public_key(&pem) {
                Some(PublicKey::Rsa(der)) => {
                    (DecodingKey::from_rsa_der(&der), None, Algorithm::RS256)
                }
                Some(PublicKey::Ec(point)) => {
                    (DecodingKey::from_ec_der(&point), None, Algorithm::ES256)
                }
                None => return Err(SetupError::BadKey(path.display().to_string())),
            }
        } else if let Some(secret) = &settings.secret {
            let bytes = secret.expose().as_bytes();
            (
                DecodingKey::from_secret(bytes),
                Some(EncodingKey::from_secret(bytes)),
                Algorithm::HS256,
            )
        } else {
            return Ok(None);
        };
        let mut validation = Validation::new(alg);
        validation.leeway = LEEWAY_SECONDS;
        // A configured audience or issuer must also be present (jsonwebtoken checks only
        // the claims it finds unless they are required).
        let mut required = vec!["exp"];
        if settings.audience.is_some() {
            required.push("aud");
        }
        if settings.issuer.is_some() {
            required.push("iss");
        }
        validation.set_required_spec_claims(&required);
        match &settings.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &settings.issuer {
            validation.set_issuer(&[iss]);
        }
        Ok(Some(Self {
            decoding,
            encoding,
            validation,
            audience: settings.audience.clone(),
            issuer: settings.issuer.clone(),
        }))
    }

    /// The grant of `token`, or `None` (bad signature, algorithm, expiry, audience, issuer,
    /// claims, or no session named).
    pub fn verify(&self, token: &str) -> Option<TokenGrant> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).ok()?;
        let claims = data.claims;
        let mut sessions = claims.sessions;
        sessions.extend(claims.session);
        sessions.retain(|s| !s.is_empty());
        if sessions.is_empty() {
            return None;
        }
        let actions = match claims.actions {
            None => KeyActions::DEFAULT,
            Some(names) => parse_actions(&names)?,
        };
        Some(TokenGrant { sessions, actions })
    }

    /// Whether wharf can mint (it holds the HS256 secret).
    pub fn can_mint(&self) -> bool {
        self.encoding.is_some()
    }

    /// A token for `session` with `actions` (names), valid `ttl_seconds` from `now`.
    /// `None` when wharf holds no signing secret.
    pub fn mint(
        &self,
        session: &str,
        actions: Option<Vec<String>>,
        now: u64,
        ttl_seconds: u64,
    ) -> Option<(String, u64)> {
        let key = self.encoding.as_ref()?;
        let exp = now + ttl_seconds;
        let claims = Claims {
            exp,
            session: Some(session.to_string()),
            sessions: Vec::new(),
            actions,
            aud: self.audience.clone(),
            iss: self.issuer.clone(),
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, key).ok()?;
        Some((token, exp))
    }
}

/// Action names → [`KeyActions`]; `None` on an unknown name (the token is refused).
pub fn parse_actions(names: &[String]) -> Option<KeyActions> {
    let mut a = KeyActions::NONE;
    for name in names {
        match name.as_str() {
            "read" => a.read = true,
            "send" => a.send = true,
            "control" => a.control = true,
            "setting" => a.setting = true,
            "app" => a.app = true,
            "delete" => a.delete = true,
            _ => return None,
        }
    }
    Some(a)
}

/// Whether `s` looks like a compact JWS (three dot-separated parts).
pub fn looks_like_jwt(s: &str) -> bool {
    s.split('.').count() == 3
}

/// A public key read from PEM, in the form jsonwebtoken's RustCrypto backend verifies with.
enum PublicKey {
    /// PKCS#1 `RSAPublicKey` DER.
    Rsa(Vec<u8>),
    /// SEC1 point (P-256).
    Ec(Vec<u8>),
}

/// `-----BEGIN PUBLIC KEY-----` (SPKI, RSA or EC) or `-----BEGIN RSA PUBLIC KEY-----`
/// (PKCS#1). jsonwebtoken's own PEM parser is behind a feature whose crates wharf does not
/// build, and SPKI needs only this much DER.
fn public_key(pem: &[u8]) -> Option<PublicKey> {
    use base64::Engine;
    let text = std::str::from_utf8(pem).ok()?;
    let begin = text.lines().find(|l| l.starts_with("-----BEGIN "))?;
    let body: String = text
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN "))
        .skip(1)
        .take_while(|l| !l.starts_with("-----END "))
        .map(str::trim)
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    if begin.contains("RSA PUBLIC KEY") {
        return Some(PublicKey::Rsa(der));
    }
    if !begin.contains("BEGIN PUBLIC KEY") {
        return None;
    }
    // SubjectPublicKeyInfo ::= SEQUENCE { AlgorithmIdentifier, BIT STRING }
    let (spki, _) = der_item(&der, 0x30)?;
    let (alg, rest) = der_item(spki, 0x30)?;
    let (bits, _) = der_item(rest, 0x03)?;
    let (oid, _) = der_item(alg, 0x06)?;
    let key = bits.get(1..)?.to_vec(); // skip the unused-bits byte
    const RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
    const EC: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
    match oid {
        RSA => Some(PublicKey::Rsa(key)),
        EC => Some(PublicKey::Ec(key)),
        _ => None,
    }
}

/// One DER item of `tag` at the start of `input`: (its contents, what follows).
fn der_item(input: &[u8], tag: u8) -> Option<(&[u8], &[u8])> {
    let (&t, rest) = input.split_first()?;
    if t != tag {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some(rest.split_at(len))
}
