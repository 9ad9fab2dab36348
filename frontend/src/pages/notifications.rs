//! The notifications page: mentions, replies and direct messages, newest first, unread marked; a click
//! opens the room at the message. Seeing the page marks what it shows as read.

use chat_api::{Notification, NotificationKind};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api::Api;
use crate::components::message_parts::jump_to;
use crate::store::Store;
use crate::util::{full_time, shown_name};

#[component]
pub fn NotificationsPage() -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let items = RwSignal::new(Vec::<Notification>::new());
    let cursor = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let load = move |from: Option<String>| {
        leptos::task::spawn_local(async move {
            match api.notifications(from.as_deref()).await {
                Ok(page) => {
                    let newest = page.items.iter().filter(|n| !n.read).map(|n| n.id).max();
                    items.update(|all| all.extend(page.items));
                    cursor.set(page.next_cursor);
                    // Shown: read, here and on the server (the room badges follow on the next refresh).
                    if let Some(up_to) = newest
                        && api.read_notifications(up_to).await.is_ok()
                    {
                        store.notifications_read(up_to);
                    }
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    load(None);
    view! {
        <section class="settings notifications" aria-labelledby="notifications-title">
            <header class="room-header">
                <A href="/" attr:class="back" attr:aria-label="Back to the rooms">"‹"</A>
                <h2 id="notifications-title">"Notifications"</h2>
            </header>
            <p class="error" role="alert">{move || error.get()}</p>
            <Show when=move || items.with(Vec::is_empty)>
                <p class="hint">"Nothing yet: mentions, replies to you and direct messages show here."</p>
            </Show>
            <ol class="notification-list">
                {move || items.get().into_iter().map(|n| view! { <NotificationRow notification=n /> }).collect_view()}
            </ol>
            <Show when=move || cursor.with(Option::is_some)>
                <button type="button" on:click=move |_| load(cursor.get_untracked())>"Older"</button>
            </Show>
        </section>
    }
}

#[component]
fn NotificationRow(notification: Notification) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let navigate = use_navigate();
    let (room_id, seq) = (notification.room_id, notification.message.seq);
    let room = store.rooms.with_untracked(|r| r.get(&room_id).map(|room| room.name.clone())).unwrap_or_default();
    let author = shown_name(&notification.message.author).to_owned();
    let what = match notification.kind {
        NotificationKind::Mention => format!("{author} mentioned you in {room}"),
        NotificationKind::Reply => format!("{author} replied to you in {room}"),
        NotificationKind::Direct => format!("{author} wrote to you"),
    };
    let body =
        if notification.message.deleted { "message deleted".to_owned() } else { notification.message.body.clone() };
    let open = move |_| {
        navigate(&format!("/rooms/{room_id}"), Default::default());
        leptos::task::spawn_local(async move {
            // Once the room's page has its latest messages, go to this one.
            gloo_timers::future::sleep(std::time::Duration::from_millis(300)).await;
            jump_to(api, store, room_id, seq).await;
        });
    };
    view! {
        <li class="notification" class:unread=!notification.read>
            <button type="button" class="notification-open" on:click=open>
                <span class="what">{what}</span>
                <span class="excerpt">{body}</span>
                <time datetime=notification.created_at.to_rfc3339()>{full_time(&notification.created_at)}</time>
            </button>
        </li>
    }
}
