//! Server (responder) side of the WhatsApp Web Noise transport.
//!
//! Owns the XX handshake, the zero-signed certificate chain and the framed,
//! AES-GCM encrypted binary-node codec used after the handshake. Called only by
//! [`crate::conn`]; one [`Transport`] lives exactly as long as its websocket.
//!
//! The chain is deliberately *already expired*: a paired client then keeps
//! choosing XX on reconnect instead of IK, so this module never has to
//! implement IK or XXfallback. Clients must be built with whatsapp-rust's
//! `danger-skip-cert-chain-verify` feature because nobody but WhatsApp can sign
//! a real chain.

use anyhow::{Context, Result, anyhow, bail};
use buffa::Message as _;
use bytes::BytesMut;
use wacore::handshake::{NoiseCipher, NoiseHandshake};
use wacore::libsignal::protocol::KeyPair;
use wacore_binary::Node;
use wacore_binary::consts::{NOISE_PATTERN_XX, WA_CONN_HEADER};
use waproto::whatsapp as wa;

/// Largest frame payload the 3-byte length prefix can express.
const MAX_FRAME: usize = 0xFF_FFFF;

/// Builds the certificate chain the server presents during XX.
///
/// Structure is what the client checks with the danger feature on: the
/// intermediate's issuer serial is 0, the leaf names the intermediate's serial,
/// and the leaf key equals the server static key. Signatures are zeros.
pub(crate) fn build_cert_chain(server_static_pub: &[u8]) -> Vec<u8> {
    use wa::cert_chain::noise_certificate::Details;
    let intermediate = Details {
        serial: Some(1),
        issuer_serial: Some(0),
        key: Some(vec![0xCC; 32]),
        // Expired on purpose (see module docs): 2020-09 .. 2023-11.
        not_before: Some(1_600_000_000),
        not_after: Some(1_700_000_000),
    };
    let leaf = Details {
        serial: Some(2),
        issuer_serial: Some(1),
        key: Some(server_static_pub.to_vec()),
        not_before: Some(1_600_000_000),
        not_after: Some(1_700_000_000),
    };
    wa::CertChain {
        leaf: buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(leaf.encode_to_vec()),
            signature: Some(vec![0u8; 64]),
        }),
        intermediate: buffa::MessageField::some(wa::cert_chain::NoiseCertificate {
            details: Some(intermediate.encode_to_vec()),
            signature: Some(vec![0u8; 64]),
        }),
    }
    .encode_to_vec()
}

/// Accumulates raw websocket bytes and splits them into WA frames.
///
/// The client's very first bytes carry an optional edge-routing pre-intro
/// (`ED\0\1` + 3-byte length + data) and the 4-byte connection header; both are
/// stripped once.
pub(crate) struct FrameReader {
    buf: BytesMut,
    header_seen: bool,
}

impl FrameReader {
    pub(crate) fn new() -> Self {
        Self {
            buf: BytesMut::new(),
            header_seen: false,
        }
    }

    pub(crate) fn feed(&mut self, data: &[u8]) -> Result<()> {
        // Bound memory per connection: one maximal frame plus slack.
        if self.buf.len() + data.len() > MAX_FRAME + 64 * 1024 {
            bail!("frame buffer overflow");
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Returns the next complete frame payload, `Ok(None)` if more bytes are needed.
    pub(crate) fn next_frame(&mut self) -> Result<Option<BytesMut>> {
        if !self.header_seen {
            if self.buf.len() >= 4 && self.buf.starts_with(b"ED\x00\x01") {
                if self.buf.len() < 7 {
                    return Ok(None);
                }
                let len = ((self.buf[4] as usize) << 16)
                    | ((self.buf[5] as usize) << 8)
                    | self.buf[6] as usize;
                if self.buf.len() < 7 + len {
                    return Ok(None);
                }
                let _ = self.buf.split_to(7 + len);
            }
            if self.buf.len() < WA_CONN_HEADER.len() {
                return Ok(None);
            }
            if self.buf[..2] != WA_CONN_HEADER[..2] {
                bail!("missing WA connection header");
            }
            let _ = self.buf.split_to(WA_CONN_HEADER.len());
            self.header_seen = true;
        }
        if self.buf.len() < 3 {
            return Ok(None);
        }
        let len =
            ((self.buf[0] as usize) << 16) | ((self.buf[1] as usize) << 8) | self.buf[2] as usize;
        if self.buf.len() < 3 + len {
            return Ok(None);
        }
        let _ = self.buf.split_to(3);
        let frame = self.buf.split_to(len);
        if self.buf.is_empty() {
            // The frame takes the whole allocation with it: an idle connection does not
            // keep the buffer its largest frame (the 812 pre-key upload) grew to.
            self.buf = BytesMut::new();
        }
        Ok(Some(frame))
    }
}

/// Prefixes a payload with its 3-byte big-endian length.
pub(crate) fn frame(payload: &[u8]) -> Result<Vec<u8>> {
    if payload.len() > MAX_FRAME {
        bail!("frame too large");
    }
    let mut out = Vec::with_capacity(payload.len() + 3);
    out.push((payload.len() >> 16) as u8);
    out.push((payload.len() >> 8) as u8);
    out.push(payload.len() as u8);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Responder state between ServerHello and ClientFinish.
pub(crate) struct XxResponder {
    noise: NoiseHandshake,
    ephemeral: KeyPair,
}

/// What the responder learns from a completed handshake.
pub(crate) struct Handshaked {
    pub(crate) transport: Transport,
    /// The client's Noise static public key (identifies a paired device).
    pub(crate) client_static: [u8; 32],
    pub(crate) payload: wa::ClientPayload,
}

impl XxResponder {
    /// Consumes the ClientHello frame and returns the ServerHello frame bytes.
    pub(crate) fn respond(
        client_hello: &[u8],
        server_static: &KeyPair,
        cert_chain: &[u8],
    ) -> Result<(Self, Vec<u8>)> {
        let msg = wa::HandshakeMessage::decode_from_slice(client_hello)
            .map_err(|e| anyhow!("bad ClientHello: {e}"))?;
        let hello = msg
            .client_hello
            .into_option()
            .context("HandshakeMessage without client_hello")?;
        let client_eph: [u8; 32] = hello
            .ephemeral
            .context("ClientHello without ephemeral")?
            .try_into()
            .map_err(|_| anyhow!("client ephemeral is not 32 bytes"))?;
        if hello.r#static.is_some() {
            // An IK attempt: we only speak XX (see module docs).
            bail!("IK handshake not supported by mockwa");
        }
        let mut noise = NoiseHandshake::new(NOISE_PATTERN_XX, &WA_CONN_HEADER)?;
        noise.authenticate(&client_eph);
        let ephemeral = wacore::crypto::generate_curve_key_pair();
        noise.authenticate(ephemeral.public_key.public_key_bytes());
        noise.mix_shared_secret(ephemeral.private_key.serialize(), &client_eph)?;
        let enc_static = noise.encrypt(server_static.public_key.public_key_bytes())?;
        noise.mix_shared_secret(server_static.private_key.serialize(), &client_eph)?;
        let enc_cert = noise.encrypt(cert_chain)?;
        let reply = wa::HandshakeMessage {
            server_hello: buffa::MessageField::some(wa::handshake_message::ServerHello {
                ephemeral: Some(ephemeral.public_key.public_key_bytes().to_vec()),
                r#static: Some(enc_static),
                payload: Some(enc_cert),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        Ok((Self { noise, ephemeral }, frame(&reply)?))
    }

    /// Consumes the ClientFinish frame and derives the transport keys.
    pub(crate) fn finish(mut self, client_finish: &[u8]) -> Result<Handshaked> {
        let msg = wa::HandshakeMessage::decode_from_slice(client_finish)
            .map_err(|e| anyhow!("bad ClientFinish: {e}"))?;
        let fin = msg
            .client_finish
            .into_option()
            .context("HandshakeMessage without client_finish")?;
        let enc_static = fin.r#static.context("ClientFinish without static")?;
        let enc_payload = fin.payload.context("ClientFinish without payload")?;
        let client_static: [u8; 32] = self
            .noise
            .decrypt(&enc_static)?
            .try_into()
            .map_err(|_| anyhow!("client static is not 32 bytes"))?;
        self.noise
            .mix_shared_secret(self.ephemeral.private_key.serialize(), &client_static)?;
        let payload_bytes = self.noise.decrypt(&enc_payload)?;
        let payload = wa::ClientPayload::decode_from_slice(&payload_bytes)
            .map_err(|e| anyhow!("bad ClientPayload: {e}"))?;
        let (initiator_write, initiator_read) = self.noise.finish()?;
        Ok(Handshaked {
            // The initiator's write key is our read key and vice versa.
            transport: Transport {
                read: initiator_write,
                write: initiator_read,
                read_counter: 0,
                write_counter: 0,
            },
            client_static,
            payload,
        })
    }
}

/// Encrypted node codec for one connection after the handshake.
pub(crate) struct Transport {
    read: NoiseCipher,
    write: NoiseCipher,
    read_counter: u32,
    write_counter: u32,
}

impl Transport {
    /// Decrypts one frame and decodes the binary node inside.
    pub(crate) fn decode(&mut self, mut frame: BytesMut) -> Result<Node> {
        let counter = self.read_counter;
        self.read_counter = counter.checked_add(1).context("read counter exhausted")?;
        self.read
            .decrypt_in_place_with_counter(counter, &mut frame)
            .map_err(|e| anyhow!("frame decrypt failed: {e}"))?;
        let plain = wacore_binary::util::unpack(&frame).map_err(|e| anyhow!("unpack: {e}"))?;
        let node =
            wacore_binary::marshal::unmarshal_ref(&plain).map_err(|e| anyhow!("decode: {e}"))?;
        Ok(node.to_owned())
    }

    /// Encodes, encrypts and frames one node.
    pub(crate) fn encode(&mut self, node: &Node) -> Result<Vec<u8>> {
        let plain = wacore_binary::marshal::marshal(node).map_err(|e| anyhow!("encode: {e}"))?;
        let counter = self.write_counter;
        self.write_counter = counter.checked_add(1).context("write counter exhausted")?;
        let cipher = self
            .write
            .encrypt_with_counter(counter, &plain)
            .map_err(|e| anyhow!("frame encrypt failed: {e}"))?;
        frame(&cipher)
    }
}

#[cfg(test)]
mod tests {
    use super::{FrameReader, frame};
    use wacore_binary::consts::WA_CONN_HEADER;

    #[test]
    fn frame_reader_strips_headers_and_splits_frames() {
        let mut r = FrameReader::new();
        let mut bytes = b"ED\x00\x01\x00\x00\x02xy".to_vec();
        bytes.extend_from_slice(&WA_CONN_HEADER);
        bytes.extend_from_slice(&frame(b"one").unwrap());
        bytes.extend_from_slice(&frame(b"two").unwrap());
        // Fed one byte at a time: partial input never yields a frame early.
        let mut got = Vec::new();
        for b in bytes {
            r.feed(&[b]).unwrap();
            while let Some(f) = r.next_frame().unwrap() {
                got.push(f.to_vec());
            }
        }
        assert_eq!(got, vec![b"one".to_vec(), b"two".to_vec()]);
    }

    #[test]
    fn frame_reader_rejects_missing_header() {
        let mut r = FrameReader::new();
        r.feed(b"GET / HTTP/1.1").unwrap();
        assert!(r.next_frame().is_err());
    }
}
