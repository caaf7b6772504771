//! Transaction API v3.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::error::ApiError;
use crate::startup::AppState;

pub async fn handle(
    _state: web::Data<AppState>,
    _req: HttpRequest,
    _path: web::Path<(String, String)>,
    _payload: web::Payload,
) -> HttpResponse {
    actix_web::ResponseError::error_response(&ApiError::logical("Not implemented yet."))
}
