//! Running a room (CONTRACT-2 "Rooms: roles, settings, moderation"): roles, muting, removing and banning
//! members, and the audit log of what moderators did.
//!
//! Rank: owner > admin > member. A moderator (the owner or an admin) acts only on someone of lower rank;
//! only the owner sets roles. Direct rooms have no owner and no moderators.

use chat_api::{
    AuditEntry, AuditPage, Ban, CreateRoomRequest, LeaveReason, Member, Role, Room, UpdateMemberRequest,
    UpdateRoomRequest, User, Visibility,
};
use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::rooms::{self, NewRoomSpec, member};
use crate::db::models::{AuditRow, BanRow, MemberRow, NewAuditRow, RoomRow, UserRow};
use crate::db::schema::{room_audit, room_bans, room_members, rooms as rooms_table};
use crate::db::{DbConnection, now, utc};
use crate::domain::{text, users as accounts};
use crate::error::ApiError;
use crate::events::Event;

/// The longest ban reason kept.
const MAX_REASON: usize = 500;

fn rank(role: &str) -> u8 {
    match role {
        "owner" => 2,
        "admin" => 1,
        _ => 0,
    }
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// The room and the actor's membership, when the actor moderates it (its owner or an admin): 404 when
/// they cannot see it, 403 `not_a_moderator` otherwise.
pub fn moderator(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<(RoomRow, MemberRow), ApiError> {
    let visible = rooms::visible(conn, room_id, actor)?;
    match visible.membership {
        Some(me) if rank(&me.role) > 0 && !visible.room.is_direct() => Ok((visible.room, me)),
        _ => Err(ApiError::forbidden("not_a_moderator", "Only the room's owner and admins can do this.")),
    }
}

fn member_not_found(user_id: i64) -> ApiError {
    ApiError::not_found("member_not_found", format!("User {user_id} is not a member of this room."))
}

fn target(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<(MemberRow, UserRow), ApiError> {
    rooms::membership(conn, room_id, user_id)?.ok_or_else(|| member_not_found(user_id))
}

/// 403 `outranked` unless `me` ranks above `them` (which also refuses acting on oneself).
fn outrank(me: &MemberRow, them: &MemberRow) -> Result<(), ApiError> {
    if rank(&me.role) > rank(&them.role) {
        return Ok(());
    }
    Err(outranked())
}

fn outranked() -> ApiError {
    ApiError::forbidden("outranked", "Moderators act only on members of lower rank than their own.")
}

/// Records a moderation action in the room's audit log (in the caller's transaction).
pub fn record(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    action: &str,
    target: Option<i64>,
    seq: Option<i64>,
    detail: Option<&str>,
) -> Result<(), ApiError> {
    let row = NewAuditRow { room_id, actor_id: actor, action, target_id: target, seq, detail, created_at: now() };
    diesel::insert_into(room_audit::table).values(&row).execute(conn)?;
    Ok(())
}

/// `PATCH /rooms/{room_id}`: the owner or an admin changes the room's name, topic or visibility. The
/// fields sent are checked as at creation; the others stay as they are.
pub fn update_room(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    change: UpdateRoomRequest,
) -> Result<(Room, Vec<Event>), ApiError> {
    let (room, _) = moderator(conn, room_id, actor)?;
    let current = if room.is_public() { Visibility::Public } else { Visibility::Private };
    let spec = NewRoomSpec::parse(CreateRoomRequest {
        name: change.name.unwrap_or_else(|| room.name.clone()),
        topic: change.topic.unwrap_or_else(|| room.topic.clone()),
        visibility: Some(change.visibility.unwrap_or(current)),
    })?;
    let visibility = rooms::visibility_name(spec.visibility);
    let changed: Vec<&str> = [
        (spec.name != room.name, "name"),
        (spec.topic != room.topic, "topic"),
        (visibility != room.visibility, "visibility"),
    ]
    .into_iter()
    .filter_map(|(changed, field)| changed.then_some(field))
    .collect();
    if changed.is_empty() {
        return Ok((rooms::view(conn, room, actor)?, Vec::new()));
    }
    diesel::update(rooms_table::table.find(room_id))
        .set((
            rooms_table::name.eq(&spec.name),
            rooms_table::topic.eq(&spec.topic),
            rooms_table::visibility.eq(visibility),
        ))
        .execute(conn)?;
    record(conn, room_id, actor, "room_updated", None, None, Some(&changed.join(", ")))?;
    let row = RoomRow { name: spec.name, topic: spec.topic, visibility: visibility.to_owned(), ..room };
    let view = rooms::view(conn, row, actor)?;
    // The same frame goes to every subscriber: nothing of the actor's own (read marker, unread count),
    // and no message text (what a token without `messages:read` must not see).
    let neutral = Room { unread_count: 0, last_read_seq: 0, last_message: None, ..view.clone() };
    Ok((view, vec![Event::RoomUpdated { room: neutral }]))
}

/// `DELETE /rooms/{room_id}`: the owner deletes the room, its messages and memberships with it. Direct
/// rooms have no owner and cannot be deleted.
pub fn delete_room(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<Vec<Event>, ApiError> {
    let visible = rooms::visible(conn, room_id, actor)?;
    let owner = visible.membership.as_ref().is_some_and(|m| m.role == "owner");
    if visible.room.is_direct() || !owner {
        return Err(ApiError::forbidden("not_the_owner", "Only the room's owner can delete it."));
    }
    diesel::delete(rooms_table::table.find(room_id)).execute(conn)?;
    Ok(vec![Event::RoomDeleted { room_id }])
}

/// `PATCH /rooms/{room_id}/members/{user_id}`: the owner sets roles (`owner` hands the room over: the old
/// owner becomes an admin); the owner or an admin mutes and unmutes someone of lower rank.
pub fn update_member(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    user_id: i64,
    change: UpdateMemberRequest,
) -> Result<(Member, Vec<Event>), ApiError> {
    let (_, me) = moderator(conn, room_id, actor)?;
    let (them, user) = target(conn, room_id, user_id)?;
    outrank(&me, &them)?;
    let mut events = Vec::new();
    if let Some(role) = change.role {
        if me.role != "owner" {
            return Err(ApiError::forbidden("not_the_owner", "Only the room's owner sets roles."));
        }
        let name = role_name(role);
        if name != them.role {
            if role == Role::Owner {
                rooms::make_owner(conn, room_id, user_id)?;
                // One owner: the old one steps down to admin.
                set_role(conn, room_id, actor, "admin")?;
                let (row, me_user) = target(conn, room_id, actor)?;
                events.push(Event::MemberUpdated { room_id, member: member(row, me_user) });
            } else {
                set_role(conn, room_id, user_id, name)?;
            }
            record(conn, room_id, actor, "role_changed", Some(user_id), None, Some(name))?;
        }
    }
    if let Some(until) = change.muted_until {
        let until = until.map(|t| t.naive_utc());
        if until.is_some_and(|t| t <= now()) {
            return Err(ApiError::invalid("muted_until", "must be in the future (null unmutes)"));
        }
        diesel::update(room_members::table.find((room_id, user_id)))
            .set(room_members::muted_until.eq(until))
            .execute(conn)?;
        let detail = until.map_or_else(|| "unmuted".to_owned(), |t| utc(t).to_rfc3339());
        record(conn, room_id, actor, "member_muted", Some(user_id), None, Some(&detail))?;
    }
    let (row, _) = target(conn, room_id, user_id)?;
    let updated = member(row, user);
    events.insert(0, Event::MemberUpdated { room_id, member: updated.clone() });
    Ok((updated, events))
}

fn set_role(conn: &mut DbConnection, room_id: i64, user_id: i64, role: &str) -> Result<(), ApiError> {
    diesel::update(room_members::table.find((room_id, user_id))).set(room_members::role.eq(role)).execute(conn)?;
    Ok(())
}

/// `DELETE /rooms/{room_id}/members/{user_id}`: the owner or an admin removes someone of lower rank.
pub fn remove_member(conn: &mut DbConnection, room_id: i64, actor: i64, user_id: i64) -> Result<Vec<Event>, ApiError> {
    let (_, me) = moderator(conn, room_id, actor)?;
    let (them, user) = target(conn, room_id, user_id)?;
    outrank(&me, &them)?;
    diesel::delete(room_members::table.find((room_id, user_id))).execute(conn)?;
    record(conn, room_id, actor, "member_removed", Some(user_id), None, None)?;
    Ok(vec![Event::MemberLeft { room_id, user: user.into(), reason: LeaveReason::Removed }])
}

/// `POST /rooms/{room_id}/bans`: removes the user (if a member) and keeps them out until unbanned. Banning
/// someone banned already changes nothing and answers the ban as it is.
pub fn ban(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    user_id: i64,
    reason: Option<String>,
) -> Result<(Ban, Vec<Event>), ApiError> {
    // Checked as sent (the limit is the schema's), then kept trimmed.
    if let Some(reason) = &reason {
        if reason.chars().count() > MAX_REASON {
            return Err(ApiError::invalid("reason", "must be at most 500 characters"));
        }
        text::check_body("reason", reason)?;
    }
    let reason = reason.map(|r| r.trim().to_owned()).filter(|r| !r.is_empty());
    let (_, me) = moderator(conn, room_id, actor)?;
    if user_id == actor {
        return Err(outranked());
    }
    let user = accounts::find_user(conn, user_id)?;
    let mut events = Vec::new();
    // A member is removed (if the actor outranks them); anyone else can be banned ahead.
    if let Ok((them, _)) = target(conn, room_id, user_id) {
        outrank(&me, &them)?;
        diesel::delete(room_members::table.find((room_id, user_id))).execute(conn)?;
        events.push(Event::MemberLeft { room_id, user: user.clone().into(), reason: LeaveReason::Banned });
    }
    let row = BanRow { room_id, user_id, reason, banned_by: actor, created_at: now() };
    let inserted = crate::db::insert_ban_unless_present(conn, &row)?;
    if inserted > 0 {
        record(conn, room_id, actor, "member_banned", Some(user_id), None, row.reason.as_deref())?;
    }
    let ban = find_ban(conn, room_id, user_id)?.ok_or_else(|| ban_not_found(user_id))?;
    Ok((ban, events))
}

fn ban_not_found(user_id: i64) -> ApiError {
    ApiError::not_found("ban_not_found", format!("User {user_id} is not banned from this room."))
}

fn find_ban(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<Option<Ban>, ApiError> {
    let row: Option<BanRow> =
        room_bans::table.find((room_id, user_id)).select(BanRow::as_select()).first(conn).optional()?;
    row.map(|row| ban_view(conn, row)).transpose()
}

fn ban_view(conn: &mut DbConnection, row: BanRow) -> Result<Ban, ApiError> {
    let people = accounts::find_many(conn, &[row.user_id, row.banned_by])?;
    let find = |id: i64| people.iter().find(|u| u.id == id).cloned().ok_or(diesel::result::Error::NotFound);
    Ok(Ban {
        user: find(row.user_id)?,
        reason: row.reason,
        banned_by: find(row.banned_by)?,
        created_at: utc(row.created_at),
    })
}

/// `DELETE /rooms/{room_id}/bans/{user_id}`.
pub fn unban(conn: &mut DbConnection, room_id: i64, actor: i64, user_id: i64) -> Result<(), ApiError> {
    moderator(conn, room_id, actor)?;
    let deleted = diesel::delete(room_bans::table.find((room_id, user_id))).execute(conn)?;
    if deleted == 0 {
        return Err(ban_not_found(user_id));
    }
    record(conn, room_id, actor, "member_unbanned", Some(user_id), None, None)
}

/// `GET /rooms/{room_id}/bans`, newest first.
pub fn bans(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<Vec<Ban>, ApiError> {
    moderator(conn, room_id, actor)?;
    let rows: Vec<BanRow> = room_bans::table
        .filter(room_bans::room_id.eq(room_id))
        .order(room_bans::created_at.desc())
        .select(BanRow::as_select())
        .load(conn)?;
    rows.into_iter().map(|row| ban_view(conn, row)).collect()
}

/// 403 `banned` when `user_id` is banned from the room: checked by join, add and (later) invites.
pub fn refuse_banned(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<(), ApiError> {
    let banned: Option<i64> =
        room_bans::table.find((room_id, user_id)).select(room_bans::user_id).first(conn).optional()?;
    match banned {
        Some(_) => Err(ApiError::forbidden("banned", "You are banned from this room.")),
        None => Ok(()),
    }
}

/// 403 `muted` while the member is muted.
pub fn refuse_muted(membership: &MemberRow) -> Result<(), ApiError> {
    match membership.muted_until {
        Some(until) if until > now() => {
            Err(ApiError::forbidden("muted", format!("You are muted in this room until {}.", utc(until).to_rfc3339())))
        }
        _ => Ok(()),
    }
}

/// `GET /rooms/{room_id}/audit`, newest first; `cursor` is the id of the last entry of the previous page.
pub fn audit(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    limit: i64,
    cursor: Option<i64>,
) -> Result<AuditPage, ApiError> {
    moderator(conn, room_id, actor)?;
    let mut query = room_audit::table
        .filter(room_audit::room_id.eq(room_id))
        .order(room_audit::id.desc())
        .limit(limit + 1)
        .select(AuditRow::as_select())
        .into_boxed();
    if let Some(before) = cursor {
        query = query.filter(room_audit::id.lt(before));
    }
    let mut rows: Vec<AuditRow> = query.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let mut ids: Vec<i64> = rows.iter().flat_map(|r| [Some(r.actor_id), r.target_id]).flatten().collect();
    ids.sort_unstable();
    ids.dedup();
    let people = accounts::find_many(conn, &ids)?;
    let user = |id: i64| -> Option<User> { people.iter().find(|u| u.id == id).cloned() };
    let next_cursor = if more { rows.last().map(|r| r.id.to_string()) } else { None };
    let items = rows
        .into_iter()
        .filter_map(|r| {
            Some(AuditEntry {
                id: r.id,
                actor: user(r.actor_id)?,
                action: r.action,
                target: r.target_id.and_then(user),
                seq: r.seq,
                detail: r.detail,
                created_at: DateTime::<Utc>::from_naive_utc_and_offset(r.created_at, Utc),
            })
        })
        .collect();
    Ok(AuditPage { items, next_cursor })
}
