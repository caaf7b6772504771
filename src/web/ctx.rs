//! What every console page needs: the user, the CSRF token, flash messages, the active nav item.

use actix_session::Session;

use crate::domain::{Actor, Role};
use crate::error::FieldErrors;
use crate::web::auth::session::{Flash, TypedSession};

pub struct PageCtx {
    pub username: String,
    pub role: Role,
    pub csrf: String,
    pub flashes: Vec<Flash>,
    pub nav: &'static str,
}

impl PageCtx {
    pub fn new(session: &Session, actor: &Actor, nav: &'static str) -> PageCtx {
        let typed = TypedSession(session);
        PageCtx {
            username: actor.username.clone(),
            role: actor.role,
            csrf: typed.csrf_token(),
            flashes: typed.take_flashes(),
            nav,
        }
    }
    pub fn is_platform(&self) -> bool {
        self.role == Role::PlatformAdmin
    }
    pub fn can_manage(&self) -> bool {
        self.role >= Role::TenantManager
    }
    pub fn is_merchant(&self) -> bool {
        self.role == Role::MerchantAdmin
    }
    pub fn role_label(&self) -> &'static str {
        self.role.label()
    }
}

/// Values and messages of a form being re-rendered.
#[derive(Default)]
pub struct FormState {
    pub errors: FieldErrors,
}

impl FormState {
    pub fn error(&self, field: &str) -> &str {
        self.errors.get(field).unwrap_or("")
    }
    pub fn has(&self, field: &str) -> bool {
        self.errors.get(field).is_some()
    }
    pub fn any(&self) -> bool {
        !self.errors.is_empty()
    }
}
