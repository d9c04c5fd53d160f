//! Dialling WhatsApp through a session's proxy: HTTP `CONNECT` or SOCKS5.
//!
//! Owns: [`Proxy`] (parsed from WAHA's `config.proxy` / `WHATSAPP_PROXY_SERVER`) and
//! [`Proxy::connect`], which opens a `TCP_NODELAY` connection to the proxy and asks it for a
//! tunnel to WhatsApp. Used by `engine::transport` on every (re)connect of a session whose
//! config names a proxy; a `Proxy` lives as long as the session's client.
//!
//! WAHA's `server` is `host:port` without a scheme, meaning an HTTP proxy; wharf also takes
//! `http://host:port` and `socks5://host:port` (and `socks5h://`, the same here: the proxy
//! always resolves the name). Credentials go as `Proxy-Authorization: Basic` (HTTP) or
//! RFC 1929 username/password (SOCKS5).

use base64::Engine as _;
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

use crate::model::session::ProxyConfig;

/// How to talk to the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// HTTP `CONNECT` (WAHA's only kind).
    Http,
    /// SOCKS5 with a domain-name target.
    Socks5,
}

/// A session's proxy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proxy {
    /// Protocol.
    pub kind: Kind,
    /// Proxy host.
    pub host: String,
    /// Proxy port.
    pub port: u16,
    /// `(username, password)`, when both are given.
    pub auth: Option<(String, String)>,
}

/// Why a proxy cannot be used (the session's connection attempt fails with it).
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// `server` is not `[scheme://]host:port`.
    #[error("proxy server {0:?} is not host:port (optionally with http:// or socks5://)")]
    BadServer(String),
    /// The proxy could not be reached.
    #[error("proxy {0} unreachable: {1}")]
    Unreachable(String, std::io::Error),
    /// The proxy refused or broke the tunnel.
    #[error("proxy {0} refused the tunnel: {1}")]
    Refused(String, String),
}

impl Proxy {
    /// Parses WAHA's `ProxyConfig`.
    ///
    /// # Errors
    /// [`ProxyError::BadServer`].
    pub fn parse(config: &ProxyConfig) -> Result<Self, ProxyError> {
        let server = config.server.trim();
        let bad = || ProxyError::BadServer(config.server.clone());
        let (kind, rest) = match server.split_once("://") {
            None => (Kind::Http, server),
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "http" => (Kind::Http, rest),
                "socks5" | "socks5h" => (Kind::Socks5, rest),
                _ => return Err(bad()),
            },
        };
        let rest = rest.trim_end_matches('/');
        let (host, port) = rest.rsplit_once(':').ok_or_else(bad)?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port: u16 = port.parse().map_err(|_| bad())?;
        if host.is_empty() || port == 0 || host.contains(['/', '@', ' ']) {
            return Err(bad());
        }
        let auth = match (&config.username, &config.password) {
            (Some(u), Some(p)) if !u.is_empty() => Some((u.clone(), p.clone())),
            (Some(u), None) if !u.is_empty() => Some((u.clone(), String::new())),
            _ => None,
        };
        Ok(Self {
            kind,
            host: host.to_string(),
            port,
            auth,
        })
    }

    fn name(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }

    /// A `TCP_NODELAY` connection to `host:port` through the proxy, ready for TLS or the
    /// websocket upgrade.
    ///
    /// # Errors
    /// The proxy is unreachable or refuses.
    pub async fn connect(&self, host: &str, port: u16) -> Result<TcpStream, ProxyError> {
        let mut stream = super::transport::dial(&self.host, self.port)
            .await
            .map_err(|e| ProxyError::Unreachable(self.name(), e))?;
        let refused = |why: String| ProxyError::Refused(self.name(), why);
        let io = |e: std::io::Error| ProxyError::Refused(self.name(), e.to_string());
        match self.kind {
            Kind::Http => {
                let target = if host.contains(':') {
                    format!("[{host}]:{port}")
                } else {
                    format!("{host}:{port}")
                };
                let mut head = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
                if let Some((user, pass)) = &self.auth {
                    let token =
                        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
                    head.push_str(&format!("Proxy-Authorization: Basic {token}\r\n"));
                }
                head.push_str("\r\n");
                stream.write_all(head.as_bytes()).await.map_err(io)?;
                // Read the answer's head byte by byte: nothing after it may be consumed (the
                // tunnel's first bytes belong to TLS or the websocket).
                let mut answer = Vec::with_capacity(128);
                while !answer.ends_with(b"\r\n\r\n") {
                    if answer.len() > 8 * 1024 {
                        return Err(refused("answer head too long".into()));
                    }
                    let b = stream.read_u8().await.map_err(io)?;
                    answer.push(b);
                }
                let status_line = String::from_utf8_lossy(&answer);
                let status_line = status_line.lines().next().unwrap_or_default();
                let code = status_line.split_whitespace().nth(1).unwrap_or_default();
                if !code.starts_with('2') {
                    return Err(refused(status_line.to_string()));
                }
            }
            Kind::Socks5 => {
                let method = if self.auth.is_some() { 0x02 } else { 0x00 };
                stream.write_all(&[5, 1, method]).await.map_err(io)?;
                let mut reply = [0u8; 2];
                stream.read_exact(&mut reply).await.map_err(io)?;
                if reply != [5, method] {
                    return Err(refused(format!("method {reply:?}")));
                }
                if let Some((user, pass)) = &self.auth {
                    let (u, p) = (user.as_bytes(), pass.as_bytes());
                    let (Ok(ul), Ok(pl)) = (u8::try_from(u.len()), u8::try_from(p.len())) else {
                        return Err(refused("username or password over 255 bytes".into()));
                    };
                    let mut msg = vec![1, ul];
                    msg.extend_from_slice(u);
                    msg.push(pl);
                    msg.extend_from_slice(p);
                    stream.write_all(&msg).await.map_err(io)?;
                    stream.read_exact(&mut reply).await.map_err(io)?;
                    if reply[1] != 0 {
                        return Err(refused("authentication failed".into()));
                    }
                }
                let name = host.as_bytes();
                let Ok(len) = u8::try_from(name.len()) else {
                    return Err(refused("target name over 255 bytes".into()));
                };
                let mut msg = vec![5, 1, 0, 3, len];
                msg.extend_from_slice(name);
                msg.extend_from_slice(&port.to_be_bytes());
                stream.write_all(&msg).await.map_err(io)?;
                let mut head = [0u8; 4];
                stream.read_exact(&mut head).await.map_err(io)?;
                if head[1] != 0 {
                    return Err(refused(format!("SOCKS5 reply code {}", head[1])));
                }
                // The bound address: skip it.
                let skip = match head[3] {
                    1 => 4,
                    4 => 16,
                    3 => usize::from(stream.read_u8().await.map_err(io)?),
                    other => return Err(refused(format!("address type {other}"))),
                };
                let mut rest = vec![0u8; skip + 2];
                stream.read_exact(&mut rest).await.map_err(io)?;
            }
        }
        Ok(stream)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(server: &str) -> ProxyConfig {
        ProxyConfig {
            server: server.into(),
            username: Some("u".into()),
            password: Some("p".into()),
        }
    }

    #[test]
    fn parses_waha_and_scheme_forms() {
        let p = Proxy::parse(&cfg("proxy.local:3128")).unwrap();
        assert_eq!(
            (p.kind, p.host.as_str(), p.port),
            (Kind::Http, "proxy.local", 3128)
        );
        assert_eq!(p.auth, Some(("u".into(), "p".into())));
        let p = Proxy::parse(&cfg("socks5://127.0.0.1:1080/")).unwrap();
        assert_eq!((p.kind, p.port), (Kind::Socks5, 1080));
        let p = Proxy::parse(&cfg("http://[::1]:8080")).unwrap();
        assert_eq!(p.host, "::1");
        for bad in ["", "host", "host:0", "host:x", "ftp://h:1", "u@h:1", ":80"] {
            assert!(Proxy::parse(&cfg(bad)).is_err(), "{bad}");
        }
    }
}
