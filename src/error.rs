//! Error types. Models return `diesel::QueryResult`; services return `ServiceError`; the HTML
//! edge (`web::error`) renders it as an error page, the APIs as their own error bodies.

use std::collections::BTreeMap;

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
    /// A short read ran on a cached configuration that proved stale before it recorded
    /// anything (`vault::config_cache::may_record`): it is done again, so no caller sees this.
    #[error("the configuration changed during the request")]
    Stale,
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

/// The vault cannot use a key it needs now: the key manager (`vault::kms`) did not unwrap it.
/// The APIs answer 503 with this message, the console shows it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct KeysUnavailable(pub String);

impl KeysUnavailable {
    /// The error behind `e`, when it is this one (wrapped in a context or not).
    pub fn find(e: &anyhow::Error) -> Option<&KeysUnavailable> {
        e.downcast_ref::<KeysUnavailable>()
    }
}

/// A key the key manager did not unwrap: rendered as 503 by the console and by each API (which
/// look for it behind `Unexpected`).
impl From<KeysUnavailable> for ServiceError {
    fn from(e: KeysUnavailable) -> Self {
        ServiceError::Unexpected(anyhow::Error::new(e))
    }
}
