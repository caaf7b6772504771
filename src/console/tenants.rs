//! The tenant hierarchy, scoped to the caller's subtree.

use crate::audit::{self, Change, Place};
use crate::db::DbConnection;
use crate::domain::{Actor, Scope, clean_name};
use crate::error::{FieldErrors, ServiceError};
use crate::models::tenant::{self, Tenant};
use crate::models::{merchant, now, user};

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
    crate::db::write_tx(conn, |c| {
        tenant::insert(c, &t)?;
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
