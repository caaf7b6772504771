//! The Transaction API v3: debit, preauthorize, capture, void, register, deregister, refund,
//! against the processor simulator, registering customer profiles as the seeds describe.
//! Each request is one write transaction: the payment, the profile, the instrument and the
//! vault record commit together or not at all.

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::api::ixopay::error::ApiError;
use crate::console::connectors::{effective, payment_method};
use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::error::ServiceError;
use crate::gateway::amount;
use crate::gateway::card::{self, CardData};
use crate::gateway::errors::ErrorCode;
use crate::gateway::ids;
use crate::gateway::signature::BodyHash;
use crate::gateway::simulator::{self, Outcome};
use crate::gateway::vault;
use crate::models::connector::{self, Connector};
use crate::models::container;
use crate::models::now;
use crate::models::profile::{self, Instrument, Profile};
use crate::models::transaction::{self as txm, Transaction};
use crate::vault::keyring::Keyring;

pub const TYPES: [&str; 7] = [
    "debit",
    "preauthorize",
    "capture",
    "void",
    "register",
    "deregister",
    "refund",
];

// ---------- request ----------

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TxRequest {
    pub merchant_transaction_id: Option<String>,
    pub additional_id1: Option<String>,
    pub additional_id2: Option<String>,
    pub extra_data: Option<BTreeMap<String, String>>,
    pub merchant_meta_data: Option<String>,
    pub reference_uuid: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub error_url: Option<String>,
    pub callback_url: Option<String>,
    pub transaction_token: Option<String>,
    pub description: Option<String>,
    pub with_register: Option<bool>,
    pub transaction_indicator: Option<String>,
    pub customer: Option<CustomerIn>,
    pub customer_profile_data: Option<ProfileDataIn>,
    pub three_d_secure_data: Option<Map<String, Value>>,
    pub language: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct CustomerIn {
    pub identification: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub billing_address1: Option<String>,
    pub billing_address2: Option<String>,
    pub billing_city: Option<String>,
    pub billing_postcode: Option<String>,
    pub billing_state: Option<String>,
    pub billing_country: Option<String>,
    pub billing_phone: Option<String>,
    pub shipping_first_name: Option<String>,
    pub shipping_last_name: Option<String>,
    pub shipping_company: Option<String>,
    pub shipping_address1: Option<String>,
    pub shipping_address2: Option<String>,
    pub shipping_city: Option<String>,
    pub shipping_postcode: Option<String>,
    pub shipping_state: Option<String>,
    pub shipping_country: Option<String>,
    pub shipping_phone: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub ip_address: Option<String>,
    pub national_id: Option<String>,
    pub extra_data: Option<BTreeMap<String, String>>,
    pub payment_data: Option<PaymentDataIn>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDataIn {
    pub iban_data: Option<IbanDataIn>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct IbanDataIn {
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub mandate_id: Option<String>,
    pub mandate_date: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDataIn {
    pub profile_guid: Option<String>,
    pub customer_identification: Option<String>,
    pub mark_as_preferred: Option<bool>,
}

struct Check(Vec<String>);

impl Check {
    fn len(&mut self, field: &str, v: &Option<String>, min: usize, max: usize) {
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min || n > max {
                self.0.push(if min > 0 {
                    format!("{field}: must be {min} to {max} characters")
                } else {
                    format!("{field}: at most {max} characters")
                });
            }
        }
    }
    fn map(&mut self, field: &str, v: &Option<BTreeMap<String, String>>) {
        if let Some(m) = v {
            if m.len() > 64 {
                self.0.push(format!("{field}: at most 64 keys"));
            }
            if m.iter()
                .any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 8192)
            {
                self.0.push(format!(
                    "{field}: keys at most 64 and values at most 8192 characters"
                ));
            }
        }
    }
    fn pattern(&mut self, field: &str, v: &Option<String>, ok: impl Fn(&str) -> bool, what: &str) {
        if let Some(s) = v
            && !ok(s)
        {
            self.0.push(format!("{field}: {what}"));
        }
    }
}

fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// The rule for successUrl, cancelUrl, errorUrl and callbackUrl: http(s), at most 4096 bytes,
/// no whitespace and no control character (C0, DEL, C1): a URL the browser is sent to in a
/// `Location` header must be one that header can carry.
pub(crate) fn is_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 4096
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Field rules of the Transaction API (spec 2.2). Answers every problem at once.
fn validate(kind: &str, r: &TxRequest) -> Result<(), ApiError> {
    let mut c = Check(vec![]);
    if r.merchant_transaction_id
        .as_deref()
        .is_none_or(str::is_empty)
    {
        c.0.push("merchantTransactionId: is required".into());
    }
    c.len("merchantTransactionId", &r.merchant_transaction_id, 1, 50);
    c.len("additionalId1", &r.additional_id1, 1, 50);
    c.len("additionalId2", &r.additional_id2, 1, 50);
    c.map("extraData", &r.extra_data);
    c.len("merchantMetaData", &r.merchant_meta_data, 0, 255);
    c.len("referenceUuid", &r.reference_uuid, 1, 50);
    c.len("transactionToken", &r.transaction_token, 1, 8192);
    c.len("description", &r.description, 0, 255);
    for (f, v) in [
        ("successUrl", &r.success_url),
        ("cancelUrl", &r.cancel_url),
        ("errorUrl", &r.error_url),
        ("callbackUrl", &r.callback_url),
    ] {
        c.pattern(
            f,
            v,
            is_url,
            "must be an http(s) URL of at most 4096 characters, without spaces or control characters",
        );
    }
    c.pattern(
        "transactionIndicator",
        &r.transaction_indicator,
        |s| {
            [
                "SINGLE",
                "INITIAL",
                "RECURRING",
                "FIRST-CARDONFILE",
                "CARDONFILE",
                "CARDONFILE-MERCHANT-INITIATED",
                "MOTO",
            ]
            .contains(&s)
        },
        "unknown value",
    );
    let needs_amount = matches!(kind, "debit" | "preauthorize" | "capture" | "refund");
    if needs_amount && r.amount.is_none() {
        c.0.push("amount: is required".into());
    }
    if (needs_amount || r.amount.is_some()) && r.currency.is_none() {
        c.0.push("currency: is required".into());
    }
    if let (Some(a), Some(cur)) = (&r.amount, &r.currency) {
        match amount::parse_amount(a, cur) {
            Ok(v) if v <= 0 && needs_amount => c.0.push("amount: must be greater than zero".into()),
            Ok(_) => {}
            Err(e) => c.0.push(format!("amount/currency: {e}")),
        }
    }
    if matches!(kind, "capture" | "void" | "refund") && r.reference_uuid.is_none() {
        c.0.push("referenceUuid: is required".into());
    }
    if let Some(cu) = &r.customer {
        c.len("customer.identification", &cu.identification, 0, 36);
        for (f, v) in [
            ("customer.firstName", &cu.first_name),
            ("customer.lastName", &cu.last_name),
            ("customer.billingAddress1", &cu.billing_address1),
            ("customer.billingAddress2", &cu.billing_address2),
            ("customer.billingCity", &cu.billing_city),
            ("customer.shippingFirstName", &cu.shipping_first_name),
            ("customer.shippingLastName", &cu.shipping_last_name),
            ("customer.shippingCompany", &cu.shipping_company),
            ("customer.shippingAddress1", &cu.shipping_address1),
            ("customer.shippingAddress2", &cu.shipping_address2),
            ("customer.shippingCity", &cu.shipping_city),
            ("customer.company", &cu.company),
            ("customer.ipAddress", &cu.ip_address),
        ] {
            c.len(f, v, 0, 50);
        }
        c.len("customer.billingPostcode", &cu.billing_postcode, 0, 16);
        c.len("customer.shippingPostcode", &cu.shipping_postcode, 0, 16);
        c.len("customer.billingState", &cu.billing_state, 0, 30);
        c.len("customer.shippingState", &cu.shipping_state, 0, 30);
        c.len("customer.billingPhone", &cu.billing_phone, 0, 20);
        c.len("customer.shippingPhone", &cu.shipping_phone, 0, 20);
        c.len("customer.email", &cu.email, 0, 255);
        c.len("customer.nationalId", &cu.national_id, 0, 20);
        c.pattern(
            "customer.birthDate",
            &cu.birth_date,
            is_date,
            "must be YYYY-MM-DD",
        );
        c.pattern(
            "customer.gender",
            &cu.gender,
            |s| s == "M" || s == "F",
            "must be M or F",
        );
        let country = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
        c.pattern(
            "customer.billingCountry",
            &cu.billing_country,
            country,
            "must be two upper-case letters",
        );
        c.pattern(
            "customer.shippingCountry",
            &cu.shipping_country,
            country,
            "must be two upper-case letters",
        );
        c.pattern(
            "customer.email",
            &cu.email,
            |s| s.contains('@') && !s.contains(char::is_whitespace),
            "is not an email address",
        );
        c.map("customer.extraData", &cu.extra_data);
        if let Some(ib) = cu.payment_data.as_ref().and_then(|p| p.iban_data.as_ref()) {
            c.len("customer.paymentData.ibanData.iban", &ib.iban, 1, 34);
            c.len("customer.paymentData.ibanData.bic", &ib.bic, 0, 11);
            c.len(
                "customer.paymentData.ibanData.mandateId",
                &ib.mandate_id,
                0,
                50,
            );
        }
    }
    if let Some(p) = &r.customer_profile_data {
        c.len("customerProfileData.profileGuid", &p.profile_guid, 1, 36);
        c.len(
            "customerProfileData.customerIdentification",
            &p.customer_identification,
            1,
            36,
        );
        if p.profile_guid.is_none() && p.customer_identification.is_none() {
            c.0.push("customerProfileData: either profileGuid or customerIdentification must be provided".into());
        }
    }
    if let Some(t) = r
        .three_d_secure_data
        .as_ref()
        .and_then(|m| m.get("3dsecure"))
        && !matches!(t.as_str(), Some("OFF" | "OPTIONAL" | "MANDATORY"))
    {
        c.0.push("threeDSecureData.3dsecure: must be OFF, OPTIONAL or MANDATORY".into());
    }
    if c.0.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(c.0.join("; ")))
    }
}

// ---------- payment instrument resolution ----------

/// What is charged: a card (with the number, for the simulator) or an IBAN.
#[derive(Clone)]
pub(crate) enum Means {
    Card {
        card: CardData,
        holder: Option<String>,
        fingerprint: String,
    },
    Iban {
        iban: String,
        bic: Option<String>,
        mandate_id: Option<String>,
        fingerprint: String,
    },
}

impl std::fmt::Debug for Means {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Means::Card { card, .. } => write!(f, "Card({card:?})"),
            Means::Iban { iban, .. } => write!(f, "Iban({})", simulator::mask_iban(iban)),
        }
    }
}

impl Means {
    /// A card typed into the hosted payment page (already validated).
    pub(crate) fn new_card(keyring: &Keyring, card: CardData, holder: Option<String>) -> Means {
        Means::Card {
            fingerprint: fingerprint(keyring, &card.pan),
            holder,
            card,
        }
    }
    /// The card's number, holder and expiry as JSON, to be sealed while a challenge is open.
    pub(crate) fn card_secret_json(&self) -> Option<Value> {
        match self {
            Means::Card { card, holder, .. } => Some(json!({
                "pan": card.pan, "holder": holder,
                "month": card.exp_month, "year": card.exp_year,
            })),
            Means::Iban { .. } => None,
        }
    }
    /// The inverse of [`Means::card_secret_json`].
    pub(crate) fn from_card_secret_json(keyring: &Keyring, v: &Value) -> Option<Means> {
        let pan = v.get("pan")?.as_str()?.to_string();
        let card = CardData {
            brand: card::brand(&pan)?,
            first_six: pan.get(..6)?.to_string(),
            last_four: pan.get(pan.len().checked_sub(4)?..)?.to_string(),
            exp_month: u32::try_from(v.get("month")?.as_u64()?).ok()?,
            exp_year: i32::try_from(v.get("year")?.as_i64()?).ok()?,
            pan,
        };
        let holder = v.get("holder").and_then(Value::as_str).map(str::to_string);
        Some(Means::new_card(keyring, card, holder))
    }
    /// The masked number shown on the issuer page, e.g. `400000******3220`.
    pub(crate) fn masked(&self) -> String {
        match self {
            Means::Card { card, .. } => card::mask(&card.pan),
            Means::Iban { iban, .. } => simulator::mask_iban(iban),
        }
    }
    fn secret(&self) -> &str {
        match self {
            Means::Card { card, .. } => &card.pan,
            Means::Iban { iban, .. } => iban,
        }
    }
    fn fingerprint(&self) -> &str {
        match self {
            Means::Card { fingerprint, .. } | Means::Iban { fingerprint, .. } => fingerprint,
        }
    }
    fn decide(&self) -> Outcome {
        match self {
            Means::Card { card, .. } => simulator::decide_card(&card.pan),
            Means::Iban { iban, .. } => simulator::decide_iban(iban),
        }
    }
    fn method(&self) -> &'static str {
        match self {
            Means::Card { .. } => "card",
            Means::Iban { .. } => "iban",
        }
    }
    /// `returnData` of the answer: masked, never the number.
    fn return_data(&self) -> Value {
        match self {
            Means::Card {
                card,
                holder,
                fingerprint,
            } => json!({
                "_TYPE": "cardData",
                "type": card.brand,
                "cardHolder": holder,
                "expiryMonth": format!("{:02}", card.exp_month),
                "expiryYear": format!("{:04}", card.exp_year),
                "firstSixDigits": card.first_six,
                "lastFourDigits": card.last_four,
                "fingerprint": fingerprint,
            }),
            Means::Iban {
                iban,
                bic,
                mandate_id,
                ..
            } => json!({
                "_TYPE": "ibanData",
                "iban": simulator::mask_iban(iban),
                "bic": bic,
                "mandateId": mandate_id,
            }),
        }
    }
}

/// Where the means came from.
pub(crate) enum Source {
    /// A payment.js token or IBAN data in the request: new to us.
    Fresh,
    /// A stored instrument (`pt::` token).
    Stored(Box<Instrument>),
    /// A previous transaction of the same merchant (`referenceUuid`).
    Reference,
}

pub(crate) struct Ctx<'a> {
    pub(crate) conn: &'a mut DbConnection,
    pub(crate) keyring: &'a Keyring,
    pub(crate) connector: &'a Connector,
    pub(crate) now: DateTime<Utc>,
    /// Public URL and page lifetime, for hosted payment pages and 3-D Secure challenges.
    pub(crate) pages: &'a PageSettings,
}

/// What the hosted payment page and the 3-D Secure challenge need from the settings.
#[derive(Debug, Clone)]
pub struct PageSettings {
    /// Public base URL, no trailing slash.
    pub base_url: String,
    pub minutes: i64,
}

impl PageSettings {
    pub fn from_settings(s: &crate::config::Settings) -> PageSettings {
        PageSettings {
            base_url: s.public_base(),
            minutes: s.payment_page_minutes,
        }
    }
}

pub(crate) fn internal<E: Into<anyhow::Error>>(e: E) -> ApiError {
    ApiError::from(ServiceError::Unexpected(e.into()))
}

pub(crate) fn db<T>(r: Result<T, diesel::result::Error>) -> Result<T, ApiError> {
    r.map_err(|e| ApiError::from(ServiceError::Db(e)))
}

fn fingerprint(keyring: &Keyring, secret: &str) -> String {
    vault::fingerprint(keyring.mac_key(), secret)
}

/// Opens a sealed card number or IBAN into `Means` using stored metadata.
fn means_from_instrument(cx: &mut Ctx<'_>, i: &Instrument) -> Result<Means, ApiError> {
    let secret = cx
        .keyring
        .open_string(cx.conn, &i.vault_record, i.id.as_bytes())
        .map_err(internal)?;
    Ok(if i.method == "iban" {
        Means::Iban {
            iban: secret,
            bic: i.bic.clone(),
            mandate_id: i.mandate_id.clone(),
            fingerprint: i.fingerprint.clone(),
        }
    } else {
        let pan = secret;
        Means::Card {
            card: CardData {
                brand: card::brand(&pan).unwrap_or("unknown"),
                first_six: pan.chars().take(6).collect(),
                last_four: pan
                    .chars()
                    .rev()
                    .take(4)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect(),
                exp_month: i.exp_month.unwrap_or(1).clamp(1, 12) as u32,
                exp_year: i.exp_year.unwrap_or(2000),
                pan,
            },
            holder: i.card_holder.clone(),
            fingerprint: i.fingerprint.clone(),
        }
    })
}

fn token_error() -> ApiError {
    ApiError::invalid("transactionToken: unknown payment token, or not usable with this connector")
}

/// Resolves the payment means of a debit, preauthorize or register. Returns the means, where it
/// came from, and the connector that processes it (a meta-connector routes a stored instrument
/// to the connector it is tied to).
pub(crate) fn resolve_means(
    cx: &mut Ctx<'_>,
    r: &TxRequest,
) -> Result<(Means, Source, Connector), ApiError> {
    let me = cx.connector.clone();
    if let Some(tok) = r.transaction_token.as_deref() {
        if tok.starts_with(ids::PAYMENT_TOKEN_PREFIX) {
            let found = db(profile::instrument_by_token(cx.conn, tok))?;
            let Some((inst, p)) = found else {
                return Err(token_error());
            };
            // Shared tokens: usable on any connector whose effective container holds the profile.
            let eff = effective(cx.conn, &me).map_err(ApiError::from)?;
            if eff.container.as_ref().map(|c| c.id.as_str()) != Some(p.container_id.as_str()) {
                return Err(token_error());
            }
            let processor = if me.adapter == "meta" {
                let members = db(connector::members(cx.conn, &me.id))?;
                if !members.contains(&inst.connector_id) {
                    return Err(ApiError::configuration(
                        "The meta-connector has no member connector for the connector this instrument is tied to.",
                    ));
                }
                db(connector::find(cx.conn, &inst.connector_id))?.ok_or_else(token_error)?
            } else {
                me
            };
            let expected = if processor.adapter == "sepa" {
                "iban"
            } else {
                "card"
            };
            if inst.method != expected {
                return Err(ApiError::invalid(
                    "transactionToken: this instrument cannot be charged on this connector",
                ));
            }
            let means = means_from_instrument(cx, &inst)?;
            return Ok((means, Source::Stored(Box::new(inst)), processor));
        }
        if tok.starts_with(ids::CARD_TOKEN_PREFIX) {
            if me.adapter != "creditcard" {
                return Err(ApiError::invalid(
                    "transactionToken: card tokens can be used only on a Creditcard connector",
                ));
            }
            let c =
                crate::payments::card_tokens::consume(cx.conn, cx.keyring, &me.id, tok, cx.now)?;
            let means = Means::Card {
                fingerprint: c.fingerprint.clone(),
                holder: c.card_holder.clone(),
                card: c.card,
            };
            return Ok((means, Source::Fresh, me));
        }
        return Err(token_error());
    }
    if let Some(ib) = r
        .customer
        .as_ref()
        .and_then(|c| c.payment_data.as_ref())
        .and_then(|p| p.iban_data.as_ref())
    {
        if me.adapter != "sepa" {
            return Err(ApiError::invalid(
                "customer.paymentData.ibanData: IBAN payments need a SEPA Direct Debit connector",
            ));
        }
        let iban: String = ib
            .iban
            .clone()
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_ascii_uppercase();
        let fp = fingerprint(cx.keyring, &iban);
        return Ok((
            Means::Iban {
                iban,
                bic: ib.bic.clone(),
                mandate_id: ib.mandate_id.clone(),
                fingerprint: fp,
            },
            Source::Fresh,
            me,
        ));
    }
    if let Some(uuid) = r.reference_uuid.as_deref() {
        let reference = find_reference(cx, uuid)?;
        let means = means_of_transaction(cx, &reference)?.ok_or_else(|| {
            ApiError::invalid(
                "referenceUuid: the referenced transaction holds no reusable payment instrument",
            )
        })?;
        return Ok((means, Source::Reference, me));
    }
    Err(ApiError::invalid(
        "transactionToken: is required (a payment.js token or a pt:: payment token)",
    ))
}

/// A transaction of the same merchant (referenceUuid is never shared across merchants).
fn find_reference(cx: &mut Ctx<'_>, uuid: &str) -> Result<Transaction, ApiError> {
    match db(txm::find(cx.conn, uuid))? {
        Some(t) if t.merchant_id == cx.connector.merchant_id => Ok(t),
        _ => Err(ApiError::invalid("referenceUuid: transaction not found")),
    }
}

/// The card or IBAN a successful earlier transaction used, if it can be reused.
fn means_of_transaction(cx: &mut Ctx<'_>, t: &Transaction) -> Result<Option<Means>, ApiError> {
    if t.status != "SUCCESS" {
        return Ok(None);
    }
    if let Some(iid) = &t.instrument_id
        && let Some(inst) = db(profile::find_instrument(cx.conn, iid))?
    {
        return means_from_instrument(cx, &inst).map(Some);
    }
    let summary: Value = t
        .card_summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let Some(sealed) = summary.get("vault").and_then(Value::as_str) else {
        return Ok(None);
    };
    let secret = cx
        .keyring
        .open_string(cx.conn, sealed, t.uuid.as_bytes())
        .map_err(internal)?;
    let rd = summary.get("returnData").cloned().unwrap_or(Value::Null);
    let s = |k: &str| rd.get(k).and_then(Value::as_str).map(str::to_string);
    let fp = fingerprint(cx.keyring, &secret);
    Ok(Some(if s("_TYPE").as_deref() == Some("ibanData") {
        Means::Iban {
            iban: secret,
            bic: s("bic"),
            mandate_id: s("mandateId"),
            fingerprint: fp,
        }
    } else {
        Means::Card {
            card: CardData {
                brand: card::brand(&secret).unwrap_or("unknown"),
                first_six: s("firstSixDigits").unwrap_or_default(),
                last_four: s("lastFourDigits").unwrap_or_default(),
                exp_month: s("expiryMonth").and_then(|m| m.parse().ok()).unwrap_or(1),
                exp_year: s("expiryYear").and_then(|y| y.parse().ok()).unwrap_or(2000),
                pan: secret,
            },
            holder: s("cardHolder"),
            fingerprint: fp,
        }
    }))
}

// ---------- customer profiles ----------

/// customer{} of a transaction as customerData of a profile (names per spec 1.3).
fn customer_data(c: &CustomerIn) -> Map<String, Value> {
    let mut m = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), Value::String(v.clone()));
        }
    };
    put("firstName", &c.first_name);
    put("lastName", &c.last_name);
    put("birthDate", &c.birth_date);
    put("gender", &c.gender);
    put("billingAddress1", &c.billing_address1);
    put("billingAddress2", &c.billing_address2);
    put("billingCity", &c.billing_city);
    put("billingPostcode", &c.billing_postcode);
    put("billingState", &c.billing_state);
    put("billingCountry", &c.billing_country);
    put("billingPhone", &c.billing_phone);
    put("company", &c.company);
    put("email", &c.email);
    put("ipAddress", &c.ip_address);
    put("nationalId", &c.national_id);
    if let Some(x) = &c.extra_data {
        m.insert("extraData".into(), json!(x));
    }
    m
}

/// Finds or creates the profile named by customerProfileData in `container_id`, and copies
/// customer{} into it. The container row is locked first, so concurrent registrations of one
/// new customerIdentification (several processes included) create exactly one profile.
fn upsert_profile(
    cx: &mut Ctx<'_>,
    container_id: &str,
    pd: &ProfileDataIn,
    customer: Option<&CustomerIn>,
) -> Result<Profile, ApiError> {
    db(container::lock(cx.conn, container_id))?;
    let at = now();
    let by_guid = match &pd.profile_guid {
        Some(g) => match db(profile::find_by_guid(cx.conn, g))? {
            Some(p) if p.container_id == container_id => Some(p),
            _ => {
                return Err(ApiError::invalid(
                    "customerProfileData.profileGuid: profile not found",
                ));
            }
        },
        None => None,
    };
    let existing = match by_guid {
        Some(p) => {
            if let Some(ci) = &pd.customer_identification
                && ci != &p.customer_identification
            {
                return Err(ApiError::invalid(
                    "customerProfileData: profileGuid and customerIdentification name different profiles",
                ));
            }
            Some(p)
        }
        None => match &pd.customer_identification {
            Some(ci) => db(profile::find_by_identification(cx.conn, container_id, ci))?,
            None => None,
        },
    };
    let incoming = customer.map(customer_data).unwrap_or_default();
    match existing {
        Some(mut p) => {
            if !incoming.is_empty() {
                let mut data: Map<String, Value> =
                    serde_json::from_str(&p.customer).unwrap_or_default();
                for (k, v) in incoming {
                    data.insert(k, v);
                }
                p.email = data
                    .get("email")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase);
                p.customer = Value::Object(data).to_string();
                p.updated_at = at;
                db(profile::update_customer(
                    cx.conn,
                    &p.id,
                    &p.customer,
                    p.email.as_deref(),
                    at,
                ))?;
            }
            Ok(p)
        }
        None => {
            let ci = pd.customer_identification.clone().ok_or_else(|| {
                ApiError::invalid(
                    "customerProfileData.customerIdentification: is required to create a profile",
                )
            })?;
            let p = Profile {
                id: crate::ids::new_id(),
                container_id: container_id.to_string(),
                profile_guid: ids::profile_guid(),
                customer_identification: ci,
                email: incoming
                    .get("email")
                    .and_then(Value::as_str)
                    .map(str::to_lowercase),
                customer: Value::Object(incoming).to_string(),
                created_at: at,
                updated_at: at,
                uuid: profile::new_uuid(),
                deleted_at: None,
            };
            db(profile::insert(cx.conn, &p))?;
            db(container::add_to_count(cx.conn, container_id, 1))?;
            Ok(p)
        }
    }
}

/// Stores the instrument in the profile (or finds the same card already there, by fingerprint,
/// and refreshes its expiry), honouring markAsPreferred: exactly one preferred instrument.
fn store_instrument(
    cx: &mut Ctx<'_>,
    p: &Profile,
    means: &Means,
    processor: &Connector,
    mark_preferred: bool,
) -> Result<Instrument, ApiError> {
    let at = now();
    let mut inst = match db(profile::instrument_by_fingerprint(
        cx.conn,
        &p.id,
        means.fingerprint(),
    ))? {
        Some(mut i) => {
            if let Means::Card { card, .. } = means {
                db(profile::update_instrument_expiry(
                    cx.conn,
                    &i.id,
                    card.exp_month as i32,
                    card.exp_year,
                    at,
                ))?;
                i.exp_month = Some(card.exp_month as i32);
                i.exp_year = Some(card.exp_year);
            }
            i
        }
        None => {
            let id = crate::ids::new_id();
            let sealed = cx
                .keyring
                .seal(means.secret().as_bytes(), id.as_bytes())
                .map_err(internal)?;
            let (brand, holder, first_six, last_four, m, y, iban_masked, bic, mandate) = match means
            {
                Means::Card { card, holder, .. } => (
                    Some(card.brand.to_string()),
                    holder.clone(),
                    Some(card.first_six.clone()),
                    Some(card.last_four.clone()),
                    Some(card.exp_month as i32),
                    Some(card.exp_year),
                    None,
                    None,
                    None,
                ),
                Means::Iban {
                    iban,
                    bic,
                    mandate_id,
                    ..
                } => (
                    None,
                    None,
                    None,
                    None,
                    None,
                    None,
                    Some(simulator::mask_iban(iban)),
                    bic.clone(),
                    mandate_id.clone(),
                ),
            };
            let i = Instrument {
                id,
                profile_id: p.id.clone(),
                connector_id: processor.id.clone(),
                payment_token: ids::payment_token(),
                method: means.method().into(),
                brand,
                card_holder: holder,
                first_six,
                last_four,
                exp_month: m,
                exp_year: y,
                iban_masked,
                bic,
                mandate_id: mandate,
                fingerprint: means.fingerprint().to_string(),
                vault_record: sealed,
                is_preferred: false,
                created_at: at,
                updated_at: at,
            };
            db(profile::insert_instrument(cx.conn, &i))?;
            i
        }
    };
    let has_preferred = db(profile::has_preferred(cx.conn, &p.id))?;
    if mark_preferred || !has_preferred {
        db(profile::set_preferred(cx.conn, &p.id, &inst.id))?;
        inst.is_preferred = true;
    }
    Ok(inst)
}

// ---------- processing ----------

pub struct Answer {
    pub status: StatusCode,
    pub body: Value,
}

pub(crate) fn base_tx(cx: &Ctx<'_>, kind: &str, r: &TxRequest, body_hash: BodyHash) -> Transaction {
    let uuid = ids::transaction_uuid();
    let at = now();
    let extra = json!({
        "additionalId1": r.additional_id1, "additionalId2": r.additional_id2,
        "extraData": r.extra_data, "merchantMetaData": r.merchant_meta_data,
        "successUrl": r.success_url, "cancelUrl": r.cancel_url, "errorUrl": r.error_url,
        "callbackUrl": r.callback_url, "description": r.description,
        "transactionIndicator": r.transaction_indicator,
    });
    Transaction {
        purchase_id: ids::purchase_id(cx.now.date_naive(), &uuid),
        uuid,
        connector_id: cx.connector.id.clone(),
        merchant_id: cx.connector.merchant_id.clone(),
        tenant_path: cx.connector.tenant_path.clone(),
        merchant_transaction_id: r.merchant_transaction_id.clone().unwrap_or_default(),
        transaction_type: kind.to_ascii_uppercase(),
        status: "SUCCESS".into(),
        payment_method: payment_method(&cx.connector.adapter).into(),
        amount: None,
        currency: r.currency.clone(),
        reference_uuid: r.reference_uuid.clone(),
        instrument_id: None,
        profile_id: None,
        payment_token: None,
        captured_amount: 0,
        refunded_amount: 0,
        voided: false,
        error_code: None,
        error_message: None,
        card_summary: None,
        body_hash: match body_hash {
            BodyHash::Sha512 => "sha512".into(),
            BodyHash::Md5 => "md5".into(),
        },
        extra: extra.to_string(),
        created_at: at,
        updated_at: at,
    }
}

fn insert_tx(cx: &mut Ctx<'_>, t: &Transaction) -> Result<(), ApiError> {
    match txm::insert(cx.conn, t) {
        Err(e) if is_unique_violation(&e) => Err(duplicate(&t.merchant_transaction_id)),
        r => db(r),
    }
}

fn duplicate(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        ErrorCode::DuplicateTransactionId,
        format!("The transaction ID '{id}' already exists!"),
    )
}

pub(crate) fn success_body(
    t: &Transaction,
    return_data: Option<Value>,
    profile_data: Option<Value>,
) -> Value {
    let mut b = json!({
        "success": true,
        "uuid": t.uuid,
        "purchaseId": t.purchase_id,
        "returnType": "FINISHED",
        "paymentMethod": t.payment_method,
    });
    if let Some(rd) = return_data {
        b["returnData"] = rd;
    }
    if let Some(pd) = profile_data {
        b["customerProfileData"] = pd;
    }
    b
}

pub(crate) fn decline_body(
    t: &Transaction,
    code: u32,
    message: &str,
    return_data: Option<Value>,
) -> Value {
    let mut b = json!({
        "success": false,
        "uuid": t.uuid,
        "purchaseId": t.purchase_id,
        "returnType": "ERROR",
        "paymentMethod": t.payment_method,
        "errors": [{"errorMessage": message, "errorCode": code, "adapterMessage": message, "adapterCode": code.to_string()}],
    });
    if let Some(rd) = return_data {
        b["returnData"] = rd;
    }
    b
}

/// The profile container `customerProfileData` needs: the connector's effective container,
/// checked before anything is charged.
fn profile_container(
    cx: &mut Ctx<'_>,
    r: &TxRequest,
) -> Result<Option<container::Container>, ApiError> {
    match &r.customer_profile_data {
        Some(_) => {
            let eff = effective(cx.conn, cx.connector).map_err(ApiError::from)?;
            Ok(Some(eff.container.ok_or_else(|| {
                ApiError::configuration(
                    "customerProfileData: this connector has no customer profile container",
                )
            })?))
        }
        None => Ok(None),
    }
}

/// A payment whose means are known: what is charged, where it came from, and the connector
/// that processes it.
pub(crate) struct Charge {
    pub(crate) means: Means,
    pub(crate) source: Source,
    pub(crate) processor: Connector,
}

/// The result of an approved 3-D Secure challenge, reported in `returnData`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ThreeDsResult {
    /// `MANDATORY` or `OPTIONAL`: the 3-D Secure mode that applied.
    pub(crate) mode: &'static str,
}

impl ThreeDsResult {
    /// The ECI of a fully authenticated payment: 05 for Visa-style schemes, 02 for Mastercard.
    fn eci(means: &Means) -> &'static str {
        match means {
            Means::Card { card, .. } if card.brand == card::brands::MASTERCARD => "02",
            _ => "05",
        }
    }
}

/// Whether the simulated issuer demands a 3-D Secure challenge: the 3DS test card always, any
/// card when the request says `threeDSecureData.3dsecure = MANDATORY`. A card from a payment.js
/// token or from the hosted page, and a stored instrument (`pt::` token) alike; a charge by
/// `referenceUuid` (merchant-initiated) is not challenged.
pub(crate) fn needs_challenge(charge: &Charge, r: &TxRequest) -> Option<&'static str> {
    let Means::Card { card, .. } = &charge.means else {
        return None;
    };
    if matches!(charge.source, Source::Reference) {
        return None;
    }
    let requested = r
        .three_d_secure_data
        .as_ref()
        .and_then(|m| m.get("3dsecure"))
        .and_then(Value::as_str);
    if requested == Some("MANDATORY") {
        Some("MANDATORY")
    } else if simulator::needs_3ds(&card.pan) {
        Some(if requested == Some("OPTIONAL") {
            "OPTIONAL"
        } else {
            "MANDATORY"
        })
    } else {
        None
    }
}

/// A new debit/preauthorize/register transaction for `processor` (status SUCCESS until decided).
fn pay_tx(
    cx: &Ctx<'_>,
    kind: &str,
    r: &TxRequest,
    body_hash: BodyHash,
    processor: &Connector,
) -> Result<Transaction, ApiError> {
    let mut t = base_tx(cx, kind, r, body_hash);
    t.payment_method = payment_method(&processor.adapter).into();
    if let (Some(a), Some(c)) = (&r.amount, &r.currency) {
        t.amount = Some(
            amount::parse_amount(a, c).map_err(|e| ApiError::invalid(format!("amount: {e}")))?,
        );
    }
    if processor.id != cx.connector.id {
        let mut extra: Value = serde_json::from_str(&t.extra).unwrap_or_default();
        extra["routedConnectorId"] = json!(processor.id);
        t.extra = extra.to_string();
    }
    Ok(t)
}

/// Records on `t` which stored instrument it charges (if any) and the masked means.
pub(crate) fn note_means(t: &mut Transaction, charge: &Charge) {
    if let Source::Stored(inst) = &charge.source {
        t.instrument_id = Some(inst.id.clone());
        t.profile_id = Some(inst.profile_id.clone());
        t.payment_token = Some(inst.payment_token.clone());
    }
    t.payment_method = payment_method(&charge.processor.adapter).into();
    t.card_summary = Some(json!({ "returnData": charge.means.return_data() }).to_string());
}

/// The answer that sends the customer's browser to `url` (hosted page or 3-D Secure).
pub(crate) fn redirect_body(t: &Transaction, url: &str) -> Value {
    json!({
        "success": true,
        "uuid": t.uuid,
        "purchaseId": t.purchase_id,
        "returnType": "REDIRECT",
        "redirectType": "fullpage",
        "redirectUrl": url,
        "paymentMethod": t.payment_method,
    })
}

/// debit, preauthorize and register. Without a transactionToken (nor IBAN data nor a
/// referenceUuid) on a card connector the customer pays on the hosted payment page; a card that
/// needs 3-D Secure is sent to the issuer's challenge first. Both leave the transaction PENDING
/// and answer REDIRECT; [`settle`] and [`finalize`] finish it later.
fn pay(
    cx: &mut Ctx<'_>,
    kind: &str,
    r: &TxRequest,
    body_hash: BodyHash,
) -> Result<Answer, ApiError> {
    profile_container(cx, r)?;
    if let Some(id) = &r.merchant_transaction_id
        && db(txm::find_by_merchant_tx_id(cx.conn, &cx.connector.id, id))?.is_some()
    {
        return Err(duplicate(id));
    }
    if crate::payments::checkout::wants_page(cx.connector, r) {
        let mut t = pay_tx(cx, kind, r, body_hash, cx.connector)?;
        t.status = "PENDING".into();
        insert_tx(cx, &t)?;
        let url = crate::payments::checkout::open_page(cx, &t, r)?;
        return Ok(Answer {
            status: StatusCode::OK,
            body: redirect_body(&t, &url),
        });
    }
    let (means, source, processor) = resolve_means(cx, r)?;
    let mut t = pay_tx(cx, kind, r, body_hash, &processor)?;
    let charge = Charge {
        means,
        source,
        processor,
    };
    if needs_challenge(&charge, r).is_some() {
        t.status = "PENDING".into();
        note_means(&mut t, &charge);
        insert_tx(cx, &t)?;
        let url = crate::payments::checkout::open_challenge(cx, &t, r, &charge)?;
        return Ok(Answer {
            status: StatusCode::OK,
            body: redirect_body(&t, &url),
        });
    }
    let body = settle(cx, &mut t, r, &charge, None)?;
    insert_tx(cx, &t)?;
    crate::payments::callbacks::enqueue_for(cx.conn, &t)?;
    Ok(Answer {
        status: StatusCode::OK,
        body,
    })
}

/// The second half of a payment, once its means are known: the simulator decides; on approval
/// the profile is created or updated, a registration stores the instrument, markAsPreferred is
/// honoured; on decline the error is recorded. Sets the outcome on `t` (which the caller inserts,
/// or finishes with [`finalize`] when it was PENDING) and returns the API answer.
pub(crate) fn settle(
    cx: &mut Ctx<'_>,
    t: &mut Transaction,
    r: &TxRequest,
    charge: &Charge,
    three_ds: Option<ThreeDsResult>,
) -> Result<Value, ApiError> {
    let Charge {
        means,
        source,
        processor,
    } = charge;
    let registering = t.transaction_type == "REGISTER" || r.with_register == Some(true);
    let container = profile_container(cx, r)?;
    note_means(t, charge);
    t.updated_at = now();
    let mut return_data = means.return_data();
    if let Some(x) = three_ds {
        return_data["threeDSecure"] = json!(x.mode);
        return_data["eci"] = json!(ThreeDsResult::eci(means));
    }
    match means.decide() {
        Outcome::Declined { code, message } => {
            t.status = "ERROR".into();
            t.error_code = Some(code as i32);
            t.error_message = Some(message.into());
            t.card_summary = Some(json!({ "returnData": return_data }).to_string());
            Ok(decline_body(t, code, message, Some(return_data)))
        }
        Outcome::Approved => {
            t.status = "SUCCESS".into();
            let mut profile_data = None;
            let mut summary = json!({ "returnData": return_data });
            if let (Some(pd), Some(c)) = (&r.customer_profile_data, &container) {
                let p = upsert_profile(cx, &c.id, pd, r.customer.as_ref())?;
                t.profile_id = Some(p.id.clone());
                let mut pdata = json!({
                    "profileGuid": p.profile_guid,
                    "customerIdentification": p.customer_identification,
                });
                if registering {
                    let inst = match source {
                        Source::Stored(i) => (**i).clone(),
                        _ => store_instrument(
                            cx,
                            &p,
                            means,
                            processor,
                            pd.mark_as_preferred == Some(true),
                        )?,
                    };
                    if let Source::Stored(i) = source
                        && pd.mark_as_preferred == Some(true)
                        && i.profile_id == p.id
                    {
                        db(profile::set_preferred(cx.conn, &p.id, &i.id))?;
                    }
                    t.instrument_id = Some(inst.id.clone());
                    t.payment_token = Some(inst.payment_token.clone());
                    pdata["paymentToken"] = json!(inst.payment_token);
                    pdata["markAsPreferred"] = json!(pd.mark_as_preferred.unwrap_or(false));
                }
                profile_data = Some(pdata);
            } else if registering && matches!(source, Source::Fresh) {
                // A registration without a profile: keep the sealed card on the transaction so
                // that referenceUuid can charge it later (same merchant only).
                summary["vault"] = json!(
                    cx.keyring
                        .seal(means.secret().as_bytes(), t.uuid.as_bytes())
                        .map_err(internal)?
                );
            }
            t.card_summary = Some(summary.to_string());
            Ok(success_body(t, Some(return_data), profile_data))
        }
    }
}

/// THE way every PENDING transaction reaches its final state: approved or declined after the
/// hosted page or a 3-D Secure challenge, denied by the issuer (2021), cancelled by the customer
/// (2002) or expired (2005). Writes `t`'s outcome if the row is still PENDING (else the
/// transaction was finished concurrently: `Ok(false)`, nothing written) and ends its open
/// payment sessions, dropping any sealed card. Runs inside the caller's write transaction.
pub(crate) fn finalize(conn: &mut DbConnection, t: &Transaction) -> Result<bool, ApiError> {
    if !db(txm::finish_pending(conn, t))? {
        return Ok(false);
    }
    db(crate::models::payment_session::close_all(
        conn,
        &t.uuid,
        crate::models::payment_session::FINISHED,
        t.updated_at,
    ))?;
    // Every final state of a PENDING transaction passes through here: its callback goes into
    // the outbox in the same write transaction as the outcome.
    crate::payments::callbacks::enqueue_for(conn, t)?;
    Ok(true)
}

/// Marks the PENDING transaction `t` as failed with `code` and finalizes it.
pub(crate) fn fail_pending(
    conn: &mut DbConnection,
    t: &Transaction,
    code: ErrorCode,
) -> Result<bool, ApiError> {
    let mut t = t.clone();
    t.status = "ERROR".into();
    t.error_code = Some(code.code() as i32);
    t.error_message = Some(code.message().into());
    t.updated_at = now();
    finalize(conn, &t)
}

/// capture, void and refund: the referenced transaction's type, state and remaining amount.
fn follow_up(
    cx: &mut Ctx<'_>,
    kind: &str,
    r: &TxRequest,
    body_hash: BodyHash,
) -> Result<Answer, ApiError> {
    if let Some(id) = &r.merchant_transaction_id
        && db(txm::find_by_merchant_tx_id(cx.conn, &cx.connector.id, id))?.is_some()
    {
        return Err(duplicate(id));
    }
    let reference = find_reference(cx, r.reference_uuid.as_deref().unwrap_or_default())?;
    db(txm::lock(cx.conn, &reference.uuid))?;
    let reference = find_reference(cx, &reference.uuid)?;
    let logical = |m: &str| ApiError::logical(m.to_string());
    if reference.status != "SUCCESS" {
        return Err(logical("The referenced transaction was not successful."));
    }
    let cur = reference.currency.clone().unwrap_or_default();
    let requested = match (&r.amount, &r.currency) {
        (Some(a), Some(c)) => {
            if *c != cur {
                return Err(logical(
                    "currency: must be the currency of the referenced transaction",
                ));
            }
            Some(
                amount::parse_amount(a, c)
                    .map_err(|e| ApiError::invalid(format!("amount: {e}")))?,
            )
        }
        _ => None,
    };
    let original = reference.amount.unwrap_or(0);
    let mut t = base_tx(cx, kind, r, body_hash);
    t.payment_method = reference.payment_method.clone();
    t.currency = Some(cur.clone());
    t.instrument_id = reference.instrument_id.clone();
    t.profile_id = reference.profile_id.clone();
    let at = now();
    match kind {
        "capture" => {
            if reference.transaction_type != "PREAUTHORIZE" {
                return Err(logical("Only a preauthorization can be captured."));
            }
            if reference.voided {
                return Err(logical("The preauthorization has been voided."));
            }
            let amt = requested.unwrap_or(0);
            if amt > original - reference.captured_amount {
                return Err(logical(&format!(
                    "amount: at most {} {cur} can still be captured",
                    amount::format_amount(original - reference.captured_amount, &cur)
                        .unwrap_or_default()
                )));
            }
            t.amount = Some(amt);
            db(txm::add_captured(cx.conn, &reference.uuid, amt, at))?;
        }
        "void" => {
            if reference.transaction_type != "PREAUTHORIZE" {
                return Err(logical("Only a preauthorization can be voided."));
            }
            if reference.voided || reference.captured_amount > 0 {
                return Err(logical(
                    "The preauthorization has already been voided or captured.",
                ));
            }
            t.amount = reference.amount;
            db(txm::set_voided(cx.conn, &reference.uuid, at))?;
        }
        _ => {
            let base = match reference.transaction_type.as_str() {
                "DEBIT" => original,
                "CAPTURE" => original,
                _ => return Err(logical("Only a debit or a capture can be refunded.")),
            };
            let amt = requested.unwrap_or(0);
            if amt > base - reference.refunded_amount {
                return Err(logical(&format!(
                    "amount: at most {} {cur} can still be refunded",
                    amount::format_amount(base - reference.refunded_amount, &cur)
                        .unwrap_or_default()
                )));
            }
            t.amount = Some(amt);
            db(txm::add_refunded(cx.conn, &reference.uuid, amt, at))?;
        }
    }
    insert_tx(cx, &t)?;
    crate::payments::callbacks::enqueue_for(cx.conn, &t)?;
    Ok(Answer {
        status: StatusCode::OK,
        body: success_body(&t, None, None),
    })
}

/// deregister: removes a stored instrument (by its `pt::` token or the registering transaction).
fn deregister(cx: &mut Ctx<'_>, r: &TxRequest, body_hash: BodyHash) -> Result<Answer, ApiError> {
    let mut t = base_tx(cx, "deregister", r, body_hash);
    let instrument = if let Some(tok) = r
        .transaction_token
        .as_deref()
        .filter(|t| t.starts_with(ids::PAYMENT_TOKEN_PREFIX))
    {
        let (inst, p) = db(profile::instrument_by_token(cx.conn, tok))?.ok_or_else(token_error)?;
        let eff = effective(cx.conn, cx.connector).map_err(ApiError::from)?;
        if eff.container.map(|c| c.id) != Some(p.container_id) {
            return Err(token_error());
        }
        Some(inst)
    } else if let Some(uuid) = r.reference_uuid.as_deref() {
        let reference = find_reference(cx, uuid)?;
        t.reference_uuid = Some(reference.uuid.clone());
        match &reference.instrument_id {
            Some(iid) => db(profile::find_instrument(cx.conn, iid))?,
            None => {
                let mut summary: Value = reference
                    .card_summary
                    .as_deref()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or(Value::Null);
                if let Some(o) = summary.as_object_mut() {
                    o.remove("vault");
                }
                db(txm::set_card_summary(
                    cx.conn,
                    &reference.uuid,
                    &summary.to_string(),
                ))?;
                None
            }
        }
    } else {
        return Err(ApiError::invalid(
            "referenceUuid or transactionToken: one is required",
        ));
    };
    // Read again with the container locked, as registrations and updateProfile lock it: whether
    // it is the preferred instrument, and which one takes over, is decided on current rows.
    let instrument = match instrument {
        Some(i) => {
            if let Some(container_id) = db(profile::container_id_of(cx.conn, &i.profile_id))? {
                db(container::lock(cx.conn, &container_id))?;
            }
            match db(profile::find_instrument(cx.conn, &i.id))? {
                Some(current) => Some(current),
                // Deregistered by a concurrent request: gone, as for a later one.
                None if r.reference_uuid.is_none() => return Err(token_error()),
                None => None,
            }
        }
        None => None,
    };
    if let Some(i) = instrument {
        t.payment_token = Some(i.payment_token.clone());
        t.profile_id = Some(i.profile_id.clone());
        db(profile::delete_instrument(cx.conn, &i))?;
    }
    insert_tx(cx, &t)?;
    crate::payments::callbacks::enqueue_for(cx.conn, &t)?;
    Ok(Answer {
        status: StatusCode::OK,
        body: success_body(&t, None, None),
    })
}

/// Entry point: validates, then runs the whole request in one write transaction.
pub fn process(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    connector: &Connector,
    kind: &str,
    body: &[u8],
    body_hash: BodyHash,
) -> Result<Answer, ApiError> {
    if !TYPES.contains(&kind) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::InvalidRequestData,
            format!("Unknown transaction type '{kind}'."),
        ));
    }
    let r: TxRequest = crate::api::parse_json(body)?;
    validate(kind, &r)?;
    write_tx(conn, |conn| {
        let mut cx = Ctx {
            conn,
            keyring,
            connector,
            now: Utc::now(),
            pages,
        };
        match kind {
            "debit" | "preauthorize" | "register" => pay(&mut cx, kind, &r, body_hash),
            "capture" | "void" | "refund" => follow_up(&mut cx, kind, &r, body_hash),
            _ => deregister(&mut cx, &r, body_hash),
        }
    })
}

/// The status API's view of a transaction (spec 2.3 fields that apply).
pub fn status_body(t: &Transaction) -> Value {
    let summary: Value = t
        .card_summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let mut b = json!({
        "success": true,
        "transactionStatus": t.status,
        "uuid": t.uuid,
        "merchantTransactionId": t.merchant_transaction_id,
        "purchaseId": t.purchase_id,
        "transactionType": t.transaction_type,
        "paymentMethod": t.payment_method,
    });
    if let (Some(a), Some(c)) = (t.amount, &t.currency) {
        b["amount"] = json!(amount::format_amount(a, c).unwrap_or_default());
        b["currency"] = json!(c);
    }
    if let Some(r) = &t.reference_uuid {
        b["referenceUuid"] = json!(r);
    }
    if let Some(rd) = summary.get("returnData") {
        b["returnData"] = rd.clone();
    }
    if let Some(tok) = &t.payment_token {
        b["customerProfileData"] = json!({ "paymentToken": tok });
    }
    if let (Some(code), Some(msg)) = (t.error_code, &t.error_message) {
        b["errors"] = json!([{ "errorMessage": msg, "errorCode": code }]);
    }
    b
}
