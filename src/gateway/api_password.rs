//! Machine credentials: the API user's password sent with HTTP Basic auth
//! (spec 1.1, 3.5).
//!
//! The official PHP client does not send the password itself but `sha1`
//! applied ten times, each round hashing the previous round's lowercase hex
//! string (`pass` → `ea2f48f438990a988a53c85e98971cacd2cf309e`), unless the
//! merchant used `setHashedPassword`. The documentation shows the plain
//! password. So the server accepts both forms.
//!
//! # Why a keyed fast hash and not argon2
//!
//! We store `hex(HMAC-SHA256(mac_key, sha1x10(password)))`. API passwords are
//! not chosen by people: Coffer generates them as long random secrets
//! (`crate::ids::random_password`, ~140 bits), so there is no dictionary to
//! attack and a slow, memory-hard hash buys nothing. What it would cost is
//! real: the password is checked on *every* API request, and an argon2 run per
//! request would cap throughput and hand attackers a cheap CPU-exhaustion
//! lever. The HMAC key (held outside the database) additionally makes a
//! stolen database useless for offline guessing. Storing the SHA-1x10 form
//! under the HMAC lets us accept the hashed form the PHP client sends without
//! ever knowing the plain password. People's login passwords stay on argon2.

use hmac::{Hmac, KeyInit, Mac};
use sha1::{Digest, Sha1};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// Number of SHA-1 rounds the PHP client applies (spec 3.5).
const CLIENT_HASH_ROUNDS: usize = 10;

/// The password form the official PHP client sends: `sha1` applied ten times,
/// each round over the previous lowercase-hex string; 40 lowercase hex digits
/// (spec 3.5, PHP `Client::hashPassword`).
pub fn ixopay_client_hash(plain: &str) -> String {
    let mut value = plain.to_owned();
    for _ in 0..CLIENT_HASH_ROUNDS {
        value = hex::encode(Sha1::digest(value.as_bytes()));
    }
    value
}

/// The value to store for an API password:
/// `hex(HMAC-SHA256(mac_key, ixopay_client_hash(plain)))`, 64 lowercase hex.
pub fn store_hash(mac_key: &[u8], plain: &str) -> String {
    keyed(mac_key, &ixopay_client_hash(plain))
}

/// Checks a password from Basic auth against a [`store_hash`] value.
///
/// `given` may be the plain password or, when it is exactly 40 lowercase hex
/// digits, the client's SHA-1x10 form. Both candidates are always computed and
/// compared in constant time.
pub fn verify(mac_key: &[u8], given: &str, stored: &str) -> bool {
    let stored = stored.as_bytes();
    let as_plain = keyed(mac_key, &ixopay_client_hash(given));
    let mut ok = as_plain.as_bytes().ct_eq(stored);
    if is_client_hash(given) {
        ok |= keyed(mac_key, given).as_bytes().ct_eq(stored);
    }
    ok.into()
}

/// Whether `s` has the shape of [`ixopay_client_hash`] output.
fn is_client_hash(s: &str) -> bool {
    s.len() == 40 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn keyed(mac_key: &[u8], client_hash: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key)
        .expect("HMAC accepts keys of any length");
    mac.update(client_hash.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn documented_client_hash_vector() {
        assert_eq!(
            ixopay_client_hash("pass"),
            "ea2f48f438990a988a53c85e98971cacd2cf309e"
        );
    }

    #[test]
    fn client_hash_chains_hex_strings() {
        let mut v = "pass".to_owned();
        for _ in 0..10 {
            v = hex::encode(Sha1::digest(v.as_bytes()));
        }
        assert_eq!(ixopay_client_hash("pass"), v);
        assert_eq!(
            hex::encode(Sha1::digest(b"pass")),
            "9d4e1e23bd5b727046a9e3b4b7db57bd8d6ee684"
        );
        assert!(is_client_hash(&ixopay_client_hash("")));
    }

    #[test]
    fn store_hash_is_keyed_hex() {
        let h = store_hash(KEY, "pass");
        assert_eq!(h.len(), 64);
        assert!(h.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
        assert_eq!(h, store_hash(KEY, "pass"));
        assert_ne!(h, store_hash(b"another key", "pass"));
        assert_ne!(h, store_hash(KEY, "pass2"));
    }

    #[test]
    fn verify_accepts_plain_and_client_hash() {
        let stored = store_hash(KEY, "pass");
        assert!(verify(KEY, "pass", &stored));
        assert!(verify(
            KEY,
            "ea2f48f438990a988a53c85e98971cacd2cf309e",
            &stored
        ));
    }

    #[test]
    fn verify_refuses_wrong_inputs() {
        let stored = store_hash(KEY, "pass");
        assert!(!verify(KEY, "Pass", &stored));
        assert!(!verify(KEY, "", &stored));
        assert!(!verify(
            KEY,
            "EA2F48F438990A988A53C85E98971CACD2CF309E",
            &stored
        ));
        assert!(!verify(
            KEY,
            "ea2f48f438990a988a53c85e98971cacd2cf309",
            &stored
        ));
        assert!(!verify(b"wrong key", "pass", &stored));
        assert!(!verify(KEY, "pass", ""));
        assert!(!verify(KEY, "pass", &stored[..63]));
        // One more SHA-1 round than the client applies is a different secret.
        let eleven = hex::encode(Sha1::digest(b"ea2f48f438990a988a53c85e98971cacd2cf309e"));
        assert!(!verify(KEY, &eleven, &stored));
    }

    #[test]
    fn hex_looking_plain_password_still_works() {
        // A plain password that happens to be 40 lowercase hex digits.
        let plain = "0123456789abcdef0123456789abcdef01234567";
        let stored = store_hash(KEY, plain);
        assert!(verify(KEY, plain, &stored));
        assert!(verify(KEY, &ixopay_client_hash(plain), &stored));
    }
}
