use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::login_throttle;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle)]
#[diesel(treat_none_as_null = true)]
pub struct Throttle {
    pub key: String,
    pub failures: i32,
    pub first_failure_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Throttle>> {
    login_throttle::table
        .find(key)
        .select(Throttle::as_select())
        .first(conn)
        .optional()
}

/// Writes the row (insert, or update when it exists). Runs inside the caller's transaction.
pub fn save(conn: &mut DbConnection, t: &Throttle) -> QueryResult<()> {
    let n = diesel::update(login_throttle::table.find(&t.key))
        .set(t)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(login_throttle::table)
            .values(t)
            .execute(conn)?;
    }
    Ok(())
}

pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)
}

/// Locks the key's row until the end of the caller's write transaction (on PostgreSQL the
/// UPDATE takes the row lock; on SQLite `write_tx` already holds the database's write lock),
/// so that concurrent attempts for one key are counted one after the other. Touches no value.
pub fn lock_row(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::update(login_throttle::table.find(key))
        .set(login_throttle::key.eq(login_throttle::key))
        .execute(conn)
}

/// Takes back one counted attempt (one that turned out to be right), never below zero.
pub fn refund(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::update(
        login_throttle::table
            .find(key)
            .filter(login_throttle::failures.gt(0)),
    )
    .set(login_throttle::failures.eq(login_throttle::failures - 1))
    .execute(conn)
}

/// Makes sure the key has a row (a concurrent creator wins; the row is then theirs), so that
/// [`lock_row`] always has a row to lock: outside any transaction.
pub fn ensure(conn: &mut DbConnection, key: &str, at: NaiveDateTime) -> QueryResult<()> {
    if find(conn, key)?.is_some() {
        return Ok(());
    }
    let row = Throttle {
        key: key.to_string(),
        failures: 0,
        first_failure_at: at,
        locked_until: None,
    };
    match diesel::insert_into(login_throttle::table)
        .values(&row)
        .execute(conn)
    {
        Err(diesel::result::Error::DatabaseError(
            diesel::result::DatabaseErrorKind::UniqueViolation,
            _,
        )) => Ok(()),
        r => r.map(|_| ()),
    }
}

/// Forgets the key's count and lock (the row stays, for [`lock_row`]).
pub fn reset(conn: &mut DbConnection, key: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(login_throttle::table.find(key))
        .set((
            login_throttle::failures.eq(0),
            login_throttle::first_failure_at.eq(at),
            login_throttle::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}
