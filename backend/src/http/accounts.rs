//! `PATCH /me`, `POST /me/password` and `GET /users`: what people manage of their own account, and how
//! they find each other (CONTRACT-2 "Accounts").

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{
    AccountExport, ChangePasswordRequest, DeleteAccountRequest, Problem, UpdateMeRequest, User, UserList,
    UsernameRequest,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::JsonBody;
use super::rate_limit::Limit;
use super::sessions::publish_ended;
use crate::caller::Caller;
use crate::domain::credentials::{hash_password, hashing, verify_password};
use crate::domain::{blocks, sessions, users};
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;

/// The most people `GET /users` answers with.
const MAX_FOUND: i64 = 20;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/password").post(change_password))
        .service(web::resource("/me/blocks").post(block).get(blocked))
        .service(web::resource("/me/blocks/{user_id}").delete(unblock))
        .service(web::resource("/me/export").get(export))
        .service(web::resource("/users").get(search));
}

/// Change the caller's display name. Everyone in a room with them gets `user_updated`.
#[utoipa::path(patch, path = "/api/v1/me", tag = "auth", operation_id = "update_me",
    request_body = UpdateMeRequest,
    responses(
        (status = 200, description = "The caller as they now are", body = User),
        (status = 403, description = "`insufficient_scope`: API tokens cannot change the account", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn update_me(
    state: State,
    caller: Caller,
    body: JsonBody<UpdateMeRequest>,
) -> Result<web::Json<User>, ApiError> {
    caller.require_session()?;
    let Some(display_name) = body.into_inner().display_name else {
        let user = state.db.read(move |conn| users::find(conn, caller.user_id)).await?;
        return Ok(web::Json(user.into()));
    };
    let update = move |conn: &mut _| {
        let (user, rooms) = users::set_display_name(conn, caller.user_id, display_name)?;
        let user: User = user.into();
        Ok((user.clone(), vec![Event::UserUpdated { user, rooms }]))
    };
    // Through the writer, like every event of a room.
    Ok(web::Json(state.writer.commit(update).await?))
}

/// Change the caller's password. Every other session of theirs ends (this one stays).
#[utoipa::path(post, path = "/api/v1/me/password", tag = "auth", operation_id = "change_password",
    request_body = ChangePasswordRequest,
    responses(
        (status = 204, description = "Changed; every other session ended"),
        (status = 403, description = "`invalid_credentials`: the current password is wrong; `insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn change_password(
    state: State,
    caller: Caller,
    req: HttpRequest,
    body: JsonBody<ChangePasswordRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let ChangePasswordRequest { current_password, new_password } = body.into_inner();
    if !users::PASSWORD_LENGTH.contains(&new_password.chars().count()) {
        return Err(ApiError::invalid("new_password", "must be 8 to 128 characters"));
    }
    let user_id = caller.user_id;
    check_password(&state, &req, user_id, current_password).await?;
    let hash = hashing(move || hash_password(&new_password)).await??;
    let keep = caller.session.clone();
    let ended = state
        .db
        .write(move |conn| {
            users::set_password_hash(conn, user_id, &hash)?;
            sessions::end_all(conn, user_id, keep.as_deref())
        })
        .await?;
    publish_ended(&state, ended).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Checks the caller's password (guesses count like login attempts); 403 `invalid_credentials` when wrong.
async fn check_password(state: &State, req: &HttpRequest, user_id: i64, password: String) -> Result<(), ApiError> {
    let (user, stored) = state.db.read(move |conn| users::with_password(conn, user_id)).await?;
    state.limits.enforce(req, Limit::LoginPerUsername, &user.username).await?;
    if hashing(move || verify_password(&stored, &password)).await? {
        Ok(())
    } else {
        Err(ApiError::forbidden("invalid_credentials", "The password is wrong."))
    }
}

/// Delete the caller's account. Its sessions and API tokens end at once on every node, its memberships
/// end, its messages stay under `deleted-<id>`, and its username stays taken for 30 days.
#[utoipa::path(delete, path = "/api/v1/me", tag = "auth", operation_id = "delete_me",
    request_body = DeleteAccountRequest,
    responses(
        (status = 204, description = "Deleted"),
        (status = 403, description = "`invalid_credentials`: the password is wrong; `insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete_me(
    state: State,
    caller: Caller,
    req: HttpRequest,
    body: JsonBody<DeleteAccountRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let user_id = caller.user_id;
    check_password(&state, &req, user_id, body.into_inner().password).await?;
    let delete = move |conn: &mut _| {
        let deleted = users::delete(conn, user_id)?;
        let mut events = deleted.rooms;
        events.extend(deleted.sessions.into_iter().map(|session| Event::SessionEnded { session }));
        events.extend(deleted.api_tokens.into_iter().map(|token_id| Event::TokenRevoked { token_id }));
        Ok(((), events))
    };
    state.writer.commit(delete).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Everything the service holds of the caller's: profile, rooms, memberships, every message they wrote.
#[utoipa::path(get, path = "/api/v1/me/export", tag = "auth", operation_id = "export_me",
    responses(
        (status = 200, description = "The caller's data", body = AccountExport),
        (status = 403, description = "`insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn export(state: State, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let data = state.db.read(move |conn| users::export(conn, caller.user_id)).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("Content-Disposition", "attachment; filename=\"chat-export.json\""))
        .json(data))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// The start of a username or display name (any case), 1-64 characters.
    #[param(min_length = 1, max_length = 64)]
    q: String,
    /// 1-20, default 20.
    #[param(minimum = 1, maximum = 20)]
    limit: Option<i64>,
}

/// Find people by the start of their username or display name, to message or add them. Rate-limited
/// per user, so that it cannot list everyone.
#[utoipa::path(get, path = "/api/v1/users", tag = "auth", operation_id = "search_users",
    params(SearchQuery),
    responses(
        (status = 200, description = "At most 20, by username", body = UserList),
        (status = 400, description = "`invalid_query`: `q` empty or over 64 characters, or `limit` out of range", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn search(
    state: State,
    caller: Caller,
    req: HttpRequest,
    query: web::Query<SearchQuery>,
) -> Result<web::Json<UserList>, ApiError> {
    let SearchQuery { q, limit } = query.into_inner();
    let q = q.trim().to_owned();
    if !(1..=64).contains(&q.chars().count()) || q.contains('\0') {
        return Err(ApiError::bad_request("invalid_query", "q must be 1 to 64 characters of text."));
    }
    let limit = match limit {
        None => MAX_FOUND,
        Some(l) if (1..=MAX_FOUND).contains(&l) => l,
        Some(_) => return Err(ApiError::bad_request("invalid_query", "limit must be between 1 and 20.")),
    };
    state.limits.enforce(&req, Limit::Lookups, &caller.user_id.to_string()).await?;
    let items = state.db.read(move |conn| users::search(conn, &q, limit)).await?;
    Ok(web::Json(UserList { items }))
}

/// Block someone: they cannot open a direct room with the caller nor send into one, and the caller no
/// longer sees them typing.
#[utoipa::path(post, path = "/api/v1/me/blocks", tag = "auth", operation_id = "block_user",
    request_body = UsernameRequest,
    responses(
        (status = 201, description = "Blocked (or was): the user", body = User),
        (status = 403, description = "`insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`user_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn block(state: State, caller: Caller, body: JsonBody<UsernameRequest>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let username = body.into_inner().username;
    let block = move |conn: &mut _| {
        let user = blocks::block(conn, caller.user_id, &username)?;
        let blocked = user.id;
        Ok((user, vec![Event::Blocked { blocked }]))
    };
    Ok(HttpResponse::Created().json(state.writer.commit(block).await?))
}

/// The people the caller blocked, the most recent first.
#[utoipa::path(get, path = "/api/v1/me/blocks", tag = "auth", operation_id = "list_blocks",
    responses(
        (status = 200, description = "The most recent first", body = UserList),
        (status = 403, description = "`insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn blocked(state: State, caller: Caller) -> Result<web::Json<UserList>, ApiError> {
    caller.require_session()?;
    let items = state.db.read(move |conn| blocks::list(conn, caller.user_id)).await?;
    Ok(web::Json(UserList { items }))
}

/// Unblock someone.
#[utoipa::path(delete, path = "/api/v1/me/blocks/{user_id}", tag = "auth", operation_id = "unblock_user",
    params(("user_id" = i64, Path, description = "The blocked user's id")),
    responses(
        (status = 204, description = "Unblocked"),
        (status = 403, description = "`insufficient_scope`: API tokens cannot", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`block_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn unblock(state: State, caller: Caller, path: web::Path<i64>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let blocked = path.into_inner();
    state.db.write(move |conn| blocks::unblock(conn, caller.user_id, blocked)).await?;
    Ok(HttpResponse::NoContent().finish())
}
