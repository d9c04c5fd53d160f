//! A real whatsapp-rust client on the mock network, standing in for a contact's phone:
//! it uploads media to the mock CDN and sends any `wa::Message` to a wharf session (what
//! wharf itself cannot send yet, it still has to receive).

use std::{sync::Arc, time::Duration};

use whatsapp_rust::{
    UploadOptions,
    download::MediaType,
    http::{HttpClient, HttpRequest, HttpResponse, UreqHttpClient},
    prelude::*,
    transport::TokioWebSocketTransportFactory,
    wacore::store::InMemoryBackend,
    waproto::whatsapp as wa,
};

/// whatsapp-rust builds `https://{media_conn host}` URLs; the mock serves plain HTTP
/// (compat-tests/mockwa/README.md, "Media URLs").
struct MockHttp {
    prefix: String,
    inner: UreqHttpClient,
}

#[whatsapp_rust::async_trait]
impl HttpClient for MockHttp {
    async fn execute(&self, mut request: HttpRequest) -> anyhow::Result<HttpResponse> {
        if request.url.starts_with(&self.prefix) {
            request.url = format!("http://{}", &request.url["https://".len()..]);
        }
        self.inner.execute(request).await
    }
}

struct Recorder(tokio::sync::mpsc::UnboundedSender<Arc<Event>>);

impl EventHandler for Recorder {
    fn handle_event(&self, event: Arc<Event>) {
        let _ = self.0.send(event);
    }
}

/// A paired client of `phone`.
pub struct Phone {
    /// The client.
    pub client: Arc<Client>,
    handle: Option<BotHandle>,
}

impl Phone {
    /// Links a fresh client to the mock phone `phone` (created if new) and waits until it
    /// is connected.
    #[expect(
        clippy::wildcard_enum_match_arm,
        reason = "Event is non_exhaustive; only pairing events matter here"
    )]
    pub async fn pair(net: &mockwa::MockNetwork, phone: &str) -> Phone {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let bot = Bot::builder()
            .with_backend_arc(Arc::new(InMemoryBackend::new()))
            .with_transport_factory(TokioWebSocketTransportFactory::new().with_url(net.ws_url()))
            .with_http_client(MockHttp {
                prefix: format!("https://{}", net.addr()),
                inner: UreqHttpClient::new(),
            })
            .with_version(wharf::engine::DEFAULT_WA_VERSION)
            .skip_history_sync()
            .with_event_handler(Recorder(tx))
            .build()
            .await
            .expect("test phone builds");
        let client = bot.client();
        let handle = bot.spawn();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(40);
        let mut scanned = false;
        loop {
            let event = tokio::time::timeout_at(deadline, rx.recv())
                .await
                .expect("test phone connects in time")
                .expect("test phone event stream");
            match &*event {
                Event::PairingQrCode(q) if !scanned => {
                    net.scan_qr(&q.code, phone, &format!("Phone {phone}"))
                        .expect("mock phone scans");
                    scanned = true;
                }
                Event::Connected(_) => break,
                _ => {}
            }
        }
        Phone {
            client,
            handle: Some(handle),
        }
    }

    /// Uploads `bytes` as `kind` to the mock CDN.
    pub async fn upload(
        &self,
        bytes: &[u8],
        kind: MediaType,
    ) -> whatsapp_rust::upload::UploadResponse {
        self.client
            .upload(bytes.to_vec(), kind, UploadOptions::default())
            .await
            .expect("upload to the mock CDN")
    }

    /// Sends `message` to the phone number `to`; returns the WhatsApp id.
    pub async fn send(&self, to: &str, message: wa::Message) -> String {
        self.client
            .send_message(Jid::pn(to.to_string()), message)
            .await
            .expect("test phone sends")
            .message_id
    }

    /// Stops the client.
    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}
