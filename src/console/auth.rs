//! People's login: argon2id verification with a dummy hash for unknown users, and throttling
//! kept in the database (so it holds across processes): after `USER_LIMIT` failures for one
//! username, or `SOURCE_LIMIT` for one source address, within `WINDOW`, further attempts are
//! refused for `LOCK` without checking the password.

use chrono::{Duration, NaiveDateTime};

use crate::db::{DbConnection, is_unique_violation};
use crate::domain::{Actor, Role, Scope};
use crate::error::ServiceError;
use crate::gateway::password;
use crate::models::throttle::{self, Throttle};
use crate::models::user::{self, User};
use crate::models::{merchant, now, tenant};

pub const USER_LIMIT: i32 = 5;
pub const SOURCE_LIMIT: i32 = 30;
pub const WINDOW_MINUTES: i64 = 15;
pub const LOCK_MINUTES: i64 = 15;

#[derive(Debug)]
pub enum LoginOutcome {
    Ok(Box<User>),
    Invalid,
    Locked,
}

fn user_key(username: &str) -> String {
    format!("user:{}", username.trim().to_ascii_lowercase())
}

fn source_key(source: &str) -> String {
    format!("source:{source}")
}

fn locked(conn: &mut DbConnection, key: &str, at: NaiveDateTime) -> Result<bool, ServiceError> {
    Ok(throttle::find(conn, key)?
        .and_then(|t| t.locked_until)
        .is_some_and(|until| until > at))
}

/// Counts one failure for `key`; locks the key when `limit` is reached within the window.
fn record_failure(
    conn: &mut DbConnection,
    key: &str,
    limit: i32,
    at: NaiveDateTime,
) -> Result<(), ServiceError> {
    for _ in 0..3 {
        let res = crate::db::write_tx::<_, diesel::result::Error, _>(conn, |c| {
            let mut t = match throttle::find(c, key)? {
                Some(t) if t.first_failure_at > at - Duration::minutes(WINDOW_MINUTES) => t,
                _ => Throttle {
                    key: key.to_string(),
                    failures: 0,
                    first_failure_at: at,
                    locked_until: None,
                },
            };
            t.failures += 1;
            if t.failures >= limit {
                t.locked_until = Some(at + Duration::minutes(LOCK_MINUTES));
                t.failures = 0;
                t.first_failure_at = at;
            }
            throttle::save(c, &t)
        });
        match res {
            Ok(()) => return Ok(()),
            Err(e) if is_unique_violation(&e) => continue, // a concurrent first failure: retry as update
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Checks a username and password. Runs on a blocking thread (argon2).
pub fn login(
    conn: &mut DbConnection,
    username: &str,
    pw: &str,
    source: &str,
) -> Result<LoginOutcome, ServiceError> {
    let at = now();
    let ukey = user_key(username);
    let skey = source_key(source);
    if locked(conn, &ukey, at)? || locked(conn, &skey, at)? {
        return Ok(LoginOutcome::Locked);
    }
    let found = user::find_by_username(conn, &username.trim().to_ascii_lowercase())?;
    let hash = found
        .as_ref()
        .map_or(password::dummy_hash(), |u| u.password_hash.as_str());
    let ok = password::verify(pw, hash);
    // Only a user who could act once signed in (say, not a merchant admin of an inactive
    // merchant); refused with the wrong-password answer, so nothing more is told.
    let may_sign_in = match &found {
        Some(u) if ok && u.active => actor_for(conn, u)?.is_some(),
        _ => false,
    };
    match found {
        Some(u) if may_sign_in => {
            throttle::clear(conn, &ukey)?;
            user::touch_login(conn, &u.id, at)?;
            Ok(LoginOutcome::Ok(Box::new(u)))
        }
        _ => {
            record_failure(conn, &ukey, USER_LIMIT, at)?;
            record_failure(conn, &skey, SOURCE_LIMIT, at)?;
            Ok(LoginOutcome::Invalid)
        }
    }
}

/// Ends every console session of the user (the cookie store is stateless, so a copied cookie
/// would otherwise stay valid until its idle timeout).
pub fn logout(conn: &mut DbConnection, user_id: &str) -> Result<(), ServiceError> {
    user::bump_epoch(conn, user_id)?;
    Ok(())
}

/// Builds the actor for a session: the user must still exist, be active and have the same
/// session epoch (a password change or deactivation ends older sessions), and a merchant
/// admin's merchant must be active (its deactivation ends its admins' sessions).
pub fn load_actor(
    conn: &mut DbConnection,
    user_id: &str,
    epoch: i32,
) -> Result<Option<Actor>, ServiceError> {
    let Some(u) = user::find(conn, user_id)? else {
        return Ok(None);
    };
    if !u.active || u.session_epoch != epoch {
        return Ok(None);
    }
    actor_for(conn, &u)
}

pub fn actor_for(conn: &mut DbConnection, u: &User) -> Result<Option<Actor>, ServiceError> {
    let Some(role) = Role::parse(&u.role) else {
        return Ok(None);
    };
    let scope = match role {
        Role::PlatformAdmin => Scope::Platform,
        Role::TenantManager => {
            let Some(t) = u
                .tenant_id
                .as_deref()
                .map(|id| tenant::find(conn, id))
                .transpose()?
                .flatten()
            else {
                return Ok(None);
            };
            Scope::Tenant {
                tenant_id: t.id,
                path: t.path,
            }
        }
        Role::MerchantAdmin => {
            let Some(m) = u
                .merchant_id
                .as_deref()
                .map(|id| merchant::find(conn, id))
                .transpose()?
                .flatten()
                .filter(|m| m.active)
            else {
                return Ok(None);
            };
            Scope::Merchant {
                merchant_id: m.id,
                tenant_id: m.tenant_id,
                tenant_path: m.tenant_path,
            }
        }
    };
    Ok(Some(Actor {
        user_id: u.id.clone(),
        username: u.username.clone(),
        role,
        scope,
    }))
}

/// On first start with no users: creates platform admin `admin`. Returns the generated password
/// when none was configured, so that the caller prints it once.
pub fn bootstrap_admin(
    conn: &mut DbConnection,
    configured: Option<&str>,
) -> Result<Option<String>, ServiceError> {
    if user::count(conn)? > 0 {
        return Ok(None);
    }
    let (pw, generated) = match configured {
        Some(p) if !p.is_empty() => (p.to_string(), false),
        _ => (crate::ids::random_password(), true),
    };
    let at = now();
    let u = User {
        id: crate::ids::new_id(),
        username: "admin".into(),
        password_hash: password::hash(&pw)?,
        role: Role::PlatformAdmin.as_str().into(),
        tenant_id: None,
        merchant_id: None,
        scope_path: None,
        active: true,
        session_epoch: 0,
        created_at: at,
        updated_at: at,
        last_login_at: None,
    };
    match user::insert(conn, &u) {
        Ok(()) => Ok(generated.then_some(pw)),
        Err(e) if is_unique_violation(&e) => Ok(None), // another process created it first
        Err(e) => Err(e.into()),
    }
}
