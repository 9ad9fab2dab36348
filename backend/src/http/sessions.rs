//! `/me/sessions` and `/auth/logout-all`: the sessions a user sees and ends (CONTRACT-2 "Credentials").

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{Problem, SessionList};

use crate::caller::Caller;
use crate::domain::sessions;
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;

/// The longest `User-Agent` kept; the rest is cut.
const MAX_USER_AGENT: usize = 256;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/me/sessions").get(list))
        .service(web::resource("/me/sessions/{session_id}").delete(end))
        .service(web::resource("/auth/logout-all").post(end_all));
}

/// The client's `User-Agent` as a session shows it: visible text only, at most 256 characters.
pub fn user_agent(req: &HttpRequest) -> Option<String> {
    let raw = req.headers().get(actix_web::http::header::USER_AGENT)?.to_str().ok()?;
    let kept: String = raw.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect();
    let kept = kept.trim();
    (!kept.is_empty()).then(|| kept.to_owned())
}

/// The caller's signed-in sessions (at most 100, the most recently active first).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "auth", operation_id = "list_sessions",
    responses(
        (status = 200, description = "Most recently active first; `current` marks this request's", body = SessionList),
        (status = 403, description = "`insufficient_scope`: API tokens cannot see sessions", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn list(state: State, caller: Caller) -> Result<web::Json<SessionList>, ApiError> {
    caller.require_session()?;
    let items = state.db.read(move |conn| sessions::list(conn, caller.user_id, caller.session.as_deref())).await?;
    Ok(web::Json(SessionList { items }))
}

/// End one of the caller's sessions: its access tokens get 401 from then on, on every node, and its
/// sockets close with 4001.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{session_id}", tag = "auth", operation_id = "end_session",
    params(("session_id" = String, Path, description = "A session's `id`")),
    responses(
        (status = 204, description = "Ended"),
        (status = 403, description = "`insufficient_scope`: API tokens cannot end sessions", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`session_not_found`: not one of the caller's live sessions", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end(state: State, caller: Caller, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let session = path.into_inner();
    let ended = session.clone();
    state.db.write(move |conn| sessions::end(conn, caller.user_id, &ended)).await?;
    // At once here and through Redis; every node also reads it from the database within seconds.
    state.realtime.broker.publish(Event::SessionEnded { session }).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Sign out everywhere: every session of the caller ends, this one too.
#[utoipa::path(post, path = "/api/v1/auth/logout-all", tag = "auth", operation_id = "logout_all",
    responses(
        (status = 204, description = "Every session ended"),
        (status = 403, description = "`insufficient_scope`: API tokens cannot end sessions", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn end_all(state: State, caller: Caller) -> Result<HttpResponse, ApiError> {
    caller.require_session()?;
    let ended = state.db.write(move |conn| sessions::end_all(conn, caller.user_id, None)).await?;
    publish_ended(&state, ended).await;
    Ok(HttpResponse::NoContent().finish())
}

/// Tells every node that these sessions ended (at once here, in one Redis round trip for the others; every
/// node also reads it from the database within seconds).
pub async fn publish_ended(state: &State, sessions: Vec<String>) {
    let events: Vec<Event> = sessions.into_iter().map(|session| Event::SessionEnded { session }).collect();
    state.realtime.broker.publish_all(&events).await;
}
