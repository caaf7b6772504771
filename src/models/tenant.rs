use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::tenants;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = tenants)]
pub struct Tenant {
    pub id: String,
    pub parent_id: Option<String>,
    /// Materialized path: `/<root id>/…/<own id>/`. Immutable (tenants never move).
    pub path: String,
    pub depth: i32,
    pub name: String,
    pub disable_containers_for_subtenants: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Users of this tenant and of its sub-tenants (and their merchants) must use two-factor
    /// authentication.
    pub require_two_factor: bool,
}

impl Tenant {
    /// Ids of this tenant and its ancestors, root first (from the path).
    pub fn lineage_ids(&self) -> Vec<&str> {
        self.path.split('/').filter(|s| !s.is_empty()).collect()
    }
}

pub fn insert(conn: &mut DbConnection, t: &Tenant) -> QueryResult<()> {
    diesel::insert_into(tenants::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Tenant>> {
    crate::on_inner!(conn, c => tenants::table
        .find(id)
        .select(Tenant::as_select())
        .first(c)
        .optional())
}

pub fn find_by_name(conn: &mut DbConnection, name: &str) -> QueryResult<Option<Tenant>> {
    tenants::table
        .filter(tenants::name.eq(name))
        .select(Tenant::as_select())
        .first(conn)
        .optional()
}

/// Tenants whose path starts with `prefix` (all when `None`), ordered by path (a tree walk).
pub fn list_under(conn: &mut DbConnection, prefix: Option<&str>) -> QueryResult<Vec<Tenant>> {
    let mut q = tenants::table.select(Tenant::as_select()).into_boxed();
    if let Some(p) = prefix {
        q = q.filter(tenants::path.like(format!("{p}%")));
    }
    q.order(tenants::path.asc()).load(conn)
}

pub fn count_children(conn: &mut DbConnection, id: &str) -> QueryResult<i64> {
    tenants::table
        .filter(tenants::parent_id.eq(id))
        .count()
        .get_result(conn)
}

pub fn update_name(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(tenants::table.find(id))
        .set((tenants::name.eq(name), tenants::updated_at.eq(at)))
        .execute(conn)
}

pub fn update_disable_flag(
    conn: &mut DbConnection,
    id: &str,
    flag: bool,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(tenants::table.find(id))
        .set((
            tenants::disable_containers_for_subtenants.eq(flag),
            tenants::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(tenants::table.find(id)).execute(conn)
}

pub fn update_require_two_factor(
    conn: &mut DbConnection,
    id: &str,
    flag: bool,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(tenants::table.find(id))
        .set((
            tenants::require_two_factor.eq(flag),
            tenants::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Whether any of the tenants `ids` (a lineage) requires two-factor authentication.
pub fn any_requires_two_factor(conn: &mut DbConnection, ids: &[&str]) -> QueryResult<bool> {
    if ids.is_empty() {
        return Ok(false);
    }
    let n: i64 = tenants::table
        .filter(tenants::id.eq_any(ids))
        .filter(tenants::require_two_factor.eq(true))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}
