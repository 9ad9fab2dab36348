//! The logged-in layout: the connection banner, the room list beside the chosen room (on a phone, one
//! or the other).

use leptos::prelude::*;
use leptos_router::components::{Outlet, Redirect};

use crate::components::banner::ConnectionBanner;
use crate::components::room_list::RoomList;
use crate::session::Session;
use crate::store::Store;

#[component]
pub fn Shell() -> impl IntoView {
    let session = expect_context::<Session>();
    // On a phone the list and the page beside it take turns: anything but the list's own route is a page.
    let pathname = leptos_router::hooks::use_location().pathname;
    let page_open = move || pathname.with(|path| path != "/");
    search_shortcut();
    // Signed out on a deep link (an invite, a room): log in first, then come back to it.
    let to_login = move || {
        let here = pathname.get_untracked();
        let path = if here == "/" {
            "/login".to_owned()
        } else {
            format!("/login?next={}", js_sys::encode_uri_component(&here))
        };
        view! { <Redirect path=path /> }
    };
    view! {
        <Show when=move || session.is_logged_in() fallback=to_login>
            <div class="shell" class:room-open=page_open>
                <ConnectionBanner />
                <RoomList />
                <main class="chat-pane">
                    <Outlet />
                </main>
            </div>
        </Show>
    }
}

/// Ctrl+K anywhere, or `/` outside a text field, opens search (narrowed to the open room, if any).
fn search_shortcut() {
    let store = expect_context::<Store>();
    let navigate = leptos_router::hooks::use_navigate();
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        let typing = ev
            .target()
            .and_then(|t| wasm_bindgen::JsCast::dyn_into::<web_sys::Element>(t).ok())
            .is_some_and(|el| matches!(el.tag_name().as_str(), "INPUT" | "TEXTAREA" | "SELECT"));
        let wanted =
            (ev.ctrl_key() || ev.meta_key()) && ev.key().eq_ignore_ascii_case("k") || ev.key() == "/" && !typing;
        if !wanted {
            return;
        }
        ev.prevent_default();
        let path = match store.open_room.get_untracked() {
            Some(id) => format!("/search?room={id}"),
            None => "/search".to_owned(),
        };
        navigate(&path, Default::default());
    });
    on_cleanup(move || handle.remove());
}

/// What the server did to the user (removed or banned from a room, a room deleted), until dismissed. At
/// the top of the room list: where the user lands when the room they had open is taken from them.
#[component]
pub fn Notice() -> impl IntoView {
    let store = expect_context::<Store>();
    view! {
        <Show when=move || store.notice.with(Option::is_some)>
            <p class="notice" role="alert">
                <span>{move || store.notice.get()}</span>
                <button type="button" class="link" on:click=move |_| store.notice.set(None)>"Dismiss"</button>
            </p>
        </Show>
    }
}

/// The right-hand side before a room is chosen.
#[component]
pub fn Welcome() -> impl IntoView {
    let store = expect_context::<Store>();
    store.open_room.set(None);
    view! {
        <section class="welcome">
            <h2>"Pick a room"</h2>
            <p>"Choose a room on the left, create one, or start a direct chat."</p>
        </section>
    }
}
