//! The app's top: the shared state (session, API, store, socket) as context, the router, and what happens
//! when the user logs in or out.

use gloo_timers::callback::Interval;
use leptos::prelude::*;
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::path;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;

use crate::api::Api;
use crate::pages::home::{Shell, Welcome};
use crate::pages::invite::InvitePage;
use crate::pages::login::LoginPage;
use crate::pages::notifications::NotificationsPage;
use crate::pages::room::RoomPage;
use crate::pages::room_settings::RoomSettingsPage;
use crate::pages::search::SearchPage;
use crate::pages::settings::SettingsPage;
use crate::session::{STORAGE_KEY, Session};
use crate::socket::Socket;
use crate::store::Store;
use crate::util::{now_ms, page_visible};

/// The time, updated every second: countdowns and typing indicators read it.
#[derive(Clone, Copy)]
pub struct Clock(pub RwSignal<f64>);

/// How often the room list is fetched again while the page is visible: it is how a new direct chat or an
/// invitation to a private room shows up (the socket carries messages of rooms already joined).
const ROOMS_REFRESH_MS: f64 = 30_000.0;

#[component]
pub fn App() -> impl IntoView {
    let session = Session::load();
    let api = Api::new(session);
    let store = Store::new();
    let socket = Socket::new(store, api, session);
    let clock = Clock(RwSignal::new(now_ms()));
    provide_context(session);
    provide_context(api);
    provide_context(store);
    provide_context(socket);
    provide_context(clock);

    follow_the_user(session, store, socket, api);
    show_unread_in_title(store);
    follow_other_tabs(session);
    start_ticking(store, socket, api, clock);

    view! {
        <Router>
            <Routes fallback=|| view! { <p class="not-found">"Nothing here. " <a href="/">"Back to the chats"</a></p> }>
                <Route path=path!("/login") view=LoginPage />
                <ParentRoute path=path!("") view=Shell>
                    <Route path=path!("") view=Welcome />
                    <Route path=path!("rooms/:id") view=RoomPage />
                    <Route path=path!("rooms/:id/settings") view=RoomSettingsPage />
                    <Route path=path!("invite/:code") view=InvitePage />
                    <Route path=path!("settings") view=SettingsPage />
                    <Route path=path!("notifications") view=NotificationsPage />
                    <Route path=path!("search") view=SearchPage />
                </ParentRoute>
            </Routes>
        </Router>
    }
}

/// On login, logout, or a switch of user in another tab: start from a clean store and (re)connect.
fn follow_the_user(session: Session, store: Store, socket: Socket, api: Api) {
    Effect::new(move |previous: Option<Option<i64>>| {
        let user = session.user();
        let id = user.as_ref().map(|u| u.id);
        if previous == Some(id) {
            return id;
        }
        socket.stop();
        store.reset(user);
        if id.is_some() {
            leptos::task::spawn_local(async move {
                // Rooms first, so the socket subscribes to all of them with the right `since`.
                let added_before = store.rooms_added();
                if let Ok(rooms) = api.joined_rooms().await {
                    store.set_rooms(rooms, added_before);
                }
                socket.start();
            });
        }
        id
    });
}

/// The tab's title counts the unread messages ("(3) Chat"), so a background tab shows there is news.
fn show_unread_in_title(store: Store) {
    Effect::new(move |_| {
        let unread: i64 = store.rooms.with(|r| r.values().map(|room| room.unread_count).sum());
        let title = if unread > 0 { format!("({unread}) Chat") } else { "Chat".to_owned() };
        if let Some(document) = web_sys::window().and_then(|w| w.document()) {
            document.set_title(&title);
        }
    });
}

/// Another tab logged in, refreshed or logged out: this one follows.
fn follow_other_tabs(session: Session) {
    let Some(window) = web_sys::window() else { return };
    let on_storage = Closure::<dyn FnMut(web_sys::StorageEvent)>::new(move |ev: web_sys::StorageEvent| {
        if ev.key().as_deref() == Some(STORAGE_KEY) {
            session.adopt_stored();
        }
    });
    let _ = window.add_event_listener_with_callback("storage", on_storage.as_ref().unchecked_ref());
    on_storage.forget(); // for the page's lifetime
}

/// Once a second: the clock, expired typing indicators, overdue acks; every 30 s the room list.
fn start_ticking(store: Store, socket: Socket, api: Api, clock: Clock) {
    let mut last_rooms_refresh = now_ms();
    let interval = Interval::new(1_000, move || {
        let now = now_ms();
        clock.0.set(now);
        store.expire_typing();
        socket.tick();
        if socket.is_connected() && page_visible() && now - last_rooms_refresh >= ROOMS_REFRESH_MS {
            last_rooms_refresh = now;
            leptos::task::spawn_local(refresh_rooms(store, socket, api));
        }
    });
    interval.forget(); // for the page's lifetime
}

/// Fetches the joined rooms and subscribes to any this client did not know.
pub async fn refresh_rooms(store: Store, socket: Socket, api: Api) {
    let added_before = store.rooms_added();
    let Ok(rooms) = api.joined_rooms().await else { return };
    let new: Vec<i64> =
        store.rooms.with_untracked(|known| rooms.iter().map(|r| r.id).filter(|id| !known.contains_key(id)).collect());
    store.set_rooms(rooms, added_before);
    for room_id in new {
        socket.subscribe(room_id);
    }
}
