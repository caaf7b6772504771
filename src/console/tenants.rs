//! The tenant hierarchy, scoped to the caller's subtree.

use crate::audit::{self, Change, Place};
use crate::db::DbConnection;
use crate::domain::{Actor, Scope, clean_name};
use crate::error::{FieldErrors, ServiceError};
use crate::models::tenant::{self, Tenant};
use crate::models::{merchant, now, user};
use crate::vault::keyring::Keyring;

/// A tenant the actor may see, or `NotFound` (also for tenants outside the scope, so that
/// guessing ids tells nothing).
pub fn get(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Tenant, ServiceError> {
    let t = tenant::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if actor.scope.covers_tenant_path(&t.path) {
        Ok(t)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Tenants in scope, in tree order (parents before children).
pub fn list(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<Tenant>, ServiceError> {
    match &actor.scope {
        Scope::Platform => Ok(tenant::list_under(conn, None)?),
        Scope::Tenant { path, .. } => Ok(tenant::list_under(conn, Some(path))?),
        Scope::Merchant { .. } => Ok(vec![]),
    }
}

pub struct NewTenant {
    pub parent_id: Option<String>,
    pub name: String,
}

pub fn create(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    input: NewTenant,
) -> Result<Tenant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", &input.name, 100);
    let parent = match input.parent_id.as_deref().filter(|p| !p.is_empty()) {
        Some(pid) => Some(
            get(conn, actor, pid)
                .map_err(|_| ServiceError::invalid("parent_id", "Choose a parent tenant."))?,
        ),
        None if actor.scope == Scope::Platform => None,
        None => {
            errors.add("parent_id", "Choose a parent tenant.");
            None
        }
    };
    errors.into_result()?;
    let id = crate::ids::new_id();
    let at = now();
    let t = Tenant {
        path: format!("{}{id}/", parent.as_ref().map_or("/", |p| p.path.as_str())),
        depth: parent.as_ref().map_or(0, |p| p.depth + 1),
        parent_id: parent.as_ref().map(|p| p.id.clone()),
        id,
        name,
        disable_containers_for_subtenants: false,
        created_at: at,
        updated_at: at,
        require_two_factor: false,
    };
    // A root tenant's records are sealed under data keys of its own (issue [keys]); the key
    // is made before the transaction (in transit mode that asks the key manager).
    let key = match parent {
        None => Some(keyring.new_tenant_key(&t.id)?),
        Some(_) => None,
    };
    crate::db::write_tx(conn, |c| {
        tenant::insert(c, &t)?;
        if let Some(key) = key {
            keyring.add_tenant_key(c, key)?;
        }
        audit::record(
            c,
            actor,
            &Place::tenant(&t.id, &t.path),
            Change {
                action: "tenant.create",
                object_type: "tenant",
                object_id: &t.id,
                summary: match &parent {
                    Some(p) => format!("Created sub-tenant {} under {}", t.name, p.name),
                    None => format!("Created tenant {}", t.name),
                },
                changes: vec![("name", None, Some(t.name.clone()))],
            },
        )?;
        Ok(t.clone())
    })
}

#[derive(Debug, Clone)]
pub struct TenantChanges {
    pub name: String,
    pub disable_containers_for_subtenants: bool,
    /// "Require two-factor authentication for users of this tenant and its sub-tenants".
    pub require_two_factor: bool,
}

/// What saving `input` would do to the sharing, without saving it: the tenant as it is, and how
/// the effective container of every connector under it would move. `None` when the flag
/// "Disable customer profile containers for sub-tenants" stays as it is.
pub fn update_impact(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    input: TenantChanges,
) -> Result<Option<(Tenant, crate::console::impact::Impact)>, ServiceError> {
    let t = get(conn, actor, id)?;
    if t.disable_containers_for_subtenants == input.disable_containers_for_subtenants {
        return Ok(None);
    }
    let candidates = crate::models::connector::under(conn, Some(&t.path))?;
    let (_, impact) =
        crate::console::impact::preview(conn, &candidates, |tx| update(tx, actor, id, input))?;
    Ok(Some((t, impact)))
}

pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    input: TenantChanges,
) -> Result<Tenant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", &input.name, 100);
    errors.into_result()?;
    crate::db::write_tx(conn, |c| {
        let old = get(c, actor, id)?;
        let at = now();
        tenant::update_name(c, id, &name, at)?;
        tenant::update_disable_flag(c, id, input.disable_containers_for_subtenants, at)?;
        tenant::update_require_two_factor(c, id, input.require_two_factor, at)?;
        audit::record(
            c,
            actor,
            &Place::tenant(&old.id, &old.path),
            Change {
                action: "tenant.update",
                object_type: "tenant",
                object_id: &old.id,
                summary: format!("Updated tenant {name}"),
                changes: vec![
                    ("name", Some(old.name.clone()), Some(name.clone())),
                    (
                        "disable_containers_for_subtenants",
                        Some(old.disable_containers_for_subtenants.to_string()),
                        Some(input.disable_containers_for_subtenants.to_string()),
                    ),
                    (
                        "require_two_factor",
                        Some(old.require_two_factor.to_string()),
                        Some(input.require_two_factor.to_string()),
                    ),
                ],
            },
        )?;
        Ok(Tenant {
            name: name.clone(),
            disable_containers_for_subtenants: input.disable_containers_for_subtenants,
            require_two_factor: input.require_two_factor,
            ..old
        })
    })
}

/// Deletes an empty tenant: one with sub-tenants, merchants or users is refused, and so is the
/// actor's own tenant.
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Tenant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    crate::db::write_tx(conn, |c| {
        let t = get(c, actor, id)?;
        if let Scope::Tenant { tenant_id, .. } = &actor.scope
            && *tenant_id == t.id
        {
            return Err(ServiceError::Conflict(
                "You cannot delete your own tenant.".into(),
            ));
        }
        let mut used = vec![];
        let n = tenant::count_children(c, id)?;
        if n > 0 {
            used.push(format!("{n} sub-tenant(s)"));
        }
        let n = merchant::count_for_tenant(c, id)?;
        if n > 0 {
            used.push(format!("{n} merchant(s)"));
        }
        let n = crate::models::container::count_for_tenant(c, id)?;
        if n > 0 {
            used.push(format!("{n} customer profile container(s)"));
        }
        let n = user::count_for_tenant(c, id)?;
        if n > 0 {
            used.push(format!("{n} user(s)"));
        }
        if !used.is_empty() {
            return Err(ServiceError::Conflict(format!(
                "Tenant {} cannot be deleted: it still has {}.",
                t.name,
                used.join(", ")
            )));
        }
        tenant::delete(c, id)?;
        audit::record(
            c,
            actor,
            &Place::tenant(&t.id, &t.path),
            Change {
                action: "tenant.delete",
                object_type: "tenant",
                object_id: &t.id,
                summary: format!("Deleted tenant {}", t.name),
                changes: vec![("name", Some(t.name.clone()), None)],
            },
        )?;
        Ok(t)
    })
}

/// What erasing a root tenant removed.
#[derive(Debug)]
pub struct Erasure {
    pub tenant: Tenant,
    pub deleted: crate::models::erasure::TreeCounts,
    /// The tenant's key-encryption key was destroyed in the key manager (transit mode).
    pub key_destroyed: bool,
    /// The tenant's data keys deleted from the database.
    pub data_keys_deleted: usize,
}

/// A root tenant that a platform admin may erase, and what lies under it (the confirmation page).
pub fn erase_preview(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Tenant, crate::models::erasure::TreeCounts), ServiceError> {
    let t = erasable(conn, actor, id)?;
    let counts = crate::models::erasure::count(conn, &t.path)?;
    Ok((t, counts))
}

fn erasable(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Tenant, ServiceError> {
    let t = get(conn, actor, id)?;
    if actor.scope != Scope::Platform || actor.role != crate::domain::Role::PlatformAdmin {
        return Err(ServiceError::Forbidden);
    }
    if t.parent_id.is_some() {
        return Err(ServiceError::Conflict(format!(
            "Only a root tenant can be erased with everything under it: {} is a sub-tenant. \
             Delete it once it is empty, or erase its root tenant.",
            t.name
        )));
    }
    Ok(t)
}

/// Erases a root tenant with everything under it, by key destruction (issue [keys]). Platform
/// admins only, and only when `confirm_name` is the tenant's name. First the tenant's
/// key-encryption key is destroyed in the key manager (transit mode), so that none of its
/// records can be opened again, even from a backup taken before; then one transaction deletes
/// every row of its tree and its data keys, and records `tenant.erase` in the platform's audit
/// chain. Should that transaction fail, the erasure can be run again: the records it left are
/// already unreadable. The tenant's own audit chain is kept (audit records must be retained; it
/// holds no card data) and still verifies.
pub fn erase(
    conn: &mut DbConnection,
    keyring: &Keyring,
    actor: &Actor,
    id: &str,
    confirm_name: &str,
) -> Result<Erasure, ServiceError> {
    let t = erasable(conn, actor, id)?;
    if confirm_name.trim() != t.name {
        return Err(ServiceError::invalid(
            "confirm_name",
            "Type the tenant's name exactly to confirm.",
        ));
    }
    let key_destroyed = keyring
        .destroy_tenant_kek(&t.id)
        .map_err(|e| crate::error::KeysUnavailable(format!("The key manager did not destroy the tenant's key: {e}. Nothing was deleted; retry later.")))?;
    let (deleted, data_keys_deleted) = crate::db::write_tx(conn, |c| {
        let deleted = crate::models::erasure::delete_tree(c, &t.path)?;
        let keys = keyring.forget_tenant(c, &t.id)?;
        audit::record(
            c,
            actor,
            &Place::default(),
            Change {
                action: "tenant.erase",
                object_type: "tenant",
                object_id: &t.id,
                summary: format!(
                    "Erased root tenant {} with {} sub-tenant(s), {} merchant(s), {} profile(s), \
                     {} instrument(s) and {} transaction(s); destroyed its {} data key(s){}",
                    t.name,
                    deleted.tenants - 1,
                    deleted.merchants,
                    deleted.profiles,
                    deleted.instruments,
                    deleted.transactions,
                    keys,
                    if key_destroyed {
                        " and its key-encryption key in the key manager"
                    } else {
                        ""
                    }
                ),
                changes: vec![("name", Some(t.name.clone()), None)],
            },
        )?;
        Ok::<_, ServiceError>((deleted, keys))
    })?;
    crate::db::scrub_after_erasure(conn)?;
    Ok(Erasure {
        tenant: t,
        deleted,
        key_destroyed,
        data_keys_deleted,
    })
}
