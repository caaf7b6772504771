#![allow(dead_code)]

use coffer::config::Settings;
use coffer::startup::Application;
use diesel::{Connection, PgConnection, RunQueryDsl};
use reqwest::StatusCode;

pub struct TestApp {
    pub addr: String,
    /// `http://127.0.0.1:<port>` of the metrics listener, when the settings ask for one.
    pub metrics: Option<String>,
    pub client: reqwest::Client,
    pub settings: Settings,
    /// The clock the app's console sessions are measured with: `advance` ages every session.
    pub clock: coffer::clock::Clock,
    /// The app's configuration cache (`vault::config_cache`).
    pub config: std::sync::Arc<coffer::vault::config_cache::ConfigCache>,
    /// Statements run by the app's pool.
    pub statements: coffer::db::StatementCount,
    /// The app's access audit queue (`audit::access`): tests flush it.
    pub access: coffer::audit::access::AccessLog,
    /// Every API answer of the app checked against the OpenAPI documents
    /// (`tests/it/openapi.rs`); a failure fails the test when the app goes.
    pub api_check: std::sync::Arc<crate::openapi::ApiCheck>,
    _dir: tempfile::TempDir,
    pg: Option<PgDb>,
}

/// A fresh PostgreSQL database, dropped (with its connections) when this guard goes.
pub struct PgDb {
    admin_url: String,
    name: String,
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut c);
        }
    }
}

/// A PostgreSQL URL for a new empty database, when the test run targets PostgreSQL.
pub fn fresh_pg() -> Option<(String, PgDb)> {
    let admin_url = std::env::var("COFFER_TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))?;
    let name = format!("coffer_t_{}", coffer::ids::random_hex(8));
    let mut c = PgConnection::establish(&admin_url).expect("connect to COFFER_TEST_DATABASE_URL");
    diesel::sql_query(format!("CREATE DATABASE {name}"))
        .execute(&mut c)
        .expect("create test database");
    let (base, _) = admin_url.rsplit_once('/').expect("database URL has a path");
    Some((format!("{base}/{name}"), PgDb { admin_url, name }))
}

/// True when the run targets PostgreSQL; otherwise says on stderr why the caller skips.
pub fn postgres_only(why: &str) -> bool {
    if !is_postgres() {
        eprintln!(
            "skipped: {why}; set COFFER_TEST_DATABASE_URL=postgres://… to run this test on PostgreSQL"
        );
    }
    is_postgres()
}

pub fn is_postgres() -> bool {
    std::env::var("COFFER_TEST_DATABASE_URL").is_ok_and(|u| u.starts_with("postgres"))
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        // The server closes idle keep-alive connections after 5 s; never reuse one that old, or
        // a request can race the close and fail with IncompleteMessage under load.
        .pool_idle_timeout(std::time::Duration::from_secs(2))
        .build()
        .expect("client")
}

impl Drop for TestApp {
    /// A test fails when any API answer its app gave differs from the OpenAPI documents.
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.api_check.assert_clean();
        }
    }
}

impl TestApp {
    /// The app with the demo data (`coffer serve --demo`).
    pub async fn demo() -> TestApp {
        Self::spawn_with(true, |_| {}).await
    }

    pub async fn empty() -> TestApp {
        Self::spawn_with(false, |_| {}).await
    }

    pub async fn spawn_with(demo: bool, tweak: impl FnOnce(&mut Settings)) -> TestApp {
        crate::secret_scan::init_tracing();
        let dir = tempfile::tempdir().expect("tempdir");
        let pg = fresh_pg();
        let mut settings = Settings::for_tests(dir.path(), pg.as_ref().map(|(u, _)| u.clone()));
        if pg.is_some() {
            settings.session_key = Some(coffer::ids::random_hex(32));
            settings.vault_key = Some(coffer::ids::random_hex(32));
        }
        tweak(&mut settings);
        let api_check = std::sync::Arc::new(crate::openapi::ApiCheck::default());
        let observer = coffer::web::observe::Observer(Some(api_check.clone()));
        let app = Application::build_observed(settings.clone(), demo, observer).expect("build app");
        let addr = format!("http://127.0.0.1:{}", app.port());
        let metrics = app.metrics_port().map(|p| format!("http://127.0.0.1:{p}"));
        let clock = app.clock();
        let config = app.config_cache();
        let statements = app.statements();
        let access = app.access_log();
        tokio::spawn(app.run_until_stopped());
        TestApp {
            addr,
            metrics,
            client: client(),
            settings,
            clock,
            config,
            statements,
            access,
            api_check,
            _dir: dir,
            pg: pg.map(|(_, d)| d),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.addr, path)
    }

    /// Another app on `settings` (e.g. a second process on the same database) whose API
    /// answers are checked against the OpenAPI documents with this app's.
    pub fn another(&self, settings: Settings, demo: bool) -> Application {
        let observer = coffer::web::observe::Observer(Some(self.api_check.clone()));
        Application::build_observed(settings, demo, observer).expect("build another app")
    }

    /// A direct database connection, for checks that look under the hood.
    pub fn db(&self) -> coffer::db::DbPool {
        coffer::db::DbPool::connect(&self.settings.database_url(), 2).expect("pool")
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let r = self.client.get(self.url(path)).send().await.expect("GET");
        crate::secret_scan::saw(&self.addr, path, b"", r.headers(), b"");
        r
    }

    pub async fn get_html(&self, path: &str) -> (StatusCode, String) {
        let r = self.get(path).await;
        let s = r.status();
        let body = r.text().await.expect("body");
        crate::secret_scan::saw(&self.addr, path, b"", &Default::default(), body.as_bytes());
        (s, body)
    }

    /// The session's CSRF token, read from the login page.
    pub async fn csrf(&self) -> String {
        let (_, body) = self.get_html("/login").await;
        extract_csrf(&body).expect("csrf token on the login page")
    }

    /// POSTs a form with the session's CSRF token added.
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        let r = self
            .client
            .post(self.url(path))
            .form(&form)
            .send()
            .await
            .expect("POST");
        crate::secret_scan::saw(&self.addr, path, b"", r.headers(), b"");
        r
    }

    pub async fn post_form_raw(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .form(fields)
            .send()
            .await
            .expect("POST")
    }

    pub async fn login(&self, username: &str, password: &str) -> reqwest::Response {
        self.post_form("/login", &[("username", username), ("password", password)])
            .await
    }

    /// Logs in and asserts it worked.
    pub async fn login_ok(&self, username: &str, password: &str) {
        let r = self.login(username, password).await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "login of {username} failed"
        );
    }

    /// A second browser on the same app (its own cookie jar).
    pub fn other_browser(&self) -> TestBrowser<'_> {
        TestBrowser {
            app: self,
            client: client(),
        }
    }

    /// Finds the id in a `/kind/<id>` link next to `label` in a page.
    pub async fn id_of(&self, list_path: &str, kind: &str, label: &str) -> String {
        let (_, body) = self.get_html(list_path).await;
        find_link_id(&body, kind, label)
            .unwrap_or_else(|| panic!("no /{kind}/ link for {label} in {list_path}"))
    }
}

pub struct TestBrowser<'a> {
    pub app: &'a TestApp,
    pub client: reqwest::Client,
}

impl TestBrowser<'_> {
    pub async fn get_html(&self, path: &str) -> (StatusCode, String) {
        let r = self
            .client
            .get(self.app.url(path))
            .send()
            .await
            .expect("GET");
        let s = r.status();
        (s, r.text().await.expect("body"))
    }
    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let (_, body) = self.get_html("/login").await;
        let token = extract_csrf(&body).expect("csrf");
        let mut form: Vec<(&str, &str)> = vec![("csrf_token", token.as_str())];
        form.extend_from_slice(fields);
        self.client
            .post(self.app.url(path))
            .form(&form)
            .send()
            .await
            .expect("POST")
    }
    pub async fn login_ok(&self, username: &str, password: &str) {
        let r = self
            .post_form("/login", &[("username", username), ("password", password)])
            .await;
        assert_eq!(
            r.status(),
            StatusCode::SEE_OTHER,
            "login of {username} failed"
        );
    }
}

/// Asserts that `r` answers CSV (`text/csv`).
pub fn assert_csv(r: &reqwest::Response) {
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/csv"),
        "{:?}",
        r.headers()
    );
}

/// Signs in on `base` with `browser` (a client with a cookie store): the login page for its
/// CSRF token, then the form.
pub async fn login_with(
    browser: &reqwest::Client,
    base: &str,
    username: &str,
    password: &str,
) -> reqwest::Response {
    form_with(
        browser,
        base,
        "/login",
        "/login",
        &[("username", username), ("password", password)],
    )
    .await
}

/// A console form sent by `browser`: the CSRF token from `page`, then the POST to `action`.
pub async fn form_with(
    browser: &reqwest::Client,
    base: &str,
    page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let html = browser
        .get(format!("{base}{page}"))
        .send()
        .await
        .expect("GET")
        .text()
        .await
        .expect("page");
    let csrf = extract_csrf(&html).unwrap_or_else(|| panic!("a CSRF token on {page}"));
    let mut all = vec![("csrf_token", csrf.as_str())];
    all.extend_from_slice(fields);
    browser
        .post(format!("{base}{action}"))
        .form(&all)
        .send()
        .await
        .expect("POST")
}

pub fn extract_csrf(body: &str) -> Option<String> {
    let marker = "name=\"csrf_token\" value=\"";
    let i = body.find(marker)? + marker.len();
    let j = body[i..].find('"')?;
    Some(body[i..i + j].to_string())
}

/// Finds `href="/kind/<id>"` whose link text is `label`.
pub fn find_link_id(body: &str, kind: &str, label: &str) -> Option<String> {
    let marker = format!("href=\"/{kind}/");
    let mut rest = body;
    while let Some(i) = rest.find(&marker) {
        let after = &rest[i + marker.len()..];
        let end = after.find('"')?;
        let id = &after[..end];
        let text_start = after.find('>')? + 1;
        let text_end = after[text_start..].find('<')? + text_start;
        if after[text_start..text_end].trim() == label && !id.contains('/') {
            return Some(id.to_string());
        }
        rest = &after[end..];
    }
    None
}

pub fn location(r: &reqwest::Response) -> String {
    r.headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string()
}

/// The id of the container named `name` (demo names are unique).
pub fn container_id(app: &TestApp, name: &str) -> String {
    use coffer::db::schema::containers;
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    containers::table
        .filter(containers::name.eq(name))
        .select(containers::id)
        .first(&mut *c)
        .expect("container")
}

/// The id of the connector named `name` (demo names are unique).
pub fn connector_id(app: &TestApp, name: &str) -> String {
    use coffer::db::schema::connectors;
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    connectors::table
        .filter(connectors::name.eq(name))
        .select(connectors::id)
        .first(&mut *c)
        .expect("connector")
}

/// One profile straight into a container (counted), with one preferred Visa card ending in
/// `last_four` (the gateway API that normally creates them is tested elsewhere).
pub struct SeededProfile {
    pub id: String,
    pub guid: String,
    pub uuid: String,
}

#[allow(clippy::too_many_arguments)]
pub fn seed_card_profile(
    app: &TestApp,
    container: &str,
    connector: &str,
    ident: &str,
    email: &str,
    first_name: &str,
    last_four: &str,
) -> SeededProfile {
    let cid = container_id(app, container);
    let kid = connector_id(app, connector);
    let db = app.db();
    let mut c = db.get().expect("conn");
    let customer =
        format!(r#"{{"firstName":"{first_name}","lastName":"Smith","email":"{email}"}}"#);
    let p = insert_profile_row(&mut c, &cid, ident, &email.to_lowercase(), &customer);
    insert_card(&mut c, &p, &kid, last_four);
    coffer::models::container::add_to_count(&mut c, &cid, 1).expect("count");
    SeededProfile {
        id: p.id,
        guid: p.profile_guid,
        uuid: p.uuid,
    }
}

/// A live profile row (new id, guid and Monri uuid, created now) inserted into a container; the
/// caller counts it and adds its instruments.
pub fn insert_profile_row(
    c: &mut coffer::db::DbConnection,
    container_id: &str,
    ident: &str,
    email: &str,
    customer: &str,
) -> coffer::models::profile::Profile {
    let at = coffer::models::now();
    let p = coffer::models::profile::Profile {
        id: coffer::ids::new_id(),
        container_id: container_id.to_string(),
        profile_guid: coffer::gateway::ids::profile_guid(),
        customer_identification: ident.to_string(),
        email: Some(email.to_string()),
        customer: customer.to_string(),
        created_at: at,
        updated_at: at,
        uuid: coffer::models::profile::new_uuid(),
        deleted_at: None,
    };
    coffer::models::profile::insert(c, &p).expect("insert profile");
    p
}

/// The query plan of `sql` (literal values, no bind parameters), one line per row: SQLite's
/// `EXPLAIN QUERY PLAN` details, or PostgreSQL's `EXPLAIN` with sequential scans discouraged
/// (so that tiny test tables do not make them the cheaper plan; reset afterwards).
pub fn explain(c: &mut coffer::db::DbConnection, sql: &str) -> Vec<String> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Sqlite {
        #[diesel(sql_type = diesel::sql_types::Text)]
        detail: String,
    }
    #[derive(diesel::QueryableByName)]
    struct Pg {
        #[diesel(sql_type = diesel::sql_types::Text)]
        #[diesel(column_name = "QUERY PLAN")]
        plan: String,
    }
    if is_postgres() {
        diesel::sql_query("SET enable_seqscan = off")
            .execute(c)
            .expect("set");
        let plan = diesel::sql_query(format!("EXPLAIN {sql}"))
            .load::<Pg>(c)
            .expect("explain");
        diesel::sql_query("SET enable_seqscan = on")
            .execute(c)
            .expect("reset");
        plan.into_iter().map(|r| r.plan).collect()
    } else {
        diesel::sql_query(format!("EXPLAIN QUERY PLAN {sql}"))
            .load::<Sqlite>(c)
            .expect("explain")
            .into_iter()
            .map(|r| r.detail)
            .collect()
    }
}

/// A preferred Visa card ending in `last_four` for profile `p`, tied to connector `kid`.
pub fn insert_card(
    c: &mut coffer::db::DbConnection,
    p: &coffer::models::profile::Profile,
    kid: &str,
    last_four: &str,
) {
    let i = card_row(&p.id, kid, last_four, p.created_at);
    coffer::models::profile::insert_instrument(c, &i).expect("insert instrument");
}

/// The row of a preferred Visa card (411111…`last_four`, 12/2030) of profile `profile_id`,
/// tied to connector `kid`, created at `at`, with a new id and payment token; not stored.
pub fn card_row(
    profile_id: &str,
    kid: &str,
    last_four: &str,
    at: chrono::NaiveDateTime,
) -> coffer::models::profile::Instrument {
    coffer::models::profile::Instrument {
        id: coffer::ids::new_id(),
        profile_id: profile_id.to_string(),
        connector_id: kid.to_string(),
        payment_token: coffer::gateway::ids::payment_token(),
        method: "card".into(),
        brand: Some("visa".into()),
        card_holder: Some("Ann Smith".into()),
        first_six: Some("411111".into()),
        last_four: Some(last_four.into()),
        exp_month: Some(12),
        exp_year: Some(2030),
        iban_masked: None,
        bic: None,
        mandate_id: None,
        fingerprint: format!("fp-{profile_id}"),
        vault_record: "v1:test:sealed".into(),
        is_preferred: true,
        created_at: at,
        updated_at: at,
        expiry_noticed_at: None,
        expired_at: None,
        card_update_status: None,
        card_updated_at: None,
    }
}

/// `card` as an IBAN instrument of the same profile and connector: a new id and payment token,
/// the card fields cleared, the masked IBAN, BIC and mandate set; not stored.
pub fn iban_row(
    card: &coffer::models::profile::Instrument,
    iban_masked: &str,
    bic: &str,
    mandate_id: &str,
) -> coffer::models::profile::Instrument {
    coffer::models::profile::Instrument {
        id: coffer::ids::new_id(),
        payment_token: coffer::gateway::ids::payment_token(),
        method: "iban".into(),
        brand: None,
        card_holder: None,
        first_six: None,
        last_four: None,
        exp_month: None,
        exp_year: None,
        iban_masked: Some(iban_masked.into()),
        bic: Some(bic.into()),
        mandate_id: Some(mandate_id.into()),
        ..card.clone()
    }
}

/// Runs the built `coffer` binary with the app's settings (data dir, database, vault key) and
/// `RUST_LOG=log`, as a command beside the running server: (exit success, stdout and stderr).
pub fn run_coffer(app: &TestApp, args: &[&str], log: &str) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_coffer"));
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("COFFER_") {
            cmd.env_remove(k);
        }
    }
    cmd.args(args)
        .env("COFFER_DATA_DIR", &app.settings.data_dir)
        .env("RUST_LOG", log);
    if let Some(url) = &app.settings.database_url {
        cmd.env("COFFER_DATABASE_URL", url);
    }
    if let Some(key) = &app.settings.vault_key {
        cmd.env("COFFER_VAULT_KEY", key);
    }
    let out = cmd.output().expect("run coffer");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// getProfile of customer `ident` on the Coffer at `base`, through connector `api_key` with the
/// API user's `creds`: the status and the JSON answer (`null` when it is not JSON).
pub async fn get_profile_at(
    http: &reqwest::Client,
    base: &str,
    api_key: &str,
    creds: (&str, &str),
    ident: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let r = http
        .post(format!(
            "{base}/api/v3/customerProfiles/{api_key}/getProfile"
        ))
        .basic_auth(creds.0, Some(creds.1))
        .header("content-type", "application/json; charset=utf-8")
        .body(serde_json::json!({ "customerIdentification": ident }).to_string())
        .send()
        .await
        .expect("getProfile");
    let s = r.status();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}
