//! Use cases. Each takes a connection and the caller, enforces the rules (tenancy, roles),
//! owns its transaction and records the audit entry in the same transaction.

pub mod audit;
pub mod auth;
pub mod callback_worker;
pub mod callbacks;
pub mod card_tokens;
pub mod checkout;
pub mod connectors;
pub mod containers;
pub mod demo;
pub mod keyring;
pub mod merchants;
pub mod monri;
pub mod profiles_api;
pub mod sharing;
pub mod tenants;
pub mod transactions;
pub mod transactions_view;
pub mod users;
