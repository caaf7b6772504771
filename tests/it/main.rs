//! One integration-test binary. Every test spawns the real app on a free port against a fresh
//! SQLite file, or a fresh PostgreSQL database when COFFER_TEST_DATABASE_URL is set.

mod bao;
mod helpers;
mod server;

mod a11y;
mod abuse;
mod access_audit;
mod api_monri;
mod api_profiles;
mod api_transactions;
mod audit_trail;
mod browser;
mod browser_checkout;
mod browser_console;
mod callbacks;
mod card_leaks;
mod checkout;
mod compat;
mod confirmations;
mod console;
mod console_design;
mod containers;
mod crash;
mod deactivation;
mod foundation;
mod fuzz;
mod group_commit;
mod home;
mod hygiene;
mod idempotency;
mod identity;
mod isolation;
mod layering;
mod migrations;
mod multiprocess;
mod openapi;
mod routes;
mod rules_console;
mod search;
mod sessions;
mod sharing_paths;
mod speed;
mod tokenize;
mod transit;
mod tx_console;
