//! Messages: what is sent, stored and paged.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

use crate::User;

/// A message. `seq` numbers a room's messages 1, 2, 3, ... with no gaps, in the order every
/// client sees them; a deleted message keeps its seq with an empty body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Message {
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub author: User,
    /// Plain text (render it as text, never as HTML); empty when deleted.
    pub body: String,
    /// The sender's own id for the message, used to deduplicate retries.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub client_id: Option<String>,
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub edited_at: Option<DateTime<Utc>>,
    pub deleted: bool,
    /// The message this one answers (null: none).
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub reply_to: Option<ReplyTo>,
    /// Ordered by first use.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// The ids of the members mentioned (`@username`, or everyone for `@room` by the owner or an admin).
    #[serde(default)]
    pub mentions: Vec<i64>,
    /// The incoming hook it was posted through (its name, or the name the poster gave); null for messages
    /// written by people and bots with API tokens.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub via: Option<String>,
}

/// What a reply shows of the message it answers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReplyTo {
    pub seq: i64,
    pub author: User,
    /// The first 200 characters of its current body; empty once it is deleted.
    pub excerpt: String,
}

/// One emoji on a message and who chose it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Reaction {
    pub emoji: String,
    pub count: i64,
    pub user_ids: Vec<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SendMessageRequest {
    /// 1-4000 characters, not only white space.
    #[cfg_attr(feature = "openapi", schema(example = "Deploy finished", min_length = 1, max_length = 4000))]
    pub body: String,
    /// Up to 64 characters. A retry with the same author, room and `client_id` returns the first
    /// message (status 200) and creates none.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(max_length = 64))]
    pub client_id: Option<String>,
    /// The seq of a message of the same room that this one answers.
    #[serde(default)]
    pub reply_to: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct EditMessageRequest {
    /// 1-4000 characters, not only white space.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 4000))]
    pub body: String,
}

/// A page of history, in ascending `seq`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct MessagePage {
    pub items: Vec<Message>,
    /// More messages lie beyond this page in the direction paged: older ones for the latest page
    /// or `before`, newer ones for `after`.
    pub has_more: bool,
}

/// Why a notification was made.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// The message mentions the user (`@username`, or `@room` by a moderator).
    Mention,
    /// The message answers one of the user's.
    Reply,
    /// A message in a direct room of the user's.
    Direct,
    /// A webhook of a room the user owns was disabled after failing for 3 days (`webhook` says which;
    /// `message` is null).
    #[serde(rename = "webhook_disabled")]
    WebhookDisabled,
}

/// The webhook a `webhook_disabled` notification is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotifiedWebhook {
    pub id: i64,
    pub url: String,
}

/// Something the user should hear of: a message, or (`webhook_disabled`) a webhook of their room.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Notification {
    pub id: i64,
    pub kind: NotificationKind,
    pub room_id: i64,
    /// The message as it now is; null only for `webhook_disabled`.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: Option<Message>,
    /// The webhook, for `webhook_disabled`; null otherwise.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub webhook: Option<NotifiedWebhook>,
    pub read: bool,
    pub created_at: DateTime<Utc>,
}

/// `GET /notifications`: newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct NotificationPage {
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}

/// `POST /notifications/read`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ReadNotificationsRequest {
    /// Every notification of the caller's with this id or a lower one is read.
    pub up_to_id: i64,
}

/// One message found by `GET /search`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchHit {
    pub message: Message,
    /// `[start, end)` character offsets into `message.body` of each matched word (never markup).
    pub highlights: Vec<[i64; 2]>,
}

/// `GET /search`: newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SearchPage {
    pub items: Vec<SearchHit>,
    /// Pass as `cursor` for the next (older) page; null on the last one.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub next_cursor: Option<String>,
}
