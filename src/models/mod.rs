//! Diesel rows and queries. Models talk to the database and nothing else; tenancy rules are
//! enforced by the services, which pass the caller's scope down as a path prefix.

pub mod api_user;
pub mod audit;
pub mod callback;
pub mod config_version;
pub mod connector;
pub mod container;
pub mod dashboard;
pub mod erasure;
pub mod idempotency_key;
pub mod lifecycle_run;
pub mod merchant;
pub mod monri;
pub mod payment_session;
pub mod profile;
pub mod reencrypt;
pub mod tenant;
pub mod throttle;
pub mod transaction;
pub mod transaction_query;
pub mod two_factor;
pub mod user;
pub mod vault_key;

pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
