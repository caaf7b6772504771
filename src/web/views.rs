//! Small view helpers shared by console pages: select options and parsing of simple form values.

use crate::domain::Role;
use crate::models::merchant::Merchant;
use crate::models::tenant::Tenant;
use crate::web::error::HtmlError;

/// One `<option>` of a `<select>`, with its selected state computed in Rust.
pub struct SelectOption {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// Tenants in tree order, indented by depth (relative to the shallowest one).
pub fn tenant_options(list: &[Tenant], selected: &str) -> Vec<SelectOption> {
    let base = list.iter().map(|t| t.depth).min().unwrap_or(0);
    list.iter()
        .map(|t| SelectOption {
            value: t.id.clone(),
            label: format!(
                "{}{}",
                "— ".repeat((t.depth - base).max(0) as usize),
                t.name
            ),
            selected: t.id == selected,
        })
        .collect()
}

/// Merchants labelled with their tenant's name.
pub fn merchant_options(list: &[(Merchant, String)], selected: &str) -> Vec<SelectOption> {
    list.iter()
        .map(|(m, tenant)| SelectOption {
            value: m.id.clone(),
            label: format!("{} ({tenant})", m.name),
            selected: m.id == selected,
        })
        .collect()
}

/// The roles `actor_role` may grant (its own and those below), highest first.
pub fn role_options(actor_role: Role, selected: &str) -> Vec<SelectOption> {
    Role::ALL
        .into_iter()
        .filter(|r| *r <= actor_role)
        .map(|r| SelectOption {
            value: r.as_str().into(),
            label: r.label().into(),
            selected: r.as_str() == selected,
        })
        .collect()
}

/// The `active` field of activate/deactivate forms: exactly "true" or "false".
pub fn parse_active(v: &str) -> Result<bool, HtmlError> {
    match v {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(HtmlError::BadRequest(
            "The field 'active' must be \"true\" or \"false\".".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn active_accepts_only_true_and_false() {
        assert!(parse_active("true").is_ok_and(|v| v));
        assert!(parse_active("false").is_ok_and(|v| !v));
        assert!(parse_active("yes").is_err());
        assert!(parse_active("").is_err());
    }

    #[test]
    fn roles_offered_never_exceed_the_actors_role() {
        let values = |r| {
            role_options(r, "")
                .into_iter()
                .map(|o| o.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(Role::TenantManager),
            ["tenant_manager", "merchant_admin"]
        );
        assert_eq!(values(Role::PlatformAdmin).len(), 3);
        assert_eq!(values(Role::MerchantAdmin), ["merchant_admin"]);
    }
}
