//! `/vault`: the vault's data keys and the re-encryption job, for platform admins
//! (`console::keys`).

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::keys::{self, Overview};
use crate::error::ServiceError;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::ctx::PageCtx;
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

#[derive(Template)]
#[template(path = "vault/index.html")]
struct VaultPage {
    ctx: PageCtx,
    o: Overview,
}

impl VaultPage {
    fn eta(&self) -> String {
        crate::web::views::time_left(self.o.job.as_ref().and_then(|p| p.eta_seconds))
    }
    fn rate(&self) -> String {
        self.o
            .job
            .as_ref()
            .map_or_else(|| "–".into(), |p| format!("{:.0} records/s", p.rate))
    }
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let st = state.clone();
    let o = state
        .db
        .run(move |c| keys::overview(c, &st.keyring, &actor))
        .await?;
    render(
        StatusCode::OK,
        &VaultPage {
            ctx: PageCtx::new(&session, &user.0, "tenants"),
            o,
        },
    )
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    owner: String,
}

pub async fn rotate(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<RotateForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let st = state.clone();
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| keys::rotate(c, &st.keyring, &actor, &f.owner))
        .await
    {
        Ok(name) => {
            typed.flash(
                "success",
                format!("New data key for {name}; its records are being re-encrypted."),
            );
            Ok(see_other("/vault"))
        }
        Err(ServiceError::Validation(e)) => {
            typed.flash(
                "error",
                e.get("owner").unwrap_or("Choose an owner.").to_string(),
            );
            Ok(see_other("/vault"))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn reencrypt(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    state
        .db
        .run(move |c| keys::start_reencryption(c, &actor))
        .await?;
    TypedSession(&session).flash("success", "Re-encryption started.");
    Ok(see_other("/vault"))
}
