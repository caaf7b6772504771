//! The vault's keys. A master key (from `COFFER_VAULT_KEY`, or in SQLite mode a key file
//! generated in the data dir) wraps data keys and one MAC key, stored in `vault_keys`. Records
//! name the data key that sealed them, so `coffer rotate-vault-key` re-wraps the data keys under
//! a new master key (and starts a new data key) without touching records and without downtime:
//! running processes keep their unwrapped keys in memory.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::RwLock;

use anyhow::{Context, bail};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::db::{Backend, DbConnection, is_unique_violation};
use crate::gateway::vault::{self, DataKey, MasterKey};
use crate::models::now;
use crate::models::vault_key::{self, VaultKey};

const MAC_KEY_ID: &str = "mac";

pub struct Keyring {
    master: MasterKey,
    master_id: String,
    active: RwLock<(String, DataKey)>,
    keys: RwLock<HashMap<String, DataKey>>,
    mac: Vec<u8>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keyring(<redacted>)")
    }
}

/// A short public id of a master key: which key wrapped a row, without revealing it.
fn master_id(m: &MasterKey) -> String {
    hex::encode(&Sha256::digest(m.to_hex().as_bytes())[..6])
}

/// The master key from the settings: `COFFER_VAULT_KEY`, or (SQLite only) `vault.key` in the
/// data dir, generated on first start.
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
    let hex_key = crate::config::read_or_create(&path, || MasterKey::generate().to_hex())?;
    MasterKey::from_encoded(&hex_key).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn new_row(
    master: &MasterKey,
    master_id: &str,
    id: &str,
    purpose: &str,
    key: &DataKey,
) -> anyhow::Result<VaultKey> {
    Ok(VaultKey {
        id: id.into(),
        purpose: purpose.into(),
        wrapped: master.wrap(key).map_err(|e| anyhow::anyhow!("{e}"))?,
        master_key_id: master_id.into(),
        active: true,
        created_at: now(),
    })
}

impl Keyring {
    /// Loads the keys, creating the MAC key and a first data key when missing. Safe when several
    /// processes start at once: the MAC key has a fixed id, so only one insert wins.
    pub fn load(conn: &mut DbConnection, master: MasterKey) -> anyhow::Result<Keyring> {
        let mid = master_id(&master);
        let rows = vault_key::all(conn)?;
        if !rows.iter().any(|r| r.id == MAC_KEY_ID) {
            let row = new_row(&master, &mid, MAC_KEY_ID, "mac", &DataKey::generate())?;
            if let Err(e) = vault_key::insert(conn, &row)
                && !is_unique_violation(&e)
            {
                return Err(e.into());
            }
        }
        if !rows.iter().any(|r| r.purpose == "data") {
            let row = new_row(
                &master,
                &mid,
                &crate::ids::new_id(),
                "data",
                &DataKey::generate(),
            )?;
            vault_key::insert(conn, &row)?;
        }
        let rows = vault_key::all(conn)?;
        let mut keys = HashMap::new();
        let mut mac = None;
        let mut active = None;
        for r in &rows {
            let k = master.unwrap_key(&r.wrapped).map_err(|e| {
                anyhow::anyhow!(
                    "vault key {} cannot be unwrapped with this master key ({e}): it is wrapped by \
                     master key {} and this one is {mid}. Is COFFER_VAULT_KEY (or vault.key in the \
                     data dir) the current master key? After `coffer rotate-vault-key` every \
                     process needs the new key.",
                    r.id,
                    r.master_key_id
                )
            })?;
            if r.purpose == "mac" {
                mac = Some(k.as_bytes().to_vec());
            } else {
                if r.active {
                    active = Some((r.id.clone(), k.clone()));
                }
                keys.insert(r.id.clone(), k);
            }
        }
        let mac = mac.context("the vault has no MAC key")?;
        let active = match active {
            Some(a) => a,
            None => {
                let last = rows
                    .iter()
                    .rev()
                    .find(|r| r.purpose == "data")
                    .context("no data key")?;
                let k = keys.get(&last.id).context("no data key")?.clone();
                (last.id.clone(), k)
            }
        };
        Ok(Keyring {
            master,
            master_id: mid,
            active: RwLock::new(active),
            keys: RwLock::new(keys),
            mac,
        })
    }

    /// The key of keyed hashes (card fingerprints, API passwords).
    pub fn mac_key(&self) -> &[u8] {
        &self.mac
    }

    /// The card (or IBAN) fingerprint shown to merchants in `returnData`, keyed per root tenant:
    /// `HMAC(K_root, stored)` with `K_root = HMAC(mac key, "returnData fingerprint" ‖ root id)`
    /// and `stored` the fingerprint kept on instruments and card tokens (under the vault's one
    /// MAC key, for finding the same card again). The same card gives the same value to every
    /// merchant below one root tenant and unrelated values under two roots, so two tenants
    /// cannot correlate their customers' cards. `tenant_path` is the materialized path
    /// (`/<root id>/…/`) of the merchant's tenant. The stored fingerprints stay as they are.
    pub fn public_fingerprint(&self, tenant_path: &str, stored: &str) -> String {
        let root = tenant_path
            .split('/')
            .find(|s| !s.is_empty())
            .unwrap_or_default();
        let root_key = vault::fingerprint(&self.mac, &format!("returnData fingerprint\0{root}"));
        vault::fingerprint(root_key.as_bytes(), stored)
    }

    /// Seals `plaintext` bound to `aad` (the owning row's id) under the active data key.
    pub fn seal(&self, plaintext: &[u8], aad: &[u8]) -> anyhow::Result<String> {
        let guard = self
            .active
            .read()
            .map_err(|_| anyhow::anyhow!("keyring lock poisoned"))?;
        vault::seal(&guard.1, &guard.0, plaintext, aad)
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
                let k = self
                    .master
                    .unwrap_key(&r.wrapped)
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                if let Ok(mut w) = self.keys.write() {
                    w.insert(r.id.clone(), k);
                }
            }
        }
        Ok(())
    }

    pub fn master_key_id(&self) -> &str {
        &self.master_id
    }
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
