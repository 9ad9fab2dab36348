//! Where a message is written: Enter sends, Shift+Enter adds a line, `@` offers the room's members; typing
//! is announced to the room.
//! A sent message goes to the outbox first (see `socket.rs`), so it survives a lost connection or a reload.

use leptos::html::Textarea;
use leptos::prelude::*;

use crate::app::Clock;
use crate::components::mention_picker::{LIST_ID, MentionPicker};
use crate::socket::Socket;
use crate::store::{Pending, Store};
use crate::util::{is_muted, muted_until_text, new_client_id, now_ms};

/// The contract's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 4000;

#[component]
pub fn Composer(room_id: Memo<i64>) -> impl IntoView {
    let (socket, store, clock) = (expect_context::<Socket>(), expect_context::<Store>(), expect_context::<Clock>());
    let text = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let input = NodeRef::<Textarea>::new();
    let picker = MentionPicker::new(room_id);
    // Muted: the composer is disabled and says until when (the server refuses a send anyway).
    let muted_until = move || {
        clock.0.track();
        store.my_membership(room_id.get()).and_then(|m| m.muted_until).filter(|t| is_muted(Some(*t)))
    };
    let muted = move || muted_until().is_some();
    // The reply being written, if it belongs to this room.
    let replying = move || store.replying.get().filter(|r| r.room_id == room_id.get());

    let send = move || {
        let body = text.get_untracked();
        if body.trim().is_empty() || muted() {
            return;
        }
        if body.chars().count() > MAX_BODY_CHARS {
            error.set(Some(format!("A message holds at most {MAX_BODY_CHARS} characters.")));
            return;
        }
        error.set(None);
        text.set(String::new());
        picker.close();
        let room = room_id.get_untracked();
        let reply_to = store.replying.get_untracked().filter(|r| r.room_id == room).map(|r| r.seq);
        store.replying.set(None);
        socket.send_message(Pending {
            client_id: new_client_id(),
            room_id: room,
            body,
            created_ms: now_ms(),
            sent_ms: None,
            failures: 0,
            failed: false,
            refused: false,
            error: None,
            reply_to,
        });
    };

    view! {
        <form class="composer" on:submit=move |ev| { ev.prevent_default(); send(); }>
            <Show when=move || replying().is_some()>
                <p class="replying" role="status">
                    <span>{move || replying().map(|r| format!("Replying to {}: {}", r.author, r.excerpt))}</span>
                    <button type="button" class="link" aria-label="Cancel the reply"
                        on:click=move |_| store.replying.set(None)>"Cancel"</button>
                </p>
            </Show>
            {picker.view(text, input)}
            <label class="visually-hidden" for="composer-input">"Message"</label>
            <textarea id="composer-input" rows="1" node_ref=input
                aria-autocomplete="list" aria-controls=LIST_ID aria-activedescendant=move || picker.active_id()
                placeholder=move || match muted_until() {
                    Some(until) => format!("You are {} in this room", muted_until_text(Some(until))),
                    None => "Write a message… (Enter sends, Shift+Enter for a new line)".into(),
                }
                prop:disabled=muted
                prop:value=move || text.get()
                on:input=move |ev| {
                    let value = event_target_value(&ev);
                    picker.update(&value, input);
                    text.set(value);
                    socket.typing(room_id.get_untracked());
                }
                on:blur=move |_| picker.close()
                on:keydown=move |ev| {
                    if picker.on_key(&ev, text, input) {
                        return;
                    }
                    if ev.key() == "Escape" {
                        store.replying.set(None);
                    }
                    if ev.key() == "Enter" && !ev.shift_key() && !ev.is_composing() {
                        ev.prevent_default();
                        send();
                    }
                } />
            <button type="submit" class="primary" prop:disabled=muted>"Send"</button>
            <p class="error" role="alert">{move || error.get()}</p>
        </form>
    }
}
