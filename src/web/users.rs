use std::collections::HashMap;

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::{merchants, tenants, users};
use crate::domain::{Actor, Role};
use crate::error::ServiceError;
use crate::models::user::User;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::views::{
    SelectOption, merchant_options, parse_active, role_options, tenant_options,
};
use crate::web::{render, see_other};

/// A user as the console shows it.
pub struct UserView {
    pub id: String,
    pub username: String,
    pub role_label: &'static str,
    /// Where the user belongs: the platform, a tenant or a merchant.
    pub place: String,
    pub active: bool,
    pub created_at: String,
    pub last_login_at: String,
    pub is_self: bool,
    /// The caller may reset this user's password and two-factor (`console::users::may_reset`).
    pub may_reset: bool,
}

/// Tenant and merchant names the caller may see, by id.
struct Names {
    tenants: HashMap<String, String>,
    merchants: HashMap<String, String>,
}

impl Names {
    fn load(c: &mut crate::db::DbConnection, actor: &Actor) -> Result<Names, ServiceError> {
        Ok(Names {
            tenants: tenants::list(c, actor)?
                .into_iter()
                .map(|t| (t.id, t.name))
                .collect(),
            merchants: merchants::list(c, actor)?
                .into_iter()
                .map(|(m, _)| (m.id, m.name))
                .collect(),
        })
    }

    fn view(&self, u: User, actor: &Actor) -> UserView {
        let place = match (&u.merchant_id, &u.tenant_id) {
            (Some(m), _) => format!(
                "Merchant {}",
                self.merchants.get(m).map_or("(unknown)", String::as_str)
            ),
            (None, Some(t)) => format!(
                "Tenant {}",
                self.tenants.get(t).map_or("(unknown)", String::as_str)
            ),
            (None, None) => "Whole platform".into(),
        };
        UserView {
            is_self: u.id == actor.user_id,
            may_reset: users::may_reset(actor, &u),
            role_label: Role::parse(&u.role).map_or("Unknown role", Role::label),
            place,
            active: u.active,
            created_at: u.created_at.format("%Y-%m-%d %H:%M:%S").to_string(),
            last_login_at: u.last_login_at.map_or_else(
                || "never".into(),
                |t| t.format("%Y-%m-%d %H:%M:%S").to_string(),
            ),
            id: u.id,
            username: u.username,
        }
    }
}

#[derive(Template)]
#[template(path = "users/index.html")]
struct IndexPage {
    ctx: PageCtx,
    rows: Vec<UserView>,
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let rows = state
        .db
        .run(move |c| {
            let names = Names::load(c, &actor)?;
            Ok(users::list(c, &actor)?
                .into_iter()
                .map(|u| names.view(u, &actor))
                .collect())
        })
        .await?;
    render(
        StatusCode::OK,
        &IndexPage {
            ctx: PageCtx::new(&session, &user.0, "users"),
            rows,
        },
    )
}

#[derive(Template)]
#[template(path = "users/new.html")]
struct NewPage {
    ctx: PageCtx,
    form: FormState,
    username: String,
    roles: Vec<SelectOption>,
    tenants: Vec<SelectOption>,
    merchants: Vec<SelectOption>,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    merchant_id: String,
    #[serde(default)]
    password: String,
}

/// The new-user form; the password is never echoed back.
async fn new_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    form: FormState,
    f: &CreateForm,
) -> Result<NewPage, HtmlError> {
    if !user.0.can_manage() {
        return Err(ServiceError::Forbidden.into());
    }
    let actor = user.0.clone();
    let (tenant_list, merchant_list) = state
        .db
        .run(move |c| Ok((tenants::list(c, &actor)?, merchants::list(c, &actor)?)))
        .await?;
    Ok(NewPage {
        ctx: PageCtx::new(session, &user.0, "users"),
        form,
        username: f.username.clone(),
        roles: role_options(user.0.role, &f.role),
        tenants: tenant_options(&tenant_list, &f.tenant_id),
        merchants: merchant_options(&merchant_list, &f.merchant_id),
    })
}

pub async fn new(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let blank = CreateForm {
        username: String::new(),
        // Least privilege by default.
        role: Role::MerchantAdmin.as_str().into(),
        tenant_id: String::new(),
        merchant_id: String::new(),
        password: String::new(),
    };
    let page = new_page(&state, &session, &user, FormState::default(), &blank).await?;
    render(StatusCode::OK, &page)
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(mut f): CsrfForm<CreateForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let input = users::NewUser {
        username: f.username.clone(),
        role: f.role.clone(),
        tenant_id: f.tenant_id.clone(),
        merchant_id: f.merchant_id.clone(),
        password: std::mem::take(&mut f.password),
    };
    match users::create_user(&state.db, &state.hashes, actor, input).await {
        Ok(u) => {
            TypedSession(&session).flash("success", format!("User {} created.", u.username));
            Ok(see_other(&format!("/users/{}", u.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let page = new_page(&state, &session, &user, FormState { errors }, &f).await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "users/show.html")]
struct ShowPage {
    ctx: PageCtx,
    user: UserView,
    /// A newly generated password, shown once right after a reset.
    secret: Option<String>,
}

/// The user (404 outside the caller's scope) as the console shows it.
async fn load(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
) -> Result<UserView, HtmlError> {
    let actor = user.0.clone();
    Ok(state
        .db
        .run(move |c| {
            let u = users::get(c, &actor, &id)?;
            Ok(Names::load(c, &actor)?.view(u, &actor))
        })
        .await?)
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = load(&state, &user, path.into_inner()).await?;
    render(
        StatusCode::OK,
        &ShowPage {
            ctx: PageCtx::new(&session, &user.0, "users"),
            user: view,
            secret: None,
        },
    )
}

#[derive(Template)]
#[template(path = "users/deactivate.html")]
struct DeactivatePage {
    ctx: PageCtx,
    user: UserView,
}

/// The confirmation page shown before a user is deactivated.
pub async fn confirm_deactivate(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let view = load(&state, &user, path.into_inner()).await?;
    if !user.0.can_manage() {
        return Err(ServiceError::Forbidden.into());
    }
    render(
        StatusCode::OK,
        &DeactivatePage {
            ctx: PageCtx::new(&session, &user.0, "users"),
            user: view,
        },
    )
}

#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
}

pub async fn set_active(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<ActiveForm>,
) -> Result<HttpResponse, HtmlError> {
    let active = parse_active(&f.active)?;
    let actor = user.0.clone();
    let id = path.into_inner();
    let uid = id.clone();
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| users::set_active(c, &actor, &uid, active))
        .await
    {
        Ok(u) => {
            let verb = if active { "activated" } else { "deactivated" };
            typed.flash("success", format!("User {} {verb}.", u.username));
            Ok(see_other(&format!("/users/{}", u.id)))
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other(&format!("/users/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// Resets another user's password and shows the generated one on this response only: it is
/// never put in the session cookie, never logged, and the page must not be cached.
pub async fn reset_password(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<crate::web::confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    if !f.yes() {
        let uid = id.clone();
        let (u, lines) = state
            .db
            .run(move |c| users::reset_password_consequences(c, &actor, &uid))
            .await?;
        return render(
            StatusCode::OK,
            &crate::web::confirm::simple(
                PageCtx::new(&session, &user.0, "users"),
                format!("Reset the password of {}?", u.username),
                vec![
                    ("/users".into(), "Users".into()),
                    (format!("/users/{}", u.id), u.username.clone()),
                ],
                lines,
                format!("/users/{}/reset-password", u.id),
                "Reset the password",
                format!("/users/{}", u.id),
            ),
        );
    }
    let (password, hash) = users::new_random_password(&state.hashes).await?;
    let view = state
        .db
        .run(move |c| {
            let u = users::reset_password(c, &actor, &id, &hash)?;
            Ok(Names::load(c, &actor)?.view(u, &actor))
        })
        .await?;
    let mut resp = render(
        StatusCode::OK,
        &ShowPage {
            ctx: PageCtx::new(&session, &user.0, "users"),
            user: view,
            secret: Some(password),
        },
    )?;
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "users/password.html")]
struct PasswordPage {
    ctx: PageCtx,
    form: FormState,
}

pub async fn password_form(session: Session, user: CurrentUser) -> Result<HttpResponse, HtmlError> {
    render(
        StatusCode::OK,
        &PasswordPage {
            ctx: PageCtx::new(&session, &user.0, "account"),
            form: FormState::default(),
        },
    )
}

#[derive(Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
    #[serde(default)]
    confirm_password: String,
}

/// Changes the caller's own password. Every other session of the user ends; this one is renewed
/// (new cookie, new CSRF secret) so that the user stays signed in here.
pub async fn password_change(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<PasswordForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let source = crate::web::client::addr(&req, &state);
    let lock_minutes = state.settings.lockout_minutes;
    match users::change_own_password(
        &state.db,
        &state.hashes,
        actor,
        f.current_password,
        f.new_password,
        f.confirm_password,
        source,
        lock_minutes,
    )
    .await
    {
        Ok(epoch) => {
            let typed = TypedSession(&session);
            typed.relogin(&user.0.user_id, epoch, state.clock.now());
            typed.flash(
                "success",
                "Your password has been changed. Your other sessions have been signed out.",
            );
            Ok(see_other("/account/password"))
        }
        Err(ServiceError::Validation(errors)) => render(
            StatusCode::UNPROCESSABLE_ENTITY,
            &PasswordPage {
                ctx: PageCtx::new(&session, &user.0, "account"),
                form: FormState { errors },
            },
        ),
        Err(e) => Err(e.into()),
    }
}
