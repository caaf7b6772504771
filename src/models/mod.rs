//! Diesel rows and queries. Models talk to the database and nothing else; tenancy rules are
//! enforced by the services, which pass the caller's scope down as a path prefix.

pub mod audit;
pub mod merchant;
pub mod tenant;
pub mod throttle;
pub mod user;

pub fn now() -> chrono::NaiveDateTime {
    chrono::Utc::now().naive_utc()
}
