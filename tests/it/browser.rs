#![allow(dead_code)]

//! Browser harness: the console driven in headless Chromium through WebDriver (`fantoccini`
//! talking to a `chromedriver` this harness starts), plus axe-core accessibility checks.
//!
//! # Writing a browser test
//!
//! ```ignore
//! #[tokio::test]
//! async fn my_flow() {
//!     // A demo app (SQLite, or PostgreSQL with COFFER_TEST_DATABASE_URL) and one browser
//!     // session for the whole test. `None` means "skipped" (Chromium or axe-core missing and
//!     // COFFER_REQUIRE_BROWSER is not 1): just return.
//!     let Some(b) = Browser::demo("my_flow").await else { return };
//!     b.login("admin", "admin-demo").await;          // through the login form
//!     b.goto("/tenants").await;                      // a path of the app
//!     b.fill("Name", "Acme Labs").await;             // by id, name or label text
//!     b.select("Parent tenant", "Acme Group").await; // a <select> option by its label
//!     b.click("Create tenant").await;                // a button or link by text (or id)
//!     assert_eq!(b.h1().await, "Tenants");
//!     assert!(b.flashes().await.contains(&"Tenant Acme Labs created.".into()));
//!     b.screenshot("created").await;                 // PNG, see below
//!     b.assert_accessible("tenants after create").await; // axe: no serious/critical
//!     b.finish().await;                              // closes the session
//! }
//! ```
//!
//! `b.app` is the [`TestApp`] behind the browser (setup data through its APIs, database checks);
//! `b.client` is the raw `fantoccini::Client` for anything the helpers do not cover. Other
//! helpers: [`Browser::text`], [`Browser::texts`], [`Browser::table_rows`], [`Browser::path`],
//! [`Browser::press`] / [`Browser::tab`] / [`Browser::shift_tab`] / [`Browser::type_text`]
//! (WebDriver key actions, for keyboard-only flows), [`Browser::focused`] (what has focus),
//! [`Browser::axe`] (the violations themselves).
//!
//! Pages outside the console (the hosted payment page `/pay/{token}`, the 3-D Secure page
//! `/3ds/{token}`) are driven the same way: `b.goto(..)`, `b.fill(..)`, `b.click(..)`, and
//! `b.assert_accessible(..)`. Every GET page must also be listed in `a11y.rs`'s sweep table.
//!
//! # Screenshots
//!
//! `screenshot(step)` writes `target/browser-artifacts/<sqlite|postgres>/<test>-<NN>-<step>.png`
//! (under `$CARGO_TARGET_DIR` when that is set); NN numbers the steps of a test in order. CI keeps
//! that directory as its artifact.
//!
//! # Prerequisites
//!
//! `chromedriver` and `chromium` (Debian: `apt-get install chromium chromium-driver`; override
//! with COFFER_CHROMEDRIVER / COFFER_CHROMIUM) and axe-core (`npm ci --prefix tests/browser`).
//! Without them the tests print a loud "skipped" and pass, unless COFFER_REQUIRE_BROWSER=1 (CI),
//! where they fail.
//!
//! # CSP
//!
//! The console's CSP (`script-src 'self'`) stays as it is: WebDriver's "execute script" runs
//! through the DevTools protocol, which the page's CSP does not govern, so axe is injected as
//! the body of an executed script, not as a `<script>` element.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::helpers::{TestApp, is_postgres};

/// Installation hint shown when something is missing.
const INSTALL: &str =
    "install chromium chromium-driver (apt-get) and run npm ci --prefix tests/browser";

/// What the browser tests need on the machine.
struct Prereqs {
    chromedriver: PathBuf,
    chromium: PathBuf,
    axe: PathBuf,
}

fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn prereqs() -> Result<Prereqs, String> {
    let from_env = |var: &str| std::env::var_os(var).map(PathBuf::from);
    let chromedriver = from_env("COFFER_CHROMEDRIVER")
        .or_else(|| on_path("chromedriver"))
        .ok_or("chromedriver not found on PATH")?;
    let chromium = from_env("COFFER_CHROMIUM")
        .or_else(|| on_path("chromium"))
        .or_else(|| on_path("chromium-browser"))
        .ok_or("chromium not found on PATH")?;
    let axe = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/browser/node_modules/axe-core/axe.min.js");
    if !axe.is_file() {
        return Err(format!("{} is missing", axe.display()));
    }
    for p in [&chromedriver, &chromium] {
        if !p.is_file() {
            return Err(format!("{} is missing", p.display()));
        }
    }
    Ok(Prereqs {
        chromedriver,
        chromium,
        axe,
    })
}

/// `Some` when the browser tests can run; `None` (after a loud notice) when they are skipped.
/// Panics when something is missing and COFFER_REQUIRE_BROWSER=1.
fn check_prereqs(test: &str) -> Option<Prereqs> {
    match prereqs() {
        Ok(p) => Some(p),
        Err(why) if std::env::var("COFFER_REQUIRE_BROWSER").as_deref() == Ok("1") => {
            panic!("browser test {test}: {why}; COFFER_REQUIRE_BROWSER=1 requires them: {INSTALL}")
        }
        Err(why) => {
            eprintln!(
                "\n!!!!!!!! browser test {test} SKIPPED ({why}): {INSTALL} !!!!!!!!\n\
                 !!!!!!!! (set COFFER_REQUIRE_BROWSER=1 to make this a failure)    !!!!!!!!\n"
            );
            None
        }
    }
}

/// A chromedriver process in its own process group; dropping it ends the group (chromedriver
/// and any Chromium it started).
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start(p: &Prereqs) -> Driver {
        use std::os::unix::process::CommandExt;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&p.chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", p.chromedriver.display()));
        let profile = tempfile::tempdir().expect("user-data-dir");
        let d = Driver {
            child,
            port,
            _profile: profile,
        };
        let until = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < until,
                "chromedriver did not listen on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        d
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The group id is chromedriver's pid (process_group(0)).
        let _ = Command::new("kill")
            .args(["-TERM", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One axe-core violation (only the parts the report shows).
#[derive(Debug, Clone)]
pub struct Violation {
    pub id: String,
    pub impact: String,
    pub help: String,
    pub help_url: String,
    /// (CSS selector, failure summary) of every offending node.
    pub nodes: Vec<(String, String)>,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  [{}] {}: {} ({})",
            self.impact, self.id, self.help, self.help_url
        )?;
        for (target, summary) in &self.nodes {
            writeln!(f, "      at {target}: {}", summary.replace('\n', " / "))?;
        }
        Ok(())
    }
}

/// The colour scheme the browser reports to pages (`prefers-color-scheme`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ColorScheme {
    Light,
    Dark,
}

impl ColorScheme {
    fn blink(self) -> u8 {
        match self {
            ColorScheme::Dark => 0,
            ColorScheme::Light => 1,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ColorScheme::Dark => "dark",
            ColorScheme::Light => "light",
        }
    }
}

/// A headless Chromium session on a [`TestApp`].
pub struct Browser {
    pub app: TestApp,
    pub client: Client,
    test: String,
    step: AtomicUsize,
    axe_src: String,
    _driver: Driver,
}

impl Browser {
    /// The demo app and a browser on it; `None` when the browser tests are skipped.
    pub async fn demo(test: &str) -> Option<Browser> {
        Self::demo_in(test, ColorScheme::Light).await
    }

    /// The demo app and a browser whose `prefers-color-scheme` is `scheme`.
    pub async fn demo_in(test: &str, scheme: ColorScheme) -> Option<Browser> {
        let p = check_prereqs(test)?;
        let app = TestApp::demo().await;
        Some(Self::open_in(app, test, p, scheme).await)
    }

    /// A browser on an app the test built itself; `None` when the browser tests are skipped.
    pub async fn on(app: TestApp, test: &str) -> Option<Browser> {
        let p = check_prereqs(test)?;
        Some(Self::open(app, test, p).await)
    }

    async fn open(app: TestApp, test: &str, p: Prereqs) -> Browser {
        Self::open_in(app, test, p, ColorScheme::Light).await
    }

    async fn open_in(app: TestApp, test: &str, p: Prereqs, scheme: ColorScheme) -> Browser {
        let driver = Driver::start(&p);
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": p.chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,900",
                    "--disable-dev-shm-usage", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    "--disable-quic", "--password-store=basic",
                    // Blink's PreferredColorScheme: 0 dark, 1 light (what the page's
                    // `prefers-color-scheme` media query then sees).
                    format!("--blink-settings=preferredColorScheme={}", scheme.blink()),
                    format!("--user-data-dir={}", driver._profile.path().display()),
                ]
            }),
        );
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .expect("WebDriver session");
        let axe_src = std::fs::read_to_string(&p.axe).expect("read axe.min.js");
        Browser {
            app,
            client,
            test: test.to_string(),
            step: AtomicUsize::new(0),
            axe_src,
            _driver: driver,
        }
    }

    /// Ends the WebDriver session (Chromium exits); the driver process goes with `self`.
    pub async fn finish(self) {
        let _ = self.client.clone().close().await;
    }

    // ---- navigation and reading ----

    /// Opens a path of the app.
    pub async fn goto(&self, path: &str) {
        self.client
            .goto(&self.app.url(path))
            .await
            .unwrap_or_else(|e| panic!("goto {path}: {e}"));
    }

    /// The current path (with query).
    pub async fn path(&self) -> String {
        let u = self.client.current_url().await.expect("current url");
        match u.query() {
            Some(q) => format!("{}?{q}", u.path()),
            None => u.path().to_string(),
        }
    }

    /// The trimmed text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let e = self
            .client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page ({}): {e}", self.test));
        e.text().await.expect("text").trim().to_string()
    }

    /// The trimmed texts of every element matching `css`.
    pub async fn texts(&self, css: &str) -> Vec<String> {
        let mut out = vec![];
        for e in self.client.find_all(Locator::Css(css)).await.expect("find") {
            out.push(e.text().await.expect("text").trim().to_string());
        }
        out
    }

    /// The page's `<h1>`.
    pub async fn h1(&self) -> String {
        self.text("h1").await
    }

    /// The flash messages shown.
    pub async fn flashes(&self) -> Vec<String> {
        self.texts(".flash").await
    }

    /// Fails unless a flash message reads exactly `message`.
    pub async fn assert_flash(&self, message: &str) {
        let shown = self.flashes().await;
        assert!(
            shown.iter().any(|f| f == message),
            "flash {message:?} on {}; shown: {shown:?}",
            self.path().await
        );
    }

    /// The rows of the first table matching `table_css`, each as its cells' texts.
    pub async fn table_rows(&self, table_css: &str) -> Vec<Vec<String>> {
        let rows = self
            .client
            .find_all(Locator::Css(&format!("{table_css} tbody tr")))
            .await
            .expect("rows");
        let mut out = vec![];
        for r in rows {
            let mut cells = vec![];
            for c in r.find_all(Locator::Css("th, td")).await.expect("cells") {
                cells.push(c.text().await.expect("cell").trim().to_string());
            }
            out.push(cells);
        }
        out
    }

    /// The cells of the column headed `header` (a `thead th`'s text) of the first table
    /// matching `table_css`, one per body row: a lookup that survives a change of column order.
    pub async fn table_column(&self, table_css: &str, header: &str) -> Vec<String> {
        let v = self
            .client
            .execute(
                "const t = document.querySelector(arguments[0]);\
                 if (!t) { return null; }\
                 const i = Array.from(t.tHead.rows[0].cells).findIndex(c => c.innerText.trim() === arguments[1]);\
                 if (i < 0) { return null; }\
                 return Array.from(t.tBodies[0].rows).map(r => r.cells[i] ? r.cells[i].innerText.trim() : '');",
                vec![json!(table_css), json!(header)],
            )
            .await
            .expect("table column");
        let cells = v
            .as_array()
            .unwrap_or_else(|| panic!("no column {header:?} in {table_css} ({})", self.test));
        cells
            .iter()
            .map(|c| c.as_str().unwrap_or_default().to_string())
            .collect()
    }

    // ---- forms ----

    /// The form field named by `key`: its id, its name, or the text of its `<label>`.
    pub async fn field(&self, key: &str) -> Element {
        if let Ok(e) = self.client.find(Locator::Id(key)).await {
            return e;
        }
        let by_name = format!("[name=\"{key}\"]:not([type=hidden])");
        if let Ok(e) = self.client.find(Locator::Css(&by_name)).await {
            return e;
        }
        let label = self
            .client
            .find(Locator::XPath(&format!(
                "//label[normalize-space()={}]",
                xpath_literal(key)
            )))
            .await
            .unwrap_or_else(|e| panic!("no field with id, name or label {key:?}: {e}"));
        let id = label
            .attr("for")
            .await
            .expect("for")
            .unwrap_or_else(|| panic!("label {key:?} has no for="));
        self.client
            .find(Locator::Id(&id))
            .await
            .unwrap_or_else(|e| panic!("label {key:?} points at missing #{id}: {e}"))
    }

    /// Replaces a text field's value (typed like a person would).
    pub async fn fill(&self, key: &str, value: &str) {
        let e = self.field(key).await;
        e.clear().await.expect("clear");
        e.send_keys(value)
            .await
            .unwrap_or_else(|err| panic!("type into {key:?}: {err}"));
    }

    /// Chooses the option labelled `option` in the `<select>` named by `key`.
    pub async fn select(&self, key: &str, option: &str) {
        let e = self.field(key).await;
        e.select_by_label(option)
            .await
            .unwrap_or_else(|err| panic!("select {option:?} in {key:?}: {err}"));
    }

    /// The selected option's label of the `<select>` named by `key`.
    pub async fn selected(&self, key: &str) -> String {
        let e = self.field(key).await;
        let v = self
            .client
            .execute(
                "return arguments[0].selectedOptions[0]?.textContent.trim() ?? ''",
                vec![serde_json::to_value(&e).expect("element")],
            )
            .await
            .expect("selected option");
        v.as_str().unwrap_or_default().to_string()
    }

    /// Clicks the button or link whose text (or aria-label) is `what`, or the element with that
    /// id, and waits for the new page it loads (fails when none loads).
    pub async fn click(&self, what: &str) {
        let e = self.clickable(what).await;
        self.loads_new_page(what, async {
            e.click()
                .await
                .unwrap_or_else(|err| panic!("click {what:?}: {err}"));
        })
        .await;
    }

    /// Clicks like [`Browser::click`] but on something that stays on the page (a `<summary>`).
    pub async fn click_in_place(&self, what: &str) {
        let e = self.clickable(what).await;
        e.click()
            .await
            .unwrap_or_else(|err| panic!("click {what:?}: {err}"));
    }

    async fn clickable(&self, what: &str) -> Element {
        let lit = xpath_literal(what);
        let xpath = format!(
            "//button[normalize-space()={lit}] | //a[normalize-space()={lit}] | \
             //input[@type='submit' and @value={lit}] | //*[@id={lit}] | \
             //a[@aria-label={lit}] | //button[@aria-label={lit}] | \
             //summary[normalize-space()={lit}]"
        );
        self.client
            .find(Locator::XPath(&xpath))
            .await
            .unwrap_or_else(|e| panic!("nothing to click named {what:?}: {e}"))
    }

    /// Runs `action` (a click, a key press) and waits until it has replaced the document with a
    /// fully loaded new one: a marker set on the old page's `window` is gone and the new
    /// document's readyState is `complete`.
    pub async fn loads_new_page(&self, what: &str, action: impl std::future::Future<Output = ()>) {
        self.client
            .execute("window.__cofferOldPage = true; return true;", vec![])
            .await
            .expect("mark the page");
        action.await;
        let until = Instant::now() + Duration::from_secs(15);
        loop {
            let ready = self
                .client
                .execute(
                    "return !window.__cofferOldPage && document.readyState === 'complete'",
                    vec![],
                )
                .await
                .map(|v| v == Value::Bool(true))
                .unwrap_or(false);
            if ready {
                return;
            }
            assert!(
                Instant::now() < until,
                "{what:?} did not load a new page (still on {})",
                self.path().await
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Presses keys that submit a form or follow a link, and waits for the new page.
    pub async fn press_and_load(&self, keys: &[Key]) {
        self.loads_new_page(&format!("keys {keys:?}"), self.press(keys))
            .await;
    }

    /// Logs in through the login form and checks the console shows the user.
    pub async fn login(&self, username: &str, password: &str) {
        self.goto("/login").await;
        self.fill("Username", username).await;
        self.fill("Password", password).await;
        self.click("Log in").await;
        let who = self.text("header .who").await;
        assert!(who.contains(username), "logged in as {username}: {who}");
    }

    // ---- keyboard ----

    /// Presses each key in turn (WebDriver key actions: down, up).
    pub async fn press(&self, keys: &[Key]) {
        let mut a = KeyActions::new("keyboard".into());
        for k in keys {
            a = a
                .then(KeyAction::Down { value: (*k).into() })
                .then(KeyAction::Up { value: (*k).into() });
        }
        self.client.perform_actions(a).await.expect("key actions");
    }

    pub async fn tab(&self) {
        self.press(&[Key::Tab]).await;
    }

    /// Shift+Tab.
    pub async fn shift_tab(&self) {
        let a = KeyActions::new("keyboard".into())
            .then(KeyAction::Down {
                value: Key::Shift.into(),
            })
            .then(KeyAction::Down {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Tab.into(),
            })
            .then(KeyAction::Up {
                value: Key::Shift.into(),
            });
        self.client.perform_actions(a).await.expect("shift+tab");
    }

    /// Types text into whatever has focus (key actions, character by character).
    pub async fn type_text(&self, text: &str) {
        let mut a = KeyActions::new("keyboard".into());
        for ch in text.chars() {
            a = a
                .then(KeyAction::Down { value: ch })
                .then(KeyAction::Up { value: ch });
        }
        self.client.perform_actions(a).await.expect("typing");
    }

    /// The focused element: tag, id, text (or value), and whether `:focus-visible` matches
    /// together with the outline it draws.
    pub async fn focused(&self) -> Focused {
        let v = self
            .client
            .execute(
                "const e = document.activeElement; const s = getComputedStyle(e);\
                 return {tag: e.tagName.toLowerCase(), id: e.id || '', \
                   text: (e.innerText || e.value || '').trim(), href: e.getAttribute('href') || '', \
                   visible: e.matches(':focus-visible'), \
                   outline: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 \
                     ? s.outlineWidth + ' ' + s.outlineStyle + ' ' + s.outlineColor : '', \
                   landmark: e.closest('main') ? 'main' : (e.closest('nav') ? 'nav' : (e.closest('header') ? 'header' : ''))}",
                vec![],
            )
            .await
            .expect("active element");
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_string();
        Focused {
            tag: s("tag"),
            id: s("id"),
            text: s("text"),
            href: s("href"),
            focus_visible: v["visible"].as_bool().unwrap_or(false),
            outline: s("outline"),
            landmark: s("landmark"),
        }
    }

    // ---- screenshots ----

    /// Saves a PNG of the viewport as `<artifacts>/<test>-<NN>-<step>.png` and returns its path.
    pub async fn screenshot(&self, step: &str) -> PathBuf {
        let n = self.step.fetch_add(1, Ordering::SeqCst) + 1;
        let dir = artifacts_dir();
        std::fs::create_dir_all(&dir).expect("artifact dir");
        let file = dir.join(format!("{}-{n:02}-{step}.png", self.test));
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(&file, png).expect("write screenshot");
        file
    }

    // ---- accessibility ----

    /// Runs axe-core (WCAG 2.0/2.1 A and AA rules) on the current page; every violation.
    pub async fn axe(&self) -> Vec<Violation> {
        let loaded = self
            .client
            .execute("return typeof window.axe === 'object'", vec![])
            .await
            .expect("probe axe");
        if loaded != Value::Bool(true) {
            // Executed script, not a <script> element: the page CSP does not apply.
            self.client
                .execute(&format!("{}\n;return true;", self.axe_src), vec![])
                .await
                .expect("inject axe-core");
        }
        let out = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']},\
                                    resultTypes: ['violations']})\
                   .then(r => done({ok: r.violations.map(v => ({id: v.id, impact: v.impact || '', help: v.help,\
                       helpUrl: v.helpUrl, nodes: v.nodes.map(n => [n.target.join(' '), n.failureSummary || ''])}))}))\
                   .catch(e => done({err: String(e)}));",
                vec![],
            )
            .await
            .expect("run axe");
        if let Some(err) = out.get("err") {
            panic!("axe failed: {err}");
        }
        out["ok"]
            .as_array()
            .expect("violations")
            .iter()
            .map(|v| Violation {
                id: v["id"].as_str().unwrap_or_default().into(),
                impact: v["impact"].as_str().unwrap_or_default().into(),
                help: v["help"].as_str().unwrap_or_default().into(),
                help_url: v["helpUrl"].as_str().unwrap_or_default().into(),
                nodes: v["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|n| {
                        (
                            n[0].as_str().unwrap_or_default().into(),
                            n[1].as_str().unwrap_or_default().into(),
                        )
                    })
                    .collect(),
            })
            .collect()
    }

    /// The serious and critical violations of the current page, as a readable report (empty
    /// when there are none).
    pub async fn axe_report(&self, what: &str) -> String {
        let bad: Vec<Violation> = self
            .axe()
            .await
            .into_iter()
            .filter(|v| v.impact == "serious" || v.impact == "critical")
            .collect();
        if bad.is_empty() {
            return String::new();
        }
        let mut s = format!("{what} ({}):\n", self.path().await);
        for v in bad {
            s.push_str(&v.to_string());
        }
        s
    }

    /// Fails on any serious or critical axe violation of the current page.
    pub async fn assert_accessible(&self, what: &str) {
        let report = self.axe_report(what).await;
        assert!(report.is_empty(), "accessibility violations on {report}");
    }
}

/// The focused element, see [`Browser::focused`].
#[derive(Debug, Clone)]
pub struct Focused {
    pub tag: String,
    pub id: String,
    pub text: String,
    pub href: String,
    pub focus_visible: bool,
    /// Width, style and colour of the outline, empty when none is drawn.
    pub outline: String,
    /// `main`, `nav` or `header`: the landmark the element is in.
    pub landmark: String,
}

/// `target/browser-artifacts/<sqlite|postgres>` (under `$CARGO_TARGET_DIR` when set).
pub fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let target = if target.is_relative() {
        Path::new(env!("CARGO_MANIFEST_DIR")).join(target)
    } else {
        target
    };
    target
        .join("browser-artifacts")
        .join(if is_postgres() { "postgres" } else { "sqlite" })
}

/// A string as an XPath 1.0 literal (which has no escapes).
fn xpath_literal(s: &str) -> String {
    if !s.contains('\'') {
        format!("'{s}'")
    } else if !s.contains('"') {
        format!("\"{s}\"")
    } else {
        let parts: Vec<String> = s.split('\'').map(|p| format!("'{p}'")).collect();
        format!("concat({})", parts.join(", \"'\", "))
    }
}

/// The harness itself: axe runs on a console page despite its CSP and reports what is wrong,
/// with rule, impact and selector; the untouched page has nothing serious.
#[tokio::test]
async fn axe_runs_under_the_console_csp_and_reports_violations() {
    let Some(b) = Browser::demo("axe_selftest").await else {
        return;
    };
    b.goto("/login").await;
    let r = b
        .app
        .client
        .get(b.app.url("/login"))
        .send()
        .await
        .expect("GET");
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .expect("csp")
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert_eq!(b.axe_report("login").await, "");
    // Break the page: an unlabelled field, an image without alt, no lang.
    b.client
        .execute(
            "document.documentElement.removeAttribute('lang');\
             document.getElementById('username').labels[0].remove();\
             const i = document.createElement('img'); i.src = '/static/none.png'; i.id = 'bad-img';\
             document.querySelector('main').append(i); return true;",
            vec![],
        )
        .await
        .expect("break the page");
    let v = b.axe().await;
    let find = |id: &str| {
        v.iter()
            .find(|x| x.id == id)
            .unwrap_or_else(|| panic!("{id} in {v:?}"))
    };
    assert_eq!(find("image-alt").impact, "critical");
    assert_eq!(find("image-alt").nodes[0].0, "#bad-img");
    assert_eq!(find("label").nodes[0].0, "#username");
    assert_eq!(find("html-has-lang").impact, "serious");
    let report = b.axe_report("broken login").await;
    assert!(
        report.contains("[critical] image-alt") && report.contains("at #bad-img"),
        "{report}"
    );
    b.screenshot("broken").await;
    b.finish().await;
}
