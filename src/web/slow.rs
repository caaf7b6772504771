//! Slow requests are cut off. actix's `client_request_timeout` bounds the request head; this
//! middleware bounds the body: every request's payload stream fails once
//! `COFFER_REQUEST_TIMEOUT_SECONDS` have passed since the head arrived, whatever reads it (the
//! APIs' bounded body reader, form and JSON extractors), and the answer is then replaced by a
//! `408 Request Timeout` that closes the connection. A body sent 1 byte every 2 s therefore
//! holds a connection and a worker's attention for at most that long.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::{Bytes, Data};
use actix_web::{HttpMessage, HttpResponse, http::StatusCode};
use futures_util::Stream;

use crate::state::AppState;

/// The payload, failing with a timeout once `sleep` has elapsed.
struct Deadline {
    inner: Payload,
    sleep: Pin<Box<tokio::time::Sleep>>,
    fired: Arc<AtomicBool>,
    done: bool,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        if this.sleep.as_mut().poll(cx).is_ready() {
            this.done = true;
            this.fired.store(true, Ordering::SeqCst);
            return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the request body arrived too slowly",
            )))));
        }
        let next = Pin::new(&mut this.inner).poll_next(cx);
        if let Poll::Ready(None) = next {
            this.done = true;
        }
        next
    }
}

pub async fn body_deadline<B: MessageBody + 'static>(
    mut req: ServiceRequest,
    next: Next<B>,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let seconds = req
        .app_data::<Data<AppState>>()
        .map_or(crate::config::REQUEST_TIMEOUT_SECONDS_DEFAULT, |s| {
            s.settings.request_timeout_seconds
        });
    let fired = Arc::new(AtomicBool::new(false));
    let inner = req.take_payload();
    let stream: Pin<Box<dyn Stream<Item = Result<Bytes, PayloadError>>>> = Box::pin(Deadline {
        inner,
        sleep: Box::pin(tokio::time::sleep(Duration::from_secs(seconds))),
        fired: fired.clone(),
        done: false,
    });
    req.set_payload(Payload::from(stream));
    let res = next.call(req).await?;
    if !fired.load(Ordering::SeqCst) {
        return Ok(res.map_into_left_body());
    }
    let (req, _) = res.into_parts();
    let mut resp = HttpResponse::build(StatusCode::REQUEST_TIMEOUT)
        .content_type("text/plain; charset=utf-8")
        .body("The request arrived too slowly.");
    resp.head_mut().set_connection_type(ConnectionType::Close);
    Ok(ServiceResponse::new(req, resp).map_into_right_body())
}
