//! payment.js card tokenization: `POST /api/v3/paymentjs/{public_key}/tokenize`, called from a
//! merchant's checkout page in the browser. No Basic auth and no session: the public
//! integration key is public by design, and the answer is an opaque single-use token. CORS is
//! open (`*`) because the endpoint uses no cookies or other ambient credentials.
//! The rules live in `payments::card_tokens`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, HttpResponseBuilder, web};

use crate::api::ixopay::error::ApiError;
use crate::api::{read_body_limited, to_json};
use crate::payments::card_tokens::{self, TokenizeRequest};
use crate::state::AppState;

/// A tokenize body is a handful of short fields.
pub const TOKENIZE_BODY_LIMIT: usize = 16 * 1024;

fn cors(status: StatusCode) -> HttpResponseBuilder {
    let mut b = HttpResponse::build(status);
    b.insert_header(("Access-Control-Allow-Origin", "*"))
        .insert_header(("Cache-Control", "no-store"));
    b
}

pub async fn tokenize(
    req: HttpRequest,
    state: web::Data<AppState>,
    path: web::Path<String>,
    payload: web::Payload,
) -> HttpResponse {
    let public_key = path.into_inner();
    let source = crate::web::client::addr(&req, &state);
    let limits = card_tokens::Limits {
        per_address: state.settings.tokenize_limit_per_address,
        per_key: state.settings.tokenize_limit_per_key,
    };
    let keyring = state.keyring.clone();
    let lifetime = state.settings.card_token_minutes;
    let result = match read_body_limited(payload, TOKENIZE_BODY_LIMIT).await {
        Err(e) => Err(e),
        Ok(body) => state
            .db
            .run(move |conn| {
                // The shape first (a body that is not an object is a 400 as before), then no
                // card number outside `number`.
                Ok(TokenizeRequest::from_json(&body)
                    .map_err(ApiError::from)
                    .and_then(|req| {
                        crate::api::refuse_card_numbers(&body, &["number"]).map(|()| req)
                    })
                    .and_then(|req| {
                        let now = chrono::Utc::now();
                        card_tokens::tokenize_limited(
                            conn,
                            &keyring,
                            &public_key,
                            &source,
                            limits,
                            req,
                            now,
                            lifetime,
                        )
                        .map_err(ApiError::from)
                    }))
            })
            .await
            .unwrap_or_else(|e| Err(ApiError::from(e))),
    };
    let (status, body, retry_after) = match result.and_then(|answer| to_json(&answer)) {
        Ok(body) => (StatusCode::OK, body, None),
        Err(e) => (e.status, e.json(), e.retry_after),
    };
    let mut b = cors(status);
    if let Some(s) = retry_after {
        b.insert_header(("Retry-After", s.to_string()));
    }
    b.content_type("application/json; charset=utf-8").body(body)
}

/// The CORS preflight of a cross-origin `fetch` with `Content-Type: application/json`.
pub async fn preflight() -> HttpResponse {
    cors(StatusCode::NO_CONTENT)
        .insert_header(("Access-Control-Allow-Methods", "POST, OPTIONS"))
        .insert_header(("Access-Control-Allow-Headers", "Content-Type"))
        .insert_header(("Access-Control-Max-Age", "600"))
        .finish()
}
