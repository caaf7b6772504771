use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{user_recovery_codes, user_two_factor};

/// A user's TOTP secret (sealed by the vault, bound to the user id): pending until a first
/// code switches it on.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_two_factor)]
pub struct TwoFactor {
    pub user_id: String,
    pub secret_sealed: String,
    pub enabled: bool,
    /// The newest time step whose code was accepted: older and equal steps are refused.
    pub last_step: Option<i64>,
    pub created_at: NaiveDateTime,
    pub enabled_at: Option<NaiveDateTime>,
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = user_recovery_codes)]
pub struct RecoveryCode {
    pub id: String,
    pub user_id: String,
    pub code_hash: String,
    pub used_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

pub fn find(conn: &mut DbConnection, user_id: &str) -> QueryResult<Option<TwoFactor>> {
    user_two_factor::table
        .find(user_id)
        .select(TwoFactor::as_select())
        .first(conn)
        .optional()
}

/// Whether the user has two-factor on (a pending setup does not count).
pub fn is_enabled(conn: &mut DbConnection, user_id: &str) -> QueryResult<bool> {
    Ok(find(conn, user_id)?.is_some_and(|t| t.enabled))
}

/// Puts a new pending secret in place of a pending one (or of none); `false` when the user's
/// two-factor is on. Concurrent setups of one user are serialized on the user's row, so the
/// second one replaces the first instead of failing on the key. Runs inside the caller's
/// transaction.
pub fn put_pending(conn: &mut DbConnection, row: &TwoFactor) -> QueryResult<bool> {
    crate::models::user::lock(conn, &row.user_id)?;
    if is_enabled(conn, &row.user_id)? {
        return Ok(false);
    }
    diesel::delete(user_two_factor::table.find(&row.user_id)).execute(conn)?;
    diesel::insert_into(user_two_factor::table)
        .values(row)
        .execute(conn)?;
    Ok(true)
}

/// Switches the pending secret on with the step of its first code; `false` when it was not
/// pending any more (a concurrent enrollment).
pub fn enable(
    conn: &mut DbConnection,
    user_id: &str,
    step: i64,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        user_two_factor::table
            .find(user_id)
            .filter(user_two_factor::enabled.eq(false)),
    )
    .set((
        user_two_factor::enabled.eq(true),
        user_two_factor::last_step.eq(Some(step)),
        user_two_factor::enabled_at.eq(Some(at)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Accepts `step` if it is newer than the last accepted one, atomically: of two requests with
/// the same code only one gets `true`.
pub fn accept_step(conn: &mut DbConnection, user_id: &str, step: i64) -> QueryResult<bool> {
    let n = diesel::update(
        user_two_factor::table
            .find(user_id)
            .filter(user_two_factor::enabled.eq(true))
            .filter(
                user_two_factor::last_step
                    .is_null()
                    .or(user_two_factor::last_step.lt(step)),
            ),
    )
    .set(user_two_factor::last_step.eq(Some(step)))
    .execute(conn)?;
    Ok(n == 1)
}

/// Removes the user's two-factor secret and recovery codes.
pub fn remove(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(user_recovery_codes::table.filter(user_recovery_codes::user_id.eq(user_id)))
        .execute(conn)?;
    diesel::delete(user_two_factor::table.find(user_id)).execute(conn)
}

pub fn insert_code(conn: &mut DbConnection, code: &RecoveryCode) -> QueryResult<()> {
    diesel::insert_into(user_recovery_codes::table)
        .values(code)
        .execute(conn)
        .map(|_| ())
}

pub fn delete_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<usize> {
    diesel::delete(user_recovery_codes::table.filter(user_recovery_codes::user_id.eq(user_id)))
        .execute(conn)
}

/// Marks the unused code with this hash used; `false` when there is none (wrong, or used
/// already, also by a concurrent request).
pub fn use_code(
    conn: &mut DbConnection,
    user_id: &str,
    code_hash: &str,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        user_recovery_codes::table
            .filter(user_recovery_codes::user_id.eq(user_id))
            .filter(user_recovery_codes::code_hash.eq(code_hash))
            .filter(user_recovery_codes::used_at.is_null()),
    )
    .set(user_recovery_codes::used_at.eq(Some(at)))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn unused_codes(conn: &mut DbConnection, user_id: &str) -> QueryResult<i64> {
    user_recovery_codes::table
        .filter(user_recovery_codes::user_id.eq(user_id))
        .filter(user_recovery_codes::used_at.is_null())
        .count()
        .get_result(conn)
}
