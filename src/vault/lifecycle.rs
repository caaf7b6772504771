//! Stored cards that stay alive: the expiry scan and the simulated account updater. Both walk
//! card instruments in id order (keyset pagination), one batch per write transaction, and only
//! enqueue lifecycle events (through `vault::profiles`, which emits them): the server's callback
//! worker delivers them, so both run beside a live server on the same database.
//!
//! - **Expiry scan** ([`scan_expiry`]): `instrument.expiring` once per instrument and expiry,
//!   when the last day of its expiry month is at most N days away (N: the largest "Expiry
//!   notice (days)" among the subscribed connectors of its container); an instrument past that
//!   day is marked expired. Only instruments with a subscriber are noticed (remembered on the
//!   row), so a connector that subscribes later still hears of them.
//! - **Account updater** ([`run_account_updater`]): asks the simulated updater
//!   (`gateway::simulator::account_update`) about every card of a container; a reissued or
//!   replaced card is changed in place (same row, same `pt::` token, the number sealed anew),
//!   a closed account's instrument is removed. Each change and the run are audited. The run's
//!   cursor commits with each batch, so an interrupted run is continued by the next one, and a
//!   card the updater changed already is not asked about again (the simulated issuer reissues a
//!   card once).

use std::collections::HashMap;

use chrono::NaiveDate;

use crate::audit::{self, Change, Place};
use crate::db::{DbConnection, write_tx};
use crate::domain::Actor;
use crate::error::ServiceError;
use crate::gateway::simulator::{self, AccountUpdate};
use crate::models::container::Container;
use crate::models::lifecycle_run::{self, Run};
use crate::models::now;
use crate::models::profile::{self, CardUpdate, Instrument, Profile};
use crate::vault::events;
use crate::vault::keyring::Keyring;
use crate::vault::profiles;

/// Instruments per batch (and per write transaction) of the expiry scan.
pub const BATCH: i64 = 200;

/// Cards per batch (and per write transaction) of the account updater. At 1M cards on SQLite a
/// batch's commit and WAL checkpoint were about 30% of the run's time with 200 cards (perf):
/// 500, as the re-encryption job, holds the write lock for some tens of milliseconds. The
/// default of `COFFER_ACCOUNT_UPDATER_BATCH`, kept by the settings (which this module's
/// callers import).
pub const UPDATER_BATCH: i64 = crate::config::ACCOUNT_UPDATER_BATCH_DEFAULT;

/// How a run reports its progress: `done` of `total` instruments seen so far. A log line in
/// the CLI and the server; small on purpose, so a shared progress module can replace it.
pub trait Progress {
    fn update(&mut self, done: i64, total: i64);
}

/// Progress as a log line at most every few seconds (and at the end).
pub struct LogProgress {
    what: &'static str,
    last: Option<std::time::Instant>,
}

impl LogProgress {
    pub fn new(what: &'static str) -> LogProgress {
        LogProgress { what, last: None }
    }
}

impl Progress for LogProgress {
    fn update(&mut self, done: i64, total: i64) {
        let due = self
            .last
            .is_none_or(|t| t.elapsed() >= std::time::Duration::from_secs(5));
        if due || done >= total {
            self.last = Some(std::time::Instant::now());
            tracing::info!(done, total, "{}: {done}/{total}", self.what);
        }
    }
}

/// The shared progress output of long-running commands (a bar with rate and ETA on a terminal,
/// a periodic log line otherwise).
impl Progress for crate::progress::Progress {
    fn update(&mut self, done: i64, total: i64) {
        self.set_total(total.max(0) as u64);
        let done = done.max(0) as u64;
        self.inc(done.saturating_sub(self.done()));
    }
}

/// What one expiry scan did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScanReport {
    pub seen: i64,
    pub expiring: i64,
    pub expired: i64,
}

/// Days from `today` to the last day of the instrument's expiry month (negative: expired).
fn days_left(i: &Instrument, today: NaiveDate) -> Option<i64> {
    let last = events::last_day_of(i.exp_month?, i.exp_year?)?;
    Some((last - today).num_days())
}

/// The expiry scan over every container, as of `today`.
pub fn scan_expiry(
    conn: &mut DbConnection,
    today: NaiveDate,
    progress: &mut dyn Progress,
) -> Result<ScanReport, ServiceError> {
    let total = profile::count_cards(conn, None)?;
    let mut report = ScanReport::default();
    // The notice window of each container: the largest of its subscribers', if any.
    let mut windows: HashMap<String, Option<i64>> = HashMap::new();
    let mut cursor = String::new();
    loop {
        let batch = profile::cards_after(conn, None, &cursor, BATCH)?;
        let Some((last, _)) = batch.last() else {
            break;
        };
        cursor = last.id.clone();
        let at = now();
        let (expiring, expired) = write_tx(conn, |tx| -> Result<(i64, i64), ServiceError> {
            let (mut expiring, mut expired) = (0, 0);
            for (i, p) in &batch {
                let Some(left) = days_left(i, today) else {
                    continue;
                };
                if left < 0 {
                    if i.expired_at.is_none() && profiles::mark_expired(tx, i, at)? {
                        expired += 1;
                    }
                    continue;
                }
                if i.expiry_noticed_at.is_some() {
                    continue;
                }
                let window = match windows.get(&p.container_id) {
                    Some(w) => *w,
                    None => {
                        let w = events::subscribers(tx, &p.container_id)?
                            .iter()
                            .map(|k| i64::from(k.expiry_notice_days))
                            .max();
                        windows.insert(p.container_id.clone(), w);
                        w
                    }
                };
                if window.is_some_and(|n| left <= n) && profiles::notice_expiring(tx, i, at)? {
                    expiring += 1;
                }
            }
            Ok((expiring, expired))
        })?;
        report.seen += batch.len() as i64;
        report.expiring += expiring;
        report.expired += expired;
        progress.update(report.seen, total.max(report.seen));
    }
    progress.update(report.seen, total.max(report.seen));
    Ok(report)
}

/// How often each server process looks whether the daily scan is due.
pub const DAILY_CHECK: std::time::Duration = std::time::Duration::from_secs(3600);

/// The daily scan of a server process: runs it when no process holds the lease and the last
/// daily scan finished more than a day ago. `None` when it was not this process's turn.
pub fn daily_scan(
    conn: &mut DbConnection,
    worker: &str,
) -> Result<Option<ScanReport>, ServiceError> {
    let at = now();
    let until = at + chrono::Duration::hours(1);
    if !lifecycle_run::take_daily_lease(conn, worker, at, until, at - chrono::Duration::days(1))? {
        return Ok(None);
    }
    let report = scan_expiry(conn, at.date(), &mut LogProgress::new("expiry scan"))?;
    lifecycle_run::finish(conn, lifecycle_run::DAILY_SCAN, now())?;
    Ok(Some(report))
}

/// The `kind` of account updater runs in `lifecycle_runs`.
pub const UPDATER: &str = "account_updater";

/// How long a worker's lease on a run lasts; renewed with each batch. A run whose process
/// died (a crash, a restart) is continued by another process, or the restarted one, after it.
pub const LEASE_SECONDS: i64 = 30;

/// What one account updater run did (this run and, when it continued an interrupted one, the
/// batches that run had committed).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct UpdaterReport {
    pub run_id: String,
    pub resumed: bool,
    pub seen: i64,
    pub reissued: i64,
    pub replaced: i64,
    pub closed: i64,
}

impl UpdaterReport {
    fn of(r: &Run, resumed: bool) -> UpdaterReport {
        UpdaterReport {
            run_id: r.id.clone(),
            resumed,
            seen: r.done,
            reissued: r.reissued,
            replaced: r.replaced,
            closed: r.closed,
        }
    }
}

/// The actor of the command line's runs.
pub fn command_line_actor() -> Actor {
    Actor {
        username: "coffer account-updater (command line)".into(),
        ..Actor::system()
    }
}

/// The audit actor of a run: who started it (only the id and name go into the audit log).
fn actor_of(r: &Run) -> Actor {
    Actor {
        user_id: r.actor_id.clone().unwrap_or_default(),
        username: r.actor_name.clone().unwrap_or_else(|| "system".into()),
        ..Actor::system()
    }
}

/// Starts a run of the simulated account updater over container `c` as `actor`, or finds the
/// one still running there (one at a time per container): the run and whether it is new. The
/// caller checked that the actor manages the container. The run itself is done in batches by
/// [`step`]: a server's background worker ([`run_some`]) or the command ([`run_account_updater`]).
pub fn start_account_updater(
    conn: &mut DbConnection,
    actor: &Actor,
    c: &Container,
) -> Result<(Run, bool), ServiceError> {
    if let Some(r) = lifecycle_run::unfinished(conn, UPDATER, &c.id)? {
        return Ok((r, false));
    }
    let total = profile::count_cards(conn, Some(&c.id))?;
    let place = Place::tenant(&c.tenant_id, &c.tenant_path);
    write_tx(conn, |tx| -> Result<(Run, bool), ServiceError> {
        // Two presses at once start one run: the container's lock orders them, the second
        // finds the first's run.
        profiles::lock(tx, &c.id)?;
        if let Some(r) = lifecycle_run::unfinished(tx, UPDATER, &c.id)? {
            return Ok((r, false));
        }
        let at = now();
        let r = Run {
            id: crate::ids::new_id(),
            kind: UPDATER.into(),
            container_id: Some(c.id.clone()),
            status: "running".into(),
            cursor: None,
            done: 0,
            changed: 0,
            started_at: at,
            updated_at: at,
            finished_at: None,
            locked_until: None,
            locked_by: None,
            total,
            reissued: 0,
            replaced: 0,
            closed: 0,
            actor_id: (!actor.user_id.is_empty()).then(|| actor.user_id.clone()),
            actor_name: Some(actor.username.clone()),
        };
        lifecycle_run::insert(tx, &r)?;
        audit::record(
            tx,
            actor,
            &place,
            Change {
                action: "account_updater.run",
                object_type: "container",
                object_id: &c.id,
                summary: format!("Ran the account updater (simulated) on {}", c.name),
                changes: vec![],
            },
        )?;
        Ok((r, true))
    })
}

/// What one [`step`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A batch was done: the run's cards seen so far, of its total.
    Batch { done: i64, total: i64 },
    /// The run is finished (by this step or before).
    Finished,
    /// Another worker holds the run's lease.
    Held,
}

/// One batch of run `run_id` as `worker`, in one write transaction: takes (or renews) the
/// run's lease, asks the simulated updater about up to `limit` cards after the cursor, applies
/// the answers, writes an access audit entry for every card it opened (one append for the
/// batch) and moves the cursor. The cursor commits with the batch: an interrupted run
/// continues after the last committed batch; a batch cut short did nothing.
pub fn step(
    conn: &mut DbConnection,
    keyring: &Keyring,
    run_id: &str,
    worker: &str,
    limit: i64,
) -> Result<Step, ServiceError> {
    write_tx(conn, |tx| -> Result<Step, ServiceError> {
        let at = now();
        let until = at + chrono::Duration::seconds(LEASE_SECONDS);
        if !lifecycle_run::take_lease(tx, run_id, worker, at, until)? {
            let running = lifecycle_run::find(tx, run_id)?.is_some_and(|r| r.status == "running");
            return Ok(if running { Step::Held } else { Step::Finished });
        }
        // Read under the lease (on PostgreSQL the row is locked until the commit).
        let run = lifecycle_run::find(tx, run_id)?.ok_or(ServiceError::NotFound)?;
        let container = match &run.container_id {
            Some(id) => crate::models::container::find(tx, id)?,
            None => None,
        };
        let Some(c) = container else {
            lifecycle_run::finish(tx, run_id, now())?;
            return Ok(Step::Finished);
        };
        // Registrations, deletions and preferred changes of the container wait for the batch.
        profiles::lock(tx, &c.id)?;
        let cursor = run.cursor.clone().unwrap_or_default();
        let (batch, last) = profile::container_cards_after(tx, &c.id, &cursor, limit)?;
        let Some(next) = last else {
            lifecycle_run::finish(tx, run_id, now())?;
            return Ok(Step::Finished);
        };
        let actor = actor_of(&run);
        let place = Place::tenant(&c.tenant_id, &c.tenant_path);
        let mut one = One {
            keyring,
            actor: &actor,
            place: &place,
            run_id,
            reads: Vec::with_capacity(batch.len()),
        };
        let mut counts = [0; 3];
        for (i, p) in &batch {
            if let Some(k) = one.update(tx, p, i)? {
                counts[k] += 1;
            }
        }
        audit::chain::append(tx, std::mem::take(&mut one.reads))?;
        let seen = batch.len() as i64;
        lifecycle_run::advance(
            tx,
            run_id,
            &lifecycle_run::Advance {
                cursor: &next,
                done: seen,
                reissued: counts[0],
                replaced: counts[1],
                closed: counts[2],
                at: now(),
            },
        )?;
        let done = run.done + seen;
        Ok(Step::Batch {
            done,
            total: run.total.max(done),
        })
    })
}

/// How the background worker paces a run: cards per batch and a pause after each batch (to
/// leave the database to live traffic; 0 by default).
#[derive(Debug, Clone, Copy)]
pub struct Pace {
    pub batch: i64,
    pub pause: std::time::Duration,
}

impl Default for Pace {
    fn default() -> Pace {
        Pace {
            batch: UPDATER_BATCH,
            pause: std::time::Duration::ZERO,
        }
    }
}

/// A slice of the running account updater runs for a server's background worker: batches for
/// at most `budget`, then the lease is given back (so that processes sharing a PostgreSQL
/// database, and the command, take turns; no batch is done twice). `true` when work is left.
pub fn run_some(
    conn: &mut DbConnection,
    keyring: &Keyring,
    worker: &str,
    pace: Pace,
    budget: std::time::Duration,
) -> Result<bool, ServiceError> {
    let started = std::time::Instant::now();
    for r in lifecycle_run::runnable(conn, UPDATER, now())? {
        loop {
            match step(conn, keyring, &r.id, worker, pace.batch.max(1))? {
                Step::Batch { done, total } => {
                    tracing::debug!(run = %r.id, done, total, "account updater batch");
                    if !pace.pause.is_zero() {
                        std::thread::sleep(pace.pause);
                    }
                    if started.elapsed() >= budget {
                        lifecycle_run::release(conn, &r.id, worker)?;
                        return Ok(true);
                    }
                }
                Step::Finished => {
                    let end = lifecycle_run::find(conn, &r.id)?;
                    if let Some(end) = &end {
                        tracing::info!(run = %r.id, cards = end.done, reissued = end.reissued,
                            replaced = end.replaced, closed = end.closed, "account updater run done");
                        if end.closed > 0 {
                            crate::db::scrub_after_erasure(conn)?;
                        }
                    }
                    break;
                }
                Step::Held => break,
            }
        }
    }
    Ok(false)
}

/// Runs (or continues) the simulated account updater over container `c` as `actor` to its end
/// on this connection (the command; the tests): starts the run, or takes up the one running,
/// and does its batches, taking turns with any server working on it.
pub fn run_account_updater(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    c: &Container,
    progress: &mut dyn Progress,
) -> Result<UpdaterReport, ServiceError> {
    let (run, started) = start_account_updater(conn, actor, c)?;
    let worker = format!("{}:command", crate::ids::worker_name());
    progress.update(run.done, run.total.max(run.done));
    loop {
        match step(conn, keyring, &run.id, &worker, UPDATER_BATCH)? {
            Step::Batch { done, total } => progress.update(done, total),
            Step::Finished => break,
            Step::Held => std::thread::sleep(std::time::Duration::from_millis(200)),
        }
    }
    let end = lifecycle_run::find(conn, &run.id)?.ok_or(ServiceError::NotFound)?;
    if end.closed > 0 {
        crate::db::scrub_after_erasure(conn)?;
    }
    progress.update(end.done, end.total.max(end.done));
    Ok(UpdaterReport::of(&end, !started))
}

/// A run's progress, for the container page: cards done of the total, the rate and the time
/// left while it runs, the changes by kind.
#[derive(Debug, Clone)]
pub struct RunProgress {
    pub run: Run,
    /// Cards per second since the run started (to its end when finished).
    pub rate: f64,
    /// Seconds left at that rate (`None` before any progress, or when finished).
    pub eta_seconds: Option<i64>,
}

impl RunProgress {
    pub fn of(run: Run) -> RunProgress {
        let (rate, eta_seconds) = crate::progress::rate_and_eta(
            run.done,
            run.total,
            run.started_at,
            run.finished_at.unwrap_or_else(now),
            run.status == "running",
        );
        RunProgress {
            run,
            rate,
            eta_seconds,
        }
    }
    pub fn running(&self) -> bool {
        self.run.status == "running"
    }
    /// The total shown: what was counted at the start, or the cards seen when more.
    pub fn total(&self) -> i64 {
        self.run.total.max(self.run.done)
    }
    /// Percent done (100 when finished or when there is nothing to do).
    pub fn percent(&self) -> i64 {
        if !self.running() || self.total() <= 0 {
            100
        } else {
            (self.run.done * 100 / self.total()).min(100)
        }
    }
    pub fn started_by(&self) -> &str {
        self.run.actor_name.as_deref().unwrap_or("system")
    }
}

/// The newest account updater runs of container `c` (newest first), with their progress.
pub fn updater_runs(
    conn: &mut DbConnection,
    c: &Container,
    limit: i64,
) -> Result<Vec<RunProgress>, ServiceError> {
    Ok(lifecycle_run::of_container(conn, UPDATER, &c.id, limit)?
        .into_iter()
        .map(RunProgress::of)
        .collect())
}

/// One card of a batch: the keyring, who the run acts as, and the access entries of the cards
/// it opened (written with the batch).
struct One<'a> {
    keyring: &'a Keyring,
    actor: &'a Actor,
    place: &'a Place,
    run_id: &'a str,
    reads: Vec<crate::models::audit::AuditEntry>,
}

impl One<'_> {
    /// Asks the simulated updater about one card and applies its answer: `Some(0)` reissued,
    /// `Some(1)` replaced, `Some(2)` closed, `None` unchanged. The card's opening is recorded in
    /// `reads` (the access audit, attributed to the run's actor).
    fn update(
        &mut self,
        tx: &mut DbConnection,
        p: &Profile,
        i: &Instrument,
    ) -> Result<Option<usize>, ServiceError> {
        let (keyring, actor, place) = (self.keyring, self.actor, self.place);
        if i.method != "card" || i.card_update_status.is_some() {
            return Ok(None);
        }
        let (Some(m), Some(y)) = (i.exp_month, i.exp_year) else {
            return Ok(None);
        };
        let pan = keyring.open_string(tx, &i.vault_record, i.id.as_bytes())?;
        self.reads.push(crate::audit::access::entry(
            actor,
            place,
            crate::audit::access::Kind::AccountUpdater,
            &p.profile_guid,
            format!(
                "Account updater (simulated), run {}: opened the card ending {} ({})",
                self.run_id,
                i.last_four.as_deref().unwrap_or_default(),
                i.payment_token
            ),
        ));
        let Some(answer) = simulator::account_update(&pan, m, y) else {
            return Ok(None);
        };
        let at = now();
        let label = |i: &Instrument| {
            format!(
                "the card ending {} ({:02}/{})",
                i.last_four.clone().unwrap_or_default(),
                i.exp_month.unwrap_or_default(),
                i.exp_year.unwrap_or_default()
            )
        };
        let (kind, status, new_pan, nm, ny) = match answer {
            AccountUpdate::Closed => {
                profiles::remove_instrument(tx, i)?;
                audit::record(
                    tx,
                    actor,
                    place,
                    Change {
                        action: "account_updater.close",
                        object_type: "profile",
                        object_id: &p.profile_guid,
                        summary: format!(
                            "Account updater (simulated): account closed, removed {} ({}) from profile {}",
                            label(i),
                            i.payment_token,
                            p.profile_guid
                        ),
                        changes: vec![],
                    },
                )?;
                return Ok(Some(2));
            }
            AccountUpdate::Reissued {
                exp_month,
                exp_year,
            } => (0, "reissued", pan, exp_month, exp_year),
            AccountUpdate::Replaced {
                pan,
                exp_month,
                exp_year,
            } => (1, "replaced", pan, exp_month, exp_year),
        };
        let fingerprint = crate::gateway::vault::fingerprint(keyring.mac_key()?, &new_pan);
        let u = CardUpdate {
            first_six: Some(new_pan.chars().take(6).collect()),
            last_four: Some(new_pan[new_pan.len().saturating_sub(4)..].to_string()),
            exp_month: Some(nm),
            exp_year: Some(ny),
            fingerprint,
            // The container's root tenant owns the card (the place is the container's tenant).
            vault_record: keyring.seal(
                tx,
                &crate::vault::keyring::Owner::of_path(place.tenant_path.as_deref()),
                new_pan.as_bytes(),
                i.id.as_bytes(),
            )?,
            expiry_noticed_at: None,
            expired_at: None,
            card_update_status: Some(status.into()),
            card_updated_at: Some(at),
            updated_at: at,
        };
        profiles::replace_card(tx, i, &u)?;
        let after = Instrument {
            last_four: u.last_four.clone(),
            exp_month: u.exp_month,
            exp_year: u.exp_year,
            ..i.clone()
        };
        audit::record(
            tx,
            actor,
            place,
            Change {
                action: "account_updater.update",
                object_type: "profile",
                object_id: &p.profile_guid,
                summary: format!(
                    "Account updater (simulated): {status} {} ({}) of profile {}, now {}",
                    label(i),
                    i.payment_token,
                    p.profile_guid,
                    label(&after)
                ),
                changes: vec![
                    ("last_four", i.last_four.clone(), after.last_four.clone()),
                    (
                        "expiry",
                        Some(format!("{m:02}/{y}")),
                        Some(format!("{nm:02}/{ny}")),
                    ),
                ],
            },
        )?;
        Ok(Some(kind))
    }
}
