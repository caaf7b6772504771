//! Customer Profiles API v3 (spec section 1) over HTTP, against the demo data: profiles are
//! seeded straight into the database (the Transaction API that creates them is tested
//! elsewhere).

use chrono::NaiveDateTime;
use coffer::db::schema::{connectors, containers, instruments, profiles};
use coffer::gateway::signature::{self, BodyHash};
use coffer::models::profile::Instrument;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SHARED: &str = "Acme Shared Profiles";
const SHOP: &str = "Acme Shop Cards";
const JSON_CT: &str = "application/json; charset=utf-8";

fn container_count(app: &TestApp, name: &str) -> i64 {
    let db = app.db();
    let mut c = db.get().expect("conn");
    containers::table
        .filter(containers::name.eq(name))
        .select(containers::profile_count)
        .first(&mut *c)
        .expect("count")
}

fn ts(s: &str) -> NaiveDateTime {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("timestamp")
}

/// Marker strings stored where the sealed card number and its fingerprint live: no answer may
/// contain them.
const VAULT_MARKER: &str = "SEALED-4111111111111111";
const FINGERPRINT_MARKER: &str = "FINGERPRINT-MARKER";

pub(crate) struct Seeded {
    id: String,
    guid: String,
    card_token: String,
    iban_token: String,
}

fn full_customer() -> Value {
    json!({
        "firstName": "Alex", "lastName": "Smith", "birthDate": "1970-01-01", "gender": "M",
        "billingAddress1": "Main Street 1", "billingAddress2": "Floor 2", "billingCity": "Vienna",
        "billingPostcode": "1010", "billingState": "W", "billingCountry": "AT",
        "billingPhone": "+43 1 234", "company": "Acme", "email": "Alex.Smith@Example.com",
        "ipAddress": "192.0.2.1", "nationalId": "AT-123", "extraData": { "loyalty": "gold" }
    })
}

/// One profile with a preferred card (2030-01-17 15:36:41) and a SEPA instrument
/// (2030-01-18 09:00:00), counted in the container as the gateway would.
pub(crate) fn seed_profile(app: &TestApp, container: &str, connector: &str, ident: &str) -> Seeded {
    let cid = container_id(app, container);
    let kid = connector_id(app, connector);
    let db = app.db();
    let mut c = db.get().expect("conn");
    let p = insert_profile_row(
        &mut c,
        &cid,
        ident,
        "alex.smith@example.com",
        &full_customer().to_string(),
    );
    let at = p.created_at;
    let card = Instrument {
        id: coffer::ids::new_id(),
        profile_id: p.id.clone(),
        connector_id: kid.clone(),
        payment_token: coffer::gateway::ids::payment_token(),
        method: "card".into(),
        brand: Some("visa".into()),
        card_holder: Some("Alex Smith".into()),
        first_six: Some("411111".into()),
        last_four: Some("1111".into()),
        exp_month: Some(1),
        exp_year: Some(2030),
        iban_masked: None,
        bic: None,
        mandate_id: None,
        fingerprint: format!("{FINGERPRINT_MARKER}-{ident}-card"),
        vault_record: VAULT_MARKER.into(),
        is_preferred: true,
        created_at: ts("2030-01-17 15:36:41"),
        updated_at: at,
        expiry_noticed_at: None,
        expired_at: None,
        card_update_status: None,
        card_updated_at: None,
    };
    let iban = Instrument {
        fingerprint: format!("{FINGERPRINT_MARKER}-{ident}-iban"),
        vault_record: "SEALED-AT483200000012345864".into(),
        is_preferred: false,
        created_at: ts("2030-01-18 09:00:00"),
        ..iban_row(&card, "AT48**********5864", "BKAUATWW", "MANDATE-1")
    };
    for i in [&card, &iban] {
        diesel::insert_into(instruments::table)
            .values(i)
            .execute(&mut *c)
            .expect("insert instrument");
    }
    coffer::models::container::add_to_count(&mut c, &cid, 1).expect("count");
    Seeded {
        id: p.id,
        guid: p.profile_guid,
        card_token: card.payment_token,
        iban_token: iban.payment_token,
    }
}

/// What a profile looks like in the database: customer JSON, email, preferred tokens,
/// instrument count.
#[derive(Debug, PartialEq)]
struct Snapshot {
    customer: Value,
    email: Option<String>,
    preferred: Vec<String>,
    instruments: i64,
}

fn snapshot(app: &TestApp, profile_id: &str) -> Option<Snapshot> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    let row: Option<(String, Option<String>)> = profiles::table
        .find(profile_id)
        .select((profiles::customer, profiles::email))
        .first(&mut *c)
        .optional()
        .expect("profile");
    let (customer, email) = row?;
    let mut preferred: Vec<String> = instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .filter(instruments::is_preferred.eq(true))
        .select(instruments::payment_token)
        .load(&mut *c)
        .expect("preferred");
    preferred.sort();
    let count = instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .count()
        .get_result(&mut *c)
        .expect("instruments");
    Some(Snapshot {
        customer: serde_json::from_str(&customer).expect("customer json"),
        email,
        preferred,
        instruments: count,
    })
}

struct Answer {
    status: StatusCode,
    json: Value,
    text: String,
    headers: reqwest::header::HeaderMap,
}

async fn send(req: reqwest::RequestBuilder) -> Answer {
    let r = req.send().await.expect("request");
    let status = r.status();
    let headers = r.headers().clone();
    let text = r.text().await.expect("body");
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    Answer {
        status,
        json,
        text,
        headers,
    }
}

fn path(api_key: &str, op: &str) -> String {
    format!("/api/v3/customerProfiles/{api_key}/{op}")
}

/// An unsigned call with Basic auth.
async fn call(app: &TestApp, api_key: &str, op: &str, user: &str, pw: &str, body: &str) -> Answer {
    let req = app
        .client
        .post(app.url(&path(api_key, op)))
        .basic_auth(user, Some(pw))
        .header("content-type", JSON_CT)
        .body(body.to_string());
    send(req).await
}

async fn shop(app: &TestApp, op: &str, body: Value) -> Answer {
    call(
        app,
        "demo-shop-cards",
        op,
        "shop-api",
        "shop-api-demo",
        &body.to_string(),
    )
    .await
}

fn expected_profile(s: &Seeded, ident: &str) -> Value {
    let mut customer = full_customer();
    customer["_TYPE"] = json!("customerData");
    json!({
        "success": true,
        "profileExists": true,
        "profileGuid": s.guid,
        "customerIdentification": ident,
        "preferredMethod": "Creditcard",
        "customer": customer,
        "paymentInstruments": [
            {
                "_TYPE": "paymentInstrument",
                "createdAt": "2030-01-17 15:36:41",
                "method": "card",
                "paymentData": {
                    "_TYPE": "paymentData.card",
                    "brand": "visa",
                    "cardHolder": "Alex Smith",
                    "expiryMonth": 1,
                    "expiryYear": 2030,
                    "firstSixDigits": "411111",
                    "lastFourDigits": "1111"
                },
                "paymentToken": s.card_token,
                "isPreferred": true,
                "expired": false,
                "associatedTokenType": null,
                "networkTokenStatus": null
            },
            {
                "_TYPE": "paymentInstrument",
                "createdAt": "2030-01-18 09:00:00",
                "method": "iban",
                "paymentData": {
                    "_TYPE": "paymentData.iban",
                    "iban": "AT48**********5864",
                    "bic": "BKAUATWW",
                    "mandateId": "MANDATE-1",
                    "mandateDate": "2030-01-18 00:00:00"
                },
                "paymentToken": s.iban_token,
                "isPreferred": false,
                "expired": false,
                "associatedTokenType": null,
                "networkTokenStatus": null
            }
        ]
    })
}

fn not_found_shape() -> Value {
    json!({
        "success": false, "profileExists": false, "profileGuid": null,
        "customerIdentification": null, "preferredMethod": null, "customer": null,
        "paymentInstruments": []
    })
}

fn assert_error(a: &Answer, status: StatusCode, code: u64) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.json["success"], json!(false), "{}", a.text);
    assert_eq!(a.json["errorCode"], json!(code), "{}", a.text);
    assert!(
        a.json["errorMessage"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{}",
        a.text
    );
}

fn assert_no_secrets(a: &Answer) {
    assert!(!a.text.contains(VAULT_MARKER), "{}", a.text);
    assert!(!a.text.contains("4111111111111111"), "{}", a.text);
    assert!(!a.text.contains("AT483200000012345864"), "{}", a.text);
    assert!(!a.text.contains(FINGERPRINT_MARKER), "{}", a.text);
}

#[tokio::test]
async fn get_profile_answers_the_full_shape_by_guid_and_by_identification() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-full");
    let expected = expected_profile(&s, "cust-full");

    let by_guid = shop(&app, "getProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(by_guid.status, StatusCode::OK, "{}", by_guid.text);
    assert_eq!(by_guid.json, expected);
    assert_no_secrets(&by_guid);
    assert!(
        by_guid
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json")),
        "JSON answer"
    );

    let by_ident = shop(
        &app,
        "getProfile",
        json!({ "customerIdentification": "cust-full" }),
    )
    .await;
    assert_eq!(by_ident.status, StatusCode::OK, "{}", by_ident.text);
    assert_eq!(by_ident.json, expected);

    // Unknown profiles: HTTP 200 with the documented not-found answer.
    let unknown_guid = shop(
        &app,
        "getProfile",
        json!({ "profileGuid": "CP-0000-0000-0000-0000-0000-0000" }),
    )
    .await;
    assert_eq!(unknown_guid.status, StatusCode::OK);
    assert_eq!(unknown_guid.json, not_found_shape());
    let unknown_ident = shop(
        &app,
        "getProfile",
        json!({ "customerIdentification": "nobody" }),
    )
    .await;
    assert_eq!(unknown_ident.status, StatusCode::OK);
    assert_eq!(unknown_ident.json, not_found_shape());

    // A profile without instruments has no preferred method.
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::delete(instruments::table.filter(instruments::profile_id.eq(&s.id)))
        .execute(&mut *c)
        .expect("delete instruments");
    let bare = shop(&app, "getProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(bare.json["profileExists"], json!(true));
    assert_eq!(bare.json["preferredMethod"], Value::Null);
    assert_eq!(bare.json["paymentInstruments"], json!([]));
}

#[tokio::test]
async fn profiles_are_shared_through_the_container_and_invisible_to_other_tenants() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-shared");
    let before = snapshot(&app, &s.id);

    // Acme Outlet's connector is assigned the same container: it sees the profile.
    let outlet = call(
        &app,
        "demo-outlet-cards",
        "getProfile",
        "outlet-api",
        "outlet-api-demo",
        &json!({ "profileGuid": s.guid }).to_string(),
    )
    .await;
    assert_eq!(outlet.status, StatusCode::OK, "{}", outlet.text);
    assert_eq!(outlet.json, expected_profile(&s, "cust-shared"));

    // Globex: the guid and the identification are simply not found (not 403).
    let globex = |op: &'static str, body: Value| {
        let app = &app;
        async move {
            call(
                app,
                "demo-globex-cards",
                op,
                "globex-api",
                "globex-api-demo",
                &body.to_string(),
            )
            .await
        }
    };
    let g = globex("getProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(g.status, StatusCode::OK, "{}", g.text);
    assert_eq!(g.json, not_found_shape());
    let g = globex(
        "getProfile",
        json!({ "customerIdentification": "cust-shared" }),
    )
    .await;
    assert_eq!(g.json, not_found_shape());
    let g = globex(
        "updateProfile",
        json!({ "profileGuid": s.guid, "customerData": { "firstName": "Mallory" } }),
    )
    .await;
    assert_error(&g, StatusCode::NOT_FOUND, 1002);
    let g = globex("deleteProfile", json!({ "profileGuid": s.guid })).await;
    assert_error(&g, StatusCode::NOT_FOUND, 1002);
    assert_eq!(snapshot(&app, &s.id), before, "Globex changed nothing");
    assert_eq!(container_count(&app, SHARED), 1);
}

#[tokio::test]
async fn authentication_failures_answer_401_with_the_error_body() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-auth");
    let body = json!({ "profileGuid": s.guid }).to_string();

    let wrong_pw = call(
        &app,
        "demo-shop-cards",
        "getProfile",
        "shop-api",
        "wrong",
        &body,
    )
    .await;
    assert_error(&wrong_pw, StatusCode::UNAUTHORIZED, 1000);
    let unknown_user = call(&app, "demo-shop-cards", "getProfile", "nobody", "x", &body).await;
    assert_error(&unknown_user, StatusCode::UNAUTHORIZED, 1000);
    // An API user of another merchant, with its correct password.
    let other_merchant = call(
        &app,
        "demo-shop-cards",
        "getProfile",
        "outlet-api",
        "outlet-api-demo",
        &body,
    )
    .await;
    assert_error(&other_merchant, StatusCode::UNAUTHORIZED, 1000);
    assert!(!other_merchant.text.contains(&s.guid));
    let unknown_key = call(
        &app,
        "no-such-key",
        "getProfile",
        "shop-api",
        "shop-api-demo",
        &body,
    )
    .await;
    assert_error(&unknown_key, StatusCode::UNAUTHORIZED, 1000);
    let no_auth = send(
        app.client
            .post(app.url(&path("demo-shop-cards", "getProfile")))
            .header("content-type", JSON_CT)
            .body(body.clone()),
    )
    .await;
    assert_error(&no_auth, StatusCode::UNAUTHORIZED, 1000);

    // The official PHP client sends sha1 applied ten times.
    let hashed = coffer::gateway::api_password::ixopay_client_hash("shop-api-demo");
    assert_eq!(hashed.len(), 40);
    let php = call(
        &app,
        "demo-shop-cards",
        "getProfile",
        "shop-api",
        &hashed,
        &body,
    )
    .await;
    assert_eq!(php.status, StatusCode::OK, "{}", php.text);
    assert_eq!(php.json["profileGuid"], json!(s.guid));
    // Unsigned connectors still sign their answers with their secret.
    let date = php.headers.get("date").expect("date").to_str().expect("d");
    let sig = php
        .headers
        .get("x-signature")
        .expect("x-signature")
        .to_str()
        .expect("s");
    assert_eq!(
        signature::verify(
            "demo-shop-cards-secret",
            "POST",
            php.text.as_bytes(),
            JSON_CT,
            date,
            &path("demo-shop-cards", "getProfile"),
            sig,
        ),
        Ok(BodyHash::Sha512)
    );
}

async fn signed_call(
    app: &TestApp,
    signed_body: &str,
    sent_body: &str,
    date: &str,
    hash: Option<BodyHash>,
) -> Answer {
    let uri = path("demo-shop-signed", "getProfile");
    let mut req = app
        .client
        .post(app.url(&uri))
        .basic_auth("shop-api", Some("shop-api-demo"))
        .header("content-type", JSON_CT)
        .header("date", date)
        .body(sent_body.to_string());
    if let Some(h) = hash {
        let sig = signature::sign(
            "demo-signed-secret",
            "POST",
            signed_body.as_bytes(),
            JSON_CT,
            date,
            &uri,
            h,
        );
        req = req.header("x-signature", sig);
    }
    send(req).await
}

fn verify_answer(a: &Answer) -> Result<BodyHash, signature::SignatureError> {
    let date = a
        .headers
        .get("date")
        .and_then(|v| v.to_str().ok())
        .expect("date header");
    let sig = a
        .headers
        .get("x-signature")
        .and_then(|v| v.to_str().ok())
        .expect("x-signature header");
    signature::verify(
        "demo-signed-secret",
        "POST",
        a.text.as_bytes(),
        JSON_CT,
        date,
        &path("demo-shop-signed", "getProfile"),
        sig,
    )
}

#[tokio::test]
async fn signed_connector_checks_request_signatures_and_signs_its_answers() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-signed");
    let body = json!({ "profileGuid": s.guid }).to_string();
    let now = chrono::Utc::now();
    let date = coffer::gateway::signature::http_date(now);

    let ok = signed_call(&app, &body, &body, &date, Some(BodyHash::Sha512)).await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.text);
    assert_eq!(ok.json, expected_profile(&s, "cust-signed"));
    assert_eq!(verify_answer(&ok), Ok(BodyHash::Sha512));

    // The PHP client: MD5 body hash and a `UTC` date suffix. The answer uses MD5 as well.
    let php_date = now.format("%a, %d %b %Y %H:%M:%S UTC").to_string();
    let md5 = signed_call(&app, &body, &body, &php_date, Some(BodyHash::Md5)).await;
    assert_eq!(md5.status, StatusCode::OK, "{}", md5.text);
    assert_eq!(md5.json["profileGuid"], json!(s.guid));
    assert_eq!(verify_answer(&md5), Ok(BodyHash::Md5));
    assert!(
        signature::verify(
            "another-secret",
            "POST",
            md5.text.as_bytes(),
            JSON_CT,
            md5.headers
                .get("date")
                .and_then(|v| v.to_str().ok())
                .expect("date"),
            &path("demo-shop-signed", "getProfile"),
            md5.headers
                .get("x-signature")
                .and_then(|v| v.to_str().ok())
                .expect("sig"),
        )
        .is_err(),
        "the answer's signature depends on the secret"
    );

    // Tampered body, missing signature, stale date: 401 with 1004.
    let tampered_body = json!({ "customerIdentification": "cust-signed" }).to_string();
    let tampered = signed_call(&app, &body, &tampered_body, &date, Some(BodyHash::Sha512)).await;
    assert_error(&tampered, StatusCode::UNAUTHORIZED, 1004);
    assert!(!tampered.text.contains(&s.guid));
    let unsigned = signed_call(&app, &body, &body, &date, None).await;
    assert_error(&unsigned, StatusCode::UNAUTHORIZED, 1004);
    let stale = coffer::gateway::signature::http_date(now - chrono::Duration::hours(1));
    let old = signed_call(&app, &body, &body, &stale, Some(BodyHash::Sha512)).await;
    assert_error(&old, StatusCode::UNAUTHORIZED, 1004);
}

#[tokio::test]
async fn update_profile_merges_fields_and_reports_exactly_the_changed_ones() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-update");

    let a = shop(
        &app,
        "updateProfile",
        json!({
            "profileGuid": s.guid,
            "customerData": {
                "firstName": "Alex",
                "lastName": "Jones",
                "email": "Alex.Jones@Example.ORG",
                "company": null,
                "extraData": { "loyalty": "platinum", "segment": "b2c" }
            }
        }),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    let mut merged = full_customer();
    merged["lastName"] = json!("Jones");
    merged["email"] = json!("Alex.Jones@Example.ORG");
    merged["company"] = Value::Null;
    merged["extraData"] = json!({ "loyalty": "platinum", "segment": "b2c" });
    let mut shown = merged.clone();
    shown["_TYPE"] = json!("customerData");
    assert_eq!(
        a.json,
        json!({
            "success": true,
            "profileGuid": s.guid,
            "customerIdentification": "cust-update",
            "customer": shown,
            "changedFields": ["lastName", "company", "email", "extraData"]
        })
    );
    let snap = snapshot(&app, &s.id).expect("profile");
    let mut stored = merged.clone();
    stored
        .as_object_mut()
        .expect("object")
        .remove("company")
        .expect("company was set");
    assert_eq!(snap.customer, stored, "absent fields kept, null cleared");
    assert_eq!(snap.email.as_deref(), Some("alex.jones@example.org"));
    assert_eq!(snap.preferred, vec![s.card_token.clone()]);

    // getProfile shows the merged data.
    let g = shop(
        &app,
        "getProfile",
        json!({ "customerIdentification": "cust-update" }),
    )
    .await;
    assert_eq!(g.json["customer"], shown);

    // The same update again changes nothing.
    let again = shop(
        &app,
        "updateProfile",
        json!({
            "customerIdentification": "cust-update",
            "customerData": { "firstName": "Alex", "lastName": "Jones" }
        }),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.text);
    assert_eq!(again.json["changedFields"], json!([]));
    assert_eq!(again.json["customer"], shown);
}

#[tokio::test]
async fn update_profile_switches_the_preferred_instrument_within_the_profile_only() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-pref");
    let other = seed_profile(&app, SHARED, SHOP, "cust-other");
    let other_before = snapshot(&app, &other.id);

    let a = shop(
        &app,
        "updateProfile",
        json!({
            "profileGuid": s.guid,
            "customerData": { "firstName": "Alex" },
            "preferredInstrument": s.iban_token
        }),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json["changedFields"], json!(["preferredInstrument"]));
    let snap = snapshot(&app, &s.id).expect("profile");
    assert_eq!(
        snap.preferred,
        vec![s.iban_token.clone()],
        "exactly one preferred"
    );
    let g = shop(&app, "getProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(g.json["preferredMethod"], json!("DirectDebit"));
    assert_eq!(g.json["paymentInstruments"][0]["isPreferred"], json!(false));
    assert_eq!(g.json["paymentInstruments"][1]["isPreferred"], json!(true));

    // Choosing the already preferred instrument is not a change.
    let same = shop(
        &app,
        "updateProfile",
        json!({
            "profileGuid": s.guid,
            "customerData": { "firstName": "Alex" },
            "preferredInstrument": s.iban_token
        }),
    )
    .await;
    assert_eq!(same.json["changedFields"], json!([]));

    // A token of another profile is refused and nothing changes, not even the other fields.
    let before = snapshot(&app, &s.id);
    let foreign = shop(
        &app,
        "updateProfile",
        json!({
            "profileGuid": s.guid,
            "customerData": { "firstName": "Changed" },
            "preferredInstrument": other.card_token
        }),
    )
    .await;
    assert_error(&foreign, StatusCode::UNPROCESSABLE_ENTITY, 1002);
    assert_eq!(snapshot(&app, &s.id), before);
    assert_eq!(snapshot(&app, &other.id), other_before);
    // A well-formed token nobody has is refused the same way.
    let unknown = shop(
        &app,
        "updateProfile",
        json!({
            "profileGuid": s.guid,
            "customerData": { "firstName": "Changed" },
            "preferredInstrument": "pt::00000000000000000000"
        }),
    )
    .await;
    assert_error(&unknown, StatusCode::UNPROCESSABLE_ENTITY, 1002);
    assert_eq!(snapshot(&app, &s.id), before);
}

#[tokio::test]
async fn invalid_update_requests_are_refused_with_1002_and_change_nothing() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-bad");
    let before = snapshot(&app, &s.id).expect("profile");
    let g = s.guid.as_str();
    let cases: Vec<(&str, String)> = vec![
        ("malformed JSON", format!("{{\"profileGuid\": \"{g}\", ")),
        ("not an object", "[1,2]".into()),
        ("empty body", String::new()),
        (
            "firstName missing",
            json!({ "profileGuid": g, "customerData": { "lastName": "X" } }).to_string(),
        ),
        (
            "nationalId 15 characters",
            json!({ "profileGuid": g,
                "customerData": { "firstName": "X", "nationalId": "123456789012345" } })
            .to_string(),
        ),
        (
            "gender X",
            json!({ "profileGuid": g, "customerData": { "firstName": "X", "gender": "X" } })
                .to_string(),
        ),
        (
            "both identifiers",
            json!({ "profileGuid": g, "customerIdentification": "cust-bad",
                "customerData": { "firstName": "X" } })
            .to_string(),
        ),
        (
            "no identifier",
            json!({ "customerData": { "firstName": "X" } }).to_string(),
        ),
        (
            "wrong type",
            json!({ "profileGuid": g, "customerData": { "firstName": 42 } }).to_string(),
        ),
        (
            "customerData missing",
            json!({ "profileGuid": g }).to_string(),
        ),
        (
            "birthDate not a date",
            json!({ "profileGuid": g,
                "customerData": { "firstName": "X", "birthDate": "01.01.1970" } })
            .to_string(),
        ),
        (
            "billingCountry lower case",
            json!({ "profileGuid": g,
                "customerData": { "firstName": "X", "billingCountry": "at" } })
            .to_string(),
        ),
        (
            "email without @",
            json!({ "profileGuid": g,
                "customerData": { "firstName": "X", "email": "nobody" } })
            .to_string(),
        ),
        (
            "firstName 51 characters",
            json!({ "profileGuid": g, "customerData": { "firstName": "x".repeat(51) } })
                .to_string(),
        ),
        (
            "extraData value not a string",
            json!({ "profileGuid": g,
                "customerData": { "firstName": "X", "extraData": { "k": 1 } } })
            .to_string(),
        ),
        (
            "preferredInstrument too short",
            json!({ "profileGuid": g, "customerData": { "firstName": "X" },
                "preferredInstrument": "pt::123" })
            .to_string(),
        ),
        (
            "malformed guid",
            json!({ "profileGuid": "CP-1234", "customerData": { "firstName": "X" } }).to_string(),
        ),
        (
            "identification 37 characters",
            json!({ "customerIdentification": "x".repeat(37),
                "customerData": { "firstName": "X" } })
            .to_string(),
        ),
    ];
    for (what, body) in &cases {
        let a = call(
            &app,
            "demo-shop-cards",
            "updateProfile",
            "shop-api",
            "shop-api-demo",
            body,
        )
        .await;
        assert_eq!(
            a.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{what}: {}",
            a.text
        );
        assert_eq!(a.json["success"], json!(false), "{what}");
        assert_eq!(a.json["errorCode"], json!(1002), "{what}: {}", a.text);
        assert_eq!(snapshot(&app, &s.id).as_ref(), Some(&before), "{what}");
    }
    // getProfile and deleteProfile validate their identifiers the same way.
    for op in ["getProfile", "deleteProfile"] {
        let a = shop(
            &app,
            op,
            json!({ "profileGuid": g, "customerIdentification": "cust-bad" }),
        )
        .await;
        assert_error(&a, StatusCode::UNPROCESSABLE_ENTITY, 1002);
    }
    assert_eq!(snapshot(&app, &s.id), Some(before));
    assert_eq!(container_count(&app, SHARED), 1);
}

#[tokio::test]
async fn delete_profile_removes_the_profile_its_instruments_and_the_count() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-delete");
    let keep = seed_profile(&app, SHARED, SHOP, "cust-keep");
    assert_eq!(container_count(&app, SHARED), 2);

    let a = shop(&app, "deleteProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text);
    assert_eq!(a.json, json!({ "success": true }));
    assert_eq!(snapshot(&app, &s.id), None, "profile row gone");
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let left: i64 = instruments::table
            .filter(instruments::profile_id.eq(&s.id))
            .count()
            .get_result(&mut *c)
            .expect("count");
        assert_eq!(left, 0, "instrument rows (vault records) gone");
    }
    assert_eq!(container_count(&app, SHARED), 1);
    assert_eq!(
        snapshot(&app, &keep.id).map(|s| s.instruments),
        Some(2),
        "other profiles untouched"
    );

    let g = shop(&app, "getProfile", json!({ "profileGuid": s.guid })).await;
    assert_eq!(g.status, StatusCode::OK);
    assert_eq!(g.json, not_found_shape());

    // Deleting again, or updating, is an error for the client.
    let again = shop(&app, "deleteProfile", json!({ "profileGuid": s.guid })).await;
    assert_error(&again, StatusCode::NOT_FOUND, 1002);
    let upd = shop(
        &app,
        "updateProfile",
        json!({ "profileGuid": s.guid, "customerData": { "firstName": "X" } }),
    )
    .await;
    assert_error(&upd, StatusCode::NOT_FOUND, 1002);
    assert_eq!(
        container_count(&app, SHARED),
        1,
        "count not decremented twice"
    );

    // By customerIdentification through the sharing connector.
    let b = call(
        &app,
        "demo-outlet-cards",
        "deleteProfile",
        "outlet-api",
        "outlet-api-demo",
        &json!({ "customerIdentification": "cust-keep" }).to_string(),
    )
    .await;
    assert_eq!(b.json, json!({ "success": true }), "{}", b.text);
    assert_eq!(snapshot(&app, &keep.id), None);
    assert_eq!(container_count(&app, SHARED), 0);

    // Both deletions are in the audit log, naming the API user and connector; the refused
    // second deletion is not.
    app.login_ok("admin", "admin-demo").await;
    let (status, log) = app.get_html("/audit").await;
    assert_eq!(status, StatusCode::OK);
    let api_entries = log.matches("through the Customer Profiles API").count();
    assert_eq!(api_entries, 2, "{log}");
    assert!(
        log.contains("API user shop-api (connector demo-shop-cards)"),
        "{log}"
    );
    assert!(
        log.contains("API user outlet-api (connector demo-outlet-cards)"),
        "{log}"
    );
    assert!(log.contains(&s.guid) && log.contains(&keep.guid), "{log}");
    assert!(
        !log.contains("cust-delete") && !log.contains("cust-keep"),
        "{log}"
    );
}

#[tokio::test]
async fn unknown_operations_and_connectors_without_a_container_are_refused() {
    let app = TestApp::demo().await;
    let s = seed_profile(&app, SHARED, SHOP, "cust-ops");
    let a = shop(&app, "listProfiles", json!({ "profileGuid": s.guid })).await;
    assert_error(&a, StatusCode::NOT_FOUND, 1002);

    // Ignoring the global setting leaves the shop connector without a container: 1007.
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::update(connectors::table.filter(connectors::api_key.eq("demo-shop-cards")))
            .set(connectors::ignore_global.eq(true))
            .execute(&mut *c)
            .expect("ignore global");
    }
    for op in ["getProfile", "updateProfile", "deleteProfile"] {
        let a = shop(
            &app,
            op,
            json!({ "profileGuid": s.guid, "customerData": { "firstName": "X" } }),
        )
        .await;
        assert_error(&a, StatusCode::BAD_REQUEST, 1007);
    }
    assert!(snapshot(&app, &s.id).is_some(), "nothing deleted");
}

/// deleteProfile racing a registration into the same profile: both answer normally (the
/// registration creates the profile anew if the deletion won), and the container's count
/// matches its rows. On PostgreSQL the deletion takes the container lock that registrations
/// take, or the registration's new instrument can reference a profile deleted under it.
#[tokio::test]
async fn deletions_racing_registrations_of_the_same_customer_answer_normally_and_stay_consistent() {
    let app = TestApp::demo().await;
    for round in 0..16 {
        let ident = format!("race-{round}");
        crate::fuzz::register(&app, &ident, json!({})).await;
        let card = crate::fuzz::card_token(&app, "demo-shop-public", "5555555555554444").await;
        let body = json!({
            "merchantTransactionId": format!("race-order-{round}"), "amount": "1.00",
            "currency": "EUR", "transactionToken": card, "withRegister": true,
            "customerProfileData": {"customerIdentification": ident}
        });
        let reg = crate::fuzz::post_json(
            &app,
            "/api/v3/transaction/demo-shop-cards/debit",
            Some(crate::fuzz::basic("shop-api", "shop-api-demo")),
            &body,
        );
        let del = shop(
            &app,
            "deleteProfile",
            json!({ "customerIdentification": ident }),
        );
        let ((rs, rv), d) = tokio::join!(reg, del);
        assert_eq!(rs, StatusCode::OK, "round {round}: {rv}");
        assert_eq!(rv["success"], true, "round {round}: {rv}");
        assert!(
            d.status == StatusCode::OK || d.status == StatusCode::NOT_FOUND,
            "round {round}: {} {}",
            d.status,
            d.text
        );
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    let container_id: String = containers::table
        .filter(containers::name.eq(SHARED))
        .select(containers::id)
        .first(&mut *c)
        .expect("container");
    let rows: i64 = profiles::table
        .filter(profiles::container_id.eq(&container_id))
        .filter(profiles::deleted_at.is_null())
        .count()
        .get_result(&mut *c)
        .expect("rows");
    drop(c);
    assert_eq!(container_count(&app, SHARED), rows);
}
