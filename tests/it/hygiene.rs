//! Storage hygiene ([rules] 6, 7 and 9): an erasure leaves no readable byte of the erased data
//! in the SQLite files by the time it answers, expired card tokens are purged by the background
//! loop and live `COFFER_CARD_TOKEN_MINUTES`, and the data dir Coffer creates, with every file
//! in it, is private to Coffer's user.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use coffer::db::schema::{card_tokens, instruments, profiles};
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::helpers::*;

const CT: &str = "application/json; charset=utf-8";
const MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const MONRI_KEY: &str = "demo-shop-merchant-key";

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// POSTs JSON to an IXOPAY API path as the demo shop's API user.
async fn ixopay(app: &TestApp, path: &str, body: Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(path))
        .header("content-type", CT)
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

async fn tokenize(app: &TestApp, number: &str) -> String {
    let r = app
        .client
        .post(app.url("/api/v3/paymentjs/demo-shop-public/tokenize"))
        .json(
            &json!({"cardHolder": "Ann Smith", "number": number, "cvv": "123",
                      "month": "12", "year": "2030"}),
        )
        .send()
        .await
        .expect("tokenize");
    assert_eq!(r.status(), StatusCode::OK);
    let v: Value = r.json().await.expect("json");
    v["token"].as_str().expect("token").to_string()
}

/// A customer with a distinctive email and address, and the markers to look for.
fn customer(tag: &str) -> (Value, Vec<String>) {
    let email = format!("{tag}.wislawa@erasure-example.org");
    let street = format!("Ulica Marszalkowska {tag} 77a");
    let city = format!("Bialystok-{tag}-Gora");
    let c = json!({"firstName": "Wislawa", "lastName": "Szymborska", "email": email,
                   "billingAddress1": street, "billingCity": city, "billingCountry": "PL"});
    (c, vec![email, street, city])
}

/// Registers `number` into a new profile `ident` with `customer` (debit withRegister) and
/// returns the profile's guid and the instrument's payment token.
async fn register(app: &TestApp, ident: &str, number: &str, customer: Value) -> (String, String) {
    let card = tokenize(app, number).await;
    let body = json!({
        "merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
        "amount": "9.99", "currency": "EUR", "transactionToken": card, "withRegister": true,
        "customer": customer,
        "customerProfileData": {"customerIdentification": ident, "markAsPreferred": true}
    });
    let (s, v) = ixopay(app, "/api/v3/transaction/demo-shop-cards/debit", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    let guid = v["customerProfileData"]["profileGuid"]
        .as_str()
        .expect("guid");
    let pt = v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("pt");
    (guid.to_string(), pt.to_string())
}

/// (profile id, Monri uuid) of the profile `guid`.
fn profile_ids(app: &TestApp, guid: &str) -> (String, String) {
    let db = app.db();
    let mut c = db.get().expect("conn");
    profiles::table
        .filter(profiles::profile_guid.eq(guid))
        .select((profiles::id, profiles::uuid))
        .first(&mut *c)
        .expect("profile")
}

/// A Monri call as the demo shop, with the WP3-v2.1 digest.
async fn monri(app: &TestApp, method: reqwest::Method, path: &str) -> (StatusCode, Value) {
    let ts = chrono::Utc::now().timestamp();
    let mut h = Sha512::new();
    h.update(format!("{MONRI_KEY}{ts}{MONRI_TOKEN}{path}").as_bytes());
    let auth = format!("WP3-v2.1 {MONRI_TOKEN} {ts} {}", hex::encode(h.finalize()));
    let r = app
        .client
        .request(method, app.url(path))
        .header("content-type", "application/json")
        .header("authorization", auth)
        .send()
        .await
        .expect("monri");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Which `markers` can be read in the database *as it is now*. SQLite: the raw bytes of every
/// file in the data dir (`coffer.db`, `-wal`, `-shm`), with no checkpoint first: what the
/// erasure itself left. PostgreSQL: every row of every table as text.
fn readable(app: &TestApp, markers: &[String]) -> Vec<String> {
    let mut found = vec![];
    if is_postgres() {
        #[derive(diesel::QueryableByName)]
        struct T {
            #[diesel(sql_type = diesel::sql_types::Text)]
            tablename: String,
        }
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let db = app.db();
        let mut c = db.get().expect("conn");
        let tables: Vec<T> = diesel::sql_query(
            "SELECT tablename::text AS tablename FROM pg_tables WHERE schemaname = 'public'",
        )
        .load(&mut *c)
        .expect("tables");
        assert!(tables.len() > 10);
        for t in tables {
            for m in markers {
                let n: N = diesel::sql_query(format!(
                    "SELECT COUNT(*) AS n FROM \"{}\" t WHERE t::text LIKE '%{m}%'",
                    t.tablename
                ))
                .get_result(&mut *c)
                .expect("count");
                if n.n > 0 {
                    found.push(format!("{m} in {}", t.tablename));
                }
            }
        }
    } else {
        let mut scanned = 0;
        for entry in std::fs::read_dir(&app.settings.data_dir).expect("data dir") {
            let path = entry.expect("entry").path();
            let bytes = std::fs::read(&path).expect("read");
            scanned += bytes.len();
            for m in markers {
                if bytes.windows(m.len()).any(|w| w == m.as_bytes()) {
                    found.push(format!("{m} in {}", path.display()));
                }
            }
        }
        assert!(scanned > 10_000, "the database files were read");
    }
    found
}

/// Registers a customer `tag`, checks its data is readable, runs `erase` and checks that none
/// of it (nor the card number) is readable any more when the erasure has answered.
async fn erase_and_scan<F, Fut>(tag: &str, erase: F)
where
    F: FnOnce(TestApp, String) -> Fut,
    Fut: std::future::Future<Output = TestApp>,
{
    let app = TestApp::demo().await;
    let (c, mut markers) = customer(tag);
    let (guid, _) = register(&app, &format!("erase-{tag}"), "4111111111111111", c).await;
    // The scan does see the data while the customer exists (so it can fail).
    assert!(readable(&app, &markers).len() >= 3, "markers are stored");
    let app = erase(app, guid).await;
    markers.push("4111111111111111".into());
    assert_eq!(readable(&app, &markers), Vec::<String>::new());
}

#[tokio::test]
async fn monri_delete_leaves_no_erased_byte_in_the_database_files() {
    erase_and_scan("monri", |app, guid| async move {
        let (_, uuid) = profile_ids(&app, &guid);
        let (s, v) = monri(
            &app,
            reqwest::Method::DELETE,
            &format!("/v2/customers/{uuid}"),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["deleted"], true, "{v}");
        app
    })
    .await;
}

#[tokio::test]
async fn ixopay_delete_profile_leaves_no_erased_byte_in_the_database_files() {
    erase_and_scan("ixopay", |app, guid| async move {
        let (s, v) = ixopay(
            &app,
            "/api/v3/customerProfiles/demo-shop-cards/deleteProfile",
            json!({"profileGuid": guid}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["success"], true, "{v}");
        app
    })
    .await;
}

#[tokio::test]
async fn console_profile_delete_leaves_no_erased_byte_in_the_database_files() {
    erase_and_scan("console", |app, guid| async move {
        let (pid, _) = profile_ids(&app, &guid);
        app.login_ok("admin", "admin-demo").await;
        let r = app.post_form(&format!("/profiles/{pid}/delete"), &[]).await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            app.get_html(&format!("/profiles/{pid}")).await.0,
            StatusCode::NOT_FOUND
        );
        app
    })
    .await;
}

#[tokio::test]
async fn deregister_leaves_no_byte_of_the_sealed_card_in_the_database_files() {
    let app = TestApp::demo().await;
    let (c, _) = customer("dereg");
    let (_, pt) = register(&app, "erase-dereg", "5555555555554444", c).await;
    let sealed: String = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        instruments::table
            .filter(instruments::payment_token.eq(&pt))
            .select(instruments::vault_record)
            .first(&mut *c)
            .expect("instrument")
    };
    // A long piece of the sealed card is in the files now. (The card's fingerprint, holder and
    // masked number stay: they are in the payment's returnData, kept as the merchant's record.)
    let markers = vec![sealed[sealed.len() - 40..].to_string()];
    assert_eq!(readable(&app, &markers).len(), 1, "markers are stored");
    let body = json!({"merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
                      "transactionToken": pt});
    let (s, v) = ixopay(&app, "/api/v3/transaction/demo-shop-cards/deregister", body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    let mut all = markers.clone();
    all.push("5555555555554444".into());
    assert_eq!(readable(&app, &all), Vec::<String>::new());
}

/// A reader holding a snapshot from before the erasure keeps the WAL from being truncated:
/// the scrub waits for it (briefly) and then truncates.
#[tokio::test]
async fn the_scrub_waits_for_a_reader_holding_an_old_snapshot() {
    use diesel::connection::SimpleConnection;
    if is_postgres() {
        // A no-op there: nothing to wait for.
        let app = TestApp::empty().await;
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::db::scrub_after_erasure(&mut c).expect("no-op on PostgreSQL");
        return;
    }
    let app = TestApp::demo().await;
    let wal = app.settings.data_dir.join("coffer.db-wal");
    let db = app.db();
    let mut reader = db.get().expect("reader");
    reader
        .batch_execute("BEGIN; SELECT COUNT(*) FROM profiles;")
        .expect("read snapshot");
    let (c, _) = customer("snapshot");
    register(&app, "erase-snapshot", "4111111111111111", c).await;
    assert!(std::fs::metadata(&wal).expect("wal").len() > 0);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(400));
        reader.batch_execute("COMMIT;").expect("end of the read");
    });
    let started = Instant::now();
    let mut c = db.get().expect("conn");
    coffer::db::scrub_after_erasure(&mut c).expect("scrub");
    let waited = started.elapsed();
    release.join().expect("reader thread");
    assert!(waited >= Duration::from_millis(300), "waited {waited:?}");
    assert_eq!(std::fs::metadata(&wal).expect("wal").len(), 0, "truncated");
    // Not inside a transaction: it would hold the write lock the checkpoint waits for.
    c.batch_execute("BEGIN;").expect("begin");
    assert!(coffer::db::scrub_after_erasure(&mut c).is_err());
    c.batch_execute("ROLLBACK;").expect("rollback");
}

// ---------- 7: expired card tokens ----------

fn token_count(app: &TestApp, token: &str) -> i64 {
    let db = app.db();
    let mut c = db.get().expect("conn");
    card_tokens::table
        .filter(card_tokens::token.eq(token))
        .count()
        .get_result(&mut *c)
        .expect("count")
}

#[tokio::test]
async fn expired_card_tokens_are_purged_by_the_background_loop_without_a_tokenize_call() {
    let app = TestApp::demo().await;
    let expired = tokenize(&app, "4111111111111111").await;
    let live = tokenize(&app, "5555555555554444").await;
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let past = chrono::Utc::now().naive_utc() - chrono::Duration::seconds(1);
        diesel::update(card_tokens::table.filter(card_tokens::token.eq(&expired)))
            .set(card_tokens::expires_at.eq(past))
            .execute(&mut *c)
            .expect("expire");
    }
    let started = Instant::now();
    while token_count(&app, &expired) == 1 {
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the expired token is still stored"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(token_count(&app, &live), 1, "unexpired tokens stay");
}

/// `coffer` (the binary) with `env` set and a fresh data dir; returns (exit success, output).
fn run_coffer(args: &[&str], data_dir: &Path, env: &[(&str, &str)]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("COFFER_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("COFFER_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run coffer");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn coffer_card_token_minutes_must_be_positive_and_sane() {
    let dir = tempfile::tempdir().expect("tempdir");
    for bad in ["0", "-5", "100000", "soon"] {
        let (ok, out) = run_coffer(
            &["migrate"],
            &dir.path().join("d"),
            &[("COFFER_CARD_TOKEN_MINUTES", bad)],
        );
        assert!(!ok, "COFFER_CARD_TOKEN_MINUTES={bad} accepted: {out}");
        assert!(out.contains("card-token-minutes"), "{out}");
    }
    let (ok, out) = run_coffer(
        &["migrate"],
        &dir.path().join("d"),
        &[("COFFER_CARD_TOKEN_MINUTES", "45")],
    );
    assert!(ok, "{out}");
}

#[tokio::test]
async fn card_tokens_live_coffer_card_token_minutes_and_older_ones_are_refused() {
    let backend = crate::server::Backend::new();
    let p = backend
        .start_with("a", &[("COFFER_CARD_TOKEN_MINUTES", "2")])
        .await;
    let client = crate::server::client();
    let Ok(token) = crate::server::tokenize(&client, &p.addr, "4111111111111111").await else {
        panic!("no token");
    };
    let db = coffer::db::DbPool::connect(&backend.settings("a").database_url(), 1).expect("db");
    let mut c = db.get().expect("conn");
    let (created, expires): (chrono::NaiveDateTime, chrono::NaiveDateTime) = card_tokens::table
        .find(&token)
        .select((card_tokens::created_at, card_tokens::expires_at))
        .first(&mut *c)
        .expect("token row");
    assert_eq!(expires - created, chrono::Duration::minutes(2));
    // Issued three minutes ago: older than the lifetime (not than the default 30 minutes).
    let shift = chrono::Duration::minutes(3);
    diesel::update(card_tokens::table.find(&token))
        .set((
            card_tokens::created_at.eq(created - shift),
            card_tokens::expires_at.eq(expires - shift),
        ))
        .execute(&mut *c)
        .expect("age the token");
    let body = json!({"merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
                      "amount": "9.99", "currency": "EUR", "transactionToken": token});
    let r = client
        .post(p.url("/api/v3/transaction/demo-shop-cards/debit"))
        .header("content-type", CT)
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(body.to_string())
        .send()
        .await
        .expect("debit");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], false, "{v}");
    assert_eq!(v["errorCode"], 1002, "{v}");
    assert_eq!(
        v["errorMessage"],
        coffer::payments::card_tokens::INVALID_TOKEN_MESSAGE,
        "{v}"
    );
}

// ---------- 9: file modes ----------

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .expect("metadata")
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_data_dir_coffer_creates_is_0700_and_every_file_in_it_0600() {
    let app = TestApp::spawn_with(true, |s| {
        s.data_dir = s.data_dir.join("new-parent").join("data");
    })
    .await;
    // A write, so that the WAL has content.
    let (c, _) = customer("modes");
    register(&app, "modes", "4111111111111111", c).await;
    let dir = &app.settings.data_dir;
    assert_eq!(mode(dir), 0o700, "{}", dir.display());
    let parent = dir.parent().expect("parent");
    assert_eq!(mode(parent), 0o700, "{}", parent.display());
    let mut names = vec![];
    for entry in std::fs::read_dir(dir).expect("data dir") {
        let path = entry.expect("entry").path();
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        names.push(
            path.file_name()
                .expect("name")
                .to_string_lossy()
                .into_owned(),
        );
    }
    names.sort();
    if is_postgres() {
        // Keys come from the environment; nothing is kept in the data dir.
        assert!(names.is_empty(), "{names:?}");
    } else {
        assert_eq!(
            names,
            [
                "coffer.db",
                "coffer.db-shm",
                "coffer.db-wal",
                "session.key",
                "vault.key"
            ]
        );
        let wal = dir.join("coffer.db-wal");
        assert!(std::fs::metadata(&wal).expect("wal").len() > 0);
    }
}

#[tokio::test]
async fn an_existing_data_dir_readable_by_others_gets_a_warning_at_start() {
    let root = tempfile::tempdir().expect("tempdir");
    let pg = fresh_pg();
    let mut env = vec![];
    if let Some((url, _)) = &pg {
        env.push(("COFFER_DATABASE_URL", url.as_str()));
    }
    let open = root.path().join("open");
    std::fs::create_dir(&open).expect("dir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (ok, out) = run_coffer(&["migrate"], &open, &env);
    assert!(ok, "{out}");
    assert!(
        out.contains("WARN") && out.contains("readable or writable by other users"),
        "{out}"
    );
    // A private one: no warning.
    let private = root.path().join("private");
    let (ok, out) = run_coffer(&["migrate"], &private, &env);
    assert!(ok, "{out}");
    assert_eq!(mode(&private), 0o700);
    assert!(!out.contains("WARN"), "{out}");
    let (ok, out) = run_coffer(&["migrate"], &private, &env);
    assert!(ok && !out.contains("WARN"), "{out}");
}
