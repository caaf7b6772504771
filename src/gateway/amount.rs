//! Money amounts as integer minor units, using the ISO 4217 exponent of the
//! currency. Exact decimal arithmetic only; no floating point anywhere.
//!
//! On the wire an amount is a string matching
//! `^(([0-9]{1,10})|([0-9]{1,10}\.[0-9]{1,3}))$` and the currency matches
//! `^[A-Z]{3}$` (spec 2.2).

/// Why an amount or currency was refused. Maps to error code 1002.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    /// The amount does not match the API pattern (empty, negative, exponent,
    /// too many digits, …).
    #[error("amount must match ^(([0-9]{{1,10}})|([0-9]{{1,10}}\\.[0-9]{{1,3}}))$")]
    InvalidFormat,
    /// The currency does not match `^[A-Z]{3}$`.
    #[error("currency must be three upper-case letters")]
    InvalidCurrency,
    /// A well-formed currency code this gateway does not know.
    #[error("unknown currency")]
    UnknownCurrency,
    /// Non-zero digits beyond the currency's minor unit, e.g. `1.005` EUR.
    #[error("amount has more decimal places than the currency allows")]
    TooManyDecimals,
}

/// Currencies without minor units (ISO 4217 exponent 0).
const EXPONENT_0: &[&str] = &[
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
];

/// Currencies with three decimals (ISO 4217 exponent 3).
const EXPONENT_3: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];

/// Currencies with two decimals (ISO 4217 exponent 2). HRK is withdrawn but
/// kept for old data.
const EXPONENT_2: &[&str] = &[
    "AED", "ALL", "AMD", "ARS", "AUD", "AZN", "BAM", "BDT", "BGN", "BOB", "BRL", "BYN", "CAD",
    "CHF", "CNY", "COP", "CRC", "CZK", "DKK", "DOP", "DZD", "EGP", "EUR", "GBP", "GEL", "GHS",
    "GTQ", "HKD", "HNL", "HRK", "HUF", "IDR", "ILS", "INR", "JMD", "KES", "KZT", "LBP", "LKR",
    "MAD", "MDL", "MKD", "MXN", "MYR", "NGN", "NOK", "NZD", "PEN", "PHP", "PKR", "PLN", "QAR",
    "RON", "RSD", "RUB", "SAR", "SEK", "SGD", "THB", "TRY", "TWD", "UAH", "USD", "UYU", "UZS",
    "ZAR",
];

/// Largest number of decimals the API accepts in an amount string.
const MAX_WIRE_DECIMALS: usize = 3;
/// Largest number of integer digits the API accepts in an amount string.
const MAX_WIRE_INTEGER_DIGITS: usize = 10;

/// The ISO 4217 exponent (number of minor-unit digits) of a known currency:
/// 0 for e.g. JPY KRW ISK CLP VND, 3 for BHD JOD KWD OMR TND, 2 for EUR USD
/// and the other listed currencies. `None` for unknown codes.
pub fn currency_exponent(code: &str) -> Option<u32> {
    if EXPONENT_2.contains(&code) {
        Some(2)
    } else if EXPONENT_0.contains(&code) {
        Some(0)
    } else if EXPONENT_3.contains(&code) {
        Some(3)
    } else {
        None
    }
}

/// Checks a currency code: `^[A-Z]{3}$` (spec 2.2) and known; returns its
/// exponent.
pub fn check_currency(code: &str) -> Result<u32, AmountError> {
    if code.len() != 3 || !code.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(AmountError::InvalidCurrency);
    }
    currency_exponent(code).ok_or(AmountError::UnknownCurrency)
}

/// Parses an API amount string into minor units of `currency`.
///
/// The string must match `^(([0-9]{1,10})|([0-9]{1,10}\.[0-9]{1,3}))$`
/// (spec 2.2). Decimals beyond the currency's exponent are accepted only when
/// they are zeros (`"1.50"` JPY and `"1.005"` EUR are refused, `"10.000"` EUR
/// is 1000), so no value is ever rounded.
pub fn parse_amount(s: &str, currency: &str) -> Result<i64, AmountError> {
    let exponent = check_currency(currency)?;
    let digits =
        |p: &str, max: usize| (1..=max).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit());
    let (int_part, frac_part) = match s.split_once('.') {
        Some((i, f)) if digits(f, MAX_WIRE_DECIMALS) => (i, f),
        Some(_) => return Err(AmountError::InvalidFormat),
        None => (s, ""),
    };
    if !digits(int_part, MAX_WIRE_INTEGER_DIGITS) {
        return Err(AmountError::InvalidFormat);
    }

    let exponent = exponent as usize;
    let (kept, excess) = frac_part.split_at(frac_part.len().min(exponent));
    if excess.bytes().any(|b| b != b'0') {
        return Err(AmountError::TooManyDecimals);
    }
    // At most 10 + 3 digits, far below i64::MAX; the parse cannot overflow.
    let padded = format!("{int_part}{kept:0<exponent$}");
    padded.parse().map_err(|_| AmountError::InvalidFormat)
}

/// Formats minor units of `currency` with exactly the currency's number of
/// decimals: EUR 999 → `9.99`, JPY 5 → `5`, BHD 1234 → `1.234`. Negative
/// values get a leading `-`.
pub fn format_amount(minor: i64, currency: &str) -> Result<String, AmountError> {
    let exponent = check_currency(currency)?;
    let sign = if minor < 0 { "-" } else { "" };
    let magnitude = minor.unsigned_abs();
    if exponent == 0 {
        return Ok(format!("{sign}{magnitude}"));
    }
    let scale = 10u64.pow(exponent);
    let width = exponent as usize;
    Ok(format!(
        "{sign}{}.{:0width$}",
        magnitude / scale,
        magnitude % scale
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exponents() {
        for c in [
            "EUR", "USD", "GBP", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK", "HUF", "RON", "BGN",
            "HRK", "BAM", "RSD", "MKD", "TRY", "AUD", "CAD", "NZD",
        ] {
            assert_eq!(currency_exponent(c), Some(2), "{c}");
        }
        for c in ["JPY", "KRW", "ISK", "CLP", "VND"] {
            assert_eq!(currency_exponent(c), Some(0), "{c}");
        }
        for c in ["BHD", "JOD", "KWD", "OMR", "TND"] {
            assert_eq!(currency_exponent(c), Some(3), "{c}");
        }
        for c in ["XXX", "eur", "EURO", "", "CLF"] {
            assert_eq!(currency_exponent(c), None, "{c}");
        }
    }

    #[test]
    fn currency_lists_are_disjoint_and_well_formed() {
        let all: Vec<&str> = [EXPONENT_0, EXPONENT_2, EXPONENT_3].concat();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "no currency listed twice");
        for c in all {
            assert!(check_currency(c).is_ok(), "{c}");
        }
    }

    #[test]
    fn parses_amounts() {
        assert_eq!(parse_amount("9.99", "EUR"), Ok(999));
        assert_eq!(parse_amount("9.9", "EUR"), Ok(990));
        assert_eq!(parse_amount("9", "EUR"), Ok(900));
        assert_eq!(parse_amount("0", "EUR"), Ok(0));
        assert_eq!(parse_amount("0.01", "USD"), Ok(1));
        assert_eq!(parse_amount("007.50", "EUR"), Ok(750));
        assert_eq!(parse_amount("10.000", "EUR"), Ok(1000));
        assert_eq!(parse_amount("5", "JPY"), Ok(5));
        assert_eq!(parse_amount("5.0", "JPY"), Ok(5));
        assert_eq!(parse_amount("1.234", "BHD"), Ok(1234));
        assert_eq!(parse_amount("1.2", "KWD"), Ok(1200));
        assert_eq!(parse_amount("9999999999.99", "EUR"), Ok(999_999_999_999));
        assert_eq!(parse_amount("9999999999.999", "BHD"), Ok(9_999_999_999_999));
    }

    #[test]
    fn refuses_extra_precision() {
        assert_eq!(
            parse_amount("1.5", "JPY"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(
            parse_amount("1.005", "EUR"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(
            parse_amount("1.001", "USD"),
            Err(AmountError::TooManyDecimals)
        );
        assert_eq!(
            parse_amount("0.050", "KRW"),
            Err(AmountError::TooManyDecimals)
        );
    }

    #[test]
    fn refuses_bad_formats() {
        for s in [
            "",
            " ",
            "-1",
            "-1.00",
            "+1",
            "1.",
            ".5",
            "1.0000",
            "12345678901",
            "1,00",
            "1e3",
            "1.2.3",
            "abc",
            " 1",
            "1 ",
            "1.5a",
            "١",
            "0x10",
            "NaN",
            "1..0",
        ] {
            assert_eq!(
                parse_amount(s, "EUR"),
                Err(AmountError::InvalidFormat),
                "{s:?}"
            );
        }
    }

    #[test]
    fn refuses_bad_currencies() {
        assert_eq!(parse_amount("1", "eur"), Err(AmountError::InvalidCurrency));
        assert_eq!(parse_amount("1", "EU"), Err(AmountError::InvalidCurrency));
        assert_eq!(parse_amount("1", "EURO"), Err(AmountError::InvalidCurrency));
        assert_eq!(parse_amount("1", ""), Err(AmountError::InvalidCurrency));
        assert_eq!(parse_amount("1", "E1R"), Err(AmountError::InvalidCurrency));
        assert_eq!(parse_amount("1", "XYZ"), Err(AmountError::UnknownCurrency));
        assert_eq!(format_amount(1, "XYZ"), Err(AmountError::UnknownCurrency));
        assert_eq!(format_amount(1, "usd"), Err(AmountError::InvalidCurrency));
    }

    #[test]
    fn formats_amounts() {
        let f = |m, c| format_amount(m, c).expect("known currency");
        assert_eq!(f(999, "EUR"), "9.99");
        assert_eq!(f(5, "JPY"), "5");
        assert_eq!(f(1234, "BHD"), "1.234");
        assert_eq!(f(0, "EUR"), "0.00");
        assert_eq!(f(1, "EUR"), "0.01");
        assert_eq!(f(100, "USD"), "1.00");
        assert_eq!(f(5, "BHD"), "0.005");
        assert_eq!(f(-250, "EUR"), "-2.50");
        assert_eq!(f(-7, "JPY"), "-7");
        assert_eq!(f(i64::MIN, "EUR"), "-92233720368547758.08");
        assert_eq!(f(i64::MAX, "JPY"), "9223372036854775807");
    }

    #[test]
    fn round_trips() {
        for (minor, currency) in [
            (0, "EUR"),
            (1, "EUR"),
            (999, "EUR"),
            (123_456, "USD"),
            (999_999_999_999, "EUR"),
            (5, "JPY"),
            (9_999_999_999, "JPY"),
            (1234, "BHD"),
            (1, "KWD"),
            (9_999_999_999_999, "OMR"),
        ] {
            let s = format_amount(minor, currency).expect("format");
            assert_eq!(parse_amount(&s, currency), Ok(minor), "{s} {currency}");
        }
        for (s, currency) in [
            ("9.99", "EUR"),
            ("5", "JPY"),
            ("1.234", "BHD"),
            ("0.00", "GBP"),
        ] {
            let minor = parse_amount(s, currency).expect("parse");
            assert_eq!(format_amount(minor, currency).as_deref(), Ok(s));
        }
    }
}
