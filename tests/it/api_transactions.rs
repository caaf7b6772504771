use base64::Engine;
use coffer::gateway::signature::{self, BodyHash};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const CT: &str = "application/json; charset=utf-8";

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// POSTs JSON to the Transaction API and returns (status, body).
pub(crate) async fn tx(
    app: &TestApp,
    api_key: &str,
    kind: &str,
    creds: (&str, &str),
    body: &Value,
) -> (StatusCode, Value) {
    raw(app, api_key, kind, creds, &body.to_string()).await
}

async fn raw(
    app: &TestApp,
    api_key: &str,
    kind: &str,
    creds: (&str, &str),
    body: &str,
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/transaction/{api_key}/{kind}")))
        .header("content-type", CT)
        .header("authorization", basic(creds.0, creds.1))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

pub async fn tokenize(app: &TestApp, public_key: &str, number: &str) -> String {
    let cvv = if number.len() == 15 { "1234" } else { "123" };
    let r = app
        .client
        .post(app.url(&format!("/api/v3/paymentjs/{public_key}/tokenize")))
        .json(&json!({"cardHolder": "Ann Smith", "number": number, "cvv": cvv, "month": "12", "year": "2030"}))
        .send()
        .await
        .expect("tokenize");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], true);
    v["token"].as_str().expect("token").to_string()
}

pub(crate) const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const OUTLET: (&str, &str) = ("outlet-api", "outlet-api-demo");
pub(crate) const GLOBEX: (&str, &str) = ("globex-api", "globex-api-demo");

fn mtid() -> String {
    format!("order-{}", coffer::ids::random_hex(6))
}

pub(crate) fn debit(token: &str, extra: Value) -> Value {
    let mut b = json!({"merchantTransactionId": mtid(), "amount": "9.99", "currency": "EUR", "transactionToken": token});
    if let (Some(o), Some(e)) = (b.as_object_mut(), extra.as_object()) {
        for (k, v) in e {
            o.insert(k.clone(), v.clone());
        }
    }
    b
}

fn is_hex(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

pub(crate) fn db_count(app: &TestApp, sql: &str) -> i64 {
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

#[tokio::test]
async fn the_seed_flow_registers_a_profile_and_charges_its_token() {
    seed_flow(TestApp::demo().await).await;
}

/// The same with the vault's keys in the key manager (`COFFER_KMS=transit`, a real OpenBao).
#[tokio::test]
async fn the_seed_flow_in_transit_mode_registers_a_profile_and_charges_its_token() {
    let Some(bao) = crate::bao::bao("seed flow in transit mode") else {
        return;
    };
    let key = bao.new_key();
    let app = TestApp::spawn_with(true, |s| bao.apply(s, &bao.addr, &key)).await;
    seed_flow(app).await;
}

async fn seed_flow(app: TestApp) {
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let body = debit(
        &card,
        json!({"withRegister": true,
               "customer": {"identification": "c-1", "billingCountry": "US", "birthDate": "1970-01-01", "email": "Ann@Example.com", "firstName": "Ann"},
               "customerProfileData": {"customerIdentification": "c-1", "markAsPreferred": true}}),
    );
    let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true);
    assert_eq!(v["returnType"], "FINISHED");
    assert_eq!(v["paymentMethod"], "Creditcard");
    let uuid = v["uuid"].as_str().expect("uuid");
    assert!(is_hex(uuid, 20), "{uuid}");
    let today = chrono::Utc::now().format("%Y%m%d").to_string();
    assert_eq!(v["purchaseId"], format!("{today}-{uuid}"));
    let guid = v["customerProfileData"]["profileGuid"]
        .as_str()
        .expect("guid")
        .to_string();
    assert!(coffer::gateway::ids::is_profile_guid(&guid), "{guid}");
    assert_eq!(v["customerProfileData"]["customerIdentification"], "c-1");
    let token = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    assert!(coffer::gateway::ids::is_payment_token(&token), "{token}");
    assert_eq!(v["returnData"]["lastFourDigits"], "1111");
    assert!(
        !v.to_string().contains("4111111111111111"),
        "no card number in responses"
    );
    // The card token was single-use.
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        &debit(&card, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // The profile holds the customer data and one preferred instrument.
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM profiles WHERE customer_identification = 'c-1'"
        ),
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM instruments WHERE is_preferred = TRUE"
        ),
        1
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM profiles WHERE email = 'ann@example.com'"
        ),
        1
    );
    // Charging with the token.
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], true, "{v}");
    // Register a second card as preferred, by profileGuid.
    let card2 = tokenize(&app, "demo-shop-public", "5555555555554444").await;
    let reg = json!({"merchantTransactionId": mtid(), "transactionToken": card2,
                     "customerProfileData": {"profileGuid": guid, "markAsPreferred": true}});
    let (s, v) = tx(&app, "demo-shop-cards", "register", SHOP, &reg).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let token2 = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token2")
        .to_string();
    assert_ne!(token, token2);
    assert_eq!(db_count(&app, "SELECT COUNT(*) AS n FROM instruments"), 2);
    assert_eq!(
        db_count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM instruments WHERE is_preferred = TRUE AND payment_token = '{token2}'"
            )
        ),
        1,
        "exactly one preferred instrument, the new one"
    );
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM instruments WHERE is_preferred = TRUE"
        ),
        1
    );
    // Deleting the profile makes its tokens fail clearly.
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let p = coffer::models::profile::find_by_guid(&mut c, &guid)
            .expect("q")
            .expect("profile");
        coffer::models::profile::delete_with_instruments(&mut c, &p.id).expect("delete");
    }
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errorCode"], 1002);
    assert!(
        v["errorMessage"]
            .as_str()
            .unwrap_or("")
            .contains("transactionToken")
    );
}

#[tokio::test]
async fn tokens_are_shared_across_merchants_of_one_container_but_not_with_globex() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4242424242424242").await;
    let body = debit(
        &card,
        json!({"withRegister": true, "customerProfileData": {"customerIdentification": "shared-1"}}),
    );
    let (_, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
    let token = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    let (s, v) = tx(
        &app,
        "demo-outlet-cards",
        "debit",
        OUTLET,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["success"], true,
        "Acme Outlet charges Acme Shop's token: {v}"
    );
    let (s, v) = tx(
        &app,
        "demo-globex-cards",
        "debit",
        GLOBEX,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["errorCode"], 1002);
    // An API user of another merchant cannot use the shop's connector at all.
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        OUTLET,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["success"], false);
    // referenceUuid is never shared across merchants.
    let (_, first) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        &debit(&token, json!({})),
    )
    .await;
    let reference = first["uuid"].as_str().expect("uuid").to_string();
    let by_ref = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "referenceUuid": reference});
    let (s, v) = tx(&app, "demo-outlet-cards", "debit", OUTLET, &by_ref).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &by_ref).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], true, "{v}");
}

#[tokio::test]
async fn the_same_card_twice_returns_the_existing_instrument() {
    let app = TestApp::demo().await;
    let mut tokens = vec![];
    for _ in 0..2 {
        let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
        let reg = json!({"merchantTransactionId": mtid(), "transactionToken": card, "customerProfileData": {"customerIdentification": "twice"}});
        let (s, v) = tx(&app, "demo-shop-cards", "register", SHOP, &reg).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        tokens.push(
            v["customerProfileData"]["paymentToken"]
                .as_str()
                .expect("t")
                .to_string(),
        );
    }
    assert_eq!(tokens[0], tokens[1]);
    assert_eq!(db_count(&app, "SELECT COUNT(*) AS n FROM instruments"), 1);
}

#[tokio::test]
async fn sixteen_concurrent_registrations_of_one_new_customer_give_one_profile_with_one_instrument()
{
    let app = TestApp::demo().await;
    let mut cards = vec![];
    for _ in 0..16 {
        cards.push(tokenize(&app, "demo-shop-public", "4242424242424242").await);
    }
    let mut handles = vec![];
    for card in cards {
        let url = app.url("/api/v3/transaction/demo-shop-cards/debit");
        let body = debit(
            &card,
            json!({"withRegister": true, "customerProfileData": {"customerIdentification": "race-1"}}),
        );
        let client = client();
        handles.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .header("content-type", CT)
                .header("authorization", basic(SHOP.0, SHOP.1))
                .body(body.to_string())
                .send()
                .await
                .expect("POST");
            let s = r.status();
            (s, r.json::<Value>().await.unwrap_or(Value::Null))
        }));
    }
    let mut tokens = std::collections::BTreeSet::new();
    let mut guids = std::collections::BTreeSet::new();
    for h in handles {
        let (s, v) = h.await.expect("join");
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["success"], true, "{v}");
        tokens.insert(
            v["customerProfileData"]["paymentToken"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
        guids.insert(
            v["customerProfileData"]["profileGuid"]
                .as_str()
                .unwrap_or("")
                .to_string(),
        );
    }
    assert_eq!(guids.len(), 1, "one profile");
    assert_eq!(tokens.len(), 1, "one instrument");
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM profiles WHERE customer_identification = 'race-1'"
        ),
        1
    );
    assert_eq!(db_count(&app, "SELECT COUNT(*) AS n FROM instruments"), 1);
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM transactions WHERE status = 'SUCCESS'"
        ),
        16
    );
}

#[tokio::test]
async fn every_request_error_answers_the_documented_body_and_writes_nothing() {
    let app = TestApp::demo().await;
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", "{not json".into()),
        ("empty body", String::new()),
        ("wrong type", json!({"merchantTransactionId": "a", "amount": 9.99, "currency": "EUR", "transactionToken": "ix::x"}).to_string()),
        ("missing merchantTransactionId", json!({"amount": "9.99", "currency": "EUR", "transactionToken": "ix::x"}).to_string()),
        ("over-long merchantTransactionId", json!({"merchantTransactionId": "x".repeat(51), "amount": "9.99", "currency": "EUR", "transactionToken": "ix::x"}).to_string()),
        ("bad amount", json!({"merchantTransactionId": "a", "amount": "9,99", "currency": "EUR", "transactionToken": "ix::x"}).to_string()),
        ("negative amount", json!({"merchantTransactionId": "a", "amount": "-1", "currency": "EUR", "transactionToken": "ix::x"}).to_string()),
        ("too many decimals", json!({"merchantTransactionId": "a", "amount": "1.5", "currency": "JPY", "transactionToken": "ix::x"}).to_string()),
        ("bad currency", json!({"merchantTransactionId": "a", "amount": "1.00", "currency": "eur", "transactionToken": "ix::x"}).to_string()),
        ("unknown currency", json!({"merchantTransactionId": "a", "amount": "1.00", "currency": "XYZ", "transactionToken": "ix::x"}).to_string()),
        ("bad gender", json!({"merchantTransactionId": "a", "amount": "1.00", "currency": "EUR", "transactionToken": "ix::x", "customer": {"gender": "X"}}).to_string()),
        ("profile data without id", json!({"merchantTransactionId": "a", "amount": "1.00", "currency": "EUR", "transactionToken": "ix::x", "customerProfileData": {"markAsPreferred": true}}).to_string()),
        ("JSON array", "[1,2]".into()),
    ];
    for (what, body) in cases {
        let (s, v) = raw(&app, "demo-shop-cards", "debit", SHOP, &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{what}: {v}");
        assert_eq!(v["success"], false, "{what}");
        assert_eq!(v["errorCode"], 1002, "{what}: {v}");
        assert!(
            v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
            "{what}"
        );
    }
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) AS n FROM transactions"),
        0,
        "nothing written"
    );
    let (s, v) = raw(&app, "demo-shop-cards", "teleport", SHOP, "{}").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "wrong"),
        &json!({}),
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(v["success"], false);
    let (s, _) = tx(&app, "no-such-key", "debit", SHOP, &json!({})).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let big = format!(
        "{{\"merchantTransactionId\":\"{}\"}}",
        "x".repeat(2 * 1024 * 1024)
    );
    let (s, v) = raw(&app, "demo-shop-cards", "debit", SHOP, &big).await;
    assert_eq!(s, StatusCode::PAYLOAD_TOO_LARGE, "{v}");
    assert_eq!(v["errorCode"], 1002);
}

#[tokio::test]
async fn declines_duplicates_and_missing_containers_use_their_codes() {
    let app = TestApp::demo().await;
    for (number, code) in [
        ("4000000000000002", 2003),
        ("4000000000009995", 2006),
        ("4000000000000069", 2009),
        ("4000000000000119", 1003),
    ] {
        let card = tokenize(&app, "demo-shop-public", number).await;
        let body = debit(
            &card,
            json!({"withRegister": true, "customerProfileData": {"customerIdentification": format!("d-{code}")}}),
        );
        let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(v["success"], false, "{v}");
        assert_eq!(v["returnType"], "ERROR");
        assert_eq!(v["errors"][0]["errorCode"], code, "{number}: {v}");
    }
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) AS n FROM profiles"),
        0,
        "declines register nothing"
    );
    // Duplicate merchantTransactionId on the same connector: 3004.
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let body = json!({"merchantTransactionId": "dup-1", "amount": "1.00", "currency": "EUR", "transactionToken": card});
    let (s, _) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
    assert_eq!(s, StatusCode::OK);
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let body = json!({"merchantTransactionId": "dup-1", "amount": "1.00", "currency": "EUR", "transactionToken": card});
    let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errorCode"], 3004);
    assert_eq!(
        v["errorMessage"],
        "The transaction ID 'dup-1' already exists!"
    );
    // customerProfileData on a connector without an effective container: 1007.
    let keyring = keyring(&app);
    let outlet_new = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let m = coffer::models::tenant::find_by_name(&mut c, "Acme Retail")
            .expect("q")
            .expect("t");
        let outlet = coffer::models::merchant::find_by_name(&mut c, &m.id, "Acme Outlet")
            .expect("q")
            .expect("m");
        let (k, _) = coffer::console::connectors::create(
            &mut c,
            &keyring,
            &coffer::domain::Actor::system(),
            coffer::console::connectors::NewConnector {
                merchant_id: outlet.id,
                name: "Outlet Plain".into(),
                adapter: "creditcard".into(),
            },
            coffer::console::connectors::Keys {
                api_key: "outlet-plain".into(),
                public_key: "outlet-plain-public".into(),
                shared_secret: "s".repeat(20),
                ..coffer::console::connectors::Keys::generate()
            },
        )
        .expect("connector");
        k
    };
    assert_eq!(outlet_new.api_key, "outlet-plain");
    let card = tokenize(&app, "outlet-plain-public", "4111111111111111").await;
    let body = debit(
        &card,
        json!({"withRegister": true, "customerProfileData": {"customerIdentification": "x"}}),
    );
    let (s, v) = tx(&app, "outlet-plain", "debit", OUTLET, &body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errorCode"], 1007, "{v}");
}

pub fn keyring(app: &TestApp) -> coffer::vault::keyring::Keyring {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::vault::keyring::Keyring::from_settings(&mut c, &app.settings).expect("keyring")
}

#[tokio::test]
async fn capture_void_and_refund_keep_exact_amounts() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let pre = json!({"merchantTransactionId": mtid(), "amount": "10.00", "currency": "EUR", "transactionToken": card});
    let (_, v) = tx(&app, "demo-shop-cards", "preauthorize", SHOP, &pre).await;
    let auth = v["uuid"].as_str().expect("uuid").to_string();
    let follow = |kind: &str, amount: &str, reference: &str| {
        let _ = kind;
        json!({"merchantTransactionId": mtid(), "amount": amount, "currency": "EUR", "referenceUuid": reference})
    };
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "capture",
        SHOP,
        &follow("capture", "4.00", &auth),
    )
    .await;
    assert_eq!(
        (s, v["success"].clone()),
        (StatusCode::OK, json!(true)),
        "{v}"
    );
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "capture",
        SHOP,
        &follow("capture", "6.01", &auth),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(v["errorCode"], 1006);
    assert!(
        v["errorMessage"].as_str().unwrap_or("").contains("6.00"),
        "{v}"
    );
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "capture",
        SHOP,
        &follow("capture", "6.00", &auth),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let capture = v["uuid"].as_str().expect("uuid").to_string();
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "void",
        SHOP,
        &json!({"merchantTransactionId": mtid(), "referenceUuid": auth}),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a captured preauthorization cannot be voided"
    );
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "refund",
        SHOP,
        &follow("refund", "2.50", &capture),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "refund",
        SHOP,
        &follow("refund", "3.51", &capture),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "refund",
        SHOP,
        &follow("refund", "3.50", &capture),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "refund",
        SHOP,
        &follow("refund", "0.01", &capture),
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "fully refunded");
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "refund",
        SHOP,
        &follow("refund", "1.00", &auth),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a preauthorization is not refunded"
    );
    let (s, v) = tx(&app, "demo-shop-cards", "capture", SHOP, &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "USD", "referenceUuid": auth})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    // Void of a fresh preauthorization works once.
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let pre = json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR", "transactionToken": card});
    let (_, v) = tx(&app, "demo-shop-cards", "preauthorize", SHOP, &pre).await;
    let auth2 = v["uuid"].as_str().expect("uuid").to_string();
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "void",
        SHOP,
        &json!({"merchantTransactionId": mtid(), "referenceUuid": auth2}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    let (s, _) = tx(
        &app,
        "demo-shop-cards",
        "capture",
        SHOP,
        &follow("capture", "1.00", &auth2),
    )
    .await;
    assert_eq!(
        s,
        StatusCode::BAD_REQUEST,
        "a voided preauthorization cannot be captured"
    );
    // Status API.
    let r = app
        .client
        .get(app.url(&format!(
            "/api/v3/status/demo-shop-cards/getByUuid/{capture}"
        )))
        .header("authorization", basic(SHOP.0, SHOP.1))
        .send()
        .await
        .expect("GET");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["transactionType"], "CAPTURE");
    assert_eq!(v["amount"], "6.00");
    let r = app
        .client
        .get(app.url("/api/v3/status/demo-shop-cards/getByUuid/00000000000000000000"))
        .header("authorization", basic(SHOP.0, SHOP.1))
        .send()
        .await
        .expect("GET");
    // IXOPAY documents only 200 (and 429) for the Status API: not found is a result.
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], false);
    assert_eq!(v["errorCode"], 8001);
    let r = app
        .client
        .get(app.url(&format!(
            "/api/v3/status/demo-outlet-cards/getByUuid/{capture}"
        )))
        .header("authorization", basic(OUTLET.0, OUTLET.1))
        .send()
        .await
        .expect("GET");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "another connector's transaction is not found"
    );
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        v["errorCode"], 8001,
        "another connector's transaction is not found"
    );
}

#[tokio::test]
async fn a_meta_connector_routes_a_stored_instrument_to_its_connector() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let reg = json!({"merchantTransactionId": mtid(), "transactionToken": card, "customerProfileData": {"customerIdentification": "meta-1"}});
    let (_, v) = tx(&app, "demo-shop-cards", "register", SHOP, &reg).await;
    let token = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    let keyring = keyring(&app);
    let (meta_key, shop_cards_id) = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let shop_cards = coffer::models::connector::find_by_api_key(&mut c, "demo-shop-cards")
            .expect("q")
            .expect("k");
        let actor = coffer::domain::Actor::system();
        let (meta, _) = coffer::console::connectors::create(
            &mut c,
            &keyring,
            &actor,
            coffer::console::connectors::NewConnector {
                merchant_id: shop_cards.merchant_id.clone(),
                name: "Shop Meta".into(),
                adapter: "meta".into(),
            },
            coffer::console::connectors::Keys {
                api_key: "shop-meta".into(),
                public_key: "shop-meta-public".into(),
                shared_secret: "m".repeat(20),
                ..coffer::console::connectors::Keys::generate()
            },
        )
        .expect("meta");
        (meta, shop_cards.id)
    };
    // Without members the meta-connector cannot route.
    let (s, v) = tx(&app, "shop-meta", "debit", SHOP, &debit(&token, json!({}))).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["errorCode"], 1007);
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::console::connectors::update(
            &mut c,
            &coffer::domain::Actor::system(),
            &meta_key.id,
            coffer::console::connectors::BaseDataInput {
                name: "Shop Meta".into(),
                container_id: String::new(),
                ignore_global: false,
                signing: false,
                active: true,
                members: vec![shop_cards_id.clone()],
                lifecycle_webhook_url: String::new(),
                expiry_notice_days: String::new(),
                target_policy: coffer::gateway::target::AllowPrivate::None,
            },
        )
        .expect("members");
    }
    let (s, v) = tx(&app, "shop-meta", "debit", SHOP, &debit(&token, json!({}))).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["paymentMethod"], "Creditcard");
    let uuid = v["uuid"].as_str().expect("uuid");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let t = coffer::models::transaction::find(&mut c, uuid)
        .expect("q")
        .expect("tx");
    assert!(
        t.extra.contains(&shop_cards_id),
        "routed to the connector the instrument is tied to"
    );
}

fn signed_request(
    app: &TestApp,
    api_key: &str,
    body: &str,
    date: &str,
    hash: BodyHash,
    secret: &str,
) -> reqwest::RequestBuilder {
    let uri = format!("/api/v3/transaction/{api_key}/debit");
    let sig = signature::sign(secret, "POST", body.as_bytes(), CT, date, &uri, hash);
    app.client
        .post(app.url(&uri))
        .header("content-type", CT)
        .header("authorization", basic(SHOP.0, SHOP.1))
        .header("date", date)
        .header("x-signature", sig)
        .body(body.to_string())
}

#[tokio::test]
async fn signed_connectors_check_x_signature_and_sign_their_answers() {
    let app = TestApp::demo().await;
    let now = coffer::gateway::signature::http_date(chrono::Utc::now());
    let now_utc = now.replace(" GMT", " UTC");
    let mut ok = 0;
    for (hash, date) in [
        (BodyHash::Sha512, now.clone()),
        (BodyHash::Md5, now_utc.clone()),
    ] {
        let card = tokenize(&app, "demo-shop-signed-public", "4111111111111111").await;
        let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": card}).to_string();
        let r = signed_request(
            &app,
            "demo-shop-signed",
            &body,
            &date,
            hash,
            "demo-signed-secret",
        )
        .send()
        .await
        .expect("POST");
        assert_eq!(r.status(), StatusCode::OK);
        let sig = r
            .headers()
            .get("x-signature")
            .and_then(|v| v.to_str().ok())
            .expect("response signature")
            .to_string();
        let rdate = r
            .headers()
            .get("date")
            .and_then(|v| v.to_str().ok())
            .expect("date")
            .to_string();
        let rbody = r.bytes().await.expect("body");
        let uri = "/api/v3/transaction/demo-shop-signed/debit";
        assert_eq!(
            signature::verify("demo-signed-secret", "POST", &rbody, CT, &rdate, uri, &sig),
            Ok(hash),
            "the answer is signed"
        );
        ok += 1;
    }
    assert_eq!(ok, 2);
    // X-Date takes precedence over Date.
    let card = tokenize(&app, "demo-shop-signed-public", "4111111111111111").await;
    let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": card}).to_string();
    let r = signed_request(
        &app,
        "demo-shop-signed",
        &body,
        &now,
        BodyHash::Sha512,
        "demo-signed-secret",
    )
    .header("x-date", now.clone())
    .header("date", "Mon, 01 Jan 2018 11:01:36 GMT")
    .send()
    .await
    .expect("POST");
    assert_eq!(r.status(), StatusCode::OK, "signed over X-Date");
    let failures: Vec<(&str, reqwest::RequestBuilder)> = vec![
        (
            "wrong secret",
            signed_request(
                &app,
                "demo-shop-signed",
                &body,
                &now,
                BodyHash::Sha512,
                "wrong",
            ),
        ),
        (
            "stale date",
            signed_request(
                &app,
                "demo-shop-signed",
                &body,
                "Mon, 01 Jan 2018 11:01:36 GMT",
                BodyHash::Sha512,
                "demo-signed-secret",
            ),
        ),
        ("tampered body", {
            let uri = "/api/v3/transaction/demo-shop-signed/debit";
            let sig = signature::sign(
                "demo-signed-secret",
                "POST",
                body.as_bytes(),
                CT,
                &now,
                uri,
                BodyHash::Sha512,
            );
            app.client
                .post(app.url(uri))
                .header("content-type", CT)
                .header("authorization", basic(SHOP.0, SHOP.1))
                .header("date", now.clone())
                .header("x-signature", sig)
                .body(body.replace("1.00", "0.01"))
        }),
        (
            "missing signature",
            app.client
                .post(app.url("/api/v3/transaction/demo-shop-signed/debit"))
                .header("content-type", CT)
                .header("authorization", basic(SHOP.0, SHOP.1))
                .header("date", now.clone())
                .body(body.clone()),
        ),
    ];
    for (what, req) in failures {
        let r = req.send().await.expect("POST");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{what}");
        let v: Value = r.json().await.expect("json");
        assert_eq!(v["errorCode"], 1004, "{what}: {v}");
    }
    assert_eq!(
        db_count(
            &app,
            "SELECT COUNT(*) AS n FROM transactions WHERE amount = 1"
        ),
        0,
        "no tampered amount was charged"
    );
}

#[tokio::test]
async fn the_official_clients_sha1_password_form_is_accepted() {
    let app = TestApp::demo().await;
    let hashed = coffer::gateway::api_password::ixopay_client_hash("shop-api-demo");
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", &hashed),
        &debit(&card, json!({})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true);
}

#[tokio::test]
async fn no_card_number_is_left_in_the_sqlite_files() {
    if is_postgres() {
        return;
    }
    let app = TestApp::demo().await;
    let numbers = ["4111111111111111", "5555555555554444", "378282246310005"];
    for (i, n) in numbers.iter().enumerate() {
        let card = tokenize(&app, "demo-shop-public", n).await;
        let body = debit(
            &card,
            json!({"withRegister": true, "customerProfileData": {"customerIdentification": format!("scan-{i}")}}),
        );
        let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
        assert_eq!(s, StatusCode::OK, "{v}");
    }
    let card = tokenize(&app, "demo-shop-public", "4242424242424242").await;
    let reg = json!({"merchantTransactionId": mtid(), "transactionToken": card});
    tx(&app, "demo-shop-cards", "register", SHOP, &reg).await;
    let mut scanned = 0;
    for entry in std::fs::read_dir(&app.settings.data_dir).expect("data dir") {
        let path = entry.expect("entry").path();
        let bytes = std::fs::read(&path).expect("read");
        scanned += bytes.len();
        for n in numbers.iter().chain(["4242424242424242"].iter()) {
            assert!(
                !bytes.windows(n.len()).any(|w| w == n.as_bytes()),
                "{n} found in {}",
                path.display()
            );
        }
    }
    assert!(scanned > 10_000, "the database files were read");
    assert_eq!(db_count(&app, "SELECT COUNT(*) AS n FROM instruments"), 3);
}

async fn profiles_api(
    app: &TestApp,
    api_key: &str,
    op: &str,
    creds: (&str, &str),
    body: &Value,
) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/customerProfiles/{api_key}/{op}")))
        .header("content-type", CT)
        .header("authorization", basic(creds.0, creds.1))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn the_whole_seed_flow_across_the_transaction_and_customer_profiles_apis() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let body = debit(
        &card,
        json!({"withRegister": true,
               "customer": {"identification": "616c6578", "billingCountry": "US", "birthDate": "1970-01-01", "email": "alex@example.com"},
               "customerProfileData": {"customerIdentification": "616c6578", "markAsPreferred": true}}),
    );
    let (_, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &body).await;
    let guid = v["customerProfileData"]["profileGuid"]
        .as_str()
        .expect("guid")
        .to_string();
    let token = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    // getProfile by both ids, through the outlet too (shared container).
    let (s, by_ci) = profiles_api(
        &app,
        "demo-shop-cards",
        "getProfile",
        SHOP,
        &json!({"customerIdentification": "616c6578"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(by_ci["profileExists"], true);
    assert_eq!(by_ci["profileGuid"], guid.as_str());
    assert_eq!(by_ci["customer"]["billingCountry"], "US");
    assert_eq!(by_ci["customer"]["email"], "alex@example.com");
    assert_eq!(
        by_ci["paymentInstruments"][0]["paymentToken"],
        token.as_str()
    );
    assert_eq!(by_ci["paymentInstruments"][0]["isPreferred"], true);
    assert_eq!(
        by_ci["paymentInstruments"][0]["paymentData"]["lastFourDigits"],
        "1111"
    );
    let (_, by_guid) = profiles_api(
        &app,
        "demo-outlet-cards",
        "getProfile",
        OUTLET,
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!(by_guid["customerIdentification"], "616c6578");
    let (_, globex) = profiles_api(
        &app,
        "demo-globex-cards",
        "getProfile",
        GLOBEX,
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!(
        globex["profileExists"], false,
        "Globex cannot see Acme's profile"
    );
    // Charge with the token.
    let (_, v) = tx(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        &debit(&token, json!({})),
    )
    .await;
    assert_eq!(v["success"], true);
    // Register a second card as preferred.
    let card2 = tokenize(&app, "demo-shop-public", "5555555555554444").await;
    let reg = json!({"merchantTransactionId": mtid(), "transactionToken": card2,
                     "customerProfileData": {"customerIdentification": "616c6578", "markAsPreferred": true}});
    let (_, v) = tx(&app, "demo-shop-cards", "register", SHOP, &reg).await;
    let token2 = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token2")
        .to_string();
    let (_, p) = profiles_api(
        &app,
        "demo-shop-cards",
        "getProfile",
        SHOP,
        &json!({"profileGuid": guid}),
    )
    .await;
    let preferred: Vec<&Value> = p["paymentInstruments"]
        .as_array()
        .expect("list")
        .iter()
        .filter(|i| i["isPreferred"] == true)
        .collect();
    assert_eq!(preferred.len(), 1);
    assert_eq!(preferred[0]["paymentToken"], token2.as_str());
    // updateProfile: data and preferred instrument back to the first card.
    let (s, u) = profiles_api(
        &app,
        "demo-shop-cards",
        "updateProfile",
        SHOP,
        &json!({"profileGuid": guid, "customerData": {"firstName": "Alex", "lastName": "Smith"}, "preferredInstrument": token}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    let changed: Vec<&str> = u["changedFields"]
        .as_array()
        .expect("changed")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        changed.contains(&"firstName")
            && changed.contains(&"lastName")
            && changed.contains(&"preferredInstrument"),
        "{u}"
    );
    // deleteProfile: the token is refused afterwards, on every connector of the container.
    let (s, d) = profiles_api(
        &app,
        "demo-shop-cards",
        "deleteProfile",
        SHOP,
        &json!({"customerIdentification": "616c6578"}),
    )
    .await;
    assert_eq!((s, d["success"].clone()), (StatusCode::OK, json!(true)));
    let (_, gone) = profiles_api(
        &app,
        "demo-shop-cards",
        "getProfile",
        SHOP,
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!(gone["profileExists"], false);
    for (key, creds) in [("demo-shop-cards", SHOP), ("demo-outlet-cards", OUTLET)] {
        let (s, v) = tx(&app, key, "debit", creds, &debit(&token2, json!({}))).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
        assert_eq!(v["errorCode"], 1002);
    }
    assert_eq!(
        db_count(&app, "SELECT COUNT(*) AS n FROM instruments"),
        0,
        "instruments and their vault records are gone"
    );
}
