//! Transactions: the filtered list and one transaction with its chain (read only).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use futures_util::StreamExt;
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

/// `base` with the list's filters, and `extra` pairs, as its query string.
fn with_filters(base: &str, raw: &RawFilters, extra: &[(&str, &str)]) -> String {
    let pairs: Vec<(&str, &str)> = [
        ("merchant", raw.merchant.as_str()),
        ("connector", &raw.connector),
        ("profile", &raw.profile),
        ("type", &raw.kind),
        ("status", &raw.status),
        ("from", &raw.from),
        ("to", &raw.to),
    ]
    .into_iter()
    .chain(extra.iter().copied())
    .map(|(k, v)| (k, v.trim()))
    .filter(|(_, v)| !v.is_empty())
    .collect();
    let query = serde_urlencoded::to_string(pairs).unwrap_or_default();
    if query.is_empty() {
        base.to_string()
    } else {
        format!("{base}?{query}")
    }
}

/// The link to the page after `cursor`, keeping the filters.
fn next_href(raw: &RawFilters, cursor: &str) -> String {
    with_filters(
        "/transactions",
        raw,
        &[("limit", raw.limit.as_str()), ("after", cursor)],
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
    /// The CSV export of every transaction matching the filters.
    export: String,
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
            export: with_filters("/transactions.csv", &raw, &[]),
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

/// `GET /transactions.csv`: the list's filters, every matching transaction newest first, as
/// CSV ([`tv::EXPORT_COLUMNS`]), read in pages of [`tv::EXPORT_PAGE`] along the list's own
/// keyset and streamed, so that any number of rows is written without holding them. Bad
/// filters are a 400 and filters naming objects outside the caller's scope a 404, both before
/// anything is sent (the first page is read before the answer starts).
pub async fn csv(
    state: web::Data<AppState>,
    user: CurrentUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, HtmlError> {
    let raw = query.into_inner().into_raw();
    let mut criteria = tv::parse(&raw).map_err(|errors| {
        HtmlError::BadRequest(
            errors
                .0
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    criteria.limit = tv::EXPORT_PAGE;
    let page = |state: web::Data<AppState>, actor: crate::domain::Actor, c: tv::Criteria| async move {
        state
            .db
            .run(move |conn| {
                let ch = tv::choices(conn, &actor)?;
                tv::list(conn, &actor, &ch, &c)
            })
            .await
    };
    let first = page(state.clone(), user.0.clone(), criteria.clone()).await?;
    let lines = |p: &ListPage| {
        let mut out = String::new();
        for r in &p.rows {
            let cells = tv::export_cells(r);
            let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
            out.push_str(&crate::web::csv::line(&cells));
        }
        out
    };
    let head = format!(
        "{}{}",
        crate::web::csv::line(&tv::EXPORT_COLUMNS),
        lines(&first)
    );
    let next = first.next.as_deref().and_then(tv::decode_cursor);
    let rest = futures_util::stream::unfold(
        (state, user.0.clone(), criteria, next),
        move |(state, actor, mut c, next)| async move {
            let position = next?;
            c.after = Some(position);
            match page(state.clone(), actor.clone(), c.clone()).await {
                Ok(p) => {
                    let next = p.next.as_deref().and_then(tv::decode_cursor);
                    Some((Ok(web::Bytes::from(lines(&p))), (state, actor, c, next)))
                }
                Err(e) => {
                    tracing::error!(error = %e, "transactions CSV page failed");
                    Some((
                        Err(actix_web::error::ErrorInternalServerError(
                            "transactions export failed",
                        )),
                        (state, actor, c, None),
                    ))
                }
            }
        },
    );
    let body =
        futures_util::stream::once(
            async move { Ok::<_, actix_web::Error>(web::Bytes::from(head)) },
        )
        .chain(rest);
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"coffer-transactions.csv\"",
        ))
        .streaming(body))
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
