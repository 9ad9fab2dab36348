//! `@` in the composer: a list of the room's members matching what follows it (and `@room` for the owner
//! and admins), navigable with the arrow keys, Enter or Tab to take one, Escape to close. The textarea is
//! an ARIA combobox and the list its listbox, so a screen reader follows the active option.

use chat_api::{Member, Role};
use leptos::html::Textarea;
use leptos::prelude::*;
use web_sys::KeyboardEvent;

use crate::store::Store;
use crate::util::shown_name;

/// Options shown at once.
const MAX_OPTIONS: usize = 8;
pub const LIST_ID: &str = "mention-list";

/// One option: what is inserted after `@`, and how it is shown.
#[derive(Clone, PartialEq)]
pub struct Candidate {
    pub handle: String,
    pub label: String,
}

/// The picker's state, owned by the composer.
#[derive(Clone, Copy)]
pub struct MentionPicker {
    room_id: Memo<i64>,
    /// Taken at construction: event handlers run outside the component, where there is no context.
    store: Store,
    /// The `@` being completed: its byte offset in the text, and what was typed after it.
    at: RwSignal<Option<(usize, String)>>,
    active: RwSignal<usize>,
}

impl MentionPicker {
    pub fn new(room_id: Memo<i64>) -> MentionPicker {
        MentionPicker { room_id, store: expect_context::<Store>(), at: RwSignal::new(None), active: RwSignal::new(0) }
    }

    /// After each input: open, narrow or close the list from the text before the caret.
    pub fn update(&self, text: &str, input: NodeRef<Textarea>) {
        let caret = input.get_untracked().and_then(|el| el.selection_start().ok().flatten()).unwrap_or(u32::MAX);
        let found = typed_mention(text, byte_index(text, caret));
        let changed = self.at.with_untracked(|a| a.as_ref().map(|(_, p)| p) != found.as_ref().map(|(_, p)| p));
        if changed {
            self.active.set(0);
        }
        self.at.set(found);
    }

    pub fn close(&self) {
        self.at.set(None);
    }

    pub fn is_open(&self) -> bool {
        self.at.with(Option::is_some) && !self.candidates().is_empty()
    }

    /// The members whose username or display name starts with what was typed (any word of the display
    /// name), me left out; `@room` first when it matches and I may use it.
    pub fn candidates(&self) -> Vec<Candidate> {
        let Some(partial) = self.at.with(|a| a.as_ref().map(|(_, p)| p.to_lowercase())) else { return Vec::new() };
        let store = self.store;
        let (room_id, me) = (self.room_id.get(), store.my_id());
        let members: Vec<Member> = store.members.with(|m| m.get(&room_id).cloned().unwrap_or_default());
        let moderator = members.iter().any(|m| Some(m.user.id) == me && matches!(m.role, Role::Owner | Role::Admin));
        let mut list = Vec::new();
        if moderator && "room".starts_with(&partial) {
            list.push(Candidate { handle: "room".into(), label: "room: everyone in this room".into() });
        }
        list.extend(
            members
                .iter()
                .filter(|m| Some(m.user.id) != me && !m.user.deleted)
                .filter(|m| {
                    m.user.username.to_lowercase().starts_with(&partial)
                        || m.user
                            .display_name
                            .as_deref()
                            .unwrap_or_default()
                            .to_lowercase()
                            .split_whitespace()
                            .any(|w| w.starts_with(&partial))
                })
                .map(|m| Candidate {
                    handle: m.user.username.clone(),
                    label: format!("{} (@{})", shown_name(&m.user), m.user.username),
                }),
        );
        list.truncate(MAX_OPTIONS);
        list
    }

    /// Arrow keys, Enter, Tab and Escape while the list is open; `true` when the key was the picker's.
    pub fn on_key(&self, ev: &KeyboardEvent, text: RwSignal<String>, input: NodeRef<Textarea>) -> bool {
        if !self.is_open() {
            return false;
        }
        let count = self.candidates().len();
        match ev.key().as_str() {
            "ArrowDown" => self.active.update(|a| *a = (*a + 1) % count),
            "ArrowUp" => self.active.update(|a| *a = (*a + count - 1) % count),
            "Enter" | "Tab" => {
                let chosen = self.candidates().into_iter().nth(self.active.get_untracked());
                if let Some(chosen) = chosen {
                    self.choose(&chosen, text, input);
                }
            }
            "Escape" => self.close(),
            _ => return false,
        }
        ev.prevent_default();
        true
    }

    /// Replaces `@partial` with `@handle ` and puts the caret after it.
    pub fn choose(&self, chosen: &Candidate, text: RwSignal<String>, input: NodeRef<Textarea>) {
        let Some((start, partial)) = self.at.get_untracked() else { return };
        let current = text.get_untracked();
        let end = (start + 1 + partial.len()).min(current.len());
        let inserted = format!("@{} ", chosen.handle);
        let updated = format!("{}{inserted}{}", &current[..start], &current[end..]);
        let caret = current[..start].encode_utf16().count() + inserted.encode_utf16().count();
        text.set(updated.clone());
        self.close();
        if let Some(el) = input.get_untracked() {
            el.set_value(&updated);
            let _ = el.set_selection_range(caret as u32, caret as u32);
            let _ = el.focus();
        }
    }

    /// The id of the active option, for the textarea's `aria-activedescendant`.
    pub fn active_id(&self) -> Option<String> {
        self.is_open().then(|| format!("mention-option-{}", self.active.get()))
    }

    pub fn view(self, text: RwSignal<String>, input: NodeRef<Textarea>) -> impl IntoView {
        view! {
            <Show when=move || self.is_open()>
                <ul id=LIST_ID class="mention-list" role="listbox" aria-label="Mention someone">
                    {move || self.candidates().into_iter().enumerate().map(|(i, c)| {
                        let chosen = c.clone();
                        view! {
                            <li id=format!("mention-option-{i}") role="option"
                                aria-selected=move || (self.active.get() == i).to_string()
                                class:active=move || self.active.get() == i
                                // mousedown, not click: the textarea keeps its focus and caret.
                                on:mousedown=move |ev| { ev.prevent_default(); self.choose(&chosen, text, input); }>
                                {c.label}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </Show>
        }
    }
}

/// The `@` before `caret` being typed: at the start or after a space, followed only by characters of
/// a username (the server's rule in `domain/mentions.rs`). Its byte offset and what follows it.
pub fn typed_mention(text: &str, caret: usize) -> Option<(usize, String)> {
    let before = text.get(..caret.min(text.len()))?;
    let at = before.rfind('@')?;
    let partial = &before[at + 1..];
    let handle_chars = partial.chars().all(|c| c.is_ascii_alphanumeric() || "_.-".contains(c));
    let word_start = before[..at].chars().next_back().is_none_or(char::is_whitespace);
    (handle_chars && word_start && partial.len() <= 32).then(|| (at, partial.to_owned()))
}

/// A caret position in UTF-16 code units (the DOM's) as a byte offset into `text`.
fn byte_index(text: &str, utf16: u32) -> usize {
    let mut units = 0u32;
    for (i, c) in text.char_indices() {
        if units >= utf16 {
            return i;
        }
        units += c.len_utf16() as u32;
    }
    text.len()
}
