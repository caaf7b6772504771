//! People's passwords: argon2id with the OWASP parameters (m = 19 MiB, t = 2, p = 1), which are
//! the argon2 crate's defaults. While serving, every hash and check runs on the [`HashPool`]:
//! its own few threads and a bounded queue, so that a flood of sign-ins can neither take the
//! blocking threads and database connections the payment APIs need, nor queue without bound.
//! `hash` and `verify` directly are for the command line and the first start.

use std::sync::{Arc, Mutex, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

fn hasher() -> Argon2<'static> {
    // OWASP Password Storage Cheat Sheet: argon2id, 19 MiB, 2 iterations, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash(password: &str) -> anyhow::Result<String> {
    hasher()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("password hashing failed: {e}"))
}

pub fn verify(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash of a random password, verified against when the user does not exist, so that an
/// unknown username costs the same time as a known one.
pub fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| hash(&crate::ids::random_password()).unwrap_or_default())
}

type Job = Box<dyn FnOnce() + Send>;

/// The pool is full (every thread hashing and the queue taken): answer "busy" at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Argon2 on `threads` dedicated threads with at most `queue` more jobs waiting. A caller takes
/// a [`Ticket`] first ([`HashPool::reserve`], which fails at once when the pool is full) and
/// before any other work, then hands it to [`HashPool::verify`] or [`HashPool::hash`]; the
/// place is given back when the job has run, even if the caller has gone meanwhile. The threads
/// end when the pool is dropped.
pub struct HashPool {
    places: Arc<tokio::sync::Semaphore>,
    jobs: Mutex<std::sync::mpsc::Sender<Job>>,
}

/// A place in the [`HashPool`] (running or queued).
pub struct Ticket(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

impl HashPool {
    pub fn new(threads: usize, queue: usize) -> HashPool {
        let threads = threads.max(1);
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..threads {
            let rx = rx.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("coffer-hash-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let guard =
                                rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                            guard.recv()
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the pool is gone
                        }
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "cannot start a password hashing thread");
            }
        }
        HashPool {
            places: Arc::new(tokio::sync::Semaphore::new(threads + queue)),
            jobs: Mutex::new(tx),
        }
    }

    /// The default size: half the cores (at least one) hash, so that a sign-in flood leaves
    /// the other half to the payment APIs.
    pub fn default_threads() -> usize {
        std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
    }

    /// A place for one job, or `Busy` at once when every place is taken.
    pub fn reserve(&self) -> Result<Ticket, Busy> {
        self.places
            .clone()
            .try_acquire_owned()
            .map(Ticket)
            .map_err(|_| Busy)
    }

    /// Places free right now (for tests and metrics).
    pub fn available(&self) -> usize {
        self.places.available_permits()
    }

    async fn run<T: Send + 'static>(
        &self,
        ticket: Ticket,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let r = f();
            drop(ticket);
            let _ = tx.send(r);
        });
        self.jobs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .send(job)
            .map_err(|_| Busy)?;
        rx.await.map_err(|_| Busy)
    }

    /// Checks `password` against `phc`, or against [`dummy_hash`] when there is no user (the
    /// same cost either way). False when the pool has stopped.
    pub async fn verify(&self, ticket: Ticket, password: String, phc: Option<String>) -> bool {
        self.run(ticket, move || {
            verify(&password, phc.as_deref().unwrap_or_else(|| dummy_hash()))
        })
        .await
        .unwrap_or(false)
    }

    /// Hashes a new password.
    pub async fn hash(&self, ticket: Ticket, password: String) -> anyhow::Result<String> {
        self.run(ticket, move || hash(&password))
            .await
            .map_err(|_| anyhow::anyhow!("the password hashing pool has stopped"))?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_argon2id_with_owasp_parameters_and_verifies() {
        let h = hash("correct horse battery").expect("hash");
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery", &h));
        assert!(!verify("wrong", &h));
        assert!(!verify("x", "not a hash"));
    }

    #[tokio::test]
    async fn the_pool_refuses_beyond_its_places_and_gives_them_back() {
        let pool = HashPool::new(1, 1);
        let a = pool.reserve().expect("a thread");
        let b = pool.reserve().expect("a queue place");
        assert!(pool.reserve().is_err(), "full");
        let h = pool.hash(a, "pw-one".into()).await.expect("hash");
        assert!(pool.verify(b, "pw-one".into(), Some(h)).await);
        assert_eq!(pool.available(), 2);
        let c = pool.reserve().expect("free again");
        assert!(!pool.verify(c, "pw".into(), None).await);
    }
}
