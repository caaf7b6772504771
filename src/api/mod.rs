//! The gateway JSON APIs, compatible with IXOPAY's Transaction API v3 and Customer Profiles
//! API v3. Handlers: read the body (bounded), authenticate, call a service, answer a signed
//! JSON body. Errors answer `{"success":false,"errorMessage","errorCode"}` with a 4xx.
//! The Monri-compatible Customers API v2 lives in [`monri`], with Monri's own auth and errors.

pub mod ixopay;
pub mod monri;
pub mod openapi;

use ixopay::{profiles, status, tokenize, transactions};

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt;

use crate::api::ixopay::auth::{ApiContext, RequestMeta, signed};
use crate::api::ixopay::error::ApiError;
use crate::audit::access::Reader;
use crate::db::DbConnection;
use crate::state::AppState;
use crate::vault::config_cache::{self, Snapshot};
use std::sync::Arc;

/// Largest request body the APIs accept (extraData alone may reach 64 × 8 KiB).
pub const BODY_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/api/v3/transaction/{api_key}/{tx_type}",
        web::post().to(transactions::handle),
    )
    .route(
        "/api/v3/customerProfiles/{api_key}/{op}",
        web::post().to(profiles::handle),
    )
    .route(
        "/api/v3/status/{api_key}/getByUuid/{uuid}",
        web::get().to(status::by_uuid),
    )
    .route(
        "/api/v3/status/{api_key}/getByMerchantTransactionId/{id}",
        web::get().to(status::by_merchant_transaction_id),
    )
    .route(
        "/api/v3/paymentjs/{public_key}/tokenize",
        web::post().to(tokenize::tokenize),
    )
    .route(
        "/api/v3/paymentjs/{public_key}/tokenize",
        web::method(actix_web::http::Method::OPTIONS).to(tokenize::preflight),
    )
    .route("/openapi/ixopay.json", web::get().to(openapi::ixopay))
    .route("/openapi/monri.json", web::get().to(openapi::monri))
    .route("/v2/oauth", web::post().to(monri::oauth))
    .route("/v2/customers", web::post().to(monri::create))
    .route("/v2/customers", web::get().to(monri::list))
    .route("/v2/customers/{uuid}", web::get().to(monri::get))
    .route("/v2/customers/{uuid}", web::post().to(monri::update))
    .route("/v2/customers/{uuid}", web::delete().to(monri::delete))
    .route(
        "/v2/customers/{uuid}/payment-methods",
        web::get().to(monri::payment_methods),
    )
    .route(
        "/v2/merchants/customers/{merchant_customer_id}",
        web::get().to(monri::by_merchant_id),
    )
    .route(
        "/v2/payment-methods",
        web::get().to(monri::merchant_payment_methods),
    );
}

/// Reads the request body up to `BODY_LIMIT`, answering 413 with the API's error body beyond.
pub async fn read_body(payload: web::Payload) -> Result<web::Bytes, ApiError> {
    read_body_limited(payload, BODY_LIMIT).await
}

/// Reads the request body up to `limit` bytes, answering 413 with the API's error body beyond.
pub async fn read_body_limited(
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| ApiError::invalid("The request body could not be read."))?;
        if buf.len() + chunk.len() > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                crate::gateway::errors::ErrorCode::InvalidRequestData,
                format!("The request body exceeds {limit} bytes."),
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

/// Authenticates the call to `api_key` and runs `f` on a blocking thread with a connection
/// (after [`refuse_card_numbers`]); the answer (or the error, once authenticated) is signed with the connector's secret.
/// `METHOD /the/{route}` of a request, as the access audit names it (no ids, no keys).
pub fn route_of(req: &HttpRequest) -> String {
    format!(
        "{} {}",
        req.method(),
        req.match_pattern()
            .unwrap_or_else(|| req.path().to_string())
    )
}

/// What a [`call`] answers: a status and a JSON body, maybe a stored answer replayed
/// (Idempotency-Key), which is signed anew like any other and marked `Idempotent-Replayed: true`.
pub struct Answer {
    pub status: StatusCode,
    pub body: Vec<u8>,
    pub replayed: bool,
}

impl From<(StatusCode, Vec<u8>)> for Answer {
    fn from((status, body): (StatusCode, Vec<u8>)) -> Self {
        Answer {
            status,
            body,
            replayed: false,
        }
    }
}

/// How a [`call`] reaches the database: [`DbPool::run`](crate::db::DbPool::run) on a blocking
/// thread, or [`DbPool::read`](crate::db::DbPool::read) for a short read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Write,
    Read,
}

/// Authenticates an IXOPAY API call and runs `f` for it, in `mode`. A short read may run `f`
/// twice: the first run is dropped, unanswered and unrecorded, when its cached configuration
/// proves stale.
pub async fn call<F, A>(
    mode: Mode,
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
    api_key: String,
    f: F,
) -> HttpResponse
where
    F: Fn(&mut DbConnection, &ApiContext, &[u8], &Reader) -> Result<A, ApiError> + Send + 'static,
    A: Into<Answer> + Send + 'static,
{
    let meta = RequestMeta::from(&req);
    let route = route_of(&req);
    let origin = crate::web::client::origin(&req, &state);
    let access = state.access.clone();
    let keyring = state.keyring.clone();
    let config = state.config.clone();
    let skew = state.settings.signature_skew_seconds;
    let work = move |conn: &mut DbConnection| {
        let attempt = |conn: &mut DbConnection, snapshot: &Arc<Snapshot>| {
            let ctx = ixopay::auth::authenticate(
                conn,
                &keyring,
                snapshot,
                skew,
                meta.clone(),
                &body,
                &api_key,
            )?;
            let reader = Reader::client(
                &access,
                &ctx.connector,
                format!(
                    "API user {} (connector {})",
                    ctx.api_username, ctx.connector.api_key
                ),
                route.clone(),
                origin.clone(),
            );
            let result =
                refuse_card_numbers(&body, &[]).and_then(|()| f(conn, &ctx, &body, &reader));
            Ok((ctx, result))
        };
        // A short read runs on the configuration cached now, confirmed by its own statements
        // (`config_cache::short_read`): one statement fewer per call.
        let outcome = match mode {
            Mode::Read => config_cache::short_read(&config, conn, attempt),
            Mode::Write => config
                .snapshot(conn)
                .map(|snapshot| config_cache::within(&snapshot, || attempt(conn, &snapshot))),
        };
        Ok(outcome.unwrap_or_else(|e| Err(ApiError::from(crate::error::ServiceError::Db(e)))))
    };
    let outcome = match mode {
        Mode::Write => state.db.run(work).await,
        Mode::Read => state.db.read(work).await,
    };
    match outcome {
        Ok(Ok((ctx, Ok(answer)))) => {
            let Answer {
                status,
                body,
                replayed,
            } = answer.into();
            let mut r = signed(&ctx, status, body);
            if replayed {
                r.headers_mut().insert(
                    actix_web::http::header::HeaderName::from_static("idempotent-replayed"),
                    actix_web::http::header::HeaderValue::from_static("true"),
                );
            }
            r
        }
        Ok(Ok((ctx, Err(e)))) => signed(&ctx, e.status, e.json()),
        Ok(Err(e)) => actix_web::ResponseError::error_response(&e),
        Err(e) => actix_web::ResponseError::error_response(&ApiError::from(e)),
    }
}

/// Parses a JSON body into `T`, mapping every failure (syntax, types, unknown shapes) to 1002.
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    crate::gateway::json::parse(body).map_err(ApiError::invalid)
}

/// Refuses a JSON request that carries a card number (see [`pan_scan`]) anywhere but at the
/// `skip` paths: 1002, HTTP 422, the message naming the field by its JSON path and never its
/// value, so nothing of the request is written. Card numbers go to the tokenize endpoint only.
/// A body that is not JSON passes: its own parser answers that. Every JSON API calls this
/// before its service: [`call`] (Transaction and Customer Profiles APIs), the Monri handlers and
/// tokenize (which skips its `number`).
///
/// [`pan_scan`]: crate::gateway::pan_scan
pub fn refuse_card_numbers(body: &[u8], skip: &[&str]) -> Result<(), ApiError> {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return Ok(());
    };
    match crate::gateway::pan_scan::find_card_number(&v, skip) {
        Some(path) => Err(ApiError::invalid(format!(
            "{path}: looks like a card number; card numbers are accepted only in the number field of the tokenize endpoint (payment.js)"
        ))),
        None => Ok(()),
    }
}

pub use crate::gateway::json::{NUL_MESSAGE, has_nul as json_has_nul};

pub fn to_json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ApiError> {
    serde_json::to_vec(v)
        .map_err(|e| ApiError::from(crate::error::ServiceError::Unexpected(e.into())))
}
