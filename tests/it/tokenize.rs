//! payment.js tokenization: the public endpoint, `payments::card_tokens::consume`, what lands
//! on disk, payment.js itself, and `coffer rotate-vault-key`.

use chrono::{Duration, Utc};
use coffer::api::ixopay::error::status_of;
use coffer::db::schema::{connectors, merchants};
use coffer::db::{DbConnection, write_tx};
use coffer::gateway::vault::{self, MasterKey};
use coffer::models::connector;
use coffer::payments::card_tokens::{self, INVALID_TOKEN_MESSAGE, TokenizeRequest};
use coffer::vault::keyring::{self, Keyring};
use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SHOP_KEY: &str = "demo-shop-public";
const OUTLET_KEY: &str = "demo-outlet-public";

struct Answer {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    text: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

fn path(public_key: &str) -> String {
    format!("/api/v3/paymentjs/{public_key}/tokenize")
}

async fn post_raw(app: &TestApp, public_key: &str, body: impl Into<reqwest::Body>) -> Answer {
    let r = app
        .client
        .post(app.url(&path(public_key)))
        .header("Content-Type", "application/json")
        .header("Origin", "https://checkout.example")
        .body(body)
        .send()
        .await
        .expect("POST tokenize");
    Answer {
        status: r.status(),
        headers: r.headers().clone(),
        text: r.text().await.expect("body"),
    }
}

async fn post(app: &TestApp, public_key: &str, body: &Value) -> Answer {
    post_raw(app, public_key, body.to_string()).await
}

fn card(number: &str, cvv: &str) -> Value {
    json!({"cardHolder": "Ann Example", "number": number, "cvv": cvv, "month": "12", "year": "2099"})
}

/// Tokenizes through HTTP and returns the token.
async fn token_for(app: &TestApp, public_key: &str, number: &str, cvv: &str) -> String {
    let a = post(app, public_key, &card(number, cvv)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    a.json()["token"].as_str().expect("token").to_string()
}

fn conn_and_keyring(app: &TestApp) -> (coffer::db::DbPool, Keyring) {
    let pool = app.db();
    let mut conn = pool.get().expect("conn");
    let master = keyring::master_key(&app.settings).expect("master key");
    let keyring = Keyring::load(&mut conn, master).expect("keyring");
    (pool, keyring)
}

fn connector_id(conn: &mut DbConnection, public_key: &str) -> String {
    connector::find_by_public_key(conn, public_key)
        .expect("query")
        .expect("connector")
        .id
}

/// Asserts the API error shape and that no secret leaked into the body.
fn assert_error(a: &Answer, status: StatusCode, code: u64, secrets: &[&str]) {
    assert_eq!(a.status, status, "{}", a.text);
    let v = a.json();
    assert_eq!(v["success"], json!(false), "{}", a.text);
    assert_eq!(v["errorCode"], json!(code), "{}", a.text);
    assert!(
        v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{}",
        a.text
    );
    for s in secrets {
        assert!(!a.text.contains(s), "error body echoes {s}: {}", a.text);
    }
    assert_eq!(a.header("access-control-allow-origin"), "*");
}

fn is_token(t: &str) -> bool {
    t.strip_prefix("ix::")
        .is_some_and(|r| r.len() == 20 && r.bytes().all(|b| b.is_ascii_alphanumeric()))
}

#[tokio::test]
async fn tokenize_answers_a_token_for_visa_mastercard_and_amex() {
    let app = TestApp::demo().await;
    let mut seen = Vec::new();
    for (number, cvv, brand) in [
        ("4111111111111111", "123", "visa"),
        ("5555555555554444", "321", "mastercard"),
        ("378282246310005", "4321", "amex"),
        ("4111 1111-1111 1111", "123", "visa"),
    ] {
        let a = post(&app, SHOP_KEY, &card(number, cvv)).await;
        assert_eq!(a.status, StatusCode::OK, "{number}: {}", a.text);
        assert!(
            a.header("content-type").starts_with("application/json"),
            "{}",
            a.header("content-type")
        );
        assert_eq!(a.header("access-control-allow-origin"), "*");
        let v = a.json();
        let pan: String = number.chars().filter(char::is_ascii_digit).collect();
        let token = v["token"].as_str().expect("token").to_string();
        assert!(is_token(&token), "{token}");
        assert_eq!(
            v,
            json!({
                "success": true,
                "token": token,
                "brand": brand,
                "firstSixDigits": &pan[..6],
                "lastFourDigits": &pan[pan.len() - 4..],
            })
        );
        assert!(!a.text.contains(&pan));
        assert!(!seen.contains(&token), "tokens are unique");
        seen.push(token);
    }
    // Stored as documented: sealed, masked parts, holder, fingerprint, 30-minute expiry.
    let (pool, keyring) = conn_and_keyring(&app);
    let mut conn = pool.get().expect("conn");
    let row = coffer::models::transaction::find_card_token(&mut conn, &seen[0])
        .expect("query")
        .expect("row");
    assert_eq!(row.connector_id, connector_id(&mut conn, SHOP_KEY));
    assert!(row.sealed.starts_with("v1:"), "sealed");
    assert!(!row.sealed.contains("4111111111111111"));
    assert_eq!((row.exp_month, row.exp_year), (12, 2099));
    assert_eq!(row.card_holder.as_deref(), Some("Ann Example"));
    assert_eq!(
        row.fingerprint,
        vault::fingerprint(keyring.mac_key().expect("mac key"), "4111111111111111")
    );
    // The spaced number is the same card.
    let spaced = coffer::models::transaction::find_card_token(&mut conn, &seen[3])
        .expect("query")
        .expect("row");
    assert_eq!(spaced.fingerprint, row.fingerprint);
    let ttl = row.expires_at - row.created_at;
    assert_eq!(ttl, Duration::minutes(30));
    assert!(
        (row.created_at - Utc::now().naive_utc())
            .num_seconds()
            .abs()
            < 60
    );
}

#[tokio::test]
async fn tokenize_rejects_bad_input_with_1002_and_never_echoes_the_card() {
    let app = TestApp::demo().await;
    let number = "4111111111111111";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("luhn", card("4111111111111112", "987"), "number"),
        (
            "expired",
            json!({"number": number, "cvv": "987", "month": "01", "year": "2020"}),
            "year",
        ),
        (
            "expired two-digit year",
            json!({"number": number, "cvv": "987", "month": 1, "year": 21}),
            "year",
        ),
        ("visa cvv of 2 digits", card(number, "98"), "cvv"),
        (
            "amex cvv of 3 digits",
            card("378282246310005", "987"),
            "cvv",
        ),
        ("visa cvv of 4 digits", card(number, "9876"), "cvv"),
        (
            "month 13",
            json!({"number": number, "cvv": "987", "month": "13", "year": "2099"}),
            "month",
        ),
        (
            "missing number",
            json!({"cvv": "987", "month": "12", "year": "2099"}),
            "number",
        ),
        (
            "missing cvv and year",
            json!({"number": number, "month": "12"}),
            "cvv",
        ),
        (
            "number as a JSON number",
            json!({"number": 4111111111111111_u64, "cvv": "987", "month": "12", "year": "2099"}),
            "number",
        ),
        (
            "cvv as a JSON number",
            json!({"number": number, "cvv": 987, "month": "12", "year": "2099"}),
            "cvv",
        ),
        (
            "month as an object",
            json!({"number": number, "cvv": "987", "month": {"m": 12}, "year": "2099"}),
            "month",
        ),
        (
            "card holder too long",
            json!({"cardHolder": "A".repeat(101), "number": number, "cvv": "987", "month": "12", "year": "2099"}),
            "cardHolder",
        ),
    ];
    for (what, body, field) in cases {
        let a = post(&app, SHOP_KEY, &body).await;
        assert_error(
            &a,
            StatusCode::UNPROCESSABLE_ENTITY,
            1002,
            &[number, "4111111111111112", "378282246310005", "987"],
        );
        let msg = a.json()["errorMessage"].as_str().unwrap_or("").to_string();
        assert!(
            msg.contains(field),
            "{what}: message should name {field}: {msg}"
        );
    }
    // Both missing fields are named.
    let a = post(&app, SHOP_KEY, &json!({"number": number, "month": "12"})).await;
    let msg = a.json()["errorMessage"].as_str().unwrap_or("").to_string();
    assert!(msg.contains("cvv") && msg.contains("year"), "{msg}");
    // A holder of exactly 100 characters is fine.
    let ok = json!({"cardHolder": "é".repeat(100), "number": number, "cvv": "987", "month": "12", "year": "2099"});
    assert_eq!(post(&app, SHOP_KEY, &ok).await.status, StatusCode::OK);

    for (what, raw) in [
        (
            "malformed",
            r#"{"number":"4111111111111111","cvv":"987""#.to_string(),
        ),
        ("not an object", format!(r#"["{number}","987"]"#)),
        ("empty", String::new()),
        ("not JSON", format!("number={number}&cvv=987")),
    ] {
        let a = post_raw(&app, SHOP_KEY, raw).await;
        assert_error(&a, StatusCode::BAD_REQUEST, 1002, &[number, "987"]);
        assert!(!a.text.is_empty(), "{what}");
    }

    let huge = format!(
        r#"{{"number":"{number}","cvv":"987","month":"12","year":"2099","cardHolder":"{}"}}"#,
        "x".repeat(64 * 1024)
    );
    let a = post_raw(&app, SHOP_KEY, huge).await;
    assert_error(&a, StatusCode::PAYLOAD_TOO_LARGE, 1002, &[number]);

    // Nothing was stored for any rejected request.
    let pool = app.db();
    let mut conn = pool.get().expect("conn");
    let n: i64 = coffer::db::schema::card_tokens::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert_eq!(n, 1, "only the valid request stored a token");
}

#[tokio::test]
async fn tokenize_with_an_unknown_or_inactive_public_key_answers_404() {
    let app = TestApp::demo().await;
    let body = card("4111111111111111", "987");
    let unknown = post(&app, "no-such-public-key", &body).await;
    assert_error(&unknown, StatusCode::NOT_FOUND, 1000, &["4111111111111111"]);
    let long = post(&app, &"k".repeat(300), &body).await;
    assert_error(&long, StatusCode::NOT_FOUND, 1000, &[]);
    // An API key is not a public key.
    let api_key = post(&app, "demo-shop-cards", &body).await;
    assert_error(&api_key, StatusCode::NOT_FOUND, 1000, &[]);

    let pool = app.db();
    let mut conn = pool.get().expect("conn");
    diesel::update(connectors::table.filter(connectors::public_key.eq(OUTLET_KEY)))
        .set(connectors::active.eq(false))
        .execute(&mut conn)
        .expect("deactivate connector");
    let inactive = post(&app, OUTLET_KEY, &body).await;
    assert_error(&inactive, StatusCode::NOT_FOUND, 1000, &[]);
    assert_eq!(
        inactive.json(),
        unknown.json(),
        "inactive looks like unknown"
    );

    // A connector of an inactive merchant cannot tokenize either.
    let shop = connector::find_by_public_key(&mut conn, SHOP_KEY)
        .expect("query")
        .expect("shop");
    assert_eq!(post(&app, SHOP_KEY, &body).await.status, StatusCode::OK);
    diesel::update(merchants::table.filter(merchants::id.eq(&shop.merchant_id)))
        .set(merchants::active.eq(false))
        .execute(&mut conn)
        .expect("deactivate merchant");
    let a = post(&app, SHOP_KEY, &body).await;
    assert_error(&a, StatusCode::NOT_FOUND, 1000, &[]);

    // A SEPA connector takes no cards.
    diesel::update(connectors::table.filter(connectors::public_key.eq("demo-globex-public")))
        .set(connectors::adapter.eq("sepa"))
        .execute(&mut conn)
        .expect("make sepa");
    let a = post(&app, "demo-globex-public", &body).await;
    assert_error(&a, StatusCode::BAD_REQUEST, 1007, &["4111111111111111"]);
}

#[tokio::test]
async fn tokenize_allows_cross_origin_calls_without_credentials() {
    let app = TestApp::demo().await;
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, app.url(&path(SHOP_KEY)))
        .header("Origin", "https://checkout.example")
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .expect("OPTIONS");
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    assert_eq!(h("access-control-allow-origin"), "*");
    assert_eq!(h("access-control-allow-methods"), "POST, OPTIONS");
    assert_eq!(h("access-control-allow-headers"), "Content-Type");
    assert_eq!(h("access-control-max-age"), "600");
    assert_eq!(h("access-control-allow-credentials"), "", "no credentials");
    assert!(r.headers().get("set-cookie").is_none());

    // The POST needs no Basic auth and no session, answers ACAO *, and sets no cookie.
    let a = post(&app, SHOP_KEY, &card("4111111111111111", "123")).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.header("access-control-allow-origin"), "*");
    assert_eq!(a.header("cache-control"), "no-store");
    assert!(a.headers.get("set-cookie").is_none());
}

#[tokio::test]
async fn consumed_tokens_are_single_use_and_bound_to_their_connector() {
    let app = TestApp::demo().await;
    let token = token_for(&app, SHOP_KEY, "378282246310005", "4321").await;
    let (pool, keyring) = conn_and_keyring(&app);
    let mut conn = pool.get().expect("conn");
    let shop = connector_id(&mut conn, SHOP_KEY);
    let outlet = connector_id(&mut conn, OUTLET_KEY);
    let now = Utc::now();

    // Another connector cannot use it, and trying does not burn it.
    let e = card_tokens::consume(&mut conn, &keyring, &outlet, &token, now).expect_err("other");
    assert_eq!((status_of(e.kind).as_u16(), e.code.code()), (422, 1002));
    assert_eq!(e.message, INVALID_TOKEN_MESSAGE);

    let c = card_tokens::consume(&mut conn, &keyring, &shop, &token, now).expect("consume");
    assert_eq!(c.card.pan, "378282246310005");
    assert_eq!(c.card.brand, "amex");
    assert_eq!(
        (c.card.first_six.as_str(), c.card.last_four.as_str()),
        ("378282", "0005")
    );
    assert_eq!((c.card.exp_month, c.card.exp_year), (12, 2099));
    assert_eq!(c.cvv, "4321");
    assert_eq!(c.card_holder.as_deref(), Some("Ann Example"));
    assert_eq!(
        c.fingerprint,
        vault::fingerprint(keyring.mac_key().expect("mac key"), "378282246310005")
    );
    let shown = format!("{c:?}");
    assert!(
        !shown.contains("378282246310005") && !shown.contains("4321"),
        "{shown}"
    );

    // Single use: the second time fails with the same message, and the row (with its CVV) is gone.
    let e = card_tokens::consume(&mut conn, &keyring, &shop, &token, now).expect_err("again");
    assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
    assert!(
        coffer::models::transaction::find_card_token(&mut conn, &token)
            .expect("query")
            .is_none()
    );
    for bogus in [
        "",
        "ix::",
        "pt::12345678901234567890",
        "ix::AAAAAAAAAAAAAAAAAAAA",
    ] {
        let e = card_tokens::consume(&mut conn, &keyring, &shop, bogus, now).expect_err(bogus);
        assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
    }

    // Inside a transaction that rolls back, the token survives for a later attempt.
    let token = token_for(&app, OUTLET_KEY, "5555555555554444", "321").await;
    let r: Result<(), coffer::error::ServiceError> = write_tx(&mut conn, |tx| {
        card_tokens::consume(tx, &keyring, &outlet, &token, now).expect("consume in tx");
        Err(coffer::error::ServiceError::Conflict("roll back".into()))
    });
    assert!(r.is_err());
    let c =
        card_tokens::consume(&mut conn, &keyring, &outlet, &token, now).expect("after rollback");
    assert_eq!(c.card.pan, "5555555555554444");
}

#[tokio::test]
async fn expired_tokens_cannot_be_consumed_and_are_purged() {
    let app = TestApp::demo().await;
    let (pool, keyring) = conn_and_keyring(&app);
    let mut conn = pool.get().expect("conn");
    let shop = connector_id(&mut conn, SHOP_KEY);
    let req = || TokenizeRequest {
        card_holder: None,
        number: "4111111111111111".into(),
        cvv: "123".into(),
        month: "12".into(),
        year: "2099".into(),
    };
    let issued_at = Utc::now() - Duration::minutes(31);
    let old = card_tokens::tokenize(&mut conn, &keyring, SHOP_KEY, req(), issued_at, 30)
        .expect("tokenize in the past");
    let e = card_tokens::consume(&mut conn, &keyring, &shop, &old.token, Utc::now())
        .expect_err("expired");
    assert_eq!(e.message, INVALID_TOKEN_MESSAGE);
    // Still usable one second before expiry (judged by the `now` passed in). Issued now, as
    // a token that has expired by the clock may be deleted by the background loop any time.
    let issued_at = Utc::now();
    let fresh = card_tokens::tokenize(&mut conn, &keyring, SHOP_KEY, req(), issued_at, 30)
        .expect("tokenize");
    let just_before = issued_at + Duration::minutes(30) - Duration::seconds(1);
    card_tokens::consume(&mut conn, &keyring, &shop, &fresh.token, just_before)
        .expect("valid until expiry");

    // Expired tokens are purged by the next tokenize (here one made 31 minutes later).
    let stale = card_tokens::tokenize(&mut conn, &keyring, SHOP_KEY, req(), issued_at, 30)
        .expect("tokenize");
    assert!(
        coffer::models::transaction::find_card_token(&mut conn, &stale.token)
            .expect("query")
            .is_some()
    );
    let later = issued_at + Duration::minutes(31);
    card_tokens::tokenize(&mut conn, &keyring, SHOP_KEY, req(), later, 30).expect("tokenize");
    assert!(
        coffer::models::transaction::find_card_token(&mut conn, &stale.token)
            .expect("query")
            .is_none(),
        "purged"
    );
    // (The background loop purges them too, without any tokenize: tests/it/hygiene.rs.)
}

#[tokio::test]
async fn concurrent_consumers_get_the_card_once() {
    let app = TestApp::demo().await;
    let token = token_for(&app, SHOP_KEY, "4111111111111111", "123").await;
    let (pool, keyring) = conn_and_keyring(&app);
    let shop = connector_id(&mut pool.get().expect("conn"), SHOP_KEY);
    let pool = coffer::db::DbPool::connect(&app.settings.database_url(), 4).expect("pool");
    let keyring = std::sync::Arc::new(keyring);
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(4));
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let (pool, keyring, barrier) = (pool.clone(), keyring.clone(), barrier.clone());
            let (shop, token) = (shop.clone(), token.clone());
            std::thread::spawn(move || {
                let mut conn = pool.get().expect("conn");
                barrier.wait();
                write_tx(&mut conn, |tx| {
                    Ok::<_, coffer::error::ServiceError>(
                        card_tokens::consume(tx, &keyring, &shop, &token, Utc::now()).is_ok(),
                    )
                })
                .expect("tx")
            })
        })
        .collect();
    let wins = handles
        .into_iter()
        .map(|h| h.join().expect("thread"))
        .filter(|ok| *ok)
        .count();
    assert_eq!(wins, 1);
}

/// A bare 3-digit CVV is found by chance in any SQLite file (timestamps, hex ids, hashes), so CVVs
/// are searched in the forms a leak would take: JSON (`"cvv":"987"`, `"987"`), form and log
/// style (`cvv=987`, `cvv: 987`). Card numbers are searched bare, with and without spaces.
#[tokio::test]
async fn sqlite_files_never_contain_card_numbers_or_cvvs() {
    if is_postgres() {
        return; // the files of a PostgreSQL server are not ours to read
    }
    let app = TestApp::demo().await;
    let cards = [
        ("4111111111111111", "739"),
        ("5555555555554444", "582"),
        ("378282246310005", "6173"),
        ("4242424242424242", "914"),
        ("4000000000000002", "407"),
    ];
    let mut tokens = Vec::new();
    for (number, cvv) in cards {
        tokens.push(token_for(&app, SHOP_KEY, number, cvv).await);
    }
    // Consume one, so the delete path has written too.
    let (pool, keyring) = conn_and_keyring(&app);
    let mut conn = pool.get().expect("conn");
    let shop = connector_id(&mut conn, SHOP_KEY);
    card_tokens::consume(&mut conn, &keyring, &shop, &tokens[0], Utc::now()).expect("consume");
    drop(conn);

    let mut needles: Vec<String> = Vec::new();
    for (number, cvv) in cards {
        needles.push(number.to_string());
        let spaced: Vec<String> = number
            .as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        needles.push(spaced.join(" "));
        for form in [
            format!("\"cvv\":\"{cvv}\""),
            format!("\"cvv\":{cvv}"),
            format!("\"{cvv}\""),
            format!("cvv={cvv}"),
            format!("cvv: {cvv}"),
        ] {
            needles.push(form);
        }
    }
    let mut scanned = Vec::new();
    for entry in std::fs::read_dir(&app.settings.data_dir).expect("data dir") {
        let entry = entry.expect("entry");
        if !entry.file_type().expect("type").is_file() {
            continue;
        }
        let bytes = std::fs::read(entry.path()).expect("read");
        let name = entry.file_name().to_string_lossy().into_owned();
        for n in &needles {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{name} contains {n:?}"
            );
        }
        scanned.push((name, bytes.len()));
    }
    let names: Vec<&str> = scanned.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"coffer.db"), "{names:?}");
    assert!(
        scanned
            .iter()
            .any(|(n, len)| n == "coffer.db-wal" && *len > 0),
        "the WAL holds the recent writes: {scanned:?}"
    );
    // The scan can see: the first six digits, which are stored in clear, are found.
    let all: Vec<u8> = scanned
        .iter()
        .flat_map(|(n, _)| std::fs::read(app.settings.data_dir.join(n)).expect("read"))
        .collect();
    assert!(all.windows(6).any(|w| w == b"555555"));
}

#[tokio::test]
async fn payment_js_is_served_as_plain_javascript() {
    let app = TestApp::demo().await;
    let r = app.get("/static/js/payment.js").await;
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.contains("javascript"), "{ct}");
    let js = r.text().await.expect("body");
    assert!(js.contains("CofferPayment"));
    assert!(js.contains("/api/v3/paymentjs/"));
    assert!(js.contains("data-coffer"));
    assert!(js.contains("transaction_token"));
    for forbidden in ["eval(", "new Function", "innerHTML", "?.", "??"] {
        assert!(!js.contains(forbidden), "payment.js uses {forbidden}");
    }
}

/// Runs tests/js/payment_smoke.js (payment.js under Node, against this app) when Node is
/// installed; without Node there is nothing to run it with, which the test reports.
#[tokio::test]
async fn payment_js_tokenizes_against_the_api_under_node() {
    let Ok(v) = std::process::Command::new("node").arg("--version").output() else {
        eprintln!("SKIPPED: node is not installed");
        return;
    };
    assert!(v.status.success());
    let app = TestApp::demo().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/js/payment_smoke.js");
    let out = tokio::process::Command::new("node")
        .arg(script)
        .arg(&app.addr)
        .arg(SHOP_KEY)
        .output()
        .await
        .expect("run node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "ok",
        "stdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn copy(k: &MasterKey) -> MasterKey {
    MasterKey::from_encoded(&k.to_hex()).expect("copy")
}

#[tokio::test]
async fn rotate_vault_key_keeps_records_readable_with_the_new_key_only() {
    let app = TestApp::demo().await;
    let token = token_for(&app, SHOP_KEY, "4111111111111111", "123").await;
    let pool = app.db();
    let mut conn = pool.get().expect("conn");
    let old = keyring::master_key(&app.settings).expect("master key");
    let before = Keyring::load(&mut conn, copy(&old)).expect("keyring");
    let record = before
        .seal(
            &mut conn,
            &keyring::Owner::Platform,
            b"sealed before rotation",
            b"row-1",
        )
        .expect("seal");
    let shop = connector_id(&mut conn, SHOP_KEY);

    let new_master = MasterKey::generate();
    let n = keyring::rotate(&mut conn, &old, &new_master).expect("rotate");
    assert!(n >= 2, "the MAC key and at least one data key: {n}");

    let after = Keyring::load(&mut conn, copy(&new_master)).expect("load with the new key");
    assert_eq!(
        after
            .open(&mut conn, &record, b"row-1")
            .expect("open old record"),
        b"sealed before rotation"
    );
    assert_eq!(
        after.mac_key().expect("mac key"),
        before.mac_key().expect("mac key"),
        "fingerprints stay stable"
    );
    // A token sealed before the rotation is consumed with the new keyring.
    let c = card_tokens::consume(&mut conn, &after, &shop, &token, Utc::now()).expect("consume");
    assert_eq!(c.cvv, "123");
    // New records use the new data key, which the new keyring opens too.
    let fresh = after
        .seal(
            &mut conn,
            &keyring::Owner::Platform,
            b"sealed after",
            b"row-2",
        )
        .expect("seal");
    assert_ne!(
        fresh.split(':').nth(1),
        record.split(':').nth(1),
        "new data key"
    );
    assert_eq!(
        after.open(&mut conn, &fresh, b"row-2").expect("open"),
        b"sealed after"
    );

    let err = Keyring::load(&mut conn, copy(&old))
        .expect_err("the old master key no longer opens the vault")
        .to_string();
    assert!(
        err.contains("cannot be unwrapped with this master key"),
        "{err}"
    );
    assert!(err.contains(after.master_key_id()), "{err}");
    assert!(err.contains("rotate-vault-key"), "{err}");
}

#[tokio::test]
async fn rotate_vault_key_command_replaces_the_key_and_keeps_records_readable() {
    let app = TestApp::demo().await;
    let token = token_for(&app, SHOP_KEY, "5555555555554444", "321").await;
    let old = keyring::master_key(&app.settings).expect("master key");
    let bin = env!("CARGO_BIN_EXE_coffer");
    let data_dir = app.settings.data_dir.clone();
    let run = |envs: Vec<(&str, String)>, args: &[&str]| {
        let mut c = std::process::Command::new(bin);
        c.env_clear()
            .env("COFFER_DATA_DIR", &data_dir)
            .env("RUST_LOG", "warn")
            .arg("rotate-vault-key")
            .args(args);
        if let Some(url) = &app.settings.database_url {
            c.env("COFFER_DATABASE_URL", url);
        }
        if let Some(k) = &app.settings.vault_key {
            c.env("COFFER_VAULT_KEY", k);
        }
        for (k, v) in envs {
            c.env(k, v);
        }
        c.output().expect("run coffer")
    };
    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };

    // Refusals change nothing.
    let o = run(vec![], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("COFFER_NEW_VAULT_KEY"), "{}", text(&o));
    let o = run(vec![("COFFER_NEW_VAULT_KEY", "not-a-key".into())], &[]);
    assert!(!o.status.success(), "{}", text(&o));
    let o = run(vec![("COFFER_NEW_VAULT_KEY", old.to_hex())], &[]);
    assert!(!o.status.success());
    assert!(text(&o).contains("current one"), "{}", text(&o));
    let o = run(
        vec![("COFFER_NEW_VAULT_KEY", MasterKey::generate().to_hex())],
        &["--generate"],
    );
    assert!(!o.status.success(), "{}", text(&o));

    let new_hex = if is_postgres() {
        // PostgreSQL: the key comes from COFFER_VAULT_KEY; the new one from COFFER_NEW_VAULT_KEY.
        let new_hex = MasterKey::generate().to_hex();
        let o = run(vec![("COFFER_NEW_VAULT_KEY", new_hex.clone())], &[]);
        assert!(o.status.success(), "{}", text(&o));
        assert!(text(&o).contains("set COFFER_VAULT_KEY"), "{}", text(&o));
        assert!(!text(&o).contains(&new_hex), "a supplied key is not echoed");
        new_hex
    } else {
        // A data dir without a vault is refused before any key is printed.
        let empty = tempfile::tempdir().expect("tempdir");
        let o = std::process::Command::new(bin)
            .env_clear()
            .env("COFFER_DATA_DIR", empty.path())
            .env("RUST_LOG", "off")
            .args(["rotate-vault-key", "--generate"])
            .output()
            .expect("run coffer");
        assert!(!o.status.success());
        assert!(text(&o).contains("no vault to rotate"), "{}", text(&o));
        assert!(!text(&o).contains("shown once"), "{}", text(&o));
        assert!(!empty.path().join("vault.key").exists());

        // SQLite with the data dir's vault.key: --generate, and the file is replaced.
        let key_file = data_dir.join("vault.key");
        assert_eq!(
            std::fs::read_to_string(&key_file).expect("key file").trim(),
            old.to_hex()
        );
        let o = run(vec![], &["--generate"]);
        assert!(o.status.success(), "{}", text(&o));
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        let new_hex = out
            .lines()
            .find_map(|l| l.strip_prefix("New vault master key (shown once): "))
            .expect("printed key")
            .trim()
            .to_string();
        assert_eq!(out.matches(&new_hex).count(), 1, "printed once: {out}");
        assert_eq!(
            std::fs::read_to_string(&key_file).expect("key file").trim(),
            new_hex
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&key_file)
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(
            !data_dir.join("vault.key.new").exists(),
            "no temp file left"
        );
        new_hex
    };

    let pool = app.db();
    let mut conn = pool.get().expect("conn");
    let new_master = MasterKey::from_encoded(&new_hex).expect("new key");
    let after = Keyring::load(&mut conn, copy(&new_master)).expect("load with the new key");
    let shop = connector_id(&mut conn, SHOP_KEY);
    let c = card_tokens::consume(&mut conn, &after, &shop, &token, Utc::now()).expect("consume");
    assert_eq!(c.card.pan, "5555555555554444");
    let err = Keyring::load(&mut conn, old)
        .expect_err("old key fails")
        .to_string();
    assert!(err.contains("cannot be unwrapped"), "{err}");
    if !is_postgres() {
        // What the next start reads is the new key.
        let from_settings = keyring::master_key(&app.settings).expect("master key");
        assert_eq!(from_settings.to_hex(), new_hex);
    }
}
