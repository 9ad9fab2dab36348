//! The sidebar: who is logged in, the joined rooms by latest activity (preview, unread badge), and the
//! ways to get into a room: create one, start a direct chat, browse and join public rooms.

use chat_api::{CreateRoomRequest, Room, RoomKind, Visibility};
use leptos::prelude::*;
use leptos_router::NavigateOptions;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api::{Api, ApiError};
use crate::components::people_search::PeopleSearch;
use crate::session::Session;
use crate::socket::Socket;
use crate::store::Store;
use crate::util::shown_name;

/// Which form the sidebar shows under its buttons.
#[derive(Clone, Copy, PartialEq)]
enum Panel {
    None,
    NewRoom,
    Direct,
    Browse,
}

#[component]
pub fn RoomList() -> impl IntoView {
    let session = expect_context::<Session>();
    let store = expect_context::<Store>();
    let socket = expect_context::<Socket>();
    let panel = RwSignal::new(Panel::None);
    let toggle = move |p: Panel| panel.update(|current| *current = if *current == p { Panel::None } else { p });

    let sorted = move || {
        let mut rooms: Vec<Room> = store.rooms.with(|r| r.values().cloned().collect());
        rooms.sort_by(|a, b| activity(b).cmp(&activity(a)).then(b.id.cmp(&a.id)));
        rooms
    };
    let unread_notifications = move || store.rooms.with(|r| r.values().map(|room| room.mention_count).sum::<i64>());
    let log_out = move |_| {
        socket.stop();
        leptos::task::spawn_local(async move { session.log_out().await });
    };

    view! {
        <nav class="sidebar" aria-label="Rooms">
            <crate::pages::home::Notice />
            <header class="me">
                <span class="me-name">{move || session.user().map(|u| u.name().to_owned())}</span>
                <A href=move || match store.open_room.get() {
                    Some(id) => format!("/search?room={id}"),
                    None => "/search".to_owned(),
                } attr:class="link" attr:aria-keyshortcuts="Control+K /">"Search"</A>
                <A href="/notifications" attr:class="link notifications-link">
                    "Notifications"
                    <Show when=move || { unread_notifications() > 0 }>
                        <span class="badge mention" aria-label=move || format!("{} unread", unread_notifications())>
                            {unread_notifications}
                        </span>
                    </Show>
                </A>
                <A href="/settings" attr:class="link">"Settings"</A>
                <button type="button" class="link" on:click=log_out>"Log out"</button>
            </header>
            <div class="actions" role="group" aria-label="Room actions">
                <button type="button" aria-expanded=move || (panel.get() == Panel::NewRoom).to_string()
                    on:click=move |_| toggle(Panel::NewRoom)>"New room"</button>
                <button type="button" aria-expanded=move || (panel.get() == Panel::Direct).to_string()
                    on:click=move |_| toggle(Panel::Direct)>"Direct chat"</button>
                <button type="button" aria-expanded=move || (panel.get() == Panel::Browse).to_string()
                    on:click=move |_| toggle(Panel::Browse)>"Browse"</button>
            </div>
            {move || match panel.get() {
                Panel::NewRoom => view! { <NewRoomForm done=move || panel.set(Panel::None) /> }.into_any(),
                Panel::Direct => view! { <DirectForm done=move || panel.set(Panel::None) /> }.into_any(),
                Panel::Browse => view! { <BrowsePublic done=move || panel.set(Panel::None) /> }.into_any(),
                Panel::None => ().into_any(),
            }}
            <ul class="rooms">
                <For each=sorted key=|r| (r.id, r.unread_count, r.mention_count, r.last_message.as_ref().map(|m| (m.seq, m.deleted, m.edited_at)), r.name.clone())
                    let:room>
                    <RoomItem room=room />
                </For>
            </ul>
            <Show when=move || store.rooms_loaded.get() && store.rooms.with(|r| r.is_empty())>
                <p class="empty">"No rooms yet: create one or browse the public rooms."</p>
            </Show>
        </nav>
    }
}

/// Latest activity: the last message's time, else the room's creation.
fn activity(room: &Room) -> chrono::DateTime<chrono::Utc> {
    room.last_message.as_ref().map_or(room.created_at, |m| m.created_at)
}

#[component]
fn RoomItem(room: Room) -> impl IntoView {
    let store = expect_context::<Store>();
    let id = room.id;
    let active = move || store.open_room.get() == Some(id);
    let preview = room.last_message.as_ref().map(|m| {
        let text = if m.deleted { "message deleted".to_string() } else { m.body.chars().take(80).collect() };
        format!("{}: {}", shown_name(&m.author), text)
    });
    let unread = room.unread_count;
    let mentions = room.mention_count;
    let icon = match (room.kind, room.visibility) {
        (RoomKind::Direct, _) => "@",
        (_, Visibility::Private) => "🔒",
        _ => "#",
    };
    view! {
        <li class="room-item" class:active=active class:unread={unread > 0} data-room-id=id.to_string()>
            <A href=format!("/rooms/{id}") attr:aria-current=move || active().then_some("page")>
                <span class="room-name"><span class="room-icon" aria-hidden="true">{icon}</span>{room.name.clone()}</span>
                <span class="preview">{preview.unwrap_or_else(|| "No messages yet".into())}</span>
                <Show when=move || { mentions > 0 }>
                    <span class="badge mention" aria-label=format!("{mentions} mentions or replies")>{format!("@{mentions}")}</span>
                </Show>
                <Show when=move || { unread > 0 }>
                    <span class="badge" aria-label=format!("{unread} unread")>{unread}</span>
                </Show>
            </A>
        </li>
    }
}

/// Runs a request that yields a room (create, start a direct chat, join); on success remembers the room,
/// subscribes to it, closes the panel and opens the room; on failure shows why.
fn enter_room(
    request: impl Future<Output = Result<Room, ApiError>> + 'static,
    (store, socket): (Store, Socket),
    error: RwSignal<Option<String>>,
    done: impl Fn() + 'static,
    navigate: impl Fn(&str, NavigateOptions) + 'static,
) {
    leptos::task::spawn_local(async move {
        match request.await {
            Ok(room) => {
                let id = room.id;
                store.upsert_room(room);
                socket.subscribe(id);
                done();
                navigate(&format!("/rooms/{id}"), Default::default());
            }
            Err(e) => error.set(Some(e.detail)),
        }
    });
}

#[component]
fn NewRoomForm(done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let private = RwSignal::new(false);
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let visibility = Some(if private.get_untracked() { Visibility::Private } else { Visibility::Public });
        let req = CreateRoomRequest { name: name.get_untracked().trim().to_string(), topic: None, visibility };
        enter_room(async move { api.create_room(&req).await }, (store, socket), error, done, navigate.clone());
    };
    view! {
        <form class="panel" on:submit=submit>
            <label for="new-room-name">"Room name"</label>
            <input id="new-room-name" required maxlength="80" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev)) />
            <label class="check">
                <input type="checkbox" prop:checked=move || private.get()
                    on:change=move |ev| private.set(event_target_checked(&ev)) />
                "Private (members only)"
            </label>
            <p class="error" role="alert">{move || error.get()}</p>
            <button type="submit" class="primary">"Create"</button>
        </form>
    }
}

/// A direct chat: find the person by name as you type.
#[component]
fn DirectForm(done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    // Kept in the arena, so that `start` is `Copy` as the search box wants.
    let navigate = StoredValue::new_local(use_navigate());
    let error = RwSignal::new(None::<String>);
    let start = move |who: String| {
        enter_room(async move { api.direct(&who).await }, (store, socket), error, done, navigate.get_value());
    };
    view! {
        <div class="panel">
            <PeopleSearch label="Person" action="Start chat" on_pick=start />
            <p class="error" role="alert">{move || error.get()}</p>
        </div>
    }
}

#[component]
fn BrowsePublic(done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let navigate = use_navigate();
    let rooms = LocalResource::new(move || async move { api.public_rooms().await });
    let error = RwSignal::new(None::<String>);
    let join = move |id: i64| {
        enter_room(async move { api.join(id).await }, (store, socket), error, done, navigate.clone());
    };
    view! {
        <section class="panel" aria-label="Public rooms">
            <p class="error" role="alert">{move || error.get()}</p>
            <Suspense fallback=|| view! { <p>"Loading…"</p> }>
                {move || rooms.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p>"No public rooms yet."</p> }.into_any(),
                    Ok(list) => {
                        let join = join.clone();
                        view! {
                            <ul class="browse">
                                {list.into_iter().map(|room| {
                                    let id = room.id;
                                    let joined = store.rooms.with_untracked(|r| r.contains_key(&id));
                                    let join = join.clone();
                                    view! {
                                        <li>
                                            <span>{format!("# {}", room.name)}</span>
                                            <span class="hint">{format!("{} members", room.member_count)}</span>
                                            <button type="button" on:click=move |_| join(id)>
                                                {if joined { "Open" } else { "Join" }}
                                            </button>
                                        </li>
                                    }
                                }).collect_view()}
                            </ul>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
