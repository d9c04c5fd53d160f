//! Releases the noise socket's write buffer after a large frame (issue 16, item 3).
//!
//! Owns: [`ShrinkingTransport`], the wrapper around every WhatsApp transport wharf dials.
//! Built by `engine::transport` on each (re)connect; lives as long as that connection.
//!
//! Why: whatsapp-rust's sender task encrypts every frame into one `BytesMut` and hands
//! the written part to the transport with `split().freeze()`. Once the transport has
//! dropped that `Bytes`, the buffer is the only owner of its allocation again, and the
//! next `reserve` reuses the whole allocation in place: a buffer that once held a large
//! frame keeps that capacity for the life of the connection. Pairing sends one such frame
//! (the first pre-key upload: 812 keys, ~50 KiB), so every paired session held ~55 KiB
//! more than the same session after a restart (measured with heaptrack; see README
//! "Benchmarks"). The buffer is private to whatsapp-rust, but its growth rule is not: when
//! the allocation is still shared at the moment the buffer runs out of room, `bytes`
//! allocates a fresh buffer of the original size (4 KiB) instead of growing the old one.
//! So the wrapper keeps the last frame it sent alive until the next one arrives: the old
//! allocation is then never reclaimed for reuse, and is freed once the buffer has moved
//! on and the next send drops the kept frame. The cost is one 4 KiB allocation each time
//! the buffer fills (every few dozen small frames) and one frame kept per connection.
//! Limit: the room left in an allocation after a large frame is still used by the frames
//! that follow (keepalives, receipts), so that allocation goes only once they have filled
//! it (heaptrack: 60 → 39 KiB per session 15 s after pairing).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use whatsapp_rust::transport::Transport;

/// A [`Transport`] that keeps the last frame sent alive until the next send (see the
/// module header for why).
pub(crate) struct ShrinkingTransport {
    inner: Arc<dyn Transport>,
    last_sent: Mutex<Option<Bytes>>,
}

impl ShrinkingTransport {
    pub(crate) fn wrap(inner: Arc<dyn Transport>) -> Arc<dyn Transport> {
        Arc::new(Self {
            inner,
            last_sent: Mutex::new(None),
        })
    }
}

#[async_trait::async_trait]
impl Transport for ShrinkingTransport {
    async fn send(&self, data: Bytes) -> Result<(), anyhow::Error> {
        // A clone is a reference count, not a copy of the frame.
        let keep = data.clone();
        let sent = self.inner.send(data).await;
        // Replacing drops the frame before: its allocation is freed here if the sender's
        // buffer has already moved to a new one.
        let previous = self
            .last_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(keep);
        drop(previous);
        sent
    }

    async fn disconnect(&self) {
        self.last_sent
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.inner.disconnect().await;
    }

    fn resource_report(&self) -> Option<whatsapp_rust::TransportResourceReport> {
        self.inner.resource_report()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    /// Counts what reaches the wire, dropping each frame once written (as the websocket
    /// transport does).
    struct Wire;

    #[async_trait::async_trait]
    impl Transport for Wire {
        async fn send(&self, data: Bytes) -> Result<(), anyhow::Error> {
            drop(data);
            Ok(())
        }
        async fn disconnect(&self) {}
    }

    /// whatsapp-rust's sender loop in miniature: frames are appended to one `BytesMut`
    /// (initial capacity 4 KiB) and handed over with `split().freeze()`. Returns the
    /// buffer's allocation size (`capacity` once empty) after one large frame and `small`
    /// small frames.
    async fn capacity_after(transport: &dyn Transport, small: usize) -> usize {
        let mut out = BytesMut::with_capacity(4096);
        let frames =
            std::iter::once(vec![7u8; 60 * 1024]).chain((0..small).map(|_| vec![1u8; 120]));
        for frame in frames {
            out.reserve(frame.len());
            out.extend_from_slice(&frame);
            transport.send(out.split().freeze()).await.expect("send");
        }
        // What the next frame would have to work with: reserving a whole empty buffer's
        // worth shows whether the big allocation is still behind it.
        out.reserve(1);
        out.capacity() + out.len()
    }

    #[tokio::test]
    async fn a_large_frame_does_not_keep_its_buffer() {
        // Without the wrapper, the buffer reclaims the 60 KiB allocation and keeps it: this
        // is the behaviour the wrapper exists to undo (if `bytes` changes it, this says so).
        let plain: Arc<dyn Transport> = Arc::new(Wire);
        assert!(
            capacity_after(plain.as_ref(), 3).await >= 59 * 1024,
            "the plain transport no longer shows the retained buffer"
        );
        let wrapped = ShrinkingTransport::wrap(Arc::new(Wire));
        let left = capacity_after(wrapped.as_ref(), 3).await;
        assert!(left <= 8 * 1024, "buffer still holds {left} bytes");
    }
}
