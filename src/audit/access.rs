//! Access audit (PCI DSS v4 10.2.1.1): every read of a customer profile and every charge of a
//! stored instrument is attributed: who (a console user, an API user and its connector, a Monri
//! client, a payer on the hosted page), which profile, when, and through which route.
//!
//! Reads are the hot path of the APIs, so their entries are not written by the request that
//! made them: they wait in this process's queue and a writer thread appends them to the hash
//! chains in batches (one transaction per batch, [`super::chain::append`]), every
//! `COFFER_ACCESS_AUDIT_FLUSH_MS` milliseconds (default 200) or as soon as [`BATCH`] entries
//! wait. What can be lost:
//! - a graceful stop (SIGTERM, SIGINT, the server's own stop) writes every queued entry before
//!   the process exits ([`AccessLog::shutdown`]);
//! - `kill -9` or a power cut loses the entries of the reads answered in the last flush
//!   interval (at most 200 ms of reads by default, never an older one), and nothing else: the
//!   payments themselves commit with their transaction, and a charge also stays visible as its
//!   transaction;
//! - when the queue is full ([`MAX_QUEUED`] entries: reads come faster than the database takes
//!   their entries), the reading request waits, up to [`FULL_WAIT`], for the writer to make
//!   room (back-pressure: reads slow down to the pace at which their entries are written, and
//!   every entry still goes into a batch, in the order of the reads); should the writer not
//!   make room in that time (the database failing), the reader writes its own entry in a write
//!   transaction before answering: slower, never dropped.
//!
//! Every audit page of the console flushes the queue before it reads, so what this process
//! has answered is on the page it shows next.

use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use crate::db::{DbConnection, DbPool};
use crate::domain::Actor;
use crate::error::ServiceError;
use crate::models::audit::AuditEntry;

use super::{Origin, Place};

/// A batch is written as soon as this many entries wait.
pub const BATCH: usize = 500;
/// Beyond this many queued entries a reader writes its own entry.
pub const MAX_QUEUED: usize = 20_000;
/// How long a reader waits for room in a full queue before writing its own entry.
pub const FULL_WAIT: Duration = Duration::from_secs(2);
/// The default flush interval.
pub const FLUSH_MS_DEFAULT: u64 = 200;
/// The action of every access entry starts with this.
pub const ACTION_PREFIX: &str = "profile.access";

/// How a profile was read: the second part of the entry's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Opened in the console.
    View,
    /// Read through the Customer Profiles API (getProfile).
    Get,
    /// Read through the Monri Customers API (a customer, a list, payment methods).
    Monri,
    /// A stored instrument of the profile was opened to be charged.
    Charge,
    /// A stored card of the profile was opened by the (simulated) account updater.
    AccountUpdater,
}

impl Kind {
    pub fn action(self) -> &'static str {
        match self {
            Kind::View => "profile.access.view",
            Kind::Get => "profile.access.get",
            Kind::Monri => "profile.access.monri",
            Kind::Charge => "profile.access.charge",
            Kind::AccountUpdater => "profile.access.account_updater",
        }
    }
}

/// The process's access audit queue and its writer (cheap to clone).
#[derive(Clone)]
pub struct AccessLog {
    inner: Arc<Inner>,
}

struct Inner {
    db: DbPool,
    flush_every: Duration,
    /// Entries the queue holds at most ([`MAX_QUEUED`]).
    max_queued: usize,
    state: Mutex<State>,
    /// The writer waits here for entries, a flush or the stop.
    wake: Condvar,
    /// Flushers wait here for the writer to catch up.
    written: Condvar,
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

#[derive(Default)]
struct State {
    queue: Vec<AuditEntry>,
    /// Entries ever queued, and ever written (or written by their readers).
    queued: u64,
    done: u64,
    /// A flush is waiting: write now, not at the end of the interval.
    urgent: bool,
    stopping: bool,
    /// The last write failed: flushers stop waiting for it.
    failing: bool,
    /// Readers waiting for room in a full queue (each holds a database connection).
    waiting: usize,
}

impl AccessLog {
    /// Starts the writer thread of a pool.
    pub fn start(db: DbPool, flush_every: Duration) -> AccessLog {
        AccessLog::start_with_limit(db, flush_every, MAX_QUEUED)
    }

    /// As [`start`](Self::start), with a queue of at most `max_queued` entries (tests).
    pub fn start_with_limit(db: DbPool, flush_every: Duration, max_queued: usize) -> AccessLog {
        let inner = Arc::new(Inner {
            db,
            flush_every: flush_every.max(Duration::from_millis(1)),
            max_queued: max_queued.max(1),
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            written: Condvar::new(),
            writer: Mutex::new(None),
        });
        let worker = inner.clone();
        let handle = std::thread::Builder::new()
            .name("coffer-access-audit".into())
            .spawn(move || worker.run())
            .expect("the access audit writer thread starts");
        *inner.writer.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
        AccessLog { inner }
    }

    /// Queues one entry (see [`push_all`](Self::push_all)).
    pub fn push(&self, conn: &mut DbConnection, entry: AuditEntry) -> Result<(), ServiceError> {
        self.push_all(conn, vec![entry])
    }

    /// Queues entries (one request's reads), once the call's configuration is known to be
    /// current (`config_cache::may_record`). When the queue is full it asks the writer to
    /// write now and waits for room, up to [`FULL_WAIT`]; after that (or once the log is
    /// stopping) it writes them itself on `conn`, in a write transaction.
    pub fn push_all(
        &self,
        conn: &mut DbConnection,
        entries: Vec<AuditEntry>,
    ) -> Result<(), ServiceError> {
        if entries.is_empty() {
            return Ok(());
        }
        // A short read on a cached configuration that proves stale stops here, before it
        // records anything: it is done again on the current one, which records its reads once.
        if !crate::vault::config_cache::may_record(conn)? {
            return Err(ServiceError::Stale);
        }
        {
            let deadline = Instant::now() + FULL_WAIT;
            let mut s = self.inner.lock();
            loop {
                if s.stopping {
                    break;
                }
                // A list larger than the whole queue goes into an empty one.
                if s.queue.len() + entries.len() <= self.inner.max_queued || s.queue.is_empty() {
                    s.queued += entries.len() as u64;
                    s.queue.extend(entries);
                    if s.queue.len() >= BATCH {
                        self.inner.wake.notify_one();
                    }
                    return Ok(());
                }
                let now = Instant::now();
                // Each waiting reader holds a connection of the pool the writer takes one from:
                // at most all but two of them wait, the others write their own entries.
                if s.failing || now >= deadline || s.waiting + 2 >= self.inner.db.size() {
                    break;
                }
                s.urgent = true;
                self.inner.wake.notify_one();
                s.waiting += 1;
                s = self.inner.wait_written(s, deadline - now);
                s.waiting -= 1;
            }
        }
        crate::db::write_tx(conn, |c| super::chain::append(c, entries))?;
        Ok(())
    }

    /// Waits (at most `timeout`) until every entry queued before this call is written; true
    /// when it is.
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut s = self.inner.lock();
        let target = s.queued;
        s.urgent = true;
        self.inner.wake.notify_one();
        while s.done < target {
            let now = Instant::now();
            if now >= deadline || s.failing {
                return false;
            }
            s = self.inner.wait_written(s, deadline - now);
        }
        true
    }

    /// Writes what is queued and stops the writer (a graceful stop). Entries pushed after this
    /// are written by their readers.
    pub fn shutdown(&self) {
        {
            let mut s = self.inner.lock();
            s.stopping = true;
            self.inner.wake.notify_one();
        }
        let handle = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(h) = handle {
            let _ = h.join();
        }
    }

    /// Entries queued and not yet written.
    pub fn pending(&self) -> usize {
        self.inner.lock().queue.len()
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits (at most `timeout`) for the writer to finish a batch.
    fn wait_written<'a>(
        &self,
        s: std::sync::MutexGuard<'a, State>,
        timeout: Duration,
    ) -> std::sync::MutexGuard<'a, State> {
        self.written
            .wait_timeout(s, timeout)
            .unwrap_or_else(|e| e.into_inner())
            .0
    }

    fn run(&self) {
        let mut retry = Duration::from_millis(50);
        loop {
            let (batch, stopping) = {
                let mut s = self.lock();
                let until = Instant::now() + self.flush_every;
                while !s.stopping && !s.urgent && s.queue.len() < BATCH {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    s = self
                        .wake
                        .wait_timeout(s, until - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                s.urgent = false;
                let n = s.queue.len().min(BATCH);
                (s.queue.drain(..n).collect::<Vec<_>>(), s.stopping)
            };
            if batch.is_empty() {
                if stopping {
                    return;
                }
                continue;
            }
            let n = batch.len() as u64;
            match self.write(&batch) {
                Ok(()) => {
                    retry = Duration::from_millis(50);
                    let mut s = self.lock();
                    s.done += n;
                    s.failing = false;
                    self.written.notify_all();
                }
                Err(e) => {
                    tracing::error!(error = %e, entries = n, "access audit batch not written; retrying");
                    {
                        // Back at the front, in their order: nothing is dropped.
                        let mut s = self.lock();
                        s.failing = true;
                        let rest = std::mem::take(&mut s.queue);
                        s.queue = batch;
                        s.queue.extend(rest);
                        self.written.notify_all();
                    }
                    std::thread::sleep(retry);
                    retry = (retry * 2).min(Duration::from_secs(5));
                }
            }
        }
    }

    fn write(&self, batch: &[AuditEntry]) -> Result<(), ServiceError> {
        // A write transaction (on SQLite part of the group commit, `db::write_tx`), so that
        // the flush queues with the payments instead of polling for SQLite's lock.
        self.db.run_here(|conn| {
            Ok(crate::db::write_tx(conn, |c| {
                super::chain::append(c, batch.to_vec())
            })?)
        })
    }
}

/// The audit actor and place of a machine caller of `connector`.
fn client_of(connector: &crate::models::connector::Connector, name: String) -> (Actor, Place) {
    let actor = Actor::api_client(
        name,
        &connector.merchant_id,
        &connector.tenant_id,
        &connector.tenant_path,
    );
    let place = Place::merchant(
        &connector.tenant_id,
        &connector.tenant_path,
        &connector.merchant_id,
    );
    (actor, place)
}

/// An access entry: `actor` read the profile `profile_guid` (of `place`) in the way `kind`
/// says. Work without a request (the account updater) writes these itself, in batches
/// ([`super::chain::append`]).
pub fn entry(
    actor: &Actor,
    place: &Place,
    kind: Kind,
    profile_guid: &str,
    summary: String,
) -> AuditEntry {
    AuditEntry {
        id: crate::ids::new_id(),
        at: super::now_micros(),
        actor_id: (!actor.user_id.is_empty()).then(|| actor.user_id.clone()),
        actor_name: actor.username.clone(),
        tenant_id: place.tenant_id.clone(),
        tenant_path: place.tenant_path.clone(),
        merchant_id: place.merchant_id.clone(),
        action: kind.action().into(),
        object_type: "profile".into(),
        object_id: profile_guid.into(),
        summary,
        changes: "{}".into(),
        source_addr: None,
        user_agent: None,
        chain: None,
        seq: None,
        prev_hash: None,
        hash: None,
    }
}

/// Who reads, through which route, and where the request came from: what every access entry
/// of one request shares. Made by the HTTP layers, passed down to the use cases that read.
#[derive(Clone)]
pub struct Reader {
    log: AccessLog,
    /// The caller, or `None` for a payer on the hosted payment page (named after the
    /// connector of the page when an instrument is opened).
    who: Option<(Actor, Place)>,
    /// `METHOD /route/{pattern}` (no ids, no keys).
    route: String,
    origin: Origin,
}

impl Reader {
    /// A console user.
    pub fn user(log: &AccessLog, actor: &Actor, route: String, origin: Origin) -> Reader {
        let place = match &actor.scope {
            crate::domain::Scope::Platform => Place::default(),
            crate::domain::Scope::Tenant { tenant_id, path } => Place::tenant(tenant_id, path),
            crate::domain::Scope::Merchant {
                merchant_id,
                tenant_id,
                tenant_path,
            } => Place::merchant(tenant_id, tenant_path, merchant_id),
        };
        Reader {
            log: log.clone(),
            who: Some((actor.clone(), place)),
            route,
            origin,
        }
    }

    /// A machine caller of `connector` (`name` says which credentials, e.g. "API user shop-api
    /// (connector demo-shop-cards)").
    pub fn client(
        log: &AccessLog,
        connector: &crate::models::connector::Connector,
        name: String,
        route: String,
        origin: Origin,
    ) -> Reader {
        Reader {
            log: log.clone(),
            who: Some(client_of(connector, name)),
            route,
            origin,
        }
    }

    /// A payer on a hosted payment page or 3-D Secure challenge.
    pub fn payer(log: &AccessLog, route: String, origin: Origin) -> Reader {
        Reader {
            log: log.clone(),
            who: None,
            route,
            origin,
        }
    }

    fn entry(
        &self,
        kind: Kind,
        profile_guid: &str,
        detail: &str,
        connector: Option<&crate::models::connector::Connector>,
    ) -> AuditEntry {
        let (actor, place) = match (&self.who, connector) {
            (Some(who), _) => who.clone(),
            (None, Some(k)) => client_of(
                k,
                format!("Payer on the hosted payment page (connector {})", k.api_key),
            ),
            (None, None) => (
                Actor::api_client("Payer on the hosted payment page".into(), "", "", ""),
                Place::default(),
            ),
        };
        let summary = if detail.is_empty() {
            self.route.clone()
        } else {
            format!("{detail} ({})", self.route)
        };
        let mut e = entry(&actor, &place, kind, profile_guid, summary);
        e.source_addr = self.origin.addr.clone();
        e.user_agent = self.origin.user_agent.clone();
        e
    }

    /// Records that the profile `profile_guid` was read.
    pub fn read(
        &self,
        conn: &mut DbConnection,
        kind: Kind,
        profile_guid: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let e = self.entry(kind, profile_guid, detail, None);
        self.log.push(conn, e)
    }

    /// Records that each of these profiles was read (a list answer).
    pub fn read_all<'a>(
        &self,
        conn: &mut DbConnection,
        kind: Kind,
        profile_guids: impl IntoIterator<Item = &'a str>,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let mut seen = std::collections::HashSet::new();
        let entries = profile_guids
            .into_iter()
            .filter(|g| seen.insert(*g))
            .map(|g| self.entry(kind, g, detail, None))
            .collect();
        self.log.push_all(conn, entries)
    }

    /// Records that a stored instrument of `profile_guid` was opened to be charged through
    /// `connector`.
    pub fn charge(
        &self,
        conn: &mut DbConnection,
        connector: &crate::models::connector::Connector,
        profile_guid: &str,
        detail: &str,
    ) -> Result<(), ServiceError> {
        let e = self.entry(Kind::Charge, profile_guid, detail, Some(connector));
        self.log.push(conn, e)
    }
}
