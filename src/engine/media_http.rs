//! The HTTP client whatsapp-rust uses for media (CDN upload and download).
//!
//! Owns: [`MediaHttp`], whatsapp-rust's stock blocking `ureq` client, plus one test-build
//! twist. whatsapp-rust always builds media URLs as `https://{media_conn host}/…`; the
//! mock network (`WHARF_WA_URL`, mock-network builds only) answers `media_conn` with its own
//! `HOST:PORT` but serves plain HTTP, so for that one host the scheme is rewritten to
//! `http://` (`compat-tests/mockwa/README.md`, "Media URLs"). A default build never
//! rewrites anything. Built once per connection by `engine::run`; lives as long as the
//! client.

use whatsapp_rust::http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient};
use whatsapp_rust::wacore::net::{StreamingHttpResponse, UploadBody};

/// whatsapp-rust's `ureq` client, with the mock network's scheme rewrite in test builds.
pub struct MediaHttp {
    /// `https://HOST:PORT` of the mock network, when one is configured (test builds).
    mock_prefix: Option<String>,
    inner: UreqHttpClient,
}

impl MediaHttp {
    /// The client for a session whose WhatsApp websocket is `wa_url` (`None`: WhatsApp),
    /// through the session's `proxy` when it has one.
    pub fn new(wa_url: Option<&str>, proxy: Option<&super::proxy::Proxy>) -> Self {
        let mock_prefix = if cfg!(feature = "mock-network") {
            wa_url
                .and_then(mock_host)
                .map(|host| format!("https://{host}"))
        } else {
            None
        };
        let inner = match proxy.and_then(proxied_agent) {
            Some(agent) => UreqHttpClient::with_agent(agent),
            None => UreqHttpClient::new(),
        };
        Self { mock_prefix, inner }
    }

    fn rewrite(&self, mut request: HttpRequest) -> HttpRequest {
        if let Some(prefix) = &self.mock_prefix
            && request.url.starts_with(prefix.as_str())
        {
            request.url = format!("http://{}", &request.url["https://".len()..]);
        }
        request
    }
}

/// A `ureq` agent that tunnels through `proxy` (ureq speaks HTTP `CONNECT` and SOCKS5
/// itself), with the small buffers whatsapp-rust's own agent uses. `None` when ureq cannot
/// take the proxy's URI (the parse in `engine::proxy` makes that unlikely).
fn proxied_agent(proxy: &super::proxy::Proxy) -> Option<ureq::Agent> {
    let scheme = match proxy.kind {
        super::proxy::Kind::Http => "http",
        super::proxy::Kind::Socks5 => "socks5h",
    };
    let auth = proxy
        .auth
        .as_ref()
        .map_or_else(String::new, |(user, pass)| {
            format!("{}:{}@", percent(user), percent(pass))
        });
    let host = if proxy.host.contains(':') {
        format!("[{}]", proxy.host)
    } else {
        proxy.host.clone()
    };
    let uri = format!("{scheme}://{auth}{host}:{}", proxy.port);
    let proxy = match ureq::Proxy::new(&uri) {
        Ok(p) => p,
        Err(e) => {
            tracing::warn!("media client cannot use the proxy: {e}");
            return None;
        }
    };
    let config = ureq::config::Config::builder()
        .input_buffer_size(16 * 1024)
        .output_buffer_size(16 * 1024)
        .max_idle_connections(4)
        .max_idle_connections_per_host(2)
        .proxy(Some(proxy))
        .build();
    Some(config.into())
}

/// Percent-encodes everything but RFC 3986's unreserved characters (proxy credentials,
/// the channel upload's `auth` query value).
pub(super) fn percent(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// `ws://127.0.0.1:PORT/ws/chat` → `127.0.0.1:PORT`.
fn mock_host(url: &str) -> Option<String> {
    let rest = url
        .strip_prefix("ws://")
        .or_else(|| url.strip_prefix("wss://"))?;
    let host = rest.split('/').next()?;
    (!host.is_empty()).then(|| host.to_string())
}

#[whatsapp_rust::async_trait]
impl HttpClient for MediaHttp {
    async fn execute(&self, request: HttpRequest) -> anyhow::Result<HttpResponse> {
        self.inner.execute(self.rewrite(request)).await
    }

    fn supports_streaming(&self) -> bool {
        self.inner.supports_streaming()
    }

    fn execute_streaming(&self, request: HttpRequest) -> anyhow::Result<StreamingHttpResponse> {
        self.inner.execute_streaming(self.rewrite(request))
    }

    fn supports_upload_streaming(&self) -> bool {
        self.inner.supports_upload_streaming()
    }

    fn execute_upload(
        &self,
        request: HttpRequest,
        body: UploadBody,
        content_length: u64,
    ) -> anyhow::Result<HttpResponse> {
        self.inner
            .execute_upload(self.rewrite(request), body, content_length)
    }
}

#[cfg(test)]
mod tests {
    use super::mock_host;

    #[test]
    fn mock_host_is_the_websocket_authority() {
        assert_eq!(
            mock_host("ws://127.0.0.1:4455/ws/chat").as_deref(),
            Some("127.0.0.1:4455")
        );
        assert_eq!(mock_host("http://x/y"), None);
    }
}
