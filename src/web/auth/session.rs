//! The typed console session. The cookie (signed and encrypted by actix-session) holds only the
//! user id, the user's session epoch, the last-seen time, the CSRF secret and pending flash
//! messages; everything else is loaded from the database on each request.

use actix_session::Session;
use serde::{Deserialize, Serialize};

const UID: &str = "uid";
const EPOCH: &str = "epoch";
const SEEN: &str = "seen";
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
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub level: String,
    pub message: String,
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
    /// Starts a fresh session for `uid` (new id and new CSRF secret: no fixation).
    pub fn login(&self, uid: &str, epoch: i32) {
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(UID, uid);
        let _ = self.0.insert(EPOCH, epoch);
        let _ = self.0.insert(SEEN, chrono::Utc::now().timestamp());
        let _ = self.0.insert(CSRF, crate::ids::random_hex(32));
    }

    pub fn logout(&self) {
        self.0.purge();
    }

    /// After a right password of a user with two-factor on: a fresh session that holds only
    /// the marker for the code step (valid for `minutes`), which is not a login.
    pub fn begin_second_step(&self, uid: &str, epoch: i32, minutes: i64) {
        self.0.renew();
        self.0.clear();
        let _ = self.0.insert(
            PENDING,
            Pending {
                uid: uid.into(),
                epoch,
                until: chrono::Utc::now().timestamp() + minutes * 60,
            },
        );
        let _ = self.0.insert(CSRF, crate::ids::random_hex(32));
    }

    /// The user and epoch awaiting their code, while the marker holds.
    pub fn pending_second_step(&self) -> Option<(String, i32)> {
        let p: Pending = self.0.get(PENDING).ok().flatten()?;
        if p.until < chrono::Utc::now().timestamp() {
            self.0.remove(PENDING);
            return None;
        }
        Some((p.uid, p.epoch))
    }

    /// A login that may reach the two-factor setup only (see [`TypedSession::is_enrolling`]).
    pub fn login_enrolling(&self, uid: &str, epoch: i32) {
        self.login(uid, epoch);
        let _ = self.0.insert(ENROLL, true);
    }

    /// The session must set up two-factor before anything else.
    pub fn is_enrolling(&self) -> bool {
        self.0.get::<bool>(ENROLL).ok().flatten().unwrap_or(false)
    }

    /// The logged-in user id and epoch, if the session has not been idle longer than `idle_minutes`.
    /// Refreshes the last-seen time.
    pub fn user(&self, idle_minutes: i64) -> Option<(String, i32)> {
        let uid: String = self.0.get(UID).ok().flatten()?;
        let epoch: i32 = self.0.get(EPOCH).ok().flatten()?;
        let seen: i64 = self.0.get(SEEN).ok().flatten()?;
        let now = chrono::Utc::now().timestamp();
        if now - seen > idle_minutes * 60 {
            self.0.purge();
            return None;
        }
        if now != seen {
            let _ = self.0.insert(SEEN, now);
        }
        Some((uid, epoch))
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
