//! Card number, expiry and CVV validation, brand detection and masking.
//!
//! The brand names are the lowercase ones IXOPAY reports in
//! `paymentData.card.brand` (e.g. `visa`, spec 1.6).

use chrono::{DateTime, Datelike, Utc};

/// Brand names returned by [`brand`].
pub mod brands {
    pub const VISA: &str = "visa";
    pub const MASTERCARD: &str = "mastercard";
    pub const AMEX: &str = "amex";
    pub const DISCOVER: &str = "discover";
    pub const DINERS: &str = "diners";
    pub const JCB: &str = "jcb";
    pub const MAESTRO: &str = "maestro";
}

/// A validated card. `Debug` masks the PAN; there is no `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct CardData {
    /// The PAN, digits only.
    pub pan: String,
    /// The brand, one of [`brands`].
    pub brand: &'static str,
    /// `firstSixDigits` (spec 1.6).
    pub first_six: String,
    /// `lastFourDigits` (spec 1.6).
    pub last_four: String,
    /// 1-12.
    pub exp_month: u32,
    /// Four-digit year.
    pub exp_year: i32,
}

impl std::fmt::Debug for CardData {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CardData")
            .field("pan", &mask(&self.pan))
            .field("brand", &self.brand)
            .field("exp_month", &self.exp_month)
            .field("exp_year", &self.exp_year)
            .finish()
    }
}

/// A validation problem: `(field, message)`, with field one of `number`,
/// `cvv`, `month`, `year`.
pub type FieldError = (&'static str, &'static str);

/// Whether a string of ASCII digits passes the Luhn (mod 10) check. Anything
/// that is not a non-empty run of digits fails.
pub fn luhn_valid(digits: &str) -> bool {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return false;
    }
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// The card brand from the PAN's leading digits: visa `4`; mastercard `51-55`
/// and `2221-2720`; amex `34`, `37`; discover `6011`, `644-649`, `65`; diners
/// `36`, `300-305`; jcb `3528-3589`; maestro as fallback for `50`, `56-69`.
/// `None` for other prefixes or non-digit input.
pub fn brand(pan: &str) -> Option<&'static str> {
    if pan.len() < 4 || !pan.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let prefix = |n: usize| pan.get(..n).and_then(|p| p.parse::<u32>().ok());
    let (p1, p2, p3, p4) = (prefix(1)?, prefix(2)?, prefix(3)?, prefix(4)?);
    let found = match () {
        _ if p1 == 4 => brands::VISA,
        _ if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) => brands::MASTERCARD,
        _ if p2 == 34 || p2 == 37 => brands::AMEX,
        _ if p4 == 6011 || p2 == 65 || (644..=649).contains(&p3) => brands::DISCOVER,
        _ if p2 == 36 || (300..=305).contains(&p3) => brands::DINERS,
        _ if (3528..=3589).contains(&p4) => brands::JCB,
        _ if p2 == 50 || (56..=69).contains(&p2) => brands::MAESTRO,
        _ => return None,
    };
    Some(found)
}

/// Masks a PAN for display: first six and last four digits, `*` between,
/// e.g. `411111******1111`. Inputs shorter than 11 characters are fully masked.
pub fn mask(pan: &str) -> String {
    let chars: Vec<char> = pan.chars().collect();
    let n = chars.len();
    if n <= 10 {
        return "*".repeat(n);
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < 6 || i >= n - 4 { c } else { '*' })
        .collect()
}

/// Validates card input as a form or API request carries it and returns the
/// normalised card, or every problem found.
///
/// * `number`: spaces and dashes are removed; then 12-19 digits, Luhn-valid,
///   of a known [`brand`].
/// * `month`: 1-12 (`1` or `01`). `year`: four digits, or two meaning 20yy.
/// * The card is valid through the last day of its expiry month, judged in UTC
///   against `now`.
/// * `cvv`: exactly 3 digits, 4 for amex (3 or 4 when the brand is unknown).
pub fn validate_card(
    number: &str,
    cvv: &str,
    month: &str,
    year: &str,
    now: DateTime<Utc>,
) -> Result<CardData, Vec<FieldError>> {
    let mut errors = Vec::new();

    let pan: String = number.chars().filter(|c| *c != ' ' && *c != '-').collect();
    let mut card_brand = None;
    if pan.is_empty() {
        errors.push(("number", "card number is required"));
    } else if !pan.bytes().all(|b| b.is_ascii_digit()) {
        errors.push(("number", "card number must contain only digits"));
    } else if !(12..=19).contains(&pan.len()) {
        errors.push(("number", "card number must have 12 to 19 digits"));
    } else if !luhn_valid(&pan) {
        errors.push(("number", "card number is invalid"));
    } else {
        card_brand = brand(&pan);
        if card_brand.is_none() {
            errors.push(("number", "card brand is not supported"));
        }
    }

    let cvv_ok = match card_brand {
        Some(brands::AMEX) => is_digits(cvv, 4..=4),
        Some(_) => is_digits(cvv, 3..=3),
        None => is_digits(cvv, 3..=4),
    };
    if cvv.is_empty() {
        errors.push(("cvv", "CVV is required"));
    } else if !cvv_ok {
        errors.push((
            "cvv",
            if card_brand == Some(brands::AMEX) {
                "CVV must be 4 digits"
            } else {
                "CVV must be 3 digits"
            },
        ));
    }

    let exp_month = parse_month(month);
    if exp_month.is_none() {
        errors.push(("month", "expiry month must be 1 to 12"));
    }
    let exp_year = parse_year(year);
    if exp_year.is_none() {
        errors.push(("year", "expiry year must have 2 or 4 digits"));
    }
    if let (Some(m), Some(y)) = (exp_month, exp_year)
        && (y, m) < (now.year(), now.month())
    {
        errors.push(("year", "card has expired"));
    }

    match (card_brand, exp_month, exp_year) {
        (Some(brand), Some(exp_month), Some(exp_year)) if errors.is_empty() => Ok(CardData {
            first_six: pan[..6].to_owned(),
            last_four: pan[pan.len() - 4..].to_owned(),
            pan,
            brand,
            exp_month,
            exp_year,
        }),
        _ => Err(errors),
    }
}

fn is_digits(s: &str, len: std::ops::RangeInclusive<usize>) -> bool {
    len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

fn parse_month(s: &str) -> Option<u32> {
    let s = s.trim();
    if !is_digits(s, 1..=2) {
        return None;
    }
    s.parse().ok().filter(|m| (1..=12).contains(m))
}

fn parse_year(s: &str) -> Option<i32> {
    let s = s.trim();
    match s.len() {
        2 if is_digits(s, 2..=2) => s.parse::<i32>().ok().map(|y| 2000 + y),
        4 if is_digits(s, 4..=4) => s.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 5, 11, 12, 0, 0)
            .single()
            .expect("dt")
    }

    const SIMULATOR_CARDS: [(&str, &str); 9] = [
        ("4111111111111111", "visa"),
        ("4242424242424242", "visa"),
        ("5555555555554444", "mastercard"),
        ("378282246310005", "amex"),
        ("4000000000000002", "visa"),
        ("4000000000009995", "visa"),
        ("4000000000000069", "visa"),
        ("4000000000000119", "visa"),
        ("4000000000003220", "visa"),
    ];

    #[test]
    fn simulator_cards_are_valid_with_brand() {
        for (pan, expected) in SIMULATOR_CARDS {
            assert!(luhn_valid(pan), "{pan}");
            assert_eq!(brand(pan), Some(expected), "{pan}");
            let cvv = if expected == "amex" { "1234" } else { "123" };
            let card = validate_card(pan, cvv, "12", "2030", now()).expect(pan);
            assert_eq!(card.pan, pan);
            assert_eq!(card.brand, expected);
            assert_eq!(card.first_six, &pan[..6]);
            assert_eq!(card.last_four, &pan[pan.len() - 4..]);
            assert_eq!((card.exp_month, card.exp_year), (12, 2030));
        }
    }

    #[test]
    fn luhn() {
        assert!(luhn_valid("0"));
        assert!(luhn_valid("79927398713"));
        assert!(!luhn_valid("79927398710"));
        assert!(!luhn_valid("4111111111111112"));
        assert!(!luhn_valid(""));
        assert!(!luhn_valid("4111 1111 1111 1111"));
        assert!(!luhn_valid("411111111111111a"));
    }

    #[test]
    fn brand_ranges() {
        let cases = [
            ("2221000000000009", Some("mastercard")),
            ("2720990000000000", Some("mastercard")),
            ("2220990000000000", None),
            ("2721000000000000", None),
            ("5100000000000000", Some("mastercard")),
            ("5599000000000000", Some("mastercard")),
            ("340000000000000", Some("amex")),
            ("6011000000000000", Some("discover")),
            ("6500000000000000", Some("discover")),
            ("6440000000000000", Some("discover")),
            ("6490000000000000", Some("discover")),
            ("6430000000000000", Some("maestro")),
            ("36000000000000", Some("diners")),
            ("30000000000000", Some("diners")),
            ("30500000000000", Some("diners")),
            ("30600000000000", None),
            ("3528000000000000", Some("jcb")),
            ("3589000000000000", Some("jcb")),
            ("3590000000000000", None),
            ("5018000000000000", Some("maestro")),
            ("6759000000000000", Some("maestro")),
            ("1234567890123456", None),
            ("411", None),
            ("4x11111111111111", None),
        ];
        for (pan, expected) in cases {
            assert_eq!(brand(pan), expected, "{pan}");
        }
    }

    #[test]
    fn mask_keeps_first_six_and_last_four() {
        assert_eq!(mask("4111111111111111"), "411111******1111");
        assert_eq!(mask("378282246310005"), "378282*****0005");
        assert_eq!(mask("12345678901"), "123456*8901");
        assert_eq!(mask("1234567890"), "**********");
        assert_eq!(mask(""), "");
    }

    #[test]
    fn debug_masks_the_pan() {
        let card = validate_card("4111 1111-1111 1111", "123", "1", "30", now()).expect("valid");
        assert_eq!(card.pan, "4111111111111111");
        assert_eq!((card.exp_month, card.exp_year), (1, 2030));
        let shown = format!("{card:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(shown.contains("411111******1111"), "{shown}");
    }

    #[test]
    fn number_errors() {
        let cases = [
            ("", "card number is required"),
            (
                "4111-1111-1111-111a",
                "card number must contain only digits",
            ),
            ("41111111110", "card number must have 12 to 19 digits"),
            (
                "41111111111111111111",
                "card number must have 12 to 19 digits",
            ),
            ("4111111111111112", "card number is invalid"),
            ("1234567890123452", "card brand is not supported"),
        ];
        for (number, message) in cases {
            let errors = validate_card(number, "123", "12", "2030", now()).expect_err(number);
            assert_eq!(errors, vec![("number", message)], "{number:?}");
        }
    }

    #[test]
    fn cvv_rules() {
        let ok = |n, c| validate_card(n, c, "12", "2030", now()).is_ok();
        assert!(ok("4111111111111111", "000"));
        assert!(!ok("4111111111111111", "1234"));
        assert!(!ok("4111111111111111", "12"));
        assert!(!ok("4111111111111111", "12a"));
        assert!(ok("378282246310005", "1234"));
        assert!(!ok("378282246310005", "123"));
        let errors = validate_card("4111111111111111", "", "12", "2030", now()).expect_err("cvv");
        assert_eq!(errors, vec![("cvv", "CVV is required")]);
        let errors = validate_card("378282246310005", "123", "12", "2030", now()).expect_err("cvv");
        assert_eq!(errors, vec![("cvv", "CVV must be 4 digits")]);
    }

    #[test]
    fn month_and_year_formats() {
        let check = |m, y| validate_card("4111111111111111", "123", m, y, now());
        assert!(check("1", "2027").is_ok());
        assert!(check("01", "27").is_ok());
        assert!(check("12", "99").is_ok());
        for m in ["0", "13", "", "ab", "001", "-1", "1.0"] {
            assert_eq!(
                check(m, "2030").expect_err(m),
                vec![("month", "expiry month must be 1 to 12")]
            );
        }
        for y in ["", "2", "203", "20301", "20x0", "-30"] {
            assert_eq!(
                check("12", y).expect_err(y),
                vec![("year", "expiry year must have 2 or 4 digits")]
            );
        }
    }

    #[test]
    fn valid_through_end_of_expiry_month() {
        let check = |m, y, now| validate_card("4111111111111111", "123", m, y, now);
        // Same month: still valid, even on the last second.
        assert!(check("5", "2026", now()).is_ok());
        let last_second = Utc
            .with_ymd_and_hms(2026, 5, 31, 23, 59, 59)
            .single()
            .expect("dt");
        assert!(check("05", "26", last_second).is_ok());
        let next_month = Utc
            .with_ymd_and_hms(2026, 6, 1, 0, 0, 0)
            .single()
            .expect("dt");
        assert_eq!(
            check("05", "2026", next_month).expect_err("expired"),
            vec![("year", "card has expired")]
        );
        assert!(check("4", "2026", now()).is_err());
        assert!(check("12", "2025", now()).is_err());
        assert!(check("1", "2027", now()).is_ok());
    }

    #[test]
    fn reports_every_problem() {
        let errors = validate_card("4111111111111112", "1", "13", "1", now()).expect_err("bad");
        let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["number", "cvv", "month", "year"]);
    }
}
