//! Transaction API v3: `POST /api/v3/transaction/{apiKey}/{type}`.

use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::{call, read_body, to_json};
use crate::payments::engine;
use crate::state::AppState;

pub async fn handle(
    state: web::Data<AppState>,
    req: HttpRequest,
    path: web::Path<(String, String)>,
    payload: web::Payload,
) -> HttpResponse {
    let (api_key, kind) = path.into_inner();
    let body = match read_body(payload).await {
        Ok(b) => b,
        Err(e) => return actix_web::ResponseError::error_response(&e),
    };
    let keyring = state.keyring.clone();
    let policy = state.callback_policy;
    let pages = engine::PageSettings::from_settings(&state.settings);
    call(state, req, body, api_key, move |conn, ctx, body| {
        crate::payments::callbacks::check_request(body, policy)?;
        let a = engine::process(
            conn,
            &keyring,
            &pages,
            &ctx.connector,
            &kind,
            body,
            ctx.body_hash,
        )?;
        Ok((a.status, to_json(&a.body)?))
    })
    .await
}
