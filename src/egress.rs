//! Where wharf may send HTTP requests it is told to make (webhooks, and media URLs).
//!
//! Owns: [`EgressPolicy`] — the address ranges a user-supplied URL may not reach — and the
//! DNS resolver that enforces it for every name reqwest looks up, so a hostname that
//! resolves to a cloud metadata address is refused as surely as a literal one. Built once
//! from [`crate::config::Config`] at start; cheap to clone; lives as long as the process.
//!
//! Defaults (wharf's addition; WAHA has none): link-local ranges — which hold every cloud's
//! instance-metadata endpoint (`169.254.169.254`, AWS's `fd00:ec2::254`) — and wharf's own
//! listening port are refused. Loopback and private ranges stay allowed, because webhook
//! receivers very often live there (a sidecar, a container on the same network).
//! `WHARF_EGRESS_DENY` adds ranges; `WHARF_EGRESS_ALLOW` re-opens ranges (it wins).

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        Arc,
        atomic::{AtomicU16, Ordering},
    },
};

use ipnet::IpNet;

/// The ranges refused by default: IPv4/IPv6 link-local and AWS's IPv6 metadata address.
const DEFAULT_DENY: &[&str] = &["169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128"];

/// Why a URL may not be fetched.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EgressError {
    /// Not an absolute `http(s)` URL, or it holds control characters.
    #[error("not an http(s) URL")]
    NotHttp,
    /// The target address is in a refused range (or is wharf itself).
    #[error("address {0} is refused by the egress policy (WHARF_EGRESS_ALLOW / WHARF_EGRESS_DENY)")]
    Refused(IpAddr),
}

/// The refused and re-allowed ranges. Cheap to clone.
#[derive(Debug, Clone)]
pub struct EgressPolicy {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    deny: Vec<IpNet>,
    allow: Vec<IpNet>,
    /// wharf's own listening port, once bound (0: not yet): requests to a local address on
    /// it would make wharf call itself with the user's payload.
    own_port: AtomicU16,
}

impl Default for EgressPolicy {
    fn default() -> Self {
        Self::new(&[], &[])
    }
}

impl EgressPolicy {
    /// The default ranges plus `deny`, minus whatever `allow` covers.
    pub fn new(deny: &[IpNet], allow: &[IpNet]) -> Self {
        let mut all: Vec<IpNet> = DEFAULT_DENY.iter().filter_map(|s| s.parse().ok()).collect();
        all.extend_from_slice(deny);
        Self {
            inner: Arc::new(Inner {
                deny: all,
                allow: allow.to_vec(),
                own_port: AtomicU16::new(0),
            }),
        }
    }

    /// Parses a comma-separated list of CIDR ranges or single addresses.
    ///
    /// # Errors
    /// The first entry that is neither.
    pub fn parse_ranges(list: &str) -> Result<Vec<IpNet>, String> {
        list.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<IpNet>()
                    .or_else(|_| s.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{s:?} is not an address or CIDR range"))
            })
            .collect()
    }

    /// Records the port wharf listens on, so requests to itself are refused.
    pub fn set_own_port(&self, port: u16) {
        self.inner.own_port.store(port, Ordering::Relaxed);
    }

    /// Whether `addr` may be reached.
    ///
    /// # Errors
    /// [`EgressError::Refused`] naming the address.
    pub fn check_addr(&self, addr: SocketAddr) -> Result<(), EgressError> {
        let ip = canonical(addr.ip());
        if self.inner.allow.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        let own = self.inner.own_port.load(Ordering::Relaxed);
        let is_self = own != 0 && addr.port() == own && is_local(ip);
        if is_self || self.inner.deny.iter().any(|n| n.contains(&ip)) {
            return Err(EgressError::Refused(ip));
        }
        Ok(())
    }

    /// Checks a URL before a request: its syntax, and its host when it is a literal address
    /// (names are checked after resolution by [`EgressPolicy::resolver`]).
    ///
    /// # Errors
    /// [`EgressError::NotHttp`] or [`EgressError::Refused`].
    pub fn check_url(&self, url: &str) -> Result<(), EgressError> {
        if url.chars().any(char::is_control) {
            return Err(EgressError::NotHttp);
        }
        let parsed = reqwest::Url::parse(url).map_err(|_| EgressError::NotHttp)?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(EgressError::NotHttp);
        }
        let port = parsed.port_or_known_default().unwrap_or(80);
        match parsed.host() {
            Some(url::Host::Ipv4(ip)) => self.check_addr(SocketAddr::new(ip.into(), port)),
            Some(url::Host::Ipv6(ip)) => self.check_addr(SocketAddr::new(ip.into(), port)),
            Some(url::Host::Domain(_)) => Ok(()),
            None => Err(EgressError::NotHttp),
        }
    }

    /// A reqwest DNS resolver that drops refused addresses (and fails when none is left).
    pub fn resolver(&self) -> Arc<PolicyResolver> {
        Arc::new(PolicyResolver {
            policy: self.clone(),
        })
    }
}

impl EgressPolicy {
    /// A new HTTP client for user-given URLs other than webhooks (media to send, link
    /// previews) under this policy: `TCP_NODELAY`, the policy on every resolved address,
    /// and on every redirect target (a redirect to a literal metadata address never reaches
    /// the resolver). One per app: each app's own port is its own "wharf itself" (tests run
    /// several apps in one process, and a port a stopped app freed is an ordinary one).
    pub fn http_client(&self) -> reqwest::Client {
        let policy = self.clone();
        let redirects = reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= 10 {
                attempt.error("too many redirects")
            } else if let Err(e) = policy.check_url(attempt.url().as_str()) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        });
        reqwest::Client::builder()
            .tcp_nodelay(true)
            .connect_timeout(std::time::Duration::from_secs(10))
            .redirect(redirects)
            .dns_resolver(self.resolver())
            .build()
            .unwrap_or_default()
    }
}

/// IPv4-mapped IPv6 addresses are judged as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        IpAddr::V4(_) => ip,
    }
}

/// Addresses that reach this machine: loopback and "any" (`0.0.0.0` connects locally).
fn is_local(ip: IpAddr) -> bool {
    ip.is_loopback() || ip.is_unspecified()
}

/// See [`EgressPolicy::resolver`].
#[derive(Debug)]
pub struct PolicyResolver {
    policy: EgressPolicy,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|a| match policy.check_addr(*a) {
                    Ok(()) => true,
                    Err(e) => {
                        refused = Some(e);
                        false
                    }
                })
                .collect();
            if allowed.is_empty()
                && let Some(e) = refused
            {
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn metadata_and_link_local_are_refused_private_and_loopback_are_not() {
        let p = EgressPolicy::default();
        assert!(p.check_addr(addr("169.254.169.254:80")).is_err());
        assert!(p.check_addr(addr("[fd00:ec2::254]:80")).is_err());
        assert!(p.check_addr(addr("[::ffff:169.254.169.254]:80")).is_err());
        assert!(p.check_addr(addr("[fe80::1]:80")).is_err());
        assert!(p.check_addr(addr("127.0.0.1:8080")).is_ok());
        assert!(p.check_addr(addr("10.1.2.3:443")).is_ok());
        assert!(p.check_addr(addr("192.168.1.10:443")).is_ok());
    }

    #[test]
    fn own_port_on_loopback_is_refused_once_known() {
        let p = EgressPolicy::default();
        assert!(p.check_addr(addr("127.0.0.1:3000")).is_ok());
        p.set_own_port(3000);
        assert!(p.check_addr(addr("127.0.0.1:3000")).is_err());
        assert!(p.check_addr(addr("127.0.0.1:3001")).is_ok());
        assert!(p.check_addr(addr("10.0.0.5:3000")).is_ok());
    }

    #[test]
    fn allow_wins_over_deny_and_deny_adds() {
        let deny = EgressPolicy::parse_ranges("10.0.0.0/8, 192.0.2.7").unwrap();
        let allow = EgressPolicy::parse_ranges("169.254.10.0/24").unwrap();
        let p = EgressPolicy::new(&deny, &allow);
        assert!(p.check_addr(addr("10.9.9.9:80")).is_err());
        assert!(p.check_addr(addr("192.0.2.7:80")).is_err());
        assert!(p.check_addr(addr("169.254.10.1:80")).is_ok());
        assert!(p.check_addr(addr("169.254.169.254:80")).is_err());
        assert!(EgressPolicy::parse_ranges("10.0.0.0/33").is_err());
    }

    #[test]
    fn urls_with_control_characters_or_other_schemes_are_refused() {
        let p = EgressPolicy::default();
        assert_eq!(p.check_url("http://a\0b/"), Err(EgressError::NotHttp));
        assert_eq!(
            p.check_url("http://example.test/\r\nX: y"),
            Err(EgressError::NotHttp)
        );
        assert_eq!(p.check_url("file:///etc/passwd"), Err(EgressError::NotHttp));
        assert!(p.check_url("http://169.254.169.254/latest").is_err());
        assert!(p.check_url("http://127.0.0.1:9/hook?token=x").is_ok());
        assert!(p.check_url("https://hooks.example.test/x").is_ok());
    }
}
