use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{connector_members, connectors, merchants};

#[derive(Debug, Clone, Default, Queryable, Selectable, Insertable)]
#[diesel(table_name = connectors)]
pub struct Connector {
    pub id: String,
    pub merchant_id: String,
    pub tenant_id: String,
    pub tenant_path: String,
    pub name: String,
    /// `creditcard`, `sepa` or `meta`.
    pub adapter: String,
    pub api_key: String,
    pub public_key: String,
    /// The signature secret, sealed by the vault (never stored in clear).
    pub shared_secret: String,
    pub container_id: Option<String>,
    pub ignore_global: bool,
    pub signing: bool,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// Monri `authenticity_token`: 40 alphanumerics, public (it names the connector in the
    /// WP3-v2.1 header and as OAuth `client_id`).
    pub monri_authenticity_token: String,
    /// Monri `merchant_key`, sealed by the vault (`None` until one is issued).
    pub monri_merchant_key: Option<String>,
    /// Where lifecycle events of the effective container's profiles are sent (`None`: none).
    pub lifecycle_webhook_url: Option<String>,
    /// How many days before the last day of a card's expiry month `instrument.expiring` is sent.
    pub expiry_notice_days: i32,
}

#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = connectors)]
#[diesel(treat_none_as_null = true)]
pub struct BaseData {
    pub name: String,
    pub container_id: Option<String>,
    pub ignore_global: bool,
    pub signing: bool,
    pub active: bool,
    pub lifecycle_webhook_url: Option<String>,
    pub expiry_notice_days: i32,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, c: &Connector) -> QueryResult<()> {
    diesel::insert_into(connectors::table)
        .values(c)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Connector>> {
    connectors::table
        .find(id)
        .select(Connector::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_api_key(conn: &mut DbConnection, api_key: &str) -> QueryResult<Option<Connector>> {
    connectors::table
        .filter(connectors::api_key.eq(api_key))
        .select(Connector::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_public_key(conn: &mut DbConnection, key: &str) -> QueryResult<Option<Connector>> {
    connectors::table
        .filter(connectors::public_key.eq(key))
        .select(Connector::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_monri_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<Connector>> {
    connectors::table
        .filter(connectors::monri_authenticity_token.eq(token))
        .select(Connector::as_select())
        .first(conn)
        .optional()
}

/// How a caller names the connector it acts as.
#[derive(Debug, Clone, Copy)]
pub enum Named<'a> {
    Id(&'a str),
    /// The API key of the IXOPAY APIs (Transaction, Customer Profiles, Status).
    ApiKey(&'a str),
    /// The public integration key of tokenize.
    PublicKey(&'a str),
    /// The Monri authenticity token (WP3-v2.1 header, OAuth `client_id`).
    MonriToken(&'a str),
}

/// The connector named `by` if it may act: it is active and so is its merchant (`None`
/// otherwise, as for an unknown name). The one rule for "may this connector act": every API's
/// authentication, tokenize and the payment pages load their connector with it.
pub fn find_acting(conn: &mut DbConnection, by: Named<'_>) -> QueryResult<Option<Connector>> {
    let q = connectors::table
        .inner_join(merchants::table)
        .filter(connectors::active.eq(true))
        .filter(merchants::active.eq(true))
        .select(Connector::as_select())
        .into_boxed();
    let q = match by {
        Named::Id(id) => q.filter(connectors::id.eq(id)),
        Named::ApiKey(k) => q.filter(connectors::api_key.eq(k)),
        Named::PublicKey(k) => q.filter(connectors::public_key.eq(k)),
        Named::MonriToken(t) => q.filter(connectors::monri_authenticity_token.eq(t)),
    };
    q.first(conn).optional()
}

pub fn set_monri_credentials(
    conn: &mut DbConnection,
    id: &str,
    authenticity_token: &str,
    sealed_merchant_key: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(connectors::table.find(id))
        .set((
            connectors::monri_authenticity_token.eq(authenticity_token),
            connectors::monri_merchant_key.eq(Some(sealed_merchant_key)),
            connectors::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn for_merchant(conn: &mut DbConnection, merchant_id: &str) -> QueryResult<Vec<Connector>> {
    connectors::table
        .filter(connectors::merchant_id.eq(merchant_id))
        .select(Connector::as_select())
        .order(connectors::name.asc())
        .load(conn)
}

pub fn for_tenant(conn: &mut DbConnection, tenant_id: &str) -> QueryResult<Vec<Connector>> {
    connectors::table
        .filter(connectors::tenant_id.eq(tenant_id))
        .select(Connector::as_select())
        .order(connectors::name.asc())
        .load(conn)
}

/// Connectors under a path prefix (all when `None`).
pub fn under(conn: &mut DbConnection, prefix: Option<&str>) -> QueryResult<Vec<Connector>> {
    let mut q = connectors::table
        .select(Connector::as_select())
        .into_boxed();
    if let Some(p) = prefix {
        q = q.filter(connectors::tenant_path.like(format!("{p}%")));
    }
    q.order(connectors::name.asc()).load(conn)
}

/// Connectors of the tenants under `prefix` that have a Lifecycle webhook URL.
pub fn with_lifecycle_webhook_under(
    conn: &mut DbConnection,
    prefix: &str,
) -> QueryResult<Vec<Connector>> {
    connectors::table
        .filter(connectors::tenant_path.like(format!("{prefix}%")))
        .filter(connectors::lifecycle_webhook_url.is_not_null())
        .select(Connector::as_select())
        .order(connectors::id.asc())
        .load(conn)
}

pub fn assigned_to(conn: &mut DbConnection, container_id: &str) -> QueryResult<Vec<Connector>> {
    crate::on_inner!(conn, c => connectors::table
        .filter(connectors::container_id.eq(container_id))
        .select(Connector::as_select())
        .order(connectors::name.asc())
        .load(c))
}

pub fn update_base_data(conn: &mut DbConnection, id: &str, d: &BaseData) -> QueryResult<usize> {
    diesel::update(connectors::table.find(id))
        .set(d)
        .execute(conn)
}

pub fn set_secret(
    conn: &mut DbConnection,
    id: &str,
    sealed: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(connectors::table.find(id))
        .set((
            connectors::shared_secret.eq(sealed),
            connectors::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn members(conn: &mut DbConnection, meta_id: &str) -> QueryResult<Vec<String>> {
    connector_members::table
        .filter(connector_members::meta_connector_id.eq(meta_id))
        .select(connector_members::member_connector_id)
        .load(conn)
}

pub fn set_members(
    conn: &mut DbConnection,
    meta_id: &str,
    member_ids: &[String],
) -> QueryResult<()> {
    diesel::delete(
        connector_members::table.filter(connector_members::meta_connector_id.eq(meta_id)),
    )
    .execute(conn)?;
    for m in member_ids {
        diesel::insert_into(connector_members::table)
            .values((
                connector_members::meta_connector_id.eq(meta_id),
                connector_members::member_connector_id.eq(m),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The associated data binding a sealed Monri merchant key to its connector (and to this use,
/// so the sealed shared secret of the same row cannot stand in for it).
pub fn monri_key_aad(connector_id: &str) -> Vec<u8> {
    format!("{connector_id}:monri_merchant_key").into_bytes()
}
