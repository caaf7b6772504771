//! Demo data for `coffer serve --demo`. Idempotent: every object is looked up by name first.
//! These credentials are public; never use them in production.

use crate::console::connectors::{self, BaseDataInput, Keys, NewConnector};
use crate::console::containers;
use crate::console::{merchants, tenants, users};
use crate::db::DbConnection;
use crate::domain::{Actor, Role};
use crate::error::ServiceError;
use crate::models::connector::Connector;
use crate::models::container::{self, Container};
use crate::models::merchant::{self, Merchant};
use crate::models::tenant::{self, Tenant};
use crate::models::{api_user, connector, user};
use crate::vault::keyring::Keyring;

fn ensure_tenant(
    conn: &mut DbConnection,
    keyring: &Keyring,
    name: &str,
    parent: Option<&Tenant>,
) -> Result<Tenant, ServiceError> {
    if let Some(t) = tenant::find_by_name(conn, name)? {
        return Ok(t);
    }
    tenants::create(
        conn,
        keyring,
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

fn ensure_container(
    conn: &mut DbConnection,
    t: &Tenant,
    name: &str,
) -> Result<Container, ServiceError> {
    if let Some(c) = container::find_by_name(conn, &t.id, name)? {
        return Ok(c);
    }
    containers::create(conn, &Actor::system(), &t.id, name)
}

#[allow(clippy::too_many_arguments)]
fn ensure_connector(
    conn: &mut DbConnection,
    keyring: &Keyring,
    m: &Merchant,
    name: &str,
    api_key: &str,
    public_key: &str,
    secret: &str,
    container: Option<&Container>,
    signing: bool,
) -> Result<Connector, ServiceError> {
    if let Some(k) = connector::find_by_api_key(conn, api_key)? {
        return Ok(k);
    }
    let actor = Actor::system();
    let keys = Keys {
        api_key: api_key.into(),
        public_key: public_key.into(),
        shared_secret: secret.into(),
        ..Keys::generate()
    };
    let input = NewConnector {
        merchant_id: m.id.clone(),
        name: name.into(),
        adapter: "creditcard".into(),
    };
    let (k, _) = connectors::create(conn, keyring, &actor, input, keys)?;
    let base = BaseDataInput {
        name: name.into(),
        container_id: container.map(|c| c.id.clone()).unwrap_or_default(),
        ignore_global: false,
        signing,
        active: true,
        members: vec![],
        lifecycle_webhook_url: String::new(),
        expiry_notice_days: String::new(),
        target_policy: crate::gateway::target::AllowPrivate::None,
    };
    connectors::update(conn, &actor, &k.id, base)
}

fn ensure_api_user(
    conn: &mut DbConnection,
    keyring: &Keyring,
    m: &Merchant,
    username: &str,
    pw: &str,
) -> Result<(), ServiceError> {
    if api_user::find_by_username(conn, username)?.is_none() {
        connectors::create_api_user(conn, keyring, &Actor::system(), &m.id, username, Some(pw))?;
    }
    Ok(())
}

/// Monri credentials of Acme Shop Cards (demo only: published in the README).
pub const DEMO_MONRI_AUTHENTICITY_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
pub const DEMO_MONRI_MERCHANT_KEY: &str = "demo-shop-merchant-key";

/// Gives a demo connector its published Monri credentials, also when it was created before
/// they existed (it then has a generated token and no merchant key).
fn ensure_monri_credentials(
    conn: &mut DbConnection,
    keyring: &Keyring,
    k: &Connector,
    token: &str,
    merchant_key: &str,
) -> Result<(), ServiceError> {
    if k.monri_authenticity_token == token
        && let Some(sealed) = &k.monri_merchant_key
    {
        match keyring.open_string(conn, sealed, &connectors::monri_key_aad(&k.id)) {
            Ok(v) if v == merchant_key => return Ok(()),
            // The key manager is unreachable: left as it is (checked again at the next start).
            Err(e) if crate::error::KeysUnavailable::find(&e).is_some() => return Ok(()),
            _ => {}
        }
    }
    connectors::set_monri_credentials(conn, keyring, &Actor::system(), k, token, merchant_key)
}

/// The demo objects later issues build on.
pub struct Demo {
    pub acme_group: Tenant,
    pub acme_retail: Tenant,
    pub acme_shop: Merchant,
    pub acme_outlet: Merchant,
}

pub fn seed(conn: &mut DbConnection, keyring: &Keyring) -> Result<Demo, ServiceError> {
    let acme_group = ensure_tenant(conn, keyring, "Acme Group", None)?;
    let acme_retail = ensure_tenant(conn, keyring, "Acme Retail", Some(&acme_group))?;
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

    // [containers] demo data
    let shared = ensure_container(conn, &acme_group, "Acme Shared Profiles")?;
    if container::global_setting(conn, &acme_group.id)?.is_none() {
        containers::set_global_setting(conn, &Actor::system(), &acme_group.id, &shared.id)?;
    }
    let shop_cards = ensure_connector(
        conn,
        keyring,
        &acme_shop,
        "Acme Shop Cards",
        "demo-shop-cards",
        "demo-shop-public",
        "demo-shop-cards-secret",
        None,
        false,
    )?;
    ensure_monri_credentials(
        conn,
        keyring,
        &shop_cards,
        DEMO_MONRI_AUTHENTICITY_TOKEN,
        DEMO_MONRI_MERCHANT_KEY,
    )?;
    ensure_connector(
        conn,
        keyring,
        &acme_shop,
        "Acme Shop Cards Signed",
        "demo-shop-signed",
        "demo-shop-signed-public",
        "demo-signed-secret",
        None,
        true,
    )?;
    ensure_connector(
        conn,
        keyring,
        &acme_outlet,
        "Acme Outlet Cards",
        "demo-outlet-cards",
        "demo-outlet-public",
        "demo-outlet-cards-secret",
        Some(&shared),
        false,
    )?;
    let globex = ensure_tenant(conn, keyring, "Globex", None)?;
    let globex_store = ensure_merchant(conn, &globex, "Globex Store")?;
    let globex_profiles = ensure_container(conn, &globex, "Globex Profiles")?;
    ensure_connector(
        conn,
        keyring,
        &globex_store,
        "Globex Cards",
        "demo-globex-cards",
        "demo-globex-public",
        "demo-globex-cards-secret",
        Some(&globex_profiles),
        false,
    )?;
    ensure_api_user(conn, keyring, &acme_shop, "shop-api", "shop-api-demo")?;
    ensure_api_user(conn, keyring, &acme_outlet, "outlet-api", "outlet-api-demo")?;
    ensure_api_user(
        conn,
        keyring,
        &globex_store,
        "globex-api",
        "globex-api-demo",
    )?;
    Ok(Demo {
        acme_group,
        acme_retail,
        acme_shop,
        acme_outlet,
    })
}
