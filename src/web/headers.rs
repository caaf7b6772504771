//! The headers every response carries, set in one place (a middleware around the whole app):
//! a CSP that allows no inline script, no framing, no MIME sniffing, no referrer leaking to
//! other sites; `Cache-Control: no-store` on everything but the static assets (console pages,
//! redirects, error pages, the payment pages and the APIs hold data no cache may keep, PCI DSS
//! 8.2.8's idle end must not be undone by the back button); and, with `COFFER_COOKIE_SECURE`
//! (Coffer is served over TLS), `Strict-Transport-Security` on every response. A header a
//! handler set itself is kept.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::state::AppState;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'";

/// HSTS for a year, subdomains included (sent only when cookies are `Secure`, i.e. over TLS).
pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Whether a path is a static asset, which browsers and proxies may cache.
fn is_static(path: &str) -> bool {
    path.starts_with("/static/")
}

pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let secure = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.settings.cookie_secure);
    let cacheable = is_static(req.path());
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    let mut set = |name: &'static str, value: &'static str| {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set("content-security-policy", CSP);
    set("x-frame-options", "DENY");
    set("x-content-type-options", "nosniff");
    set("referrer-policy", "same-origin");
    if !cacheable {
        set("cache-control", "no-store");
    }
    if secure {
        set("strict-transport-security", HSTS);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_static_assets_are_cacheable() {
        assert!(super::is_static("/static/css/app.css"));
        assert!(!super::is_static("/static"));
        assert!(!super::is_static("/login"));
        assert!(!super::is_static("/api/v3/transaction/x/debit"));
    }
}
