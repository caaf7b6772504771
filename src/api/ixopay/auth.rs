//! Authentication of the gateway APIs: Basic auth with an API user of the connector's merchant
//! (the plain password or the official client's SHA-1×10 form), and X-Signature when the
//! connector has "API: Enable Request Signing". Responses are signed with the same secret.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use base64::Engine;

use crate::api::ixopay::error::ApiError;
use crate::db::DbConnection;
use crate::gateway::api_password;
use crate::gateway::signature::{self, BodyHash};
use crate::models::connector::{Connector, Named};
use crate::vault::config_cache::Snapshot;
use crate::vault::keyring::Keyring;

/// The parts of an HTTP request the checks need, copied out of actix before going to the
/// blocking pool.
#[derive(Debug, Clone)]
pub struct RequestMeta {
    pub method: String,
    /// Path and query, as signed by clients.
    pub uri: String,
    pub content_type: String,
    pub date: Option<String>,
    pub x_date: Option<String>,
    pub signature: Option<String>,
    pub authorization: Option<String>,
}

impl RequestMeta {
    pub fn from(req: &HttpRequest) -> RequestMeta {
        let h = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        RequestMeta {
            method: req.method().as_str().to_string(),
            uri: req
                .uri()
                .path_and_query()
                .map_or_else(|| req.path().to_string(), |pq| pq.as_str().to_string()),
            content_type: h("content-type").unwrap_or_default(),
            date: h("date"),
            x_date: h("x-date"),
            signature: h("x-signature"),
            authorization: h("authorization"),
        }
    }
}

/// An authenticated API call.
pub struct ApiContext {
    pub connector: Connector,
    pub api_user_id: String,
    /// The API user's name, for the audit log.
    pub api_username: String,
    /// The connector's shared secret, for signing the response.
    pub secret: zeroize::Zeroizing<String>,
    /// The body-hash flavour of the request signature (SHA-512 unless the client used MD5).
    pub body_hash: BodyHash,
    pub meta: RequestMeta,
    /// The configuration version the call was authenticated under; the call's work runs
    /// within it (`config_cache::within`).
    pub config: std::sync::Arc<Snapshot>,
}

fn basic_credentials(header: Option<&str>) -> Option<(String, String)> {
    let v = header?
        .strip_prefix("Basic ")
        .or_else(|| header?.strip_prefix("basic "))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(v.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    // NUL is in no username or password, and PostgreSQL cannot compare text holding it.
    if text.contains('\0') {
        return None;
    }
    let (u, p) = text.split_once(':')?;
    Some((u.to_string(), p.to_string()))
}

/// Checks the caller of `api_key`: the connector, the API user and the opened secret from
/// `snapshot` of the process's configuration cache (one indexed lookup each on a miss), one
/// HMAC for the password, and no argon2.
pub fn authenticate(
    conn: &mut DbConnection,
    keyring: &Keyring,
    snapshot: &std::sync::Arc<Snapshot>,
    skew_window_secs: i64,
    meta: RequestMeta,
    body: &[u8],
    api_key: &str,
) -> Result<ApiContext, ApiError> {
    let (username, password) =
        basic_credentials(meta.authorization.as_deref()).ok_or_else(ApiError::unauthorized)?;
    // NUL is in no key (and PostgreSQL cannot compare text holding it): unknown, 401.
    if api_key.len() > 128
        || api_key.contains('\0')
        || username.len() > 128
        || password.len() > 1024
    {
        return Err(ApiError::unauthorized());
    }
    // An inactive connector, or one of an inactive merchant, is not found: 401 like an unknown key.
    let acting = snapshot
        .acting(conn, Named::ApiKey(api_key))
        .map_err(internal)?
        .ok_or_else(ApiError::unauthorized)?;
    let connector = &acting.connector;
    let user = snapshot
        .api_user(conn, &username)
        .map_err(internal)?
        .ok_or_else(ApiError::unauthorized)?;
    if !user.active
        || user.merchant_id != connector.merchant_id
        || !api_password::verify(
            keyring
                .mac_key()
                .map_err(crate::payments::error::PayError::from)?,
            &password,
            &user.password_hash,
        )
    {
        return Err(ApiError::unauthorized());
    }
    let secret = zeroize::Zeroizing::new(
        acting
            .secret(|| keyring.open_string(conn, &connector.shared_secret, connector.id.as_bytes()))
            .map_err(|e| ApiError::from(crate::error::ServiceError::Unexpected(e)))?
            .to_string(),
    );
    let mut body_hash = BodyHash::Sha512;
    if connector.signing {
        let given = meta
            .signature
            .as_deref()
            .ok_or_else(|| ApiError::signature("X-Signature header is required."))?;
        let date = signature::pick_date(meta.x_date.as_deref(), meta.date.as_deref()).ok_or_else(
            || ApiError::signature("A Date or X-Date header is required for signed requests."),
        )?;
        let when = signature::parse_http_date(date)
            .ok_or_else(|| ApiError::signature("The Date header is not an RFC 7231 date."))?;
        signature::check_skew(when, chrono::Utc::now(), skew_window_secs.unsigned_abs()).map_err(
            |e| ApiError::signature(format!("Request date outside the allowed window: {e}.")),
        )?;
        body_hash = signature::verify(
            &secret,
            &meta.method,
            body,
            &meta.content_type,
            date,
            &meta.uri,
            given,
        )
        .map_err(|_| ApiError::signature("Invalid signature."))?;
    }
    Ok(ApiContext {
        connector: connector.clone(),
        api_user_id: user.id.clone(),
        api_username: user.username.clone(),
        secret,
        body_hash,
        meta,
        config: snapshot.clone(),
    })
}

fn internal(e: diesel::result::Error) -> ApiError {
    ApiError::from(crate::error::ServiceError::Db(e))
}

pub use crate::gateway::signature::http_date;

pub const JSON: &str = "application/json; charset=utf-8";

/// A JSON response carrying `Date` and an `X-Signature` over it made with the connector's
/// secret: method and URI of the request, body and content type of the response.
pub fn signed(ctx: &ApiContext, status: StatusCode, body: Vec<u8>) -> HttpResponse {
    let date = http_date(chrono::Utc::now());
    let sig = signature::sign(
        &ctx.secret,
        &ctx.meta.method,
        &body,
        JSON,
        &date,
        &ctx.meta.uri,
        ctx.body_hash,
    );
    HttpResponse::build(status)
        .content_type(JSON)
        .insert_header(("Date", date))
        .insert_header(("X-Signature", sig))
        .body(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_parsed_and_garbage_is_refused() {
        let h = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("anyApiUser:myPassword")
        );
        assert_eq!(
            basic_credentials(Some(&h)),
            Some(("anyApiUser".into(), "myPassword".into()))
        );
        assert_eq!(basic_credentials(Some("Basic !!!")), None);
        assert_eq!(basic_credentials(Some("Bearer x")), None);
        assert_eq!(basic_credentials(None), None);
        let no_colon = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("nocolon")
        );
        assert_eq!(basic_credentials(Some(&no_colon)), None);
        let nul = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("shop\0api:pw")
        );
        assert_eq!(basic_credentials(Some(&nul)), None);
    }

    #[test]
    fn http_dates_use_the_imf_fixdate_form() {
        let t = chrono::DateTime::parse_from_rfc3339("2026-04-28T15:23:40Z")
            .expect("t")
            .with_timezone(&chrono::Utc);
        assert_eq!(http_date(t), "Tue, 28 Apr 2026 15:23:40 GMT");
    }
}
