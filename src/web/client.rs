//! Who is on the other end of a request: the client's address and user agent. The one place
//! that decides whether a proxy header is believed (throttles, rate limits and the audit log
//! all ask here).

use actix_web::HttpRequest;

use crate::state::AppState;

/// Longest user agent kept (the audit log shows it; a client chooses its length).
const USER_AGENT_MAX: usize = 256;

/// The client's address. Without `COFFER_TRUSTED_PROXY_HEADER` it is the TCP peer, whatever
/// headers the request carries. With it (Coffer behind a reverse proxy that sets that header),
/// it is the header's last entry (the one the proxy added; entries before it come from the
/// client and are not believed), or the peer when the header is missing or not an address.
pub fn addr(req: &HttpRequest, state: &AppState) -> String {
    addr_behind(req, state.settings.trusted_proxy_header.as_deref())
}

fn addr_behind(req: &HttpRequest, header: Option<&str>) -> String {
    header
        .and_then(|name| from_header(req, name))
        .unwrap_or_else(|| peer(req))
}

fn from_header(req: &HttpRequest, name: &str) -> Option<String> {
    let value = req.headers().get(name)?.to_str().ok()?;
    let last = value.rsplit(',').next()?.trim();
    let ip: std::net::IpAddr = last.parse().ok()?;
    Some(ip.to_string())
}

/// The TCP peer's address.
pub fn peer(req: &HttpRequest) -> String {
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_else(|| "unknown".into())
}

/// The request's user agent, shortened to a bounded length and stripped of control characters.
pub fn user_agent(req: &HttpRequest) -> String {
    let raw = req
        .headers()
        .get(actix_web::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    raw.chars()
        .filter(|c| !c.is_control())
        .take(USER_AGENT_MAX)
        .collect()
}

/// Where the request came from, for the audit log: the client's address and user agent as
/// above, as plain strings for the layers below.
pub fn origin(req: &HttpRequest, state: &AppState) -> crate::audit::Origin {
    crate::audit::Origin {
        addr: Some(addr(req, state)),
        user_agent: Some(user_agent(req)).filter(|u| !u.is_empty()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn req() -> HttpRequest {
        TestRequest::default()
            .peer_addr("10.0.0.9:5555".parse().expect("address"))
            .insert_header(("X-Forwarded-For", "6.6.6.6, 203.0.113.7"))
            .insert_header(("User-Agent", "Mozilla/5.0\tEvil"))
            .to_http_request()
    }

    #[test]
    fn a_proxy_header_is_believed_only_when_configured_and_only_its_last_entry() {
        assert_eq!(addr_behind(&req(), None), "10.0.0.9");
        assert_eq!(addr_behind(&req(), Some("X-Forwarded-For")), "203.0.113.7");
        assert_eq!(addr_behind(&req(), Some("X-Real-IP")), "10.0.0.9");
        let bad = TestRequest::default()
            .peer_addr("10.0.0.9:5555".parse().expect("address"))
            .insert_header(("X-Real-IP", "not-an-address"))
            .to_http_request();
        assert_eq!(addr_behind(&bad, Some("X-Real-IP")), "10.0.0.9");
    }

    #[test]
    fn user_agents_lose_control_characters_and_are_bounded() {
        assert_eq!(user_agent(&req()), "Mozilla/5.0Evil");
        let long = TestRequest::default()
            .insert_header(("User-Agent", "a".repeat(5000)))
            .to_http_request();
        assert_eq!(user_agent(&long).len(), USER_AGENT_MAX);
    }
}
