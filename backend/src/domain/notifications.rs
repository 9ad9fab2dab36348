//! Notifications (CONTRACT-2 "Notifications"): made for each mention of a user, each reply to their
//! message by someone else, and each message in a direct room they are in; never for their own messages
//! nor from someone they blocked. Made by the writer in the transaction that stores the message, so a
//! crash never leaves one without the other; read with the room (`/read`) or by id.

use std::collections::HashMap;

use chat_api::{Message, Notification, NotificationKind, NotificationPage, NotifiedWebhook};
use diesel::prelude::*;

use crate::db::models::{MessageRow, NewNotification, NotificationRow, UserRow};
use crate::db::schema::{messages, notifications, room_members, user_blocks, users, webhooks};
use crate::db::{DbConnection, now, utc};
use crate::domain::messages::assemble;
use crate::error::ApiError;
use crate::events::Event;

/// Who a new message notifies, and why: a mention first, then a reply, then a direct message (one
/// notification per person per message).
fn recipients(message: &Message, direct_peers: &[i64]) -> Vec<(i64, NotificationKind)> {
    let mut found: Vec<(i64, NotificationKind)> = Vec::new();
    let mut add = |user_id: i64, kind: NotificationKind| {
        if user_id != message.author.id && !found.iter().any(|(id, _)| *id == user_id) {
            found.push((user_id, kind));
        }
    };
    message.mentions.iter().for_each(|id| add(*id, NotificationKind::Mention));
    if let Some(reply) = &message.reply_to {
        add(reply.author.id, NotificationKind::Reply);
    }
    direct_peers.iter().for_each(|id| add(*id, NotificationKind::Direct));
    found
}

/// Makes the notifications of new messages of one room (in the sending transaction) and returns them
/// with their recipients, in the order of the messages. `direct`: the room is a direct room. Costs no
/// query for a message of a named room that mentions and answers nobody.
pub fn make(
    conn: &mut DbConnection,
    room_id: i64,
    direct: bool,
    messages: &[&Message],
) -> Result<Vec<(i64, Notification)>, ApiError> {
    let peers: Vec<i64> = if direct {
        room_members::table.filter(room_members::room_id.eq(room_id)).select(room_members::user_id).load(conn)?
    } else {
        Vec::new()
    };
    let mut made = Vec::new();
    for message in messages {
        let mut to = recipients(message, &peers);
        if to.is_empty() {
            continue;
        }
        let ids: Vec<i64> = to.iter().map(|(id, _)| *id).collect();
        let blockers: Vec<i64> = user_blocks::table
            .filter(user_blocks::blocked_id.eq(message.author.id))
            .filter(user_blocks::blocker_id.eq_any(&ids))
            .select(user_blocks::blocker_id)
            .load(conn)?;
        to.retain(|(id, _)| !blockers.contains(id));
        if to.is_empty() {
            continue;
        }
        let created_at = now();
        let rows: Vec<NewNotification> = to
            .iter()
            .map(|(user_id, kind)| NewNotification {
                user_id: *user_id,
                room_id,
                seq: message.seq,
                kind: kind_name(*kind),
                read_at: None,
                created_at,
                webhook_id: None,
            })
            .collect();
        let ids: HashMap<i64, i64> = insert(conn, &rows)?.into_iter().collect();
        for (user_id, kind) in to {
            let id = *ids.get(&user_id).ok_or(diesel::result::Error::NotFound)?;
            let notification = Notification {
                id,
                kind,
                room_id,
                message: Some((*message).clone()),
                webhook: None,
                read: false,
                created_at: utc(created_at),
            };
            made.push((user_id, notification));
        }
    }
    Ok(made)
}

/// Inserts notifications and returns (user id, notification id) for each. PostgreSQL gets one multi-row INSERT (an
/// `@room` in a big room is one round trip, not one per member); SQLite, in-process, a statement per row.
fn insert(conn: &mut DbConnection, rows: &[NewNotification]) -> Result<Vec<(i64, i64)>, ApiError> {
    let id = (notifications::user_id, notifications::id);
    Ok(match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(notifications::table).values(rows).returning(id).load(pg)?
        }
        DbConnection::Sqlite(lite) => rows
            .iter()
            .map(|row| diesel::insert_into(notifications::table).values(row).returning(id).get_result(lite))
            .collect::<Result<_, _>>()?,
    })
}

fn kind_name(kind: NotificationKind) -> &'static str {
    match kind {
        NotificationKind::Mention => "mention",
        NotificationKind::Reply => "reply",
        NotificationKind::Direct => "direct",
        NotificationKind::WebhookDisabled => "webhook_disabled",
    }
}

fn kind_of(name: &str) -> NotificationKind {
    match name {
        "mention" => NotificationKind::Mention,
        "reply" => NotificationKind::Reply,
        "webhook_disabled" => NotificationKind::WebhookDisabled,
        _ => NotificationKind::Direct,
    }
}

/// `GET /notifications`: the caller's, newest first, of the rooms they are still in; `before` is the
/// id to continue below (the cursor).
pub fn list(
    conn: &mut DbConnection,
    user_id: i64,
    unread_only: bool,
    limit: i64,
    before: Option<i64>,
) -> Result<NotificationPage, ApiError> {
    let mut query =
        notifications::table
            .inner_join(room_members::table.on(
                room_members::room_id.eq(notifications::room_id).and(room_members::user_id.eq(notifications::user_id)),
            ))
            .filter(notifications::user_id.eq(user_id))
            .select(NotificationRow::as_select())
            .order(notifications::id.desc())
            .limit(limit + 1)
            .into_boxed();
    if unread_only {
        query = query.filter(notifications::read_at.is_null());
    }
    if let Some(before) = before {
        query = query.filter(notifications::id.lt(before));
    }
    let mut rows: Vec<NotificationRow> = query.load(conn)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(|r| r.id.to_string()) } else { None };
    let messages = messages_of(conn, &rows)?;
    let webhooks = webhooks_of(conn, &rows)?;
    let items = rows
        .into_iter()
        .filter_map(|row| {
            let (message, webhook) = match row.webhook_id {
                // A webhook deleted since is still named by its id.
                Some(id) => {
                    (None, Some(webhooks.get(&id).cloned().unwrap_or(NotifiedWebhook { id, url: String::new() })))
                }
                None => (Some(messages.get(&(row.room_id, row.seq))?.clone()), None),
            };
            Some(Notification {
                id: row.id,
                kind: kind_of(&row.kind),
                room_id: row.room_id,
                message,
                webhook,
                read: row.read_at.is_some(),
                created_at: utc(row.created_at),
            })
        })
        .collect();
    Ok(NotificationPage { items, next_cursor })
}

/// The messages notifications point at, as they now are.
fn messages_of(conn: &mut DbConnection, rows: &[NotificationRow]) -> Result<HashMap<(i64, i64), Message>, ApiError> {
    if rows.is_empty() {
        return Ok(HashMap::new());
    }
    let rooms: Vec<i64> = rows.iter().map(|r| r.room_id).collect();
    let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
    let found: Vec<(MessageRow, UserRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq_any(&rooms))
        .filter(messages::seq.eq_any(&seqs))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .load(conn)?;
    Ok(assemble(conn, found)?.into_iter().map(|m| ((m.room_id, m.seq), m)).collect())
}

/// The webhooks notifications point at.
fn webhooks_of(conn: &mut DbConnection, rows: &[NotificationRow]) -> Result<HashMap<i64, NotifiedWebhook>, ApiError> {
    let ids: Vec<i64> = rows.iter().filter_map(|r| r.webhook_id).collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let found: Vec<(i64, String)> =
        webhooks::table.filter(webhooks::id.eq_any(&ids)).select((webhooks::id, webhooks::url)).load(conn)?;
    Ok(found.into_iter().map(|(id, url)| (id, NotifiedWebhook { id, url })).collect())
}

/// A webhook was disabled after failing for too long: the owner of its room hears of it (a notification, on
/// every socket of theirs). Nothing when the webhook or the owner is gone.
pub fn webhook_disabled(conn: &mut DbConnection, webhook_id: i64) -> Result<((), Vec<Event>), ApiError> {
    let Some((room_id, url)) =
        webhooks::table.find(webhook_id).select((webhooks::room_id, webhooks::url)).first(conn).optional()?
    else {
        return Ok(((), Vec::new()));
    };
    let owner: Option<i64> = room_members::table
        .filter(room_members::room_id.eq(room_id))
        .filter(room_members::role.eq("owner"))
        .select(room_members::user_id)
        .first(conn)
        .optional()?;
    let Some(owner) = owner else { return Ok(((), Vec::new())) };
    let created_at = now();
    let row = NewNotification {
        user_id: owner,
        room_id,
        seq: 0,
        kind: kind_name(NotificationKind::WebhookDisabled),
        read_at: None,
        created_at,
        webhook_id: Some(webhook_id),
    };
    let id = insert(conn, &[row])?.first().map(|(_, id)| *id).ok_or(diesel::result::Error::NotFound)?;
    let notification = Notification {
        id,
        kind: NotificationKind::WebhookDisabled,
        room_id,
        message: None,
        webhook: Some(NotifiedWebhook { id: webhook_id, url }),
        read: false,
        created_at: utc(created_at),
    };
    Ok(((), vec![Event::Notification { user_id: owner, notification }]))
}

/// `POST /notifications/read`: every one of the caller's up to `up_to_id` is read.
pub fn read_up_to(conn: &mut DbConnection, user_id: i64, up_to_id: i64) -> Result<(), ApiError> {
    diesel::update(notifications::table)
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::id.le(up_to_id))
        .filter(notifications::read_at.is_null())
        .set(notifications::read_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

/// Reading a room up to `seq` reads its notifications up to there too.
pub fn read_room(conn: &mut DbConnection, user_id: i64, room_id: i64, seq: i64) -> Result<(), ApiError> {
    diesel::update(notifications::table)
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::room_id.eq(room_id))
        .filter(notifications::seq.le(seq))
        .filter(notifications::read_at.is_null())
        .set(notifications::read_at.eq(now()))
        .execute(conn)?;
    Ok(())
}

/// The caller's unread notifications per room (`Room.mention_count`).
pub fn unread_by_room(conn: &mut DbConnection, user_id: i64, rooms: &[i64]) -> Result<HashMap<i64, i64>, ApiError> {
    use diesel::dsl::count_star;
    Ok(notifications::table
        .filter(notifications::user_id.eq(user_id))
        .filter(notifications::room_id.eq_any(rooms))
        .filter(notifications::read_at.is_null())
        .group_by(notifications::room_id)
        .select((notifications::room_id, count_star()))
        .load::<(i64, i64)>(conn)?
        .into_iter()
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: i64) -> chat_api::User {
        chat_api::User {
            id,
            username: format!("u{id}"),
            display_name: None,
            created_at: chrono::Utc::now(),
            deleted: false,
        }
    }

    fn message(author: i64, mentions: Vec<i64>, reply_author: Option<i64>) -> Message {
        Message {
            id: 1,
            room_id: 1,
            seq: 1,
            author: user(author),
            body: String::new(),
            client_id: None,
            created_at: chrono::Utc::now(),
            edited_at: None,
            deleted: false,
            reply_to: reply_author.map(|id| chat_api::ReplyTo { seq: 1, author: user(id), excerpt: String::new() }),
            reactions: Vec::new(),
            mentions,
            via: None,
        }
    }

    #[test]
    fn one_notification_per_person_the_strongest_reason_and_never_the_author() {
        let m = message(1, vec![2, 3], Some(2));
        assert_eq!(
            recipients(&m, &[1, 4]),
            [(2, NotificationKind::Mention), (3, NotificationKind::Mention), (4, NotificationKind::Direct)]
        );
        assert_eq!(recipients(&message(1, vec![], Some(1)), &[]), []);
        assert_eq!(recipients(&message(1, vec![], Some(5)), &[1, 5]), [(5, NotificationKind::Reply)]);
    }
}
