//! Synchronizer-token CSRF protection: every state-changing form carries the session's secret in
//! a hidden `csrf_token` field, compared in constant time before the form is parsed.

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::auth::session::TypedSession;
use crate::error::HtmlError;

/// Largest form body accepted by the console.
pub const FORM_LIMIT: usize = 64 * 1024;

pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A urlencoded form whose CSRF token has been checked.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        let bytes = web::Bytes::from_request(&req, payload);
        Box::pin(async move {
            let body = bytes.await.map_err(|_| {
                HtmlError::BadRequest("The form is too large or unreadable.".into())
            })?;
            let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
                .map_err(|_| HtmlError::BadRequest("The form could not be read.".into()))?;
            let given = pairs
                .iter()
                .find(|(k, _)| k == "csrf_token")
                .map(|(_, v)| v.as_str())
                .unwrap_or("");
            let session = req.get_session();
            let expected = TypedSession(&session).stored_csrf().unwrap_or_default();
            if !tokens_match(&expected, given) {
                return Err(HtmlError::Csrf);
            }
            // No field of any form may hold NUL (PostgreSQL text cannot store or compare it).
            if pairs
                .iter()
                .any(|(k, v)| k.contains('\0') || v.contains('\0'))
            {
                return Err(HtmlError::BadRequest(
                    "The form contains a NUL character.".into(),
                ));
            }
            let value = serde_urlencoded::from_bytes::<T>(&body)
                .map_err(|e| HtmlError::BadRequest(format!("The form could not be read: {e}")))?;
            Ok(CsrfForm(value))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::tokens_match;

    #[test]
    fn tokens_must_match_exactly_and_not_be_empty() {
        assert!(tokens_match("abc", "abc"));
        assert!(!tokens_match("abc", "abd"));
        assert!(!tokens_match("abc", "ab"));
        assert!(!tokens_match("", ""));
    }
}
