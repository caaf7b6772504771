//! The account's two-factor page (`/account/two-factor`): state, setup, switching on with a
//! code (recovery codes shown once), switching off; and a manager's reset of another user's.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::two_factor::{self, Enrollment};
use crate::error::ServiceError;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::{CurrentUser, EnrollingUser};
use crate::web::auth::session::TypedSession;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

#[derive(Template)]
#[template(path = "account/two_factor.html")]
struct Page {
    ctx: PageCtx,
    form: FormState,
    enabled: bool,
    required: bool,
    /// Two-factor must be set up before anything else can be reached.
    enrolling: bool,
    pending: Option<Enrollment>,
    recovery_left: i64,
    /// The new recovery codes, right after switching on (this response only).
    recovery_codes: Vec<String>,
}

async fn page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &EnrollingUser,
    form: FormState,
    recovery_codes: Vec<String>,
    status: StatusCode,
) -> Result<HttpResponse, HtmlError> {
    let (actor, keyring, policy) = (
        user.actor.clone(),
        state.keyring.clone(),
        state.settings.login_policy(),
    );
    let st = state
        .db
        .run(move |c| two_factor::state(c, &keyring, &actor, &policy))
        .await?;
    let mut resp = render(
        status,
        &Page {
            ctx: PageCtx::new(session, &user.actor, "account"),
            form,
            enabled: st.enabled,
            required: st.required,
            enrolling: user.enrolling && !st.enabled,
            pending: st.pending,
            recovery_left: st.recovery_codes_left,
            recovery_codes,
        },
    )?;
    // The page can hold the secret or the recovery codes.
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: EnrollingUser,
) -> Result<HttpResponse, HtmlError> {
    page(
        &state,
        &session,
        &user,
        FormState::default(),
        vec![],
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct Empty {}

/// "Set up two-factor authentication": a new secret, shown with its QR code.
pub async fn setup(
    state: web::Data<AppState>,
    session: Session,
    user: EnrollingUser,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let (actor, keyring) = (user.actor.clone(), state.keyring.clone());
    match state
        .db
        .run(move |c| two_factor::start(c, &keyring, &actor))
        .await
    {
        Ok(_) => {}
        Err(ServiceError::Conflict(msg)) => {
            TypedSession(&session).flash("error", msg);
            return Ok(see_other("/account/two-factor"));
        }
        Err(e) => return Err(e.into()),
    }
    page(
        &state,
        &session,
        &user,
        FormState::default(),
        vec![],
        StatusCode::OK,
    )
    .await
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

/// Switches two-factor on with a current code; the recovery codes are shown on this response.
/// A session that had to set it up becomes a full login (renewed).
pub async fn enable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: EnrollingUser,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> Result<HttpResponse, HtmlError> {
    let (actor, keyring) = (user.actor.clone(), state.keyring.clone());
    let origin = crate::web::client::origin(&req, &state);
    match state
        .db
        .run(move |c| two_factor::enable(c, &keyring, &actor, &f.code, &origin))
        .await
    {
        Ok(codes) => {
            let epoch = state
                .db
                .run({
                    let uid = user.actor.user_id.clone();
                    move |c| {
                        crate::models::user::find(c, &uid)?
                            .map(|u| u.session_epoch)
                            .ok_or(ServiceError::NotFound)
                    }
                })
                .await?;
            let typed = TypedSession(&session);
            typed.relogin(&user.actor.user_id, epoch, state.clock.now());
            let user = EnrollingUser {
                actor: user.actor,
                enrolling: false,
            };
            page(
                &state,
                &session,
                &user,
                FormState::default(),
                codes,
                StatusCode::OK,
            )
            .await
        }
        Err(ServiceError::Validation(errors)) => {
            page(
                &state,
                &session,
                &user,
                FormState { errors },
                vec![],
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ServiceError::Conflict(msg)) => {
            TypedSession(&session).flash("error", msg);
            Ok(see_other("/account/two-factor"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Switches one's own two-factor off, with a current code or an unused recovery code.
pub async fn disable(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> Result<HttpResponse, HtmlError> {
    let (actor, keyring, policy) = (
        user.0.clone(),
        state.keyring.clone(),
        state.settings.login_policy(),
    );
    let origin = crate::web::client::origin(&req, &state);
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| two_factor::disable(c, &keyring, &actor, &f.code, &origin, &policy))
        .await
    {
        Ok(()) => {
            typed.flash("success", "Two-factor authentication is off.");
            Ok(see_other("/account/two-factor"))
        }
        Err(ServiceError::Validation(errors)) => {
            let user = EnrollingUser {
                actor: user.0,
                enrolling: false,
            };
            page(
                &state,
                &session,
                &user,
                FormState { errors },
                vec![],
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other("/account/two-factor"))
        }
        Err(e) => Err(e.into()),
    }
}

/// Resets another user's two-factor (platform admins, managers of a strict ancestor tenant).
pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<crate::web::confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let uid = id.clone();
    let typed = TypedSession(&session);
    if !f.yes() {
        let a = actor.clone();
        match state
            .db
            .run(move |c| two_factor::reset_consequences(c, &a, &uid))
            .await
        {
            Ok((u, lines)) => {
                return render(
                    StatusCode::OK,
                    &crate::web::confirm::simple(
                        PageCtx::new(&session, &user.0, "users"),
                        format!("Reset the two-factor authentication of {}?", u.username),
                        vec![
                            ("/users".into(), "Users".into()),
                            (format!("/users/{}", u.id), u.username.clone()),
                        ],
                        lines,
                        format!("/users/{}/reset-two-factor", u.id),
                        "Reset two-factor authentication",
                        format!("/users/{}", u.id),
                    ),
                );
            }
            Err(ServiceError::Conflict(msg)) => {
                typed.flash("error", msg);
                return Ok(see_other(&format!("/users/{id}")));
            }
            Err(e) => return Err(e.into()),
        }
    }
    let uid = id.clone();
    let origin = crate::web::client::origin(&req, &state);
    match state
        .db
        .run(move |c| two_factor::reset(c, &actor, &uid, &origin))
        .await
    {
        Ok(u) => {
            typed.flash(
                "success",
                format!(
                    "The two-factor authentication of {} has been reset.",
                    u.username
                ),
            );
            Ok(see_other(&format!("/users/{}", u.id)))
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other(&format!("/users/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}
