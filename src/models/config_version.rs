//! The configuration version (one row, bumped by triggers on every configuration write).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::config_version;

/// The current configuration version: one primary-key read.
pub fn current(conn: &mut DbConnection) -> QueryResult<i64> {
    crate::on_inner!(conn, c => config_version::table
        .find(1)
        .select(config_version::version)
        .first(c))
}

/// The current configuration version as a scalar subquery, to be selected together with the
/// rows of another query: one statement reads both from one snapshot of the database
/// (`vault::config_cache::confirm`).
#[diesel::dsl::auto_type(no_type_alias)]
pub fn read_with() -> _ {
    let one: i32 = 1;
    config_version::table
        .filter(config_version::id.eq(one))
        .select(config_version::version)
        .single_value()
}
