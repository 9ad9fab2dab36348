//! REST calls to `/api/v1`, typed with the shared `chat-api` crate so the app and the server cannot drift.
//!
//! Every authenticated call carries the session's access token. A 401 refreshes the session once and
//! retries, so an access token that expired while the tab slept never reaches the user as an error.

use chat_api::{
    ApiToken, ApiTokenList, AuditPage, Ban, BanList, BanRequest, CreateApiTokenRequest, CreateIncomingHookRequest,
    CreateInviteRequest, CreateRoomRequest, CreatedApiToken, CreatedIncomingHook, DeleteAccountRequest,
    EditMessageRequest, IncomingHook, IncomingHookList, Invite, InviteList, InvitePreview, LoginRequest, Member,
    MemberList, Message, MessagePage, Problem, ReadMarkerRequest, RefreshRequest, RegisterRequest, Room, RoomPage,
    SessionList, TokenResponse, UpdateMeRequest, UpdateMemberRequest, UpdateRoomRequest, User, UserList,
    UsernameRequest, WsTicket,
};
use chat_api::{
    CreateWebhookRequest, CreatedWebhook, UpdateWebhookRequest, Webhook, WebhookDelivery, WebhookDeliveryList,
    WebhookList,
};
use gloo_net::http::{Request, RequestBuilder, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::session::Session;

/// Where the API lives: the page's own origin (the backend serves the SPA).
pub const API: &str = "/api/v1";

/// A failed call, as the user should hear of it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// The HTTP status; 0 when the server could not be reached at all.
    pub status: u16,
    /// The problem's stable `code` (`network` when unreachable).
    pub code: String,
    /// A sentence for people.
    pub detail: String,
}

impl ApiError {
    fn network(err: impl std::fmt::Display) -> Self {
        ApiError { status: 0, code: "network".into(), detail: format!("The server cannot be reached ({err}).") }
    }

    /// The server answered with an error status: read its problem+json body.
    async fn from_response(resp: Response) -> Self {
        let status = resp.status();
        match resp.json::<Problem>().await {
            Ok(p) => ApiError { status, detail: field_detail(&p), code: p.code },
            Err(_) => ApiError { status, code: "http_error".into(), detail: format!("The server answered {status}.") },
        }
    }

    pub fn is_unauthorized(&self) -> bool {
        self.status == 401
    }
}

/// The problem's detail, with the first field error when there is one ("body: must not be empty").
fn field_detail(p: &Problem) -> String {
    match p.errors.as_ref().and_then(|e| e.first()) {
        Some(f) => format!("{}: {}", f.field, f.message),
        None => p.detail.clone(),
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.detail)
    }
}

/// Sends a request built by `build` and decodes a JSON answer (`None` for 204).
async fn send<R: DeserializeOwned>(
    builder: RequestBuilder,
    body: Option<&impl Serialize>,
) -> Result<Option<R>, ApiError> {
    let request = match body {
        Some(b) => builder.json(b).map_err(ApiError::network)?,
        None => builder.build().map_err(ApiError::network)?,
    };
    let resp = request.send().await.map_err(ApiError::network)?;
    if !resp.ok() {
        return Err(ApiError::from_response(resp).await);
    }
    if resp.status() == 204 {
        return Ok(None);
    }
    resp.json::<R>().await.map(Some).map_err(ApiError::network)
}

#[derive(Clone, Copy)]
enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

fn builder(method: Method, path: &str) -> RequestBuilder {
    let url = format!("{API}{path}");
    match method {
        Method::Get => Request::get(&url),
        Method::Post => Request::post(&url),
        Method::Patch => Request::patch(&url),
        Method::Put => Request::put(&url),
        Method::Delete => Request::delete(&url),
    }
}

/// Calls that need no session: they create one.
pub async fn register(req: &RegisterRequest) -> Result<TokenResponse, ApiError> {
    expect_body(send(builder(Method::Post, "/auth/register"), Some(req)).await)
}

pub async fn login(req: &LoginRequest) -> Result<TokenResponse, ApiError> {
    expect_body(send(builder(Method::Post, "/auth/login"), Some(req)).await)
}

pub async fn refresh(refresh_token: &str) -> Result<TokenResponse, ApiError> {
    let req = RefreshRequest { refresh_token: refresh_token.into() };
    expect_body(send(builder(Method::Post, "/auth/refresh"), Some(&req)).await)
}

pub async fn logout(refresh_token: &str) -> Result<(), ApiError> {
    let req = RefreshRequest { refresh_token: refresh_token.into() };
    send::<()>(builder(Method::Post, "/auth/logout"), Some(&req)).await.map(|_| ())
}

fn expect_body<R>(result: Result<Option<R>, ApiError>) -> Result<R, ApiError> {
    result?.ok_or_else(|| ApiError { status: 204, code: "empty".into(), detail: "The server sent no body.".into() })
}

/// The calls made on behalf of the logged-in user.
#[derive(Clone, Copy)]
pub struct Api {
    session: Session,
}

impl Api {
    pub fn new(session: Session) -> Self {
        Api { session }
    }

    /// One authenticated call; on 401, one refresh and one retry.
    async fn call<R: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<Option<R>, ApiError> {
        let token = self.session.access_token().ok_or_else(not_logged_in)?;
        let first = send(authorised(method, path, &token), body).await;
        match first {
            Err(e) if e.is_unauthorized() => {
                let token = self.session.refresh().await?;
                send(authorised(method, path, &token), body).await
            }
            other => other,
        }
    }

    async fn get<R: DeserializeOwned>(&self, path: &str) -> Result<R, ApiError> {
        expect_body(self.call(Method::Get, path, None::<&()>).await)
    }

    async fn post<R: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<R, ApiError> {
        expect_body(self.call(Method::Post, path, Some(body)).await)
    }

    async fn patch<R: DeserializeOwned>(&self, path: &str, body: &impl Serialize) -> Result<R, ApiError> {
        expect_body(self.call(Method::Patch, path, Some(body)).await)
    }

    /// A call answered with 204.
    async fn no_content(&self, method: Method, path: &str, body: Option<&impl Serialize>) -> Result<(), ApiError> {
        self.call::<()>(method, path, body).await.map(|_| ())
    }

    async fn delete_path(&self, path: &str) -> Result<(), ApiError> {
        self.no_content(Method::Delete, path, None::<&()>).await
    }

    pub async fn joined_rooms(&self) -> Result<Vec<Room>, ApiError> {
        self.all_rooms("joined").await
    }

    pub async fn public_rooms(&self) -> Result<Vec<Room>, ApiError> {
        self.all_rooms("public").await
    }

    /// Every page of a room listing (a person is in tens of rooms, not thousands).
    async fn all_rooms(&self, scope: &str) -> Result<Vec<Room>, ApiError> {
        let mut rooms = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/rooms?scope={scope}&limit=100");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={}", js_sys::encode_uri_component(c)));
            }
            let page: RoomPage = self.get(&path).await?;
            rooms.extend(page.items);
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => return Ok(rooms),
            }
        }
    }

    pub async fn room(&self, room_id: i64) -> Result<Room, ApiError> {
        self.get(&format!("/rooms/{room_id}")).await
    }

    pub async fn create_room(&self, req: &CreateRoomRequest) -> Result<Room, ApiError> {
        self.post("/rooms", req).await
    }

    pub async fn join(&self, room_id: i64) -> Result<Room, ApiError> {
        expect_body(self.call(Method::Post, &format!("/rooms/{room_id}/join"), None::<&()>).await)
    }

    pub async fn direct(&self, username: &str) -> Result<Room, ApiError> {
        self.post("/direct", &UsernameRequest { username: username.into() }).await
    }

    /// A page of history: the latest without cursors, else before or after a seq.
    pub async fn messages(
        &self,
        room_id: i64,
        before: Option<i64>,
        after: Option<i64>,
    ) -> Result<MessagePage, ApiError> {
        let mut path = format!("/rooms/{room_id}/messages?limit=50");
        if let Some(b) = before {
            path.push_str(&format!("&before={b}"));
        }
        if let Some(a) = after {
            path = format!("/rooms/{room_id}/messages?limit=100&after={a}");
        }
        self.get(&path).await
    }

    pub async fn edit(&self, room_id: i64, seq: i64, body: &str) -> Result<Message, ApiError> {
        let req = EditMessageRequest { body: body.into() };
        expect_body(self.call(Method::Patch, &format!("/rooms/{room_id}/messages/{seq}"), Some(&req)).await)
    }

    pub async fn delete(&self, room_id: i64, seq: i64) -> Result<(), ApiError> {
        self.call::<()>(Method::Delete, &format!("/rooms/{room_id}/messages/{seq}"), None::<&()>).await.map(|_| ())
    }

    /// Messages of the user's rooms (or of one) containing every word of `q`.
    pub async fn search(&self, q: &str, room_id: Option<i64>) -> Result<chat_api::SearchPage, ApiError> {
        let mut path = format!("/search?limit=50&q={}", js_sys::encode_uri_component(q));
        if let Some(id) = room_id {
            path.push_str(&format!("&room_id={id}"));
        }
        self.get(&path).await
    }

    /// The newest page of notifications (`cursor` for older ones).
    pub async fn notifications(&self, cursor: Option<&str>) -> Result<chat_api::NotificationPage, ApiError> {
        let mut path = "/notifications?limit=50".to_owned();
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", js_sys::encode_uri_component(c)));
        }
        self.get(&path).await
    }

    pub async fn read_notifications(&self, up_to_id: i64) -> Result<(), ApiError> {
        let req = chat_api::ReadNotificationsRequest { up_to_id };
        self.no_content(Method::Post, "/notifications/read", Some(&req)).await
    }

    /// Adds (`add`) or takes back the caller's emoji on a message.
    pub async fn react(&self, room_id: i64, seq: i64, emoji: &str, add: bool) -> Result<(), ApiError> {
        let path = format!("/rooms/{room_id}/messages/{seq}/reactions/{}", js_sys::encode_uri_component(emoji));
        let method = if add { Method::Put } else { Method::Delete };
        self.no_content(method, &path, None::<&()>).await
    }

    pub async fn mark_read(&self, room_id: i64, seq: i64) -> Result<(), ApiError> {
        let req = ReadMarkerRequest { seq };
        self.call::<()>(Method::Post, &format!("/rooms/{room_id}/read"), Some(&req)).await.map(|_| ())
    }

    pub async fn ws_ticket(&self) -> Result<WsTicket, ApiError> {
        expect_body(self.call(Method::Post, "/ws/ticket", None::<&()>).await)
    }

    /// A new display name (`None` goes back to the username).
    pub async fn update_me(&self, display_name: Option<String>) -> Result<User, ApiError> {
        let req = UpdateMeRequest { display_name: Some(display_name) };
        expect_body(self.call(Method::Patch, "/me", Some(&req)).await)
    }

    /// A new password; every other session ends.
    pub async fn change_password(&self, current: String, new: String) -> Result<(), ApiError> {
        let req = chat_api::ChangePasswordRequest { current_password: current, new_password: new };
        self.call::<()>(Method::Post, "/me/password", Some(&req)).await.map(|_| ())
    }

    /// Where the user is signed in.
    pub async fn sessions(&self) -> Result<Vec<chat_api::Session>, ApiError> {
        Ok(self.get::<SessionList>("/me/sessions").await?.items)
    }

    /// Signs one device out.
    pub async fn end_session(&self, id: &str) -> Result<(), ApiError> {
        let path = format!("/me/sessions/{}", js_sys::encode_uri_component(id));
        self.call::<()>(Method::Delete, &path, None::<&()>).await.map(|_| ())
    }

    /// Signs every device out, this one too.
    pub async fn logout_all(&self) -> Result<(), ApiError> {
        self.call::<()>(Method::Post, "/auth/logout-all", None::<&()>).await.map(|_| ())
    }
}

impl Api {
    pub async fn update_room(&self, room_id: i64, req: &UpdateRoomRequest) -> Result<Room, ApiError> {
        self.patch(&format!("/rooms/{room_id}"), req).await
    }

    pub async fn delete_room(&self, room_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}")).await
    }

    pub async fn leave(&self, room_id: i64) -> Result<(), ApiError> {
        self.no_content(Method::Post, &format!("/rooms/{room_id}/leave"), None::<&()>).await
    }

    pub async fn members(&self, room_id: i64) -> Result<Vec<Member>, ApiError> {
        Ok(self.get::<MemberList>(&format!("/rooms/{room_id}/members")).await?.items)
    }

    pub async fn add_member(&self, room_id: i64, username: &str) -> Result<Member, ApiError> {
        self.post(&format!("/rooms/{room_id}/members"), &UsernameRequest { username: username.into() }).await
    }

    pub async fn update_member(
        &self,
        room_id: i64,
        user_id: i64,
        req: &UpdateMemberRequest,
    ) -> Result<Member, ApiError> {
        self.patch(&format!("/rooms/{room_id}/members/{user_id}"), req).await
    }

    pub async fn remove_member(&self, room_id: i64, user_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}/members/{user_id}")).await
    }

    pub async fn bans(&self, room_id: i64) -> Result<Vec<Ban>, ApiError> {
        Ok(self.get::<BanList>(&format!("/rooms/{room_id}/bans")).await?.items)
    }

    pub async fn ban(&self, room_id: i64, user_id: i64, reason: Option<String>) -> Result<Ban, ApiError> {
        self.post(&format!("/rooms/{room_id}/bans"), &BanRequest { user_id, reason }).await
    }

    pub async fn unban(&self, room_id: i64, user_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}/bans/{user_id}")).await
    }

    /// The newest page of the audit log (`cursor` for older ones).
    pub async fn audit(&self, room_id: i64, cursor: Option<&str>) -> Result<AuditPage, ApiError> {
        let mut path = format!("/rooms/{room_id}/audit?limit=50");
        if let Some(c) = cursor {
            path.push_str(&format!("&cursor={}", js_sys::encode_uri_component(c)));
        }
        self.get(&path).await
    }

    pub async fn invites(&self, room_id: i64) -> Result<Vec<Invite>, ApiError> {
        Ok(self.get::<InviteList>(&format!("/rooms/{room_id}/invites")).await?.items)
    }

    pub async fn create_invite(&self, room_id: i64, req: &CreateInviteRequest) -> Result<Invite, ApiError> {
        self.post(&format!("/rooms/{room_id}/invites"), req).await
    }

    pub async fn delete_invite(&self, room_id: i64, code: &str) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}/invites/{}", js_sys::encode_uri_component(code))).await
    }

    pub async fn incoming_hooks(&self, room_id: i64) -> Result<Vec<IncomingHook>, ApiError> {
        Ok(self.get::<IncomingHookList>(&format!("/rooms/{room_id}/hooks")).await?.items)
    }

    pub async fn create_incoming_hook(
        &self,
        room_id: i64,
        req: &CreateIncomingHookRequest,
    ) -> Result<CreatedIncomingHook, ApiError> {
        self.post(&format!("/rooms/{room_id}/hooks"), req).await
    }

    pub async fn delete_incoming_hook(&self, room_id: i64, hook_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}/hooks/{hook_id}")).await
    }

    pub async fn webhooks(&self, room_id: i64) -> Result<Vec<Webhook>, ApiError> {
        Ok(self.get::<WebhookList>(&format!("/rooms/{room_id}/webhooks")).await?.items)
    }

    pub async fn create_webhook(&self, room_id: i64, req: &CreateWebhookRequest) -> Result<CreatedWebhook, ApiError> {
        self.post(&format!("/rooms/{room_id}/webhooks"), req).await
    }

    pub async fn update_webhook(
        &self,
        room_id: i64,
        webhook_id: i64,
        req: &UpdateWebhookRequest,
    ) -> Result<Webhook, ApiError> {
        self.patch(&format!("/rooms/{room_id}/webhooks/{webhook_id}"), req).await
    }

    pub async fn delete_webhook(&self, room_id: i64, webhook_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/rooms/{room_id}/webhooks/{webhook_id}")).await
    }

    pub async fn webhook_deliveries(&self, room_id: i64, webhook_id: i64) -> Result<Vec<WebhookDelivery>, ApiError> {
        let path = format!("/rooms/{room_id}/webhooks/{webhook_id}/deliveries");
        Ok(self.get::<WebhookDeliveryList>(&path).await?.items)
    }

    pub async fn preview_invite(&self, code: &str) -> Result<InvitePreview, ApiError> {
        self.get(&format!("/invites/{}", js_sys::encode_uri_component(code))).await
    }

    pub async fn accept_invite(&self, code: &str) -> Result<Room, ApiError> {
        let path = format!("/invites/{}/accept", js_sys::encode_uri_component(code));
        expect_body(self.call(Method::Post, &path, None::<&()>).await)
    }

    /// People whose username or display name starts with `q` (at most 20).
    pub async fn search_users(&self, q: &str) -> Result<Vec<User>, ApiError> {
        let path = format!("/users?q={}&limit=20", js_sys::encode_uri_component(q));
        Ok(self.get::<UserList>(&path).await?.items)
    }

    pub async fn tokens(&self) -> Result<Vec<ApiToken>, ApiError> {
        Ok(self.get::<ApiTokenList>("/tokens").await?.items)
    }

    pub async fn create_token(&self, req: &CreateApiTokenRequest) -> Result<CreatedApiToken, ApiError> {
        self.post("/tokens", req).await
    }

    pub async fn revoke_token(&self, id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/tokens/{id}")).await
    }

    pub async fn blocks(&self) -> Result<Vec<User>, ApiError> {
        Ok(self.get::<UserList>("/me/blocks").await?.items)
    }

    pub async fn block(&self, username: &str) -> Result<User, ApiError> {
        self.post("/me/blocks", &UsernameRequest { username: username.into() }).await
    }

    pub async fn unblock(&self, user_id: i64) -> Result<(), ApiError> {
        self.delete_path(&format!("/me/blocks/{user_id}")).await
    }

    /// Everything the service holds of the user's, as the JSON text to save.
    pub async fn export(&self) -> Result<String, ApiError> {
        let value: serde_json::Value = self.get("/me/export").await?;
        serde_json::to_string_pretty(&value).map_err(ApiError::network)
    }

    pub async fn delete_account(&self, password: String) -> Result<(), ApiError> {
        self.no_content(Method::Delete, "/me", Some(&DeleteAccountRequest { password })).await
    }
}

fn authorised(method: Method, path: &str, token: &str) -> RequestBuilder {
    builder(method, path).header("Authorization", &format!("Bearer {token}"))
}

fn not_logged_in() -> ApiError {
    ApiError { status: 401, code: "not_logged_in".into(), detail: "Log in first.".into() }
}
