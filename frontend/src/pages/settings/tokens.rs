//! API tokens for the user's bots and scripts: made with a name, scopes and an expiry, the secret shown
//! once with a copy button, listed with when they were last used, revoked.

use chat_api::{ApiToken, CreateApiTokenRequest, CreatedApiToken, Scope};
use leptos::prelude::*;

use crate::api::Api;
use crate::components::shown_once::ShownOnce;
use crate::components::status::StatusLine;
use crate::util::full_time;

#[component]
pub fn ApiTokens() -> impl IntoView {
    let api = expect_context::<Api>();
    let tokens = LocalResource::new(move || async move { api.tokens().await });
    let status = RwSignal::new(None::<Result<String, String>>);
    // The token just made, with its secret: shown until the user dismisses it, never again.
    let created = RwSignal::new(None::<CreatedApiToken>);
    let revoke = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api.revoke_token(id).await {
                Ok(()) => tokens.refetch(),
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <section class="api-tokens" aria-labelledby="tokens-title">
            <h3 id="tokens-title">"API tokens"</h3>
            <p class="hint">"For bots and scripts: send as " <code>"Authorization: Bearer <token>"</code> "."</p>
            <NewToken created=created status=status on_created=move || tokens.refetch() />
            <StatusLine status=status />
            <Show when=move || created.with(Option::is_some)>
                <Secret created=created />
            </Show>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || tokens.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"No API tokens."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="token-list">
                            {list.into_iter().map(|token| view! { <TokenRow token=token revoke=revoke /> }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn NewToken(
    created: RwSignal<Option<CreatedApiToken>>,
    status: RwSignal<Option<Result<String, String>>>,
    on_created: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let api = expect_context::<Api>();
    let name = RwSignal::new(String::new());
    let scopes = RwSignal::new(vec![Scope::RoomsRead, Scope::MessagesRead, Scope::MessagesWrite]);
    let days = RwSignal::new("90".to_owned());
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = CreateApiTokenRequest {
            name: name.get_untracked().trim().to_owned(),
            scopes: scopes.get_untracked(),
            expires_in_days: days.get_untracked().parse().ok().filter(|d| *d > 0),
        };
        leptos::task::spawn_local(async move {
            match api.create_token(&req).await {
                Ok(token) => {
                    status.set(None);
                    name.set(String::new());
                    created.set(Some(token));
                    on_created();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let scope_box = move |scope: Scope, label: &'static str| {
        view! {
            <label class="check">
                <input type="checkbox" prop:checked=move || scopes.with(|s| s.contains(&scope))
                    on:change=move |ev| {
                        let on = event_target_checked(&ev);
                        scopes.update(|s| {
                            s.retain(|x| *x != scope);
                            if on { s.push(scope); }
                        });
                    } />
                {label}
            </label>
        }
    };
    view! {
        <form class="token-form" on:submit=create>
            <label for="token-name">"Name"</label>
            <input id="token-name" required maxlength="64" placeholder="ci-notifier" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev)) />
            <fieldset>
                <legend>"May"</legend>
                {scope_box(Scope::RoomsRead, "list rooms and members (rooms:read)")}
                {scope_box(Scope::MessagesRead, "read messages (messages:read)")}
                {scope_box(Scope::MessagesWrite, "send, edit and delete messages (messages:write)")}
            </fieldset>
            <label for="token-expiry">"Expires after"</label>
            <select id="token-expiry" on:change=move |ev| days.set(event_target_value(&ev))>
                <option value="7">"7 days"</option>
                <option value="30">"30 days"</option>
                <option value="90" selected>"90 days"</option>
                <option value="365">"1 year"</option>
                <option value="0">"Never"</option>
            </select>
            <button type="submit">"Create token"</button>
        </form>
    }
}

/// The new token's secret, once.
#[component]
fn Secret(created: RwSignal<Option<CreatedApiToken>>) -> impl IntoView {
    let message = move || {
        let name = created.with(|c| c.as_ref().map(|t| format!("“{}”", t.name))).unwrap_or_default();
        format!("Your new token {name}: copy it now, it is not shown again.")
    };
    let secret = move || created.with(|c| c.as_ref().map(|t| t.token.clone())).unwrap_or_default();
    view! { <ShownOnce message=message value=secret label="The new token" done=move |()| created.set(None) /> }
}

#[component]
fn TokenRow(token: ApiToken, revoke: impl Fn(i64) + Copy + Send + Sync + 'static) -> impl IntoView {
    let id = token.id;
    let scopes = token.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ");
    let expiry = token.expires_at.map_or_else(|| "never expires".to_owned(), |t| format!("expires {}", full_time(&t)));
    let used = token.last_used_at.map_or_else(|| "never used".to_owned(), |t| format!("last used {}", full_time(&t)));
    let name = token.name.clone();
    view! {
        <li class="token">
            <span class="token-name">{token.name}</span>
            <span class="hint">{format!("{scopes}; {expiry}; {used}")}</span>
            <button type="button" class="danger" aria-label=format!("Revoke {name}") on:click=move |_| revoke(id)>"Revoke"</button>
        </li>
    }
}
