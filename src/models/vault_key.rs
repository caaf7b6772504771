use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::vault_keys;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = vault_keys)]
pub struct VaultKey {
    pub id: String,
    /// `data` (seals card numbers and secrets) or `mac` (keyed hashes; one row, id `mac`).
    pub purpose: String,
    /// The key wrapped by the master key (see `gateway::vault::MasterKey::wrap`).
    pub wrapped: String,
    /// Which master key wrapped it (a short hash of the master key, not the key).
    pub master_key_id: String,
    /// The data key new records are sealed with.
    pub active: bool,
    pub created_at: NaiveDateTime,
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<VaultKey>> {
    vault_keys::table
        .select(VaultKey::as_select())
        .order(vault_keys::created_at.asc())
        .load(conn)
}

pub fn insert(conn: &mut DbConnection, k: &VaultKey) -> QueryResult<()> {
    diesel::insert_into(vault_keys::table)
        .values(k)
        .execute(conn)
        .map(|_| ())
}

pub fn rewrap(
    conn: &mut DbConnection,
    id: &str,
    wrapped: &str,
    master_key_id: &str,
) -> QueryResult<usize> {
    diesel::update(vault_keys::table.find(id))
        .set((
            vault_keys::wrapped.eq(wrapped),
            vault_keys::master_key_id.eq(master_key_id),
        ))
        .execute(conn)
}

pub fn deactivate_data_keys(conn: &mut DbConnection) -> QueryResult<usize> {
    diesel::update(vault_keys::table.filter(vault_keys::purpose.eq("data")))
        .set(vault_keys::active.eq(false))
        .execute(conn)
}
