//! The hosted payment page and the 3-D Secure simulation, over HTTP as a browser sees them:
//! pages are fetched, the CSRF token and form fields parsed out of the HTML, forms posted and
//! redirects followed by hand.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_transactions::tokenize;
use crate::helpers::*;

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const SUCCESS: &str = "https://shop.example/ok";
const ERROR: &str = "https://shop.example/failed";
const CANCEL: &str = "https://shop.example/cancelled";

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", SHOP.0, SHOP.1))
    )
}

fn mtid() -> String {
    format!("hp-{}", coffer::ids::random_hex(6))
}

/// POSTs to the Transaction API of the Acme shop's card connector; expects HTTP 200.
async fn api(app: &TestApp, kind: &str, body: Value) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/transaction/demo-shop-cards/{kind}")))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic())
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    let v: Value = r.json().await.expect("json");
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

pub async fn status(app: &TestApp, uuid: &str) -> Value {
    app.client
        .get(app.url(&format!("/api/v3/status/demo-shop-cards/getByUuid/{uuid}")))
        .header("authorization", basic())
        .send()
        .await
        .expect("GET")
        .json()
        .await
        .expect("json")
}

async fn get_profile(app: &TestApp, ident: &str) -> Value {
    app.client
        .post(app.url("/api/v3/customerProfiles/demo-shop-cards/getProfile"))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic())
        .body(json!({ "customerIdentification": ident }).to_string())
        .send()
        .await
        .expect("POST")
        .json()
        .await
        .expect("json")
}

fn urls() -> Value {
    json!({"successUrl": SUCCESS, "errorUrl": ERROR, "cancelUrl": CANCEL})
}

fn merged(a: Value, b: Value) -> Value {
    let mut a = a;
    if let (Some(o), Some(e)) = (a.as_object_mut(), b.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    a
}

/// A debit without transactionToken: answers REDIRECT to the hosted page. Returns (uuid, path).
pub async fn page_debit(app: &TestApp, extra: Value) -> (String, String) {
    let body = merged(
        merged(
            json!({"merchantTransactionId": mtid(), "amount": "12.50", "currency": "EUR",
                   "description": "Two books"}),
            urls(),
        ),
        extra,
    );
    let v = api(app, "debit", body).await;
    redirect_of(app, &v, "/pay/")
}

/// Checks a REDIRECT answer and returns (uuid, path of the redirectUrl).
fn redirect_of(app: &TestApp, v: &Value, prefix: &str) -> (String, String) {
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["returnType"], "REDIRECT", "{v}");
    assert_eq!(v["redirectType"], "fullpage", "{v}");
    assert_eq!(v["paymentMethod"], "Creditcard", "{v}");
    let url = v["redirectUrl"].as_str().expect("redirectUrl");
    assert!(url.len() <= 255, "{url}");
    let path = url
        .strip_prefix(&app.addr)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.addr));
    assert!(path.starts_with(prefix), "{path}");
    (
        v["uuid"].as_str().expect("uuid").to_string(),
        path.to_string(),
    )
}

/// Registers `number` in the profile `ident` through the API (no challenge expected).
pub async fn register(app: &TestApp, ident: &str, number: &str, preferred: bool) -> String {
    let card = tokenize(app, "demo-shop-public", number).await;
    let v = api(
        app,
        "register",
        json!({"merchantTransactionId": mtid(), "transactionToken": card,
               "customerProfileData": {"customerIdentification": ident, "markAsPreferred": preferred}}),
    )
    .await;
    assert_eq!(v["returnType"], "FINISHED", "{v}");
    v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string()
}

/// The radio buttons `name="instrument"`: (value, checked), in page order.
fn radios(html: &str) -> Vec<(String, bool)> {
    html.split("<input")
        .skip(1)
        .filter(|tag| tag.contains("name=\"instrument\""))
        .map(|tag| {
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let i = tag.find("value=\"").expect("value") + 7;
            let j = tag[i..].find('"').expect("end") + i;
            (tag[i..j].to_string(), tag.contains(" checked"))
        })
        .collect()
}

pub async fn page(b: &reqwest::Client, app: &TestApp, path: &str) -> (StatusCode, String) {
    let r = b.get(app.url(path)).send().await.expect("GET");
    let s = r.status();
    (s, r.text().await.expect("body"))
}

/// Fetches the page at `path` and posts `fields` (with its CSRF token) to `action`.
pub async fn submit(
    b: &reqwest::Client,
    app: &TestApp,
    path: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (s, html) = page(b, app, path).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let csrf = extract_csrf(&html).expect("csrf token");
    let mut f = vec![("csrf_token", csrf.as_str())];
    f.extend_from_slice(fields);
    b.post(app.url(action)).form(&f).send().await.expect("POST")
}

/// This browser's payment-page CSRF secret, as any open payment page of it carries it.
async fn checkout_csrf(b: &reqwest::Client, app: &TestApp) -> String {
    let (_, path) = page_debit(app, json!({})).await;
    let (s, html) = page(b, app, &path).await;
    assert_eq!(s, StatusCode::OK);
    extract_csrf(&html).expect("csrf")
}

pub fn new_card(number: &'static str) -> Vec<(&'static str, &'static str)> {
    vec![
        ("instrument", "new"),
        ("card_holder", "Ann Smith"),
        ("card_number", number),
        ("exp_month", "12"),
        ("exp_year", "2031"),
        ("cvv", "123"),
    ]
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

fn error_code(v: &Value) -> i64 {
    v["errors"][0]["errorCode"].as_i64().unwrap_or(0)
}

#[tokio::test]
async fn a_debit_without_token_is_paid_on_the_hosted_page_with_the_preferred_saved_card() {
    let app = TestApp::demo().await;
    let visa = register(&app, "hp-saved", "4111111111111111", false).await;
    let master = register(&app, "hp-saved", "5555555555554444", true).await;
    let (uuid, path) = page_debit(
        &app,
        json!({"customerProfileData": {"customerIdentification": "hp-saved"}}),
    )
    .await;
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "PENDING", "{st}");

    let b = client();
    let (s, html) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Acme Shop"), "merchant name: {html}");
    assert!(html.contains("12.50 EUR") && html.contains("Two books"));
    assert_eq!(
        radios(&html),
        vec![
            (master.clone(), true),
            (visa.clone(), false),
            ("new".into(), false)
        ],
        "preferred first and checked, then the others, then a new card"
    );
    assert!(html.contains("555555******4444") && html.contains("411111******1111"));
    assert!(!html.contains("5555555555554444") && !html.contains("4111111111111111"));
    for id in [
        "id=\"pay\"",
        "id=\"cancel\"",
        "id=\"card_number\"",
        "name=\"cvv\"",
    ] {
        assert!(html.contains(id), "{id}");
    }

    let r = submit(&b, &app, &path, &path, &[("instrument", master.as_str())]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    assert_eq!(st["returnData"]["lastFourDigits"], "4444", "{st}");
    assert_eq!(st["customerProfileData"]["paymentToken"], master.as_str());

    // The page is used up: it says so, and a second post charges nothing.
    let (s, html) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(html.contains("already been completed"), "{html}");
    let csrf = checkout_csrf(&b, &app).await;
    let r = b
        .post(app.url(&path))
        .form(&[("csrf_token", csrf.as_str()), ("instrument", visa.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM transactions WHERE uuid = '{uuid}' AND status = 'SUCCESS' AND payment_token = '{master}'"
            )
        ),
        1
    );
}

#[tokio::test]
async fn a_new_card_with_register_on_the_page_is_stored_in_the_profile_and_usable_later() {
    let app = TestApp::demo().await;
    let (uuid, path) = page_debit(
        &app,
        json!({"withRegister": true,
               "customer": {"firstName": "Nia", "email": "nia@example.com"},
               "customerProfileData": {"customerIdentification": "hp-new", "markAsPreferred": true}}),
    )
    .await;
    let b = client();
    let (_, html) = page(&b, &app, &path).await;
    assert_eq!(radios(&html), vec![("new".to_string(), true)]);
    let r = submit(&b, &app, &path, &path, &new_card("4242 4242 4242 4242")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    let token = st["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("pt:: token")
        .to_string();
    assert!(coffer::gateway::ids::is_payment_token(&token), "{token}");

    let p = get_profile(&app, "hp-new").await;
    assert_eq!(p["profileExists"], true, "{p}");
    let instruments = p["paymentInstruments"].as_array().expect("instruments");
    assert_eq!(instruments.len(), 1, "{p}");
    assert_eq!(instruments[0]["paymentToken"], token.as_str(), "{p}");
    assert_eq!(p["customer"]["firstName"], "Nia", "{p}");

    // The same card again on another page is the same instrument (dedup by fingerprint).
    let (_, path2) = page_debit(
        &app,
        json!({"withRegister": true, "customerProfileData": {"customerIdentification": "hp-new"}}),
    )
    .await;
    let (_, html) = page(&b, &app, &path2).await;
    assert_eq!(radios(&html)[0], (token.clone(), true));
    let r = submit(&b, &app, &path2, &path2, &new_card("4242424242424242")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let p = get_profile(&app, "hp-new").await;
    assert_eq!(p["paymentInstruments"].as_array().map(Vec::len), Some(1));

    // The stored token pays through the API.
    let v = api(
        &app,
        "debit",
        json!({"merchantTransactionId": mtid(), "amount": "3.00", "currency": "EUR", "transactionToken": token}),
    )
    .await;
    assert_eq!(v["returnType"], "FINISHED", "{v}");
    assert_eq!(v["returnData"]["lastFourDigits"], "4242");
    // No card number anywhere at rest in the sessions.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM payment_sessions WHERE request LIKE '%4242%' OR state LIKE '%4242%' OR sealed_card IS NOT NULL"
        ),
        0
    );
}

#[tokio::test]
async fn cancel_bad_csrf_and_bad_card_input_on_the_hosted_page() {
    let app = TestApp::demo().await;
    let (uuid, path) = page_debit(&app, json!({})).await;
    let b = client();
    let (_, html) = page(&b, &app, &path).await;
    assert_eq!(radios(&html), vec![("new".to_string(), true)]);

    // A forged form: 403, nothing changes.
    let r = b
        .post(app.url(&path))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = client()
        .post(app.url(&format!("{path}/cancel")))
        .form(&[("csrf_token", "")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "PENDING");

    // Bad card input: 422 with a message per field, still PENDING, nothing echoed.
    let r = submit(
        &b,
        &app,
        &path,
        &path,
        &[
            ("instrument", "new"),
            ("card_holder", ""),
            ("card_number", "4111111111111112"),
            ("exp_month", "13"),
            ("exp_year", "2031"),
            ("cvv", "12"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let html = r.text().await.expect("body");
    for id in [
        "card_holder-error",
        "card_number-error",
        "exp_month-error",
        "cvv-error",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "{id}: {html}");
    }
    assert!(html.contains("aria-invalid=\"true\""));
    assert!(!html.contains("4111111111111112"));
    // An expired card, and a saved card that is not this profile's.
    let r = submit(
        &b,
        &app,
        &path,
        &path,
        &[
            ("instrument", "new"),
            ("card_holder", "Ann"),
            ("card_number", "4111111111111111"),
            ("exp_month", "01"),
            ("exp_year", "2020"),
            ("cvv", "123"),
        ],
    )
    .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains("expired"));
    let foreign = register(&app, "hp-other", "4111111111111111", false).await;
    let r = submit(&b, &app, &path, &path, &[("instrument", foreign.as_str())]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains("instrument-error"));
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "PENDING");

    // Cancel: cancelUrl, ERROR 2002.
    let cancel = format!("{path}/cancel");
    let r = submit(&b, &app, &path, &cancel, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), CANCEL);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "ERROR", "{st}");
    assert_eq!(error_code(&st), 2002, "{st}");
    assert_eq!(st["errors"][0]["errorMessage"], "User cancelled");

    // Used up: neither pay nor cancel again.
    let (s, _) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::GONE);
    let csrf = checkout_csrf(&b, &app).await;
    let mut f = vec![("csrf_token", csrf.as_str())];
    f.extend(new_card("4111111111111111"));
    let r = b.post(app.url(&path)).form(&f).send().await.expect("POST");
    assert_eq!(r.status(), StatusCode::GONE);
    let r = b
        .post(app.url(&cancel))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::GONE);
    assert_eq!(error_code(&status(&app, &uuid).await), 2002);
}

#[tokio::test]
async fn expired_pages_and_challenges_fail_with_2005() {
    let app = TestApp::demo().await;
    // Lazily, when the page is hit after its time.
    let (uuid, path) = page_debit(&app, json!({})).await;
    let b = client();
    let (s, _) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::OK);
    let db = app.db();
    {
        use diesel::RunQueryDsl;
        let mut c = db.get().expect("conn");
        diesel::sql_query(format!(
            "UPDATE payment_sessions SET expires_at = '2000-01-01 00:00:00' WHERE transaction_uuid = '{uuid}'"
        ))
        .execute(&mut *c)
        .expect("update");
    }
    let (s, html) = page(&b, &app, &path).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(html.contains("expired"), "{html}");
    assert!(html.contains(&format!("href=\"{ERROR}\"")), "{html}");
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "ERROR");
    assert_eq!(error_code(&st), 2005, "{st}");
    assert_eq!(st["errors"][0]["errorMessage"], "Transaction expired");

    // By the periodic sweep: a page and a 3-D Secure challenge (whose sealed card goes too).
    let (page_uuid, page_path) = page_debit(&app, json!({})).await;
    let card = tokenize(&app, "demo-shop-public", "4000000000003220").await;
    let v = api(
        &app,
        "debit",
        merged(
            json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": card}),
            urls(),
        ),
    )
    .await;
    let (ch_uuid, ch_path) = redirect_of(&app, &v, "/3ds/");
    let sealed = format!(
        "SELECT COUNT(*) AS n FROM payment_sessions WHERE transaction_uuid = '{ch_uuid}' AND sealed_card IS NOT NULL"
    );
    assert_eq!(count(&app, &sealed), 1);
    let mut c = db.get().expect("conn");
    let now = chrono::Utc::now().naive_utc();
    assert_eq!(
        coffer::payments::checkout::expire_due(&mut c, now).expect("sweep"),
        0,
        "nothing is due yet"
    );
    let later = now + chrono::Duration::minutes(31);
    assert_eq!(
        coffer::payments::checkout::expire_due(&mut c, later).expect("sweep"),
        2
    );
    assert_eq!(
        coffer::payments::checkout::expire_due(&mut c, later).expect("sweep"),
        0
    );
    drop(c);
    for u in [&page_uuid, &ch_uuid] {
        let st = status(&app, u).await;
        assert_eq!(error_code(&st), 2005, "{st}");
    }
    assert_eq!(count(&app, &sealed), 0, "the sealed card is dropped");
    let (s, html) = page(&b, &app, &page_path).await;
    assert_eq!(s, StatusCode::GONE);
    assert!(html.contains("expired"));
    let (s, _) = page(&b, &app, &ch_path).await;
    assert_eq!(s, StatusCode::GONE);
}

/// Debits `token` through the API and expects a challenge; returns (uuid, path).
pub async fn challenged(app: &TestApp, extra: Value) -> (String, String) {
    let v = api(
        app,
        "debit",
        merged(
            merged(
                json!({"merchantTransactionId": mtid(), "amount": "20.00", "currency": "EUR"}),
                urls(),
            ),
            extra,
        ),
    )
    .await;
    redirect_of(app, &v, "/3ds/")
}

pub async fn decide(app: &TestApp, path: &str, action: &str) -> reqwest::Response {
    submit(&client(), app, path, path, &[("action", action)]).await
}

#[tokio::test]
async fn the_3ds_card_through_the_api_is_challenged_approve_succeeds_and_deny_fails_2021() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4000000000003220").await;
    let (uuid, path) = challenged(&app, json!({"transactionToken": card})).await;
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "PENDING");
    let (s, html) = page(&client(), &app, &path).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("400000******3220") && html.contains("20.00 EUR"));
    assert!(html.contains("id=\"approve\"") && html.contains("id=\"deny\""));
    assert!(!html.contains("4000000000003220"));
    // The payment.js token was used up by the first step.
    assert_eq!(
        count(
            &app,
            &format!("SELECT COUNT(*) AS n FROM card_tokens WHERE token = '{card}'")
        ),
        0
    );
    let r = decide(&app, &path, "approve").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    assert_eq!(st["returnData"]["threeDSecure"], "MANDATORY", "{st}");
    assert_eq!(st["returnData"]["eci"], "05", "{st}");
    assert_eq!(st["returnData"]["lastFourDigits"], "3220", "{st}");
    let (s, _) = page(&client(), &app, &path).await;
    assert_eq!(s, StatusCode::GONE);

    let card = tokenize(&app, "demo-shop-public", "4000000000003220").await;
    let (uuid, path) = challenged(&app, json!({"transactionToken": card})).await;
    let r = decide(&app, &path, "deny").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), ERROR);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "ERROR");
    assert_eq!(error_code(&st), 2021, "{st}");
    assert_eq!(
        st["errors"][0]["errorMessage"],
        "3D-Secure verification failed"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM payment_sessions WHERE sealed_card IS NOT NULL"
        ),
        0
    );
    // A bad action is a 400 and changes nothing; an ordinary card is not challenged.
    let card = tokenize(&app, "demo-shop-public", "4000000000003220").await;
    let (uuid, path) = challenged(&app, json!({"transactionToken": card})).await;
    let r = decide(&app, &path, "maybe").await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "PENDING");
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let v = api(
        &app,
        "debit",
        json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": card}),
    )
    .await;
    assert_eq!(v["returnType"], "FINISHED", "{v}");
}

#[tokio::test]
async fn a_stored_3ds_card_is_registered_after_a_challenge_and_challenged_when_charged() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4000000000003220").await;
    let v = api(
        &app,
        "register",
        merged(
            json!({"merchantTransactionId": mtid(), "transactionToken": card,
                   "customerProfileData": {"customerIdentification": "hp-3ds"}}),
            urls(),
        ),
    )
    .await;
    let (uuid, path) = redirect_of(&app, &v, "/3ds/");
    // Nothing is stored before the challenge is approved.
    assert_eq!(get_profile(&app, "hp-3ds").await["profileExists"], false);
    let r = decide(&app, &path, "approve").await;
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    let token = st["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    let p = get_profile(&app, "hp-3ds").await;
    assert_eq!(p["paymentInstruments"][0]["paymentToken"], token.as_str());

    // Charging the stored card: challenged again. Deny, then approve.
    let (uuid, path) = challenged(&app, json!({"transactionToken": token})).await;
    let (_, html) = page(&client(), &app, &path).await;
    assert!(html.contains("400000******3220"), "{html}");
    let r = decide(&app, &path, "deny").await;
    assert_eq!(location(&r), ERROR);
    assert_eq!(error_code(&status(&app, &uuid).await), 2021);
    let (uuid, path) = challenged(&app, json!({"transactionToken": token})).await;
    let r = decide(&app, &path, "approve").await;
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    assert_eq!(st["returnData"]["eci"], "05");
    assert_eq!(st["customerProfileData"]["paymentToken"], token.as_str());

    // Deregistered while its challenge is open: the challenge cannot charge it any more.
    let (uuid, path) = challenged(&app, json!({"transactionToken": token})).await;
    let v = api(
        &app,
        "deregister",
        json!({"merchantTransactionId": mtid(), "transactionToken": token}),
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    let r = client().get(app.url(&path)).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), ERROR);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "ERROR", "{st}");
    assert_eq!(error_code(&st), 1002, "{st}");
}

#[tokio::test]
async fn mandatory_3ds_challenges_an_ordinary_card() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "5555555555554444").await;
    let (uuid, path) = challenged(
        &app,
        json!({"transactionToken": card, "threeDSecureData": {"3dsecure": "MANDATORY"}}),
    )
    .await;
    let r = decide(&app, &path, "approve").await;
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    assert_eq!(st["returnData"]["threeDSecure"], "MANDATORY");
    assert_eq!(st["returnData"]["eci"], "02", "Mastercard-style ECI");
    // OPTIONAL (or OFF) on an ordinary card: no challenge.
    let card = tokenize(&app, "demo-shop-public", "5555555555554444").await;
    let v = api(
        &app,
        "debit",
        json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
               "transactionToken": card, "threeDSecureData": {"3dsecure": "OPTIONAL"}}),
    )
    .await;
    assert_eq!(v["returnType"], "FINISHED", "{v}");
}

#[tokio::test]
async fn the_hosted_page_with_a_3ds_card_goes_page_then_issuer_then_merchant() {
    let app = TestApp::demo().await;
    let (uuid, path) = page_debit(&app, json!({})).await;
    let b = client();
    let r = submit(&b, &app, &path, &path, &new_card("4000000000003220")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let issuer = location(&r);
    let issuer = issuer
        .strip_prefix(&app.addr)
        .expect("on Coffer")
        .to_string();
    assert!(issuer.starts_with("/3ds/"), "{issuer}");
    assert_eq!(status(&app, &uuid).await["transactionStatus"], "PENDING");
    let (s, _) = page(&b, &app, &path).await;
    assert_eq!(
        s,
        StatusCode::GONE,
        "the page is done once the challenge starts"
    );
    let r = submit(&b, &app, &issuer, &issuer, &[("action", "approve")]).await;
    assert_eq!(location(&r), SUCCESS);
    let st = status(&app, &uuid).await;
    assert_eq!(st["transactionStatus"], "SUCCESS", "{st}");
    assert_eq!(st["returnData"]["eci"], "05");
    assert_eq!(st["returnData"]["cardHolder"], "Ann Smith");
}

#[tokio::test]
async fn without_merchant_urls_coffer_shows_its_own_result_page() {
    let app = TestApp::demo().await;
    let v = api(
        &app,
        "debit",
        json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR"}),
    )
    .await;
    let (uuid, path) = redirect_of(&app, &v, "/pay/");
    let r = submit(&client(), &app, &path, &path, &new_card("4000000000000002")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.text().await.expect("body").contains("Payment declined"));
    let st = status(&app, &uuid).await;
    assert_eq!(error_code(&st), 2003, "{st}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_simultaneous_posts_on_one_page_charge_once() {
    let app = TestApp::demo().await;
    for _ in 0..3 {
        let (uuid, path) = page_debit(
            &app,
            json!({"withRegister": true, "customerProfileData": {"customerIdentification": "hp-race"}}),
        )
        .await;
        let b = client();
        let (_, html) = page(&b, &app, &path).await;
        let csrf = extract_csrf(&html).expect("csrf");
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..4 {
            let (b, url, csrf) = (b.clone(), app.url(&path), csrf.clone());
            tasks.spawn(async move {
                let mut f = vec![("csrf_token", csrf.as_str())];
                f.extend(new_card("4111111111111111"));
                let r = b.post(url).form(&f).send().await.expect("POST");
                (r.status().as_u16(), location(&r))
            });
        }
        let mut answers = vec![];
        while let Some(r) = tasks.join_next().await {
            answers.push(r.expect("task"));
        }
        answers.sort();
        assert_eq!(
            answers
                .iter()
                .filter(|(s, l)| *s == 303 && l == SUCCESS)
                .count(),
            1,
            "{answers:?}"
        );
        assert!(
            answers
                .iter()
                .filter(|(s, _)| *s != 303)
                .all(|(s, _)| *s == 410),
            "{answers:?}"
        );
        assert_eq!(status(&app, &uuid).await["transactionStatus"], "SUCCESS");
    }
    let p = get_profile(&app, "hp-race").await;
    assert_eq!(
        p["paymentInstruments"].as_array().map(Vec::len),
        Some(1),
        "{p}"
    );
}

/// The payment pages keep their CSRF secret in their own cookie: opening one never sets the
/// console's session cookie, so a console user sent to a payment page from a shop (a cross-site
/// navigation, on which the browser leaves the Strict session cookie out) stays logged in.
#[tokio::test]
async fn payment_pages_never_touch_the_console_session() {
    let app = TestApp::demo().await;
    app.login_ok("merchant", "merchant-demo").await;
    let (_, path) = page_debit(&app, json!({})).await;

    // The cross-site arrival: no cookie at all is sent.
    let bare = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let r = bare.get(app.url(&path)).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    let set: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("coffer_checkout="), "{set:?}");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set[0].contains(attr), "{attr} in {set:?}");
    }

    // In the console user's own browser: pay on the page, then the console still answers.
    let mut fields = new_card("4111111111111111");
    fields.push(("action", "pay"));
    let r = submit(&app.client, &app, &path, &path, &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), SUCCESS);
    let (s, html) = app.get_html("/merchants").await;
    assert_eq!(s, StatusCode::OK, "still logged in: {html}");
    assert!(html.contains("Acme Shop"));

    // The page's secret is not the console's: the console CSRF token does not pass there.
    let (_, path) = page_debit(&app, json!({})).await;
    let console_csrf = app.csrf().await;
    let r = app
        .client
        .post(app.url(&format!("{path}/cancel")))
        .form(&[("csrf_token", console_csrf.as_str())])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
