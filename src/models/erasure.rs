//! Deleting a root tenant's whole tree (issue [keys], erasure by key destruction): every row of
//! its sub-tenants, merchants, connectors, containers, profiles, instruments, transactions,
//! payment sessions, callbacks, card tokens, API users and users, in an order that satisfies the
//! foreign keys on both databases. The audit log is kept (see `console::tenants::erase`).

use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{
    api_users, callback_attempts, callbacks, card_tokens, connector_members, connectors,
    containers, global_settings, idempotency_keys, instruments, lifecycle_runs, merchants,
    monri_access_tokens, payment_sessions, profiles, tenants, transactions, tx_daily_counts,
    user_recovery_codes, user_two_factor, users,
};

/// What a tree holds (for the confirmation page) or what was deleted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeCounts {
    pub tenants: i64,
    pub merchants: i64,
    pub connectors: i64,
    pub containers: i64,
    pub profiles: i64,
    pub instruments: i64,
    pub transactions: i64,
    pub users: i64,
}

/// Paths hold only ids and `/` (no LIKE wildcard), as everywhere else in the models.
fn like(path: &str) -> String {
    format!("{path}%")
}

/// Counts what lies under `path` (a tenant's materialized path).
pub fn count(conn: &mut DbConnection, path: &str) -> QueryResult<TreeCounts> {
    let p = like(path);
    let tenant_ids = tenants::table
        .filter(tenants::path.like(p.clone()))
        .select(tenants::id);
    let container_ids = containers::table
        .filter(containers::tenant_id.eq_any(tenant_ids))
        .select(containers::id);
    let profile_ids = profiles::table
        .filter(profiles::container_id.eq_any(container_ids))
        .select(profiles::id);
    Ok(TreeCounts {
        tenants: tenants::table
            .filter(tenants::path.like(p.clone()))
            .count()
            .get_result(conn)?,
        merchants: merchants::table
            .filter(merchants::tenant_path.like(p.clone()))
            .count()
            .get_result(conn)?,
        connectors: connectors::table
            .filter(connectors::tenant_path.like(p.clone()))
            .count()
            .get_result(conn)?,
        containers: containers::table
            .filter(
                containers::tenant_id.eq_any(
                    tenants::table
                        .filter(tenants::path.like(p.clone()))
                        .select(tenants::id),
                ),
            )
            .count()
            .get_result(conn)?,
        profiles: profiles::table
            .filter(
                profiles::container_id.eq_any(
                    containers::table
                        .filter(
                            containers::tenant_id.eq_any(
                                tenants::table
                                    .filter(tenants::path.like(p.clone()))
                                    .select(tenants::id),
                            ),
                        )
                        .select(containers::id),
                ),
            )
            .count()
            .get_result(conn)?,
        instruments: instruments::table
            .filter(instruments::profile_id.eq_any(profile_ids))
            .count()
            .get_result(conn)?,
        transactions: transactions::table
            .filter(transactions::tenant_path.like(p.clone()))
            .count()
            .get_result(conn)?,
        users: users::table
            .filter(users::scope_path.like(p))
            .count()
            .get_result(conn)?,
    })
}

/// Deletes everything under `path`, the tenants themselves last (deepest first). Runs in the
/// caller's transaction; returns what it deleted.
pub fn delete_tree(conn: &mut DbConnection, path: &str) -> QueryResult<TreeCounts> {
    let before = count(conn, path)?;
    let p = like(path);
    let connector_ids = || {
        connectors::table
            .filter(connectors::tenant_path.like(p.clone()))
            .select(connectors::id)
    };
    let tenant_ids = || {
        tenants::table
            .filter(tenants::path.like(p.clone()))
            .select(tenants::id)
    };
    let container_ids = || {
        containers::table
            .filter(containers::tenant_id.eq_any(tenant_ids()))
            .select(containers::id)
    };
    let tx_uuids = || {
        transactions::table
            .filter(transactions::connector_id.eq_any(connector_ids()))
            .select(transactions::uuid)
    };
    let user_ids = || {
        users::table
            .filter(users::scope_path.like(p.clone()))
            .select(users::id)
    };
    diesel::delete(
        callback_attempts::table.filter(
            callback_attempts::callback_id.eq_any(
                callbacks::table
                    .filter(callbacks::connector_id.eq_any(connector_ids()))
                    .select(callbacks::id),
            ),
        ),
    )
    .execute(conn)?;
    diesel::delete(callbacks::table.filter(callbacks::connector_id.eq_any(connector_ids())))
        .execute(conn)?;
    diesel::delete(
        payment_sessions::table.filter(payment_sessions::transaction_uuid.eq_any(tx_uuids())),
    )
    .execute(conn)?;
    diesel::delete(
        idempotency_keys::table.filter(idempotency_keys::connector_id.eq_any(connector_ids())),
    )
    .execute(conn)?;
    diesel::delete(
        monri_access_tokens::table
            .filter(monri_access_tokens::connector_id.eq_any(connector_ids())),
    )
    .execute(conn)?;
    diesel::delete(card_tokens::table.filter(card_tokens::connector_id.eq_any(connector_ids())))
        .execute(conn)?;
    diesel::delete(transactions::table.filter(transactions::connector_id.eq_any(connector_ids())))
        .execute(conn)?;
    diesel::delete(tx_daily_counts::table.filter(tx_daily_counts::tenant_path.like(p.clone())))
        .execute(conn)?;
    diesel::delete(
        instruments::table.filter(
            instruments::profile_id.eq_any(
                profiles::table
                    .filter(profiles::container_id.eq_any(container_ids()))
                    .select(profiles::id),
            ),
        ),
    )
    .execute(conn)?;
    diesel::delete(instruments::table.filter(instruments::connector_id.eq_any(connector_ids())))
        .execute(conn)?;
    diesel::delete(profiles::table.filter(profiles::container_id.eq_any(container_ids())))
        .execute(conn)?;
    diesel::delete(
        lifecycle_runs::table
            .filter(lifecycle_runs::container_id.eq_any(container_ids().nullable())),
    )
    .execute(conn)?;
    diesel::delete(global_settings::table.filter(global_settings::tenant_id.eq_any(tenant_ids())))
        .execute(conn)?;
    diesel::delete(
        connector_members::table.filter(
            connector_members::meta_connector_id
                .eq_any(connector_ids())
                .or(connector_members::member_connector_id.eq_any(connector_ids())),
        ),
    )
    .execute(conn)?;
    diesel::delete(connectors::table.filter(connectors::tenant_path.like(p.clone())))
        .execute(conn)?;
    diesel::delete(containers::table.filter(containers::tenant_id.eq_any(tenant_ids())))
        .execute(conn)?;
    diesel::delete(api_users::table.filter(api_users::tenant_path.like(p.clone())))
        .execute(conn)?;
    diesel::delete(
        user_recovery_codes::table.filter(user_recovery_codes::user_id.eq_any(user_ids())),
    )
    .execute(conn)?;
    diesel::delete(user_two_factor::table.filter(user_two_factor::user_id.eq_any(user_ids())))
        .execute(conn)?;
    diesel::delete(users::table.filter(users::scope_path.like(p.clone()))).execute(conn)?;
    diesel::delete(merchants::table.filter(merchants::tenant_path.like(p.clone())))
        .execute(conn)?;
    // Children before parents (parent_id references tenants).
    let mut tree: Vec<(String, i32)> = tenants::table
        .filter(tenants::path.like(p))
        .select((tenants::id, tenants::depth))
        .load(conn)?;
    tree.sort_by_key(|(_, d)| std::cmp::Reverse(*d));
    for (id, _) in tree {
        diesel::delete(tenants::table.find(id)).execute(conn)?;
    }
    Ok(before)
}
