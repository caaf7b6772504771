//! Where the key-encryption key lives: the provider that wraps and unwraps the vault's data keys.
//!
//! * [`LocalKek`] (`COFFER_KMS=local`, the default): the master key from `COFFER_VAULT_KEY` or the
//!   SQLite data dir's `vault.key`, wrapping with AES-256-GCM in Coffer (the format of
//!   `gateway::vault::MasterKey::wrap`, unchanged).
//! * [`TransitKek`] (`COFFER_KMS=transit`): the Transit secrets engine of HashiCorp Vault or
//!   OpenBao. Data keys are created by `POST /v1/{mount}/datakey/wrapped/{key}` (only the
//!   ciphertext comes back), opened by `POST /v1/{mount}/decrypt/{key}` and rewrapped under a new
//!   version of the Transit key by `POST /v1/{mount}/rewrap/{key}`. The key-encryption key never
//!   leaves the key manager; Coffer holds no master key.
//!
//! The keyring (`vault::keyring`) only sees [`KeyEncryptionKey`]. Calls to the key manager are
//! synchronous and short (a timeout of [`TRANSIT_TIMEOUT`]); each runs on a thread of its own, so
//! that it never blocks an async worker and works the same from start-up, a blocking database
//! task or a command.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::bail;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::config::{KmsMode, Settings};
use crate::db::Backend;
use crate::gateway::vault::{DataKey, MasterKey};

/// How long one call to the key manager may take.
pub const TRANSIT_TIMEOUT: Duration = Duration::from_secs(3);

/// Why the key manager did not do what was asked. Messages name the key manager and the cause,
/// never a token or key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum KmsError {
    /// No answer, a server error (e.g. sealed) or a refused token: the keys may come back.
    #[error("{0}")]
    Unavailable(String),
    /// The key manager answered and the answer can never work (wrong key, bad ciphertext).
    #[error("{0}")]
    Refused(String),
}

/// The key-encryption key, wherever it lives.
pub trait KeyEncryptionKey: Send + Sync {
    /// `local` or `transit`.
    fn mode(&self) -> &'static str;
    /// What it is, for messages and /healthz (no secret): `Transit key coffer at http://…`.
    fn describe(&self) -> String;
    /// The value of `vault_keys.master_key_id` for keys it wraps.
    fn id(&self) -> String;
    /// A new data key and its wrapped form, to be stored.
    fn generate(&self) -> Result<(DataKey, String), KmsError>;
    /// Opens a wrapped data key.
    fn unwrap_key(&self, wrapped: &str) -> Result<DataKey, KmsError>;
    /// One cheap call that shows the key manager answers and knows the key (for /readyz).
    fn check(&self) -> Result<(), KmsError>;
    /// The key-encryption key of one root tenant's data keys. In transit mode it is a Transit
    /// key of that tenant alone (`<COFFER_TRANSIT_KEY>-tenant-<root id>`), so that destroying it
    /// makes the tenant's data keys, and every record they sealed, unopenable even from a
    /// backup. In local mode it is the master key itself (see the README, "Keys").
    fn for_tenant(&self, root: &str) -> Box<dyn KeyEncryptionKey>;
    /// Creates the key in the key manager when it does not exist yet.
    fn ensure(&self) -> Result<(), KmsError> {
        Ok(())
    }
    /// Destroys the key for good: true when a key of its own was destroyed, false when there is
    /// none to destroy (local mode, where a tenant's keys are the rows deleted with it).
    fn destroy(&self) -> Result<bool, KmsError> {
        Ok(false)
    }
}

/// The master key held by Coffer (today's behaviour).
pub struct LocalKek {
    master: MasterKey,
    id: String,
}

impl LocalKek {
    pub fn new(master: MasterKey) -> LocalKek {
        let id = local_master_id(&master);
        LocalKek { master, id }
    }
    pub fn master(&self) -> &MasterKey {
        &self.master
    }
}

/// A short public id of a master key: which key wrapped a row, without revealing it.
pub fn local_master_id(m: &MasterKey) -> String {
    let hex_key = Zeroizing::new(m.to_hex());
    hex::encode(&Sha256::digest(hex_key.as_bytes())[..6])
}

impl KeyEncryptionKey for LocalKek {
    fn mode(&self) -> &'static str {
        "local"
    }
    fn describe(&self) -> String {
        format!("local master key {}", self.id)
    }
    fn id(&self) -> String {
        self.id.clone()
    }
    fn generate(&self) -> Result<(DataKey, String), KmsError> {
        let key = DataKey::generate();
        let wrapped = self
            .master
            .wrap(&key)
            .map_err(|e| KmsError::Refused(e.to_string()))?;
        Ok((key, wrapped))
    }
    fn unwrap_key(&self, wrapped: &str) -> Result<DataKey, KmsError> {
        self.master
            .unwrap_key(wrapped)
            .map_err(|e| KmsError::Refused(e.to_string()))
    }
    fn check(&self) -> Result<(), KmsError> {
        Ok(())
    }
    fn for_tenant(&self, _root: &str) -> Box<dyn KeyEncryptionKey> {
        Box::new(LocalKek {
            master: self.master.clone(),
            id: self.id.clone(),
        })
    }
}

/// The Transit token: the value of `COFFER_TRANSIT_TOKEN`, or the file of
/// `COFFER_TRANSIT_TOKEN_FILE`, read again on every call (an agent may renew it).
#[derive(Clone)]
enum Token {
    Value(Zeroizing<String>),
    File(PathBuf),
}

/// The Transit secrets engine of HashiCorp Vault or OpenBao.
#[derive(Clone)]
pub struct TransitKek {
    addr: String,
    mount: String,
    key: String,
    token: Token,
    /// Built on the first call (on a thread of its own) and reused.
    client: std::sync::OnceLock<reqwest::blocking::Client>,
}

impl TransitKek {
    /// From the settings, checked: `COFFER_TRANSIT_ADDR`, `COFFER_TRANSIT_KEY` and a token are
    /// required.
    pub fn from_settings(s: &Settings) -> anyhow::Result<TransitKek> {
        let addr = match s.transit_addr.as_deref().map(str::trim) {
            Some(a) if !a.is_empty() => a.trim_end_matches('/').to_string(),
            _ => bail!(
                "COFFER_KMS=transit needs COFFER_TRANSIT_ADDR (the key manager's URL, e.g. https://vault.example:8200)"
            ),
        };
        match url::Url::parse(&addr) {
            Ok(u)
                if (u.scheme() == "http" || u.scheme() == "https")
                    && u.host().is_some()
                    && u.query().is_none()
                    && u.username().is_empty()
                    && u.password().is_none() => {}
            _ => bail!(
                "COFFER_TRANSIT_ADDR must be an http(s) URL without credentials or query, e.g. https://vault.example:8200"
            ),
        }
        let key = match s.transit_key.as_deref().map(str::trim) {
            Some(k) if !k.is_empty() => k.to_string(),
            _ => bail!("COFFER_KMS=transit needs COFFER_TRANSIT_KEY (the name of the Transit key)"),
        };
        if !valid_name(&key, false) {
            bail!("COFFER_TRANSIT_KEY may contain only letters, digits, '_', '-' and '.'");
        }
        let mount = s.transit_mount.trim().trim_matches('/').to_string();
        if !valid_name(&mount, true) {
            bail!(
                "COFFER_TRANSIT_MOUNT may contain only letters, digits, '_', '-', '.' and '/' (default: transit)"
            );
        }
        let token = match (&s.transit_token, &s.transit_token_file) {
            (Some(_), Some(_)) => {
                bail!("set either COFFER_TRANSIT_TOKEN or COFFER_TRANSIT_TOKEN_FILE, not both")
            }
            (Some(t), None) if !t.trim().is_empty() => {
                Token::Value(Zeroizing::new(t.trim().to_string()))
            }
            (None, Some(p)) => {
                let t = read_token(p)?;
                drop(t);
                Token::File(p.clone())
            }
            _ => bail!(
                "COFFER_KMS=transit needs COFFER_TRANSIT_TOKEN or COFFER_TRANSIT_TOKEN_FILE (a token allowed to use the Transit key)"
            ),
        };
        Ok(TransitKek {
            addr,
            mount,
            key,
            token,
            client: std::sync::OnceLock::new(),
        })
    }

    /// One request to Transit (`{op}/{key}`, then `/{suffix}` if any), on a thread of its own
    /// (see the module docs).
    fn call(
        &self,
        method: &str,
        op: &str,
        suffix: &str,
        body: Option<Value>,
    ) -> Result<Value, KmsError> {
        let token = match &self.token {
            Token::Value(t) => t.clone(),
            Token::File(p) => read_token(p).map_err(|e| KmsError::Unavailable(format!("{e:#}")))?,
        };
        let mut url = format!("{}/v1/{}/{op}/{}", self.addr, self.mount, self.key);
        if !suffix.is_empty() {
            url = format!("{url}/{suffix}");
        }
        let what = format!("{} ({method} {op})", self.describe());
        let method = method.to_string();
        let cell = &self.client;
        let run = move || -> Result<Value, KmsError> {
            let client = match cell.get() {
                Some(c) => c,
                None => {
                    let c = reqwest::blocking::Client::builder()
                        .timeout(TRANSIT_TIMEOUT)
                        .connect_timeout(TRANSIT_TIMEOUT)
                        .redirect(reqwest::redirect::Policy::none())
                        .no_proxy()
                        .build()
                        .map_err(|e| KmsError::Unavailable(format!("{what}: {e}")))?;
                    cell.get_or_init(|| c)
                }
            };
            let mut req = match method.as_str() {
                "GET" => client.get(&url),
                "DELETE" => client.delete(&url),
                _ => client.post(&url),
            };
            req = req.header("X-Vault-Token", token.as_str());
            if let Some(b) = body {
                req = req
                    .header("content-type", "application/json")
                    .body(b.to_string());
            }
            let resp = req.send().map_err(|e| {
                KmsError::Unavailable(format!("{what}: unreachable: {}", without_url(&e)))
            })?;
            let status = resp.status();
            let bytes = resp
                .bytes()
                .map_err(|e| KmsError::Unavailable(format!("{what}: {}", without_url(&e))))?;
            let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            if status.is_success() {
                return Ok(v);
            }
            let errors = v["errors"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(|s| s.chars().take(200).collect::<String>())
                        .collect::<Vec<_>>()
                        .join("; ")
                })
                .unwrap_or_default();
            let msg = format!("{what}: HTTP {} {errors}", status.as_u16());
            // 4xx other than a refused token: the request itself can never succeed.
            if status.is_client_error() && status.as_u16() != 403 && status.as_u16() != 401 {
                Err(KmsError::Refused(msg))
            } else {
                Err(KmsError::Unavailable(msg))
            }
        };
        crate::metrics::kms_request(
            op,
            suffix,
            std::thread::scope(|s| s.spawn(run).join())
                .unwrap_or_else(|_| Err(KmsError::Unavailable("key manager call panicked".into()))),
        )
    }

    /// The Transit key of one root tenant: `<key>-tenant-<root id>` on the same mount.
    pub fn for_tenant_transit(&self, root: &str) -> TransitKek {
        TransitKek {
            addr: self.addr.clone(),
            mount: self.mount.clone(),
            key: format!("{}-tenant-{root}", self.key),
            token: self.token.clone(),
            client: std::sync::OnceLock::new(),
        }
    }

    /// `coffer rotate-vault-key` in transit mode: a new version of the Transit key.
    pub fn rotate(&self) -> Result<(), KmsError> {
        self.call("POST", "keys", "rotate", None).map(|_| ())
    }

    /// The ciphertext of a data key under the Transit key's newest version.
    pub fn rewrap(&self, wrapped: &str) -> Result<String, KmsError> {
        let v = self.call("POST", "rewrap", "", Some(json!({ "ciphertext": wrapped })))?;
        ciphertext(&v, &self.describe())
    }
}

fn ciphertext(v: &Value, what: &str) -> Result<String, KmsError> {
    match v["data"]["ciphertext"].as_str() {
        Some(c) if c.starts_with("vault:v") => Ok(c.to_string()),
        _ => Err(KmsError::Refused(format!(
            "{what}: the answer holds no ciphertext"
        ))),
    }
}

/// reqwest's message without the URL it names (it holds no secret, but the path is noise).
fn without_url(e: &reqwest::Error) -> String {
    let mut s = match e.url() {
        Some(u) => e.to_string().replace(&format!(" ({u})"), ""),
        None => e.to_string(),
    };
    let mut src = std::error::Error::source(e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

fn read_token(p: &std::path::Path) -> anyhow::Result<Zeroizing<String>> {
    let raw = Zeroizing::new(
        std::fs::read_to_string(p)
            .map_err(|e| anyhow::anyhow!("COFFER_TRANSIT_TOKEN_FILE {}: {e}", p.display()))?,
    );
    let t = raw.trim();
    if t.is_empty() {
        bail!("COFFER_TRANSIT_TOKEN_FILE {} is empty", p.display());
    }
    Ok(Zeroizing::new(t.to_string()))
}

fn valid_name(s: &str, slashes: bool) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && !s.contains("..")
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c) || (slashes && c == '/'))
}

impl KeyEncryptionKey for TransitKek {
    fn mode(&self) -> &'static str {
        "transit"
    }
    fn describe(&self) -> String {
        format!(
            "Transit key {} (mount {}) at {}",
            self.key, self.mount, self.addr
        )
    }
    fn id(&self) -> String {
        format!("transit:{}/{}", self.mount, self.key)
    }
    fn generate(&self) -> Result<(DataKey, String), KmsError> {
        let v = self.call("POST", "datakey/wrapped", "", Some(json!({ "bits": 256 })))?;
        let wrapped = ciphertext(&v, &self.describe())?;
        // `wrapped` answers the ciphertext only: the plaintext key is asked for by decrypt.
        let key = self.unwrap_key(&wrapped)?;
        Ok((key, wrapped))
    }
    fn unwrap_key(&self, wrapped: &str) -> Result<DataKey, KmsError> {
        let mut v = self.call(
            "POST",
            "decrypt",
            "",
            Some(json!({ "ciphertext": wrapped })),
        )?;
        let mut plain = match v["data"]["plaintext"].take() {
            Value::String(s) => s,
            _ => {
                return Err(KmsError::Refused(format!(
                    "{}: the answer holds no plaintext",
                    self.describe()
                )));
            }
        };
        let bytes = Zeroizing::new(BASE64.decode(plain.as_bytes()).unwrap_or_default());
        plain.zeroize();
        DataKey::from_bytes(&bytes).ok_or_else(|| {
            KmsError::Refused(format!(
                "{}: the unwrapped data key is not 32 bytes",
                self.describe()
            ))
        })
    }
    fn check(&self) -> Result<(), KmsError> {
        self.call("GET", "keys", "", None).map(|_| ())
    }
    fn for_tenant(&self, root: &str) -> Box<dyn KeyEncryptionKey> {
        Box::new(self.for_tenant_transit(root))
    }
    /// `GET keys/<name>`, and `POST keys/<name>` (an AES-256-GCM key) when it is missing.
    fn ensure(&self) -> Result<(), KmsError> {
        match self.call("GET", "keys", "", None) {
            Ok(_) => Ok(()),
            Err(KmsError::Refused(_)) => self
                .call("POST", "keys", "", Some(json!({ "type": "aes256-gcm96" })))
                .map(|_| ()),
            Err(e) => Err(e),
        }
    }
    /// Allows the key's deletion (`POST keys/<name>/config`), then deletes it
    /// (`DELETE keys/<name>`): every version of it is gone from the key manager.
    fn destroy(&self) -> Result<bool, KmsError> {
        match self.call(
            "POST",
            "keys",
            "config",
            Some(json!({ "deletion_allowed": true })),
        ) {
            Ok(_) => {}
            // No such key: nothing was ever sealed under it.
            Err(KmsError::Refused(_)) => return Ok(false),
            Err(e) => return Err(e),
        }
        self.call("DELETE", "keys", "", None)?;
        Ok(true)
    }
}

/// The master key from the settings: `COFFER_VAULT_KEY`, or (SQLite only) `vault.key` in the
/// data dir, generated on first start. Local mode only (`kms::from_settings` refuses a master
/// key in transit mode).
pub fn master_key(settings: &Settings) -> anyhow::Result<MasterKey> {
    if let Some(k) = &settings.vault_key {
        return MasterKey::from_encoded(k).map_err(|e| anyhow::anyhow!("COFFER_VAULT_KEY: {e}"));
    }
    if settings.backend() == Backend::Postgres {
        bail!(
            "COFFER_VAULT_KEY is required with PostgreSQL: every Coffer process must use the same master key"
        );
    }
    let path = settings.data_dir.join("vault.key");
    let hex_key = zeroize::Zeroizing::new(crate::config::read_or_create(&path, || {
        MasterKey::generate().to_hex()
    })?);
    MasterKey::from_encoded(&hex_key).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

/// The key-encryption key the settings ask for. In local mode it is the master key
/// (`COFFER_VAULT_KEY`, or SQLite's `vault.key`, created on first start); in transit mode no
/// master key may be configured and no key file is created.
pub fn from_settings(settings: &Settings) -> anyhow::Result<Box<dyn KeyEncryptionKey>> {
    match settings.kms {
        KmsMode::Local => Ok(Box::new(LocalKek::new(master_key(settings)?))),
        KmsMode::Transit => {
            if settings.vault_key.is_some() {
                bail!(
                    "COFFER_VAULT_KEY is set but COFFER_KMS=transit: in transit mode the key manager holds the key-encryption key and no master key may exist in Coffer's environment. Unset COFFER_VAULT_KEY."
                );
            }
            Ok(Box::new(TransitKek::from_settings(settings)?))
        }
    }
}
