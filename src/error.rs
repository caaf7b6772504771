//! Error types. Models return `diesel::QueryResult`; services return `ServiceError`; the HTML
//! edge renders `HtmlError` as an error page (5xx bodies are opaque, the cause goes to the log).

use std::collections::BTreeMap;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use askama::Template;

/// Field name -> message, shown beside the form field.
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(pub BTreeMap<String, String>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: &str, msg: impl Into<String>) {
        self.0
            .entry(field.to_string())
            .or_insert_with(|| msg.into());
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn get(&self, field: &str) -> Option<&str> {
        self.0.get(field).map(String::as_str)
    }
    /// `Ok(())` when empty, else the validation error.
    pub fn into_result(self) -> Result<(), ServiceError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(ServiceError::Validation(self))
        }
    }
    pub fn single(field: &str, msg: impl Into<String>) -> Self {
        let mut e = Self::new();
        e.add(field, msg);
        e
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("not found")]
    NotFound,
    #[error("forbidden")]
    Forbidden,
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input")]
    Validation(FieldErrors),
    #[error("too many attempts")]
    Throttled,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
    #[error(transparent)]
    Pool(#[from] r2d2::Error),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl ServiceError {
    pub fn invalid(field: &str, msg: impl Into<String>) -> Self {
        ServiceError::Validation(FieldErrors::single(field, msg))
    }
}

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
    #[error("login required")]
    LoginRequired,
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
            HtmlError::LoginRequired => (StatusCode::SEE_OTHER, "Login required", String::new()),
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
            _ => (
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
        if let HtmlError::LoginRequired = self {
            return HttpResponse::SeeOther()
                .insert_header(("Location", "/login"))
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
