//! `/docs/api`: the API reference in the console, rendered on the server from the same OpenAPI
//! documents that `/openapi/*.json` serves (parsed once per process), no script needed.

use std::sync::OnceLock;

use actix_session::Session;
use actix_web::HttpResponse;
use actix_web::http::StatusCode;
use askama::Template;

use crate::api::openapi::{self, reference::Reference};
use crate::web::auth::guards::CurrentUser;
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::render;

fn references() -> &'static [Reference] {
    static REFS: OnceLock<Vec<Reference>> = OnceLock::new();
    REFS.get_or_init(|| {
        openapi::ALL
            .iter()
            .filter_map(|s| openapi::reference::build(s.name, s.url(), s.json))
            .collect()
    })
}

#[derive(Template)]
#[template(path = "docs/api.html")]
struct ApiPage {
    ctx: PageCtx,
    docs: &'static [Reference],
}

pub async fn page(session: Session, user: CurrentUser) -> Result<HttpResponse, HtmlError> {
    render(
        StatusCode::OK,
        &ApiPage {
            ctx: PageCtx::new(&session, &user.0, "docs"),
            docs: references(),
        },
    )
}
