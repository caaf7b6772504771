//! Issue 13, point 5: consequential console actions go through a confirmation page that states
//! the consequence in numbers; nothing changes until the confirmed post.

use diesel::RunQueryDsl;
use reqwest::StatusCode;
use serde_json::json;

use crate::fuzz::{ids_of, register};
use crate::helpers::TestApp;

#[derive(diesel::QueryableByName)]
struct One {
    #[diesel(sql_type = diesel::sql_types::Text)]
    v: String,
}

/// One text value from the database (the test reads what the console must not have changed).
fn value(app: &TestApp, sql: &str) -> String {
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(sql)
        .get_result::<One>(&mut *c)
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .v
}

fn shared_profiles(app: &TestApp) -> i64 {
    value(
        app,
        "SELECT CAST(profile_count AS TEXT) AS v FROM containers WHERE name = 'Acme Shared Profiles'",
    )
    .parse()
    .expect("count")
}

fn plural(n: i64) -> String {
    format!("{n} customer profile{}", if n == 1 { "" } else { "s" })
}

async fn setup() -> TestApp {
    let app = TestApp::demo().await;
    for i in 0..3 {
        register(&app, &format!("confirm-{i}"), json!({"firstName": "Ann"})).await;
    }
    app.login_ok("admin", "admin-demo").await;
    app
}

/// The confirmation page: its consequences, and the hidden fields its form posts again.
fn consequences(page: &str) -> Vec<String> {
    let Some(list) = page
        .split("<ul id=\"consequences\"")
        .nth(1)
        .and_then(|s| s.split("</ul>").next())
    else {
        return vec![];
    };
    list.split("<li>")
        .skip(1)
        .map(|li| li.split("</li>").next().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn clearing_a_global_setting_says_which_connectors_stop_finding_how_many_profiles() {
    let app = setup().await;
    let n = shared_profiles(&app);
    assert!(n >= 3);
    let group = ids_of(&app, "tenants", "WHERE name = 'Acme Group'").remove(0);
    let before = value(
        &app,
        &format!("SELECT container_id AS v FROM global_settings WHERE tenant_id = '{group}'"),
    );
    let form = [("tenant_id", group.as_str()), ("container_id", "")];
    let r = app.post_form("/global-settings", &form).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Change the Global Setting of Acme Group?"),
        "{page}"
    );
    assert!(page.contains("Nothing changes until you confirm."));
    assert_eq!(
        consequences(&page),
        vec![format!(
            "Acme Shop Cards and Acme Shop Cards Signed will stop finding {} of Acme Shared Profiles; their payment tokens will be refused.",
            plural(n)
        )]
    );
    assert!(page.contains("name=\"confirmed\" value=\"yes\""));
    assert!(page.contains(&format!("name=\"tenant_id\" value=\"{group}\"")));
    // Nothing changed.
    assert_eq!(
        value(
            &app,
            &format!("SELECT container_id AS v FROM global_settings WHERE tenant_id = '{group}'"),
        ),
        before
    );
    // Confirmed: changed.
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", group.as_str()),
                ("container_id", ""),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let db = app.db();
    let mut c = db.get().expect("conn");
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let left: N = diesel::sql_query(format!(
        "SELECT COUNT(*) AS n FROM global_settings WHERE tenant_id = '{group}' AND container_id IS NOT NULL"
    ))
    .get_result(&mut *c)
    .expect("count");
    assert_eq!(left.n, 0, "the Global Setting is cleared once confirmed");
}

#[tokio::test]
async fn disabling_containers_for_sub_tenants_and_changing_a_connectors_container_are_confirmed_first()
 {
    let app = setup().await;
    let n = shared_profiles(&app);
    let group = ids_of(&app, "tenants", "WHERE name = 'Acme Group'").remove(0);
    let r = app
        .post_form(
            &format!("/tenants/{group}"),
            &[
                ("name", "Acme Group"),
                ("disable_containers_for_subtenants", "1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Disable customer profile containers for the sub-tenants of Acme Group?")
    );
    assert_eq!(
        consequences(&page),
        vec![format!(
            "Acme Outlet Cards will stop finding {} of Acme Shared Profiles; its payment tokens will be refused.",
            plural(n)
        )]
    );
    assert_eq!(
        value(
            &app,
            "SELECT CASE WHEN disable_containers_for_subtenants THEN 'on' ELSE 'off' END AS v \
             FROM tenants WHERE name = 'Acme Group'"
        ),
        "off",
        "nothing changed before the confirmation"
    );

    // The outlet's connector leaves the shared container (its tenant has no Global Setting).
    let outlet = ids_of(&app, "connectors", "WHERE name = 'Acme Outlet Cards'").remove(0);
    let fields = [
        ("name", "Acme Outlet Cards"),
        ("container_id", ""),
        ("active", "1"),
    ];
    let r = app
        .post_form(&format!("/connectors/{outlet}"), &fields)
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains("Save the Connector Base Data of Acme Outlet Cards?"));
    assert_eq!(consequences(&page).len(), 1, "{page}");
    assert!(consequences(&page)[0].starts_with(&format!(
        "Acme Outlet Cards will stop finding {} of Acme Shared Profiles",
        plural(n)
    )));
    let assigned = || {
        value(
            &app,
            &format!(
                "SELECT COALESCE(container_id, '') AS v FROM connectors WHERE id = '{outlet}'"
            ),
        )
    };
    assert!(!assigned().is_empty(), "still assigned");
    // A save that changes nothing about sharing needs no confirmation.
    let shop = ids_of(&app, "connectors", "WHERE name = 'Acme Shop Cards'").remove(0);
    let r = app
        .post_form(
            &format!("/connectors/{shop}"),
            &[
                ("name", "Acme Shop Cards"),
                ("container_id", ""),
                ("active", "1"),
            ],
        )
        .await;
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a rename-only save is saved"
    );
    // Deactivating a connector is confirmed, and says so.
    let r = app
        .post_form(
            &format!("/connectors/{shop}"),
            &[("name", "Acme Shop Cards"), ("container_id", "")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(
        page.contains("Acme Shop Cards will be deactivated"),
        "{page}"
    );
    assert_eq!(
        value(
            &app,
            &format!(
                "SELECT CASE WHEN active THEN 'on' ELSE 'off' END AS v FROM connectors WHERE id = '{shop}'"
            )
        ),
        "on"
    );
}

#[tokio::test]
async fn rotations_and_resets_show_their_consequences_and_change_nothing_before_the_confirmation() {
    let app = setup().await;
    let shop = ids_of(&app, "connectors", "WHERE name = 'Acme Shop Cards'").remove(0);
    let sealed = || {
        value(
            &app,
            &format!("SELECT shared_secret AS v FROM connectors WHERE id = '{shop}'"),
        )
    };
    let before = sealed();
    let r = app
        .post_form(&format!("/connectors/{shop}/rotate-secret"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains("Rotate the shared secret of Acme Shop Cards?"));
    assert!(!page.contains("New shared secret"), "no secret yet");
    let lines = consequences(&page);
    assert!(lines[1].ends_with("waiting for delivery will be signed with the new secret."));
    assert_eq!(sealed(), before, "not rotated");

    let r = app
        .post_form(&format!("/connectors/{shop}/rotate-monri-key"), &[])
        .await;
    let page = r.text().await.expect("body");
    assert!(page.contains("Rotate the Monri merchant key of Acme Shop Cards?"));
    assert!(
        consequences(&page)
            .iter()
            .any(|l| l.ends_with("of Acme Shop Cards are revoked.")
                || l.ends_with("of Acme Shop Cards is revoked.")),
        "{page}"
    );

    let merchant = ids_of(&app, "users", "WHERE username = 'merchant'").remove(0);
    let r = app
        .post_form(&format!("/users/{merchant}/reset-password"), &[])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    assert!(page.contains("Reset the password of merchant?"));
    // Not reset: the old password still signs in.
    let other = app.other_browser();
    other.login_ok("merchant", "merchant-demo").await;
}

/// Issue 13, point 8: on a profile's page a tenant manager makes another instrument preferred
/// and removes one, each confirmed first and audited, through the rules of updateProfile and
/// deregister; expiring cards are marked.
#[tokio::test]
async fn a_manager_changes_the_preferred_instrument_and_removes_one_after_confirming() {
    use crate::fuzz::{basic, post_json};
    use chrono::Datelike;
    let app = TestApp::demo().await;
    let today = chrono::Utc::now().date_naive();
    let mut guid = String::new();
    for (pan, month, year) in [
        ("4111111111111111", 12, 2030),
        ("5555555555554444", today.month(), today.year()),
    ] {
        let (s, v) = post_json(
            &app,
            "/api/v3/paymentjs/demo-shop-public/tokenize",
            None,
            &json!({"cardHolder": "Ann Smith", "number": pan, "cvv": "123",
                    "month": format!("{month:02}"), "year": year.to_string()}),
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let (s, v) = post_json(
            &app,
            "/api/v3/transaction/demo-shop-cards/register",
            Some(basic("shop-api", "shop-api-demo")),
            &json!({"merchantTransactionId": format!("pref-{pan}"),
                    "transactionToken": v["token"],
                    "customerProfileData": {"customerIdentification": "pref-1"}}),
        )
        .await;
        assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
        guid = v["customerProfileData"]["profileGuid"]
            .as_str()
            .expect("guid")
            .to_string();
    }
    let id = ids_of(&app, "profiles", &format!("WHERE profile_guid = '{guid}'")).remove(0);
    let visa = ids_of(&app, "instruments", "WHERE last_four = '1111' AND profile_id IN (SELECT id FROM profiles WHERE customer_identification = 'pref-1')").remove(0);
    let mc = ids_of(&app, "instruments", "WHERE last_four = '4444' AND profile_id IN (SELECT id FROM profiles WHERE customer_identification = 'pref-1')").remove(0);
    let preferred = || {
        value(
            &app,
            &format!("SELECT id AS v FROM instruments WHERE profile_id = '{id}' AND is_preferred"),
        )
    };
    assert_eq!(preferred(), visa, "the first card is preferred");

    app.login_ok("manager", "manager-demo").await;
    let (_, page) = app.get_html(&format!("/profiles/{id}")).await;
    assert!(
        page.contains("<span class=\"badge badge-warn\">expiring</span>"),
        "{page}"
    );
    assert!(page.contains(&format!("/profiles/{id}/instruments/{mc}/preferred")));
    assert!(
        !page.contains(&format!("/profiles/{id}/instruments/{visa}/preferred")),
        "already preferred"
    );

    // Make the Mastercard preferred: confirmation first, nothing changed.
    let path = format!("/profiles/{id}/instruments/{mc}/preferred");
    let r = app.post_form(&path, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("body");
    let lines = consequences(&page);
    assert!(
        lines[0].starts_with("The Mastercard card ending 4444")
            || lines[0].contains("card ending 4444"),
        "{lines:?}"
    );
    assert!(
        lines[0].ends_with("becomes the preferred instrument of profile pref-1."),
        "{lines:?}"
    );
    assert!(
        lines[1].contains("card ending 1111") && lines[1].ends_with("is no longer preferred."),
        "{lines:?}"
    );
    assert_eq!(preferred(), visa, "nothing changed before the confirmation");
    let r = app.post_form(&path, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(preferred(), mc);

    // Remove the (now preferred) Mastercard: the Visa becomes preferred again.
    let path = format!("/profiles/{id}/instruments/{mc}/delete");
    let r = app.post_form(&path, &[]).await;
    let page = r.text().await.expect("body");
    let lines = consequences(&page);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("Its payment token pt::")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("card ending 1111") && l.ends_with("becomes the preferred one.")),
        "{lines:?}"
    );
    assert_eq!(
        ids_of(&app, "instruments", &format!("WHERE profile_id = '{id}'")).len(),
        2
    );
    let r = app.post_form(&path, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        ids_of(&app, "instruments", &format!("WHERE profile_id = '{id}'")),
        vec![visa.clone()]
    );
    assert_eq!(preferred(), visa);
    // Both are in the audit log.
    let audited = ids_of(
        &app,
        "audit_log",
        &format!(
            "WHERE object_id = '{guid}' AND action IN ('profile.instrument.preferred', 'profile.instrument.delete')"
        ),
    );
    assert_eq!(audited.len(), 2);

    // A merchant admin may look but not change.
    let m = app.other_browser();
    m.login_ok("merchant", "merchant-demo").await;
    let r = m
        .post_form(
            &format!("/profiles/{id}/instruments/{visa}/delete"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        ids_of(&app, "instruments", &format!("WHERE profile_id = '{id}'")).len(),
        1
    );

    // Once the profile is deleted, its transactions say so (not "outside your scope").
    let tx = value(
        &app,
        &format!("SELECT uuid AS v FROM transactions WHERE profile_id = '{id}' LIMIT 1"),
    );
    let r = app.post_form(&format!("/profiles/{id}/delete"), &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&format!("/transactions/{tx}")).await;
    assert!(page.contains("A deleted profile"), "{page}");
    assert!(!page.contains("outside your scope"));
}

/// Bad input on the first post of a confirmed action is refused as before (422 with the form's
/// messages), never a confirmation page, and changes nothing; another tenant's objects are 404.
#[tokio::test]
async fn refused_values_get_their_form_back_and_foreign_objects_are_not_found() {
    let app = setup().await;
    let group = ids_of(&app, "tenants", "WHERE name = 'Acme Group'").remove(0);
    let globex_container = ids_of(&app, "containers", "WHERE name = 'Globex Profiles'").remove(0);
    let before = value(
        &app,
        &format!("SELECT container_id AS v FROM global_settings WHERE tenant_id = '{group}'"),
    );
    // A container Acme Group may not use.
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", group.as_str()),
                ("container_id", globex_container.as_str()),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = r.text().await.expect("body");
    assert!(!page.contains("Nothing changes until you confirm."));
    assert!(page.contains("field-error"), "{page}");
    assert_eq!(
        value(
            &app,
            &format!("SELECT container_id AS v FROM global_settings WHERE tenant_id = '{group}'"),
        ),
        before
    );
    // Ticking the flag with an empty name: the form again, the flag untouched.
    let r = app
        .post_form(
            &format!("/tenants/{group}"),
            &[("name", "   "), ("disable_containers_for_subtenants", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        value(
            &app,
            "SELECT CASE WHEN disable_containers_for_subtenants THEN 'on' ELSE 'off' END AS v \
             FROM tenants WHERE name = 'Acme Group'"
        ),
        "off"
    );
    // A manager of Acme: Globex's connector and Global Setting do not exist for them.
    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;
    let globex = ids_of(&app, "tenants", "WHERE name = 'Globex'").remove(0);
    let globex_cards = ids_of(&app, "connectors", "WHERE name = 'Globex Cards'").remove(0);
    for (path, fields) in [
        (format!("/connectors/{globex_cards}/rotate-secret"), vec![]),
        (
            format!("/connectors/{globex_cards}/rotate-monri-key"),
            vec![],
        ),
        (
            format!("/connectors/{globex_cards}"),
            vec![("name", "Globex Cards"), ("container_id", "")],
        ),
        (
            "/global-settings".to_string(),
            vec![("tenant_id", globex.as_str()), ("container_id", "")],
        ),
    ] {
        let r = m.post_form(&path, &fields).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
    }
}
