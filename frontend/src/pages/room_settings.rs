//! A room's settings, for its owner and admins: name, topic and visibility; invite links; incoming hooks
//! (`incoming_hooks.rs`); outgoing webhooks (`webhooks.rs`); the audit log;
//! and, for the owner, deleting the room.

use chat_api::{AuditEntry, CreateInviteRequest, Invite, Role, UpdateRoomRequest, Visibility};
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::Api;
use crate::components::status::StatusLine;
use crate::pages::incoming_hooks::IncomingHooks;
use crate::pages::webhooks::Webhooks;
use crate::store::Store;
use crate::util::{confirm, copy_text, full_time, page_origin};

#[component]
pub fn RoomSettingsPage() -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let params = use_params_map();
    let room_id = Memo::new(move |_| params.with(|p| p.get("id").and_then(|id| id.parse::<i64>().ok())).unwrap_or(0));
    // The role decides what shows; the members may not be loaded yet after a reload.
    Effect::new(move |_| {
        let id = room_id.get();
        store.open_room.set(Some(id));
        if store.members.with_untracked(|m| !m.contains_key(&id)) {
            leptos::task::spawn_local(async move {
                if let Ok(list) = api.members(id).await {
                    store.set_members(id, list);
                }
            });
        }
    });
    let role = Memo::new(move |_| store.my_role(room_id.get()));
    let name = move || store.rooms.with(|r| r.get(&room_id.get()).map(|room| room.name.clone())).unwrap_or_default();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if store.dropped.get().is_some_and(|dropped| dropped == room_id.get_untracked()) {
            navigate("/", Default::default());
        }
    });
    view! {
        <section class="settings room-settings" aria-labelledby="room-settings-title">
            <header class="room-header">
                <A href=move || format!("/rooms/{}", room_id.get()) attr:class="back always" attr:aria-label="Back to the room">"‹"</A>
                <h2 id="room-settings-title">{move || format!("{} · settings", name())}</h2>
            </header>
            {move || match role.get() {
                None => view! { <p class="loading">"Loading…"</p> }.into_any(),
                Some(Role::Member) => view! {
                    <p class="hint">"Only the room's owner and admins change its settings."</p>
                }.into_any(),
                Some(role) => view! {
                    <General room_id=room_id />
                    <Invites room_id=room_id />
                    <IncomingHooks room_id=room_id />
                    <Webhooks room_id=room_id />
                    <AuditLog room_id=room_id />
                    <Show when=move || role == Role::Owner>
                        <DeleteRoom room_id=room_id />
                    </Show>
                }.into_any(),
            }}
        </section>
    }
}

/// Name, topic, public or private.
#[component]
fn General(room_id: Memo<i64>) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let current = store.rooms.with_untracked(|r| r.get(&room_id.get_untracked()).cloned());
    let name = RwSignal::new(current.as_ref().map(|r| r.name.clone()).unwrap_or_default());
    let topic = RwSignal::new(current.as_ref().and_then(|r| r.topic.clone()).unwrap_or_default());
    let private = RwSignal::new(current.as_ref().is_some_and(|r| r.visibility == Visibility::Private));
    let status = RwSignal::new(None::<Result<String, String>>);
    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let topic = topic.get_untracked().trim().to_owned();
        let req = UpdateRoomRequest {
            name: Some(name.get_untracked().trim().to_owned()),
            topic: Some(Some(topic).filter(|t| !t.is_empty())),
            visibility: Some(if private.get_untracked() { Visibility::Private } else { Visibility::Public }),
        };
        leptos::task::spawn_local(async move {
            match api.update_room(room_id.get_untracked(), &req).await {
                Ok(room) => {
                    store.room_changed(room);
                    status.set(Some(Ok("Saved.".into())));
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <form class="room-general" on:submit=save>
            <h3>"Room"</h3>
            <label for="room-name-setting">"Name"</label>
            <input id="room-name-setting" required maxlength="80" prop:value=move || name.get()
                on:input=move |ev| name.set(event_target_value(&ev)) />
            <label for="room-topic-setting">"Topic"</label>
            <input id="room-topic-setting" maxlength="500" prop:value=move || topic.get()
                on:input=move |ev| topic.set(event_target_value(&ev)) />
            <label class="check">
                <input type="checkbox" prop:checked=move || private.get()
                    on:change=move |ev| private.set(event_target_checked(&ev)) />
                "Private (members only; others find it only through an invite)"
            </label>
            <button type="submit">"Save"</button>
            <StatusLine status=status />
        </form>
    }
}

/// Invite links: made with a number of uses and an expiry, copied, revoked.
#[component]
fn Invites(room_id: Memo<i64>) -> impl IntoView {
    let api = expect_context::<Api>();
    let invites = LocalResource::new(move || {
        let id = room_id.get();
        async move { api.invites(id).await }
    });
    let uses = RwSignal::new(String::new());
    let hours = RwSignal::new("168".to_owned());
    let status = RwSignal::new(None::<Result<String, String>>);
    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let req = CreateInviteRequest {
            max_uses: uses.get_untracked().trim().parse().ok(),
            expires_in_hours: hours.get_untracked().parse().ok().filter(|h| *h > 0),
        };
        leptos::task::spawn_local(async move {
            match api.create_invite(room_id.get_untracked(), &req).await {
                Ok(invite) => {
                    let copied = copy_text(&invite_link(&invite.code));
                    let how = if copied { "Link made and copied." } else { "Link made." };
                    status.set(Some(Ok(how.into())));
                    invites.refetch();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let revoke = move |code: String| {
        leptos::task::spawn_local(async move {
            match api.delete_invite(room_id.get_untracked(), &code).await {
                Ok(()) => invites.refetch(),
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <section class="invites" aria-labelledby="invites-title">
            <h3 id="invites-title">"Invite links"</h3>
            <form class="invite-form" on:submit=create>
                <label for="invite-uses">"Uses (empty: no limit)"</label>
                <input id="invite-uses" type="number" min="1" max="1000" prop:value=move || uses.get()
                    on:input=move |ev| uses.set(event_target_value(&ev)) />
                <label for="invite-expiry">"Expires after"</label>
                <select id="invite-expiry" on:change=move |ev| hours.set(event_target_value(&ev))>
                    <option value="1">"1 hour"</option>
                    <option value="24">"1 day"</option>
                    <option value="168" selected>"7 days"</option>
                    <option value="720">"30 days"</option>
                    <option value="0">"Never"</option>
                </select>
                <button type="submit">"Create invite link"</button>
            </form>
            <StatusLine status=status />
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || invites.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"No invite links."</p> }.into_any(),
                    Ok(list) => view! {
                        <ul class="invite-list">
                            {list.into_iter().map(|invite| view! { <InviteRow invite=invite revoke=revoke /> }).collect_view()}
                        </ul>
                    }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn InviteRow(invite: Invite, revoke: impl Fn(String) + Copy + Send + Sync + 'static) -> impl IntoView {
    let link = invite_link(&invite.code);
    let uses = match invite.max_uses {
        Some(max) => format!("{} of {max} uses", invite.uses),
        None => format!("{} uses", invite.uses),
    };
    let expiry = invite.expires_at.map_or_else(|| "never expires".to_owned(), |t| format!("expires {}", full_time(&t)));
    let copied = RwSignal::new(false);
    let to_copy = link.clone();
    let code = invite.code.clone();
    view! {
        <li class="invite">
            <input class="invite-link" readonly aria-label="Invite link" prop:value=link.clone() />
            <span class="hint">{format!("{uses}, {expiry}, by {}", invite.created_by.name())}</span>
            <button type="button" on:click=move |_| copied.set(copy_text(&to_copy))>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
            <button type="button" class="danger" on:click=move |_| revoke(code.clone())>"Revoke"</button>
        </li>
    }
}

/// The link a person opens to join: the app's own `/invite/{code}` page.
fn invite_link(code: &str) -> String {
    format!("{}/invite/{code}", page_origin())
}

/// Every moderation action, newest first, a page at a time.
#[component]
fn AuditLog(room_id: Memo<i64>) -> impl IntoView {
    let api = expect_context::<Api>();
    let entries = RwSignal::new(Vec::<AuditEntry>::new());
    let cursor = RwSignal::new(None::<String>);
    let error = RwSignal::new(None::<String>);
    let load = move |from: Option<String>| {
        leptos::task::spawn_local(async move {
            match api.audit(room_id.get_untracked(), from.as_deref()).await {
                Ok(page) => {
                    entries.update(|e| e.extend(page.items));
                    cursor.set(page.next_cursor);
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    Effect::new(move |_| {
        room_id.track();
        entries.set(Vec::new());
        load(None);
    });
    view! {
        <section class="audit" aria-labelledby="audit-title">
            <h3 id="audit-title">"Audit log"</h3>
            <p class="error" role="alert">{move || error.get()}</p>
            <Show when=move || entries.with(Vec::is_empty)>
                <p class="hint">"Nothing yet."</p>
            </Show>
            <ol class="audit-list">
                {move || entries.get().into_iter().map(|entry| view! {
                    <li>
                        <time datetime=entry.created_at.to_rfc3339()>{full_time(&entry.created_at)}</time>
                        " "
                        <span>{describe(&entry)}</span>
                    </li>
                }).collect_view()}
            </ol>
            <Show when=move || cursor.with(Option::is_some)>
                <button type="button" on:click=move |_| load(cursor.get_untracked())>"Older"</button>
            </Show>
        </section>
    }
}

/// One audit entry as a sentence: "ann banned bob: spam".
fn describe(entry: &AuditEntry) -> String {
    let actor = entry.actor.name();
    let target = entry.target.as_ref().map(|t| t.name().to_owned()).unwrap_or_default();
    let detail = entry.detail.clone().unwrap_or_default();
    let with_detail = |text: String| if detail.is_empty() { text } else { format!("{text}: {detail}") };
    match entry.action.as_str() {
        "room_updated" => with_detail(format!("{actor} changed the room")),
        "member_added" => format!("{actor} added {target}"),
        "member_removed" => format!("{actor} removed {target}"),
        "member_banned" => with_detail(format!("{actor} banned {target}")),
        "member_unbanned" => format!("{actor} unbanned {target}"),
        "role_changed" => format!("{actor} made {target} {detail}"),
        "member_muted" if detail == "unmuted" => format!("{actor} unmuted {target}"),
        "member_muted" => format!("{actor} muted {target} until {detail}"),
        "message_deleted" => format!("{actor} deleted message #{} by {target}", entry.seq.unwrap_or_default()),
        "invite_created" => format!("{actor} created an invite link"),
        "webhook_created" => with_detail(format!("{actor} made a webhook")),
        "webhook_deleted" => with_detail(format!("{actor} deleted a webhook")),
        other => with_detail(format!("{actor}: {other}")),
    }
}

/// Deleting the room, for its owner: asked twice.
#[component]
fn DeleteRoom(room_id: Memo<i64>) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let navigate = use_navigate();
    let status = RwSignal::new(None::<Result<String, String>>);
    let delete = move |_| {
        let name = store.rooms.with_untracked(|r| r.get(&room_id.get_untracked()).map(|room| room.name.clone()));
        let question = format!("Delete {} for everyone? Its messages are gone for good.", name.unwrap_or_default());
        if !confirm(&question) {
            return;
        }
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            let id = room_id.get_untracked();
            match api.delete_room(id).await {
                Ok(()) => {
                    store.forget_room(id);
                    navigate("/", Default::default());
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <section class="danger-zone" aria-labelledby="delete-room-title">
            <h3 id="delete-room-title">"Delete the room"</h3>
            <p class="hint">"Everyone loses the room and its history."</p>
            <button type="button" class="danger" on:click=delete>"Delete room"</button>
            <StatusLine status=status />
        </section>
    }
}
