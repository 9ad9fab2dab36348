//! Small browser helpers: time, randomness, storage, formatting.

use chrono::{DateTime, Utc};
use wasm_bindgen::{JsCast, JsValue};

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

/// The reader's local calendar day of a time.
fn local_day(ms: f64) -> (u32, u32, u32) {
    let date = js_sys::Date::new(&JsValue::from_f64(ms));
    (date.get_full_year(), date.get_month(), date.get_date())
}

/// A day heading in the reader's time zone: "Today", "Yesterday", else the date in their locale
/// ("Friday, 4 December 2026").
pub fn day_label(at: &DateTime<Utc>) -> String {
    let ms = at.timestamp_millis() as f64;
    let day = local_day(ms);
    if day == local_day(now_ms()) {
        return "Today".into();
    }
    if day == local_day(now_ms() - 86_400_000.0) {
        return "Yesterday".into();
    }
    let options = js_sys::Object::new();
    for (key, value) in [("weekday", "long"), ("year", "numeric"), ("month", "long"), ("day", "numeric")] {
        let _ = js_sys::Reflect::set(&options, &key.into(), &value.into());
    }
    js_sys::Date::new(&JsValue::from_f64(ms)).to_locale_date_string("default", &options).into()
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

/// Whether a mute (`muted_until`) is still running, by the browser's clock.
pub fn is_muted(until: Option<DateTime<Utc>>) -> bool {
    until.is_some_and(|t| t.timestamp_millis() as f64 > now_ms())
}

/// A mute's end for people: "muted until 14:05", with the date when not today, or "muted until unmuted"
/// for a mute set without an end (a century ahead).
pub fn muted_until_text(until: Option<DateTime<Utc>>) -> String {
    let Some(until) = until else { return String::new() };
    let left_ms = until.timestamp_millis() as f64 - now_ms();
    if left_ms > 5.0 * 365.0 * 86_400_000.0 {
        return "muted until unmuted".into();
    }
    if left_ms > 12.0 * 3_600_000.0 {
        return format!("muted until {}", full_time(&until));
    }
    format!("muted until {}", time_of_day(&until))
}

/// Asks the user a yes-or-no question (the browser's own dialog: keyboard and screen reader friendly).
pub fn confirm(question: &str) -> bool {
    web_sys::window().and_then(|w| w.confirm_with_message(question).ok()).unwrap_or(false)
}

/// The page's origin ("https://chat.example.org"), for links to share.
pub fn page_origin() -> String {
    web_sys::window().and_then(|w| w.location().origin().ok()).unwrap_or_default()
}

/// Puts text on the clipboard; false where the browser does not allow it (then the text is on screen
/// to copy by hand).
pub fn copy_text(text: &str) -> bool {
    let Some(window) = web_sys::window() else { return false };
    let navigator: JsValue = window.navigator().into();
    let Ok(clipboard) = js_sys::Reflect::get(&navigator, &"clipboard".into()) else { return false };
    let Ok(write) = js_sys::Reflect::get(&clipboard, &"writeText".into()) else { return false };
    let Ok(write) = write.dyn_into::<js_sys::Function>() else { return false };
    write.call1(&clipboard, &text.into()).is_ok()
}

/// The name to show for someone: a deleted account's messages read "Deleted user", not `deleted-<id>`.
pub fn shown_name(user: &chat_api::User) -> &str {
    if user.deleted { "Deleted user" } else { user.name() }
}

/// Now, by the browser's clock (chrono's `Utc::now` has no clock to read in wasm32-unknown-unknown).
pub fn now_utc() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(now_ms() as i64).unwrap_or_default()
}
