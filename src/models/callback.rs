//! The callback outbox (`callbacks`) and the log of delivery attempts (`callback_attempts`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{callback_attempts, callbacks};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = callbacks)]
pub struct Callback {
    pub id: String,
    /// The transaction of a callback; `None` for a lifecycle event.
    pub transaction_uuid: Option<String>,
    pub connector_id: String,
    pub merchant_id: String,
    pub tenant_path: String,
    pub url: String,
    /// The exact JSON bytes sent (and signed) on every attempt.
    pub body: String,
    /// `sha512` or `md5`, as the transaction's request used.
    pub body_hash: String,
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Attempts started so far (claimed), including one in flight.
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    /// The lease of the process sending it now: no other process claims it before this time.
    pub locked_until: Option<NaiveDateTime>,
    pub locked_by: Option<String>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub delivered_at: Option<NaiveDateTime>,
    /// Set for a lifecycle event (`profile.created`, …): the row's id is then the event id and
    /// there is no `transaction_uuid`. `None` for a transaction callback.
    pub event_type: Option<String>,
}

impl Callback {
    /// The kind of delivery this outbox row is, as the metrics name it
    /// (`coffer_delivery_failures_total{kind}`): `callbacks` (the Transaction API's callbacks,
    /// the only kind the outbox holds so far). A kind that joins the outbox (lifecycle
    /// `webhooks`) answers its own name here, from its row.
    pub fn kind(&self) -> &'static str {
        "callbacks"
    }
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = callback_attempts)]
pub struct Attempt {
    pub id: String,
    pub callback_id: String,
    pub attempt: i32,
    pub started_at: NaiveDateTime,
    pub duration_ms: i64,
    pub http_status: Option<i32>,
    /// `delivered`, `rejected` (an answer other than 200 `OK`), `error` (timeout, connection)
    /// or `refused` (the target address is not allowed).
    pub outcome: String,
    pub response_excerpt: Option<String>,
    pub error: Option<String>,
    /// The process that made it (host, pid and a per-start id).
    pub worker: String,
}

pub fn insert(conn: &mut DbConnection, c: &Callback) -> QueryResult<()> {
    diesel::insert_into(callbacks::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Callback>> {
    callbacks::table
        .find(id)
        .select(Callback::as_select())
        .first(conn)
        .optional()
}

pub fn for_transaction(conn: &mut DbConnection, uuid: &str) -> QueryResult<Vec<Callback>> {
    callbacks::table
        .filter(callbacks::transaction_uuid.eq(uuid))
        .order((callbacks::created_at.asc(), callbacks::id.asc()))
        .select(Callback::as_select())
        .load(conn)
}

pub fn attempts_of(conn: &mut DbConnection, callback_id: &str) -> QueryResult<Vec<Attempt>> {
    callback_attempts::table
        .filter(callback_attempts::callback_id.eq(callback_id))
        .order(callback_attempts::attempt.asc())
        .select(Attempt::as_select())
        .load(conn)
}

pub fn insert_attempt(conn: &mut DbConnection, a: &Attempt) -> QueryResult<()> {
    diesel::insert_into(callback_attempts::table)
        .values(a)
        .execute(conn)
        .map(|_| ())
}

/// Is any callback due (and not leased) at `now`? A cheap read before a claim's write lock.
pub fn any_due(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<bool> {
    callbacks::table
        .filter(callbacks::status.eq("pending"))
        .filter(callbacks::next_attempt_at.le(now))
        .filter(
            callbacks::locked_until
                .is_null()
                .or(callbacks::locked_until.lt(now)),
        )
        .select(callbacks::id)
        .first::<String>(conn)
        .optional()
        .map(|r| r.is_some())
}

/// Due callbacks at `now` (pending, next attempt time passed; leased ones included) and the
/// earliest next attempt time among them: one range of the `callbacks_due` index.
pub fn due_backlog(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> QueryResult<(i64, Option<NaiveDateTime>)> {
    use diesel::dsl::{count_star, min};
    callbacks::table
        .filter(callbacks::status.eq("pending"))
        .filter(callbacks::next_attempt_at.le(now))
        .select((count_star(), min(callbacks::next_attempt_at)))
        .first(conn)
}

/// Ids of due callbacks, oldest due first. On PostgreSQL the rows are locked with
/// `FOR UPDATE SKIP LOCKED`, so that processes claiming at once take different rows instead of
/// waiting for each other; [`take_lease`] re-checks the lease either way.
pub fn due_ids(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<String>> {
    macro_rules! due {
        () => {
            callbacks::table
                .filter(callbacks::status.eq("pending"))
                .filter(callbacks::next_attempt_at.le(now))
                .filter(
                    callbacks::locked_until
                        .is_null()
                        .or(callbacks::locked_until.lt(now)),
                )
                .order(callbacks::next_attempt_at.asc())
                .limit(limit)
                .select(callbacks::id)
        };
    }
    match conn {
        DbConnection::Postgresql(pg) => due!().for_update().skip_locked().load(pg),
        DbConnection::Sqlite(c) => due!().load(c),
    }
}

/// Takes the lease of one due callback for `worker` until `until` and counts the attempt.
/// The condition is checked again in the UPDATE itself, so of two processes that saw the same
/// row only one gets it (the other's UPDATE matches no row). Returns the row when taken.
pub fn take_lease(
    conn: &mut DbConnection,
    id: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
    worker: &str,
) -> QueryResult<Option<Callback>> {
    let n = diesel::update(
        callbacks::table
            .filter(callbacks::id.eq(id))
            .filter(callbacks::status.eq("pending"))
            .filter(callbacks::next_attempt_at.le(now))
            .filter(
                callbacks::locked_until
                    .is_null()
                    .or(callbacks::locked_until.lt(now)),
            ),
    )
    .set((
        callbacks::locked_until.eq(Some(until)),
        callbacks::locked_by.eq(Some(worker)),
        callbacks::attempts.eq(callbacks::attempts + 1),
        callbacks::updated_at.eq(now),
    ))
    .execute(conn)?;
    if n == 0 {
        return Ok(None);
    }
    find(conn, id)
}

/// After an attempt: the new state, written only while `worker` still holds the lease of
/// attempt `attempt` (a lease that expired and was taken by another process is left alone),
/// except `delivered`, which is recorded whoever holds the lease.
#[allow(clippy::too_many_arguments)]
pub fn finish_attempt(
    conn: &mut DbConnection,
    id: &str,
    worker: &str,
    attempt: i32,
    status: &str,
    next_attempt_at: NaiveDateTime,
    last_error: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let delivered = status == "delivered";
    let base = callbacks::table
        .filter(callbacks::id.eq(id))
        .filter(callbacks::status.ne("delivered"));
    let values = (
        callbacks::status.eq(status),
        callbacks::next_attempt_at.eq(next_attempt_at),
        callbacks::locked_until.eq(None::<NaiveDateTime>),
        callbacks::locked_by.eq(None::<String>),
        callbacks::last_error.eq(last_error),
        callbacks::updated_at.eq(now),
        callbacks::delivered_at.eq(delivered.then_some(now)),
    );
    if delivered {
        diesel::update(base).set(values).execute(conn)
    } else {
        diesel::update(
            base.filter(callbacks::locked_by.eq(worker))
                .filter(callbacks::attempts.eq(attempt)),
        )
        .set(values)
        .execute(conn)
    }
}

/// The console's retry: a failed or pending callback becomes pending and due at `now`.
pub fn reschedule(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        callbacks::table
            .filter(callbacks::id.eq(id))
            .filter(callbacks::status.ne("delivered")),
    )
    .set((
        callbacks::status.eq("pending"),
        callbacks::next_attempt_at.eq(now),
        callbacks::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Callbacks of connector `connector_id` not delivered yet and not given up.
pub fn pending_for_connector(conn: &mut DbConnection, connector_id: &str) -> QueryResult<i64> {
    callbacks::table
        .filter(callbacks::connector_id.eq(connector_id))
        .filter(callbacks::status.eq("pending"))
        .count()
        .get_result(conn)
}

/// The lifecycle events of connector `connector_id`, newest first, at most `limit`.
pub fn events_of_connector(
    conn: &mut DbConnection,
    connector_id: &str,
    limit: i64,
) -> QueryResult<Vec<Callback>> {
    callbacks::table
        .filter(callbacks::connector_id.eq(connector_id))
        .filter(callbacks::event_type.is_not_null())
        .order((callbacks::created_at.desc(), callbacks::id.desc()))
        .limit(limit)
        .select(Callback::as_select())
        .load(conn)
}

/// The console's redelivery of a lifecycle event (delivered or not): pending and due at `now`.
pub fn redeliver(conn: &mut DbConnection, id: &str, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        callbacks::table
            .filter(callbacks::id.eq(id))
            .filter(callbacks::event_type.is_not_null()),
    )
    .set((
        callbacks::status.eq("pending"),
        callbacks::next_attempt_at.eq(now),
        callbacks::delivered_at.eq(None::<NaiveDateTime>),
        callbacks::updated_at.eq(now),
    ))
    .execute(conn)
}
