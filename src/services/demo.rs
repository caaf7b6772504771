//! Demo data for `coffer serve --demo`. Idempotent: every object is looked up by name first.
//! These credentials are public; never use them in production.

use crate::db::DbConnection;
use crate::domain::{Actor, Role};
use crate::error::ServiceError;
use crate::models::merchant::{self, Merchant};
use crate::models::tenant::{self, Tenant};
use crate::models::user;
use crate::services::{merchants, tenants, users};

fn ensure_tenant(
    conn: &mut DbConnection,
    name: &str,
    parent: Option<&Tenant>,
) -> Result<Tenant, ServiceError> {
    if let Some(t) = tenant::find_by_name(conn, name)? {
        return Ok(t);
    }
    tenants::create(
        conn,
        &Actor::system(),
        tenants::NewTenant {
            parent_id: parent.map(|p| p.id.clone()),
            name: name.into(),
        },
    )
}

fn ensure_merchant(
    conn: &mut DbConnection,
    t: &Tenant,
    name: &str,
) -> Result<Merchant, ServiceError> {
    if let Some(m) = merchant::find_by_name(conn, &t.id, name)? {
        return Ok(m);
    }
    merchants::create(conn, &Actor::system(), &t.id, name)
}

fn ensure_user(
    conn: &mut DbConnection,
    username: &str,
    pw: &str,
    role: Role,
    tenant: Option<&Tenant>,
    merchant: Option<&Merchant>,
) -> Result<(), ServiceError> {
    if user::find_by_username(conn, username)?.is_some() {
        return Ok(());
    }
    users::create_system(
        conn,
        username,
        pw,
        role,
        tenant.map(|t| (t.id.as_str(), t.path.as_str())),
        merchant.map(|m| m.id.as_str()),
    )?;
    Ok(())
}

/// The demo objects later issues build on.
pub struct Demo {
    pub acme_group: Tenant,
    pub acme_retail: Tenant,
    pub acme_shop: Merchant,
    pub acme_outlet: Merchant,
}

pub fn seed(conn: &mut DbConnection) -> Result<Demo, ServiceError> {
    let acme_group = ensure_tenant(conn, "Acme Group", None)?;
    let acme_retail = ensure_tenant(conn, "Acme Retail", Some(&acme_group))?;
    let acme_shop = ensure_merchant(conn, &acme_group, "Acme Shop")?;
    let acme_outlet = ensure_merchant(conn, &acme_retail, "Acme Outlet")?;
    // `admin` may already exist from the first start: it then keeps its password.
    ensure_user(conn, "admin", "admin-demo", Role::PlatformAdmin, None, None)?;
    ensure_user(
        conn,
        "manager",
        "manager-demo",
        Role::TenantManager,
        Some(&acme_group),
        None,
    )?;
    ensure_user(
        conn,
        "merchant",
        "merchant-demo",
        Role::MerchantAdmin,
        None,
        Some(&acme_shop),
    )?;
    Ok(Demo {
        acme_group,
        acme_retail,
        acme_shop,
        acme_outlet,
    })
}
