use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::{merchants, tenants, users};
use crate::error::ServiceError;
use crate::models::merchant::Merchant;
use crate::models::user::User;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::views::{SelectOption, parse_active, tenant_options};
use crate::web::{render, see_other};

pub struct Row {
    pub merchant: Merchant,
    pub tenant_name: String,
}

#[derive(Template)]
#[template(path = "merchants/index.html")]
struct IndexPage {
    ctx: PageCtx,
    rows: Vec<Row>,
    tenants: Vec<SelectOption>,
    form: FormState,
    name: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    name: String,
}

async fn index_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    form: FormState,
    name: String,
    tenant_id: String,
) -> Result<IndexPage, HtmlError> {
    let actor = user.0.clone();
    let (list, tenant_list) = state
        .db
        .run(move |c| Ok((merchants::list(c, &actor)?, tenants::list(c, &actor)?)))
        .await?;
    Ok(IndexPage {
        ctx: PageCtx::new(session, &user.0, "merchants"),
        rows: list
            .into_iter()
            .map(|(merchant, tenant_name)| Row {
                merchant,
                tenant_name,
            })
            .collect(),
        tenants: tenant_options(&tenant_list, &tenant_id),
        form,
        name,
    })
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    let page = index_page(
        &state,
        &session,
        &user,
        FormState::default(),
        String::new(),
        String::new(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<CreateForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let (tenant_id, name) = (f.tenant_id.clone(), f.name.clone());
    match state
        .db
        .run(move |c| merchants::create(c, &actor, &tenant_id, &name))
        .await
    {
        Ok(m) => {
            TypedSession(&session).flash("success", format!("Merchant {} created.", m.name));
            Ok(see_other(&format!("/merchants/{}", m.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let page = index_page(
                &state,
                &session,
                &user,
                FormState { errors },
                f.name,
                f.tenant_id,
            )
            .await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "merchants/show.html")]
struct ShowPage {
    ctx: PageCtx,
    merchant: Merchant,
    tenant_name: String,
    users: Vec<User>,
    form: FormState,
    name: String,
}

struct ShowData {
    merchant: Merchant,
    tenant_name: String,
    users: Vec<User>,
}

/// The merchant (404 outside the caller's scope), its tenant's name and its users.
async fn load(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
) -> Result<ShowData, HtmlError> {
    let actor = user.0.clone();
    Ok(state
        .db
        .run(move |c| {
            let merchant = merchants::get(c, &actor, &id)?;
            let tenant_name = merchants::list(c, &actor)?
                .into_iter()
                .find(|(m, _)| m.id == merchant.id)
                .map(|(_, t)| t)
                .unwrap_or_default();
            let users = users::list(c, &actor)?
                .into_iter()
                .filter(|u| u.merchant_id.as_deref() == Some(merchant.id.as_str()))
                .collect();
            Ok(ShowData {
                merchant,
                tenant_name,
                users,
            })
        })
        .await?)
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let d = load(&state, &user, path.into_inner()).await?;
    let page = ShowPage {
        ctx: PageCtx::new(&session, &user.0, "merchants"),
        name: d.merchant.name.clone(),
        merchant: d.merchant,
        tenant_name: d.tenant_name,
        users: d.users,
        form: FormState::default(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct RenameForm {
    #[serde(default)]
    name: String,
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<RenameForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.into_inner();
    let actor = user.0.clone();
    let (mid, name) = (id.clone(), f.name.clone());
    match state
        .db
        .run(move |c| merchants::rename(c, &actor, &mid, &name))
        .await
    {
        Ok(m) => {
            TypedSession(&session).flash("success", format!("Merchant {} saved.", m.name));
            Ok(see_other(&format!("/merchants/{}", m.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            // Loading checks the scope again: a merchant outside it answers 404, not a form.
            let d = load(&state, &user, id).await?;
            let page = ShowPage {
                ctx: PageCtx::new(&session, &user.0, "merchants"),
                merchant: d.merchant,
                tenant_name: d.tenant_name,
                users: d.users,
                form: FormState { errors },
                name: f.name,
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "merchants/deactivate.html")]
struct DeactivatePage {
    ctx: PageCtx,
    merchant: Merchant,
    /// What the deactivation stops, in numbers.
    impact: Vec<String>,
}

/// The confirmation page shown before a merchant is deactivated.
pub async fn confirm_deactivate(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let (merchant, impact) = state
        .db
        .run(move |c| {
            let m = merchants::get(c, &actor, &id)?;
            let impact = merchants::deactivation_impact(c, &actor, &id)?;
            Ok((m, impact))
        })
        .await?;
    if !user.0.can_manage() {
        return Err(ServiceError::Forbidden.into());
    }
    render(
        StatusCode::OK,
        &DeactivatePage {
            ctx: PageCtx::new(&session, &user.0, "merchants"),
            merchant,
            impact,
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
    let m = state
        .db
        .run(move |c| merchants::set_active(c, &actor, &id, active))
        .await?;
    let verb = if active { "activated" } else { "deactivated" };
    TypedSession(&session).flash("success", format!("Merchant {} {verb}.", m.name));
    Ok(see_other(&format!("/merchants/{}", m.id)))
}
