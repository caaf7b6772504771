//! Idempotency-Key on the Transaction API (issue 15): a retry with the same key and body answers
//! the stored first answer (re-signed, `Idempotent-Replayed: true`) and charges nothing again;
//! another body is 422/1002; keys are per connector; concurrent retries make one transaction;
//! bad keys are refused; keys expire after 24 hours.

use base64::Engine;
use coffer::db::schema::{idempotency_keys as ik, transactions as t};
use coffer::gateway::signature::{self, BodyHash};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api_transactions::tokenize;
use crate::helpers::*;

const CT: &str = "application/json; charset=utf-8";
const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const OUTLET: (&str, &str) = ("outlet-api", "outlet-api-demo");
const SIGNED_SECRET: &str = "demo-signed-secret";

fn basic(creds: (&str, &str)) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", creds.0, creds.1))
    )
}

struct Reply {
    status: StatusCode,
    replayed: Option<String>,
    date: Option<String>,
    signature: Option<String>,
    bytes: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.bytes).unwrap_or(Value::Null)
    }
}

/// POSTs `body` to the Transaction API with `key` as Idempotency-Key (raw bytes), signed with
/// `secret` when given.
async fn post(
    app: &TestApp,
    api_key: &str,
    kind: &str,
    creds: (&str, &str),
    key: Option<&[u8]>,
    body: &str,
    secret: Option<&str>,
) -> Reply {
    let uri = format!("/api/v3/transaction/{api_key}/{kind}");
    let mut rb = app
        .client
        .post(app.url(&uri))
        .header("content-type", CT)
        .header("authorization", basic(creds))
        .body(body.to_string());
    if let Some(k) = key {
        rb = rb.header(
            "idempotency-key",
            reqwest::header::HeaderValue::from_bytes(k).expect("header value"),
        );
    }
    if let Some(secret) = secret {
        let date = signature::http_date(chrono::Utc::now());
        let sig = signature::sign(
            secret,
            "POST",
            body.as_bytes(),
            CT,
            &date,
            &uri,
            BodyHash::Sha512,
        );
        rb = rb.header("date", date).header("x-signature", sig);
    }
    let r = rb.send().await.expect("POST");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    Reply {
        status: r.status(),
        replayed: h("idempotent-replayed"),
        date: h("date"),
        signature: h("x-signature"),
        bytes: r.bytes().await.expect("body").to_vec(),
    }
}

fn mtid() -> String {
    format!("idem-{}", coffer::ids::random_hex(6))
}

fn debit_body(mtid: &str, token: &str, amount: &str) -> String {
    json!({"merchantTransactionId": mtid, "amount": amount, "currency": "EUR", "transactionToken": token})
        .to_string()
}

struct Shop {
    api_key: &'static str,
    public_key: &'static str,
    creds: (&'static str, &'static str),
}

const SHOP_CARDS: Shop = Shop {
    api_key: "demo-shop-cards",
    public_key: "demo-shop-public",
    creds: SHOP,
};
const OUTLET_CARDS: Shop = Shop {
    api_key: "demo-outlet-cards",
    public_key: "demo-outlet-public",
    creds: OUTLET,
};

/// Tokenizes a fresh card and debits it through `shop` with `key`.
async fn new_debit(
    app: &TestApp,
    shop: &Shop,
    key: Option<&[u8]>,
    id: &str,
    amount: &str,
) -> Reply {
    let token = tokenize(app, shop.public_key, "4111111111111111").await;
    let body = debit_body(id, &token, amount);
    post(app, shop.api_key, "debit", shop.creds, key, &body, None).await
}

/// POSTs a debit `body` with `key` to the demo shop's connector.
async fn shop_debit(app: &TestApp, key: &[u8], body: &str) -> Reply {
    post(app, "demo-shop-cards", "debit", SHOP, Some(key), body, None).await
}

/// A 422 in the API's error shape, errorCode 1002, naming the header.
fn assert_key_refused(r: &Reply) {
    let v = r.json();
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["errorCode"], 1002, "{v}");
    let message = v["errorMessage"].as_str().unwrap_or_default();
    assert!(message.contains("Idempotency-Key"), "{v}");
    assert_eq!(r.replayed, None);
}

/// Runs one query on the app's database.
fn query<T>(app: &TestApp, f: impl FnOnce(&mut coffer::db::DbConnection) -> QueryResult<T>) -> T {
    let db = app.db();
    let mut c = db.get().expect("conn");
    f(&mut c).expect("query")
}

/// Transactions of a merchantTransactionId.
fn rows_of(app: &TestApp, mtid: &str) -> i64 {
    query(app, |c| {
        t::table
            .filter(t::merchant_transaction_id.eq(mtid))
            .count()
            .get_result(c)
    })
}

/// Stored Idempotency-Keys (of every connector) spelled `key`.
fn keys_of(app: &TestApp, key: &str) -> i64 {
    query(app, |c| {
        ik::table.filter(ik::key.eq(key)).count().get_result(c)
    })
}

/// POSTs a signed debit `body` to the demo shop's signing connector.
async fn signed_debit(app: &TestApp, key: Option<&[u8]>, body: &str) -> Reply {
    let (api_key, secret) = ("demo-shop-signed", Some(SIGNED_SECRET));
    post(app, api_key, "debit", SHOP, key, body, secret).await
}

#[tokio::test]
async fn a_retry_with_the_same_key_replays_the_signed_first_answer_and_charges_once() {
    let app = TestApp::demo().await;
    let token = tokenize(&app, "demo-shop-signed-public", "4111111111111111").await;
    let id = mtid();
    let body = debit_body(&id, &token, "4.20");
    let key = b"order-4711 attempt".as_slice();
    let first = signed_debit(&app, Some(key), &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    assert_eq!(first.json()["success"], true, "{}", first.json());
    assert_eq!(first.replayed, None, "a first answer is not a replay");
    for _ in 0..2 {
        let again = signed_debit(&app, Some(key), &body).await;
        assert_eq!(again.status, first.status);
        assert_eq!(again.bytes, first.bytes, "the very same body");
        assert_eq!(again.replayed.as_deref(), Some("true"));
        let uri = "/api/v3/transaction/demo-shop-signed/debit";
        assert_eq!(
            signature::verify(
                SIGNED_SECRET,
                "POST",
                &again.bytes,
                CT,
                again.date.as_deref().expect("date"),
                uri,
                again.signature.as_deref().expect("signature"),
            ),
            Ok(BodyHash::Sha512),
            "a replay is signed like any answer"
        );
    }
    assert_eq!(rows_of(&app, &id), 1, "charged once");
    // The stored answer keeps a hash of the request, never the request itself.
    let db = app.db();
    let mut c = db.get().expect("conn");
    let (hash, response): (String, Option<String>) = ik::table
        .filter(ik::key.eq("order-4711 attempt"))
        .select((ik::body_hash, ik::response))
        .first(&mut c)
        .expect("row");
    assert_eq!(hash.len(), 64);
    assert!(!hash.contains(&token));
    assert_eq!(
        response.as_deref().map(str::as_bytes),
        Some(&first.bytes[..])
    );
    // Without the header the same body is a new request (a duplicate id, refused).
    let plain = signed_debit(&app, None, &body).await;
    assert_eq!(plain.replayed, None);
    assert_ne!(plain.bytes, first.bytes);
    assert_eq!(rows_of(&app, &id), 1);
}

#[tokio::test]
async fn the_same_key_with_another_request_is_refused_with_1002() {
    let app = TestApp::demo().await;
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let id = mtid();
    let key = b"key-mismatch".as_slice();
    let body = debit_body(&id, &token, "1.00");
    let first = shop_debit(&app, key, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let other = debit_body(&id, &token, "2.00");
    let r = shop_debit(&app, key, &other).await;
    assert_key_refused(&r);
    assert_eq!(r.replayed, None);
    // The same body to another transaction type is another request too.
    let r = post(
        &app,
        "demo-shop-cards",
        "preauthorize",
        SHOP,
        Some(key),
        &body,
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.json()["errorCode"], 1002);
    assert_eq!(rows_of(&app, &id), 1);
}

#[tokio::test]
async fn keys_belong_to_their_connector() {
    let app = TestApp::demo().await;
    let key = b"shared-key".as_slice();
    let shop_id = mtid();
    let a = new_debit(&app, &SHOP_CARDS, Some(key), &shop_id, "1.00").await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.json());
    let outlet_id = mtid();
    let b = new_debit(&app, &OUTLET_CARDS, Some(key), &outlet_id, "1.00").await;
    assert_eq!(b.status, StatusCode::OK, "{}", b.json());
    assert_eq!(b.json()["success"], true, "{}", b.json());
    assert_eq!(b.replayed, None, "another connector's key is another key");
    assert_ne!(a.json()["uuid"], b.json()["uuid"]);
    assert_eq!(rows_of(&app, &shop_id), 1);
    assert_eq!(rows_of(&app, &outlet_id), 1);
    assert_eq!(keys_of(&app, "shared-key"), 2);
}

#[tokio::test]
async fn concurrent_retries_make_one_transaction_and_get_the_same_answer() {
    let app = std::sync::Arc::new(TestApp::demo().await);
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let id = mtid();
    let body = debit_body(&id, &token, "7.77");
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let app = app.clone();
        let body = body.clone();
        set.spawn(async move {
            post(
                &app,
                "demo-shop-cards",
                "debit",
                SHOP,
                Some(b"concurrent-key"),
                &body,
                None,
            )
            .await
        });
    }
    let mut answers = Vec::new();
    while let Some(r) = set.join_next().await {
        answers.push(r.expect("task"));
    }
    let ok: Vec<&Reply> = answers
        .iter()
        .filter(|r| r.status == StatusCode::OK)
        .collect();
    assert!(!ok.is_empty());
    for r in &answers {
        assert!(
            r.status == StatusCode::OK || r.status == StatusCode::CONFLICT,
            "{} {}",
            r.status,
            r.json()
        );
    }
    assert!(
        ok.iter().all(|r| r.bytes == ok[0].bytes),
        "one answer for all"
    );
    assert_eq!(ok[0].json()["success"], true, "{}", ok[0].json());
    assert_eq!(
        ok.iter().filter(|r| r.replayed.is_none()).count(),
        1,
        "exactly one first answer"
    );
    assert_eq!(rows_of(&app, &id), 1, "exactly one transaction");
}

#[tokio::test]
async fn bad_keys_are_refused_with_the_api_error_body() {
    let app = TestApp::demo().await;
    let long = vec![b'k'; 256];
    let bad: [&[u8]; 4] = [b"", &long, b"tab\there", "caf\u{e9}".as_bytes()];
    for key in bad {
        let id = mtid();
        let r = new_debit(&app, &SHOP_CARDS, Some(key), &id, "1.00").await;
        assert_key_refused(&r);
        assert_eq!(rows_of(&app, &id), 0, "nothing charged");
    }
    // 255 characters are fine.
    let r = new_debit(&app, &SHOP_CARDS, Some(&[b'k'; 255]), &mtid(), "1.00").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    // The header twice is refused too.
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let r = app
        .client
        .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
        .header("content-type", CT)
        .header("authorization", basic(SHOP))
        .header("idempotency-key", "a")
        .header("idempotency-key", "b")
        .body(debit_body(&mtid(), &token, "1.00"))
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn a_refused_request_leaves_its_key_free() {
    let app = TestApp::demo().await;
    let id = mtid();
    let key = b"after-a-refusal".as_slice();
    let r = post(
        &app,
        "demo-shop-cards",
        "debit",
        SHOP,
        Some(key),
        &debit_body(&id, "not-a-token", "1.00"),
        None,
    )
    .await;
    assert!(r.status.is_client_error(), "{} {}", r.status, r.json());
    assert_eq!(keys_of(&app, "after-a-refusal"), 0, "nothing stored");
    let r = new_debit(&app, &SHOP_CARDS, Some(key), &id, "1.00").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.replayed, None);
    assert_eq!(rows_of(&app, &id), 1);
}

#[tokio::test]
async fn keys_expire_after_24_hours() {
    let app = TestApp::demo().await;
    let key = b"expiring-key".as_slice();
    let first = new_debit(&app, &SHOP_CARDS, Some(key), &mtid(), "1.00").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let db = app.db();
    let age = |hours: i64| {
        let mut c = db.get().expect("conn");
        let then = chrono::Utc::now().naive_utc() - chrono::Duration::hours(hours);
        diesel::update(ik::table.filter(ik::key.eq("expiring-key")))
            .set((
                ik::created_at.eq(then),
                ik::expires_at.eq(then + chrono::Duration::hours(24)),
            ))
            .execute(&mut c)
            .expect("age the key")
    };
    // 23 hours old: still replayed (another body is still refused).
    assert_eq!(age(23), 1);
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let second_id = mtid();
    let second_body = debit_body(&second_id, &token, "2.00");
    let r = shop_debit(&app, key, &second_body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // 25 hours old: the key is new again.
    assert_eq!(age(25), 1);
    let r = shop_debit(&app, key, &second_body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.replayed, None);
    assert_eq!(r.json()["success"], true, "{}", r.json());
    assert_eq!(rows_of(&app, &second_id), 1);
    assert_eq!(keys_of(&app, "expiring-key"), 1);
    // The background loop's purge deletes expired keys, and only those.
    assert_eq!(age(25), 1);
    let mut c = db.get().expect("conn");
    let fresh = new_debit(&app, &SHOP_CARDS, Some(b"fresh-key"), &mtid(), "1.00").await;
    assert_eq!(fresh.status, StatusCode::OK);
    let purged =
        coffer::payments::idempotency::purge_expired(&mut c, chrono::Utc::now()).expect("purge");
    assert_eq!(purged, 1);
    assert_eq!(keys_of(&app, "expiring-key"), 0);
    assert_eq!(keys_of(&app, "fresh-key"), 1);
}

/// One debit a client task sent with its key, and what came back (`None`: cut off by the kill).
struct Sent {
    key: String,
    mtid: String,
    body: String,
    answer: Option<(u16, Vec<u8>)>,
}

/// POSTs a debit with an Idempotency-Key to a separate coffer process.
async fn process_debit(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    body: &str,
) -> Option<(u16, Option<String>, Vec<u8>)> {
    let r = client
        .post(format!(
            "{base}/api/v3/transaction/{}/debit",
            crate::server::SHOP_KEY
        ))
        .header("content-type", CT)
        .header("authorization", basic(SHOP))
        .header("idempotency-key", key)
        .body(body.to_string())
        .send()
        .await
        .ok()?;
    let status = r.status().as_u16();
    let replayed = r
        .headers()
        .get("idempotent-replayed")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = r.bytes().await.ok()?.to_vec();
    Some((status, replayed, bytes))
}

/// Debits with a fresh key each until the process is gone.
async fn debit_until_killed(
    base: String,
    task: usize,
    sent: std::sync::Arc<std::sync::Mutex<Vec<Sent>>>,
    acked: std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let client = crate::server::client();
    for i in 0..500 {
        let Ok(token) = crate::server::tokenize(&client, &base, "4111111111111111").await else {
            return;
        };
        let key = format!("crash-{task}-{i}-{}", coffer::ids::random_hex(4));
        let id = mtid();
        let body = debit_body(&id, &token, "3.00");
        let answer = process_debit(&client, &base, &key, &body).await;
        let done = answer.is_none();
        if answer.as_ref().is_some_and(|a| a.0 == 200) {
            acked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
        if let Ok(mut s) = sent.lock() {
            s.push(Sent {
                key,
                mtid: id,
                body,
                answer: answer.map(|(s, _, b)| (s, b)),
            });
        }
        if done {
            return;
        }
    }
}

#[tokio::test]
async fn after_kill_9_every_retry_replays_or_runs_anew_and_nothing_is_charged_twice() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let backend = crate::server::Backend::new();
    let mut server = backend.start("idem").await;
    let sent = Arc::new(Mutex::new(Vec::new()));
    let acked = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..6)
        .map(|task| {
            tokio::spawn(debit_until_killed(
                server.addr.clone(),
                task,
                sent.clone(),
                acked.clone(),
            ))
        })
        .collect();
    let started = std::time::Instant::now();
    while acked.load(Ordering::SeqCst) < 12 {
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let delay = rand::RngExt::random_range(&mut rand::rng(), 0..200);
    tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    server.kill();
    for t in tasks {
        t.await.expect("task");
    }
    let server = backend.start("idem").await;
    let client = crate::server::client();
    let sent = std::mem::take(&mut *sent.lock().expect("sent"));
    let (mut replayed, mut anew) = (0, 0);
    for s in &sent {
        let (status, header, bytes) = process_debit(&client, &server.addr, &s.key, &s.body)
            .await
            .expect("an answer after the restart");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        match &s.answer {
            // Answered before the kill: the retry is that answer.
            Some((first_status, first)) => {
                assert_eq!((status, &bytes), (*first_status, first));
                assert_eq!(header.as_deref(), Some("true"));
                replayed += 1;
            }
            // Cut off: committed (replayed) or not at all (runs now, its token unspent).
            None if header.is_some() => replayed += 1,
            None => anew += 1,
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        assert_eq!(v["success"], true, "{v}");
    }
    let cut_off = sent.iter().filter(|s| s.answer.is_none()).count();
    eprintln!("after the kill: {replayed} replayed, {anew} run anew, {cut_off} had been cut off");
    assert!(replayed >= 12, "{replayed} replayed, {anew} anew");
    let db =
        coffer::db::DbPool::connect(&backend.settings("idem").database_url(), 2).expect("pool");
    let mut c = db.get().expect("conn");
    for s in &sent {
        let n: i64 = t::table
            .filter(t::merchant_transaction_id.eq(&s.mtid))
            .count()
            .get_result(&mut c)
            .expect("count");
        assert_eq!(n, 1, "exactly one transaction for {}", s.key);
    }
    let unfinished: i64 = ik::table
        .filter(ik::status.ne("done"))
        .count()
        .get_result(&mut c)
        .expect("count");
    assert_eq!(
        unfinished, 0,
        "no claim is ever committed without its answer"
    );
}

/// Holds an uncommitted in-flight claim of `key` on the demo shop's connector (as a request
/// still running would) until `release` receives, then rolls it back.
fn hold_claim(
    app: &TestApp,
    key: &str,
) -> (
    std::sync::mpsc::Receiver<()>,
    std::sync::mpsc::Sender<()>,
    std::thread::JoinHandle<()>,
) {
    use coffer::db::schema::connectors;
    let (held_tx, held) = std::sync::mpsc::channel();
    let (release, release_rx) = std::sync::mpsc::channel::<()>();
    let db = app.db();
    let key = key.to_string();
    let thread = std::thread::spawn(move || {
        let mut c = db.get().expect("conn");
        let r: Result<(), diesel::result::Error> = coffer::db::write_tx(&mut c, |c| {
            let connector_id: String = connectors::table
                .filter(connectors::api_key.eq("demo-shop-cards"))
                .select(connectors::id)
                .first(c)?;
            let now = chrono::Utc::now().naive_utc();
            diesel::insert_into(ik::table)
                .values((
                    ik::connector_id.eq(connector_id),
                    ik::key.eq(&key),
                    ik::body_hash.eq("0".repeat(64)),
                    ik::status.eq("in_flight"),
                    ik::created_at.eq(now),
                    ik::expires_at.eq(now + chrono::Duration::hours(24)),
                ))
                .execute(c)?;
            held_tx.send(()).expect("signal");
            let _ = release_rx.recv();
            Err(diesel::result::Error::RollbackTransaction)
        });
        assert!(r.is_err(), "rolled back");
    });
    (held, release, thread)
}

#[tokio::test]
async fn a_request_waits_for_a_running_one_with_its_key_and_runs_when_it_rolls_back() {
    let app =
        std::sync::Arc::new(TestApp::spawn_with(true, |s| s.idempotency_wait_ms = 20_000).await);
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let id = mtid();
    let body = debit_body(&id, &token, "5.00");
    let (held, release, holder) = hold_claim(&app, "held-key");
    held.recv().expect("claim held");
    let started = std::time::Instant::now();
    let waiting = {
        let app = app.clone();
        tokio::spawn(async move { shop_debit(&app, b"held-key", &body).await })
    };
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(
        !waiting.is_finished(),
        "the second request waits for the first"
    );
    release.send(()).expect("release");
    holder.join().expect("holder");
    let r = waiting.await.expect("task");
    assert!(started.elapsed() >= std::time::Duration::from_millis(600));
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.replayed, None, "the first rolled back: this one ran");
    assert_eq!(r.json()["success"], true, "{}", r.json());
    assert_eq!(rows_of(&app, &id), 1);
}

#[tokio::test]
async fn a_request_waiting_too_long_for_its_key_answers_409_on_postgresql() {
    if !postgres_only("on SQLite writers queue on the database's write lock without a bound") {
        return;
    }
    let app = TestApp::spawn_with(true, |s| s.idempotency_wait_ms = 800).await;
    let token = tokenize(&app, "demo-shop-public", "4111111111111111").await;
    let id = mtid();
    let body = debit_body(&id, &token, "5.00");
    let (held, release, holder) = hold_claim(&app, "slow-key");
    held.recv().expect("claim held");
    let started = std::time::Instant::now();
    let r = shop_debit(&app, b"slow-key", &body).await;
    assert!(started.elapsed() >= std::time::Duration::from_millis(800));
    release.send(()).expect("release");
    holder.join().expect("holder");
    let v = r.json();
    assert_eq!(r.status, StatusCode::CONFLICT, "{v}");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["errorCode"], 1000, "{v}");
    assert_eq!(rows_of(&app, &id), 0, "nothing charged");
    // Once the first is gone, the retry runs.
    let r = shop_debit(&app, b"slow-key", &body).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(rows_of(&app, &id), 1);
}

#[tokio::test]
async fn two_processes_on_one_postgresql_database_charge_a_key_once() {
    if !postgres_only("several processes share a PostgreSQL database only") {
        return;
    }
    let backend = crate::server::Backend::new();
    let a = backend.start("a").await;
    let b = backend.start("b").await;
    let client = crate::server::client();
    let mut ids = Vec::new();
    for i in 0..10 {
        let token = crate::server::tokenize(&client, &a.addr, "4111111111111111")
            .await
            .expect("token");
        let id = mtid();
        let body = debit_body(&id, &token, "2.50");
        let key = format!("two-processes-{i}");
        let (ra, rb) = tokio::join!(
            process_debit(&client, &a.addr, &key, &body),
            process_debit(&client, &b.addr, &key, &body)
        );
        let (ra, rb) = (ra.expect("answer of a"), rb.expect("answer of b"));
        assert_eq!((ra.0, rb.0), (200, 200));
        assert_eq!(ra.2, rb.2, "the same answer from both processes");
        assert_eq!(
            [&ra.1, &rb.1].iter().filter(|h| h.is_some()).count(),
            1,
            "one first answer, one replay"
        );
        ids.push(id);
    }
    let db = coffer::db::DbPool::connect(&backend.settings("a").database_url(), 2).expect("pool");
    let mut c = db.get().expect("conn");
    for id in &ids {
        let n: i64 = t::table
            .filter(t::merchant_transaction_id.eq(id))
            .count()
            .get_result(&mut c)
            .expect("count");
        assert_eq!(n, 1, "one transaction for {id}");
    }
}
