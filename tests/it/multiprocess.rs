//! Several Coffer processes on one PostgreSQL database: two `coffer` processes (same session and
//! vault keys, same fresh database, different ports) take concurrent registrations of the same
//! customers with the same cards, requests alternating between them. Afterwards there must be
//! one profile per customer, one instrument per card and profile, and no lost update of the
//! preferred instrument.
//!
//! PostgreSQL only: on SQLite the database is a file in one process's data dir, so the test is
//! skipped there (it says so) unless COFFER_TEST_DATABASE_URL names a PostgreSQL server.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use coffer::db::schema::{containers, instruments, profiles, tenants, users, vault_keys};
use coffer::models::container::Container;
use coffer::models::profile::{Instrument, Profile};
use coffer::vault::keyring::{Keyring, master_key};
use diesel::prelude::*;
use rand::RngExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::is_postgres;
use crate::server::*;

const CUSTOMERS: usize = 4;
/// Every customer registers these cards, so the same card arrives at both processes at once.
const CARDS: [&str; 3] = ["4111111111111111", "5555555555554444", "378282246310005"];
/// markAsPreferred registrations per customer, one after the other (alternating processes).
const PREFERRED_CHAIN: usize = 8;
/// Tasks sending registrations without markAsPreferred, concurrently with the chains.
const OTHER_TASKS: usize = 6;
const OTHER_PER_TASK: usize = 10;

fn customer(c: usize) -> String {
    format!("mp-customer-{c}")
}

/// An acknowledged registration.
#[derive(Debug, Clone)]
struct Ack {
    customer: String,
    card: &'static str,
    guid: String,
    token: String,
}

#[derive(Default)]
struct Log {
    acks: Mutex<Vec<Ack>>,
    errors: Mutex<Vec<String>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Tokenizes `card` on one process and registers it for `customer` on the other, as a
/// `register` or as a `debit` with withRegister. The acknowledgement, or None (logged).
async fn register(
    client: &reqwest::Client,
    bases: &[String; 2],
    n: usize,
    customer: &str,
    card: &'static str,
    preferred: bool,
    log: &Log,
) -> Option<Ack> {
    let (tokenize_on, register_on) = (&bases[(n + 1) % 2], &bases[n % 2]);
    let token = match tokenize(client, tokenize_on, card).await {
        Ok(t) => t,
        Err(Reply::Answer(s, v)) => {
            lock(&log.errors).push(format!("tokenize: {s} {v}"));
            return None;
        }
        Err(Reply::NoAnswer { .. }) => {
            lock(&log.errors).push("tokenize: no answer".into());
            return None;
        }
    };
    let mut profile_data = json!({"customerIdentification": customer});
    if preferred {
        profile_data["markAsPreferred"] = json!(true);
    }
    let (kind, body) = if n.is_multiple_of(3) {
        (
            "register",
            json!({"merchantTransactionId": mtid(), "transactionToken": token,
                   "customerProfileData": profile_data}),
        )
    } else {
        (
            "debit",
            json!({"merchantTransactionId": mtid(), "amount": "5.00", "currency": "EUR",
                   "transactionToken": token, "withRegister": true,
                   "customerProfileData": profile_data}),
        )
    };
    match transaction(client, register_on, kind, &body).await {
        Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => {
            let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
            let ack = Ack {
                customer: customer.to_string(),
                card,
                guid: field(&v["customerProfileData"]["profileGuid"]),
                token: field(&v["customerProfileData"]["paymentToken"]),
            };
            lock(&log.acks).push(ack.clone());
            Some(ack)
        }
        Reply::Answer(s, v) => {
            lock(&log.errors).push(format!("{kind} on {register_on}: {s} {v}"));
            None
        }
        Reply::NoAnswer { .. } => {
            lock(&log.errors).push(format!("{kind} on {register_on}: no answer"));
            None
        }
    }
}

#[tokio::test]
async fn two_processes_on_one_postgresql_database_keep_one_profile_one_card_and_one_preferred() {
    if !is_postgres() {
        eprintln!(
            "skipped: several processes share a PostgreSQL database only; set \
             COFFER_TEST_DATABASE_URL=postgres://… to run this test (SQLite is one process's file)"
        );
        return;
    }
    let backend = Backend::new();
    let a = backend.start("a").await;
    let b = backend.start("b").await;
    let bases = Arc::new([a.addr.clone(), b.addr.clone()]);
    let log = Arc::new(Log::default());
    let start = Arc::new(tokio::sync::Barrier::new(CUSTOMERS + OTHER_TASKS));

    // Per customer, a chain of markAsPreferred registrations: each waits for the previous
    // answer, so the last acknowledged one names the preferred instrument.
    let chains: Vec<_> = (0..CUSTOMERS)
        .map(|c| {
            let (bases, log, start) = (bases.clone(), log.clone(), start.clone());
            tokio::spawn(async move {
                let client = client();
                let mut last = None;
                start.wait().await;
                for n in 0..PREFERRED_CHAIN {
                    let card = CARDS[rand::rng().random_range(0..CARDS.len())];
                    if let Some(ack) =
                        register(&client, &bases, n + c, &customer(c), card, true, &log).await
                    {
                        last = Some(ack);
                    }
                }
                (customer(c), last)
            })
        })
        .collect();
    // Meanwhile, registrations of the same customers and cards without markAsPreferred.
    let others: Vec<_> = (0..OTHER_TASKS)
        .map(|t| {
            let (bases, log, start) = (bases.clone(), log.clone(), start.clone());
            tokio::spawn(async move {
                let client = client();
                start.wait().await;
                for n in 0..OTHER_PER_TASK {
                    let (c, card) = {
                        let mut rng = rand::rng();
                        (
                            rng.random_range(0..CUSTOMERS),
                            CARDS[rng.random_range(0..CARDS.len())],
                        )
                    };
                    register(&client, &bases, n + t, &customer(c), card, false, &log).await;
                }
            })
        })
        .collect();
    let mut last_preferred: BTreeMap<String, Ack> = BTreeMap::new();
    for h in chains {
        let (c, last) = h.await.expect("chain task");
        last_preferred.insert(c.clone(), last.unwrap_or_else(|| panic!("{c}: no ack")));
    }
    for h in others {
        h.await.expect("task");
    }
    let errors = lock(&log.errors).clone();
    assert!(errors.is_empty(), "{errors:?}");
    let acks = lock(&log.acks).clone();
    assert_eq!(
        acks.len(),
        CUSTOMERS * PREFERRED_CHAIN + OTHER_TASKS * OTHER_PER_TASK
    );

    // The clients saw one profile per customer and one token per card and customer.
    let mut guids: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let mut tokens: BTreeMap<(&str, &str), BTreeSet<&str>> = BTreeMap::new();
    for ack in &acks {
        guids.entry(&ack.customer).or_default().insert(&ack.guid);
        tokens
            .entry((&ack.customer, ack.card))
            .or_default()
            .insert(&ack.token);
    }
    for (c, g) in &guids {
        assert_eq!(g.len(), 1, "{c} was answered with several profiles: {g:?}");
    }
    for ((c, card), t) in &tokens {
        assert_eq!(t.len(), 1, "{c}, card {card}: several tokens {t:?}");
    }

    // The database agrees: one profile per customer, one instrument per card, one preferred,
    // the one of the last acknowledged markAsPreferred registration.
    let settings = backend.settings("a");
    let db = coffer::db::DbPool::connect(&settings.database_url(), 2).expect("pool");
    let mut conn = db.get().expect("conn");
    let conn = &mut *conn;
    let keyring = Keyring::load(conn, master_key(&settings).expect("master key")).expect("keyring");
    let all_profiles: Vec<Profile> = profiles::table
        .select(Profile::as_select())
        .load(conn)
        .expect("profiles");
    assert_eq!(all_profiles.len(), CUSTOMERS, "one profile per customer");
    for p in &all_profiles {
        let c = p.customer_identification.as_str();
        assert_eq!(
            guids.get(c).and_then(|g| g.first()),
            Some(&p.profile_guid.as_str())
        );
        let list: Vec<Instrument> = instruments::table
            .filter(instruments::profile_id.eq(&p.id))
            .select(Instrument::as_select())
            .load(conn)
            .expect("instruments");
        let acked_cards: BTreeSet<&str> = acks
            .iter()
            .filter(|a| a.customer == c)
            .map(|a| a.card)
            .collect();
        let mut stored_cards = BTreeSet::new();
        for i in &list {
            let pan = keyring
                .open_string(conn, &i.vault_record, i.id.as_bytes())
                .unwrap_or_else(|e| panic!("instrument {}: the vault cannot open it: {e}", i.id));
            assert!(
                stored_cards.insert(pan.clone()),
                "{c}: card {pan} stored twice"
            );
            assert_eq!(
                tokens.get(&(c, pan.as_str())).and_then(|t| t.first()),
                Some(&i.payment_token.as_str()),
                "{c}: the stored token of {pan} is the acknowledged one"
            );
        }
        let stored: BTreeSet<&str> = stored_cards.iter().map(String::as_str).collect();
        assert_eq!(
            stored, acked_cards,
            "{c}: one instrument per registered card"
        );
        let preferred: Vec<&Instrument> = list.iter().filter(|i| i.is_preferred).collect();
        assert_eq!(preferred.len(), 1, "{c}: exactly one preferred instrument");
        assert_eq!(
            preferred[0].payment_token, last_preferred[c].token,
            "{c}: the preferred instrument is the last one marked preferred"
        );
    }
    let all_containers: Vec<Container> = containers::table
        .select(Container::as_select())
        .load(conn)
        .expect("containers");
    for c in &all_containers {
        let rows = all_profiles
            .iter()
            .filter(|p| p.container_id == c.id)
            .count();
        assert_eq!(
            c.profile_count, rows as i64,
            "container {}: profile_count",
            c.name
        );
    }

    // Both processes answer the same: the one profile, with the preferred card.
    for server in [&a, &b] {
        let client = client();
        for (c, ack) in &last_preferred {
            let Reply::Answer(s, v) = profiles_api(
                &client,
                &server.addr,
                "getProfile",
                &json!({"customerIdentification": c}),
            )
            .await
            else {
                panic!("getProfile {c} on {}: no answer", server.addr);
            };
            assert_eq!(s, StatusCode::OK, "{v}");
            assert_eq!(v["profileGuid"], ack.guid.as_str(), "{c}");
            let preferred: Vec<&Value> = v["paymentInstruments"]
                .as_array()
                .map(|l| l.iter().filter(|i| i["isPreferred"] == true).collect())
                .unwrap_or_default();
            assert_eq!(preferred.len(), 1, "{c}: {v}");
            assert_eq!(preferred[0]["paymentToken"], ack.token.as_str(), "{c}");
        }
    }
}

/// Processes started together on a fresh database all come up, and what start-up creates
/// (the schema, the vault's keys, the first admin, the demo data) exists once.
#[tokio::test]
async fn three_processes_started_together_on_a_fresh_postgresql_database_all_come_up() {
    if !is_postgres() {
        eprintln!(
            "skipped: several processes share a PostgreSQL database only; set \
             COFFER_TEST_DATABASE_URL=postgres://… to run this test (SQLite is one process's file)"
        );
        return;
    }
    let backend = Backend::new();
    // join! polls each start once before any waits: the three processes are spawned together.
    let (a, b, c) = tokio::join!(backend.start("a"), backend.start("b"), backend.start("c"));
    let settings = backend.settings("a");
    let db = coffer::db::DbPool::connect(&settings.database_url(), 2).expect("pool");
    let mut conn = db.get().expect("conn");
    let conn = &mut *conn;
    // One MAC key, one platform data key, and one data key per root tenant (made in the
    // transaction that created the tenant): no process made a second of any.
    let keys: Vec<(String, Option<String>)> = vault_keys::table
        .select((vault_keys::purpose, vault_keys::owner))
        .order((vault_keys::purpose.asc(), vault_keys::owner.asc()))
        .load(conn)
        .expect("vault keys");
    let roots: Vec<String> = tenants::table
        .filter(tenants::parent_id.is_null())
        .select(tenants::id)
        .load(conn)
        .expect("roots");
    assert!(!roots.is_empty());
    let mut expected: Vec<(String, Option<String>)> = roots
        .iter()
        .map(|r| ("data".to_string(), Some(r.clone())))
        .collect();
    expected.push(("data".into(), None));
    expected.push(("mac".into(), None));
    let (mut got, mut want) = (keys.clone(), expected);
    got.sort();
    want.sort();
    assert_eq!(
        got, want,
        "one MAC key, one platform data key, one per root tenant"
    );
    let admins: i64 = users::table
        .filter(users::username.eq("admin"))
        .count()
        .get_result(conn)
        .expect("users");
    assert_eq!(admins, 1);
    let names: Vec<String> = tenants::table
        .select(tenants::name)
        .load(conn)
        .expect("tenants");
    let distinct: BTreeSet<&String> = names.iter().collect();
    assert!(!names.is_empty());
    assert_eq!(
        distinct.len(),
        names.len(),
        "demo tenants created once: {names:?}"
    );
    // And they work together: a card tokenized on one, registered on another, seen on the third.
    let client = client();
    let token = tokenize(&client, &a.addr, "4111111111111111")
        .await
        .unwrap_or_else(|_| panic!("tokenize on {}", a.addr));
    let body = json!({"merchantTransactionId": mtid(), "transactionToken": token,
                      "customerProfileData": {"customerIdentification": "together"}});
    let Reply::Answer(s, v) = transaction(&client, &b.addr, "register", &body).await else {
        panic!("register on {}: no answer", b.addr);
    };
    assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    let Reply::Answer(s, p) = profiles_api(
        &client,
        &c.addr,
        "getProfile",
        &json!({"customerIdentification": "together"}),
    )
    .await
    else {
        panic!("getProfile on {}: no answer", c.addr);
    };
    assert_eq!(s, StatusCode::OK, "{p}");
    assert_eq!(
        p["paymentInstruments"][0]["paymentToken"],
        v["customerProfileData"]["paymentToken"]
    );
}

/// Concurrent changes of one profile's instruments on two processes. A profile has cards T0
/// (preferred), T1 and T2; at the same moment T0 and T1 are deregistered, a new card is
/// registered (without markAsPreferred) and T2 is made preferred by updateProfile. In every
/// order these could run one after the other, T2 and the new card are left and T2 is the one
/// preferred instrument (the new card becomes preferred only on a profile without one), so that
/// is the expected end, whichever way PostgreSQL interleaves them.
#[tokio::test]
async fn concurrent_deregisters_and_registrations_on_two_processes_keep_one_preferred_instrument() {
    if !is_postgres() {
        eprintln!(
            "skipped: several processes share a PostgreSQL database only; set \
             COFFER_TEST_DATABASE_URL=postgres://… to run this test (SQLite is one process's file)"
        );
        return;
    }
    const PROFILES: usize = 6;
    const ROUNDS: usize = 3;
    let backend = Backend::new();
    let (a, b) = tokio::join!(backend.start("a"), backend.start("b"));
    let bases = Arc::new([a.addr.clone(), b.addr.clone()]);
    let log = Arc::new(Log::default());
    for round in 0..ROUNDS {
        // Each profile gets three cards, the first preferred; tokens by card.
        let mut setups = vec![];
        for p in 0..PROFILES {
            let customer = format!("dereg-{round}-{p}");
            let client = client();
            let mut tokens = vec![];
            for (n, card) in CARDS.iter().enumerate() {
                let ack = register(&client, &bases, n, &customer, card, n == 0, &log)
                    .await
                    .unwrap_or_else(|| panic!("setup of {customer}: {:?}", lock(&log.errors)));
                tokens.push(ack.token);
            }
            setups.push((customer, tokens));
        }
        // Then, all at once, alternating processes: deregister the preferred card and the
        // second one, register a fourth card without markAsPreferred, make the third preferred.
        let start = Arc::new(tokio::sync::Barrier::new(PROFILES * 4));
        let mut tasks = vec![];
        for (p, (customer, tokens)) in setups.iter().enumerate() {
            for (op, token) in tokens.iter().take(2).enumerate() {
                let (bases, start, token) = (bases.clone(), start.clone(), token.clone());
                tasks.push(tokio::spawn(async move {
                    let client = client();
                    let body = json!({"merchantTransactionId": mtid(), "transactionToken": token});
                    start.wait().await;
                    match transaction(&client, &bases[(p + op) % 2], "deregister", &body).await {
                        Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => None,
                        Reply::Answer(s, v) => Some(format!("deregister {token}: {s} {v}")),
                        Reply::NoAnswer { .. } => Some(format!("deregister {token}: no answer")),
                    }
                }));
            }
            let (base, start_, customer_, third) = (
                bases[(p + 1) % 2].clone(),
                start.clone(),
                customer.clone(),
                tokens[2].clone(),
            );
            tasks.push(tokio::spawn(async move {
                let client = client();
                let body =
                    json!({"customerIdentification": customer_, "customerData": {"firstName": "Ann"}, "preferredInstrument": third});
                start_.wait().await;
                match profiles_api(&client, &base, "updateProfile", &body).await {
                    Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => None,
                    Reply::Answer(s, v) => Some(format!("updateProfile {customer_}: {s} {v}")),
                    Reply::NoAnswer { .. } => Some(format!("updateProfile {customer_}: no answer")),
                }
            }));
            let (bases, start, log, customer) =
                (bases.clone(), start.clone(), log.clone(), customer.clone());
            tasks.push(tokio::spawn(async move {
                let client = client();
                let card = random_pan();
                // Tokenized before the barrier, so that only the registrations race.
                let token = match tokenize(&client, &bases[p % 2], &card).await {
                    Ok(t) => t,
                    Err(_) => return Some(format!("{customer}: tokenize")),
                };
                let body = json!({"merchantTransactionId": mtid(), "transactionToken": token,
                                  "customerProfileData": {"customerIdentification": customer}});
                start.wait().await;
                match transaction(&client, &bases[(p + 1) % 2], "register", &body).await {
                    Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => {
                        let mut acks = lock(&log.acks);
                        acks.push(Ack {
                            customer,
                            card: "new",
                            guid: String::new(),
                            token: v["customerProfileData"]["paymentToken"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                        });
                        None
                    }
                    Reply::Answer(s, v) => Some(format!("register: {s} {v}")),
                    Reply::NoAnswer { .. } => Some("register: no answer".into()),
                }
            }));
        }
        for t in tasks {
            if let Some(e) = t.await.expect("task") {
                lock(&log.errors).push(e);
            }
        }
        let errors = lock(&log.errors).clone();
        assert!(errors.is_empty(), "round {round}: {errors:?}");
        // Two cards left per profile (the third and the new one), exactly one preferred.
        let settings = backend.settings("a");
        let db = coffer::db::DbPool::connect(&settings.database_url(), 2).expect("pool");
        let mut conn = db.get().expect("conn");
        for (customer, tokens) in &setups {
            let left: Vec<(String, bool)> = instruments::table
                .inner_join(profiles::table)
                .filter(profiles::customer_identification.eq(customer))
                .select((instruments::payment_token, instruments::is_preferred))
                .load(&mut *conn)
                .expect("instruments");
            let new_token = lock(&log.acks)
                .iter()
                .find(|a| &a.customer == customer && a.card == "new")
                .map(|a| a.token.clone())
                .unwrap_or_default();
            let left_tokens: BTreeSet<&str> = left.iter().map(|(t, _)| t.as_str()).collect();
            assert_eq!(
                left_tokens,
                BTreeSet::from([tokens[2].as_str(), new_token.as_str()]),
                "{customer}: the instruments left"
            );
            let preferred: Vec<&str> = left
                .iter()
                .filter(|(_, p)| *p)
                .map(|(t, _)| t.as_str())
                .collect();
            assert_eq!(
                preferred,
                [tokens[2].as_str()],
                "{customer} (round {round}): the preferred instrument among {left:?}"
            );
        }
    }
}
