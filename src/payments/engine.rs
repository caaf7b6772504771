//! The Transaction API v3: debit, preauthorize, capture, void, register, deregister, refund,
//! against the processor simulator, registering customer profiles as the seeds describe.
//! Each request is one write transaction: the payment, the profile, the instrument and the
//! vault record commit together or not at all.

use chrono::Utc;
use serde_json::{Map, Value, json};

use crate::db::{DbConnection, is_unique_violation, write_tx};
use crate::domain::{TxKind, TxStatus};
use crate::gateway::amount;
use crate::gateway::errors::ErrorCode;
use crate::gateway::ids;
use crate::gateway::signature::BodyHash;
use crate::gateway::simulator::{self, Outcome};
use crate::models::connector::Connector;
use crate::models::container;
use crate::models::now;
use crate::models::profile::{self, Instrument, Profile};
use crate::models::transaction::{self as txm, Transaction};
use crate::payments::error::{Kind, PayError};
use crate::payments::means::payment_method;
use crate::payments::means::*;
use crate::payments::request::*;
use crate::vault::keyring::Keyring;
use crate::vault::profiles::{self, Key};
use crate::vault::sharing;

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
) -> Result<Profile, PayError> {
    db(profiles::lock(cx.conn, container_id))?;
    let at = now();
    let by_guid = match &pd.profile_guid {
        Some(g) => match db(profiles::find_in(cx.conn, container_id, Key::Guid(g)))? {
            Some(p) => Some(p),
            None => {
                return Err(PayError::invalid(
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
                return Err(PayError::invalid(
                    "customerProfileData: profileGuid and customerIdentification name different profiles",
                ));
            }
            Some(p)
        }
        None => match &pd.customer_identification {
            Some(ci) => db(profiles::find_in(
                cx.conn,
                container_id,
                Key::Identification(ci),
            ))?,
            None => None,
        },
    };
    let incoming = customer.map(customer_data).unwrap_or_default();
    match existing {
        Some(p) if incoming.is_empty() => Ok(p),
        Some(p) => {
            let changes = incoming.into_iter().map(|(k, v)| (k, Some(v)));
            Ok(db(profiles::update_customer(cx.conn, p, changes, at))?)
        }
        None => {
            let ci = pd.customer_identification.clone().ok_or_else(|| {
                PayError::invalid(
                    "customerProfileData.customerIdentification: is required to create a profile",
                )
            })?;
            let p = profiles::new_profile(container_id, ci, incoming, at);
            profiles::create(cx.conn, &p).map_err(|e| match e {
                // Found nothing above with the container locked: only a tombstone's freed
                // identification could clash, and erasure renames those.
                profiles::Refusal::Duplicate => PayError::invalid(
                    "customerProfileData.customerIdentification: already taken in this container",
                ),
                profiles::Refusal::Db(e) => PayError::from(e),
            })?;
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
) -> Result<Instrument, PayError> {
    let at = now();
    match db(profiles::same_instrument(
        cx.conn,
        &p.id,
        means.fingerprint(),
    ))? {
        Some(mut i) => {
            if let Means::Card { card, .. } = means {
                db(profiles::refresh_expiry(
                    cx.conn,
                    &mut i,
                    card.exp_month as i32,
                    card.exp_year,
                    at,
                ))?;
            }
            db(profiles::keep_preferred(cx.conn, &mut i, mark_preferred))?;
            Ok(i)
        }
        None => {
            let id = crate::ids::new_id();
            let sealed = cx
                .keyring
                .seal(
                    cx.conn,
                    &cx.owner(),
                    means.secret().as_bytes(),
                    id.as_bytes(),
                )
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
                expiry_noticed_at: None,
                expired_at: None,
                card_update_status: None,
                card_updated_at: None,
            };
            Ok(db(profiles::add_instrument(cx.conn, &i, mark_preferred))?)
        }
    }
}

// ---------- processing ----------

/// The answer to a Transaction API request (always HTTP 200: a decline is an answer too).
pub struct Answer {
    pub body: Value,
}

pub(crate) fn base_tx(
    cx: &Ctx<'_>,
    kind: TxKind,
    r: &TxRequest,
    body_hash: BodyHash,
) -> Transaction {
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
        transaction_type: kind.stored().into(),
        status: TxStatus::Success.as_str().into(),
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

fn insert_tx(cx: &mut Ctx<'_>, t: &Transaction) -> Result<(), PayError> {
    match txm::insert(cx.conn, t) {
        Err(e) if is_unique_violation(&e) => Err(duplicate(&t.merchant_transaction_id)),
        r => db(r),
    }
}

fn duplicate(id: &str) -> PayError {
    PayError::new(
        Kind::Logical,
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
) -> Result<Option<container::Container>, PayError> {
    match &r.customer_profile_data {
        Some(_) => {
            let eff = sharing::effective(cx.conn, cx.connector)?;
            Ok(Some(eff.container.ok_or_else(|| {
                PayError::configuration(
                    "customerProfileData: this connector has no customer profile container",
                )
            })?))
        }
        None => Ok(None),
    }
}

/// A new debit/preauthorize/register transaction for `processor` (status SUCCESS until decided).
fn pay_tx(
    cx: &Ctx<'_>,
    kind: TxKind,
    r: &TxRequest,
    body_hash: BodyHash,
    processor: &Connector,
) -> Result<Transaction, PayError> {
    let mut t = base_tx(cx, kind, r, body_hash);
    t.payment_method = payment_method(&processor.adapter).into();
    if let (Some(a), Some(c)) = (&r.amount, &r.currency) {
        t.amount = Some(
            amount::parse_amount(a, c).map_err(|e| PayError::invalid(format!("amount: {e}")))?,
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
pub(crate) fn note_means(
    cx: &Ctx<'_>,
    t: &mut Transaction,
    charge: &Charge,
) -> Result<(), PayError> {
    if let Source::Stored(inst) = &charge.source {
        t.instrument_id = Some(inst.id.clone());
        t.profile_id = Some(inst.profile_id.clone());
        t.payment_token = Some(inst.payment_token.clone());
    }
    t.payment_method = payment_method(&charge.processor.adapter).into();
    let return_data = charge
        .means
        .return_data(cx.keyring, &cx.connector.tenant_path)?;
    t.card_summary = Some(json!({ "returnData": return_data }).to_string());
    Ok(())
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
    kind: TxKind,
    r: &TxRequest,
    body_hash: BodyHash,
) -> Result<Answer, PayError> {
    profile_container(cx, r)?;
    if let Some(id) = &r.merchant_transaction_id
        && db(txm::find_by_merchant_tx_id(cx.conn, &cx.connector.id, id))?.is_some()
    {
        return Err(duplicate(id));
    }
    if crate::payments::sessions::wants_page(cx.connector, r) {
        let mut t = pay_tx(cx, kind, r, body_hash, cx.connector)?;
        t.set_status(TxStatus::Pending);
        insert_tx(cx, &t)?;
        let url = crate::payments::sessions::open_page(cx, &t, r)?;
        return Ok(Answer {
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
        t.set_status(TxStatus::Pending);
        note_means(cx, &mut t, &charge)?;
        insert_tx(cx, &t)?;
        let url = crate::payments::sessions::open_challenge(cx, &t, r, &charge)?;
        return Ok(Answer {
            body: redirect_body(&t, &url),
        });
    }
    let body = settle(cx, &mut t, r, &charge, None)?;
    insert_tx(cx, &t)?;
    crate::payments::callbacks::enqueue_for(cx.conn, &t)?;
    Ok(Answer { body })
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
) -> Result<Value, PayError> {
    let Charge {
        means,
        source,
        processor,
    } = charge;
    let registering = t.kind() == Some(TxKind::Register) || r.with_register == Some(true);
    let container = profile_container(cx, r)?;
    note_means(cx, t, charge)?;
    t.updated_at = now();
    let mut return_data = means.return_data(cx.keyring, &cx.connector.tenant_path)?;
    if let Some(x) = three_ds {
        return_data["threeDSecure"] = json!(x.mode);
        return_data["eci"] = json!(ThreeDsResult::eci(means));
    }
    match means.decide() {
        Outcome::Declined { code, message } => {
            t.set_status(TxStatus::Error);
            t.error_code = Some(code as i32);
            t.error_message = Some(message.into());
            t.card_summary = Some(json!({ "returnData": return_data }).to_string());
            Ok(decline_body(t, code, message, Some(return_data)))
        }
        Outcome::Approved => {
            t.set_status(TxStatus::Success);
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
                        db(profiles::make_preferred(cx.conn, &p.id, &i.id))?;
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
                        .seal(
                            cx.conn,
                            &cx.owner(),
                            means.secret().as_bytes(),
                            t.uuid.as_bytes(),
                        )
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
pub(crate) fn finalize(conn: &mut DbConnection, t: &Transaction) -> Result<bool, PayError> {
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
) -> Result<bool, PayError> {
    let mut t = t.clone();
    t.set_status(TxStatus::Error);
    t.error_code = Some(code.code() as i32);
    t.error_message = Some(code.message().into());
    t.updated_at = now();
    finalize(conn, &t)
}

/// capture, void and refund: the referenced transaction's type, state and remaining amount.
fn follow_up(
    cx: &mut Ctx<'_>,
    kind: TxKind,
    r: &TxRequest,
    body_hash: BodyHash,
) -> Result<Answer, PayError> {
    if let Some(id) = &r.merchant_transaction_id
        && db(txm::find_by_merchant_tx_id(cx.conn, &cx.connector.id, id))?.is_some()
    {
        return Err(duplicate(id));
    }
    let reference = find_reference(cx, r.reference_uuid.as_deref().unwrap_or_default())?;
    db(txm::lock(cx.conn, &reference.uuid))?;
    let reference = find_reference(cx, &reference.uuid)?;
    let logical = |m: &str| PayError::logical(m.to_string());
    if reference.status() != TxStatus::Success {
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
                    .map_err(|e| PayError::invalid(format!("amount: {e}")))?,
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
        TxKind::Capture => {
            if reference.kind() != Some(TxKind::Preauthorize) {
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
        TxKind::Void => {
            if reference.kind() != Some(TxKind::Preauthorize) {
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
            let base = match reference.kind() {
                Some(TxKind::Debit | TxKind::Capture) => original,
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
        body: success_body(&t, None, None),
    })
}

/// deregister: removes a stored instrument (by its `pt::` token or the registering transaction).
fn deregister(cx: &mut Ctx<'_>, r: &TxRequest, body_hash: BodyHash) -> Result<Answer, PayError> {
    let mut t = base_tx(cx, TxKind::Deregister, r, body_hash);
    let instrument = if let Some(tok) = r
        .transaction_token
        .as_deref()
        .filter(|t| t.starts_with(ids::PAYMENT_TOKEN_PREFIX))
    {
        let (inst, p) = db(profile::instrument_by_token(cx.conn, tok))?.ok_or_else(token_error)?;
        if !sharing::may_reach(cx.conn, cx.connector, &p.container_id)? {
            return Err(token_error());
        }
        Some(inst)
    } else if let Some(uuid) = r.reference_uuid.as_deref() {
        let reference = find_reference(cx, uuid)?;
        t.reference_uuid = Some(reference.uuid.clone());
        match &reference.instrument_id {
            Some(iid) => match db(profile::find_instrument(cx.conn, iid))? {
                Some(inst) => {
                    reachable_instrument(cx, &inst)?;
                    Some(inst)
                }
                None => None,
            },
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
        return Err(PayError::invalid(
            "referenceUuid or transactionToken: one is required",
        ));
    };
    // Read again with the container locked, as registrations and updateProfile lock it: whether
    // it is the preferred instrument, and which one takes over, is decided on current rows.
    let instrument = match instrument {
        Some(i) => {
            if let Some(container_id) = db(profile::container_id_of(cx.conn, &i.profile_id))? {
                db(profiles::lock(cx.conn, &container_id))?;
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
        db(profiles::remove_instrument(cx.conn, &i))?;
    }
    insert_tx(cx, &t)?;
    crate::payments::callbacks::enqueue_for(cx.conn, &t)?;
    Ok(Answer {
        body: success_body(&t, None, None),
    })
}

/// Entry point: validates, then runs the whole request in one write transaction.
pub fn process(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    connector: &Connector,
    call: Call<'_>,
) -> Result<Answer, PayError> {
    let kind = call.kind;
    let answer = process_within(conn, keyring, pages, connector, call)?;
    after_commit(conn, kind)?;
    Ok(answer)
}

/// What must follow the commit of a request of `kind`, outside any transaction.
pub fn after_commit(conn: &mut DbConnection, kind: TxKind) -> Result<(), PayError> {
    if kind == TxKind::Deregister {
        crate::db::scrub_after_erasure(conn)?; // the instrument's card data and holder
    }
    Ok(())
}

/// Validates, then runs the request in one write transaction (a savepoint when the caller has
/// one open: `payments::idempotency` commits its stored answer with it). The caller then runs
/// [`after_commit`] once its own transaction has committed.
pub fn process_within(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    connector: &Connector,
    call: Call<'_>,
) -> Result<Answer, PayError> {
    let Call {
        kind,
        request: r,
        body_hash,
        reader,
    } = call;
    validate(kind, r)?;
    write_tx(conn, |conn| {
        let mut cx = Ctx {
            conn,
            keyring,
            connector,
            now: Utc::now(),
            pages,
            reader,
        };
        match kind {
            TxKind::Debit | TxKind::Preauthorize | TxKind::Register => {
                pay(&mut cx, kind, r, body_hash)
            }
            TxKind::Capture | TxKind::Void | TxKind::Refund => {
                follow_up(&mut cx, kind, r, body_hash)
            }
            TxKind::Deregister => deregister(&mut cx, r, body_hash),
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
