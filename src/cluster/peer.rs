//! The cluster credential: how one wharf worker proves to another that a request comes
//! from a member of the same cluster (`WHARF_CLUSTER_SECRET`).
//!
//! Owns the signing and checking of the `X-Wharf-Cluster` header. Callers: whatever a
//! worker sends to a peer (request forwarding to a session's owner, event fan-out between
//! workers) signs with [`PeerCredential::sign`]; the receiving side checks with
//! [`PeerCredential::verify`] before trusting anything peer-only (e.g. "do not forward
//! again"). One [`PeerCredential`] lives in the [`super::ClusterSettings`] for the life of
//! the process.
//!
//! The header is `v1 <worker-id> <unix-ms> <hex HMAC-SHA256>` over
//! `v1\n<worker-id>\n<unix-ms>\n<METHOD>\n<path-and-query>`: it binds the sender, the time
//! and the request line, so a captured header is useless for another request and stale
//! after [`MAX_SKEW`]. The client's own credentials (`X-Api-Key`, a session token) are
//! forwarded untouched and checked by the receiver as usual: the cluster credential never
//! grants access by itself.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The request header carrying the cluster credential.
pub const HEADER: &str = "x-wharf-cluster";

/// How far a signed request's time may be from the receiver's clock.
pub const MAX_SKEW: Duration = Duration::from_secs(60);

/// The shortest secret accepted (bytes).
pub const MIN_SECRET_LEN: usize = 16;

/// The shared secret of a cluster and this worker's id.
#[derive(Clone)]
pub struct PeerCredential {
    secret: std::sync::Arc<[u8]>,
    worker_id: String,
}

impl std::fmt::Debug for PeerCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the secret.
        f.debug_struct("PeerCredential")
            .field("worker_id", &self.worker_id)
            .finish_non_exhaustive()
    }
}

impl PartialEq for PeerCredential {
    fn eq(&self, other: &Self) -> bool {
        self.worker_id == other.worker_id && bool::from(self.secret.ct_eq(&other.secret))
    }
}

impl Eq for PeerCredential {}

/// Why a cluster credential was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    /// Not `v1 <worker> <ms> <hex>`.
    #[error("malformed cluster credential")]
    Malformed,
    /// Signed too long ago or too far in the future.
    #[error("cluster credential outside the allowed clock skew")]
    Stale,
    /// The signature does not match (another secret, or another request).
    #[error("cluster credential signature mismatch")]
    BadSignature,
}

fn now_ms() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis()
}

impl PeerCredential {
    /// A credential for `worker_id` with the cluster's `secret`.
    pub fn new(secret: &str, worker_id: &str) -> Self {
        Self {
            secret: secret.as_bytes().into(),
            worker_id: worker_id.to_string(),
        }
    }

    fn mac(&self, worker: &str, ms: &str, method: &str, path_and_query: &str) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.secret)
            .expect("HMAC-SHA256 accepts keys of any length");
        for part in ["v1", worker, ms, method, path_and_query] {
            mac.update(part.as_bytes());
            mac.update(b"\n");
        }
        mac.finalize().into_bytes().to_vec()
    }

    /// The header value for a request `method path_and_query` sent now by this worker.
    pub fn sign(&self, method: &str, path_and_query: &str) -> String {
        self.sign_at(method, path_and_query, now_ms())
    }

    fn sign_at(&self, method: &str, path_and_query: &str, ms: u128) -> String {
        let ms = ms.to_string();
        let mac = self.mac(&self.worker_id, &ms, method, path_and_query);
        format!("v1 {} {ms} {}", self.worker_id, hex::encode(mac))
    }

    /// Checks a header received with `method path_and_query`; the sender's worker id.
    ///
    /// # Errors
    /// [`PeerAuthError`] when the header is malformed, stale or not signed with our secret
    /// for this very request.
    pub fn verify(
        &self,
        header: &str,
        method: &str,
        path_and_query: &str,
    ) -> Result<String, PeerAuthError> {
        self.verify_at(header, method, path_and_query, now_ms())
    }

    fn verify_at(
        &self,
        header: &str,
        method: &str,
        path_and_query: &str,
        now: u128,
    ) -> Result<String, PeerAuthError> {
        let mut parts = header.split(' ');
        let (Some("v1"), Some(worker), Some(ms), Some(sig), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(PeerAuthError::Malformed);
        };
        let sent: u128 = ms.parse().map_err(|_| PeerAuthError::Malformed)?;
        let sig = hex::decode(sig).map_err(|_| PeerAuthError::Malformed)?;
        if worker.is_empty() {
            return Err(PeerAuthError::Malformed);
        }
        if sent.abs_diff(now) > MAX_SKEW.as_millis() {
            return Err(PeerAuthError::Stale);
        }
        let expected = self.mac(worker, ms, method, path_and_query);
        if bool::from(expected.ct_eq(&sig)) {
            Ok(worker.to_string())
        } else {
            Err(PeerAuthError::BadSignature)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_request_verifies_only_as_itself() {
        let a = PeerCredential::new("0123456789abcdef", "w1");
        let b = PeerCredential::new("0123456789abcdef", "w2");
        let h = a.sign("POST", "/api/sendText");
        assert_eq!(b.verify(&h, "POST", "/api/sendText").as_deref(), Ok("w1"));
        assert_eq!(
            b.verify(&h, "GET", "/api/sendText"),
            Err(PeerAuthError::BadSignature)
        );
        assert_eq!(
            b.verify(&h, "POST", "/api/sendText?x=1"),
            Err(PeerAuthError::BadSignature)
        );
        let other = PeerCredential::new("another secret!!", "w2");
        assert_eq!(
            other.verify(&h, "POST", "/api/sendText"),
            Err(PeerAuthError::BadSignature)
        );
        // The sender's id is signed too.
        let forged = h.replacen("w1", "w3", 1);
        assert_eq!(
            b.verify(&forged, "POST", "/api/sendText"),
            Err(PeerAuthError::BadSignature)
        );
    }

    #[test]
    fn stale_and_malformed_credentials_are_refused() {
        let a = PeerCredential::new("0123456789abcdef", "w1");
        let h = a.sign_at("GET", "/x", 1_000_000);
        let late = 1_000_000 + MAX_SKEW.as_millis() + 1;
        assert_eq!(
            a.verify_at(&h, "GET", "/x", late),
            Err(PeerAuthError::Stale)
        );
        assert_eq!(a.verify_at(&h, "GET", "/x", 1_000_500).as_deref(), Ok("w1"));
        for bad in [
            "",
            "v1",
            "v2 w1 1 00",
            "v1 w1 x 00",
            "v1 w1 1 zz",
            "v1 w1 1 00 extra",
        ] {
            assert_eq!(
                a.verify(bad, "GET", "/x"),
                Err(PeerAuthError::Malformed),
                "{bad}"
            );
        }
        assert!(!format!("{a:?}").contains("0123456789abcdef"));
    }
}
