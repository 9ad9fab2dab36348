//! What a form's last submit did: a confirmation, or the server's words for a refusal.

use leptos::prelude::*;

#[component]
pub fn StatusLine(status: RwSignal<Option<Result<String, String>>>) -> impl IntoView {
    move || match status.get() {
        None => ().into_any(),
        Some(Ok(text)) => view! { <p class="ok" role="status">{text}</p> }.into_any(),
        Some(Err(text)) => view! { <p class="error" role="alert">{text}</p> }.into_any(),
    }
}
