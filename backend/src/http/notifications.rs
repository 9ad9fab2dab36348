//! `/notifications` (CONTRACT-2 "Notifications"): the caller's mentions, replies and direct messages,
//! newest first, and marking them read.

use actix_web::{HttpResponse, web};
use chat_api::{NotificationPage, Problem, ReadNotificationsRequest, Scope};
use serde::Deserialize;
use utoipa::IntoParams;

use super::json::JsonBody;
use super::rooms::{id_cursor, page_limit};
use crate::caller::Caller;
use crate::domain::notifications;
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/notifications").get(list)).service(web::resource("/notifications/read").post(read));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// `true`: only the unread ones.
    unread: Option<bool>,
    /// 1-100, default 50.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The caller's notifications, newest first, of the rooms they are still in (`messages:read`).
#[utoipa::path(get, path = "/api/v1/notifications", tag = "messages", operation_id = "list_notifications",
    params(NotificationQuery),
    responses(
        (status = 200, description = "Newest first", body = NotificationPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: needs `messages:read`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(
    state: State,
    caller: Caller,
    query: web::Query<NotificationQuery>,
) -> Result<web::Json<NotificationPage>, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let NotificationQuery { unread, limit, cursor } = query.into_inner();
    let (limit, before) = (page_limit(limit, 50)?, id_cursor(cursor)?);
    let unread = unread.unwrap_or(false);
    let page = state.db.read(move |conn| notifications::list(conn, caller.user_id, unread, limit, before)).await?;
    Ok(web::Json(page))
}

/// Marks every notification of the caller's up to `up_to_id` read (`messages:read`, like `/read`).
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "messages", operation_id = "read_notifications",
    request_body = ReadNotificationsRequest,
    responses(
        (status = 204, description = "Read"),
        (status = 403, description = "`insufficient_scope`: needs `messages:read`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn read(
    state: State,
    caller: Caller,
    body: JsonBody<ReadNotificationsRequest>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let up_to_id = body.into_inner().up_to_id;
    state.db.write(move |conn| notifications::read_up_to(conn, caller.user_id, up_to_id)).await?;
    Ok(HttpResponse::NoContent().finish())
}
