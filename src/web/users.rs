use actix_web::HttpResponse;

use crate::auth::guards::CurrentUser;

pub async fn index(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn new(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn create(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn show(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn set_active(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn reset_password(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn password_form(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn password_change(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
