//! Beside the chat: the room's members with their role and presence. For the owner and admins, a menu
//! per member (roles, mute, remove, ban), the list of bans, and "Add people".
//!
//! What a moderator may do to whom mirrors the server's rules (it checks them again): the owner acts on
//! everyone, an admin only on plain members, nobody on themselves, and only the owner sets roles.

use chat_api::{Ban, Member, Role, RoomKind, UpdateMemberRequest};
use chrono::{DateTime, Duration, Utc};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

use crate::api::Api;
use crate::app::Clock;
use crate::components::people_search::PeopleSearch;
use crate::store::Store;
use crate::util::{confirm, full_time, is_muted, muted_until_text, now_utc};

#[component]
pub fn MemberPanel(room_id: Memo<i64>) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let error = RwSignal::new(None::<String>);
    let my_role = Memo::new(move |_| store.my_role(room_id.get()));
    let direct = move || store.rooms.with(|r| r.get(&room_id.get()).is_some_and(|room| room.kind == RoomKind::Direct));
    let moderator = move || !direct() && matches!(my_role.get(), Some(Role::Owner | Role::Admin));

    let sorted = move || {
        let mut list = store.members.with(|m| m.get(&room_id.get()).cloned().unwrap_or_default());
        list.sort_by(|a, b| rank(a.role).cmp(&rank(b.role)).then_with(|| a.user.name().cmp(b.user.name())));
        list
    };
    let add = move |username: String| {
        let id = room_id.get_untracked();
        leptos::task::spawn_local(async move {
            match api.add_member(id, &username).await {
                Ok(member) => {
                    error.set(None);
                    store.member_changed(id, member);
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };

    let navigate = StoredValue::new_local(use_navigate());
    let leave = move |_| {
        if !confirm("Leave the room? You can come back if it is public, or with an invite.") {
            return;
        }
        let id = room_id.get_untracked();
        leptos::task::spawn_local(async move {
            match api.leave(id).await {
                Ok(()) => {
                    store.forget_room(id);
                    navigate.get_value()("/", Default::default());
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    view! {
        <aside class="members" aria-labelledby="members-title">
            <h3 id="members-title">{move || format!("Members ({})", sorted().len())}</h3>
            <Show when=move || error.get().is_some()>
                <p class="error" role="alert">{move || error.get()}</p>
            </Show>
            <Show when=moderator>
                <PeopleSearch label="Add people" action="Add" on_pick=add />
            </Show>
            <ul class="member-list">
                <For each=sorted key=|m| (m.user.id, rank(m.role), m.muted_until, m.user.name().to_owned()) let:member>
                    <MemberRow room_id=room_id member=member my_role=my_role error=error />
                </For>
            </ul>
            <Show when=moderator>
                <BanList room_id=room_id />
            </Show>
            <Show when=move || !direct()>
                <button type="button" class="link danger leave" on:click=leave>"Leave the room"</button>
            </Show>
        </aside>
    }
}

/// Owner first, then admins, then everyone else.
fn rank(role: Role) -> u8 {
    match role {
        Role::Owner => 0,
        Role::Admin => 1,
        Role::Member => 2,
    }
}

fn role_label(role: Role) -> &'static str {
    match role {
        Role::Owner => "owner",
        Role::Admin => "admin",
        Role::Member => "member",
    }
}

/// Whether someone of role `me` may moderate someone of role `them` (the server's `outrank`).
fn outranks(me: Option<Role>, them: Role) -> bool {
    me.is_some_and(|me| rank(me) < rank(them))
}

#[component]
fn MemberRow(
    room_id: Memo<i64>,
    member: Member,
    my_role: Memo<Option<Role>>,
    error: RwSignal<Option<String>>,
) -> impl IntoView {
    let store = expect_context::<Store>();
    let clock = expect_context::<Clock>();
    let user_id = member.user.id;
    let me = store.me.with_untracked(|m| m.as_ref().map(|u| u.id)) == Some(user_id);
    let online =
        move || store.online.with(|o| o.get(&room_id.get()).is_some_and(|l| l.iter().any(|u| u.id == user_id)));
    let muted_until = member.muted_until;
    let muted = move || {
        clock.0.track();
        is_muted(muted_until)
    };
    let role = member.role;
    let can_manage = move || !me && outranks(my_role.get(), role);
    let open = RwSignal::new(false);
    let name = member.user.name().to_owned();
    let menu_id = format!("member-menu-{user_id}");
    view! {
        <li class="member" data-user-id=user_id.to_string()>
            <span class="presence" class:online=online
                aria-label=move || if online() { "online" } else { "offline" } role="img"></span>
            <span class="member-name">{name.clone()}{me.then_some(" (you)")}</span>
            <span class=format!("role role-{}", role_label(role))>{role_label(role)}</span>
            <Show when=can_manage>
                <button type="button" class="link manage" aria-haspopup="true"
                    aria-expanded=move || open.get().to_string() aria-controls=menu_id.clone()
                    aria-label=format!("Manage {name}") on:click=move |_| open.update(|o| *o = !*o)>"⋯"</button>
            </Show>
            <Show when=muted>
                <span class="muted-tag" title=muted_until.map(|t| full_time(&t))>{muted_until_text(muted_until)}</span>
            </Show>
            <Show when=move || open.get() && can_manage()>
                <MemberMenu room_id=room_id member=member.clone() my_role=my_role error=error close=move || open.set(false) />
            </Show>
        </li>
    }
}

/// What the owner or an admin can do to one member.
#[component]
fn MemberMenu(
    room_id: Memo<i64>,
    member: Member,
    my_role: Memo<Option<Role>>,
    error: RwSignal<Option<String>>,
    close: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let user_id = member.user.id;
    let name = member.user.name().to_owned();
    let owner = move || my_role.get() == Some(Role::Owner);
    let muted = is_muted(member.muted_until);
    let banning = RwSignal::new(false);
    let reason = RwSignal::new(String::new());

    // Runs one call; on success applies its member (the frame will say the same) and closes the menu.
    let update = move |req: UpdateMemberRequest| {
        let id = room_id.get_untracked();
        leptos::task::spawn_local(async move {
            match api.update_member(id, user_id, &req).await {
                Ok(member) => {
                    error.set(None);
                    store.member_changed(id, member);
                    if req.role == Some(Role::Owner) {
                        // The old owner is an admin now: the frame brings it; fetch to be sure at once.
                        if let Ok(list) = api.members(id).await {
                            store.set_members(id, list);
                        }
                    }
                    close();
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    let set_role = move |role: Role| update(UpdateMemberRequest { role: Some(role), muted_until: None });
    let mute = move |until: Option<DateTime<Utc>>| update(UpdateMemberRequest { role: None, muted_until: Some(until) });
    let mute_for = move |hours: i64| mute(Some(now_utc() + Duration::hours(hours)));
    let transfer_name = name.clone();
    let transfer = move |_| {
        if confirm(&format!("Make {transfer_name} the owner? You become an admin.")) {
            set_role(Role::Owner);
        }
    };
    let remove_name = name.clone();
    let remove = move |_| {
        if !confirm(&format!("Remove {remove_name} from the room?")) {
            return;
        }
        let id = room_id.get_untracked();
        leptos::task::spawn_local(async move {
            match api.remove_member(id, user_id).await {
                Ok(()) => store.member_left(id, user_id),
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    let ban = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let id = room_id.get_untracked();
        let why = Some(reason.get_untracked().trim().to_owned()).filter(|r| !r.is_empty());
        leptos::task::spawn_local(async move {
            match api.ban(id, user_id, why).await {
                Ok(_) => {
                    store.member_left(id, user_id);
                    store.bans_changed.update(|n| *n += 1);
                }
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    let is_admin = member.role == Role::Admin;
    view! {
        <div class="member-menu" id=format!("member-menu-{user_id}") role="group" aria-label=format!("Manage {name}")>
            <Show when=owner>
                {if is_admin {
                    view! { <button type="button" on:click=move |_| set_role(Role::Member)>"Make member"</button> }.into_any()
                } else {
                    view! { <button type="button" on:click=move |_| set_role(Role::Admin)>"Make admin"</button> }.into_any()
                }}
                <button type="button" on:click=transfer.clone()>"Transfer ownership"</button>
            </Show>
            {if muted {
                view! { <button type="button" on:click=move |_| mute(None)>"Unmute"</button> }.into_any()
            } else {
                view! {
                    <span class="mute-choices" role="group" aria-label="Mute">
                        "Mute: "
                        <button type="button" on:click=move |_| mute_for(1)>"1 h"</button>
                        <button type="button" on:click=move |_| mute_for(8)>"8 h"</button>
                        <button type="button" on:click=move |_| mute_for(24)>"24 h"</button>
                        <button type="button" on:click=move |_| mute(Some(until_unmuted()))>"Until unmuted"</button>
                    </span>
                }.into_any()
            }}
            <button type="button" class="danger" on:click=remove>"Remove"</button>
            <button type="button" class="danger" aria-expanded=move || banning.get().to_string()
                on:click=move |_| banning.update(|b| *b = !*b)>"Ban…"</button>
            <Show when=move || banning.get()>
                <form class="ban-form" on:submit=ban>
                    <label for=format!("ban-reason-{user_id}")>"Reason (optional)"</label>
                    <input id=format!("ban-reason-{user_id}") maxlength="500" prop:value=move || reason.get()
                        on:input=move |ev| reason.set(event_target_value(&ev)) />
                    <button type="submit" class="danger">"Ban"</button>
                </form>
            </Show>
        </div>
    }
}

/// "Until unmuted": a mute that ends only when a moderator lifts it (a century, as the API takes a time).
fn until_unmuted() -> DateTime<Utc> {
    now_utc() + Duration::days(36_500)
}

/// The people banned from the room, each with "Unban".
#[component]
fn BanList(room_id: Memo<i64>) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let bans = LocalResource::new(move || {
        let id = room_id.get();
        store.bans_changed.track();
        async move { api.bans(id).await }
    });
    let error = RwSignal::new(None::<String>);
    let unban = move |user_id: i64| {
        let id = room_id.get_untracked();
        leptos::task::spawn_local(async move {
            match api.unban(id, user_id).await {
                Ok(()) => bans.refetch(),
                Err(e) => error.set(Some(e.detail)),
            }
        });
    };
    let row = move |ban: Ban| {
        let user_id = ban.user.id;
        let name = ban.user.name().to_owned();
        let why = ban.reason.clone().map(|r| format!(": {r}")).unwrap_or_default();
        view! {
            <li class="ban">
                <span>{format!("{name}{why}")}</span>
                <span class="hint">{format!("by {}", ban.banned_by.name())}</span>
                <button type="button" class="link" aria-label=format!("Unban {name}") on:click=move |_| unban(user_id)>"Unban"</button>
            </li>
        }
    };
    view! {
        <h4 id="bans-title">"Banned"</h4>
        <p class="error" role="alert">{move || error.get()}</p>
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || bans.get().map(|result| match result {
                Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                Ok(list) if list.is_empty() => view! { <p class="hint">"Nobody."</p> }.into_any(),
                Ok(list) => view! {
                    <ul class="bans" aria-labelledby="bans-title">{list.into_iter().map(row).collect_view()}</ul>
                }.into_any(),
            })}
        </Suspense>
    }
}
