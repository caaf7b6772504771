//! Callbacks (spec 2.6): a local receiver checks what Coffer sends, how it signs it, when it
//! retries, that a restart loses nothing, that two processes send each attempt once, which
//! targets are refused, and the console's retry.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use coffer::gateway::signature::{self, BodyHash};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

const CT: &str = "application/json; charset=utf-8";

/// One request the receiver got.
#[derive(Debug, Clone)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Received {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The body, which must be what the IXOPAY document's `transactionCallback` webhook says.
    pub(crate) fn json(&self) -> Value {
        if let Err(e) = crate::openapi::check_webhook("transactionCallback", self.body.as_bytes()) {
            panic!("{e}");
        }
        serde_json::from_str(&self.body).expect("callback body is JSON")
    }
}

/// A small HTTP/1.1 server on 127.0.0.1: `answer(n)` gives status and body for the n-th
/// (1-based) request carrying the same transaction uuid.
pub(crate) struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    pub(crate) async fn start(answer: fn(usize) -> (u16, &'static str)) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let got: Arc<Mutex<Vec<Received>>> = Arc::default();
        let g = got.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let g = g.clone();
                tokio::spawn(async move {
                    let Some(r) = read_request(&mut sock).await else {
                        return;
                    };
                    let uuid = serde_json::from_str::<Value>(&r.body)
                        .ok()
                        .and_then(|v| v["uuid"].as_str().map(str::to_string))
                        .unwrap_or_default();
                    let n = {
                        let mut list = g.lock().expect("lock");
                        list.push(r);
                        list.iter()
                            .filter(|x| x.body.contains(&format!("\"{uuid}\"")))
                            .count()
                    };
                    let (status, body) = answer(n);
                    let resp = format!(
                        "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(resp.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        Receiver { port, got }
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) fn all(&self) -> Vec<Received> {
        self.got.lock().expect("lock").clone()
    }

    pub(crate) fn for_uuid(&self, uuid: &str) -> Vec<Received> {
        self.all()
            .into_iter()
            .filter(|r| r.json()["uuid"] == uuid)
            .collect()
    }
}

async fn read_request(sock: &mut tokio::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_string();
    let target = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < len {
        let n = sock.read(&mut chunk).await.ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        at: Instant::now(),
        method,
        target,
        headers,
        body: String::from_utf8_lossy(&body).to_string(),
    })
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// A Transaction API call on `api_key`, signed with `secret` when one is given.
pub(crate) async fn api(
    app: &TestApp,
    api_key: &str,
    kind: &str,
    creds: (&str, &str),
    signed: Option<(&str, BodyHash)>,
    body: &Value,
) -> (StatusCode, Value) {
    let uri = format!("/api/v3/transaction/{api_key}/{kind}");
    let body = body.to_string();
    let mut req = app
        .client
        .post(app.url(&uri))
        .header("content-type", CT)
        .header("authorization", basic(creds.0, creds.1));
    if let Some((secret, hash)) = signed {
        let date = coffer::gateway::signature::http_date(chrono::Utc::now());
        let sig = signature::sign(secret, "POST", body.as_bytes(), CT, &date, &uri, hash);
        req = req.header("date", date).header("x-signature", sig);
    }
    let r = req.body(body).send().await.expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub(crate) async fn card(app: &TestApp, public_key: &str, pan: &str) -> String {
    crate::api_transactions::tokenize(app, public_key, pan).await
}

pub(crate) fn mtid() -> String {
    format!("cb-{}", coffer::ids::random_hex(6))
}

/// Waits (at most `secs`) until `f` holds.
pub(crate) async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(
            start.elapsed() < Duration::from_secs(secs),
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (status, attempts) of the callbacks of a transaction, and their attempts' outcomes.
fn callback_state(db: &coffer::db::DbPool, uuid: &str) -> Vec<(String, i32, Vec<String>)> {
    let mut c = db.get().expect("conn");
    coffer::models::callback::for_transaction(&mut c, uuid)
        .expect("callbacks")
        .into_iter()
        .map(|cb| {
            let outcomes = coffer::models::callback::attempts_of(&mut c, &cb.id)
                .expect("attempts")
                .into_iter()
                .map(|a| a.outcome)
                .collect();
            (cb.status, cb.attempts, outcomes)
        })
        .collect()
}

fn check_signed(r: &Received, secret: &str, uri: &str, hash: BodyHash) {
    assert_eq!(r.method, "POST");
    assert_eq!(r.target, uri);
    assert_eq!(r.header("content-type"), Some(CT), "exact content type");
    let date = r.header("date").expect("Date header");
    assert!(date.ends_with(" GMT"), "{date}");
    let when = signature::parse_http_date(date).expect("RFC 7231 date");
    assert!(
        (chrono::Utc::now() - when).num_seconds().abs() < 60,
        "{date}"
    );
    let expected = signature::sign(secret, "POST", r.body.as_bytes(), CT, date, uri, hash);
    assert_eq!(
        r.header("x-signature"),
        Some(expected.as_str()),
        "X-Signature recomputed with the connector's shared secret"
    );
}

fn fail_twice(n: usize) -> (u16, &'static str) {
    match n {
        1 => (500, "server error"),
        2 => (200, "nope"),
        _ => (200, " OK\n"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_twice_gets_three_signed_attempts_with_backoff() {
    let app = TestApp::spawn_with(true, |s| s.callback_retry_base_seconds = 0.5).await;
    let rx = Receiver::start(fail_twice).await;
    let token = card(&app, "demo-shop-signed-public", "4111111111111111").await;
    let id = mtid();
    let body = json!({
        "merchantTransactionId": id, "amount": "9.99", "currency": "EUR",
        "transactionToken": token, "callbackUrl": rx.url("/hooks/coffer?shop=1&x=%20y"),
        "extraData": {"order": "A-1"}, "merchantMetaData": "meta-1",
    });
    // The request is signed with the legacy MD5 body hash: the callbacks inherit it.
    let (s, v) = api(
        &app,
        "demo-shop-signed",
        "debit",
        ("shop-api", "shop-api-demo"),
        Some(("demo-signed-secret", BodyHash::Md5)),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    until(20, "three attempts", || rx.for_uuid(&uuid).len() >= 3).await;
    let db = app.db();
    until(10, "delivered", || {
        callback_state(&db, &uuid).first().map(|c| c.0.as_str()) == Some("delivered")
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    let got = rx.for_uuid(&uuid);
    assert_eq!(got.len(), 3, "acknowledged on the third: no fourth attempt");
    for r in &got {
        check_signed(
            r,
            "demo-signed-secret",
            "/hooks/coffer?shop=1&x=%20y",
            BodyHash::Md5,
        );
        assert_eq!(r.body, got[0].body, "the same bytes on every attempt");
    }
    let b = got[0].json();
    assert_eq!(b["result"], "OK");
    assert_eq!(b["uuid"], uuid);
    assert_eq!(b["merchantTransactionId"], id);
    assert_eq!(b["purchaseId"], v["purchaseId"]);
    assert_eq!(b["transactionType"], "DEBIT");
    assert_eq!(b["paymentMethod"], "Creditcard");
    assert_eq!(b["amount"], "9.99");
    assert_eq!(b["currency"], "EUR");
    assert_eq!(b["returnData"]["lastFourDigits"], "1111");
    assert_eq!(b["returnData"]["firstSixDigits"], "411111");
    assert_eq!(b["extraData"]["order"], "A-1");
    assert_eq!(b["merchantMetaData"], "meta-1");
    assert!(b.get("errors").is_none());
    assert!(
        !got[0].body.contains("4111111111111111"),
        "never the number"
    );
    // Backoff: base 0.5 s, then 1 s (plus at most a poll interval and some slack).
    let gap1 = got[1].at - got[0].at;
    let gap2 = got[2].at - got[1].at;
    assert!(gap1 >= Duration::from_millis(450), "{gap1:?}");
    assert!(gap1 < Duration::from_millis(2000), "{gap1:?}");
    assert!(gap2 >= Duration::from_millis(950), "{gap2:?}");
    assert!(gap2 < Duration::from_millis(2800), "{gap2:?}");
    assert!(gap2 > gap1, "the interval doubles: {gap1:?} then {gap2:?}");
    let state = callback_state(&db, &uuid);
    assert_eq!(
        state,
        vec![(
            "delivered".to_string(),
            3,
            vec!["rejected".into(), "rejected".into(), "delivered".into()]
        )]
    );
}

#[tokio::test]
async fn a_declined_registration_with_a_profile_sends_errors_and_profile_data() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(|_| (200, "OK")).await;
    // Approved with a profile: customerProfileData in the callback, SHA-512 signature.
    let token = card(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "10", "currency": "JPY",
                "transactionToken": token, "withRegister": true, "callbackUrl": rx.url("/cb"),
                "customerProfileData": {"customerIdentification": "cb-cust", "markAsPreferred": true}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ok_uuid = v["uuid"].as_str().expect("uuid").to_string();
    // Declined: result ERROR with errors[{message, code, …}].
    let token = card(&app, "demo-shop-public", "4000000000000002").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR",
                "transactionToken": token, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], false);
    let err_uuid = v["uuid"].as_str().expect("uuid").to_string();
    until(15, "both callbacks", || {
        !rx.for_uuid(&ok_uuid).is_empty() && !rx.for_uuid(&err_uuid).is_empty()
    })
    .await;
    let ok = &rx.for_uuid(&ok_uuid)[0];
    check_signed(ok, "demo-shop-cards-secret", "/cb", BodyHash::Sha512);
    let b = ok.json();
    assert_eq!(b["amount"], "10", "JPY has no minor unit");
    assert_eq!(
        b["customerProfileData"]["customerIdentification"],
        "cb-cust"
    );
    assert_eq!(b["customerProfileData"]["markAsPreferred"], true);
    assert!(
        b["customerProfileData"]["paymentToken"]
            .as_str()
            .is_some_and(|t| t.starts_with("pt::"))
    );
    assert!(
        b["customerProfileData"]["profileGuid"]
            .as_str()
            .is_some_and(|g| !g.is_empty())
    );
    let e = rx.for_uuid(&err_uuid)[0].json();
    assert_eq!(e["result"], "ERROR");
    assert_eq!(e["errors"][0]["code"], 2003);
    assert!(
        e["errors"][0]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty())
    );
    assert!(e["errors"][0].get("errorMessage").is_none());
    // A transaction without callbackUrl gets none.
    let token = card(&app, "demo-shop-public", "4111111111111111").await;
    let (_, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": token}),
    )
    .await;
    let none_uuid = v["uuid"].as_str().expect("uuid").to_string();
    assert!(callback_state(&app.db(), &none_uuid).is_empty());
}

#[tokio::test]
async fn refused_targets_are_refused_at_the_api_and_at_delivery() {
    let app = TestApp::spawn_with(true, |s| {
        s.callback_allow_private = Some(coffer::gateway::target::AllowPrivate::None);
    })
    .await;
    let rx = Receiver::start(|_| (200, "OK")).await;
    for url in [
        "ftp://merchant.example/cb".to_string(),
        "http://10.0.0.1/".into(),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]/".into(),
        "http://[::ffff:127.0.0.1]/".into(),
        rx.url("/cb"),
    ] {
        let token = card(&app, "demo-shop-public", "4111111111111111").await;
        let (s, v) = api(
            &app,
            "demo-shop-cards",
            "debit",
            ("shop-api", "shop-api-demo"),
            None,
            &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                    "transactionToken": token, "callbackUrl": url}),
        )
        .await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {v}");
        assert_eq!(v["errorCode"], 1002, "{url}: {v}");
        assert!(
            v["errorMessage"]
                .as_str()
                .is_some_and(|m| m.starts_with("callbackUrl")),
            "{v}"
        );
    }
    // A name that resolves to loopback passes the API, and is refused when sending.
    let token = card(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                "transactionToken": token,
                "callbackUrl": format!("http://localhost:{}/cb", rx.port)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    let db = app.db();
    until(10, "the refused attempt", || {
        callback_state(&db, &uuid).first().map(|c| c.0.as_str()) == Some("failed")
    })
    .await;
    assert_eq!(
        callback_state(&db, &uuid),
        vec![("failed".to_string(), 1, vec!["refused".to_string()])]
    );
    assert!(rx.all().is_empty(), "nothing reached the receiver");
}

#[tokio::test]
async fn demo_mode_allows_loopback_targets() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(|_| (200, "OK")).await;
    let token = card(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                "transactionToken": token,
                "callbackUrl": format!("http://localhost:{}/cb", rx.port)}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    until(10, "delivery to localhost", || {
        rx.for_uuid(&uuid).len() == 1
    })
    .await;
}

#[tokio::test]
async fn a_failed_callback_is_retried_from_the_console_and_foreign_ones_are_404() {
    let app = TestApp::spawn_with(true, |s| s.callback_max_attempts = 1).await;
    let rx = Receiver::start(|n| if n == 1 { (503, "busy") } else { (200, "OK") }).await;
    let token = card(&app, "demo-shop-public", "4111111111111111").await;
    let (_, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                "transactionToken": token, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    // A Globex transaction with a callback too.
    let token = card(&app, "demo-globex-public", "4111111111111111").await;
    let (_, gv) = api(
        &app,
        "demo-globex-cards",
        "debit",
        ("globex-api", "globex-api-demo"),
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                "transactionToken": token, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    let g_uuid = gv["uuid"].as_str().expect("uuid").to_string();
    let db = app.db();
    until(10, "failed after one attempt", || {
        callback_state(&db, &uuid).first().map(|c| c.0.as_str()) == Some("failed")
    })
    .await;
    let cb_id = {
        let mut c = db.get().expect("conn");
        coffer::models::callback::for_transaction(&mut c, &uuid).expect("cbs")[0]
            .id
            .clone()
    };
    let g_cb_id = {
        let mut c = db.get().expect("conn");
        until(10, "globex callback", || {
            !coffer::models::callback::for_transaction(&mut c, &g_uuid)
                .expect("cbs")
                .is_empty()
        })
        .await;
        coffer::models::callback::for_transaction(&mut c, &g_uuid).expect("cbs")[0]
            .id
            .clone()
    };
    // The service shows the attempt to the merchant admin, and not to another tenant.
    {
        let mut c = db.get().expect("conn");
        let merchant = actor(&mut c, "merchant");
        let views =
            coffer::payments::callbacks::for_transaction(&mut c, &merchant, &uuid).expect("view");
        assert_eq!(views.len(), 1);
        assert_eq!(views[0].attempts.len(), 1);
        assert_eq!(views[0].attempts[0].http_status, Some(503));
        assert_eq!(
            views[0].attempts[0].response_excerpt.as_deref(),
            Some("busy")
        );
        assert!(matches!(
            coffer::payments::callbacks::for_transaction(&mut c, &merchant, &g_uuid),
            Err(coffer::error::ServiceError::NotFound)
        ));
    }
    app.login_ok("merchant", "merchant-demo").await;
    // Another tenant's callback: 404, and it stays as it is.
    let r = app
        .post_form(
            &format!("/transactions/{g_uuid}/callbacks/{g_cb_id}/retry"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Acme's transaction with Globex's callback id: 404 as well.
    let r = app
        .post_form(
            &format!("/transactions/{uuid}/callbacks/{g_cb_id}/retry"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Without the CSRF token: 403.
    let r = app
        .post_form_raw(
            &format!("/transactions/{uuid}/callbacks/{cb_id}/retry"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(callback_state(&db, &uuid)[0].0, "failed");
    // The transaction page shows the failed attempt and offers the retry.
    let (status, page) = app.get_html(&format!("/transactions/{uuid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Callbacks") && page.contains(">failed<"),
        "{page}"
    );
    assert!(page.contains("<td class=\"num\">503</td>"), "{page}");
    let action = format!("/transactions/{uuid}/callbacks/{cb_id}/retry");
    assert!(page.contains(&format!("action=\"{action}\"")), "{page}");
    let r = app.post_form(&action, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/transactions/{uuid}"));
    until(10, "delivered after the retry", || {
        callback_state(&db, &uuid).first().map(|c| c.0.as_str()) == Some("delivered")
    })
    .await;
    assert_eq!(
        callback_state(&db, &uuid),
        vec![(
            "delivered".to_string(),
            2,
            vec!["rejected".to_string(), "delivered".to_string()]
        )]
    );
    assert_eq!(rx.for_uuid(&uuid).len(), 2);
    let (_, page) = app.get_html(&format!("/transactions/{uuid}")).await;
    assert!(page.contains(">delivered<"), "{page}");
    assert!(
        !page.contains(&action),
        "no retry button once delivered: {page}"
    );
    // The retry is in the audit log.
    let (_, audit) = app.get_html("/audit").await;
    assert!(
        audit.contains("Retried the callback of transaction"),
        "audit entry"
    );
    // A delivered callback cannot be retried: a flash says so, nothing is sent.
    let r = app
        .post_form(
            &format!("/transactions/{uuid}/callbacks/{cb_id}/retry"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.for_uuid(&uuid).len(), 2);
    // The Globex callback was never touched by the refused retries.
    let g = callback_state(&db, &g_uuid);
    assert_eq!(g[0].1, 1, "{g:?}");
}

/// The console actor of a demo user, as the session would load it.
fn actor(c: &mut coffer::db::DbConnection, username: &str) -> coffer::domain::Actor {
    use coffer::db::schema::users;
    use diesel::prelude::*;
    let (id, epoch): (String, i32) = users::table
        .filter(users::username.eq(username))
        .select((users::id, users::session_epoch))
        .first(c)
        .expect("user");
    coffer::console::auth::load_actor(c, &id, epoch)
        .expect("load")
        .expect("actor")
}

#[test]
fn the_partial_lists_attempts_and_the_retry_form() {
    use askama::Template;
    use coffer::models::callback::{Attempt, Callback};
    let at = chrono::NaiveDate::from_ymd_opt(2026, 11, 21)
        .and_then(|d| d.and_hms_opt(7, 38, 4))
        .expect("date");
    let cb = Callback {
        id: "cb1".into(),
        transaction_uuid: Some("abcdef0123456789abcd".into()),
        connector_id: "k".into(),
        merchant_id: "m".into(),
        tenant_path: "/t/".into(),
        url: "https://merchant.example/cb".into(),
        body: "{}".into(),
        body_hash: "sha512".into(),
        status: "failed".into(),
        attempts: 1,
        next_attempt_at: at,
        locked_until: None,
        locked_by: None,
        last_error: Some("HTTP 500 without OK".into()),
        created_at: at,
        updated_at: at,
        delivered_at: None,
        event_type: None,
    };
    let attempt = Attempt {
        id: "a1".into(),
        callback_id: "cb1".into(),
        attempt: 1,
        started_at: at,
        duration_ms: 12,
        http_status: Some(500),
        outcome: "rejected".into(),
        response_excerpt: Some("<b>boom</b>".into()),
        error: None,
        worker: "w".into(),
    };
    let page = coffer::web::callbacks::CallbacksPartial {
        ctx: coffer::web::ctx::PageCtx {
            username: "merchant".into(),
            role: coffer::domain::Role::MerchantAdmin,
            csrf: "tok123".into(),
            flashes: vec![],
            nav: "transactions",
        },
        tx_uuid: "abcdef0123456789abcd".into(),
        callbacks: vec![coffer::payments::callbacks::CallbackView {
            callback: cb,
            attempts: vec![attempt],
        }],
    };
    let html = page.render().expect("render");
    assert!(html.contains("2026-11-21 07:38:04"), "{html}");
    assert!(html.contains("<td class=\"num\">500</td>"), "{html}");
    assert!(html.contains("rejected"));
    assert!(html.contains("&#60;b&#62;boom"), "escaped excerpt: {html}");
    assert!(!html.contains("<b>boom"), "escaped excerpt: {html}");
    assert!(html.contains("action=\"/transactions/abcdef0123456789abcd/callbacks/cb1/retry\""));
    assert!(html.contains("name=\"csrf_token\" value=\"tok123\""));
}

// ---------- real processes ----------

use crate::server::{Backend, Reply, transaction};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_between_attempts_still_delivers() {
    let backend = Backend::new();
    let rx = Receiver::start(|n| if n == 1 { (500, "down") } else { (200, "OK") }).await;
    let env = [("COFFER_CALLBACK_RETRY_BASE_SECONDS", "1")];
    let mut p = backend.start_with("one", &env).await;
    let client = crate::server::client();
    let token = crate::server::tokenize(&client, &p.addr, "4111111111111111")
        .await
        .map_err(|_| "tokenize")
        .expect("token");
    let reply = transaction(
        &client,
        &p.addr,
        "debit",
        &json!({"merchantTransactionId": mtid(), "amount": "2.00", "currency": "EUR",
                "transactionToken": token, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    let Reply::Answer(s, v) = reply else {
        panic!("no answer")
    };
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    let db = coffer::db::DbPool::connect(&backend.settings("one").database_url(), 2).expect("db");
    until(20, "the first attempt recorded", || {
        callback_state(&db, &uuid)
            .first()
            .is_some_and(|c| c.2.len() == 1)
    })
    .await;
    p.kill();
    assert_eq!(rx.for_uuid(&uuid).len(), 1);
    let _p = backend.start_with("one", &env).await;
    until(30, "delivery by the restarted process", || {
        callback_state(&db, &uuid).first().map(|c| c.0.as_str()) == Some("delivered")
    })
    .await;
    assert_eq!(rx.for_uuid(&uuid).len(), 2);
    assert_eq!(
        callback_state(&db, &uuid)[0].2,
        vec!["rejected".to_string(), "delivered".to_string()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_on_one_postgresql_make_each_attempt_once() {
    if !is_postgres() {
        eprintln!(
            "skipped: set COFFER_TEST_DATABASE_URL=postgres://… to run this test (SQLite is one process's file)"
        );
        return;
    }
    let backend = Backend::new();
    let rx = Receiver::start(|n| if n == 1 { (500, "later") } else { (200, "OK") }).await;
    let env = [
        ("COFFER_CALLBACK_RETRY_BASE_SECONDS", "0.3"),
        ("COFFER_CALLBACK_POLL_MS", "50"),
    ];
    let a = backend.start_with("a", &env).await;
    let b = backend.start_with("b", &env).await;
    let client = crate::server::client();
    let mut uuids = vec![];
    for i in 0..30 {
        let base = if i % 2 == 0 { &a.addr } else { &b.addr };
        let token = crate::server::tokenize(&client, base, &crate::server::random_pan())
            .await
            .map_err(|_| "tokenize")
            .expect("token");
        let Reply::Answer(s, v) = transaction(
            &client,
            base,
            "debit",
            &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                    "transactionToken": token, "callbackUrl": rx.url("/cb")}),
        )
        .await
        else {
            panic!("no answer")
        };
        assert_eq!(s, StatusCode::OK, "{v}");
        uuids.push(v["uuid"].as_str().expect("uuid").to_string());
    }
    let db = coffer::db::DbPool::connect(&backend.settings("a").database_url(), 2).expect("db");
    until(60, "all delivered", || {
        uuids
            .iter()
            .all(|u| callback_state(&db, u).first().map(|c| c.0.as_str()) == Some("delivered"))
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = db.get().expect("conn");
    let mut workers = std::collections::BTreeSet::new();
    for u in &uuids {
        assert_eq!(
            rx.for_uuid(u).len(),
            2,
            "{u}: one failed attempt, one acknowledged"
        );
        let cbs = coffer::models::callback::for_transaction(&mut c, u).expect("cbs");
        assert_eq!(cbs.len(), 1);
        let attempts = coffer::models::callback::attempts_of(&mut c, &cbs[0].id).expect("a");
        let numbers: Vec<i32> = attempts.iter().map(|a| a.attempt).collect();
        assert_eq!(numbers, [1, 2], "{u}");
        workers.extend(attempts.into_iter().map(|a| a.worker));
    }
    assert!(workers.len() >= 2, "both processes delivered: {workers:?}");
}

fn always_ok(_: usize) -> (u16, &'static str) {
    (200, "OK")
}

/// A PENDING transaction sends no callback; the hosted page's payment and the issuer's Deny
/// each send one, signed, once the outcome is final (written with it, through `finalize`).
#[tokio::test]
async fn hosted_page_payments_and_3ds_decisions_send_their_callback_when_final() {
    let rx = Receiver::start(always_ok).await;
    let app = TestApp::spawn_with(true, |s| s.callback_poll_ms = 50).await;
    let db = app.db();

    let (uuid, path) =
        crate::checkout::page_debit(&app, json!({"callbackUrl": rx.url("/cb/page")})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(rx.for_uuid(&uuid).is_empty(), "no callback while PENDING");
    assert!(callback_state(&db, &uuid).is_empty());

    let b = client();
    let mut fields = crate::checkout::new_card("4111111111111111");
    fields.push(("action", "pay"));
    let r = crate::checkout::submit(&b, &app, &path, &path, &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    until(10, "the page payment's callback", || {
        rx.for_uuid(&uuid).len() == 1
    })
    .await;
    let got = rx.for_uuid(&uuid);
    check_signed(
        &got[0],
        "demo-shop-cards-secret",
        "/cb/page",
        BodyHash::Sha512,
    );
    let body = got[0].json();
    assert_eq!(body["result"], "OK", "{body}");
    assert_eq!(body["transactionType"], "DEBIT", "{body}");
    assert_eq!(body["amount"], "12.50", "{body}");
    assert_eq!(body["returnData"]["lastFourDigits"], "1111", "{body}");
    assert!(!got[0].body.contains("4111111111111111"));

    // 3-D Secure card through the API, denied at the issuer: one callback, error 2021.
    let card = card(&app, "demo-shop-public", "4000000000003220").await;
    let (uuid, path) = crate::checkout::challenged(
        &app,
        json!({"transactionToken": card, "callbackUrl": rx.url("/cb/3ds")}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        rx.for_uuid(&uuid).is_empty(),
        "no callback while challenged"
    );
    let r = crate::checkout::decide(&app, &path, "deny").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    until(10, "the denial's callback", || {
        rx.for_uuid(&uuid).len() == 1
    })
    .await;
    let body = rx.for_uuid(&uuid)[0].json();
    assert_eq!(body["result"], "ERROR", "{body}");
    assert_eq!(body["errors"][0]["code"], 2021, "{body}");
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(rx.for_uuid(&uuid).len(), 1, "exactly one callback");
}

/// Nobody comes back to a hosted page: each process's background loop expires it (2005) and
/// the callback says so, without anyone opening the page again.
#[tokio::test]
async fn an_abandoned_hosted_page_expires_in_the_background_and_sends_its_callback() {
    let rx = Receiver::start(always_ok).await;
    let app = TestApp::spawn_with(true, |s| s.callback_poll_ms = 50).await;
    let (uuid, _path) =
        crate::checkout::page_debit(&app, json!({"callbackUrl": rx.url("/cb/expired")})).await;
    {
        use diesel::RunQueryDsl;
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::sql_query(format!(
            "UPDATE payment_sessions SET expires_at = '2000-01-01 00:00:00' WHERE transaction_uuid = '{uuid}'"
        ))
        .execute(&mut *c)
        .expect("expire");
    }
    until(15, "the expiry's callback", || {
        rx.for_uuid(&uuid).len() == 1
    })
    .await;
    let body = rx.for_uuid(&uuid)[0].json();
    assert_eq!(body["result"], "ERROR", "{body}");
    assert_eq!(body["errors"][0]["code"], 2005, "{body}");
    let st = crate::checkout::status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "ERROR", "{st}");
}
