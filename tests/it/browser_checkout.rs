//! The hosted payment page and the 3-D Secure page in headless Chromium: no JavaScript needed,
//! and the 303 to a merchant URL on another origin passes the page's CSP (`form-action`).

use serde_json::{Value, json};

use crate::browser::Browser;
use crate::fuzz::{basic, card_token};

async fn redirect_path(b: &Browser, body: Value) -> String {
    let app = &b.app;
    let r = app
        .client
        .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(body.to_string())
        .send()
        .await
        .expect("debit");
    let v: Value = r.json().await.expect("json");
    let url = v["redirectUrl"].as_str().expect("redirectUrl");
    url.strip_prefix(&app.addr).expect("on Coffer").to_string()
}

fn status_of(b: &Browser, mtid: &str) -> (String, Option<i32>) {
    use coffer::db::schema::transactions as t;
    use diesel::prelude::*;
    let db = b.app.db();
    let mut c = db.get().expect("conn");
    t::table
        .filter(t::merchant_transaction_id.eq(mtid))
        .select((t::status, t::error_code))
        .first(&mut *c)
        .expect("transaction")
}

async fn current(b: &Browser) -> (String, String) {
    let u = b.client.current_url().await.expect("url");
    (
        u.host_str().unwrap_or_default().to_string(),
        format!("{}?{}", u.path(), u.query().unwrap_or_default()),
    )
}

#[tokio::test]
async fn a_customer_pays_on_the_hosted_page_through_a_3ds_challenge_in_chromium() {
    let Some(b) = Browser::demo("checkout").await else {
        return;
    };
    // The merchant's URLs on another origin than Coffer's (localhost, not 127.0.0.1).
    let port = b.app.addr.rsplit(':').next().expect("port").to_string();
    let shop = format!("http://localhost:{port}");
    let path = redirect_path(
        &b,
        json!({"merchantTransactionId": "browser-1", "amount": "7.00", "currency": "EUR",
               "successUrl": format!("{shop}/healthz?paid=1"),
               "errorUrl": format!("{shop}/healthz?failed=1"),
               "cancelUrl": format!("{shop}/healthz?cancelled=1")}),
    )
    .await;
    b.goto(&path).await;
    assert_eq!(b.h1().await, "Pay Acme Shop");
    b.assert_accessible("payment page").await;
    b.fill("card_holder", "Ann Smith").await;
    b.fill("card_number", "4000 0000 0000 3220").await;
    b.fill("exp_month", "12").await;
    b.fill("exp_year", "2031").await;
    b.fill("cvv", "123").await;
    b.click("pay").await;
    assert!(b.path().await.starts_with("/3ds/"), "{}", b.path().await);
    assert_eq!(b.h1().await, "3-D Secure verification");
    assert_eq!(b.text("#card").await, "400000******3220");
    b.assert_accessible("3-D Secure page").await;
    b.click("approve").await;
    assert_eq!(
        current(&b).await,
        ("localhost".to_string(), "/healthz?paid=1".to_string())
    );
    assert_eq!(status_of(&b, "browser-1"), ("SUCCESS".into(), None));

    // Cancel from the page: to the cancel URL, 2002.
    let path = redirect_path(
        &b,
        json!({"merchantTransactionId": "browser-2", "amount": "7.00", "currency": "EUR",
               "cancelUrl": format!("{shop}/healthz?cancelled=1")}),
    )
    .await;
    b.goto(&path).await;
    b.click("cancel").await;
    assert_eq!(
        current(&b).await,
        ("localhost".to_string(), "/healthz?cancelled=1".to_string())
    );
    assert_eq!(status_of(&b, "browser-2"), ("ERROR".into(), Some(2002)));

    // A stored-card-free API challenge, denied: Coffer's own result page (no errorUrl).
    let card = card_token(&b.app, "demo-shop-public", "4000000000003220").await;
    let path = redirect_path(
        &b,
        json!({"merchantTransactionId": "browser-3", "amount": "7.00", "currency": "EUR",
               "transactionToken": card}),
    )
    .await;
    b.goto(&path).await;
    b.click("deny").await;
    assert_eq!(b.h1().await, "Payment declined");
    assert_eq!(status_of(&b, "browser-3"), ("ERROR".into(), Some(2021)));
    b.finish().await;
}
