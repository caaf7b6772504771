//! What a payment session (hosted page or 3-D Secure challenge) keeps of the API request: only
//! the parsed, known fields that finishing the payment reads, never the request body. Stored as
//! JSON in `payment_sessions.request` while the session is open, and emptied when it ends
//! ([`crate::models::payment_session::close_all`]).
//!
//! What finishing reads ([`crate::payments::checkout`] and [`crate::payments::engine::settle`]):
//! the description (shown on the page), `withRegister`, `threeDSecureData.3dsecure`,
//! `customerProfileData` and, only with `customerProfileData`, the `customer` fields copied into
//! the profile. Amount, currency, the merchant's URLs and the ids are on the transaction row.
//!
//! Deleting a profile makes open sessions that would register into it forget its customer data
//! ([`forget_customer`]).
//!
//! The JSON uses the request's own names and shape, so a session stored by an older version
//! (the whole request body) is read the same way; its other fields are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::db::{DbConnection, write_tx};
use crate::error::ServiceError;
use crate::models::connector;
use crate::models::payment_session as ps;
use crate::models::profile::Profile;
use crate::models::transaction as txm;
use crate::payments::request::{CustomerIn, ProfileDataIn, TxRequest};
use crate::vault::sharing::effective;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SessionRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with_register: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub three_d_secure_data: Option<ThreeDs>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_profile_data: Option<ProfileData>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
}

/// `threeDSecureData`: only the requested mode.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ThreeDs {
    #[serde(rename = "3dsecure", default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProfileData {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile_guid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_identification: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mark_as_preferred: Option<bool>,
}

/// The `customer` fields a profile takes (those `engine::customer_data` copies); shipping data,
/// payment data and the like are not needed to finish a payment and are not kept.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address1: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address2: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_city: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_country: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub national_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_data: Option<BTreeMap<String, String>>,
}

impl SessionRequest {
    /// The fields of the (validated) request `r` that finishing its payment needs.
    pub fn of(r: &TxRequest) -> SessionRequest {
        let profile = r.customer_profile_data.as_ref().map(|p| ProfileData {
            profile_guid: p.profile_guid.clone(),
            customer_identification: p.customer_identification.clone(),
            mark_as_preferred: p.mark_as_preferred,
        });
        let customer = match (&profile, &r.customer) {
            (Some(_), Some(c)) => Some(Customer {
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                birth_date: c.birth_date.clone(),
                gender: c.gender.clone(),
                billing_address1: c.billing_address1.clone(),
                billing_address2: c.billing_address2.clone(),
                billing_city: c.billing_city.clone(),
                billing_postcode: c.billing_postcode.clone(),
                billing_state: c.billing_state.clone(),
                billing_country: c.billing_country.clone(),
                billing_phone: c.billing_phone.clone(),
                company: c.company.clone(),
                email: c.email.clone(),
                ip_address: c.ip_address.clone(),
                national_id: c.national_id.clone(),
                extra_data: c.extra_data.clone(),
            }),
            _ => None,
        };
        let mode = r
            .three_d_secure_data
            .as_ref()
            .and_then(|m| m.get("3dsecure"))
            .and_then(Value::as_str)
            .map(str::to_string);
        SessionRequest {
            description: r.description.clone(),
            with_register: r.with_register,
            three_d_secure_data: mode.map(|m| ThreeDs { mode: Some(m) }),
            customer_profile_data: profile,
            customer,
        }
    }

    /// The JSON stored in `payment_sessions.request`.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// Reads a stored `payment_sessions.request`; an ended session's is empty.
    pub fn from_json(s: &str) -> Result<SessionRequest, serde_json::Error> {
        if s.trim().is_empty() {
            return Ok(SessionRequest::default());
        }
        serde_json::from_str(s)
    }

    /// The request as the engine reads it, holding these fields only.
    pub fn to_request(&self) -> TxRequest {
        let three_ds = self.three_d_secure_data.as_ref().map(|t| {
            let mut m = Map::new();
            if let Some(mode) = &t.mode {
                m.insert("3dsecure".into(), Value::String(mode.clone()));
            }
            m
        });
        TxRequest {
            description: self.description.clone(),
            with_register: self.with_register,
            three_d_secure_data: three_ds,
            customer_profile_data: self.customer_profile_data.as_ref().map(|p| ProfileDataIn {
                profile_guid: p.profile_guid.clone(),
                customer_identification: p.customer_identification.clone(),
                mark_as_preferred: p.mark_as_preferred,
            }),
            customer: self.customer.as_ref().map(|c| CustomerIn {
                first_name: c.first_name.clone(),
                last_name: c.last_name.clone(),
                birth_date: c.birth_date.clone(),
                gender: c.gender.clone(),
                billing_address1: c.billing_address1.clone(),
                billing_address2: c.billing_address2.clone(),
                billing_city: c.billing_city.clone(),
                billing_postcode: c.billing_postcode.clone(),
                billing_state: c.billing_state.clone(),
                billing_country: c.billing_country.clone(),
                billing_phone: c.billing_phone.clone(),
                company: c.company.clone(),
                email: c.email.clone(),
                ip_address: c.ip_address.clone(),
                national_id: c.national_id.clone(),
                extra_data: c.extra_data.clone(),
                ..CustomerIn::default()
            }),
            ..TxRequest::default()
        }
    }
}

/// A profile is being deleted: open sessions that would register into it (by its profileGuid
/// or its customerIdentification, on a connector whose effective container is
/// `container_id`) forget the customer data they hold for it. Their payments can still finish;
/// a registration then makes a new profile without that data. Returns how many sessions changed.
///
/// Call it after the deletion committed: it runs in a write transaction of its own and takes no
/// container lock, so it never waits for a session while holding the container a payment
/// finishing on that session waits for (a deadlock on PostgreSQL).
pub fn forget_customer(
    conn: &mut DbConnection,
    container_id: &str,
    profile: &Profile,
) -> Result<usize, ServiceError> {
    write_tx(conn, |conn| {
        forget_customer_now(conn, container_id, profile)
    })
}

fn forget_customer_now(
    conn: &mut DbConnection,
    container_id: &str,
    profile: &Profile,
) -> Result<usize, ServiceError> {
    let mut changed = 0;
    for (id, transaction_uuid, stored) in ps::open_with_customer(conn)? {
        let Ok(mut kept) = SessionRequest::from_json(&stored) else {
            continue;
        };
        let names_it = kept.customer_profile_data.as_ref().is_some_and(|pd| {
            pd.profile_guid.as_deref() == Some(profile.profile_guid.as_str())
                || pd.customer_identification.as_deref()
                    == Some(profile.customer_identification.as_str())
        });
        if !names_it || kept.customer.is_none() {
            continue;
        }
        let Some(t) = txm::find(conn, &transaction_uuid)? else {
            continue;
        };
        let Some(k) = connector::find(conn, &t.connector_id)? else {
            continue;
        };
        if effective(conn, &k)?.container.map(|c| c.id).as_deref() != Some(container_id) {
            continue;
        }
        kept.customer = None;
        // Not if it ended meanwhile (an ended session keeps nothing).
        changed += ps::set_open_request(conn, &id, &kept.to_json())?;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(v: Value) -> TxRequest {
        serde_json::from_value(v).expect("request")
    }

    #[test]
    fn only_the_fields_finishing_needs_are_kept() {
        let r = request(json!({
            "merchantTransactionId": "o-1", "amount": "9.99", "currency": "EUR",
            "successUrl": "https://shop.example/ok", "description": "Two books",
            "withRegister": true, "language": "en", "transactionIndicator": "INITIAL",
            "extraData": {"k": "v"}, "merchantMetaData": "meta",
            "threeDSecureData": {"3dsecure": "OPTIONAL", "channel": "01"},
            "customerProfileData": {"customerIdentification": "c-1", "markAsPreferred": true},
            "customer": {"firstName": "Ann", "email": "ann@example.org",
                         "shippingCity": "Graz", "emailVerified": true,
                         "paymentData": {"ibanData": {"iban": "AT483200000012345864"}}},
        }));
        let s = SessionRequest::of(&r);
        let stored = s.to_json();
        for absent in [
            "o-1",
            "9.99",
            "shop.example",
            "language",
            "INITIAL",
            "meta",
            "channel",
            "Graz",
            "emailVerified",
            "AT48",
        ] {
            assert!(!stored.contains(absent), "{absent} in {stored}");
        }
        let back = SessionRequest::from_json(&stored)
            .expect("read")
            .to_request();
        assert_eq!(back.description.as_deref(), Some("Two books"));
        assert_eq!(back.with_register, Some(true));
        assert_eq!(
            back.three_d_secure_data
                .and_then(|m| m.get("3dsecure").cloned()),
            Some(json!("OPTIONAL"))
        );
        let pd = back.customer_profile_data.expect("profile data");
        assert_eq!(pd.customer_identification.as_deref(), Some("c-1"));
        assert_eq!(pd.mark_as_preferred, Some(true));
        let c = back.customer.expect("customer");
        assert_eq!(c.first_name.as_deref(), Some("Ann"));
        assert_eq!(c.email.as_deref(), Some("ann@example.org"));
        assert!(c.shipping_city.is_none() && c.payment_data.is_none());
    }

    #[test]
    fn customer_data_is_kept_only_for_a_profile() {
        let r = request(json!({"customer": {"firstName": "Ann", "email": "ann@example.org"}}));
        assert_eq!(SessionRequest::of(&r).to_json(), "{}");
    }

    #[test]
    fn an_ended_session_and_an_older_whole_body_are_read() {
        assert_eq!(
            SessionRequest::from_json("").expect("empty"),
            SessionRequest::default()
        );
        let old = json!({"merchantTransactionId": "o-1", "amount": "1.00", "card": {"x": 1},
            "description": "d", "customerProfileData": {"profileGuid": "CP-1"}})
        .to_string();
        let s = SessionRequest::from_json(&old).expect("old");
        assert_eq!(s.description.as_deref(), Some("d"));
        assert_eq!(
            s.customer_profile_data
                .and_then(|p| p.profile_guid)
                .as_deref(),
            Some("CP-1")
        );
    }
}
