//! Access audit (issue 12, PCI DSS v4 10.2.1.1): each read of a profile through getProfile and
//! each charge of a stored instrument is recorded with who, which profile and which route;
//! the entries are queued and written in batches, and the audit page shows them.

use base64::Engine;
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_transactions::tokenize;
use crate::helpers::TestApp;

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("shop-api:shop-api-demo")
    )
}

async fn post(app: &TestApp, path: &str, body: Value) -> Value {
    let r = app
        .client
        .post(app.url(path))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic())
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::OK, "{path}");
    r.json().await.expect("json")
}

#[derive(diesel::QueryableByName, Debug)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    action: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    actor_name: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    summary: String,
}

fn access_rows(app: &TestApp, guid: &str) -> Vec<Row> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(format!(
        "SELECT action, actor_name, summary FROM audit_log \
         WHERE object_id = '{guid}' AND action LIKE 'profile.access%' ORDER BY id"
    ))
    .load(&mut *c)
    .expect("rows")
}

async fn flush(app: &TestApp) {
    let log = app.access.clone();
    let done = tokio::task::spawn_blocking(move || log.flush(std::time::Duration::from_secs(10)))
        .await
        .expect("flush");
    assert!(done, "the access audit queue was written");
}

#[tokio::test]
async fn get_profile_and_a_stored_card_charge_are_attributed_to_the_api_user_and_route() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let reg = post(
        &app,
        "/api/v3/transaction/demo-shop-cards/register",
        json!({"merchantTransactionId": "acc-reg-1", "transactionToken": card,
               "customerProfileData": {"customerIdentification": "access-1"}}),
    )
    .await;
    assert_eq!(reg["success"], true, "{reg}");
    let got = post(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/getProfile",
        json!({"customerIdentification": "access-1"}),
    )
    .await;
    let guid = got["profileGuid"].as_str().expect("guid").to_string();
    let token = got["paymentInstruments"][0]["paymentToken"]
        .as_str()
        .expect("pt token")
        .to_string();
    // Queued, not yet written: the read did not wait for the audit write.
    assert!(access_rows(&app, &guid).is_empty());
    assert!(app.access.pending() >= 1);
    let paid = post(
        &app,
        "/api/v3/transaction/demo-shop-cards/debit",
        json!({"merchantTransactionId": "acc-debit-1", "amount": "5.00", "currency": "EUR",
               "transactionToken": token}),
    )
    .await;
    assert_eq!(paid["success"], true, "{paid}");
    flush(&app).await;
    let rows = access_rows(&app, &guid);
    let who = "API user shop-api (connector demo-shop-cards)";
    let get = rows
        .iter()
        .find(|r| r.action == "profile.access.get")
        .unwrap_or_else(|| panic!("a getProfile entry in {rows:?}"));
    assert_eq!(get.actor_name, who);
    assert!(
        get.summary.contains("POST /api/v3/customerProfiles/"),
        "{get:?}"
    );
    let charge = rows
        .iter()
        .find(|r| r.action == "profile.access.charge")
        .unwrap_or_else(|| panic!("a charge entry in {rows:?}"));
    assert_eq!(charge.actor_name, who);
    assert!(
        charge
            .summary
            .contains("charged the stored card ending 1111"),
        "{charge:?}"
    );
    assert!(
        charge.summary.contains("/api/v3/transaction/"),
        "{charge:?}"
    );
    // The chain holds them: verify passes.
    let db = app.db();
    let mut c = db.get().expect("conn");
    let report = coffer::audit::chain::verify(&mut c).expect("verify");
    assert!(
        matches!(report, coffer::audit::chain::Verdict::Intact { .. }),
        "{report:?}"
    );
}

#[tokio::test]
async fn the_audit_page_filtered_to_a_profile_shows_its_reads_without_waiting_for_the_interval() {
    let app = TestApp::demo().await;
    let card = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    post(
        &app,
        "/api/v3/transaction/demo-shop-cards/register",
        json!({"merchantTransactionId": "acc-reg-2", "transactionToken": card,
               "customerProfileData": {"customerIdentification": "access-2"}}),
    )
    .await;
    let got = post(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/getProfile",
        json!({"customerIdentification": "access-2"}),
    )
    .await;
    let guid = got["profileGuid"].as_str().expect("guid").to_string();
    app.login_ok("admin", "admin-demo").await;
    let (status, body) = app.get_html(&format!("/audit?profile={guid}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("profile.access.get"), "{body}");
    assert!(body.contains("API user shop-api"), "{body}");
}
