//! The notifications page: mentions, replies and direct messages, newest first, unread marked; a click
//! opens the room at the message. Seeing the page marks what it shows as read, and one that arrives
//! while it is open shows on top at once (the socket's `notification` frames, kept in the store).

use chat_api::Notification;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::use_navigate;

use crate::api::Api;
use crate::components::message_parts::jump_to;
use crate::desktop::{self, Permission};
use crate::store::Store;
use crate::util::full_time;

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
                    cursor.set(page.next_cursor);
                    show(items, api, store, page.items).await;
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    load(None);
    // Arrived over the socket (before the first page came, or while the page is open): shown as unread,
    // like the page's own, and read on the server as they are.
    Effect::new(move |_| {
        let unread: Vec<Notification> =
            store.notifications.with(|live| live.iter().filter(|n| !n.read).cloned().collect());
        if !unread.is_empty() {
            leptos::task::spawn_local(show(items, api, store, unread));
        }
    });
    view! {
        <section class="settings notifications" aria-labelledby="notifications-title">
            <header class="room-header">
                <A href="/" attr:class="back" attr:aria-label="Back to the rooms">"‹"</A>
                <h2 id="notifications-title">"Notifications"</h2>
            </header>
            <p class="error" role="alert">{move || error.get()}</p>
            <DesktopNotifications />
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

/// Shows notifications (a fetched page, or ones that came live) the list does not hold yet, newest first,
/// and reads the unread among them on the server (the room badges follow on the next refresh). The list
/// keeps each one as it was when it came: unread ones stay marked for as long as the page is open.
async fn show(items: RwSignal<Vec<Notification>>, api: Api, store: Store, more: Vec<Notification>) {
    let newest_unread = more.iter().filter(|n| !n.read).map(|n| n.id).max();
    items.update(|all| {
        for notification in more {
            if !all.iter().any(|n| n.id == notification.id) {
                all.push(notification);
            }
        }
        all.sort_by_key(|n| std::cmp::Reverse(n.id));
    });
    if let Some(up_to) = newest_unread
        && api.read_notifications(up_to).await.is_ok()
    {
        store.notifications_read(up_to);
    }
}

#[component]
fn NotificationRow(notification: Notification) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let navigate = use_navigate();
    let room_id = notification.room_id;
    // A message's notification opens the room at the message; a webhook's opens the room's settings.
    let seq = notification.message.as_ref().map(|m| m.seq);
    let what = desktop::headline(&notification, &store);
    let body = desktop::excerpt(&notification);
    let open = move |_| {
        let Some(seq) = seq else {
            navigate(&format!("/rooms/{room_id}/settings"), Default::default());
            return;
        };
        navigate(&format!("/rooms/{room_id}"), Default::default());
        leptos::task::spawn_local(jump_to(api, store, room_id, seq));
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

/// The one place that asks for desktop notifications: a button, pressed by the person (never on load).
#[component]
fn DesktopNotifications() -> impl IntoView {
    let permission = RwSignal::new(desktop::permission());
    let turn_on = move |_| {
        leptos::task::spawn_local(async move { permission.set(desktop::ask().await) });
    };
    move || {
        match permission.get() {
        Permission::Unsupported => ().into_any(),
        Permission::Ask => view! {
            <p class="desktop-notifications">
                <button type="button" on:click=turn_on>"Turn on desktop notifications"</button>
                " for mentions, replies and direct messages that arrive while this tab is hidden."
            </p>
        }
        .into_any(),
        Permission::Granted => view! {
            <p class="desktop-notifications hint">"Desktop notifications are on: they show while this tab is hidden."</p>
        }
        .into_any(),
        Permission::Denied => view! {
            <p class="desktop-notifications hint">
                "Desktop notifications are blocked for this site: allow them in the browser's site settings."
            </p>
        }
        .into_any(),
    }
    }
}
