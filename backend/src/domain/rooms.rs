//! Rooms and membership: who may see, join and administer a room, and how a room looks to a
//! given viewer (member count, last message, their unread count).
//!
//! Visibility rule: a private room is visible only to its members; to anyone else every
//! operation on it answers 404, exactly as for a room that does not exist.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chat_api::{
    CreateRoomRequest, FieldError, LeaveReason, Member, Role, Room, RoomKind, RoomPage, UnsubscribeReason, Visibility,
};
use chrono::DateTime;
use diesel::dsl::count_star;
use diesel::prelude::*;

use crate::db::models::{MemberRow, MessageRow, NewRoom, RoomRow, UserRow};
use crate::db::schema::{messages, room_audit, room_bans, room_members, rooms, users};
use crate::db::{DbConnection, now, utc};
use crate::domain::{self, moderation};
use crate::error::ApiError;
use crate::events::Event;

/// A room request, checked: the name is 1-80 characters and not only white space.
pub struct NewRoomSpec {
    pub name: String,
    pub topic: Option<String>,
    pub visibility: Visibility,
}

impl NewRoomSpec {
    pub fn parse(req: CreateRoomRequest) -> Result<NewRoomSpec, ApiError> {
        let mut errors = Vec::new();
        let name = req.name.trim().to_owned();
        if !(1..=80).contains(&name.chars().count()) {
            errors.push(FieldError { field: "name".into(), message: "must be 1 to 80 characters".into() });
        }
        let topic = req.topic.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
        if topic.as_ref().is_some_and(|t| t.chars().count() > 500) {
            errors.push(FieldError { field: "topic".into(), message: "must be at most 500 characters".into() });
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        domain::text::check_name("name", &name)?;
        if let Some(topic) = &topic {
            domain::text::check_body("topic", topic)?;
        }
        Ok(NewRoomSpec { name, topic, visibility: req.visibility.unwrap_or_default() })
    }
}

/// Which rooms `GET /rooms` lists.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ListScope {
    /// The caller's rooms, latest activity first.
    #[default]
    Joined,
    /// Every public room, newest first.
    Public,
}

/// A room the viewer may see, with their membership when they have one.
pub struct VisibleRoom {
    pub room: RoomRow,
    pub membership: Option<MemberRow>,
}

impl VisibleRoom {
    /// The owner or an admin of a room that has them (not a direct room).
    pub fn is_moderator(&self) -> bool {
        !self.room.is_direct() && self.membership.as_ref().is_some_and(|m| m.role == "owner" || m.role == "admin")
    }

    /// 403 unless the viewer is a member (only public rooms are visible to non-members).
    pub fn require_member(&self) -> Result<&MemberRow, ApiError> {
        self.membership.as_ref().ok_or_else(|| ApiError::forbidden("not_a_member", "Join this room first."))
    }
}

impl VisibleRoom {
    /// The room as `membership`'s holder sees it: 404 for a private room they are not in.
    pub fn check(room: RoomRow, membership: Option<MemberRow>) -> Result<VisibleRoom, ApiError> {
        if membership.is_none() && !room.is_public() {
            return Err(room_not_found(room.id));
        }
        Ok(VisibleRoom { room, membership })
    }
}

pub fn room_not_found(room_id: i64) -> ApiError {
    ApiError::not_found("room_not_found", format!("No room {room_id} is visible to you."))
}

/// The room if `viewer` may see it: public, or private with `viewer` a member. 404 otherwise.
pub fn visible(conn: &mut DbConnection, room_id: i64, viewer: i64) -> Result<VisibleRoom, ApiError> {
    let room: RoomRow = rooms::table
        .find(room_id)
        .select(RoomRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| room_not_found(room_id))?;
    let membership =
        room_members::table.find((room_id, viewer)).select(MemberRow::as_select()).first(conn).optional()?;
    VisibleRoom::check(room, membership)
}

/// Where a subscriber stands after a room's events may have been lost on the way (a broker outage, the
/// node that made a change dying before it published it).
#[derive(Debug, PartialEq, Eq)]
pub enum Standing {
    /// They may still follow the room, whose newest message is `last_seq`.
    Following { last_seq: i64 },
    /// Their subscription ended meanwhile, and why.
    Ended(UnsubscribeReason),
}

/// `user_id`'s standing in `room_id`. `as_member`: they subscribed as a member (anyone may follow a public
/// room; only a member's subscription ends with the membership). `since`: when their connection opened: a
/// removal logged after it is what ended the membership, else they left (or were removed before they
/// subscribed again, which the hub would have told them).
pub fn standing(
    conn: &mut DbConnection,
    room_id: i64,
    user_id: i64,
    as_member: bool,
    since: chrono::NaiveDateTime,
) -> Result<Standing, ApiError> {
    let Some(room) = rooms::table.find(room_id).select(RoomRow::as_select()).first(conn).optional()? else {
        return Ok(Standing::Ended(UnsubscribeReason::RoomDeleted));
    };
    let member: i64 = room_members::table.find((room_id, user_id)).select(count_star()).get_result(conn)?;
    if member > 0 || (!as_member && room.is_public()) {
        return Ok(Standing::Following { last_seq: room.last_seq });
    }
    let banned: i64 = room_bans::table.find((room_id, user_id)).select(count_star()).get_result(conn)?;
    if banned > 0 {
        return Ok(Standing::Ended(UnsubscribeReason::Banned));
    }
    let removed: i64 = room_audit::table
        .filter(room_audit::room_id.eq(room_id))
        .filter(room_audit::target_id.eq(user_id))
        .filter(room_audit::action.eq("member_removed"))
        .filter(room_audit::created_at.ge(since))
        .select(count_star())
        .get_result(conn)?;
    Ok(Standing::Ended(if removed > 0 { UnsubscribeReason::Removed } else { UnsubscribeReason::Left }))
}

pub fn create(conn: &mut DbConnection, owner: i64, spec: NewRoomSpec) -> Result<Room, ApiError> {
    let visibility = visibility_name(spec.visibility);
    let room = conn.transaction(|conn| -> Result<RoomRow, ApiError> {
        let created_at = now();
        let new = NewRoom {
            name: &spec.name,
            topic: spec.topic.as_deref(),
            visibility,
            kind: "room",
            direct_key: None,
            created_by: owner,
            created_at,
            last_activity_at: created_at,
        };
        let room = insert(conn, new)?;
        add(conn, &room, owner, "owner")?;
        Ok(room)
    })?;
    view(conn, room, owner)
}

/// Makes `user_id` a member unless they are one. A new member starts with everything read:
/// the backlog is history to them, not news.
/// One statement, no check before it: two joins at the same moment both succeed (with a check first, the
/// second one's insert met the first one's row and answered 409 on PostgreSQL).
/// True when it added them.
fn add(conn: &mut DbConnection, room: &RoomRow, user_id: i64, role: &str) -> Result<bool, ApiError> {
    let row = MemberRow {
        room_id: room.id,
        user_id,
        role: role.into(),
        joined_at: now(),
        last_read_seq: room.last_seq,
        muted_until: None,
    };
    Ok(crate::db::insert_member_unless_present(conn, &row)? > 0)
}

/// `member_joined` for everyone subscribed, when `user_id` was just added.
fn joined(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<Event, ApiError> {
    let (row, user) = membership(conn, room_id, user_id)?.ok_or(diesel::result::Error::NotFound)?;
    Ok(Event::MemberJoined { room_id, member: member(row, user) })
}

/// `user_id`'s membership of `room_id`, with the user, when they are a member.
pub fn membership(
    conn: &mut DbConnection,
    room_id: i64,
    user_id: i64,
) -> Result<Option<(MemberRow, UserRow)>, ApiError> {
    Ok(room_members::table
        .inner_join(users::table)
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::user_id.eq(user_id))
        .select((MemberRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?)
}

/// A visibility as stored.
pub fn visibility_name(visibility: Visibility) -> &'static str {
    match visibility {
        Visibility::Public => "public",
        Visibility::Private => "private",
    }
}

pub fn get(conn: &mut DbConnection, room_id: i64, viewer: i64) -> Result<Room, ApiError> {
    let visible = visible(conn, room_id, viewer)?;
    view(conn, visible.room, viewer)
}

/// Joins a public room; joining twice is not an error. A private room stays invisible (404)
/// unless the caller is already a member.
pub fn join(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<(Room, Vec<Event>), ApiError> {
    let visible = visible(conn, room_id, user_id)?;
    let events = match visible.membership {
        None => admit(conn, &visible.room, user_id)?,
        Some(_) => Vec::new(),
    };
    Ok((view(conn, visible.room, user_id)?, events))
}

/// Makes `user_id` a member (joining, or accepting an invite): 403 `banned` for a banned user;
/// `member_joined` when they were not one.
pub fn admit(conn: &mut DbConnection, room: &RoomRow, user_id: i64) -> Result<Vec<Event>, ApiError> {
    moderation::refuse_banned(conn, room.id, user_id)?;
    if add(conn, room, user_id, "member")? { Ok(vec![joined(conn, room.id, user_id)?]) } else { Ok(Vec::new()) }
}

/// How many members a room has.
pub fn member_count(conn: &mut DbConnection, room_id: i64) -> Result<i64, ApiError> {
    Ok(room_members::table.filter(room_members::room_id.eq(room_id)).count().get_result(conn)?)
}

/// Leaves a room (not being a member is not an error). An owner who leaves hands the room to its
/// longest-standing admin, else its longest-standing member; the last one out leaves an empty room.
pub fn leave(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<Vec<Event>, ApiError> {
    let visible = visible(conn, room_id, user_id)?;
    let Some(me) = visible.membership else { return Ok(Vec::new()) };
    diesel::delete(room_members::table.find((room_id, user_id))).execute(conn)?;
    let user = domain::users::find(conn, user_id)?;
    let mut events = vec![Event::MemberLeft { room_id, user: user.into(), reason: LeaveReason::Left }];
    if me.role == "owner"
        && let Some(heir) = heir(conn, room_id)?
    {
        make_owner(conn, room_id, heir.0.user_id)?;
        let (row, user) = heir;
        events.push(Event::MemberUpdated { room_id, member: member(MemberRow { role: "owner".into(), ..row }, user) });
    }
    Ok(events)
}

/// Makes a member the room's one owner: their role, and the room's `created_by` (which `Room` shows as
/// the owner). The caller steps the old owner down, if there is one.
pub fn make_owner(conn: &mut DbConnection, room_id: i64, user_id: i64) -> Result<(), ApiError> {
    diesel::update(room_members::table.find((room_id, user_id))).set(room_members::role.eq("owner")).execute(conn)?;
    diesel::update(rooms::table.find(room_id)).set(rooms::created_by.eq(user_id)).execute(conn)?;
    Ok(())
}

/// Who takes over a room its owner left: the longest-standing admin, else the longest-standing member.
fn heir(conn: &mut DbConnection, room_id: i64) -> Result<Option<(MemberRow, UserRow)>, ApiError> {
    let rows: Vec<(MemberRow, UserRow)> = room_members::table
        .inner_join(users::table)
        .filter(room_members::room_id.eq(room_id))
        .order((room_members::joined_at.asc(), room_members::user_id.asc()))
        .select((MemberRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    let admin = rows.iter().position(|(m, _)| m.role == "admin");
    Ok(match admin {
        Some(i) => rows.into_iter().nth(i),
        None => rows.into_iter().next(),
    })
}

pub fn members(conn: &mut DbConnection, room_id: i64, viewer: i64) -> Result<Vec<Member>, ApiError> {
    visible(conn, room_id, viewer)?;
    let rows: Vec<(MemberRow, UserRow)> = room_members::table
        .inner_join(users::table)
        .filter(room_members::room_id.eq(room_id))
        .order((room_members::joined_at.asc(), room_members::user_id.asc()))
        .select((MemberRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    Ok(rows.into_iter().map(|(m, u)| member(m, u)).collect())
}

pub fn member(m: MemberRow, user: UserRow) -> Member {
    let role = match m.role.as_str() {
        "owner" => Role::Owner,
        "admin" => Role::Admin,
        _ => Role::Member,
    };
    // A mute that has run out is no mute.
    let muted_until = m.muted_until.filter(|until| *until > now()).map(utc);
    Member { user: user.into(), role, joined_at: utc(m.joined_at), muted_until }
}

/// The owner or an admin adds someone by username. Adding an existing member changes nothing; a banned
/// user cannot be added (403 `banned`).
pub fn add_member(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    username: &str,
) -> Result<(Member, Vec<Event>), ApiError> {
    let visible = visible(conn, room_id, actor)?;
    if !visible.is_moderator() {
        return Err(ApiError::forbidden("not_a_moderator", "Only the room's owner and admins can add members."));
    }
    let user = domain::users::find_by_username(conn, username)?;
    moderation::refuse_banned(conn, room_id, user.id)?;
    let added = add(conn, &visible.room, user.id, "member")?;
    let (row, user) = membership(conn, room_id, user.id)?.ok_or(diesel::result::Error::NotFound)?;
    let added_member = member(row, user);
    let mut events = Vec::new();
    if added {
        moderation::record(conn, room_id, actor, "member_added", Some(added_member.user.id), None, None)?;
        events.push(Event::MemberJoined { room_id, member: added_member.clone() });
    }
    Ok((added_member, events))
}

/// The private room of two people: created on first use, the same room every time after.
pub fn direct(conn: &mut DbConnection, me: i64, username: &str) -> Result<Room, ApiError> {
    let other = domain::users::find_by_username(conn, username)?;
    if other.id == me {
        return Err(ApiError::invalid("username", "a direct room needs another person"));
    }
    // Someone who blocked the caller is nobody to them here.
    if domain::blocks::has_blocked(conn, other.id, me)? {
        return Err(ApiError::not_found("user_not_found", format!("No user is named {:?}.", username.trim())));
    }
    let key = format!("{}:{}", me.min(other.id), me.max(other.id));
    let room = match find_direct(conn, &key)? {
        Some(room) => room,
        None => match create_direct(conn, me, &other, &key) {
            // Both people opened it at the same moment: the other request created it.
            Err(e) if e.is_unique_violation() => find_direct(conn, &key)?.ok_or(e)?,
            created => created?,
        },
    };
    // Either person may have left; opening the room again brings both back.
    add(conn, &room, me, "member")?;
    add(conn, &room, other.id, "member")?;
    view(conn, room, me)
}

fn find_direct(conn: &mut DbConnection, key: &str) -> Result<Option<RoomRow>, ApiError> {
    Ok(rooms::table.filter(rooms::direct_key.eq(key)).select(RoomRow::as_select()).first(conn).optional()?)
}

fn create_direct(conn: &mut DbConnection, me: i64, other: &UserRow, key: &str) -> Result<RoomRow, ApiError> {
    let created_at = now();
    let new = NewRoom {
        name: &other.username,
        topic: None,
        visibility: "private",
        kind: "direct",
        direct_key: Some(key),
        created_by: me,
        created_at,
        last_activity_at: created_at,
    };
    insert(conn, new)
}

/// Stores a new room and returns its row (built here: the multi-backend connection returns columns,
/// not whole rows).
fn insert(conn: &mut DbConnection, new: NewRoom) -> Result<RoomRow, ApiError> {
    let id: i64 = diesel::insert_into(rooms::table).values(&new).returning(rooms::id).get_result(conn)?;
    Ok(RoomRow {
        id,
        name: new.name.to_owned(),
        topic: new.topic.map(str::to_owned),
        visibility: new.visibility.to_owned(),
        kind: new.kind.to_owned(),
        created_by: new.created_by,
        created_at: new.created_at,
        last_seq: 0,
        last_activity_at: new.last_activity_at,
    })
}

/// One page of rooms. Cursors are opaque to clients: the sort key of the last room of the page.
pub fn list(
    conn: &mut DbConnection,
    viewer: i64,
    scope: ListScope,
    limit: i64,
    cursor: Option<&str>,
) -> Result<RoomPage, ApiError> {
    let cursor = cursor.map(Cursor::decode).transpose()?;
    let mut rows: Vec<RoomRow> = match scope {
        ListScope::Joined => {
            let mut query = rooms::table
                .inner_join(room_members::table)
                .filter(room_members::user_id.eq(viewer))
                .select(RoomRow::as_select())
                .order((rooms::last_activity_at.desc(), rooms::id.desc()))
                .limit(limit + 1)
                .into_boxed();
            if let Some(Cursor { activity_us, id }) = cursor {
                let at = DateTime::from_timestamp_micros(activity_us).ok_or_else(bad_cursor)?.naive_utc();
                query = query
                    .filter(rooms::last_activity_at.lt(at).or(rooms::last_activity_at.eq(at).and(rooms::id.lt(id))));
            }
            query.load(conn)?
        }
        ListScope::Public => {
            let mut query = rooms::table
                .filter(rooms::visibility.eq("public"))
                .select(RoomRow::as_select())
                .order(rooms::id.desc())
                .limit(limit + 1)
                .into_boxed();
            if let Some(Cursor { id, .. }) = cursor {
                query = query.filter(rooms::id.lt(id));
            }
            query.load(conn)?
        }
    };
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = rows
        .last()
        .filter(|_| has_more)
        .map(|r| Cursor { activity_us: r.last_activity_at.and_utc().timestamp_micros(), id: r.id }.encode());
    Ok(RoomPage { items: views(conn, rows, viewer)?, next_cursor })
}

/// Where a page of rooms ended.
struct Cursor {
    activity_us: i64,
    id: i64,
}

fn bad_cursor() -> ApiError {
    ApiError::bad_request("invalid_cursor", "The cursor is not one this server gave out.")
}

impl Cursor {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(format!("{}:{}", self.activity_us, self.id))
    }

    fn decode(raw: &str) -> Result<Cursor, ApiError> {
        let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(bad_cursor)?;
        let (activity, id) = text.split_once(':').ok_or_else(bad_cursor)?;
        Ok(Cursor {
            activity_us: activity.parse().map_err(|_| bad_cursor())?,
            id: id.parse().map_err(|_| bad_cursor())?,
        })
    }
}

pub fn view(conn: &mut DbConnection, room: RoomRow, viewer: i64) -> Result<Room, ApiError> {
    // Unwrap: views returns one room per row it is given.
    Ok(views(conn, vec![room], viewer)?.pop().unwrap())
}

/// How rooms look to `viewer`, in the order given. A fixed number of queries however many rooms.
pub fn views(conn: &mut DbConnection, rows: Vec<RoomRow>, viewer: i64) -> Result<Vec<Room>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let member_counts: HashMap<i64, i64> = room_members::table
        .filter(room_members::room_id.eq_any(&ids))
        .group_by(room_members::room_id)
        .select((room_members::room_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let read_markers: HashMap<i64, i64> = room_members::table
        .filter(room_members::user_id.eq(viewer))
        .filter(room_members::room_id.eq_any(&ids))
        .select((room_members::room_id, room_members::last_read_seq))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let last_rows = messages::table
        .inner_join(users::table)
        .inner_join(rooms::table)
        .filter(rooms::id.eq_any(&ids))
        .filter(messages::seq.eq(rooms::last_seq))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .load::<(MessageRow, UserRow)>(conn)?;
    let mentions = domain::notifications::unread_by_room(conn, viewer, &ids)?;
    let mut last_messages: HashMap<i64, chat_api::Message> =
        domain::messages::assemble(conn, last_rows)?.into_iter().map(|m| (m.room_id, m)).collect();
    let unread: HashMap<i64, i64> = messages::table
        .inner_join(
            room_members::table.on(room_members::room_id.eq(messages::room_id).and(room_members::user_id.eq(viewer))),
        )
        .filter(messages::room_id.eq_any(&ids))
        .filter(messages::seq.gt(room_members::last_read_seq))
        .filter(messages::author_id.ne(viewer))
        .filter(messages::deleted.eq(false))
        .group_by(messages::room_id)
        .select((messages::room_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    let direct_ids: Vec<i64> = rows.iter().filter(|r| r.is_direct()).map(|r| r.id).collect();
    let direct_names: HashMap<i64, String> = if direct_ids.is_empty() {
        HashMap::new()
    } else {
        room_members::table
            .inner_join(users::table)
            .filter(room_members::room_id.eq_any(&direct_ids))
            .filter(room_members::user_id.ne(viewer))
            .select((room_members::room_id, users::display_name))
            .load::<(i64, String)>(conn)?
            .into_iter()
            .collect()
    };
    Ok(rows
        .into_iter()
        .map(|r| Room {
            id: r.id,
            name: direct_names.get(&r.id).cloned().unwrap_or(r.name),
            topic: r.topic,
            visibility: if r.visibility == "public" { Visibility::Public } else { Visibility::Private },
            kind: if r.kind == "direct" { RoomKind::Direct } else { RoomKind::Room },
            created_by: r.created_by,
            created_at: utc(r.created_at),
            member_count: member_counts.get(&r.id).copied().unwrap_or(0),
            last_message: last_messages.remove(&r.id),
            unread_count: unread.get(&r.id).copied().unwrap_or(0),
            mention_count: mentions.get(&r.id).copied().unwrap_or(0),
            last_read_seq: read_markers.get(&r.id).copied().unwrap_or(0),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let c = Cursor { activity_us: 1_764_000_000_123_456, id: 42 }.encode();
        let back = Cursor::decode(&c).unwrap();
        assert_eq!((back.activity_us, back.id), (1_764_000_000_123_456, 42));
        assert!(Cursor::decode("!!!").is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("12")).is_err());
    }

    #[test]
    fn room_names_are_checked() {
        let req = |name: &str| CreateRoomRequest { name: name.into(), topic: None, visibility: None };
        assert!(NewRoomSpec::parse(req("general")).is_ok());
        assert!(NewRoomSpec::parse(req("   ")).is_err());
        assert!(NewRoomSpec::parse(req(&"x".repeat(81))).is_err());
        assert!(NewRoomSpec::parse(req(&"é".repeat(80))).is_ok());
    }
}
