//! The [speed] issue: the configuration an API call reads is cached per process
//! (`vault::config_cache`) and stays coherent: a change made through the console is seen by the
//! very next API call, on the same process and on another process sharing the database; the
//! cache is dropped (its opened secrets with it) when the configuration version moves; every
//! table an API call's configuration comes from bumps that version in the same transaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use base64::Engine;
use coffer::startup::Application;
use coffer::vault::config_cache::ConfigCache;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::helpers::*;

const MONRI_TOKEN: &str = "acmeshopdemoauthenticitytoken00000000000";
const MONRI_KEY: &str = "demo-shop-merchant-key";

/// Another Coffer on the same database (its own pool and configuration cache), as a second
/// process would be.
struct Other {
    addr: String,
    config: Arc<ConfigCache>,
    access: coffer::audit::access::AccessLog,
}

async fn second_process(app: &TestApp) -> Other {
    let mut s = app.settings.clone();
    s.bind = "127.0.0.1:0".into();
    s.public_url = None;
    let a = Application::build(s, false).expect("second app on the same database");
    let addr = format!("http://127.0.0.1:{}", a.port());
    let config = a.config_cache();
    let access = a.access_log();
    tokio::spawn(a.run_until_stopped());
    Other {
        addr,
        config,
        access,
    }
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

/// getProfile on `base` as the demo shop, of a customer who has no profile.
async fn get_profile(base: &str) -> (StatusCode, Value) {
    get_profile_on(base, "speed-nobody").await
}

/// Monri `GET /v2/customers` on `base`, signed WP3-v2.1 as the demo shop.
async fn monri_list(base: &str) -> StatusCode {
    let path = "/v2/customers";
    let ts = chrono::Utc::now().timestamp();
    let mut h = Sha512::new();
    h.update(format!("{MONRI_KEY}{ts}{MONRI_TOKEN}{path}").as_bytes());
    let auth = format!("WP3-v2.1 {MONRI_TOKEN} {ts} {}", hex::encode(h.finalize()));
    client()
        .get(format!("{base}{path}"))
        .header("accept", "application/json")
        .header("authorization", auth)
        .send()
        .await
        .expect("Monri GET")
        .status()
}

fn no_container(v: &Value) -> bool {
    v["errorCode"] == json!(1007)
        || v.to_string()
            .contains("No customer profile container is assigned")
}

/// Saves Acme Shop Cards' base data through the console (the admin is signed in).
async fn save_shop_cards(app: &TestApp, ignore_global: bool, active: bool) {
    let id = connector_id(app, "Acme Shop Cards");
    // An unchecked box is not sent.
    let mut fields = vec![
        ("name", "Acme Shop Cards"),
        ("container_id", ""),
        ("confirmed", "yes"),
    ];
    if ignore_global {
        fields.push(("ignore_global", "on"));
    }
    if active {
        fields.push(("active", "on"));
    }
    let r = app.post_form(&format!("/connectors/{id}"), &fields).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "connector saved");
}

/// The id of the demo shop's API user `shop-api`.
fn shop_api_user(app: &TestApp) -> String {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::db::schema::api_users::table
        .filter(coffer::db::schema::api_users::username.eq("shop-api"))
        .select(coffer::db::schema::api_users::id)
        .first(&mut c)
        .expect("shop-api id")
}

fn version(app: &TestApp) -> i64 {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::models::config_version::current(&mut c).expect("version")
}

#[tokio::test]
async fn a_console_change_is_seen_by_the_next_api_call_on_the_same_process() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let (s, v) = get_profile(&app.addr).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert!(!no_container(&v), "{v}");
    // Cached now; ignoring the Global Setting leaves the connector without a container.
    let (s, _) = get_profile(&app.addr).await;
    assert_eq!(s, StatusCode::OK);
    save_shop_cards(&app, true, true).await;
    let (_, v) = get_profile(&app.addr).await;
    assert!(no_container(&v), "the very next call sees the change: {v}");
    save_shop_cards(&app, false, true).await;
    let (s, v) = get_profile(&app.addr).await;
    assert!(
        s == StatusCode::OK && !no_container(&v),
        "and the way back: {v}"
    );
    // Deactivating the connector: the next call (both APIs) is refused.
    assert_eq!(monri_list(&app.addr).await, StatusCode::OK);
    save_shop_cards(&app, false, false).await;
    assert_eq!(get_profile(&app.addr).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(monri_list(&app.addr).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_console_change_on_one_process_is_seen_by_the_next_api_call_on_another() {
    let app = TestApp::demo().await;
    let other = second_process(&app).await;
    app.login_ok("admin", "admin-demo").await;
    // Both processes have the configuration cached.
    for base in [&app.addr, &other.addr] {
        for _ in 0..2 {
            let (s, v) = get_profile(base).await;
            assert!(s == StatusCode::OK && !no_container(&v), "{v}");
        }
        assert_eq!(monri_list(base).await, StatusCode::OK);
    }
    assert!(
        !other.config.current().is_empty(),
        "the other process cached"
    );
    save_shop_cards(&app, true, true).await;
    let (_, v) = get_profile(&other.addr).await;
    assert!(no_container(&v), "the other process's next call: {v}");
    // The API user deactivated on the first process: refused on the other at once.
    let user = shop_api_user(&app);
    let r = app
        .post_form(&format!("/api-users/{user}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(get_profile(&other.addr).await.0, StatusCode::UNAUTHORIZED);
    save_shop_cards(&app, false, false).await;
    assert_eq!(monri_list(&other.addr).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_configuration_change_drops_the_cached_snapshot_and_its_secrets() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    assert_eq!(get_profile(&app.addr).await.0, StatusCode::OK);
    let before = app.config.current();
    let v = before.version();
    assert_eq!(v, version(&app), "keyed by the stored version");
    assert!(
        !before.is_empty(),
        "connector, API user and container cached"
    );
    let old = Arc::downgrade(&before);
    drop(before);
    assert_eq!(get_profile(&app.addr).await.0, StatusCode::OK);
    assert_eq!(
        app.config.current().version(),
        v,
        "no change, same snapshot"
    );
    assert!(old.upgrade().is_some(), "kept while nothing changed");
    save_shop_cards(&app, false, true).await;
    assert!(version(&app) > v, "the console's save bumped the version");
    assert_eq!(get_profile(&app.addr).await.0, StatusCode::OK);
    let now = app.config.current();
    assert_eq!(now.version(), version(&app));
    assert!(
        old.upgrade().is_none(),
        "the old snapshot (and the secrets opened in it, zeroized on drop) is gone"
    );
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// The tables an API call's configuration is read from: each has a trigger bumping the version.
const CONFIG_TABLES: &[&str] = &[
    "api_users",
    "connector_members",
    "connectors",
    "containers",
    "global_settings",
    "merchants",
    "tenants",
];

/// Every other table. A new table must be added to one of the two lists.
const OTHER_TABLES: &[&str] = &[
    "audit_log",
    "audit_chains",
    "audit_legacy_pending",
    "callback_attempts",
    "callbacks",
    "card_tokens",
    "config_version",
    "idempotency_keys",
    "instruments",
    "lifecycle_runs",
    "login_throttle",
    "monri_access_tokens",
    "reencrypt_cursors",
    "reencrypt_jobs",
    "payment_sessions",
    "tx_daily_counts",
    "profiles",
    "transactions",
    "user_recovery_codes",
    "user_two_factor",
    "users",
    "vault_keys",
];

#[tokio::test]
async fn every_configuration_table_bumps_the_version_in_the_writing_transaction() {
    let app = TestApp::demo().await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let pg = is_postgres();
    let tables: BTreeSet<String> = diesel::sql_query(if pg {
        "SELECT tablename::text AS name FROM pg_tables WHERE schemaname = 'public' \
         AND tablename NOT LIKE '\\_\\_diesel%'"
    } else {
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         AND name NOT LIKE '\\_\\_diesel%' ESCAPE '\\'"
    })
    .load::<Name>(&mut c)
    .expect("tables")
    .into_iter()
    .map(|n| n.name)
    .collect();
    let listed: BTreeSet<String> = CONFIG_TABLES
        .iter()
        .chain(OTHER_TABLES)
        .map(|s| s.to_string())
        .collect();
    assert_eq!(
        tables, listed,
        "classify every table: does an API call read its rows as configuration?"
    );
    let triggered: BTreeSet<String> = diesel::sql_query(if pg {
        "SELECT DISTINCT c.relname::text AS name FROM pg_trigger t \
         JOIN pg_class c ON c.oid = t.tgrelid JOIN pg_proc p ON p.oid = t.tgfoid \
         WHERE p.proname = 'coffer_bump_config_version'"
    } else {
        "SELECT DISTINCT tbl_name AS name FROM sqlite_master WHERE type = 'trigger' \
         AND sql LIKE '%config_version%'"
    })
    .load::<Name>(&mut c)
    .expect("triggers")
    .into_iter()
    .map(|n| n.name)
    .collect();
    let config: BTreeSet<String> = CONFIG_TABLES.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        triggered, config,
        "a bump trigger on each configuration table"
    );
    // Writes to each configuration table that has rows bump it; a profile count does not.
    let column = |t: &str| match t {
        "connector_members" => "member_connector_id",
        "global_settings" => "container_id",
        "api_users" => "username",
        _ => "name",
    };
    for t in CONFIG_TABLES {
        let v = coffer::models::config_version::current(&mut c).expect("v");
        let n = diesel::sql_query(format!("UPDATE {t} SET {0} = {0}", column(t)))
            .execute(&mut c)
            .expect("update");
        let after = coffer::models::config_version::current(&mut c).expect("v");
        if n > 0 {
            assert!(after > v, "{t}: an update bumps the version");
        }
    }
    let v = coffer::models::config_version::current(&mut c).expect("v");
    diesel::sql_query(
        "UPDATE containers SET profile_count = profile_count, instrument_count = instrument_count",
    )
    .execute(&mut c)
    .expect("count");
    assert_eq!(
        coffer::models::config_version::current(&mut c).expect("v"),
        v,
        "the profile and instrument counts are not configuration: registrations do not drop the cache"
    );
    // A rolled-back change leaves the version alone; a committed one moves it with its rows.
    let r: Result<(), diesel::result::Error> = c.transaction(|c| {
        diesel::sql_query("UPDATE tenants SET name = name || ' x'").execute(c)?;
        Err(diesel::result::Error::RollbackTransaction)
    });
    assert!(r.is_err());
    assert_eq!(
        coffer::models::config_version::current(&mut c).expect("v"),
        v
    );
}

/// getProfile of `ident` on the shop, answered 200.
async fn get_profile_of(app: &TestApp, ident: &str) -> Value {
    let r = app
        .client
        .post(app.url("/api/v3/customerProfiles/demo-shop-cards/getProfile"))
        .header("content-type", "application/json; charset=utf-8")
        .header("authorization", basic("shop-api", "shop-api-demo"))
        .body(json!({ "customerIdentification": ident }).to_string())
        .send()
        .await
        .expect("getProfile");
    assert_eq!(r.status(), StatusCode::OK);
    r.json().await.expect("json")
}

async fn statements_of<F: std::future::Future<Output = ()>>(app: &TestApp, call: F) -> u64 {
    let before = app.statements.get();
    call.await;
    app.statements.get() - before
}

/// The fewest statements of `n` runs of a warm call: the pool's counter also counts the
/// background loop's sweeps (expiry, purges, every 5 s), which only ever add to a run that they
/// overlap; on a loaded machine several runs in a row can overlap one, so take ten.
async fn fewest_statements<F, Fut>(app: &TestApp, n: usize, call: F) -> u64
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut fewest = u64::MAX;
    for _ in 0..n {
        fewest = fewest.min(statements_of(app, call()).await);
    }
    fewest
}

#[tokio::test]
async fn get_profile_and_monri_get_run_few_statements_once_the_configuration_is_cached() {
    // The callback worker polls the same pool: not during this test.
    let app = TestApp::spawn_with(true, |s| s.callback_poll_ms = 60_000).await;
    crate::api_profiles::seed_profile(&app, "Acme Shared Profiles", "Acme Shop Cards", "speed-1");
    let uuid: String = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::db::schema::profiles::table
            .filter(coffer::db::schema::profiles::customer_identification.eq("speed-1"))
            .select(coffer::db::schema::profiles::uuid)
            .first(&mut c)
            .expect("uuid")
    };
    let call = || async {
        let v = get_profile_of(&app, "speed-1").await;
        assert_eq!(v["success"], json!(true), "{v}");
    };
    let cold = statements_of(&app, call()).await;
    let warm = fewest_statements(&app, 10, call).await;
    let again = fewest_statements(&app, 10, call).await;
    // The profile with its instruments and the configuration version in one query, which
    // confirms the cached configuration (`config_cache::within_checked`); no ping of the pool's
    // connection on PostgreSQL either (it was given back moments ago).
    let expected = 1;
    assert_eq!(
        warm, expected,
        "getProfile, configuration cached (cold: {cold})"
    );
    assert_eq!(again, expected);
    assert!(
        cold > warm,
        "the first call reads the configuration: {cold}"
    );
    let monri = || async {
        let path = format!("/v2/customers/{uuid}");
        let ts = chrono::Utc::now().timestamp();
        let mut h = Sha512::new();
        h.update(format!("{MONRI_KEY}{ts}{MONRI_TOKEN}{path}").as_bytes());
        let auth = format!("WP3-v2.1 {MONRI_TOKEN} {ts} {}", hex::encode(h.finalize()));
        let r = app
            .client
            .get(app.url(&path))
            .header("authorization", auth)
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK);
    };
    let monri_cold = statements_of(&app, monri()).await;
    let monri_warm = fewest_statements(&app, 10, monri).await;
    // The customer with the configuration version, in one query.
    let expected = 1;
    assert_eq!(
        monri_warm, expected,
        "Monri GET customer (cold: {monri_cold})"
    );
    eprintln!(
        "statements per call: getProfile cold {cold}, warm {warm}; Monri GET cold {monri_cold}, warm {monri_warm}"
    );
}

/// getProfile of `ident` on `base` as the demo shop.
async fn get_profile_on(base: &str, ident: &str) -> (StatusCode, Value) {
    get_profile_at(
        &client(),
        base,
        "demo-shop-cards",
        ("shop-api", "shop-api-demo"),
        ident,
    )
    .await
}

fn reads_recorded(app: &TestApp, other: &Other, ident: &str) -> i64 {
    recorded(app, other, "profile.access.get", ident)
}

/// Access entries `action` of the profile `ident`, once both processes' queues are written.
fn recorded(app: &TestApp, other: &Other, action: &str, ident: &str) -> i64 {
    for q in [&app.access, &other.access] {
        assert!(q.flush(std::time::Duration::from_secs(10)), "flushed");
    }
    crate::api_transactions::db_count(
        app,
        &format!(
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = '{action}' \
             AND object_id IN (SELECT profile_guid FROM profiles \
             WHERE customer_identification = '{ident}')"
        ),
    )
}

/// Two Coffers on one database (the admin signed in on the first) and a profile `ident` of
/// Acme Shop Cards in Acme Shared Profiles.
async fn two_processes_with_profile(ident: &str) -> (TestApp, Other) {
    let app = TestApp::demo().await;
    let other = second_process(&app).await;
    app.login_ok("admin", "admin-demo").await;
    crate::api_profiles::seed_profile(&app, "Acme Shared Profiles", "Acme Shop Cards", ident);
    (app, other)
}

/// A Monri customer list runs on the configuration cached unchecked too; it lists several
/// profiles and no single query of it confirms the configuration, so the version is read before
/// its reads are recorded (`config_cache::may_record`). After a configuration change that leaves
/// the answer as it was, the stale run stops there and the list done again records each read
/// once, on this process and on another.
#[tokio::test]
async fn a_monri_list_on_a_stale_cache_records_each_read_once() {
    let (app, other) = two_processes_with_profile("speed-list").await;
    let action = "profile.access.monri";
    let mut expected = 0;
    for base in [&app.addr, &other.addr] {
        for _ in 0..2 {
            assert_eq!(monri_list(base).await, StatusCode::OK);
            expected += 1;
        }
    }
    assert_eq!(recorded(&app, &other, action, "speed-list"), expected);
    for base in [&other.addr, &app.addr] {
        let cached = other.config.current().version();
        // Saved as it was: the configuration version moves, the answer does not.
        save_shop_cards(&app, false, true).await;
        assert!(version(&app) > cached);
        assert_eq!(monri_list(base).await, StatusCode::OK);
        expected += 1;
        assert_eq!(
            recorded(&app, &other, action, "speed-list"),
            expected,
            "one read recorded for one list on a stale cache"
        );
    }
}

/// getProfile runs on the configuration cached unchecked and confirms it with the version its
/// profile query reads: when a console change made that cache stale (here the connector loses
/// its container, on this process and on another), the profile found through the stale
/// configuration is neither answered nor recorded as read; the call is done again on the
/// current configuration.
#[tokio::test]
async fn a_profile_found_through_a_stale_cache_is_neither_answered_nor_recorded() {
    let (app, other) = two_processes_with_profile("speed-stale").await;
    for base in [&app.addr, &other.addr] {
        for _ in 0..2 {
            let (s, v) = get_profile_on(base, "speed-stale").await;
            assert!(
                s == StatusCode::OK && v["profileExists"] == json!(true),
                "{v}"
            );
        }
    }
    let before = reads_recorded(&app, &other, "speed-stale");
    assert_eq!(before, 4, "each answered read is recorded");
    let cached = other.config.current().version();
    save_shop_cards(&app, true, true).await;
    for base in [&other.addr, &app.addr] {
        let (_, v) = get_profile_on(base, "speed-stale").await;
        assert!(no_container(&v), "the next call sees the change: {v}");
        assert!(v.get("paymentInstruments").is_none(), "{v}");
    }
    assert!(
        other.config.current().version() > cached,
        "the stale snapshot was replaced"
    );
    assert_eq!(
        reads_recorded(&app, &other, "speed-stale"),
        before,
        "the stale attempt recorded no read"
    );
}

/// A cached configuration that refuses a caller (an API user deactivated, then activated again
/// on another process) does not outlive the change: the refusal is checked against the stored
/// version before it is answered.
#[tokio::test]
async fn a_refusal_from_a_stale_cache_is_checked_before_it_is_answered() {
    let app = TestApp::demo().await;
    let other = second_process(&app).await;
    app.login_ok("admin", "admin-demo").await;
    let user = shop_api_user(&app);
    let set_active = |on: &'static str| {
        let (app, user) = (&app, user.clone());
        async move {
            let r = app
                .post_form(&format!("/api-users/{user}/active"), &[("active", on)])
                .await;
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
        }
    };
    assert_eq!(get_profile(&other.addr).await.0, StatusCode::OK);
    set_active("false").await;
    for _ in 0..2 {
        assert_eq!(get_profile(&other.addr).await.0, StatusCode::UNAUTHORIZED);
    }
    set_active("true").await;
    let (s, v) = get_profile(&other.addr).await;
    assert_eq!(s, StatusCode::OK, "the other process's next call: {v}");
}

/// Statements `f` ran on `db`'s connections.
async fn statements_on<T: Send + 'static>(
    db: &coffer::db::DbPool,
    f: impl FnOnce(&mut coffer::db::DbConnection) -> Result<T, coffer::error::ServiceError>
    + Send
    + 'static,
) -> (u64, T) {
    let before = db.statements.get();
    let v = db.run(f).await.expect("query");
    (db.statements.get() - before, v)
}

#[derive(QueryableByName)]
struct Pid {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    pid: i32,
}

fn backend_pid(c: &mut coffer::db::DbConnection) -> Result<i32, coffer::error::ServiceError> {
    let p: Pid = diesel::sql_query("SELECT pg_backend_pid() AS pid").get_result(c)?;
    Ok(p.pid)
}

fn one(c: &mut coffer::db::DbConnection) -> Result<(), coffer::error::ServiceError> {
    diesel::sql_query("SELECT 1").execute(c)?;
    Ok(())
}

/// The pool's liveness check (PostgreSQL): a connection that went back to the pool within
/// `ALIVE_BYPASS` is handed out without a ping; one idle for longer is pinged, so that a
/// connection the server closed meanwhile is replaced before a query meets it.
#[tokio::test]
async fn pooled_connections_are_pinged_only_after_idling_and_a_closed_one_is_replaced() {
    let app = TestApp::spawn_with(false, |s| s.callback_poll_ms = 60_000).await;
    let db = app.db();
    let _ = statements_on(&db, one).await; // the pool's first connection
    let (hot, ()) = statements_on(&db, one).await;
    assert_eq!(
        hot, 1,
        "a connection back from a query moments ago: no ping"
    );
    tokio::time::sleep(coffer::db::ALIVE_BYPASS + std::time::Duration::from_millis(100)).await;
    let (idle, ()) = statements_on(&db, one).await;
    let pinged = if is_postgres() { 2 } else { 1 };
    assert_eq!(
        idle, pinged,
        "an idle connection is pinged first (PostgreSQL)"
    );
    if !is_postgres() {
        return;
    }
    // The server closes the pooled connections; after the window the next query still works,
    // on a new connection.
    let (_, before) = statements_on(&db, backend_pid).await;
    let admin = app.db();
    admin
        .run(move |c| {
            diesel::sql_query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND pid <> pg_backend_pid()",
            )
            .execute(c)?;
            Ok(())
        })
        .await
        .expect("terminate");
    tokio::time::sleep(coffer::db::ALIVE_BYPASS + std::time::Duration::from_millis(100)).await;
    let (_, after) = statements_on(&db, backend_pid).await;
    assert_ne!(after, before, "a new server connection");
}

/// `DbPool::read` runs a SQLite read on the calling thread (no hand-off to a blocking thread);
/// on PostgreSQL it is `run`, on a blocking thread.
#[tokio::test]
async fn short_reads_run_on_the_calling_thread_on_sqlite_only() {
    let app = TestApp::spawn_with(false, |s| s.callback_poll_ms = 60_000).await;
    let db = app.db();
    let here = std::thread::current().id();
    let there = db
        .read(|c| {
            one(c)?;
            Ok(std::thread::current().id())
        })
        .await
        .expect("read");
    assert_eq!(here == there, !is_postgres(), "thread of the read");
    let off = app.db().with_inline_reads(false);
    let there = off
        .read(|_| Ok(std::thread::current().id()))
        .await
        .expect("read");
    assert_ne!(
        here, there,
        "COFFER_SQLITE_INLINE_READS=false: a blocking thread"
    );
}
