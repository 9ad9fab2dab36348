//! Invite links (CONTRACT-2 "invites"): a moderator makes a code, anyone signed in who has it sees the
//! room and joins it, until the code is used up, expires or is deleted. A banned user stays out.

use chat_api::{CreateInviteRequest, Invite, InvitePreview, InvitedRoom, Room};
use chrono::Duration;
use diesel::prelude::*;

use super::moderation;
use super::rooms;
use crate::db::models::{InviteRow, RoomRow};
use crate::db::schema::{room_invites, rooms as rooms_table};
use crate::db::{DbConnection, now, utc};
use crate::domain::credentials::new_secret;
use crate::domain::users;
use crate::error::ApiError;
use crate::events::Event;

/// Characters of a code: 22 of base64url carry 132 bits.
const CODE_LENGTH: usize = 22;

pub fn invite_not_found() -> ApiError {
    ApiError::not_found("invite_not_found", "This invite does not exist, was used up or has expired.")
}

/// `POST /rooms/{room_id}/invites` (the owner or an admin).
pub fn create(conn: &mut DbConnection, room_id: i64, actor: i64, req: CreateInviteRequest) -> Result<Invite, ApiError> {
    if req.max_uses.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(ApiError::invalid("max_uses", "must be 1 to 1000"));
    }
    if req.expires_in_hours.is_some_and(|h| !(1..=720).contains(&h)) {
        return Err(ApiError::invalid("expires_in_hours", "must be 1 to 720"));
    }
    moderation::moderator(conn, room_id, actor)?;
    let created_at = now();
    let row = InviteRow {
        code: new_secret("")[..CODE_LENGTH].to_owned(),
        room_id,
        created_by: actor,
        max_uses: req.max_uses,
        uses: 0,
        expires_at: req.expires_in_hours.map(|h| created_at + Duration::hours(i64::from(h))),
        created_at,
    };
    diesel::insert_into(room_invites::table).values(&row).execute(conn)?;
    moderation::record(conn, room_id, actor, "invite_created", None, None, None)?;
    view(conn, row)
}

fn view(conn: &mut DbConnection, row: InviteRow) -> Result<Invite, ApiError> {
    let created_by = users::find_user(conn, row.created_by)?.into();
    Ok(Invite {
        code: row.code,
        room_id: row.room_id,
        max_uses: row.max_uses,
        uses: row.uses,
        expires_at: row.expires_at.map(utc),
        created_by,
    })
}

/// A usable invite: not used up, not expired.
fn usable(row: &InviteRow) -> bool {
    row.max_uses.is_none_or(|max| row.uses < max) && row.expires_at.is_none_or(|at| at > now())
}

/// `GET /rooms/{room_id}/invites`: the usable ones, newest first (the owner or an admin).
pub fn list(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<Vec<Invite>, ApiError> {
    moderation::moderator(conn, room_id, actor)?;
    let rows: Vec<InviteRow> = room_invites::table
        .filter(room_invites::room_id.eq(room_id))
        .order(room_invites::created_at.desc())
        .select(InviteRow::as_select())
        .load(conn)?;
    rows.into_iter().filter(usable).map(|row| view(conn, row)).collect()
}

/// `DELETE /rooms/{room_id}/invites/{code}` (the owner or an admin).
pub fn delete(conn: &mut DbConnection, room_id: i64, actor: i64, code: &str) -> Result<(), ApiError> {
    moderation::moderator(conn, room_id, actor)?;
    let deleted =
        diesel::delete(room_invites::table.find(code).filter(room_invites::room_id.eq(room_id))).execute(conn)?;
    if deleted == 0 {
        return Err(invite_not_found());
    }
    Ok(())
}

/// The invite and its room, when the code is usable and `user_id` is not banned there.
fn open(conn: &mut DbConnection, code: &str, user_id: i64) -> Result<(InviteRow, RoomRow), ApiError> {
    let found: Option<(InviteRow, RoomRow)> = room_invites::table
        .inner_join(rooms_table::table)
        .filter(room_invites::code.eq(code))
        .select((InviteRow::as_select(), RoomRow::as_select()))
        .first(conn)
        .optional()?;
    let (invite, room) = found.filter(|(invite, _)| usable(invite)).ok_or_else(invite_not_found)?;
    moderation::refuse_banned(conn, room.id, user_id)?;
    Ok((invite, room))
}

/// `GET /invites/{code}`: what the room is, to decide.
pub fn preview(conn: &mut DbConnection, code: &str, user_id: i64) -> Result<InvitePreview, ApiError> {
    let (_, room) = open(conn, code, user_id)?;
    let member_count = rooms::member_count(conn, room.id)?;
    Ok(InvitePreview { room: InvitedRoom { id: room.id, name: room.name, topic: room.topic, member_count } })
}

/// `POST /invites/{code}/accept`: joins the room, using one use of the code (none when the user is a
/// member already). Two people racing for the last use: one gets in, the other 404.
pub fn accept(conn: &mut DbConnection, code: &str, user_id: i64) -> Result<(Room, Vec<Event>), ApiError> {
    let (_, room) = open(conn, code, user_id)?;
    if rooms::visible(conn, room.id, user_id).is_ok_and(|v| v.membership.is_some()) {
        return Ok((rooms::view(conn, room, user_id)?, Vec::new()));
    }
    let at = now();
    // One conditional UPDATE: the use is taken only while one is left.
    let taken = diesel::update(room_invites::table.find(code))
        .filter(room_invites::max_uses.is_null().or(room_invites::uses.lt(room_invites::max_uses.assume_not_null())))
        .filter(room_invites::expires_at.is_null().or(room_invites::expires_at.gt(at)))
        .set(room_invites::uses.eq(room_invites::uses + 1))
        .execute(conn)?;
    if taken == 0 {
        return Err(invite_not_found());
    }
    let events = rooms::admit(conn, &room, user_id)?;
    Ok((rooms::view(conn, room, user_id)?, events))
}
