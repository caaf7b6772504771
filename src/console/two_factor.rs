//! Two-factor authentication of console users (TOTP, `gateway::totp`). A user sets it up on
//! their account page: a new secret (sealed by the vault, bound to the user id) is pending
//! until the user sends a current code, which switches it on and issues ten single-use
//! recovery codes (stored as keyed hashes, shown once). A tenant can require it of its users
//! and of its sub-tenants' (`tenants.require_two_factor`), `COFFER_REQUIRE_2FA` of everyone.
//! A platform admin, or a manager of a strict ancestor tenant, can reset another user's;
//! switching one's own off takes a current code. The second sign-in step lives here
//! ([`second_step`]); who must have two-factor is decided by `auth::is_required`, which the
//! password step asks.

use crate::audit::{self, Change, Origin};
use crate::console::auth::{self, Policy};
use crate::console::users::place_of;
use crate::db::DbConnection;
use crate::domain::Actor;
use crate::error::ServiceError;
use crate::gateway::totp;
use crate::models::now;
use crate::models::two_factor::{self as tf, RecoveryCode, TwoFactor};
use crate::models::user::{self, User};
use crate::vault::keyring::Keyring;

/// Longest input taken as a code (anything longer is wrong without a look).
const CODE_MAX: usize = 64;

/// A secret being set up, as the page shows it.
pub struct Enrollment {
    /// Base32, for typing into an authenticator app.
    pub secret: String,
    pub uri: String,
    /// Inline SVG of the URI's QR code.
    pub qr_svg: String,
}

/// The account page's view of the user's two-factor.
pub struct State {
    pub enabled: bool,
    pub required: bool,
    pub pending: Option<Enrollment>,
    pub recovery_codes_left: i64,
}

fn enrollment(username: &str, secret: &[u8]) -> Result<Enrollment, ServiceError> {
    let b32 = totp::to_base32(secret);
    let uri = totp::otpauth_uri(username, &b32);
    let qr_svg = totp::qr_svg(
        &uri,
        &format!("QR code to add Coffer ({username}) to an authenticator app"),
    )?;
    Ok(Enrollment {
        secret: b32,
        uri,
        qr_svg,
    })
}

fn me(conn: &mut DbConnection, actor: &Actor) -> Result<User, ServiceError> {
    user::find(conn, &actor.user_id)?.ok_or(ServiceError::NotFound)
}

fn open_secret(
    conn: &mut DbConnection,
    keyring: &Keyring,
    row: &TwoFactor,
) -> Result<Vec<u8>, ServiceError> {
    Ok(keyring.open(conn, &row.secret_sealed, row.user_id.as_bytes())?)
}

pub fn state(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    policy: &Policy,
) -> Result<State, ServiceError> {
    let u = me(conn, actor)?;
    let row = tf::find(conn, &u.id)?;
    let pending = match &row {
        Some(r) if !r.enabled => Some(enrollment(&u.username, &open_secret(conn, keyring, r)?)?),
        _ => None,
    };
    Ok(State {
        enabled: row.as_ref().is_some_and(|r| r.enabled),
        required: auth::is_required(conn, &u, policy.require_two_factor)?,
        pending,
        recovery_codes_left: tf::unused_codes(conn, &u.id)?,
    })
}

/// Starts (or starts again) a setup: a new pending secret.
pub fn start(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
) -> Result<Enrollment, ServiceError> {
    let u = me(conn, actor)?;
    let secret = totp::new_secret();
    let row = TwoFactor {
        user_id: u.id.clone(),
        secret_sealed: keyring.seal(
            conn,
            &crate::vault::keyring::Owner::of_path(u.scope_path.as_deref()),
            &secret,
            u.id.as_bytes(),
        )?,
        enabled: false,
        last_step: None,
        created_at: now(),
        enabled_at: None,
    };
    crate::db::write_tx(conn, |c| {
        if !tf::put_pending(c, &row)? {
            return Err(ServiceError::Conflict(
                "Two-factor authentication is on already. Switch it off first to set it up again."
                    .into(),
            ));
        }
        Ok(())
    })?;
    enrollment(&u.username, &secret)
}

/// Switches the pending secret on with a current code; returns the new recovery codes (in
/// clear this once, for the page).
pub fn enable(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    code: &str,
    origin: &Origin,
) -> Result<Vec<String>, ServiceError> {
    let u = me(conn, actor)?;
    let row = match tf::find(conn, &u.id)? {
        Some(r) if !r.enabled => r,
        Some(_) => {
            return Err(ServiceError::Conflict(
                "Two-factor authentication is on already.".into(),
            ));
        }
        None => {
            return Err(ServiceError::Conflict(
                "Press \"Set up two-factor authentication\" first.".into(),
            ));
        }
    };
    let Some(code) = totp::looks_like_code(code) else {
        return Err(ServiceError::invalid(
            "code",
            "Enter the 6-digit code your authenticator app shows.",
        ));
    };
    let secret = open_secret(conn, keyring, &row)?;
    let Some(step) = totp::matching_step(&secret, &code, chrono::Utc::now().timestamp()) else {
        return Err(ServiceError::invalid(
            "code",
            "The code is not correct. Check that your device's clock is right and try the current code.",
        ));
    };
    let at = now();
    let codes: Vec<String> = (0..totp::RECOVERY_CODES)
        .map(|_| totp::new_recovery_code())
        .collect();
    crate::db::write_tx(conn, |c| {
        if !tf::enable(c, &u.id, step, at)? {
            return Err(ServiceError::Conflict(
                "The setup changed meanwhile. Reload the page and try again.".into(),
            ));
        }
        tf::delete_codes(c, &u.id)?;
        for code in &codes {
            let normalized = totp::normalize_recovery_code(code).unwrap_or_default();
            tf::insert_code(
                c,
                &RecoveryCode {
                    id: crate::ids::new_id(),
                    user_id: u.id.clone(),
                    code_hash: totp::recovery_code_hash(keyring.mac_key()?, &normalized),
                    used_at: None,
                    created_at: at,
                },
            )?;
        }
        audit::record_from(
            c,
            actor,
            &place_of(&u),
            Change {
                action: "user.two_factor.enable",
                object_type: "user",
                object_id: &u.id,
                summary: format!("{} switched on two-factor authentication", u.username),
                changes: vec![("two_factor", Some("off".into()), Some("on".into()))],
            },
            origin,
        )?;
        Ok(())
    })?;
    Ok(codes)
}

/// Checks a code of a user with two-factor on: a TOTP code of the current window newer than
/// the last accepted one (so each code works once), or an unused recovery code, which is used
/// up (audited). Callers count the attempt first (`auth::begin_attempt`).
pub fn check_code(
    conn: &mut DbConnection,
    keyring: &Keyring,
    u: &User,
    input: &str,
    origin: &Origin,
) -> Result<bool, ServiceError> {
    if input.len() > CODE_MAX {
        return Ok(false);
    }
    let Some(row) = tf::find(conn, &u.id)?.filter(|r| r.enabled) else {
        return Ok(false);
    };
    if let Some(code) = totp::looks_like_code(input) {
        let secret = open_secret(conn, keyring, &row)?;
        return match totp::matching_step(&secret, &code, chrono::Utc::now().timestamp()) {
            Some(step) => Ok(tf::accept_step(conn, &u.id, step)?),
            None => Ok(false),
        };
    }
    let Some(normalized) = totp::normalize_recovery_code(input) else {
        return Ok(false);
    };
    let hash = totp::recovery_code_hash(keyring.mac_key()?, &normalized);
    let actor = auth::actor_for(conn, u)?.unwrap_or_else(Actor::system);
    crate::db::write_tx(conn, |c| {
        if !tf::use_code(c, &u.id, &hash, now())? {
            return Ok(false);
        }
        let left = tf::unused_codes(c, &u.id)?;
        audit::record_from(
            c,
            &actor,
            &place_of(u),
            Change {
                action: "user.two_factor.recovery_code",
                object_type: "user",
                object_id: &u.id,
                summary: format!("{} used a recovery code ({left} left)", u.username),
                changes: vec![],
            },
            origin,
        )?;
        Ok(true)
    })
}

/// The answer to a two-factor code at sign-in.
#[derive(Debug)]
pub enum CodeOutcome {
    /// Signed in.
    Ok(Box<User>),
    Invalid,
    Locked,
    /// The pending sign-in no longer holds (the user was deactivated, changed their password
    /// or lost two-factor meanwhile): start again with the password.
    Expired,
}

/// The second sign-in step of a user with two-factor on, after [`auth::LoginOutcome::CodeRequired`]:
/// a current TOTP code (each accepted once) or an unused recovery code. Wrong codes count
/// toward the same lock as wrong passwords.
pub fn second_step(
    conn: &mut DbConnection,
    keyring: &Keyring,
    user_id: &str,
    epoch: i32,
    code: &str,
    origin: &Origin,
    policy: &Policy,
) -> Result<CodeOutcome, ServiceError> {
    let Some(u) = user::find(conn, user_id)? else {
        return Ok(CodeOutcome::Expired);
    };
    if !u.active
        || u.session_epoch != epoch
        || auth::actor_for(conn, &u)?.is_none()
        || !tf::is_enabled(conn, &u.id)?
    {
        return Ok(CodeOutcome::Expired);
    }
    let source = origin.addr.as_deref().unwrap_or("unknown");
    let Some(attempt) = auth::begin_attempt(conn, &u.username, source, policy.lock_minutes)? else {
        auth::record_sign_in(
            conn,
            Some(&u),
            "",
            "login.locked",
            "two-factor code refused: locked after too many failed attempts",
            origin,
        )?;
        return Ok(CodeOutcome::Locked);
    };
    if !check_code(conn, keyring, &u, code, origin)? {
        auth::record_sign_in(
            conn,
            Some(&u),
            "",
            "login.failure",
            "sign-in failed: wrong two-factor code",
            origin,
        )?;
        return Ok(CodeOutcome::Invalid);
    }
    attempt.succeeded(conn)?;
    user::touch_login(conn, &u.id, now())?;
    auth::record_sign_in(
        conn,
        Some(&u),
        "",
        "login.success",
        "signed in with a two-factor code",
        origin,
    )?;
    Ok(CodeOutcome::Ok(Box::new(u)))
}

/// Switches the actor's own two-factor off, with a current code (counted like a password).
pub fn disable(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    code: &str,
    origin: &Origin,
    policy: &Policy,
) -> Result<(), ServiceError> {
    let u = me(conn, actor)?;
    if !tf::is_enabled(conn, &u.id)? {
        return Err(ServiceError::Conflict(
            "Two-factor authentication is not on.".into(),
        ));
    }
    if auth::is_required(conn, &u, policy.require_two_factor)? {
        return Err(ServiceError::Conflict(
            "Two-factor authentication is required for your account: it cannot be switched off."
                .into(),
        ));
    }
    let source = origin.addr.as_deref().unwrap_or("unknown");
    let Some(attempt) = auth::begin_attempt(conn, &u.username, source, policy.lock_minutes)? else {
        return Err(ServiceError::Throttled);
    };
    if !check_code(conn, keyring, &u, code, origin)? {
        return Err(ServiceError::invalid(
            "code",
            "The code is not correct: enter a current code or an unused recovery code.",
        ));
    }
    attempt.succeeded(conn)?;
    crate::db::write_tx(conn, |c| {
        tf::remove(c, &u.id)?;
        audit::record_from(
            c,
            actor,
            &place_of(&u),
            Change {
                action: "user.two_factor.disable",
                object_type: "user",
                object_id: &u.id,
                summary: format!("{} switched off two-factor authentication", u.username),
                changes: vec![("two_factor", Some("on".into()), Some("off".into()))],
            },
            origin,
        )?;
        Ok(())
    })
}

/// Resets another user's two-factor (their secret and recovery codes go; if it is required of
/// them, their next sign-in leads to a new setup).
/// The user `id` whose two-factor `actor` may reset, or why not.
fn resettable(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<User, ServiceError> {
    let u = crate::console::users::get(conn, actor, id)?;
    if u.id == actor.user_id {
        return Err(ServiceError::Conflict(
            "You cannot reset your own two-factor authentication: switch it off on your \
             account's two-factor page (/account/two-factor) with a current code."
                .into(),
        ));
    }
    if !crate::console::users::may_reset(actor, &u) {
        return Err(ServiceError::Forbidden);
    }
    Ok(u)
}

/// What resetting the two-factor of user `id` does, in words (its confirmation page), after
/// the same checks as [`reset`].
pub fn reset_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(User, Vec<String>), ServiceError> {
    let u = resettable(conn, actor, id)?;
    let Some(t) = tf::find(conn, &u.id)? else {
        return Err(ServiceError::Conflict(format!(
            "{} has no two-factor authentication to reset.",
            u.username
        )));
    };
    let codes = tf::unused_codes(conn, &u.id)?;
    let mut lines = vec![format!(
        "{}'s authenticator app stops working for Coffer{}.",
        u.username,
        if t.enabled {
            ""
        } else {
            " (the setup was not finished)"
        }
    )];
    lines.push(format!(
        "{} of {} stop working.",
        crate::domain::plural(codes, "unused recovery code", "unused recovery codes"),
        u.username
    ));
    lines.push(format!(
        "{} signs in with the password alone until setting up two-factor authentication again (at once, where it is required).",
        u.username
    ));
    Ok((u, lines))
}

pub fn reset(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    origin: &Origin,
) -> Result<User, ServiceError> {
    let u = resettable(conn, actor, id)?;
    crate::db::write_tx(conn, |c| {
        let was = tf::find(c, &u.id)?;
        if was.is_none() {
            return Err(ServiceError::Conflict(format!(
                "{} has no two-factor authentication to reset.",
                u.username
            )));
        }
        tf::remove(c, &u.id)?;
        audit::record_from(
            c,
            actor,
            &place_of(&u),
            Change {
                action: "user.two_factor.reset",
                object_type: "user",
                object_id: &u.id,
                summary: format!("Reset the two-factor authentication of {}", u.username),
                changes: vec![(
                    "two_factor",
                    Some(
                        if was.is_some_and(|w| w.enabled) {
                            "on"
                        } else {
                            "pending"
                        }
                        .into(),
                    ),
                    Some("off".into()),
                )],
            },
            origin,
        )?;
        Ok(u.clone())
    })
}
