use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{audit_chains, audit_legacy_pending, audit_log};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
// `None` is written as NULL (every such column's default), not as DEFAULT, which SQLite does
// not accept in a multi-row INSERT ([`insert_many`]).
#[diesel(treat_none_as_default_value = false)]
pub struct AuditEntry {
    /// UUIDv7: ordering by id is ordering by time, which makes keyset pagination trivial.
    pub id: String,
    pub at: NaiveDateTime,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub tenant_id: Option<String>,
    pub tenant_path: Option<String>,
    pub merchant_id: Option<String>,
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    pub summary: String,
    /// JSON object: field -> [old, new]. Never holds secrets.
    pub changes: String,
    /// The client's address and user agent, for sign-in events (`web::client` decides them).
    pub source_addr: Option<String>,
    pub user_agent: Option<String>,
    /// The hash chain (`audit::chain`): set by the append, `None` only on entries written
    /// before the chain existed and not chained yet.
    pub chain: Option<String>,
    pub seq: Option<i64>,
    pub prev_hash: Option<String>,
    pub hash: Option<String>,
}

/// The head of one chain: its last sequence number and hash.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = audit_chains)]
pub struct ChainHead {
    pub chain: String,
    pub seq: i64,
    pub head_hash: String,
}

pub fn insert(conn: &mut DbConnection, e: &AuditEntry) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(e)
        .execute(conn)
        .map(|_| ())
}

/// Rows per statement of [`insert_many`]: 18 columns each, far below SQLite's limit of bound
/// values per statement.
const ROWS_PER_INSERT: usize = 100;

/// Inserts `entries` with one multi-row INSERT per [`ROWS_PER_INSERT`]: the access audit's
/// batches of up to 500 reads were one statement per entry.
pub fn insert_many(conn: &mut DbConnection, entries: &[AuditEntry]) -> QueryResult<()> {
    // On the inner connection: diesel's `MultiConnection` has no multi-row INSERT.
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        crate::on_inner!(&mut *conn, c => diesel::insert_into(audit_log::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Locks the head row of `chain` until the end of the transaction (a no-op UPDATE, as
/// `container::lock` does), creating it with `genesis` when the chain is new, and returns it.
/// Two writers creating one new chain at once on PostgreSQL: the loser's insert fails on the
/// key inside its savepoint and it locks the winner's row instead.
pub fn lock_chain(conn: &mut DbConnection, chain: &str, genesis: &str) -> QueryResult<ChainHead> {
    let touch = |c: &mut DbConnection| {
        diesel::update(audit_chains::table.find(chain))
            .set(audit_chains::seq.eq(audit_chains::seq))
            .execute(c)
    };
    if touch(conn)? == 0 {
        let created = conn.transaction(|c| {
            diesel::insert_into(audit_chains::table)
                .values((
                    audit_chains::chain.eq(chain),
                    audit_chains::seq.eq(0i64),
                    audit_chains::head_hash.eq(genesis),
                ))
                .execute(c)
        });
        match created {
            Ok(_) => {}
            Err(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => {
                touch(conn)?;
            }
            Err(e) => return Err(e),
        }
    }
    audit_chains::table
        .find(chain)
        .select(ChainHead::as_select())
        .first(conn)
}

pub fn set_head(conn: &mut DbConnection, chain: &str, seq: i64, hash: &str) -> QueryResult<()> {
    diesel::update(audit_chains::table.find(chain))
        .set((audit_chains::seq.eq(seq), audit_chains::head_hash.eq(hash)))
        .execute(conn)
        .map(|_| ())
}

pub fn heads(conn: &mut DbConnection) -> QueryResult<Vec<ChainHead>> {
    audit_chains::table
        .select(ChainHead::as_select())
        .order(audit_chains::chain.asc())
        .load(conn)
}

/// Up to `limit` entries of `chain` after position (`seq`, `id`), in chain order.
pub fn chain_page(
    conn: &mut DbConnection,
    chain: &str,
    after: Option<(i64, &str)>,
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    let mut q = audit_log::table
        .select(AuditEntry::as_select())
        .filter(audit_log::chain.eq(chain))
        .into_boxed();
    if let Some((seq, id)) = after {
        q = q.filter(
            audit_log::seq
                .gt(seq)
                .or(audit_log::seq.eq(seq).and(audit_log::id.gt(id))),
        );
    }
    q.order((audit_log::seq.asc(), audit_log::id.asc()))
        .limit(limit)
        .load(conn)
}

/// Entries in none of the chains `known` (no chain, or a chain without a head row), oldest
/// first.
pub fn outside_chains(
    conn: &mut DbConnection,
    known: &[String],
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table
        .select(AuditEntry::as_select())
        .filter(
            audit_log::chain
                .is_null()
                .or(audit_log::seq.is_null())
                .or(audit_log::chain.ne_all(known)),
        )
        .order(audit_log::id.asc())
        .limit(limit)
        .load(conn)
}

/// Entries not chained yet (written before the chain existed), oldest first.
pub fn unchained(conn: &mut DbConnection, limit: i64) -> QueryResult<Vec<AuditEntry>> {
    audit_log::table
        .select(AuditEntry::as_select())
        .filter(audit_log::seq.is_null())
        .order(audit_log::id.asc())
        .limit(limit)
        .load(conn)
}

/// Writes the chain fields of an entry written before the chain existed.
pub fn set_chained(conn: &mut DbConnection, e: &AuditEntry) -> QueryResult<()> {
    diesel::update(audit_log::table.find(&e.id))
        .set((
            audit_log::chain.eq(&e.chain),
            audit_log::seq.eq(e.seq),
            audit_log::prev_hash.eq(&e.prev_hash),
            audit_log::hash.eq(&e.hash),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Removes the "chain the entries from before the migration" mark; true if it was there (one
/// caller wins).
pub fn take_legacy_pending(conn: &mut DbConnection) -> QueryResult<bool> {
    diesel::delete(audit_legacy_pending::table)
        .execute(conn)
        .map(|n| n > 0)
}

/// The audit page's filters, besides the viewer's scope.
#[derive(Debug, Clone, Default)]
pub struct Filter<'a> {
    pub prefix: Option<&'a str>,
    pub merchant: Option<&'a str>,
    pub object_id: Option<&'a str>,
    pub actor_name: Option<&'a str>,
    pub action_prefix: Option<&'a str>,
    /// One kind of object (`profile`, `connector`, …).
    pub object_type: Option<&'a str>,
    /// Entries at or after this time, and before that one.
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub before: Option<&'a str>,
}

/// Newest first, `limit` rows older than `before` (an id), filtered to a path prefix or a
/// merchant, and optionally to one object or one actor.
pub fn page(conn: &mut DbConnection, f: &Filter<'_>, limit: i64) -> QueryResult<Vec<AuditEntry>> {
    let mut q = audit_log::table
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(p) = f.prefix {
        q = q.filter(audit_log::tenant_path.like(format!("{p}%")));
    }
    if let Some(m) = f.merchant {
        q = q.filter(audit_log::merchant_id.eq(m));
    }
    if let Some(o) = f.object_id {
        q = q.filter(audit_log::object_id.eq(o));
    }
    if let Some(a) = f.actor_name {
        q = q.filter(audit_log::actor_name.eq(a));
    }
    if let Some(a) = f.action_prefix {
        q = q.filter(audit_log::action.like(format!("{a}%")));
    }
    if let Some(t) = f.object_type {
        q = q.filter(audit_log::object_type.eq(t));
    }
    if let Some(t) = f.from {
        q = q.filter(audit_log::at.ge(t));
    }
    if let Some(t) = f.until {
        q = q.filter(audit_log::at.lt(t));
    }
    if let Some(b) = f.before {
        q = q.filter(audit_log::id.lt(b));
    }
    q.order(audit_log::id.desc()).limit(limit).load(conn)
}
