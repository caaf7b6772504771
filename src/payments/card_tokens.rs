//! payment.js card tokens: a browser sends the card to `POST /api/v3/paymentjs/{publicKey}/tokenize`
//! and gets an `ix::…` token back; the merchant's server then sends the token as
//! `transactionToken` and the transaction code [`consume`]s it.
//!
//! * The card number and CVV are sealed together (AAD: the token) and live only in the
//!   `card_tokens` row. The CVV is never stored anywhere else: it disappears with the token,
//!   which is single-use and expires after `COFFER_CARD_TOKEN_MINUTES` (default
//!   [`TOKEN_TTL_MINUTES`]) minutes; the background loop deletes expired ones ([`purge_expired`]).
//! * No error message, `Debug` output or log line carries the number or the CVV: request
//!   parsing names fields only (serde's messages are not used, since they quote values).
//! * Errors of the public endpoint:
//!   - unparseable body or not a JSON object: HTTP 400, errorCode 1002;
//!   - missing or mistyped fields, invalid card, card holder too long: HTTP 422, errorCode 1002,
//!     with a message naming the fields (`number: card number is invalid; cvv: …`);
//!   - unknown public integration key, or the connector or its merchant inactive: HTTP 404,
//!     errorCode 1000, one message for all cases (an inactive key is not distinguishable from
//!     an unknown one);
//!   - a connector that does not take cards (SEPA): HTTP 400, errorCode 1007.

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::error::ServiceError;
use crate::gateway::card::{self, CardData};
use crate::gateway::errors::ErrorCode;
use crate::gateway::{ids, vault};
use crate::models::connector;
use crate::models::throttle;
use crate::models::transaction::{self as tx_model, CardToken};
use crate::payments::error::{Kind, PayError};
use crate::vault::keyring::Keyring;

/// How long a card token can be used, by default (`COFFER_CARD_TOKEN_MINUTES`).
pub const TOKEN_TTL_MINUTES: i64 = crate::config::CARD_TOKEN_MINUTES_DEFAULT;
/// Longest accepted `cardHolder`, in characters.
pub const CARD_HOLDER_MAX: usize = 100;
/// The one answer for a token that cannot be used, whatever the reason.
pub const INVALID_TOKEN_MESSAGE: &str =
    "transactionToken is invalid, expired, already used or not issued for this connector";
/// The one answer for a public key that cannot tokenize, whatever the reason.
pub const UNKNOWN_KEY_MESSAGE: &str = "Unknown or inactive public integration key.";

/// The tokenize request body (`cardHolder`, `number`, `cvv`, `month`, `year`).
/// `Debug` masks the number and hides the CVV.
pub struct TokenizeRequest {
    pub card_holder: Option<String>,
    pub number: String,
    pub cvv: String,
    pub month: String,
    pub year: String,
}

impl std::fmt::Debug for TokenizeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenizeRequest")
            .field("card_holder", &self.card_holder)
            .field("number", &card::mask(&self.number))
            .field("cvv", &"<redacted>")
            .field("month", &self.month)
            .field("year", &self.year)
            .finish()
    }
}

impl TokenizeRequest {
    /// Parses the JSON body. Messages name fields and JSON positions, never values.
    /// `number` and `cvv` must be strings (a CVV as a number would lose leading zeros);
    /// `month` and `year` may be strings or integers; `cardHolder` may be absent or null.
    pub fn from_json(body: &[u8]) -> Result<TokenizeRequest, PayError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Err(bad_request(
                "The request body is empty; a JSON object is required.",
            ));
        }
        let value: Value = serde_json::from_slice(body).map_err(|e| {
            bad_request(format!(
                "The request body is not valid JSON (line {}, column {}).",
                e.line(),
                e.column()
            ))
        })?;
        let Value::Object(obj) = value else {
            return Err(bad_request("The request body must be a JSON object."));
        };
        if crate::gateway::json::has_nul(body) {
            return Err(bad_request(crate::gateway::json::NUL_MESSAGE));
        }
        let mut errors: Vec<String> = Vec::new();
        let mut text = |name: &str, allow_int: bool, required: bool| -> Option<String> {
            match obj.get(name) {
                None | Some(Value::Null) => {
                    if required {
                        errors.push(format!("{name}: is required"));
                    }
                    None
                }
                Some(Value::String(s)) => Some(s.clone()),
                Some(Value::Number(n)) if allow_int && n.is_u64() => Some(n.to_string()),
                Some(_) => {
                    errors.push(format!(
                        "{name}: must be a {}",
                        if allow_int {
                            "string or an integer"
                        } else {
                            "string"
                        }
                    ));
                    None
                }
            }
        };
        let card_holder = text("cardHolder", false, false);
        let number = text("number", false, true);
        let cvv = text("cvv", false, true);
        let month = text("month", true, true);
        let year = text("year", true, true);
        match (number, cvv, month, year) {
            (Some(number), Some(cvv), Some(month), Some(year)) if errors.is_empty() => {
                Ok(TokenizeRequest {
                    card_holder,
                    number,
                    cvv,
                    month,
                    year,
                })
            }
            _ => Err(PayError::invalid(errors.join("; "))),
        }
    }
}

/// The tokenize answer: `{"success":true,"token","brand","firstSixDigits","lastFourDigits"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TokenizeAnswer {
    pub success: bool,
    pub token: String,
    pub brand: String,
    pub first_six_digits: String,
    pub last_four_digits: String,
}

/// A consumed token's card. `Debug` masks the PAN and hides the CVV and the holder.
/// Not `Clone`: the CVV should not be copied around.
pub struct ConsumedCard {
    pub card: CardData,
    pub cvv: String,
    pub card_holder: Option<String>,
    /// `vault::fingerprint(mac_key, pan)`, hex.
    pub fingerprint: String,
}

impl std::fmt::Debug for ConsumedCard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsumedCard")
            .field("card", &self.card)
            .field("cvv", &"<redacted>")
            .field(
                "card_holder",
                &self.card_holder.as_ref().map(|_| "<redacted>"),
            )
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

/// The sealed part of a token.
#[derive(Serialize, Deserialize)]
struct SealedCard {
    pan: String,
    cvv: String,
}

/// The plaintext a token seals (AAD: the token): JSON `{"pan","cvv"}`. Public for
/// `coffer bench-seed`, which writes card tokens directly.
pub fn sealed_plaintext(pan: &str, cvv: &str) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&SealedCard {
        pan: pan.to_string(),
        cvv: cvv.to_string(),
    })
}

fn bad_request(message: impl Into<String>) -> PayError {
    PayError::new(Kind::Malformed, ErrorCode::InvalidRequestData, message)
}

fn unknown_key() -> PayError {
    PayError::new(
        Kind::NotFound,
        ErrorCode::RequestFailed,
        UNKNOWN_KEY_MESSAGE,
    )
}

fn invalid_token() -> PayError {
    PayError::invalid(INVALID_TOKEN_MESSAGE)
}

fn unexpected(e: impl Into<anyhow::Error>) -> PayError {
    PayError::from(ServiceError::Unexpected(e.into()))
}

fn db_error(e: diesel::result::Error) -> PayError {
    PayError::from(ServiceError::Db(e))
}

/// `write_tx` needs an error type built from diesel's (for BEGIN/COMMIT failures).
struct TxError(PayError);

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError(db_error(e))
    }
}

impl From<PayError> for TxError {
    fn from(e: PayError) -> Self {
        TxError(e)
    }
}

/// The tokenize rate limits, per minute (`COFFER_TOKENIZE_LIMIT_PER_ADDRESS`,
/// `COFFER_TOKENIZE_LIMIT_PER_KEY`); 0 switches one off.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub per_address: u32,
    pub per_key: u32,
}

/// Length of a rate-limit window.
pub const LIMIT_WINDOW_SECONDS: i64 = 60;
const ADDRESS_PREFIX: &str = "tokenize-address:";
const KEY_PREFIX: &str = "tokenize-key:";

/// Counts a tokenization for the client address `source` and for the public key (when it names
/// a connector), in fixed one-minute windows kept in the database (`login_throttle`, so the
/// count holds across processes sharing a PostgreSQL database), and refuses it with 1009 (HTTP
/// 429, `Retry-After`) over either limit. The address is counted first: a refusal by the key's
/// limit still uses up one of the address's.
fn admit(
    conn: &mut DbConnection,
    public_key: &str,
    source: &str,
    limits: Limits,
    now: DateTime<Utc>,
) -> Result<(), PayError> {
    let at = now.naive_utc();
    let window = Duration::seconds(LIMIT_WINDOW_SECONDS);
    let count = |conn: &mut DbConnection, key: String, limit: u32| {
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        throttle::count_in_window(conn, &key, limit, at, window).map_err(db_error)
    };
    if limits.per_address > 0
        && let Some(wait) = count(
            conn,
            format!("{ADDRESS_PREFIX}{source}"),
            limits.per_address,
        )?
    {
        return Err(too_many("this address", wait));
    }
    if limits.per_key > 0
        && !public_key.is_empty()
        && public_key.len() <= 128
        && !public_key.contains('\0')
        && connector::find_acting(conn, connector::Named::PublicKey(public_key))
            .map_err(db_error)?
            .is_some()
        && let Some(wait) = count(conn, format!("{KEY_PREFIX}{public_key}"), limits.per_key)?
    {
        return Err(too_many("this public integration key", wait));
    }
    Ok(())
}

fn too_many(whom: &str, wait: i64) -> PayError {
    PayError::too_many(
        format!("Too many card tokenizations from {whom}: try again in {wait} seconds."),
        u32::try_from(wait).unwrap_or(u32::MAX),
    )
}

/// [`tokenize`] after [`admit`], in one write transaction: the counts are kept whether the
/// card is then accepted or refused.
#[allow(clippy::too_many_arguments)]
pub fn tokenize_limited(
    conn: &mut DbConnection,
    keyring: &Keyring,
    public_key: &str,
    source: &str,
    limits: Limits,
    req: TokenizeRequest,
    now: DateTime<Utc>,
    lifetime_minutes: i64,
) -> Result<TokenizeAnswer, PayError> {
    write_tx(conn, |c| -> Result<_, TxError> {
        if let Err(e) = admit(c, public_key, source, limits, now) {
            return Ok(Err(e));
        }
        Ok(tokenize(c, keyring, public_key, req, now, lifetime_minutes))
    })
    .map_err(|TxError(e)| e)?
}

/// Deletes the tokenize rate-limit windows that are over (the background loop calls it with
/// [`purge_expired`]).
pub fn purge_limit_windows(
    conn: &mut DbConnection,
    now: DateTime<Utc>,
) -> Result<usize, ServiceError> {
    let before = now.naive_utc() - Duration::seconds(LIMIT_WINDOW_SECONDS);
    write_tx(conn, |tx| {
        Ok(throttle::purge_windows(tx, ADDRESS_PREFIX, before)?
            + throttle::purge_windows(tx, KEY_PREFIX, before)?)
    })
}

/// Validates the card of `req` and stores it as a new token, usable for `lifetime_minutes`, for
/// the connector whose public integration key is `public_key`. Expired tokens are purged on the
/// way.
pub fn tokenize(
    conn: &mut DbConnection,
    keyring: &Keyring,
    public_key: &str,
    req: TokenizeRequest,
    now: DateTime<Utc>,
    lifetime_minutes: i64,
) -> Result<TokenizeAnswer, PayError> {
    if public_key.is_empty() || public_key.len() > 128 || public_key.contains('\0') {
        return Err(unknown_key());
    }
    let conn_row = connector::find_acting(conn, connector::Named::PublicKey(public_key))
        .map_err(db_error)?
        .ok_or_else(unknown_key)?;
    if conn_row.adapter == "sepa" {
        return Err(PayError::configuration(
            "This connector does not accept card payments.",
        ));
    }

    let mut problems: Vec<String> = Vec::new();
    let holder = req
        .card_holder
        .as_deref()
        .map(str::trim)
        .filter(|h| !h.is_empty());
    if holder.is_some_and(|h| h.chars().count() > CARD_HOLDER_MAX) {
        problems.push(format!(
            "cardHolder: must be at most {CARD_HOLDER_MAX} characters"
        ));
    }
    if holder.is_some_and(|h| h.chars().any(char::is_control)) {
        problems.push("cardHolder: must not contain control characters".into());
    }
    let card = match card::validate_card(&req.number, &req.cvv, &req.month, &req.year, now) {
        Ok(c) => Some(c),
        Err(errs) => {
            // validate_card's messages are fixed texts: they never contain the input.
            problems.extend(
                errs.into_iter()
                    .map(|(field, msg)| format!("{field}: {msg}")),
            );
            None
        }
    };
    let card = match card {
        Some(c) if problems.is_empty() => c,
        _ => return Err(PayError::invalid(problems.join("; "))),
    };

    let plaintext = sealed_plaintext(&card.pan, &req.cvv).map_err(unexpected)?;
    let fingerprint = vault::fingerprint(keyring.mac_key()?, &card.pan);
    let created_at = now.naive_utc();
    let expires_at = created_at + Duration::minutes(lifetime_minutes);

    write_tx(conn, |conn| -> Result<TokenizeAnswer, TxError> {
        tx_model::purge_expired_card_tokens(conn, created_at)?;
        // 20 random alphanumerics: a collision is practically impossible, but cheap to retry.
        for _ in 0..3 {
            let token = ids::card_token();
            let row = CardToken {
                sealed: keyring
                    .seal(
                        conn,
                        &crate::vault::keyring::Owner::of_path(Some(&conn_row.tenant_path)),
                        &plaintext,
                        token.as_bytes(),
                    )
                    .map_err(unexpected)?,
                token,
                connector_id: conn_row.id.clone(),
                brand: card.brand.to_string(),
                first_six: card.first_six.clone(),
                last_four: card.last_four.clone(),
                exp_month: i32::try_from(card.exp_month).map_err(unexpected)?,
                exp_year: card.exp_year,
                card_holder: holder.map(str::to_string),
                fingerprint: fingerprint.clone(),
                expires_at,
                created_at,
            };
            match tx_model::insert_card_token(conn, &row) {
                Ok(()) => {
                    return Ok(TokenizeAnswer {
                        success: true,
                        token: row.token,
                        brand: row.brand,
                        first_six_digits: row.first_six,
                        last_four_digits: row.last_four,
                    });
                }
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(unexpected(anyhow::anyhow!("could not allocate a unique card token")).into())
    })
    .map_err(|TxError(e)| e)
}

/// Deletes the tokens expired at `now`, with their sealed card numbers and CVVs (each
/// process's background loop calls it every few seconds). Returns how many went.
pub fn purge_expired(conn: &mut DbConnection, now: DateTime<Utc>) -> Result<usize, ServiceError> {
    write_tx(conn, |tx| {
        Ok(tx_model::purge_expired_card_tokens(tx, now.naive_utc())?)
    })
}

/// Uses up `token` for a transaction of `connector_id`: the token must exist, be unexpired and
/// have been issued through that connector's public key. It is deleted (single use), so call
/// this inside the transaction that records the payment: if that transaction rolls back, the
/// token is usable again. Every failure answers the same 1002 error, so callers learn nothing
/// about other connectors' tokens. A token presented by the wrong connector is left alone.
pub fn consume(
    conn: &mut DbConnection,
    keyring: &Keyring,
    connector_id: &str,
    token: &str,
    now: DateTime<Utc>,
) -> Result<ConsumedCard, PayError> {
    if !token.starts_with(ids::CARD_TOKEN_PREFIX) || token.len() > 64 {
        return Err(invalid_token());
    }
    let row = tx_model::find_card_token(conn, token)
        .map_err(db_error)?
        .ok_or_else(invalid_token)?;
    if row.connector_id != connector_id {
        return Err(invalid_token());
    }
    if row.expires_at <= now.naive_utc() {
        // Expired: remove it (and its CVV) now rather than at the next purge.
        tx_model::delete_card_token(conn, token).map_err(db_error)?;
        return Err(invalid_token());
    }
    if tx_model::delete_card_token(conn, token).map_err(db_error)? != 1 {
        return Err(invalid_token()); // consumed concurrently
    }
    let opened = keyring
        .open(conn, &row.sealed, row.token.as_bytes())
        .map_err(unexpected)?;
    // The plaintext is our own JSON; a parse failure message could quote it, so drop it.
    let sealed: SealedCard = serde_json::from_slice(&opened).map_err(|_| {
        unexpected(anyhow::anyhow!(
            "card token {token}: sealed card is malformed"
        ))
    })?;
    let brand = card::brand(&sealed.pan)
        .filter(|b| *b == row.brand)
        .ok_or_else(|| {
            unexpected(anyhow::anyhow!(
                "card token {token}: sealed card does not match its brand"
            ))
        })?;
    let exp_month = u32::try_from(row.exp_month).map_err(unexpected)?;
    Ok(ConsumedCard {
        card: CardData {
            pan: sealed.pan,
            brand,
            first_six: row.first_six,
            last_four: row.last_four,
            exp_month,
            exp_year: row.exp_year,
        },
        cvv: sealed.cvv,
        card_holder: row.card_holder,
        fingerprint: row.fingerprint,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<TokenizeRequest, PayError> {
        TokenizeRequest::from_json(s.as_bytes())
    }

    #[test]
    fn parses_strings_and_integer_dates() {
        let r = parse(
            r#"{"cardHolder":"Ann","number":"4111111111111111","cvv":"012","month":3,"year":"2030"}"#,
        )
        .expect("valid");
        assert_eq!(r.card_holder.as_deref(), Some("Ann"));
        assert_eq!(
            (r.cvv.as_str(), r.month.as_str(), r.year.as_str()),
            ("012", "3", "2030")
        );
        let r = parse(r#"{"number":"4111111111111111","cvv":"123","month":"03","year":2030,"cardHolder":null}"#)
            .expect("valid");
        assert_eq!(r.card_holder, None);
    }

    #[test]
    fn errors_name_fields_never_values() {
        let e = parse(r#"{"number":4111111111111111,"cvv":737,"month":"12"}"#).expect_err("bad");
        assert_eq!(e.kind, Kind::Invalid);
        assert_eq!(e.code.code(), 1002);
        assert!(
            e.message.contains("number: must be a string"),
            "{}",
            e.message
        );
        assert!(e.message.contains("cvv: must be a string"), "{}", e.message);
        assert!(e.message.contains("year: is required"), "{}", e.message);
        assert!(!e.message.contains("4111111111111111"), "{}", e.message);
        assert!(!e.message.contains("737"), "{}", e.message);

        for body in ["", "  ", "{\"number\":\"4111", "[1]", "null"] {
            let e = parse(body).expect_err(body);
            assert_eq!(e.kind, Kind::Malformed, "{body}");
            assert_eq!(e.code.code(), 1002);
            assert!(!e.message.contains("4111"), "{}", e.message);
        }
    }

    #[test]
    fn debug_output_hides_the_card() {
        let r = parse(r#"{"number":"4111111111111111","cvv":"987","month":1,"year":2030}"#)
            .expect("valid");
        let shown = format!("{r:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(!shown.contains("987"), "{shown}");
        assert!(shown.contains("411111******1111"), "{shown}");

        let c = ConsumedCard {
            card: card::validate_card("4111111111111111", "987", "1", "2099", Utc::now())
                .expect("card"),
            cvv: "987".into(),
            card_holder: Some("Ann Example".into()),
            fingerprint: "f".into(),
        };
        let shown = format!("{c:?}");
        assert!(!shown.contains("4111111111111111"), "{shown}");
        assert!(!shown.contains("987"), "{shown}");
        assert!(!shown.contains("Ann"), "{shown}");
    }
}
