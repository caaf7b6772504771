//! Console holes of the [rules] issue: a connector saved while its containers are disabled keeps
//! its assignment (2), the Global Settings page lists each connector with its effective container
//! and why (3), secrets shown once never ride in a cookie (8), and container names are one name
//! whatever their case (11).

use std::sync::Arc;

use coffer::gateway::signature::{self, BodyHash};
use reqwest::StatusCode;
use reqwest::cookie::CookieStore;
use serde_json::{Value, json};

use crate::api_transactions::tokenize;
use crate::helpers::*;

const JSON_CT: &str = "application/json; charset=utf-8";

/// Tags stripped, entities of the test data decoded, whitespace collapsed.
fn text_of(html: &str) -> String {
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
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The text of the element with this id (up to its first closing tag of `tag`).
fn element_text(page: &str, id: &str, tag: &str) -> Option<String> {
    let i = page.find(&format!("id=\"{id}\""))?;
    let start = page[i..].find('>')? + i + 1;
    let end = page[start..].find(&format!("</{tag}>"))? + start;
    Some(text_of(&page[start..end]))
}

/// The connector page's effective container line, as text.
async fn effective(app: &TestApp, connector: &str) -> String {
    let id = connector_id(app, connector);
    let (s, page) = app.get_html(&format!("/connectors/{id}")).await;
    assert_eq!(s, StatusCode::OK);
    element_text(&page, "effective-container", "dd").expect("effective container shown")
}

/// The value of attribute `name` in one tag's text.
fn attr(tag: &str, name: &str) -> Option<String> {
    let marker = format!(" {name}=\"");
    let i = tag.find(&marker)? + marker.len();
    let j = tag[i..].find('"')? + i;
    Some(tag[i..j].to_string())
}

/// The fields a browser would submit from the form posting to `action`: inputs (checkboxes
/// only when checked) and selects (the selected option, else the first).
fn form_fields(page: &str, action: &str) -> Vec<(String, String)> {
    let i = page
        .find(&format!("action=\"{action}\""))
        .unwrap_or_else(|| panic!("form {action}"));
    let end = page[i..].find("</form>").expect("form end") + i;
    let form = &page[i..end];
    let mut out = vec![];
    let mut rest = form;
    while let Some(j) = rest.find('<') {
        rest = &rest[j..];
        let close = rest.find('>').unwrap_or(rest.len());
        let tag = &rest[..close];
        if tag.starts_with("<input") {
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            if let Some(n) = attr(tag, "name")
                && (kind != "checkbox" || tag.contains(" checked"))
            {
                out.push((n, attr(tag, "value").unwrap_or_default()));
            }
        } else if tag.starts_with("<select") {
            let n = attr(tag, "name").expect("select name");
            let sel_end = rest.find("</select>").expect("select end");
            let options: Vec<&str> = rest[..sel_end].split("<option").skip(1).collect();
            let chosen = options
                .iter()
                .find(|o| o.split('>').next().is_some_and(|t| t.contains(" selected")))
                .or(options.first())
                .and_then(|o| attr(o, "value"))
                .unwrap_or_default();
            out.push((n, chosen));
        }
        rest = &rest[1..];
    }
    out
}

/// Submits the form posting to `action` on `page`, with some fields replaced.
async fn submit(
    app: &TestApp,
    page: &str,
    action: &str,
    set: &[(&str, &str)],
) -> reqwest::Response {
    let mut fields = form_fields(page, action);
    // The confirmation page's answer (the tests here look at what the change does).
    fields.push(("confirmed".into(), "yes".into()));
    for (k, v) in set {
        match fields.iter_mut().find(|(n, _)| n == k) {
            Some(f) => f.1 = v.to_string(),
            None => fields.push((k.to_string(), v.to_string())),
        }
    }
    app.client
        .post(app.url(action))
        .form(&fields)
        .send()
        .await
        .expect("POST")
}

fn tenant_id(body: &str, name: &str) -> String {
    find_link_id(body, "tenants", name).unwrap_or_else(|| panic!("tenant {name}"))
}

fn merchant_id(app: &TestApp, name: &str) -> String {
    use coffer::db::schema::merchants;
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    merchants::table
        .filter(merchants::name.eq(name))
        .select(merchants::id)
        .first(&mut *c)
        .expect("merchant")
}

async fn set_disable_flag(app: &TestApp, tenant: &str, name: &str, on: bool) {
    let mut form = vec![("name", name), ("confirmed", "yes")];
    if on {
        form.push(("disable_containers_for_subtenants", "1"));
    }
    let r = app.post_form(&format!("/tenants/{tenant}"), &form).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

async fn get_profile(
    app: &TestApp,
    api_key: &str,
    creds: (&str, &str),
    ident: &str,
) -> (StatusCode, Value) {
    get_profile_at(&app.client, &app.addr, api_key, creds, ident).await
}

/// Registers a customer with a card through Acme Shop Cards (into Acme Shared Profiles, its
/// Global Setting).
async fn register_shop_customer(app: &TestApp, ident: &str) {
    let token = tokenize(app, "demo-shop-public", "4111111111111111").await;
    let body = json!({
        "merchantTransactionId": format!("order-{}", coffer::ids::random_hex(6)),
        "amount": "1.00", "currency": "EUR", "transactionToken": token, "withRegister": true,
        "customerProfileData": { "customerIdentification": ident, "markAsPreferred": true }
    });
    let r = app
        .client
        .post(app.url("/api/v3/transaction/demo-shop-cards/debit"))
        .basic_auth("shop-api", Some("shop-api-demo"))
        .header("content-type", JSON_CT)
        .body(body.to_string())
        .send()
        .await
        .expect("debit");
    let v: Value = r.json().await.expect("json");
    assert_eq!(v["success"], true, "{v}");
}

// ---- 2. An assignment the form does not show is kept ----

#[tokio::test]
async fn renaming_a_connector_while_containers_are_disabled_keeps_its_assignment() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    register_shop_customer(&app, "rules-outlet-customer").await;
    let outlet = connector_id(&app, "Acme Outlet Cards");
    assert_eq!(
        get_profile(
            &app,
            "demo-outlet-cards",
            ("outlet-api", "outlet-api-demo"),
            "rules-outlet-customer"
        )
        .await
        .1["profileExists"],
        true,
        "the outlet shares Acme Shared Profiles before"
    );
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    set_disable_flag(&app, &group, "Acme Group", true).await;
    assert_eq!(
        effective(&app, "Acme Outlet Cards").await,
        "disabled by Acme Group"
    );

    // Rename through the form as the console renders it now.
    let action = format!("/connectors/{outlet}");
    let (_, page) = app.get_html(&action).await;
    let r = submit(
        &app,
        &page,
        &action,
        &[("name", "Acme Outlet Cards Renamed")],
    )
    .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(connector_id(&app, "Acme Outlet Cards Renamed"), outlet);

    // While disabled the API has no container for the outlet.
    let (s, v) = get_profile(
        &app,
        "demo-outlet-cards",
        ("outlet-api", "outlet-api-demo"),
        "rules-outlet-customer",
    )
    .await;
    assert_ne!(v["profileExists"], true, "{s} {v}");

    set_disable_flag(&app, &group, "Acme Group", false).await;
    assert_eq!(
        effective(&app, "Acme Outlet Cards Renamed").await,
        "Acme Shared Profiles (assigned)",
        "the assignment survived the save"
    );
    let (s, v) = get_profile(
        &app,
        "demo-outlet-cards",
        ("outlet-api", "outlet-api-demo"),
        "rules-outlet-customer",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["profileExists"], true, "{v}");
}

#[tokio::test]
async fn a_suspended_assignment_is_shown_with_its_reason_and_still_refused_when_submitted() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    set_disable_flag(&app, &group, "Acme Group", true).await;
    let outlet = connector_id(&app, "Acme Outlet Cards");
    let (_, page) = app.get_html(&format!("/connectors/{outlet}")).await;
    assert_eq!(
        element_text(&page, "suspended-assignment", "p").as_deref(),
        Some("Assigned container: Acme Shared Profiles (suspended: disabled by Acme Group)"),
        "{page}"
    );
    // Saving keeps it: the page still shows it after a save.
    let action = format!("/connectors/{outlet}");
    let r = submit(&app, &page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&action).await;
    assert!(
        element_text(&page, "suspended-assignment", "p")
            .is_some_and(|t| t.contains("Acme Shared Profiles")),
        "{page}"
    );
    // Submitting a container while the tenant may not use any stays refused.
    let shared = container_id(&app, "Acme Shared Profiles");
    let r = submit(&app, &page, &action, &[("container_id", &shared)]).await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.text()
            .await
            .expect("body")
            .contains("disabled for this tenant by Acme Group")
    );
    // A connector without an assignment shows none suspended.
    let shop = connector_id(&app, "Acme Shop Cards");
    let (_, page) = app.get_html(&format!("/connectors/{shop}")).await;
    assert!(!page.contains("suspended-assignment"));
}

fn stored_container(app: &TestApp, connector: &str) -> Option<String> {
    use coffer::db::schema::connectors;
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    connectors::table
        .filter(connectors::name.eq(connector))
        .select(connectors::container_id)
        .first(&mut *c)
        .expect("connector")
}

#[tokio::test]
async fn an_assignment_the_tenant_can_no_longer_use_is_kept_until_another_is_chosen() {
    use coffer::db::schema::connectors;
    use diesel::prelude::*;
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    // A container outside the connector's tree (no console path leads there; the rules must
    // still not let a save wipe it silently).
    let globex = container_id(&app, "Globex Profiles");
    let shop = connector_id(&app, "Acme Shop Cards");
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        diesel::update(connectors::table.find(&shop))
            .set(connectors::container_id.eq(Some(&globex)))
            .execute(&mut *c)
            .expect("update");
    }
    let action = format!("/connectors/{shop}");
    let (_, page) = app.get_html(&action).await;
    assert_eq!(
        element_text(&page, "suspended-assignment", "p").as_deref(),
        Some("Assigned container: Globex Profiles (suspended: no longer available to this tenant)")
    );
    let r = submit(&app, &page, &action, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(stored_container(&app, "Acme Shop Cards"), Some(globex));
    // Choosing a usable container replaces it.
    let shared = container_id(&app, "Acme Shared Profiles");
    let (_, page) = app.get_html(&action).await;
    let r = submit(&app, &page, &action, &[("container_id", &shared)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        effective(&app, "Acme Shop Cards").await,
        "Acme Shared Profiles (assigned)"
    );
}

// ---- 3. Global Settings: one row per connector, with the effective container and why ----

/// (headers, rows) of every table in `html`, cells as text.
fn tables(html: &str) -> Vec<(Vec<String>, Vec<Vec<String>>)> {
    let mut out = vec![];
    for t in html.split("<table").skip(1) {
        let t = t.split("</table>").next().unwrap_or("");
        let cells = |row: &str, tag: &str| -> Vec<String> {
            row.split(&format!("<{tag}"))
                .skip(1)
                .filter(|c| c.starts_with([' ', '>']))
                .map(|c| {
                    let c = &c[c.find('>').map_or(0, |i| i + 1)..];
                    text_of(c.split(&format!("</{tag}>")).next().unwrap_or(""))
                })
                .collect()
        };
        let headers = cells(t, "th");
        let body = t.split("<tbody").nth(1).unwrap_or("");
        let rows = body
            .split("<tr")
            .skip(1)
            .map(|r| cells(r.split("</tr>").next().unwrap_or(""), "td"))
            .collect();
        out.push((headers, rows));
    }
    out
}

async fn create_connector(app: &TestApp, merchant: &str, name: &str) -> String {
    let m = merchant_id(app, merchant);
    let r = app
        .post_form(
            "/connectors",
            &[
                ("merchant_id", &m),
                ("name", name),
                ("adapter", "creditcard"),
            ],
        )
        .await;
    assert!(
        r.status() == StatusCode::OK || r.status() == StatusCode::SEE_OTHER,
        "{}",
        r.status()
    );
    connector_id(app, name)
}

fn row(cells: &[&str]) -> Vec<String> {
    cells.iter().map(|s| s.to_string()).collect()
}

/// The global settings tables of a tenant: (own merchants' connectors, sub-tenants').
async fn global_tables(app: &TestApp, tenant: &str) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (s, page) = app
        .get_html(&format!("/global-settings?tenant={tenant}"))
        .await;
    assert_eq!(s, StatusCode::OK);
    let ts = tables(&page);
    let wanted = row(&["Connector", "Effective container", "Why"]);
    let ours: Vec<_> = ts.into_iter().filter(|(h, _)| *h == wanted).collect();
    assert_eq!(ours.len(), 2, "two connector tables: {page}");
    let split = page
        .find("id=\"sub-tenant-connectors\"")
        .expect("sub-tenant section");
    let own_before = page[..split].matches("<table").count();
    assert!(own_before >= 1, "the own table comes first");
    (ours[0].1.clone(), ours[1].1.clone())
}

#[tokio::test]
async fn global_settings_list_each_connector_with_its_effective_container_and_why() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Acme Own")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let own = container_id(&app, "Acme Own");
    let k = create_connector(&app, "Acme Shop", "Shop Own").await;
    let r = app
        .post_form(
            &format!("/connectors/{k}"),
            &[
                ("name", "Shop Own"),
                ("container_id", &own),
                ("active", "1"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let k = create_connector(&app, "Acme Shop", "Shop Ignoring").await;
    let r = app
        .post_form(
            &format!("/connectors/{k}"),
            &[
                ("name", "Shop Ignoring"),
                ("container_id", ""),
                ("ignore_global", "1"),
                ("active", "1"),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    create_connector(&app, "Acme Outlet", "Outlet Plain").await;

    let (mine, subs) = global_tables(&app, &group).await;
    assert_eq!(
        mine,
        vec![
            row(&[
                "Acme Shop Cards",
                "Acme Shared Profiles",
                "global setting of Acme Group"
            ]),
            row(&[
                "Acme Shop Cards Signed",
                "Acme Shared Profiles",
                "global setting of Acme Group"
            ]),
            row(&["Shop Ignoring", "none", "ignores global settings"]),
            row(&["Shop Own", "Acme Own", "assigned"]),
        ]
    );
    assert_eq!(
        subs,
        vec![
            row(&["Acme Outlet Cards", "Acme Shared Profiles", "assigned"]),
            row(&["Outlet Plain", "none", "none"]),
        ]
    );
    // Each Why is the reason the connector page gives.
    for r in mine.iter().chain(subs.iter()) {
        let shown = effective(&app, &r[0]).await;
        let expected = if r[1] == "none" {
            r[2].clone()
        } else {
            format!("{} ({})", r[1], r[2])
        };
        assert_eq!(shown, expected, "{}", r[0]);
    }

    // Sub-tenants disabled: their connectors say so.
    set_disable_flag(&app, &group, "Acme Group", true).await;
    let (mine_after, subs) = global_tables(&app, &group).await;
    assert_eq!(mine_after, mine, "the group itself is not affected");
    assert_eq!(
        subs,
        vec![
            row(&["Acme Outlet Cards", "none", "disabled by Acme Group"]),
            row(&["Outlet Plain", "none", "disabled by Acme Group"]),
        ]
    );

    // The success message counts the connectors that now use the container through it.
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", &group),
                ("container_id", &own),
                ("confirmed", "yes"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(
        page.contains(
            "Global Setting saved: 2 connectors of Acme Group now use Acme Own through it."
        ),
        "{page}"
    );
    assert!(!page.contains("all connectors of this tenant"));
    let (mine, _) = global_tables(&app, &group).await;
    assert_eq!(
        mine[0],
        row(&[
            "Acme Shop Cards",
            "Acme Own",
            "global setting of Acme Group"
        ])
    );
    // Cleared, the message says so.
    let r = app
        .post_form(
            "/global-settings",
            &[
                ("tenant_id", &group),
                ("container_id", ""),
                ("confirmed", "yes"),
            ],
        )
        .await;
    let (_, page) = app.get_html(&location(&r)).await;
    assert!(page.contains("Global Setting cleared."), "{page}");
}

// ---- 8. Secrets shown once: on the POST's page, never in a cookie ----

/// A browser whose cookie jar the test can read.
struct Jarred<'a> {
    app: &'a TestApp,
    jar: Arc<reqwest::cookie::Jar>,
    client: reqwest::Client,
}

impl<'a> Jarred<'a> {
    async fn login(app: &'a TestApp, user: &str, pw: &str) -> Jarred<'a> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let b = Jarred { app, jar, client };
        let r = b
            .post("/login", &[("username", user), ("password", pw)])
            .await;
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        b
    }

    async fn get(&self, path: &str) -> String {
        let r = self
            .client
            .get(self.app.url(path))
            .send()
            .await
            .expect("GET");
        assert_eq!(r.status(), StatusCode::OK);
        r.text().await.expect("body")
    }

    async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let page = self
            .client
            .get(self.app.url("/login"))
            .send()
            .await
            .expect("GET")
            .text()
            .await
            .expect("body");
        let token = extract_csrf(&page).unwrap_or_default();
        let mut form = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.app.url(path))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }

    fn cookies(&self) -> String {
        let url = reqwest::Url::parse(&self.app.addr).expect("url");
        self.jar
            .cookies(&url)
            .and_then(|v| v.to_str().ok().map(str::to_string))
            .unwrap_or_default()
    }
}

/// The value following `marker` in `page`, up to the next tag.
fn after(page: &str, marker: &str) -> Option<String> {
    let i = page.find(marker)? + marker.len();
    let v: String = page[i..].chars().take_while(|c| *c != '<').collect();
    Some(v.trim().to_string())
}

/// POSTs a form that issues secrets and checks they are shown by that response only: 200,
/// `no-store`, in the body, in no Set-Cookie, and not on `replay` fetched with the cookie jar
/// as it stood right after the POST (by this browser and by a fresh client carrying those
/// cookies). Returns the secrets, one per marker.
async fn issue(
    b: &Jarred<'_>,
    path: &str,
    fields: &[(&str, &str)],
    markers: &[&str],
    replay: &str,
) -> Vec<String> {
    // Past the confirmation page: the confirmed POST.
    let mut fields = fields.to_vec();
    fields.push(("confirmed", "yes"));
    let r = b.post(path, &fields).await;
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "{path}: the POST shows the secret"
    );
    assert_eq!(
        r.headers()
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store"),
        "{path}"
    );
    let set_cookies: Vec<String> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    let body = r.text().await.expect("body");
    let secrets: Vec<String> = markers
        .iter()
        .map(|m| after(&body, m).unwrap_or_else(|| panic!("{m} in {body}")))
        .collect();
    let jar = b.cookies();
    assert!(!jar.is_empty(), "logged in");
    let fresh = client();
    let r = fresh
        .get(b.app.url(replay))
        .header("cookie", &jar)
        .send()
        .await
        .expect("replay");
    assert_eq!(
        r.status(),
        StatusCode::OK,
        "the replayed cookies are a session"
    );
    let replayed = r.text().await.expect("body");
    let again = b.get(replay).await;
    for s in &secrets {
        assert!(s.len() >= 24, "{s}");
        assert!(
            set_cookies.iter().all(|c| !c.contains(s.as_str())),
            "{path}"
        );
        assert!(!jar.contains(s.as_str()));
        assert!(
            !replayed.contains(s.as_str()),
            "{path}: replayed cookie shows the secret"
        );
        assert!(!again.contains(s.as_str()), "{path}: shown again");
    }
    for m in markers {
        assert!(!replayed.contains(m) && !again.contains(m), "{path}: {m}");
    }
    secrets
}

async fn signed_get_profile(app: &TestApp, secret: &str) -> StatusCode {
    let uri = "/api/v3/customerProfiles/demo-shop-signed/getProfile";
    let body = json!({ "customerIdentification": "nobody" }).to_string();
    let date = coffer::gateway::signature::http_date(chrono::Utc::now());
    let sig = signature::sign(
        secret,
        "POST",
        body.as_bytes(),
        JSON_CT,
        &date,
        uri,
        BodyHash::Sha512,
    );
    app.client
        .post(app.url(uri))
        .basic_auth("shop-api", Some("shop-api-demo"))
        .header("content-type", JSON_CT)
        .header("date", &date)
        .header("x-signature", sig)
        .body(body)
        .send()
        .await
        .expect("getProfile")
        .status()
}

async fn monri_oauth(app: &TestApp, token: &str, key: &str) -> StatusCode {
    let body = json!({"client_id": token, "client_secret": key,
                      "grant_type": "client_credentials", "scopes": ["customers"]});
    app.client
        .post(app.url("/v2/oauth"))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("oauth")
        .status()
}

#[tokio::test]
async fn rotated_connector_secrets_are_shown_by_the_post_and_never_ride_in_a_cookie() {
    let app = TestApp::demo().await;
    let b = Jarred::login(&app, "admin", "admin-demo").await;
    let signed = connector_id(&app, "Acme Shop Cards Signed");
    let page = format!("/connectors/{signed}");
    assert_eq!(
        signed_get_profile(&app, "demo-signed-secret").await,
        StatusCode::OK
    );
    let s = issue(
        &b,
        &format!("/connectors/{signed}/rotate-secret"),
        &[],
        &["New shared secret (shown only now, store it safely): "],
        &page,
    )
    .await;
    assert_eq!(
        signed_get_profile(&app, &s[0]).await,
        StatusCode::OK,
        "the new secret signs"
    );
    assert_eq!(
        signed_get_profile(&app, "demo-signed-secret").await,
        StatusCode::UNAUTHORIZED,
        "the old one no longer does"
    );

    let shop = connector_id(&app, "Acme Shop Cards");
    let page = format!("/connectors/{shop}");
    let k = issue(
        &b,
        &format!("/connectors/{shop}/rotate-monri-key"),
        &[],
        &["New Monri merchant key (shown only now, store it safely): "],
        &page,
    )
    .await;
    let token = "acmeshopdemoauthenticitytoken00000000000";
    assert_eq!(
        monri_oauth(&app, token, &k[0]).await,
        StatusCode::OK,
        "the new key works"
    );
    assert_ne!(
        monri_oauth(&app, token, "demo-shop-merchant-key").await,
        StatusCode::OK
    );

    // A new connector's secrets as well.
    let m = merchant_id(&app, "Acme Shop");
    let s = issue(
        &b,
        "/connectors",
        &[
            ("merchant_id", &m),
            ("name", "Shop Fresh"),
            ("adapter", "creditcard"),
        ],
        &[
            "Shared secret (shown only now, store it safely): ",
            "Monri merchant key (shown only now, store it safely): ",
        ],
        "/connectors",
    )
    .await;
    let fresh = connector_id(&app, "Shop Fresh");
    let token = {
        use coffer::db::schema::connectors;
        use diesel::prelude::*;
        let db = app.db();
        let mut c = db.get().expect("conn");
        connectors::table
            .find(&fresh)
            .select(connectors::monri_authenticity_token)
            .first::<String>(&mut *c)
            .expect("connector")
    };
    assert_eq!(monri_oauth(&app, &token, &s[1]).await, StatusCode::OK);
}

#[tokio::test]
async fn api_user_passwords_are_shown_by_the_post_and_never_ride_in_a_cookie() {
    let app = TestApp::demo().await;
    let b = Jarred::login(&app, "manager", "manager-demo").await;
    let shop = merchant_id(&app, "Acme Shop");
    let list = format!("/api-users?merchant={shop}");
    let pw = issue(
        &b,
        "/api-users",
        &[("merchant_id", &shop), ("username", "shop-api-rules")],
        &["Password of shop-api-rules (shown only now): "],
        &list,
    )
    .await;
    let (s, v) = get_profile(
        &app,
        "demo-shop-cards",
        ("shop-api-rules", &pw[0]),
        "nobody",
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");

    let id = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::models::api_user::find_by_username(&mut c, "shop-api")
            .expect("q")
            .expect("user")
            .id
    };
    let pw = issue(
        &b,
        &format!("/api-users/{id}/reset-password"),
        &[],
        &["New password of shop-api (shown only now): "],
        &list,
    )
    .await;
    let (s, _) = get_profile(&app, "demo-shop-cards", ("shop-api", &pw[0]), "nobody").await;
    assert_eq!(s, StatusCode::OK, "the new password works");
    let (s, _) = get_profile(
        &app,
        "demo-shop-cards",
        ("shop-api", "shop-api-demo"),
        "nobody",
    )
    .await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "the old one no longer does");
}

// ---- 11. Container names are one name whatever their case ----

const DUPLICATE: &str = "This tenant already has a container with this name.";

#[tokio::test]
async fn container_names_differing_only_in_case_are_one_name_on_create() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    let retail = tenant_id(&tenants, "Acme Retail");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "acme SHARED profiles")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains(DUPLICATE));
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Case Box")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "CASE BOX")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains(DUPLICATE));
    // Another tenant may use the name.
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &retail), ("name", "case box")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn container_names_differing_only_in_case_are_one_name_on_rename() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    let r = app
        .post_form(
            "/containers",
            &[("tenant_id", &group), ("name", "Beta Box")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let beta = container_id(&app, "Beta Box");
    let r = app
        .post_form(
            &format!("/containers/{beta}"),
            &[("name", "ACME Shared Profiles")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.expect("body").contains(DUPLICATE));
    assert_eq!(container_id(&app, "Beta Box"), beta, "unchanged");
    // Its own name in another case is a rename.
    let r = app
        .post_form(&format!("/containers/{beta}"), &[("name", "BETA box")])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(container_id(&app, "BETA box"), beta);
}

#[tokio::test]
async fn the_database_holds_one_container_name_per_tenant_whatever_its_case() {
    let app = TestApp::demo().await;
    let shared = container_id(&app, "Acme Shared Profiles");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let existing = coffer::models::container::find(&mut c, &shared)
        .expect("q")
        .expect("container");
    let twin = coffer::models::container::Container {
        id: coffer::ids::new_id(),
        name: "ACME SHARED PROFILES".into(),
        ..existing.clone()
    };
    let e = coffer::models::container::insert(&mut c, &twin).expect_err("refused by the database");
    assert!(coffer::db::is_unique_violation(&e), "{e:?}");
    let other = coffer::models::container::Container {
        id: coffer::ids::new_id(),
        name: "Other Box".into(),
        ..existing
    };
    coffer::models::container::insert(&mut c, &other).expect("insert");
    let e = coffer::models::container::rename(
        &mut c,
        &other.id,
        "acme shared PROFILES",
        coffer::models::now(),
    )
    .expect_err("refused by the database");
    assert!(coffer::db::is_unique_violation(&e), "{e:?}");
}

#[tokio::test]
async fn concurrent_creates_of_one_name_in_several_cases_answer_the_form_error() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let (_, tenants) = app.get_html("/tenants").await;
    let group = tenant_id(&tenants, "Acme Group");
    let token = app.csrf().await;
    let names = [
        "Race Box", "RACE BOX", "race box", "Race BOX", "rACE bOX", "RaCe BoX",
    ];
    let mut tasks = vec![];
    for n in names {
        let client = app.client.clone();
        let url = app.url("/containers");
        let form = vec![
            ("csrf_token".to_string(), token.clone()),
            ("tenant_id".to_string(), group.clone()),
            ("name".to_string(), n.to_string()),
        ];
        tasks.push(tokio::spawn(async move {
            let r = client.post(url).form(&form).send().await.expect("POST");
            let s = r.status();
            (s, r.text().await.unwrap_or_default())
        }));
    }
    let mut created = 0;
    for t in tasks {
        let (s, body) = t.await.expect("task");
        match s {
            StatusCode::SEE_OTHER => created += 1,
            StatusCode::UNPROCESSABLE_ENTITY => assert!(body.contains(DUPLICATE), "{body}"),
            other => panic!("{other}: {body}"),
        }
    }
    assert_eq!(created, 1, "one of them is created");
}

/// Runs every migration before the case-insensitive name index, inserts names that differ only
/// in case (allowed until then), runs it and every later one in order and returns the names by id.
macro_rules! migrate_with_case_twins {
    ($conn:expr, $migrations:expr, $backend:ty) => {{
        use diesel::RunQueryDsl;
        use diesel::migration::MigrationSource;
        use diesel_migrations::MigrationHarness;
        let conn = $conn;
        let mut all = MigrationSource::<$backend>::migrations(&$migrations).expect("migrations");
        all.sort_by_key(|m| m.name().to_string());
        let at = all
            .iter()
            .position(|m| m.name().to_string().contains("container_name_case"))
            .expect("the name index migration exists");
        // In their order: the later migrations (say, triggers on containers) run after it.
        let after = all.split_off(at);
        let before = all;
        diesel::migration::MigrationConnection::setup(conn).expect("migrations table");
        for m in &before {
            conn.run_migration(&**m).expect("migration");
        }
        diesel::sql_query(
            "INSERT INTO tenants (id, parent_id, path, depth, name, created_at, updated_at) \
             VALUES ('t1', NULL, '/t1/', 0, 'T1', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
                    ('t2', NULL, '/t2/', 0, 'T2', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        )
        .execute(conn)
        .expect("tenants");
        diesel::sql_query(
            "INSERT INTO containers (id, tenant_id, tenant_path, name, created_at, updated_at) VALUES \
             ('c1', 't1', '/t1/', 'Box', '2026-01-01 00:00:00', '2026-01-01 00:00:00'), \
             ('c2', 't1', '/t1/', 'BOX', '2026-01-02 00:00:00', '2026-01-02 00:00:00'), \
             ('c3', 't1', '/t1/', 'box', '2026-01-03 00:00:00', '2026-01-03 00:00:00'), \
             ('c4', 't2', '/t2/', 'box', '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
        )
        .execute(conn)
        .expect("containers");
        for m in &after {
            conn.run_migration(&**m).expect("migration over case twins");
        }
        diesel::sql_query("SELECT name FROM containers ORDER BY id")
            .load::<Name>(conn)
            .expect("names")
            .into_iter()
            .map(|n| n.name)
            .collect::<Vec<String>>()
    }};
}

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

#[test]
fn existing_names_differing_only_in_case_are_renamed_by_the_migration() {
    use diesel::Connection;
    let names = if is_postgres() {
        let (url, _db) = fresh_pg().expect("database");
        let mut c = diesel::PgConnection::establish(&url).expect("connect");
        migrate_with_case_twins!(&mut c, coffer::db::POSTGRES_MIGRATIONS, diesel::pg::Pg)
    } else {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let mut c = diesel::SqliteConnection::establish(&path.to_string_lossy()).expect("open");
        migrate_with_case_twins!(
            &mut c,
            coffer::db::SQLITE_MIGRATIONS,
            diesel::sqlite::Sqlite
        )
    };
    assert_eq!(
        names,
        ["Box", "BOX (c2)", "box (c3)", "box"],
        "the oldest keeps its name"
    );
}
