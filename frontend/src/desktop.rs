//! Desktop notifications (the browser's Notification API): a mention, a reply or a direct message that
//! arrives while the tab is hidden shows one, and clicking it opens the room. Permission is asked only when
//! the person presses the button for it (never on page load: browsers penalise that, and people hate it).

use chat_api::{Notification, NotificationKind};
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::prelude::*;
use web_sys::{NotificationOptions, NotificationPermission};

use crate::store::Store;
use crate::util::{page_visible, shown_name};

/// Characters of the message shown in the notification.
const EXCERPT_CHARS: usize = 140;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// This browser has no Notification API (or not in this context, e.g. plain http on a LAN address).
    Unsupported,
    /// Not asked yet.
    Ask,
    Granted,
    Denied,
}

pub fn permission() -> Permission {
    let supported = web_sys::window()
        .is_some_and(|w| js_sys::Reflect::has(&w, &JsValue::from_str("Notification")).unwrap_or(false));
    if !supported {
        return Permission::Unsupported;
    }
    match web_sys::Notification::permission() {
        NotificationPermission::Granted => Permission::Granted,
        NotificationPermission::Denied => Permission::Denied,
        _ => Permission::Ask,
    }
}

/// Asks the browser (it shows its own prompt); the answer.
pub async fn ask() -> Permission {
    if permission() != Permission::Ask {
        return permission();
    }
    if let Ok(promise) = web_sys::Notification::request_permission() {
        let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
    }
    permission()
}

/// What a notification says, here and on the notifications page: "ann mentioned you in design".
pub fn headline(notification: &Notification, store: &Store) -> String {
    let room =
        store.rooms.with_untracked(|r| r.get(&notification.room_id).map(|room| room.name.clone())).unwrap_or_default();
    let author = notification.message.as_ref().map(|m| shown_name(&m.author)).unwrap_or_default();
    match notification.kind {
        NotificationKind::Mention => format!("{author} mentioned you in {room}"),
        NotificationKind::Reply => format!("{author} replied to you in {room}"),
        NotificationKind::Direct => format!("{author} wrote to you"),
        NotificationKind::WebhookDisabled => format!("A webhook of {room} was turned off: it kept failing"),
    }
}

/// What a notification shows under its headline: the message's text, or the webhook's URL.
pub fn excerpt(notification: &Notification) -> String {
    match (&notification.message, &notification.webhook) {
        (Some(m), _) if m.deleted => "message deleted".to_owned(),
        (Some(m), _) => m.body.clone(),
        (None, Some(w)) => format!("{} failed for 3 days; turn it on again in the room's settings.", w.url),
        (None, None) => String::new(),
    }
}

/// Shows `notification` on the desktop if the tab is hidden and the person allowed it.
pub fn show(notification: &Notification, store: &Store) {
    if page_visible() || permission() != Permission::Granted {
        return;
    }
    let options = NotificationOptions::new();
    let body: String = excerpt(notification).chars().take(EXCERPT_CHARS).collect();
    options.set_body(&body);
    // One per notification, even if the frame comes twice (resume, two tabs).
    options.set_tag(&format!("chat-notification-{}", notification.id));
    let Ok(shown) = web_sys::Notification::new_with_options(&headline(notification, store), &options) else {
        return;
    };
    let path = format!("/rooms/{}", notification.room_id);
    let on_click = Closure::once_into_js(move || {
        open_in_app(&path);
    });
    shown.set_onclick(Some(on_click.unchecked_ref()));
}

/// Brings the tab forward and routes to `path` without reloading the app (the router follows `popstate`).
fn open_in_app(path: &str) {
    let Some(window) = web_sys::window() else { return };
    let _ = window.focus();
    if let Ok(history) = window.history() {
        let _ = history.push_state_with_url(&JsValue::NULL, "", Some(path));
        if let Ok(event) = web_sys::Event::new("popstate") {
            let _ = window.dispatch_event(&event);
        }
    }
}
