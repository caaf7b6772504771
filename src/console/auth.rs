//! People's login: argon2id verification with a dummy hash for unknown users, and throttling
//! kept in the database (so it holds across processes). Every attempt (a password, a
//! two-factor code, a guess of the current password) is counted *before* the secret is
//! checked, in one write transaction that locks the throttle rows: after `USER_LIMIT` attempts
//! for one username, or `SOURCE_LIMIT` for one source address, within `WINDOW_MINUTES`, further
//! attempts are refused for the lock time (`COFFER_LOCKOUT_MINUTES`) without checking anything,
//! however many arrive at once. A successful sign-in clears the username's count and takes the
//! attempt back from the source's.

use chrono::Duration;

use crate::audit::{self, Change, Origin, Place};
use crate::db::{DbConnection, DbPool, is_unique_violation};
use crate::domain::{Actor, Role, Scope};
use crate::error::ServiceError;
use crate::gateway::password::{self, HashPool};
use crate::models::throttle::{self, Throttle};
use crate::models::user::{self, User};
use crate::models::{merchant, now, tenant};

pub const USER_LIMIT: i32 = 5;
pub const SOURCE_LIMIT: i32 = 30;
pub const WINDOW_MINUTES: i64 = 15;
/// Default length of a lock, in minutes (`COFFER_LOCKOUT_MINUTES`).
pub const LOCK_MINUTES: i64 = 30;

/// What sign-in needs from the settings.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Minutes a username or source stays locked (`COFFER_LOCKOUT_MINUTES`).
    pub lock_minutes: i64,
    /// Two-factor authentication is required of every user (`COFFER_REQUIRE_2FA`).
    pub require_two_factor: bool,
}

/// Minutes without a request after which a console session ends (PCI DSS v4 8.2.8: 15 at most).
pub const SESSION_IDLE_MINUTES: i64 = 15;
/// Hours after sign-in after which a console session ends, however active it is.
pub const SESSION_MAX_HOURS: i64 = 12;

/// How long a console session lives: until it has been idle `idle_minutes`
/// (`COFFER_SESSION_IDLE_MINUTES`) or `max_hours` have passed since the sign-in
/// (`COFFER_SESSION_MAX_HOURS`), whichever comes first. Enforced on the server on every
/// request, from the times the session holds, so that a cookie kept or replayed past either end
/// signs nobody in.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub idle_minutes: i64,
    pub max_hours: i64,
}

impl SessionLimits {
    /// Whether a session signed in at `signed_in_at` and last used at `last_seen` (Unix seconds)
    /// is still alive at `now`.
    pub fn is_alive(&self, signed_in_at: i64, last_seen: i64, now: i64) -> bool {
        now.saturating_sub(last_seen) <= self.idle_minutes.saturating_mul(60)
            && now.saturating_sub(signed_in_at) <= self.max_hours.saturating_mul(3600)
    }
}

#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in.
    Ok(Box<User>),
    /// The password is right and the user has two-factor on: the code step follows.
    CodeRequired(Box<User>),
    /// The password is right, two-factor is required of the user and not set up yet: the
    /// session may reach the enrollment only.
    MustEnroll(Box<User>),
    Invalid,
    Locked,
    /// Every password hashing thread is busy and the queue is full: try again shortly.
    Busy,
}

pub fn user_key(username: &str) -> String {
    format!("user:{}", username.trim().to_ascii_lowercase())
}

fn source_key(source: &str) -> String {
    format!("source:{source}")
}

/// One attempt, counted for a username and a source address before its secret is checked.
#[derive(Debug, Clone)]
pub struct Attempt {
    user_key: String,
    source_key: String,
}

/// The key's row, locked until the end of the transaction ([`throttle::ensure`] made it).
/// `NotFound` when it has gone meanwhile: the caller starts again.
fn take(c: &mut DbConnection, key: &str) -> diesel::QueryResult<Throttle> {
    if throttle::lock_row(c, key)? == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    throttle::find(c, key)?.ok_or(diesel::result::Error::NotFound)
}

/// Counts an attempt for `username` from `source`, or refuses it (`None`) when either is
/// locked. The attempt that reaches a limit sets the lock already (it is still checked; if it
/// turns out right, [`Attempt::succeeded`] lifts the username's lock again).
pub fn begin_attempt(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    lock_minutes: i64,
) -> Result<Option<Attempt>, ServiceError> {
    let attempt = Attempt {
        user_key: user_key(username),
        source_key: source_key(source),
    };
    let at = now();
    let window_start = at - Duration::minutes(WINDOW_MINUTES);
    for _ in 0..5 {
        // The rows exist before the transaction locks them (both, always in this order), so
        // concurrent attempts queue on the row locks instead of racing to insert.
        throttle::ensure(conn, &attempt.user_key, at)?;
        throttle::ensure(conn, &attempt.source_key, at)?;
        let res = crate::db::write_tx::<_, diesel::result::Error, _>(conn, |c| {
            let mut rows = [
                (take(c, &attempt.user_key)?, USER_LIMIT),
                (take(c, &attempt.source_key)?, SOURCE_LIMIT),
            ];
            if rows
                .iter()
                .any(|(t, _)| t.locked_until.is_some_and(|until| until > at))
            {
                return Ok(None);
            }
            let mut locks = 0;
            for (t, limit) in &mut rows {
                if t.first_failure_at <= window_start {
                    t.failures = 0;
                    t.first_failure_at = at;
                }
                t.failures += 1;
                t.locked_until = None;
                if t.failures >= *limit {
                    t.locked_until = Some(at + Duration::minutes(lock_minutes));
                    t.failures = 0;
                    t.first_failure_at = at;
                    locks += 1;
                }
                throttle::save(c, t)?;
            }
            Ok(Some(locks))
        });
        match res {
            Ok(Some(locks)) => {
                crate::metrics::lockouts(locks);
                return Ok(Some(attempt));
            }
            Ok(None) => return Ok(None),
            // A row went meanwhile: again.
            Err(diesel::result::Error::NotFound) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    // Still racing after several rounds: refuse rather than check unthrottled.
    Ok(None)
}

impl Attempt {
    /// The user is signed in: the username's count (and lock) goes, the source gets the
    /// attempt back.
    pub fn succeeded(&self, conn: &mut DbConnection) -> Result<(), ServiceError> {
        throttle::reset(conn, &self.user_key, now())?;
        throttle::refund(conn, &self.source_key)?;
        Ok(())
    }

    /// The password was right but sign-in is not complete (a two-factor code follows): both
    /// get the attempt back, without lifting a lock. The code guesses that follow are counted
    /// on the same username and source, so `USER_LIMIT` wrong codes lock the sign-in as wrong
    /// passwords do (and earlier wrong passwords leave fewer guesses).
    pub fn passed_step(&self, conn: &mut DbConnection) -> Result<(), ServiceError> {
        throttle::refund(conn, &self.user_key)?;
        throttle::refund(conn, &self.source_key)?;
        Ok(())
    }
}

/// Longest attempted username an audit entry keeps (the form accepts 256).
const ATTEMPTED_NAME_MAX: usize = 64;

/// Records a sign-in event (`action` `login.*` / `logout`) in the audit log with where it came
/// from: as the user when the username is one (shown to the viewers of the user's tenant), or,
/// for an unknown username, with the attempted name, shortened (shown to platform admins only;
/// nothing is created for it).
pub fn record_sign_in(
    conn: &mut DbConnection,
    user: Option<&User>,
    attempted: &str,
    action: &str,
    what: &str,
    origin: &Origin,
) -> Result<(), ServiceError> {
    if action == "login.failure" {
        crate::metrics::login_failed();
    }
    let (actor, place, object_id, summary) = match user {
        Some(u) => (
            Actor {
                user_id: u.id.clone(),
                username: u.username.clone(),
                ..Actor::system()
            },
            Place::of_user(u),
            u.id.clone(),
            format!("{}: {what}", u.username),
        ),
        None => {
            let name: String = attempted
                .trim()
                .chars()
                .filter(|c| !c.is_control())
                .take(ATTEMPTED_NAME_MAX)
                .collect();
            (
                Actor {
                    username: format!("unknown user \"{name}\""),
                    ..Actor::system()
                },
                Place::default(),
                String::new(),
                format!("unknown username \"{name}\": {what}"),
            )
        }
    };
    audit::record_from(
        conn,
        &actor,
        &place,
        Change {
            action,
            object_type: "user",
            object_id: &object_id,
            summary,
            changes: vec![],
        },
        origin,
    )
}

/// Signs in with a username and password. The password is checked on the hashing pool, with no
/// database connection held: the attempt is counted and the user read on one connection, the
/// connection goes back, argon2 runs, and the outcome is recorded on another. A full pool
/// answers `Busy` at once, before anything is counted or read. Every other outcome is in the
/// audit log (`record_sign_in`).
pub async fn sign_in(
    db: &DbPool,
    hashes: &HashPool,
    username: String,
    pw: String,
    origin: Origin,
    policy: Policy,
) -> Result<LoginOutcome, ServiceError> {
    // Over-long input is wrong without a look (and without argon2 over a megabyte).
    if username.len() > 256 || pw.len() > 1024 {
        return db
            .run(move |c| record_outcome(c, &username, LoginOutcome::Invalid, &origin))
            .await;
    }
    let Ok(ticket) = hashes.reserve() else {
        return Ok(LoginOutcome::Busy);
    };
    let source = origin.addr.clone().unwrap_or_else(|| "unknown".into());
    let name = username.clone();
    let started = db
        .run(move |c| begin_login(c, &name, &source, &policy))
        .await?;
    let Some((attempt, found)) = started else {
        return db
            .run(move |c| record_outcome(c, &username, LoginOutcome::Locked, &origin))
            .await;
    };
    let phc = found.as_ref().map(|u| u.password_hash.clone());
    let ok = hashes.verify(ticket, pw, phc).await;
    db.run(move |c| {
        let outcome = finish_login(c, &attempt, found, ok, &policy)?;
        record_outcome(c, &username, outcome, &origin)
    })
    .await
}

/// Puts a sign-in's outcome in the audit log and hands it back.
fn record_outcome(
    conn: &mut DbConnection,
    username: &str,
    outcome: LoginOutcome,
    origin: &Origin,
) -> Result<LoginOutcome, ServiceError> {
    let normalized = username.trim().to_ascii_lowercase();
    let (user, action, what) = match &outcome {
        LoginOutcome::Ok(u) => (Some((**u).clone()), "login.success", "signed in"),
        LoginOutcome::MustEnroll(u) => (
            Some((**u).clone()),
            "login.success",
            "signed in (two-factor setup required)",
        ),
        LoginOutcome::CodeRequired(u) => (
            Some((**u).clone()),
            "login.password",
            "right password, two-factor code asked",
        ),
        LoginOutcome::Invalid => (
            user::find_by_username(conn, &normalized)?,
            "login.failure",
            "sign-in failed (wrong password, or the account may not sign in)",
        ),
        LoginOutcome::Locked => (
            user::find_by_username(conn, &normalized)?,
            "login.locked",
            "sign-in refused: locked after too many failed attempts",
        ),
        LoginOutcome::Busy => return Ok(outcome),
    };
    record_sign_in(conn, user.as_ref(), username, action, what, origin)?;
    Ok(outcome)
}
/// The first half of a sign-in: counts the attempt (`None`: locked) and reads the user.
pub fn begin_login(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    policy: &Policy,
) -> Result<Option<(Attempt, Option<User>)>, ServiceError> {
    let Some(attempt) = begin_attempt(conn, username, source, policy.lock_minutes)? else {
        return Ok(None);
    };
    let found = user::find_by_username(conn, &username.trim().to_ascii_lowercase())?;
    Ok(Some((attempt, found)))
}

/// The second half, once the password has been checked (`ok`).
pub fn finish_login(
    conn: &mut DbConnection,
    attempt: &Attempt,
    found: Option<User>,
    ok: bool,
    policy: &Policy,
) -> Result<LoginOutcome, ServiceError> {
    // Only a user who could act once signed in (say, not a merchant admin of an inactive
    // merchant); refused with the wrong-password answer, so nothing more is told.
    let may_sign_in = match &found {
        Some(u) if ok && u.active => actor_for(conn, u)?.is_some(),
        _ => false,
    };
    let Some(u) = found.filter(|_| may_sign_in) else {
        return Ok(LoginOutcome::Invalid);
    };
    if crate::models::two_factor::is_enabled(conn, &u.id)? {
        attempt.passed_step(conn)?;
        return Ok(LoginOutcome::CodeRequired(Box::new(u)));
    }
    attempt.succeeded(conn)?;
    user::touch_login(conn, &u.id, now())?;
    if is_required(conn, &u, policy.require_two_factor)? {
        Ok(LoginOutcome::MustEnroll(Box::new(u)))
    } else {
        Ok(LoginOutcome::Ok(Box::new(u)))
    }
}

/// Whether the user must have two-factor: the platform requires it, or (for users of a tenant
/// or merchant) their tenant or one of its ancestors does.
pub fn is_required(
    conn: &mut DbConnection,
    u: &User,
    platform_requires: bool,
) -> Result<bool, ServiceError> {
    if platform_requires {
        return Ok(true);
    }
    if Role::parse(&u.role) == Some(Role::PlatformAdmin) {
        return Ok(false);
    }
    let Some(path) = u.scope_path.as_deref() else {
        return Ok(false);
    };
    let lineage: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    Ok(tenant::any_requires_two_factor(conn, &lineage)?)
}

/// Ends every console session of the user (the cookie store is stateless, so a copied cookie
/// would otherwise stay valid until its idle timeout).
pub fn logout(conn: &mut DbConnection, user_id: &str, origin: &Origin) -> Result<(), ServiceError> {
    user::bump_epoch(conn, user_id)?;
    if let Some(u) = user::find(conn, user_id)? {
        record_sign_in(conn, Some(&u), "", "logout", "signed out", origin)?;
    }
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
