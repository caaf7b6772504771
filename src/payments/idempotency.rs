//! Idempotency-Key of the Transaction API: a retry with the same key answers the first answer
//! and charges nothing again.
//!
//! One write transaction holds everything: the claim (a row of `idempotency_keys`, unique per
//! connector and key) is inserted first, then the payment runs (a savepoint of the same
//! transaction), then the answer is stored in the claim, and all of it commits together. So a
//! crash (`kill -9`) at any point leaves either the payment and its stored answer, or neither:
//! there is no window where a payment is committed without its answer, and a retry after the
//! crash either replays or runs anew, never charges twice.
//!
//! A concurrent request with the same key waits for the first: on PostgreSQL its insert of the
//! claim blocks on the unique index until the first commits (then it reads the stored answer)
//! or rolls back (then it claims the key itself), at most `COFFER_IDEMPOTENCY_WAIT_MS`, then it answers
//! "busy" (409); on SQLite writers queue on the database's write lock. Only answers of requests
//! that committed are stored: a refused request (validation, logical error) writes nothing, its
//! key stays free and a retry runs anew.

use chrono::{Duration, NaiveDateTime, Utc};
use sha2::{Digest, Sha256};

use crate::db::{DbConnection, write_tx};
use crate::gateway::errors::ErrorCode;
use crate::models::connector::Connector;
use crate::models::idempotency_key::{self as model, IdempotencyKey};
use crate::payments::engine;
use crate::payments::error::{Kind, PayError};
use crate::payments::means::PageSettings;
use crate::payments::request::Call;
use crate::vault::keyring::Keyring;

/// How long a stored answer is replayed.
pub const TTL_HOURS: i64 = 24;
/// The longest key accepted.
pub const MAX_LEN: usize = 255;

/// A valid Idempotency-Key: 1 to 255 printable ASCII characters (space to `~`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key(String);

impl Key {
    /// Checks the raw header value; the message never echoes it.
    pub fn parse(raw: &[u8]) -> Result<Key, PayError> {
        if raw.is_empty() || raw.len() > MAX_LEN {
            return Err(PayError::invalid(format!(
                "Idempotency-Key: must be 1 to {MAX_LEN} characters long"
            )));
        }
        if !raw.iter().all(|b| (0x20..=0x7e).contains(b)) {
            return Err(PayError::invalid(
                "Idempotency-Key: only printable ASCII characters are allowed",
            ));
        }
        Ok(Key(String::from_utf8_lossy(raw).into_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// An answer of the Transaction API: the first one, or the stored first one replayed.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
}

/// The SHA-256 (hex) the stored claim keeps of a request: its transaction type and raw body.
pub fn request_hash(kind: &str, body: &[u8]) -> String {
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update(b"\n");
    h.update(body);
    hex::encode(h.finalize())
}

fn busy() -> PayError {
    PayError::new(
        Kind::Busy,
        ErrorCode::RequestFailed,
        "Idempotency-Key: a request with this key is still being processed; retry later",
    )
}

fn mismatch() -> PayError {
    PayError::invalid("Idempotency-Key: already used with a different request")
}

/// The stored answer of `row` for a request hashing to `hash`.
fn replay(row: IdempotencyKey, hash: &str) -> Result<Reply, PayError> {
    if row.body_hash != hash {
        return Err(mismatch());
    }
    match (row.status.as_str(), row.response_status, row.response) {
        (model::DONE, Some(status), Some(body)) => Ok(Reply {
            status: u16::try_from(status).unwrap_or(200),
            body: body.into_bytes(),
            replayed: true,
        }),
        _ => Err(busy()),
    }
}

/// What makes a request idempotent: its key, if it has one, its raw body, and how long it
/// waits for a concurrent request with that key.
pub struct Once<'a> {
    pub key: Option<&'a Key>,
    /// The request body exactly as received.
    pub raw_body: &'a [u8],
    pub wait: std::time::Duration,
}

/// Runs the payment `call` once per key (see the module): without a key, as always.
pub fn process(
    conn: &mut DbConnection,
    keyring: &Keyring,
    pages: &PageSettings,
    connector: &Connector,
    call: Call<'_>,
    once: Once<'_>,
) -> Result<Reply, PayError> {
    let Once {
        key,
        raw_body,
        wait,
    } = once;
    let kind = call.kind;
    let Some(key) = key else {
        let answer = engine::process(conn, keyring, pages, connector, call)?;
        return Ok(Reply {
            status: 200,
            body: json(&answer.body)?,
            replayed: false,
        });
    };
    let hash = request_hash(kind.as_str(), raw_body);
    let now = Utc::now().naive_utc();
    let reply = write_tx(conn, |conn| {
        if let Some(taken) = claim(conn, &connector.id, key, &hash, now, wait)? {
            return replay(taken, &hash);
        }
        let answer = engine::process_within(conn, keyring, pages, connector, call)?;
        let body = json(&answer.body)?;
        let text = String::from_utf8_lossy(&body).into_owned();
        model::complete(conn, &connector.id, key.as_str(), 200, &text)?;
        Ok(Reply {
            status: 200,
            body,
            replayed: false,
        })
    })?;
    if !reply.replayed {
        engine::after_commit(conn, kind)?;
    }
    Ok(reply)
}

/// Claims `key` for this request (`None`), or finds the unexpired row of the request that
/// holds it, committed by now (`Some`). Every wait for a concurrent holder (on its claim, or on
/// an expired row it is replacing) is bounded by `wait`, then the request is busy.
fn claim(
    conn: &mut DbConnection,
    connector_id: &str,
    key: &Key,
    hash: &str,
    now: NaiveDateTime,
    wait: std::time::Duration,
) -> Result<Option<IdempotencyKey>, PayError> {
    let row = IdempotencyKey {
        connector_id: connector_id.to_string(),
        key: key.as_str().to_string(),
        body_hash: hash.to_string(),
        status: model::IN_FLIGHT.to_string(),
        response_status: None,
        response: None,
        created_at: now,
        expires_at: now + Duration::hours(TTL_HOURS),
    };
    crate::db::set_lock_timeout(conn, Some(wait))?;
    let taken = match claim_or_find(conn, &row, now) {
        Err(e) if crate::db::is_lock_timeout(&e) => return Err(busy()),
        other => other?,
    };
    crate::db::set_lock_timeout(conn, None)?;
    match taken {
        Taken::Mine => Ok(None),
        Taken::By(found) => Ok(Some(found)),
        // Held by a request that went away and whose row expired meanwhile: retry.
        Taken::Gone => Err(busy()),
    }
}

enum Taken {
    Mine,
    By(IdempotencyKey),
    Gone,
}

fn claim_or_find(
    conn: &mut DbConnection,
    row: &IdempotencyKey,
    now: NaiveDateTime,
) -> diesel::QueryResult<Taken> {
    if let Some(found) = model::find(conn, &row.connector_id, &row.key)?
        && found.expires_at > now
    {
        return Ok(Taken::By(found));
    }
    model::delete_expired_key(conn, &row.connector_id, &row.key, now)?;
    if model::claim(conn, row)? {
        return Ok(Taken::Mine);
    }
    // Another request claimed it first; it has committed by now (or the claim would be ours).
    Ok(model::find(conn, &row.connector_id, &row.key)?.map_or(Taken::Gone, Taken::By))
}

fn json(v: &serde_json::Value) -> Result<Vec<u8>, PayError> {
    serde_json::to_vec(v).map_err(PayError::internal)
}

/// Deletes the keys whose 24 hours are over (each process's background loop).
pub fn purge_expired(
    conn: &mut DbConnection,
    now: chrono::DateTime<Utc>,
) -> Result<usize, crate::error::ServiceError> {
    write_tx(conn, |tx| Ok(model::purge_expired(tx, now.naive_utc())?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_one_to_255_printable_ascii_characters() {
        assert!(Key::parse(b"order-1 retry").is_ok());
        assert!(Key::parse(&[b'k'; 255]).is_ok());
        assert!(Key::parse(b"").is_err());
        assert!(Key::parse(&[b'k'; 256]).is_err());
        assert!(Key::parse(b"tab\there").is_err());
        assert!(Key::parse("caf\u{e9}".as_bytes()).is_err());
        assert!(Key::parse(b"del\x7f").is_err());
    }

    #[test]
    fn the_hash_covers_the_type_and_the_body() {
        assert_ne!(
            request_hash("debit", b"{}"),
            request_hash("preauthorize", b"{}")
        );
        assert_ne!(request_hash("debit", b"{}"), request_hash("debit", b"{ }"));
        assert_eq!(request_hash("debit", b"{}").len(), 64);
    }
}
