//! Rows of `idempotency_keys`: the Transaction API's Idempotency-Key claims and stored answers.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::idempotency_keys as ik;

/// The claim is being processed (only ever seen inside the claiming transaction).
pub const IN_FLIGHT: &str = "in_flight";
/// The answer is stored (committed with the payment it answers).
pub const DONE: &str = "done";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = ik)]
pub struct IdempotencyKey {
    pub connector_id: String,
    pub key: String,
    /// SHA-256 (hex) of the request (transaction type and raw body); never the body itself.
    pub body_hash: String,
    pub status: String,
    pub response_status: Option<i32>,
    pub response: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

pub fn find(
    conn: &mut DbConnection,
    connector_id: &str,
    key: &str,
) -> QueryResult<Option<IdempotencyKey>> {
    ik::table
        .find((connector_id, key))
        .select(IdempotencyKey::as_select())
        .first(conn)
        .optional()
}

/// Inserts the claim in a savepoint of the caller's transaction: `Ok(false)` when the key is
/// already there (on PostgreSQL after waiting for a concurrent claimer to commit or roll back).
pub fn claim(conn: &mut DbConnection, row: &IdempotencyKey) -> QueryResult<bool> {
    let inserted = conn.transaction(|c| diesel::insert_into(ik::table).values(row).execute(c));
    match inserted {
        Ok(_) => Ok(true),
        Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Stores the answer of a claim (inside the transaction that made the claim).
pub fn complete(
    conn: &mut DbConnection,
    connector_id: &str,
    key: &str,
    status: i32,
    response: &str,
) -> QueryResult<usize> {
    diesel::update(ik::table.find((connector_id, key)))
        .set((
            ik::status.eq(DONE),
            ik::response_status.eq(Some(status)),
            ik::response.eq(Some(response)),
        ))
        .execute(conn)
}

/// Deletes the key of `connector_id` if it has expired at `now` (so that it may be claimed anew).
pub fn delete_expired_key(
    conn: &mut DbConnection,
    connector_id: &str,
    key: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        ik::table
            .find((connector_id, key))
            .filter(ik::expires_at.le(now)),
    )
    .execute(conn)
}

/// Deletes every key expired at `now`.
pub fn purge_expired(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(ik::table.filter(ik::expires_at.le(now))).execute(conn)
}
