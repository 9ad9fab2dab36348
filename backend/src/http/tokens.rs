//! `/tokens`: API tokens for external systems.

use actix_web::{HttpResponse, web};
use chat_api::{ApiTokenList, CreateApiTokenRequest, CreatedApiToken, Problem};

use super::json::JsonBody;
use crate::caller::Caller;
use crate::domain::api_tokens::{self, NewToken};
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/tokens").post(create).get(list))
        .service(web::resource("/tokens/{token_id}").delete(revoke));
}

/// Create an API token. Its secret is in this response only.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", operation_id = "create_token",
    request_body = CreateApiTokenRequest,
    responses(
        (status = 201, description = "Created; `token` is shown once", body = CreatedApiToken),
        (status = 403, description = "`insufficient_scope`: API tokens cannot make tokens", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: State,
    caller: Caller,
    body: JsonBody<CreateApiTokenRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let new = NewToken::parse(body.into_inner())?;
    let created = state.db.write(move |conn| api_tokens::create(conn, caller.user_id, new)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// The caller's live API tokens, without their secrets.
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", operation_id = "list_tokens",
    responses(
        (status = 200, description = "Newest first", body = ApiTokenList),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller) -> Result<web::Json<ApiTokenList>, ApiError> {
    caller.require_session()?;
    let items = state.db.read(move |conn| api_tokens::list(conn, caller.user_id)).await?;
    Ok(web::Json(ApiTokenList { items }))
}

/// Revoke an API token. It stops working at once, on every node.
#[utoipa::path(delete, path = "/api/v1/tokens/{token_id}", tag = "tokens",
    params(("token_id" = i64, Path, description = "The token's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, description = "`token_not_found`: not one of the caller's live tokens", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn revoke(state: State, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let token_id = path.into_inner();
    state.db.write(move |conn| api_tokens::revoke(conn, caller.user_id, token_id)).await?;
    // Requests check the database already; open sockets hear it here, on every node.
    state.realtime.broker.publish(Event::TokenRevoked { token_id }).await;
    Ok(HttpResponse::NoContent().finish())
}
