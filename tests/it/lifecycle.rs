//! Stored cards that stay alive (issue #15): lifecycle webhooks (signed, from the callback
//! outbox, enqueued in the transaction of the change, once per subscribed connector), the
//! expiry scan, the simulated account updater, and the console's events page.

use base64::Engine;
use diesel::RunQueryDsl;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha512};

use crate::api_transactions::tokenize;
use crate::callbacks::{Received, Receiver, until};
use crate::helpers::*;

const CT: &str = "application/json; charset=utf-8";
const SHOP: (&str, &str) = ("shop-api", "shop-api-demo");
const SHOP_SECRET: &str = "demo-shop-cards-secret";
const OUTLET_SECRET: &str = "demo-outlet-cards-secret";

fn ok(_: usize) -> (u16, &'static str) {
    (204, "")
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
    )
}

fn exec(app: &TestApp, sql: &str) {
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(sql).execute(&mut *c).expect(sql);
}

fn count(app: &TestApp, sql: &str) -> i64 {
    #[derive(diesel::QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let db = app.db();
    let mut c = db.get().expect("conn");
    diesel::sql_query(sql)
        .get_result::<N>(&mut *c)
        .expect(sql)
        .n
}

/// Gives connector `name` a Lifecycle webhook URL and an expiry notice.
fn subscribe(app: &TestApp, name: &str, url: &str, days: i32) {
    exec(
        app,
        &format!(
            "UPDATE connectors SET lifecycle_webhook_url = '{url}', expiry_notice_days = {days} \
             WHERE name = '{name}'"
        ),
    );
}

/// Checks what a receiver verifying lifecycle events checks (README), with `secret`, and
/// returns the body: the documented shape, `id` equal to the header, a fresh timestamp, the
/// signature recomputed here, no card number.
fn verified(r: &Received, secret: &str) -> Value {
    assert_eq!(r.method, "POST");
    assert_eq!(r.header("content-type"), Some("application/json"));
    if let Err(e) = crate::openapi::check_webhook("lifecycleEvent", r.body.as_bytes()) {
        panic!("{e}");
    }
    let v: Value = serde_json::from_str(&r.body).expect("JSON body");
    assert_eq!(r.header("x-coffer-event-id"), v["id"].as_str(), "{v}");
    let ts: i64 = r
        .header("x-coffer-timestamp")
        .expect("timestamp")
        .parse()
        .expect("Unix seconds");
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300, "{ts}");
    let mut mac = <Hmac<Sha512> as KeyInit>::new_from_slice(secret.as_bytes()).expect("key");
    mac.update(format!("{ts}.{}", r.body).as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    assert_eq!(
        r.header("x-coffer-signature"),
        Some(expected.as_str()),
        "signed with the connector's shared secret"
    );
    let created = v["created"].as_str().expect("created");
    assert!(
        chrono::DateTime::parse_from_rfc3339(created).is_ok() && created.ends_with('Z'),
        "{created}"
    );
    for pan in [
        "4111111111111111",
        "5555555555554444",
        "4000000000000341",
        "4000000000000259",
        "4000000000000077",
    ] {
        assert!(!r.body.contains(pan), "no card number in events");
    }
    v
}

/// The events received on `path`, verified with `secret`.
fn events_at(rx: &Receiver, path: &str, secret: &str) -> Vec<Value> {
    rx.all()
        .iter()
        .filter(|r| r.target == path)
        .map(|r| verified(r, secret))
        .collect()
}

fn of_type<'a>(events: &'a [Value], kind: &str, key: &str, value: &str) -> Vec<&'a Value> {
    events
        .iter()
        .filter(|e| e["type"] == kind && e["data"][key] == value)
        .collect()
}

async fn api(app: &TestApp, path: &str, body: &Value) -> (StatusCode, Value) {
    let r = app
        .client
        .post(app.url(path))
        .header("content-type", CT)
        .header("authorization", basic(SHOP.0, SHOP.1))
        .body(body.to_string())
        .send()
        .await
        .expect("POST");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

/// Registers `number` for customer `ident` with a debit withRegister on Acme Shop Cards: the
/// answer's customerProfileData.
async fn register(app: &TestApp, ident: &str, number: &str, preferred: bool) -> Value {
    let card = tokenize(app, "demo-shop-public", number).await;
    let body = json!({
        "merchantTransactionId": format!("life-{}", coffer::ids::random_hex(6)),
        "amount": "9.99", "currency": "EUR", "transactionToken": card, "withRegister": true,
        "customer": {"firstName": "Ann", "email": "ann@example.com"},
        "customerProfileData": {"customerIdentification": ident, "markAsPreferred": preferred}
    });
    let (s, v) = api(app, "/api/v3/transaction/demo-shop-cards/debit", &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    v["customerProfileData"].clone()
}

/// A Monri Customers API call as Acme Shop Cards (WP3-v2.1, computed here).
async fn monri(app: &TestApp, method: &str, path: &str, body: &str) -> (StatusCode, Value) {
    let (token, key) = (
        coffer::console::demo::DEMO_MONRI_AUTHENTICITY_TOKEN,
        coffer::console::demo::DEMO_MONRI_MERCHANT_KEY,
    );
    let ts = chrono::Utc::now().timestamp();
    let mut h = Sha512::new();
    h.update(format!("{key}{ts}{token}{path}{body}").as_bytes());
    let auth = format!("WP3-v2.1 {token} {ts} {}", hex::encode(h.finalize()));
    let m = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut r = app
        .client
        .request(m, app.url(path))
        .header("content-type", "application/json")
        .header("authorization", auth);
    if !body.is_empty() {
        r = r.body(body.to_string());
    }
    let r = r.send().await.expect("monri");
    let s = r.status();
    (s, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_every_path_are_signed_and_sent_once_to_each_subscribed_connector() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    // Both Acme connectors use Acme Shared Profiles (one assigned, one by the Global Setting);
    // Globex Cards uses Globex Profiles and hears nothing of Acme's customers.
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    subscribe(&app, "Acme Outlet Cards", &rx.url("/outlet"), 30);
    subscribe(&app, "Globex Cards", &rx.url("/globex"), 30);

    // The Transaction API's withRegister: profile.created and instrument.created.
    let pd = register(&app, "life-1", "4111111111111111", true).await;
    let guid = pd["profileGuid"].as_str().expect("guid").to_string();
    let token = pd["paymentToken"].as_str().expect("token").to_string();
    // The Customer Profiles API: profile.updated, then profile.deleted.
    let (s, v) = api(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/updateProfile",
        &json!({"profileGuid": guid, "customerData": {"firstName": "Anna"}}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let (s, v) = api(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/deleteProfile",
        &json!({"profileGuid": guid}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Monri: a customer created there is a profile (profile.created), updated, and deleted.
    let (s, m) = monri(
        &app,
        "POST",
        "/v2/customers",
        &json!({"merchant_customer_id": "life-monri", "email": "m@example.com", "name": "Mo"})
            .to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let uuid = m["uuid"].as_str().expect("uuid").to_string();
    let (s, m) = monri(
        &app,
        "POST",
        &format!("/v2/customers/{uuid}"),
        &json!({"name": "Moe"}).to_string(),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{m}");
    let (s, m) = monri(&app, "DELETE", &format!("/v2/customers/{uuid}"), "").await;
    assert_eq!(s, StatusCode::OK, "{m}");

    until(20, "seven events on each Acme connector", || {
        rx.all().iter().filter(|r| r.target == "/shop").count() >= 7
            && rx.all().iter().filter(|r| r.target == "/outlet").count() >= 7
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    for (path, secret) in [("/shop", SHOP_SECRET), ("/outlet", OUTLET_SECRET)] {
        let ev = events_at(&rx, path, secret);
        assert_eq!(ev.len(), 7, "{path}: once each: {ev:#?}");
        let created = of_type(&ev, "profile.created", "profileGuid", &guid);
        assert_eq!(created.len(), 1, "{path}");
        assert_eq!(created[0]["data"]["customerIdentification"], "life-1");
        let inst = of_type(&ev, "instrument.created", "paymentToken", &token);
        assert_eq!(inst.len(), 1, "{path}");
        let d = &inst[0]["data"];
        assert_eq!(d["profileGuid"], guid.as_str());
        assert_eq!(d["brand"], "visa");
        assert_eq!(d["firstSixDigits"], "411111");
        assert_eq!(d["lastFourDigits"], "1111");
        assert_eq!(d["expiryMonth"], 12);
        assert_eq!(d["expiryYear"], 2030);
        assert_eq!(d["isPreferred"], true);
        assert_eq!(
            of_type(&ev, "profile.updated", "profileGuid", &guid).len(),
            1
        );
        assert_eq!(
            of_type(&ev, "profile.deleted", "profileGuid", &guid).len(),
            1
        );
        for kind in ["profile.created", "profile.updated", "profile.deleted"] {
            assert_eq!(
                of_type(&ev, kind, "customerIdentification", "life-monri").len(),
                1,
                "{path}: Monri {kind}"
            );
        }
        // Event ids are unique.
        let mut ids: Vec<&str> = ev.iter().filter_map(|e| e["id"].as_str()).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 7);
    }
    assert!(
        rx.all().iter().all(|r| r.target != "/globex"),
        "another container's connector hears nothing"
    );
    // Delivered (a 204 acknowledges), from the callback outbox.
    until(10, "all delivered", || {
        count(
            &app,
            "SELECT COUNT(*) AS n FROM callbacks WHERE event_type IS NOT NULL AND status <> 'delivered'",
        ) == 0
    })
    .await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM callbacks WHERE event_type IS NOT NULL"
        ),
        14
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preferred_change_sends_instrument_updated_for_the_new_and_the_former() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    let a = register(&app, "life-pref", "4111111111111111", false).await;
    let a_token = a["paymentToken"].as_str().expect("token").to_string();
    // A second card, marked preferred: created preferred, the first one loses the mark.
    let b = register(&app, "life-pref", "5555555555554444", true).await;
    let b_token = b["paymentToken"].as_str().expect("token").to_string();
    until(20, "four events", || rx.all().len() >= 4).await;
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    let created = of_type(&ev, "instrument.created", "paymentToken", &b_token);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0]["data"]["isPreferred"], true);
    assert_eq!(created[0]["data"]["brand"], "mastercard");
    let former = of_type(&ev, "instrument.updated", "paymentToken", &a_token);
    assert_eq!(former.len(), 1, "{ev:#?}");
    assert_eq!(former[0]["data"]["isPreferred"], false);
    // The Customer Profiles API moves the mark back: both get instrument.updated.
    let (s, v) = api(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/updateProfile",
        &json!({"customerIdentification": "life-pref", "customerData": {"firstName": "Ann"}, "preferredInstrument": a_token}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    until(20, "two more events", || rx.all().len() >= 6).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    assert_eq!(ev.len(), 6, "{ev:#?}");
    assert_eq!(
        ev.iter().filter(|e| e["type"] == "profile.updated").count(),
        0,
        "the same customer data again changes nothing"
    );
    let updated: Vec<&Value> = ev[4..].iter().collect();
    let now_a = updated
        .iter()
        .find(|e| e["data"]["paymentToken"] == a_token.as_str())
        .expect("the new preferred one");
    assert_eq!(now_a["type"], "instrument.updated");
    assert_eq!(now_a["data"]["isPreferred"], true);
    let now_b = updated
        .iter()
        .find(|e| e["data"]["paymentToken"] == b_token.as_str())
        .expect("the former preferred one");
    assert_eq!(now_b["type"], "instrument.updated");
    assert_eq!(now_b["data"]["isPreferred"], false);
}

#[tokio::test]
async fn events_are_enqueued_in_the_transaction_of_the_change() {
    use coffer::error::ServiceError;
    use coffer::vault::profiles;
    let app = TestApp::demo().await;
    subscribe(&app, "Acme Shop Cards", "http://127.0.0.1:9/shop", 30);
    subscribe(&app, "Acme Outlet Cards", "http://127.0.0.1:9/outlet", 30);
    let cid = container_id(&app, "Acme Shared Profiles");
    let events = "SELECT COUNT(*) AS n FROM callbacks WHERE event_type IS NOT NULL";
    let db = app.db();
    let mut c = db.get().expect("conn");
    let r: Result<(), ServiceError> = coffer::db::write_tx(&mut c, |tx| {
        profiles::lock(tx, &cid)?;
        let p = profiles::new_profile(
            &cid,
            "rolled-back".into(),
            serde_json::Map::new(),
            coffer::models::now(),
        );
        profiles::create(tx, &p).map_err(|e| ServiceError::Conflict(e.to_string()))?;
        #[derive(diesel::QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let inside = diesel::sql_query(events).get_result::<N>(tx).expect("n").n;
        assert_eq!(
            inside, 2,
            "one event per subscribed connector, in the transaction"
        );
        Err(ServiceError::Conflict(
            "the change fails after its event".into(),
        ))
    });
    assert!(r.is_err());
    drop(c);
    assert_eq!(count(&app, events), 0, "a rolled-back change sends nothing");
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM profiles WHERE customer_identification = 'rolled-back'"
        ),
        0
    );
    // The same change committed: its two events commit with it.
    let mut c = db.get().expect("conn");
    coffer::db::write_tx(&mut c, |tx| -> Result<(), ServiceError> {
        profiles::lock(tx, &cid)?;
        let p = profiles::new_profile(
            &cid,
            "committed".into(),
            serde_json::Map::new(),
            coffer::models::now(),
        );
        profiles::create(tx, &p).map_err(|e| ServiceError::Conflict(e.to_string()))
    })
    .expect("commit");
    drop(c);
    assert_eq!(count(&app, events), 2);
}

/// A card instrument with expiry `m`/`y` in a new profile of Acme Shared Profiles: its token.
fn seed_card(app: &TestApp, ident: &str, m: i32, y: i32) -> String {
    let cid = container_id(app, "Acme Shared Profiles");
    let kid = connector_id(app, "Acme Shop Cards");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let p = insert_profile_row(&mut c, &cid, ident, "x@example.com", "{}");
    coffer::models::container::add_to_count(&mut c, &cid, 1).expect("count");
    let token = coffer::gateway::ids::payment_token();
    let at = coffer::models::now();
    let id = coffer::ids::new_id();
    let keyring =
        coffer::vault::keyring::Keyring::from_settings(&mut c, &app.settings).expect("keyring");
    use diesel::prelude::*;
    let path: String = coffer::db::schema::containers::table
        .find(&cid)
        .select(coffer::db::schema::containers::tenant_path)
        .first(&mut *c)
        .expect("container path");
    let sealed = keyring
        .seal(
            &mut c,
            &coffer::vault::keyring::Owner::of_path(Some(&path)),
            b"4111111111111111",
            id.as_bytes(),
        )
        .expect("seal");
    let i = coffer::models::profile::Instrument {
        id,
        profile_id: p.id.clone(),
        connector_id: kid,
        payment_token: token.clone(),
        method: "card".into(),
        brand: Some("visa".into()),
        card_holder: None,
        first_six: Some("411111".into()),
        last_four: Some("1111".into()),
        exp_month: Some(m),
        exp_year: Some(y),
        iban_masked: None,
        bic: None,
        mandate_id: None,
        fingerprint: format!("fp-{}", p.id),
        vault_record: sealed,
        is_preferred: true,
        created_at: at,
        updated_at: at,
        expiry_noticed_at: None,
        expired_at: None,
        card_update_status: None,
        card_updated_at: None,
    };
    coffer::models::profile::insert_instrument(&mut c, &i).expect("instrument");
    token
}

struct Quiet;
impl coffer::vault::lifecycle::Progress for Quiet {
    fn update(&mut self, _: i64, _: i64) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_expiry_scan_sends_instrument_expiring_once_and_marks_expired_cards() {
    use chrono::Datelike;
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    let today = chrono::Utc::now().date_naive();
    // Expiring this month (always within 30 days of its last day), expired, and far away.
    let soon = seed_card(&app, "exp-soon", today.month() as i32, today.year());
    let gone = seed_card(&app, "exp-gone", 1, 2020);
    let far = seed_card(&app, "exp-far", 12, today.year() + 5);
    let db = app.db();
    let scan = || {
        let mut c = db.get().expect("conn");
        coffer::vault::lifecycle::scan_expiry(&mut c, today, &mut Quiet).expect("scan")
    };
    let first = scan();
    assert!(first.seen >= 3);
    assert_eq!((first.expiring, first.expired), (1, 1), "{first:?}");
    // Once only: a second scan (another process, say) sends nothing again.
    let second = scan();
    assert_eq!((second.expiring, second.expired), (0, 0), "{second:?}");
    until(10, "the expiring event", || !rx.all().is_empty()).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    assert_eq!(ev.len(), 1, "{ev:#?}");
    assert_eq!(ev[0]["type"], "instrument.expiring");
    assert_eq!(ev[0]["data"]["paymentToken"], soon.as_str());
    assert_eq!(ev[0]["data"]["customerIdentification"], "exp-soon");
    assert_eq!(ev[0]["data"]["expired"], false);
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM instruments WHERE payment_token = '{gone}' AND expired_at IS NOT NULL"
            )
        ),
        1
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) AS n FROM instruments WHERE payment_token = '{far}' \
                 AND expired_at IS NULL AND expiry_noticed_at IS NULL"
            )
        ),
        1
    );
    // getProfile shows the expired card as such (a Coffer extension field), and Monri too.
    let (s, v) = api(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/getProfile",
        &json!({"customerIdentification": "exp-gone"}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["paymentInstruments"][0]["expired"], true, "{v}");
    let (_, v) = api(
        &app,
        "/api/v3/customerProfiles/demo-shop-cards/getProfile",
        &json!({"customerIdentification": "exp-far"}),
    )
    .await;
    assert_eq!(v["paymentInstruments"][0]["expired"], false, "{v}");
    // The daily scan: one process takes its turn, the next finds it done for the day.
    let mut c = db.get().expect("conn");
    let ran = coffer::vault::lifecycle::daily_scan(&mut c, "worker-a").expect("daily");
    assert!(ran.is_some());
    let again = coffer::vault::lifecycle::daily_scan(&mut c, "worker-b").expect("daily");
    assert!(again.is_none(), "once a day");
}

/// (last four, expiry month, expiry year, card update status) of the instrument `token`, if it
/// is still there.
fn card_of(app: &TestApp, token: &str) -> Option<(String, i32, i32, Option<String>)> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    let (i, _) = coffer::models::profile::instrument_by_token(&mut c, token).expect("q")?;
    Some((
        i.last_four.unwrap_or_default(),
        i.exp_month.unwrap_or_default(),
        i.exp_year.unwrap_or_default(),
        i.card_update_status,
    ))
}

/// The updater's answers applied to the test cards (tokens of 4000000000000341, …0259, …0556 and
/// 4111111111111111): reissued, same number, expiry +3 years; replaced, the new number, year +2;
/// both keep their pt:: token. The closed account's instrument is gone; the plain card is
/// untouched.
fn assert_updated(app: &TestApp, [reissued, replaced, closed, plain]: [&str; 4]) {
    assert_eq!(
        card_of(app, reissued),
        Some(("0341".into(), 12, 2033, Some("reissued".into())))
    );
    assert_eq!(
        card_of(app, replaced),
        Some(("0077".into(), 12, 2032, Some("replaced".into())))
    );
    assert_eq!(card_of(app, closed), None);
    assert_eq!(card_of(app, plain), Some(("1111".into(), 12, 2030, None)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_updater_updates_cards_in_place_and_removes_closed_accounts() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    let reissued = register(&app, "au-1", "4000000000000341", true).await["paymentToken"]
        .as_str()
        .expect("t")
        .to_string();
    let replaced = register(&app, "au-2", "4000000000000259", true).await["paymentToken"]
        .as_str()
        .expect("t")
        .to_string();
    let closed = register(&app, "au-3", "4000000000000556", true).await["paymentToken"]
        .as_str()
        .expect("t")
        .to_string();
    let plain = register(&app, "au-4", "4111111111111111", true).await["paymentToken"]
        .as_str()
        .expect("t")
        .to_string();
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    let cid = container_id(&app, "Acme Shared Profiles");
    let action = format!("/containers/{cid}/account-updater");
    // A merchant admin reads the container but does not manage it.
    app.login_ok("merchant", "merchant-demo").await;
    let r = app.post_form(&action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(card_of(&app, &closed).map(|c| c.0), Some("0556".into()));
    let other = app.other_browser();
    other.login_ok("admin", "admin-demo").await;
    let (s, html) = other.get_html(&format!("/containers/{cid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Run account updater (simulated)"), "{html}");
    // First a confirmation page; nothing changes before it is confirmed.
    let r = other.post_form(&action, &[]).await;
    assert_eq!(r.status(), StatusCode::OK);
    let page = r.text().await.expect("page");
    assert!(page.contains("cannot be undone"), "{page}");
    assert_eq!(card_of(&app, &reissued).map(|c| c.2), Some(2030));
    // Without the CSRF token: refused.
    let r = other
        .client
        .post(app.url(&action))
        .form(&[("confirmed", "yes")])
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = other.post_form(&action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The server's background worker does the run.
    until(30, "the run done", || run_states(&app, &cid) == ["done"]).await;
    assert_updated(&app, [&reissued, &replaced, &closed, &plain]);
    until(20, "three events", || rx.all().len() >= 3).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    assert_eq!(ev.len(), 3, "{ev:#?}");
    let r = of_type(&ev, "instrument.updated", "paymentToken", &reissued);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["data"]["expiryYear"], 2033);
    assert_eq!(r[0]["data"]["cardUpdateStatus"], "reissued");
    let r = of_type(&ev, "instrument.updated", "paymentToken", &replaced);
    assert_eq!(r.len(), 1);
    assert_eq!(r[0]["data"]["lastFourDigits"], "0077");
    assert_eq!(r[0]["data"]["expiryYear"], 2032);
    assert_eq!(
        of_type(&ev, "instrument.deleted", "paymentToken", &closed).len(),
        1
    );
    // Audited: the run and each change.
    for (a, n) in [
        ("account_updater.run", 1),
        ("account_updater.update", 2),
        ("account_updater.close", 1),
    ] {
        assert_eq!(
            count(
                &app,
                &format!("SELECT COUNT(*) AS n FROM audit_log WHERE action = '{a}'")
            ),
            n,
            "{a}"
        );
    }
    // The replaced card's token still charges: now the new card.
    let body = json!({
        "merchantTransactionId": format!("life-{}", coffer::ids::random_hex(6)),
        "amount": "1.00", "currency": "EUR", "transactionToken": replaced,
    });
    let (s, v) = api(&app, "/api/v3/transaction/demo-shop-cards/debit", &body).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(v["success"], true, "{v}");
    assert_eq!(v["returnData"]["lastFourDigits"], "0077", "{v}");
    // Running it again changes nothing (no double work).
    let db = app.db();
    let mut c = db.get().expect("conn");
    let keyring =
        coffer::vault::keyring::Keyring::from_settings(&mut c, &app.settings).expect("keyring");
    let container = coffer::models::container::find(&mut c, &cid)
        .expect("q")
        .expect("container");
    let actor = coffer::domain::Actor::system();
    let again = coffer::vault::lifecycle::run_account_updater(
        &mut c, &keyring, &actor, &container, &mut Quiet,
    )
    .expect("run");
    assert_eq!((again.reissued, again.replaced, again.closed), (0, 0, 0));
    assert!(!again.resumed);
    // A run interrupted by a crash (its cursor committed after the first instrument, its
    // process's lease expired) is continued by the server's background worker.
    let first_id: String = {
        #[derive(diesel::QueryableByName)]
        struct Id {
            #[diesel(sql_type = diesel::sql_types::Text)]
            id: String,
        }
        diesel::sql_query(format!(
            "SELECT i.id FROM instruments i JOIN profiles p ON p.id = i.profile_id \
             WHERE p.container_id = '{cid}' ORDER BY i.id LIMIT 1"
        ))
        .get_result::<Id>(&mut *c)
        .expect("id")
        .id
    };
    let total = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM instruments i JOIN profiles p ON p.id = i.profile_id \
             WHERE p.container_id = '{cid}' AND i.method = 'card'"
        ),
    );
    let reads_before = count(
        &app,
        "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'profile.access.account_updater'",
    );
    diesel::sql_query(format!(
        "INSERT INTO lifecycle_runs (id, kind, container_id, status, cursor, done, changed, \
         started_at, updated_at, locked_until, locked_by, total) VALUES ('interrupted', \
         'account_updater', '{cid}', 'running', '{first_id}', 1, 0, CURRENT_TIMESTAMP, \
         CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 'a-crashed-process', {total})"
    ))
    .execute(&mut *c)
    .expect("insert run");
    drop(c);
    until(30, "the interrupted run continued", || {
        count(
            &app,
            "SELECT COUNT(*) AS n FROM lifecycle_runs WHERE id = 'interrupted' AND status = 'done'",
        ) == 1
    })
    .await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let run = coffer::models::lifecycle_run::find(&mut c, "interrupted")
        .expect("q")
        .expect("run");
    assert_eq!(run.done, total, "one committed + the rest, each once");
    assert_eq!((run.locked_by, run.locked_until), (None, None));
    // Every card after the cursor that the updater has not changed yet was opened once more,
    // and only those.
    let unchanged_after = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM instruments i JOIN profiles p ON p.id = i.profile_id \
             WHERE p.container_id = '{cid}' AND i.method = 'card' AND i.id > '{first_id}' \
             AND i.card_update_status IS NULL"
        ),
    );
    assert!(unchanged_after >= 1);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'profile.access.account_updater'",
        ) - reads_before,
        unchanged_after
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM lifecycle_runs WHERE status = 'running'"
        ),
        0
    );
}

/// The states of the container's account updater runs, newest first.
fn run_states(app: &TestApp, cid: &str) -> Vec<String> {
    let db = app.db();
    let mut c = db.get().expect("conn");
    coffer::models::lifecycle_run::of_container(&mut c, "account_updater", cid, 10)
        .expect("runs")
        .into_iter()
        .map(|r| r.status)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_button_answers_at_once_and_the_server_runs_it_in_the_background_once() {
    // One card a batch and a pause after each: the run takes seconds.
    let app = TestApp::spawn_with(true, |s| {
        s.account_updater_batch = 1;
        s.account_updater_pause_ms = 300;
    })
    .await;
    let token = |v: Value| v["paymentToken"].as_str().expect("t").to_string();
    let reissued = token(register(&app, "bg-1", "4000000000000341", true).await);
    let replaced = token(register(&app, "bg-2", "4000000000000259", true).await);
    let closed = token(register(&app, "bg-3", "4000000000000556", true).await);
    let plain = token(register(&app, "bg-4", "4111111111111111", true).await);
    let cid = container_id(&app, "Acme Shared Profiles");
    let total = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM instruments i JOIN profiles p ON p.id = i.profile_id \
             WHERE p.container_id = '{cid}' AND i.method = 'card' AND p.deleted_at IS NULL"
        ),
    );
    assert!(total >= 4, "{total}");
    app.login_ok("admin", "admin-demo").await;
    let action = format!("/containers/{cid}/account-updater");
    let r = app.post_form(&action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        r.headers().get("location").and_then(|l| l.to_str().ok()),
        Some(format!("/containers/{cid}").as_str())
    );
    // Answered before the run is done: nothing of it is changed yet, or little.
    let db = app.db();
    let run = {
        let mut c = db.get().expect("conn");
        let runs = coffer::models::lifecycle_run::of_container(&mut c, "account_updater", &cid, 10)
            .expect("runs");
        assert_eq!(runs.len(), 1);
        runs[0].clone()
    };
    assert_eq!(run.status, "running");
    assert!(run.done < total, "{} of {total}", run.done);
    assert_eq!(run.total, total);
    assert_eq!(run.actor_name.as_deref(), Some("admin"));
    // The container page shows the run's progress, and the flash says it started.
    let (s, html) = app.get_html(&format!("/containers/{cid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("runs in the background"), "{html}");
    assert!(html.contains("Account updater runs"), "{html}");
    assert!(html.contains("badge-info\">Running"), "{html}");
    assert!(
        html.contains(&format!("<span class=\"updater-total\">{total}</span>")),
        "{html}"
    );
    assert!(html.contains("cards/s"), "{html}");
    // A second press while it runs starts no second run.
    let r = app.post_form(&action, &[("confirmed", "yes")]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, html) = app.get_html(&format!("/containers/{cid}")).await;
    assert!(html.contains("already running"), "{html}");
    assert_eq!(run_states(&app, &cid), ["running"]);
    // The background run finishes with the changes.
    until(60, "the run done", || run_states(&app, &cid) == ["done"]).await;
    assert_updated(&app, [&reissued, &replaced, &closed, &plain]);
    let end = {
        let mut c = db.get().expect("conn");
        coffer::models::lifecycle_run::find(&mut c, &run.id)
            .expect("q")
            .expect("run")
    };
    assert_eq!(end.done, total);
    assert_eq!((end.reissued, end.replaced, end.closed), (1, 1, 1));
    assert!(end.finished_at.is_some());
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'account_updater.run'"
        ),
        1
    );
    // The finished run with its counts on the page.
    let (_, html) = app.get_html(&format!("/containers/{cid}")).await;
    assert!(html.contains("badge-ok\">Done"), "{html}");
    assert!(
        html.contains(&format!("<span class=\"updater-done\">{total}</span>")),
        "{html}"
    );
    assert!(
        html.contains("<td class=\"num\">1</td><td class=\"num\">1</td><td class=\"num\">1</td>"),
        "{html}"
    );
    // Every card it opened is in the access audit, attributed to the admin and the run.
    #[derive(diesel::QueryableByName)]
    struct Read {
        #[diesel(sql_type = diesel::sql_types::Text)]
        actor_name: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        object_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        summary: String,
    }
    let reads: Vec<Read> = {
        let mut c = db.get().expect("conn");
        diesel::sql_query(
            "SELECT actor_name, object_id, summary FROM audit_log \
             WHERE action = 'profile.access.account_updater'",
        )
        .load(&mut *c)
        .expect("reads")
    };
    assert_eq!(reads.len() as i64, total);
    assert!(reads.iter().all(|r| r.actor_name == "admin"));
    assert!(reads.iter().all(|r| r.summary.contains(&run.id)));
    assert!(
        reads.iter().all(
            |r| !r.summary.contains("4000000000000") && !r.summary.contains("4111111111111111")
        ),
        "no card number"
    );
    let cards: std::collections::HashSet<&str> = reads.iter().map(|r| r.summary.as_str()).collect();
    assert_eq!(
        cards.len() as i64,
        total,
        "each card once (its token is in the summary)"
    );
    let reissued_read = reads
        .iter()
        .find(|r| r.summary.contains(&reissued))
        .expect("the reissued card's read");
    assert!(
        reissued_read.summary.contains("card ending 0341"),
        "{}",
        reissued_read.summary
    );
    // And on that profile's page, in its access history.
    #[derive(diesel::QueryableByName)]
    struct Pid {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    let pid = {
        let mut c = db.get().expect("conn");
        diesel::sql_query(format!(
            "SELECT id FROM profiles WHERE profile_guid = '{}'",
            reissued_read.object_id
        ))
        .get_result::<Pid>(&mut *c)
        .expect("profile")
        .id
    };
    let (s, html) = app.get_html(&format!("/profiles/{pid}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("Account updater (simulated)"), "{html}");
}

/// Workers taking turns on one run (processes sharing a PostgreSQL database, the command and
/// the server) do each batch once: a held lease makes the others wait, an expired one is taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_share_a_run_under_its_lease_and_do_each_card_once() {
    let app = TestApp::demo().await;
    for n in 0..12 {
        seed_card(&app, &format!("lease-{n}"), 12, 2030);
    }
    let cid = container_id(&app, "Acme Shared Profiles");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let keyring = std::sync::Arc::new(
        coffer::vault::keyring::Keyring::from_settings(&mut c, &app.settings).expect("keyring"),
    );
    let container = coffer::models::container::find(&mut c, &cid)
        .expect("q")
        .expect("container");
    let actor = coffer::vault::lifecycle::command_line_actor();
    let (run, started) =
        coffer::vault::lifecycle::start_account_updater(&mut c, &actor, &container).expect("start");
    assert!(started);
    // Started again while it runs: the same run.
    let (same, again) =
        coffer::vault::lifecycle::start_account_updater(&mut c, &actor, &container).expect("start");
    assert_eq!((same.id.as_str(), again), (run.id.as_str(), false));
    use coffer::vault::lifecycle::{Step, step};
    // Worker A holds the lease after its batch: B waits.
    let a = step(&mut c, &keyring, &run.id, "worker-a", 2).expect("a");
    assert!(matches!(a, Step::Batch { done: 2, .. }), "{a:?}");
    assert_eq!(
        step(&mut c, &keyring, &run.id, "worker-b", 2).expect("b"),
        Step::Held
    );
    // A's lease expires (its process died): B takes the run over where A left it.
    diesel::sql_query(format!(
        "UPDATE lifecycle_runs SET locked_until = '2000-01-01 00:00:00' WHERE id = '{}'",
        run.id
    ))
    .execute(&mut *c)
    .expect("expire");
    let b = step(&mut c, &keyring, &run.id, "worker-b", 2).expect("b");
    assert!(matches!(b, Step::Batch { done: 4, .. }), "{b:?}");
    assert_eq!(
        step(&mut c, &keyring, &run.id, "worker-a", 2).expect("a"),
        Step::Held
    );
    coffer::models::lifecycle_run::release(&mut c, &run.id, "worker-b").expect("release");
    drop(c);
    // Three workers at once (and the server's) to the end: each card once.
    let mut threads = vec![];
    for w in ["w1", "w2", "w3"] {
        let (db, keyring, id) = (db.clone(), keyring.clone(), run.id.clone());
        threads.push(std::thread::spawn(move || {
            let mut c = db.get().expect("conn");
            loop {
                match step(&mut c, &keyring, &id, w, 1).expect("step") {
                    Step::Batch { .. } => {
                        coffer::models::lifecycle_run::release(&mut c, &id, w).expect("release");
                    }
                    Step::Held => std::thread::sleep(std::time::Duration::from_millis(5)),
                    Step::Finished => break,
                }
            }
        }));
    }
    for t in threads {
        t.join().expect("worker");
    }
    let total = count(
        &app,
        &format!(
            "SELECT COUNT(*) AS n FROM instruments i JOIN profiles p ON p.id = i.profile_id \
             WHERE p.container_id = '{cid}' AND i.method = 'card' AND p.deleted_at IS NULL"
        ),
    );
    let mut c = db.get().expect("conn");
    let end = coffer::models::lifecycle_run::find(&mut c, &run.id)
        .expect("q")
        .expect("run");
    assert_eq!(end.status, "done");
    assert_eq!(end.done, total);
    // One access entry per card, by the command line.
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(DISTINCT summary) AS n FROM audit_log \
             WHERE action = 'profile.access.account_updater' \
             AND actor_name = 'coffer account-updater (command line)'"
        ),
        total,
        "each card once (its token is in the summary)"
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'profile.access.account_updater'"
        ),
        total
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_lifecycle_events_page_lists_attempts_and_redelivers_within_the_tenant() {
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    register(&app, "life-page", "4111111111111111", true).await;
    until(20, "two events", || rx.all().len() >= 2).await;
    until(10, "delivered", || {
        count(
            &app,
            "SELECT COUNT(*) AS n FROM callback_attempts a JOIN callbacks c ON c.id = a.callback_id \
             WHERE c.event_type IS NOT NULL",
        ) >= 2
    })
    .await;
    let shop = connector_id(&app, "Acme Shop Cards");
    let globex = connector_id(&app, "Globex Cards");
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    let id = ev[0]["id"].as_str().expect("id").to_string();
    app.login_ok("admin", "admin-demo").await;
    let (s, html) = app.get_html(&format!("/connectors/{shop}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains(&format!("/connectors/{shop}/lifecycle-events")));
    let page = format!("/connectors/{shop}/lifecycle-events");
    let (s, html) = app.get_html(&page).await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("profile.created") && html.contains("instrument.created"));
    assert!(html.contains(&id) && html.contains("Redeliver"));
    assert!(html.contains("204"), "the attempt's status is shown");
    let action = format!("{page}/{id}/redeliver");
    let r = app.post_form_raw(&action, &[]).await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "CSRF");
    let r = app.post_form(&action, &[]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    until(10, "the event again", || {
        rx.all()
            .iter()
            .filter(|r| r.header("x-coffer-event-id") == Some(id.as_str()))
            .count()
            == 2
    })
    .await;
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'lifecycle_event.redeliver'"
        ),
        1
    );
    // Another tenant's connector: not found, and the event cannot be reached through it.
    let other = app.other_browser();
    other.login_ok("merchant", "merchant-demo").await;
    let (s, _) = other
        .get_html(&format!("/connectors/{globex}/lifecycle-events"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let r = other
        .post_form(
            &format!("/connectors/{globex}/lifecycle-events/{id}/redeliver"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // Nor through one's own connector with another connector's event id.
    let r = app
        .post_form(
            &format!("/connectors/{globex}/lifecycle-events/{id}/redeliver"),
            &[],
        )
        .await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_connector_base_data_checks_the_webhook_url_and_the_expiry_notice() {
    let app = TestApp::demo().await;
    let shop = connector_id(&app, "Acme Shop Cards");
    app.login_ok("admin", "admin-demo").await;
    let path = format!("/connectors/{shop}");
    let form = |url: &'static str, days: &'static str| {
        vec![
            ("name", "Acme Shop Cards"),
            ("container_id", ""),
            ("active", "1"),
            ("lifecycle_webhook_url", url),
            ("expiry_notice_days", days),
        ]
    };
    for (url, days, msg) in [
        ("ftp://hooks.example.com/x", "30", "only http and https"),
        ("http://10.1.2.3/hook", "30", "not allowed"),
        ("not a url", "30", "not a valid URL"),
        ("https://hooks.example.com/x", "366", "from 0 to 365"),
        ("https://hooks.example.com/x", "ten", "from 0 to 365"),
    ] {
        let r = app.post_form(&path, &form(url, days)).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{url} {days}");
        let html = r.text().await.expect("page");
        assert!(html.contains(msg), "{url} {days}: {msg}");
    }
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM connectors WHERE lifecycle_webhook_url IS NOT NULL"
        ),
        0
    );
    let r = app
        .post_form(&path, &form("https://hooks.example.com/coffer", "45"))
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM connectors WHERE lifecycle_webhook_url = \
             'https://hooks.example.com/coffer' AND expiry_notice_days = 45"
        ),
        1
    );
    let (_, html) = app.get_html(&path).await;
    assert!(html.contains("https://hooks.example.com/coffer"));
    assert!(html.contains("expiry notice 45 days"));
    // Emptied: no URL, the default notice.
    let r = app.post_form(&path, &form("", "")).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM connectors WHERE lifecycle_webhook_url IS NULL \
             AND expiry_notice_days = 30 AND name = 'Acme Shop Cards'"
        ),
        1
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commands_run_beside_a_live_server_which_delivers_their_events() {
    use chrono::Datelike;
    let app = TestApp::demo().await;
    let rx = Receiver::start(ok).await;
    let reissued = register(&app, "cli-1", "4000000000000341", true).await["paymentToken"]
        .as_str()
        .expect("t")
        .to_string();
    let today = chrono::Utc::now().date_naive();
    let soon = seed_card(&app, "cli-soon", today.month() as i32, today.year());
    subscribe(&app, "Acme Shop Cards", &rx.url("/shop"), 30);
    let (ok_scan, out) = run_coffer(&app, &["lifecycle-scan"], "info");
    assert!(ok_scan, "{out}");
    assert!(out.contains("1 instrument.expiring enqueued"), "{out}");
    assert!(out.contains("expiry scan: "), "progress lines: {out}");
    let cid = container_id(&app, "Acme Shared Profiles");
    let (ok_run, out) = run_coffer(&app, &["account-updater", "--container", &cid], "info");
    assert!(ok_run, "{out}");
    assert!(out.contains("1 reissued, 0 replaced, 0 closed"), "{out}");
    assert!(
        count(
            &app,
            "SELECT COUNT(*) AS n FROM audit_log WHERE action = 'profile.access.account_updater' \
             AND actor_name = 'coffer account-updater (command line)'"
        ) >= 2,
        "the command's card reads are attributed to it"
    );
    let (fails, out) = run_coffer(&app, &["account-updater", "--container", "no-such"], "info");
    assert!(!fails && out.contains("no container no-such"), "{out}");
    // The commands only enqueue: the running server's outbox delivers.
    until(20, "both events", || rx.all().len() >= 2).await;
    let ev = events_at(&rx, "/shop", SHOP_SECRET);
    assert_eq!(
        of_type(&ev, "instrument.expiring", "paymentToken", &soon).len(),
        1
    );
    let up = of_type(&ev, "instrument.updated", "paymentToken", &reissued);
    assert_eq!(up.len(), 1);
    assert_eq!(up[0]["data"]["expiryYear"], 2033);
}
