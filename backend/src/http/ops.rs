//! Operations: liveness, readiness, metrics and the API description, at the root.

use std::time::Duration;

use actix_web::http::header;
use actix_web::{HttpResponse, web};
use chat_api::Problem;

use crate::openapi::ApiDoc;
use crate::state::State;

/// How long `/readyz` waits for the database.
const READY_TIMEOUT: Duration = Duration::from_secs(2);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/healthz").get(healthz))
        .service(web::resource("/readyz").get(readyz))
        .service(web::resource("/metrics").get(metrics))
        .service(web::resource("/api/v1/openapi.json").get(openapi_json));
}

/// 200 while the process runs.
#[utoipa::path(get, path = "/healthz", tag = "operations", security(()),
    responses((status = 200, description = "The process is alive", body = String, content_type = "text/plain")))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok")
}

/// 200 when the database (and Redis, when configured) answer; 503 otherwise, and while shutting down.
#[utoipa::path(get, path = "/readyz", tag = "operations", security(()),
    responses(
        (status = 200, description = "Ready for traffic", body = String, content_type = "text/plain"),
        (status = 503, description = "A dependency is down", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn readyz(state: State) -> Result<HttpResponse, crate::error::ApiError> {
    if state.realtime.is_draining() {
        return Err(crate::error::ApiError::Unavailable { detail: "This node is shutting down.".into() });
    }
    if !state.db.is_ready(READY_TIMEOUT).await {
        return Err(crate::error::ApiError::Unavailable { detail: "The database does not answer.".into() });
    }
    if !matches!(tokio::time::timeout(READY_TIMEOUT, state.realtime.broker.is_ready()).await, Ok(true)) {
        return Err(crate::error::ApiError::Unavailable { detail: "Redis does not answer.".into() });
    }
    Ok(HttpResponse::Ok().content_type("text/plain").body("ready"))
}

/// Prometheus metrics, in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "operations", security(()),
    responses((status = 200, description = "Prometheus text format", body = String, content_type = "text/plain")))]
pub async fn metrics(state: State) -> HttpResponse {
    metrics::gauge!("db_pool_connections_in_use").set(state.db.connections_in_use());
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}

/// This API's OpenAPI document: the same as the committed `openapi/openapi.json`.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "operations", security(()),
    responses((status = 200, description = "OpenAPI 3.1", content_type = "application/json")))]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-cache")).json(ApiDoc::spec())
}
