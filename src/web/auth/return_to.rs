//! Where a sign-in returns to: the page a signed-out request (or one whose session had ended)
//! asked for travels as `/login?next=…`, through the login form's hidden `next` field and the
//! two-factor step, and is followed only when it is a plain relative path on this site. An
//! absolute URL, a scheme-relative `//host`, a backslash (which browsers read as a slash) or
//! anything but visible ASCII falls back to `/`: the login page is no open redirect.

use actix_web::HttpRequest;
use actix_web::http::Method;

/// Longest return path followed.
const MAX_LEN: usize = 1024;

/// `next` when it is a safe return path: it starts with a single `/`, holds no backslash and
/// only visible ASCII, and does not lead back into the sign-in itself.
pub fn safe(next: &str) -> Option<&str> {
    let ok = next.starts_with('/')
        && !next.starts_with("//")
        && next.len() <= MAX_LEN
        && next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\')
        && !(next == "/login" || next.starts_with("/login/") || next.starts_with("/login?"));
    ok.then_some(next)
}

/// The return path of `next`, or `/`.
pub fn or_home(next: &str) -> &str {
    safe(next).unwrap_or("/")
}

/// The page a signed-out request asked for, worth coming back to: only a GET (a form posted
/// after the session ended cannot be replayed; its page can be reached again from `/`).
pub fn of_request(req: &HttpRequest) -> Option<String> {
    if req.method() != Method::GET {
        return None;
    }
    let uri = req.uri();
    let path = uri.path_and_query().map_or(uri.path(), |pq| pq.as_str());
    safe(path).filter(|p| *p != "/").map(str::to_string)
}

/// The login page's address that returns to `next` afterwards.
pub fn login_url(next: Option<&str>) -> String {
    match next.and_then(safe) {
        Some(n) => format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", n)]).unwrap_or_default()
        ),
        None => "/login".into(),
    }
}

/// The `next` of a login page's query string (unreadable or unsafe: none).
pub fn from_query(query: &str) -> String {
    #[derive(serde::Deserialize, Default)]
    struct Q {
        #[serde(default)]
        next: String,
    }
    let q: Q = serde_urlencoded::from_str(query).unwrap_or_default();
    safe(&q.next).map(str::to_string).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_relative_paths_are_followed() {
        for ok in [
            "/tenants",
            "/users/abc?x=1&y=%2F",
            "/a/b#c",
            "/%2F%2Fevil.example",
        ] {
            assert_eq!(safe(ok), Some(ok), "{ok}");
        }
        for bad in [
            "",
            "tenants",
            "//evil.example",
            "//evil.example/path",
            "/\\evil.example",
            "\\\\evil.example",
            "/\\/evil.example",
            "https://evil.example",
            "http:/evil.example",
            "javascript:alert(1)",
            " /tenants",
            "/ten ants",
            "/tenants\n",
            "/tén",
            "/login",
            "/login?next=/x",
            "/login/two-factor",
        ] {
            assert_eq!(safe(bad), None, "{bad:?}");
            assert_eq!(or_home(bad), "/");
        }
        assert_eq!(safe(&format!("/{}", "a".repeat(2000))), None);
    }

    #[test]
    fn the_login_url_carries_the_path_encoded() {
        assert_eq!(
            login_url(Some("/users/1?a=b")),
            "/login?next=%2Fusers%2F1%3Fa%3Db"
        );
        assert_eq!(login_url(Some("//evil.example")), "/login");
        assert_eq!(login_url(None), "/login");
        assert_eq!(from_query("next=%2Fusers%2F1%3Fa%3Db"), "/users/1?a=b");
        assert_eq!(from_query("next=%2F%2Fevil.example"), "");
        assert_eq!(from_query("next=https%3A%2F%2Fevil.example"), "");
        assert_eq!(from_query("%zz&&=="), "");
    }
}
