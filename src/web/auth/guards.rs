//! Extractors that say who is calling. `CurrentUser` loads the session's user and their scope
//! once per request; services take its `Actor` and filter every query by that scope.
//! A session waiting for a two-factor code holds no user, so neither extractor accepts it; a
//! session that must set up two-factor first is accepted by `EnrollingUser` only (the setup
//! pages), and `CurrentUser` sends it to the setup.

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};

use crate::domain::Actor;
use crate::state::AppState;
use crate::web::auth::session::TypedSession;
use crate::web::error::HtmlError;

pub struct CurrentUser(pub Actor);

/// The signed-in user, also while two-factor setup is still required of the session
/// (`enrolling`).
pub struct EnrollingUser {
    pub actor: Actor,
    pub enrolling: bool,
}

async fn load(req: HttpRequest) -> Result<EnrollingUser, HtmlError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| HtmlError::BadRequest("no state".into()))?;
    let session = req.get_session();
    let typed = TypedSession(&session);
    let login_required = || HtmlError::LoginRequired {
        next: crate::web::auth::return_to::of_request(&req),
    };
    let limits = state.settings.session_limits();
    let Some((uid, epoch)) = typed.user(&limits, state.clock.now()) else {
        return Err(login_required());
    };
    let actor = state
        .db
        .run(move |c| crate::console::auth::load_actor(c, &uid, epoch))
        .await?;
    match actor {
        Some(actor) => Ok(EnrollingUser {
            actor,
            enrolling: typed.is_enrolling(),
        }),
        None => {
            typed.logout();
            Err(login_required())
        }
    }
}

impl FromRequest for CurrentUser {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let u = load(req).await?;
            if u.enrolling {
                return Err(HtmlError::TwoFactorSetupRequired);
            }
            Ok(CurrentUser(u.actor))
        })
    }
}

impl FromRequest for EnrollingUser {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(load(req.clone()))
    }
}
