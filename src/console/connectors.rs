//! Connectors of a merchant and their Connector Base Data, and the merchant's API users.

use crate::audit::{self, Change, Place};
use crate::console::merchants;
use crate::db::{DbConnection, is_unique_violation};
use crate::domain::{Actor, clean_name, clean_username};
use crate::error::{FieldErrors, ServiceError};
use crate::gateway::api_password;
use crate::models::api_user::{self, ApiUser};
use crate::models::connector::{self, BaseData, Connector};
use crate::models::merchant::Merchant;
use crate::models::{merchant, now};
use crate::vault::keyring::Keyring;
use crate::vault::sharing::{self, Effective};

pub const ADAPTERS: [(&str, &str); 3] = [
    ("creditcard", "Creditcard (simulator)"),
    ("sepa", "SEPA Direct Debit (simulator)"),
    ("meta", "Meta-connector"),
];

pub fn adapter_label(a: &str) -> &'static str {
    ADAPTERS
        .iter()
        .find(|(k, _)| *k == a)
        .map_or("unknown", |(_, l)| l)
}

pub use crate::payments::means::payment_method;

pub fn get(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Connector, ServiceError> {
    let k = connector::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if actor.scope.covers_merchant(&k.merchant_id, &k.tenant_path) {
        Ok(k)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Connectors in scope with their merchant's name.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
) -> Result<Vec<(Connector, String)>, ServiceError> {
    let ms: Vec<Merchant> = merchants::list(conn, actor)?
        .into_iter()
        .map(|(m, _)| m)
        .collect();
    let mut out = vec![];
    for k in connector::under(conn, actor.scope.path_prefix())? {
        if let Some(m) = ms.iter().find(|m| m.id == k.merchant_id) {
            out.push((k, m.name.clone()));
        }
    }
    Ok(out)
}

pub use crate::vault::sharing::effective;

/// A container assignment the rules suspend now (see [`sharing::Source::suspension`]).
pub struct Suspended {
    /// The assigned container's name (its id when it no longer exists).
    pub container: String,
    pub reason: String,
}

/// The connector's assignment if it is suspended, given its effective container.
pub fn suspended(
    conn: &mut DbConnection,
    k: &Connector,
    e: &Effective,
) -> Result<Option<Suspended>, ServiceError> {
    let (Some(cid), Some(reason)) = (&k.container_id, e.source.suspension()) else {
        return Ok(None);
    };
    let container =
        crate::models::container::find(conn, cid)?.map_or_else(|| cid.clone(), |c| c.name);
    Ok(Some(Suspended { container, reason }))
}

/// Explicit keys for demo data; generated otherwise.
pub struct Keys {
    pub api_key: String,
    pub public_key: String,
    pub shared_secret: String,
    /// Monri `authenticity_token` (public) and `merchant_key` (secret).
    pub monri_authenticity_token: String,
    pub monri_merchant_key: String,
}

impl Keys {
    pub fn generate() -> Keys {
        Keys {
            api_key: crate::ids::random_alnum(32).to_ascii_lowercase(),
            public_key: crate::ids::random_alnum(32),
            shared_secret: crate::ids::random_alnum(40),
            monri_authenticity_token: monri_authenticity_token(),
            monri_merchant_key: monri_merchant_key(),
        }
    }
}

/// A new Monri authenticity token: 40 alphanumerics.
pub fn monri_authenticity_token() -> String {
    crate::ids::random_alnum(40)
}

/// A new Monri merchant key: 40 alphanumerics (~238 bits).
pub fn monri_merchant_key() -> String {
    crate::ids::random_alnum(40)
}

pub use crate::models::connector::monri_key_aad;

/// Secrets of a new connector, in clear, to be shown once.
pub struct Issued {
    pub shared_secret: String,
    pub monri_merchant_key: String,
}

pub struct NewConnector {
    pub merchant_id: String,
    pub name: String,
    pub adapter: String,
}

/// Creates a connector; returns it with its shared secret and Monri merchant key in clear, to
/// be shown once.
pub fn create(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    input: NewConnector,
    keys: Keys,
) -> Result<(Connector, Issued), ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", &input.name, 100);
    if !ADAPTERS.iter().any(|(k, _)| *k == input.adapter) {
        errors.add("adapter", "Choose an adapter.");
    }
    let m = merchants::get(conn, actor, &input.merchant_id).ok();
    if m.is_none() {
        errors.add("merchant_id", "Choose a merchant.");
    }
    errors.into_result()?;
    let Some(m) = m else {
        return Err(ServiceError::NotFound);
    };
    let at = now();
    let id = crate::ids::new_id();
    let owner = crate::vault::keyring::Owner::of_path(Some(&m.tenant_path));
    let sealed = keyring.seal(conn, &owner, keys.shared_secret.as_bytes(), id.as_bytes())?;
    let sealed_monri = keyring.seal(
        conn,
        &owner,
        keys.monri_merchant_key.as_bytes(),
        &monri_key_aad(&id),
    )?;
    let k = Connector {
        id,
        merchant_id: m.id.clone(),
        tenant_id: m.tenant_id.clone(),
        tenant_path: m.tenant_path.clone(),
        name,
        adapter: input.adapter,
        api_key: keys.api_key,
        public_key: keys.public_key,
        shared_secret: sealed,
        container_id: None,
        ignore_global: false,
        signing: false,
        active: true,
        created_at: at,
        updated_at: at,
        monri_authenticity_token: keys.monri_authenticity_token,
        monri_merchant_key: Some(sealed_monri),
        lifecycle_webhook_url: None,
        expiry_notice_days: crate::vault::events::DEFAULT_EXPIRY_NOTICE_DAYS,
    };
    crate::db::write_tx(conn, |tx| {
        match connector::insert(tx, &k) {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::Conflict(
                    "API key or authenticity token already in use.".into(),
                ));
            }
            r => r?,
        }
        audit::record(
            tx,
            actor,
            &Place::merchant(&m.tenant_id, &m.tenant_path, &m.id),
            Change {
                action: "connector.create",
                object_type: "connector",
                object_id: &k.id,
                summary: format!(
                    "Created connector {} ({}) for {}",
                    k.name,
                    adapter_label(&k.adapter),
                    m.name
                ),
                changes: vec![
                    ("name", None, Some(k.name.clone())),
                    ("api_key", None, Some(k.api_key.clone())),
                ],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok((
        k,
        Issued {
            shared_secret: keys.shared_secret,
            monri_merchant_key: keys.monri_merchant_key,
        },
    ))
}

#[derive(Debug, Clone)]
pub struct BaseDataInput {
    pub name: String,
    pub container_id: String,
    pub ignore_global: bool,
    pub signing: bool,
    pub active: bool,
    pub members: Vec<String>,
    /// "Lifecycle webhook URL": empty for none.
    pub lifecycle_webhook_url: String,
    /// "Expiry notice (days)": empty for the default.
    pub expiry_notice_days: String,
    /// The callback target policy the URL is checked against (as callbacks are).
    pub target_policy: crate::gateway::target::AllowPrivate,
}

/// Saves the Connector Base Data. The container is re-checked against the sharing rules here,
/// whatever the form offered. A suspended assignment (which the form cannot offer) is kept when
/// no container is submitted.
/// What saving `input` would do, without saving it: the connector before and as it would be,
/// and how its effective container would move ([`crate::console::impact`]).
pub fn update_impact(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    input: BaseDataInput,
) -> Result<(Connector, Connector, crate::console::impact::Impact), ServiceError> {
    let old = get(conn, actor, id)?;
    let (new, impact) = crate::console::impact::preview(conn, std::slice::from_ref(&old), |tx| {
        update(tx, actor, id, input)
    })?;
    Ok((old, new, impact))
}

pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    input: BaseDataInput,
) -> Result<Connector, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let old = get(conn, actor, id)?;
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", &input.name, 100);
    let keep_suspended = input.container_id.trim().is_empty()
        && old.container_id.is_some()
        && effective(conn, &old)?.source.suspension().is_some();
    let container = match input.container_id.trim() {
        "" => None,
        cid => match sharing::check_assignable(conn, &old.tenant_id, cid, "container_id") {
            Ok(c) => Some(c),
            Err(ServiceError::Validation(e)) => {
                for (f, m) in e.0 {
                    errors.add(&f, m);
                }
                None
            }
            Err(e) => return Err(e),
        },
    };
    let mut members = vec![];
    if old.adapter == "meta" {
        let own = connector::for_merchant(conn, &old.merchant_id)?;
        for mid in &input.members {
            match own.iter().find(|k| &k.id == mid && k.adapter != "meta") {
                Some(k) => members.push(k.id.clone()),
                None => errors.add(
                    "members",
                    "Members must be non-meta connectors of the same merchant.",
                ),
            }
        }
    }
    let webhook = match input.lifecycle_webhook_url.trim() {
        "" => None,
        u if u.len() > 2000 => {
            errors.add("lifecycle_webhook_url", "At most 2000 characters.");
            None
        }
        u => match crate::gateway::target::check_url(u, input.target_policy) {
            Ok(_) => Some(u.to_string()),
            Err(e) => {
                errors.add(
                    "lifecycle_webhook_url",
                    format!("Lifecycle webhook URL: {e}."),
                );
                None
            }
        },
    };
    let max = crate::vault::events::MAX_EXPIRY_NOTICE_DAYS;
    let notice_days = match input.expiry_notice_days.trim() {
        "" => crate::vault::events::DEFAULT_EXPIRY_NOTICE_DAYS,
        d => match d.parse::<i32>() {
            Ok(n) if (0..=max).contains(&n) => n,
            _ => {
                errors.add(
                    "expiry_notice_days",
                    format!("Expiry notice: a whole number of days from 0 to {max}."),
                );
                0
            }
        },
    };
    errors.into_result()?;
    let data = BaseData {
        name,
        container_id: if keep_suspended {
            old.container_id.clone()
        } else {
            container.as_ref().map(|c| c.id.clone())
        },
        ignore_global: input.ignore_global,
        signing: input.signing,
        active: input.active,
        lifecycle_webhook_url: webhook,
        expiry_notice_days: notice_days,
        updated_at: now(),
    };
    let old_container = match &old.container_id {
        Some(cid) => crate::models::container::find(conn, cid)?.map(|c| c.name),
        None => None,
    };
    crate::db::write_tx(conn, |tx| {
        connector::update_base_data(tx, &old.id, &data)?;
        if old.adapter == "meta" {
            connector::set_members(tx, &old.id, &members)?;
        }
        audit::record(
            tx,
            actor,
            &Place::merchant(&old.tenant_id, &old.tenant_path, &old.merchant_id),
            Change {
                action: "connector.update",
                object_type: "connector",
                object_id: &old.id,
                summary: format!("Updated the Connector Base Data of {}", data.name),
                changes: vec![
                    ("name", Some(old.name.clone()), Some(data.name.clone())),
                    (
                        "customer_profile_container",
                        old_container.clone(),
                        if keep_suspended {
                            old_container.clone()
                        } else {
                            container.as_ref().map(|c| c.name.clone())
                        },
                    ),
                    (
                        "ignore_global_connector_settings",
                        Some(old.ignore_global.to_string()),
                        Some(data.ignore_global.to_string()),
                    ),
                    (
                        "request_signing",
                        Some(old.signing.to_string()),
                        Some(data.signing.to_string()),
                    ),
                    (
                        "active",
                        Some(old.active.to_string()),
                        Some(data.active.to_string()),
                    ),
                    (
                        "lifecycle_webhook_url",
                        old.lifecycle_webhook_url.clone(),
                        data.lifecycle_webhook_url.clone(),
                    ),
                    (
                        "expiry_notice_days",
                        Some(old.expiry_notice_days.to_string()),
                        Some(data.expiry_notice_days.to_string()),
                    ),
                ],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    get(conn, actor, id)
}

/// Connector `id`, which `actor` manages.
fn managed(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Connector, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    get(conn, actor, id)
}

/// What rotating the shared secret of connector `id` does, in words (its confirmation page).
pub fn rotate_secret_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Connector, Vec<String>), ServiceError> {
    let k = managed(conn, actor, id)?;
    let pending = crate::models::callback::pending_for_connector(conn, &k.id)?;
    let lines = vec![
        format!(
            "Requests to {} signed with the current shared secret are refused from the moment you confirm; its API clients need the new one, shown to you once.",
            k.name
        ),
        format!(
            "{} waiting for delivery will be signed with the new secret.",
            crate::domain::plural(pending, "callback", "callbacks")
        ),
    ];
    Ok((k, lines))
}

/// What rotating (or first issuing) the Monri merchant key of connector `id` does, in words.
pub fn rotate_monri_key_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Connector, Vec<String>), ServiceError> {
    let k = managed(conn, actor, id)?;
    let live = crate::models::monri::live_tokens_of(conn, &k.id, now())?;
    let mut lines = vec![];
    if k.monri_merchant_key.is_some() {
        lines.push(format!(
            "The current Monri merchant key of {} stops working the moment you confirm: WP3-v2.1 signatures and OAuth requests made with it are refused.",
            k.name
        ));
    }
    lines.push(format!(
        "{} of {} {} revoked.",
        crate::domain::plural(live, "live access token", "live access tokens"),
        k.name,
        if live == 1 { "is" } else { "are" }
    ));
    lines.push("The new merchant key is shown to you once.".to_string());
    Ok((k, lines))
}

/// A new shared secret, returned in clear once; only the sealed form is stored.
pub fn rotate_secret(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    id: &str,
) -> Result<(Connector, String), ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let k = get(conn, actor, id)?;
    let secret = crate::ids::random_alnum(40);
    let owner = crate::vault::keyring::Owner::of_path(Some(&k.tenant_path));
    let sealed = keyring.seal(conn, &owner, secret.as_bytes(), k.id.as_bytes())?;
    crate::db::write_tx(conn, |tx| {
        connector::set_secret(tx, &k.id, &sealed, now())?;
        audit::record(
            tx,
            actor,
            &Place::merchant(&k.tenant_id, &k.tenant_path, &k.merchant_id),
            Change {
                action: "connector.rotate_secret",
                object_type: "connector",
                object_id: &k.id,
                summary: format!("Rotated the shared secret of {}", k.name),
                changes: vec![],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok((k, secret))
}

/// A new Monri merchant key (issued for the first time, or replacing the old one), returned in
/// clear once; only the sealed form is stored. The connector's OAuth tokens are revoked.
pub fn rotate_monri_key(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    id: &str,
) -> Result<(Connector, String), ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let k = get(conn, actor, id)?;
    let key = monri_merchant_key();
    set_monri_credentials(conn, keyring, actor, &k, &k.monri_authenticity_token, &key)?;
    Ok((k, key))
}

/// Stores Monri credentials on a connector (the merchant key sealed), revokes its OAuth tokens
/// and writes the audit entry, in one transaction.
pub fn set_monri_credentials(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    k: &Connector,
    authenticity_token: &str,
    merchant_key: &str,
) -> Result<(), ServiceError> {
    let owner = crate::vault::keyring::Owner::of_path(Some(&k.tenant_path));
    let sealed = keyring.seal(conn, &owner, merchant_key.as_bytes(), &monri_key_aad(&k.id))?;
    let first = k.monri_merchant_key.is_none();
    crate::db::write_tx(conn, |tx| {
        match connector::set_monri_credentials(tx, &k.id, authenticity_token, &sealed, now()) {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::Conflict(
                    "Authenticity token already in use.".into(),
                ));
            }
            r => r?,
        };
        crate::models::monri::delete_tokens_of(tx, &k.id)?;
        audit::record(
            tx,
            actor,
            &Place::merchant(&k.tenant_id, &k.tenant_path, &k.merchant_id),
            Change {
                action: "connector.rotate_monri_key",
                object_type: "connector",
                object_id: &k.id,
                summary: if first {
                    format!("Issued the Monri merchant key of {}", k.name)
                } else {
                    format!("Rotated the Monri merchant key of {}", k.name)
                },
                changes: vec![(
                    "monri_authenticity_token",
                    Some(k.monri_authenticity_token.clone()),
                    Some(authenticity_token.to_string()),
                )],
            },
        )?;
        Ok::<_, ServiceError>(())
    })
}

pub fn members(conn: &mut DbConnection, k: &Connector) -> Result<Vec<Connector>, ServiceError> {
    let ids = connector::members(conn, &k.id)?;
    Ok(connector::for_merchant(conn, &k.merchant_id)?
        .into_iter()
        .filter(|c| ids.contains(&c.id))
        .collect())
}

// ---- API users ----

pub fn api_user(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<ApiUser, ServiceError> {
    let u = api_user::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if actor.scope.covers_merchant(&u.merchant_id, &u.tenant_path) {
        Ok(u)
    } else {
        Err(ServiceError::NotFound)
    }
}

pub fn api_users(
    conn: &mut DbConnection,
    actor: &Actor,
    merchant_id: &str,
) -> Result<(Merchant, Vec<ApiUser>), ServiceError> {
    let m = merchants::get(conn, actor, merchant_id)?;
    let users = api_user::for_merchant(conn, &m.id)?;
    Ok((m, users))
}

/// Creates an API user; returns the password in clear once. Stored as a keyed fast hash: API
/// passwords are checked on every request, so an argon2 hash per call would make the API slow
/// and a CPU-exhaustion target, and generated high-entropy secrets do not need a slow hash.
pub fn create_api_user(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    merchant_id: &str,
    username: &str,
    password: Option<&str>,
) -> Result<(ApiUser, String), ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let username = clean_username(&mut errors, username);
    let m = merchants::get(conn, actor, merchant_id).ok();
    if m.is_none() {
        errors.add("merchant_id", "Choose a merchant.");
    }
    errors.into_result()?;
    let Some(m) = m else {
        return Err(ServiceError::NotFound);
    };
    let pw = password.map_or_else(crate::ids::random_password, str::to_string);
    let at = now();
    let u = ApiUser {
        id: crate::ids::new_id(),
        merchant_id: m.id.clone(),
        tenant_path: m.tenant_path.clone(),
        username,
        password_hash: api_password::store_hash(keyring.mac_key()?, &pw),
        active: true,
        created_at: at,
        updated_at: at,
    };
    crate::db::write_tx(conn, |tx| {
        match api_user::insert(tx, &u) {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::invalid(
                    "username",
                    "This API username is taken.",
                ));
            }
            r => r?,
        }
        audit::record(
            tx,
            actor,
            &Place::merchant(&m.tenant_id, &m.tenant_path, &m.id),
            Change {
                action: "api_user.create",
                object_type: "api_user",
                object_id: &u.id,
                summary: format!("Created API user {} for {}", u.username, m.name),
                changes: vec![("username", None, Some(u.username.clone()))],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok((u, pw))
}

pub fn set_api_user_active(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    active: bool,
) -> Result<ApiUser, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let u = api_user(conn, actor, id)?;
    let m = merchant::find(conn, &u.merchant_id)?.ok_or(ServiceError::NotFound)?;
    crate::db::write_tx(conn, |tx| {
        api_user::set_active(tx, &u.id, active, now())?;
        audit::record(
            tx,
            actor,
            &Place::merchant(&m.tenant_id, &m.tenant_path, &m.id),
            Change {
                action: if active {
                    "api_user.activate"
                } else {
                    "api_user.deactivate"
                },
                object_type: "api_user",
                object_id: &u.id,
                summary: format!(
                    "{} API user {}",
                    if active { "Activated" } else { "Deactivated" },
                    u.username
                ),
                changes: vec![(
                    "active",
                    Some(u.active.to_string()),
                    Some(active.to_string()),
                )],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok(ApiUser { active, ..u })
}

pub fn reset_api_user(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    id: &str,
) -> Result<(ApiUser, String), ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let u = api_user(conn, actor, id)?;
    let m = merchant::find(conn, &u.merchant_id)?.ok_or(ServiceError::NotFound)?;
    let pw = crate::ids::random_password();
    let hash = api_password::store_hash(keyring.mac_key()?, &pw);
    crate::db::write_tx(conn, |tx| {
        api_user::set_password(tx, &u.id, &hash, now())?;
        audit::record(
            tx,
            actor,
            &Place::merchant(&m.tenant_id, &m.tenant_path, &m.id),
            Change {
                action: "api_user.reset_password",
                object_type: "api_user",
                object_id: &u.id,
                summary: format!("Reset the password of API user {}", u.username),
                changes: vec![],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok((u, pw))
}

/// The lifecycle events shown on a connector's "Lifecycle events" page: the newest ones.
pub const EVENTS_SHOWN: i64 = 100;

/// The connector's lifecycle events (newest first) with their attempts, if the actor's scope
/// covers the connector (else not found).
pub fn lifecycle_events(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Connector, Vec<crate::payments::callbacks::CallbackView>), ServiceError> {
    let k = get(conn, actor, id)?;
    let mut out = vec![];
    for c in crate::models::callback::events_of_connector(conn, &k.id, EVENTS_SHOWN)? {
        let attempts = crate::models::callback::attempts_of(conn, &c.id)?;
        out.push(crate::payments::callbacks::CallbackView {
            callback: c,
            attempts,
        });
    }
    Ok((k, out))
}

/// Sends a lifecycle event of the connector again (delivered or not): it is made due now and
/// the outbox delivers it. Audited.
pub fn redeliver_event(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    event_id: &str,
) -> Result<crate::models::callback::Callback, ServiceError> {
    crate::db::write_tx(conn, |tx| {
        let k = get(tx, actor, id)?;
        let e = match crate::models::callback::find(tx, event_id)? {
            Some(e) if e.connector_id == k.id && e.event_type.is_some() => e,
            _ => return Err(ServiceError::NotFound),
        };
        crate::models::callback::redeliver(tx, &e.id, now())?;
        audit::record(
            tx,
            actor,
            &Place::merchant(&k.tenant_id, &k.tenant_path, &k.merchant_id),
            Change {
                action: "lifecycle_event.redeliver",
                object_type: "lifecycle_event",
                object_id: &e.id,
                summary: format!(
                    "Redelivered the lifecycle event {} ({}) of connector {}",
                    e.id,
                    e.event_type.clone().unwrap_or_default(),
                    k.name
                ),
                changes: vec![("status", Some(e.status.clone()), Some("pending".into()))],
            },
        )?;
        crate::models::callback::find(tx, &e.id)?.ok_or(ServiceError::NotFound)
    })
}
