//! Identity: the login lockout under concurrency, one's own password, two-factor
//! authentication (TOTP enrollment, the second login step, recovery codes, enforcement, reset).

use reqwest::StatusCode;

use crate::helpers::*;

/// A fresh browser's login POST (its own session and CSRF token).
async fn login_in_fresh_browser(base: String, username: &str, password: &str) -> (u16, String) {
    let b = client();
    let page = b
        .get(format!("{base}/login"))
        .send()
        .await
        .expect("GET /login")
        .text()
        .await
        .expect("page");
    let t = extract_csrf(&page).expect("csrf");
    let r = b
        .post(format!("{base}/login"))
        .form(&[
            ("csrf_token", t.as_str()),
            ("username", username),
            ("password", password),
        ])
        .send()
        .await
        .expect("POST /login");
    let s = r.status().as_u16();
    (s, r.text().await.unwrap_or_default())
}

/// 25 wrong passwords at once for one username: the failures were counted after the argon2
/// check, so every one of them was checked (25 answers 422) and the lock came too late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_check_at_most_five_and_then_the_account_is_locked() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("error")
        .with_test_writer()
        .try_init();
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
        .post_form(&format!("/users/{me}/reset-password"), &[])
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
