//! What a configuration change would do to the sharing of customer profiles, before it is made:
//! the change runs in a write transaction that is always rolled back, and `vault::sharing`
//! (the one owner of the decision) is asked for each candidate connector's effective container
//! before and inside it. Nothing here restates a sharing rule, so a confirmation page can never
//! promise what the change will not do.

use crate::db::DbConnection;
use crate::domain::plural;
use crate::error::ServiceError;
use crate::models::connector::Connector;
use crate::models::container::Container;
use crate::vault::sharing;

/// A connector whose effective container the change moves.
#[derive(Debug, Clone)]
pub struct Moved {
    pub connector: Connector,
    pub before: Option<Container>,
    pub after: Option<Container>,
}

/// The moves of one change, and the consequences in words.
#[derive(Debug, Clone, Default)]
pub struct Impact {
    pub moved: Vec<Moved>,
}

enum Outcome<T> {
    Previewed(T, Vec<Moved>),
    Failed(ServiceError),
}

impl<T> From<diesel::result::Error> for Outcome<T> {
    fn from(e: diesel::result::Error) -> Self {
        Outcome::Failed(e.into())
    }
}

impl<T> From<ServiceError> for Outcome<T> {
    fn from(e: ServiceError) -> Self {
        Outcome::Failed(e)
    }
}

fn effective_container(
    conn: &mut DbConnection,
    k: &Connector,
) -> Result<Option<Container>, ServiceError> {
    Ok(sharing::effective(conn, k)?.container)
}

/// Runs `change` and rolls it back, answering its result and how the effective container of
/// each of `candidates` moved. A refusal of the change (a validation error, say) is answered as
/// it is, and nothing is written either way.
pub fn preview<T>(
    conn: &mut DbConnection,
    candidates: &[Connector],
    change: impl FnOnce(&mut DbConnection) -> Result<T, ServiceError>,
) -> Result<(T, Impact), ServiceError> {
    let mut before = Vec::with_capacity(candidates.len());
    for k in candidates {
        before.push((k.clone(), effective_container(conn, k)?));
    }
    let r = crate::db::write_tx(conn, |tx| -> Result<(), Outcome<T>> {
        let t = change(tx)?;
        let mut moved = vec![];
        for (k, b) in &before {
            // The connector as the change left it (its own Base Data may be the change).
            let now = crate::models::connector::find(tx, &k.id)?.unwrap_or_else(|| k.clone());
            let a = effective_container(tx, &now)?;
            if a.as_ref().map(|c| &c.id) != b.as_ref().map(|c| &c.id) {
                moved.push(Moved {
                    connector: k.clone(),
                    before: b.clone(),
                    after: a,
                });
            }
        }
        Err(Outcome::Previewed(t, moved))
    });
    match r {
        Err(Outcome::Previewed(t, moved)) => Ok((t, Impact { moved })),
        Err(Outcome::Failed(e)) => Err(e),
        Ok(()) => unreachable!("a preview always rolls back"),
    }
}

/// "Acme Outlet Cards", "Acme Outlet Cards and Acme Shop Cards", "Acme Outlet Cards and 2 other
/// connectors".
fn names(ks: &[&Connector]) -> String {
    match ks {
        [] => String::new(),
        [one] => one.name.clone(),
        [a, b] => format!("{} and {}", a.name, b.name),
        [first, rest @ ..] => format!(
            "{} and {}",
            first.name,
            plural(rest.len() as i64, "other connector", "other connectors")
        ),
    }
}

impl Impact {
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
    }

    /// The consequences, one sentence per container that connectors stop or start finding.
    pub fn sentences(&self) -> Vec<String> {
        use std::collections::BTreeMap;
        let mut lost: BTreeMap<String, (&Container, Vec<&Connector>)> = BTreeMap::new();
        let mut gained: BTreeMap<String, (&Container, Vec<&Connector>)> = BTreeMap::new();
        for m in &self.moved {
            if let Some(c) = &m.before {
                lost.entry(c.id.clone())
                    .or_insert((c, vec![]))
                    .1
                    .push(&m.connector);
            }
            if let Some(c) = &m.after {
                gained
                    .entry(c.id.clone())
                    .or_insert((c, vec![]))
                    .1
                    .push(&m.connector);
            }
        }
        let mut out = vec![];
        for (c, ks) in lost.values() {
            let many = ks.len() > 1;
            out.push(format!(
                "{} will stop finding {} of {}; {} payment tokens will be refused.",
                names(ks),
                plural(c.profile_count, "customer profile", "customer profiles"),
                c.name,
                if many { "their" } else { "its" }
            ));
        }
        for (c, ks) in gained.values() {
            out.push(format!(
                "{} will read and store customer profiles in {} ({} now).",
                names(ks),
                c.name,
                plural(c.profile_count, "customer profile", "customer profiles")
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(name: &str) -> Connector {
        Connector {
            name: name.into(),
            ..Connector::default()
        }
    }

    #[test]
    fn names_are_counted_past_two() {
        let (a, b, c) = (k("A"), k("B"), k("C"));
        assert_eq!(names(&[&a]), "A");
        assert_eq!(names(&[&a, &b]), "A and B");
        assert_eq!(names(&[&a, &b, &c]), "A and 2 other connectors");
    }
}
