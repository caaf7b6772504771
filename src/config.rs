//! Settings from flags and environment. No global config: `Settings` is passed to
//! `Application::build`, so tests can run several apps side by side.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use crate::db::Backend;

#[derive(clap::Args, Debug, Clone)]
pub struct Settings {
    /// Address to listen on.
    #[arg(long, env = "COFFER_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,
    /// Address of a second listener that answers only `GET /metrics` (Prometheus text format);
    /// unset (the default), no metrics are served.
    #[arg(long, env = "COFFER_METRICS_BIND")]
    pub metrics_bind: Option<String>,
    /// Log lines as `text` (the default) or `json` (one JSON object a line, with the request's
    /// id and span). The levels come from `RUST_LOG` (default `info`).
    #[arg(long, env = "COFFER_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Directory for the SQLite database and generated keys.
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    pub data_dir: PathBuf,
    /// `postgres://…` selects PostgreSQL; default: SQLite file `coffer.db` in the data dir.
    #[arg(long, env = "COFFER_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Session cookie key (at least 32 characters). Required with PostgreSQL, since several
    /// processes must share it; generated and kept in the data dir with SQLite.
    #[arg(long, env = "COFFER_SESSION_KEY", hide_env_values = true)]
    pub session_key: Option<String>,
    /// Password of the first platform admin `admin`, created when there are no users.
    #[arg(long, env = "COFFER_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// Mark cookies `Secure` (set this when Coffer is served over TLS).
    #[arg(long, env = "COFFER_COOKIE_SECURE", default_value_t = false)]
    pub cookie_secure: bool,
    /// Minutes of inactivity after which a console session ends (PCI DSS 8.2.8: at most 15).
    #[arg(
        long,
        env = "COFFER_SESSION_IDLE_MINUTES",
        default_value_t = crate::console::auth::SESSION_IDLE_MINUTES,
        value_parser = clap::value_parser!(i64).range(1..=SESSION_IDLE_MINUTES_MAX)
    )]
    pub session_idle_minutes: i64,
    /// Hours after sign-in at which a console session ends however active it is.
    #[arg(
        long,
        env = "COFFER_SESSION_MAX_HOURS",
        default_value_t = crate::console::auth::SESSION_MAX_HOURS,
        value_parser = clap::value_parser!(i64).range(1..=SESSION_MAX_HOURS_MAX)
    )]
    pub session_max_hours: i64,
    /// Vault master key (64 hex digits or base64 of 32 bytes). Required with PostgreSQL;
    /// generated into `vault.key` in the data dir with SQLite.
    #[arg(long, env = "COFFER_VAULT_KEY", hide_env_values = true)]
    pub vault_key: Option<String>,
    /// Where the key-encryption key lives: `local` (the master key above) or `transit` (the
    /// Transit engine of HashiCorp Vault or OpenBao; no master key in Coffer).
    #[arg(long, env = "COFFER_KMS", value_enum, default_value_t = KmsMode::Local)]
    pub kms: KmsMode,
    /// Transit mode: the key manager's URL (`https://vault.example:8200`).
    #[arg(long, env = "COFFER_TRANSIT_ADDR")]
    pub transit_addr: Option<String>,
    /// Transit mode: a token allowed to use the Transit key (sent as `X-Vault-Token`).
    #[arg(long, env = "COFFER_TRANSIT_TOKEN", hide_env_values = true)]
    pub transit_token: Option<String>,
    /// Transit mode: a file holding the token instead (read again on every call).
    #[arg(long, env = "COFFER_TRANSIT_TOKEN_FILE")]
    pub transit_token_file: Option<PathBuf>,
    /// Transit mode: where the Transit engine is mounted.
    #[arg(long, env = "COFFER_TRANSIT_MOUNT", default_value = "transit")]
    pub transit_mount: String,
    /// Transit mode: the name of the Transit key that wraps the vault's data keys.
    #[arg(long, env = "COFFER_TRANSIT_KEY")]
    pub transit_key: Option<String>,
    /// How long, in milliseconds, a Transaction API request waits for a concurrent one with
    /// the same Idempotency-Key (PostgreSQL) before answering 409.
    #[arg(
        long,
        env = "COFFER_IDEMPOTENCY_WAIT_MS",
        default_value_t = IDEMPOTENCY_WAIT_MS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub idempotency_wait_ms: u64,
    /// Allowed difference, in seconds, between a signed request's Date and the server clock.
    #[arg(long, env = "COFFER_SIGNATURE_SKEW_SECONDS", default_value_t = 300)]
    pub signature_skew_seconds: i64,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "COFFER_WORKERS")]
    pub workers: Option<usize>,
    /// Maximum database connections in the pool.
    #[arg(long, env = "COFFER_DB_POOL_SIZE", default_value_t = 16)]
    pub db_pool_size: u32,
    /// How often, in milliseconds, each process looks for callbacks due.
    #[arg(long, env = "COFFER_CALLBACK_POLL_MS", default_value_t = 300)]
    pub callback_poll_ms: u64,
    /// Seconds before the first retry of a callback; each later retry waits twice as long.
    #[arg(
        long,
        env = "COFFER_CALLBACK_RETRY_BASE_SECONDS",
        default_value_t = 2.0
    )]
    pub callback_retry_base_seconds: f64,
    /// Longest wait between two attempts of a callback, in seconds.
    #[arg(
        long,
        env = "COFFER_CALLBACK_RETRY_CAP_SECONDS",
        default_value_t = 3600.0
    )]
    pub callback_retry_cap_seconds: f64,
    /// Attempts after which an unacknowledged callback is marked failed.
    #[arg(long, env = "COFFER_CALLBACK_MAX_ATTEMPTS", default_value_t = 10)]
    pub callback_max_attempts: u32,
    /// Private callback targets allowed: none (default), loopback, all. `serve --demo`
    /// allows loopback unless this is set.
    #[arg(long, env = "COFFER_CALLBACK_ALLOW_PRIVATE", value_enum)]
    pub callback_allow_private: Option<crate::gateway::target::AllowPrivate>,
    /// Base URL browsers reach Coffer at, for hosted payment page and 3-D Secure links
    /// (at most 180 characters). Default: `http://` + the address Coffer listens on.
    #[arg(long, env = "COFFER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Minutes a hosted payment page or 3-D Secure challenge stays payable.
    #[arg(long, env = "COFFER_PAYMENT_PAGE_MINUTES", default_value_t = 30)]
    pub payment_page_minutes: i64,
    /// Minutes a payment.js card token (the sealed card number and CVV) can be used; expired
    /// tokens are deleted by the background loop within seconds.
    #[arg(
        long,
        env = "COFFER_CARD_TOKEN_MINUTES",
        default_value_t = CARD_TOKEN_MINUTES_DEFAULT,
        value_parser = clap::value_parser!(i64).range(1..=CARD_TOKEN_MINUTES_MAX)
    )]
    pub card_token_minutes: i64,
    /// Minutes a console sign-in stays locked after too many failed attempts (passwords and
    /// two-factor codes) for one username or source address.
    #[arg(
        long,
        env = "COFFER_LOCKOUT_MINUTES",
        default_value_t = crate::console::auth::LOCK_MINUTES,
        value_parser = clap::value_parser!(i64).range(1..=LOCKOUT_MINUTES_MAX)
    )]
    pub lockout_minutes: i64,
    /// Require two-factor authentication of every console user of the platform.
    #[arg(
        long = "require-2fa",
        env = "COFFER_REQUIRE_2FA",
        default_value_t = false
    )]
    pub require_2fa: bool,
    /// SQLite: group the write transactions of concurrent requests into shared commits (one
    /// fsync for several payments, each acknowledged after its commit). `false` gives every
    /// write transaction its own commit: for before/after benchmark runs.
    #[arg(
        long,
        env = "COFFER_SQLITE_GROUP_COMMIT",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub sqlite_group_commit: bool,
    /// SQLite: run the short reads of the APIs (getProfile, Monri GETs) on the async workers
    /// instead of handing each to a blocking thread. `false`: for before/after benchmark runs.
    #[arg(
        long,
        env = "COFFER_SQLITE_INLINE_READS",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub sqlite_inline_reads: bool,
    /// Behind a reverse proxy: the header it sets to the client's address (`X-Forwarded-For`,
    /// `X-Real-IP`); its last entry is believed. Unset, the TCP peer is the client, whatever
    /// headers a request carries.
    #[arg(long, env = "COFFER_TRUSTED_PROXY_HEADER")]
    pub trusted_proxy_header: Option<String>,
    /// Card tokenizations (payment.js tokenize) accepted per client address and minute; 0: no
    /// limit.
    #[arg(long, env = "COFFER_TOKENIZE_LIMIT_PER_ADDRESS", default_value_t = 30)]
    pub tokenize_limit_per_address: u32,
    /// Card tokenizations accepted per public integration key and minute; 0: no limit.
    #[arg(long, env = "COFFER_TOKENIZE_LIMIT_PER_KEY", default_value_t = 3000)]
    pub tokenize_limit_per_key: u32,
    /// Seconds a request's head may take to arrive, and its body after the head (1–3600);
    /// slower requests are cut off (408, connection closed).
    #[arg(
        long,
        env = "COFFER_REQUEST_TIMEOUT_SECONDS",
        default_value_t = REQUEST_TIMEOUT_SECONDS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=3600)
    )]
    pub request_timeout_seconds: u64,
    /// Open connections per HTTP worker; beyond it new connections wait in the listen backlog
    /// until one closes.
    #[arg(
        long,
        env = "COFFER_MAX_CONNECTIONS",
        default_value_t = MAX_CONNECTIONS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=1_000_000)
    )]
    pub max_connections: u64,
    /// Threads that hash and check people's passwords (default: half the cores, at least 1).
    #[arg(long, env = "COFFER_HASH_THREADS", value_parser = clap::value_parser!(u64).range(1..=256))]
    pub hash_threads: Option<u64>,
    /// Sign-ins (and password changes) that may wait for a hashing thread; beyond them sign-in
    /// answers 503 at once.
    #[arg(
        long,
        env = "COFFER_HASH_QUEUE",
        default_value_t = 32,
        value_parser = clap::value_parser!(u64).range(0..=100_000)
    )]
    pub hash_queue: u64,
    /// How often the access audit queue is written (milliseconds): what a `kill -9` can lose
    /// (see `audit::access`).
    #[arg(
        long,
        env = "COFFER_ACCESS_AUDIT_FLUSH_MS",
        default_value_t = crate::audit::access::FLUSH_MS_DEFAULT,
        value_parser = clap::value_parser!(u64).range(1..=60_000)
    )]
    pub access_audit_flush_ms: u64,
    /// Cards per batch (and transaction) of the account updater's background runs.
    #[arg(
        long,
        env = "COFFER_ACCOUNT_UPDATER_BATCH",
        default_value_t = ACCOUNT_UPDATER_BATCH_DEFAULT,
        value_parser = clap::value_parser!(i64).range(1..=5_000)
    )]
    pub account_updater_batch: i64,
    /// A pause after each batch of the account updater's background runs (milliseconds), to
    /// leave the database to live traffic.
    #[arg(
        long,
        env = "COFFER_ACCOUNT_UPDATER_PAUSE_MS",
        default_value_t = 0,
        value_parser = clap::value_parser!(u64).range(0..=60_000)
    )]
    pub account_updater_pause_ms: u64,
}

/// `COFFER_LOG_FORMAT`: how log lines are written.
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object a line.
    Json,
}

/// `COFFER_KMS`: where the vault's key-encryption key lives (see `vault::kms`).
#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum KmsMode {
    /// A master key held by Coffer (`COFFER_VAULT_KEY` or the data dir's `vault.key`).
    Local,
    /// The Transit secrets engine of HashiCorp Vault or OpenBao.
    Transit,
}

/// Longest accepted `COFFER_SESSION_IDLE_MINUTES` (one day).
pub const SESSION_IDLE_MINUTES_MAX: i64 = 24 * 60;
/// Longest accepted `COFFER_SESSION_MAX_HOURS` (one week).
pub const SESSION_MAX_HOURS_MAX: i64 = 7 * 24;
/// Default `COFFER_REQUEST_TIMEOUT_SECONDS`.
pub const REQUEST_TIMEOUT_SECONDS_DEFAULT: u64 = 10;
/// Default `COFFER_MAX_CONNECTIONS` (per worker).
pub const MAX_CONNECTIONS_DEFAULT: u64 = 10_000;

/// Longest accepted `COFFER_LOCKOUT_MINUTES` (one week).
pub const LOCKOUT_MINUTES_MAX: i64 = 7 * 24 * 60;

/// Longest accepted `COFFER_CARD_TOKEN_MINUTES`: a token holds a CVV, which must not be kept
/// longer than it takes a customer to finish a checkout.
/// How long a payment.js card token can be used unless `COFFER_CARD_TOKEN_MINUTES` says otherwise.
pub const CARD_TOKEN_MINUTES_DEFAULT: i64 = 30;
pub const CARD_TOKEN_MINUTES_MAX: i64 = 240;
/// How long a request waits for a concurrent one with its Idempotency-Key, by default.
pub const IDEMPOTENCY_WAIT_MS_DEFAULT: u64 = 10_000;

/// Cards per batch of the account updater (`vault::lifecycle::UPDATER_BATCH`).
pub const ACCOUNT_UPDATER_BATCH_DEFAULT: i64 = 500;

impl Settings {
    /// Settings for tests: a data dir and database URL chosen by the caller, port 0.
    pub fn for_tests(data_dir: &Path, database_url: Option<String>) -> Settings {
        Settings {
            bind: "127.0.0.1:0".into(),
            metrics_bind: None,
            log_format: LogFormat::Text,
            data_dir: data_dir.to_path_buf(),
            database_url,
            session_key: None,
            admin_password: Some("admin-test-password".into()),
            cookie_secure: false,
            session_idle_minutes: crate::console::auth::SESSION_IDLE_MINUTES,
            session_max_hours: crate::console::auth::SESSION_MAX_HOURS,
            vault_key: None,
            kms: KmsMode::Local,
            transit_addr: None,
            transit_token: None,
            transit_token_file: None,
            transit_mount: "transit".into(),
            transit_key: None,
            signature_skew_seconds: 300,
            idempotency_wait_ms: IDEMPOTENCY_WAIT_MS_DEFAULT,
            workers: Some(1),
            db_pool_size: 4,
            callback_poll_ms: 100,
            callback_retry_base_seconds: 2.0,
            callback_retry_cap_seconds: 3600.0,
            callback_max_attempts: 10,
            callback_allow_private: None,
            public_url: None,
            payment_page_minutes: 30,
            card_token_minutes: CARD_TOKEN_MINUTES_DEFAULT,
            lockout_minutes: crate::console::auth::LOCK_MINUTES,
            require_2fa: false,
            sqlite_group_commit: true,
            sqlite_inline_reads: true,
            trusted_proxy_header: None,
            // Off in tests (they tokenize many cards from one address); the limits' own tests
            // switch them on.
            tokenize_limit_per_address: 0,
            tokenize_limit_per_key: 0,
            request_timeout_seconds: REQUEST_TIMEOUT_SECONDS_DEFAULT,
            max_connections: MAX_CONNECTIONS_DEFAULT,
            hash_threads: None,
            hash_queue: 32,
            // Tests flush the access audit queue themselves (the audit page does, too).
            access_audit_flush_ms: 60_000,
            account_updater_batch: ACCOUNT_UPDATER_BATCH_DEFAULT,
            account_updater_pause_ms: 0,
        }
    }

    /// The password hashing pool these settings ask for.
    pub fn hash_pool(&self) -> crate::gateway::password::HashPool {
        let threads = self
            .hash_threads
            .map_or_else(crate::gateway::password::HashPool::default_threads, |n| {
                usize::try_from(n).unwrap_or(1)
            });
        crate::gateway::password::HashPool::new(
            threads,
            usize::try_from(self.hash_queue).unwrap_or(usize::MAX),
        )
    }

    /// What console sign-in takes from the settings.
    pub fn login_policy(&self) -> crate::console::auth::Policy {
        crate::console::auth::Policy {
            lock_minutes: self.lockout_minutes,
            require_two_factor: self.require_2fa,
        }
    }

    /// How long console sessions live.
    pub fn session_limits(&self) -> crate::console::auth::SessionLimits {
        crate::console::auth::SessionLimits {
            idle_minutes: self.session_idle_minutes,
            max_hours: self.session_max_hours,
        }
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) if !u.trim().is_empty() => u.clone(),
            _ => self
                .data_dir
                .join("coffer.db")
                .to_string_lossy()
                .into_owned(),
        }
    }

    /// The public base URL without a trailing slash (see `public_url`).
    pub fn public_base(&self) -> String {
        match &self.public_url {
            Some(u) if !u.trim().is_empty() => u.trim().trim_end_matches('/').to_string(),
            _ => format!("http://{}", self.bind),
        }
    }

    /// Checks `public_url`: an http(s) URL short enough for `redirectUrl` (255 characters).
    pub fn check_public_url(&self) -> anyhow::Result<()> {
        let u = self.public_base();
        if !(u.starts_with("http://") || u.starts_with("https://"))
            || u.len() > 180
            || u.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            bail!("COFFER_PUBLIC_URL must be an http(s) URL of at most 180 characters");
        }
        if self.payment_page_minutes < 1 {
            bail!("COFFER_PAYMENT_PAGE_MINUTES must be at least 1");
        }
        if !(1..=CARD_TOKEN_MINUTES_MAX).contains(&self.card_token_minutes) {
            bail!("COFFER_CARD_TOKEN_MINUTES must be between 1 and {CARD_TOKEN_MINUTES_MAX}");
        }
        if !(1..=SESSION_IDLE_MINUTES_MAX).contains(&self.session_idle_minutes) {
            bail!("COFFER_SESSION_IDLE_MINUTES must be between 1 and {SESSION_IDLE_MINUTES_MAX}");
        }
        if !(1..=SESSION_MAX_HOURS_MAX).contains(&self.session_max_hours) {
            bail!("COFFER_SESSION_MAX_HOURS must be between 1 and {SESSION_MAX_HOURS_MAX}");
        }
        if !(1..=LOCKOUT_MINUTES_MAX).contains(&self.lockout_minutes) {
            bail!("COFFER_LOCKOUT_MINUTES must be between 1 and {LOCKOUT_MINUTES_MAX}");
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        Backend::from_url(&self.database_url())
    }

    /// Creates the data dir (and missing parents) with mode 0700, or warns when an existing
    /// one can be read or written by other users ([`data_dir_exposure`]).
    pub fn ensure_data_dir(&self) -> anyhow::Result<()> {
        let dir = &self.data_dir;
        if dir.is_dir() {
            if let Some(warning) = data_dir_exposure(dir) {
                tracing::warn!(data_dir = %dir.display(), "{warning}");
            }
            return Ok(());
        }
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::DirBuilderExt;
            builder.mode(0o700);
        }
        builder
            .create(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))
    }

    /// The session key material: from the environment, or (SQLite only) a key file kept in
    /// the data dir, generated on first start.
    pub fn session_key_material(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(k) = &self.session_key {
            if k.len() < 32 {
                bail!("COFFER_SESSION_KEY must be at least 32 characters");
            }
            return Ok(k.as_bytes().to_vec());
        }
        if self.backend() == Backend::Postgres {
            bail!(
                "COFFER_SESSION_KEY is required with PostgreSQL: every Coffer process sharing the \
                 database must use the same key"
            );
        }
        let hex_key = read_or_create_secret_file(&self.data_dir.join("session.key"), 64)?;
        Ok(hex_key.into_bytes())
    }
}

/// A warning when `dir` (an existing data dir) can be read, written or entered by users other
/// than its owner (its mode allows anything to group or others): the database and keys in it
/// are for Coffer alone. `None` when it is private (or its mode cannot be read).
pub fn data_dir_exposure(dir: &Path) -> Option<String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then(|| {
            format!(
                "the data dir is readable or writable by other users (mode {mode:04o}): it holds \
                 the database and the vault's keys; make it private with `chmod 700`"
            )
        })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// Reads a hex secret from `path`, or creates it with `bytes` random bytes (mode 0600).
pub fn read_or_create_secret_file(path: &Path, bytes: usize) -> anyhow::Result<String> {
    read_or_create(path, || crate::ids::random_hex(bytes))
}

/// Reads the trimmed content of a secret file, or creates the file with `make()`. The file
/// appears complete or not at all ([`write_private`]), so two processes starting together agree
/// on one secret. An empty file can only be left by an interrupted write of an older version
/// (it created the file, then wrote): it holds no secret, so it is replaced.
pub fn read_or_create(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_string()),
        Ok(_) => {
            tracing::warn!(file = %path.display(), "empty secret file (an interrupted first start): replacing it");
            std::fs::remove_file(path)
                .with_context(|| format!("cannot remove the empty {}", path.display()))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
    let secret = make();
    match write_private(path, &secret) {
        Ok(()) => Ok(secret),
        // Another process created it first: use its secret.
        Err(e) if path.exists() => match std::fs::read_to_string(path) {
            Ok(s) if !s.trim().is_empty() => Ok(s.trim().to_string()),
            _ => Err(e),
        },
        Err(e) => Err(e),
    }
}

/// Creates `path` (mode 0600) holding `content`, atomically: the content is written and synced
/// to a temporary file first, then linked to `path`, which fails if `path` exists. A crash
/// leaves either no file or the whole file, never an empty one.
pub fn write_private(path: &Path, content: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let written = (|| -> anyhow::Result<()> {
        let mut f = opts
            .open(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        f.write_all(content.as_bytes())?;
        f.sync_all()?;
        std::fs::hard_link(&tmp, path).with_context(|| format!("cannot create {}", path.display()))
    })();
    let _ = std::fs::remove_file(&tmp);
    written?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_file_is_created_once_and_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("session.key");
        let first = read_or_create_secret_file(&path, 32).expect("create");
        assert_eq!(first.len(), 64);
        assert_eq!(read_or_create_secret_file(&path, 32).expect("read"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // No temporary file is left beside it.
        assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 1);
    }

    #[cfg(unix)]
    #[test]
    fn a_data_dir_open_to_other_users_is_reported_and_a_private_one_is_not() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let chmod = |mode| {
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(mode))
                .expect("chmod")
        };
        chmod(0o755);
        let w = data_dir_exposure(dir.path()).expect("a warning for 0755");
        assert!(w.contains("mode 0755") && w.contains("chmod 700"), "{w}");
        for mode in [0o750, 0o701, 0o707, 0o770] {
            chmod(mode);
            assert!(data_dir_exposure(dir.path()).is_some(), "{mode:o}");
        }
        chmod(0o700);
        assert_eq!(data_dir_exposure(dir.path()), None);
    }

    #[cfg(unix)]
    #[test]
    fn a_data_dir_coffer_creates_is_0700_with_its_missing_parents() {
        use std::os::unix::fs::PermissionsExt;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("a").join("data");
        Settings::for_tests(&dir, None)
            .ensure_data_dir()
            .expect("create");
        for d in [&dir, &root.path().join("a")] {
            let mode = std::fs::metadata(d).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o700, "{}", d.display());
        }
        assert_eq!(data_dir_exposure(&dir), None);
    }

    #[test]
    fn an_empty_secret_file_left_by_an_interrupted_start_is_replaced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("vault.key");
        std::fs::write(&path, "").expect("empty file");
        let s = read_or_create_secret_file(&path, 32).expect("replace");
        assert_eq!(s.len(), 64);
        assert_eq!(std::fs::read_to_string(&path).expect("read").trim(), s);
    }

    #[test]
    fn write_private_never_overwrites_an_existing_secret() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("k");
        write_private(&path, "first").expect("create");
        assert!(write_private(&path, "second").is_err());
        assert_eq!(std::fs::read_to_string(&path).expect("read"), "first");
        // read_or_create keeps the existing secret too.
        assert_eq!(
            read_or_create(&path, || "third".into()).expect("read"),
            "first"
        );
    }
}
