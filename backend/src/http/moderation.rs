//! `/rooms/{room_id}/members/{user_id}`, `/rooms/{room_id}/bans` and `/rooms/{room_id}/audit`: running a
//! room (CONTRACT-2 "Rooms: roles, settings, moderation"). Every change commits through the writer, so
//! its events (`member_updated`, `member_left`, `unsubscribed`) reach every node in commit order.

use actix_web::{HttpResponse, web};
use chat_api::{AuditPage, Ban, BanList, BanRequest, Member, Problem, Room, UpdateMemberRequest, UpdateRoomRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::JsonBody;
use super::rooms::{id_cursor, page_limit};
use crate::caller::Caller;
use crate::domain::moderation;
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms/{room_id}/members/{user_id}").patch(update_member).delete(remove_member))
        .service(web::resource("/rooms/{room_id}/bans").post(ban).get(bans))
        .service(web::resource("/rooms/{room_id}/bans/{user_id}").delete(unban))
        .service(web::resource("/rooms/{room_id}/audit").get(audit));
}

/// Change a room's name, topic or visibility (the owner or an admin). Subscribers get `room_updated`.
#[utoipa::path(patch, path = "/api/v1/rooms/{room_id}", tag = "moderation", operation_id = "update_room",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = UpdateRoomRequest,
    responses(
        (status = 200, description = "The room as it now is", body = Room),
        (status = 403, description = "`not_a_moderator` (also for a direct room) or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_room(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<UpdateRoomRequest>,
) -> Result<web::Json<Room>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let change = body.into_inner();
    let update = move |conn: &mut _| moderation::update_room(conn, room_id, caller.user_id, change);
    Ok(web::Json(state.writer.commit(update).await?))
}

/// Delete a room (its owner): gone for everyone, messages included. Subscribers get `unsubscribed`
/// (`room_deleted`).
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}", tag = "moderation", operation_id = "delete_room",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`not_the_owner` (also for a direct room) or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_room(state: State, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    state.writer.commit(move |conn: &mut _| Ok(((), moderation::delete_room(conn, room_id, caller.user_id)?))).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Change a member's role (the owner) or mute them (the owner or an admin, on someone of lower rank).
#[utoipa::path(patch, path = "/api/v1/rooms/{room_id}/members/{user_id}", tag = "moderation", operation_id = "update_member",
    params(("room_id" = i64, Path, description = "The room's id"), ("user_id" = i64, Path, description = "The member's user id")),
    request_body = UpdateMemberRequest,
    responses(
        (status = 200, description = "The member as they now are", body = Member),
        (status = 403, description = "`not_a_moderator`, `not_the_owner` (roles), `outranked` (the owner, an admin by an admin, oneself), `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_member(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    body: JsonBody<UpdateMemberRequest>,
) -> Result<web::Json<Member>, ApiError> {
    caller.require_session()?;
    let (room_id, user_id) = path.into_inner();
    let change = body.into_inner();
    let update = move |conn: &mut _| moderation::update_member(conn, room_id, caller.user_id, user_id, change);
    Ok(web::Json(state.writer.commit(update).await?))
}

/// Remove a member (the owner or an admin, on someone of lower rank). Their sockets get `unsubscribed`.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/members/{user_id}", tag = "moderation", operation_id = "remove_member",
    params(("room_id" = i64, Path, description = "The room's id"), ("user_id" = i64, Path, description = "The member's user id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 403, description = "`not_a_moderator`, `outranked` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `member_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_member(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64)>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let (room_id, user_id) = path.into_inner();
    let remove = move |conn: &mut _| Ok(((), moderation::remove_member(conn, room_id, caller.user_id, user_id)?));
    state.writer.commit(remove).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Ban someone (the owner or an admin): removed if a member, and kept from joining or being added until
/// unbanned. Banning someone banned already answers the ban as it is.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/bans", tag = "moderation", operation_id = "ban_member",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = BanRequest,
    responses(
        (status = 201, description = "Banned", body = Ban),
        (status = 403, description = "`not_a_moderator`, `outranked` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `user_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn ban(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<BanRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let BanRequest { user_id, reason } = body.into_inner();
    let ban = move |conn: &mut _| moderation::ban(conn, room_id, caller.user_id, user_id, reason);
    Ok(HttpResponse::Created().json(state.writer.commit(ban).await?))
}

/// The room's bans, newest first (the owner and admins).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/bans", tag = "moderation", operation_id = "list_bans",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "Newest first", body = BanList),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn bans(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<BanList>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let items = state.db.read(move |conn| moderation::bans(conn, room_id, caller.user_id)).await?;
    Ok(web::Json(BanList { items }))
}

/// Lift a ban (the owner or an admin): the user may join or be added again.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/bans/{user_id}", tag = "moderation", operation_id = "unban_member",
    params(("room_id" = i64, Path, description = "The room's id"), ("user_id" = i64, Path, description = "The banned user's id")),
    responses(
        (status = 204, description = "Unbanned"),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `ban_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unban(state: State, caller: Caller, path: web::Path<(i64, i64)>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let (room_id, user_id) = path.into_inner();
    let unban = move |conn: &mut _| Ok((moderation::unban(conn, room_id, caller.user_id, user_id)?, Vec::new()));
    state.writer.commit(unban).await?;
    Ok(HttpResponse::NoContent().finish())
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// What moderators did in the room, newest first (the owner and admins).
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/audit", tag = "moderation", operation_id = "room_audit",
    params(("room_id" = i64, Path, description = "The room's id"), AuditQuery),
    responses(
        (status = 200, description = "Newest first", body = AuditPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`not_a_moderator` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn audit(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<AuditQuery>,
) -> Result<web::Json<AuditPage>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let AuditQuery { limit, cursor } = query.into_inner();
    let limit = page_limit(limit, 50)?;
    let cursor = id_cursor(cursor)?;
    Ok(web::Json(state.db.read(move |conn| moderation::audit(conn, room_id, caller.user_id, limit, cursor)).await?))
}
