//! A Transaction API request as the engine takes it: the typed fields IXOPAY documents (unknown
//! ones are ignored by the parser), the transaction type, and the validation every request
//! passes before anything is read or written.

use crate::gateway::amount;
use crate::gateway::signature::BodyHash;
use crate::payments::error::PayError;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub use crate::domain::TxKind;

/// One Transaction API request, parsed by the protocol layer.
pub struct Call<'a> {
    pub kind: TxKind,
    pub request: &'a TxRequest,
    pub body_hash: BodyHash,
    /// Who calls: a stored instrument opened for this call is recorded as theirs.
    pub reader: &'a crate::audit::access::Reader,
}

// ---------- request ----------

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct TxRequest {
    pub merchant_transaction_id: Option<String>,
    pub additional_id1: Option<String>,
    pub additional_id2: Option<String>,
    pub extra_data: Option<BTreeMap<String, String>>,
    pub merchant_meta_data: Option<String>,
    pub reference_uuid: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub success_url: Option<String>,
    pub cancel_url: Option<String>,
    pub error_url: Option<String>,
    pub callback_url: Option<String>,
    pub transaction_token: Option<String>,
    pub description: Option<String>,
    pub with_register: Option<bool>,
    pub transaction_indicator: Option<String>,
    pub customer: Option<CustomerIn>,
    pub customer_profile_data: Option<ProfileDataIn>,
    pub three_d_secure_data: Option<Map<String, Value>>,
    pub language: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct CustomerIn {
    pub identification: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<String>,
    pub gender: Option<String>,
    pub billing_address1: Option<String>,
    pub billing_address2: Option<String>,
    pub billing_city: Option<String>,
    pub billing_postcode: Option<String>,
    pub billing_state: Option<String>,
    pub billing_country: Option<String>,
    pub billing_phone: Option<String>,
    pub shipping_first_name: Option<String>,
    pub shipping_last_name: Option<String>,
    pub shipping_company: Option<String>,
    pub shipping_address1: Option<String>,
    pub shipping_address2: Option<String>,
    pub shipping_city: Option<String>,
    pub shipping_postcode: Option<String>,
    pub shipping_state: Option<String>,
    pub shipping_country: Option<String>,
    pub shipping_phone: Option<String>,
    pub company: Option<String>,
    pub email: Option<String>,
    pub email_verified: Option<bool>,
    pub ip_address: Option<String>,
    pub national_id: Option<String>,
    pub extra_data: Option<BTreeMap<String, String>>,
    pub payment_data: Option<PaymentDataIn>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct PaymentDataIn {
    pub iban_data: Option<IbanDataIn>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct IbanDataIn {
    pub iban: Option<String>,
    pub bic: Option<String>,
    pub mandate_id: Option<String>,
    pub mandate_date: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(rename_all = "camelCase")]
pub struct ProfileDataIn {
    pub profile_guid: Option<String>,
    pub customer_identification: Option<String>,
    pub mark_as_preferred: Option<bool>,
}

pub(crate) struct Check(Vec<String>);

impl Check {
    fn len(&mut self, field: &str, v: &Option<String>, min: usize, max: usize) {
        if let Some(s) = v {
            let n = s.chars().count();
            if n < min || n > max {
                self.0.push(if min > 0 {
                    format!("{field}: must be {min} to {max} characters")
                } else {
                    format!("{field}: at most {max} characters")
                });
            }
        }
    }
    fn map(&mut self, field: &str, v: &Option<BTreeMap<String, String>>) {
        if let Some(m) = v {
            if m.len() > 64 {
                self.0.push(format!("{field}: at most 64 keys"));
            }
            if m.iter()
                .any(|(k, v)| k.chars().count() > 64 || v.chars().count() > 8192)
            {
                self.0.push(format!(
                    "{field}: keys at most 64 and values at most 8192 characters"
                ));
            }
        }
    }
    fn pattern(&mut self, field: &str, v: &Option<String>, ok: impl Fn(&str) -> bool, what: &str) {
        if let Some(s) = v
            && !ok(s)
        {
            self.0.push(format!("{field}: {what}"));
        }
    }
}

pub(crate) fn is_date(s: &str) -> bool {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").is_ok() && s.len() == 10
}

/// The rule for successUrl, cancelUrl, errorUrl and callbackUrl: http(s), at most 4096 bytes,
/// no whitespace and no control character (C0, DEL, C1): a URL the browser is sent to in a
/// `Location` header must be one that header can carry.
pub(crate) fn is_url(s: &str) -> bool {
    (s.starts_with("https://") || s.starts_with("http://"))
        && s.len() <= 4096
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Field rules of the Transaction API (spec 2.2). Answers every problem at once.
pub(crate) fn validate(kind: TxKind, r: &TxRequest) -> Result<(), PayError> {
    let mut c = Check(vec![]);
    if r.merchant_transaction_id
        .as_deref()
        .is_none_or(str::is_empty)
    {
        c.0.push("merchantTransactionId: is required".into());
    }
    c.len("merchantTransactionId", &r.merchant_transaction_id, 1, 50);
    c.len("additionalId1", &r.additional_id1, 1, 50);
    c.len("additionalId2", &r.additional_id2, 1, 50);
    c.map("extraData", &r.extra_data);
    c.len("merchantMetaData", &r.merchant_meta_data, 0, 255);
    c.len("referenceUuid", &r.reference_uuid, 1, 50);
    c.len("transactionToken", &r.transaction_token, 1, 8192);
    c.len("description", &r.description, 0, 255);
    for (f, v) in [
        ("successUrl", &r.success_url),
        ("cancelUrl", &r.cancel_url),
        ("errorUrl", &r.error_url),
        ("callbackUrl", &r.callback_url),
    ] {
        c.pattern(
            f,
            v,
            is_url,
            "must be an http(s) URL of at most 4096 characters, without spaces or control characters",
        );
    }
    c.pattern(
        "transactionIndicator",
        &r.transaction_indicator,
        |s| {
            [
                "SINGLE",
                "INITIAL",
                "RECURRING",
                "FIRST-CARDONFILE",
                "CARDONFILE",
                "CARDONFILE-MERCHANT-INITIATED",
                "MOTO",
            ]
            .contains(&s)
        },
        "unknown value",
    );
    let needs_amount = matches!(
        kind,
        TxKind::Debit | TxKind::Preauthorize | TxKind::Capture | TxKind::Refund
    );
    if needs_amount && r.amount.is_none() {
        c.0.push("amount: is required".into());
    }
    if (needs_amount || r.amount.is_some()) && r.currency.is_none() {
        c.0.push("currency: is required".into());
    }
    if let (Some(a), Some(cur)) = (&r.amount, &r.currency) {
        match amount::parse_amount(a, cur) {
            Ok(v) if v <= 0 && needs_amount => c.0.push("amount: must be greater than zero".into()),
            Ok(_) => {}
            Err(e) => c.0.push(format!("amount/currency: {e}")),
        }
    }
    if matches!(kind, TxKind::Capture | TxKind::Void | TxKind::Refund) && r.reference_uuid.is_none()
    {
        c.0.push("referenceUuid: is required".into());
    }
    if let Some(cu) = &r.customer {
        c.len("customer.identification", &cu.identification, 0, 36);
        for (f, v) in [
            ("customer.firstName", &cu.first_name),
            ("customer.lastName", &cu.last_name),
            ("customer.billingAddress1", &cu.billing_address1),
            ("customer.billingAddress2", &cu.billing_address2),
            ("customer.billingCity", &cu.billing_city),
            ("customer.shippingFirstName", &cu.shipping_first_name),
            ("customer.shippingLastName", &cu.shipping_last_name),
            ("customer.shippingCompany", &cu.shipping_company),
            ("customer.shippingAddress1", &cu.shipping_address1),
            ("customer.shippingAddress2", &cu.shipping_address2),
            ("customer.shippingCity", &cu.shipping_city),
            ("customer.company", &cu.company),
            ("customer.ipAddress", &cu.ip_address),
        ] {
            c.len(f, v, 0, 50);
        }
        c.len("customer.billingPostcode", &cu.billing_postcode, 0, 16);
        c.len("customer.shippingPostcode", &cu.shipping_postcode, 0, 16);
        c.len("customer.billingState", &cu.billing_state, 0, 30);
        c.len("customer.shippingState", &cu.shipping_state, 0, 30);
        c.len("customer.billingPhone", &cu.billing_phone, 0, 20);
        c.len("customer.shippingPhone", &cu.shipping_phone, 0, 20);
        c.len("customer.email", &cu.email, 0, 255);
        c.len("customer.nationalId", &cu.national_id, 0, 20);
        c.pattern(
            "customer.birthDate",
            &cu.birth_date,
            is_date,
            "must be YYYY-MM-DD",
        );
        c.pattern(
            "customer.gender",
            &cu.gender,
            |s| s == "M" || s == "F",
            "must be M or F",
        );
        let country = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_uppercase());
        c.pattern(
            "customer.billingCountry",
            &cu.billing_country,
            country,
            "must be two upper-case letters",
        );
        c.pattern(
            "customer.shippingCountry",
            &cu.shipping_country,
            country,
            "must be two upper-case letters",
        );
        c.pattern(
            "customer.email",
            &cu.email,
            |s| s.contains('@') && !s.contains(char::is_whitespace),
            "is not an email address",
        );
        c.map("customer.extraData", &cu.extra_data);
        if let Some(ib) = cu.payment_data.as_ref().and_then(|p| p.iban_data.as_ref()) {
            c.len("customer.paymentData.ibanData.iban", &ib.iban, 1, 34);
            c.len("customer.paymentData.ibanData.bic", &ib.bic, 0, 11);
            c.len(
                "customer.paymentData.ibanData.mandateId",
                &ib.mandate_id,
                0,
                50,
            );
        }
    }
    if let Some(p) = &r.customer_profile_data {
        c.len("customerProfileData.profileGuid", &p.profile_guid, 1, 36);
        c.len(
            "customerProfileData.customerIdentification",
            &p.customer_identification,
            1,
            36,
        );
        if p.profile_guid.is_none() && p.customer_identification.is_none() {
            c.0.push("customerProfileData: either profileGuid or customerIdentification must be provided".into());
        }
    }
    if let Some(t) = r
        .three_d_secure_data
        .as_ref()
        .and_then(|m| m.get("3dsecure"))
        && !matches!(t.as_str(), Some("OFF" | "OPTIONAL" | "MANDATORY"))
    {
        c.0.push("threeDSecureData.3dsecure: must be OFF, OPTIONAL or MANDATORY".into());
    }
    if c.0.is_empty() {
        Ok(())
    } else {
        Err(PayError::invalid(c.0.join("; ")))
    }
}
