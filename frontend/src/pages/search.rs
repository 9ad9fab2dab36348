//! Search (`/search`, or Ctrl+K and `/` anywhere): over all rooms or the one that was open, results
//! newest first with the matched words marked (from the server's offsets, as text: never markup), a
//! click opens the room at the message.

use chat_api::SearchHit;
use leptos::prelude::*;
use leptos_router::components::A;
use leptos_router::hooks::{use_navigate, use_query_map};

use crate::api::Api;
use crate::app::refresh_rooms;
use crate::components::message_parts::jump_to;
use crate::socket::Socket;
use crate::store::Store;
use crate::util::{full_time, shown_name};

#[component]
pub fn SearchPage() -> impl IntoView {
    let (api, store, socket) = (expect_context::<Api>(), expect_context::<Store>(), expect_context::<Socket>());
    let query = use_query_map();
    // The room that was open when search was asked for: offered as the narrower scope.
    let room = query.with_untracked(|q| q.get("room")).and_then(|r| r.parse::<i64>().ok());
    let room_name = room.and_then(|id| store.rooms.with_untracked(|r| r.get(&id).map(|room| room.name.clone())));
    let text = RwSignal::new(String::new());
    let only_room = RwSignal::new(room.is_some());
    let hits = RwSignal::new(None::<Result<Vec<SearchHit>, String>>);
    let run = move || {
        let q = text.get_untracked().trim().to_owned();
        if q.is_empty() {
            return;
        }
        let scope = if only_room.get_untracked() { room } else { None };
        leptos::task::spawn_local(async move {
            let found = api.search(&q, scope).await.map(|page| page.items).map_err(|e| e.detail);
            // A hit can come from a room joined elsewhere (another tab, the API) since the list was
            // fetched: learn it first, so the hit can name it and opening it subscribes.
            let unknown = found.as_ref().is_ok_and(|list| {
                store.rooms.with_untracked(|known| list.iter().any(|hit| !known.contains_key(&hit.message.room_id)))
            });
            if unknown {
                refresh_rooms(store, socket, api).await;
            }
            hits.set(Some(found));
        });
    };
    let input = NodeRef::<leptos::html::Input>::new();
    Effect::new(move |_| {
        if let Some(el) = input.get() {
            let _ = el.focus();
        }
    });
    view! {
        <section class="settings search" aria-labelledby="search-title">
            <header class="room-header">
                <A href="/" attr:class="back" attr:aria-label="Back to the rooms">"‹"</A>
                <h2 id="search-title">"Search"</h2>
            </header>
            <form class="search-form" role="search" on:submit=move |ev| { ev.prevent_default(); run(); }>
                <label for="search-input">"Search messages"</label>
                <input id="search-input" type="search" maxlength="200" node_ref=input
                    prop:value=move || text.get() on:input=move |ev| text.set(event_target_value(&ev)) />
                {room_name.map(|name| view! {
                    <label class="check">
                        <input type="checkbox" prop:checked=move || only_room.get()
                            on:change=move |ev| only_room.set(event_target_checked(&ev)) />
                        {format!("Only in {name}")}
                    </label>
                })}
                <button type="submit" class="primary">"Search"</button>
            </form>
            {move || match hits.get() {
                None => ().into_any(),
                Some(Err(why)) => view! { <p class="error" role="alert">{why}</p> }.into_any(),
                Some(Ok(list)) if list.is_empty() => view! { <p class="hint" role="status">"Nothing found."</p> }.into_any(),
                Some(Ok(list)) => view! {
                    <p class="hint" role="status">{format!("{} found", list.len())}</p>
                    <ol class="search-results">
                        {list.into_iter().map(|hit| view! { <Hit hit=hit /> }).collect_view()}
                    </ol>
                }.into_any(),
            }}
        </section>
    }
}

#[component]
fn Hit(hit: SearchHit) -> impl IntoView {
    let (api, store) = (expect_context::<Api>(), expect_context::<Store>());
    let navigate = use_navigate();
    let (room_id, seq) = (hit.message.room_id, hit.message.seq);
    let room = store.rooms.with_untracked(|r| r.get(&room_id).map(|room| room.name.clone())).unwrap_or_default();
    let author = shown_name(&hit.message.author).to_owned();
    let parts = marked(&hit.message.body, &hit.highlights);
    let open = move |_| {
        navigate(&format!("/rooms/{room_id}"), Default::default());
        leptos::task::spawn_local(jump_to(api, store, room_id, seq));
    };
    view! {
        <li class="search-hit">
            <button type="button" class="notification-open" on:click=open>
                <span class="what">{format!("{author} in {room}")}</span>
                <span class="excerpt">
                    {parts.into_iter().map(|(text, mark)| if mark {
                        view! { <mark>{text}</mark> }.into_any()
                    } else {
                        view! { <span>{text}</span> }.into_any()
                    }).collect_view()}
                </span>
                <time datetime=hit.message.created_at.to_rfc3339()>{full_time(&hit.message.created_at)}</time>
            </button>
        </li>
    }
}

/// Cuts `body` into pieces at the highlights' character offsets: (text, marked). Offsets out of range or
/// overlapping are ignored rather than trusted.
fn marked(body: &str, highlights: &[[i64; 2]]) -> Vec<(String, bool)> {
    let chars: Vec<char> = body.chars().collect();
    let mut parts = Vec::new();
    let mut at = 0usize;
    for [start, end] in highlights {
        let (start, end) = (*start as usize, (*end as usize).min(chars.len()));
        if start < at || start >= end {
            continue;
        }
        parts.push((chars[at..start].iter().collect(), false));
        parts.push((chars[start..end].iter().collect(), true));
        at = end;
    }
    parts.push((chars[at..].iter().collect(), false));
    parts.retain(|(text, _): &(String, bool)| !text.is_empty());
    parts
}
