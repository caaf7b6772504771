//! The API reference: the OpenAPI 3.1 documents of the IXOPAY-compatible APIs
//! (`openapi/ixopay.json`) and of the Monri Customers API v2 (`openapi/monri.json`), compiled
//! into the binary and served without login at `GET /openapi/{ixopay,monri}.json`, with an
//! ETag (a revalidation answers 304). The console's `/docs/api` renders the same documents
//! ([`reference`]). The integration tests validate every API response against them.

pub mod reference;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};
use sha2::{Digest, Sha256};

/// One OpenAPI document as the binary holds it.
pub struct Spec {
    /// `ixopay` or `monri`: the file name and the anchor prefix of the console page.
    pub name: &'static str,
    pub json: &'static str,
}

pub const IXOPAY: Spec = Spec {
    name: "ixopay",
    json: include_str!("../../../openapi/ixopay.json"),
};

pub const MONRI: Spec = Spec {
    name: "monri",
    json: include_str!("../../../openapi/monri.json"),
};

/// Both documents, in the order the console shows them.
pub const ALL: [Spec; 2] = [IXOPAY, MONRI];

impl Spec {
    /// Where the document is served.
    pub fn url(&self) -> String {
        format!("/openapi/{}.json", self.name)
    }

    /// A strong ETag: the first 16 bytes of the document's SHA-256, in hex.
    pub fn etag(&self) -> String {
        let digest = Sha256::digest(self.json.as_bytes());
        format!("\"{}\"", hex::encode(&digest[..16]))
    }
}

fn serve(spec: &Spec, req: &HttpRequest) -> HttpResponse {
    let etag = spec.etag();
    let matches = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == etag
        });
    let mut b = if matches {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    b.insert_header((header::ETAG, etag))
        // Public and revalidated after five minutes: a new release changes the ETag.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    if matches {
        b.finish()
    } else {
        b.content_type("application/json").body(spec.json)
    }
}

/// `GET /openapi/ixopay.json`.
pub async fn ixopay(req: HttpRequest) -> HttpResponse {
    serve(&IXOPAY, &req)
}

/// `GET /openapi/monri.json`.
pub async fn monri(req: HttpRequest) -> HttpResponse {
    serve(&MONRI, &req)
}
