//! The connection banner: connected, connecting, reconnecting in N s (with "retry now"), offline.

use leptos::prelude::*;

use crate::app::Clock;
use crate::socket::{ConnState, Socket};

#[component]
pub fn ConnectionBanner() -> impl IntoView {
    let socket = expect_context::<Socket>();
    let clock = expect_context::<Clock>();
    let state_name = move || match socket.state.get() {
        ConnState::Idle => "idle",
        ConnState::Connecting => "connecting",
        ConnState::Connected => "connected",
        ConnState::Waiting { .. } => "reconnecting",
        ConnState::Offline => "offline",
    };
    let text = move || match socket.state.get() {
        ConnState::Idle | ConnState::Connecting => "Connecting…".to_string(),
        ConnState::Connected => "Connected".to_string(),
        ConnState::Waiting { retry_at_ms } => {
            let seconds = ((retry_at_ms - clock.0.get()) / 1000.0).ceil().max(0.0);
            format!("Connection lost. Reconnecting in {seconds} s…")
        }
        ConnState::Offline => "You are offline. Messages you send wait until the network is back.".to_string(),
    };
    view! {
        <div class="banner" role="status" aria-live="polite" data-state=state_name
            data-reconnects=move || socket.reconnects.get().to_string()
            data-last-close=move || socket.last_close.get().map(|c| c.to_string())>
            <span class="dot" aria-hidden="true"></span>
            <span class="banner-text">{text}</span>
            <Show when=move || matches!(socket.state.get(), ConnState::Waiting { .. })>
                <button type="button" class="link" on:click=move |_| socket.connect_now()>"Retry now"</button>
            </Show>
        </div>
    }
}
