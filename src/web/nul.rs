//! Refuses every console request whose URL carries a NUL character (`%00`) in its path or query.
//!
//! No identifier, search term or cursor of the console can contain NUL, and PostgreSQL text
//! cannot hold it: a NUL bound into a query fails there with "invalid byte sequence" (a 500)
//! where SQLite merely finds nothing. The check is one place in front of every console route,
//! so that no handler has to remember it. The APIs keep their own contracts (an id that cannot
//! exist is unknown: 401 for a connector key, 404 for a transaction or customer), so their
//! handlers treat NUL themselves and this middleware lets `/api/` and `/v2/` through.

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;

use crate::web::error::HtmlError;

const MESSAGE: &str = "The address contains a NUL character (%00).";

/// True when percent-decoding `s` yields a NUL: `%00` is the only way to write one in a URL.
pub fn has_encoded_nul(s: &str) -> bool {
    s.as_bytes().windows(3).any(|w| w == b"%00")
}

pub async fn reject_nul_urls<B: MessageBody + 'static>(
    req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let uri = req.uri();
    let api = uri.path().starts_with("/api/") || uri.path().starts_with("/v2/");
    if api || !(has_encoded_nul(uri.path()) || uri.query().is_some_and(has_encoded_nul)) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_left_body);
    }
    let resp = HtmlError::BadRequest(MESSAGE.into()).error_response();
    Ok(req.into_response(resp).map_into_right_body())
}

#[cfg(test)]
mod tests {
    use super::has_encoded_nul;

    #[test]
    fn only_percent_zero_zero_is_a_nul() {
        assert!(has_encoded_nul("/tenants/a%00b"));
        assert!(has_encoded_nul("q=%%00"));
        assert!(!has_encoded_nul("/tenants/a%2500b"));
        assert!(!has_encoded_nul("q=100%25&x=%0A"));
    }
}
