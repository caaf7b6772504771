//! Monri-compatible Customers API v2 (spec section 5): authentication (WP3-v2.1 digest and
//! OAuth bearer tokens) and the customer endpoints, over the same customer profiles as the
//! IXOPAY APIs.
//!
//! A v2 customer **is** a customer profile of the connector's effective container
//! ([`crate::console::connectors::effective`]); its `uuid` is the profile's `uuid` column. The
//! field mapping (README, "Monri Customers API v2"):
//!
//! | v2 | stored profile |
//! |---|---|
//! | `merchant_customer_id` | `customerIdentification`; without one, the uuid itself |
//! | `name` | `firstName` (up to the first space) and `lastName` (the rest) |
//! | `email` | `email` | `phone` → `billingPhone` | `address` → `billingAddress1` |
//! | `city` → `billingCity` | `zip_code` → `billingPostcode` | `country` → `billingCountry` |
//! | `metadata` | `extraData` (string values) |
//! | `description` | the customer JSON's `description` key (not shown by IXOPAY) |
//!
//! Each API validates its own input with its own limits; answers show what is stored, so a value
//! written through one API within its limits never makes the other fail.
//!
//! Errors answer `{"status":"invalid-request","message":…}` (4xx) or
//! `{"status":"error","message":…}` (5xx). Secrets (merchant key, tokens) are never echoed or
//! logged; card data is read from the masked columns only.

use actix_web::http::StatusCode;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use crate::audit;
use crate::audit::access::{Kind as Read, Reader};
use crate::console::connectors;
use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::error::KeysUnavailable;
use crate::error::ServiceError;
use crate::gateway::vault;
use crate::models::connector::{self, Connector, Named};
use crate::models::container::Container;
use crate::models::monri::{self as rows, AccessToken};
use crate::models::now;
use crate::models::profile::{self, Instrument, Profile};
use crate::vault::config_cache::Snapshot;
use crate::vault::keyring::Keyring;
use crate::vault::profiles::{self, Key};

/// Lifetime of an OAuth access token, in seconds (spec 5.1).
pub const TOKEN_TTL_SECONDS: i64 = 900;
/// Default and maximum page size of the list endpoints.
pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 100;
/// The OAuth scopes (spec 5.1).
pub const SCOPE_CUSTOMERS: &str = "customers";
pub const SCOPE_PAYMENT_METHODS: &str = "payment-methods";
const SCOPES: [&str; 2] = [SCOPE_CUSTOMERS, SCOPE_PAYMENT_METHODS];

/// Limits of `metadata`: the same as IXOPAY's `extraData`, which it is stored as, so that
/// metadata written here stays valid for an IXOPAY updateProfile.
const METADATA_MAX_KEYS: usize = 64;
const METADATA_MAX_KEY_LEN: usize = 64;
const METADATA_MAX_VALUE_LEN: usize = 8192;

// ---------- errors ----------

/// An error answer of the v2 API.
#[derive(Debug, Clone)]
pub struct MonriError {
    pub status: StatusCode,
    pub message: String,
}

impl MonriError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        MonriError {
            status,
            message: message.into(),
        }
    }
    /// 400: the request is invalid.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 401: authentication failed. The message never says which part was wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "Authentication failed: check the Authorization header and the credentials.",
        )
    }
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "Customer not found.")
    }
    /// The JSON body: `invalid-request` for client errors, `error` for server errors.
    pub fn body(&self) -> Value {
        let status = if self.status.is_server_error() {
            "error"
        } else {
            "invalid-request"
        };
        json!({ "status": status, "message": self.message })
    }
}

impl From<ServiceError> for MonriError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => MonriError::not_found(),
            ServiceError::Validation(errs) => MonriError::invalid(
                errs.0
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ServiceError::Conflict(m) => MonriError::invalid(m),
            ServiceError::Forbidden => MonriError::unauthorized(),
            ServiceError::Throttled => MonriError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "Too many requests; retry later.",
            ),
            ServiceError::Stale => MonriError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "The configuration changed during the request; retry.",
            ),
            ServiceError::Unexpected(e) if KeysUnavailable::find(&e).is_some() => {
                let message = KeysUnavailable::find(&e).map(|k| k.0.clone());
                MonriError::new(StatusCode::SERVICE_UNAVAILABLE, message.unwrap_or_default())
            }
            other @ (ServiceError::Db(_) | ServiceError::Pool(_) | ServiceError::Unexpected(_)) => {
                tracing::error!(error = ?other, "Monri API request failed");
                MonriError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Unexpected system error.",
                )
            }
        }
    }
}

impl From<diesel::result::Error> for MonriError {
    fn from(e: diesel::result::Error) -> Self {
        MonriError::from(ServiceError::Db(e))
    }
}

impl From<anyhow::Error> for MonriError {
    fn from(e: anyhow::Error) -> Self {
        MonriError::from(ServiceError::Unexpected(e))
    }
}

/// A successful answer: HTTP status and JSON body.
pub type Answer = (StatusCode, Value);

// ---------- authentication ----------

/// What an endpoint needs from an OAuth token (WP3-v2.1 requests carry no scopes and may call
/// every endpoint of their connector).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// `customers`.
    Customers,
    /// `customers` and `payment-methods`.
    PaymentMethods,
}

impl Need {
    fn scopes(self) -> &'static [&'static str] {
        match self {
            Need::Customers => &[SCOPE_CUSTOMERS],
            Need::PaymentMethods => &[SCOPE_CUSTOMERS, SCOPE_PAYMENT_METHODS],
        }
    }
}

/// The parts of the HTTP request authentication reads.
#[derive(Debug, Clone)]
pub struct RequestAuth {
    pub authorization: Option<String>,
    /// The request path as sent (percent-encoded, without the query): what the WP3-v2.1
    /// digest covers, like the official Ruby client's `uri.path`.
    pub path: String,
}

/// `hex(SHA-512(merchant_key + timestamp + authenticity_token + path + body))` (spec 5.1).
pub fn wp3_digest(
    merchant_key: &str,
    timestamp: &str,
    authenticity_token: &str,
    path: &str,
    body: &[u8],
) -> String {
    let mut h = Sha512::new();
    h.update(merchant_key.as_bytes());
    h.update(timestamp.as_bytes());
    h.update(authenticity_token.as_bytes());
    h.update(path.as_bytes());
    h.update(body);
    hex::encode(h.finalize())
}

/// Keyed hash under which an access token is stored (the token itself is never stored).
fn token_hash(keyring: &Keyring, token: &str) -> Result<String, MonriError> {
    Ok(vault::fingerprint(
        keyring.mac_key().map_err(ServiceError::from)?,
        &format!("monri-access-token:{token}"),
    ))
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The connector's merchant key in clear, or 401 when none was issued.
fn merchant_key(
    conn: &mut DbConnection,
    keyring: &Keyring,
    k: &Connector,
) -> Result<String, MonriError> {
    let sealed = k
        .monri_merchant_key
        .as_deref()
        .ok_or_else(MonriError::unauthorized)?;
    Ok(keyring.open_string(conn, sealed, &connectors::monri_key_aad(&k.id))?)
}

/// Authenticates a customer endpoint call by either scheme and returns its connector (the
/// connector and its merchant key come from `snapshot` of the process's configuration cache, see
/// `vault::config_cache`).
#[allow(clippy::too_many_arguments)]
pub fn authenticate(
    conn: &mut DbConnection,
    keyring: &Keyring,
    snapshot: &Snapshot,
    skew_seconds: i64,
    now: DateTime<Utc>,
    req: &RequestAuth,
    body: &[u8],
    need: Need,
) -> Result<Connector, MonriError> {
    let header = req
        .authorization
        .as_deref()
        .ok_or_else(MonriError::unauthorized)?
        .trim();
    if header.len() > 1024 {
        return Err(MonriError::unauthorized());
    }
    let (scheme, rest) = header
        .split_once(' ')
        .ok_or_else(MonriError::unauthorized)?;
    let wp3_scheme = scheme == "WP3-v2.1";
    if !wp3_scheme && !scheme.eq_ignore_ascii_case("bearer") {
        return Err(MonriError::unauthorized());
    }
    if wp3_scheme {
        wp3(
            conn,
            keyring,
            snapshot,
            skew_seconds,
            now,
            rest,
            &req.path,
            body,
        )
    } else {
        bearer(conn, snapshot, keyring, now, rest.trim(), need)
    }
}

#[allow(clippy::too_many_arguments)]
fn wp3(
    conn: &mut DbConnection,
    keyring: &Keyring,
    snapshot: &Snapshot,
    skew_seconds: i64,
    now: DateTime<Utc>,
    rest: &str,
    path: &str,
    body: &[u8],
) -> Result<Connector, MonriError> {
    let parts: Vec<&str> = rest.split_ascii_whitespace().collect();
    let [token, timestamp, digest] = parts[..] else {
        return Err(MonriError::unauthorized());
    };
    if token.is_empty() || token.len() > 64 || digest.len() != 128 {
        return Err(MonriError::unauthorized());
    }
    let ts: i64 = if !timestamp.is_empty()
        && timestamp.len() <= 12
        && timestamp.bytes().all(|b| b.is_ascii_digit())
    {
        timestamp.parse().map_err(|_| MonriError::unauthorized())?
    } else {
        return Err(MonriError::unauthorized());
    };
    if (now.timestamp() - ts).abs() > skew_seconds.abs() {
        return Err(MonriError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "Authentication failed: the timestamp is more than {} seconds from the server clock.",
                skew_seconds.abs()
            ),
        ));
    }
    let acting = snapshot
        .acting(conn, Named::MonriToken(token))?
        .ok_or_else(MonriError::unauthorized)?;
    let key = acting.monri_merchant_key(|| merchant_key(conn, keyring, &acting.connector))?;
    let expected = wp3_digest(key, timestamp, token, path, body);
    let given = digest.to_ascii_lowercase();
    if !bool::from(expected.as_bytes().ct_eq(given.as_bytes())) {
        return Err(MonriError::unauthorized());
    }
    Ok(acting.connector.clone())
}

fn bearer(
    conn: &mut DbConnection,
    snapshot: &Snapshot,
    keyring: &Keyring,
    now: DateTime<Utc>,
    token: &str,
    need: Need,
) -> Result<Connector, MonriError> {
    let expired = || MonriError::new(StatusCode::UNAUTHORIZED, "Invalid or expired access token.");
    if !is_lower_hex(token, 64) {
        return Err(expired());
    }
    let t = rows::find_token(conn, &token_hash(keyring, token)?)?.ok_or_else(expired)?;
    if t.expires_at <= now.naive_utc() {
        return Err(expired());
    }
    // A token issued before its connector or merchant was deactivated no longer works.
    let k = snapshot
        .acting(conn, Named::Id(&t.connector_id))?
        .ok_or_else(MonriError::unauthorized)?;
    let granted: Vec<&str> = t.scopes.split(' ').collect();
    if let Some(missing) = need.scopes().iter().find(|s| !granted.contains(s)) {
        return Err(MonriError::new(
            StatusCode::FORBIDDEN,
            format!("The access token lacks the scope {missing}."),
        ));
    }
    Ok(k.connector.clone())
}

/// `POST /v2/oauth`: client credentials (authenticity token and merchant key) for a Bearer
/// token valid for [`TOKEN_TTL_SECONDS`]. Only the token's keyed hash is stored, so a token
/// works on every Coffer process sharing the database.
pub fn issue_token(
    conn: &mut DbConnection,
    keyring: &Keyring,
    body: &[u8],
) -> Result<Answer, MonriError> {
    let obj = parse_object(body)?;
    let string = |name: &str| -> Result<String, MonriError> {
        match obj.get(name) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            None | Some(Value::Null) => Err(MonriError::invalid(format!("{name}: is required"))),
            Some(_) => Err(MonriError::invalid(format!(
                "{name}: must be a non-empty string"
            ))),
        }
    };
    let client_id = string("client_id")?;
    let client_secret = string("client_secret")?;
    if string("grant_type")? != "client_credentials" {
        return Err(MonriError::invalid(
            "grant_type: must be client_credentials",
        ));
    }
    let mut scopes: Vec<&'static str> = vec![];
    match obj.get("scopes") {
        Some(Value::Array(a)) if !a.is_empty() => {
            for v in a {
                let known = v
                    .as_str()
                    .and_then(|s| SCOPES.iter().find(|k| **k == s))
                    .ok_or_else(|| {
                        MonriError::invalid("scopes: each must be customers or payment-methods")
                    })?;
                if !scopes.contains(known) {
                    scopes.push(known);
                }
            }
        }
        _ => {
            return Err(MonriError::invalid(
                "scopes: must be a non-empty array of customers and/or payment-methods",
            ));
        }
    }
    // NUL cannot be stored in (or compared against) PostgreSQL text: no token holds one.
    if client_id.len() > 64 || client_secret.len() > 1024 || client_id.contains('\0') {
        return Err(MonriError::unauthorized());
    }
    let k = connector::find_acting(conn, Named::MonriToken(&client_id))?
        .ok_or_else(MonriError::unauthorized)?;
    let key = merchant_key(conn, keyring, &k)?;
    // Compare digests: constant time, and the lengths of the secrets do not matter.
    let same = Sha256::digest(key.as_bytes()).ct_eq(&Sha256::digest(client_secret.as_bytes()));
    if !bool::from(same) {
        return Err(MonriError::unauthorized());
    }
    let token = crate::ids::random_hex(32);
    let at = now();
    let row = AccessToken {
        token_hash: token_hash(keyring, &token)?,
        connector_id: k.id.clone(),
        scopes: scopes.join(" "),
        expires_at: at + chrono::Duration::seconds(TOKEN_TTL_SECONDS),
        created_at: at,
    };
    write_tx(conn, |tx| -> Result<(), MonriError> {
        rows::delete_expired_tokens(tx, at)?;
        rows::insert_token(tx, &row)?;
        Ok(())
    })?;
    Ok((
        StatusCode::OK,
        json!({
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": TOKEN_TTL_SECONDS,
            "status": "approved",
        }),
    ))
}

// ---------- requests ----------

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, MonriError> {
    if body.is_empty() {
        return Err(MonriError::invalid(
            "The request body is empty; a JSON object is required.",
        ));
    }
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(MonriError::invalid(
            "The request body must be a JSON object.",
        )),
        Err(e) => Err(MonriError::invalid(format!("Invalid JSON: {e}"))),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    /// Free text where line breaks are fine.
    Multiline,
    Email,
    Country,
}

/// The v2 fields (seed 003 lengths, in characters), with the customer JSON key each is stored
/// under (`None`: handled separately).
const FIELDS: [(&str, usize, usize, Kind, Option<&str>); 9] = [
    ("merchant_customer_id", 1, 100, Kind::Text, None),
    ("description", 1, 200, Kind::Multiline, Some("description")),
    ("email", 1, 200, Kind::Email, Some("email")),
    ("name", 1, 50, Kind::Text, None),
    ("phone", 1, 30, Kind::Text, Some("billingPhone")),
    ("zip_code", 1, 9, Kind::Text, Some("billingPostcode")),
    ("city", 3, 30, Kind::Text, Some("billingCity")),
    ("address", 3, 100, Kind::Text, Some("billingAddress1")),
    ("country", 2, 2, Kind::Country, Some("billingCountry")),
];

/// Keys of the answer a client may send back unchanged; they are ignored.
const READ_ONLY: [&str; 7] = [
    "uuid",
    "id",
    "status",
    "deleted",
    "created_at",
    "updated_at",
    "deleted_at",
];

/// How a request changes `metadata`.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataChange {
    /// `metadata: null`: remove every key.
    Clear,
    /// Set these keys; a `None` value removes the key.
    Merge(Vec<(String, Option<String>)>),
}

/// A validated create or update body: the fields present (`None` = sent as null).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CustomerInput {
    pub fields: Vec<(&'static str, Option<String>)>,
    pub metadata: Option<MetadataChange>,
}

/// ISO 3166-1 alpha-2 officially assigned codes, plus `XK` (user-assigned, in common use for
/// Kosovo).
const COUNTRIES: &str = "AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ \
BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ \
CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ \
EC EE EG EH ER ES ET FI FJ FK FM FO FR \
GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT HU \
ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ \
LA LB LC LI LK LR LS LT LU LV LY \
MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ \
NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA \
RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ \
TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU \
WF WS XK YE YT ZA ZM ZW";

pub fn is_country(code: &str) -> bool {
    code.len() == 2
        && code.bytes().all(|b| b.is_ascii_uppercase())
        && COUNTRIES.split(' ').any(|c| c == code)
}

fn check_field(
    name: &str,
    min: usize,
    max: usize,
    kind: Kind,
    v: &Value,
) -> Result<Option<String>, String> {
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s,
        _ => return Err(format!("{name}: must be a string")),
    };
    let s = if name == "name" { s.trim() } else { s.as_str() };
    let n = s.chars().count();
    if n < min || n > max {
        return Err(if min == max {
            format!("{name}: must be {min} characters")
        } else {
            format!("{name}: must be {min} to {max} characters")
        });
    }
    let bad_control = match kind {
        Kind::Multiline => s
            .chars()
            .any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t'),
        _ => s.chars().any(char::is_control),
    };
    if bad_control {
        return Err(format!("{name}: must not contain control characters"));
    }
    match kind {
        Kind::Email if !crate::api::ixopay::customer_profiles::is_email_shape(s) => {
            Err(format!("{name}: must be an email address"))
        }
        Kind::Country => {
            let up = s.to_ascii_uppercase();
            if is_country(&up) {
                Ok(Some(up))
            } else {
                Err(format!(
                    "{name}: must be an ISO 3166-1 alpha-2 country code"
                ))
            }
        }
        _ => Ok(Some(s.to_string())),
    }
}

fn check_metadata(v: &Value) -> Result<MetadataChange, String> {
    let m = match v {
        Value::Null => return Ok(MetadataChange::Clear),
        Value::Object(m) => m,
        _ => return Err("metadata: must be an object of strings".into()),
    };
    if m.len() > METADATA_MAX_KEYS {
        return Err(format!("metadata: at most {METADATA_MAX_KEYS} keys"));
    }
    let mut out = Vec::with_capacity(m.len());
    for (k, val) in m {
        let n = k.chars().count();
        if n == 0 || n > METADATA_MAX_KEY_LEN || k.chars().any(char::is_control) {
            return Err(format!(
                "metadata: keys must be 1 to {METADATA_MAX_KEY_LEN} characters, without control characters"
            ));
        }
        let shown: String = k.chars().take(64).collect();
        match val {
            Value::Null => out.push((k.clone(), None)),
            Value::String(s) if s.chars().count() <= METADATA_MAX_VALUE_LEN => {
                out.push((k.clone(), Some(s.clone())));
            }
            Value::String(_) => {
                return Err(format!(
                    "metadata.{shown}: must be at most {METADATA_MAX_VALUE_LEN} characters"
                ));
            }
            _ => return Err(format!("metadata.{shown}: must be a string or null")),
        }
    }
    Ok(MetadataChange::Merge(out))
}

/// Validates a create or update body completely; every problem is listed in one 400 answer.
pub fn parse_customer(body: &[u8]) -> Result<CustomerInput, MonriError> {
    let obj = parse_object(body)?;
    let mut errors = vec![];
    for k in obj.keys() {
        if k != "metadata" && !READ_ONLY.contains(&k.as_str()) && !FIELDS.iter().any(|f| f.0 == k) {
            let shown: String = k.chars().take(64).collect();
            errors.push(format!("unknown field {shown:?}"));
        }
    }
    let mut input = CustomerInput::default();
    for (name, min, max, kind, _) in FIELDS {
        if let Some(v) = obj.get(name) {
            match check_field(name, min, max, kind, v) {
                Ok(value) => input.fields.push((name, value)),
                Err(e) => errors.push(e),
            }
        }
    }
    if let Some(v) = obj.get("metadata") {
        match check_metadata(v) {
            Ok(m) => input.metadata = Some(m),
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(input)
    } else {
        Err(MonriError::invalid(errors.join("; ")))
    }
}

/// `limit` and `offset` of a list endpoint's query string.
pub fn parse_paging(query: &str) -> Result<(i64, i64), MonriError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| MonriError::invalid("The query string is malformed."))?;
    let number = |name: &str, default: i64, min: i64, max: i64| -> Result<i64, MonriError> {
        let mut values = pairs.iter().filter(|(k, _)| k == name);
        let Some((_, v)) = values.next() else {
            return Ok(default);
        };
        if values.next().is_some() {
            return Err(MonriError::invalid(format!("{name}: given more than once")));
        }
        let n: Option<i64> =
            if !v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()) {
                v.parse().ok()
            } else {
                None
            };
        match n {
            Some(n) if (min..=max).contains(&n) => Ok(n),
            _ => Err(MonriError::invalid(format!(
                "{name}: must be a whole number from {min} to {max}"
            ))),
        }
    };
    let limit = number("limit", DEFAULT_LIMIT, 1, MAX_LIMIT)?;
    let offset = number("offset", 0, 0, 999_999_999_999)?;
    Ok((limit, offset))
}

// ---------- mapping ----------

fn stored_customer(p: &Profile) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&p.customer) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

fn text(stored: &Map<String, Value>, key: &str) -> Option<String> {
    match stored.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    }
}

/// `name` from firstName and lastName, joined by one space.
fn full_name(stored: &Map<String, Value>) -> Option<String> {
    let parts: Vec<String> = ["firstName", "lastName"]
        .iter()
        .filter_map(|k| text(stored, k))
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

/// Splits a (trimmed) `name` on its first space: firstName, and the rest as lastName.
pub fn split_name(name: &str) -> (String, Option<String>) {
    match name.split_once(' ') {
        Some((first, rest)) if !rest.trim().is_empty() => {
            (first.to_string(), Some(rest.trim_start().to_string()))
        }
        _ => (name.trim_end().to_string(), None),
    }
}

/// Applies a validated input to the stored customer JSON and returns the new
/// customerIdentification (`Some` only when `merchant_customer_id` was sent).
fn apply(stored: &mut Map<String, Value>, input: &CustomerInput, uuid: &str) -> Option<String> {
    let mut ident = None;
    for (name, value) in &input.fields {
        match *name {
            "merchant_customer_id" => {
                ident = Some(value.clone().unwrap_or_else(|| uuid.to_string()));
            }
            "name" => {
                stored.remove("firstName");
                stored.remove("lastName");
                if let Some(n) = value {
                    let (first, last) = split_name(n);
                    stored.insert("firstName".into(), Value::String(first));
                    if let Some(l) = last {
                        stored.insert("lastName".into(), Value::String(l));
                    }
                }
            }
            other => {
                let Some(key) = FIELDS.iter().find(|f| f.0 == other).and_then(|f| f.4) else {
                    continue;
                };
                match value {
                    Some(v) => stored.insert(key.to_string(), Value::String(v.clone())),
                    None => stored.remove(key),
                };
            }
        }
    }
    match &input.metadata {
        None => {}
        Some(MetadataChange::Clear) => {
            stored.remove("extraData");
        }
        Some(MetadataChange::Merge(changes)) => {
            let mut extra = match stored.remove("extraData") {
                Some(Value::Object(m)) => m,
                _ => Map::new(),
            };
            for (k, v) in changes {
                match v {
                    Some(v) => extra.insert(k.clone(), Value::String(v.clone())),
                    None => extra.remove(k),
                };
            }
            if !extra.is_empty() {
                stored.insert("extraData".into(), Value::Object(extra));
            }
        }
    }
    ident
}

fn timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A customer as the v2 API shows it (seed 003). `id` (the uuid again) is present in list items
/// only, where the seed shows it.
#[derive(Debug, Serialize)]
pub struct CustomerJson {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub uuid: String,
    pub merchant_customer_id: Option<String>,
    pub description: Option<String>,
    pub email: Option<String>,
    pub name: Option<String>,
    pub phone: Option<String>,
    pub metadata: Value,
    pub zip_code: Option<String>,
    pub city: Option<String>,
    pub address: Option<String>,
    pub country: Option<String>,
    pub deleted: bool,
    pub created_at: String,
    pub updated_at: String,
    pub deleted_at: Option<String>,
}

/// The v2 view of a profile. A customer created without `merchant_customer_id` has its uuid as
/// customerIdentification, and shows `merchant_customer_id: null`.
pub fn customer_json(p: &Profile) -> CustomerJson {
    let stored = stored_customer(p);
    let deleted = p.deleted_at.is_some();
    let metadata = match stored.get("extraData") {
        Some(Value::Object(m)) if !deleted => Value::Object(m.clone()),
        _ => Value::Object(Map::new()),
    };
    CustomerJson {
        status: "approved",
        id: None,
        uuid: p.uuid.clone(),
        merchant_customer_id: (!deleted && p.customer_identification != p.uuid)
            .then(|| p.customer_identification.clone()),
        description: text(&stored, "description"),
        email: text(&stored, "email"),
        name: full_name(&stored),
        phone: text(&stored, "billingPhone"),
        metadata,
        zip_code: text(&stored, "billingPostcode"),
        city: text(&stored, "billingCity"),
        address: text(&stored, "billingAddress1"),
        country: text(&stored, "billingCountry"),
        deleted,
        created_at: timestamp(p.created_at),
        updated_at: timestamp(p.updated_at),
        deleted_at: p.deleted_at.map(timestamp),
    }
}

fn to_value<T: Serialize>(v: &T) -> Result<Value, MonriError> {
    serde_json::to_value(v).map_err(|e| MonriError::from(anyhow::Error::from(e)))
}

/// The stable payment-method id of an instrument: `hex(HMAC-SHA256(mac_key, instrument id))`,
/// 64 hex digits (domain-separated from the other keyed hashes).
pub fn payment_method_id(keyring: &Keyring, instrument_id: &str) -> Result<String, MonriError> {
    Ok(vault::fingerprint(
        keyring.mac_key().map_err(ServiceError::from)?,
        &format!("monri-payment-method:{instrument_id}"),
    ))
}

/// The last day of the expiry month.
pub fn expiration_date(month: i32, year: i32) -> Option<NaiveDate> {
    crate::vault::events::last_day_of(month, year)
}

/// A payment method (seed 003) from an instrument's masked columns.
pub fn payment_method_json(
    keyring: &Keyring,
    i: &Instrument,
    customer_uuid: &str,
    today: NaiveDate,
) -> Result<Value, MonriError> {
    let id = payment_method_id(keyring, &i.id)?;
    let stars = if i.brand.as_deref() == Some("amex") {
        5
    } else {
        6
    };
    let masked_pan = format!(
        "{}{}{}",
        i.first_six.as_deref().unwrap_or(""),
        "*".repeat(stars),
        i.last_four.as_deref().unwrap_or("")
    );
    let exp = match (i.exp_month, i.exp_year) {
        (Some(m), Some(y)) => expiration_date(m, y),
        _ => None,
    };
    Ok(json!({
        "status": "approved",
        "id": id,
        "masked_pan": masked_pan,
        "expiration_date": exp.map(|d| d.format("%Y-%m-%d").to_string()),
        "keep_until": exp.map(|d| format!("{}T23:59:59Z", d.format("%Y-%m-%d"))),
        "created_at": timestamp(i.created_at),
        "updated_at": timestamp(i.updated_at),
        "customer_uuid": customer_uuid,
        "token": id,
        "expired": crate::vault::events::is_expired(i, today),
    }))
}

// ---------- operations ----------

/// The connector's effective container, or 400.
fn container_of(conn: &mut DbConnection, k: &Connector) -> Result<Container, MonriError> {
    connectors::effective(conn, k)?.container.ok_or_else(|| {
        MonriError::invalid("No customer profile container is assigned to this connector.")
    })
}

/// A path `:uuid` worth looking up (anything else is simply not found).
fn is_uuid_shape(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_hexdigit(),
        })
}

fn duplicate() -> MonriError {
    MonriError::invalid("merchant_customer_id: a customer with this id already exists")
}

fn approved(c: CustomerJson) -> Result<Answer, MonriError> {
    Ok((StatusCode::OK, to_value(&c)?))
}

/// `POST /v2/customers`.
pub fn create(conn: &mut DbConnection, k: &Connector, body: &[u8]) -> Result<Answer, MonriError> {
    let input = parse_customer(body)?;
    let c = container_of(conn, k)?;
    let uuid = profile::new_uuid();
    let mut stored = Map::new();
    let ident = apply(&mut stored, &input, &uuid).unwrap_or_else(|| uuid.clone());
    let at = now();
    let mut p = profiles::new_profile(&c.id, ident, stored, at);
    p.uuid = uuid;
    write_tx(conn, |tx| -> Result<(), MonriError> {
        // Serializes profile creation in the container (as the Transaction API does).
        profiles::lock(tx, &c.id)?;
        profiles::create(tx, &p).map_err(|e| match e {
            profiles::Refusal::Duplicate => duplicate(),
            profiles::Refusal::Db(e) => MonriError::from(e),
        })
    })?;
    approved(customer_json(&p))
}

/// `GET /v2/customers/:uuid` (a deleted customer answers its tombstone).
pub fn get(
    conn: &mut DbConnection,
    k: &Connector,
    reader: &Reader,
    uuid: &str,
) -> Result<Answer, MonriError> {
    if !is_uuid_shape(uuid) {
        return Err(MonriError::not_found());
    }
    let c = container_of(conn, k)?;
    let p = profiles::find_with_tombstone(conn, &c.id, uuid)?.ok_or_else(MonriError::not_found)?;
    reader.read(conn, Read::Monri, &p.profile_guid, "read the customer")?;
    approved(customer_json(&p))
}

/// `GET /v2/merchants/customers/:merchant_customer_id`.
pub fn get_by_merchant_id(
    conn: &mut DbConnection,
    k: &Connector,
    reader: &Reader,
    merchant_customer_id: &str,
) -> Result<Answer, MonriError> {
    let n = merchant_customer_id.chars().count();
    if n == 0 || n > 100 || merchant_customer_id.chars().any(char::is_control) {
        return Err(MonriError::not_found());
    }
    let c = container_of(conn, k)?;
    let p = profiles::find_in(conn, &c.id, Key::Identification(merchant_customer_id))?
        // A customer without merchant_customer_id is not found by its uuid here.
        .filter(|p| p.customer_identification != p.uuid)
        .ok_or_else(MonriError::not_found)?;
    reader.read(
        conn,
        Read::Monri,
        &p.profile_guid,
        "read the customer by merchant_customer_id",
    )?;
    approved(customer_json(&p))
}

/// `POST /v2/customers/:uuid`: only the fields sent change; `metadata` is merged key by key.
pub fn update(
    conn: &mut DbConnection,
    k: &Connector,
    uuid: &str,
    body: &[u8],
) -> Result<Answer, MonriError> {
    let input = parse_customer(body)?;
    if !is_uuid_shape(uuid) {
        return Err(MonriError::not_found());
    }
    let c = container_of(conn, k)?;
    let p = write_tx(conn, |tx| -> Result<Profile, MonriError> {
        // The row lock orders this update against concurrent writers of the same profile.
        if rows::lock_by_uuid(tx, &c.id, uuid)? == 0 {
            return Err(MonriError::not_found());
        }
        let mut p =
            profiles::find_with_tombstone(tx, &c.id, uuid)?.ok_or_else(MonriError::not_found)?;
        if p.deleted_at.is_some() {
            return Err(MonriError::not_found());
        }
        let mut stored = stored_customer(&p);
        let ident = apply(&mut stored, &input, &p.uuid);
        let customer = Value::Object(stored.clone()).to_string();
        let ident_changed = ident
            .as_ref()
            .is_some_and(|i| *i != p.customer_identification);
        if !ident_changed && customer == p.customer {
            return Ok(p);
        }
        if let Some(i) = ident.filter(|_| ident_changed) {
            if profile::find_by_identification(tx, &c.id, &i)?.is_some() {
                return Err(duplicate());
            }
            p.customer_identification = i;
        }
        p.customer = customer;
        p.email = profiles::email_of(&stored);
        p.updated_at = now();
        match profiles::rewrite_customer(tx, &p) {
            Err(e) if is_unique_violation(&e) => return Err(duplicate()),
            r => r?,
        };
        Ok(p)
    })?;
    approved(customer_json(&p))
}

/// `DELETE /v2/customers/:uuid`: erases the personal data and the instruments (with their
/// sealed card data) and keeps a tombstone. Deleting again answers the same.
pub fn delete(conn: &mut DbConnection, k: &Connector, uuid: &str) -> Result<Answer, MonriError> {
    if !is_uuid_shape(uuid) {
        return Err(MonriError::not_found());
    }
    let c = container_of(conn, k)?;
    let p = write_tx(conn, |tx| -> Result<Profile, MonriError> {
        // The container lock registrations take: none can add a card to the customer while it is
        // erased (PostgreSQL; SQLite serializes writers anyway).
        profiles::lock(tx, &c.id)?;
        if rows::lock_by_uuid(tx, &c.id, uuid)? == 0 {
            return Err(MonriError::not_found());
        }
        let p =
            profiles::find_with_tombstone(tx, &c.id, uuid)?.ok_or_else(MonriError::not_found)?;
        if p.deleted_at.is_none() {
            profiles::erase(tx, &p, now())?;
            audit::api_profile_deleted(
                tx,
                k,
                &c,
                format!("Monri API client (connector {})", k.api_key),
                &p.profile_guid,
                // No personal data in the log of an erasure: ids Coffer assigned only.
                format!(
                    "Erased customer {} from {} through the Monri Customers API; a tombstone is kept",
                    p.uuid, c.name
                ),
            )?;
        }
        Ok(p)
    })?;
    // Open payment sessions that would register into it forget its customer data.
    crate::payments::session_request::forget_customer(conn, &c.id, &p)?;
    crate::db::scrub_after_erasure(conn)?;
    Ok((
        StatusCode::OK,
        json!({ "status": "approved", "id": uuid, "deleted": true }),
    ))
}

/// `GET /v2/customers?limit=&offset=`: live customers, newest first.
pub fn list(
    conn: &mut DbConnection,
    k: &Connector,
    reader: &Reader,
    query: &str,
) -> Result<Answer, MonriError> {
    let (limit, offset) = parse_paging(query)?;
    let c = container_of(conn, k)?;
    let page = rows::page(conn, &c.id, limit, offset)?;
    reader.read_all(
        conn,
        Read::Monri,
        page.iter().map(|p| p.profile_guid.as_str()),
        "listed the customer",
    )?;
    let data: Vec<CustomerJson> = page
        .iter()
        .map(|p| {
            let mut j = customer_json(p);
            j.id = Some(p.uuid.clone());
            j
        })
        .collect();
    Ok((
        StatusCode::OK,
        json!({ "status": "approved", "data": to_value(&data)? }),
    ))
}

/// `GET /v2/customers/:uuid/payment-methods?limit=&offset=`: the customer's cards, newest
/// first, in one query.
pub fn payment_methods(
    conn: &mut DbConnection,
    keyring: &Keyring,
    k: &Connector,
    reader: &Reader,
    uuid: &str,
    query: &str,
) -> Result<Answer, MonriError> {
    let (limit, offset) = parse_paging(query)?;
    if !is_uuid_shape(uuid) {
        return Err(MonriError::not_found());
    }
    let c = container_of(conn, k)?;
    let p = profiles::find_with_tombstone(conn, &c.id, uuid)?.ok_or_else(MonriError::not_found)?;
    reader.read(
        conn,
        Read::Monri,
        &p.profile_guid,
        "listed the customer's payment methods",
    )?;
    let today = Utc::now().date_naive();
    let data: Vec<Value> = rows::cards_page(conn, &p.id, limit, offset)?
        .iter()
        .map(|i| payment_method_json(keyring, i, &p.uuid, today))
        .collect::<Result<_, _>>()?;
    Ok((
        StatusCode::OK,
        json!({ "status": "approved", "data": data }),
    ))
}

/// `GET /v2/payment-methods?limit=&offset=`: the cards of every live customer of the
/// connector's effective container, newest first, in one query; the items and the paging are
/// those of [`payment_methods`].
pub fn merchant_payment_methods(
    conn: &mut DbConnection,
    keyring: &Keyring,
    k: &Connector,
    reader: &Reader,
    query: &str,
) -> Result<Answer, MonriError> {
    let (limit, offset) = parse_paging(query)?;
    let c = container_of(conn, k)?;
    let today = Utc::now().date_naive();
    let page = rows::container_cards_page(conn, &c.id, limit, offset)?;
    reader.read_all(
        conn,
        Read::Monri,
        page.iter().map(|(_, _, guid)| guid.as_str()),
        "listed the merchant's payment methods",
    )?;
    let data: Vec<Value> = page
        .iter()
        .map(|(i, customer_uuid, _)| payment_method_json(keyring, i, customer_uuid, today))
        .collect::<Result<_, _>>()?;
    Ok((
        StatusCode::OK,
        json!({ "status": "approved", "data": data }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_follows_the_documented_concatenation() {
        let d = wp3_digest("key", "1593457122", "tok", "/v2/customers", b"{}");
        let mut h = Sha512::new();
        h.update(b"key1593457122tok/v2/customers{}");
        assert_eq!(d, hex::encode(h.finalize()));
        assert_eq!(d.len(), 128);
    }

    #[test]
    fn countries_are_the_assigned_codes() {
        assert_eq!(COUNTRIES.split(' ').count(), 250);
        assert!(is_country("BA") && is_country("HR") && is_country("XK"));
        assert!(!is_country("XX") && !is_country("ba") && !is_country("BAA"));
    }

    #[test]
    fn names_split_on_the_first_space() {
        assert_eq!(split_name("Test"), ("Test".into(), None));
        assert_eq!(
            split_name("Ana Marija Horvat"),
            ("Ana".into(), Some("Marija Horvat".into()))
        );
        assert_eq!(
            split_name("Ann  Smith"),
            ("Ann".into(), Some("Smith".into()))
        );
    }

    #[test]
    fn expiry_is_the_last_day_of_the_month() {
        assert_eq!(
            expiration_date(12, 2025),
            NaiveDate::from_ymd_opt(2025, 12, 31)
        );
        assert_eq!(
            expiration_date(2, 2028),
            NaiveDate::from_ymd_opt(2028, 2, 29)
        );
        assert_eq!(expiration_date(13, 2028), None);
    }

    #[test]
    fn paging_defaults_and_bounds() {
        assert_eq!(parse_paging("").expect("default"), (50, 0));
        assert_eq!(parse_paging("limit=100&offset=7").expect("ok"), (100, 7));
        for bad in [
            "limit=0",
            "limit=101",
            "limit=-1",
            "limit=abc",
            "offset=-5",
            "limit=",
            "limit=1&limit=2",
            "offset=1.5",
        ] {
            assert_eq!(
                parse_paging(bad).expect_err(bad).status,
                StatusCode::BAD_REQUEST
            );
        }
    }

    #[test]
    fn customer_bodies_are_validated_by_the_seed_lengths() {
        let err = |v: Value| {
            parse_customer(v.to_string().as_bytes())
                .expect_err("refused")
                .message
        };
        assert!(err(json!({ "name": "" })).contains("name"));
        assert!(err(json!({ "name": "x".repeat(51) })).contains("name"));
        assert!(err(json!({ "city": "ab" })).contains("city"));
        assert!(err(json!({ "zip_code": "1234567890" })).contains("zip_code"));
        assert!(err(json!({ "zip_code": 71000 })).contains("must be a string"));
        assert!(err(json!({ "country": "XX" })).contains("country"));
        assert!(err(json!({ "email": "nope" })).contains("email"));
        assert!(err(json!({ "merchant_customer_id": "x".repeat(101) })).contains("merchant"));
        assert!(err(json!({ "merchant_customer_id": "a\u{0}b" })).contains("control"));
        assert!(err(json!({ "metadata": { "k": 1 } })).contains("metadata.k"));
        assert!(err(json!({ "metadata": "x" })).contains("metadata"));
        assert!(err(json!({ "shoe_size": "44" })).contains("shoe_size"));
        let e = err(json!({ "city": "ab", "phone": "1".repeat(31) }));
        assert!(e.contains("city") && e.contains("phone"), "{e}");
        let ok = parse_customer(
            json!({ "country": "ba", "name": " Test ", "status": "approved", "metadata": { "a": null } })
                .to_string()
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(
            ok.fields,
            vec![
                ("name", Some("Test".into())),
                ("country", Some("BA".into()))
            ]
        );
        assert_eq!(
            ok.metadata,
            Some(MetadataChange::Merge(vec![("a".into(), None)]))
        );
    }

    #[test]
    fn apply_maps_fields_and_merges_metadata() {
        let mut stored = serde_json::from_value::<Map<String, Value>>(json!({
            "firstName": "Old", "lastName": "Name", "birthDate": "1970-01-01",
            "extraData": { "keep": "1", "drop": "2" }
        }))
        .expect("map");
        let input = parse_customer(
            json!({ "name": "New", "phone": "+387 33", "metadata": { "drop": null, "add": "3" } })
                .to_string()
                .as_bytes(),
        )
        .expect("valid");
        assert_eq!(apply(&mut stored, &input, "u"), None);
        assert_eq!(
            Value::Object(stored),
            json!({ "firstName": "New", "birthDate": "1970-01-01", "billingPhone": "+387 33",
                    "extraData": { "keep": "1", "add": "3" } })
        );
        let mut s2 = Map::new();
        let clear = parse_customer(br#"{"merchant_customer_id":null}"#).expect("valid");
        assert_eq!(apply(&mut s2, &clear, "the-uuid"), Some("the-uuid".into()));
    }
}
