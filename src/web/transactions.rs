//! Transactions: the filtered list and one transaction with its chain (read only).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::transactions_view::{self as tv, Detail, ListPage, RawFilters};
use crate::state::AppState;
use crate::web::auth::guards::CurrentUser;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::render;
use crate::web::views::{SelectOption, merchant_options};

/// The list's query string. Every value is optional; a repeated key is a 400.
#[derive(Deserialize, Default)]
pub struct ListQuery {
    merchant: Option<String>,
    connector: Option<String>,
    profile: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    status: Option<String>,
    from: Option<String>,
    to: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

impl ListQuery {
    fn into_raw(self) -> RawFilters {
        let v = |o: Option<String>| o.unwrap_or_default();
        RawFilters {
            merchant: v(self.merchant),
            connector: v(self.connector),
            profile: v(self.profile),
            kind: v(self.kind),
            status: v(self.status),
            from: v(self.from),
            to: v(self.to),
            after: v(self.after),
            limit: v(self.limit),
        }
    }
}

/// The link to the page after `cursor`, keeping the filters.
fn next_href(raw: &RawFilters, cursor: &str) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("merchant", raw.merchant.as_str()),
        ("connector", &raw.connector),
        ("profile", &raw.profile),
        ("type", &raw.kind),
        ("status", &raw.status),
        ("from", &raw.from),
        ("to", &raw.to),
        ("limit", &raw.limit),
        ("after", cursor),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.trim()))
    .filter(|(_, v)| !v.is_empty())
    .collect();
    format!(
        "/transactions?{}",
        serde_urlencoded::to_string(pairs).unwrap_or_default()
    )
}

fn fixed_options(values: &[&str], selected: &str) -> Vec<SelectOption> {
    values
        .iter()
        .map(|v| SelectOption {
            value: v.to_string(),
            label: v.to_string(),
            selected: v.eq_ignore_ascii_case(selected.trim()),
        })
        .collect()
}

#[derive(Template)]
#[template(path = "transactions/index.html")]
struct IndexPage {
    ctx: PageCtx,
    form: FormState,
    raw: RawFilters,
    merchants: Vec<SelectOption>,
    connectors: Vec<SelectOption>,
    types: Vec<SelectOption>,
    statuses: Vec<SelectOption>,
    /// `None` when the filters were refused.
    page: Option<ListPage>,
    next: Option<String>,
    later_page: bool,
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HtmlError> {
    let raw = query.into_inner().into_raw();
    let criteria = tv::parse(&raw);
    let actor = user.0.clone();
    let wanted = criteria.clone();
    let (choices, page) = state
        .db
        .run(move |c| {
            let ch = tv::choices(c, &actor)?;
            let page = match &wanted {
                Ok(k) => Some(tv::list(c, &actor, &ch, k)?),
                Err(_) => None,
            };
            Ok((ch, page))
        })
        .await?;
    let (status, form) = match criteria {
        Ok(_) => (StatusCode::OK, FormState::default()),
        Err(errors) => (StatusCode::UNPROCESSABLE_ENTITY, FormState { errors }),
    };
    let connectors = choices
        .connectors
        .iter()
        .map(|(k, merchant)| SelectOption {
            value: k.id.clone(),
            label: format!("{} ({merchant})", k.name),
            selected: k.id == raw.connector.trim(),
        })
        .collect();
    let next = page
        .as_ref()
        .and_then(|p| p.next.as_deref())
        .map(|c| next_href(&raw, c));
    render(
        status,
        &IndexPage {
            ctx: PageCtx::new(&session, &user.0, "transactions"),
            merchants: merchant_options(&choices.merchants, raw.merchant.trim()),
            connectors,
            types: fixed_options(&tv::TYPES, &raw.kind),
            statuses: fixed_options(&tv::STATUSES, &raw.status),
            later_page: !raw.after.trim().is_empty(),
            form,
            page,
            next,
            raw,
        },
    )
}

#[derive(Template)]
#[template(path = "transactions/show.html")]
struct ShowPage {
    ctx: PageCtx,
    d: Detail,
    /// For the callbacks partial.
    tx_uuid: String,
    callbacks: Vec<crate::payments::callbacks::CallbackView>,
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let uuid = path.into_inner();
    let (d, callbacks) = state
        .db
        .run(move |c| {
            let d = tv::detail(c, &actor, &uuid)?;
            let callbacks = crate::payments::callbacks::for_transaction(c, &actor, &uuid)?;
            Ok::<_, crate::error::ServiceError>((d, callbacks))
        })
        .await?;
    render(
        StatusCode::OK,
        &ShowPage {
            ctx: PageCtx::new(&session, &user.0, "transactions"),
            tx_uuid: d.row.tx.uuid.clone(),
            d,
            callbacks,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_next_link_keeps_the_filters_and_encodes_them() {
        let raw = RawFilters {
            merchant: "m1".into(),
            kind: "CAPTURE".into(),
            from: "2026-11-01".into(),
            after: "old".into(),
            limit: " 3 ".into(),
            ..RawFilters::default()
        };
        assert_eq!(
            next_href(&raw, "c&d"),
            "/transactions?merchant=m1&type=CAPTURE&from=2026-11-01&limit=3&after=c%26d"
        );
    }
}
