//! Coffer as a separate OS process, for the fault tests (crash.rs, multiprocess.rs): the
//! `coffer` binary Cargo builds for these tests, run as `coffer serve --demo` on a free port, so
//! that it can be SIGKILLed and started again on the same data.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use coffer::config::Settings;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::{PgDb, fresh_pg};

pub const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
pub const SHOP_KEY: &str = "demo-shop-cards";
pub const SHOP_PUBLIC_KEY: &str = "demo-shop-public";
const CT: &str = "application/json; charset=utf-8";
/// How long a process may take to answer /healthz after its start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The data a set of Coffer processes runs on: SQLite files under a temporary directory, or a
/// fresh PostgreSQL database when COFFER_TEST_DATABASE_URL names one (dropped at the end).
pub struct Backend {
    root: tempfile::TempDir,
    database_url: Option<String>,
    session_key: Option<String>,
    vault_key: Option<String>,
    /// Transit mode (`Backend::transit`): the key manager's address, key and token.
    transit: Option<(String, String, String)>,
    // Declared last: the database is dropped after the processes using it are gone.
    _pg: Option<PgDb>,
}

impl Backend {
    pub fn new() -> Backend {
        let root = tempfile::tempdir().expect("tempdir");
        let pg = fresh_pg();
        let (database_url, pg, session_key, vault_key) = match pg {
            // With PostgreSQL every process needs the same keys from the environment.
            Some((url, guard)) => (
                Some(url),
                Some(guard),
                Some(coffer::ids::random_hex(32)),
                Some(coffer::ids::random_hex(32)),
            ),
            // With SQLite the first start writes vault.key and session.key into the data dir.
            None => (None, None, None, None),
        };
        Backend {
            root,
            database_url,
            session_key,
            vault_key,
            transit: None,
            _pg: pg,
        }
    }

    /// As `new`, in transit mode: the vault's keys are wrapped by a new Transit key of `bao`,
    /// reached at `addr` (the server, or a `bao::Switch` in front of it); no master key.
    pub fn transit(bao: &crate::bao::Bao, addr: &str) -> Backend {
        let mut b = Backend::new();
        b.vault_key = None;
        b.transit = Some((addr.to_string(), bao.new_key(), bao.token.clone()));
        b
    }

    /// The environment of the key settings: the master key, or transit mode's settings.
    fn key_env(&self) -> Vec<(&'static str, String)> {
        match (&self.transit, &self.vault_key) {
            (Some((addr, key, token)), _) => vec![
                ("COFFER_KMS", "transit".into()),
                ("COFFER_TRANSIT_ADDR", addr.clone()),
                ("COFFER_TRANSIT_KEY", key.clone()),
                ("COFFER_TRANSIT_TOKEN", token.clone()),
            ],
            (None, Some(k)) => vec![("COFFER_VAULT_KEY", k.clone())],
            (None, None) => vec![],
        }
    }

    /// The `coffer` binary with instance `name`'s data dir, database and key settings, and
    /// no other COFFER_ variable of the test's environment.
    pub fn command(&self, name: &str) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
        for (k, _) in std::env::vars_os() {
            if k.to_string_lossy().starts_with("COFFER_") {
                cmd.env_remove(k);
            }
        }
        cmd.env("COFFER_DATA_DIR", self.data_dir(name));
        if let Some(u) = &self.database_url {
            cmd.env("COFFER_DATABASE_URL", u);
        }
        if let Some(k) = &self.session_key {
            cmd.env("COFFER_SESSION_KEY", k);
        }
        for (k, v) in self.key_env() {
            cmd.env(k, v);
        }
        cmd
    }

    /// The data dir of the instance `name`: starting the same name again reuses it.
    pub fn data_dir(&self, name: &str) -> PathBuf {
        self.root.path().join(name)
    }

    /// Settings that reach the database and vault of instance `name` from the test.
    pub fn settings(&self, name: &str) -> Settings {
        let mut s = Settings::for_tests(&self.data_dir(name), self.database_url.clone());
        s.session_key = self.session_key.clone();
        s.vault_key = self.vault_key.clone();
        if let Some((addr, key, token)) = &self.transit {
            s.kms = coffer::config::KmsMode::Transit;
            s.transit_addr = Some(addr.clone());
            s.transit_key = Some(key.clone());
            s.transit_token = Some(token.clone());
        }
        s
    }

    /// Starts `coffer serve --demo` for instance `name` on a free port and waits for /healthz.
    pub async fn start(&self, name: &str) -> CofferProcess {
        self.start_with(name, &[]).await
    }

    /// As `start`, with extra environment variables (e.g. `COFFER_CALLBACK_*`).
    pub async fn start_with(&self, name: &str, env: &[(&str, &str)]) -> CofferProcess {
        let dir = self.data_dir(name);
        std::fs::create_dir_all(&dir).expect("data dir");
        let port = free_port();
        let log_path = self.root.path().join(format!("{name}-{port}.log"));
        let log = std::fs::File::create(&log_path).expect("log file");
        // Only the settings chosen here: none inherited from the test's environment.
        let mut cmd = self.command(name);
        cmd.args(["serve", "--demo"]);
        cmd.env("COFFER_BIND", format!("127.0.0.1:{port}"))
            .env("COFFER_ADMIN_PASSWORD", "admin-test-password")
            .env("COFFER_WORKERS", "2")
            .env("COFFER_DB_POOL_SIZE", "8")
            .env("RUST_LOG", "warn")
            // The fault tests tokenize many cards from one address.
            .env("COFFER_TOKENIZE_LIMIT_PER_ADDRESS", "0");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone().expect("log file"))
            .stderr(log);
        let child = cmd.spawn().expect("spawn coffer");
        let mut p = CofferProcess {
            child: Some(child),
            addr: format!("http://127.0.0.1:{port}"),
            log: log_path,
        };
        p.wait_healthy().await;
        p
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A running `coffer` process. Dropping it kills it (so a failing test leaves none behind).
pub struct CofferProcess {
    child: Option<Child>,
    pub addr: String,
    log: PathBuf,
}

impl CofferProcess {
    /// The process id (while it runs).
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Everything the process wrote so far (stdout and stderr, in one file).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) {
        let client = client();
        let started = Instant::now();
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().expect("try_wait"))
            {
                panic!(
                    "coffer exited during start ({status}):\n{}",
                    log_tail(&self.log)
                );
            }
            if let Ok(r) = client.get(self.url("/healthz")).send().await
                && r.status() == StatusCode::OK
            {
                return;
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "coffer did not answer /healthz within {START_TIMEOUT:?}:\n{}",
                log_tail(&self.log)
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// `kill -9`: SIGKILL (what `Child::kill` sends on Unix), then reaps the process.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL coffer");
            c.wait().expect("reap coffer");
        }
    }
}

impl CofferProcess {
    /// A graceful stop: SIGTERM (by the system's `kill`), then waits for the exit (at most 30 s).
    pub fn terminate(&mut self) {
        if let Some(mut c) = self.child.take() {
            let sent = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status()
                .expect("run kill");
            assert!(sent.success(), "SIGTERM sent");
            let until = Instant::now() + Duration::from_secs(30);
            loop {
                if let Some(status) = c.try_wait().expect("try_wait") {
                    assert!(status.success(), "coffer stopped cleanly: {status}");
                    return;
                }
                if Instant::now() > until {
                    let _ = c.kill();
                    let _ = c.wait();
                    panic!("coffer did not stop within 30 s of SIGTERM");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

impl Drop for CofferProcess {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            if std::thread::panicking() {
                eprintln!("--- log of {} ---\n{}", self.addr, log_tail(&self.log));
            }
        }
    }
}

fn log_tail(path: &Path) -> String {
    let s = std::fs::read_to_string(path).unwrap_or_default();
    let start = s.len().saturating_sub(4000);
    s.get(start..).unwrap_or(&s).to_string()
}

/// An HTTP client for one process: a fresh connection pool, and a timeout so that no request
/// to a killed process hangs.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .pool_idle_timeout(Duration::from_secs(2))
        .build()
        .expect("client")
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// What came back for one request: an answer (status and JSON body), or nothing (the
/// connection failed or broke before the whole answer arrived).
#[derive(Debug)]
pub enum Reply {
    Answer(StatusCode, Value),
    /// `refused`: the connection was never made (the process was already gone).
    NoAnswer {
        refused: bool,
    },
}

async fn post_json(
    client: &reqwest::Client,
    url: String,
    auth: Option<(&str, &str)>,
    body: &Value,
) -> Reply {
    let mut req = client
        .post(url)
        .header("content-type", CT)
        .body(body.to_string());
    if let Some((u, p)) = auth {
        req = req.header("authorization", basic(u, p));
    }
    let r = match req.send().await {
        Ok(r) => r,
        Err(e) => {
            return Reply::NoAnswer {
                refused: e.is_connect(),
            };
        }
    };
    let status = r.status();
    let path = r.url().path().to_string();
    let content_type = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    match r.bytes().await {
        Ok(b) => {
            // The process's answers are held to the OpenAPI documents like the in-process ones.
            if let Err(e) = crate::openapi::check("POST", &path, status.as_u16(), &content_type, &b)
            {
                panic!("{e}");
            }
            Reply::Answer(status, serde_json::from_slice(&b).unwrap_or(Value::Null))
        }
        Err(_) => Reply::NoAnswer { refused: false },
    }
}

/// Tokenizes a card through payment.js; `Ok(token)`, or the reply when there is no token.
pub async fn tokenize(client: &reqwest::Client, base: &str, pan: &str) -> Result<String, Reply> {
    let cvv = if pan.len() == 15 { "1234" } else { "123" };
    let body = json!({"cardHolder": "Ann Smith", "number": pan, "cvv": cvv, "month": "12", "year": "2030"});
    let url = format!("{base}/api/v3/paymentjs/{SHOP_PUBLIC_KEY}/tokenize");
    match post_json(client, url, None, &body).await {
        Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => v["token"]
            .as_str()
            .map(str::to_string)
            .ok_or(Reply::Answer(s, v)),
        other => Err(other),
    }
}

/// A Transaction API call on the demo shop's card connector.
pub async fn transaction(client: &reqwest::Client, base: &str, kind: &str, body: &Value) -> Reply {
    let url = format!("{base}/api/v3/transaction/{SHOP_KEY}/{kind}");
    post_json(client, url, Some(SHOP), body).await
}

/// A Customer Profiles API call on the demo shop's card connector.
pub async fn profiles_api(client: &reqwest::Client, base: &str, op: &str, body: &Value) -> Reply {
    let url = format!("{base}/api/v3/customerProfiles/{SHOP_KEY}/{op}");
    post_json(client, url, Some(SHOP), body).await
}

/// A unique merchantTransactionId.
pub fn mtid() -> String {
    format!("order-{}", coffer::ids::random_hex(8))
}

/// A random Luhn-valid 16-digit Visa number (never one of the simulator's declining or
/// 3-D Secure test numbers, which all start with 4000).
pub fn random_pan() -> String {
    use rand::RngExt;
    let mut rng = rand::rng();
    let mut digits: Vec<u32> = vec![4, 5, 3, 2];
    digits.extend((0..11).map(|_| rng.random_range(0..10u32)));
    // The check digit makes the Luhn sum of all 16 digits a multiple of 10.
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 { x - 9 } else { x }
            } else {
                d
            }
        })
        .sum();
    digits.push((10 - sum % 10) % 10);
    let pan: String = digits
        .iter()
        .map(|d| char::from_digit(*d, 10).unwrap_or('0'))
        .collect();
    assert!(coffer::gateway::card::luhn_valid(&pan), "{pan}");
    pan
}
