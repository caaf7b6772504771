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
