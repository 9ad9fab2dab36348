//! Outgoing webhooks: a room's events POSTed to a URL, signed the Standard Webhooks way
//! (CONTRACT-2 "Webhooks").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::User;

/// What a webhook can be sent. The `type` of each event POSTed, and what its `data` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum WebhookEventType {
    /// A new message; `data` is the `Message`.
    #[serde(rename = "message.created")]
    MessageCreated,
    /// A message was edited; `data` is the `Message` as it now is.
    #[serde(rename = "message.updated")]
    MessageUpdated,
    /// A message was deleted; `data` is `{"room_id", "seq"}`.
    #[serde(rename = "message.deleted")]
    MessageDeleted,
    /// `data` is `{"room_id", "seq", "emoji", "user"}`.
    #[serde(rename = "reaction.added")]
    ReactionAdded,
    /// `data` is `{"room_id", "seq", "emoji", "user"}`.
    #[serde(rename = "reaction.removed")]
    ReactionRemoved,
    /// `data` is the `Member`.
    #[serde(rename = "member.joined")]
    MemberJoined,
    /// `data` is `{"user", "reason"}`.
    #[serde(rename = "member.left")]
    MemberLeft,
}

impl WebhookEventType {
    pub const ALL: [WebhookEventType; 7] = [
        WebhookEventType::MessageCreated,
        WebhookEventType::MessageUpdated,
        WebhookEventType::MessageDeleted,
        WebhookEventType::ReactionAdded,
        WebhookEventType::ReactionRemoved,
        WebhookEventType::MemberJoined,
        WebhookEventType::MemberLeft,
    ];

    /// The name on the wire (`message.created`).
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookEventType::MessageCreated => "message.created",
            WebhookEventType::MessageUpdated => "message.updated",
            WebhookEventType::MessageDeleted => "message.deleted",
            WebhookEventType::ReactionAdded => "reaction.added",
            WebhookEventType::ReactionRemoved => "reaction.removed",
            WebhookEventType::MemberJoined => "member.joined",
            WebhookEventType::MemberLeft => "member.left",
        }
    }

    pub fn parse(name: &str) -> Option<WebhookEventType> {
        WebhookEventType::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

/// `POST /rooms/{room_id}/webhooks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateWebhookRequest {
    /// `https://...`, or `http://` to a host listed in the server's `WEBHOOK_ALLOW_HOSTS`; at most 2048
    /// characters. A host that resolves to a loopback, private or link-local address is refused unless listed.
    pub url: String,
    /// At least one.
    pub events: Vec<WebhookEventType>,
}

/// `PATCH /rooms/{room_id}/webhooks/{webhook_id}`: only what is given changes. Enabling a webhook again
/// retries what is queued for it at once.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UpdateWebhookRequest {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub events: Option<Vec<WebhookEventType>>,
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// A webhook as listed (without its secret).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Webhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    pub created_at: DateTime<Utc>,
    /// `false` when turned off, or after 3 days of failed deliveries.
    pub enabled: bool,
    /// Who made it.
    pub created_by: User,
    /// Events waiting to be delivered.
    pub pending: i64,
}

/// A new webhook with its signing secret, shown once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreatedWebhook {
    pub id: i64,
    pub url: String,
    pub events: Vec<WebhookEventType>,
    /// `whsec_` and a base64 key: verify each delivery's `webhook-signature` with it (any Standard
    /// Webhooks library does). Shown only in this response.
    pub secret: String,
    pub created_at: DateTime<Utc>,
    pub enabled: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookList {
    pub items: Vec<Webhook>,
}

/// One attempt to deliver an event.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookDelivery {
    pub id: i64,
    /// The `webhook-id` header: the same on every attempt of one event.
    pub event_id: String,
    pub event_type: WebhookEventType,
    /// 1 for the first attempt.
    pub attempt: i32,
    /// The receiver's HTTP status; null when there was no answer.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    /// Why it failed (no answer in 10 s, refused address, ...); null when the receiver answered.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error: Option<String>,
    pub attempted_at: DateTime<Utc>,
}

/// `GET /rooms/{room_id}/webhooks/{webhook_id}/deliveries`: the last 100 attempts, newest first.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct WebhookDeliveryList {
    pub items: Vec<WebhookDelivery>,
}
