//! A room's incoming hooks, in its settings (owner and admins): make one (its URL shown once, to paste into
//! a CI job or an alerting tool that speaks Slack's format), see who made each and when it was last used,
//! delete one (its URL stops at once).

use chat_api::{CreateIncomingHookRequest, CreatedIncomingHook, IncomingHook};
use leptos::prelude::*;

use crate::api::Api;
use crate::components::shown_once::ShownOnce;
use crate::components::status::StatusLine;
use crate::util::{full_time, page_origin};

#[component]
pub fn IncomingHooks(room_id: Memo<i64>) -> impl IntoView {
    let api = expect_context::<Api>();
    let hooks = LocalResource::new(move || {
        let id = room_id.get();
        async move { api.incoming_hooks(id).await }
    });
    let name = RwSignal::new(String::new());
    let created = RwSignal::new(None::<CreatedIncomingHook>);
    let status = RwSignal::new(None::<Result<String, String>>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = CreateIncomingHookRequest { name: name.get_untracked() };
        leptos::task::spawn_local(async move {
            match api.create_incoming_hook(room_id.get_untracked(), &req).await {
                Ok(hook) => {
                    created.set(Some(hook));
                    name.set(String::new());
                    status.set(None);
                    hooks.refetch();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let delete = move |id: i64| {
        leptos::task::spawn_local(async move {
            match api.delete_incoming_hook(room_id.get_untracked(), id).await {
                Ok(()) => hooks.refetch(),
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <section class="incoming-hooks" aria-labelledby="hooks-title">
            <h3 id="hooks-title">"Incoming hooks"</h3>
            <p class="hint">"Tools that post to Slack (CI, alerting, monitoring) can post here: give them a hook's URL. \
                Their messages are yours, shown with the hook's name."</p>
            <form class="hook-form" on:submit=create>
                <label for="hook-name">"Hook name"</label>
                <input id="hook-name" required maxlength="64" placeholder="CI" prop:value=move || name.get()
                    on:input=move |ev| name.set(event_target_value(&ev)) />
                <button type="submit">"Create hook"</button>
            </form>
            <Show when=move || created.with(Option::is_some)>
                <HookUrl created=created />
            </Show>
            <StatusLine status=status />
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || hooks.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"No incoming hooks."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="hook-list">
                            {list.into_iter().map(|hook| view! { <HookRow hook=hook delete=delete /> }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// The new hook's URL, once: it holds the secret.
#[component]
fn HookUrl(created: RwSignal<Option<CreatedIncomingHook>>) -> impl IntoView {
    let url = move || created.with(|c| c.as_ref().map(|h| format!("{}{}", page_origin(), h.url))).unwrap_or_default();
    let message = move || {
        let name = created.with(|c| c.as_ref().map(|h| h.name.clone())).unwrap_or_default();
        format!("The URL of “{name}”: copy it now, it is not shown again.")
    };
    view! { <ShownOnce message=message value=url label="The new hook's URL" done=move |()| created.set(None) /> }
}

#[component]
fn HookRow(hook: IncomingHook, delete: impl Fn(i64) + Copy + Send + Sync + 'static) -> impl IntoView {
    let id = hook.id;
    let used = hook.last_used_at.map_or_else(|| "never used".to_owned(), |t| format!("last used {}", full_time(&t)));
    let about = format!("by {}, made {}; {used}", hook.created_by.name(), full_time(&hook.created_at));
    let label = format!("Delete {}", hook.name);
    view! {
        <li class="hook">
            <span class="hook-name">{hook.name}</span>
            <span class="hint">{about}</span>
            <button type="button" class="danger" aria-label=label on:click=move |_| delete(id)>"Delete"</button>
        </li>
    }
}
