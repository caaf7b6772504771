//! The process's Prometheus metrics (`GET /metrics` on `COFFER_METRICS_BIND`, README
//! "Operations"). One registry per process: Prometheus scrapes each process on its own.
//!
//! Counters and histograms are recorded where things happen (the HTTP middleware, the pool,
//! sign-in, the callback worker, the key manager's client) through the functions below; the
//! gauges of one database's state (the SQLite writer queue, the outbox) are read when scraped
//! and passed to [`render`] in a [`Snapshot`]. Nothing here knows the layers that call it.
//!
//! Labels hold only bounded, non-secret values: route templates (never a raw path), a closed
//! set of methods, status codes, and fixed names.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicI64, AtomicU64};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// The `Content-Type` of the text the scrape answers (Prometheus text format 0.0.4).
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KmsLabels {
    op: &'static str,
    result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

struct Metrics {
    registry: Registry,
    http_requests: Family<RequestLabels, Counter>,
    http_duration: HistogramFamily<RouteLabels>,
    pool_wait: Histogram,
    delivery_failures: Family<KindLabels, Counter>,
    login_failures: Counter,
    lockouts: Counter,
    kms_requests: Family<KmsLabels, Counter>,
    reencrypt_done: Gauge<i64, AtomicI64>,
    reencrypt_total: Gauge<i64, AtomicI64>,
}

/// Request durations: 1 ms to about 16 s.
fn duration_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.001, 2.0, 15,
    ))
}

/// Pool waits: 0.1 ms to about 6.5 s (the pool gives up at 10 s).
fn wait_histogram() -> Histogram {
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 17,
    ))
}

fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| {
        let mut registry = Registry::default();
        let http_requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "coffer_http_requests",
            "HTTP requests answered, by route template, method and status",
            http_requests.clone(),
        );
        let http_duration: HistogramFamily<RouteLabels> =
            Family::new_with_constructor(duration_histogram);
        registry.register(
            "coffer_http_request_duration_seconds",
            "Time from a request's arrival to its response, by route template",
            http_duration.clone(),
        );
        let pool_wait = wait_histogram();
        registry.register(
            "coffer_db_pool_wait_seconds",
            "Time a database task waited for a pooled connection",
            pool_wait.clone(),
        );
        let delivery_failures = Family::<KindLabels, Counter>::default();
        registry.register(
            "coffer_delivery_failures",
            "Outbox delivery attempts that failed (not acknowledged), by kind",
            delivery_failures.clone(),
        );
        let login_failures = Counter::default();
        registry.register(
            "coffer_login_failures",
            "Console sign-in attempts refused for a wrong password or two-factor code",
            login_failures.clone(),
        );
        let lockouts = Counter::default();
        registry.register(
            "coffer_lockouts",
            "Console sign-in locks set after too many failed attempts (per username or source)",
            lockouts.clone(),
        );
        let kms_requests = Family::<KmsLabels, Counter>::default();
        registry.register(
            "coffer_kms_requests",
            "Requests to the key manager (Transit), by operation and result",
            kms_requests.clone(),
        );
        let reencrypt_done = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "coffer_reencrypt_records_done",
            "Records the running re-encryption has re-sealed",
            reencrypt_done.clone(),
        );
        let reencrypt_total = Gauge::<i64, AtomicI64>::default();
        registry.register(
            "coffer_reencrypt_records_total",
            "Records the running re-encryption has to re-seal",
            reencrypt_total.clone(),
        );
        // Series that exist before their first event (a family without any is not listed):
        // the delivery kinds of the outbox and every key manager operation.
        for kind in ["callbacks", "webhooks"] {
            let _ = delivery_failures.get_or_create(&KindLabels { kind: kind.into() });
        }
        for op in ["generate", "decrypt", "rewrap", "rotate", "check"] {
            for result in ["ok", "error"] {
                let _ = kms_requests.get_or_create(&KmsLabels { op, result });
            }
        }
        Metrics {
            registry,
            http_requests,
            http_duration,
            pool_wait,
            delivery_failures,
            login_failures,
            lockouts,
            kms_requests,
            reencrypt_done,
            reencrypt_total,
        }
    })
}

/// A method as a label: the common ones by name, anything else `other` (a client may send
/// any token as a method; labels must stay a small set).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}

/// One answered HTTP request: `route` is the route's template (`/api/v3/transaction/{key}/debit`)
/// or [`UNMATCHED_ROUTE`], never the path the client sent.
pub fn http_request(route: &str, method: &str, status: u16, seconds: f64) {
    let m = metrics();
    m.http_requests
        .get_or_create(&RequestLabels {
            route: route.to_string(),
            method: method_label(method),
            status,
        })
        .inc();
    m.http_duration
        .get_or_create(&RouteLabels {
            route: route.to_string(),
        })
        .observe(seconds);
}

/// A database task got its connection after `seconds` (the pool's permit and r2d2 together).
pub fn db_pool_wait(seconds: f64) {
    metrics().pool_wait.observe(seconds);
}

/// An outbox delivery attempt of `kind` (`callbacks`, `webhooks`) failed.
pub fn delivery_failed(kind: &str) {
    metrics()
        .delivery_failures
        .get_or_create(&KindLabels {
            kind: kind.to_string(),
        })
        .inc();
}

/// A console sign-in attempt failed (wrong password or code, or the account may not sign in).
pub fn login_failed() {
    metrics().login_failures.inc();
}

/// `n` sign-in locks were set (a username's, a source's, or both at once).
pub fn lockouts(n: u64) {
    if n > 0 {
        metrics().lockouts.inc_by(n);
    }
}

/// Counts a request to the key manager and hands its result back. `path` and `suffix` are the
/// Transit endpoint's (`datakey/wrapped`, `decrypt`, `rewrap`, `keys` + `rotate`; `keys` alone
/// is the readiness check, counted as `check`).
pub fn kms_request<T, E>(path: &str, suffix: &str, result: Result<T, E>) -> Result<T, E> {
    let op = match (path, suffix) {
        ("datakey/wrapped", _) => "generate",
        ("decrypt", _) => "decrypt",
        ("rewrap", _) => "rewrap",
        ("keys", "rotate") => "rotate",
        ("keys", _) => "check",
        _ => "other",
    };
    let result_label = if result.is_ok() { "ok" } else { "error" };
    metrics()
        .kms_requests
        .get_or_create(&KmsLabels {
            op,
            result: result_label,
        })
        .inc();
    result
}

/// The re-encryption job's progress: records re-sealed so far, of `total`.
pub fn set_reencrypt_progress(done: u64, total: u64) {
    let m = metrics();
    m.reencrypt_done
        .set(i64::try_from(done).unwrap_or(i64::MAX));
    m.reencrypt_total
        .set(i64::try_from(total).unwrap_or(i64::MAX));
}

/// What a scrape reads from the process's database when it is asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    /// SQLite: write transactions waiting for the group commit's writer (0 elsewhere).
    pub writer_queue_depth: u64,
    /// The outbox: deliveries due (pending, their next attempt time passed), and how long the
    /// oldest of them has been due in seconds (0 when none is). `None` when the database did
    /// not answer: the two gauges are left out of the scrape rather than reported as 0.
    pub outbox: Option<(u64, f64)>,
}

/// The whole scrape in the Prometheus text format: the process's metrics, then the gauges of
/// `snapshot` (kept out of the shared registry: two apps in one process, as in the tests, each
/// answer their own database's).
pub fn render(snapshot: &Snapshot) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, &metrics().registry)?;
    let mut now = Registry::default();
    let queue = Gauge::<i64, AtomicI64>::default();
    queue.set(i64::try_from(snapshot.writer_queue_depth).unwrap_or(i64::MAX));
    now.register(
        "coffer_sqlite_writer_queue_depth",
        "SQLite write transactions waiting for the group commit's writer",
        queue,
    );
    if let Some((due_now, oldest_seconds)) = snapshot.outbox {
        let due = Gauge::<i64, AtomicI64>::default();
        due.set(i64::try_from(due_now).unwrap_or(i64::MAX));
        now.register(
            "coffer_outbox_due",
            "Outbox deliveries due now (pending, next attempt time passed)",
            due,
        );
        let oldest = Gauge::<f64, AtomicU64>::default();
        oldest.set(oldest_seconds.max(0.0));
        now.register(
            "coffer_outbox_oldest_due_seconds",
            "How long the oldest due outbox delivery has been waiting, in seconds",
            oldest,
        );
    }
    prometheus_client::encoding::prometheus_text::encode(&mut out, &now)?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scrape_names_every_family_and_keeps_labels_bounded() {
        http_request("/customers/{id}", "BREW", 200, 0.002);
        kms_request::<(), ()>("keys", "rotate", Ok(())).expect("ok");
        let text = render(&Snapshot {
            writer_queue_depth: 2,
            outbox: Some((3, 1.5)),
        })
        .expect("render");
        for family in [
            "coffer_http_requests_total",
            "coffer_http_request_duration_seconds_bucket",
            "coffer_db_pool_wait_seconds_count",
            "coffer_login_failures_total",
            "coffer_lockouts_total",
            "coffer_reencrypt_records_done 0",
            "coffer_reencrypt_records_total 0",
            "coffer_sqlite_writer_queue_depth 2",
            "coffer_outbox_due 3",
            "coffer_outbox_oldest_due_seconds 1.5",
        ] {
            assert!(text.contains(family), "{family} in\n{text}");
        }
        assert!(
            text.contains(
                r#"coffer_http_requests_total{route="/customers/{id}",method="other",status="200"}"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"coffer_kms_requests_total{op="rotate",result="ok"}"#),
            "{text}"
        );
        let without = render(&Snapshot::default()).expect("render");
        assert!(!without.contains("coffer_outbox_due"), "{without}");
        set_reencrypt_progress(7, 9);
        let later = render(&Snapshot::default()).expect("render");
        assert!(
            later.contains("coffer_reencrypt_records_done 7\n"),
            "{later}"
        );
        assert!(
            later.contains("coffer_reencrypt_records_total 9\n"),
            "{later}"
        );
    }
}
