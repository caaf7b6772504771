//! Re-encryption (issue [keys]): after a key rotation, every sealed record is opened and sealed
//! again under the active data key of its owner (its root tenant, or the platform), so that old
//! keys can be retired. Records sealed before keys were per tenant move to their tenant's key
//! the same way.
//!
//! * **One batch per transaction.** A batch reads up to [`BATCH`] rows of one table after the
//!   table's cursor, seals again those not under their owner's active key, and moves the cursor
//!   and the job's counters, all in one write transaction.
//! * **Resumable.** The cursor commits with the batch: after a crash the job continues after the
//!   last committed batch; a batch cut short did nothing.
//! * **Shared without doing a record twice.** On PostgreSQL each batch first locks its cursor
//!   row (an UPDATE), so processes running the job take turns on each table; every process's
//!   background loop helps ([`run_some`]).
//! * **Old keys retired only when unused.** When every table is done, each inactive data key that
//!   no record names any more (counted, not assumed: a process may have sealed with a key it
//!   still thought active for up to a second) is deleted.

use std::time::{Duration, Instant};

use anyhow::Context;

use crate::db::{DbConnection, write_tx};
use crate::gateway::vault::key_id_of;
use crate::models::now;
use crate::models::reencrypt::{self, Job, Sealed};
use crate::models::vault_key;
use crate::vault::keyring::{Keyring, Owner};

/// Rows per batch (and transaction).
pub const BATCH: i64 = 500;

/// A job's progress, for the console, the command and the metrics.
#[derive(Debug, Clone)]
pub struct Progress {
    pub job: Job,
    /// Records per second since the job started.
    pub rate: f64,
    /// Seconds left at that rate (`None` before any progress, or when done).
    pub eta_seconds: Option<i64>,
}

impl Progress {
    pub fn of(job: Job) -> Progress {
        let (rate, eta_seconds) = crate::progress::rate_and_eta(
            job.done,
            job.total,
            job.created_at,
            job.finished_at.unwrap_or_else(now),
            job.state == "running",
        );
        Progress {
            job,
            rate,
            eta_seconds,
        }
    }
    /// Percent done (100 when the job has nothing to do).
    pub fn percent(&self) -> i64 {
        if self.job.total <= 0 {
            100
        } else {
            (self.job.done * 100 / self.job.total).min(100)
        }
    }
}

/// Starts a job, or returns the one already running (one at a time).
pub fn start(conn: &mut DbConnection, reason: &str) -> anyhow::Result<Job> {
    write_tx(conn, |c| -> anyhow::Result<Job> {
        if let Some(j) = reencrypt::running(c)? {
            return Ok(j);
        }
        let at = now();
        let j = Job {
            id: crate::ids::new_id(),
            reason: reason.chars().take(200).collect(),
            state: "running".into(),
            total: reencrypt::count_all(c)?,
            done: 0,
            resealed: 0,
            created_at: at,
            updated_at: at,
            finished_at: None,
        };
        reencrypt::insert_job(c, &j)?;
        Ok(j)
    })
}

/// What a sealed value is bound to (its row's id, as the sealing paths bind it).
fn aad(table: &str, s: &Sealed) -> Vec<u8> {
    match (table, s.column) {
        ("connectors", "monri_merchant_key") => crate::models::connector::monri_key_aad(&s.pk),
        _ => s.pk.as_bytes().to_vec(),
    }
}

/// One batch of the job. `Ok(false)` when every table is done (nothing was claimed).
pub fn step(conn: &mut DbConnection, keyring: &Keyring, job_id: &str) -> anyhow::Result<bool> {
    step_of(conn, keyring, job_id, BATCH)
}

/// [`step`] with batches of `limit` rows.
pub fn step_of(
    conn: &mut DbConnection,
    keyring: &Keyring,
    job_id: &str,
    limit: i64,
) -> anyhow::Result<bool> {
    write_tx(conn, |c| -> anyhow::Result<bool> {
        let Some((table, after)) = reencrypt::claim_cursor(c, job_id)? else {
            return Ok(false);
        };
        let (looked, last, sealed) = reencrypt::batch(c, &table, &after, limit)?;
        let mut resealed = 0;
        for s in &sealed {
            let owner = Owner::of_path(s.path.as_deref());
            let active = keyring.active_id(c, &owner)?;
            if key_id_of(&s.record) == Some(active.as_str()) {
                continue;
            }
            let aad = aad(&table, s);
            let plain = zeroize::Zeroizing::new(
                keyring
                    .open(c, &s.record, &aad)
                    .with_context(|| format!("opening {table} {} ({})", s.pk, s.column))?,
            );
            let again = keyring.seal(c, &owner, &plain, &aad)?;
            reencrypt::store(c, &table, s, &again)?;
            resealed += 1;
        }
        let finished = last.is_none();
        reencrypt::advance(
            c,
            job_id,
            &table,
            reencrypt::Advance {
                position: last.as_deref().unwrap_or(&after),
                finished,
                looked: looked as i64,
                resealed,
                at: now(),
            },
        )?;
        Ok(true)
    })
}

/// What finishing a job did.
#[derive(Debug, Default)]
pub struct Retirement {
    /// Inactive data keys deleted (no record names them).
    pub retired: Vec<String>,
    /// Inactive keys kept, with the records that still name them.
    pub kept: Vec<(String, i64)>,
}

/// Once every table is done: retires each inactive data key no record names, and marks the job
/// done. Waits, if needed, until a key has been inactive for two seconds (every process reads
/// the active keys again within one).
pub fn finish(conn: &mut DbConnection, job_id: &str) -> anyhow::Result<Retirement> {
    let keys: Vec<_> = vault_key::all(conn)?
        .into_iter()
        .filter(|k| k.purpose == "data" && !k.active)
        .collect();
    if let Some(newest) = keys.iter().filter_map(|k| k.deactivated_at).max() {
        let ready = newest + chrono::Duration::seconds(2);
        let wait = (ready - now()).num_milliseconds();
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait as u64));
        }
    }
    let mut r = Retirement::default();
    write_tx(conn, |c| -> anyhow::Result<()> {
        for k in &keys {
            match reencrypt::count_using(c, &k.id)? {
                0 => r.retired.push(k.id.clone()),
                n => r.kept.push((k.id.clone(), n)),
            }
        }
        vault_key::delete_ids(c, &r.retired)?;
        reencrypt::finish(c, job_id, now())?;
        Ok(())
    })?;
    if !r.retired.is_empty() {
        tracing::info!(keys = ?r.retired, "retired data keys that no record uses");
    }
    for (k, n) in &r.kept {
        tracing::warn!(key = %k, records = n, "an inactive data key is still in use: kept for the next job");
    }
    Ok(r)
}

/// Runs the job to its end on this connection (the command), calling `progress` after each
/// batch.
pub fn run(
    conn: &mut DbConnection,
    keyring: &Keyring,
    job_id: &str,
    mut progress: impl FnMut(&Progress),
) -> anyhow::Result<(Progress, Retirement)> {
    while step(conn, keyring, job_id)? {
        if let Some(j) = reencrypt::find(conn, job_id)? {
            gauge(&j);
            progress(&Progress::of(j));
        }
    }
    let r = finish(conn, job_id)?;
    let j = reencrypt::find(conn, job_id)?.context("the job is gone")?;
    Ok((Progress::of(j), r))
}

/// A slice of the running job, if any, for a server's background loop: batches for at most
/// `budget`, then the finish when every table is done.
pub fn run_some(
    conn: &mut DbConnection,
    keyring: &Keyring,
    budget: Duration,
) -> anyhow::Result<Option<Progress>> {
    let Some(job) = reencrypt::running(conn)? else {
        return Ok(None);
    };
    let started = Instant::now();
    loop {
        if !step(conn, keyring, &job.id)? {
            finish(conn, &job.id)?;
            break;
        }
        if started.elapsed() >= budget {
            break;
        }
    }
    let j = reencrypt::find(conn, &job.id)?;
    if let Some(j) = &j {
        gauge(j);
    }
    Ok(j.map(Progress::of))
}

/// The process's `coffer_reencrypt_records_*` gauges.
fn gauge(j: &Job) {
    crate::metrics::set_reencrypt_progress(j.done.max(0) as u64, j.total.max(0) as u64);
}

/// The newest job's progress (console, metrics).
pub fn latest(conn: &mut DbConnection) -> anyhow::Result<Option<Progress>> {
    Ok(reencrypt::latest(conn)?.map(Progress::of))
}
