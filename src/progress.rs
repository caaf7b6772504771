//! Progress of long-running commands (`bench-seed`, `migrate`, the re-encryption job, the
//! account updater, the lifecycle scan): a bar with the rate and ETA when stderr is a terminal,
//! otherwise a log line every few seconds (done/total, rate, ETA) and one at the end.
//!
//! ```no_run
//! let p = coffer::progress::Progress::new("re-encrypt", 1_000_000);
//! for _batch in 0..1000 {
//!     // … one batch of 1 000 records …
//!     p.inc(1000);
//! }
//! p.finish();
//! ```
//!
//! `Progress` is `Sync`: the workers of one job may share it (`inc` from several threads).

use std::io::IsTerminal;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How often the log line is written when stderr is not a terminal.
pub const LOG_EVERY: Duration = Duration::from_secs(10);

pub struct Progress {
    label: String,
    total: AtomicU64,
    done: AtomicU64,
    started: Instant,
    out: Output,
    finished: AtomicBool,
}

enum Output {
    Bar(indicatif::ProgressBar),
    /// The log line, at most every `every`; `last` is when the previous one was written.
    Log {
        every: Duration,
        last: Mutex<Instant>,
    },
}

impl Progress {
    /// Progress of `total` units of work named `label`: a bar on a terminal, log lines
    /// otherwise.
    pub fn new(label: &str, total: u64) -> Progress {
        if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} ({percent}%) {per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_prefix(label.to_string());
            Progress::with_output(label, total, Output::Bar(bar))
        } else {
            Progress::logging(label, total, LOG_EVERY)
        }
    }

    /// Log lines every `every`, whatever stderr is.
    pub fn logging(label: &str, total: u64, every: Duration) -> Progress {
        Progress::with_output(
            label,
            total,
            Output::Log {
                every,
                last: Mutex::new(Instant::now()),
            },
        )
    }

    fn with_output(label: &str, total: u64, out: Output) -> Progress {
        Progress {
            label: label.to_string(),
            total: AtomicU64::new(total),
            done: AtomicU64::new(0),
            started: Instant::now(),
            out,
            finished: AtomicBool::new(false),
        }
    }

    /// `n` more units done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.out {
            Output::Bar(bar) => bar.inc(n),
            Output::Log { every, last } => {
                let mut last = last
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if last.elapsed() >= *every {
                    *last = Instant::now();
                    drop(last);
                    self.log(done);
                }
            }
        }
    }

    /// The total changed (more work was found, or less).
    pub fn set_total(&self, total: u64) {
        self.total.store(total, Ordering::Relaxed);
        if let Output::Bar(bar) = &self.out {
            bar.set_length(total);
        }
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The end: the bar stays with its final count, or the last log line is written.
    pub fn finish(&self) {
        if self.finished.swap(true, Ordering::Relaxed) {
            return;
        }
        match &self.out {
            Output::Bar(bar) => bar.finish(),
            Output::Log { .. } => self.log(self.done()),
        }
    }

    fn log(&self, done: u64) {
        let total = self.total.load(Ordering::Relaxed);
        let elapsed = self.started.elapsed();
        let rate = rate(done, elapsed);
        tracing::info!(
            task = %self.label,
            done,
            total,
            rate = (rate * 10.0).round() / 10.0,
            eta_seconds = eta(done, total, elapsed).map(|d| d.as_secs()),
            "{}",
            line(&self.label, done, total, elapsed)
        );
    }
}

impl Drop for Progress {
    /// A bar left unfinished (an error) is left as it stands, not drawn as complete.
    fn drop(&mut self) {
        if let Output::Bar(bar) = &self.out
            && !self.finished.load(Ordering::Relaxed)
        {
            bar.abandon();
        }
    }
}

/// Units per second so far.
fn rate(done: u64, elapsed: Duration) -> f64 {
    let s = elapsed.as_secs_f64();
    if s > 0.0 { done as f64 / s } else { 0.0 }
}

/// The time left at the rate so far; `None` before anything is done.
fn eta(done: u64, total: u64, elapsed: Duration) -> Option<Duration> {
    if done == 0 {
        return (total == 0).then_some(Duration::ZERO);
    }
    let left = total.saturating_sub(done) as f64;
    Some(Duration::from_secs_f64(
        left * elapsed.as_secs_f64() / done as f64,
    ))
}

/// The log line: `migrate: 3/12 (25.0%), 1.5/s, ETA 6s`.
pub fn line(label: &str, done: u64, total: u64, elapsed: Duration) -> String {
    let percent = if total > 0 {
        format!(" ({:.1}%)", done as f64 * 100.0 / total as f64)
    } else {
        String::new()
    };
    let r = rate(done, elapsed);
    let rate = if r >= 100.0 {
        format!("{r:.0}/s")
    } else {
        format!("{r:.1}/s")
    };
    let eta = match eta(done, total, elapsed) {
        _ if done >= total && total > 0 => format!("done in {}", human(elapsed)),
        Some(d) => format!("ETA {}", human(d)),
        None => "ETA unknown".to_string(),
    };
    format!("{label}: {done}/{total}{percent}, {rate}, {eta}")
}

/// `45s`, `3m05s`, `2h07m`.
fn human(d: Duration) -> String {
    let s = d.as_secs_f64().round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, (s % 3600) / 60),
    }
}

/// The rate (per second) and the seconds left of a job stored in the database: `done` of
/// `total` since `started`, to `end` (its finish, or now); no time left when it is not
/// running or has made no progress.
pub fn rate_and_eta(
    done: i64,
    total: i64,
    started: chrono::NaiveDateTime,
    end: chrono::NaiveDateTime,
    running: bool,
) -> (f64, Option<i64>) {
    let secs = (end - started).num_milliseconds().max(1) as f64 / 1000.0;
    let rate = done as f64 / secs;
    let left = (total - done).max(0);
    let eta = (running && rate > 0.0).then(|| (left as f64 / rate).ceil() as i64);
    (rate, eta)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_line_shows_count_percent_rate_and_eta() {
        assert_eq!(
            line("migrate", 3, 12, Duration::from_secs(2)),
            "migrate: 3/12 (25.0%), 1.5/s, ETA 6s"
        );
        assert_eq!(
            line("bench-seed", 200_000, 1_000_000, Duration::from_secs(4)),
            "bench-seed: 200000/1000000 (20.0%), 50000/s, ETA 16s"
        );
        // 10 000 of 1 000 000 in 10 s: 990 000 left at 1 000/s.
        assert_eq!(
            line("re-encrypt", 10_000, 1_000_000, Duration::from_secs(10)),
            "re-encrypt: 10000/1000000 (1.0%), 1000/s, ETA 16m30s"
        );
        assert_eq!(
            line("scan", 1, 10_000, Duration::from_secs(1)),
            "scan: 1/10000 (0.0%), 1.0/s, ETA 2h46m"
        );
        assert_eq!(
            line("scan", 0, 50, Duration::from_secs(3)),
            "scan: 0/50 (0.0%), 0.0/s, ETA unknown"
        );
        assert_eq!(
            line("migrate", 12, 12, Duration::from_millis(61_400)),
            "migrate: 12/12 (100.0%), 0.2/s, done in 1m01s"
        );
        assert_eq!(
            line("nothing", 0, 0, Duration::from_secs(1)),
            "nothing: 0/0, 0.0/s, ETA 0s"
        );
    }

    #[test]
    fn progress_counts_from_several_threads_and_finishes_once() {
        let p = Progress::logging("t", 400, Duration::from_secs(3600));
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        p.inc(1);
                    }
                });
            }
        });
        assert_eq!(p.done(), 400);
        p.set_total(500);
        p.finish();
        p.finish();
        assert!(p.finished.load(Ordering::Relaxed));
    }
}
