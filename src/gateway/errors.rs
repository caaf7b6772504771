//! The IXOPAY error code catalogue (spec 2.7) and the general error body
//! `{"success": false, "errorMessage": "…", "errorCode": <int>}` (spec 1.7, 2.4).

use serde::{Deserialize, Serialize};

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident = $code:literal => $message:literal, )*) => {
        /// An IXOPAY error code with its documented message (spec 2.7).
        ///
        /// Clients branch on the numeric code, not on the message (spec 1.7).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorCode {
            /// Every code in the catalogue, in numeric order.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant,)*];

            /// The numeric `errorCode`.
            pub const fn code(self) -> u32 {
                match self { $(ErrorCode::$variant => $code,)* }
            }

            /// The documented message for the code.
            pub const fn message(self) -> &'static str {
                match self { $(ErrorCode::$variant => $message,)* }
            }

            /// Looks a numeric code up in the catalogue.
            pub const fn from_code(code: u32) -> Option<ErrorCode> {
                match code { $($code => Some(ErrorCode::$variant),)* _ => None }
            }
        }
    };
}

error_codes! {
    // General (1xxx, 9999).
    RequestFailed = 1000 => "Request failed",
    InvalidResponse = 1001 => "Invalid response",
    InvalidRequestData = 1002 => "Invalid request data",
    ProcessingError = 1003 => "Processing error",
    InvalidSignature = 1004 => "Invalid signature",
    /// Called `INVALID_XML` in the PHP client.
    InvalidRequestBody = 1005 => "Invalid request body",
    LogicalError = 1006 => "Logical error",
    InvalidConfiguration = 1007 => "Invalid configuration",
    UnexpectedSystemError = 1008 => "Unexpected system error",
    /// Sent with HTTP 429 (spec 6, rate limits).
    TooManyRequests = 1009 => "Too many requests",
    SystemMaintenance = 1010 => "System maintenance",
    // Payment (2xxx).
    AccountClosedExternally = 2001 => "Account closed externally",
    UserCancelled = 2002 => "User cancelled",
    TransactionDeclined = 2003 => "Transaction declined",
    QuotaRegulation = 2004 => "Quota regulation",
    TransactionExpired = 2005 => "Transaction expired",
    InsufficientFunds = 2006 => "Insufficient funds",
    IncorrectPaymentInfo = 2007 => "Incorrect payment info",
    InvalidCard = 2008 => "Invalid card",
    ExpiredCard = 2009 => "Expired card",
    FraudulentCard = 2010 => "Fraudulent card",
    UnsupportedCard = 2011 => "Unsupported card",
    TransactionCancelled = 2012 => "Transaction cancelled",
    RiskCheckBlock = 2013 => "Risk check block",
    PickupCard = 2014 => "Pickup card",
    LostCard = 2015 => "Lost card",
    StolenCard = 2016 => "Stolen card",
    IbanInvalid = 2017 => "IBAN invalid",
    BicInvalid = 2018 => "BIC invalid",
    CustomerDataInvalid = 2019 => "Customer data invalid",
    CvvRequired = 2020 => "CVV required",
    ThreeDSecureVerificationFailed = 2021 => "3D-Secure verification failed",
    ThreeDSecureSoftDeclined = 2022 => "3D-Secure soft declined",
    // Network (3xxx).
    Timeout = 3001 => "Timeout",
    NotAllowed = 3002 => "Not Allowed",
    TemporaryUnavailable = 3003 => "Temporary unavailable",
    DuplicateTransactionId = 3004 => "Duplicate transaction ID",
    CommunicationError = 3005 => "Communication error",
    // Post-processing (4xxx).
    ChargebackReverted = 4001 => "Chargeback reverted",
    PaymentDispute = 4002 => "Payment dispute",
    // Status API (8xxx).
    /// The transaction does not exist for this API key's connector.
    TransactionNotFound = 8001 => "Transaction not found",
    UnknownError = 9999 => "Unknown error",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.code(), self.message())
    }
}

/// The general error body of both IXOPAY APIs (spec 1.7, 2.4):
/// `{"success": false, "errorMessage": "…", "errorCode": 1002}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiErrorBody {
    /// Always `false`.
    pub success: bool,
    pub error_message: String,
    pub error_code: u32,
}

impl ApiErrorBody {
    /// An error body with a specific message, e.g.
    /// `amount: 'amount' is required` for [`ErrorCode::InvalidRequestData`].
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiErrorBody {
            success: false,
            error_message: message.into(),
            error_code: code.code(),
        }
    }
}

impl From<ErrorCode> for ApiErrorBody {
    /// An error body carrying the catalogue message of `code`.
    fn from(code: ErrorCode) -> Self {
        ApiErrorBody::new(code, code.message())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_sorted_and_unique() {
        let codes: Vec<u32> = ErrorCode::ALL.iter().map(|c| c.code()).collect();
        assert!(
            codes.windows(2).all(|w| w[0] < w[1]),
            "sorted, no duplicates"
        );
        for &c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_code(c.code()), Some(c));
            assert!(!c.message().is_empty());
        }
        assert_eq!(ErrorCode::from_code(1011), None);
        assert_eq!(ErrorCode::from_code(0), None);
    }

    #[test]
    fn catalogue_covers_the_documented_ranges() {
        let wanted = (1000..=1010)
            .chain([9999])
            .chain(2001..=2022)
            .chain(3001..=3005)
            .chain([4001, 4002, 8001]);
        for code in wanted {
            assert!(ErrorCode::from_code(code).is_some(), "missing {code}");
        }
        assert_eq!(ErrorCode::ALL.len(), 11 + 1 + 22 + 5 + 2 + 1);
    }

    #[test]
    fn documented_messages() {
        assert_eq!(ErrorCode::InvalidSignature.code(), 1004);
        assert_eq!(ErrorCode::TooManyRequests.message(), "Too many requests");
        assert_eq!(
            ErrorCode::TransactionDeclined.message(),
            "Transaction declined"
        );
        assert_eq!(ErrorCode::IbanInvalid.code(), 2017);
        assert_eq!(ErrorCode::DuplicateTransactionId.code(), 3004);
        assert_eq!(ErrorCode::TransactionNotFound.code(), 8001);
        assert_eq!(
            ErrorCode::ProcessingError.to_string(),
            "1003 Processing error"
        );
    }

    #[test]
    fn error_body_uses_the_exact_field_names() {
        let body = ApiErrorBody::new(
            ErrorCode::InvalidRequestData,
            "amount: 'amount' is required",
        );
        let json = serde_json::to_value(&body).expect("serialize");
        assert_eq!(
            json,
            serde_json::json!({
                "success": false,
                "errorMessage": "amount: 'amount' is required",
                "errorCode": 1002
            })
        );
        let back: ApiErrorBody = serde_json::from_value(json).expect("deserialize");
        assert_eq!(back, body);
    }

    #[test]
    fn error_body_from_code_uses_catalogue_message() {
        let body = ApiErrorBody::from(ErrorCode::InvalidSignature);
        assert!(!body.success);
        assert_eq!(body.error_code, 1004);
        assert_eq!(body.error_message, "Invalid signature");
    }
}
