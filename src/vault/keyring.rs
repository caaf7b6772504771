//! The vault's keys. A key-encryption key (`vault::kms`: the local master key from
//! `COFFER_VAULT_KEY` or, in SQLite mode, a key file generated in the data dir; or the Transit
//! key of an external key manager) wraps data keys and one MAC key, stored in `vault_keys`. Records
//! name the data key that sealed them, so `coffer rotate-vault-key` re-wraps the data keys under
//! a new master key (and starts a new data key) without touching records and without downtime:
//! running processes keep their unwrapped keys in memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::config::Settings;
use crate::db::{Backend, DbConnection, is_unique_violation};
use crate::error::KeysUnavailable;
use crate::gateway::vault::{self, DataKey, MasterKey};
use crate::models::now;
use crate::models::vault_key::{self, VaultKey};
use crate::vault::kms::{self, KeyEncryptionKey, KmsError, LocalKek};

const MAC_KEY_ID: &str = "mac";
/// After a failed call to the key manager, requests that need a missing key fail at once for
/// this long instead of each waiting for the key manager again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// The vault's keys. The key-encryption key is a [`KeyEncryptionKey`] (the local master key or
/// the key manager's Transit key); data keys and the MAC key are unwrapped by it and held in
/// memory only (zeroed on drop). A key the key manager could not unwrap (it was unreachable)
/// stays pending: whatever needs it answers [`KeysUnavailable`] until a later unwrap succeeds,
/// without a restart.
///
/// Per-tenant data keys and re-encryption fit here later without changing the callers: a data
/// key is found by the id each record names (`v1:<key id>:…`), so keys of one tenant are more
/// rows of `vault_keys` with an owner column, `seal` takes the owner to pick that owner's active
/// key, and a re-encryption job opens each record with its old key and seals it with the new one.
pub struct Keyring {
    kek: Box<dyn KeyEncryptionKey>,
    kek_id: String,
    /// The data key new records are sealed with.
    active_id: String,
    keys: RwLock<HashMap<String, DataKey>>,
    mac: OnceLock<DataKey>,
    /// Rows whose key the key manager has not unwrapped yet.
    pending: Mutex<Vec<VaultKey>>,
    /// Their number, read by /healthz without waiting for a recovery in progress.
    missing: AtomicUsize,
    state: Mutex<KmsState>,
}

#[derive(Default)]
struct KmsState {
    /// The last failed call to the key manager (cleared by a successful one).
    last_error: Option<String>,
    last_failure: Option<Instant>,
}

/// The keyring's last known state, for /healthz (no call to the key manager).
#[derive(Debug, Clone, serde::Serialize)]
pub struct KeyStatus {
    /// `local` or `transit`.
    pub manager: &'static str,
    /// `ok`, `degraded` (every key held, the last call to the key manager failed) or
    /// `unavailable` (keys the key manager has not unwrapped: APIs needing them answer 503).
    pub state: &'static str,
    /// Keys not unwrapped yet.
    pub missing_keys: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

/// A short public id of a master key: which key wrapped a row, without revealing it.
fn master_id(m: &MasterKey) -> String {
    kms::local_master_id(m)
}

/// The master key from the settings (local mode): see [`kms::master_key`].
pub use crate::vault::kms::master_key;

fn new_row(
    master: &MasterKey,
    master_id: &str,
    id: &str,
    purpose: &str,
    key: &DataKey,
) -> anyhow::Result<VaultKey> {
    Ok(row(
        id,
        purpose,
        master.wrap(key).map_err(|e| anyhow::anyhow!("{e}"))?,
        master_id,
    ))
}

fn row(id: &str, purpose: &str, wrapped: String, kek_id: &str) -> VaultKey {
    VaultKey {
        id: id.into(),
        purpose: purpose.into(),
        wrapped,
        master_key_id: kek_id.into(),
        active: true,
        created_at: now(),
    }
}

/// A new key wrapped by `kek`, as a row to insert.
fn generated_row(kek: &dyn KeyEncryptionKey, id: &str, purpose: &str) -> anyhow::Result<VaultKey> {
    let (_, wrapped) = kek.generate().map_err(|e| {
        anyhow::anyhow!(
            "cannot create the vault's {purpose} key: {e}. The vault has no keys yet, so Coffer \
             cannot start before {} answers.",
            kek.describe()
        )
    })?;
    Ok(row(id, purpose, wrapped, &kek.id()))
}

fn is_transit_row(r: &VaultKey) -> bool {
    r.master_key_id.starts_with("transit:")
}

impl Keyring {
    /// Loads the keys with a local master key (`COFFER_KMS=local`).
    pub fn load(conn: &mut DbConnection, master: MasterKey) -> anyhow::Result<Keyring> {
        Self::load_with(conn, Box::new(LocalKek::new(master)))
    }

    /// Loads the keys with the key-encryption key the settings name (`COFFER_KMS`).
    pub fn from_settings(conn: &mut DbConnection, settings: &Settings) -> anyhow::Result<Keyring> {
        Self::load_with(conn, kms::from_settings(settings)?)
    }

    /// Loads the keys, creating the MAC key and a first data key when missing. Safe when several
    /// processes start at once: the MAC key has a fixed id, so only one insert wins. With the
    /// key manager unreachable, keys it has not unwrapped stay pending (see [`Keyring`]); a
    /// local master key that does not open a key is an error, as is a vault whose keys were
    /// wrapped in the other mode.
    pub fn load_with(
        conn: &mut DbConnection,
        kek: Box<dyn KeyEncryptionKey>,
    ) -> anyhow::Result<Keyring> {
        let transit = kek.mode() == "transit";
        let rows = vault_key::all(conn)?;
        if let Some(r) = rows.iter().find(|r| is_transit_row(r) != transit) {
            if transit {
                bail!(
                    "vault key {} is wrapped by the local master key {}, but COFFER_KMS=transit: \
                     this vault was created in local mode, and moving an existing vault to the \
                     key manager is not supported yet. Start it with COFFER_KMS=local.",
                    r.id,
                    r.master_key_id
                );
            }
            bail!(
                "vault key {} is wrapped by the key manager ({}), but COFFER_KMS is local: \
                 start Coffer with COFFER_KMS=transit and the COFFER_TRANSIT_* settings.",
                r.id,
                r.master_key_id
            );
        }
        if !rows.iter().any(|r| r.id == MAC_KEY_ID) {
            let row = generated_row(kek.as_ref(), MAC_KEY_ID, "mac")?;
            if let Err(e) = vault_key::insert(conn, &row)
                && !is_unique_violation(&e)
            {
                return Err(e.into());
            }
        }
        if !rows.iter().any(|r| r.purpose == "data") {
            let row = generated_row(kek.as_ref(), &crate::ids::new_id(), "data")?;
            vault_key::insert(conn, &row)?;
        }
        let rows = vault_key::all(conn)?;
        let active_id = rows
            .iter()
            .filter(|r| r.purpose == "data")
            .rfind(|r| r.active)
            .or_else(|| rows.iter().rfind(|r| r.purpose == "data"))
            .context("no data key")?
            .id
            .clone();
        let keyring = Keyring {
            kek_id: kek.id(),
            kek,
            active_id,
            keys: RwLock::new(HashMap::new()),
            mac: OnceLock::new(),
            pending: Mutex::new(vec![]),
            missing: AtomicUsize::new(0),
            state: Mutex::new(KmsState::default()),
        };
        let mid = keyring.kek_id.clone();
        for r in rows {
            match keyring.kek.unwrap_key(&r.wrapped) {
                Ok(k) => keyring.place(&r, k),
                Err(e) if !transit => bail!(
                    "vault key {} cannot be unwrapped with this master key ({e}): it is wrapped by \
                     master key {} and this one is {mid}. Is COFFER_VAULT_KEY (or vault.key in the \
                     data dir) the current master key? After `coffer rotate-vault-key` every \
                     process needs the new key.",
                    r.id,
                    r.master_key_id
                ),
                Err(e) => {
                    keyring.failed(&e);
                    lock(&keyring.pending).push(r);
                }
            }
        }
        let missing = lock(&keyring.pending).len();
        keyring.missing.store(missing, Ordering::Relaxed);
        if missing > 0 {
            tracing::error!(
                missing,
                error = %keyring.last_error().unwrap_or_default(),
                "the key manager did not unwrap the vault's keys: Coffer serves, and what needs \
                 these keys answers 503 until it does"
            );
        }
        Ok(keyring)
    }

    fn place(&self, r: &VaultKey, k: DataKey) {
        if r.purpose == "mac" {
            let _ = self.mac.set(k);
        } else if let Ok(mut keys) = self.keys.write() {
            keys.insert(r.id.clone(), k);
        }
    }

    fn failed(&self, e: &KmsError) {
        let mut s = lock(&self.state);
        s.last_error = Some(e.to_string());
        s.last_failure = Some(Instant::now());
    }

    fn succeeded(&self) {
        let mut s = lock(&self.state);
        s.last_error = None;
        s.last_failure = None;
    }

    fn last_error(&self) -> Option<String> {
        lock(&self.state).last_error.clone()
    }

    /// Asks the key manager again for the pending keys (at most once per [`RETRY_AFTER`] after
    /// a failure unless `force`); true when none is left.
    fn recover(&self, force: bool) -> bool {
        let mut pending = lock(&self.pending);
        if pending.is_empty() {
            return true;
        }
        let recent = lock(&self.state)
            .last_failure
            .is_some_and(|t| t.elapsed() < RETRY_AFTER);
        if recent && !force {
            return false;
        }
        let mut left = vec![];
        for r in pending.drain(..) {
            if !left.is_empty() {
                // The key manager just failed: the others wait for the next attempt.
                left.push(r);
                continue;
            }
            match self.kek.unwrap_key(&r.wrapped) {
                Ok(k) => {
                    self.succeeded();
                    self.place(&r, k);
                }
                Err(e) => {
                    self.failed(&e);
                    left.push(r);
                }
            }
        }
        *pending = left;
        self.missing.store(pending.len(), Ordering::Relaxed);
        if pending.is_empty() {
            tracing::info!("the key manager unwrapped the vault's pending keys");
        }
        pending.is_empty()
    }

    fn unavailable(&self) -> KeysUnavailable {
        KeysUnavailable(
            "The vault's keys are unavailable: the key manager did not unwrap them. Retry later."
                .into(),
        )
    }

    /// The key of keyed hashes (card fingerprints, API passwords).
    pub fn mac_key(&self) -> Result<&[u8], KeysUnavailable> {
        if self.mac.get().is_none() {
            self.recover(false);
        }
        self.mac
            .get()
            .map(DataKey::as_bytes)
            .ok_or_else(|| self.unavailable())
    }

    /// The card (or IBAN) fingerprint shown to merchants in `returnData`, keyed per root tenant:
    /// `HMAC(K_root, stored)` with `K_root = HMAC(mac key, "returnData fingerprint" ‖ root id)`
    /// and `stored` the fingerprint kept on instruments and card tokens (under the vault's one
    /// MAC key, for finding the same card again). The same card gives the same value to every
    /// merchant below one root tenant and unrelated values under two roots, so two tenants
    /// cannot correlate their customers' cards. `tenant_path` is the materialized path
    /// (`/<root id>/…/`) of the merchant's tenant. The stored fingerprints stay as they are.
    pub fn public_fingerprint(
        &self,
        tenant_path: &str,
        stored: &str,
    ) -> Result<String, KeysUnavailable> {
        let root = tenant_path
            .split('/')
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        let root_key =
            vault::fingerprint(self.mac_key()?, &format!("returnData fingerprint\0{root}"));
        Ok(vault::fingerprint(root_key.as_bytes(), stored))
    }

    /// Seals `plaintext` bound to `aad` (the owning row's id) under the active data key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<String> {
        let get = || {
            self.keys
                .read()
                .ok()
                .and_then(|k| k.get(&self.active_id).cloned())
        };
        let key = match get() {
            Some(k) => k,
            None => {
                self.recover(false);
                get().ok_or_else(|| self.unavailable())?
            }
        };
        vault::seal(&key, &self.active_id, plaintext, aad)
            .map_err(|e| anyhow::anyhow!("seal failed: {e}"))
    }

    /// Opens a sealed record; a key created by another process since start is loaded on demand.
    pub fn open(
        &self,
        conn: &mut DbConnection,
        record: &str,
        aad: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let lookup = |id: &str| self.keys.read().ok().and_then(|k| k.get(id).cloned());
        match vault::open(&lookup, record, aad) {
            Err(vault::VaultError::UnknownKey) => {
                if !self.recover(false) {
                    return Err(self.unavailable().into());
                }
                self.reload(conn)?;
                vault::open(&lookup, record, aad).map_err(|e| anyhow::anyhow!("open failed: {e}"))
            }
            r => r.map_err(|e| anyhow::anyhow!("open failed: {e}")),
        }
    }

    pub fn open_string(
        &self,
        conn: &mut DbConnection,
        record: &str,
        aad: &[u8],
    ) -> anyhow::Result<String> {
        String::from_utf8(self.open(conn, record, aad)?).context("sealed text is not UTF-8")
    }

    fn reload(&self, conn: &mut DbConnection) -> anyhow::Result<()> {
        for r in vault_key::all(conn)? {
            if r.purpose == "data"
                && self
                    .keys
                    .read()
                    .map(|k| !k.contains_key(&r.id))
                    .unwrap_or(false)
            {
                match self.kek.unwrap_key(&r.wrapped) {
                    Ok(k) => {
                        self.succeeded();
                        self.place(&r, k);
                    }
                    Err(e @ KmsError::Unavailable(_)) => {
                        self.failed(&e);
                        tracing::error!(error = %e, key = %r.id, "the key manager did not unwrap a data key");
                        return Err(self.unavailable().into());
                    }
                    Err(e) => return Err(anyhow::anyhow!("{e}")),
                }
            }
        }
        Ok(())
    }

    /// The id of the key-encryption key (`vault_keys.master_key_id` of the keys it wraps).
    pub fn master_key_id(&self) -> &str {
        &self.kek_id
    }

    /// The last known state, without calling the key manager (for /healthz).
    pub fn status(&self) -> KeyStatus {
        let missing_keys = self.missing.load(Ordering::Relaxed);
        let last_error = self.last_error();
        let manager = self.kek.mode();
        let (state, detail) = match (missing_keys, last_error) {
            (0, None) => ("ok", None),
            (0, Some(_)) => (
                "degraded",
                Some(format!(
                    "the last call to the key manager ({manager}) failed; the keys already \
                     unwrapped keep working"
                )),
            ),
            (n, _) => (
                "unavailable",
                Some(format!(
                    "the key manager ({manager}) has not unwrapped {n} of the vault's keys; \
                     what needs them answers 503"
                )),
            ),
        };
        KeyStatus {
            manager,
            state,
            missing_keys,
            detail,
        }
    }

    /// For /readyz: one call to the key manager (a short timeout), then the pending keys are
    /// asked for again. `Err` says why the vault is not ready (logged detail stays in the log).
    pub fn check_ready(&self) -> Result<(), String> {
        if let Err(e) = self.kek.check() {
            tracing::warn!(error = %e, "the key manager does not answer");
            self.failed(&e);
            return Err(format!(
                "the key manager ({}) does not answer",
                self.kek.mode()
            ));
        }
        self.succeeded();
        if !self.recover(true) {
            return Err(format!(
                "the key manager ({}) has not unwrapped every key of the vault",
                self.kek.mode()
            ));
        }
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// `coffer rotate-vault-key`: re-wraps every key under `new_master` and starts a new data key,
/// in one transaction. Records keep naming their data keys and stay readable.
pub fn rotate(
    conn: &mut DbConnection,
    old: &MasterKey,
    new_master: &MasterKey,
) -> anyhow::Result<usize> {
    let new_id = master_id(new_master);
    crate::db::write_tx(conn, |tx| {
        let rows = vault_key::all(tx)?;
        for r in &rows {
            let k = old
                .unwrap_key(&r.wrapped)
                .map_err(|e| anyhow::anyhow!("key {}: {e}", r.id))?;
            let wrapped = new_master.wrap(&k).map_err(|e| anyhow::anyhow!("{e}"))?;
            vault_key::rewrap(tx, &r.id, &wrapped, &new_id)?;
        }
        vault_key::deactivate_data_keys(tx)?;
        let row = new_row(
            new_master,
            &new_id,
            &crate::ids::new_id(),
            "data",
            &DataKey::generate(),
        )?;
        vault_key::insert(tx, &row)?;
        Ok(rows.len())
    })
}

/// Where the master key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MasterKeySource {
    /// `COFFER_VAULT_KEY` (always the case with PostgreSQL).
    Environment,
    /// `vault.key` in the SQLite data dir.
    DataDirFile(PathBuf),
}

pub fn master_key_source(settings: &Settings) -> MasterKeySource {
    if settings.vault_key.is_none() && settings.backend() == Backend::Sqlite {
        MasterKeySource::DataDirFile(settings.data_dir.join("vault.key"))
    } else {
        MasterKeySource::Environment
    }
}

/// What `rotate_master_key` did.
#[derive(Debug)]
pub struct Rotation {
    /// Vault key rows re-wrapped under the new master key.
    pub rewrapped: usize,
    pub source: MasterKeySource,
    /// Short public id of the new master key (as stored in `vault_keys.master_key_id`).
    pub new_master_key_id: String,
}

/// `coffer rotate-vault-key`: checks that the current master key opens the vault, re-wraps every
/// vault key under `new_master` in one write transaction ([`rotate`]) and, when the current key
/// is the data dir's `vault.key`, replaces that file atomically: the new key is written to
/// `vault.key.new` (mode 0600, fsynced) before the commit and renamed over `vault.key` after it.
/// Should the process die between the two, `vault.key.new` holds the key the database uses.
/// `before_commit` runs once every check has passed, right before the write transaction (the
/// command prints a generated key there, so that the key is never lost).
pub fn rotate_master_key(
    conn: &mut DbConnection,
    settings: &Settings,
    new_master: &MasterKey,
    before_commit: impl FnOnce(),
) -> anyhow::Result<Rotation> {
    let source = master_key_source(settings);
    let pending = match &source {
        MasterKeySource::DataDirFile(path) => {
            if !path.exists() {
                bail!(
                    "{} does not exist: there is no vault to rotate (start Coffer once first)",
                    path.display()
                );
            }
            let pending = path.with_extension("key.new");
            if pending.exists() {
                bail!(
                    "{} exists, left by an interrupted rotation. If Coffer cannot open the vault \
                     with {}, the database was rotated to the key in {}: move it over {}. \
                     Otherwise delete it. Then run the rotation again.",
                    pending.display(),
                    path.display(),
                    pending.display(),
                    path.display()
                );
            }
            Some((path.clone(), pending))
        }
        MasterKeySource::Environment => None,
    };
    let old = master_key(settings)?;
    if old.to_hex() == new_master.to_hex() {
        bail!("the new master key is the current one");
    }
    // Proves the current key opens every vault key (and creates them on an empty vault).
    let old_copy = MasterKey::from_encoded(&old.to_hex()).map_err(|e| anyhow::anyhow!("{e}"))?;
    Keyring::load(conn, old_copy)?;

    if let Some((_, pending)) = &pending {
        crate::config::write_private(pending, &new_master.to_hex())?;
    }
    before_commit();
    let rewrapped = match crate::db::write_tx(conn, |tx| rotate(tx, &old, new_master)) {
        Ok(n) => n,
        Err(e) => {
            if let Some((_, pending)) = &pending {
                let _ = std::fs::remove_file(pending);
            }
            return Err(e.context("rotation failed; the database still uses the old master key"));
        }
    };
    if let Some((path, pending)) = &pending {
        std::fs::rename(pending, path).with_context(|| {
            format!(
                "the database now uses the new master key, but {} could not be renamed to {}: \
                 move it by hand before starting Coffer",
                pending.display(),
                path.display()
            )
        })?;
        if let Some(dir) = path.parent() {
            // Makes the rename durable; best effort where directories cannot be opened.
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
    }
    Ok(Rotation {
        rewrapped,
        source,
        new_master_key_id: master_id(new_master),
    })
}

/// What `rotate_transit_key` did.
#[derive(Debug)]
pub struct TransitRotation {
    /// Vault key rows rewrapped under the Transit key's new version.
    pub rewrapped: usize,
    /// The key version they are wrapped by now (`vault:vN:`).
    pub version: String,
}

/// `coffer rotate-vault-key` with `COFFER_KMS=transit`: checks that the key manager opens every
/// vault key, rotates the Transit key (`POST /v1/{mount}/keys/{key}/rotate`), rewraps every
/// stored data key under its new version (`rewrap`, the plaintext keys never leave the key
/// manager) and starts a new data key; the database changes in one write transaction. Running
/// processes keep their unwrapped keys; the old key versions stay usable in the key manager
/// until its `min_decryption_version` is raised.
pub fn rotate_transit_key(
    conn: &mut DbConnection,
    settings: &Settings,
) -> anyhow::Result<TransitRotation> {
    let kek = kms::TransitKek::from_settings(settings)?;
    let rows = vault_key::all(conn)?;
    if rows.is_empty() {
        bail!("the vault has no keys: there is nothing to rotate (start Coffer once first)");
    }
    for r in &rows {
        if !is_transit_row(r) {
            bail!(
                "vault key {} is wrapped by the local master key {}: this vault is in local mode",
                r.id,
                r.master_key_id
            );
        }
        kek.unwrap_key(&r.wrapped)
            .map_err(|e| anyhow::anyhow!("vault key {}: {e}", r.id))?;
    }
    kek.rotate()
        .map_err(|e| anyhow::anyhow!("rotating the Transit key: {e}"))?;
    let mut rewrapped = Vec::with_capacity(rows.len());
    for r in &rows {
        let w = kek
            .rewrap(&r.wrapped)
            .map_err(|e| anyhow::anyhow!("rewrapping vault key {}: {e}", r.id))?;
        rewrapped.push((r.id.clone(), w));
    }
    let fresh = generated_row(&kek, &crate::ids::new_id(), "data")?;
    let version = fresh
        .wrapped
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let kek_id = kek.id();
    let n = crate::db::write_tx(conn, |tx| -> anyhow::Result<usize> {
        for (id, w) in &rewrapped {
            vault_key::rewrap(tx, id, w, &kek_id)?;
        }
        vault_key::deactivate_data_keys(tx)?;
        vault_key::insert(tx, &fresh)?;
        Ok(rewrapped.len())
    })?;
    Ok(TransitRotation {
        rewrapped: n,
        version,
    })
}
