//! Finding someone by name as you type: a combobox over `GET /users` (usernames and display names that
//! start with what was typed). Arrow keys move through the suggestions, Enter picks one (or the typed
//! username as it is), Escape closes the list.

use chat_api::User;
use gloo_timers::callback::Timeout;
use leptos::prelude::*;

use crate::api::Api;

/// How long typing pauses before the server is asked (the lookup is rate-limited per user).
const DEBOUNCE_MS: u32 = 200;

#[component]
pub fn PeopleSearch(
    /// The field's label ("Add people", "Username").
    label: &'static str,
    /// The submit button's text.
    action: &'static str,
    /// Called with the chosen username.
    on_pick: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let api = expect_context::<Api>();
    let text = RwSignal::new(String::new());
    let found = RwSignal::new(Vec::<User>::new());
    let active = RwSignal::new(None::<usize>);
    let timer = StoredValue::new_local(None::<Timeout>);
    // Answers can come back out of order: only the one for the latest text counts.
    let asked = StoredValue::new(String::new());
    let id = format!("people-{}", label.to_lowercase().replace(' ', "-"));
    let list_id = format!("{id}-list");

    let look_up = move |q: String| {
        asked.set_value(q.clone());
        if q.is_empty() {
            found.set(Vec::new());
            return;
        }
        let timeout = Timeout::new(DEBOUNCE_MS, move || {
            leptos::task::spawn_local(async move {
                let users = api.search_users(&q).await.unwrap_or_default();
                if asked.get_value() == q {
                    found.set(users);
                    active.set(None);
                }
            });
        });
        timer.set_value(Some(timeout));
    };
    let pick = move |username: String| {
        let username = username.trim().to_owned();
        if username.is_empty() {
            return;
        }
        text.set(String::new());
        found.set(Vec::new());
        active.set(None);
        on_pick(username);
    };
    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let count = found.with_untracked(Vec::len);
        match ev.key().as_str() {
            "ArrowDown" if count > 0 => {
                ev.prevent_default();
                active.update(|a| *a = Some(a.map_or(0, |i| (i + 1) % count)));
            }
            "ArrowUp" if count > 0 => {
                ev.prevent_default();
                active.update(|a| *a = Some(a.map_or(count - 1, |i| (i + count - 1) % count)));
            }
            "Escape" => {
                found.set(Vec::new());
                active.set(None);
            }
            "Enter" => {
                ev.prevent_default();
                let chosen = active.get_untracked().and_then(|i| found.with_untracked(|f| f.get(i).cloned()));
                pick(chosen.map_or_else(|| text.get_untracked(), |u| u.username));
            }
            _ => {}
        }
    };
    let option_id = move |i: usize| format!("people-option-{i}");
    let list_for_aria = list_id.clone();
    view! {
        <form class="people-search" on:submit=move |ev| { ev.prevent_default(); pick(text.get_untracked()); }>
            <label for=id.clone()>{label}</label>
            <div class="combo">
                <input id=id.clone() role="combobox" autocomplete="off" maxlength="64"
                    aria-autocomplete="list" aria-controls=list_for_aria
                    aria-expanded=move || found.with(|f| !f.is_empty()).to_string()
                    aria-activedescendant=move || active.get().map(option_id)
                    prop:value=move || text.get()
                    on:input=move |ev| {
                        let value = event_target_value(&ev);
                        text.set(value.clone());
                        look_up(value.trim().to_owned());
                    }
                    on:keydown=on_key />
                <ul id=list_id class="suggestions" role="listbox" aria-label="People"
                    hidden=move || found.with(Vec::is_empty)>
                    {move || found.get().into_iter().enumerate().map(|(i, user)| {
                        let username = user.username.clone();
                        let shown = match &user.display_name {
                            Some(name) => format!("{name} (@{})", user.username),
                            None => format!("@{}", user.username),
                        };
                        view! {
                            <li id=option_id(i) role="option" aria-selected=move || (active.get() == Some(i)).to_string()
                                class:active=move || active.get() == Some(i)
                                // mousedown, not click: the input keeps focus and the list stays put.
                                on:mousedown=move |ev| { ev.prevent_default(); pick(username.clone()); }>
                                {shown}
                            </li>
                        }
                    }).collect_view()}
                </ul>
            </div>
            <button type="submit">{action}</button>
        </form>
    }
}
