//! `coffer bench-seed`: benchmark data written straight into the database (no HTTP).
//!
//! Runs the demo seeding (public demo credentials: never on a production database), then adds
//! `N` profiles `bench-0 … bench-{N-1}` to the container effective for connector
//! `demo-shop-cards` (Acme Shared Profiles, via Acme Group's Global Setting). Each profile has one
//! preferred visa instrument tied to Acme Shop Cards, sealed by the vault exactly as the API
//! seals it (`keyring.seal(pan, instrument id)`, keyed fingerprint). It also writes single-use
//! `ix::` card tokens for the withRegister scenario, sealed as `tokenize` seals them.
//!
//! Rows go in with multi-row inserts of [`BATCH`] rows inside transactions of [`TX_ROWS`] rows.
//! A multi-row insert does not compile on the `MultiConnection` enum, so [`on_inner!`] runs the
//! same insert code on the inner `SqliteConnection` or `PgConnection`.
//!
//! Files written to `--out` for the load generator: `payment_tokens.txt` (a sample of the seeded
//! `pt::` tokens, at most [`TOKEN_SAMPLE`], spread evenly over the profiles),
//! `customer_uuids.txt` (the Monri v2 uuids of the same profiles), `card_tokens.txt` (every
//! seeded `ix::` token, each usable once) and `seed.json` (container id, counts, timing).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use chrono::{Datelike, Duration};
use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use crate::config::Settings;
use crate::db::schema::card_tokens;
use crate::db::{DbConnection, DbPool, write_tx};
use crate::gateway::{ids, vault};
use crate::models::connector;
use crate::models::profile::{Instrument, Profile};
use crate::models::transaction::CardToken;
use crate::vault::keyring::Keyring;

/// Rows per multi-row INSERT (instruments have 19 columns: 19 000 bind parameters, under
/// SQLite's 32 766 and PostgreSQL's 65 535).
pub const BATCH: usize = 1000;
/// Rows per transaction (keeps the SQLite WAL small).
pub const TX_ROWS: usize = 20_000;
/// Most `pt::` tokens written to `payment_tokens.txt`.
pub const TOKEN_SAMPLE: u64 = 100_000;
/// The card every bench instrument and card token holds (the simulator approves it).
pub const BENCH_PAN: &str = "4111111111111111";
/// The connector the bench uses (its effective container receives the profiles).
pub const BENCH_API_KEY: &str = "demo-shop-cards";

/// Runs `$body` with `$c` bound to the inner diesel connection, whichever the backend.
macro_rules! on_inner {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => $body,
            DbConnection::Postgresql($c) => $body,
        }
    };
}

pub struct SeedOptions {
    pub profiles: u64,
    pub card_tokens: u64,
    /// Lifetime of the seeded card tokens (the API's own tokens live `TOKEN_TTL_MINUTES`).
    pub card_token_minutes: i64,
    pub out: PathBuf,
}

#[derive(Debug, serde::Serialize)]
pub struct SeedReport {
    pub container_id: String,
    pub connector_id: String,
    pub profiles: u64,
    pub card_tokens: u64,
    pub payment_token_sample: u64,
    pub seconds: f64,
}

pub fn seed(db: &DbPool, settings: &Settings, opts: &SeedOptions) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    std::fs::create_dir_all(&opts.out)
        .with_context(|| format!("cannot create {}", opts.out.display()))?;
    let mut conn = db.get()?;
    let conn: &mut DbConnection = &mut conn;
    let keyring = Keyring::from_settings(conn, settings)?;
    crate::console::demo::seed(conn, &keyring)?;

    let cards = connector::find_by_api_key(conn, BENCH_API_KEY)?
        .context("the demo connector demo-shop-cards is missing")?;
    let owner = crate::vault::keyring::Owner::of_path(Some(&cards.tenant_path));
    let eff = crate::console::connectors::effective(conn, &cards)?;
    let container = eff
        .container
        .context("demo-shop-cards has no effective container")?;
    if container.profile_count != 0 {
        bail!(
            "container {} already holds {} profiles: bench-seed needs a fresh database",
            container.name,
            container.profile_count
        );
    }
    if let DbConnection::Sqlite(c) = conn {
        // Bench data only: no fsync per batch, a large page cache for the index inserts. The
        // server opens its own connections with the normal settings (synchronous = FULL).
        c.batch_execute("PRAGMA synchronous = OFF; PRAGMA cache_size = -262144;")?;
    }

    let fp = vault::fingerprint(keyring.mac_key()?, BENCH_PAN);
    let now = chrono::Utc::now();
    let exp_year = now.year() + 5;
    let step = opts.profiles.div_ceil(TOKEN_SAMPLE).max(1);
    let mut sample = std::io::BufWriter::new(create(&opts.out.join("payment_tokens.txt"))?);
    let mut uuids = std::io::BufWriter::new(create(&opts.out.join("customer_uuids.txt"))?);
    let mut sampled = 0u64;

    let progress = crate::progress::Progress::new("bench-seed profiles", opts.profiles);
    let mut next = 0u64;
    while next < opts.profiles {
        let end = (next + TX_ROWS as u64).min(opts.profiles);
        let mut ps = Vec::with_capacity((end - next) as usize);
        let mut is = Vec::with_capacity((end - next) as usize);
        for n in next..end {
            let at = crate::models::now();
            let p = Profile {
                id: crate::ids::new_id(),
                container_id: container.id.clone(),
                profile_guid: ids::profile_guid(),
                customer_identification: format!("bench-{n}"),
                email: Some(format!("bench-{n}@example.com")),
                customer: serde_json::json!({
                    "firstName": "Bench",
                    "lastName": format!("Customer {n}"),
                    "email": format!("bench-{n}@example.com"),
                    "billingCountry": "AT",
                })
                .to_string(),
                uuid: crate::models::profile::new_uuid(),
                deleted_at: None,
                created_at: at,
                updated_at: at,
            };
            let id = crate::ids::new_id();
            let i = Instrument {
                vault_record: keyring.seal(conn, &owner, BENCH_PAN.as_bytes(), id.as_bytes())?,
                id,
                profile_id: p.id.clone(),
                connector_id: cards.id.clone(),
                payment_token: ids::payment_token(),
                method: "card".into(),
                brand: Some("visa".into()),
                card_holder: Some(format!("Bench Customer {n}")),
                first_six: Some(BENCH_PAN[..6].into()),
                last_four: Some(BENCH_PAN[12..].into()),
                exp_month: Some(12),
                exp_year: Some(exp_year),
                iban_masked: None,
                bic: None,
                mandate_id: None,
                fingerprint: fp.clone(),
                is_preferred: true,
                created_at: at,
                updated_at: at,
                expiry_noticed_at: None,
                expired_at: None,
                card_update_status: None,
                card_updated_at: None,
            };
            if n.is_multiple_of(step) {
                writeln!(sample, "{}", i.payment_token)?;
                writeln!(uuids, "{}", p.uuid)?;
                sampled += 1;
            }
            ps.push(p);
            is.push(i);
        }
        write_tx(conn, |tx| -> anyhow::Result<()> {
            for (ps, is) in ps.chunks(BATCH).zip(is.chunks(BATCH)) {
                crate::vault::profiles::import(tx, &container.id, ps, is)?;
            }
            Ok(())
        })?;
        progress.inc(end - next);
        next = end;
    }
    progress.finish();
    sample.flush()?;
    uuids.flush()?;

    let plaintext = crate::payments::card_tokens::sealed_plaintext(BENCH_PAN, "123")?;
    let expires_at = (now + Duration::minutes(opts.card_token_minutes)).naive_utc();
    let mut file = std::io::BufWriter::new(create(&opts.out.join("card_tokens.txt"))?);
    let progress = crate::progress::Progress::new("bench-seed card tokens", opts.card_tokens);
    let mut next = 0u64;
    while next < opts.card_tokens {
        let end = (next + TX_ROWS as u64).min(opts.card_tokens);
        let mut rows = Vec::with_capacity((end - next) as usize);
        for _ in next..end {
            let token = ids::card_token();
            rows.push(CardToken {
                sealed: keyring.seal(conn, &owner, &plaintext, token.as_bytes())?,
                token,
                connector_id: cards.id.clone(),
                brand: "visa".into(),
                first_six: BENCH_PAN[..6].into(),
                last_four: BENCH_PAN[12..].into(),
                exp_month: 12,
                exp_year,
                card_holder: Some("Bench New Customer".into()),
                fingerprint: fp.clone(),
                expires_at,
                created_at: now.naive_utc(),
            });
        }
        write_tx(conn, |tx| -> anyhow::Result<()> {
            for rows in rows.chunks(BATCH) {
                on_inner!(tx, |c| diesel::insert_into(card_tokens::table)
                    .values(rows)
                    .execute(c))?;
            }
            Ok(())
        })?;
        for r in &rows {
            writeln!(file, "{}", r.token)?;
        }
        progress.inc(end - next);
        next = end;
    }
    progress.finish();
    file.flush()?;

    // SQLite: no ANALYZE, since a deployment never runs one, so the server plans its queries as
    // it would in production. PostgreSQL's autovacuum analyzes a bulk load by itself soon after;
    // running it now only makes the runs repeatable.
    match conn {
        DbConnection::Sqlite(c) => c.batch_execute("PRAGMA wal_checkpoint(TRUNCATE);")?,
        DbConnection::Postgresql(c) => c.batch_execute("ANALYZE;")?,
    }
    let report = SeedReport {
        container_id: container.id.clone(),
        connector_id: cards.id.clone(),
        profiles: opts.profiles,
        card_tokens: opts.card_tokens,
        payment_token_sample: sampled,
        seconds: started.elapsed().as_secs_f64(),
    };
    let json = serde_json::to_string_pretty(&report)?;
    std::fs::write(opts.out.join("seed.json"), json + "\n")?;
    Ok(report)
}

fn create(path: &Path) -> anyhow::Result<std::fs::File> {
    std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))
}
