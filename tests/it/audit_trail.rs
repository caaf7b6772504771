//! The audit trail (issue 12): sign-in events with the client's address and user agent, and
//! the hash chain that `coffer audit verify` checks.

use coffer::domain::Actor;
use coffer::models::audit::AuditEntry;
use diesel::RunQueryDsl;
use reqwest::StatusCode;

use crate::helpers::{TestApp, TestBrowser, location};

const AGENT: &str = "AuditTest/1.0 (trail)";

fn browser_with_agent(app: &TestApp) -> TestBrowser<'_> {
    TestBrowser {
        app,
        client: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(AGENT)
            .build()
            .expect("client"),
    }
}

/// Every entry, newest first, as the platform sees them.
fn entries(app: &TestApp) -> Vec<AuditEntry> {
    crate::console::all_audit_rows(app)
}

/// Writes an entry as it is, past Coffer's chain (a forger with database access).
fn insert_raw(app: &TestApp, e: &AuditEntry) {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::models::audit::insert(&mut c, e).expect("forge");
}

fn sql(app: &TestApp, q: &str) -> usize {
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(q).execute(&mut *c).expect(q)
}

/// `coffer audit verify` (the built binary) on the app's database: (exit success, output).
fn verify(app: &TestApp) -> (bool, String) {
    run_coffer(app, &["audit", "verify"])
}

fn run_coffer(app: &TestApp, args: &[&str]) -> (bool, String) {
    crate::helpers::run_coffer(app, args, "warn")
}

#[tokio::test]
async fn sign_in_events_are_audited_with_the_address_and_user_agent() {
    let app = TestApp::demo().await;
    let b = browser_with_agent(&app);
    let r = b
        .post_form(
            "/login",
            &[("username", "merchant"), ("password", "wrong-one")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let tried = format!("<script>{}</script>", "x".repeat(300));
    let r = b
        .post_form("/login", &[("username", &tried), ("password", "whatever")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    b.login_ok("merchant", "merchant-demo").await;
    let r = b.post_form("/logout", &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let users_before = crate::fuzz::ids_of(&app, "users", "").len();

    let all = entries(&app);
    let of = |action: &str, name: &str| {
        all.iter()
            .find(|e| e.action == action && e.actor_name == name)
            .unwrap_or_else(|| panic!("no {action} of {name}: {all:?}"))
            .clone()
    };
    for e in [
        of("login.failure", "merchant"),
        of("login.success", "merchant"),
        of("logout", "merchant"),
    ] {
        assert_eq!(e.source_addr.as_deref(), Some("127.0.0.1"), "{e:?}");
        assert_eq!(e.user_agent.as_deref(), Some(AGENT), "{e:?}");
        assert!(
            e.merchant_id.is_some(),
            "placed at the user's merchant: {e:?}"
        );
        assert!(e.actor_id.is_some());
    }
    // The unknown name: kept shortened, as no user, and nothing created for it.
    let unknown = all
        .iter()
        .find(|e| e.action == "login.failure" && e.actor_id.is_none())
        .expect("failure of the unknown name");
    assert!(unknown.actor_name.starts_with("unknown user \"<script>xxx"));
    assert!(unknown.actor_name.len() < 100, "{}", unknown.actor_name);
    assert_eq!(unknown.tenant_path, None);
    assert_eq!(crate::fuzz::ids_of(&app, "users", "").len(), users_before);

    // The platform admin's page shows who, when, from where and with what; the tried name
    // escaped.
    app.login_ok("admin", "admin-demo").await;
    let (s, body) = app.get_html("/audit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("<code>login.success</code>"), "{body}");
    assert!(body.contains(AGENT));
    assert!(body.contains("<td class=\"source\">127.0.0.1</td>"));
    assert!(
        body.contains("&lt;script&gt;xxx") || body.contains("&#60;script&#62;xxx"),
        "{body}"
    );
    assert!(!body.contains("<script>xxx"));

    // The manager of Acme Group sees its merchant admin's sign-ins, not the unknown name's;
    // Globex's manager sees neither.
    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;
    let (_, body) = m.get_html("/audit?actor=merchant").await;
    assert!(body.contains("<code>login.success</code>"), "{body}");
    assert!(body.contains("<code>logout</code>"));
    let (_, body) = m.get_html("/audit").await;
    assert!(!body.contains("unknown user"), "{body}");
}

#[tokio::test]
async fn a_locked_sign_in_is_audited() {
    let app = TestApp::demo().await;
    let b = browser_with_agent(&app);
    let mut statuses = vec![];
    for _ in 0..6 {
        let r = b
            .post_form(
                "/login",
                &[("username", "manager"), ("password", "nope-nope")],
            )
            .await;
        statuses.push(r.status());
    }
    assert_eq!(statuses[5], StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
    let all = entries(&app);
    let locked: Vec<_> = all
        .iter()
        .filter(|e| e.action == "login.locked" && e.actor_name == "manager")
        .collect();
    assert_eq!(locked.len(), 1, "{all:?}");
    assert_eq!(locked[0].user_agent.as_deref(), Some(AGENT));
    assert_eq!(
        all.iter()
            .filter(|e| e.action == "login.failure" && e.actor_name == "manager")
            .count(),
        5
    );
}

#[tokio::test]
async fn two_factor_enrollment_codes_recovery_and_reset_are_audited_with_the_origin() {
    let app = TestApp::demo().await;
    let b = browser_with_agent(&app);
    b.login_ok("manager", "manager-demo").await;
    let (secret, codes) = crate::identity::enroll(&b).await;
    let p = browser_with_agent(&app);
    let r = p
        .post_form(
            "/login",
            &[("username", "manager"), ("password", "manager-demo")],
        )
        .await;
    assert_eq!(location(&r), "/login/two-factor");
    let r = p
        .post_form("/login/two-factor", &[("code", "000000x")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = p
        .post_form("/login/two-factor", &[("code", &codes[0])])
        .await;
    assert_eq!(location(&r), "/");
    let _ = secret;
    app.login_ok("admin", "admin-demo").await;
    let uid = crate::fuzz::ids_of(&app, "users", "WHERE username = 'manager'")
        .pop()
        .expect("manager");
    let r = app
        .post_form(
            &format!("/users/{uid}/reset-two-factor"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    let all = entries(&app);
    for action in [
        "user.two_factor.enable",
        "user.two_factor.recovery_code",
        "login.failure",
        "login.success",
    ] {
        let e = all
            .iter()
            .find(|e| e.action == action && e.actor_name == "manager")
            .unwrap_or_else(|| panic!("no {action}: {all:?}"));
        assert_eq!(e.user_agent.as_deref(), Some(AGENT), "{action}");
        assert_eq!(e.source_addr.as_deref(), Some("127.0.0.1"), "{action}");
    }
    let reset = all
        .iter()
        .find(|e| e.action == "user.two_factor.reset")
        .expect("reset");
    assert_eq!(reset.actor_name, "admin");
    assert_eq!(reset.source_addr.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn audit_verify_passes_on_an_intact_log_and_names_an_edited_row() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
    assert!(out.contains("audit log intact"), "{out}");
    let all = entries(&app);
    assert!(all.len() >= 5, "{}", all.len());
    assert!(all.iter().all(|e| e.hash.is_some() && e.seq.is_some()));
    // Edit one field of an entry in the middle.
    let victim = &all[all.len() / 2];
    sql(
        &app,
        &format!(
            "UPDATE audit_log SET summary = 'nothing happened' WHERE id = '{}'",
            victim.id
        ),
    );
    let (ok, out) = verify(&app);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry {}", victim.id)), "{out}");
    assert!(out.contains("changed"), "{out}");
}

#[tokio::test]
async fn audit_verify_names_the_entry_after_a_removed_one() {
    let app = TestApp::demo().await;
    for _ in 0..3 {
        app.login_ok("admin", "admin-demo").await;
    }
    // Entries of one chain, in chain order.
    let mut all = entries(&app);
    let chain = all[0].chain.clone();
    all.retain(|e| e.chain == chain);
    all.sort_by_key(|e| e.seq);
    assert!(all.len() >= 3, "{all:?}");
    let (gone, next) = (&all[1], &all[2]);
    sql(
        &app,
        &format!("DELETE FROM audit_log WHERE id = '{}'", gone.id),
    );
    let (ok, out) = verify(&app);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry {}", next.id)), "{out}");
    assert!(out.contains("removed"), "{out}");
}

#[tokio::test]
async fn audit_verify_notices_a_removed_last_entry_and_forged_entries() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let all = entries(&app);
    let last = all[0].clone();
    sql(
        &app,
        &format!("DELETE FROM audit_log WHERE id = '{}'", last.id),
    );
    let (ok, out) = verify(&app);
    assert!(!ok, "{out}");
    assert!(out.contains("last entries were removed"), "{out}");

    // Put it back (intact again), then forge: a copy of an entry with a new id and summary,
    // numbered as the next of its chain, with a hash computed the way Coffer does.
    let app2 = TestApp::demo().await;
    app2.login_ok("admin", "admin-demo").await;
    let all = entries(&app2);
    let mut forged = all[0].clone();
    forged.id = "0000000000007000800000000000ffff".into();
    forged.summary = "Granted everything".into();
    forged.seq = forged.seq.map(|s| s + 1);
    forged.prev_hash = all[0].hash.clone();
    forged.hash = Some(coffer::audit::chain::hash_of(&forged));
    insert_raw(&app2, &forged);
    let (ok, out) = verify(&app2);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry {}", forged.id)), "{out}");
    assert!(out.contains("inserted"), "{out}");

    // A forged entry in no chain.
    sql(
        &app2,
        &format!("DELETE FROM audit_log WHERE id = '{}'", forged.id),
    );
    assert!(verify(&app2).0);
    forged.chain = None;
    forged.seq = None;
    insert_raw(&app2, &forged);
    let (ok, out) = verify(&app2);
    assert!(!ok, "{out}");
    assert!(out.contains(&format!("entry {}", forged.id)), "{out}");
}

#[tokio::test]
async fn entries_from_before_the_chain_are_chained_once_at_the_next_start() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    // As the migration leaves them: no chain yet, and the mark to chain them.
    sql(
        &app,
        "UPDATE audit_log SET chain = NULL, seq = NULL, prev_hash = NULL, hash = NULL",
    );
    sql(&app, "DELETE FROM audit_chains");
    sql(&app, "INSERT INTO audit_legacy_pending (id) VALUES (1)");
    let n = entries(&app).len();
    let (ok, out) = run_coffer(&app, &["migrate"]);
    assert!(ok, "{out}");
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{n} entries")), "{out}");
    // Afterwards an unchained entry is a forgery, not a legacy one.
    sql(
        &app,
        &format!(
            "UPDATE audit_log SET chain = NULL, seq = NULL WHERE id = '{}'",
            entries(&app)[0].id
        ),
    );
    let (ok, _) = run_coffer(&app, &["migrate"]);
    assert!(ok);
    assert!(!verify(&app).0);
}

#[tokio::test]
async fn concurrent_writers_keep_one_intact_chain() {
    let app = TestApp::demo().await;
    let db = app.db();
    let before = entries(&app).len();
    let tenant = crate::fuzz::ids_of(&app, "tenants", "WHERE name = 'Acme Group'")
        .pop()
        .expect("Acme Group");
    let pool = coffer::db::DbPool::connect(&app.settings.database_url(), 8).expect("pool");
    let mut tasks = vec![];
    for t in 0..8 {
        let (pool, tenant) = (pool.clone(), tenant.clone());
        tasks.push(tokio::task::spawn_blocking(move || {
            for i in 0..25 {
                let mut c = pool.get().expect("conn");
                coffer::audit::record(
                    &mut c,
                    &Actor::system(),
                    &coffer::audit::Place::tenant(&tenant, &format!("/{tenant}/")),
                    coffer::audit::Change {
                        action: "test.change",
                        object_type: "test",
                        object_id: &format!("{t}-{i}"),
                        summary: format!("change {i} of writer {t}"),
                        changes: vec![],
                    },
                )
                .expect("record");
            }
        }));
    }
    for t in tasks {
        t.await.expect("writer");
    }
    drop(db);
    assert_eq!(entries(&app).len(), before + 200);
    let (ok, out) = verify(&app);
    assert!(ok, "{out}");
}

/// Issue 13, point 9: the audit log filters by action, kind of object and day range, links each
/// entry to its object, and exports the filtered list as CSV, streamed page by page.
#[tokio::test]
async fn the_audit_log_filters_links_its_objects_and_exports_csv_in_pages() {
    let app = TestApp::demo().await;
    // 1 200 entries of one action: the export needs three of its 500-entry pages.
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        let entries = (0..1200)
            .map(|i| AuditEntry {
                id: coffer::ids::new_id(),
                at: coffer::audit::now_micros(),
                actor_id: None,
                actor_name: if i == 0 {
                    "=HYPERLINK(1)".into()
                } else {
                    "bulk".into()
                },
                tenant_id: None,
                tenant_path: None,
                merchant_id: None,
                action: "test.bulk".into(),
                object_type: "callback".into(),
                object_id: format!("cb-{i}"),
                summary: format!("bulk entry {i}, with a comma and \"quotes\""),
                changes: "{}".into(),
                source_addr: None,
                user_agent: None,
                chain: None,
                seq: None,
                prev_hash: None,
                hash: None,
            })
            .collect();
        coffer::audit::chain::append(&mut c, entries).expect("append");
    }
    app.login_ok("admin", "admin-demo").await;
    let connector =
        crate::fuzz::ids_of(&app, "connectors", "WHERE name = 'Acme Shop Cards'").remove(0);
    let r = app
        .post_form(
            &format!("/connectors/{connector}/rotate-secret"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);

    // Action prefix and kind of object.
    let (s, page) = app.get_html("/audit?action=login&kind=user").await;
    assert_eq!(s, StatusCode::OK);
    let actions: Vec<&str> = page
        .split("<td><code>")
        .skip(1)
        .filter_map(|x| x.split("</code>").next())
        .collect();
    assert!(
        !actions.is_empty() && actions.iter().all(|a| a.starts_with("login")),
        "{actions:?}"
    );
    // The connector's entry links to the connector.
    let (_, page) = app.get_html("/audit?kind=connector").await;
    assert!(
        page.contains(&format!(
            "<a href=\"/connectors/{connector}\">connector {connector}</a>"
        )),
        "{page}"
    );
    // A day range: nothing from tomorrow on; today has entries.
    let today = chrono::Utc::now().date_naive();
    let tomorrow = today.succ_opt().expect("day");
    let (_, page) = app.get_html(&format!("/audit?from={tomorrow}")).await;
    assert!(page.contains("No entries"), "{page}");
    let (_, page) = app
        .get_html(&format!("/audit?from={today}&to={today}&action=test.bulk"))
        .await;
    assert!(page.contains("bulk entry"));
    // Bad filters are a 400, never a 500.
    for bad in [
        "kind=spaceship",
        "from=2026-13-01",
        "action=DROP%20TABLE",
        "from=2026-12-03&to=2026-12-01",
        "kind=user&kind=tenant",
    ] {
        let (s, _) = app.get_html(&format!("/audit?{bad}")).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
    }

    // The CSV export of the filtered list: every entry, once, in RFC 4180, no formula.
    let r = app
        .client
        .get(app.url("/audit.csv?action=test.bulk"))
        .send()
        .await
        .expect("csv");
    assert_eq!(r.status(), StatusCode::OK);
    crate::helpers::assert_csv(&r);
    let body = r.text().await.expect("body");
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(rows.len(), 1200);
    let ids: std::collections::BTreeSet<&str> = rows.iter().map(|r| &r[4]).collect();
    assert_eq!(ids.len(), 1200, "each entry once across the pages");
    assert!(
        rows.iter().any(|r| &r[1] == "'=HYPERLINK(1)"),
        "a formula is neutralized"
    );
    assert!(
        rows.iter()
            .all(|r| r[5].contains("with a comma and \"quotes\""))
    );
}
