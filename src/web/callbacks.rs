//! Callbacks in the console: the attempts partial of a transaction page, and the retry button.

use actix_session::Session;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::error::ServiceError;
use crate::payments::callbacks::{self, CallbackView};
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::see_other;

/// The partial `transactions/callbacks.html` on its own (a transaction page includes the
/// template with the same three fields).
#[derive(Template)]
#[template(path = "transactions/callbacks.html")]
pub struct CallbacksPartial {
    pub ctx: PageCtx,
    pub tx_uuid: String,
    pub callbacks: Vec<CallbackView>,
}

#[derive(Deserialize)]
pub struct Empty {}

/// `POST /transactions/{uuid}/callbacks/{id}/retry`: makes a failed or pending callback due
/// now. Anyone whose scope covers the transaction's merchant may; others get 404.
pub async fn retry(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let (uuid, id) = path.into_inner();
    let actor = user.0.clone();
    let tx_uuid = uuid.clone();
    let r = state
        .db
        .run(move |c| callbacks::retry(c, &actor, &tx_uuid, &id))
        .await;
    let typed = TypedSession(&session);
    match r {
        Ok(_) => typed.flash(
            "success",
            "The callback is queued: it will be sent again within a moment.",
        ),
        Err(ServiceError::Conflict(m)) => typed.flash("error", m),
        Err(e) => return Err(e.into()),
    }
    Ok(see_other(&format!("/transactions/{uuid}")))
}

/// `GET /connectors/{id}/lifecycle-events`: the connector's lifecycle events and their
/// attempts, each with a "Redeliver" button.
#[derive(Template)]
#[template(path = "connectors/lifecycle_events.html")]
struct EventsPage {
    ctx: PageCtx,
    k: crate::models::connector::Connector,
    events: Vec<CallbackView>,
    shown: i64,
}

impl EventsPage {
    fn event_type<'a>(&self, cb: &'a CallbackView) -> &'a str {
        cb.callback.event_type.as_deref().unwrap_or("")
    }
}

pub async fn lifecycle_events(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.into_inner();
    let actor = user.0.clone();
    let (k, events) = state
        .db
        .run(move |c| crate::console::connectors::lifecycle_events(c, &actor, &id))
        .await?;
    crate::web::render(
        actix_web::http::StatusCode::OK,
        &EventsPage {
            ctx: PageCtx::new(&session, &user.0, "connectors"),
            k,
            events,
            shown: crate::console::connectors::EVENTS_SHOWN,
        },
    )
}

/// `POST /connectors/{id}/lifecycle-events/{event}/redeliver`: sends the event again.
pub async fn redeliver(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let (id, event) = path.into_inner();
    let actor = user.0.clone();
    let kid = id.clone();
    state
        .db
        .run(move |c| crate::console::connectors::redeliver_event(c, &actor, &kid, &event))
        .await?;
    TypedSession(&session).flash(
        "success",
        "The event is queued: it will be sent again within a moment.",
    );
    Ok(see_other(&format!("/connectors/{id}/lifecycle-events")))
}
