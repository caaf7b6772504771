//! Read queries of the console's home page: counts only, each served by an index, so that the
//! page stays fast at a million profiles (the per-container totals are kept on the container
//! rows themselves).

use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{callbacks, instruments, profiles};
use crate::models::transaction_query::Slice;

/// Transactions of `slice` created on the UTC days `[from, until)` (`YYYY-MM-DD`), counted per
/// day and status: read from the counts the triggers keep (`tx_daily_counts`, migration
/// 000029), at most 30 days x 3 statuses per merchant and shard, whatever the number of
/// transactions.
pub fn daily_status_counts(
    conn: &mut DbConnection,
    slice: Slice<'_>,
    from: &str,
    until: &str,
) -> QueryResult<Vec<(String, String, i64)>> {
    use crate::db::schema::tx_daily_counts as d;
    // SUM of a BIGINT is a NUMERIC on PostgreSQL: cast back.
    let total = || diesel::dsl::sql::<diesel::sql_types::BigInt>("CAST(SUM(n) AS BIGINT)");
    match slice {
        Slice::Merchant(m) => d::table
            .filter(d::merchant_id.eq(m))
            .filter(d::tx_day.ge(from).and(d::tx_day.lt(until)))
            .group_by((d::tx_day, d::status))
            .select((d::tx_day, d::status, total()))
            .load(conn),
        Slice::TenantPath(p) => d::table
            .filter(d::tenant_path.eq(p))
            .filter(d::tx_day.ge(from).and(d::tx_day.lt(until)))
            .group_by((d::tx_day, d::status))
            .select((d::tx_day, d::status, total()))
            .load(conn),
    }
}

/// A callback that is failing: given up, or waiting for a retry after a failed attempt.
#[derive(Debug, Clone, Queryable)]
pub struct FailingCallback {
    pub transaction_uuid: String,
    pub attempts: i32,
    pub status: String,
    pub last_error: Option<String>,
}

/// Failing callbacks of the merchant `merchant`, or of every tenant whose path starts with
/// `prefix` (all when both are `None`): how many, and the newest `limit` of them.
pub fn failing_callbacks(
    conn: &mut DbConnection,
    prefix: Option<&str>,
    merchant: Option<&str>,
    limit: i64,
) -> QueryResult<(i64, Vec<FailingCallback>)> {
    let scoped = || {
        // Transaction callbacks only: lifecycle events have their own page per connector.
        let mut q = callbacks::table
            .filter(callbacks::transaction_uuid.is_not_null())
            .filter(
                callbacks::status.eq("failed").or(callbacks::status
                    .eq("pending")
                    .and(callbacks::attempts.gt(0))),
            )
            .into_boxed();
        if let Some(m) = merchant {
            q = q.filter(callbacks::merchant_id.eq(m.to_string()));
        }
        if let Some(p) = prefix {
            q = q.filter(callbacks::tenant_path.like(format!("{p}%")));
        }
        q
    };
    let total = scoped().select(count_star()).first(conn)?;
    let newest = scoped()
        .order(callbacks::updated_at.desc())
        .limit(limit)
        .select((
            callbacks::transaction_uuid.assume_not_null(),
            callbacks::attempts,
            callbacks::status,
            callbacks::last_error,
        ))
        .load(conn)?;
    Ok((total, newest))
}

/// Instruments of live profiles in the containers `container_ids` whose expiry is one of the
/// (year, month) pairs `months`.
pub fn expiring(
    conn: &mut DbConnection,
    container_ids: &[String],
    months: &[(i32, i32)],
) -> QueryResult<i64> {
    if container_ids.is_empty() || months.is_empty() {
        return Ok(0);
    }
    let mut total = 0;
    for (y, m) in months {
        total += instruments::table
            .inner_join(profiles::table)
            .filter(instruments::exp_year.eq(*y))
            .filter(instruments::exp_month.eq(*m))
            .filter(profiles::container_id.eq_any(container_ids))
            .filter(profiles::deleted_at.is_null())
            .select(count_star())
            .first::<i64>(conn)?;
    }
    Ok(total)
}
