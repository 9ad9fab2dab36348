//! Messages: the one send path shared by REST and WebSocket, history paging, edits, deletes and
//! read markers.
//!
//! Order: a room's `last_seq` is incremented inside the sending transaction, so the database hands
//! out 1, 2, 3, ... with no gaps and no two messages share a seq, on SQLite and PostgreSQL alike.
//! Deduplication: `client_id` and the `Idempotency-Key` are unique per room and author; a retry
//! returns the message the first attempt stored.

use chat_api::{Message, MessagePage};
use diesel::prelude::*;

use crate::db::models::{MessageRow, NewMessage, UserRow};
use crate::db::schema::{messages, room_members, rooms, users};
use crate::db::{DbConnection, now};
use crate::domain;
use crate::error::ApiError;

/// The most history one request returns.
pub const MAX_PAGE: i64 = 100;
/// History page size when the client names none.
pub const DEFAULT_PAGE: i64 = 50;

/// A message text: 1-4000 characters, not only white space. Kept exactly as typed.
pub struct MessageBody(String);

impl MessageBody {
    pub fn parse(raw: String) -> Result<MessageBody, ApiError> {
        if raw.trim().is_empty() {
            return Err(ApiError::invalid("body", "must not be empty or only white space"));
        }
        if raw.chars().count() > 4000 {
            return Err(ApiError::invalid("body", "must be at most 4000 characters"));
        }
        Ok(MessageBody(raw))
    }
}

/// The keys a retry is recognised by. Both are optional; either one deduplicates.
#[derive(Default)]
pub struct DedupKeys {
    client_id: Option<String>,
    idempotency_key: Option<String>,
}

impl DedupKeys {
    pub fn parse(client_id: Option<String>, idempotency_key: Option<String>) -> Result<DedupKeys, ApiError> {
        let client_id = client_id.filter(|c| !c.is_empty());
        if client_id.as_ref().is_some_and(|c| c.chars().count() > 64) {
            return Err(ApiError::invalid("client_id", "must be at most 64 characters"));
        }
        let idempotency_key = idempotency_key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty());
        if idempotency_key.as_ref().is_some_and(|k| k.len() > 255) {
            return Err(ApiError::invalid("Idempotency-Key", "must be at most 255 bytes"));
        }
        Ok(DedupKeys { client_id, idempotency_key })
    }
}

/// What a send did.
pub struct Posted {
    pub message: Message,
    /// False when this was a retry and `message` is the one stored the first time.
    pub created: bool,
}

/// Stores a message from `author` in `room_id`, once. Committed when this returns.
pub fn post(
    conn: &mut DbConnection,
    room_id: i64,
    author: i64,
    body: &MessageBody,
    keys: &DedupKeys,
) -> Result<Posted, ApiError> {
    let attempt = conn.transaction(|conn| -> Result<Posted, ApiError> {
        domain::rooms::visible(conn, room_id, author)?.require_member()?;
        if let Some(first) = find_duplicate(conn, room_id, author, keys)? {
            return Ok(Posted { message: first, created: false });
        }
        // Takes the room's row lock on PostgreSQL: concurrent sends to one room queue here.
        let seq: i64 = diesel::update(rooms::table.find(room_id))
            .set((rooms::last_seq.eq(rooms::last_seq + 1), rooms::last_activity_at.eq(now())))
            .returning(rooms::last_seq)
            .get_result(conn)?;
        let created_at = now();
        let id: i64 = diesel::insert_into(messages::table)
            .values(NewMessage {
                room_id,
                seq,
                author_id: author,
                body: &body.0,
                client_id: keys.client_id.as_deref(),
                idempotency_key: keys.idempotency_key.as_deref(),
                created_at,
            })
            .returning(messages::id)
            .get_result(conn)?;
        let row = MessageRow {
            id,
            room_id,
            seq,
            author_id: author,
            body: body.0.clone(),
            client_id: keys.client_id.clone(),
            created_at,
            edited_at: None,
            deleted: false,
        };
        // Sending a message means having read the room up to it.
        diesel::update(room_members::table.find((room_id, author)))
            .filter(room_members::last_read_seq.lt(seq))
            .set(room_members::last_read_seq.eq(seq))
            .execute(conn)?;
        let author = users::table.find(author).select(UserRow::as_select()).first(conn)?;
        Ok(Posted { message: row.with_author(author), created: true })
    });
    match attempt {
        // A concurrent retry with the same key committed between our check and our insert.
        Err(e) if e.is_unique_violation() => {
            let first = find_duplicate(conn, room_id, author, keys)?.ok_or(e)?;
            Ok(Posted { message: first, created: false })
        }
        other => other,
    }
}

fn find_duplicate(
    conn: &mut DbConnection,
    room_id: i64,
    author: i64,
    keys: &DedupKeys,
) -> Result<Option<Message>, ApiError> {
    if keys.client_id.is_none() && keys.idempotency_key.is_none() {
        return Ok(None);
    }
    let mut query = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::author_id.eq(author))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .into_boxed();
    query = match (&keys.client_id, &keys.idempotency_key) {
        (Some(c), Some(k)) => query.filter(messages::client_id.eq(c).or(messages::idempotency_key.eq(k))),
        (Some(c), None) => query.filter(messages::client_id.eq(c)),
        (None, Some(k)) => query.filter(messages::idempotency_key.eq(k)),
        (None, None) => unreachable!("returned above"),
    };
    Ok(query.first::<(MessageRow, UserRow)>(conn).optional()?.map(|(m, u)| m.with_author(u)))
}

/// Which part of the history to return. Seqs are exclusive bounds.
#[derive(Clone, Copy, Debug, Default)]
pub struct Window {
    pub before: Option<i64>,
    pub after: Option<i64>,
    pub limit: i64,
}

/// A page of a room's history in ascending seq. Without bounds: the latest page.
pub fn history(conn: &mut DbConnection, room_id: i64, viewer: i64, window: Window) -> Result<MessagePage, ApiError> {
    domain::rooms::visible(conn, room_id, viewer)?;
    let mut query = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .limit(window.limit + 1)
        .into_boxed();
    if let Some(before) = window.before {
        query = query.filter(messages::seq.lt(before));
    }
    // Forward from `after`; otherwise backward from the newest (or from `before`).
    let forward = window.after.is_some();
    if let Some(after) = window.after {
        query = query.filter(messages::seq.gt(after)).order(messages::seq.asc());
    } else {
        query = query.order(messages::seq.desc());
    }
    let mut rows: Vec<(MessageRow, UserRow)> = query.load(conn)?;
    let has_more = rows.len() as i64 > window.limit;
    rows.truncate(window.limit as usize);
    if !forward {
        rows.reverse();
    }
    Ok(MessagePage { items: rows.into_iter().map(|(m, u)| m.with_author(u)).collect(), has_more })
}

fn message_not_found(room_id: i64, seq: i64) -> ApiError {
    ApiError::not_found("message_not_found", format!("Room {room_id} has no message {seq}."))
}

fn load(conn: &mut DbConnection, room_id: i64, seq: i64) -> Result<(MessageRow, UserRow), ApiError> {
    messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::seq.eq(seq))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?
        .ok_or_else(|| message_not_found(room_id, seq))
}

/// The author changes the text of a message.
pub fn edit(
    conn: &mut DbConnection,
    room_id: i64,
    seq: i64,
    editor: i64,
    body: &MessageBody,
) -> Result<Message, ApiError> {
    domain::rooms::visible(conn, room_id, editor)?;
    let (row, author) = load(conn, room_id, seq)?;
    if row.author_id != editor {
        return Err(ApiError::forbidden("not_the_author", "Only the author can edit a message."));
    }
    if row.deleted {
        return Err(ApiError::conflict("message_deleted", "A deleted message cannot be edited."));
    }
    let edited_at = now();
    diesel::update(messages::table.find(row.id))
        .set((messages::body.eq(&body.0), messages::edited_at.eq(edited_at)))
        .execute(conn)?;
    Ok(MessageRow { body: body.0.clone(), edited_at: Some(edited_at), ..row }.with_author(author))
}

/// The author or the room's owner deletes a message: its text is erased, its seq stays.
/// Deleting twice is not an error. Returns the message as it now is.
pub fn delete(conn: &mut DbConnection, room_id: i64, seq: i64, actor: i64) -> Result<Message, ApiError> {
    let visible = domain::rooms::visible(conn, room_id, actor)?;
    let (row, author) = load(conn, room_id, seq)?;
    if row.author_id != actor && !visible.is_owner() {
        return Err(ApiError::forbidden("not_the_author", "Only the author or the room's owner can delete a message."));
    }
    if row.deleted {
        return Ok(row.with_author(author));
    }
    diesel::update(messages::table.find(row.id))
        .set((messages::body.eq(""), messages::deleted.eq(true)))
        .execute(conn)?;
    Ok(MessageRow { body: String::new(), deleted: true, ..row }.with_author(author))
}

/// Moves the caller's read marker forward to `seq` (capped at the newest message); never backwards.
pub fn mark_read(conn: &mut DbConnection, room_id: i64, reader: i64, seq: i64) -> Result<(), ApiError> {
    if seq < 0 {
        return Err(ApiError::invalid("seq", "must not be negative"));
    }
    let visible = domain::rooms::visible(conn, room_id, reader)?;
    visible.require_member()?;
    let seq = seq.min(visible.room.last_seq);
    diesel::update(room_members::table.find((room_id, reader)))
        .filter(room_members::last_read_seq.lt(seq))
        .set(room_members::last_read_seq.eq(seq))
        .execute(conn)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_checked_but_kept_as_typed() {
        assert_eq!(MessageBody::parse("  hi \n".into()).unwrap().0, "  hi \n");
        assert!(MessageBody::parse(" \n\t ".into()).is_err());
        assert!(MessageBody::parse(String::new()).is_err());
        assert!(MessageBody::parse("é".repeat(4000)).is_ok());
        assert!(MessageBody::parse("é".repeat(4001)).is_err());
    }

    #[test]
    fn dedup_keys_have_limits() {
        assert!(DedupKeys::parse(Some("x".repeat(64)), None).is_ok());
        assert!(DedupKeys::parse(Some("x".repeat(65)), None).is_err());
        assert!(DedupKeys::parse(None, Some("k".repeat(256))).is_err());
    }
}
