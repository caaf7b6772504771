//! Wiring: opens the pool, runs migrations, seeds what is needed and binds the listener.

use std::net::TcpListener;

use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_session::storage::CookieSessionStore;
use actix_web::cookie::{Key, SameSite};
use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};

use crate::config::Settings;
use crate::db::DbPool;
use crate::vault::keyring::Keyring;

pub use crate::state::AppState;

pub struct Application {
    port: u16,
    server: Server,
    /// The metrics listener (`COFFER_METRICS_BIND`) and its port, when set.
    metrics: Option<(u16, Server)>,
    callbacks: CallbackWorker,
    clock: crate::clock::Clock,
    config: std::sync::Arc<crate::vault::config_cache::ConfigCache>,
    access: crate::audit::access::AccessLog,
    updater_pace: crate::vault::lifecycle::Pace,
}

/// What the callback worker is started with when the server runs.
struct CallbackWorker {
    db: DbPool,
    keyring: std::sync::Arc<Keyring>,
    config: crate::payments::callback_worker::WorkerConfig,
}

/// Opens the database and applies pending migrations.
pub fn open_database(settings: &Settings) -> anyhow::Result<DbPool> {
    open_database_reporting(settings, false)
}

/// `coffer migrate`: [`open_database`], showing the migrations' progress.
pub fn migrate(settings: &Settings) -> anyhow::Result<DbPool> {
    open_database_reporting(settings, true)
}

fn open_database_reporting(settings: &Settings, report: bool) -> anyhow::Result<DbPool> {
    settings.ensure_data_dir()?;
    let db = DbPool::connect_with(
        &settings.database_url(),
        settings.db_pool_size,
        settings.sqlite_group_commit,
    )?
    .with_inline_reads(settings.sqlite_inline_reads);
    let applied = db.run_migrations_reporting(report)?;
    if !applied.is_empty() {
        tracing::info!(?applied, "applied migrations");
    }
    // Entries from before the audit chain existed are chained once, under the start-up lock.
    let chained = crate::db::with_startup_lock(&mut *db.get()?, crate::audit::chain::chain_legacy)?;
    if chained > 0 {
        tracing::info!(
            chained,
            "chained the audit entries written before the audit chain"
        );
    }
    Ok(db)
}

/// Creates the first platform admin when there are no users; prints a generated password once.
/// Runs under the start-up lock (`db::with_startup_lock`), so that processes starting together
/// on one PostgreSQL database create the vault's keys, the admin and the demo data once.
pub fn bootstrap(db: &DbPool, settings: &Settings, demo: bool) -> anyhow::Result<Keyring> {
    let kek = crate::vault::kms::from_settings(settings)?;
    let mut conn = db.get()?;
    crate::db::with_startup_lock(&mut conn, |conn| {
        let keyring = Keyring::load_with(conn, kek)?;
        if demo {
            crate::console::demo::seed(conn, &keyring)?;
        }
        if let Some(pw) =
            crate::console::auth::bootstrap_admin(conn, settings.admin_password.as_deref())?
        {
            // Printed once, on the console of the operator who started Coffer; never logged.
            println!("Created platform admin 'admin' with generated password: {pw}");
        }
        Ok(keyring)
    })
}

impl Application {
    pub fn build(settings: Settings, demo: bool) -> anyhow::Result<Application> {
        Self::build_observed(settings, demo, crate::web::observe::Observer::default())
    }

    /// [`Application::build`] with an observer that sees every response it wants to
    /// (`web::observe`): the integration tests hold the API answers to the OpenAPI documents.
    pub fn build_observed(
        mut settings: Settings,
        demo: bool,
        observer: crate::web::observe::Observer,
    ) -> anyhow::Result<Application> {
        let callback_policy =
            crate::gateway::target::AllowPrivate::effective(settings.callback_allow_private, demo);
        let callbacks_config = crate::payments::callback_worker::WorkerConfig {
            poll: std::time::Duration::from_millis(settings.callback_poll_ms.clamp(10, 60_000)),
            backoff: crate::payments::callbacks::Backoff::from_settings(&settings)?,
            policy: callback_policy,
        };
        let db = open_database(&settings)?;
        let keyring = std::sync::Arc::new(bootstrap(&db, &settings, demo)?);
        let callbacks = CallbackWorker {
            db: db.clone(),
            keyring: keyring.clone(),
            config: callbacks_config,
        };
        let key_material = settings.session_key_material()?;
        let key = Key::derive_from(&key_material);
        let listener = TcpListener::bind(&settings.bind)?;
        let port = listener.local_addr()?.port();
        let metrics = match settings.metrics_bind.as_deref().map(str::trim) {
            Some(addr) if !addr.is_empty() => {
                let l = TcpListener::bind(addr).map_err(|e| {
                    anyhow::anyhow!("COFFER_METRICS_BIND {addr}: cannot listen: {e}")
                })?;
                let metrics_port = l.local_addr()?.port();
                Some((
                    metrics_port,
                    crate::web::telemetry::metrics_server(l, db.clone())?,
                ))
            }
            _ => None,
        };
        if settings.public_url.is_none() {
            // The bound address (port 0 resolved), so that payment page links work as is.
            settings.public_url = Some(format!("http://{}", listener.local_addr()?));
        }
        settings.check_public_url()?;
        let workers = settings.workers;
        let updater_pace = crate::vault::lifecycle::Pace {
            batch: settings.account_updater_batch,
            pause: std::time::Duration::from_millis(settings.account_updater_pause_ms),
        };
        let clock = crate::clock::Clock::default();
        let request_timeout = std::time::Duration::from_secs(settings.request_timeout_seconds);
        let max_connections = usize::try_from(settings.max_connections).unwrap_or(usize::MAX);
        let hashes = std::sync::Arc::new(settings.hash_pool());
        let config = std::sync::Arc::new(crate::vault::config_cache::ConfigCache::new());
        let access = crate::audit::access::AccessLog::start(
            db.clone(),
            std::time::Duration::from_millis(settings.access_audit_flush_ms),
        );
        let state = web::Data::new(AppState {
            access: access.clone(),
            hashes,
            db,
            settings,
            keyring,
            config: config.clone(),
            callback_policy,
            clock: clock.clone(),
        });
        let observer = web::Data::new(observer);
        let mut server = HttpServer::new(move || {
            let idle = actix_web::cookie::time::Duration::minutes(
                state.settings.session_idle_minutes.max(1),
            );
            let session = SessionMiddleware::builder(CookieSessionStore::default(), key.clone())
                .cookie_name("coffer_session".into())
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Strict)
                .cookie_secure(state.settings.cookie_secure)
                .session_lifecycle(
                    PersistentSession::default()
                        .session_ttl(idle)
                        .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                )
                .build();
            App::new()
                .app_data(state.clone())
                .app_data(observer.clone())
                .wrap(actix_web::middleware::from_fn(
                    crate::web::slow::body_deadline,
                ))
                .wrap(actix_web::middleware::from_fn(
                    crate::web::nul::reject_nul_urls,
                ))
                .wrap(session)
                .wrap(actix_web::middleware::from_fn(
                    crate::web::headers::security_headers,
                ))
                .wrap(actix_web::middleware::from_fn(crate::web::observe::observe))
                // Outermost: the request id, span and metrics cover everything inside.
                .wrap(actix_web::middleware::from_fn(
                    crate::web::telemetry::around,
                ))
                .configure(crate::web::configure)
        })
        // The request head must arrive within the timeout (the body's own deadline is
        // `web::slow`), and each worker holds at most `max_connections` connections.
        .client_request_timeout(request_timeout)
        .max_connections(max_connections)
        .listen(listener)?;
        if let Some(w) = workers {
            server = server.workers(w);
        }
        Ok(Application {
            port,
            server: server.run(),
            metrics,
            callbacks,
            clock,
            config,
            access,
            updater_pace,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of the metrics listener, when `COFFER_METRICS_BIND` is set.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|(p, _)| *p)
    }

    /// The clock this server's console sessions are measured with (tests move it forward).
    pub fn clock(&self) -> crate::clock::Clock {
        self.clock.clone()
    }

    /// Statements run by the process's pool (the tests count them per call).
    pub fn statements(&self) -> crate::db::StatementCount {
        self.callbacks.db.statements.clone()
    }

    /// The process's access audit queue (the tests flush it).
    pub fn access_log(&self) -> crate::audit::access::AccessLog {
        self.access.clone()
    }

    /// The process's configuration cache (the tests look at its version and entries).
    pub fn config_cache(&self) -> std::sync::Arc<crate::vault::config_cache::ConfigCache> {
        self.config.clone()
    }

    /// Serves until the server stops (a signal, or its handle), with the callback worker
    /// running beside it; the worker is stopped, and its attempts in flight finished, after.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let w = self.callbacks;
        let reencrypt = spawn_reencryption(w.db.clone(), w.keyring.clone());
        let updater = spawn_account_updater(w.db.clone(), w.keyring.clone(), self.updater_pace);
        let (task, stop) = crate::payments::callback_worker::spawn(w.db, w.keyring, w.config)
            .map_err(std::io::Error::other)?;
        let metrics = self.metrics.map(|(_, server)| {
            let handle = server.handle();
            (handle, tokio::spawn(server))
        });
        let r = self.server.await;
        // The metrics listener goes with the server (it stops on the same signal too).
        if let Some((handle, task)) = metrics {
            handle.stop(true).await;
            let _ = task.await;
        }
        let _ = stop.send(true);
        let _ = task.await;
        reencrypt.abort();
        updater.abort();
        // The reads answered before the stop are in the log before the process exits.
        let access = self.access;
        let _ = tokio::task::spawn_blocking(move || access.shutdown()).await;
        r
    }
}

/// Every process helps a running re-encryption job (`vault::reencrypt`): every two seconds, up
/// to one second of batches. Processes on one PostgreSQL database take turns on each batch.
fn spawn_reencryption(
    db: crate::db::DbPool,
    keyring: std::sync::Arc<crate::vault::keyring::Keyring>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
        loop {
            tick.tick().await;
            let k = keyring.clone();
            let r = db
                .run(move |c| {
                    crate::vault::reencrypt::run_some(c, &k, std::time::Duration::from_secs(1))
                        .map_err(crate::error::ServiceError::from)
                })
                .await;
            if let Err(e) = r {
                tracing::warn!(error = %e, "re-encryption batch failed; retrying");
            }
        }
    })
}

/// Every process carries on the account updater's running runs (`vault::lifecycle`): a slice
/// of batches of up to two seconds under the run's lease, then at once the next slice while
/// work is left, otherwise a look every second. Processes on one PostgreSQL database (and the
/// command) take turns on a run; a run whose process died is taken up when its lease expires.
fn spawn_account_updater(
    db: crate::db::DbPool,
    keyring: std::sync::Arc<crate::vault::keyring::Keyring>,
    pace: crate::vault::lifecycle::Pace,
) -> tokio::task::JoinHandle<()> {
    let worker = format!("{}:updater", crate::ids::worker_name());
    tokio::spawn(async move {
        loop {
            let (k, w) = (keyring.clone(), worker.clone());
            let r = db
                .run(move |c| {
                    crate::vault::lifecycle::run_some(
                        c,
                        &k,
                        &w,
                        pace,
                        std::time::Duration::from_secs(2),
                    )
                })
                .await;
            match r {
                Ok(true) => tokio::task::yield_now().await,
                Ok(false) => tokio::time::sleep(std::time::Duration::from_secs(1)).await,
                Err(e) => {
                    tracing::warn!(error = %e, "account updater batch failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                }
            }
        }
    })
}
