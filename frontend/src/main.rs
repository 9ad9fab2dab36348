//! The chat SPA (Leptos, client-side rendered, built to wasm32 by trunk).
//!
//! For now a placeholder page: the real app (router, pages, the live socket) arrives in a later issue.
//! It already builds for `wasm32-unknown-unknown`, so `make test` keeps the crate compiling and linted.

use leptos::prelude::*;

fn main() {
    // Panics show up in the browser console with a message instead of "unreachable executed".
    console_error_panic_hook::set_once();
    leptos::mount::mount_to_body(App);
}

/// The whole page until the app arrives.
#[component]
fn App() -> impl IntoView {
    view! {
        <main>
            <h1>"Chat"</h1>
            <p>"Chat — the app arrives in a later issue."</p>
            <p>
                "The REST API is live: see " <a href="/docs/">"/docs/"</a> " for the reference."
            </p>
        </main>
    }
}
