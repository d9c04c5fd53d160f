//! Media: `media_conn` points at the mock; an encrypted upload round-trips
//! through the mock's HTTP media store to the receiver.

use mockwa::MockNetwork;
use whatsapp_rust::UploadOptions;
use whatsapp_rust::download::MediaType;
use whatsapp_rust::media::{ImageOptions, image_message};
use whatsapp_rust::prelude::*;

use crate::harness::paired_client;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn image_upload_download_round_trip() {
    let net = MockNetwork::start("127.0.0.1:0").await.unwrap();
    let ((a, _), (b, _)) = tokio::join!(
        paired_client(&net, "15550007001", "Uma"),
        paired_client(&net, "15550007002", "Vic"),
    );
    let payload: Vec<u8> = (0..50_000u32).map(|i| (i * 31 % 251) as u8).collect();
    let up = a
        .client
        .upload(payload.clone(), MediaType::Image, UploadOptions::default())
        .await
        .expect("upload");
    let msg = image_message(
        up,
        ImageOptions {
            caption: Some("a picture".into()),
            ..Default::default()
        },
    );
    a.client
        .send_message(Jid::pn("15550007002"), msg)
        .await
        .expect("send image");
    let got = b
        .wait_for(
            "image message",
            std::time::Duration::from_secs(20),
            |e| match e {
                Event::Messages(batch) => batch
                    .messages
                    .iter()
                    .find_map(|m| m.message.image_message.as_option().cloned()),
                _ => None,
            },
        )
        .await;
    let bytes = b.client.download(&got).await.expect("download");
    assert_eq!(bytes, payload);
    a.stop().await;
    b.stop().await;
}
