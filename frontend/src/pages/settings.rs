//! The settings page: where the user is signed in, with "sign out" per device and "sign out everywhere".

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::Api;
use crate::session::Session;

#[component]
pub fn SettingsPage() -> impl IntoView {
    let (api, session) = (expect_context::<Api>(), expect_context::<Session>());
    let sessions = LocalResource::new(move || async move { api.sessions().await });
    let error = RwSignal::new(None::<String>);
    let end = move |id: String| {
        leptos::task::spawn_local(async move {
            match api.end_session(&id).await {
                Ok(()) => sessions.refetch(),
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    let end_all = move |_| {
        leptos::task::spawn_local(async move {
            match api.logout_all().await {
                // This device too: the app goes back to the login.
                Ok(()) => session.log_out().await,
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    view! {
        <section class="settings" aria-labelledby="settings-title">
            <header class="room-header">
                <A href="/" attr:class="back" attr:aria-label="Back to the rooms">"‹"</A>
                <h2 id="settings-title">"Settings"</h2>
            </header>
            <h3 id="sessions-title">"Where you are signed in"</h3>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || sessions.get().map(|result| match result {
                    Err(e) => view! { <p class="error" role="alert">{e.detail}</p> }.into_any(),
                    Ok(items) => view! {
                        <ul class="sessions" aria-labelledby="sessions-title">
                            {items.into_iter().map(|s| {
                                let id = s.id.clone();
                                let device = s.user_agent.clone().unwrap_or_else(|| "Unknown device".into());
                                let last = s.last_used_at.format("%Y-%m-%d %H:%M").to_string();
                                view! {
                                    <li class="session" class:current=s.current>
                                        <span class="device">{device}</span>
                                        <span class="last-used">{format!("last active {last} UTC")}</span>
                                        {if s.current {
                                            view! { <span class="this-device">"This device"</span> }.into_any()
                                        } else {
                                            view! {
                                                <button type="button" on:click=move |_| end(id.clone())>"Sign out"</button>
                                            }.into_any()
                                        }}
                                    </li>
                                }
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
            <button type="button" class="danger" on:click=end_all>"Sign out everywhere"</button>
        </section>
    }
}
