//! Operations (issue 16, README "Operations"): `GET /metrics` on its own listener, parsed with
//! a Prometheus text parser (families, route templates and never raw paths, values that move);
//! request ids (kept when acceptable, otherwise a new UUIDv7, always in the response); JSON log
//! lines of a real `coffer` process that carry the request's id, in its database work too; and
//! nothing secret in a real process's debug output after the seed flow, console sign-in with
//! two-factor, and fuzzed requests.
//!
//! The metrics are per process: the tests of this binary share them, so counters are compared
//! before and after (at least the requests made here), and the gauges of one database (the
//! outbox) are each app's own.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

/// Every family the issue names (counters with their `_total`).
const FAMILIES: [&str; 13] = [
    "coffer_http_requests_total",
    "coffer_http_request_duration_seconds",
    "coffer_db_pool_wait_seconds",
    "coffer_sqlite_writer_queue_depth",
    "coffer_outbox_due",
    "coffer_outbox_oldest_due_seconds",
    "coffer_delivery_failures_total",
    "coffer_login_failures_total",
    "coffer_lockouts_total",
    "coffer_kms_requests_total",
    "coffer_reencrypt_records_done",
    "coffer_reencrypt_records_total",
    // The histogram's count, as the parser lists it.
    "coffer_http_request_duration_seconds_count",
];

/// The app's `/metrics` text (its listener must be on), checked to be the Prometheus format.
pub(crate) async fn metrics_text(app: &TestApp) -> String {
    let base = app.metrics.as_ref().expect("a metrics listener");
    let r = app
        .client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(r.status(), StatusCode::OK);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(ct.starts_with("text/plain; version=0.0.4"), "{ct}");
    r.text().await.expect("body")
}

/// A sample's labels, in order.
type Labels = Vec<(String, String)>;

/// One scrape, parsed by a Prometheus text parser (which refuses anything off the format).
struct Scrape {
    /// Family name and type, from the `# TYPE` lines.
    types: std::collections::BTreeMap<String, String>,
    /// Every sample: name, labels, value.
    samples: Vec<(String, Labels, f64)>,
}

fn parse(text: &str) -> Scrape {
    let (_, families) = nom_openmetrics::parser::prometheus(text)
        .unwrap_or_else(|e| panic!("not the Prometheus text format: {e:?}\n{text}"));
    let mut types = std::collections::BTreeMap::new();
    let mut samples = vec![];
    for f in &families {
        for d in &f.descriptors {
            if let nom_openmetrics::MetricDescriptor::Type { metric, r#type } = d {
                types.insert(metric.to_string(), r#type.to_string().to_ascii_lowercase());
            }
        }
        for s in &f.samples {
            let labels = s
                .labels()
                .iter()
                .map(|l| (l.name.to_string(), l.value.clone()))
                .collect();
            samples.push((s.name().to_string(), labels, s.number()));
        }
    }
    Scrape { types, samples }
}

fn label<'a>(labels: &'a [(String, String)], name: &str) -> Option<&'a str> {
    labels
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The sum of the samples named `metric` with `labels`.
fn total(s: &Scrape, metric: &str, labels: &[(&str, &str)]) -> f64 {
    s.samples
        .iter()
        .filter(|(n, l, _)| n == metric && labels.iter().all(|(k, v)| label(l, k) == Some(*v)))
        .map(|(_, _, v)| v)
        .sum()
}

/// A gauge's value (it must be there, typed a gauge).
fn gauge(s: &Scrape, metric: &str) -> f64 {
    assert_eq!(
        s.types.get(metric).map(String::as_str),
        Some("gauge"),
        "{metric} is a gauge"
    );
    s.samples
        .iter()
        .find(|(n, _, _)| n == metric)
        .unwrap_or_else(|| panic!("{metric} in the scrape"))
        .2
}

fn with_metrics(s: &mut coffer::config::Settings) {
    s.metrics_bind = Some("127.0.0.1:0".into());
}

#[tokio::test]
async fn metrics_are_off_unless_a_metrics_address_is_set() {
    let app = TestApp::empty().await;
    assert!(app.metrics.is_none());
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn metrics_are_served_apart_with_route_templates_and_values_that_move() {
    let app = TestApp::spawn_with(true, with_metrics).await;
    // The API's port does not show them.
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let before = parse(&metrics_text(&app).await);
    for _ in 0..3 {
        assert_eq!(app.get("/healthz").await.status(), StatusCode::OK);
    }
    let raw = format!("raw{}", coffer::ids::random_hex(6));
    let r = app.get(&format!("/tenants/{raw}")).await;
    assert!(r.status().is_redirection(), "{}", r.status());
    let r = app.get(&format!("/no-such-page/{raw}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let token = crate::callbacks::card(&app, "demo-shop-public", "4111111111111111").await;

    let text = metrics_text(&app).await;
    for raw_value in [raw.as_str(), "demo-shop-public", &token, "4111111111111111"] {
        assert!(
            !text.contains(raw_value),
            "{raw_value} in the scrape:\n{text}"
        );
    }
    let after = parse(&text);
    for f in FAMILIES {
        assert!(
            after.types.contains_key(f) || after.samples.iter().any(|(n, _, _)| n == f),
            "{f} in the scrape:\n{text}"
        );
    }
    let grew = |metric: &str, labels: &[(&str, &str)]| {
        total(&after, metric, labels) - total(&before, metric, labels)
    };
    let requests = "coffer_http_requests_total";
    assert!(
        grew(
            requests,
            &[("route", "/healthz"), ("method", "GET"), ("status", "200")]
        ) >= 3.0,
        "{text}"
    );
    assert!(
        grew(requests, &[("route", "/tenants/{id}"), ("method", "GET")]) >= 1.0,
        "{text}"
    );
    assert!(
        grew(requests, &[("route", "unmatched"), ("status", "404")]) >= 1.0,
        "{text}"
    );
    assert!(
        grew(
            requests,
            &[
                ("route", "/api/v3/paymentjs/{public_key}/tokenize"),
                ("method", "POST"),
                ("status", "200")
            ]
        ) >= 1.0,
        "{text}"
    );
    // Every route label is a template or the fixed `unmatched`.
    for (_, labels, _) in after.samples.iter().filter(|(n, _, _)| n == requests) {
        let route = label(labels, "route").expect("a route label");
        assert!(route == "unmatched" || route.starts_with('/'), "{route}");
        assert!(
            [
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "other"
            ]
            .contains(&label(labels, "method").expect("method")),
            "{labels:?}"
        );
    }
    assert_eq!(
        after
            .types
            .get("coffer_http_request_duration_seconds")
            .map(String::as_str),
        Some("histogram")
    );
    let inf = [("route", "/healthz"), ("le", "+Inf")];
    assert!(
        grew("coffer_http_request_duration_seconds_bucket", &inf) >= 3.0,
        "{text}"
    );
    assert!(
        grew(
            "coffer_http_request_duration_seconds_count",
            &[("route", "/healthz")]
        ) >= 3.0,
        "{text}"
    );
    assert!(
        grew("coffer_db_pool_wait_seconds_count", &[]) >= 3.0,
        "{text}"
    );
    assert!(gauge(&after, "coffer_sqlite_writer_queue_depth") >= 0.0);
    assert_eq!(gauge(&after, "coffer_outbox_due"), 0.0, "a fresh database");
    assert_eq!(gauge(&after, "coffer_outbox_oldest_due_seconds"), 0.0);
    assert!(gauge(&after, "coffer_reencrypt_records_done") >= 0.0);
    assert!(gauge(&after, "coffer_reencrypt_records_total") >= 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_failures_lockouts_outbox_and_delivery_failures_are_counted() {
    use coffer::db::schema::callbacks;
    use diesel::prelude::*;

    let app = TestApp::spawn_with(true, with_metrics).await;
    let before = parse(&metrics_text(&app).await);
    // USER_LIMIT wrong passwords: each a failure, the last sets the username's lock.
    for _ in 0..coffer::console::auth::USER_LIMIT {
        let r = app.login("admin", "not-the-password").await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "the form again"
        );
    }
    let r = app.login("admin", "not-the-password").await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "locked");

    // A callback whose target answers 500: a delivery failure of kind `callbacks`.
    let rx = crate::callbacks::Receiver::start(|_| (500, "no")).await;
    let token = crate::callbacks::card(&app, "demo-shop-public", "4111111111111111").await;
    let (s, v) = crate::callbacks::api(
        &app,
        "demo-shop-cards",
        "debit",
        ("shop-api", "shop-api-demo"),
        None,
        &json!({"merchantTransactionId": crate::callbacks::mtid(), "amount": "1.00",
                "currency": "EUR", "transactionToken": token, "callbackUrl": rx.url("/cb")}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let uuid = v["uuid"].as_str().expect("uuid").to_string();
    let db = app.db();
    crate::callbacks::until(20, "the first attempt recorded", || {
        let mut c = db.get().expect("conn");
        coffer::models::callback::for_transaction(&mut c, &uuid)
            .expect("callbacks")
            .iter()
            .any(|cb| {
                !coffer::models::callback::attempts_of(&mut c, &cb.id)
                    .expect("attempts")
                    .is_empty()
            })
    })
    .await;
    // Due for two minutes, and leased by another process: the worker leaves it alone.
    let now = chrono::Utc::now().naive_utc();
    let n = diesel::update(callbacks::table.filter(callbacks::transaction_uuid.eq(&uuid)))
        .set((
            callbacks::status.eq("pending"),
            callbacks::next_attempt_at.eq(now - chrono::Duration::seconds(120)),
            callbacks::locked_until.eq(Some(now + chrono::Duration::hours(1))),
            callbacks::locked_by.eq(Some("another-process")),
        ))
        .execute(&mut *db.get().expect("conn"))
        .expect("update");
    assert_eq!(n, 1);

    let text = metrics_text(&app).await;
    let after = parse(&text);
    let grew = |metric: &str, labels: &[(&str, &str)]| {
        total(&after, metric, labels) - total(&before, metric, labels)
    };
    assert!(
        grew("coffer_login_failures_total", &[]) >= f64::from(coffer::console::auth::USER_LIMIT),
        "{text}"
    );
    assert!(grew("coffer_lockouts_total", &[]) >= 1.0, "{text}");
    assert!(
        grew("coffer_delivery_failures_total", &[("kind", "callbacks")]) >= 1.0,
        "{text}"
    );
    assert_eq!(gauge(&after, "coffer_outbox_due"), 1.0, "{text}");
    let oldest = gauge(&after, "coffer_outbox_oldest_due_seconds");
    assert!((119.0..3600.0).contains(&oldest), "{oldest}");
}

/// EXPLAIN of the outbox's scrape query (the shape `models::callback::due_backlog` builds) on
/// the running backend: one range of the `callbacks_due` index, no scan of the table.
#[tokio::test]
async fn the_outbox_gauges_read_the_due_index() {
    let app = TestApp::empty().await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let sql = "SELECT COUNT(*), MIN(next_attempt_at) FROM callbacks \
               WHERE status = 'pending' AND next_attempt_at <= '2026-12-03 10:00:00'";
    let plan = explain(&mut c, sql).join("\n");
    assert!(plan.contains("callbacks_due"), "{plan}");
    assert!(
        !plan.contains("SCAN callbacks\n") && !plan.ends_with("SCAN callbacks"),
        "{plan}"
    );
}

#[tokio::test]
async fn key_manager_requests_are_counted_by_operation_and_result() {
    let Some(bao) = crate::bao::bao("kms metrics") else {
        return;
    };
    let switch = crate::bao::Switch::start(bao).await;
    let key = bao.new_key();
    let app = TestApp::spawn_with(true, |s| {
        bao.apply(s, &switch.addr, &key);
        with_metrics(s);
    })
    .await;
    let kms = "coffer_kms_requests_total";
    let before = parse(&metrics_text(&app).await);
    // The start generated a data key and unwrapped it.
    for op in ["generate", "decrypt"] {
        assert!(
            total(&before, kms, &[("op", op), ("result", "ok")]) >= 1.0,
            "{op}"
        );
    }
    assert_eq!(app.get("/readyz").await.status(), StatusCode::OK);
    switch.set_down(true);
    assert_eq!(
        app.get("/readyz").await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    switch.set_down(false);
    let after = parse(&metrics_text(&app).await);
    let grew = |labels: &[(&str, &str)]| total(&after, kms, labels) - total(&before, kms, labels);
    assert!(grew(&[("op", "check"), ("result", "ok")]) >= 1.0);
    assert!(grew(&[("op", "check"), ("result", "error")]) >= 1.0);
}

// ---------------------------------------------------------------------------------------------
// Request ids

fn id_of(r: &reqwest::Response) -> String {
    r.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .expect("an X-Request-Id in the response")
        .to_string()
}

fn is_uuid_v7(s: &str) -> bool {
    uuid::Uuid::parse_str(s).is_ok_and(|u| u.get_version_num() == 7 && u.to_string() == s)
}

async fn with_id(app: &TestApp, path: &str, id: reqwest::header::HeaderValue) -> String {
    let r = app
        .client
        .get(app.url(path))
        .header("x-request-id", id)
        .send()
        .await
        .expect("GET");
    id_of(&r)
}

#[tokio::test]
async fn request_ids_are_echoed_when_acceptable_and_new_uuid_v7_otherwise() {
    use reqwest::header::HeaderValue;
    let app = TestApp::demo().await;
    for good in ["abc.DEF_123-x".to_string(), "a".repeat(128), "7".into()] {
        let got = with_id(
            &app,
            "/healthz",
            HeaderValue::from_str(&good).expect("value"),
        )
        .await;
        assert_eq!(got, good);
    }
    let mut seen = std::collections::BTreeSet::new();
    let bad: Vec<HeaderValue> = vec![
        HeaderValue::from_str(&"a".repeat(129)).expect("value"),
        HeaderValue::from_static("has space"),
        HeaderValue::from_static("a/b"),
        HeaderValue::from_static("x;y=1"),
        HeaderValue::from_static(""),
        HeaderValue::from_bytes("caf\u{e9}".as_bytes()).expect("value"),
    ];
    for b in bad {
        let got = with_id(&app, "/healthz", b.clone()).await;
        assert!(is_uuid_v7(&got), "{b:?} replaced by a UUIDv7, got {got}");
        assert!(seen.insert(got), "a new id every time");
    }
    // Without one, on every kind of answer: a page, a 404, an API error.
    for r in [
        app.get("/healthz").await,
        app.get("/no-such-page").await,
        app.client
            .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
            .body("{}")
            .send()
            .await
            .expect("POST"),
    ] {
        let got = id_of(&r);
        assert!(is_uuid_v7(&got), "{} {got}", r.status());
        assert!(seen.insert(got), "a new id every time");
    }
}

// ---------------------------------------------------------------------------------------------
// A real process: JSON logs, and nothing secret in them

/// The process's output as JSON lines: every line must be one.
fn json_lines(output: &str) -> Vec<Value> {
    output
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str::<Value>(l)
                .unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}"))
        })
        .collect()
}

async fn wait_for_output(p: &crate::server::CofferProcess, needle: &str) -> String {
    let start = std::time::Instant::now();
    loop {
        let out = p.output();
        if out.contains(needle) {
            return out;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{needle} never in the output:\n{out}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id_into_the_database_work() {
    let backend = crate::server::Backend::new();
    let p = backend
        .start_with(
            "json",
            &[
                ("COFFER_LOG_FORMAT", "json"),
                ("RUST_LOG", "info,coffer::access=debug,coffer::db=trace"),
            ],
        )
        .await;
    let id = format!("it-json-{}", coffer::ids::random_hex(6));
    let r = crate::server::client()
        .get(p.url("/healthz"))
        .header("x-request-id", &id)
        .send()
        .await
        .expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(id_of(&r), id);
    let out = wait_for_output(&p, &format!("\"request_id\":\"{id}\"")).await;
    // Let the access line (written after the response) arrive too.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let lines = json_lines(&p.output());
    assert!(!lines.is_empty(), "{out}");
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|l| l["span"]["request_id"] == id.as_str())
        .collect();
    let access = of_request
        .iter()
        .find(|l| l["target"] == "coffer::access")
        .unwrap_or_else(|| panic!("the access line of {id}:\n{out}"));
    assert_eq!(access["level"], "DEBUG");
    assert_eq!(access["fields"]["status"], 200, "{access}");
    assert_eq!(access["span"]["route"], "/healthz", "{access}");
    assert_eq!(access["span"]["method"], "GET", "{access}");
    assert!(access["timestamp"].is_string(), "{access}");
    // The database work runs on a blocking thread of the pool (`DbPool::run`): its line is in
    // the request's span only because the span was carried there.
    let db = of_request
        .iter()
        .find(|l| l["target"] == "coffer::db")
        .unwrap_or_else(|| panic!("a database line of {id}:\n{out}"));
    assert_eq!(db["spans"][0]["request_id"], id.as_str(), "{db}");
    assert_eq!(db["fields"]["message"], "database connection taken", "{db}");
}

const CT: &str = "application/json; charset=utf-8";

async fn post(
    client: &reqwest::Client,
    url: String,
    auth: Option<String>,
    body: &Value,
) -> (StatusCode, Value) {
    let mut req = client
        .post(url)
        .header("content-type", CT)
        .body(body.to_string());
    if let Some(a) = auth {
        req = req.header("authorization", a);
    }
    let r = req.send().await.expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

fn text_at(v: &Value, pointer: &str) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {v}"))
        .to_string()
}

/// Runs the seed flow and fuzzed requests against a real process logging everything at debug,
/// as JSON, then looks for every secret it used or saw in all of its output.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_secret_reaches_the_debug_log_of_a_real_process() {
    use crate::fuzz::{Expect, JSON_CT, Req};

    let bao = crate::bao::bao("secret scan in transit mode");
    let backend = match bao {
        Some(b) => crate::server::Backend::transit(b, &b.addr),
        None => crate::server::Backend::new(),
    };
    let p = backend
        .start_with(
            "scan",
            &[("COFFER_LOG_FORMAT", "json"), ("RUST_LOG", "debug")],
        )
        .await;
    let base = p.addr.clone();
    let client = crate::server::client();
    let shop = crate::fuzz::basic("shop-api", "shop-api-demo");
    // The demo's passwords and secrets, the process's keys, and what the fuzz runner sees.
    let watch = crate::secret_scan::Watch::new();
    watch.base(&base);
    let settings = backend.settings("scan");
    watch.secrets().settings(&settings);
    if settings.transit_token.is_none() {
        eprintln!("!!!!!!!! the key-manager token part of this scan is SKIPPED (no bao) !!!!!!!!");
    }

    // payment.js: a card number and CVV, an `ix::` token back.
    let pan = crate::server::random_pan();
    let cvv = "739";
    let (s, v) = post(
        &client,
        format!("{base}/api/v3/paymentjs/demo-shop-public/tokenize"),
        None,
        &json!({"cardHolder": "Ann Smith", "number": pan, "cvv": cvv, "month": "12", "year": "2030"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let card_token = text_at(&v, "/token");
    assert!(card_token.starts_with("ix::"), "{card_token}");
    // Register it (debit withRegister): a `pt::` payment token.
    let tx = |kind: &str| format!("{base}/api/v3/transaction/demo-shop-cards/{kind}");
    let (s, v) = post(
        &client,
        tx("debit"),
        Some(shop.clone()),
        &json!({"merchantTransactionId": crate::server::mtid(), "amount": "9.99", "currency": "EUR",
                "transactionToken": card_token, "withRegister": true,
                "customer": {"firstName": "Ann", "lastName": "Smith", "email": "ann@example.com"},
                "customerProfileData": {"customerIdentification": "scan-1", "markAsPreferred": true}}),
    )
    .await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let payment_token = text_at(&v, "/customerProfileData/paymentToken");
    let guid = text_at(&v, "/customerProfileData/profileGuid");
    assert!(payment_token.starts_with("pt::"), "{payment_token}");
    // Charge the stored card with its payment token.
    let (s, v) = post(
        &client,
        tx("debit"),
        Some(shop.clone()),
        &json!({"merchantTransactionId": crate::server::mtid(), "amount": "1.50", "currency": "EUR",
                "transactionToken": payment_token}),
    )
    .await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = post(
        &client,
        format!("{base}/api/v3/customerProfiles/demo-shop-cards/getProfile"),
        Some(shop.clone()),
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    // Monri: OAuth (a bearer token), a customer, read back.
    let (s, v) = post(
        &client,
        format!("{base}/v2/oauth"),
        None,
        &json!({"client_id": coffer::console::demo::DEMO_MONRI_AUTHENTICITY_TOKEN,
                "client_secret": coffer::console::demo::DEMO_MONRI_MERCHANT_KEY,
                "grant_type": "client_credentials", "scopes": ["customers", "payment-methods"]}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let bearer = text_at(&v, "/access_token");
    watch.secrets().add("a Monri access token", &bearer);
    let (s, v) = post(
        &client,
        format!("{base}/v2/customers"),
        Some(format!("Bearer {bearer}")),
        &json!({"merchant_customer_id": "scan-m-1", "email": "m@example.com", "name": "M"}),
    )
    .await;
    assert!(s.is_success(), "{s} {v}");
    let monri_uuid = text_at(&v, "/uuid");
    for path in [
        format!("/v2/customers/{monri_uuid}"),
        format!("/v2/customers/{monri_uuid}/payment-methods"),
    ] {
        let r = client
            .get(format!("{base}{path}"))
            .header("authorization", format!("Bearer {bearer}"))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    // The console: a wrong password, then the right one; a page signed in.
    let console = crate::helpers::client();
    let wrong = format!("Wrong-{}", coffer::ids::random_hex(6));
    watch.secrets().add("a wrong password", &wrong);
    let mut session_cookie = None;
    for pw in [wrong.as_str(), "admin-demo"] {
        let r = login_with(&console, &base, "admin", pw).await;
        if pw == "admin-demo" {
            assert_eq!(r.status(), StatusCode::SEE_OTHER, "signed in");
            session_cookie = r
                .cookies()
                .find(|c| c.name() == "coffer_session")
                .map(|c| c.value().to_string());
        }
    }
    watch.secrets().add(
        "the session cookie",
        &session_cookie.expect("a session cookie"),
    );
    let r = console.get(format!("{base}/")).send().await.expect("GET /");
    assert_eq!(r.status(), StatusCode::OK);
    // A card number in a console path, refused by actix-web's query extractor (a duplicate
    // field), which names the raw path in a debug line that `coffer serve` never writes.
    let in_path = crate::server::random_pan();
    watch.secrets().card(&in_path);
    let r = console
        .get(format!("{base}/containers/{in_path}?q=a&q=b"))
        .send()
        .await
        .expect("GET");
    assert!(r.status().is_client_error(), "{}", r.status());
    // Two-factor for `manager`: its secret and recovery codes, then a sign-in with a wrong
    // code, a right one, and (another browser) a recovery code.
    let manager = crate::helpers::client();
    let r = login_with(&manager, &base, "manager", "manager-demo").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = form_with(
        &manager,
        &base,
        "/account/two-factor",
        "/account/two-factor/setup",
        &[],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.expect("body");
    let secret_text =
        crate::identity::element_text(&body, "totp-secret").expect("the secret shown");
    let secret = crate::identity::base32_decode(&secret_text);
    let enable_code = crate::identity::totp(&secret, 0);
    let r = form_with(
        &manager,
        &base,
        "/account/two-factor",
        "/account/two-factor/enable",
        &[("code", &enable_code)],
    )
    .await;
    assert_eq!(r.status(), StatusCode::OK);
    let codes = crate::identity::recovery_codes(&r.text().await.expect("body"));
    assert_eq!(codes.len(), 10);
    let (wrong_code, next_code) = (
        crate::identity::wrong_code(&secret),
        crate::identity::totp(&secret, 1),
    );
    let second = crate::helpers::client();
    let r = login_with(&second, &base, "manager", "manager-demo").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    for (code, status) in [
        (wrong_code.as_str(), StatusCode::UNPROCESSABLE_ENTITY),
        (next_code.as_str(), StatusCode::SEE_OTHER),
    ] {
        let r = form_with(
            &second,
            &base,
            "/login/two-factor",
            "/login/two-factor",
            &[("code", code)],
        )
        .await;
        assert_eq!(r.status(), status, "code {code}");
    }
    let third = crate::helpers::client();
    login_with(&third, &base, "manager", "manager-demo").await;
    let r = form_with(
        &third,
        &base,
        "/login/two-factor",
        "/login/two-factor",
        &[("code", &codes[0])],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "a recovery code");
    {
        let mut s = watch.secrets();
        s.add("the two-factor secret", &secret_text);
        for c in [enable_code, wrong_code, next_code].iter().chain(&codes) {
            s.code("a two-factor or recovery code", c);
        }
    }

    // Fuzzed requests (the fuzz suite's generators) at tokenize, debit and getProfile, with
    // the real tokens in their pool.
    let real = vec![
        card_token.clone(),
        payment_token.clone(),
        guid.clone(),
        "scan-1".to_string(),
    ];
    let tokenize = crate::fuzz::tokenize_template();
    let debit = json!({"merchantTransactionId": crate::fuzz::FRESH_MTID, "amount": "9.99",
                       "currency": "EUR", "transactionToken": payment_token,
                       "customer": crate::fuzz::customer_template()});
    let profile = json!({"profileGuid": guid, "customerIdentification": "scan-1"});
    let pool = crate::fuzz::pool_with(
        &real,
        &[tokenize.clone(), debit.clone(), profile.clone()],
        &[],
    );
    for (name, path, template, auth) in [
        (
            "scan-tokenize",
            "/api/v3/paymentjs/demo-shop-public/tokenize",
            tokenize,
            None,
        ),
        (
            "scan-debit",
            "/api/v3/transaction/demo-shop-cards/debit",
            debit,
            Some(shop.clone()),
        ),
        (
            "scan-getProfile",
            "/api/v3/customerProfiles/demo-shop-cards/getProfile",
            profile,
            Some(shop.clone()),
        ),
    ] {
        let pool = pool.clone();
        crate::fuzz::run(&client, &base, name, move |rng| {
            let body = pool.json_body(rng, &template);
            let body = crate::fuzz::with_fresh_mtid(rng, body);
            let mut req = Req::new(reqwest::Method::POST, path.to_string(), body, Expect::No5xx)
                .header("content-type", JSON_CT);
            if let Some(a) = &auth {
                req = req.header("authorization", a.clone());
            }
            req
        })
        .await;
    }
    {
        let mut s = watch.secrets();
        s.card(&pan);
        s.cvv(cvv);
        s.add("the card token", &card_token);
        s.add("the payment token", &payment_token);
    }

    // Everything the process wrote, after a moment for the last lines.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = p.output();
    let lines = json_lines(&out);
    assert!(
        lines.iter().any(|l| l["level"] == "DEBUG"),
        "logging at debug"
    );
    assert!(
        lines.iter().any(|l| l["target"] == "coffer::access"),
        "the requests were logged"
    );
    watch.secrets().assert_absent(&out, "the debug output");
}
