//! Runs of the expiry scan and of the simulated account updater (`lifecycle_runs`): a cursor
//! committed with each batch, so that an interrupted run is continued, and the daily scan's
//! lease.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::lifecycle_runs;

/// The row holding the daily expiry scan's lease.
pub const DAILY_SCAN: &str = "expiry_scan";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = lifecycle_runs)]
pub struct Run {
    pub id: String,
    /// `expiry_scan` or `account_updater`.
    pub kind: String,
    pub container_id: Option<String>,
    /// `running` or `done`.
    pub status: String,
    /// The id of the last instrument handled (keyset pagination).
    pub cursor: Option<String>,
    pub done: i64,
    pub changed: i64,
    pub started_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
}

pub fn insert(conn: &mut DbConnection, r: &Run) -> QueryResult<()> {
    diesel::insert_into(lifecycle_runs::table)
        .values(r)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Run>> {
    lifecycle_runs::table
        .find(id)
        .select(Run::as_select())
        .first(conn)
        .optional()
}

/// The unfinished run of `kind` for `container_id`, if one was interrupted.
pub fn unfinished(
    conn: &mut DbConnection,
    kind: &str,
    container_id: &str,
) -> QueryResult<Option<Run>> {
    lifecycle_runs::table
        .filter(lifecycle_runs::kind.eq(kind))
        .filter(lifecycle_runs::container_id.eq(container_id))
        .filter(lifecycle_runs::status.eq("running"))
        .order(lifecycle_runs::started_at.asc())
        .select(Run::as_select())
        .first(conn)
        .optional()
}

/// Commits a batch's progress: the new cursor and counts.
pub fn advance(
    conn: &mut DbConnection,
    id: &str,
    cursor: &str,
    done: i64,
    changed: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(lifecycle_runs::table.find(id))
        .set((
            lifecycle_runs::cursor.eq(Some(cursor)),
            lifecycle_runs::done.eq(lifecycle_runs::done + done),
            lifecycle_runs::changed.eq(lifecycle_runs::changed + changed),
            lifecycle_runs::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn finish(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(lifecycle_runs::table.find(id))
        .set((
            lifecycle_runs::status.eq("done"),
            lifecycle_runs::finished_at.eq(Some(at)),
            lifecycle_runs::updated_at.eq(at),
            lifecycle_runs::locked_until.eq(None::<NaiveDateTime>),
            lifecycle_runs::locked_by.eq(None::<String>),
        ))
        .execute(conn)
}

/// Takes the daily scan's lease for `worker` until `until` when it is free and the last daily
/// scan finished before `due_before` (or never ran): `true` when taken. The condition is in the
/// UPDATE itself, so of several processes one gets it.
pub fn take_daily_lease(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    due_before: NaiveDateTime,
) -> QueryResult<bool> {
    let exists = find(conn, DAILY_SCAN)?.is_some();
    if !exists {
        let r = Run {
            id: DAILY_SCAN.into(),
            kind: DAILY_SCAN.into(),
            container_id: None,
            status: "done".into(),
            cursor: None,
            done: 0,
            changed: 0,
            started_at: now,
            updated_at: now,
            finished_at: None,
            locked_until: None,
            locked_by: None,
        };
        // Two processes may insert at once: the loser's insert fails and it tries next time.
        if insert(conn, &r).is_err() {
            return Ok(false);
        }
    }
    let n = diesel::update(
        lifecycle_runs::table
            .filter(lifecycle_runs::id.eq(DAILY_SCAN))
            .filter(
                lifecycle_runs::locked_until
                    .is_null()
                    .or(lifecycle_runs::locked_until.lt(now)),
            )
            .filter(
                lifecycle_runs::finished_at
                    .is_null()
                    .or(lifecycle_runs::finished_at.lt(due_before)),
            ),
    )
    .set((
        lifecycle_runs::locked_until.eq(Some(until)),
        lifecycle_runs::locked_by.eq(Some(worker)),
        lifecycle_runs::status.eq("running"),
        lifecycle_runs::started_at.eq(now),
        lifecycle_runs::updated_at.eq(now),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
