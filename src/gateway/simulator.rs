//! The built-in processor simulator: which test instruments approve, decline
//! or need 3-D Secure, plus IBAN validation (ISO 13616).

use super::card::luhn_valid;
use super::errors::ErrorCode;

/// The simulated processor's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Approved,
    /// `code` and `message` go into the transaction's `errors[]` (spec 2.3).
    Declined {
        code: u32,
        message: &'static str,
    },
}

impl Outcome {
    fn declined(code: ErrorCode) -> Self {
        Outcome::Declined {
            code: code.code(),
            message: code.message(),
        }
    }
}

/// Card number that requires a 3-D Secure challenge.
pub const THREE_DS_CARD: &str = "4000000000003220";

/// Decides a card payment by PAN (digits only):
///
/// | PAN | outcome |
/// |---|---|
/// | 4000000000000002 | 2003 Transaction declined |
/// | 4000000000009995 | 2006 Insufficient funds |
/// | 4000000000000069 | 2009 Expired card |
/// | 4000000000000119 | 1003 Processing error |
/// | any other Luhn-valid number | approved |
///
/// A number that is not Luhn-valid declines with 2008 Invalid card (callers
/// normally validate first with [`super::card::validate_card`]).
pub fn decide_card(pan: &str) -> Outcome {
    match pan {
        "4000000000000002" => Outcome::declined(ErrorCode::TransactionDeclined),
        "4000000000009995" => Outcome::declined(ErrorCode::InsufficientFunds),
        "4000000000000069" => Outcome::declined(ErrorCode::ExpiredCard),
        "4000000000000119" => Outcome::declined(ErrorCode::ProcessingError),
        _ if luhn_valid(pan) => Outcome::Approved,
        _ => Outcome::declined(ErrorCode::InvalidCard),
    }
}

/// Whether the simulator demands a 3-D Secure challenge for this PAN
/// (only [`THREE_DS_CARD`]).
pub fn needs_3ds(pan: &str) -> bool {
    pan == THREE_DS_CARD
}

/// IBAN lengths per country (ISO 13616 registry): all SEPA countries plus the
/// other registered countries commonly seen.
#[rustfmt::skip]
/// What the simulated account updater knows about a card (issue #15):
///
/// | PAN | answer |
/// |---|---|
/// | 4000000000000341 | reissued: same number, expiry year + 3 |
/// | 4000000000000259 | replaced by 4000000000000077, expiry month unchanged, year + 2 |
/// | 4000000000000556 | account closed |
/// | any other | no change |
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccountUpdate {
    /// Reissued with a new expiry (the number stays).
    Reissued { exp_month: i32, exp_year: i32 },
    /// Replaced by a new card number with a new expiry.
    Replaced {
        pan: String,
        exp_month: i32,
        exp_year: i32,
    },
    /// The account is closed: the card cannot be charged any more.
    Closed,
}

pub const REISSUED_CARD: &str = "4000000000000341";
pub const REPLACED_CARD: &str = "4000000000000259";
pub const REPLACEMENT_CARD: &str = "4000000000000077";
pub const CLOSED_CARD: &str = "4000000000000556";

/// The simulated account updater's answer for a card `pan` stored with expiry `m`/`y`.
pub fn account_update(pan: &str, m: i32, y: i32) -> Option<AccountUpdate> {
    match pan {
        REISSUED_CARD => Some(AccountUpdate::Reissued {
            exp_month: m,
            exp_year: y + 3,
        }),
        REPLACED_CARD => Some(AccountUpdate::Replaced {
            pan: REPLACEMENT_CARD.into(),
            exp_month: m,
            exp_year: y + 2,
        }),
        CLOSED_CARD => Some(AccountUpdate::Closed),
        _ => None,
    }
}

const IBAN_LENGTHS: &[(&str, usize)] = &[
    // SEPA
    ("AD", 24),
    ("AT", 20),
    ("BE", 16),
    ("BG", 22),
    ("CH", 21),
    ("CY", 28),
    ("CZ", 24),
    ("DE", 22),
    ("DK", 18),
    ("EE", 20),
    ("ES", 24),
    ("FI", 18),
    ("FR", 27),
    ("GB", 22),
    ("GI", 23),
    ("GR", 27),
    ("HR", 21),
    ("HU", 28),
    ("IE", 22),
    ("IS", 26),
    ("IT", 27),
    ("LI", 21),
    ("LT", 20),
    ("LU", 20),
    ("LV", 21),
    ("MC", 27),
    ("MT", 31),
    ("NL", 18),
    ("NO", 15),
    ("PL", 28),
    ("PT", 25),
    ("RO", 24),
    ("SE", 24),
    ("SI", 19),
    ("SK", 24),
    ("SM", 27),
    ("VA", 22),
    // Other IBAN countries
    ("AE", 23),
    ("AL", 28),
    ("AZ", 28),
    ("BA", 20),
    ("BH", 22),
    ("BR", 29),
    ("BY", 28),
    ("CR", 22),
    ("DO", 28),
    ("EG", 29),
    ("FO", 18),
    ("GE", 22),
    ("GL", 18),
    ("GT", 28),
    ("IL", 23),
    ("IQ", 23),
    ("JO", 30),
    ("KW", 30),
    ("KZ", 20),
    ("LB", 28),
    ("LC", 32),
    ("MD", 24),
    ("ME", 22),
    ("MK", 19),
    ("MR", 27),
    ("MU", 30),
    ("PK", 24),
    ("PS", 29),
    ("QA", 29),
    ("RS", 22),
    ("SA", 24),
    ("SC", 31),
    ("ST", 25),
    ("SV", 28),
    ("TL", 23),
    ("TN", 24),
    ("TR", 26),
    ("UA", 29),
    ("VG", 24),
    ("XK", 20),
];

/// Removes spaces and upper-cases, the electronic IBAN form.
fn normalize_iban(iban: &str) -> String {
    iban.chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

/// Whether `iban` is a valid IBAN (ISO 13616): spaces allowed, any case; a
/// registered country code with its exact length; check digits 02-98;
/// alphanumeric BBAN; and the mod-97 check (country and check digits moved to
/// the end, letters as 10-35, remainder 1).
pub fn iban_valid(iban: &str) -> bool {
    let iban = normalize_iban(iban);
    let (Some(country), Some(check)) = (iban.get(..2), iban.get(2..4)) else {
        return false;
    };
    let Some(&(_, len)) = IBAN_LENGTHS.iter().find(|(c, _)| *c == country) else {
        return false;
    };
    if iban.len() != len
        || !iban.bytes().all(|b| b.is_ascii_alphanumeric())
        || !check.bytes().all(|b| b.is_ascii_digit())
        || !matches!(check.parse::<u32>(), Ok(2..=98))
    {
        return false;
    }
    let rearranged = iban[4..].bytes().chain(iban[..4].bytes());
    let remainder = rearranged.fold(0u32, |acc, b| {
        let value = if b.is_ascii_digit() {
            u32::from(b - b'0')
        } else {
            u32::from(b - b'A') + 10
        };
        let shift = if value >= 10 { 100 } else { 10 };
        (acc * shift + value) % 97
    });
    remainder == 1
}

/// Decides a SEPA direct debit: valid IBANs approve, anything else declines
/// with 2017 IBAN invalid.
pub fn decide_iban(iban: &str) -> Outcome {
    if iban_valid(iban) {
        Outcome::Approved
    } else {
        Outcome::declined(ErrorCode::IbanInvalid)
    }
}

/// Masks an IBAN for display: the electronic form with all but the first four
/// (country, check digits) and last four characters replaced by `*`,
/// e.g. `AT48************5864`. Inputs of 8 characters or fewer are fully masked.
pub fn mask_iban(iban: &str) -> String {
    let iban = normalize_iban(iban);
    let chars: Vec<char> = iban.chars().collect();
    let n = chars.len();
    if n <= 8 {
        return "*".repeat(n);
    }
    chars
        .iter()
        .enumerate()
        .map(|(i, &c)| if i < 4 || i >= n - 4 { c } else { '*' })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_cards() {
        let declined = |code, message| Outcome::Declined { code, message };
        assert_eq!(
            decide_card("4000000000000002"),
            declined(2003, "Transaction declined")
        );
        assert_eq!(
            decide_card("4000000000009995"),
            declined(2006, "Insufficient funds")
        );
        assert_eq!(
            decide_card("4000000000000069"),
            declined(2009, "Expired card")
        );
        assert_eq!(
            decide_card("4000000000000119"),
            declined(1003, "Processing error")
        );
    }

    #[test]
    fn other_valid_cards_approve() {
        for pan in [
            "4111111111111111",
            "4242424242424242",
            "5555555555554444",
            "378282246310005",
            "4000000000003220",
        ] {
            assert_eq!(decide_card(pan), Outcome::Approved, "{pan}");
        }
        assert_eq!(
            decide_card("4111111111111112"),
            Outcome::Declined {
                code: 2008,
                message: "Invalid card"
            }
        );
    }

    #[test]
    fn three_ds_card() {
        assert!(needs_3ds("4000000000003220"));
        for pan in [
            "4111111111111111",
            "4000000000000002",
            "4000000000003221",
            "",
        ] {
            assert!(!needs_3ds(pan), "{pan}");
        }
    }

    #[test]
    fn valid_ibans() {
        for iban in [
            "AT483200000012345864",
            "AT61 1904 3002 3457 3201",
            "DE89370400440532013000",
            "de89 3704 0044 0532 0130 00",
            "GB29NWBK60161331926819",
            "FR1420041010050500013M02606",
            "NL91ABNA0417164300",
            "BE68539007547034",
            "CH9300762011623852957",
            "NO9386011117947",
            "MT84MALT011000012345MTLCAST001S",
            "HR1210010051863000160",
            "BA391290079401028494",
        ] {
            assert!(iban_valid(iban), "{iban}");
            assert_eq!(decide_iban(iban), Outcome::Approved);
        }
    }

    #[test]
    fn invalid_ibans() {
        for iban in [
            "",
            "AT",
            "AT48",
            "AT483200000012345865",  // check digit
            "AT48320000001234586",   // too short for AT
            "AT4832000000123458640", // too long for AT
            "XX483200000012345864",  // unknown country
            "DE89370400440532013000X",
            "DE89-3704-0044-0532-0130-00",
            "DE8937040044053201300É",
            "4T483200000012345864",
            "ATx83200000012345864",
        ] {
            assert!(!iban_valid(iban), "{iban:?}");
            assert_eq!(
                decide_iban(iban),
                Outcome::Declined {
                    code: 2017,
                    message: "IBAN invalid"
                }
            );
        }
    }

    #[test]
    fn check_digits_outside_02_98_are_invalid() {
        // Check digits 01 and 98 (and 02 and 99) are congruent mod 97, so the
        // checksum alone would accept 01 or 99; ISO allows only 02-98.
        let bban = "370400440532013000";
        let valid: Vec<u32> = (0..100)
            .filter(|cd| iban_valid(&format!("DE{cd:02}{bban}")))
            .collect();
        assert_eq!(valid, vec![89]);
        // Construct an IBAN whose true check digits are 98 and confirm 01 is refused.
        let bban98 = (0..1000u32)
            .map(|n| format!("{n:018}"))
            .find(|b| iban_valid(&format!("DE98{b}")))
            .expect("some BBAN has check digits 98");
        assert!(!iban_valid(&format!("DE01{bban98}")));
    }

    #[test]
    fn country_table_is_consistent() {
        let mut codes: Vec<&str> = IBAN_LENGTHS.iter().map(|(c, _)| *c).collect();
        assert!(IBAN_LENGTHS.iter().all(|(c, len)| {
            c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase()) && (15..=34).contains(len)
        }));
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), IBAN_LENGTHS.len(), "no country listed twice");
    }

    #[test]
    fn masks_iban() {
        assert_eq!(mask_iban("AT483200000012345864"), "AT48************5864");
        assert_eq!(
            mask_iban("at61 1904 3002 3457 3201"),
            "AT61************3201"
        );
        assert_eq!(mask_iban("AT123456"), "********");
        assert_eq!(mask_iban(""), "");
    }
}
