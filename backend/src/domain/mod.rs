//! The rules of the service, as plain functions over a database connection: no actix types here,
//! so the same function serves REST and the WebSocket, and each can be read on its own.

pub mod api_tokens;
pub mod blocks;
pub mod credentials;
pub mod incoming_hooks;
pub mod invites;
pub mod mentions;
pub mod messages;
pub mod moderation;
pub mod notifications;
pub mod reactions;
pub mod rooms;
pub mod search;
pub mod sessions;
pub mod text;
pub mod users;
pub mod webhooks;
