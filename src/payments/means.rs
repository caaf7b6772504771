//! What a payment is charged to: a stored instrument (a `pt::` token or the instrument of an
//! earlier transaction), a payment.js card token, or IBAN data; and the request context the
//! engine, the payment pages and 3-D Secure share.

use crate::db::DbConnection;
use crate::domain::TxStatus;
use crate::error::KeysUnavailable;
use crate::error::ServiceError;
use crate::gateway::card::{self, CardData};
use crate::gateway::ids;
use crate::gateway::simulator::{self, Outcome};
use crate::gateway::vault;
use crate::models::connector::{self, Connector};
use crate::models::profile::{self, Instrument};
use crate::models::transaction::{self as txm, Transaction};
use crate::payments::error::PayError;
use crate::payments::request::*;
use crate::vault::keyring::Keyring;
use crate::vault::sharing;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

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
    pub(crate) fn new_card(
        keyring: &Keyring,
        card: CardData,
        holder: Option<String>,
    ) -> Result<Means, KeysUnavailable> {
        Ok(Means::Card {
            fingerprint: fingerprint(keyring, &card.pan)?,
            holder,
            card,
        })
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
    pub(crate) fn from_card_secret_json(
        keyring: &Keyring,
        v: &Value,
    ) -> Result<Option<Means>, KeysUnavailable> {
        let Some((card, holder)) = Self::card_of_secret_json(v) else {
            return Ok(None);
        };
        Self::new_card(keyring, card, holder).map(Some)
    }
    fn card_of_secret_json(v: &Value) -> Option<(CardData, Option<String>)> {
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
        Some((card, holder))
    }
    /// The masked number shown on the issuer page, e.g. `400000******3220`.
    pub(crate) fn masked(&self) -> String {
        match self {
            Means::Card { card, .. } => card::mask(&card.pan),
            Means::Iban { iban, .. } => simulator::mask_iban(iban),
        }
    }
    pub(crate) fn secret(&self) -> &str {
        match self {
            Means::Card { card, .. } => &card.pan,
            Means::Iban { iban, .. } => iban,
        }
    }
    pub(crate) fn fingerprint(&self) -> &str {
        match self {
            Means::Card { fingerprint, .. } | Means::Iban { fingerprint, .. } => fingerprint,
        }
    }
    pub(crate) fn decide(&self) -> Outcome {
        match self {
            Means::Card { card, .. } => simulator::decide_card(&card.pan),
            Means::Iban { iban, .. } => simulator::decide_iban(iban),
        }
    }
    pub(crate) fn method(&self) -> &'static str {
        match self {
            Means::Card { .. } => "card",
            Means::Iban { .. } => "iban",
        }
    }
    /// `returnData` of the answer: masked, never the number; the fingerprint is the one of
    /// the merchant's root tenant ([`Keyring::public_fingerprint`], `tenant_path` of the
    /// connector called).
    pub(crate) fn return_data(
        &self,
        keyring: &Keyring,
        tenant_path: &str,
    ) -> Result<Value, PayError> {
        Ok(match self {
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
                "fingerprint": keyring.public_fingerprint(tenant_path, fingerprint)?,
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
        })
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
    /// Who is paying (the access audit records each stored instrument opened).
    pub(crate) reader: &'a crate::audit::access::Reader,
}

impl Ctx<'_> {
    /// Whose keys seal what this payment stores: the connector's root tenant (a container is
    /// always in the same tree as the connectors that use it).
    pub(crate) fn owner(&self) -> crate::vault::keyring::Owner {
        crate::vault::keyring::Owner::of_path(Some(&self.connector.tenant_path))
    }
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

pub(crate) fn internal<E: Into<anyhow::Error>>(e: E) -> PayError {
    PayError::from(ServiceError::Unexpected(e.into()))
}

pub(crate) fn db<T>(r: Result<T, diesel::result::Error>) -> Result<T, PayError> {
    r.map_err(|e| PayError::from(ServiceError::Db(e)))
}

pub(crate) fn fingerprint(keyring: &Keyring, secret: &str) -> Result<String, KeysUnavailable> {
    Ok(vault::fingerprint(keyring.mac_key()?, secret))
}

/// Opens a sealed card number or IBAN into `Means` using stored metadata.
pub(crate) fn means_from_instrument(cx: &mut Ctx<'_>, i: &Instrument) -> Result<Means, PayError> {
    // Every charge of a stored instrument is an access to its profile (PCI DSS 10.2.1.1).
    let guid = db(profile::guid_of(cx.conn, &i.profile_id))?.unwrap_or_default();
    cx.reader.charge(
        cx.conn,
        cx.connector,
        &guid,
        &match (&i.last_four, &i.iban_masked) {
            (Some(l4), _) => format!("charged the stored card ending {l4}"),
            (None, Some(iban)) => format!("charged the stored account {iban}"),
            _ => "charged a stored instrument".to_string(),
        },
    )?;
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

pub(crate) fn token_error() -> PayError {
    PayError::invalid("transactionToken: unknown payment token, or not usable with this connector")
}

/// Resolves the payment means of a debit, preauthorize or register. Returns the means, where it
/// came from, and the connector that processes it (a meta-connector routes a stored instrument
/// to the connector it is tied to).
pub(crate) fn resolve_means(
    cx: &mut Ctx<'_>,
    r: &TxRequest,
) -> Result<(Means, Source, Connector), PayError> {
    let me = cx.connector.clone();
    if let Some(tok) = r.transaction_token.as_deref() {
        if tok.starts_with(ids::PAYMENT_TOKEN_PREFIX) {
            let found = db(profile::instrument_by_token(cx.conn, tok))?;
            let Some((inst, p)) = found else {
                return Err(token_error());
            };
            // Shared tokens: usable on any connector whose effective container holds the profile.
            if !sharing::may_reach(cx.conn, &me, &p.container_id)? {
                return Err(token_error());
            }
            let processor = if me.adapter == "meta" {
                let members = db(connector::members(cx.conn, &me.id))?;
                if !members.contains(&inst.connector_id) {
                    return Err(PayError::configuration(
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
                return Err(PayError::invalid(
                    "transactionToken: this instrument cannot be charged on this connector",
                ));
            }
            let means = means_from_instrument(cx, &inst)?;
            return Ok((means, Source::Stored(Box::new(inst)), processor));
        }
        if tok.starts_with(ids::CARD_TOKEN_PREFIX) {
            if me.adapter != "creditcard" {
                return Err(PayError::invalid(
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
            return Err(PayError::invalid(
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
        let fp = fingerprint(cx.keyring, &iban)?;
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
            PayError::invalid(
                "referenceUuid: the referenced transaction holds no reusable payment instrument",
            )
        })?;
        return Ok((means, Source::Reference, me));
    }
    Err(PayError::invalid(
        "transactionToken: is required (a payment.js token or a pt:: payment token)",
    ))
}

/// A transaction of the same merchant (referenceUuid is never shared across merchants).
pub(crate) fn find_reference(cx: &mut Ctx<'_>, uuid: &str) -> Result<Transaction, PayError> {
    match db(txm::find(cx.conn, uuid))? {
        Some(t) if t.merchant_id == cx.connector.merchant_id => Ok(t),
        _ => Err(PayError::invalid("referenceUuid: transaction not found")),
    }
}

/// Refuses a stored instrument that the connector may not reach under the sharing rules now
/// (its container is not the connector's effective container), whichever way it was named.
pub(crate) fn reachable_instrument(cx: &mut Ctx<'_>, inst: &Instrument) -> Result<(), PayError> {
    let container_id = db(profile::container_id_of(cx.conn, &inst.profile_id))?;
    match container_id {
        Some(c) if sharing::may_reach(cx.conn, cx.connector, &c)? => Ok(()),
        _ => Err(PayError::invalid(
            "referenceUuid: the referenced payment instrument is not usable with this connector",
        )),
    }
}

/// The card or IBAN a successful earlier transaction used, if it can be reused.
pub(crate) fn means_of_transaction(
    cx: &mut Ctx<'_>,
    t: &Transaction,
) -> Result<Option<Means>, PayError> {
    if t.status() != TxStatus::Success {
        return Ok(None);
    }
    if let Some(iid) = &t.instrument_id
        && let Some(inst) = db(profile::find_instrument(cx.conn, iid))?
    {
        // The instrument is stored in a container: the sharing rules decide, as for its token.
        reachable_instrument(cx, &inst)?;
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
    let fp = fingerprint(cx.keyring, &secret)?;
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
    pub(crate) fn eci(means: &Means) -> &'static str {
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

/// The payment method name the APIs report for an adapter.
/// IXOPAY's `paymentMethod` of a connector's adapter.
pub fn payment_method(a: &str) -> &'static str {
    match a {
        "sepa" => "DirectDebit",
        _ => "Creditcard",
    }
}
