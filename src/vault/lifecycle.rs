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

/// Instruments per batch (and per write transaction).
pub const BATCH: i64 = 200;

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

/// Runs (or continues) the simulated account updater over container `c`, as `actor`. The
/// caller checked that the actor manages the container.
pub fn run_account_updater(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    c: &Container,
    progress: &mut dyn Progress,
) -> Result<UpdaterReport, ServiceError> {
    const KIND: &str = "account_updater";
    let place = Place::tenant(&c.tenant_id, &c.tenant_path);
    let at = now();
    let (run, resumed) = match lifecycle_run::unfinished(conn, KIND, &c.id)? {
        Some(r) => (r, true),
        None => {
            let r = Run {
                id: crate::ids::new_id(),
                kind: KIND.into(),
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
            };
            write_tx(conn, |tx| -> Result<(), ServiceError> {
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
                Ok(())
            })?;
            (r, false)
        }
    };
    let mut report = UpdaterReport {
        run_id: run.id.clone(),
        resumed,
        seen: run.done,
        ..UpdaterReport::default()
    };
    let total = profile::count_cards(conn, Some(&c.id))?;
    let mut cursor = run.cursor.clone().unwrap_or_default();
    loop {
        let (batch, last) = profile::container_cards_after(conn, &c.id, &cursor, BATCH)?;
        let Some(next) = last else {
            break;
        };
        let counts = write_tx(conn, |tx| -> Result<[i64; 3], ServiceError> {
            profiles::lock(tx, &c.id)?;
            let mut counts = [0; 3];
            for (i, p) in &batch {
                // Read again under the lock: it may have changed or gone since the page.
                let Some(i) = profile::find_instrument(tx, &i.id)? else {
                    continue;
                };
                if let Some(k) = update_one(tx, keyring, actor, &place, p, &i)? {
                    counts[k] += 1;
                }
            }
            let changed = counts.iter().sum();
            lifecycle_run::advance(tx, &run.id, &next, batch.len() as i64, changed, now())?;
            Ok(counts)
        })?;
        cursor = next;
        report.seen += batch.len() as i64;
        report.reissued += counts[0];
        report.replaced += counts[1];
        report.closed += counts[2];
        progress.update(report.seen, total.max(report.seen));
    }
    lifecycle_run::finish(conn, &run.id, now())?;
    progress.update(report.seen, total.max(report.seen));
    Ok(report)
}

/// Asks the simulated updater about one card and applies its answer: `Some(0)` reissued,
/// `Some(1)` replaced, `Some(2)` closed, `None` unchanged.
fn update_one(
    tx: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    place: &Place,
    p: &Profile,
    i: &Instrument,
) -> Result<Option<usize>, ServiceError> {
    if i.method != "card" || i.card_update_status.is_some() {
        return Ok(None);
    }
    let (Some(m), Some(y)) = (i.exp_month, i.exp_year) else {
        return Ok(None);
    };
    let pan = keyring.open_string(tx, &i.vault_record, i.id.as_bytes())?;
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
