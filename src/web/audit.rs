use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
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
    /// The same moment, for the list's one-line relative time (`web::views::when`).
    pub at_time: chrono::NaiveDateTime,
    pub actor: String,
    pub action: String,
    pub summary: String,
    pub changes: Vec<FieldChange>,
    pub source_addr: String,
    pub user_agent: String,
    /// The console page of the entry's object, when it has one.
    pub href: Option<String>,
    pub object: String,
}

/// The console page of an object an entry is about (a profile by its guid: the search finds it).
fn object_href(kind: &str, id: &str) -> Option<String> {
    let enc = |s: &str| serde_urlencoded::to_string([("q", s)]).unwrap_or_default();
    match kind {
        "profile" => Some(format!("/profiles?{}", enc(id))),
        "connector" => Some(format!("/connectors/{id}")),
        "container" => Some(format!("/containers/{id}")),
        "merchant" => Some(format!("/merchants/{id}")),
        "tenant" => Some(format!("/tenants/{id}")),
        "user" => Some(format!("/users/{id}")),
        _ => None,
    }
    .filter(|_| {
        !id.is_empty()
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b))
    })
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
            "profile.access.account_updater" => "Account updater (simulated)",
            _ => "Other",
        }
    }
}

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        EntryView {
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            at_time: e.at,
            changes: changes_of(&e.changes),
            actor: e.actor_name,
            action: e.action,
            summary: e.summary,
            source_addr: e.source_addr.unwrap_or_default(),
            user_agent: e.user_agent.unwrap_or_default(),
            href: object_href(&e.object_type, &e.object_id),
            object: if e.object_id.is_empty() {
                e.object_type
            } else {
                format!("{} {}", e.object_type, e.object_id)
            },
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
    parse_narrowing(&pairs, &mut q)?;
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

/// The kinds of object an entry can be about (the `kind` filter).
pub const KINDS: [(&str, &str); 8] = [
    ("profile", "Customer profile"),
    ("connector", "Connector"),
    ("container", "Container"),
    ("merchant", "Merchant"),
    ("tenant", "Tenant"),
    ("user", "User"),
    ("api_user", "API user"),
    ("callback", "Callback"),
];

/// `action` (a prefix of actions: `a-z`, `.`, `_`, at most 64), `kind` (one of [`KINDS`]),
/// `from` and `to` (UTC days `YYYY-MM-DD`, both inclusive); empty ones ignored, a repeated or
/// malformed one a 400.
fn parse_narrowing(pairs: &[(String, String)], q: &mut audit::Query) -> Result<(), HtmlError> {
    let bad = |m: String| HtmlError::BadRequest(m);
    let one = |name: &str| -> Result<Option<String>, HtmlError> {
        let mut found = pairs.iter().filter(|(k, _)| k == name);
        let first = found.next().map(|(_, v)| v.trim().to_string());
        if found.next().is_some() {
            return Err(bad(format!(
                "The parameter '{name}' was given more than once."
            )));
        }
        Ok(first.filter(|v| !v.is_empty()))
    };
    if let Some(a) = one("action")? {
        if a.len() > 64
            || !a
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_')
        {
            return Err(bad(
                "The parameter 'action' must be the start of an action (a-z, '.', '_'; at most 64)."
                    .into(),
            ));
        }
        q.action_prefix = Some(a);
    }
    if let Some(k) = one("kind")? {
        if !KINDS.iter().any(|(v, _)| *v == k) {
            return Err(bad(
                "The parameter 'kind' must be one of the listed kinds.".into()
            ));
        }
        q.object_type = Some(k);
    }
    let day = |name: &str| -> Result<Option<chrono::NaiveDate>, HtmlError> {
        match one(name)? {
            None => Ok(None),
            Some(v) => chrono::NaiveDate::parse_from_str(&v, "%Y-%m-%d")
                .ok()
                .filter(|_| v.len() == 10)
                .map(Some)
                .ok_or_else(|| bad(format!("The parameter '{name}' must be a day, YYYY-MM-DD."))),
        }
    };
    let (from, to) = (day("from")?, day("to")?);
    if let (Some(f), Some(t)) = (from, to)
        && f > t
    {
        return Err(bad("The day 'from' is after the day 'to'.".into()));
    }
    q.from = from.and_then(|d| d.and_hms_opt(0, 0, 0));
    q.until = to
        .and_then(|d| d.succ_opt())
        .and_then(|d| d.and_hms_opt(0, 0, 0));
    Ok(())
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
    if let Some(a) = &q.action_prefix {
        pairs.push(("action", a));
    }
    if let Some(k) = &q.object_type {
        pairs.push(("kind", k));
    }
    let from = q.from.map(|d| d.format("%Y-%m-%d").to_string());
    let to = q
        .until
        .and_then(|d| d.date().pred_opt())
        .map(|d| d.format("%Y-%m-%d").to_string());
    if let Some(f) = &from {
        pairs.push(("from", f));
    }
    if let Some(t) = &to {
        pairs.push(("to", t));
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
    action: String,
    kind: String,
    from: String,
    to: String,
    kinds: &'static [(&'static str, &'static str)],
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
    let action = q.action_prefix.clone().unwrap_or_default();
    let kind = q.object_type.clone().unwrap_or_default();
    let from = q
        .from
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
    let to = q
        .until
        .and_then(|d| d.date().pred_opt())
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default();
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
            action,
            kind,
            from,
            to,
            kinds: &KINDS,
            newest_href: match filters.strip_prefix('&') {
                Some(f) => format!("/audit?{f}"),
                None => "/audit".into(),
            },
            filters,
        },
    )
}

/// `GET /audit.csv`: the filtered list as CSV (the page's filters), newest first, streamed in
/// pages of 500 entries, so that any length is written without holding it in memory. A cell
/// that a spreadsheet would read as a formula (`=`, `+`, `-`, `@`) is prefixed with `'`.
pub async fn csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let q = parse_query(req.query_string())?;
    let access = state.access.clone();
    let _ = web::block(move || access.flush(std::time::Duration::from_secs(5))).await;
    const CSV_PAGE: i64 = 500;
    let header = crate::web::csv::line(&[
        "time_utc",
        "actor",
        "action",
        "object_type",
        "object_id",
        "summary",
        "changes",
        "source_address",
        "user_agent",
    ]);
    let start = (state, user.0.clone(), q, false);
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(header)) },
        )
        .chain(futures_util::stream::unfold(
            start,
            |(state, actor, q, done)| async move {
                if done {
                    return None;
                }
                let (a, query) = (actor.clone(), q.clone());
                let page = state
                    .db
                    .run(move |c| audit::page_sized(c, &a, &query, CSV_PAGE))
                    .await;
                let (rows, next) = match page {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::error!(error = %e, "audit CSV page failed");
                        return Some((
                            Err(actix_web::error::ErrorInternalServerError(
                                "audit export failed",
                            )),
                            (state, actor, q, true),
                        ));
                    }
                };
                let mut out = String::new();
                for e in rows {
                    out.push_str(&crate::web::csv::line(&[
                        &e.at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
                        &e.actor_name,
                        &e.action,
                        &e.object_type,
                        &e.object_id,
                        &e.summary,
                        &e.changes,
                        e.source_addr.as_deref().unwrap_or(""),
                        e.user_agent.as_deref().unwrap_or(""),
                    ]));
                }
                let mut q = q;
                let done = next.is_none();
                q.before = next;
                Some((Ok(web::Bytes::from(out)), (state, actor, q, done)))
            },
        ));
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"coffer-audit.csv\"",
        ))
        .streaming(body))
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
