//! Re-encryption (issue [keys]): a rotated data key's records are sealed again under the new key
//! in batches, one per transaction, resumably, by any number of workers without doing a record
//! twice; the old key is retired only once no record names it; platform admins see the progress
//! at /vault and start it there.

use coffer::vault::keyring::{Keyring, Owner};
use coffer::vault::reencrypt;
use diesel::prelude::*;
use reqwest::StatusCode;
use serde_json::json;

use crate::api_transactions::{GLOBEX, SHOP, debit, tx};
use crate::helpers::*;
use crate::tenant_keys::{register, tenant_id as root};

/// The data key id each instrument's record names, by instrument id.
fn instrument_keys(c: &mut coffer::db::DbConnection) -> Vec<(String, String)> {
    use coffer::db::schema::instruments;
    instruments::table
        .select((instruments::id, instruments::vault_record))
        .order(instruments::id.asc())
        .load::<(String, String)>(c)
        .expect("instruments")
        .into_iter()
        .map(|(id, r)| {
            let k = coffer::gateway::vault::key_id_of(&r)
                .expect("sealed")
                .to_string();
            (id, k)
        })
        .collect()
}

/// Demo data with three Acme cards and one Globex card, one Acme card sealed under the
/// platform's key as records were before keys were per tenant.
async fn setup() -> (TestApp, Vec<String>) {
    let app = TestApp::demo().await;
    let mut tokens = vec![];
    for who in ["acme-1", "acme-2", "acme-3"] {
        tokens.push(register(&app, "demo-shop-public", "demo-shop-cards", SHOP, who).await);
    }
    tokens.push(
        register(
            &app,
            "demo-globex-public",
            "demo-globex-cards",
            GLOBEX,
            "globex-1",
        )
        .await,
    );
    let db = app.db();
    let mut c = db.get().expect("conn");
    let keyring = Keyring::from_settings(&mut c, &app.settings).expect("keyring");
    let (legacy, _) = instrument_keys(&mut c).remove(0);
    let sealed = keyring
        .seal(
            &mut c,
            &Owner::Platform,
            b"4111111111111111",
            legacy.as_bytes(),
        )
        .expect("seal");
    use coffer::db::schema::instruments;
    diesel::update(instruments::table.find(&legacy))
        .set(instruments::vault_record.eq(sealed))
        .execute(&mut *c)
        .expect("legacy record");
    (app, tokens)
}

/// Sealed values not under their owner's active key.
fn needing_reseal(c: &mut coffer::db::DbConnection, keyring: &Keyring) -> usize {
    let mut n = 0;
    for t in coffer::models::reencrypt::TABLES {
        let (_, _, values) = coffer::models::reencrypt::batch(c, t, "", 100_000).expect("batch");
        for v in values {
            let active = keyring
                .active_id(c, &Owner::of_path(v.path.as_deref()))
                .expect("active");
            if coffer::gateway::vault::key_id_of(&v.record) != Some(active.as_str()) {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn rotating_a_tenant_data_key_reseals_its_records_and_retires_the_old_key() {
    let (app, tokens) = setup().await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let keyring = Keyring::from_settings(&mut c, &app.settings).expect("keyring");
    let acme = root(&mut c, "Acme Group");
    let globex = root(&mut c, "Globex");
    let old_acme = keyring
        .active_id(&mut c, &Owner::Tenant(acme.clone()))
        .expect("active");
    let globex_key = keyring
        .active_id(&mut c, &Owner::Tenant(globex.clone()))
        .expect("active");
    let before = instrument_keys(&mut c);

    let new_acme = keyring
        .rotate_data_key(&mut c, &Owner::Tenant(acme.clone()))
        .expect("rotate");
    assert_ne!(new_acme, old_acme);
    let job = reencrypt::start(&mut c, "test").expect("start");
    assert!(job.total >= 4, "{job:?}");
    let mut seen = vec![];
    let (p, retired) =
        reencrypt::run(&mut c, &keyring, &job.id, |p| seen.push(p.job.done)).expect("run");
    assert_eq!(p.job.state, "done");
    assert_eq!(p.job.done, p.job.total, "{p:?}");
    assert!(!seen.is_empty(), "progress is reported after each batch");
    // The Acme cards (the legacy one included) and Acme's connector secrets moved; Globex's not.
    let after = instrument_keys(&mut c);
    for ((id, k0), (_, k1)) in before.iter().zip(&after) {
        if *k0 == globex_key {
            assert_eq!(k1, &globex_key, "{id}: Globex's record is not touched");
        } else {
            assert_eq!(k1, &new_acme, "{id}: Acme's record is under its new key");
        }
    }
    assert!(retired.retired.contains(&old_acme), "{retired:?}");
    assert!(
        coffer::models::vault_key::find(&mut c, &old_acme)
            .expect("find")
            .is_none()
    );
    // Nothing names the retired key, and every card still charges through the running server.
    assert_eq!(
        coffer::models::reencrypt::count_using(&mut c, &old_acme).expect("count"),
        0
    );
    for (i, t) in tokens.iter().enumerate() {
        let (key, creds) = if i < 3 {
            ("demo-shop-cards", SHOP)
        } else {
            ("demo-globex-cards", GLOBEX)
        };
        let (s, v) = tx(&app, key, "debit", creds, &debit(t, json!({}))).await;
        assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    }
    // A second job has nothing to seal again.
    let again = reencrypt::start(&mut c, "again").expect("start");
    let (p, _) = reencrypt::run(&mut c, &keyring, &again.id, |_| {}).expect("run");
    assert_eq!(p.job.resealed, 0, "{p:?}");
}

#[tokio::test]
async fn the_job_resumes_after_an_interruption_and_seals_each_record_once_even_with_two_workers() {
    let (app, _) = setup().await;
    let db = app.db();
    let mut c = db.get().expect("conn");
    let keyring = Keyring::from_settings(&mut c, &app.settings).expect("keyring");
    let acme = root(&mut c, "Acme Group");
    keyring
        .rotate_data_key(&mut c, &Owner::Tenant(acme))
        .expect("rotate");
    keyring
        .rotate_data_key(&mut c, &Owner::Platform)
        .expect("rotate");
    let needing = needing_reseal(&mut c, &keyring);
    assert!(needing >= 5, "{needing}");
    let job = reencrypt::start(&mut c, "test").expect("start");
    // Two one-row batches, then the worker stops (the process died): both batches committed.
    assert!(reencrypt::step_of(&mut c, &keyring, &job.id, 1).expect("step"));
    assert!(reencrypt::step_of(&mut c, &keyring, &job.id, 1).expect("step"));
    let j = coffer::models::reencrypt::find(&mut c, &job.id)
        .expect("find")
        .expect("job");
    assert_eq!((j.done, j.state.as_str()), (2, "running"));
    // Starting again resumes that job rather than a new one.
    assert_eq!(reencrypt::start(&mut c, "again").expect("start").id, job.id);

    // Two workers on two connections finish it together, in small batches.
    let settings = app.settings.clone();
    let id = job.id.clone();
    let workers: Vec<_> = (0..2)
        .map(|_| {
            let (settings, id) = (settings.clone(), id.clone());
            std::thread::spawn(move || {
                let db = coffer::db::DbPool::connect(&settings.database_url(), 1).expect("pool");
                let mut c = db.get().expect("conn");
                let k = Keyring::from_settings(&mut c, &settings).expect("keyring");
                let mut n = 0;
                while reencrypt::step_of(&mut c, &k, &id, 2).expect("step") {
                    n += 1;
                }
                n
            })
        })
        .collect();
    let batches: usize = workers.into_iter().map(|w| w.join().expect("worker")).sum();
    assert!(batches >= 2, "{batches}");
    reencrypt::finish(&mut c, &job.id).expect("finish");
    let j = coffer::models::reencrypt::find(&mut c, &job.id)
        .expect("find")
        .expect("job");
    assert_eq!(j.state, "done");
    assert_eq!(j.done, j.total, "every record looked at once: {j:?}");
    // Each value under a rotated key was sealed again exactly once (one done twice would count
    // twice), and none is left.
    assert_eq!(j.resealed, needing as i64, "{j:?}");
    assert_eq!(needing_reseal(&mut c, &keyring), 0);
    let inactive: Vec<_> = coffer::models::vault_key::all(&mut c)
        .expect("keys")
        .into_iter()
        .filter(|k| k.purpose == "data" && !k.active)
        .collect();
    assert!(inactive.is_empty(), "retired: {inactive:?}");
}

#[tokio::test]
async fn platform_admins_rotate_a_data_key_at_vault_and_every_process_re_encrypts_in_the_background()
 {
    let (app, _) = setup().await;
    app.login_ok("manager", "manager-demo").await;
    assert_eq!(app.get("/vault").await.status(), StatusCode::FORBIDDEN);
    let r = app
        .post_form("/vault/rotate", &[("owner", "platform")])
        .await;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    app.login_ok("admin", "admin-demo").await;
    let (s, page) = app.get_html("/vault").await;
    assert_eq!(s, StatusCode::OK);
    assert!(page.contains("No re-encryption has run yet."), "{page}");
    let db = app.db();
    let mut c = db.get().expect("conn");
    let globex = root(&mut c, "Globex");
    // An owner that is not a root tenant is refused.
    let acme_retail = root(&mut c, "Acme Retail");
    let r = app
        .post_form("/vault/rotate", &[("owner", &acme_retail)])
        .await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let (_, page) = app.get_html("/vault").await;
    assert!(
        page.contains("Choose the platform or a root tenant."),
        "{page}"
    );

    let r = app.post_form("/vault/rotate", &[("owner", &globex)]).await;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    // The server's background loop runs the job (every 2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let page = loop {
        let (_, page) = app.get_html("/vault").await;
        if page.contains(">Done<") {
            break page;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the job did not finish: {page}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    let j = coffer::models::reencrypt::latest(&mut c)
        .expect("latest")
        .expect("job");
    assert_eq!(j.done, j.total);
    assert!(
        page.contains(&format!("<span id=\"reencrypt-done\">{}</span>", j.done)),
        "{page}"
    );
    assert!(page.contains("Sealed again"), "{page}");
    let (_, audit) = app.get_html("/audit?action=vault.rotate_data_key").await;
    assert!(audit.contains("Rotated the data key of Globex"), "{audit}");
}
