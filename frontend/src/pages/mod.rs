//! The app's screens, one per route.

pub mod home;
pub mod incoming_hooks;
pub mod invite;
pub mod login;
pub mod notifications;
pub mod room;
pub mod room_settings;
pub mod search;
pub mod settings;
pub mod webhooks;
