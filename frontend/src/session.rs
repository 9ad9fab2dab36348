//! The logged-in session: the access token (a JWT, 15 minutes), the single-use refresh token and the user.
//!
//! Kept in `localStorage` under [`STORAGE_KEY`] so a reload or a second tab stays logged in. The access
//! token is refreshed a minute before it expires. Refresh tokens are single-use and the server revokes the
//! whole family when one is presented twice, so before refreshing we re-read storage: another tab may have
//! refreshed already, and its new pair is ours too.

use chat_api::{TokenResponse, User};
use gloo_timers::callback::Timeout;
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::api::{self, ApiError};
use crate::util::{local_storage, now_ms, random_between};

pub const STORAGE_KEY: &str = "chat.session";

/// Refresh this long before the access token expires (plus up to [`REFRESH_JITTER_MS`], so that tabs
/// opened together do not all refresh in the same instant).
const REFRESH_AHEAD_MS: f64 = 60_000.0;
const REFRESH_JITTER_MS: f64 = 20_000.0;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Auth {
    pub access_token: String,
    pub refresh_token: String,
    pub user: User,
    /// When the access token expires, in milliseconds since the epoch (the browser's clock).
    pub expires_at_ms: f64,
    /// How long access tokens live on this server (`ACCESS_TOKEN_TTL`).
    #[serde(default)]
    pub lifetime_ms: f64,
}

impl Auth {
    fn from_response(resp: TokenResponse) -> Self {
        Auth {
            access_token: resp.access_token,
            refresh_token: resp.refresh_token,
            user: resp.user,
            expires_at_ms: now_ms() + resp.expires_in as f64 * 1000.0,
            lifetime_ms: resp.expires_in as f64 * 1000.0,
        }
    }
}

struct Inner {
    refresh_timer: Option<Timeout>,
    /// A refresh is under way: other callers wait for it instead of spending the token twice.
    refreshing: bool,
}

/// The session handle; `Copy`, provided as context.
#[derive(Clone, Copy)]
pub struct Session {
    auth: RwSignal<Option<Auth>>,
    inner: StoredValue<Inner, LocalStorage>,
}

impl Session {
    /// The session stored by an earlier visit, if any.
    pub fn load() -> Self {
        let session = Session {
            auth: RwSignal::new(read_stored()),
            inner: StoredValue::new_local(Inner { refresh_timer: None, refreshing: false }),
        };
        session.schedule_refresh();
        session
    }

    pub fn user(&self) -> Option<User> {
        self.auth.with(|a| a.as_ref().map(|a| a.user.clone()))
    }

    pub fn is_logged_in(&self) -> bool {
        self.auth.with(Option::is_some)
    }

    /// How much longer the access token is valid (0 when logged out or expired).
    pub fn fresh_for_ms(&self) -> f64 {
        self.auth.with_untracked(|a| a.as_ref().map_or(0.0, |a| (a.expires_at_ms - now_ms()).max(0.0)))
    }

    pub fn access_token(&self) -> Option<String> {
        self.auth.with_untracked(|a| a.as_ref().map(|a| a.access_token.clone()))
    }

    /// The user changed their profile: this session (and the other tabs) show the new one.
    pub fn set_user(&self, user: User) {
        let auth = self.auth.get_untracked().map(|auth| Auth { user, ..auth });
        self.set(auth);
    }

    /// Starts a session from a login or register answer.
    pub fn start(&self, resp: TokenResponse) {
        self.set(Some(Auth::from_response(resp)));
    }

    /// Ends the session here and on the server (the refresh token's family is revoked).
    pub async fn log_out(&self) {
        let refresh_token = self.auth.with_untracked(|a| a.as_ref().map(|a| a.refresh_token.clone()));
        self.set(None);
        if let Some(token) = refresh_token {
            // Logged out locally either way; the server forgets the family when it hears of it.
            let _ = api::logout(&token).await;
        }
    }

    /// Another tab changed the stored session: follow it (log in, refresh or log out together).
    pub fn adopt_stored(&self) {
        let stored = read_stored();
        if stored != self.auth.get_untracked() {
            self.auth.set(stored);
            self.schedule_refresh();
        }
    }

    /// A fresh access token: refreshes the session (once, however many callers ask at the same time).
    /// A refresh the server refuses ends the session.
    pub async fn refresh(&self) -> Result<String, ApiError> {
        if self.inner.with_value(|i| i.refreshing) {
            return self.wait_for_refresh().await;
        }
        self.inner.update_value(|i| i.refreshing = true);
        let result = self.refresh_now().await;
        self.inner.update_value(|i| i.refreshing = false);
        result
    }

    async fn refresh_now(&self) -> Result<String, ApiError> {
        let mine = self.auth.get_untracked().ok_or_else(logged_out)?;
        // Another tab may have spent our refresh token already; its pair is in storage.
        if let Some(stored) = read_stored()
            && stored.refresh_token != mine.refresh_token
            && stored.user.id == mine.user.id
            && stored.expires_at_ms > mine.expires_at_ms
        {
            let token = stored.access_token.clone();
            self.set(Some(stored));
            return Ok(token);
        }
        match api::refresh(&mine.refresh_token).await {
            Ok(resp) => {
                let auth = Auth::from_response(resp);
                let token = auth.access_token.clone();
                self.set(Some(auth));
                Ok(token)
            }
            Err(e) if e.status == 401 || e.status == 400 || e.status == 422 => {
                self.set(None);
                Err(e)
            }
            Err(e) => Err(e),
        }
    }

    async fn wait_for_refresh(&self) -> Result<String, ApiError> {
        while self.inner.with_value(|i| i.refreshing) {
            gloo_timers::future::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.access_token().ok_or_else(logged_out)
    }

    fn set(&self, auth: Option<Auth>) {
        write_stored(auth.as_ref());
        self.auth.set(auth);
        self.schedule_refresh();
    }

    /// Refreshes a minute before the access token expires, so sockets and calls never see it expire.
    fn schedule_refresh(&self) {
        let Some((expires_at, lifetime)) =
            self.auth.with_untracked(|a| a.as_ref().map(|a| (a.expires_at_ms, a.lifetime_ms)))
        else {
            self.inner.update_value(|i| i.refresh_timer = None);
            return;
        };
        // Tokens shorter-lived than a few minutes (a test server's) are refreshed at two thirds of their life.
        let lead = (REFRESH_AHEAD_MS + random_between(0.0, REFRESH_JITTER_MS)).min(lifetime / 3.0);
        let due = expires_at - lead;
        let delay = (due - now_ms()).clamp(0.0, i32::MAX as f64) as u32;
        let session = *self;
        let timer = Timeout::new(delay, move || {
            leptos::task::spawn_local(async move {
                // A failure other than a refusal (offline) is retried by the next call that needs a token.
                let _ = session.refresh().await;
            });
        });
        self.inner.update_value(|i| i.refresh_timer = Some(timer));
    }
}

fn logged_out() -> ApiError {
    ApiError { status: 401, code: "logged_out".into(), detail: "You are logged out.".into() }
}

fn read_stored() -> Option<Auth> {
    let raw = local_storage()?.get_item(STORAGE_KEY).ok()??;
    serde_json::from_str(&raw).ok()
}

fn write_stored(auth: Option<&Auth>) {
    let Some(storage) = local_storage() else { return };
    // Storage can be full or disabled; the session then lasts as long as the tab.
    let _ = match auth.and_then(|a| serde_json::to_string(a).ok()) {
        Some(json) => storage.set_item(STORAGE_KEY, &json),
        None => storage.remove_item(STORAGE_KEY),
    };
}
