//! Synchronizer-token CSRF protection: every state-changing form carries the session's secret in
//! a hidden `csrf_token` field, compared in constant time before the form is parsed.

use std::future::Future;
use std::pin::Pin;

use actix_session::SessionExt;
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::de::DeserializeOwned;
use subtle::ConstantTimeEq;

use crate::web::auth::session::TypedSession;
use crate::web::error::HtmlError;

/// Largest form body accepted by the console.
pub const FORM_LIMIT: usize = 64 * 1024;

pub fn tokens_match(expected: &str, given: &str) -> bool {
    !expected.is_empty() && expected.as_bytes().ct_eq(given.as_bytes()).into()
}

/// A urlencoded form whose CSRF token has been checked against the console session's secret.
pub struct CsrfForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let expected = TypedSession(&req.get_session())
            .stored_csrf()
            .unwrap_or_default();
        checked_form(req, payload, expected, CsrfForm)
    }
}

/// The cookie that holds the CSRF secret of the public payment pages (`/pay`, `/3ds`). It is
/// not the console's session cookie: a customer sent to a payment page from a shop (a cross-site
/// navigation, on which the Strict session cookie is not sent) must not get a fresh console
/// session that logs a console user out in that browser.
pub const CHECKOUT_COOKIE: &str = "coffer_checkout";

/// The payment pages' CSRF secret of this browser: the cookie's, or a new one to set.
pub struct CheckoutCsrf {
    pub token: String,
    /// The browser has no valid secret yet: the response must set [`CHECKOUT_COOKIE`].
    pub is_new: bool,
}

impl CheckoutCsrf {
    pub fn of(req: &HttpRequest) -> CheckoutCsrf {
        match req.cookie(CHECKOUT_COOKIE).map(|c| c.value().to_string()) {
            Some(v) if crate::ids::is_hex_of_len(&v, 64) => CheckoutCsrf {
                token: v,
                is_new: false,
            },
            _ => CheckoutCsrf {
                token: crate::ids::random_hex(32),
                is_new: true,
            },
        }
    }

    /// The cookie to set when the secret is new: HttpOnly, SameSite=Strict (the pages post to
    /// themselves), Secure when configured, scoped to the whole site (both `/pay` and `/3ds`).
    pub fn cookie(&self, secure: bool) -> Option<actix_web::cookie::Cookie<'static>> {
        self.is_new.then(|| {
            actix_web::cookie::Cookie::build(CHECKOUT_COOKIE, self.token.clone())
                .path("/")
                .http_only(true)
                .secure(secure)
                .same_site(actix_web::cookie::SameSite::Strict)
                .finish()
        })
    }
}

/// A urlencoded form of a payment page whose CSRF token matches the browser's
/// [`CHECKOUT_COOKIE`] (double submit: another site can neither read the cookie nor set it).
pub struct CheckoutForm<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for CheckoutForm<T> {
    type Error = HtmlError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, HtmlError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let expected = req
            .cookie(CHECKOUT_COOKIE)
            .map(|c| c.value().to_string())
            .filter(|v| crate::ids::is_hex_of_len(v, 64))
            .unwrap_or_default();
        checked_form(req, payload, expected, CheckoutForm)
    }
}

/// Reads the form, checks its `csrf_token` against `expected` in constant time (before anything
/// else is parsed), refuses NUL anywhere, then deserializes it.
fn checked_form<T: DeserializeOwned + 'static, F: 'static>(
    req: &HttpRequest,
    payload: &mut Payload,
    expected: String,
    wrap: fn(T) -> F,
) -> Pin<Box<dyn Future<Output = Result<F, HtmlError>>>> {
    let bytes = web::Bytes::from_request(req, payload);
    Box::pin(async move {
        let body = bytes
            .await
            .map_err(|_| HtmlError::BadRequest("The form is too large or unreadable.".into()))?;
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&body)
            .map_err(|_| HtmlError::BadRequest("The form could not be read.".into()))?;
        let given = pairs
            .iter()
            .find(|(k, _)| k == "csrf_token")
            .map(|(_, v)| v.as_str())
            .unwrap_or("");
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
        Ok(wrap(value))
    })
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
