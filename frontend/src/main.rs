//! The chat SPA: Leptos, client-side rendered, built to wasm32 by trunk and served by the backend.
//!
//! `app.rs` holds the state and the router; `api.rs` the REST calls; `session.rs` the tokens;
//! `socket.rs` the one WebSocket and how it recovers; `store.rs` what the app knows; `pages/` the screens.

mod api;
mod app;
mod components;
mod desktop;
mod pages;
mod session;
mod socket;
mod store;
mod util;

fn main() {
    // Panics show up in the browser console with a message instead of "unreachable executed".
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(app::App);
}
