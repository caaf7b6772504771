//! The configuration an API call reads, cached per process and kept coherent by one number.
//!
//! Connectors (by id, API key, public key or Monri token, with their decrypted secrets), API
//! users, and each connector's effective container (tenant lineage, Global Setting, container)
//! change rarely and were read on every call: five to seven statements and one decryption per
//! getProfile. Every transaction that changes any of them bumps `config_version` (a trigger on
//! each of those tables, migration 000020, so no write path can forget it: console, CLI, seeder
//! or hand-written SQL). A write reads that one row first ([`ConfigCache::snapshot`]); when it
//! moved, the process drops everything it cached and starts an empty [`Snapshot`] for the new
//! version. A short read (getProfile, the Status API) starts on the snapshot cached now and
//! reads the version with its data instead, in the same statement ([`within_checked`],
//! [`confirm`]): a stale snapshot is caught before anything is answered or recorded, and the
//! call is done again as a write is. A change made on one process is therefore seen by the very
//! next call on every process sharing the database.
//!
//! Why it is coherent: a snapshot's entries are loaded only after its version was read, so they
//! are at least as new as that version (read committed on PostgreSQL, a fresh read per
//! statement in SQLite's WAL mode); a change commits its rows and its bump together, so a call
//! that reads the old version loads, at worst, newer rows than it needed (and the next call drops
//! them). A call that reads a version different from the cached one, older or newer, replaces the
//! snapshot.
//!
//! Decrypted secrets live here only, in [`Zeroizing`] strings: they are wiped when the snapshot
//! holding them is dropped (after a change, once the calls still using it have ended). Unknown
//! names are not cached, so guessing keys cannot fill the memory.
//!
//! What the sharing rules decide is still decided by `vault::sharing` alone: the cache only
//! remembers its answer for the version it was computed under (`sharing::Memo`, which
//! `sharing::effective` consults inside [`within`]). Console pages that change the configuration
//! never enter [`within`]: they compute from the current rows inside their write transaction.
//! The container page (read-only; it names every connector using the container and why) does:
//! it reads the version at the start of the request, as an API call does, so it shows the
//! configuration as of that request, without recomputing every connector's effective container
//! on each view (`console::containers::usage` was 31% of the profile search page's CPU).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use zeroize::Zeroizing;

use crate::db::DbConnection;
use crate::models::api_user::{self, ApiUser};
use crate::models::config_version;
use crate::models::connector::{self, Connector, Named};
use crate::vault::sharing;

/// The per-process cache: the snapshot of the last version seen.
pub struct ConfigCache {
    current: RwLock<Arc<Snapshot>>,
}

impl Default for ConfigCache {
    fn default() -> Self {
        ConfigCache::new()
    }
}

impl std::fmt::Debug for ConfigCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ConfigCache(version {})", self.current().version)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl ConfigCache {
    pub fn new() -> ConfigCache {
        ConfigCache {
            // Version 0 is never stored (the row starts at 1): the first call starts afresh.
            current: RwLock::new(Arc::new(Snapshot::new(0))),
        }
    }

    /// The snapshot for the configuration version stored now: one primary-key read, and a new
    /// empty snapshot when the version differs from the cached one.
    pub fn snapshot(&self, conn: &mut DbConnection) -> diesel::QueryResult<Arc<Snapshot>> {
        let v = config_version::current(conn)?;
        {
            let cur = self
                .current
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if cur.version == v {
                return Ok(cur.clone());
            }
        }
        let mut w = self
            .current
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if w.version != v {
            *w = Arc::new(Snapshot::new(v));
        }
        Ok(w.clone())
    }

    /// Whether `snapshot` is of the configuration version stored now (one primary-key read).
    pub fn is_current(
        &self,
        conn: &mut DbConnection,
        snapshot: &Snapshot,
    ) -> diesel::QueryResult<bool> {
        Ok(config_version::current(conn)? == snapshot.version)
    }

    /// The snapshot cached now (no database read).
    pub fn current(&self) -> Arc<Snapshot> {
        self.current
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Id(String),
    Api(String),
    Public(String),
    MonriToken(String),
}

impl From<Named<'_>> for Key {
    fn from(n: Named<'_>) -> Key {
        match n {
            Named::Id(s) => Key::Id(s.into()),
            Named::ApiKey(s) => Key::Api(s.into()),
            Named::PublicKey(s) => Key::Public(s.into()),
            Named::MonriToken(s) => Key::MonriToken(s.into()),
        }
    }
}

/// The configuration as of one version, filled on demand.
pub struct Snapshot {
    version: i64,
    connectors: Mutex<HashMap<Key, Arc<Acting>>>,
    api_users: Mutex<HashMap<String, Arc<ApiUser>>>,
    effective: Arc<sharing::Memo>,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot(version {}, {} entries)",
            self.version,
            self.len()
        )
    }
}

/// A connector that may act ([`connector::find_acting`]) with its secrets, opened once.
pub struct Acting {
    pub connector: Connector,
    secret: OnceLock<Zeroizing<String>>,
    monri_key: OnceLock<Zeroizing<String>>,
}

fn opened_once<E>(
    cell: &OnceLock<Zeroizing<String>>,
    open: impl FnOnce() -> Result<String, E>,
) -> Result<&str, E> {
    if let Some(s) = cell.get() {
        return Ok(s.as_str());
    }
    let v = Zeroizing::new(open()?);
    // Two calls may open it at once: the first one stored wins, the other copy is wiped.
    let _ = cell.set(v);
    Ok(cell.get().map(|s| s.as_str()).unwrap_or_default())
}

impl Acting {
    /// The connector's shared secret in clear; `open` decrypts it on the first use.
    pub fn secret<E>(&self, open: impl FnOnce() -> Result<String, E>) -> Result<&str, E> {
        opened_once(&self.secret, open)
    }

    /// The connector's Monri merchant key in clear; `open` decrypts it on the first use.
    pub fn monri_merchant_key<E>(
        &self,
        open: impl FnOnce() -> Result<String, E>,
    ) -> Result<&str, E> {
        opened_once(&self.monri_key, open)
    }
}

impl Snapshot {
    fn new(version: i64) -> Snapshot {
        Snapshot {
            version,
            connectors: Mutex::new(HashMap::new()),
            api_users: Mutex::new(HashMap::new()),
            effective: Arc::default(),
        }
    }

    pub fn version(&self) -> i64 {
        self.version
    }

    /// Entries cached (connectors under each name, API users, effective containers).
    pub fn len(&self) -> usize {
        lock(&self.connectors).len() + lock(&self.api_users).len() + self.effective.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connector named `by` if it may act ([`connector::find_acting`], read on a miss).
    pub fn acting(
        &self,
        conn: &mut DbConnection,
        by: Named<'_>,
    ) -> diesel::QueryResult<Option<Arc<Acting>>> {
        let key = Key::from(by);
        if let Some(a) = lock(&self.connectors).get(&key) {
            return Ok(Some(a.clone()));
        }
        let Some(k) = connector::find_acting(conn, by)? else {
            return Ok(None);
        };
        let a = Arc::new(Acting {
            connector: k,
            secret: OnceLock::new(),
            monri_key: OnceLock::new(),
        });
        Ok(Some(lock(&self.connectors).entry(key).or_insert(a).clone()))
    }

    /// The API user named `username` ([`api_user::find_by_username`], read on a miss).
    pub fn api_user(
        &self,
        conn: &mut DbConnection,
        username: &str,
    ) -> diesel::QueryResult<Option<Arc<ApiUser>>> {
        if let Some(u) = lock(&self.api_users).get(username) {
            return Ok(Some(u.clone()));
        }
        let Some(u) = api_user::find_by_username(conn, username)? else {
            return Ok(None);
        };
        let u = Arc::new(u);
        Ok(Some(
            lock(&self.api_users)
                .entry(username.to_string())
                .or_insert(u)
                .clone(),
        ))
    }
}

/// Runs `f` (an API call's work, on its blocking thread) with `snapshot` as the configuration
/// that `vault::sharing::effective` answers from.
pub fn within<T>(snapshot: &Arc<Snapshot>, f: impl FnOnce() -> T) -> T {
    sharing::with_memo(&snapshot.effective, f)
}

/// How a call's snapshot was chosen: read from the database at the start of the call
/// ([`ConfigCache::snapshot`]), or taken from the cache unchecked ([`ConfigCache::current`]), to
/// be confirmed by the version that a later statement of the call reads ([`confirm`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    AtStart,
    Unchecked,
}

thread_local! {
    /// The call in progress on this thread: its snapshot's version, whether it is
    /// [`Checked::Unchecked`], and whether a statement has confirmed it.
    static CALL: std::cell::Cell<Option<(i64, Checked, bool)>> =
        const { std::cell::Cell::new(None) };
}

/// [`within`], for a call whose snapshot is `checked` as given; returns what `f` returned and
/// whether the call's snapshot is known to be current: always for [`Checked::AtStart`], and for
/// [`Checked::Unchecked`] when a statement of the call read the configuration version together
/// with its data and [`confirm`]ed it, or [`may_record`] read it.
pub fn within_checked<T>(
    snapshot: &Arc<Snapshot>,
    checked: Checked,
    f: impl FnOnce() -> T,
) -> (T, bool) {
    struct Reset(Option<(i64, Checked, bool)>);
    impl Drop for Reset {
        fn drop(&mut self) {
            CALL.with(|c| c.set(self.0));
        }
    }
    let prev = CALL.with(|c| c.replace(Some((snapshot.version, checked, false))));
    let reset = Reset(prev);
    let out = within(snapshot, f);
    let confirmed = CALL
        .with(|c| c.get())
        .is_some_and(|(_, how, ok)| how == Checked::AtStart || ok);
    drop(reset);
    (out, confirmed)
}

/// Runs a short read (a call that writes nothing but its access entries), `attempt` being the
/// whole call (authentication included) on the snapshot it is given.
///
/// It first runs on the snapshot cached now, unchecked, which saves the statement that reads the
/// configuration version: the call's own query reads the version with its data ([`confirm`]),
/// or the version is read before the call records anything ([`may_record`]). An unconfirmed
/// run (a refusal, nothing found) is kept only while the stored version is still the cached
/// one. Otherwise, and when nothing is cached yet, the call is done again on the snapshot of
/// the version read at its start, as every write is.
///
/// Why an unchecked snapshot confirmed so is as coherent as one checked at the start: the
/// version and the rows the answer is made of come from one statement, so from one snapshot of
/// the database. A change committed before the call started has bumped the version, so that
/// statement sees a version different from the cached one; the entries of the cached snapshot
/// were loaded before the call, so they are not newer than what the statement sees. A stale run
/// stops before it answers or records anything, and is done again.
pub fn short_read<T>(
    config: &ConfigCache,
    conn: &mut DbConnection,
    mut attempt: impl FnMut(&mut DbConnection, &Arc<Snapshot>) -> T,
) -> diesel::QueryResult<T> {
    let cached = config.current();
    if cached.version != 0 {
        let (out, confirmed) =
            within_checked(&cached, Checked::Unchecked, || attempt(conn, &cached));
        if confirmed || config.is_current(conn, &cached)? {
            return Ok(out);
        }
    }
    let snapshot = config.snapshot(conn)?;
    Ok(within_checked(&snapshot, Checked::AtStart, || attempt(conn, &snapshot)).0)
}

/// A statement of the call in progress read configuration version `version` together with the
/// data the call answers from. `true` when the call may go on: its snapshot was checked at the
/// start, or it is unchecked and of this very version (now confirmed). `false` means the cached
/// snapshot is stale: the call must stop without recording or answering anything; it is redone
/// on a fresh snapshot ([`short_read`]). Outside a call, `true`.
pub fn confirm(version: i64) -> bool {
    CALL.with(|c| match c.get() {
        Some((v, Checked::Unchecked, _)) if v == version => {
            c.set(Some((v, Checked::Unchecked, true)));
            true
        }
        Some((_, Checked::Unchecked, false)) => false,
        _ => true,
    })
}

/// Whether the call in progress may record what it read (an access entry): only on a snapshot
/// known to be current, so that a call done again after a stale run records its reads once. An
/// unchecked, unconfirmed call reads the configuration version here (one primary-key read) and
/// is confirmed by it, or is stale (`false`: stop, [`short_read`] does it again).
pub fn may_record(conn: &mut DbConnection) -> diesel::QueryResult<bool> {
    match CALL.with(|c| c.get()) {
        Some((_, Checked::Unchecked, false)) => Ok(confirm(config_version::current(conn)?)),
        _ => Ok(true),
    }
}
