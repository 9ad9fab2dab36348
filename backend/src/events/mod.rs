//! Room events: every event named once ([`Event`]), where they go on a node ([`Sink`]), and the one
//! ordered path that commits and publishes them ([`writer`]).
//!
//! The story of a send: `http::messages::send_message` or the socket's `send` frame calls
//! [`writer::MessageWriter::send`]; the writer thread commits it (with the sends queued beside it) and
//! hands the committed events, in commit order, to the `broker`; the broker gives them to this node's
//! sink (`ws::hub::RoomHub`) and, with Redis, to every other node's; each hub queues a frame for each
//! subscribed socket, and `ws::session` writes it in seq order.

pub mod member_checks;
pub mod waiters;
pub mod writer;

use chat_api::{LeaveReason, Member, Message, Room, User};
use serde::{Deserialize, Serialize};

/// Something that happened in a room (or to a token) that connected clients must hear about.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    Message {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    MessageDeleted {
        room_id: i64,
        seq: i64,
    },
    /// A notification for one user: every socket of theirs hears it, on every node.
    Notification {
        user_id: i64,
        notification: chat_api::Notification,
    },
    /// Someone added or took back an emoji on a message.
    Reaction {
        room_id: i64,
        seq: i64,
        emoji: String,
        user: User,
        added: bool,
    },
    Typing {
        room_id: i64,
        user: User,
        /// The room's members who blocked the typist: they do not see it.
        #[serde(default)]
        blocked_by: Vec<i64>,
    },
    /// Someone was blocked: every node checks their next send (into a direct room) again.
    Blocked {
        blocked: i64,
    },
    PresenceChanged {
        room_id: i64,
        user: User,
        online: bool,
    },
    /// An API token was revoked: its sockets close with 4001 on every node.
    TokenRevoked {
        token_id: i64,
    },
    /// A session (refresh-token family) ended: its access tokens are refused and its sockets close with
    /// 4001 on every node.
    SessionEnded {
        session: String,
    },
    /// A room's settings changed (its viewer-specific fields are neutral: see `ServerFrame::RoomUpdated`).
    RoomUpdated {
        room: Room,
    },
    /// A room was deleted: its subscribers get `unsubscribed` (`room_deleted`).
    RoomDeleted {
        room_id: i64,
    },
    /// A user changed their profile: the subscribers of each of their rooms hear it, once per socket.
    UserUpdated {
        user: User,
        rooms: Vec<i64>,
    },
    /// Someone became a member of a room.
    MemberJoined {
        room_id: i64,
        member: Member,
    },
    /// A member's role or mute changed: every node checks their next send there again.
    MemberUpdated {
        room_id: i64,
        member: Member,
    },
    /// Someone stopped being a member (left, removed, banned): their sockets leave the room, and every
    /// node checks their next send there again.
    MemberLeft {
        room_id: i64,
        user: User,
        reason: LeaveReason,
    },
}

/// Where a node's events end up: the hub, which turns them into frames for its sockets.
pub trait Sink: Send + Sync {
    /// Hands one event to this node's listeners.
    fn dispatch(&self, event: &Event);
    /// Events may have been lost on the way (a broker reconnect): every listener checks what it holds
    /// against the database.
    fn resync(&self);
}
