//! Log in or register: one form, two buttons' worth of difference.

use chat_api::{LoginRequest, RegisterRequest};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api;
use crate::session::Session;

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = expect_context::<Session>();
    let navigate = use_navigate();
    let registering = RwSignal::new(false);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let display_name = RwSignal::new(String::new());
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);

    // Where to go once logged in: back to the page that sent the user here (an invite link, a room).
    let query = use_query_map();
    let next = move || query.with_untracked(|q| q.get("next")).filter(|path| is_local_path(path)).unwrap_or("/".into());
    // Logged in (now, or already in another tab): on to the chats.
    Effect::new(move |_| {
        if session.is_logged_in() {
            navigate(&next(), Default::default());
        }
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        busy.set(true);
        error.set(None);
        let (user, pass) = (username.get_untracked(), password.get_untracked());
        let name = display_name.get_untracked();
        let register = registering.get_untracked();
        leptos::task::spawn_local(async move {
            let result = if register {
                let display_name = Some(name.trim().to_string()).filter(|n| !n.is_empty());
                api::register(&RegisterRequest { username: user, password: pass, display_name }).await
            } else {
                api::login(&LoginRequest { username: user, password: pass }).await
            };
            busy.set(false);
            match result {
                Ok(resp) => session.start(resp),
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };

    view! {
        <main class="login">
            <form class="card" on:submit=submit aria-labelledby="login-title">
                <h1 id="login-title">{move || if registering.get() { "Create an account" } else { "Log in to Chat" }}</h1>
                <label for="username">"Username"</label>
                <input id="username" name="username" autocomplete="username" required minlength="3" maxlength="32"
                    prop:value=move || username.get() on:input=move |ev| username.set(event_target_value(&ev)) />
                <Show when=move || registering.get()>
                    <label for="display-name">"Display name " <span class="hint">"(optional)"</span></label>
                    <input id="display-name" name="display_name" maxlength="64"
                        prop:value=move || display_name.get() on:input=move |ev| display_name.set(event_target_value(&ev)) />
                </Show>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" required minlength="8" maxlength="128"
                    autocomplete=move || if registering.get() { "new-password" } else { "current-password" }
                    prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) />
                <p class="error" role="alert">{move || error.get()}</p>
                <button type="submit" class="primary" disabled=move || busy.get()>
                    {move || if registering.get() { "Register" } else { "Log in" }}
                </button>
                <button type="button" class="link" on:click=move |_| { registering.update(|r| *r = !*r); error.set(None); }>
                    {move || if registering.get() { "I have an account: log in" } else { "New here? Create an account" }}
                </button>
            </form>
        </main>
    }
}

/// Only a path on this site is followed after login ("/invite/x"), never another origin ("//evil.example").
fn is_local_path(path: &str) -> bool {
    path.starts_with('/') && !path.starts_with("//") && !path.starts_with("/\\")
}
