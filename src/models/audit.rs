use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::audit_log;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_log)]
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
}

pub fn insert(conn: &mut DbConnection, e: &AuditEntry) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values(e)
        .execute(conn)
        .map(|_| ())
}

/// Newest first, `limit` rows older than `before` (an id), filtered to a path prefix or a merchant.
pub fn page(
    conn: &mut DbConnection,
    prefix: Option<&str>,
    merchant: Option<&str>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<AuditEntry>> {
    let mut q = audit_log::table
        .select(AuditEntry::as_select())
        .into_boxed();
    if let Some(p) = prefix {
        q = q.filter(audit_log::tenant_path.like(format!("{p}%")));
    }
    if let Some(m) = merchant {
        q = q.filter(audit_log::merchant_id.eq(m));
    }
    if let Some(b) = before {
        q = q.filter(audit_log::id.lt(b));
    }
    q.order(audit_log::id.desc()).limit(limit).load(conn)
}
