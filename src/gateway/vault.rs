//! Envelope encryption for stored payment data.
//!
//! * A [`MasterKey`] (32 bytes, configured outside the database) wraps
//!   [`DataKey`]s with AES-256-GCM. The wrapped form is the string
//!   `base64_std(nonce(12) || ciphertext(32) || tag(16))`, 80 characters,
//!   suitable for a text column next to the key's id.
//! * A data key seals records with AES-256-GCM into the self-describing string
//!   `v1:<key_id>:<base64_std(nonce(12) || ciphertext || tag(16))>`.
//!   Every encryption uses a fresh random 96-bit nonce. The associated data
//!   actually authenticated is `v1:<key_id>:` followed by the caller's AAD, so
//!   a record cannot be relabelled with another key id or version.
//! * [`fingerprint`] is a keyed hash of a PAN for duplicate detection without
//!   decrypting.
//!
//! Keys are zeroed on drop (`zeroize`), clones included; their `Debug` output
//! never shows key bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use rand::RngExt;
use sha2::Sha256;
use zeroize::Zeroize;

/// Record format version written by [`seal`].
const RECORD_VERSION: &str = "v1";
/// AES-GCM nonce length in bytes.
const NONCE_LEN: usize = 12;
/// AES-256 key length in bytes.
const KEY_LEN: usize = 32;
/// Associated data binding wrapped data keys to their purpose.
const WRAP_AAD: &[u8] = b"coffer:data-key:v1";

/// Why a key could not be loaded or a record could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VaultError {
    /// A key string is neither 64 hex digits nor base64 of 32 bytes.
    #[error("key must be 32 bytes as 64 hex digits or standard base64")]
    InvalidKey,
    /// A key id is empty or contains `:`.
    #[error("key id must be non-empty and must not contain ':'")]
    InvalidKeyId,
    /// The record is not `v1:<key_id>:<base64>` with a long enough payload.
    #[error("malformed record")]
    Malformed,
    /// The record's key id is not known to the key lookup.
    #[error("unknown data key id")]
    UnknownKey,
    /// Authentication failed: wrong key, wrong AAD, or tampered data.
    #[error("decryption failed")]
    Decrypt,
    /// Encryption failed (only for absurdly large inputs).
    #[error("encryption failed")]
    Encrypt,
}

/// The key-encryption key: wraps and unwraps [`DataKey`]s.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

/// A data-encryption key: seals and opens records.
#[derive(Clone)]
pub struct DataKey([u8; KEY_LEN]);

impl Drop for MasterKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl Drop for DataKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl MasterKey {
    /// A new random master key.
    pub fn generate() -> Self {
        MasterKey(random_bytes())
    }

    /// Loads a master key from 64 hex digits or standard base64 of 32 bytes
    /// (surrounding whitespace ignored).
    pub fn from_encoded(s: &str) -> Result<Self, VaultError> {
        let s = s.trim();
        let bytes = zeroize::Zeroizing::new(if s.len() == 2 * KEY_LEN {
            hex::decode(s).map_err(|_| VaultError::InvalidKey)?
        } else {
            BASE64.decode(s).map_err(|_| VaultError::InvalidKey)?
        });
        bytes
            .as_slice()
            .try_into()
            .map(MasterKey)
            .map_err(|_| VaultError::InvalidKey)
    }

    /// The key as 64 lowercase hex digits, for provisioning a generated key
    /// into configuration. Never log this.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Encrypts a data key for storage; see the module docs for the format.
    pub fn wrap(&self, key: &DataKey) -> Result<String, VaultError> {
        encrypt(&self.0, &key.0, WRAP_AAD).map(|bytes| BASE64.encode(bytes))
    }

    /// Decrypts a data key produced by [`MasterKey::wrap`].
    pub fn unwrap_key(&self, wrapped: &str) -> Result<DataKey, VaultError> {
        let bytes = BASE64
            .decode(wrapped.trim())
            .map_err(|_| VaultError::Malformed)?;
        let plain = zeroize::Zeroizing::new(decrypt(&self.0, &bytes, WRAP_AAD)?);
        DataKey::from_bytes(&plain).ok_or(VaultError::Malformed)
    }
}

impl DataKey {
    /// A new random data key.
    pub fn generate() -> Self {
        DataKey(random_bytes())
    }

    /// The raw key, for use as an HMAC key (the vault's MAC key is a wrapped `DataKey`).
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A data key from 32 raw bytes (a key manager's plaintext data key); `None` for any other
    /// length. The caller zeroes its copy.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let key: [u8; KEY_LEN] = bytes.try_into().ok()?;
        Some(DataKey(key))
    }
}

/// Encrypts `plaintext` under `data_key` into
/// `v1:<key_id>:<base64(nonce||ciphertext||tag)>`, authenticating `aad`
/// (e.g. the owning row's id) and the record header. `key_id` must be
/// non-empty and free of `:`.
pub fn seal(
    data_key: &DataKey,
    key_id: &str,
    plaintext: &[u8],
    aad: &[u8],
) -> Result<String, VaultError> {
    if key_id.is_empty() || key_id.contains(':') {
        return Err(VaultError::InvalidKeyId);
    }
    let full_aad = record_aad(key_id, aad);
    let bytes = encrypt(&data_key.0, plaintext, &full_aad)?;
    Ok(format!(
        "{RECORD_VERSION}:{key_id}:{}",
        BASE64.encode(bytes)
    ))
}

/// The id of the data key that sealed a [`seal`] record (`None`: not a sealed record).
pub fn key_id_of(record: &str) -> Option<&str> {
    let mut parts = record.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(RECORD_VERSION), Some(id), Some(_)) if !id.is_empty() => Some(id),
        _ => None,
    }
}

/// Decrypts a [`seal`] record, looking its data key up by the embedded key id.
pub fn open(
    keys: &impl Fn(&str) -> Option<DataKey>,
    record: &str,
    aad: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let mut parts = record.splitn(3, ':');
    let (Some(RECORD_VERSION), Some(key_id), Some(payload)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(VaultError::Malformed);
    };
    if key_id.is_empty() {
        return Err(VaultError::Malformed);
    }
    let bytes = BASE64.decode(payload).map_err(|_| VaultError::Malformed)?;
    let key = keys(key_id).ok_or(VaultError::UnknownKey)?;
    decrypt(&key.0, &bytes, &record_aad(key_id, aad))
}

/// A keyed fingerprint of a card number, `hex(HMAC-SHA256(mac_key, pan))`, for
/// finding the same card again without decrypting. Pass the normalised PAN
/// (digits only, e.g. `CardData::pan`).
pub fn fingerprint(mac_key: &[u8], pan: &str) -> String {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(mac_key)
        .expect("HMAC accepts keys of any length");
    mac.update(pan.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

fn record_aad(key_id: &str, aad: &[u8]) -> Vec<u8> {
    let mut full = format!("{RECORD_VERSION}:{key_id}:").into_bytes();
    full.extend_from_slice(aad);
    full
}

fn random_bytes<const N: usize>() -> [u8; N] {
    rand::rng().random::<[u8; N]>()
}

/// AES-256-GCM with a fresh random nonce; returns `nonce || ciphertext || tag`.
fn encrypt(key: &[u8; KEY_LEN], plaintext: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::InvalidKey)?;
    let nonce_bytes: [u8; NONCE_LEN] = random_bytes();
    let nonce = Nonce::from(nonce_bytes);
    let ciphertext = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| VaultError::Encrypt)?;
    let mut out = Vec::with_capacity(NONCE_LEN + ciphertext.len());
    out.extend_from_slice(&nonce_bytes);
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Inverse of [`encrypt`].
fn decrypt(key: &[u8; KEY_LEN], bytes: &[u8], aad: &[u8]) -> Result<Vec<u8>, VaultError> {
    let (nonce_bytes, ciphertext) = bytes
        .split_first_chunk::<NONCE_LEN>()
        .ok_or(VaultError::Malformed)?;
    let cipher = Aes256Gcm::new_from_slice(key).map_err(|_| VaultError::InvalidKey)?;
    let nonce = Nonce::from(*nonce_bytes);
    cipher
        .decrypt(
            &nonce,
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .map_err(|_| VaultError::Decrypt)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(id: &'static str, key: &DataKey) -> impl Fn(&str) -> Option<DataKey> {
        let key = key.clone();
        move |wanted: &str| (wanted == id).then(|| key.clone())
    }

    #[test]
    fn seal_open_round_trip() {
        let dk = DataKey::generate();
        let record = seal(&dk, "dk1", b"4111111111111111", b"instrument:42").expect("seal");
        assert!(record.starts_with("v1:dk1:"));
        let opened = open(&lookup("dk1", &dk), &record, b"instrument:42").expect("open");
        assert_eq!(opened, b"4111111111111111");
        // Empty plaintext and empty AAD work too.
        let empty = seal(&dk, "dk1", b"", b"").expect("seal");
        assert_eq!(open(&lookup("dk1", &dk), &empty, b"").expect("open"), b"");
    }

    #[test]
    fn every_seal_uses_a_fresh_nonce() {
        let dk = DataKey::generate();
        let a = seal(&dk, "dk1", b"same", b"aad").expect("seal");
        let b = seal(&dk, "dk1", b"same", b"aad").expect("seal");
        assert_ne!(a, b);
        let nonce = |r: &str| BASE64.decode(&r[7..]).expect("b64")[..NONCE_LEN].to_vec();
        assert_ne!(nonce(&a), nonce(&b));
    }

    #[test]
    fn wrong_aad_tamper_and_unknown_key_fail() {
        let dk = DataKey::generate();
        let keys = lookup("dk1", &dk);
        let record = seal(&dk, "dk1", b"secret", b"row-1").expect("seal");
        assert_eq!(open(&keys, &record, b"row-2"), Err(VaultError::Decrypt));

        let mut raw = BASE64.decode(&record[7..]).expect("b64");
        let last = raw.len() - 1;
        raw[last] ^= 1;
        let tampered = format!("v1:dk1:{}", BASE64.encode(&raw));
        assert_eq!(open(&keys, &tampered, b"row-1"), Err(VaultError::Decrypt));
        raw[last] ^= 1;
        raw[NONCE_LEN] ^= 0x80;
        let tampered = format!("v1:dk1:{}", BASE64.encode(&raw));
        assert_eq!(open(&keys, &tampered, b"row-1"), Err(VaultError::Decrypt));

        let relabelled = record.replacen("v1:dk1:", "v1:dk2:", 1);
        assert_eq!(
            open(&keys, &relabelled, b"row-1"),
            Err(VaultError::UnknownKey)
        );
        // Even when the other id maps to the same key, the header is authenticated.
        let both = |id: &str| (id == "dk1" || id == "dk2").then(|| dk.clone());
        assert_eq!(open(&both, &relabelled, b"row-1"), Err(VaultError::Decrypt));

        let other = DataKey::generate();
        assert_eq!(
            open(&lookup("dk1", &other), &record, b"row-1"),
            Err(VaultError::Decrypt)
        );
    }

    #[test]
    fn malformed_records_and_key_ids() {
        let dk = DataKey::generate();
        let keys = lookup("dk1", &dk);
        for bad in [
            "",
            "v1",
            "v1:dk1",
            "v2:dk1:AAAA",
            "v1::AAAA",
            "v1:dk1:not base64!",
            "v1:dk1:AAAA",
        ] {
            assert_eq!(open(&keys, bad, b""), Err(VaultError::Malformed), "{bad:?}");
        }
        assert_eq!(seal(&dk, "", b"x", b""), Err(VaultError::InvalidKeyId));
        assert_eq!(seal(&dk, "a:b", b"x", b""), Err(VaultError::InvalidKeyId));
    }

    #[test]
    fn wrap_unwrap_with_master_key() {
        let master = MasterKey::generate();
        let dk = DataKey::generate();
        let wrapped = master.wrap(&dk).expect("wrap");
        assert_eq!(wrapped.len(), 80);
        assert_ne!(wrapped, master.wrap(&dk).expect("wrap"), "fresh nonce");
        let unwrapped = master.unwrap_key(&wrapped).expect("unwrap");
        let record = seal(&dk, "k", b"data", b"").expect("seal");
        assert_eq!(
            open(&lookup("k", &unwrapped), &record, b"").expect("open"),
            b"data"
        );

        let other = MasterKey::generate();
        assert_eq!(
            other.unwrap_key(&wrapped).map(|_| ()),
            Err(VaultError::Decrypt)
        );
        assert_eq!(
            master.unwrap_key("AAAA").map(|_| ()),
            Err(VaultError::Malformed)
        );
        assert_eq!(
            master.unwrap_key("%%").map(|_| ()),
            Err(VaultError::Malformed)
        );
    }

    #[test]
    fn master_key_from_hex_or_base64() {
        let hex_key = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
        let a = MasterKey::from_encoded(hex_key).expect("hex");
        assert_eq!(a.to_hex(), hex_key);
        let b64 = BASE64.encode(hex::decode(hex_key).expect("hex"));
        let b = MasterKey::from_encoded(&format!(" {b64}\n")).expect("base64");
        assert_eq!(b.to_hex(), hex_key);
        let dk = DataKey::generate();
        let wrapped = a.wrap(&dk).expect("wrap");
        assert!(b.unwrap_key(&wrapped).is_ok());

        let generated = MasterKey::generate();
        let reloaded = MasterKey::from_encoded(&generated.to_hex()).expect("reload");
        assert_eq!(reloaded.to_hex(), generated.to_hex());

        for bad in [
            "",
            "00",
            &hex_key[..62],
            &format!("{hex_key}00"),
            "zz".repeat(32).as_str(),
        ] {
            assert_eq!(
                MasterKey::from_encoded(bad).map(|_| ()),
                Err(VaultError::InvalidKey)
            );
        }
    }

    #[test]
    fn debug_never_prints_key_bytes() {
        let key = MasterKey::from_encoded(&"ab".repeat(32)).expect("hex");
        let shown = format!("{key:?} {:?}", DataKey::generate());
        assert!(!shown.contains("ab"), "{shown}");
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn fingerprint_is_stable_and_keyed() {
        let f = fingerprint(b"k1", "4111111111111111");
        assert_eq!(f.len(), 64);
        assert_eq!(f, fingerprint(b"k1", "4111111111111111"));
        assert_ne!(f, fingerprint(b"k2", "4111111111111111"));
        assert_ne!(f, fingerprint(b"k1", "4242424242424242"));
        // RFC 4231 test case 2 pins the construction to HMAC-SHA256.
        assert_eq!(
            fingerprint(b"Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
