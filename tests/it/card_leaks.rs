//! Card data and personal data must not leak through the JSON APIs into the database: a value
//! that looks like a card number is refused in every field but tokenize's `number` (1002, the
//! field named by its JSON path, nothing written), payment sessions keep only the known fields
//! they need and nothing once they end, and merchant URLs with control characters are refused
//! before they can break the redirect that finishes a payment.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::checkout::{challenged, decide, new_card, page, status, submit};
use crate::helpers::*;

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const CARDS: &str = "demo-shop-cards";
const PUBLIC: &str = "demo-shop-public";
const SUCCESS: &str = "https://shop.example/ok";
const ERROR: &str = "https://shop.example/failed";
const CANCEL: &str = "https://shop.example/cancelled";
/// A Luhn-valid test Visa number used only as a stray card in these tests.
const STRAY: &str = "4012888888881881";
const STRAY_SPACED: &str = "4012 8888 8888 1881";
const STRAY_DASHED: &str = "4012-8888-8888-1881";

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", SHOP.0, SHOP.1))
    )
}

fn mtid() -> String {
    format!("leak-{}", coffer::ids::random_hex(6))
}

struct Reply {
    status: StatusCode,
    json: Value,
    text: String,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.expect("request");
    let status = r.status();
    let text = r.text().await.expect("body");
    Reply {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

/// POSTs `body` to an IXOPAY API path of the Acme shop's card connector with Basic auth.
async fn ixopay(app: &TestApp, path: &str, body: &Value) -> Reply {
    send(
        app.client
            .post(app.url(path))
            .header("content-type", "application/json; charset=utf-8")
            .header("authorization", basic())
            .body(body.to_string()),
    )
    .await
}

async fn transaction(app: &TestApp, kind: &str, body: &Value) -> Reply {
    ixopay(app, &format!("/api/v3/transaction/{CARDS}/{kind}"), body).await
}

async fn profiles(app: &TestApp, op: &str, body: &Value) -> Reply {
    ixopay(app, &format!("/api/v3/customerProfiles/{CARDS}/{op}"), body).await
}

/// A hosted-page debit (no transactionToken) with the merchant's URLs, plus `extra`.
fn page_body(extra: Value) -> Value {
    let mut b = json!({"merchantTransactionId": mtid(), "amount": "12.50", "currency": "EUR",
        "description": "Two books", "successUrl": SUCCESS, "errorUrl": ERROR, "cancelUrl": CANCEL});
    if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    b
}

/// The path of a REDIRECT answer's redirectUrl on this app.
fn redirect_path(app: &TestApp, r: &Reply) -> String {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["returnType"], "REDIRECT", "{}", r.text);
    let url = r.json["redirectUrl"].as_str().expect("redirectUrl");
    url.strip_prefix(&app.addr)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.addr))
        .to_string()
}

/// Asserts the IXOPAY 1002 answer naming `field`, with no trace of the stray card.
fn assert_refused(r: &Reply, status: StatusCode, field: &str) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.json["success"], false, "{}", r.text);
    assert_eq!(r.json["errorCode"], 1002, "{}", r.text);
    let msg = r.json["errorMessage"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(&format!("{field}: ")),
        "the message names {field}: {msg}"
    );
    for s in [STRAY, STRAY_SPACED, STRAY_DASHED, "4012", "1881"] {
        assert!(!r.text.contains(s), "the value is not echoed: {}", r.text);
    }
}

fn count(app: &TestApp, sql: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(sql)
        .get_result::<N>(&mut *c)
        .expect("count")
        .n
}

fn transactions_with(app: &TestApp, merchant_tx_id: &str) -> i64 {
    count(
        app,
        &format!(
            "SELECT COUNT(*) AS n FROM transactions WHERE merchant_transaction_id = '{merchant_tx_id}'"
        ),
    )
}

/// Sessions whose stored request mentions `marker`.
fn sessions_mentioning(app: &TestApp, marker: &str) -> i64 {
    count(
        app,
        &format!("SELECT COUNT(*) AS n FROM payment_sessions WHERE request LIKE '%{marker}%'"),
    )
}

/// Where the database holds any of `markers`. PostgreSQL: every row of every table as text.
/// SQLite: the raw bytes of every file in the data directory as they are (coffer.db, -wal,
/// -shm): no checkpoint, so rows written and overwritten since are in the WAL and count too.
fn found_in_database(app: &TestApp, markers: &[&str]) -> Vec<String> {
    use diesel::RunQueryDsl;
    let mut found = vec![];
    if is_postgres() {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            tablename: String,
        }
        let db = app.db();
        let mut c = db.get().expect("conn");
        let tables: Vec<T> = diesel::sql_query(
            "SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public'",
        )
        .load(&mut *c)
        .expect("tables");
        assert!(tables.len() > 10, "the tables were listed");
        for t in tables {
            for m in markers {
                let sql = format!(
                    "SELECT COUNT(*) AS n FROM \"{}\" t WHERE t::text LIKE '%{m}%'",
                    t.tablename
                );
                if count(app, &sql) > 0 {
                    found.push(format!("{m} in table {}", t.tablename));
                }
            }
        }
    } else {
        let mut names = vec![];
        for entry in std::fs::read_dir(&app.settings.data_dir).expect("data dir") {
            let entry = entry.expect("entry");
            if !entry.file_type().expect("type").is_file() {
                continue;
            }
            let bytes = std::fs::read(entry.path()).expect("read");
            let name = entry.file_name().to_string_lossy().into_owned();
            for m in markers {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    found.push(format!("{m} in {name}"));
                }
            }
            if !bytes.is_empty() {
                names.push(name);
            }
        }
        assert!(
            names.iter().any(|n| n == "coffer.db") && names.iter().any(|n| n == "coffer.db-wal"),
            "the database and its WAL were read: {names:?}"
        );
    }
    found
}

/// A profile in the shop's container, registered through the API with `customer`.
async fn registered_profile(app: &TestApp, ident: &str, customer: Value) {
    let card = crate::api_transactions::tokenize(app, PUBLIC, "4111111111111111").await;
    let r = transaction(
        app,
        "register",
        &json!({"merchantTransactionId": mtid(), "transactionToken": card, "customer": customer,
                "customerProfileData": {"customerIdentification": ident}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["returnType"], "FINISHED", "{}", r.text);
}

#[tokio::test]
async fn a_card_number_in_any_field_of_a_transaction_is_refused_and_nothing_is_written() {
    let app = TestApp::demo().await;
    let sessions_before = count(&app, "SELECT COUNT(*) AS n FROM payment_sessions");
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"card": {"number": STRAY_SPACED, "cvv": "123"}}),
            "card.number",
        ),
        (json!({"card": {"number": STRAY}}), "card.number"),
        (
            json!({"card": STRAY.parse::<u64>().expect("digits")}),
            "card",
        ),
        (
            json!({"extraData": {"note": STRAY_DASHED}}),
            "extraData.note",
        ),
        (
            json!({"items": [{"name": "Book"}, {"name": "Pen", "description": STRAY}]}),
            "items[1].description",
        ),
        (
            json!({"customer": {"firstName": "Ann", "lastName": STRAY_SPACED}}),
            "customer.lastName",
        ),
        (
            json!({"description": format!("  {STRAY}  ")}),
            "description",
        ),
    ];
    for (extra, field) in cases {
        let body = page_body(extra);
        let id = body["merchantTransactionId"]
            .as_str()
            .expect("id")
            .to_string();
        let r = transaction(&app, "debit", &body).await;
        assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, field);
        assert_eq!(
            transactions_with(&app, &id),
            0,
            "{field}: no transaction row"
        );
    }
    // With a payment.js token too, and on the other transaction types.
    let card = crate::api_transactions::tokenize(&app, PUBLIC, "4111111111111111").await;
    let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
        "transactionToken": card, "merchantMetaData": STRAY});
    let r = transaction(&app, "debit", &body).await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "merchantMetaData");
    let r = transaction(
        &app,
        "register",
        &json!({"merchantTransactionId": mtid(), "cardData": {"pan": STRAY}}),
    )
    .await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "cardData.pan");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM payment_sessions"),
        sessions_before,
        "no session was opened"
    );
    // The token was not used up by the refused debit: it still pays.
    let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
        "transactionToken": card});
    let r = transaction(&app, "debit", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["returnType"], "FINISHED", "{}", r.text);

    let found = found_in_database(&app, &[STRAY, STRAY_SPACED, STRAY_DASHED]);
    assert!(found.is_empty(), "{found:?}");
}

#[tokio::test]
async fn documented_fields_coffer_does_not_use_are_accepted_and_not_kept_in_the_session() {
    let app = TestApp::demo().await;
    let body = page_body(json!({
        "language": "en",
        "items": [{"identification": "b-1", "name": "Sea stories", "quantity": 2, "price": 6.25,
                   "currency": "EUR"}],
        "pspPassthroughData": {"shopRef": "shelf-7"},
        "includeTracing": false,
        "referenceSchemeTransactionIdentifier": "scheme-ref-9",
        "payByLink": {"sendByEmail": false, "expirationInMinute": 60},
        "transactionIndicator": "SINGLE",
        "threeDSecureData": {"3dsecure": "OPTIONAL", "channel": "01", "authenticationIndicator": "01"},
        "customer": {"firstName": "Noor", "email": "noor.unused@example.org", "billingPhone": "+43 1 234567"}
    }));
    let r = transaction(&app, "debit", &body).await;
    let path = redirect_path(&app, &r);
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();
    for unused in [
        "Sea stories",
        "shelf-7",
        "scheme-ref-9",
        "expirationInMinute",
        "authenticationIndicator",
        "noor.unused@example.org",
        "Noor",
    ] {
        assert_eq!(
            sessions_mentioning(&app, unused),
            0,
            "the open session keeps only the fields it needs, not {unused}"
        );
    }
    let b = client();
    let (s, html) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert!(html.contains("Two books"), "the description is shown");
    let r = submit(&b, &app, &path, &path, &new_card("4111111111111111")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "SUCCESS");
}

#[tokio::test]
async fn ended_payment_sessions_hold_no_customer_data() {
    let app = TestApp::demo().await;
    // 1. The hosted page, paid with a new card: a customer without a profile. Nothing of the
    //    customer is needed to finish, so nothing of it is ever written.
    let email = "ada.lovelace.leak@example.org";
    let r = transaction(
        &app,
        "debit",
        &page_body(
            json!({"customer": {"firstName": "Adalind", "lastName": "Lovelacey",
            "email": email, "billingAddress1": "Leakstreet 12"}}),
        ),
    )
    .await;
    let path = redirect_path(&app, &r);
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();
    let b = client();
    let r = submit(&b, &app, &path, &path, &new_card("5105105105105100")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "SUCCESS");
    for m in [email, "Adalind", "Lovelacey", "Leakstreet"] {
        assert_eq!(sessions_mentioning(&app, m), 0, "{m} in payment_sessions");
    }
    let found = found_in_database(&app, &[email, "Leakstreet", "5105105105105100"]);
    assert!(found.is_empty(), "{found:?}");

    // 2. A registration on the page into a profile: the session carries the customer data
    //    while open (the profile gets it when the payment succeeds), and not after.
    let email2 = "grace.hopper.leak@example.org";
    let r = transaction(
        &app,
        "debit",
        &page_body(json!({"withRegister": true,
            "customer": {"firstName": "Gracelyn", "email": email2},
            "customerProfileData": {"customerIdentification": "leak-profile"}})),
    )
    .await;
    let path = redirect_path(&app, &r);
    assert_eq!(sessions_mentioning(&app, email2), 1, "needed while open");
    let r = submit(&b, &app, &path, &path, &new_card("4111111111111111")).await;
    assert_eq!(location(&r), SUCCESS);
    assert_eq!(
        sessions_mentioning(&app, email2),
        0,
        "dropped once finished"
    );
    assert_eq!(sessions_mentioning(&app, "Gracelyn"), 0);
    let got = profiles(
        &app,
        "getProfile",
        &json!({"customerIdentification": "leak-profile"}),
    )
    .await;
    assert_eq!(got.json["customer"]["email"], email2, "{}", got.text);
    let r = profiles(
        &app,
        "deleteProfile",
        &json!({"customerIdentification": "leak-profile"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(sessions_mentioning(&app, email2), 0);
    if is_postgres() {
        // (SQLite files keep overwritten pages in the WAL until a checkpoint: rows are checked.)
        let found = found_in_database(&app, &[email2, "Gracelyn"]);
        assert!(found.is_empty(), "{found:?}");
    }

    // 3. Deleting a profile drops the customer data an open session holds for it; the payment
    //    still finishes (into a new profile without that data).
    registered_profile(&app, "leak-open", json!({"firstName": "Opal"})).await;
    let email3 = "open.session.leak@example.org";
    let r = transaction(
        &app,
        "debit",
        &page_body(json!({"withRegister": true, "customer": {"email": email3},
            "customerProfileData": {"customerIdentification": "leak-open"}})),
    )
    .await;
    let path = redirect_path(&app, &r);
    assert_eq!(sessions_mentioning(&app, email3), 1);
    let r = profiles(
        &app,
        "deleteProfile",
        &json!({"customerIdentification": "leak-open"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        sessions_mentioning(&app, email3),
        0,
        "deleteProfile forgets it"
    );
    let r = submit(&b, &app, &path, &path, &new_card("4111111111111111")).await;
    assert_eq!(location(&r), SUCCESS);
    let got = profiles(
        &app,
        "getProfile",
        &json!({"customerIdentification": "leak-open"}),
    )
    .await;
    assert_eq!(got.json["profileExists"], true, "{}", got.text);
    assert!(got.json["customer"]["email"].is_null(), "{}", got.text);

    // 4. Cancelled and 3-D Secure sessions end empty too.
    let r = transaction(
        &app,
        "debit",
        &page_body(json!({"customer": {"email": "cancel.leak@example.org"},
            "customerProfileData": {"customerIdentification": "leak-cancel"}})),
    )
    .await;
    let path = redirect_path(&app, &r);
    let cancel = format!("{path}/cancel");
    let r = submit(&b, &app, &path, &cancel, &[]).await;
    assert_eq!(location(&r), CANCEL);
    assert_eq!(sessions_mentioning(&app, "cancel.leak"), 0);
    let card = crate::api_transactions::tokenize(&app, PUBLIC, "4000000000003220").await;
    let (uuid, path) = challenged(
        &app,
        json!({"transactionToken": card, "withRegister": true,
               "customer": {"email": "challenge.leak@example.org"},
               "customerProfileData": {"customerIdentification": "leak-3ds"}}),
    )
    .await;
    assert_eq!(sessions_mentioning(&app, "challenge.leak"), 1);
    let r = decide(&app, &path, "approve").await;
    assert_eq!(location(&r), SUCCESS);
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "SUCCESS");
    assert_eq!(sessions_mentioning(&app, "challenge.leak"), 0);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM payment_sessions WHERE status <> 'open' AND request <> ''"
        ),
        0,
        "every ended session holds nothing"
    );
}

#[tokio::test]
async fn update_profile_with_a_card_number_in_customer_data_is_refused() {
    let app = TestApp::demo().await;
    registered_profile(&app, "leak-update", json!({"firstName": "Ann"})).await;
    let r = profiles(
        &app,
        "updateProfile",
        &json!({"customerIdentification": "leak-update",
                "customerData": {"firstName": STRAY_SPACED, "lastName": "Smith"}}),
    )
    .await;
    assert_refused(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customerData.firstName",
    );
    let r = profiles(
        &app,
        "updateProfile",
        &json!({"customerIdentification": "leak-update",
                "customerData": {"firstName": "Ann", "extraData": {"memo": STRAY}}}),
    )
    .await;
    assert_refused(
        &r,
        StatusCode::UNPROCESSABLE_ENTITY,
        "customerData.extraData.memo",
    );
    let got = profiles(
        &app,
        "getProfile",
        &json!({"customerIdentification": "leak-update"}),
    )
    .await;
    assert_eq!(got.json["customer"]["firstName"], "Ann", "{}", got.text);
    assert!(got.json["customer"]["lastName"].is_null(), "{}", got.text);
    let found = found_in_database(&app, &[STRAY, STRAY_SPACED]);
    assert!(found.is_empty(), "{found:?}");
}

/// `WP3-v2.1 token ts hex(sha512(key + ts + token + path + body))` for the Acme shop.
fn wp3(path: &str, body: &str) -> String {
    let (token, key) = (
        "acmeshopdemoauthenticitytoken00000000000",
        "demo-shop-merchant-key",
    );
    let ts = chrono::Utc::now().timestamp();
    let mut h = Sha512::new();
    h.update(format!("{key}{ts}{token}{path}{body}").as_bytes());
    format!("WP3-v2.1 {token} {ts} {}", hex::encode(h.finalize()))
}

async fn monri(app: &TestApp, method: reqwest::Method, path: &str, body: &str) -> Reply {
    let mut r = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .header("authorization", wp3(path, body));
    if !body.is_empty() {
        r = r.body(body.to_string());
    }
    send(r).await
}

fn assert_monri_refused(r: &Reply, field: &str) {
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text);
    assert_eq!(r.json["status"], "invalid-request", "{}", r.text);
    let msg = r.json["message"].as_str().unwrap_or_default();
    assert!(
        msg.starts_with(&format!("{field}: ")),
        "names {field}: {msg}"
    );
    for s in [STRAY, STRAY_SPACED, "4012", "1881"] {
        assert!(!r.text.contains(s), "not echoed: {}", r.text);
    }
}

#[tokio::test]
async fn monri_create_and_update_with_a_card_number_are_refused() {
    let app = TestApp::demo().await;
    let body = json!({"merchant_customer_id": "leak-monri", "name": STRAY_SPACED,
                      "email": "m@example.org"})
    .to_string();
    let r = monri(&app, reqwest::Method::POST, "/v2/customers", &body).await;
    assert_monri_refused(&r, "name");
    let r = monri(
        &app,
        reqwest::Method::GET,
        "/v2/merchants/customers/leak-monri",
        "",
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "nothing created: {}",
        r.text
    );

    let body = json!({"merchant_customer_id": "leak-monri", "name": "Mo"}).to_string();
    let r = monri(&app, reqwest::Method::POST, "/v2/customers", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();
    let path = format!("/v2/customers/{uuid}");
    let body = json!({"metadata": {"memo": STRAY}}).to_string();
    let r = monri(&app, reqwest::Method::POST, &path, &body).await;
    assert_monri_refused(&r, "metadata.memo");
    let r = monri(&app, reqwest::Method::GET, &path, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(r.json["metadata"].get("memo").is_none(), "{}", r.text);
    let found = found_in_database(&app, &[STRAY, STRAY_SPACED]);
    assert!(found.is_empty(), "{found:?}");

    // Erasing the customer drops what an open payment session holds for it.
    let email = "monri.open.leak@example.org";
    let r = transaction(
        &app,
        "debit",
        &page_body(json!({"withRegister": true, "customer": {"email": email},
            "customerProfileData": {"customerIdentification": "leak-monri"}})),
    )
    .await;
    redirect_path(&app, &r);
    assert_eq!(sessions_mentioning(&app, email), 1);
    let r = monri(&app, reqwest::Method::DELETE, &path, "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(sessions_mentioning(&app, email), 0);
}

#[tokio::test]
async fn tokenize_takes_the_card_number_in_number_only() {
    let app = TestApp::demo().await;
    let tokenize = |body: Value| {
        send(
            app.client
                .post(app.url(&format!("/api/v3/paymentjs/{PUBLIC}/tokenize")))
                .header("content-type", "application/json")
                .body(body.to_string()),
        )
    };
    let r = tokenize(
        json!({"cardHolder": "Ann Smith", "number": STRAY_SPACED, "cvv": "123",
                            "month": "12", "year": "2031"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert!(
        r.json["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("ix::")),
        "{}",
        r.text
    );
    let tokens = count(&app, "SELECT COUNT(*) AS n FROM card_tokens");
    let r = tokenize(
        json!({"cardHolder": STRAY, "number": "4111111111111111", "cvv": "123",
                            "month": "12", "year": "2031"}),
    )
    .await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "cardHolder");
    let r = tokenize(
        json!({"cardHolder": "Ann", "number": "4111111111111111", "cvv": "123",
                            "month": "12", "year": "2031", "backup": {"number": STRAY}}),
    )
    .await;
    assert_refused(&r, StatusCode::UNPROCESSABLE_ENTITY, "backup.number");
    assert_eq!(
        count(&app, "SELECT COUNT(*) AS n FROM card_tokens"),
        tokens,
        "no token was issued"
    );
}

#[tokio::test]
async fn merchant_urls_with_control_characters_are_refused_with_1002() {
    let app = TestApp::demo().await;
    let bad = [
        "https://shop.example/ok\u{7}",
        "https://shop.example/ok\nSet-Cookie: x=1",
        "https://shop.example/o\u{7f}k",
        "https://shop.example/ok\u{85}",
        "https://shop.example/ok\u{9b}",
        "https://shop.example/ok\ttab",
        "https://shop.example/ok\u{1b}[0m",
    ];
    for field in ["successUrl", "cancelUrl", "errorUrl", "callbackUrl"] {
        for url in bad {
            let body = page_body(json!({ field: url }));
            let id = body["merchantTransactionId"]
                .as_str()
                .expect("id")
                .to_string();
            let r = transaction(&app, "debit", &body).await;
            if r.status == StatusCode::OK && field == "successUrl" {
                // Show what accepting it leads to: the payment succeeds, then the redirect fails.
                let path = redirect_path(&app, &r);
                let done =
                    submit(&client(), &app, &path, &path, &new_card("4111111111111111")).await;
                panic!(
                    "{field} {url:?} was accepted; finishing its payment answered {}",
                    done.status()
                );
            }
            assert_eq!(
                r.status,
                StatusCode::UNPROCESSABLE_ENTITY,
                "{field} {url:?}: {}",
                r.text
            );
            assert_eq!(r.json["errorCode"], 1002, "{}", r.text);
            let msg = r.json["errorMessage"].as_str().unwrap_or_default();
            assert!(msg.contains(field), "{field}: {msg}");
            assert_eq!(transactions_with(&app, &id), 0, "{field} {url:?}");
        }
    }
    // An ordinary URL (non-ASCII included) still finishes with a 303 to it.
    let ok = "https://shop.example/d\u{f6}ne?order=7#top";
    let r = transaction(&app, "debit", &page_body(json!({"successUrl": ok}))).await;
    let path = redirect_path(&app, &r);
    let done = submit(&client(), &app, &path, &path, &new_card("4111111111111111")).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        done.headers()
            .get("location")
            .map(|v| v.as_bytes().to_vec()),
        Some(ok.as_bytes().to_vec())
    );

    // A transaction stored before this check, with such a URL: finishing shows Coffer's own
    // result page instead of failing after the payment committed.
    let r = transaction(&app, "debit", &page_body(json!({}))).await;
    let path = redirect_path(&app, &r);
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();
    let extra = json!({"successUrl": "https://shop.example/ok\u{7}"}).to_string();
    assert!(extra.contains("\\u0007"), "{extra}");
    {
        use diesel::RunQueryDsl;
        let db = app.db();
        let mut c = db.get().expect("conn");
        let n = diesel::sql_query(format!(
            "UPDATE transactions SET extra = '{extra}' WHERE uuid = '{uuid}'"
        ))
        .execute(&mut *c)
        .expect("update");
        assert_eq!(n, 1);
    }
    let done = submit(&client(), &app, &path, &path, &new_card("4111111111111111")).await;
    assert_eq!(done.status(), StatusCode::OK);
    assert!(
        done.text()
            .await
            .expect("body")
            .contains("Payment approved"),
        "Coffer's own result page"
    );
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "SUCCESS");
}
