//! An invite link opened in the browser (`/invite/{code}`): which room it leads to, and "Join". Signed
//! out, the shell sends the user to log in first and back here after.

use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_params_map};

use crate::api::Api;
use crate::socket::Socket;
use crate::store::Store;

#[component]
pub fn InvitePage() -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let params = use_params_map();
    let code = move || params.with(|p| p.get("code")).unwrap_or_default();
    let preview = LocalResource::new(move || {
        let code = code();
        async move { api.preview_invite(&code).await }
    });
    let error = RwSignal::new(None::<String>);
    let busy = RwSignal::new(false);
    let navigate = use_navigate();
    let join = move |_| {
        busy.set(true);
        let navigate = navigate.clone();
        leptos::task::spawn_local(async move {
            match api.accept_invite(&code()).await {
                Ok(room) => {
                    let id = room.id;
                    store.upsert_room(room);
                    socket.subscribe(id);
                    navigate(&format!("/rooms/{id}"), Default::default());
                }
                Err(e) => {
                    busy.set(false);
                    error.set(Some(e.detail));
                }
            }
        });
    };
    view! {
        <section class="invite-page" aria-labelledby="invite-title">
            <Suspense fallback=|| view! { <p class="loading">"Loading the invitation…"</p> }>
                {move || preview.get().map(|result| match result {
                    Err(e) => view! {
                        <h2 id="invite-title">"This invite link does not work"</h2>
                        <p class="error" role="alert">{e.detail}</p>
                        <a href="/">"Back to the chats"</a>
                    }.into_any(),
                    Ok(invite) => {
                        let room = invite.room;
                        let joined = store.rooms.with_untracked(|r| r.contains_key(&room.id));
                        view! {
                            <h2 id="invite-title">{format!("You are invited to {}", room.name)}</h2>
                            <p class="topic">{room.topic.clone()}</p>
                            <p class="hint">{format!("{} members", room.member_count)}</p>
                            <p class="error" role="alert">{move || error.get()}</p>
                            <button type="button" class="primary" disabled=move || busy.get() on:click=join.clone()>
                                {if joined { "Open the room" } else { "Join" }}
                            </button>
                        }.into_any()
                    }
                })}
            </Suspense>
        </section>
    }
}
