//! A room's outgoing webhooks, in its settings (owner and admins): make one (a URL and the events it wants;
//! its signing secret shown once), turn one off and on, see its recent deliveries with their status, delete
//! one.

use chat_api::{
    CreateWebhookRequest, CreatedWebhook, UpdateWebhookRequest, Webhook, WebhookDelivery, WebhookEventType,
};
use leptos::prelude::*;

use crate::api::Api;
use crate::components::shown_once::ShownOnce;
use crate::components::status::StatusLine;
use crate::util::full_time;

#[component]
pub fn Webhooks(room_id: Memo<i64>) -> impl IntoView {
    let api = expect_context::<Api>();
    let webhooks = LocalResource::new(move || {
        let id = room_id.get();
        async move { api.webhooks(id).await }
    });
    let url = RwSignal::new(String::new());
    let events = RwSignal::new(vec![WebhookEventType::MessageCreated]);
    let created = RwSignal::new(None::<CreatedWebhook>);
    let status = RwSignal::new(None::<Result<String, String>>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = CreateWebhookRequest { url: url.get_untracked(), events: events.get_untracked() };
        leptos::task::spawn_local(async move {
            match api.create_webhook(room_id.get_untracked(), &req).await {
                Ok(webhook) => {
                    created.set(Some(webhook));
                    url.set(String::new());
                    status.set(None);
                    webhooks.refetch();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let changed = move |result: Result<(), String>| match result {
        Ok(()) => webhooks.refetch(),
        Err(e) => status.set(Some(Err(e))),
    };
    view! {
        <section class="webhooks" aria-labelledby="webhooks-title">
            <h3 id="webhooks-title">"Webhooks"</h3>
            <p class="hint">"Other systems can hear this room: each event you choose is POSTed to the URL, \
                signed the Standard Webhooks way, retried for 3 days when it fails."</p>
            <form class="webhook-form" on:submit=create>
                <label for="webhook-url">"Webhook URL"</label>
                <input id="webhook-url" type="url" required maxlength="2048" placeholder="https://example.org/chat-events"
                    prop:value=move || url.get() on:input=move |ev| url.set(event_target_value(&ev)) />
                <fieldset class="webhook-events">
                    <legend>"Events"</legend>
                    {WebhookEventType::ALL.into_iter().map(|event| view! { <EventChoice event=event chosen=events /> }).collect_view()}
                </fieldset>
                <button type="submit" disabled=move || events.with(Vec::is_empty)>"Create webhook"</button>
            </form>
            <Show when=move || created.with(Option::is_some)>
                <WebhookSecret created=created />
            </Show>
            <StatusLine status=status />
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || webhooks.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"No webhooks."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="webhook-list">
                            {list.into_iter().map(|webhook| view! {
                                <WebhookRow room_id=room_id webhook=webhook changed=changed />
                            }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// One event type's checkbox.
#[component]
fn EventChoice(event: WebhookEventType, chosen: RwSignal<Vec<WebhookEventType>>) -> impl IntoView {
    let toggle = move |ev: leptos::ev::Event| {
        let on = event_target_checked(&ev);
        chosen.update(|list| {
            list.retain(|e| *e != event);
            if on {
                list.push(event);
            }
        });
    };
    view! {
        <label class="webhook-event">
            <input type="checkbox" prop:checked=move || chosen.with(|list| list.contains(&event)) on:change=toggle />
            {event.as_str()}
        </label>
    }
}

/// The new webhook's signing secret, once.
#[component]
fn WebhookSecret(created: RwSignal<Option<CreatedWebhook>>) -> impl IntoView {
    let secret = move || created.with(|c| c.as_ref().map(|w| w.secret.clone())).unwrap_or_default();
    let message = move || {
        let url = created.with(|c| c.as_ref().map(|w| w.url.clone())).unwrap_or_default();
        format!("The signing secret of {url}: copy it now, it is not shown again.")
    };
    view! { <ShownOnce message=message value=secret label="The new webhook's signing secret" done=move |()| created.set(None) /> }
}

#[component]
fn WebhookRow(
    room_id: Memo<i64>,
    webhook: Webhook,
    changed: impl Fn(Result<(), String>) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let api = expect_context::<Api>();
    let (id, enabled) = (webhook.id, webhook.enabled);
    let events = webhook.events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ");
    let state = match (enabled, webhook.pending) {
        (false, _) => "off".to_owned(),
        (true, 0) => "on".to_owned(),
        (true, n) => format!("on, {n} waiting"),
    };
    let about = format!("{events}; by {}, made {}", webhook.created_by.name(), full_time(&webhook.created_at));
    let toggle = move |_| {
        let req = UpdateWebhookRequest { enabled: Some(!enabled), ..Default::default() };
        leptos::task::spawn_local(async move {
            changed(api.update_webhook(room_id.get_untracked(), id, &req).await.map(|_| ()).map_err(|e| e.detail));
        });
    };
    let delete = move |_| {
        leptos::task::spawn_local(async move {
            changed(api.delete_webhook(room_id.get_untracked(), id).await.map_err(|e| e.detail));
        });
    };
    let shown = RwSignal::new(false);
    let url = webhook.url.clone();
    view! {
        <li class="webhook" class:off=!enabled>
            <span class="webhook-url">{webhook.url}</span>
            <span class="webhook-state">{state}</span>
            <span class="hint">{about}</span>
            <span class="webhook-actions">
                <button type="button" on:click=move |_| shown.update(|s| *s = !*s) attr:aria-expanded=move || shown.get().to_string()>
                    "Deliveries"
                </button>
                <button type="button" on:click=toggle aria-label=format!("{} {url}", if enabled { "Turn off" } else { "Turn on" })>
                    {if enabled { "Turn off" } else { "Turn on" }}
                </button>
                <button type="button" class="danger" on:click=delete>"Delete"</button>
            </span>
            <Show when=move || shown.get()>
                <Deliveries room_id=room_id webhook_id=id />
            </Show>
        </li>
    }
}

/// How often an open list of deliveries is read again: an attempt made while it is open shows up.
const DELIVERIES_REFRESH: std::time::Duration = std::time::Duration::from_secs(2);

/// The webhook's recent attempts, newest first, kept current while shown.
#[component]
fn Deliveries(room_id: Memo<i64>, webhook_id: i64) -> impl IntoView {
    let api = expect_context::<Api>();
    let list = LocalResource::new(move || {
        let room = room_id.get();
        async move { api.webhook_deliveries(room, webhook_id).await }
    });
    // An event sent just before the list was opened may still be on its way (its result is recorded when
    // the receiver answers): read the list again while it is open.
    if let Ok(refresh) = set_interval_with_handle(move || list.refetch(), DELIVERIES_REFRESH) {
        on_cleanup(move || refresh.clear());
    }
    view! {
        // A transition, not a suspense: a refresh keeps the rows on screen instead of "Loading…".
        <Transition fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || list.get().map(|result| match result {
                Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                Ok(items) if items.is_empty() => view! { <p class="hint">"Nothing sent yet."</p> }.into_any(),
                Ok(items) => view! {
                    <table class="deliveries">
                        <thead><tr><th>"When"</th><th>"Event"</th><th>"Attempt"</th><th>"Result"</th><th>"Time"</th></tr></thead>
                        <tbody>{items.into_iter().map(|d| view! { <DeliveryRow delivery=d /> }).collect_view()}</tbody>
                    </table>
                }.into_any(),
            })}
        </Transition>
    }
}

#[component]
fn DeliveryRow(delivery: WebhookDelivery) -> impl IntoView {
    let ok = delivery.status_code.is_some_and(|s| (200..300).contains(&s));
    let result = match (delivery.status_code, delivery.error) {
        (Some(code), _) => code.to_string(),
        (None, Some(error)) => error,
        (None, None) => "no answer".to_owned(),
    };
    view! {
        <tr class="delivery" class:failed=!ok>
            <td>{full_time(&delivery.attempted_at)}</td>
            <td>{delivery.event_type.as_str()}</td>
            <td>{delivery.attempt}</td>
            <td class="delivery-result">{result}</td>
            <td>{format!("{} ms", delivery.duration_ms)}</td>
        </tr>
    }
}
