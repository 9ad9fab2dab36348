//! A room's history: runs of messages by one author grouped under one name, own messages marked and
//! editable, the "new messages" divider, messages still on their way, older pages loaded on scrolling up,
//! and the read marker moved when the newest message is on screen.
//!
//! Message text is always a text node: Leptos escapes it, and nothing here sets inner HTML.

use chat_api::Message;
use chrono::{DateTime, Utc};
use leptos::html::Div;
use leptos::prelude::*;

use crate::api::Api;
use crate::app::Clock;
use crate::components::message_parts::{EmojiPicker, ReactionChips, ReplyQuote, linked_text, start_reply};
use crate::socket::Socket;
use crate::store::{Pending, Store, Timeline};
use crate::util::{day_label, full_time, page_visible, shown_name, time_of_day};

/// Messages by one author closer together than this share one heading.
const RUN_GAP_SECONDS: i64 = 5 * 60;
/// Within this many pixels of an edge counts as at the edge.
const EDGE_PX: i32 = 60;

/// One line of the list.
#[derive(Clone, PartialEq)]
enum Row {
    Divider,
    /// A day heading above the first message of a day (`before`: that message's seq).
    Day {
        label: String,
        before: i64,
    },
    Message {
        message: Box<Message>,
        starts_run: bool,
        mine: bool,
    },
}

impl Row {
    /// Changes whenever the row's content does, so `<For>` re-renders exactly the changed rows.
    fn key(&self) -> (i64, bool, bool, Option<DateTime<Utc>>, String, String) {
        match self {
            Row::Divider => (-1, false, false, None, String::new(), String::new()),
            Row::Day { label, before } => (-2 - before, false, false, None, label.clone(), String::new()),
            Row::Message { message, starts_run, .. } => {
                // The author's name too: it changes when they rename themselves (`user_updated`).
                let author = shown_name(&message.author).to_owned();
                let reactions: String =
                    message.reactions.iter().map(|r| format!("{}{:?};", r.emoji, r.user_ids)).collect();
                (message.seq, *starts_run, message.deleted, message.edited_at, author, reactions)
            }
        }
    }
}

#[component]
pub fn MessageList(room_id: Memo<i64>, divider: RwSignal<Option<i64>>) -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let clock = expect_context::<Clock>();
    let list = NodeRef::<Div>::new();
    let at_bottom = StoredValue::new(true);
    let loading_older = RwSignal::new(false);
    // Scrolled up: the newest seq held when the reader left the bottom. "Jump to latest" shows, counting
    // the messages held above that seq: derived from the timeline, so a message counts once however and
    // whenever it arrives (live, replayed after a reconnect, or in a gap fill).
    let left_at = RwSignal::new(None::<i64>);
    let away = move || left_at.with(Option::is_some);
    let unseen = move || {
        let Some(seq) = left_at.get() else { return 0 };
        store.timeline(room_id.get()).with(|tl| tl.messages.range(seq + 1..).count())
    };
    let me = move || store.me.with(|m| m.as_ref().map(|u| u.id));

    let rows = move || {
        let me = me();
        let divider = divider.get();
        store.timeline(room_id.get()).with(|tl| build_rows(tl.messages.values(), me, divider))
    };
    let pending = move || {
        let id = room_id.get();
        store.outbox.with(|o| o.iter().filter(|p| p.room_id == id).cloned().collect::<Vec<_>>())
    };
    let has_older = move || store.timeline(room_id.get()).with(|tl| tl.has_older);

    // The read marker follows what the reader has seen: the newest message, once it is on screen.
    let mark_read = move || {
        let id = room_id.get_untracked();
        let newest = store.timeline(id).with_untracked(Timeline::last_seq);
        if let Some(seq) = newest
            && at_bottom.get_value()
            && page_visible()
            && store.mark_read(id, seq)
        {
            socket.read(id, seq);
        }
    };

    // New rows: stay pinned to the bottom when the reader was there.
    Effect::new(move |_| {
        rows();
        pending();
        if at_bottom.get_value()
            && let Some(el) = list.get()
        {
            el.set_scroll_top(el.scroll_height());
        }
        mark_read();
    });
    // Every second, in case the tab became visible or the layout changed.
    Effect::new(move |_| {
        clock.0.track();
        mark_read();
    });
    // On opening a room: show the divider when there is one, else the newest messages.
    Effect::new(move |_| {
        room_id.track();
        at_bottom.set_value(true);
        left_at.set(None);
        // By the next frame the reader may have left the room: this list (and `list`) may be gone.
        request_animation_frame(move || {
            let Some(el) = list.try_get_untracked().flatten() else { return };
            match el.query_selector(".divider").ok().flatten() {
                Some(d) => {
                    d.scroll_into_view();
                    at_bottom.set_value(false);
                }
                None => el.set_scroll_top(el.scroll_height()),
            }
        });
    });

    let load_older = move || {
        let id = room_id.get_untracked();
        let Some(first) = store.timeline(id).with_untracked(Timeline::first_seq) else { return };
        if loading_older.get_untracked() || !has_older() {
            return;
        }
        loading_older.set(true);
        leptos::task::spawn_local(async move {
            let height_before = list.get_untracked().map(|el| el.scroll_height()).unwrap_or(0);
            if let Ok(page) = api.messages(id, Some(first), None).await {
                store.add_page(id, page.items, Some(page.has_more));
                // Keep the reader's place: the page grew above them (unless they left the room meanwhile).
                request_animation_frame(move || {
                    if let Some(el) = list.try_get_untracked().flatten() {
                        el.set_scroll_top(el.scroll_top() + el.scroll_height() - height_before);
                    }
                });
            }
            loading_older.set(false);
        });
    };

    let on_scroll = move |_| {
        let Some(el) = list.get_untracked() else { return };
        let bottom = el.scroll_height() - el.scroll_top() - el.client_height() <= EDGE_PX;
        at_bottom.set_value(bottom);
        if bottom {
            if left_at.get_untracked().is_some() {
                left_at.set(None);
            }
        } else if left_at.get_untracked().is_none() {
            let newest = store.timeline(room_id.get_untracked()).with_untracked(Timeline::last_seq);
            left_at.set(Some(newest.unwrap_or(0)));
        }
        if el.scroll_top() <= EDGE_PX {
            load_older();
        }
        mark_read();
    };

    view! {
        <div class="messages" node_ref=list on:scroll=on_scroll tabindex="0" role="log" aria-label="Messages">
            <Show when=has_older>
                <button type="button" class="link older" on:click=move |_| load_older() disabled=move || loading_older.get()>
                    {move || if loading_older.get() { "Loading…" } else { "Load older messages" }}
                </button>
            </Show>
            <Show when=away>
                <button type="button" class="jump-latest" on:click=move |_| {
                    if let Some(el) = list.get_untracked() {
                        el.set_scroll_top(el.scroll_height());
                    }
                }>
                    {move || match unseen() {
                        0 => "Jump to latest ↓".to_owned(),
                        n => format!("Jump to latest ↓ ({n} new)"),
                    }}
                </button>
            </Show>
            <ol class="message-rows">
                <For each=rows key=Row::key let:row>
                    <MessageRow row=row room_id=room_id />
                </For>
                <For each=pending key=|p| (p.client_id.clone(), p.failed) let:p>
                    <PendingRow pending=p />
                </For>
            </ol>
        </div>
    }
}

/// The rows of a timeline: runs, and the divider above the first unseen message of someone else.
fn build_rows<'a>(messages: impl Iterator<Item = &'a Message>, me: Option<i64>, divider: Option<i64>) -> Vec<Row> {
    let mut rows = Vec::new();
    let mut previous: Option<&Message> = None;
    let mut divided = false;
    let mut day = String::new();
    for m in messages {
        let label = day_label(&m.created_at);
        let new_day = label != day;
        if new_day {
            rows.push(Row::Day { label: label.clone(), before: m.seq });
            day = label;
        }
        let mine = Some(m.author.id) == me;
        let new_to_reader = divider.is_some_and(|d| m.seq > d) && !mine;
        if new_to_reader && !divided {
            rows.push(Row::Divider);
            divided = true;
        }
        let starts_run = new_day
            || new_to_reader && rows.last() == Some(&Row::Divider)
            || previous.is_none_or(|p| {
                p.author.id != m.author.id
                    || p.via != m.via
                    || (m.created_at - p.created_at).num_seconds() > RUN_GAP_SECONDS
            });
        rows.push(Row::Message { message: Box::new(m.clone()), starts_run, mine });
        previous = Some(m);
    }
    rows
}

#[component]
fn MessageRow(row: Row, room_id: Memo<i64>) -> impl IntoView {
    let (message, starts_run, mine) = match row {
        Row::Message { message, starts_run, mine } => (message, starts_run, mine),
        Row::Day { label, .. } => {
            return view! { <li class="day" role="separator"><span>{label}</span></li> }.into_any();
        }
        Row::Divider => {
            return view! { <li class="divider" role="separator"><span>"New messages"</span></li> }.into_any();
        }
    };
    let store = expect_context::<Store>();
    let editing = RwSignal::new(false);
    let picking = RwSignal::new(false);
    let seq = message.seq;
    let deleted = message.deleted;
    let me = store.me.with_untracked(|m| m.as_ref().map(|u| u.id));
    let mentions_me = me.is_some_and(|me| message.mentions.contains(&me));
    let reply = message.reply_to.clone();
    let reactions = message.reactions.clone();
    let has_reactions = !reactions.is_empty();
    let author = shown_name(&message.author).to_owned();
    let author_deleted = message.author.deleted;
    // Posted through an incoming hook: its name first, whose hook it is after.
    let via = message.via.clone();
    let (stamp, title, time) =
        (message.created_at.to_rfc3339(), full_time(&message.created_at), time_of_day(&message.created_at));
    view! {
        <li class="message" class:mine=mine class:run-start=starts_run class:deleted=deleted
            class:mentions-me=mentions_me data-seq=seq.to_string()>
            <Show when=move || starts_run>
                <div class="meta">
                    {match via.clone() {
                        Some(via) => view! {
                            <span class="author">{via}</span>
                            <span class="via">{format!("via {author}'s hook")}</span>
                        }.into_any(),
                        None => view! {
                            <span class="author" class:deleted-user=author_deleted>{author.clone()}</span>
                        }.into_any(),
                    }}
                    <time datetime=stamp.clone() title=title.clone()>{time.clone()}</time>
                </div>
            </Show>
            {reply.map(|reply| view! { <ReplyQuote room_id=room_id reply=reply /> })}
            {
                let message = message.clone();
                move || if editing.get() {
                    view! { <EditBox room_id=room_id seq=seq body=message.body.clone() editing=editing /> }.into_any()
                } else if deleted {
                    view! { <p class="body">"message deleted"</p> }.into_any()
                } else {
                    view! {
                        <p class="body">{linked_text(&message.body)}
                            {message.edited_at.map(|_| view! { <span class="edited">" (edited)"</span> })}
                        </p>
                    }.into_any()
                }
            }
            <Show when=move || has_reactions>
                <ReactionChips room_id=room_id seq=seq reactions=reactions.clone() />
            </Show>
            <Show when=move || !deleted && !editing.get()>
                <MessageActions room_id=room_id seq=seq mine=mine editing=editing picking=picking />
            </Show>
            <Show when=move || picking.get()>
                <EmojiPicker room_id=room_id seq=seq close=move || picking.set(false) />
            </Show>
        </li>
    }
    .into_any()
}

#[component]
fn MessageActions(
    room_id: Memo<i64>,
    seq: i64,
    mine: bool,
    editing: RwSignal<bool>,
    picking: RwSignal<bool>,
) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let delete = move |_| {
        let id = room_id.get_untracked();
        let confirmed =
            web_sys::window().and_then(|w| w.confirm_with_message("Delete this message?").ok()).unwrap_or(false);
        if confirmed {
            leptos::task::spawn_local(async move {
                if api.delete(id, seq).await.is_ok() {
                    store.delete_message(id, seq);
                }
            });
        }
    };
    view! {
        <div class="message-actions">
            <button type="button" class="link" on:click=move |_| start_reply(store, room_id.get_untracked(), seq)>"Reply"</button>
            <button type="button" class="link" aria-expanded=move || picking.get().to_string()
                on:click=move |_| picking.update(|p| *p = !*p)>"React"</button>
            <Show when=move || mine>
                <button type="button" class="link" on:click=move |_| editing.set(true)>"Edit"</button>
                <button type="button" class="link" on:click=delete>"Delete"</button>
            </Show>
        </div>
    }
}

#[component]
fn EditBox(room_id: Memo<i64>, seq: i64, body: String, editing: RwSignal<bool>) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let text = RwSignal::new(body);
    let error = RwSignal::new(None::<String>);
    let save = move || {
        let id = room_id.get_untracked();
        let body = text.get_untracked();
        leptos::task::spawn_local(async move {
            match api.edit(id, seq, &body).await {
                Ok(message) => {
                    store.update_message(message);
                    editing.set(false);
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    view! {
        <form class="edit" on:submit=move |ev| { ev.prevent_default(); save(); }>
            <label class="visually-hidden" for=format!("edit-{seq}")>"Edit message"</label>
            <textarea id=format!("edit-{seq}") maxlength="4000" prop:value=move || text.get()
                on:input=move |ev| text.set(event_target_value(&ev))
                on:keydown=move |ev| {
                    if ev.key() == "Escape" { editing.set(false); }
                    if ev.key() == "Enter" && !ev.shift_key() { ev.prevent_default(); save(); }
                } />
            <p class="error" role="alert">{move || error.get()}</p>
            <button type="submit" class="primary">"Save"</button>
            <button type="button" class="link" on:click=move |_| editing.set(false)>"Cancel"</button>
        </form>
    }
}

/// A message typed here and not yet acknowledged: "sending", or why it failed with "retry".
#[component]
fn PendingRow(pending: Pending) -> impl IntoView {
    let (store, socket) = (expect_context::<Store>(), expect_context::<Socket>());
    let id = pending.client_id.clone();
    let (retry_id, discard_id) = (id.clone(), id.clone());
    view! {
        <li class="message mine pending" class:failed=pending.failed data-client-id=id>
            <p class="body">{pending.body.clone()}</p>
            {if pending.failed {
                view! {
                    <p class="status" role="alert">
                        {format!("Not sent: {}", pending.error.clone().unwrap_or_default())}
                        <button type="button" class="link" on:click=move |_| socket.retry(&retry_id)>"Retry"</button>
                        <button type="button" class="link" on:click=move |_| store.discard_pending(&discard_id)>"Discard"</button>
                    </p>
                }.into_any()
            } else {
                view! { <p class="status">"Sending…"</p> }.into_any()
            }}
        </li>
    }
}
