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

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Flash {
    pub level: String,
    pub message: String,
}

pub struct TypedSession<'a>(pub &'a Session);

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

    pub fn flash(&self, level: &str, message: impl Into<String>) {
        let mut v = self
            .0
            .get::<Vec<Flash>>(FLASH)
            .ok()
            .flatten()
            .unwrap_or_default();
        v.push(Flash {
            level: level.into(),
            message: message.into(),
        });
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
