//! Compatibility fixes ([lifecycle] issue): what clients of the originals read. Callbacks of
//! failed transactions carry the first error at the top level (spec 2.6); the Status API answers
//! an unknown transaction with HTTP 200 and 8001; Monri's merchant-wide `GET /v2/payment-methods`;
//! and the settings work after the `serve` subcommand as well as before it.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_transactions::tokenize;
use crate::callbacks::{Receiver, api, card, mtid, until};
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

// ---------------------------------------------------------------------------------------------
// Callbacks of failed transactions

#[tokio::test]
async fn a_failed_transactions_callback_carries_the_first_error_at_the_top_level() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(|_| (200, "OK")).await;
    // Declined by the processor (2003), and one approved for comparison.
    let declined = card(&app, "demo-shop-public", "4000000000000002").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR",
                "transactionToken": declined, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], false, "{v}");
    let err_uuid = v["uuid"].as_str().expect("uuid").to_string();
    let approved = card(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR",
                "transactionToken": approved, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let ok_uuid = v["uuid"].as_str().expect("uuid").to_string();
    until(15, "both callbacks", || {
        !rx.for_uuid(&err_uuid).is_empty() && !rx.for_uuid(&ok_uuid).is_empty()
    })
    .await;

    let e = rx.for_uuid(&err_uuid)[0].json();
    assert_eq!(e["result"], "ERROR", "{e}");
    let first = &e["errors"][0];
    // The top level repeats the first error, with the same types as errors[] (spec 2.6, and
    // 2.3: the code is an integer, the adapter code a string).
    assert_eq!(e["code"], json!(2003), "{e}");
    assert!(e["code"].is_i64(), "code is a number: {e}");
    assert_eq!(e["code"], first["code"], "{e}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{e}");
    assert_eq!(e["message"], first["message"], "{e}");
    assert_eq!(e["adapterMessage"], first["adapterMessage"], "{e}");
    assert!(e["adapterMessage"].is_string(), "{e}");
    assert_eq!(e["adapterCode"], first["adapterCode"], "{e}");
    assert_eq!(e["adapterCode"], json!("2003"), "{e}");
    // Not IXOPAY's names of the Transaction API's general errors.
    assert!(
        e.get("errorMessage").is_none() && e.get("errorCode").is_none(),
        "{e}"
    );

    let ok = rx.for_uuid(&ok_uuid)[0].json();
    assert_eq!(ok["result"], "OK", "{ok}");
    for key in ["errors", "message", "code", "adapterMessage", "adapterCode"] {
        assert!(ok.get(key).is_none(), "{key} in an approved callback: {ok}");
    }
}

// ---------------------------------------------------------------------------------------------
// Status API: an unknown transaction is HTTP 200 with success false and 8001

async fn status(app: &TestApp, key: &str, creds: (&str, &str), path: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .get(app.url(&format!("/api/v3/status/{key}/{path}")))
        .header("authorization", basic(creds.0, creds.1))
        .send()
        .await
        .expect("GET");
    let s = r.status();
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.starts_with("application/json"), "{ct}");
    (s, r.json().await.expect("json"))
}

fn assert_not_found_8001(what: &str, (s, v): (StatusCode, Value)) {
    assert_eq!(s, StatusCode::OK, "{what}: {v}");
    let keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.len(),
        3,
        "{what}: exactly success, errorMessage, errorCode: {v}"
    );
    assert_eq!(v["success"], false, "{what}: {v}");
    assert_eq!(v["errorCode"], json!(8001), "{what}: {v}");
    assert!(
        v["errorMessage"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: {v}"
    );
}

#[tokio::test]
async fn the_status_api_answers_an_unknown_transaction_with_200_and_8001() {
    let app = TestApp::demo().await;
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let id = mtid();
    let (s, v) = api(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        None,
        &json!({"merchantTransactionId": id, "amount": "1.00", "currency": "EUR",
                "transactionToken": token}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    // Known: found as before.
    for path in [
        format!("getByUuid/{uuid}"),
        format!("getByMerchantTransactionId/{id}"),
    ] {
        let (s, v) = status(&app, "demo-shop-cards", SHOP, &path).await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["success"], true, "{v}");
        assert_eq!(v["uuid"], uuid.as_str(), "{v}");
    }
    // Unknown ids, another connector's transaction, an id holding NUL: all the same answer.
    for path in [
        "getByUuid/00000000000000000000".to_string(),
        "getByMerchantTransactionId/no-such-order".to_string(),
        "getByUuid/a%00b".to_string(),
        "getByMerchantTransactionId/a%00b".to_string(),
    ] {
        assert_not_found_8001(&path, status(&app, "demo-shop-cards", SHOP, &path).await);
    }
    for path in [
        format!("getByUuid/{uuid}"),
        format!("getByMerchantTransactionId/{id}"),
    ] {
        assert_not_found_8001(
            &format!("outlet {path}"),
            status(&app, "demo-outlet-cards", OUTLET, &path).await,
        );
    }
    // Authentication still fails with 401 before anything is looked up.
    let (s, _) = status(
        &app,
        "demo-shop-cards",
        ("shop-api", "wrong"),
        "getByUuid/00000000000000000000",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// Monri GET /v2/payment-methods

const MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const MONRI_KEY: &str = "demo-shop-merchant-key";

async fn bearer(app: &TestApp, scopes: Value) -> String {
    let body = json!({"client_id": MONRI_TOKEN, "client_secret": MONRI_KEY,
                      "grant_type": "client_credentials", "scopes": scopes});
    let r = app
        .client
        .post(app.url("/v2/oauth"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("oauth");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["access_token"].as_str().expect("token").to_string()
}

async fn monri(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (StatusCode, Value) {
    let r = app
        .client
        .request(method, app.url(path))
        .header("authorization", format!("Bearer {token}"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("monri");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Registers `pan` into profile `ident` with a debit withRegister on connector `key`.
async fn register(
    app: &TestApp,
    key: &str,
    public_key: &str,
    creds: (&str, &str),
    ident: &str,
    pan: &str,
) {
    let token = tokenize(app, public_key, pan).await;
    let (s, v) = api(
        app,
        key,
        "debit",
        creds,
        None,
        &json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                "transactionToken": token, "withRegister": true,
                "customerProfileData": {"customerIdentification": ident}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
}

async fn uuid_of(app: &TestApp, token: &str, ident: &str) -> String {
    let (s, v) = monri(
        app,
        reqwest::Method::GET,
        &format!("/v2/merchants/customers/{ident}"),
        token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["uuid"].as_str().expect("uuid").to_string()
}

fn data(v: &Value) -> Vec<Value> {
    assert_eq!(v["status"], "approved", "{v}");
    v["data"].as_array().expect("data").clone()
}

#[tokio::test]
async fn monri_lists_the_merchants_payment_methods_newest_first_with_paging() {
    let app = TestApp::demo().await;
    // Four customers of Acme Shared Profiles, one registered by the outlet (which shares the
    // container), and one of Globex's, which the shop may not see.
    let shop = ("demo-shop-cards", "demo-shop-public", SHOP);
    let outlet = ("demo-outlet-cards", "demo-outlet-public", OUTLET);
    let plan = [
        (shop, "pm-ann", "4111111111111111"),
        (shop, "pm-bob", "5555555555554444"),
        (outlet, "pm-cid", "4242424242424242"),
        (shop, "pm-ann", "378282246310005"),
        (shop, "pm-dee", "4111111111111111"),
        (shop, "pm-gone", "5555555555554444"),
    ];
    for ((key, public, creds), ident, pan) in plan {
        register(&app, key, public, creds, ident, pan).await;
    }
    register(
        &app,
        "demo-globex-cards",
        "demo-globex-public",
        GLOBEX,
        "pm-globex",
        "4242424242424242",
    )
    .await;
    let token = bearer(&app, json!(["customers", "payment-methods"])).await;
    // A deleted (tombstoned) customer's cards are gone from the list.
    let gone = uuid_of(&app, &token, "pm-gone").await;
    let (s, v) = monri(
        &app,
        reqwest::Method::DELETE,
        &format!("/v2/customers/{gone}"),
        &token,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let get = reqwest::Method::GET;
    let (s, v) = monri(&app, get.clone(), "/v2/payment-methods", &token).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let all = data(&v);
    // Newest first: the registrations in reverse order, the deleted customer's card left out.
    let expected: [(&str, &str); 5] = [
        ("pm-dee", "411111******1111"),
        ("pm-ann", "378282*****0005"),
        ("pm-cid", "424242******4242"),
        ("pm-bob", "555555******4444"),
        ("pm-ann", "411111******1111"),
    ];
    assert_eq!(all.len(), expected.len(), "{v}");
    let mut uuids = std::collections::HashMap::new();
    for ident in ["pm-ann", "pm-bob", "pm-cid", "pm-dee"] {
        uuids.insert(ident, uuid_of(&app, &token, ident).await);
    }
    for (item, (ident, masked)) in all.iter().zip(expected) {
        assert_eq!(item["masked_pan"], masked, "{v}");
        assert_eq!(item["customer_uuid"], uuids[ident].as_str(), "{v}");
    }
    // The same item shape as the per-customer list: each item equals that list's item.
    for (ident, uuid) in &uuids {
        let (s, per) = monri(
            &app,
            get.clone(),
            &format!("/v2/customers/{uuid}/payment-methods"),
            &token,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{per}");
        let per = data(&per);
        let mine: Vec<&Value> = all
            .iter()
            .filter(|i| i["customer_uuid"] == uuid.as_str())
            .collect();
        assert_eq!(mine.len(), per.len(), "{ident}");
        for (a, b) in mine.iter().zip(&per) {
            assert_eq!(*a, b, "{ident}");
        }
    }
    let text = v.to_string();
    for pan in ["4111111111111111", "5555555555554444", "4242424242424242"] {
        assert!(!text.contains(pan), "no card number in the list");
    }
    // Paging: limit and offset walk the same order without gaps or repeats.
    let mut walked = vec![];
    for offset in [0, 2, 4] {
        let (s, p) = monri(
            &app,
            get.clone(),
            &format!("/v2/payment-methods?limit=2&offset={offset}"),
            &token,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{p}");
        let page = data(&p);
        assert!(page.len() <= 2);
        walked.extend(page);
    }
    assert_eq!(walked, all);
    let (_, p) = monri(&app, get.clone(), "/v2/payment-methods?offset=5", &token).await;
    assert!(data(&p).is_empty());
    // The per-customer list's validation of limit and offset.
    for bad in [
        "limit=0",
        "limit=101",
        "limit=x",
        "offset=-1",
        "limit=1&limit=2",
    ] {
        let (s, e) = monri(
            &app,
            get.clone(),
            &format!("/v2/payment-methods?{bad}"),
            &token,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}: {e}");
        assert_eq!(e["status"], "invalid-request", "{bad}: {e}");
    }
    // The scope payment-methods is needed; without credentials, 401.
    let customers_only = bearer(&app, json!(["customers"])).await;
    let (s, e) = monri(&app, get.clone(), "/v2/payment-methods", &customers_only).await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    let r = app
        .client
        .get(app.url("/v2/payment-methods"))
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// `coffer serve --bind …`: settings after the subcommand

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// A `coffer` process, killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The binary with no COFFER_* variable inherited from the test's environment.
fn coffer() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("COFFER_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("COFFER_ADMIN_PASSWORD", "admin-test-password")
        .env("COFFER_WORKERS", "1")
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Waits until `/healthz` on `port` answers 200 (panics with the process's stderr if it exits).
async fn healthy(p: &mut Proc, port: u16) {
    let client = client();
    let start = Instant::now();
    loop {
        if let Some(status) = p.0.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut e) = p.0.stderr.take() {
                use std::io::Read;
                let _ = e.read_to_string(&mut err);
            }
            panic!("coffer exited ({status}):\n{err}");
        }
        if let Ok(r) = client
            .get(format!("http://127.0.0.1:{port}/healthz"))
            .send()
            .await
            && r.status() == StatusCode::OK
        {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no /healthz on port {port}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn settings_work_after_the_serve_subcommand_as_well_as_before_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    // On PostgreSQL the database URL and both keys go after the subcommand too.
    let pg = fresh_pg();
    let mut pg_args: Vec<String> = vec![];
    if let Some((url, _)) = &pg {
        pg_args = vec![
            "--database-url".into(),
            url.clone(),
            "--session-key".into(),
            coffer::ids::random_hex(32),
            "--vault-key".into(),
            coffer::ids::random_hex(32),
        ];
    }
    let data_dir = dir.path().join("data");
    let data = data_dir.to_string_lossy().to_string();

    // `coffer migrate --data-dir …`: a setting after another subcommand.
    let out = coffer()
        .args(["migrate", "--data-dir", &data])
        .args(&pg_args)
        .output()
        .expect("run migrate");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // `coffer serve --bind … --data-dir …` (the README's form).
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut p = Proc(
        coffer()
            .args(["serve", "--bind", &bind, "--data-dir", &data])
            .args(&pg_args)
            .spawn()
            .expect("spawn"),
    );
    healthy(&mut p, port).await;
    if pg.is_none() {
        assert!(
            data_dir.join("coffer.db").exists(),
            "the data dir given after serve"
        );
    }
    drop(p);

    // `serve --demo --bind …`: mixed with the subcommand's own flag.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut p = Proc(
        coffer()
            .args(["serve", "--demo", "--bind", &bind, "--data-dir", &data])
            .args(&pg_args)
            .spawn()
            .expect("spawn"),
    );
    healthy(&mut p, port).await;
    drop(p);

    // Before the subcommand still works, and so do the environment variables.
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let mut p = Proc(
        coffer()
            .args(["--bind", &bind, "--data-dir", &data])
            .args(&pg_args)
            .arg("serve")
            .spawn()
            .expect("spawn"),
    );
    healthy(&mut p, port).await;
    drop(p);
    let port = free_port();
    let mut p = Proc(
        coffer()
            .env("COFFER_BIND", format!("127.0.0.1:{port}"))
            .env("COFFER_DATA_DIR", &data)
            .arg("serve")
            .args(&pg_args)
            .spawn()
            .expect("spawn"),
    );
    healthy(&mut p, port).await;
    drop(p);

    // A bad value after the subcommand is refused by the parser like one before it.
    let out = coffer()
        .args(["serve", "--card-token-minutes", "999", "--data-dir", &data])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("card-token-minutes"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    drop(pg);
}
