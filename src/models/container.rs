use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{containers, global_settings};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = containers)]
pub struct Container {
    pub id: String,
    pub tenant_id: String,
    pub tenant_path: String,
    pub name: String,
    /// Kept in the same transaction as profile inserts and deletes, so the total is O(1).
    pub profile_count: i64,
    /// Instruments in the container's profiles, kept by database triggers (migration
    /// `instrument_counts`) on every insert and delete of an instrument.
    pub instrument_count: i64,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, c: &Container) -> QueryResult<()> {
    diesel::insert_into(containers::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Container>> {
    crate::on_inner!(conn, c => containers::table
        .find(id)
        .select(Container::as_select())
        .first(c)
        .optional())
}

pub fn find_by_name(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
) -> QueryResult<Option<Container>> {
    containers::table
        .filter(containers::tenant_id.eq(tenant_id))
        .filter(containers::name.eq(name))
        .select(Container::as_select())
        .first(conn)
        .optional()
}

pub fn owned_by_any(conn: &mut DbConnection, tenant_ids: &[&str]) -> QueryResult<Vec<Container>> {
    containers::table
        .filter(containers::tenant_id.eq_any(tenant_ids))
        .select(Container::as_select())
        .order((containers::tenant_path.asc(), containers::name.asc()))
        .load(conn)
}

/// Every container (a platform admin's search scope), in the order of [`owned_by_any`].
pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<Container>> {
    containers::table
        .select(Container::as_select())
        .order((containers::tenant_path.asc(), containers::name.asc()))
        .load(conn)
}

pub fn count_for_tenant(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    containers::table
        .filter(containers::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
}

pub fn rename(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(containers::table.find(id))
        .set((containers::name.eq(name), containers::updated_at.eq(at)))
        .execute(conn)
}

pub fn add_to_count(conn: &mut DbConnection, id: &str, delta: i64) -> QueryResult<usize> {
    diesel::update(containers::table.find(id))
        .set(containers::profile_count.eq(containers::profile_count + delta))
        .execute(conn)
}

pub fn delete(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(containers::table.find(id)).execute(conn)
}

/// The container named by a tenant's Global Setting, if any.
pub fn global_setting(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Option<Container>> {
    global_settings::table
        .inner_join(
            containers::table.on(global_settings::container_id.eq(containers::id.nullable())),
        )
        .filter(global_settings::tenant_id.eq(tenant_id))
        .select(Container::as_select())
        .first(conn)
        .optional()
}

/// Sets (or clears) a tenant's Global Setting.
pub fn set_global_setting(
    conn: &mut DbConnection,
    tenant_id: &str,
    container_id: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<()> {
    let n = diesel::update(global_settings::table.find(tenant_id))
        .set((
            global_settings::container_id.eq(container_id),
            global_settings::updated_at.eq(at),
        ))
        .execute(conn)?;
    if n == 0 {
        // The first setting of a tenant, possibly saved concurrently by another request: the
        // insert runs in a savepoint, and losing the race to the same insert means the row now
        // exists, so the update applies (on PostgreSQL this was a 500, found by the fuzzer).
        let inserted = conn.transaction(|c| {
            diesel::insert_into(global_settings::table)
                .values((
                    global_settings::tenant_id.eq(tenant_id),
                    global_settings::container_id.eq(container_id),
                    global_settings::updated_at.eq(at),
                ))
                .execute(c)
        });
        match inserted {
            Err(e) if crate::db::is_unique_violation(&e) => {
                diesel::update(global_settings::table.find(tenant_id))
                    .set((
                        global_settings::container_id.eq(container_id),
                        global_settings::updated_at.eq(at),
                    ))
                    .execute(conn)?;
            }
            r => {
                r?;
            }
        }
    }
    Ok(())
}

/// Tenants whose Global Setting names the container (with their ids).
pub fn global_setting_tenants(
    conn: &mut DbConnection,
    container_id: &str,
) -> QueryResult<Vec<String>> {
    crate::on_inner!(conn, c => global_settings::table
        .filter(global_settings::container_id.eq(container_id))
        .select(global_settings::tenant_id)
        .load(c))
}

/// Locks the container row until the end of the transaction: profile creation in one container
/// is serialized, so one new customerIdentification yields exactly one profile. Every change of
/// a profile's instruments (registration, deregistration, a new preferred instrument) takes it
/// before reading the instruments it decides from, so that a profile with instruments keeps
/// exactly one preferred one when they run at once (on PostgreSQL; SQLite serializes writers).
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(containers::table.find(id))
        .set(containers::profile_count.eq(containers::profile_count))
        .execute(conn)
}
