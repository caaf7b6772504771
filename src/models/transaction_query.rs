//! Read queries of the console's transaction pages: keyset pages newest first on
//! (created_at, uuid), the reference chain, a profile's transactions.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::transactions;
use crate::models::transaction::Transaction;

/// Which rows one page query reads; each variant is an equality prefix of an index
/// (`transactions_merchant_created`, `transactions_path_created`), so the rows come out in
/// page order without a sort.
#[derive(Debug, Clone, Copy)]
pub enum Slice<'a> {
    Merchant(&'a str),
    /// The transactions of exactly one tenant (not its subtree).
    TenantPath(&'a str),
}

/// Narrowing filters: all optional, all already validated by the service.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub connector_id: Option<String>,
    pub transaction_type: Option<String>,
    pub status: Option<String>,
    /// Inclusive lower bound.
    pub from: Option<NaiveDateTime>,
    /// Exclusive upper bound.
    pub until: Option<NaiveDateTime>,
    pub profile_id: Option<String>,
}

/// The position after which the next page starts: the last row of the previous page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub created_at: NaiveDateTime,
    pub uuid: String,
}

/// Up to `limit` rows of `slice` matching `f`, strictly after `after` in the order
/// (created_at DESC, uuid DESC).
pub fn page(
    conn: &mut DbConnection,
    slice: Slice<'_>,
    f: &Filter,
    after: Option<&Position>,
    limit: i64,
) -> QueryResult<Vec<Transaction>> {
    let mut q = transactions::table
        .select(Transaction::as_select())
        .into_boxed();
    q = match slice {
        Slice::Merchant(m) => q.filter(transactions::merchant_id.eq(m.to_string())),
        Slice::TenantPath(p) => q.filter(transactions::tenant_path.eq(p.to_string())),
    };
    if let Some(v) = &f.connector_id {
        q = q.filter(transactions::connector_id.eq(v.clone()));
    }
    if let Some(v) = &f.transaction_type {
        q = q.filter(transactions::transaction_type.eq(v.clone()));
    }
    if let Some(v) = &f.status {
        q = q.filter(transactions::status.eq(v.clone()));
    }
    if let Some(v) = f.from {
        q = q.filter(transactions::created_at.ge(v));
    }
    if let Some(v) = f.until {
        q = q.filter(transactions::created_at.lt(v));
    }
    if let Some(v) = &f.profile_id {
        q = q.filter(transactions::profile_id.eq(v.clone()));
    }
    if let Some(p) = after {
        // `created_at <= t` alone is an index range; the OR then drops the rows of the same
        // instant up to and including the cursor's uuid.
        q = q.filter(
            transactions::created_at.le(p.created_at).and(
                transactions::created_at
                    .lt(p.created_at)
                    .or(transactions::uuid.lt(p.uuid.clone())),
            ),
        );
    }
    q.order((transactions::created_at.desc(), transactions::uuid.desc()))
        .limit(limit)
        .load(conn)
}

/// The transactions that reference `uuid` directly, oldest first.
pub fn referencing(conn: &mut DbConnection, uuid: &str) -> QueryResult<Vec<Transaction>> {
    transactions::table
        .filter(transactions::reference_uuid.eq(uuid))
        .select(Transaction::as_select())
        .order((transactions::created_at.asc(), transactions::uuid.asc()))
        .load(conn)
}

/// The newest `limit` transactions of a profile (made with the profile or one of its
/// instruments: both carry its id), optionally narrowed to one merchant or a tenant subtree.
pub fn of_profile(
    conn: &mut DbConnection,
    profile_id: &str,
    merchant: Option<&str>,
    path_prefix: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Transaction>> {
    let mut q = transactions::table
        .filter(transactions::profile_id.eq(profile_id.to_string()))
        .select(Transaction::as_select())
        .into_boxed();
    if let Some(m) = merchant {
        q = q.filter(transactions::merchant_id.eq(m.to_string()));
    }
    if let Some(p) = path_prefix {
        q = q.filter(transactions::tenant_path.like(format!("{p}%")));
    }
    q.order((transactions::created_at.desc(), transactions::uuid.desc()))
        .limit(limit)
        .load(conn)
}
