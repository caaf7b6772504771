//! The IXOPAY-compatible APIs: Transaction API v3, Customer Profiles API v3, the Status API and
//! payment.js tokenization. Authentication, signatures, wire formats and the mapping of the
//! protocol-free outcomes and errors below to IXOPAY's JSON answers.

pub mod auth;
pub mod customer_profiles;
pub mod error;
pub mod profiles;
pub mod status;
pub mod tokenize;
pub mod transactions;
