//! IXOPAY request signing: the `X-Signature` header (spec 3.1-3.3).
//!
//! ```text
//! message   = METHOD \n hex_lower(HASH(body)) \n CONTENT_TYPE \n DATE \n REQUEST_URI
//! signature = base64_std(HMAC-SHA512(shared_secret, message))
//! ```
//!
//! `HASH` is SHA-512, or MD5 in the legacy variant that the official PHP client
//! (v3.19.0) still uses for JSON requests, so a server must accept both
//! (spec 3.2). The same layout signs our responses and callbacks (spec 2.6, 3.4).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::{DateTime, NaiveDateTime, Utc};
use hmac::{Hmac, KeyInit, Mac};
use md5::Md5;
use sha2::{Digest, Sha512};
use subtle::{Choice, ConstantTimeEq};

/// The hash applied to the request body inside the signed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BodyHash {
    /// Current algorithm (spec 3.1).
    Sha512,
    /// Legacy algorithm, deprecated but still sent by the PHP client (spec 3.2).
    Md5,
}

/// Why a signature or its date was refused. All map to error code 1004
/// (invalid signature) at the API boundary (spec 3.4).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The signature matches neither the SHA-512 nor the MD5 layout.
    #[error("signature mismatch")]
    Mismatch,
    /// Neither `X-Date` nor `Date` was sent.
    #[error("missing Date or X-Date header")]
    MissingDate,
    /// The date header is not an IMF-fixdate.
    #[error("unparseable date header")]
    InvalidDate,
    /// The date is further than the allowed window from the server clock.
    #[error("date is {skew_secs}s away from server time (allowed {window_secs}s)")]
    DateSkew { skew_secs: i64, window_secs: u64 },
}

/// Computes the `X-Signature` value for a request, response or callback
/// (spec 3.1). `content_type` and `date` are the exact header values;
/// `uri` is path plus query, without scheme or host. A body-less GET signs the
/// empty body.
pub fn sign(
    secret: &str,
    method: &str,
    body: &[u8],
    content_type: &str,
    date: &str,
    uri: &str,
    hash: BodyHash,
) -> String {
    BASE64.encode(mac(secret, method, body, content_type, date, uri, hash))
}

/// Checks a given `X-Signature` against both accepted layouts (SHA-512 and
/// legacy MD5 body hash, spec 3.2) and returns the one that matched, so that
/// callbacks can reuse it ("inherit from request", spec 2.6).
///
/// `date_header_value` is the value chosen by [`pick_date`]. Both candidates
/// are always computed and compared in constant time. Surrounding whitespace
/// of `given_sig` is ignored.
pub fn verify(
    secret: &str,
    method: &str,
    body: &[u8],
    content_type: &str,
    date_header_value: &str,
    uri: &str,
    given_sig: &str,
) -> Result<BodyHash, SignatureError> {
    let given = given_sig.trim().as_bytes();
    let check = |hash| {
        let expected = sign(
            secret,
            method,
            body,
            content_type,
            date_header_value,
            uri,
            hash,
        );
        expected.as_bytes().ct_eq(given)
    };
    let sha512: Choice = check(BodyHash::Sha512);
    let md5: Choice = check(BodyHash::Md5);
    if bool::from(sha512) {
        Ok(BodyHash::Sha512)
    } else if bool::from(md5) {
        Ok(BodyHash::Md5)
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// Chooses the date to sign: `X-Date` takes precedence over `Date` (spec 3.3).
/// Empty header values count as absent.
pub fn pick_date<'a>(x_date: Option<&'a str>, date: Option<&'a str>) -> Option<&'a str> {
    let present = |v: Option<&'a str>| v.filter(|s| !s.trim().is_empty());
    present(x_date).or(present(date))
}

/// Parses an RFC 7231 IMF-fixdate, e.g. `Tue, 28 Apr 2026 15:23:40 GMT`, also
/// accepting the `UTC` suffix that the PHP client sends
/// (`Sat, 21 Nov 2026 07:38:04 UTC`, spec 3.3). The weekday must match the
/// date. Any other zone or format yields `None`.
/// A time as an IMF-fixdate (`Sat, 21 Nov 2026 07:38:04 GMT`).
pub fn http_date(now: DateTime<Utc>) -> String {
    now.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

pub fn parse_http_date(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    let rest = s.strip_suffix(" GMT").or_else(|| s.strip_suffix(" UTC"))?;
    NaiveDateTime::parse_from_str(rest, "%a, %d %b %Y %H:%M:%S")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Refuses a request date more than `window_secs` seconds before or after
/// `now` (`skew_secs` in the error is `now - date`: positive when the request
/// is in the past). No window is documented (spec 3.3); the caller chooses one.
pub fn check_skew(
    date: DateTime<Utc>,
    now: DateTime<Utc>,
    window_secs: u64,
) -> Result<(), SignatureError> {
    let skew_secs = (now - date).num_seconds();
    if skew_secs.unsigned_abs() <= window_secs {
        Ok(())
    } else {
        Err(SignatureError::DateSkew {
            skew_secs,
            window_secs,
        })
    }
}

/// The raw HMAC-SHA512 over the signed message.
fn mac(
    secret: &str,
    method: &str,
    body: &[u8],
    content_type: &str,
    date: &str,
    uri: &str,
    hash: BodyHash,
) -> Vec<u8> {
    let body_hash = match hash {
        BodyHash::Sha512 => hex::encode(Sha512::digest(body)),
        BodyHash::Md5 => hex::encode(Md5::digest(body)),
    };
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    for (i, part) in [method, &body_hash, content_type, date, uri]
        .into_iter()
        .enumerate()
    {
        if i > 0 {
            mac.update(b"\n");
        }
        mac.update(part.as_bytes());
    }
    mac.finalize().into_bytes().to_vec()
}

/// The signature of a lifecycle event (`X-Coffer-Signature`):
/// `base64(HMAC-SHA512(shared_secret, timestamp + "." + body))`, the timestamp in Unix seconds
/// as sent in `X-Coffer-Timestamp`.
pub fn lifecycle_signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    const CT: &str = "application/json; charset=utf-8";
    const DATE: &str = "Tue, 28 Apr 2026 15:23:40 GMT";
    const URI: &str = "/api/v3/transaction/YOUR-API-KEY-HERE/debit";
    const VECTOR: &str =
        "4ICq+hfHFA81dAJHcXoP2/Pb+nkp9GljLe2S+REN0vMBhbQYNQUHIw/YxUTEIWS5Uu5WgdDEc7keMtqS0mpnAA==";

    #[test]
    fn documented_test_vector() {
        assert_eq!(
            hex::encode(Sha512::digest(b"")),
            "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce\
             47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
        );
        assert_eq!(
            sign("", "POST", b"", CT, DATE, URI, BodyHash::Sha512),
            VECTOR
        );
        assert_eq!(
            verify("", "POST", b"", CT, DATE, URI, VECTOR),
            Ok(BodyHash::Sha512)
        );
    }

    #[test]
    fn message_layout_matches_an_independent_computation() {
        let body =
            br#"{"merchantTransactionId":"2019-09-02-0001","amount":"9.99","currency":"EUR"}"#;
        let message = format!(
            "POST\n{}\n{CT}\n{DATE}\n{URI}",
            hex::encode(Md5::digest(body))
        );
        let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(b"s3cr3t").expect("key");
        mac.update(message.as_bytes());
        let expected = BASE64.encode(mac.finalize().into_bytes());
        assert_eq!(
            sign("s3cr3t", "POST", body, CT, DATE, URI, BodyHash::Md5),
            expected
        );
    }

    #[test]
    fn legacy_md5_signature_is_accepted_and_reported() {
        let body = br#"{"amount":"1.00"}"#;
        let sig = sign("secret", "POST", body, CT, DATE, URI, BodyHash::Md5);
        assert_ne!(
            sig,
            sign("secret", "POST", body, CT, DATE, URI, BodyHash::Sha512)
        );
        assert_eq!(
            verify("secret", "POST", body, CT, DATE, URI, &sig),
            Ok(BodyHash::Md5)
        );
        // Header whitespace is tolerated.
        let padded = format!(" {sig} ");
        assert_eq!(
            verify("secret", "POST", body, CT, DATE, URI, &padded),
            Ok(BodyHash::Md5)
        );
    }

    #[test]
    fn tampering_is_refused() {
        let body = br#"{"amount":"1.00"}"#;
        for hash in [BodyHash::Sha512, BodyHash::Md5] {
            let sig = sign("secret", "POST", body, CT, DATE, URI, hash);
            assert_eq!(
                verify("secret", "POST", body, CT, DATE, URI, &sig),
                Ok(hash)
            );
            let refused = [
                verify(
                    "secret",
                    "POST",
                    br#"{"amount":"9.00"}"#,
                    CT,
                    DATE,
                    URI,
                    &sig,
                ),
                verify(
                    "secret",
                    "POST",
                    body,
                    CT,
                    DATE,
                    "/api/v3/transaction/other/debit",
                    &sig,
                ),
                verify(
                    "secret",
                    "POST",
                    body,
                    CT,
                    "Tue, 28 Apr 2026 15:23:41 GMT",
                    URI,
                    &sig,
                ),
                verify("secrex", "POST", body, CT, DATE, URI, &sig),
                verify("", "POST", body, CT, DATE, URI, &sig),
                verify("secret", "GET", body, CT, DATE, URI, &sig),
                verify("secret", "POST", body, "application/json", DATE, URI, &sig),
                verify("secret", "POST", body, CT, DATE, URI, ""),
                verify("secret", "POST", body, CT, DATE, URI, &sig[..sig.len() - 2]),
                verify("secret", "POST", body, CT, DATE, URI, "not base64 at all"),
            ];
            for r in refused {
                assert_eq!(r, Err(SignatureError::Mismatch));
            }
        }
    }

    #[test]
    fn x_date_takes_precedence() {
        assert_eq!(pick_date(Some("x"), Some("d")), Some("x"));
        assert_eq!(pick_date(None, Some("d")), Some("d"));
        assert_eq!(pick_date(Some("x"), None), Some("x"));
        assert_eq!(pick_date(Some("  "), Some("d")), Some("d"));
        assert_eq!(pick_date(None, None), None);
        assert_eq!(pick_date(Some(""), Some("")), None);
    }

    #[test]
    fn parses_gmt_and_utc_suffixes() {
        let gmt = parse_http_date("Tue, 28 Apr 2026 15:23:40 GMT").expect("GMT");
        assert_eq!(
            gmt,
            Utc.with_ymd_and_hms(2026, 4, 28, 15, 23, 40)
                .single()
                .expect("dt")
        );
        let utc = parse_http_date("Sat, 21 Nov 2026 07:38:04 UTC").expect("UTC");
        assert_eq!(
            utc,
            Utc.with_ymd_and_hms(2026, 11, 21, 7, 38, 4)
                .single()
                .expect("dt")
        );
        assert_eq!(
            parse_http_date("Mon, 01 Jan 2018 11:01:36 UTC"),
            parse_http_date("Mon, 01 Jan 2018 11:01:36 GMT")
        );
    }

    #[test]
    fn garbage_dates_are_refused() {
        for bad in [
            "",
            "GMT",
            "yesterday",
            "Tue, 28 Apr 2026 15:23:40",
            "Tue, 28 Apr 2026 15:23:40 CET",
            "Tue, 28 Apr 2026 15:23:40 +0000",
            "Wed, 28 Apr 2026 15:23:40 GMT",
            "Tue, 31 Apr 2026 15:23:40 GMT",
            "Tue, 28 Apr 2026 25:23:40 GMT",
            "2026-04-28T15:23:40Z",
            "Tuesday, 28-Apr-26 15:23:40 GMT",
            "Tue, 28 Foo 2026 15:23:40 GMT",
        ] {
            assert_eq!(parse_http_date(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn skew_window_in_both_directions() {
        let now = Utc
            .with_ymd_and_hms(2026, 4, 28, 15, 23, 40)
            .single()
            .expect("dt");
        assert_eq!(check_skew(now, now, 300), Ok(()));
        assert_eq!(check_skew(now - Duration::seconds(300), now, 300), Ok(()));
        assert_eq!(check_skew(now + Duration::seconds(300), now, 300), Ok(()));
        assert_eq!(
            check_skew(now - Duration::seconds(301), now, 300),
            Err(SignatureError::DateSkew {
                skew_secs: 301,
                window_secs: 300
            })
        );
        assert_eq!(
            check_skew(now + Duration::seconds(301), now, 300),
            Err(SignatureError::DateSkew {
                skew_secs: -301,
                window_secs: 300
            })
        );
        assert!(check_skew(now - Duration::days(400), now, 300).is_err());
    }
}
