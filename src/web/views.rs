//! Small view helpers shared by console pages: select options, parsing of simple form values,
//! status badges (the one place a status gets its colour) and plurals.

use crate::domain::Role;
use crate::models::merchant::Merchant;
use crate::models::tenant::Tenant;
use crate::web::error::HtmlError;

/// One `<option>` of a `<select>`, with its selected state computed in Rust.
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Tenants in tree order, indented by depth (relative to the shallowest one).
pub fn tenant_options(list: &[Tenant], selected: &str) -> Vec<SelectOption> {
    let base = list.iter().map(|t| t.depth).min().unwrap_or(0);
    list.iter()
        .map(|t| SelectOption {
            value: t.id.clone(),
            label: format!(
                "{}{}",
                "— ".repeat((t.depth - base).max(0) as usize),
                t.name
            ),
            selected: t.id == selected,
        })
        .collect()
}

/// Merchants labelled with their tenant's name.
pub fn merchant_options(list: &[(Merchant, String)], selected: &str) -> Vec<SelectOption> {
    list.iter()
        .map(|(m, tenant)| SelectOption {
            value: m.id.clone(),
            label: format!("{} ({tenant})", m.name),
            selected: m.id == selected,
        })
        .collect()
}

/// The roles `actor_role` may grant (its own and those below), highest first.
pub fn role_options(actor_role: Role, selected: &str) -> Vec<SelectOption> {
    Role::ALL
        .into_iter()
        .filter(|r| *r <= actor_role)
        .map(|r| SelectOption {
            value: r.as_str().into(),
            label: r.label().into(),
            selected: r.as_str() == selected,
        })
        .collect()
}

/// The `active` field of activate/deactivate forms: exactly "true" or "false".
pub fn parse_active(v: &str) -> Result<bool, HtmlError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(HtmlError::BadRequest(
            "The field 'active' must be \"true\" or \"false\".".into(),
        )),
    }
}

/// The tone of a status badge, one CSS class each (`badge-ok`, …) in `static/coffer.css`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Bad,
    Warn,
    Neutral,
}

impl Tone {
    fn class(self) -> &'static str {
        match self {
            Tone::Ok => "badge badge-ok",
            Tone::Bad => "badge badge-bad",
            Tone::Warn => "badge badge-warn",
            Tone::Neutral => "badge",
        }
    }
}

/// A coloured status badge: renders as `<span class="badge badge-…">label</span>` (the label
/// escaped), so templates write `{{ badge::tx(&r.tx.status) }}`.
#[derive(Debug, PartialEq, Eq)]
pub struct Badge {
    pub tone: Tone,
    pub label: String,
}

impl std::fmt::Display for Badge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use askama::filters::Escaper;
        write!(f, "<span class=\"{}\">", self.tone.class())?;
        askama::filters::Html.write_escaped_str(&mut *f, &self.label)?;
        f.write_str("</span>")
    }
}

impl askama::filters::HtmlSafe for Badge {}

/// The badges of every status the console shows.
pub mod badge {
    use super::{Badge, Tone};
    use crate::domain::TxStatus;

    fn of(tone: Tone, label: &str) -> Badge {
        Badge {
            tone,
            label: label.to_string(),
        }
    }

    /// A transaction's status as stored (`SUCCESS`, `ERROR`, `PENDING`).
    pub fn tx(status: &str) -> Badge {
        let tone = match TxStatus::parse(status) {
            Some(TxStatus::Success) => Tone::Ok,
            Some(TxStatus::Error) => Tone::Bad,
            Some(TxStatus::Pending) => Tone::Warn,
            None => Tone::Neutral,
        };
        of(tone, status)
    }

    /// A callback's delivery status (`pending`, `delivered`, `failed`).
    pub fn callback(status: &str) -> Badge {
        let tone = match status {
            "delivered" => Tone::Ok,
            "failed" => Tone::Bad,
            "pending" => Tone::Warn,
            _ => Tone::Neutral,
        };
        of(tone, status)
    }

    /// Active or inactive: connectors, merchants, users, API users.
    pub fn active(active: impl std::borrow::Borrow<bool>) -> Badge {
        if *active.borrow() {
            of(Tone::Ok, "Active")
        } else {
            of(Tone::Neutral, "Inactive")
        }
    }

    /// A feature enabled or disabled (customer profile containers of a tenant).
    pub fn enabled(on: impl std::borrow::Borrow<bool>) -> Badge {
        if *on.borrow() {
            of(Tone::Ok, "Enabled")
        } else {
            of(Tone::Bad, "Disabled")
        }
    }

    /// A yes/no setting shown as a badge.
    pub fn flag(on: impl std::borrow::Borrow<bool>) -> Badge {
        if *on.borrow() {
            of(Tone::Ok, "on")
        } else {
            of(Tone::Neutral, "off")
        }
    }
}

pub use crate::domain::plural;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn badges_colour_each_status_and_escape_their_label() {
        assert_eq!(
            badge::tx("SUCCESS").to_string(),
            "<span class=\"badge badge-ok\">SUCCESS</span>"
        );
        assert_eq!(badge::tx("ERROR").tone, Tone::Bad);
        assert_eq!(badge::tx("PENDING").tone, Tone::Warn);
        assert_eq!(badge::callback("failed").tone, Tone::Bad);
        assert_eq!(badge::callback("delivered").tone, Tone::Ok);
        assert_eq!(badge::active(false).tone, Tone::Neutral);
        assert_eq!(
            badge::tx("<b>").to_string(),
            "<span class=\"badge\">&#60;b&#62;</span>"
        );
    }

    #[test]
    fn active_accepts_only_true_and_false() {
        assert!(parse_active("true").is_ok_and(|v| v));
        assert!(parse_active("false").is_ok_and(|v| !v));
        assert!(parse_active("yes").is_err());
        assert!(parse_active("").is_err());
    }

    #[test]
    fn roles_offered_never_exceed_the_actors_role() {
        let values = |r| {
            role_options(r, "")
                .into_iter()
                .map(|o| o.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(Role::TenantManager),
            ["tenant_manager", "merchant_admin"]
        );
        assert_eq!(values(Role::PlatformAdmin).len(), 3);
        assert_eq!(values(Role::MerchantAdmin), ["merchant_admin"]);
    }
}

/// A moment as the console's lists show it, on one line: relative to now ("5 min ago"), with
/// the exact UTC time on hover (`title`), for screen readers (visually hidden text) and for
/// machines (`datetime`).
pub struct When {
    pub relative: String,
    /// `YYYY-MM-DD HH:MM:SS UTC`.
    pub utc: String,
    /// ISO 8601, `YYYY-MM-DDTHH:MM:SSZ`.
    pub iso: String,
}

/// [`When`] of `at` (UTC), seen now.
pub fn when(at: &chrono::NaiveDateTime) -> When {
    when_seen(at, &chrono::Utc::now().naive_utc())
}

/// [`When`] of `at` seen at `now`: under a minute "just now" (also a little in the future, as
/// clocks of several processes differ), then minutes, hours and days with proper plurals, and
/// from 30 days on the date itself.
pub fn when_seen(at: &chrono::NaiveDateTime, now: &chrono::NaiveDateTime) -> When {
    let secs = (*now - *at).num_seconds();
    let plural = |n: i64, one: &str, many: &str| {
        if n == 1 {
            format!("1 {one} ago")
        } else {
            format!("{n} {many} ago")
        }
    };
    let relative = match secs {
        s if s < 60 && s > -300 => "just now".to_string(),
        s if (60..3600).contains(&s) => plural(s / 60, "minute", "minutes"),
        s if (3600..86_400).contains(&s) => plural(s / 3600, "hour", "hours"),
        s if (86_400..30 * 86_400).contains(&s) => plural(s / 86_400, "day", "days"),
        _ => at.format("%Y-%m-%d").to_string(),
    };
    When {
        relative,
        utc: at.format("%Y-%m-%d %H:%M:%S UTC").to_string(),
        iso: at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
    }
}

#[cfg(test)]
mod when_tests {
    use super::when_seen;

    #[test]
    fn times_read_relative_with_plurals_and_the_exact_utc_time_kept() {
        let now = chrono::NaiveDate::from_ymd_opt(2026, 12, 3)
            .and_then(|d| d.and_hms_opt(12, 0, 0))
            .expect("time");
        let ago = |s: i64| when_seen(&(now - chrono::Duration::seconds(s)), &now).relative;
        assert_eq!(ago(0), "just now");
        assert_eq!(ago(-30), "just now", "a clock a little ahead");
        assert_eq!(ago(59), "just now");
        assert_eq!(ago(60), "1 minute ago");
        assert_eq!(ago(150), "2 minutes ago");
        assert_eq!(ago(3600), "1 hour ago");
        assert_eq!(ago(7 * 3600 + 5), "7 hours ago");
        assert_eq!(ago(86_400), "1 day ago");
        assert_eq!(ago(29 * 86_400), "29 days ago");
        assert_eq!(ago(30 * 86_400), "2026-11-03");
        assert_eq!(ago(-3600), "2026-12-03", "far in the future: the date");
        let w = when_seen(&now, &now);
        assert_eq!(w.utc, "2026-12-03 12:00:00 UTC");
        assert_eq!(w.iso, "2026-12-03T12:00:00Z");
    }
}

/// A job's time left in words ("2 h 5 min", "3 min 20 s", "40 s"; "–" when unknown).
pub fn time_left(seconds: Option<i64>) -> String {
    match seconds {
        Some(s) if s >= 3600 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        Some(s) if s >= 60 => format!("{} min {} s", s / 60, s % 60),
        Some(s) => format!("{s} s"),
        None => "–".into(),
    }
}
