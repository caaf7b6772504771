//! A deactivated merchant, or a deactivated connector of an active merchant, is refused on
//! every API (401 on the IXOPAY Transaction, Customer Profiles and Status APIs and on Monri,
//! 404 on tokenize), its payment pages charge nothing and, for a merchant, its merchant admins
//! cannot sign in; reactivating restores everything. Deactivation goes through the console, as
//! a tenant manager does it.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::checkout::{challenged, page, page_debit, register};
use crate::helpers::*;

const API_KEY: &str = "demo-shop-cards";
const PUBLIC_KEY: &str = "demo-shop-public";
const MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const MONRI_KEY: &str = "demo-shop-merchant-key";
const IDENT: &str = "deact-1";

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop-api:shop-api-demo")
    )
}

async fn answer(r: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = r.send().await.expect("request");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// A debit of the stored instrument `token` on the Acme shop's card connector.
async fn debit(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let body = json!({"merchantTransactionId": format!("deact-{}", coffer::ids::random_hex(6)),
                      "amount": "3.00", "currency": "EUR", "transactionToken": token});
    answer(
        app.client
            .post(app.url(&format!("/api/v3/transaction/{API_KEY}/debit")))
            .header("content-type", "application/json; charset=utf-8")
            .header("authorization", basic())
            .body(body.to_string()),
    )
    .await
}

async fn get_profile(app: &TestApp) -> (StatusCode, Value) {
    answer(
        app.client
            .post(app.url(&format!("/api/v3/customerProfiles/{API_KEY}/getProfile")))
            .header("content-type", "application/json; charset=utf-8")
            .header("authorization", basic())
            .body(json!({ "customerIdentification": IDENT }).to_string()),
    )
    .await
}

async fn status(app: &TestApp, uuid: &str) -> (StatusCode, Value) {
    answer(
        app.client
            .get(app.url(&format!("/api/v3/status/{API_KEY}/getByUuid/{uuid}")))
            .header("authorization", basic()),
    )
    .await
}

async fn monri_oauth(app: &TestApp) -> (StatusCode, Value) {
    let body = json!({"client_id": MONRI_TOKEN, "client_secret": MONRI_KEY,
                      "grant_type": "client_credentials", "scopes": ["customers"]});
    answer(
        app.client
            .post(app.url("/v2/oauth"))
            .header("content-type", "application/json")
            .body(body.to_string()),
    )
    .await
}

/// `GET /v2/customers` with the given Authorization header.
async fn monri_list(app: &TestApp, authorization: String) -> (StatusCode, Value) {
    answer(
        app.client
            .get(app.url("/v2/customers"))
            .header("accept", "application/json")
            .header("authorization", authorization),
    )
    .await
}

fn wp3() -> String {
    let ts = chrono::Utc::now().timestamp();
    let digest = Sha512::digest(format!("{MONRI_KEY}{ts}{MONRI_TOKEN}/v2/customers").as_bytes());
    format!("WP3-v2.1 {MONRI_TOKEN} {ts} {}", hex::encode(digest))
}

async fn tokenize(app: &TestApp) -> (StatusCode, Value) {
    answer(
        app.client
            .post(app.url(&format!("/api/v3/paymentjs/{PUBLIC_KEY}/tokenize")))
            .header("content-type", "application/json")
            .body(
                json!({"cardHolder": "Ann Smith", "number": "4111111111111111", "cvv": "123",
                       "month": "12", "year": "2030"})
                .to_string(),
            ),
    )
    .await
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

fn tx_status(app: &TestApp, uuid: &str) -> String {
    use coffer::db::schema::transactions;
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    transactions::table
        .find(uuid)
        .select(transactions::status)
        .first(&mut *c)
        .expect("transaction")
}

/// What the checks use: a stored instrument, a finished transaction, a Bearer token, an open
/// payment page and an open 3-D Secure challenge (both already seen once by `browser`, whose
/// payment-page CSRF secret is `csrf`).
struct Probe {
    stored: String,
    finished: String,
    bearer: String,
    browser: reqwest::Client,
    csrf: String,
    page_uuid: String,
    page: String,
    challenge_uuid: String,
    challenge: String,
}

async fn probe(app: &TestApp) -> Probe {
    let stored = register(app, IDENT, "5555555555554444", true).await;
    let (s, v) = debit(app, &stored).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    let finished = v["uuid"].as_str().expect("uuid").to_string();
    let (s, v) = monri_oauth(app).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bearer = v["access_token"].as_str().expect("token").to_string();
    let (page_uuid, page_path) = page_debit(
        app,
        json!({"customerProfileData": {"customerIdentification": IDENT}}),
    )
    .await;
    let (s, v) = tokenize(app).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let three_ds = crate::api_transactions::tokenize(app, PUBLIC_KEY, "4000000000003220").await;
    let (challenge_uuid, challenge) = challenged(app, json!({"transactionToken": three_ds})).await;
    let browser = client();
    let (s, html) = page(&browser, app, &page_path).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let csrf = extract_csrf(&html).expect("csrf");
    let (s, html) = page(&browser, app, &challenge).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    assert_eq!(extract_csrf(&html).as_deref(), Some(csrf.as_str()));
    Probe {
        stored,
        finished,
        bearer,
        browser,
        csrf,
        page_uuid,
        page: page_path,
        challenge_uuid,
        challenge,
    }
}

fn assert_ixopay_401(s: StatusCode, v: &Value, what: &str) {
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
    assert_eq!(v["success"], false, "{what}: {v}");
    assert_eq!(v["errorCode"], 1000, "{what}: {v}");
    assert!(
        v["errorMessage"]
            .as_str()
            .is_some_and(|m| m.starts_with("Authentication failed")),
        "{what}: {v}"
    );
}

fn assert_monri_401(s: StatusCode, v: &Value, what: &str) {
    assert_eq!(s, StatusCode::UNAUTHORIZED, "{what}: {v}");
    assert_eq!(v["status"], "invalid-request", "{what}: {v}");
}

/// Every way of acting as the connector is refused, and nothing is written or charged.
async fn assert_refused(app: &TestApp, p: &Probe) {
    let before = count(app, "SELECT COUNT(*) AS n FROM transactions");
    let (s, v) = debit(app, &p.stored).await;
    assert_ixopay_401(s, &v, "debit with a stored token");
    assert_eq!(
        count(app, "SELECT COUNT(*) AS n FROM transactions"),
        before,
        "no transaction written"
    );
    let (s, v) = get_profile(app).await;
    assert_ixopay_401(s, &v, "getProfile");
    let (s, v) = status(app, &p.finished).await;
    assert_ixopay_401(s, &v, "Status API");

    let (s, v) = monri_oauth(app).await;
    assert_monri_401(s, &v, "Monri OAuth");
    let (s, v) = monri_list(app, format!("Bearer {}", p.bearer)).await;
    assert_monri_401(s, &v, "Bearer issued before");
    let (s, v) = monri_list(app, wp3()).await;
    assert_monri_401(s, &v, "WP3-v2.1");

    let tokens = count(app, "SELECT COUNT(*) AS n FROM card_tokens");
    let (s, v) = tokenize(app).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "tokenize: {v}");
    assert_eq!(v["errorCode"], 1000, "tokenize: {v}");
    assert_eq!(count(app, "SELECT COUNT(*) AS n FROM card_tokens"), tokens);

    // The payment page and the challenge: not found, and a post changes nothing.
    for (path, fields) in [
        (&p.page, ("instrument", p.stored.as_str())),
        (&p.challenge, ("action", "approve")),
    ] {
        let (s, html) = page(&p.browser, app, path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "GET {path}: {html}");
        let r = p
            .browser
            .post(app.url(path))
            .form(&[("csrf_token", p.csrf.as_str()), fields])
            .send()
            .await
            .expect("POST");
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "POST {path}");
    }
    for uuid in [&p.page_uuid, &p.challenge_uuid] {
        assert_eq!(tx_status(app, uuid), "PENDING", "{uuid} not charged");
    }
    assert_eq!(
        count(
            app,
            &format!(
                "SELECT COUNT(*) AS n FROM payment_sessions WHERE status = 'open' \
                 AND transaction_uuid IN ('{}', '{}')",
                p.page_uuid, p.challenge_uuid
            )
        ),
        2,
        "both payment sessions still open"
    );
    assert_eq!(
        count(app, "SELECT COUNT(*) AS n FROM transactions"),
        before,
        "nothing written by the pages"
    );
}

/// Every way of acting as the connector works (the page and the challenge are completed).
async fn assert_working(app: &TestApp, p: &Probe) {
    let (s, v) = debit(app, &p.stored).await;
    assert_eq!(s, StatusCode::OK, "debit: {v}");
    assert_eq!(v["success"], true, "debit: {v}");
    assert_eq!(v["returnType"], "FINISHED", "debit: {v}");
    let (s, v) = get_profile(app).await;
    assert_eq!(s, StatusCode::OK, "getProfile: {v}");
    assert_eq!(v["success"], true, "getProfile: {v}");
    let (s, v) = status(app, &p.finished).await;
    assert_eq!(s, StatusCode::OK, "status: {v}");
    assert_eq!(v["transactionStatus"], "SUCCESS", "status: {v}");

    let (s, v) = monri_oauth(app).await;
    assert_eq!(s, StatusCode::OK, "Monri OAuth: {v}");
    let (s, v) = monri_list(app, format!("Bearer {}", p.bearer)).await;
    assert_eq!(s, StatusCode::OK, "Bearer issued before: {v}");
    let (s, v) = monri_list(app, wp3()).await;
    assert_eq!(s, StatusCode::OK, "WP3-v2.1: {v}");

    let (s, v) = tokenize(app).await;
    assert_eq!(s, StatusCode::OK, "tokenize: {v}");

    let (s, html) = page(&p.browser, app, &p.page).await;
    assert_eq!(s, StatusCode::OK, "{html}");
    let r = p
        .browser
        .post(app.url(&p.page))
        .form(&[
            ("csrf_token", p.csrf.as_str()),
            ("instrument", p.stored.as_str()),
        ])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(tx_status(app, &p.page_uuid), "SUCCESS");
    let r = p
        .browser
        .post(app.url(&p.challenge))
        .form(&[("csrf_token", p.csrf.as_str()), ("action", "approve")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(tx_status(app, &p.challenge_uuid), "SUCCESS");
}

/// The manager (logged in on `app`'s own client) sets the merchant active or inactive.
async fn set_merchant_active(app: &TestApp, merchant: &str, active: bool) {
    let r = app
        .post_form(
            &format!("/merchants/{merchant}/active"),
            &[("active", if active { "true" } else { "false" })],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    let dd = if active {
        "<span class=\"badge badge-ok\">Active</span>"
    } else {
        "<span class=\"badge\">Inactive</span>"
    };
    assert!(page.contains(&format!("<dd>{dd}</dd>")), "{page}");
}

/// The manager ticks or unticks "active" in the Connector Base Data, keeping the rest.
async fn set_connector_active(app: &TestApp, connector: &str, active: bool) {
    use coffer::db::schema::connectors;
    use diesel::prelude::*;
    let (name, container, ignore_global, signing): (String, Option<String>, bool, bool) = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        connectors::table
            .find(connector)
            .select((
                connectors::name,
                connectors::container_id,
                connectors::ignore_global,
                connectors::signing,
            ))
            .first(&mut *c)
            .expect("connector")
    };
    let container = container.unwrap_or_default();
    let mut fields = vec![
        ("name", name.as_str()),
        ("container_id", container.as_str()),
        ("confirmed", "yes"),
    ];
    if ignore_global {
        fields.push(("ignore_global", "1"));
    }
    if signing {
        fields.push(("signing", "1"));
    }
    if active {
        fields.push(("active", "1"));
    }
    let r = app
        .post_form(&format!("/connectors/{connector}"), &fields)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let db = app.db();
    let mut c = db.get().expect("conn");
    let now: bool = connectors::table
        .find(connector)
        .select(connectors::active)
        .first(&mut *c)
        .expect("connector");
    assert_eq!(now, active);
}

async fn merchant_login(b: &TestBrowser<'_>, password: &str) -> reqwest::Response {
    b.post_form(
        "/login",
        &[("username", "merchant"), ("password", password)],
    )
    .await
}

#[tokio::test]
async fn a_deactivated_merchant_is_refused_everywhere_and_reactivating_restores_everything() {
    let app = TestApp::demo().await;
    let p = probe(&app).await;
    // A merchant admin already signed in before the deactivation.
    let signed_in = app.other_browser();
    signed_in.login_ok("merchant", "merchant-demo").await;
    let (s, _) = signed_in.get_html("/connectors").await;
    assert_eq!(s, StatusCode::OK);

    app.login_ok("manager", "manager-demo").await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    set_merchant_active(&app, &shop, false).await;

    assert_refused(&app, &p).await;

    // The merchant's admin: the existing session ends, and signing in is refused with the
    // answer a wrong password gets.
    let r = signed_in
        .client
        .get(app.url("/connectors"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fconnectors");
    let fresh = app.other_browser();
    let wrong = merchant_login(&fresh, "not-the-password").await;
    let wrong_status = wrong.status();
    let wrong_page = wrong.text().await.expect("body");
    let r = merchant_login(&fresh, "merchant-demo").await;
    assert_eq!(r.status(), wrong_status, "refused like a wrong password");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Unknown username or wrong password."),
        "{page}"
    );
    assert!(wrong_page.contains("Unknown username or wrong password."));
    let r = fresh.client.get(app.url("/")).send().await.expect("GET");
    assert_eq!(location(&r), "/login", "no session was opened");

    // Reactivated: everything works again.
    set_merchant_active(&app, &shop, true).await;
    assert_working(&app, &p).await;
    let again = app.other_browser();
    again.login_ok("merchant", "merchant-demo").await;
    let (s, _) = again.get_html("/connectors").await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn a_deactivated_connector_of_an_active_merchant_is_refused_on_its_apis() {
    let app = TestApp::demo().await;
    let p = probe(&app).await;
    app.login_ok("manager", "manager-demo").await;
    let cards = connector_id(&app, "Acme Shop Cards");
    set_connector_active(&app, &cards, false).await;

    assert_refused(&app, &p).await;
    // The merchant stays active: its admin still signs in.
    app.other_browser()
        .login_ok("merchant", "merchant-demo")
        .await;

    set_connector_active(&app, &cards, true).await;
    assert_working(&app, &p).await;
}

/// The confirmation states what a merchant's deactivation stops, in numbers, before anything
/// changes (issue [console], point 5).
#[tokio::test]
async fn the_merchant_deactivation_confirmation_states_its_impact_in_numbers() {
    let app = TestApp::demo().await;
    register(&app, IDENT, "4111111111111111", true).await;
    app.login_ok("manager", "manager-demo").await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    let (s, page) = app.get_html(&format!("/merchants/{shop}/deactivate")).await;
    assert_eq!(s, StatusCode::OK);
    let text = page.replace('\n', " ");
    for line in [
        "will refuse every API call",
        "1 stored payment instrument tied to its connectors can no longer be charged through them",
        "1 API user will be refused.",
        "1 merchant admin can no longer sign in.",
    ] {
        assert!(text.contains(line), "{line}: {page}");
    }
    // Nothing changed: the merchant still charges.
    let db = app.db();
    let mut c = db.get().expect("conn");
    use diesel::prelude::*;
    let active: bool = coffer::db::schema::merchants::table
        .find(&shop)
        .select(coffer::db::schema::merchants::active)
        .first(&mut *c)
        .expect("merchant");
    assert!(active);
}
