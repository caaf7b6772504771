//! The admin console: server-rendered HTML. Handlers extract, call a service, respond.

pub mod api_docs;
pub mod audit;
pub mod auth;
pub mod callbacks;
pub mod checkout;
pub mod client;
pub mod confirm;
pub mod connectors;
pub mod containers;
pub mod csv;
pub mod ctx;
pub mod error;
pub mod headers;
pub mod health;
pub mod home;
pub mod keys;
pub mod login;
pub mod merchants;
pub mod nul;
pub mod observe;
pub mod profile_search;
pub mod slow;
pub mod telemetry;
pub mod tenants;
pub mod transactions;
pub mod two_factor;
pub mod users;
pub mod views;

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, web};

use crate::web::auth::csrf::FORM_LIMIT;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PayloadConfig::new(FORM_LIMIT))
        .service(actix_files::Files::new(
            "/static",
            concat!(env!("CARGO_MANIFEST_DIR"), "/static"),
        ))
        .route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .configure(crate::api::configure)
        .route("/pay/{token}", web::get().to(checkout::page))
        .route("/pay/{token}", web::post().to(checkout::pay))
        .route("/pay/{token}/cancel", web::post().to(checkout::cancel))
        .route("/3ds/{token}", web::get().to(checkout::challenge))
        .route("/3ds/{token}", web::post().to(checkout::decide))
        .route("/", web::get().to(home::show))
        .route("/login", web::get().to(login::form))
        .route("/login", web::post().to(login::submit))
        .route("/login/two-factor", web::get().to(login::code_form))
        .route("/login/two-factor", web::post().to(login::code_submit))
        .route("/logout", web::post().to(login::logout))
        .route("/account/password", web::get().to(users::password_form))
        .route("/account/password", web::post().to(users::password_change))
        .route("/account/two-factor", web::get().to(two_factor::show))
        .route(
            "/account/two-factor/setup",
            web::post().to(two_factor::setup),
        )
        .route(
            "/account/two-factor/enable",
            web::post().to(two_factor::enable),
        )
        .route(
            "/account/two-factor/disable",
            web::post().to(two_factor::disable),
        )
        .route("/tenants", web::get().to(tenants::index))
        .route("/tenants", web::post().to(tenants::create))
        .route("/tenants/{id}", web::get().to(tenants::show))
        .route("/tenants/{id}", web::post().to(tenants::update))
        .route(
            "/tenants/{id}/delete",
            web::get().to(tenants::confirm_delete),
        )
        .route("/tenants/{id}/delete", web::post().to(tenants::delete))
        .route("/tenants/{id}/erase", web::get().to(tenants::confirm_erase))
        .route("/tenants/{id}/erase", web::post().to(tenants::erase))
        .route("/vault", web::get().to(keys::index))
        .route("/vault/rotate", web::post().to(keys::rotate))
        .route("/vault/reencrypt", web::post().to(keys::reencrypt))
        .route("/merchants", web::get().to(merchants::index))
        .route("/merchants", web::post().to(merchants::create))
        .route("/merchants/{id}", web::get().to(merchants::show))
        .route("/merchants/{id}", web::post().to(merchants::update))
        .route(
            "/merchants/{id}/active",
            web::post().to(merchants::set_active),
        )
        .route(
            "/merchants/{id}/deactivate",
            web::get().to(merchants::confirm_deactivate),
        )
        .route("/users", web::get().to(users::index))
        .route("/users/new", web::get().to(users::new))
        .route("/users", web::post().to(users::create))
        .route("/users/{id}", web::get().to(users::show))
        .route("/users/{id}/active", web::post().to(users::set_active))
        .route(
            "/users/{id}/deactivate",
            web::get().to(users::confirm_deactivate),
        )
        .route(
            "/users/{id}/reset-password",
            web::post().to(users::reset_password),
        )
        .route(
            "/users/{id}/reset-two-factor",
            web::post().to(two_factor::reset),
        )
        .route("/docs/api", web::get().to(api_docs::page))
        .route("/audit.csv", web::get().to(audit::csv))
        .route("/audit", web::get().to(audit::index))
        .route("/containers", web::get().to(containers::index))
        .route("/containers", web::post().to(containers::create))
        .route("/containers/{id}", web::get().to(containers::show))
        .route("/containers/{id}", web::post().to(containers::update))
        .route(
            "/containers/{id}/delete",
            web::get().to(containers::confirm_delete),
        )
        .route(
            "/containers/{id}/delete",
            web::post().to(containers::delete),
        )
        .route(
            "/containers/{id}/account-updater",
            web::post().to(containers::account_updater),
        )
        .route("/profiles", web::get().to(profile_search::index))
        .route("/profiles/{id}", web::get().to(containers::profile))
        .route(
            "/profiles/{id}/instruments/{instrument}/preferred",
            web::post().to(containers::make_preferred),
        )
        .route(
            "/profiles/{id}/instruments/{instrument}/delete",
            web::post().to(containers::remove_instrument),
        )
        .route(
            "/profiles/{id}/delete",
            web::get().to(containers::confirm_delete_profile),
        )
        .route(
            "/profiles/{id}/delete",
            web::post().to(containers::delete_profile),
        )
        .route(
            "/global-settings",
            web::get().to(containers::global_settings),
        )
        .route(
            "/global-settings",
            web::post().to(containers::save_global_settings),
        )
        .route("/connectors", web::get().to(connectors::index))
        .route("/connectors", web::post().to(connectors::create))
        .route("/connectors/{id}", web::get().to(connectors::show))
        .route("/connectors/{id}", web::post().to(connectors::update))
        .route(
            "/connectors/{id}/rotate-secret",
            web::post().to(connectors::rotate_secret),
        )
        .route(
            "/connectors/{id}/rotate-monri-key",
            web::post().to(connectors::rotate_monri_key),
        )
        .route(
            "/connectors/{id}/lifecycle-events",
            web::get().to(callbacks::lifecycle_events),
        )
        .route(
            "/connectors/{id}/lifecycle-events/{event}/redeliver",
            web::post().to(callbacks::redeliver),
        )
        .route("/transactions", web::get().to(transactions::index))
        .route("/transactions.csv", web::get().to(transactions::csv))
        .route("/transactions/{uuid}", web::get().to(transactions::show))
        .route("/api-users", web::get().to(connectors::api_users))
        .route("/api-users", web::post().to(connectors::create_api_user))
        .route(
            "/api-users/{id}/active",
            web::post().to(connectors::set_api_user_active),
        )
        .route(
            "/api-users/{id}/reset-password",
            web::post().to(connectors::reset_api_user),
        )
        .route(
            "/transactions/{uuid}/callbacks/{id}/retry",
            web::post().to(callbacks::retry),
        )
        .default_service(web::to(not_found));
}

async fn not_found() -> HttpResponse {
    crate::web::error::error_page(
        StatusCode::NOT_FOUND,
        "Not found",
        "The page or object does not exist.",
    )
}

/// 303 See Other to `to`: the end of every successful POST.
pub fn see_other(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header(("Location", to))
        .finish()
}

/// Renders a page with a status (200 for pages, 422 for forms with errors).
pub fn render<T: askama::Template>(
    status: StatusCode,
    page: &T,
) -> Result<HttpResponse, crate::web::error::HtmlError> {
    Ok(HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .body(page.render()?))
}
