//! Delivers the callback outbox. One task per process polls for due callbacks, claims a batch
//! with a lease (so that with several processes on one PostgreSQL each attempt is made by one
//! process), sends each outside any database transaction, and records the attempt. The same
//! loop expires hosted payment pages and 3-D Secure challenges that are past their time, and
//! deletes expired card tokens.
//!
//! At least once: a process killed while sending leaves the lease to expire, and another
//! process (or the same one, restarted) makes the next attempt.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tokio::sync::watch;

use crate::db::{DbPool, write_tx};
use crate::error::ServiceError;
use crate::gateway::signature::http_date;
use crate::gateway::signature::{self, BodyHash};
use crate::gateway::target::{self, AllowPrivate};
use crate::models::callback::{self, Attempt, Callback};
use crate::models::connector;
use crate::payments::callbacks::Backoff;
use crate::vault::keyring::Keyring;

/// The exact content type sent and signed (what the PHP client's validateCallback expects).
pub const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// How long the merchant has to answer one attempt.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claim keeps other processes away: well above the request timeout.
pub const LEASE: Duration = Duration::from_secs(60);
/// Callbacks claimed (and sent concurrently) at once by one process.
const BATCH: i64 = 16;
/// Longest response excerpt kept with an attempt.
const EXCERPT_CHARS: usize = 200;

/// What the worker needs, taken from the settings at start.
#[derive(Clone)]
pub struct WorkerConfig {
    pub poll: Duration,
    pub backoff: Backoff,
    pub policy: AllowPrivate,
}

/// A target refused after resolution (or an IP literal refused at send time).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Resolves with the system resolver and keeps only the addresses the policy allows; the HTTP
/// client connects to those, so what was checked is what is called (no rebinding window).
struct CheckedResolver {
    policy: AllowPrivate,
}

impl reqwest::dns::Resolve for CheckedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.policy;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|a| policy.allows(a.ip()))
                .collect();
            if allowed.is_empty() {
                let msg = match found.first() {
                    Some(a) => format!("{host}: {}", target::refusal(a.ip())),
                    None => format!("{host}: no address"),
                };
                return Err(Box::new(Refused(msg)) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(allowed.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client of callbacks: checked resolution, no redirects, no proxy, timeouts.
pub fn http_client(policy: AllowPrivate) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .dns_resolver(Arc::new(CheckedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(REQUEST_TIMEOUT)
        .connect_timeout(Duration::from_secs(5))
        .user_agent(concat!("Coffer/", env!("CARGO_PKG_VERSION"), " callbacks"))
        .build()?)
}

/// Starts the worker task; it stops when `true` is sent on the returned channel.
pub fn spawn(
    db: DbPool,
    keyring: Arc<Keyring>,
    config: WorkerConfig,
) -> anyhow::Result<(tokio::task::JoinHandle<()>, watch::Sender<bool>)> {
    let client = http_client(config.policy)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker = Worker {
        db,
        keyring,
        config,
        client,
        name: crate::ids::worker_name(),
    };
    Ok((tokio::spawn(worker.run(stop_rx)), stop_tx))
}

/// One claimed attempt, ready to send: the secret is opened for it and dropped after.
struct Job {
    callback: Callback,
    secret: String,
}

/// What became of one attempt.
struct Outcome {
    http_status: Option<i32>,
    /// `delivered`, `rejected`, `error` or `refused`.
    kind: &'static str,
    excerpt: Option<String>,
    error: Option<String>,
}

/// When a process first looks whether the daily expiry scan is due.
const DAILY_FIRST_CHECK: Duration = Duration::from_secs(60);

/// How often each process looks for expired payment pages, challenges and card tokens.
const EXPIRY_SWEEP: std::time::Duration = std::time::Duration::from_secs(5);

struct Worker {
    db: DbPool,
    keyring: Arc<Keyring>,
    config: WorkerConfig,
    client: reqwest::Client,
    name: String,
}

impl Worker {
    async fn run(self, mut stop: watch::Receiver<bool>) {
        let me = Arc::new(self);
        let mut last_sweep: Option<std::time::Instant> = None;
        // The daily expiry scan: looked at hourly (first a minute after start); the lease in
        // `lifecycle_runs` makes one process at a time run it, once a day. Its own task, so
        // that a long scan does not hold up callbacks.
        let started = std::time::Instant::now();
        let mut last_daily: Option<std::time::Instant> = None;
        let scanning = Arc::new(std::sync::atomic::AtomicBool::new(false));
        loop {
            if *stop.borrow() {
                break;
            }
            // The same loop expires hosted payment pages and 3-D Secure challenges nobody came
            // back to (pages hit after their time expire on the spot). Each session is claimed
            // in a write transaction, so processes sharing a database never expire one twice.
            if last_sweep.is_none_or(|t| t.elapsed() >= EXPIRY_SWEEP) {
                last_sweep = Some(std::time::Instant::now());
                let swept = me
                    .db
                    .run(|conn| crate::payments::checkout::expire_due(conn, Utc::now().naive_utc()))
                    .await;
                match swept {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(sessions = n, "expired payment pages and challenges"),
                    Err(e) => tracing::warn!(error = %e, "payment page expiry failed"),
                }
                // And deletes expired card tokens (sealed card number and CVV) within seconds.
                let purged = me
                    .db
                    .run(|conn| crate::payments::card_tokens::purge_expired(conn, Utc::now()))
                    .await;
                match purged {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(tokens = n, "deleted expired card tokens"),
                    Err(e) => tracing::warn!(error = %e, "card token purge failed"),
                }
                // And the Idempotency-Keys whose 24 hours are over.
                let keys = me
                    .db
                    .run(|conn| crate::payments::idempotency::purge_expired(conn, Utc::now()))
                    .await;
                if let Err(e) = keys {
                    tracing::warn!(error = %e, "idempotency key purge failed");
                }
                // And the tokenize rate-limit windows that are over.
                let windows = me
                    .db
                    .run(|conn| crate::payments::card_tokens::purge_limit_windows(conn, Utc::now()))
                    .await;
                if let Err(e) = windows {
                    tracing::warn!(error = %e, "tokenize rate-limit purge failed");
                }
            }
            let daily_due = match last_daily {
                None => started.elapsed() >= DAILY_FIRST_CHECK,
                Some(t) => t.elapsed() >= crate::vault::lifecycle::DAILY_CHECK,
            };
            if daily_due && !scanning.swap(true, std::sync::atomic::Ordering::AcqRel) {
                last_daily = Some(std::time::Instant::now());
                let (db, name, flag) = (me.db.clone(), me.name.clone(), scanning.clone());
                tokio::spawn(async move {
                    let r = db
                        .run(move |conn| crate::vault::lifecycle::daily_scan(conn, &name))
                        .await;
                    match r {
                        Ok(Some(r)) => tracing::info!(
                            cards = r.seen,
                            expiring = r.expiring,
                            expired = r.expired,
                            "daily expiry scan done"
                        ),
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "daily expiry scan failed"),
                    }
                    flag.store(false, std::sync::atomic::Ordering::Release);
                });
            }
            match me.claim().await {
                Ok(jobs) if !jobs.is_empty() => {
                    let mut set = tokio::task::JoinSet::new();
                    for job in jobs {
                        let w = me.clone();
                        set.spawn(async move { w.deliver(job).await });
                    }
                    while set.join_next().await.is_some() {}
                    // More may be due at once: look again without waiting.
                    continue;
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "callback claim failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(me.config.poll) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::debug!(worker = %me.name, "callback worker stopped");
    }

    /// Claims up to `BATCH` due callbacks and opens their connectors' secrets.
    async fn claim(&self) -> Result<Vec<Job>, ServiceError> {
        let name = self.name.clone();
        let keyring = self.keyring.clone();
        self.db
            .run(move |conn| {
                let at = Utc::now().naive_utc();
                if !callback::any_due(conn, at)? {
                    return Ok(vec![]);
                }
                let until = at + chrono::Duration::from_std(LEASE).unwrap_or_default();
                let claimed = write_tx(conn, |tx| {
                    let mut out = vec![];
                    for id in callback::due_ids(tx, at, BATCH)? {
                        if let Some(c) = callback::take_lease(tx, &id, at, until, &name)? {
                            out.push(c);
                        }
                    }
                    Ok::<_, ServiceError>(out)
                })?;
                let mut jobs = vec![];
                for c in claimed {
                    let k =
                        connector::find(conn, &c.connector_id)?.ok_or(ServiceError::NotFound)?;
                    let secret = keyring.open_string(conn, &k.shared_secret, k.id.as_bytes())?;
                    jobs.push(Job {
                        callback: c,
                        secret,
                    });
                }
                Ok(jobs)
            })
            .await
    }

    async fn deliver(&self, job: Job) {
        let c = &job.callback;
        let started_at = Utc::now().naive_utc();
        let clock = Instant::now();
        let outcome = self.send(&job).await;
        let duration_ms = clock.elapsed().as_millis().min(i64::MAX as u128) as i64;
        let attempt = c.attempts;
        let at = Utc::now().naive_utc();
        let (status, next) = match outcome.kind {
            "delivered" => ("delivered", c.next_attempt_at),
            "refused" => ("failed", c.next_attempt_at),
            _ if self.config.backoff.retries_after(attempt.max(0) as u32) => {
                let wait = self.config.backoff.delay_after(attempt.max(0) as u32);
                (
                    "pending",
                    at + chrono::Duration::from_std(wait).unwrap_or_default(),
                )
            }
            _ => ("failed", c.next_attempt_at),
        };
        tracing::info!(
            callback = %c.id,
            transaction = c.transaction_uuid.as_deref().unwrap_or(""),
            event = c.event_type.as_deref().unwrap_or(""),
            attempt,
            outcome = outcome.kind,
            http_status = ?outcome.http_status,
            next = status,
            "callback attempt"
        );
        if outcome.kind != "delivered" {
            crate::metrics::delivery_failed(c.kind());
        }
        let row = Attempt {
            id: crate::ids::new_id(),
            callback_id: c.id.clone(),
            attempt,
            started_at,
            duration_ms,
            http_status: outcome.http_status,
            outcome: outcome.kind.into(),
            response_excerpt: outcome.excerpt,
            error: outcome.error.clone(),
            worker: self.name.clone(),
        };
        let id = c.id.clone();
        let name = self.name.clone();
        let last_error = outcome.error.or_else(|| {
            (outcome.kind != "delivered").then(|| {
                format!(
                    "HTTP {} without OK",
                    outcome.http_status.unwrap_or_default()
                )
            })
        });
        let r = self
            .db
            .run(move |conn| {
                write_tx(conn, |tx| {
                    callback::insert_attempt(tx, &row)?;
                    callback::finish_attempt(
                        tx,
                        &id,
                        &name,
                        attempt,
                        status,
                        next,
                        last_error.as_deref(),
                        at,
                    )?;
                    Ok::<_, ServiceError>(())
                })
            })
            .await;
        if let Err(e) = r {
            // The lease expires and the callback is tried again: at least once.
            tracing::warn!(callback = %c.id, error = %e, "recording a callback attempt failed");
        }
    }

    async fn send(&self, job: &Job) -> Outcome {
        let c = &job.callback;
        let fail = |kind: &'static str, e: String| Outcome {
            http_status: None,
            kind,
            excerpt: None,
            error: Some(e),
        };
        let url = match target::check_url(&c.url, self.config.policy) {
            Ok(u) => u,
            Err(e) => return fail("refused", e),
        };
        let uri = match url.query() {
            Some(q) => format!("{}?{q}", url.path()),
            None => url.path().to_string(),
        };
        let request = if c.event_type.is_some() {
            // A lifecycle event: its own headers and signature (README, "Lifecycle webhooks").
            let ts = Utc::now().timestamp();
            self.client
                .post(url)
                .header("Content-Type", "application/json")
                .header("X-Coffer-Event-Id", &c.id)
                .header("X-Coffer-Timestamp", ts.to_string())
                .header(
                    "X-Coffer-Signature",
                    signature::lifecycle_signature(&job.secret, ts, &c.body),
                )
        } else {
            self.transaction_callback(job, url, &uri)
        };
        let sent = request.body(c.body.clone()).send().await;
        let mut resp = match sent {
            Ok(r) => r,
            Err(e) => {
                if let Some(r) = find_refused(&e) {
                    return fail("refused", r.0.clone());
                }
                return fail("error", describe(&e));
            }
        };
        let status = resp.status().as_u16() as i32;
        // Read at most a few KiB: enough for `OK` and an excerpt.
        let mut body = Vec::new();
        let mut read_error = None;
        loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => {
                    body.extend_from_slice(&chunk);
                    if body.len() > 4096 {
                        break;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        let text = String::from_utf8_lossy(&body);
        // A transaction callback is acknowledged by 200 `OK` (spec 2.6), an event by any 2xx.
        let acknowledged = read_error.is_none()
            && if c.event_type.is_some() {
                (200..300).contains(&status)
            } else {
                status == 200 && text.trim() == "OK"
            };
        Outcome {
            http_status: Some(status),
            kind: if acknowledged {
                "delivered"
            } else if read_error.is_some() {
                "error"
            } else {
                "rejected"
            },
            excerpt: Some(excerpt(&text)).filter(|s| !s.is_empty()),
            error: read_error,
        }
    }

    /// The request of a transaction callback (spec 2.6): `Date` and `X-Signature`.
    fn transaction_callback(&self, job: &Job, url: url::Url, uri: &str) -> reqwest::RequestBuilder {
        let c = &job.callback;
        let date = http_date(Utc::now());
        let hash = if c.body_hash == "md5" {
            BodyHash::Md5
        } else {
            BodyHash::Sha512
        };
        let sig = signature::sign(
            &job.secret,
            "POST",
            c.body.as_bytes(),
            CONTENT_TYPE,
            &date,
            uri,
            hash,
        );
        self.client
            .post(url)
            .header("Content-Type", CONTENT_TYPE)
            .header("Date", &date)
            .header("X-Signature", sig)
    }
}

/// The `Refused` error of the resolver, somewhere in the error's chain.
fn find_refused(e: &reqwest::Error) -> Option<&Refused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
}

/// A short description of a transport error, without the URL (it may carry a query secret).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "response unreadable"
    } else {
        "request failed"
    };
    let mut detail = String::new();
    let mut cur = std::error::Error::source(e);
    while let Some(err) = cur {
        detail = err.to_string();
        cur = err.source();
    }
    if detail.is_empty() {
        what.into()
    } else {
        excerpt(&format!("{what}: {detail}"))
    }
}

/// A printable, bounded excerpt: control characters replaced, at most `EXCERPT_CHARS` chars.
pub fn excerpt(s: &str) -> String {
    let mut out: String = s
        .trim()
        .chars()
        .take(EXCERPT_CHARS)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.trim().chars().count() > EXCERPT_CHARS {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::excerpt;

    #[test]
    fn excerpts_are_short_and_printable() {
        assert_eq!(excerpt("  nope\n"), "nope");
        assert_eq!(excerpt("a\u{0}b\r\nc"), "a b  c");
        let long = "x".repeat(500);
        let e = excerpt(&long);
        assert_eq!(e.chars().count(), 201);
        assert!(e.ends_with('…'));
    }
}
