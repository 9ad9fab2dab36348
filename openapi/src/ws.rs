//! WebSocket frames: JSON text, one object per frame, tagged by `type`. Described for people in
//! `openapi/asyncapi.yaml`; a test keeps the two in step.

use serde::{Deserialize, Serialize};

use crate::{Member, Message, Room, User};

/// What a client may send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// Start receiving a room's messages. With `since`, every message with a higher seq is sent
    /// first (at most 1000; past that none, and `subscribed.truncated` is true).
    Subscribe {
        room_id: i64,
        #[serde(default)]
        since: Option<i64>,
    },
    Unsubscribe {
        room_id: i64,
    },
    /// Send a message; answered by `ack`. A resend with the same `client_id` is acked with the
    /// message stored the first time.
    Send {
        room_id: i64,
        body: String,
        client_id: String,
        /// The seq of a message of the same room that this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<i64>,
    },
    /// The sender is typing; others in the room see it for 5 seconds.
    Typing {
        room_id: i64,
    },
    /// Move the read marker (never backwards).
    Read {
        room_id: i64,
        seq: i64,
    },
    Ping,
}

/// What the server sends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The first frame on every connection.
    Ready {
        user: User,
        connection_id: String,
    },
    /// The replay after `subscribe` is complete; live messages follow.
    Subscribed {
        room_id: i64,
        last_seq: i64,
        truncated: bool,
    },
    /// A new message in a subscribed room, in seq order, once.
    Message {
        message: Message,
    },
    /// The sender's own message is stored.
    Ack {
        client_id: String,
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    MessageDeleted {
        room_id: i64,
        seq: i64,
    },
    Typing {
        room_id: i64,
        user: User,
    },
    /// A notification for this user (a mention, a reply, a direct message), on every socket of theirs
    /// whether or not it is subscribed to the room.
    Notification {
        notification: crate::Notification,
    },
    /// Someone added (`added: true`) or took back an emoji on a message.
    Reaction {
        room_id: i64,
        seq: i64,
        emoji: String,
        user: User,
        added: bool,
    },
    /// Who is online in the room, sent on subscribe.
    Presence {
        room_id: i64,
        online: Vec<User>,
    },
    PresenceChanged {
        room_id: i64,
        user: User,
        online: bool,
    },
    /// The user stopped being a member of the room: this socket receives nothing more from it
    /// (no message, edit, typing or presence) until it subscribes again as a member.
    Unsubscribed {
        room_id: i64,
        reason: UnsubscribeReason,
    },
    /// The room's name, topic or visibility changed. `unread_count`, `last_read_seq` and `last_message` are
    /// not the reader's own here (0, 0, null): keep yours.
    RoomUpdated {
        room: Room,
    },
    /// Someone who shares a room with the reader changed their display name.
    UserUpdated {
        user: User,
    },
    /// Someone became a member of the room.
    MemberJoined {
        room_id: i64,
        member: Member,
    },
    /// A member's role or mute changed.
    MemberUpdated {
        room_id: i64,
        member: Member,
    },
    /// Someone stopped being a member: left, removed or banned.
    MemberLeft {
        room_id: i64,
        user: User,
        reason: LeaveReason,
    },
    /// A frame could not be handled; the connection stays open.
    Error {
        code: String,
        message: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_id: Option<String>,
    },
    Pong,
}

/// Why a socket stopped receiving a room.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum UnsubscribeReason {
    /// The user left the room.
    Left,
    /// A moderator removed them.
    Removed,
    /// A moderator banned them.
    Banned,
    /// The room was deleted.
    RoomDeleted,
}

/// Why someone stopped being a member (`member_left`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum LeaveReason {
    Left,
    Removed,
    Banned,
}

impl LeaveReason {
    /// What the leaver's own sockets are told.
    pub fn unsubscribe_reason(self) -> UnsubscribeReason {
        match self {
            LeaveReason::Left => UnsubscribeReason::Left,
            LeaveReason::Removed => UnsubscribeReason::Removed,
            LeaveReason::Banned => UnsubscribeReason::Banned,
        }
    }
}

/// A single-use credential for opening a WebSocket from a browser.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WsTicket {
    /// Pass as `GET /api/v1/ws?ticket=...` within `expires_in` seconds; it works once.
    pub ticket: String,
    pub expires_in: i64,
}

/// Close codes the server uses besides the standard ones.
pub mod close {
    /// The access token expired or the API token was revoked: refresh, then reconnect with `since`.
    pub const TOKEN_EXPIRED: u16 = 4001;
    /// The client fell too far behind: reconnect with `since`.
    pub const TOO_SLOW: u16 = 4008;
}
