//! Tokenization > Customer Profiles: containers, their profiles, and Global Settings.
//! Every decision about which container a tenant may use goes through `vault::sharing`.

use crate::audit::{self, Change, Place};
use crate::console::profile_search;
use crate::console::tenants;
use crate::db::{DbConnection, is_unique_violation};
use crate::domain::{Actor, Scope, clean_name};
use crate::error::{FieldErrors, ServiceError};
use crate::models::connector::{self, Connector};
use crate::models::container::{self, Container};
use crate::models::now;
use crate::models::profile::{self, Cursor, Instrument, Profile};
use crate::models::tenant::{self, Tenant};
use crate::vault::profiles;
use crate::vault::sharing;

/// What the actor may do with a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Owner tenant in the actor's scope: edit, delete, delete profiles.
    Manage,
    /// Shared with the actor from above, or effective for a merchant admin's connector.
    Read,
}

/// The container if the actor may see it (else `NotFound`), and how.
pub fn access(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Container, Access), ServiceError> {
    let c = container::find(conn, id)?.ok_or(ServiceError::NotFound)?;
    let owner_lineage = sharing::lineage_of(conn, &c.tenant_id)?;
    if !sharing::may_use_containers(&owner_lineage) {
        // The owner lost the feature (a flag set later): the container is hidden except to
        // platform admins, who must still be able to clean it up.
        return match actor.scope {
            Scope::Platform => Ok((c, Access::Manage)),
            _ => Err(ServiceError::NotFound),
        };
    }
    match &actor.scope {
        Scope::Platform => Ok((c, Access::Manage)),
        Scope::Tenant { tenant_id, path } => {
            if c.tenant_path.starts_with(path.as_str()) {
                return Ok((c, Access::Manage));
            }
            let mine = sharing::lineage_of(conn, tenant_id)?;
            if sharing::usable(&mine, &c.tenant_id) {
                Ok((c, Access::Read))
            } else {
                Err(ServiceError::NotFound)
            }
        }
        Scope::Merchant { merchant_id, .. } => {
            for k in connector::for_merchant(conn, merchant_id)? {
                let e = sharing::effective_for(
                    conn,
                    &k.tenant_id,
                    k.container_id.as_deref(),
                    k.ignore_global,
                )?;
                if e.container.is_some_and(|e| e.id == c.id) {
                    return Ok((c, Access::Read));
                }
            }
            Err(ServiceError::NotFound)
        }
    }
}

/// Tenants in scope that may own containers (for the New Container select).
pub fn owner_choices(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<Tenant>, ServiceError> {
    let mut out = vec![];
    for t in tenants::list(conn, actor)? {
        if sharing::may_use_containers(&sharing::lineage(conn, &t)?) {
            out.push(t);
        }
    }
    Ok(out)
}

pub struct OverviewRow {
    pub container: Container,
    pub owner: String,
    /// Where it is used, as far as the actor may see: connector names and global settings.
    pub used_by: Vec<String>,
    /// The connectors reading and writing it now and why, as far as the actor may see.
    pub connectors: Vec<ConnectorUse>,
    /// Connectors using it that lie outside the actor's view.
    pub hidden_connectors: usize,
    pub manage: bool,
    /// Why it cannot be deleted now (the rule the delete action enforces), if it cannot.
    pub cannot_delete: Option<String>,
}

/// A connector that uses a container, and why.
pub struct ConnectorUse {
    pub connector: Connector,
    pub merchant: String,
    /// The tenant of the connector's merchant.
    pub tenant: String,
    pub source: sharing::Source,
}

impl ConnectorUse {
    /// "assigned in its Connector Base Data", "through the Global Setting of Acme Group".
    pub fn reason(&self) -> String {
        match &self.source {
            sharing::Source::Assigned => "assigned in its Connector Base Data".into(),
            sharing::Source::GlobalSetting(t) => format!("through the Global Setting of {t}"),
            other => other.to_string(),
        }
    }
}

/// Who uses a container and whether it may be deleted: what its pages show.
pub struct Usage {
    pub used_by: Vec<String>,
    pub connectors: Vec<ConnectorUse>,
    pub hidden_connectors: usize,
    pub cannot_delete: Option<String>,
    /// The newest account updater runs (newest first), with their progress.
    pub updater: Vec<crate::vault::lifecycle::RunProgress>,
}

/// Account updater runs shown on a container page.
const UPDATER_RUNS_SHOWN: i64 = 5;

pub fn usage(conn: &mut DbConnection, actor: &Actor, c: &Container) -> Result<Usage, ServiceError> {
    let a = assignments(conn, c)?;
    let used_by = visible_uses(actor, &a);
    let (connectors, hidden_connectors) = connectors_using(conn, actor, c)?;
    let cannot_delete = blocker_of(actor, c, &a);
    let updater = crate::vault::lifecycle::updater_runs(conn, c, UPDATER_RUNS_SHOWN)?;
    Ok(Usage {
        used_by,
        connectors,
        hidden_connectors,
        cannot_delete,
        updater,
    })
}

/// The connectors (that the actor may see) using container `c` now, as `vault::sharing`
/// decides it, and how many more use it outside the actor's view.
pub fn connectors_using(
    conn: &mut DbConnection,
    actor: &Actor,
    c: &Container,
) -> Result<(Vec<ConnectorUse>, usize), ServiceError> {
    let mut shown = vec![];
    let mut hidden = 0;
    for (k, e) in sharing::connectors_using(conn, c)? {
        if !actor.scope.covers_merchant(&k.merchant_id, &k.tenant_path) {
            hidden += 1;
            continue;
        }
        let merchant = crate::models::merchant::find(conn, &k.merchant_id)?
            .map(|m| m.name)
            .unwrap_or_default();
        let tenant = tenant::find(conn, &k.tenant_id)?
            .map(|t| t.name)
            .unwrap_or_default();
        shown.push(ConnectorUse {
            connector: k,
            merchant,
            tenant,
            source: e.source,
        });
    }
    Ok((shown, hidden))
}

pub struct Overview {
    pub tenant: Tenant,
    pub disabled_by: Option<String>,
    pub rows: Vec<OverviewRow>,
}

/// The containers usable by `tenant_id` (a tenant in scope).
pub fn overview(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
) -> Result<Overview, ServiceError> {
    let t = tenants::get(conn, actor, tenant_id)?;
    let lineage = sharing::lineage(conn, &t)?;
    let disabled_by = sharing::disabled_by(&lineage).map(|x| x.name.clone());
    let mut rows = vec![];
    for c in sharing::usable_containers(conn, &t.id)? {
        let owner = lineage
            .iter()
            .find(|l| l.id == c.tenant_id)
            .map(|l| l.name.clone())
            .unwrap_or_default();
        let used_by = where_used(conn, actor, &c)?;
        let manage = actor.can_manage() && actor.scope.covers_tenant_path(&c.tenant_path);
        let (connectors, hidden_connectors) = connectors_using(conn, actor, &c)?;
        let cannot_delete = delete_blocker(conn, actor, &c)?;
        rows.push(OverviewRow {
            container: c,
            owner,
            used_by,
            connectors,
            hidden_connectors,
            manage,
            cannot_delete,
        });
    }
    Ok(Overview {
        tenant: t,
        disabled_by,
        rows,
    })
}

/// Connectors (in the actor's scope) assigned the container, and tenants whose Global Setting
/// names it.
pub fn where_used(
    conn: &mut DbConnection,
    actor: &Actor,
    c: &Container,
) -> Result<Vec<String>, ServiceError> {
    Ok(visible_uses(actor, &assignments(conn, c)?))
}

/// The connectors that have container `c` in their Connector Base Data and the tenants whose
/// Global Setting names it (all of them, whatever the actor may see).
struct Assignments {
    connectors: Vec<crate::models::connector::Connector>,
    tenants: Vec<Tenant>,
}

fn assignments(conn: &mut DbConnection, c: &Container) -> Result<Assignments, ServiceError> {
    let connectors = connector::assigned_to(conn, &c.id)?;
    let mut tenants = vec![];
    for tid in container::global_setting_tenants(conn, &c.id)? {
        if let Some(t) = tenant::find(conn, &tid)? {
            tenants.push(t);
        }
    }
    Ok(Assignments {
        connectors,
        tenants,
    })
}

/// The assignments the actor may see, in words.
fn visible_uses(actor: &Actor, a: &Assignments) -> Vec<String> {
    let mut used = vec![];
    for k in &a.connectors {
        if actor.scope.covers_merchant(&k.merchant_id, &k.tenant_path) {
            used.push(format!("connector {}", k.name));
        }
    }
    for t in &a.tenants {
        if actor.scope.covers_tenant_path(&t.path) {
            used.push(format!("Global Setting of {}", t.name));
        }
    }
    used
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
    name: &str,
) -> Result<Container, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", name, 100);
    let owner = match tenants::get(conn, actor, tenant_id) {
        Ok(t) => {
            let lineage = sharing::lineage(conn, &t)?;
            if let Some(by) = sharing::disabled_by(&lineage) {
                errors.add(
                    "tenant_id",
                    format!(
                        "Customer profile containers are disabled for this tenant by {}.",
                        by.name
                    ),
                );
            }
            Some(t)
        }
        Err(_) => {
            errors.add("tenant_id", "Choose a tenant.");
            None
        }
    };
    errors.into_result()?;
    let Some(t) = owner else {
        return Err(ServiceError::NotFound);
    };
    let at = now();
    let c = Container {
        id: crate::ids::new_id(),
        tenant_id: t.id.clone(),
        tenant_path: t.path.clone(),
        name,
        profile_count: 0,
        instrument_count: 0,
        created_at: at,
        updated_at: at,
    };
    crate::db::write_tx(conn, |tx| {
        check_name_free(tx, &t.id, &c.name, None)?;
        match container::insert(tx, &c) {
            Err(e) if is_unique_violation(&e) => return Err(name_taken()),
            r => r?,
        }
        audit::record(
            tx,
            actor,
            &Place::tenant(&t.id, &t.path),
            Change {
                action: "container.create",
                object_type: "container",
                object_id: &c.id,
                summary: format!(
                    "Created customer profile container {} for {}",
                    c.name, t.name
                ),
                changes: vec![("name", None, Some(c.name.clone()))],
            },
        )?;
        Ok(c.clone())
    })
}

fn name_taken() -> ServiceError {
    ServiceError::invalid(
        "name",
        "This tenant already has a container with this name.",
    )
}

/// Container names are one name whatever their case, within a tenant (`except`: the container
/// being renamed). The unique index on (tenant_id, lower(name)) backs this up for writes that
/// race past it; its violation answers the same form error.
fn check_name_free(
    conn: &mut DbConnection,
    tenant_id: &str,
    name: &str,
    except: Option<&str>,
) -> Result<(), ServiceError> {
    let wanted = name.to_lowercase();
    let taken = container::owned_by_any(conn, &[tenant_id])?
        .iter()
        .any(|c| Some(c.id.as_str()) != except && c.name.to_lowercase() == wanted);
    if taken { Err(name_taken()) } else { Ok(()) }
}

fn managed(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Container, ServiceError> {
    let (c, access) = access(conn, actor, id)?;
    if access != Access::Manage || !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    Ok(c)
}

pub fn rename(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    name: &str,
) -> Result<Container, ServiceError> {
    let mut errors = FieldErrors::new();
    let name = clean_name(&mut errors, "name", name, 100);
    let c = managed(conn, actor, id)?;
    errors.into_result()?;
    crate::db::write_tx(conn, |tx| {
        check_name_free(tx, &c.tenant_id, &name, Some(&c.id))?;
        match container::rename(tx, &c.id, &name, now()) {
            Err(e) if is_unique_violation(&e) => return Err(name_taken()),
            r => r?,
        };
        audit::record(
            tx,
            actor,
            &Place::tenant(&c.tenant_id, &c.tenant_path),
            Change {
                action: "container.update",
                object_type: "container",
                object_id: &c.id,
                summary: format!("Renamed container {} to {}", c.name, name),
                changes: vec![("name", Some(c.name.clone()), Some(name.clone()))],
            },
        )?;
        Ok(Container {
            name: name.clone(),
            ..c.clone()
        })
    })
}

/// Why container `c` cannot be deleted now, if it cannot: it holds profiles, or it is assigned
/// to a connector or a Global Setting (anywhere, including outside the actor's view; only the
/// names the actor may see are listed). The delete action enforces this, and the pages ask it
/// before they offer "delete".
pub fn delete_blocker(
    conn: &mut DbConnection,
    actor: &Actor,
    c: &Container,
) -> Result<Option<String>, ServiceError> {
    Ok(blocker_of(actor, c, &assignments(conn, c)?))
}

/// Why container `c` cannot be deleted, from its assignments.
fn blocker_of(actor: &Actor, c: &Container, a: &Assignments) -> Option<String> {
    let mut used = vec![];
    if c.profile_count > 0 {
        used.push(format!(
            "it holds {}",
            crate::domain::plural(c.profile_count, "customer profile", "customer profiles")
        ));
    }
    let all_assigned = a.connectors.len() + a.tenants.len();
    let visible = visible_uses(actor, a);
    if all_assigned > 0 {
        let hidden = all_assigned - visible.len();
        let mut s = format!("it is assigned to {}", visible.join(", "));
        if hidden > 0 {
            s.push_str(&format!(
                "{}{hidden} more outside your view",
                if visible.is_empty() { "" } else { " and " }
            ));
        }
        used.push(s);
    }
    (!used.is_empty()).then(|| {
        format!(
            "Container {} cannot be deleted: {}.",
            c.name,
            used.join("; ")
        )
    })
}

/// Deletes an unused container; refuses (saying where) while it holds profiles or is assigned.
pub fn delete(conn: &mut DbConnection, actor: &Actor, id: &str) -> Result<Container, ServiceError> {
    let c = managed(conn, actor, id)?;
    crate::db::write_tx(conn, |tx| {
        let c = container::find(tx, &c.id)?.ok_or(ServiceError::NotFound)?;
        if let Some(why) = delete_blocker(tx, actor, &c)? {
            return Err(ServiceError::Conflict(why));
        }
        container::delete(tx, &c.id)?;
        audit::record(
            tx,
            actor,
            &Place::tenant(&c.tenant_id, &c.tenant_path),
            Change {
                action: "container.delete",
                object_type: "container",
                object_id: &c.id,
                summary: format!("Deleted container {}", c.name),
                changes: vec![("name", Some(c.name.clone()), None)],
            },
        )?;
        Ok(c)
    })
}

pub struct ProfilePage {
    pub container: Container,
    pub access: Access,
    pub rows: Vec<Profile>,
    /// `before=` cursor of the older page.
    pub next: Option<String>,
    /// `after=` cursor of the newer page.
    pub newer: Option<String>,
    pub total: i64,
}

/// A container's profiles: newest first, keyset-paginated, optionally narrowed to a search term
/// (`profile_search::parse_term`), matched as `profile_search` matches it everywhere.
pub fn profiles(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
    term: Option<&str>,
    cursor: &Cursor,
) -> Result<ProfilePage, ServiceError> {
    let (container, access) = access(conn, actor, id)?;
    let found = profile_search::within(conn, &container, term, cursor)?;
    let total = container.profile_count;
    Ok(ProfilePage {
        container,
        access,
        rows: found.hits.into_iter().map(|h| h.profile).collect(),
        next: found.older,
        newer: found.newer,
        total,
    })
}

pub struct ProfileView {
    pub profile: Profile,
    pub container: Container,
    pub access: Access,
    pub instruments: Vec<(Instrument, String)>,
}

pub fn profile(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
) -> Result<ProfileView, ServiceError> {
    let p = profile::find(conn, profile_id)?.ok_or(ServiceError::NotFound)?;
    let (container, access) = access(conn, actor, &p.container_id)?;
    let instruments = profile::instruments_of(conn, &p.id)?;
    Ok(ProfileView {
        profile: p,
        container,
        access,
        instruments,
    })
}

/// A profile as its console page shows it: the view is recorded in the access audit
/// (PCI DSS v4 10.2.1.1) before anything is answered.
pub fn view_profile(
    conn: &mut DbConnection,
    actor: &Actor,
    reader: &crate::audit::access::Reader,
    profile_id: &str,
) -> Result<ProfileView, ServiceError> {
    let v = profile(conn, actor, profile_id)?;
    reader.read(
        conn,
        crate::audit::access::Kind::View,
        &v.profile.profile_guid,
        "opened the profile's page",
    )?;
    Ok(v)
}

/// How many access entries a profile's page shows (the audit page has them all).
pub const ACCESS_HISTORY_SHOWN: usize = 10;

/// The newest access entries of a profile that `actor` may see (the audit log's own scoping),
/// newest first, and whether there are more.
pub fn access_history(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_guid: &str,
) -> Result<(Vec<crate::models::audit::AuditEntry>, bool), ServiceError> {
    let q = audit::Query {
        object_id: Some(profile_guid.to_string()),
        action_prefix: Some(crate::audit::access::ACTION_PREFIX.to_string()),
        ..audit::Query::default()
    };
    let (mut rows, next) = audit::page_where(conn, actor, &q)?;
    let more = next.is_some() || rows.len() > ACCESS_HISTORY_SHOWN;
    rows.truncate(ACCESS_HISTORY_SHOWN);
    Ok((rows, more))
}

/// Deletes a profile, its instruments and their vault records. Irreversible and audited.
pub fn delete_profile(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
) -> Result<Profile, ServiceError> {
    let v = profile(conn, actor, profile_id)?;
    if v.access != Access::Manage || !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let deleted = crate::db::write_tx(conn, |tx| -> Result<Profile, ServiceError> {
        // As the Customer Profiles API's deleteProfile: after any registration into the profile.
        profiles::lock(tx, &v.container.id)?;
        profiles::delete(tx, &v.container.id, &v.profile.id)?;
        audit::record(
            tx,
            actor,
            &Place::tenant(&v.container.tenant_id, &v.container.tenant_path),
            Change {
                action: "profile.delete",
                object_type: "profile",
                object_id: &v.profile.profile_guid,
                summary: format!(
                    "Deleted customer profile {} ({}) from {} with {} instrument(s)",
                    v.profile.profile_guid,
                    v.profile.customer_identification,
                    v.container.name,
                    v.instruments.len()
                ),
                changes: vec![],
            },
        )?;
        Ok(v.profile.clone())
    })?;
    crate::db::scrub_after_erasure(conn)?;
    Ok(deleted)
}

/// "the Visa card ending 1111 (12/2030)", "the IBAN DE89…3000".
pub fn instrument_label(i: &Instrument) -> String {
    if i.method == "iban" {
        return format!("the IBAN {}", i.iban_masked.clone().unwrap_or_default());
    }
    let expiry = match (i.exp_month, i.exp_year) {
        (Some(m), Some(y)) => format!(" ({m:02}/{y})"),
        _ => String::new(),
    };
    format!(
        "the {} card ending {}{expiry}",
        i.brand.clone().unwrap_or_else(|| "payment".into()),
        i.last_four.clone().unwrap_or_default()
    )
}

/// The profile `profile_id` and its instrument `instrument_id`, which `actor` may change.
fn managed_instrument(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
    instrument_id: &str,
) -> Result<(ProfileView, Instrument), ServiceError> {
    let v = profile(conn, actor, profile_id)?;
    if v.access != Access::Manage || !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let i = v
        .instruments
        .iter()
        .find(|(i, _)| i.id == instrument_id)
        .map(|(i, _)| i.clone())
        .ok_or(ServiceError::NotFound)?;
    Ok((v, i))
}

/// What making an instrument preferred, or removing it, does, in words (their confirmation
/// pages); `remove` chooses which.
pub fn instrument_change_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
    instrument_id: &str,
    remove: bool,
) -> Result<(ProfileView, Instrument, Vec<String>), ServiceError> {
    let (v, i) = managed_instrument(conn, actor, profile_id, instrument_id)?;
    let who = v.profile.customer_identification.clone();
    let mut lines = vec![];
    if remove {
        let sharing_connectors = sharing::connectors_using(conn, &v.container)?.len() as i64;
        lines.push(format!(
            "{} is removed from profile {who} with its sealed card data; this cannot be undone.",
            capitalized(&instrument_label(&i))
        ));
        lines.push(format!(
            "Its payment token {} stops working for the {} that {} {}.",
            i.payment_token,
            crate::domain::plural(sharing_connectors, "connector", "connectors"),
            if sharing_connectors == 1 {
                "uses"
            } else {
                "use"
            },
            v.container.name
        ));
        if i.is_preferred {
            lines.push(match v.instruments.iter().find(|(o, _)| o.id != i.id) {
                Some((next, _)) => format!(
                    "It is the preferred instrument: {} becomes the preferred one.",
                    instrument_label(next)
                ),
                None => {
                    "It is the profile's only instrument: the profile keeps no payment instrument."
                        .to_string()
                }
            });
        }
    } else {
        lines.push(format!(
            "{} becomes the preferred instrument of profile {who}.",
            capitalized(&instrument_label(&i))
        ));
        if let Some((old, _)) = v
            .instruments
            .iter()
            .find(|(o, _)| o.is_preferred && o.id != i.id)
        {
            lines.push(format!(
                "{} is no longer preferred.",
                capitalized(&instrument_label(old))
            ));
        }
    }
    Ok((v, i, lines))
}

/// The text with its first letter in upper case.
pub fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
        .unwrap_or_default()
}

/// Makes an instrument the profile's one preferred instrument, under the container lock as
/// updateProfile's `preferredInstrument` does, and audits it.
pub fn make_preferred(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
    instrument_id: &str,
) -> Result<Instrument, ServiceError> {
    let (v, i) = managed_instrument(conn, actor, profile_id, instrument_id)?;
    crate::db::write_tx(conn, |tx| -> Result<Instrument, ServiceError> {
        profiles::lock(tx, &v.container.id)?;
        if !profiles::make_preferred(tx, &v.profile.id, &i.id)? {
            return Err(ServiceError::NotFound);
        }
        audit::record(
            tx,
            actor,
            &Place::tenant(&v.container.tenant_id, &v.container.tenant_path),
            Change {
                action: "profile.instrument.preferred",
                object_type: "profile",
                object_id: &v.profile.profile_guid,
                summary: format!(
                    "Made {} ({}) the preferred instrument of profile {}",
                    instrument_label(&i),
                    i.payment_token,
                    v.profile.profile_guid
                ),
                changes: vec![],
            },
        )?;
        Ok(i.clone())
    })
}

/// Removes an instrument as deregister does (read again under the container lock; the preferred
/// rule re-applied by `vault::profiles::remove_instrument`), audits it and scrubs its card data.
pub fn remove_instrument(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
    instrument_id: &str,
) -> Result<Instrument, ServiceError> {
    let (v, _) = managed_instrument(conn, actor, profile_id, instrument_id)?;
    let removed = crate::db::write_tx(conn, |tx| -> Result<Instrument, ServiceError> {
        profiles::lock(tx, &v.container.id)?;
        let i = profile::find_instrument(tx, instrument_id)?
            .filter(|i| i.profile_id == v.profile.id)
            .ok_or(ServiceError::NotFound)?;
        profiles::remove_instrument(tx, &i)?;
        audit::record(
            tx,
            actor,
            &Place::tenant(&v.container.tenant_id, &v.container.tenant_path),
            Change {
                action: "profile.instrument.delete",
                object_type: "profile",
                object_id: &v.profile.profile_guid,
                summary: format!(
                    "Removed {} ({}) from profile {}",
                    instrument_label(&i),
                    i.payment_token,
                    v.profile.profile_guid
                ),
                changes: vec![],
            },
        )?;
        Ok(i)
    })?;
    crate::db::scrub_after_erasure(conn)?;
    Ok(removed)
}

/// A connector with its effective container and why, as the sharing rules decide it now.
pub struct ConnectorRow {
    pub connector: Connector,
    pub effective: sharing::Effective,
}

pub struct GlobalSettingView {
    pub tenant: Tenant,
    pub disabled_by: Option<String>,
    pub current: Option<Container>,
    pub options: Vec<Container>,
    /// The connectors of the tenant's own merchants: the setting can reach these.
    pub own: Vec<ConnectorRow>,
    /// The connectors of merchants of its sub-tenants, which the setting does not reach.
    pub sub_tenants: Vec<ConnectorRow>,
}

impl GlobalSettingView {
    /// How many connectors use the container through the Global Setting.
    pub fn reached(&self) -> usize {
        self.own
            .iter()
            .filter(|r| matches!(r.effective.source, sharing::Source::GlobalSetting(_)))
            .count()
    }
}

pub fn global_setting(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
) -> Result<GlobalSettingView, ServiceError> {
    let t = tenants::get(conn, actor, tenant_id)?;
    let lineage = sharing::lineage(conn, &t)?;
    let disabled_by = sharing::disabled_by(&lineage).map(|x| x.name.clone());
    let current = container::global_setting(conn, &t.id)?;
    let options = sharing::usable_containers(conn, &t.id)?;
    let mut own = vec![];
    let mut sub_tenants = vec![];
    for k in connector::under(conn, Some(&t.path))? {
        let effective = crate::vault::sharing::effective(conn, &k)?;
        let row = ConnectorRow {
            connector: k,
            effective,
        };
        if row.connector.tenant_id == t.id {
            own.push(row);
        } else {
            sub_tenants.push(row);
        }
    }
    Ok(GlobalSettingView {
        tenant: t,
        disabled_by,
        current,
        options,
        own,
        sub_tenants,
    })
}

/// What setting the Global Setting of `tenant_id` to `container_id` would do, without doing it:
/// the tenant's name and how the effective container of every connector under it would move.
pub fn global_setting_impact(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
    container_id: &str,
) -> Result<(Tenant, crate::console::impact::Impact), ServiceError> {
    let t = tenants::get(conn, actor, tenant_id)?;
    let candidates = connector::under(conn, Some(&t.path))?;
    let (_, impact) = crate::console::impact::preview(conn, &candidates, |tx| {
        set_global_setting(tx, actor, tenant_id, container_id)
    })?;
    Ok((t, impact))
}

pub fn set_global_setting(
    conn: &mut DbConnection,
    actor: &Actor,
    tenant_id: &str,
    container_id: &str,
) -> Result<Option<Container>, ServiceError> {
    if !actor.can_manage() {
        return Err(ServiceError::Forbidden);
    }
    let t = tenants::get(conn, actor, tenant_id)?;
    let chosen = match container_id.trim() {
        "" => None,
        id => Some(sharing::check_assignable(conn, &t.id, id, "container_id")?),
    };
    crate::db::write_tx(conn, |tx| {
        let old = container::global_setting(tx, &t.id)?;
        container::set_global_setting(tx, &t.id, chosen.as_ref().map(|c| c.id.as_str()), now())?;
        audit::record(
            tx,
            actor,
            &Place::tenant(&t.id, &t.path),
            Change {
                action: "global_setting.update",
                object_type: "tenant",
                object_id: &t.id,
                summary: format!(
                    "Set the Global Setting customer profile container of {}",
                    t.name
                ),
                changes: vec![(
                    "container",
                    old.map(|c| c.name),
                    chosen.as_ref().map(|c| c.name.clone()),
                )],
            },
        )?;
        Ok(chosen.clone())
    })
}

/// What "Run account updater (simulated)" would do, in words, and the container (which the
/// actor must manage).
pub fn account_updater_consequences(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(Container, Vec<String>), ServiceError> {
    let c = managed(conn, actor, id)?;
    let cards = profile::count_cards(conn, Some(&c.id))?;
    Ok((
        c,
        vec![
            format!(
                "The simulated account updater is asked about {cards} stored card(s) of this container."
            ),
            "Reissued and replaced cards are updated in place (their payment tokens stay the same) and connectors with a Lifecycle webhook URL get instrument.updated.".into(),
            "Cards of closed accounts are removed from their profiles (instrument.deleted); this cannot be undone.".into(),
        ],
    ))
}

/// Starts the simulated account updater on container `id`, which the actor manages, or finds
/// the run already going there: the run and whether it is new. The server's background worker
/// does the run (`vault::lifecycle::run_some`). Audited (`account_updater.run`, and each change).
pub fn start_account_updater(
    conn: &mut DbConnection,
    actor: &Actor,
    id: &str,
) -> Result<(crate::models::lifecycle_run::Run, bool), ServiceError> {
    let c = managed(conn, actor, id)?;
    crate::vault::lifecycle::start_account_updater(conn, actor, &c)
}
