//! Validated value types and the caller's scope. No diesel, no actix here.

use crate::error::FieldErrors;

/// "1 profile", "2 profiles", "0 profiles": a count with its noun in the right number, for
/// every message and page that counts something.
pub fn plural(n: impl std::borrow::Borrow<i64>, one: &str, many: &str) -> String {
    let n = *n.borrow();
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The seven transaction types of the Transaction API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxKind {
    Debit,
    Preauthorize,
    Capture,
    Void,
    Register,
    Deregister,
    Refund,
}

impl TxKind {
    pub const ALL: [TxKind; 7] = [
        TxKind::Debit,
        TxKind::Preauthorize,
        TxKind::Capture,
        TxKind::Void,
        TxKind::Register,
        TxKind::Deregister,
        TxKind::Refund,
    ];

    /// The name in the API's URL (`debit`, `preauthorize`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            TxKind::Debit => "debit",
            TxKind::Preauthorize => "preauthorize",
            TxKind::Capture => "capture",
            TxKind::Void => "void",
            TxKind::Register => "register",
            TxKind::Deregister => "deregister",
            TxKind::Refund => "refund",
        }
    }

    /// The stored and reported `transactionType` (`DEBIT`, `PREAUTHORIZE`, …).
    pub const fn stored(self) -> &'static str {
        match self {
            TxKind::Debit => "DEBIT",
            TxKind::Preauthorize => "PREAUTHORIZE",
            TxKind::Capture => "CAPTURE",
            TxKind::Void => "VOID",
            TxKind::Register => "REGISTER",
            TxKind::Deregister => "DEREGISTER",
            TxKind::Refund => "REFUND",
        }
    }

    /// From the API's URL name.
    pub fn parse(s: &str) -> Option<TxKind> {
        TxKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// From the stored `transactionType`.
    pub fn from_stored(s: &str) -> Option<TxKind> {
        TxKind::ALL.into_iter().find(|k| k.stored() == s)
    }
}

/// A transaction's status: final (`Success`, `Error`) or waiting for the customer (`Pending`:
/// a hosted payment page or a 3-D Secure challenge is open).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxStatus {
    Success,
    Error,
    Pending,
}

impl TxStatus {
    pub const ALL: [TxStatus; 3] = [TxStatus::Success, TxStatus::Error, TxStatus::Pending];

    /// As stored and reported (`transactionStatus`).
    pub const fn as_str(self) -> &'static str {
        match self {
            TxStatus::Success => "SUCCESS",
            TxStatus::Error => "ERROR",
            TxStatus::Pending => "PENDING",
        }
    }

    pub fn parse(s: &str) -> Option<TxStatus> {
        TxStatus::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    MerchantAdmin,
    TenantManager,
    PlatformAdmin,
}

impl Role {
    pub const ALL: [Role; 3] = [
        Role::PlatformAdmin,
        Role::TenantManager,
        Role::MerchantAdmin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "platform_admin",
            Role::TenantManager => "tenant_manager",
            Role::MerchantAdmin => "merchant_admin",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Role::PlatformAdmin => "Platform admin",
            Role::TenantManager => "Tenant manager",
            Role::MerchantAdmin => "Merchant admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What the caller may see. Every query on tenant-owned data filters through this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Platform admin: everything.
    Platform,
    /// Tenant manager: the tenant whose materialized path is `path`, and all below it.
    Tenant { tenant_id: String, path: String },
    /// Merchant admin: one merchant (of the tenant at `tenant_path`).
    Merchant {
        merchant_id: String,
        tenant_id: String,
        tenant_path: String,
    },
}

impl Scope {
    /// May the caller see objects of the tenant at `tenant_path`?
    pub fn covers_tenant_path(&self, tenant_path: &str) -> bool {
        match self {
            Scope::Platform => true,
            Scope::Tenant { path, .. } => tenant_path.starts_with(path.as_str()),
            Scope::Merchant { .. } => false,
        }
    }

    /// May the caller see the merchant `merchant_id` of the tenant at `tenant_path`?
    pub fn covers_merchant(&self, merchant_id: &str, tenant_path: &str) -> bool {
        match self {
            Scope::Merchant { merchant_id: m, .. } => m == merchant_id,
            other => other.covers_tenant_path(tenant_path),
        }
    }

    /// The path prefix to filter on, `None` for everything (platform).
    pub fn path_prefix(&self) -> Option<&str> {
        match self {
            Scope::Platform => None,
            Scope::Tenant { path, .. } => Some(path),
            Scope::Merchant { tenant_path, .. } => Some(tenant_path),
        }
    }

    pub fn is_merchant(&self) -> bool {
        matches!(self, Scope::Merchant { .. })
    }
}

/// The person making a console request.
#[derive(Debug, Clone)]
pub struct Actor {
    pub user_id: String,
    pub username: String,
    pub role: Role,
    pub scope: Scope,
}

impl Actor {
    /// The built-in actor for work the system does itself (demo data, CLI).
    pub fn system() -> Actor {
        Actor {
            user_id: String::new(),
            username: "system".into(),
            role: Role::PlatformAdmin,
            scope: Scope::Platform,
        }
    }
    /// A machine caller of a connector's API (an API user, or a Monri client), for the audit
    /// log: no user id, the narrowest scope (the connector's merchant), and a name that says
    /// which credentials acted.
    pub fn api_client(
        name: String,
        merchant_id: &str,
        tenant_id: &str,
        tenant_path: &str,
    ) -> Actor {
        Actor {
            user_id: String::new(),
            username: name,
            role: Role::MerchantAdmin,
            scope: Scope::Merchant {
                merchant_id: merchant_id.into(),
                tenant_id: tenant_id.into(),
                tenant_path: tenant_path.into(),
            },
        }
    }
    pub fn can_manage(&self) -> bool {
        self.role >= Role::TenantManager
    }
}

/// Trims a display name and checks it: 1 to `max` characters, no control characters.
pub fn clean_name(errors: &mut FieldErrors, field: &str, raw: &str, max: usize) -> String {
    let v = raw.trim().to_string();
    if v.is_empty() {
        errors.add(field, "This field is required.");
    } else if v.chars().count() > max {
        errors.add(field, format!("At most {max} characters."));
    } else if v.chars().any(char::is_control) {
        errors.add(field, "Control characters are not allowed.");
    }
    v
}

/// Usernames: 3 to 64 of `a-z 0-9 . _ -`, stored lowercase.
pub fn clean_username(errors: &mut FieldErrors, raw: &str) -> String {
    let v = raw.trim().to_ascii_lowercase();
    if v.len() < 3 || v.len() > 64 {
        errors.add("username", "Between 3 and 64 characters.");
    } else if !v
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        errors.add("username", "Use only letters, digits, '.', '_' and '-'.");
    }
    v
}

/// People's passwords: 12 to 256 characters (NIST SP 800-63B: length over composition rules).
pub fn check_new_password(errors: &mut FieldErrors, field: &str, pw: &str) {
    let n = pw.chars().count();
    if n < 12 {
        errors.add(field, "At least 12 characters.");
    } else if n > 256 {
        errors.add(field, "At most 256 characters.");
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn transaction_kinds_and_statuses_round_trip_and_refuse_strangers() {
        for k in TxKind::ALL {
            assert_eq!(TxKind::parse(k.as_str()), Some(k));
            assert_eq!(TxKind::from_stored(k.stored()), Some(k));
            assert_eq!(k.stored(), k.as_str().to_ascii_uppercase());
        }
        assert_eq!(TxKind::parse("DEBIT"), None);
        assert_eq!(TxKind::parse("payout"), None);
        for st in TxStatus::ALL {
            assert_eq!(TxStatus::parse(st.as_str()), Some(st));
        }
        assert_eq!(TxStatus::parse("success"), None);
    }

    use super::*;

    #[test]
    fn tenant_scope_covers_its_subtree_only() {
        let s = Scope::Tenant {
            tenant_id: "a".into(),
            path: "/a/".into(),
        };
        assert!(s.covers_tenant_path("/a/"));
        assert!(s.covers_tenant_path("/a/b/"));
        assert!(!s.covers_tenant_path("/ab/"));
        assert!(!s.covers_tenant_path("/x/a/"));
        assert!(Scope::Platform.covers_tenant_path("/x/"));
    }

    #[test]
    fn merchant_scope_covers_only_its_merchant() {
        let s = Scope::Merchant {
            merchant_id: "m".into(),
            tenant_id: "a".into(),
            tenant_path: "/a/".into(),
        };
        assert!(s.covers_merchant("m", "/a/"));
        assert!(!s.covers_merchant("n", "/a/"));
        assert!(!s.covers_tenant_path("/a/"));
    }

    #[test]
    fn names_and_usernames_are_validated() {
        let mut e = FieldErrors::new();
        assert_eq!(clean_name(&mut e, "name", "  Acme  ", 10), "Acme");
        assert!(e.is_empty());
        clean_name(&mut e, "name", "   ", 10);
        assert!(e.get("name").is_some());
        let mut e = FieldErrors::new();
        assert_eq!(clean_username(&mut e, "Manager"), "manager");
        assert!(e.is_empty());
        clean_username(&mut e, "a b");
        assert!(e.get("username").is_some());
    }
}

#[cfg(test)]
mod plural_tests {
    #[test]
    fn plurals_agree_with_their_count() {
        assert_eq!(super::plural(0, "profile", "profiles"), "0 profiles");
        assert_eq!(super::plural(1, "profile", "profiles"), "1 profile");
        assert_eq!(super::plural(2, "profile", "profiles"), "2 profiles");
    }
}
