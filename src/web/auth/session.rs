//! The typed console session. The cookie (signed and encrypted by actix-session) holds only the
//! user id, the user's session epoch, the sign-in and last-seen times, the CSRF secret and
//! pending flash messages; everything else is loaded from the database on each request. Times
//! are Unix seconds of the app's clock (`AppState::clock`), which the callers pass in.

use actix_session::Session;
use serde::{Deserialize, Serialize};

use crate::console::auth::SessionLimits;

const UID: &str = "uid";
const EPOCH: &str = "epoch";
const SEEN: &str = "seen";
/// When the user signed in: the session's absolute end is counted from it.
const SINCE: &str = "since";
const CSRF: &str = "csrf";
const FLASH: &str = "flash";
/// "Password ok, awaiting a two-factor code for this user until then": not a login.
const PENDING: &str = "pending_2fa";
/// Signed in, but two-factor is required and not set up: only the setup may be reached.
const ENROLL: &str = "enroll_2fa";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Pending {
    uid: String,
    epoch: i32,
    until: i64,
    /// Where to go after the code (a checked relative path, see `web::auth::return_to`).
    #[serde(default)]
    next: Option<String>,
}

/// A session between the password and the two-factor code.
pub struct SecondStep {
    pub uid: String,
    pub epoch: i32,
    /// Where to go once the code is right.
    pub next: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub level: String,
    pub message: String,
}

impl Flash {
    /// For a secret shown once ("New shared secret (…): VALUE"), the value its copy button
    /// copies.
    pub fn secret_value(&self) -> Option<&str> {
        if self.level != "secret" {
            return None;
        }
        self.message
            .rsplit_once(": ")
            .map(|(_, v)| v.trim())
            .filter(|v| !v.is_empty())
    }
}

pub struct TypedSession<'a>(pub &'a Session);

/// Longest flash message kept, in bytes (longer ones are cut at a character boundary).
const FLASH_MESSAGE_MAX: usize = 256;
/// Most bytes the queued flashes may take as JSON in the session; one message always fits
/// (256 bytes are at most 1 536 once JSON-escaped), and with the other session values and
/// the cookie's encryption and base64 the cookie stays well under 4 KiB.
const FLASH_BUDGET: usize = 1600;

/// Appends a flash; when the queue outgrows [`FLASH_BUDGET`] the oldest messages that are not
/// secrets go first, then the oldest secrets (which a newer rotation has superseded anyway).
pub fn push_flash(queue: &mut Vec<Flash>, level: &str, mut message: String) {
    if message.len() > FLASH_MESSAGE_MAX {
        let mut end = FLASH_MESSAGE_MAX - '…'.len_utf8();
        while !message.is_char_boundary(end) {
            end -= 1;
        }
        message.truncate(end);
        message.push('…');
    }
    queue.push(Flash {
        level: level.into(),
        message,
    });
    let size = |q: &[Flash]| serde_json::to_string(q).map_or(usize::MAX, |s| s.len());
    while queue.len() > 1 && size(queue) > FLASH_BUDGET {
        let oldest = queue[..queue.len() - 1]
            .iter()
            .position(|f| f.level != "secret")
            .unwrap_or(0);
        queue.remove(oldest);
    }
}

impl TypedSession<'_> {
    /// Starts a fresh session for `uid` signed in at `now` (new id and new CSRF secret: no
    /// fixation).
    pub fn login(&self, uid: &str, epoch: i32, now: i64) {
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(UID, uid);
        let _ = self.0.insert(EPOCH, epoch);
        let _ = self.0.insert(SINCE, now);
        let _ = self.0.insert(SEEN, now);
        let _ = self.0.insert(CSRF, crate::ids::random_hex(32));
    }

    /// The same sign-in in a fresh session (a password change renews the cookie): the
    /// absolute end stays counted from the first sign-in.
    pub fn relogin(&self, uid: &str, epoch: i32, now: i64) {
        let since = self.0.get::<i64>(SINCE).ok().flatten().unwrap_or(now);
        self.login(uid, epoch, now);
        let _ = self.0.insert(SINCE, since.min(now));
    }

    pub fn logout(&self) {
        self.0.purge();
    }

    /// After a right password of a user with two-factor on: a fresh session that holds only
    /// the marker for the code step (valid for `minutes`), which is not a login.
    /// `next` is where to go after the code.
    pub fn begin_second_step(
        &self,
        uid: &str,
        epoch: i32,
        minutes: i64,
        now: i64,
        next: Option<&str>,
    ) {
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(
            PENDING,
            Pending {
                uid: uid.into(),
                epoch,
                until: now + minutes * 60,
                next: next.map(str::to_string),
            },
        );
        let _ = self.0.insert(CSRF, crate::ids::random_hex(32));
    }

    /// The user awaiting their code, while the marker holds at `now`.
    pub fn pending_second_step(&self, now: i64) -> Option<SecondStep> {
        let p: Pending = self.0.get(PENDING).ok().flatten()?;
        if p.until < now {
            self.0.remove(PENDING);
            return None;
        }
        Some(SecondStep {
            uid: p.uid,
            epoch: p.epoch,
            next: p.next,
        })
    }

    /// A login that may reach the two-factor setup only (see [`TypedSession::is_enrolling`]).
    pub fn login_enrolling(&self, uid: &str, epoch: i32, now: i64) {
        self.login(uid, epoch, now);
        let _ = self.0.insert(ENROLL, true);
    }

    /// The session must set up two-factor before anything else.
    pub fn is_enrolling(&self) -> bool {
        self.0.get::<bool>(ENROLL).ok().flatten().unwrap_or(false)
    }

    /// The logged-in user id and epoch, while the session is alive at `now` by `limits` (its
    /// idle and absolute ends, `console::auth::SessionLimits`); a session past either end is
    /// purged. Refreshes the last-seen time. A session without a sign-in time (made before
    /// the absolute end existed) is over.
    pub fn user(&self, limits: &SessionLimits, now: i64) -> Option<(String, i32)> {
        let uid: String = self.0.get(UID).ok().flatten()?;
        let epoch: i32 = self.0.get(EPOCH).ok().flatten()?;
        let seen: Option<i64> = self.0.get(SEEN).ok().flatten();
        let since: Option<i64> = self.0.get(SINCE).ok().flatten();
        let (Some(seen), Some(since)) = (seen, since) else {
            self.0.purge();
            return None;
        };
        if !limits.is_alive(since, seen, now) {
            self.0.purge();
            return None;
        }
        if now != seen {
            let _ = self.0.insert(SEEN, now);
        }
        Some((uid, epoch))
    }

    /// The user this session was signed in for, alive or not (logout ends all their sessions
    /// either way).
    pub fn signed_in_user(&self) -> Option<String> {
        self.0.get(UID).ok().flatten()
    }

    /// The CSRF secret of this session, created on first use.
    pub fn csrf_token(&self) -> String {
        if let Ok(Some(t)) = self.0.get::<String>(CSRF) {
            return t;
        }
        let t = crate::ids::random_hex(32);
        let _ = self.0.insert(CSRF, &t);
        t
    }

    pub fn stored_csrf(&self) -> Option<String> {
        self.0.get(CSRF).ok().flatten()
    }

    /// Queues a message for the next page. The queue lives in the cookie, which browsers and
    /// actix-session cap at 4 KiB (beyond it saving the session fails and the request answers
    /// 500), and POSTs that redirect without the page being shown (scripts, several tabs) keep
    /// adding to it: see [`push_flash`].
    pub fn flash(&self, level: &str, message: impl Into<String>) {
        let mut v = self
            .0
            .get::<Vec<Flash>>(FLASH)
            .ok()
            .flatten()
            .unwrap_or_default();
        push_flash(&mut v, level, message.into());
        let _ = self.0.insert(FLASH, v);
    }

    pub fn take_flashes(&self) -> Vec<Flash> {
        let v = self
            .0
            .get::<Vec<Flash>>(FLASH)
            .ok()
            .flatten()
            .unwrap_or_default();
        if !v.is_empty() {
            self.0.remove(FLASH);
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn size(q: &[Flash]) -> usize {
        serde_json::to_string(q).map_or(usize::MAX, |s| s.len())
    }

    #[test]
    fn the_flash_queue_stays_within_its_budget_and_keeps_the_newest() {
        let mut q = vec![];
        for i in 0..300 {
            push_flash(
                &mut q,
                "success",
                format!("Tenant {} saved.", "x".repeat(i)),
            );
            assert!(size(&q) <= FLASH_BUDGET, "{i}: {}", size(&q));
        }
        assert_eq!(q.last().map(|f| f.message.len()), Some(256));
        // Escaped control characters and long multi-byte text are cut to fit too.
        push_flash(&mut q, "error", "\u{0}".repeat(10_000));
        assert!(size(&q) <= FLASH_BUDGET);
        push_flash(&mut q, "error", "é".repeat(10_000));
        let last = q.last().map(|f| f.message.clone()).unwrap_or_default();
        assert!(last.len() <= 256 && last.ends_with('…'), "{}", last.len());
    }

    #[test]
    fn secrets_outlive_older_ordinary_messages() {
        let mut q = vec![];
        push_flash(&mut q, "secret", "New shared secret: s1".into());
        for i in 0..50 {
            push_flash(
                &mut q,
                "success",
                format!("Merchant {i} {} saved.", "y".repeat(100)),
            );
        }
        assert_eq!(q[0].message, "New shared secret: s1");
        assert!(size(&q) <= FLASH_BUDGET);
    }
}
