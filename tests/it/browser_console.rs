//! End-to-end console flows in headless Chromium (harness: `browser.rs`): every step under test
//! is done through the UI like a person would; only the profiles to search for are set up
//! through the Transaction API beforehand (the console cannot create profiles).

use fantoccini::key::Key;
use serde_json::json;

use crate::browser::Browser;
use crate::fuzz::register;

#[tokio::test]
async fn admin_builds_a_setup_and_deletes_a_profile_in_the_browser() {
    let Some(b) = Browser::demo("console_flow").await else {
        return;
    };
    // Setup: two profiles in Acme Shared Profiles (through the Transaction API).
    let alice = register(
        &b.app,
        "browser-alice",
        json!({"firstName": "Alice", "lastName": "Browser", "email": "alice@example.com"}),
    )
    .await;
    register(
        &b.app,
        "browser-bob",
        json!({"firstName": "Bob", "lastName": "Browser", "email": "bob@example.com"}),
    )
    .await;

    // Log in: the platform admin lands on the home page, then opens the tenant tree.
    b.login("admin", "admin-demo").await;
    assert_eq!(b.path().await, "/");
    assert_eq!(b.h1().await, "Home");
    b.screenshot("logged-in").await;
    b.click("Tenants").await;
    assert_eq!(b.h1().await, "Tenants");

    // A sub-tenant of Acme Group.
    b.select("Parent tenant", "Acme Group").await;
    b.fill("Name", "Acme Labs").await;
    b.click("Create tenant").await;
    assert_eq!(b.h1().await, "Acme Labs");
    b.assert_flash("Tenant Acme Labs created.").await;
    b.click("Tenants").await;
    let tree = b.texts("ul.tree li").await;
    let labs = tree.iter().position(|t| t == "Acme Labs").expect("in tree");
    let group = tree.iter().position(|t| t == "Acme Group").expect("group");
    assert!(labs > group, "sub-tenant listed under its parent: {tree:?}");
    b.screenshot("sub-tenant").await;

    // A customer profile container owned by Acme Group.
    b.click("Tokenization › Customer Profiles").await;
    assert_eq!(b.h1().await, "Customer Profiles");
    b.select("tenant_id", "Acme Group").await;
    b.fill("name", "Acme Browser Profiles").await;
    b.click("Create").await;
    b.assert_flash("Container Acme Browser Profiles created.")
        .await;
    b.screenshot("container").await;

    // A connector of Acme Shop with the new container in its Connector Base Data.
    b.click("Connectors").await;
    assert_eq!(b.h1().await, "Connectors");
    b.select("Merchant", "Acme Shop").await;
    b.fill("Name", "Acme Browser Cards").await;
    b.click("Create connector").await;
    assert_eq!(b.h1().await, "Acme Browser Cards");
    b.assert_flash("Connector Acme Browser Cards created.")
        .await;
    b.select("Customer Profile Container", "Acme Browser Profiles")
        .await;
    b.click("Save").await;
    // Nothing changes before the confirmation, which says what will.
    assert_eq!(
        b.h1().await,
        "Save the Connector Base Data of Acme Browser Cards?"
    );
    let consequences = b.texts("#consequences li").await;
    assert!(
        consequences.iter().any(|c| c.starts_with(
            "Acme Browser Cards will read and store customer profiles in Acme Browser Profiles"
        )),
        "{consequences:?}"
    );
    b.screenshot("confirm-container-change").await;
    b.click("Save the Connector Base Data").await;
    assert_eq!(
        b.selected("Customer Profile Container").await,
        "Acme Browser Profiles"
    );
    let effective = b.text("#effective-container").await;
    assert!(
        effective.starts_with("Acme Browser Profiles"),
        "effective container: {effective}"
    );
    b.screenshot("connector-base-data").await;
    b.click("Connectors").await;
    let rows = b.table_rows("table").await;
    assert!(
        rows.iter()
            .any(|r| r[0] == "Acme Browser Cards" && r[1] == "Acme Shop"),
        "{rows:?}"
    );

    // A Global Setting: Acme Retail's connectors use the new container.
    b.click("Global Settings").await;
    b.select("tenant", "Acme Retail").await;
    b.click("Show").await;
    assert_eq!(
        b.text("h2").await,
        "Customer Profile Container for the connectors of Acme Retail"
    );
    b.select("Customer Profile Container", "Acme Browser Profiles")
        .await;
    b.click("Save").await;
    assert_eq!(b.h1().await, "Change the Global Setting of Acme Retail?");
    b.click("Save the Global Setting").await;
    b.assert_flash(
        "Global Setting saved: 0 connectors of Acme Retail now use Acme Browser Profiles through it.",
    )
    .await;
    assert_eq!(
        b.selected("Customer Profile Container").await,
        "Acme Browser Profiles"
    );
    b.screenshot("global-setting").await;

    // Find Alice's profile by customerIdentification, open it, delete it after confirming.
    b.click("Tokenization › Customer Profiles").await;
    b.select("tenant", "Acme Group").await;
    b.click("Show").await;
    b.click("show Acme Shared Profiles").await;
    assert_eq!(b.h1().await, "Acme Shared Profiles");
    b.fill("q", "browser-alice").await;
    // Enter submits the container's own search form (the header has a search box too).
    b.press_and_load(&[Key::Enter]).await;
    let rows = b.table_rows("table").await;
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0][0], "browser-alice");
    assert_eq!(rows[0][1], alice.guid);
    b.screenshot("search").await;
    b.click("browser-alice").await;
    assert_eq!(b.h1().await, "Customer profile browser-alice");
    let numbers = b.table_column("table#instruments", "Number").await;
    assert!(
        numbers.iter().any(|n| n == "411111******1111"),
        "{numbers:?}"
    );
    b.screenshot("profile").await;
    b.click("Delete profile…").await;
    assert_eq!(b.h1().await, "Delete customer profile browser-alice?");
    b.screenshot("confirm-delete").await;
    b.click("Delete profile").await;
    b.assert_flash(&format!("Customer profile {} deleted.", alice.guid))
        .await;
    assert_eq!(b.h1().await, "Acme Shared Profiles");
    let left: Vec<String> = b
        .table_rows("table")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert_eq!(left, ["browser-bob"]);
    b.screenshot("deleted").await;

    // The audit log shows the deletion first.
    b.click("Audit log").await;
    assert_eq!(b.h1().await, "Audit log");
    let rows = b.table_rows("table.audit").await;
    let top = &rows[0];
    assert_eq!(top[1], "admin");
    assert_eq!(top[2], "profile.delete");
    // Columns: time, actor, action, object (linked), summary, …
    assert_eq!(top[3], format!("profile {}", alice.guid), "{top:?}");
    assert!(
        top[4].contains(&alice.guid) && top[4].contains("browser-alice"),
        "{top:?}"
    );
    b.screenshot("audit").await;
    b.finish().await;
}

/// Keyboard alone: log in, reach the main nav past the skip link, follow a nav link and submit a
/// form, with a visible focus indicator throughout.
#[tokio::test]
async fn the_console_works_with_the_keyboard_alone() {
    let Some(b) = Browser::demo("keyboard").await else {
        return;
    };
    b.goto("/login").await;
    // The username field has autofocus.
    let f = b.focused().await;
    assert_eq!(f.id, "username", "{f:?}");
    b.type_text("manager").await;
    b.tab().await;
    assert_eq!(b.focused().await.id, "password");
    b.type_text("manager-demo").await;
    b.shift_tab().await;
    assert_eq!(b.focused().await.id, "username");
    b.tab().await;
    b.press_and_load(&[Key::Enter]).await;
    assert_eq!(b.path().await, "/");
    assert_eq!(b.h1().await, "Home");

    // First Tab: the skip link, visibly focused, pointing at the <main> landmark.
    b.tab().await;
    let skip = b.focused().await;
    assert_eq!(skip.text, "Skip to content", "{skip:?}");
    assert_eq!(skip.href, "#main");
    assert!(skip.focus_visible, "{skip:?}");
    assert!(!skip.outline.is_empty(), "no focus outline: {skip:?}");
    b.screenshot("skip-link").await;
    // Enter follows it: the next Tab lands inside <main>.
    b.press(&[Key::Enter]).await;
    b.tab().await;
    let first = b.focused().await;
    assert_eq!(first.landmark, "main", "{first:?}");

    // Back to the top and along the main nav to "Tokenization › Customer Profiles".
    b.goto("/tenants").await;
    let mut reached = None;
    for _ in 0..12 {
        b.tab().await;
        let f = b.focused().await;
        assert!(
            f.focus_visible && !f.outline.is_empty(),
            "focus not visible: {f:?}"
        );
        if f.href == "/containers" {
            reached = Some(f);
            break;
        }
    }
    let nav = reached.expect("the containers nav link is reachable by Tab");
    assert_eq!(nav.landmark, "nav");
    b.screenshot("nav-focus").await;
    b.press_and_load(&[Key::Enter]).await;
    assert_eq!(b.h1().await, "Customer Profiles");

    // Tab to the new container's name, type it, Tab to its button and press Space.
    let mut found = false;
    for _ in 0..40 {
        b.tab().await;
        if b.focused().await.id == "name" {
            found = true;
            break;
        }
    }
    assert!(found, "the container name field is reachable by Tab");
    b.type_text("Keyboard Profiles").await;
    b.tab().await;
    let button = b.focused().await;
    assert_eq!(
        (button.tag.as_str(), button.text.as_str()),
        ("button", "Create")
    );
    assert!(
        button.focus_visible && !button.outline.is_empty(),
        "{button:?}"
    );
    b.press_and_load(&[Key::Space]).await;
    b.assert_flash("Container Keyboard Profiles created.").await;
    let names: Vec<String> = b
        .table_rows("table")
        .await
        .into_iter()
        .map(|r| r[0].clone())
        .collect();
    assert!(
        names.contains(&"Keyboard Profiles".to_string()),
        "{names:?}"
    );
    b.screenshot("created-by-keyboard").await;
    b.finish().await;
}

/// At 390 px the navigation hides behind the Menu button, which opens it without JavaScript
/// (console pages load no script at all: the button is a label for a checkbox), and no page
/// there is wider than the viewport.
#[tokio::test]
async fn at_phone_width_the_menu_button_opens_the_navigation_without_javascript() {
    use fantoccini::Locator;
    let Some(b) = Browser::demo("phone_menu").await else {
        return;
    };
    b.login("admin", "admin-demo").await;
    b.client
        .set_window_size(390, 844)
        .await
        .expect("window size");
    b.goto("/merchants").await;
    // The one console script (copy buttons, focus) has nothing to do with the menu, which is
    // a checkbox and CSS.
    let scripts = b
        .client
        .execute(
            "return Array.from(document.scripts).map(s => new URL(s.src).pathname)",
            vec![],
        )
        .await
        .expect("scripts");
    assert_eq!(
        scripts,
        serde_json::json!(["/static/js/console.js"]),
        "console pages run only their own small script"
    );
    let (scroll, inner) = crate::a11y::widths(&b).await;
    assert!(scroll <= inner, "{scroll} px wide in {inner} px");
    let link = b
        .client
        .find(Locator::Css("nav[aria-label='Main'] a[href='/connectors']"))
        .await
        .expect("nav link");
    assert!(
        !link.is_displayed().await.expect("displayed"),
        "closed at 390 px"
    );
    b.screenshot("menu-closed").await;
    b.client
        .find(Locator::Css("label.nav-button"))
        .await
        .expect("menu button")
        .click()
        .await
        .expect("click menu");
    assert!(
        link.is_displayed().await.expect("displayed"),
        "the menu opened"
    );
    b.screenshot("menu-open").await;
    link.click().await.expect("follow");
    assert_eq!(b.h1().await, "Connectors");
    // At 1280 px the navigation is always shown, and the Menu button is not.
    b.client
        .set_window_size(1280, 900)
        .await
        .expect("window size");
    let link = b
        .client
        .find(Locator::Css("nav[aria-label='Main'] a[href='/merchants']"))
        .await
        .expect("nav link");
    assert!(link.is_displayed().await.expect("displayed"));
    let button = b
        .client
        .find(Locator::Css("label.nav-button"))
        .await
        .expect("menu button");
    assert!(!button.is_displayed().await.expect("displayed"));
    b.finish().await;
}

/// Issue 12: two-factor enrollment and the two-step login, end to end in the browser, with a
/// screenshot of the enrollment page (QR code and secret).
#[tokio::test]
async fn a_manager_sets_up_two_factor_and_signs_in_with_a_recovery_code_in_the_browser() {
    use crate::identity::{base32_decode, totp};
    let Some(b) = Browser::demo("two_factor_flow").await else {
        return;
    };
    b.login("manager", "manager-demo").await;
    b.goto("/account/two-factor").await;
    assert_eq!(b.h1().await, "Two-factor authentication");
    b.click("Set up two-factor authentication").await;
    let secret_text = b.text("#totp-secret").await;
    let uri = b.text("#totp-uri").await;
    assert_eq!(
        uri,
        format!("otpauth://totp/Coffer:manager?secret={secret_text}&issuer=Coffer")
    );
    let svg = b.texts(".qr svg").await;
    assert_eq!(svg.len(), 1, "one inline SVG QR code");
    b.screenshot("enrollment").await;
    b.assert_accessible("two-factor enrollment").await;
    let secret = base32_decode(&secret_text);
    b.fill("code", &totp(&secret, 0)).await;
    b.click("Switch on two-factor authentication").await;
    let codes = b.texts("#recovery-codes li").await;
    assert_eq!(codes.len(), 10, "{codes:?}");
    b.screenshot("recovery-codes").await;

    // Signing in again: the password, then a recovery code; the code works once.
    b.click("Log out").await;
    for (attempt, expect_in) in [(0, true), (1, false)] {
        b.goto("/login").await;
        b.fill("Username", "manager").await;
        b.fill("Password", "manager-demo").await;
        b.click("Log in").await;
        assert_eq!(b.path().await, "/login/two-factor", "attempt {attempt}");
        b.fill("code", &codes[0]).await;
        b.click("Verify").await;
        if expect_in {
            let who = b.text("header .who").await;
            assert!(who.contains("manager"), "signed in: {who}");
            b.click("Log out").await;
        } else {
            assert_eq!(
                b.path().await,
                "/login/two-factor",
                "a used code is refused"
            );
            b.screenshot("recovery-code-refused").await;
        }
    }
    b.finish().await;
}

/// Issue 13, points 5 and 10: with the console's script, copy buttons appear beside ids and keys
/// and answer a click; a form re-rendered with messages puts the focus on its first bad field.
#[tokio::test]
async fn copy_buttons_work_and_a_form_with_errors_focuses_its_first_bad_field() {
    let Some(b) = Browser::demo("copy_and_focus").await else {
        return;
    };
    b.login("admin", "admin-demo").await;
    b.click("Connectors").await;
    b.click("Acme Shop Cards").await;
    let buttons = b.texts("button.copy").await;
    assert!(
        buttons.len() >= 3 && buttons.iter().all(|t| t == "Copy"),
        "visible copy buttons (hidden ones have no text): {buttons:?}"
    );
    b.click_in_place("Copy the API key").await;
    // The clipboard answers asynchronously (a promise) and the label ("Copied" or "Press
    // Ctrl+C") returns to "Copy" after 1.6 s, which a loaded machine can miss: the button keeps
    // `data-copied` with how it was answered. Wait up to 5 s for it.
    let mut answered = vec![];
    for _ in 0..50 {
        answered = b.texts("button.copy[data-copied]").await;
        if !answered.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(
        answered.len(),
        1,
        "the click was answered, on that button only"
    );
    b.screenshot("copy").await;

    b.click("Tenants").await;
    b.select("Parent tenant", "Acme Group").await;
    b.fill("Name", "   ").await;
    b.click("Create tenant").await;
    let f = b.focused().await;
    assert_eq!(f.id, "name", "focus on the field with the error: {f:?}");
    b.screenshot("first-error-focused").await;
    b.finish().await;
}

/// How the profile's instrument table lays out, measured in the page: for every body row the
/// number of line boxes of the "Number" cell's text and of each button's label in the
/// "Actions" cell (1 = one line), and the widths of the table (as laid out, and `least`: at
/// its min-content width, which shows the room left), its `.table-wrap` box (client and scroll
/// width), the document and the viewport.
async fn instrument_layout(b: &Browser) -> serde_json::Value {
    b.client
        .execute(
            "const lines = el => { const r = document.createRange(); r.selectNodeContents(el);\
               return new Set(Array.from(r.getClientRects()).filter(x => x.width > 0)\
                 .map(x => Math.round(x.top))).size; };\
             const t = document.querySelector('table#instruments');\
             const col = h => Array.from(t.tHead.rows[0].cells).findIndex(c => c.innerText.trim() === h);\
             const n = col('Number'), a = col('Actions');\
             const rows = Array.from(t.tBodies[0].rows).map(r => ({\
               number: r.cells[n].innerText.trim(), number_lines: lines(r.cells[n]),\
               buttons: a < 0 ? [] : Array.from(r.cells[a].querySelectorAll('button'))\
                 .map(x => [x.innerText.trim(), lines(x)])}));\
             const w = t.closest('.table-wrap');\
             const table = Math.ceil(t.getBoundingClientRect().width);\
             t.style.width = 'min-content'; const least = Math.ceil(t.getBoundingClientRect().width);\
             t.style.width = '';\
             return {rows, table, least, wrap: w.clientWidth,\
               wrap_scroll: w.scrollWidth, doc: document.documentElement.scrollWidth,\
               viewport: window.innerWidth};",
            vec![],
        )
        .await
        .expect("measure the instrument table")
}

/// Issue 13, points 1 and 8: the profile page's instrument table at 1280×900, side navigation
/// shown, with the widest rows it has (a preferred card, an expired card and an IBAN, each of
/// the last two with both actions): every masked number on one line, no action button broken
/// inside its label, and the table no wider than its box (no sideways scrolling); at 390 px the
/// table may scroll inside its `.table-wrap`, the page itself does not. The side navigation's
/// search field shows its whole placeholder, and its button is still named "Search".
#[tokio::test]
async fn the_profile_instrument_table_fits_at_1280_px_and_scrolls_only_in_its_box_at_390() {
    use coffer::models::profile::{self, Instrument};
    let Some(b) = Browser::demo("instrument_table").await else {
        return;
    };
    let reg = register(&b.app, "table-customer", json!({"firstName": "Tia"})).await;
    let pid = crate::fuzz::ids_of(
        &b.app,
        "profiles",
        &format!("WHERE profile_guid = '{}'", reg.guid),
    )
    .remove(0);
    {
        let outlet = crate::helpers::connector_id(&b.app, "Acme Outlet Cards");
        let db = b.app.db();
        let mut c = db.get().expect("conn");
        let expired = Instrument {
            brand: Some("mastercard".into()),
            card_holder: Some("Tia Table".into()),
            first_six: Some("555555".into()),
            exp_month: Some(1),
            exp_year: Some(2021),
            fingerprint: format!("fp-{pid}-expired"),
            is_preferred: false,
            ..crate::helpers::card_row(&pid, &outlet, "4444", coffer::models::now())
        };
        let iban = Instrument {
            fingerprint: format!("fp-{pid}-iban"),
            ..crate::helpers::iban_row(
                &expired,
                &coffer::gateway::simulator::mask_iban("FR1420041010050500013M02606"),
                "BNPAFRPP",
                "m-1",
            )
        };
        for i in [&expired, &iban] {
            profile::insert_instrument(&mut c, i).expect("insert instrument");
        }
    }
    b.login("admin", "admin-demo").await;
    b.goto(&format!("/profiles/{pid}")).await;
    assert_eq!(b.h1().await, "Customer profile table-customer");
    let mut numbers = b.table_column("table#instruments", "Number").await;
    numbers.sort();
    assert_eq!(
        numbers,
        [
            "411111******1111",
            "555555******4444",
            "FR14*******************2606"
        ],
        "every instrument with its masked number"
    );

    // 1280×900: every number and every button label on one line, nothing wider than its box.
    let m = instrument_layout(&b).await;
    b.screenshot("profile-1280").await;
    let rows = m["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 3, "{m}");
    for r in rows {
        assert_eq!(
            r["number_lines"], 1,
            "a masked number wraps at 1280 px: {m}"
        );
        let buttons = r["buttons"].as_array().expect("buttons");
        assert!(!buttons.is_empty(), "the actions of a manager: {m}");
        for x in buttons {
            assert_eq!(x[1], 1, "an action button breaks inside its label: {m}");
        }
    }
    assert_eq!(
        rows.iter()
            .map(|r| r["buttons"].as_array().map_or(0, Vec::len))
            .sum::<usize>(),
        5,
        "Remove… on each row, Make preferred… on the two others: {m}"
    );
    let int = |k: &str| m[k].as_i64().unwrap_or_else(|| panic!("{k} in {m}"));
    assert!(
        int("table") <= int("wrap") && int("wrap_scroll") <= int("wrap"),
        "the instrument table scrolls sideways at 1280 px: {m}"
    );
    assert!(
        int("doc") <= int("viewport"),
        "the page is wider than 1280 px: {m}"
    );

    // The side navigation's search field: the whole placeholder fits, the button says Search.
    let s = b
        .client
        .execute(
            "const f = document.querySelector('form.header-search');\
             const i = f.querySelector('input[name=q]'); const st = getComputedStyle(i);\
             const g = document.createElement('canvas').getContext('2d');\
             g.font = [st.fontStyle, st.fontWeight, st.fontSize, st.fontFamily].join(' ');\
             const b = f.querySelector('button[type=submit]');\
             return {action: f.getAttribute('action'), method: f.getAttribute('method'),\
               placeholder: i.placeholder, label: i.labels[0].textContent.trim(),\
               text: Math.ceil(g.measureText(i.placeholder).width),\
               room: Math.floor(i.clientWidth - parseFloat(st.paddingLeft) - parseFloat(st.paddingRight)),\
               button: (b.getAttribute('aria-label') || b.textContent).trim()};",
            vec![],
        )
        .await
        .expect("measure the search field");
    assert_eq!(
        (&s["action"], &s["method"], &s["button"]),
        (&json!("/profiles"), &json!("get"), &json!("Search")),
        "{s}"
    );
    assert!(
        s["label"].as_str().is_some_and(|l| l.starts_with("Search")),
        "{s}"
    );
    assert!(
        s["text"].as_i64() <= s["room"].as_i64(),
        "the search placeholder is cut off at 1280 px: {s}"
    );
    b.assert_accessible("profile with three instruments").await;

    // 390×844: the table may scroll inside its box, the page may not; numbers still one line.
    b.client
        .set_window_size(390, 844)
        .await
        .expect("window size");
    let m = instrument_layout(&b).await;
    b.screenshot("profile-390").await;
    for r in m["rows"].as_array().expect("rows") {
        assert_eq!(r["number_lines"], 1, "a masked number wraps at 390 px: {m}");
    }
    assert!(
        m["doc"].as_i64() <= m["viewport"].as_i64(),
        "the page is wider than the viewport at 390 px: {m}"
    );
    b.finish().await;
}
