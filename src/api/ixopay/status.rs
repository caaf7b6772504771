//! Status API: `GET /api/v3/status/{apiKey}/getByUuid/{uuid}` and
//! `.../getByMerchantTransactionId/{id}`. Only transactions of the named connector are found;
//! anything else is 8001 "Transaction not found", answered with HTTP 200 (IXOPAY documents only
//! 200 and 429 here, and clients throw on a 4xx instead of reading the result).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::ixopay::error::ApiError;
use crate::api::{Mode, call, to_json};
use crate::gateway::errors::ErrorCode;
use crate::models::transaction;
use crate::payments::engine::status_body;
use crate::state::AppState;

fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::OK,
        ErrorCode::TransactionNotFound,
        "Transaction not found.",
    )
}

pub async fn by_uuid(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (api_key, uuid) = path.into_inner();
    call(
        Mode::Read,
        state,
        req,
        web::Bytes::new(),
        api_key,
        move |conn, ctx, _, _| {
            // An id holding NUL matches nothing (and PostgreSQL cannot compare it).
            if uuid.contains('\0') {
                return Err(not_found());
            }
            match transaction::find(conn, &uuid)? {
                Some(t) if t.connector_id == ctx.connector.id => {
                    Ok((StatusCode::OK, to_json(&status_body(&t))?))
                }
                _ => Err(not_found()),
            }
        },
    )
    .await
}

pub async fn by_merchant_transaction_id(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
) -> HttpResponse {
    let (api_key, id) = path.into_inner();
    call(
        Mode::Read,
        state,
        req,
        web::Bytes::new(),
        api_key,
        move |conn, ctx, _, _| {
            if id.contains('\0') {
                return Err(not_found());
            }
            match transaction::find_by_merchant_tx_id(conn, &ctx.connector.id, &id)? {
                Some(t) => Ok((StatusCode::OK, to_json(&status_body(&t))?)),
                None => Err(not_found()),
            }
        },
    )
    .await
}
