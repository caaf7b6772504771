use chrono::NaiveDateTime;
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};

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
    /// When `instrument.expiring` was enqueued for the current expiry (cleared when it changes).
    pub expiry_noticed_at: Option<NaiveDateTime>,
    /// When the expiry scan found the card expired (cleared when the expiry changes).
    pub expired_at: Option<NaiveDateTime>,
    /// What the (simulated) account updater last did: `reissued` or `replaced`.
    pub card_update_status: Option<String>,
    pub card_updated_at: Option<NaiveDateTime>,
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

/// How a request names a profile inside a container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key<'a> {
    Guid(&'a str),
    Identification(&'a str),
    /// The Monri Customers API's `uuid`.
    Uuid(&'a str),
}

/// The live profile of `container_id` that `key` names, with its instruments oldest first: one
/// statement (a left join, so a profile without instruments is found too), run on the inner
/// connection ([`crate::on_inner`]). The hot read of getProfile.
///
/// Each row also carries the configuration version (`config_version`, a scalar subquery), read
/// in the same statement and so from the same snapshot of the database as the profile: the
/// caller can confirm an unchecked cached configuration with it instead of reading the version
/// in a statement of its own (`vault::config_cache::confirm`).
pub fn with_instruments(
    conn: &mut DbConnection,
    container_id: &str,
    key: Key<'_>,
) -> QueryResult<Option<(i64, Profile, Vec<Instrument>)>> {
    // A macro, not a value: `as_select` is typed by the backend, which each arm of `on_inner`
    // has its own of.
    macro_rules! base {
        () => {
            profiles::table
                .left_join(instruments::table)
                .filter(profiles::container_id.eq(container_id))
                .filter(profiles::deleted_at.is_null())
                .select((
                    crate::models::config_version::read_with(),
                    Profile::as_select(),
                    Option::<Instrument>::as_select(),
                ))
        };
    }
    let rows: Vec<(Option<i64>, Profile, Option<Instrument>)> = match key {
        Key::Guid(g) => {
            crate::on_inner!(conn, c => base!().filter(profiles::profile_guid.eq(g)).load(c))?
        }
        Key::Identification(i) => crate::on_inner!(conn, c => base!()
            .filter(profiles::customer_identification.eq(i))
            .load(c))?,
        Key::Uuid(u) => crate::on_inner!(conn, c => base!().filter(profiles::uuid.eq(u)).load(c))?,
    };
    let mut rows = rows.into_iter();
    let Some((version, p, first)) = rows.next() else {
        return Ok(None);
    };
    let mut list: Vec<Instrument> = first.into_iter().collect();
    list.extend(rows.filter_map(|(_, _, i)| i));
    // Sorted here: an ORDER BY made SQLite build a temporary B-tree for a handful of rows on
    // every call (EXPLAIN QUERY PLAN: "USE TEMP B-TREE FOR ORDER BY").
    list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    // The row always exists (migration 000020 inserts it; nothing deletes it).
    Ok(Some((version.unwrap_or_default(), p, list)))
}

/// Which containers a profile search looks in.
#[derive(Debug, Clone, Copy)]
pub enum Within<'a> {
    /// Every container (a platform admin).
    All,
    /// These containers only.
    Containers(&'a [String]),
}

/// Where a page of profiles starts: keyset cursors over the profile id (UUIDv7, newest last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cursor {
    /// The newest profiles.
    Newest,
    /// Profiles strictly older than this id (the "Older" link).
    Before(String),
    /// Profiles strictly newer than this id (the "Newer" link).
    After(String),
}

/// One way a search term matches a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Match {
    /// customerIdentification starts with this (as stored, case-sensitive).
    IdentificationPrefix(String),
    /// The (lowercased) email starts with this (lowercased by the caller).
    EmailPrefix(String),
    /// The profileGuid, exactly.
    Guid(String),
    /// The Monri v2 uuid, exactly.
    Uuid(String),
    /// A stored card's last four digits.
    LastFour(String),
}

/// The least string greater than every string that starts with `prefix` (in byte order, which
/// is code point order for UTF-8), or `None` when there is none.
fn prefix_end(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = (u32::from(last) + 1..=0x10FFFF).find_map(char::from_u32);
        if let Some(n) = next {
            chars.push(n);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// How many profiles a prefix may match before it is "broad": its page is then read in id
/// order (stopping at the page's end) instead of sorting every match.
pub const BROAD_PREFIX: i64 = 2000;

/// Which containers one query reads.
#[derive(Clone, Copy)]
enum Filter<'a> {
    All,
    One(&'a str),
}

/// One page of profiles matching any of `matches` (all live profiles when empty), newest
/// first for `Newest`/`Before` and oldest first for `After`, at most `limit` rows.
///
/// Every query is served by an index and reads about a page, whatever the data:
/// * the exact kinds are unique-index lookups (`profile_guid`, `uuid`);
/// * the last four are an `instruments(last_four, profile_id)` range, or, when more than
///   [`BROAD_PREFIX`] cards end so, a check of each profile read in id order;
/// * a prefix is a range of `(container_id, column)` (one container) or `(column, id)` (all),
///   sorted by id here when it holds at most [`BROAD_PREFIX`] profiles (a probe of the range
///   says), else read in id order off `(container_id, id)` or the primary key, filtered by the
///   prefix, stopping at the page's end (a broad prefix matches densely);
/// * several containers are read one by one (each in `(container_id, id)` order) and merged:
///   `container_id IN (…) ORDER BY id` would sort all their profiles.
///
/// One `… AND (a OR b OR …) ORDER BY id` would walk every profile instead.
pub fn search(
    conn: &mut DbConnection,
    within: Within<'_>,
    matches: &[Match],
    cursor: &Cursor,
    limit: i64,
) -> QueryResult<Vec<Profile>> {
    let each: Vec<Filter<'_>> = match within {
        Within::All => vec![Filter::All],
        Within::Containers(ids) => ids.iter().map(|id| Filter::One(id.as_str())).collect(),
    };
    let kinds: Vec<Option<&Match>> = if matches.is_empty() {
        vec![None]
    } else {
        matches.iter().map(Some).collect()
    };
    let mut rows = vec![];
    for m in kinds {
        match (m, within) {
            // Both are unique across containers: the one row is looked up by its value alone
            // and kept when it is in one of `ids`. (`container_id IN (…)` with as many
            // parameters as containers is a statement SQLite prepares anew on every page.)
            (Some(Match::Guid(_) | Match::Uuid(_)), Within::Containers(ids)) => {
                rows.extend(
                    one(conn, Filter::All, m, cursor, limit, true)?
                        .into_iter()
                        .filter(|p| ids.contains(&p.container_id)),
                );
            }
            _ => {
                for f in &each {
                    let indexed = match m {
                        Some(
                            Match::IdentificationPrefix(_)
                            | Match::EmailPrefix(_)
                            | Match::LastFour(_),
                        ) => probe(conn, *f, m)? <= BROAD_PREFIX,
                        _ => true,
                    };
                    rows.extend(one(conn, *f, m, cursor, limit, indexed)?);
                }
            }
        }
    }
    match cursor {
        Cursor::After(_) => rows.sort_by(|a, b| a.id.cmp(&b.id)),
        _ => rows.sort_by(|a, b| b.id.cmp(&a.id)),
    }
    rows.dedup_by(|a, b| a.id == b.id);
    rows.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(rows)
}

/// The profiles a filter and match select, narrowed (not yet ordered or paged); a prefix is
/// compared through its indexes when `indexed`, else so that no index of its column applies.
/// A macro, not a function: the boxed query is built for the backend of the inner connection
/// it runs on (each arm of [`crate::on_inner`]), so that it is neither rendered again through
/// `MultiConnection` on each execution nor held in a backend-neutral box.
macro_rules! matching {
    ($pg:expr, $f:expr, $m:expr, $indexed:expr) => {{
        let (pg, indexed, m): (bool, bool, Option<&Match>) = ($pg, $indexed, $m);
        let q = profiles::table
            .filter(profiles::deleted_at.is_null())
            .into_boxed();
        let q = match $f {
            Filter::All => q,
            Filter::One(id) => q.filter(profiles::container_id.eq(id)),
        };
        // On SQLite the indexed prefix is written with diesel's own comparisons (BINARY
        // collation is byte order already): a query holding a raw `sql` fragment is prepared
        // anew on every call (diesel does not cache it), and SQLite's parser was 41% of the
        // profile search page's CPU (`bench/results/perf/2026-12-03-sqlite-console_search.txt`).
        match m {
            None => q,
            Some(Match::IdentificationPrefix(p)) if indexed && !pg => {
                let q = q.filter(profiles::customer_identification.ge(p.clone()));
                match prefix_end(p) {
                    Some(end) => q.filter(profiles::customer_identification.lt(end)),
                    None => q,
                }
            }
            Some(Match::EmailPrefix(p)) if indexed && !pg => {
                let q = q.filter(profiles::email.ge(p.clone()));
                match prefix_end(p) {
                    Some(end) => q.filter(profiles::email.lt(end)),
                    None => q,
                }
            }
            Some(Match::IdentificationPrefix(p)) => {
                prefix_range("profiles.customer_identification", p, pg, indexed)
                    .into_iter()
                    .fold(q, |q, (cmp, v)| {
                        q.filter(sql::<Bool>(&cmp).bind::<Text, _>(v))
                    })
            }
            Some(Match::EmailPrefix(p)) => prefix_range("profiles.email", p, pg, indexed)
                .into_iter()
                .fold(q, |q, (cmp, v)| {
                    q.filter(sql::<Bool>(&cmp).bind::<Text, _>(v))
                }),
            Some(Match::Guid(v)) => q.filter(profiles::profile_guid.eq(v.clone())),
            Some(Match::Uuid(v)) => q.filter(profiles::uuid.eq(v.clone())),
            Some(Match::LastFour(v)) if indexed => q.filter(
                profiles::id.eq_any(
                    instruments::table
                        .filter(instruments::last_four.eq(v.clone()))
                        .select(instruments::profile_id),
                ),
            ),
            // Many cards end so (a test card): each profile, in id order, is checked instead.
            Some(Match::LastFour(v)) => q.filter(
                sql::<Bool>(
                    "EXISTS (SELECT 1 FROM instruments WHERE instruments.profile_id = profiles.id \
                     AND instruments.last_four = ",
                )
                .bind::<Text, _>(v.clone())
                .sql(")"),
            ),
        }
    }};
}

/// How many profiles (up to `BROAD_PREFIX + 1`) a prefix or last four match: a walk of its
/// index range.
fn probe(conn: &mut DbConnection, f: Filter<'_>, m: Option<&Match>) -> QueryResult<i64> {
    let pg = matches!(conn, DbConnection::Postgresql(_));
    let ids: Vec<String> = crate::on_inner!(conn, c => matching!(pg, f, m, true)
        .select(profiles::id)
        .limit(BROAD_PREFIX + 1)
        .load(c))?;
    Ok(ids.len() as i64)
}

fn one(
    conn: &mut DbConnection,
    f: Filter<'_>,
    m: Option<&Match>,
    cursor: &Cursor,
    limit: i64,
    indexed: bool,
) -> QueryResult<Vec<Profile>> {
    let pg = matches!(conn, DbConnection::Postgresql(_));
    crate::on_inner!(conn, c => {
        let q = matching!(pg, f, m, indexed).select(Profile::as_select());
        let q = match cursor {
            Cursor::Newest => q.order(profiles::id.desc()),
            Cursor::Before(b) => q
                .filter(profiles::id.lt(b.clone()))
                .order(profiles::id.desc()),
            Cursor::After(a) => q
                .filter(profiles::id.gt(a.clone()))
                .order(profiles::id.asc()),
        };
        q.limit(limit).load(c)
    })
}

/// `column` starts with `prefix`: the comparisons (`>= prefix`, `< prefix_end`) with the value
/// each binds, in byte order: on PostgreSQL under `COLLATE "C"` (the migration's indexes)
/// whatever the database's collation; on SQLite the BINARY collation already is byte order.
/// Not `indexed`: the column is wrapped (`+col`, `(col || '')`) so that no index of it applies.
fn prefix_range(column: &str, prefix: &str, pg: bool, indexed: bool) -> Vec<(String, String)> {
    let column = match (indexed, pg) {
        (true, _) => column.to_string(),
        (false, true) => format!("({column} || '')"),
        (false, false) => format!("+{column}"),
    };
    let collate = if pg { " COLLATE \"C\"" } else { "" };
    let mut out = vec![(format!("{column}{collate} >= "), prefix.to_string())];
    if let Some(end) = prefix_end(prefix) {
        out.push((format!("{column}{collate} < "), end));
    }
    out
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
            // A new expiry is noticed (and found expired) anew.
            instruments::expiry_noticed_at.eq(None::<NaiveDateTime>),
            instruments::expired_at.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
}

/// The card of an instrument, as the account updater replaces it (same row, same payment
/// token): new masked digits, expiry, fingerprint and sealed number.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = instruments)]
#[diesel(treat_none_as_null = true)]
pub struct CardUpdate {
    pub first_six: Option<String>,
    pub last_four: Option<String>,
    pub exp_month: Option<i32>,
    pub exp_year: Option<i32>,
    pub fingerprint: String,
    pub vault_record: String,
    pub expiry_noticed_at: Option<NaiveDateTime>,
    pub expired_at: Option<NaiveDateTime>,
    pub card_update_status: Option<String>,
    pub card_updated_at: Option<NaiveDateTime>,
    pub updated_at: NaiveDateTime,
}

pub fn update_card(conn: &mut DbConnection, id: &str, u: &CardUpdate) -> QueryResult<usize> {
    diesel::update(instruments::table.find(id))
        .set(u)
        .execute(conn)
}

/// Records that `instrument.expiring` was sent for the instrument's current expiry: `1` when
/// this call did it, `0` when it had been done already (by another process, say).
pub fn mark_expiry_noticed(
    conn: &mut DbConnection,
    id: &str,
    at: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        instruments::table
            .filter(instruments::id.eq(id))
            .filter(instruments::expiry_noticed_at.is_null()),
    )
    .set(instruments::expiry_noticed_at.eq(Some(at)))
    .execute(conn)
}

/// Marks the instrument expired (once): `1` when this call did it.
pub fn mark_expired(conn: &mut DbConnection, id: &str, at: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        instruments::table
            .filter(instruments::id.eq(id))
            .filter(instruments::expired_at.is_null()),
    )
    .set(instruments::expired_at.eq(Some(at)))
    .execute(conn)
}

/// The id of the profile's preferred instrument, if any.
pub fn preferred_of(conn: &mut DbConnection, profile_id: &str) -> QueryResult<Option<String>> {
    instruments::table
        .filter(instruments::profile_id.eq(profile_id))
        .filter(instruments::is_preferred.eq(true))
        .select(instruments::id)
        .first(conn)
        .optional()
}

/// Card instruments of live profiles after `after` in id order (keyset pagination), at most
/// `limit`, with their profiles; only those of `container_id` when given.
pub fn cards_after(
    conn: &mut DbConnection,
    container_id: Option<&str>,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<(Instrument, Profile)>> {
    let mut q = instruments::table
        .inner_join(profiles::table)
        .filter(instruments::method.eq("card"))
        .filter(instruments::id.gt(after))
        .filter(profiles::deleted_at.is_null())
        .select((Instrument::as_select(), Profile::as_select()))
        .order(instruments::id.asc())
        .limit(limit)
        .into_boxed();
    if let Some(c) = container_id {
        q = q.filter(profiles::container_id.eq(c));
    }
    q.load(conn)
}

/// A page of cards with their profiles, and the last instrument id looked at.
pub type CardPage = (Vec<(Instrument, Profile)>, Option<String>);

/// As [`cards_after`] for one container, walking the instruments' primary key: the next `limit`
/// card instruments after `after` in id order, those of live profiles of `container_id`, and
/// the last id looked at (`None`: the end). A join filtered by container made SQLite sort the
/// container's instruments again for every batch (a run over 1M cards did about 220 a second,
/// slowing down); this reads each instrument once per run.
pub fn container_cards_after(
    conn: &mut DbConnection,
    container_id: &str,
    after: &str,
    limit: i64,
) -> QueryResult<CardPage> {
    let page: Vec<Instrument> = instruments::table
        .filter(instruments::id.gt(after))
        .filter(instruments::method.eq("card"))
        .order(instruments::id.asc())
        .limit(limit)
        .select(Instrument::as_select())
        .load(conn)?;
    let Some(last) = page.last().map(|i| i.id.clone()) else {
        return Ok((vec![], None));
    };
    let ids: Vec<&str> = page.iter().map(|i| i.profile_id.as_str()).collect();
    // Looked up by primary key only, the container and liveness checked here: with the
    // container in the WHERE clause SQLite's planner walks the container's index
    // (profiles_container_created) instead, every profile of the container for every page
    // (0.24 s a page at 1M profiles: the updater's 820 cards/s).
    let owners: std::collections::HashMap<String, Profile> = profiles::table
        .filter(profiles::id.eq_any(ids))
        .select(Profile::as_select())
        .load(conn)?
        .into_iter()
        .filter(|p| p.container_id == container_id && p.deleted_at.is_none())
        .map(|p| (p.id.clone(), p))
        .collect();
    let pairs = page
        .into_iter()
        .filter_map(|i| owners.get(&i.profile_id).cloned().map(|p| (i, p)))
        .collect();
    Ok((pairs, Some(last)))
}

/// Card instruments of live profiles (of `container_id` when given): a run's total.
pub fn count_cards(conn: &mut DbConnection, container_id: Option<&str>) -> QueryResult<i64> {
    let mut q = instruments::table
        .inner_join(profiles::table)
        .filter(instruments::method.eq("card"))
        .filter(profiles::deleted_at.is_null())
        .count()
        .into_boxed();
    if let Some(c) = container_id {
        q = q.filter(profiles::container_id.eq(c));
    }
    q.get_result(conn)
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
/// Returns the instrument that became preferred, if one did.
pub fn delete_instrument(conn: &mut DbConnection, i: &Instrument) -> QueryResult<Option<String>> {
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
            return Ok(Some(n));
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::prefix_end;

    #[test]
    fn a_prefix_range_ends_at_the_next_string_in_byte_order() {
        assert_eq!(prefix_end("ab").as_deref(), Some("ac"));
        assert_eq!(prefix_end("bench-1").as_deref(), Some("bench-2"));
        assert_eq!(prefix_end("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_end("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(prefix_end("\u{10FFFF}"), None);
        for s in ["ab", "abz", "ab\u{7F}", "abé"] {
            let end = prefix_end("ab").unwrap_or_default();
            assert!(s >= "ab" && s < end.as_str(), "{s} is in the range of ab");
        }
        assert!("ac" >= prefix_end("ab").unwrap_or_default().as_str());
    }
}
