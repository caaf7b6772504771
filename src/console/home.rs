//! The console's home page: what the caller's scope holds and what needs attention. Every
//! number comes from a kept count or an indexed count (`models::dashboard`), so the page costs
//! the same at a thousand profiles and at a million.

use std::collections::BTreeMap;

use chrono::{Datelike, Duration, NaiveDate};

use crate::console::{connectors, merchants};
use crate::db::DbConnection;
use crate::domain::{Actor, Scope, TxStatus};
use crate::error::ServiceError;
use crate::models::connector::Connector;
use crate::models::container::{self, Container};
use crate::models::dashboard::{self, FailingCallback};
use crate::models::tenant;
use crate::models::transaction_query::Slice;
use crate::vault::sharing::Effective;

/// Days of the transaction chart (today included).
pub const DAYS: usize = 30;
/// Cards whose expiry month ends within this many days are "expiring".
pub const EXPIRY_DAYS: i64 = 30;
/// Failing callbacks listed by name (the total is counted).
const CALLBACKS_LISTED: i64 = 5;

/// One day of the chart.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Day {
    pub date: Option<NaiveDate>,
    pub success: i64,
    pub error: i64,
    pub pending: i64,
}

impl Day {
    pub fn total(&self) -> i64 {
        self.success + self.error + self.pending
    }
}

/// Something to fix, with the page that fixes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub message: String,
    pub href: String,
    pub link: String,
}

/// One container's stored totals.
#[derive(Debug, Clone)]
pub struct ContainerTotals {
    pub container: Container,
    /// Whether the caller may open the container's page (merchant admins see totals only).
    pub linked: bool,
}

#[derive(Debug, Clone)]
pub struct Home {
    pub containers: Vec<ContainerTotals>,
    pub profiles: i64,
    pub instruments: i64,
    /// Oldest first, `DAYS` of them, the last one today.
    pub days: Vec<Day>,
    pub failing_callbacks: i64,
    pub expiring: i64,
    pub alerts: Vec<Alert>,
}

impl Home {
    pub fn today(&self) -> Day {
        self.days.last().cloned().unwrap_or_default()
    }

    pub fn month(&self) -> Day {
        self.days.iter().fold(Day::default(), |a, d| Day {
            date: None,
            success: a.success + d.success,
            error: a.error + d.error,
            pending: a.pending + d.pending,
        })
    }

    /// Successful share of the finished transactions of the 30 days, in percent (one decimal);
    /// `None` without finished transactions.
    pub fn success_rate(&self) -> Option<String> {
        let m = self.month();
        let done = m.success + m.error;
        (done > 0).then(|| format!("{:.1} %", m.success as f64 * 100.0 / done as f64))
    }
}

/// The (year, month) pairs whose last day lies within `[today, today + EXPIRY_DAYS]`: the
/// current month always (so a card expiring this month is reported), the next one near a
/// month's end.
pub fn expiry_months(today: NaiveDate) -> Vec<(i32, i32)> {
    let until = today + Duration::days(EXPIRY_DAYS);
    let mut out = vec![];
    let (mut y, mut m) = (today.year(), today.month());
    loop {
        let first_next = if m == 12 {
            NaiveDate::from_ymd_opt(y + 1, 1, 1)
        } else {
            NaiveDate::from_ymd_opt(y, m + 1, 1)
        };
        let Some(first_next) = first_next else { break };
        let last = first_next - Duration::days(1);
        if last > until {
            break;
        }
        out.push((y, m as i32));
        (y, m) = (first_next.year(), first_next.month());
    }
    out
}

/// How a card's expiry stands on `today`: "expired" when its month has ended, "expiring" when
/// that month ends within [`EXPIRY_DAYS`] (the home page's count, the same rule), else `None`.
pub fn expiry_state(
    month: Option<i32>,
    year: Option<i32>,
    today: NaiveDate,
) -> Option<&'static str> {
    let (m, y) = (month?, year?);
    let (ty, tm) = (today.year(), today.month() as i32);
    if (y, m) < (ty, tm) {
        return Some("expired");
    }
    expiry_months(today).contains(&(y, m)).then_some("expiring")
}

/// The containers whose totals the caller sees: for a merchant admin those its connectors use
/// now (as `vault::sharing` decides it); for the others those owned in their subtree and those
/// their connectors use.
fn containers_of(
    conn: &mut DbConnection,
    actor: &Actor,
    used: &[(Connector, Effective)],
) -> Result<Vec<ContainerTotals>, ServiceError> {
    let mut found: BTreeMap<String, ContainerTotals> = BTreeMap::new();
    if !actor.scope.is_merchant() {
        let tenants = tenant::list_under(conn, actor.scope.path_prefix())?;
        let ids: Vec<&str> = tenants.iter().map(|t| t.id.as_str()).collect();
        for c in container::owned_by_any(conn, &ids)? {
            found.insert(
                c.id.clone(),
                ContainerTotals {
                    container: c,
                    linked: true,
                },
            );
        }
    }
    for (_, e) in used {
        if let Some(c) = e.container.clone()
            && !found.contains_key(&c.id)
        {
            let linked = !actor.scope.is_merchant();
            found.insert(
                c.id.clone(),
                ContainerTotals {
                    container: c,
                    linked,
                },
            );
        }
    }
    let mut out: Vec<ContainerTotals> = found.into_values().collect();
    out.sort_by(|a, b| a.container.name.cmp(&b.container.name));
    Ok(out)
}

/// The transaction slices of the caller's scope (one per tenant of the subtree, or the merchant).
fn slices(conn: &mut DbConnection, actor: &Actor) -> Result<Vec<SliceKey>, ServiceError> {
    Ok(match &actor.scope {
        Scope::Merchant { merchant_id, .. } => vec![SliceKey::Merchant(merchant_id.clone())],
        _ => tenant::list_under(conn, actor.scope.path_prefix())?
            .into_iter()
            .map(|t| SliceKey::Tenant(t.path))
            .collect(),
    })
}

enum SliceKey {
    Merchant(String),
    Tenant(String),
}

impl SliceKey {
    fn slice(&self) -> Slice<'_> {
        match self {
            SliceKey::Merchant(m) => Slice::Merchant(m),
            SliceKey::Tenant(p) => Slice::TenantPath(p),
        }
    }
}

fn days(
    conn: &mut DbConnection,
    actor: &Actor,
    today: NaiveDate,
) -> Result<Vec<Day>, ServiceError> {
    let first = today - Duration::days(DAYS as i64 - 1);
    let mut out: Vec<Day> = (0..DAYS as i64)
        .map(|i| Day {
            date: Some(first + Duration::days(i)),
            ..Day::default()
        })
        .collect();
    let from = first.format("%Y-%m-%d").to_string();
    let until = (first + Duration::days(DAYS as i64))
        .format("%Y-%m-%d")
        .to_string();
    for k in slices(conn, actor)? {
        for (day, status, n) in dashboard::daily_status_counts(conn, k.slice(), &from, &until)? {
            let Some(d) = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .ok()
                .and_then(|date| out.iter_mut().find(|d| d.date == Some(date)))
            else {
                continue;
            };
            match status.as_str() {
                s if s == TxStatus::Success.as_str() => d.success += n,
                s if s == TxStatus::Error.as_str() => d.error += n,
                _ => d.pending += n,
            }
        }
    }
    Ok(out)
}

fn callback_alerts(failing: &[FailingCallback], total: i64) -> Vec<Alert> {
    let mut out: Vec<Alert> = failing
        .iter()
        .map(|f| Alert {
            message: format!(
                "The callback of transaction {} {} after {}{}.",
                f.transaction_uuid,
                if f.status == "failed" {
                    "was given up"
                } else {
                    "is failing"
                },
                crate::domain::plural(i64::from(f.attempts), "attempt", "attempts"),
                f.last_error
                    .as_deref()
                    .map(|e| format!(" ({e})"))
                    .unwrap_or_default()
            ),
            href: format!("/transactions/{}", f.transaction_uuid),
            link: "Open the transaction to retry its callback".into(),
        })
        .collect();
    let listed = failing.len() as i64;
    if total > listed {
        out.push(Alert {
            message: format!("{} more failing callbacks.", total - listed),
            href: "/transactions".into(),
            link: "Open the transactions".into(),
        });
    }
    out
}

/// The home page of `actor` on `today` (UTC).
pub fn home(
    conn: &mut DbConnection,
    actor: &Actor,
    today: NaiveDate,
) -> Result<Home, ServiceError> {
    // Each connector in scope with the container it uses now, decided once.
    let mut used = vec![];
    for (k, _) in connectors::list(conn, actor)? {
        let e = connectors::effective(conn, &k)?;
        used.push((k, e));
    }
    let containers = containers_of(conn, actor, &used)?;
    let profiles = containers.iter().map(|c| c.container.profile_count).sum();
    let instruments = containers
        .iter()
        .map(|c| c.container.instrument_count)
        .sum();
    let ids: Vec<String> = containers.iter().map(|c| c.container.id.clone()).collect();
    let expiring = dashboard::expiring(conn, &ids, &expiry_months(today))?;
    let merchant = match &actor.scope {
        Scope::Merchant { merchant_id, .. } => Some(merchant_id.as_str()),
        _ => None,
    };
    let (failing_callbacks, failing) =
        dashboard::failing_callbacks(conn, actor.scope.path_prefix(), merchant, CALLBACKS_LISTED)?;
    let mut alerts = callback_alerts(&failing, failing_callbacks);
    for (k, e) in &used {
        if let Some(s) = connectors::suspended(conn, k, e)? {
            alerts.push(Alert {
                message: format!(
                    "Connector {} is assigned the container {}, but {}: its payments store no profiles.",
                    k.name, s.container, s.reason
                ),
                href: format!("/connectors/{}", k.id),
                link: format!("Open connector {}", k.name),
            });
        }
    }
    if actor.scope.is_merchant() {
        // Inactive merchants cannot take payments: their admins should know.
        if let Some(m) = merchant
            && let Ok(me) = merchants::get(conn, actor, m)
            && !me.active
        {
            alerts.push(Alert {
                message: format!(
                    "Merchant {} is deactivated: its connectors refuse payments.",
                    me.name
                ),
                href: format!("/merchants/{}", me.id),
                link: format!("Open merchant {}", me.name),
            });
        }
    }
    Ok(Home {
        days: days(conn, actor, today)?,
        containers,
        profiles,
        instruments,
        failing_callbacks,
        expiring,
        alerts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("date")
    }

    #[test]
    fn the_current_month_always_expires_within_30_days_and_the_next_only_near_its_end() {
        assert_eq!(expiry_months(d(2026, 12, 3)), vec![(2026, 12)]);
        assert_eq!(expiry_months(d(2026, 1, 1)), vec![(2026, 1)]);
        // 30 days after 31 Jan 2026 is 2 Mar: February's last day (28th) is within.
        assert_eq!(expiry_months(d(2026, 1, 31)), vec![(2026, 1), (2026, 2)]);
        assert_eq!(expiry_months(d(2026, 12, 31)), vec![(2026, 12)]);
        assert_eq!(expiry_months(d(2027, 1, 31)), vec![(2027, 1), (2027, 2)]);
    }

    #[test]
    fn cards_are_expired_after_their_month_and_expiring_within_its_last_30_days() {
        let today = d(2026, 12, 3);
        assert_eq!(expiry_state(Some(11), Some(2026), today), Some("expired"));
        assert_eq!(expiry_state(Some(12), Some(2025), today), Some("expired"));
        assert_eq!(expiry_state(Some(12), Some(2026), today), Some("expiring"));
        assert_eq!(expiry_state(Some(1), Some(2027), today), None);
        assert_eq!(expiry_state(None, Some(2027), today), None);
    }

    #[test]
    fn the_success_rate_counts_finished_transactions_only() {
        let mut h = Home {
            containers: vec![],
            profiles: 0,
            instruments: 0,
            days: vec![Day::default(); DAYS],
            failing_callbacks: 0,
            expiring: 0,
            alerts: vec![],
        };
        assert_eq!(h.success_rate(), None);
        h.days[0].success = 3;
        h.days[29].error = 1;
        h.days[29].pending = 10;
        assert_eq!(h.success_rate().as_deref(), Some("75.0 %"));
        assert_eq!(h.today().total(), 11);
        assert_eq!(h.month().total(), 14);
    }
}
