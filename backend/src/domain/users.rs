//! Accounts and sessions: register, log in, rotate refresh tokens, log out.
//!
//! A session is an access token (JWT, short-lived, checked without the database) and a refresh
//! token (opaque, stored hashed, single-use). Refresh tokens rotate within a *family*: presenting a
//! spent one means it was copied, so the whole family is revoked and the thief and the victim must
//! both log in again.

use chat_api::{FieldError, RegisterRequest, TokenResponse};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;

use super::credentials::{JwtKeys, REFRESH_TOKEN_PREFIX, hash_secret, new_secret};
use crate::db::models::{NewRefreshToken, NewUser, RefreshTokenRow, UserRow};
use crate::db::schema::{refresh_tokens, users};
use crate::db::{DbConnection, now};
use crate::error::ApiError;

/// 3-32 characters of `[a-z0-9_.-]`, lowercased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    pub fn parse(raw: &str) -> Result<Username, String> {
        let name = raw.trim().to_lowercase();
        let len = name.chars().count();
        if !(3..=32).contains(&len) {
            return Err("must be 3 to 32 characters".into());
        }
        if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '.' | '-')) {
            return Err("may contain only letters a-z, digits, '_', '.' and '-'".into());
        }
        Ok(Username(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new account, checked. Every broken rule is reported at once.
pub struct Registration {
    pub username: Username,
    pub password: String,
    pub display_name: String,
}

impl Registration {
    pub fn parse(req: RegisterRequest) -> Result<Registration, ApiError> {
        let mut errors = Vec::new();
        let mut fail = |field: &str, message: String| errors.push(FieldError { field: field.into(), message });
        let username = Username::parse(&req.username).map_err(|m| fail("username", m)).ok();
        let password_len = req.password.chars().count();
        if !(8..=128).contains(&password_len) {
            fail("password", "must be 8 to 128 characters".into());
        }
        let display_name = req.display_name.as_deref().map(str::trim).filter(|d| !d.is_empty()).map(str::to_owned);
        if display_name.as_ref().is_some_and(|d| d.chars().count() > 64) {
            fail("display_name", "must be at most 64 characters".into());
        }
        if let Some(display_name) = &display_name {
            crate::domain::text::check_name("display_name", display_name)?;
        }
        match username {
            Some(username) if errors.is_empty() => Ok(Registration {
                display_name: display_name.unwrap_or_else(|| username.as_str().to_owned()),
                username,
                password: req.password,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

/// Stores a new user; 409 `username_taken` when the name exists in any case.
pub fn create(conn: &mut DbConnection, reg: &Registration, password_hash: &str) -> Result<UserRow, ApiError> {
    let new =
        NewUser { username: reg.username.as_str(), display_name: &reg.display_name, password_hash, created_at: now() };
    let id: i64 =
        diesel::insert_into(users::table).values(&new).returning(users::id).get_result(conn).map_err(|e| {
            let e = ApiError::from(e);
            if e.is_unique_violation() { ApiError::conflict("username_taken", "This username is taken.") } else { e }
        })?;
    Ok(UserRow {
        id,
        username: new.username.to_owned(),
        display_name: new.display_name.to_owned(),
        created_at: new.created_at,
    })
}

/// The user and their password hash, for login.
pub fn find_with_password(conn: &mut DbConnection, username: &str) -> Result<Option<(UserRow, String)>, ApiError> {
    Ok(users::table
        .filter(users::username.eq(username.trim().to_lowercase()))
        .select((UserRow::as_select(), users::password_hash))
        .first(conn)
        .optional()?)
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<UserRow, ApiError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "The account behind this token no longer exists."))
}

pub fn find_by_username(conn: &mut DbConnection, username: &str) -> Result<UserRow, ApiError> {
    users::table
        .filter(users::username.eq(username.trim().to_lowercase()))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("user_not_found", format!("No user is named {:?}.", username.trim())))
}

/// The users with these ids (for presence), in id order.
pub fn find_many(conn: &mut DbConnection, ids: &[i64]) -> Result<Vec<chat_api::User>, ApiError> {
    let rows: Vec<UserRow> =
        users::table.filter(users::id.eq_any(ids)).order(users::id).select(UserRow::as_select()).load(conn)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// Starts a session: a new refresh token in `family` (a new family when `None`) and an access token.
pub fn start_session(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    user: UserRow,
    family: Option<&str>,
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

/// Spends a refresh token and starts the next session of its family. A spent token presented
/// again revokes its family; any other unusable token is simply refused.
pub fn refresh(
    conn: &mut DbConnection,
    keys: &JwtKeys,
    refresh_ttl: std::time::Duration,
    refresh_token: &str,
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
        start_session(conn, keys, refresh_ttl, user, Some(&family)).map(Some)
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
pub fn sessions_ended_since(conn: &mut DbConnection, since: NaiveDateTime) -> Result<Vec<String>, ApiError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_lowercased_and_checked() {
        assert_eq!(Username::parse("Alice").unwrap().as_str(), "alice");
        assert_eq!(Username::parse("a.b-c_9").unwrap().as_str(), "a.b-c_9");
        assert!(Username::parse("ab").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("al ice").is_err());
        assert!(Username::parse("ålice").is_err());
    }

    #[test]
    fn registration_reports_every_field() {
        let req = RegisterRequest { username: "x".into(), password: "short".into(), display_name: None };
        let Err(ApiError::Validation(errors)) = Registration::parse(req) else { panic!("expected 422") };
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["username", "password"]);
    }

    #[test]
    fn display_name_defaults_to_username() {
        let req = RegisterRequest { username: "Bob".into(), password: "longenough".into(), display_name: None };
        assert_eq!(Registration::parse(req).unwrap().display_name, "bob");
    }
}
