//! The one WebSocket that carries every room, and how it survives anything.
//!
//! - **Auth** by a single-use ticket (`POST /ws/ticket`): a browser cannot set headers on a WebSocket, and
//!   no long-lived secret belongs in a URL.
//! - **Reconnect** with full-jitter exponential backoff: a random delay in `[0, min(20 s, 500 ms * 2^n))`,
//!   `n` reset once a connection has lasted 10 s. At once when the browser comes back `online` or a hidden
//!   tab becomes visible. Close 4001 (token expired or revoked): refresh the session, then reconnect.
//!   Close 1012 (the server is draining): reconnect after a random delay, so a whole room of clients does
//!   not arrive at the next node in the same instant.
//! - **Recover**: on every `ready`, subscribe to every joined room with `since` = the last seq held, so the
//!   server replays exactly what was missed; `truncated` (over 1000 missed) pages the gap over REST. The
//!   store keys messages by `(room, seq)`, so nothing is shown twice.
//! - **Outbox**: every message not yet acked is resent with its `client_id` after each `ready`; the server
//!   acks a resend with the message it stored the first time.

use chat_api::{ClientFrame, ServerFrame, UnsubscribeReason, close};
use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen::closure::Closure;
use web_sys::{CloseEvent, MessageEvent, WebSocket};

use crate::api::Api;
use crate::desktop;
use crate::session::Session;
use crate::store::{Pending, Store};
use crate::util::{browser_online, now_ms, random_between};

/// The first backoff ceiling and the last.
const BACKOFF_BASE_MS: f64 = 500.0;
const BACKOFF_MAX_MS: f64 = 20_000.0;
/// A connection that lasted this long resets the backoff.
const STABLE_AFTER_MS: f64 = 10_000.0;
/// After a 1012 (server draining): reconnect within this window.
const DRAIN_RECONNECT_MS: (f64, f64) = (250.0, 3_000.0);
/// A sent message with no ack after this long is sent again (same `client_id`).
const ACK_TIMEOUT_MS: f64 = 10_000.0;
/// After this many unanswered or refused sends a message waits for the user's "retry".
const MAX_SEND_FAILURES: u32 = 3;
/// Typing frames are sent at most this often (others show the indicator for 5 s).
const TYPING_EVERY_MS: f64 = 3_000.0;
/// After a 4001, an access token valid this much longer is used as it is, without a refresh.
const FRESH_ENOUGH_MS: f64 = 10_000.0;
/// Close code a client uses for its own deliberate close (logout).
const CLOSE_NORMAL: u16 = 1000;
const CLOSE_RESTARTING: u16 = 1012;

/// What the connection banner shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ConnState {
    /// Not started (logged out).
    Idle,
    Connecting,
    Connected,
    /// Waiting to reconnect at this time (ms since the epoch).
    Waiting {
        retry_at_ms: f64,
    },
    /// The browser says it has no network; reconnects as soon as it has.
    Offline,
}

struct Inner {
    ws: Option<WebSocket>,
    /// Bumped on every new socket and on stop: events of an older socket are ignored.
    generation: u32,
    attempt: u32,
    connected_at: Option<f64>,
    retry_timer: Option<Timeout>,
    last_typing_ms: std::collections::HashMap<i64, f64>,
    /// The socket's event handlers, kept alive as long as the socket.
    handlers: Vec<Box<dyn std::any::Any>>,
    running: bool,
}

/// The socket handle; `Copy`, provided as context.
#[derive(Clone, Copy)]
pub struct Socket {
    pub state: RwSignal<ConnState>,
    /// Connections lost so far, and the close code of the last one (shown nowhere; tests and curious
    /// people read the banner's `data-reconnects` and `data-last-close`).
    pub reconnects: RwSignal<u32>,
    pub last_close: RwSignal<Option<u16>>,
    inner: StoredValue<Inner, LocalStorage>,
    store: Store,
    api: Api,
    session: Session,
}

impl Socket {
    pub fn new(store: Store, api: Api, session: Session) -> Self {
        let socket = Socket {
            state: RwSignal::new(ConnState::Idle),
            reconnects: RwSignal::new(0),
            last_close: RwSignal::new(None),
            inner: StoredValue::new_local(Inner {
                ws: None,
                generation: 0,
                attempt: 0,
                connected_at: None,
                retry_timer: None,
                last_typing_ms: Default::default(),
                handlers: Vec::new(),
                running: false,
            }),
            store,
            api,
            session,
        };
        socket.watch_browser();
        socket
    }

    /// Connects (after login).
    pub fn start(&self) {
        self.inner.update_value(|i| {
            i.running = true;
            i.attempt = 0;
        });
        self.connect_now();
    }

    /// Closes for good (logout).
    pub fn stop(&self) {
        self.inner.update_value(|i| {
            i.running = false;
            i.generation += 1;
            i.retry_timer = None;
            if let Some(ws) = i.ws.take() {
                // Detached first: the handlers are dropped below, and the browser may still fire this
                // socket's events (its close) afterwards, which would call a dropped closure.
                ws.set_onmessage(None);
                ws.set_onclose(None);
                let _ = ws.close_with_code(CLOSE_NORMAL);
            }
            i.handlers.clear();
        });
        self.state.set(ConnState::Idle);
    }

    fn running(&self) -> bool {
        self.inner.with_value(|i| i.running)
    }

    pub fn is_connected(&self) -> bool {
        self.state.get_untracked() == ConnState::Connected
    }

    /// Reconnects immediately unless connected or connecting (the "retry now" button, `online`, visible).
    pub fn connect_now(&self) {
        if !self.running() || matches!(self.state.get_untracked(), ConnState::Connected | ConnState::Connecting) {
            return;
        }
        self.inner.update_value(|i| i.retry_timer = None);
        let socket = *self;
        leptos::task::spawn_local(async move { socket.open().await });
    }

    /// Fetches a ticket and opens the socket; any failure schedules the next attempt.
    async fn open(self) {
        self.state.set(ConnState::Connecting);
        let generation = self.inner.with_value(|i| i.generation) + 1;
        self.inner.update_value(|i| i.generation = generation);
        let ticket = match self.api.ws_ticket().await {
            Ok(t) => t.ticket,
            Err(e) if e.is_unauthorized() => return self.stop(), // the session ended: the app shows the login
            Err(_) => return self.schedule_retry(None),
        };
        if self.inner.with_value(|i| i.generation) != generation || !self.running() {
            return; // stopped, or superseded while the ticket was on its way
        }
        match WebSocket::new(&ws_url(&ticket)) {
            Ok(ws) => self.attach(ws, generation),
            Err(_) => self.schedule_retry(None),
        }
    }

    fn attach(&self, ws: WebSocket, generation: u32) {
        let socket = *self;
        let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |ev: MessageEvent| {
            if socket.inner.with_value(|i| i.generation) != generation {
                return;
            }
            if let Some(text) = ev.data().as_string()
                && let Ok(frame) = serde_json::from_str::<ServerFrame>(&text)
            {
                socket.on_frame(frame);
            }
        });
        let on_close = Closure::<dyn FnMut(CloseEvent)>::new(move |ev: CloseEvent| {
            if socket.inner.with_value(|i| i.generation) == generation {
                socket.on_close(ev.code());
            }
        });
        ws.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
        ws.set_onclose(Some(on_close.as_ref().unchecked_ref()));
        self.inner.update_value(|i| {
            i.ws = Some(ws);
            i.handlers = vec![Box::new(on_message), Box::new(on_close)];
        });
    }

    fn on_close(&self, code: u16) {
        let lasted = self.inner.with_value(|i| i.connected_at.map(|t| now_ms() - t));
        self.inner.update_value(|i| {
            i.ws = None;
            i.connected_at = None;
            if lasted.is_some_and(|ms| ms >= STABLE_AFTER_MS) {
                i.attempt = 0;
            }
        });
        if !self.running() {
            return;
        }
        self.reconnects.update(|n| *n += 1);
        self.last_close.set(Some(code));
        match code {
            // The token the socket was opened with expired; the session has usually refreshed already.
            close::TOKEN_EXPIRED if self.session.fresh_for_ms() > FRESH_ENOUGH_MS => self.connect_now_from_close(),
            close::TOKEN_EXPIRED => {
                let socket = *self;
                leptos::task::spawn_local(async move {
                    match socket.session.refresh().await {
                        Ok(_) => socket.connect_now_from_close(),
                        Err(e) if e.is_unauthorized() => socket.stop(),
                        Err(_) => socket.schedule_retry(None),
                    }
                });
            }
            CLOSE_RESTARTING => self.schedule_retry(Some(random_between(DRAIN_RECONNECT_MS.0, DRAIN_RECONNECT_MS.1))),
            _ => self.schedule_retry(None),
        }
    }

    fn connect_now_from_close(&self) {
        self.state.set(ConnState::Waiting { retry_at_ms: now_ms() });
        self.connect_now();
    }

    /// Waits `delay_ms`, or the next full-jitter backoff delay, then reconnects.
    fn schedule_retry(&self, delay_ms: Option<f64>) {
        if !self.running() {
            return;
        }
        if !browser_online() {
            self.state.set(ConnState::Offline);
            return; // the `online` event reconnects
        }
        let attempt = self.inner.with_value(|i| i.attempt);
        let delay = delay_ms.unwrap_or_else(|| backoff_delay_ms(attempt, js_sys::Math::random()));
        let socket = *self;
        let timer = Timeout::new(delay as u32, move || socket.connect_now());
        self.inner.update_value(|i| {
            i.attempt = i.attempt.saturating_add(1);
            i.retry_timer = Some(timer);
        });
        self.state.set(ConnState::Waiting { retry_at_ms: now_ms() + delay });
    }

    fn on_frame(&self, frame: ServerFrame) {
        let store = self.store;
        match frame {
            ServerFrame::Ready { .. } => self.on_ready(),
            ServerFrame::Subscribed { room_id, last_seq: _, truncated } => {
                if truncated {
                    self.fill_gap(room_id);
                }
            }
            ServerFrame::Message { message } | ServerFrame::Ack { message, .. } => store.add_message(message),
            ServerFrame::MessageUpdated { message } => store.update_message(message),
            ServerFrame::MessageDeleted { room_id, seq } => store.delete_message(room_id, seq),
            ServerFrame::Typing { room_id, user } => store.set_typing(room_id, user),
            ServerFrame::Notification { notification } => {
                if store.notified(notification.clone()) {
                    desktop::show(&notification, &store);
                }
            }
            ServerFrame::Reaction { room_id, seq, emoji, user, added } => {
                store.reaction_changed(room_id, seq, &emoji, user.id, added)
            }
            ServerFrame::Presence { room_id, online } => store.set_online(room_id, online),
            ServerFrame::PresenceChanged { room_id, user, online } => store.presence_changed(room_id, user, online),
            ServerFrame::Error { code, message, client_id } => {
                if let Some(client_id) = client_id {
                    self.send_failed(&client_id, &code, message);
                }
            }
            // The app leaves rooms through REST and drops them from its list itself.
            ServerFrame::Unsubscribed { room_id, reason } => match reason {
                // The app leaves rooms through REST and drops them from its list itself.
                UnsubscribeReason::Left => {}
                UnsubscribeReason::Removed => store.drop_room(room_id, |name| format!("You were removed from {name}.")),
                UnsubscribeReason::Banned => store.drop_room(room_id, |name| format!("You were banned from {name}.")),
                UnsubscribeReason::RoomDeleted => store.drop_room(room_id, |name| format!("{name} was deleted.")),
            },
            ServerFrame::RoomUpdated { room } => store.room_changed(room),
            ServerFrame::UserUpdated { user } => store.user_changed(user),
            ServerFrame::MemberJoined { room_id, member } | ServerFrame::MemberUpdated { room_id, member } => {
                store.member_changed(room_id, member)
            }
            ServerFrame::MemberLeft { room_id, user, .. } => store.member_left(room_id, user.id),
            ServerFrame::Pong => {}
        }
    }

    /// Connected: resubscribe with `since`, resend the outbox, and read the room list again. A resume
    /// replays missed messages, but a `notification` (a mention) reaches only the sockets open when it
    /// was made: the room list's counts are how one made while this client had none open (a reconnect,
    /// or the moments between a page's first room list and its socket) shows up. It also brings rooms
    /// joined elsewhere meanwhile.
    fn on_ready(&self) {
        self.inner.update_value(|i| i.connected_at = Some(now_ms()));
        self.state.set(ConnState::Connected);
        let rooms: Vec<i64> = self.store.rooms.with_untracked(|r| r.keys().copied().collect());
        for room_id in rooms {
            self.subscribe(room_id);
        }
        self.flush_outbox();
        leptos::task::spawn_local(crate::app::refresh_rooms(self.store, *self, self.api));
    }

    pub fn subscribe(&self, room_id: i64) {
        let since = Some(self.store.known_seq(room_id));
        self.send_frame(&ClientFrame::Subscribe { room_id, since });
    }

    /// More than 1000 messages, or more than 1000 changes to messages held, were missed: the server sent
    /// none of them, so page the room over REST from the oldest message held (which also brings every
    /// held message's edits and deletes).
    fn fill_gap(&self, room_id: i64) {
        let (api, store) = (self.api, self.store);
        // Read now, before live messages (which follow `subscribed`) move the timeline.
        // A timeline whose latest page is not in yet has no gap to fill: that page is fetched anyway.
        let loaded =
            store.timeline(room_id).with_untracked(|tl| tl.first_seq().filter(|_| tl.loaded)).map(|first| first - 1);
        leptos::task::spawn_local(async move {
            // The counts and the last message come from the server: the replay did not carry them.
            if let Ok(room) = api.room(room_id).await {
                store.merge_room(room);
            }
            let Some(mut after) = loaded else { return };
            while let Ok(page) = api.messages(room_id, None, Some(after)).await {
                after = page.items.last().map_or(after, |m| m.seq);
                let more = page.has_more && !page.items.is_empty();
                store.add_page(room_id, page.items, None);
                if !more {
                    break;
                }
            }
        });
    }

    /// Queues a message and sends it when the socket is open.
    pub fn send_message(&self, pending: Pending) {
        let client_id = pending.client_id.clone();
        self.store.queue(pending);
        self.send_pending(&client_id);
    }

    fn send_pending(&self, client_id: &str) {
        let Some(p) = self.store.outbox.with_untracked(|o| o.iter().find(|p| p.client_id == client_id).cloned()) else {
            return;
        };
        if p.failed || !self.is_connected() || self.held_back(client_id) {
            return;
        }
        let frame =
            ClientFrame::Send { room_id: p.room_id, body: p.body, client_id: p.client_id, reply_to: p.reply_to };
        if self.send_frame(&frame) {
            self.store.update_pending(client_id, |p| {
                p.sent_ms = Some(now_ms());
                p.refused = false;
            });
        }
    }

    /// True when a message typed before this one waits to be sent again after the server refused it: this
    /// one waits too (it is sent by `tick`, right after), or it would be stored first. The send budget is
    /// the user's, so this holds across rooms.
    fn held_back(&self, client_id: &str) -> bool {
        self.store.outbox.with_untracked(|o| o.iter().take_while(|p| p.client_id != client_id).any(|p| p.refused))
    }

    fn flush_outbox(&self) {
        let ids: Vec<String> = self.store.outbox.with_untracked(|o| o.iter().map(|p| p.client_id.clone()).collect());
        for id in ids {
            self.send_pending(&id);
        }
    }

    /// The user pressed "retry" on a message that failed.
    pub fn retry(&self, client_id: &str) {
        self.store.update_pending(client_id, |p| {
            p.failed = false;
            p.failures = 0;
            p.error = None;
        });
        self.send_pending(client_id);
    }

    /// The server refused a send: retry later when it was busy, else show why and offer "retry".
    fn send_failed(&self, client_id: &str, code: &str, message: String) {
        let retryable = matches!(code, "rate_limited" | "unavailable" | "internal");
        self.store.update_pending(client_id, |p| {
            p.failures += 1;
            p.sent_ms = Some(now_ms() - ACK_TIMEOUT_MS + 2_000.0); // retried by `tick` in about 2 s
            if !retryable || p.failures >= MAX_SEND_FAILURES {
                p.failed = true;
                p.error = Some(message);
            } else {
                p.refused = true;
            }
        });
    }

    /// Once a second: resend what got no ack in time; give up after a few tries.
    pub fn tick(&self) {
        if !self.is_connected() {
            return;
        }
        let now = now_ms();
        // In the order typed: what is due again, and what waited behind a refused message.
        let due: Vec<(String, bool)> = self.store.outbox.with_untracked(|o| {
            o.iter()
                .filter(|p| !p.failed)
                .filter_map(|p| match p.sent_ms {
                    Some(t) if now - t >= ACK_TIMEOUT_MS => Some((p.client_id.clone(), !p.refused)),
                    Some(_) => None,
                    None => Some((p.client_id.clone(), false)),
                })
                .collect()
        });
        for (id, unanswered) in due {
            // A refusal was counted when it came; a send that got no answer at all counts here.
            if unanswered {
                self.store.update_pending(&id, |p| {
                    p.failures += 1;
                    if p.failures >= MAX_SEND_FAILURES {
                        p.failed = true;
                        p.error.get_or_insert_with(|| "No answer from the server.".into());
                    }
                });
            }
            self.send_pending(&id);
        }
    }

    pub fn typing(&self, room_id: i64) {
        let now = now_ms();
        let recent =
            self.inner.with_value(|i| i.last_typing_ms.get(&room_id).is_some_and(|t| now - t < TYPING_EVERY_MS));
        if !recent && self.send_frame(&ClientFrame::Typing { room_id }) {
            self.inner.update_value(|i| {
                i.last_typing_ms.insert(room_id, now);
            });
        }
    }

    /// Tells the server the read marker moved; over REST when the socket is down.
    pub fn read(&self, room_id: i64, seq: i64) {
        if !self.send_frame(&ClientFrame::Read { room_id, seq }) {
            let api = self.api;
            leptos::task::spawn_local(async move {
                let _ = api.mark_read(room_id, seq).await;
            });
        }
    }

    /// Writes a frame if the socket is open; `false` when it is not.
    fn send_frame(&self, frame: &ClientFrame) -> bool {
        let Ok(text) = serde_json::to_string(frame) else { return false };
        self.inner.with_value(|i| match &i.ws {
            Some(ws) if ws.ready_state() == WebSocket::OPEN => ws.send_with_str(&text).is_ok(),
            _ => false,
        })
    }

    /// Reconnect at once when the network comes back or a hidden tab is shown again: the user is looking.
    fn watch_browser(&self) {
        let Some(window) = web_sys::window() else { return };
        let socket = *self;
        let reconnect = Closure::<dyn FnMut()>::new(move || {
            if crate::util::page_visible() && browser_online() {
                socket.connect_now();
            }
        });
        let socket_offline = *self;
        let offline = Closure::<dyn FnMut()>::new(move || {
            if socket_offline.running() && !socket_offline.is_connected() {
                socket_offline.state.set(ConnState::Offline);
            }
        });
        let _ = window.add_event_listener_with_callback("online", reconnect.as_ref().unchecked_ref());
        if let Some(document) = window.document() {
            let _ = document.add_event_listener_with_callback("visibilitychange", reconnect.as_ref().unchecked_ref());
        }
        let _ = window.add_event_listener_with_callback("offline", offline.as_ref().unchecked_ref());
        // These live as long as the page.
        reconnect.forget();
        offline.forget();
    }
}

/// Full jitter: uniform in `[0, min(max, base * 2^attempt))`; `random` is in `[0, 1)`.
pub fn backoff_delay_ms(attempt: u32, random: f64) -> f64 {
    let ceiling = (BACKOFF_BASE_MS * 2f64.powi(attempt.min(16) as i32)).min(BACKOFF_MAX_MS);
    random * ceiling
}

/// `ws://` or `wss://` to this page's host, with the ticket.
fn ws_url(ticket: &str) -> String {
    let location = web_sys::window().map(|w| w.location());
    let scheme = match location.as_ref().and_then(|l| l.protocol().ok()).as_deref() {
        Some("https:") => "wss",
        _ => "ws",
    };
    let host = location.and_then(|l| l.host().ok()).unwrap_or_default();
    format!("{scheme}://{host}/api/v1/ws?ticket={}", js_sys::encode_uri_component(ticket))
}
