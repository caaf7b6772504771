//! Console sessions and accounts (issue 12): who may reset whom, the idle and absolute ends of a
//! session (measured on the server with the app's clock, which these tests move forward instead
//! of sleeping), the return to the page asked for after signing in (never to another site), and
//! the headers every response carries.

use reqwest::StatusCode;

use crate::helpers::{TestApp, TestBrowser, client, extract_csrf, location};
use crate::identity::{enroll, totp};

const PW: &str = "a-long-enough-password-1";

/// The session cookie (`name=value`) the last response set.
fn session_cookie(r: &reqwest::Response) -> String {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("coffer_session="))
        .map(|c| c.split(';').next().unwrap_or("").to_string())
        .expect("session cookie")
}

/// A GET without following redirects: its status and Location.
async fn reach(b: &TestBrowser<'_>, path: &str) -> (StatusCode, String) {
    let r = b.client.get(b.app.url(path)).send().await.expect("GET");
    (r.status(), location(&r))
}

/// A GET with a copied cookie, from a client with no cookie jar of its own.
async fn replay(app: &TestApp, path: &str, cookie: &str) -> (StatusCode, String) {
    let r = client()
        .get(app.url(path))
        .header("cookie", cookie)
        .send()
        .await
        .expect("GET");
    (r.status(), location(&r))
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

// ---- who may reset whom ----

/// Creates a user as the signed-in `b` (who must be allowed to); returns its id.
async fn create_user(
    b: &TestBrowser<'_>,
    username: &str,
    role: &str,
    tenant: &str,
    merchant: &str,
) -> String {
    let r = b
        .post_form(
            "/users",
            &[
                ("username", username),
                ("role", role),
                ("tenant_id", tenant),
                ("merchant_id", merchant),
                ("password", PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "create {username}");
    location(&r)
        .strip_prefix("/users/")
        .expect("user page")
        .to_string()
}

async fn find_id(b: &TestBrowser<'_>, list: &str, kind: &str, label: &str) -> String {
    let (_, body) = b.get_html(list).await;
    crate::helpers::find_link_id(&body, kind, label)
        .unwrap_or_else(|| panic!("no {label} in {list}"))
}

/// Whether `username` has two-factor authentication (a row, pending or on).
fn has_two_factor(app: &TestApp, username: &str) -> bool {
    use coffer::db::schema::{user_two_factor as t, users as u};
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    t::table
        .inner_join(u::table.on(u::id.eq(t::user_id)))
        .filter(u::username.eq(username))
        .count()
        .get_result::<i64>(&mut *c)
        .expect("count")
        > 0
}

/// Signs `username` in on a fresh browser and switches two-factor on.
async fn with_two_factor(app: &TestApp, username: &str, password: &str) {
    let b = app.other_browser();
    b.login_ok(username, password).await;
    enroll(&b).await;
    assert!(has_two_factor(app, username));
}

/// What the caller's page of user `id` offers, and what both resets answer.
struct Resets {
    buttons_shown: bool,
    password: StatusCode,
    two_factor: StatusCode,
}

async fn try_resets(b: &TestBrowser<'_>, id: &str) -> Resets {
    let (s, page) = b.get_html(&format!("/users/{id}")).await;
    let buttons_shown = s == StatusCode::OK
        && (page.contains(&format!("action=\"/users/{id}/reset-password\""))
            || page.contains(&format!("action=\"/users/{id}/reset-two-factor\"")));
    let two_factor = b
        .post_form(
            &format!("/users/{id}/reset-two-factor"),
            &[("confirmed", "yes")],
        )
        .await
        .status();
    let r = b
        .post_form(
            &format!("/users/{id}/reset-password"),
            &[("confirmed", "yes")],
        )
        .await;
    let password = r.status();
    if password == StatusCode::FORBIDDEN {
        let body = r.text().await.expect("body");
        assert!(body.contains("You are not allowed to do this."), "{body}");
    }
    Resets {
        buttons_shown,
        password,
        two_factor,
    }
}

#[tokio::test]
async fn a_manager_resets_users_below_their_tenant_only_and_never_another_manager_of_it() {
    let app = TestApp::demo().await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let group = find_id(&admin, "/tenants", "tenants", "Acme Group").await;
    let retail = find_id(&admin, "/tenants", "tenants", "Acme Retail").await;
    let outlet = find_id(&admin, "/merchants", "merchants", "Acme Outlet").await;
    let peer = create_user(&admin, "peer-manager", "tenant_manager", &group, "").await;
    let below = create_user(&admin, "retail-manager", "tenant_manager", &retail, "").await;
    let outlet_admin = create_user(&admin, "outlet-admin", "merchant_admin", "", &outlet).await;
    for u in ["peer-manager", "retail-manager", "outlet-admin"] {
        with_two_factor(&app, u, PW).await;
    }
    with_two_factor(&app, "merchant", "merchant-demo").await;
    let shop_admin = crate::fuzz::ids_of(&app, "users", "WHERE username = 'merchant'")
        .pop()
        .expect("merchant");
    let platform_admin = crate::fuzz::ids_of(&app, "users", "WHERE username = 'admin'")
        .pop()
        .expect("admin");

    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;

    // Another manager of the manager's own tenant: no reset offered, both refused with 403,
    // and nothing changed.
    let r = try_resets(&m, &peer).await;
    assert!(!r.buttons_shown, "no reset button for a peer manager");
    assert_eq!(r.password, StatusCode::FORBIDDEN);
    assert_eq!(r.two_factor, StatusCode::FORBIDDEN);
    let (_, page) = m.get_html(&format!("/users/{peer}")).await;
    assert!(page.contains("id=\"no-reset\""), "{page}");
    assert!(has_two_factor(&app, "peer-manager"));
    app.other_browser().login_ok("peer-manager", PW).await;

    // A manager of a strict sub-tenant, a merchant admin of the tenant's own merchant and one
    // of a sub-tenant's merchant: offered and done.
    for (id, name, old) in [
        (&below, "retail-manager", PW),
        (&shop_admin, "merchant", "merchant-demo"),
        (&outlet_admin, "outlet-admin", PW),
    ] {
        let r = try_resets(&m, id).await;
        assert!(r.buttons_shown, "{name}: reset offered");
        assert_eq!(r.two_factor, StatusCode::SEE_OTHER, "{name}");
        assert_eq!(r.password, StatusCode::OK, "{name}");
        assert!(!has_two_factor(&app, name), "{name}: two-factor reset");
        let r = app
            .other_browser()
            .post_form("/login", &[("username", name), ("password", old)])
            .await;
        assert_eq!(
            r.status(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "{name}: the old password is gone"
        );
    }

    // The platform admin is outside the manager's scope: 404, as today.
    let r = try_resets(&m, &platform_admin).await;
    assert_eq!(r.password, StatusCode::NOT_FOUND);
    assert_eq!(r.two_factor, StatusCode::NOT_FOUND);

    // Only a platform admin resets a manager of the same tenant.
    let r = try_resets(&admin, &peer).await;
    assert!(r.buttons_shown);
    assert_eq!(r.two_factor, StatusCode::SEE_OTHER);
    assert_eq!(r.password, StatusCode::OK);
    assert!(!has_two_factor(&app, "peer-manager"));
}

#[tokio::test]
async fn a_sub_tenants_manager_cannot_reset_the_parent_tenants_manager() {
    let app = TestApp::demo().await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let retail = find_id(&admin, "/tenants", "tenants", "Acme Retail").await;
    let outlet = find_id(&admin, "/merchants", "merchants", "Acme Outlet").await;
    create_user(&admin, "retail-manager", "tenant_manager", &retail, "").await;
    let retail_peer = create_user(&admin, "retail-peer", "tenant_manager", &retail, "").await;
    let outlet_admin = create_user(&admin, "outlet-admin", "merchant_admin", "", &outlet).await;
    let manager = crate::fuzz::ids_of(&app, "users", "WHERE username = 'manager'")
        .pop()
        .expect("manager");
    let r = app.other_browser();
    r.login_ok("retail-manager", PW).await;
    // The parent tenant's manager is outside the subtree: 404.
    let got = try_resets(&r, &manager).await;
    assert_eq!(
        (got.password, got.two_factor),
        (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND)
    );
    // A peer of Acme Retail: 403; Acme Outlet's merchant admin: allowed.
    let got = try_resets(&r, &retail_peer).await;
    assert!(!got.buttons_shown);
    assert_eq!(
        (got.password, got.two_factor),
        (StatusCode::FORBIDDEN, StatusCode::FORBIDDEN)
    );
    let got = try_resets(&r, &outlet_admin).await;
    assert!(got.buttons_shown);
    assert_eq!(got.password, StatusCode::OK);
    // No two-factor to reset: the page says so (a redirect with a message), not a refusal.
    assert_eq!(got.two_factor, StatusCode::SEE_OTHER);
}

// ---- idle and absolute session lifetime ----

#[test]
fn the_defaults_are_15_idle_minutes_and_12_hours() {
    use clap::Parser;
    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        settings: coffer::config::Settings,
    }
    let cli = Cli::try_parse_from(["coffer"]).expect("parse");
    if std::env::var_os("COFFER_SESSION_IDLE_MINUTES").is_none() {
        assert_eq!(cli.settings.session_idle_minutes, 15);
    }
    if std::env::var_os("COFFER_SESSION_MAX_HOURS").is_none() {
        assert_eq!(cli.settings.session_max_hours, 12);
    }
    let t = coffer::config::Settings::for_tests(std::path::Path::new("/nonexistent"), None);
    assert_eq!((t.session_idle_minutes, t.session_max_hours), (15, 12));
    for bad in [
        ["coffer", "--session-idle-minutes", "0"],
        ["coffer", "--session-max-hours", "0"],
        ["coffer", "--session-max-hours", "x"],
    ] {
        assert!(Cli::try_parse_from(bad).is_err(), "{bad:?}");
    }
}

#[tokio::test]
async fn a_session_idle_for_15_minutes_ends_on_the_server_and_its_cookie_no_longer_works() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    // Each request keeps it alive: 3 × 14 minutes is longer than the idle time.
    for _ in 0..3 {
        app.clock.advance(minutes(14));
        assert_eq!(reach(&b, "/tenants").await.0, StatusCode::OK);
    }
    let r = b.client.get(app.url("/tenants")).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = session_cookie(&r);
    assert_eq!(replay(&app, "/tenants", &cookie).await.0, StatusCode::OK);

    app.clock
        .advance(minutes(15) + chrono::Duration::seconds(2));
    // The cookie, replayed as it was (a browser would still hold it: its expiry is not the
    // limit), signs nobody in.
    assert_eq!(
        replay(&app, "/tenants", &cookie).await,
        (StatusCode::SEE_OTHER, "/login?next=%2Ftenants".to_string())
    );
    assert_eq!(
        reach(&b, "/merchants").await,
        (
            StatusCode::SEE_OTHER,
            "/login?next=%2Fmerchants".to_string()
        )
    );
}

#[tokio::test]
async fn a_session_ends_12_hours_after_sign_in_however_active_it_is() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    // 51 × 14 minutes + 5 = 719 minutes of continuous use.
    for _ in 0..51 {
        app.clock.advance(minutes(14));
        assert_eq!(reach(&b, "/tenants").await.0, StatusCode::OK);
    }
    app.clock.advance(minutes(5));
    let r = b.client.get(app.url("/tenants")).send().await.expect("GET");
    assert_eq!(r.status(), StatusCode::OK, "11 h 59 min after sign-in");
    let cookie = session_cookie(&r);
    app.clock.advance(minutes(2));
    assert_eq!(
        replay(&app, "/tenants", &cookie).await,
        (StatusCode::SEE_OTHER, "/login?next=%2Ftenants".to_string()),
        "a replayed cookie past the absolute end"
    );
    assert_eq!(reach(&b, "/tenants").await.0, StatusCode::SEE_OTHER);
    // Signing in again starts a new session.
    b.login_ok("manager", "manager-demo").await;
    assert_eq!(reach(&b, "/tenants").await.0, StatusCode::OK);
}

#[tokio::test]
async fn coffer_session_max_hours_sets_the_absolute_end_and_a_password_change_does_not_extend_it() {
    let app = TestApp::spawn_with(true, |s| {
        s.session_max_hours = 1;
        s.session_idle_minutes = 60;
    })
    .await;
    let b = app.other_browser();
    b.login_ok("merchant", "merchant-demo").await;
    app.clock.advance(minutes(40));
    // Changing the password renews the cookie, but the session is still the one signed in
    // 40 minutes ago.
    let r = b
        .post_form(
            "/account/password",
            &[
                ("current_password", "merchant-demo"),
                ("new_password", PW),
                ("confirm_password", PW),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    app.clock.advance(minutes(19));
    assert_eq!(reach(&b, "/merchants").await.0, StatusCode::OK);
    app.clock.advance(minutes(2));
    assert_eq!(
        reach(&b, "/merchants").await,
        (
            StatusCode::SEE_OTHER,
            "/login?next=%2Fmerchants".to_string()
        )
    );
}

// ---- back to the page asked for ----

/// Follows a redirect to the login page and signs in with that page's form (its hidden
/// fields included); returns where the sign-in leads.
async fn sign_in_from(b: &TestBrowser<'_>, login_url: &str, user: &str, pw: &str) -> String {
    let (s, body) = b.get_html(login_url).await;
    assert_eq!(s, StatusCode::OK);
    let token = extract_csrf(&body).expect("csrf");
    let next = hidden_next(&body);
    let mut form = vec![
        ("csrf_token", token.as_str()),
        ("username", user),
        ("password", pw),
    ];
    if let Some(n) = &next {
        form.push(("next", n.as_str()));
    }
    let r = b
        .client
        .post(b.app.url("/login"))
        .form(&form)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
    location(&r)
}

/// The value of the login form's hidden `next` field, unescaped.
fn hidden_next(body: &str) -> Option<String> {
    let marker = "name=\"next\" value=\"";
    let i = body.find(marker)? + marker.len();
    let j = body[i..].find('"')?;
    Some(
        body[i..i + j]
            .replace("&#x2f;", "/")
            .replace("&#47;", "/")
            .replace("&amp;", "&")
            .replace("&#38;", "&"),
    )
}

#[tokio::test]
async fn signing_in_returns_to_the_page_asked_for() {
    let app = TestApp::demo().await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let retail = find_id(&admin, "/tenants", "tenants", "Acme Retail").await;
    let page = format!("/tenants/{retail}?x=1&y=%2F");

    // Not signed in.
    let b = app.other_browser();
    let (s, login) = reach(&b, &page).await;
    assert_eq!(s, StatusCode::SEE_OTHER);
    assert!(login.starts_with("/login?next="), "{login}");
    assert_eq!(
        sign_in_from(&b, &login, "manager", "manager-demo").await,
        page
    );
    assert_eq!(reach(&b, &page).await.0, StatusCode::OK);

    // After the idle end.
    app.clock.advance(minutes(16));
    let (s, login) = reach(&b, "/merchants").await;
    assert_eq!(
        (s, login.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=%2Fmerchants")
    );
    assert_eq!(
        sign_in_from(&b, &login, "manager", "manager-demo").await,
        "/merchants"
    );

    // A wrong password keeps the return path for the next try.
    let c = app.other_browser();
    let (_, body) = c.get_html(&login).await;
    let r = c
        .post_form(
            "/login",
            &[
                ("username", "manager"),
                ("password", "wrong-password"),
                ("next", "/merchants"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let again = r.text().await.expect("body");
    assert_eq!(hidden_next(&again).as_deref(), Some("/merchants"));
    assert_eq!(hidden_next(&body).as_deref(), Some("/merchants"));

    // A form posted after the session ended is not replayed: back to the start page.
    app.clock.advance(minutes(16));
    let r = b.post_form("/tenants", &[("name", "x")]).await;
    assert_eq!(
        (r.status(), location(&r).as_str()),
        (StatusCode::SEE_OTHER, "/login")
    );
}

const OFF_SITE: [&str; 10] = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "//evil.example/tenants",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "javascript:alert(1)",
    "evil.example",
    "/%0d%0aSet-Cookie:x=1\r\nLocation: https://evil.example",
];

#[tokio::test]
async fn the_return_path_is_never_another_site() {
    let app = TestApp::demo().await;
    for next in OFF_SITE {
        let b = app.other_browser();
        // Not carried into the login form...
        let url = format!(
            "/login?{}",
            serde_urlencoded::to_string([("next", next)]).expect("query")
        );
        let (s, body) = b.get_html(&url).await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(hidden_next(&body), None, "{next:?}");
        // ...and not followed when posted.
        let r = b
            .post_form(
                "/login",
                &[
                    ("username", "manager"),
                    ("password", "manager-demo"),
                    ("next", next),
                ],
            )
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{next:?}");
        assert_eq!(location(&r), "/", "{next:?}");
    }
}

#[tokio::test]
async fn with_two_factor_the_return_happens_after_the_code_step() {
    let app = TestApp::demo().await;
    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;
    let (secret, recovery) = enroll(&m).await;

    let b = app.other_browser();
    let (_, login) = reach(&b, "/users").await;
    assert_eq!(login, "/login?next=%2Fusers");
    assert_eq!(
        sign_in_from(&b, &login, "manager", "manager-demo").await,
        "/login/two-factor"
    );
    // The password alone reaches nothing.
    assert_eq!(reach(&b, "/users").await.0, StatusCode::SEE_OTHER);
    let r = b
        .post_form("/login/two-factor", &[("code", &totp(&secret, 1))])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/users");
    assert_eq!(reach(&b, "/users").await.0, StatusCode::OK);

    // An off-site return path through the code step: the start page.
    let c = app.other_browser();
    let r = c
        .post_form(
            "/login",
            &[
                ("username", "manager"),
                ("password", "manager-demo"),
                ("next", "//evil.example"),
            ],
        )
        .await;
    assert_eq!(location(&r), "/login/two-factor");
    let r = c
        .post_form("/login/two-factor", &[("code", &recovery[0])])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/");
}

// ---- headers ----

fn header(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

#[tokio::test]
async fn every_console_response_says_no_store_and_static_assets_may_be_cached() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    let mut seen = vec![];
    // Signed out: the login page, a redirect to it, an unknown page, a refused form.
    seen.push((
        "login",
        b.client.get(app.url("/login")).send().await.expect("GET"),
    ));
    seen.push((
        "redirect",
        b.client.get(app.url("/tenants")).send().await.expect("GET"),
    ));
    seen.push((
        "404",
        b.client
            .get(app.url("/no-such-page"))
            .send()
            .await
            .expect("GET"),
    ));
    seen.push((
        "csrf 403",
        b.client
            .post(app.url("/login"))
            .form(&[("username", "x")])
            .send()
            .await
            .expect("POST"),
    ));
    seen.push((
        "login post",
        b.post_form(
            "/login",
            &[("username", "manager"), ("password", "manager-demo")],
        )
        .await,
    ));
    seen.push((
        "page",
        b.client.get(app.url("/tenants")).send().await.expect("GET"),
    ));
    let admin = crate::fuzz::ids_of(&app, "users", "WHERE username = 'admin'")
        .pop()
        .expect("admin");
    seen.push((
        "error 404",
        b.client
            .get(app.url(&format!("/users/{admin}")))
            .send()
            .await
            .expect("GET"),
    ));
    seen.push((
        "payment page",
        b.client
            .get(app.url("/pay/unknown"))
            .send()
            .await
            .expect("GET"),
    ));
    seen.push((
        "api",
        b.client
            .get(app.url("/v2/customers"))
            .send()
            .await
            .expect("GET"),
    ));
    for (what, r) in &seen {
        assert_eq!(
            header(r, "cache-control").as_deref(),
            Some("no-store"),
            "{what}: {}",
            r.status()
        );
        assert_eq!(
            header(r, "strict-transport-security"),
            None,
            "{what}: no HSTS over plain http"
        );
        assert!(header(r, "content-security-policy").is_some(), "{what}");
    }
    assert_eq!(seen[1].1.status(), StatusCode::SEE_OTHER);
    assert_eq!(seen[3].1.status(), StatusCode::FORBIDDEN);
    assert_eq!(seen[6].1.status(), StatusCode::NOT_FOUND);
    let css = b
        .client
        .get(app.url("/static/coffer.css"))
        .send()
        .await
        .expect("GET");
    assert_eq!(css.status(), StatusCode::OK);
    assert_ne!(header(&css, "cache-control").as_deref(), Some("no-store"));
}

#[tokio::test]
async fn with_secure_cookies_every_response_carries_hsts() {
    let app = TestApp::spawn_with(true, |s| s.cookie_secure = true).await;
    let c = client();
    for path in [
        "/login",
        "/tenants",
        "/no-such-page",
        "/static/coffer.css",
        "/pay/unknown",
        "/v2/customers",
        "/healthz",
    ] {
        let r = c.get(app.url(path)).send().await.expect("GET");
        assert_eq!(
            header(&r, "strict-transport-security").as_deref(),
            Some("max-age=31536000; includeSubDomains"),
            "{path}"
        );
    }
}
