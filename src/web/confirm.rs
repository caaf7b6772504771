//! The confirmation page every consequential console action goes through: the form posts
//! once without `confirmed=yes` and gets this page, which states the consequences (in numbers,
//! from `console::impact` or the action's own counts) and posts the same values again with
//! `confirmed=yes`. Nothing changes before that second post.

use askama::Template;

use crate::web::ctx::PageCtx;

/// The field that marks a confirmed post.
pub const FIELD: &str = "confirmed";

#[derive(Template)]
#[template(path = "confirm.html")]
pub struct ConfirmPage {
    pub ctx: PageCtx,
    /// "Rotate the shared secret of Acme Shop Cards?"
    pub title: String,
    /// Breadcrumbs before the current one: (href, label).
    pub crumbs: Vec<(String, String)>,
    pub consequences: Vec<String>,
    pub action: String,
    /// The form's values, posted again (never the CSRF token: the page has its own).
    pub fields: Vec<(String, String)>,
    pub button: String,
    pub cancel: String,
}

impl ConfirmPage {
    /// The page for a form whose values were `pairs`.
    pub fn of_form(ctx: PageCtx, pairs: &[(String, String)]) -> ConfirmPage {
        ConfirmPage {
            ctx,
            title: String::new(),
            crumbs: vec![],
            consequences: vec![],
            action: String::new(),
            fields: pairs
                .iter()
                .filter(|(k, _)| k != "csrf_token" && k != FIELD)
                .cloned()
                .collect(),
            button: "Confirm".into(),
            cancel: "/".into(),
        }
    }
}

/// The form of an action that has no fields of its own: only the confirmation.
#[derive(Debug, Default, serde::Deserialize)]
pub struct Confirmable {
    #[serde(default)]
    pub confirmed: Option<String>,
}

impl Confirmable {
    pub fn yes(&self) -> bool {
        self.confirmed.as_deref() == Some("yes")
    }
}

/// The confirmation page of an action without fields, posting to `action`.
pub fn simple(
    ctx: PageCtx,
    title: String,
    crumbs: Vec<(String, String)>,
    consequences: Vec<String>,
    action: String,
    button: &str,
    cancel: String,
) -> ConfirmPage {
    ConfirmPage {
        ctx,
        title,
        crumbs,
        consequences,
        action,
        fields: vec![],
        button: button.to_string(),
        cancel,
    }
}

/// Whether the post carries `confirmed=yes`.
pub fn is_confirmed(pairs: &[(String, String)]) -> bool {
    pairs.iter().any(|(k, v)| k == FIELD && v == "yes")
}
