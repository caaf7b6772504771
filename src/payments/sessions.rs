//! Opening the payment sessions of a PENDING transaction, inside the API request's write
//! transaction: the hosted payment page and the 3-D Secure challenge. The browser gets the
//! session's secret token; only its SHA-256 is stored. `checkout` runs the pages themselves.

use chrono::Duration;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::models::connector::Connector;
use crate::models::now;
use crate::models::payment_session::{self as ps, PaymentSession};
use crate::models::transaction::Transaction;
use crate::payments::error::PayError;
use crate::payments::means::{Charge, Ctx, Means, Source, db, internal};
use crate::payments::request::TxRequest;
use crate::payments::session_request::SessionRequest;

// ---------- opening sessions (inside the API request's write transaction) ----------

/// A request the hosted page answers: a card connector, and no transactionToken, IBAN data or
/// referenceUuid to pay with.
pub(crate) fn wants_page(connector: &Connector, r: &TxRequest) -> bool {
    let iban = r
        .customer
        .as_ref()
        .and_then(|c| c.payment_data.as_ref())
        .and_then(|p| p.iban_data.as_ref())
        .is_some();
    connector.adapter == "creditcard"
        && r.transaction_token.is_none()
        && r.reference_uuid.is_none()
        && !iban
}

pub(crate) fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Tokens are 64 lowercase hex digits; anything else is not looked up.
pub(crate) fn plausible(token: &str) -> bool {
    token.len() == 64
        && token
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

fn open_session(
    cx: &mut Ctx<'_>,
    t: &Transaction,
    kind: &str,
    request: &str,
    state: Value,
    card: Option<&Means>,
) -> Result<String, PayError> {
    let token = crate::ids::random_hex(32);
    let at = now();
    let id = crate::ids::new_id();
    let sealed_card = match card.and_then(Means::card_secret_json) {
        Some(v) => Some(
            cx.keyring
                .seal(
                    cx.conn,
                    &cx.owner(),
                    v.to_string().as_bytes(),
                    id.as_bytes(),
                )
                .map_err(internal)?,
        ),
        None => None,
    };
    let s = PaymentSession {
        id,
        transaction_uuid: t.uuid.clone(),
        kind: kind.into(),
        token_hash: token_hash(&token),
        status: ps::OPEN.into(),
        expires_at: at + Duration::minutes(cx.pages.minutes),
        request: request.into(),
        state: state.to_string(),
        sealed_card,
        created_at: at,
        updated_at: at,
    };
    db(ps::insert(cx.conn, &s))?;
    let path = if kind == ps::KIND_PAGE { "pay" } else { "3ds" };
    Ok(format!("{}/{path}/{token}", cx.pages.base_url))
}

/// Opens the hosted payment page of the PENDING transaction `t` requested by `r`; returns its
/// URL. The session keeps only what finishing needs of `r` ([`SessionRequest`]).
pub(crate) fn open_page(
    cx: &mut Ctx<'_>,
    t: &Transaction,
    r: &TxRequest,
) -> Result<String, PayError> {
    let request = SessionRequest::of(r).to_json();
    open_session(cx, t, ps::KIND_PAGE, &request, json!({}), None)
}

/// Opens the 3-D Secure challenge of the PENDING transaction `t`; returns its URL. A stored
/// instrument is found again by its token afterwards; a new card (its payment.js token is used
/// up) is kept sealed in the session until the challenge ends.
pub(crate) fn open_challenge(
    cx: &mut Ctx<'_>,
    t: &Transaction,
    r: &TxRequest,
    charge: &Charge,
) -> Result<String, PayError> {
    let request = SessionRequest::of(r).to_json();
    let mut state = json!({ "processorId": charge.processor.id });
    let card = match &charge.source {
        Source::Stored(i) => {
            state["paymentToken"] = json!(i.payment_token);
            None
        }
        _ => Some(&charge.means),
    };
    open_session(cx, t, ps::KIND_CHALLENGE, &request, state, card)
}
