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
    /// The key wrapped by its key-encryption key (the master key, the Transit key, or the
    /// Transit key of its owner: see `vault::kms`).
    pub wrapped: String,
    /// Which key-encryption key wrapped it (a short hash of a local master key, or
    /// `transit:<mount>/<key>`; never the key).
    pub master_key_id: String,
    /// The data key new records of its owner are sealed with.
    pub active: bool,
    pub created_at: NaiveDateTime,
    /// The root tenant whose records it seals; `None`: the platform's own records (and records
    /// sealed before keys were per tenant).
    pub owner: Option<String>,
    /// When a newer key of the same owner took over.
    pub deactivated_at: Option<NaiveDateTime>,
}

pub fn all(conn: &mut DbConnection) -> QueryResult<Vec<VaultKey>> {
    vault_keys::table
        .select(VaultKey::as_select())
        .order((vault_keys::created_at.asc(), vault_keys::id.asc()))
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<VaultKey>> {
    vault_keys::table
        .find(id)
        .select(VaultKey::as_select())
        .first(conn)
        .optional()
}

/// The active data keys of every owner: (owner, key id).
pub fn active_ids(conn: &mut DbConnection) -> QueryResult<Vec<(Option<String>, String)>> {
    vault_keys::table
        .filter(vault_keys::purpose.eq("data"))
        .filter(vault_keys::active.eq(true))
        .order((vault_keys::created_at.asc(), vault_keys::id.asc()))
        .select((vault_keys::owner, vault_keys::id))
        .load(conn)
}

/// The data keys of one owner (`None`: the platform's).
pub fn of_owner(conn: &mut DbConnection, owner: Option<&str>) -> QueryResult<Vec<VaultKey>> {
    let q = vault_keys::table
        .filter(vault_keys::purpose.eq("data"))
        .select(VaultKey::as_select())
        .order((vault_keys::created_at.asc(), vault_keys::id.asc()))
        .into_boxed();
    match owner {
        Some(o) => q.filter(vault_keys::owner.eq(o)).load(conn),
        None => q.filter(vault_keys::owner.is_null()).load(conn),
    }
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

/// Deactivates the data keys of one owner (`None`: the platform's), before a new one is added.
pub fn deactivate_data_keys(
    conn: &mut DbConnection,
    owner: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    let active = vault_keys::purpose
        .eq("data")
        .and(vault_keys::active.eq(true));
    match owner {
        Some(o) => diesel::update(vault_keys::table.filter(active.and(vault_keys::owner.eq(o))))
            .set((
                vault_keys::active.eq(false),
                vault_keys::deactivated_at.eq(at),
            ))
            .execute(conn),
        None => diesel::update(vault_keys::table.filter(active.and(vault_keys::owner.is_null())))
            .set((
                vault_keys::active.eq(false),
                vault_keys::deactivated_at.eq(at),
            ))
            .execute(conn),
    }
}

/// Deletes keys: a retired key, or every key of an erased tenant.
pub fn delete_ids(conn: &mut DbConnection, ids: &[String]) -> QueryResult<usize> {
    diesel::delete(vault_keys::table.filter(vault_keys::id.eq_any(ids))).execute(conn)
}

pub fn delete_of_owner(conn: &mut DbConnection, owner: &str) -> QueryResult<usize> {
    diesel::delete(vault_keys::table.filter(vault_keys::owner.eq(owner))).execute(conn)
}
