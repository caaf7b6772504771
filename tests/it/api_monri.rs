//! Monri-compatible Customers API v2 (spec section 5, seed 003) over HTTP, against the demo
//! data, on SQLite or PostgreSQL. Digests are computed here with sha2 directly, not with the
//! server's function.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::api_transactions::tokenize;
use crate::helpers::*;

const SHOP_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const SHOP_KEY: &str = "demo-shop-merchant-key";
const SHOP: Creds = Creds {
    token: SHOP_TOKEN,
    key: SHOP_KEY,
};
const CT: &str = "application/json; charset=utf-8";

#[derive(Clone, Copy)]
struct Creds<'a> {
    token: &'a str,
    key: &'a str,
}

enum Auth<'a> {
    Wp3(Creds<'a>),
    /// WP3-v2.1 with an explicit timestamp.
    Wp3At(Creds<'a>, i64),
    Bearer(&'a str),
    Header(String),
    None,
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// `WP3-v2.1 token ts hex(sha512(key + ts + token + path + body))`, path without the query.
fn wp3_header(c: Creds<'_>, ts: i64, path: &str, body: &str) -> String {
    let path = path.split('?').next().unwrap_or(path);
    let mut h = Sha512::new();
    h.update(format!("{}{}{}{}{}", c.key, ts, c.token, path, body).as_bytes());
    format!("WP3-v2.1 {} {} {}", c.token, ts, hex::encode(h.finalize()))
}

struct Reply {
    status: StatusCode,
    json: Value,
    text: String,
}

async fn send(app: &TestApp, method: &str, path: &str, auth: Auth<'_>, body: &str) -> Reply {
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = app
        .client
        .request(m, app.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json");
    let header = match auth {
        Auth::Wp3(c) => Some(wp3_header(c, now(), path, body)),
        Auth::Wp3At(c, ts) => Some(wp3_header(c, ts, path, body)),
        Auth::Bearer(t) => Some(format!("Bearer {t}")),
        Auth::Header(h) => Some(h),
        Auth::None => None,
    };
    if let Some(h) = header {
        r = r.header("authorization", h);
    }
    if !body.is_empty() {
        r = r.body(body.to_string());
    }
    let resp = r.send().await.expect("request");
    let status = resp.status();
    let ct = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let text = resp.text().await.expect("body");
    assert_eq!(ct, CT, "{method} {path}: {status} {text}");
    Reply {
        status,
        json: serde_json::from_str(&text).unwrap_or(Value::Null),
        text,
    }
}

async fn shop(app: &TestApp, method: &str, path: &str, body: Value) -> Reply {
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    send(app, method, path, Auth::Wp3(SHOP), &b).await
}

fn assert_error(r: &Reply, status: StatusCode) {
    assert_eq!(r.status, status, "{}", r.text);
    assert_eq!(r.json["status"], "invalid-request", "{}", r.text);
    assert!(r.json["message"].as_str().is_some_and(|m| !m.is_empty()));
}

fn is_uuid_v4(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 4) && s.len() == 36
}

fn is_timestamp(v: &Value) -> bool {
    v.as_str().is_some_and(|s| {
        chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%SZ").is_ok() && s.len() == 20
    })
}

const CUSTOMER_KEYS: [&str; 17] = [
    "status",
    "uuid",
    "merchant_customer_id",
    "description",
    "email",
    "name",
    "phone",
    "metadata",
    "zip_code",
    "city",
    "address",
    "country",
    "deleted",
    "created_at",
    "updated_at",
    "deleted_at",
    "id",
];

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
    k.sort();
    k
}

fn expected_keys(with_id: bool) -> Vec<String> {
    let mut k: Vec<String> = CUSTOMER_KEYS
        .iter()
        .filter(|k| with_id || **k != "id")
        .map(|s| s.to_string())
        .collect();
    k.sort();
    k
}

/// The seed's example customer.
fn seed_customer(mcid: &str) -> Value {
    json!({
        "merchant_customer_id": mcid,
        "description": "Customer",
        "email": "email@email.com",
        "name": "Test",
        "country": "BA",
        "zip_code": "71000",
        "metadata": { "key": "value" }
    })
}

async fn create(app: &TestApp, body: Value) -> Value {
    let r = shop(app, "POST", "/v2/customers", body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json
}

async fn oauth(app: &TestApp, c: Creds<'_>, scopes: Value) -> Reply {
    let body = json!({"client_id": c.token, "client_secret": c.key,
                      "grant_type": "client_credentials", "scopes": scopes});
    send(app, "POST", "/v2/oauth", Auth::None, &body.to_string()).await
}

async fn token(app: &TestApp, c: Creds<'_>, scopes: Value) -> String {
    let r = oauth(app, c, scopes).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    r.json["access_token"].as_str().expect("token").to_string()
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// IXOPAY Customer Profiles API call as the shop.
async fn ixopay(app: &TestApp, op: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/customerProfiles/demo-shop-cards/{op}")))
        .header("content-type", CT)
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Registers `number` into the profile `ident` through the Transaction API (debit withRegister).
async fn register_card(app: &TestApp, ident: &str, number: &str, customer: Value) -> Value {
    let card = tokenize(app, "demo-shop-public", number).await;
    let mut body = json!({
        "merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
        "amount": "9.99", "currency": "EUR", "transactionToken": card,
        "withRegister": true,
        "customerProfileData": {"customerIdentification": ident, "markAsPreferred": true}
    });
    if !customer.is_null() {
        body["customer"] = customer;
    }
    let r = app
        .client
        .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
        .header("content-type", CT)
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(body.to_string())
        .send()
        .await
        .expect("debit");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], true, "{v}");
    v
}

/// Issues (rotates) the Monri merchant key of a connector through the console, as admin, and
/// returns (authenticity token, merchant key) read from the pages.
async fn console_credentials(app: &TestApp, connector: &str) -> (String, String) {
    let id = connector_id(app, connector);
    app.login_ok("admin", "admin-demo").await;
    let r = app
        .post_form(
            &format!("/connectors/{id}/rotate-monri-key"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    let marker = "New Monri merchant key (shown only now, store it safely): ";
    let i = page.find(marker).expect("merchant key flash") + marker.len();
    let key: String = page[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert_eq!(key.len(), 40);
    let marker = "<code id=\"monri-authenticity-token\">";
    let i = page.find(marker).expect("authenticity token") + marker.len();
    let token: String = page[i..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect();
    assert_eq!(token.len(), 40);
    // Shown once: the next view no longer has it.
    let (_, again) = app.get_html(&format!("/connectors/{id}")).await;
    assert!(!again.contains(&key), "merchant key shown only once");
    (token, key)
}

fn sql_count(app: &TestApp, sql: &str) -> i64 {
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

fn exec(app: &TestApp, sql: &str) {
    use diesel::RunQueryDsl;
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(sql).execute(&mut *c).expect("exec");
}

// ---------- auth ----------

#[tokio::test]
async fn monri_wp3_digest_authenticates_and_bad_or_stale_requests_get_401() {
    let app = TestApp::demo().await;
    let body = seed_customer("wp3-1").to_string();
    let r = send(&app, "POST", "/v2/customers", Auth::Wp3(SHOP), &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();

    // GET: empty body, path without the query string.
    let r = send(
        &app,
        "GET",
        "/v2/customers?limit=5&offset=0",
        Auth::Wp3(SHOP),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let path = format!("/v2/customers/{uuid}");
    let r = send(&app, "GET", &path, Auth::Wp3(SHOP), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // Inside the window (±300 s) is fine, outside is refused.
    let r = send(&app, "GET", &path, Auth::Wp3At(SHOP, now() - 250), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    for ts in [now() - 400, now() + 400, 0] {
        let r = send(&app, "GET", &path, Auth::Wp3At(SHOP, ts), "").await;
        assert_error(&r, StatusCode::UNAUTHORIZED);
    }

    let wrong_key = Creds {
        token: SHOP_TOKEN,
        key: "not-the-key",
    };
    let unknown = Creds {
        token: "unknownauthenticitytoken0000000000000000",
        key: SHOP_KEY,
    };
    for auth in [
        Auth::Wp3(wrong_key),
        Auth::Wp3(unknown),
        Auth::None,
        Auth::Header("WP3-v2.1".into()),
        Auth::Header(format!("WP3-v2.1 {SHOP_TOKEN} {}", now())),
        Auth::Header(format!(
            "WP3-v2.1 {SHOP_TOKEN} {} {}",
            now(),
            "0".repeat(128)
        )),
        Auth::Header(format!("WP3-v2.1 {SHOP_TOKEN} soon {}", "0".repeat(128))),
        Auth::Header("Basic c2hvcC1hcGk6c2hvcC1hcGktZGVtbw==".into()),
        Auth::Bearer("nope"),
        Auth::Bearer(&"a".repeat(64)),
        Auth::Header("x".repeat(5000)),
    ] {
        let r = send(&app, "GET", &path, auth, "").await;
        assert_error(&r, StatusCode::UNAUTHORIZED);
        assert!(!r.text.contains(SHOP_KEY));
    }

    // The digest covers the path and the body: a request replayed elsewhere fails.
    let h = wp3_header(SHOP, now(), "/v2/customers", "");
    let r = send(&app, "GET", &path, Auth::Header(h), "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    let h = wp3_header(SHOP, now(), "/v2/customers", &body);
    let other = seed_customer("wp3-2").to_string();
    let r = send(&app, "POST", "/v2/customers", Auth::Header(h), &other).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    // Uppercase hex digests are accepted.
    let h = wp3_header(SHOP, now(), &path, "");
    let (head, digest) = h.rsplit_once(' ').expect("digest");
    let upper = format!("{head} {}", digest.to_ascii_uppercase());
    let r = send(&app, "GET", &path, Auth::Header(upper), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
}

#[tokio::test]
async fn monri_oauth_tokens_are_scoped_expire_and_work_on_another_process() {
    let app = TestApp::demo().await;
    let r = oauth(&app, SHOP, json!(["customers"])).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["token_type"], "Bearer");
    assert_eq!(r.json["expires_in"], 900);
    assert_eq!(r.json["status"], "approved");
    let customers_only = r.json["access_token"].as_str().expect("token").to_string();
    assert!(customers_only.len() >= 32);

    // Only a keyed hash is stored, never the token.
    assert_eq!(
        sql_count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM monri_access_tokens WHERE token_hash = '{customers_only}'"
            )
        ),
        0
    );
    assert_eq!(
        sql_count(&app, "SELECT COUNT(*) AS n FROM monri_access_tokens"),
        1
    );

    let created = send(
        &app,
        "POST",
        "/v2/customers",
        Auth::Bearer(&customers_only),
        &seed_customer("oauth-1").to_string(),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text);
    let uuid = created.json["uuid"].as_str().expect("uuid").to_string();
    let r = send(
        &app,
        "GET",
        &format!("/v2/customers/{uuid}"),
        Auth::Bearer(&customers_only),
        "",
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);

    // payment-methods needs its scope.
    let pm = format!("/v2/customers/{uuid}/payment-methods");
    let r = send(&app, "GET", &pm, Auth::Bearer(&customers_only), "").await;
    assert_error(&r, StatusCode::FORBIDDEN);
    assert!(
        r.json["message"]
            .as_str()
            .unwrap_or("")
            .contains("payment-methods")
    );
    let both = token(&app, SHOP, json!(["customers", "payment-methods"])).await;
    let r = send(&app, "GET", &pm, Auth::Bearer(&both), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json, json!({"status": "approved", "data": []}));
    let pm_only = token(&app, SHOP, json!(["payment-methods"])).await;
    let r = send(&app, "GET", &pm, Auth::Bearer(&pm_only), "").await;
    assert_error(&r, StatusCode::FORBIDDEN);

    // Another Coffer process on the same database accepts the token.
    let second = app.another(app.settings.clone(), false);
    let second_url = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let r = app
        .client
        .get(format!("{second_url}/v2/customers/{uuid}"))
        .header("authorization", format!("Bearer {customers_only}"))
        .send()
        .await
        .expect("second process");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["merchant_customer_id"], "oauth-1");

    // An expired token is refused.
    exec(
        &app,
        "UPDATE monri_access_tokens SET expires_at = '2020-01-01 00:00:00'",
    );
    let r = send(
        &app,
        "GET",
        &format!("/v2/customers/{uuid}"),
        Auth::Bearer(&customers_only),
        "",
    )
    .await;
    assert_error(&r, StatusCode::UNAUTHORIZED);

    // Bad token requests.
    let wrong = Creds {
        token: SHOP_TOKEN,
        key: "wrong",
    };
    let r = oauth(&app, wrong, json!(["customers"])).await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    assert!(!r.text.contains("wrong") && !r.text.contains(SHOP_KEY));
    let unknown = Creds {
        token: "x",
        key: SHOP_KEY,
    };
    assert_error(
        &oauth(&app, unknown, json!(["customers"])).await,
        StatusCode::UNAUTHORIZED,
    );
    for scopes in [json!([]), json!(["admin"]), json!("customers"), json!(null)] {
        assert_error(&oauth(&app, SHOP, scopes).await, StatusCode::BAD_REQUEST);
    }
    for body in [
        json!({"client_id": SHOP_TOKEN, "client_secret": SHOP_KEY, "grant_type": "password", "scopes": ["customers"]}),
        json!({"client_secret": SHOP_KEY, "grant_type": "client_credentials", "scopes": ["customers"]}),
        json!({"client_id": 5, "client_secret": SHOP_KEY, "grant_type": "client_credentials", "scopes": ["customers"]}),
        json!([1, 2]),
    ] {
        let r = send(&app, "POST", "/v2/oauth", Auth::None, &body.to_string()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    let r = send(&app, "POST", "/v2/oauth", Auth::None, "{not json").await;
    assert_error(&r, StatusCode::BAD_REQUEST);
}

// ---------- customers ----------

#[tokio::test]
async fn monri_customer_endpoints_answer_the_seed_shapes() {
    let app = TestApp::demo().await;
    let c = create(&app, seed_customer("customer-id-1234")).await;
    assert_eq!(keys(&c), expected_keys(false), "{c}");
    let uuid = c["uuid"].as_str().expect("uuid").to_string();
    assert!(is_uuid_v4(&uuid), "{uuid}");
    for (k, v) in [
        ("status", json!("approved")),
        ("merchant_customer_id", json!("customer-id-1234")),
        ("description", json!("Customer")),
        ("email", json!("email@email.com")),
        ("name", json!("Test")),
        ("phone", Value::Null),
        ("deleted", json!(false)),
        ("city", Value::Null),
        ("country", json!("BA")),
        ("zip_code", json!("71000")),
        ("address", Value::Null),
        ("metadata", json!({"key": "value"})),
        ("deleted_at", Value::Null),
    ] {
        assert_eq!(c[k], v, "{k} in {c}");
    }
    assert!(
        is_timestamp(&c["created_at"]) && is_timestamp(&c["updated_at"]),
        "{c}"
    );

    // Retrieve by uuid and by merchant_customer_id: the same answer.
    let r = shop(&app, "GET", &format!("/v2/customers/{uuid}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json, c);
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/customer-id-1234",
        Value::Null,
    )
    .await;
    assert_eq!(r.json, c);

    // Update: only the fields sent change; a metadata key set to null is removed.
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"name": "Ana Marija Horvat", "city": "Sarajevo", "country": "hr",
               "metadata": {"key": null, "tier": "gold"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let u = r.json;
    assert_eq!(keys(&u), expected_keys(false));
    assert_eq!(u["name"], "Ana Marija Horvat");
    assert_eq!(u["city"], "Sarajevo");
    assert_eq!(u["country"], "HR");
    assert_eq!(u["metadata"], json!({"tier": "gold"}));
    for k in [
        "uuid",
        "merchant_customer_id",
        "description",
        "email",
        "zip_code",
        "created_at",
    ] {
        assert_eq!(u[k], c[k], "{k} unchanged");
    }
    // null clears a field; metadata null clears all keys; merchant_customer_id can change.
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"zip_code": null, "phone": "+387 33 123 456", "merchant_customer_id": "renamed-1"}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["zip_code"], Value::Null);
    assert_eq!(r.json["phone"], "+387 33 123 456");
    assert_eq!(r.json["merchant_customer_id"], "renamed-1");
    assert_eq!(r.json["metadata"], json!({"tier": "gold"}));
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/customer-id-1234",
        Value::Null,
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"metadata": null}),
    )
    .await;
    assert_eq!(r.json["metadata"], json!({}));

    // Without merchant_customer_id: null in the answer, and not found by its uuid as one.
    let anon = create(&app, json!({"email": "anon@example.com"})).await;
    assert_eq!(anon["merchant_customer_id"], Value::Null);
    assert_eq!(anon["name"], Value::Null);
    assert_eq!(anon["metadata"], json!({}));
    let anon_uuid = anon["uuid"].as_str().expect("uuid");
    let r = shop(
        &app,
        "GET",
        &format!("/v2/merchants/customers/{anon_uuid}"),
        Value::Null,
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    // An empty body creates an empty customer.
    let empty = create(&app, json!({})).await;
    assert_eq!(empty["email"], Value::Null);

    // Delete answers the documented shape; the customer is then a tombstone.
    let r = shop(
        &app,
        "DELETE",
        &format!("/v2/customers/{uuid}"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(
        r.json,
        json!({"status": "approved", "id": uuid, "deleted": true})
    );
    let r = shop(&app, "GET", &format!("/v2/customers/{uuid}"), Value::Null).await;
    assert_eq!(r.status, StatusCode::OK);
    let t = r.json;
    assert_eq!(keys(&t), expected_keys(false));
    assert_eq!(t["deleted"], true);
    assert_eq!(t["uuid"], uuid.as_str());
    assert!(is_timestamp(&t["deleted_at"]), "{t}");
    for k in [
        "merchant_customer_id",
        "description",
        "email",
        "name",
        "phone",
        "zip_code",
        "city",
        "address",
        "country",
    ] {
        assert_eq!(t[k], Value::Null, "{k} erased");
    }
    assert_eq!(t["metadata"], json!({}));
    // Deleting again answers the same; updating a deleted customer is not found.
    let r = shop(
        &app,
        "DELETE",
        &format!("/v2/customers/{uuid}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json,
        json!({"status": "approved", "id": uuid, "deleted": true})
    );
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"name": "Back"}),
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/renamed-1",
        Value::Null,
    )
    .await;
    assert_error(&r, StatusCode::NOT_FOUND);
    // The merchant_customer_id is free again.
    let again = create(&app, seed_customer("renamed-1")).await;
    assert_ne!(again["uuid"], uuid.as_str());

    // The erasure is in the audit log once (deleting again changed nothing), naming the client.
    app.login_ok("admin", "admin-demo").await;
    let (_, log) = app.get_html("/audit").await;
    assert_eq!(
        log.matches(&format!("Erased customer {uuid}")).count(),
        1,
        "{log}"
    );
    assert!(
        log.contains("Monri API client (connector demo-shop-cards)"),
        "{log}"
    );
}

#[tokio::test]
async fn monri_invalid_requests_get_400_and_unknown_ids_404_never_500() {
    let app = TestApp::demo().await;
    let c = create(&app, seed_customer("dup-1")).await;
    let uuid = c["uuid"].as_str().expect("uuid").to_string();
    let other = create(&app, seed_customer("dup-2")).await;
    let other_uuid = other["uuid"].as_str().expect("uuid").to_string();

    // A duplicate merchant_customer_id in the container is 400, on create and on update.
    let r = shop(&app, "POST", "/v2/customers", seed_customer("dup-1")).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    assert!(r.text.contains("merchant_customer_id"), "{}", r.text);
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{other_uuid}"),
        json!({"merchant_customer_id": "dup-1"}),
    )
    .await;
    assert_error(&r, StatusCode::BAD_REQUEST);

    let long = |n: usize| "x".repeat(n);
    for (body, field) in [
        (json!({"merchant_customer_id": ""}), "merchant_customer_id"),
        (
            json!({"merchant_customer_id": long(101)}),
            "merchant_customer_id",
        ),
        (json!({"description": long(201)}), "description"),
        (json!({"email": "not-an-email"}), "email"),
        (
            json!({"email": format!("{}@example.com", long(190))}),
            "email",
        ),
        (json!({"name": ""}), "name"),
        (json!({"name": "   "}), "name"),
        (json!({"name": long(51)}), "name"),
        (json!({"phone": long(31)}), "phone"),
        (json!({"zip_code": "1234567890"}), "zip_code"),
        (json!({"zip_code": 71000}), "zip_code"),
        (json!({"city": "ab"}), "city"),
        (json!({"city": long(31)}), "city"),
        (json!({"address": "ab"}), "address"),
        (json!({"address": long(101)}), "address"),
        (json!({"country": "BIH"}), "country"),
        (json!({"country": "XX"}), "country"),
        (json!({"country": 1}), "country"),
        (json!({"metadata": ["a"]}), "metadata"),
        (json!({"metadata": {"k": 5}}), "metadata"),
        (json!({"metadata": {"": "v"}}), "metadata"),
        (json!({"metadata": {"k": long(8193)}}), "metadata"),
        (json!({"nickname": "x"}), "nickname"),
        (
            json!({"merchant_customer_id": "a\u{0}b"}),
            "merchant_customer_id",
        ),
    ] {
        let r = shop(&app, "POST", "/v2/customers", body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
        assert!(r.text.contains(field), "{body}: {}", r.text);
        let r = shop(&app, "POST", &format!("/v2/customers/{uuid}"), body.clone()).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    // Malformed bodies.
    for raw in ["", "not json", "[]", "\"x\"", "{\"name\":", "{\"a\":1}{"] {
        let r = send(&app, "POST", "/v2/customers", Auth::Wp3(SHOP), raw).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let r = send(&app, "POST", "/v2/customers", Auth::Wp3(SHOP), &deep).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
    let huge = json!({"description": "x".repeat(2 * 1024 * 1024)}).to_string();
    let r = send(&app, "POST", "/v2/customers", Auth::Wp3(SHOP), &huge).await;
    assert_error(&r, StatusCode::PAYLOAD_TOO_LARGE);

    // Nothing changed by the refused requests.
    let r = shop(&app, "GET", &format!("/v2/customers/{uuid}"), Value::Null).await;
    assert_eq!(r.json, c);

    // Unknown or malformed ids: 404.
    let unknown = "4b281da4-d145-4233-b957-2018cf9aa0fb";
    for (m, p) in [
        ("GET", format!("/v2/customers/{unknown}")),
        ("POST", format!("/v2/customers/{unknown}")),
        ("DELETE", format!("/v2/customers/{unknown}")),
        ("GET", format!("/v2/customers/{unknown}/payment-methods")),
        ("GET", "/v2/customers/not-a-uuid".to_string()),
        ("GET", "/v2/customers/%00".to_string()),
        ("GET", "/v2/merchants/customers/nobody".to_string()),
        ("GET", "/v2/merchants/customers/a%00b".to_string()),
        (
            "GET",
            format!("/v2/merchants/customers/{}", "y".repeat(101)),
        ),
    ] {
        let body = if m == "POST" {
            json!({"name": "X"})
        } else {
            Value::Null
        };
        let r = shop(&app, m, &p, body).await;
        assert_error(&r, StatusCode::NOT_FOUND);
    }
    // A merchant_customer_id with characters that need encoding in the path.
    let spaced = create(&app, seed_customer("shop customer/1")).await;
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/shop%20customer%2F1",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["uuid"], spaced["uuid"]);
}

#[tokio::test]
async fn monri_list_is_newest_first_with_limit_and_offset_bounds() {
    let app = TestApp::demo().await;
    let mut uuids = vec![];
    for i in 0..7 {
        let c = create(&app, json!({"merchant_customer_id": format!("list-{i}")})).await;
        uuids.push(c["uuid"].as_str().expect("uuid").to_string());
    }
    // A deleted customer is not listed.
    let gone = uuids.remove(3);
    let r = shop(
        &app,
        "DELETE",
        &format!("/v2/customers/{gone}"),
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    uuids.reverse(); // newest first
    let ids = |v: &Value| -> Vec<String> {
        v["data"]
            .as_array()
            .expect("data")
            .iter()
            .map(|c| c["id"].as_str().expect("id").to_string())
            .collect()
    };

    let r = shop(&app, "GET", "/v2/customers", Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "approved");
    assert_eq!(ids(&r.json), uuids);
    let first = &r.json["data"][0];
    assert_eq!(keys(first), expected_keys(true), "{first}");
    assert_eq!(first["uuid"], first["id"]);
    assert_eq!(first["merchant_customer_id"], "list-6");

    let r = shop(&app, "GET", "/v2/customers?limit=2&offset=1", Value::Null).await;
    assert_eq!(ids(&r.json), uuids[1..3].to_vec());
    let r = shop(&app, "GET", "/v2/customers?offset=5", Value::Null).await;
    assert_eq!(ids(&r.json), uuids[5..].to_vec());
    let r = shop(&app, "GET", "/v2/customers?offset=50", Value::Null).await;
    assert_eq!(r.json, json!({"status": "approved", "data": []}));
    let r = shop(&app, "GET", "/v2/customers?limit=100", Value::Null).await;
    assert_eq!(ids(&r.json).len(), 6);
    for q in [
        "limit=0",
        "limit=101",
        "limit=-1",
        "limit=ten",
        "limit=",
        "offset=-1",
        "offset=1e3",
        "limit=99999999999999999999",
        "limit=1&limit=2",
    ] {
        let r = shop(&app, "GET", &format!("/v2/customers?{q}"), Value::Null).await;
        assert_error(&r, StatusCode::BAD_REQUEST);
    }
}

// ---------- the two APIs over the same profiles ----------

#[tokio::test]
async fn monri_sees_profiles_registered_through_the_transaction_api_with_their_cards() {
    let app = TestApp::demo().await;
    let first = register_card(
        &app,
        "tx-cust-1",
        "4111111111111111",
        json!({"firstName": "Ivana", "lastName": "Babić", "email": "Ivana@Example.com",
               "billingCountry": "HR", "billingCity": "Zagreb", "billingPostcode": "10000",
               "billingAddress1": "Ilica 1", "billingPhone": "+385 1 234",
               "extraData": {"segment": "retail"}}),
    )
    .await;
    let second = register_card(&app, "tx-cust-1", "5555555555554444", Value::Null).await;

    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/tx-cust-1",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let c = r.json;
    assert!(is_uuid_v4(c["uuid"].as_str().unwrap_or("")), "{c}");
    assert_eq!(c["name"], "Ivana Babić");
    assert_eq!(c["email"], "Ivana@Example.com");
    assert_eq!(c["country"], "HR");
    assert_eq!(c["city"], "Zagreb");
    assert_eq!(c["zip_code"], "10000");
    assert_eq!(c["address"], "Ilica 1");
    assert_eq!(c["phone"], "+385 1 234");
    assert_eq!(c["metadata"], json!({"segment": "retail"}));
    let uuid = c["uuid"].as_str().expect("uuid").to_string();

    let pm = format!("/v2/customers/{uuid}/payment-methods");
    let r = shop(&app, "GET", &pm, Value::Null).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    assert_eq!(r.json["status"], "approved");
    let data = r.json["data"].as_array().expect("data").clone();
    assert_eq!(data.len(), 2);
    // Newest first: the mastercard registered second.
    assert_eq!(data[0]["masked_pan"], "555555******4444");
    assert_eq!(data[1]["masked_pan"], "411111******1111");
    let mut item_keys = keys(&data[0]);
    item_keys.sort();
    assert_eq!(
        item_keys,
        [
            "created_at",
            "customer_uuid",
            "expiration_date",
            "expired",
            "id",
            "keep_until",
            "masked_pan",
            "status",
            "token",
            "updated_at"
        ]
    );
    for m in &data {
        assert_eq!(m["status"], "approved");
        let id = m["id"].as_str().expect("id");
        assert!(
            id.len() == 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()),
            "{id}"
        );
        assert_eq!(m["token"], m["id"]);
        assert_eq!(m["expiration_date"], "2030-12-31");
        assert_eq!(m["keep_until"], "2030-12-31T23:59:59Z");
        assert_eq!(m["customer_uuid"], uuid.as_str());
        assert_eq!(m["expired"], false);
        assert!(is_timestamp(&m["created_at"]) && is_timestamp(&m["updated_at"]));
    }
    assert_ne!(data[0]["id"], data[1]["id"]);
    // Ids are stable, and not the IXOPAY payment tokens.
    let again = shop(&app, "GET", &pm, Value::Null).await;
    assert_eq!(again.json["data"], json!(data));
    for v in [&first, &second] {
        let pt = v["customerProfileData"]["paymentToken"]
            .as_str()
            .expect("pt");
        assert!(!r.text.contains(pt));
    }
    assert!(!r.text.contains("4111111111111111") && !r.text.contains("5555555555554444"));
    // Paging.
    let r = shop(&app, "GET", &format!("{pm}?limit=1&offset=1"), Value::Null).await;
    assert_eq!(r.json["data"], json!([data[1].clone()]));
    let r = shop(&app, "GET", &format!("{pm}?limit=1000"), Value::Null).await;
    assert_error(&r, StatusCode::BAD_REQUEST);

    // An update through v2 is seen by IXOPAY getProfile, and the instruments are kept.
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"phone": "+385 91 000 0000", "metadata": {"vip": "yes"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let (s, g) = ixopay(
        &app,
        "getProfile",
        json!({"customerIdentification": "tx-cust-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(g["customer"]["billingPhone"], "+385 91 000 0000");
    assert_eq!(g["customer"]["firstName"], "Ivana");
    assert_eq!(
        g["customer"]["extraData"],
        json!({"segment": "retail", "vip": "yes"})
    );
    assert_eq!(g["paymentInstruments"].as_array().map(Vec::len), Some(2));
}

#[tokio::test]
async fn monri_customers_are_ixopay_profiles_and_show_in_the_console() {
    let app = TestApp::demo().await;
    // Values within v2's limits but beyond IXOPAY's: a 60-character id, a 90-character
    // address, a 25-character phone.
    let long_id = format!("v2-{}", "i".repeat(57));
    let address = format!("Zmaja od Bosne {}", "8".repeat(75));
    let phone = "+387 33 000 000 000 000 0";
    let c = create(
        &app,
        json!({"merchant_customer_id": "v2-shared-1", "name": "Marta Kovač Horvat",
               "email": "Marta@Example.ba", "phone": phone, "address": address,
               "city": "Sarajevo", "zip_code": "71000", "country": "BA",
               "description": "VIP", "metadata": {"source": "app"}}),
    )
    .await;
    let uuid = c["uuid"].as_str().expect("uuid").to_string();

    let (s, g) = ixopay(
        &app,
        "getProfile",
        json!({"customerIdentification": "v2-shared-1"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{g}");
    assert_eq!(g["profileExists"], true);
    assert_eq!(g["customerIdentification"], "v2-shared-1");
    let cd = &g["customer"];
    assert_eq!(cd["firstName"], "Marta");
    assert_eq!(cd["lastName"], "Kovač Horvat");
    assert_eq!(cd["email"], "Marta@Example.ba");
    assert_eq!(cd["billingPhone"], phone);
    assert_eq!(cd["billingAddress1"], address.as_str());
    assert_eq!(cd["billingCity"], "Sarajevo");
    assert_eq!(cd["billingPostcode"], "71000");
    assert_eq!(cd["billingCountry"], "BA");
    assert_eq!(cd["extraData"], json!({"source": "app"}));
    assert!(cd.get("description").is_none(), "not an IXOPAY field");

    // An IXOPAY updateProfile works although the stored address is over IXOPAY's limit, and
    // v2 sees its change and keeps what IXOPAY does not know.
    let (s, u) = ixopay(
        &app,
        "updateProfile",
        json!({"customerIdentification": "v2-shared-1",
               "customerData": {"firstName": "Marta", "lastName": "Kovač", "birthDate": "1990-05-01"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{u}");
    let r = shop(&app, "GET", &format!("/v2/customers/{uuid}"), Value::Null).await;
    assert_eq!(r.json["name"], "Marta Kovač");
    assert_eq!(r.json["description"], "VIP");
    assert_eq!(r.json["address"], address.as_str());

    // Long merchant_customer_id: stored as customerIdentification; IXOPAY finds it by guid.
    let l = create(
        &app,
        json!({"merchant_customer_id": long_id, "name": "Long"}),
    )
    .await;
    let guid: String = {
        use coffer::db::schema::profiles;
        use diesel::prelude::*;
        let db = app.db();
        let mut conn = db.get().expect("conn");
        profiles::table
            .filter(profiles::uuid.eq(l["uuid"].as_str().expect("uuid")))
            .select(profiles::profile_guid)
            .first(&mut *conn)
            .expect("guid")
    };
    let (_, g) = ixopay(&app, "getProfile", json!({"profileGuid": guid})).await;
    assert_eq!(g["profileExists"], true);
    assert_eq!(g["customerIdentification"], long_id.as_str());

    // Without merchant_customer_id, IXOPAY sees the uuid as customerIdentification.
    let anon = create(&app, json!({"name": "Anon"})).await;
    let anon_uuid = anon["uuid"].as_str().expect("uuid");
    let (_, g) = ixopay(
        &app,
        "getProfile",
        json!({"customerIdentification": anon_uuid}),
    )
    .await;
    assert_eq!(g["profileExists"], true);
    assert_eq!(g["customer"]["firstName"], "Anon");

    // A card registered through the Transaction API into a v2 customer shows up in v2.
    register_card(&app, "v2-shared-1", "4242424242424242", Value::Null).await;
    let r = shop(
        &app,
        "GET",
        &format!("/v2/customers/{uuid}/payment-methods"),
        Value::Null,
    )
    .await;
    assert_eq!(r.json["data"][0]["masked_pan"], "424242******4242");

    // The console lists and finds the customer (by merchant id and by uuid).
    app.login_ok("admin", "admin-demo").await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let (s, page) = app
        .get_html(&format!("/containers/{shared}?q=v2-shared-1"))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        page.contains("v2-shared-1"),
        "console search by customerIdentification"
    );
    let (_, page) = app
        .get_html(&format!("/containers/{shared}?q={uuid}"))
        .await;
    assert!(page.contains("v2-shared-1"), "console search by uuid");
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    assert!(page.contains("v2-shared-1") && page.contains(anon_uuid));
}

#[tokio::test]
async fn monri_other_merchants_customers_are_not_found_and_sharing_connectors_see_them() {
    let app = TestApp::demo().await;
    let c = create(&app, seed_customer("shop-only")).await;
    let uuid = c["uuid"].as_str().expect("uuid").to_string();
    let (gtoken, gkey) = console_credentials(&app, "Globex Cards").await;
    let globex = Creds {
        token: &gtoken,
        key: &gkey,
    };
    for (m, p, b) in [
        ("GET", format!("/v2/customers/{uuid}"), String::new()),
        (
            "POST",
            format!("/v2/customers/{uuid}"),
            json!({"name": "Hijack"}).to_string(),
        ),
        ("DELETE", format!("/v2/customers/{uuid}"), String::new()),
        (
            "GET",
            format!("/v2/customers/{uuid}/payment-methods"),
            String::new(),
        ),
        (
            "GET",
            "/v2/merchants/customers/shop-only".to_string(),
            String::new(),
        ),
    ] {
        let r = send(&app, m, &p, Auth::Wp3(globex), &b).await;
        assert_error(&r, StatusCode::NOT_FOUND);
    }
    let r = send(&app, "GET", "/v2/customers", Auth::Wp3(globex), "").await;
    assert_eq!(r.json, json!({"status": "approved", "data": []}));
    // Globex may use the same merchant_customer_id in its own container.
    let r = send(
        &app,
        "POST",
        "/v2/customers",
        Auth::Wp3(globex),
        &seed_customer("shop-only").to_string(),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The shop's customer is untouched.
    let r = shop(&app, "GET", &format!("/v2/customers/{uuid}"), Value::Null).await;
    assert_eq!(r.json, c);

    // Acme Outlet shares the container, so it sees the shop's customers.
    let (otoken, okey) = console_credentials(&app, "Acme Outlet Cards").await;
    let outlet = Creds {
        token: &otoken,
        key: &okey,
    };
    let r = send(
        &app,
        "GET",
        &format!("/v2/customers/{uuid}"),
        Auth::Wp3(outlet),
        "",
    )
    .await;
    assert_eq!(r.json, c);

    // Rotating a merchant key revokes the old key and the connector's tokens.
    let t = token(&app, globex, json!(["customers"])).await;
    let (_, gkey2) = console_credentials(&app, "Globex Cards").await;
    assert_ne!(gkey, gkey2);
    let r = send(&app, "GET", "/v2/customers", Auth::Bearer(&t), "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    let r = send(&app, "GET", "/v2/customers", Auth::Wp3(globex), "").await;
    assert_error(&r, StatusCode::UNAUTHORIZED);
    let rotated = Creds {
        token: &gtoken,
        key: &gkey2,
    };
    let r = send(&app, "GET", "/v2/customers", Auth::Wp3(rotated), "").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    // The merchant key is stored sealed, not in clear.
    assert_eq!(
        sql_count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM connectors WHERE monri_merchant_key LIKE '%{gkey2}%'"
            )
        ),
        0
    );

    // A connector without an effective container: 400.
    exec(
        &app,
        "UPDATE connectors SET ignore_global = TRUE WHERE api_key = 'demo-shop-cards'",
    );
    let r = shop(&app, "GET", "/v2/customers", Value::Null).await;
    assert_error(&r, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn monri_delete_erases_personal_data_and_ixopay_no_longer_finds_the_profile() {
    let app = TestApp::demo().await;
    let markers = [
        "Zelda",
        "Quartermaine",
        "zelda.q@example.org",
        "Lindenallee",
        "Gotham Heights",
        "+43 660 1234567",
        "erase-me-please",
        "loyalty-marker",
        "description-marker",
    ];
    let reg = register_card(
        &app,
        "erase-me-please",
        "4111111111111111",
        json!({"firstName": "Zelda", "lastName": "Quartermaine", "email": "zelda.q@example.org",
               "billingAddress1": "Lindenallee 5", "billingCity": "Gotham Heights",
               "billingCountry": "AT"}),
    )
    .await;
    let guid = reg["customerProfileData"]["profileGuid"]
        .as_str()
        .expect("guid")
        .to_string();
    let pt = reg["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("pt")
        .to_string();
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/erase-me-please",
        Value::Null,
    )
    .await;
    let uuid = r.json["uuid"].as_str().expect("uuid").to_string();
    let r = shop(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        json!({"phone": "+43 660 1234567", "description": "description-marker",
               "metadata": {"program": "loyalty-marker"}}),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    let count_before = sql_count(
        &app,
        "SELECT profile_count AS n FROM containers WHERE name = 'Acme Shared Profiles'",
    );
    // The scan below does find the data while the customer exists.
    assert!(
        scan_for(&app, &markers).len() >= 5,
        "markers are in the database"
    );

    let r = shop(
        &app,
        "DELETE",
        &format!("/v2/customers/{uuid}"),
        Value::Null,
    )
    .await;
    assert_eq!(
        r.json,
        json!({"status": "approved", "id": uuid, "deleted": true})
    );

    // IXOPAY no longer finds it, by either identifier; the token is gone.
    for key in [
        json!({"customerIdentification": "erase-me-please"}),
        json!({"profileGuid": guid}),
    ] {
        let (s, g) = ixopay(&app, "getProfile", key).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(g["profileExists"], false, "{g}");
    }
    let (s, _) = ixopay(&app, "deleteProfile", json!({"profileGuid": guid})).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = shop(
        &app,
        "GET",
        &format!("/v2/customers/{uuid}/payment-methods"),
        Value::Null,
    )
    .await;
    assert_eq!(r.json, json!({"status": "approved", "data": []}));
    assert_eq!(
        sql_count(
            &app,
            "SELECT profile_count AS n FROM containers WHERE name = 'Acme Shared Profiles'"
        ),
        count_before - 1
    );
    assert_eq!(
        sql_count(
            &app,
            &format!("SELECT COUNT(*) AS n FROM instruments WHERE payment_token = '{pt}'")
        ),
        0
    );
    // The console does not show it.
    app.login_ok("admin", "admin-demo").await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    assert!(!page.contains("erase-me-please") && !page.contains(&uuid));

    // No personal data left in the database (nor the card number).
    let mut all: Vec<&str> = markers.to_vec();
    all.push("4111111111111111");
    assert_eq!(scan_for(&app, &all), Vec::<String>::new());

    // A new registration with the same customerIdentification creates a new profile.
    let again = register_card(&app, "erase-me-please", "4111111111111111", Value::Null).await;
    assert_ne!(again["customerProfileData"]["profileGuid"], guid.as_str());
    let r = shop(
        &app,
        "GET",
        "/v2/merchants/customers/erase-me-please",
        Value::Null,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_ne!(r.json["uuid"], uuid.as_str());
}

/// Which of `markers` the database holds. PostgreSQL: every row of every table as text;
/// SQLite: the raw bytes of the database files after a checkpoint (so free space and the WAL
/// count too).
fn scan_for(app: &TestApp, markers: &[&str]) -> Vec<String> {
    use diesel::RunQueryDsl;
    use diesel::connection::SimpleConnection;
    let mut found = vec![];
    let db = app.db();
    let mut c = db.get().expect("conn");
    if is_postgres() {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            tablename: String,
        }
        let tables: Vec<T> = diesel::sql_query(
            "SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public'",
        )
        .load(&mut *c)
        .expect("tables");
        assert!(tables.len() > 10);
        for t in tables {
            for m in markers {
                let n = sql_count(
                    app,
                    &format!(
                        "SELECT COUNT(*) AS n FROM \"{}\" t WHERE t::text LIKE '%{m}%'",
                        t.tablename
                    ),
                );
                if n > 0 {
                    found.push(format!("{m} in {}", t.tablename));
                }
            }
        }
    } else {
        c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")
            .expect("checkpoint");
        let mut scanned = 0;
        for entry in std::fs::read_dir(&app.settings.data_dir).expect("data dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            scanned += bytes.len();
            for m in markers {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    found.push(format!("{m} in {}", path.display()));
                }
            }
        }
        assert!(scanned > 10_000, "the database files were read");
    }
    found
}

#[tokio::test]
async fn monri_migration_backfills_existing_rows_and_demo_seeding_restores_credentials() {
    use coffer::db::schema::{connectors, profiles};
    use diesel::prelude::*;
    use diesel_migrations::MigrationHarness;
    let app = TestApp::demo().await;
    register_card(&app, "before-monri", "4111111111111111", Value::Null).await;
    register_card(&app, "before-monri-2", "4242424242424242", Value::Null).await;
    {
        // Back to the schema before this migration, then forward again: the existing rows
        // get uuids and authenticity tokens.
        let db = app.db();
        let mut c = db.get().expect("conn");
        // Revert the migrations after Monri's too, down to and including 000005.
        loop {
            let set = if is_postgres() {
                coffer::db::POSTGRES_MIGRATIONS
            } else {
                coffer::db::SQLITE_MIGRATIONS
            };
            let reverted = c.revert_last_migration(set).expect("revert").to_string();
            assert!(
                reverted.as_str() >= "20261121000005",
                "reverted past the Monri migration: {reverted}"
            );
            if reverted == "20261121000005" {
                break;
            }
        }
        coffer::db::run_migrations(&mut c).expect("migrate");
        let uuids: Vec<String> = profiles::table
            .select(profiles::uuid)
            .load(&mut *c)
            .expect("uuids");
        assert_eq!(uuids.len(), 2);
        assert!(uuids.iter().all(|u| is_uuid_v4(u)), "{uuids:?}");
        assert_ne!(uuids[0], uuids[1]);
        let rows: Vec<(String, Option<String>)> = connectors::table
            .select((
                connectors::monri_authenticity_token,
                connectors::monri_merchant_key,
            ))
            .load(&mut *c)
            .expect("connectors");
        assert!(rows.len() >= 4);
        for (t, k) in &rows {
            assert!(
                t.len() == 40 && t.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{t}"
            );
            assert!(k.is_none(), "no merchant key until one is issued");
        }
        let mut tokens: Vec<&String> = rows.iter().map(|(t, _)| t).collect();
        tokens.sort();
        tokens.dedup();
        assert_eq!(tokens.len(), rows.len());
    }
    // `serve --demo` on the existing database gives Acme Shop Cards its published credentials.
    let again = app.another(app.settings.clone(), true);
    let base = format!("http://127.0.0.1:{}", again.port());
    tokio::spawn(again.run_until_stopped());
    let path = "/v2/merchants/customers/before-monri";
    let r = app
        .client
        .get(format!("{base}{path}"))
        .header("authorization", wp3_header(SHOP, now(), path, ""))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    assert!(is_uuid_v4(v["uuid"].as_str().unwrap_or("")), "{v}");
    // Other connectors have no merchant key yet: refused until one is issued in the console.
    let globex_token: String = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        connectors::table
            .filter(connectors::name.eq("Globex Cards"))
            .select(connectors::monri_authenticity_token)
            .first(&mut *c)
            .expect("globex")
    };
    let globex = Creds {
        token: &globex_token,
        key: "",
    };
    let r = app
        .client
        .get(format!("{base}/v2/customers"))
        .header(
            "authorization",
            wp3_header(globex, now(), "/v2/customers", ""),
        )
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn monri_oauth_with_a_nul_in_client_id_is_refused_not_a_server_error() {
    // Found by the fuzzer on PostgreSQL: text columns cannot hold NUL, the lookup failed with 500.
    let app = TestApp::demo().await;
    let r = app
        .client
        .post(app.url("/v2/oauth"))
        .header("content-type", "application/json")
        .body(r#"{"client_id":"\t\u0000","client_secret":"demo-shop-merchant-key","grant_type":"client_credentials","scopes":["customers"]}"#)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), reqwest::StatusCode::UNAUTHORIZED);
    let v: Value = r.json().await.expect("json");
    assert_ne!(v["status"], "approved");
}
