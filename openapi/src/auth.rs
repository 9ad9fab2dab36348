//! Users, sessions (access and refresh tokens) and API tokens for external systems.

use serde::{Deserialize, Serialize};

use chrono::{DateTime, Utc};

/// A person (or the owner of an API token) as every other user sees them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct User {
    pub id: i64,
    /// 3-32 characters of `[a-z0-9_.-]`, stored lowercased; unique. `deleted-<id>` once deleted.
    pub username: String,
    /// The name shown in the UI; the username when none was given; null once the account is deleted.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub display_name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The account was deleted: its messages stay, under `deleted-<id>`.
    #[serde(default)]
    pub deleted: bool,
}

impl User {
    /// The name to show: the display name, else the username.
    pub fn name(&self) -> &str {
        self.display_name.as_deref().unwrap_or(&self.username)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RegisterRequest {
    /// 3-32 characters of `[a-z0-9_.-]` after lowercasing; `Alice` and `alice` are one user.
    #[cfg_attr(feature = "openapi", schema(example = "alice"))]
    pub username: String,
    /// 8-128 characters.
    #[cfg_attr(feature = "openapi", schema(example = "correct horse battery", min_length = 8, max_length = 128))]
    pub password: String,
    /// 1-64 characters; defaults to the username.
    #[serde(default)]
    pub display_name: Option<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct LoginRequest {
    pub username: String,
    pub password: String,
}

/// A refresh token, for `/auth/refresh` and `/auth/logout`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// A new session: a short-lived access token (JWT) and a single-use refresh token.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Always `Bearer`.
    #[cfg_attr(feature = "openapi", schema(example = "Bearer"))]
    pub token_type: String,
    /// Seconds until the access token expires.
    #[cfg_attr(feature = "openapi", schema(example = 900))]
    pub expires_in: i64,
    /// Opaque and single-use: `/auth/refresh` returns a new pair and spends this one.
    /// Presenting a spent refresh token again revokes every token of its family.
    pub refresh_token: String,
    pub user: User,
}

/// What an API token may do. A request with an API token acts as the user who made it,
/// limited to these scopes; a user's own session (JWT) may do everything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub enum Scope {
    /// List and read rooms and their members.
    #[serde(rename = "rooms:read")]
    RoomsRead,
    /// Read message history.
    #[serde(rename = "messages:read")]
    MessagesRead,
    /// Send, edit and delete messages.
    #[serde(rename = "messages:write")]
    MessagesWrite,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::RoomsRead, Scope::MessagesRead, Scope::MessagesWrite];

    /// The name on the wire and in storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::RoomsRead => "rooms:read",
            Scope::MessagesRead => "messages:read",
            Scope::MessagesWrite => "messages:write",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreateApiTokenRequest {
    /// 1-64 characters, to recognise the token later.
    #[cfg_attr(feature = "openapi", schema(example = "ci-notifier", min_length = 1))]
    pub name: String,
    /// At least one scope.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub scopes: Vec<Scope>,
    /// 1-3650 days; the token never expires when absent.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 3650))]
    pub expires_in_days: Option<u32>,
}

/// An API token as listed: the secret is never shown again.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expires_at: Option<DateTime<Utc>>,
    /// The last time a request used it, to the minute.
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A new API token with its secret, shown once.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct CreatedApiToken {
    pub id: i64,
    pub name: String,
    pub scopes: Vec<Scope>,
    /// Send as `Authorization: Bearer <token>`. Shown only in this response.
    pub token: String,
    pub created_at: DateTime<Utc>,
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub expires_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ApiTokenList {
    pub items: Vec<ApiToken>,
}

/// A signed-in session: one sign-in on one device, kept alive by refreshing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Session {
    /// The session's id (`DELETE /me/sessions/{session_id}` ends it).
    pub id: String,
    /// When it signed in.
    pub created_at: DateTime<Utc>,
    /// When it last signed in or refreshed its access token.
    pub last_used_at: DateTime<Utc>,
    /// The `User-Agent` it signed in or last refreshed with (at most 256 characters).
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub user_agent: Option<String>,
    /// True for the session of the access token making this request.
    pub current: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct SessionList {
    /// Newest activity first.
    pub items: Vec<Session>,
}

/// `PATCH /me`: absent fields stay as they are.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateMeRequest {
    /// 1-64 characters without control characters; null (or empty) goes back to the username.
    #[serde(default, deserialize_with = "crate::rooms::present", skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, max_length = 64))]
    pub display_name: Option<Option<String>>,
}

/// `POST /me/password`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ChangePasswordRequest {
    pub current_password: String,
    /// 8-128 characters.
    #[cfg_attr(feature = "openapi", schema(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// `GET /users`: people to message or add.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct UserList {
    pub items: Vec<User>,
}

/// `DELETE /me`: the password again, to be sure.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct DeleteAccountRequest {
    pub password: String,
}

/// `GET /me/export`: everything the service holds of the caller's, as JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct AccountExport {
    pub user: User,
    pub rooms: Vec<crate::Room>,
    pub memberships: Vec<ExportedMembership>,
    /// Every message the caller wrote, by room and seq.
    pub messages: Vec<crate::Message>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ExportedMembership {
    pub room_id: i64,
    pub member: crate::Member,
}
