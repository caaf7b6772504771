use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::auth::LoginOutcome;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    username: String,
    error: String,
}

pub async fn home(user: CurrentUser) -> HttpResponse {
    if user.0.scope.is_merchant() {
        see_other("/merchants")
    } else {
        see_other("/tenants")
    }
}

pub async fn form(session: Session) -> Result<HttpResponse, HtmlError> {
    let csrf = TypedSession(&session).csrf_token();
    render(
        StatusCode::OK,
        &LoginPage {
            csrf,
            username: String::new(),
            error: String::new(),
        },
    )
}

#[derive(Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

pub async fn submit(
    req: HttpRequest,
    session: Session,
    state: web::Data<AppState>,
    CsrfForm(f): CsrfForm<LoginForm>,
) -> Result<HttpResponse, HtmlError> {
    let source = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let (username, password) = (f.username.clone(), f.password);
    let outcome = if username.len() > 256 || password.len() > 1024 {
        LoginOutcome::Invalid
    } else {
        state
            .db
            .run(move |c| crate::console::auth::login(c, &username, &password, &source))
            .await?
    };
    let typed = TypedSession(&session);
    let (status, error) = match outcome {
        LoginOutcome::Ok(u) => {
            typed.login(&u.id, u.session_epoch);
            return Ok(see_other("/"));
        }
        LoginOutcome::Invalid => (
            StatusCode::UNPROCESSABLE_ENTITY,
            "Unknown username or wrong password.",
        ),
        LoginOutcome::Locked => (
            StatusCode::TOO_MANY_REQUESTS,
            "Too many failed attempts. Sign-in is locked for a few minutes; try again later.",
        ),
    };
    let csrf = typed.csrf_token();
    render(
        status,
        &LoginPage {
            csrf,
            username: f.username,
            error: error.into(),
        },
    )
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn logout(
    session: Session,
    state: web::Data<AppState>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let typed = TypedSession(&session);
    if let Some((uid, _)) = typed.user(i64::MAX / 120) {
        state
            .db
            .run(move |c| crate::console::auth::logout(c, &uid))
            .await?;
    }
    typed.logout();
    Ok(see_other("/login"))
}
