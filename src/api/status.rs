//! Status API: getByUuid, getByMerchantTransactionId.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::error::ApiError;
use crate::startup::AppState;

pub async fn by_uuid(
    _state: web::Data<AppState>,
    _req: HttpRequest,
    _path: web::Path<(String, String)>,
) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::logical("Not implemented yet."))
}

pub async fn by_merchant_transaction_id(
    _state: web::Data<AppState>,
    _req: HttpRequest,
    _path: web::Path<(String, String)>,
) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::logical("Not implemented yet."))
}
