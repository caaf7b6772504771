use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::{merchants, tenants};
use crate::error::ServiceError;
use crate::models::merchant::Merchant;
use crate::models::tenant::Tenant;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::confirm::ConfirmPage;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

pub struct TreeRow {
    pub tenant: Tenant,
    pub indent: i32,
}

#[derive(Template)]
#[template(path = "tenants/index.html")]
struct IndexPage {
    ctx: PageCtx,
    rows: Vec<TreeRow>,
    form: FormState,
    name: String,
    parent_id: String,
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    parent_id: String,
}

fn tree(list: Vec<Tenant>) -> Vec<TreeRow> {
    let base = list.iter().map(|t| t.depth).min().unwrap_or(0);
    list.into_iter()
        .map(|t| TreeRow {
            indent: t.depth - base,
            tenant: t,
        })
        .collect()
}

async fn index_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: CurrentUser,
    form: FormState,
    name: String,
    parent_id: String,
) -> Result<(IndexPage, bool), HtmlError> {
    let actor = user.0.clone();
    let list = state.db.run(move |c| tenants::list(c, &actor)).await?;
    let has_errors = form.any();
    Ok((
        IndexPage {
            ctx: PageCtx::new(session, &user.0, "tenants"),
            rows: tree(list),
            form,
            name,
            parent_id,
        },
        has_errors,
    ))
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
) -> Result<HttpResponse, HtmlError> {
    if user.0.scope.is_merchant() {
        return Err(ServiceError::Forbidden.into());
    }
    let (page, _) = index_page(
        &state,
        &session,
        user,
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
    let input = tenants::NewTenant {
        parent_id: Some(f.parent_id.clone()),
        name: f.name.clone(),
    };
    let st = state.clone();
    match state
        .db
        .run(move |c| tenants::create(c, &st.keyring, &actor, input))
        .await
    {
        Ok(t) => {
            TypedSession(&session).flash("success", format!("Tenant {} created.", t.name));
            Ok(see_other(&format!("/tenants/{}", t.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let (page, _) = index_page(
                &state,
                &session,
                user,
                FormState { errors },
                f.name,
                f.parent_id,
            )
            .await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "tenants/show.html")]
struct ShowPage {
    ctx: PageCtx,
    tenant: Tenant,
    parent: Option<Tenant>,
    children: Vec<Tenant>,
    merchants: Vec<Merchant>,
    /// The ancestor whose flag disables customer profile containers for this tenant, if any.
    containers_disabled_by: Option<String>,
    form: FormState,
    name: String,
    disable: bool,
    require_two_factor: bool,
}

struct ShowData {
    tenant: Tenant,
    parent: Option<Tenant>,
    children: Vec<Tenant>,
    merchants: Vec<Merchant>,
    containers_disabled_by: Option<String>,
}

async fn load(
    state: &web::Data<AppState>,
    user: &CurrentUser,
    id: String,
) -> Result<ShowData, HtmlError> {
    let actor = user.0.clone();
    Ok(state
        .db
        .run(move |c| {
            let tenant = tenants::get(c, &actor, &id)?;
            let parent = match &tenant.parent_id {
                Some(p) => tenants::get(c, &actor, p).ok(),
                None => None,
            };
            let all = tenants::list(c, &actor)?;
            let children = all
                .into_iter()
                .filter(|t| t.parent_id.as_deref() == Some(tenant.id.as_str()))
                .collect();
            let merchants = merchants::list(c, &actor)?
                .into_iter()
                .map(|(m, _)| m)
                .filter(|m| m.tenant_id == tenant.id)
                .collect();
            let lineage = crate::vault::sharing::lineage(c, &tenant)?;
            let containers_disabled_by =
                crate::vault::sharing::disabled_by(&lineage).map(|t| t.name.clone());
            Ok(ShowData {
                tenant,
                parent,
                children,
                merchants,
                containers_disabled_by,
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
        ctx: PageCtx::new(&session, &user.0, "tenants"),
        name: d.tenant.name.clone(),
        disable: d.tenant.disable_containers_for_subtenants,
        require_two_factor: d.tenant.require_two_factor,
        tenant: d.tenant,
        parent: d.parent,
        children: d.children,
        merchants: d.merchants,
        containers_disabled_by: d.containers_disabled_by,
        form: FormState::default(),
    };
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct UpdateForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    disable_containers_for_subtenants: Option<String>,
    #[serde(default)]
    require_two_factor: Option<String>,
    #[serde(default)]
    confirmed: Option<String>,
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<UpdateForm>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.into_inner();
    let actor = user.0.clone();
    let disable = f.disable_containers_for_subtenants.is_some();
    let require_two_factor = f.require_two_factor.is_some();
    let input = tenants::TenantChanges {
        name: f.name.clone(),
        disable_containers_for_subtenants: disable,
        require_two_factor,
    };
    let tid = id.clone();
    let result = if f.confirmed.as_deref() == Some("yes") {
        None
    } else {
        let (actor, tid, preview) = (actor.clone(), tid.clone(), input.clone());
        match state
            .db
            .run(move |c| tenants::update_impact(c, &actor, &tid, preview))
            .await
        {
            Ok(None) => None,
            Ok(Some((t, impact))) => {
                let mut fields = vec![("name".to_string(), f.name.clone())];
                if disable {
                    fields.push(("disable_containers_for_subtenants".into(), "1".into()));
                }
                if require_two_factor {
                    fields.push(("require_two_factor".into(), "1".into()));
                }
                let mut page =
                    ConfirmPage::of_form(PageCtx::new(&session, &user.0, "tenants"), &fields);
                page.title = if disable {
                    format!(
                        "Disable customer profile containers for the sub-tenants of {}?",
                        t.name
                    )
                } else {
                    format!(
                        "Enable customer profile containers for the sub-tenants of {}?",
                        t.name
                    )
                };
                page.crumbs = vec![
                    ("/tenants".into(), "Tenants".into()),
                    (format!("/tenants/{}", t.id), t.name.clone()),
                ];
                page.consequences = impact.sentences();
                page.action = format!("/tenants/{}", t.id);
                page.button = "Save the tenant".into();
                page.cancel = format!("/tenants/{}", t.id);
                return render(StatusCode::OK, &page);
            }
            Err(e) => Some(Err(e)),
        }
    };
    let result = match result {
        Some(r) => r,
        None => {
            state
                .db
                .run(move |c| tenants::update(c, &actor, &tid, input))
                .await
        }
    };
    match result {
        Ok(t) => {
            TypedSession(&session).flash("success", format!("Tenant {} saved.", t.name));
            Ok(see_other(&format!("/tenants/{}", t.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let d = load(&state, &user, id).await?;
            let page = ShowPage {
                ctx: PageCtx::new(&session, &user.0, "tenants"),
                tenant: d.tenant,
                parent: d.parent,
                children: d.children,
                merchants: d.merchants,
                containers_disabled_by: d.containers_disabled_by,
                form: FormState { errors },
                name: f.name,
                disable,
                require_two_factor,
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "tenants/delete.html")]
struct DeletePage {
    ctx: PageCtx,
    tenant: Tenant,
}

pub async fn confirm_delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let tenant = state.db.run(move |c| tenants::get(c, &actor, &id)).await?;
    render(
        StatusCode::OK,
        &DeletePage {
            ctx: PageCtx::new(&session, &user.0, "tenants"),
            tenant,
        },
    )
}

#[derive(Deserialize)]
pub struct Empty {}

pub async fn delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let tid = id.clone();
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| tenants::delete(c, &actor, &tid))
        .await
    {
        Ok(t) => {
            typed.flash("success", format!("Tenant {} deleted.", t.name));
            Ok(see_other("/tenants"))
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other(&format!("/tenants/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "tenants/erase.html")]
struct ErasePage {
    ctx: PageCtx,
    tenant: Tenant,
    counts: crate::models::erasure::TreeCounts,
    transit: bool,
    form: FormState,
    confirm_name: String,
}

async fn erase_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    id: String,
    form: FormState,
    confirm_name: String,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let (tenant, counts) = state
        .db
        .run(move |c| tenants::erase_preview(c, &actor, &id))
        .await?;
    let status = if form.any() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    render(
        status,
        &ErasePage {
            ctx: PageCtx::new(session, &user.0, "tenants"),
            tenant,
            counts,
            transit: state.keyring.status().manager == "transit",
            form,
            confirm_name,
        },
    )
}

/// `GET /tenants/{id}/erase`: what erasing a root tenant deletes, and the typed-name confirmation.
pub async fn confirm_erase(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    erase_page(
        &state,
        &session,
        &user,
        path.into_inner(),
        FormState::default(),
        String::new(),
    )
    .await
}

#[derive(Deserialize)]
pub struct EraseForm {
    #[serde(default)]
    confirm_name: String,
}

/// `POST /tenants/{id}/erase`: erases the root tenant by key destruction.
pub async fn erase(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<EraseForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let (tid, typed_name) = (id.clone(), f.confirm_name.clone());
    let st = state.clone();
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| tenants::erase(c, &st.keyring, &actor, &tid, &typed_name))
        .await
    {
        Ok(e) => {
            typed.flash(
                "success",
                format!(
                    "Tenant {} erased: {} profile(s), {} instrument(s) and {} transaction(s) deleted, and its keys destroyed.",
                    e.tenant.name, e.deleted.profiles, e.deleted.instruments, e.deleted.transactions
                ),
            );
            Ok(see_other("/tenants"))
        }
        Err(ServiceError::Validation(errors)) => {
            erase_page(
                &state,
                &session,
                &user,
                id,
                FormState { errors },
                f.confirm_name,
            )
            .await
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other(&format!("/tenants/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}
