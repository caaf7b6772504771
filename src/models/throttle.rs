use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::login_throttle;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = login_throttle)]
#[diesel(treat_none_as_null = true)]
pub struct Throttle {
    pub key: String,
    pub failures: i32,
    pub first_failure_at: NaiveDateTime,
    pub locked_until: Option<NaiveDateTime>,
}

pub fn find(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Throttle>> {
    login_throttle::table
        .find(key)
        .select(Throttle::as_select())
        .first(conn)
        .optional()
}

/// Writes the row (insert, or update when it exists). Runs inside the caller's transaction.
pub fn save(conn: &mut DbConnection, t: &Throttle) -> QueryResult<()> {
    let n = diesel::update(login_throttle::table.find(&t.key))
        .set(t)
        .execute(conn)?;
    if n == 0 {
        diesel::insert_into(login_throttle::table)
            .values(t)
            .execute(conn)?;
    }
    Ok(())
}

pub fn clear(conn: &mut DbConnection, key: &str) -> QueryResult<usize> {
    diesel::delete(login_throttle::table.find(key)).execute(conn)
}
