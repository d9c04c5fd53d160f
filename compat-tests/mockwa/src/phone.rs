//! The mock phones: the primary device of each virtual number, which links
//! companions (QR or pairing code) and signs their ADV identities.
//!
//! Called by the admin layer ([`crate::admin`]) when a test "scans" a QR or
//! types a pairing code, and by [`crate::conn`] for the companion side of the
//! pair-code exchange. Stateless apart from what it writes into [`State`].

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use buffa::Message as _;
use wacore::libsignal::crypto::CryptographicMac;
use wacore::libsignal::protocol::{KeyPair, PublicKey};
use wacore::pair_code::PairCodeUtils;
use wacore_binary::Node;
use waproto::whatsapp as wa;

use crate::state::{ConnHandle, DevKey, Device, RegData, State, now};
use crate::wire::{B, lid_jid, pn_jid, server_jid};

/// Fields of a companion QR string: `ref,noise,identity,adv_secret[,type]`.
pub(crate) struct QrFields {
    pub(crate) pairing_ref: String,
    pub(crate) noise_pub: Vec<u8>,
    pub(crate) identity_pub: Vec<u8>,
    pub(crate) adv_secret: Vec<u8>,
}

pub(crate) fn parse_qr(qr: &str) -> Result<QrFields> {
    // Tolerate the deep-link prefix some renderers add.
    let body = qr.rsplit('#').next().unwrap_or(qr).trim();
    let parts: Vec<&str> = body.split(',').collect();
    if parts.len() < 4 {
        bail!("QR string must have at least 4 comma-separated fields");
    }
    let b64 = base64::engine::general_purpose::STANDARD;
    Ok(QrFields {
        pairing_ref: parts[0].to_string(),
        noise_pub: b64.decode(parts[1]).context("QR noise key")?,
        identity_pub: b64.decode(parts[2]).context("QR identity key")?,
        adv_secret: b64.decode(parts[3]).context("QR adv secret")?,
    })
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Result<Vec<u8>> {
    let mut mac = CryptographicMac::new("HmacSha256", key).map_err(|e| anyhow!("{e}"))?;
    mac.update(data);
    Ok(mac.finalize())
}

/// Builds the `ADVSignedDeviceIdentityHMAC` the primary sends in pair-success.
fn signed_identity_hmac(
    account: &KeyPair,
    raw_id: u32,
    key_index: u32,
    companion_identity_pub: &[u8],
    adv_secret: &[u8],
) -> Result<Vec<u8>> {
    let details = wa::ADVDeviceIdentity {
        raw_id: Some(raw_id),
        timestamp: Some(now() as u64),
        key_index: Some(key_index),
        account_type: Some(wa::ADVEncryptionType::E2EE),
        device_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut msg = Vec::with_capacity(2 + details.len() + 32);
    msg.extend_from_slice(&[6, 0]);
    msg.extend_from_slice(&details);
    msg.extend_from_slice(companion_identity_pub);
    let sig = wacore::crypto::calculate_curve_signature(&account.private_key, &msg)
        .map_err(|e| anyhow!("sign: {e}"))?;
    let signed = wa::ADVSignedDeviceIdentity {
        details: Some(details),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
        account_signature: Some(sig.to_vec()),
        device_signature: None,
    }
    .encode_to_vec();
    let hmac = hmac_sha256(adv_secret, &signed)?;
    Ok(wa::ADVSignedDeviceIdentityHMAC {
        details: Some(signed),
        hmac: Some(hmac),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec())
}

/// The phone's signed list of valid companion key indexes (`<key-index-list>`
/// content in usync device answers); clients drop companions without it.
pub(crate) fn signed_key_index_list(
    account: &KeyPair,
    raw_id: u32,
    indexes: &[u32],
) -> Result<Vec<u8>> {
    let details = wa::ADVKeyIndexList {
        raw_id: Some(raw_id),
        timestamp: Some(now() as u64),
        current_index: indexes.iter().copied().max(),
        valid_indexes: indexes.to_vec(),
        account_type: Some(wa::ADVEncryptionType::E2EE),
    }
    .encode_to_vec();
    let mut msg = Vec::with_capacity(2 + details.len());
    msg.extend_from_slice(&[6, 2]);
    msg.extend_from_slice(&details);
    let sig = wacore::crypto::calculate_curve_signature(&account.private_key, &msg)
        .map_err(|e| anyhow!("sign: {e}"))?;
    Ok(wa::ADVSignedKeyIndexList {
        details: Some(details),
        account_signature: Some(sig.to_vec()),
        account_signature_key: Some(account.public_key.public_key_bytes().to_vec()),
    }
    .encode_to_vec())
}

/// Tells the account's other devices, and every phone that fetched this
/// account's device list, that `key` was added or removed
/// (`<notification type="devices">`), so cached device lists stay right.
pub(crate) fn announce_device(st: &mut State, key: &DevKey, op: &'static str) {
    let Some(phone) = st.phones.get(&key.0) else {
        return;
    };
    let mut indexes: Vec<u32> = st
        .devices
        .iter()
        .filter(|((p, _), d)| p == &key.0 && d.registered)
        .map(|(_, d)| d.key_index)
        .collect();
    indexes.sort_unstable();
    let Ok(signed) = signed_key_index_list(&phone.account, phone.raw_id, &indexes) else {
        return;
    };
    let key_index = st.devices.get(&key.clone()).map_or(0, |d| d.key_index);
    let node = B::new("notification")
        .a("from", pn_jid(&key.0, 0))
        .a("lid", lid_jid(&phone.lid, 0))
        .a("type", "devices")
        .a("id", crate::state::random_token(8))
        .a("t", now().to_string())
        .kids([B::new(op)
            .kids([
                B::new("device")
                    .a("jid", pn_jid(&key.0, key.1))
                    .a("key-index", key_index.to_string())
                    .a("lid", lid_jid(&phone.lid, key.1))
                    .build(),
                B::new("key-index-list")
                    .a("ts", now().to_string())
                    .bytes(signed)
                    .build(),
            ])
            .build()])
        .build();
    let watchers = st.device_watchers.get(&key.0).cloned().unwrap_or_default();
    let targets: Vec<DevKey> = st
        .devices
        .iter()
        .filter(|(k, d)| d.registered && *k != key && (k.0 == key.0 || watchers.contains(&k.0)))
        .map(|(k, _)| k.clone())
        .collect();
    for t in targets {
        st.deliver(&t, node.clone());
    }
}

/// Everything needed to link one companion connection to a phone.
pub(crate) struct LinkRequest<'a> {
    pub(crate) conn: &'a ConnHandle,
    pub(crate) noise_pub: [u8; 32],
    pub(crate) reg: RegData,
    pub(crate) identity_pub: &'a [u8],
    pub(crate) adv_secret: &'a [u8],
    pub(crate) phone: &'a str,
}

/// Allocates a device on the phone, records it (unregistered until the
/// companion countersigns) and sends `pair-success`. Returns the device key.
pub(crate) fn link(st: &mut State, req: LinkRequest<'_>) -> Result<DevKey> {
    let phone = st
        .phones
        .get_mut(req.phone)
        .context("phone must exist before linking")?;
    let device_id = phone.next_device;
    phone.next_device = phone
        .next_device
        .checked_add(1)
        .context("device ids exhausted")?;
    let key_index = phone.next_key_index;
    phone.next_key_index += 1;
    let identity = signed_identity_hmac(
        &phone.account,
        phone.raw_id,
        key_index,
        req.identity_pub,
        req.adv_secret,
    )?;
    let mut kids = vec![
        B::new("device-identity").bytes(identity).build(),
        B::new("device")
            .a("jid", pn_jid(req.phone, device_id))
            .a("lid", lid_jid(&phone.lid, device_id))
            .build(),
    ];
    // The push name travels as the pair-success business name: the client
    // stores it as its own push name, which keeps later logins off the
    // "fetch push name from app state" bootstrap path.
    if !phone.push_name.is_empty() {
        kids.push(B::new("biz").a("name", phone.push_name.clone()).build());
    }
    kids.push(B::new("platform").a("name", "android").build());
    let iq = B::new("iq")
        .a("from", server_jid())
        .a("type", "set")
        .a("xmlns", "md")
        .a("id", crate::state::random_token(8))
        .a("t", now().to_string())
        .kids([B::new("pair-success").kids(kids).build()])
        .build();
    let key: DevKey = (req.phone.to_string(), device_id);
    st.devices.insert(
        key.clone(),
        Device {
            noise_pub: req.noise_pub,
            reg: req.reg,
            skey: None,
            prekeys: Default::default(),
            prekey_low_sent: false,
            signed_identity: None,
            key_index,
            registered: false,
            key_share_pending: true,
            conn: None,
            active: false,
            offline: Default::default(),
        },
    );
    st.pairing.insert(req.conn.id, key.clone());
    if !req.conn.send(iq) {
        st.devices.remove(&key);
        st.pairing.remove(&req.conn.id);
        bail!("companion connection is gone");
    }
    Ok(key)
}

/// The primary's side of the pair-code exchange, step one: decrypt the
/// companion's ephemeral key with the typed code and answer `primary_hello`.
pub(crate) struct PrimaryHello {
    pub(crate) ephemeral: KeyPair,
    pub(crate) companion_eph_pub: [u8; 32],
    pub(crate) notification: Node,
}

/// CPU-heavy (two PBKDF2 runs): call from `spawn_blocking`.
pub(crate) fn primary_hello(
    code: &str,
    wrapped_companion_eph: &[u8],
    pairing_ref: &[u8],
    primary_identity_pub: &[u8],
) -> Result<PrimaryHello> {
    let code: String = code
        .chars()
        .filter(|c| *c != '-')
        .collect::<String>()
        .to_uppercase();
    // Same wrapping format in both directions: salt ‖ iv ‖ AES-CTR(pub).
    let companion_eph_pub =
        PairCodeUtils::decrypt_primary_ephemeral_pub(wrapped_companion_eph, &code)
            .map_err(|e| anyhow!("unwrap companion ephemeral: {e}"))?;
    let ephemeral = wacore::crypto::generate_curve_key_pair();
    let eph_pub: [u8; 32] = ephemeral
        .public_key
        .public_key_bytes()
        .try_into()
        .map_err(|_| anyhow!("ephemeral key length"))?;
    let wrapped = PairCodeUtils::encrypt_ephemeral_pub(&eph_pub, &code);
    let notification = B::new("notification")
        .a("from", server_jid())
        .a("type", "link_code_companion_reg")
        .a("id", crate::state::random_token(8))
        .a("t", now().to_string())
        .kids([B::new("link_code_companion_reg")
            .a("stage", "primary_hello")
            .kids([
                B::new("link_code_pairing_wrapped_primary_ephemeral_pub")
                    .bytes(wrapped.to_vec())
                    .build(),
                B::new("primary_identity_pub")
                    .bytes(primary_identity_pub.to_vec())
                    .build(),
                B::new("link_code_pairing_ref")
                    .bytes(pairing_ref.to_vec())
                    .build(),
            ])
            .build()])
        .build();
    Ok(PrimaryHello {
        ephemeral,
        companion_eph_pub,
        notification,
    })
}

/// Step two: open the companion's key bundle and derive the ADV secret.
/// Fails (AES-GCM) when the companion derived other keys, i.e. the code typed
/// on the "phone" was not the one the companion displays.
pub(crate) fn open_key_bundle(
    hello: &PrimaryHello,
    primary_identity: &KeyPair,
    wrapped_bundle: &[u8],
) -> Result<(Vec<u8>, [u8; 32])> {
    if wrapped_bundle.len() < 32 + 12 + 16 {
        bail!("key bundle too short");
    }
    let companion_eph = PublicKey::from_djb_public_key_bytes(&hello.companion_eph_pub)
        .map_err(|e| anyhow!("{e}"))?;
    let eph_shared = hello
        .ephemeral
        .private_key
        .calculate_agreement(&companion_eph)
        .map_err(|e| anyhow!("{e}"))?;
    let mut enc_key = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(
        &eph_shared,
        Some(&wrapped_bundle[..32]),
        b"link_code_pairing_key_bundle_encryption_key",
        &mut enc_key,
    )
    .map_err(|e| anyhow!("{e:?}"))?;
    let iv: [u8; 12] = wrapped_bundle[32..44]
        .try_into()
        .map_err(|_| anyhow!("iv length"))?;
    let mut plain = Vec::new();
    wacore::libsignal::crypto::aes_256_gcm_decrypt(
        &enc_key,
        &iv,
        b"",
        &wrapped_bundle[44..],
        &mut plain,
    )
    .map_err(|_| anyhow!("pairing code does not match"))?;
    if plain.len() != 96 {
        bail!("key bundle has wrong length");
    }
    let companion_identity =
        PublicKey::from_djb_public_key_bytes(&plain[..32]).map_err(|e| anyhow!("{e}"))?;
    let id_shared = primary_identity
        .private_key
        .calculate_agreement(&companion_identity)
        .map_err(|e| anyhow!("{e}"))?;
    let mut ikm = Vec::with_capacity(96);
    ikm.extend_from_slice(&eph_shared);
    ikm.extend_from_slice(&id_shared);
    ikm.extend_from_slice(&plain[64..96]);
    let mut adv = [0u8; 32];
    wacore::crypto::hkdf_sha256_into(&ikm, None, b"adv_secret", &mut adv)
        .map_err(|e| anyhow!("{e:?}"))?;
    Ok((plain[..32].to_vec(), adv))
}
