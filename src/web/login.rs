use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::auth::LoginOutcome;
use crate::console::two_factor::CodeOutcome;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::return_to;
use crate::web::auth::session::{SecondStep, TypedSession};
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: String,
    /// Where to return after signing in (a checked relative path, or empty).
    next: String,
}

/// The login page; `?next=` (a relative path, see `web::auth::return_to`) is where the
/// sign-in returns to.
pub async fn form(req: HttpRequest, session: Session) -> Result<HttpResponse, HtmlError> {
    let csrf = TypedSession(&session).csrf_token();
    render(
        StatusCode::OK,
        &LoginPage {
            csrf,
            username: String::new(),
            error: String::new(),
            next: return_to::from_query(req.query_string()),
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// Minutes the second sign-in step may take after the password.
const SECOND_STEP_MINUTES: i64 = 5;

fn locked_message(state: &AppState) -> String {
    format!(
        "Too many failed attempts: sign-in is locked for {} minutes. Try again later.",
        state.settings.lockout_minutes
    )
}

pub async fn submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<HttpResponse, HtmlError> {
    let origin = crate::web::client::origin(&req, &state);
    let (username, password) = (f.username.clone(), f.password);
    let policy = state.settings.login_policy();
    let outcome =
        crate::console::auth::sign_in(&state.db, &state.hashes, username, password, origin, policy)
            .await?;
    let typed = TypedSession(&session);
    let now = state.clock.now();
    let next = return_to::safe(&f.next);
    let (status, error) = match outcome {
        LoginOutcome::Ok(u) => {
            typed.login(&u.id, u.session_epoch, now);
            return Ok(see_other(next.unwrap_or("/")));
        }
        LoginOutcome::CodeRequired(u) => {
            typed.begin_second_step(&u.id, u.session_epoch, SECOND_STEP_MINUTES, now, next);
            return Ok(see_other("/login/two-factor"));
        }
        LoginOutcome::MustEnroll(u) => {
            typed.login_enrolling(&u.id, u.session_epoch, now);
            return Ok(see_other("/account/two-factor"));
        }
        LoginOutcome::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown username or wrong password.".to_string(),
        ),
        LoginOutcome::Locked => (StatusCode::TOO_MANY_REQUESTS, locked_message(&state)),
        LoginOutcome::Busy => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Sign-in is busy right now. Try again in a moment.".to_string(),
        ),
    };
    let csrf = typed.csrf_token();
    let mut resp = render(
        status,
        &LoginPage {
            csrf,
            username: f.username,
            error,
            next: next.unwrap_or_default().to_string(),
        },
    )?;
    if status == StatusCode::SERVICE_UNAVAILABLE {
        resp.headers_mut().insert(
            actix_web::http::header::RETRY_AFTER,
            actix_web::http::header::HeaderValue::from_static("1"),
        );
    }
    Ok(resp)
}

#[derive(Template)]
#[template(path = "login_two_factor.html")]
struct CodePage {
    csrf: String,
    error: String,
}

/// The second sign-in step's form (after a right password of a user with two-factor on).
pub async fn code_form(
    session: Session,
    state: web::Data<AppState>,
) -> Result<HttpResponse, HtmlError> {
    let typed = TypedSession(&session);
    if typed.pending_second_step(state.clock.now()).is_none() {
        return Ok(see_other("/login"));
    }
    render(
        StatusCode::OK,
        &CodePage {
            csrf: typed.csrf_token(),
            error: String::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct CodeForm {
    #[serde(default)]
    code: String,
}

pub async fn code_submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(f): CsrfForm<CodeForm>,
) -> Result<HttpResponse, HtmlError> {
    let typed = TypedSession(&session);
    let now = state.clock.now();
    let Some(SecondStep { uid, epoch, next }) = typed.pending_second_step(now) else {
        return Ok(see_other("/login"));
    };
    let origin = crate::web::client::origin(&req, &state);
    let policy = state.settings.login_policy();
    let keyring = state.keyring.clone();
    let outcome = state
        .db
        .run(move |c| {
            crate::console::two_factor::second_step(
                c, &keyring, &uid, epoch, &f.code, &origin, &policy,
            )
        })
        .await?;
    let (status, error) = match outcome {
        CodeOutcome::Ok(u) => {
            typed.login(&u.id, u.session_epoch, now);
            return Ok(see_other(return_to::or_home(
                next.as_deref().unwrap_or("/"),
            )));
        }
        CodeOutcome::Expired => {
            typed.logout();
            return Ok(see_other("/login"));
        }
        CodeOutcome::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "The code is not correct, or it has been used already.".to_string(),
        ),
        CodeOutcome::Locked => (StatusCode::TOO_MANY_REQUESTS, locked_message(&state)),
    };
    render(
        status,
        &CodePage {
            csrf: typed.csrf_token(),
            error,
        },
    )
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let typed = TypedSession(&session);
    if let Some(uid) = typed.signed_in_user() {
        let origin = crate::web::client::origin(&req, &state);
        state
            .db
            .run(move |c| crate::console::auth::logout(c, &uid, &origin))
            .await?;
    }
    typed.logout();
    Ok(see_other("/login"))
}
