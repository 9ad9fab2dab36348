//! The settings page: the display name, the password, where the user is signed in (with "sign out"
//! per device and "sign out everywhere"), API tokens, blocked people, a download of the user's data, and
//! deleting the account.

mod account;
mod tokens;

use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::Api;
use crate::components::status::StatusLine;
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
            <Profile />
            <Password />
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
            <tokens::ApiTokens />
            <account::Blocks />
            <account::Export />
            <account::DeleteAccount />
        </section>
    }
}

/// The display name, as others see it.
#[component]
fn Profile() -> impl IntoView {
    let (api, session) = (expect_context::<Api>(), expect_context::<Session>());
    let name = RwSignal::new(session.user().and_then(|u| u.display_name).unwrap_or_default());
    let status = RwSignal::new(None::<Result<String, String>>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let wanted = Some(name.get_untracked().trim().to_owned()).filter(|n| !n.is_empty());
        leptos::task::spawn_local(async move {
            match api.update_me(wanted).await {
                Ok(user) => {
                    name.set(user.display_name.clone().unwrap_or_default());
                    session.set_user(user);
                    status.set(Some(Ok("Saved.".into())));
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <form class="profile" on:submit=save>
            <h3>"Profile"</h3>
            <label for="display-name-setting">"Display name"</label>
            <input id="display-name-setting" maxlength="64" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev)) />
            <button type="submit">"Save"</button>
            <StatusLine status=status />
        </form>
    }
}

/// A new password (the current one asked again); other devices are signed out.
#[component]
fn Password() -> impl IntoView {
    let api = expect_context::<Api>();
    let (current, new) = (RwSignal::new(String::new()), RwSignal::new(String::new()));
    let status = RwSignal::new(None::<Result<String, String>>);
    let change = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let (old, fresh) = (current.get_untracked(), new.get_untracked());
        leptos::task::spawn_local(async move {
            match api.change_password(old, fresh).await {
                Ok(()) => {
                    current.set(String::new());
                    new.set(String::new());
                    status.set(Some(Ok("Password changed. Your other devices are signed out.".into())));
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <form class="password" on:submit=change>
            <h3>"Password"</h3>
            <label for="current-password">"Current password"</label>
            <input id="current-password" type="password" autocomplete="current-password"
                prop:value=move || current.get() on:input=move |ev| current.set(event_target_value(&ev)) />
            <label for="new-password">"New password"</label>
            <input id="new-password" type="password" autocomplete="new-password" minlength="8" maxlength="128"
                prop:value=move || new.get() on:input=move |ev| new.set(event_target_value(&ev)) />
            <button type="submit">"Change password"</button>
            <StatusLine status=status />
        </form>
    }
}
