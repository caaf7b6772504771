//! The customer-profile vault, one owner per rule: which container a connector uses and who may
//! reach a stored instrument (`sharing`), the keys that seal what is stored (`keyring`), and the
//! profiles and instruments themselves (`profiles`). Protocol-free: every API, the payment pages,
//! the console and the seeder call these functions.

pub mod config_cache;
pub mod events;
pub mod keyring;
pub mod kms;
pub mod lifecycle;
pub mod profiles;
pub mod reencrypt;
pub mod sharing;
