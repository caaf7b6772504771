//! Crash test: while debits with withRegister run, `kill -9` the server (a separate `coffer`
//! process), start it again on the same data, and check that every transaction the client saw
//! acknowledged is there, that no profile, instrument or transaction is half-written, and that
//! the vault opens every stored card. Several kill/restart rounds on one database, on SQLite,
//! or on a fresh PostgreSQL database when COFFER_TEST_DATABASE_URL is set.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coffer::db::schema::{card_tokens, containers, instruments, profiles, transactions};
use coffer::models::container::Container;
use coffer::models::profile::{Instrument, Profile};
use coffer::models::transaction::Transaction;
use coffer::vault::keyring::Keyring;
use diesel::prelude::*;
use rand::RngExt;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::server::*;

/// Kill/restart rounds in one test.
const ROUNDS: usize = 3;
/// Concurrent client tasks, each tokenizing and debiting in a loop.
const CLIENTS: usize = 8;
/// Requests (tokenize + debit) per task and round at most: the loops end by themselves.
const MAX_PER_TASK: usize = 300;
/// Acknowledged debits to wait for in a round before the random delay that ends in the kill.
const MIN_ACKS: usize = 8;
/// Customers that every task and round registers cards for (the others are new each time).
const REPEATED_CUSTOMERS: usize = 5;
/// Cards used for the repeated customers, so that the same card comes back for a profile.
const REPEATED_CARDS: [&str; 4] = [
    "4111111111111111",
    "5555555555554444",
    "4242424242424242",
    "378282246310005",
];

/// A debit the client saw acknowledged: HTTP 200 with success:true.
#[derive(Debug, Clone)]
struct Ack {
    uuid: String,
    guid: String,
    token: String,
    customer: String,
    pan: String,
    card_token: String,
}

#[derive(Default)]
struct Round {
    acks: Mutex<Vec<Ack>>,
    acked: AtomicUsize,
    /// Debits sent whose answer never (fully) arrived: the kill cut them off.
    cut_off: AtomicUsize,
    /// Answers that are neither a success nor a lost connection: none may come.
    errors: Mutex<Vec<String>>,
}

async fn client_task(base: String, round_no: usize, task: usize, round: Arc<Round>) {
    let client = client();
    for i in 0..MAX_PER_TASK {
        let (customer, pan, preferred) = {
            let mut rng = rand::rng();
            if rng.random_bool(0.5) {
                (
                    format!("crash-rep-{}", rng.random_range(0..REPEATED_CUSTOMERS)),
                    REPEATED_CARDS[rng.random_range(0..REPEATED_CARDS.len())].to_string(),
                    rng.random_bool(0.5),
                )
            } else {
                (
                    format!("crash-new-{round_no}-{task}-{i}"),
                    random_pan(),
                    rng.random_bool(0.5),
                )
            }
        };
        let card_token = match tokenize(&client, &base, &pan).await {
            Ok(t) => t,
            Err(Reply::NoAnswer { .. }) => return,
            Err(Reply::Answer(s, v)) => {
                lock(&round.errors).push(format!("tokenize: {s} {v}"));
                return;
            }
        };
        let body = json!({
            "merchantTransactionId": mtid(), "amount": "9.99", "currency": "EUR",
            "transactionToken": card_token, "withRegister": true,
            "customerProfileData": {"customerIdentification": customer, "markAsPreferred": preferred},
        });
        match transaction(&client, &base, "debit", &body).await {
            Reply::Answer(s, v) if s == StatusCode::OK && v["success"] == true => {
                let field = |v: &Value| v.as_str().unwrap_or_default().to_string();
                lock(&round.acks).push(Ack {
                    uuid: field(&v["uuid"]),
                    guid: field(&v["customerProfileData"]["profileGuid"]),
                    token: field(&v["customerProfileData"]["paymentToken"]),
                    customer,
                    pan,
                    card_token,
                });
                round.acked.fetch_add(1, Ordering::SeqCst);
            }
            Reply::Answer(s, v) => {
                lock(&round.errors).push(format!("debit: {s} {v}"));
                return;
            }
            Reply::NoAnswer { refused } => {
                if !refused {
                    round.cut_off.fetch_add(1, Ordering::SeqCst);
                }
                return;
            }
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[tokio::test]
async fn kill_9_during_registrations_loses_no_acknowledged_write_and_leaves_no_half_written_row() {
    crash_rounds(Backend::new()).await;
}

/// The same with the vault's keys in the key manager (`COFFER_KMS=transit`, a real OpenBao):
/// after each `kill -9` the restarted process unwraps the keys from Transit again and opens
/// every acknowledged card.
#[tokio::test]
async fn kill_9_in_transit_mode_loses_no_acknowledged_write_and_every_card_still_opens() {
    let Some(bao) = crate::bao::bao("crash in transit mode") else {
        return;
    };
    crash_rounds(Backend::transit(bao, &bao.addr)).await;
}

async fn crash_rounds(backend: Backend) {
    let mut server = backend.start("crash").await;
    let mut all_acks: Vec<Ack> = vec![];
    let mut cut_off_total = 0;
    for round_no in 0..ROUNDS {
        let round = Arc::new(Round::default());
        let tasks: Vec<_> = (0..CLIENTS)
            .map(|task| {
                tokio::spawn(client_task(
                    server.addr.clone(),
                    round_no,
                    task,
                    round.clone(),
                ))
            })
            .collect();
        // Some debits through, then a random moment while the tasks keep sending.
        let started = Instant::now();
        while round.acked.load(Ordering::SeqCst) < MIN_ACKS {
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "round {round_no}: fewer than {MIN_ACKS} debits in 30 s; errors: {:?}",
                lock(&round.errors)
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let delay = rand::rng().random_range(0..250);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        server.kill();
        for t in tasks {
            t.await.expect("client task");
        }
        let errors = lock(&round.errors).clone();
        assert!(errors.is_empty(), "round {round_no}: {errors:?}");
        let acks = lock(&round.acks).clone();
        let cut_off = round.cut_off.load(Ordering::SeqCst);
        cut_off_total += cut_off;
        eprintln!(
            "crash round {round_no}: {} debits acknowledged, {cut_off} cut off by kill -9 after {delay} ms",
            acks.len()
        );
        server = backend.start("crash").await;
        all_acks.extend(acks.iter().cloned());
        verify_database(&backend.settings("crash"), &all_acks);
        verify_api(&server, &acks).await;
    }
    assert!(
        cut_off_total > 0,
        "no kill hit a debit in flight: the test did not test a crash during registrations"
    );
}

/// Every check that looks under the hood, over the whole database and all acknowledgements.
fn verify_database(settings: &coffer::config::Settings, acks: &[Ack]) {
    let db = coffer::db::DbPool::connect(&settings.database_url(), 2).expect("pool");
    let mut conn = db.get().expect("conn");
    let conn = &mut *conn;
    let keyring = Keyring::from_settings(conn, settings).expect("keyring");
    let all_profiles: Vec<Profile> = profiles::table
        .select(Profile::as_select())
        .load(conn)
        .expect("profiles");
    let all_instruments: Vec<Instrument> = instruments::table
        .select(Instrument::as_select())
        .load(conn)
        .expect("instruments");
    let all_txs: Vec<Transaction> = transactions::table
        .select(Transaction::as_select())
        .load(conn)
        .expect("transactions");
    let all_containers: Vec<Container> = containers::table
        .select(Container::as_select())
        .load(conn)
        .expect("containers");
    let profile_by_id: BTreeMap<&str, &Profile> =
        all_profiles.iter().map(|p| (p.id.as_str(), p)).collect();
    let instrument_by_id: BTreeMap<&str, &Instrument> =
        all_instruments.iter().map(|i| (i.id.as_str(), i)).collect();
    let instrument_by_token: BTreeMap<&str, &Instrument> = all_instruments
        .iter()
        .map(|i| (i.payment_token.as_str(), i))
        .collect();
    let tx_by_uuid: BTreeMap<&str, &Transaction> =
        all_txs.iter().map(|t| (t.uuid.as_str(), t)).collect();

    // The vault opens every stored card, and it is a valid card number matching its summary.
    let mut pans: BTreeMap<&str, String> = BTreeMap::new();
    for i in &all_instruments {
        let pan = keyring
            .open_string(conn, &i.vault_record, i.id.as_bytes())
            .unwrap_or_else(|e| panic!("instrument {}: the vault cannot open it: {e}", i.id));
        assert!(
            coffer::gateway::card::luhn_valid(&pan),
            "instrument {}: not a valid card number",
            i.id
        );
        assert_eq!(i.first_six.as_deref(), pan.get(..6), "instrument {}", i.id);
        assert_eq!(
            i.last_four.as_deref(),
            pan.get(pan.len() - 4..),
            "instrument {}",
            i.id
        );
        pans.insert(i.id.as_str(), pan);
    }

    // Every acknowledged debit is there, whole: transaction, profile, instrument, card.
    let mut guid_of_customer: BTreeMap<&str, &str> = BTreeMap::new();
    for a in acks {
        let t = tx_by_uuid
            .get(a.uuid.as_str())
            .unwrap_or_else(|| panic!("acknowledged transaction {} is lost", a.uuid));
        assert_eq!(
            (t.status.as_str(), t.transaction_type.as_str()),
            ("SUCCESS", "DEBIT"),
            "{}",
            a.uuid
        );
        let p = t
            .profile_id
            .as_deref()
            .and_then(|id| profile_by_id.get(id))
            .unwrap_or_else(|| panic!("transaction {}: its profile is missing", a.uuid));
        assert_eq!(p.profile_guid, a.guid, "transaction {}", a.uuid);
        assert_eq!(p.customer_identification, a.customer);
        assert!(p.deleted_at.is_none());
        let i = instrument_by_token
            .get(a.token.as_str())
            .unwrap_or_else(|| panic!("acknowledged payment token of {} is lost", a.uuid));
        assert_eq!(t.instrument_id.as_deref(), Some(i.id.as_str()));
        assert_eq!(t.payment_token.as_deref(), Some(a.token.as_str()));
        assert_eq!(i.profile_id, p.id, "transaction {}", a.uuid);
        assert_eq!(
            pans.get(i.id.as_str()),
            Some(&a.pan),
            "transaction {}",
            a.uuid
        );
        let prior = guid_of_customer.insert(&a.customer, &a.guid);
        assert!(
            prior.is_none_or(|g| g == a.guid),
            "customer {} was acknowledged with two profiles",
            a.customer
        );
        let left: i64 = card_tokens::table
            .filter(card_tokens::token.eq(&a.card_token))
            .count()
            .get_result(conn)
            .expect("count");
        assert_eq!(
            left, 0,
            "transaction {}: its single-use card token is back",
            a.uuid
        );
    }

    // No half-written transaction: every one charged a stored card of an existing profile.
    for t in &all_txs {
        assert_eq!(
            (t.status.as_str(), t.transaction_type.as_str()),
            ("SUCCESS", "DEBIT"),
            "{}",
            t.uuid
        );
        let i = t
            .instrument_id
            .as_deref()
            .and_then(|id| instrument_by_id.get(id))
            .unwrap_or_else(|| panic!("transaction {}: no instrument", t.uuid));
        assert_eq!(t.profile_id.as_deref(), Some(i.profile_id.as_str()));
        assert_eq!(t.payment_token.as_deref(), Some(i.payment_token.as_str()));
    }

    // No half-written profile: each was created with a card, has exactly one preferred
    // instrument and no card twice; no instrument without its profile.
    let mut per_profile: BTreeMap<&str, Vec<&Instrument>> = BTreeMap::new();
    for i in &all_instruments {
        assert!(
            profile_by_id.contains_key(i.profile_id.as_str()),
            "instrument {} has no profile",
            i.id
        );
        per_profile
            .entry(i.profile_id.as_str())
            .or_default()
            .push(i);
    }
    for p in &all_profiles {
        let list = per_profile.get(p.id.as_str()).cloned().unwrap_or_default();
        assert!(
            !list.is_empty(),
            "profile {} ({}) has no instrument",
            p.id,
            p.customer_identification
        );
        let preferred = list.iter().filter(|i| i.is_preferred).count();
        assert_eq!(preferred, 1, "profile {}: preferred instruments", p.id);
        let fingerprints: BTreeSet<&str> = list.iter().map(|i| i.fingerprint.as_str()).collect();
        assert_eq!(
            fingerprints.len(),
            list.len(),
            "profile {}: a card twice",
            p.id
        );
    }

    // The containers' counters match their rows.
    for c in &all_containers {
        let live = all_profiles
            .iter()
            .filter(|p| p.container_id == c.id && p.deleted_at.is_none())
            .count();
        assert_eq!(
            c.profile_count, live as i64,
            "container {}: profile_count",
            c.name
        );
    }
    assert!(
        all_profiles.len() >= guid_of_customer.len() && !all_profiles.is_empty(),
        "profiles were written"
    );
}

/// Through the restarted server: each acknowledged customer's profile lists its tokens, with one
/// preferred, and an acknowledged token can be charged.
async fn verify_api(server: &CofferProcess, acks: &[Ack]) {
    let client = client();
    let mut by_customer: BTreeMap<&str, (&str, BTreeSet<&str>)> = BTreeMap::new();
    for a in acks {
        by_customer
            .entry(&a.customer)
            .or_insert_with(|| (&a.guid, BTreeSet::new()))
            .1
            .insert(&a.token);
    }
    for (customer, (guid, tokens)) in &by_customer {
        let Reply::Answer(s, v) = profiles_api(
            &client,
            &server.addr,
            "getProfile",
            &json!({"customerIdentification": customer}),
        )
        .await
        else {
            panic!("getProfile {customer}: no answer");
        };
        assert_eq!(s, StatusCode::OK, "{v}");
        assert_eq!(v["profileExists"], true, "{customer}: {v}");
        assert_eq!(v["profileGuid"], *guid, "{customer}");
        let list = v["paymentInstruments"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let listed: BTreeSet<&str> = list
            .iter()
            .filter_map(|i| i["paymentToken"].as_str())
            .collect();
        assert!(
            tokens.is_subset(&listed),
            "{customer}: acknowledged tokens {tokens:?}, listed {listed:?}"
        );
        let preferred = list.iter().filter(|i| i["isPreferred"] == true).count();
        assert_eq!(preferred, 1, "{customer}: {v}");
    }
    if let Some(a) = acks.first() {
        let body = json!({"merchantTransactionId": mtid(), "amount": "1.00", "currency": "EUR",
                          "transactionToken": a.token});
        let Reply::Answer(s, v) = transaction(&client, &server.addr, "debit", &body).await else {
            panic!("debit with {}: no answer", a.token);
        };
        assert_eq!((s, &v["success"]), (StatusCode::OK, &json!(true)), "{v}");
    }
}
