//! Pure, database-free building blocks of the payment gateway: request
//! signatures, machine credentials, envelope encryption, card and IBAN
//! validation, the processor simulator, money amounts, identifier formats and
//! the IXOPAY error catalogue.
//!
//! Section numbers in the doc comments refer to `shared/spec/gateway-api.md`.

pub mod amount;
pub mod api_password;
pub mod card;
pub mod errors;
pub mod ids;
pub mod json;
pub mod pan_scan;
pub mod password;
pub mod signature;
pub mod simulator;
pub mod target;
pub mod totp;
pub mod vault;
