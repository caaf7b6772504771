//! A hook that lets a test harness see every response the app answers (method, path, status,
//! content type and the whole body), installed by `Application::build_observed`. The
//! integration tests hold every API answer to the OpenAPI documents with it. Without an
//! observer (`coffer serve`) the middleware passes every response through untouched.

use std::sync::Arc;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::CONTENT_TYPE;
use actix_web::middleware::Next;
use actix_web::web;

/// One answered request, as an [`Observe`] sees it.
pub struct Seen<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub status: u16,
    pub content_type: &'a str,
    pub body: &'a [u8],
}

/// What sees the responses.
pub trait Observe: Send + Sync {
    /// Whether to look at the response of `method path` (only those are buffered).
    fn wants(&self, method: &str, path: &str) -> bool;
    fn seen(&self, response: &Seen<'_>);
}

/// The app's observer, if any (app data).
#[derive(Clone, Default)]
pub struct Observer(pub Option<Arc<dyn Observe>>);

pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let observer = req
        .app_data::<web::Data<Observer>>()
        .and_then(|o| o.0.clone())
        .filter(|o| o.wants(req.method().as_str(), req.path()));
    let Some(observer) = observer else {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    };
    let (method, path) = (req.method().to_string(), req.path().to_string());
    let res = next.call(req).await?;
    let (req, res) = res.into_parts();
    let status = res.status().as_u16();
    let content_type = res
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let (head, body) = res.into_parts();
    let bytes = actix_web::body::to_bytes(body)
        .await
        .map_err(|e| actix_web::error::ErrorInternalServerError(e.into()))?;
    observer.seen(&Seen {
        method: &method,
        path: &path,
        status,
        content_type: &content_type,
        body: &bytes,
    });
    Ok(ServiceResponse::new(
        req,
        head.set_body(bytes).map_into_boxed_body(),
    ))
}
