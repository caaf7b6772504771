use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::api_users;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_users)]
pub struct ApiUser {
    pub id: String,
    pub merchant_id: String,
    pub tenant_path: String,
    pub username: String,
    /// Keyed fast hash (HMAC-SHA256 under the vault's MAC key), see `gateway::api_password`.
    pub password_hash: String,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, u: &ApiUser) -> QueryResult<()> {
    diesel::insert_into(api_users::table)
        .values(u)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<ApiUser>> {
    api_users::table
        .find(id)
        .select(ApiUser::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<ApiUser>> {
    api_users::table
        .filter(api_users::username.eq(username))
        .select(ApiUser::as_select())
        .first(conn)
        .optional()
}

pub fn for_merchant(conn: &mut DbConnection, merchant_id: &str) -> QueryResult<Vec<ApiUser>> {
    api_users::table
        .filter(api_users::merchant_id.eq(merchant_id))
        .select(ApiUser::as_select())
        .order(api_users::username.asc())
        .load(conn)
}

pub fn set_active(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(api_users::table.find(id))
        .set((api_users::active.eq(active), api_users::updated_at.eq(at)))
        .execute(conn)
}

pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(api_users::table.find(id))
        .set((
            api_users::password_hash.eq(hash),
            api_users::updated_at.eq(at),
        ))
        .execute(conn)
}
