//! Incoming hooks: Slack-compatible URLs that post into one room (CONTRACT-2 "Webhooks").

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::User;

/// `POST /rooms/{room_id}/hooks`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateIncomingHookRequest {
    /// 1-64 characters; shown with every message posted through the hook.
    pub name: String,
}

/// A new incoming hook with its URL, shown once: the secret in it is a capability to post into the room.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreatedIncomingHook {
    pub id: i64,
    pub name: String,
    /// `/api/v1/hooks/{secret}`: POST Slack's incoming-webhook JSON there. Shown only in this response.
    pub url: String,
    pub created_at: DateTime<Utc>,
}

/// An incoming hook as listed (without its URL).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IncomingHook {
    pub id: i64,
    pub name: String,
    /// Who made it: messages posted through it are theirs.
    pub created_by: User,
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_used_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct IncomingHookList {
    pub items: Vec<IncomingHook>,
}

/// What Slack-speaking tools POST to a hook's URL. Other Slack fields (`blocks`, `icon_emoji`, ...) are
/// accepted and ignored.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HookMessage {
    /// The message's text, 1-4000 characters, as any message.
    pub text: String,
    /// Shown instead of the hook's name (1-64 characters).
    #[serde(default)]
    pub username: Option<String>,
}

/// Slack's answer to a good post.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct HookAccepted {
    pub ok: bool,
}
