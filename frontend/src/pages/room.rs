//! One room: its header (name, who is online), the history, who is typing, and the composer.

use chat_api::{Role, Room, RoomKind};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_params_map;

use crate::api::Api;
use crate::app::Clock;
use crate::components::composer::Composer;
use crate::components::member_panel::MemberPanel;
use crate::components::message_list::MessageList;
use crate::socket::Socket;
use crate::store::Store;
use crate::util::{is_muted, muted_until_text};

/// How the room's page stands.
#[derive(Clone, PartialEq)]
enum Loading {
    Pending,
    Ready,
    Failed(String),
}

#[component]
pub fn RoomPage() -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let params = use_params_map();
    let room_id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())).unwrap_or(0));
    let loading = RwSignal::new(Loading::Pending);
    // Messages after this seq are new to the reader: the "new messages" divider goes above the first.
    let divider = RwSignal::new(None::<i64>);

    Effect::new(move |_| {
        let id = room_id.get();
        store.open_room.set(Some(id));
        let unread = store.rooms.with_untracked(|r| r.get(&id).map(|room| (room.unread_count, room.last_read_seq)));
        divider.set(unread.filter(|(count, _)| *count > 0).map(|(_, seq)| seq));
        loading.set(Loading::Pending);
        leptos::task::spawn_local(open_room(api, store, socket, id, loading, divider));
    });
    on_cleanup(move || store.open_room.set(None));
    // Removed, banned or deleted while open: back to the list (the notice says why).
    let navigate = leptos_router::hooks::use_navigate();
    Effect::new(move |_| {
        if store.dropped.get().is_some_and(|dropped| dropped == room_id.get_untracked()) {
            navigate("/", Default::default());
        }
    });

    let room = move || store.rooms.with(|r| r.get(&room_id.get()).cloned());
    // The member panel: open beside the chat on a wide screen, in its place on a phone.
    let show_members = RwSignal::new(false);
    let can_configure = move || {
        let named = room().is_some_and(|r| r.kind == RoomKind::Room);
        named && matches!(store.my_role(room_id.get()), Some(Role::Owner | Role::Admin))
    };
    view! {
        <section class="room" class:members-open=move || show_members.get() aria-labelledby="room-title">
            <header class="room-header">
                <A href="/" attr:class="back" attr:aria-label="Back to the rooms">"‹"</A>
                <div class="room-title">
                    <h2 id="room-title">{move || room().map(|r| r.name).unwrap_or_default()}</h2>
                    <p class="topic">{move || room().and_then(|r| r.topic)}</p>
                </div>
                <OnlineList room_id=room_id />
                <div class="room-tools">
                    <button type="button" class="members-toggle" aria-controls="members-panel"
                        aria-expanded=move || show_members.get().to_string()
                        on:click=move |_| show_members.update(|s| *s = !*s)>
                        {move || format!("Members ({})", room().map_or(0, |r| r.member_count))}
                    </button>
                    <Show when=can_configure>
                        <A href=move || format!("/rooms/{}/settings", room_id.get()) attr:class="button">"Room settings"</A>
                    </Show>
                </div>
            </header>
            <MutedBanner room_id=room_id />
            <div class="room-body">
                <div class="chat-column">
                    {move || match loading.get() {
                        Loading::Failed(why) => view! { <p class="error room-error" role="alert">{why}</p> }.into_any(),
                        Loading::Pending if !store.timeline(room_id.get()).with(|t| t.loaded) =>
                            view! { <p class="loading">"Loading messages…"</p> }.into_any(),
                        _ => view! {
                            <MessageList room_id=room_id divider=divider />
                            <TypingLine room_id=room_id />
                            <Composer room_id=room_id />
                        }.into_any(),
                    }}
                </div>
                <Show when=move || show_members.get()>
                    <div id="members-panel" class="members-panel">
                        <MemberPanel room_id=room_id />
                    </div>
                </Show>
            </div>
        </section>
    }
}

/// Makes sure the room is known (a deep link, a public room) and its latest page loaded.
async fn open_room(
    api: Api,
    store: Store,
    socket: Socket,
    id: i64,
    loading: RwSignal<Loading>,
    divider: RwSignal<Option<i64>>,
) {
    if !store.rooms.with_untracked(|r| r.contains_key(&id)) {
        match fetch_and_join(api, id).await {
            Ok(room) => {
                if room.unread_count > 0 {
                    divider.set(Some(room.last_read_seq));
                }
                store.upsert_room(room);
                socket.subscribe(id);
            }
            Err(why) => return loading.set(Loading::Failed(why)),
        }
    }
    // Who is in the room, with roles and mutes: the panel and the composer read them.
    leptos::task::spawn_local(async move {
        if let Ok(members) = api.members(id).await {
            store.set_members(id, members);
        }
    });
    if !store.timeline(id).with_untracked(|t| t.loaded) {
        match api.messages(id, None, None).await {
            Ok(page) => store.add_page(id, page.items, Some(page.has_more)),
            Err(e) => return loading.set(Loading::Failed(e.detail)),
        }
    }
    loading.set(Loading::Ready);
}

/// A room the list does not hold: a public one is joined on opening it; anything else is not found.
async fn fetch_and_join(api: Api, id: i64) -> Result<Room, String> {
    let room = api.room(id).await.map_err(|e| e.detail)?;
    api.join(room.id).await.or(Ok(room))
}

/// Tells a muted member why they cannot write, and until when.
#[component]
fn MutedBanner(room_id: Memo<i64>) -> impl IntoView {
    let store = expect_context::<Store>();
    let clock = expect_context::<Clock>();
    let until = move || {
        clock.0.track();
        store.my_membership(room_id.get()).and_then(|m| m.muted_until).filter(|t| is_muted(Some(*t)))
    };
    view! {
        <Show when=move || until().is_some()>
            <p class="room-banner" role="status">
                {move || format!("A moderator muted you: you can read but not write ({}).", muted_until_text(until()))}
            </p>
        </Show>
    }
}

#[component]
fn OnlineList(room_id: Memo<i64>) -> impl IntoView {
    let store = expect_context::<Store>();
    let online = move || store.online.with(|o| o.get(&room_id.get()).cloned().unwrap_or_default());
    view! {
        <div class="online" aria-label="Online now">
            <span class="online-count">{move || format!("{} online", online().len())}</span>
            <span class="online-names">
                {move || online().iter().map(|u| u.name().to_owned()).collect::<Vec<_>>().join(", ")}
            </span>
        </div>
    }
}

#[component]
fn TypingLine(room_id: Memo<i64>) -> impl IntoView {
    let store = expect_context::<Store>();
    let clock = expect_context::<Clock>();
    let text = move || {
        clock.0.track();
        let names: Vec<String> = store
            .typing
            .with(|t| t.get(&room_id.get()).map(|l| l.iter().map(|ty| ty.user.name().to_owned()).collect()))
            .unwrap_or_default();
        match names.len() {
            0 => String::new(),
            1 => format!("{} is typing…", names[0]),
            2 => format!("{} and {} are typing…", names[0], names[1]),
            _ => "Several people are typing…".into(),
        }
    };
    view! { <p class="typing" aria-live="polite">{text}</p> }
}
