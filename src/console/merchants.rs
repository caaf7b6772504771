//! Merchants: each belongs to one tenant. Merchant admins see only their own merchant.

use crate::audit::{self, Change, Place};
use crate::console::tenants;
use crate::db::DbConnection;
use crate::domain::{Actor, Scope, clean_name};
use crate::error::{FieldErrors, ServiceError};
use crate::models::merchant::{self, Merchant};
use crate::models::now;

pub fn get(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Merchant, ServiceError> {
    let m = merchant::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    if actor.scope.covers_merchant(&m.id, &m.tenant_path) {
        Ok(m)
    } else {
        Err(ServiceError::NotFound)
    }
}

/// Merchants in scope with their tenant's name.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
) -> Result<Vec<(Merchant, String)>, ServiceError> {
    let rows = merchant::list_under(conn, actor.scope.path_prefix())?;
    Ok(match &actor.scope {
        Scope::Merchant { merchant_id, .. } => rows
            .into_iter()
            .filter(|(m, _)| &m.id == merchant_id)
            .collect(),
        _ => rows,
    })
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
    name: &str,
) -> Result<Merchant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", name, 100);
    let tenant = tenants::get(conn, actor, tenant_id).ok();
    if tenant.is_none() {
        errors.add("tenant_id", "Choose a tenant.");
    }
    errors.into_result()?;
    let Some(t) = tenant else {
        return Err(ServiceError::NotFound);
    };
    crate::db::write_tx(conn, |c| {
        if merchant::find_by_name(c, &t.id, &name)?.is_some() {
            return Err(ServiceError::invalid(
                "name",
                "A merchant of this tenant already has this name.",
            ));
        }
        let at = now();
        let m = Merchant {
            id: crate::ids::new_id(),
            tenant_id: t.id.clone(),
            tenant_path: t.path.clone(),
            name: name.clone(),
            active: true,
            created_at: at,
            updated_at: at,
        };
        merchant::insert(c, &m)?;
        audit::record(
            c,
            actor,
            &Place::merchant(&t.id, &t.path, &m.id),
            Change {
                action: "merchant.create",
                object_type: "merchant",
                object_id: &m.id,
                summary: format!("Created merchant {} in {}", m.name, t.name),
                changes: vec![("name", None, Some(m.name.clone()))],
            },
        )?;
        Ok(m)
    })
}

pub fn rename(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    name: &str,
) -> Result<Merchant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", name, 100);
    errors.into_result()?;
    crate::db::write_tx(conn, |c| {
        let old = get(c, actor, id)?;
        if old.name != name && merchant::find_by_name(c, &old.tenant_id, &name)?.is_some() {
            return Err(ServiceError::invalid(
                "name",
                "A merchant of this tenant already has this name.",
            ));
        }
        merchant::update_name(c, id, &name, now())?;
        audit::record(
            c,
            actor,
            &Place::merchant(&old.tenant_id, &old.tenant_path, &old.id),
            Change {
                action: "merchant.update",
                object_type: "merchant",
                object_id: &old.id,
                summary: format!("Renamed merchant {} to {}", old.name, name),
                changes: vec![("name", Some(old.name.clone()), Some(name.clone()))],
            },
        )?;
        Ok(Merchant {
            name: name.clone(),
            ..old
        })
    })
}

pub fn set_active(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    active: bool,
) -> Result<Merchant, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    crate::db::write_tx(conn, |c| {
        let old = get(c, actor, id)?;
        merchant::set_active(c, id, active, now())?;
        audit::record(
            c,
            actor,
            &Place::merchant(&old.tenant_id, &old.tenant_path, &old.id),
            Change {
                action: if active {
                    "merchant.activate"
                } else {
                    "merchant.deactivate"
                },
                object_type: "merchant",
                object_id: &old.id,
                summary: format!(
                    "{} merchant {}",
                    if active { "Activated" } else { "Deactivated" },
                    old.name
                ),
                changes: vec![(
                    "active",
                    Some(old.active.to_string()),
                    Some(active.to_string()),
                )],
            },
        )?;
        Ok(Merchant { active, ..old })
    })
}

/// The consequences of deactivating a merchant, in numbers, for its confirmation page.
pub fn deactivation_impact(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<Vec<String>, ServiceError> {
    use crate::domain::plural;
    let m = get(conn, actor, id)?;
    let (connectors, api, admins, stored) = merchant::deactivation_counts(conn, &m.id)?;
    let mut out = vec![];
    match connectors.as_slice() {
        [] => {}
        [one] => out.push(format!(
            "{one} will refuse every API call and its payment pages will charge nothing."
        )),
        [first, rest @ ..] => out.push(format!(
            "{first} and {} will refuse every API call and their payment pages will charge nothing.",
            plural(rest.len() as i64, "other connector", "other connectors")
        )),
    }
    if stored > 0 {
        out.push(format!(
            "{} tied to its connectors can no longer be charged through them; the profiles stay.",
            plural(
                stored,
                "stored payment instrument",
                "stored payment instruments"
            )
        ));
    }
    if api > 0 {
        out.push(format!(
            "{} will be refused.",
            plural(api, "API user", "API users")
        ));
    }
    if admins > 0 {
        out.push(format!(
            "{} can no longer sign in.",
            plural(admins, "merchant admin", "merchant admins")
        ));
    }
    Ok(out)
}
