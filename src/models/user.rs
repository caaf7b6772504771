use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::users;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub tenant_id: Option<String>,
    pub merchant_id: Option<String>,
    /// Path of the tenant the user belongs to (directly, or through the merchant); NULL for
    /// platform admins.
    pub scope_path: Option<String>,
    pub active: bool,
    /// Bumped on password change and deactivation: older sessions stop working.
    pub session_epoch: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub last_login_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConnection, u: &User) -> QueryResult<()> {
    diesel::insert_into(users::table)
        .values(u)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<User>> {
    crate::on_inner!(conn, c => users::table
        .find(id)
        .select(User::as_select())
        .first(c)
        .optional())
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> QueryResult<Option<User>> {
    users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

/// Users visible under a scope: all (`None`), or those whose scope path starts with `prefix`.
/// `merchant` narrows to one merchant's users.
pub fn list(
    conn: &mut DbConnection,
    prefix: Option<&str>,
    merchant: Option<&str>,
) -> QueryResult<Vec<User>> {
    let mut q = users::table.select(User::as_select()).into_boxed();
    if let Some(p) = prefix {
        q = q.filter(users::scope_path.like(format!("{p}%")));
    }
    if let Some(m) = merchant {
        q = q.filter(users::merchant_id.eq(m));
    }
    q.order(users::username.asc()).load(conn)
}

pub fn count_for_tenant(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<i64> {
    users::table
        .filter(users::tenant_id.eq(tenant_id))
        .count()
        .get_result(conn)
}

pub fn set_password(
    conn: &mut DbConnection,
    id: &str,
    hash: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::password_hash.eq(hash),
            users::session_epoch.eq(users::session_epoch + 1),
            users::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn set_active(
    conn: &mut DbConnection,
    id: &str,
    active: bool,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set((
            users::active.eq(active),
            users::session_epoch.eq(users::session_epoch + 1),
            users::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn touch_login(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::last_login_at.eq(Some(at)))
        .execute(conn)
}

pub fn bump_epoch(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::session_epoch.eq(users::session_epoch + 1))
        .execute(conn)
}

/// Locks the user's row until the end of the transaction (a write that changes nothing), so
/// that changes of one user's credentials run one after the other on PostgreSQL too.
pub fn lock(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::update(users::table.find(id))
        .set(users::session_epoch.eq(users::session_epoch))
        .execute(conn)
}
