//! The payment engine's error: what went wrong, as a kind the protocol layers map to their own
//! answers (`api::ixopay::error` to an HTTP status and IXOPAY's error body, the payment pages to
//! an HTML page), an IXOPAY error code (the engine's catalogue of reasons) and a message that
//! names the field but never echoes a value. No HTTP type appears here.

use crate::error::KeysUnavailable;
use crate::error::ServiceError;
use crate::gateway::errors::ErrorCode;

/// Why a payment request was refused or failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// The request's data is invalid (a field is missing, malformed or not allowed).
    Invalid,
    /// The request body itself is malformed or too large for the use.
    Malformed,
    /// The object the request names does not exist (or is not the caller's).
    NotFound,
    /// The connector's configuration does not allow the request (1007).
    Configuration,
    /// The request contradicts the state of what it refers to (duplicate id, wrong state).
    Logical,
    /// Another request is changing the same object; retrying may succeed.
    Busy,
    /// The caller may not do this (authentication or authorization failed).
    Unauthorized,
    /// Over a rate limit (`retry_after` says when the window ends).
    TooManyRequests,
    /// A fault on Coffer's side; the cause goes to the log, never to the caller.
    Internal,
    /// The vault's keys are unavailable (the key manager did not unwrap them): retry later.
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct PayError {
    pub kind: Kind,
    pub code: ErrorCode,
    pub message: String,
    /// Seconds after which a refused request may be sent again (`TooManyRequests` only).
    pub retry_after: Option<u32>,
}

pub type PayResult<T> = Result<T, PayError>;

impl PayError {
    pub fn new(kind: Kind, code: ErrorCode, message: impl Into<String>) -> Self {
        PayError {
            kind,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
    /// 1009 Too many requests: try again after `retry_after` seconds.
    pub fn too_many(message: impl Into<String>, retry_after: u32) -> Self {
        PayError {
            retry_after: Some(retry_after),
            ..Self::new(Kind::TooManyRequests, ErrorCode::TooManyRequests, message)
        }
    }
    /// 1002 Invalid request data.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(Kind::Invalid, ErrorCode::InvalidRequestData, message)
    }
    /// 1007 Invalid configuration (e.g. customerProfileData on a connector without a container).
    pub fn configuration(message: impl Into<String>) -> Self {
        Self::new(
            Kind::Configuration,
            ErrorCode::InvalidConfiguration,
            message,
        )
    }
    /// 1006 Logical error.
    pub fn logical(message: impl Into<String>) -> Self {
        Self::new(Kind::Logical, ErrorCode::LogicalError, message)
    }
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Kind::NotFound, ErrorCode::InvalidRequestData, message)
    }
    /// The caller's doing (anything but a fault on Coffer's side).
    pub fn is_client_error(&self) -> bool {
        self.kind != Kind::Internal
    }
    /// A fault on Coffer's side, logged here with its cause; keys the key manager did not
    /// unwrap are [`Kind::Unavailable`] (3003) instead.
    pub fn internal<E: Into<anyhow::Error>>(e: E) -> Self {
        let e: anyhow::Error = e.into();
        if let Some(k) = KeysUnavailable::find(&e) {
            return PayError::from(k.clone());
        }
        tracing::error!(error = ?e, "payment request failed");
        Self::new(
            Kind::Internal,
            ErrorCode::UnexpectedSystemError,
            "Unexpected system error.",
        )
    }
}

impl std::fmt::Display for PayError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code.code())
    }
}

impl std::error::Error for PayError {}

/// Every service error has its kind; a new variant fails to compile here instead of becoming a
/// server error by default.
impl From<ServiceError> for PayError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::NotFound => PayError::not_found("Not found."),
            ServiceError::Forbidden => {
                PayError::new(Kind::Unauthorized, ErrorCode::RequestFailed, "Not allowed.")
            }
            ServiceError::Validation(errs) => PayError::invalid(
                errs.0
                    .iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ServiceError::Conflict(m) => PayError::logical(m),
            ServiceError::Throttled => {
                PayError::new(Kind::Busy, ErrorCode::TooManyRequests, "Too many requests.")
            }
            ServiceError::Stale => PayError::new(
                Kind::Unavailable,
                ErrorCode::TemporaryUnavailable,
                "The configuration changed during the request; retry.",
            ),
            ServiceError::Db(e) => PayError::internal(e),
            ServiceError::Pool(e) => PayError::internal(e),
            ServiceError::Unexpected(e) => PayError::internal(e),
        }
    }
}

impl From<KeysUnavailable> for PayError {
    fn from(e: KeysUnavailable) -> Self {
        PayError::new(Kind::Unavailable, ErrorCode::TemporaryUnavailable, e.0)
    }
}

impl From<diesel::result::Error> for PayError {
    fn from(e: diesel::result::Error) -> Self {
        PayError::internal(e)
    }
}
