//! Public pages of a payment: the hosted payment page (`/pay/{token}`) and the simulated 3-D
//! Secure issuer (`/3ds/{token}`). No console login; the secret token in the URL names the
//! payment session, an unknown token is 404.
//!
//! CSRF: every form carries the browser's payment-page secret, kept in its own cookie
//! ([`CHECKOUT_COOKIE`]: random, HttpOnly, SameSite=Strict, set on the first GET), and
//! [`CheckoutForm`] compares the two in constant time before anything is parsed (double
//! submit): another site can neither read the cookie nor make the browser send it with a forged
//! post, so knowing the page URL is not enough to pay, cancel or approve from another browser's
//! session. It is deliberately not the console's session cookie: a customer arriving from a shop
//! (a cross-site navigation, on which the Strict session cookie is not sent) would otherwise get
//! a fresh console session that logs a console user out in that browser.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::payments::checkout::{self, ChallengePage, PayForm, PayPage, Step};
use crate::payments::means::PageSettings;
use crate::state::AppState;
use crate::web::auth::csrf::{CHECKOUT_COOKIE, CheckoutCsrf, CheckoutForm};
use crate::web::error::HtmlError;
use crate::web::see_other;

#[derive(Template)]
#[template(path = "checkout/pay.html")]
struct PayView<'a> {
    page: &'a PayPage,
    token: &'a str,
    csrf: String,
    any_error: bool,
    e_instrument: &'a str,
    e_holder: &'a str,
    e_number: &'a str,
    e_month: &'a str,
    e_year: &'a str,
    e_cvv: &'a str,
}

#[derive(Template)]
#[template(path = "checkout/challenge.html")]
struct ChallengeView<'a> {
    page: &'a ChallengePage,
    token: &'a str,
    csrf: String,
}

#[derive(Template)]
#[template(path = "checkout/message.html")]
struct MessageView<'a> {
    title: &'a str,
    message: &'a str,
    link: Option<&'a str>,
}

/// The CSP of a page whose forms end in a 303 to the merchant: the console's policy, with the
/// merchant's URL origins added to form-action (browsers check a form's redirects against it).
fn csp(origins: &[String]) -> String {
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'{}{}",
        if origins.is_empty() { "" } else { " " },
        origins.join(" ")
    )
}

fn html(status: StatusCode, body: String, origins: &[String]) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Content-Security-Policy", csp(origins)))
        .insert_header(("Cache-Control", "no-store"))
        .body(body)
}

fn respond(
    step: Step,
    token: &str,
    req: &HttpRequest,
    state: &AppState,
) -> Result<HttpResponse, HtmlError> {
    let secret = CheckoutCsrf::of(req);
    let csrf = || secret.token.clone();
    let mut response = match step {
        Step::Redirect(url) => see_other(&url),
        Step::Pay(page) => {
            let e = |f: &str| page.errors.get(f).unwrap_or("");
            let view = PayView {
                page: &page,
                token,
                csrf: csrf(),
                any_error: !page.errors.is_empty(),
                e_instrument: e("instrument"),
                e_holder: e("card_holder"),
                e_number: e("card_number"),
                e_month: e("exp_month"),
                e_year: e("exp_year"),
                e_cvv: e("cvv"),
            };
            let status = if page.errors.is_empty() {
                StatusCode::OK
            } else {
                StatusCode::UNPROCESSABLE_ENTITY
            };
            html(status, view.render()?, &page.origins)
        }
        Step::Challenge(page) => {
            let view = ChallengeView {
                page: &page,
                token,
                csrf: csrf(),
            };
            html(StatusCode::OK, view.render()?, &page.origins)
        }
        Step::Message {
            status,
            title,
            message,
            link,
        } => {
            let view = MessageView {
                title,
                message,
                link: link.as_deref(),
            };
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            html(status, view.render()?, &[])
        }
    };
    if let Some(c) = secret.cookie(state.settings.cookie_secure) {
        response.add_cookie(&c).map_err(|e| {
            HtmlError::Service(crate::error::ServiceError::Unexpected(anyhow::anyhow!(
                "{CHECKOUT_COOKIE} cookie: {e}"
            )))
        })?;
    }
    Ok(response)
}

fn pages(state: &AppState) -> PageSettings {
    PageSettings::from_settings(&state.settings)
}

/// The payer of a page, for the access audit of the saved cards it opens.
fn payer(state: &AppState, req: &HttpRequest) -> crate::audit::access::Reader {
    crate::audit::access::Reader::payer(
        &state.access,
        crate::api::route_of(req),
        crate::web::client::origin(req, state),
    )
}

pub async fn page(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let t = token.clone();
    let step = state
        .db
        .run(move |conn| checkout::show_page(conn, &t))
        .await?;
    respond(step, &token, &req, &state)
}

pub async fn pay(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    CheckoutForm(form): CheckoutForm<PayForm>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let (t, keyring, pages) = (token.clone(), state.keyring.clone(), pages(&state));
    let reader = payer(&state, &req);
    let step = state
        .db
        .run(move |conn| checkout::submit_page(conn, &keyring, &pages, &reader, &t, &form))
        .await?;
    respond(step, &token, &req, &state)
}

#[derive(Deserialize)]
pub struct NoFields {}

pub async fn cancel(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    _form: CheckoutForm<NoFields>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let t = token.clone();
    let step = state
        .db
        .run(move |conn| checkout::cancel_page(conn, &t))
        .await?;
    respond(step, &token, &req, &state)
}

pub async fn challenge(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let token = token.into_inner();
    let (t, keyring, pages) = (token.clone(), state.keyring.clone(), pages(&state));
    let reader = payer(&state, &req);
    let step = state
        .db
        .run(move |conn| checkout::show_challenge(conn, &keyring, &pages, &reader, &t))
        .await?;
    respond(step, &token, &req, &state)
}

#[derive(Deserialize)]
pub struct ChallengeForm {
    action: Option<String>,
}

pub async fn decide(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    CheckoutForm(form): CheckoutForm<ChallengeForm>,
) -> Result<HttpResponse, HtmlError> {
    let approve = match form.action.as_deref() {
        Some("approve") => true,
        Some("deny") => false,
        _ => {
            return Err(HtmlError::BadRequest("Choose Approve or Deny.".into()));
        }
    };
    let token = token.into_inner();
    let (t, keyring, pages) = (token.clone(), state.keyring.clone(), pages(&state));
    let reader = payer(&state, &req);
    let step = state
        .db
        .run(move |conn| checkout::submit_challenge(conn, &keyring, &pages, &reader, &t, approve))
        .await?;
    respond(step, &token, &req, &state)
}
