//! `/rooms/{room_id}/invites` and `/invites/{code}`: invite links (CONTRACT-2 "invites").

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{CreateInviteRequest, Invite, InviteList, InvitePreview, Problem, Room};

use super::json::JsonBody;
use super::rate_limit::Limit;
use crate::caller::Caller;
use crate::domain::invites;
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms/{room_id}/invites").post(create).get(list))
        .service(web::resource("/rooms/{room_id}/invites/{code}").delete(delete))
        .service(web::resource("/invites/{code}").get(preview))
        .service(web::resource("/invites/{code}/accept").post(accept));
}

/// Make an invite link (the owner or an admin).
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/invites", tag = "moderation", operation_id = "create_invite",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = CreateInviteRequest,
    responses(
        (status = 201, description = "Made", body = Invite),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<CreateInviteRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let req = body.into_inner();
    let invite = state.db.write(move |conn| invites::create(conn, room_id, caller.user_id, req)).await?;
    Ok(HttpResponse::Created().json(invite))
}

/// The room's usable invite links, newest first (the owner or an admin).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/invites", tag = "moderation", operation_id = "list_invites",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "Newest first", body = InviteList),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<InviteList>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let items = state.db.read(move |conn| invites::list(conn, room_id, caller.user_id)).await?;
    Ok(web::Json(InviteList { items }))
}

/// Delete an invite link (the owner or an admin): it stops working at once.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/invites/{code}", tag = "moderation", operation_id = "delete_invite",
    params(("room_id" = i64, Path, description = "The room's id"), ("code" = String, Path, description = "The invite's code")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `invite_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(state: State, caller: Caller, path: web::Path<(i64, String)>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let (room_id, code) = path.into_inner();
    state.db.write(move |conn| invites::delete(conn, room_id, caller.user_id, &code)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// What an invite leads to (any signed-in user who has the code). Guessing is rate-limited per user.
#[utoipa::path(get, path = "/api/v1/invites/{code}", tag = "rooms", operation_id = "preview_invite",
    params(("code" = String, Path, description = "The invite's code")),
    responses(
        (status = 200, description = "The room, enough to decide", body = InvitePreview),
        (status = 403, description = "`banned` from the room, or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`invite_not_found`: unknown, used up, expired or deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn preview(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<web::Json<InvitePreview>, ApiError> {
    caller.require_session()?;
    state.limits.enforce(&req, Limit::Lookups, &format!("invite:{}", caller.user_id)).await?;
    let code = path.into_inner();
    Ok(web::Json(state.db.read(move |conn| invites::preview(conn, &code, caller.user_id)).await?))
}

/// Join the room an invite leads to (a member already: nothing used). Everyone subscribed sees
/// `member_joined`.
#[utoipa::path(post, path = "/api/v1/invites/{code}/accept", tag = "rooms", operation_id = "accept_invite",
    params(("code" = String, Path, description = "The invite's code")),
    responses(
        (status = 200, description = "Joined: the room", body = Room),
        (status = 403, description = "`banned` from the room, or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`invite_not_found`: unknown, used up, expired or deleted", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn accept(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<web::Json<Room>, ApiError> {
    caller.require_session()?;
    state.limits.enforce(&req, Limit::Lookups, &format!("invite:{}", caller.user_id)).await?;
    let code = path.into_inner();
    let accept = move |conn: &mut _| invites::accept(conn, &code, caller.user_id);
    Ok(web::Json(state.writer.commit(accept).await?))
}
