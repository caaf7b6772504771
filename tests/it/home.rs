//! The console's home page (issue 13, point 3): the scope's totals from kept counts, the
//! transactions of today and of 30 days with their success rate and chart, failing callbacks and
//! cards expiring within 30 days, alerts that link to the page that fixes them, per role.

use chrono::Datelike;
use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fuzz::{basic, post_json};
use crate::helpers::TestApp;

/// The number in the element with this id.
fn number(page: &str, id: &str) -> i64 {
    let marker = format!("id=\"{id}\">");
    let i = page
        .find(&marker)
        .unwrap_or_else(|| panic!("#{id} in {page}"))
        + marker.len();
    let text: String = page[i..].chars().take_while(|c| *c != '<').collect();
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("#{id} is a number: {text:?}"))
}

async fn card(app: &TestApp, public_key: &str, pan: &str, month: u32, year: i32) -> String {
    let (s, v) = post_json(
        app,
        &format!("/api/v3/paymentjs/{public_key}/tokenize"),
        None,
        &json!({"cardHolder": "Ann Smith", "number": pan, "cvv": "123",
                "month": format!("{month:02}"), "year": year.to_string()}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["token"].as_str().expect("token").to_string()
}

async fn debit(app: &TestApp, connector: &str, creds: (&str, &str), body: Value) -> Value {
    let (s, v) = post_json(
        app,
        &format!("/api/v3/transaction/{connector}/debit"),
        Some(basic(creds.0, creds.1)),
        &body,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v
}

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");

async fn home(app: &TestApp) -> String {
    let (s, page) = app.get_html("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<h1>Home</h1>"), "{page}");
    page
}

#[tokio::test]
async fn home_counts_profiles_instruments_and_todays_transactions_of_the_scope() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let before = home(&app).await;
    let (p0, i0, t0, m0) = (
        number(&before, "profiles-total"),
        number(&before, "instruments-total"),
        number(&before, "tx-today"),
        number(&before, "tx-month"),
    );
    let today = chrono::Utc::now().date_naive();
    // Two cards into one new profile (one expiring this month), and one declined debit.
    let mut guid = String::new();
    for (pan, month, year) in [
        ("4111111111111111", 12, 2030),
        ("5555555555554444", today.month(), today.year()),
    ] {
        let token = card(&app, "demo-shop-public", pan, month, year).await;
        let v = debit(
            &app,
            "demo-shop-cards",
            SHOP,
            json!({"merchantTransactionId": format!("home-{pan}"), "amount": "5.00",
                   "currency": "EUR", "transactionToken": token, "withRegister": true,
                   "customerProfileData": {"customerIdentification": "home-1"}}),
        )
        .await;
        assert_eq!(v["success"], true, "{v}");
        guid = v["customerProfileData"]["profileGuid"]
            .as_str()
            .expect("guid")
            .to_string();
    }
    let declined = card(&app, "demo-shop-public", "4000000000000002", 12, 2030).await;
    let v = debit(
        &app,
        "demo-shop-cards",
        SHOP,
        json!({"merchantTransactionId": "home-declined", "amount": "5.00", "currency": "EUR",
               "transactionToken": declined}),
    )
    .await;
    assert_eq!(v["success"], false, "{v}");

    let after = home(&app).await;
    assert_eq!(number(&after, "profiles-total"), p0 + 1);
    assert_eq!(number(&after, "instruments-total"), i0 + 2);
    assert_eq!(number(&after, "tx-today"), t0 + 3);
    assert_eq!(number(&after, "tx-month"), m0 + 3);
    assert!(
        number(&after, "expiring") >= 1,
        "the card expiring this month"
    );
    assert!(after.contains("id=\"tx-chart\""), "the chart is drawn");
    assert!(
        after.contains(&format!("{today}: ")),
        "today's bar has its label"
    );
    // The per-container row of the shop's container agrees with the kept counts.
    let row = after
        .split("Acme Shared Profiles</a></td>")
        .nth(1)
        .expect("the shop's container row");
    assert!(row.contains("class=\"num\">"), "{row}");

    // The kept instrument count follows a deregistration (a database trigger keeps it).
    let (s, v) = post_json(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/deleteProfile",
        Some(basic(SHOP.0, SHOP.1)),
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let gone = home(&app).await;
    assert_eq!(number(&gone, "profiles-total"), p0);
    assert_eq!(number(&gone, "instruments-total"), i0);
    #[derive(diesel::QueryableByName)]
    struct Drift {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    let drift: Drift = diesel::sql_query(
        "SELECT COUNT(*) AS n FROM containers c WHERE c.instrument_count <> \
         (SELECT COUNT(*) FROM instruments i JOIN profiles p ON p.id = i.profile_id \
          WHERE p.container_id = c.id)",
    )
    .get_result(&mut *c)
    .expect("drift");
    assert_eq!(
        drift.n, 0,
        "every container's kept count equals its instruments"
    );
}

#[tokio::test]
async fn each_role_sees_its_own_scope_and_a_failing_callback_is_an_alert_to_its_transaction() {
    let app = TestApp::demo().await;
    // A Globex payment: outside Acme's scope.
    let token = card(&app, "demo-globex-public", "4111111111111111", 12, 2030).await;
    let v = debit(
        &app,
        "demo-globex-cards",
        ("globex-api", "globex-api-demo"),
        json!({"merchantTransactionId": "home-globex", "amount": "1.00", "currency": "EUR",
               "transactionToken": token, "callbackUrl": "http://127.0.0.1:9/callback"}),
    )
    .await;
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let n = diesel::sql_query(format!(
            "UPDATE callbacks SET status = 'failed', attempts = 5, \
             last_error = 'connection refused' WHERE transaction_uuid = '{uuid}'"
        ))
        .execute(&mut *c)
        .expect("update");
        assert_eq!(n, 1, "the payment queued one callback");
    }
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let (_, page) = admin.get_html("/").await;
    assert_eq!(number(&page, "failing-callbacks"), 1);
    assert!(
        page.contains(&format!("href=\"/transactions/{uuid}\"")),
        "the alert links to the transaction that retries it: {page}"
    );
    assert!(page.contains("connection refused"));
    assert!(page.contains("Globex Profiles"));
    assert!(number(&page, "tx-today") >= 1);

    // Acme's manager sees neither Globex's callback nor its payment nor its container.
    let manager = app.other_browser();
    manager.login_ok("manager", "manager-demo").await;
    let (_, page) = manager.get_html("/").await;
    assert_eq!(number(&page, "failing-callbacks"), 0);
    assert_eq!(number(&page, "tx-today"), 0);
    assert!(!page.contains(&uuid));
    assert!(!page.contains("Globex Profiles"));
    assert!(page.contains("Acme Shared Profiles"));

    // A merchant admin sees the totals of the containers its connectors use, not linked.
    let merchant = app.other_browser();
    merchant.login_ok("merchant", "merchant-demo").await;
    let (s, page) = merchant.get_html("/").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<td>Acme Shared Profiles</td>"), "{page}");
    assert!(
        !page.contains("href=\"/containers/"),
        "no link a merchant admin cannot open"
    );
    assert!(!page.contains("Globex"));
}

/// Issue 13, point 5: ids, keys and tokens carry a copy button (a `<button>` labelled Copy);
/// a secret shown once carries one too.
#[tokio::test]
async fn ids_keys_and_a_new_secret_have_copy_buttons() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let id = crate::fuzz::ids_of(&app, "connectors", "WHERE api_key = 'demo-shop-cards'")
        .pop()
        .expect("connector");
    let (_, page) = app.get_html(&format!("/connectors/{id}")).await;
    for (label, value) in [
        ("the API key", "demo-shop-cards"),
        ("the public integration key", "demo-shop-public"),
    ] {
        let button = format!(
            "<button type=\"button\" class=\"copy\" data-copy=\"{value}\" aria-label=\"Copy {label}\">Copy</button>"
        );
        assert!(page.contains(&button), "{button} in {page}");
    }
    let r = app
        .post_form(
            &format!("/connectors/{id}/rotate-secret"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    let marker = "New shared secret (shown only now, store it safely): ";
    let i = page.find(marker).expect("the new secret") + marker.len();
    let secret: String = page[i..]
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect();
    assert!(secret.len() >= 20, "{secret}");
    assert!(
        page.contains(&format!(
            "data-copy=\"{secret}\" aria-label=\"Copy the new secret\">Copy</button>"
        )),
        "a copy button for the new secret"
    );
}

#[derive(diesel::QueryableByName, Debug)]
struct DayCount {
    #[diesel(sql_type = diesel::sql_types::Text)]
    merchant_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    tenant_path: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    tx_day: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    status: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// (merchant, tenant path, day, status) → transactions.
type DayCounts = std::collections::BTreeMap<(String, String, String, String), i64>;

/// The transactions per day and status: counted now, and as the triggers kept them.
fn counted_and_kept(c: &mut coffer::db::DbConnection) -> (DayCounts, DayCounts) {
    let day = if crate::helpers::is_postgres() {
        "to_char(created_at, 'YYYY-MM-DD')"
    } else {
        "substr(CAST(created_at AS TEXT), 1, 10)"
    };
    let load = |c: &mut coffer::db::DbConnection, sql: String| {
        diesel::sql_query(sql)
            .load::<DayCount>(c)
            .expect("counts")
            .into_iter()
            .filter(|r| r.n != 0)
            .map(|r| ((r.merchant_id, r.tenant_path, r.tx_day, r.status), r.n))
            .collect()
    };
    let counted = load(
        c,
        format!(
            "SELECT merchant_id, tenant_path, {day} AS tx_day, status, COUNT(*) AS n \
             FROM transactions GROUP BY merchant_id, tenant_path, {day}, status"
        ),
    );
    let kept = load(
        c,
        "SELECT merchant_id, tenant_path, tx_day, status, CAST(SUM(n) AS BIGINT) AS n \
         FROM tx_daily_counts GROUP BY merchant_id, tenant_path, tx_day, status"
            .to_string(),
    );
    (counted, kept)
}

#[tokio::test]
async fn the_daily_transaction_counts_are_kept_through_inserts_status_changes_and_deletions() {
    // The home page reads these instead of every transaction of 30 days (migration 000029).
    let app = TestApp::demo().await;
    for (i, pan) in ["4111111111111111", "4000000000000002", "5555555555554444"]
        .iter()
        .enumerate()
    {
        let token = card(&app, "demo-shop-public", pan, 12, 2030).await;
        debit(
            &app,
            "demo-shop-cards",
            SHOP,
            json!({"merchantTransactionId": format!("daily-{i}"), "amount": "3.00",
                   "currency": "EUR", "transactionToken": token}),
        )
        .await;
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    let (counted, kept) = counted_and_kept(&mut c);
    assert!(
        counted.keys().any(|k| k.3 == "SUCCESS") && counted.keys().any(|k| k.3 == "ERROR"),
        "successes and a decline today: {counted:?}"
    );
    assert_eq!(kept, counted, "after the payments");

    // A status change moves one transaction between statuses; a move to another day too.
    diesel::sql_query(
        "UPDATE transactions SET status = 'ERROR' WHERE merchant_transaction_id = 'daily-0'",
    )
    .execute(&mut *c)
    .expect("status");
    let three_days_earlier = if crate::helpers::is_postgres() {
        "created_at - INTERVAL '3 days'"
    } else {
        "datetime(created_at, '-3 days')"
    };
    diesel::sql_query(format!(
        "UPDATE transactions SET created_at = {three_days_earlier} \
         WHERE merchant_transaction_id = 'daily-2'"
    ))
    .execute(&mut *c)
    .expect("day");
    let (counted, kept) = counted_and_kept(&mut c);
    assert_eq!(kept, counted, "after a status change and a change of day");

    // Deleting a transaction takes it out of its day's count.
    diesel::sql_query("DELETE FROM transactions WHERE merchant_transaction_id = 'daily-1'")
        .execute(&mut *c)
        .expect("delete");
    let (counted, kept) = counted_and_kept(&mut c);
    assert_eq!(kept, counted, "after a deletion");
}
