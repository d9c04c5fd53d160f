//! The WhatsApp websocket, dialled by wharf so that its socket has `TCP_NODELAY`.
//!
//! Owns: [`NoDelayTransportFactory`], the whatsapp-rust `TransportFactory` every session's
//! client is built with, and the process-wide TLS connector it shares (built once, on the
//! first `wss://` dial). Called by `engine::run` once per session start; the client calls
//! the factory on every (re)connect, and each transport lives as long as that connection.
//!
//! Why not whatsapp-rust's own `TokioWebSocketTransportFactory`: it dials with
//! `TcpStream::connect` and never sets `TCP_NODELAY`, so Nagle holds every small frame
//! back until the peer's delayed ACK — a flat ~40 ms on each request/response round trip
//! (issue 16: 44 ms per `sendText` one at a time, 3 ms with the option set). Here the TCP
//! connection is made and tuned first, then TLS (for `wss://`) and the websocket upgrade
//! run on it, and whatsapp-rust's `from_websocket` wraps the result exactly as its own
//! factory would. A session with `config.proxy` gets its TCP connection from
//! [`Proxy::connect`] (HTTP `CONNECT` or SOCKS5) instead of a direct dial. The transport is
//! handed back wrapped in `write_buffer::ShrinkingTransport`, which lets the noise socket's
//! write buffer shrink after a large frame.

use std::sync::{Arc, OnceLock};

use tokio::net::TcpStream;

use super::proxy::Proxy;
use tokio_websockets::{ClientBuilder, Connector};
use whatsapp_rust::{
    transport::{
        Transport, TransportEvent, TransportFactory, default_tls_connector, from_websocket,
    },
    wacore::net::{WHATSAPP_WEB_ORIGIN, WHATSAPP_WEB_WS_URL},
};

/// Dials WhatsApp's websocket (or `WHARF_WA_URL` in mock-network builds) over a
/// `TCP_NODELAY` socket, sending WhatsApp Web's `Origin` as whatsapp-rust's factory does.
pub(crate) struct NoDelayTransportFactory {
    url: String,
    /// The session's proxy (`config.proxy`), tunnelled through on every dial.
    proxy: Option<Proxy>,
    /// Cluster mode: no dial without the session's lease, so a worker resumed after a
    /// freeze never connects a device another worker now runs.
    fence: Option<crate::cluster::Fence>,
    /// Told of every dial (`engine::run`: a dial while logged in means the connection
    /// ended, even one whose end the client expected and did not report).
    dialing: Option<tokio::sync::mpsc::UnboundedSender<super::Raw>>,
}

impl NoDelayTransportFactory {
    /// A factory for `url` (`None` = WhatsApp's own `wss://web.whatsapp.com/ws/chat`),
    /// through `proxy` when given.
    pub(crate) fn new(url: Option<String>, proxy: Option<Proxy>) -> Self {
        Self {
            url: url.unwrap_or_else(|| WHATSAPP_WEB_WS_URL.to_string()),
            proxy,
            fence: None,
            dialing: None,
        }
    }

    /// Dials only while `fence` holds (cluster mode).
    pub(crate) fn fenced(mut self, fence: Option<crate::cluster::Fence>) -> Self {
        self.fence = fence;
        self
    }

    /// Reports each dial to `tx` (the client's event queue of `engine::run`).
    pub(super) fn dialing(mut self, tx: tokio::sync::mpsc::UnboundedSender<super::Raw>) -> Self {
        self.dialing = Some(tx);
        self
    }
}

/// The rustls connector of every `wss://` dial: whatsapp-rust's default (webpki roots, the
/// `ring` provider), built once — a fresh one per connect would rebuild the root store.
fn tls_connector() -> &'static Connector {
    static TLS: OnceLock<Connector> = OnceLock::new();
    TLS.get_or_init(default_tls_connector)
}

/// Opens a TCP connection to `host:port` with `TCP_NODELAY` set: what every WhatsApp
/// connection starts from (public so a test can check the option on a real socket).
///
/// # Errors
/// The name does not resolve, the connection is refused, or the option cannot be set.
pub async fn dial(host: &str, port: u16) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

#[async_trait::async_trait]
impl TransportFactory for NoDelayTransportFactory {
    async fn create_transport(
        &self,
    ) -> Result<(Arc<dyn Transport>, async_channel::Receiver<TransportEvent>), anyhow::Error> {
        if let Some(tx) = &self.dialing {
            // The receiver is gone once the session's run is over: nothing to tell.
            let _ = tx.send(super::Raw::Dialing);
        }
        if let Some(fence) = &self.fence {
            fence.check()?;
        }
        let uri: http::Uri = self
            .url
            .parse()
            .map_err(|e| anyhow::anyhow!("invalid WhatsApp URL {:?}: {e}", self.url))?;
        let tls = match uri.scheme_str() {
            Some("wss") => true,
            Some("ws") => false,
            other => anyhow::bail!("unsupported WhatsApp URL scheme {other:?}"),
        };
        // `Uri::host` keeps an IPv6 literal's brackets; the resolver wants it bare.
        let host = uri
            .host()
            .ok_or_else(|| anyhow::anyhow!("no host in {:?}", self.url))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let tcp = match &self.proxy {
            Some(proxy) => proxy.connect(&host, port).await?,
            None => dial(&host, port).await?,
        };
        // One stream type for both schemes (`MaybeTlsStream`), so whatsapp-rust's transport
        // is instantiated once.
        let connector = if tls {
            tls_connector()
        } else {
            &Connector::Plain
        };
        let stream = connector.wrap(&host, tcp).await?;
        let builder = ClientBuilder::from_uri(uri).add_header(
            http::header::ORIGIN,
            http::HeaderValue::from_static(WHATSAPP_WEB_ORIGIN),
        )?;
        let (ws, _) = builder.connect_on(stream).await?;
        let (transport, events) = from_websocket(ws);
        Ok((
            super::write_buffer::ShrinkingTransport::wrap(transport),
            events,
        ))
    }
}
