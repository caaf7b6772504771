//! Time-based one-time passwords (RFC 6238 over RFC 4226): HMAC-SHA-1, 6 digits, 30-second
//! steps, accepted one step either side of the server's clock; and the recovery codes that
//! stand in for a lost authenticator. Pure: the secret's storage (sealed by the vault) and the
//! replay check (the last accepted step per user) belong to the caller.

use hmac::{Hmac, KeyInit, Mac};
use qrcode::QrCode;
use qrcode::render::svg;
use rand::RngExt;
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

pub const DIGITS: usize = 6;
pub const STEP_SECONDS: i64 = 30;
/// Steps accepted either side of the current one (clock drift, typing time).
pub const DRIFT_STEPS: i64 = 1;
/// Bytes of a new secret (160 bits, RFC 4226's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Recovery codes given at enrollment.
pub const RECOVERY_CODES: usize = 10;

/// A new random secret.
pub fn new_secret() -> Vec<u8> {
    let mut buf = vec![0u8; SECRET_BYTES];
    rand::rng().fill(&mut buf[..]);
    buf
}

/// The secret as authenticator apps take it: RFC 4648 base32, upper case, no padding.
pub fn to_base32(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

/// Reads a base32 secret (spaces and case ignored, padding optional).
pub fn from_base32(text: &str) -> Option<Vec<u8>> {
    let clean: String = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .map(|c| c.to_ascii_uppercase())
        .collect();
    data_encoding::BASE32_NOPAD.decode(clean.as_bytes()).ok()
}

/// The time step of a Unix time.
pub fn step_at(unix_seconds: i64) -> i64 {
    unix_seconds.div_euclid(STEP_SECONDS)
}

/// The code of one time step (RFC 4226 dynamic truncation, zero-padded).
pub fn code_at_step(secret: &[u8], step: i64) -> String {
    let mut mac =
        <Hmac<Sha1> as KeyInit>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset] & 0x7f) << 24)
        | (u32::from(h[offset + 1]) << 16)
        | (u32::from(h[offset + 2]) << 8)
        | u32::from(h[offset + 3]);
    format!("{:0width$}", bin % 10u32.pow(DIGITS as u32), width = DIGITS)
}

/// Whether `input` has the shape of a code (six digits, spaces allowed).
pub fn looks_like_code(input: &str) -> Option<String> {
    let digits: String = input.chars().filter(|c| !c.is_whitespace()).collect();
    (digits.len() == DIGITS && digits.bytes().all(|b| b.is_ascii_digit())).then_some(digits)
}

/// The step, within the drift window around `unix_seconds`, whose code is `code`; the newest
/// first. Every candidate is compared in constant time.
pub fn matching_step(secret: &[u8], code: &str, unix_seconds: i64) -> Option<i64> {
    let now = step_at(unix_seconds);
    let mut found = None;
    for step in (now - DRIFT_STEPS..=now + DRIFT_STEPS).rev() {
        let hit: bool = code_at_step(secret, step)
            .as_bytes()
            .ct_eq(code.as_bytes())
            .into();
        if hit && found.is_none() {
            found = Some(step);
        }
    }
    found
}

/// The `otpauth://` URI an authenticator app reads from the QR code. Usernames are letters,
/// digits, '.', '_' and '-' only, so they need no escaping.
pub fn otpauth_uri(username: &str, secret_base32: &str) -> String {
    format!("otpauth://totp/Coffer:{username}?secret={secret_base32}&issuer=Coffer")
}

/// The QR code of `text` as inline SVG markup (colours as attributes, no `style`, so the page's
/// content security policy allows it), labelled for assistive technology.
pub fn qr_svg(text: &str, label: &str) -> anyhow::Result<String> {
    let code = QrCode::new(text.as_bytes()).map_err(|e| anyhow::anyhow!("QR code: {e}"))?;
    let svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    // Drop the XML declaration (not part of inline SVG in HTML) and label the image.
    let start = svg
        .find("<svg")
        .ok_or_else(|| anyhow::anyhow!("QR code: no svg element"))?;
    let label: String = label
        .chars()
        .filter(|c| !matches!(c, '"' | '<' | '>' | '&'))
        .collect();
    Ok(svg[start..].replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{label}\" class=\"qr\" "),
        1,
    ))
}

/// Alphabet of recovery codes: lower-case base32 without the look-alikes 0/1 (RFC 4648's).
const RECOVERY_ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz234567";

/// A new recovery code: 16 characters (80 bits) in four groups, e.g. `k3va-9…`.
pub fn new_recovery_code() -> String {
    let mut rng = rand::rng();
    let chars: Vec<char> = (0..16)
        .map(|_| RECOVERY_ALPHABET[rng.random_range(0..RECOVERY_ALPHABET.len())] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A recovery code as typed, normalised: case, spaces and dashes ignored; `None` when it cannot
/// be one.
pub fn normalize_recovery_code(input: &str) -> Option<String> {
    let v: String = input
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    (v.len() == 16 && v.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(v)
}

/// What is stored of a recovery code: `hex(HMAC-SHA256(mac_key, "recovery:" + normalized))`.
/// The codes are 80-bit random values, not chosen by people, so a keyed fast hash is enough
/// (as for API passwords) and a stolen database without the vault's MAC key tells nothing.
pub fn recovery_code_hash(mac_key: &[u8], normalized: &str) -> String {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(mac_key)
        .expect("HMAC accepts keys of any length");
    mac.update(b"recovery:");
    mac.update(normalized.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 appendix B, SHA-1 rows (8-digit values; their last six digits are the 6-digit
    /// codes, as dynamic truncation takes the value modulo 10^digits).
    #[test]
    fn rfc_6238_test_vectors() {
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(code_at_step(secret, step_at(t)), eight[2..], "T = {t}");
        }
    }

    #[test]
    fn codes_are_accepted_one_step_either_side_only() {
        let secret = new_secret();
        let now = 1_800_000_000;
        let s = step_at(now);
        for d in -1..=1 {
            assert_eq!(
                matching_step(&secret, &code_at_step(&secret, s + d), now),
                Some(s + d)
            );
        }
        for d in [-3, -2, 2, 3] {
            let c = code_at_step(&secret, s + d);
            // (A code of another step can collide with one in the window: 1 in 10^6.)
            if (-1..=1).all(|w| code_at_step(&secret, s + w) != c) {
                assert_eq!(matching_step(&secret, &c, now), None, "{d}");
            }
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
    }

    #[test]
    fn base32_round_trips_and_the_uri_names_issuer_and_user() {
        let secret = new_secret();
        let b32 = to_base32(&secret);
        assert_eq!(b32.len(), 32);
        assert_eq!(from_base32(&b32.to_lowercase()), Some(secret));
        assert_eq!(
            otpauth_uri("ann", "ABC"),
            "otpauth://totp/Coffer:ann?secret=ABC&issuer=Coffer"
        );
    }

    #[test]
    fn the_qr_code_is_inline_svg_without_style() {
        let svg = qr_svg(
            "otpauth://totp/Coffer:ann?secret=ABC&issuer=Coffer",
            "QR code",
        )
        .expect("svg");
        assert!(svg.starts_with("<svg role=\"img\" aria-label=\"QR code\""));
        assert!(!svg.contains("style"));
        assert!(svg.ends_with("</svg>"));
    }

    #[test]
    fn recovery_codes_normalise_and_hash() {
        let c = new_recovery_code();
        assert_eq!(c.len(), 19);
        let n = normalize_recovery_code(&c.to_uppercase().replace('-', " ")).expect("code");
        assert_eq!(Some(n.clone()), normalize_recovery_code(&c));
        assert_eq!(recovery_code_hash(b"k", &n), recovery_code_hash(b"k", &n));
        assert_ne!(recovery_code_hash(b"k", &n), recovery_code_hash(b"j", &n));
        assert_eq!(normalize_recovery_code("123456"), None);
    }
}
