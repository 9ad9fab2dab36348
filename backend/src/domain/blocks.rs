//! Blocking (CONTRACT-2 "Accounts"): a blocked user cannot open a direct room with the blocker (404
//! `user_not_found`, as if there were nobody by that name) nor send into an existing one (403 `blocked`),
//! and the blocker no longer receives their typing.

use chat_api::User;
use diesel::prelude::*;

use crate::db::models::UserRow;
use crate::db::schema::{room_members, user_blocks, users};
use crate::db::{DbConnection, now};
use crate::domain::users as accounts;
use crate::error::ApiError;

/// `POST /me/blocks`: blocking someone blocked already changes nothing.
pub fn block(conn: &mut DbConnection, blocker: i64, username: &str) -> Result<User, ApiError> {
    let blocked = accounts::find_by_username(conn, username)?;
    if blocked.id == blocker {
        return Err(ApiError::invalid("username", "you cannot block yourself"));
    }
    let row = (
        user_blocks::blocker_id.eq(blocker),
        user_blocks::blocked_id.eq(blocked.id),
        user_blocks::created_at.eq(now()),
    );
    crate::per_backend!(conn, c => diesel::insert_into(user_blocks::table).values(row).on_conflict_do_nothing().execute(c))?;
    Ok(blocked.into())
}

/// `DELETE /me/blocks/{user_id}`.
pub fn unblock(conn: &mut DbConnection, blocker: i64, blocked: i64) -> Result<(), ApiError> {
    let deleted = diesel::delete(user_blocks::table.find((blocker, blocked))).execute(conn)?;
    if deleted == 0 {
        return Err(ApiError::not_found("block_not_found", format!("You have not blocked user {blocked}.")));
    }
    Ok(())
}

/// `GET /me/blocks`, the most recent first.
pub fn list(conn: &mut DbConnection, blocker: i64) -> Result<Vec<User>, ApiError> {
    let rows: Vec<UserRow> = user_blocks::table
        .inner_join(users::table.on(users::id.eq(user_blocks::blocked_id)))
        .filter(user_blocks::blocker_id.eq(blocker))
        .order(user_blocks::created_at.desc())
        .select(UserRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// True when `blocker` blocked `blocked`.
pub fn has_blocked(conn: &mut DbConnection, blocker: i64, blocked: i64) -> Result<bool, ApiError> {
    let found: Option<i64> =
        user_blocks::table.find((blocker, blocked)).select(user_blocks::blocker_id).first(conn).optional()?;
    Ok(found.is_some())
}

/// The members of `room_id` who blocked `user_id`.
pub fn blockers_in(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<Vec<i64>, ApiError> {
    Ok(user_blocks::table
        .inner_join(room_members::table.on(room_members::user_id.eq(user_blocks::blocker_id)))
        .filter(room_members::room_id.eq(room_id))
        .filter(user_blocks::blocked_id.eq(user_id))
        .select(user_blocks::blocker_id)
        .load(conn)?)
}

/// 403 `blocked` when someone in the direct room `room_id` blocked `author`.
pub fn refuse_blocked_in_direct(conn: &mut DbConnection, room_id: i64, author: i64) -> Result<(), ApiError> {
    if blockers_in(conn, room_id, author)?.is_empty() {
        Ok(())
    } else {
        Err(ApiError::forbidden("blocked", "The other person has blocked you."))
    }
}
