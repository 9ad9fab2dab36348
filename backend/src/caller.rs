//! Who is calling: the `Caller` extractor reads `Authorization: Bearer <token>`, where the token is
//! either a user's access token (a JWT, checked without the database) or an API token (looked up on
//! every request, so revocation is immediate on every node).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, dev::Payload};
use chat_api::Scope;
use serde::{Deserialize, Serialize};

use crate::domain::api_tokens;
use crate::domain::credentials::API_TOKEN_PREFIX;
use crate::error::ApiError;
use crate::http::rate_limit::Limit;
use crate::state::State;

/// An authenticated caller: of a request, of a WebSocket ticket (kept until redeemed), of a socket.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Caller {
    pub user_id: i64,
    /// `None` for a user's own session (it may do anything); the token's scopes for an API token.
    pub scopes: Option<Vec<Scope>>,
    /// The API token used, if any.
    pub api_token_id: Option<i64>,
    /// The session (refresh-token family) of an access token; `None` for an API token.
    pub session: Option<String>,
    /// When the credential expires, in Unix seconds (`None`: an API token without expiry).
    pub expires_at: Option<i64>,
}

impl Caller {
    /// 403 `insufficient_scope` unless the caller may act with `scope`.
    pub fn require(&self, scope: Scope) -> Result<(), ApiError> {
        if self.may(scope) {
            return Ok(());
        }
        Err(ApiError::forbidden("insufficient_scope", format!("This API token lacks the scope {}.", scope.as_str())))
    }

    /// True when the caller may act with `scope` (a user's own session may do anything).
    pub fn may(&self, scope: Scope) -> bool {
        self.scopes.as_ref().is_none_or(|scopes| scopes.contains(&scope))
    }

    /// Hides what the caller may not read from a room: its last message, without `messages:read`.
    pub fn redact(&self, room: &mut chat_api::Room) {
        if !self.may(Scope::MessagesRead) {
            room.last_message = None;
        }
    }

    /// 403 `insufficient_scope` for API tokens: managing rooms and tokens needs the user's own session.
    pub fn require_session(&self) -> Result<(), ApiError> {
        match self.scopes {
            Some(_) => {
                Err(ApiError::forbidden("insufficient_scope", "This needs the user's own session, not an API token."))
            }
            None => Ok(()),
        }
    }
}

/// The bearer token of a request, if it has one.
pub fn bearer_token(req: &HttpRequest) -> Result<&str, ApiError> {
    let missing = || ApiError::unauthorized("unauthorized", "Send Authorization: Bearer <token>.");
    let value = req.headers().get(header::AUTHORIZATION).ok_or_else(missing)?;
    let value = value.to_str().map_err(|_| missing())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(missing)?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(missing());
    }
    Ok(token.trim())
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Caller, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let token = bearer_token(req).map(str::to_owned);
        let state = req.app_data::<State>().cloned();
        let req = req.clone();
        Box::pin(async move {
            let token = token?;
            // Unwrap-free: the state is registered by `Application::build` for every route.
            let state = state.ok_or_else(|| ApiError::internal(std::io::Error::other("no app state")))?;
            let caller = authenticate_bearer(&state, token).await?;
            state.limits.enforce(&req, Limit::PerUser, &caller.user_id.to_string()).await?;
            Ok(caller)
        })
    }
}

/// Checks a bearer token: a JWT by its signature, an API token in the database.
pub async fn authenticate_bearer(state: &State, token: String) -> Result<Caller, ApiError> {
    if !token.starts_with(API_TOKEN_PREFIX) {
        let verified = state.keys.verify(&token)?;
        if state.realtime.hub.ended_sessions.has_ended(&verified.session) {
            return Err(session_ended());
        }
        return Ok(Caller {
            user_id: verified.user_id,
            scopes: None,
            api_token_id: None,
            session: Some(verified.session),
            expires_at: Some(verified.expires_at),
        });
    }
    let row = state.db.read(move |conn| api_tokens::authenticate(conn, &token)).await?;
    if api_tokens::needs_touch(&row) {
        let id = row.id;
        state.db.write(move |conn| api_tokens::touch(conn, id)).await?;
    }
    let expires_at = row.expires_at.map(|t| t.and_utc().timestamp());
    Ok(Caller {
        user_id: row.user_id,
        scopes: Some(row.scope_list()),
        api_token_id: Some(row.id),
        session: None,
        expires_at,
    })
}

/// 401 for a credential whose session was ended (logout, or a stolen refresh token detected).
pub fn session_ended() -> ApiError {
    ApiError::unauthorized("session_ended", "This session has ended: sign in again.")
}
