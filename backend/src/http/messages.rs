//! `/rooms/{room_id}/messages` and `/rooms/{room_id}/read`.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{EditMessageRequest, Message, MessagePage, Problem, ReadMarkerRequest, Scope, SendMessageRequest};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::JsonBody;
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
    let posted = state.writer.send(room_id, caller.user_id, body, keys, reply_to).await?;
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
}

/// A page of history in ascending seq; without `before`/`after`, the latest page.
#[utoipa::path(get, path = "/api/v1/rooms/{room_id}/messages", tag = "messages",
    params(("room_id" = i64, Path, description = "The room's id"), HistoryQuery),
    responses(
        (status = 200, description = "A page of messages", body = MessagePage),
        (status = 400, description = "`invalid_query`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: needs `messages:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn history(
    state: State,
    caller: Caller,
    path: web::Path<i64>,
    query: web::Query<HistoryQuery>,
) -> Result<web::Json<MessagePage>, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let room_id = path.into_inner();
    let HistoryQuery { before, after, limit } = query.into_inner();
    let window = Window { before, after, limit: page_limit(limit, DEFAULT_PAGE)? };
    Ok(web::Json(state.db.read(move |conn| messages::history(conn, room_id, caller.user_id, window)).await?))
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
