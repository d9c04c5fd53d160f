//! The one piece of Signal crypto the mock does: the primary phone's
//! `AppStateSyncKeyShare` to a freshly linked companion.
//!
//! whatsapp-rust waits up to 10 s after its first login for this share before
//! it reports `Connected`; a real phone sends it right after linking. The mock
//! phone plays Signal *initiator* once per new companion (X3DH from the
//! companion's uploaded bundle, one PreKeySignalMessage) with throwaway
//! in-memory stores. Called by [`crate::conn`] on the first login after
//! pairing; each call is a short-lived task.

use std::collections::HashMap;

use anyhow::{Context, Result, anyhow};
use async_trait::async_trait;
use wacore::libsignal::protocol::{
    CiphertextMessage, Direction, IdentityChange, IdentityKey, IdentityKeyPair, IdentityKeyStore,
    KeyPair, PreKeyBundle, ProtocolAddress, PublicKey, SessionRecord, SessionStore, UsePQRatchet,
    message_encrypt, process_prekey_bundle,
};
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::wire::{B, bytes, child, pn_jid};

type SignalResult<T> = std::result::Result<T, wacore::libsignal::protocol::SignalProtocolError>;

#[derive(Default)]
struct Sessions(HashMap<String, SessionRecord>);

#[async_trait]
impl SessionStore for Sessions {
    async fn load_session(&self, address: &ProtocolAddress) -> SignalResult<Option<SessionRecord>> {
        Ok(self.0.get(address.as_str()).cloned())
    }
    async fn has_session(&self, address: &ProtocolAddress) -> SignalResult<bool> {
        Ok(self.0.contains_key(address.as_str()))
    }
    async fn store_session(
        &mut self,
        address: &ProtocolAddress,
        record: SessionRecord,
    ) -> SignalResult<()> {
        self.0.insert(address.as_str().to_string(), record);
        Ok(())
    }
}

struct Identity(IdentityKeyPair);

#[async_trait]
impl IdentityKeyStore for Identity {
    async fn get_identity_key_pair(&self) -> SignalResult<IdentityKeyPair> {
        Ok(self.0.clone())
    }
    async fn get_local_registration_id(&self) -> SignalResult<u32> {
        Ok(1)
    }
    async fn save_identity(
        &mut self,
        _address: &ProtocolAddress,
        _identity: &IdentityKey,
    ) -> SignalResult<IdentityChange> {
        Ok(IdentityChange::from_changed(false))
    }
    async fn is_trusted_identity(
        &self,
        _address: &ProtocolAddress,
        _identity: &IdentityKey,
        _direction: Direction,
    ) -> SignalResult<bool> {
        Ok(true)
    }
    async fn get_identity(&self, _address: &ProtocolAddress) -> SignalResult<Option<IdentityKey>> {
        Ok(None)
    }
}

/// The companion's public prekey bundle, as stored by the mock.
pub(crate) struct Bundle {
    pub(crate) registration: Vec<u8>,
    pub(crate) identity: Vec<u8>,
    /// The `<skey>` node (`<id>`, `<value>`, `<signature>`).
    pub(crate) skey: Node,
    /// A one-time `<key>` node (`<id>`, `<value>`), if any was uploaded.
    pub(crate) prekey: Option<Node>,
}

fn be_uint(b: &[u8]) -> u32 {
    b.iter().fold(0u32, |acc, x| (acc << 8) | u32::from(*x))
}

fn part(n: &Node, tag: &str) -> Result<Vec<u8>> {
    child(n, tag)
        .and_then(bytes)
        .map(<[u8]>::to_vec)
        .with_context(|| format!("<{}> lacks <{tag}>", n.tag))
}

/// Builds the `<message>` carrying the account's app-state sync key
/// (`key_id`, `key_data`: one per phone, see [`crate::appstate`]) from `phone`'s primary
/// (device 0) to companion device `device`, then one `<message>` per `extra` protocol
/// message (e.g. a history sync notification) in the same Signal session, in order.
pub(crate) async fn key_share_message(
    account: &KeyPair,
    raw_id: u32,
    phone: &str,
    device: u16,
    bundle: Bundle,
    (key_id, key_data): (Vec<u8>, [u8; 32]),
    extra: Vec<wa::Message>,
) -> Result<Vec<Node>> {
    let identity = IdentityKey::new(
        PublicKey::from_djb_public_key_bytes(&bundle.identity).map_err(|e| anyhow!("{e}"))?,
    );
    let prekey = match &bundle.prekey {
        Some(k) => Some((
            be_uint(&part(k, "id")?).into(),
            PublicKey::from_djb_public_key_bytes(&part(k, "value")?).map_err(|e| anyhow!("{e}"))?,
        )),
        None => None,
    };
    let pq = PreKeyBundle::new(
        be_uint(&bundle.registration),
        u32::from(device).into(),
        prekey,
        be_uint(&part(&bundle.skey, "id")?).into(),
        PublicKey::from_djb_public_key_bytes(&part(&bundle.skey, "value")?)
            .map_err(|e| anyhow!("{e}"))?,
        part(&bundle.skey, "signature")?,
        identity,
    )
    .map_err(|e| anyhow!("bundle: {e}"))?;

    let address = ProtocolAddress::new(phone, u32::from(device).into());
    let mut sessions = Sessions::default();
    let mut ident = Identity(IdentityKeyPair::new(
        IdentityKey::new(account.public_key),
        account.private_key.clone(),
    ));
    let mut rng = rand::make_rng::<rand::rngs::StdRng>();
    process_prekey_bundle(
        &address,
        &mut sessions,
        &mut ident,
        &pq,
        &mut rng,
        UsePQRatchet::No,
    )
    .await
    .map_err(|e| anyhow!("x3dh: {e}"))?;

    let msg = wa::Message {
        protocol_message: buffa::MessageField::some(wa::message::ProtocolMessage {
            r#type: Some(wa::message::protocol_message::Type::APP_STATE_SYNC_KEY_SHARE),
            app_state_sync_key_share: buffa::MessageField::some(
                wa::message::AppStateSyncKeyShare {
                    keys: vec![wa::message::AppStateSyncKey {
                        key_id: buffa::MessageField::some(wa::message::AppStateSyncKeyId {
                            key_id: Some(key_id),
                        }),
                        key_data: buffa::MessageField::some(wa::message::AppStateSyncKeyData {
                            key_data: Some(key_data.to_vec()),
                            fingerprint: buffa::MessageField::some(
                                wa::message::AppStateSyncKeyFingerprint {
                                    raw_id: Some(raw_id),
                                    current_index: Some(0),
                                    device_indexes: vec![0],
                                },
                            ),
                            timestamp: Some(crate::state::now() * 1000),
                        }),
                    }],
                },
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    let mut out = Vec::with_capacity(1 + extra.len());
    for msg in std::iter::once(msg).chain(extra) {
        out.push(encrypt(&msg, phone, &address, &mut sessions, &mut ident).await?);
    }
    Ok(out)
}

/// One `<message>` from the primary, encrypted in the session set up above.
async fn encrypt(
    msg: &wa::Message,
    phone: &str,
    address: &ProtocolAddress,
    sessions: &mut Sessions,
    ident: &mut Identity,
) -> Result<Node> {
    let plain = wacore::messages::MessageUtils::encode_and_pad(msg);
    let ct = message_encrypt(&plain, address, sessions, ident)
        .await
        .map_err(|e| anyhow!("encrypt: {e}"))?;
    let ty = match &ct {
        CiphertextMessage::PreKeySignalMessage(_) => "pkmsg",
        CiphertextMessage::SignalMessage(_)
        | CiphertextMessage::SenderKeyMessage(_)
        | CiphertextMessage::PlaintextContent(_) => "msg",
    };
    Ok(B::new("message")
        .a("from", pn_jid(phone, 0))
        .a("id", crate::state::random_token(10))
        .a("type", "text")
        .a("category", "peer")
        .a("t", crate::state::now().to_string())
        .kids([B::new("enc")
            .a("v", "2")
            .a("type", ty)
            .bytes(ct.serialize().to_vec())
            .build()])
        .build())
}
