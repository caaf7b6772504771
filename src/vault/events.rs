//! Lifecycle events (`profile.created`, …, `instrument.expiring`): the one owner that puts them
//! in the outbox. `vault::profiles`, the only writer of profiles and instruments, calls
//! [`emit`] after each change, inside the caller's write transaction, so an event commits with
//! the change that caused it or not at all, whichever path made the change (the IXOPAY profile
//! API, the Transaction API's `withRegister`, Monri, the hosted page, the console, the account
//! updater, the expiry scan).
//!
//! Who gets an event: every connector whose effective container (the one sharing decision,
//! `vault::sharing::effective`) is the profile's container and that has a Lifecycle webhook
//! URL, once each. The event is a row of the callback outbox (`models::callback`, with
//! `event_type` set) that `payments::callback_worker` delivers with its leases, backoff and
//! target checks; its row id is the event id.
//!
//! The body never carries a card number: masked digits, expiry and the `pt::` token only.

use chrono::{NaiveDate, NaiveDateTime};
use diesel::QueryResult;
use serde_json::{Value, json};

use crate::db::DbConnection;
use crate::error::ServiceError;
use crate::models::callback::{self, Callback};
use crate::models::connector::{self, Connector};
use crate::models::container;
use crate::models::profile::{Instrument, Profile};
use crate::vault::sharing;

/// "Expiry notice (days)" of a new connector.
pub const DEFAULT_EXPIRY_NOTICE_DAYS: i32 = 30;
/// The largest "Expiry notice (days)" accepted.
pub const MAX_EXPIRY_NOTICE_DAYS: i32 = 365;

/// The event types, as sent in `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    ProfileCreated,
    ProfileUpdated,
    ProfileDeleted,
    InstrumentCreated,
    InstrumentUpdated,
    InstrumentDeleted,
    InstrumentExpiring,
}

impl EventType {
    pub const ALL: [EventType; 7] = [
        EventType::ProfileCreated,
        EventType::ProfileUpdated,
        EventType::ProfileDeleted,
        EventType::InstrumentCreated,
        EventType::InstrumentUpdated,
        EventType::InstrumentDeleted,
        EventType::InstrumentExpiring,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::ProfileCreated => "profile.created",
            EventType::ProfileUpdated => "profile.updated",
            EventType::ProfileDeleted => "profile.deleted",
            EventType::InstrumentCreated => "instrument.created",
            EventType::InstrumentUpdated => "instrument.updated",
            EventType::InstrumentDeleted => "instrument.deleted",
            EventType::InstrumentExpiring => "instrument.expiring",
        }
    }
}

/// A sharing error as a query error (the writers of `vault::profiles` answer `QueryResult`).
fn as_query_error(e: ServiceError) -> diesel::result::Error {
    match e {
        ServiceError::Db(e) => e,
        other => diesel::result::Error::QueryBuilderError(Box::new(std::io::Error::other(
            other.to_string(),
        ))),
    }
}

/// The connectors subscribed to the events of container `container_id`: a Lifecycle webhook
/// URL, and that container as their effective container now.
pub fn subscribers(conn: &mut DbConnection, container_id: &str) -> QueryResult<Vec<Connector>> {
    let Some(c) = container::find(conn, container_id)? else {
        return Ok(vec![]);
    };
    let mut out = vec![];
    for k in connector::with_lifecycle_webhook_under(conn, &c.tenant_path)? {
        match sharing::effective(conn, &k) {
            Ok(e) if sharing::reaches(&e, &c.id) => out.push(k),
            Ok(_) | Err(ServiceError::NotFound) => {}
            Err(e) => return Err(as_query_error(e)),
        }
    }
    Ok(out)
}

/// The last day of expiry month `m`/`y` (`None` for an impossible month).
pub fn last_day_of(m: i32, y: i32) -> Option<NaiveDate> {
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    if !(1..=12).contains(&m) {
        return None;
    }
    NaiveDate::from_ymd_opt(ny, nm as u32, 1).and_then(|d| d.pred_opt())
}

/// Is the instrument expired on `today`: marked so by the expiry scan, or past the last day of
/// its expiry month. What getProfile, Monri and the console show.
pub fn is_expired(i: &Instrument, today: NaiveDate) -> bool {
    i.expired_at.is_some()
        || matches!((i.exp_month, i.exp_year), (Some(m), Some(y))
            if last_day_of(m, y).is_some_and(|d| d < today))
}

/// `created`: ISO 8601, UTC, seconds.
pub fn iso(at: NaiveDateTime) -> String {
    at.and_utc().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// The `data` of a profile event.
pub fn profile_data(p: &Profile) -> Value {
    json!({
        "profileGuid": p.profile_guid,
        "customerIdentification": p.customer_identification,
    })
}

/// The `data` of an instrument event: masked digits only, never the number.
pub fn instrument_data(p: &Profile, i: &Instrument, today: NaiveDate) -> Value {
    let mut d = profile_data(p);
    d["paymentToken"] = json!(i.payment_token);
    d["method"] = json!(i.method);
    if i.method == "iban" {
        d["iban"] = json!(i.iban_masked);
    } else {
        d["brand"] = json!(i.brand);
        d["firstSixDigits"] = json!(i.first_six);
        d["lastFourDigits"] = json!(i.last_four);
        d["expiryMonth"] = json!(i.exp_month);
        d["expiryYear"] = json!(i.exp_year);
        d["expired"] = json!(is_expired(i, today));
    }
    d["isPreferred"] = json!(i.is_preferred);
    if let Some(s) = &i.card_update_status {
        d["cardUpdateStatus"] = json!(s);
    }
    d
}

/// Puts event `kind` with `data` in the outbox, once for each subscriber of `container_id`.
/// `data` is only built when someone subscribed. Call it inside the write transaction of the
/// change.
pub fn emit(
    conn: &mut DbConnection,
    container_id: &str,
    kind: EventType,
    data: impl FnOnce(&mut DbConnection) -> QueryResult<Option<Value>>,
) -> QueryResult<()> {
    let subs = subscribers(conn, container_id)?;
    if subs.is_empty() {
        return Ok(());
    }
    let Some(data) = data(conn)? else {
        return Ok(());
    };
    let at = crate::models::now();
    for k in subs {
        let Some(url) = k.lifecycle_webhook_url.clone() else {
            continue;
        };
        let id = crate::ids::new_id();
        let body = json!({
            "id": id,
            "type": kind.as_str(),
            "created": iso(at),
            "data": data,
        });
        callback::insert(
            conn,
            &Callback {
                id,
                transaction_uuid: None,
                connector_id: k.id.clone(),
                merchant_id: k.merchant_id.clone(),
                tenant_path: k.tenant_path.clone(),
                url,
                body: body.to_string(),
                body_hash: "sha512".into(),
                status: "pending".into(),
                attempts: 0,
                next_attempt_at: at,
                locked_until: None,
                locked_by: None,
                last_error: None,
                created_at: at,
                updated_at: at,
                delivered_at: None,
                event_type: Some(kind.as_str().into()),
            },
        )?;
    }
    Ok(())
}

/// Emits a profile event for `p`.
pub fn profile_event(conn: &mut DbConnection, p: &Profile, kind: EventType) -> QueryResult<()> {
    emit(conn, &p.container_id, kind, |_| Ok(Some(profile_data(p))))
}

/// Emits an instrument event for `i` (as given: a deleted one is described as it was).
pub fn instrument_event(
    conn: &mut DbConnection,
    i: &Instrument,
    kind: EventType,
) -> QueryResult<()> {
    let Some(p) = crate::models::profile::find(conn, &i.profile_id)? else {
        return Ok(());
    };
    let today = crate::models::now().date();
    emit(conn, &p.container_id, kind, |_| {
        Ok(Some(instrument_data(&p, i, today)))
    })
}

/// Emits `instrument.updated` for the instrument with id `id` as stored now.
pub fn instrument_updated(conn: &mut DbConnection, id: &str) -> QueryResult<()> {
    match crate::models::profile::find_instrument(conn, id)? {
        Some(i) => instrument_event(conn, &i, EventType::InstrumentUpdated),
        None => Ok(()),
    }
}

/// HMAC-SHA512 signature of an event: `base64(HMAC-SHA512(secret, timestamp + "." + body))`,
/// the `X-Coffer-Signature` header.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    crate::gateway::signature::lifecycle_signature(secret, timestamp, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_day_of_the_expiry_month() {
        assert_eq!(last_day_of(2, 2028), NaiveDate::from_ymd_opt(2028, 2, 29));
        assert_eq!(last_day_of(12, 2030), NaiveDate::from_ymd_opt(2030, 12, 31));
        assert_eq!(last_day_of(4, 2030), NaiveDate::from_ymd_opt(2030, 4, 30));
        assert_eq!(last_day_of(13, 2030), None);
        assert_eq!(last_day_of(0, 2030), None);
    }

    #[test]
    fn event_types_are_named_as_documented() {
        let names: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        assert_eq!(
            names,
            [
                "profile.created",
                "profile.updated",
                "profile.deleted",
                "instrument.created",
                "instrument.updated",
                "instrument.deleted",
                "instrument.expiring"
            ]
        );
    }
}
