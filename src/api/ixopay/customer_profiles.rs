//! IXOPAY Customer Profiles API v3 (spec section 1): getProfile, updateProfile, deleteProfile.
//!
//! A connector reads and writes only the profiles of its *effective* container
//! ([`crate::console::connectors::effective`]); a connector without one gets 1007 (invalid
//! configuration). A profile of any other container (another tenant's, or a guid learnt
//! elsewhere) is answered exactly like a profile that does not exist, so nothing leaks.
//!
//! Decisions where the spec leaves room (spec 1.3-1.5):
//! - **Not found.** getProfile answers HTTP 200 with the documented shape
//!   (`success:false, profileExists:false`, nulls, `paymentInstruments:[]`), which the PHP client
//!   reads as a GetProfileResponse. updateProfile and deleteProfile answer **HTTP 404** with the
//!   error body `{"success":false,"errorMessage":"Profile not found.","errorCode":1002}`:
//!   changing or deleting a missing profile is an error for the client (the PHP client throws a
//!   GeneralErrorException with code 1002), while asking whether a profile exists is not.
//! - **Omitted customerData fields are kept.** Fields present in `customerData` replace the
//!   stored value, absent fields keep theirs. An explicit `null` (or an empty string) clears an
//!   optional field. `extraData`, when present, replaces the whole stored object (no key-wise
//!   merge). `changedFields` lists, in the PHP CustomerData property order, the fields whose
//!   value actually changed, then `preferredInstrument` if the preferred instrument changed.
//!   A `_TYPE` key in `customerData` (a client echoing a getProfile answer) is ignored; any
//!   other unknown key is refused with 1002 rather than silently dropped. Stored keys this API
//!   does not know (written by other components) are kept untouched.
//! - **Identifiers.** Exactly one of `profileGuid` and `customerIdentification`; a `null`
//!   value counts as absent. The guid is matched exactly as given.
//! - **mandateDate** is not stored separately: a SEPA mandate is signed when the instrument is
//!   registered, so the instrument's creation date at midnight is reported (INFERRED).
//! - Every input error is 422 with errorCode 1002, checked before anything is written; writes
//!   run in one write transaction ([`crate::db::write_tx`]), so nothing is half-written.
//!
//! Card numbers and IBANs are never read here: answers use only the masked columns.

use actix_web::http::StatusCode;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::api::ixopay::error::ApiError;
use crate::audit;
use crate::audit::access::{self, Reader};
use crate::console::connectors;
use crate::db::{DbConnection, write_tx};
use crate::error::ServiceError;
use crate::gateway::errors::ErrorCode;
use crate::gateway::ids::{is_payment_token, is_profile_guid};
use crate::models::connector::Connector;
use crate::models::container::Container;
use crate::models::now;
use crate::models::profile::{self, Instrument, Profile};
use crate::vault::profiles::{self, Key};

/// The three operations of the API (the `{op}` path segment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Get,
    Update,
    Delete,
}

impl Op {
    pub fn parse(op: &str) -> Option<Op> {
        match op {
            "getProfile" => Some(Op::Get),
            "updateProfile" => Some(Op::Update),
            "deleteProfile" => Some(Op::Delete),
            _ => None,
        }
    }
}

/// Runs one call of the API for an authenticated connector and returns the HTTP status and
/// JSON body to answer.
pub fn handle(
    conn: &mut DbConnection,
    connector: &Connector,
    api_username: &str,
    reader: &Reader,
    op: &str,
    body: &[u8],
) -> Result<(StatusCode, Vec<u8>), ApiError> {
    let op = Op::parse(op).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequestData,
            "Unknown customer profiles operation: use getProfile, updateProfile or deleteProfile.",
        )
    })?;
    let obj = parse_object(body)?;
    match op {
        Op::Get => {
            let key = parse_key(&obj)?;
            let answer = get_profile(conn, connector, &key)?;
            if let Some(guid) = &answer.profile_guid {
                reader.read(conn, access::Kind::Get, guid, "getProfile")?;
            }
            Ok((StatusCode::OK, to_json(&answer)?))
        }
        Op::Update => {
            let req = parse_update(&obj)?;
            let answer = update_profile(conn, connector, &req)?;
            Ok((StatusCode::OK, to_json(&answer)?))
        }
        Op::Delete => {
            let key = parse_key(&obj)?;
            delete_profile(conn, connector, api_username, &key)?;
            Ok((
                StatusCode::OK,
                to_json(&serde_json::json!({ "success": true }))?,
            ))
        }
    }
}

// ---- requests ----

/// How the request names a profile (spec 1.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProfileKey {
    Guid(String),
    Identification(String),
}

/// A validated updateProfile request.
#[derive(Debug, Clone, PartialEq)]
pub struct UpdateRequest {
    pub key: ProfileKey,
    /// The customerData fields present in the request, in [`FIELDS`] order; `None` clears.
    pub changes: Vec<(&'static str, Option<Value>)>,
    pub preferred_instrument: Option<String>,
}

/// The customerData fields (spec 1.4): the keys every profile stores, owned by the vault.
use crate::vault::profiles::{CUSTOMER_FIELDS as FIELDS, FieldKind as Kind};

const EXTRA_MAX_KEYS: usize = 64;
const EXTRA_MAX_KEY_LEN: usize = 64;
const EXTRA_MAX_VALUE_LEN: usize = 8192;

fn parse_object(body: &[u8]) -> Result<Map<String, Value>, ApiError> {
    match crate::api::parse_json::<Value>(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::invalid("The request body must be a JSON object.")),
    }
}

fn optional_string<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("{name}: must be a string")),
    }
}

/// Exactly one of `profileGuid` and `customerIdentification` (spec 1.2).
pub fn parse_key(obj: &Map<String, Value>) -> Result<ProfileKey, ApiError> {
    let guid = optional_string(obj, "profileGuid").map_err(ApiError::invalid)?;
    let ident = optional_string(obj, "customerIdentification").map_err(ApiError::invalid)?;
    match (guid, ident) {
        (Some(_), Some(_)) => Err(ApiError::invalid(
            "Give either profileGuid or customerIdentification, not both.",
        )),
        (None, None) => Err(ApiError::invalid(
            "profileGuid or customerIdentification is required.",
        )),
        (Some(g), None) => {
            if is_profile_guid(g) {
                Ok(ProfileKey::Guid(g.to_string()))
            } else {
                Err(ApiError::invalid(
                    "profileGuid: must be 32 characters, CP- and six groups of four hex digits",
                ))
            }
        }
        (None, Some(i)) => {
            let n = i.chars().count();
            if n == 0 || n > 36 {
                Err(ApiError::invalid(
                    "customerIdentification: must be 1 to 36 characters",
                ))
            } else {
                Ok(ProfileKey::Identification(i.to_string()))
            }
        }
    }
}

fn too_long(name: &str, max: usize) -> String {
    format!("customerData.{name}: must be at most {max} characters")
}

/// A plausible email address: one `@`, something on both sides, a dot in the domain, no
/// whitespace or control characters. Deliverability is not this API's business.
pub fn is_email_shape(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && !domain.is_empty()
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Checks one customerData value; `Ok(None)` clears the field.
fn check_field(name: &str, kind: Kind, v: &Value) -> Result<Option<Value>, String> {
    if let Kind::Extra = kind {
        return check_extra(v);
    }
    let s = match v {
        Value::Null => return Ok(None),
        Value::String(s) => s.as_str(),
        _ => return Err(format!("customerData.{name}: must be a string")),
    };
    if s.is_empty() {
        return Ok(None);
    }
    let n = s.chars().count();
    match kind {
        Kind::Text(max) if n > max => return Err(too_long(name, max)),
        Kind::Email(max) if n > max => return Err(too_long(name, max)),
        Kind::Email(_) if !is_email_shape(s) => {
            return Err(format!("customerData.{name}: must be an email address"));
        }
        Kind::Date
            if s.len() != 10 || chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_err() =>
        {
            return Err(format!(
                "customerData.{name}: must be a full date, YYYY-MM-DD"
            ));
        }
        Kind::Gender if s != "M" && s != "F" => {
            return Err(format!("customerData.{name}: must be M or F"));
        }
        Kind::Country if !(s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase())) => {
            return Err(format!(
                "customerData.{name}: must be an ISO 3166-1 alpha-2 code (two upper-case letters)"
            ));
        }
        _ => {}
    }
    Ok(Some(Value::String(s.to_string())))
}

/// `extraData`: an object of strings (or PHP's `[]` for an empty one).
fn check_extra(v: &Value) -> Result<Option<Value>, String> {
    let m = match v {
        Value::Null => return Ok(None),
        Value::Array(a) if a.is_empty() => return Ok(None),
        Value::Object(m) => m,
        _ => return Err("customerData.extraData: must be an object of strings".into()),
    };
    if m.is_empty() {
        return Ok(None);
    }
    if m.len() > EXTRA_MAX_KEYS {
        return Err(format!(
            "customerData.extraData: at most {EXTRA_MAX_KEYS} keys"
        ));
    }
    for (k, val) in m {
        if k.is_empty() || k.chars().count() > EXTRA_MAX_KEY_LEN {
            return Err(format!(
                "customerData.extraData: keys must be 1 to {EXTRA_MAX_KEY_LEN} characters"
            ));
        }
        match val {
            Value::String(s) if s.chars().count() <= EXTRA_MAX_VALUE_LEN => {}
            Value::String(_) => {
                return Err(format!(
                    "customerData.extraData.{k}: must be at most {EXTRA_MAX_VALUE_LEN} characters"
                ));
            }
            _ => return Err(format!("customerData.extraData.{k}: must be a string")),
        }
    }
    Ok(Some(Value::Object(m.clone())))
}

/// Validates an updateProfile request completely; every problem is listed in one 1002 answer.
pub fn parse_update(obj: &Map<String, Value>) -> Result<UpdateRequest, ApiError> {
    let key = parse_key(obj)?;
    let mut errors: Vec<String> = vec![];
    let mut changes = vec![];
    match obj.get("customerData") {
        Some(Value::Object(cd)) => {
            for k in cd.keys() {
                if k != "_TYPE" && !FIELDS.iter().any(|(name, _)| name == k) {
                    let shown: String = k.chars().take(64).collect();
                    errors.push(format!("customerData: unknown field {shown:?}"));
                }
            }
            match cd.get("_TYPE") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "customerData" => {}
                Some(_) => errors.push("customerData._TYPE: must be \"customerData\"".into()),
            }
            for (name, kind) in FIELDS {
                let Some(v) = cd.get(name) else {
                    if name == "firstName" {
                        errors.push("customerData.firstName: is required".into());
                    }
                    continue;
                };
                match check_field(name, kind, v) {
                    Ok(None) if name == "firstName" => {
                        errors.push("customerData.firstName: is required".into());
                    }
                    Ok(value) => changes.push((name, value)),
                    Err(e) => errors.push(e),
                }
            }
        }
        None | Some(Value::Null) => errors.push("customerData: is required".into()),
        Some(_) => errors.push("customerData: must be an object".into()),
    }
    let preferred_instrument = match optional_string(obj, "preferredInstrument") {
        Ok(Some(t)) if is_payment_token(t) => Some(t.to_string()),
        Ok(Some(_)) => {
            errors.push(
                "preferredInstrument: must be a paymentToken, pt:: and 20 letters or digits".into(),
            );
            None
        }
        Ok(None) => None,
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if errors.is_empty() {
        Ok(UpdateRequest {
            key,
            changes,
            preferred_instrument,
        })
    } else {
        Err(ApiError::invalid(errors.join("; ")))
    }
}

// ---- answers ----

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GetProfileAnswer {
    pub success: bool,
    pub profile_exists: bool,
    pub profile_guid: Option<String>,
    pub customer_identification: Option<String>,
    pub preferred_method: Option<&'static str>,
    pub customer: Option<Value>,
    pub payment_instruments: Vec<Value>,
}

impl GetProfileAnswer {
    /// The documented "Profile not found" answer (spec 1.3).
    pub fn not_found() -> Self {
        GetProfileAnswer {
            success: false,
            profile_exists: false,
            profile_guid: None,
            customer_identification: None,
            preferred_method: None,
            customer: None,
            payment_instruments: vec![],
        }
    }
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UpdateProfileAnswer {
    pub success: bool,
    pub profile_guid: String,
    pub customer_identification: String,
    pub customer: Value,
    pub changed_fields: Vec<&'static str>,
}

fn to_json<T: Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    crate::api::to_json(v)
}

fn profile_not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::InvalidRequestData,
        "Profile not found.",
    )
}

fn db_error(e: diesel::result::Error) -> ApiError {
    ApiError::from(ServiceError::Db(e))
}

/// The stored customer JSON as an object (a row that is somehow not an object reads as empty).
fn stored_customer(p: &Profile) -> Map<String, Value> {
    match serde_json::from_str::<Value>(&p.customer) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// A stored value as the API shows it: absent, null and empty strings are null.
fn shown(stored: &Map<String, Value>, name: &str) -> Value {
    match stored.get(name) {
        None | Some(Value::Null) => Value::Null,
        Some(Value::String(s)) if s.is_empty() => Value::Null,
        Some(v) => v.clone(),
    }
}

/// The `customerData` object of the answers: `_TYPE` and every field, unknown keys left out.
pub fn customer_data(stored: &Map<String, Value>) -> Value {
    let mut out = Map::new();
    out.insert("_TYPE".into(), Value::String("customerData".into()));
    for (name, kind) in FIELDS {
        let v = match kind {
            Kind::Extra => match stored.get(name) {
                Some(Value::Object(m)) => Value::Object(m.clone()),
                _ => Value::Object(Map::new()),
            },
            _ => shown(stored, name),
        };
        out.insert(name.into(), v);
    }
    Value::Object(out)
}

fn timestamp(t: NaiveDateTime) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// The payment method name of an instrument method (`preferredMethod`, spec 1.3: a payment
/// method name such as `Creditcard`, not the instrument type). Coffer stores cards and IBANs
/// only; any other method has no name to report.
fn method_name(method: &str) -> Option<&'static str> {
    match method {
        "card" => Some("Creditcard"),
        "iban" => Some("DirectDebit"),
        _ => None,
    }
}

/// One `paymentInstruments[]` item (spec 1.6), from the masked columns only.
pub fn instrument_json(i: &Instrument) -> Value {
    let payment_data = match i.method.as_str() {
        "card" => serde_json::json!({
            "_TYPE": "paymentData.card",
            "brand": i.brand,
            "cardHolder": i.card_holder,
            "expiryMonth": i.exp_month,
            "expiryYear": i.exp_year,
            "firstSixDigits": i.first_six,
            "lastFourDigits": i.last_four,
        }),
        "iban" => serde_json::json!({
            "_TYPE": "paymentData.iban",
            "iban": i.iban_masked,
            "bic": i.bic,
            "mandateId": i.mandate_id,
            "mandateDate": i
                .mandate_id
                .as_ref()
                .map(|_| format!("{} 00:00:00", i.created_at.format("%Y-%m-%d"))),
        }),
        other => serde_json::json!({ "_TYPE": format!("paymentData.{other}") }),
    };
    serde_json::json!({
        "_TYPE": "paymentInstrument",
        "createdAt": timestamp(i.created_at),
        "method": i.method,
        "paymentData": payment_data,
        "paymentToken": i.payment_token,
        "isPreferred": i.is_preferred,
        // A Coffer extension (IXOPAY has no such field): past its expiry month, or marked
        // expired by the expiry scan (`vault::events::is_expired`).
        "expired": crate::vault::events::is_expired(i, chrono::Utc::now().date_naive()),
        "associatedTokenType": null,
        "networkTokenStatus": null,
    })
}

// ---- operations ----

/// The connector's effective container, or 1007.
pub fn container_of(conn: &mut DbConnection, connector: &Connector) -> Result<Container, ApiError> {
    connectors::effective(conn, connector)?
        .container
        .ok_or_else(|| {
            ApiError::configuration("No customer profile container is assigned to this connector.")
        })
}

/// The profile named by `key` inside `container_id`, or `None`: a profile of another container
/// is not found.
pub fn find_in(
    conn: &mut DbConnection,
    container_id: &str,
    key: &ProfileKey,
) -> QueryResult<Option<Profile>> {
    let key = match key {
        ProfileKey::Guid(g) => Key::Guid(g),
        ProfileKey::Identification(i) => Key::Identification(i),
    };
    profiles::find_in(conn, container_id, key)
}

pub fn get_profile(
    conn: &mut DbConnection,
    connector: &Connector,
    key: &ProfileKey,
) -> Result<GetProfileAnswer, ApiError> {
    let c = container_of(conn, connector)?;
    let key = match key {
        ProfileKey::Guid(g) => Key::Guid(g),
        ProfileKey::Identification(i) => Key::Identification(i),
    };
    let Some((p, instruments)) =
        profiles::find_with_instruments(conn, &c.id, key).map_err(db_error)?
    else {
        return Ok(GetProfileAnswer::not_found());
    };
    let preferred_method = instruments
        .iter()
        .find(|i| i.is_preferred)
        .and_then(|i| method_name(&i.method));
    Ok(GetProfileAnswer {
        success: true,
        profile_exists: true,
        customer: Some(customer_data(&stored_customer(&p))),
        profile_guid: Some(p.profile_guid),
        customer_identification: Some(p.customer_identification),
        preferred_method,
        payment_instruments: instruments.iter().map(instrument_json).collect(),
    })
}

/// Errors inside a write transaction: an answer to give, or a database error (rolled back).
enum TxError {
    Api(ApiError),
    Db(diesel::result::Error),
}

impl From<diesel::result::Error> for TxError {
    fn from(e: diesel::result::Error) -> Self {
        TxError::Db(e)
    }
}

impl From<TxError> for ApiError {
    fn from(e: TxError) -> Self {
        match e {
            TxError::Api(a) => a,
            TxError::Db(d) => db_error(d),
        }
    }
}

/// Applies the request's changes to the stored customer object; returns the changed fields.
pub fn merge(
    stored: &mut Map<String, Value>,
    changes: &[(&'static str, Option<Value>)],
) -> Vec<&'static str> {
    let mut changed = vec![];
    for (name, value) in changes {
        let before = shown(stored, name);
        let before = match before {
            Value::Object(m) if m.is_empty() => Value::Null,
            other => other,
        };
        let after = value.clone().unwrap_or(Value::Null);
        if before != after {
            changed.push(*name);
        }
        match value {
            Some(v) => stored.insert((*name).to_string(), v.clone()),
            None => stored.remove(*name),
        };
    }
    changed
}

/// How many times an update is retried when a concurrent update of the same profile won the
/// race (PostgreSQL only: SQLite's `BEGIN IMMEDIATE` serialises writers).
const UPDATE_ATTEMPTS: usize = 3;

pub fn update_profile(
    conn: &mut DbConnection,
    connector: &Connector,
    req: &UpdateRequest,
) -> Result<UpdateProfileAnswer, ApiError> {
    let c = container_of(conn, connector)?;
    for _ in 0..UPDATE_ATTEMPTS {
        let outcome = write_tx(conn, |tx| -> Result<Option<UpdateProfileAnswer>, TxError> {
            if req.preferred_instrument.is_some() {
                // Before the instruments are read: registrations and deregistrations of this
                // profile lock it too, so the new preferred instrument is chosen on current rows.
                profiles::lock(tx, &c.id)?;
            }
            let p =
                find_in(tx, &c.id, &req.key)?.ok_or_else(|| TxError::Api(profile_not_found()))?;
            // One query for all instruments of the profile.
            let instruments: Vec<Instrument> = profile::instruments_of(tx, &p.id)?
                .into_iter()
                .map(|(i, _)| i)
                .collect();
            let target = match &req.preferred_instrument {
                Some(token) => Some(
                    instruments
                        .iter()
                        .find(|i| &i.payment_token == token)
                        .ok_or_else(|| {
                            TxError::Api(ApiError::invalid(
                                "preferredInstrument: not a payment instrument of this profile",
                            ))
                        })?,
                ),
                None => None,
            };
            let mut stored = stored_customer(&p);
            let mut changed = merge(&mut stored, &req.changes);
            let at = now();
            if !changed.is_empty() {
                let text = Value::Object(stored.clone()).to_string();
                // Compare-and-set on the text read above: a concurrent update of the same
                // profile (possible on PostgreSQL) makes this match nothing, and we retry.
                let email = profiles::email_of(&stored);
                let n = profiles::replace_customer_if_unchanged(tx, &p, &text, email, at)?;
                if !n {
                    return Ok(None);
                }
            }
            if let Some(t) = target {
                let others_preferred = instruments.iter().any(|i| i.is_preferred && i.id != t.id);
                if !t.is_preferred || others_preferred {
                    // Exactly one preferred instrument per profile afterwards.
                    profiles::make_preferred(tx, &p.id, &t.id)?;
                    if changed.is_empty() {
                        profiles::touch(tx, &p.id, at)?;
                    }
                    changed.push("preferredInstrument");
                }
            }
            Ok(Some(UpdateProfileAnswer {
                success: true,
                profile_guid: p.profile_guid,
                customer_identification: p.customer_identification,
                customer: customer_data(&stored),
                changed_fields: changed,
            }))
        })?;
        if let Some(answer) = outcome {
            return Ok(answer);
        }
    }
    Err(ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::LogicalError,
        "The profile is being changed by another request; retry.",
    ))
}

/// Deletes the profile with its instruments (and so their vault records) and keeps the
/// container's count, in one write transaction, with an audit entry naming the API user.
pub fn delete_profile(
    conn: &mut DbConnection,
    connector: &Connector,
    api_username: &str,
    key: &ProfileKey,
) -> Result<(), ApiError> {
    let c = container_of(conn, connector)?;
    let p = write_tx(conn, |tx| -> Result<Profile, TxError> {
        // Registrations into this container take the same lock: a registration never adds an
        // instrument to a profile that is being deleted (a foreign-key failure on PostgreSQL).
        profiles::lock(tx, &c.id)?;
        let p = find_in(tx, &c.id, key)?.ok_or_else(|| TxError::Api(profile_not_found()))?;
        let instruments = profile::instruments_of(tx, &p.id)?.len();
        if !profiles::delete(tx, &c.id, &p.id)? {
            return Err(TxError::Api(profile_not_found()));
        }
        audit::api_profile_deleted(
            tx,
            connector,
            &c,
            format!("API user {api_username} (connector {})", connector.api_key),
            &p.profile_guid,
            // Ids Coffer assigned only: the merchant's customer id goes with the profile.
            format!(
                "Deleted customer profile {} from {} with {} instrument(s) through the Customer Profiles API",
                p.profile_guid, c.name, instruments
            ),
        )
        .map_err(|e| TxError::Api(ApiError::from(e)))?;
        Ok(p)
    })?;
    // Open payment sessions that would register into it forget its customer data.
    crate::payments::session_request::forget_customer(conn, &c.id, &p)?;
    crate::db::scrub_after_erasure(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => panic!("not an object"),
        }
    }

    fn err(v: Value) -> String {
        parse_update(&obj(v))
            .expect_err("should be refused")
            .message
    }

    const GUID: &str = "CP-91ec-509a-3899-4f4f-a4ad-67fb";

    #[test]
    fn exactly_one_identifier_is_required() {
        assert_eq!(
            parse_key(&obj(json!({ "profileGuid": GUID }))).expect("guid"),
            ProfileKey::Guid(GUID.into())
        );
        assert_eq!(
            parse_key(&obj(
                json!({ "customerIdentification": "c-1", "profileGuid": null })
            ))
            .expect("ident"),
            ProfileKey::Identification("c-1".into())
        );
        for bad in [
            json!({}),
            json!({ "profileGuid": GUID, "customerIdentification": "c-1" }),
            json!({ "profileGuid": "CP-91ec-509a-3899-4f4f-a4ad-67f" }),
            json!({ "profileGuid": "XX-91ec-509a-3899-4f4f-a4ad-67fb" }),
            json!({ "profileGuid": 5 }),
            json!({ "customerIdentification": "" }),
            json!({ "customerIdentification": "x".repeat(37) }),
        ] {
            let e = parse_key(&obj(bad.clone())).expect_err("refused");
            assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
            assert_eq!(e.code, ErrorCode::InvalidRequestData);
        }
        assert!(parse_key(&obj(json!({ "customerIdentification": "x".repeat(36) }))).is_ok());
    }

    #[test]
    fn customer_data_is_validated_field_by_field() {
        let ok = parse_update(&obj(json!({
            "profileGuid": GUID,
            "customerData": {
                "_TYPE": "customerData",
                "firstName": "Ann", "lastName": null, "birthDate": "1970-01-31",
                "gender": "F", "billingCountry": "AT", "email": "Ann@Example.com",
                "nationalId": "x".repeat(14), "extraData": []
            },
            "preferredInstrument": "pt::b639e636df17af782602"
        })))
        .expect("valid");
        assert_eq!(
            ok.changes,
            vec![
                ("firstName", Some(json!("Ann"))),
                ("lastName", None),
                ("birthDate", Some(json!("1970-01-31"))),
                ("gender", Some(json!("F"))),
                ("billingCountry", Some(json!("AT"))),
                ("email", Some(json!("Ann@Example.com"))),
                ("nationalId", Some(json!("x".repeat(14)))),
                ("extraData", None),
            ]
        );
        assert_eq!(
            ok.preferred_instrument.as_deref(),
            Some("pt::b639e636df17af782602")
        );
        let base = |cd: Value| json!({ "profileGuid": GUID, "customerData": cd });
        assert!(err(base(json!({ "lastName": "S" }))).contains("firstName: is required"));
        assert!(err(base(json!({ "firstName": "" }))).contains("firstName: is required"));
        assert!(err(base(json!({ "firstName": 5 }))).contains("firstName: must be a string"));
        assert!(
            err(base(
                json!({ "firstName": "A", "nationalId": "x".repeat(15) })
            ))
            .contains("nationalId: must be at most 14")
        );
        assert!(err(base(json!({ "firstName": "A", "gender": "X" }))).contains("gender"));
        assert!(
            err(base(json!({ "firstName": "A", "birthDate": "1970-02-30" }))).contains("birthDate")
        );
        assert!(
            err(base(json!({ "firstName": "A", "birthDate": "1970-1-3" }))).contains("birthDate")
        );
        assert!(
            err(base(json!({ "firstName": "A", "billingCountry": "at" })))
                .contains("billingCountry")
        );
        assert!(err(base(json!({ "firstName": "A", "email": "no-at-sign" }))).contains("email"));
        assert!(
            err(base(
                json!({ "firstName": "A", "billingPostcode": "1".repeat(17) })
            ))
            .contains("billingPostcode")
        );
        assert!(
            err(base(
                json!({ "firstName": "A", "billingState": "s".repeat(31) })
            ))
            .contains("billingState")
        );
        assert!(
            err(base(
                json!({ "firstName": "A", "billingPhone": "1".repeat(21) })
            ))
            .contains("billingPhone")
        );
        assert!(err(base(json!({ "firstName": "A", "shoeSize": "44" }))).contains("shoeSize"));
        assert!(
            err(base(json!({ "firstName": "A", "extraData": { "k": 1 } })))
                .contains("extraData.k: must be a string")
        );
        let many: Map<String, Value> = (0..65).map(|i| (format!("k{i}"), json!("v"))).collect();
        assert!(
            err(base(json!({ "firstName": "A", "extraData": many }))).contains("at most 64 keys")
        );
        assert!(
            err(base(
                json!({ "firstName": "A", "extraData": { "k".repeat(65): "v" } })
            ))
            .contains("keys must be")
        );
        assert!(
            err(base(
                json!({ "firstName": "A", "extraData": { "k": "v".repeat(8193) } })
            ))
            .contains("at most 8192")
        );
        assert!(
            parse_update(&obj(base(
                json!({ "firstName": "A", "extraData": { "k": "v".repeat(8192) } })
            )))
            .is_ok()
        );
        assert!(err(json!({ "profileGuid": GUID })).contains("customerData: is required"));
        assert!(err(json!({ "profileGuid": GUID, "customerData": "x" })).contains("object"));
        assert!(
            err(
                json!({ "profileGuid": GUID, "customerData": { "firstName": "A" },
                "preferredInstrument": "pt::short" })
            )
            .contains("preferredInstrument")
        );
        // Several problems are reported together.
        let e = err(base(
            json!({ "firstName": "A", "gender": "X", "nationalId": "1".repeat(15) }),
        ));
        assert!(e.contains("gender") && e.contains("nationalId"), "{e}");
    }

    #[test]
    fn lengths_count_characters_not_bytes() {
        let name = "é".repeat(50);
        assert!(
            parse_update(&obj(
                json!({ "profileGuid": GUID, "customerData": { "firstName": name } })
            ))
            .is_ok()
        );
    }

    #[test]
    fn merge_keeps_absent_fields_and_reports_real_changes() {
        let mut stored = obj(json!({
            "firstName": "Ann", "lastName": "Smith", "company": "Acme", "legacy": "kept"
        }));
        let changed = merge(
            &mut stored,
            &[
                ("firstName", Some(json!("Ann"))),
                ("lastName", Some(json!("Jones"))),
                ("company", None),
                ("billingCity", None),
                ("extraData", None),
            ],
        );
        assert_eq!(changed, vec!["lastName", "company"]);
        assert_eq!(
            Value::Object(stored.clone()),
            json!({ "firstName": "Ann", "lastName": "Jones", "legacy": "kept" })
        );
        let shown = customer_data(&stored);
        assert_eq!(shown["_TYPE"], "customerData");
        assert_eq!(shown["company"], Value::Null);
        assert_eq!(shown["extraData"], json!({}));
        assert!(shown.get("legacy").is_none(), "unknown keys are not shown");
    }

    #[test]
    fn email_shapes() {
        assert!(is_email_shape("a@b.co"));
        assert!(!is_email_shape("a@b"));
        assert!(!is_email_shape("@b.co"));
        assert!(!is_email_shape("a b@c.de"));
        assert!(!is_email_shape("a@b@c.de"));
    }
}
