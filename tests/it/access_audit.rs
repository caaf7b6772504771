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

/// Registers a Visa card into a new profile `ident` on the demo shop; its profileGuid.
async fn registered(app: &TestApp, ident: &str) -> String {
    let card = tokenize(app, "demo-shop-public", "4111111111111111").await;
    let reg = post(
        app,
        "/api/v3/transaction/demo-shop-cards/register",
        json!({"merchantTransactionId": format!("reg-{ident}"), "transactionToken": card,
               "customerProfileData": {"customerIdentification": ident}}),
    )
    .await;
    reg["customerProfileData"]["profileGuid"]
        .as_str()
        .unwrap_or_else(|| panic!("guid in {reg}"))
        .to_string()
}

#[tokio::test]
async fn monri_reads_are_attributed_to_the_monri_client_and_route() {
    let app = TestApp::demo().await;
    let guid = registered(&app, "access-3").await;
    let r = app
        .client
        .post(app.url("/v2/oauth"))
        .json(
            &json!({"client_id": "acmeshopdemoauthenticitytoken00000000000",
                      "client_secret": "demo-shop-merchant-key",
                      "grant_type": "client_credentials",
                      "scopes": ["customers", "payment-methods"]}),
        )
        .send()
        .await
        .expect("oauth");
    assert_eq!(r.status(), StatusCode::OK);
    let token = r.json::<Value>().await.expect("json")["access_token"]
        .as_str()
        .expect("token")
        .to_string();
    let get = |path: String| {
        let req = app
            .client
            .get(app.url(&path))
            .header("authorization", format!("Bearer {token}"));
        async move {
            let r = req.send().await.expect("monri");
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            r.json::<Value>().await.expect("json")
        }
    };
    let by_id = get("/v2/merchants/customers/access-3".into()).await;
    let uuid = by_id["uuid"].as_str().expect("uuid").to_string();
    get(format!("/v2/customers/{uuid}")).await;
    get(format!("/v2/customers/{uuid}/payment-methods")).await;
    get("/v2/payment-methods".into()).await;
    get("/v2/customers".into()).await;
    flush(&app).await;
    let rows: Vec<Row> = access_rows(&app, &guid)
        .into_iter()
        .filter(|r| r.action == "profile.access.monri")
        .collect();
    for r in &rows {
        assert_eq!(r.actor_name, "Monri API client (connector demo-shop-cards)");
    }
    for route in [
        "GET /v2/merchants/customers/{merchant_customer_id}",
        "GET /v2/customers/{uuid})",
        "GET /v2/customers/{uuid}/payment-methods",
        "GET /v2/payment-methods",
        "GET /v2/customers)",
    ] {
        assert!(
            rows.iter().any(|r| r.summary.contains(route)),
            "{route} in {rows:?}"
        );
    }
    assert_eq!(rows.len(), 5, "{rows:?}");
}

#[tokio::test]
async fn a_console_view_of_a_profile_is_recorded_and_its_page_shows_the_access_history() {
    let app = TestApp::demo().await;
    let guid = registered(&app, "access-4").await;
    post(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/getProfile",
        json!({"profileGuid": guid}),
    )
    .await;
    #[derive(diesel::QueryableByName)]
    struct Id {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let id = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::sql_query(format!(
            "SELECT id FROM profiles WHERE profile_guid = '{guid}'"
        ))
        .get_result::<Id>(&mut *c)
        .expect("profile id")
        .id
    };
    app.login_ok("admin", "admin-demo").await;
    let (status, page) = app.get_html(&format!("/profiles/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    let history = page
        .split("id=\"access-history\"")
        .nth(1)
        .and_then(|t| t.split("</table>").next())
        .unwrap_or_else(|| panic!("an access history table in {page}"));
    // This very view is in it, above the API read.
    let at = |what: &str| history.find(what).unwrap_or_else(|| panic!("{what}"));
    assert!(
        at("opened the profile") < at("Customer Profiles API"),
        "newest first: {history}"
    );
    assert!(history.contains("Console page") && history.contains(">admin<"));
    assert!(history.contains("API user shop-api (connector demo-shop-cards)"));
    assert!(
        page.contains(&format!("/audit?profile={guid}")),
        "a link to the whole history"
    );
    let rows = access_rows(&app, &guid);
    let view = rows
        .iter()
        .find(|r| r.action == "profile.access.view")
        .unwrap_or_else(|| panic!("a view entry in {rows:?}"));
    assert_eq!(view.actor_name, "admin");
    assert!(view.summary.contains("GET /profiles/{"), "{view:?}");
}

/// What `kill -9` can lose is bounded: every read answered more than the flush interval (plus
/// the time of one batch write) before the kill is in the audit log; a graceful stop (SIGTERM)
/// loses nothing.
#[tokio::test]
async fn kill_9_loses_only_the_reads_of_the_last_flush_interval_and_sigterm_loses_none() {
    use crate::server::{Backend, Reply, client, mtid, profiles_api, transaction};
    use std::time::{Duration, Instant};

    let backend = Backend::new();
    let env = [("COFFER_ACCESS_AUDIT_FLUSH_MS", "200")];
    let mut server = backend.start_with("access", &env).await;
    let http = client();
    let card = crate::server::tokenize(&http, &server.addr, "4111111111111111")
        .await
        .unwrap_or_else(|_| panic!("tokenized"));
    let reg = transaction(
        &http,
        &server.addr,
        "register",
        &json!({"merchantTransactionId": mtid(), "transactionToken": card,
                "customerProfileData": {"customerIdentification": "access-kill"}}),
    )
    .await;
    let guid = match reg {
        Reply::Answer(s, v) if s == StatusCode::OK => v["customerProfileData"]["profileGuid"]
            .as_str()
            .expect("guid")
            .to_string(),
        other => panic!("register: {other:?}"),
    };
    let count = |settings: &coffer::config::Settings| -> usize {
        let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
        let mut c = db.get().expect("conn");
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        diesel::sql_query(format!(
            "SELECT COUNT(*) AS n FROM audit_log \
             WHERE object_id = '{guid}' AND action = 'profile.access.get'"
        ))
        .get_result::<N>(&mut *c)
        .expect("count")
        .n as usize
    };
    let read = |addr: String| {
        let (http, body) = (http.clone(), json!({"profileGuid": guid}));
        async move {
            match profiles_api(&http, &addr, "getProfile", &body).await {
                Reply::Answer(s, _) if s == StatusCode::OK => {}
                other => panic!("getProfile: {other:?}"),
            }
        }
    };
    // Reads for 1.5 s, then kill -9 right after the last answer.
    let mut answered: Vec<Instant> = vec![];
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(1500) {
        read(server.addr.clone()).await;
        answered.push(Instant::now());
    }
    server.kill();
    let killed = Instant::now();
    let bound = Duration::from_millis(200 + 800);
    let old_enough = answered.iter().filter(|t| killed - **t > bound).count();
    let written = count(&backend.settings("access"));
    assert!(answered.len() >= 20, "reads made: {}", answered.len());
    assert!(
        written >= old_enough && written <= answered.len(),
        "{written} entries written; {old_enough} reads answered more than {bound:?} before the kill, {} in all",
        answered.len()
    );
    // A graceful stop writes every queued entry before the exit.
    let mut server = backend.start_with("access", &env).await;
    for _ in 0..25 {
        read(server.addr.clone()).await;
    }
    server.terminate();
    assert_eq!(count(&backend.settings("access")), written + 25);
}

#[derive(diesel::QueryableByName, Debug)]
struct Chained {
    #[diesel(sql_type = diesel::sql_types::Text)]
    object_id: String,
}

/// A full queue makes readers wait for the writer (back-pressure) instead of writing their
/// own entries ahead of the queued ones: every entry goes into a batch, and the chain holds
/// them in the order of the reads.
#[tokio::test]
async fn a_full_queue_makes_readers_wait_and_keeps_the_chain_in_the_order_of_the_reads() {
    let app = TestApp::spawn_with(false, |s| s.callback_poll_ms = 60_000).await;
    let db = coffer::db::DbPool::connect(&app.settings.database_url(), 8).expect("pool");
    let log = coffer::audit::access::AccessLog::start_with_limit(
        db.clone(),
        std::time::Duration::from_secs(60),
        3,
    );
    let reader = coffer::audit::access::Reader::payer(
        &log,
        "POST /test".into(),
        coffer::audit::Origin::default(),
    );
    let guids: Vec<String> = (0..8).map(|i| format!("full-queue-{i}")).collect();
    let (l, g, d) = (log.clone(), guids.clone(), db.clone());
    tokio::task::spawn_blocking(move || {
        let mut c = d.get().expect("conn");
        for guid in &g {
            reader
                .read(&mut c, coffer::audit::access::Kind::Get, guid, "")
                .expect("read");
            assert!(l.pending() <= 3, "the queue holds at most its limit");
        }
        assert!(l.flush(std::time::Duration::from_secs(10)), "written");
    })
    .await
    .expect("reads");
    let mut c = db.get().expect("conn");
    let chained: Vec<String> = diesel::sql_query(
        "SELECT object_id FROM audit_log WHERE object_id LIKE 'full-queue-%' ORDER BY seq",
    )
    .load::<Chained>(&mut *c)
    .expect("rows")
    .into_iter()
    .map(|r| r.object_id)
    .collect();
    assert_eq!(chained, guids, "chained in the order of the reads");
    log.shutdown();
}
