//! Accounts: usernames, registration, finding users. Signing in and out is `sessions`.

use chat_api::{FieldError, RegisterRequest};
use diesel::prelude::*;

use crate::db::models::{NewUser, UserRow};
use crate::db::schema::{api_tokens, incoming_hooks, messages, reserved_usernames, room_members, users};
use crate::db::{DbConnection, now};
use crate::error::ApiError;

/// How many characters a password has: at registration and when it is changed.
pub const PASSWORD_LENGTH: std::ops::RangeInclusive<usize> = 8..=128;

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
        if !PASSWORD_LENGTH.contains(&req.password.chars().count()) {
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
    // The name of an account deleted less than 30 days ago is not free yet.
    let reserved: Option<String> = reserved_usernames::table
        .find(reg.username.as_str())
        .filter(reserved_usernames::until.gt(now()))
        .select(reserved_usernames::username)
        .first(conn)
        .optional()?;
    if reserved.is_some() {
        return Err(ApiError::conflict("username_taken", "This username is taken."));
    }
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
        deleted_at: None,
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

/// 401: a credential outlived its account.
fn account_gone() -> ApiError {
    ApiError::unauthorized("invalid_token", "The account behind this token no longer exists.")
}

pub fn find(conn: &mut DbConnection, id: i64) -> Result<UserRow, ApiError> {
    users::table.find(id).select(UserRow::as_select()).first(conn).optional()?.ok_or_else(account_gone)
}

/// A user by id, for acting on them: 404 `user_not_found`.
pub fn find_user(conn: &mut DbConnection, id: i64) -> Result<UserRow, ApiError> {
    users::table
        .find(id)
        .select(UserRow::as_select())
        .first(conn)
        .optional()?
        .ok_or_else(|| ApiError::not_found("user_not_found", format!("No user has the id {id}.")))
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

/// The longest display name.
const MAX_DISPLAY_NAME: usize = 64;

/// A display name as given: trimmed, 1-64 characters, no control character; `None` (or only white space)
/// goes back to the username.
fn display_name_or(username: &str, raw: Option<String>) -> Result<String, ApiError> {
    let Some(name) = raw.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(username.to_owned());
    };
    if name.chars().count() > MAX_DISPLAY_NAME {
        return Err(ApiError::invalid("display_name", "must be at most 64 characters"));
    }
    crate::domain::text::check_name("display_name", &name)?;
    Ok(name)
}

/// `PATCH /me`: a new display name. Returns the user and the rooms they are in (who must hear of it).
pub fn set_display_name(
    conn: &mut DbConnection,
    user_id: i64,
    raw: Option<String>,
) -> Result<(UserRow, Vec<i64>), ApiError> {
    let user = find(conn, user_id)?;
    let display_name = display_name_or(&user.username, raw)?;
    diesel::update(users::table.find(user_id)).set(users::display_name.eq(&display_name)).execute(conn)?;
    let rooms: Vec<i64> =
        room_members::table.filter(room_members::user_id.eq(user_id)).select(room_members::room_id).load(conn)?;
    Ok((UserRow { display_name, ..user }, rooms))
}

/// A user and their password hash, to check the password they give again (one read).
pub fn with_password(conn: &mut DbConnection, user_id: i64) -> Result<(UserRow, String), ApiError> {
    users::table
        .find(user_id)
        .select((UserRow::as_select(), users::password_hash))
        .first(conn)
        .optional()?
        .ok_or_else(account_gone)
}

pub fn set_password_hash(conn: &mut DbConnection, user_id: i64, hash: &str) -> Result<(), ApiError> {
    diesel::update(users::table.find(user_id)).set(users::password_hash.eq(hash)).execute(conn)?;
    Ok(())
}

diesel::define_sql_function!(fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text);

/// `GET /users?q=`: users whose username or display name starts with `prefix` (any case), by username.
pub fn search(conn: &mut DbConnection, prefix: &str, limit: i64) -> Result<Vec<chat_api::User>, ApiError> {
    // The prefix is text, not a pattern: its `%`, `_` and `\` match themselves.
    let escaped: String = prefix
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    let pattern = format!("{escaped}%");
    let rows: Vec<UserRow> = users::table
        .filter(users::deleted_at.is_null())
        .filter(users::username.like(&pattern).escape('\\').or(lower(users::display_name).like(&pattern).escape('\\')))
        .order(users::username.asc())
        .limit(limit)
        .select(UserRow::as_select())
        .load(conn)?;
    Ok(rows.into_iter().map(Into::into).collect())
}

/// How long a deleted account's username stays taken.
const USERNAME_HELD_DAYS: i64 = 30;

/// What deleting an account ended, for the events that tell every node.
pub struct Deleted {
    pub sessions: Vec<String>,
    pub api_tokens: Vec<i64>,
    pub rooms: Vec<crate::events::Event>,
}

/// `DELETE /me`: the account is gone (CONTRACT-2 "Accounts"). Its memberships end (an owner hands each
/// room on), its sessions and API tokens end, its username stays taken for 30 days, and the row stays,
/// renamed `deleted-<id>`, so that its messages keep their author. The password was checked by the caller.
pub fn delete(conn: &mut DbConnection, user_id: i64) -> Result<Deleted, ApiError> {
    let user = find(conn, user_id)?;
    let rooms: Vec<i64> =
        room_members::table.filter(room_members::user_id.eq(user_id)).select(room_members::room_id).load(conn)?;
    let mut events = Vec::new();
    for room_id in rooms {
        events.extend(crate::domain::rooms::leave(conn, room_id, user_id)?);
    }
    let sessions = crate::domain::sessions::end_all(conn, user_id, None)?;
    let api_tokens: Vec<i64> = diesel::update(api_tokens::table)
        .filter(api_tokens::user_id.eq(user_id))
        .filter(api_tokens::revoked_at.is_null())
        .set(api_tokens::revoked_at.eq(now()))
        .returning(api_tokens::id)
        .get_results(conn)?;
    // Their hooks would post as them: gone with the account.
    diesel::delete(incoming_hooks::table.filter(incoming_hooks::created_by.eq(user_id))).execute(conn)?;
    let until = now() + chrono::Duration::days(USERNAME_HELD_DAYS);
    diesel::delete(reserved_usernames::table.find(&user.username)).execute(conn)?;
    diesel::insert_into(reserved_usernames::table)
        .values((reserved_usernames::username.eq(&user.username), reserved_usernames::until.eq(until)))
        .execute(conn)?;
    diesel::update(users::table.find(user_id))
        .set((
            users::username.eq(format!("deleted-{user_id}")),
            users::display_name.eq(""),
            // No password verifies against this: nobody signs in to the account again.
            users::password_hash.eq("!"),
            users::deleted_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(Deleted { sessions, api_tokens, rooms: events })
}

/// `GET /me/export`: the caller's profile, rooms, memberships and every message they wrote.
pub fn export(conn: &mut DbConnection, user_id: i64) -> Result<chat_api::AccountExport, ApiError> {
    use crate::db::models::{MemberRow, MessageRow};
    let user = find(conn, user_id)?;
    let memberships: Vec<MemberRow> =
        room_members::table.filter(room_members::user_id.eq(user_id)).select(MemberRow::as_select()).load(conn)?;
    let rows = crate::db::schema::rooms::table
        .filter(crate::db::schema::rooms::id.eq_any(memberships.iter().map(|m| m.room_id)))
        .select(crate::db::models::RoomRow::as_select())
        .load(conn)?;
    let rooms = crate::domain::rooms::views(conn, rows, user_id)?;
    let written: Vec<MessageRow> = messages::table
        .filter(messages::author_id.eq(user_id))
        .order((messages::room_id.asc(), messages::seq.asc()))
        .select(MessageRow::as_select())
        .load(conn)?;
    let messages = written.into_iter().map(|m| m.with_author(user.clone())).collect();
    let memberships = memberships
        .into_iter()
        .map(|m| chat_api::ExportedMembership {
            room_id: m.room_id,
            member: crate::domain::rooms::member(m, user.clone()),
        })
        .collect();
    Ok(chat_api::AccountExport { user: user.into(), rooms, memberships, messages })
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
