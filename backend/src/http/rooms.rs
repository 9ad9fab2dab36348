//! `/rooms`, membership and `/direct`.

use actix_web::{HttpResponse, web};
use chat_api::{CreateRoomRequest, Member, MemberList, Problem, Room, RoomPage, Scope, UsernameRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::JsonBody;
use crate::caller::Caller;
use crate::domain::messages::MAX_PAGE;
use crate::domain::rooms::{self, ListScope, NewRoomSpec};
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms").post(create).get(list))
        .service(
            web::resource("/rooms/{room_id}")
                .get(get)
                .patch(super::moderation::update_room)
                .delete(super::moderation::delete_room),
        )
        .service(web::resource("/rooms/{room_id}/join").post(join))
        .service(web::resource("/rooms/{room_id}/leave").post(leave))
        .service(web::resource("/rooms/{room_id}/members").get(members).post(add_member))
        .service(web::resource("/direct").post(direct));
}

/// Create a room; the caller is its owner and first member.
#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", operation_id = "create_room",
    request_body = CreateRoomRequest,
    responses(
        (status = 201, description = "Created", body = Room),
        (status = 403, description = "`insufficient_scope`: API tokens cannot create rooms", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn create(state: State, caller: Caller, body: JsonBody<CreateRoomRequest>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let spec = NewRoomSpec::parse(body.into_inner())?;
    let room = state.db.write(move |conn| rooms::create(conn, caller.user_id, spec)).await?;
    Ok(HttpResponse::Created().json(room))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `joined` (default): the caller's rooms, latest activity first; `public`: every public room, newest first.
    #[serde(default)]
    scope: ListScope,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List rooms, a page at a time.
#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", operation_id = "list_rooms", params(ListQuery),
    responses(
        (status = 200, description = "A page of rooms", body = RoomPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: needs `rooms:read`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller, query: web::Query<ListQuery>) -> Result<web::Json<RoomPage>, ApiError> {
    caller.require(Scope::RoomsRead)?;
    let ListQuery { scope, limit, cursor } = query.into_inner();
    let limit = page_limit(limit, 50)?;
    let user_id = caller.user_id;
    let mut page = state.db.read(move |conn| rooms::list(conn, user_id, scope, limit, cursor.as_deref())).await?;
    page.items.iter_mut().for_each(|room| caller.redact(room));
    Ok(web::Json(page))
}

/// A `limit` query parameter: 1-100, `default` when absent.
pub fn page_limit(limit: Option<i64>, default: i64) -> Result<i64, ApiError> {
    match limit {
        None => Ok(default),
        Some(l) if (1..=MAX_PAGE).contains(&l) => Ok(l),
        Some(_) => Err(ApiError::bad_request("invalid_query", format!("limit must be between 1 and {MAX_PAGE}."))),
    }
}

/// An id-based `cursor` as this server gives them out (the last id of the previous page).
pub fn id_cursor(cursor: Option<String>) -> Result<Option<i64>, ApiError> {
    cursor
        .map(|c| {
            c.parse::<i64>()
                .map_err(|_| ApiError::bad_request("invalid_cursor", "The cursor is not one this server gave out."))
        })
        .transpose()
}

/// One room: for its members, or for anyone when it is public.
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}", tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The room", body = Room),
        (status = 403, description = "`insufficient_scope`: needs `rooms:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`, also for a private room the caller is not in", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn get(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<Room>, ApiError> {
    caller.require(Scope::RoomsRead)?;
    let (room_id, user_id) = (path.into_inner(), caller.user_id);
    let mut room = state.db.read(move |conn| rooms::get(conn, room_id, user_id)).await?;
    caller.redact(&mut room);
    Ok(web::Json(room))
}

/// Join a public room. Joining twice is not an error.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/join", tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The room, joined", body = Room),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn join(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<Room>, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    // Through the writer: `member_joined` reaches every node in commit order.
    Ok(web::Json(state.writer.commit(move |conn: &mut _| rooms::join(conn, room_id, caller.user_id)).await?))
}

/// Leave a room.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/leave", tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 204, description = "Left (or was not a member)"),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn leave(state: State, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let leave = move |conn: &mut _| {
        // Their sockets leave the room and their next send is checked again, on every node.
        Ok(((), rooms::leave(conn, room_id, caller.user_id)?))
    };
    // Through the writer: published in commit order with the room's messages, so nothing sent
    // after the leave reaches the leaver's sockets.
    state.writer.commit(leave).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The members of a room, earliest first.
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/members", tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id")),
    responses(
        (status = 200, description = "The members", body = MemberList),
        (status = 403, description = "`insufficient_scope`: needs `rooms:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn members(state: State, caller: Caller, path: web::Path<i64>) -> Result<web::Json<MemberList>, ApiError> {
    caller.require(Scope::RoomsRead)?;
    let room_id = path.into_inner();
    let items = state.db.read(move |conn| rooms::members(conn, room_id, caller.user_id)).await?;
    Ok(web::Json(MemberList { items }))
}

/// The owner adds someone to the room (the way into a private room).
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/members", tag = "rooms",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = UsernameRequest,
    responses(
        (status = 201, description = "The member (already one: unchanged)", body = Member),
        (status = 403, description = "`not_a_moderator` (only the owner and admins add), `banned` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `user_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_member(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<UsernameRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let room_id = path.into_inner();
    let username = body.into_inner().username;
    let add = move |conn: &mut _| rooms::add_member(conn, room_id, caller.user_id, &username);
    let member = state.writer.commit(add).await?;
    Ok(HttpResponse::Created().json(member))
}

/// The private two-person room with another user: created on first use, the same room after.
#[utoipa::path(post, path = "/api/v1/direct", tag = "rooms",
    request_body = UsernameRequest,
    responses(
        (status = 200, description = "The direct room", body = Room),
        (status = 403, description = "`insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: the caller's own name; `invalid_text`: U+0000 or a control character where none may be", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn direct(
    state: State,
    caller: Caller,
    body: JsonBody<UsernameRequest>,
) -> Result<web::Json<Room>, ApiError> {
    caller.require_session()?;
    let username = body.into_inner().username;
    Ok(web::Json(state.db.write(move |conn| rooms::direct(conn, caller.user_id, &username)).await?))
}
