//! Hosted payment page and 3-D Secure challenge sessions (`payment_sessions`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::payment_sessions;

pub const KIND_PAGE: &str = "page";
pub const KIND_CHALLENGE: &str = "challenge";
pub const OPEN: &str = "open";
pub const FINISHED: &str = "finished";
pub const EXPIRED: &str = "expired";

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = payment_sessions)]
pub struct PaymentSession {
    pub id: String,
    pub transaction_uuid: String,
    /// [`KIND_PAGE`] or [`KIND_CHALLENGE`].
    pub kind: String,
    /// SHA-256 (hex) of the secret token in the page's URL.
    pub token_hash: String,
    /// [`OPEN`], [`FINISHED`] or [`EXPIRED`].
    pub status: String,
    pub expires_at: NaiveDateTime,
    /// The known request fields finishing the payment needs (JSON of
    /// `payments::session_request::SessionRequest`, never the request body); empty once the
    /// session has ended.
    pub request: String,
    /// JSON: what the next step needs besides the request (no card data).
    pub state: String,
    /// A new card sealed by the vault (AAD: `id`), kept only while a challenge is open.
    pub sealed_card: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, s: &PaymentSession) -> QueryResult<()> {
    diesel::insert_into(payment_sessions::table)
        .values(s)
        .execute(conn)
        .map(|_| ())
}

pub fn find_by_hash(
    conn: &mut DbConnection,
    kind: &str,
    token_hash: &str,
) -> QueryResult<Option<PaymentSession>> {
    payment_sessions::table
        .filter(payment_sessions::token_hash.eq(token_hash))
        .filter(payment_sessions::kind.eq(kind))
        .select(PaymentSession::as_select())
        .first(conn)
        .optional()
}

/// Claims an open session for this write transaction: the row is locked (PostgreSQL) until the
/// transaction ends, and a concurrent claimant waits, then finds it no longer open. Returns
/// false when the session is not open (any more).
pub fn claim(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<bool> {
    diesel::update(
        payment_sessions::table
            .filter(payment_sessions::id.eq(id))
            .filter(payment_sessions::status.eq(OPEN)),
    )
    .set(payment_sessions::updated_at.eq(at))
    .execute(conn)
    .map(|n| n == 1)
}

/// Ends every open session of a transaction with `status`, dropping any sealed card and what it
/// kept of the request (customer data included).
pub fn close_all(
    conn: &mut DbConnection,
    transaction_uuid: &str,
    status: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        payment_sessions::table
            .filter(payment_sessions::transaction_uuid.eq(transaction_uuid))
            .filter(payment_sessions::status.eq(OPEN)),
    )
    .set((
        payment_sessions::status.eq(status),
        payment_sessions::sealed_card.eq(None::<String>),
        payment_sessions::request.eq(""),
        payment_sessions::updated_at.eq(at),
    ))
    .execute(conn)
}

/// Open sessions whose time is up (oldest first, at most `limit`).
pub fn due(conn: &mut DbConnection, now: NaiveDateTime, limit: i64) -> QueryResult<Vec<String>> {
    payment_sessions::table
        .filter(payment_sessions::status.eq(OPEN))
        .filter(payment_sessions::expires_at.le(now))
        .order(payment_sessions::expires_at.asc())
        .limit(limit)
        .select(payment_sessions::id)
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<PaymentSession>> {
    payment_sessions::table
        .find(id)
        .select(PaymentSession::as_select())
        .first(conn)
        .optional()
}

/// Open sessions whose kept request holds customer data: `(id, transaction_uuid, request)`.
pub fn open_with_customer(conn: &mut DbConnection) -> QueryResult<Vec<(String, String, String)>> {
    payment_sessions::table
        .filter(payment_sessions::status.eq(OPEN))
        .filter(payment_sessions::request.like("%\"customer\"%"))
        .select((
            payment_sessions::id,
            payment_sessions::transaction_uuid,
            payment_sessions::request,
        ))
        .load(conn)
}

/// Replaces what a session keeps of its request, if it is still open; returns 1 if it was.
pub fn set_open_request(conn: &mut DbConnection, id: &str, request: &str) -> QueryResult<usize> {
    diesel::update(
        payment_sessions::table
            .filter(payment_sessions::id.eq(id))
            .filter(payment_sessions::status.eq(OPEN)),
    )
    .set(payment_sessions::request.eq(request))
    .execute(conn)
}
