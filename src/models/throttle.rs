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

/// Counts one event for `key` in a fixed window of `window` (the window starts with the first
/// event counted in it, kept in `first_failure_at`; `failures` is the count). `None` when it was
/// counted (at most `limit` per window), else the seconds until the window ends. Runs inside
/// the caller's write transaction: an allowed event is one `UPDATE`; a refused one an `UPDATE`
/// that matches nothing and a `SELECT`; the first event of a key (or of a new window) one more
/// statement. On PostgreSQL the `UPDATE` takes the row lock, so concurrent processes count one
/// after the other; the first insert is a savepoint, so a concurrent creator only makes this
/// one count again.
pub fn count_in_window(
    conn: &mut DbConnection,
    key: &str,
    limit: i32,
    at: NaiveDateTime,
    window: chrono::Duration,
) -> QueryResult<Option<i64>> {
    let window_start = at - window;
    for _ in 0..5 {
        let counted = diesel::update(
            login_throttle::table
                .find(key)
                .filter(login_throttle::first_failure_at.gt(window_start))
                .filter(login_throttle::failures.lt(limit)),
        )
        .set(login_throttle::failures.eq(login_throttle::failures + 1))
        .execute(conn)?;
        if counted == 1 {
            return Ok(None);
        }
        match find(conn, key)? {
            // A row that appeared since the UPDATE's snapshot (a concurrent first event just
            // committed it) and still has room: count again instead of refusing.
            Some(t) if t.first_failure_at > window_start && t.failures < limit => {}
            Some(t) if t.first_failure_at > window_start => {
                let left = (t.first_failure_at + window - at).num_seconds();
                return Ok(Some(left.max(1)));
            }
            Some(_) => {
                // The window is over: a new one starts with this event.
                let n = diesel::update(
                    login_throttle::table
                        .find(key)
                        .filter(login_throttle::first_failure_at.le(window_start)),
                )
                .set((
                    login_throttle::failures.eq(1),
                    login_throttle::first_failure_at.eq(at),
                ))
                .execute(conn)?;
                if n == 1 {
                    return Ok(None);
                }
            }
            None => {
                let row = Throttle {
                    key: key.to_string(),
                    failures: 1,
                    first_failure_at: at,
                    locked_until: None,
                };
                let inserted = conn.transaction(|c| {
                    diesel::insert_into(login_throttle::table)
                        .values(&row)
                        .execute(c)
                });
                match inserted {
                    Ok(_) => return Ok(None),
                    Err(e) if crate::db::is_unique_violation(&e) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    // Still racing after several rounds: refuse for a second rather than count nothing.
    Ok(Some(1))
}

/// Deletes the rows of keys starting with `prefix` whose last window started before `before`
/// (the counts of [`count_in_window`] that are over), so that rows of one-off client addresses
/// do not pile up. Never touches sign-in throttling keys unless `prefix` names them.
pub fn purge_windows(
    conn: &mut DbConnection,
    prefix: &str,
    before: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(
        login_throttle::table
            .filter(
                login_throttle::key
                    .like(crate::db::like_prefix(prefix))
                    .escape('\\'),
            )
            .filter(login_throttle::first_failure_at.lt(before))
            .filter(login_throttle::locked_until.is_null()),
    )
    .execute(conn)
}
