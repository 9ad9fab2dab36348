//! The account's own data: the people the user blocked, a download of everything held about them, and
//! deleting the account.

use chat_api::User;
use leptos::prelude::*;
use wasm_bindgen::JsCast;

use crate::api::Api;
use crate::components::people_search::PeopleSearch;
use crate::components::status::StatusLine;
use crate::session::Session;
use crate::socket::Socket;
use crate::util::confirm;

/// Blocked people cannot start a direct chat with the user nor write in one, and their typing is hidden.
#[component]
pub fn Blocks() -> impl IntoView {
    let api = expect_context::<Api>();
    let blocked = LocalResource::new(move || async move { api.blocks().await });
    let status = RwSignal::new(None::<Result<String, String>>);
    let block = move |username: String| {
        leptos::task::spawn_local(async move {
            match api.block(&username).await {
                Ok(user) => {
                    status.set(Some(Ok(format!("{} is blocked.", user.name()))));
                    blocked.refetch();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let unblock = move |user_id: i64| {
        leptos::task::spawn_local(async move {
            match api.unblock(user_id).await {
                Ok(()) => {
                    status.set(None);
                    blocked.refetch();
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    let row = move |user: User| {
        let (id, name) = (user.id, user.name().to_owned());
        view! {
            <li class="blocked">
                <span>{format!("{name} (@{})", user.username)}</span>
                <button type="button" class="link" aria-label=format!("Unblock {name}") on:click=move |_| unblock(id)>"Unblock"</button>
            </li>
        }
    };
    view! {
        <section class="blocks" aria-labelledby="blocks-title">
            <h3 id="blocks-title">"Blocked people"</h3>
            <p class="hint">"They cannot start a direct chat with you or write in one, and you do not see them typing."</p>
            <PeopleSearch label="Block someone" action="Block" on_pick=block />
            <StatusLine status=status />
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || blocked.get().map(|result| match result {
                    Err(e) => view! { <p class="error">{e.detail}</p> }.into_any(),
                    Ok(list) if list.is_empty() => view! { <p class="hint">"Nobody."</p> }.into_any(),
                    Ok(list) => view! { <ul class="blocked-list">{list.into_iter().map(row).collect_view()}</ul> }.into_any(),
                })}
            </Suspense>
        </section>
    }
}

/// Everything the service holds of the user's, saved as a JSON file.
#[component]
pub fn Export() -> impl IntoView {
    let api = expect_context::<Api>();
    let status = RwSignal::new(None::<Result<String, String>>);
    let download = move |_| {
        leptos::task::spawn_local(async move {
            match api.export().await {
                Ok(json) => match save_file("chat-export.json", &json) {
                    Ok(()) => status.set(Some(Ok("Downloaded chat-export.json.".into()))),
                    Err(()) => status.set(Some(Err("The browser refused the download.".into()))),
                },
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <section class="export" aria-labelledby="export-title">
            <h3 id="export-title">"Your data"</h3>
            <p class="hint">"Your profile, rooms, memberships and every message you wrote, as JSON."</p>
            <button type="button" on:click=download>"Download my data"</button>
            <StatusLine status=status />
        </section>
    }
}

/// Offers `text` as a file download, through a link to a blob.
fn save_file(name: &str, text: &str) -> Result<(), ()> {
    let parts = js_sys::Array::of1(&text.into());
    let options = web_sys::BlobPropertyBag::new();
    options.set_type("application/json");
    let blob = web_sys::Blob::new_with_str_sequence_and_options(&parts, &options).map_err(|_| ())?;
    let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| ())?;
    let document = web_sys::window().and_then(|w| w.document()).ok_or(())?;
    let link: web_sys::HtmlAnchorElement = document.create_element("a").map_err(|_| ())?.unchecked_into();
    link.set_href(&url);
    link.set_download(name);
    link.click();
    let _ = web_sys::Url::revoke_object_url(&url);
    Ok(())
}

/// Deleting the account: the password asked again, then a last confirmation.
#[component]
pub fn DeleteAccount() -> impl IntoView {
    let (api, session, socket) = (expect_context::<Api>(), expect_context::<Session>(), expect_context::<Socket>());
    let password = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Result<String, String>>);
    let delete = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if !confirm("Delete your account? Your messages stay, shown as from a deleted user. This cannot be undone.") {
            return;
        }
        let password = password.get_untracked();
        leptos::task::spawn_local(async move {
            match api.delete_account(password).await {
                Ok(()) => {
                    socket.stop();
                    session.log_out().await;
                }
                Err(e) => status.set(Some(Err(e.detail))),
            }
        });
    };
    view! {
        <form class="danger-zone delete-account" on:submit=delete>
            <h3>"Delete my account"</h3>
            <p class="hint">"Your sessions and API tokens end and you leave every room. Your messages stay, as from a deleted user."</p>
            <label for="delete-password">"Password"</label>
            <input id="delete-password" type="password" required autocomplete="current-password"
                prop:value=move || password.get() on:input=move |ev| password.set(event_target_value(&ev)) />
            <button type="submit" class="danger">"Delete my account"</button>
            <StatusLine status=status />
        </form>
    }
}
