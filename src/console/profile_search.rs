//! Profile search: which containers a caller may search ([`in_scope`]) and the search itself,
//! across all of them or within one container. A term matches a prefix of customerIdentification
//! (as stored), a prefix of the email (any case), the profileGuid, the Monri uuid, or, when it
//! is exactly four digits, the last four digits of a stored card. Pages are keyset cursors over
//! the profile id (newest first), never OFFSET.

use std::collections::HashMap;

use crate::console::tenants;
use crate::db::DbConnection;
use crate::domain::{Actor, Scope};
use crate::error::ServiceError;
use crate::models::connector;
use crate::models::container::{self, Container};
use crate::models::profile::{self, Cursor, Match, Profile, Within};
use crate::vault::sharing;

/// Profiles per page.
pub const PAGE: i64 = 50;
/// The longest search term, in characters.
pub const MAX_TERM: usize = 200;

/// A search term as typed: `None` when blank, else the trimmed term, or why it is refused
/// (too long, or control characters).
pub fn parse_term(raw: Option<&str>) -> Result<Option<String>, String> {
    let t = raw.unwrap_or_default().trim();
    if t.chars().count() > MAX_TERM {
        return Err(format!(
            "The search term is too long (at most {MAX_TERM} characters)."
        ));
    }
    if t.chars().any(char::is_control) {
        return Err("The search term contains control characters.".into());
    }
    Ok((!t.is_empty()).then(|| t.to_string()))
}

/// The ways `term` can match a profile.
pub fn matches_for(term: &str) -> Vec<Match> {
    let mut out = vec![
        Match::IdentificationPrefix(term.to_string()),
        Match::EmailPrefix(term.to_lowercase()),
        Match::Guid(term.to_string()),
        Match::Uuid(term.to_lowercase()),
    ];
    if term.len() == 4 && term.bytes().all(|b| b.is_ascii_digit()) {
        out.push(Match::LastFour(term.to_string()));
    }
    out
}

/// The containers `actor` may search: a platform admin every container; a tenant manager those
/// its container list offers (each tenant of its subtree's usable containers: its own, its
/// sub-tenants' and those shared down to it); a merchant admin the effective container of each
/// of its merchant's connectors. Ordered by owner and name, each once.
pub fn in_scope(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<Container>, ServiceError> {
    let mut found = match &actor.scope {
        Scope::Platform => return Ok(container::all(conn)?),
        Scope::Tenant { .. } => {
            let mut out = vec![];
            for t in tenants::list(conn, actor)? {
                out.extend(sharing::usable_containers(conn, &t.id)?);
            }
            out
        }
        Scope::Merchant { merchant_id, .. } => {
            let mut out = vec![];
            for k in connector::for_merchant(conn, merchant_id)? {
                if let Some(c) = sharing::effective(conn, &k)?.container {
                    out.push(c);
                }
            }
            out
        }
    };
    found.sort_by(|a, b| (&a.tenant_path, &a.name, &a.id).cmp(&(&b.tenant_path, &b.name, &b.id)));
    found.dedup_by(|a, b| a.id == b.id);
    Ok(found)
}

/// A profile found, with the container it is in.
pub struct Hit {
    pub profile: Profile,
    pub container_id: String,
    pub container_name: String,
}

/// One page of profiles, newest first, with the cursors of the pages beside it.
pub struct Results {
    pub hits: Vec<Hit>,
    /// `before=` cursor of the next, older page, if there is one.
    pub older: Option<String>,
    /// `after=` cursor of the previous, newer page, if there is one.
    pub newer: Option<String>,
}

/// Searches every container in the caller's scope (`term` as [`parse_term`] returns it; `None`
/// lists every profile). Returns the containers searched with the page.
pub fn across_scope(
    conn: &mut DbConnection,
    actor: &Actor,
    term: Option<&str>,
    cursor: &Cursor,
) -> Result<(Vec<Container>, Results), ServiceError> {
    let scope = in_scope(conn, actor)?;
    let ids: Vec<String> = scope.iter().map(|c| c.id.clone()).collect();
    let within = match actor.scope {
        Scope::Platform => Within::All,
        _ => Within::Containers(&ids),
    };
    let results = if ids.is_empty() {
        Results {
            hits: vec![],
            older: None,
            newer: None,
        }
    } else {
        page(conn, within, &scope, term, cursor)?
    };
    Ok((scope, results))
}

/// Searches one container the caller may see (its access already checked by the caller).
pub fn within(
    conn: &mut DbConnection,
    c: &Container,
    term: Option<&str>,
    cursor: &Cursor,
) -> Result<Results, ServiceError> {
    let ids = [c.id.clone()];
    page(
        conn,
        Within::Containers(&ids),
        std::slice::from_ref(c),
        term,
        cursor,
    )
}

fn page(
    conn: &mut DbConnection,
    within: Within<'_>,
    containers: &[Container],
    term: Option<&str>,
    cursor: &Cursor,
) -> Result<Results, ServiceError> {
    let matches = term.map(matches_for).unwrap_or_default();
    let mut rows = profile::search(conn, within, &matches, cursor, PAGE + 1)?;
    let more = rows.len() as i64 > PAGE;
    rows.truncate(PAGE as usize);
    let last = |rows: &[Profile]| more.then(|| rows.last().map(|p| p.id.clone())).flatten();
    let first_or = |rows: &[Profile], c: &str| {
        Some(rows.first().map_or_else(|| c.to_string(), |p| p.id.clone()))
    };
    let (older, newer) = match cursor {
        Cursor::Newest => (last(&rows), None),
        Cursor::Before(b) => (last(&rows), first_or(&rows, b)),
        Cursor::After(a) => {
            // Loaded oldest first: the newest of the page is the last one.
            let pair = (first_or(&rows, a), last(&rows));
            rows.reverse();
            pair
        }
    };
    let names: HashMap<&str, &str> = containers
        .iter()
        .map(|c| (c.id.as_str(), c.name.as_str()))
        .collect();
    let hits = rows
        .into_iter()
        .map(|p| Hit {
            container_name: names
                .get(p.container_id.as_str())
                .copied()
                .unwrap_or_default()
                .to_string(),
            container_id: p.container_id.clone(),
            profile: p,
        })
        .collect();
    Ok(Results { hits, older, newer })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn terms_are_trimmed_and_bad_ones_refused() {
        assert_eq!(parse_term(Some("  ab ")), Ok(Some("ab".into())));
        assert_eq!(parse_term(Some("   ")), Ok(None));
        assert_eq!(parse_term(None), Ok(None));
        assert!(parse_term(Some(&"x".repeat(201))).is_err());
        assert!(parse_term(Some(&"é".repeat(200))).is_ok());
        assert!(parse_term(Some("a\u{0}b")).is_err());
        assert!(parse_term(Some("a\u{7}b")).is_err());
    }

    #[test]
    fn only_four_digits_search_cards() {
        assert!(matches_for("1111").contains(&Match::LastFour("1111".into())));
        assert!(
            !matches_for("111")
                .iter()
                .any(|m| matches!(m, Match::LastFour(_)))
        );
        assert!(
            !matches_for("11111")
                .iter()
                .any(|m| matches!(m, Match::LastFour(_)))
        );
        assert!(matches_for("Ann@X").contains(&Match::EmailPrefix("ann@x".into())));
        assert!(matches_for("Ann@X").contains(&Match::IdentificationPrefix("Ann@X".into())));
    }
}
