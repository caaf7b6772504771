use actix_web::{HttpResponse, web};
use diesel::RunQueryDsl;
use serde_json::json;

use crate::state::AppState;

/// 200 when the database answers one round trip, 503 otherwise. Cheap: the key manager is not
/// called; `keys` is the keyring's last known state (an unavailable key manager leaves the
/// process alive and this 200, with the state and a detail naming the key manager).
pub async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let r = state
        .db
        .run(|c| {
            diesel::sql_query("SELECT 1").execute(c)?;
            Ok(())
        })
        .await;
    let keys = state.keyring.status();
    match r {
        Ok(()) => HttpResponse::Ok()
            .content_type("application/json")
            .body(json!({ "status": "ok", "keys": keys }).to_string()),
        Err(e) => {
            tracing::warn!(error = %e, "health check failed");
            HttpResponse::ServiceUnavailable()
                .content_type("application/json")
                .body(json!({ "status": "unavailable", "keys": keys }).to_string())
        }
    }
}

/// Ready to serve every request: the database answers and has every migration of this build,
/// and the key manager answers (one call with a short timeout) and has unwrapped every key.
/// 200 `{"status":"ready"}`, otherwise 503 with the reasons.
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let mut problems: Vec<String> = vec![];
    match state
        .db
        .run(|c| Ok(crate::db::pending_migrations(c)?))
        .await
    {
        Ok(0) => {}
        Ok(n) => problems.push(format!("{n} database migrations are pending")),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            problems.push("the database does not answer".into());
        }
    }
    let keyring = state.keyring.clone();
    match web::block(move || keyring.check_ready()).await {
        Ok(Ok(())) => {}
        Ok(Err(why)) => problems.push(why),
        Err(_) => problems.push("the key manager check failed".into()),
    }
    if problems.is_empty() {
        HttpResponse::Ok()
            .content_type("application/json")
            .body(r#"{"status":"ready"}"#)
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type("application/json")
            .body(json!({ "status": "unavailable", "problems": problems }).to_string())
    }
}
