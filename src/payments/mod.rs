//! Payments, protocol-free: the engine (debit, preauthorize, capture, void, refund, register,
//! deregister), the hosted payment page and 3-D Secure sessions (`checkout`), payment.js card
//! tokens, and the callback outbox with its per-process delivery loop.

pub mod callback_worker;
pub mod callbacks;
pub mod card_tokens;
pub mod checkout;
pub mod engine;
pub mod error;
pub mod idempotency;
pub mod means;
pub mod request;
pub mod session_request;
pub mod sessions;
