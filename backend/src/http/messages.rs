//! `/rooms/{room_id}/messages` and `/rooms/{room_id}/read`.

use std::time::Duration;

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{EditMessageRequest, Message, MessagePage, Problem, ReadMarkerRequest, Scope, SendMessageRequest};
use serde::Deserialize;
use tokio::time::Instant;
use utoipa::IntoParams;

use super::json::JsonBody;
use super::rate_limit::Limit;
use super::rooms::page_limit;
use crate::caller::Caller;
use crate::domain::messages::{self, DEFAULT_PAGE, DedupKeys, MessageBody, Window};
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/rooms/{room_id}/messages").post(send_message).get(history))
        .service(web::resource("/rooms/{room_id}/messages/{seq}").patch(edit).delete(delete))
        .service(
            web::resource("/rooms/{room_id}/messages/{seq}/reactions/{emoji}")
                .put(add_reaction)
                .delete(remove_reaction),
        )
        .service(web::resource("/rooms/{room_id}/read").post(mark_read));
}

/// Send a message (`send_message`). It is committed before this responds. A retry with the same
/// `client_id` or `Idempotency-Key` returns the first message with status 200 and stores nothing.
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/messages", tag = "messages", operation_id = "send_message",
    params(
        ("room_id" = i64, Path, description = "The room's id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Up to 255 bytes; deduplicates retries like `client_id`"),
    ),
    request_body = SendMessageRequest,
    responses(
        (status = 201, description = "Stored", body = Message),
        (status = 200, description = "A retry: the message stored the first time", body = Message),
        (status = 403, description = "`insufficient_scope` (needs `messages:write`), `not_a_member`, `muted` or `blocked`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn send_message(
    state: State,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<i64>,
    body: JsonBody<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::MessagesWrite)?;
    // One budget for the user's sends, here and on every socket of theirs (CONTRACT-2 "Socket limits").
    state.limits.enforce(&req, Limit::Sends, &caller.user_id.to_string()).await?;
    let room_id = path.into_inner();
    let SendMessageRequest { body, client_id, reply_to } = body.into_inner();
    let body = MessageBody::parse(body)?;
    let idempotency_key = match req.headers().get("idempotency-key") {
        Some(v) => {
            Some(v.to_str().map_err(|_| ApiError::invalid("Idempotency-Key", "must be visible ASCII"))?.to_owned())
        }
        None => None,
    };
    let keys = DedupKeys::parse(client_id, idempotency_key)?;
    let posted = state.writer.send(room_id, caller.user_id, body, keys, reply_to, None).await?;
    if posted.created {
        // Committed, and published by the writer in seq order.
        metrics::counter!("chat_messages_sent_total", "via" => "rest").increment(1);
        Ok(HttpResponse::Created().json(posted.message))
    } else {
        Ok(HttpResponse::Ok().json(posted.message))
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// Only messages with a lower seq (page backwards).
    before: Option<i64>,
    /// Only messages with a higher seq (page forwards).
    after: Option<i64>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Long polling, with `after`: when there is nothing after it yet, hold the request up to this many
    /// seconds (1-30) until a message arrives; then 200 with the new messages, or with no items.
    #[param(minimum = 1, maximum = 30)]
    wait: Option<u64>,
}

/// A page of history in ascending seq; without `before`/`after`, the latest page. With `after` and
/// `wait`, long polling: held until there is a message after `after`, or `wait` seconds pass.
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/messages", tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of messages (with `wait`: empty when none arrived in time)", body = MessagePage),
        (status = 400, description = "`invalid_query`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: needs `messages:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: too many requests held with `wait` at once", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<MessagePage>, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let room_id = path.into_inner();
    let HistoryQuery { before, after, limit, wait } = query.into_inner();
    let window = Window { before, after, limit: page_limit(limit, DEFAULT_PAGE)? };
    let page = match wait {
        None => read_page(&state, room_id, caller.user_id, window).await?,
        Some(wait) => long_poll(&state, room_id, caller.user_id, window, long_poll_wait(wait, &window)?).await?,
    };
    Ok(web::Json(page))
}

/// Requests one user may hold with `wait` at once on one node (each holds a connection open).
const MAX_HELD_PER_USER: usize = 20;
/// While held, the database is read again at least this often: a wake-up lost with a Redis event
/// costs at most this much delay.
const RECHECK: Duration = Duration::from_secs(5);

fn long_poll_wait(wait: u64, window: &Window) -> Result<Duration, ApiError> {
    if !(1..=30).contains(&wait) {
        return Err(ApiError::bad_request("invalid_query", "wait must be between 1 and 30 seconds."));
    }
    if window.after.is_none() || window.before.is_some() {
        return Err(ApiError::bad_request("invalid_query", "wait needs after (and no before)."));
    }
    Ok(Duration::from_secs(wait))
}

async fn read_page(state: &State, room_id: i64, user_id: i64, window: Window) -> Result<MessagePage, ApiError> {
    state.db.read(move |conn| messages::history(conn, room_id, user_id, window)).await
}

/// Reads the page after `window.after`; while it is empty, waits for the room's next message on this
/// node (see `events::waiters`) and reads again, until `wait` has passed or the node shuts down.
/// Every answer comes from the database, and membership is checked on every read.
async fn long_poll(
    state: &State,
    room_id: i64,
    user_id: i64,
    window: Window,
    wait: Duration,
) -> Result<MessagePage, ApiError> {
    let deadline = Instant::now() + wait;
    let waiters = &state.realtime.hub.waiters;
    let waiter = waiters
        .enter(room_id, user_id, MAX_HELD_PER_USER)
        .ok_or(ApiError::RateLimited { retry_after: Duration::from_secs(1) })?;
    loop {
        // Armed before reading: a message committed after the read wakes this.
        let woken = waiter.notify().notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let page = read_page(state, room_id, user_id, window).await?;
        let now = Instant::now();
        if !page.items.is_empty() || now >= deadline || state.realtime.is_draining() {
            return Ok(page);
        }
        let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), woken).await;
    }
}

/// Edit a message's text (its author only).
#[utoipa::path(patch, path = "/api/v1/rooms/{room_id}/messages/{seq}", tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id"), ("seq" = i64, Path, description = "The message's seq")),
    request_body = EditMessageRequest,
    responses(
        (status = 200, description = "The edited message", body = Message),
        (status = 403, description = "`not_the_author` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `message_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`message_deleted`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn edit(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64)>,
    body: JsonBody<EditMessageRequest>,
) -> Result<web::Json<Message>, ApiError> {
    caller.require(Scope::MessagesWrite)?;
    let (room_id, seq) = path.into_inner();
    let body = MessageBody::parse(body.into_inner().body)?;
    let edit = move |conn: &mut _| {
        let message = messages::edit(conn, room_id, seq, caller.user_id, &body)?;
        Ok((message.clone(), vec![Event::MessageUpdated { message }]))
    };
    // Through the writer: published in commit order with the room's messages.
    Ok(web::Json(state.writer.commit(edit).await?))
}

/// Delete a message (its author or the room's owner): the text is erased, the seq stays.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/messages/{seq}", tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id"), ("seq" = i64, Path, description = "The message's seq")),
    responses(
        (status = 204, description = "Deleted (or already was)"),
        (status = 403, description = "`not_the_author` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `message_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn delete(state: State, caller: Caller, path: web::Path<(i64, i64)>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::MessagesWrite)?;
    let (room_id, seq) = path.into_inner();
    let delete = move |conn: &mut _| {
        messages::delete(conn, room_id, seq, caller.user_id)?;
        Ok(((), vec![Event::MessageDeleted { room_id, seq }]))
    };
    // Through the writer: published in commit order with the room's messages.
    state.writer.commit(delete).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Move the caller's read marker forward (never backwards).
#[utoipa::path(post, path = "/api/v1/rooms/{room_id}/read", tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id")),
    request_body = ReadMarkerRequest,
    responses(
        (status = 204, description = "Marked"),
        (status = 403, description = "`not_a_member` or `insufficient_scope` (needs `messages:read`)", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn mark_read(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    body: JsonBody<ReadMarkerRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let room_id = path.into_inner();
    let seq = body.into_inner().seq;
    state.db.write(move |conn| messages::mark_read(conn, room_id, caller.user_id, seq)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Add an emoji to a message (a member; `messages:write`). Adding one already there changes nothing.
#[utoipa::path(put, path = "/api/v1/rooms/{room_id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    operation_id = "add_reaction",
    params(
        ("room_id" = i64, Path, description = "The room's id"),
        ("seq" = i64, Path, description = "The message's seq"),
        ("emoji" = String, Path, description = "1-32 bytes of UTF-8, percent-encoded; no white space or control character"),
    ),
    responses(
        (status = 204, description = "The caller's reaction is there"),
        (status = 403, description = "`not_a_member` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `message_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`message_deleted`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed` (the emoji) or `too_many_reactions` (20 different ones already)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn add_reaction(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64, String)>,
) -> Result<HttpResponse, ApiError> {
    react(state, caller, path.into_inner(), true).await
}

/// Take back the caller's emoji on a message. Taking back one not there changes nothing.
#[utoipa::path(delete, path = "/api/v1/rooms/{room_id}/messages/{seq}/reactions/{emoji}", tag = "messages",
    operation_id = "remove_reaction",
    params(
        ("room_id" = i64, Path, description = "The room's id"),
        ("seq" = i64, Path, description = "The message's seq"),
        ("emoji" = String, Path, description = "1-32 bytes of UTF-8, percent-encoded"),
    ),
    responses(
        (status = 204, description = "The caller's reaction is gone"),
        (status = 403, description = "`not_a_member` or `insufficient_scope`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found` or `message_not_found`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`message_deleted`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: not an emoji this API takes", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn remove_reaction(
    state: State,
    caller: Caller,
    path: web::Path<(i64, i64, String)>,
) -> Result<HttpResponse, ApiError> {
    react(state, caller, path.into_inner(), false).await
}

async fn react(
    state: State,
    caller: Caller,
    (room_id, seq, emoji): (i64, i64, String),
    added: bool,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::MessagesWrite)?;
    let change = move |conn: &mut _| {
        let events = crate::domain::reactions::set(conn, room_id, seq, caller.user_id, &emoji, added)?;
        Ok(((), events))
    };
    // Through the writer: published in commit order with the room's messages and edits.
    state.writer.commit(change).await?;
    Ok(HttpResponse::NoContent().finish())
}
