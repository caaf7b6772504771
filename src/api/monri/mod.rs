//! The Monri-compatible Customers API v2: WP3 digest and OAuth Bearer authentication, Monri's
//! JSON shapes and its `{"status":"invalid-request","message"}` errors, over the same profiles.

pub mod customers;
pub mod handlers;

pub use handlers::*;
