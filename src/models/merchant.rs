use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{merchants, tenants};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = merchants)]
pub struct Merchant {
    pub id: String,
    pub tenant_id: String,
    /// Copy of the owning tenant's path, for one-filter subtree scoping.
    pub tenant_path: String,
    pub name: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, m: &Merchant) -> QueryResult<()> {
    diesel::insert_into(merchants::table)
        .values(m)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Merchant>> {
    crate::on_inner!(conn, c => merchants::table
        .find(id)
        .select(Merchant::as_select())
        .first(c)
        .optional())
}

pub fn find_by_name(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
) -> QueryResult<Option<Merchant>> {
    merchants::table
        .filter(merchants::tenant_id.eq(tenant_id))
        .filter(merchants::name.eq(name))
        .select(Merchant::as_select())
        .first(conn)
        .optional()
}

/// Merchants under a path prefix (all when `None`) with their tenant's name.
pub fn list_under(
    conn: &mut DbConnection,
    prefix: Option<&str>,
) -> QueryResult<Vec<(Merchant, String)>> {
    let mut q = merchants::table
        .inner_join(tenants::table)
        .select((Merchant::as_select(), tenants::name))
        .into_boxed();
    if let Some(p) = prefix {
        q = q.filter(merchants::tenant_path.like(format!("{p}%")));
    }
    q.order((tenants::path.asc(), merchants::name.asc()))
        .load(conn)
}

pub fn count_for_tenant(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    merchants::table
        .filter(merchants::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
}

pub fn update_name(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(merchants::table.find(id))
        .set((merchants::name.eq(name), merchants::updated_at.eq(at)))
        .execute(conn)
}

pub fn set_active(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(merchants::table.find(id))
        .set((merchants::active.eq(active), merchants::updated_at.eq(at)))
        .execute(conn)
}

/// What a merchant's deactivation stops, counted: its connectors' names (active ones), its
/// active API users, its active merchant admins, and the stored instruments tied to its
/// connectors.
pub fn deactivation_counts(
    conn: &mut DbConnection,
    merchant_id: &str,
) -> QueryResult<(Vec<String>, i64, i64, i64)> {
    use crate::db::schema::{api_users, connectors, instruments, users};
    let names: Vec<String> = connectors::table
        .filter(connectors::merchant_id.eq(merchant_id))
        .filter(connectors::active.eq(true))
        .order(connectors::name.asc())
        .select(connectors::name)
        .load(conn)?;
    let api: i64 = api_users::table
        .filter(api_users::merchant_id.eq(merchant_id))
        .filter(api_users::active.eq(true))
        .count()
        .get_result(conn)?;
    let admins: i64 = users::table
        .filter(users::merchant_id.eq(merchant_id))
        .filter(users::active.eq(true))
        .count()
        .get_result(conn)?;
    let stored: i64 = instruments::table
        .filter(
            instruments::connector_id.eq_any(
                connectors::table
                    .filter(connectors::merchant_id.eq(merchant_id))
                    .select(connectors::id),
            ),
        )
        .count()
        .get_result(conn)?;
    Ok((names, api, admins, stored))
}
