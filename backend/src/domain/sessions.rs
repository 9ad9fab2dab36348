//! Sessions: signing in, rotating refresh tokens, signing out, and the list a user manages.
//!
//! A session is one sign-in: a *family* of refresh tokens (opaque, stored hashed, single-use) and the
//! access tokens (JWT, short-lived, checked without the database) they yield, which carry the family as
//! their `sid`. Each refresh spends the family's live token and adds the next; presenting a spent one
//! means it was copied, so the whole family is revoked and the thief and the victim must both log in
//! again. Ending a session revokes its family; `revocations::watch` tells every node.

use chat_api::{Session, TokenResponse};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::credentials::{JwtKeys, REFRESH_TOKEN_PREFIX, hash_secret, new_secret};
use super::users::find;
use crate::db::models::{NewRefreshToken, RefreshTokenRow, UserRow};
use crate::db::schema::refresh_tokens;
use crate::db::{DbConnection, now, utc};
use crate::error::ApiError;

/// The most sessions `GET /me/sessions` lists (the most recently active).
pub const MAX_LISTED: i64 = 100;

/// Starts a session (`family: None`), or gives one its next pair of tokens (a refresh): a refresh
/// token in the family and an access token. `user_agent`: the client's, as `GET /me/sessions` shows it.
pub fn start(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    user: UserRow,
    family: Option<&str>,
    user_agent: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let refresh_token = new_secret(REFRESH_TOKEN_PREFIX);
    let new_family = new_secret("");
    let family = family.unwrap_or(&new_family);
    let created_at = now();
    let ttl = Duration::from_std(refresh_ttl).map_err(ApiError::internal)?;
    diesel::insert_into(refresh_tokens::table)
        .values(NewRefreshToken {
            user_id: user.id,
            family,
            token_hash: &hash_secret(&refresh_token),
            created_at,
            expires_at: created_at + ttl,
            user_agent,
        })
        .execute(conn)?;
    let access = keys.issue(user.id, family)?;
    Ok(TokenResponse {
        access_token: access.token,
        token_type: "Bearer".into(),
        expires_in: access.expires_in,
        refresh_token,
        user: user.into(),
    })
}

/// Spends a refresh token and gives its session the next pair. A spent token presented
/// again revokes its family; any other unusable token is simply refused.
pub fn refresh(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    refresh_token: &str,
    user_agent: Option<&str>,
) -> Result<TokenResponse, ApiError> {
    let hash = hash_secret(refresh_token);
    let at = now();
    let rotated = conn.transaction(|conn| -> Result<Option<TokenResponse>, ApiError> {
        let family: Option<String> = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .select(refresh_tokens::family)
            .first(conn)
            .optional()?;
        let Some(family) = family else { return Ok(None) };
        lock_family(conn, &family)?;
        // Spending is one conditional UPDATE, so two concurrent refreshes cannot both succeed.
        let spent: Option<(i64, String)> = diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .filter(refresh_tokens::used_at.is_null())
                .filter(refresh_tokens::revoked_at.is_null())
                .filter(refresh_tokens::expires_at.gt(at)),
        )
        .set(refresh_tokens::used_at.eq(at))
        .returning((refresh_tokens::user_id, refresh_tokens::family))
        .get_result(conn)
        .optional()?;
        let Some((user_id, family)) = spent else { return Ok(None) };
        let user = find(conn, user_id)?;
        start(conn, keys, refresh_ttl, user, Some(&family), user_agent).map(Some)
    })?;
    if let Some(session) = rotated {
        return Ok(session);
    }
    let known: Option<RefreshTokenRow> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(&hash))
        .select(RefreshTokenRow::as_select())
        .first(conn)
        .optional()?;
    if let Some(reused) = known.filter(|t| t.used_at.is_some()) {
        tracing::warn!(user_id = reused.user_id, "spent refresh token presented again; revoking its family");
        revoke_family(conn, &reused.family)?;
    }
    Err(ApiError::unauthorized("invalid_refresh_token", "The refresh token is invalid, expired or already used."))
}

/// The sessions (refresh-token families) ended at or after `since` (what `revocations::watch` reads).
pub fn ended_since(conn: &mut DbConnection, since: NaiveDateTime) -> Result<Vec<String>, ApiError> {
    Ok(refresh_tokens::table
        .filter(refresh_tokens::revoked_at.ge(since))
        .select(refresh_tokens::family)
        .distinct()
        .load(conn)?)
}

/// Ends the session the refresh token belongs to and returns it. Unknown tokens are ignored: logging
/// out twice is fine.
pub fn logout(conn: &mut DbConnection, refresh_token: &str) -> Result<Option<String>, ApiError> {
    let family: Option<String> = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash_secret(refresh_token)))
        .select(refresh_tokens::family)
        .first(conn)
        .optional()?;
    if let Some(family) = &family {
        revoke_family(conn, family)?;
    }
    Ok(family)
}

/// The user's live sessions, the most recently active first (at most `MAX_LISTED`); `current` marks
/// the caller's own.
pub fn list(conn: &mut DbConnection, user_id: i64, current: Option<&str>) -> Result<Vec<Session>, ApiError> {
    // A live session has exactly one live token: the one its last sign-in or refresh made.
    let live: Vec<(String, NaiveDateTime, Option<String>)> = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::used_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now()))
        .order((refresh_tokens::created_at.desc(), refresh_tokens::id.desc()))
        .limit(MAX_LISTED)
        .select((refresh_tokens::family, refresh_tokens::created_at, refresh_tokens::user_agent))
        .load(conn)?;
    let families: Vec<&String> = live.iter().map(|(family, ..)| family).collect();
    let started: std::collections::HashMap<String, Option<NaiveDateTime>> = refresh_tokens::table
        .filter(refresh_tokens::family.eq_any(&families))
        .group_by(refresh_tokens::family)
        .select((refresh_tokens::family, diesel::dsl::min(refresh_tokens::created_at)))
        .load::<(String, Option<NaiveDateTime>)>(conn)?
        .into_iter()
        .collect();
    Ok(live
        .into_iter()
        .map(|(family, last_used_at, user_agent)| Session {
            created_at: utc(started.get(&family).copied().flatten().unwrap_or(last_used_at)),
            last_used_at: utc(last_used_at),
            user_agent,
            current: current == Some(family.as_str()),
            id: family,
        })
        .collect())
}

/// Ends one of the user's live sessions. 404 `session_not_found` when it is not one.
pub fn end(conn: &mut DbConnection, user_id: i64, session: &str) -> Result<(), ApiError> {
    let live: Option<i64> = refresh_tokens::table
        .filter(refresh_tokens::family.eq(session))
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::used_at.is_null())
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now()))
        .select(refresh_tokens::id)
        .first(conn)
        .optional()?;
    if live.is_none() {
        return Err(ApiError::not_found("session_not_found", "You have no live session with this id."));
    }
    revoke_family(conn, session)
}

/// Ends every session of the user but `keep` (when given); returns those it ended.
pub fn end_all(conn: &mut DbConnection, user_id: i64, keep: Option<&str>) -> Result<Vec<String>, ApiError> {
    let mut families: Vec<String> = refresh_tokens::table
        .filter(refresh_tokens::user_id.eq(user_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .select(refresh_tokens::family)
        .distinct()
        .load(conn)?;
    families.retain(|family| Some(family.as_str()) != keep);
    for family in &families {
        revoke_family(conn, family)?;
    }
    Ok(families)
}

fn revoke_family(conn: &mut DbConnection, family: &str) -> Result<(), ApiError> {
    conn.transaction(|conn| {
        lock_family(conn, family)?;
        diesel::update(refresh_tokens::table.filter(refresh_tokens::family.eq(family)))
            .filter(refresh_tokens::revoked_at.is_null())
            .set(refresh_tokens::revoked_at.eq(now()))
            .execute(conn)?;
        Ok(())
    })
}

/// Makes refreshes and revocations of one family take turns, on PostgreSQL, by locking the family's
/// first token. Without it, under READ COMMITTED, a revocation racing a refresh updated the rows it saw
/// when it started, and the refresh's new token (inserted meanwhile) stayed valid: a thief racing the
/// reuse detection kept a live session. SQLite has one writer, so its writes take turns already.
fn lock_family(conn: &mut DbConnection, family: &str) -> Result<(), ApiError> {
    if let DbConnection::Postgresql(pg) = conn {
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .order(refresh_tokens::id.asc())
            .select(refresh_tokens::id)
            .limit(1)
            .for_update()
            .load::<i64>(pg)?;
    }
    Ok(())
}
