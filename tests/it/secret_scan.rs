//! Nothing secret reaches a log line, a metric label or a trace (issue 16, README
//! "Operations"): the one owner of the test binary's tracing and of the scan for secrets.
//!
//! The test binary's tracing (installed by every `TestApp`): error lines to the test output,
//! and a capture of every line, as the JSON lines `COFFER_LOG_FORMAT=json` writes, with the
//! spans' fields, at trace for Coffer's targets (the access log `coffer::access`, the database
//! traces `coffer::db`) and at debug for every other target (actix's `log` lines included). The
//! capture costs nothing while no [`Scan`] is open: its filter lets nothing through then.
//!
//! A [`Scan`] (each fuzz test has one) sees every line written while it is open, whatever test
//! caused it, and the app's `/metrics` text at its end, and fails when any of them holds a
//! secret it knows: the app's keys and passwords, the demo's passwords and shared secrets, and
//! what the fuzz runner saw go by (every card number it sent, as sent and as plain digits;
//! session cookies, CSRF tokens, secrets shown once, two-factor secrets and recovery codes,
//! Monri access tokens in the answers); and whatever it knows or not, any `pt::` or `ix::` text
//! and any CVV given as a value. The real-process test (`operations.rs`) scans its process's
//! output with the same [`Secrets`].

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use tracing::{Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;

use crate::helpers::TestApp;

// ---------------------------------------------------------------------------------------------
// The capture

type Buffer = Arc<Mutex<Vec<u8>>>;

/// Open capture windows: every captured line is appended to each.
static WINDOWS: Mutex<Vec<Weak<Mutex<Vec<u8>>>>> = Mutex::new(Vec::new());
/// How many windows are open (the capture's filter lets nothing through at 0).
static OPEN: AtomicUsize = AtomicUsize::new(0);

/// The test binary's tracing, installed once (every `TestApp` calls it first).
pub fn init_tracing() {
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let errors = tracing_subscriber::fmt::layer()
            .with_test_writer()
            .with_filter(tracing_subscriber::filter::LevelFilter::ERROR);
        let open = || OPEN.load(Ordering::Relaxed) > 0;
        let subscriber = tracing_subscriber::registry()
            .with(capture_layer(|| Windows, open))
            .with(errors);
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
    });
}

/// What the capture keeps: Coffer's targets at trace, every other one at debug, but what
/// `coffer serve`'s logging never writes either (`web::telemetry::may_log`) and the lines of
/// the tests' own cookie jar (`cookie_store`, which Coffer does not use: it logs every cookie
/// the tests' clients receive).
fn captured(m: &Metadata<'_>) -> bool {
    let t = m.target();
    let level =
        t.starts_with("coffer") || (*m.level() <= Level::DEBUG && !t.starts_with("cookie_store"));
    // What `coffer serve` never logs (its logging filters with the same function).
    level && coffer::web::telemetry::may_log(m)
}

/// The capturing layer, writing JSON lines with the spans (as `COFFER_LOG_FORMAT=json` does) to
/// `writer`, while `on()`.
fn capture_layer<S, W>(
    writer: W,
    on: impl Fn() -> bool + Send + Sync + 'static,
) -> impl Layer<S> + Send + Sync
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer()
        .json()
        .with_current_span(true)
        .with_span_list(true)
        .with_writer(writer)
        .with_filter(
            // Asked at every event and span (`sometimes`): whether a window is open changes.
            tracing_subscriber::filter::dynamic_filter_fn(move |m, _| on() && captured(m))
                .with_callsite_filter(|m| {
                    if captured(m) {
                        tracing::subscriber::Interest::sometimes()
                    } else {
                        tracing::subscriber::Interest::never()
                    }
                }),
        )
}

/// The writer of the global capture: each line into every open window.
struct Windows;

impl Write for Windows {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut windows = WINDOWS.lock().unwrap_or_else(|e| e.into_inner());
        windows.retain(|w| match w.upgrade() {
            Some(b) => {
                b.lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend_from_slice(buf);
                true
            }
            None => false,
        });
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The writer of a private capture (`capture_privately`).
#[derive(Clone)]
struct Private(Buffer);

impl Write for Private {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Everything captured while it is open.
pub struct Capture {
    buf: Buffer,
}

impl Capture {
    pub fn open() -> Capture {
        init_tracing();
        let buf: Buffer = Arc::default();
        WINDOWS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Arc::downgrade(&buf));
        OPEN.fetch_add(1, Ordering::Relaxed);
        Capture { buf }
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        OPEN.fetch_sub(1, Ordering::Relaxed);
        let mine = Arc::as_ptr(&self.buf);
        WINDOWS
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|w| w.as_ptr() != mine);
    }
}

/// Runs `f` with this thread's tracing going through the same capture layer into a buffer of
/// its own (never into the global capture's windows), and returns what was captured.
pub fn capture_privately(f: impl FnOnce()) -> String {
    let buf: Buffer = Arc::default();
    let writer = Private(buf.clone());
    let subscriber =
        tracing_subscriber::registry().with(capture_layer(move || writer.clone(), || true));
    tracing::subscriber::with_default(subscriber, f);
    String::from_utf8_lossy(&buf.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
}

// ---------------------------------------------------------------------------------------------
// What is secret

/// How a secret is looked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Shape {
    /// Anywhere, as a substring.
    Anywhere,
    /// A number of its own: no digit, letter or `.` right before or after it.
    Number,
}

/// Shorter values are not looked for (they occur by chance), unless they are numbers.
const MIN_LEN: usize = 8;

/// The demo data's passwords and shared secrets (`console::demo`, published in the README).
const DEMO_SECRETS: [&str; 13] = [
    "admin-demo",
    "manager-demo",
    "merchant-demo",
    "shop-api-demo",
    "outlet-api-demo",
    "globex-api-demo",
    "demo-shop-cards-secret",
    "demo-signed-secret",
    "demo-outlet-cards-secret",
    "demo-globex-cards-secret",
    coffer::console::demo::DEMO_MONRI_MERCHANT_KEY,
    // `Settings::for_tests`' first admin password.
    "admin-test-password",
    // The fuzzed forms' passwords.
    "a-new-password-123",
];

/// Every secret a test used or saw, each with what it is.
#[derive(Default, Clone)]
pub struct Secrets {
    items: BTreeMap<String, (&'static str, Shape)>,
}

/// One secret found in a text.
#[derive(Debug)]
pub struct Finding {
    pub what: String,
    pub around: String,
}

impl Secrets {
    /// A secret, looked for anywhere (ignored when shorter than 8 characters).
    pub fn add(&mut self, what: &'static str, value: &str) {
        let value = value.trim();
        if value.chars().count() >= MIN_LEN {
            self.items
                .entry(value.to_string())
                .or_insert((what, Shape::Anywhere));
        }
    }

    /// A short numeric secret (a two-factor code), looked for as a number of its own.
    pub fn code(&mut self, what: &'static str, value: &str) {
        let value = value.trim();
        if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
            self.items.insert(value.to_string(), (what, Shape::Number));
        } else {
            self.add(what, value);
        }
    }

    /// A card number, as given and as plain digits, in groups of four with spaces and dashes.
    pub fn card(&mut self, number: &str) {
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        let grouped = |sep: &str| {
            digits
                .as_bytes()
                .chunks(4)
                .map(|c| String::from_utf8_lossy(c).into_owned())
                .collect::<Vec<_>>()
                .join(sep)
        };
        for v in [
            number.to_string(),
            digits.clone(),
            grouped(" "),
            grouped("-"),
        ] {
            self.items
                .entry(v)
                .or_insert(("a card number", Shape::Anywhere));
        }
    }

    /// A CVV as a JSON string value (`"739"`, also escaped in a debug-printed value).
    pub fn cvv(&mut self, value: &str) {
        for v in [format!("\"{value}\""), format!("\\\"{value}\\\"")] {
            self.items.insert(v, ("a CVV as a value", Shape::Anywhere));
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// The demo data's passwords, shared secrets and Monri key.
    pub fn demo(&mut self) {
        use base64::Engine;
        for s in DEMO_SECRETS {
            self.add("a demo password or secret", s);
        }
        // The API users' Basic credentials, as their header carries them.
        for user in ["shop-api", "outlet-api", "globex-api"] {
            let basic =
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{user}-demo"));
            self.add("an API user's Basic credentials", &basic);
        }
    }

    /// The keys of an app's settings: session key, master key, key-manager token, and the key
    /// files Coffer writes into the data dir with SQLite.
    pub fn settings(&mut self, s: &coffer::config::Settings) {
        for k in s.session_key.iter().chain(&s.vault_key) {
            self.add("a key of the settings", k);
        }
        if let Some(t) = &s.transit_token {
            self.add("the key-manager token", t);
        }
        for file in ["session.key", "vault.key"] {
            if let Ok(k) = std::fs::read_to_string(s.data_dir.join(file)) {
                self.add("a key file of the data dir", &k);
            }
        }
        if let Some(p) = &s.admin_password {
            self.add("the first admin password", p);
        }
    }

    /// Every card number in a request (Luhn-valid runs of 13 to 19 digits, spaces and dashes
    /// between groups allowed), in its path and body, percent-decoded as well.
    pub fn request(&mut self, path: &str, body: &[u8]) {
        for raw in [path.as_bytes(), body] {
            let text = String::from_utf8_lossy(raw);
            let decoded = percent_decode(&text);
            for t in [text.as_ref(), decoded.as_str()] {
                for pan in card_numbers(t) {
                    self.card(&pan);
                }
            }
        }
    }

    /// The secrets an answer shows or sets: cookies (sessions, CSRF), a form's CSRF token,
    /// secrets and passwords shown once, a two-factor secret and recovery codes, a Monri access
    /// token.
    pub fn response(&mut self, headers: &reqwest::header::HeaderMap, body: &[u8]) {
        for c in headers.get_all(reqwest::header::SET_COOKIE) {
            let c = String::from_utf8_lossy(c.as_bytes());
            let pair = c.split(';').next().unwrap_or_default();
            if let Some((_, value)) = pair.split_once('=') {
                self.add("a cookie value", value);
            }
        }
        let body = String::from_utf8_lossy(body);
        if let Some(t) = crate::helpers::extract_csrf(&body) {
            self.add("a CSRF token", &t);
        }
        for marker in ["(shown only now, store it safely): ", "(shown only now): "] {
            for (i, _) in body.match_indices(marker) {
                let rest = &body[i + marker.len()..];
                let secret: String = rest
                    .chars()
                    .take_while(|c| !c.is_whitespace() && !"<&\"'".contains(*c))
                    .collect();
                self.add("a secret shown once", &secret);
            }
        }
        if let Some(s) = crate::identity::element_text(&body, "totp-secret") {
            self.add("a two-factor secret", &s);
        }
        if body.contains("id=\"recovery-codes\"") {
            for c in crate::identity::recovery_codes(&body) {
                self.code("a recovery code", &c);
            }
        }
        if body.contains("\"access_token\"")
            && let Ok(v) = serde_json::from_str::<serde_json::Value>(&body)
            && let Some(t) = v["access_token"].as_str()
        {
            self.add("a Monri access token", t);
        }
    }

    /// Every secret in `text`, and whatever the list: any `pt::` or `ix::` text and any CVV
    /// given as a value (a `cvv`, `cvc` or `security_code` key with digits).
    pub fn find_in(&self, text: &str) -> Vec<Finding> {
        let mut found = vec![];
        let around = |at: usize, len: usize| {
            let start = floor_char(text, at.saturating_sub(160));
            let end = floor_char(text, (at + len + 60).min(text.len()));
            text[start..end].to_string()
        };
        let patterns: Vec<&String> = self.items.keys().collect();
        if !patterns.is_empty() {
            let ac = aho_corasick::AhoCorasick::new(&patterns).expect("the secrets' automaton");
            let mut seen = std::collections::BTreeSet::new();
            for m in ac.find_overlapping_iter(text) {
                let value = patterns[m.pattern().as_usize()];
                let (what, shape) = self.items[value];
                if shape == Shape::Number && !alone(text, m.start(), m.end()) {
                    continue;
                }
                if seen.insert(value) {
                    found.push(Finding {
                        what: format!("{what} ({value})"),
                        around: around(m.start(), m.len()),
                    });
                }
            }
        }
        for prefix in ["pt::", "ix::"] {
            if let Some(i) = text.find(prefix) {
                found.push(Finding {
                    what: format!("a {prefix} token"),
                    around: around(i, prefix.len()),
                });
            }
        }
        let lower = text.to_ascii_lowercase();
        for key in ["cvv", "cvc", "security_code"] {
            for (i, _) in lower.match_indices(key) {
                let rest = &lower.as_bytes()[i + key.len()..];
                let gap = rest.iter().take_while(|b| b"\"\\:= ".contains(b)).count();
                if gap > 0 && gap <= 6 && rest.get(gap).is_some_and(u8::is_ascii_digit) {
                    found.push(Finding {
                        what: format!("a {key} value"),
                        around: around(i, key.len() + gap + 4),
                    });
                    break;
                }
            }
        }
        found
    }

    /// Fails when `text` (named `what`) holds a secret.
    pub fn assert_absent(&self, text: &str, what: &str) {
        let found = self.find_in(text);
        assert!(
            found.is_empty(),
            "secrets in {what} ({} bytes, {} secrets looked for):\n{}",
            text.len(),
            self.len(),
            found
                .iter()
                .map(|f| format!("  {}: …{}…", f.what, f.around))
                .collect::<Vec<_>>()
                .join("\n")
        );
    }
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// No digit, letter or `.` right around `start..end`.
fn alone(text: &str, start: usize, end: usize) -> bool {
    let b = text.as_bytes();
    let joins = |c: u8| c.is_ascii_alphanumeric() || c == b'.';
    let before = start > 0 && joins(b[start - 1]);
    let after = b.get(end).is_some_and(|c| joins(*c));
    !before && !after
}

/// `+` as a space and `%XX` escapes decoded (broken escapes kept as they are).
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| char::from(c).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Luhn-valid runs of 13 to 19 digits, not one digit repeated (single spaces or dashes between
/// digits allowed), that are not part of a longer run, as written.
fn card_numbers(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let mut out = vec![];
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let start = i;
        let mut end = i;
        let mut j = i;
        while j < b.len() {
            if b[j].is_ascii_digit() {
                j += 1;
                end = j;
            } else if (b[j] == b' ' || b[j] == b'-') && b.get(j + 1).is_some_and(u8::is_ascii_digit)
            {
                j += 1;
            } else {
                break;
            }
        }
        let run = &text[start..end];
        let digits: String = run.chars().filter(char::is_ascii_digit).collect();
        // Not one digit repeated ("0000000000000" is Luhn-valid, and in many an id).
        let repeated = digits.bytes().all(|d| d == digits.as_bytes()[0]);
        if (13..=19).contains(&digits.len())
            && !repeated
            && coffer::gateway::card::luhn_valid(&digits)
        {
            out.push(run.to_string());
        }
        i = end.max(i + 1);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// A scan around a test

/// The secrets of the apps being watched, by base URL: the fuzz runner adds what it sees.
type Watched = Vec<(String, Arc<Mutex<Secrets>>)>;
static WATCHED: Mutex<Watched> = Mutex::new(Vec::new());

fn watched(base: &str) -> Option<Arc<Mutex<Secrets>>> {
    WATCHED
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .find(|(b, _)| b == base)
        .map(|(_, s)| s.clone())
}

/// A request sent to `base` and its answer: what they show is added to the secrets of a
/// [`Watch`] on `base`, if any.
pub fn saw(
    base: &str,
    path: &str,
    request_body: &[u8],
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) {
    if let Some(s) = watched(base) {
        let mut s = s.lock().unwrap_or_else(|e| e.into_inner());
        s.request(path, request_body);
        s.response(headers, body);
    }
}

/// A secret used against `base`, added to the secrets of a [`Watch`] on it, if any.
pub fn used(base: &str, what: &'static str, value: &str) {
    if let Some(s) = watched(base) {
        s.lock().unwrap_or_else(|e| e.into_inner()).add(what, value);
    }
}

/// Secrets (the demo's to start with) that grow with what is sent to and answered by the
/// apps it watches, until it goes.
pub struct Watch {
    secrets: Arc<Mutex<Secrets>>,
}

impl Watch {
    pub fn new() -> Watch {
        let mut s = Secrets::default();
        s.demo();
        Watch {
            secrets: Arc::new(Mutex::new(s)),
        }
    }

    /// What is sent to `base` and answered is looked at from now on.
    pub fn base(&self, base: &str) {
        WATCHED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((base.to_string(), self.secrets.clone()));
    }

    pub fn secrets(&self) -> std::sync::MutexGuard<'_, Secrets> {
        self.secrets.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        let mine = Arc::as_ptr(&self.secrets);
        WATCHED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(_, s)| Arc::as_ptr(s) != mine);
    }
}

/// Opened before a test's app starts and finished at its end (`finish`), which fails the test
/// when a line captured meanwhile or the app's `/metrics` holds a secret.
pub struct Scan {
    capture: Capture,
    watch: Watch,
}

impl Scan {
    pub fn start() -> Scan {
        Scan {
            capture: Capture::open(),
            watch: Watch::new(),
        }
    }

    /// Starts a scan and a demo app (with its metrics listener) it watches.
    pub async fn demo() -> (Scan, TestApp) {
        let scan = Scan::start();
        let app = TestApp::spawn_with(true, |s| s.metrics_bind = Some("127.0.0.1:0".into())).await;
        scan.watch(&app);
        (scan, app)
    }

    /// As `demo`, in transit mode when `bao` is there: the key-manager token is a secret too.
    pub async fn demo_in_transit_mode(test: &str) -> (Scan, TestApp) {
        let scan = Scan::start();
        let bao = crate::bao::bao(test);
        let key = bao.map(|b| b.new_key());
        let app = TestApp::spawn_with(true, |s| {
            s.metrics_bind = Some("127.0.0.1:0".into());
            if let (Some(b), Some(k)) = (bao, &key) {
                b.apply(s, &b.addr, k);
            }
        })
        .await;
        scan.watch(&app);
        (scan, app)
    }

    /// `app`'s keys are secrets, and what the tests send to it and get back is looked at.
    pub fn watch(&self, app: &TestApp) {
        self.secrets().settings(&app.settings);
        self.watch.base(&app.addr);
    }

    pub fn secrets(&self) -> std::sync::MutexGuard<'_, Secrets> {
        self.watch.secrets()
    }

    /// Fails when the lines captured since the start, or `app`'s metrics, hold a secret; and
    /// when nothing at debug was captured (the scan would have looked at nothing).
    pub async fn finish(self, app: &TestApp) {
        let metrics = match &app.metrics {
            Some(_) => crate::operations::metrics_text(app).await,
            None => String::new(),
        };
        // Let the last access lines (written after their answers) arrive.
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let text = self.capture.text();
        assert_debug_lines(&text);
        let secrets = self.secrets().clone();
        println!(
            "secret scan: {} captured lines ({} bytes) and {} bytes of metrics, {} secrets looked for",
            text.lines().count(),
            text.len(),
            metrics.len(),
            secrets.len()
        );
        secrets.assert_absent(&text, "the captured debug log");
        if app.metrics.is_some() {
            assert!(metrics.contains("coffer_http_requests_total"), "{metrics}");
            secrets.assert_absent(&metrics, "the metrics");
        }
    }
}

/// The capture holds the access log at debug and the database traces: it looked at something.
pub fn assert_debug_lines(text: &str) {
    let mut access = false;
    let mut db = false;
    for line in text.lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
        access |= v["target"] == "coffer::access" && v["level"] == "DEBUG";
        db |= v["target"] == "coffer::db" && v["level"] == "TRACE";
    }
    assert!(
        access && db,
        "the capture has the access log at debug ({access}) and the database traces ({db}): {} bytes",
        text.len()
    );
}

// ---------------------------------------------------------------------------------------------
// The scanner's own tests

/// A fake card number, CVV and tokens logged through the capture layer (privately: the
/// scans of the tests running meanwhile never see them) are all reported, and the same lines
/// without them are not.
#[test]
fn the_scanner_reports_what_is_logged_through_the_capture() {
    let pan = crate::server::random_pan();
    let spaced = pan
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    let mut secrets = Secrets::default();
    // The request that carried it, as the fuzz runner sees it.
    secrets.request(
        "/api/v3/paymentjs/demo-shop-public/tokenize",
        format!(r#"{{"number":"{spaced}","cvv":"123"}}"#).as_bytes(),
    );
    secrets.code("a two-factor code", "402913");
    let text = capture_privately(|| {
        let span = tracing::info_span!("request", request_id = "r-1", route = "/x");
        let _in = span.enter();
        tracing::debug!(target: "coffer::web", number = %pan, "a card number");
        tracing::trace!(target: "coffer::db", "database connection taken");
        tracing::debug!(target: "coffer::access", status = 200, "answered");
        tracing::debug!(body = %format!("{{\"cvv\":\"123\"}}"), "a body");
        tracing::debug!(code = 402913, token = "ix::abc", "two-factor");
        tracing::debug!("a span of another test: {spaced}");
    });
    assert_debug_lines(&text);
    let found: Vec<String> = secrets.find_in(&text).into_iter().map(|f| f.what).collect();
    for what in [
        format!("a card number ({pan})"),
        format!("a card number ({spaced})"),
        "a two-factor code (402913)".to_string(),
        "a ix:: token".to_string(),
        "a cvv value".to_string(),
    ] {
        assert!(
            found.contains(&what),
            "{what} not reported: {found:?}\n{text}"
        );
    }
    // The same lines without the secrets: nothing (a code inside a longer number is not one).
    let clean = capture_privately(|| {
        tracing::debug!(target: "coffer::web", number = "411111", "first six only");
        tracing::trace!(target: "coffer::db", wait_ms = 0.4029137, "database connection taken");
        tracing::debug!(target: "coffer::access", status = 200, ms = 14029130, "answered");
    });
    assert_debug_lines(&clean);
    let found = secrets.find_in(&clean);
    assert!(found.is_empty(), "{found:?}\n{clean}");
}

/// Nothing at debug captured, and the check says so.
#[test]
#[should_panic(expected = "the capture has the access log at debug")]
fn a_capture_without_debug_lines_fails() {
    let text = capture_privately(|| {
        tracing::error!(target: "coffer::web", "only an error");
    });
    assert_debug_lines(&text);
}

#[test]
fn card_numbers_are_found_as_sent() {
    let found = card_numbers(
        "a 4111 1111 1111 1111 b 5555-5555-5555-4444 c 4111111111111112 d 99999999999999999999 e 0000000000000000 f",
    );
    assert_eq!(found, ["4111 1111 1111 1111", "5555-5555-5555-4444"]);
    assert_eq!(
        percent_decode("4111%201111+1111%2D1111"),
        "4111 1111 1111-1111"
    );
}
