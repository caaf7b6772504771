use chrono::NaiveDateTime;
use diesel::prelude::*;

use crate::db::DbConnection;
use crate::db::schema::{connectors, instruments, profiles};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = profiles)]
pub struct Profile {
    /// Internal id (UUIDv7): keyset pagination orders by it.
    pub id: String,
    pub container_id: String,
    pub profile_guid: String,
    pub customer_identification: String,
    /// Lowercased copy of the customer's email, for search.
    pub email: Option<String>,
    /// The customer data (IXOPAY `customerData` fields) as JSON.
    pub customer: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    /// The Monri Customers API v2 uuid (UUID v4, hyphenated), generated for every profile.
    pub uuid: String,
    /// Set when the customer was deleted through the Monri API: the row is then a tombstone
    /// (no personal data, no instruments) that every other lookup ignores.
    pub deleted_at: Option<NaiveDateTime>,
}

/// A new Monri-style customer uuid (UUID v4, lowercase, hyphenated).
pub fn new_uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = instruments)]
pub struct Instrument {
    pub id: String,
    pub profile_id: String,
    pub connector_id: String,
    pub payment_token: String,
    /// `card` or `iban`.
    pub method: String,
    pub brand: Option<String>,
    pub card_holder: Option<String>,
    pub first_six: Option<String>,
    pub last_four: Option<String>,
    pub exp_month: Option<i32>,
    pub exp_year: Option<i32>,
    pub iban_masked: Option<String>,
    pub bic: Option<String>,
    pub mandate_id: Option<String>,
    /// Keyed hash of the card number or IBAN: the same card twice is found without decrypting.
    pub fingerprint: String,
    /// The card number or IBAN, sealed by the vault.
    pub vault_record: String,
    pub is_preferred: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, p: &Profile) -> QueryResult<()> {
    diesel::insert_into(profiles::table)
        .values(p)
        .execute(conn)
        .map(|_| ())
}

/// A live profile by id (tombstones are not found).
pub fn find(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Profile>> {
    profiles::table
        .find(id)
        .filter(profiles::deleted_at.is_null())
        .select(Profile::as_select())
        .first(conn)
        .optional()
}

/// A live profile by profileGuid (tombstones are not found).
pub fn find_by_guid(conn: &mut DbConnection, guid: &str) -> QueryResult<Option<Profile>> {
    profiles::table
        .filter(profiles::profile_guid.eq(guid))
        .filter(profiles::deleted_at.is_null())
        .select(Profile::as_select())
        .first(conn)
        .optional()
}

pub fn find_by_identification(
    conn: &mut DbConnection,
    container_id: &str,
    ident: &str,
) -> QueryResult<Option<Profile>> {
    profiles::table
        .filter(profiles::container_id.eq(container_id))
        .filter(profiles::customer_identification.eq(ident))
        .filter(profiles::deleted_at.is_null())
        .select(Profile::as_select())
        .first(conn)
        .optional()
}

/// How to narrow a container's profile list.
pub enum Search<'a> {
    All,
    /// Exact customerIdentification, profileGuid, Monri uuid or (lowercased) email.
    Term(&'a str),
}

/// One page of a container's profiles, newest first, strictly older than `before` (an id).
///
/// A search term runs as three lookups, one per column, each served by its own index
/// (`(container_id, customer_identification)`, `profile_guid`, `(container_id, email, id)`), and
/// the pages are merged here. One `… AND (a = ? OR b = ? OR c = ?) ORDER BY id DESC` makes SQLite
/// walk the container's whole `(container_id, id)` index instead (bench/: 31 searches/s with
/// 100 000 profiles).
pub fn page(
    conn: &mut DbConnection,
    container_id: &str,
    search: Search<'_>,
    before: Option<&str>,
    limit: i64,
) -> QueryResult<Vec<Profile>> {
    let newest = |conn: &mut DbConnection, column: Option<(Column, String)>| {
        let mut q = profiles::table
            .filter(profiles::container_id.eq(container_id))
            .filter(profiles::deleted_at.is_null())
            .select(Profile::as_select())
            .into_boxed();
        q = match column {
            None => q,
            Some((Column::Identification, v)) => q.filter(profiles::customer_identification.eq(v)),
            Some((Column::Guid, v)) => q.filter(profiles::profile_guid.eq(v)),
            Some((Column::Email, v)) => q.filter(profiles::email.eq(v)),
            Some((Column::Uuid, v)) => q.filter(profiles::uuid.eq(v)),
        };
        if let Some(b) = before {
            q = q.filter(profiles::id.lt(b.to_string()));
        }
        q.order(profiles::id.desc()).limit(limit).load(conn)
    };
    let Search::Term(term) = search else {
        return newest(conn, None);
    };
    let mut rows = newest(conn, Some((Column::Identification, term.to_string())))?;
    rows.extend(newest(conn, Some((Column::Guid, term.to_string())))?);
    rows.extend(newest(conn, Some((Column::Email, term.to_lowercase())))?);
    rows.extend(newest(conn, Some((Column::Uuid, term.to_lowercase())))?);
    rows.sort_by(|a, b| b.id.cmp(&a.id));
    rows.dedup_by(|a, b| a.id == b.id);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

/// The columns a search term is compared with.
enum Column {
    Identification,
    Guid,
    Email,
    /// The Monri v2 uuid (unique index).
    Uuid,
}

pub fn instruments_of(
    conn: &mut DbConnection,
    profile_id: &str,
) -> QueryResult<Vec<(Instrument, String)>> {
    instruments::table
        .inner_join(connectors::table)
        .filter(instruments::profile_id.eq(profile_id))
        .select((Instrument::as_select(), connectors::name))
        .order(instruments::created_at.asc())
        .load(conn)
}

pub fn count_instruments_of_connector(
    conn: &mut DbConnection,
    connector_id: &str,
) -> QueryResult<i64> {
    instruments::table
        .filter(instruments::connector_id.eq(connector_id))
        .count()
        .get_result(conn)
}

/// Deletes a profile with its instruments (the instrument rows carry the sealed card data).
pub fn delete_with_instruments(conn: &mut DbConnection, id: &str) -> QueryResult<usize> {
    diesel::delete(instruments::table.filter(instruments::profile_id.eq(id))).execute(conn)?;
    diesel::delete(profiles::table.find(id)).execute(conn)
}

// ---- used by the Transaction API ----

/// The instrument with this payment token, with its (live) profile.
pub fn instrument_by_token(
    conn: &mut DbConnection,
    token: &str,
) -> QueryResult<Option<(Instrument, Profile)>> {
    instruments::table
        .inner_join(profiles::table)
        .filter(instruments::payment_token.eq(token))
        .filter(profiles::deleted_at.is_null())
        .select((Instrument::as_select(), Profile::as_select()))
        .first(conn)
        .optional()
}

pub fn find_instrument(conn: &mut DbConnection, id: &str) -> QueryResult<Option<Instrument>> {
    instruments::table
        .find(id)
        .select(Instrument::as_select())
        .first(conn)
        .optional()
}

pub fn instrument_by_fingerprint(
    conn: &mut DbConnection,
    profile_id: &str,
    fp: &str,
) -> QueryResult<Option<Instrument>> {
    instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .filter(instruments::fingerprint.eq(fp))
        .select(Instrument::as_select())
        .first(conn)
        .optional()
}

pub fn insert_instrument(conn: &mut DbConnection, i: &Instrument) -> QueryResult<()> {
    diesel::insert_into(instruments::table)
        .values(i)
        .execute(conn)
        .map(|_| ())
}

pub fn update_instrument_expiry(
    conn: &mut DbConnection,
    id: &str,
    m: i32,
    y: i32,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(instruments::table.find(id))
        .set((
            instruments::exp_month.eq(Some(m)),
            instruments::exp_year.eq(Some(y)),
            instruments::updated_at.eq(at),
        ))
        .execute(conn)
}

pub fn has_preferred(conn: &mut DbConnection, profile_id: &str) -> QueryResult<bool> {
    let n: i64 = instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .filter(instruments::is_preferred.eq(true))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Makes `instrument_id` the one preferred instrument of the profile. When that instrument is
/// no longer there (deleted since it was read), nothing changes and the answer is `false`: the
/// profile keeps the preferred instrument it has rather than being left without one.
pub fn set_preferred(
    conn: &mut DbConnection,
    profile_id: &str,
    instrument_id: &str,
) -> QueryResult<bool> {
    let n = diesel::update(
        instruments::table
            .filter(instruments::id.eq(instrument_id))
            .filter(instruments::profile_id.eq(profile_id)),
    )
    .set(instruments::is_preferred.eq(true))
    .execute(conn)?;
    if n == 0 {
        return Ok(false);
    }
    diesel::update(
        instruments::table
            .filter(instruments::profile_id.eq(profile_id))
            .filter(instruments::id.ne(instrument_id))
            .filter(instruments::is_preferred.eq(true)),
    )
    .set(instruments::is_preferred.eq(false))
    .execute(conn)?;
    Ok(true)
}

/// The container of a profile (live or tombstone), to lock before changing its instruments.
/// The guid of a profile (tombstones included), by id.
pub fn guid_of(conn: &mut DbConnection, profile_id: &str) -> QueryResult<Option<String>> {
    profiles::table
        .find(profile_id)
        .select(profiles::profile_guid)
        .first(conn)
        .optional()
}

pub fn container_id_of(conn: &mut DbConnection, profile_id: &str) -> QueryResult<Option<String>> {
    profiles::table
        .find(profile_id)
        .select(profiles::container_id)
        .first(conn)
        .optional()
}

pub fn update_customer(
    conn: &mut DbConnection,
    id: &str,
    customer: &str,
    email: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(profiles::table.find(id))
        .set((
            profiles::customer.eq(customer),
            profiles::email.eq(email),
            profiles::updated_at.eq(at),
        ))
        .execute(conn)
}

/// Replaces the customer data only if it is still `expected`: the number of rows changed.
pub fn replace_customer_if(
    conn: &mut DbConnection,
    id: &str,
    expected: &str,
    customer: &str,
    email: Option<&str>,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        profiles::table
            .filter(profiles::id.eq(id))
            .filter(profiles::customer.eq(expected)),
    )
    .set((
        profiles::customer.eq(customer),
        profiles::email.eq(email),
        profiles::updated_at.eq(at),
    ))
    .execute(conn)
}

pub fn touch(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(profiles::table.find(id))
        .set(profiles::updated_at.eq(at))
        .execute(conn)
}

/// Deletes an instrument; if it was the preferred one, the oldest remaining becomes preferred.
/// `i` must have been read with the profile's container locked (`container::lock`), as every
/// change of a profile's instruments does: otherwise `is_preferred` may be stale and a
/// concurrent change can leave the profile without a preferred instrument (PostgreSQL).
pub fn delete_instrument(conn: &mut DbConnection, i: &Instrument) -> QueryResult<()> {
    diesel::delete(instruments::table.find(&i.id)).execute(conn)?;
    if i.is_preferred {
        let next: Option<String> = instruments::table
            .filter(instruments::profile_id.eq(&i.profile_id))
            .order(instruments::created_at.asc())
            .select(instruments::id)
            .first(conn)
            .optional()?;
        if let Some(n) = next {
            set_preferred(conn, &i.profile_id, &n)?;
        }
    }
    Ok(())
}

/// Inserts many profiles and instruments with multi-row statements (bulk import). Run on the
/// concrete connection: `MultiConnection` cannot build a multi-row insert.
pub fn insert_many(conn: &mut DbConnection, ps: &[Profile], is: &[Instrument]) -> QueryResult<()> {
    match conn {
        DbConnection::Sqlite(c) => {
            diesel::insert_into(profiles::table).values(ps).execute(c)?;
            diesel::insert_into(instruments::table)
                .values(is)
                .execute(c)?;
        }
        DbConnection::Postgresql(c) => {
            diesel::insert_into(profiles::table).values(ps).execute(c)?;
            diesel::insert_into(instruments::table)
                .values(is)
                .execute(c)?;
        }
    }
    Ok(())
}
