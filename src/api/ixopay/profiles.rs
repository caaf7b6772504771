//! Customer Profiles API v3: getProfile, updateProfile, deleteProfile. The rules live in
//! [`crate::api::ixopay::customer_profiles`]; this handler only reads the body and authenticates.

use actix_web::{HttpRequest, HttpResponse, ResponseError, web};

use crate::api::ixopay::customer_profiles;
use crate::api::{Mode, call, read_body};
use crate::state::AppState;

pub async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (api_key, op) = path.into_inner();
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(e) => return e.error_response(),
    };
    // getProfile only reads (its access entry is queued): the short-read path.
    let mode = if customer_profiles::Op::parse(&op) == Some(customer_profiles::Op::Get) {
        Mode::Read
    } else {
        Mode::Write
    };
    call(
        mode,
        state,
        req,
        body,
        api_key,
        move |conn, ctx, body, reader| {
            customer_profiles::handle(conn, &ctx.connector, &ctx.api_username, reader, &op, body)
        },
    )
    .await
}
