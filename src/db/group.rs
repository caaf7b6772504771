//! Group commit for SQLite: the write transactions of concurrent requests share one SQLite
//! transaction and one fsync.
//!
//! SQLite has one writer at a time, and with `synchronous = FULL` every commit waits for an
//! fdatasync of the WAL (0.45 ms on the project's machine, README "Benchmark"): one payment per
//! fsync capped SQLite at about 1 200 debits per second whatever the number of cores. Here the
//! writers of one database take turns on one writer connection. The first opens a transaction
//! (`BEGIN IMMEDIATE`); each runs its work inside its own savepoint, so that a request that fails
//! rolls back alone; the writer that finds nobody queued behind it (or the batch full, or open
//! for too long) commits, and everyone of the batch returns only after that commit: a request
//! is acknowledged only once the transaction that holds it is durable. A request that fails
//! returns at once (it wrote nothing).
//!
//! The members of a batch run one after another on one connection, so each sees the work of
//! those before it exactly as if they had committed: the order is a serial order, and what a
//! member reads (a container's lock, the profile another registration just created, an
//! idempotency key) is what it would read had the earlier members committed separately. Other
//! connections see the batch when it commits, all of it at once.
//!
//! If a commit fails (a full disk, an I/O error) or SQLite rolls the whole transaction back on
//! an error inside one member, every member of the batch gets an error: none of them was
//! acknowledged. The writer connection is then replaced by a new one.
//!
//! Entered through [`crate::db::write_tx`] on a thread that [`crate::db::DbPool::run`] set up
//! (the API and console requests, the background jobs); elsewhere (start-up, commands, tests
//! working on the database directly) `write_tx` keeps its own connection and `BEGIN IMMEDIATE`.

use std::cell::RefCell;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::r2d2::{CustomizeConnection, ManageConnection};
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use super::{DbConnection, Manager, Pragmas};

/// At most this many requests share one commit: a batch's members wait for all of them, so the
/// bound keeps the added latency small (16 debits are about 6 ms of work inside the lock).
const MAX_MEMBERS: usize = 16;
/// A batch commits once it has been open this long, even with writers still queued.
const MAX_OPEN: Duration = Duration::from_millis(4);

/// The writer of one SQLite database (one per pool).
pub struct WriteGroup {
    manager: Manager,
    state: Mutex<State>,
    committed: Condvar,
    /// Writers waiting for `state`: while there are any, the batch stays open for them.
    queued: AtomicUsize,
    stats: Stats,
}

/// What the group has done since the pool was made: for the tests and the benchmark.
#[derive(Debug, Default)]
struct Stats {
    commits: AtomicU64,
    members: AtomicU64,
}

/// Commits made, and members of the batches they committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupStats {
    pub commits: u64,
    pub members: u64,
}

struct State {
    /// The writer connection; `None` only after a failure, until the next writer reconnects.
    conn: Option<DbConnection>,
    batch: Option<Batch>,
}

struct Batch {
    outcome: Arc<OnceLock<Result<(), String>>>,
    members: usize,
    opened: Instant,
}

thread_local! {
    /// The writer of the pool whose `run` this thread is executing, if any.
    static CURRENT: RefCell<Option<Arc<WriteGroup>>> = const { RefCell::new(None) };
}

/// Makes `group` the writer of the current thread until dropped (restoring the previous one).
pub(super) struct Entered(Option<Arc<WriteGroup>>);

impl Entered {
    pub(super) fn new(group: Arc<WriteGroup>) -> Entered {
        Entered(CURRENT.with(|c| c.replace(Some(group))))
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|c| *c.borrow_mut() = previous);
    }
}

/// The writer the current thread was given by `DbPool::run`, if any.
pub(super) fn current() -> Option<Arc<WriteGroup>> {
    CURRENT.with(|c| c.borrow().clone())
}

fn failed(msg: &str) -> DieselError {
    DieselError::DatabaseError(DatabaseErrorKind::Unknown, Box::new(msg.to_string()))
}

impl WriteGroup {
    pub(super) fn new(url: &str, statements: super::StatementCount) -> WriteGroup {
        WriteGroup {
            manager: Manager {
                url: url.to_string(),
                statements,
            },
            state: Mutex::new(State {
                conn: None,
                batch: None,
            }),
            committed: Condvar::new(),
            queued: AtomicUsize::new(0),
            stats: Stats::default(),
        }
    }

    pub(super) fn stats(&self) -> GroupStats {
        GroupStats {
            commits: self.stats.commits.load(Ordering::Relaxed),
            members: self.stats.members.load(Ordering::Relaxed),
        }
    }

    /// Writers waiting for their turn on the writer connection now.
    pub(super) fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed) as u64
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic inside a member is caught below: a poisoned lock protects nothing broken.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn connect(&self) -> Result<DbConnection, DieselError> {
        let mut c = self
            .manager
            .connect()
            .map_err(|e| failed(&format!("writer connection: {e}")))?;
        Pragmas
            .on_acquire(&mut c)
            .map_err(|e| failed(&format!("writer connection: {e}")))?;
        Ok(c)
    }

    /// Runs `f` as one member of the current batch (see the module documentation).
    pub(super) fn write<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, E>,
        E: From<DieselError>,
    {
        self.queued.fetch_add(1, Ordering::SeqCst);
        let mut st = self.lock();
        self.queued.fetch_sub(1, Ordering::SeqCst);

        if st.batch.is_none() {
            if st.conn.is_none() {
                st.conn = Some(self.connect()?);
            }
            let Some(DbConnection::Sqlite(c)) = st.conn.as_mut() else {
                return Err(failed("the writer connection is not SQLite").into());
            };
            if let Err(e) = AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE") {
                st.conn = None;
                return Err(e.into());
            }
            st.batch = Some(Batch {
                outcome: Arc::new(OnceLock::new()),
                members: 0,
                opened: Instant::now(),
            });
        }

        // This member's savepoint, its work, and the savepoint released or rolled back.
        let (r, broken) = {
            let conn = st.conn.as_mut().expect("a batch has a connection");
            let DbConnection::Sqlite(c) = conn else {
                unreachable!("the writer connection is SQLite")
            };
            match AnsiTransactionManager::begin_transaction(c) {
                Err(e) => (Ok(Err(E::from(e))), true),
                Ok(()) => {
                    let r = catch_unwind(AssertUnwindSafe(|| f(conn)));
                    let DbConnection::Sqlite(c) = conn else {
                        unreachable!("the writer connection is SQLite")
                    };
                    let ended = match &r {
                        Ok(Ok(_)) => AnsiTransactionManager::commit_transaction(c),
                        _ => AnsiTransactionManager::rollback_transaction(c),
                    };
                    // Still inside the batch's transaction (depth 1)? If SQLite rolled the whole
                    // transaction back, or a savepoint could not be ended, the batch is lost.
                    let depth = AnsiTransactionManager::transaction_manager_status_mut(c)
                        .transaction_depth()
                        .ok()
                        .flatten()
                        .map(|d| d.get());
                    (r, ended.is_err() || depth != Some(1))
                }
            }
        };

        let batch = st.batch.as_mut().expect("an open batch");
        batch.members += 1;
        let outcome = batch.outcome.clone();
        let ok = matches!(r, Ok(Ok(_)));
        let commit_now = broken
            || self.queued.load(Ordering::SeqCst) == 0
            || batch.members >= MAX_MEMBERS
            || batch.opened.elapsed() >= MAX_OPEN;
        if commit_now {
            self.finish(&mut st, broken);
        } else if ok {
            st = self
                .committed
                .wait_while(st, |_| outcome.get().is_none())
                .unwrap_or_else(PoisonError::into_inner);
        }
        drop(st);

        match r {
            Err(panic) => resume_unwind(panic),
            Ok(Err(e)) => Err(e),
            Ok(Ok(v)) => match outcome.get() {
                Some(Ok(())) => Ok(v),
                Some(Err(msg)) => Err(failed(msg).into()),
                None => Err(failed("the batch ended without an outcome").into()),
            },
        }
    }

    /// Ends the open batch: commits it (or, when `broken`, rolls it back and drops the
    /// connection), records the outcome and wakes its members.
    fn finish(&self, st: &mut State, broken: bool) {
        let Some(batch) = st.batch.take() else {
            return;
        };
        let result = match st.conn.as_mut() {
            Some(DbConnection::Sqlite(c)) if !broken => {
                match AnsiTransactionManager::commit_transaction(c) {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        let _ = AnsiTransactionManager::rollback_transaction(c);
                        Err(format!("commit failed: {e}"))
                    }
                }
            }
            _ => Err("the transaction of this batch was rolled back".to_string()),
        };
        if result.is_ok() {
            self.stats.commits.fetch_add(1, Ordering::Relaxed);
            self.stats
                .members
                .fetch_add(batch.members as u64, Ordering::Relaxed);
        } else {
            // Closing the connection ends whatever is left of its transaction.
            st.conn = None;
            tracing::error!(
                members = batch.members,
                error = result.as_ref().err().map(String::as_str).unwrap_or(""),
                "a group commit failed: every request of the batch got an error"
            );
        }
        let _ = batch.outcome.set(result);
        self.committed.notify_all();
    }

    /// Commits the open batch, if any, and runs `f` while no batch is open and no writer of
    /// the group can start one (the WAL checkpoint after an erasure).
    pub(super) fn between_batches<T>(&self, f: impl FnOnce() -> T) -> T {
        let mut st = self.lock();
        self.finish(&mut st, false);
        f()
    }
}
