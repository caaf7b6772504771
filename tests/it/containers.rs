use coffer::db::schema::profiles;
use diesel::prelude::*;
use reqwest::StatusCode;

use crate::helpers::*;

/// Inserts `n` profiles with one card each straight into a container. Returns (profile ids,
/// guids) oldest first.
fn seed_profiles(
    app: &TestApp,
    container: &str,
    connector: &str,
    n: usize,
) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let s = seed_card_profile(
                app,
                container,
                connector,
                &format!("cust-{i:04}"),
                &format!("customer{i}@example.com"),
                &format!("Ann{i}"),
                "1111",
            );
            (s.id, s.guid)
        })
        .collect()
}

fn profile_count(app: &TestApp, container: &str) -> i64 {
    let cid = container_id(app, container);
    let db = app.db();
    let mut c = db.get().expect("conn");
    profiles::table
        .filter(profiles::container_id.eq(cid))
        .count()
        .get_result(&mut *c)
        .expect("count")
}

async fn effective(app: &TestApp, connector: &str) -> String {
    let id = connector_id(app, connector);
    let (s, body) = app.get_html(&format!("/connectors/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    let i = body
        .find("id=\"effective-container\">")
        .expect("effective container shown")
        + "id=\"effective-container\">".len();
    let j = body[i..].find("</dd>").expect("end") + i;
    // Strip tags for a readable string.
    let mut out = String::new();
    let mut in_tag = false;
    for ch in body[i..j].chars() {
        match ch {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.trim().to_string()
}

fn base_form<'a>(name: &'a str, container: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("name", name),
        ("container_id", container),
        ("active", "1"),
        ("confirmed", "yes"),
    ]
}

#[tokio::test]
async fn connector_pages_show_the_effective_container_and_its_source() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    assert_eq!(
        effective(&app, "Acme Shop Cards").await,
        "Acme Shared Profiles (global setting of Acme Group)"
    );
    assert_eq!(
        effective(&app, "Acme Outlet Cards").await,
        "Acme Shared Profiles (assigned)"
    );
    assert_eq!(
        effective(&app, "Globex Cards").await,
        "Globex Profiles (assigned)"
    );
}

#[tokio::test]
async fn a_manager_cannot_assign_a_container_of_a_sibling_tree_even_by_forging_the_form() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let outlet = connector_id(&app, "Acme Outlet Cards");
    let (_, page) = app.get_html(&format!("/connectors/{outlet}")).await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let globex = container_id(&app, "Globex Profiles");
    assert!(page.contains(&format!(
        "<option value=\"{shared}\" selected>Acme Shared Profiles"
    )));
    assert!(
        !page.contains("Globex Profiles"),
        "the select lists only allowed containers"
    );
    let r = app
        .post_form(
            &format!("/connectors/{outlet}"),
            &base_form("Acme Outlet Cards", &globex),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Choose a container available to this tenant.")
    );
    assert_eq!(
        effective(&app, "Acme Outlet Cards").await,
        "Acme Shared Profiles (assigned)",
        "nothing changed"
    );
    // A connector of another tree is not reachable at all.
    let globex_cards = connector_id(&app, "Globex Cards");
    assert_eq!(
        app.get_html(&format!("/connectors/{globex_cards}")).await.0,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post_form(
            &format!("/connectors/{globex_cards}"),
            &base_form("Pwned", &shared),
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post_form(
            &format!("/connectors/{globex_cards}/rotate-secret"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        app.get_html(&format!("/containers/{globex}")).await.0,
        StatusCode::NOT_FOUND
    );
    let r = app
        .post_form(&format!("/containers/{globex}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", ""),
                ("container_id", &globex),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let (_, page) = admin.get_html(&format!("/connectors/{globex_cards}")).await;
    assert!(page.contains("Globex Cards") && !page.contains("Pwned"));
}

#[tokio::test]
async fn the_disable_flag_removes_containers_from_sub_tenants_and_refuses_assignment() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, body) = app.get_html("/tenants").await;
    let group = find_link_id(&body, "tenants", "Acme Group").expect("id");
    let retail = find_link_id(&body, "tenants", "Acme Retail").expect("id");
    let r = app
        .post_form(
            &format!("/tenants/{group}"),
            &[
                ("name", "Acme Group"),
                ("disable_containers_for_subtenants", "1"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // Set later: the outlet's assignment no longer counts.
    assert_eq!(
        effective(&app, "Acme Outlet Cards").await,
        "disabled by Acme Group"
    );
    // The tenant itself is not affected.
    assert_eq!(
        effective(&app, "Acme Shop Cards").await,
        "Acme Shared Profiles (global setting of Acme Group)"
    );
    let shared = container_id(&app, "Acme Shared Profiles");
    let outlet = connector_id(&app, "Acme Outlet Cards");
    let r = app
        .post_form(
            &format!("/connectors/{outlet}"),
            &base_form("Acme Outlet Cards", &shared),
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("disabled for this tenant by Acme Group")
    );
    // Acme Retail can neither own nor see containers now.
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &retail), ("name", "Retail Own")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (_, page) = app.get_html(&format!("/containers?tenant={retail}")).await;
    assert!(page.contains("disabled for Acme Retail by Acme Group"));
    assert!(
        !page.contains("href=\"/containers/"),
        "no container is listed for the disabled sub-tenant"
    );
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", &retail),
                ("container_id", &shared),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn the_global_setting_applies_to_existing_and_new_connectors_but_not_to_sub_tenants() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, body) = app.get_html("/tenants").await;
    let group = find_link_id(&body, "tenants", "Acme Group").expect("id");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Acme Alt")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let alt = container_id(&app, "Acme Alt");
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", &group),
                ("container_id", &alt),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        effective(&app, "Acme Shop Cards").await,
        "Acme Alt (global setting of Acme Group)",
        "existing connector"
    );
    let (_, merchants_page) = app.get_html("/connectors").await;
    assert!(merchants_page.contains("New connector"));
    let (_, page) = app
        .get_html(&format!("/global-settings?tenant={group}"))
        .await;
    assert!(
        page.contains("Acme Shop Cards")
            && page.contains(&format!("<option value=\"{alt}\" selected>"))
    );
    // A new connector of Acme Shop gets it too.
    let shop_id = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::db::schema::merchants::table
            .filter(coffer::db::schema::merchants::name.eq("Acme Shop"))
            .select(coffer::db::schema::merchants::id)
            .first::<String>(&mut *c)
            .expect("merchant")
    };
    let r = app
        .post_form(
            "/connectors",
            &[
                ("merchant_id", &shop_id),
                ("name", "Shop New"),
                ("adapter", "creditcard"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let shown = r.text().await.expect("body");
    assert!(
        shown.contains("Shared secret (shown only now"),
        "the secret is shown once"
    );
    assert_eq!(
        effective(&app, "Shop New").await,
        "Acme Alt (global setting of Acme Group)"
    );
    let shop_new = connector_id(&app, "Shop New");
    let (_, again) = app.get_html(&format!("/connectors/{shop_new}")).await;
    assert!(
        !again.contains("Shared secret (shown only now"),
        "and only once"
    );
    // A connector of a merchant of the sub-tenant does not inherit it.
    let outlet_id = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::db::schema::merchants::table
            .filter(coffer::db::schema::merchants::name.eq("Acme Outlet"))
            .select(coffer::db::schema::merchants::id)
            .first::<String>(&mut *c)
            .expect("merchant")
    };
    let r = app
        .post_form(
            "/connectors",
            &[
                ("merchant_id", &outlet_id),
                ("name", "Outlet New"),
                ("adapter", "creditcard"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(effective(&app, "Outlet New").await, "none");
    // Ignore Global Connector Settings opts a connector out.
    let shop_cards = connector_id(&app, "Acme Shop Cards");
    let mut form = base_form("Acme Shop Cards", "");
    form.push(("ignore_global", "1"));
    let r = app
        .post_form(&format!("/connectors/{shop_cards}"), &form)
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        effective(&app, "Acme Shop Cards").await,
        "ignores global settings"
    );
    let (_, page) = app
        .get_html(&format!("/global-settings?tenant={group}"))
        .await;
    assert!(page.contains("Acme Shop Cards</a></td><td>none</td><td>ignores global settings</td>"));
}

#[tokio::test]
async fn a_container_in_use_cannot_be_deleted_and_the_refusal_says_where() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let r = app
        .post_form(&format!("/containers/{shared}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(page.contains("cannot be deleted"), "{page}");
    assert!(page.contains("connector Acme Outlet Cards"));
    assert!(page.contains("Global Setting of Acme Group"));
    assert!(container_id(&app, "Acme Shared Profiles") == shared);
    // Holding profiles blocks too.
    let (_, body) = app.get_html("/tenants").await;
    let group = find_link_id(&body, "tenants", "Acme Group").expect("id");
    app.post_form("/containers", &[("tenant_id", &group), ("name", "Spare")])
        .await;
    let spare = container_id(&app, "Spare");
    seed_profiles(&app, "Spare", "Acme Shop Cards", 1);
    let r = app
        .post_form(&format!("/containers/{spare}/delete"), &[])
        .await;
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(page.contains("holds 1 customer profile"), "{page}");
    // An unused container is deleted after the confirmation page.
    app.post_form("/containers", &[("tenant_id", &group), ("name", "Unused")])
        .await;
    let unused = container_id(&app, "Unused");
    let (s, confirm) = app.get_html(&format!("/containers/{unused}/delete")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(confirm.contains("Delete container Unused?"));
    let r = app
        .post_form(&format!("/containers/{unused}/delete"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_html(&format!("/containers/{unused}")).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn container_names_are_validated_and_unique_per_tenant() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, body) = app.get_html("/tenants").await;
    let group = find_link_id(&body, "tenants", "Acme Group").expect("id");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Acme Shared Profiles")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("already has a container with this name")
    );
    let r = app
        .post_form("/containers", &[("tenant_id", &group), ("name", "  ")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let globex = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::models::tenant::find_by_name(&mut c, "Globex")
            .expect("q")
            .expect("globex")
            .id
    };
    let r = app
        .post_form("/containers", &[("tenant_id", &globex), ("name", "Sneaky")])
        .await;
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "a tenant outside the scope is refused"
    );
}

#[tokio::test]
async fn profiles_are_searchable_and_paginated_with_a_total() {
    let app = TestApp::demo().await;
    let seeded = seed_profiles(&app, "Acme Shared Profiles", "Acme Shop Cards", 120);
    app.login_ok("manager", "manager-demo").await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let (s, page1) = app.get_html(&format!("/containers/{shared}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page1.contains("120 customer profiles."));
    assert_eq!(page1.matches("href=\"/profiles/").count(), 50);
    assert!(page1.contains("cust-0119"), "newest first");
    assert!(!page1.contains("cust-0069"));
    let next = page1
        .split("?before=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("next link")
        .to_string();
    let (_, page2) = app
        .get_html(&format!("/containers/{shared}?before={next}"))
        .await;
    assert_eq!(page2.matches("href=\"/profiles/").count(), 50);
    assert!(page2.contains("cust-0069") && !page2.contains("cust-0070"));
    let next = page2
        .split("?before=")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("next link")
        .to_string();
    let (_, page3) = app
        .get_html(&format!("/containers/{shared}?before={next}"))
        .await;
    assert_eq!(page3.matches("href=\"/profiles/").count(), 20);
    assert!(!page3.contains("?before="), "no further page");
    // Search by each identifier.
    let (_, hit) = app
        .get_html(&format!("/containers/{shared}?q=cust-0042"))
        .await;
    assert_eq!(hit.matches("href=\"/profiles/").count(), 1);
    let guid = &seeded[7].1;
    let (_, hit) = app
        .get_html(&format!("/containers/{shared}?q={guid}"))
        .await;
    assert_eq!(hit.matches("href=\"/profiles/").count(), 1);
    assert!(hit.contains("cust-0007"));
    let (_, hit) = app
        .get_html(&format!("/containers/{shared}?q=Customer9%40Example.com"))
        .await;
    assert_eq!(
        hit.matches("href=\"/profiles/").count(),
        1,
        "email search ignores case"
    );
    let (_, miss) = app
        .get_html(&format!("/containers/{shared}?q=nobody"))
        .await;
    assert_eq!(miss.matches("href=\"/profiles/").count(), 0);
    assert_eq!(
        app.get_html(&format!("/containers/{shared}?before=not-a-cursor"))
            .await
            .0,
        StatusCode::BAD_REQUEST
    );
}

#[tokio::test]
async fn a_profile_page_shows_masked_instruments_and_deletion_is_confirmed_and_audited() {
    let app = TestApp::demo().await;
    let seeded = seed_profiles(&app, "Acme Shared Profiles", "Acme Outlet Cards", 2);
    app.login_ok("manager", "manager-demo").await;
    let (pid, guid) = &seeded[0];
    let (s, page) = app.get_html(&format!("/profiles/{pid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("411111******1111"));
    assert!(
        page.contains("Acme Outlet Cards"),
        "the connector the instrument is tied to"
    );
    assert!(page.contains("12/2030") && page.contains("Ann0"));
    let (s, confirm) = app.get_html(&format!("/profiles/{pid}/delete")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(confirm.contains("irreversible"));
    let r = app.post_form(&format!("/profiles/{pid}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_html(&format!("/profiles/{pid}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(profile_count(&app, "Acme Shared Profiles"), 1);
    let shared = container_id(&app, "Acme Shared Profiles");
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    assert!(page.contains("1 customer profile."), "the total follows");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let (rows, _) =
        coffer::audit::page(&mut c, &coffer::domain::Actor::system(), None).expect("audit");
    let e = rows
        .iter()
        .find(|e| e.action == "profile.delete")
        .expect("audited");
    assert_eq!(&e.object_id, guid);
    assert_eq!(e.actor_name, "manager");
}

#[tokio::test]
async fn a_merchant_admin_reads_profiles_of_their_effective_container_only() {
    let app = TestApp::demo().await;
    let acme = seed_profiles(&app, "Acme Shared Profiles", "Acme Shop Cards", 1);
    let globex = seed_profiles(&app, "Globex Profiles", "Globex Cards", 1);
    app.login_ok("merchant", "merchant-demo").await;
    let (pid, _) = &acme[0];
    let (s, page) = app.get_html(&format!("/profiles/{pid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(!page.contains("Delete profile"), "read-only");
    let r = app.post_form(&format!("/profiles/{pid}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        profile_count(&app, "Acme Shared Profiles"),
        1,
        "nothing deleted"
    );
    assert_eq!(
        app.get_html(&format!("/profiles/{}", globex[0].0)).await.0,
        StatusCode::NOT_FOUND
    );
    let shop_cards = connector_id(&app, "Acme Shop Cards");
    let r = app
        .post_form(
            &format!("/connectors/{shop_cards}"),
            &base_form("Renamed", ""),
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let outlet = connector_id(&app, "Acme Outlet Cards");
    assert_eq!(
        app.get_html(&format!("/connectors/{outlet}")).await.0,
        StatusCode::NOT_FOUND,
        "another merchant"
    );
    assert_eq!(app.get_html("/containers").await.0, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn a_manager_of_another_tree_gets_404_for_acme_containers_connectors_and_profiles() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let globex = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::models::tenant::find_by_name(&mut c, "Globex")
            .expect("q")
            .expect("globex")
            .id
    };
    let r = app
        .post_form(
            "/users",
            &[
                ("username", "globex-manager"),
                ("role", "tenant_manager"),
                ("tenant_id", &globex),
                ("merchant_id", ""),
                ("password", "globex-manager-pw"),
            ],
        )
        .await;
    if r.status() != StatusCode::SEE_OTHER {
        // The users console lands separately; create the user through the service instead.
        let db = app.db();
        let mut c = db.get().expect("conn");
        let t = coffer::models::tenant::find(&mut c, &globex)
            .expect("q")
            .expect("t");
        coffer::console::users::create_system(
            &mut c,
            "globex-manager",
            "globex-manager-pw",
            coffer::domain::Role::TenantManager,
            Some((&t.id, &t.path)),
            None,
        )
        .expect("user");
    }
    let acme = seed_profiles(&app, "Acme Shared Profiles", "Acme Shop Cards", 1);
    let b = app.other_browser();
    b.login_ok("globex-manager", "globex-manager-pw").await;
    let shared = container_id(&app, "Acme Shared Profiles");
    assert_eq!(
        b.get_html(&format!("/containers/{shared}")).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get_html(&format!("/profiles/{}", acme[0].0)).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        b.get_html(&format!(
            "/connectors/{}",
            connector_id(&app, "Acme Shop Cards")
        ))
        .await
        .0,
        StatusCode::NOT_FOUND
    );
    let r = b
        .post_form(&format!("/profiles/{}/delete", acme[0].0), &[])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert_eq!(profile_count(&app, "Acme Shared Profiles"), 1);
    let (_, list) = b.get_html("/connectors").await;
    assert!(list.contains("Globex Cards") && !list.contains("Acme"));
}

#[tokio::test]
async fn api_users_get_a_password_shown_once_and_stored_as_a_keyed_hash() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let shop = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::db::schema::merchants::table
            .filter(coffer::db::schema::merchants::name.eq("Acme Shop"))
            .select(coffer::db::schema::merchants::id)
            .first::<String>(&mut *c)
            .expect("merchant")
    };
    let r = app
        .post_form(
            "/api-users",
            &[("merchant_id", &shop), ("username", "shop-api-2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    let pw = page
        .split("Password of shop-api-2 (shown only now): ")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .expect("password shown");
    assert_eq!(pw.len(), 24);
    let db = app.db();
    let mut c = db.get().expect("conn");
    let u = coffer::models::api_user::find_by_username(&mut c, "shop-api-2")
        .expect("q")
        .expect("user");
    assert!(!u.password_hash.contains(pw));
    assert_eq!(u.password_hash.len(), 64, "HMAC-SHA256 hex, not argon2");
    let r = app
        .post_form(
            "/api-users",
            &[("merchant_id", &shop), ("username", "shop-api-2")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let (rows, _) =
        coffer::audit::page(&mut c, &coffer::domain::Actor::system(), None).expect("audit");
    assert!(rows.iter().any(|e| e.action == "api_user.create"));
    assert!(
        rows.iter()
            .all(|e| !e.changes.contains(pw) && !e.summary.contains(pw)),
        "no secret in the audit log"
    );
}

/// Concurrent first saves of a tenant's Global Setting: each one succeeds (on PostgreSQL the
/// losers of the insert race answered 500, found by the console fuzzer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_first_saves_of_a_global_setting_all_succeed() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let tenants: Vec<String> = {
        use coffer::db::schema::{global_settings, tenants};
        let db = app.db();
        let mut c = db.get().expect("conn");
        let taken: Vec<String> = global_settings::table
            .select(global_settings::tenant_id)
            .load(&mut *c)
            .expect("settings");
        tenants::table
            .select(tenants::id)
            .load::<String>(&mut *c)
            .expect("tenants")
            .into_iter()
            .filter(|t| !taken.contains(t))
            .collect()
    };
    assert!(!tenants.is_empty(), "a tenant without a Global Setting");
    let token = app.csrf().await;
    for tenant in tenants {
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..6 {
            let (client, url) = (app.client.clone(), app.url("/global-settings"));
            let form = [
                ("csrf_token", token.clone()),
                ("tenant_id", tenant.clone()),
                ("container_id", String::new()),
                ("confirmed", "yes".to_string()),
            ];
            tasks.spawn(async move {
                let r = client.post(url).form(&form).send().await.expect("POST");
                r.status().as_u16()
            });
        }
        while let Some(s) = tasks.join_next().await {
            assert_eq!(s.expect("task"), 303, "tenant {tenant}");
        }
    }
}
