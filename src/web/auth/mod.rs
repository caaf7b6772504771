//! The console's HTTP side of authentication: the typed session, CSRF tokens and the
//! `CurrentUser` extractor. Password hashing itself is `gateway::password`.

pub mod csrf;
pub mod guards;
pub mod return_to;
pub mod session;
