//! The app's screens, one per route.

pub mod home;
pub mod login;
pub mod room;
pub mod settings;
