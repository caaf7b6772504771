//! Identity: the login lockout under concurrency, one's own password, two-factor
//! authentication (TOTP enrollment, the second login step, recovery codes, enforcement, reset).

use reqwest::StatusCode;

use crate::helpers::*;

/// A fresh browser's login POST (its own session and CSRF token).
async fn login_in_fresh_browser(base: String, username: &str, password: &str) -> (u16, String) {
    let r = login_with(&client(), &base, username, password).await;
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

/// 25 wrong passwords at once for one username: the failures were counted after the argon2
/// check, so every one of them was checked (25 answers 422) and the lock came too late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_check_at_most_five_and_then_the_account_is_locked() {
    crate::secret_scan::init_tracing();
    let app = TestApp::demo().await;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..25 {
        let base = app.addr.clone();
        tasks.spawn(async move { login_in_fresh_browser(base, "manager", "wrong-password").await });
    }
    let mut answers = vec![];
    while let Some(r) = tasks.join_next().await {
        answers.push(r.expect("task"));
    }
    let wrong = answers.iter().filter(|(s, _)| *s == 422).count();
    let locked = answers.iter().filter(|(s, _)| *s == 429).count();
    assert!(
        (1..=coffer::console::auth::USER_LIMIT as usize).contains(&wrong) && wrong + locked == 25,
        "{wrong} passwords were checked (422), {locked} refused (429), of 25: {:?}",
        answers
            .iter()
            .filter(|(s, _)| *s != 422 && *s != 429)
            .collect::<Vec<_>>()
    );
    for (s, body) in &answers {
        if *s == 422 {
            assert!(body.contains("Unknown username or wrong password."));
        } else {
            assert!(body.contains("sign-in is locked"), "{body}");
        }
    }
    // The right password is refused too, with the locked answer.
    let (s, body) = login_in_fresh_browser(app.addr.clone(), "manager", "manager-demo").await;
    assert_eq!(s, 429);
    assert!(body.contains("sign-in is locked"));
}

/// The lock lasts `COFFER_LOCKOUT_MINUTES` (30 by default).
#[tokio::test]
async fn the_lock_lasts_the_configured_minutes() {
    let app = TestApp::demo().await;
    assert_eq!(app.settings.lockout_minutes, 30);
    for _ in 0..coffer::console::auth::USER_LIMIT {
        let r = app.login("manager", "wrong-password").await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let until: Option<chrono::NaiveDateTime> = {
        use coffer::db::schema::login_throttle as lt;
        use diesel::prelude::*;
        let db = app.db();
        let mut c = db.get().expect("conn");
        lt::table
            .find("user:manager")
            .select(lt::locked_until)
            .first(&mut *c)
            .expect("throttle row")
    };
    let left = until.expect("locked") - coffer::models::now();
    assert!(
        left > chrono::Duration::minutes(29) && left <= chrono::Duration::minutes(30),
        "{left}"
    );
}

/// `/users/{own id}/reset-password` reset one's own password without the current one.
#[tokio::test]
async fn resetting_ones_own_password_is_refused() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let me = app.id_of("/users", "users", "manager").await;
    let r = app
        .post_form(
            &format!("/users/{me}/reset-password"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    let body = r.text().await.expect("body");
    assert!(body.contains("/account/password"), "{body}");
    assert!(!body.contains("class=\"secret\""), "no new password shown");
    // The password is unchanged and the session goes on.
    assert_eq!(app.get("/tenants").await.status(), StatusCode::OK);
    app.other_browser()
        .login_ok("manager", "manager-demo")
        .await;
}

/// Guesses of the current password at /account/password are throttled like logins.
#[tokio::test]
async fn guesses_of_the_current_password_are_throttled() {
    let app = TestApp::demo().await;
    app.login_ok("manager", "manager-demo").await;
    let form = |cur: &'static str| {
        [
            ("current_password", cur),
            ("new_password", "a-new-password-123"),
            ("confirm_password", "a-new-password-123"),
        ]
    };
    for _ in 0..coffer::console::auth::USER_LIMIT {
        let r = app
            .post_form("/account/password", &form("not-the-password"))
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    }
    let r = app
        .post_form("/account/password", &form("manager-demo"))
        .await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    // Nothing changed: the old password is still the one (once the lock is lifted).
    {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::models::throttle::clear(&mut c, "user:manager").expect("clear");
    }
    app.other_browser()
        .login_ok("manager", "manager-demo")
        .await;
}

// ---- two-factor authentication ----

/// RFC 4648 base32 (upper case, no padding), decoded here so that the test does not trust the
/// app's encoder.
pub(crate) fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = vec![];
    let (mut buf, mut bits) = (0u32, 0u32);
    for c in text.trim().trim_end_matches('=').bytes() {
        let v = ALPHABET
            .iter()
            .position(|a| *a == c)
            .unwrap_or_else(|| panic!("not base32: {text}")) as u32;
        buf = (buf << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buf >> bits) as u8);
            buf &= (1 << bits) - 1;
        }
    }
    out
}

/// The RFC 6238 code (HMAC-SHA1, 6 digits, 30-second steps) of the step `offset` steps from now.
pub(crate) fn totp(secret: &[u8], offset: i64) -> String {
    use hmac::{Hmac, KeyInit, Mac};
    let step = chrono::Utc::now().timestamp().div_euclid(30) + offset;
    let mut mac = <Hmac<sha1::Sha1> as KeyInit>::new_from_slice(secret).expect("key");
    mac.update(&step.to_be_bytes());
    let h = mac.finalize().into_bytes();
    let o = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[o] & 0x7f) << 24)
        | (u32::from(h[o + 1]) << 16)
        | (u32::from(h[o + 2]) << 8)
        | u32::from(h[o + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// Six digits that are the code of no step near now.
pub(crate) fn wrong_code(secret: &[u8]) -> String {
    let near: Vec<String> = (-3..=3).map(|o| totp(secret, o)).collect();
    (0..)
        .map(|n| format!("{:06}", 123_456 + n))
        .find(|c| !near.contains(c))
        .expect("a wrong code")
}

/// The text of the element with this id (up to its first tag).
pub(crate) fn element_text(body: &str, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\">");
    let i = body.find(&marker)? + marker.len();
    let j = body[i..].find('<')?;
    Some(body[i..i + j].trim().to_string())
}

/// The list items of `<ul id="recovery-codes">`.
pub(crate) fn recovery_codes(body: &str) -> Vec<String> {
    let Some(i) = body.find("id=\"recovery-codes\"") else {
        return vec![];
    };
    let end = body[i..].find("</ul>").map_or(body.len(), |j| i + j);
    body[i..end]
        .split("<li>")
        .skip(1)
        .map(|li| {
            li.replace("<code>", "")
                .replace("</code>", "")
                .replace("</li>", "")
        })
        .map(|s| s.trim().to_string())
        .collect()
}

/// Sets up two-factor for the browser's signed-in user: the secret and the recovery codes.
pub(crate) async fn enroll(b: &TestBrowser<'_>) -> (Vec<u8>, Vec<String>) {
    let r = b.post_form("/account/two-factor/setup", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.expect("body");
    let secret = base32_decode(&element_text(&body, "totp-secret").expect("totp-secret"));
    let r = b
        .post_form("/account/two-factor/enable", &[("code", &totp(&secret, 0))])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let codes = recovery_codes(&r.text().await.expect("body"));
    assert_eq!(codes.len(), 10);
    (secret, codes)
}

fn two_factor_row(app: &TestApp, user: &str) -> Option<(bool, String)> {
    use coffer::db::schema::{user_two_factor as t, users as u};
    use diesel::prelude::*;
    let db = app.db();
    let mut c = db.get().expect("conn");
    t::table
        .inner_join(u::table.on(u::id.eq(t::user_id)))
        .filter(u::username.eq(user))
        .select((t::enabled, t::secret_sealed))
        .first(&mut *c)
        .optional()
        .expect("two-factor row")
}

fn user_id(app: &TestApp, name: &str) -> String {
    crate::fuzz::ids_of(app, "users", &format!("WHERE username = '{name}'"))
        .pop()
        .expect("user")
}

/// A password-only sign-in: where it leads.
async fn password_step(b: &TestBrowser<'_>, user: &str, pw: &str) -> String {
    let r = b
        .post_form("/login", &[("username", user), ("password", pw)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login of {user}");
    location(&r)
}

async fn code_step(b: &TestBrowser<'_>, code: &str) -> (StatusCode, String, String) {
    let r = b.post_form("/login/two-factor", &[("code", code)]).await;
    let (s, loc) = (r.status(), location(&r));
    (s, loc, r.text().await.expect("body"))
}

/// Where a GET leads: its status and Location.
async fn reach(b: &TestBrowser<'_>, path: &str) -> (StatusCode, String) {
    let r = b.client.get(b.app.url(path)).send().await.expect("GET");
    (r.status(), location(&r))
}

const CONSOLE_PAGES: [&str; 7] = [
    "/",
    "/tenants",
    "/containers",
    "/users",
    "/audit",
    "/account/password",
    "/connectors",
];

#[tokio::test]
async fn two_factor_enrollment_shows_the_secret_needs_a_current_code_and_hashes_recovery_codes() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let (s, body) = b.get_html("/account/two-factor").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("Two-factor authentication is <strong>off</strong>"));
    assert!(body.contains("Set up two-factor authentication"));
    assert!(!body.contains("id=\"totp-secret\""));

    let r = b.post_form("/account/two-factor/setup", &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.expect("body");
    let b32 = element_text(&body, "totp-secret").expect("totp-secret");
    let secret = base32_decode(&b32);
    assert!(secret.len() >= 16, "{b32}");
    assert!(
        body.replace("&#38;", "&")
            .replace("&amp;", "&")
            .contains(&format!(
                "otpauth://totp/Coffer:manager?secret={b32}&issuer=Coffer"
            )),
        "{body}"
    );
    assert!(body.contains("<svg"));
    // The secret is sealed at rest.
    let (on, sealed) = two_factor_row(&app, "manager").expect("pending row");
    assert!(!on);
    assert!(!sealed.contains(&b32));

    let r = b
        .post_form(
            "/account/two-factor/enable",
            &[("code", &wrong_code(&secret))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = r.text().await.expect("body");
    assert!(body.contains("The code is not correct"), "{body}");
    assert!(recovery_codes(&body).is_empty());
    assert_eq!(two_factor_row(&app, "manager").map(|r| r.0), Some(false));

    let r = b
        .post_form("/account/two-factor/enable", &[("code", &totp(&secret, 0))])
        .await;
    assert_eq!(r.status(), StatusCode::OK);
    let body = r.text().await.expect("body");
    assert!(body.contains("Two-factor authentication is <strong>on</strong>"));
    let codes = recovery_codes(&body);
    assert_eq!(codes.len(), 10, "{body}");
    assert_eq!(two_factor_row(&app, "manager").map(|r| r.0), Some(true));

    // The recovery codes are kept as hashes only.
    let rows: Vec<(String, String, String)> = {
        use coffer::db::schema::user_recovery_codes as rc;
        use diesel::prelude::*;
        let db = app.db();
        let mut c = db.get().expect("conn");
        rc::table
            .select((rc::id, rc::user_id, rc::code_hash))
            .load(&mut *c)
            .expect("codes")
    };
    assert_eq!(rows.len(), 10);
    for code in &codes {
        let bare = code.replace('-', "");
        for (id, uid, hash) in &rows {
            for col in [id, uid, hash] {
                assert!(
                    !col.contains(code.as_str()) && !col.contains(&bare),
                    "recovery code {code} stored in clear"
                );
            }
        }
    }
    // The page shown later lists no codes.
    let (_, body) = b.get_html("/account/two-factor").await;
    assert!(recovery_codes(&body).is_empty());
    assert!(body.contains("Unused recovery codes: 10."));
}

#[tokio::test]
async fn with_two_factor_on_the_password_alone_reaches_nothing_and_each_code_works_once() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let (secret, codes) = enroll(&b).await;

    // The password step alone.
    let p = app.other_browser();
    assert_eq!(
        password_step(&p, "manager", "manager-demo").await,
        "/login/two-factor"
    );
    for page in CONSOLE_PAGES.iter().chain(&["/account/two-factor"]) {
        let (s, loc) = reach(&p, page).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
        assert!(
            loc.starts_with("/login?next=") || loc == "/login" || loc == "/login/two-factor",
            "{page}: {loc}"
        );
    }
    let (s, body) = p.get_html("/login/two-factor").await;
    assert_eq!(s, StatusCode::OK);
    assert!(body.contains("action=\"/login/two-factor\""));

    // A current code (newer than the one that switched it on) completes the sign-in.
    let code = totp(&secret, 1);
    let (s, loc, _) = code_step(&p, &code).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/"));
    assert_eq!(reach(&p, "/tenants").await.0, StatusCode::OK);

    // The same code again is refused.
    let q = app.other_browser();
    password_step(&q, "manager", "manager-demo").await;
    let (s, _, body) = code_step(&q, &code).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("used already"), "{body}");
    assert_eq!(reach(&q, "/tenants").await.0, StatusCode::SEE_OTHER);

    // A recovery code works once.
    let (s, loc, _) = code_step(&q, &codes[0]).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/"));
    assert_eq!(reach(&q, "/tenants").await.0, StatusCode::OK);
    let r = app.other_browser();
    password_step(&r, "manager", "manager-demo").await;
    let (s, _, _) = code_step(&r, &codes[0]).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(reach(&r, "/tenants").await.0, StatusCode::SEE_OTHER);
    // Another one still works.
    let (s, loc, _) = code_step(&r, &codes[1].to_uppercase()).await;
    assert_eq!((s, loc.as_str()), (StatusCode::SEE_OTHER, "/"));
}

#[tokio::test]
async fn wrong_two_factor_codes_count_toward_the_lockout() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let (secret, _) = enroll(&b).await;
    let p = app.other_browser();
    assert_eq!(
        password_step(&p, "manager", "manager-demo").await,
        "/login/two-factor"
    );
    let wrong = wrong_code(&secret);
    for i in 0..coffer::console::auth::USER_LIMIT {
        let (s, _, _) = code_step(&p, &wrong).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "wrong code {}", i + 1);
    }
    // Locked: even the right code is not looked at, and the password step is locked too.
    let (s, _, body) = code_step(&p, &totp(&secret, 1)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("sign-in is locked"), "{body}");
    assert_eq!(reach(&p, "/tenants").await.0, StatusCode::SEE_OTHER);
    let (s, body) = login_in_fresh_browser(app.addr.clone(), "manager", "manager-demo").await;
    assert_eq!(s, 429);
    assert!(body.contains("sign-in is locked"));
}

#[tokio::test]
async fn a_tenant_requiring_two_factor_sends_its_sub_tenants_users_to_the_setup_first() {
    let app = TestApp::demo().await;
    let admin = app.other_browser();
    admin.login_ok("admin", "admin-demo").await;
    let group = crate::fuzz::ids_of(&app, "tenants", "WHERE name = 'Acme Group'")
        .pop()
        .expect("group");
    let retail = crate::fuzz::ids_of(&app, "tenants", "WHERE name = 'Acme Retail'")
        .pop()
        .expect("retail");
    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;
    let r = m
        .post_form(
            "/users",
            &[
                ("username", "retail-boss"),
                ("role", "tenant_manager"),
                ("tenant_id", &retail),
                ("merchant_id", ""),
                ("password", "retail-boss-password"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = m
        .post_form(
            &format!("/tenants/{group}"),
            &[("name", "Acme Group"), ("require_two_factor", "1")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, body) = m.get_html(&format!("/tenants/{group}")).await;
    assert!(body.contains("name=\"require_two_factor\" value=\"1\" checked"));

    // The sub-tenant's user: after the password, the setup only.
    let u = app.other_browser();
    assert_eq!(
        password_step(&u, "retail-boss", "retail-boss-password").await,
        "/account/two-factor"
    );
    for page in CONSOLE_PAGES {
        let (s, loc) = reach(&u, page).await;
        assert_eq!(s, StatusCode::SEE_OTHER, "{page}");
        assert_eq!(loc, "/account/two-factor", "{page}");
    }
    let r = u
        .post_form(
            "/account/password",
            &[
                ("current_password", "retail-boss-password"),
                ("new_password", "another-password-1"),
                ("confirm_password", "another-password-1"),
            ],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), "/account/two-factor");
    let (s, body) = u.get_html("/account/two-factor").await;
    assert_eq!(s, StatusCode::OK);
    assert!(
        body.contains("requires two-factor authentication"),
        "{body}"
    );
    let (secret, _) = enroll(&u).await;
    for page in CONSOLE_PAGES {
        let (s, _) = reach(&u, page).await;
        assert_eq!(s, StatusCode::OK, "{page}");
    }
    // Once on, it is a code step like anyone's, and it cannot be switched off.
    let again = app.other_browser();
    assert_eq!(
        password_step(&again, "retail-boss", "retail-boss-password").await,
        "/login/two-factor"
    );
    let r = u
        .post_form(
            "/account/two-factor/disable",
            &[("code", &totp(&secret, 1))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(two_factor_row(&app, "retail-boss").map(|r| r.0), Some(true));

    // The platform admin is under no tenant: not required.
    let a = app.other_browser();
    assert_eq!(password_step(&a, "admin", "admin-demo").await, "/");
}

#[tokio::test]
async fn coffer_require_2fa_applies_to_everyone() {
    let app = TestApp::spawn_with(true, |s| s.require_2fa = true).await;
    for (user, pw) in [("admin", "admin-demo"), ("merchant", "merchant-demo")] {
        let b = app.other_browser();
        assert_eq!(
            password_step(&b, user, pw).await,
            "/account/two-factor",
            "{user}"
        );
        for page in CONSOLE_PAGES {
            let (s, loc) = reach(&b, page).await;
            assert_eq!(
                (s, loc.as_str()),
                (StatusCode::SEE_OTHER, "/account/two-factor"),
                "{user} {page}"
            );
        }
        enroll(&b).await;
        assert_eq!(reach(&b, "/users").await.0, StatusCode::OK, "{user}");
    }
}

#[tokio::test]
async fn a_platform_admin_resets_another_users_two_factor_and_ones_own_needs_a_code_to_go() {
    let app = TestApp::demo().await;
    let m = app.other_browser();
    m.login_ok("manager", "manager-demo").await;
    let (secret, _) = enroll(&m).await;
    let manager = user_id(&app, "manager");

    // Not without a current code.
    for code in ["", "not-a-code", &wrong_code(&secret)] {
        let r = m
            .post_form("/account/two-factor/disable", &[("code", code)])
            .await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{code:?}");
    }
    let r = m
        .post_form(
            &format!("/users/{manager}/reset-two-factor"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(two_factor_row(&app, "manager").map(|r| r.0), Some(true));

    // The platform admin resets it, audited.
    let a = app.other_browser();
    a.login_ok("admin", "admin-demo").await;
    let r = a
        .post_form(
            &format!("/users/{manager}/reset-two-factor"),
            &[("confirmed", "yes")],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&r), format!("/users/{manager}"));
    assert_eq!(two_factor_row(&app, "manager"), None);
    let entries = {
        let db = app.db();
        let mut c = db.get().expect("conn");
        coffer::audit::page(&mut c, &coffer::domain::Actor::system(), None)
            .expect("audit")
            .0
    };
    assert!(
        entries.iter().any(|e| e.action == "user.two_factor.reset"
            && e.object_id == manager
            && e.actor_name == "admin"),
        "no audit entry of the reset"
    );
    let (_, body) = a.get_html("/audit").await;
    assert!(body.contains("Reset the two-factor authentication of manager"));
    // The password alone signs in again.
    let p = app.other_browser();
    assert_eq!(password_step(&p, "manager", "manager-demo").await, "/");

    // One's own with a current code: off.
    let (secret, _) = enroll(&m).await;
    let r = m
        .post_form(
            "/account/two-factor/disable",
            &[("code", &totp(&secret, 1))],
        )
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(two_factor_row(&app, "manager"), None);
}

/// Setups of one user started at once: on PostgreSQL each deleted the (absent) pending row and
/// inserted its own, and all but one failed on the key with a 500. Now they are serialized on
/// the user's row; each answers the setup page, one pending secret stays, and the code of the
/// secret that stayed switches two-factor on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_setups_of_one_user_each_answer_and_leave_one_pending_secret() {
    let app = TestApp::demo().await;
    let b = app.other_browser();
    b.login_ok("manager", "manager-demo").await;
    let answers = futures_util::future::join_all(
        (0..12).map(|_| async { b.post_form("/account/two-factor/setup", &[]).await }),
    )
    .await;
    let mut secrets = vec![];
    for r in answers {
        assert_eq!(r.status(), StatusCode::OK, "a concurrent setup");
        let body = r.text().await.expect("body");
        secrets.push(base32_decode(
            &element_text(&body, "totp-secret").expect("totp-secret"),
        ));
    }
    let (enabled, _) = two_factor_row(&app, "manager").expect("one pending row");
    assert!(!enabled, "a setup alone switches nothing on");
    let on = {
        let mut on = 0;
        for s in &secrets {
            let r = b
                .post_form("/account/two-factor/enable", &[("code", &totp(s, 0))])
                .await;
            if r.status() == StatusCode::OK
                && r.text().await.expect("body").contains("recovery-codes")
            {
                on += 1;
            }
        }
        on
    };
    assert_eq!(
        on, 1,
        "exactly the secret that stayed switches two-factor on"
    );
    assert!(two_factor_row(&app, "manager").expect("row").0);
}
