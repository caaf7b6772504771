//! `/profiles?q=`: profile search across every container in the caller's scope (the header's
//! search box), and a merchant admin's "Customer Profiles" entry. Read-only.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::profile_search::{self, Results};
use crate::models::container::Container;
use crate::state::AppState;
use crate::web::auth::guards::CurrentUser;
use crate::web::containers::{page_cursor, search_term};
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::render;

#[derive(Deserialize)]
pub struct SearchQuery {
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "profiles/index.html")]
struct IndexPage {
    ctx: PageCtx,
    containers: Vec<Container>,
    found: Results,
    q: String,
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, HtmlError> {
    let cursor = page_cursor(&query.before, &query.after)?;
    let term = search_term(&query.q)?;
    let q = term.clone().unwrap_or_default();
    let actor = user.0.clone();
    let (containers, found) = state
        .db
        .run(move |c| profile_search::across_scope(c, &actor, term.as_deref(), &cursor))
        .await?;
    render(
        StatusCode::OK,
        &IndexPage {
            ctx: PageCtx::new(&session, &user.0, "profiles"),
            containers,
            found,
            q,
        },
    )
}
