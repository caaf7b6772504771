//! The hosted payment page (`/pay/{token}`) and the simulated 3-D Secure issuer page
//! (`/3ds/{token}`). A debit, preauthorize or register that cannot finish at once stays PENDING
//! with one open payment session; the browser holds the session's secret token (only its SHA-256
//! is stored). Each step runs in one write transaction that first claims the session row, so
//! two concurrent submissions charge once. Every final state goes through
//! [`transactions::finalize`].

use chrono::NaiveDateTime;
use serde::Deserialize;
use serde_json::Value;

use crate::audit::access::Reader;
use crate::db::{DbConnection, write_tx};
use crate::domain::TxStatus;
use crate::error::{FieldErrors, ServiceError};
use crate::gateway::amount;
use crate::gateway::card;
use crate::gateway::errors::ErrorCode;
use crate::models::connector::{self, Connector};
use crate::models::payment_session::{self as ps, PaymentSession};
use crate::models::profile::{self, Profile};
use crate::models::transaction::{self as txm, Transaction};
use crate::models::{merchant, now};
use crate::payments::engine as tx;
use crate::payments::error::PayError;
use crate::payments::means::{
    Charge, Ctx, Means, PageSettings, Source, ThreeDsResult, db, internal, needs_challenge,
    resolve_means,
};
use crate::payments::request::TxRequest;
use crate::payments::session_request::SessionRequest;
use crate::payments::sessions::{plausible, token_hash};
use crate::vault::keyring::Keyring;
use crate::vault::profiles::{self, Key};
use crate::vault::sharing::effective;

// ---------- what the pages show ----------

/// A stored card offered on the payment page.
#[derive(Debug, Clone)]
pub struct SavedCard {
    /// The `pt::` token: the radio button's value.
    pub token: String,
    pub brand: String,
    /// e.g. `411111******1111`.
    pub masked: String,
    /// `MM/YYYY`.
    pub expiry: String,
    pub preferred: bool,
}

/// The hosted payment page.
#[derive(Debug, Clone, Default)]
pub struct PayPage {
    pub merchant: String,
    /// e.g. `9.99 EUR`; none for a register.
    pub amount: Option<String>,
    pub description: Option<String>,
    pub saved: Vec<SavedCard>,
    /// The chosen radio value: a `pt::` token or `new`.
    pub selected: String,
    /// Values to show again after an error (never the number or CVV).
    pub card_holder: String,
    pub exp_month: String,
    pub exp_year: String,
    pub errors: FieldErrors,
    /// Origins of the merchant's URLs, allowed as form-action targets (the 303 after a form
    /// post is checked against the page's CSP form-action).
    pub origins: Vec<String>,
}

/// The simulated issuer's challenge page.
#[derive(Debug, Clone)]
pub struct ChallengePage {
    pub merchant: String,
    pub amount: Option<String>,
    pub masked_card: String,
    pub origins: Vec<String>,
}

/// What a page request ends in.
#[derive(Debug)]
pub enum Step {
    /// 303 to this URL (the merchant's page or the issuer's challenge).
    Redirect(String),
    /// The payment page: 200, or 422 with per-field messages.
    Pay(Box<PayPage>),
    Challenge(Box<ChallengePage>),
    /// A page of Coffer's own: a result without a merchant URL (200), or a session already
    /// used or expired (410), with an optional link back to the shop.
    Message {
        status: u16,
        title: &'static str,
        message: &'static str,
        link: Option<String>,
    },
}

fn svc(e: PayError) -> ServiceError {
    ServiceError::Unexpected(anyhow::anyhow!(
        "payment step failed: {} {}",
        e.code.code(),
        e.message
    ))
}

fn extra_url(t: &Transaction, key: &str) -> Option<String> {
    serde_json::from_str::<Value>(&t.extra)
        .ok()?
        .get(key)?
        .as_str()
        // A URL stored before URLs were checked as strictly is not followed.
        .filter(|u| crate::payments::request::is_url(u))
        .map(str::to_string)
}

/// Where the browser goes once `t` is final: successUrl, cancelUrl (2002) or errorUrl; or
/// Coffer's own result page when the merchant gave none.
fn result_step(t: &Transaction) -> Step {
    let (key, title, message) = match (t.status(), t.error_code) {
        (TxStatus::Success, _) => (
            "successUrl",
            "Payment approved",
            "Thank you: the payment was approved.",
        ),
        (_, Some(2002)) => (
            "cancelUrl",
            "Payment cancelled",
            "The payment was cancelled. Nothing was charged.",
        ),
        (_, Some(2005)) => (
            "errorUrl",
            "Payment page expired",
            "This payment page has expired. Nothing was charged.",
        ),
        _ => (
            "errorUrl",
            "Payment declined",
            "The payment was declined. Nothing was charged.",
        ),
    };
    match extra_url(t, key) {
        Some(u) => Step::Redirect(u),
        None => Step::Message {
            status: 200,
            title,
            message,
            link: None,
        },
    }
}

fn gone(t: &Transaction) -> Step {
    let expired = t.error_code == Some(ErrorCode::TransactionExpired.code() as i32);
    Step::Message {
        status: 410,
        title: if expired {
            "Payment page expired"
        } else {
            "Payment already completed"
        },
        message: if expired {
            "This payment page has expired. Nothing was charged."
        } else {
            "This payment has already been completed or cancelled; it cannot be paid again."
        },
        link: extra_url(t, if expired { "errorUrl" } else { "successUrl" })
            .filter(|_| t.status() == TxStatus::Success || expired),
    }
}

/// `scheme://host[:port]` of an http(s) URL, if it is plain enough to put into a CSP.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let ok = !host.is_empty()
        && !host.contains('@')
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    ok.then(|| format!("{scheme}://{}", host.to_ascii_lowercase()))
}

fn redirect_origins(t: &Transaction) -> Vec<String> {
    let mut v: Vec<String> = ["successUrl", "errorUrl", "cancelUrl"]
        .iter()
        .filter_map(|k| extra_url(t, k))
        .filter_map(|u| origin(&u))
        .collect();
    v.sort();
    v.dedup();
    v
}

fn display_amount(t: &Transaction) -> Option<String> {
    match (t.amount, &t.currency) {
        (Some(a), Some(c)) => amount::format_amount(a, c).ok().map(|s| format!("{s} {c}")),
        _ => None,
    }
}

struct Loaded {
    session: PaymentSession,
    t: Transaction,
    connector: Connector,
    request: TxRequest,
}

/// Finds the session of `kind` named by `token` and what it belongs to; `None` for an unknown
/// token or a connector that may not act. Not claimed.
fn load(conn: &mut DbConnection, kind: &str, token: &str) -> Result<Option<Loaded>, ServiceError> {
    if !plausible(token) {
        return Ok(None);
    }
    let Some(session) = ps::find_by_hash(conn, kind, &token_hash(token))? else {
        return Ok(None);
    };
    let t = txm::find(conn, &session.transaction_uuid)?.ok_or(ServiceError::NotFound)?;
    // The page of a connector that may not act (it or its merchant is inactive) is not found,
    // and nothing is claimed, expired or charged.
    let Some(connector) = connector::find_acting(conn, connector::Named::Id(&t.connector_id))?
    else {
        return Ok(None);
    };
    let request = SessionRequest::from_json(&session.request)
        .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("stored request unreadable: {e}")))?
        .to_request();
    Ok(Some(Loaded {
        session,
        t,
        connector,
        request,
    }))
}

/// Ends an open session whose time is up: the transaction fails with 2005 Transaction expired.
fn expire(conn: &mut DbConnection, l: &Loaded) -> Result<Transaction, ServiceError> {
    ps::close_all(conn, &l.t.uuid, ps::EXPIRED, now())?;
    tx::fail_pending(conn, &l.t, ErrorCode::TransactionExpired).map_err(svc)?;
    Ok(txm::find(conn, &l.t.uuid)?.unwrap_or_else(|| l.t.clone()))
}

/// Loads and claims the session for this write transaction. `Err(step)` when it cannot be used:
/// unknown (404), used (410) or expired (expired now: the transaction fails with 2005).
fn claim(
    conn: &mut DbConnection,
    kind: &str,
    token: &str,
    at: NaiveDateTime,
) -> Result<Result<Loaded, Step>, ServiceError> {
    let Some(l) = load(conn, kind, token)? else {
        return Err(ServiceError::NotFound);
    };
    if !ps::claim(conn, &l.session.id, at)? {
        let t = txm::find(conn, &l.t.uuid)?.unwrap_or(l.t);
        return Ok(Err(gone(&t)));
    }
    if l.session.expires_at <= at || l.t.status() != TxStatus::Pending {
        let t = if l.t.status() == TxStatus::Pending {
            expire(conn, &l)?
        } else {
            l.t.clone()
        };
        return Ok(Err(gone(&t)));
    }
    Ok(Ok(l))
}

/// The profile `customerProfileData` names in the connector's effective container, as the API
/// would find it.
fn named_profile(
    conn: &mut DbConnection,
    connector: &Connector,
    r: &TxRequest,
) -> Result<Option<Profile>, ServiceError> {
    let Some(pd) = &r.customer_profile_data else {
        return Ok(None);
    };
    let Some(container) = effective(conn, connector)?.container else {
        return Ok(None);
    };
    let key = match (&pd.profile_guid, &pd.customer_identification) {
        (Some(g), _) => Key::Guid(g),
        (None, Some(ci)) => Key::Identification(ci),
        _ => return Ok(None),
    };
    Ok(profiles::find_in(conn, &container.id, key)?)
}

fn saved_cards(
    conn: &mut DbConnection,
    p: Option<&Profile>,
) -> Result<Vec<SavedCard>, ServiceError> {
    let Some(p) = p else { return Ok(vec![]) };
    let mut cards: Vec<SavedCard> = profile::instruments_of(conn, &p.id)?
        .into_iter()
        .map(|(i, _)| i)
        .filter(|i| i.method == "card")
        .map(|i| SavedCard {
            masked: format!(
                "{}******{}",
                i.first_six.clone().unwrap_or_default(),
                i.last_four.clone().unwrap_or_default()
            ),
            brand: i.brand.clone().unwrap_or_else(|| "card".into()),
            expiry: format!(
                "{:02}/{:04}",
                i.exp_month.unwrap_or(0),
                i.exp_year.unwrap_or(0)
            ),
            preferred: i.is_preferred,
            token: i.payment_token,
        })
        .collect();
    // Preferred first; otherwise in the order they were stored.
    cards.sort_by_key(|c| !c.preferred);
    Ok(cards)
}

fn pay_page(conn: &mut DbConnection, l: &Loaded) -> Result<PayPage, ServiceError> {
    let merchant = merchant::find(conn, &l.connector.merchant_id)?
        .map(|m| m.name)
        .unwrap_or_default();
    let p = named_profile(conn, &l.connector, &l.request)?;
    let saved = saved_cards(conn, p.as_ref())?;
    let selected = saved
        .first()
        .map(|c| c.token.clone())
        .unwrap_or_else(|| "new".into());
    Ok(PayPage {
        merchant,
        amount: display_amount(&l.t),
        description: l.request.description.clone(),
        saved,
        selected,
        origins: redirect_origins(&l.t),
        ..PayPage::default()
    })
}

/// GET /pay/{token}: the payment page, or why it cannot be used (an expired page fails its
/// transaction now).
pub fn show_page(conn: &mut DbConnection, token: &str) -> Result<Step, ServiceError> {
    write_tx(conn, |conn| {
        match claim(conn, ps::KIND_PAGE, token, now())? {
            Err(step) => Ok(step),
            Ok(l) => Ok(Step::Pay(Box::new(pay_page(conn, &l)?))),
        }
    })
}

/// The payment page's form.
#[derive(Debug, Default, Deserialize)]
pub struct PayForm {
    /// A `pt::` token of a saved card, or `new`.
    pub instrument: Option<String>,
    pub card_holder: Option<String>,
    pub card_number: Option<String>,
    pub exp_month: Option<String>,
    pub exp_year: Option<String>,
    pub cvv: Option<String>,
}

fn ctx<'a>(
    conn: &'a mut DbConnection,
    keyring: &'a Keyring,
    connector: &'a Connector,
    pages: &'a PageSettings,
    reader: &'a Reader,
) -> Ctx<'a> {
    Ctx {
        conn,
        keyring,
        connector,
        now: chrono::Utc::now(),
        pages,
        reader,
    }
}

/// Validates the new-card fields; the card or per-field messages.
fn new_card(
    f: &PayForm,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(card::CardData, String), FieldErrors> {
    let mut errors = FieldErrors::new();
    let holder = f.card_holder.as_deref().unwrap_or("").trim().to_string();
    let n = holder.chars().count();
    if n == 0 {
        errors.add("card_holder", "Enter the name on the card.");
    } else if n > 50 || holder.chars().any(char::is_control) {
        errors.add("card_holder", "The name must be at most 50 characters.");
    }
    let s = |v: &Option<String>| v.as_deref().unwrap_or("").trim().to_string();
    let card = card::validate_card(
        &s(&f.card_number),
        &s(&f.cvv),
        &s(&f.exp_month),
        &s(&f.exp_year),
        now,
    );
    let card = match card {
        Ok(c) => Some(c),
        Err(problems) => {
            for (field, msg) in problems {
                let name = match field {
                    "number" => "card_number",
                    "month" => "exp_month",
                    "year" => "exp_year",
                    other => other,
                };
                let mut m = msg.to_string();
                if let Some(first) = m.get_mut(..1) {
                    first.make_ascii_uppercase();
                }
                errors.add(name, format!("{m}."));
            }
            None
        }
    };
    match card {
        Some(c) if errors.is_empty() => Ok((c, holder)),
        _ => Err(errors),
    }
}

/// Settles the claimed PENDING transaction with `charge` and finalizes it. A request-level
/// problem found only now (say the named profile was deleted meanwhile) fails the transaction
/// with its code instead of leaving it PENDING.
fn settle_and_finish(
    cx: &mut Ctx<'_>,
    l: &Loaded,
    charge: &Charge,
    three_ds: Option<ThreeDsResult>,
) -> Result<Step, ServiceError> {
    let mut t = l.t.clone();
    let settled = crate::db::write_tx(cx.conn, |conn| {
        let mut inner = Ctx {
            conn,
            keyring: cx.keyring,
            connector: cx.connector,
            now: cx.now,
            pages: cx.pages,
            reader: cx.reader,
        };
        tx::settle(&mut inner, &mut t, &l.request, charge, three_ds)
    });
    match settled {
        Ok(_) => {
            tx::finalize(cx.conn, &t).map_err(svc)?;
        }
        Err(e) if e.is_client_error() => {
            tx::fail_pending(cx.conn, &l.t, e.code).map_err(svc)?;
        }
        Err(e) => return Err(svc(e)),
    }
    let t = txm::find(cx.conn, &l.t.uuid)?.ok_or(ServiceError::NotFound)?;
    Ok(result_step(&t))
}

/// Goes on with `charge`: to the issuer's challenge when 3-D Secure applies, else settles.
fn charge_or_challenge(
    cx: &mut Ctx<'_>,
    l: &Loaded,
    charge: &Charge,
) -> Result<Step, ServiceError> {
    if needs_challenge(charge, &l.request).is_some() {
        ps::close_all(cx.conn, &l.t.uuid, ps::FINISHED, now())?;
        let url =
            crate::payments::sessions::open_challenge(cx, &l.t, &l.request, charge).map_err(svc)?;
        return Ok(Step::Redirect(url));
    }
    settle_and_finish(cx, l, charge, None)
}

/// POST /pay/{token}: pays with a saved card of the named profile or a new card.
pub fn submit_page(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    reader: &Reader,
    token: &str,
    form: &PayForm,
) -> Result<Step, ServiceError> {
    write_tx(conn, |conn| {
        let l = match claim(conn, ps::KIND_PAGE, token, now())? {
            Err(step) => return Ok(step),
            Ok(l) => l,
        };
        let choice = form.instrument.as_deref().unwrap_or("new").to_string();
        let mut page = pay_page(conn, &l)?;
        let connector = l.connector.clone();
        let mut cx = ctx(conn, keyring, &connector, pages, reader);
        let charge = if choice == "new" {
            match new_card(form, cx.now) {
                Ok((c, holder)) => Charge {
                    means: Means::new_card(keyring, c, Some(holder))?,
                    source: Source::Fresh,
                    processor: connector.clone(),
                },
                Err(errors) => {
                    page.selected = "new".into();
                    page.card_holder = form.card_holder.clone().unwrap_or_default();
                    page.exp_month = form.exp_month.clone().unwrap_or_default();
                    page.exp_year = form.exp_year.clone().unwrap_or_default();
                    page.errors = errors;
                    return Ok(Step::Pay(Box::new(page)));
                }
            }
        } else {
            // Only a card of the profile this page names (the list shown) can be chosen.
            if !page.saved.iter().any(|c| c.token == choice) {
                page.errors.add(
                    "instrument",
                    "Choose one of your saved cards or a new card.",
                );
                return Ok(Step::Pay(Box::new(page)));
            }
            let mut r = l.request.clone();
            r.transaction_token = Some(choice);
            let (means, source, processor) = resolve_means(&mut cx, &r).map_err(svc)?;
            Charge {
                means,
                source,
                processor,
            }
        };
        charge_or_challenge(&mut cx, &l, &charge)
    })
}

/// POST /pay/{token}/cancel: the customer gives up; the transaction fails with 2002 User
/// cancelled and the browser goes to cancelUrl.
pub fn cancel_page(conn: &mut DbConnection, token: &str) -> Result<Step, ServiceError> {
    write_tx(conn, |conn| {
        let l = match claim(conn, ps::KIND_PAGE, token, now())? {
            Err(step) => return Ok(step),
            Ok(l) => l,
        };
        tx::fail_pending(conn, &l.t, ErrorCode::UserCancelled).map_err(svc)?;
        let t = txm::find(conn, &l.t.uuid)?.ok_or(ServiceError::NotFound)?;
        Ok(result_step(&t))
    })
}

/// The card of a challenge: the stored instrument found again by its token (same rules as the
/// API: a 4xx when it was deregistered meanwhile), or the sealed new card.
fn challenge_charge(cx: &mut Ctx<'_>, l: &Loaded) -> Result<Charge, PayError> {
    let state: Value = serde_json::from_str(&l.session.state).unwrap_or_default();
    if let Some(tok) = state.get("paymentToken").and_then(Value::as_str) {
        let mut r = l.request.clone();
        r.transaction_token = Some(tok.to_string());
        let (means, source, processor) = resolve_means(cx, &r)?;
        return Ok(Charge {
            means,
            source,
            processor,
        });
    }
    let unexpected = |m: &str| internal(anyhow::anyhow!("challenge {}: {m}", l.session.id));
    let sealed = l
        .session
        .sealed_card
        .as_deref()
        .ok_or_else(|| unexpected("no card"))?;
    let opened = cx
        .keyring
        .open(cx.conn, sealed, l.session.id.as_bytes())
        .map_err(internal)?;
    let v: Value = serde_json::from_slice(&opened).map_err(|_| unexpected("card unreadable"))?;
    let means = Means::from_card_secret_json(cx.keyring, &v)?
        .ok_or_else(|| unexpected("card malformed"))?;
    let processor_id = state
        .get("processorId")
        .and_then(Value::as_str)
        .unwrap_or(&l.connector.id)
        .to_string();
    let processor =
        db(connector::find(cx.conn, &processor_id))?.ok_or_else(|| unexpected("processor gone"))?;
    Ok(Charge {
        means,
        source: Source::Fresh,
        processor,
    })
}

/// The challenge's card, or (when it can no longer be charged, say its stored instrument was
/// deregistered meanwhile) the transaction failed with the API's code and the result step.
fn challenge_charge_or_fail(
    cx: &mut Ctx<'_>,
    l: &Loaded,
) -> Result<Result<Charge, Step>, ServiceError> {
    match challenge_charge(cx, l) {
        Ok(c) => Ok(Ok(c)),
        Err(e) if e.is_client_error() => {
            tx::fail_pending(cx.conn, &l.t, e.code).map_err(svc)?;
            let t = txm::find(cx.conn, &l.t.uuid)?.ok_or(ServiceError::NotFound)?;
            Ok(Err(result_step(&t)))
        }
        Err(e) => Err(svc(e)),
    }
}

/// GET /3ds/{token}: the simulated issuer's page.
pub fn show_challenge(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    reader: &Reader,
    token: &str,
) -> Result<Step, ServiceError> {
    write_tx(conn, |conn| {
        let l = match claim(conn, ps::KIND_CHALLENGE, token, now())? {
            Err(step) => return Ok(step),
            Ok(l) => l,
        };
        let merchant = merchant::find(conn, &l.connector.merchant_id)?
            .map(|m| m.name)
            .unwrap_or_default();
        let connector = l.connector.clone();
        let mut cx = ctx(conn, keyring, &connector, pages, reader);
        let charge = match challenge_charge_or_fail(&mut cx, &l)? {
            Ok(c) => c,
            Err(step) => return Ok(step),
        };
        Ok(Step::Challenge(Box::new(ChallengePage {
            merchant,
            amount: display_amount(&l.t),
            masked_card: charge.means.masked(),
            origins: redirect_origins(&l.t),
        })))
    })
}

/// POST /3ds/{token}: the customer approves (the payment is settled, with the 3-D Secure result
/// in returnData) or denies (2021 3D-Secure verification failed).
pub fn submit_challenge(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    reader: &Reader,
    token: &str,
    approve: bool,
) -> Result<Step, ServiceError> {
    write_tx(conn, |conn| {
        let l = match claim(conn, ps::KIND_CHALLENGE, token, now())? {
            Err(step) => return Ok(step),
            Ok(l) => l,
        };
        if !approve {
            tx::fail_pending(conn, &l.t, ErrorCode::ThreeDSecureVerificationFailed).map_err(svc)?;
            let t = txm::find(conn, &l.t.uuid)?.ok_or(ServiceError::NotFound)?;
            return Ok(result_step(&t));
        }
        let connector = l.connector.clone();
        let mut cx = ctx(conn, keyring, &connector, pages, reader);
        let charge = match challenge_charge_or_fail(&mut cx, &l)? {
            Ok(c) => c,
            Err(step) => return Ok(step),
        };
        let mode = needs_challenge(&charge, &l.request).unwrap_or("MANDATORY");
        settle_and_finish(&mut cx, &l, &charge, Some(ThreeDsResult { mode }))
    })
}

/// Expires every open page or challenge whose time is up (their transactions fail with 2005
/// Transaction expired and sealed cards are dropped); returns how many. The lead wires this
/// into a periodic task; pages hit after their time expire lazily as well.
pub fn expire_due(conn: &mut DbConnection, at: NaiveDateTime) -> Result<usize, ServiceError> {
    let mut n = 0;
    loop {
        let ids = ps::due(conn, at, 100)?;
        if ids.is_empty() {
            return Ok(n);
        }
        for id in ids {
            n += write_tx(conn, |conn| -> Result<usize, ServiceError> {
                if !ps::claim(conn, &id, at)? {
                    return Ok(0); // finished meanwhile
                }
                let Some(s) = ps::find(conn, &id)? else {
                    return Ok(0);
                };
                ps::close_all(conn, &s.transaction_uuid, ps::EXPIRED, at)?;
                if let Some(t) = txm::find(conn, &s.transaction_uuid)?
                    && t.status() == TxStatus::Pending
                {
                    tx::fail_pending(conn, &t, ErrorCode::TransactionExpired).map_err(svc)?;
                }
                Ok(1)
            })?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_and_host_only() {
        assert_eq!(
            origin("https://Shop.example:8443/done?x=1").as_deref(),
            Some("https://shop.example:8443")
        );
        assert_eq!(origin("http://a.b#frag").as_deref(), Some("http://a.b"));
        for bad in ["ftp://x", "https://", "https://a;b/", "https://u@h/", "x"] {
            assert_eq!(origin(bad), None, "{bad}");
        }
    }

    #[test]
    fn new_card_fields_are_validated_with_a_message_per_field() {
        let now = chrono::Utc::now();
        let form = |holder: &str, number: &str, month: &str, year: &str, cvv: &str| PayForm {
            instrument: Some("new".into()),
            card_holder: Some(holder.into()),
            card_number: Some(number.into()),
            exp_month: Some(month.into()),
            exp_year: Some(year.into()),
            cvv: Some(cvv.into()),
        };
        let (card, holder) = new_card(
            &form(" Ann Smith ", "4111 1111 1111 1111", "12", "2099", "123"),
            now,
        )
        .expect("valid");
        assert_eq!(
            (card.pan.as_str(), holder.as_str()),
            ("4111111111111111", "Ann Smith")
        );
        let e = new_card(&form("", "4111111111111112", "13", "20x", "12"), now).expect_err("bad");
        for field in ["card_holder", "card_number", "exp_month", "exp_year", "cvv"] {
            assert!(e.get(field).is_some(), "{field}: {e:?}");
        }
        assert!(!format!("{e:?}").contains("4111111111111112"));
        let e = new_card(
            &form(&"x".repeat(51), "4111111111111111", "1", "2020", "123"),
            now,
        )
        .expect_err("bad");
        assert_eq!(e.get("exp_year"), Some("Card has expired."));
        assert!(e.get("card_holder").is_some());
        let e = new_card(&PayForm::default(), now).expect_err("empty");
        assert_eq!(e.0.len(), 5, "{e:?}");
    }

    #[test]
    fn tokens_must_be_64_lowercase_hex() {
        assert!(plausible(&"a".repeat(64)));
        assert!(!plausible(&"A".repeat(64)));
        assert!(!plausible(&"a".repeat(63)));
        assert!(!plausible("'; drop table"));
    }
}
