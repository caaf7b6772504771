//! The audit log: every change (`record`), every sign-in event (`record_from` with the client's
//! address and user agent), every read of a customer profile (`access`), in hash chains
//! (`chain`).

pub mod access;
pub mod chain;

use diesel::Connection;
use serde_json::{Map, Value};

use crate::db::DbConnection;
use crate::domain::{Actor, Scope};
use crate::error::ServiceError;
use crate::models::audit::{self, AuditEntry};
use crate::models::now;

/// Where an audited change happened: used to show the entry to the right viewers.
#[derive(Debug, Clone, Default)]
pub struct Place {
    pub tenant_id: Option<String>,
    pub tenant_path: Option<String>,
    pub merchant_id: Option<String>,
}

impl Place {
    pub fn tenant(id: &str, path: &str) -> Place {
        Place {
            tenant_id: Some(id.into()),
            tenant_path: Some(path.into()),
            merchant_id: None,
        }
    }
    /// Where a console user belongs: their tenant or merchant (nowhere for platform admins).
    pub fn of_user(u: &crate::models::user::User) -> Place {
        Place {
            tenant_id: u.tenant_id.clone(),
            tenant_path: u.scope_path.clone(),
            merchant_id: u.merchant_id.clone(),
        }
    }
    pub fn merchant(tenant_id: &str, tenant_path: &str, merchant_id: &str) -> Place {
        Place {
            merchant_id: Some(merchant_id.into()),
            ..Place::tenant(tenant_id, tenant_path)
        }
    }
}

/// A change to record: `changes` lists (field, old, new); secrets must never be passed here.
pub struct Change<'a> {
    pub action: &'a str,
    pub object_type: &'a str,
    pub object_id: &'a str,
    pub summary: String,
    pub changes: Vec<(&'a str, Option<String>, Option<String>)>,
}

/// Where a request came from, as `web::client` decided it (plain strings: this layer knows no
/// HTTP). The user agent is already bounded there.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub addr: Option<String>,
    pub user_agent: Option<String>,
}

/// The current time to the microsecond, which both databases store exactly (the chain's hash
/// covers it).
pub fn now_micros() -> chrono::NaiveDateTime {
    use chrono::SubsecRound;
    now().trunc_subsecs(6)
}

pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    place: &Place,
    c: Change<'_>,
) -> Result<(), ServiceError> {
    record_from(conn, actor, place, c, &Origin::default())
}

/// As `record`, with where the request came from (sign-in events).
pub fn record_from(
    conn: &mut DbConnection,
    actor: &Actor,
    place: &Place,
    c: Change<'_>,
    origin: &Origin,
) -> Result<(), ServiceError> {
    let mut map = Map::new();
    for (field, old, new) in c.changes {
        if old != new {
            map.insert(
                field.to_string(),
                Value::Array(vec![
                    old.map_or(Value::Null, Value::String),
                    new.map_or(Value::Null, Value::String),
                ]),
            );
        }
    }
    let entry = AuditEntry {
        id: crate::ids::new_id(),
        at: now_micros(),
        actor_id: if actor.user_id.is_empty() {
            None
        } else {
            Some(actor.user_id.clone())
        },
        actor_name: actor.username.clone(),
        tenant_id: place.tenant_id.clone(),
        tenant_path: place.tenant_path.clone(),
        merchant_id: place.merchant_id.clone(),
        action: c.action.into(),
        object_type: c.object_type.into(),
        object_id: c.object_id.into(),
        summary: c.summary,
        changes: Value::Object(map).to_string(),
        source_addr: origin.addr.clone(),
        user_agent: origin.user_agent.clone(),
        chain: None,
        seq: None,
        prev_hash: None,
        hash: None,
    };
    chain::append(conn, vec![entry])?;
    Ok(())
}

/// Records that a machine caller (`who`, e.g. "API user shop-api (connector demo-shop-cards)")
/// of `connector` deleted the profile `profile_guid` of `container`.
pub fn api_profile_deleted(
    conn: &mut DbConnection,
    connector: &crate::models::connector::Connector,
    container: &crate::models::container::Container,
    who: String,
    profile_guid: &str,
    summary: String,
) -> Result<(), ServiceError> {
    let actor = Actor::api_client(
        who,
        &connector.merchant_id,
        &connector.tenant_id,
        &connector.tenant_path,
    );
    record(
        conn,
        &actor,
        &Place::tenant(&container.tenant_id, &container.tenant_path),
        Change {
            action: "profile.delete",
            object_type: "profile",
            object_id: profile_guid,
            summary,
            changes: vec![],
        },
    )
}

pub const PAGE_SIZE: i64 = 50;

/// What the audit page can be narrowed to, besides the viewer's scope.
#[derive(Debug, Clone, Default)]
pub struct Query {
    /// One object (a profile's guid, a user's id, …).
    pub object_id: Option<String>,
    /// One actor, by the name the entries show.
    pub actor: Option<String>,
    /// Entries whose action starts with this (`profile.access` for a profile's access history).
    pub action_prefix: Option<String>,
    /// One kind of object (`profile`, `connector`, `user`, …).
    pub object_type: Option<String>,
    /// Entries at or after `from` and before `until` (UTC).
    pub from: Option<chrono::NaiveDateTime>,
    pub until: Option<chrono::NaiveDateTime>,
    /// The cursor: entries older than this id.
    pub before: Option<String>,
}

/// One page of the audit log as the actor may see it, newest first; the second value is the
/// cursor for the next page.
pub fn page(
    conn: &mut DbConnection,
    actor: &Actor,
    before: Option<&str>,
) -> Result<(Vec<AuditEntry>, Option<String>), ServiceError> {
    let q = Query {
        before: before.map(str::to_string),
        ..Query::default()
    };
    page_where(conn, actor, &q)
}

/// As `page`, narrowed by `q`.
pub fn page_where(
    conn: &mut DbConnection,
    actor: &Actor,
    q: &Query,
) -> Result<(Vec<AuditEntry>, Option<String>), ServiceError> {
    page_sized(conn, actor, q, PAGE_SIZE)
}

/// As [`page_where`], `size` entries a page (the CSV export reads pages of its own size).
pub fn page_sized(
    conn: &mut DbConnection,
    actor: &Actor,
    q: &Query,
    size: i64,
) -> Result<(Vec<AuditEntry>, Option<String>), ServiceError> {
    let (prefix, merchant) = match &actor.scope {
        Scope::Platform => (None, None),
        Scope::Tenant { path, .. } => (Some(path.as_str()), None),
        Scope::Merchant { merchant_id, .. } => (None, Some(merchant_id.as_str())),
    };
    let filter = audit::Filter {
        prefix,
        merchant,
        object_id: q.object_id.as_deref(),
        actor_name: q.actor.as_deref(),
        action_prefix: q.action_prefix.as_deref(),
        object_type: q.object_type.as_deref(),
        from: q.from,
        until: q.until,
        before: q.before.as_deref(),
    };
    let mut rows = conn.transaction(|c| audit::page(c, &filter, size + 1))?;
    let next = if rows.len() as i64 > size {
        rows.truncate(size as usize);
        rows.last().map(|r| r.id.clone())
    } else {
        None
    };
    Ok((rows, next))
}
