//! The console's Transactions pages: list (filters, keyset pages), detail with the reference
//! chain, the profile page's section, and who sees what. Transactions are made through the
//! real Transaction API.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::fuzz::{basic, card_token, ids_of, register};
use crate::helpers::*;

const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const OUTLET: (&str, &str) = ("outlet-api", "outlet-api-demo");
const GLOBEX: (&str, &str) = ("globex-api", "globex-api-demo");
const PAN: &str = "4111111111111111";

/// Sends a Transaction API request and returns the answer's uuid (asserting HTTP 200).
async fn tx(app: &TestApp, api_key: &str, kind: &str, creds: (&str, &str), body: Value) -> Value {
    let r = app
        .client
        .post(app.url(&format!("/api/v3/transaction/{api_key}/{kind}")))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic(creds.0, creds.1))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::OK, "{kind}");
    r.json().await.expect("json")
}

fn uuid_of(v: &Value) -> String {
    v["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("uuid in {v}"))
        .to_string()
}

fn mtid() -> String {
    format!("order-{}", coffer::ids::random_hex(6))
}

async fn pay(
    app: &TestApp,
    key: &str,
    public: &str,
    creds: (&str, &str),
    kind: &str,
    pan: &str,
    amount: &str,
) -> Value {
    let card = card_token(app, public, pan).await;
    tx(
        app,
        key,
        kind,
        creds,
        json!({"merchantTransactionId": mtid(), "amount": amount, "currency": "EUR", "transactionToken": card}),
    )
    .await
}

async fn follow(app: &TestApp, kind: &str, reference: &str, amount: Option<&str>) -> String {
    let mut b = json!({"merchantTransactionId": mtid(), "referenceUuid": reference});
    if let Some(a) = amount {
        b["amount"] = json!(a);
        b["currency"] = json!("EUR");
    }
    let v = tx(app, "demo-shop-cards", kind, SHOP, b).await;
    assert_eq!(v["success"], true, "{kind}: {v}");
    uuid_of(&v)
}

/// The transaction uuids linked from a page, in page order.
fn linked_uuids(body: &str) -> Vec<String> {
    body.split("href=\"/transactions/")
        .skip(1)
        .filter_map(|s| s.get(..20))
        .map(str::to_string)
        .collect()
}

/// The target of the page's "Next page" link, unescaped.
fn next_link(body: &str) -> Option<String> {
    let end = body.find("\" rel=\"next\">Next page")?;
    let start = body[..end].rfind("href=\"")? + 6;
    Some(body[start..end].replace("&amp;", "&").replace("&#38;", "&"))
}

/// Every transaction of the list for `query`, walking the Next page links.
async fn walk(b: &TestBrowser<'_>, query: &str) -> (Vec<String>, usize) {
    let mut all = vec![];
    let mut pages = 0;
    let mut path = format!("/transactions?{query}");
    loop {
        let (s, body) = b.get_html(&path).await;
        assert_eq!(s, StatusCode::OK, "{path}: {body}");
        pages += 1;
        all.extend(linked_uuids(&body));
        match next_link(&body) {
            Some(n) => path = n,
            None => return (all, pages),
        }
        assert!(pages < 100, "endless pages: {path}");
    }
}

struct Made {
    registered: String,
    auth: String,
    capture1: String,
    capture2: String,
    refund: String,
    auth2: String,
    void: String,
    declined: String,
    outlet: String,
    globex: String,
    profile: String,
}

/// The scenario's transactions, oldest first: a registration debit, a preauthorization with
/// the stored token, two partial captures, a refund of the first capture, a voided
/// preauthorization, a decline, one on Acme Outlet and one on Globex.
async fn make(app: &TestApp) -> Made {
    let ident = format!("tx-console-{}", coffer::ids::random_hex(4));
    let reg = register(app, &ident, json!({"firstName": "Ann"})).await;
    let v = tx(
        app,
        "demo-shop-cards",
        "preauthorize",
        SHOP,
        json!({"merchantTransactionId": mtid(), "amount": "10.00", "currency": "EUR", "transactionToken": reg.payment_token}),
    )
    .await;
    assert_eq!(v["success"], true, "{v}");
    let auth = uuid_of(&v);
    let capture1 = follow(app, "capture", &auth, Some("4.00")).await;
    let capture2 = follow(app, "capture", &auth, Some("3.00")).await;
    let refund = follow(app, "refund", &capture1, Some("1.50")).await;
    let v = pay(
        app,
        "demo-shop-cards",
        "demo-shop-public",
        SHOP,
        "preauthorize",
        PAN,
        "5.00",
    )
    .await;
    let auth2 = uuid_of(&v);
    let void = follow(app, "void", &auth2, None).await;
    let v = pay(
        app,
        "demo-shop-cards",
        "demo-shop-public",
        SHOP,
        "debit",
        "4000000000000002",
        "1.00",
    )
    .await;
    assert_eq!(v["success"], false, "{v}");
    let declined = uuid_of(&v);
    let outlet = uuid_of(
        &pay(
            app,
            "demo-outlet-cards",
            "demo-outlet-public",
            OUTLET,
            "debit",
            PAN,
            "2.00",
        )
        .await,
    );
    let globex = uuid_of(
        &pay(
            app,
            "demo-globex-cards",
            "demo-globex-public",
            GLOBEX,
            "debit",
            PAN,
            "3.00",
        )
        .await,
    );
    let profile = ids_of(
        app,
        "profiles",
        &format!("WHERE customer_identification = '{ident}'"),
    )
    .pop()
    .expect("profile");
    Made {
        registered: reg.tx_uuid,
        auth,
        capture1,
        capture2,
        refund,
        auth2,
        void,
        declined,
        outlet,
        globex,
        profile,
    }
}

fn one(app: &TestApp, table: &str, filter: &str) -> String {
    let mut v = ids_of(app, table, filter);
    assert_eq!(v.len(), 1, "{table} {filter}");
    v.pop().expect("one")
}

fn set(v: &[&String]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn listed(body: &str) -> BTreeSet<String> {
    linked_uuids(body).into_iter().collect()
}

#[tokio::test]
async fn the_list_is_newest_first_and_every_filter_narrows_it() {
    let app = TestApp::demo().await;
    let m = make(&app).await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let (s, body) = admin.get_html("/transactions").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("aria-current=\"page\">Transactions</a>"),
        "nav item marked"
    );
    let newest_first: Vec<String> = [
        &m.globex,
        &m.outlet,
        &m.declined,
        &m.void,
        &m.auth2,
        &m.refund,
        &m.capture2,
        &m.capture1,
        &m.auth,
        &m.registered,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(linked_uuids(&body), newest_first);
    assert!(!body.contains("rel=\"next\""), "one page");

    let shop = one(&app, "merchants", "WHERE name = 'Acme Shop'");
    let outlet = one(&app, "merchants", "WHERE name = 'Acme Outlet'");
    let shop_cards = connector_id(&app, "Acme Shop Cards");
    let today = chrono::Utc::now().date_naive();
    let day = |d: chrono::NaiveDate| d.format("%Y-%m-%d").to_string();
    let shop_all = set(&[
        &m.registered,
        &m.auth,
        &m.capture1,
        &m.capture2,
        &m.refund,
        &m.auth2,
        &m.void,
        &m.declined,
    ]);
    let everything: BTreeSet<String> = newest_first.iter().cloned().collect();
    for (query, want) in [
        (format!("merchant={outlet}"), set(&[&m.outlet])),
        (format!("merchant={shop}"), shop_all.clone()),
        (format!("connector={shop_cards}"), shop_all.clone()),
        ("type=CAPTURE".to_string(), set(&[&m.capture1, &m.capture2])),
        ("type=void".to_string(), set(&[&m.void])),
        ("status=ERROR".to_string(), set(&[&m.declined])),
        (
            format!("merchant={shop}&type=PREAUTHORIZE&status=SUCCESS"),
            set(&[&m.auth, &m.auth2]),
        ),
        (
            format!("profile={}", m.profile),
            set(&[&m.registered, &m.auth, &m.capture1, &m.capture2, &m.refund]),
        ),
        (
            format!("from={}&to={}", day(today), day(today)),
            everything.clone(),
        ),
        (
            format!("from={}", day(today.succ_opt().expect("day"))),
            BTreeSet::new(),
        ),
        (
            format!("to={}", day(today.pred_opt().expect("day"))),
            BTreeSet::new(),
        ),
        (
            format!("connector={shop_cards}&merchant={outlet}"),
            BTreeSet::new(),
        ),
    ] {
        let (s, body) = admin.get_html(&format!("/transactions?{query}")).await;
        assert_eq!(s, StatusCode::OK, "{query}");
        assert_eq!(listed(&body), want, "{query}");
    }

    // Refused values: the form again with a message, 422; no rows.
    for (query, field_message) in [
        ("from=2026-02-30", "Enter a date as YYYY-MM-DD."),
        ("to=21.11.2026", "Enter a date as YYYY-MM-DD."),
        (
            "from=2026-11-21&to=2026-11-20",
            "The end date is before the start date.",
        ),
        ("type=PAYOUT", "Choose a transaction type from the list."),
        ("status=MAYBE", "Choose a status from the list."),
        ("limit=0", "Enter a number of rows from 1 to 100."),
        ("after=not-a-cursor", "The page link is not valid"),
        (
            "after=0000000000000000zzzzzzzzzzzzzzzzzzzz",
            "The page link is not valid",
        ),
    ] {
        let (s, body) = admin.get_html(&format!("/transactions?{query}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{query}");
        assert!(body.contains(field_message), "{query}: {body}");
        assert!(linked_uuids(&body).is_empty(), "{query}");
    }
    // A cursor changed by hand to another valid one only moves the page; it shows nothing
    // outside the caller's scope (below).
    let (s, _) = admin
        .get_html("/transactions?merchant=no-such-merchant")
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = admin.get_html("/transactions?type=DEBIT&type=VOID").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "a repeated parameter");

    // The merchant page links to its transactions.
    let (_, body) = admin.get_html(&format!("/merchants/{shop}")).await;
    assert!(body.contains(&format!("href=\"/transactions?merchant={shop}\"")));
}

#[tokio::test]
async fn the_detail_shows_amounts_the_whole_chain_and_never_the_card_number() {
    let app = TestApp::demo().await;
    let m = make(&app).await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;

    let (s, body) = admin
        .get_html(&format!("/transactions/{}", m.capture1))
        .await;
    assert_eq!(s, StatusCode::OK);
    for want in [
        "<dt>Amount</dt><dd>4.00 EUR</dd>",
        "<dt>Refunded</dt><dd>1.50 EUR</dd>",
        "<dt>Remaining to refund</dt><dd>2.50 EUR</dd>",
        "411111******1111",
        "12/2030",
        "Acme Shop Cards",
        "<h2 id=\"callbacks-title\">Callbacks</h2>",
        "No callback: the transaction named no <code>callbackUrl</code>",
    ] {
        assert!(body.contains(want), "{want} in {body}");
    }
    assert!(!body.contains(PAN), "no card number");
    assert!(!body.contains("Ann Smith"), "no card holder");
    // The chain from the preauthorization, oldest first, each one linked but the page's own.
    let chain_part = &body[body.find("<h2>Chain</h2>").expect("chain")..];
    let chain_links = linked_uuids(chain_part);
    assert_eq!(
        chain_links,
        [&m.auth, &m.capture2, &m.refund].map(|s| s.to_string()),
        "{chain_part}"
    );
    let order: Vec<usize> = [&m.auth, &m.capture1, &m.capture2, &m.refund]
        .iter()
        .map(|u| chain_part.find(u.as_str()).expect("in chain"))
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "time order");
    assert!(
        !chain_part.contains(&m.auth2),
        "another chain is not this one"
    );
    // The profile and its instrument.
    assert!(body.contains(&format!("href=\"/profiles/{}\"", m.profile)));
    assert!(body.contains("paymentToken"));

    let (_, body) = admin.get_html(&format!("/transactions/{}", m.auth)).await;
    for want in [
        "<dt>Amount</dt><dd>10.00 EUR</dd>",
        "<dt>Captured</dt><dd>7.00 EUR</dd>",
        "<dt>Remaining to capture</dt><dd>3.00 EUR</dd>",
    ] {
        assert!(body.contains(want), "{want}");
    }
    assert!(!body.contains(PAN));
    let (_, body) = admin.get_html(&format!("/transactions/{}", m.void)).await;
    let chain_part = &body[body.find("<h2>Chain</h2>").expect("chain")..];
    assert_eq!(linked_uuids(chain_part), vec![m.auth2.clone()]);
    let (_, body) = admin.get_html(&format!("/transactions/{}", m.auth2)).await;
    assert!(body.contains("<dt>Voided</dt><dd>yes</dd>"));
    assert!(body.contains("<dt>Remaining to capture</dt><dd>0.00 EUR</dd>"));
    let (_, body) = admin
        .get_html(&format!("/transactions/{}", m.declined))
        .await;
    assert!(body.contains("<dd><span class=\"badge badge-bad\">ERROR</span></dd>"));
    assert!(body.contains("2003 Transaction declined"), "{body}");
    assert!(!body.contains("4000000000000002"));
    let (s, _) = admin.get_html("/transactions/00000000000000000000").await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The profile page lists the profile's transactions and links to the filtered list.
    let (s, body) = admin.get_html(&format!("/profiles/{}", m.profile)).await;
    assert_eq!(s, StatusCode::OK);
    let section = &body[body.find("<h2>Transactions</h2>").expect("section")..];
    assert_eq!(
        linked_uuids(section),
        [&m.refund, &m.capture2, &m.capture1, &m.auth, &m.registered].map(|s| s.to_string())
    );
    assert!(section.contains(&format!("href=\"/transactions?profile={}\"", m.profile)));
    assert!(!body.contains(PAN));
}

#[tokio::test]
async fn merchant_admins_and_other_tenants_see_only_their_own_transactions() {
    let app = TestApp::demo().await;
    let m = make(&app).await;
    let shop = one(&app, "merchants", "WHERE name = 'Acme Shop'");
    let outlet = one(&app, "merchants", "WHERE name = 'Acme Outlet'");
    let globex_store = one(&app, "merchants", "WHERE name = 'Globex Store'");
    let globex = one(&app, "tenants", "WHERE name = 'Globex'");
    app.login_ok("admin", "admin-demo").await;
    for (user, role, tenant, merchant) in [
        ("globex-boss", "tenant_manager", globex.as_str(), ""),
        ("globex-clerk", "merchant_admin", "", globex_store.as_str()),
        ("outlet-clerk", "merchant_admin", "", outlet.as_str()),
    ] {
        let r = app
            .post_form(
                "/users",
                &[
                    ("username", user),
                    ("role", role),
                    ("tenant_id", tenant),
                    ("merchant_id", merchant),
                    ("password", "a-password-of-12"),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{user}");
    }
    let acme_all: BTreeSet<String> = [
        &m.registered,
        &m.auth,
        &m.capture1,
        &m.capture2,
        &m.refund,
        &m.auth2,
        &m.void,
        &m.declined,
        &m.outlet,
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();

    // The Acme Group manager: both Acme merchants (two tenants), not Globex.
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let (_, body) = b.get_html("/transactions").await;
    assert_eq!(listed(&body), acme_all);
    let (s, _) = b.get_html(&format!("/transactions/{}", m.globex)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = b
        .get_html(&format!("/transactions?merchant={globex_store}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Merchant admin of Acme Shop: not Acme Outlet's, even when asked for.
    let b = app.other_browser();
    b.login_ok("merchant", "merchant-demo").await;
    let (_, body) = b.get_html("/transactions").await;
    let mut shop_only = acme_all.clone();
    shop_only.remove(&m.outlet);
    assert_eq!(listed(&body), shop_only);
    assert!(!body.contains("Acme Outlet"), "no other merchant offered");
    let (s, _) = b.get_html(&format!("/transactions/{}", m.outlet)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    for q in [
        format!("merchant={outlet}"),
        format!("connector={}", connector_id(&app, "Acme Outlet Cards")),
    ] {
        let (s, _) = b.get_html(&format!("/transactions?{q}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{q}");
    }
    let (s, body) = b.get_html(&format!("/transactions/{}", m.capture1)).await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains(&m.auth));

    // Merchant admin of Acme Outlet: its one transaction; Shop's chain is not reachable.
    let b = app.other_browser();
    b.login_ok("outlet-clerk", "a-password-of-12").await;
    let (_, body) = b.get_html("/transactions").await;
    assert_eq!(listed(&body), set(&[&m.outlet]));
    let (s, _) = b.get_html(&format!("/transactions/{}", m.auth)).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = b.get_html(&format!("/transactions?merchant={shop}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Globex: its own transaction only, 404 on every Acme one.
    for (user, pw) in [
        ("globex-boss", "a-password-of-12"),
        ("globex-clerk", "a-password-of-12"),
    ] {
        let b = app.other_browser();
        b.login_ok(user, pw).await;
        let (s, body) = b.get_html("/transactions").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(listed(&body), set(&[&m.globex]), "{user}");
        assert!(!body.contains("Acme"), "{user}");
        for u in &acme_all {
            let (s, body) = b.get_html(&format!("/transactions/{u}")).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{user} {u}");
            assert!(!body.contains(u.as_str()));
        }
        for q in [
            format!("merchant={shop}"),
            format!("profile={}", m.profile),
            format!("connector={}", connector_id(&app, "Acme Shop Cards")),
        ] {
            let (s, body) = b.get_html(&format!("/transactions?{q}")).await;
            assert_eq!(s, StatusCode::NOT_FOUND, "{user} {q}");
            assert!(linked_uuids(&body).is_empty());
        }
    }
}

/// Inserts `n` transactions of `merchant` that all carry the same instant (uuids decide
/// their order), as a burst of requests within one clock tick would.
fn insert_same_instant(
    app: &TestApp,
    merchant: &str,
    connector: &str,
    path: &str,
    n: usize,
) -> Vec<String> {
    use coffer::models::transaction::{Transaction, insert};
    let db = app.db();
    let mut c = db.get().expect("conn");
    let at = coffer::models::now();
    let mut out = vec![];
    for _ in 0..n {
        let uuid = coffer::ids::random_hex(10);
        insert(
            &mut c,
            &Transaction {
                uuid: uuid.clone(),
                connector_id: connector.into(),
                merchant_id: merchant.into(),
                tenant_path: path.into(),
                merchant_transaction_id: mtid(),
                purchase_id: format!("20261121-{uuid}"),
                transaction_type: "DEBIT".into(),
                status: "SUCCESS".into(),
                payment_method: "Creditcard".into(),
                amount: Some(100),
                currency: Some("EUR".into()),
                reference_uuid: None,
                instrument_id: None,
                profile_id: None,
                payment_token: None,
                captured_amount: 0,
                refunded_amount: 0,
                voided: false,
                error_code: None,
                error_message: None,
                card_summary: None,
                body_hash: "sha512".into(),
                extra: "{}".into(),
                created_at: at,
                updated_at: at,
            },
        )
        .expect("insert");
        out.push(uuid);
    }
    out
}

/// All transaction uuids in the list's order, straight from the database.
fn db_order(app: &TestApp, filter: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct R {
        #[diesel(sql_type = diesel::sql_types::Text)]
        uuid: String,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(format!(
        "SELECT uuid FROM transactions {filter} ORDER BY created_at DESC, uuid DESC"
    ))
    .load::<R>(&mut *c)
    .expect("uuids")
    .into_iter()
    .map(|r| r.uuid)
    .collect()
}

#[tokio::test]
async fn keyset_pages_walk_every_transaction_once_in_order() {
    let app = TestApp::demo().await;
    let m = make(&app).await;
    let shop = one(&app, "merchants", "WHERE name = 'Acme Shop'");
    let outlet = one(&app, "merchants", "WHERE name = 'Acme Outlet'");
    let outlet_path = one(&app, "tenants", "WHERE name = 'Acme Retail'");
    let group = one(&app, "tenants", "WHERE name = 'Acme Group'");
    let outlet_cards = connector_id(&app, "Acme Outlet Cards");
    // Seven more of Acme Outlet at one instant: pages must break ties by uuid.
    let tied = insert_same_instant(
        &app,
        &outlet,
        &outlet_cards,
        &format!("/{group}/{outlet_path}/"),
        7,
    );
    assert_eq!(tied.len(), 7);
    let acme = format!("WHERE tenant_path LIKE '/{group}/%'");

    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let manager = app.other_browser();
    manager.login_ok("manager", "manager-demo").await;
    let clerk = app.other_browser();
    clerk.login_ok("merchant", "merchant-demo").await;
    for (who, b, query, filter, total) in [
        ("admin", &admin, "limit=3", String::new(), 17),
        ("admin", &admin, "limit=1", String::new(), 17),
        ("manager", &manager, "limit=4", acme.clone(), 16),
        (
            "manager",
            &manager,
            &*format!("limit=2&merchant={outlet}"),
            format!("WHERE merchant_id = '{outlet}'"),
            8,
        ),
        (
            "merchant",
            &clerk,
            "limit=3",
            format!("WHERE merchant_id = '{shop}'"),
            8,
        ),
        (
            "manager",
            &manager,
            "limit=2&type=DEBIT",
            format!("{acme} AND transaction_type = 'DEBIT'"),
            10,
        ),
    ] {
        let (seen, pages) = walk(b, query).await;
        let want = db_order(&app, &filter);
        assert_eq!(want.len(), total, "{who} {query}: fixture");
        assert_eq!(seen, want, "{who} {query}: every row once, in order");
        let limit: usize = query[6..]
            .split('&')
            .next()
            .and_then(|n| n.parse().ok())
            .expect("limit");
        assert_eq!(pages, total.div_ceil(limit).max(1), "{who} {query}: pages");
    }
    // The default page holds 50.
    let (_, body) = admin.get_html("/transactions").await;
    assert_eq!(linked_uuids(&body).len(), 17);
    assert!(linked_uuids(&body).contains(&m.globex));
}

/// EXPLAIN of the list's page query (the shape `models::transaction_query::page` builds) on
/// the running backend: the row order comes from the console's indexes, without a sort.
#[tokio::test]
async fn the_list_queries_read_the_console_indexes_in_order() {
    let app = TestApp::demo().await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let cursor = "created_at <= '2026-11-21 10:00:00' AND (created_at < '2026-11-21 10:00:00' OR uuid < 'abc')";
    let order = "ORDER BY created_at DESC, uuid DESC LIMIT 51";
    for (slice, index) in [
        ("merchant_id = 'm'", "transactions_merchant_created"),
        ("tenant_path = '/t/'", "transactions_path_created"),
    ] {
        for extra in [
            "",
            &format!(" AND {cursor}"),
            " AND status = 'ERROR' AND created_at >= '2026-11-01 00:00:00'",
        ] {
            let sql = format!("SELECT * FROM transactions WHERE {slice}{extra} {order}");
            let plan = explain(&mut c, &sql).join("\n");
            assert!(plan.contains(index), "{sql}:\n{plan}");
            assert!(
                !plan.contains("Sort") && !plan.contains("TEMP B-TREE"),
                "{sql}: the order comes from the index\n{plan}"
            );
        }
    }
}

/// The export's rows: (uuid, merchant transaction id, amount, currency, merchant).
async fn export(b: &TestBrowser<'_>, query: &str) -> (StatusCode, Vec<csv::StringRecord>) {
    let r = b
        .client
        .get(b.app.url(&format!("/transactions.csv{query}")))
        .send()
        .await
        .expect("csv");
    let status = r.status();
    if status != StatusCode::OK {
        return (status, vec![]);
    }
    crate::helpers::assert_csv(&r);
    let body = r.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().expect("header").iter().collect::<Vec<_>>(),
        coffer::console::transactions_view::EXPORT_COLUMNS.to_vec()
    );
    (
        status,
        reader.records().map(|r| r.expect("record")).collect(),
    )
}

#[tokio::test]
async fn the_filtered_list_exports_every_matching_transaction_as_csv_and_nothing_of_others() {
    let app = TestApp::demo().await;
    let m = make(&app).await;
    let shop = one(&app, "merchants", "WHERE name = 'Acme Shop'");
    let outlet = one(&app, "merchants", "WHERE name = 'Acme Outlet'");
    let globex = one(&app, "merchants", "WHERE name = 'Globex Store'");
    let outlet_path = one(&app, "tenants", "WHERE name = 'Acme Retail'");
    let group = one(&app, "tenants", "WHERE name = 'Acme Group'");
    let outlet_cards = connector_id(&app, "Acme Outlet Cards");
    // More than one export page (500 rows) of Acme Outlet at one instant: the pages must break
    // ties by uuid, and every row come once.
    let tied = insert_same_instant(
        &app,
        &outlet,
        &outlet_cards,
        &format!("/{group}/{outlet_path}/"),
        505,
    );
    {
        use diesel::RunQueryDsl;
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::sql_query(format!(
            "UPDATE transactions SET merchant_transaction_id = '=HYPERLINK(\"x\")' \
             WHERE uuid = '{}'",
            tied[0]
        ))
        .execute(&mut *c)
        .expect("formula");
    }

    let manager = app.other_browser();
    manager.login_ok("manager", "manager-demo").await;
    let (s, rows) = export(&manager, &format!("?merchant={outlet}")).await;
    assert_eq!(s, StatusCode::OK);
    let uuids: Vec<String> = rows.iter().map(|r| r[1].to_string()).collect();
    assert_eq!(
        uuids,
        db_order(&app, &format!("WHERE merchant_id = '{outlet}'")),
        "every transaction of the filter once, newest first, across the export's pages"
    );
    assert_eq!(uuids.len(), 506);
    assert!(
        rows.iter().any(|r| &r[2] == "'=HYPERLINK(\"x\")"),
        "a formula is neutralized"
    );
    let first = rows.iter().find(|r| r[1] == tied[1]).expect("a tied row");
    assert_eq!(
        (&first[3], &first[4], &first[5], &first[6], &first[7]),
        ("DEBIT", "SUCCESS", "1.00", "EUR", "Acme Outlet"),
        "type, status, amount in major units, currency and merchant name"
    );

    // The other filters narrow it as on the page; the page links to the export of its filters.
    let (_, rows) = export(&manager, "?status=ERROR").await;
    let errors: Vec<String> = rows.iter().map(|r| r[1].to_string()).collect();
    assert_eq!(
        errors,
        db_order(
            &app,
            &format!("WHERE status = 'ERROR' AND tenant_path LIKE '/{group}/%'")
        ),
        "the failed transactions of Acme only"
    );
    assert!(errors.contains(&m.declined), "the declined debit");
    let (_, page) = manager.get_html("/transactions?status=ERROR").await;
    assert!(
        page.contains("href=\"/transactions.csv?status=ERROR\""),
        "the export link keeps the filters"
    );

    // A merchant admin exports its own merchant's rows only; a manager of Acme nothing of Globex.
    let clerk = app.other_browser();
    clerk.login_ok("merchant", "merchant-demo").await;
    let (_, rows) = export(&clerk, "").await;
    assert!(!rows.is_empty());
    assert_eq!(
        rows.iter().map(|r| r[1].to_string()).collect::<Vec<_>>(),
        db_order(&app, &format!("WHERE merchant_id = '{shop}'"))
    );
    let (_, rows) = export(&manager, "").await;
    assert!(rows.iter().all(|r| r[1] != m.globex), "no Globex row");
    let (s, _) = export(&manager, &format!("?merchant={globex}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "another tenant's merchant");

    // Bad filters are a 400 before anything is sent.
    for bad in ["?status=BOGUS", "?from=2026-13-01", "?after=garbage"] {
        let (s, _) = export(&manager, bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn list_times_read_relative_with_the_exact_utc_time_on_hover() {
    // Issue 13, point 9: one-line times, relative, with the exact UTC time on hover.
    let app = TestApp::demo().await;
    let m = make(&app).await;
    app.login_ok("admin", "admin-demo").await;
    let at: String = {
        use coffer::db::schema::transactions as t;
        use diesel::prelude::*;
        let db = app.db();
        let mut c = db.get().expect("conn");
        let at: chrono::NaiveDateTime = t::table
            .filter(t::uuid.eq(&m.declined))
            .select(t::created_at)
            .first(&mut c)
            .expect("time");
        at.format("%Y-%m-%d %H:%M:%S UTC").to_string()
    };
    let (_, page) = app.get_html("/transactions").await;
    let row = page
        .split("<tr>")
        .find(|r| r.contains(&m.declined))
        .expect("the declined debit's row");
    assert!(
        row.contains(&format!(
            "title=\"{at}\">just now<span class=\"visually-hidden\"> ({at})</span></time>"
        )),
        "{row}"
    );
    let (_, audit) = app.get_html("/audit").await;
    assert!(
        audit.contains("\">just now<span class=\"visually-hidden\"> (")
            && audit.contains(" UTC\">just now"),
        "the audit log's times too"
    );
}
