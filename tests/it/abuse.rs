//! Abuse that must not slow down or expose the payment APIs (issue 12, "The payment APIs keep
//! their speed under abuse"): the per-root-tenant card fingerprint, tokenize rate limits, slow
//! requests and the connection bound, and password hashing on its own bounded pool.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const OUTLET: (&str, &str) = ("outlet-api", "outlet-api-demo");
const GLOBEX: (&str, &str) = ("globex-api", "globex-api-demo");

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn card(number: &str) -> Value {
    json!({"cardHolder": "Ann Smith", "number": number, "cvv": "123", "month": "12", "year": "2030"})
}

async fn tokenize(app: &TestApp, public_key: &str, number: &str) -> String {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/paymentjs/{public_key}/tokenize")))
        .json(&card(number))
        .send()
        .await
        .expect("tokenize");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["token"].as_str().expect("token").to_string()
}

/// A debit of a fresh payment.js token of `number` on `api_key`; returns the answer.
async fn debit(
    app: &TestApp,
    public_key: &str,
    api_key: &str,
    creds: (&str, &str),
    number: &str,
) -> Value {
    let token = tokenize(app, public_key, number).await;
    let body = json!({
        "merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
        "amount": "9.99", "currency": "EUR", "transactionToken": token,
    });
    let r = app
        .client
        .post(app.url(&format!("/api/v3/transaction/{api_key}/debit")))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic(creds.0, creds.1))
        .body(body.to_string())
        .send()
        .await
        .expect("debit");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], true, "{v}");
    v
}

fn fingerprint_of(answer: &Value) -> String {
    let fp = answer["returnData"]["fingerprint"]
        .as_str()
        .unwrap_or_else(|| panic!("no fingerprint in {answer}"))
        .to_string();
    assert_eq!(fp.len(), 64, "{fp}");
    fp
}

// ---------- 4. the card fingerprint is keyed per root tenant ----------

#[tokio::test]
async fn the_card_fingerprint_is_the_same_within_a_root_tenant_and_differs_across_roots() {
    let app = TestApp::demo().await;
    const CARD: &str = "4111111111111111";
    let shop = debit(&app, "demo-shop-public", "demo-shop-cards", SHOP, CARD).await;
    let outlet = debit(
        &app,
        "demo-outlet-public",
        "demo-outlet-cards",
        OUTLET,
        CARD,
    )
    .await;
    let globex = debit(
        &app,
        "demo-globex-public",
        "demo-globex-cards",
        GLOBEX,
        CARD,
    )
    .await;
    let other = debit(
        &app,
        "demo-shop-public",
        "demo-shop-cards",
        SHOP,
        "4242424242424242",
    )
    .await;
    let (fs, fo, fg, fx) = (
        fingerprint_of(&shop),
        fingerprint_of(&outlet),
        fingerprint_of(&globex),
        fingerprint_of(&other),
    );
    // Acme Shop (Acme Group) and Acme Outlet (Acme Retail, below Acme Group): one root.
    assert_eq!(fs, fo, "same card, same root tenant");
    assert_ne!(
        fs, fg,
        "Acme and Globex must not be able to correlate a card"
    );
    assert_ne!(fs, fx, "another card");
    // The stored fingerprint (the vault's own MAC key, for finding a card again) is never the
    // one shown.
    let stored = coffer::gateway::vault::fingerprint(
        crate::api_transactions::keyring(&app)
            .mac_key()
            .expect("mac key"),
        CARD,
    );
    assert!(![&fs, &fg].contains(&&stored));
    // The status API shows what the debit answered.
    let r = app
        .client
        .get(app.url(&format!(
            "/api/v3/status/demo-shop-cards/getByUuid/{}",
            shop["uuid"].as_str().expect("uuid")
        )))
        .header("authorization", basic(SHOP.0, SHOP.1))
        .send()
        .await
        .expect("status");
    let v: Value = r.json().await.expect("json");
    assert_eq!(fingerprint_of(&v), fs, "{v}");
}

// ---------- 2. tokenize rate limits ----------

async fn tokenize_from(
    app: &TestApp,
    public_key: &str,
    forwarded: Option<&str>,
) -> reqwest::Response {
    tokenize_at(&app.addr, public_key, forwarded).await
}

async fn tokenize_at(base: &str, public_key: &str, forwarded: Option<&str>) -> reqwest::Response {
    let mut r = client()
        .post(format!("{base}/api/v3/paymentjs/{public_key}/tokenize"))
        .json(&card("4111111111111111"));
    if let Some(f) = forwarded {
        r = r.header("X-Forwarded-For", f);
    }
    r.send().await.expect("tokenize")
}

/// Asserts the answer is the limit's: 429, the endpoint's JSON error body (1009), CORS and a
/// `Retry-After` within the minute; returns the message.
async fn assert_limited(r: reqwest::Response) -> String {
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry: u32 = r
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    assert_eq!(
        r.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("*")
    );
    let v: Value = r.json().await.expect("JSON error body");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["errorCode"], 1009, "{v}");
    v["errorMessage"].as_str().expect("message").to_string()
}

async fn assert_ok(r: reqwest::Response) {
    let s = r.status();
    assert_eq!(s, StatusCode::OK, "{}", r.text().await.unwrap_or_default());
}

fn count_card_tokens(app: &TestApp) -> i64 {
    use diesel::{QueryDsl, RunQueryDsl};
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::db::schema::card_tokens::table
        .count()
        .get_result(&mut c)
        .expect("count")
}

#[tokio::test]
async fn tokenize_is_limited_per_address_and_per_key_independently() {
    let app = TestApp::spawn_with(true, |s| {
        s.tokenize_limit_per_address = 3;
        s.tokenize_limit_per_key = 5;
        s.trusted_proxy_header = Some("X-Forwarded-For".into());
    })
    .await;
    for _ in 0..3 {
        assert_ok(tokenize_from(&app, "demo-shop-public", Some("198.51.100.1")).await).await;
    }
    let m =
        assert_limited(tokenize_from(&app, "demo-shop-public", Some("198.51.100.1")).await).await;
    assert!(m.contains("address"), "{m}");
    // The address's limit holds for every key.
    assert_limited(tokenize_from(&app, "demo-outlet-public", Some("198.51.100.1")).await).await;
    // Another address is not limited by the first one's count; the key has 2 of 5 left.
    for _ in 0..2 {
        assert_ok(tokenize_from(&app, "demo-shop-public", Some("198.51.100.2")).await).await;
    }
    let m =
        assert_limited(tokenize_from(&app, "demo-shop-public", Some("198.51.100.2")).await).await;
    assert!(m.contains("public integration key"), "{m}");
    assert_limited(tokenize_from(&app, "demo-shop-public", Some("198.51.100.3")).await).await;
    // Another key is not limited by the first one's count.
    assert_ok(tokenize_from(&app, "demo-outlet-public", Some("198.51.100.3")).await).await;
    // Refused requests stored nothing.
    assert_eq!(count_card_tokens(&app), 6);
}

#[tokio::test]
async fn zero_switches_each_tokenize_limit_off() {
    // Address limit off, key limit on.
    let app = TestApp::spawn_with(true, |s| {
        s.tokenize_limit_per_address = 0;
        s.tokenize_limit_per_key = 4;
    })
    .await;
    for _ in 0..4 {
        assert_ok(tokenize_from(&app, "demo-shop-public", None).await).await;
    }
    assert_limited(tokenize_from(&app, "demo-shop-public", None).await).await;
    // Eight from one address in all: no address limit.
    for _ in 0..4 {
        assert_ok(tokenize_from(&app, "demo-outlet-public", None).await).await;
    }
    drop(app);
    // Key limit off, address limit on (different addresses through the trusted header).
    let app = TestApp::spawn_with(true, |s| {
        s.tokenize_limit_per_address = 2;
        s.tokenize_limit_per_key = 0;
        s.trusted_proxy_header = Some("X-Forwarded-For".into());
    })
    .await;
    for i in 0..8 {
        let from = format!("203.0.113.{}", i / 2);
        assert_ok(tokenize_from(&app, "demo-shop-public", Some(&from)).await).await;
    }
    assert_limited(tokenize_from(&app, "demo-shop-public", Some("203.0.113.0")).await).await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_does_not_escape_the_address_limit() {
    let app = TestApp::spawn_with(true, |s| {
        s.tokenize_limit_per_address = 2;
        s.tokenize_limit_per_key = 0;
    })
    .await;
    assert_ok(tokenize_from(&app, "demo-shop-public", Some("192.0.2.1")).await).await;
    assert_ok(tokenize_from(&app, "demo-shop-public", Some("192.0.2.2")).await).await;
    // Without COFFER_TRUSTED_PROXY_HEADER the TCP peer is the client, whatever the header says.
    assert_limited(tokenize_from(&app, "demo-shop-public", Some("192.0.2.3")).await).await;
    assert_limited(tokenize_from(&app, "demo-shop-public", None).await).await;
}

#[tokio::test]
async fn two_apps_on_one_postgres_database_share_the_tokenize_counts() {
    if !is_postgres() {
        eprintln!(
            "skipped on SQLite (one process per database file): set \
             COFFER_TEST_DATABASE_URL=postgres://… to run this test"
        );
        return;
    }
    let first = TestApp::spawn_with(true, |s| {
        s.tokenize_limit_per_address = 4;
        s.tokenize_limit_per_key = 0;
    })
    .await;
    // A second process on the same database and keys, with its own data dir.
    let dir = tempfile::tempdir().expect("tempdir");
    let mut settings = first.settings.clone();
    settings.data_dir = dir.path().to_path_buf();
    let second = first.another(settings, false);
    let second_addr = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    for _ in 0..2 {
        assert_ok(tokenize_at(&first.addr, "demo-shop-public", None).await).await;
        assert_ok(tokenize_at(&second_addr, "demo-shop-public", None).await).await;
    }
    assert_limited(tokenize_at(&first.addr, "demo-shop-public", None).await).await;
    assert_limited(tokenize_at(&second_addr, "demo-shop-public", None).await).await;
}

// ---------- 3. slow requests and the connection bound ----------

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

async fn connect(app: &TestApp) -> TcpStream {
    let hostport = app.addr.trim_start_matches("http://");
    TcpStream::connect(hostport).await.expect("connect")
}

/// Reads until the server closes the connection; `None` when it has not within `limit`.
async fn read_to_close(
    r: &mut (impl tokio::io::AsyncRead + Unpin),
    limit: Duration,
) -> Option<String> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = async {
        loop {
            match r.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok()?;
    Some(String::from_utf8_lossy(&got).into_owned())
}

/// Sends `bytes` one every 2 s (stops when the server has closed).
fn trickle(
    mut w: tokio::net::tcp::OwnedWriteHalf,
    bytes: Vec<u8>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut sent = 0;
        for b in bytes {
            if w.write_all(&[b]).await.is_err() {
                break;
            }
            sent += 1;
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        sent
    })
}

#[tokio::test]
async fn a_body_sent_one_byte_every_two_seconds_is_cut_off() {
    let app = TestApp::spawn_with(true, |s| s.request_timeout_seconds = 5).await;
    for path in [
        "/api/v3/paymentjs/demo-shop-public/tokenize",
        "/api/v3/transaction/demo-shop-cards/debit",
        "/login",
    ] {
        let s = connect(&app).await;
        let (mut r, mut w) = s.into_split();
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: 200\r\n\r\n"
        );
        w.write_all(head.as_bytes()).await.expect("head");
        let started = Instant::now();
        let sender = trickle(w, vec![b' '; 200]);
        let text = read_to_close(&mut r, Duration::from_secs(15))
            .await
            .unwrap_or_else(|| panic!("{path}: the trickled body was not cut off within 15 s"));
        let took = started.elapsed();
        assert!(text.starts_with("HTTP/1.1 408"), "{path}: {text}");
        // Cut off at the deadline (5 s), not after the whole body (200 bytes = 400 s).
        assert!(took >= Duration::from_secs(4), "{path}: {took:?}");
        sender.abort();
    }
}

#[tokio::test]
async fn a_head_sent_one_byte_every_two_seconds_is_cut_off() {
    let app = TestApp::spawn_with(true, |s| s.request_timeout_seconds = 1).await;
    let s = connect(&app).await;
    let (mut r, w) = s.into_split();
    let started = Instant::now();
    let sender = trickle(
        w,
        b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
    );
    let text = read_to_close(&mut r, Duration::from_secs(15))
        .await
        .expect("the trickled head was not cut off");
    // The configured second, not actix's default of 5 s (2 s of margin for a busy machine).
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
    sender.abort();
}

async fn healthz_on(s: &mut TcpStream) {
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.expect("read");
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
}

#[tokio::test]
async fn connections_beyond_the_bound_wait_until_one_closes() {
    let app = TestApp::spawn_with(true, |s| {
        s.max_connections = 2;
        s.workers = Some(1);
    })
    .await;
    let mut a = connect(&app).await;
    let mut b = connect(&app).await;
    healthz_on(&mut a).await;
    healthz_on(&mut b).await;
    // A third connection is not served while both are open (kept alive)...
    let mut c = connect(&app).await;
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .await
        .expect("write");
    let mut buf = [0u8; 1024];
    let early = tokio::time::timeout(Duration::from_millis(1500), c.read(&mut buf)).await;
    assert!(
        early.is_err(),
        "a third connection was served beyond the bound of 2"
    );
    // ... and is once one of them closes.
    drop(a);
    let n = tokio::time::timeout(Duration::from_secs(10), c.read(&mut buf))
        .await
        .expect("served after a connection closed")
        .expect("read");
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
}

// ---------- 1. password hashing on its own bounded pool ----------

/// `n` wrong sign-ins at once (usernames of their own, so that no username locks), each in its
/// own task; the receiver gets each status as it completes.
async fn wrong_logins(app: &TestApp, n: usize) -> tokio::sync::mpsc::UnboundedReceiver<StatusCode> {
    let token = app.csrf().await;
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    for i in 0..n {
        let (client, url, token, tx) = (
            app.client.clone(),
            app.url("/login"),
            token.clone(),
            tx.clone(),
        );
        tokio::spawn(async move {
            let user = format!("nobody-{i}");
            let form = [
                ("csrf_token", token.as_str()),
                ("username", user.as_str()),
                ("password", "wrong-password"),
            ];
            let r = client.post(url).form(&form).send().await.expect("login");
            let _ = tx.send(r.status());
        });
    }
    rx
}

#[tokio::test]
async fn logins_queued_for_hashing_hold_no_database_connection() {
    // Two connections, one hashing thread: 20 wrong sign-ins queue for argon2.
    let app = TestApp::spawn_with(true, |s| {
        s.db_pool_size = 2;
        s.hash_threads = Some(1);
        s.hash_queue = 100;
    })
    .await;
    let mut logins = wrong_logins(&app, 20).await;
    // Wait until the first sign-in is through: the others are in the hashing queue now.
    assert_eq!(logins.recv().await, Some(StatusCode::UNPROCESSABLE_ENTITY));
    let r = app
        .client
        .post(app.url("/api/v3/customerProfiles/demo-shop-cards/getProfile"))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic(SHOP.0, SHOP.1))
        .body(json!({"customerIdentification": "nobody"}).to_string())
        .send()
        .await
        .expect("getProfile");
    assert_eq!(r.status(), StatusCode::OK);
    // The API answered while most sign-ins were still waiting for the hashing thread: they
    // hold no connection meanwhile (before, each held one through argon2, and the request
    // waited behind all of them).
    let mut done_before = 1;
    while let Ok(s) = logins.try_recv() {
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        done_before += 1;
    }
    assert!(
        done_before < 10,
        "{done_before} of 20 sign-ins were done before the API answered"
    );
    let mut all = done_before;
    while let Some(s) = logins.recv().await {
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
        all += 1;
    }
    assert_eq!(all, 20);
}

#[tokio::test]
async fn a_full_hashing_pool_answers_busy_at_once() {
    let app = TestApp::spawn_with(true, |s| {
        s.hash_threads = Some(1);
        s.hash_queue = 1;
    })
    .await;
    let mut logins = wrong_logins(&app, 20).await;
    let (mut busy, mut wrong) = (0, 0);
    while let Some(s) = logins.recv().await {
        match s {
            StatusCode::SERVICE_UNAVAILABLE => busy += 1,
            StatusCode::UNPROCESSABLE_ENTITY => wrong += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(busy + wrong, 20);
    assert!(busy >= 1, "the pool of 2 places took 20 sign-ins at once");
    assert!(wrong >= 1);
    // The places come back: sign-in works again.
    app.login_ok("admin", "admin-demo").await;
}
