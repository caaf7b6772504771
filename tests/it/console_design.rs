//! The console's design points that HTML shows: sharing made visible (which connectors use a
//! container and why, a sub-tenant's containers status), "delete" offered only when the delete
//! rule allows it, breadcrumbs on every console page, human field labels and plurals.

use serde_json::json;

use crate::fuzz::{ids_of, register};
use crate::helpers::TestApp;

fn one(app: &TestApp, table: &str, filter: &str) -> String {
    let mut v = ids_of(app, table, filter);
    assert_eq!(v.len(), 1, "{table} {filter}: {v:?}");
    v.pop().expect("one")
}

/// The text of `html` without tags, whitespace collapsed.
fn text(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    let out = out.replace("&#39;", "'").replace("&amp;", "&");
    let words: Vec<&str> = out.split_whitespace().collect();
    words
        .join(" ")
        .replace(" ,", ",")
        .replace(" :", ":")
        .replace("( ", "(")
        .replace(" )", ")")
}

/// The items of every `<ul class="reasons connectors-using">` of the part of `html` that starts
/// at `from`, up to the next `stop` (or the end), as text.
fn connector_reasons(html: &str, from: &str, stop: &str) -> Vec<String> {
    let start = html
        .find(from)
        .unwrap_or_else(|| panic!("{from:?} not in page"));
    let part = &html[start..];
    let part = match part[from.len()..].find(stop) {
        Some(end) => &part[..from.len() + end],
        None => part,
    };
    let mut out = vec![];
    let mut rest = part;
    while let Some(i) = rest.find("<ul class=\"reasons connectors-using\">") {
        let list = &rest[i..];
        let end = list.find("</ul>").expect("list ends");
        for item in list[..end].split("<li>").skip(1) {
            out.push(text(item));
        }
        rest = &list[end..];
    }
    out
}

#[actix_web::test]
async fn the_container_overview_names_every_connector_using_it_and_why() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let group = one(&app, "tenants", "WHERE name = 'Acme Group'");
    let retail = one(&app, "tenants", "WHERE name = 'Acme Retail'");
    let shared = one(&app, "containers", "WHERE name = 'Acme Shared Profiles'");

    let (status, html) = app.get_html(&format!("/containers?tenant={group}")).await;
    assert_eq!(status, 200);
    let row = |html: &str| {
        connector_reasons(
            html,
            &format!("<a href=\"/containers/{shared}\">Acme Shared Profiles</a>"),
            "<tr class=\"container-row\">",
        )
    };
    let expected = vec![
        "Acme Outlet Cards (Acme Outlet, Acme Retail): assigned in its Connector Base Data",
        "Acme Shop Cards (Acme Shop, Acme Group): through the Global Setting of Acme Group",
        "Acme Shop Cards Signed (Acme Shop, Acme Group): through the Global Setting of Acme Group",
    ];
    let mut got = row(&html);
    got.sort();
    assert_eq!(
        got, expected,
        "the overview's connectors of Acme Shared Profiles"
    );
    // The container's own page says the same.
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    let mut got = connector_reasons(&page, "id=\"used-by\"", "</section>");
    got.sort();
    assert_eq!(got, expected, "the container page's connectors");

    // The sub-tenant's page says it may use containers.
    let (_, t) = app.get_html(&format!("/tenants/{retail}")).await;
    assert!(
        text(&t).contains(
            "Customer profile containers Enabled Acme Retail may own and use customer profile containers."
        ),
        "{}",
        text(&t)
    );

    // Acme Group disables containers for its sub-tenants: Acme Outlet Cards no longer uses it.
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
    assert_eq!(r.status(), 303);
    let (_, html) = app.get_html(&format!("/containers?tenant={group}")).await;
    let mut got = row(&html);
    got.sort();
    assert_eq!(got, expected[1..].to_vec(), "after disabling sharing");
    // The container page (which reads the sharing through the configuration cache) says so on
    // its very next view.
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    let mut got = connector_reasons(&page, "id=\"used-by\"", "</section>");
    got.sort();
    assert_eq!(
        got,
        expected[1..].to_vec(),
        "the container page after disabling sharing"
    );
    let (_, t) = app.get_html(&format!("/tenants/{retail}")).await;
    assert!(
        text(&t).contains(
            "Customer profile containers Disabled Acme Retail may not use customer profile containers: Acme Group disabled them for its sub-tenants."
        ),
        "{}",
        text(&t)
    );
    let (_, g) = app.get_html(&format!("/tenants/{group}")).await;
    assert!(
        text(&g).contains(
            "Acme Group may own and use customer profile containers; its sub-tenants may not."
        ),
        "{}",
        text(&g)
    );
}

#[actix_web::test]
async fn a_manager_sees_the_sub_tenant_connector_and_not_what_lies_outside_its_view() {
    let app = TestApp::demo().await;
    let retail = one(&app, "tenants", "WHERE name = 'Acme Retail'");
    let shared = one(&app, "containers", "WHERE name = 'Acme Shared Profiles'");
    // A manager of Acme Retail: the container is shared from above; only its own connector is
    // named, the two of Acme Shop are counted.
    app.login_ok("admin", "admin-demo").await;
    let r = app
        .post_form(
            "/users",
            &[
                ("username", "retail-manager"),
                ("role", "tenant_manager"),
                ("tenant_id", &retail),
                ("merchant_id", ""),
                ("password", "retail-manager-pw"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let b = app.other_browser();
    b.login_ok("retail-manager", "retail-manager-pw").await;
    let (status, page) = b.get_html(&format!("/containers/{shared}")).await;
    assert_eq!(status, 200);
    assert_eq!(
        connector_reasons(&page, "id=\"used-by\"", "</section>"),
        ["Acme Outlet Cards (Acme Outlet, Acme Retail): assigned in its Connector Base Data"]
    );
    assert!(
        text(&page).contains("And 2 more connectors outside your view."),
        "{}",
        text(&page)
    );
}

#[actix_web::test]
async fn delete_is_offered_only_for_a_container_that_can_be_deleted() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let group = one(&app, "tenants", "WHERE name = 'Acme Group'");
    let shared = one(&app, "containers", "WHERE name = 'Acme Shared Profiles'");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Spare Profiles")],
        )
        .await;
    assert_eq!(r.status(), 303);
    let spare = one(&app, "containers", "WHERE name = 'Spare Profiles'");

    let (_, html) = app.get_html(&format!("/containers?tenant={group}")).await;
    assert!(!html.contains("aria-label=\"delete Acme Shared Profiles\""));
    assert!(html.contains("aria-label=\"delete Spare Profiles\""));
    assert!(
        text(&html).contains(
            "Container Acme Shared Profiles cannot be deleted: it is assigned to connector Acme Outlet Cards, Global Setting of Acme Group."
        ),
        "{}",
        text(&html)
    );
    // The container's page and its confirmation page follow the same rule.
    let (_, page) = app.get_html(&format!("/containers/{shared}")).await;
    assert!(!page.contains(&format!("href=\"/containers/{shared}/delete\"")));
    assert!(page.contains("cannot be deleted: it is assigned to"));
    let (status, confirm) = app.get_html(&format!("/containers/{shared}/delete")).await;
    assert_eq!(status, 200);
    assert!(!confirm.contains(&format!("action=\"/containers/{shared}/delete\"")));
    assert!(confirm.contains("id=\"cannot-delete\""));
    let (_, page) = app.get_html(&format!("/containers/{spare}")).await;
    assert!(page.contains(&format!("href=\"/containers/{spare}/delete\"")));
    let (_, confirm) = app.get_html(&format!("/containers/{spare}/delete")).await;
    assert!(confirm.contains(&format!("action=\"/containers/{spare}/delete\"")));

    // A profile in the spare container: now it may not be deleted either, and the page says why.
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", &group),
                ("container_id", &spare),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), 303);
    let (_, page) = app.get_html(&format!("/containers/{spare}")).await;
    assert!(!page.contains(&format!("href=\"/containers/{spare}/delete\"")));
    assert!(
        text(&page).contains(
            "Container Spare Profiles cannot be deleted: it is assigned to Global Setting of Acme Group."
        ),
        "{}",
        text(&page)
    );
    // And the action refuses with the same words.
    let r = app
        .post_form(&format!("/containers/{spare}/delete"), &[])
        .await;
    assert_eq!(r.status(), 303);
    let (_, page) = app.get_html(&format!("/containers/{spare}")).await;
    assert!(text(&page).contains(
        "Container Spare Profiles cannot be deleted: it is assigned to Global Setting of Acme Group."
    ));
    assert_eq!(
        ids_of(&app, "containers", &format!("WHERE id = '{spare}'")).len(),
        1
    );
}

#[actix_web::test]
async fn counts_have_proper_plurals_and_customer_fields_human_labels() {
    let app = TestApp::demo().await;
    app.login_ok("admin", "admin-demo").await;
    let shared = one(&app, "containers", "WHERE name = 'Acme Shared Profiles'");
    let before = ids_of(
        &app,
        "profiles",
        &format!("WHERE container_id = '{shared}'"),
    )
    .len();
    let page = async || app.get_html(&format!("/containers/{shared}")).await.1;
    let expect = |n: usize| match n {
        1 => "1 customer profile.".to_string(),
        n => format!("{n} customer profiles."),
    };
    assert!(page().await.contains(&expect(before)));
    let reg = register(
        &app,
        "design-one",
        json!({"firstName": "Ann", "billingCity": "Vienna", "email": "ann@example.com"}),
    )
    .await;
    assert!(page().await.contains(&expect(before + 1)));
    register(&app, "design-two", json!({"firstName": "Bob"})).await;
    assert!(page().await.contains(&expect(before + 2)));

    let profile = one(
        &app,
        "profiles",
        &format!("WHERE profile_guid = '{}'", reg.guid),
    );
    let (_, p) = app.get_html(&format!("/profiles/{profile}")).await;
    let data = &p[p.find("id=\"customer-data\"").expect("customer data")..];
    let data = &data[..data.find("</dl>").expect("end")];
    assert_eq!(
        text(data)
            .trim_start_matches("id=\"customer-data\" ")
            .to_string(),
        "First name Ann Billing city Vienna Email ann@example.com"
    );
    assert!(!data.contains("billingCity"));
    let (_, d) = app.get_html(&format!("/profiles/{profile}/delete")).await;
    assert!(d.contains("The customer data and 1 payment instrument of profile"));
}

/// Every console GET page of the route table, as the platform admin: each has the breadcrumb
/// trail (one partial in the layout), starting at Home; error pages keep the layout too.
#[actix_web::test]
async fn every_console_page_has_breadcrumbs() {
    let app = TestApp::demo().await;
    let reg = register(&app, "crumbs-customer", json!({"firstName": "Cy"})).await;
    app.login_ok("admin", "admin-demo").await;
    let ids = [
        (
            "/tenants/{id}",
            one(&app, "tenants", "WHERE name = 'Acme Retail'"),
        ),
        (
            "/merchants/{id}",
            one(&app, "merchants", "WHERE name = 'Acme Shop'"),
        ),
        (
            "/users/{id}",
            one(&app, "users", "WHERE username = 'manager'"),
        ),
        (
            "/containers/{id}",
            one(&app, "containers", "WHERE name = 'Acme Shared Profiles'"),
        ),
        (
            "/connectors/{id}",
            one(&app, "connectors", "WHERE name = 'Acme Shop Cards'"),
        ),
        (
            "/profiles/{id}",
            one(
                &app,
                "profiles",
                &format!("WHERE profile_guid = '{}'", reg.guid),
            ),
        ),
        ("/transactions/{uuid}", reg.tx_uuid.clone()),
    ];
    let shop = ids[1].1.clone();
    // Pages that are not console pages: sign-in steps, payment pages, JSON.
    let outside = |p: &str| {
        p.starts_with("/login")
            || p.starts_with("/pay/")
            || p.starts_with("/3ds/")
            || p.starts_with("/api/")
            || p.starts_with("/v2/")
            || p == "/healthz"
            || p == "/readyz"
            || p == "/audit.csv"
            || p == "/transactions.csv"
            || p.starts_with("/openapi/")
    };
    let mut checked = 0;
    for r in crate::routes::all() {
        if r.method != "GET" || outside(&r.path) {
            continue;
        }
        let mut path = r.path.clone();
        for (pattern, id) in &ids {
            if let Some(rest) =
                path.strip_prefix(pattern.trim_end_matches("{id}").trim_end_matches("{uuid}"))
                && (rest.starts_with("{id}") || rest.starts_with("{uuid}"))
            {
                let tail = rest.trim_start_matches("{id}").trim_start_matches("{uuid}");
                path = format!(
                    "{}{id}{tail}",
                    pattern.trim_end_matches("{id}").trim_end_matches("{uuid}")
                );
            }
        }
        if path == "/api-users" {
            path = format!("/api-users?merchant={shop}");
        }
        if r.path == "/tenants/{id}/erase" {
            // Only a root tenant can be erased (a sub-tenant's answer is a 409 page).
            path = format!(
                "/tenants/{}/erase",
                one(&app, "tenants", "WHERE name = 'Acme Group'")
            );
        }
        assert!(!path.contains('{'), "no id for {}", r.path);
        let (status, html) = app.get_html(&path).await;
        assert_eq!(status, 200, "{path}");
        // Every trail starts at Home: a link, or the current crumb on the home page itself.
        let home = if path == "/" {
            "<ol><li aria-current=\"page\">Home</li>"
        } else {
            "<ol><li><a href=\"/\">Home</a></li>"
        };
        assert!(
            html.contains(&format!(
                "<nav class=\"crumbs\" aria-label=\"Breadcrumb\">{home}"
            )),
            "{path}: no breadcrumbs"
        );
        assert!(
            html.contains("aria-current=\"page\""),
            "{path}: no current crumb"
        );
        checked += 1;
    }
    assert!(checked >= 20, "only {checked} pages");
    // Error pages keep the layout (brand bar and breadcrumbs).
    let (status, html) = app
        .get_html("/tenants/00000000000000000000000000000000")
        .await;
    assert_eq!(status, 404);
    assert!(html.contains("<nav class=\"crumbs\" aria-label=\"Breadcrumb\">"));
    assert!(html.contains("<li aria-current=\"page\">Not found</li>"));
    assert!(html.contains("class=\"brand\""));
}
