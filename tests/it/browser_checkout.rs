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

/// The checked radio button of the payment page: (its value, its label).
async fn checked_instrument(b: &Browser) -> (String, String) {
    use fantoccini::Locator;
    let e = b
        .client
        .find(Locator::Css("input[name=instrument]:checked"))
        .await
        .expect("a checked instrument");
    let value = e.attr("value").await.expect("attr").unwrap_or_default();
    let id = e.attr("id").await.expect("attr").unwrap_or_default();
    let label = b.text(&format!("label[for='{id}']")).await;
    (value, label)
}

fn instruments_of(b: &Browser, ident: &str) -> i64 {
    use coffer::db::schema::{instruments as i, profiles as p};
    use diesel::prelude::*;
    let db = b.app.db();
    let mut c = db.get().expect("conn");
    i::table
        .inner_join(p::table)
        .filter(p::customer_identification.eq(ident))
        .count()
        .get_result(&mut *c)
        .expect("count")
}

/// A returning customer in Chromium: the stored cards are listed with the preferred one first
/// and selected, paying with it ends on the success URL; a new card with withRegister is stored
/// in the profile; a page left open past its time says so and leads to the error URL; a stored
/// 3-D Secure card is challenged (approved once, denied once) when charged by its pt:: token.
#[tokio::test]
async fn a_returning_customer_pays_with_stored_and_new_cards_in_chromium() {
    let Some(b) = Browser::demo("checkout_stored").await else {
        return;
    };
    let port = b.app.addr.rsplit(':').next().expect("port").to_string();
    let shop = format!("http://localhost:{port}");
    let urls = json!({"successUrl": format!("{shop}/healthz?paid=1"),
                      "errorUrl": format!("{shop}/healthz?failed=1"),
                      "cancelUrl": format!("{shop}/healthz?cancelled=1")});
    let with_urls = |mut v: Value| {
        for (k, x) in urls.as_object().expect("urls") {
            v[k] = x.clone();
        }
        v
    };
    let ident = "browser-returning";
    let mc = crate::checkout::register(&b.app, ident, "5555555555554444", false).await;
    let visa = crate::checkout::register(&b.app, ident, "4111111111111111", true).await;

    // 1. Pick the stored (preferred) card.
    let path = redirect_path(
        &b,
        with_urls(
            json!({"merchantTransactionId": "stored-1", "amount": "15.00",
            "currency": "EUR", "customerProfileData": {"customerIdentification": ident}}),
        ),
    )
    .await;
    b.goto(&path).await;
    let labels = b.texts("fieldset:first-of-type label").await;
    assert!(
        labels[0].contains("411111******1111") && labels[0].contains("(preferred)"),
        "{labels:?}"
    );
    assert!(labels[1].contains("555555******4444"), "{labels:?}");
    assert_eq!(labels.last().map(String::as_str), Some("New card"));
    assert_eq!(checked_instrument(&b).await.0, visa);
    b.screenshot("stored-cards").await;
    b.click("pay").await;
    assert_eq!(
        current(&b).await,
        ("localhost".to_string(), "/healthz?paid=1".to_string())
    );
    assert_eq!(status_of(&b, "stored-1"), ("SUCCESS".into(), None));

    // 2. The Mastercard chosen by hand, then a new card with withRegister, stored.
    let path = redirect_path(
        &b,
        with_urls(
            json!({"merchantTransactionId": "stored-2", "amount": "3.00",
            "currency": "EUR", "customerProfileData": {"customerIdentification": ident}}),
        ),
    )
    .await;
    b.goto(&path).await;
    b.click_in_place("instrument-2").await;
    assert_eq!(checked_instrument(&b).await.0, mc);
    b.click("pay").await;
    assert_eq!(status_of(&b, "stored-2"), ("SUCCESS".into(), None));

    let path = redirect_path(
        &b,
        with_urls(json!({"merchantTransactionId": "new-1", "amount": "4.00",
            "currency": "EUR", "withRegister": true,
            "customerProfileData": {"customerIdentification": ident}})),
    )
    .await;
    b.goto(&path).await;
    b.click_in_place("instrument-new").await;
    b.fill("card_holder", "Ann Smith").await;
    b.fill("card_number", "3782 822463 10005").await;
    b.fill("exp_month", "09").await;
    b.fill("exp_year", "2032").await;
    b.fill("cvv", "1234").await;
    b.screenshot("new-card").await;
    b.click("pay").await;
    assert_eq!(
        current(&b).await,
        ("localhost".to_string(), "/healthz?paid=1".to_string())
    );
    assert_eq!(status_of(&b, "new-1"), ("SUCCESS".into(), None));
    assert_eq!(
        instruments_of(&b, ident),
        3,
        "the new card is stored in the profile"
    );

    // 3. Expiry: the page is left open past its time; paying then says so, nothing is charged,
    //    and the link leads to the error URL.
    let path = redirect_path(
        &b,
        with_urls(json!({"merchantTransactionId": "late-1", "amount": "5.00",
            "currency": "EUR", "customerProfileData": {"customerIdentification": ident}})),
    )
    .await;
    b.goto(&path).await;
    {
        use diesel::RunQueryDsl;
        let db = b.app.db();
        let mut c = db.get().expect("conn");
        diesel::sql_query(
            "UPDATE payment_sessions SET expires_at = '2000-01-01 00:00:00' \
             WHERE transaction_uuid = (SELECT uuid FROM transactions WHERE merchant_transaction_id = 'late-1')",
        )
        .execute(&mut *c)
        .expect("expire");
    }
    b.click("pay").await;
    assert_eq!(b.h1().await, "Payment page expired");
    b.screenshot("expired").await;
    assert_eq!(status_of(&b, "late-1"), ("ERROR".into(), Some(2005)));
    b.click("return").await;
    assert_eq!(
        current(&b).await,
        ("localhost".to_string(), "/healthz?failed=1".to_string())
    );

    // 4. The 3-D Secure card: registered after an approved challenge, then charged by its
    //    pt:: token: challenged again, approved once, denied once.
    let card = card_token(&b.app, "demo-shop-public", "4000000000003220").await;
    let r = b
        .app
        .client
        .post(b.app.url("/api/v3/transaction/demo-shop-cards/register"))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(
            with_urls(
                json!({"merchantTransactionId": "reg-3ds", "transactionToken": card,
                "customerProfileData": {"customerIdentification": ident}}),
            )
            .to_string(),
        )
        .send()
        .await
        .expect("register");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["returnType"], "REDIRECT", "{v}");
    let path = v["redirectUrl"]
        .as_str()
        .expect("url")
        .strip_prefix(&b.app.addr)
        .expect("ours")
        .to_string();
    b.goto(&path).await;
    assert_eq!(b.h1().await, "3-D Secure verification");
    b.click("approve").await;
    assert_eq!(status_of(&b, "reg-3ds"), ("SUCCESS".into(), None));
    let token = {
        use coffer::db::schema::transactions as t;
        use diesel::prelude::*;
        let db = b.app.db();
        let mut c = db.get().expect("conn");
        t::table
            .filter(t::merchant_transaction_id.eq("reg-3ds"))
            .select(t::payment_token)
            .first::<Option<String>>(&mut *c)
            .expect("token")
            .expect("registered")
    };
    for (mtid, action, want) in [
        (
            "pt-3ds-ok",
            "approve",
            ("SUCCESS".to_string(), None, "/healthz?paid=1"),
        ),
        (
            "pt-3ds-no",
            "deny",
            ("ERROR".to_string(), Some(2021), "/healthz?failed=1"),
        ),
    ] {
        let path = redirect_path(
            &b,
            with_urls(json!({"merchantTransactionId": mtid, "amount": "9.00",
                "currency": "EUR", "transactionToken": token})),
        )
        .await;
        assert!(path.starts_with("/3ds/"), "{path}");
        b.goto(&path).await;
        assert_eq!(b.text("#card").await, "400000******3220");
        b.screenshot(&format!("stored-3ds-{action}")).await;
        b.click(action).await;
        assert_eq!(
            current(&b).await,
            ("localhost".to_string(), want.2.to_string())
        );
        assert_eq!(status_of(&b, mtid), (want.0, want.1));
    }
    b.finish().await;
}
