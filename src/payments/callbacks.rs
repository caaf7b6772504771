//! Callbacks (spec 2.6): the outbox row written with the final transaction, the body it
//! carries, the retry schedule, and the console's view and retry. Sending is
//! `payments::callback_worker`.

use std::time::Duration;

use chrono::NaiveDateTime;
use serde_json::{Map, Value, json};

use crate::audit::{self, Change, Place};
use crate::db::{DbConnection, write_tx};
use crate::domain::Actor;
use crate::domain::TxStatus;
use crate::error::ServiceError;
use crate::gateway::amount;
use crate::gateway::target::{self, AllowPrivate};
use crate::models::callback::{self, Attempt, Callback};
use crate::models::transaction::{self as txm, Transaction};
use crate::models::{now, profile};
use crate::payments::error::PayError;

/// The stored `callbackUrl` of a transaction, if any.
pub fn callback_url(t: &Transaction) -> Option<String> {
    let extra: Value = serde_json::from_str(&t.extra).ok()?;
    extra
        .get("callbackUrl")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// The callback body of a final transaction, from what is stored (spec 2.6). Card data only
/// as `returnData` holds it: masked, never the number.
pub fn body_for(conn: &mut DbConnection, t: &Transaction) -> Result<Value, ServiceError> {
    let extra: Value = serde_json::from_str(&t.extra).unwrap_or(Value::Null);
    let summary: Value = t
        .card_summary
        .as_deref()
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null);
    let ok = t.status() == TxStatus::Success;
    let mut b = Map::new();
    b.insert("result".into(), json!(if ok { "OK" } else { "ERROR" }));
    b.insert("uuid".into(), json!(t.uuid));
    b.insert(
        "merchantTransactionId".into(),
        json!(t.merchant_transaction_id),
    );
    b.insert("purchaseId".into(), json!(t.purchase_id));
    b.insert("transactionType".into(), json!(t.transaction_type));
    b.insert("paymentMethod".into(), json!(t.payment_method));
    if let (Some(a), Some(c)) = (t.amount, &t.currency) {
        b.insert(
            "amount".into(),
            json!(amount::format_amount(a, c).map_err(|e| anyhow::anyhow!("{e}"))?),
        );
        b.insert("currency".into(), json!(c));
    }
    if let Some(r) = &t.reference_uuid {
        b.insert("referenceUuid".into(), json!(r));
    }
    if let Some(rd) = summary.get("returnData").filter(|v| !v.is_null()) {
        b.insert("returnData".into(), rd.clone());
    }
    if let Some(pid) = &t.profile_id
        && let Some(p) = profile::find(conn, pid)?
    {
        let mut pd = json!({
            "profileGuid": p.profile_guid,
            "customerIdentification": p.customer_identification,
        });
        if let Some(tok) = &t.payment_token {
            pd["paymentToken"] = json!(tok);
        }
        if let Some(iid) = &t.instrument_id
            && let Some(i) = profile::find_instrument(conn, iid)?
        {
            pd["markAsPreferred"] = json!(i.is_preferred);
        }
        b.insert("customerProfileData".into(), pd);
    }
    if !ok {
        let code = t.error_code.unwrap_or(1003);
        let msg = t.error_message.clone().unwrap_or_default();
        let mut first = Map::new();
        first.insert("message".into(), json!(msg));
        first.insert("code".into(), json!(code));
        first.insert("adapterMessage".into(), json!(msg));
        first.insert("adapterCode".into(), json!(code.to_string()));
        // Clients read only the top-level fields (the PHP client's parseCallback): they carry
        // the first error, with the same names and types as in `errors[]`.
        b.extend(first.clone());
        b.insert("errors".into(), json!([first]));
    }
    for key in ["extraData", "merchantMetaData"] {
        if let Some(v) = extra.get(key).filter(|v| !v.is_null()) {
            b.insert(key.into(), v.clone());
        }
    }
    Ok(Value::Object(b))
}

/// Writes the outbox row for `t` when it names a `callbackUrl` and is final, due now. Call it
/// inside the write transaction that stores the transaction: the callback commits with the
/// payment or not at all. PENDING transactions get theirs when they become final.
pub fn enqueue_for(conn: &mut DbConnection, t: &Transaction) -> Result<(), ServiceError> {
    if t.status() == TxStatus::Pending {
        return Ok(());
    }
    let Some(url) = callback_url(t) else {
        return Ok(());
    };
    let body = body_for(conn, t)?;
    let at = now();
    callback::insert(
        conn,
        &Callback {
            id: crate::ids::new_id(),
            transaction_uuid: Some(t.uuid.clone()),
            connector_id: t.connector_id.clone(),
            merchant_id: t.merchant_id.clone(),
            tenant_path: t.tenant_path.clone(),
            url,
            body: body.to_string(),
            body_hash: t.body_hash.clone(),
            status: "pending".into(),
            attempts: 0,
            next_attempt_at: at,
            locked_until: None,
            locked_by: None,
            last_error: None,
            created_at: at,
            updated_at: at,
            delivered_at: None,
            event_type: None,
        },
    )?;
    Ok(())
}

/// The Transaction API's check of `callbackUrl`: http(s) only, and no IP literal the policy
/// refuses (error 1002, HTTP 422, as other validation errors). Bodies that are not JSON
/// objects are left to the request parser, which answers for them.
pub fn check_request(body: &[u8], policy: AllowPrivate) -> Result<(), PayError> {
    let Ok(Value::Object(m)) = serde_json::from_slice::<Value>(body) else {
        return Ok(());
    };
    match m.get("callbackUrl") {
        Some(Value::String(u)) => target::check_url(u, policy)
            .map(|_| ())
            .map_err(|e| PayError::invalid(format!("callbackUrl: {e}"))),
        _ => Ok(()),
    }
}

// ---------- the outbox's backlog ----------

/// The outbox's deliveries due now (for the metrics scrape).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Backlog {
    pub due: u64,
    /// How long the oldest due one has waited past its time, in seconds (0 when none).
    pub oldest_due_seconds: f64,
}

/// What of the outbox is due now: every kind of delivery it holds (callbacks today).
pub fn backlog(conn: &mut DbConnection) -> Result<Backlog, ServiceError> {
    let at = now();
    let (due, oldest) = callback::due_backlog(conn, at)?;
    Ok(Backlog {
        due: u64::try_from(due).unwrap_or(0),
        oldest_due_seconds: oldest
            .map(|t| (at - t).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0),
    })
}

// ---------- retry schedule ----------

/// When attempts stop and how long to wait between them.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
    pub max_attempts: u32,
}

impl Backoff {
    pub fn from_settings(s: &crate::config::Settings) -> anyhow::Result<Backoff> {
        let secs = |v: f64, name: &str| {
            if v.is_finite() && v > 0.0 && v <= 1.0e7 {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(anyhow::anyhow!(
                    "{name} must be a positive number of seconds"
                ))
            }
        };
        let base = secs(
            s.callback_retry_base_seconds,
            "COFFER_CALLBACK_RETRY_BASE_SECONDS",
        )?;
        let cap = secs(
            s.callback_retry_cap_seconds,
            "COFFER_CALLBACK_RETRY_CAP_SECONDS",
        )?;
        if cap < base {
            anyhow::bail!("COFFER_CALLBACK_RETRY_CAP_SECONDS must not be less than the retry base");
        }
        if s.callback_max_attempts == 0 {
            anyhow::bail!("COFFER_CALLBACK_MAX_ATTEMPTS must be at least 1");
        }
        Ok(Backoff {
            base,
            cap,
            max_attempts: s.callback_max_attempts,
        })
    }

    /// The wait after failed attempt number `attempt` (1-based): base, 2·base, 4·base, … capped.
    pub fn delay_after(&self, attempt: u32) -> Duration {
        let factor = 2f64.powi(attempt.saturating_sub(1).min(60) as i32);
        let d = self.base.as_secs_f64() * factor;
        Duration::from_secs_f64(d.min(self.cap.as_secs_f64()))
    }

    /// Is another attempt due after failed attempt number `attempt`?
    pub fn retries_after(&self, attempt: u32) -> bool {
        attempt < self.max_attempts
    }
}

// ---------- console ----------

/// One callback and its attempts, as the console shows them.
#[derive(Debug, Clone)]
pub struct CallbackView {
    pub callback: Callback,
    pub attempts: Vec<Attempt>,
}

impl CallbackView {
    pub fn can_retry(&self) -> bool {
        self.callback.status != "delivered"
    }
    pub fn next_attempt(&self) -> Option<NaiveDateTime> {
        (self.callback.status == "pending").then_some(self.callback.next_attempt_at)
    }
}

/// The transaction, if the actor's scope covers its merchant (else not found).
fn visible_transaction(
    conn: &mut DbConnection,
    actor: &Actor,
    uuid: &str,
) -> Result<Transaction, ServiceError> {
    match txm::find(conn, uuid)? {
        Some(t) if actor.scope.covers_merchant(&t.merchant_id, &t.tenant_path) => Ok(t),
        _ => Err(ServiceError::NotFound),
    }
}

/// The callbacks of a transaction in the actor's scope, with their attempts.
pub fn for_transaction(
    conn: &mut DbConnection,
    actor: &Actor,
    tx_uuid: &str,
) -> Result<Vec<CallbackView>, ServiceError> {
    let t = visible_transaction(conn, actor, tx_uuid)?;
    let mut out = vec![];
    for c in callback::for_transaction(conn, &t.uuid)? {
        let attempts = callback::attempts_of(conn, &c.id)?;
        out.push(CallbackView {
            callback: c,
            attempts,
        });
    }
    Ok(out)
}

/// The console's retry: a failed (or still pending) callback of a transaction in the actor's
/// scope is made due now. Delivered ones cannot be retried. Audited.
pub fn retry(
    conn: &mut DbConnection,
    actor: &Actor,
    tx_uuid: &str,
    callback_id: &str,
) -> Result<Callback, ServiceError> {
    write_tx(conn, |conn| {
        let t = visible_transaction(conn, actor, tx_uuid)?;
        let c = match callback::find(conn, callback_id)? {
            Some(c) if c.transaction_uuid.as_deref() == Some(t.uuid.as_str()) => c,
            _ => return Err(ServiceError::NotFound),
        };
        if c.status == "delivered" {
            return Err(ServiceError::Conflict(
                "This callback has been delivered already.".into(),
            ));
        }
        let at = now();
        callback::reschedule(conn, &c.id, at)?;
        let tenant_id = crate::models::merchant::find(conn, &t.merchant_id)?
            .map(|m| m.tenant_id)
            .unwrap_or_default();
        audit::record(
            conn,
            actor,
            &Place::merchant(&tenant_id, &t.tenant_path, &t.merchant_id),
            Change {
                action: "callback.retry",
                object_type: "callback",
                object_id: &c.id,
                summary: format!("Retried the callback of transaction {}", t.uuid),
                changes: vec![("status", Some(c.status.clone()), Some("pending".into()))],
            },
        )?;
        callback::find(conn, &c.id)?.ok_or(ServiceError::NotFound)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_and_stops_at_the_cap() {
        let b = Backoff {
            base: Duration::from_secs(2),
            cap: Duration::from_secs(3600),
            max_attempts: 10,
        };
        let secs: Vec<u64> = (1..=13).map(|n| b.delay_after(n).as_secs()).collect();
        assert_eq!(
            secs,
            [2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 3600, 3600]
        );
        assert!(
            b.delay_after(1) <= Duration::from_secs(5),
            "first retry within 5 s"
        );
        assert!(b.retries_after(9));
        assert!(!b.retries_after(10), "the tenth failure is the last");
        assert_eq!(b.delay_after(u32::MAX), Duration::from_secs(3600));
        let small = Backoff {
            base: Duration::from_millis(250),
            cap: Duration::from_secs(1),
            max_attempts: 3,
        };
        assert_eq!(small.delay_after(1), Duration::from_millis(250));
        assert_eq!(small.delay_after(2), Duration::from_millis(500));
        assert_eq!(small.delay_after(3), Duration::from_secs(1));
        assert_eq!(small.delay_after(4), Duration::from_secs(1));
    }

    #[test]
    fn settings_are_checked() {
        let dir = std::path::Path::new("/nonexistent");
        let mut s = crate::config::Settings::for_tests(dir, None);
        assert!(Backoff::from_settings(&s).is_ok());
        s.callback_retry_base_seconds = 0.0;
        assert!(Backoff::from_settings(&s).is_err());
        s.callback_retry_base_seconds = f64::NAN;
        assert!(Backoff::from_settings(&s).is_err());
        s.callback_retry_base_seconds = 10.0;
        s.callback_retry_cap_seconds = 5.0;
        assert!(Backoff::from_settings(&s).is_err());
        s.callback_retry_cap_seconds = 50.0;
        s.callback_max_attempts = 0;
        assert!(Backoff::from_settings(&s).is_err());
    }
}
