//! Rows as stored, and their conversion to the API's types. Queries live in `domain/`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{
    api_tokens, incoming_hooks, message_reactions, messages, notifications, refresh_tokens, room_audit, room_bans,
    room_invites, room_members, rooms, users, webhook_deliveries, webhook_events, webhooks,
};
use super::utc;

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = users)]
pub struct UserRow {
    pub id: i64,
    pub username: String,
    pub display_name: String,
    pub created_at: NaiveDateTime,
    pub deleted_at: Option<NaiveDateTime>,
}

impl From<UserRow> for chat_api::User {
    fn from(u: UserRow) -> Self {
        let deleted = u.deleted_at.is_some();
        chat_api::User {
            id: u.id,
            username: u.username,
            display_name: (!deleted).then_some(u.display_name),
            created_at: utc(u.created_at),
            deleted,
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub username: &'a str,
    pub display_name: &'a str,
    pub password_hash: &'a str,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = refresh_tokens)]
pub struct RefreshTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub family: String,
    pub expires_at: NaiveDateTime,
    pub used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = refresh_tokens)]
pub struct NewRefreshToken<'a> {
    pub user_id: i64,
    pub family: &'a str,
    pub token_hash: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
    pub user_agent: Option<&'a str>,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = api_tokens)]
pub struct ApiTokenRow {
    pub id: i64,
    pub user_id: i64,
    pub name: String,
    pub scopes: String,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
    pub last_used_at: Option<NaiveDateTime>,
    pub revoked_at: Option<NaiveDateTime>,
}

impl ApiTokenRow {
    /// Scopes are stored space-separated; names this build does not know are dropped.
    pub fn scope_list(&self) -> Vec<chat_api::Scope> {
        self.scopes.split_whitespace().filter_map(chat_api::Scope::parse).collect()
    }
}

impl From<ApiTokenRow> for chat_api::ApiToken {
    fn from(t: ApiTokenRow) -> Self {
        chat_api::ApiToken {
            id: t.id,
            scopes: t.scope_list(),
            name: t.name,
            created_at: utc(t.created_at),
            expires_at: t.expires_at.map(utc),
            last_used_at: t.last_used_at.map(utc),
        }
    }
}

#[derive(Insertable)]
#[diesel(table_name = api_tokens)]
pub struct NewApiToken<'a> {
    pub user_id: i64,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scopes: &'a str,
    pub created_at: NaiveDateTime,
    pub expires_at: Option<NaiveDateTime>,
}

/// An incoming hook (its secret only as a hash).
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = incoming_hooks)]
pub struct IncomingHookRow {
    pub id: i64,
    pub room_id: i64,
    pub created_by: i64,
    pub name: String,
    pub created_at: NaiveDateTime,
    pub last_used_at: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = incoming_hooks)]
pub struct NewIncomingHook<'a> {
    pub room_id: i64,
    pub created_by: i64,
    pub name: &'a str,
    pub secret_hash: &'a str,
    pub created_at: NaiveDateTime,
}

/// An outgoing webhook, with its signing secret and its delivery state.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhooks)]
pub struct WebhookRow {
    pub id: i64,
    pub room_id: i64,
    pub created_by: i64,
    pub url: String,
    pub events: String,
    pub secret: String,
    pub enabled: bool,
    pub created_at: NaiveDateTime,
    pub failures: i32,
    pub failing_since: Option<NaiveDateTime>,
}

#[derive(Insertable)]
#[diesel(table_name = webhooks)]
pub struct NewWebhook<'a> {
    pub room_id: i64,
    pub created_by: i64,
    pub url: &'a str,
    pub events: &'a str,
    pub secret: &'a str,
    pub created_at: NaiveDateTime,
}

/// An event waiting in a webhook's queue.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_events)]
pub struct WebhookEventRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub body: String,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = webhook_events)]
pub struct NewWebhookEvent {
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: &'static str,
    pub body: String,
    pub created_at: NaiveDateTime,
}

/// One attempt to deliver an event.
#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = webhook_deliveries)]
pub struct WebhookDeliveryRow {
    pub id: i64,
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub attempted_at: NaiveDateTime,
}

#[derive(Clone, Debug, Insertable)]
#[diesel(table_name = webhook_deliveries)]
pub struct NewWebhookDelivery {
    pub webhook_id: i64,
    pub event_id: String,
    pub event_type: String,
    pub attempt: i32,
    pub status_code: Option<i32>,
    pub duration_ms: i64,
    pub error: Option<String>,
    pub attempted_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Identifiable)]
#[diesel(table_name = rooms)]
pub struct RoomRow {
    pub id: i64,
    pub name: String,
    pub topic: Option<String>,
    pub visibility: String,
    pub kind: String,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub last_seq: i64,
    pub last_activity_at: NaiveDateTime,
}

impl RoomRow {
    pub fn is_public(&self) -> bool {
        self.visibility == "public"
    }

    pub fn is_direct(&self) -> bool {
        self.kind == "direct"
    }
}

#[derive(Insertable)]
#[diesel(table_name = rooms)]
pub struct NewRoom<'a> {
    pub name: &'a str,
    pub topic: Option<&'a str>,
    pub visibility: &'a str,
    pub kind: &'a str,
    pub direct_key: Option<&'a str>,
    pub created_by: i64,
    pub created_at: NaiveDateTime,
    pub last_activity_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_members)]
pub struct MemberRow {
    pub room_id: i64,
    pub user_id: i64,
    pub role: String,
    pub joined_at: NaiveDateTime,
    pub last_read_seq: i64,
    pub muted_until: Option<NaiveDateTime>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_bans)]
pub struct BanRow {
    pub room_id: i64,
    pub user_id: i64,
    pub reason: Option<String>,
    pub banned_by: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = room_invites)]
pub struct InviteRow {
    pub code: String,
    pub room_id: i64,
    pub created_by: i64,
    pub max_uses: Option<i32>,
    pub uses: i32,
    pub expires_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = room_audit)]
pub struct AuditRow {
    pub id: i64,
    pub room_id: i64,
    pub actor_id: i64,
    pub action: String,
    pub target_id: Option<i64>,
    pub seq: Option<i64>,
    pub detail: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = room_audit)]
pub struct NewAuditRow<'a> {
    pub room_id: i64,
    pub actor_id: i64,
    pub action: &'a str,
    pub target_id: Option<i64>,
    pub seq: Option<i64>,
    pub detail: Option<&'a str>,
    pub created_at: NaiveDateTime,
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct MessageRow {
    pub id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub author_id: i64,
    pub body: String,
    pub client_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub edited_at: Option<NaiveDateTime>,
    pub deleted: bool,
    pub reply_to_seq: Option<i64>,
    /// The mentioned members' ids, comma-separated.
    pub mentions: String,
    /// The incoming hook it was posted through (its name, or the `username` it gave).
    pub via: Option<String>,
}

impl MessageRow {
    /// The message without what lives in other rows (the reply's excerpt, the reactions): see
    /// `domain::messages::assemble`, which adds them.
    pub fn with_author(self, author: UserRow) -> chat_api::Message {
        chat_api::Message {
            id: self.id,
            room_id: self.room_id,
            seq: self.seq,
            author: author.into(),
            body: self.body,
            client_id: self.client_id,
            created_at: utc(self.created_at),
            edited_at: self.edited_at.map(utc),
            deleted: self.deleted,
            reply_to: None,
            reactions: Vec::new(),
            mentions: parse_ids(&self.mentions),
            via: self.via,
        }
    }
}

/// Ids stored comma-separated (`messages.mentions`).
pub fn parse_ids(list: &str) -> Vec<i64> {
    list.split(',').filter_map(|id| id.parse().ok()).collect()
}

/// Ids to store comma-separated.
pub fn join_ids(ids: &[i64]) -> String {
    ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
}

#[derive(Clone, Debug, Queryable, Selectable)]
#[diesel(table_name = notifications)]
pub struct NotificationRow {
    pub id: i64,
    pub user_id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub kind: String,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub webhook_id: Option<i64>,
}

#[derive(Insertable)]
#[diesel(table_name = notifications)]
pub struct NewNotification {
    pub user_id: i64,
    pub room_id: i64,
    pub seq: i64,
    pub kind: &'static str,
    pub read_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub webhook_id: Option<i64>,
}

#[derive(Clone, Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = message_reactions)]
pub struct ReactionRow {
    pub room_id: i64,
    pub seq: i64,
    pub emoji: String,
    pub user_id: i64,
    pub created_at: NaiveDateTime,
}

#[derive(Insertable)]
#[diesel(table_name = messages)]
pub struct NewMessage<'a> {
    pub room_id: i64,
    pub seq: i64,
    pub author_id: i64,
    pub body: &'a str,
    pub client_id: Option<&'a str>,
    pub idempotency_key: Option<&'a str>,
    pub created_at: NaiveDateTime,
    pub reply_to_seq: Option<i64>,
    pub mentions: String,
    pub via: Option<&'a str>,
}
