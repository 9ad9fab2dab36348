//! `GET /search` (CONTRACT-2 "Search"): full-text search over the caller's rooms.

use actix_web::web;
use chat_api::{Problem, Scope, SearchPage};
use serde::Deserialize;
use utoipa::IntoParams;

use super::rooms::{id_cursor, page_limit};
use crate::caller::Caller;
use crate::domain::search;
use crate::error::ApiError;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/search").get(find));
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// 1-200 characters: messages containing every word (case-insensitive; the last word also as a prefix).
    q: String,
    /// Only this room (one the caller can see).
    room_id: Option<i64>,
    /// 1-100, default 20.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Messages of the caller's rooms containing every word of `q`, newest first, with the matched words'
/// character offsets (`messages:read`).
#[utoipa::path(get, path = "/api/v1/search", tag = "messages", operation_id = "search_messages",
    params(SearchQuery),
    responses(
        (status = 200, description = "Newest first", body = SearchPage),
        (status = 400, description = "`invalid_query` or `invalid_cursor`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`insufficient_scope`: needs `messages:read`", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`room_not_found`: `room_id` names a room the caller cannot see", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`: `q` empty or over 200 characters", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn find(
    state: State,
    caller: Caller,
    query: web::Query<SearchQuery>,
) -> Result<web::Json<SearchPage>, ApiError> {
    caller.require(Scope::MessagesRead)?;
    let SearchQuery { q, room_id, limit, cursor } = query.into_inner();
    let (limit, before) = (page_limit(limit, 20)?, id_cursor(cursor)?);
    state.writer.index_for_search().await?;
    let page = state.db.read(move |conn| search::search(conn, caller.user_id, &q, room_id, limit, before)).await?;
    Ok(web::Json(page))
}
