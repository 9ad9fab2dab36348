//! The chat API's types, shared by the backend (which documents them with utoipa) and the SPA.
//!
//! Layout: [`auth`] (users, tokens), [`rooms`], [`messages`], [`problem`] (the error body),
//! [`ws`] (WebSocket frames).
//! Every type here is part of the contract in `CONTRACT.md`: field names are fixed; add, never rename.
//! The `openapi` feature derives `utoipa::ToSchema`, so the frontend does not compile utoipa.
//! Times are `DateTime<Utc>`, RFC 3339 on the wire (spelled out, since utoipa recognises them by name).
//! An `Option` field of a response that is always sent (as `null` when empty) carries
//! `schema(required = true)`: utoipa would otherwise leave it out of `required`, and clients would
//! type it `field?: T | null` instead of `field: T | null`.

pub mod auth;
pub mod hooks;
pub mod messages;
pub mod problem;
pub mod rooms;
pub mod webhooks;
pub mod ws;

pub use auth::*;
pub use hooks::*;
pub use messages::*;
pub use problem::*;
pub use rooms::*;
pub use webhooks::*;
pub use ws::*;
