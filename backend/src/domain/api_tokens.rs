//! API tokens for external systems: created by a user, limited to scopes, revocable at once.
//!
//! Every request made with an API token looks it up in the database, so a revocation takes
//! effect on every node with the next request.

use chat_api::{ApiToken, CreateApiTokenRequest, CreatedApiToken, FieldError, Scope};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::credentials::{API_TOKEN_PREFIX, hash_secret, new_secret};
use crate::db::models::{ApiTokenRow, NewApiToken};
use crate::db::schema::api_tokens;
use crate::db::{DbConnection, now, utc};
use crate::error::ApiError;

/// `last_used_at` is refreshed at most this often, so that using a token is not a write per request.
const LAST_USED_PRECISION: Duration = Duration::minutes(1);

/// A token request, checked.
pub struct NewToken {
    name: String,
    scopes: Vec<Scope>,
    expires_in_days: Option<u32>,
}

impl NewToken {
    pub fn parse(req: CreateApiTokenRequest) -> Result<NewToken, ApiError> {
        let mut errors = Vec::new();
        let name = req.name.trim().to_owned();
        if !(1..=64).contains(&name.chars().count()) {
            errors.push(FieldError { field: "name".into(), message: "must be 1 to 64 characters".into() });
        }
        let mut scopes = req.scopes;
        scopes.sort();
        scopes.dedup();
        if scopes.is_empty() {
            errors.push(FieldError { field: "scopes".into(), message: "must name at least one scope".into() });
        }
        if req.expires_in_days.is_some_and(|d| !(1..=3650).contains(&d)) {
            errors.push(FieldError { field: "expires_in_days".into(), message: "must be 1 to 3650".into() });
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        crate::domain::text::check_name("name", &name)?;
        Ok(NewToken { name, scopes, expires_in_days: req.expires_in_days })
    }
}

pub fn create(conn: &mut DbConnection, user_id: i64, new: NewToken) -> Result<CreatedApiToken, ApiError> {
    let secret = new_secret(API_TOKEN_PREFIX);
    let created_at = now();
    let expires_at = new.expires_in_days.map(|d| created_at + Duration::days(i64::from(d)));
    let scopes = new.scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ");
    let id: i64 = diesel::insert_into(api_tokens::table)
        .values(NewApiToken {
            user_id,
            name: &new.name,
            token_hash: &hash_secret(&secret),
            scopes: &scopes,
            created_at,
            expires_at,
        })
        .returning(api_tokens::id)
        .get_result(conn)?;
    Ok(CreatedApiToken {
        id,
        name: new.name,
        scopes: new.scopes,
        token: secret,
        created_at: utc(created_at),
        expires_at: expires_at.map(utc),
    })
}

/// The caller's live tokens, newest first.
pub fn list(conn: &mut DbConnection, user_id: i64) -> Result<Vec<ApiToken>, ApiError> {
    let rows: Vec<ApiTokenRow> = api_tokens::table
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .order(api_tokens::id.desc())
        .select(ApiTokenRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(ApiToken::from).collect())
}

/// Revokes one of the caller's tokens; someone else's is a 404, as if it did not exist.
pub fn revoke(conn: &mut DbConnection, user_id: i64, token_id: i64) -> Result<(), ApiError> {
    let revoked = diesel::update(api_tokens::table.find(token_id))
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .set(api_tokens::revoked_at.eq(now()))
        .execute(conn)?;
    if revoked == 0 {
        return Err(ApiError::not_found("token_not_found", format!("You have no API token {token_id}.")));
    }
    Ok(())
}

/// A live token's row, or 401.
pub fn authenticate(conn: &mut DbConnection, secret: &str) -> Result<ApiTokenRow, ApiError> {
    let row: Option<ApiTokenRow> = api_tokens::table
        .filter(api_tokens::token_hash.eq(hash_secret(secret)))
        .select(ApiTokenRow::as_select())
        .first(conn)
        .optional()?;
    live(row)
}

/// 401 unless token `token_id` is still live (not revoked, not expired).
pub fn check_live(conn: &mut DbConnection, token_id: i64) -> Result<(), ApiError> {
    let row: Option<ApiTokenRow> =
        api_tokens::table.find(token_id).select(ApiTokenRow::as_select()).first(conn).optional()?;
    live(row).map(|_| ())
}

/// The row of a token that exists, is not revoked and has not expired; 401 naming which it is not.
fn live(row: Option<ApiTokenRow>) -> Result<ApiTokenRow, ApiError> {
    let at = now();
    match row {
        Some(t) if t.revoked_at.is_none() && t.expires_at.is_none_or(|e| e > at) => Ok(t),
        Some(t) if t.revoked_at.is_some() => {
            Err(ApiError::unauthorized("token_revoked", "This API token was revoked."))
        }
        Some(_) => Err(ApiError::unauthorized("token_expired", "This API token has expired.")),
        None => Err(ApiError::unauthorized("invalid_token", "This API token is not valid.")),
    }
}

/// The tokens revoked at or after `since` (what `revocations::watch` tells the hub).
pub fn revoked_since(conn: &mut DbConnection, since: NaiveDateTime) -> Result<Vec<i64>, ApiError> {
    Ok(api_tokens::table.filter(api_tokens::revoked_at.ge(since)).select(api_tokens::id).load(conn)?)
}

/// True when `last_used_at` is stale enough to be worth a write.
pub fn needs_touch(row: &ApiTokenRow) -> bool {
    row.last_used_at.is_none_or(|t: NaiveDateTime| now() - t >= LAST_USED_PRECISION)
}

pub fn touch(conn: &mut DbConnection, token_id: i64) -> Result<(), ApiError> {
    diesel::update(api_tokens::table.find(token_id)).set(api_tokens::last_used_at.eq(now())).execute(conn)?;
    Ok(())
}
