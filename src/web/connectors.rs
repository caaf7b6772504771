//! Connectors and their Connector Base Data; API users of a merchant.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, HeaderValue};
use actix_web::{HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::connectors::{self, ADAPTERS, Keys, Suspended, adapter_label};
use crate::console::merchants;
use crate::error::ServiceError;
use crate::models::api_user::ApiUser;
use crate::models::connector::Connector;
use crate::models::container::Container;
use crate::models::merchant::Merchant;
use crate::state::AppState;
use crate::vault::sharing::{self, Effective};
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::{Flash, TypedSession};
use crate::web::confirm::{self, ConfirmPage};
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

/// A message shown on the page being rendered now (not queued in the session cookie).
fn notice(level: &str, message: String) -> Flash {
    Flash {
        level: level.into(),
        message,
    }
}

/// Renders the page a secret-issuing POST answers with: the secret is in this response only,
/// never in the session or flash cookie (a replayed older cookie must not show it again), and
/// the page must not be cached.
fn shown_once<T: Template>(page: &T) -> Result<HttpResponse, HtmlError> {
    let mut resp = render(StatusCode::OK, page)?;
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(resp)
}

#[derive(Template)]
#[template(path = "connectors/index.html")]
struct IndexPage {
    ctx: PageCtx,
    rows: Vec<(Connector, String)>,
    merchants: Vec<Merchant>,
    form: FormState,
    name: String,
    merchant_id: String,
    adapter: String,
}

impl IndexPage {
    fn adapters(&self) -> &'static [(&'static str, &'static str)] {
        &ADAPTERS
    }
    fn label(&self, a: &str) -> &'static str {
        adapter_label(a)
    }
}

async fn index_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    form: FormState,
    name: String,
    merchant_id: String,
    adapter: String,
) -> Result<IndexPage, HtmlError> {
    let actor = user.0.clone();
    let (rows, merchants) = state
        .db
        .run(move |c| {
            let rows = connectors::list(c, &actor)?;
            let ms = merchants::list(c, &actor)?
                .into_iter()
                .map(|(m, _)| m)
                .filter(|m| m.active)
                .collect();
            Ok((rows, ms))
        })
        .await?;
    Ok(IndexPage {
        ctx: PageCtx::new(session, &user.0, "connectors"),
        rows,
        merchants,
        form,
        name,
        merchant_id,
        adapter,
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
        "creditcard".into(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    merchant_id: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    adapter: String,
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<CreateForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let keyring = state.keyring.clone();
    let input = connectors::NewConnector {
        merchant_id: f.merchant_id.clone(),
        name: f.name.clone(),
        adapter: f.adapter.clone(),
    };
    match state
        .db
        .run(move |c| connectors::create(c, &keyring, &actor, input, Keys::generate()))
        .await
    {
        Ok((k, issued)) => {
            let d = load(&state, &user, k.id.clone()).await?;
            let mut page = page_from(&session, &user, d, FormState::default(), None);
            page.ctx.flashes.extend([
                notice("success", format!("Connector {} created.", k.name)),
                notice(
                    "secret",
                    format!(
                        "Shared secret (shown only now, store it safely): {}",
                        issued.shared_secret
                    ),
                ),
                notice(
                    "secret",
                    format!(
                        "Monri merchant key (shown only now, store it safely): {}",
                        issued.monri_merchant_key
                    ),
                ),
            ]);
            shown_once(&page)
        }
        Err(ServiceError::Validation(errors)) => {
            let page = index_page(
                &state,
                &session,
                &user,
                FormState { errors },
                f.name,
                f.merchant_id,
                f.adapter,
            )
            .await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "connectors/show.html")]
struct ShowPage {
    ctx: PageCtx,
    k: Connector,
    merchant: Merchant,
    effective: Effective,
    suspended: Option<Suspended>,
    options: Vec<Container>,
    disabled_by: Option<String>,
    siblings: Vec<Connector>,
    members: Vec<String>,
    form: FormState,
    f: BaseForm,
}

impl ShowPage {
    fn adapter(&self) -> &'static str {
        adapter_label(&self.k.adapter)
    }
    fn source(&self) -> String {
        self.effective.source.to_string()
    }
}

#[derive(Deserialize, Default, Clone)]
pub struct BaseForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    container_id: String,
    #[serde(default)]
    ignore_global: Option<String>,
    #[serde(default)]
    signing: Option<String>,
    #[serde(default)]
    active: Option<String>,
    #[serde(default)]
    lifecycle_webhook_url: String,
    #[serde(default)]
    expiry_notice_days: String,
}

struct ShowData {
    k: Connector,
    merchant: Merchant,
    effective: Effective,
    suspended: Option<Suspended>,
    options: Vec<Container>,
    disabled_by: Option<String>,
    siblings: Vec<Connector>,
    members: Vec<String>,
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
            let k = connectors::get(c, &actor, &id)?;
            let merchant =
                crate::models::merchant::find(c, &k.merchant_id)?.ok_or(ServiceError::NotFound)?;
            let effective = connectors::effective(c, &k)?;
            let suspended = connectors::suspended(c, &k, &effective)?;
            let lineage = sharing::lineage_of(c, &k.tenant_id)?;
            let disabled_by = sharing::disabled_by(&lineage).map(|t| t.name.clone());
            let options = sharing::usable_containers(c, &k.tenant_id)?;
            let siblings = crate::models::connector::for_merchant(c, &k.merchant_id)?
                .into_iter()
                .filter(|s| s.id != k.id && s.adapter != "meta")
                .collect();
            let members = crate::models::connector::members(c, &k.id)?;
            Ok(ShowData {
                k,
                merchant,
                effective,
                suspended,
                options,
                disabled_by,
                siblings,
                members,
            })
        })
        .await?)
}

fn page_from(
    session: &Session,
    user: &CurrentUser,
    d: ShowData,
    form: FormState,
    f: Option<BaseForm>,
) -> ShowPage {
    let f = f.unwrap_or_else(|| BaseForm {
        name: d.k.name.clone(),
        container_id: d.k.container_id.clone().unwrap_or_default(),
        ignore_global: d.k.ignore_global.then(|| "1".into()),
        signing: d.k.signing.then(|| "1".into()),
        active: d.k.active.then(|| "1".into()),
        lifecycle_webhook_url: d.k.lifecycle_webhook_url.clone().unwrap_or_default(),
        expiry_notice_days: d.k.expiry_notice_days.to_string(),
    });
    ShowPage {
        ctx: PageCtx::new(session, &user.0, "connectors"),
        k: d.k,
        merchant: d.merchant,
        effective: d.effective,
        suspended: d.suspended,
        options: d.options,
        disabled_by: d.disabled_by,
        siblings: d.siblings,
        members: d.members,
        form,
        f,
    }
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let d = load(&state, &user, path.into_inner()).await?;
    render(
        StatusCode::OK,
        &page_from(&session, &user, d, FormState::default(), None),
    )
}

pub async fn update(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    body: CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.into_inner();
    let pairs = body.0;
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    let f = BaseForm {
        name: field("name").unwrap_or_default(),
        container_id: field("container_id").unwrap_or_default(),
        ignore_global: field("ignore_global"),
        signing: field("signing"),
        active: field("active"),
        lifecycle_webhook_url: field("lifecycle_webhook_url").unwrap_or_default(),
        expiry_notice_days: field("expiry_notice_days").unwrap_or_default(),
    };
    let members: Vec<String> = pairs
        .iter()
        .filter(|(k, _)| k == "members")
        .map(|(_, v)| v.clone())
        .collect();
    let input = connectors::BaseDataInput {
        name: f.name.clone(),
        container_id: f.container_id.clone(),
        ignore_global: f.ignore_global.is_some(),
        signing: f.signing.is_some(),
        active: f.active.is_some(),
        members,
        lifecycle_webhook_url: f.lifecycle_webhook_url.clone(),
        expiry_notice_days: f.expiry_notice_days.clone(),
        target_policy: state.callback_policy,
    };
    if !confirm::is_confirmed(&pairs) {
        let (actor, kid, preview) = (user.0.clone(), id.clone(), input.clone());
        match state
            .db
            .run(move |c| connectors::update_impact(c, &actor, &kid, preview))
            .await
        {
            Ok((old, new, impact)) => {
                let deactivates = old.active && !new.active;
                if !impact.is_empty() || deactivates {
                    let mut page =
                        ConfirmPage::of_form(PageCtx::new(&session, &user.0, "connectors"), &pairs);
                    page.title = format!("Save the Connector Base Data of {}?", old.name);
                    page.crumbs = vec![
                        ("/connectors".into(), "Connectors".into()),
                        (format!("/connectors/{}", old.id), old.name.clone()),
                    ];
                    page.consequences = impact.sentences();
                    if deactivates {
                        page.consequences.push(format!(
                            "{} will be deactivated: it refuses every payment and every Customer Profiles and Monri call until it is activated again.",
                            old.name
                        ));
                    }
                    page.action = format!("/connectors/{}", old.id);
                    page.button = "Save the Connector Base Data".into();
                    page.cancel = format!("/connectors/{}", old.id);
                    return render(StatusCode::OK, &page);
                }
            }
            Err(ServiceError::Validation(errors)) => {
                let d = load(&state, &user, id).await?;
                return render(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &page_from(&session, &user, d, FormState { errors }, Some(f)),
                );
            }
            Err(e) => return Err(e.into()),
        }
    }
    let actor = user.0.clone();
    let kid = id.clone();
    match state
        .db
        .run(move |c| connectors::update(c, &actor, &kid, input))
        .await
    {
        Ok(k) => {
            TypedSession(&session).flash(
                "success",
                format!("Connector Base Data of {} saved.", k.name),
            );
            Ok(see_other(&format!("/connectors/{}", k.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let d = load(&state, &user, id).await?;
            render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &page_from(&session, &user, d, FormState { errors }, Some(f)),
            )
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct Empty {}

/// A console service saying what a connector action would do (`connectors::*_consequences`).
type Consequences = fn(
    &mut crate::db::DbConnection,
    &crate::domain::Actor,
    &str,
) -> Result<(Connector, Vec<String>), ServiceError>;

/// The confirmation page of a connector action whose consequences `lines` loads.
async fn confirm_connector_action(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    id: String,
    lines: Consequences,
    what: (&str, &str, &str),
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let (k, consequences) = state.db.run(move |c| lines(c, &actor, &id)).await?;
    let (title, path, button) = what;
    render(
        StatusCode::OK,
        &confirm::simple(
            PageCtx::new(session, &user.0, "connectors"),
            format!("{title} of {}?", k.name),
            vec![
                ("/connectors".into(), "Connectors".into()),
                (format!("/connectors/{}", k.id), k.name.clone()),
            ],
            consequences,
            format!("/connectors/{}/{path}", k.id),
            button,
            format!("/connectors/{}", k.id),
        ),
    )
}

pub async fn rotate_secret(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    if !f.yes() {
        return confirm_connector_action(
            &state,
            &session,
            &user,
            path.into_inner(),
            connectors::rotate_secret_consequences,
            (
                "Rotate the shared secret",
                "rotate-secret",
                "Rotate the shared secret",
            ),
        )
        .await;
    }
    let actor = user.0.clone();
    let keyring = state.keyring.clone();
    let id = path.into_inner();
    let (k, secret) = state
        .db
        .run(move |c| connectors::rotate_secret(c, &keyring, &actor, &id))
        .await?;
    let d = load(&state, &user, k.id.clone()).await?;
    let mut page = page_from(&session, &user, d, FormState::default(), None);
    page.ctx.flashes.extend([
        notice(
            "success",
            format!(
                "Shared secret of {} rotated; the old one no longer works.",
                k.name
            ),
        ),
        notice(
            "secret",
            format!("New shared secret (shown only now, store it safely): {secret}"),
        ),
    ]);
    shown_once(&page)
}

pub async fn rotate_monri_key(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    if !f.yes() {
        return confirm_connector_action(
            &state,
            &session,
            &user,
            path.into_inner(),
            connectors::rotate_monri_key_consequences,
            (
                "Rotate the Monri merchant key",
                "rotate-monri-key",
                "Rotate the Monri merchant key",
            ),
        )
        .await;
    }
    let actor = user.0.clone();
    let keyring = state.keyring.clone();
    let id = path.into_inner();
    let (k, key) = state
        .db
        .run(move |c| connectors::rotate_monri_key(c, &keyring, &actor, &id))
        .await?;
    let d = load(&state, &user, k.id.clone()).await?;
    let mut page = page_from(&session, &user, d, FormState::default(), None);
    page.ctx.flashes.push(notice(
        "success",
        if k.monri_merchant_key.is_some() {
            format!(
                "Monri merchant key of {} rotated; the old one and its access tokens no longer work.",
                k.name
            )
        } else {
            format!("Monri merchant key of {} issued.", k.name)
        },
    ));
    page.ctx.flashes.push(notice(
        "secret",
        format!("New Monri merchant key (shown only now, store it safely): {key}"),
    ));
    shown_once(&page)
}

// ---- API users ----

#[derive(Template)]
#[template(path = "api_users/index.html")]
struct ApiUsersPage {
    ctx: PageCtx,
    merchant: Merchant,
    users: Vec<ApiUser>,
    form: FormState,
    username: String,
}

#[derive(Deserialize)]
pub struct MerchantQuery {
    merchant: Option<String>,
}

async fn api_users_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    merchant_id: String,
    form: FormState,
    username: String,
) -> Result<ApiUsersPage, HtmlError> {
    let actor = user.0.clone();
    let (merchant, users) = state
        .db
        .run(move |c| connectors::api_users(c, &actor, &merchant_id))
        .await?;
    Ok(ApiUsersPage {
        ctx: PageCtx::new(session, &user.0, "merchants"),
        merchant,
        users,
        form,
        username,
    })
}

pub async fn api_users(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    q: web::Query<MerchantQuery>,
) -> Result<HttpResponse, HtmlError> {
    let mid = q
        .into_inner()
        .merchant
        .ok_or_else(|| HtmlError::BadRequest("Choose a merchant.".into()))?;
    let page = api_users_page(
        &state,
        &session,
        &user,
        mid,
        FormState::default(),
        String::new(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct ApiUserForm {
    #[serde(default)]
    merchant_id: String,
    #[serde(default)]
    username: String,
}

pub async fn create_api_user(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<ApiUserForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let keyring = state.keyring.clone();
    let (mid, name) = (f.merchant_id.clone(), f.username.clone());
    match state
        .db
        .run(move |c| connectors::create_api_user(c, &keyring, &actor, &mid, &name, None))
        .await
    {
        Ok((u, pw)) => {
            let mut page = api_users_page(
                &state,
                &session,
                &user,
                u.merchant_id.clone(),
                FormState::default(),
                String::new(),
            )
            .await?;
            page.ctx.flashes.extend([
                notice("success", format!("API user {} created.", u.username)),
                notice(
                    "secret",
                    format!("Password of {} (shown only now): {pw}", u.username),
                ),
            ]);
            shown_once(&page)
        }
        Err(ServiceError::Validation(errors)) if errors.get("merchant_id").is_none() => {
            let page = api_users_page(
                &state,
                &session,
                &user,
                f.merchant_id,
                FormState { errors },
                f.username,
            )
            .await?;
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(ServiceError::Validation(_)) => Err(ServiceError::NotFound.into()),
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ActiveForm {
    #[serde(default)]
    active: String,
}

pub async fn set_api_user_active(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<ActiveForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let active = f.active == "true";
    let u = state
        .db
        .run(move |c| connectors::set_api_user_active(c, &actor, &id, active))
        .await?;
    TypedSession(&session).flash(
        "success",
        format!(
            "API user {} {}.",
            u.username,
            if active { "activated" } else { "deactivated" }
        ),
    );
    Ok(see_other(&format!("/api-users?merchant={}", u.merchant_id)))
}

pub async fn reset_api_user(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let keyring = state.keyring.clone();
    let id = path.into_inner();
    let (u, pw) = state
        .db
        .run(move |c| connectors::reset_api_user(c, &keyring, &actor, &id))
        .await?;
    let mut page = api_users_page(
        &state,
        &session,
        &user,
        u.merchant_id.clone(),
        FormState::default(),
        String::new(),
    )
    .await?;
    page.ctx.flashes.push(notice(
        "secret",
        format!("New password of {} (shown only now): {pw}", u.username),
    ));
    shown_once(&page)
}
