//! Transaction API v3: `POST /api/v3/transaction/{apiKey}/{type}`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::api::ixopay::error::ApiError;
use crate::api::{Answer, Mode, call, parse_json, read_body};
use crate::gateway::errors::ErrorCode;
use crate::payments::idempotency::{self, Key};
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
    let key = idempotency_key(&req);
    let wait = std::time::Duration::from_millis(state.settings.idempotency_wait_ms);
    let keyring = state.keyring.clone();
    let policy = state.callback_policy;
    let pages = crate::payments::means::PageSettings::from_settings(&state.settings);
    call(
        Mode::Write,
        state,
        req,
        body,
        api_key,
        move |conn, ctx, body, reader| {
            let Some(kind) = crate::payments::request::TxKind::parse(&kind) else {
                return Err(ApiError::new(
                    StatusCode::NOT_FOUND,
                    ErrorCode::InvalidRequestData,
                    format!("Unknown transaction type '{kind}'."),
                ));
            };
            let key = key.clone()?;
            crate::payments::callbacks::check_request(body, policy)?;
            let request: crate::payments::request::TxRequest = parse_json(body)?;
            let call = crate::payments::request::Call {
                kind,
                request: &request,
                body_hash: ctx.body_hash,
                reader,
            };
            let reply = idempotency::process(
                conn,
                &keyring,
                &pages,
                &ctx.connector,
                call,
                idempotency::Once {
                    key: key.as_ref(),
                    raw_body: body,
                    wait,
                },
            )?;
            Ok(Answer {
                status: StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK),
                body: reply.body,
                replayed: reply.replayed,
            })
        },
    )
    .await
}

/// The request's `Idempotency-Key` header, if any: more than one is refused like a bad one.
fn idempotency_key(req: &HttpRequest) -> Result<Option<Key>, ApiError> {
    let mut values = req.headers().get_all("idempotency-key");
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(ApiError::invalid("Idempotency-Key: send the header once"));
    }
    Ok(Some(Key::parse(first.as_bytes())?))
}
