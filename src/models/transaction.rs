use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{card_tokens, transactions};
use crate::domain::{TxKind, TxStatus};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = transactions)]
pub struct Transaction {
    /// 20 lowercase hex characters.
    pub uuid: String,
    pub connector_id: String,
    pub merchant_id: String,
    pub tenant_path: String,
    pub merchant_transaction_id: String,
    pub purchase_id: String,
    /// DEBIT, PREAUTHORIZE, CAPTURE, VOID, REGISTER, DEREGISTER, REFUND.
    pub transaction_type: String,
    /// SUCCESS, ERROR or PENDING.
    pub status: String,
    pub payment_method: String,
    /// Minor units of `currency`.
    pub amount: Option<i64>,
    pub currency: Option<String>,
    pub reference_uuid: Option<String>,
    pub instrument_id: Option<String>,
    pub profile_id: Option<String>,
    pub payment_token: Option<String>,
    pub captured_amount: i64,
    pub refunded_amount: i64,
    pub voided: bool,
    pub error_code: Option<i32>,
    pub error_message: Option<String>,
    /// JSON: returnData.cardData / ibanData shown to the merchant (masked), plus the sealed
    /// card or IBAN under `vault` when the transaction registered one without a profile.
    pub card_summary: Option<String>,
    /// `sha512` or `md5`: the body-hash flavour of the request, reused for its callbacks.
    pub body_hash: String,
    /// JSON: request fields kept for status answers and callbacks (URLs, extraData, customer).
    pub extra: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl Transaction {
    /// The typed status; a value no version of Coffer writes reads as `Error`.
    pub fn status(&self) -> TxStatus {
        TxStatus::parse(&self.status).unwrap_or(TxStatus::Error)
    }
    pub fn set_status(&mut self, s: TxStatus) {
        self.status = s.as_str().to_string();
    }
    /// The typed transaction type (`None` only for a row no version of Coffer writes).
    pub fn kind(&self) -> Option<TxKind> {
        TxKind::from_stored(&self.transaction_type)
    }
}

pub fn insert(conn: &mut DbConnection, t: &Transaction) -> QueryResult<()> {
    diesel::insert_into(transactions::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, uuid: &str) -> QueryResult<Option<Transaction>> {
    transactions::table
        .find(uuid)
        .select(Transaction::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_merchant_tx_id(
    conn: &mut DbConnection,
    connector_id: &str,
    id: &str,
) -> QueryResult<Option<Transaction>> {
    transactions::table
        .filter(transactions::connector_id.eq(connector_id))
        .filter(transactions::merchant_transaction_id.eq(id))
        .select(Transaction::as_select())
        .first(conn)
        .optional()
}

pub fn add_captured(
    conn: &mut DbConnection,
    uuid: &str,
    delta: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(transactions::table.find(uuid))
        .set((
            transactions::captured_amount.eq(transactions::captured_amount + delta),
            transactions::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn add_refunded(
    conn: &mut DbConnection,
    uuid: &str,
    delta: i64,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(transactions::table.find(uuid))
        .set((
            transactions::refunded_amount.eq(transactions::refunded_amount + delta),
            transactions::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn set_voided(conn: &mut DbConnection, uuid: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(transactions::table.find(uuid))
        .set((
            transactions::voided.eq(true),
            transactions::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Locks the transaction row until the end of the transaction (capture/void/refund arithmetic).
pub fn lock(conn: &mut DbConnection, uuid: &str) -> QueryResult<usize> {
    diesel::update(transactions::table.find(uuid))
        .set(transactions::updated_at.eq(transactions::updated_at))
        .execute(conn)
}

pub fn set_card_summary(conn: &mut DbConnection, uuid: &str, summary: &str) -> QueryResult<usize> {
    diesel::update(transactions::table.find(uuid))
        .set(transactions::card_summary.eq(summary))
        .execute(conn)
}

/// A payment.js card token: the card number and CVV sealed together, single-use, short-lived.
#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = card_tokens)]
pub struct CardToken {
    /// `ix::` + 20 alphanumerics.
    pub token: String,
    /// The connector whose public integration key created it: the only one that may use it.
    pub connector_id: String,
    /// Sealed JSON `{"pan","cvv"}` (AAD: the token).
    pub sealed: String,
    pub brand: String,
    pub first_six: String,
    pub last_four: String,
    pub exp_month: i32,
    pub exp_year: i32,
    pub card_holder: Option<String>,
    pub fingerprint: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert_card_token(conn: &mut DbConnection, t: &CardToken) -> QueryResult<()> {
    diesel::insert_into(card_tokens::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find_card_token(conn: &mut DbConnection, token: &str) -> QueryResult<Option<CardToken>> {
    card_tokens::table
        .find(token)
        .select(CardToken::as_select())
        .first(conn)
        .optional()
}

/// Deletes the token; returns 1 when this call consumed it (0 when someone else did first).
pub fn delete_card_token(conn: &mut DbConnection, token: &str) -> QueryResult<usize> {
    diesel::delete(card_tokens::table.find(token)).execute(conn)
}

/// Removes expired tokens (and with them their CVVs).
pub fn purge_expired_card_tokens(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::delete(card_tokens::table.filter(card_tokens::expires_at.lt(now))).execute(conn)
}

/// Moves a PENDING transaction to its final state (status, error, instrument, profile, token,
/// summary). Returns false when it was no longer PENDING (finished concurrently).
pub fn finish_pending(conn: &mut DbConnection, t: &Transaction) -> QueryResult<bool> {
    diesel::update(
        transactions::table
            .filter(transactions::uuid.eq(&t.uuid))
            .filter(transactions::status.eq(TxStatus::Pending.as_str())),
    )
    .set((
        transactions::status.eq(&t.status),
        transactions::error_code.eq(t.error_code),
        transactions::error_message.eq(&t.error_message),
        transactions::instrument_id.eq(&t.instrument_id),
        transactions::profile_id.eq(&t.profile_id),
        transactions::payment_token.eq(&t.payment_token),
        transactions::payment_method.eq(&t.payment_method),
        transactions::card_summary.eq(&t.card_summary),
        transactions::extra.eq(&t.extra),
        transactions::updated_at.eq(t.updated_at),
    ))
    .execute(conn)
    .map(|n| n == 1)
}
