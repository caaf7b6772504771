//! The console pages for merchants, users, one's own password and the audit log.

use coffer::domain::Actor;
use coffer::models::audit::AuditEntry;
use reqwest::StatusCode;

use crate::helpers::*;

/// The newest audit entries (up to one page), as the platform sees them.
fn audit_rows(app: &TestApp) -> Vec<AuditEntry> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::audit::page(&mut c, &Actor::system(), None)
        .expect("audit")
        .0
}

/// Every audit entry, newest first, following the service's cursor.
pub(crate) fn all_audit_rows(app: &TestApp) -> Vec<AuditEntry> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    let mut all = vec![];
    let mut before: Option<String> = None;
    loop {
        let (rows, next) =
            coffer::audit::page(&mut c, &Actor::system(), before.as_deref()).expect("audit");
        all.extend(rows);
        match next {
            Some(n) => before = Some(n),
            None => return all,
        }
    }
}

fn id_from(r: &reqwest::Response, prefix: &str) -> String {
    let loc = location(r);
    assert!(
        loc.starts_with(prefix),
        "redirect to {loc}, expected {prefix}…"
    );
    loc.trim_start_matches(prefix).to_string()
}

/// A GET in another browser, without following redirects.
async fn browser_get(b: &TestBrowser<'_>, path: &str) -> reqwest::Response {
    b.client.get(b.app.url(path)).send().await.expect("GET")
}

/// The second tree: root tenant Initech, merchant Initech Store, tenant manager initech-boss.
struct Initech {
    tenant: String,
    store: String,
    boss: String,
}

const BOSS_PASSWORD: &str = "initech-boss-password";

/// Creates the Initech tree through the console; the app's own client must be logged in as admin.
async fn create_initech(app: &TestApp) -> Initech {
    let r = app
        .post_form("/tenants", &[("parent_id", ""), ("name", "Initech")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let tenant = id_from(&r, "/tenants/");
    let r = app
        .post_form(
            "/merchants",
            &[("tenant_id", &tenant), ("name", "Initech Store")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let store = id_from(&r, "/merchants/");
    let r = app
        .post_form(
            "/users",
            &[
                ("username", "initech-boss"),
                ("role", "tenant_manager"),
                ("tenant_id", &tenant),
                ("merchant_id", ""),
                ("password", BOSS_PASSWORD),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let boss = id_from(&r, "/users/");
    Initech {
        tenant,
        store,
        boss,
    }
}

fn extract_secret(body: &str) -> Option<String> {
    let marker = "<code class=\"secret\">";
    let i = body.find(marker)? + marker.len();
    let j = body[i..].find('<')?;
    Some(body[i..i + j].to_string())
}

fn entry_rows(body: &str) -> usize {
    body.matches("<tr class=\"entry\">").count()
}

fn older_link(body: &str) -> Option<String> {
    let marker = "href=\"/audit?before=";
    let i = body.find(marker)? + "href=\"".len();
    let j = body[i..].find('"')?;
    Some(body[i..i + j].to_string())
}

// ---------------------------------------------------------------------------------------------
// Merchants

#[tokio::test]
async fn a_manager_creates_renames_and_deactivates_a_merchant_and_every_step_is_audited() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (s, list) = app.get_html("/merchants").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains(
        ">Acme Shop</a></td><td>Acme Group</td><td><span class=\"badge badge-ok\">Active<"
    ));
    assert!(list.contains(
        ">Acme Outlet</a></td><td>Acme Retail</td><td><span class=\"badge badge-ok\">Active<"
    ));
    assert!(list.contains("<th scope=\"col\">Tenant</th>"));
    assert!(
        list.contains("action=\"/merchants\""),
        "the new-merchant form"
    );
    let retail = app.id_of("/tenants", "tenants", "Acme Retail").await;
    assert!(list.contains(&format!("<option value=\"{retail}\"")));

    let r = app
        .post_form(
            "/merchants",
            &[("tenant_id", &retail), ("name", "  Acme Kiosk ")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let kiosk = id_from(&r, "/merchants/");
    let (_, page) = app.get_html(&format!("/merchants/{kiosk}")).await;
    assert!(page.contains("Merchant Acme Kiosk created."), "flash");
    assert!(page.contains("<h1>Acme Kiosk</h1>"), "the name is trimmed");
    let e = audit_rows(&app)
        .into_iter()
        .find(|e| e.action == "merchant.create" && e.object_id == kiosk)
        .expect("create audited");
    assert_eq!(e.actor_name, "manager");
    assert_eq!(e.changes, r#"{"name":[null,"Acme Kiosk"]}"#);

    let r = app
        .post_form(
            &format!("/merchants/{kiosk}"),
            &[("name", "Acme Kiosk East")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(page.contains("Merchant Acme Kiosk East saved."));
    assert!(page.contains("value=\"Acme Kiosk East\""));
    let e = audit_rows(&app)
        .into_iter()
        .find(|e| e.action == "merchant.update" && e.object_id == kiosk)
        .expect("rename audited");
    assert_eq!(e.changes, r#"{"name":["Acme Kiosk","Acme Kiosk East"]}"#);
    let (_, audit) = app.get_html("/audit").await;
    assert!(audit.contains("name: Acme Kiosk → Acme Kiosk East"));

    // Deactivation goes through a confirmation page.
    let confirm_path = format!("/merchants/{kiosk}/deactivate");
    assert!(page.contains(&format!("href=\"{confirm_path}\"")));
    let (s, confirm) = app.get_html(&confirm_path).await;
    assert_eq!(s, StatusCode::OK);
    assert!(confirm.contains("Deactivate merchant Acme Kiosk East?"));
    assert!(confirm.contains(&format!("action=\"/merchants/{kiosk}/active\"")));
    assert!(confirm.contains("name=\"active\" value=\"false\""));
    let r = app
        .post_form(
            &format!("/merchants/{kiosk}/active"),
            &[("active", "false")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(page.contains("Merchant Acme Kiosk East deactivated."));
    assert!(page.contains("<dd><span class=\"badge\">Inactive</span></dd>"));
    let (_, list) = app.get_html("/merchants").await;
    assert!(list.contains(
        ">Acme Kiosk East</a></td><td>Acme Retail</td><td><span class=\"badge\">Inactive<"
    ));
    let e = audit_rows(&app)
        .into_iter()
        .find(|e| e.action == "merchant.deactivate" && e.object_id == kiosk)
        .expect("deactivation audited");
    assert_eq!(e.changes, r#"{"active":["true","false"]}"#);
    assert_eq!(e.actor_name, "manager");

    // Only "true" and "false" are accepted.
    let r = app
        .post_form(&format!("/merchants/{kiosk}/active"), &[("active", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let r = app
        .post_form(&format!("/merchants/{kiosk}/active"), &[("active", "true")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&format!("/merchants/{kiosk}")).await;
    assert!(page.contains("<dd><span class=\"badge badge-ok\">Active</span></dd>"));
}

#[tokio::test]
async fn an_invalid_merchant_form_is_rerendered_with_422_keeping_values_and_messages() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let group = app.id_of("/tenants", "tenants", "Acme Group").await;
    let retail = app.id_of("/tenants", "tenants", "Acme Retail").await;
    let before = all_audit_rows(&app).len();

    let r = app
        .post_form("/merchants", &[("tenant_id", &retail), ("name", "   ")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("This field is required."));
    assert!(body.contains("aria-invalid=\"true\" aria-describedby=\"name-error\""));
    assert!(
        body.contains(&format!("<option value=\"{retail}\" selected>")),
        "the chosen tenant is kept"
    );

    let r = app
        .post_form(
            "/merchants",
            &[("tenant_id", &group), ("name", "Acme Shop")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("A merchant of this tenant already has this name."));
    assert!(
        body.contains("value=\"Acme Shop\""),
        "the entered name is kept"
    );

    let r = app
        .post_form("/merchants", &[("tenant_id", ""), ("name", "Nowhere")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains("Choose a tenant."));

    // Renaming: empty and duplicate names are refused the same way.
    let outlet = app.id_of("/merchants", "merchants", "Acme Outlet").await;
    let r = app
        .post_form(&format!("/merchants/{outlet}"), &[("name", "")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("This field is required.")
    );
    // The same name in another tenant is fine …
    let r = app
        .post_form(
            "/merchants",
            &[("tenant_id", &retail), ("name", "Acme Shop")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // … but not twice in one tenant.
    let r = app
        .post_form(&format!("/merchants/{outlet}"), &[("name", "Acme Shop")])
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("A merchant of this tenant already has this name."));
    assert!(body.contains("<h1>Acme Outlet</h1>") && body.contains("value=\"Acme Shop\""));

    let after = all_audit_rows(&app);
    assert_eq!(after.len(), before + 1, "only the valid create is audited");
    assert_eq!(after[0].action, "merchant.create");
    let (_, page) = app.get_html(&format!("/merchants/{outlet}")).await;
    assert!(page.contains("<h1>Acme Outlet</h1>"), "nothing renamed");
}

#[tokio::test]
async fn a_manager_gets_404_for_another_trees_merchant_and_nothing_changes() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let initech = create_initech(&app).await;
    let store = format!("/merchants/{}", initech.store);

    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let (_, list) = b.get_html("/merchants").await;
    assert!(list.contains("Acme Shop") && !list.contains("Initech"));
    assert!(
        !list.contains(&initech.tenant),
        "Initech is not offered as a tenant"
    );
    assert_eq!(b.get_html(&store).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get_html(&format!("{store}/deactivate")).await.0,
        StatusCode::NOT_FOUND
    );
    let r = b.post_form(&store, &[("name", "Pwned Store")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b.post_form(&store, &[("name", "")]).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "not a form to re-render");
    let r = b
        .post_form(&format!("{store}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b
        .post_form(
            "/merchants",
            &[("tenant_id", &initech.tenant), ("name", "Inside Initech")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let (_, page) = app.get_html(&store).await;
    assert!(
        page.contains("<h1>Initech Store</h1>")
            && page.contains("<dd><span class=\"badge badge-ok\">Active</span></dd>")
    );
    let (_, list) = app.get_html("/merchants").await;
    assert!(!list.contains("Inside Initech") && !list.contains("Pwned"));
    assert!(
        !audit_rows(&app)
            .iter()
            .any(|e| e.actor_name == "manager" && e.object_id == initech.store)
    );
}

#[tokio::test]
async fn a_merchant_admin_sees_only_its_merchant_and_cannot_change_it() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    let outlet = app.id_of("/merchants", "merchants", "Acme Outlet").await;
    let group = app.id_of("/tenants", "tenants", "Acme Group").await;

    let m = app.other_browser();
    m.login_ok("merchant", "merchant-demo").await;
    let (s, list) = m.get_html("/merchants").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains(">Acme Shop</a>") && !list.contains("Acme Outlet"));
    assert!(!list.contains("New merchant") && !list.contains("action=\"/merchants\""));
    let (s, page) = m.get_html(&format!("/merchants/{shop}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("<h1>Acme Shop</h1>"));
    assert!(
        !page.contains("<form method=\"post\" action=\"/merchants/"),
        "read-only"
    );
    assert_eq!(
        m.get_html(&format!("/merchants/{outlet}")).await.0,
        StatusCode::NOT_FOUND
    );

    let r = m
        .post_form("/merchants", &[("tenant_id", &group), ("name", "Mine")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = m
        .post_form(&format!("/merchants/{shop}"), &[("name", "Hacked Shop")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = m
        .post_form(&format!("/merchants/{shop}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        m.get_html(&format!("/merchants/{shop}/deactivate")).await.0,
        StatusCode::FORBIDDEN
    );

    let (_, list) = app.get_html("/merchants").await;
    assert!(list.contains(
        ">Acme Shop</a></td><td>Acme Group</td><td><span class=\"badge badge-ok\">Active<"
    ));
    assert!(!list.contains("Mine") && !list.contains("Hacked"));
}

// ---------------------------------------------------------------------------------------------
// Users

#[tokio::test]
async fn a_manager_creates_a_tenant_manager_and_a_merchant_admin_who_can_log_in() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let retail = app.id_of("/tenants", "tenants", "Acme Retail").await;
    let outlet = app.id_of("/merchants", "merchants", "Acme Outlet").await;

    let (s, form) = app.get_html("/users/new").await;
    assert_eq!(s, StatusCode::OK);
    assert!(form.contains("<option value=\"tenant_manager\""));
    assert!(form.contains("<option value=\"merchant_admin\" selected"));
    assert!(
        !form.contains("value=\"platform_admin\""),
        "roles above the actor's are not offered"
    );
    for field in ["username", "role", "tenant_id", "merchant_id", "password"] {
        assert!(form.contains(&format!("<label for=\"{field}\"")), "{field}");
    }

    let r = app
        .post_form(
            "/users",
            &[
                ("username", "Retail-Boss"),
                ("role", "tenant_manager"),
                ("tenant_id", &retail),
                ("merchant_id", ""),
                ("password", "retail-boss-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let boss = id_from(&r, "/users/");
    let (_, page) = app.get_html(&format!("/users/{boss}")).await;
    assert!(page.contains("User retail-boss created."));
    assert!(
        page.contains("<dd>Tenant manager</dd>") && page.contains("<dd>Tenant Acme Retail</dd>")
    );

    let r = app
        .post_form(
            "/users",
            &[
                ("username", "outlet-admin"),
                ("role", "merchant_admin"),
                ("tenant_id", ""),
                ("merchant_id", &outlet),
                ("password", "outlet-admin-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let outlet_admin = id_from(&r, "/users/");

    let (_, list) = app.get_html("/users").await;
    assert!(list.contains(&format!(
        "<a href=\"/users/{boss}\">retail-boss</a></td><td>Tenant manager</td><td>Tenant Acme Retail</td><td><span class=\"badge badge-ok\">Active<"
    )));
    assert!(list.contains(&format!(
        "<a href=\"/users/{outlet_admin}\">outlet-admin</a></td><td>Merchant admin</td><td>Merchant Acme Outlet</td><td><span class=\"badge badge-ok\">Active<"
    )));

    let rows = audit_rows(&app);
    for (id, role) in [(&boss, "tenant_manager"), (&outlet_admin, "merchant_admin")] {
        let e = rows
            .iter()
            .find(|e| e.action == "user.create" && &e.object_id == id)
            .expect("user.create audited");
        assert_eq!(e.actor_name, "manager");
        assert!(e.changes.contains(role), "{}", e.changes);
        assert!(!e.changes.contains("password") && !e.summary.contains("password"));
    }

    let b = app.other_browser();
    b.login_ok("outlet-admin", "outlet-admin-password").await;
    let (_, list) = b.get_html("/merchants").await;
    assert!(list.contains("Acme Outlet") && !list.contains("Acme Shop"));
    let c = app.other_browser();
    c.login_ok("retail-boss", "retail-boss-password").await;
    let (_, list) = c.get_html("/merchants").await;
    assert!(list.contains("Acme Outlet") && !list.contains("Acme Shop"));
}

#[tokio::test]
async fn a_manager_cannot_grant_platform_admin_or_reach_into_another_tree() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let initech = create_initech(&app).await;
    let group = app.id_of("/tenants", "tenants", "Acme Group").await;

    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let r = b
        .post_form(
            "/users",
            &[
                ("username", "sneaky-admin"),
                ("role", "platform_admin"),
                ("tenant_id", &group),
                ("merchant_id", ""),
                ("password", "sneaky-admin-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("You cannot grant a role above your own."));
    assert!(body.contains("aria-describedby=\"role-error\""));
    assert!(
        body.contains("value=\"sneaky-admin\""),
        "the username is kept"
    );
    assert!(
        !body.contains("sneaky-admin-password"),
        "the password is never echoed"
    );

    let r = b
        .post_form(
            "/users",
            &[
                ("username", "initech-spy"),
                ("role", "tenant_manager"),
                ("tenant_id", &initech.tenant),
                ("merchant_id", ""),
                ("password", "initech-spy-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Choose a tenant you manage.")
    );
    let r = b
        .post_form(
            "/users",
            &[
                ("username", "initech-spy"),
                ("role", "merchant_admin"),
                ("tenant_id", ""),
                ("merchant_id", &initech.store),
                ("password", "initech-spy-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("Choose a merchant you manage.")
    );

    let boss = format!("/users/{}", initech.boss);
    let (_, list) = b.get_html("/users").await;
    assert!(list.contains(">merchant</a>") && !list.contains("initech-boss"));
    assert_eq!(b.get_html(&boss).await.0, StatusCode::NOT_FOUND);
    assert_eq!(
        b.get_html(&format!("{boss}/deactivate")).await.0,
        StatusCode::NOT_FOUND
    );
    let r = b
        .post_form(&format!("{boss}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    let r = b
        .post_form(&format!("{boss}/reset-password"), &[("confirmed", "yes")])
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // Nothing happened: no new users, and initech-boss still logs in with the same password.
    let (_, list) = app.get_html("/users").await;
    assert!(!list.contains("sneaky-admin") && !list.contains("initech-spy"));
    let i = app.other_browser();
    i.login_ok("initech-boss", BOSS_PASSWORD).await;
    let (_, list) = i.get_html("/merchants").await;
    assert!(list.contains("Initech Store") && !list.contains("Acme"));
}

#[tokio::test]
async fn deactivating_a_user_ends_their_session_and_they_cannot_log_in_again() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let victim = app.id_of("/users", "users", "merchant").await;
    let me = app.id_of("/users", "users", "manager").await;

    let b = app.other_browser();
    b.login_ok("merchant", "merchant-demo").await;
    assert_eq!(b.get_html("/merchants").await.0, StatusCode::OK);

    let (_, page) = app.get_html(&format!("/users/{victim}")).await;
    let confirm_path = format!("/users/{victim}/deactivate");
    assert!(page.contains(&format!("href=\"{confirm_path}\"")));
    let (s, confirm) = app.get_html(&confirm_path).await;
    assert_eq!(s, StatusCode::OK);
    assert!(confirm.contains("Deactivate user merchant?"));
    assert!(confirm.contains("name=\"active\" value=\"false\""));
    let r = app
        .post_form(&format!("/users/{victim}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(
        page.contains("User merchant deactivated.")
            && page.contains("<dd><span class=\"badge\">Inactive</span></dd>")
    );

    let r = browser_get(&b, "/merchants").await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/login?next=%2Fmerchants");
    let r = b
        .post_form(
            "/login",
            &[("username", "merchant"), ("password", "merchant-demo")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let e = audit_rows(&app)
        .into_iter()
        .find(|e| e.action == "user.deactivate" && e.object_id == victim)
        .expect("audited");
    assert_eq!(e.actor_name, "manager");
    assert_eq!(e.changes, r#"{"active":["true","false"]}"#);

    // Activating again lets them back in; nobody can deactivate themselves.
    let r = app
        .post_form(&format!("/users/{victim}/active"), &[("active", "true")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    b.login_ok("merchant", "merchant-demo").await;
    let r = app
        .post_form(&format!("/users/{me}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, page) = app.get_html(&location(&r)).await;
    assert_eq!(s, StatusCode::OK, "still logged in");
    assert!(page.contains("You cannot deactivate yourself."));
}

#[tokio::test]
async fn a_password_reset_shows_a_new_password_once_which_then_works_for_login() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let victim = app.id_of("/users", "users", "merchant").await;
    let b = app.other_browser();
    b.login_ok("merchant", "merchant-demo").await;

    let r = app
        .post_form(
            &format!("/users/{victim}/reset-password"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let body = r.text().await.expect("body");
    assert!(body.contains("flash-secret"));
    let pw = extract_secret(&body).expect("the new password is shown");
    assert_eq!(pw.len(), 24);
    let (_, again) = app.get_html(&format!("/users/{victim}")).await;
    assert!(!again.contains(&pw), "shown only once");

    assert_eq!(
        browser_get(&b, "/merchants").await.status(),
        StatusCode::SEE_OTHER,
        "the user's sessions end"
    );
    let r = b
        .post_form(
            "/login",
            &[("username", "merchant"), ("password", "merchant-demo")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "old password");
    b.login_ok("merchant", &pw).await;

    let rows = audit_rows(&app);
    let e = rows
        .iter()
        .find(|e| e.action == "user.reset_password" && e.object_id == victim)
        .expect("audited");
    assert_eq!(e.actor_name, "manager");
    assert!(
        rows.iter()
            .all(|e| !e.summary.contains(&pw) && !e.changes.contains(&pw)),
        "the password is not in the audit log"
    );
    let (_, audit) = app.get_html("/audit").await;
    assert!(audit.contains("Reset the password of merchant") && !audit.contains(&pw));
}

#[tokio::test]
async fn changing_ones_own_password_checks_the_current_one_and_retires_the_old_one() {
    let app = TestApp::demo().await;
    app.login_ok("merchant", "merchant-demo").await;
    let other = app.other_browser();
    other.login_ok("merchant", "merchant-demo").await;

    let (s, form) = app.get_html("/account/password").await;
    assert_eq!(s, StatusCode::OK);
    for f in ["current_password", "new_password", "confirm_password"] {
        assert!(form.contains(&format!("<label for=\"{f}\"")), "{f}");
    }

    let r = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "not-my-password"),
                ("new_password", "a-brand-new-password"),
                ("confirm_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("The current password is not correct."));
    assert!(body.contains("aria-describedby=\"current_password-error\""));
    assert!(!body.contains("not-my-password") && !body.contains("a-brand-new-password"));

    let r = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "merchant-demo"),
                ("new_password", "a-brand-new-password"),
                ("confirm_password", "a-different-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("The passwords do not match.")
    );

    let r = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "merchant-demo"),
                ("new_password", "short"),
                ("confirm_password", "short"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("At least 12 characters.")
    );
    assert_eq!(
        browser_get(&other, "/merchants").await.status(),
        StatusCode::OK,
        "failed attempts change nothing"
    );

    let r = app
        .post_form(
            "/account/password",
            &[
                ("current_password", "merchant-demo"),
                ("new_password", "a-brand-new-password"),
                ("confirm_password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (s, page) = app.get_html(&location(&r)).await;
    assert_eq!(s, StatusCode::OK, "this session continues");
    assert!(page.contains("Your password has been changed."));
    assert_eq!(
        browser_get(&other, "/merchants").await.status(),
        StatusCode::SEE_OTHER,
        "other sessions end"
    );
    let r = other
        .post_form(
            "/login",
            &[("username", "merchant"), ("password", "merchant-demo")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "old password");
    other.login_ok("merchant", "a-brand-new-password").await;

    let rows = audit_rows(&app);
    let e = rows
        .iter()
        .find(|e| e.action == "user.change_password")
        .expect("audited");
    assert_eq!(e.actor_name, "merchant");
    assert!(
        rows.iter()
            .all(|e| !e.changes.contains("a-brand-new-password")
                && !e.summary.contains("a-brand-new-password"))
    );
}

#[tokio::test]
async fn a_merchant_admin_sees_its_merchants_users_read_only_and_cannot_create_any() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    let manager = app.id_of("/users", "users", "manager").await;
    let r = app
        .post_form(
            "/users",
            &[
                ("username", "shop-clerk"),
                ("role", "merchant_admin"),
                ("tenant_id", ""),
                ("merchant_id", &shop),
                ("password", "shop-clerk-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let clerk = id_from(&r, "/users/");

    let m = app.other_browser();
    m.login_ok("merchant", "merchant-demo").await;
    let (s, list) = m.get_html("/users").await;
    assert_eq!(s, StatusCode::OK);
    assert!(list.contains(">merchant</a>") && list.contains(">shop-clerk</a>"));
    assert!(!list.contains(">manager</a>") && !list.contains(">admin</a>"));
    assert!(!list.contains("/users/new"));
    let (s, page) = m.get_html(&format!("/users/{clerk}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        !page.contains("reset-password") && !page.contains("/active\""),
        "read-only"
    );
    assert_eq!(
        m.get_html(&format!("/users/{manager}")).await.0,
        StatusCode::NOT_FOUND
    );

    assert_eq!(m.get_html("/users/new").await.0, StatusCode::FORBIDDEN);
    let r = m
        .post_form(
            "/users",
            &[
                ("username", "clerk-two"),
                ("role", "merchant_admin"),
                ("tenant_id", ""),
                ("merchant_id", &shop),
                ("password", "clerk-two-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = m
        .post_form(&format!("/users/{clerk}/active"), &[("active", "false")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = m
        .post_form(
            &format!("/users/{clerk}/reset-password"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        m.get_html(&format!("/users/{clerk}/deactivate")).await.0,
        StatusCode::FORBIDDEN
    );

    let (_, list) = app.get_html("/users").await;
    assert!(!list.contains("clerk-two"));
    let c = app.other_browser();
    c.login_ok("shop-clerk", "shop-clerk-password").await;
}

// ---------------------------------------------------------------------------------------------
// Audit log

#[tokio::test]
async fn the_audit_log_shows_entries_newest_first_with_actors_scoped_to_the_viewer() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    create_initech(&app).await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    let outlet = app.id_of("/merchants", "merchants", "Acme Outlet").await;

    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    for (id, name) in [(&outlet, "Acme Outlet Two"), (&shop, "Acme Shop Two")] {
        let r = b
            .post_form(&format!("/merchants/{id}"), &[("name", name)])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
    }

    let (s, audit) = b.get_html("/audit").await;
    assert_eq!(s, StatusCode::OK);
    // Times read relative, the exact UTC time on hover (`web::views::when`).
    assert!(audit.contains("<th scope=\"col\">Time</th>"));
    assert!(audit.contains("<td class=\"when\"><time datetime=\""));
    let newer = audit
        .find("Renamed merchant Acme Shop to Acme Shop Two")
        .expect("shop rename");
    let older = audit
        .find("Renamed merchant Acme Outlet to Acme Outlet Two")
        .expect("outlet rename");
    assert!(newer < older, "newest first");
    assert!(audit.contains("<td class=\"actor\">manager</td>"));
    assert!(
        audit.contains("<td class=\"actor\">system</td>"),
        "demo data"
    );
    assert!(audit.contains("name: Acme Outlet → Acme Outlet Two"));
    assert!(
        !audit.contains("Initech"),
        "another tree's entries are hidden"
    );
    assert!(!audit.contains("Older entries"));

    let (_, all) = app.get_html("/audit").await;
    assert!(all.contains("Created merchant Initech Store in Initech"));
    assert!(all.contains("Created user initech-boss"));
    assert!(all.contains("<td class=\"actor\">admin</td>"));
    // The Initech manager sees their own tree only.
    let i = app.other_browser();
    i.login_ok("initech-boss", BOSS_PASSWORD).await;
    let (_, theirs) = i.get_html("/audit").await;
    assert!(theirs.contains("Created merchant Initech Store") && !theirs.contains("Acme"));

    let m = app.other_browser();
    m.login_ok("merchant", "merchant-demo").await;
    let (s, mine) = m.get_html("/audit").await;
    assert_eq!(s, StatusCode::OK);
    assert!(mine.contains("Renamed merchant Acme Shop to Acme Shop Two"));
    assert!(
        !mine.contains("Acme Outlet"),
        "another merchant's entries are hidden"
    );
    assert!(!mine.contains("Initech"));
    assert!(!mine.contains("Acme Retail"));
}

#[tokio::test]
async fn the_audit_log_pages_by_fifty_with_an_older_entries_link_and_checks_the_cursor() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let shop = app.id_of("/merchants", "merchants", "Acme Shop").await;
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        for i in 1..=55 {
            coffer::console::merchants::rename(
                &mut c,
                &Actor::system(),
                &shop,
                &format!("Acme Shop {i}"),
            )
            .expect("rename");
        }
    }
    let total = all_audit_rows(&app).len();
    assert!(total > 55 && total <= 100, "{total}");

    let (s, first) = app.get_html("/audit").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(entry_rows(&first), 50);
    assert!(first.contains("Renamed merchant Acme Shop 54 to Acme Shop 55"));
    assert!(
        first.find("Acme Shop 54 to Acme Shop 55") < first.find("Acme Shop 53 to Acme Shop 54"),
        "newest first"
    );
    assert!(
        !first.contains("Created tenant Acme Group"),
        "the oldest is on page 2"
    );
    let older = older_link(&first).expect("Older entries link");
    assert!(first.contains("rel=\"next\">Older entries</a>"));

    let (s, second) = app.get_html(&older).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(entry_rows(&second), total - 50);
    assert!(second.contains("Created tenant Acme Group"));
    assert!(
        !second.contains("Acme Shop 54 to Acme Shop 55"),
        "no overlap"
    );
    assert!(older_link(&second).is_none(), "the last page");
    assert!(second.contains("href=\"/audit\">Newest entries</a>"));

    for bad in [
        "/audit?before=garbage",
        "/audit?before=",
        "/audit?before=0190abcdef0123456789abcdef01234",
        "/audit?before=%27%20OR%201=1--",
    ] {
        let (s, body) = app.get_html(bad).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(body.contains("400"), "{bad}: an error page");
    }
    let (s, body) = app
        .get_html("/audit?before=00000000000000000000000000000000")
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(entry_rows(&body), 0);
    assert!(body.contains("No entries older than this."));
}
