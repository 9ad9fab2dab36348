//! `/rooms/{room_id}/webhooks`: outgoing webhooks (CONTRACT-2 "Webhooks"), managed by the room's owner and
//! admins. A URL is checked against the SSRF rules (`webhooks::addresses`) after the caller's role, so that
//! nobody else learns anything from the answer about where a name resolves.

use actix_web::{HttpResponse, web};
use chat_api::{
    CreateWebhookRequest, CreatedWebhook, Problem, UpdateWebhookRequest, Webhook, WebhookDeliveryList, WebhookList,
};

use super::json::JsonBody;
use crate::caller::Caller;
use crate::domain::{moderation, webhooks};
use crate::error::ApiError;
use crate::state::State;
use crate::webhooks::addresses::Destinations;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms/{room_id}/webhooks").post(create).get(list))
        .service(web::resource("/rooms/{room_id}/webhooks/{webhook_id}").patch(update).delete(delete))
        .service(web::resource("/rooms/{room_id}/webhooks/{webhook_id}/deliveries").get(deliveries));
}

/// The caller's role is checked, then the URL (which may mean a DNS lookup).
async fn checked_url(state: &State, caller: &Caller, room_id: i64, url: &str) -> Result<reqwest::Url, ApiError> {
    let actor = caller.user_id;
    state.db.read(move |conn| moderation::moderator(conn, room_id, actor).map(|_| ())).await?;
    Destinations::new(&state.config.webhooks.allow_hosts).check(url).await
}

/// Make a webhook (the owner or an admin): the room's events of the chosen types are POSTed to its URL,
/// signed with the secret shown only here.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/webhooks", tag = "integrations", operation_id = "create_webhook",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = CreateWebhookRequest,
    responses(
        (status = 201, description = "Made: the secret is shown this once", body = CreatedWebhook),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: a URL that is not https, resolves to a loopback, private or link-local address, or cannot be resolved; no events; too many webhooks", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<CreateWebhookRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let CreateWebhookRequest { url, events } = body.into_inner();
    let url = checked_url(&state, &caller, room_id, &url).await?;
    let made = state.db.write(move |conn| webhooks::create(conn, room_id, caller.user_id, &url, &events)).await?;
    Ok(HttpResponse::Created().json(made))
}

/// The room's webhooks, newest first, without their secrets (the owner or an admin).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/webhooks", tag = "integrations", operation_id = "list_webhooks",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "Newest first", body = WebhookList),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<WebhookList>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let items = state.db.read(move |conn| webhooks::list(conn, room_id, caller.user_id)).await?;
    Ok(web::Json(WebhookList { items }))
}

/// Change a webhook's URL, events, or whether it is enabled (the owner or an admin).
#[utoipa::path(patch, path = "/api/v1/rooms/{room_id}/webhooks/{webhook_id}", tag = "integrations", operation_id = "update_webhook",
    params(("room_id" = i64, Path, description = "The room's id"), ("webhook_id" = i64, Path, description = "The webhook's id")),
    request_body = UpdateWebhookRequest,
    responses(
        (status = 200, description = "As it now is", body = Webhook),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (url, events)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    body: JsonBody<UpdateWebhookRequest>,
) -> Result<web::Json<Webhook>, ApiError> {
    caller.require_session()?;
    let (room_id, webhook_id) = path.into_inner();
    let UpdateWebhookRequest { url, events, enabled } = body.into_inner();
    let url = match url {
        Some(url) => Some(checked_url(&state, &caller, room_id, &url).await?),
        None => None,
    };
    let changes = webhooks::Changes { url, events, enabled };
    let shown =
        state.db.write(move |conn| webhooks::update(conn, room_id, caller.user_id, webhook_id, changes)).await?;
    Ok(web::Json(shown))
}

/// Delete a webhook and what is queued for it (the owner or an admin).
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/webhooks/{webhook_id}", tag = "integrations", operation_id = "delete_webhook",
    params(("room_id" = i64, Path, description = "The room's id"), ("webhook_id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(state: State, caller: Caller, path: web::Path<(i64, i64)>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let (room_id, webhook_id) = path.into_inner();
    state.db.write(move |conn| webhooks::delete(conn, room_id, caller.user_id, webhook_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The webhook's last 100 delivery attempts, newest first, with the receiver's status, the time taken
/// and why an attempt failed (the owner or an admin).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/webhooks/{webhook_id}/deliveries", tag = "integrations", operation_id = "list_webhook_deliveries",
    params(("room_id" = i64, Path, description = "The room's id"), ("webhook_id" = i64, Path, description = "The webhook's id")),
    responses(
        (status = 200, description = "Newest first", body = WebhookDeliveryList),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `webhook_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn deliveries(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<web::Json<WebhookDeliveryList>, ApiError> {
    caller.require_session()?;
    let (room_id, webhook_id) = path.into_inner();
    let items = state.db.read(move |conn| webhooks::deliveries(conn, room_id, caller.user_id, webhook_id)).await?;
    Ok(web::Json(WebhookDeliveryList { items }))
}
