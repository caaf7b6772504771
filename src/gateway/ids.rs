//! Identifier formats of the gateway (spec 1.2, 2.3, 6 "Token formats").
//!
//! All randomness comes from `rand::rng()`, a cryptographically secure,
//! OS-seeded generator (via [`crate::ids`]).

use chrono::NaiveDate;

use crate::ids::{random_alnum, random_hex};

/// Prefix of a customer profile GUID.
pub const PROFILE_GUID_PREFIX: &str = "CP-";
/// Prefix of a customer-profile payment token.
pub const PAYMENT_TOKEN_PREFIX: &str = "pt::";
/// Prefix of a card (payment.js style) token.
pub const CARD_TOKEN_PREFIX: &str = "ix::";

/// A new profileGuid: `CP-` and six groups of four lowercase hex digits joined
/// by `-`, 32 characters in total, e.g. `CP-91ec-509a-3899-4f4f-a4ad-67fb`
/// (spec 1.2). Carries 96 random bits.
pub fn profile_guid() -> String {
    let hex = random_hex(12);
    let groups: Vec<&str> = (0..6).filter_map(|i| hex.get(i * 4..i * 4 + 4)).collect();
    format!("{PROFILE_GUID_PREFIX}{}", groups.join("-"))
}

/// Whether `s` has the profileGuid shape: exactly 32 characters, `CP-` then six
/// `-`-separated groups of four hex digits of either case (the documentation's
/// examples use both, spec 1.2).
pub fn is_profile_guid(s: &str) -> bool {
    let Some(rest) = s.strip_prefix(PROFILE_GUID_PREFIX) else {
        return false;
    };
    s.len() == 32
        && rest.split('-').count() == 6
        && rest
            .split('-')
            .all(|g| g.len() == 4 && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A new paymentToken: `pt::` and 20 random alphanumerics, 24 characters in
/// total, e.g. `pt::b639e636df17af782602` (spec 1.6, 6). About 119 random bits.
pub fn payment_token() -> String {
    format!("{PAYMENT_TOKEN_PREFIX}{}", random_alnum(20))
}

/// Whether `s` is `pt::` followed by exactly 20 ASCII alphanumerics (spec 1.4:
/// `preferredInstrument` is exactly 24 characters).
pub fn is_payment_token(s: &str) -> bool {
    s.strip_prefix(PAYMENT_TOKEN_PREFIX)
        .is_some_and(|rest| rest.len() == 20 && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// A new transaction uuid: 20 lowercase hex digits, e.g. `d94c0d72f3a36e21f16e`
/// (spec 2.3).
pub fn transaction_uuid() -> String {
    random_hex(10)
}

/// Whether `s` is exactly 20 lowercase hex digits (the shape
/// [`transaction_uuid`] produces).
pub fn is_transaction_uuid(s: &str) -> bool {
    s.len() == 20 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The purchaseId of a transaction: `YYYYMMDD-<uuid>`, e.g.
/// `20190927-abcde12345abcde12345` (spec 2.3).
pub fn purchase_id(date: NaiveDate, uuid: &str) -> String {
    format!("{}-{uuid}", date.format("%Y%m%d"))
}

/// A new card token in the payment.js style: `ix::` and 20 random
/// alphanumerics (spec 6; usable as `transactionToken`).
pub fn card_token() -> String {
    format!("{CARD_TOKEN_PREFIX}{}", random_alnum(20))
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn profile_guid_shape() {
        for _ in 0..50 {
            let g = profile_guid();
            assert_eq!(g.len(), 32, "{g}");
            assert!(is_profile_guid(&g), "{g}");
            assert!(g.starts_with("CP-"));
            let body = &g[3..];
            assert!(
                body.chars()
                    .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'))
            );
            assert_eq!(body.matches('-').count(), 5);
        }
    }

    #[test]
    fn is_profile_guid_accepts_documented_examples() {
        assert!(is_profile_guid("CP-91ec-509a-3899-4f4f-a4ad-67fb"));
        assert!(is_profile_guid("CP-0000-0000-0000-0000-0000-0000"));
        assert!(is_profile_guid("CP-1234-5678-9ABC-DEF0-1234-5678"));
    }

    #[test]
    fn is_profile_guid_rejects_other_shapes() {
        for bad in [
            "",
            "CP-",
            "cp-91ec-509a-3899-4f4f-a4ad-67fb",
            "XX-91ec-509a-3899-4f4f-a4ad-67fb",
            "CP-91ec-509a-3899-4f4f-a4ad-67f",
            "CP-91ec-509a-3899-4f4f-a4ad-67fbb",
            "CP-91ec-509a-3899-4f4f-a4ad-67fg",
            "CP-91ec-509a-3899-4f4f-a4ad67fb0",
            "CP-91ec-509a-3899-4f4f-a4a-d67fb",
            "CP-91ec-509a-3899-4f4f-a4ad-67fb-",
            "CP--91ec509a-3899-4f4f-a4ad-67fb",
            "CP-91ec-509a-3899-4f4f-a4ad-67é",
        ] {
            assert!(!is_profile_guid(bad), "{bad:?}");
        }
    }

    #[test]
    fn payment_token_shape() {
        for _ in 0..50 {
            let t = payment_token();
            assert_eq!(t.len(), 24);
            assert!(is_payment_token(&t), "{t}");
        }
        assert!(is_payment_token("pt::12345678901234567890"));
        assert!(is_payment_token("pt::b639e636df17af782602"));
        for bad in [
            "",
            "pt::",
            "pt::1234567890123456789",
            "pt::123456789012345678901",
            "PT::12345678901234567890",
            "ix::12345678901234567890",
            "pt::1234567890123456789-",
            "pt:12345678901234567890a",
        ] {
            assert!(!is_payment_token(bad), "{bad:?}");
        }
    }

    #[test]
    fn transaction_uuid_and_purchase_id() {
        let u = transaction_uuid();
        assert!(is_transaction_uuid(&u), "{u}");
        assert!(!is_transaction_uuid("D94C0D72F3A36E21F16E"));
        assert!(!is_transaction_uuid("d94c0d72f3a36e21f16"));
        assert!(is_transaction_uuid("d94c0d72f3a36e21f16e"));
        let date = NaiveDate::from_ymd_opt(2019, 9, 27).expect("date");
        assert_eq!(
            purchase_id(date, "abcde12345abcde12345"),
            "20190927-abcde12345abcde12345"
        );
        let jan = NaiveDate::from_ymd_opt(2026, 1, 5).expect("date");
        assert_eq!(purchase_id(jan, &u), format!("20260105-{u}"));
    }

    #[test]
    fn card_token_shape() {
        let t = card_token();
        assert_eq!(t.len(), 24);
        assert!(t.starts_with("ix::"));
        assert!(t[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn generated_ids_are_unique() {
        let n = 1000;
        let guids: HashSet<String> = (0..n).map(|_| profile_guid()).collect();
        let tokens: HashSet<String> = (0..n).map(|_| payment_token()).collect();
        let uuids: HashSet<String> = (0..n).map(|_| transaction_uuid()).collect();
        let cards: HashSet<String> = (0..n).map(|_| card_token()).collect();
        assert_eq!(guids.len(), n);
        assert_eq!(tokens.len(), n);
        assert_eq!(uuids.len(), n);
        assert_eq!(cards.len(), n);
    }
}
