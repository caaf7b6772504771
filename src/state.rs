//! What every request handler shares: the pool, the settings, the vault's keyring, the
//! callback target policy and the sessions' clock. Kept apart from the wiring so that handlers do not import it.

use std::sync::Arc;

use crate::audit::access::AccessLog;
use crate::clock::Clock;
use crate::config::Settings;
use crate::db::DbPool;
use crate::gateway::password::HashPool;
use crate::gateway::target::AllowPrivate;
use crate::vault::config_cache::ConfigCache;
use crate::vault::keyring::Keyring;

pub struct AppState {
    pub db: DbPool,
    pub settings: Settings,
    pub keyring: Arc<Keyring>,
    /// The configuration API calls read, cached until its version moves.
    pub config: Arc<ConfigCache>,
    /// Private callback targets allowed (the setting, or loopback in demo mode).
    pub callback_policy: AllowPrivate,
    /// The clock console sessions are measured with.
    pub clock: Clock,
    /// Where people's passwords are hashed and checked (never on a database connection).
    pub hashes: Arc<HashPool>,
    /// Where reads of customer profiles are recorded (buffered, see `audit::access`).
    pub access: AccessLog,
}
