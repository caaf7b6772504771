use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde_json::Value;

use crate::audit;
use crate::models::audit::AuditEntry;
use crate::state::AppState;
use crate::web::auth::guards::CurrentUser;
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::render;

/// One changed field of an audit entry.
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

pub struct EntryView {
    pub at: String,
    pub actor: String,
    pub action: String,
    pub summary: String,
    pub changes: Vec<FieldChange>,
    pub source_addr: String,
    pub user_agent: String,
}

fn show_value(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Parses the stored `{"field": [old, new], …}` object; anything else is shown as it is.
fn changes_of(raw: &str) -> Vec<FieldChange> {
    match serde_json::from_str::<Value>(raw) {
        Ok(Value::Object(map)) => map
            .into_iter()
            .map(|(field, v)| match v {
                Value::Array(pair) => FieldChange {
                    field,
                    old: show_value(pair.first()),
                    new: show_value(pair.get(1)),
                },
                other => FieldChange {
                    field,
                    old: String::new(),
                    new: show_value(Some(&other)),
                },
            })
            .collect(),
        _ if raw.trim().is_empty() => vec![],
        _ => vec![FieldChange {
            field: "changes".into(),
            old: String::new(),
            new: raw.into(),
        }],
    }
}

impl EntryView {
    /// How an access entry read its profile, in words.
    pub fn access_kind(&self) -> &'static str {
        match self.action.as_str() {
            "profile.access.view" => "Console page",
            "profile.access.get" => "Customer Profiles API",
            "profile.access.monri" => "Monri Customers API",
            "profile.access.charge" => "Charge of a stored instrument",
            _ => "Other",
        }
    }
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        EntryView {
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            changes: changes_of(&e.changes),
            actor: e.actor_name,
            action: e.action,
            summary: e.summary,
            source_addr: e.source_addr.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
        }
    }
}

/// Longest `actor` filter (entries' actor names are shorter).
const ACTOR_MAX: usize = 200;

/// The page's query: `before` (a cursor: an entry id of 32 hex digits), `profile` (an object
/// id: letters, digits, `-_.:`, at most 64) and `actor` (an actor's name as the entries show
/// it, at most 200 characters); each at most once, empty ones ignored. Anything else is a 400.
fn parse_query(query: &str) -> Result<audit::Query, HtmlError> {
    let bad = |m: &str| HtmlError::BadRequest(m.to_string());
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| bad("The query string could not be read."))?;
    let mut q = audit::Query::default();
    for (k, v) in pairs {
        let slot = match k.as_str() {
            "before" => &mut q.before,
            "profile" => &mut q.object_id,
            "actor" => &mut q.actor,
            _ => continue,
        };
        if slot.is_some() {
            return Err(bad(&format!(
                "The parameter '{k}' was given more than once."
            )));
        }
        match k.as_str() {
            "before" => {
                if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(bad(
                        "The parameter 'before' must be an entry id of 32 hexadecimal digits.",
                    ));
                }
                *slot = Some(v.to_ascii_lowercase());
            }
            "profile" => {
                let v = v.trim();
                if v.len() > 64
                    || !v
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
                {
                    return Err(bad(
                        "The parameter 'profile' must be a profile id (letters, digits, '-', '_', '.', ':'; at most 64).",
                    ));
                }
                *slot = Some(v.to_string()).filter(|v| !v.is_empty());
            }
            _ => {
                let v = v.trim();
                if v.chars().count() > ACTOR_MAX || v.chars().any(char::is_control) {
                    return Err(bad(
                        "The parameter 'actor' must be an actor's name of at most 200 characters.",
                    ));
                }
                *slot = Some(v.to_string()).filter(|v| !v.is_empty());
            }
        }
    }
    Ok(q)
}

/// The query string that keeps the page's filters (for the pager links), with `&` before each.
fn filter_query(q: &audit::Query) -> String {
    let mut pairs: Vec<(&str, &str)> = vec![];
    if let Some(p) = &q.object_id {
        pairs.push(("profile", p));
    }
    if let Some(a) = &q.actor {
        pairs.push(("actor", a));
    }
    if pairs.is_empty() {
        String::new()
    } else {
        format!(
            "&{}",
            serde_urlencoded::to_string(pairs).unwrap_or_default()
        )
    }
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct IndexPage {
    ctx: PageCtx,
    entries: Vec<EntryView>,
    next: Option<String>,
    older_page: bool,
    profile: String,
    actor: String,
    /// `&profile=…&actor=…` for the pager links (URL-encoded; the template escapes it again).
    filters: String,
    /// The first page with the same filters.
    newest_href: String,
}

pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let q = parse_query(req.query_string())?;
    let older_page = q.before.is_some();
    let (profile, actor_filter, filters) = (
        q.object_id.clone().unwrap_or_default(),
        q.actor.clone().unwrap_or_default(),
        filter_query(&q),
    );
    let actor = user.0.clone();
    // What this process has answered is on the page: its queued profile reads first.
    let access = state.access.clone();
    let _ = web::block(move || access.flush(std::time::Duration::from_secs(5))).await;
    let (rows, next) = state
        .db
        .run(move |c| audit::page_where(c, &actor, &q))
        .await?;
    render(
        StatusCode::OK,
        &IndexPage {
            ctx: PageCtx::new(&session, &user.0, "audit"),
            entries: rows.into_iter().map(EntryView::from).collect(),
            next,
            older_page,
            profile,
            actor: actor_filter,
            newest_href: match filters.strip_prefix('&') {
                Some(f) => format!("/audit?{f}"),
                None => "/audit".into(),
            },
            filters,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_must_be_absent_or_32_hex_digits() {
        let parse_before = |q: &str| parse_query(q).map(|q| q.before);
        assert!(parse_before("").is_ok_and(|b| b.is_none()));
        assert!(parse_before("other=1").is_ok_and(|b| b.is_none()));
        let id = "0190aBcDeF0123456789abcdef012345";
        assert!(
            parse_before(&format!("before={id}"))
                .is_ok_and(|b| b.as_deref() == Some("0190abcdef0123456789abcdef012345"))
        );
        for bad in [
            "before=",
            "before=garbage",
            "before=0190abcdef0123456789abcdef01234",
            "before=0190abcdef0123456789abcdef01234g",
            "before=%27%20OR%201%3D1",
            "before=0190abcdef0123456789abcdef012345&before=0190abcdef0123456789abcdef012345",
        ] {
            assert!(parse_before(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn profile_and_actor_filters_are_bounded() {
        let q = parse_query("profile=abc-1&actor=API+user+shop-api").unwrap_or_default();
        assert_eq!(q.object_id.as_deref(), Some("abc-1"));
        assert_eq!(q.actor.as_deref(), Some("API user shop-api"));
        assert!(parse_query("profile=&actor=").is_ok_and(|q| q.object_id.is_none()));
        for bad in [
            "profile=a%27b",
            "profile=a&profile=b",
            "actor=%00",
            &format!("profile={}", "a".repeat(65)),
            &format!("actor={}", "a".repeat(201)),
        ] {
            assert!(parse_query(bad).is_err(), "{bad}");
        }
        assert_eq!(
            filter_query(&parse_query("profile=p1&actor=a+b").unwrap_or_default()),
            "&profile=p1&actor=a+b"
        );
    }

    #[test]
    fn changes_are_shown_as_old_and_new_values() {
        let c = changes_of(r#"{"name":["Old","New"],"active":[null,"true"]}"#);
        let shown: Vec<String> = c
            .iter()
            .map(|f| format!("{}: {} → {}", f.field, f.old, f.new))
            .collect();
        assert_eq!(shown, ["active: (none) → true", "name: Old → New"]);
        assert!(changes_of("{}").is_empty());
        assert_eq!(changes_of("not json")[0].new, "not json");
    }
}
