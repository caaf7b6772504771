//! The OpenAPI documents (`openapi/*.json`) hold the server: every API response an in-process
//! test server answers is validated against the response schema of its operation and status
//! ([`ApiCheck`], installed by `TestApp::spawn_with`; a failure fails the test when its
//! `TestApp` goes), the process-level helpers of `server.rs` check theirs with [`check`], and
//! the tests here show the documents are valid OpenAPI 3.1 and that the validator refuses
//! what it must.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use coffer::api::openapi::{IXOPAY, MONRI};
use coffer::web::observe::{Observe, Seen};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::TestApp;

/// The two documents, parsed once, and the validators compiled so far (by document and
/// response pointer).
struct Docs {
    ixopay: Value,
    monri: Value,
    validators: Mutex<HashMap<String, Arc<jsonschema::Validator>>>,
}

fn docs() -> &'static Docs {
    static DOCS: OnceLock<Docs> = OnceLock::new();
    DOCS.get_or_init(|| Docs {
        ixopay: serde_json::from_str(IXOPAY.json).expect("openapi/ixopay.json is JSON"),
        monri: serde_json::from_str(MONRI.json).expect("openapi/monri.json is JSON"),
        validators: Mutex::new(HashMap::new()),
    })
}

/// The document of an API path: the IXOPAY APIs under `/api/v3/`, Monri's under `/v2/`.
fn doc_for(path: &str) -> Option<(&'static str, &'static Value)> {
    let d = docs();
    if path.starts_with("/api/v3/") {
        Some(("ixopay", &d.ixopay))
    } else if path.starts_with("/v2/") {
        Some(("monri", &d.monri))
    } else {
        None
    }
}

/// Whether a request path matches a path template (`{name}` is one non-empty segment).
fn matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) = (template.split('/').collect(), path.split('/').collect());
    t.len() == p.len()
        && t.iter().zip(&p).all(|(t, p)| {
            if t.starts_with('{') && t.ends_with('}') {
                !p.is_empty()
            } else {
                t == p
            }
        })
}

/// The documented operation of `method path`: its path template and operation object. A
/// template without parameters wins over one with.
fn operation<'a>(doc: &'a Value, method: &str, path: &str) -> Option<(&'a str, &'a Value)> {
    let paths = doc.get("paths")?.as_object()?;
    let mut found: Vec<(&str, &Value)> = paths
        .iter()
        .filter(|(t, _)| matches(t, path))
        .filter_map(|(t, item)| Some((t.as_str(), item.get(method.to_ascii_lowercase())?)))
        .collect();
    found.sort_by_key(|(t, _)| t.matches('{').count());
    found.into_iter().next()
}

fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    let mut cur = v;
    while let Some(r) = cur.get("$ref").and_then(Value::as_str) {
        match r.strip_prefix('#').and_then(|p| doc.pointer(p)) {
            Some(t) => cur = t,
            None => break,
        }
    }
    cur
}

/// A validator for `schema` (a schema inside `doc`): the schema with the document's
/// `components` beside it, so that its `#/components/…` references resolve.
fn compile(doc: &Value, schema: &Value) -> Result<jsonschema::Validator, String> {
    let mut root = match schema {
        Value::Object(m) => m.clone(),
        other => return Err(format!("a schema must be an object, not {other}")),
    };
    if let Some(c) = doc.get("components") {
        root.insert("components".into(), c.clone());
    }
    jsonschema::draft202012::new(&Value::Object(root)).map_err(|e| e.to_string())
}

/// Checks one answer of `method path` against its document: the status must be documented
/// for the operation and, where the document gives a JSON body, the body must be JSON that
/// the schema accepts. Paths outside the APIs, and API paths or methods no operation
/// documents (e.g. an unknown transaction type, answered 404), are not checked.
pub fn check(
    method: &str,
    path: &str,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> Result<(), String> {
    let Some((name, doc)) = doc_for(path) else {
        return Ok(());
    };
    let Some((template, op)) = operation(doc, method, path) else {
        return Ok(());
    };
    let at = format!("{method} {path} ({name}: {template}) answered {status}");
    let responses = op
        .get("responses")
        .and_then(Value::as_object)
        .ok_or_else(|| format!("{at}: the operation documents no responses"))?;
    let code = status.to_string();
    let response = responses
        .get(&code)
        .or_else(|| responses.get("default"))
        .ok_or_else(|| format!("{at}: status {status} is not documented"))?;
    let response = resolve(doc, response);
    let Some(schema) = response.pointer("/content/application~1json/schema") else {
        return Ok(());
    };
    if !content_type.starts_with("application/json") {
        return Err(format!(
            "{at}: Content-Type {content_type:?}, documented application/json"
        ));
    }
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        format!(
            "{at}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(body)
        )
    })?;
    let key = format!("{name} {template} {method} {code}");
    let validator = {
        let mut cache = docs().validators.lock().expect("validators");
        match cache.get(&key) {
            Some(v) => v.clone(),
            None => {
                let v = Arc::new(compile(doc, schema).map_err(|e| format!("{at}: schema: {e}"))?);
                cache.insert(key, v.clone());
                v
            }
        }
    };
    verdict(&validator, &value, &at)
}

/// Every error of `value` against `validator`, named by where they are, with the body.
fn verdict(validator: &jsonschema::Validator, value: &Value, at: &str) -> Result<(), String> {
    let errors: Vec<String> = validator
        .iter_errors(value)
        .map(|e| format!("at '{}': {e}", e.instance_path()))
        .collect();
    if errors.is_empty() {
        return Ok(());
    }
    let shown: String = value.to_string().chars().take(2000).collect();
    Err(format!("{at}: {}; body: {shown}", errors.join("; ")))
}

/// Checks the body of a request Coffer sends (a webhook of the IXOPAY document) against its
/// documented request body.
pub fn check_webhook(name: &str, body: &[u8]) -> Result<(), String> {
    let doc = &docs().ixopay;
    let pointer = format!("/webhooks/{name}/post/requestBody/content/application~1json/schema");
    let schema = doc
        .pointer(&pointer)
        .ok_or_else(|| format!("webhook {name} is not documented"))?;
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| format!("webhook {name}: the body is not JSON ({e})"))?;
    let validator = compile(doc, schema).map_err(|e| format!("webhook {name}: schema: {e}"))?;
    verdict(&validator, &value, &format!("webhook {name}"))
}

/// The observer `TestApp` installs: checks every API answer and keeps the failures.
#[derive(Default)]
pub struct ApiCheck {
    pub failures: Mutex<Vec<String>>,
}

impl Observe for ApiCheck {
    fn wants(&self, _method: &str, path: &str) -> bool {
        doc_for(path).is_some()
    }
    fn seen(&self, r: &Seen<'_>) {
        if let Err(e) = check(r.method, r.path, r.status, r.content_type, r.body) {
            self.failures.lock().expect("failures").push(e);
        }
    }
}

impl ApiCheck {
    /// Panics with every failure seen so far (and forgets them).
    pub fn assert_clean(&self) {
        let failures = std::mem::take(&mut *self.failures.lock().expect("failures"));
        if !failures.is_empty() {
            panic!(
                "{} API answer(s) differ from the OpenAPI documents (fix the document in openapi/, or the server):\n{}",
                failures.len(),
                failures.join("\n")
            );
        }
    }
}

// ---------- the validator refuses what it must ----------

#[test]
fn the_validator_refuses_a_wrong_type_a_missing_field_and_an_undocumented_status() {
    let ct = "application/json; charset=utf-8";
    let path = "/api/v3/transaction/some-key/debit";
    let good = json!({"success": true, "uuid": "d94c0d72f3a36e21f16e",
        "purchaseId": "20261203-d94c0d72f3a36e21f16e", "returnType": "FINISHED", "paymentMethod": "Creditcard"});
    check("POST", path, 200, ct, good.to_string().as_bytes()).expect("a documented answer passes");
    let mut wrong_type = good.clone();
    wrong_type["success"] = json!("true");
    let e = check("POST", path, 200, ct, wrong_type.to_string().as_bytes())
        .expect_err("a string where a boolean is documented");
    assert!(e.contains("/success"), "{e}");
    let mut missing = good.clone();
    missing.as_object_mut().expect("object").remove("uuid");
    let e = check("POST", path, 200, ct, missing.to_string().as_bytes())
        .expect_err("a required field missing");
    assert!(e.contains("uuid"), "{e}");
    let mut extra = good.clone();
    extra["cardNumber"] = json!("4111111111111111");
    check("POST", path, 200, ct, extra.to_string().as_bytes()).expect_err("an undocumented field");
    check("POST", path, 418, ct, b"{}").expect_err("an undocumented status");
    let e = check(
        "POST",
        path,
        422,
        ct,
        br#"{"success":false,"errorMessage":"x","errorCode":12345}"#,
    )
    .expect_err("an error code outside the catalogue");
    assert!(e.contains("errorCode"), "{e}");
    check("POST", path, 200, "text/html", good.to_string().as_bytes())
        .expect_err("not JSON by its content type");
    check("POST", path, 200, ct, b"<html>").expect_err("not JSON");
    // Monri: the list items are customers.
    let e = check(
        "GET",
        "/v2/customers",
        200,
        ct,
        br#"{"status":"approved","data":[{"uuid":5}]}"#,
    )
    .expect_err("a customer with a number for a uuid");
    assert!(e.contains("/data/0"), "{e}");
    // The callbacks Coffer sends are held to the webhook.
    let callback = json!({"result": "ERROR", "uuid": "d94c0d72f3a36e21f16e", "merchantTransactionId": "o-1",
        "purchaseId": "20261203-d94c0d72f3a36e21f16e", "transactionType": "DEBIT", "paymentMethod": "Creditcard",
        "message": "Declined", "code": 2003, "errors": [{"message": "Declined", "code": 2003}]});
    check_webhook("transactionCallback", callback.to_string().as_bytes())
        .expect("a documented callback");
    let mut bad = callback.clone();
    bad["code"] = json!("2003");
    check_webhook("transactionCallback", bad.to_string().as_bytes()).expect_err("code as a string");
    // Paths outside the APIs, and operations no document has, are not checked.
    check("GET", "/login", 200, "text/html", b"<html>").expect("not an API");
    check("POST", "/api/v3/transaction/k/payout", 404, ct, b"{}").expect("not documented");
}

#[test]
fn paths_match_their_templates() {
    assert!(matches("/v2/customers/{uuid}", "/v2/customers/abc"));
    assert!(!matches("/v2/customers/{uuid}", "/v2/customers/"));
    assert!(!matches("/v2/customers/{uuid}", "/v2/customers/a/b"));
    let d = &docs().monri;
    let (t, _) = operation(d, "GET", "/v2/customers/u-1/payment-methods").expect("op");
    assert_eq!(t, "/v2/customers/{uuid}/payment-methods");
    assert!(operation(d, "PUT", "/v2/customers/u-1").is_none());
}

#[actix_web::test]
async fn a_wrong_answer_fails_the_test_that_received_it() {
    let app = TestApp::demo().await;
    let r = app
        .client
        .post(app.url("/api/v3/transaction/no-such-key/debit"))
        .body("{}")
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    app.api_check.assert_clean();
    // As if the server had answered something the document does not allow.
    app.api_check.seen(&Seen {
        method: "POST",
        path: "/api/v3/transaction/no-such-key/debit",
        status: 401,
        content_type: "application/json",
        body: br#"{"success":false,"errorMessage":"no","errorCode":"1000"}"#,
    });
    let failed = std::panic::catch_unwind(|| app.api_check.assert_clean());
    assert!(failed.is_err(), "a recorded failure panics");
}

// ---------- the documents are valid OpenAPI 3.1 ----------

/// Every `$ref` of `v`, with where it sits.
fn refs<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a str)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                if k == "$ref" {
                    if let Some(r) = x.as_str() {
                        out.push((at.clone(), r));
                    }
                } else {
                    refs(x, format!("{at}/{k}"), out);
                }
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                refs(x, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

/// Every schema object of the document: components, parameters, bodies and responses.
fn schemas(doc: &Value) -> Vec<(String, &Value)> {
    let mut out = vec![];
    fn walk<'a>(v: &'a Value, at: String, out: &mut Vec<(String, &'a Value)>) {
        match v {
            Value::Object(m) => {
                for (k, x) in m {
                    if k == "schema" {
                        out.push((format!("{at}/schema"), x));
                    } else {
                        walk(x, format!("{at}/{k}"), out);
                    }
                }
            }
            Value::Array(a) => {
                for (i, x) in a.iter().enumerate() {
                    walk(x, format!("{at}/{i}"), out);
                }
            }
            _ => {}
        }
    }
    for key in ["paths", "webhooks", "components"] {
        if let Some(v) = doc.get(key) {
            walk(v, format!("#/{key}"), &mut out);
        }
    }
    if let Some(m) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    {
        for (k, s) in m {
            out.push((format!("#/components/schemas/{k}"), s));
        }
    }
    out
}

#[test]
fn the_documents_are_valid_openapi_3_1() {
    for (name, doc) in [("ixopay", &docs().ixopay), ("monri", &docs().monri)] {
        let version = doc["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1."), "{name}: openapi {version}");
        assert_eq!(
            doc["jsonSchemaDialect"], "https://json-schema.org/draft/2020-12/schema",
            "{name}"
        );
        assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
        // Every reference resolves inside the document.
        let mut all = vec![];
        refs(doc, "#".into(), &mut all);
        assert!(!all.is_empty());
        for (at, r) in &all {
            let target = r.strip_prefix('#').and_then(|p| doc.pointer(p));
            assert!(target.is_some(), "{name}: {at}: $ref {r} does not resolve");
        }
        // Every operation has an id, responses, and a 401 when it needs authentication.
        let schemes = doc
            .pointer("/components/securitySchemes")
            .and_then(Value::as_object)
            .expect("security schemes");
        let mut ids = std::collections::HashSet::new();
        let mut operations = 0;
        for group in ["paths", "webhooks"] {
            for (path, item) in doc
                .get(group)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
            {
                for (method, op) in item.as_object().expect("path item") {
                    if method == "parameters" {
                        continue;
                    }
                    operations += 1;
                    let at = format!("{name}: {method} {path}");
                    let id = op["operationId"].as_str().unwrap_or_default();
                    assert!(
                        !id.is_empty() && ids.insert(id.to_string()),
                        "{at}: operationId"
                    );
                    let responses = op["responses"].as_object().expect("responses");
                    assert!(!responses.is_empty(), "{at}: no responses");
                    let security = op["security"].as_array();
                    if group == "paths" && security.is_none_or(|s| !s.is_empty()) {
                        assert!(
                            security.is_some(),
                            "{at}: say security: [] when none is needed"
                        );
                        assert!(responses.contains_key("401"), "{at}: needs auth, no 401");
                        for req in security.into_iter().flatten() {
                            for scheme in req.as_object().expect("requirement").keys() {
                                assert!(schemes.contains_key(scheme), "{at}: scheme {scheme}");
                            }
                        }
                    }
                    for (status, r) in responses {
                        assert!(
                            status == "default"
                                || status.parse::<u16>().is_ok_and(|s| (100..600).contains(&s)),
                            "{at}: status {status}"
                        );
                        assert!(
                            resolve(doc, r)["description"].is_string(),
                            "{at} {status}: description"
                        );
                    }
                    // Every path parameter of the template is declared.
                    let declared: Vec<String> = item["parameters"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .chain(op["parameters"].as_array().into_iter().flatten())
                        .map(|p| resolve(doc, p))
                        .filter(|p| p["in"] == "path")
                        .filter_map(|p| p["name"].as_str().map(str::to_string))
                        .collect();
                    for seg in path.split('/').filter(|s| s.starts_with('{')) {
                        let p = seg.trim_matches(|c| c == '{' || c == '}');
                        assert!(declared.iter().any(|d| d == p), "{at}: path parameter {p}");
                    }
                }
            }
        }
        assert!(operations >= 8, "{name}: {operations} operations");
        // Every schema is a valid draft 2020-12 schema and compiles.
        for (at, s) in schemas(doc) {
            if let Err(e) = jsonschema::draft202012::meta::validate(s) {
                panic!("{name}: {at}: not a draft 2020-12 schema: {e}");
            }
            if let Err(e) = compile(doc, s) {
                panic!("{name}: {at}: does not compile: {e}");
            }
        }
    }
}

#[test]
fn every_route_of_the_apis_is_documented() {
    // The routes of src/api/mod.rs, by method and an example path.
    let routes = [
        ("POST", "/api/v3/transaction/k/debit"),
        ("POST", "/api/v3/transaction/k/preauthorize"),
        ("POST", "/api/v3/transaction/k/capture"),
        ("POST", "/api/v3/transaction/k/void"),
        ("POST", "/api/v3/transaction/k/register"),
        ("POST", "/api/v3/transaction/k/deregister"),
        ("POST", "/api/v3/transaction/k/refund"),
        ("POST", "/api/v3/customerProfiles/k/getProfile"),
        ("POST", "/api/v3/customerProfiles/k/updateProfile"),
        ("POST", "/api/v3/customerProfiles/k/deleteProfile"),
        ("GET", "/api/v3/status/k/getByUuid/u"),
        ("GET", "/api/v3/status/k/getByMerchantTransactionId/m"),
        ("POST", "/api/v3/paymentjs/k/tokenize"),
        ("OPTIONS", "/api/v3/paymentjs/k/tokenize"),
        ("POST", "/v2/oauth"),
        ("POST", "/v2/customers"),
        ("GET", "/v2/customers"),
        ("GET", "/v2/customers/u"),
        ("POST", "/v2/customers/u"),
        ("DELETE", "/v2/customers/u"),
        ("GET", "/v2/customers/u/payment-methods"),
        ("GET", "/v2/merchants/customers/m"),
        ("GET", "/v2/payment-methods"),
    ];
    for (method, path) in routes {
        let (_, doc) = doc_for(path).expect("an API path");
        assert!(
            operation(doc, method, path).is_some(),
            "{method} {path} is not documented"
        );
    }
    for kind in coffer::domain::TxKind::ALL {
        let path = format!("/api/v3/transaction/k/{}", kind.as_str());
        assert!(operation(&docs().ixopay, "POST", &path).is_some(), "{path}");
    }
}

// ---------- served without login, and the console page ----------

#[actix_web::test]
async fn the_documents_are_served_without_login_and_cacheable() {
    let app = TestApp::empty().await;
    for spec in [IXOPAY, MONRI] {
        let r = app
            .client
            .get(app.url(&spec.url()))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "application/json");
        let etag = r.headers()["etag"].to_str().expect("etag").to_string();
        assert_eq!(etag, spec.etag());
        assert!(
            r.headers()["cache-control"]
                .to_str()
                .expect("cc")
                .contains("max-age")
        );
        let v: Value = r.json().await.expect("json");
        assert!(v["openapi"].as_str().is_some_and(|s| s.starts_with("3.1.")));
        let r = app
            .client
            .get(app.url(&spec.url()))
            .header("if-none-match", &etag)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::NOT_MODIFIED);
        assert!(r.bytes().await.expect("body").is_empty());
    }
}

#[actix_web::test]
async fn the_console_renders_the_reference_from_the_documents() {
    let app = TestApp::demo().await;
    let r = app.get("/docs/api").await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "needs login like the console"
    );
    app.login_ok("admin", "admin-demo").await;
    let (s, html) = app.get_html("/docs/api").await;
    assert_eq!(s, StatusCode::OK);
    for needle in [
        r#"id="ixopay-debit""#,
        r##"href="#ixopay-debit""##,
        r#"id="monri-merchantPaymentMethods""#,
        r#"id="ixopay-transactionCallback""#,
        r#"href="/openapi/ixopay.json""#,
        r#"href="/openapi/monri.json""#,
        "<code>POST /api/v3/customerProfiles/{apiKey}/updateProfile</code>",
        "<code>customer.billingCity</code>",
        "<code>Idempotency-Key</code>",
        "<code>errors[].errorCode</code>",
        "<code>401</code>",
        "scopes customers payment-methods",
        r#"aria-current="page">API reference</a>"#,
    ] {
        assert!(html.contains(needle), "{needle} missing from /docs/api");
    }
    assert!(!html.contains("<script src=\"http"), "no CDN");
    // Every documented operation has its anchor on the page.
    for (name, doc) in [("ixopay", &docs().ixopay), ("monri", &docs().monri)] {
        for group in ["paths", "webhooks"] {
            for item in doc
                .get(group)
                .and_then(Value::as_object)
                .into_iter()
                .flatten()
                .map(|(_, v)| v)
            {
                for (method, op) in item.as_object().expect("item") {
                    if method == "parameters" {
                        continue;
                    }
                    let id = format!(
                        r#"id="{name}-{}""#,
                        op["operationId"].as_str().unwrap_or_default()
                    );
                    assert!(html.contains(&id), "{id}");
                }
            }
        }
    }
}
