//! `/auth/*` and `/me`: accounts and sessions.

use actix_web::{HttpRequest, HttpResponse, web};
use chat_api::{LoginRequest, Problem, RefreshRequest, RegisterRequest, TokenResponse, User};

use super::json::JsonBody;
use super::rate_limit::Limit;
use super::sessions::user_agent;
use crate::caller::Caller;
use crate::domain::credentials::{hash_password, hashing, verify_password, verify_password_of_nobody};
use crate::domain::sessions;
use crate::domain::users::{self, Registration};
use crate::error::ApiError;
use crate::events::Event;
use crate::state::State;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/auth/register").post(register))
        .service(web::resource("/auth/login").post(login))
        .service(web::resource("/auth/refresh").post(refresh))
        .service(web::resource("/auth/logout").post(logout))
        .service(web::resource("/me").get(me).patch(super::accounts::update_me).delete(super::accounts::delete_me));
}

/// Create an account and start a session.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", security(()),
    request_body = RegisterRequest,
    responses(
        (status = 201, description = "Registered and signed in", body = TokenResponse),
        (status = 409, description = "`username_taken`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, with `errors`; `invalid_text`: U+0000 or a control character where none may be", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn register(
    state: State,
    req: HttpRequest,
    body: JsonBody<RegisterRequest>,
) -> Result<HttpResponse, ApiError> {
    state.limits.enforce_per_address(&req, Limit::Register).await?;
    let registration = Registration::parse(body.into_inner())?;
    let password = registration.password.clone();
    // Hashing is deliberately slow: keep it off the async workers and out of the database writer.
    let hash = hashing(move || hash_password(&password)).await??;
    let (st, agent) = (state.clone(), user_agent(&req));
    let session = state
        .db
        .write(move |conn| {
            let user = users::create(conn, &registration, &hash)?;
            sessions::start(conn, &st.keys, st.config.refresh_token_ttl, user, None, agent.as_deref())
        })
        .await?;
    Ok(HttpResponse::Created().json(session))
}

/// Start a session with a username and password.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", security(()),
    request_body = LoginRequest,
    responses(
        (status = 200, description = "Signed in", body = TokenResponse),
        (status = 401, description = "`invalid_credentials`: the same answer whether the user is unknown or the password wrong",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn login(
    state: State,
    req: HttpRequest,
    body: JsonBody<LoginRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let LoginRequest { username, password } = body.into_inner();
    // Both count every attempt: guesses spread over many names from one address are held to the
    // login rate, guesses at one name over many addresses to the (higher) per-username rate.
    state.limits.enforce_per_address(&req, Limit::LoginPerAddress).await?;
    state.limits.enforce(&req, Limit::LoginPerUsername, &username.trim().to_lowercase()).await?;
    let found = state.db.read(move |conn| users::find_with_password(conn, &username)).await?;
    let user = hashing(move || match found {
        Some((user, hash)) if verify_password(&hash, &password) => Some(user),
        Some(_) => None,
        None => {
            verify_password_of_nobody(&password);
            None
        }
    })
    .await?
    .ok_or_else(|| ApiError::unauthorized("invalid_credentials", "The username or password is wrong."))?;
    let (st, agent) = (state.clone(), user_agent(&req));
    let ttl = st.config.refresh_token_ttl;
    let session =
        state.db.write(move |conn| sessions::start(conn, &st.keys, ttl, user, None, agent.as_deref())).await?;
    Ok(web::Json(session))
}

/// Spend a refresh token for a new pair. Presenting a spent one revokes its whole family.
#[utoipa::path(post, path = "/api/v1/auth/refresh", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "A new access and refresh token", body = TokenResponse),
        (status = 401, description = "`invalid_refresh_token`: unknown, expired, revoked or already used",
            body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn refresh(
    state: State,
    req: HttpRequest,
    body: JsonBody<RefreshRequest>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let token = body.into_inner().refresh_token;
    let (st, agent) = (state.clone(), user_agent(&req));
    let ttl = st.config.refresh_token_ttl;
    let session = state.db.write(move |conn| sessions::refresh(conn, &st.keys, ttl, &token, agent.as_deref())).await?;
    Ok(web::Json(session))
}

/// End the session a refresh token belongs to: its access tokens get 401 from then on, on every node,
/// and its sockets close with 4001. Unknown tokens are accepted silently.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", security(()),
    request_body = RefreshRequest,
    responses((status = 204, description = "Signed out")))]
pub async fn logout(state: State, body: JsonBody<RefreshRequest>) -> Result<HttpResponse, ApiError> {
    let token = body.into_inner().refresh_token;
    if let Some(session) = state.db.write(move |conn| sessions::logout(conn, &token)).await? {
        // At once here and through Redis; every node also reads it from the database within seconds.
        state.realtime.broker.publish(Event::SessionEnded { session }).await;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// The caller's own account (for an API token, the user who made it).
#[utoipa::path(get, path = "/api/v1/me", tag = "auth",
    responses(
        (status = 200, description = "The caller", body = User),
    ))]
pub async fn me(state: State, caller: Caller) -> Result<web::Json<User>, ApiError> {
    let user = state.db.read(move |conn| users::find(conn, caller.user_id)).await?;
    Ok(web::Json(user.into()))
}
