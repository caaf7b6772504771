//! The vault's keys in an external key manager (`COFFER_KMS=transit`), against a real OpenBao
//! server (`bao.rs`): no master key on disk or in the environment, the settings checked at
//! start-up, `coffer rotate-vault-key` rotating the Transit key, and an unreachable key manager
//! (Coffer serves what it holds, 503 for the rest, /healthz 200 with the detail, /readyz 503,
//! recovery without a restart). The seed flow (api_transactions.rs) and the crash test
//! (crash.rs) run in both modes too. And /readyz with pending migrations.

use std::time::{Duration, Instant};

use coffer::vault::keyring::Keyring;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::bao::{Switch, bao};
use crate::helpers::*;
use crate::server::{self, Backend, Reply, mtid, transaction};

fn answer(r: Reply) -> (StatusCode, Value) {
    match r {
        Reply::Answer(s, v) => (s, v),
        other => panic!("no answer: {other:?}"),
    }
}

/// Tokenizes a card and registers it with a debit; returns the `pt::` payment token.
async fn register(base: &str, customer: &str, pan: &str) -> String {
    let client = server::client();
    let card = server::tokenize(&client, base, pan)
        .await
        .unwrap_or_else(|r| panic!("tokenize: {r:?}"));
    let body = json!({"merchantTransactionId": mtid(), "amount": "9.99", "currency": "EUR",
                      "transactionToken": card, "withRegister": true,
                      "customerProfileData": {"customerIdentification": customer}});
    let (s, v) = answer(transaction(&client, base, "debit", &body).await);
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("payment token")
        .to_string()
}

/// A debit of a stored card (its `pt::` token).
async fn charge(base: &str, token: &str) -> (StatusCode, Value) {
    let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                      "transactionToken": token});
    answer(transaction(&server::client(), base, "debit", &body).await)
}

async fn json_of(app: &TestApp, path: &str) -> (StatusCode, Value) {
    let r = app.get(path).await;
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Every row of `vault_keys`: (id, wrapped, master_key_id).
fn vault_rows(settings: &coffer::config::Settings) -> Vec<(String, String, String)> {
    use coffer::db::schema::vault_keys::dsl::*;
    let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
    let mut c = db.get().expect("conn");
    vault_keys
        .select((id, wrapped, master_key_id))
        .load(&mut *c)
        .expect("vault_keys")
}

/// Every stored card opens with the keyring the settings make (from Transit).
fn every_card_opens(settings: &coffer::config::Settings) -> usize {
    use coffer::db::schema::instruments::dsl::*;
    let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
    let mut c = db.get().expect("conn");
    let keyring = Keyring::from_settings(&mut c, settings).expect("keyring");
    let rows: Vec<(String, String)> = instruments
        .select((id, vault_record))
        .load(&mut *c)
        .expect("instruments");
    for (iid, record) in &rows {
        let pan = keyring
            .open_string(&mut c, record, iid.as_bytes())
            .unwrap_or_else(|e| panic!("instrument {iid} does not open: {e}"));
        assert!(coffer::gateway::card::luhn_valid(&pan));
    }
    rows.len()
}

#[tokio::test]
async fn transit_mode_keeps_no_master_key_on_disk_or_in_the_environment() {
    let Some(bao) = bao("no master key") else {
        return;
    };
    let backend = Backend::transit(bao, &bao.addr);
    let server = backend.start("kms").await;
    let token = register(&server.addr, "kms-1", "4111111111111111").await;
    assert_eq!(charge(&server.addr, &token).await.0, StatusCode::OK);

    // No key file in the data dir (SQLite: only the database and the session key).
    let dir = backend.data_dir("kms");
    let files: Vec<String> = std::fs::read_dir(&dir)
        .expect("data dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!files.iter().any(|f| f.contains("vault")), "{files:?}");
    // No variable of the process holds a master key.
    let pid = server.pid().expect("pid");
    let environ = std::fs::read(format!("/proc/{pid}/environ")).expect("environ");
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("COFFER_KMS=transit"));
    assert!(!environ.contains("COFFER_VAULT_KEY"), "{environ}");
    // The database holds only Transit ciphertexts of the keys.
    let rows = vault_rows(&backend.settings("kms"));
    assert!(rows.len() >= 2, "{rows:?}");
    for (kid, wrapped, kek) in &rows {
        assert!(wrapped.starts_with("vault:v1:"), "{kid}: {wrapped}");
        assert!(kek.starts_with("transit:transit/coffer-"), "{kid}: {kek}");
    }
    // A keyring with a local master key cannot use them.
    let settings = backend.settings("kms");
    let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
    let mut c = db.get().expect("conn");
    let err = Keyring::load(&mut c, coffer::gateway::vault::MasterKey::generate())
        .expect_err("a local master key opens nothing here")
        .to_string();
    assert!(err.contains("COFFER_KMS=transit"), "{err}");
    assert_eq!(every_card_opens(&settings), 1);
}

/// Transit mode's settings are checked before anything is opened; each refusal names the
/// variable. Needs no key manager.
#[tokio::test]
async fn transit_settings_are_checked_at_start_up() {
    let backend = Backend::new();
    let run = |env: &[(&str, &str)]| {
        let mut cmd = backend.command("cfg");
        cmd.args(["serve"])
            .env("COFFER_BIND", "127.0.0.1:0")
            .env_remove("COFFER_VAULT_KEY")
            .env("COFFER_KMS", "transit");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.output().expect("run coffer");
        assert!(!out.status.success(), "coffer started with {env:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let addr = ("COFFER_TRANSIT_ADDR", "http://127.0.0.1:9");
    let key = ("COFFER_TRANSIT_KEY", "coffer");
    let token = ("COFFER_TRANSIT_TOKEN", "t0ken-never-printed");
    let err = run(&[key, token]);
    assert!(err.contains("needs COFFER_TRANSIT_ADDR"), "{err}");
    let err = run(&[addr, token]);
    assert!(err.contains("needs COFFER_TRANSIT_KEY"), "{err}");
    let err = run(&[addr, key]);
    assert!(err.contains("COFFER_TRANSIT_TOKEN"), "{err}");
    let err = run(&[("COFFER_TRANSIT_ADDR", "ftp://x"), key, token]);
    assert!(err.contains("COFFER_TRANSIT_ADDR must be"), "{err}");
    let err = run(&[addr, ("COFFER_TRANSIT_KEY", "a/../b"), token]);
    assert!(err.contains("COFFER_TRANSIT_KEY may contain"), "{err}");
    let err = run(&[addr, key, token, ("COFFER_VAULT_KEY", &"ab".repeat(32))]);
    assert!(err.contains("Unset COFFER_VAULT_KEY"), "{err}");
    let err = run(&[
        addr,
        key,
        ("COFFER_TRANSIT_TOKEN_FILE", "/nonexistent/token"),
    ]);
    assert!(
        err.contains("COFFER_TRANSIT_TOKEN_FILE /nonexistent/token"),
        "{err}"
    );
    // A vault with no keys yet cannot start without its key manager (nothing to serve).
    let err = run(&[addr, key, token]);
    assert!(err.contains("cannot create the vault's mac key"), "{err}");
    assert!(!err.contains("t0ken-never-printed"), "{err}");
    assert!(
        !backend.data_dir("cfg").join("vault.key").exists(),
        "no master key file in transit mode"
    );
}

#[tokio::test]
async fn rotate_vault_key_in_transit_mode_rotates_the_transit_key_and_records_still_open() {
    let Some(bao) = bao("rotation in transit mode") else {
        return;
    };
    let backend = Backend::transit(bao, &bao.addr);
    let mut server = backend.start("rot").await;
    let token = register(&server.addr, "rot-1", "5555555555554444").await;
    server.terminate();
    let before = vault_rows(&backend.settings("rot"));

    let out = backend
        .command("rot")
        .arg("rotate-vault-key")
        .output()
        .expect("rotate-vault-key");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!("rewrapped {} vault keys", before.len())),
        "{text}"
    );
    assert!(text.contains("version v2"), "{text}");
    // A new platform data key; the re-encryption that follows moved every record off the old
    // one, which is retired.
    assert!(text.contains("Re-encryption done"), "{text}");
    assert!(text.contains("Retired 1 data key"), "{text}");
    let after = vault_rows(&backend.settings("rot"));
    assert_eq!(after.len(), before.len(), "one key in, one out");
    assert!(
        after.iter().any(|r| !before.iter().any(|b| b.0 == r.0)),
        "a new data key"
    );
    for (kid, wrapped, _) in &after {
        assert!(wrapped.starts_with("vault:v2:"), "{kid}: {wrapped}");
    }
    // The Transit key has a second version.
    let key = backend.settings("rot").transit_key.expect("key");
    let (_, body) = bao
        .http("GET", &format!("/v1/transit/keys/{key}"), None)
        .expect("key");
    let v: Value = serde_json::from_str(&body).expect("json");
    assert_eq!(v["data"]["latest_version"], 2, "{v}");
    // --generate makes no sense here.
    let out = backend
        .command("rot")
        .args(["rotate-vault-key", "--generate"])
        .output()
        .expect("rotate-vault-key --generate");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("neither COFFER_NEW_VAULT_KEY nor --generate")
    );

    // Records sealed before the rotation open, new ones seal under the new data key.
    let server = backend.start("rot").await;
    assert_eq!(charge(&server.addr, &token).await.0, StatusCode::OK);
    register(&server.addr, "rot-2", "4242424242424242").await;
    assert_eq!(every_card_opens(&backend.settings("rot")), 2);
}

#[tokio::test]
async fn an_unreachable_key_manager_leaves_coffer_serving_what_it_holds_and_answers_503_for_the_rest()
 {
    let Some(bao) = bao("key manager down") else {
        return;
    };
    let switch = Switch::start(bao).await;
    let key = bao.new_key();
    let first = TestApp::spawn_with(true, |s| bao.apply(s, &switch.addr, &key)).await;
    let token = register(&first.addr, "down-1", "4111111111111111").await;
    let (s, v) = json_of(&first, "/readyz").await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("ready")), "{v}");

    // Down: the keys already unwrapped keep working; /healthz 200, /readyz 503.
    switch.set_down(true);
    let (s, v) = charge(&first.addr, &token).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = json_of(&first, "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["problems"].to_string().contains("key manager (transit)"),
        "{v}"
    );
    let (s, v) = json_of(&first, "/healthz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["keys"]["manager"], "transit", "{v}");
    assert_eq!(v["keys"]["state"], "degraded", "{v}");

    // A second process starting while it is down: it starts and serves, and whatever needs a
    // key answers 503 with each API's error shape.
    let (dir, url) = (
        first.settings.data_dir.clone(),
        first.settings.database_url.clone(),
    );
    let second = TestApp::spawn_with(true, |s| {
        s.data_dir = dir;
        s.database_url = url;
        s.session_key = first.settings.session_key.clone();
        bao.apply(s, &switch.addr, &key);
    })
    .await;
    let (s, v) = json_of(&second, "/healthz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["status"], "ok");
    assert_eq!(v["keys"]["state"], "unavailable", "{v}");
    assert!(
        v["keys"]["detail"]
            .as_str()
            .unwrap_or("")
            .contains("key manager (transit)"),
        "{v}"
    );
    let (s, v) = json_of(&second, "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    let client = server::client();
    match server::tokenize(&client, &second.addr, "4242424242424242").await {
        Err(Reply::Answer(s, v)) => {
            assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
            assert_eq!(v["success"], false);
            assert_eq!(v["errorCode"], 3003, "{v}");
            assert!(
                v["errorMessage"]
                    .as_str()
                    .unwrap_or("")
                    .contains("key manager"),
                "{v}"
            );
        }
        other => panic!("tokenize while the key manager is down: {other:?}"),
    }
    let (s, v) = charge(&second.addr, &token).await;
    assert_eq!(
        (s, &v["errorCode"]),
        (StatusCode::SERVICE_UNAVAILABLE, &json!(3003)),
        "{v}"
    );
    // Monri: its error shape.
    let r = client
        .post(second.url("/v2/oauth"))
        .header("content-type", "application/json; charset=utf-8")
        .body(
            json!({"client_id": coffer::console::demo::DEMO_MONRI_AUTHENTICITY_TOKEN,
                   "client_secret": coffer::console::demo::DEMO_MONRI_MERCHANT_KEY,
                   "grant_type": "client_credentials", "scopes": ["customers"]})
            .to_string(),
        )
        .send()
        .await
        .expect("oauth");
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["status"], "error", "{v}");
    assert!(
        v["message"].as_str().unwrap_or("").contains("key manager"),
        "{v}"
    );
    // The console: a message where a key is needed (two-factor setup seals a secret).
    second.login_ok("admin", "admin-demo").await;
    let r = second.post_form("/account/two-factor/setup", &[]).await;
    let status = r.status();
    let page = r.text().await.expect("page");
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{page}");
    assert!(page.contains("Key manager unavailable"), "{page}");
    assert!(page.contains("Nothing was changed"), "{page}");

    // Back up: the second process recovers without a restart.
    switch.set_down(false);
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if server::tokenize(&client, &second.addr, "4242424242424242")
            .await
            .is_ok()
        {
            break;
        }
        assert!(Instant::now() < until, "no recovery within 15 s");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (s, v) = charge(&second.addr, &token).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let (s, v) = json_of(&second, "/readyz").await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (_, v) = json_of(&second, "/healthz").await;
    assert_eq!(v["keys"]["state"], "ok", "{v}");
}

/// /readyz: 200 on a ready vault (local mode), 503 naming the migrations while some are
/// pending; /healthz stays 200.
#[tokio::test]
async fn readyz_answers_503_while_migrations_are_pending() {
    let app = TestApp::demo().await;
    let (s, v) = json_of(&app, "/readyz").await;
    assert_eq!((s, &v["status"]), (StatusCode::OK, &json!("ready")), "{v}");
    let (s, v) = json_of(&app, "/healthz").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v["keys"],
        json!({"manager": "local", "state": "ok", "missing_keys": 0})
    );
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::sql_query(
            "DELETE FROM __diesel_schema_migrations WHERE version = \
             (SELECT MAX(version) FROM __diesel_schema_migrations)",
        )
        .execute(&mut *c)
        .expect("forget the newest migration");
    }
    let (s, v) = json_of(&app, "/readyz").await;
    assert_eq!(s, StatusCode::SERVICE_UNAVAILABLE, "{v}");
    assert!(
        v["problems"]
            .to_string()
            .contains("1 database migrations are pending"),
        "{v}"
    );
    assert_eq!(json_of(&app, "/healthz").await.0, StatusCode::OK);
}
