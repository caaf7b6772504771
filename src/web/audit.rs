use actix_web::HttpResponse;

use crate::auth::guards::CurrentUser;

pub async fn index(_u: CurrentUser) -> HttpResponse {
    HttpResponse::NotImplemented().finish()
}
