//! Accessibility sweep: axe-core (WCAG 2.0/2.1 A and AA) over every console GET page, as the
//! platform admin and as a merchant admin (the pages a merchant sees), logged out for the login
//! page, half signed in (password right, two-factor code pending) for the code page, plus error pages and forms re-rendered with validation messages. Any serious or critical
//! violation fails, with one report for all pages.
//!
//! The table must cover every GET route the source registers (`routes::all`) except the few
//! that are not HTML pages ([`NOT_HTML`]), so a new page fails this test until it is listed here.

use std::collections::BTreeSet;

use serde_json::json;

use crate::browser::{Browser, ColorScheme};
use crate::fuzz::{ids_of, register};

/// GET routes that answer JSON, not a page: the health check and the JSON APIs.
const NOT_HTML: &[&str] = &[
    "/healthz",
    "/readyz",
    "/api/",
    "/v2/",
    "/audit.csv",
    "/transactions.csv",
    "/openapi/",
];

fn is_html_route(path: &str) -> bool {
    !NOT_HTML.iter().any(|p| {
        if p.ends_with('/') {
            path.starts_with(p)
        } else {
            path == *p
        }
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Who {
    LoggedOut,
    /// `manager` (two-factor on) after the password, before the code.
    CodeStep,
    Admin,
    Merchant,
}

struct Page {
    /// The route as registered, e.g. `/tenants/{id}`.
    route: &'static str,
    who: Who,
    path: String,
    /// The start of the page's `<h1>`: proves the page itself was checked, not an error page.
    h1: &'static str,
}

fn page(route: &'static str, who: Who, path: impl Into<String>, h1: &'static str) -> Page {
    Page {
        route,
        who,
        path: path.into(),
        h1,
    }
}

/// A form submitted with bad values, to check the re-rendered page with its messages.
struct Rerender {
    who: Who,
    path: String,
    fills: Vec<(&'static str, &'static str)>,
    submit: &'static str,
}

fn one(app: &crate::helpers::TestApp, table: &str, filter: &str) -> String {
    let mut v = ids_of(app, table, filter);
    assert_eq!(v.len(), 1, "{table} {filter}: {v:?}");
    v.pop().expect("one")
}

#[tokio::test]
async fn every_console_page_has_no_serious_or_critical_axe_violation() {
    sweep(ColorScheme::Light).await;
}

/// The same sweep with the browser in dark mode (`prefers-color-scheme: dark`).
#[tokio::test]
async fn every_console_page_has_no_serious_or_critical_axe_violation_in_dark_mode() {
    sweep(ColorScheme::Dark).await;
}

/// Desktop and phone viewports of the sweep's screenshots.
const DESKTOP: (u32, u32) = (1280, 900);
const PHONE: (u32, u32) = (390, 844);

/// Every page of the table, in one colour scheme: axe at 1280×900, breadcrumbs on every signed-in
/// page, a screenshot at 1280×900 and at 390×844 (into the browser artifacts), and at 390 px no
/// sideways scrolling of the document.
async fn sweep(scheme: ColorScheme) {
    let test = match scheme {
        ColorScheme::Light => "a11y",
        ColorScheme::Dark => "a11y-dark",
    };
    let Some(b) = Browser::demo_in(test, scheme).await else {
        return;
    };
    let dark: bool = b
        .client
        .execute(
            "return matchMedia('(prefers-color-scheme: dark)').matches",
            vec![],
        )
        .await
        .expect("media query")
        .as_bool()
        .unwrap_or_default();
    assert_eq!(
        dark,
        scheme == ColorScheme::Dark,
        "the browser's colour scheme"
    );
    let app = &b.app;
    let reg = register(
        app,
        "a11y-customer",
        json!({"firstName": "Ann", "lastName": "Axe", "email": "ann@example.com"}),
    )
    .await;
    let group = one(app, "tenants", "WHERE name = 'Acme Group'");
    let retail = one(app, "tenants", "WHERE name = 'Acme Retail'");
    let shop = one(app, "merchants", "WHERE name = 'Acme Shop'");
    let manager = one(app, "users", "WHERE username = 'manager'");
    let container = one(app, "containers", "WHERE name = 'Acme Shared Profiles'");
    let connector = one(app, "connectors", "WHERE name = 'Acme Shop Cards'");
    let profile = one(
        app,
        "profiles",
        &format!("WHERE profile_guid = '{}'", reg.guid),
    );
    let missing = "00000000-0000-7000-8000-000000000000";
    // `manager` has two-factor on, for the code step's page.
    {
        let m = app.other_browser();
        m.login_ok("manager", "manager-demo").await;
        crate::identity::enroll(&m).await;
    }
    let debit: String = {
        use coffer::db::schema::transactions as t;
        use diesel::prelude::*;
        let db = app.db();
        let mut c = db.get().expect("conn");
        t::table
            .filter(t::transaction_type.eq("DEBIT"))
            .select(t::uuid)
            .first(&mut *c)
            .expect("the registration's debit")
    };

    // An open hosted payment page and an open 3-D Secure challenge (public pages).
    let redirect = async |body: serde_json::Value| -> String {
        let r = app
            .client
            .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
            .header("content-type", "application/json; charset=utf-8")
            .header(
                "authorization",
                crate::fuzz::basic("shop-api", "shop-api-demo"),
            )
            .body(body.to_string())
            .send()
            .await
            .expect("debit");
        let v: serde_json::Value = r.json().await.expect("json");
        let url = v["redirectUrl"].as_str().expect("redirectUrl");
        url.strip_prefix(&app.addr).expect("on Coffer").to_string()
    };
    let pay_page = redirect(
        json!({"merchantTransactionId": "a11y-page", "amount": "9.99",
        "currency": "EUR", "description": "Axe test",
        "customerProfileData": {"customerIdentification": "a11y-customer"}}),
    )
    .await;
    let bare_page = redirect(
        json!({"merchantTransactionId": "a11y-bare", "amount": "9.99",
        "currency": "EUR"}),
    )
    .await;
    let three_ds = crate::fuzz::card_token(app, "demo-shop-public", "4000000000003220").await;
    let challenge = redirect(
        json!({"merchantTransactionId": "a11y-3ds", "amount": "9.99",
        "currency": "EUR", "transactionToken": three_ds}),
    )
    .await;

    use Who::*;
    let pages = vec![
        page("/pay/{token}", LoggedOut, pay_page, "Pay Acme Shop"),
        page(
            "/3ds/{token}",
            LoggedOut,
            challenge,
            "3-D Secure verification",
        ),
        page("/login", LoggedOut, "/login", "Log in to Coffer"),
        page(
            "/login/two-factor",
            CodeStep,
            "/login/two-factor",
            "Two-factor authentication",
        ),
        page(
            "/account/two-factor",
            Admin,
            "/account/two-factor",
            "Two-factor authentication",
        ),
        page("/", Admin, "/", "Home"),
        page(
            "/account/password",
            Admin,
            "/account/password",
            "Change your password",
        ),
        page("/tenants", Admin, "/tenants", "Tenants"),
        page(
            "/tenants/{id}",
            Admin,
            format!("/tenants/{group}"),
            "Acme Group",
        ),
        page(
            "/tenants/{id}/delete",
            Admin,
            format!("/tenants/{retail}/delete"),
            "Delete",
        ),
        page(
            "/tenants/{id}/erase",
            Admin,
            format!("/tenants/{group}/erase"),
            "Erase tenant Acme Group",
        ),
        page("/merchants", Admin, "/merchants", "Merchants"),
        page(
            "/merchants/{id}",
            Admin,
            format!("/merchants/{shop}"),
            "Acme Shop",
        ),
        page(
            "/merchants/{id}/deactivate",
            Admin,
            format!("/merchants/{shop}/deactivate"),
            "Deactivate",
        ),
        page("/users", Admin, "/users", "Users"),
        page("/users/new", Admin, "/users/new", "New user"),
        page("/users/{id}", Admin, format!("/users/{manager}"), "manager"),
        page(
            "/users/{id}/deactivate",
            Admin,
            format!("/users/{manager}/deactivate"),
            "Deactivate",
        ),
        page("/audit", Admin, "/audit", "Audit log"),
        page("/vault", Admin, "/vault", "Vault keys"),
        page("/docs/api", Admin, "/docs/api", "API reference"),
        page("/containers", Admin, "/containers", "Customer Profiles"),
        page(
            "/containers",
            Admin,
            format!("/containers?tenant={retail}"),
            "Customer Profiles",
        ),
        page(
            "/containers/{id}",
            Admin,
            format!("/containers/{container}"),
            "Acme Shared Profiles",
        ),
        page(
            "/containers/{id}",
            Admin,
            format!("/containers/{container}?q=no-such-customer"),
            "Acme Shared Profiles",
        ),
        page(
            "/containers/{id}/delete",
            Admin,
            format!("/containers/{container}/delete"),
            "Delete",
        ),
        page(
            "/profiles",
            Admin,
            format!("/profiles?q={}", reg.guid),
            "Customer profiles",
        ),
        page(
            "/profiles/{id}",
            Admin,
            format!("/profiles/{profile}"),
            "Customer profile a11y-customer",
        ),
        page(
            "/profiles/{id}/delete",
            Admin,
            format!("/profiles/{profile}/delete"),
            "Delete customer profile",
        ),
        page(
            "/global-settings",
            Admin,
            "/global-settings",
            "Global Settings",
        ),
        page("/connectors", Admin, "/connectors", "Connectors"),
        page(
            "/connectors/{id}",
            Admin,
            format!("/connectors/{connector}"),
            "Acme Shop Cards",
        ),
        page(
            "/connectors/{id}/lifecycle-events",
            Admin,
            format!("/connectors/{connector}/lifecycle-events"),
            "Lifecycle events of Acme Shop Cards",
        ),
        page(
            "/api-users",
            Admin,
            format!("/api-users?merchant={shop}"),
            "API users",
        ),
        page("/transactions", Admin, "/transactions", "Transactions"),
        page(
            "/transactions",
            Admin,
            // The filter form re-rendered with a message (422).
            "/transactions?from=2026-13-45&type=nonsense",
            "Transactions",
        ),
        page(
            "/transactions/{uuid}",
            Admin,
            format!("/transactions/{debit}"),
            "DEBIT",
        ),
        // Error pages.
        page("(404)", LoggedOut, "/no-such-page", "404"),
        page("(404)", Admin, format!("/tenants/{missing}"), "404"),
        // What a merchant admin sees.
        page("/", Merchant, "/", "Home"),
        page("/merchants", Merchant, "/merchants", "Merchants"),
        page(
            "/profiles",
            Merchant,
            "/profiles?q=a11y",
            "Customer profiles",
        ),
        page(
            "/merchants/{id}",
            Merchant,
            format!("/merchants/{shop}"),
            "Acme Shop",
        ),
        page("/connectors", Merchant, "/connectors", "Connectors"),
        page(
            "/connectors/{id}",
            Merchant,
            format!("/connectors/{connector}"),
            "Acme Shop Cards",
        ),
        page("/users", Merchant, "/users", "Users"),
        page(
            "/transactions",
            Merchant,
            format!("/transactions?merchant={shop}"),
            "Transactions",
        ),
        page("/audit", Merchant, "/audit", "Audit log"),
        page("/docs/api", Merchant, "/docs/api", "API reference"),
        page(
            "/api-users",
            Merchant,
            format!("/api-users?merchant={shop}"),
            "API users",
        ),
        page(
            "/account/password",
            Merchant,
            "/account/password",
            "Change your password",
        ),
    ];
    // Confirmation pages (issue 13, point 5): reached by the action's own button.
    let confirms: Vec<(Who, String, &str)> = vec![
        (
            Admin,
            format!("/connectors/{connector}"),
            "Rotate shared secret",
        ),
        (
            Admin,
            format!("/connectors/{connector}"),
            "Rotate merchant key",
        ),
    ];
    let rerenders = vec![
        Rerender {
            who: LoggedOut,
            path: bare_page,
            fills: vec![("card_number", "4111111111111112"), ("cvv", "1")],
            submit: "pay",
        },
        Rerender {
            who: LoggedOut,
            path: "/login".into(),
            fills: vec![("username", "admin"), ("password", "wrong password")],
            submit: "Log in",
        },
        Rerender {
            who: CodeStep,
            path: "/login/two-factor".into(),
            fills: vec![("code", "not-a-code")],
            submit: "Verify",
        },
        Rerender {
            who: Admin,
            path: "/tenants".into(),
            fills: vec![("name", "   ")],
            submit: "Create tenant",
        },
        Rerender {
            who: Admin,
            path: format!("/tenants/{retail}"),
            fills: vec![("name", "   ")],
            submit: "Save",
        },
        Rerender {
            who: Admin,
            path: "/merchants".into(),
            fills: vec![("name", "   ")],
            submit: "Create merchant",
        },
        Rerender {
            who: Admin,
            path: "/users/new".into(),
            fills: vec![("username", "   "), ("password", "short-but-12")],
            submit: "Create user",
        },
        Rerender {
            who: Admin,
            path: "/containers".into(),
            fills: vec![("name", "   ")],
            submit: "Create",
        },
        Rerender {
            who: Admin,
            path: "/connectors".into(),
            fills: vec![("name", "   ")],
            submit: "Create connector",
        },
        Rerender {
            who: Admin,
            path: format!("/connectors/{connector}"),
            fills: vec![("name", "   ")],
            submit: "Save",
        },
        Rerender {
            who: Admin,
            path: "/account/password".into(),
            fills: vec![
                ("current_password", "not-the-password"),
                ("new_password", "a-new-password-1"),
                ("confirm_password", "another-password"),
            ],
            submit: "Change password",
        },
    ];

    // Coverage: every HTML GET route is in the table, and the table names no other route.
    let registered: BTreeSet<String> = crate::routes::all()
        .into_iter()
        .filter(|r| r.method == "GET" && is_html_route(&r.path))
        .map(|r| r.path)
        .collect();
    let listed: BTreeSet<String> = pages
        .iter()
        .map(|p| p.route.to_string())
        .filter(|r| !r.starts_with('('))
        .collect();
    let missing_routes: Vec<_> = registered.difference(&listed).collect();
    let unknown: Vec<_> = listed.difference(&registered).collect();
    assert!(
        missing_routes.is_empty() && unknown.is_empty(),
        "the accessibility sweep must list every console GET page: missing {missing_routes:?}, \
         not registered {unknown:?} (add them to tests/it/a11y.rs, or to NOT_HTML if they are not pages)"
    );

    let mut report = String::new();
    let mut wide = String::new();
    let mut checked = 0;
    let mut who_now = LoggedOut;
    for who in [LoggedOut, CodeStep, Admin, Merchant] {
        switch_user(&b, &mut who_now, who).await;
        for p in pages.iter().filter(|p| p.who == who) {
            b.client
                .set_window_size(DESKTOP.0, DESKTOP.1)
                .await
                .expect("window size");
            b.goto(&p.path).await;
            let h1 = b.h1().await;
            assert!(
                h1.starts_with(p.h1),
                "{} as {who:?}: expected an <h1> starting with {:?}, got {h1:?}",
                p.path,
                p.h1
            );
            let r = b.axe_report(&format!("{} as {who:?}", p.path)).await;
            if !r.is_empty() {
                b.screenshot(&format!("violation-{checked}")).await;
                report.push_str(&r);
            }
            if matches!(who, Admin | Merchant) {
                let crumbs = b.texts("nav.crumbs[aria-label='Breadcrumb'] li").await;
                assert!(
                    crumbs.first().is_some_and(|c| c == "Home"),
                    "{} as {who:?}: no breadcrumbs (got {crumbs:?})",
                    p.path
                );
            }
            let slug = slug(&p.path);
            b.screenshot(&format!("{}-{who:?}-{slug}-1280", scheme.name()))
                .await;
            b.client
                .set_window_size(PHONE.0, PHONE.1)
                .await
                .expect("window size");
            let (scroll, inner) = widths(&b).await;
            if scroll > inner {
                wide.push_str(&format!(
                    "  {} as {who:?}: document {scroll} px wide in a {inner} px viewport\n",
                    p.path
                ));
            }
            b.screenshot(&format!("{}-{who:?}-{slug}-390", scheme.name()))
                .await;
            checked += 1;
        }
        for f in rerenders.iter().filter(|f| f.who == who) {
            b.goto(&f.path).await;
            for (k, v) in &f.fills {
                b.fill(k, v).await;
            }
            b.click(f.submit).await;
            let errors = b.texts(".field-error, .flash-error").await;
            assert!(
                !errors.is_empty(),
                "{} as {who:?}: the form was not re-rendered with messages",
                f.path
            );
            let r = b
                .axe_report(&format!("{} re-rendered as {who:?}", f.path))
                .await;
            if !r.is_empty() {
                b.screenshot(&format!("violation-{checked}")).await;
                report.push_str(&r);
            }
            checked += 1;
        }
        for (_, path, submit) in confirms.iter().filter(|c| c.0 == who) {
            b.goto(path).await;
            b.click(submit).await;
            assert!(
                b.h1().await.ends_with('?'),
                "{path}: {submit} leads to a confirmation page"
            );
            let r = b
                .axe_report(&format!("{path}: the confirmation of {submit}"))
                .await;
            if !r.is_empty() {
                b.screenshot(&format!("violation-{checked}")).await;
                report.push_str(&r);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, pages.len() + rerenders.len() + confirms.len());
    assert!(
        report.is_empty(),
        "serious or critical accessibility violations ({} mode):\n{report}",
        scheme.name()
    );
    assert!(
        wide.is_empty(),
        "pages that scroll sideways at {} px ({} mode):\n{wide}",
        PHONE.0,
        scheme.name()
    );
    b.finish().await;
}

/// The document's scroll width and the viewport's width, in CSS pixels.
pub async fn widths(b: &Browser) -> (i64, i64) {
    let v = b
        .client
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth]",
            vec![],
        )
        .await
        .expect("widths");
    (
        v[0].as_i64().unwrap_or_default(),
        v[1].as_i64().unwrap_or_default(),
    )
}

/// A file-name-safe form of a path.
fn slug(path: &str) -> String {
    let s: String = path
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    let s = s.trim_matches('-');
    let s = if s.is_empty() { "home" } else { s };
    s.chars().take(60).collect()
}

async fn switch_user(b: &Browser, now: &mut Who, to: Who) {
    if *now == to {
        return;
    }
    // At desktop width: on a phone the Log out button is behind the Menu button.
    b.client
        .set_window_size(DESKTOP.0, DESKTOP.1)
        .await
        .expect("window size");
    if !matches!(*now, Who::LoggedOut | Who::CodeStep) {
        b.click("Log out").await;
    }
    match to {
        Who::LoggedOut => {}
        Who::CodeStep => {
            b.goto("/login").await;
            b.fill("Username", "manager").await;
            b.fill("Password", "manager-demo").await;
            b.click("Log in").await;
            assert_eq!(b.h1().await, "Two-factor authentication");
        }
        Who::Admin => b.login("admin", "admin-demo").await,
        Who::Merchant => b.login("merchant", "merchant-demo").await,
    }
    *now = to;
}
