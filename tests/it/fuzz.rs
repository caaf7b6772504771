//! Property tests of every request parser and form, over HTTP against the real app with the demo
//! data: generated requests (structure-aware JSON built from each endpoint's real field names with
//! random types and values, byte-mutated JSON, raw random bytes, random query strings and path
//! segments) must never make the server answer 5xx or drop the connection (a panic).
//!
//! `COFFER_FUZZ_CASES` sets the number of cases per endpoint (default 200, so the suite stays
//! fast); `COFFER_FUZZ_SEED` replays a run (every failure message names its seed and case).
//! The generator is a seeded SplitMix64 of its own: each case's randomness depends only on the
//! seed, the endpoint's name and the case number, so one failing case can be replayed alone.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Map, Value, json};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Seeded randomness

#[derive(Clone)]
pub struct Rng(u64);

impl Rng {
    /// The generator of case `case` of `endpoint` in the run seeded `seed`.
    fn for_case(seed: u64, endpoint: &str, case: usize) -> Rng {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in endpoint.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        let mut r = Rng(seed ^ h ^ (case as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15));
        r.next_u64();
        r
    }

    /// SplitMix64.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `percent` / 100.
    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn cases() -> usize {
    std::env::var("COFFER_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

fn seed() -> u64 {
    std::env::var("COFFER_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        })
}

// ---------------------------------------------------------------------------------------------
// Value generators

/// Strings that tend to break parsers and validators, plus the real identifiers of the run.
pub struct Pool {
    strings: Vec<String>,
    /// Every field name of every endpoint: random keys are often real ones of another place.
    keys: Vec<String>,
}

const TRICKY: &[&str] = &[
    "",
    " ",
    "0",
    "-1",
    "1e309",
    "-0",
    "9.99",
    "0.001",
    "1.",
    ".5",
    "999999999999999999999",
    "null",
    "true",
    "NaN",
    "EUR",
    "JPY",
    "BHD",
    "XXX",
    "eur",
    "US",
    "BA",
    "xx",
    "1970-01-01",
    "2030-02-30",
    "0000-00-00",
    "2024-13-01T00:00:00Z",
    "M",
    "F",
    "x@y.z",
    "@",
    "a@b",
    "a@@b.c",
    "CP-",
    "pt::",
    "%",
    "%00",
    "%zz",
    "%FF%FE",
    "\0",
    "a\0b",
    "\u{7f}",
    "\u{feff}",
    "\u{202e}",
    "\u{fffd}",
    "😀",
    "ä",
    "Ž",
    "𝔘𝔫𝔦",
    "\r\n",
    "\t",
    "\\",
    "\"",
    "'",
    "' OR '1'='1",
    "'; DROP TABLE users; --",
    "<script>alert(1)</script>",
    "{{7*7}}",
    "../../etc/passwd",
    "customerData",
    "Creditcard",
    "4111111111111111",
    "4111 1111 1111 1111",
    "5555555555554444",
    "378282246310005",
    "4000000000000002",
    "123",
    "1234",
    "12",
    "13",
    "2030",
    "30",
    "99",
    "00",
    "tenant_manager",
    "merchant_admin",
    "platform_admin",
    "on",
    "false",
    "yes",
    "1",
    "customers",
    "payment-methods",
    "client_credentials",
    "creditcard",
    "sepa",
    "meta",
    "DE89370400440532013000",
    "COBADEFFXXX",
    "SINGLE",
    "INITIAL",
    "RECURRING",
    "https://example.com/cb",
    "javascript:alert(1)",
];

impl Pool {
    pub fn new(real: &[String], keys: &[&str]) -> Pool {
        let mut strings: Vec<String> = TRICKY.iter().map(|s| s.to_string()).collect();
        for n in [
            16, 20, 30, 32, 36, 37, 50, 51, 64, 65, 100, 101, 128, 129, 200, 201, 255, 256, 1025,
            8192, 8193,
        ] {
            strings.push("x".repeat(n));
        }
        strings.push("é".repeat(51));
        strings.push("9".repeat(40));
        strings.extend(real.iter().filter(|s| !s.is_empty()).cloned());
        Pool {
            strings,
            keys: keys.iter().map(|s| s.to_string()).collect(),
        }
    }

    pub fn string(&self, rng: &mut Rng) -> String {
        match rng.below(12) {
            0..=3 => rng.pick(&self.strings).clone(),
            4 => {
                let n = rng.below(40);
                (0..n)
                    .map(|_| char::from(0x20 + rng.below(95) as u8))
                    .collect()
            }
            5 => {
                let n = rng.below(20);
                (0..n).map(|_| random_char(rng)).collect()
            }
            6 => {
                let n = *rng.pick(&[0usize, 1, 35, 36, 37, 49, 50, 51, 100, 101, 300, 3000]);
                let c = random_char(rng);
                std::iter::repeat_n(c, n).collect()
            }
            7 => {
                let n = 1 + rng.below(25);
                (0..n)
                    .map(|_| char::from(b'0' + rng.below(10) as u8))
                    .collect()
            }
            8 => {
                let n = 1 + rng.below(6);
                (0..n).map(|_| char::from(rng.below(0x20) as u8)).collect()
            }
            9 => {
                // A pool string with one character changed, inserted or removed.
                let mut chars: Vec<char> = rng.pick(&self.strings).chars().collect();
                let at = rng.below(chars.len() + 1);
                match rng.below(3) {
                    0 if at < chars.len() => {
                        chars.remove(at);
                    }
                    1 if at < chars.len() => chars[at] = random_char(rng),
                    _ => chars.insert(at, random_char(rng)),
                }
                chars.into_iter().collect()
            }
            10 => format!(
                "{}{}",
                rng.pick(&self.strings),
                rng.pick(&self.strings).clone()
            ),
            _ => String::new(),
        }
    }

    pub fn key(&self, rng: &mut Rng) -> String {
        match rng.below(4) {
            0 | 1 => rng.pick(&self.keys).clone(),
            2 => self.string(rng),
            _ => {
                let k = rng.pick(&self.keys).clone();
                if rng.chance(50) {
                    k.to_uppercase()
                } else {
                    format!("{k} ")
                }
            }
        }
    }

    pub fn number(&self, rng: &mut Rng) -> Value {
        match rng.below(8) {
            0 => json!(0),
            1 => json!(rng.next_u64() as i64 % 100),
            2 => json!(i64::MIN),
            3 => json!(i64::MAX),
            4 => json!(u64::MAX),
            5 => json!(*rng.pick(&[1.5f64, -0.0, 1e308, 5e-324, 9.99, -9.99, 0.1])),
            6 => json!(rng.next_u64()),
            _ => json!(1 + rng.below(2100)),
        }
    }

    /// Any JSON value, nested at most `depth` deep.
    pub fn any(&self, rng: &mut Rng, depth: usize) -> Value {
        let top = if depth == 0 { 5 } else { 7 };
        match rng.below(top) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(50)),
            2 => self.number(rng),
            3 | 4 => Value::String(self.string(rng)),
            5 => Value::Array(
                (0..rng.below(5))
                    .map(|_| self.any(rng, depth - 1))
                    .collect(),
            ),
            _ => Value::Object(
                (0..rng.below(5))
                    .map(|_| (self.key(rng), self.any(rng, depth - 1)))
                    .collect(),
            ),
        }
    }

    /// A variation of `template`: the same field names with random subsets, random types and
    /// random values, so that validation past the JSON syntax is reached.
    pub fn vary(&self, rng: &mut Rng, template: &Value, depth: usize) -> Value {
        match rng.below(10) {
            0..=4 => match template {
                Value::Object(m) => Value::Object(self.vary_object(rng, m, depth)),
                Value::Array(a) if !a.is_empty() => Value::Array(
                    (0..rng.below(4))
                        .map(|_| {
                            let t = rng.pick(a).clone();
                            self.vary(rng, &t, depth.saturating_sub(1))
                        })
                        .collect(),
                ),
                Value::String(s) => Value::String(match rng.below(3) {
                    0 => s.clone(),
                    _ => self.string(rng),
                }),
                Value::Number(_) => self.number(rng),
                Value::Bool(_) => Value::Bool(rng.chance(50)),
                _ => self.any(rng, depth.min(2)),
            },
            5..=6 => template.clone(),
            _ => self.any(rng, depth.min(2)),
        }
    }

    fn vary_object(
        &self,
        rng: &mut Rng,
        m: &Map<String, Value>,
        depth: usize,
    ) -> Map<String, Value> {
        let keep_all = rng.chance(25);
        let mut out = Map::new();
        for (k, v) in m {
            if keep_all || rng.chance(60) {
                let v = if depth == 0 {
                    v.clone()
                } else {
                    self.vary(rng, v, depth - 1)
                };
                out.insert(k.clone(), v);
            }
        }
        if rng.chance(15) {
            for _ in 0..1 + rng.below(3) {
                out.insert(self.key(rng), self.any(rng, 1));
            }
        }
        out
    }

    /// `template` with one field, at any depth, removed, retyped or given another value: each
    /// validation rule meets a request that is otherwise valid.
    pub fn one_change(&self, rng: &mut Rng, template: &Value) -> Value {
        let mut v = template.clone();
        let mut at = &mut v;
        while let Value::Object(m) = at {
            if m.is_empty() {
                break;
            }
            let keys: Vec<String> = m.keys().cloned().collect();
            let k = rng.pick(&keys).clone();
            let nested = m.get(&k).is_some_and(|x| x.is_object());
            if nested && rng.chance(50) {
                at = m.get_mut(&k).expect("key");
                continue;
            }
            match rng.below(4) {
                0 => {
                    m.remove(&k);
                }
                1 => {
                    m.insert(k, self.any(rng, 2));
                }
                2 => {
                    m.insert(k, Value::String(self.string(rng)));
                }
                _ => {
                    m.insert(self.key(rng), self.any(rng, 1));
                }
            }
            break;
        }
        v
    }

    /// A request body for a JSON endpoint whose valid body looks like `template`.
    pub fn json_body(&self, rng: &mut Rng, template: &Value) -> Vec<u8> {
        match rng.below(100) {
            0..=24 => to_vec(&self.one_change(rng, template)),
            25..=54 => to_vec(&self.vary(rng, template, 4)),
            55..=64 => to_vec(&self.any(rng, 3)),
            65..=79 => {
                let v = self.vary(rng, template, 4);
                mutate_bytes(rng, to_vec(&v))
            }
            80..=89 => random_bytes(rng, 300),
            _ => tricky_json(rng, template),
        }
    }
}

fn to_vec(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

fn random_char(rng: &mut Rng) -> char {
    loop {
        let c = match rng.below(6) {
            0 => rng.below(0x80) as u32,
            1 => 0x80 + rng.below(0x780) as u32,
            2 => 0x800 + rng.below(0xf800) as u32,
            3 => 0x10000 + rng.below(0x100000) as u32,
            4 => *rng.pick(&[
                0u32, 0x7f, 0x85, 0xa0, 0x2028, 0x2029, 0xfeff, 0xfffe, 0x1f600,
            ]),
            _ => 0x20 + rng.below(95) as u32,
        };
        if let Some(c) = char::from_u32(c) {
            return c;
        }
    }
}

fn random_bytes(rng: &mut Rng, max: usize) -> Vec<u8> {
    let n = rng.below(max + 1);
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

/// Flips, inserts, deletes, duplicates or truncates a few bytes.
fn mutate_bytes(rng: &mut Rng, mut b: Vec<u8>) -> Vec<u8> {
    const INTERESTING: &[u8] = b"{}[]\":,\\0-.eE+ \x00\xff\xc3\xed";
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(b.len() + 1);
        match rng.below(5) {
            0 if at < b.len() => b[at] ^= 1 << rng.below(8),
            1 if at < b.len() => {
                b.remove(at);
            }
            2 => b.insert(at, *rng.pick(INTERESTING)),
            3 => b.truncate(at),
            _ if at < b.len() => {
                let end = (at + 1 + rng.below(16)).min(b.len());
                let piece = b[at..end].to_vec();
                b.splice(at..at, piece);
            }
            _ => b.push(rng.next_u64() as u8),
        }
    }
    b
}

/// Hand-made JSON texts at the edges of the grammar and of serde_json.
fn tricky_json(rng: &mut Rng, template: &Value) -> Vec<u8> {
    let first_key = template
        .as_object()
        .and_then(|m| m.keys().next().cloned())
        .unwrap_or_else(|| "k".into());
    let n = 1 + rng.below(5000);
    let texts: Vec<String> = vec![
        "[".repeat(n),
        format!("{}1{}", "[".repeat(n), "]".repeat(n)),
        format!(
            "{}{}",
            "{\"a\":".repeat(n.min(1000)),
            "}".repeat(n.min(1000))
        ),
        format!("{{\"{first_key}\":\"\\ud800\"}}"),
        format!("{{\"{first_key}\":\"\\udc00\\ud800\"}}"),
        format!("{{\"{first_key}\":\"\\u0000\"}}"),
        format!("{{\"\\u0000\":1,\"{first_key}\":1}}"),
        format!("{{\"{first_key}\":1e999999}}"),
        format!("{{\"{first_key}\":-1e-999999}}"),
        format!("{{\"{first_key}\":123456789012345678901234567890}}"),
        format!("{{\"{first_key}\":1,\"{first_key}\":2}}"),
        format!("{{\"{first_key}\":\"a\",}}"),
        format!("\u{feff}{}", template),
        format!("{} trailing", template),
        format!("{template}{template}"),
        template.to_string().replace(':', ": \u{a0}"),
        template.to_string().to_uppercase(),
        "null".into(),
        "\"just a string\"".into(),
        "0".into(),
        "[]".into(),
        "{}".into(),
        " \n\t ".into(),
        "{\"a\":\"\u{7}\"}".into(),
    ];
    rng.pick(&texts).clone().into_bytes()
}

/// Percent-encodes everything but unreserved characters, and sometimes leaves broken escapes.
pub fn encode_segment(rng: &mut Rng, s: &str) -> String {
    // `.` and `..` are resolved by the client before anything is sent.
    let s = if s == "." || s == ".." {
        format!("x{s}")
    } else {
        s.to_string()
    };
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if rng.chance(10) {
        const BROKEN: [&str; 8] = ["%", "%z", "%zz", "%0", "%C3", "%FF", "%2F", "%00"];
        out.push_str(BROKEN[rng.below(BROKEN.len())]);
    }
    out
}

/// A random query string over `keys` (real parameter names), valid-looking or broken.
pub fn query_string(rng: &mut Rng, pool: &Pool, keys: &[&str]) -> String {
    match rng.below(10) {
        0..=6 => {
            let mut pairs: Vec<(String, String)> = vec![];
            for _ in 0..rng.below(4) {
                let k = if rng.chance(80) && !keys.is_empty() {
                    rng.pick(keys).to_string()
                } else {
                    pool.key(rng)
                };
                pairs.push((k, pool.string(rng)));
            }
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        }
        7 | 8 => {
            let raw = String::from_utf8_lossy(&random_bytes(rng, 60)).into_owned();
            encode_segment(rng, &raw)
                .replace("%3D", "=")
                .replace("%26", "&")
        }
        _ => rng
            .pick(&[
                "&&&",
                "=",
                "==",
                "a=b=c",
                "%",
                "%zz=1",
                "x=%FF%FE",
                "=1&=2",
                "+",
                "%2B=%20",
                ";;",
                "before",
                "q",
                "tenant=",
                "merchant=&merchant=",
                "q=%00",
            ])
            .to_string(),
    }
}

/// A urlencoded form body over `fields` (name and likely values), with the CSRF token when
/// given, so that the handler's own parsing and validation is what gets exercised.
pub fn form_body(
    rng: &mut Rng,
    pool: &Pool,
    fields: &[(&str, Vec<String>)],
    csrf: Option<&str>,
) -> Vec<u8> {
    let token = csrf.map(|t| format!("csrf_token={t}"));
    let with_token = |body: Vec<u8>, rng: &mut Rng| -> Vec<u8> {
        match &token {
            None => body,
            Some(t) if rng.chance(50) || body.is_empty() => {
                let mut b = t.clone().into_bytes();
                b.push(b'&');
                b.extend(body);
                b
            }
            Some(t) => {
                let mut b = body;
                b.push(b'&');
                b.extend(t.as_bytes());
                b
            }
        }
    };
    match rng.below(100) {
        0..=64 => {
            let mut pairs: Vec<(String, String)> = vec![];
            for (name, likely) in fields {
                if rng.chance(75) {
                    let v = if !likely.is_empty() && rng.chance(45) {
                        rng.pick(likely).clone()
                    } else {
                        pool.string(rng)
                    };
                    pairs.push((name.to_string(), v));
                }
            }
            if rng.chance(10) {
                pairs.push((pool.key(rng), pool.string(rng)));
            }
            if rng.chance(5) && !pairs.is_empty() {
                let dup = rng.pick(&pairs).clone();
                pairs.push(dup);
            }
            let body = serde_urlencoded::to_string(&pairs)
                .unwrap_or_default()
                .into_bytes();
            let body = if rng.chance(20) {
                mutate_bytes(rng, body)
            } else {
                body
            };
            with_token(body, rng)
        }
        65..=84 => with_token(random_bytes(rng, 400), rng),
        _ => {
            let junk = rng
                .pick(&[
                    "&&&",
                    "=",
                    "a=b=c",
                    "%",
                    "%zz",
                    "%FF%FE=%C3",
                    "name",
                    "name=",
                    "=x",
                    "name=%00",
                    "active=%E2%80%AE",
                    "+++=+++",
                ])
                .as_bytes()
                .to_vec();
            with_token(junk, rng)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

/// One generated request.
pub struct Req {
    pub method: reqwest::Method,
    /// Path and query, already encoded.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub expect: Expect,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Expect {
    /// Anything below 500.
    No5xx,
    /// Below 500 and a JSON body (the API answers JSON, errors included).
    No5xxJson,
    /// Exactly this status.
    Status(u16),
}

impl Req {
    pub fn new(method: reqwest::Method, path: String, body: Vec<u8>, expect: Expect) -> Req {
        Req {
            method,
            path,
            headers: vec![],
            body,
            expect,
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Req {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

#[derive(Default)]
pub struct Stats {
    pub statuses: BTreeMap<u16, usize>,
    pub failures: Vec<String>,
}

impl Stats {
    /// How many answers had a status outside `statuses`.
    pub fn other_than(&self, statuses: &[u16]) -> usize {
        self.statuses
            .iter()
            .filter(|(s, _)| !statuses.contains(s))
            .map(|(_, n)| n)
            .sum()
    }
}

fn show(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(600)]).into_owned();
    format!("{s:?}{}", if b.len() > 600 { "…" } else { "" })
}

/// Sends `cases()` requests made by `make`, four at a time, and fails the test on any 5xx, any
/// broken connection, or any answer that breaks its case's expectation.
pub async fn run<F>(client: &reqwest::Client, base: &str, name: &str, make: F) -> Stats
where
    F: Fn(&mut Rng) -> Req + Send + Sync + 'static,
{
    // The server's error lines (the cause of a 5xx) in the test output.
    crate::secret_scan::init_tracing();
    let n = cases();
    let seed = seed();
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let stats = Arc::new(Mutex::new(Stats::default()));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let (make, next, stats) = (make.clone(), next.clone(), stats.clone());
        let (client, base, name) = (client.clone(), base.to_string(), name.to_string());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let mut rng = Rng::for_case(seed, &name, i);
                let req = make(&mut rng);
                let outcome = send(&client, &base, &req).await;
                let mut st = stats.lock().unwrap_or_else(|e| e.into_inner());
                let problem = match &outcome {
                    Err(e) => Some(format!("no answer: {e}")),
                    Ok(None) => None,
                    Ok(Some((status, ct, body))) => {
                        *st.statuses.entry(*status).or_default() += 1;
                        let ok = match req.expect {
                            Expect::No5xx => *status < 500,
                            Expect::No5xxJson => {
                                *status < 500
                                    && ct.starts_with("application/json")
                                    && serde_json::from_slice::<Value>(body).is_ok()
                            }
                            Expect::Status(s) => *status == s,
                        };
                        (!ok).then(|| {
                            format!(
                                "answered {status} ({ct}), expected {:?}: {}",
                                req.expect,
                                show(body)
                            )
                        })
                    }
                };
                if let Some(p) = problem
                    && st.failures.len() < 5
                {
                    st.failures.push(format!(
                        "[{name}] case {i} (COFFER_FUZZ_SEED={seed}): {} {} headers {:?} body {}\n    -> {p}",
                        req.method,
                        req.path,
                        req.headers,
                        show(&req.body)
                    ));
                }
            }
        });
    }
    while let Some(r) = tasks.join_next().await {
        if let Err(e) = r {
            std::panic::resume_unwind(e.into_panic());
        }
    }
    let st = std::mem::take(&mut *stats.lock().unwrap_or_else(|e| e.into_inner()));
    println!(
        "fuzz {name}: {n} cases in {:.1}s, statuses {:?}",
        started.elapsed().as_secs_f64(),
        st.statuses
    );
    assert!(
        st.failures.is_empty(),
        "{} failing case(s), first ones:\n{}",
        st.failures.len(),
        st.failures.join("\n")
    );
    st
}

async fn send(
    client: &reqwest::Client,
    base: &str,
    req: &Req,
) -> Result<Option<(u16, String, Vec<u8>)>, String> {
    let mut rb = client
        .request(req.method.clone(), format!("{base}{}", req.path))
        .timeout(Duration::from_secs(60));
    for (k, v) in &req.headers {
        match reqwest::header::HeaderValue::from_str(v) {
            Ok(hv) => rb = rb.header(k.as_str(), hv),
            // Not sendable as a header value: the case is skipped.
            Err(_) => return Ok(None),
        }
    }
    if !req.body.is_empty() || req.method == reqwest::Method::POST {
        rb = rb.body(req.body.clone());
    }
    let r = rb.send().await.map_err(|e| format!("{e:?}"))?;
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.bytes().await.map_err(|e| format!("{e:?}"))?.to_vec();
    crate::secret_scan::saw(base, &req.path, &req.body, &headers, &body);
    Ok(Some((status, ct, body)))
}

// ---------------------------------------------------------------------------------------------
// Demo data the generators draw on

pub fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

pub(crate) const JSON_CT: &str = "application/json; charset=utf-8";
const SHOP_BASIC: (&str, &str) = ("shop-api", "shop-api-demo");

/// What a registered Acme profile left behind: its identifiers are put into the pools.
pub struct Registered {
    pub guid: String,
    pub ident: String,
    pub payment_token: String,
    pub tx_uuid: String,
    pub mtid: String,
}

pub async fn post_json(
    app: &TestApp,
    path: &str,
    auth: Option<String>,
    body: &Value,
) -> (StatusCode, Value) {
    let sent = body.to_string();
    let mut r = app
        .client
        .post(app.url(path))
        .header("content-type", JSON_CT)
        .body(sent.clone());
    if let Some(a) = auth {
        r = r.header("authorization", a);
    }
    let r = r.send().await.expect("POST");
    let s = r.status();
    let headers = r.headers().clone();
    let answer = r.bytes().await.expect("body");
    crate::secret_scan::saw(&app.addr, path, sent.as_bytes(), &headers, &answer);
    (s, serde_json::from_slice(&answer).unwrap_or(Value::Null))
}

pub async fn card_token(app: &TestApp, public_key: &str, number: &str) -> String {
    let (s, v) = post_json(
        app,
        &format!("/api/v3/paymentjs/{public_key}/tokenize"),
        None,
        &json!({"cardHolder": "Ann Smith", "number": number, "cvv": "123", "month": "12", "year": "2030"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().expect("token").to_string()
}

/// Registers a card into profile `ident` of the shop's container (debit withRegister).
pub async fn register(app: &TestApp, ident: &str, customer: Value) -> Registered {
    let card = card_token(app, "demo-shop-public", "4111111111111111").await;
    let mtid = format!("order-{}", coffer::ids::random_hex(6));
    let body = json!({
        "merchantTransactionId": mtid, "amount": "9.99", "currency": "EUR",
        "transactionToken": card, "withRegister": true, "customer": customer,
        "customerProfileData": {"customerIdentification": ident, "markAsPreferred": true}
    });
    let (s, v) = post_json(
        app,
        "/api/v3/transaction/demo-shop-cards/debit",
        Some(basic(SHOP_BASIC.0, SHOP_BASIC.1)),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    let text = |p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("{p} in {v}"))
            .to_string()
    };
    Registered {
        guid: text("/customerProfileData/profileGuid"),
        ident: ident.to_string(),
        payment_token: text("/customerProfileData/paymentToken"),
        tx_uuid: text("/uuid"),
        mtid,
    }
}

/// Ids of every kind of console object, by table.
pub fn ids_of(app: &TestApp, table: &str, filter: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(format!("SELECT id FROM {table} {filter} ORDER BY id"))
        .load::<Row>(&mut *c)
        .expect("ids")
        .into_iter()
        .map(|r| r.id)
        .collect()
}

const TX_TYPES: [&str; 7] = [
    "debit",
    "preauthorize",
    "capture",
    "void",
    "register",
    "deregister",
    "refund",
];

pub(crate) fn customer_template() -> Value {
    json!({
        "identification": "c-1", "firstName": "Ann", "lastName": "Smith",
        "birthDate": "1970-01-01", "gender": "F", "billingAddress1": "Main St 1",
        "billingAddress2": "Flat 2", "billingCity": "Vienna", "billingPostcode": "1010",
        "billingState": "W", "billingCountry": "AT", "billingPhone": "+4312345",
        "shippingFirstName": "Ann", "shippingLastName": "Smith", "shippingCompany": "Acme",
        "shippingAddress1": "Main St 1", "shippingAddress2": "", "shippingCity": "Vienna",
        "shippingPostcode": "1010", "shippingState": "W", "shippingCountry": "AT",
        "shippingPhone": "+4312345", "company": "Acme", "email": "ann@example.com",
        "emailVerified": true, "ipAddress": "127.0.0.1", "nationalId": "123",
        "extraData": {"k": "v"},
        "paymentData": {"ibanData": {"iban": "DE89370400440532013000", "bic": "COBADEFFXXX",
                                      "mandateId": "m-1", "mandateDate": "2024-01-01"}}
    })
}

/// Replaced in every generated body by a value unique to the case, so that a valid request is
/// not refused as a duplicate merchantTransactionId.
pub(crate) const FRESH_MTID: &str = "order-FRESH";

pub(crate) fn with_fresh_mtid(rng: &mut Rng, body: Vec<u8>) -> Vec<u8> {
    let fresh = format!("order-{:011x}", rng.next_u64() >> 20);
    let needle = FRESH_MTID.as_bytes();
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(needle) {
            out.extend_from_slice(fresh.as_bytes());
            i += needle.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

/// A valid request of each transaction type, every optional field set, against the demo data:
/// `pay` is a reusable payment token, `card` a card token, `preauth` a preauthorization
/// (captured and voided), `debit` a debit (refunded), `dereg` a payment token to deregister.
struct TxBases {
    pay: String,
    card: String,
    preauth: String,
    debit: String,
    dereg: String,
    ident: String,
}

fn tx_template(kind: &str, b: &TxBases) -> Value {
    let mut common = json!({
        "merchantTransactionId": FRESH_MTID, "additionalId1": "a1", "additionalId2": "a2",
        "extraData": {"k": "v"}, "merchantMetaData": "meta",
        "successUrl": "https://example.com/s", "cancelUrl": "https://example.com/c",
        "errorUrl": "https://example.com/e", "callbackUrl": "https://example.com/cb",
        "description": "order", "language": "en"
    });
    let specific = match kind {
        "debit" | "preauthorize" => json!({
            "amount": "9.99", "currency": "EUR", "transactionToken": b.pay,
            "transactionIndicator": "SINGLE", "customer": customer_template(),
            "threeDSecureData": {"3dsecure": "OPTIONAL"}
        }),
        "capture" => json!({"amount": "0.01", "currency": "EUR", "referenceUuid": b.preauth}),
        "void" => json!({"referenceUuid": b.preauth}),
        "refund" => json!({"amount": "0.01", "currency": "EUR", "referenceUuid": b.debit}),
        "register" => json!({
            "transactionToken": b.card, "customer": customer_template(),
            "customerProfileData": {"customerIdentification": b.ident, "markAsPreferred": true}
        }),
        "deregister" => json!({"transactionToken": b.dereg}),
        _ => json!({}),
    };
    if let (Some(c), Some(s)) = (common.as_object_mut(), specific.as_object()) {
        c.extend(s.clone());
    }
    common
}

fn profile_template(r: &Registered) -> Value {
    // customerIdentification is in the pool; a request may name only one of the two.
    json!({
        "profileGuid": r.guid,
        "customerData": {"_TYPE": "customerData", "firstName": "Ann", "lastName": "Smith",
            "birthDate": "1970-01-01", "gender": "F", "billingAddress1": "Main St 1",
            "billingAddress2": "Flat 2", "billingCity": "Vienna", "billingPostcode": "1010",
            "billingState": "W", "billingCountry": "AT", "billingPhone": "+4312345",
            "company": "Acme", "email": "ann@example.com", "ipAddress": "127.0.0.1",
            "nationalId": "123", "extraData": {"k": "v"}},
        "preferredInstrument": r.payment_token
    })
}

pub(crate) fn tokenize_template() -> Value {
    json!({"cardHolder": "Ann Smith", "number": "4111111111111111", "cvv": "123",
           "month": "12", "year": "2030"})
}

fn monri_customer_template() -> Value {
    json!({
        "merchant_customer_id": FRESH_MTID, "description": "Customer", "email": "email@email.com",
        "name": "Test Person", "phone": "+38733", "metadata": {"key": "value"},
        "zip_code": "71000", "city": "Sarajevo", "address": "Main St 1", "country": "BA",
        "uuid": "x", "id": "x", "status": "approved", "deleted": false,
        "created_at": "2024-01-01T00:00:00Z", "updated_at": "x", "deleted_at": null
    })
}

fn all_keys(templates: &[Value]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    out.push(k.clone());
                    walk(v, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = vec![];
    templates.iter().for_each(|t| walk(t, &mut out));
    out.sort();
    out.dedup();
    out
}

pub(crate) fn pool_with(real: &[String], templates: &[Value], extra_keys: &[&str]) -> Arc<Pool> {
    let keys = all_keys(templates);
    let mut k: Vec<&str> = keys.iter().map(String::as_str).collect();
    k.extend_from_slice(extra_keys);
    Arc::new(Pool::new(real, &k))
}

// ---------------------------------------------------------------------------------------------
// IXOPAY-compatible APIs

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_transaction_api_never_answers_5xx() {
    let (scan, app) =
        crate::secret_scan::Scan::demo_in_transit_mode("the transaction API's secret scan").await;
    let r = register(&app, "fuzz-c-1", json!({"firstName": "Ann"})).await;
    let r2 = register(&app, "fuzz-c-1b", json!({"firstName": "Bob"})).await;
    let auth = basic(SHOP_BASIC.0, SHOP_BASIC.1);
    let path = |kind: &str| format!("/api/v3/transaction/demo-shop-cards/{kind}");
    let fresh = |v: Value| {
        let mut v = v;
        v["merchantTransactionId"] = json!(format!("order-{}", coffer::ids::random_hex(6)));
        v
    };
    let mut bases = TxBases {
        pay: r.payment_token.clone(),
        card: String::new(),
        preauth: String::new(),
        debit: r.tx_uuid.clone(),
        dereg: r2.payment_token.clone(),
        ident: "fuzz-c-1".into(),
    };
    let (s, v) = post_json(
        &app,
        &path("preauthorize"),
        Some(auth.clone()),
        &fresh(tx_template("preauthorize", &bases)),
    )
    .await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    bases.preauth = v["uuid"].as_str().expect("uuid").to_string();
    // Each base request is valid as it stands (register consumes its card token: a fresh one
    // is put in for the fuzzing).
    for kind in TX_TYPES {
        if kind == "void" || kind == "deregister" {
            continue; // They would use up the preauthorization and the instrument.
        }
        bases.card = card_token(&app, "demo-shop-public", "4111111111111111").await;
        let (s, v) = post_json(
            &app,
            &path(kind),
            Some(auth.clone()),
            &fresh(tx_template(kind, &bases)),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{kind}: {v}");
        assert_eq!(v["success"], true, "{kind}: {v}");
    }
    bases.card = card_token(&app, "demo-shop-public", "4111111111111111").await;
    let mut real = vec![
        r.guid.clone(),
        r.ident.clone(),
        r.payment_token.clone(),
        r.tx_uuid.clone(),
        r.mtid.clone(),
        bases.preauth.clone(),
        r2.payment_token.clone(),
    ];
    for _ in 0..8 {
        real.push(card_token(&app, "demo-shop-public", "4111111111111111").await);
    }
    let templates: Vec<Value> = TX_TYPES.iter().map(|k| tx_template(k, &bases)).collect();
    let template = tx_template("debit", &bases);
    let pool = pool_with(&real, &templates, &TX_TYPES);
    for kind in TX_TYPES {
        let template = tx_template(kind, &bases);
        let (pool, auth) = (pool.clone(), auth.clone());
        let st = run(&app.client, &app.addr, &format!("tx-{kind}"), move |rng| {
            let body = pool.json_body(rng, &template);
            let body = with_fresh_mtid(rng, body);
            Req::new(
                reqwest::Method::POST,
                format!("/api/v3/transaction/demo-shop-cards/{kind}"),
                body,
                Expect::No5xxJson,
            )
            .header("authorization", auth.clone())
            .header("content-type", JSON_CT)
        })
        .await;
        assert!(
            st.other_than(&[401]) > 0,
            "tx-{kind}: no case got past authentication: {:?}",
            st.statuses
        );
    }
    // Random transaction types and connector keys in the path.
    let (p, t, a) = (pool.clone(), template.clone(), auth.clone());
    run(&app.client, &app.addr, "tx-path", move |rng| {
        let key = if rng.chance(50) {
            "demo-shop-cards".to_string()
        } else {
            {
                let s = p.string(rng);
                encode_segment(rng, &s)
            }
        };
        let kind = {
            let s = p.string(rng);
            encode_segment(rng, &s)
        };
        Req::new(
            reqwest::Method::POST,
            format!("/api/v3/transaction/{key}/{kind}"),
            p.json_body(rng, &t),
            Expect::No5xx,
        )
        .header("authorization", a.clone())
    })
    .await;
    // Random credentials and signature headers (demo-shop-signed requires a signature).
    let (p, t) = (pool.clone(), template.clone());
    let st = run(&app.client, &app.addr, "tx-auth", move |rng| {
        let key = *rng.pick(&["demo-shop-cards", "demo-shop-signed"]);
        let creds = match rng.below(5) {
            0 => format!("Basic {}", p.string(rng)),
            1 => basic(&p.string(rng), &p.string(rng)),
            2 => basic("shop-api", &p.string(rng)),
            3 => format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(random_bytes(rng, 80))
            ),
            _ => basic(SHOP_BASIC.0, SHOP_BASIC.1),
        };
        let mut req = Req::new(
            reqwest::Method::POST,
            format!("/api/v3/transaction/{key}/debit"),
            p.json_body(rng, &t),
            Expect::No5xxJson,
        )
        .header("authorization", printable(&creds));
        if rng.chance(60) {
            req = req.header(
                "x-signature",
                printable(&format!("{}:{}", p.string(rng), p.string(rng))),
            );
        }
        if rng.chance(60) {
            let date = match rng.below(3) {
                0 => chrono::Utc::now()
                    .format("%a, %d %b %Y %H:%M:%S GMT")
                    .to_string(),
                1 => "Tue, 28 Apr 2026 15:23:40 UTC".to_string(),
                _ => p.string(rng),
            };
            let name = *rng.pick(&["date", "x-date"]);
            req = req.header(name, printable(&date));
        }
        req
    })
    .await;
    assert!(
        st.other_than(&[401]) > 0,
        "tx-auth: every answer was 401: {:?}",
        st.statuses
    );
    scan.finish(&app).await;
}

/// Keeps the characters a header value may carry.
pub fn printable(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) || *c == '\t')
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_profiles_and_status_apis_never_answer_5xx() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    let r = register(&app, "fuzz-c-2", json!({"firstName": "Ann"})).await;
    let r2 = register(&app, "fuzz-c-3", json!({"firstName": "Bob"})).await;
    let real = vec![
        r.guid.clone(),
        r.ident.clone(),
        r.payment_token.clone(),
        r2.guid.clone(),
        r2.payment_token.clone(),
        r.tx_uuid.clone(),
        r.mtid.clone(),
    ];
    let template = profile_template(&r);
    let pool = pool_with(&real, std::slice::from_ref(&template), &[]);
    let auth = basic(SHOP_BASIC.0, SHOP_BASIC.1);
    // The base body is valid as it stands.
    let (s, v) = post_json(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/updateProfile",
        Some(auth.clone()),
        &template,
    )
    .await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    // deleteProfile last: it removes the profiles the others aim at.
    for op in ["getProfile", "updateProfile", "deleteProfile"] {
        let (pool, template, auth) = (pool.clone(), template.clone(), auth.clone());
        let st = run(
            &app.client,
            &app.addr,
            &format!("profiles-{op}"),
            move |rng| {
                Req::new(
                    reqwest::Method::POST,
                    format!("/api/v3/customerProfiles/demo-shop-cards/{op}"),
                    pool.json_body(rng, &template),
                    Expect::No5xxJson,
                )
                .header("authorization", auth.clone())
                .header("content-type", JSON_CT)
            },
        )
        .await;
        assert!(st.other_than(&[401]) > 0, "{op}: {:?}", st.statuses);
    }
    for (op, real_id) in [
        ("getByUuid", r.tx_uuid.clone()),
        ("getByMerchantTransactionId", r.mtid.clone()),
    ] {
        let (pool, auth) = (pool.clone(), auth.clone());
        let st = run(
            &app.client,
            &app.addr,
            &format!("status-{op}"),
            move |rng| {
                let id = if rng.chance(20) {
                    real_id.clone()
                } else {
                    pool.string(rng)
                };
                let id = encode_segment(rng, &id);
                let key = if rng.chance(90) {
                    "demo-shop-cards".to_string()
                } else {
                    {
                        let s = pool.string(rng);
                        encode_segment(rng, &s)
                    }
                };
                let expect = if id.is_empty() || key.is_empty() {
                    Expect::No5xx
                } else {
                    Expect::No5xxJson
                };
                Req::new(
                    reqwest::Method::GET,
                    format!("/api/v3/status/{key}/{op}/{id}"),
                    vec![],
                    expect,
                )
                .header("authorization", auth.clone())
            },
        )
        .await;
        assert!(
            st.statuses.contains_key(&200),
            "{op}: ids answer 200 (unknown ones with 8001): {:?}",
            st.statuses
        );
    }
    scan.finish(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_tokenize_never_answers_5xx() {
    let (scan, app) =
        crate::secret_scan::Scan::demo_in_transit_mode("tokenize's secret scan").await;
    let template = tokenize_template();
    let pool = pool_with(&[], std::slice::from_ref(&template), &[]);
    let p = pool.clone();
    let st = run(&app.client, &app.addr, "tokenize", move |rng| {
        let key = if rng.chance(90) {
            "demo-shop-public".to_string()
        } else {
            {
                let s = p.string(rng);
                encode_segment(rng, &s)
            }
        };
        let expect = if key.is_empty() {
            Expect::No5xx
        } else {
            Expect::No5xxJson
        };
        let mut req = Req::new(
            reqwest::Method::POST,
            format!("/api/v3/paymentjs/{key}/tokenize"),
            p.json_body(rng, &template),
            expect,
        );
        if rng.chance(80) {
            req = req.header("content-type", *rng.pick(&[JSON_CT, "text/plain", "x/y"]));
        }
        req
    })
    .await;
    assert!(st.statuses.contains_key(&200), "{:?}", st.statuses);
    assert!(st.statuses.contains_key(&400), "{:?}", st.statuses);
    scan.finish(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Monri-compatible Customers API v2

const MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const MONRI_KEY: &str = "demo-shop-merchant-key";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_monri_api_never_answers_5xx() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    let r = register(
        &app,
        "fuzz-m-1",
        json!({"firstName": "Ann", "email": "a@b.cd"}),
    )
    .await;
    let oauth_body = json!({"client_id": MONRI_TOKEN, "client_secret": MONRI_KEY,
                            "grant_type": "client_credentials",
                            "scopes": ["customers", "payment-methods"]});
    let bearer = async || {
        let (s, v) = post_json(&app, "/v2/oauth", None, &oauth_body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        format!("Bearer {}", v["access_token"].as_str().expect("token"))
    };
    let token = bearer().await;
    let r2 = app
        .client
        .get(app.url("/v2/merchants/customers/fuzz-m-1"))
        .header("authorization", token.clone())
        .send()
        .await
        .expect("GET");
    assert_eq!(r2.status(), StatusCode::OK);
    let uuid = r2.json::<Value>().await.expect("json")["uuid"]
        .as_str()
        .expect("uuid")
        .to_string();
    let customer = monri_customer_template();
    // The base body is valid as it stands.
    let mut base = customer.clone();
    base["merchant_customer_id"] = json!("fuzz-base-1");
    let r0 = app
        .client
        .post(app.url("/v2/customers"))
        .header("authorization", token.clone())
        .json(&base)
        .send()
        .await
        .expect("POST");
    assert_eq!(
        r0.status(),
        StatusCode::OK,
        "{}",
        r0.text().await.unwrap_or_default()
    );
    let real = vec![
        uuid.clone(),
        r.ident.clone(),
        MONRI_TOKEN.into(),
        MONRI_KEY.into(),
        r.guid.clone(),
    ];
    let pool = pool_with(
        &real,
        &[customer.clone(), oauth_body.clone()],
        &["limit", "offset"],
    );

    let (p, t) = (pool.clone(), oauth_body.clone());
    let st = run(&app.client, &app.addr, "monri-oauth", move |rng| {
        Req::new(
            reqwest::Method::POST,
            "/v2/oauth".into(),
            p.json_body(rng, &t),
            Expect::No5xxJson,
        )
        .header("content-type", "application/json")
    })
    .await;
    assert!(st.statuses.contains_key(&400), "{:?}", st.statuses);

    // (name, method, path maker, body?) with a fresh token each: it lives 15 minutes.
    type PathFn = fn(&mut Rng, &Pool, &str) -> String;
    let targets: Vec<(&str, reqwest::Method, PathFn, bool)> = vec![
        (
            "monri-create",
            reqwest::Method::POST,
            |_, _, _| "/v2/customers".into(),
            true,
        ),
        (
            "monri-list",
            reqwest::Method::GET,
            |rng, p, _| {
                format!(
                    "/v2/customers?{}",
                    query_string(rng, p, &["limit", "offset"])
                )
            },
            false,
        ),
        (
            "monri-get",
            reqwest::Method::GET,
            |rng, p, u| format!("/v2/customers/{}", seg(rng, p, u)),
            false,
        ),
        (
            "monri-payment-methods",
            reqwest::Method::GET,
            |rng, p, u| {
                format!(
                    "/v2/customers/{}/payment-methods?{}",
                    seg(rng, p, u),
                    query_string(rng, p, &["limit", "offset"])
                )
            },
            false,
        ),
        (
            "monri-merchant-payment-methods",
            reqwest::Method::GET,
            |rng, p, _| {
                format!(
                    "/v2/payment-methods?{}",
                    query_string(rng, p, &["limit", "offset"])
                )
            },
            false,
        ),
        (
            "monri-by-merchant-id",
            reqwest::Method::GET,
            |rng, p, _| format!("/v2/merchants/customers/{}", seg(rng, p, "fuzz-m-1")),
            false,
        ),
        (
            "monri-update",
            reqwest::Method::POST,
            |rng, p, u| format!("/v2/customers/{}", seg(rng, p, u)),
            true,
        ),
        (
            "monri-delete",
            reqwest::Method::DELETE,
            |rng, p, u| format!("/v2/customers/{}", seg(rng, p, u)),
            false,
        ),
    ];
    for (name, method, path, with_body) in targets {
        let token = bearer().await;
        let (p, t, u) = (pool.clone(), customer.clone(), uuid.clone());
        let st = run(&app.client, &app.addr, name, move |rng| {
            let path = path(rng, &p, &u);
            let body = if with_body {
                let b = p.json_body(rng, &t);
                with_fresh_mtid(rng, b)
            } else if rng.chance(10) {
                random_bytes(rng, 100)
            } else {
                vec![]
            };
            let expect = if path.ends_with('/') || path.contains("//") {
                Expect::No5xx
            } else {
                Expect::No5xxJson
            };
            Req::new(method.clone(), path, body, expect)
                .header("authorization", token.clone())
                .header("content-type", "application/json")
        })
        .await;
        assert!(
            st.other_than(&[401, 403]) > 0,
            "{name}: no case got past authentication: {:?}",
            st.statuses
        );
    }

    // Random Authorization headers: WP3-v2.1 digests with random parts, bearer tokens, junk.
    let p = pool.clone();
    let st = run(&app.client, &app.addr, "monri-auth", move |rng| {
        let body = if rng.chance(50) {
            p.json_body(rng, &monri_customer_template())
        } else {
            vec![]
        };
        let ts = match rng.below(3) {
            0 => chrono::Utc::now().timestamp().to_string(),
            1 => p.number(rng).to_string(),
            _ => p.string(rng),
        };
        let header = match rng.below(6) {
            0 => format!("WP3-v2.1 {MONRI_TOKEN} {ts} {}", p.string(rng)),
            1 => format!("WP3-v2.1 {} {ts} {}", p.string(rng), "a".repeat(128)),
            2 => format!("WP3-v2.1 {}", p.string(rng)),
            3 => format!("Bearer {}", p.string(rng)),
            4 => format!("{} {}", p.string(rng), p.string(rng)),
            _ => p.string(rng),
        };
        let method = if body.is_empty() {
            reqwest::Method::GET
        } else {
            reqwest::Method::POST
        };
        Req::new(method, "/v2/customers".into(), body, Expect::No5xxJson)
            .header("authorization", printable(&header))
    })
    .await;
    assert!(st.statuses.contains_key(&401), "{:?}", st.statuses);
    scan.finish(&app).await;
}

fn seg(rng: &mut Rng, p: &Pool, real: &str) -> String {
    if rng.chance(30) {
        real.to_string()
    } else {
        {
            let s = p.string(rng);
            encode_segment(rng, &s)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The console

/// A console target: a POST form (path with `{id}` standing for an object id) and its fields.
struct Form {
    path: &'static str,
    ids: Vec<String>,
    fields: Vec<(&'static str, Vec<String>)>,
}

struct ConsoleIds {
    tenants: Vec<String>,
    merchants: Vec<String>,
    users: Vec<String>,
    containers: Vec<String>,
    profiles: Vec<String>,
    connectors: Vec<String>,
    api_users: Vec<String>,
    transactions: Vec<String>,
}

/// `path` with its id placeholder (`{id}` or `{uuid}`) replaced.
fn fill(path: &str, id: &str) -> String {
    path.replace("{id}", id).replace("{uuid}", id)
}

/// The transaction list's filters (the page and its CSV export).
const TX_FILTERS: &[&str] = &[
    "merchant",
    "connector",
    "profile",
    "type",
    "status",
    "from",
    "to",
    "after",
    "limit",
];

/// Console pages that read a query string, with their parameters.
const QUERY_PAGES: [(&str, &[&str]); 9] = [
    (
        "/audit",
        &["before", "profile", "actor", "action", "kind", "from", "to"],
    ),
    (
        "/audit.csv",
        &["before", "profile", "actor", "action", "kind", "from", "to"],
    ),
    ("/transactions", TX_FILTERS),
    ("/transactions.csv", TX_FILTERS),
    ("/containers/{id}", &["q", "before", "after"]),
    ("/profiles", &["q", "before", "after"]),
    ("/containers", &["tenant"]),
    ("/global-settings", &["tenant"]),
    ("/api-users", &["merchant"]),
];

/// Console pages with an id in the path (besides `/containers/{id}` above).
const ID_PAGES: [&str; 13] = [
    "/tenants/{id}",
    "/tenants/{id}/delete",
    "/tenants/{id}/erase",
    "/merchants/{id}",
    "/merchants/{id}/deactivate",
    "/users/{id}",
    "/users/{id}/deactivate",
    "/containers/{id}/delete",
    "/profiles/{id}",
    "/profiles/{id}/delete",
    "/connectors/{id}",
    "/connectors/{id}/lifecycle-events",
    "/transactions/{uuid}",
];

/// Console pages without parameters: a query string there is ignored, so there is nothing
/// to fuzz; they are listed so that the coverage check below knows them.
const NO_INPUT_PAGES: [&str; 16] = [
    "/vault",
    "/healthz",
    "/readyz",
    "/docs/api",
    "/openapi/ixopay.json",
    "/openapi/monri.json",
    "/",
    "/login",
    "/login/two-factor",
    "/account/password",
    "/account/two-factor",
    "/tenants",
    "/merchants",
    "/users",
    "/users/new",
    "/connectors",
];

/// The API routes the tests above fuzz (the CORS preflight takes no input).
const FUZZED_API: [(&str, &str); 14] = [
    ("POST", "/api/v3/transaction/{api_key}/{tx_type}"),
    ("POST", "/api/v3/customerProfiles/{api_key}/{op}"),
    ("GET", "/api/v3/status/{api_key}/getByUuid/{uuid}"),
    (
        "GET",
        "/api/v3/status/{api_key}/getByMerchantTransactionId/{id}",
    ),
    ("POST", "/api/v3/paymentjs/{public_key}/tokenize"),
    ("POST", "/v2/oauth"),
    ("POST", "/v2/customers"),
    ("GET", "/v2/customers"),
    ("GET", "/v2/customers/{uuid}"),
    ("POST", "/v2/customers/{uuid}"),
    ("DELETE", "/v2/customers/{uuid}"),
    ("GET", "/v2/customers/{uuid}/payment-methods"),
    ("GET", "/v2/merchants/customers/{merchant_customer_id}"),
    ("GET", "/v2/payment-methods"),
];
const NO_INPUT_API: [(&str, &str); 1] = [("OPTIONS", "/api/v3/paymentjs/{public_key}/tokenize")];
/// The hosted payment page and 3-D Secure routes, fuzzed by `fuzz_payment_pages_never_answer_5xx`.
const PAYMENT_PAGES: [(&str, &str); 5] = [
    ("GET", "/pay/{token}"),
    ("POST", "/pay/{token}"),
    ("POST", "/pay/{token}/cancel"),
    ("GET", "/3ds/{token}"),
    ("POST", "/3ds/{token}"),
];

impl ConsoleIds {
    /// The ids of the kind a console path names.
    fn for_path(&self, path: &str) -> Vec<String> {
        if !path.contains("{id}") && !path.contains("{uuid}") {
            return vec![];
        }
        let kind = path.split('/').nth(1).unwrap_or("");
        match kind {
            "tenants" => &self.tenants,
            "merchants" => &self.merchants,
            "users" => &self.users,
            "containers" => &self.containers,
            "profiles" => &self.profiles,
            "connectors" => &self.connectors,
            "api-users" => &self.api_users,
            "transactions" => &self.transactions,
            _ => panic!("no ids for {path}"),
        }
        .clone()
    }

    fn load(app: &TestApp) -> ConsoleIds {
        ConsoleIds {
            tenants: ids_of(app, "tenants", ""),
            merchants: ids_of(app, "merchants", ""),
            // Not admin's own: resetting its password would end the fuzzing session.
            users: ids_of(app, "users", "WHERE username <> 'admin'"),
            containers: ids_of(app, "containers", ""),
            profiles: ids_of(app, "profiles", ""),
            connectors: ids_of(app, "connectors", ""),
            api_users: ids_of(app, "api_users", ""),
            transactions: ids_of(app, "(SELECT uuid AS id FROM transactions) t", ""),
        }
    }

    fn all(&self) -> Vec<String> {
        [
            &self.tenants,
            &self.merchants,
            &self.users,
            &self.containers,
            &self.profiles,
            &self.connectors,
            &self.api_users,
            &self.transactions,
        ]
        .into_iter()
        .flatten()
        .cloned()
        .collect()
    }
}

fn plus(a: &[String], b: &[&str]) -> Vec<String> {
    a.iter()
        .cloned()
        .chain(b.iter().map(|s| s.to_string()))
        .collect()
}

/// Every console POST form, in an order where the destructive ones come last.
fn console_forms(ids: &ConsoleIds) -> Vec<Form> {
    let yes_no = vec!["true".into(), "false".into(), "on".into(), "".into()];
    let roles = vec![
        "tenant_manager".into(),
        "merchant_admin".into(),
        "platform_admin".into(),
    ];
    let adapters = vec!["creditcard".into(), "sepa".into(), "meta".into()];
    let t = ids.tenants.clone();
    let m = ids.merchants.clone();
    let c = ids.containers.clone();
    let k = ids.connectors.clone();
    vec![
        Form {
            path: "/account/password",
            ids: vec![],
            fields: vec![
                ("current_password", vec!["wrong-password".into()]),
                ("new_password", vec!["a-new-password-123".into()]),
                ("confirm_password", vec!["a-new-password-123".into()]),
            ],
        },
        Form {
            path: "/account/two-factor/setup",
            ids: vec![],
            fields: vec![],
        },
        Form {
            path: "/account/two-factor/enable",
            ids: vec![],
            fields: vec![("code", vec!["123456".into(), "12 34 56".into()])],
        },
        Form {
            path: "/account/two-factor/disable",
            ids: vec![],
            fields: vec![("code", vec!["123456".into(), "abcd-efgh-ijkl".into()])],
        },
        Form {
            path: "/tenants",
            ids: vec![],
            fields: vec![
                ("name", vec!["Fuzz Tenant".into()]),
                ("parent_id", t.clone()),
            ],
        },
        Form {
            path: "/tenants/{id}",
            ids: t.clone(),
            fields: vec![
                ("name", vec!["Renamed".into()]),
                ("disable_containers_for_subtenants", yes_no.clone()),
                ("require_two_factor", yes_no.clone()),
            ],
        },
        Form {
            path: "/merchants",
            ids: vec![],
            fields: vec![("tenant_id", t.clone()), ("name", vec!["Fuzz Shop".into()])],
        },
        Form {
            path: "/merchants/{id}",
            ids: m.clone(),
            fields: vec![("name", vec!["Renamed Shop".into()])],
        },
        Form {
            path: "/merchants/{id}/active",
            ids: m.clone(),
            fields: vec![("active", yes_no.clone())],
        },
        Form {
            path: "/users",
            ids: vec![],
            fields: vec![
                ("username", vec!["fuzz-user".into()]),
                ("role", roles),
                ("tenant_id", t.clone()),
                ("merchant_id", m.clone()),
                ("password", vec!["fuzz-password-123".into()]),
            ],
        },
        Form {
            path: "/users/{id}/active",
            ids: ids.users.clone(),
            fields: vec![("active", yes_no.clone())],
        },
        Form {
            path: "/users/{id}/reset-password",
            ids: ids.users.clone(),
            fields: vec![],
        },
        Form {
            path: "/users/{id}/reset-two-factor",
            ids: ids.users.clone(),
            fields: vec![],
        },
        Form {
            path: "/containers",
            ids: vec![],
            fields: vec![("tenant_id", t.clone()), ("name", vec!["Fuzz Box".into()])],
        },
        Form {
            path: "/containers/{id}",
            ids: c.clone(),
            fields: vec![("name", vec!["Renamed Box".into()])],
        },
        Form {
            path: "/global-settings",
            ids: vec![],
            fields: vec![("tenant_id", t.clone()), ("container_id", c.clone())],
        },
        Form {
            path: "/connectors",
            ids: vec![],
            fields: vec![
                ("merchant_id", m.clone()),
                ("name", vec!["Fuzz Cards".into()]),
                ("adapter", adapters),
            ],
        },
        Form {
            path: "/connectors/{id}",
            ids: k.clone(),
            fields: vec![
                ("name", vec!["Renamed Cards".into()]),
                ("container_id", plus(&c, &[""])),
                ("ignore_global", yes_no.clone()),
                ("signing", yes_no.clone()),
                ("active", yes_no.clone()),
                ("members", k.clone()),
                (
                    "lifecycle_webhook_url",
                    vec![
                        String::new(),
                        "https://hooks.example.com/coffer".into(),
                        "ftp://x".into(),
                        "http://10.0.0.1/x".into(),
                    ],
                ),
                (
                    "expiry_notice_days",
                    vec![String::new(), "30".into(), "366".into(), "-1".into()],
                ),
            ],
        },
        Form {
            // `{event}` stays as written: no event has it (a 404, or 403 without the token).
            path: "/connectors/{id}/lifecycle-events/{event}/redeliver",
            ids: k.clone(),
            fields: vec![],
        },
        Form {
            path: "/containers/{id}/account-updater",
            ids: c.clone(),
            fields: vec![("confirmed", vec!["yes".into(), String::new()])],
        },
        Form {
            path: "/connectors/{id}/rotate-secret",
            ids: k.clone(),
            fields: vec![],
        },
        Form {
            path: "/connectors/{id}/rotate-monri-key",
            ids: k.clone(),
            fields: vec![],
        },
        Form {
            // `{uuid}` stays as written: no transaction has it, so every case is a 404 (with
            // the token) or a 403 (without), never a 5xx.
            path: "/transactions/{uuid}/callbacks/{id}/retry",
            ids: vec![],
            fields: vec![],
        },
        Form {
            path: "/api-users",
            ids: vec![],
            fields: vec![
                ("merchant_id", m.clone()),
                ("username", vec!["fuzz-api".into()]),
            ],
        },
        Form {
            path: "/api-users/{id}/active",
            ids: ids.api_users.clone(),
            fields: vec![("active", yes_no.clone())],
        },
        Form {
            path: "/api-users/{id}/reset-password",
            ids: ids.api_users.clone(),
            fields: vec![],
        },
        Form {
            path: "/profiles/{id}/delete",
            ids: ids.profiles.clone(),
            fields: vec![],
        },
        Form {
            // `{instrument}` stays as written: no instrument has it (a 404, or 403 without the
            // token), whatever the profile.
            path: "/profiles/{id}/instruments/{instrument}/preferred",
            ids: ids.profiles.clone(),
            fields: vec![("confirmed", vec!["yes".into(), String::new()])],
        },
        Form {
            path: "/profiles/{id}/instruments/{instrument}/delete",
            ids: ids.profiles.clone(),
            fields: vec![("confirmed", vec!["yes".into(), String::new()])],
        },
        Form {
            path: "/containers/{id}/delete",
            ids: c,
            fields: vec![],
        },
        Form {
            path: "/tenants/{id}/delete",
            ids: t.clone(),
            fields: vec![],
        },
        Form {
            path: "/vault/rotate",
            ids: vec![],
            fields: vec![(
                "owner",
                [
                    vec![
                        "platform".into(),
                        String::new(),
                        "nope".into(),
                        "'; --".into(),
                    ],
                    t.clone(),
                ]
                .concat(),
            )],
        },
        Form {
            path: "/vault/reencrypt",
            ids: vec![],
            fields: vec![],
        },
        // Never the tenant's name: the fuzzer must not erase the demo data under the others.
        Form {
            path: "/tenants/{id}/erase",
            ids: t,
            fields: vec![(
                "confirm_name",
                vec![String::new(), "Acme".into(), "<b>Globex</b>".into()],
            )],
        },
    ]
}

/// An id for a `{id}` slot: mostly a real one of the right kind, sometimes of another kind,
/// sometimes random.
fn id_for(rng: &mut Rng, pool: &Pool, right: &[String], any: &[String]) -> String {
    match rng.below(10) {
        0..=5 if !right.is_empty() => rng.pick(right).clone(),
        6 if !any.is_empty() => rng.pick(any).clone(),
        _ => {
            let s = pool.string(rng);
            if s.is_empty() {
                "x".into()
            } else {
                encode_segment(rng, &s)
            }
        }
    }
}

async fn assert_still_logged_in(app: &TestApp, after: &str) {
    let r = app.get("/tenants").await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the admin session ended during {after}: the fuzzing would test nothing"
    );
}

/// Fuzzes the forms: with the session's CSRF token (the handler's parsing is what is
/// exercised: never 5xx) and without it (always exactly 403).
async fn fuzz_forms(app: &TestApp, forms: Vec<Form>, ids: &ConsoleIds) {
    let token = app.csrf().await;
    let all = ids.all();
    let field_names: Vec<&str> = forms
        .iter()
        .flat_map(|f| f.fields.iter().map(|(n, _)| *n))
        .chain(["csrf_token"])
        .collect();
    let pool = Arc::new(Pool::new(&all, &field_names));
    for form in forms {
        let (pool, token, all) = (pool.clone(), token.clone(), all.clone());
        let path = form.path;
        let st = run(
            &app.client,
            &app.addr,
            &format!("form {path}"),
            move |rng| {
                let with_token = rng.chance(80);
                let id = if with_token {
                    id_for(rng, &pool, &form.ids, &all)
                } else if !form.ids.is_empty() {
                    // A valid path, so that the token check is what answers.
                    rng.pick(&form.ids).clone()
                } else {
                    format!("{:016x}", rng.next_u64())
                };
                let p = path.replace("{id}", &id);
                let (body, expect) = if with_token {
                    (
                        form_body(rng, &pool, &form.fields, Some(&token)),
                        Expect::No5xx,
                    )
                } else {
                    // A wrong token or none at all.
                    let mut fields = form.fields.clone();
                    if rng.chance(50) {
                        let random = pool.string(rng);
                        let wrong = [
                            String::new(),
                            token[..token.len() - 1].to_string(),
                            format!("{token}x"),
                            token.to_uppercase(),
                            random,
                        ];
                        let wrong = rng.pick(&wrong).clone();
                        fields.push(("csrf_token", vec![wrong]));
                    }
                    (form_body(rng, &pool, &fields, None), Expect::Status(403))
                };
                // A forged or garbled token must never pass as the session's.
                let expect = if with_token
                    || String::from_utf8_lossy(&body).contains(&format!("csrf_token={token}"))
                {
                    Expect::No5xx
                } else {
                    expect
                };
                let mut req = Req::new(reqwest::Method::POST, p, body, expect);
                if rng.chance(85) {
                    req = req.header("content-type", "application/x-www-form-urlencoded");
                }
                req
            },
        )
        .await;
        assert!(
            st.other_than(&[403]) > 0,
            "form {path}: every answer was 403: {:?}",
            st.statuses
        );
        assert_still_logged_in(app, path).await;
    }
}

/// The forms in two halves, each on its own app, so that they run in parallel.
async fn fuzz_console_forms(half: usize) {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    register(&app, "fuzz-console-1", json!({"firstName": "Ann"})).await;
    app.login_ok("admin", "admin-demo").await;
    let ids = ConsoleIds::load(&app);
    let mut forms = console_forms(&ids);
    let second = forms.split_off(forms.len() / 2);
    fuzz_forms(&app, if half == 0 { forms } else { second }, &ids).await;
    scan.finish(&app).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_console_forms_never_answer_5xx_and_need_the_csrf_token_1() {
    fuzz_console_forms(0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_console_forms_never_answer_5xx_and_need_the_csrf_token_2() {
    fuzz_console_forms(1).await;
}

#[test]
fn every_route_is_fuzzed_or_takes_no_input() {
    let ids = ConsoleIds {
        tenants: vec![],
        merchants: vec![],
        users: vec![],
        containers: vec![],
        profiles: vec![],
        connectors: vec![],
        api_users: vec![],
        transactions: vec![],
    };
    let mut covered: Vec<(String, String)> = console_forms(&ids)
        .iter()
        .map(|f| f.path)
        .chain(["/login", "/logout", "/login/two-factor"])
        .map(|p| ("POST".to_string(), p.to_string()))
        .collect();
    let gets = QUERY_PAGES
        .iter()
        .map(|(p, _)| *p)
        .chain(ID_PAGES)
        .chain(NO_INPUT_PAGES);
    covered.extend(gets.map(|p| ("GET".to_string(), p.to_string())));
    covered.extend(
        FUZZED_API
            .iter()
            .chain(&NO_INPUT_API)
            .chain(&PAYMENT_PAGES)
            .map(|(m, p)| (m.to_string(), p.to_string())),
    );
    covered.sort();
    let routes: Vec<(String, String)> = crate::routes::all()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert_eq!(
        covered, routes,
        "the fuzzing's route list differs from the app's routes"
    );
}

/// /login, /logout and /login/two-factor (which, without a pending sign-in, leads back to
/// /login), each case in a fresh browser whose token comes from the login page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_login_and_logout_forms() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    let pool = Arc::new(Pool::new(
        &["admin".into(), "manager".into(), "merchant".into()],
        &["username", "password", "code", "csrf_token"],
    ));
    for path in ["/login", "/logout", "/login/two-factor"] {
        let p = pool.clone();
        // The token needs a request of its own: the generator hands the case to a sender that
        // first fetches it, marked by a placeholder.
        let fields: Vec<(&str, Vec<String>)> = if path == "/login" {
            vec![
                ("username", vec!["admin".into(), "nobody".into()]),
                ("password", vec!["wrong".into()]),
            ]
        } else if path == "/login/two-factor" {
            vec![("code", vec!["123456".into(), "abcd-efgh-ijkl".into()])]
        } else {
            vec![]
        };
        let base = app.addr.clone();
        let n = cases();
        let seed = seed();
        let mut statuses: BTreeMap<u16, usize> = BTreeMap::new();
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let next = Arc::new(AtomicUsize::new(0));
        for _ in 0..4 {
            let (p, fields, base, next) = (p.clone(), fields.clone(), base.clone(), next.clone());
            tasks.spawn(async move {
                let mut out: Vec<(u16, Option<String>)> = vec![];
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= n {
                        return out;
                    }
                    let mut rng = Rng::for_case(seed, path, i);
                    let browser = client();
                    let page = browser
                        .get(format!("{base}/login"))
                        .send()
                        .await
                        .expect("GET /login");
                    let headers = page.headers().clone();
                    let page = page.text().await.expect("page");
                    crate::secret_scan::saw(&base, "/login", b"", &headers, page.as_bytes());
                    let token = extract_csrf(&page).expect("csrf");
                    let with_token = rng.chance(80);
                    let body = form_body(&mut rng, &p, &fields, with_token.then_some(&*token));
                    let r = browser
                        .post(format!("{base}{path}"))
                        .header("content-type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                        .send()
                        .await;
                    if let Ok(r) = &r {
                        crate::secret_scan::saw(&base, path, &body, r.headers(), b"");
                    }
                    let (status, problem) = match r {
                        Err(e) => (0, Some(format!("no answer: {e}"))),
                        Ok(r) => {
                            let s = r.status().as_u16();
                            let bad = s >= 500 || (!with_token && s != 403);
                            (s, bad.then(|| format!("answered {s}")))
                        }
                    };
                    out.push((
                        status,
                        problem.map(|p| {
                            format!(
                                "[{path}] case {i} (COFFER_FUZZ_SEED={seed}) token {with_token} body {}: {p}",
                                show(&body)
                            )
                        }),
                    ));
                }
            });
        }
        let mut failures = vec![];
        while let Some(r) = tasks.join_next().await {
            for (s, p) in r.expect("task") {
                *statuses.entry(s).or_default() += 1;
                failures.extend(p);
            }
        }
        println!(
            "fuzz form {path}: {n} cases in {:.1}s, statuses {statuses:?}",
            started.elapsed().as_secs_f64()
        );
        assert!(
            failures.is_empty(),
            "{}",
            failures[..failures.len().min(5)].join("\n")
        );
        assert!(
            statuses.keys().any(|s| *s != 403),
            "{path}: every answer was 403"
        );
    }
    scan.finish(&app).await;
}

/// Random query strings on the console pages that read one, and random ids on every page
/// with an id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_console_queries_and_page_ids_never_answer_5xx() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    register(&app, "fuzz-console-2", json!({"firstName": "Ann"})).await;
    app.login_ok("admin", "admin-demo").await;
    let ids = ConsoleIds::load(&app);
    let all = ids.all();
    let pool = Arc::new(Pool::new(
        &all,
        &[
            "before",
            "q",
            "tenant",
            "merchant",
            "limit",
            "connector",
            "profile",
            "type",
            "status",
            "from",
            "to",
            "after",
        ],
    ));
    // The audit cursor: a real `before` value from the page's "older" link.
    for (path, keys) in QUERY_PAGES {
        let path_ids = ids.for_path(path);
        let (p, all) = (pool.clone(), all.clone());
        let st = run(
            &app.client,
            &app.addr,
            &format!("query {path}"),
            move |rng| {
                let base = if path.contains("{id}") {
                    path.replace("{id}", &id_for(rng, &p, &path_ids, &all))
                } else {
                    path.to_string()
                };
                let q = if rng.chance(30) {
                    // A real id as the value.
                    let pairs = vec![(rng.pick(keys).to_string(), rng.pick(&all).clone())];
                    serde_urlencoded::to_string(&pairs).unwrap_or_default()
                } else {
                    query_string(rng, &p, keys)
                };
                Req::new(
                    reqwest::Method::GET,
                    format!("{base}?{q}"),
                    vec![],
                    Expect::No5xx,
                )
            },
        )
        .await;
        assert!(st.statuses.contains_key(&200), "{path}: {:?}", st.statuses);
    }
    for path in ID_PAGES {
        let (p, all, right) = (pool.clone(), all.clone(), ids.for_path(path));
        let st = run(
            &app.client,
            &app.addr,
            &format!("page {path}"),
            move |rng| {
                Req::new(
                    reqwest::Method::GET,
                    fill(path, &id_for(rng, &p, &right, &all)),
                    vec![],
                    Expect::No5xx,
                )
            },
        )
        .await;
        assert!(st.statuses.contains_key(&404), "{path}: {:?}", st.statuses);
    }
    assert_still_logged_in(&app, "the page fuzzing").await;
    scan.finish(&app).await;
}

// ---------------------------------------------------------------------------------------------
// Regression cases of what the fuzzing found

/// Concurrent console writes on SQLite failed with "database is locked" (500): the services'
/// deferred transactions read, then could not upgrade to a write lock. They now take it first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_console_writes_and_failed_logins_never_answer_500() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let token = app.csrf().await;
    let tenant = ids_of(&app, "tenants", "WHERE name = 'Acme Retail'")
        .pop()
        .expect("Acme Retail");
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let (http, base, token, tenant) = (
            app.client.clone(),
            app.addr.clone(),
            token.clone(),
            tenant.clone(),
        );
        tasks.spawn(async move {
            let form = [
                ("csrf_token", token.as_str()),
                ("name", &format!("Acme Retail {i}")),
            ];
            let r = http
                .post(format!("{base}/tenants/{tenant}"))
                .form(&form)
                .send()
                .await
                .expect("POST");
            crate::secret_scan::saw(&base, "/tenants/{id}", b"", r.headers(), b"");
            ("rename", r.status().as_u16())
        });
        let base = app.addr.clone();
        tasks.spawn(async move {
            let b = client();
            let page = b
                .get(format!("{base}/login"))
                .send()
                .await
                .expect("GET")
                .text()
                .await
                .expect("page");
            let t = extract_csrf(&page).expect("csrf");
            crate::secret_scan::used(&base, "a CSRF token", &t);
            let r = b
                .post(format!("{base}/login"))
                .form(&[
                    ("csrf_token", t.as_str()),
                    ("username", "nobody"),
                    ("password", "wrong"),
                ])
                .send()
                .await
                .expect("POST");
            ("login", r.status().as_u16())
        });
    }
    let mut seen = vec![];
    while let Some(r) = tasks.join_next().await {
        seen.push(r.expect("task"));
    }
    assert!(
        seen.iter().all(|(what, s)| if *what == "rename" {
            *s == 303
        } else {
            *s == 422 || *s == 429
        }),
        "{seen:?}"
    );
    scan.finish(&app).await;
}

/// Flash messages piled up in the session cookie when POSTs redirected without the page being
/// shown, until the cookie passed 4 KiB and saving the session answered 500. (Rotated secrets
/// no longer go through the cookie at all: each rotation's own answer shows its secret.)
#[tokio::test]
async fn many_posts_without_viewing_a_page_keep_the_session_cookie_small() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let k = connector_id(&app, "Acme Shop Cards");
    let token = app.csrf().await;
    let form = [("csrf_token", token.as_str()), ("confirmed", "yes")];
    let marker = "New shared secret (shown only now, store it safely): ";
    let mut page = String::new();
    for i in 0..40 {
        let r = app
            .client
            .post(app.url(&format!("/connectors/{k}/rotate-secret")))
            .form(&form)
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::OK, "rotation {i}");
        let headers = r.headers().clone();
        page = r.text().await.expect("body");
        crate::secret_scan::saw(&app.addr, "rotate-secret", b"", &headers, page.as_bytes());
        assert_eq!(page.matches(marker).count(), 1, "rotation {i}");
        // Other POSTs that redirect without a page view still queue their messages.
        let r = app
            .client
            .post(app.url(&format!("/connectors/{k}")))
            .form(&[
                ("csrf_token", token.as_str()),
                ("name", "Acme Shop Cards"),
                ("active", "1"),
                ("confirmed", "yes"),
            ])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "save {i}");
    }
    let (s, shown) = app.get_html(&format!("/connectors/{k}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!shown.contains(marker), "no secret in the queued messages");
    // The newest secret is the current one.
    let i = page.rfind(marker).expect("secret") + marker.len();
    let secret: String = page[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    // It is the connector's current secret.
    let db = app.db();
    let mut c = db.get().expect("conn");
    let sealed: String = {
        use coffer::db::schema::connectors;
        use diesel::prelude::*;
        connectors::table
            .find(&k)
            .select(connectors::shared_secret)
            .first(&mut *c)
            .expect("connector")
    };
    let master = coffer::vault::keyring::master_key(&app.settings).expect("master key");
    let keyring = coffer::vault::keyring::Keyring::load(&mut c, master).expect("keyring");
    let current = keyring
        .open_string(&mut c, &sealed, k.as_bytes())
        .expect("open");
    assert_eq!(secret, current);
    scan.finish(&app).await;
}

/// NUL characters reached PostgreSQL, which cannot hold them in text ("invalid byte sequence",
/// a 500), from URLs, form fields, Basic credentials and JSON strings. They are refused where
/// they come in, with each surface's own 4xx, on both backends.
#[tokio::test]
async fn nul_characters_are_refused_where_they_come_in() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    let shop = basic(SHOP_BASIC.0, SHOP_BASIC.1);
    let send = async |method: reqwest::Method, path: &str, auth: &str, body: &str| {
        let mut r = app
            .client
            .request(method, app.url(path))
            .header("content-type", JSON_CT);
        if !auth.is_empty() {
            r = r.header("authorization", auth);
        }
        let r = r.body(body.to_string()).send().await.expect("send");
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    };
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let api_invalid = |(s, b): (u16, String)| {
        assert_eq!(s, 422, "{b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["errorCode"], 1002, "{b}");
    };
    // In API paths an id holding NUL is unknown, as any id that does not exist (the Status
    // API's not found is HTTP 200 with 8001).
    for op in ["getByUuid", "getByMerchantTransactionId"] {
        let (s, b) = send(
            get.clone(),
            &format!("/api/v3/status/demo-shop-cards/{op}/a%00b"),
            &shop,
            "",
        )
        .await;
        assert_eq!(s, 200, "{b}");
        assert_eq!(
            serde_json::from_str::<Value>(&b).expect("json")["errorCode"],
            8001
        );
    }
    let (s, b) = send(
        post.clone(),
        "/api/v3/transaction/demo%00shop/debit",
        &shop,
        "{}",
    )
    .await;
    assert_eq!(s, 401, "{b}");
    api_invalid(
        send(
            post.clone(),
            "/api/v3/customerProfiles/demo-shop-cards/getProfile",
            &shop,
            r#"{"customerIdentification":"a\u0000b"}"#,
        )
        .await,
    );
    api_invalid(
        send(
            post.clone(),
            "/api/v3/transaction/demo-shop-cards/debit",
            &shop,
            r#"{"merchantTransactionId":"o\u0000","amount":"1.00","currency":"EUR"}"#,
        )
        .await,
    );
    let nul_user = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop\0api:x")
    );
    let (s, b) = send(
        post.clone(),
        "/api/v3/transaction/demo-shop-cards/debit",
        &nul_user,
        "{}",
    )
    .await;
    assert_eq!(s, 401, "{b}");
    let (s, b) = send(
        post.clone(),
        "/api/v3/paymentjs/demo-shop-public/tokenize",
        "",
        r#"{"cardHolder":"A\u0000","number":"4111111111111111","cvv":"123","month":"12","year":"2030"}"#,
    )
    .await;
    assert_eq!(s, 400, "{b}");
    let card = r#"{"number":"4111111111111111","cvv":"123","month":"12","year":"2030"}"#;
    let (s, b) = send(
        post.clone(),
        "/api/v3/paymentjs/demo%00public/tokenize",
        "",
        card,
    )
    .await;
    assert_eq!(s, 404, "{b}");
    let oauth = json!({"client_id": MONRI_TOKEN, "client_secret": MONRI_KEY,
                       "grant_type": "client_credentials", "scopes": ["customers"]});
    let (s, v) = post_json(&app, "/v2/oauth", None, &oauth).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let monri = format!("Bearer {}", v["access_token"].as_str().expect("token"));
    for (path, status) in [
        ("/v2/customers?limit=%00", 400),
        ("/v2/customers/a%00b", 404),
        ("/v2/merchants/customers/a%00b", 404),
    ] {
        let (s, b) = send(get.clone(), path, &monri, "").await;
        assert_eq!(s, status, "{path}: {b}");
        let v: Value = serde_json::from_str(&b).expect("json");
        assert_eq!(v["status"], "invalid-request", "{path}");
    }

    app.login_ok("admin", "admin-demo").await;
    for path in [
        "/containers?tenant=a%00b",
        "/tenants/a%00b",
        "/audit?before=%00",
    ] {
        let (s, _) = app.get_html(path).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{path}");
    }
    let r = app.post_form("/tenants", &[("name", "A\0B")]).await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Without the CSRF token the answer is still 403, NUL or not.
    let r = app.post_form_raw("/tenants", &[("name", "A\0B")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let b = app.other_browser();
    let r = b
        .post_form("/login", &[("username", "\0"), ("password", "x")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    // Nothing was created.
    assert!(ids_of(&app, "tenants", "WHERE name LIKE 'A%B'").is_empty());
    scan.finish(&app).await;
}

/// Random form bodies and tokens on the hosted payment page and the 3-D Secure page: open pages
/// and challenges (and used-up ones, as the fuzzing pays and cancels them), with the session's
/// CSRF token (never 5xx) and without it (always 403 for a post).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_payment_pages_never_answer_5xx() {
    let (scan, app) = crate::secret_scan::Scan::demo().await;
    let reg = register(&app, "fuzz-pay", json!({"firstName": "Ann"})).await;
    let mut pages = vec![];
    let mut challenges = vec![];
    for i in 0..24 {
        let mut body = json!({"merchantTransactionId": format!("fuzz-pay-{i}"), "amount": "5.00",
            "currency": "EUR", "successUrl": "https://shop.example/ok",
            "customerProfileData": {"customerIdentification": "fuzz-pay"}});
        if i % 3 == 0 {
            body["transactionToken"] =
                json!(card_token(&app, "demo-shop-public", "4000000000003220").await);
        } else if i % 3 == 1 {
            body["withRegister"] = json!(true);
        }
        let (s, v) = post_json(
            &app,
            "/api/v3/transaction/demo-shop-cards/debit",
            Some(basic(SHOP_BASIC.0, SHOP_BASIC.1)),
            &body,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let url = v["redirectUrl"].as_str().expect("redirectUrl");
        let token = url.rsplit('/').next().expect("token").to_string();
        if url.contains("/3ds/") {
            challenges.push(token);
        } else {
            pages.push(token);
        }
    }
    // The payment pages' own CSRF secret (their cookie), as the first page shows it.
    let csrf = {
        let first = pages.first().expect("a payment page");
        let r = app
            .client
            .get(format!("{}/pay/{first}", app.addr))
            .send()
            .await
            .expect("GET");
        extract_csrf(&r.text().await.expect("page")).expect("csrf on the payment page")
    };
    let fields: Vec<(&str, Vec<String>)> = vec![
        (
            "instrument",
            vec!["new".into(), reg.payment_token.clone(), "pt::x".into()],
        ),
        ("card_holder", vec!["Ann Smith".into(), "".into()]),
        (
            "card_number",
            vec![
                "4111111111111111".into(),
                "4000000000003220".into(),
                "4000000000000002".into(),
                "4111 1111 1111 1112".into(),
            ],
        ),
        ("exp_month", vec!["12".into(), "0".into(), "13".into()]),
        ("exp_year", vec!["2031".into(), "20".into(), "1999".into()]),
        ("cvv", vec!["123".into(), "1234".into(), "1".into()]),
        ("action", vec!["approve".into(), "deny".into()]),
    ];
    let names: Vec<&str> = fields
        .iter()
        .map(|(n, _)| *n)
        .chain(["csrf_token"])
        .collect();
    let pool = Arc::new(Pool::new(std::slice::from_ref(&reg.payment_token), &names));
    let st = run(&app.client, &app.addr, "payment pages", move |rng| {
        let (method, route) = *rng.pick(&PAYMENT_PAGES);
        let real = if route.starts_with("/3ds") {
            &challenges
        } else {
            &pages
        };
        let token = match rng.below(10) {
            0..=6 => rng.pick(real).clone(),
            7 => coffer::ids::random_hex(32),
            _ => {
                let s = pool.string(rng);
                if s.is_empty() {
                    "x".into()
                } else {
                    encode_segment(rng, &s)
                }
            }
        };
        let path = route.replace("{token}", &token);
        if method == "GET" {
            return Req::new(reqwest::Method::GET, path, vec![], Expect::No5xx);
        }
        let with_token = rng.chance(85);
        let body = form_body(rng, &pool, &fields, with_token.then_some(csrf.as_str()));
        let expect = if path.contains("%00") {
            // The URL guard refuses NUL before anything else looks at the request.
            Expect::Status(400)
        } else if with_token || String::from_utf8_lossy(&body).contains(&csrf) {
            Expect::No5xx
        } else {
            Expect::Status(403)
        };
        Req::new(reqwest::Method::POST, path, body, expect)
            .header("content-type", "application/x-www-form-urlencoded")
    })
    .await;
    assert!(
        st.statuses.keys().any(|s| [303, 410, 422].contains(s)),
        "{:?}",
        st.statuses
    );
    scan.finish(&app).await;
}
