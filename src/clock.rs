//! The time console sessions are measured with (their idle and absolute ends): the system
//! clock, plus an offset that only tests move ([`Clock::advance`]), so that a session can be
//! aged by hours without sleeping. Every process starts with offset zero and nothing in Coffer
//! itself changes it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(Clone, Debug, Default)]
pub struct Clock {
    offset_seconds: Arc<AtomicI64>,
}

impl Clock {
    /// Now, in Unix seconds.
    pub fn now(&self) -> i64 {
        chrono::Utc::now().timestamp() + self.offset_seconds.load(Ordering::Relaxed)
    }

    /// Moves this clock (and every copy of it) forward by `by`.
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_seconds
            .fetch_add(by.num_seconds(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn copies_share_the_offset() {
        let a = super::Clock::default();
        let b = a.clone();
        let before = a.now();
        b.advance(chrono::Duration::hours(2));
        assert!(a.now() >= before + 7200 && a.now() < before + 7300);
    }
}
