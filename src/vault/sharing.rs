//! The customer-profile container sharing rules, in one place. The console and both APIs call
//! these functions; nothing else decides which container a connector reads and writes.
//!
//! - A container belongs to one tenant and is usable by that tenant and every tenant below it.
//! - A tenant with "Disable customer profile containers for sub-tenants" turns the feature off for
//!   every tenant strictly below it: they cannot own, see, create or be assigned containers.
//! - A connector of a merchant of tenant X may be assigned only a container usable by X.
//! - A Global Setting of tenant X applies to the connectors of X's merchants (unless a connector
//!   ignores global settings); it is not passed down to sub-tenants.
//! - Effective container: own assignment, else the tenant's global setting (unless ignored), else
//!   none; none as well when the rules no longer allow it. Computed on use from current rows
//!   (an API call reuses the answer until the configuration version moves, see
//!   `vault::config_cache`, so a change still takes effect on the next call). The
//!   reason (`Source`) is what the console shows next to it, on connector pages and Global
//!   Settings alike.

use crate::db::DbConnection;
use crate::error::ServiceError;
use crate::models::connector::Connector;
use crate::models::container::{self, Container};
use crate::models::tenant::{self, Tenant};

/// What the rules need to know about a tenant on the path from the root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TenantFacts {
    pub id: String,
    pub name: String,
    pub disables_subtenants: bool,
}

impl From<&Tenant> for TenantFacts {
    fn from(t: &Tenant) -> Self {
        TenantFacts {
            id: t.id.clone(),
            name: t.name.clone(),
            disables_subtenants: t.disable_containers_for_subtenants,
        }
    }
}

/// The tenant (of which `lineage` is the path root first, ending with the tenant itself) cannot
/// use containers because of this ancestor's flag (the topmost one, when several are set).
pub fn disabled_by(lineage: &[TenantFacts]) -> Option<&TenantFacts> {
    let strict_ancestors = &lineage[..lineage.len().saturating_sub(1)];
    strict_ancestors.iter().find(|t| t.disables_subtenants)
}

/// May the tenant own, see, create and be assigned containers?
pub fn may_use_containers(lineage: &[TenantFacts]) -> bool {
    !lineage.is_empty() && disabled_by(lineage).is_none()
}

/// Is a container owned by `owner_tenant_id` usable by the tenant whose lineage is given?
pub fn usable(lineage: &[TenantFacts], owner_tenant_id: &str) -> bool {
    may_use_containers(lineage) && lineage.iter().any(|t| t.id == owner_tenant_id)
}

/// Why a connector has the effective container it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The connector's own Connector Base Data assignment.
    Assigned,
    /// The Global Setting of the connector's tenant (named).
    GlobalSetting(String),
    /// The feature is disabled for the connector's tenant by this ancestor (named).
    DisabledBy(String),
    /// The connector is assigned a container the rules no longer allow (named).
    NotAllowed(String),
    /// No assignment, and the connector ignores Global Connector Settings.
    IgnoresGlobal,
    None,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Assigned => write!(f, "assigned"),
            Source::GlobalSetting(t) => write!(f, "global setting of {t}"),
            Source::DisabledBy(t) => write!(f, "disabled by {t}"),
            Source::NotAllowed(c) => {
                write!(f, "none (assigned container {c} is no longer allowed)")
            }
            Source::IgnoresGlobal => write!(f, "ignores global settings"),
            Source::None => write!(f, "none"),
        }
    }
}

impl Source {
    /// Why a container assigned to the connector does not count now, if that is the case: the
    /// assignment is suspended (kept as stored, never overwritten by a form that cannot show it).
    pub fn suspension(&self) -> Option<String> {
        match self {
            Source::DisabledBy(t) => Some(format!("disabled by {t}")),
            Source::NotAllowed(_) => Some("no longer available to this tenant".into()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Effective {
    pub container: Option<Container>,
    pub source: Source,
}

/// The decision, from facts already loaded. `assignment` is the connector's assigned container
/// (`Err(id)` when it is assigned an id that no longer exists), `global` the tenant's Global
/// Setting container.
pub fn decide(
    lineage: &[TenantFacts],
    assignment: Option<Result<Container, String>>,
    ignore_global: bool,
    global: Option<Container>,
) -> Effective {
    if let Some(t) = disabled_by(lineage) {
        return Effective {
            container: None,
            source: Source::DisabledBy(t.name.clone()),
        };
    }
    match assignment {
        Some(Ok(c)) if usable(lineage, &c.tenant_id) => Effective {
            container: Some(c),
            source: Source::Assigned,
        },
        Some(Ok(c)) => Effective {
            container: None,
            source: Source::NotAllowed(c.name),
        },
        Some(Err(id)) => Effective {
            container: None,
            source: Source::NotAllowed(id),
        },
        None if ignore_global => Effective {
            container: None,
            source: Source::IgnoresGlobal,
        },
        None => match global {
            Some(g) if usable(lineage, &g.tenant_id) => {
                let own = lineage.last().map(|t| t.name.clone()).unwrap_or_default();
                Effective {
                    container: Some(g),
                    source: Source::GlobalSetting(own),
                }
            }
            _ => Effective {
                container: None,
                source: Source::None,
            },
        },
    }
}

/// Loads the lineage (root first) of a tenant from its materialized path.
///
/// Each ancestor is read by primary key, and the tenant itself is not read again: a tenant is a
/// few levels deep, and these lookups reuse one prepared statement, while `id IN (…)` with a
/// variable-length list is prepared anew by diesel on every call, which cost about 15% of the
/// CPU of a getProfile (bench/, perf). Every API call with a container goes through here.
pub fn lineage(conn: &mut DbConnection, t: &Tenant) -> Result<Vec<TenantFacts>, ServiceError> {
    let mut rows = Vec::new();
    for id in t.lineage_ids() {
        if id == t.id {
            rows.push(TenantFacts::from(t));
        } else if let Some(a) = tenant::find(conn, id)? {
            rows.push(TenantFacts::from(&a));
        }
    }
    Ok(rows)
}

pub fn lineage_of(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<Vec<TenantFacts>, ServiceError> {
    let t = tenant::find(conn, tenant_id)?.ok_or(ServiceError::NotFound)?;
    lineage(conn, &t)
}

/// The effective container of connector `k`: the one entry point every path asks (both IXOPAY
/// APIs, Monri, the payment pages, the console, the seeder).
///
/// Inside an API call (`vault::config_cache::within`) the answer computed for the call's configuration
/// version is reused until the configuration changes (the container page reads through it too);
/// elsewhere (the console's other pages and every write) it is computed now.
pub fn effective(conn: &mut DbConnection, k: &Connector) -> Result<Effective, ServiceError> {
    let memo = MEMO.with(|m| m.borrow().clone());
    let Some(memo) = memo else {
        return effective_now(conn, k);
    };
    if let Some(e) = memo.lock().get(&k.id) {
        return Ok(e.clone());
    }
    let e = effective_now(conn, k)?;
    memo.lock().insert(k.id.clone(), e.clone());
    Ok(e)
}

/// Effective containers (by connector id) and the connectors using each container (by
/// container id) remembered for one configuration version: held by a `vault::config_cache`
/// snapshot, consulted by [`effective`] and [`connectors_using`] inside [`with_memo`].
#[derive(Debug, Default)]
pub struct Memo {
    effective: std::sync::Mutex<std::collections::HashMap<String, Effective>>,
    using: std::sync::Mutex<std::collections::HashMap<String, Vec<(Connector, Effective)>>>,
}

impl Memo {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Effective>> {
        self.effective
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn using(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<String, Vec<(Connector, Effective)>>>
    {
        self.using
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

thread_local! {
    static MEMO: std::cell::RefCell<Option<std::sync::Arc<Memo>>> =
        const { std::cell::RefCell::new(None) };
}

/// Runs `f` (an API call's work, on its thread) with `memo` answering [`effective`].
pub fn with_memo<T>(memo: &std::sync::Arc<Memo>, f: impl FnOnce() -> T) -> T {
    struct Reset(Option<std::sync::Arc<Memo>>);
    impl Drop for Reset {
        fn drop(&mut self) {
            let prev = self.0.take();
            MEMO.with(|m| *m.borrow_mut() = prev);
        }
    }
    let prev = MEMO.with(|m| m.borrow_mut().replace(memo.clone()));
    let _reset = Reset(prev);
    f()
}

fn effective_now(conn: &mut DbConnection, k: &Connector) -> Result<Effective, ServiceError> {
    effective_for(
        conn,
        &k.tenant_id,
        k.container_id.as_deref(),
        k.ignore_global,
    )
}

/// Every connector whose effective container is `c` now, with its [`Effective`] (whose source
/// says why: assigned in its Connector Base Data, or through a tenant's Global Setting). Only
/// connectors of the owner tenant and the tenants below it can use a container, so only they are
/// asked, each through [`effective`], the one decision.
///
/// Inside [`with_memo`] the answer is remembered for the configuration version, like
/// [`effective`]'s: the container page (and its profile search) asked it on every view, reading
/// every connector of the owner's subtree (a third of the search page's CPU, README
/// "Benchmark").
pub fn connectors_using(
    conn: &mut DbConnection,
    c: &Container,
) -> Result<Vec<(Connector, Effective)>, ServiceError> {
    let memo = MEMO.with(|m| m.borrow().clone());
    if let Some(m) = &memo
        && let Some(v) = m.using().get(&c.id)
    {
        return Ok(v.clone());
    }
    let mut out = vec![];
    for k in crate::models::connector::under(conn, Some(&c.tenant_path))? {
        let e = effective(conn, &k)?;
        if reaches(&e, &c.id) {
            out.push((k, e));
        }
    }
    if let Some(m) = memo {
        m.using().insert(c.id.clone(), out.clone());
    }
    Ok(out)
}

/// May connector `k` reach a stored instrument (or profile) kept in container `container_id`?
/// Only when that container is the connector's effective container now. Every way to a stored
/// instrument asks this: a `pt::` token, a `referenceUuid` of an earlier transaction, the hosted
/// page's stored cards, the 3-D Secure continuation and deregistration; a refusal changes
/// nothing, since it comes before any write.
pub fn may_reach(
    conn: &mut DbConnection,
    k: &Connector,
    container_id: &str,
) -> Result<bool, ServiceError> {
    Ok(reaches(&effective(conn, k)?, container_id))
}

/// The pure half of [`may_reach`].
pub fn reaches(effective: &Effective, container_id: &str) -> bool {
    effective
        .container
        .as_ref()
        .is_some_and(|c| c.id == container_id)
}

/// The connector's effective container, computed now from the current rows.
pub fn effective_for(
    conn: &mut DbConnection,
    tenant_id: &str,
    assigned_container_id: Option<&str>,
    ignore_global: bool,
) -> Result<Effective, ServiceError> {
    let lineage = lineage_of(conn, tenant_id)?;
    let assignment = match assigned_container_id {
        Some(id) => Some(container::find(conn, id)?.ok_or_else(|| id.to_string())),
        None => None,
    };
    let global = if assignment.is_none() && !ignore_global {
        container::global_setting(conn, tenant_id)?
    } else {
        None
    };
    Ok(decide(&lineage, assignment, ignore_global, global))
}

/// Containers usable by a tenant: those owned by the tenant or an ancestor, when enabled.
pub fn usable_containers(
    conn: &mut DbConnection,
    tenant_id: &str,
) -> Result<Vec<Container>, ServiceError> {
    let lineage = lineage_of(conn, tenant_id)?;
    if !may_use_containers(&lineage) {
        return Ok(vec![]);
    }
    let ids: Vec<&str> = lineage.iter().map(|t| t.id.as_str()).collect();
    Ok(container::owned_by_any(conn, &ids)?)
}

/// A container the tenant may be assigned (Connector Base Data or Global Setting), or a
/// validation error for `field`. Re-checked on the server whatever the form offered.
pub fn check_assignable(
    conn: &mut DbConnection,
    tenant_id: &str,
    container_id: &str,
    field: &str,
) -> Result<Container, ServiceError> {
    let lineage = lineage_of(conn, tenant_id)?;
    if let Some(t) = disabled_by(&lineage) {
        return Err(ServiceError::invalid(
            field,
            format!(
                "Customer profile containers are disabled for this tenant by {}.",
                t.name
            ),
        ));
    }
    match container::find(conn, container_id)? {
        Some(c) if usable(&lineage, &c.tenant_id) => Ok(c),
        _ => Err(ServiceError::invalid(
            field,
            "Choose a container available to this tenant.",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(id: &str, flag: bool) -> TenantFacts {
        TenantFacts {
            id: id.into(),
            name: format!("T-{id}"),
            disables_subtenants: flag,
        }
    }

    fn c(id: &str, owner: &str) -> Container {
        let at = chrono::NaiveDateTime::default();
        Container {
            id: id.into(),
            tenant_id: owner.into(),
            tenant_path: String::new(),
            name: format!("C-{id}"),
            profile_count: 0,
            instrument_count: 0,
            created_at: at,
            updated_at: at,
        }
    }

    #[test]
    fn a_container_is_usable_by_its_owner_and_every_tenant_below_it() {
        let root = vec![t("a", false)];
        let deep = vec![t("a", false), t("b", false), t("c", false), t("d", false)];
        assert!(usable(&root, "a"));
        assert!(usable(&deep, "a"), "four levels down");
        assert!(usable(&deep, "c"));
        assert!(usable(&deep, "d"));
        assert!(!usable(&root, "b"), "not usable above its owner");
        assert!(!usable(&deep, "x"), "not usable from a sibling tree");
    }

    #[test]
    fn the_disable_flag_turns_containers_off_strictly_below_the_tenant() {
        let flagged = vec![t("a", true)];
        assert!(
            may_use_containers(&flagged),
            "the flagged tenant itself is not affected"
        );
        assert!(usable(&flagged, "a"));
        let child = vec![t("a", true), t("b", false)];
        assert!(!may_use_containers(&child));
        assert!(!usable(&child, "a"), "inherited containers are gone too");
        assert!(!usable(&child, "b"), "and own ones");
        let grandchild = vec![t("a", true), t("b", false), t("c", false)];
        assert!(!may_use_containers(&grandchild));
        assert_eq!(disabled_by(&grandchild).map(|t| t.id.as_str()), Some("a"));
        let mid = vec![t("a", false), t("b", true), t("c", false), t("d", false)];
        assert!(
            usable(&mid[..2], "a"),
            "the flag at depth 1 leaves depth 1 alone"
        );
        assert!(!usable(&mid[..3], "a"));
        assert_eq!(disabled_by(&mid).map(|t| t.id.as_str()), Some("b"));
        let two = vec![t("a", true), t("b", true), t("c", false)];
        assert_eq!(
            disabled_by(&two).map(|t| t.id.as_str()),
            Some("a"),
            "the topmost flag is named"
        );
    }

    #[test]
    fn effective_container_prefers_the_assignment_then_the_global_setting() {
        let l = vec![t("a", false), t("b", false)];
        let e = decide(&l, Some(Ok(c("own", "b"))), false, Some(c("glob", "b")));
        assert_eq!(e.container.map(|c| c.id), Some("own".into()));
        assert_eq!(e.source, Source::Assigned);
        let e = decide(&l, None, false, Some(c("glob", "a")));
        assert_eq!(e.container.map(|c| c.id), Some("glob".into()));
        assert_eq!(e.source.to_string(), "global setting of T-b");
        let e = decide(&l, None, true, Some(c("glob", "a")));
        assert!(e.container.is_none(), "ignore flag");
        assert_eq!(e.source, Source::IgnoresGlobal);
        assert_eq!(e.source.to_string(), "ignores global settings");
        let e = decide(&l, None, true, None);
        assert_eq!(
            e.source,
            Source::IgnoresGlobal,
            "whether or not the tenant has a global setting"
        );
        let e = decide(&l, Some(Ok(c("own", "b"))), true, Some(c("glob", "b")));
        assert_eq!(
            e.source,
            Source::Assigned,
            "the flag leaves an assignment alone"
        );
        let e = decide(
            &[t("a", true), t("b", false)],
            None,
            true,
            Some(c("glob", "b")),
        );
        assert_eq!(
            e.source.to_string(),
            "disabled by T-a",
            "disabled comes first"
        );
        let e = decide(&l, None, false, None);
        assert_eq!(e.source.to_string(), "none");
    }

    #[test]
    fn an_assignment_the_rules_no_longer_allow_is_suspended_with_the_reason() {
        let after = vec![t("a", true), t("b", false)];
        let e = decide(&after, Some(Ok(c("x", "a"))), false, None);
        assert_eq!(e.source.suspension().as_deref(), Some("disabled by T-a"));
        let before = vec![t("a", false), t("b", false)];
        let e = decide(&before, Some(Ok(c("y", "zz"))), false, None);
        assert_eq!(
            e.source.suspension().as_deref(),
            Some("no longer available to this tenant")
        );
        let e = decide(&before, Some(Err("gone".into())), false, None);
        assert!(e.source.suspension().is_some());
        for counted in [
            decide(&before, Some(Ok(c("x", "a"))), false, None),
            decide(&before, None, false, Some(c("g", "b"))),
            decide(&before, None, false, None),
        ] {
            assert_eq!(counted.source.suspension(), None, "{:?}", counted.source);
        }
    }

    #[test]
    fn the_global_setting_is_not_passed_down_to_sub_tenants() {
        // The loader asks only the connector's own tenant for its global setting; a sub-tenant
        // without one gets none even though its parent has one.
        let sub = vec![t("a", false), t("b", false)];
        let e = decide(&sub, None, false, None);
        assert!(e.container.is_none());
    }

    #[test]
    fn effective_container_is_none_once_the_rules_no_longer_allow_it() {
        let before = vec![t("a", false), t("b", false)];
        assert!(
            decide(&before, Some(Ok(c("x", "a"))), false, None)
                .container
                .is_some()
        );
        let after = vec![t("a", true), t("b", false)];
        let e = decide(&after, Some(Ok(c("x", "a"))), false, None);
        assert!(e.container.is_none());
        assert_eq!(e.source.to_string(), "disabled by T-a");
        let e = decide(&after, None, false, Some(c("g", "b")));
        assert!(
            e.container.is_none(),
            "global settings are disabled as well"
        );
        let e = decide(&before, Some(Err("gone".into())), false, Some(c("g", "b")));
        assert!(
            e.container.is_none(),
            "an assignment that vanished does not fall back"
        );
        let e = decide(&before, Some(Ok(c("y", "zz"))), false, None);
        assert!(
            matches!(e.source, Source::NotAllowed(_)),
            "a container from another tree is not allowed"
        );
    }
}
