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
    let instruments = b.table_rows("table#instruments").await;
    assert!(
        instruments.iter().any(|r| r[2] == "411111******1111"),
        "{instruments:?}"
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
