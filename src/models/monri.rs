//! Rows of the Monri Customers API v2: OAuth access tokens (only their keyed hash), and the
//! queries the customer endpoints need beyond [`crate::models::profile`].

use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{instruments, monri_access_tokens, profiles};
use crate::models::profile::{Instrument, Profile};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = monri_access_tokens)]
pub struct AccessToken {
    /// Lowercase hex HMAC-SHA256 of the token under the vault's MAC key.
    pub token_hash: String,
    pub connector_id: String,
    /// Granted scopes, separated by single spaces.
    pub scopes: String,
    pub expires_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
}

pub fn insert_token(conn: &mut DbConnection, t: &AccessToken) -> QueryResult<()> {
    diesel::insert_into(monri_access_tokens::table)
        .values(t)
        .execute(conn)
        .map(|_| ())
}

pub fn find_token(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<AccessToken>> {
    monri_access_tokens::table
        .find(hash)
        .select(AccessToken::as_select())
        .first(conn)
        .optional()
}

/// Removes tokens that expired before `now` (indexed by expiry; called when issuing).
pub fn delete_expired_tokens(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(monri_access_tokens::table.filter(monri_access_tokens::expires_at.lt(now)))
        .execute(conn)
}

/// Revokes every token of a connector (its merchant key was rotated).
pub fn delete_tokens_of(conn: &mut DbConnection, connector_id: &str) -> QueryResult<usize> {
    diesel::delete(
        monri_access_tokens::table.filter(monri_access_tokens::connector_id.eq(connector_id)),
    )
    .execute(conn)
}

/// A profile of the container by its Monri uuid, tombstones included.
pub fn by_uuid(
    conn: &mut DbConnection,
    container_id: &str,
    uuid: &str,
) -> QueryResult<Option<Profile>> {
    // The hot read of Monri GET /v2/customers/{uuid}: on the inner connection (`on_inner`).
    crate::on_inner!(conn, c => profiles::table
        .filter(profiles::uuid.eq(uuid))
        .filter(profiles::container_id.eq(container_id))
        .select(Profile::as_select())
        .first(c)
        .optional())
}

/// [`by_uuid`] with the configuration version read in the same statement (a scalar subquery, as
/// `profile::with_instruments` reads it): what a Monri GET of one customer confirms its cached
/// configuration with.
pub fn by_uuid_with_version(
    conn: &mut DbConnection,
    container_id: &str,
    uuid: &str,
) -> QueryResult<Option<(Option<i64>, Profile)>> {
    crate::on_inner!(conn, c => profiles::table
        .filter(profiles::uuid.eq(uuid))
        .filter(profiles::container_id.eq(container_id))
        .select((
crate::models::config_version::read_with(),
            Profile::as_select(),
        ))
        .first(c)
        .optional())
}

/// Takes the row lock of a profile until the end of the transaction (a no-op update), so that
/// concurrent writers of one profile, through either API, are serialized. Returns the number of
/// rows matched (0: no such profile in the container).
pub fn lock_by_uuid(conn: &mut DbConnection, container_id: &str, uuid: &str) -> QueryResult<usize> {
    diesel::update(
        profiles::table
            .filter(profiles::uuid.eq(uuid))
            .filter(profiles::container_id.eq(container_id)),
    )
    .set(profiles::updated_at.eq(profiles::updated_at))
    .execute(conn)
}

/// One page of the container's live profiles, newest first.
pub fn page(
    conn: &mut DbConnection,
    container_id: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Profile>> {
    profiles::table
        .filter(profiles::container_id.eq(container_id))
        .filter(profiles::deleted_at.is_null())
        .order((profiles::created_at.desc(), profiles::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Profile::as_select())
        .load(conn)
}

/// One page of a profile's card instruments, newest first (one query).
pub fn cards_page(
    conn: &mut DbConnection,
    profile_id: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<Instrument>> {
    instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .filter(instruments::method.eq("card"))
        .order((instruments::created_at.desc(), instruments::id.desc()))
        .limit(limit)
        .offset(offset)
        .select(Instrument::as_select())
        .load(conn)
}

/// One page of the card instruments of every live profile of a container, newest first (one
/// query), each with its profile's Monri uuid.
pub fn container_cards_page(
    conn: &mut DbConnection,
    container_id: &str,
    limit: i64,
    offset: i64,
) -> QueryResult<Vec<(Instrument, String, String)>> {
    instruments::table
        .inner_join(profiles::table)
        .filter(profiles::container_id.eq(container_id))
        .filter(profiles::deleted_at.is_null())
        .filter(instruments::method.eq("card"))
        .order((instruments::created_at.desc(), instruments::id.desc()))
        .limit(limit)
        .offset(offset)
        .select((
            Instrument::as_select(),
            profiles::uuid,
            profiles::profile_guid,
        ))
        .load(conn)
}

/// Turns a profile into a tombstone: its instruments (and so their sealed card data) are
/// deleted, and the customer data, email and customerIdentification are overwritten. The
/// identification becomes `deleted:<uuid>`, longer than IXOPAY's 36 characters, so it frees
/// the original value for a new registration and can never be asked for through IXOPAY.
pub fn erase(conn: &mut DbConnection, p: &Profile, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::delete(instruments::table.filter(instruments::profile_id.eq(&p.id))).execute(conn)?;
    diesel::update(profiles::table.find(&p.id))
        .set((
            profiles::customer_identification.eq(format!("deleted:{}", p.uuid)),
            profiles::customer.eq("{}"),
            profiles::email.eq(None::<String>),
            profiles::deleted_at.eq(Some(at)),
            profiles::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Writes a v2 update: identification, customer JSON and email.
pub fn update_customer(
    conn: &mut DbConnection,
    id: &str,
    identification: &str,
    customer: &str,
    email: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(profiles::table.find(id))
        .set((
            profiles::customer_identification.eq(identification),
            profiles::customer.eq(customer),
            profiles::email.eq(email),
            profiles::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Access tokens of connector `connector_id` that have not expired at `now`.
pub fn live_tokens_of(
    conn: &mut DbConnection,
    connector_id: &str,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    monri_access_tokens::table
        .filter(monri_access_tokens::connector_id.eq(connector_id))
        .filter(monri_access_tokens::expires_at.gt(now))
        .count()
        .get_result(conn)
}
