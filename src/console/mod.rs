//! The console's use cases. Each takes a connection and the caller, enforces the rules (tenancy,
//! roles), owns its transaction and records the audit entry in the same transaction.

pub mod auth;
pub mod connectors;
pub mod containers;
pub mod demo;
pub mod home;
pub mod impact;
pub mod keys;
pub mod merchants;
pub mod profile_search;
pub mod tenants;
pub mod transactions_view;
pub mod two_factor;
pub mod users;
