//! People who use the console. A user can never grant more than they have: tenant managers
//! create tenant managers and merchant admins inside their subtree only; merchant admins
//! create nobody; only platform admins create platform admins.

use crate::audit::{self, Change, Place};
use crate::console::{merchants, tenants};
use crate::db::{DbConnection, DbPool, is_unique_violation};
use crate::domain::{Actor, Role, Scope, check_new_password, clean_username};
use crate::error::{FieldErrors, ServiceError};
use crate::gateway::password::{self, HashPool};
use crate::models::user::{self, User};
use crate::models::{merchant, now};

fn visible(actor: &Actor, u: &User) -> bool {
    match &actor.scope {
        Scope::Platform => true,
        Scope::Tenant { path, .. } => u
            .scope_path
            .as_deref()
            .is_some_and(|p| p.starts_with(path.as_str())),
        Scope::Merchant { merchant_id, .. } => {
            u.merchant_id.as_deref() == Some(merchant_id.as_str())
        }
    }
}

/// Whether `actor` may reset the password or the two-factor authentication of `u`, a user it
/// can see ([`get`]): a platform admin may reset anyone else; a tenant manager only users below
/// their own tenant (managers of strict sub-tenants, and merchant admins of merchants of their
/// tenant or below), never another manager of their own tenant (only a platform admin may);
/// a merchant admin nobody. Nobody resets their own account here. Both resets ask this, and
/// the console shows a reset only where it holds.
pub fn may_reset(actor: &Actor, u: &User) -> bool {
    if u.id == actor.user_id {
        return false;
    }
    match &actor.scope {
        Scope::Platform => true,
        Scope::Tenant { path, .. } => {
            let Some(p) = u.scope_path.as_deref() else {
                return false;
            };
            match Role::parse(&u.role) {
                Some(Role::MerchantAdmin) => p.starts_with(path.as_str()),
                Some(Role::TenantManager) => p.starts_with(path.as_str()) && p != path,
                _ => false,
            }
        }
        Scope::Merchant { .. } => false,
    }
}

pub fn get(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<User, ServiceError> {
    let u = user::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if visible(actor, &u) {
        Ok(u)
    } else {
        Err(ServiceError::NotFound)
    }
}

pub fn list(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<User>, ServiceError> {
    Ok(match &actor.scope {
        Scope::Platform => user::list(conn, None, None)?,
        Scope::Tenant { path, .. } => user::list(conn, Some(path), None)?,
        Scope::Merchant { merchant_id, .. } => user::list(conn, None, Some(merchant_id))?,
    })
}

pub(crate) fn place_of(u: &User) -> Place {
    Place::of_user(u)
}

pub struct NewUser {
    pub username: String,
    pub role: String,
    pub tenant_id: String,
    pub merchant_id: String,
    pub password: String,
}

/// Creates a user: the password is hashed on the hashing pool first (`Throttled` when it is
/// full), then [`create`] runs on a connection.
pub async fn create_user(
    db: &DbPool,
    hashes: &HashPool,
    actor: Actor,
    input: NewUser,
) -> Result<User, ServiceError> {
    let ticket = hashes.reserve().map_err(|_| ServiceError::Throttled)?;
    let hash = hashes.hash(ticket, input.password.clone()).await?;
    db.run(move |c| create(c, &actor, input, &hash)).await
}

/// A new random password and its hash (made on the hashing pool), for [`reset_password`].
pub async fn new_random_password(hashes: &HashPool) -> Result<(String, String), ServiceError> {
    let ticket = hashes.reserve().map_err(|_| ServiceError::Throttled)?;
    let pw = crate::ids::random_password();
    let hash = hashes.hash(ticket, pw.clone()).await?;
    Ok((pw, hash))
}

/// `password_hash` is the hash of `input.password` (see [`create_user`]).
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    input: NewUser,
    password_hash: &str,
) -> Result<User, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let username = clean_username(&mut errors, &input.username);
    check_new_password(&mut errors, "password", &input.password);
    let role = Role::parse(&input.role);
    let (mut tenant_id, mut merchant_id, mut scope_path) = (None, None, None);
    match role {
        None => errors.add("role", "Choose a role."),
        Some(r) if r > actor.role => errors.add("role", "You cannot grant a role above your own."),
        Some(Role::PlatformAdmin) => {}
        Some(Role::TenantManager) => match tenants::get(conn, actor, input.tenant_id.trim()) {
            Ok(t) => {
                tenant_id = Some(t.id);
                scope_path = Some(t.path);
            }
            Err(_) => errors.add("tenant_id", "Choose a tenant you manage."),
        },
        Some(Role::MerchantAdmin) => match merchants::get(conn, actor, input.merchant_id.trim()) {
            Ok(m) => {
                merchant_id = Some(m.id);
                scope_path = Some(m.tenant_path);
            }
            Err(_) => errors.add("merchant_id", "Choose a merchant you manage."),
        },
    }
    errors.into_result()?;
    let Some(role) = role else {
        return Err(ServiceError::invalid("role", "Choose a role."));
    };
    let at = now();
    let u = User {
        id: crate::ids::new_id(),
        username,
        password_hash: password_hash.to_string(),
        role: role.as_str().into(),
        tenant_id,
        merchant_id,
        scope_path,
        active: true,
        session_epoch: 0,
        created_at: at,
        updated_at: at,
        last_login_at: None,
    };
    crate::db::write_tx(conn, |c| {
        match user::insert(c, &u) {
            Err(e) if is_unique_violation(&e) => {
                return Err(ServiceError::invalid("username", "This username is taken."));
            }
            r => r?,
        }
        audit::record(
            c,
            actor,
            &place_of(&u),
            Change {
                action: "user.create",
                object_type: "user",
                object_id: &u.id,
                summary: format!("Created user {} ({})", u.username, role.label()),
                changes: vec![
                    ("username", None, Some(u.username.clone())),
                    ("role", None, Some(u.role.clone())),
                ],
            },
        )?;
        Ok(u.clone())
    })
}

/// Activates or deactivates another user; deactivation ends their sessions.
pub fn set_active(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    active: bool,
) -> Result<User, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    crate::db::write_tx(conn, |c| {
        let u = get(c, actor, id)?;
        if u.id == actor.user_id {
            return Err(ServiceError::Conflict(
                "You cannot deactivate yourself.".into(),
            ));
        }
        user::set_active(c, &u.id, active, now())?;
        audit::record(
            c,
            actor,
            &place_of(&u),
            Change {
                action: if active {
                    "user.activate"
                } else {
                    "user.deactivate"
                },
                object_type: "user",
                object_id: &u.id,
                summary: format!(
                    "{} user {}",
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
        Ok(User { active, ..u })
    })
}

/// Sets another user's password to `hash`, the hash of a new random password
/// ([`new_random_password`]; the caller shows it once, it is never stored in clear and never
/// audited).
/// The user `id` whose password `actor` may reset, or why not.
fn password_resettable(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<User, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let u = get(conn, actor, id)?;
    if u.id == actor.user_id {
        return Err(ServiceError::Conflict(
            "You cannot reset your own password here: change it at /account/password, with \
             your current password."
                .into(),
        ));
    }
    if !may_reset(actor, &u) {
        return Err(ServiceError::Forbidden);
    }
    Ok(u)
}

/// What resetting the password of user `id` does, in words (its confirmation page), after the
/// same checks as [`reset_password`].
pub fn reset_password_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(User, Vec<String>), ServiceError> {
    let u = password_resettable(conn, actor, id)?;
    let lines = vec![
        format!(
            "The current password of {} stops working the moment you confirm.",
            u.username
        ),
        "A new temporary password is shown to you once; hand it over through a channel you trust."
            .to_string(),
    ];
    Ok((u, lines))
}

pub fn reset_password(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    hash: &str,
) -> Result<User, ServiceError> {
    let u = password_resettable(conn, actor, id)?;
    crate::db::write_tx(conn, |c| {
        user::set_password(c, &u.id, hash, now())?;
        audit::record(
            c,
            actor,
            &place_of(&u),
            Change {
                action: "user.reset_password",
                object_type: "user",
                object_id: &u.id,
                summary: format!("Reset the password of {}", u.username),
                changes: vec![],
            },
        )?;
        Ok::<_, ServiceError>(())
    })?;
    Ok(u)
}

/// Changes the actor's own password after checking the current one. Returns the user's new
/// session epoch: every session on the old epoch ends, and the caller can renew its own.
/// Guesses of the current password are counted and locked like sign-in attempts (from
/// `source`, for `lock_minutes`): `Throttled` once locked (or when the hashing pool is full).
/// Both argon2 runs are on the hashing pool, with no database connection held.
#[allow(clippy::too_many_arguments)]
pub async fn change_own_password(
    db: &DbPool,
    hashes: &HashPool,
    actor: Actor,
    current: String,
    new: String,
    confirm: String,
    source: String,
    lock_minutes: i64,
) -> Result<i32, ServiceError> {
    let ticket = hashes.reserve().map_err(|_| ServiceError::Throttled)?;
    let user_id = actor.user_id.clone();
    let (attempt, u) = db
        .run(move |c| {
            let u = user::find(c, &user_id)?.ok_or(ServiceError::NotFound)?;
            let Some(attempt) =
                crate::console::auth::begin_attempt(c, &u.username, &source, lock_minutes)?
            else {
                return Err(ServiceError::Throttled);
            };
            Ok((attempt, u))
        })
        .await?;
    let ok = hashes
        .verify(ticket, current, Some(u.password_hash.clone()))
        .await;
    let mut errors = FieldErrors::new();
    if ok {
        db.run(move |c| attempt.succeeded(c)).await?;
    } else {
        errors.add("current_password", "The current password is not correct.");
    }
    check_new_password(&mut errors, "new_password", &new);
    if new != confirm {
        errors.add("confirm_password", "The passwords do not match.");
    }
    errors.into_result()?;
    let ticket = hashes.reserve().map_err(|_| ServiceError::Throttled)?;
    let hash = hashes.hash(ticket, new).await?;
    db.run(move |conn| {
        crate::db::write_tx(conn, |c| {
            user::set_password(c, &u.id, &hash, now())?;
            audit::record(
                c,
                &actor,
                &place_of(&u),
                Change {
                    action: "user.change_password",
                    object_type: "user",
                    object_id: &u.id,
                    summary: format!("{} changed their password", u.username),
                    changes: vec![],
                },
            )?;
            let after = user::find(c, &u.id)?.ok_or(ServiceError::NotFound)?;
            Ok(after.session_epoch)
        })
    })
    .await
}

/// Used by `coffer create-user` and the demo data: creates a user without an acting person.
pub fn create_system(
    conn: &mut DbConnection,
    username: &str,
    password_plain: &str,
    role: Role,
    tenant: Option<(&str, &str)>,
    merchant_id: Option<&str>,
) -> Result<User, ServiceError> {
    let at = now();
    let (tenant_id, mut scope_path) = match tenant {
        Some((id, path)) => (Some(id.to_string()), Some(path.to_string())),
        None => (None, None),
    };
    if let Some(mid) = merchant_id {
        let m = merchant::find(conn, mid)?.ok_or(ServiceError::NotFound)?;
        scope_path = Some(m.tenant_path);
    }
    let u = User {
        id: crate::ids::new_id(),
        username: username.to_string(),
        password_hash: password::hash(password_plain)?,
        role: role.as_str().into(),
        tenant_id,
        merchant_id: merchant_id.map(str::to_string),
        scope_path,
        active: true,
        session_epoch: 0,
        created_at: at,
        updated_at: at,
        last_login_at: None,
    };
    crate::db::write_tx(conn, |c| {
        user::insert(c, &u)?;
        audit::record(
            c,
            &Actor::system(),
            &place_of(&u),
            Change {
                action: "user.create",
                object_type: "user",
                object_id: &u.id,
                summary: format!("Created user {} ({})", u.username, role.label()),
                changes: vec![("username", None, Some(u.username.clone()))],
            },
        )?;
        Ok(u.clone())
    })
}
