// TEMPORARY STUB (not committed): replaced by the helper-tokenize branch.
use crate::api::error::ApiError;
use crate::db::DbConnection;
use crate::gateway::card::CardData;
use crate::services::keyring::Keyring;
pub struct ConsumedCard {
    pub card: CardData,
    pub cvv: String,
    pub card_holder: Option<String>,
    pub fingerprint: String,
}
pub fn consume(
    _c: &mut DbConnection,
    _k: &Keyring,
    _id: &str,
    _t: &str,
    _now: chrono::DateTime<chrono::Utc>,
) -> Result<ConsumedCard, ApiError> {
    Err(ApiError::invalid("stub"))
}
