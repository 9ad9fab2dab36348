//! `/rooms/{room_id}/hooks` and `/hooks/{secret}`: Slack-compatible incoming hooks (CONTRACT-2 "Webhooks").
//!
//! A POST to a hook's URL is a send by the hook's creator: the writer's membership, mute and block checks,
//! the message limits and the creator's rate limit all apply, and the message goes out on every node like
//! any other. The secret in the URL is never logged (`telemetry::logged_path`).

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{CreateIncomingHookRequest, CreatedIncomingHook, HookAccepted, HookMessage, IncomingHookList, Problem};

use super::json::{JsonBody, SlackBody};
use super::rate_limit::Limit;
use crate::caller::Caller;
use crate::domain::incoming_hooks::{self, checked_name};
use crate::domain::messages::{DedupKeys, MessageBody};
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms/{room_id}/hooks").post(create).get(list))
        .service(web::resource("/rooms/{room_id}/hooks/{hook_id}").delete(delete))
        .service(web::resource("/hooks/{secret}").post(post));
}

/// Make an incoming hook (the owner or an admin). Its URL, shown only here, posts into the room as you.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/hooks", tag = "integrations", operation_id = "create_incoming_hook",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = CreateIncomingHookRequest,
    responses(
        (status = 201, description = "Made: the URL is shown this once", body = CreatedIncomingHook),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (name) or `invalid_text`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<CreateIncomingHookRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let req = body.into_inner();
    let hook = state.db.write(move |conn| incoming_hooks::create(conn, room_id, caller.user_id, req)).await?;
    Ok(HttpResponse::Created().json(hook))
}

/// The room's incoming hooks, newest first, without their URLs (the owner or an admin).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/hooks", tag = "integrations", operation_id = "list_incoming_hooks",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "Newest first", body = IncomingHookList),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<IncomingHookList>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let items = state.db.read(move |conn| incoming_hooks::list(conn, room_id, caller.user_id)).await?;
    Ok(web::Json(IncomingHookList { items }))
}

/// Delete an incoming hook (the owner or an admin): its URL stops working at once.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/hooks/{hook_id}", tag = "integrations", operation_id = "delete_incoming_hook",
    params(("room_id" = i64, Path, description = "The room's id"), ("hook_id" = i64, Path, description = "The hook's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `hook_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(state: State, caller: Caller, path: web::Path<(i64, i64)>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let (room_id, hook_id) = path.into_inner();
    state.db.write(move |conn| incoming_hooks::delete(conn, room_id, caller.user_id, hook_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Post into the hook's room, as Slack's incoming webhooks take it: `{"text", "username"?}` as JSON, or as
/// the `payload` field of a form (`application/x-www-form-urlencoded`). No other credential: the secret in
/// the URL is one. The message is the hook creator's, shown `via` the hook's name
/// (or `username`), under the rules and rate limits of any send.
#[utoipa::path(post, path = "/api/v1/hooks/{secret}", tag = "integrations", operation_id = "post_to_incoming_hook",
    security(()),
    params(("secret" = String, Path, description = "The secret part of the hook's URL")),
    request_body = HookMessage,
    responses(
        (status = 200, description = "Posted", body = HookAccepted),
        (status = 403, description = "`not_a_member` (the hook's creator left the public room), `muted` or `blocked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`hook_not_found`: unknown or deleted; `room_not_found`: the creator left the private room", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (text, username) or `invalid_text`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: the creator's rate limit", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn post(
    state: State,
    req: HttpRequest,
    path: web::Path<String>,
    body: SlackBody<HookMessage>,
) -> Result<web::Json<HookAccepted>, ApiError> {
    let secret = path.into_inner();
    let HookMessage { text, username } = body.0;
    let text = MessageBody::parse_field("text", text)?;
    let shown = username.map(|u| checked_name("username", &u)).transpose()?;
    let hook = state.db.read(move |conn| incoming_hooks::open(conn, &secret)).await?;
    state.limits.enforce(&req, Limit::PerUser, &hook.created_by.to_string()).await?;
    if incoming_hooks::needs_touch(&hook) {
        let id = hook.id;
        state.db.write(move |conn| incoming_hooks::touch(conn, id)).await?;
    }
    let via = shown.unwrap_or(hook.name);
    state.writer.send(hook.room_id, hook.created_by, text, DedupKeys::default(), None, Some(via)).await?;
    metrics::counter!("chat_messages_sent_total", "via" => "hook").increment(1);
    Ok(web::Json(HookAccepted { ok: true }))
}
