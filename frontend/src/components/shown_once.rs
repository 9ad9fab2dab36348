//! A secret shown once (a new API token, a new incoming hook's URL): the text to copy, a Copy button, and
//! Done, after which it is gone for good.

use leptos::prelude::*;

use crate::util::copy_text;

/// `message` says what it is; `value` is the secret; `label` names the field for screen readers.
#[component]
pub fn ShownOnce(
    #[prop(into)] message: Signal<String>,
    #[prop(into)] value: Signal<String>,
    label: &'static str,
    #[prop(into)] done: Callback<()>,
) -> impl IntoView {
    let copied = RwSignal::new(false);
    view! {
        <div class="secret" role="status">
            <p>{message}</p>
            <input class="token-secret" readonly aria-label=label prop:value=value />
            <button type="button" on:click=move |_| copied.set(copy_text(&value.get()))>
                {move || if copied.get() { "Copied" } else { "Copy" }}
            </button>
            <button type="button" class="link" on:click=move |_| done.run(())>"Done"</button>
        </div>
    }
}
