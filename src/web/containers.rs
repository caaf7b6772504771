//! Tokenization > Customer Profiles: containers, their profiles, Global Settings.

use actix_session::Session;
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::console::containers::{
    self, Access, GlobalSettingView, Overview, ProfilePage, ProfileView,
};
use crate::console::tenants;
use crate::console::transactions_view::{self, Row};
use crate::error::ServiceError;
use crate::models::tenant::Tenant;
use crate::state::AppState;
use crate::web::auth::csrf::CsrfForm;
use crate::web::auth::guards::CurrentUser;
use crate::web::auth::session::TypedSession;
use crate::web::ctx::{FormState, PageCtx};
use crate::web::error::HtmlError;
use crate::web::{render, see_other};

/// A keyset cursor: an id of ours (32 hex), anything else is a bad request.
pub fn cursor(raw: &Option<String>) -> Result<Option<String>, HtmlError> {
    match raw.as_deref() {
        None | Some("") => Ok(None),
        Some(s) if s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit()) => {
            Ok(Some(s.to_ascii_lowercase()))
        }
        Some(_) => Err(HtmlError::BadRequest(
            "The page cursor is not valid.".into(),
        )),
    }
}

/// The page a list shows: `before=` (older) or `after=` (newer) keyset cursors, not both.
pub fn page_cursor(
    before: &Option<String>,
    after: &Option<String>,
) -> Result<crate::models::profile::Cursor, HtmlError> {
    use crate::models::profile::Cursor;
    match (cursor(before)?, cursor(after)?) {
        (None, None) => Ok(Cursor::Newest),
        (Some(b), None) => Ok(Cursor::Before(b)),
        (None, Some(a)) => Ok(Cursor::After(a)),
        (Some(_), Some(_)) => Err(HtmlError::BadRequest(
            "Ask for the page before or the page after, not both.".into(),
        )),
    }
}

/// A search term from the query string (`profile_search::parse_term`), or a 400 saying why.
pub fn search_term(raw: &Option<String>) -> Result<Option<String>, HtmlError> {
    crate::console::profile_search::parse_term(raw.as_deref()).map_err(HtmlError::BadRequest)
}

#[derive(Deserialize)]
pub struct TenantQuery {
    tenant: Option<String>,
}

#[derive(Template)]
#[template(path = "containers/index.html")]
struct IndexPage {
    ctx: PageCtx,
    tenants: Vec<Tenant>,
    owners: Vec<Tenant>,
    overview: Option<Overview>,
    form: FormState,
    name: String,
    owner_id: String,
}

async fn index_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    selected: Option<String>,
    form: FormState,
    name: String,
    owner_id: String,
) -> Result<IndexPage, HtmlError> {
    let actor = user.0.clone();
    let (tenants, owners, overview) = state
        .db
        .run(move |c| {
            let list = tenants::list(c, &actor)?;
            let owners = containers::owner_choices(c, &actor)?;
            let pick = selected.or_else(|| list.first().map(|t| t.id.clone()));
            let overview = match pick {
                Some(id) => Some(containers::overview(c, &actor, &id)?),
                None => None,
            };
            Ok((list, owners, overview))
        })
        .await?;
    Ok(IndexPage {
        ctx: PageCtx::new(session, &user.0, "containers"),
        tenants,
        owners,
        overview,
        form,
        name,
        owner_id,
    })
}

pub async fn index(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    q: web::Query<TenantQuery>,
) -> Result<HttpResponse, HtmlError> {
    if user.0.scope.is_merchant() {
        return Err(ServiceError::Forbidden.into());
    }
    let page = index_page(
        &state,
        &session,
        &user,
        q.into_inner().tenant,
        FormState::default(),
        String::new(),
        String::new(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    name: String,
}

pub async fn create(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(f): CsrfForm<CreateForm>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let (tid, name) = (f.tenant_id.clone(), f.name.clone());
    match state
        .db
        .run(move |c| containers::create(c, &actor, &tid, &name))
        .await
    {
        Ok(c) => {
            TypedSession(&session).flash("success", format!("Container {} created.", c.name));
            Ok(see_other(&format!("/containers?tenant={}", c.tenant_id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let selected = Some(f.tenant_id.clone()).filter(|s| !s.is_empty());
            let page = index_page(
                &state,
                &session,
                &user,
                selected,
                FormState { errors },
                f.name,
                f.tenant_id,
            )
            .await;
            // The selected tenant may be out of scope (a forged form): fall back to the default view.
            let page = match page {
                Ok(p) => p,
                Err(_) => {
                    index_page(
                        &state,
                        &session,
                        &user,
                        None,
                        FormState::default(),
                        String::new(),
                        String::new(),
                    )
                    .await?
                }
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct ShowQuery {
    q: Option<String>,
    before: Option<String>,
    after: Option<String>,
}

#[derive(Template)]
#[template(path = "containers/show.html")]
struct ShowPage {
    ctx: PageCtx,
    p: ProfilePage,
    usage: containers::Usage,
    q: String,
    form: FormState,
    name: String,
}

impl ShowPage {
    fn manage(&self) -> bool {
        self.p.access == Access::Manage && self.ctx.can_manage()
    }
}

pub async fn show(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, HtmlError> {
    let cursor = page_cursor(&query.before, &query.after)?;
    let term = search_term(&query.q)?;
    let q = term.clone().unwrap_or_default();
    let actor = user.0.clone();
    let id = path.into_inner();
    let config = state.config.clone();
    let (p, used_by) = state
        .db
        .run(move |c| {
            // A read-only page: the connectors' effective containers of the current
            // configuration version are computed once per version (`vault::config_cache`).
            let snapshot = config.snapshot(c)?;
            crate::vault::config_cache::within(&snapshot, || {
                let p = containers::profiles(c, &actor, &id, term.as_deref(), &cursor)?;
                let used = containers::usage(c, &actor, &p.container)?;
                Ok((p, used))
            })
        })
        .await?;
    let name = p.container.name.clone();
    let page = ShowPage {
        ctx: PageCtx::new(&session, &user.0, "containers"),
        p,
        usage: used_by,
        q,
        form: FormState::default(),
        name,
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
    let (cid, name) = (id.clone(), f.name.clone());
    match state
        .db
        .run(move |c| containers::rename(c, &actor, &cid, &name))
        .await
    {
        Ok(c) => {
            TypedSession(&session).flash("success", format!("Container {} saved.", c.name));
            Ok(see_other(&format!("/containers/{}", c.id)))
        }
        Err(ServiceError::Validation(errors)) => {
            let actor = user.0.clone();
            let (p, used_by) = state
                .db
                .run(move |c| {
                    let p = containers::profiles(
                        c,
                        &actor,
                        &id,
                        None,
                        &crate::models::profile::Cursor::Newest,
                    )?;
                    let used = containers::usage(c, &actor, &p.container)?;
                    Ok((p, used))
                })
                .await?;
            let page = ShowPage {
                ctx: PageCtx::new(&session, &user.0, "containers"),
                p,
                usage: used_by,
                q: String::new(),
                form: FormState { errors },
                name: f.name,
            };
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "containers/delete.html")]
struct DeletePage {
    ctx: PageCtx,
    container: crate::models::container::Container,
    cannot_delete: Option<String>,
}

pub async fn confirm_delete(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let (container, access, cannot_delete) = state
        .db
        .run(move |c| {
            let (k, access) = containers::access(c, &actor, &id)?;
            let blocker = containers::delete_blocker(c, &actor, &k)?;
            Ok((k, access, blocker))
        })
        .await?;
    if access != Access::Manage || !user.0.can_manage() {
        return Err(ServiceError::Forbidden.into());
    }
    render(
        StatusCode::OK,
        &DeletePage {
            ctx: PageCtx::new(&session, &user.0, "containers"),
            container,
            cannot_delete,
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
    let cid = id.clone();
    let typed = TypedSession(&session);
    match state
        .db
        .run(move |c| containers::delete(c, &actor, &cid))
        .await
    {
        Ok(c) => {
            typed.flash("success", format!("Container {} deleted.", c.name));
            Ok(see_other(&format!("/containers?tenant={}", c.tenant_id)))
        }
        Err(ServiceError::Conflict(msg)) => {
            typed.flash("error", msg);
            Ok(see_other(&format!("/containers/{id}")))
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "profiles/show.html")]
struct ProfilePageT {
    ctx: PageCtx,
    v: ProfileView,
    customer: Vec<(String, String)>,
    transactions: Vec<Row>,
    /// The newest reads of the profile (access audit), and whether there are more.
    accesses: Vec<crate::web::audit::EntryView>,
    more_accesses: bool,
    today: chrono::NaiveDate,
}

impl ProfilePageT {
    fn manage(&self) -> bool {
        self.v.access == Access::Manage && self.ctx.can_manage()
    }

    /// "expired", "expiring" or "".
    fn expiry(&self, i: &crate::models::profile::Instrument) -> &'static str {
        if crate::vault::events::is_expired(i, self.today) {
            return "expired";
        }
        crate::console::home::expiry_state(i.exp_month, i.exp_year, self.today).unwrap_or("")
    }

    /// "the visa card ending 1111 (12/2030)", "the IBAN DE89…": the action buttons' names.
    fn label(&self, i: &crate::models::profile::Instrument) -> String {
        crate::console::containers::instrument_label(i)
    }
}

/// Customer data fields in the order of `CUSTOMER_FIELDS`, under their human labels, values as
/// text; `extraData` entries one per row ("Extra data: key").
fn customer_fields(json: &str) -> Vec<(String, String)> {
    use crate::vault::profiles::{CUSTOMER_FIELDS, customer_field_label};
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let text = |val: &serde_json::Value| match val {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) if s.is_empty() => None,
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Object(o) if o.is_empty() => None,
        other => Some(other.to_string()),
    };
    let mut out = vec![];
    let Some(map) = v.as_object() else {
        return out;
    };
    for (key, _) in CUSTOMER_FIELDS {
        let Some(val) = map.get(key) else { continue };
        let label = customer_field_label(key);
        match val.as_object() {
            Some(extra) => {
                let sorted: std::collections::BTreeMap<_, _> = extra.iter().collect();
                for (k, x) in sorted {
                    if let Some(t) = text(x) {
                        out.push((format!("{label}: {k}"), t));
                    }
                }
            }
            None => {
                if let Some(t) = text(val) {
                    out.push((label.to_string(), t));
                }
            }
        }
    }
    out
}

pub async fn profile(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let reader = crate::audit::access::Reader::user(
        &state.access,
        &actor,
        crate::api::route_of(&req),
        crate::web::client::origin(&req, &state),
    );
    let (v, transactions) = state
        .db
        .run({
            let actor = actor.clone();
            move |c| {
                let v = containers::view_profile(c, &actor, &reader, &id)?;
                let t = transactions_view::for_profile(c, &actor, &v.profile.id)?;
                Ok((v, t))
            }
        })
        .await?;
    // The history includes this view: the process's queued reads are written first.
    let access = state.access.clone();
    let _ = web::block(move || access.flush(std::time::Duration::from_secs(2))).await;
    let guid = v.profile.profile_guid.clone();
    let (accesses, more_accesses) = state
        .db
        .run(move |c| containers::access_history(c, &actor, &guid))
        .await?;
    let customer = customer_fields(&v.profile.customer);
    render(
        StatusCode::OK,
        &ProfilePageT {
            ctx: PageCtx::new(&session, &user.0, "containers"),
            v,
            customer,
            transactions,
            accesses: accesses
                .into_iter()
                .map(crate::web::audit::EntryView::from)
                .collect(),
            more_accesses,
            today: chrono::Utc::now().date_naive(),
        },
    )
}

#[derive(Template)]
#[template(path = "profiles/delete.html")]
struct ProfileDeletePage {
    ctx: PageCtx,
    v: ProfileView,
}

pub async fn confirm_delete_profile(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let v = state
        .db
        .run(move |c| containers::profile(c, &actor, &id))
        .await?;
    if v.access != Access::Manage || !user.0.can_manage() {
        return Err(ServiceError::Forbidden.into());
    }
    render(
        StatusCode::OK,
        &ProfileDeletePage {
            ctx: PageCtx::new(&session, &user.0, "containers"),
            v,
        },
    )
}

pub async fn delete_profile(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    _f: CsrfForm<Empty>,
) -> Result<HttpResponse, HtmlError> {
    let actor = user.0.clone();
    let id = path.into_inner();
    let p = state
        .db
        .run(move |c| containers::delete_profile(c, &actor, &id))
        .await?;
    TypedSession(&session).flash(
        "success",
        format!("Customer profile {} deleted.", p.profile_guid),
    );
    Ok(see_other(&format!("/containers/{}", p.container_id)))
}

#[derive(Template)]
#[template(path = "containers/global_settings.html")]
struct GlobalPage {
    ctx: PageCtx,
    tenants: Vec<Tenant>,
    v: GlobalSettingView,
    form: FormState,
}

async fn global_page(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    tenant: Option<String>,
    form: FormState,
) -> Result<GlobalPage, HtmlError> {
    let actor = user.0.clone();
    let (tenants, v) = state
        .db
        .run(move |c| {
            let list = tenants::list(c, &actor)?;
            let pick = tenant
                .or_else(|| list.first().map(|t| t.id.clone()))
                .ok_or(ServiceError::NotFound)?;
            let v = containers::global_setting(c, &actor, &pick)?;
            Ok((list, v))
        })
        .await?;
    Ok(GlobalPage {
        ctx: PageCtx::new(session, &user.0, "global"),
        tenants,
        v,
        form,
    })
}

pub async fn global_settings(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    q: web::Query<TenantQuery>,
) -> Result<HttpResponse, HtmlError> {
    if user.0.scope.is_merchant() {
        return Err(ServiceError::Forbidden.into());
    }
    let page = global_page(
        &state,
        &session,
        &user,
        q.into_inner().tenant,
        FormState::default(),
    )
    .await?;
    render(StatusCode::OK, &page)
}

#[derive(Deserialize)]
pub struct GlobalForm {
    #[serde(default)]
    tenant_id: String,
    #[serde(default)]
    container_id: String,
}

pub async fn save_global_settings(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    CsrfForm(pairs): CsrfForm<Vec<(String, String)>>,
) -> Result<HttpResponse, HtmlError> {
    let field = |name: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let f = GlobalForm {
        tenant_id: field("tenant_id"),
        container_id: field("container_id"),
    };
    if !crate::web::confirm::is_confirmed(&pairs) {
        let actor = user.0.clone();
        let (tid, cid) = (f.tenant_id.clone(), f.container_id.clone());
        match state
            .db
            .run(move |c| containers::global_setting_impact(c, &actor, &tid, &cid))
            .await
        {
            Ok((t, impact)) => {
                let mut page = crate::web::confirm::ConfirmPage::of_form(
                    PageCtx::new(&session, &user.0, "global"),
                    &pairs,
                );
                page.title = format!("Change the Global Setting of {}?", t.name);
                page.crumbs = vec![(
                    format!("/global-settings?tenant={}", t.id),
                    "Global Settings".into(),
                )];
                page.consequences = impact.sentences();
                page.action = "/global-settings".into();
                page.button = "Save the Global Setting".into();
                page.cancel = format!("/global-settings?tenant={}", t.id);
                return render(StatusCode::OK, &page);
            }
            Err(ServiceError::Validation(errors)) => {
                return global_rerender(&state, &session, &user, f.tenant_id, errors).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let actor = user.0.clone();
    let (tid, cid) = (f.tenant_id.clone(), f.container_id.clone());
    match state
        .db
        .run(move |c| {
            let saved = containers::set_global_setting(c, &actor, &tid, &cid)?;
            Ok((saved, containers::global_setting(c, &actor, &tid)?))
        })
        .await
    {
        Ok((c, v)) => {
            let msg = match c {
                Some(c) => {
                    let n = v.reached();
                    format!(
                        "Global Setting saved: {n} connector{} of {} now use{} {} through it.",
                        if n == 1 { "" } else { "s" },
                        v.tenant.name,
                        if n == 1 { "s" } else { "" },
                        c.name
                    )
                }
                None => "Global Setting cleared.".into(),
            };
            TypedSession(&session).flash("success", msg);
            Ok(see_other(&format!(
                "/global-settings?tenant={}",
                f.tenant_id
            )))
        }
        Err(ServiceError::Validation(errors)) => {
            global_rerender(&state, &session, &user, f.tenant_id, errors).await
        }
        Err(e) => Err(e.into()),
    }
}

/// The Global Settings page again, with the messages of a refused save (422).
async fn global_rerender(
    state: &web::Data<AppState>,
    session: &Session,
    user: &CurrentUser,
    tenant_id: String,
    errors: crate::error::FieldErrors,
) -> Result<HttpResponse, HtmlError> {
    let page = global_page(state, session, user, Some(tenant_id), FormState { errors }).await?;
    render(StatusCode::UNPROCESSABLE_ENTITY, &page)
}

/// `POST /profiles/{id}/instruments/{instrument}/preferred` and `…/delete`: a confirmation page
/// first (what changes, in words), then the change.
async fn instrument_change(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    f: crate::web::confirm::Confirmable,
    remove: bool,
) -> Result<HttpResponse, HtmlError> {
    let (pid, iid) = path.into_inner();
    let actor = user.0.clone();
    if !f.yes() {
        let (p, i) = (pid.clone(), iid.clone());
        let (v, _, lines) = state
            .db
            .run(move |c| containers::instrument_change_consequences(c, &actor, &p, &i, remove))
            .await?;
        let (title, button, verb) = if remove {
            (
                "Remove a payment instrument from",
                "Remove the instrument",
                "delete",
            )
        } else {
            (
                "Change the preferred instrument of",
                "Make it preferred",
                "preferred",
            )
        };
        return render(
            StatusCode::OK,
            &crate::web::confirm::simple(
                PageCtx::new(&session, &user.0, "containers"),
                format!("{title} profile {}?", v.profile.customer_identification),
                vec![
                    (
                        format!("/containers/{}", v.container.id),
                        v.container.name.clone(),
                    ),
                    (
                        format!("/profiles/{}", v.profile.id),
                        v.profile.customer_identification.clone(),
                    ),
                ],
                lines,
                format!("/profiles/{}/instruments/{iid}/{verb}", v.profile.id),
                button,
                format!("/profiles/{}", v.profile.id),
            ),
        );
    }
    let (p, i) = (pid.clone(), iid);
    let done = state
        .db
        .run(move |c| {
            if remove {
                containers::remove_instrument(c, &actor, &p, &i)
            } else {
                containers::make_preferred(c, &actor, &p, &i)
            }
        })
        .await?;
    let label = containers::instrument_label(&done);
    TypedSession(&session).flash(
        "success",
        if remove {
            format!("Removed {label}.")
        } else {
            format!(
                "{} is now the preferred instrument.",
                containers::capitalized(&label)
            )
        },
    );
    Ok(see_other(&format!("/profiles/{pid}")))
}

pub async fn make_preferred(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    CsrfForm(f): CsrfForm<crate::web::confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    instrument_change(state, session, user, path, f, false).await
}

pub async fn remove_instrument(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<(String, String)>,
    CsrfForm(f): CsrfForm<crate::web::confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    instrument_change(state, session, user, path, f, true).await
}

/// `POST /containers/{id}/account-updater`: "Run account updater (simulated)", after a
/// confirmation page. Tenant managers (and platform admins) who manage the container. Starts
/// the run (or finds the one going) and answers at once: the server's background worker does
/// it, and the container page shows its progress.
pub async fn account_updater(
    state: web::Data<AppState>,
    session: Session,
    user: CurrentUser,
    path: web::Path<String>,
    CsrfForm(f): CsrfForm<crate::web::confirm::Confirmable>,
) -> Result<HttpResponse, HtmlError> {
    let id = path.into_inner();
    let actor = user.0.clone();
    if !f.yes() {
        let cid = id.clone();
        let (c, lines) = state
            .db
            .run(move |conn| containers::account_updater_consequences(conn, &actor, &cid))
            .await?;
        return render(
            StatusCode::OK,
            &crate::web::confirm::simple(
                PageCtx::new(&session, &user.0, "containers"),
                format!("Run the account updater (simulated) on {}?", c.name),
                vec![(format!("/containers/{}", c.id), c.name.clone())],
                lines,
                format!("/containers/{}/account-updater", c.id),
                "Run account updater (simulated)",
                format!("/containers/{}", c.id),
            ),
        );
    }
    let cid = id.clone();
    let (run, started) = state
        .db
        .run(move |conn| containers::start_account_updater(conn, &actor, &cid))
        .await?;
    TypedSession(&session).flash(
        "success",
        if started {
            "Account updater (simulated) started: it runs in the background; its progress is shown below.".to_string()
        } else {
            format!(
                "The account updater (simulated) is already running on this container ({} of {} cards): no second run was started.",
                run.done,
                run.total.max(run.done)
            )
        },
    );
    Ok(see_other(&format!("/containers/{id}")))
}
