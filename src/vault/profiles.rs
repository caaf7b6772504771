//! Customer profiles and their payment instruments, one owner per rule. Every path that reads
//! or writes them (the Transaction API, the Customer Profiles API, Monri, the hosted page and
//! 3-D Secure, the console, the benchmark seeder) goes through these functions:
//!
//! - **Finding** a profile inside a container, by profileGuid, customerIdentification or Monri
//!   uuid: a profile of another container, and an erased one (a Monri tombstone), is not found.
//! - **Creating** a profile and **registering** into it happen with the container locked
//!   ([`lock`]), so concurrent registrations of one new customer make one profile, on every
//!   process; the container's profile count changes in the same transaction.
//! - **Exactly one preferred instrument** per profile that has instruments: the first one is
//!   preferred, [`make_preferred`] moves the mark, [`remove_instrument`] hands it to the oldest
//!   remaining one.
//! - **Deleting** ([`delete`]: the profile and its instruments are gone) and **erasing**
//!   ([`erase`]: personal data and instruments are gone, a tombstone keeps the uuid) keep the
//!   count; the caller scrubs the SQLite WAL after the commit (`db::scrub_after_erasure`).
//! - **The customer data fields** ([`CUSTOMER_FIELDS`]) are the keys a profile stores, whichever
//!   API wrote them.
//!
//! - **Lifecycle events**: each change here puts its event (`vault::events`) in the outbox in
//!   the caller's transaction, so every path emits them without knowing.
//!
//! Protocol-free: the APIs map [`Refusal`] and diesel's errors to their own answers.

use chrono::NaiveDateTime;
use diesel::QueryResult;
use serde_json::{Map, Value};

use crate::db::{DbConnection, is_unique_violation};
use crate::models::container;
use crate::models::profile::{self, CardUpdate, Instrument, Profile};
use crate::vault::events::{self, EventType};

/// How a request names a profile inside a container (defined with the queries that use it).
pub use crate::models::profile::Key;

/// Why a write was refused (nothing was written).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("a profile with this customer identification already exists in the container")]
    Duplicate,
    #[error(transparent)]
    Db(#[from] diesel::result::Error),
}

/// Locks the container row until the transaction ends: registrations, profile creation,
/// deletion and changes of the preferred instrument of one container take turns.
pub fn lock(conn: &mut DbConnection, container_id: &str) -> QueryResult<()> {
    container::lock(conn, container_id).map(|_| ())
}

/// The live profile `key` names inside `container_id`, or `None`.
pub fn find_in(
    conn: &mut DbConnection,
    container_id: &str,
    key: Key<'_>,
) -> QueryResult<Option<Profile>> {
    let p = match key {
        Key::Guid(g) => profile::find_by_guid(conn, g)?,
        Key::Identification(i) => profile::find_by_identification(conn, container_id, i)?,
        Key::Uuid(u) => crate::models::monri::by_uuid(conn, container_id, u)?,
    };
    Ok(p.filter(|p| p.container_id == container_id && p.deleted_at.is_none()))
}

/// The live profile `key` names inside `container_id` with its instruments (oldest first), in
/// one statement: what getProfile answers. The statement also reads the configuration version,
/// which confirms the call's cached configuration ([`config_cache::confirm`]); on a stale one
/// nothing is found, and the caller, seeing its call unconfirmed, redoes it on a fresh snapshot.
///
/// [`config_cache::confirm`]: crate::vault::config_cache::confirm
pub fn find_with_instruments(
    conn: &mut DbConnection,
    container_id: &str,
    key: Key<'_>,
) -> QueryResult<Option<(Profile, Vec<Instrument>)>> {
    Ok(profile::with_instruments(conn, container_id, key)?
        .filter(|(version, _, _)| crate::vault::config_cache::confirm(*version))
        .map(|(_, p, list)| (p, list)))
}

/// The profile with Monri uuid `uuid` in the container, erased ones (tombstones) included: the
/// Monri API answers a tombstone for a deleted customer. Read with the configuration version,
/// which confirms the call's cached configuration; on a stale one nothing is found (see
/// [`find_with_instruments`]).
pub fn find_with_tombstone(
    conn: &mut DbConnection,
    container_id: &str,
    uuid: &str,
) -> QueryResult<Option<Profile>> {
    Ok(
        crate::models::monri::by_uuid_with_version(conn, container_id, uuid)?
            .filter(|(version, _)| crate::vault::config_cache::confirm(version.unwrap_or_default()))
            .map(|(_, p)| p),
    )
}

/// A new profile in `container_id`, its customer data `customer` (keys of
/// [`CUSTOMER_FIELDS`]), not yet stored.
pub fn new_profile(
    container_id: &str,
    customer_identification: String,
    customer: Map<String, Value>,
    at: NaiveDateTime,
) -> Profile {
    Profile {
        id: crate::ids::new_id(),
        container_id: container_id.to_string(),
        profile_guid: crate::gateway::ids::profile_guid(),
        customer_identification,
        email: email_of(&customer),
        customer: Value::Object(customer).to_string(),
        created_at: at,
        updated_at: at,
        uuid: profile::new_uuid(),
        deleted_at: None,
    }
}

/// Stores `p` in its container and counts it. The caller holds the container [`lock`].
pub fn create(conn: &mut DbConnection, p: &Profile) -> Result<(), Refusal> {
    if profile::find_by_identification(conn, &p.container_id, &p.customer_identification)?.is_some()
    {
        return Err(Refusal::Duplicate);
    }
    match profile::insert(conn, p) {
        Err(e) if is_unique_violation(&e) => return Err(Refusal::Duplicate),
        r => r?,
    }
    container::add_to_count(conn, &p.container_id, 1)?;
    events::profile_event(conn, p, EventType::ProfileCreated)?;
    Ok(())
}

/// Merges `changes` into the profile's stored customer data (a `None` value removes the key) and
/// writes it, keeping the searchable email in step, with `profile.updated` when the data
/// changed. Returns the profile as stored.
pub fn update_customer(
    conn: &mut DbConnection,
    mut p: Profile,
    changes: impl IntoIterator<Item = (String, Option<Value>)>,
    at: NaiveDateTime,
) -> QueryResult<Profile> {
    let mut data = stored_customer(&p);
    for (k, v) in changes {
        match v {
            Some(v) => {
                data.insert(k, v);
            }
            None => {
                data.remove(&k);
            }
        }
    }
    p.email = email_of(&data);
    let customer = Value::Object(data).to_string();
    let changed = customer != p.customer;
    p.customer = customer;
    p.updated_at = at;
    profile::update_customer(conn, &p.id, &p.customer, p.email.as_deref(), at)?;
    if changed {
        events::profile_event(conn, &p, EventType::ProfileUpdated)?;
    }
    Ok(p)
}

/// Writes `customer` (and its searchable `email`) over the profile's customer data only if that
/// is still what `p` read (compare-and-set): `false` when a concurrent update came first (a
/// PostgreSQL race; the caller retries).
pub fn replace_customer_if_unchanged(
    conn: &mut DbConnection,
    p: &Profile,
    customer: &str,
    email: Option<String>,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    let replaced =
        profile::replace_customer_if(conn, &p.id, &p.customer, customer, email.as_deref(), at)?
            == 1;
    if replaced {
        events::profile_event(conn, p, EventType::ProfileUpdated)?;
    }
    Ok(replaced)
}

/// Writes the customer identification and customer data (and searchable email) of `p` as it
/// holds them now (the Monri API's update, which may rename the identification), with
/// `profile.updated`. A unique violation (the identification is taken) is the caller's to map.
pub fn rewrite_customer(conn: &mut DbConnection, p: &Profile) -> QueryResult<usize> {
    let n = crate::models::monri::update_customer(
        conn,
        &p.id,
        &p.customer_identification,
        &p.customer,
        p.email.as_deref(),
        p.updated_at,
    )?;
    if n == 1 {
        events::profile_event(conn, p, EventType::ProfileUpdated)?;
    }
    Ok(n)
}

/// Marks the profile changed now (its preferred instrument moved).
pub fn touch(conn: &mut DbConnection, profile_id: &str, at: NaiveDateTime) -> QueryResult<()> {
    profile::touch(conn, profile_id, at).map(|_| ())
}

/// The stored customer data of a profile.
pub fn stored_customer(p: &Profile) -> Map<String, Value> {
    serde_json::from_str(&p.customer).unwrap_or_default()
}

/// The searchable form of the email: lower case, absent when empty.
pub fn email_of(data: &Map<String, Value>) -> Option<String> {
    match data.get("email") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.to_lowercase()),
        _ => None,
    }
}

/// Deletes the profile and its instruments (and so their sealed card data) and uncounts it.
/// The caller holds the container [`lock`]. `false` when it was already gone.
pub fn delete(conn: &mut DbConnection, container_id: &str, profile_id: &str) -> QueryResult<bool> {
    events::emit(conn, container_id, EventType::ProfileDeleted, |conn| {
        Ok(profile::find(conn, profile_id)?.map(|p| events::profile_data(&p)))
    })?;
    if profile::delete_with_instruments(conn, profile_id)? != 1 {
        return Ok(false);
    }
    container::add_to_count(conn, container_id, -1)?;
    Ok(true)
}

/// Erases the personal data and the instruments of a profile, keeping a tombstone (its uuid and
/// when it was erased) and freeing its customer identification; uncounts it. The caller holds
/// the container [`lock`]. Erasing a tombstone again changes nothing.
pub fn erase(conn: &mut DbConnection, p: &Profile, at: NaiveDateTime) -> QueryResult<bool> {
    if p.deleted_at.is_some() {
        return Ok(false);
    }
    events::profile_event(conn, p, EventType::ProfileDeleted)?;
    crate::models::monri::erase(conn, p, at)?;
    container::add_to_count(conn, &p.container_id, -1)?;
    Ok(true)
}

/// The instrument of the same card (or IBAN) already in the profile, by keyed fingerprint.
pub fn same_instrument(
    conn: &mut DbConnection,
    profile_id: &str,
    fingerprint: &str,
) -> QueryResult<Option<Instrument>> {
    profile::instrument_by_fingerprint(conn, profile_id, fingerprint)
}

/// Stores a new instrument and applies the preferred rule to it ([`keep_preferred`]: preferred
/// when `mark_preferred` or when the profile has none yet). Returns it as stored. The caller
/// holds the container [`lock`].
pub fn add_instrument(
    conn: &mut DbConnection,
    i: &Instrument,
    mark_preferred: bool,
) -> QueryResult<Instrument> {
    let mut i = i.clone();
    i.is_preferred = false;
    profile::insert_instrument(conn, &i)?;
    prefer_if(conn, &mut i, mark_preferred, false)?;
    events::instrument_event(conn, &i, EventType::InstrumentCreated)?;
    Ok(i)
}

/// The preferred rule after an instrument was found again: it becomes the one preferred
/// instrument when it is marked so or when the profile has none yet.
pub fn keep_preferred(
    conn: &mut DbConnection,
    i: &mut Instrument,
    mark_preferred: bool,
) -> QueryResult<()> {
    prefer_if(conn, i, mark_preferred, true)
}

/// Makes `i` preferred when `mark_preferred` or when the profile has none. When the mark moves,
/// the former preferred instrument gets `instrument.updated`, and `i` too when `announce`.
fn prefer_if(
    conn: &mut DbConnection,
    i: &mut Instrument,
    mark_preferred: bool,
    announce: bool,
) -> QueryResult<()> {
    let former = profile::preferred_of(conn, &i.profile_id)?;
    if former.as_deref() == Some(i.id.as_str()) {
        i.is_preferred = true;
        return Ok(());
    }
    if mark_preferred || former.is_none() {
        profile::set_preferred(conn, &i.profile_id, &i.id)?;
        i.is_preferred = true;
        if announce {
            events::instrument_event(conn, i, EventType::InstrumentUpdated)?;
        }
        if let Some(f) = former {
            events::instrument_updated(conn, &f)?;
        }
    }
    Ok(())
}

/// Makes `instrument_id` the profile's one preferred instrument. `false` when that instrument is
/// no longer there (the profile keeps the preferred instrument it has). When the mark moves,
/// both the new and the former preferred instrument get `instrument.updated`. The caller holds
/// the container [`lock`].
pub fn make_preferred(
    conn: &mut DbConnection,
    profile_id: &str,
    instrument_id: &str,
) -> QueryResult<bool> {
    let former = profile::preferred_of(conn, profile_id)?;
    if !profile::set_preferred(conn, profile_id, instrument_id)? {
        return Ok(false);
    }
    if former.as_deref() != Some(instrument_id) {
        events::instrument_updated(conn, instrument_id)?;
        if let Some(f) = former {
            events::instrument_updated(conn, &f)?;
        }
    }
    Ok(true)
}

/// Removes an instrument (with its sealed card data), with `instrument.deleted`; when it was
/// the preferred one, the oldest remaining instrument becomes preferred (and gets
/// `instrument.updated`). `i` must have been read with the container [`lock`] held.
pub fn remove_instrument(conn: &mut DbConnection, i: &Instrument) -> QueryResult<()> {
    events::instrument_event(conn, i, EventType::InstrumentDeleted)?;
    if let Some(next) = profile::delete_instrument(conn, i)? {
        events::instrument_updated(conn, &next)?;
    }
    Ok(())
}

/// A card found again with a new expiry: the expiry is stored (noticed anew by the expiry
/// scan) and `instrument.updated` sent. Nothing happens when the expiry is the same.
pub fn refresh_expiry(
    conn: &mut DbConnection,
    i: &mut Instrument,
    exp_month: i32,
    exp_year: i32,
    at: NaiveDateTime,
) -> QueryResult<()> {
    if i.exp_month == Some(exp_month) && i.exp_year == Some(exp_year) {
        return Ok(());
    }
    profile::update_instrument_expiry(conn, &i.id, exp_month, exp_year, at)?;
    i.exp_month = Some(exp_month);
    i.exp_year = Some(exp_year);
    i.expiry_noticed_at = None;
    i.expired_at = None;
    i.updated_at = at;
    events::instrument_event(conn, i, EventType::InstrumentUpdated)
}

/// The account updater's change of a card in place: same row, same `pt::` token, the new
/// number sealed anew (in `u`), `instrument.updated` sent. The caller holds the container
/// [`lock`].
pub fn replace_card(conn: &mut DbConnection, i: &Instrument, u: &CardUpdate) -> QueryResult<()> {
    profile::update_card(conn, &i.id, u)?;
    events::instrument_updated(conn, &i.id)
}

/// The expiry scan's notice: `instrument.expiring` for `i`, once for its current expiry (`false`
/// when it was sent already, by this process or another).
pub fn notice_expiring(
    conn: &mut DbConnection,
    i: &Instrument,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    if profile::mark_expiry_noticed(conn, &i.id, at)? == 0 {
        return Ok(false);
    }
    events::instrument_event(conn, i, EventType::InstrumentExpiring)?;
    Ok(true)
}

/// The expiry scan marks an expired card (once): `true` when this call did.
pub fn mark_expired(
    conn: &mut DbConnection,
    i: &Instrument,
    at: NaiveDateTime,
) -> QueryResult<bool> {
    Ok(profile::mark_expired(conn, &i.id, at)? == 1)
}

/// Imports new profiles with their instruments in bulk (the benchmark seeder), counting them.
/// The caller guarantees what [`create`] and [`keep_preferred`] would check one by one: each
/// customer identification is new in the container and each profile has exactly one preferred
/// instrument among `is`.
pub fn import(
    conn: &mut DbConnection,
    container_id: &str,
    ps: &[Profile],
    is: &[Instrument],
) -> QueryResult<()> {
    debug_assert!(ps.iter().all(|p| p.container_id == container_id));
    profile::insert_many(conn, ps, is)?;
    container::add_to_count(conn, container_id, ps.len() as i64)?;
    Ok(())
}

/// How a customer data field is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// Text of at most this many characters.
    Text(usize),
    /// `YYYY-MM-DD`.
    Date,
    /// `M`, `F` or `X`.
    Gender,
    /// ISO 3166-1 alpha-2.
    Country,
    /// An email address of at most this many characters.
    Email(usize),
    /// A map of strings (`extraData`).
    Extra,
}

/// The customer data a profile stores (IXOPAY customerData, spec 1.4), under these keys and in
/// the PHP client's property order, whichever API wrote them: the Transaction API's `customer`,
/// the Customer Profiles API's `customerData` and the Monri fields mapped onto them.
pub const CUSTOMER_FIELDS: [(&str, FieldKind); 16] = [
    ("firstName", FieldKind::Text(50)),
    ("lastName", FieldKind::Text(50)),
    ("birthDate", FieldKind::Date),
    ("gender", FieldKind::Gender),
    ("billingAddress1", FieldKind::Text(50)),
    ("billingAddress2", FieldKind::Text(50)),
    ("billingCity", FieldKind::Text(50)),
    ("billingPostcode", FieldKind::Text(16)),
    ("billingState", FieldKind::Text(30)),
    ("billingCountry", FieldKind::Country),
    ("billingPhone", FieldKind::Text(20)),
    ("company", FieldKind::Text(50)),
    ("email", FieldKind::Email(255)),
    ("ipAddress", FieldKind::Text(50)),
    ("nationalId", FieldKind::Text(14)),
    ("extraData", FieldKind::Extra),
];

/// The human label of each of [`CUSTOMER_FIELDS`], as every console page shows it.
pub const CUSTOMER_FIELD_LABELS: [(&str, &str); 16] = [
    ("firstName", "First name"),
    ("lastName", "Last name"),
    ("birthDate", "Date of birth"),
    ("gender", "Gender"),
    ("billingAddress1", "Billing address"),
    ("billingAddress2", "Billing address, line 2"),
    ("billingCity", "Billing city"),
    ("billingPostcode", "Billing postcode"),
    ("billingState", "Billing state"),
    ("billingCountry", "Billing country"),
    ("billingPhone", "Billing phone"),
    ("company", "Company"),
    ("email", "Email"),
    ("ipAddress", "IP address"),
    ("nationalId", "National ID"),
    ("extraData", "Extra data"),
];

/// The human label of customer data field `key` (the key itself for an unknown one).
pub fn customer_field_label(key: &str) -> &str {
    CUSTOMER_FIELD_LABELS
        .iter()
        .find(|(k, _)| *k == key)
        .map_or(key, |(_, l)| l)
}

/// Is `key` a customer data field a profile stores?
pub fn is_customer_field(key: &str) -> bool {
    CUSTOMER_FIELDS.iter().any(|(k, _)| *k == key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_searchable_email_is_lower_case_and_absent_when_empty() {
        let mut m = Map::new();
        assert_eq!(email_of(&m), None);
        m.insert("email".into(), Value::String(String::new()));
        assert_eq!(email_of(&m), None);
        m.insert("email".into(), Value::String("Ann@Example.COM".into()));
        assert_eq!(email_of(&m).as_deref(), Some("ann@example.com"));
    }

    #[test]
    fn customer_fields_are_unique() {
        let mut keys: Vec<&str> = CUSTOMER_FIELDS.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), CUSTOMER_FIELDS.len());
        let labelled: Vec<&str> = CUSTOMER_FIELD_LABELS.iter().map(|(k, _)| *k).collect();
        let fields: Vec<&str> = CUSTOMER_FIELDS.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            labelled, fields,
            "one label per customer field, in the same order"
        );
        assert!(is_customer_field("billingCity") && !is_customer_field("city"));
    }
}
