//! Messages: the one send path shared by REST and WebSocket (`prepare`, then `store_batch` through
//! the group-commit `MessageWriter`), history paging, edits and deletes (committed through the same
//! writer, stamped with `changed_at_seq` for clients that resume), and read markers.
//!
//! Order: a room's `last_seq` is incremented inside the sending transaction, so the database hands
//! out 1, 2, 3, ... with no gaps and no two messages share a seq, on SQLite and PostgreSQL alike.
//! Deduplication: `client_id` and the `Idempotency-Key` are unique per room and author; a retry
//! returns the message the first attempt stored.

use std::collections::HashMap;

use chat_api::{Message, MessagePage, Reaction, ReplyTo};
use diesel::prelude::*;

use crate::db::models::{MemberRow, MessageRow, NewMessage, ReactionRow, RoomRow, UserRow, join_ids};
use crate::db::schema::{message_reactions, messages, room_members, rooms, users};
use crate::db::{DbConnection, now, prepared};
use crate::domain;
use crate::error::ApiError;

/// The most items one page returns (history and room lists).
pub const MAX_PAGE: i64 = 100;
/// History page size when the client names none.
pub const DEFAULT_PAGE: i64 = 50;

/// A message text: 1-4000 characters, not only white space. Kept exactly as typed.
pub struct MessageBody(String);

impl MessageBody {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn parse(raw: String) -> Result<MessageBody, ApiError> {
        MessageBody::parse_field("body", raw)
    }

    /// [`MessageBody::parse`] for a field named otherwise (an incoming hook's `text`).
    pub fn parse_field(field: &str, raw: String) -> Result<MessageBody, ApiError> {
        if raw.trim().is_empty() {
            return Err(ApiError::invalid(field, "must not be empty or only white space"));
        }
        if raw.chars().count() > 4000 {
            return Err(ApiError::invalid(field, "must be at most 4000 characters"));
        }
        domain::text::check_body(field, &raw)?;
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
        if let Some(client_id) = &client_id {
            domain::text::check_name("client_id", client_id)?;
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
    /// The notifications it made, with their recipients (committed with it).
    pub notifications: Vec<(i64, chat_api::Notification)>,
}

/// A send that passed the read-side checks, ready for `store_batch`.
pub struct PendingSend {
    pub room_id: i64,
    pub author: UserRow,
    pub body: MessageBody,
    pub keys: DedupKeys,
    pub extras: Extras,
}

/// What a message refers to beyond its text, resolved on the read side before it is queued.
#[derive(Default)]
pub struct Extras {
    /// The message it answers, as shown with it (boxed: most sends have none, and the writer's queue
    /// holds sends by value).
    pub reply_to: Option<Box<ReplyTo>>,
    /// The members it mentions.
    pub mentions: Vec<i64>,
    /// The incoming hook it comes through (the name shown with it).
    pub via: Option<String>,
}

impl Extras {
    /// Whether resolving them takes a query: most messages neither reply nor contain `@`.
    pub fn needed(body: &MessageBody, reply_to: Option<i64>) -> bool {
        reply_to.is_some() || body.0.contains('@')
    }

    /// Reads the answered message (422 `reply_to` when the room has no such message) and the mentions.
    pub fn resolve(
        conn: &mut DbConnection,
        room_id: i64,
        author: i64,
        body: &str,
        reply_to: Option<i64>,
    ) -> Result<Extras, ApiError> {
        let reply_to = match reply_to {
            None => None,
            Some(seq) => {
                let found = load(conn, room_id, seq)
                    .map_err(|_| ApiError::invalid("reply_to", "must be the seq of a message in this room"))?;
                Some(Box::new(reply_view(found)))
            }
        };
        let mentions = domain::mentions::resolve(conn, room_id, author, body)?;
        Ok(Extras { reply_to, mentions, via: None })
    }
}

/// How long a reply's excerpt of the answered message is, in characters.
const EXCERPT_CHARS: usize = 200;

fn reply_view((row, author): (MessageRow, UserRow)) -> ReplyTo {
    let excerpt = if row.deleted { String::new() } else { row.body.chars().take(EXCERPT_CHARS).collect() };
    ReplyTo { seq: row.seq, author: author.into(), excerpt }
}

/// The checks of a send that need no write, in one query on a read connection (outside the
/// writer's critical section): the room is visible and the author a member. Returns the author.
/// Retries are recognised by the writer, whose unique indexes settle races too.
pub fn prepare(conn: &mut DbConnection, room_id: i64, author: i64) -> Result<UserRow, ApiError> {
    let found: Option<(RoomRow, Option<MemberRow>, UserRow)> = rooms::table
        .left_join(room_members::table.on(room_members::room_id.eq(rooms::id).and(room_members::user_id.eq(author))))
        .inner_join(users::table.on(users::id.eq(author)))
        .filter(rooms::id.eq(room_id))
        .select((RoomRow::as_select(), Option::<MemberRow>::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?;
    let (room, membership, user) = found.ok_or_else(|| domain::rooms::room_not_found(room_id))?;
    let visible = domain::rooms::VisibleRoom::check(room, membership)?;
    domain::moderation::refuse_muted(visible.require_member()?)?;
    if visible.room.is_direct() {
        domain::blocks::refuse_blocked_in_direct(conn, room_id, author)?;
    }
    Ok(user)
}

/// Stores a batch of sends in the caller's transaction (the writer's): one commit (one fsync) for all of
/// them. The inner results say what became of each send, in the batch's order.
///
/// The sends of each room are stored together in a few statements (`store_room`). When that fails
/// (a retry racing its first attempt, a row the database refuses), that room's sends are stored one by
/// one instead, each in its own savepoint, so that only the one at fault is set aside.
pub fn store_batch(conn: &mut DbConnection, batch: &[PendingSend]) -> Result<Vec<Result<Posted, ApiError>>, ApiError> {
    let mut rooms: Vec<i64> = batch.iter().map(|s| s.room_id).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let mut results: Vec<Option<Result<Posted, ApiError>>> = batch.iter().map(|_| None).collect();
    for room_id in rooms {
        let indexes: Vec<usize> = (0..batch.len()).filter(|&i| batch[i].room_id == room_id).collect();
        let sends: Vec<&PendingSend> = indexes.iter().map(|&i| &batch[i]).collect();
        let stored = match conn.transaction(|conn| store_room(conn, room_id, &sends)) {
            Ok(posted) => posted.into_iter().map(Ok).collect::<Vec<_>>(),
            // The database is gone: the whole batch fails, and its senders retry.
            Err(e) if e.is_unavailable() => return Err(e),
            // A duplicate key, or a row the database refuses: each send alone, so that one bad
            // send fails only its sender (CONTRACT-2 "Text, everywhere").
            Err(_) => sends.iter().map(|send| store_alone(conn, send)).collect(),
        };
        for (i, result) in indexes.into_iter().zip(stored) {
            results[i] = Some(result);
        }
    }
    // Unwrap: every index belongs to exactly one room, and every room was stored above.
    Ok(results.into_iter().map(|r| r.expect("every send has a result")).collect())
}

/// Stores one room's sends: takes `n` seqs at once, inserts every row in one statement, and
/// moves each author's read marker to their last message.
fn store_room(conn: &mut DbConnection, room_id: i64, sends: &[&PendingSend]) -> Result<Vec<Posted>, ApiError> {
    let created_at = now();
    let n = sends.len() as i64;
    // Takes the room's row lock on PostgreSQL: other writers to this room wait here until commit.
    let (last, kind): (i64, String) = match conn {
        DbConnection::Sqlite(lite) => prepared::TakeSeqs { room_id, n, at: created_at }.get_result(lite)?,
        DbConnection::Postgresql(pg) => diesel::update(rooms::table.find(room_id))
            .set((rooms::last_seq.eq(rooms::last_seq + n), rooms::last_activity_at.eq(created_at)))
            .returning((rooms::last_seq, rooms::kind))
            .get_result(pg)?,
    };
    let first_seq = last - n + 1;
    let rows: Vec<NewMessage> = sends
        .iter()
        .zip(first_seq..)
        .map(|(send, seq)| NewMessage {
            room_id,
            seq,
            author_id: send.author.id,
            body: &send.body.0,
            client_id: send.keys.client_id.as_deref(),
            idempotency_key: send.keys.idempotency_key.as_deref(),
            created_at,
            reply_to_seq: send.extras.reply_to.as_ref().map(|r| r.seq),
            mentions: join_ids(&send.extras.mentions),
            via: send.extras.via.as_deref(),
        })
        .collect();
    let ids: HashMap<i64, i64> = insert_rows(conn, &rows)?.into_iter().collect();
    let mut last_by_author: HashMap<i64, i64> = HashMap::new();
    for row in &rows {
        last_by_author.insert(row.author_id, row.seq);
    }
    for (author, seq) in last_by_author {
        // Sending a message means having read the room up to it.
        read_up_to(conn, room_id, author, seq)?;
    }
    let mut posted = sends
        .iter()
        .zip(first_seq..)
        .map(|(send, seq)| {
            let id = *ids.get(&seq).ok_or(diesel::result::Error::NotFound)?;
            Ok(posted_row(id, seq, created_at, send))
        })
        .collect::<Result<Vec<Posted>, ApiError>>()?;
    // In this transaction: a message is never committed without its notifications, nor the reverse.
    let messages: Vec<&Message> = posted.iter().map(|p| &p.message).collect();
    let mut made = domain::notifications::make(conn, room_id, kind == "direct", &messages)?;
    for p in &mut posted {
        let (mine, rest): (Vec<_>, Vec<_>) =
            made.into_iter().partition(|(_, n)| n.message.as_ref().map(|m| m.seq) == Some(p.message.seq));
        p.notifications = mine;
        made = rest;
    }
    Ok(posted)
}

/// Inserts messages and returns their (seq, id). PostgreSQL gets one multi-row INSERT: one round
/// trip. The multi-backend connection cannot express that statement for SQLite, where a statement
/// per row costs no round trip anyway (the database is in-process), so SQLite gets those.
fn insert_rows(conn: &mut DbConnection, rows: &[NewMessage]) -> Result<Vec<(i64, i64)>, ApiError> {
    let returning = (messages::seq, messages::id);
    Ok(match conn {
        DbConnection::Postgresql(pg) => {
            diesel::insert_into(messages::table).values(rows).returning(returning).load(pg)?
        }
        DbConnection::Sqlite(lite) => rows
            .iter()
            .map(|row| diesel::insert_into(messages::table).values(row).returning(returning).get_result(lite))
            .collect::<Result<_, _>>()?,
    })
}

/// One send in its own savepoint; a duplicate key yields the message stored the first time.
fn store_alone(conn: &mut DbConnection, send: &PendingSend) -> Result<Posted, ApiError> {
    match conn.transaction(|conn| store_room(conn, send.room_id, &[send])) {
        Ok(mut posted) => Ok(posted.remove(0)),
        // A retry with the same key got in first (earlier in this batch or on another node).
        Err(e) if e.is_unique_violation() => {
            let first = find_duplicate(conn, send.room_id, send.author.id, &send.keys)?.ok_or(e)?;
            Ok(Posted { message: first, created: false, notifications: Vec::new() })
        }
        Err(e) => Err(e),
    }
}

fn posted_row(id: i64, seq: i64, created_at: chrono::NaiveDateTime, send: &PendingSend) -> Posted {
    let row = MessageRow {
        id,
        room_id: send.room_id,
        seq,
        author_id: send.author.id,
        body: send.body.0.clone(),
        client_id: send.keys.client_id.clone(),
        created_at,
        edited_at: None,
        deleted: false,
        reply_to_seq: None,
        mentions: String::new(),
        via: send.extras.via.clone(),
    };
    let mut message = row.with_author(send.author.clone());
    message.reply_to = send.extras.reply_to.as_deref().cloned();
    message.mentions = send.extras.mentions.clone();
    Posted { message, created: true, notifications: Vec::new() }
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
    let found = query.first::<(MessageRow, UserRow)>(conn).optional()?;
    Ok(found.map(|row| assemble(conn, vec![row])).transpose()?.and_then(|mut m| m.pop()))
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
    Ok(MessagePage { items: assemble(conn, rows)?, has_more })
}

fn message_not_found(room_id: i64, seq: i64) -> ApiError {
    ApiError::not_found("message_not_found", format!("Room {room_id} has no message {seq}."))
}

pub(crate) fn load(conn: &mut DbConnection, room_id: i64, seq: i64) -> Result<(MessageRow, UserRow), ApiError> {
    messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::seq.eq(seq))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .first(conn)
        .optional()?
        .ok_or_else(|| message_not_found(room_id, seq))
}

/// Messages as clients see them: with the excerpt of what each answers and its reactions. Two queries
/// at most, however many messages (of however many rooms).
pub fn assemble(conn: &mut DbConnection, rows: Vec<(MessageRow, UserRow)>) -> Result<Vec<Message>, ApiError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let mut rooms: Vec<i64> = rows.iter().map(|(m, _)| m.room_id).collect();
    rooms.sort_unstable();
    rooms.dedup();
    let seqs: Vec<i64> = rows.iter().map(|(m, _)| m.seq).collect();
    let mut reactions = reactions_of(conn, &rooms, &seqs)?;
    let answered: Vec<i64> = rows.iter().filter_map(|(m, _)| m.reply_to_seq).collect();
    let mut replies: HashMap<(i64, i64), ReplyTo> = HashMap::new();
    if !answered.is_empty() {
        let found: Vec<(MessageRow, UserRow)> = messages::table
            .inner_join(users::table)
            .filter(messages::room_id.eq_any(&rooms))
            .filter(messages::seq.eq_any(&answered))
            .select((MessageRow::as_select(), UserRow::as_select()))
            .load(conn)?;
        replies = found.into_iter().map(|row| ((row.0.room_id, row.0.seq), reply_view(row))).collect();
    }
    Ok(rows
        .into_iter()
        .map(|(row, author)| {
            let key = (row.room_id, row.seq);
            let reply_to = row.reply_to_seq.and_then(|seq| replies.get(&(row.room_id, seq)).cloned());
            let mut message = row.with_author(author);
            message.reply_to = reply_to;
            message.reactions = reactions.remove(&key).unwrap_or_default();
            message
        })
        .collect())
}

/// The reactions on the given messages, by (room, seq): each emoji ordered by its first use.
fn reactions_of(
    conn: &mut DbConnection,
    rooms: &[i64],
    seqs: &[i64],
) -> Result<HashMap<(i64, i64), Vec<Reaction>>, ApiError> {
    let rows: Vec<ReactionRow> = message_reactions::table
        .filter(message_reactions::room_id.eq_any(rooms))
        .filter(message_reactions::seq.eq_any(seqs))
        .order((message_reactions::created_at.asc(), message_reactions::user_id.asc()))
        .select(ReactionRow::as_select())
        .load(conn)?;
    let mut by_message: HashMap<(i64, i64), Vec<Reaction>> = HashMap::new();
    for row in rows {
        let list = by_message.entry((row.room_id, row.seq)).or_default();
        match list.iter_mut().find(|r| r.emoji == row.emoji) {
            Some(reaction) => {
                reaction.count += 1;
                reaction.user_ids.push(row.user_id);
            }
            None => list.push(Reaction { emoji: row.emoji, count: 1, user_ids: vec![row.user_id] }),
        }
    }
    Ok(by_message)
}

/// One message as clients see it.
pub fn one(conn: &mut DbConnection, room_id: i64, seq: i64) -> Result<Message, ApiError> {
    let row = load(conn, room_id, seq)?;
    // Unwrap: assemble returns one message per row given.
    Ok(assemble(conn, vec![row])?.pop().unwrap())
}

/// The room's last seq, for a change to one of its messages (`changed_at_seq`), with the room's row
/// locked until commit on PostgreSQL (as a send locks it): a change and a send to the same room commit
/// one after the other, so no change is stamped with a seq older than a message committed before it.
pub(crate) fn room_changing(conn: &mut DbConnection, room_id: i64) -> Result<i64, ApiError> {
    Ok(diesel::update(rooms::table.find(room_id))
        .set(rooms::last_seq.eq(rooms::last_seq))
        .returning(rooms::last_seq)
        .get_result(conn)?)
}

/// The messages up to `since` changed (edited, deleted) after message `since` was sent, in the order
/// of their changes: what a client resuming with `since` missed of the messages it already had.
/// At most `limit`; the caller asks for one more to tell that there are more.
pub fn changed_since(conn: &mut DbConnection, room_id: i64, since: i64, limit: i64) -> Result<Vec<Message>, ApiError> {
    let rows: Vec<(MessageRow, UserRow)> = messages::table
        .inner_join(users::table)
        .filter(messages::room_id.eq(room_id))
        .filter(messages::changed_at_seq.ge(since))
        .filter(messages::seq.le(since))
        .order((messages::changed_at_seq.asc(), messages::seq.asc()))
        .select((MessageRow::as_select(), UserRow::as_select()))
        .limit(limit)
        .load(conn)?;
    assemble(conn, rows)
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
    let (row, _) = load(conn, room_id, seq)?;
    if row.author_id != editor {
        return Err(ApiError::forbidden("not_the_author", "Only the author can edit a message."));
    }
    if row.deleted {
        return Err(ApiError::conflict("message_deleted", "A deleted message cannot be edited."));
    }
    let edited_at = now();
    let changed_at_seq = room_changing(conn, room_id)?;
    // An edit recomputes who is mentioned.
    let mentions = domain::mentions::resolve(conn, room_id, editor, &body.0)?;
    diesel::update(messages::table.find(row.id))
        .set((
            messages::body.eq(&body.0),
            messages::edited_at.eq(edited_at),
            messages::changed_at_seq.eq(changed_at_seq),
            messages::mentions.eq(join_ids(&mentions)),
        ))
        .execute(conn)?;
    one(conn, room_id, seq)
}

/// The author, the room's owner or an admin deletes a message: its text is erased, its seq stays. A
/// moderator deleting someone else's message is recorded in the audit log. Deleting twice is not an
/// error. Returns the message as it now is.
pub fn delete(conn: &mut DbConnection, room_id: i64, seq: i64, actor: i64) -> Result<Message, ApiError> {
    let visible = domain::rooms::visible(conn, room_id, actor)?;
    let (row, _) = load(conn, room_id, seq)?;
    if row.author_id != actor && !visible.is_moderator() {
        return Err(ApiError::forbidden(
            "not_the_author",
            "Only the author, the room's owner or an admin can delete a message.",
        ));
    }
    if row.author_id != actor && !row.deleted {
        domain::moderation::record(conn, room_id, actor, "message_deleted", Some(row.author_id), Some(seq), None)?;
    }
    if !row.deleted {
        let changed_at_seq = room_changing(conn, room_id)?;
        diesel::update(messages::table.find(row.id))
            .set((messages::body.eq(""), messages::deleted.eq(true), messages::changed_at_seq.eq(changed_at_seq)))
            .execute(conn)?;
        // Nothing is left to react to.
        diesel::delete(message_reactions::table.filter(message_reactions::room_id.eq(room_id)))
            .filter(message_reactions::seq.eq(seq))
            .execute(conn)?;
    }
    one(conn, room_id, seq)
}

/// Moves the caller's read marker forward to `seq` (capped at the newest message); never backwards.
pub fn mark_read(conn: &mut DbConnection, room_id: i64, reader: i64, seq: i64) -> Result<(), ApiError> {
    if seq < 0 {
        return Err(ApiError::invalid("seq", "must not be negative"));
    }
    let visible = domain::rooms::visible(conn, room_id, reader)?;
    visible.require_member()?;
    let seq = seq.min(visible.room.last_seq);
    read_up_to(conn, room_id, reader, seq)?;
    // Reading the room reads its notifications up to there too.
    domain::notifications::read_room(conn, reader, room_id, seq)
}

/// Moves a member's read marker up to `seq`, never down: for a read, and for every send in the writer
/// (on SQLite a statement kept prepared, see `db::prepared`).
fn read_up_to(conn: &mut DbConnection, room_id: i64, user_id: i64, seq: i64) -> QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(lite) => prepared::ReadUpTo { room_id, user_id, seq }.execute(lite),
        DbConnection::Postgresql(pg) => diesel::update(room_members::table.find((room_id, user_id)))
            .filter(room_members::last_read_seq.lt(seq))
            .set(room_members::last_read_seq.eq(seq))
            .execute(pg),
    }
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
