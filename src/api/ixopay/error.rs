//! The gateway API's error answer: `{"success":false,"errorMessage":…,"errorCode":…}` with a 4xx.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

use crate::error::ServiceError;
use crate::gateway::errors::{ApiErrorBody, ErrorCode};
use crate::payments::error::{Kind, PayError};

#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: ErrorCode,
    pub message: String,
    /// Sent as `Retry-After` (seconds) with a 429.
    pub retry_after: Option<u32>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 1002 Invalid request data, HTTP 422 (validation).
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRequestData,
            message,
        )
    }
    /// Authentication failed: HTTP 401. The message never says which part was wrong.
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::RequestFailed,
            "Authentication failed: check the API key and the API credentials.",
        )
    }
    pub fn signature(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidSignature,
            message,
        )
    }
    /// 1007 Invalid configuration (e.g. customerProfileData on a connector without a container).
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidConfiguration,
            message,
        )
    }
    pub fn logical(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, ErrorCode::LogicalError, message)
    }
    pub fn body(&self) -> ApiErrorBody {
        ApiErrorBody::new(self.code, self.message.clone())
    }
    pub fn json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.body()).unwrap_or_default()
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.code())
    }
}

/// The HTTP status of each kind of payment error. Exhaustive: a new kind must be given its
/// status here, it never becomes a server error by default.
pub fn status_of(kind: Kind) -> StatusCode {
    match kind {
        Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
        Kind::Malformed | Kind::Configuration | Kind::Logical => StatusCode::BAD_REQUEST,
        Kind::NotFound => StatusCode::NOT_FOUND,
        Kind::Busy => StatusCode::CONFLICT,
        Kind::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
        Kind::Unauthorized => StatusCode::UNAUTHORIZED,
        Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
    }
}

impl From<PayError> for ApiError {
    fn from(e: PayError) -> Self {
        ApiError {
            retry_after: e.retry_after,
            ..ApiError::new(status_of(e.kind), e.code, e.message)
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::InvalidRequestData,
                "Not found.",
            ),
            ServiceError::Forbidden => ApiError::unauthorized(),
            // Validation, conflicts, throttling and faults read the same on every payment path.
            e @ (ServiceError::Validation(_)
            | ServiceError::Conflict(_)
            | ServiceError::Throttled
            | ServiceError::Stale
            | ServiceError::Db(_)
            | ServiceError::Pool(_)
            | ServiceError::Unexpected(_)) => ApiError::from(PayError::from(e)),
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }
    fn error_response(&self) -> HttpResponse {
        let mut b = HttpResponse::build(self.status);
        if let Some(s) = self.retry_after {
            b.insert_header(("Retry-After", s.to_string()));
        }
        b.content_type("application/json; charset=utf-8")
            .body(self.json())
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::from(ServiceError::Db(e))
    }
}
