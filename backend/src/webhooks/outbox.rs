//! The webhooks' queue, kept in the database. The writer adds each event in the transaction that commits
//! it ([`enqueue`]), so a committed event is never missed and a rolled-back one never sent; a node's
//! dispatcher takes the oldest event of each due webhook ([`claim`]), leasing the webhook so that one
//! delivery is in flight per webhook across all nodes, and records what happened ([`record`]).

use std::collections::HashMap;
use std::time::Duration;

use chat_api::WebhookEventType;
use chrono::NaiveDateTime;
use diesel::dsl::{exists, min};
use diesel::prelude::*;
use serde_json::json;

use super::signing::new_event_id;
use crate::config::WebhookSettings;
use crate::db::models::{NewWebhookDelivery, NewWebhookEvent, WebhookEventRow, WebhookRow};
use crate::db::schema::{webhook_deliveries, webhook_events, webhooks};
use crate::db::{DbConnection, now, utc};
use crate::error::ApiError;
use crate::events::Event;

/// Inserts `rows` into `table` in the caller's transaction: PostgreSQL in multi-row statements (one round trip
/// per 1000 rows), SQLite (in-process) a statement per row, since the multi-backend connection cannot batch.
macro_rules! insert_all {
    ($conn:expr, $table:expr, $rows:expr) => {
        match $conn {
            DbConnection::Postgresql(pg) => {
                for chunk in $rows.chunks(1000) {
                    diesel::insert_into($table).values(chunk).execute(pg)?;
                }
            }
            DbConnection::Sqlite(lite) => {
                for row in $rows.iter() {
                    diesel::insert_into($table).values(row).execute(lite)?;
                }
            }
        }
    };
}

/// Attempts kept per webhook for `GET .../deliveries`.
pub const DELIVERIES_KEPT: i64 = 100;

/// An event taken for delivery, with its webhook.
#[derive(Debug)]
pub struct Claimed {
    pub webhook: WebhookRow,
    pub event: WebhookEventRow,
}

/// What one attempt came to: the row it adds to the webhook's deliveries, and the queue row it was for.
#[derive(Debug)]
pub struct Outcome {
    pub event_row: i64,
    pub attempt: NewWebhookDelivery,
}

impl Outcome {
    pub fn webhook_id(&self) -> i64 {
        self.attempt.webhook_id
    }

    pub fn delivered(&self) -> bool {
        self.attempt.status_code.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The room and the type of an event webhooks carry; `None` for those they do not (typing, presence, ...).
fn kind(event: &Event) -> Option<(i64, WebhookEventType)> {
    use WebhookEventType as T;
    Some(match event {
        Event::Message { message } => (message.room_id, T::MessageCreated),
        Event::MessageUpdated { message } => (message.room_id, T::MessageUpdated),
        Event::MessageDeleted { room_id, .. } => (*room_id, T::MessageDeleted),
        Event::Reaction { room_id, added, .. } => {
            (*room_id, if *added { T::ReactionAdded } else { T::ReactionRemoved })
        }
        Event::MemberJoined { room_id, .. } => (*room_id, T::MemberJoined),
        Event::MemberLeft { room_id, .. } => (*room_id, T::MemberLeft),
        _ => return None,
    })
}

/// What a webhook is told of an event: its `data` (for an event [`kind`] names).
fn data(event: &Event) -> serde_json::Value {
    match event {
        Event::Message { message } | Event::MessageUpdated { message } => json!(message),
        Event::MessageDeleted { room_id, seq } => json!({ "room_id": room_id, "seq": seq }),
        Event::Reaction { room_id, seq, emoji, user, .. } => {
            json!({ "room_id": room_id, "seq": seq, "emoji": emoji, "user": user })
        }
        Event::MemberJoined { member, .. } => json!(member),
        Event::MemberLeft { room_id, user, reason } => json!({ "room_id": room_id, "user": user, "reason": reason }),
        _ => serde_json::Value::Null,
    }
}

/// The comma-separated list stored in `webhooks.events`.
pub fn wants(events: &str, event_type: WebhookEventType) -> bool {
    events.split(',').any(|e| e == event_type.as_str())
}

/// Queues `events` (committed in the caller's transaction) for every enabled webhook of their rooms that
/// wants them. Returns how many were queued. Costs one indexed read (on SQLite one per room) when none of
/// the rooms has a webhook.
pub fn enqueue(conn: &mut DbConnection, events: &[Event]) -> Result<usize, ApiError> {
    let mut rooms: Vec<i64> = events.iter().filter_map(kind).map(|(room, _)| room).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let columns = (webhooks::id, webhooks::room_id, webhooks::events);
    let hooks: Vec<(i64, i64, String)> = match conn {
        // One round trip: `= ANY($1)` binds the list as one array, so the statement stays prepared.
        DbConnection::Postgresql(pg) => webhooks::table
            .filter(webhooks::room_id.eq_any(&rooms))
            .filter(webhooks::enabled.eq(true))
            .select(columns)
            .load(pg)?,
        // In process, a statement per room: SQLite's `IN (?, ?, ...)` changes with the list's length and
        // would be parsed again for every batch; this one stays prepared.
        DbConnection::Sqlite(lite) => {
            let mut hooks = Vec::new();
            for room_id in rooms {
                let of_room: Vec<(i64, i64, String)> = webhooks::table
                    .filter(webhooks::room_id.eq(room_id))
                    .filter(webhooks::enabled.eq(true))
                    .select(columns)
                    .load(lite)?;
                hooks.extend(of_room);
            }
            hooks
        }
    };
    if hooks.is_empty() {
        return Ok(0);
    }
    let created_at = now();
    let timestamp = utc(created_at);
    let mut rows = Vec::new();
    for event in events {
        let Some((room_id, event_type)) = kind(event) else { continue };
        let mut targets =
            hooks.iter().filter(|(_, room, wanted)| *room == room_id && wants(wanted, event_type)).peekable();
        if targets.peek().is_none() {
            continue;
        }
        let body =
            json!({ "type": event_type, "room_id": room_id, "timestamp": timestamp, "data": data(event) }).to_string();
        for (webhook_id, ..) in targets {
            rows.push(NewWebhookEvent {
                webhook_id: *webhook_id,
                event_id: new_event_id(),
                event_type: event_type.as_str(),
                body: body.clone(),
                created_at,
            });
        }
    }
    insert_all!(conn, webhook_events::table, rows);
    Ok(rows.len())
}

/// Takes up to `limit` webhooks that have an event queued and are due (not leased, not backing off),
/// leases each for `lease`, and returns each one's oldest event. On PostgreSQL the rows are taken with
/// `FOR UPDATE SKIP LOCKED`: nodes claiming at once never take the same webhook, nor wait for each other.
pub fn claim(conn: &mut DbConnection, limit: usize, lease: Duration) -> Result<Vec<Claimed>, ApiError> {
    if limit == 0 {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        let now = now();
        macro_rules! due {
            () => {
                webhooks::table
                    .filter(webhooks::enabled.eq(true))
                    .filter(webhooks::not_before.is_null().or(webhooks::not_before.le(now)))
                    .filter(exists(webhook_events::table.filter(webhook_events::webhook_id.eq(webhooks::id))))
                    .order(webhooks::id.asc())
                    .select(webhooks::id)
                    .limit(limit as i64)
            };
        }
        let ids: Vec<i64> = match conn {
            DbConnection::Postgresql(pg) => due!().for_update().skip_locked().load(pg)?,
            // One writer: claims take turns already.
            DbConnection::Sqlite(lite) => due!().load(lite)?,
        };
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let lease_until = now + chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::seconds(60));
        diesel::update(webhooks::table.filter(webhooks::id.eq_any(&ids)))
            .set(webhooks::not_before.eq(lease_until))
            .execute(conn)?;
        let hooks: Vec<WebhookRow> =
            webhooks::table.filter(webhooks::id.eq_any(&ids)).select(WebhookRow::as_select()).load(conn)?;
        // Each one's oldest event: two queries, however many webhooks.
        let oldest: Vec<Option<i64>> = webhook_events::table
            .filter(webhook_events::webhook_id.eq_any(&ids))
            .group_by(webhook_events::webhook_id)
            .select(min(webhook_events::id))
            .load(conn)?;
        let oldest: Vec<i64> = oldest.into_iter().flatten().collect();
        let mut heads: HashMap<i64, WebhookEventRow> = webhook_events::table
            .filter(webhook_events::id.eq_any(&oldest))
            .select(WebhookEventRow::as_select())
            .load(conn)?
            .into_iter()
            .map(|event| (event.webhook_id, event))
            .collect();
        Ok(hooks
            .into_iter()
            .filter_map(|webhook| Some(Claimed { event: heads.remove(&webhook.id)?, webhook }))
            .collect())
    })
}

/// Records attempts: a delivered event leaves the queue and its webhook is due again at once; a failed
/// one stays at the head and its webhook waits out the next backoff, or, failing for `give_up_after`, is
/// disabled. The attempts of webhooks deleted meanwhile are dropped. `prune`: webhooks whose attempts beyond
/// the last [`DELIVERIES_KEPT`] are deleted now. Returns the webhooks disabled now.
pub fn record(
    conn: &mut DbConnection,
    outcomes: &[Outcome],
    prune: &[i64],
    settings: &WebhookSettings,
) -> Result<Vec<i64>, ApiError> {
    if outcomes.is_empty() && prune.is_empty() {
        return Ok(Vec::new());
    }
    conn.transaction(|conn| {
        let now = now();
        let ids: Vec<i64> = outcomes.iter().map(Outcome::webhook_id).collect();
        let states: HashMap<i64, (i32, Option<NaiveDateTime>)> = webhooks::table
            .filter(webhooks::id.eq_any(&ids))
            .select((webhooks::id, webhooks::failures, webhooks::failing_since))
            .load::<(i64, i32, Option<NaiveDateTime>)>(conn)?
            .into_iter()
            .map(|(id, failures, since)| (id, (failures, since)))
            .collect();
        let live: Vec<&Outcome> = outcomes.iter().filter(|o| states.contains_key(&o.webhook_id())).collect();
        let rows: Vec<NewWebhookDelivery> = live.iter().map(|o| o.attempt.clone()).collect();
        insert_all!(conn, webhook_deliveries::table, rows);
        let (delivered, failed): (Vec<&Outcome>, Vec<&Outcome>) = live.into_iter().partition(|o| o.delivered());
        if !delivered.is_empty() {
            let events: Vec<i64> = delivered.iter().map(|o| o.event_row).collect();
            diesel::delete(webhook_events::table.filter(webhook_events::id.eq_any(&events))).execute(conn)?;
            let hooks: Vec<i64> = delivered.iter().map(|o| o.webhook_id()).collect();
            diesel::update(webhooks::table.filter(webhooks::id.eq_any(&hooks)))
                .set((
                    webhooks::not_before.eq(None::<NaiveDateTime>),
                    webhooks::failures.eq(0),
                    webhooks::failing_since.eq(None::<NaiveDateTime>),
                ))
                .execute(conn)?;
        }
        let mut disabled = Vec::new();
        for outcome in failed {
            let (failures, since) = states[&outcome.webhook_id()];
            let (failures, since) = (failures + 1, since.unwrap_or(now));
            let hook = webhooks::table.find(outcome.webhook_id());
            if (now - since).to_std().unwrap_or_default() >= settings.give_up_after {
                diesel::update(hook)
                    .set((
                        webhooks::enabled.eq(false),
                        webhooks::not_before.eq(None::<NaiveDateTime>),
                        webhooks::failures.eq(failures),
                        webhooks::failing_since.eq(since),
                    ))
                    .execute(conn)?;
                disabled.push(outcome.webhook_id());
            } else {
                let delay = backoff(&settings.retry_delays, failures);
                diesel::update(hook)
                    .set((
                        webhooks::not_before.eq(now + chrono::Duration::from_std(delay).unwrap_or_default()),
                        webhooks::failures.eq(failures),
                        webhooks::failing_since.eq(since),
                    ))
                    .execute(conn)?;
            }
        }
        for webhook_id in prune {
            prune_one(conn, *webhook_id)?;
        }
        Ok(disabled)
    })
}

/// The wait after the `failures`-th failure in a row: the schedule's entry, its last one repeating.
fn backoff(delays: &[Duration], failures: i32) -> Duration {
    let i = usize::try_from(failures.max(1) - 1).unwrap_or(0);
    delays.get(i).or(delays.last()).copied().unwrap_or(Duration::from_secs(60))
}

/// Keeps the webhook's last [`DELIVERIES_KEPT`] attempts.
fn prune_one(conn: &mut DbConnection, webhook_id: i64) -> Result<(), ApiError> {
    let oldest_gone: Option<i64> = webhook_deliveries::table
        .filter(webhook_deliveries::webhook_id.eq(webhook_id))
        .order(webhook_deliveries::id.desc())
        .offset(DELIVERIES_KEPT)
        .select(webhook_deliveries::id)
        .first(conn)
        .optional()?;
    if let Some(id) = oldest_gone {
        diesel::delete(
            webhook_deliveries::table
                .filter(webhook_deliveries::webhook_id.eq(webhook_id))
                .filter(webhook_deliveries::id.le(id)),
        )
        .execute(conn)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_follows_the_schedule_then_repeats_its_last_wait() {
        let s = |n| Duration::from_secs(n);
        let delays = [s(5), s(30), s(120)];
        assert_eq!(backoff(&delays, 1), s(5));
        assert_eq!(backoff(&delays, 2), s(30));
        assert_eq!(backoff(&delays, 3), s(120));
        assert_eq!(backoff(&delays, 9), s(120));
    }

    #[test]
    fn a_webhook_wants_only_the_events_listed() {
        assert!(wants("message.created,member.left", WebhookEventType::MemberLeft));
        assert!(!wants("message.created", WebhookEventType::MessageUpdated));
    }
}
