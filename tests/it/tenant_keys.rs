//! One key per root tenant, and erasure by key destruction (issue [keys]): each root tenant's
//! records are sealed under data keys of its own; a platform admin erases a root tenant with
//! everything under it after typing its name; in transit mode that destroys the tenant's Transit
//! key first, so that a backup of the database taken before cannot open its cards either.

use coffer::vault::keyring::Keyring;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::api_transactions::{GLOBEX, SHOP, debit, tokenize, tx};
use crate::helpers::*;

/// Registers a card with a debit; returns the `pt::` payment token.
pub(crate) async fn register(
    app: &TestApp,
    public: &str,
    api_key: &str,
    creds: (&str, &str),
    who: &str,
) -> String {
    let card = tokenize(app, public, "4111111111111111").await;
    let body = debit(
        &card,
        json!({"withRegister": true, "customerProfileData": {"customerIdentification": who}}),
    );
    let (s, v) = tx(app, api_key, "debit", creds, &body).await;
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    v["customerProfileData"]["paymentToken"]
        .as_str()
        .expect("payment token")
        .to_string()
}

async fn charge(app: &TestApp, api_key: &str, creds: (&str, &str), token: &str) -> StatusCode {
    tx(app, api_key, "debit", creds, &debit(token, json!({})))
        .await
        .0
}

pub(crate) fn tenant_id(c: &mut coffer::db::DbConnection, name: &str) -> String {
    use coffer::db::schema::tenants;
    tenants::table
        .filter(tenants::name.eq(name))
        .select(tenants::id)
        .first(c)
        .expect("tenant")
}

/// The owner (root tenant id, or none) of the data key each record names.
fn owner_of_record(c: &mut coffer::db::DbConnection, record: &str) -> Option<String> {
    use coffer::db::schema::vault_keys;
    let kid = coffer::gateway::vault::key_id_of(record).expect("a sealed record");
    vault_keys::table
        .find(kid)
        .select(vault_keys::owner)
        .first(c)
        .expect("the record's key exists")
}

/// (instrument id, sealed card) of the instruments registered for customer `who`.
fn cards_of(c: &mut coffer::db::DbConnection, who: &str) -> Vec<(String, String)> {
    use coffer::db::schema::{instruments, profiles};
    let pids: Vec<String> = profiles::table
        .filter(profiles::customer_identification.eq(who))
        .select(profiles::id)
        .load(c)
        .expect("profiles");
    instruments::table
        .filter(instruments::profile_id.eq_any(pids))
        .select((instruments::id, instruments::vault_record))
        .load(c)
        .expect("instruments")
}

#[tokio::test]
async fn each_root_tenant_seals_its_records_under_data_keys_of_its_own() {
    let app = TestApp::demo().await;
    register(&app, "demo-shop-public", "demo-shop-cards", SHOP, "acme-1").await;
    register(
        &app,
        "demo-globex-public",
        "demo-globex-cards",
        GLOBEX,
        "globex-1",
    )
    .await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let acme = tenant_id(&mut c, "Acme Group");
    let globex = tenant_id(&mut c, "Globex");
    let (_, acme_card) = cards_of(&mut c, "acme-1").pop().expect("acme card");
    let (_, globex_card) = cards_of(&mut c, "globex-1").pop().expect("globex card");
    assert_eq!(owner_of_record(&mut c, &acme_card), Some(acme.clone()));
    assert_eq!(owner_of_record(&mut c, &globex_card), Some(globex.clone()));
    // Connector secrets (sealed by the demo seeding through the console's rules) too.
    use coffer::db::schema::connectors;
    let secrets: Vec<(String, String)> = connectors::table
        .select((connectors::tenant_path, connectors::shared_secret))
        .load(&mut *c)
        .expect("connectors");
    for (path, sealed) in &secrets {
        let root = path.split('/').find(|s| !s.is_empty()).expect("root");
        assert_eq!(
            owner_of_record(&mut c, sealed).as_deref(),
            Some(root),
            "{path}"
        );
    }
    // A new root tenant gets its key in the transaction that creates it.
    app.login_ok("admin", "admin-demo").await;
    let r = app
        .post_form("/tenants", &[("parent_id", ""), ("name", "Initech")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let initech = tenant_id(&mut c, "Initech");
    let keys = coffer::models::vault_key::of_owner(&mut c, Some(&initech)).expect("keys");
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(keys[0].active);
    // A sub-tenant has none of its own: its records are its root's.
    let r = app
        .post_form(
            "/tenants",
            &[("parent_id", &initech), ("name", "Initech EU")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let eu = tenant_id(&mut c, "Initech EU");
    assert!(
        coffer::models::vault_key::of_owner(&mut c, Some(&eu))
            .expect("keys")
            .is_empty()
    );
}

/// A copy of the database as a backup would hold it: SQLite `VACUUM INTO`, PostgreSQL
/// `pg_dump` restored into a new database. Returns settings that reach the copy.
fn backup(
    settings: &coffer::config::Settings,
    dir: &std::path::Path,
) -> (coffer::config::Settings, Option<String>) {
    let mut copy = settings.clone();
    if is_postgres() {
        let url = settings.database_url();
        let name = format!("coffer_backup_{}", coffer::ids::random_hex(4));
        let (base, _) = url.rsplit_once('/').expect("db url");
        let dump = dir.join("backup.dump");
        let ok = std::process::Command::new("pg_dump")
            .args(["-Fc", "-f"])
            .arg(&dump)
            .arg(&url)
            .status()
            .expect("pg_dump");
        assert!(ok.success());
        let admin = format!("{base}/postgres");
        let ok = std::process::Command::new("psql")
            .args([&admin, "-qc", &format!("CREATE DATABASE {name}")])
            .status()
            .expect("psql");
        assert!(ok.success());
        let target = format!("{base}/{name}");
        let ok = std::process::Command::new("pg_restore")
            .args(["--no-owner", "-d", &target])
            .arg(&dump)
            .status()
            .expect("pg_restore");
        assert!(ok.success());
        copy.database_url = Some(target);
        (copy, Some(format!("{admin}|{name}")))
    } else {
        let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
        let mut c = db.get().expect("conn");
        let file = dir.join("backup.db");
        diesel::sql_query(format!("VACUUM INTO '{}'", file.display()))
            .execute(&mut *c)
            .expect("vacuum into");
        copy.database_url = Some(file.to_string_lossy().into_owned());
        (copy, None)
    }
}

fn drop_backup(db: Option<String>) {
    if let Some(spec) = db {
        let (admin, name) = spec.split_once('|').expect("spec");
        let _ = std::process::Command::new("psql")
            .args([
                admin,
                "-qc",
                &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            ])
            .status();
    }
}

async fn erase_flow(app: &TestApp, transit_key: Option<&crate::bao::Bao>) {
    let acme_token = register(app, "demo-shop-public", "demo-shop-cards", SHOP, "acme-1").await;
    let globex_token = register(
        app,
        "demo-globex-public",
        "demo-globex-cards",
        GLOBEX,
        "globex-1",
    )
    .await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let globex = tenant_id(&mut c, "Globex");
    let acme_retail = tenant_id(&mut c, "Acme Retail");
    let globex_cards = cards_of(&mut c, "globex-1");
    let acme_cards = cards_of(&mut c, "acme-1");
    assert_eq!((globex_cards.len(), acme_cards.len()), (1, 1));
    let dir = tempfile::tempdir().expect("tempdir");
    let (backup_settings, backup_db) = backup(&app.settings, dir.path());

    // A tenant manager may not erase, not even their own tree.
    app.login_ok("manager", "manager-demo").await;
    let acme = tenant_id(&mut c, "Acme Group");
    assert_eq!(
        app.get(&format!("/tenants/{acme}/erase")).await.status(),
        StatusCode::FORBIDDEN
    );
    let r = app
        .post_form(
            &format!("/tenants/{acme}/erase"),
            &[("confirm_name", "Acme Group")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    app.login_ok("admin", "admin-demo").await;
    // A sub-tenant cannot be erased this way (its keys are its root's).
    let r = app.get(&format!("/tenants/{acme_retail}/erase")).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    // The confirmation names what goes.
    let (s, page) = app.get_html(&format!("/tenants/{globex}/erase")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("Erase tenant Globex"), "{page}");
    assert!(page.contains("name=\"confirm_name\""), "{page}");
    // A wrong name erases nothing.
    let r = app
        .post_form(
            &format!("/tenants/{globex}/erase"),
            &[("confirm_name", "Globe")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Type the tenant&#39;s name exactly to confirm."),
        "{page}"
    );
    assert_eq!(
        charge(app, "demo-globex-cards", GLOBEX, &globex_token).await,
        StatusCode::OK
    );

    let r = app
        .post_form(
            &format!("/tenants/{globex}/erase"),
            &[("confirm_name", "Globex")],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "{}",
        r.text().await.unwrap_or_default()
    );
    assert_eq!(location(&r), "/tenants");

    // Everything under it is gone; the other root tenant is untouched.
    use coffer::db::schema::{connectors, instruments, merchants, profiles, tenants, users};
    let n = |c: &mut coffer::db::DbConnection, t: &str| -> i64 {
        match t {
            "tenants" => tenants::table
                .filter(tenants::path.like(format!("/{globex}/%")))
                .count()
                .get_result(c),
            "merchants" => merchants::table
                .filter(merchants::tenant_path.like(format!("/{globex}/%")))
                .count()
                .get_result(c),
            "connectors" => connectors::table
                .filter(connectors::tenant_path.like(format!("/{globex}/%")))
                .count()
                .get_result(c),
            "users" => users::table
                .filter(users::scope_path.like(format!("/{globex}/%")))
                .count()
                .get_result(c),
            _ => instruments::table
                .filter(instruments::id.eq(&globex_cards[0].0))
                .count()
                .get_result(c),
        }
        .expect("count")
    };
    for t in ["tenants", "merchants", "connectors", "users", "instruments"] {
        assert_eq!(n(&mut c, t), 0, "{t} left");
    }
    assert!(
        coffer::models::vault_key::of_owner(&mut c, Some(&globex))
            .expect("keys")
            .is_empty()
    );
    assert_eq!(
        charge(app, "demo-shop-cards", SHOP, &acme_token).await,
        StatusCode::OK
    );
    let left: i64 = profiles::table
        .count()
        .get_result(&mut *c)
        .expect("profiles");
    assert!(left >= 1);
    // Globex's API user no longer exists.
    assert_eq!(
        charge(app, "demo-globex-cards", GLOBEX, &globex_token).await,
        StatusCode::UNAUTHORIZED
    );
    // The erasure is audited in the platform's chain.
    let (_, audit) = app.get_html("/audit?action=tenant.erase").await;
    assert!(audit.contains("Erased root tenant Globex"), "{audit}");

    // The backup taken before: the other tenant's card opens; Globex's opens only in local mode.
    let bdb = coffer::db::DbPool::connect(&backup_settings.database_url(), 1).expect("backup pool");
    let mut b = bdb.get().expect("backup conn");
    let keyring = Keyring::from_settings(&mut b, &backup_settings).expect("keyring on the backup");
    let (aid, arec) = &acme_cards[0];
    assert_eq!(
        keyring
            .open_string(&mut b, arec, aid.as_bytes())
            .expect("acme card opens"),
        "4111111111111111"
    );
    let (gid, grec) = &globex_cards[0];
    let opened = keyring.open_string(&mut b, grec, gid.as_bytes());
    match transit_key {
        Some(bao) => {
            let err = opened.expect_err("an erased tenant's card must not open from a backup");
            assert!(!err.to_string().contains("4111"), "{err}");
            // Its Transit key is gone from the key manager.
            let name = format!(
                "{}-tenant-{globex}",
                app.settings.transit_key.clone().expect("key")
            );
            let (status, _) = bao
                .http("GET", &format!("/v1/transit/keys/{name}"), None)
                .expect("bao");
            assert_eq!(status, 404, "the tenant's Transit key must be destroyed");
        }
        // Local mode: the backup holds the data key wrapped by the master key (README, Keys).
        None => assert_eq!(opened.expect("local mode"), "4111111111111111"),
    }
    drop(b);
    drop(bdb);
    drop_backup(backup_db);
}

#[tokio::test]
async fn a_platform_admin_erases_a_root_tenant_with_everything_under_it() {
    let app = TestApp::demo().await;
    erase_flow(&app, None).await;
}

#[tokio::test]
async fn erasing_a_root_tenant_in_transit_mode_destroys_its_key_so_no_backup_opens_its_cards() {
    let Some(bao) = crate::bao::bao("erasure by key destruction") else {
        return;
    };
    let key = bao.new_key();
    let app = TestApp::spawn_with(true, |s| bao.apply(s, &bao.addr, &key)).await;
    erase_flow(&app, Some(bao)).await;
}
