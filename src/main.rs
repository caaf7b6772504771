use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use coffer::config::Settings;
use coffer::domain::Role;
use coffer::startup::{Application, open_database};

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Coffer: customer-profile vault and payment gateway"
)]
struct Cli {
    #[command(flatten)]
    settings: Settings,
    #[command(subcommand)]
    command: Option<Command>,
}

impl Cli {
    /// Parses the command line with every setting global, so that it may come before or after
    /// the subcommand (`coffer --bind X serve` and `coffer serve --bind X`); the environment
    /// variables work as before. Settings are the only arguments of `Cli` itself.
    fn parse_global() -> Cli {
        let matches = Cli::command().mut_args(|a| a.global(true)).get_matches();
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Create the demo tenants, merchants and users (idempotent). Demo credentials only.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a console user. The password comes from COFFER_NEW_USER_PASSWORD or is generated and printed.
    CreateUser {
        #[arg(long)]
        username: String,
        /// platform_admin, tenant_manager or merchant_admin
        #[arg(long, default_value = "platform_admin")]
        role: String,
        /// Tenant id (tenant managers).
        #[arg(long)]
        tenant: Option<String>,
        /// Merchant id (merchant admins).
        #[arg(long)]
        merchant: Option<String>,
    },
    /// Re-wrap the vault's keys under a new master key (from COFFER_NEW_VAULT_KEY, or --generate);
    /// with COFFER_KMS=transit, rotate the Transit keys (the vault's and each root tenant's),
    /// rewrap the keys under their new versions and re-encrypt every record under the new data
    /// key. With --tenant ID (or --tenant platform), rotate that owner's data key instead and
    /// re-encrypt its records.
    RotateVaultKey {
        /// Generate the new master key and print it once (instead of COFFER_NEW_VAULT_KEY).
        #[arg(long)]
        generate: bool,
        /// Rotate the data key of this root tenant (or `platform`) instead of the master key.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Re-encrypt every sealed record under its owner's active data key (starts a job, or
    /// resumes the one running), then retire the data keys no record uses.
    Reencrypt,
    /// Send `instrument.expiring` for cards near the end of their expiry month and mark expired
    /// ones, now (the server also does it once a day). Runs beside a live server on the same
    /// database: it only enqueues the events, the server delivers them.
    LifecycleScan,
    /// Ask the simulated account updater about every card of a container: reissued and
    /// replaced cards are updated in place (same payment token), closed accounts removed.
    /// Runs beside a live server; an interrupted run is continued by the next one.
    AccountUpdater {
        /// The container's id.
        #[arg(long)]
        container: String,
    },
    /// The audit log: `coffer audit verify` checks its hash chains.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Benchmark data (bench/run.sh): the demo data plus N profiles `bench-0…` with one sealed
    /// card each, and single-use card tokens, written straight into a FRESH database. Creates
    /// the public demo credentials: never run it on a production database.
    #[command(hide = true)]
    BenchSeed {
        /// Profiles to create (each with one card instrument).
        #[arg(long, default_value_t = 100_000)]
        profiles: u64,
        /// `ix::` card tokens to create (one per withRegister request).
        #[arg(long, default_value_t = 50_000)]
        card_tokens: u64,
        /// Lifetime of those card tokens, in minutes.
        #[arg(long, default_value_t = coffer::payments::card_tokens::TOKEN_TTL_MINUTES)]
        card_token_minutes: i64,
        /// Directory for the token files and seed.json.
        #[arg(long)]
        out: std::path::PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every chain of the audit log: exit 0 with a summary when intact; otherwise print the
    /// id of the first entry that was changed, inserted or removed and exit 1.
    Verify,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse_global();
    init_logging(cli.settings.log_format);
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => {
            let app = Application::build(cli.settings, demo)?;
            tracing::info!(port = app.port(), "Coffer listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            coffer::startup::migrate(&cli.settings)?;
            println!("migrations applied");
        }
        Command::CreateUser {
            username,
            role,
            tenant,
            merchant,
        } => {
            let role = Role::parse(&role).ok_or_else(|| anyhow::anyhow!("unknown role {role}"))?;
            let db = open_database(&cli.settings)?;
            let mut conn = db.get()?;
            let (pw, generated) = match std::env::var("COFFER_NEW_USER_PASSWORD") {
                Ok(p) if p.len() >= 12 => (p, false),
                Ok(_) => anyhow::bail!("COFFER_NEW_USER_PASSWORD must be at least 12 characters"),
                Err(_) => (coffer::ids::random_password(), true),
            };
            let t = match tenant.as_deref() {
                Some(id) => Some(
                    coffer::models::tenant::find(&mut conn, id)?
                        .ok_or_else(|| anyhow::anyhow!("no tenant {id}"))?,
                ),
                None => None,
            };
            if role == Role::TenantManager && t.is_none() {
                anyhow::bail!("a tenant manager needs --tenant");
            }
            if role == Role::MerchantAdmin && merchant.is_none() {
                anyhow::bail!("a merchant admin needs --merchant");
            }
            coffer::console::users::create_system(
                &mut conn,
                &username.to_ascii_lowercase(),
                &pw,
                role,
                t.as_ref().map(|t| (t.id.as_str(), t.path.as_str())),
                merchant.as_deref(),
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            if generated {
                println!("Created {username} with generated password: {pw}");
            } else {
                println!("Created {username}");
            }
        }
        Command::Audit {
            command: AuditCommand::Verify,
        } => {
            let db = open_database(&cli.settings)?;
            let verdict = coffer::audit::chain::verify_snapshot(&mut *db.get()?)?;
            match verdict {
                coffer::audit::chain::Verdict::Intact { chains, entries } => {
                    println!("audit log intact: {entries} entries in {chains} chains");
                }
                coffer::audit::chain::Verdict::Broken { entry_id, reason } => {
                    match entry_id {
                        Some(id) => println!("audit log BROKEN at entry {id}: {reason}"),
                        None => println!("audit log BROKEN: {reason}"),
                    }
                    std::process::exit(1);
                }
            }
        }
        Command::RotateVaultKey {
            generate,
            tenant: Some(owner),
        } => {
            if generate {
                anyhow::bail!("--generate makes a master key; --tenant rotates a data key");
            }
            rotate_data_key(&cli.settings, &owner)?
        }
        Command::RotateVaultKey {
            generate,
            tenant: None,
        } => rotate_vault_key(&cli.settings, generate)?,
        Command::Reencrypt => {
            let db = open_database(&cli.settings)?;
            let mut conn = db.get()?;
            reencrypt(&cli.settings, &mut conn, "coffer reencrypt")?
        }
        Command::LifecycleScan => {
            let db = open_database(&cli.settings)?;
            let mut conn = db.get()?;
            let today = chrono::Utc::now().date_naive();
            let mut progress = coffer::progress::Progress::new("expiry scan", 0);
            let r = coffer::vault::lifecycle::scan_expiry(&mut conn, today, &mut progress)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            progress.finish();
            println!(
                "expiry scan: {} cards, {} instrument.expiring enqueued, {} marked expired",
                r.seen, r.expiring, r.expired
            );
        }
        Command::AccountUpdater { container } => {
            let db = open_database(&cli.settings)?;
            let mut conn = db.get()?;
            let keyring = coffer::vault::keyring::Keyring::from_settings(&mut conn, &cli.settings)?;
            let c = coffer::models::container::find(&mut conn, &container)?
                .ok_or_else(|| anyhow::anyhow!("no container {container}"))?;
            let mut progress = coffer::progress::Progress::new("account updater", 0);
            let r = coffer::vault::lifecycle::run_account_updater(
                &mut conn,
                &keyring,
                &coffer::vault::lifecycle::command_line_actor(),
                &c,
                &mut progress,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            progress.finish();
            println!(
                "account updater{}: {} cards, {} reissued, {} replaced, {} closed",
                if r.resumed { " (continued)" } else { "" },
                r.seen,
                r.reissued,
                r.replaced,
                r.closed
            );
        }
        Command::BenchSeed {
            profiles,
            card_tokens,
            card_token_minutes,
            out,
        } => {
            let db = open_database(&cli.settings)?;
            let opts = coffer::bench::SeedOptions {
                profiles,
                card_tokens,
                card_token_minutes,
                out,
            };
            let report = coffer::bench::seed(&db, &cli.settings, &opts)?;
            println!("{}", serde_json::to_string(&report)?);
        }
    }
    Ok(())
}

/// Log lines to stdout, as text or JSON (`COFFER_LOG_FORMAT`), at the levels of `RUST_LOG`
/// (default `info`), never the lines `web::telemetry::may_log` refuses (they could name a
/// request's raw path). Lines of the `log` crate (actix's) come through tracing too. JSON lines
/// carry the current span (a request's, with its `request_id`) and the spans around it.
fn init_logging(format: coffer::config::LogFormat) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let never = tracing_subscriber::filter::filter_fn(coffer::web::telemetry::may_log);
    // Colours only for a terminal: not in files and pipes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi);
    match format {
        coffer::config::LogFormat::Text => builder.finish().with(never).init(),
        coffer::config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .finish()
            .with(never)
            .init(),
    }
}

fn rotate_vault_key(settings: &Settings, generate: bool) -> anyhow::Result<()> {
    use coffer::gateway::vault::MasterKey;
    use coffer::vault::keyring::{self, MasterKeySource};

    if settings.kms == coffer::config::KmsMode::Transit {
        return rotate_transit_key(settings, generate);
    }
    let from_env = std::env::var("COFFER_NEW_VAULT_KEY")
        .ok()
        .filter(|v| !v.trim().is_empty());
    let new_master = match (from_env, generate) {
        (Some(_), true) => anyhow::bail!("use either COFFER_NEW_VAULT_KEY or --generate, not both"),
        (None, false) => anyhow::bail!(
            "set COFFER_NEW_VAULT_KEY (64 hex digits or base64 of 32 bytes) or pass --generate"
        ),
        (Some(v), false) => {
            MasterKey::from_encoded(&v).map_err(|e| anyhow::anyhow!("COFFER_NEW_VAULT_KEY: {e}"))?
        }
        (None, true) => MasterKey::generate(),
    };
    let db = open_database(settings)?;
    let mut conn = db.get()?;
    let mut printed = false;
    let rotation = keyring::rotate_master_key(&mut conn, settings, &new_master, || {
        if generate {
            // Shown before the commit, so that the key is not lost should the process die after it.
            println!("New vault master key (shown once): {}", new_master.to_hex());
            printed = true;
        }
    })
    .map_err(|e| {
        if printed {
            e.context("the key printed above was NOT applied")
        } else {
            e
        }
    })?;
    println!(
        "Re-wrapped {} vault keys under the new master key {} and started a new data key.",
        rotation.rewrapped, rotation.new_master_key_id
    );
    match &rotation.source {
        MasterKeySource::DataDirFile(path) => println!(
            "{} now holds the new master key. Restart Coffer. If you run more than one Coffer \
             process, or start to set COFFER_VAULT_KEY, every process must use the new key.",
            path.display()
        ),
        MasterKeySource::Environment => println!(
            "Next: set COFFER_VAULT_KEY to the new key on every Coffer process sharing this \
             database and restart them. Until a process restarts it keeps its loaded keys, but \
             cannot read records sealed under the new data key by processes already restarted."
        ),
    }
    println!(
        "Keep the old key only as long as you keep database backups taken before this rotation: \
         those need it. Once every process uses the new key, run `coffer reencrypt` to move the \
         records to the new data key and retire the old one."
    );
    Ok(())
}

/// `coffer rotate-vault-key` with COFFER_KMS=transit: the key manager makes the new key version.
fn rotate_transit_key(settings: &Settings, generate: bool) -> anyhow::Result<()> {
    if generate || std::env::var_os("COFFER_NEW_VAULT_KEY").is_some() {
        anyhow::bail!(
            "COFFER_KMS=transit: the key manager creates the new key version; neither \
             COFFER_NEW_VAULT_KEY nor --generate applies"
        );
    }
    let db = open_database(settings)?;
    let mut conn = db.get()?;
    let rotation = coffer::vault::keyring::rotate_transit_key(&mut conn, settings)?;
    println!(
        "Rotated the Transit key and rewrapped {} vault keys under its version {}; started a new \
         data key. Running Coffer processes keep working without a restart.",
        rotation.rewrapped, rotation.version
    );
    reencrypt(settings, &mut conn, "rotate-vault-key (transit)")
}

/// `coffer rotate-vault-key --tenant ID|platform`: a new data key for that owner, then the
/// re-encryption of its records.
fn rotate_data_key(settings: &Settings, owner: &str) -> anyhow::Result<()> {
    use coffer::vault::keyring::{Keyring, Owner};
    let db = open_database(settings)?;
    let mut conn = db.get()?;
    let who = if owner == "platform" {
        Owner::Platform
    } else {
        let t = coffer::models::tenant::find(&mut conn, owner)?
            .ok_or_else(|| anyhow::anyhow!("no tenant {owner}"))?;
        if t.parent_id.is_some() {
            anyhow::bail!("tenant {owner} is a sub-tenant: its records use its root tenant's keys");
        }
        Owner::Tenant(t.id)
    };
    let keyring = Keyring::from_settings(&mut conn, settings)?;
    let id = keyring.rotate_data_key(&mut conn, &who)?;
    println!("Started data key {id} for {owner}.");
    reencrypt(
        settings,
        &mut conn,
        &format!("rotate-vault-key --tenant {owner}"),
    )
}

/// Runs the re-encryption job to its end, with a progress line every two seconds.
fn reencrypt(
    settings: &Settings,
    conn: &mut coffer::db::DbConnection,
    reason: &str,
) -> anyhow::Result<()> {
    use coffer::vault::reencrypt;
    let keyring = coffer::vault::keyring::Keyring::from_settings(conn, settings)?;
    let job = reencrypt::start(conn, reason)?;
    println!("Re-encrypting {} records (job {}).", job.total, job.id);
    let bar = coffer::progress::Progress::new("re-encryption", job.total.max(0) as u64);
    bar.inc(job.done.max(0) as u64);
    let (p, r) = reencrypt::run(conn, &keyring, &job.id, |p| {
        let done = p.job.done.max(0) as u64;
        bar.inc(done.saturating_sub(bar.done()));
    })?;
    bar.finish();
    println!(
        "Re-encryption done: {} records looked at, {} sealed again, {:.0}/s. Retired {} data \
         key(s){}.",
        p.job.done,
        p.job.resealed,
        p.rate,
        r.retired.len(),
        if r.kept.is_empty() {
            String::new()
        } else {
            format!(
                "; kept {} still in use (run `coffer reencrypt` again)",
                r.kept.len()
            )
        }
    );
    Ok(())
}
