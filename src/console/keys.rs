//! The vault's keys for platform admins (`/vault`): each data key with its owner and state, the
//! re-encryption job's progress, and the actions that rotate a data key or start re-encryption
//! (issue [keys]).

use crate::audit::{self, Change, Place};
use crate::db::DbConnection;
use crate::domain::{Actor, Role, Scope};
use crate::error::ServiceError;
use crate::models::tenant;
use crate::models::vault_key::{self, VaultKey};
use crate::vault::keyring::{Keyring, Owner};
use crate::vault::reencrypt::{self, Progress};

/// A data key as the page lists it.
pub struct KeyRow {
    pub key: VaultKey,
    /// The root tenant's name, or "Platform".
    pub owner_name: String,
}

pub struct Overview {
    pub keys: Vec<KeyRow>,
    /// Root tenants (id, name), for the rotation form.
    pub roots: Vec<(String, String)>,
    pub job: Option<Progress>,
    /// `local` or `transit`.
    pub manager: &'static str,
}

fn platform_admin(actor: &Actor) -> Result<(), ServiceError> {
    if actor.scope == Scope::Platform && actor.role == Role::PlatformAdmin {
        Ok(())
    } else {
        Err(ServiceError::Forbidden)
    }
}

pub fn overview(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
) -> Result<Overview, ServiceError> {
    platform_admin(actor)?;
    let roots: Vec<(String, String)> = tenant::list_under(conn, None)?
        .into_iter()
        .filter(|t| t.parent_id.is_none())
        .map(|t| (t.id, t.name))
        .collect();
    let keys = vault_key::all(conn)?
        .into_iter()
        .filter(|k| k.purpose == "data")
        .map(|key| KeyRow {
            owner_name: match &key.owner {
                None => "Platform".into(),
                Some(o) => roots
                    .iter()
                    .find(|(id, _)| id == o)
                    .map_or_else(|| o.clone(), |(_, n)| n.clone()),
            },
            key,
        })
        .collect();
    Ok(Overview {
        keys,
        roots,
        job: reencrypt::latest(conn)?,
        manager: keyring.status().manager,
    })
}

/// Rotates the data key of `owner` (`platform` or a root tenant's id) and starts the
/// re-encryption job (every process's background loop runs it).
pub fn rotate(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    owner: &str,
) -> Result<String, ServiceError> {
    platform_admin(actor)?;
    let (who, name) = if owner == "platform" {
        (Owner::Platform, "the platform".to_string())
    } else {
        match tenant::find(conn, owner)? {
            Some(t) if t.parent_id.is_none() => (Owner::Tenant(t.id), t.name),
            _ => {
                return Err(ServiceError::invalid(
                    "owner",
                    "Choose the platform or a root tenant.",
                ));
            }
        }
    };
    let id = keyring.rotate_data_key(conn, &who)?;
    let job = reencrypt::start(conn, &format!("data key of {name} rotated"))?;
    crate::db::write_tx(conn, |c| {
        audit::record(
            c,
            actor,
            &Place::default(),
            Change {
                action: "vault.rotate_data_key",
                object_type: "vault_key",
                object_id: &id,
                summary: format!(
                    "Rotated the data key of {name}; re-encryption job {} started",
                    job.id
                ),
                changes: vec![],
            },
        )
    })?;
    Ok(name)
}

/// Starts the re-encryption job (or keeps the running one).
pub fn start_reencryption(conn: &mut DbConnection, actor: &Actor) -> Result<(), ServiceError> {
    platform_admin(actor)?;
    let job = reencrypt::start(conn, &format!("started by {}", actor.username))?;
    crate::db::write_tx(conn, |c| {
        audit::record(
            c,
            actor,
            &Place::default(),
            Change {
                action: "vault.reencrypt",
                object_type: "reencrypt_job",
                object_id: &job.id,
                summary: format!("Started re-encryption of {} records", job.total),
                changes: vec![],
            },
        )
    })
}
