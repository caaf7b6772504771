//! Rows of the re-encryption job (`vault::reencrypt`): the job, its cursor per table, and the
//! sealed records of each table read in key order and written back.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{
    card_tokens, connectors, instruments, payment_sessions, reencrypt_cursors, reencrypt_jobs,
    transactions, user_two_factor, users,
};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = reencrypt_jobs)]
pub struct Job {
    pub id: String,
    pub reason: String,
    /// `running` or `done`.
    pub state: String,
    /// Records to look at (the sealed columns' rows when the job started).
    pub total: i64,
    pub done: i64,
    /// Records sealed again (the others were under their owner's active key already).
    pub resealed: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub finished_at: Option<NaiveDateTime>,
}

/// The tables holding sealed records, in the order the job walks them.
pub const TABLES: [&str; 6] = [
    "instruments",
    "card_tokens",
    "connectors",
    "payment_sessions",
    "transactions",
    "user_two_factor",
];

/// One sealed value: its row's key, the column, the record, and the tenant path of its owner
/// (`None`: a platform user's).
#[derive(Debug, Clone)]
pub struct Sealed {
    pub pk: String,
    pub column: &'static str,
    pub record: String,
    pub path: Option<String>,
}

pub fn insert_job(conn: &mut DbConnection, j: &Job) -> QueryResult<()> {
    diesel::insert_into(reencrypt_jobs::table)
        .values(j)
        .execute(conn)?;
    for t in TABLES {
        diesel::insert_into(reencrypt_cursors::table)
            .values((
                reencrypt_cursors::job_id.eq(&j.id),
                reencrypt_cursors::tbl.eq(t),
                reencrypt_cursors::position.eq(""),
                reencrypt_cursors::finished.eq(false),
            ))
            .execute(conn)?;
    }
    Ok(())
}

pub fn running(conn: &mut DbConnection) -> QueryResult<Option<Job>> {
    reencrypt_jobs::table
        .filter(reencrypt_jobs::state.eq("running"))
        .order(reencrypt_jobs::created_at.asc())
        .select(Job::as_select())
        .first(conn)
        .optional()
}

pub fn latest(conn: &mut DbConnection) -> QueryResult<Option<Job>> {
    reencrypt_jobs::table
        .order((reencrypt_jobs::created_at.desc(), reencrypt_jobs::id.desc()))
        .select(Job::as_select())
        .first(conn)
        .optional()
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Job>> {
    reencrypt_jobs::table
        .find(id)
        .select(Job::as_select())
        .first(conn)
        .optional()
}

/// Takes the job's next unfinished cursor, locked for this transaction: on PostgreSQL a second
/// process waits here until the batch of the first has committed, then reads its position.
pub fn claim_cursor(conn: &mut DbConnection, job: &str) -> QueryResult<Option<(String, String)>> {
    for t in TABLES {
        // An UPDATE takes the row lock on both databases (SQLite: the write transaction).
        let n = diesel::update(
            reencrypt_cursors::table
                .filter(reencrypt_cursors::job_id.eq(job))
                .filter(reencrypt_cursors::tbl.eq(t))
                .filter(reencrypt_cursors::finished.eq(false)),
        )
        .set(reencrypt_cursors::finished.eq(false))
        .execute(conn)?;
        if n == 1 {
            let pos: String = reencrypt_cursors::table
                .find((job, t))
                .select(reencrypt_cursors::position)
                .first(conn)?;
            return Ok(Some((t.to_string(), pos)));
        }
    }
    Ok(None)
}

/// Where a batch left a table, and what it did.
pub struct Advance<'a> {
    pub position: &'a str,
    pub finished: bool,
    pub looked: i64,
    pub resealed: i64,
    pub at: NaiveDateTime,
}

pub fn advance(conn: &mut DbConnection, job: &str, table: &str, a: Advance<'_>) -> QueryResult<()> {
    let Advance {
        position,
        finished,
        looked,
        resealed,
        at,
    } = a;
    diesel::update(reencrypt_cursors::table.find((job, table)))
        .set((
            reencrypt_cursors::position.eq(position),
            reencrypt_cursors::finished.eq(finished),
        ))
        .execute(conn)?;
    diesel::update(reencrypt_jobs::table.find(job))
        .set((
            reencrypt_jobs::done.eq(reencrypt_jobs::done + looked),
            reencrypt_jobs::resealed.eq(reencrypt_jobs::resealed + resealed),
            reencrypt_jobs::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn finish(conn: &mut DbConnection, job: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        reencrypt_jobs::table
            .find(job)
            .filter(reencrypt_jobs::state.eq("running")),
    )
    .set((
        reencrypt_jobs::state.eq("done"),
        reencrypt_jobs::updated_at.eq(at),
        reencrypt_jobs::finished_at.eq(at),
    ))
    .execute(conn)
}

/// How many records each table holds now (the job's total).
pub fn count_all(conn: &mut DbConnection) -> QueryResult<i64> {
    let a: i64 = instruments::table.count().get_result(conn)?;
    let b: i64 = card_tokens::table.count().get_result(conn)?;
    let c: i64 = connectors::table.count().get_result(conn)?;
    let d: i64 = payment_sessions::table
        .filter(payment_sessions::sealed_card.is_not_null())
        .count()
        .get_result(conn)?;
    let e: i64 = transactions::table
        .filter(transactions::card_summary.like("%\"vault\"%"))
        .count()
        .get_result(conn)?;
    let f: i64 = user_two_factor::table.count().get_result(conn)?;
    Ok(a + b + c + d + e + f)
}

/// The tenant paths of connectors, by id.
fn connector_paths(
    conn: &mut DbConnection,
    ids: Vec<String>,
) -> QueryResult<std::collections::HashMap<String, String>> {
    Ok(connectors::table
        .filter(connectors::id.eq_any(ids))
        .select((connectors::id, connectors::tenant_path))
        .load::<(String, String)>(conn)?
        .into_iter()
        .collect())
}

/// The next rows of `table` after `after` in key order (at most `limit`): how many rows were
/// read, the last key, and their sealed values. A sealed value inside a transaction's card
/// summary is its `vault` field.
pub fn batch(
    conn: &mut DbConnection,
    table: &str,
    after: &str,
    limit: i64,
) -> QueryResult<(usize, Option<String>, Vec<Sealed>)> {
    let mut out = vec![];
    let (n, last) = match table {
        "instruments" => {
            let rows: Vec<(String, String, String)> = instruments::table
                .filter(instruments::id.gt(after))
                .order(instruments::id.asc())
                .limit(limit)
                .select((
                    instruments::id,
                    instruments::vault_record,
                    instruments::connector_id,
                ))
                .load(conn)?;
            let paths = connector_paths(conn, rows.iter().map(|r| r.2.clone()).collect())?;
            let last = rows.last().map(|r| r.0.clone());
            let n = rows.len();
            for (id, rec, k) in rows {
                out.push(Sealed {
                    path: paths.get(&k).cloned(),
                    pk: id,
                    column: "vault_record",
                    record: rec,
                });
            }
            (n, last)
        }
        "card_tokens" => {
            let rows: Vec<(String, String, String)> = card_tokens::table
                .filter(card_tokens::token.gt(after))
                .order(card_tokens::token.asc())
                .limit(limit)
                .select((
                    card_tokens::token,
                    card_tokens::sealed,
                    card_tokens::connector_id,
                ))
                .load(conn)?;
            let paths = connector_paths(conn, rows.iter().map(|r| r.2.clone()).collect())?;
            let last = rows.last().map(|r| r.0.clone());
            let n = rows.len();
            for (id, rec, k) in rows {
                out.push(Sealed {
                    path: paths.get(&k).cloned(),
                    pk: id,
                    column: "sealed",
                    record: rec,
                });
            }
            (n, last)
        }
        "connectors" => {
            let rows: Vec<(String, String, Option<String>, String)> = connectors::table
                .filter(connectors::id.gt(after))
                .order(connectors::id.asc())
                .limit(limit)
                .select((
                    connectors::id,
                    connectors::shared_secret,
                    connectors::monri_merchant_key,
                    connectors::tenant_path,
                ))
                .load(conn)?;
            let last = rows.last().map(|r| r.0.clone());
            let n = rows.len();
            for (id, secret, monri, path) in rows {
                if let Some(m) = monri {
                    out.push(Sealed {
                        pk: id.clone(),
                        column: "monri_merchant_key",
                        record: m,
                        path: Some(path.clone()),
                    });
                }
                out.push(Sealed {
                    pk: id,
                    column: "shared_secret",
                    record: secret,
                    path: Some(path),
                });
            }
            (n, last)
        }
        "payment_sessions" => {
            let rows: Vec<(String, Option<String>, String)> = payment_sessions::table
                .filter(payment_sessions::id.gt(after))
                .order(payment_sessions::id.asc())
                .limit(limit)
                .select((
                    payment_sessions::id,
                    payment_sessions::sealed_card,
                    payment_sessions::transaction_uuid,
                ))
                .load(conn)?;
            let uuids: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
            let paths: std::collections::HashMap<String, String> = transactions::table
                .filter(transactions::uuid.eq_any(uuids))
                .select((transactions::uuid, transactions::tenant_path))
                .load::<(String, String)>(conn)?
                .into_iter()
                .collect();
            let last = rows.last().map(|r| r.0.clone());
            let n = rows.iter().filter(|r| r.1.is_some()).count();
            for (id, rec, tx) in rows {
                if let Some(rec) = rec {
                    out.push(Sealed {
                        path: paths.get(&tx).cloned(),
                        pk: id,
                        column: "sealed_card",
                        record: rec,
                    });
                }
            }
            // Rows without a sealed card are read but not counted (the total leaves them out).
            return Ok((n, last, out));
        }
        "transactions" => {
            let rows: Vec<(String, Option<String>, String)> = transactions::table
                .filter(transactions::uuid.gt(after))
                .order(transactions::uuid.asc())
                .limit(limit)
                .select((
                    transactions::uuid,
                    transactions::card_summary,
                    transactions::tenant_path,
                ))
                .load(conn)?;
            let last = rows.last().map(|r| r.0.clone());
            let mut n = 0;
            for (id, summary, path) in rows {
                let Some(rec) = summary
                    .as_deref()
                    .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
                    .and_then(|v| v["vault"].as_str().map(str::to_string))
                else {
                    continue;
                };
                n += 1;
                out.push(Sealed {
                    pk: id,
                    column: "card_summary",
                    record: rec,
                    path: Some(path),
                });
            }
            return Ok((n, last, out));
        }
        "user_two_factor" => {
            let rows: Vec<(String, String, Option<String>)> = user_two_factor::table
                .inner_join(users::table.on(users::id.eq(user_two_factor::user_id)))
                .filter(user_two_factor::user_id.gt(after))
                .order(user_two_factor::user_id.asc())
                .limit(limit)
                .select((
                    user_two_factor::user_id,
                    user_two_factor::secret_sealed,
                    users::scope_path,
                ))
                .load(conn)?;
            let last = rows.last().map(|r| r.0.clone());
            let n = rows.len();
            for (id, rec, path) in rows {
                out.push(Sealed {
                    pk: id,
                    column: "secret_sealed",
                    record: rec,
                    path,
                });
            }
            (n, last)
        }
        _ => (0, None),
    };
    Ok((n, last, out))
}

/// Writes a record sealed again back to its row.
pub fn store(conn: &mut DbConnection, table: &str, s: &Sealed, record: &str) -> QueryResult<usize> {
    match (table, s.column) {
        ("instruments", _) => diesel::update(instruments::table.find(&s.pk))
            .set(instruments::vault_record.eq(record))
            .execute(conn),
        ("card_tokens", _) => diesel::update(card_tokens::table.find(&s.pk))
            .set(card_tokens::sealed.eq(record))
            .execute(conn),
        ("connectors", "monri_merchant_key") => diesel::update(connectors::table.find(&s.pk))
            .set(connectors::monri_merchant_key.eq(record))
            .execute(conn),
        ("connectors", _) => diesel::update(connectors::table.find(&s.pk))
            .set(connectors::shared_secret.eq(record))
            .execute(conn),
        ("payment_sessions", _) => diesel::update(payment_sessions::table.find(&s.pk))
            .set(payment_sessions::sealed_card.eq(record))
            .execute(conn),
        ("transactions", _) => {
            let summary: Option<String> = transactions::table
                .find(&s.pk)
                .select(transactions::card_summary)
                .first(conn)?;
            let Some(mut v) =
                summary.and_then(|x| serde_json::from_str::<serde_json::Value>(&x).ok())
            else {
                return Ok(0);
            };
            v["vault"] = serde_json::Value::String(record.to_string());
            diesel::update(transactions::table.find(&s.pk))
                .set(transactions::card_summary.eq(v.to_string()))
                .execute(conn)
        }
        ("user_two_factor", _) => diesel::update(user_two_factor::table.find(&s.pk))
            .set(user_two_factor::secret_sealed.eq(record))
            .execute(conn),
        _ => Ok(0),
    }
}

/// How many records still name data key `key_id` (before it is retired).
pub fn count_using(conn: &mut DbConnection, key_id: &str) -> QueryResult<i64> {
    let p = format!("v1:{key_id}:%");
    let inner = format!("%\"v1:{key_id}:%");
    let a: i64 = instruments::table
        .filter(instruments::vault_record.like(&p))
        .count()
        .get_result(conn)?;
    let b: i64 = card_tokens::table
        .filter(card_tokens::sealed.like(&p))
        .count()
        .get_result(conn)?;
    let c: i64 = connectors::table
        .filter(
            connectors::shared_secret
                .like(&p)
                .or(connectors::monri_merchant_key.like(&p)),
        )
        .count()
        .get_result(conn)?;
    let d: i64 = payment_sessions::table
        .filter(payment_sessions::sealed_card.like(&p))
        .count()
        .get_result(conn)?;
    let e: i64 = transactions::table
        .filter(transactions::card_summary.like(&inner))
        .count()
        .get_result(conn)?;
    let f: i64 = user_two_factor::table
        .filter(user_two_factor::secret_sealed.like(&p))
        .count()
        .get_result(conn)?;
    Ok(a + b + c + d + e + f)
}
