//! The console's read side of transactions: the filtered list (keyset pages, newest first),
//! one transaction with its reference chain, and a profile's transactions. Every row shown is
//! in the caller's scope; another tenant's transaction, merchant, connector or profile is
//! `NotFound`.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value;

use crate::console::{connectors, containers, merchants};
use crate::db::DbConnection;
use crate::domain::TxStatus;
use crate::domain::{Actor, Scope};
use crate::error::{FieldErrors, ServiceError};
use crate::gateway::amount::format_amount;
use crate::models::connector::{self, Connector};
use crate::models::merchant::{self, Merchant};
use crate::models::profile;
use crate::models::tenant;
use crate::models::transaction::{self as txm, Transaction};
use crate::models::transaction_query::{self as q, Filter, Position, Slice};

pub const PAGE_SIZE: u32 = 50;
pub const MAX_PAGE_SIZE: u32 = 100;
/// Rows of the Transactions section of a profile page.
pub const PROFILE_ROWS: i64 = 20;
/// A chain longer than this (it never is: capture → refund is the deepest) is cut off.
const CHAIN_MAX: usize = 500;

pub const TYPES: [&str; 7] = [
    "DEBIT",
    "PREAUTHORIZE",
    "CAPTURE",
    "VOID",
    "REGISTER",
    "DEREGISTER",
    "REFUND",
];
pub const STATUSES: [&str; 3] = [
    TxStatus::Success.as_str(),
    TxStatus::Error.as_str(),
    TxStatus::Pending.as_str(),
];

/// The list's query parameters as they came (empty = not given).
#[derive(Debug, Clone, Default)]
pub struct RawFilters {
    pub merchant: String,
    pub connector: String,
    pub profile: String,
    pub kind: String,
    pub status: String,
    pub from: String,
    pub to: String,
    pub after: String,
    pub limit: String,
}

/// Validated list criteria.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Criteria {
    pub merchant: Option<String>,
    pub connector: Option<String>,
    pub profile: Option<String>,
    pub kind: Option<String>,
    pub status: Option<String>,
    pub from: Option<NaiveDateTime>,
    pub until: Option<NaiveDateTime>,
    pub after: Option<Position>,
    pub limit: u32,
}

fn given(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

/// A day `YYYY-MM-DD` (exactly that shape).
fn parse_day(errors: &mut FieldErrors, field: &str, raw: &str) -> Option<NaiveDate> {
    let v = given(raw)?;
    let shaped = v.len() == 10
        && v.bytes().enumerate().all(|(i, b)| match i {
            4 | 7 => b == b'-',
            _ => b.is_ascii_digit(),
        });
    match NaiveDate::parse_from_str(&v, "%Y-%m-%d") {
        Ok(d) if shaped => Some(d),
        _ => {
            errors.add(field, "Enter a date as YYYY-MM-DD.");
            None
        }
    }
}

/// The opaque page cursor: the last row's time (nanoseconds since the epoch, 16 hex digits)
/// followed by its uuid (20 hex digits).
pub fn encode_cursor(t: &Transaction) -> Option<String> {
    let nanos = t.created_at.and_utc().timestamp_nanos_opt()?;
    u64::try_from(nanos)
        .ok()
        .map(|n| format!("{n:016x}{}", t.uuid))
}

pub fn decode_cursor(raw: &str) -> Option<Position> {
    if raw.len() != 36
        || !raw
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return None;
    }
    let nanos = u64::from_str_radix(&raw[..16], 16).ok()?;
    let nanos = i64::try_from(nanos).ok()?;
    Some(Position {
        created_at: DateTime::from_timestamp_nanos(nanos).naive_utc(),
        uuid: raw[16..].to_string(),
    })
}

/// Checks the list's parameters; every problem is reported against its field.
pub fn parse(raw: &RawFilters) -> Result<Criteria, FieldErrors> {
    let mut errors = FieldErrors::new();
    let kind = given(&raw.kind).map(|k| k.to_ascii_uppercase());
    if kind.as_deref().is_some_and(|k| !TYPES.contains(&k)) {
        errors.add("type", "Choose a transaction type from the list.");
    }
    let status = given(&raw.status).map(|s| s.to_ascii_uppercase());
    if status.as_deref().is_some_and(|s| !STATUSES.contains(&s)) {
        errors.add("status", "Choose a status from the list.");
    }
    let from = parse_day(&mut errors, "from", &raw.from);
    let to = parse_day(&mut errors, "to", &raw.to);
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        errors.add("to", "The end date is before the start date.");
    }
    let until = match to.map(|t| t.succ_opt()) {
        Some(None) => {
            errors.add("to", "Enter a date as YYYY-MM-DD.");
            None
        }
        Some(Some(d)) => Some(d.and_time(chrono::NaiveTime::MIN)),
        None => None,
    };
    let limit = match given(&raw.limit) {
        None => PAGE_SIZE,
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=MAX_PAGE_SIZE).contains(&n) => n,
            _ => {
                errors.add(
                    "limit",
                    format!("Enter a number of rows from 1 to {MAX_PAGE_SIZE}."),
                );
                PAGE_SIZE
            }
        },
    };
    let after = match given(&raw.after) {
        None => None,
        Some(v) => {
            let p = decode_cursor(&v);
            if p.is_none() {
                errors.add(
                    "after",
                    "The page link is not valid: start again from the first page.",
                );
            }
            p
        }
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Criteria {
        merchant: given(&raw.merchant),
        connector: given(&raw.connector),
        profile: given(&raw.profile),
        kind,
        status,
        from: from.map(|d| d.and_time(chrono::NaiveTime::MIN)),
        until,
        after,
        limit,
    })
}

/// The merchants and connectors in scope, with names: the filter's options and the names
/// shown in the rows.
pub struct Choices {
    /// (merchant, its tenant's name)
    pub merchants: Vec<(Merchant, String)>,
    /// (connector, its merchant's name)
    pub connectors: Vec<(Connector, String)>,
}

pub fn choices(conn: &mut DbConnection, actor: &Actor) -> Result<Choices, ServiceError> {
    Ok(Choices {
        merchants: merchants::list(conn, actor)?,
        connectors: connectors::list(conn, actor)?,
    })
}

impl Choices {
    fn merchant_name(&self, id: &str) -> String {
        self.merchants
            .iter()
            .find(|(m, _)| m.id == id)
            .map(|(m, _)| m.name.clone())
            .unwrap_or_default()
    }
    fn connector_name(&self, id: &str) -> String {
        self.connectors
            .iter()
            .find(|(k, _)| k.id == id)
            .map(|(k, _)| k.name.clone())
            .unwrap_or_default()
    }
    fn row(&self, t: Transaction) -> Row {
        Row {
            at: t.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            amount: amount_of(&t),
            merchant: self.merchant_name(&t.merchant_id),
            connector: self.connector_name(&t.connector_id),
            tx: t,
        }
    }
}

/// Rows per page of the CSV export (`GET /transactions.csv`), which walks every page.
pub const EXPORT_PAGE: u32 = 500;

/// The CSV export's columns. No card data and no payment token: the export leaves the console.
pub const EXPORT_COLUMNS: [&str; 12] = [
    "time_utc",
    "uuid",
    "merchant_transaction_id",
    "type",
    "status",
    "amount",
    "currency",
    "merchant",
    "connector",
    "payment_method",
    "error_code",
    "error_message",
];

/// One row of the CSV export, in [`EXPORT_COLUMNS`] order; the amount in major units.
pub fn export_cells(r: &Row) -> Vec<String> {
    let t = &r.tx;
    let amount = match (t.amount, &t.currency) {
        (Some(a), Some(c)) => format_amount(a, c).unwrap_or_else(|_| a.to_string()),
        (Some(a), None) => a.to_string(),
        _ => String::new(),
    };
    vec![
        t.created_at.format("%Y-%m-%d %H:%M:%S%.6f").to_string(),
        t.uuid.clone(),
        t.merchant_transaction_id.clone(),
        t.transaction_type.clone(),
        t.status.clone(),
        amount,
        t.currency.clone().unwrap_or_default(),
        r.merchant.clone(),
        r.connector.clone(),
        t.payment_method.clone(),
        t.error_code.map(|c| c.to_string()).unwrap_or_default(),
        t.error_message.clone().unwrap_or_default(),
    ]
}

/// One line of a transaction table.
pub struct Row {
    pub tx: Transaction,
    /// UTC, to the second.
    pub at: String,
    /// "9.99 EUR", or empty when the transaction has no amount (register, deregister).
    pub amount: String,
    pub merchant: String,
    pub connector: String,
}

pub struct ListPage {
    pub rows: Vec<Row>,
    /// The `after` cursor of the next page, when there is one.
    pub next: Option<String>,
}

fn money(minor: i64, currency: &str) -> String {
    match format_amount(minor, currency) {
        Ok(s) => format!("{s} {currency}"),
        Err(_) => format!("{minor} (minor units) {currency}"),
    }
}

fn amount_of(t: &Transaction) -> String {
    match (t.amount, &t.currency) {
        (Some(a), Some(c)) => money(a, c),
        (Some(a), None) => a.to_string(),
        _ => String::new(),
    }
}

/// One page of the caller's transactions matching `c`, newest first.
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    ch: &Choices,
    c: &Criteria,
) -> Result<ListPage, ServiceError> {
    let mut filter = Filter {
        transaction_type: c.kind.clone(),
        status: c.status.clone(),
        from: c.from,
        until: c.until,
        ..Filter::default()
    };
    // The filters name objects in scope, or the page does not exist.
    if let Some(m) = &c.merchant
        && !ch.merchants.iter().any(|(x, _)| &x.id == m)
    {
        return Err(ServiceError::NotFound);
    }
    let mut merchant = c.merchant.clone();
    if let Some(k) = &c.connector {
        let (kc, _) = ch
            .connectors
            .iter()
            .find(|(x, _)| &x.id == k)
            .ok_or(ServiceError::NotFound)?;
        if merchant.as_ref().is_some_and(|m| m != &kc.merchant_id) {
            return Ok(ListPage {
                rows: vec![],
                next: None,
            });
        }
        merchant = Some(kc.merchant_id.clone());
        filter.connector_id = Some(kc.id.clone());
    }
    if let Some(p) = &c.profile {
        let v = containers::profile(conn, actor, p)?;
        filter.profile_id = Some(v.profile.id);
    }
    if let Scope::Merchant { merchant_id, .. } = &actor.scope {
        merchant = Some(merchant_id.clone());
    }
    let want = i64::from(c.limit) + 1;
    let after = c.after.as_ref();
    let mut rows = match &merchant {
        Some(m) => q::page(conn, Slice::Merchant(m), &filter, after, want)?,
        None => {
            // One ordered index range per tenant of the subtree, merged.
            let mut all = vec![];
            for t in tenant::list_under(conn, actor.scope.path_prefix())? {
                all.extend(q::page(
                    conn,
                    Slice::TenantPath(&t.path),
                    &filter,
                    after,
                    want,
                )?);
            }
            all.sort_by(|a, b| (b.created_at, &b.uuid).cmp(&(a.created_at, &a.uuid)));
            all
        }
    };
    rows.retain(|t| actor.scope.covers_merchant(&t.merchant_id, &t.tenant_path));
    let next = if rows.len() > c.limit as usize {
        rows.truncate(c.limit as usize);
        rows.last().and_then(encode_cursor)
    } else {
        None
    };
    Ok(ListPage {
        rows: rows.into_iter().map(|t| ch.row(t)).collect(),
        next,
    })
}

/// The profile's newest transactions that the caller may see (the profile page's section).
/// The caller has already been allowed to see the profile.
pub fn for_profile(
    conn: &mut DbConnection,
    actor: &Actor,
    profile_id: &str,
) -> Result<Vec<Row>, ServiceError> {
    let ch = choices(conn, actor)?;
    let (merchant, prefix) = match &actor.scope {
        Scope::Platform => (None, None),
        Scope::Tenant { path, .. } => (None, Some(path.as_str())),
        Scope::Merchant { merchant_id, .. } => (Some(merchant_id.as_str()), None),
    };
    let rows = q::of_profile(conn, profile_id, merchant, prefix, PROFILE_ROWS)?;
    Ok(rows
        .into_iter()
        .filter(|t| actor.scope.covers_merchant(&t.merchant_id, &t.tenant_path))
        .map(|t| ch.row(t))
        .collect())
}

/// A fact of the detail page: label and value.
pub type Fact = (String, String);

/// The profile a transaction used.
pub struct ProfileRef {
    pub id: String,
    pub guid: String,
    pub identification: String,
}

/// One transaction of a chain.
pub struct ChainRow {
    pub row: Row,
    /// The transaction the page shows.
    pub current: bool,
    /// The uuid it references (empty for the root).
    pub references: String,
}

pub struct Detail {
    pub row: Row,
    pub merchant: Merchant,
    pub amounts: Vec<Fact>,
    /// Brand, first six/last four and expiry of the card (or the masked IBAN); nothing else.
    pub means: Vec<Fact>,
    /// `None`: no profile; `Some(None)`: a profile the caller may not open.
    pub profile: Option<Option<ProfileRef>>,
    /// The transaction's profile no longer exists (deleted in the console or through an API).
    pub profile_deleted: bool,
    pub instrument: Vec<Fact>,
    /// URLs, description and other request fields kept with the transaction.
    pub request: Vec<Fact>,
    pub chain: Vec<ChainRow>,
}

fn visible(actor: &Actor, t: &Transaction) -> bool {
    actor.scope.covers_merchant(&t.merchant_id, &t.tenant_path)
}

/// The transaction `uuid` if the caller may see it.
fn get(conn: &mut DbConnection, actor: &Actor, uuid: &str) -> Result<Transaction, ServiceError> {
    match txm::find(conn, uuid)? {
        Some(t) if visible(actor, &t) => Ok(t),
        _ => Err(ServiceError::NotFound),
    }
}

fn amounts(t: &Transaction) -> Vec<Fact> {
    let (Some(amount), Some(cur)) = (t.amount, t.currency.as_deref()) else {
        return vec![];
    };
    let mut out = vec![("Amount".to_string(), money(amount, cur))];
    if t.status() != TxStatus::Success {
        return out;
    }
    match t.transaction_type.as_str() {
        "PREAUTHORIZE" => {
            out.push(("Captured".into(), money(t.captured_amount, cur)));
            let left = if t.voided {
                0
            } else {
                amount - t.captured_amount
            };
            out.push(("Remaining to capture".into(), money(left, cur)));
            if t.voided {
                out.push(("Voided".into(), "yes".into()));
            }
        }
        "DEBIT" | "CAPTURE" => {
            out.push(("Refunded".into(), money(t.refunded_amount, cur)));
            out.push((
                "Remaining to refund".into(),
                money(amount - t.refunded_amount, cur),
            ));
        }
        _ => {}
    }
    out
}

/// The masked means of payment from the stored `returnData`: only the fields listed here.
fn means(card_summary: Option<&str>) -> Vec<Fact> {
    let v: Value = card_summary
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    let rd = &v["returnData"];
    let s = |k: &str| rd[k].as_str().unwrap_or("").to_string();
    match rd["_TYPE"].as_str() {
        Some("cardData") => {
            let mut out = vec![];
            if !s("type").is_empty() {
                out.push(("Brand".to_string(), s("type")));
            }
            out.push((
                "Card".into(),
                format!("{}******{}", s("firstSixDigits"), s("lastFourDigits")),
            ));
            if !s("expiryMonth").is_empty() {
                out.push((
                    "Expiry".into(),
                    format!("{}/{}", s("expiryMonth"), s("expiryYear")),
                ));
            }
            out
        }
        Some("ibanData") => {
            let mut out = vec![("IBAN".to_string(), s("iban"))];
            if !s("bic").is_empty() {
                out.push(("BIC".into(), s("bic")));
            }
            out
        }
        _ => vec![],
    }
}

/// Request fields kept in `extra` worth showing; absent and empty ones are left out.
fn request_facts(extra: &str) -> Vec<Fact> {
    let v: Value = serde_json::from_str(extra).unwrap_or_default();
    let mut out = vec![];
    for (key, label) in [
        ("description", "Description"),
        ("successUrl", "Success URL"),
        ("cancelUrl", "Cancel URL"),
        ("errorUrl", "Error URL"),
        ("callbackUrl", "Callback URL"),
        ("additionalId1", "additionalId1"),
        ("additionalId2", "additionalId2"),
        ("transactionIndicator", "Transaction indicator"),
        ("merchantMetaData", "merchantMetaData"),
    ] {
        match &v[key] {
            Value::String(s) if !s.is_empty() => out.push((label.to_string(), s.clone())),
            Value::Null | Value::String(_) => {}
            other => out.push((label.to_string(), other.to_string())),
        }
    }
    if let Some(map) = v["extraData"].as_object() {
        let sorted: BTreeMap<_, _> = map.iter().collect();
        for (k, val) in sorted {
            let text = val.as_str().map_or_else(|| val.to_string(), str::to_string);
            out.push((format!("extraData {k}"), text));
        }
    }
    out
}

/// The chain `t` belongs to: from its root (the transaction nothing above references) down to
/// every transaction referencing it, directly or through another, oldest first.
fn chain(
    conn: &mut DbConnection,
    actor: &Actor,
    ch: &Choices,
    t: &Transaction,
) -> Result<Vec<ChainRow>, ServiceError> {
    let mut root = t.clone();
    for _ in 0..CHAIN_MAX {
        let Some(r) = root.reference_uuid.clone() else {
            break;
        };
        match txm::find(conn, &r)? {
            Some(up) if visible(actor, &up) => root = up,
            _ => break,
        }
    }
    let mut seen: HashMap<String, ()> = HashMap::from([(root.uuid.clone(), ())]);
    let mut all = vec![root];
    let mut i = 0;
    while i < all.len() && all.len() < CHAIN_MAX {
        let uuid = all[i].uuid.clone();
        for c in q::referencing(conn, &uuid)? {
            if visible(actor, &c) && seen.insert(c.uuid.clone(), ()).is_none() {
                all.push(c);
            }
        }
        i += 1;
    }
    all.sort_by(|a, b| (a.created_at, &a.uuid).cmp(&(b.created_at, &b.uuid)));
    if all.len() == 1 {
        return Ok(vec![]);
    }
    Ok(all
        .into_iter()
        .map(|c| ChainRow {
            current: c.uuid == t.uuid,
            references: c.reference_uuid.clone().unwrap_or_default(),
            row: ch.row(c),
        })
        .collect())
}

pub fn detail(conn: &mut DbConnection, actor: &Actor, uuid: &str) -> Result<Detail, ServiceError> {
    let t = get(conn, actor, uuid)?;
    let ch = choices(conn, actor)?;
    let merchant = merchant::find(conn, &t.merchant_id)?.ok_or(ServiceError::NotFound)?;
    let profile = match &t.profile_id {
        None => None,
        Some(pid) => Some(match containers::profile(conn, actor, pid) {
            Ok(v) => Some(ProfileRef {
                id: v.profile.id,
                guid: v.profile.profile_guid,
                identification: v.profile.customer_identification,
            }),
            Err(ServiceError::NotFound) => None,
            Err(e) => return Err(e),
        }),
    };
    let profile_deleted = match (&profile, &t.profile_id) {
        (Some(None), Some(pid)) => profile::find(conn, pid)?.is_none(),
        _ => false,
    };
    // The instrument belongs to the profile: shown only with a profile the caller may open.
    let mut instrument = vec![];
    if let (Some(Some(_)), Some(iid)) = (&profile, &t.instrument_id)
        && let Some(i) = profile::find_instrument(conn, iid)?
    {
        instrument.push(("paymentToken".to_string(), i.payment_token.clone()));
        if i.method == "iban" {
            instrument.push(("IBAN".into(), i.iban_masked.clone().unwrap_or_default()));
        } else {
            if let Some(b) = &i.brand {
                instrument.push(("Brand".into(), b.clone()));
            }
            instrument.push((
                "Card".into(),
                format!(
                    "{}******{}",
                    i.first_six.clone().unwrap_or_default(),
                    i.last_four.clone().unwrap_or_default()
                ),
            ));
            if let (Some(m), Some(y)) = (i.exp_month, i.exp_year) {
                instrument.push(("Expiry".into(), format!("{m:02}/{y}")));
            }
        }
        let kname = connector::find(conn, &i.connector_id)?
            .filter(|k| actor.scope.covers_merchant(&k.merchant_id, &k.tenant_path))
            .map(|k| k.name);
        if let Some(n) = kname {
            instrument.push(("Stored with connector".into(), n));
        }
    }
    let chain = chain(conn, actor, &ch, &t)?;
    Ok(Detail {
        amounts: amounts(&t),
        means: means(t.card_summary.as_deref()),
        request: request_facts(&t.extra),
        profile,
        profile_deleted,
        instrument,
        chain,
        merchant,
        row: ch.row(t),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(pairs: &[(&str, &str)]) -> RawFilters {
        let mut r = RawFilters::default();
        for (k, v) in pairs {
            let v = v.to_string();
            match *k {
                "type" => r.kind = v,
                "status" => r.status = v,
                "from" => r.from = v,
                "to" => r.to = v,
                "after" => r.after = v,
                "limit" => r.limit = v,
                _ => panic!("{k}"),
            }
        }
        r
    }

    #[test]
    fn dates_are_whole_utc_days_inclusive() {
        let c = parse(&raw(&[("from", "2026-11-01"), ("to", "2026-11-21")])).expect("ok");
        assert_eq!(
            c.from.map(|d| d.to_string()).as_deref(),
            Some("2026-11-01 00:00:00")
        );
        assert_eq!(
            c.until.map(|d| d.to_string()).as_deref(),
            Some("2026-11-22 00:00:00")
        );
        for bad in ["2026-13-01", "2026-1-01", "21-11-2026", "2026-11-01x", "x"] {
            let e = parse(&raw(&[("from", bad)])).expect_err(bad);
            assert!(e.get("from").is_some(), "{bad}");
        }
        let e = parse(&raw(&[("from", "2026-11-02"), ("to", "2026-11-01")])).expect_err("order");
        assert!(e.get("to").is_some());
        assert!(parse(&raw(&[("to", "9999-12-31")])).is_ok());
    }

    #[test]
    fn types_statuses_and_limits_are_checked() {
        let c = parse(&raw(&[("type", "capture"), ("status", "ERROR")])).expect("ok");
        assert_eq!(c.kind.as_deref(), Some("CAPTURE"));
        assert_eq!(c.limit, PAGE_SIZE);
        for (k, v) in [
            ("type", "PAYOUT"),
            ("status", "OK"),
            ("limit", "0"),
            ("limit", "101"),
            ("limit", "-1"),
            ("limit", "ten"),
        ] {
            let e = parse(&raw(&[(k, v)])).expect_err(v);
            assert!(e.get(k).is_some(), "{k}={v}");
        }
        assert_eq!(
            parse(&raw(&[("limit", "100")])).map(|c| c.limit).ok(),
            Some(100)
        );
    }

    fn tx_at(created_at: NaiveDateTime, uuid: &str) -> Transaction {
        Transaction {
            uuid: uuid.into(),
            connector_id: String::new(),
            merchant_id: String::new(),
            tenant_path: String::new(),
            merchant_transaction_id: String::new(),
            purchase_id: String::new(),
            transaction_type: "DEBIT".into(),
            status: "SUCCESS".into(),
            payment_method: String::new(),
            amount: Some(999),
            currency: Some("EUR".into()),
            reference_uuid: None,
            instrument_id: None,
            profile_id: None,
            payment_token: None,
            captured_amount: 0,
            refunded_amount: 250,
            voided: false,
            error_code: None,
            error_message: None,
            card_summary: None,
            body_hash: String::new(),
            extra: "{}".into(),
            created_at,
            updated_at: created_at,
        }
    }

    #[test]
    fn cursors_round_trip_to_the_nanosecond_and_refuse_anything_else() {
        let at = DateTime::from_timestamp_nanos(1_795_000_000_123_456_789).naive_utc();
        let t = tx_at(at, "0123456789abcdef0123");
        let c = encode_cursor(&t).expect("cursor");
        assert_eq!(c.len(), 36);
        assert_eq!(
            decode_cursor(&c),
            Some(Position {
                created_at: at,
                uuid: t.uuid.clone()
            })
        );
        for bad in [
            "",
            &c[..35],
            &format!("{c}0"),
            &c.to_ascii_uppercase(),
            "ffffffffffffffff0123456789abcdef0123",
            "0000000000000000' OR '1'='1'--------",
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
            assert!(parse(&raw(&[("after", bad)])).is_err() || bad.is_empty());
        }
    }

    #[test]
    fn amounts_show_what_is_left_to_refund_or_capture() {
        let t = tx_at(DateTime::from_timestamp_nanos(0).naive_utc(), "a");
        let shown: Vec<String> = amounts(&t)
            .into_iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        assert_eq!(
            shown,
            [
                "Amount: 9.99 EUR",
                "Refunded: 2.50 EUR",
                "Remaining to refund: 7.49 EUR"
            ]
        );
        let mut p = t.clone();
        p.transaction_type = "PREAUTHORIZE".into();
        p.captured_amount = 400;
        let shown: Vec<String> = amounts(&p).into_iter().map(|(_, v)| v).collect();
        assert_eq!(shown, ["9.99 EUR", "4.00 EUR", "5.99 EUR"]);
        p.voided = true;
        p.captured_amount = 0;
        assert_eq!(amounts(&p)[2].1, "0.00 EUR");
    }

    #[test]
    fn the_means_shown_are_masked_fields_only() {
        let s = r#"{"returnData":{"_TYPE":"cardData","type":"visa","cardHolder":"Ann Smith",
            "expiryMonth":"12","expiryYear":"2030","firstSixDigits":"411111",
            "lastFourDigits":"1111","fingerprint":"fp-secret"},"vault":"sealed-secret"}"#;
        let shown = format!("{:?}", means(Some(s)));
        assert!(shown.contains("411111******1111"), "{shown}");
        assert!(shown.contains("12/2030"));
        for hidden in ["Ann Smith", "fp-secret", "sealed-secret"] {
            assert!(!shown.contains(hidden), "{hidden} in {shown}");
        }
        assert!(means(None).is_empty());
        assert!(means(Some("not json")).is_empty());
    }
}
