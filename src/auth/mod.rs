pub mod csrf;
pub mod guards;
pub mod password;
pub mod session;
