//! Monri-compatible Customers API v2 (`/v2/…`): thin handlers. Each reads the body (bounded),
//! copies what authentication needs out of the request, and runs authentication and the
//! service call on one pooled connection ([`crate::api::monri::customers`]).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::Value;

use crate::api::monri::customers::{self, Answer, MonriError, Need, RequestAuth};
use crate::audit::access::Reader;
use crate::db::DbConnection;
use crate::models::connector::Connector;
use crate::state::AppState;
use crate::vault::config_cache::{self, Snapshot};
use crate::vault::keyring::Keyring;
use std::sync::Arc;

const JSON: &str = "application/json; charset=utf-8";

fn respond(status: StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(JSON)
        .body(body.to_string())
}

/// The Monri error answer (`WWW-Authenticate: Bearer` on 401).
pub fn error(e: &MonriError) -> HttpResponse {
    let mut r = HttpResponse::build(e.status);
    if e.status == StatusCode::UNAUTHORIZED {
        r.insert_header(("WWW-Authenticate", "Bearer"));
    }
    r.content_type(JSON).body(e.body().to_string())
}

async fn body_of(payload: web::Payload) -> Result<web::Bytes, MonriError> {
    crate::api::read_body(payload)
        .await
        .map_err(|e| MonriError::new(e.status, e.message))
}

fn finish(outcome: Result<Result<Answer, MonriError>, crate::error::ServiceError>) -> HttpResponse {
    match outcome {
        Ok(Ok((status, body))) => respond(status, &body),
        Ok(Err(e)) => error(&e),
        Err(e) => error(&MonriError::from(e)),
    }
}

/// Authenticates the call (WP3-v2.1 or Bearer with the scopes `need` asks for) and runs `f`
/// with the connector, the body and the query string. A body carrying a card number is
/// refused first (400 invalid-request, see [`crate::api::refuse_card_numbers`]).
async fn call<F>(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
    need: Need,
    f: F,
) -> HttpResponse
where
    F: Fn(
            &mut DbConnection,
            &Keyring,
            &Connector,
            &Reader,
            &[u8],
            &str,
        ) -> Result<Answer, MonriError>
        + Send
        + 'static,
{
    let body = match body_of(payload).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let auth = RequestAuth {
        authorization: req
            .headers()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        path: req.uri().path().to_string(),
    };
    let query = req.query_string().to_string();
    let route = crate::api::route_of(&req);
    let origin = crate::web::client::origin(&req, &state);
    let access = state.access.clone();
    let keyring = state.keyring.clone();
    let config = state.config.clone();
    let skew = state.settings.signature_skew_seconds;
    // A GET only reads (its access entries are queued): the short-read path.
    let read = req.method() == actix_web::http::Method::GET;
    let work = move |conn: &mut DbConnection| {
        let attempt = |conn: &mut DbConnection, snapshot: &Arc<Snapshot>| {
            let k = customers::authenticate(
                conn,
                &keyring,
                snapshot,
                skew,
                chrono::Utc::now(),
                &auth,
                &body,
                need,
            )?;
            let reader = Reader::client(
                &access,
                &k,
                format!("Monri API client (connector {})", k.api_key),
                route.clone(),
                origin.clone(),
            );
            crate::api::refuse_card_numbers(&body, &[])
                .map_err(|e| MonriError::invalid(e.message))
                .and_then(|()| f(conn, &keyring, &k, &reader, &body, &query))
        };
        // A GET runs on the configuration cached now, confirmed by its own statements
        // (`config_cache::short_read`): one statement fewer per call.
        let outcome = if read {
            config_cache::short_read(&config, conn, attempt)
        } else {
            config
                .snapshot(conn)
                .map(|snapshot| config_cache::within(&snapshot, || attempt(conn, &snapshot)))
        };
        Ok(outcome.unwrap_or_else(|e| Err(MonriError::from(e))))
    };
    let outcome = if read {
        state.db.read(work).await
    } else {
        state.db.run(work).await
    };
    finish(outcome)
}

fn param(req: &HttpRequest, name: &str) -> String {
    req.match_info().get(name).unwrap_or_default().to_string()
}

/// `POST /v2/oauth`.
pub async fn oauth(state: web::Data<AppState>, payload: web::Payload) -> HttpResponse {
    let body = match body_of(payload).await {
        Ok(b) => b,
        Err(e) => return error(&e),
    };
    let keyring = state.keyring.clone();
    let outcome = state
        .db
        .run(move |conn| Ok(customers::issue_token(conn, &keyring, &body)))
        .await;
    finish(outcome)
}

/// `POST /v2/customers`.
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    call(
        state,
        req,
        payload,
        Need::Customers,
        |c, _, k, _, body, _| customers::create(c, k, body),
    )
    .await
}

/// `GET /v2/customers`.
pub async fn list(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    call(state, req, payload, Need::Customers, |c, _, k, r, _, q| {
        customers::list(c, k, r, q)
    })
    .await
}

/// `GET /v2/customers/{uuid}`.
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let uuid = param(&req, "uuid");
    call(
        state,
        req,
        payload,
        Need::Customers,
        move |c, _, k, r, _, _| customers::get(c, k, r, &uuid),
    )
    .await
}

/// `POST /v2/customers/{uuid}`.
pub async fn update(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let uuid = param(&req, "uuid");
    call(
        state,
        req,
        payload,
        Need::Customers,
        move |c, _, k, _, body, _| customers::update(c, k, &uuid, body),
    )
    .await
}

/// `DELETE /v2/customers/{uuid}`.
pub async fn delete(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let uuid = param(&req, "uuid");
    call(
        state,
        req,
        payload,
        Need::Customers,
        move |c, _, k, _, _, _| customers::delete(c, k, &uuid),
    )
    .await
}

/// Decodes every `%XX` of a raw path segment (the router leaves reserved ones such as `%2F`
/// encoded); `None` when it is not valid percent-encoded UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = raw.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// `GET /v2/merchants/customers/{merchant_customer_id}`.
pub async fn by_merchant_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    // The id is read from the raw path, so that an encoded `/` in it is decoded too.
    let id = req
        .uri()
        .path()
        .strip_prefix("/v2/merchants/customers/")
        .and_then(percent_decode)
        .unwrap_or_default();
    call(
        state,
        req,
        payload,
        Need::Customers,
        move |c, _, k, r, _, _| customers::get_by_merchant_id(c, k, r, &id),
    )
    .await
}

/// `GET /v2/customers/{uuid}/payment-methods`.
pub async fn payment_methods(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let uuid = param(&req, "uuid");
    call(
        state,
        req,
        payload,
        Need::PaymentMethods,
        move |c, keyring, k, r, _, q| customers::payment_methods(c, keyring, k, r, &uuid, q),
    )
    .await
}

/// `GET /v2/payment-methods`: the merchant-wide list.
pub async fn merchant_payment_methods(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    call(
        state,
        req,
        payload,
        Need::PaymentMethods,
        |c, keyring, k, r, _, q| customers::merchant_payment_methods(c, keyring, k, r, q),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn path_segments_are_fully_decoded() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("plain+id").as_deref(), Some("plain+id"));
        assert_eq!(percent_decode("%C5%BE").as_deref(), Some("\u{17e}"));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        assert_eq!(percent_decode("%FF"), None);
    }
}
