//! Extractors that say who is calling. `CurrentUser` loads the session's user and their scope
//! once per request; services take its `Actor` and filter every query by that scope.

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

impl FromRequest for CurrentUser {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<AppState>>()
                .cloned()
                .ok_or_else(|| HtmlError::BadRequest("no state".into()))?;
            let session = req.get_session();
            let typed = TypedSession(&session);
            let Some((uid, epoch)) = typed.user(state.settings.session_idle_minutes) else {
                return Err(HtmlError::LoginRequired);
            };
            let actor = state
                .db
                .run(move |c| crate::console::auth::load_actor(c, &uid, epoch))
                .await?;
            match actor {
                Some(a) => Ok(CurrentUser(a)),
                None => {
                    typed.logout();
                    Err(HtmlError::LoginRequired)
                }
            }
        })
    }
}
