//! Rooms, their members, and the caller's read position in each.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::{Message, User};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Visibility {
    /// Anyone signed in can find, read and join it.
    #[default]
    Public,
    /// Only members see it; to everyone else it does not exist (404).
    Private,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum RoomKind {
    /// A named room.
    Room,
    /// The private two-person room of `POST /direct`.
    Direct,
}

/// A room as the caller sees it: `unread_count` and `last_read_seq` are the caller's own.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Room {
    pub id: i64,
    /// For a direct room, the other person's display name.
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub topic: Option<String>,
    pub visibility: Visibility,
    pub kind: RoomKind,
    /// The user id of the owner.
    pub created_by: i64,
    pub created_at: DateTime<Utc>,
    pub member_count: i64,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_message: Option<Message>,
    /// Other people's messages after the caller's read marker (0 for a non-member).
    pub unread_count: i64,
    /// The caller's unread notifications in the room: mentions, replies, direct messages.
    #[serde(default)]
    pub mention_count: i64,
    /// The caller's read marker: the highest seq they have read (0 for a non-member).
    pub last_read_seq: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateRoomRequest {
    /// 1-80 characters, not only white space.
    #[cfg_attr(feature = "openapi", schema(example = "general", min_length = 1))]
    pub name: String,
    /// Up to 500 characters.
    #[serde(default)]
    pub topic: Option<String>,
    /// `public` when absent.
    #[serde(default)]
    pub visibility: Option<Visibility>,
}

/// One page of rooms; pass `next_cursor` back as `cursor` for the next one.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RoomPage {
    pub items: Vec<Room>,
    /// `null` on the last page.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// One per room (its creator until transferred): everything an admin may, and sets roles.
    Owner,
    /// Moderates: changes the room, mutes, removes and bans members (not the owner nor other admins),
    /// deletes any message, makes invites, reads the audit log.
    Admin,
    Member,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Member {
    pub user: User,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
    /// Until when the member may not send (null: not muted).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub muted_until: Option<DateTime<Utc>>,
}

/// Reads a field that may be absent (no change, `None`), null (`Some(None)`) or a value.
pub(crate) fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// `PATCH /rooms/{room_id}` (the owner or an admin): absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateRoomRequest {
    /// 1-80 characters, not only white space.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_length = 1))]
    pub name: Option<String>,
    /// Up to 500 characters; null (or empty) clears it.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub topic: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visibility: Option<Visibility>,
}

/// `PATCH /rooms/{room_id}/members/{user_id}`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateMemberRequest {
    /// The owner only. `owner` transfers the room: the old owner becomes an admin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// The owner or an admin: a time to mute until, or null to unmute.
    #[serde(default, deserialize_with = "present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<DateTime<Utc>>))]
    pub muted_until: Option<Option<DateTime<Utc>>>,
}

/// `POST /rooms/{room_id}/bans`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BanRequest {
    pub user_id: i64,
    /// Up to 500 characters, shown to moderators (and to the banned user's own sockets).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Ban {
    pub user: User,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reason: Option<String>,
    pub banned_by: User,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct BanList {
    pub items: Vec<Ban>,
}

/// One moderation action, in `GET /rooms/{room_id}/audit`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditEntry {
    pub id: i64,
    pub actor: User,
    /// `room_updated`, `member_added`, `member_removed`, `member_banned`, `member_unbanned`, `role_changed`,
    /// `member_muted`, `message_deleted`, `invite_created`, `webhook_created`, `webhook_deleted`.
    pub action: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub target: Option<User>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub seq: Option<i64>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub detail: Option<String>,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditEntry>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MemberList {
    pub items: Vec<Member>,
}

/// Names a user: to add to a private room, or to open a direct room with.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UsernameRequest {
    #[cfg_attr(feature = "openapi", schema(example = "bob"))]
    pub username: String,
}

/// Moves the caller's read marker forward (never backwards).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadMarkerRequest {
    #[cfg_attr(feature = "openapi", schema(minimum = 0))]
    pub seq: i64,
}

/// `POST /rooms/{room_id}/invites`: both optional (no limit, no expiry).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateInviteRequest {
    /// 1-1000 joins.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 1000))]
    pub max_uses: Option<i32>,
    /// 1-720 hours (30 days).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 720))]
    pub expires_in_hours: Option<i32>,
}

/// An invite link to a room: `/invite/{code}` in the app.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Invite {
    /// 22 characters carrying 132 bits of randomness.
    pub code: String,
    pub room_id: i64,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub max_uses: Option<i32>,
    pub uses: i32,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expires_at: Option<DateTime<Utc>>,
    pub created_by: User,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InviteList {
    /// Usable ones (not used up, not expired), newest first.
    pub items: Vec<Invite>,
}

/// What an invite shows before accepting it: enough to decide.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitePreview {
    pub room: InvitedRoom,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct InvitedRoom {
    pub id: i64,
    pub name: String,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub topic: Option<String>,
    pub member_count: i64,
}
