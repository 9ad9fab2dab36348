//! Small browser helpers: time, randomness, storage, formatting.

use chrono::{DateTime, Utc};
use wasm_bindgen::JsValue;

/// Milliseconds since the epoch, by the browser's clock.
pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// A uniformly random number in `[low, high)`.
pub fn random_between(low: f64, high: f64) -> f64 {
    low + js_sys::Math::random() * (high - low)
}

pub fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok()?
}

/// A `client_id` for a new message: unique per author in practice (time plus 64 random bits).
pub fn new_client_id() -> String {
    let random = (js_sys::Math::random() * 2f64.powi(32)) as u64;
    let more = (js_sys::Math::random() * 2f64.powi(32)) as u64;
    format!("web-{:x}-{:08x}{:08x}", now_ms() as u64, random, more)
}

/// A time of day ("14:05") in the reader's own time zone and locale.
pub fn time_of_day(at: &DateTime<Utc>) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
    let options = js_sys::Object::new();
    let _ = js_sys::Reflect::set(&options, &"hour".into(), &"2-digit".into());
    let _ = js_sys::Reflect::set(&options, &"minute".into(), &"2-digit".into());
    date.to_locale_time_string_with_options("default", &options).into()
}

/// Date and time, for a tooltip.
pub fn full_time(at: &DateTime<Utc>) -> String {
    let date = js_sys::Date::new(&JsValue::from_f64(at.timestamp_millis() as f64));
    date.to_locale_string("default", &JsValue::UNDEFINED).into()
}

/// Whether the page is visible (not a background tab, not a minimised window).
pub fn page_visible() -> bool {
    web_sys::window()
        .and_then(|w| w.document())
        .map(|d| d.visibility_state() == web_sys::VisibilityState::Visible)
        .unwrap_or(true)
}

pub fn browser_online() -> bool {
    web_sys::window().map(|w| w.navigator().on_line()).unwrap_or(true)
}
