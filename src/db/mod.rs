//! The data layer: one diesel codebase for SQLite (embedded default) and PostgreSQL.
//!
//! The connection is a `MultiConnection` enum; the r2d2 manager picks the variant from the URL
//! scheme so that a refused PostgreSQL connection is reported as such. SQLite connections get
//! their pragmas on every acquire.

mod group;
pub use group::GroupStats;
pub mod schema;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection, R2D2Connection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::error::ServiceError;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgresql(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Runs a diesel query on the inner connection of a [`DbConnection`]: `on_inner!(conn, c =>
/// query.first(c))` expands the expression once per backend.
///
/// For the hot statements of the API calls (the configuration version, a profile with its
/// instruments, a Monri customer). Through the `MultiConnection` enum diesel renders a query's
/// SQL again on every execution, even when the prepared statement is cached
/// (`SerializedQuery::walk_ast` and `push_identifier` were 17% of getProfile's CPU, README
/// "Benchmark"); on the inner connection a query whose shape is fixed is looked up in the
/// statement cache by its type, and its SQL is built once per connection.
#[macro_export]
macro_rules! on_inner {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Sqlite($c) => $body,
            $crate::db::DbConnection::Postgresql($c) => $body,
        }
    };
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn from_url(url: &str) -> Backend {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

/// SQLite settings applied on every connection.
///
/// `synchronous = FULL`: in WAL mode, NORMAL may lose the last transactions on power loss or an
/// OS crash (not on a process crash). A payment vault acknowledges registrations that a merchant
/// will rely on, so every commit is fsynced before the response goes out; the cost is one fsync
/// of the WAL per write transaction (about 0.45 ms on the project's machine: with the work done
/// inside the write lock it bounds SQLite to about 1 200 debits/s, see the README's Benchmark).
/// `secure_delete = ON`: deleted or overwritten content (an erased customer's data, a deleted
/// instrument's sealed card) is zeroed in the file instead of lingering in free space until the
/// page is reused.
/// WAL is a property of the database file: it is switched on once, by `DbPool::connect`, before
/// the pool opens its connections (several connections switching it at once on a new file
/// fail with "database is locked").
const SQLITE_PRAGMAS: &str = "PRAGMA busy_timeout = 10000; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON;";

pub struct Manager {
    url: String,
    statements: StatementCount,
}

/// How many statements the pool's connections have run (queries, the pool's checks, `BEGIN` and
/// `COMMIT`): one relaxed atomic add per statement, read by the tests and for the README's counts
/// per API call.
#[derive(Debug, Clone, Default)]
pub struct StatementCount(std::sync::Arc<std::sync::atomic::AtomicU64>);

impl StatementCount {
    pub fn get(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

struct Counting(StatementCount);

impl diesel::connection::Instrumentation for Counting {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { .. } = event {
            (self.0)
                .0
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
}

impl Manager {
    /// Opens a new connection of the URL's backend, counted by [`StatementCount`].
    pub(super) fn open(&self) -> Result<DbConnection, diesel::r2d2::Error> {
        let r = match Backend::from_url(&self.url) {
            Backend::Postgres => {
                diesel::PgConnection::establish(&self.url).map(DbConnection::Postgresql)
            }
            Backend::Sqlite => {
                let path = self.url.strip_prefix("sqlite://").unwrap_or(&self.url);
                create_private_file(path);
                diesel::SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
        };
        let mut c = r.map_err(diesel::r2d2::Error::ConnectionError)?;
        c.set_instrumentation(Counting(self.statements.clone()));
        Ok(c)
    }
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.open()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.ping().map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        conn.is_broken()
    }
}

/// How long after a connection went back to the pool it is handed out again without a ping
/// (PostgreSQL). r2d2's `test_on_check_out` pinged every connection it handed out (`SELECT 1`):
/// one round trip of every API call, a third of a cached getProfile's statements. A connection
/// that finished its work less than this long ago is taken as alive, as HikariCP does (its
/// `aliveBypassWindowMs`, 500 ms by default); one idle for longer is pinged first, so that the
/// connections a server restart closed are found and replaced before a request gets one.
pub const ALIVE_BYPASS: std::time::Duration = std::time::Duration::from_millis(500);

/// When a pooled connection last finished its work (kept in the connection's r2d2 extensions).
struct Returned(std::time::Instant);

/// Creates the SQLite database file, empty and with mode 0600, when it does not exist yet:
/// SQLite itself would create it 0644 (less the umask), and it creates `-wal` and `-shm` with
/// the mode of the database file, so all three are private. An existing file is left alone; if
/// the file cannot be created here, SQLite's own open reports why.
fn create_private_file(path: &str) {
    if path.is_empty() || path == ":memory:" || path.starts_with("file:") {
        return;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        if created.is_ok() {
            // Exactly 0600 whatever the umask (which may take away the owner's write bit).
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Pragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        self.apply(conn)
    }
}

impl Pragmas {
    pub(super) fn apply(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        match conn {
            DbConnection::Sqlite(c) => c
                .batch_execute(SQLITE_PRAGMAS)
                .map_err(diesel::r2d2::Error::QueryError),
            DbConnection::Postgresql(_) => Ok(()),
        }
    }
}

/// The shared pool. `run` moves the blocking diesel work off the async workers.
///
/// `run` first waits, asynchronously and first come first served, for one of `size` permits,
/// so that no more blocking tasks than connections are started. Without it every concurrent
/// request took a blocking thread that then slept on r2d2's condition variable, where a
/// newcomer can take a freed connection before the longest waiter: more context switches, and
/// on PostgreSQL a p99 of 225 ms for /healthz at 64 connections (bench/).
#[derive(Clone)]
pub struct DbPool {
    pool: Pool<Manager>,
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// SQLite: the writer that groups the write transactions of `run`'s tasks into shared
    /// commits ([`write_tx`], `group.rs`).
    writer: Option<std::sync::Arc<group::WriteGroup>>,
    /// [`read`](Self::read) runs SQLite reads on the async worker (`COFFER_SQLITE_INLINE_READS`,
    /// default on; off: on a blocking thread like every other call, for comparison).
    inline_reads: bool,
    pub backend: Backend,
    pub statements: StatementCount,
}

impl DbPool {
    /// A pool of `size` connections; on SQLite with the group commit (`group.rs`).
    pub fn connect(url: &str, size: u32) -> anyhow::Result<DbPool> {
        DbPool::connect_with(url, size, true)
    }

    /// As [`connect`](Self::connect); `group_commit: false` (SQLite) gives every write
    /// transaction its own commit (`COFFER_SQLITE_GROUP_COMMIT`).
    pub fn connect_with(url: &str, size: u32, group_commit: bool) -> anyhow::Result<DbPool> {
        let backend = Backend::from_url(url);
        if backend == Backend::Sqlite {
            let mut first = Manager {
                url: url.to_string(),
                statements: StatementCount::default(),
            }
            .open()?;
            first.batch_execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL;")?;
        }
        let statements = StatementCount::default();
        let pool = Pool::builder()
            .max_size(size)
            // r2d2 would ping every connection before handing it out. A SQLite connection is a
            // file handle that cannot go stale: the ping was one statement of every call for
            // nothing. On PostgreSQL it finds connections the server closed: `DbPool::take`
            // pings those idle for longer than `ALIVE_BYPASS`.
            .test_on_check_out(false)
            .connection_timeout(std::time::Duration::from_secs(10))
            .connection_customizer(Box::new(Pragmas))
            .build(Manager {
                url: url.to_string(),
                statements: statements.clone(),
            })?;
        let writer = (backend == Backend::Sqlite && group_commit)
            .then(|| std::sync::Arc::new(group::WriteGroup::new(url, statements.clone())));
        Ok(DbPool {
            pool,
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(size as usize)),
            writer,
            inline_reads: true,
            backend,
            statements,
        })
    }

    /// Connections the pool holds at most.
    pub fn size(&self) -> usize {
        self.pool.max_size() as usize
    }

    pub fn get(&self) -> Result<PooledConnection<Manager>, ServiceError> {
        take(&self.pool, self.backend)
    }

    /// Runs `f` with a pooled connection on the runtime's blocking thread pool, inside the
    /// caller's tracing span (a request's, with its request id), so that what `f` logs is
    /// attributed to the request. The wait for the connection is measured
    /// (`coffer_db_pool_wait_seconds`).
    pub async fn run<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ServiceError> + Send + 'static,
        T: Send + 'static,
    {
        let asked = std::time::Instant::now();
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("database permits: {e}")))?;
        let pool = self.pool.clone();
        let backend = self.backend;
        let writer = self.writer.clone();
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || {
            let _span = span.enter();
            let _writer = writer.map(group::Entered::new);
            let mut conn = take(&pool, backend)?;
            let waited = asked.elapsed().as_secs_f64();
            crate::metrics::db_pool_wait(waited);
            // In the caller's span (a request's id), on the blocking thread.
            tracing::trace!(
                target: "coffer::db",
                wait_ms = waited * 1000.0,
                "database connection taken"
            );
            let r = f(&mut conn);
            // The connection goes back to the pool, then the next waiter is let in at once
            // (not only once this task's result has reached its worker thread).
            give_back(conn);
            drop(permit);
            r
        })
        .await
        .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("blocking task failed: {e}")))?
    }

    /// As [`run`](Self::run), for a short read (getProfile, a Monri GET): on SQLite `f` runs on
    /// the calling async worker itself, without the hand-off to a blocking thread and back
    /// (futex wake-ups and scheduling were 16% of getProfile's CPU: README "Benchmark"). A
    /// SQLite read of a cached page set takes tens of microseconds, less than the hand-off. It
    /// still waits for a permit first, and takes a connection only when one is idle (otherwise,
    /// and on PostgreSQL, where every statement waits for the network, it is [`run`]).
    /// `f` may still write (the access audit's fallback when its queue is full): that joins
    /// the group commit as on a blocking thread, and blocks this worker until it commits.
    pub async fn read<T, F>(&self, f: F) -> Result<T, ServiceError>
    where
        F: FnOnce(&mut DbConnection) -> Result<T, ServiceError> + Send + 'static,
        T: Send + 'static,
    {
        if self.backend != Backend::Sqlite || !self.inline_reads {
            return self.run(f).await;
        }
        let asked = std::time::Instant::now();
        let permit = self
            .permits
            .acquire()
            .await
            .map_err(|e| ServiceError::Unexpected(anyhow::anyhow!("database permits: {e}")))?;
        let Some(mut conn) = self.pool.try_get() else {
            drop(permit);
            return self.run(f).await;
        };
        crate::metrics::db_pool_wait(asked.elapsed().as_secs_f64());
        let _writer = self.writer.clone().map(group::Entered::new);
        let r = f(&mut conn);
        give_back(conn);
        drop(permit);
        r
    }

    /// Switches [`read`](Self::read)'s inline SQLite reads (on by default).
    pub fn with_inline_reads(mut self, on: bool) -> DbPool {
        self.inline_reads = on;
        self
    }

    /// SQLite: the group commit's commits so far and the write transactions they held (`None`
    /// on PostgreSQL, or with `COFFER_SQLITE_GROUP_COMMIT=false`).
    pub fn group_stats(&self) -> Option<GroupStats> {
        self.writer.as_ref().map(|w| w.stats())
    }

    /// SQLite with the group commit: write transactions waiting for the writer now (0
    /// otherwise), for `coffer_sqlite_writer_queue_depth`.
    pub fn writer_queue_depth(&self) -> u64 {
        self.writer.as_ref().map_or(0, |w| w.queued())
    }

    /// As [`run`](Self::run), on the calling thread (which may block): for the process's own
    /// worker threads, so that their writes join the group commit too.
    pub fn run_here<T>(
        &self,
        f: impl FnOnce(&mut DbConnection) -> Result<T, ServiceError>,
    ) -> Result<T, ServiceError> {
        let _writer = self.writer.clone().map(group::Entered::new);
        let asked = std::time::Instant::now();
        let mut conn = take(&self.pool, self.backend)?;
        crate::metrics::db_pool_wait(asked.elapsed().as_secs_f64());
        let r = f(&mut conn);
        give_back(conn);
        r
    }

    /// Applies pending migrations, under the [start-up lock](with_startup_lock).
    pub fn run_migrations(&self) -> anyhow::Result<Vec<String>> {
        self.run_migrations_reporting(false)
    }

    /// As [`run_migrations`](Self::run_migrations); with `report`, shows their progress
    /// (`coffer migrate`, [`crate::progress`]).
    pub fn run_migrations_reporting(&self, report: bool) -> anyhow::Result<Vec<String>> {
        let mut conn = self.pool.get()?;
        with_startup_lock(&mut conn, |c| apply_migrations(c, report))
    }
}

/// A connection of `pool`. On PostgreSQL one that has been idle for [`ALIVE_BYPASS`] or longer
/// (or never finished work through [`give_back`]) is pinged first; one that fails the ping is
/// marked broken, so that r2d2 drops it when it goes back (`has_broken`), and the next is
/// tried.
fn take(pool: &Pool<Manager>, backend: Backend) -> Result<PooledConnection<Manager>, ServiceError> {
    let mut tries = pool.max_size() + 1;
    loop {
        let mut conn = pool.get()?;
        let fresh = PooledConnection::extensions(&conn)
            .get::<Returned>()
            .is_some_and(|r| r.0.elapsed() < ALIVE_BYPASS);
        if backend == Backend::Sqlite || fresh {
            return Ok(conn);
        }
        match conn.ping() {
            Ok(_) => return Ok(conn),
            Err(e) => {
                tries -= 1;
                tracing::warn!(error = %e, "a pooled database connection failed its ping: replaced");
                if let DbConnection::Postgresql(pg) = &mut *conn {
                    use diesel::connection::{AnsiTransactionManager, TransactionManager};
                    AnsiTransactionManager::transaction_manager_status_mut(pg).set_in_error();
                }
                drop(conn);
                if tries == 0 {
                    return Err(e.into());
                }
            }
        }
    }
}

/// Gives a connection back to its pool, stamped with the time (see [`take`]).
fn give_back(mut conn: PooledConnection<Manager>) {
    PooledConnection::extensions_mut(&mut conn).insert(Returned(std::time::Instant::now()));
}

/// Key of the PostgreSQL advisory lock taken by [`with_startup_lock`] ("Coffer" in ASCII).
const STARTUP_LOCK_KEY: i64 = 0x436f_6666_6572;

/// Runs `f` while holding the start-up lock, so that processes starting together on one
/// PostgreSQL database take turns: the first applies the migrations and creates the vault's
/// keys, the first admin and the demo data; the others find them. Without it, processes started
/// at the same time on a new database ran the same `CREATE TABLE`s at once and all but one
/// exited ("duplicate key value violates unique constraint pg_type_typname_nsp_index"), and a
/// vault could get two active data keys.
///
/// On PostgreSQL it is a session-level advisory lock on this connection: held across the
/// transactions of `f`, released when `f` returns, and by the server should the process die.
/// `f` must do its work on `conn` (another connection of the process would wait for the lock
/// only if it took it too, which nothing else does). On SQLite it does nothing: a data dir is
/// served by one process.
pub fn with_startup_lock<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    if let DbConnection::Postgresql(pg) = conn {
        diesel::sql_query(format!("SELECT pg_advisory_lock({STARTUP_LOCK_KEY})")).execute(pg)?;
    } else {
        return f(conn);
    }
    let r = f(conn);
    let unlocked = match conn {
        DbConnection::Postgresql(pg) => {
            diesel::sql_query(format!("SELECT pg_advisory_unlock({STARTUP_LOCK_KEY})"))
                .execute(pg)
                .map(|_| ())
        }
        DbConnection::Sqlite(_) => Ok(()),
    };
    let v = r?;
    unlocked?;
    Ok(v)
}

/// How many migrations of this build the database has not applied (for /readyz).
pub fn pending_migrations(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let set = match conn {
        DbConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        DbConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
    };
    conn.pending_migrations(set)
        .map(|p| p.len())
        .map_err(|e| anyhow::anyhow!("reading the applied migrations failed: {e}"))
}

pub fn run_migrations(conn: &mut DbConnection) -> anyhow::Result<Vec<String>> {
    apply_migrations(conn, false)
}

/// Applies the pending migrations one by one (each in its own transaction, as diesel's
/// `run_pending_migrations` does), counting them on a [`Progress`](crate::progress::Progress)
/// when `report`.
fn apply_migrations(conn: &mut DbConnection, report: bool) -> anyhow::Result<Vec<String>> {
    let set = match conn {
        DbConnection::Sqlite(_) => SQLITE_MIGRATIONS,
        DbConnection::Postgresql(_) => POSTGRES_MIGRATIONS,
    };
    let pending = conn
        .pending_migrations(set)
        .map_err(|e| anyhow::anyhow!("reading the applied migrations failed: {e}"))?;
    let progress = (report && !pending.is_empty())
        .then(|| crate::progress::Progress::new("migrate", pending.len() as u64));
    let mut applied = Vec::with_capacity(pending.len());
    for m in &pending {
        let v = conn
            .run_migration(m.as_ref())
            .map_err(|e| anyhow::anyhow!("migration {} failed: {e}", m.name()))?;
        applied.push(v.to_string());
        if let Some(p) = &progress {
            p.inc(1);
        }
    }
    if let Some(p) = &progress {
        p.finish();
    }
    Ok(applied)
}

/// Serializes this process's SQLite write transactions (see [`write_tx`]).
static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Runs `f` in a write transaction. On SQLite it starts with `BEGIN IMMEDIATE`, so the write
/// lock is taken (waiting up to the busy timeout) before anything is read: a deferred
/// transaction that reads first and writes later fails with SQLITE_BUSY under concurrency
/// instead of waiting. On PostgreSQL it is an ordinary transaction. Nested `transaction` and
/// `write_tx` calls inside `f` become savepoints of the outer transaction (which already holds
/// the write lock), so services that write can call each other.
///
/// On SQLite, on a thread of [`DbPool::run`], `f` runs on the pool's writer connection as one
/// member of a group commit (`group.rs`): inside its own savepoint of a transaction shared
/// with the writers queued beside it, and `write_tx` returns once that transaction has
/// committed (or `f`'s error, at once, with nothing of `f` written). `f` gets the writer
/// connection, not `conn`.
///
/// Elsewhere (start-up, commands, tests on the database directly), SQLite has one writer at a
/// time. Within this process those writers queue on a mutex before
/// `BEGIN IMMEDIATE`, so they do not meet SQLite's busy handler, which polls with sleeps of up
/// to 100 ms: with 64 concurrent debits it gave a p99 of 1.2 s and left the lock idle between
/// polls (bench/). The busy timeout still arbitrates between processes sharing the file. The
/// mutex is process-wide, so two SQLite databases in one process (the tests) share it: they
/// only wait for each other's short transactions.
pub fn write_tx<T, E, F>(conn: &mut DbConnection, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let nested = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::transaction_manager_status_mut(c)
            .transaction_depth()?
            .is_some(),
        DbConnection::Postgresql(_) => false,
    };
    if nested {
        conn.transaction(f)
    } else if let (DbConnection::Sqlite(_), Some(writer)) = (&*conn, group::current()) {
        writer.write(f)
    } else if let DbConnection::Sqlite(c) = conn {
        // A panic inside `f` poisons the mutex but leaves nothing to protect: carry on.
        let _writer = SQLITE_WRITER
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        AnsiTransactionManager::begin_transaction_sql(c, "BEGIN IMMEDIATE")?;
        let r = f(conn);
        let DbConnection::Sqlite(c) = conn else {
            return r;
        };
        match r {
            Ok(v) => {
                if let Err(e) = AnsiTransactionManager::commit_transaction(c) {
                    let _ = AnsiTransactionManager::rollback_transaction(c);
                    return Err(e.into());
                }
                Ok(v)
            }
            Err(e) => {
                let _ = AnsiTransactionManager::rollback_transaction(c);
                Err(e)
            }
        }
    } else {
        conn.transaction(f)
    }
}

/// Checkpoint attempts of [`scrub_after_erasure`], and the busy timeout of each, in ms.
const SCRUB_ATTEMPTS: u32 = 3;
const SCRUB_BUSY_TIMEOUT_MS: u32 = 2000;

#[derive(diesel::QueryableByName)]
struct Checkpoint {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    busy: i32,
}

/// Call after an erasure has committed (a customer's data, a profile, an instrument), on the
/// connection that made it, outside any transaction. On SQLite the WAL still holds the page
/// images from before the erasure (`secure_delete` zeroes the erased bytes in the new images
/// only): this copies every frame into the database file and truncates the WAL to zero bytes
/// (`wal_checkpoint(TRUNCATE)`), so that once the erasure answers no byte of the erased data
/// is readable in `coffer.db`, `-wal` or `-shm`. A no-op on PostgreSQL.
///
/// The checkpoint cannot finish while another connection reads an older snapshot: it waits
/// for such readers through the busy handler (at most 2 s per attempt, 3 attempts), holding
/// this process's writer mutex so that no writer of the process queues behind it in SQLite's
/// polling busy handler. A checkpoint is ~1 ms after a small write, more after bulk writes (it
/// copies what the WAL holds). If readers still block it, it logs a warning and returns `Ok`:
/// the erasure has committed, and the next erasure's scrub (or SQLite's own checkpoints and
/// WAL reuse) removes the old images later.
pub fn scrub_after_erasure(conn: &mut DbConnection) -> Result<(), ServiceError> {
    use diesel::connection::{AnsiTransactionManager, TransactionManager};
    let DbConnection::Sqlite(c) = conn else {
        return Ok(());
    };
    if AnsiTransactionManager::transaction_manager_status_mut(c)
        .transaction_depth()?
        .is_some()
    {
        return Err(ServiceError::Unexpected(anyhow::anyhow!(
            "scrub_after_erasure called inside a transaction"
        )));
    }
    // No writer of the process may start meanwhile: the group commit's between its batches,
    // the others on their mutex.
    match group::current() {
        Some(writer) => writer.between_batches(|| checkpoint_and_truncate(c)),
        None => {
            let _writer = SQLITE_WRITER
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            checkpoint_and_truncate(c)
        }
    }
}

fn checkpoint_and_truncate(c: &mut diesel::SqliteConnection) -> Result<(), ServiceError> {
    let started = std::time::Instant::now();
    c.batch_execute(&format!("PRAGMA busy_timeout = {SCRUB_BUSY_TIMEOUT_MS};"))?;
    let mut done = Ok(false);
    for attempt in 1..=SCRUB_ATTEMPTS {
        done = diesel::sql_query("PRAGMA wal_checkpoint(TRUNCATE)")
            .get_result::<Checkpoint>(c)
            .map(|row| row.busy == 0);
        if !matches!(done, Ok(false)) {
            break;
        }
        if attempt < SCRUB_ATTEMPTS {
            std::thread::sleep(std::time::Duration::from_millis(20 * u64::from(attempt)));
        }
    }
    // Back to the connection's own settings (busy timeout) whatever happened.
    let restored = c.batch_execute(SQLITE_PRAGMAS);
    let done = done?;
    restored?;
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    if done {
        tracing::debug!(ms, "WAL checkpointed and truncated after an erasure");
    } else {
        tracing::warn!(
            ms,
            "after an erasure the WAL could not be truncated: other connections kept reading; \
             erased data may stay readable in coffer.db-wal until the next checkpoint"
        );
    }
    Ok(())
}

/// True when the error is a unique-constraint violation (mapped to a conflict in services).
pub fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

/// True when PostgreSQL gave up waiting for a lock (`lock_timeout`, SQLSTATE 55P03).
pub fn is_lock_timeout(e: &diesel::result::Error) -> bool {
    match e {
        diesel::result::Error::DatabaseError(_, info) => info.message().contains("lock timeout"),
        _ => false,
    }
}

/// Bounds (`Some`) or unbounds (`None`) how long the rest of the caller's PostgreSQL
/// transaction waits for a row lock; a no-op on SQLite, where writers queue on the write lock.
pub fn set_lock_timeout(
    conn: &mut DbConnection,
    wait: Option<std::time::Duration>,
) -> QueryResult<()> {
    if let DbConnection::Postgresql(pg) = conn {
        let sql = match wait {
            Some(d) => format!("SET LOCAL lock_timeout = {}", d.as_millis()),
            None => "SET LOCAL lock_timeout = DEFAULT".to_string(),
        };
        pg.batch_execute(&sql)?;
    }
    Ok(())
}

/// Escapes `%`, `_` and `\` for a LIKE pattern used with `ESCAPE '\'`.
pub fn like_prefix(prefix: &str) -> String {
    let mut s = String::with_capacity(prefix.len() + 1);
    for ch in prefix.chars() {
        if matches!(ch, '%' | '_' | '\\') {
            s.push('\\');
        }
        s.push(ch);
    }
    s.push('%');
    s
}
