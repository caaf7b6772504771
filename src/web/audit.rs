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

impl From<AuditEntry> for EntryView {
    fn from(e: AuditEntry) -> Self {
        EntryView {
            at: e.at.format("%Y-%m-%d %H:%M:%S").to_string(),
            changes: changes_of(&e.changes),
            actor: e.actor_name,
            action: e.action,
            summary: e.summary,
        }
    }
}

/// The `before` cursor: absent, or an entry id (32 hex digits). Anything else is a 400.
fn parse_before(query: &str) -> Result<Option<String>, HtmlError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
        .map_err(|_| HtmlError::BadRequest("The query string could not be read.".into()))?;
    let mut before = None;
    for (k, v) in pairs {
        if k != "before" {
            continue;
        }
        if before.is_some() {
            return Err(HtmlError::BadRequest(
                "The parameter 'before' was given more than once.".into(),
            ));
        }
        if v.len() != 32 || !v.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(HtmlError::BadRequest(
                "The parameter 'before' must be an entry id of 32 hexadecimal digits.".into(),
            ));
        }
        before = Some(v.to_ascii_lowercase());
    }
    Ok(before)
}

#[derive(Template)]
#[template(path = "audit/index.html")]
struct IndexPage {
    ctx: PageCtx,
    entries: Vec<EntryView>,
    next: Option<String>,
    older_page: bool,
}

pub async fn index(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let before = parse_before(req.query_string())?;
    let older_page = before.is_some();
    let actor = user.0.clone();
    let (rows, next) = state
        .db
        .run(move |c| audit::page(c, &actor, before.as_deref()))
        .await?;
    render(
        StatusCode::OK,
        &IndexPage {
            ctx: PageCtx::new(&session, &user.0, "audit"),
            entries: rows.into_iter().map(EntryView::from).collect(),
            next,
            older_page,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn before_must_be_absent_or_32_hex_digits() {
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
