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

/// Whose records a data key seals: a root tenant (every record of that tenant's tree: cards,
/// card tokens, sealed cards of payment sessions and transactions, connector secrets, two-factor
/// secrets of its users) or the platform (platform users' two-factor secrets, and records sealed
/// before keys were per tenant until the re-encryption job moves them).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Owner {
    Platform,
    Tenant(String),
}

impl Owner {
    /// The owner of an object in the tenant tree at `path` (`/<root id>/…/`); no path (a
    /// platform user) is the platform.
    pub fn of_path(path: Option<&str>) -> Owner {
        match path.and_then(|p| p.split('/').find(|s| !s.is_empty())) {
            Some(root) => Owner::Tenant(root.to_string()),
            None => Owner::Platform,
        }
    }
    /// The root tenant's id (`None`: the platform).
    pub fn root(&self) -> Option<&str> {
        match self {
            Owner::Platform => None,
            Owner::Tenant(r) => Some(r),
        }
    }
    fn of_row(r: &VaultKey) -> Owner {
        r.owner.clone().map_or(Owner::Platform, Owner::Tenant)
    }
}

/// A root tenant's new data key, wrapped, not stored yet.
pub struct NewTenantKey(VaultKey);

/// How long a process trusts its view of which key is active per owner before reading it again
/// (a rotation on another process is followed within this time; see [`retire_unused`]).
const ACTIVE_TTL: Duration = Duration::from_secs(1);

/// The vault's keys. The key-encryption key is a [`KeyEncryptionKey`] (the local master key or
/// the key manager's Transit key); each root tenant's data keys are wrapped by that tenant's
/// key-encryption key ([`KeyEncryptionKey::for_tenant`]: its own Transit key in transit mode).
/// Data keys and the MAC key are unwrapped and held in memory only (zeroed on drop). A key the
/// key manager could not unwrap (it was unreachable) stays pending: whatever needs it answers
/// [`KeysUnavailable`] until a later unwrap succeeds, without a restart.
///
/// Records name the data key that sealed them (`v1:<key id>:…`), so a record opens whichever
/// owner's key sealed it; `seal` picks the active key of the record's [`Owner`].
pub struct Keyring {
    kek: std::sync::Arc<dyn KeyEncryptionKey>,
    kek_id: String,
    /// The key-encryption keys of root tenants (transit mode: one Transit key each).
    tenant_keks: Mutex<HashMap<String, std::sync::Arc<dyn KeyEncryptionKey>>>,
    /// The data key new records of each owner are sealed with, and when that was read.
    active: RwLock<(HashMap<Owner, String>, Option<Instant>)>,
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
        None,
    ))
}

fn row(id: &str, purpose: &str, wrapped: String, kek_id: &str, owner: Option<&str>) -> VaultKey {
    VaultKey {
        id: id.into(),
        purpose: purpose.into(),
        wrapped,
        master_key_id: kek_id.into(),
        active: true,
        created_at: now(),
        owner: owner.map(str::to_string),
        deactivated_at: None,
    }
}

/// A new key wrapped by `kek`, as a row to insert.
fn generated_row(
    kek: &dyn KeyEncryptionKey,
    id: &str,
    purpose: &str,
    owner: Option<&str>,
) -> anyhow::Result<VaultKey> {
    kek.ensure()
        .and_then(|()| kek.generate())
        .map(|(_, wrapped)| row(id, purpose, wrapped, &kek.id(), owner))
        .map_err(|e| match owner {
            Some(o) => anyhow::anyhow!(
                "cannot create the data key of root tenant {o}: {e} ({})",
                kek.describe()
            ),
            None => anyhow::anyhow!(
                "cannot create the vault's {purpose} key: {e}. The vault has no keys yet, so \
                 Coffer cannot start before {} answers.",
                kek.describe()
            ),
        })
}

fn is_transit_row(r: &VaultKey) -> bool {
    r.master_key_id.starts_with("transit:")
}

/// The root tenants that have no data key of their own yet.
fn roots_without_keys(conn: &mut DbConnection, rows: &[VaultKey]) -> anyhow::Result<Vec<String>> {
    use crate::db::schema::tenants;
    use diesel::prelude::*;
    let roots: Vec<String> = tenants::table
        .filter(tenants::parent_id.is_null())
        .select(tenants::id)
        .load(conn)?;
    Ok(roots
        .into_iter()
        .filter(|r| {
            !rows
                .iter()
                .any(|k| k.purpose == "data" && k.owner.as_deref() == Some(r))
        })
        .collect())
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

    /// Loads the keys, creating the MAC key, a first platform data key and a first data key of
    /// every root tenant that has none when missing. Safe when several processes start at
    /// once: the MAC key has a fixed id, so only one insert wins, and two first data keys of
    /// one owner are both valid (the newer one is used). With the key manager unreachable, keys
    /// it has not unwrapped stay pending (see [`Keyring`]); a local master key that does not
    /// open a key is an error, as is a vault whose keys were wrapped in the other mode.
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
            let row = generated_row(kek.as_ref(), MAC_KEY_ID, "mac", None)?;
            if let Err(e) = vault_key::insert(conn, &row)
                && !is_unique_violation(&e)
            {
                return Err(e.into());
            }
        }
        if !rows
            .iter()
            .any(|r| r.purpose == "data" && r.owner.is_none())
        {
            let row = generated_row(kek.as_ref(), &crate::ids::new_id(), "data", None)?;
            vault_key::insert(conn, &row)?;
        }
        let keyring = Keyring {
            kek_id: kek.id(),
            kek: std::sync::Arc::from(kek),
            tenant_keks: Mutex::new(HashMap::new()),
            active: RwLock::new((HashMap::new(), None)),
            keys: RwLock::new(HashMap::new()),
            mac: OnceLock::new(),
            pending: Mutex::new(vec![]),
            missing: AtomicUsize::new(0),
            state: Mutex::new(KmsState::default()),
        };
        for root in roots_without_keys(conn, &rows)? {
            match keyring.create_tenant_key(conn, &root) {
                Ok(_) => {}
                // The key manager is down: that tenant's new records are sealed under the
                // platform key until a later start (or rotation) creates its key.
                Err(e) if transit => tracing::error!(
                    tenant = %root,
                    error = %format!("{e:#}"),
                    "cannot create the root tenant's data key"
                ),
                Err(e) => return Err(e),
            }
        }
        let rows = vault_key::all(conn)?;
        keyring.set_active(&rows);
        let mid = keyring.kek_id.clone();
        for r in rows {
            match keyring.kek_for(&r).and_then(|k| k.unwrap_key(&r.wrapped)) {
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

    /// The key-encryption key of a root tenant (cached: one HTTP client per Transit key).
    fn tenant_kek(&self, root: &str) -> std::sync::Arc<dyn KeyEncryptionKey> {
        lock(&self.tenant_keks)
            .entry(root.to_string())
            .or_insert_with(|| std::sync::Arc::from(self.kek.for_tenant(root)))
            .clone()
    }

    /// The key-encryption key that wrapped a row: the vault's, or its owner's.
    fn kek_for(&self, r: &VaultKey) -> Result<std::sync::Arc<dyn KeyEncryptionKey>, KmsError> {
        let own = match &r.owner {
            Some(root) => self.tenant_kek(root),
            None => self.kek.clone(),
        };
        if own.id() == r.master_key_id {
            return Ok(own);
        }
        if self.kek_id == r.master_key_id {
            // Local mode: a tenant's keys are wrapped by the master key.
            return Ok(self.kek.clone());
        }
        Err(KmsError::Refused(format!(
            "vault key {} is wrapped by {}, which is neither {} nor its owner's key",
            r.id,
            r.master_key_id,
            self.kek.describe()
        )))
    }

    /// A new data key of a root tenant, wrapped by the tenant's key-encryption key (created in
    /// the key manager when missing), ready to be added by [`Keyring::add_tenant_key`]. The calls
    /// to the key manager happen here, before the caller's write transaction.
    pub fn new_tenant_key(&self, root: &str) -> anyhow::Result<NewTenantKey> {
        let kek = self.tenant_kek(root);
        Ok(NewTenantKey(generated_row(
            kek.as_ref(),
            &crate::ids::new_id(),
            "data",
            Some(root),
        )?))
    }

    /// Makes a key of [`Keyring::new_tenant_key`] its tenant's active key, in the caller's
    /// transaction. The key itself is not kept: it is read back from the database when first
    /// used, so a rolled-back transaction leaves nothing behind in any process.
    pub fn add_tenant_key(
        &self,
        conn: &mut DbConnection,
        key: NewTenantKey,
    ) -> anyhow::Result<String> {
        let row = key.0;
        let root = row.owner.clone().context("a tenant key has an owner")?;
        vault_key::deactivate_data_keys(conn, Some(&root), now())?;
        vault_key::insert(conn, &row)?;
        if let Ok(mut a) = self.active.write() {
            // Read the active keys again on the next seal.
            a.1 = None;
        }
        Ok(row.id)
    }

    /// A new active data key of `owner` (its old ones stay for the records they sealed until the
    /// re-encryption job retires them); returns its id. The caller starts the job.
    pub fn rotate_data_key(
        &self,
        conn: &mut DbConnection,
        owner: &Owner,
    ) -> anyhow::Result<String> {
        match owner {
            Owner::Tenant(root) => {
                let k = self.new_tenant_key(root)?;
                crate::db::write_tx(conn, |c| self.add_tenant_key(c, k))
            }
            Owner::Platform => {
                let row = generated_row(self.kek.as_ref(), &crate::ids::new_id(), "data", None)?;
                crate::db::write_tx(conn, |c| -> anyhow::Result<()> {
                    vault_key::deactivate_data_keys(c, None, now())?;
                    vault_key::insert(c, &row)?;
                    Ok(())
                })?;
                if let Ok(mut a) = self.active.write() {
                    a.1 = None;
                }
                Ok(row.id)
            }
        }
    }

    /// Both steps at once (start-up, rotation).
    pub fn create_tenant_key(&self, conn: &mut DbConnection, root: &str) -> anyhow::Result<String> {
        let k = self.new_tenant_key(root)?;
        self.add_tenant_key(conn, k)
    }

    fn set_active(&self, rows: &[VaultKey]) {
        let mut map = HashMap::new();
        for r in rows.iter().filter(|r| r.purpose == "data") {
            // Rows come oldest first: the newest active key of an owner wins, and an owner
            // whose keys are all inactive (an interrupted rotation) uses its newest.
            let owner = Owner::of_row(r);
            if r.active || !map.contains_key(&owner) {
                map.insert(owner, r.id.clone());
            }
        }
        if let Ok(mut a) = self.active.write() {
            *a = (map, Some(Instant::now()));
        }
    }

    /// The id of the data key new records of `owner` are sealed with. Read again from the
    /// database once [`ACTIVE_TTL`] has passed, so a rotation on any process is followed. A root
    /// tenant without a key of its own (created by an older Coffer while this one ran) falls
    /// back to the platform's key; the next start creates its key and the re-encryption job
    /// moves those records.
    pub fn active_id(&self, conn: &mut DbConnection, owner: &Owner) -> anyhow::Result<String> {
        let fresh = |a: &(HashMap<Owner, String>, Option<Instant>)| {
            a.1.is_some_and(|t| t.elapsed() < ACTIVE_TTL)
        };
        if let Ok(a) = self.active.read()
            && fresh(&a)
            && let Some(id) = a.0.get(owner)
        {
            return Ok(id.clone());
        }
        let rows = vault_key::all(conn)?;
        self.set_active(&rows);
        let a = self
            .active
            .read()
            .map_err(|_| anyhow::anyhow!("keyring lock poisoned"))?;
        if let Some(id) = a.0.get(owner) {
            return Ok(id.clone());
        }
        if *owner != Owner::Platform {
            tracing::warn!(
                tenant = owner.root().unwrap_or_default(),
                "the root tenant has no data key of its own yet: sealing under the platform key"
            );
        }
        a.0.get(&Owner::Platform)
            .cloned()
            .context("the vault has no platform data key")
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
            match self.kek_for(&r).and_then(|k| k.unwrap_key(&r.wrapped)) {
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

    /// Seals `plaintext` bound to `aad` (the owning row's id) under the active data key of
    /// `owner` (the root tenant the record belongs to).
    pub fn seal(
        &self,
        conn: &mut DbConnection,
        owner: &Owner,
        plaintext: &[u8],
        aad: &[u8],
    ) -> anyhow::Result<String> {
        let id = self.active_id(conn, owner)?;
        let key = self.data_key(conn, &id)?;
        vault::seal(&key, &id, plaintext, aad).map_err(|e| anyhow::anyhow!("seal failed: {e}"))
    }

    /// A data key by id: held in memory, or read from the database and unwrapped (a key created
    /// by another process, or one whose unwrap is pending).
    fn data_key(&self, conn: &mut DbConnection, id: &str) -> anyhow::Result<DataKey> {
        let get = || self.keys.read().ok().and_then(|k| k.get(id).cloned());
        if let Some(k) = get() {
            return Ok(k);
        }
        if !self.recover(false) {
            return Err(self.unavailable().into());
        }
        if let Some(k) = get() {
            return Ok(k);
        }
        self.reload(conn)?;
        get().ok_or_else(|| anyhow::anyhow!("vault key {id} does not exist"))
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
                match self.kek_for(&r).and_then(|k| k.unwrap_key(&r.wrapped)) {
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

    /// Erasure by key destruction, step 1 (before the tenant's rows are deleted): destroys the
    /// root tenant's key-encryption key in the key manager, so that its data keys (and every
    /// record they sealed) cannot be opened again, even from a backup taken before. True when a
    /// key was destroyed (transit mode); false in local mode, where the tenant's data keys are
    /// wrapped by the master key and only [`Keyring::forget_tenant`] removes them.
    pub fn destroy_tenant_kek(&self, root: &str) -> Result<bool, KmsError> {
        let kek = self.tenant_kek(root);
        if kek.id() == self.kek_id {
            return Ok(false);
        }
        let destroyed = kek.destroy()?;
        lock(&self.tenant_keks).remove(root);
        Ok(destroyed)
    }

    /// Erasure, step 2 (in the transaction that deletes the tenant): deletes the root tenant's
    /// data keys and drops them from this process's memory. Returns how many keys were deleted.
    pub fn forget_tenant(&self, conn: &mut DbConnection, root: &str) -> anyhow::Result<usize> {
        let ids: Vec<String> = vault_key::of_owner(conn, Some(root))?
            .into_iter()
            .map(|r| r.id)
            .collect();
        let n = vault_key::delete_of_owner(conn, root)?;
        if let Ok(mut keys) = self.keys.write() {
            for id in &ids {
                keys.remove(id);
            }
        }
        if let Ok(mut a) = self.active.write() {
            a.0.remove(&Owner::Tenant(root.to_string()));
        }
        Ok(n)
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
        vault_key::deactivate_data_keys(tx, None, now())?;
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
    // Each row's Transit key: the vault's, or its root tenant's own.
    let kek_of = |r: &VaultKey| match &r.owner {
        Some(root) => kek.for_tenant_transit(root),
        None => kek.clone(),
    };
    let mut keks: Vec<kms::TransitKek> = vec![];
    for r in &rows {
        if !is_transit_row(r) {
            bail!(
                "vault key {} is wrapped by the local master key {}: this vault is in local mode",
                r.id,
                r.master_key_id
            );
        }
        let k = kek_of(r);
        if k.id() != r.master_key_id {
            bail!(
                "vault key {} is wrapped by {}, not by {}",
                r.id,
                r.master_key_id,
                k.describe()
            );
        }
        k.unwrap_key(&r.wrapped)
            .map_err(|e| anyhow::anyhow!("vault key {}: {e}", r.id))?;
        if !keks.iter().any(|x| x.id() == k.id()) {
            keks.push(k);
        }
    }
    for k in &keks {
        k.rotate()
            .map_err(|e| anyhow::anyhow!("rotating {}: {e}", k.describe()))?;
    }
    let mut rewrapped = Vec::with_capacity(rows.len());
    for r in &rows {
        let w = kek_of(r)
            .rewrap(&r.wrapped)
            .map_err(|e| anyhow::anyhow!("rewrapping vault key {}: {e}", r.id))?;
        rewrapped.push((r.id.clone(), w, r.master_key_id.clone()));
    }
    let fresh = generated_row(&kek, &crate::ids::new_id(), "data", None)?;
    let version = fresh
        .wrapped
        .split(':')
        .nth(1)
        .unwrap_or_default()
        .to_string();
    let n = crate::db::write_tx(conn, |tx| -> anyhow::Result<usize> {
        for (id, w, kid) in &rewrapped {
            vault_key::rewrap(tx, id, w, kid)?;
        }
        vault_key::deactivate_data_keys(tx, None, now())?;
        vault_key::insert(tx, &fresh)?;
        Ok(rewrapped.len())
    })?;
    Ok(TransitRotation {
        rewrapped: n,
        version,
    })
}
