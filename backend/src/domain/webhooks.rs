//! Outgoing webhooks' settings (CONTRACT-2 "Webhooks"): made, listed, changed and deleted by the room's
//! owner and admins, making and deleting logged in the room's audit log. The signing secret is shown once.
//! URLs arrive here already checked (`webhooks::addresses`); delivery is `crate::webhooks`.

use std::collections::HashMap;

use chat_api::{CreatedWebhook, Webhook, WebhookDelivery, WebhookEventType};
use diesel::dsl::count_star;
use diesel::prelude::*;
use reqwest::Url;

use super::moderation;
use crate::db::models::{NewWebhook, UserRow, WebhookDeliveryRow, WebhookRow};
use crate::db::schema::{users, webhook_deliveries, webhook_events, webhooks};
use crate::db::{DbConnection, now, utc};
use crate::error::ApiError;
use crate::webhooks::outbox::DELIVERIES_KEPT;
use crate::webhooks::signing::new_secret;

/// Webhooks one room may have.
pub const MAX_PER_ROOM: i64 = 10;

/// The event types as stored: at least one, each once, comma-separated.
fn stored_events(events: &[WebhookEventType]) -> Result<String, ApiError> {
    let mut events = events.to_vec();
    events.sort_unstable();
    events.dedup();
    if events.is_empty() {
        return Err(ApiError::invalid("events", "must name at least one event type"));
    }
    Ok(events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(","))
}

fn events_of(stored: &str) -> Vec<WebhookEventType> {
    stored.split(',').filter_map(WebhookEventType::parse).collect()
}

fn not_found(webhook_id: i64) -> ApiError {
    ApiError::not_found("webhook_not_found", format!("This room has no webhook {webhook_id}."))
}

pub fn create(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    url: &Url,
    events: &[WebhookEventType],
) -> Result<CreatedWebhook, ApiError> {
    let events = stored_events(events)?;
    conn.transaction(|conn| {
        moderation::moderator(conn, room_id, actor)?;
        let existing: i64 =
            webhooks::table.filter(webhooks::room_id.eq(room_id)).select(count_star()).get_result(conn)?;
        if existing >= MAX_PER_ROOM {
            return Err(ApiError::invalid("url", format!("a room has at most {MAX_PER_ROOM} webhooks")));
        }
        let secret = new_secret();
        let created_at = now();
        let id: i64 = diesel::insert_into(webhooks::table)
            .values(NewWebhook {
                room_id,
                created_by: actor,
                url: url.as_str(),
                events: &events,
                secret: &secret,
                created_at,
            })
            .returning(webhooks::id)
            .get_result(conn)?;
        moderation::record(conn, room_id, actor, "webhook_created", None, None, Some(url.as_str()))?;
        Ok(CreatedWebhook {
            id,
            url: url.to_string(),
            events: events_of(&events),
            secret,
            created_at: utc(created_at),
            enabled: true,
        })
    })
}

/// The room's webhooks, newest first, without their secrets (the owner or an admin).
pub fn list(conn: &mut DbConnection, room_id: i64, actor: i64) -> Result<Vec<Webhook>, ApiError> {
    moderation::moderator(conn, room_id, actor)?;
    let rows: Vec<(WebhookRow, UserRow)> = webhooks::table
        .inner_join(users::table)
        .filter(webhooks::room_id.eq(room_id))
        .order(webhooks::id.desc())
        .select((WebhookRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    let ids: Vec<i64> = rows.iter().map(|(w, _)| w.id).collect();
    let pending: HashMap<i64, i64> = webhook_events::table
        .filter(webhook_events::webhook_id.eq_any(&ids))
        .group_by(webhook_events::webhook_id)
        .select((webhook_events::webhook_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect();
    Ok(rows.into_iter().map(|(row, creator)| shown(row, creator, &pending)).collect())
}

fn shown(row: WebhookRow, creator: UserRow, pending: &HashMap<i64, i64>) -> Webhook {
    Webhook {
        id: row.id,
        url: row.url,
        events: events_of(&row.events),
        created_at: utc(row.created_at),
        enabled: row.enabled,
        created_by: creator.into(),
        pending: pending.get(&row.id).copied().unwrap_or(0),
    }
}

/// What `PATCH` may change, checked.
pub struct Changes {
    pub url: Option<Url>,
    pub events: Option<Vec<WebhookEventType>>,
    pub enabled: Option<bool>,
}

/// Changes a webhook (the owner or an admin). Enabling it again starts over: what is queued is tried at
/// once, and the 3 days of failures before it is disabled count from the next failure.
pub fn update(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    webhook_id: i64,
    changes: Changes,
) -> Result<Webhook, ApiError> {
    let events = changes.events.as_deref().map(stored_events).transpose()?;
    conn.transaction(|conn| {
        moderation::moderator(conn, room_id, actor)?;
        let hook = webhooks::table.find(webhook_id).filter(webhooks::room_id.eq(room_id));
        let was_enabled: bool =
            hook.select(webhooks::enabled).first(conn).optional()?.ok_or_else(|| not_found(webhook_id))?;
        if let Some(url) = &changes.url {
            diesel::update(hook).set(webhooks::url.eq(url.as_str())).execute(conn)?;
        }
        if let Some(events) = &events {
            diesel::update(hook).set(webhooks::events.eq(events)).execute(conn)?;
        }
        match changes.enabled {
            Some(true) if !was_enabled => {
                diesel::update(hook)
                    .set((
                        webhooks::enabled.eq(true),
                        webhooks::not_before.eq(None::<chrono::NaiveDateTime>),
                        webhooks::failures.eq(0),
                        webhooks::failing_since.eq(None::<chrono::NaiveDateTime>),
                    ))
                    .execute(conn)?;
            }
            Some(false) => {
                diesel::update(hook).set(webhooks::enabled.eq(false)).execute(conn)?;
            }
            _ => {}
        }
        let (row, creator): (WebhookRow, UserRow) = webhooks::table
            .inner_join(users::table)
            .filter(webhooks::id.eq(webhook_id))
            .select((WebhookRow::as_select(), UserRow::as_select()))
            .first(conn)?;
        let pending: i64 = webhook_events::table
            .filter(webhook_events::webhook_id.eq(webhook_id))
            .select(count_star())
            .get_result(conn)?;
        Ok(shown(row, creator, &HashMap::from([(webhook_id, pending)])))
    })
}

/// Deletes a webhook and what is queued for it (the owner or an admin): nothing more is sent.
pub fn delete(conn: &mut DbConnection, room_id: i64, actor: i64, webhook_id: i64) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        moderation::moderator(conn, room_id, actor)?;
        // Its queue and its deliveries go with it (ON DELETE CASCADE).
        let url: String = diesel::delete(webhooks::table.find(webhook_id).filter(webhooks::room_id.eq(room_id)))
            .returning(webhooks::url)
            .get_result(conn)
            .optional()?
            .ok_or_else(|| not_found(webhook_id))?;
        moderation::record(conn, room_id, actor, "webhook_deleted", None, None, Some(&url))
    })
}

/// The webhook's last attempts, newest first (the owner or an admin).
pub fn deliveries(
    conn: &mut DbConnection,
    room_id: i64,
    actor: i64,
    webhook_id: i64,
) -> Result<Vec<WebhookDelivery>, ApiError> {
    moderation::moderator(conn, room_id, actor)?;
    let exists: Option<i64> = webhooks::table
        .find(webhook_id)
        .filter(webhooks::room_id.eq(room_id))
        .select(webhooks::id)
        .first(conn)
        .optional()?;
    exists.ok_or_else(|| not_found(webhook_id))?;
    let rows: Vec<WebhookDeliveryRow> = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order(webhook_deliveries::id.desc())
        .limit(DELIVERIES_KEPT)
        .select(WebhookDeliveryRow::as_select())
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|row| {
            Some(WebhookDelivery {
                id: row.id,
                event_id: row.event_id,
                event_type: WebhookEventType::parse(&row.event_type)?,
                attempt: row.attempt,
                status_code: row.status_code,
                duration_ms: row.duration_ms,
                error: row.error,
                attempted_at: utc(row.attempted_at),
            })
        })
        .collect())
}
