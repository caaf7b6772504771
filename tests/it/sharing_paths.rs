//! Every way to a stored instrument asks the one sharing decision (`vault::sharing::may_reach`):
//! a `pt::` token, and a `referenceUuid` of the connector's own earlier transaction on that
//! instrument, for debit, preauthorize, register and deregister. Once Acme Group disables
//! containers for its sub-tenants, Acme Outlet reaches none of Acme Shared Profiles' cards,
//! whichever way it names them, and a refusal writes nothing.

use base64::Engine;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const OUTLET: (&str, &str) = ("outlet-api", "outlet-api-demo");

async fn tx(
    app: &TestApp,
    api_key: &str,
    kind: &str,
    creds: (&str, &str),
    body: &Value,
) -> (StatusCode, Value) {
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.0, creds.1));
    let r = app
        .client
        .post(app.url(&format!("/api/v3/transaction/{api_key}/{kind}")))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", format!("Basic {auth}"))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn mtid() -> String {
    format!("order-{}", coffer::ids::random_hex(6))
}

fn count(app: &TestApp, table: &str) -> i64 {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(format!("SELECT COUNT(*) AS n FROM {table}"))
        .get_result::<N>(&mut *c)
        .expect("count")
        .n
}

async fn set_disabled(app: &TestApp, group: &str, disabled: bool) {
    let mut form = vec![("name", "Acme Group"), ("confirmed", "yes")];
    if disabled {
        form.push(("disable_containers_for_subtenants", "1"));
    }
    let r = app.post_form(&format!("/tenants/{group}"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_reference_uuid_reaches_a_stored_instrument_only_where_its_token_would() {
    let app = TestApp::demo().await;
    // Acme Shop registers a card into Acme Shared Profiles; Acme Outlet charges its token.
    let card =
        crate::api_transactions::tokenize(&app, "demo-shop-public", "4242424242424242").await;
    let register = json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR",
        "transactionToken": card, "withRegister": true,
        "customerProfileData": {"customerIdentification": "ref-sharing-1"}});
    let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &register).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let token = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("token")
        .to_string();
    let by_token = json!({"merchantTransactionId": mtid(), "amount": "2.00", "currency": "EUR", "transactionToken": token});
    let (s, v) = tx(&app, "demo-outlet-cards", "debit", OUTLET, &by_token).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let outlet_tx = v["uuid"].as_str().expect("uuid").to_string();

    app.login_ok("manager", "manager-demo").await;
    let (_, body) = app.get_html("/tenants").await;
    let group = find_link_id(&body, "tenants", "Acme Group").expect("Acme Group");
    set_disabled(&app, &group, true).await;

    let before = (count(&app, "transactions"), count(&app, "instruments"));
    // The token is refused, as before.
    let again = json!({"merchantTransactionId": mtid(), "amount": "2.00", "currency": "EUR", "transactionToken": token});
    let (s, v) = tx(&app, "demo-outlet-cards", "debit", OUTLET, &again).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    // So is the outlet's own earlier transaction on that instrument, for every type.
    for kind in ["debit", "preauthorize", "register"] {
        let mut body = json!({"merchantTransactionId": mtid(), "referenceUuid": outlet_tx});
        if kind != "register" {
            body["amount"] = json!("3.00");
            body["currency"] = json!("EUR");
        }
        let (s, v) = tx(&app, "demo-outlet-cards", kind, OUTLET, &body).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{kind} by referenceUuid: {v}"
        );
        assert_eq!(v["errorCode"], 1002, "{kind}: {v}");
        assert_eq!(v["success"], false, "{kind}: {v}");
    }
    let dereg = json!({"merchantTransactionId": mtid(), "referenceUuid": outlet_tx});
    let (s, v) = tx(&app, "demo-outlet-cards", "deregister", OUTLET, &dereg).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "deregister by referenceUuid: {v}"
    );
    assert_eq!(
        (count(&app, "transactions"), count(&app, "instruments")),
        before,
        "a refusal writes nothing and deletes nothing"
    );
    // Acme Shop, whose tenant is not affected, still charges the card.
    let shop_again = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR", "transactionToken": token});
    let (s, v) = tx(&app, "demo-shop-cards", "debit", SHOP, &shop_again).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");

    // Re-enabled: the same reference works again, so the refusal was the sharing rule's.
    set_disabled(&app, &group, false).await;
    let body = json!({"merchantTransactionId": mtid(), "amount": "3.00", "currency": "EUR", "referenceUuid": outlet_tx});
    let (s, v) = tx(&app, "demo-outlet-cards", "debit", OUTLET, &body).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
}
