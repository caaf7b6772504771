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
    /// with COFFER_KMS=transit, rotate the Transit key and rewrap the keys under its new version.
    /// Records keep naming their data keys, so nothing else is re-encrypted.
    RotateVaultKey {
        /// Generate the new master key and print it once (instead of COFFER_NEW_VAULT_KEY).
        #[arg(long)]
        generate: bool,
    },
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
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let cli = Cli::parse_global();
    match cli.command.unwrap_or(Command::Serve { demo: false }) {
        Command::Serve { demo } => {
            let app = Application::build(cli.settings, demo)?;
            tracing::info!(port = app.port(), "Coffer listening");
            app.run_until_stopped().await?;
        }
        Command::Migrate => {
            open_database(&cli.settings)?;
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
        Command::LifecycleScan => {
            let db = open_database(&cli.settings)?;
            let mut conn = db.get()?;
            let today = chrono::Utc::now().date_naive();
            let mut progress = coffer::vault::lifecycle::LogProgress::new("expiry scan");
            let r = coffer::vault::lifecycle::scan_expiry(&mut conn, today, &mut progress)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
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
            let mut progress = coffer::vault::lifecycle::LogProgress::new("account updater");
            let r = coffer::vault::lifecycle::run_account_updater(
                &mut conn,
                &keyring,
                &coffer::domain::Actor::system(),
                &c,
                &mut progress,
            )
            .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!(
                "account updater{}: {} cards, {} reissued, {} replaced, {} closed",
                if r.resumed { " (continued)" } else { "" },
                r.seen,
                r.reissued,
                r.replaced,
                r.closed
            );
        }
        Command::RotateVaultKey { generate } => rotate_vault_key(&cli.settings, generate)?,
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
         those need it."
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
    Ok(())
}
