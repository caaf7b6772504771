//! Around every request (the outermost middleware): its request id, its tracing span, and its
//! metrics; and the metrics listener (`COFFER_METRICS_BIND`, README "Operations").
//!
//! The request id is the client's `X-Request-Id` when that is 1 to 128 characters of
//! `A-Za-z0-9._-`, otherwise a new UUIDv7; it is returned in the response's `X-Request-Id` and
//! is a field of the request's span, which covers the handler and its database work
//! (`DbPool::run` carries the span onto the blocking thread), so every log line of the request
//! names it. The span holds the method and the route template, never the raw path or query
//! (they may hold tokens).

use std::net::TcpListener;
use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Server, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{App, HttpResponse, HttpServer, web};
use tracing::Instrument;

use crate::db::DbPool;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Longest accepted incoming request id.
pub const REQUEST_ID_MAX: usize = 128;

/// The incoming id when it is acceptable (1 to 128 characters of `A-Za-z0-9._-`).
pub fn accepted_id(incoming: Option<&[u8]>) -> Option<&str> {
    let v = incoming?;
    let ok = (1..=REQUEST_ID_MAX).contains(&v.len())
        && v.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        std::str::from_utf8(v).ok()
    } else {
        None
    }
}

/// The request's id: the acceptable incoming one, or a new UUIDv7.
pub fn request_id(incoming: Option<&[u8]>) -> String {
    accepted_id(incoming).map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_string)
}

/// Whether a log line of `m`'s target and level may be written at all, whatever `RUST_LOG`
/// says: never the debug and trace lines of actix-web, whose extractors name the raw request
/// path when they refuse a request ("Failed during Query extractor deserialization. Request
/// path: …"), and a path may hold a payment page's token or whatever card number a client put
/// there. The logging of `coffer serve` (and the tests' capture) filters with it.
pub fn may_log(m: &tracing::Metadata<'_>) -> bool {
    let t = m.target();
    let actix_web = t == "actix_web" || t.starts_with("actix_web::");
    !(actix_web && *m.level() > tracing::Level::INFO)
}

pub async fn around(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let started = Instant::now();
    let id = request_id(req.headers().get(&REQUEST_ID).map(HeaderValue::as_bytes));
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %method,
        route = tracing::field::Empty,
    );
    let header = HeaderValue::from_str(&id).ok();
    let answered = next.call(req).instrument(span.clone()).await;
    let (status, route, result) = match answered {
        Ok(mut res) => {
            if let Some(h) = header {
                res.headers_mut().insert(REQUEST_ID, h);
            }
            let route = res.request().match_pattern();
            (res.status(), route, Ok(res.map_into_boxed_body()))
        }
        // A middleware's error (the app itself answers errors as responses): rendered here, to
        // carry the id too; its route is not known.
        Err(e) => {
            let mut rendered = e.error_response();
            if let Some(h) = header {
                rendered.headers_mut().insert(REQUEST_ID, h);
            }
            let status = rendered.status();
            (
                status,
                None,
                Err(actix_web::error::InternalError::from_response(e, rendered).into()),
            )
        }
    };
    let route = route.unwrap_or_else(|| crate::metrics::UNMATCHED_ROUTE.to_string());
    let seconds = started.elapsed().as_secs_f64();
    crate::metrics::http_request(&route, method.as_str(), status.as_u16(), seconds);
    span.record("route", route.as_str());
    span.in_scope(|| {
        tracing::debug!(
            target: "coffer::access",
            status = status.as_u16(),
            ms = (seconds * 1000.0 * 10.0).round() / 10.0,
            "answered"
        );
    });
    result
}

/// The metrics listener: `GET /metrics` alone, on its own address and worker, so that a scrape
/// never waits behind the API's connections and the API's port never shows the metrics.
pub fn metrics_server(listener: TcpListener, db: DbPool) -> std::io::Result<Server> {
    let db = web::Data::new(db);
    Ok(HttpServer::new(move || {
        App::new()
            .app_data(db.clone())
            .route("/metrics", web::get().to(scrape))
    })
    .workers(1)
    .listen(listener)?
    .run())
}

async fn scrape(db: web::Data<DbPool>) -> HttpResponse {
    let outbox = match db.run(crate::payments::callbacks::backlog).await {
        Ok(b) => Some((b.due, b.oldest_due_seconds)),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the outbox could not be read");
            None
        }
    };
    let snapshot = crate::metrics::Snapshot {
        writer_queue_depth: db.writer_queue_depth(),
        outbox,
    };
    match crate::metrics::render(&snapshot) {
        Ok(text) => HttpResponse::Ok()
            .content_type(crate::metrics::CONTENT_TYPE)
            .insert_header(("cache-control", "no-store"))
            .body(text),
        Err(_) => HttpResponse::InternalServerError().finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actix_web_debug_lines_are_never_logged() {
        use tracing::callsite::Identifier;
        use tracing::metadata::Kind;
        struct Site;
        impl tracing::callsite::Callsite for Site {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &tracing::Metadata<'_> {
                unreachable!()
            }
        }
        static SITE: Site = Site;
        let meta = |target: &'static str, level| {
            tracing::Metadata::new(
                "log",
                target,
                level,
                None,
                None,
                None,
                tracing::field::FieldSet::new(&[], Identifier(&SITE)),
                Kind::EVENT,
            )
        };
        use tracing::Level;
        assert!(!may_log(&meta("actix_web::types::query", Level::DEBUG)));
        assert!(!may_log(&meta("actix_web::types::path", Level::TRACE)));
        assert!(!may_log(&meta("actix_web", Level::DEBUG)));
        assert!(may_log(&meta("actix_web::app", Level::ERROR)));
        assert!(may_log(&meta("actix_web_lab", Level::DEBUG)));
        assert!(may_log(&meta("actix_server::worker", Level::DEBUG)));
        assert!(may_log(&meta("coffer::access", Level::DEBUG)));
        assert!(may_log(&meta("coffer::db", Level::TRACE)));
    }

    #[test]
    fn incoming_ids_are_kept_only_when_short_and_plain() {
        assert_eq!(accepted_id(Some(b"abc-DEF_1.2")), Some("abc-DEF_1.2"));
        let longest = "a".repeat(128);
        assert_eq!(
            accepted_id(Some(longest.as_bytes())),
            Some(longest.as_str())
        );
        assert_eq!(accepted_id(Some("a".repeat(129).as_bytes())), None);
        for bad in [
            &b""[..],
            b"a b",
            b"a/b",
            b"id\n",
            b"caf\xc3\xa9",
            b"{x}",
            b"a\"b",
        ] {
            assert_eq!(accepted_id(Some(bad)), None, "{bad:?}");
        }
        assert_eq!(accepted_id(None), None);
        let new = request_id(Some(b"no spaces allowed"));
        let parsed = uuid::Uuid::parse_str(&new).expect("a UUID");
        assert_eq!(parsed.get_version_num(), 7);
    }
}
