use actix_web::HttpResponse;

use crate::auth::guards::CurrentUser;

pub async fn index(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn create(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn show(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn update(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
pub async fn set_active(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
