//! Identifiers and random secrets, all generated in Rust (no database sequences).

use rand::RngExt;

/// A new time-ordered id (UUIDv7, 32 lowercase hex digits, no dashes).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// `n` random bytes as lowercase hex.
pub fn random_hex(n: usize) -> String {
    let mut buf = vec![0u8; n];
    rand::rng().fill(&mut buf[..]);
    hex::encode(buf)
}

/// Whether `s` is exactly `len` lowercase hex digits (the shape [`random_hex`] produces).
pub fn is_hex_of_len(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// `n` random alphanumeric characters.
/// A name for this process's workers (leases of the outbox and of the background jobs): host,
/// process id and a random part (a restarted process with a reused pid is another worker).
pub fn worker_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into());
    format!("{host}:{}:{}", std::process::id(), random_hex(3))
}

pub fn random_alnum(n: usize) -> String {
    let mut rng = rand::rng();
    (0..n)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// A password for people or machines: 24 characters from a readable alphabet (~140 bits).
pub fn random_password() -> String {
    random_alnum(24)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_hex_and_ordered() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert!(a < b, "UUIDv7 ids sort by creation time");
    }

    #[test]
    fn random_alnum_has_requested_length_and_alphabet() {
        let s = random_alnum(40);
        assert_eq!(s.len(), 40);
        assert!(s.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(random_alnum(40), s);
    }
}
