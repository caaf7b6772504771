//! The console's and payment pages' error answer: `HtmlError` rendered as an error page inside
//! the layout (5xx bodies are opaque, the cause goes to the log).

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

use crate::error::ServiceError;

#[derive(Template)]
#[template(path = "errors/error.html")]
struct ErrorPage<'a> {
    status: u16,
    title: &'a str,
    message: &'a str,
}

/// An error answered with an HTML page (or a redirect to the login page).
#[derive(Debug, thiserror::Error)]
pub enum HtmlError {
    /// Not signed in (or the session ended): a redirect to the login page, which returns to
    /// `next` (a checked relative path) afterwards.
    #[error("login required")]
    LoginRequired { next: Option<String> },
    /// Signed in, but two-factor must be set up first: a redirect to the setup page.
    #[error("two-factor setup required")]
    TwoFactorSetupRequired,
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("CSRF token missing or invalid")]
    Csrf,
    #[error(transparent)]
    Service(#[from] ServiceError),
    #[error(transparent)]
    Render(#[from] askama::Error),
}

impl HtmlError {
    fn parts(&self) -> (StatusCode, &'static str, String) {
        match self {
            HtmlError::LoginRequired { .. } => (StatusCode::SEE_OTHER, "Login required", String::new()),
            HtmlError::TwoFactorSetupRequired => {
                (StatusCode::SEE_OTHER, "Two-factor setup required", String::new())
            }
            HtmlError::BadRequest(m) => (StatusCode::BAD_REQUEST, "Bad request", m.clone()),
            HtmlError::Csrf => (
                StatusCode::FORBIDDEN,
                "Forbidden",
                "The form has expired or did not come from this site. Go back, reload the page and try again.".into(),
            ),
            HtmlError::Service(ServiceError::NotFound) => {
                (StatusCode::NOT_FOUND, "Not found", "The page or object does not exist.".into())
            }
            HtmlError::Service(ServiceError::Forbidden) => {
                (StatusCode::FORBIDDEN, "Forbidden", "You are not allowed to do this.".into())
            }
            HtmlError::Service(ServiceError::Conflict(m)) => (StatusCode::CONFLICT, "Conflict", m.clone()),
            HtmlError::Service(ServiceError::Validation(e)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid input",
                e.0.iter().map(|(k, v)| format!("{k}: {v}")).collect::<Vec<_>>().join("; "),
            ),
            HtmlError::Service(ServiceError::Throttled) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                "Too many attempts. Wait a few minutes and try again.".into(),
            ),
            HtmlError::Service(ServiceError::Stale) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Try again",
                "The configuration changed while this page was read. Reload it.".into(),
            ),
            HtmlError::Service(ServiceError::Unexpected(e))
                if crate::error::KeysUnavailable::find(e).is_some() =>
            {
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Key manager unavailable",
                    "The vault's key manager did not unwrap the keys this needs, so card data and \
                     secrets cannot be sealed or opened right now. Nothing was changed. Try \
                     again in a moment; if it persists, check the key manager (see /readyz)."
                        .into(),
                )
            }
            HtmlError::Service(
                ServiceError::Db(_) | ServiceError::Pool(_) | ServiceError::Unexpected(_),
            )
            | HtmlError::Render(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Server error",
                "Something went wrong on our side. The error has been logged.".into(),
            ),
        }
    }
}

impl ResponseError for HtmlError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        if let HtmlError::LoginRequired { next } = self {
            return HttpResponse::SeeOther()
                .insert_header((
                    "Location",
                    crate::web::auth::return_to::login_url(next.as_deref()),
                ))
                .finish();
        }
        if let HtmlError::TwoFactorSetupRequired = self {
            return HttpResponse::SeeOther()
                .insert_header(("Location", "/account/two-factor"))
                .finish();
        }
        let (status, title, message) = self.parts();
        if status.is_server_error() {
            tracing::error!(error = ?self, "request failed");
        }
        let body = ErrorPage {
            status: status.as_u16(),
            title,
            message: &message,
        }
        .render()
        .unwrap_or_else(|_| title.to_string());
        HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .body(body)
    }
}

/// Renders an error page for statuses produced outside handlers (unknown routes).
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = ErrorPage {
        status: status.as_u16(),
        title,
        message,
    }
    .render()
    .unwrap_or_else(|_| title.to_string());
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(body)
}
