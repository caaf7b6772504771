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
    /// The cards to ask about, counted when the run started (the progress page's total).
    pub total: i64,
    /// Account updater changes, by kind (`changed` is their sum).
    pub reissued: i64,
    pub replaced: i64,
    pub closed: i64,
    /// Who started the run: the audit actor of its changes and card reads (no id: the
    /// command line).
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
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

/// A batch's progress: the new cursor, the cards seen and the changes by kind.
pub struct Advance<'a> {
    pub cursor: &'a str,
    pub done: i64,
    pub reissued: i64,
    pub replaced: i64,
    pub closed: i64,
    pub at: NaiveDateTime,
}

/// Commits a batch's progress: the new cursor and counts.
pub fn advance(conn: &mut DbConnection, id: &str, a: &Advance<'_>) -> QueryResult<usize> {
    diesel::update(lifecycle_runs::table.find(id))
        .set((
            lifecycle_runs::cursor.eq(Some(a.cursor)),
            lifecycle_runs::done.eq(lifecycle_runs::done + a.done),
            lifecycle_runs::changed
                .eq(lifecycle_runs::changed + (a.reissued + a.replaced + a.closed)),
            lifecycle_runs::reissued.eq(lifecycle_runs::reissued + a.reissued),
            lifecycle_runs::replaced.eq(lifecycle_runs::replaced + a.replaced),
            lifecycle_runs::closed.eq(lifecycle_runs::closed + a.closed),
            lifecycle_runs::updated_at.eq(a.at),
        ))
        .execute(conn)
}

/// Takes (or renews) the lease of the running run `id` for `worker` until `until`: `true` when
/// this worker holds it now. The condition is in the UPDATE, so of several processes one gets
/// it; on PostgreSQL the row stays locked until the transaction ends, so a batch done under
/// the lease is never done by another process too.
pub fn take_lease(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> QueryResult<bool> {
    let n = diesel::update(
        lifecycle_runs::table
            .filter(lifecycle_runs::id.eq(id))
            .filter(lifecycle_runs::status.eq("running"))
            .filter(
                lifecycle_runs::locked_by
                    .eq(worker)
                    .or(lifecycle_runs::locked_until.is_null())
                    .or(lifecycle_runs::locked_until.lt(now)),
            ),
    )
    .set((
        lifecycle_runs::locked_until.eq(Some(until)),
        lifecycle_runs::locked_by.eq(Some(worker)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Gives the lease of run `id` back, if `worker` holds it (another process may go on at once).
pub fn release(conn: &mut DbConnection, id: &str, worker: &str) -> QueryResult<usize> {
    diesel::update(
        lifecycle_runs::table
            .filter(lifecycle_runs::id.eq(id))
            .filter(lifecycle_runs::locked_by.eq(worker)),
    )
    .set((
        lifecycle_runs::locked_until.eq(None::<NaiveDateTime>),
        lifecycle_runs::locked_by.eq(None::<String>),
    ))
    .execute(conn)
}

/// The running runs of `kind` whose lease is free or expired at `now` (a background worker
/// picks one), oldest first.
pub fn runnable(conn: &mut DbConnection, kind: &str, now: NaiveDateTime) -> QueryResult<Vec<Run>> {
    lifecycle_runs::table
        .filter(lifecycle_runs::kind.eq(kind))
        .filter(lifecycle_runs::status.eq("running"))
        .filter(
            lifecycle_runs::locked_until
                .is_null()
                .or(lifecycle_runs::locked_until.lt(now)),
        )
        .order(lifecycle_runs::started_at.asc())
        .select(Run::as_select())
        .load(conn)
}

/// The newest `limit` runs of `kind` on `container_id` (the container page).
pub fn of_container(
    conn: &mut DbConnection,
    kind: &str,
    container_id: &str,
    limit: i64,
) -> QueryResult<Vec<Run>> {
    crate::on_inner!(conn, c => lifecycle_runs::table
        .filter(lifecycle_runs::kind.eq(kind))
        .filter(lifecycle_runs::container_id.eq(container_id))
        .order((lifecycle_runs::started_at.desc(), lifecycle_runs::id.desc()))
        .limit(limit)
        .select(Run::as_select())
        .load(c))
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
            total: 0,
            reissued: 0,
            replaced: 0,
            closed: 0,
            actor_id: None,
            actor_name: None,
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
